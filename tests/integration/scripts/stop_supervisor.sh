#!/bin/sh
# exec handler fixture: reads {"data":{"dir":"..."}} from stdin. The first run (no DIR/pids yet)
# leaves a background `sleep 60` in its process group, stops the process that supervises it (its
# parent: same user, it may), writes "<own pid> <supervisor pid> <sleeper pid>" to DIR/pids and
# waits for the sleep; a later run prints {"again": true}.
input=$(cat)
dir=$(printf '%s' "$input" | sed -n 's/.*"dir" *: *"\([^"]*\)".*/\1/p')
if [ -e "$dir/pids" ]; then
    echo '{"again": true}'
    exit 0
fi
sleep 60 </dev/null >/dev/null 2>&1 &
kill -STOP "$PPID"
echo "$$ $PPID $!" > "$dir/pids.tmp" && mv "$dir/pids.tmp" "$dir/pids"
wait
