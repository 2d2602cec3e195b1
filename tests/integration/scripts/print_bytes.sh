#!/bin/sh
# exec handler fixture: succeeds after writing $1 bytes of 'a' to stdout.
cat >/dev/null
head -c "$1" /dev/zero | tr '\0' a
