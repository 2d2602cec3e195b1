#!/bin/sh
# exec handler fixture: SIGKILLs its parent when the parent is taskd (the
# server running this handler), simulating a server crash mid-task.
cat >/dev/null
comm=$(cat "/proc/$PPID/comm" 2>/dev/null)
case "$comm" in
taskd*)
    kill -9 "$PPID"
    sleep 1
    ;;
esac
echo "parent $PPID is '$comm', not taskd" >&2
exit 1
