#!/bin/sh
# exec handler fixture: SIGKILLs taskd (the server running this handler: the
# nearest ancestor whose name starts with "taskd"; the parent is the run's
# supervisor), simulating a server crash mid-task.
cat >/dev/null
p=$PPID
for _ in 1 2 3; do
    comm=$(cat "/proc/$p/comm" 2>/dev/null)
    case "$comm" in
    taskd*)
        kill -9 "$p"
        sleep 1
        break
        ;;
    esac
    # the next ancestor: field 4 of /proc/PID/stat, after the ")" that ends the name
    p=$(sed 's/.*) [A-Za-z] \([0-9]*\) .*/\1/' "/proc/$p/stat" 2>/dev/null)
    [ -n "$p" ] && [ "$p" -gt 1 ] || break
done
echo "no ancestor of $$ is taskd (parent $PPID is '$(cat /proc/$PPID/comm 2>/dev/null)')" >&2
exit 1
