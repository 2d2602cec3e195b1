#!/bin/sh
# exec handler fixture: succeeds with plain text (not JSON) on stdout.
cat >/dev/null
echo 'hello, world: {not json}'
