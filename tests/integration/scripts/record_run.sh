#!/bin/sh
# exec handler fixture: appends "$TASK_ID" to DIR/runs (DIR from the task's
# data {"dir": ...} on stdin), sleeps ${1:-1} seconds, then succeeds.
input=$(cat)
dir=$(printf '%s' "$input" | sed -n 's/.*"dir" *: *"\([^"]*\)".*/\1/p')
echo "$TASK_ID" >> "$dir/runs"
sleep "${1:-1}"
echo '{"ran": true}'
