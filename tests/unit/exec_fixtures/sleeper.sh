#!/bin/sh
# Starts a background grandchild, records "shell-pid grandchild-pid" in $1, and sleeps.
sleep 30 &
echo "$$ $!" > "$1"
sleep 30
