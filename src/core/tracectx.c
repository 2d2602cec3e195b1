/*
 * tracectx — W3C traceparent and X-Ray trace header parsing and formatting;
 * see tracectx.h for the rules taken from tracing.md §1, §2, §6 and §7.
 *
 * Parsers work on a trimmed view of the input and decode into a local
 * trace_ctx, copying it out only when every check has passed, so a failed
 * parse never leaves half a context behind.
 */
#include "tracectx.h"

#include "urlcode.h"

#include <string.h>

static const char hexdigits[] = "0123456789abcdef";

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* The value of one hex digit, -1 if c is not one; uppercase only when allowed. */
static int hexval(char c, bool upper_ok)
{
    return upper_ok || !(c >= 'A' && c <= 'F') ? hex_value(c) : -1;
}

/* Decode 2n hex digits at s into n bytes; false on any non-hex digit. */
static bool hex_decode(const char *s, size_t n, uint8_t *out, bool upper_ok)
{
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(s[2 * i], upper_ok), lo = hexval(s[2 * i + 1], upper_ok);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

static void hex_encode(const uint8_t *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hexdigits[in[i] >> 4];
        out[2 * i + 1] = hexdigits[in[i] & 15];
    }
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

/* Narrow [*s, *s + *len) past spaces and tabs on both ends. */
static void trim(const char **s, size_t *len)
{
    while (*len && is_ows(**s)) {
        (*s)++;
        (*len)--;
    }
    while (*len && is_ows((*s)[*len - 1]))
        (*len)--;
}

/* ---- W3C traceparent ---- */

bool tracectx_parse_traceparent(const char *header, trace_ctx *out)
{
    if (!header || !out)
        return false;
    const char *s = header;
    size_t len = strlen(header);
    trim(&s, &len);
    if (len < TRACECTX_TRACEPARENT_LEN)
        return false;

    uint8_t version;
    if (!hex_decode(s, 1, &version, false) || version == 0xff || s[2] != '-')
        return false;
    /* Version 00 is exactly 55 characters; a higher version may add fields after a '-'. */
    if (version == 0 && len != TRACECTX_TRACEPARENT_LEN)
        return false;
    if (len > TRACECTX_TRACEPARENT_LEN && s[TRACECTX_TRACEPARENT_LEN] != '-')
        return false;

    trace_ctx c = {0};
    uint8_t flags;
    if (!hex_decode(s + 3, 16, c.trace_id, false) || s[35] != '-' ||
        !hex_decode(s + 36, 8, c.span_id, false) || s[52] != '-' ||
        !hex_decode(s + 53, 1, &flags, false))
        return false;
    if (all_zero(c.trace_id, 16) || all_zero(c.span_id, 8))
        return false;
    c.flags = flags & TRACECTX_FLAGS_KNOWN;
    *out = c;
    return true;
}

void tracectx_format_traceparent(const trace_ctx *c, char out[56])
{
    uint8_t flags = c->flags & TRACECTX_FLAGS_KNOWN;
    memcpy(out, "00-", 3);
    hex_encode(c->trace_id, 16, out + 3);
    out[35] = '-';
    hex_encode(c->span_id, 8, out + 36);
    out[52] = '-';
    hex_encode(&flags, 1, out + 53);
    out[55] = '\0';
}

/* ---- X-Ray ---- */

/* Parse "1-<8 hex>-<24 hex>" (exactly len characters) into 16 bytes. */
static bool parse_xray_root(const char *s, size_t len, uint8_t out[16])
{
    if (len != TRACECTX_XRAY_ID_LEN || s[0] != '1' || s[1] != '-' || s[10] != '-')
        return false;
    return hex_decode(s + 2, 4, out, true) && hex_decode(s + 11, 12, out + 4, true);
}

/* True when [s, s + len) is exactly the NUL-terminated word w. */
static bool equals(const char *s, size_t len, const char *w)
{
    return strlen(w) == len && memcmp(s, w, len) == 0;
}

bool tracectx_parse_xray(const char *header, trace_ctx *out)
{
    if (!header || !out)
        return false;
    trace_ctx c = {0};
    bool have_root = false;
    const char *p = header;
    for (;;) {
        const char *end = strchr(p, ';');
        size_t plen = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', plen);
        if (eq) {
            const char *key = p, *val = eq + 1;
            size_t klen = (size_t)(eq - p), vlen = plen - klen - 1;
            trim(&key, &klen);
            trim(&val, &vlen);
            if (equals(key, klen, "Root")) {
                if (!parse_xray_root(val, vlen, c.trace_id) || all_zero(c.trace_id, 16))
                    return false;
                have_root = true;
            } else if (equals(key, klen, "Parent")) {
                if (vlen != 16 || !hex_decode(val, 8, c.span_id, true))
                    return false;
            } else if (equals(key, klen, "Sampled")) {
                if (equals(val, vlen, "1"))
                    c.flags |= TRACECTX_FLAG_SAMPLED;
                else
                    c.flags &= (uint8_t)~TRACECTX_FLAG_SAMPLED;
            }
            /* Lineage, Self and anything else: not ours to interpret. */
        }
        if (!end)
            break;
        p = end + 1;
    }
    if (!have_root)
        return false;
    *out = c;
    return true;
}

void tracectx_xray_trace_id(const uint8_t trace_id[16], char out[36])
{
    out[0] = '1';
    out[1] = '-';
    hex_encode(trace_id, 4, out + 2);
    out[10] = '-';
    hex_encode(trace_id + 4, 12, out + 11);
    out[35] = '\0';
}

size_t tracectx_format_xray(const trace_ctx *c, char *out, size_t outlen)
{
    char buf[TRACECTX_XRAY_MAX];
    size_t n = 0;
    memcpy(buf, "Root=", 5);
    n += 5;
    tracectx_xray_trace_id(c->trace_id, buf + n);
    n += TRACECTX_XRAY_ID_LEN;
    if (!all_zero(c->span_id, 8)) {
        memcpy(buf + n, ";Parent=", 8);
        n += 8;
        hex_encode(c->span_id, 8, buf + n);
        n += 16;
    }
    memcpy(buf + n, ";Sampled=", 9);
    n += 9;
    buf[n++] = (c->flags & TRACECTX_FLAG_SAMPLED) ? '1' : '0';
    buf[n] = '\0';
    if (n >= outlen) {
        if (outlen)
            out[0] = '\0';
        return 0;
    }
    memcpy(out, buf, n + 1);
    return n;
}

/* ---- ids and precedence ---- */

void tracectx_new_trace_id(uint8_t out[16], uint32_t unix_seconds, const uint8_t rnd[12])
{
    out[0] = (uint8_t)(unix_seconds >> 24);
    out[1] = (uint8_t)(unix_seconds >> 16);
    out[2] = (uint8_t)(unix_seconds >> 8);
    out[3] = (uint8_t)unix_seconds;
    memcpy(out + 4, rnd, 12);
}

bool tracectx_from_headers(const char *traceparent, const char *xray, trace_ctx *out)
{
    if (!out)
        return false;
    return tracectx_parse_traceparent(traceparent, out) || tracectx_parse_xray(xray, out);
}
