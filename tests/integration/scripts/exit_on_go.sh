#!/bin/sh
# exec handler fixture: reads {"data":{"dir":"..."}} from stdin, writes DIR/started, waits for
# DIR/go, then leaves a background `sleep 60` (so its supervisor lives on after it), writes
# "<own pid> <supervisor pid> <sleeper pid>" to DIR/pids, prints {"ran": true} and exits 0.
input=$(cat)
dir=$(printf '%s' "$input" | sed -n 's/.*"dir" *: *"\([^"]*\)".*/\1/p')
: > "$dir/started"
while [ ! -e "$dir/go" ]; do sleep 0.01; done
sleep 60 </dev/null >/dev/null 2>&1 &
echo "$$ $PPID $!" > "$dir/pids.tmp" && mv "$dir/pids.tmp" "$dir/pids"
echo '{"ran": true}'
