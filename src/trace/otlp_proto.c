/*
 * otlp_proto — the OTLP protobuf encoder; see otlp_proto.h.
 *
 * protobuf-c packs from a tree of its generated structs. The tree for a
 * batch is built in three allocations — one frame per span (the Span, its
 * Status, its attribute and link structs and the pointer arrays protobuf-c
 * wants), one array of Span pointers, and one block for the resource
 * attributes — all pointing into the spans and the resource, which outlive
 * the call. protobuf-c only reads through those (non-const) pointers, so
 * the casts that drop const are safe.
 */
#include "otlp_proto.h"

#include "trace.pb-c.h"
#include "trace/span_encode.h"

#include <stdlib.h>
#include <string.h>

typedef Opentelemetry__Proto__Trace__V1__ExportTraceServiceRequest pb_request;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans pb_resource_spans;
typedef Opentelemetry__Proto__Trace__V1__Resource pb_resource;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans pb_scope_spans;
typedef Opentelemetry__Proto__Trace__V1__InstrumentationScope pb_scope;
typedef Opentelemetry__Proto__Trace__V1__Span pb_span;
typedef Opentelemetry__Proto__Trace__V1__Span__Link pb_link;
typedef Opentelemetry__Proto__Trace__V1__Status pb_status;
typedef Opentelemetry__Proto__Trace__V1__KeyValue pb_kv;
typedef Opentelemetry__Proto__Trace__V1__AnyValue pb_any;

/* Everything one span needs, in one piece. */
typedef struct span_frame {
    pb_span span;
    pb_status status;
    pb_kv *kv_ptrs[SPAN_MAX_ATTRS];
    pb_kv kvs[SPAN_MAX_ATTRS];
    pb_any values[SPAN_MAX_ATTRS];
    pb_link *link_ptrs[SPAN_MAX_LINKS];
    pb_link links[SPAN_MAX_LINKS];
} span_frame;

/* The resource's key/value pairs: service.name, service.version and the extras. */
typedef struct resource_frame {
    pb_kv **kv_ptrs;
    pb_kv *kvs;
    pb_any *values;
    size_t n;
} resource_frame;

static const pb_kv kv_init = OPENTELEMETRY__PROTO__TRACE__V1__KEY_VALUE__INIT;
static const pb_any any_init = OPENTELEMETRY__PROTO__TRACE__V1__ANY_VALUE__INIT;

static ProtobufCBinaryData bytes(const uint8_t *p, size_t n)
{
    return (ProtobufCBinaryData){.len = n, .data = (uint8_t *)p};
}

/* Point kv/value at a string key/value pair and return kv. */
static pb_kv *string_kv(pb_kv *kv, pb_any *value, const char *key, const char *s)
{
    *value = any_init;
    value->value_case = OPENTELEMETRY__PROTO__TRACE__V1__ANY_VALUE__VALUE_STRING_VALUE;
    value->string_value = (char *)s;
    *kv = kv_init;
    kv->key = (char *)key;
    kv->value = value;
    return kv;
}

static pb_kv *attr_kv(pb_kv *kv, pb_any *value, const span_attr *a)
{
    *value = any_init;
    switch (a->type) {
    case SPAN_ATTR_STRING:
        value->value_case = OPENTELEMETRY__PROTO__TRACE__V1__ANY_VALUE__VALUE_STRING_VALUE;
        value->string_value = a->v.s ? a->v.s : (char *)"";
        break;
    case SPAN_ATTR_INT:
        value->value_case = OPENTELEMETRY__PROTO__TRACE__V1__ANY_VALUE__VALUE_INT_VALUE;
        value->int_value = a->v.i;
        break;
    case SPAN_ATTR_DOUBLE:
        value->value_case = OPENTELEMETRY__PROTO__TRACE__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
        value->double_value = a->v.d;
        break;
    case SPAN_ATTR_BOOL:
        value->value_case = OPENTELEMETRY__PROTO__TRACE__V1__ANY_VALUE__VALUE_BOOL_VALUE;
        value->bool_value = a->v.b;
        break;
    }
    *kv = kv_init;
    kv->key = (char *)a->key;
    kv->value = value;
    return kv;
}

/* Fill f from s; f->span then refers to s and to f's own members. */
static void build_span(span_frame *f, const span *s)
{
    static const pb_span span_init = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT;
    static const pb_status status_init = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__INIT;
    static const pb_link link_init = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__LINK__INIT;
    pb_span *p = &f->span;
    *p = span_init;
    p->trace_id = bytes(s->trace_id, 16);
    p->span_id = bytes(s->span_id, 8);
    if (s->trace_state)
        p->trace_state = s->trace_state;
    if (span_has_parent(s))
        p->parent_span_id = bytes(s->parent_id, 8);
    p->flags = s->flags;
    p->name = (char *)s->name;
    int kind = (int)s->kind;
    if (kind < SPAN_KIND_INTERNAL || kind > SPAN_KIND_CONSUMER)
        kind = 0; /* SPAN_KIND_UNSPECIFIED */
    p->kind = (Opentelemetry__Proto__Trace__V1__Span__SpanKind)kind;
    p->start_time_unix_nano = s->start_ns > 0 ? (uint64_t)s->start_ns : 0;
    p->end_time_unix_nano = s->end_ns > 0 ? (uint64_t)s->end_ns : 0;

    int n_attrs = span_encode_attr_count(s);
    for (int i = 0; i < n_attrs; i++) {
        if (span_encode_attr_shadowed(s, i))
            continue;
        f->kv_ptrs[p->n_attributes] =
            attr_kv(&f->kvs[p->n_attributes], &f->values[p->n_attributes], &s->attrs[i]);
        p->n_attributes++;
    }
    p->attributes = f->kv_ptrs;
    p->dropped_attributes_count = s->dropped_attrs;

    int n_links = s->n_links < SPAN_MAX_LINKS ? s->n_links : SPAN_MAX_LINKS;
    for (int i = 0; i < n_links; i++) {
        pb_link *l = &f->links[i];
        *l = link_init;
        l->trace_id = bytes(s->links[i].trace_id, 16);
        l->span_id = bytes(s->links[i].span_id, 8);
        f->link_ptrs[i] = l;
    }
    p->n_links = n_links > 0 ? (size_t)n_links : 0;
    p->links = f->link_ptrs;
    p->dropped_links_count = s->dropped_links;

    f->status = status_init;
    int code = (int)s->status;
    if (code < SPAN_STATUS_UNSET || code > SPAN_STATUS_ERROR)
        code = SPAN_STATUS_UNSET;
    f->status.code = (Opentelemetry__Proto__Trace__V1__Status__StatusCode)code;
    if (code == SPAN_STATUS_ERROR && s->status_msg)
        f->status.message = s->status_msg;
    p->status = &f->status;
}

/* Fill rf from r (NULL: none); false when out of memory. */
static bool build_resource(resource_frame *rf, const otlp_resource *r)
{
    *rf = (resource_frame){0};
    if (!r)
        return true;
    size_t cap = 2 + r->n_attrs;
    rf->kv_ptrs = calloc(cap, sizeof *rf->kv_ptrs);
    rf->kvs = calloc(cap, sizeof *rf->kvs);
    rf->values = calloc(cap, sizeof *rf->values);
    if (!rf->kv_ptrs || !rf->kvs || !rf->values)
        return false;
    if (r->service_name && *r->service_name) {
        rf->kv_ptrs[rf->n] =
            string_kv(&rf->kvs[rf->n], &rf->values[rf->n], "service.name", r->service_name);
        rf->n++;
    }
    if (r->service_version && *r->service_version) {
        rf->kv_ptrs[rf->n] =
            string_kv(&rf->kvs[rf->n], &rf->values[rf->n], "service.version", r->service_version);
        rf->n++;
    }
    for (size_t i = 0; i < r->n_attrs; i++) {
        if (!otlp_resource_attr_used(r, i))
            continue;
        rf->kv_ptrs[rf->n] =
            string_kv(&rf->kvs[rf->n], &rf->values[rf->n], r->attr_keys[i], r->attr_values[i]);
        rf->n++;
    }
    return true;
}

static void free_resource(resource_frame *rf)
{
    free(rf->kv_ptrs);
    free(rf->kvs);
    free(rf->values);
}

bool otlp_proto_encode(const span *spans, size_t n, const otlp_resource *r, uint8_t **out,
                       size_t *len)
{
    return otlp_proto_encode_within(spans, n, r, SIZE_MAX, NULL, out, len);
}

/* The bytes a length-delimited field of size bytes takes: its tag (one byte for the fields
 * here), the varint of its length, and the bytes. */
static size_t field_size(size_t size)
{
    size_t n = 2;
    for (size_t v = size; v >= 0x80; v >>= 7)
        n++;
    return n + size;
}

bool otlp_proto_encode_within(const span *spans, size_t n, const otlp_resource *r, size_t max,
                              size_t *sizes, uint8_t **out, size_t *len)
{
    if (!out || !len)
        return false;
    *out = NULL;
    *len = 0;
    if (!spans && n > 0)
        return false;

    pb_request req = OPENTELEMETRY__PROTO__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
    pb_resource_spans rs = OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
    pb_resource res = OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE__INIT;
    pb_scope_spans ss = OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
    pb_scope scope = OPENTELEMETRY__PROTO__TRACE__V1__INSTRUMENTATION_SCOPE__INIT;
    pb_resource_spans *rs_ptr = &rs;
    pb_scope_spans *ss_ptr = &ss;

    bool ok = false;
    span_frame *frames = NULL;
    pb_span **span_ptrs = NULL;
    resource_frame rf;
    if (!build_resource(&rf, r))
        goto done;
    if (n > 0) {
        frames = calloc(n, sizeof *frames);
        span_ptrs = calloc(n, sizeof *span_ptrs);
        if (!frames || !span_ptrs)
            goto done;
        for (size_t i = 0; i < n; i++) {
            build_span(&frames[i], &spans[i]);
            span_ptrs[i] = &frames[i].span;
        }
        res.n_attributes = rf.n;
        res.attributes = rf.kv_ptrs;
        scope.name = (char *)OTLP_SCOPE_NAME;
        scope.version = (char *)OTLP_SCOPE_VERSION;
        ss.scope = &scope;
        ss.n_spans = n;
        ss.spans = span_ptrs;
        rs.resource = &res;
        rs.n_scope_spans = 1;
        rs.scope_spans = &ss_ptr;
        req.n_resource_spans = 1;
        req.resource_spans = &rs_ptr;
    }

    size_t size =
        opentelemetry__proto__trace__v1__export_trace_service_request__get_packed_size(&req);
    if (size > max) { /* too large to send: what it would take, and each span's share */
        for (size_t i = 0; sizes && i < n; i++)
            sizes[i] =
                field_size(opentelemetry__proto__trace__v1__span__get_packed_size(span_ptrs[i]));
        *len = size;
        ok = true;
        goto done;
    }
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        goto done;
    *len = opentelemetry__proto__trace__v1__export_trace_service_request__pack(&req, buf);
    *out = buf;
    ok = true;
done:
    free_resource(&rf);
    free(span_ptrs);
    free(frames);
    return ok;
}
