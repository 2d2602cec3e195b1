/*
 * tracectx — W3C traceparent and tracestate, and X-Ray trace header parsing and formatting;
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

/* ---- W3C tracestate ---- */

#define TS_KEY_MAX    256 /* a key's first character and up to 255 more */
#define TS_VALUE_MAX  256
#define TS_LONG_ENTRY 128 /* entries longer than this are the first to go when truncating */

typedef struct ts_member {
    const char *s; /* key=value, len characters */
    size_t len, key_len;
} ts_member;

/* A key's first character: a lowercase letter or a digit. */
static bool ts_key_first(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool ts_key_char(char c)
{
    return ts_key_first(c) || c == '_' || c == '-' || c == '*' || c == '/' || c == '@';
}

/* Check one trimmed, non-empty member [s, s + len) and note where its key ends. */
static bool ts_member_ok(const char *s, size_t len, size_t *key_len)
{
    const char *eq = memchr(s, '=', len);
    if (!eq)
        return false;
    size_t klen = (size_t)(eq - s), vlen = len - klen - 1;
    if (klen == 0 || klen > TS_KEY_MAX || !ts_key_first(s[0]))
        return false;
    for (size_t i = 1; i < klen; i++)
        if (!ts_key_char(s[i]))
            return false;
    const char *v = eq + 1;
    if (vlen == 0 || vlen > TS_VALUE_MAX || v[vlen - 1] == ' ')
        return false;
    for (size_t i = 0; i < vlen; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c < 0x20 || c > 0x7e || c == ',' || c == '=')
            return false;
    }
    *key_len = klen;
    return true;
}

/* Add the members of one header value to m (*n so far); false when the list is invalid. */
static bool ts_split(const char *value, ts_member *m, size_t *n)
{
    const char *p = value;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        const char *s = p;
        trim(&s, &len);
        if (len) {
            size_t key_len;
            if (*n == TRACECTX_TRACESTATE_MEMBERS || !ts_member_ok(s, len, &key_len))
                return false;
            for (size_t i = 0; i < *n; i++)
                if (m[i].key_len == key_len && memcmp(m[i].s, s, key_len) == 0)
                    return false; /* a key twice */
            m[(*n)++] = (ts_member){s, len, key_len};
        }
        if (!comma)
            return true;
        p = comma + 1;
    }
}

/* The length of the members joined by ','. */
static size_t ts_joined_len(const ts_member *m, size_t n)
{
    size_t total = n ? n - 1 : 0;
    for (size_t i = 0; i < n; i++)
        total += m[i].len;
    return total;
}

/* Drop the right-most member longer than min (0: any); false when there is none. */
static bool ts_drop_right(ts_member *m, size_t *n, size_t min)
{
    for (size_t i = *n; i-- > 0;) {
        if (m[i].len > min) {
            memmove(m + i, m + i + 1, (*n - i - 1) * sizeof *m);
            (*n)--;
            return true;
        }
    }
    return false;
}

bool tracectx_parse_tracestate(const char *const *values, size_t n,
                               char out[TRACECTX_TRACESTATE_MAX + 1])
{
    if (!out)
        return false;
    out[0] = '\0';
    if (!values)
        return false;
    ts_member m[TRACECTX_TRACESTATE_MEMBERS];
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        if (values[i] && !ts_split(values[i], m, &count))
            return false;
    while (ts_joined_len(m, count) > TRACECTX_TRACESTATE_MAX &&
           ts_drop_right(m, &count, TS_LONG_ENTRY))
        ;
    while (ts_joined_len(m, count) > TRACECTX_TRACESTATE_MAX)
        ts_drop_right(m, &count, 0);
    size_t len = 0;
    for (size_t i = 0; i < count; i++) {
        if (i)
            out[len++] = ',';
        memcpy(out + len, m[i].s, m[i].len);
        len += m[i].len;
    }
    out[len] = '\0';
    return count > 0;
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

trace_source tracectx_from_headers(const char *traceparent, const char *xray, trace_ctx *out)
{
    if (!out)
        return TRACECTX_NONE;
    if (tracectx_parse_traceparent(traceparent, out))
        return TRACECTX_W3C;
    return tracectx_parse_xray(xray, out) ? TRACECTX_XRAY : TRACECTX_NONE;
}
