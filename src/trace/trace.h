/*
 * trace — starting and ending spans, and the telemetry handles the
 * instrumented code shares.
 *
 * Every stage of a task's life opens a span in the task's trace: the
 * context travels in the task row (trace), the change record (NewImage.trace)
 * and the message attributes (traceparent), so each stage finds its parent.
 */
#ifndef TASKD_TRACE_H
#define TASKD_TRACE_H

#include "core/span.h"
#include "core/tracectx.h"
#include "store/store.h"
#include "tracer.h"
#include "util/metrics.h"

/* What instrumented code needs; either member may be NULL (then it is a no-op). */
typedef struct telemetry {
    tracer *tracer;
    metrics *metrics;
} telemetry;

/* Unix time in nanoseconds. */
int64_t trace_now_ns(void);
/*
 * Start a span named name: a fresh span id; the trace and sampling of
 * parent, or a new sampled trace when parent is NULL.
 */
void trace_begin(span *s, const trace_ctx *parent, const char *name, span_kind kind);
/* Make an open span a child of parent (its trace, sampling and tracestate), its id kept. */
void trace_adopt(span *s, const trace_ctx *parent);
/* The span's own context (for children and for propagation). */
void trace_ctx_of(const span *s, trace_ctx *out);
/* The span's context as a traceparent header value. */
void trace_traceparent_of(const span *s, char out[56]);
/* End the span now (unless end_ns is already set) and hand it to the tracer; clears s. */
void trace_end(const telemetry *t, span *s);
/* Declare the metric families every part of taskd writes. */
void trace_declare_metrics(metrics *m);
/*
 * A store listener that counts into m (declared by trace_declare_metrics):
 * tasks created and status changes by type, commit sizes and times.
 */
store_listener trace_store_listener(metrics *m);

#endif
