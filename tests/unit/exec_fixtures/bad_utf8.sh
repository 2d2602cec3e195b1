#!/bin/sh
# Prints text with an invalid UTF-8 byte, on stdout and on stderr, then fails if $1 is "fail".
printf 'caf\303\251 \377!\n'
printf 'bad \377 byte\n' >&2
[ "$1" = fail ] && exit 2
exit 0
