#!/bin/sh
# exec handler fixture: prints the trace context in its environment as text, one
# line each: "tracestate=<TRACESTATE>" then "traceparent=<TRACEPARENT>" ("(unset)"
# for a variable that is not set).
cat >/dev/null
printf 'tracestate=%s\ntraceparent=%s\n' "${TRACESTATE-(unset)}" "${TRACEPARENT-(unset)}"
