#!/bin/sh
# Reads the task, completes with JSON (spaced out, with a number jansson would reformat).
cat >/dev/null
printf '{ "answer": 42,\n  "ratio": 0.1,\n  "list": [1, 2, "a b"] }\n'
