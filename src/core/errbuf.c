/*
 * errbuf — formatted error messages into a caller's buffer; see errbuf.h.
 */
#include "errbuf.h"

#include "sbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char CUT[] = "...";
/* The byte after the NUL of a cut's "...", where the buffer has room for it (a cut that stepped
 * back over a character leaves 1 to 3 bytes free): text may end "..." by itself. */
static const char CUT_MARK = '\x7f';

/* Format at err + used; text that does not fit is cut as errbuf_set() says. Whether it fit. */
static bool put(char *err, size_t errlen, size_t used, const char *fmt, va_list ap)
{
    int n = vsnprintf(err + used, errlen - used, fmt, ap);
    if (n >= 0 && (size_t)n < errlen - used) {
        size_t end = used + (size_t)n; /* no mark of an earlier cut stays after what fit */
        if (end + 1 < errlen)
            err[end + 1] = '\0';
        return true;
    }
    size_t keep = errlen > sizeof CUT ? utf8_cut(err, errlen - sizeof CUT) : 0;
    snprintf(err + keep, errlen - keep, "%s", CUT);
    if (keep + sizeof CUT < errlen)
        err[keep + sizeof CUT] = CUT_MARK;
    return false;
}

/* Whether err, used bytes long, is what put() cut. */
static bool was_cut(const char *err, size_t errlen, size_t used)
{
    /* a text ending "..." that fills the buffer is taken as cut: nothing more fits it anyway */
    return used >= strlen(CUT) && memcmp(err + used - strlen(CUT), CUT, strlen(CUT)) == 0 &&
           (used + 1 == errlen || err[used + 1] == CUT_MARK);
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
    size_t used = strnlen(err, errlen - 1);
    if (was_cut(err, errlen, used))
        return false;
    va_list ap;
    va_start(ap, fmt);
    bool fit = put(err, errlen, used, fmt, ap);
    va_end(ap);
    return fit;
}

void errbuf_one_line(char *err, size_t errlen)
{
    for (size_t i = 0; err && i < errlen && err[i]; i++)
        if ((unsigned char)err[i] < 0x20 || err[i] == 0x7f)
            err[i] = '?';
}
