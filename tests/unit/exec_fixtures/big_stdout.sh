#!/bin/sh
# Writes 3 MB of 'a' to stdout, more than is kept.
head -c 3000000 /dev/zero | tr '\0' a
