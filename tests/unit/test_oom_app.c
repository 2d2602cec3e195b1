/*
 * The application layer under failing allocations (tests/unit/oom): tracing (the local span
 * store, the tracer, the OTLP and X-Ray encoders and exporters, the OTEL_* configuration), the
 * API function over a SQLite store, the handlers and the work step, the publisher (and a stream
 * consumer reading whole records with none to spare), and the HTTP
 * server's connection counts. Each scenario runs once whole, then once for every allocation it
 * makes with that one failing, and with that one and all after it failing. No run may crash, leave
 * a block behind, or answer as if it had succeeded when it did not; a run that fails must say so to
 * its caller.
 *
 * Only the sweeping thread's allocations count: the SQLite store's writer, the tracer's
 * export thread and the HTTP stub allocate as they like. What those threads free must not
 * have been allocated by a run (nor the other way round), so the scenarios never hand them a
 * block: spans that reach an export queue are left unsampled, and writes that would read a
 * task back on the writer (an update of an existing task) are not made.
 *
 * Where an output does not depend on the clock, it is compared byte for byte with the output
 * of a run with memory to spare, made before the sweep and checked there.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "oom.h"
#include "support/http_stub.h"
#include "support/stderr_capture.h"
#include "support/tmpdir.h"
#include "support_local/sqlite_store.h"
#include "support/trace_env.h"

#include "api/api.h"
#include "api/dashboard.h"
#include "api/openapi.h"
#include "core/config.h"
#include "core/http_head.h"
#include "core/pagetoken.h"
#include "core/span.h"
#include "core/tracectx.h"
#include "core/uuid7.h"
#include "http/admission.h"
#include "http/http_server.h"
#include "pipeline/live.h"
#include "pipeline/publisher.h"
#include "pipeline/stream_consumer.h"
#include "runner/exec_handler.h"
#include "runner/exec_result.h"
#include "runner/handlers.h"
#include "runner/runner.h"
#include "runner/work.h"
#include "store/broker.h"
#include "store/store_sqlite.h"
#include "trace/export_otlp.h"
#include "trace/export_xray.h"
#include "trace/otel_env.h"
#include "trace/otlp_json.h"
#include "trace/otlp_proto.h"
#include "trace/span_log.h"
#include "trace/trace.h"
#include "trace/tracer.h"
#include "trace/xray.h"
#include "util/clock.h"
#include "util/log.h"

#include "trace.pb-c.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <zlib.h>

#define TASK_A      "0190f3c2-aaaa-7000-8000-000000000001"
#define TASK_B      "0190f3c2-bbbb-7000-8000-000000000002"
#define TRACEPARENT "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

/* ---- spans ---------------------------------------------------------------------------- */

/* A finished span numbered n of task_id (may be ""), with every kind of attribute; strings are
 * copied, so this runs outside the sweeps only. */
static void make_span(span *s, const char *task_id, int n, span_kind kind, bool parent)
{
    memset(s, 0, sizeof *s);
    for (int i = 0; i < 16; i++)
        s->trace_id[i] = (uint8_t)(0xa0 + i);
    s->span_id[0] = 0x5a;
    s->span_id[7] = (uint8_t)n;
    if (parent)
        s->parent_id[7] = 0x11;
    s->flags = 1;
    snprintf(s->name, sizeof s->name, "span %d", n);
    s->kind = kind;
    s->start_ns = 1700000000000000000LL + n * 1000;
    s->end_ns = s->start_ns + 500 + n;
    snprintf(s->task_id, sizeof s->task_id, "%s", task_id);
    span_set_static(s, "http.request.method", "GET");
    span_set_str(s, "url.path", "/tasks/x");
    span_set_int(s, "http.response.status_code", n % 2 ? 200 : 503);
    span_set_double(s, "ratio", n + 0.25);
    span_set_bool(s, "cached", n % 2);
    span_set_str(s, "task.type", "echo");
    span_set_str(s, "task.type", "echo again"); /* a key twice: the last value is sent */
    span_set_str(s, "weird key!", "caf\xc3\xa9");
    if (n % 3 == 0)
        span_set_error(s, "it broke");
    uint8_t tid[16] = {1, 2, 3}, sid[8] = {4, 5, n};
    for (int i = 0; i < n % 3; i++)
        span_add_link(s, tid, sid);
}

static bool same_attr(const span_attr *a, const span_attr *b)
{
    if (strcmp(a->key, b->key) != 0 || a->type != b->type)
        return false;
    switch (a->type) {
    case SPAN_ATTR_STRING:
        return strcmp(a->v.s, b->v.s) == 0;
    case SPAN_ATTR_INT:
        return a->v.i == b->v.i;
    case SPAN_ATTR_DOUBLE:
        return a->v.d == b->v.d;
    case SPAN_ATTR_BOOL:
        return a->v.b == b->v.b;
    }
    return false;
}

/* Whether a and b are the same span, field by field. */
static bool same_span(const span *a, const span *b)
{
    if (memcmp(a->trace_id, b->trace_id, 16) || memcmp(a->span_id, b->span_id, 8) ||
        memcmp(a->parent_id, b->parent_id, 8) || a->flags != b->flags ||
        strcmp(a->name, b->name) != 0 || a->kind != b->kind || a->start_ns != b->start_ns ||
        a->end_ns != b->end_ns || a->status != b->status || strcmp(a->task_id, b->task_id) != 0 ||
        a->n_attrs != b->n_attrs || a->n_links != b->n_links)
        return false;
    if ((a->status_msg == NULL) != (b->status_msg == NULL) ||
        (a->status_msg && strcmp(a->status_msg, b->status_msg) != 0))
        return false;
    for (int i = 0; i < a->n_attrs; i++)
        if (!same_attr(&a->attrs[i], &b->attrs[i]))
            return false;
    return memcmp(a->links, b->links, (size_t)a->n_links * sizeof a->links[0]) == 0;
}

static void free_spans(span *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        span_clear(&s[i]);
    free(s);
}

/* A task's spans read back: n of them (the wanted count) or a failure said with ENOMEM. True
 * when they are there; false for a reported failure; a silent loss fails the test. */
static bool spans_read(size_t n, size_t want, int err, const char *what)
{
    if (n == want)
        return true;
    if (n == 0 && err == ENOMEM)
        return false;
    fail_msg("%s: %zu spans read back, want %zu (errno %d)", what, n, want, err);
    return false;
}

/* The spans of TASK_A that t keeps, into *got and *n (free_spans() them), read as spans_read()
 * says: true when there are want of them. */
static bool task_a_spans(tracer *t, size_t want, const char *what, span **got, size_t *n)
{
    *got = NULL;
    errno = 0;
    *n = tracer_task_spans(t, TASK_A, got);
    return spans_read(*n, want, errno, what);
}

/* A tracer of service "taskd" that keeps its spans here only (no exporter is configured);
 * NULL when out of memory. */
static tracer *local_tracer(void)
{
    tracer_options to = {.service_name = "taskd", .local_capacity = 64};
    char err[200] = "";
    return tracer_new(&to, err, sizeof err);
}

/* A call that made nothing, with err its reason: false when that is a lack of memory (the
 * sweep checks that an allocation failed), a failed test otherwise. */
static bool out_of_memory(const char *err, const char *what)
{
    if (!strstr(err, "out of memory"))
        fail_msg("%s: %s", what, err);
    return false;
}

/* ---- span_log ------------------------------------------------------------------------- */

#define LOG_SPANS 12

typedef struct log_case {
    span spans[LOG_SPANS]; /* even: TASK_A, odd: TASK_B */
} log_case;

static bool span_log_put_and_read(void *arg)
{
    const log_case *lc = arg;
    /* small enough that the first spans are overwritten: the newest 8 are kept */
    span_log *l = span_log_new(8, 64 * 1024);
    if (!l)
        return false;
    for (int i = 0; i < LOG_SPANS; i++)
        if (!span_log_put(l, &lc->spans[i]))
            fail_msg("span_log_put refused span %d", i);
    bool ok = span_log_count(l) == 8;
    for (int t = 0; ok && t < 2; t++) {
        span *got = NULL;
        errno = 0;
        size_t n = span_log_task(l, t ? TASK_B : TASK_A, &got);
        ok = spans_read(n, 4, errno, "span_log_task");
        for (size_t i = 0; ok && i < n; i++)
            if (!same_span(&got[i], &lc->spans[LOG_SPANS - 8 + t + 2 * (int)i]))
                fail_msg("span_log_task: span %zu of task %d differs", i, t);
        if (!ok && got)
            fail_msg("span_log_task failed but returned spans");
        free_spans(got, n);
    }
    span_log_free(l);
    return ok;
}

static void test_span_log(void **state)
{
    (void)state;
    log_case *lc = calloc(1, sizeof *lc);
    for (int i = 0; i < LOG_SPANS; i++)
        make_span(&lc->spans[i], i % 2 ? TASK_B : TASK_A, i, SPAN_KIND_INTERNAL, i > 0);
    assert_true(oom_sweep("span_log put and read", span_log_put_and_read, lc) > 20);
    for (int i = 0; i < LOG_SPANS; i++)
        span_clear(&lc->spans[i]);
    free(lc);
}

/* ---- the tracer ----------------------------------------------------------------------- */

typedef struct tracer_case {
    span emitted[3]; /* handed over by copy */
    bool unsampled;  /* an exporter is configured: nothing may reach its queue */
} tracer_case;

/* Whether got (a span the tracer kept) is want as far as it could be made: a string attribute
 * that could not be copied is left out, and an error message may be missing. */
static bool kept_as_made(const span *got, const span *want)
{
    if (memcmp(got->span_id, want->span_id, 8) || memcmp(got->parent_id, want->parent_id, 8) ||
        strcmp(got->name, want->name) != 0 || got->status != want->status ||
        got->n_attrs > want->n_attrs)
        return false;
    if (got->status_msg && (!want->status_msg || strcmp(got->status_msg, want->status_msg) != 0))
        return false;
    for (int i = 0, j = 0; i < got->n_attrs; i++, j++) {
        while (j < want->n_attrs && strcmp(got->attrs[i].key, want->attrs[j].key) != 0)
            j++;
        if (j == want->n_attrs || !same_attr(&got->attrs[i], &want->attrs[j]))
            return false;
    }
    return true;
}

/* The spans of TASK_A the tracer keeps, read back and each checked against want[0..nwant): as
 * made, or (from want[exact] on: copies, which are made whole or not at all) exactly. */
static bool check_task_spans(tracer *t, const span *const *want, size_t nwant, size_t exact,
                             size_t n_expected)
{
    span *got;
    size_t n;
    bool ok = task_a_spans(t, n_expected, "tracer_task_spans", &got, &n);
    for (size_t i = 0; ok && i < n; i++) {
        bool found = false;
        for (size_t k = 0; k < nwant && !found; k++)
            found = memcmp(got[i].span_id, want[k]->span_id, 8) == 0;
        for (size_t k = 0; k < nwant && found; k++)
            if (memcmp(got[i].span_id, want[k]->span_id, 8) == 0 &&
                !(k < exact ? kept_as_made(&got[i], want[k]) : same_span(&got[i], want[k])))
                fail_msg("tracer_task_spans: span %zu (%s) is not as made", i, got[i].name);
        if (!found)
            fail_msg("tracer_task_spans: span %zu (%s) was never emitted", i, got[i].name);
        if (i && got[i].start_ns < got[i - 1].start_ns)
            fail_msg("tracer_task_spans: not in time order");
    }
    free_spans(got, n);
    return ok;
}

static bool tracer_spans(void *arg)
{
    tracer_case *tc = arg;
    tracer_options o = {.service_name = "svc", .service_version = "1.0", .local_capacity = 64};
    char err[200] = "";
    tracer *t = tracer_new(&o, err, sizeof err);
    if (!t) {
        if (!*err)
            fail_msg("tracer_new failed without a reason");
        return false;
    }
    tracer_log_setup(t);
    telemetry tel = {.tracer = t};

    /* started and ended: a request's span and its child, as instrumented code makes them; the
     * expected spans borrow their strings, so making them allocates nothing */
    trace_ctx parent, ctx;
    tracectx_parse_traceparent(TRACEPARENT, &parent);
    span root, child, want_root, want_child;
    trace_begin(&root, &parent, "GET /tasks/{task_id}", SPAN_KIND_SERVER);
    if (tc->unsampled)
        root.flags = 0;
    memcpy(root.task_id, TASK_A, sizeof root.task_id);
    span_set_static(&root, "http.route", "/tasks/{task_id}");
    span_set_str(&root, "url.path", "/tasks/" TASK_A);
    span_set_int(&root, "http.response.status_code", 200);
    trace_ctx_of(&root, &ctx);
    trace_begin(&child, &ctx, "SELECT tasks", SPAN_KIND_CLIENT);
    child.flags = root.flags;
    memcpy(child.task_id, TASK_A, sizeof child.task_id);
    span_set_str(&child, "db.operation.name", "SELECT");
    span_set_error(&child, "no such table");

    memcpy(&want_root, &root, offsetof(span, attrs));
    want_root.n_attrs = 0;
    span_set_static(&want_root, "http.route", "/tasks/{task_id}");
    span_set_static(&want_root, "url.path", "/tasks/" TASK_A);
    span_set_int(&want_root, "http.response.status_code", 200);
    memcpy(&want_child, &child, offsetof(span, attrs));
    want_child.n_attrs = 0;
    want_child.status_msg = (char *)"no such table"; /* borrowed: never cleared */
    span_set_static(&want_child, "db.operation.name", "SELECT");
    trace_end(&tel, &child);
    trace_end(&tel, &root);

    /* handed over: two copied, one taken */
    tracer_emit(t, &tc->emitted[0]);
    tracer_emit(t, &tc->emitted[1]);
    span taken;
    bool copied = span_copy(&taken, &tc->emitted[2]);
    if (copied)
        tracer_take(t, &taken);
    if (copied && (taken.start_ns || taken.n_attrs || taken.status_msg))
        fail_msg("tracer_take left the span it took");

    const span *want[] = {&want_child, &want_root, &tc->emitted[0], &tc->emitted[1],
                          &tc->emitted[2]};
    size_t expected = 4 - (size_t)tracer_dropped(t) + copied;
    bool ok = check_task_spans(t, want, 5, 2, expected);
    if (ok && !tracer_flush(t, clock_unix_ms() + 2000))
        fail_msg("tracer_flush: spans left in the queue");
    tracer_free(t);
    return ok;
}

static void test_tracer(void **state)
{
    (void)state;
    tracer_case *tc = calloc(1, sizeof *tc);
    for (int i = 0; i < 3; i++)
        make_span(&tc->emitted[i], TASK_A, 20 + i, SPAN_KIND_INTERNAL, true);
    test_trace_env_clear();
    setenv("OTEL_SERVICE_NAME", "tasks-api", 1);
    setenv("OTEL_RESOURCE_ATTRIBUTES", "service.version=2.0,deployment.environment=st%C3%A5ge", 1);
    assert_true(oom_sweep("tracer: spans made, ended, emitted, taken, read", tracer_spans, tc) >
                20);

    /* with both exporters: their set-up and the export thread's start and stop (spans stay
     * unsampled, so none reaches the thread's queue) */
    setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1/base/", 1);
    setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=s%20cret,bad header=1,x-team = core ", 1);
    setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip", 1);
    setenv("AWS_XRAY_DAEMON_ADDRESS", "udp:127.0.0.1:2000 tcp:127.0.0.1:2000", 1);
    tc->unsampled = true;
    for (int i = 0; i < 3; i++)
        tc->emitted[i].flags = 0;
    assert_true(oom_sweep("tracer with OTLP and X-Ray exporters", tracer_spans, tc) > 20);
    test_trace_env_clear();
    for (int i = 0; i < 3; i++)
        span_clear(&tc->emitted[i]);
    free(tc);
}

/* ---- the encoders: OTLP JSON and protobuf, X-Ray segments ------------------------------ */

#define ENC_SPANS 4

static const char *const RES_KEYS[] = {"deployment.environment", "service.name", "team", NULL};
static const char *const RES_VALUES[] = {"st\xc3\xa5ge", "loses", "core", "x"};

/* The encoders' and the exporters' spans (task A's server span and its client, a producer of no
 * task, task B's server span) and their resource. */
static void make_encoded(span spans[ENC_SPANS], otlp_resource *res)
{
    make_span(&spans[0], TASK_A, 0, SPAN_KIND_SERVER, false);
    make_span(&spans[1], TASK_A, 1, SPAN_KIND_CLIENT, true);
    make_span(&spans[2], "", 2, SPAN_KIND_PRODUCER, true);
    make_span(&spans[3], TASK_B, 3, SPAN_KIND_SERVER, true);
    *res = (otlp_resource){.service_name = "tasks-api",
                           .service_version = "1.2.3",
                           .attr_keys = RES_KEYS,
                           .attr_values = RES_VALUES,
                           .n_attrs = 4};
}

typedef struct encode_case {
    span spans[ENC_SPANS];
    otlp_resource res;
    sbuf json; /* what a run with memory to spare writes */
    uint8_t *proto;
    size_t proto_len;
    sbuf xray[ENC_SPANS][2]; /* the datagram of each span, as a segment and in a Lambda */
} encode_case;

static bool same_text(const sbuf *got, const sbuf *want)
{
    return got->len == want->len && memcmp(got->data, want->data, want->len) == 0;
}

/* The datagram of span s in mode into out; false (out failed) when out of memory. */
static bool xray_of(const span *s, xray_mode mode, sbuf *out)
{
    sbuf doc = {0};
    if (!xray_segment_encode(&doc, s, "tasks-api", mode)) {
        if (!sbuf_failed(&doc))
            fail_msg("xray_segment_encode failed with memory to spare");
        sbuf_free(&doc);
        return false;
    }
    xray_datagram(out, doc.data);
    sbuf_free(&doc);
    return !sbuf_failed(out);
}

static bool encoders(void *arg)
{
    encode_case *ec = arg;
    sbuf b = {0};
    bool ok = otlp_json_encode(&b, ec->spans, ENC_SPANS, &ec->res);
    if (ok && !same_text(&b, &ec->json))
        fail_msg("otlp_json_encode: another text than with memory to spare");
    if (!ok && !sbuf_failed(&b))
        fail_msg("otlp_json_encode failed but its buffer did not");
    sbuf_free(&b);

    uint8_t *buf = (uint8_t *)"x";
    size_t len = 1;
    if (otlp_proto_encode(ec->spans, ENC_SPANS, &ec->res, &buf, &len)) {
        if (len != ec->proto_len || memcmp(buf, ec->proto, len) != 0)
            fail_msg("otlp_proto_encode: other bytes than with memory to spare");
    } else {
        if (buf || len)
            fail_msg("otlp_proto_encode failed but left a buffer");
        ok = false;
    }
    free(buf);

    for (int i = 0; i < ENC_SPANS; i++)
        for (int m = 0; m < 2; m++) {
            sbuf d = {0};
            if (xray_of(&ec->spans[i], m ? XRAY_SUBSEGMENTS : XRAY_SEGMENTS, &d)) {
                if (!same_text(&d, &ec->xray[i][m]))
                    fail_msg("X-Ray datagram of span %d: another text than with memory to spare",
                             i);
            } else {
                ok = false;
            }
            sbuf_free(&d);
        }
    return ok;
}

static void test_encoders(void **state)
{
    (void)state;
    encode_case *ec = calloc(1, sizeof *ec);
    make_encoded(ec->spans, &ec->res);
    span_set_double(&ec->spans[2], "nan", NAN);
    span_set_double(&ec->spans[2], "inf", -INFINITY);

    /* the references, checked here */
    assert_true(otlp_json_encode(&ec->json, ec->spans, ENC_SPANS, &ec->res));
    json_t *doc = json_loadb(ec->json.data, ec->json.len, 0, NULL);
    assert_non_null(doc);
    json_t *rs = json_array_get(json_object_get(doc, "resourceSpans"), 0);
    assert_int_equal(
        json_array_size(json_object_get(json_object_get(rs, "resource"), "attributes")), 4);
    json_t *spans = json_object_get(json_array_get(json_object_get(rs, "scopeSpans"), 0), "spans");
    assert_int_equal(json_array_size(spans), ENC_SPANS);
    json_decref(doc);
    assert_true(otlp_proto_encode(ec->spans, ENC_SPANS, &ec->res, &ec->proto, &ec->proto_len));
    Opentelemetry__Proto__Trace__V1__ExportTraceServiceRequest *req =
        opentelemetry__proto__trace__v1__export_trace_service_request__unpack(NULL, ec->proto_len,
                                                                              ec->proto);
    assert_non_null(req);
    assert_int_equal(req->n_resource_spans, 1);
    assert_int_equal(req->resource_spans[0]->scope_spans[0]->n_spans, ENC_SPANS);
    assert_string_equal(req->resource_spans[0]->scope_spans[0]->spans[3]->name, "span 3");
    opentelemetry__proto__trace__v1__export_trace_service_request__free_unpacked(req, NULL);
    for (int i = 0; i < ENC_SPANS; i++)
        for (int m = 0; m < 2; m++) {
            assert_true(
                xray_of(&ec->spans[i], m ? XRAY_SUBSEGMENTS : XRAY_SEGMENTS, &ec->xray[i][m]));
            const char *nl = strchr(ec->xray[i][m].data, '\n');
            assert_non_null(nl);
            json_t *seg = json_loads(nl + 1, 0, NULL);
            assert_non_null(seg);
            assert_non_null(json_object_get(seg, "trace_id"));
            json_decref(seg);
        }

    assert_true(oom_sweep("OTLP JSON, OTLP protobuf and X-Ray encoders", encoders, ec) > 20);

    sbuf_free(&ec->json);
    free(ec->proto);
    for (int i = 0; i < ENC_SPANS; i++) {
        span_clear(&ec->spans[i]);
        sbuf_free(&ec->xray[i][0]);
        sbuf_free(&ec->xray[i][1]);
    }
    free(ec);
}

/* ---- OTEL_* configuration ------------------------------------------------------------- */

/* getenv over a NULL-terminated name, value, ... table. */
static const char *table_getenv(const char *name, void *ctx)
{
    for (const char *const *p = ctx; *p; p += 2)
        if (strcmp(p[0], name) == 0)
            return p[1];
    return NULL;
}

static const char *const ENV_FULL[] = {
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "https://collector.example:4318",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "http://loses.example",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "api-key=s%20cret, x-team = core ,bad,Content-Type=x,k3=%zz,k4=v4,k5=v5,k6=,x-team=again",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "http/json",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "2500",
    "OTEL_EXPORTER_OTLP_COMPRESSION",
    "gzip",
    "OTEL_RESOURCE_ATTRIBUTES",
    "service.name=from-attrs,service.version=3.1,deployment.environment=prod,team=core,"
    "team=platform,region=eu%2Dwest,a=1,b=2,c=3",
    "OTEL_SDK_DISABLED",
    "maybe",
    NULL,
};

static const char *const ENV_BASE[] = {
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "http://h:1//",
    "OTEL_SERVICE_NAME",
    "svc",
    "OTEL_RESOURCE_ATTRIBUTES",
    "service.name=loses,a=1,broken",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "grpc",
    NULL,
};

static const char *const ENV_BAD[] = {"OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://h", NULL};

/* Load c from table; false (with the reason checked) when it did not load. */
static bool load_otel(otel_config *c, const char *const *table, const char *service)
{
    char err[200] = "";
    if (otel_config_load(c, table_getenv, (void *)table, service, err, sizeof err))
        return true;
    if (c->endpoint || c->service_name || c->n_headers || c->n_attrs)
        fail_msg("otel_config_load failed but left its result");
    return out_of_memory(err, "otel_config_load");
}

static bool header_is(const otel_config *c, size_t i, const char *k, const char *v)
{
    return i < c->n_headers && strcmp(c->header_keys[i], k) == 0 &&
           strcmp(c->header_values[i], v) == 0;
}

static bool attr_is(const otel_config *c, size_t i, const char *k, const char *v)
{
    return i < c->n_attrs && strcmp(c->attr_keys[i], k) == 0 && strcmp(c->attr_values[i], v) == 0;
}

static bool otel_configuration(void *arg)
{
    (void)arg;
    otel_config c;
    bool ok = load_otel(&c, ENV_FULL, "taskd");
    if (ok &&
        !(strcmp(c.endpoint, "https://collector.example:4318/") == 0 &&
          c.protocol == OTEL_PROTOCOL_HTTP_JSON && c.timeout_ms == 2500 &&
          c.compression == OTEL_COMPRESSION_GZIP && !c.disabled && c.n_headers == 5 &&
          header_is(&c, 0, "api-key", "s cret") && header_is(&c, 1, "x-team", "again") &&
          header_is(&c, 2, "k4", "v4") && header_is(&c, 4, "k6", "") &&
          strcmp(c.service_name, "from-attrs") == 0 && strcmp(c.service_version, "3.1") == 0 &&
          c.n_attrs == 6 && attr_is(&c, 0, "deployment.environment", "prod") &&
          attr_is(&c, 1, "team", "platform") && attr_is(&c, 2, "region", "eu-west") &&
          attr_is(&c, 5, "c", "3") && c.n_warnings == 4))
        fail_msg("otel_config_load: not the configuration of the table");
    otel_config_clear(&c);

    if (load_otel(&c, ENV_BASE, NULL)) {
        if (!(strcmp(c.endpoint, "http://h:1/v1/traces") == 0 &&
              c.protocol == OTEL_PROTOCOL_HTTP_PROTOBUF && strcmp(c.service_name, "svc") == 0 &&
              !c.service_version && c.n_attrs == 0 && c.n_headers == 0 && c.n_warnings == 2))
            fail_msg("otel_config_load: not the configuration of the second table");
    } else {
        ok = false;
    }
    otel_config_clear(&c);

    char err[200] = "";
    if (otel_config_load(&c, table_getenv, (void *)ENV_BAD, NULL, err, sizeof err) ||
        !strstr(err, "not an http(s) URL") || c.endpoint || c.service_name)
        fail_msg("otel_config_load took an ftp endpoint");
    otel_config_clear(&c);

    char *d = otel_percent_decode("a%20b%2Fc", 9);
    if (d && strcmp(d, "a b/c") != 0)
        fail_msg("otel_percent_decode: %s", d);
    ok = ok && d;
    free(d);
    return ok;
}

static void test_otel_env(void **state)
{
    (void)state;
    assert_true(oom_sweep("OTEL_* configuration", otel_configuration, NULL) > 20);
}

/* ---- the exporters --------------------------------------------------------------------- */

typedef struct export_case {
    span spans[ENC_SPANS]; /* as the encoders' case */
    otlp_resource res;
    otel_config cfg_json, cfg_proto;
    http_stub *stub;
    exporter *json, *proto; /* made once: a run reuses their connection */
    int udp;                /* the X-Ray daemon's socket */
    char daemon[64];
    sbuf xray[ENC_SPANS];
} export_case;

/* The spans named in a request body ("name":"span N" in JSON, a Span per span in protobuf). */
static size_t spans_in(const http_stub_request *rq, bool json)
{
    if (!json) {
        Opentelemetry__Proto__Trace__V1__ExportTraceServiceRequest *req =
            opentelemetry__proto__trace__v1__export_trace_service_request__unpack(
                NULL, rq->body_len, (const uint8_t *)rq->body);
        if (!req)
            fail_msg("a protobuf body that does not unpack");
        size_t n = req->n_resource_spans ? req->resource_spans[0]->scope_spans[0]->n_spans : 0;
        opentelemetry__proto__trace__v1__export_trace_service_request__free_unpacked(req, NULL);
        return n;
    }
    char text[16384];
    z_stream z = {0};
    if (inflateInit2(&z, 15 + 16) != Z_OK)
        fail_msg("inflateInit2");
    z.next_in = (Bytef *)rq->body;
    z.avail_in = (uInt)rq->body_len;
    z.next_out = (Bytef *)text;
    z.avail_out = sizeof text - 1;
    int rc = inflate(&z, Z_FINISH);
    size_t len = sizeof text - 1 - z.avail_out;
    inflateEnd(&z);
    if (rc != Z_STREAM_END)
        fail_msg("a gzip body that does not inflate");
    text[len] = '\0';
    size_t n = 0;
    for (const char *p = text; (p = strstr(p, "\"name\":\"span ")); p++)
        n++;
    return n;
}

/* Export through e; every span either reached the stub or is marked failed. */
static bool export_through(export_case *xc, exporter *e, bool json)
{
    bool failed[ENC_SPANS] = {false};
    size_t before = http_stub_count(xc->stub);
    e->export(e, xc->spans, ENC_SPANS, failed);
    size_t delivered = 0, lost = 0;
    for (size_t i = before; i < http_stub_count(xc->stub); i++)
        delivered += spans_in(http_stub_request_at(xc->stub, i), json);
    for (int i = 0; i < ENC_SPANS; i++)
        lost += failed[i];
    if (delivered + lost != ENC_SPANS)
        fail_msg("OTLP export: %zu spans delivered and %zu marked lost of %d", delivered, lost,
                 ENC_SPANS);
    return lost == 0;
}

static bool exporters(void *arg)
{
    export_case *xc = arg;
    bool ok = export_through(xc, xc->json, true);
    ok = export_through(xc, xc->proto, false) && ok;

    /* X-Ray: made in the run, one datagram per span */
    char err[200] = "";
    exporter *x = NULL;
    if (!export_xray_new(&x, xc->daemon, "tasks-api", XRAY_SEGMENTS, NULL, err, sizeof err))
        return out_of_memory(err, "export_xray_new");
    if (!x)
        fail_msg("export_xray_new: no exporter for %s", xc->daemon);
    bool failed[ENC_SPANS] = {false};
    x->export(x, xc->spans, ENC_SPANS, failed);
    for (int i = 0; i < ENC_SPANS; i++) {
        char got[8192];
        ssize_t n = failed[i] ? -1 : recv(xc->udp, got, sizeof got, MSG_DONTWAIT);
        if (!failed[i] && (n != (ssize_t)xc->xray[i].len || memcmp(got, xc->xray[i].data, n)))
            fail_msg("X-Ray export: span %d sent as another datagram", i);
        ok = ok && !failed[i];
    }
    char extra[16];
    if (recv(xc->udp, extra, sizeof extra, MSG_DONTWAIT) >= 0)
        fail_msg("X-Ray export: a datagram for a span marked failed");
    exporter_free(x);
    return ok;
}

/* An exporter to the stub for protocol and compression. */
static exporter *stub_exporter(export_case *xc, otel_config *c, const char *protocol,
                               const char *compression)
{
    char url[80];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/traces", http_stub_port(xc->stub));
    const char *table[] = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                           url,
                           "OTEL_EXPORTER_OTLP_PROTOCOL",
                           protocol,
                           "OTEL_EXPORTER_OTLP_COMPRESSION",
                           compression,
                           "OTEL_EXPORTER_OTLP_HEADERS",
                           "x-api-key=secret,x-empty=",
                           NULL};
    char err[200];
    assert_true(otel_config_load(c, table_getenv, table, "tasks-api", err, sizeof err));
    exporter *e = export_otlp_new(c, &xc->res, NULL, 0);
    assert_non_null(e);
    return e;
}

/* The exporter's own set-up: configuration to libcurl handle and headers, and back. */
static bool otlp_exporter_setup(void *arg)
{
    export_case *xc = arg;
    otel_config c;
    if (!load_otel(&c, ENV_FULL, "taskd"))
        return false;
    exporter *e = export_otlp_new(&c, &xc->res, NULL, 0);
    bool made = e != NULL;
    if (e && strcmp(e->destination, "https://collector.example:4318/") != 0)
        fail_msg("export_otlp_new: destination %s", e->destination);
    exporter_free(e);
    otel_config_clear(&c);
    return made;
}

static void test_exporters(void **state)
{
    (void)state;
    export_case *xc = calloc(1, sizeof *xc);
    make_encoded(xc->spans, &xc->res);
    xc->stub = http_stub_start(NULL);
    xc->json = stub_exporter(xc, &xc->cfg_json, "http/json", "gzip");
    xc->proto = stub_exporter(xc, &xc->cfg_proto, "http/protobuf", "none");

    xc->udp = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(xc->udp >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(xc->udp, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t alen = sizeof a;
    assert_int_equal(getsockname(xc->udp, (struct sockaddr *)&a, &alen), 0);
    snprintf(xc->daemon, sizeof xc->daemon, "127.0.0.1:%d", ntohs(a.sin_port));
    for (int i = 0; i < ENC_SPANS; i++)
        assert_true(xray_of(&xc->spans[i], XRAY_SEGMENTS, &xc->xray[i]));

    assert_true(exporters(xc)); /* with memory to spare, as a reference run */
    assert_true(oom_sweep("OTLP exporter set-up", otlp_exporter_setup, xc) > 5);
    assert_true(oom_sweep("OTLP (JSON, gzip; protobuf) and X-Ray export", exporters, xc) > 20);

    exporter_free(xc->json);
    exporter_free(xc->proto);
    otel_config_clear(&xc->cfg_json);
    otel_config_clear(&xc->cfg_proto);
    http_stub_stop(xc->stub);
    close(xc->udp);
    for (int i = 0; i < ENC_SPANS; i++) {
        span_clear(&xc->spans[i]);
        sbuf_free(&xc->xray[i]);
    }
    free(xc);
}

/* ---- the OpenAPI document ------------------------------------------------------------- */

/* openapi_document() parses its text (one allocation of the sweep: oom.c), then builds on it. */
typedef struct openapi_case {
    config cfg;
    char *doc[2]; /* without and with the pipeline, with memory to spare */
    size_t len[2];
} openapi_case;

static bool openapi(void *arg)
{
    openapi_case *oc = arg;
    size_t len = 0;
    char *doc = openapi_document(&oc->cfg, true, &len);
    bool made = doc != NULL;
    if (doc && (len != oc->len[1] || memcmp(doc, oc->doc[1], len) != 0))
        fail_msg("openapi_document: another document than with memory to spare");
    free(doc);
    return made;
}

static void test_openapi(void **state)
{
    (void)state;
    openapi_case *oc = calloc(1, sizeof *oc);
    assert_true(config_defaults(&oc->cfg));
    for (int p = 0; p < 2; p++) {
        oc->doc[p] = openapi_document(&oc->cfg, p, &oc->len[p]);
        assert_non_null(oc->doc[p]);
        json_t *j = json_loadb(oc->doc[p], oc->len[p], 0, NULL);
        assert_non_null(j);
        assert_int_equal(!!json_object_get(json_object_get(j, "paths"), "/queues"), p);
        json_decref(j);
    }
    assert_true(oom_sweep("OpenAPI document (past its parse)", openapi, oc) > 20);
    free(oc->doc[0]);
    free(oc->doc[1]);
    config_free(&oc->cfg);
    free(oc);
}

/* ---- the API over a SQLite store --------------------------------------------------------- */

#define NOW        1700000000
#define MAX_PARAMS 8

/* One request, the status it must get, and the response a run with memory to spare got. */
typedef struct api_call {
    const char *method;
    const char *path;
    const char *query[MAX_PARAMS]; /* name, value, ..., NULL */
    const char *header, *value;    /* one request header, or NULL */
    const char *body;
    int want;
    bool fresh_id; /* a 201 of a new task: its body names a new id every time */
    api_response ref;
} api_call;

typedef struct api_fixture {
    char dir[256];
    store *store;
    config cfg;
    tracer *tracer;
    api api;
    api_pipeline pipeline;
    char a[37], b[37]; /* tasks: A finished with a history and spans, B created */
    char path[16][96]; /* the calls' paths */
    char token[PAGETOKEN_TEXT_MAX];
    char big[8192];        /* a body over the limit */
    const api_call *calls; /* the group being swept */
    size_t n_calls;
} api_fixture;

static int64_t fixed_now(void)
{
    return NOW;
}

static const char *call_query(void *ctx, const char *name)
{
    const api_call *c = ctx;
    for (const char *const *p = c->query; p[0]; p += 2)
        if (strcmp(p[0], name) == 0)
            return p[1];
    return NULL;
}

static const char *call_header(void *ctx, const char *name)
{
    const api_call *c = ctx;
    return c->header && strcasecmp(c->header, name) == 0 ? c->value : NULL;
}

static void api_call_run(api_fixture *f, const api_call *c, api_response *resp)
{
    api_request req = {.method = c->method,
                       .path = c->path,
                       .query = call_query,
                       .header = call_header,
                       .ctx = (void *)c,
                       .body = c->body ? c->body : "",
                       .body_len = c->body ? strlen(c->body) : 0};
    api_handle(&f->api, &req, resp);
}

static const char *header_of(const api_response *r, const char *name)
{
    for (int i = 0; i < r->n_headers; i++)
        if (strcmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    return NULL;
}

static bool same_headers(const api_response *a, const api_response *b)
{
    if (a->n_headers != b->n_headers)
        return false;
    for (int i = 0; i < a->n_headers; i++)
        if (strcmp(a->headers[i].name, b->headers[i].name) != 0 ||
            strcmp(a->headers[i].value, b->headers[i].value) != 0)
            return false;
    return true;
}

/* A 201's body and Location: {"id":"<uuid>"} and /tasks/<uuid>. */
static bool created_as_said(const api_response *r)
{
    uint8_t raw[16];
    char id[37];
    const char *loc = header_of(r, "Location");
    if (!r->body || r->body_len != 45 || strncmp(r->body, "{\"id\":\"", 7) != 0 ||
        strcmp(r->body + 43, "\"}") != 0 || !loc)
        return false;
    memcpy(id, r->body + 7, 36);
    id[36] = '\0';
    return uuid_parse(id, raw) && strncmp(loc, "/tasks/", 7) == 0 && strcmp(loc + 7, id) == 0;
}

/*
 * Whether resp is c's answer: the reference's status, body and headers. A 500 (with or without
 * a body: api_error() without memory for one), or a 503 where none was due, is a failure said
 * (false); a 503 says when to try again, as every 503 of the API does (Retry-After). Anything
 * else fails the test.
 */
static bool answered(const api_call *c, const api_response *resp)
{
    const api_response *ref = &c->ref;
    if (resp->status == c->want) {
        if (c->fresh_id ? created_as_said(resp)
                        : resp->body_len == ref->body_len &&
                              (!ref->body ||
                               (resp->body && memcmp(resp->body, ref->body, ref->body_len) == 0)) &&
                              same_headers(resp, ref) &&
                              (resp->content_type == ref->content_type ||
                               (resp->content_type && ref->content_type &&
                                strcmp(resp->content_type, ref->content_type) == 0)) &&
                              (resp->stream != NULL) == (ref->stream != NULL))
            return true;
    } else if (resp->status == 500 || (resp->status == 503 && c->want != 503)) {
        if (resp->status == 503 && !header_of(resp, "Retry-After"))
            fail_msg("%s %s: a 503 without Retry-After: %.*s", c->method, c->path,
                     (int)resp->body_len, resp->body ? resp->body : "");
        return false;
    }
    fail_msg("%s %s: %d %.*s; want %d %.*s", c->method, c->path, resp->status, (int)resp->body_len,
             resp->body ? resp->body : "", c->want, (int)ref->body_len, ref->body ? ref->body : "");
    return false;
}

static bool api_calls(void *arg)
{
    api_fixture *f = arg;
    bool ok = true;
    for (size_t i = 0; i < f->n_calls; i++) {
        api_response resp;
        api_call_run(f, &f->calls[i], &resp);
        ok = answered(&f->calls[i], &resp) && ok;
        api_response_free(&resp);
    }
    return ok;
}

/* The reference responses of calls (each checked for its status), then the sweep. */
static void sweep_calls(api_fixture *f, const char *name, api_call *calls, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        api_call_run(f, &calls[i], &calls[i].ref);
        if (calls[i].ref.status != calls[i].want)
            fail_msg("%s %s: %d, want %d: %.*s", calls[i].method, calls[i].path,
                     calls[i].ref.status, calls[i].want, (int)calls[i].ref.body_len,
                     calls[i].ref.body ? calls[i].ref.body : "");
        if (calls[i].fresh_id)
            assert_true(created_as_said(&calls[i].ref));
    }
    f->calls = calls;
    f->n_calls = n;
    assert_true(oom_sweep(name, api_calls, f) > 20);
    for (size_t i = 0; i < n; i++)
        api_response_free(&calls[i].ref);
}

/* The pipeline as the API sees it, answering from memory. */
static store_rc fake_queues(void *ctx, sbuf *out)
{
    (void)ctx;
    sbuf_puts(out,
              "{\"queues\":[{\"name\":\"q\",\"visible\":1},{\"name\":\"dlq\",\"visible\":0}]}");
    return STORE_OK;
}

static store_rc fake_metrics(void *ctx, sbuf *out)
{
    (void)ctx;
    sbuf_puts(out, "# TYPE taskd_up gauge\ntaskd_up 1\n");
    return STORE_OK;
}

/* A redrive of "q" moves 2 messages, done at once; no other queue has a dead-letter queue. */
static store_rc fake_redrive(void *ctx, const char *queue, store_write *w, int64_t *moved)
{
    (void)ctx;
    if (strcmp(queue, "q") != 0)
        return STORE_NOT_FOUND;
    *moved = 2;
    w->rc = STORE_OK;
    w->done(w);
    return STORE_OK;
}

/* A wait that is woken at once (the task changed just then). */
static store_rc fake_wait(void *ctx, const char *task_id, int64_t deadline_ms, api_exchange *ex)
{
    (void)ctx;
    (void)task_id;
    (void)deadline_ms;
    ex->ready(ex);
    return STORE_OK;
}

static bool fake_unwait(void *ctx, api_exchange *ex)
{
    (void)ctx;
    (void)ex;
    return false; /* woken already */
}

static void fake_stream_close(api_stream *s)
{
    (void)s;
}

static const api_stream_ops fake_stream_ops = {.close = fake_stream_close};
static api_stream fake_stream = {&fake_stream_ops};

static store_rc fake_subscribe(void *ctx, int64_t after, const char *task_type, const char *status,
                               api_stream **out)
{
    (void)ctx;
    (void)after;
    (void)task_type;
    (void)status;
    *out = &fake_stream;
    return STORE_OK;
}

/* Three spans of task A in the local trace view, made with memory to spare. */
static void emit_task_spans(tracer *t, const char *task_id)
{
    for (int i = 0; i < 3; i++) {
        span s;
        make_span(&s, task_id, 40 + i, i ? SPAN_KIND_CLIENT : SPAN_KIND_SERVER, i > 0);
        tracer_emit(t, &s);
        span_clear(&s);
    }
}

static int api_setup(void **state)
{
    api_fixture *f = calloc(1, sizeof *f);
    f->store = test_sqlite_store(f->dir, sizeof f->dir, "taskd-oom-app");
    char err[256] = "";
    assert_true(config_defaults(&f->cfg));
    f->cfg.body_limit = 4096;

    store_new_task t = {
        .task_type = "TASK1", .data = "{\"a\":1}", .ttl = TASK_NULL_TIME, .trace = TRACEPARENT};
    assert_int_equal(store_create_task(f->store, &t, NOW - 100, f->a), STORE_OK);
    store_update u = {.id = f->a, .status = TASK_IN_PROGRESS, .status_msg = "Task started"};
    assert_int_equal(store_update_task(f->store, &u, NOW - 90, NULL), STORE_OK);
    u = (store_update){
        .id = f->a, .status = TASK_COMPLETED, .status_msg = "done", .result = "{\"r\":[1,2]}"};
    assert_int_equal(store_update_task(f->store, &u, NOW - 80, NULL), STORE_OK);
    t = (store_new_task){.task_type = "TASK2", .data = "{\"b\":\"x\"}", .ttl = 3600};
    assert_int_equal(store_create_task(f->store, &t, NOW - 50, f->b), STORE_OK);

    test_trace_env_clear();
    tracer_options to = {.service_name = "taskd", .local_capacity = 1024};
    f->tracer = tracer_new(&to, err, sizeof err);
    assert_non_null(f->tracer);
    emit_task_spans(f->tracer, f->a);

    f->pipeline = (api_pipeline){.queues_json = fake_queues,
                                 .redrive = fake_redrive,
                                 .metrics_text = fake_metrics,
                                 .wait_task = fake_wait,
                                 .unwait_task = fake_unwait,
                                 .subscribe = fake_subscribe};
    telemetry tel = {.tracer = f->tracer};
    assert_true(api_init(&f->api, f->store, &f->cfg, &f->pipeline, &tel, fixed_now));
    memset(f->big, 'x', sizeof f->big - 1);
    memcpy(f->big, "{\"task_type\":\"", 14);
    *state = f;
    return 0;
}

static int api_teardown(void **state)
{
    api_fixture *f = *state;
    api_free(&f->api);
    store_close(f->store);
    tracer_free(f->tracer);
    config_free(&f->cfg);
    assert_int_equal(test_tmpdir_remove(f->dir), 0);
    free(f);
    return 0;
}

/* f->path[i] = /tasks/<id><rest> */
static const char *task_path(api_fixture *f, int i, const char *id, const char *rest)
{
    snprintf(f->path[i], sizeof f->path[i], "/tasks/%s%s", id, rest);
    return f->path[i];
}

static void test_api_misc(void **state)
{
    api_fixture *f = *state;
    const dashboard_asset *js = dashboard_find("app.js");
    assert_non_null(js);
    api_call calls[] = {
        {"GET", "/health", .want = 200},
        {"GET", "/openapi.json", .want = 200},
        {"GET", "/", .want = 200},
        {"GET", "/dashboard/app.js", .header = "If-None-Match", .value = js->etag, .want = 304},
        {"HEAD", "/dashboard/nope.js", .want = 404},
        {"GET", "/nope", .want = 404},
        {"DELETE", "/tasks", .want = 405},
        {"GET", "/tasks/", .query = {"limit", "5", "task_type", "TASK 1", NULL}, .want = 307},
        {"POST", "/tasks", .body = f->big, .want = 413},
        {"GET", "/tasks/not-a-uuid", .want = 404},
        {"GET", "/queues/q/redrive", .want = 405},
    };
    sweep_calls(f, "API: health, documents, dashboard, routing errors", calls,
                sizeof calls / sizeof calls[0]);
}

static void test_api_reads(void **state)
{
    api_fixture *f = *state;
    /* the token of the second page of a listing one task a page */
    api_call first = {"GET", "/tasks", .query = {"limit", "1", NULL}, .want = 200};
    api_call_run(f, &first, &first.ref);
    assert_int_equal(first.ref.status, 200);
    json_t *j = json_loadb(first.ref.body, first.ref.body_len, 0, NULL);
    assert_non_null(j);
    snprintf(f->token, sizeof f->token, "%s", json_string_value(json_object_get(j, "next_token")));
    json_decref(j);
    api_response_free(&first.ref);
    assert_true(strlen(f->token) > 10);

    api_call calls[] = {
        {"GET", "/tasks", .query = {"limit", "10", NULL}, .want = 200},
        {"GET", "/tasks", .query = {"status", "COMPLETED", "task_type", "TASK1", NULL},
         .want = 200},
        {"GET", "/tasks", .query = {"limit", "1", NULL}, .want = 200},
        {"GET", "/tasks", .query = {"limit", "1", "next_token", f->token, NULL}, .want = 200},
        {"GET", "/tasks", .query = {"next_token", "bogus", NULL}, .want = 400},
        {"GET", "/tasks", .query = {"status", "BOGUS", NULL}, .want = 422},
        {"GET", "/tasks", .query = {"limit", "0", "task_type", "NOPE", NULL}, .want = 422},
        {"GET", task_path(f, 0, f->a, ""), .want = 200},
        {"GET", task_path(f, 1, f->b, ""), .query = {"wait", "5", NULL}, .want = 200},
        {"GET", task_path(f, 2, f->b, ""), .query = {"wait", "soon", NULL}, .want = 422},
        {"GET", task_path(f, 3, f->a, "/history"), .want = 200},
        {"GET", "/tasks/0190f3c2-0000-7000-8000-000000000000", .want = 404},
    };
    sweep_calls(f, "API: task reads and listings", calls, sizeof calls / sizeof calls[0]);
}

static void test_api_pipeline_routes(void **state)
{
    api_fixture *f = *state;
    api_call calls[] = {
        {"GET", task_path(f, 0, f->a, "/trace"), .want = 200},
        {"GET", "/queues", .want = 200},
        {"GET", "/metrics", .want = 200},
        {"GET", "/events", .query = {"status", "FAILED", NULL}, .want = 200},
        {"HEAD", "/events", .header = "Last-Event-ID", .value = "12", .want = 200},
        {"GET", "/events", .query = {"status", "BOGUS", "last_event_id", "x", NULL}, .want = 422},
        {"GET", "/events", .query = {"task_type", "NOPE", NULL}, .want = 422},
    };
    sweep_calls(f, "API: trace view, queues, metrics, events", calls,
                sizeof calls / sizeof calls[0]);
}

static void test_api_writes(void **state)
{
    api_fixture *f = *state;
    char long_key[300];
    memset(long_key, 'k', sizeof long_key - 1);
    long_key[sizeof long_key - 1] = '\0';
    api_call calls[] = {
        {"POST", "/tasks", .body = "{\"task_type\":\"TASK1\",\"data\":{\"k\":[1,\"v\"]}}",
         .want = 201, .fresh_id = true},
        {"POST", "/tasks", .header = "Idempotency-Key", .value = "order-1",
         .body = "{\"task_type\":\"TASK2\",\"ttl\":60}", .want = 200},
        {"POST", "/tasks", .header = "Idempotency-Key", .value = long_key,
         .body = "{\"task_type\":\"TASK2\"}", .want = 400},
        {"POST", "/tasks", .body = "{\"task_type\":\"NOPE\",\"ttl\":\"soon\"}", .want = 422},
        {"PATCH", "/tasks/0190f3c2-0000-7000-8000-000000000000",
         .body = "{\"status\":\"IN_PROGRESS\"}", .want = 404},
        {"PATCH", task_path(f, 0, f->b, ""), .body = "{\"status\":\"BOGUS\"}", .want = 422},
        {"POST", "/queues/q/redrive", .want = 200},
        {"POST", "/queues/zz/redrive", .want = 404},
    };
    /* the keyed create's first answer is its 201: the sweep's are all 200 with that id */
    api_response first;
    api_call_run(f, &calls[1], &first);
    assert_int_equal(first.status, 201);
    api_response_free(&first);
    sweep_calls(f, "API: creates, updates, redrive", calls, sizeof calls / sizeof calls[0]);
}

/* ---- handlers and the exec handler -------------------------------------------------------- */

static const handler_task TASK = {
    .id = TASK_A, .task_type = "TASK1", .data = "{\"n\":1}", .traceparent = TRACEPARENT};

/* A run's result as wanted (true), or a failure said as out of memory (false). */
static bool result_is(const handler_result *r, bool ok, const char *msg, const char *result)
{
    if (r->ok == ok && r->status_msg && strcmp(r->status_msg, msg) == 0 &&
        (result ? r->result && strcmp(r->result, result) == 0 : !r->result))
        return true;
    if (oom_failures() && !r->ok && !r->result &&
        (!r->status_msg || strstr(r->status_msg, "out of memory") ||
         strstr(r->status_msg, strerror(ENOMEM))))
        return false;
    if (oom_failures() && !r->status_msg && r->ok == ok &&
        (result ? r->result && strcmp(r->result, result) == 0 : !r->result))
        return false; /* the message could not be had: the work step puts its own */
    fail_msg("a run: ok %d, status_msg %s, result %s; want %d, %s, %s", r->ok,
             r->status_msg ? r->status_msg : "(null)", r->result ? r->result : "(null)", ok, msg,
             result ? result : "(null)");
    return false;
}

/* Make a handler from hc and run TASK once through it. */
static bool create_and_run(const handler_config *hc, bool ok, const char *msg, const char *result)
{
    char err[200] = "";
    handler *h = handler_create(hc, err, sizeof err);
    if (!h)
        return out_of_memory(err, "handler_create");
    handler_result r = {0};
    h->run(h, &TASK, 5, &r);
    bool done = result_is(&r, ok, msg, result);
    handler_result_clear(&r);
    handler_free(h);
    return done;
}

static char *exec_command[] = {"sh", "-c", "cat", NULL};

static bool builtin_handlers(void *arg)
{
    (void)arg;
    handler_config hc = {.queue = "q", .handler = "nope", .timeout = 5};
    char err[200] = "";
    if (handler_create(&hc, err, sizeof err) || !strstr(err, "unknown handler"))
        fail_msg("handler_create took an unknown handler");
    bool ok = true;
    snprintf(hc.handler, sizeof hc.handler, "noop");
    ok = create_and_run(&hc, true, "Task completed", NULL) && ok;
    snprintf(hc.handler, sizeof hc.handler, "TASK1"); /* TASK1_SECONDS=0, never failing */
    ok = create_and_run(&hc, true, "Task completed", NULL) && ok;
    /* exec: made (PATH searched, the environment kept) but not run here, where a run costs a
     * process per allocation: the exec handler's own sweep runs one */
    snprintf(hc.handler, sizeof hc.handler, "exec");
    hc.command = exec_command;
    hc.memory_limit = 64;
    handler *h = handler_create(&hc, err, sizeof err);
    if (h && (strcmp(h->name, "exec") != 0 || strcmp(h->label, "exec sh") != 0))
        fail_msg("handler_create made another handler than exec sh");
    ok = (h || out_of_memory(err, "handler_create exec")) && ok;
    handler_free(h);
    return ok;
}

static void test_handlers(void **state)
{
    (void)state;
    setenv("TASK1_SECONDS", "0", 1);
    setenv("TASK1_FAILURE_RATE", "0", 1);
    assert_true(oom_sweep("handlers: noop, TASK1 run, exec made", builtin_handlers, NULL) > 10);
    unsetenv("TASK1_SECONDS");
    unsetenv("TASK1_FAILURE_RATE");
}

/* The exec handler's program sees its input line and its environment: it prints them. */
static const char *const ECHO_ARGV[] = {
    "sh", "-c",
    "read -r line; printf '%s|%s|%s|%s|%s|%s' \"$line\" \"$TASK_ID\" \"$TASK_TYPE\" "
    "\"$TRACEPARENT\" \"$EXTRA\" \"$SECRET\""};
static const char *const ECHO_ENV[] = {"EXTRA=x y", "PATH=/usr/bin:/bin", "EXTRA=x \"y\"", NULL};

typedef struct exec_case {
    handler *h;     /* made with memory to spare, for the run */
    char want[512]; /* the result: a JSON string of what the program printed */
} exec_case;

/* Making the handler: the program found in PATH, the arguments and environment kept. */
static bool exec_creation(void *arg)
{
    (void)arg;
    char err[200] = "";
    handler *h = exec_handler_new(ECHO_ARGV, 3, ECHO_ENV, err, sizeof err);
    if (!h)
        return out_of_memory(err, "exec_handler_new");
    if (!h->label || strcmp(h->label, "exec sh") != 0)
        fail_msg("exec handler label %s", h->label ? h->label : "(null)");
    handler_free(h);
    const char *const bad_env[] = {"TASK_ID=x", NULL};
    if (exec_handler_new(ECHO_ARGV, 3, bad_env, err, sizeof err) || !strstr(err, "TASK_ID"))
        fail_msg("exec_handler_new took an environment that sets TASK_ID");
    const char *const missing[] = {"no-such-program-here"};
    if (exec_handler_new(missing, 1, NULL, err, sizeof err) ||
        !(strstr(err, "no executable") || strstr(err, "out of memory")))
        fail_msg("exec_handler_new found a missing program: %s", err);
    return true;
}

/* One run: the task's line on standard input, its variables in the environment. */
static bool exec_run_once(void *arg)
{
    const exec_case *ec = arg;
    handler_result r = {0};
    ec->h->run(ec->h, &TASK, 5, &r);
    bool ok = result_is(&r, true, "Task completed", ec->want);
    if (!ok && !r.ok && !r.retry)
        fail_msg("a run short of memory became the task's outcome: %s",
                 r.status_msg ? r.status_msg : "(no message)");
    handler_result_clear(&r);
    return ok;
}

/* What a run's output and end become: pure text work, no process. */
static bool exec_results(void *arg)
{
    (void)arg;
    static const char json[] = "{ \"n\" : [1, 2.5, \"x\"],\n \"s\" : \"\\u00e9\" }\n";
    static const char text[] = "line one\nbad \xff byte\n\n";
    static const char tail[] = "warming up\n\xe2\x82\xac boom: it broke\n";
    char *out = NULL;
    bool ok = true;
    int rc = exec_result_from_stdout(json, sizeof json - 1, &out);
    if (rc == 0 && (!out || strcmp(out, "{\"n\":[1,2.5,\"x\"],\"s\":\"\\u00e9\"}") != 0))
        fail_msg("exec_result_from_stdout of JSON: %s", out ? out : "(null)");
    ok = rc == 0;
    free(out);
    rc = exec_result_from_stdout(text, sizeof text - 1, &out);
    if (rc == 0 && (!out || strcmp(out, "\"line one\\nbad \xef\xbf\xbd byte\"") != 0))
        fail_msg("exec_result_from_stdout of text: %s", out ? out : "(null)");
    ok = ok && rc == 0;
    free(out);
    char *msg = exec_result_failure(3 << 8, 0, 0, tail, sizeof tail - 1, false);
    if (msg && strcmp(msg, "exit status 3: warming up\n\xe2\x82\xac boom: it broke") != 0)
        fail_msg("exec_result_failure: %s", msg);
    ok = ok && msg;
    free(msg);
    msg = exec_result_failure(SIGXCPU, 2, 2100, "", 0, false);
    if (msg && strcmp(msg, "killed by signal 24 (SIGXCPU: CPU time limit of 2 s)") != 0)
        fail_msg("exec_result_failure: %s", msg);
    ok = ok && msg;
    free(msg);
    return ok;
}

static void test_exec_handler(void **state)
{
    (void)state;
    exec_case *ec = calloc(1, sizeof *ec);
    setenv("SECRET", "not for the program", 1);
    sbuf b = {0};
    sbuf_json_str(&b, "{\"id\":\"" TASK_A "\",\"task_type\":\"TASK1\",\"data\":{\"n\":1}}|" TASK_A
                      "|TASK1|" TRACEPARENT "|x \"y\"|");
    snprintf(ec->want, sizeof ec->want, "%s", b.data);
    sbuf_free(&b);
    char err[200] = "";
    ec->h = exec_handler_new(ECHO_ARGV, 3, ECHO_ENV, err, sizeof err);
    assert_non_null(ec->h);
    assert_true(exec_run_once(ec));
    assert_true(oom_sweep("exec handler: made", exec_creation, ec) > 10);
    assert_true(
        oom_sweep("exec handler: a run's input, environment and result", exec_run_once, ec) > 5);
    assert_true(oom_sweep("exec results: output and failure messages", exec_results, NULL) > 5);
    handler_free(ec->h);
    unsetenv("SECRET");
    free(ec);
}

/* A run on a thread of its own, named for oom_thread_arm(). */
typedef struct exec_aborted_run {
    handler *h;
    handler_result r;
    atomic_bool done;
} exec_aborted_run;

static void *exec_aborted_run_main(void *arg)
{
    exec_aborted_run *a = arg;
    pthread_setname_np(pthread_self(), "exec-run");
    a->h->run(a->h, &TASK, 5, &a->r);
    atomic_store(&a->done, true);
    return NULL;
}

/*
 * Whichever allocation of an exec run fails, the run is either not started (taskd's want: tried
 * again later) or ended by an abort: none is left running to its timeout. The handler noted a
 * started run for abort() in an array it grew with realloc(), and a run whose growth failed went
 * unnoted: an abort passed it by, and it ran on to its timeout (5 s here).
 */
static void test_exec_run_short_of_memory_is_aborted(void **state)
{
    (void)state;
    char dir[64], started[96];
    assert_true(test_tmpdir_make(dir, sizeof dir, "taskd-oom-exec-abort"));
    snprintf(started, sizeof started, "%s/started", dir);
    const char *const argv[] = {"sh", "-c", ": > \"$0\"; exec sleep 10", started};
    unsigned nth = 1;
    for (;; nth++) {
        char err[200] = "";
        handler *h =
            exec_handler_new(argv, 4, NULL, err, sizeof err); /* a new one: its first run */
        assert_non_null(h);
        unlink(started);
        exec_aborted_run a = {.h = h};
        oom_thread_arm("exec-run", 1, nth);
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, exec_aborted_run_main, &a), 0);
        /* the program says it runs by making the file; a run not started returns */
        for (int i = 0; i < 10000 && !atomic_load(&a.done) && access(started, F_OK) != 0; i++)
            usleep(1000);
        bool ran = access(started, F_OK) == 0;
        int64_t asked = clock_mono_ms();
        h->abort(h);
        assert_int_equal(pthread_join(th, NULL), 0);
        int64_t took = clock_mono_ms() - asked;
        bool failed = oom_thread_failed();
        oom_thread_disarm();
        if (ran && took > 3000)
            fail_msg("with allocation %u of the run failing, it ran %lld ms past its abort: %s",
                     nth, (long long)took, a.r.status_msg ? a.r.status_msg : "(no message)");
        if (!ran && !a.r.retry)
            fail_msg("with allocation %u of the run failing, not started and not to be tried "
                     "again: %s",
                     nth, a.r.status_msg ? a.r.status_msg : "(no message)");
        assert_false(a.r.ok);
        handler_result_clear(&a.r);
        handler_free(h);
        if (!failed) { /* past the run's last allocation: this one ran with memory to spare */
            assert_true(ran);
            break;
        }
    }
    printf("oom: exec run aborted: %u allocations, each failing in turn\n", nth - 1);
    assert_true(nth > 3);
    assert_int_equal(test_tmpdir_remove(dir), 0);
}

/* ---- the work step ----------------------------------------------------------------------- */

/* A store that takes each report at once, on the caller's thread, and keeps what it said. */
typedef struct memory_store {
    store base;
    int reports;
    struct {
        char id[37];
        task_status status;
        char msg[200];
        char result[200];
        bool has_result;
    } last[4];
} memory_store;

static void memory_submit(store *s, store_write *w)
{
    memory_store *m = (memory_store *)s;
    if (w->kind == STORE_WRITE_UPDATE && m->reports < 4) {
        int i = m->reports++;
        snprintf(m->last[i].id, sizeof m->last[i].id, "%s", w->update.id);
        m->last[i].status = w->update.status;
        snprintf(m->last[i].msg, sizeof m->last[i].msg, "%s",
                 w->update.status_msg ? w->update.status_msg : "(null)");
        m->last[i].has_result = w->update.result != NULL;
        snprintf(m->last[i].result, sizeof m->last[i].result, "%s",
                 w->update.result ? w->update.result : "");
    }
    w->rc = STORE_OK;
    w->done(w);
}

static const store_ops memory_ops = {.system = "memory", .submit = memory_submit};

/* The in-test handler: data {"mode":"fail"} fails; else a result of its own. Out of memory, it
 * fails, saying so (or saying nothing, if even that cannot be had). */
static void test_run(handler *h, const handler_task *t, unsigned timeout_s, handler_result *out)
{
    (void)h;
    (void)timeout_s;
    *out = (handler_result){0};
    if (strstr(t->data, "fail")) {
        out->status_msg = strdup("it broke");
        return;
    }
    char *result = strdup("{\"n\":[1,2],\"s\":\"ok\"}");
    char *msg = result ? strdup("all done") : NULL;
    if (!result || !msg) {
        free(result);
        free(msg);
        out->status_msg = strdup("out of memory");
        return;
    }
    *out = (handler_result){.ok = true, .status_msg = msg, .result = result};
}

static void nop_free(handler *h)
{
    (void)h;
}

#define WORK_ITEMS 3

typedef struct work_case {
    memory_store store;
    handler handler;
    handler_config binding;
    work_item items[WORK_ITEMS];
} work_case;

static bool report_is(const memory_store *m, int i, const char *id, task_status status,
                      const char *msg, const char *result)
{
    const char *got = m->last[i].msg;
    if (strcmp(m->last[i].id, id) != 0)
        fail_msg("report %d is of task %s", i, m->last[i].id);
    if (m->last[i].status == status && strcmp(got, msg) == 0 &&
        (result ? m->last[i].has_result && strcmp(m->last[i].result, result) == 0
                : !m->last[i].has_result))
        return true;
    /* out of memory: a failure that says so, or no message at all ("Task failed", or "") */
    if (oom_failures() && m->last[i].status == TASK_FAILED && !m->last[i].has_result &&
        (strstr(got, "out of memory") || strcmp(got, "Task failed") == 0 || !*got))
        return false;
    fail_msg("report of %s: %s \"%s\" %s", id, task_status_name(m->last[i].status), got,
             m->last[i].has_result ? m->last[i].result : "(no result)");
    return false;
}

static bool work_step(void *arg)
{
    work_case *wc = arg;
    tracer *t = local_tracer();
    if (!t)
        return false;
    wc->store.reports = 0;
    work_env e = {.store = &wc->store.base,
                  .handler = &wc->handler,
                  .binding = &wc->binding,
                  .telemetry = {.tracer = t}};
    trace_ctx producer;
    tracectx_parse_traceparent(TRACEPARENT, &producer);
    const char *ids[WORK_ITEMS] = {TASK_A, TASK_B, "0190f3c2-cccc-7000-8000-000000000003"};
    const char *bodies[WORK_ITEMS] = {"{\"mode\":\"ok\"}", "{\"mode\":\"fail\"}", "{}"};
    const store_rc claims[WORK_ITEMS] = {STORE_OK, STORE_CONFLICT, STORE_NOT_FOUND};
    for (int i = 0; i < WORK_ITEMS; i++) {
        work_item *it = &wc->items[i];
        work_item_reset(it);
        snprintf(it->id, sizeof it->id, "%s", ids[i]);
        snprintf(it->type, sizeof it->type, "TASK1");
        it->body = bodies[i];
        it->queue = "q";
        it->traced = i != 1;
        it->producer = producer;
        producer.trace_id[0]++; /* another trace each: the batch links them */
        it->sent_ms = 1700000000000 + i;
        it->receive_count = 1 + i;
        it->message_number = 10 + i;
        it->message_id = i == 2 ? "m-3" : NULL;
        it->claim = claims[i];
        it->status_before = TASK_IN_PROGRESS;
    }
    work_begin(&e, wc->items, WORK_ITEMS);
    store_batch g;
    store_batch_init(&g);
    bool ran[WORK_ITEMS];
    for (int i = 0; i < WORK_ITEMS; i++)
        ran[i] = work_run(&e, &wc->items[i], &g);
    store_batch_wait(&g);
    bool spent[WORK_ITEMS];
    for (int i = 0; i < WORK_ITEMS; i++)
        spent[i] = work_finish(&e, &wc->items[i]);
    /* out of memory checking A's result: not A's outcome, which is had again later */
    bool a_later = oom_failures() && wc->items[0].fate == WORK_LATER;
    if ((!ran[0] && !a_later) || !ran[1] || ran[2] || spent[0] == a_later || !spent[1] ||
        !spent[2] || wc->store.reports != (a_later ? 1 : 2))
        fail_msg("work: ran %d %d %d, spent %d %d %d, %d reports", ran[0], ran[1], ran[2], spent[0],
                 spent[1], spent[2], wc->store.reports);
    if (!a_later && strstr(wc->store.last[0].msg, "checking the handler's result"))
        fail_msg("a result not checked for want of memory failed its task: %s",
                 wc->store.last[0].msg);
    bool ok = !a_later && report_is(&wc->store, 0, TASK_A, TASK_COMPLETED, "all done",
                                    "{\"n\":[1,2],\"s\":\"ok\"}");
    ok = report_is(&wc->store, a_later ? 0 : 1, TASK_B, TASK_FAILED, "it broke", NULL) && ok;

    /* the spans of task A: receive, process, claim, run, report (none when it runs later) */
    span *got;
    size_t n;
    if (task_a_spans(t, a_later ? 4 : 5, "work spans", &got, &n)) {
        static const char *const names[] = {"receive q", "process q", "UPDATE tasks", "test",
                                            "UPDATE tasks"};
        for (size_t i = 0; i < n; i++)
            if (strcmp(got[i].name, names[i]) != 0)
                fail_msg("work span %zu: %s, want %s", i, got[i].name, names[i]);
    } else {
        ok = false;
    }
    free_spans(got, n);
    tracer_free(t);
    return ok;
}

static void test_work(void **state)
{
    (void)state;
    work_case *wc = calloc(1, sizeof *wc);
    wc->store.base.ops = &memory_ops;
    wc->binding = (handler_config){.queue = "q", .handler = "test", .timeout = 5};
    wc->handler = (handler){.name = "test", .run = test_run, .free = nop_free};
    test_trace_env_clear();
    assert_true(oom_sweep("work: begin, run, report, finish", work_step, wc) > 20);
    free(wc);
}

/* A batch of more traced messages than a receive links, two of them of one trace and one of them
 * twice: message j's producer is span j + 1 of trace LINKED_TRACES[j]. */
#define LINKED_ITEMS 11
static const uint8_t LINKED_TRACES[LINKED_ITEMS] = {1, 1, 2, 3, 4, 5, 6, 7, 8, 2, 9};

static bool batch_links_step(void *arg)
{
    work_item *items = arg;
    work_env e = {0};
    for (size_t j = 0; j < LINKED_ITEMS; j++) {
        work_item *it = &items[j];
        work_item_reset(it);
        snprintf(it->id, sizeof it->id, "0190f3c2-dddd-7000-8000-%012zu", j);
        snprintf(it->type, sizeof it->type, "TASK1");
        it->queue = "q";
        it->unclaimed = "claimed elsewhere";
        it->traced = true;
        it->producer = (trace_ctx){.flags = TRACECTX_FLAG_SAMPLED};
        it->producer.trace_id[15] = LINKED_TRACES[j];
        it->producer.span_id[7] = (uint8_t)(j + 1);
    }
    work_begin(&e, items, LINKED_ITEMS);
    /* each receive links the other messages of another trace, SPAN_MAX_LINKS of them in batch
     * order, and counts the rest as dropped, whatever allocation failed */
    for (size_t i = 0; i < LINKED_ITEMS; i++) {
        const span *s = &items[i].receive;
        int linked = 0;
        uint32_t dropped = 0;
        for (size_t j = 0; j < LINKED_ITEMS; j++) {
            if (LINKED_TRACES[j] == LINKED_TRACES[i])
                continue;
            if (linked == SPAN_MAX_LINKS)
                dropped++;
            else if (linked < s->n_links && s->links[linked].span_id[7] == j + 1)
                linked++;
            else
                fail_msg("receive %zu: link %d is not message %zu's producer", i, linked, j);
        }
        if (s->n_links != linked || s->dropped_links != dropped)
            fail_msg("receive %zu: %d links and %u dropped, where %d and %u (%zu failed)", i,
                     s->n_links, s->dropped_links, linked, dropped, oom_failures());
    }
    for (size_t j = 0; j < LINKED_ITEMS; j++) {
        span_clear(&items[j].receive);
        span_clear(&items[j].process);
    }
    return true;
}

static void test_batch_links(void **state)
{
    (void)state;
    work_item *items = calloc(LINKED_ITEMS, sizeof *items);
    assert_non_null(items);
    assert_true(oom_sweep("the links of a batch's receives", batch_links_step, items) > 1);
    free(items);
}

/* ---- the publisher ----------------------------------------------------------------------- */

static const char PUB_CONFIG[] =
    "{\"task_types\":[\"TASK1\",\"TASK2\"],\"topic\":\"tasks\","
    "\"queues\":[{\"name\":\"all\"},{\"name\":\"one\"},{\"name\":\"two\"},{\"name\":\"body\"}],"
    "\"subscriptions\":[{\"queue\":\"all\"},"
    "{\"queue\":\"one\",\"filter_policy\":{\"TaskType\":[\"TASK1\"]}},"
    "{\"queue\":\"two\",\"filter_policy\":{\"TaskType\":[{\"prefix\":\"TASK2\"}]}},"
    "{\"queue\":\"all\",\"filter_policy\":{\"traceparent\":[{\"exists\":true}]}},"
    "{\"queue\":\"body\",\"filter_policy_scope\":\"MessageBody\","
    "\"filter_policy\":{\"n\":[{\"numeric\":[\">\",0]}]}}],"
    "\"stream_consumers\":[{\"name\":\"pub\",\"filter_patterns\":[{\"eventName\":[\"INSERT\"]}]},"
    "{\"name\":\"deep\",\"filter_patterns\":[{\"dynamodb\":{\"NewImage\":{\"task_type\":"
    "{\"S\":[\"TASK1\"]}}}}]}],\"handlers\":[]}";

/* Task A's message attributes with a traceparent (%s). */
#define ATTRIBUTES_OF_A                                                                            \
    "{\"TaskId\":{\"Type\":\"String\",\"Value\":\"" TASK_A "\"},\"TaskType\":{\"Type\":"           \
    "\"String\",\"Value\":\"TASK1\"},\"traceparent\":{\"Type\":\"String\",\"Value\":\"%s\"}}"

typedef struct publisher_case {
    config cfg;
    json_t *record; /* an INSERT of task A */
    char attributes[512];
} publisher_case;

/* The names of the queues p routes to, joined by ','; false for a failure said. */
static bool routes_of(const config *c, publication *p, char *out, size_t len)
{
    const queue_config *q[CONFIG_MAX_ITEMS];
    size_t n;
    out[0] = '\0';
    if (!publisher_route(c, p, q, CONFIG_MAX_ITEMS, &n))
        return false;
    for (size_t i = 0; i < n; i++) {
        size_t used = strlen(out);
        snprintf(out + used, len - used, "%s%s", i ? "," : "", q[i]->name);
    }
    return true;
}

/* An open publication's message: task A's, its trace the publish span's. */
static void check_message(const publication *p, const char *body)
{
    char tp[56];
    trace_traceparent_of(&p->publish, tp);
    if (strcmp(p->message.task_id, TASK_A) != 0 || strcmp(p->message.task_type, "TASK1") != 0 ||
        strcmp(p->message.body, body) != 0 || !p->message.trace ||
        strcmp(p->message.trace, tp) != 0 || memcmp(p->publish.trace_id, p->process.trace_id, 16))
        fail_msg("publication: not task A's message in the publish span's trace");
    trace_ctx stored;
    tracectx_parse_traceparent(TRACEPARENT, &stored);
    if (memcmp(p->process.trace_id, stored.trace_id, 16) != 0)
        fail_msg("publication: not in the task's trace");
}

static bool publishing(void *arg)
{
    publisher_case *pc = arg;
    const consumer_config *pub = &pc->cfg.consumers[0], *deep = &pc->cfg.consumers[1];
    tracer *t = local_tracer();
    if (!t)
        return false;
    telemetry tel = {.tracer = t};
    bool ok = true;
    size_t published = 0;

    /* a whole record, for a consumer whose patterns look into it */
    publication p;
    publish_outcome r = publisher_begin(&pc->cfg, deep, pc->record, 2, &p);
    if (r == PUBLISH_READY) {
        check_message(&p, "{\"s\":\"x\",\"n\":1}");
        char routes[128];
        if (!routes_of(&pc->cfg, &p, routes, sizeof routes))
            ok = false;
        else if (strcmp(routes, "all,one,body") != 0)
            fail_msg("publisher_route: %s", routes);
        if (publish_message_attributes(&p.message)) {
            char want[512];
            snprintf(want, sizeof want, ATTRIBUTES_OF_A, p.message.trace);
            if (strcmp(p.message.attributes, want) != 0)
                fail_msg("publish_message_attributes: %s", p.message.attributes);
        } else {
            ok = false;
        }
        publisher_finish(&tel, &p, NULL);
        published++;
    } else if (r == PUBLISH_NO_MEMORY) {
        ok = false;
    } else {
        fail_msg("publisher_begin skipped an INSERT its consumer takes");
    }

    /* the fields of an INSERT, for a consumer that looks at eventName only */
    if (!publisher_takes_fields(pub) || publisher_takes_fields(deep))
        fail_msg("publisher_takes_fields");
    publish_source src = {TASK_A, "TASK1", "{\"s\":\"x\",\"n\":1}", TRACEPARENT, NULL};
    r = publisher_begin_insert(&pc->cfg, pub, &src, 1, &p);
    if (r == PUBLISH_READY) {
        check_message(&p, src.data);
        publisher_finish(&tel, &p, "the broker is gone");
        published++;
    } else if (r == PUBLISH_NO_MEMORY) {
        ok = false;
    } else {
        fail_msg("publisher_begin_insert skipped an INSERT");
    }

    /* a message for a transport of its own */
    publish_message m;
    if (publisher_message(pc->record, &m)) {
        if (strcmp(m.attributes, pc->attributes) != 0 || strcmp(m.body, "{\"s\":\"x\",\"n\":1}"))
            fail_msg("publisher_message: %s %s", m.body, m.attributes);
        publish_message_free(&m);
    } else {
        ok = false;
    }

    span *got;
    size_t n;
    ok = task_a_spans(t, 2 * published, "publisher spans", &got, &n) && ok;
    for (size_t i = 0; i < n; i++)
        if (strcmp(got[i].name, "process pub") && strcmp(got[i].name, "process deep") &&
            strcmp(got[i].name, "publish tasks"))
            fail_msg("publisher span %s", got[i].name);
    free_spans(got, n);
    tracer_free(t);
    return ok;
}

static void test_publisher(void **state)
{
    (void)state;
    publisher_case *pc = calloc(1, sizeof *pc);
    assert_true(config_defaults(&pc->cfg));
    char err[256] = "";
    if (!config_load_text(&pc->cfg, PUB_CONFIG, "cfg", err, sizeof err))
        fail_msg("config: %s", err);
    pc->record =
        json_pack("{s:s, s:{s:{s:{s:s}, s:{s:s}, s:{s:s}, s:{s:{s:{s:s}, s:{s:s}}}}}}", "eventName",
                  "INSERT", "dynamodb", "NewImage", "id", "S", TASK_A, "task_type", "S", "TASK1",
                  "trace", "S", TRACEPARENT, "data", "M", "s", "S", "x", "n", "N", "1");
    assert_non_null(pc->record);
    snprintf(pc->attributes, sizeof pc->attributes, ATTRIBUTES_OF_A, TRACEPARENT);
    test_trace_env_clear();
    assert_true(publishing(pc));
    assert_true(
        oom_sweep("publisher: records and fields to messages, routes, spans", publishing, pc) > 20);
    json_decref(pc->record);
    config_free(&pc->cfg);
    free(pc);
}

/* ---- the stream consumer, short of memory while it reads a whole record ----------------- */

/* So many of jansson's next allocations on the consumer thread "stream-deep" fail. */
static atomic_int starve_left;

static void *starved_malloc(size_t size)
{
    char name[16];
    if (atomic_load(&starve_left) > 0 &&
        pthread_getname_np(pthread_self(), name, sizeof name) == 0 &&
        strcmp(name, "stream-deep") == 0 && atomic_fetch_sub(&starve_left, 1) > 0) {
        errno = ENOMEM;
        return NULL;
    }
    return malloc(size);
}

/* Wait up to 5 s for queue q to hold want messages; how many it holds. */
static int64_t wait_messages(broker *b, int64_t want)
{
    queue_stats st = {0};
    for (int i = 0; i < 100; i++) {
        assert_int_equal(broker_queue_stats(b, "q", &st), STORE_OK);
        if (st.visible >= want)
            break;
        usleep(50 * 1000);
    }
    return st.visible;
}

/*
 * A consumer whose patterns look into the record reads it whole: its images put together (the
 * data turned into AttributeValues, when the task keeps no image of it), then parsed. Out of
 * memory in either is not a bad record: the read or the batch is retried, never given up on
 * (maximum_retry_attempts is for records that cannot be read), nor read without its image,
 * which no pattern on it would match. Either way the task would stay CREATED with no message.
 */
/* A receive that cannot copy a message's task id gives the message back untouched (the receive
 * fails, its transaction rolled back): delivered without it, the message would be dropped as
 * no task's, and its task left CREATED for good. The next receive delivers and claims it. */
static void test_receive_short_of_memory_keeps_the_message(void **state)
{
    (void)state;
    char dir[64];
    store *s = test_sqlite_store(dir, sizeof dir, "taskd-oom-receive");
    queue_config q = {.visibility_timeout = 30, .retention = 3600, .dead_letter_retention = 3600};
    snprintf(q.name, sizeof q.name, "jobs");
    char id[TASK_ID_LEN + 1];
    store_new_task t = {.task_type = "TASK1", .data = "{\"a\":1}", .ttl = TASK_NULL_TIME};
    assert_int_equal(store_create_task(s, &t, NOW, id), STORE_OK);
    broker *b = broker_of(s);
    broker_message m = {.queue = &q, .task_id = id, .task_type = "TASK1", .body = "{\"a\":1}"};
    assert_int_equal(broker_publish(b, "test", 1, &m, 1), STORE_OK);

    queue_message *got = NULL;
    size_t n = 0;
    int64_t next;
    oom_thread_arm_copy("store-writer", id);
    assert_int_equal(broker_receive_and_claim(b, &q, 10, 0, &got, &n, &next), STORE_ERROR);
    assert_true(oom_thread_failed());
    assert_int_equal(n, 0);
    task now;
    assert_int_equal(store_get_task(s, id, &now), STORE_OK);
    assert_int_equal(now.status, TASK_CREATED);
    task_clear(&now);

    assert_int_equal(broker_receive_and_claim(b, &q, 10, 0, &got, &n, &next), STORE_OK);
    assert_int_equal(n, 1);
    assert_string_equal(got[0].task_id, id);
    assert_string_equal(got[0].body, "{\"a\":1}");
    assert_int_equal(got[0].receive_count, 1);
    assert_int_equal(got[0].claim, STORE_OK);
    queue_messages_free(got, n);
    store_close(s);
    assert_int_equal(test_tmpdir_remove(dir), 0);
}

/* ---- the events thread, short of memory for a row's event ------------------------------ */

static atomic_bool waiter_answered;

static void note_answered(api_exchange *ex)
{
    (void)ex;
    atomic_store(&waiter_answered, true);
}

/* A row whose event the events thread had no memory to read (its status_msg not copied) is read
 * again, not passed over: a waiter on the task it finished is answered as it finishes, not at its
 * deadline a minute on. */
static void test_events_thread_short_of_memory_keeps_the_row(void **state)
{
    (void)state;
    char dir[64];
    store *s = test_sqlite_store(dir, sizeof dir, "taskd-oom-live");
    config cfg;
    assert_true(config_defaults(&cfg));
    metrics *m = metrics_new();
    assert_non_null(m);
    char id[TASK_ID_LEN + 1], err[256] = "";
    store_new_task t = {.task_type = "TASK1", .data = "{}", .ttl = TASK_NULL_TIME};
    assert_int_equal(store_create_task(s, &t, NOW, id), STORE_OK);
    store_update u = {.id = id, .status = TASK_IN_PROGRESS, .status_msg = "Task started"};
    assert_int_equal(store_update_task(s, &u, NOW, NULL), STORE_OK);
    live *l = live_start(broker_of(s), &cfg, m, err, sizeof err);
    if (!l)
        fail_msg("live_start: %s", err);

    api_exchange *ex = calloc(1, sizeof *ex);
    assert_non_null(ex);
    ex->ready = note_answered;
    atomic_store(&waiter_answered, false);
    assert_int_equal(live_wait(l, id, clock_mono_ms() + 60000, ex), STORE_OK);
    /* the events thread copies the row's status_msg twice: reading the row, then its event */
    static const char msg[] = "finished while memory ran short";
    oom_thread_arm_copy_nth("events", msg, 2);
    u = (store_update){.id = id, .status = TASK_COMPLETED, .status_msg = msg};
    assert_int_equal(store_update_task(s, &u, NOW, NULL), STORE_OK);
    /* woken as a commit wakes it (this store has no listener), and again while it waits: a wake
     * before the thread took its first generation is taken for that generation */
    int64_t until = clock_mono_ms() + 20000;
    while (!atomic_load(&waiter_answered) && clock_mono_ms() < until) {
        broker_wake_all(broker_of(s));
        usleep(10000);
    }
    bool failed = oom_thread_failed(), answered = atomic_load(&waiter_answered);
    oom_thread_disarm();
    if (!answered)
        live_unwait(l, ex);
    live_free(l);
    free(ex);
    metrics_free(m);
    config_free(&cfg);
    store_close(s);
    assert_int_equal(test_tmpdir_remove(dir), 0);
    if (!failed)
        fail_msg("no copy of the status_msg failed on the events thread (answered: %d)", answered);
    if (!answered)
        fail_msg("the waiter was not answered within 20 s of its task's finish");
}

/* What a read of a removed task's records wants back. */
typedef struct removed_read {
    broker *b;
    const char *want; /* the INSERT, whole */
} removed_read;

static bool read_removed_task(void *arg)
{
    removed_read *rr = arg;
    change_record *r = NULL;
    size_t n = 0;
    int64_t cp;
    store_rc rc = broker_read_changes(rr->b, "oom", 1, CHANGE_READ_WHOLE, &cp, &r, &n);
    if (rc != STORE_OK) {
        assert_int_equal(n, 0);
        return false;
    }
    oom_pause();
    bool right = n == 1 && !r[0].unreadable && r[0].json && strcmp(r[0].json, rr->want) == 0;
    oom_resume();
    if (!right)
        fail_msg("the INSERT of a removed task came back %s: %s",
                 n == 1 && r[0].unreadable ? "unreadable" : "wrong",
                 n == 1 && r[0].json ? r[0].json : "(no text)");
    change_records_free(r, n);
    return true;
}

/* A removed task's records take its data from its REMOVE record. Out of memory there, in the
 * parse or the copy of its data, fails the read, to be retried: it is not a record that never
 * reads, which a consumer skips after maximum_retry_attempts. */
static void test_removed_task_read_short_of_memory(void **state)
{
    (void)state;
    char dir[64];
    store *s = test_sqlite_store(dir, sizeof dir, "taskd-oom-removed");
    int64_t now = (int64_t)time(NULL);
    char id[TASK_ID_LEN + 1];
    store_new_task t = {.task_type = "TASK1", .data = "{\"a\":[1,\"b\"]}", .ttl = now - 10};
    assert_int_equal(store_create_task(s, &t, now - 5, id), STORE_OK);
    store_update started = {.id = id, .status = TASK_IN_PROGRESS, .status_msg = "Task started"};
    assert_int_equal(store_update_task(s, &started, now - 4, NULL), STORE_OK);
    store_update done = {.id = id, .status = TASK_COMPLETED, .status_msg = "Task completed"};
    assert_int_equal(store_update_task(s, &done, now - 4, NULL), STORE_OK);
    broker *b = broker_of(s);
    change_record *r = NULL;
    size_t n = 0;
    int64_t cp;
    assert_int_equal(broker_read_changes(b, "oom", 1, CHANGE_READ_WHOLE, &cp, &r, &n), STORE_OK);
    assert_int_equal(n, 1);
    removed_read rr = {b, r[0].json};
    config c;
    assert_true(config_defaults(&c));
    c.event_replay = 0;
    c.retention_grace = 0;
    int64_t removed = 0;
    assert_int_equal(broker_sweep(b, &c, &removed, NULL), STORE_OK);
    config_free(&c);
    assert_int_equal(removed, 1);
    assert_true(read_removed_task(&rr)); /* from the REMOVE record now: the same */
    assert_true(oom_sweep("a removed task's INSERT, read whole", read_removed_task, &rr) > 2);
    change_records_free(r, n);
    store_close(s);
    assert_int_equal(test_tmpdir_remove(dir), 0);
}

/* A task read that cannot copy its result fails: a copy that came back NULL would pass for a
 * task without one, and stay in the task cache for the reads after it. The store is opened
 * again so that the read goes to the database (a copy out of the cache that fails is a miss). */
static void test_task_read_short_of_memory_for_its_result(void **state)
{
    (void)state;
    char dir[64];
    store *s = test_sqlite_store(dir, sizeof dir, "taskd-oom-read");
    char id[TASK_ID_LEN + 1];
    store_new_task t = {.task_type = "TASK1", .data = "{}", .ttl = TASK_NULL_TIME};
    assert_int_equal(store_create_task(s, &t, NOW, id), STORE_OK);
    store_update started = {.id = id, .status = TASK_IN_PROGRESS, .status_msg = "Task started"};
    assert_int_equal(store_update_task(s, &started, NOW, NULL), STORE_OK);
    const char *result = "{\"answer\":42}";
    store_update done = {
        .id = id, .status = TASK_COMPLETED, .status_msg = "Task completed", .result = result};
    assert_int_equal(store_update_task(s, &done, NOW, NULL), STORE_OK);
    store_close(s);
    char path[128];
    snprintf(path, sizeof path, "%s/t.db", dir);
    char err[256] = "";
    store_sqlite_options o = {.path = path, .sync = STORE_SYNC_NORMAL};
    assert_non_null(s = store_sqlite_open(&o, err, sizeof err));

    pthread_setname_np(pthread_self(), "oom-reader");
    oom_thread_arm_copy("oom-reader", result);
    task got;
    assert_int_equal(store_get_task(s, id, &got), STORE_ERROR);
    assert_true(oom_thread_failed());
    oom_thread_disarm();
    for (int read = 0; read < 2; read++) { /* from the database, then from the cache */
        assert_int_equal(store_get_task(s, id, &got), STORE_OK);
        assert_non_null(got.result);
        assert_string_equal(got.result, result);
        task_clear(&got);
    }
    store_close(s);
    assert_int_equal(test_tmpdir_remove(dir), 0);
}

/* The defaults with text (a configuration file's JSON) over them; the test fails on a refusal. */
static void load_config(config *cfg, const char *text)
{
    char err[256] = "";
    assert_true(config_defaults(cfg));
    if (!config_load_text(cfg, text, "test", err, sizeof err))
        fail_msg("config: %s", err);
}

/* Poll the task until its status is want, for up to seconds; its status then. */
static task_status wait_status(store *s, const char *id, task_status want, double seconds)
{
    task t = {0};
    for (double waited = 0; waited < seconds; waited += 0.02) {
        assert_int_equal(store_get_task(s, id, &t), STORE_OK);
        task_status st = t.status;
        task_clear(&t);
        if (st == want)
            return st;
        usleep(20000);
    }
    assert_int_equal(store_get_task(s, id, &t), STORE_OK);
    task_status st = t.status;
    task_clear(&t);
    return st;
}

/* A runner short of memory for a batch gives its messages back uncounted: taskd's own want does
 * not walk a task to the dead-letter queue (max_receive_count 2 here, and two batches fail),
 * and the task runs once memory is there. */
static void test_runner_short_of_memory_for_a_batch(void **state)
{
    (void)state;
    static const char cfg_text[] =
        "{\"queues\":[{\"name\":\"jobs\",\"visibility_timeout\":1,\"max_receive_count\":2,"
        "\"dead_letter_queue\":\"jobs-dlq\"},{\"name\":\"jobs-dlq\"}],"
        "\"subscriptions\":[{\"queue\":\"jobs\"}],"
        "\"handlers\":[{\"queue\":\"jobs\",\"handler\":\"noop\",\"concurrency\":1,"
        "\"batch_size\":1,\"timeout\":1}]}";
    config cfg;
    char err[256] = "";
    load_config(&cfg, cfg_text);
    char dir[64];
    store *s = test_sqlite_store(dir, sizeof dir, "taskd-oom-runner");
    char id[TASK_ID_LEN + 1];
    store_new_task t = {.task_type = "TASK1", .data = "{}", .ttl = TASK_NULL_TIME};
    assert_int_equal(store_create_task(s, &t, NOW, id), STORE_OK);
    broker_message m = {
        .queue = config_queue(&cfg, "jobs"), .task_id = id, .task_type = "TASK1", .body = "{}"};
    assert_int_equal(broker_publish(broker_of(s), "test", 1, &m, 1), STORE_OK);

    /* the batch's room (an array of work items, several KiB) fails twice, a second apart */
    oom_thread_arm("run-jobs", 4096, 1);
    handler *h = handler_create(&cfg.handlers[0], err, sizeof err);
    assert_non_null(h);
    runner *r = runner_start(s, broker_of(s), &cfg, &cfg.handlers[0], h, NULL, err, sizeof err);
    assert_non_null(r);
    for (int i = 0; i < 2; i++) {
        for (int k = 0; k < 500 && !oom_thread_failed(); k++)
            usleep(10000);
        assert_true(oom_thread_failed());
        if (i == 0)
            oom_thread_arm("run-jobs", 4096, 1);
    }
    oom_thread_disarm();
    task_status st = wait_status(s, id, TASK_COMPLETED, 15);
    runner_stop_receiving(r);
    assert_true(runner_join(r, clock_mono_s() + 10, NULL));
    runner_free(r); /* and its handler */
    assert_string_equal(task_status_name(st), "COMPLETED");
    store_close(s);
    config_free(&cfg);
    assert_int_equal(test_tmpdir_remove(dir), 0);
}

static void test_stream_consumer_short_of_memory(void **state)
{
    (void)state;
    static const char cfg_text[] =
        "{\"queues\":[{\"name\":\"q\"}],\"subscriptions\":[{\"queue\":\"q\"}],"
        "\"stream_consumers\":[{\"name\":\"deep\",\"maximum_retry_attempts\":0,"
        "\"filter_patterns\":[{\"dynamodb\":{\"NewImage\":{\"task_type\":{\"S\":[\"TASK1\"]}}}}]}],"
        "\"handlers\":[]}";
    config cfg;
    char err[256] = "";
    load_config(&cfg, cfg_text);
    char dir[64];
    store *s = test_sqlite_store(dir, sizeof dir, "taskd-oom-consumer");
    char id[TASK_ID_LEN + 1];
    json_set_alloc_funcs(starved_malloc, free);

    /* no image of its data kept: the first allocation is the image's, in the read */
    store_new_task t = {.task_type = "TASK1", .data = "{\"a\":1}", .ttl = TASK_NULL_TIME};
    assert_int_equal(store_create_task(s, &t, NOW, id), STORE_OK);
    atomic_store(&starve_left, 1);
    telemetry tel = {0};
    stream_consumer *sc =
        stream_consumer_start(broker_of(s), &cfg, &cfg.consumers[0], &tel, err, sizeof err);
    if (!sc)
        fail_msg("stream_consumer_start: %s", err);
    int64_t first = wait_messages(broker_of(s), 1);

    /* its image kept: the first allocation is the parse of the record, and the attempt says
     * it ran out of memory, not that the store failed it */
    t.data_image = "{\"M\":{\"a\":{\"N\":\"1\"}}}";
    test_stderr cap;
    log_level was = log_threshold();
    log_setup(LOG_WARN, NULL);
    test_stderr_begin(&cap);
    atomic_store(&starve_left, 1);
    assert_int_equal(store_create_task(s, &t, NOW, id), STORE_OK);
    int64_t second = wait_messages(broker_of(s), 2);
    int left = atomic_load(&starve_left);
    char *said = test_stderr_end(&cap);
    log_setup(was, NULL);

    /* no memory at all for a while: the attempts go on, backing off up to 3.2 s between them,
     * and a stop cuts the wait short */
    atomic_store(&starve_left, INT_MAX);
    assert_int_equal(store_create_task(s, &t, NOW, id), STORE_OK);
    usleep(3300 * 1000); /* attempts at 0, 0.2, 0.6, 1.4 and 3.0 s: then a wait of 3.2 s */
    double stop_began = clock_mono_s();
    stream_consumer_stop(sc);
    double stop_took = clock_mono_s() - stop_began;
    /* and the record is still there for the next consumer */
    atomic_store(&starve_left, 0);
    sc = stream_consumer_start(broker_of(s), &cfg, &cfg.consumers[0], &tel, err, sizeof err);
    if (!sc)
        fail_msg("stream_consumer_start: %s", err);
    int64_t third = wait_messages(broker_of(s), 3);
    stream_consumer_stop(sc);
    json_set_alloc_funcs(malloc, free);
    if (stop_took > 1.0)
        fail_msg("stopping a consumer that backs off took %.1f s", stop_took);
    if (third != 3)
        fail_msg("the record short of memory for 3 s went without its message (%lld in q)",
                 (long long)third);
    if (first != 1)
        fail_msg("the record read short of memory went without its message (%lld in q)",
                 (long long)first);
    if (second != 2)
        fail_msg("the record parsed short of memory went without its message (%lld in q)",
                 (long long)second);
    if (left > 0)
        fail_msg("no allocation failed");
    /* the parse short of memory is said as such */
    expect_logged(said, "\"message\":\"publishing a batch ran out of memory; retrying\"",
                  "\"error\":\"out of memory\"");
    expect_not_logged(said, "batch failed");
    free(said);
    store_close(s);
    config_free(&cfg);
    assert_int_equal(test_tmpdir_remove(dir), 0);
}

/*
 * A read of the change log that runs out of memory says so in its warning, "cannot read the
 * change stream", which said "error", as of a store that failed. Of two consumers that test
 * eventName alone the first is fed, and the second, "pub", reads each creation itself: it is short
 * of memory for its room for a batch's records, at the read's start, then for its copy of a task's
 * data, once SQLite has read the row. Each read is tried again, and the task published.
 */
static void test_a_change_log_read_short_of_memory_says_so(void **state)
{
    (void)state;
    static const char cfg_text[] =
        "{\"queues\":[{\"name\":\"q\"}],\"subscriptions\":[{\"queue\":\"q\"}],"
        "\"stream_consumers\":["
        "{\"name\":\"fed\",\"filter_patterns\":[{\"eventName\":[\"INSERT\"]}]},"
        "{\"name\":\"pub\",\"filter_patterns\":[{\"eventName\":[\"INSERT\"]}]}],\"handlers\":[]}";
    config cfg;
    char err[256] = "";
    load_config(&cfg, cfg_text);
    char dir[64];
    store *s = test_sqlite_store(dir, sizeof dir, "taskd-oom-log-read");
    char id[TASK_ID_LEN + 1];
    store_new_task t = {.task_type = "TASK1", .data = "{\"a\":0}", .ttl = TASK_NULL_TIME};
    assert_int_equal(store_create_task(s, &t, NOW, id), STORE_OK);
    telemetry tel = {0};
    stream_consumer *sc[2];
    for (int c = 0; c < 2; c++)
        if (!(sc[c] = stream_consumer_start(broker_of(s), &cfg, &cfg.consumers[c], &tel, err,
                                            sizeof err)))
            fail_msg("stream_consumer_start: %s", err);
    assert_int_equal(wait_messages(broker_of(s), 2), 2); /* their threads named */

    const char *data[] = {"{\"a\":1}", "{\"a\":2}"};
    bool failed[2];
    int64_t published[2];
    char *log[2];
    for (int k = 0; k < 2; k++) {
        test_stderr cap;
        log_level was = log_threshold();
        log_setup(LOG_WARN, NULL);
        test_stderr_begin(&cap);
        if (k == 0)
            oom_thread_arm("stream-pub", cfg.consumers[1].batch_size * sizeof(change_record), 1);
        else
            oom_thread_arm_copy("stream-pub", data[k]);
        t.data = data[k];
        assert_int_equal(store_create_task(s, &t, NOW, id), STORE_OK);
        for (int i = 0; i < 500 && !oom_thread_failed(); i++)
            usleep(10 * 1000);
        failed[k] = oom_thread_failed();
        published[k] = wait_messages(broker_of(s), 2 * (k + 2));
        oom_thread_disarm();
        log[k] = test_stderr_end(&cap);
        log_setup(was, NULL);
    }
    for (int c = 0; c < 2; c++)
        stream_consumer_stop(sc[c]);
    for (int k = 0; k < 2; k++) {
        if (!failed[k] || published[k] != 2 * (k + 2))
            fail_msg("read %d: failed %d, %lld messages; said: %s", k, failed[k],
                     (long long)published[k], log[k]);
        expect_logged(log[k], "cannot read the change stream", "\"error\":\"out of memory\"");
        free(log[k]);
    }
    store_close(s);
    config_free(&cfg);
    assert_int_equal(test_tmpdir_remove(dir), 0);
}

/* ---- the listener's connection counts ---------------------------------------------------- */

/* Two clients under a bound of two connections in all: a new client that cannot be counted (no
 * memory for its entry) is refused and counts nothing, so its place is still free. */
static bool admission_counts(void *arg)
{
    (void)arg;
    admission *a = admission_new(2, 2, 64);
    if (!a)
        return false;
    struct sockaddr_in c1 = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x0a000001)};
    struct sockaddr_in c2 = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x0a000002)};
    const struct sockaddr *one = (const struct sockaddr *)&c1, *two = (const struct sockaddr *)&c2;
    bool ok = false;
    admission_verdict v = admission_enter(a, one);
    if (v == ADMISSION_OK) {
        v = admission_enter(a, two);
        if (v == ADMISSION_OUT_OF_MEMORY) {
            /* the first client takes the last place, and then the bound holds */
            if (admission_enter(a, one) != ADMISSION_OK)
                fail_msg("a client refused for want of memory was counted");
            if (admission_enter(a, one) != ADMISSION_FULL)
                fail_msg("past the bound in all after a refusal");
            admission_leave(a, one);
        } else if (v != ADMISSION_OK || admission_enter(a, one) != ADMISSION_FULL) {
            fail_msg("the second client: verdict %d", (int)v);
        } else {
            admission_leave(a, two);
            ok = true;
        }
        admission_leave(a, one);
    } else if (v != ADMISSION_OUT_OF_MEMORY) {
        fail_msg("the first client: verdict %d", (int)v);
    }
    admission_free(a);
    return ok;
}

static void test_admission(void **state)
{
    (void)state;
    assert_true(oom_sweep("admission: counts per client and in all", admission_counts, NULL) >= 3);
}

/* ---- the HTTP server's own allocations, on its loops' threads ---------------------------- */

static int http_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct timeval tv = {.tv_sec = 5};
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
        fail_msg("connect: %s", strerror(errno));
    return fd;
}

static void http_send(int fd, const char *text)
{
    size_t len = strlen(text);
    for (size_t off = 0; off < len;) {
        ssize_t n = send(fd, text + off, len - off, MSG_NOSIGNAL);
        if (n <= 0)
            fail_msg("send: %s", n < 0 ? strerror(errno) : "nothing sent");
        off += (size_t)n;
    }
}

/* Read into out until one whole answer is in (its head and Content-Length body) or the server
 * closed the connection (whole: false); a wait past the 5 s receive timeout fails the test. */
static size_t http_read(int fd, char *out, size_t cap, bool whole)
{
    size_t len = 0;
    for (;;) {
        out[len] = '\0';
        const char *end = strstr(out, "\r\n\r\n");
        const char *cl = strcasestr(out, "\r\nContent-Length:");
        if (whole && end && cl && cl < end &&
            len >= (size_t)(end + 4 - out) + strtoul(cl + 17, NULL, 10))
            return len;
        ssize_t n = recv(fd, out + len, cap - 1 - len, 0);
        if (n == 0 && !whole)
            return len;
        if (n <= 0)
            fail_msg("recv after %zu bytes: %s", len, n < 0 ? strerror(errno) : "closed");
        len += (size_t)n;
        if (len == cap - 1)
            fail_msg("an answer past %zu bytes", cap - 1);
    }
}

/* A request that fails on a loop, and what its client must get. */
typedef struct http_oom_case {
    const char *what;
    size_t min_size;      /* the allocation that fails: the nth of at least this size */
    unsigned nth;         /* made by a loop for the request */
    bool after_a_request; /* armed once a first request on the connection is answered */
    const char *request;  /* sent with "Connection: close" */
    const char *detail;   /* in the 503's JSON detail; NULL: closed without an answer */
} http_oom_case;

static void test_http_server(void **state)
{
    api_fixture *f = *state;
    char body[4001];
    memset(body, ' ', sizeof body - 1);
    memcpy(body, "{\"task_type\":\"TASK1\"}", 21);
    body[sizeof body - 1] = '\0';
    char post[4200];
    snprintf(post, sizeof post,
             "POST /tasks HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
             "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
             strlen(body), body);
    const char *get = "GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    const http_oom_case cases[] = {
        /* the first thing a loop allocates for a connection: the client's admission count or
         * the connection itself; refused at accept, as a bound is */
        {"a connection", 0, 1, false, get, "Out of memory"},
        /* a connection's state, larger than this, where a client's admission count is smaller */
        {"the connection's state", 256, 1, false, get, "Out of memory"},
        {"the first input buffer", 4096, 1, false, get, "Out of memory reading the request"},
        /* the buffer first, then the head's split */
        {"the request head", sizeof(http_request_head), 2, false, get,
         "Out of memory reading the request"},
        {"the exchange with the API", sizeof(api_exchange), 1, false, get, NULL},
        /* past the first buffer of a connection that has one */
        {"a larger body's room", 4097, 1, true, post, "Out of memory reading the request"},
    };

    http_options o = {
        .host = "127.0.0.1", .threads = 2, .body_limit = f->cfg.body_limit, .timeout_s = 5};
    char err[256];
    http_server *h = http_server_start(&o, &f->api, err, sizeof err);
    if (!h)
        fail_msg("http_server_start: %s", err);
    int port = atoi(strrchr(http_server_address(h), ':') + 1);
    static char out[16384];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const http_oom_case *k = &cases[i];
        int fd = -1;
        if (k->after_a_request) {
            fd = http_connect(port);
            http_send(fd, "GET /health HTTP/1.1\r\nHost: t\r\n\r\n");
            http_read(fd, out, sizeof out, true);
            if (strncmp(out, "HTTP/1.1 200", 12) != 0)
                fail_msg("%s: the first request got %.40s", k->what, out);
        }
        oom_thread_arm("http-loop", k->min_size, k->nth);
        if (fd < 0)
            fd = http_connect(port); /* armed before a loop takes it */
        http_send(fd, k->request);
        size_t n = http_read(fd, out, sizeof out, false);
        close(fd);
        if (!oom_thread_failed())
            fail_msg("%s: no allocation failed (the answer: %.60s)", k->what, out);
        oom_thread_disarm();
        if (!k->detail) {
            if (n != 0)
                fail_msg("%s: an answer without memory for it: %.60s", k->what, out);
        } else {
            char detail[128];
            snprintf(detail, sizeof detail, "{\"detail\":\"%s\"}", k->detail);
            if (strncmp(out, "HTTP/1.1 503", 12) != 0 ||
                !strcasestr(out, "\r\nRetry-After: 1\r\n") || !strstr(out, detail))
                fail_msg("%s: want a 503 saying %s, got: %s", k->what, detail, out);
        }
        /* and the server goes on */
        fd = http_connect(port);
        http_send(fd, get);
        http_read(fd, out, sizeof out, false);
        close(fd);
        if (strncmp(out, "HTTP/1.1 200", 12) != 0)
            fail_msg("after %s: /health got %.60s", k->what, out);
    }
    http_server_stop(h); /* waits for every request counted in flight: none may be left */
}

int main(void)
{
    log_setup(LOG_ERROR, "test_oom_app");
    tracer_global_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_span_log, oom_teardown),
        cmocka_unit_test_teardown(test_tracer, oom_teardown),
        cmocka_unit_test_teardown(test_encoders, oom_teardown),
        cmocka_unit_test_teardown(test_otel_env, oom_teardown),
        cmocka_unit_test_teardown(test_exporters, oom_teardown),
        cmocka_unit_test_teardown(test_openapi, oom_teardown),
        cmocka_unit_test_setup_teardown(test_api_misc, api_setup, api_teardown),
        cmocka_unit_test_setup_teardown(test_api_reads, api_setup, api_teardown),
        cmocka_unit_test_setup_teardown(test_api_pipeline_routes, api_setup, api_teardown),
        cmocka_unit_test_setup_teardown(test_api_writes, api_setup, api_teardown),
        cmocka_unit_test_teardown(test_handlers, oom_teardown),
        cmocka_unit_test_teardown(test_exec_handler, oom_teardown),
        cmocka_unit_test_teardown(test_exec_run_short_of_memory_is_aborted, oom_teardown),
        cmocka_unit_test_teardown(test_work, oom_teardown),
        cmocka_unit_test_teardown(test_batch_links, oom_teardown),
        cmocka_unit_test_teardown(test_publisher, oom_teardown),
        cmocka_unit_test(test_stream_consumer_short_of_memory),
        cmocka_unit_test(test_a_change_log_read_short_of_memory_says_so),
        cmocka_unit_test(test_receive_short_of_memory_keeps_the_message),
        cmocka_unit_test(test_task_read_short_of_memory_for_its_result),
        cmocka_unit_test_teardown(test_removed_task_read_short_of_memory, oom_teardown),
        cmocka_unit_test(test_runner_short_of_memory_for_a_batch),
        cmocka_unit_test_teardown(test_events_thread_short_of_memory_keeps_the_row, oom_teardown),
        cmocka_unit_test_teardown(test_admission, oom_teardown),
        cmocka_unit_test_setup_teardown(test_http_server, api_setup, api_teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tracer_global_cleanup();
    return rc;
}
