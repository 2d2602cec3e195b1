/*
 * trace — span lifecycle helpers; see trace.h.
 */
#include "trace.h"
#include "core/sbuf.h"
#include "util/clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

int64_t trace_now_ns(void)
{
    return clock_unix_ns();
}

/*
 * Span and trace ids come from a per-thread xoshiro256** generator seeded
 * once from the kernel: ids must be unique and unguessable enough for
 * tracing, not secret, and a system call per span would cost more than the
 * span. (Thread-local state, so no lock and no sharing between threads.)
 */
static _Thread_local uint64_t rng[4];

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t next_random(void)
{
    if (!(rng[0] | rng[1] | rng[2] | rng[3])) {
        if (getrandom(rng, sizeof rng, 0) != (ssize_t)sizeof rng || !(rng[0] | rng[1])) {
            uint64_t t = (uint64_t)trace_now_ns();
            rng[0] = t ^ 0x9e3779b97f4a7c15ULL;
            rng[1] = (uint64_t)(uintptr_t)&rng ^ 0xbf58476d1ce4e5b9ULL;
            rng[2] = t * 0x94d049bb133111ebULL;
            rng[3] = 1;
        }
    }
    uint64_t result = rotl(rng[1] * 5, 7) * 9, t = rng[1] << 17;
    rng[2] ^= rng[0];
    rng[3] ^= rng[1];
    rng[1] ^= rng[2];
    rng[0] ^= rng[3];
    rng[2] ^= t;
    rng[3] = rotl(rng[3], 45);
    return result;
}

static void random_bytes(uint8_t *out, size_t n)
{
    static const uint8_t zero[16] = {0};
    do {
        for (size_t i = 0; i < n; i += 8) {
            uint64_t r = next_random();
            memcpy(out + i, &r, n - i < 8 ? n - i : 8);
        }
    } while (memcmp(out, zero, n) == 0); /* all-zero ids are invalid */
}

void trace_adopt(span *s, const trace_ctx *parent)
{
    memcpy(s->trace_id, parent->trace_id, 16);
    memcpy(s->parent_id, parent->span_id, 8); /* zero when the parent is only a trace */
    s->flags = parent->flags;
    free(s->trace_state);
    /* a copy that fails leaves the span without it: the trace goes on */
    s->trace_state = parent->tracestate ? strdup(parent->tracestate) : NULL;
}

void trace_begin(span *s, const trace_ctx *parent, const char *name, span_kind kind)
{
    span_reset(s);
    if (parent) {
        trace_adopt(s, parent);
    } else {
        uint8_t rnd[12];
        random_bytes(rnd, sizeof rnd);
        tracectx_new_trace_id(s->trace_id, (uint32_t)time(NULL), rnd);
        s->flags = TRACECTX_FLAG_SAMPLED; /* parent-based, always on */
    }
    random_bytes(s->span_id, 8);
    utf8_copy_within(s->name, sizeof s->name, name); /* a protobuf string is UTF-8 */
    s->kind = kind;
    s->start_ns = trace_now_ns();
}

void trace_ctx_of(const span *s, trace_ctx *out)
{
    memcpy(out->trace_id, s->trace_id, 16);
    memcpy(out->span_id, s->span_id, 8);
    out->flags = s->flags;
    out->tracestate = s->trace_state;
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
        tracer_take(t->tracer, s); /* leaves s empty */
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
    metrics_declare(m, "taskd_claims_expired_total",
                    "Client claims whose lease ran out, their tasks failed, by task type.",
                    METRIC_COUNTER, NULL, 0);
    metrics_declare(m, "taskd_handler_duration_seconds", "Handler run time, by task type.",
                    METRIC_HISTOGRAM, handler_buckets,
                    (int)(sizeof handler_buckets / sizeof handler_buckets[0]));
    static const double batch_buckets[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512};
    static const double commit_buckets[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                            0.01,   0.025,   0.05,   0.1,   0.5};
    metrics_declare(m, "taskd_store_commit_writes", "Writes per store transaction (group commit).",
                    METRIC_HISTOGRAM, batch_buckets,
                    (int)(sizeof batch_buckets / sizeof batch_buckets[0]));
    metrics_declare(m, "taskd_store_commit_seconds", "Store transaction time, commit included.",
                    METRIC_HISTOGRAM, commit_buckets,
                    (int)(sizeof commit_buckets / sizeof commit_buckets[0]));
    metrics_declare(m, "taskd_http_requests_total", "HTTP requests, by route, method and code.",
                    METRIC_COUNTER, NULL, 0);
    metrics_declare(m, "taskd_http_request_duration_seconds", "HTTP request latency, by route.",
                    METRIC_HISTOGRAM, http_buckets,
                    (int)(sizeof http_buckets / sizeof http_buckets[0]));
}

static void count_change(void *ctx, const char *task_type, task_status status, bool created)
{
    metrics *m = ctx;
    char labels[160];
    if (created) {
        snprintf(labels, sizeof labels, "task_type=\"%s\"", task_type);
        metrics_add(m, "taskd_tasks_created_total", labels, 1);
    }
    snprintf(labels, sizeof labels, "task_type=\"%s\",status=\"%s\"", task_type,
             task_status_name(status));
    metrics_add(m, "taskd_task_transitions_total", labels, 1);
}

static void count_commit(void *ctx, size_t writes, double seconds, bool durable)
{
    metrics *m = ctx;
    const char *labels = durable ? "sync=\"full\"" : "sync=\"normal\"";
    metrics_observe(m, "taskd_store_commit_writes", labels, (double)writes);
    metrics_observe(m, "taskd_store_commit_seconds", labels, seconds);
}

store_listener trace_store_listener(metrics *m)
{
    if (!m)
        return (store_listener){0};
    return (store_listener){.changed = count_change, .committed = count_commit, .ctx = m};
}
