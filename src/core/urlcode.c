/*
 * urlcode — percent-decoding in place, and percent-encoding; see urlcode.h.
 * Decoding never runs ahead of the input, so one pass writes over the bytes
 * already read.
 */
#include "urlcode.h"

#include <stdbool.h>
#include <string.h>

int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

size_t url_unescape_in_place(char *s)
{
    char *out = s;
    for (const char *in = s; *in; in++) {
        int hi, lo;
        if (*in == '%' && (hi = hex_value(in[1])) >= 0 && (lo = hex_value(in[2])) >= 0 &&
            (hi | lo)) {
            *out++ = (char)(hi << 4 | lo);
            in += 2;
        } else {
            *out++ = *in;
        }
    }
    *out = '\0';
    return (size_t)(out - s);
}

void url_escape(sbuf *out, const char *s, const char *keep)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        bool plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                     c == '-' || c == '.' || c == '_' || c == '~' || (keep && strchr(keep, c));
        if (plain) {
            sbuf_putc(out, (char)c);
        } else {
            sbuf_putc(out, '%');
            sbuf_putc(out, hex[c >> 4]);
            sbuf_putc(out, hex[c & 15]);
        }
    }
}
