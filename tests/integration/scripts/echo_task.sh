#!/bin/sh
# exec handler fixture: echoes the task read from stdin and the task variables
# from the environment as one JSON object ("traceparent" is "" when unset).
input=$(cat)
printf '{"stdin": %s, "task_id": "%s", "task_type": "%s", "traceparent": "%s"}\n' \
    "$input" "$TASK_ID" "$TASK_TYPE" "${TRACEPARENT-}"
