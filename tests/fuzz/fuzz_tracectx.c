/*
 * fuzz_tracectx — the trace context headers every request may carry
 * (core/tracectx.h): W3C traceparent and tracestate, and AWS X-Amzn-Trace-Id.
 *
 * Input: "<traceparent>\n<X-Amzn-Trace-Id>" (split at the first newline; no
 * newline: the whole input is tried as both). Each is parsed alone and the
 * pair through tracectx_from_headers.
 *
 * Invariants: a parsed context has a non-zero trace id and only known flag
 * bits; traceparent: non-zero span id, and format -> parse gives the same
 * context (55 characters); X-Ray: format -> parse gives the same ids and
 * sampled bit, and so does a traceparent's context written as X-Ray; a
 * traceparent is taken exactly when W3C's rules, read apart from the parser
 * (traceparent_valid()), take it, and its ids are the ones written;
 * from_headers picks traceparent when valid, else X-Ray, else nothing, and
 * leaves *out alone on failure. tracestate (the whole input as one value,
 * and its lines as several): at most 512 characters and 32 members, no
 * whitespace around commas, no empty member, "" when dropped, and its normal
 * form parses back to itself.
 *
 * Run: scripts/fuzz.sh tracectx   (corpus: tests/fuzz/corpus/tracectx/)
 */
#include "fuzz_util.h"

#include "core/tracectx.h"

static bool zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

static bool same(const trace_ctx *a, const trace_ctx *b)
{
    return memcmp(a->trace_id, b->trace_id, 16) == 0 && memcmp(a->span_id, b->span_id, 8) == 0 &&
           a->flags == b->flags;
}

static void check_xray_round_trip(const trace_ctx *c, const char *from)
{
    char x[TRACECTX_XRAY_MAX];
    size_t n = tracectx_format_xray(c, x, sizeof x);
    FUZZ_CHECK(n > 0 && n == strlen(x), "format_xray gave %zu for %s", n, from);
    trace_ctx back;
    FUZZ_CHECK(tracectx_parse_xray(x, &back), "own X-Ray header %s rejected (from %s)", x, from);
    FUZZ_CHECK(memcmp(back.trace_id, c->trace_id, 16) == 0 &&
                   memcmp(back.span_id, c->span_id, 8) == 0 &&
                   (back.flags & TRACECTX_FLAG_SAMPLED) == (c->flags & TRACECTX_FLAG_SAMPLED),
               "X-Ray round trip changed %s (via %s)", from, x);
    char tiny[8];
    FUZZ_CHECK(tracectx_format_xray(c, tiny, sizeof tiny) == 0 && tiny[0] == '\0',
               "format_xray into a small buffer");
    char id[36];
    tracectx_xray_trace_id(c->trace_id, id);
    FUZZ_CHECK(strlen(id) == 35 && strncmp(id, "1-", 2) == 0, "xray trace id %s", id);
}

/* n lowercase hex digits at s */
static bool lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* n '0's at s */
static bool zero_hex(const char *s, size_t n)
{
    return strspn(s, "0") >= n;
}

/*
 * W3C's traceparent, read on its own: past spaces and tabs at either end, version "-" trace-id
 * "-" parent-id "-" flags, each lowercase hex of 2, 32, 16 and 2 digits, the version not ff and
 * neither id all zero; version 00 ends there, a higher one ends there or goes on after a '-'.
 */
static bool traceparent_valid(const char *h)
{
    h += strspn(h, " \t");
    size_t len = strlen(h);
    while (len && (h[len - 1] == ' ' || h[len - 1] == '\t'))
        len--;
    if (len < TRACECTX_TRACEPARENT_LEN || !lower_hex(h, 2) || strncmp(h, "ff", 2) == 0 ||
        h[2] != '-' || !lower_hex(h + 3, 32) || h[35] != '-' || !lower_hex(h + 36, 16) ||
        h[52] != '-' || !lower_hex(h + 53, 2) || zero_hex(h + 3, 32) || zero_hex(h + 36, 16))
        return false;
    if (strncmp(h, "00", 2) == 0)
        return len == TRACECTX_TRACEPARENT_LEN;
    return len == TRACECTX_TRACEPARENT_LEN || h[TRACECTX_TRACEPARENT_LEN] == '-';
}

static bool check_traceparent(const char *h, trace_ctx *out)
{
    bool valid = traceparent_valid(h);
    trace_ctx c;
    memset(&c, 0x5A, sizeof c);
    trace_ctx before = c;
    if (!tracectx_parse_traceparent(h, &c)) {
        FUZZ_CHECK(!valid, "valid traceparent refused: %s", h);
        FUZZ_CHECK(same(&c, &before), "failed parse wrote *out");
        return false;
    }
    FUZZ_CHECK(valid, "invalid traceparent taken: %s", h);
    FUZZ_CHECK(!zero(c.trace_id, 16) && !zero(c.span_id, 8), "zero id accepted: %s", h);
    FUZZ_CHECK((c.flags & ~TRACECTX_FLAGS_KNOWN) == 0, "unknown flags kept: %s", h);
    char tp[56];
    tracectx_format_traceparent(&c, tp);
    FUZZ_CHECK(strlen(tp) == TRACECTX_TRACEPARENT_LEN, "formatted %s", tp);
    /* the ids as written, between the version and the flags */
    FUZZ_CHECK(strncmp(tp + 2, h + strspn(h, " \t") + 2, 51) == 0, "ids of %s read as %s", h, tp);
    trace_ctx back;
    FUZZ_CHECK(tracectx_parse_traceparent(tp, &back) && same(&back, &c),
               "traceparent round trip: %s -> %s", h, tp);
    check_xray_round_trip(&c, h);
    *out = c;
    return true;
}

static bool check_xray(const char *h, trace_ctx *out)
{
    trace_ctx c;
    memset(&c, 0x5A, sizeof c);
    trace_ctx before = c;
    if (!tracectx_parse_xray(h, &c)) {
        FUZZ_CHECK(same(&c, &before), "failed parse wrote *out");
        return false;
    }
    FUZZ_CHECK(!zero(c.trace_id, 16), "zero root accepted: %s", h);
    FUZZ_CHECK((c.flags & ~TRACECTX_FLAGS_KNOWN) == 0, "unknown flags kept: %s", h);
    check_xray_round_trip(&c, h);
    *out = c;
    return true;
}

static void check_tracestate(const char *const *values, size_t n)
{
    char out[TRACECTX_TRACESTATE_MAX + 1];
    memset(out, 'x', sizeof out);
    if (!tracectx_parse_tracestate(values, n, out)) {
        FUZZ_CHECK(out[0] == '\0', "dropped tracestate left %.40s", out);
        return;
    }
    size_t len = strlen(out);
    FUZZ_CHECK(len > 0 && len <= TRACECTX_TRACESTATE_MAX, "tracestate of %zu", len);
    FUZZ_CHECK(out[0] != ',' && out[len - 1] != ',' && !strstr(out, ",,"), "empty member: %s", out);
    FUZZ_CHECK(!strstr(out, " ,"), "space before a comma: %s", out);
    FUZZ_CHECK(!strchr(out, '\t') && !strstr(out, ", "), "whitespace kept: %s", out);
    size_t members = 1;
    for (const char *p = out; *p; p++)
        members += *p == ',';
    FUZZ_CHECK(members <= TRACECTX_TRACESTATE_MEMBERS, "%zu members", members);
    char again[TRACECTX_TRACESTATE_MAX + 1];
    const char *one[] = {out};
    FUZZ_CHECK(tracectx_parse_tracestate(one, 1, again) && strcmp(again, out) == 0,
               "normal form %s did not parse back to itself", out);
}

/* text as one tracestate value, then split at its newlines as several */
static void check_tracestates(const char *text)
{
    const char *one[] = {text};
    check_tracestate(one, 1);
    char *copy = strdup(text);
    if (!copy)
        return;
    const char *lines[8];
    size_t n = 0;
    for (char *p = copy; p && n < sizeof lines / sizeof lines[0];) {
        lines[n++] = p;
        p = strchr(p, '\n');
        if (p)
            *p++ = '\0';
    }
    check_tracestate(lines, n);
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_strdup(data, size);
    check_tracestates(text);
    char *nl = strchr(text, '\n');
    const char *tp = text, *xr = text;
    if (nl) {
        *nl = '\0';
        xr = nl + 1;
    }
    trace_ctx a, b, got;
    bool ta = check_traceparent(tp, &a);
    bool tb = check_xray(xr, &b);
    memset(&got, 0x33, sizeof got);
    trace_ctx before = got;
    bool ok = tracectx_from_headers(tp, xr, &got);
    FUZZ_CHECK(ok == (ta || tb), "from_headers %d, traceparent %d, xray %d", ok, ta, tb);
    if (ta)
        FUZZ_CHECK(same(&got, &a), "from_headers did not take the traceparent");
    else if (tb)
        FUZZ_CHECK(same(&got, &b), "from_headers did not take the X-Ray header");
    else
        FUZZ_CHECK(same(&got, &before), "failed from_headers wrote *out");
    if (!nl) {
        trace_ctx c;
        check_xray(text, &c);
    }
    FUZZ_CHECK(!tracectx_from_headers(NULL, NULL, &got), "no headers gave a context");
    free(text);
    return 0;
}
