#!/bin/sh
# Writes 512 KiB to stdout, then as much to stderr, before it reads stdin: each far past what a
# pipe holds. Then reads all of stdin and reports it on stdout: its size in bytes, and what is
# left of it without its x's.
head -c 524288 /dev/zero | tr '\0' o
head -c 524288 /dev/zero | tr '\0' e >&2
input=$(cat; echo .) # the dot keeps the newlines at its end
input=${input%.}
printf '\n%s\n' "$(printf %s "$input" | wc -c)"
printf %s "$input" | tr -d x
