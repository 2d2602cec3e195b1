#!/bin/sh
# Leaves a background grandchild holding stdout open, records its pid in $1, and exits 0.
sleep 30 &
echo "$!" > "$1"
echo done
