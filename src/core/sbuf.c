/*
 * sbuf — growable byte buffer. Growth doubles the capacity so appends are
 * amortised O(1); a failed allocation is sticky (see sbuf.h).
 */
#include "sbuf.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool reserve(sbuf *b, size_t extra)
{
    if (b->failed)
        return false;
    if (extra > SIZE_MAX / 4 - b->len) { /* no such memory: and past it, need and cap would wrap */
        b->failed = true;
        return false;
    }
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 128;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) {
        b->failed = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

void sbuf_append(sbuf *b, const char *s, size_t len)
{
    if (!reserve(b, len))
        return;
    memcpy(b->data + b->len, s, len);
    b->len += len;
    b->data[b->len] = '\0';
}

void sbuf_putc(sbuf *b, char c)
{
    if (!reserve(b, 1))
        return;
    b->data[b->len++] = c;
    b->data[b->len] = '\0';
}

void sbuf_printf(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char tmp[256];
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) { /* not for want of memory: the text cannot be written */
        if (!b->failed)
            b->error = errno;
        b->failed = true;
        return;
    }
    if ((size_t)n < sizeof tmp) {
        sbuf_append(b, tmp, (size_t)n);
        return;
    }
    if (!reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

int sbuf_error(const sbuf *b)
{
    return !b->failed ? 0 : b->error ? b->error : ENOMEM;
}

const char *sbuf_error_text(const sbuf *b)
{
    switch (sbuf_error(b)) {
    case 0:
        return "";
    case ENOMEM:
        return "out of memory";
    case EOVERFLOW:
        return "text too long to format";
    case EILSEQ:
        return "a character the locale cannot write";
    default:
        return "text that cannot be formatted";
    }
}

void sbuf_int(sbuf *b, int64_t v)
{
    /* by hand: snprintf's format parsing costs more than the digits on the hot paths */
    char tmp[24];
    char *p = tmp + sizeof tmp;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do
        *--p = (char)('0' + u % 10);
    while (u /= 10);
    if (v < 0)
        *--p = '-';
    sbuf_append(b, p, (size_t)(tmp + sizeof tmp - p));
}

void str_join(char *out, size_t size, ...)
{
    va_list ap;
    va_start(ap, size);
    size_t len = 0;
    for (const char *part; (part = va_arg(ap, const char *)) != NULL;) {
        size_t n = utf8_cut(part, strnlen(part, size - 1 - len));
        memcpy(out + len, part, n);
        len += n;
        if (part[n]) /* cut: a later part would not follow what it follows */
            break;
    }
    va_end(ap);
    out[len] = '\0';
}

/*
 * The p significant digits nearest to a = |d| (printf's "%.*e" rounds exactly): *digits (no
 * point) and the exponent of the first. Whether they read back as a. The decimals of p digits
 * about a power of two are not placed alike on both sides of it: the double below is half as far
 * as the one above, so the nearest may lie below too far while the next above reads back, which
 * is then taken.
 */
static bool digits_of(double a, int p, char digits[18], int *exp10)
{
    char e[32];
    snprintf(e, sizeof e, "%.*e", p - 1, a);
    double back = strtod(e, NULL);
    digits[0] = e[0];
    memcpy(digits + 1, e + 2, (size_t)(p - 1)); /* "d.ddd" without its point */
    digits[p] = '\0';
    *exp10 = atoi(strchr(e, 'e') + 1);
    if (back == a)
        return true;
    int bits;
    if (back > a || frexp(a, &bits) != 0.5 || a <= DBL_MIN)
        return false;
    int i = p - 1;
    for (; i >= 0 && digits[i] == '9'; i--)
        digits[i] = '0';
    if (i < 0) { /* 9.99 up to 10.0: one more place */
        digits[0] = '1';
        ++*exp10;
    } else {
        digits[i]++;
    }
    snprintf(e, sizeof e, "%c.%se%d", digits[0], digits + 1, *exp10);
    return strtod(e, NULL) == a;
}

/*
 * A finite d in its fewest digits that read back as it, the nearest of those, in exponent form
 * ("1e-05", "1.5e+16") below 1e-4 and from 10 to the power e_from, else with a point where it has
 * a fraction, and where it has none when whole_point ("1.0").
 */
static void shortest_text(char out[DOUBLE_TEXT_MAX], double d, int e_from, bool whole_point)
{
    /* The fewest digits that read back as d, the nearest to it of those. Of a normal double, the
     * 15 nearest are the only 15 that can (decimals of 15 digits lie more than 4 doubles apart):
     * when they read back, the shortest are they less their trailing zeros. A subnormal has fewer
     * bits, and zero none: every length is tried. */
    double a = fabs(d);
    char digits[18];
    int exp10 = 0, p = a < DBL_MIN ? 1 : 15;
    while (p < 17 && !digits_of(a, p, digits, &exp10))
        p++;
    if (p == 17)
        digits_of(a, 17, digits, &exp10); /* 17 always read back */
    size_t n = strlen(digits);
    while (n > 1 && digits[n - 1] == '0')
        n--;
    char *o = out;
    if (signbit(d))
        *o++ = '-';
    if (exp10 < -4 || exp10 >= e_from) {
        *o++ = digits[0];
        if (n > 1) {
            *o++ = '.';
            memcpy(o, digits + 1, n - 1);
            o += n - 1;
        }
        snprintf(o, DOUBLE_TEXT_MAX - (size_t)(o - out), "e%c%02d", exp10 < 0 ? '-' : '+',
                 abs(exp10));
        return;
    }
    if (exp10 < 0) {
        memcpy(o, "0.0000", (size_t)(1 - exp10)); /* "0." and the zeros before the first digit */
        o += 1 - exp10;
        memcpy(o, digits, n);
        o += n;
    } else {
        size_t whole = (size_t)exp10 + 1; /* digits before the point */
        for (size_t i = 0; i < whole; i++)
            *o++ = i < n ? digits[i] : '0';
        if (n > whole) {
            *o++ = '.';
            memcpy(o, digits + whole, n - whole);
            o += n - whole;
        } else if (whole_point) {
            memcpy(o, ".0", 2);
            o += 2;
        }
    }
    *o = '\0';
}

void double_text(char out[DOUBLE_TEXT_MAX], double d)
{
    if (isnan(d) || isinf(d))
        strcpy(out, isnan(d) ? "nan" : d > 0 ? "inf" : "-inf");
    else /* as Python's repr() places them: "1e-05", "0.0001", "1000000000000000.0", "1e+16" */
        shortest_text(out, d, 16, true);
}

void double_text_go(char out[DOUBLE_TEXT_MAX], double d)
{
    if (isnan(d) || isinf(d))
        strcpy(out, isnan(d) ? "NaN" : d > 0 ? "+Inf" : "-Inf");
    else if (d == 0)
        strcpy(out, "0"); /* -0 too: Go's Prometheus client writes 0 for both */
    else /* strconv's 'g' of the shortest digits: "1e-05", "0.0001", "100000", "1e+06" */
        shortest_text(out, d, 6, false);
}

void sbuf_double(sbuf *b, double d)
{
    char tmp[DOUBLE_TEXT_MAX];
    double_text(tmp, d);
    sbuf_puts(b, tmp);
}

size_t utf8_cut(const char *s, size_t n)
{
    /* a character has at most 3 continuation bytes: past them, text that is not UTF-8 is cut
     * where it is asked to be, not back to the start of a run of stray bytes */
    for (size_t back = 0; back < 3 && n > 0 && utf8_is_cont(s[n]); back++)
        n--;
    return n;
}

size_t utf8_start(const char *s, size_t i, size_t n)
{
    while (i < n && utf8_is_cont(s[i]))
        i++;
    return i;
}

void str_trim(const char **s, size_t *n)
{
    while (*n > 0 && str_is_ws(**s)) {
        (*s)++;
        (*n)--;
    }
    while (*n > 0 && str_is_ws((*s)[*n - 1]))
        (*n)--;
}

size_t utf8_char_len(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    if (n == 0)
        return 0;
    if (u[0] < 0x80)
        return 1;
    size_t len = u[0] >= 0xc2 && u[0] <= 0xdf   ? 2
                 : u[0] >= 0xe0 && u[0] <= 0xef ? 3
                 : u[0] >= 0xf0 && u[0] <= 0xf4 ? 4
                                                : 0;
    if (len == 0 || len > n)
        return 0;
    for (size_t k = 1; k < len; k++)
        if (!utf8_is_cont(s[k]))
            return 0;
    if ((u[0] == 0xe0 && u[1] < 0xa0) || /* overlong */
        (u[0] == 0xed && u[1] > 0x9f) || /* a surrogate */
        (u[0] == 0xf0 && u[1] < 0x90) || /* overlong */
        (u[0] == 0xf4 && u[1] > 0x8f))   /* past U+10FFFF */
        return 0;
    return len;
}

bool utf8_valid(const char *s, size_t n)
{
    for (size_t i = 0, k; i < n; i += k)
        if (!(k = utf8_char_len(s + i, n - i)))
            return false;
    return true;
}

size_t utf8_copy_within(char *out, size_t size, const char *s)
{
    size_t len = strlen(s), o = 0;
    for (size_t i = 0; i < len;) {
        size_t k = (unsigned char)s[i] < 0x80 ? 1 : utf8_char_len(s + i, len - i);
        if (o + (k ? k : 1) > size - 1)
            break;
        if (k) {
            memcpy(out + o, s + i, k);
            o += k;
            i += k;
        } else {
            out[o++] = '?';
            i++;
        }
    }
    out[o] = '\0';
    return o;
}

char *utf8_dup(const char *s)
{
    size_t len = strlen(s), bad = 0;
    for (size_t i = 0; i < len; i++) {
        size_t k = (unsigned char)s[i] < 0x80 ? 1 : utf8_char_len(s + i, len - i);
        if (k)
            i += k - 1;
        else
            bad++;
    }
    char *out = malloc(len + 2 * bad + 1); /* each bad byte becomes 3 */
    if (!out)
        return NULL;
    if (!bad)
        return memcpy(out, s, len + 1);
    char *o = out;
    for (size_t i = 0; i < len; i++) {
        size_t k = (unsigned char)s[i] < 0x80 ? 1 : utf8_char_len(s + i, len - i);
        if (!k) {
            memcpy(o, "\xef\xbf\xbd", 3);
            o += 3;
            continue;
        }
        memcpy(o, s + i, k);
        o += k;
        i += k - 1;
    }
    *o = '\0';
    return out;
}

size_t sbuf_json_strn(sbuf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    if (!reserve(b, len) || !reserve(b, len + 2)) /* len first: len + 2 may wrap */
        return 0;
    size_t bytes = len; /* of the string the text reads back as */
    sbuf_putc(b, '"');
    size_t run = 0; /* start of the pending run of bytes that need no escape */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80) {
            size_t k = utf8_char_len(s + i, len - i);
            const unsigned char *u = (const unsigned char *)s + i;
            if (k == 3 && u[0] == 0xef && u[1] == 0xbf && u[2] >= 0xbe) {
                /* U+FFFE and U+FFFF, which XML (and so an SQS body) may not hold: escaped */
                sbuf_append(b, s + run, i - run);
                run = i + 3;
                sbuf_append(b, u[2] == 0xbe ? "\\ufffe" : "\\uffff", 6);
                i += 2;
                continue;
            }
            if (k) {
                i += k - 1;
                continue;
            }
            sbuf_append(b, s + run, i - run);
            run = i + 1;
            sbuf_append(b, "\\ufffd", 6); /* not UTF-8: the replacement character */
            bytes += 2;                   /* U+FFFD's 3 bytes for the 1 */
            continue;
        }
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        sbuf_append(b, s + run, i - run);
        run = i + 1;
        switch (c) {
        case '"':
            sbuf_append(b, "\\\"", 2);
            break;
        case '\\':
            sbuf_append(b, "\\\\", 2);
            break;
        case '\n':
            sbuf_append(b, "\\n", 2);
            break;
        case '\r':
            sbuf_append(b, "\\r", 2);
            break;
        case '\t':
            sbuf_append(b, "\\t", 2);
            break;
        case '\b':
            sbuf_append(b, "\\b", 2);
            break;
        case '\f':
            sbuf_append(b, "\\f", 2);
            break;
        default: {
            char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            sbuf_append(b, u, 6);
        }
        }
    }
    sbuf_append(b, s + run, len - run);
    sbuf_putc(b, '"');
    return bytes;
}

size_t sbuf_json_str(sbuf *b, const char *s)
{
    if (!s) {
        sbuf_puts(b, "null");
        return 0;
    }
    return sbuf_json_strn(b, s, strlen(s));
}

char *sbuf_take(sbuf *b, size_t *len)
{
    if (b->failed) { /* never half-built text */
        sbuf_free(b);
        if (len)
            *len = 0;
        return NULL;
    }
    char *p = b->data ? b->data : calloc(1, 1);
    if (len)
        *len = p ? b->len : 0;
    *b = (sbuf){0};
    return p;
}

void sbuf_free(sbuf *b)
{
    free(b->data);
    *b = (sbuf){0};
}

void sbuf_truncate(sbuf *b, size_t len)
{
    if (b->data && len < b->len) {
        b->len = len;
        b->data[len] = '\0';
    }
}
