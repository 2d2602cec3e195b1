#!/bin/sh
# exec handler fixture: sleeps ${1:-2} seconds, then succeeds with JSON naming the task.
cat >/dev/null
sleep "${1:-2}"
printf '{"slept": %s, "task_id": "%s"}\n' "${1:-2}" "$TASK_ID"
