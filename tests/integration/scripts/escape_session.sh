#!/bin/sh
# exec handler fixture: leaves processes behind, one of them out of reach of a
# process-group kill. Reads {"data":{"dir":"..."}} from stdin, starts
#   - a `sleep 60` in a session of its own, double-forked so that it is
#     re-parented away from this script at once (as a daemon does), and
#   - a plain background `sleep 60`,
# writes "<own pid> <session sleeper pid> <background sleeper pid>" to DIR/pids,
# then with $1 = "exit" exits 0 ({"left": 2}), else sleeps 60 s.
input=$(cat)
dir=$(printf '%s' "$input" | sed -n 's/.*"dir" *: *"\([^"]*\)".*/\1/p')
( setsid sh -c 'echo $$ > "$1"; exec sleep 60' sh "$dir/escaped" & )
sleep 60 &
bg=$!
while [ ! -s "$dir/escaped" ]; do sleep 0.01; done
echo "$$ $(cat "$dir/escaped") $bg" > "$dir/pids.tmp" && mv "$dir/pids.tmp" "$dir/pids"
if [ "$1" = exit ]; then
    echo '{"left": 2}'
    exit 0
fi
sleep 60
