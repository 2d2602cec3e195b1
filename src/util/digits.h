/*
 * digits — a number written in plain decimal digits, as a port or a count is given in a flag or
 * an environment variable.
 *
 * strtol() would take leading blanks, a sign ("-0", "+80"), "0x" with base 0, and a number past
 * its type's range (clamped, with errno to check); none of those is a port or a count.
 */
#ifndef TASKD_DIGITS_H
#define TASKD_DIGITS_H

#include <stdbool.h>
#include <stddef.h>

/*
 * *out = the number s[0..len) writes, when it is decimal digits only (leading zeros are fine) and
 * from min to max (0 <= min <= max); false with *out untouched for anything else: nothing, a sign,
 * a blank, any other character, a number out of range however many digits it has.
 */
bool digits_parse(const char *s, size_t len, long min, long max, long *out);

#endif
