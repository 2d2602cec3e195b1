#!/bin/sh
# Dies of SIGKILL after a word on stderr.
echo "about to die" >&2
kill -KILL $$
