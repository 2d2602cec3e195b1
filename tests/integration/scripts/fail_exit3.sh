#!/bin/sh
# exec handler fixture: fails with exit status 3 after writing to stderr.
cat >/dev/null
echo "some progress on stdout"
echo "starting" >&2
echo "fixture error: the disk is full" >&2
exit 3
