/*
 * trace — span lifecycle helpers; see trace.h.
 */
#include "trace.h"

#include <string.h>
#include <sys/random.h>
#include <time.h>

int64_t trace_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void random_bytes(uint8_t *out, size_t n)
{
    static const uint8_t zero[16] = {0};
    do {
        if (getrandom(out, n, 0) != (ssize_t)n) {
            /* no entropy source: still unique enough for tracing */
            int64_t t = trace_now_ns();
            for (size_t i = 0; i < n; i++)
                out[i] = (uint8_t)(t >> (8 * (i % 8))) ^ (uint8_t)(i * 131);
        }
    } while (memcmp(out, zero, n) == 0); /* all-zero ids are invalid */
}

void trace_begin(span *s, const trace_ctx *parent, const char *name, span_kind kind)
{
    memset(s, 0, sizeof *s);
    if (parent) {
        memcpy(s->trace_id, parent->trace_id, 16);
        memcpy(s->parent_id, parent->span_id, 8); /* zero when the parent is only a trace */
        s->flags = parent->flags;
    } else {
        uint8_t rnd[12];
        random_bytes(rnd, sizeof rnd);
        tracectx_new_trace_id(s->trace_id, (uint32_t)time(NULL), rnd);
        s->flags = 0x01; /* sampled: parent-based, always on */
    }
    random_bytes(s->span_id, 8);
    size_t n = strlen(name);
    if (n > SPAN_NAME_MAX)
        n = SPAN_NAME_MAX;
    memcpy(s->name, name, n);
    s->name[n] = '\0';
    s->kind = kind;
    s->start_ns = trace_now_ns();
}

void trace_ctx_of(const span *s, trace_ctx *out)
{
    memcpy(out->trace_id, s->trace_id, 16);
    memcpy(out->span_id, s->span_id, 8);
    out->flags = s->flags;
}

void trace_traceparent_of(const span *s, char out[56])
{
    trace_ctx c;
    trace_ctx_of(s, &c);
    tracectx_format_traceparent(&c, out);
}

void trace_end(const telemetry *t, span *s)
{
    if (!s->end_ns)
        s->end_ns = trace_now_ns();
    if (t && t->tracer && s->start_ns)
        tracer_emit(t->tracer, s);
    span_clear(s);
}

void trace_declare_metrics(metrics *m)
{
    static const double http_buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                          0.05,   0.1,   0.25,   0.5,   1,    2.5};
    static const double handler_buckets[] = {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1,
                                             2.5,   5,     10,   30,   60,  300};
    metrics_declare(m, "taskd_tasks_created_total", "Tasks created, by type.", METRIC_COUNTER, NULL,
                    0);
    metrics_declare(m, "taskd_task_transitions_total",
                    "Status changes committed, by task type and new status.", METRIC_COUNTER, NULL,
                    0);
    metrics_declare(m, "taskd_handler_duration_seconds", "Handler run time, by task type.",
                    METRIC_HISTOGRAM, handler_buckets,
                    (int)(sizeof handler_buckets / sizeof handler_buckets[0]));
    metrics_declare(m, "taskd_http_requests_total", "HTTP requests, by route, method and code.",
                    METRIC_COUNTER, NULL, 0);
    metrics_declare(m, "taskd_http_request_duration_seconds", "HTTP request latency, by route.",
                    METRIC_HISTOGRAM, http_buckets,
                    (int)(sizeof http_buckets / sizeof http_buckets[0]));
}
