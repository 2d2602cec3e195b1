/*
 * Unit tests for the span encoders: trace/otlp_json (parsed back with
 * jansson, every field and JSON type checked), trace/otlp_proto (unpacked
 * with the protobuf-c code generated from proto/trace.proto, and walked by a
 * small independent wire reader that pins the official field numbers and
 * wire types), and trace/xray (segment vs subsegment shape, times, trace id
 * form, http/error fields, the aws namespace and object of AWS calls against
 * remote for other downstream calls, annotation key sanitising, metadata,
 * datagram header, daemon address parsing).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/sbuf.h"
#include "core/span.h"
#include "trace/otlp.h"
#include "trace/otlp_json.h"
#include "trace/otlp_proto.h"
#include "trace/xray.h"

#include "trace.pb-c.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TID_HEX  "5759e988bd862e3fe1be46a994272793"
#define SID_HEX  "53995c3f42cd8ad8"
#define PID_HEX  "0af7651916cd43dd"
#define LTID_HEX "0af7651916cd43dd8448eb211c80319c"
#define LSID_HEX "b7ad6b7169203331"
#define TASK_ID  "0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e5f"

static const uint8_t TID[16] = {0x57, 0x59, 0xe9, 0x88, 0xbd, 0x86, 0x2e, 0x3f,
                                0xe1, 0xbe, 0x46, 0xa9, 0x94, 0x27, 0x27, 0x93};
static const uint8_t SID[8] = {0x53, 0x99, 0x5c, 0x3f, 0x42, 0xcd, 0x8a, 0xd8};
static const uint8_t PID[8] = {0x0a, 0xf7, 0x65, 0x19, 0x16, 0xcd, 0x43, 0xdd};
static const uint8_t LTID[16] = {0x0a, 0xf7, 0x65, 0x19, 0x16, 0xcd, 0x43, 0xdd,
                                 0x84, 0x48, 0xeb, 0x21, 0x1c, 0x80, 0x31, 0x9c};
static const uint8_t LSID[8] = {0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31};

#define BIG_INT  INT64_C(9007199254740993) /* 2^53 + 1: not exact as a double */
#define START_NS INT64_C(1648229203000000000)
#define END_NS   INT64_C(1648229203012345678)

/* ---- fixtures ---- */

/* A root PRODUCER span with one attribute of each type and a link. */
static void make_root(span *s)
{
    memset(s, 0, sizeof *s);
    memcpy(s->trace_id, TID, 16);
    memcpy(s->span_id, SID, 8);
    s->flags = 0x01;
    snprintf(s->name, sizeof s->name, "publish tasks");
    s->kind = SPAN_KIND_PRODUCER;
    s->start_ns = START_NS;
    s->end_ns = END_NS;
    s->status = SPAN_STATUS_OK;
    span_set_str(s, "messaging.system", "aws.sns");
    span_set_int(s, "retry.count", -42);
    span_set_int(s, "big", BIG_INT);
    span_set_double(s, "ratio", 0.1);
    span_set_bool(s, "ok", true);
    span_set_bool(s, "no", false);
    span_add_link(s, LTID, LSID);
}

/* A child SERVER span that failed, with a parent and an awkward name. */
static void make_child(span *s)
{
    memset(s, 0, sizeof *s);
    memcpy(s->trace_id, TID, 16);
    memcpy(s->span_id, LSID, 8);
    memcpy(s->parent_id, PID, 8);
    snprintf(s->name, sizeof s->name, "GET \"/tasks\"\n");
    s->kind = SPAN_KIND_SERVER;
    s->start_ns = START_NS + 1000;
    s->end_ns = END_NS + 1000;
    span_set_str(s, "dup", "first");
    span_set_str(s, "dup", "second");
    span_set_double(s, "nan", NAN);
    span_set_double(s, "inf", -INFINITY);
    span_set_error(s, "boom \"quoted\"");
}

static const char *const extra_keys[] = {"cloud.provider", "service.name", "cloud.provider", NULL,
                                         "deployment.environment"};
static const char *const extra_values[] = {"aws", "overridden", "dup", "x", "test"};
static const otlp_resource RES = {
    .service_name = "tasks-api",
    .service_version = "1.2.3",
    .attr_keys = extra_keys,
    .attr_values = extra_values,
    .n_attrs = 5,
};

/* ---- OTLP JSON ---- */

static json_t *encode_json(const span *spans, size_t n, const otlp_resource *r)
{
    sbuf b = {0};
    assert_true(otlp_json_encode(&b, spans, n, r));
    json_error_t err;
    json_t *doc = json_loads(b.data, 0, &err);
    if (!doc)
        fail_msg("bad JSON (%s): %s", err.text, b.data);
    sbuf_free(&b);
    return doc;
}

static json_t *path(json_t *v, const char *key, size_t index)
{
    json_t *a = json_object_get(v, key);
    assert_true(json_is_array(a));
    json_t *e = json_array_get(a, index);
    assert_non_null(e);
    return e;
}

static void assert_json_str(json_t *obj, const char *key, const char *want)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_string(v))
        fail_msg("%s is not a string", key);
    assert_string_equal(json_string_value(v), want);
}

static void assert_json_int(json_t *obj, const char *key, json_int_t want)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v))
        fail_msg("%s is not an integer", key);
    assert_int_equal(json_integer_value(v), want);
}

/* The AnyValue of the attribute named key (exactly one must exist). */
static json_t *attr_value(json_t *attrs, const char *key)
{
    json_t *found = NULL;
    size_t i;
    json_t *kv;
    json_array_foreach(attrs, i, kv)
    {
        assert_int_equal(json_object_size(kv), 2);
        if (strcmp(json_string_value(json_object_get(kv, "key")), key) == 0) {
            assert_null(found);
            found = json_object_get(kv, "value");
        }
    }
    if (!found)
        fail_msg("no attribute %s", key);
    assert_int_equal(json_object_size(found), 1);
    return found;
}

static void test_json_resource_and_scope(void **state)
{
    (void)state;
    span s;
    make_root(&s);
    json_t *doc = encode_json(&s, 1, &RES);
    assert_int_equal(json_object_size(doc), 1);
    json_t *rs = path(doc, "resourceSpans", 0);
    assert_int_equal(json_array_size(json_object_get(doc, "resourceSpans")), 1);

    json_t *attrs = json_object_get(json_object_get(rs, "resource"), "attributes");
    /* service.name, service.version, cloud.provider=aws, deployment.environment; the extra
     * service.name, the second cloud.provider and the NULL key are left out. */
    assert_int_equal(json_array_size(attrs), 4);
    assert_string_equal(json_string_value(json_object_get(json_array_get(attrs, 0), "key")),
                        "service.name");
    assert_json_str(attr_value(attrs, "service.name"), "stringValue", "tasks-api");
    assert_json_str(attr_value(attrs, "service.version"), "stringValue", "1.2.3");
    assert_json_str(attr_value(attrs, "cloud.provider"), "stringValue", "aws");
    assert_json_str(attr_value(attrs, "deployment.environment"), "stringValue", "test");

    json_t *ss = path(rs, "scopeSpans", 0);
    assert_int_equal(json_array_size(json_object_get(rs, "scopeSpans")), 1);
    json_t *scope = json_object_get(ss, "scope");
    assert_json_str(scope, "name", "taskd");
    assert_json_str(scope, "version", OTLP_SCOPE_VERSION);
    assert_int_equal(json_array_size(json_object_get(ss, "spans")), 1);
    json_decref(doc);
    span_clear(&s);

    /* Without service.name given, an extra service.name is used. */
    otlp_resource r2 = RES;
    r2.service_name = NULL;
    r2.service_version = "";
    make_root(&s);
    doc = encode_json(&s, 1, &r2);
    attrs =
        json_object_get(json_object_get(path(doc, "resourceSpans", 0), "resource"), "attributes");
    assert_int_equal(json_array_size(attrs), 3);
    assert_json_str(attr_value(attrs, "service.name"), "stringValue", "overridden");
    json_decref(doc);

    /* No resource at all. */
    doc = encode_json(&s, 1, NULL);
    attrs =
        json_object_get(json_object_get(path(doc, "resourceSpans", 0), "resource"), "attributes");
    assert_true(json_is_array(attrs));
    assert_int_equal(json_array_size(attrs), 0);
    json_decref(doc);
    span_clear(&s);
}

static void test_json_root_span(void **state)
{
    (void)state;
    span s;
    make_root(&s);
    json_t *doc = encode_json(&s, 1, &RES);
    json_t *sp = path(path(path(doc, "resourceSpans", 0), "scopeSpans", 0), "spans", 0);

    assert_json_str(sp, "traceId", TID_HEX);
    assert_json_str(sp, "spanId", SID_HEX);
    assert_null(json_object_get(sp, "parentSpanId"));
    assert_json_str(sp, "name", "publish tasks");
    assert_json_int(sp, "kind", 4);
    assert_json_int(sp, "flags", 1);
    assert_json_str(sp, "startTimeUnixNano", "1648229203000000000");
    assert_json_str(sp, "endTimeUnixNano", "1648229203012345678");
    /* no snake_case keys, no events */
    assert_null(json_object_get(sp, "start_time_unix_nano"));
    assert_null(json_object_get(sp, "events"));

    json_t *attrs = json_object_get(sp, "attributes");
    assert_int_equal(json_array_size(attrs), 6);
    assert_json_str(attr_value(attrs, "messaging.system"), "stringValue", "aws.sns");
    assert_json_str(attr_value(attrs, "retry.count"), "intValue", "-42");
    assert_json_str(attr_value(attrs, "big"), "intValue", "9007199254740993");
    json_t *ratio = json_object_get(attr_value(attrs, "ratio"), "doubleValue");
    assert_true(json_is_real(ratio));
    assert_true(json_real_value(ratio) == 0.1);
    assert_true(json_is_true(json_object_get(attr_value(attrs, "ok"), "boolValue")));
    assert_true(json_is_false(json_object_get(attr_value(attrs, "no"), "boolValue")));

    json_t *links = json_object_get(sp, "links");
    assert_int_equal(json_array_size(links), 1);
    json_t *l = json_array_get(links, 0);
    assert_json_str(l, "traceId", LTID_HEX);
    assert_json_str(l, "spanId", LSID_HEX);

    json_t *st = json_object_get(sp, "status");
    assert_int_equal(json_object_size(st), 2);
    assert_json_int(st, "code", 1);
    assert_json_str(st, "message", "");
    json_decref(doc);
    span_clear(&s);
}

static void test_json_child_span(void **state)
{
    (void)state;
    span s[2];
    make_root(&s[0]);
    make_child(&s[1]);
    json_t *doc = encode_json(s, 2, &RES);
    json_t *spans = json_object_get(path(path(doc, "resourceSpans", 0), "scopeSpans", 0), "spans");
    assert_int_equal(json_array_size(spans), 2);
    json_t *sp = json_array_get(spans, 1);

    assert_json_str(sp, "spanId", LSID_HEX);
    assert_json_str(sp, "parentSpanId", PID_HEX);
    assert_json_str(sp, "name", "GET \"/tasks\"\n");
    assert_json_int(sp, "kind", 2);
    assert_json_int(sp, "flags", 0);
    assert_json_str(sp, "startTimeUnixNano", "1648229203000001000");
    assert_null(json_object_get(sp, "links"));

    json_t *attrs = json_object_get(sp, "attributes");
    assert_int_equal(json_array_size(attrs), 3); /* dup once (the later value), nan, inf */
    assert_json_str(attr_value(attrs, "dup"), "stringValue", "second");
    assert_json_str(attr_value(attrs, "nan"), "doubleValue", "NaN");
    assert_json_str(attr_value(attrs, "inf"), "doubleValue", "-Infinity");

    json_t *st = json_object_get(sp, "status");
    assert_json_int(st, "code", 2);
    assert_json_str(st, "message", "boom \"quoted\"");
    json_decref(doc);
    span_clear(&s[0]);
    span_clear(&s[1]);
}

static void test_json_edge_cases(void **state)
{
    (void)state;
    sbuf b = {0};
    assert_true(otlp_json_encode(&b, NULL, 0, &RES));
    assert_string_equal(b.data, "{\"resourceSpans\":[]}");
    sbuf_free(&b);
    assert_false(otlp_json_encode(&b, NULL, 1, &RES));
    sbuf_free(&b);

    /* A zeroed span: unspecified kind, unset status, times 0 — still well-formed. */
    span z;
    memset(&z, 0, sizeof z);
    z.start_ns = -5;
    z.kind = (span_kind)42;
    json_t *doc = encode_json(&z, 1, NULL);
    json_t *sp = path(path(path(doc, "resourceSpans", 0), "scopeSpans", 0), "spans", 0);
    assert_json_int(sp, "kind", 0);
    assert_json_str(sp, "startTimeUnixNano", "0");
    assert_json_int(json_object_get(sp, "status"), "code", 0);
    assert_int_equal(json_array_size(json_object_get(sp, "attributes")), 0);
    json_decref(doc);

    /* Appends to what is already in the buffer. */
    sbuf_puts(&b, "X");
    assert_true(otlp_json_encode(&b, &z, 1, NULL));
    assert_int_equal(b.data[0], 'X');
    assert_int_equal(b.data[1], '{');
    sbuf_free(&b);
}

/* ---- OTLP protobuf ---- */

typedef Opentelemetry__Proto__Trace__V1__ExportTraceServiceRequest pb_request;
typedef Opentelemetry__Proto__Trace__V1__KeyValue pb_kv;
typedef Opentelemetry__Proto__Trace__V1__AnyValue pb_any;

static const pb_any *pb_attr(pb_kv **kvs, size_t n, const char *key)
{
    const pb_any *found = NULL;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(kvs[i]->key, key) == 0) {
            assert_null(found);
            found = kvs[i]->value;
        }
    }
    if (!found)
        fail_msg("no attribute %s", key);
    return found;
}

static void test_proto_roundtrip(void **state)
{
    (void)state;
    span s[2];
    make_root(&s[0]);
    make_child(&s[1]);
    uint8_t *buf;
    size_t len;
    assert_true(otlp_proto_encode(s, 2, &RES, &buf, &len));
    pb_request *req =
        opentelemetry__proto__trace__v1__export_trace_service_request__unpack(NULL, len, buf);
    assert_non_null(req);
    assert_int_equal(req->n_resource_spans, 1);
    Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = req->resource_spans[0];

    assert_non_null(rs->resource);
    assert_int_equal(rs->resource->n_attributes, 4);
    assert_string_equal(rs->resource->attributes[0]->key, "service.name");
    const pb_any *v = pb_attr(rs->resource->attributes, 4, "service.name");
    assert_int_equal(v->value_case, OPENTELEMETRY__PROTO__TRACE__V1__ANY_VALUE__VALUE_STRING_VALUE);
    assert_string_equal(v->string_value, "tasks-api");
    assert_string_equal(pb_attr(rs->resource->attributes, 4, "service.version")->string_value,
                        "1.2.3");
    assert_string_equal(pb_attr(rs->resource->attributes, 4, "cloud.provider")->string_value,
                        "aws");
    assert_string_equal(
        pb_attr(rs->resource->attributes, 4, "deployment.environment")->string_value, "test");

    assert_int_equal(rs->n_scope_spans, 1);
    Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = rs->scope_spans[0];
    assert_string_equal(ss->scope->name, "taskd");
    assert_string_equal(ss->scope->version, OTLP_SCOPE_VERSION);
    assert_int_equal(ss->n_spans, 2);

    /* root */
    Opentelemetry__Proto__Trace__V1__Span *p = ss->spans[0];
    assert_int_equal(p->trace_id.len, 16);
    assert_memory_equal(p->trace_id.data, TID, 16);
    assert_int_equal(p->span_id.len, 8);
    assert_memory_equal(p->span_id.data, SID, 8);
    assert_int_equal(p->parent_span_id.len, 0);
    assert_int_equal(p->flags, 1);
    assert_string_equal(p->name, "publish tasks");
    assert_int_equal(p->kind, OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_PRODUCER);
    assert_true(p->start_time_unix_nano == (uint64_t)START_NS);
    assert_true(p->end_time_unix_nano == (uint64_t)END_NS);
    assert_int_equal(p->n_attributes, 6);
    v = pb_attr(p->attributes, p->n_attributes, "messaging.system");
    assert_int_equal(v->value_case, OPENTELEMETRY__PROTO__TRACE__V1__ANY_VALUE__VALUE_STRING_VALUE);
    assert_string_equal(v->string_value, "aws.sns");
    v = pb_attr(p->attributes, p->n_attributes, "retry.count");
    assert_int_equal(v->value_case, OPENTELEMETRY__PROTO__TRACE__V1__ANY_VALUE__VALUE_INT_VALUE);
    assert_int_equal(v->int_value, -42);
    v = pb_attr(p->attributes, p->n_attributes, "big");
    assert_true(v->int_value == BIG_INT);
    v = pb_attr(p->attributes, p->n_attributes, "ratio");
    assert_int_equal(v->value_case, OPENTELEMETRY__PROTO__TRACE__V1__ANY_VALUE__VALUE_DOUBLE_VALUE);
    assert_true(v->double_value == 0.1);
    v = pb_attr(p->attributes, p->n_attributes, "ok");
    assert_int_equal(v->value_case, OPENTELEMETRY__PROTO__TRACE__V1__ANY_VALUE__VALUE_BOOL_VALUE);
    assert_true(v->bool_value);
    v = pb_attr(p->attributes, p->n_attributes, "no");
    assert_int_equal(v->value_case, OPENTELEMETRY__PROTO__TRACE__V1__ANY_VALUE__VALUE_BOOL_VALUE);
    assert_false(v->bool_value);
    assert_int_equal(p->n_links, 1);
    assert_memory_equal(p->links[0]->trace_id.data, LTID, 16);
    assert_memory_equal(p->links[0]->span_id.data, LSID, 8);
    assert_int_equal(p->n_events, 0);
    assert_non_null(p->status);
    assert_int_equal(p->status->code,
                     OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_OK);
    assert_string_equal(p->status->message, "");

    /* child */
    p = ss->spans[1];
    assert_int_equal(p->parent_span_id.len, 8);
    assert_memory_equal(p->parent_span_id.data, PID, 8);
    assert_int_equal(p->flags, 0);
    assert_string_equal(p->name, "GET \"/tasks\"\n");
    assert_int_equal(p->kind, OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER);
    assert_int_equal(p->n_attributes, 3);
    assert_string_equal(pb_attr(p->attributes, 3, "dup")->string_value, "second");
    assert_true(isnan(pb_attr(p->attributes, 3, "nan")->double_value));
    assert_true(pb_attr(p->attributes, 3, "inf")->double_value == -INFINITY);
    assert_int_equal(p->n_links, 0);
    assert_int_equal(p->status->code,
                     OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR);
    assert_string_equal(p->status->message, "boom \"quoted\"");

    opentelemetry__proto__trace__v1__export_trace_service_request__free_unpacked(req, NULL);
    free(buf);
    span_clear(&s[0]);
    span_clear(&s[1]);
}

/* A protobuf wire reader independent of protoc-c, to pin field numbers and wire types. */
typedef struct wire {
    const uint8_t *p, *end;
} wire;

static uint64_t wire_varint(wire *w)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        assert_true(w->p < w->end);
        uint8_t c = *w->p++;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80))
            return v;
    }
    fail_msg("varint too long");
    return 0;
}

/* Find field `field`, occurrence `nth`, in [w.p, w.end); check its wire type; return its bytes. */
static wire wire_field(wire w, unsigned field, unsigned type, int nth)
{
    while (w.p < w.end) {
        uint64_t tag = wire_varint(&w);
        unsigned f = (unsigned)(tag >> 3), t = (unsigned)(tag & 7);
        const uint8_t *start = w.p;
        size_t n = 0;
        switch (t) {
        case 0:
            wire_varint(&w);
            n = (size_t)(w.p - start);
            w.p = start;
            break;
        case 1:
            n = 8;
            break;
        case 2:
            n = (size_t)wire_varint(&w);
            start = w.p;
            break;
        case 5:
            n = 4;
            break;
        default:
            fail_msg("wire type %u", t);
        }
        assert_true(n <= (size_t)(w.end - start));
        w.p = start + n;
        if (f == field && nth-- == 0) {
            assert_int_equal(t, type);
            return (wire){start, start + n};
        }
    }
    fail_msg("field %u not found", field);
    return w;
}

static bool wire_has(wire w, unsigned field)
{
    while (w.p < w.end) {
        uint64_t tag = wire_varint(&w);
        unsigned t = (unsigned)(tag & 7);
        if ((tag >> 3) == field)
            return true;
        if (t == 0)
            wire_varint(&w);
        else if (t == 1)
            w.p += 8;
        else if (t == 5)
            w.p += 4;
        else {
            size_t n = (size_t)wire_varint(&w);
            w.p += n;
        }
    }
    return false;
}

static void assert_wire_bytes(wire w, const void *want, size_t n)
{
    assert_int_equal((size_t)(w.end - w.p), n);
    assert_memory_equal(w.p, want, n);
}

static uint64_t wire_le(wire w, size_t n)
{
    assert_int_equal((size_t)(w.end - w.p), n);
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)w.p[i] << (8 * i);
    return v;
}

static void test_proto_wire_numbers(void **state)
{
    (void)state;
    span s[2];
    make_root(&s[0]);
    make_child(&s[1]);
    uint8_t *buf;
    size_t len;
    assert_true(otlp_proto_encode(s, 2, &RES, &buf, &len));
    wire req = {buf, buf + len};
    enum { VARINT = 0, I64 = 1, LEN = 2, I32 = 5 };

    /* ExportTraceServiceRequest.resource_spans = 1 -> ResourceSpans.resource = 1 ->
     * Resource.attributes = 1 -> KeyValue key = 1, value = 2 -> AnyValue.string_value = 1 */
    wire rs = wire_field(req, 1, LEN, 0);
    wire res = wire_field(rs, 1, LEN, 0);
    wire kv = wire_field(res, 1, LEN, 0);
    assert_wire_bytes(wire_field(kv, 1, LEN, 0), "service.name", 12);
    wire any = wire_field(kv, 2, LEN, 0);
    assert_wire_bytes(wire_field(any, 1, LEN, 0), "tasks-api", 9);
    /* ResourceSpans.scope_spans = 2 -> ScopeSpans.scope = 1 -> InstrumentationScope.name = 1 */
    wire ss = wire_field(rs, 2, LEN, 0);
    wire scope = wire_field(ss, 1, LEN, 0);
    assert_wire_bytes(wire_field(scope, 1, LEN, 0), "taskd", 5);

    /* ScopeSpans.spans = 2: trace_id = 1, span_id = 2, no parent_span_id (4) on a root,
     * flags = 16 fixed32, name = 5, kind = 6, start/end = 7/8 fixed64 */
    wire sp = wire_field(ss, 2, LEN, 0);
    assert_wire_bytes(wire_field(sp, 1, LEN, 0), TID, 16);
    assert_wire_bytes(wire_field(sp, 2, LEN, 0), SID, 8);
    assert_false(wire_has(sp, 4));
    assert_int_equal(wire_le(wire_field(sp, 16, I32, 0), 4), 1);
    assert_wire_bytes(wire_field(sp, 5, LEN, 0), "publish tasks", 13);
    wire kind = wire_field(sp, 6, VARINT, 0);
    assert_int_equal(wire_varint(&kind), 4);
    assert_true(wire_le(wire_field(sp, 7, I64, 0), 8) == (uint64_t)START_NS);
    assert_true(wire_le(wire_field(sp, 8, I64, 0), 8) == (uint64_t)END_NS);
    /* attributes = 9: retry.count is the 2nd, int_value = 3 (varint, two's complement) */
    kv = wire_field(sp, 9, LEN, 1);
    assert_wire_bytes(wire_field(kv, 1, LEN, 0), "retry.count", 11);
    any = wire_field(wire_field(kv, 2, LEN, 0), 3, VARINT, 0);
    assert_true((int64_t)wire_varint(&any) == -42);
    kv = wire_field(sp, 9, LEN, 3); /* ratio: double_value = 4 */
    double d;
    uint64_t bits = wire_le(wire_field(wire_field(kv, 2, LEN, 0), 4, I64, 0), 8);
    memcpy(&d, &bits, 8);
    assert_true(d == 0.1);
    kv = wire_field(sp, 9, LEN, 4); /* ok: bool_value = 2 */
    any = wire_field(wire_field(kv, 2, LEN, 0), 2, VARINT, 0);
    assert_int_equal(wire_varint(&any), 1);
    wire link = wire_field(sp, 13, LEN, 0); /* links */
    assert_wire_bytes(wire_field(link, 1, LEN, 0), LTID, 16);
    assert_wire_bytes(wire_field(link, 2, LEN, 0), LSID, 8);
    wire st = wire_field(sp, 15, LEN, 0); /* status */
    wire code = wire_field(st, 3, VARINT, 0);
    assert_int_equal(wire_varint(&code), 1);

    sp = wire_field(ss, 2, LEN, 1);
    assert_wire_bytes(wire_field(sp, 4, LEN, 0), PID, 8); /* parent_span_id */
    st = wire_field(sp, 15, LEN, 0);
    assert_wire_bytes(wire_field(st, 2, LEN, 0), "boom \"quoted\"", 13); /* Status.message */
    code = wire_field(st, 3, VARINT, 0);
    assert_int_equal(wire_varint(&code), 2);

    free(buf);
    span_clear(&s[0]);
    span_clear(&s[1]);
}

static void test_proto_edge_cases(void **state)
{
    (void)state;
    uint8_t *buf = (uint8_t *)"x";
    size_t len = 99;
    assert_false(otlp_proto_encode(NULL, 1, &RES, &buf, &len));
    assert_null(buf);
    assert_int_equal(len, 0);

    assert_true(otlp_proto_encode(NULL, 0, &RES, &buf, &len));
    assert_non_null(buf);
    assert_int_equal(len, 0);
    pb_request *req =
        opentelemetry__proto__trace__v1__export_trace_service_request__unpack(NULL, len, buf);
    assert_non_null(req);
    assert_int_equal(req->n_resource_spans, 0);
    opentelemetry__proto__trace__v1__export_trace_service_request__free_unpacked(req, NULL);
    free(buf);

    span z;
    memset(&z, 0, sizeof z);
    assert_true(otlp_proto_encode(&z, 1, NULL, &buf, &len));
    req = opentelemetry__proto__trace__v1__export_trace_service_request__unpack(NULL, len, buf);
    assert_non_null(req);
    assert_int_equal(req->resource_spans[0]->resource->n_attributes, 0);
    Opentelemetry__Proto__Trace__V1__Span *p = req->resource_spans[0]->scope_spans[0]->spans[0];
    assert_int_equal(p->kind, 0);
    assert_int_equal(p->n_attributes, 0);
    opentelemetry__proto__trace__v1__export_trace_service_request__free_unpacked(req, NULL);
    free(buf);
}

/*
 * Attributes and links set past a span's bounds are counted, and both OTLP encodings say how many:
 * droppedAttributesCount and droppedLinksCount in JSON, dropped_attributes_count (10) and
 * dropped_links_count (14) in protobuf; a span that dropped none sends neither (make_root).
 */
static void test_dropped_attributes_and_links_are_sent(void **state)
{
    (void)state;
    span s[2];
    make_root(&s[0]); /* 6 attributes, 1 link */
    for (int i = 0; i < SPAN_MAX_ATTRS - 6 + 2; i++) {
        char key[16];
        snprintf(key, sizeof key, "extra.%d", i);
        span_set_str(&s[0], key, "v");
    }
    span_set_int(&s[0], "cut.int", 1);
    for (int i = 0; i < SPAN_MAX_LINKS - 1 + 3; i++)
        span_add_link(&s[0], LTID, SID);
    assert_int_equal(s[0].n_attrs, SPAN_MAX_ATTRS);
    assert_int_equal(s[0].dropped_attrs, 3);
    assert_int_equal(s[0].n_links, SPAN_MAX_LINKS);
    assert_int_equal(s[0].dropped_links, 3);
    make_child(&s[1]);

    json_t *doc = encode_json(s, 2, &RES);
    json_t *spans = json_object_get(path(path(doc, "resourceSpans", 0), "scopeSpans", 0), "spans");
    json_t *sp = json_array_get(spans, 0);
    assert_int_equal(json_array_size(json_object_get(sp, "attributes")), SPAN_MAX_ATTRS);
    assert_json_int(sp, "droppedAttributesCount", 3);
    assert_int_equal(json_array_size(json_object_get(sp, "links")), SPAN_MAX_LINKS);
    assert_json_int(sp, "droppedLinksCount", 3);
    sp = json_array_get(spans, 1);
    assert_null(json_object_get(sp, "droppedAttributesCount"));
    assert_null(json_object_get(sp, "droppedLinksCount"));
    json_decref(doc);

    uint8_t *buf;
    size_t len;
    assert_true(otlp_proto_encode(s, 2, &RES, &buf, &len));
    enum { VARINT = 0, LEN = 2 };
    wire ss = wire_field(wire_field((wire){buf, buf + len}, 1, LEN, 0), 2, LEN, 0);
    wire w = wire_field(ss, 2, LEN, 0);
    wire v = wire_field(w, 10, VARINT, 0);
    assert_int_equal(wire_varint(&v), 3);
    v = wire_field(w, 14, VARINT, 0);
    assert_int_equal(wire_varint(&v), 3);
    w = wire_field(ss, 2, LEN, 1);
    assert_false(wire_has(w, 10));
    assert_false(wire_has(w, 14));
    pb_request *req =
        opentelemetry__proto__trace__v1__export_trace_service_request__unpack(NULL, len, buf);
    assert_non_null(req);
    Opentelemetry__Proto__Trace__V1__Span *p = req->resource_spans[0]->scope_spans[0]->spans[0];
    assert_int_equal(p->n_attributes, SPAN_MAX_ATTRS);
    assert_int_equal(p->dropped_attributes_count, 3);
    assert_int_equal(p->n_links, SPAN_MAX_LINKS);
    assert_int_equal(p->dropped_links_count, 3);
    opentelemetry__proto__trace__v1__export_trace_service_request__free_unpacked(req, NULL);
    free(buf);
    span_clear(&s[0]);
    span_clear(&s[1]);
}

/*
 * The spans' sizes an encoding gives bound the request for any run of them: the body less the
 * sizes of the spans left out, in protobuf (the lengths around the spans, 3 bytes each for a body
 * over 16 KiB, take 2 for a part under it) and in JSON (the first span of a part has no comma).
 * A protobuf body over the bound given is sized, not packed.
 */
static void test_span_sizes_bound_each_part(void **state)
{
    (void)state;
    span s[3];
    make_root(&s[0]);
    make_child(&s[1]);
    make_root(&s[2]);
    char *big = malloc(20001);
    assert_non_null(big);
    memset(big, 'x', 20000);
    big[20000] = '\0';
    span_set_str(&s[0], "big.text", big);
    free(big);

    size_t sizes[3], len, sized[3], sized_len;
    uint8_t *buf;
    assert_true(otlp_proto_encode_within(s, 3, &RES, SIZE_MAX, NULL, &buf, &len));
    assert_non_null(buf);
    free(buf);
    assert_true(otlp_proto_encode_within(s, 3, &RES, len - 1, sized, &buf, &sized_len));
    assert_null(buf);
    assert_int_equal(sized_len, len);
    for (size_t a = 0; a < 3; a++) {
        for (size_t b = a + 1; b <= 3; b++) {
            size_t left_out = 0, part_len;
            for (size_t i = 0; i < 3; i++)
                left_out += i < a || i >= b ? sized[i] : 0;
            assert_true(otlp_proto_encode(s + a, b - a, &RES, &buf, &part_len));
            free(buf);
            assert_true(part_len <= len - left_out);
            if (b - a == 3)
                assert_int_equal(part_len, len);
        }
    }

    sbuf whole = {0};
    assert_true(otlp_json_encode_sized(&whole, s, 3, &RES, sizes));
    for (size_t a = 0; a < 3; a++) {
        for (size_t b = a + 1; b <= 3; b++) {
            size_t left_out = 0;
            for (size_t i = 0; i < 3; i++)
                left_out += i < a || i >= b ? sizes[i] : 0;
            sbuf part = {0};
            assert_true(otlp_json_encode(&part, s + a, b - a, &RES));
            assert_true(part.len <= whole.len - left_out);
            sbuf_free(&part);
        }
    }
    sbuf_free(&whole);
    for (int i = 0; i < 3; i++)
        span_clear(&s[i]);
}

/* A request's path and a handler's message need not be UTF-8; what a collector reads is. */
static void test_proto_strings_are_utf8(void **state)
{
    (void)state;
    span s;
    span_reset(&s);
    s.start_ns = s.end_ns = 1;
    span_set_str(&s, "url.path", "/tasks/\xff");
    span_set_error(&s, "broke: \xc3(");
    uint8_t *buf;
    size_t len;
    assert_true(otlp_proto_encode(&s, 1, &RES, &buf, &len));
    pb_request *req =
        opentelemetry__proto__trace__v1__export_trace_service_request__unpack(NULL, len, buf);
    assert_non_null(req);
    Opentelemetry__Proto__Trace__V1__Span *p = req->resource_spans[0]->scope_spans[0]->spans[0];
    assert_int_equal(p->n_attributes, 1);
    assert_string_equal(p->attributes[0]->value->string_value, "/tasks/\xef\xbf\xbd");
    assert_string_equal(p->status->message, "broke: \xef\xbf\xbd(");
    opentelemetry__proto__trace__v1__export_trace_service_request__free_unpacked(req, NULL);
    free(buf);
    span_clear(&s);
}

/* ---- X-Ray ---- */

static json_t *encode_xray(const span *s, const char *service, sbuf *text)
{
    sbuf b = {0};
    assert_true(xray_segment_encode(&b, s, service, XRAY_SEGMENTS));
    json_error_t err;
    json_t *doc = json_loads(b.data, 0, &err);
    if (!doc)
        fail_msg("bad JSON (%s): %s", err.text, b.data);
    if (text)
        *text = b;
    else
        sbuf_free(&b);
    return doc;
}

/* A sampled span of task TASK_ID, a child of PID, named, of kind and times given. */
static void make_task_span(span *s, const char *name, span_kind kind, int64_t start_ns,
                           int64_t end_ns)
{
    memset(s, 0, sizeof *s);
    memcpy(s->trace_id, TID, 16);
    memcpy(s->span_id, SID, 8);
    memcpy(s->parent_id, PID, 8);
    s->flags = 1;
    snprintf(s->name, sizeof s->name, "%s", name);
    snprintf(s->task_id, sizeof s->task_id, "%s", TASK_ID);
    s->kind = kind;
    s->start_ns = start_ns;
    s->end_ns = end_ns;
}

/* An HTTP SERVER span continuing a remote caller's trace. */
static void make_server(span *s, int64_t status)
{
    make_task_span(s, "GET /tasks/{id}", SPAN_KIND_SERVER, INT64_C(1480615200010000000),
                   INT64_C(1480615200123456789));
    span_set_str(s, "http.request.method", "GET");
    span_set_str(s, "url.path", "/tasks/" TASK_ID);
    span_set_int(s, "http.response.status_code", status);
    span_set_bool(s, "cached", false);
    span_set_double(s, "ratio", 0.5);
}

static void test_xray_segment(void **state)
{
    (void)state;
    span s;
    make_server(&s, 200);
    sbuf text;
    json_t *doc = encode_xray(&s, "tasks-api", &text);
    assert_json_str(doc, "name", "tasks-api");
    assert_json_str(doc, "id", SID_HEX);
    assert_json_str(doc, "trace_id", "1-5759e988-bd862e3fe1be46a994272793");
    assert_json_str(doc, "parent_id", PID_HEX);
    assert_null(json_object_get(doc, "type"));
    assert_null(json_object_get(doc, "namespace"));
    assert_null(json_object_get(doc, "in_progress"));
    /* float seconds with microseconds, truncated from the nanoseconds */
    assert_non_null(strstr(text.data, "\"start_time\":1480615200.010000,"));
    assert_non_null(strstr(text.data, "\"end_time\":1480615200.123456,"));
    assert_true(json_is_real(json_object_get(doc, "start_time")));
    assert_true(fabs(json_real_value(json_object_get(doc, "end_time")) - 1480615200.123456) < 1e-6);

    json_t *http = json_object_get(doc, "http");
    assert_json_str(json_object_get(http, "request"), "method", "GET");
    assert_json_str(json_object_get(http, "request"), "url", "/tasks/" TASK_ID);
    assert_json_int(json_object_get(http, "response"), "status", 200);
    assert_null(json_object_get(doc, "error"));
    assert_null(json_object_get(doc, "fault"));
    assert_null(json_object_get(doc, "throttle"));
    assert_null(json_object_get(doc, "cause"));

    json_t *ann = json_object_get(doc, "annotations");
    assert_json_str(ann, "task_id", TASK_ID);
    assert_json_str(ann, "http_request_method", "GET");
    assert_json_str(ann, "url_path", "/tasks/" TASK_ID);
    assert_json_int(ann, "http_response_status_code", 200);
    assert_true(json_is_false(json_object_get(ann, "cached")));
    assert_null(json_object_get(ann, "ratio")); /* doubles only in metadata */
    assert_int_equal(json_object_size(ann), 5);

    json_t *otel = json_object_get(json_object_get(doc, "metadata"), "otel");
    assert_int_equal(json_object_size(json_object_get(doc, "metadata")), 1);
    assert_int_equal(json_object_size(otel), 5);
    assert_json_str(otel, "http.request.method", "GET");
    assert_json_int(otel, "http.response.status_code", 200);
    assert_true(json_is_false(json_object_get(otel, "cached")));
    assert_true(json_real_value(json_object_get(otel, "ratio")) == 0.5);
    json_decref(doc);
    sbuf_free(&text);
    span_clear(&s);
}

static void test_xray_segment_errors(void **state)
{
    (void)state;
    span s;
    make_server(&s, 404);
    json_t *doc = encode_xray(&s, "svc", NULL);
    assert_true(json_is_true(json_object_get(doc, "error")));
    assert_null(json_object_get(doc, "fault"));
    assert_null(json_object_get(doc, "throttle"));
    json_decref(doc);
    span_clear(&s);

    make_server(&s, 429);
    doc = encode_xray(&s, "svc", NULL);
    assert_true(json_is_true(json_object_get(doc, "error")));
    assert_true(json_is_true(json_object_get(doc, "throttle")));
    assert_null(json_object_get(doc, "fault"));
    json_decref(doc);
    span_clear(&s);

    make_server(&s, 503);
    span_set_error(&s, "store unavailable");
    doc = encode_xray(&s, "svc", NULL);
    assert_null(json_object_get(doc, "error"));
    assert_true(json_is_true(json_object_get(doc, "fault")));
    json_t *ex = json_array_get(json_object_get(json_object_get(doc, "cause"), "exceptions"), 0);
    assert_json_str(ex, "id", SID_HEX);
    assert_json_str(ex, "message", "store unavailable");
    json_decref(doc);
    span_clear(&s);

    /* ERROR status without an HTTP status is a fault. */
    make_server(&s, 200);
    s.n_attrs = 0;
    for (int i = 0; i < SPAN_MAX_ATTRS; i++)
        if (s.attrs[i].type == SPAN_ATTR_STRING)
            free(s.attrs[i].v.s);
    memset(s.attrs, 0, sizeof s.attrs);
    span_set_error(&s, NULL);
    doc = encode_xray(&s, "svc", NULL);
    assert_true(json_is_true(json_object_get(doc, "fault")));
    assert_null(json_object_get(doc, "http"));
    assert_null(json_object_get(doc, "cause"));
    json_decref(doc);
    span_clear(&s);
}

static void test_xray_root_and_in_progress(void **state)
{
    (void)state;
    span s;
    make_root(&s); /* PRODUCER without a parent: must be a segment (a subsegment needs a parent) */
    s.end_ns = 0;
    json_t *doc = encode_xray(&s, NULL, NULL);
    assert_json_str(doc, "name", "unknown_service");
    assert_null(json_object_get(doc, "parent_id"));
    assert_null(json_object_get(doc, "type"));
    assert_null(json_object_get(doc, "end_time"));
    assert_true(json_is_true(json_object_get(doc, "in_progress")));
    assert_null(json_object_get(doc, "http"));
    json_t *ann = json_object_get(doc, "annotations");
    assert_null(json_object_get(ann, "task_id"));
    assert_json_str(ann, "messaging_system", "aws.sns");
    assert_json_int(ann, "retry_count", -42);
    json_decref(doc);
    span_clear(&s);
}

/* Inside Lambda: the SERVER span hangs under the function's segment as a subsegment. */
static void test_xray_lambda_mode(void **state)
{
    (void)state;
    span s;
    make_server(&s, 201);
    sbuf b = {0};
    assert_true(xray_segment_encode(&b, &s, "tasks-api", XRAY_SUBSEGMENTS));
    json_t *doc = json_loads(b.data, 0, NULL);
    assert_non_null(doc);
    assert_json_str(doc, "type", "subsegment");
    assert_json_str(doc, "parent_id", PID_HEX);
    assert_json_str(doc, "name", "GET /tasks/_id_"); /* X-Ray's name alphabet */
    assert_json_str(doc, "trace_id", "1-5759e988-bd862e3fe1be46a994272793");
    json_decref(doc);
    sbuf_free(&b);
    span_clear(&s);
    /* a span with no parent cannot be a subsegment: still a segment */
    make_root(&s);
    sbuf c = {0};
    assert_true(xray_segment_encode(&c, &s, "tasks-api", XRAY_SUBSEGMENTS));
    doc = json_loads(c.data, 0, NULL);
    assert_non_null(doc);
    assert_null(json_object_get(doc, "type"));
    assert_json_str(doc, "name", "tasks-api");
    json_decref(doc);
    sbuf_free(&c);
    span_clear(&s);
}

static void test_xray_subsegment(void **state)
{
    (void)state;
    const struct {
        span_kind kind;
        const char *ns;
    } cases[] = {{SPAN_KIND_CLIENT, "remote"},
                 {SPAN_KIND_PRODUCER, "remote"},
                 {SPAN_KIND_INTERNAL, NULL},
                 {SPAN_KIND_CONSUMER, NULL}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        span s;
        make_server(&s, 201);
        s.kind = cases[i].kind;
        sbuf text;
        json_t *doc = encode_xray(&s, "tasks-api", &text);
        assert_json_str(doc, "type", "subsegment");
        assert_json_str(doc, "name", "GET /tasks/_id_"); /* braces are not X-Ray name characters */
        assert_json_str(doc, "id", SID_HEX);
        assert_json_str(doc, "trace_id", "1-5759e988-bd862e3fe1be46a994272793");
        assert_json_str(doc, "parent_id", PID_HEX);
        if (cases[i].ns)
            assert_json_str(doc, "namespace", cases[i].ns);
        else
            assert_null(json_object_get(doc, "namespace"));
        assert_non_null(strstr(text.data, "\"start_time\":1480615200.010000,"));
        assert_json_int(json_object_get(json_object_get(doc, "http"), "response"), "status", 201);
        json_decref(doc);
        sbuf_free(&text);
        span_clear(&s);
    }
}

/* A store write on AWS: the CLIENT span of the DynamoDB call that made it, as the DynamoDB
 * store labels it (with parent; no HTTP). */
static void make_dynamodb_call(span *s)
{
    make_task_span(s, "INSERT tasks", SPAN_KIND_CLIENT, INT64_C(1461096053377690000),
                   INT64_C(1461096053403790000));
    span_set_str(s, "db.system", "dynamodb");
    span_set_str(s, "db.operation.name", "INSERT");
    span_set_str(s, "db.collection.name", "tasks");
    span_set_str(s, "rpc.system", "aws-api");
    span_set_str(s, "rpc.service", "DynamoDB");
    span_set_str(s, "rpc.method", "PutItem");
    span_set_str(s, "aws.dynamodb.table_names", "taskd-tasks");
    span_set_str(s, "cloud.region", "eu-west-1");
    span_set_str(s, "aws.request_id", "LDM6CJP8RMQ1FHKSC1RBVJFPNVV4KQNSO5AEMF66Q9ASUAAJG");
}

/* The aws object of doc, and that it holds exactly n fields. */
static json_t *aws_object(json_t *doc, size_t n)
{
    json_t *aws = json_object_get(doc, "aws");
    assert_true(json_is_object(aws));
    assert_int_equal(json_object_size(aws), n);
    return aws;
}

/* A call to an AWS API (rpc.system aws-api) is a subsegment in the aws namespace, named for the
 * service, with an aws object of what the span tells (tracing.md §3); other downstream calls are
 * remote. */
static void test_xray_aws_calls(void **state)
{
    (void)state;
    span s;
    make_dynamodb_call(&s);
    sbuf text;
    json_t *doc = encode_xray(&s, "tasks-api", &text);
    assert_json_str(doc, "type", "subsegment");
    assert_json_str(doc, "name", "DynamoDB");
    assert_json_str(doc, "namespace", "aws");
    assert_json_str(doc, "parent_id", PID_HEX);
    json_t *aws = aws_object(doc, 4);
    assert_json_str(aws, "operation", "PutItem");
    assert_json_str(aws, "table_name", "taskd-tasks");
    assert_json_str(aws, "region", "eu-west-1");
    assert_json_str(aws, "request_id", "LDM6CJP8RMQ1FHKSC1RBVJFPNVV4KQNSO5AEMF66Q9ASUAAJG");
    assert_non_null(
        strstr(text.data, ",\"namespace\":\"aws\",\"aws\":{\"operation\":\"PutItem\","));
    assert_null(json_object_get(doc, "http"));
    assert_null(json_object_get(doc, "fault"));
    /* the attributes are still annotations and metadata */
    json_t *ann = json_object_get(doc, "annotations");
    assert_json_str(ann, "task_id", TASK_ID);
    assert_json_str(ann, "rpc_method", "PutItem");
    assert_json_str(ann, "db_system", "dynamodb");
    json_decref(doc);
    sbuf_free(&text);

    /* failed: a fault, still an AWS call; under Lambda as well */
    span_set_error(&s, "STORE_BUSY");
    sbuf b = {0};
    assert_true(xray_segment_encode(&b, &s, "tasks-api", XRAY_SUBSEGMENTS));
    doc = json_loads(b.data, 0, NULL);
    assert_non_null(doc);
    assert_json_str(doc, "namespace", "aws");
    assert_json_str(aws_object(doc, 4), "operation", "PutItem");
    assert_true(json_is_true(json_object_get(doc, "fault")));
    json_decref(doc);
    sbuf_free(&b);
    span_clear(&s);

    /* SNS's PublishBatch from the publish span (PRODUCER): no table; a queue URL if there is one */
    make_root(&s);
    memcpy(s.parent_id, PID, 8);
    span_set_str(&s, "rpc.system", "aws-api");
    span_set_str(&s, "rpc.service", "SNS");
    span_set_str(&s, "rpc.method", "PublishBatch");
    span_set_str(&s, "aws.sns.topic.arn", "arn:aws:sns:eu-west-1:123456789012:tasks");
    span_set_str(&s, "cloud.region", "eu-west-1");
    span_set_str(&s, "aws.request_id", "f8cf9d2c-6b1a-5c3e-9d4f-0a1b2c3d4e5f");
    span_set_str(&s, "aws.sqs.queue.url", "https://sqs.eu-west-1.amazonaws.com/123456789012/task1");
    doc = encode_xray(&s, "svc", NULL);
    assert_json_str(doc, "name", "SNS");
    assert_json_str(doc, "namespace", "aws");
    aws = aws_object(doc, 4);
    assert_json_str(aws, "operation", "PublishBatch");
    assert_json_str(aws, "queue_url", "https://sqs.eu-west-1.amazonaws.com/123456789012/task1");
    assert_json_str(aws, "region", "eu-west-1");
    assert_json_str(aws, "request_id", "f8cf9d2c-6b1a-5c3e-9d4f-0a1b2c3d4e5f");
    json_decref(doc);
    span_clear(&s);

    /* without rpc.service the span's name stays; only the fields there are; long ones are cut */
    make_dynamodb_call(&s);
    char long_id[400];
    memset(long_id, 'r', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    span_set_str(&s, "aws.request_id", long_id);
    span_set_str(&s, "rpc.service", "");
    span_set_str(&s, "cloud.region", "");
    doc = encode_xray(&s, "svc", NULL);
    assert_json_str(doc, "name", "INSERT tasks");
    assert_json_str(doc, "namespace", "aws");
    aws = aws_object(doc, 3);
    assert_null(json_object_get(aws, "region"));
    assert_int_equal(strlen(json_string_value(json_object_get(aws, "request_id"))),
                     XRAY_STRING_MAX);
    json_decref(doc);
    /* a two-byte character across the bound is left out whole, never cut in half */
    memset(long_id, 'r', XRAY_STRING_MAX - 1);
    memcpy(long_id + XRAY_STRING_MAX - 1, "\xc3\xa9tail", sizeof "\xc3\xa9tail");
    span_set_str(&s, "aws.request_id", long_id);
    doc = encode_xray(&s, "svc", NULL);
    aws = aws_object(doc, 3);
    const char *cut = json_string_value(json_object_get(aws, "request_id"));
    assert_int_equal(strlen(cut), XRAY_STRING_MAX - 1);
    assert_memory_equal(cut, long_id, XRAY_STRING_MAX - 1);
    json_decref(doc);
    span_clear(&s);

    /* not downstream calls: an AWS call's attributes on a CONSUMER or INTERNAL span, or on a span
     * that is a segment, make no namespace and no aws object */
    const span_kind others[] = {SPAN_KIND_CONSUMER, SPAN_KIND_INTERNAL};
    for (size_t i = 0; i < 2; i++) {
        make_dynamodb_call(&s);
        s.kind = others[i];
        doc = encode_xray(&s, "svc", NULL);
        assert_json_str(doc, "name", "INSERT tasks");
        assert_null(json_object_get(doc, "namespace"));
        assert_null(json_object_get(doc, "aws"));
        json_decref(doc);
        span_clear(&s);
    }
    make_dynamodb_call(&s);
    memset(s.parent_id, 0, 8);
    doc = encode_xray(&s, "svc", NULL);
    assert_null(json_object_get(doc, "type"));
    assert_json_str(doc, "name", "svc");
    assert_null(json_object_get(doc, "namespace"));
    assert_null(json_object_get(doc, "aws"));
    json_decref(doc);
    span_clear(&s);

    /* other downstream calls stay remote: the local store, another RPC system */
    const char *const systems[] = {NULL, "grpc"};
    for (size_t i = 0; i < 2; i++) {
        memset(&s, 0, sizeof s);
        memcpy(s.trace_id, TID, 16);
        memcpy(s.span_id, SID, 8);
        memcpy(s.parent_id, PID, 8);
        snprintf(s.name, sizeof s.name, "INSERT tasks");
        s.kind = SPAN_KIND_CLIENT;
        s.start_ns = START_NS;
        s.end_ns = END_NS;
        span_set_str(&s, "db.system", "sqlite");
        if (systems[i]) {
            span_set_str(&s, "rpc.system", systems[i]);
            span_set_str(&s, "rpc.service", "Tasks");
            span_set_str(&s, "rpc.method", "Insert");
        }
        doc = encode_xray(&s, "svc", NULL);
        assert_json_str(doc, "name", "INSERT tasks");
        assert_json_str(doc, "namespace", "remote");
        assert_null(json_object_get(doc, "aws"));
        json_decref(doc);
        span_clear(&s);
    }
}

static void test_xray_names(void **state)
{
    (void)state;
    span s;
    make_server(&s, 200);
    s.kind = SPAN_KIND_INTERNAL;
    snprintf(s.name, sizeof s.name, "caf\xc3\xa9 <run>\ttask_1.2:3/4%%&#=+\\-@ ok!");
    json_t *doc = encode_xray(&s, "svc", NULL);
    assert_json_str(doc, "name", "caf_ _run__task_1.2:3/4%&#=+\\-@ ok_");
    json_decref(doc);
    snprintf(s.name, sizeof s.name, "{}");
    doc = encode_xray(&s, "svc", NULL);
    assert_json_str(doc, "name", "__");
    json_decref(doc);
    s.name[0] = '\0';
    doc = encode_xray(&s, "svc", NULL);
    assert_json_str(doc, "name", "unknown");
    json_decref(doc);

    /* Segment names come from the service and are cut to 200 characters. */
    s.kind = SPAN_KIND_SERVER;
    char service[301];
    memset(service, 'a', 300);
    service[300] = '\0';
    service[0] = '"';
    doc = encode_xray(&s, service, NULL);
    const char *name = json_string_value(json_object_get(doc, "name"));
    assert_int_equal(strlen(name), XRAY_NAME_MAX);
    assert_int_equal(name[0], '_');
    assert_int_equal(name[199], 'a');
    json_decref(doc);
    span_clear(&s);
}

static void test_xray_annotation_keys(void **state)
{
    (void)state;
    span s;
    memset(&s, 0, sizeof s);
    memcpy(s.trace_id, TID, 16);
    memcpy(s.span_id, SID, 8);
    s.kind = SPAN_KIND_SERVER;
    s.start_ns = 1;
    s.end_ns = 2000;
    snprintf(s.task_id, sizeof s.task_id, "%s", TASK_ID);
    span_set_str(&s, "a.b-c/d", "1");
    span_set_str(&s, "a_b_c_d", "2"); /* clashes after mapping: first wins */
    span_set_str(&s, "task.id", "3"); /* clashes with task_id */
    span_set_str(&s, "x", "old");
    span_set_str(&s, "x", "new"); /* same key: the later value */
    span_set_int(&s, "Caps9_ok", 7);
    span_set_str(&s, "\xc3\xa9t\xc3\xa9", "utf8");
    char longv[400];
    memset(longv, 'v', sizeof longv - 1);
    longv[sizeof longv - 1] = '\0';
    longv[249] = '\xc3'; /* a 2-byte character straddling byte 250 */
    longv[250] = '\xa9';
    span_set_str(&s, "long", longv);

    sbuf text;
    json_t *doc = encode_xray(&s, "svc", &text);
    assert_non_null(strstr(text.data, "\"start_time\":0.000000,\"end_time\":0.000002,"));
    json_t *ann = json_object_get(doc, "annotations");
    assert_json_str(ann, "task_id", TASK_ID);
    assert_json_str(ann, "a_b_c_d", "1");
    assert_json_str(ann, "x", "new");
    assert_json_int(ann, "Caps9_ok", 7);
    assert_json_str(ann, "_t_", "utf8");
    assert_int_equal(strlen(json_string_value(json_object_get(ann, "long"))), 249);
    assert_int_equal(json_object_size(ann), 6);
    const char *key;
    json_t *v;
    json_object_foreach(ann, key, v)
    {
        for (const char *k = key; *k; k++)
            assert_non_null(
                strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_", *k));
    }
    /* metadata keeps every (latest) attribute under its own key, uncut */
    json_t *otel = json_object_get(json_object_get(doc, "metadata"), "otel");
    assert_int_equal(json_object_size(otel), 7);
    assert_json_str(otel, "a.b-c/d", "1");
    assert_json_str(otel, "a_b_c_d", "2");
    assert_json_str(otel, "task.id", "3");
    assert_json_str(otel, "x", "new");
    assert_int_equal(strlen(json_string_value(json_object_get(otel, "long"))), 399);
    json_decref(doc);
    sbuf_free(&text);
    span_clear(&s);
}

static void test_xray_size_limits(void **state)
{
    (void)state;
    span s;
    make_server(&s, 200);
    char longv[3000];
    memset(longv, 'u', sizeof longv - 1);
    longv[sizeof longv - 1] = '\0';
    span_set_str(&s, "url.path", longv); /* the later url.path wins */
    sbuf text;
    json_t *doc = encode_xray(&s, "svc", &text);
    json_t *req = json_object_get(json_object_get(doc, "http"), "request");
    assert_int_equal(strlen(json_string_value(json_object_get(req, "url"))), XRAY_STRING_MAX);
    json_t *otel = json_object_get(json_object_get(doc, "metadata"), "otel");
    assert_int_equal(strlen(json_string_value(json_object_get(otel, "url.path"))),
                     XRAY_METADATA_STRING_MAX);
    json_decref(doc);
    sbuf_free(&text);
    span_clear(&s);

    /* Strings that escape to six bytes a character would overflow a datagram: metadata goes. */
    memset(&s, 0, sizeof s);
    memcpy(s.trace_id, TID, 16);
    memcpy(s.span_id, SID, 8);
    s.kind = SPAN_KIND_SERVER;
    s.start_ns = 1;
    s.end_ns = 2;
    memset(longv, 1, sizeof longv - 1);
    for (int i = 0; i < SPAN_MAX_ATTRS; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        span_set_str(&s, key, longv);
    }
    sbuf b = {0};
    assert_true(xray_segment_encode(&b, &s, "svc", XRAY_SEGMENTS));
    assert_true(b.len <= XRAY_DOC_MAX);
    json_error_t err;
    doc = json_loads(b.data, 0, &err);
    assert_non_null(doc);
    assert_null(json_object_get(doc, "metadata"));
    assert_int_equal(json_object_size(json_object_get(doc, "annotations")), SPAN_MAX_ATTRS);
    json_decref(doc);
    /* Appending after earlier text keeps that text. */
    sbuf c = {0};
    sbuf_puts(&c, "prefix");
    assert_true(xray_segment_encode(&c, &s, "svc", XRAY_SEGMENTS));
    assert_int_equal(c.len, 6 + b.len);
    assert_memory_equal(c.data, "prefix", 6);
    assert_string_equal(c.data + 6, b.data);
    sbuf_free(&b);
    sbuf_free(&c);
    span_clear(&s);
}

static void test_xray_rejects_zero_ids(void **state)
{
    (void)state;
    span s;
    make_server(&s, 200);
    sbuf b = {0};
    memset(s.span_id, 0, 8);
    assert_false(xray_segment_encode(&b, &s, "svc", XRAY_SEGMENTS));
    memcpy(s.span_id, SID, 8);
    memset(s.trace_id, 0, 16);
    assert_false(xray_segment_encode(&b, &s, "svc", XRAY_SEGMENTS));
    assert_false(xray_segment_encode(&b, NULL, "svc", XRAY_SEGMENTS));
    assert_null(b.data);
    span_clear(&s);
}

static void test_xray_datagram(void **state)
{
    (void)state;
    span s;
    make_server(&s, 200);
    sbuf doc = {0}, dg = {0};
    assert_true(xray_segment_encode(&doc, &s, "svc", XRAY_SEGMENTS));
    xray_datagram(&dg, doc.data);
    const char *hdr = "{\"format\": \"json\", \"version\": 1}\n";
    assert_int_equal(dg.len, strlen(hdr) + doc.len);
    assert_memory_equal(dg.data, hdr, strlen(hdr));
    assert_string_equal(dg.data + strlen(hdr), doc.data);
    json_t *j = json_loads(dg.data + strlen(hdr), 0, NULL);
    assert_non_null(j);
    json_decref(j);
    sbuf_free(&doc);
    sbuf_free(&dg);
    span_clear(&s);
}

static void assert_addr(const char *env, const char *host, int port)
{
    char h[64];
    int p = -1;
    if (!xray_daemon_address(env, h, sizeof h, &p))
        fail_msg("rejected \"%s\"", env ? env : "(null)");
    assert_string_equal(h, host);
    assert_int_equal(p, port);
}

static void assert_addr_rejected(const char *env)
{
    char h[64] = "untouched";
    int p = -7;
    if (xray_daemon_address(env, h, sizeof h, &p))
        fail_msg("accepted \"%s\"", env);
    assert_string_equal(h, "untouched");
    assert_int_equal(p, -7);
}

static void test_xray_daemon_address(void **state)
{
    (void)state;
    assert_addr(NULL, "127.0.0.1", 2000);
    assert_addr("", "127.0.0.1", 2000);
    assert_addr("  \t", "127.0.0.1", 2000);
    assert_addr("10.0.0.1:3000", "10.0.0.1", 3000);
    assert_addr(" xray-daemon:2000 ", "xray-daemon", 2000);
    assert_addr("udp:10.0.0.2:2001 tcp:10.0.0.1:2000", "10.0.0.2", 2001);
    assert_addr("tcp:127.0.0.1:2000 udp:127.0.0.2:2001", "127.0.0.2", 2001);
    assert_addr("udp:127.0.0.2:2001", "127.0.0.2", 2001);
    assert_addr("[::1]:2000", "::1", 2000);
    assert_addr("udp:[fe80::1]:65535 tcp:[fe80::1]:2000", "fe80::1", 65535);
    assert_addr("h:1", "h", 1);
    assert_addr("h:0000002000", "h", 2000); /* plain digits, as taskd's --listen takes them */

    assert_addr_rejected("localhost");
    assert_addr_rejected("localhost:");
    assert_addr_rejected(":2000");
    assert_addr_rejected("localhost:0");
    assert_addr_rejected("localhost:65536");
    assert_addr_rejected("localhost:123456");
    assert_addr_rejected("localhost:20a0");
    assert_addr_rejected("localhost:-1");
    assert_addr_rejected("localhost:+2000");
    assert_addr_rejected("localhost:0x7d0");
    assert_addr_rejected("::1:2000");
    assert_addr_rejected("[::1]2000");
    assert_addr_rejected("[::1:2000");
    assert_addr_rejected("[]:2000");
    assert_addr_rejected("tcp:127.0.0.1:2000");
    assert_addr_rejected("udp:127.0.0.1:2000 udp:127.0.0.1:2001");
    assert_addr_rejected("a:1 b:2");
    assert_addr_rejected("udp:a:1 b:2");
    assert_addr_rejected("udp:");

    /* The host must fit. */
    char small[5];
    int p = 0;
    assert_false(xray_daemon_address("abcde:1", small, sizeof small, &p));
    assert_true(xray_daemon_address("abcd:1", small, sizeof small, &p));
    assert_string_equal(small, "abcd");
    char tiny[9];
    assert_false(xray_daemon_address(NULL, tiny, sizeof tiny, &p));
    assert_false(xray_daemon_address(NULL, NULL, 10, &p));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_resource_and_scope),
        cmocka_unit_test(test_json_root_span),
        cmocka_unit_test(test_json_child_span),
        cmocka_unit_test(test_json_edge_cases),
        cmocka_unit_test(test_proto_roundtrip),
        cmocka_unit_test(test_proto_wire_numbers),
        cmocka_unit_test(test_proto_edge_cases),
        cmocka_unit_test(test_proto_strings_are_utf8),
        cmocka_unit_test(test_dropped_attributes_and_links_are_sent),
        cmocka_unit_test(test_span_sizes_bound_each_part),
        cmocka_unit_test(test_xray_segment),
        cmocka_unit_test(test_xray_segment_errors),
        cmocka_unit_test(test_xray_root_and_in_progress),
        cmocka_unit_test(test_xray_subsegment),
        cmocka_unit_test(test_xray_lambda_mode),
        cmocka_unit_test(test_xray_aws_calls),
        cmocka_unit_test(test_xray_names),
        cmocka_unit_test(test_xray_annotation_keys),
        cmocka_unit_test(test_xray_size_limits),
        cmocka_unit_test(test_xray_rejects_zero_ids),
        cmocka_unit_test(test_xray_datagram),
        cmocka_unit_test(test_xray_daemon_address),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
