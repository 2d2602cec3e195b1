#!/bin/sh
# exec handler fixture: prints each argument as <arg> on its own line.
cat >/dev/null
for a in "$@"; do
    printf '<%s>\n' "$a"
done
