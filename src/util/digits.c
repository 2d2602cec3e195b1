/*
 * digits — plain decimal numbers; see digits.h.
 */
#include "digits.h"

bool digits_parse(const char *s, size_t len, long min, long max, long *out)
{
    if (len == 0)
        return false;
    long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        int d = s[i] - '0';
        if (v > max / 10 || v * 10 > max - d) /* past max, checked before it could overflow */
            return false;
        v = v * 10 + d;
    }
    if (v < min)
        return false;
    *out = v;
    return true;
}
