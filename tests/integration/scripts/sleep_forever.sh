#!/bin/sh
# exec handler fixture: overruns any timeout. Reads {"data":{"dir":"..."}} from
# stdin and writes "<own pid> <sleep pid>" to DIR/pids so a test can check that
# both were killed with the process group.
input=$(cat)
dir=$(printf '%s' "$input" | sed -n 's/.*"dir" *: *"\([^"]*\)".*/\1/p')
sleep 30 &
sleeper=$!
if [ -n "$dir" ]; then
    echo "$$ $sleeper" > "$dir/pids.tmp" && mv "$dir/pids.tmp" "$dir/pids"
fi
wait "$sleeper"
echo "not killed" > "${dir:-/tmp}/survived"
