/*
 * errbuf — formatted error messages into a caller's buffer; see errbuf.h.
 */
#include "errbuf.h"

#include "sbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char CUT[] = "...";

/* Format at err + used; text that does not fit is cut as errbuf_set() says. Whether it fit. */
static bool put(char *err, size_t errlen, size_t used, const char *fmt, va_list ap)
{
    int n = vsnprintf(err + used, errlen - used, fmt, ap);
    if (n >= 0 && (size_t)n < errlen - used)
        return true;
    size_t keep = errlen > sizeof CUT ? utf8_cut(err, errlen - sizeof CUT) : 0;
    snprintf(err + keep, errlen - keep, "%s", CUT);
    return false;
}

void errbuf_vset(char *err, size_t errlen, const char *fmt, va_list ap)
{
    if (err && errlen > 0)
        put(err, errlen, 0, fmt, ap);
}

void errbuf_set(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    errbuf_vset(err, errlen, fmt, ap);
    va_end(ap);
}

bool errbuf_append(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return false;
    va_list ap;
    va_start(ap, fmt);
    bool fit = put(err, errlen, strnlen(err, errlen - 1), fmt, ap);
    va_end(ap);
    return fit;
}

void errbuf_one_line(char *err, size_t errlen)
{
    for (size_t i = 0; err && i < errlen && err[i]; i++)
        if ((unsigned char)err[i] < 0x20 || err[i] == 0x7f)
            err[i] = '?';
}
