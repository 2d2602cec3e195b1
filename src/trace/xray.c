/*
 * xray — X-Ray segment documents and daemon addressing; see xray.h for the
 * span -> document mapping.
 *
 * A document is written in one pass into the caller's sbuf, field by field:
 * the shape part (segment, or subsegment with its namespace and, for an AWS
 * call, its aws object), then the parts both share (http,
 * error flags, cause, annotations, metadata); a document that comes out too
 * big for a datagram is rewound and written again without the metadata,
 * the only part not bounded by field caps. Times are formatted from the
 * integer nanoseconds (seconds "." six digits of microseconds), never via a
 * double, so no rounding creeps in at today's epoch magnitudes.
 */
#include "xray.h"

#include "core/sbuf.h"
#include "core/tracectx.h"
#include "trace/span_encode.h"
#include "util/digits.h"

#include <inttypes.h>
#include <string.h>

#define MAX_ANNOTATIONS (SPAN_MAX_ATTRS + 1) /* the attributes plus task_id */

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

/* The last attribute named key, or NULL. */
static const span_attr *find_attr(const span *s, const char *key)
{
    for (int i = span_encode_attr_count(s) - 1; i >= 0; i--)
        if (strcmp(s->attrs[i].key, key) == 0)
            return &s->attrs[i];
    return NULL;
}

static bool name_char_ok(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c && strchr(" _.:/%&#=+\\-@", c) != NULL;
}

/* Append name as an X-Ray name: allowed characters only, at most XRAY_NAME_MAX of them. */
static void put_name(sbuf *b, const char *name, const char *fallback)
{
    char out[XRAY_NAME_MAX + 1];
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)(name ? name : "");
         *p && n < XRAY_NAME_MAX; p++) {
        if (utf8_is_cont((char)*p))
            continue; /* its lead byte already became '_' */
        out[n++] = name_char_ok(*p) ? (char)*p : '_';
    }
    out[n] = '\0';
    sbuf_json_str(b, n ? out : fallback);
}

/* Append "key": seconds.micros of ns (clamped at 0). */
static void put_time(sbuf *b, const char *key, int64_t ns)
{
    int64_t us = ns > 0 ? ns / 1000 : 0;
    sbuf_printf(b, ",\"%s\":%" PRId64 ".%06" PRId64, key, us / 1000000, us % 1000000);
}

static void put_hex(sbuf *b, const char *key, const uint8_t *id, size_t n)
{
    char hex[33];
    span_hex(id, n, hex);
    sbuf_printf(b, ",\"%s\":\"%s\"", key, hex);
}

/* Append a string cut to at most max bytes without splitting a UTF-8 character. */
static void put_str_max(sbuf *b, const char *s, size_t max)
{
    size_t len = strlen(s);
    sbuf_json_strn(b, s, len > max ? utf8_cut(s, max) : len);
}

/* The value of string attribute key, or NULL when s has none (or an empty one). */
static const char *str_attr(const span *s, const char *key)
{
    const span_attr *a = find_attr(s, key);
    return a && a->type == SPAN_ATTR_STRING && a->v.s && *a->v.s ? a->v.s : NULL;
}

/* A call to an AWS API: a CLIENT or PRODUCER span with OpenTelemetry's rpc.system "aws-api". */
static bool is_aws_call(const span *s)
{
    const char *system = str_attr(s, "rpc.system");
    return (s->kind == SPAN_KIND_CLIENT || s->kind == SPAN_KIND_PRODUCER) && system &&
           strcmp(system, "aws-api") == 0;
}

/* ---- the parts ---- */

/* The aws object of an AWS call: each field the span has an attribute for. */
static void put_aws(sbuf *b, const span *s)
{
    static const char *const fields[][2] = {
        {"operation", "rpc.method"},        {"table_name", "aws.dynamodb.table_names"},
        {"queue_url", "aws.sqs.queue.url"}, {"region", "cloud.region"},
        {"request_id", "aws.request_id"},
    };
    bool first = true;
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        const char *v = str_attr(s, fields[i][1]);
        if (!v)
            continue;
        sbuf_puts(b, first ? ",\"aws\":{" : ",");
        first = false;
        sbuf_json_str(b, fields[i][0]);
        sbuf_putc(b, ':');
        put_str_max(b, v, XRAY_STRING_MAX);
    }
    if (!first)
        sbuf_putc(b, '}');
}

static void put_http(sbuf *b, const span *s, int status)
{
    const span_attr *method = find_attr(s, "http.request.method");
    const span_attr *path = find_attr(s, "url.path");
    bool have_method = method && method->type == SPAN_ATTR_STRING && method->v.s;
    bool have_path = path && path->type == SPAN_ATTR_STRING && path->v.s;
    if (!have_method && !have_path && status < 0)
        return;
    sbuf_puts(b, ",\"http\":{");
    bool first = true;
    if (have_method || have_path) {
        sbuf_puts(b, "\"request\":{");
        if (have_method) {
            sbuf_puts(b, "\"method\":");
            put_str_max(b, method->v.s, XRAY_STRING_MAX);
        }
        if (have_path) {
            sbuf_puts(b, have_method ? ",\"url\":" : "\"url\":");
            put_str_max(b, path->v.s, XRAY_STRING_MAX);
        }
        sbuf_putc(b, '}');
        first = false;
    }
    if (status >= 0)
        sbuf_printf(b, "%s\"response\":{\"status\":%d}", first ? "" : ",", status);
    sbuf_putc(b, '}');
}

/* error / throttle / fault from the HTTP status (-1: none) and the span status; then cause. */
static void put_errors(sbuf *b, const span *s, int status)
{
    bool client_error = status >= 400 && status <= 499;
    bool fault =
        (status >= 500 && status <= 599) || (s->status == SPAN_STATUS_ERROR && !client_error);
    if (client_error)
        sbuf_puts(b, ",\"error\":true");
    if (status == 429)
        sbuf_puts(b, ",\"throttle\":true");
    if (fault)
        sbuf_puts(b, ",\"fault\":true");
    if (s->status == SPAN_STATUS_ERROR && s->status_msg && *s->status_msg) {
        /* One exception per span, so the span id is unique among the trace's exceptions. */
        char hex[17];
        span_hex(s->span_id, 8, hex);
        sbuf_printf(b, ",\"cause\":{\"exceptions\":[{\"id\":\"%s\",\"message\":", hex);
        put_str_max(b, s->status_msg, XRAY_STRING_MAX);
        sbuf_puts(b, "}]}");
    }
}

/* Map key to [A-Za-z0-9_] (one '_' per other character) into out (SPAN_KEY_MAX + 1 bytes). */
static void annotation_key(const char *key, char *out)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)key; *p && n < SPAN_KEY_MAX; p++) {
        unsigned char c = *p;
        if (utf8_is_cont((char)c))
            continue;
        bool ok =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
        out[n++] = ok ? (char)c : '_';
    }
    out[n] = '\0';
}

static void put_annotations(sbuf *b, const span *s)
{
    char keys[MAX_ANNOTATIONS][SPAN_KEY_MAX + 1];
    int n = 0;
    sbuf_puts(b, ",\"annotations\":{");
    if (s->task_id[0]) {
        sbuf_puts(b, "\"task_id\":");
        put_str_max(b, s->task_id, XRAY_STRING_MAX);
        strcpy(keys[n++], "task_id");
    }
    for (int i = 0; i < span_encode_attr_count(s); i++) {
        const span_attr *a = &s->attrs[i];
        if (a->type == SPAN_ATTR_DOUBLE || span_encode_attr_shadowed(s, i) || !a->key[0])
            continue;
        char key[SPAN_KEY_MAX + 1];
        annotation_key(a->key, key);
        bool clash = false;
        for (int j = 0; j < n && !clash; j++)
            clash = strcmp(keys[j], key) == 0;
        if (clash)
            continue;
        if (n)
            sbuf_putc(b, ',');
        strcpy(keys[n++], key);
        sbuf_json_str(b, key);
        sbuf_putc(b, ':');
        if (a->type == SPAN_ATTR_STRING)
            put_str_max(b, a->v.s ? a->v.s : "", XRAY_STRING_MAX);
        else if (a->type == SPAN_ATTR_INT)
            sbuf_int(b, a->v.i);
        else
            sbuf_puts(b, a->v.b ? "true" : "false");
    }
    sbuf_putc(b, '}');
}

static void put_metadata(sbuf *b, const span *s)
{
    sbuf_puts(b, ",\"metadata\":{\"otel\":{");
    bool first = true;
    for (int i = 0; i < span_encode_attr_count(s); i++) {
        const span_attr *a = &s->attrs[i];
        if (span_encode_attr_shadowed(s, i))
            continue;
        if (!first)
            sbuf_putc(b, ',');
        first = false;
        sbuf_json_str(b, a->key);
        sbuf_putc(b, ':');
        switch (a->type) {
        case SPAN_ATTR_STRING:
            put_str_max(b, a->v.s ? a->v.s : "", XRAY_METADATA_STRING_MAX);
            break;
        case SPAN_ATTR_INT:
            sbuf_int(b, a->v.i);
            break;
        case SPAN_ATTR_DOUBLE:
            span_encode_json_double(b, a->v.d);
            break;
        case SPAN_ATTR_BOOL:
            sbuf_puts(b, a->v.b ? "true" : "false");
            break;
        }
    }
    sbuf_puts(b, "}}");
}

/* Append the document for s; metadata only when with_metadata. */
static void put_document(sbuf *b, const span *s, const char *service_name, xray_mode mode,
                         bool with_metadata)
{
    bool has_parent = span_has_parent(s);
    bool segment = !has_parent || (s->kind == SPAN_KIND_SERVER && mode == XRAY_SEGMENTS);
    bool aws_call = !segment && is_aws_call(s);
    const char *aws_service = aws_call ? str_attr(s, "rpc.service") : NULL;

    sbuf_puts(b, "{\"name\":");
    if (segment)
        put_name(b, service_name, "unknown_service");
    else
        put_name(b, aws_service ? aws_service : s->name, "unknown");
    put_hex(b, "id", s->span_id, 8);
    char trace_id[TRACECTX_XRAY_ID_LEN + 1];
    tracectx_xray_trace_id(s->trace_id, trace_id);
    sbuf_printf(b, ",\"trace_id\":\"%s\"", trace_id);
    put_time(b, "start_time", s->start_ns);
    if (s->end_ns > 0)
        put_time(b, "end_time", s->end_ns);
    else
        sbuf_puts(b, ",\"in_progress\":true");
    if (has_parent)
        put_hex(b, "parent_id", s->parent_id, 8);
    if (!segment) {
        sbuf_puts(b, ",\"type\":\"subsegment\"");
        if (aws_call) {
            sbuf_puts(b, ",\"namespace\":\"aws\"");
            put_aws(b, s);
        } else if (s->kind == SPAN_KIND_CLIENT || s->kind == SPAN_KIND_PRODUCER) {
            sbuf_puts(b, ",\"namespace\":\"remote\"");
        }
    }

    const span_attr *code = find_attr(s, "http.response.status_code");
    int status = -1;
    if (code && code->type == SPAN_ATTR_INT && code->v.i >= 100 && code->v.i <= 999)
        status = (int)code->v.i;
    put_http(b, s, status);
    put_errors(b, s, status);
    put_annotations(b, s);
    if (with_metadata)
        put_metadata(b, s);
    sbuf_putc(b, '}');
}

bool xray_segment_encode(sbuf *b, const span *s, const char *service_name, xray_mode mode)
{
    if (!b || !s || all_zero(s->trace_id, 16) || all_zero(s->span_id, 8))
        return false;
    size_t start = b->len;
    put_document(b, s, service_name, mode, true);
    if (!sbuf_failed(b) && b->len - start > XRAY_DOC_MAX) {
        /* Too big for one datagram: send it without the metadata (everything else is capped). */
        b->len = start;
        b->data[start] = '\0';
        put_document(b, s, service_name, mode, false);
    }
    return !sbuf_failed(b);
}

void xray_datagram(sbuf *b, const char *doc)
{
    sbuf_puts(b, "{\"format\": \"json\", \"version\": 1}\n");
    if (doc)
        sbuf_puts(b, doc);
}

/* ---- daemon address ---- */

/* Parse [s, s + len) as host:port or [v6]:port into host/port; false when malformed. */
static bool parse_host_port(const char *s, size_t len, char *host, size_t hostlen, int *port)
{
    const char *h = s, *colon;
    size_t hlen;
    if (len && s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (!close || close + 1 >= s + len || close[1] != ':')
            return false;
        h = s + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = memchr(s, ':', len);
        if (!colon)
            return false;
        hlen = (size_t)(colon - s);
        if (memchr(colon + 1, ':', len - hlen - 1))
            return false; /* a bare IPv6 address is ambiguous; it needs brackets */
    }
    const char *p = colon + 1;
    size_t plen = len - (size_t)(p - s);
    long v;
    if (hlen == 0 || hlen >= hostlen || !digits_parse(p, plen, 1, 65535, &v))
        return false;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = (int)v;
    return true;
}

bool xray_daemon_address(const char *env, char *host, size_t hostlen, int *port)
{
    if (!host || !port || hostlen == 0)
        return false;
    const char *udp = NULL, *plain = NULL;
    size_t udp_len = 0, plain_len = 0;
    bool any = false;
    for (const char *p = env ? env : ""; *p;) {
        if (str_is_ws(*p)) {
            p++;
            continue;
        }
        const char *t = p;
        while (*p && !str_is_ws(*p))
            p++;
        size_t tlen = (size_t)(p - t);
        any = true;
        if (tlen >= 4 && memcmp(t, "udp:", 4) == 0) {
            if (udp)
                return false;
            udp = t + 4;
            udp_len = tlen - 4;
        } else if (tlen >= 4 && memcmp(t, "tcp:", 4) == 0) {
            continue; /* the sampling address; not used for sending documents */
        } else {
            if (plain)
                return false;
            plain = t;
            plain_len = tlen;
        }
    }
    if (!any) {
        if (hostlen <= strlen(XRAY_DEFAULT_HOST))
            return false;
        strcpy(host, XRAY_DEFAULT_HOST);
        *port = XRAY_DEFAULT_PORT;
        return true;
    }
    if (udp && plain)
        return false;
    if (udp)
        return parse_host_port(udp, udp_len, host, hostlen, port);
    if (plain)
        return parse_host_port(plain, plain_len, host, hostlen, port);
    return false; /* only a tcp part */
}
