#!/bin/sh
# Echoes the task from stdin and the task variables as one JSON object.
input=$(cat)
printf '{"stdin":%s,"id":"%s","type":"%s","trace":"%s","tracestate":"%s","extra":"%s"}\n' \
    "$input" "$TASK_ID" "$TASK_TYPE" "${TRACEPARENT-unset}" "${TRACESTATE-unset}" \
    "${EXEC_TEST_EXTRA-unset}"
