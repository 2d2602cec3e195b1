#!/bin/sh
# Prints each argument in brackets, exactly as received.
printf '[%s]' "$@"
