#!/bin/sh
# Fails with exit status 3 after explaining itself on stderr.
cat >/dev/null
echo "some output nobody reads"
echo "first line" >&2
echo "boom: the widget broke" >&2
exit 3
