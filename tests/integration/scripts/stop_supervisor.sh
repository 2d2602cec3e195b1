#!/bin/sh
# exec handler fixture: reads {"data":{"dir":"..."}} from stdin. The first run (no DIR/pids yet)
# leaves a background `sleep 60` in its process group, stops the process that supervises it (its
# parent: same user, it may), writes "<own pid> <supervisor pid> <sleeper pid>" to DIR/pids and
# waits for the sleep; a later run prints {"again": true, "first_supervisor": "<state>"}: the state
# the first run's supervisor is in as it starts (/proc/<pid>/stat's: Z once it has ended, empty
# once reaped).
input=$(cat)
dir=$(printf '%s' "$input" | sed -n 's/.*"dir" *: *"\([^"]*\)".*/\1/p')
if [ -e "$dir/pids" ]; then
    read -r _ supervisor _ < "$dir/pids"
    state=$(sed -n 's/.*) \(.\) .*/\1/p' "/proc/$supervisor/stat" 2>/dev/null)
    echo "{\"again\": true, \"first_supervisor\": \"$state\"}"
    exit 0
fi
sleep 60 </dev/null >/dev/null 2>&1 &
kill -STOP "$PPID"
echo "$$ $PPID $!" > "$dir/pids.tmp" && mv "$dir/pids.tmp" "$dir/pids"
wait
