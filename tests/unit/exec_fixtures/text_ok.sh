#!/bin/sh
# Completes with plain text that is not JSON.
cat >/dev/null
echo 'hello "world"'
