#!/bin/sh
# exec handler fixture: succeeds with its whole environment ("NAME=value" lines) as text.
cat >/dev/null
env
