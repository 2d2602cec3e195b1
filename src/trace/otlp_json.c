/*
 * otlp_json — the OTLP/HTTP JSON encoder; see otlp_json.h for the mapping.
 *
 * The text is written straight into the caller's sbuf in one pass (no JSON
 * tree is built): sbuf's sticky failure flag means only the final result
 * needs checking. Strings go through sbuf_json_str, so keys and values are
 * escaped exactly once; ids are hex-encoded with span_hex.
 */
#include "otlp_json.h"

#include "trace/span_encode.h"

#include <inttypes.h>

/* Append a 64-bit value as OTLP JSON wants it: a string of decimal digits. */
static void put_u64_str(sbuf *b, uint64_t v)
{
    sbuf_printf(b, "\"%" PRIu64 "\"", v);
}

/* Nanosecond times are fixed64 on the wire; a negative time (never valid) is sent as 0. */
static void put_time(sbuf *b, int64_t ns)
{
    put_u64_str(b, ns > 0 ? (uint64_t)ns : 0);
}

static void put_hex_id(sbuf *b, const char *key, const uint8_t *id, size_t n)
{
    char hex[33];
    span_hex(id, n, hex);
    sbuf_printf(b, "\"%s\":\"%s\"", key, hex);
}

/* One KeyValue with a string value. */
static void put_str_kv(sbuf *b, const char *key, const char *value)
{
    sbuf_puts(b, "{\"key\":");
    sbuf_json_str(b, key);
    sbuf_puts(b, ",\"value\":{\"stringValue\":");
    sbuf_json_str(b, value);
    sbuf_puts(b, "}}");
}

static void put_attr(sbuf *b, const span_attr *a)
{
    sbuf_puts(b, "{\"key\":");
    sbuf_json_str(b, a->key);
    sbuf_puts(b, ",\"value\":{");
    switch (a->type) {
    case SPAN_ATTR_STRING:
        sbuf_puts(b, "\"stringValue\":");
        sbuf_json_str(b, a->v.s ? a->v.s : "");
        break;
    case SPAN_ATTR_INT:
        sbuf_printf(b, "\"intValue\":\"%" PRId64 "\"", a->v.i);
        break;
    case SPAN_ATTR_DOUBLE:
        sbuf_puts(b, "\"doubleValue\":");
        span_encode_json_double(b, a->v.d);
        break;
    case SPAN_ATTR_BOOL:
        sbuf_puts(b, a->v.b ? "\"boolValue\":true" : "\"boolValue\":false");
        break;
    }
    sbuf_puts(b, "}}");
}

static void put_resource(sbuf *b, const otlp_resource *r)
{
    sbuf_puts(b, "\"resource\":{\"attributes\":[");
    bool first = true;
    if (r && r->service_name && *r->service_name) {
        put_str_kv(b, "service.name", r->service_name);
        first = false;
    }
    if (r && r->service_version && *r->service_version) {
        if (!first)
            sbuf_putc(b, ',');
        put_str_kv(b, "service.version", r->service_version);
        first = false;
    }
    for (size_t i = 0; r && i < r->n_attrs; i++) {
        if (!otlp_resource_attr_used(r, i))
            continue;
        if (!first)
            sbuf_putc(b, ',');
        put_str_kv(b, r->attr_keys[i], r->attr_values[i]);
        first = false;
    }
    sbuf_puts(b, "]}");
}

static void put_span(sbuf *b, const span *s)
{
    sbuf_putc(b, '{');
    put_hex_id(b, "traceId", s->trace_id, 16);
    sbuf_putc(b, ',');
    put_hex_id(b, "spanId", s->span_id, 8);
    if (s->trace_state) {
        sbuf_puts(b, ",\"traceState\":");
        sbuf_json_str(b, s->trace_state);
    }
    if (span_has_parent(s)) {
        sbuf_putc(b, ',');
        put_hex_id(b, "parentSpanId", s->parent_id, 8);
    }
    sbuf_printf(b, ",\"flags\":%u,\"name\":", (unsigned)s->flags);
    sbuf_json_str(b, s->name);
    int kind = (int)s->kind;
    if (kind < SPAN_KIND_INTERNAL || kind > SPAN_KIND_CONSUMER)
        kind = 0; /* SPAN_KIND_UNSPECIFIED */
    sbuf_printf(b, ",\"kind\":%d,\"startTimeUnixNano\":", kind);
    put_time(b, s->start_ns);
    sbuf_puts(b, ",\"endTimeUnixNano\":");
    put_time(b, s->end_ns);

    sbuf_puts(b, ",\"attributes\":[");
    bool first = true;
    for (int i = 0; i < span_encode_attr_count(s); i++) {
        if (span_encode_attr_shadowed(s, i))
            continue;
        if (!first)
            sbuf_putc(b, ',');
        put_attr(b, &s->attrs[i]);
        first = false;
    }
    sbuf_putc(b, ']');
    if (s->dropped_attrs)
        sbuf_printf(b, ",\"droppedAttributesCount\":%" PRIu32, s->dropped_attrs);

    if (s->n_links > 0) {
        sbuf_puts(b, ",\"links\":[");
        for (int i = 0; i < s->n_links && i < SPAN_MAX_LINKS; i++) {
            sbuf_puts(b, i ? ",{" : "{");
            put_hex_id(b, "traceId", s->links[i].trace_id, 16);
            sbuf_putc(b, ',');
            put_hex_id(b, "spanId", s->links[i].span_id, 8);
            sbuf_putc(b, '}');
        }
        sbuf_putc(b, ']');
    }
    if (s->dropped_links)
        sbuf_printf(b, ",\"droppedLinksCount\":%" PRIu32, s->dropped_links);

    int code = (int)s->status;
    if (code < SPAN_STATUS_UNSET || code > SPAN_STATUS_ERROR)
        code = SPAN_STATUS_UNSET;
    const char *msg = code == SPAN_STATUS_ERROR && s->status_msg ? s->status_msg : "";
    sbuf_printf(b, ",\"status\":{\"code\":%d,\"message\":", code);
    sbuf_json_str(b, msg);
    sbuf_puts(b, "}}");
}

bool otlp_json_encode(sbuf *b, const span *spans, size_t n, const otlp_resource *r)
{
    return otlp_json_encode_sized(b, spans, n, r, NULL);
}

bool otlp_json_encode_sized(sbuf *b, const span *spans, size_t n, const otlp_resource *r,
                            size_t *sizes)
{
    if (!b || (!spans && n > 0))
        return false;
    if (n == 0) {
        sbuf_puts(b, "{\"resourceSpans\":[]}");
        return !sbuf_failed(b);
    }
    sbuf_puts(b, "{\"resourceSpans\":[{");
    put_resource(b, r);
    sbuf_puts(b, ",\"scopeSpans\":[{\"scope\":{\"name\":");
    sbuf_json_str(b, OTLP_SCOPE_NAME);
    if (*OTLP_SCOPE_VERSION) {
        sbuf_puts(b, ",\"version\":");
        sbuf_json_str(b, OTLP_SCOPE_VERSION);
    }
    sbuf_puts(b, "},\"spans\":[");
    for (size_t i = 0; i < n && !sbuf_failed(b); i++) {
        size_t from = b->len;
        if (i)
            sbuf_putc(b, ',');
        put_span(b, &spans[i]);
        if (sizes)
            sizes[i] = b->len - from;
    }
    sbuf_puts(b, "]}]}]}");
    return !sbuf_failed(b);
}
