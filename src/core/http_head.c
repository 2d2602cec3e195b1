/*
 * http_head — judging a connection's first request head; see http_head.h.
 */
#include "http_head.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

static bool is_tchar(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static bool named(const char *name, size_t len, const char *lower)
{
    if (len != strlen(lower))
        return false;
    for (size_t i = 0; i < len; i++)
        if (tolower((unsigned char)name[i]) != lower[i])
            return false;
    return true;
}

/*
 * Judge a complete head's header lines, p to end (each ending in LF, CR LF or not), as
 * libmicrohttpd 0.9.75 reads them, so that what it would refuse with an HTML page of its own is
 * answered here: a line without a colon (or with a NUL before it), a folded line with no field
 * before it, and (with no
 * Transfer-Encoding) a first Content-Length that is not all digits after its leading blanks, or
 * is past 2^64 - 1.
 */
static http_head_verdict judge_fields(const char *p, const char *end)
{
    const char *length = NULL, *length_end = NULL; /* the first Content-Length's value */
    bool fields = false, length_line = false, folded_length = false, encoded = false;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *next = eol ? eol + 1 : end;
        const char *line_end = eol ? eol : end;
        if (line_end > p && line_end[-1] == '\r')
            line_end--;
        if (*p == ' ' || *p == '\t') { /* folded onto the field before it */
            if (!fields)
                return HTTP_HEAD_BAD_FIELD;
            folded_length = folded_length || length_line;
        } else {
            const char *colon = p; /* as strchr() finds it: a NUL ends the line's text */
            while (colon < line_end && *colon != ':' && *colon != '\0')
                colon++;
            if (colon == line_end || *colon != ':')
                return HTTP_HEAD_BAD_FIELD;
            fields = true;
            length_line = false;
            size_t len = (size_t)(colon - p);
            if (named(p, len, "transfer-encoding")) {
                encoded = true;
            } else if (!length && named(p, len, "content-length")) {
                length = colon + 1;
                while (length < line_end && (*length == ' ' || *length == '\t'))
                    length++;
                length_end = line_end;
                length_line = true;
            }
        }
        p = next;
    }
    if (encoded || !length)
        return HTTP_HEAD_OK;
    if (length == length_end || folded_length)
        return HTTP_HEAD_BAD_LENGTH;
    uint64_t v = 0;
    for (const char *d = length; d < length_end; d++) {
        if (!isdigit((unsigned char)*d))
            return HTTP_HEAD_BAD_LENGTH;
        unsigned digit = (unsigned)(*d - '0');
        if (v > (UINT64_MAX - digit) / 10)
            return HTTP_HEAD_LENGTH_TOO_BIG;
        v = v * 10 + digit;
    }
    return HTTP_HEAD_OK;
}

/*
 * Judge the first n bytes of a connection: HTTP_HEAD_OK once the head is complete, its request line
 * is HTTP/1.x and its header lines pass judge_fields(), HTTP_HEAD_MORE while it may still become
 * one. Empty lines before the request line are skipped, as libmicrohttpd skips them.
 */
http_head_verdict http_head_judge(const char *buf, size_t n, size_t limit)
{
    size_t i = 0;
    while (i < n && (buf[i] == '\r' || buf[i] == '\n'))
        i++;
    size_t method = i;
    while (i < n && i - method <= HTTP_HEAD_MAX_METHOD && is_tchar((unsigned char)buf[i]))
        i++;
    if (i - method > HTTP_HEAD_MAX_METHOD)
        return HTTP_HEAD_BAD;
    if (i == n)
        return n >= limit ? HTTP_HEAD_LINE_TOO_LONG : HTTP_HEAD_MORE;
    if (buf[i] != ' ' || i == method)
        return HTTP_HEAD_BAD;
    /* the rest of the request line: no control characters but its CR LF */
    size_t eol = i;
    for (; eol < n && buf[eol] != '\n'; eol++) {
        unsigned char ch = (unsigned char)buf[eol];
        if ((ch < 0x20 && ch != '\r' && ch != '\t') || ch == 0x7f)
            return HTTP_HEAD_BAD;
        if (ch == '\r' && eol + 1 < n && buf[eol + 1] != '\n')
            return HTTP_HEAD_BAD;
    }
    if (eol == n)
        return n >= limit ? HTTP_HEAD_LINE_TOO_LONG : HTTP_HEAD_MORE;
    size_t end = eol > 0 && buf[eol - 1] == '\r' ? eol - 1 : eol;
    size_t sp = end;
    while (sp > i && buf[sp - 1] != ' ')
        sp--;
    if (sp <= i + 1) /* no target, or no version */
        return HTTP_HEAD_BAD;
    const char *v = buf + sp;
    size_t vlen = end - sp;
    if (vlen == 8 && (memcmp(v, "HTTP/1.1", 8) == 0 || memcmp(v, "HTTP/1.0", 8) == 0)) {
        /* the head ends at the first empty line */
        for (size_t k = eol; k + 1 < n; k++) {
            if (buf[k] != '\n')
                continue;
            if (buf[k + 1] == '\n' || (buf[k + 1] == '\r' && k + 2 < n && buf[k + 2] == '\n'))
                return judge_fields(buf + eol + 1, buf + k + 1);
        }
        return n >= limit ? HTTP_HEAD_TOO_LARGE : HTTP_HEAD_MORE;
    }
    /* HTTP/d.d, another version: 505, as libmicrohttpd answers; anything else is no version */
    if (vlen == 8 && memcmp(v, "HTTP/", 5) == 0 && isdigit((unsigned char)v[5]) && v[6] == '.' &&
        isdigit((unsigned char)v[7]))
        return HTTP_HEAD_VERSION;
    return HTTP_HEAD_BAD;
}
