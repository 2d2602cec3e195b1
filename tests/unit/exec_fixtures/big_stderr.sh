#!/bin/sh
# Writes far more than 4 KiB to stderr, then a last line, and fails.
i=0
while [ $i -lt 2000 ]; do
    echo "noise line $i: lorem ipsum dolor sit amet" >&2
    i=$((i + 1))
done
echo "FINAL: the real reason" >&2
exit 1
