/*
 * tracer — where finished spans go: a bounded local store (for
 * GET /tasks/{id}/trace) and, when configured from the environment, the
 * exporters: OTLP/HTTP (http/protobuf or http/json) and X-Ray segment
 * documents over UDP.
 *
 * tracer_emit() never blocks: it copies the span into a bounded queue that
 * an export thread drains in batches; when the queue is full the span is
 * dropped and counted. The export thread retries 429/502/503/504 and
 * transport errors with backoff (honouring Retry-After) and drops other
 * failures; the queue is flushed on tracer_free(). Only sampled spans (flags
 * bit 0) are exported; the local store keeps every span it is handed. The
 * exporters sit behind one interface (trace/exporter.h): trace/export_otlp.h
 * and trace/export_xray.h.
 *
 * Environment (read by tracer_new):
 *   OTEL_EXPORTER_OTLP_ENDPOINT (base; "/v1/traces" appended),
 *   OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (full URL, wins),
 *   OTEL_EXPORTER_OTLP_HEADERS / OTEL_EXPORTER_OTLP_TRACES_HEADERS (k=v,k=v),
 *   OTEL_EXPORTER_OTLP_PROTOCOL / OTEL_EXPORTER_OTLP_TRACES_PROTOCOL
 *     (http/protobuf default, http/json),
 *   OTEL_EXPORTER_OTLP_TIMEOUT / OTEL_EXPORTER_OTLP_TRACES_TIMEOUT (ms),
 *   OTEL_EXPORTER_OTLP_COMPRESSION / OTEL_EXPORTER_OTLP_TRACES_COMPRESSION (gzip, none),
 *   OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_SDK_DISABLED,
 *   AWS_XRAY_DAEMON_ADDRESS (host:port or "udp:host:port tcp:...").
 * With neither endpoint nor X-Ray address set (or OTEL_SDK_DISABLED=true), spans only reach
 * the local store and no export thread runs. Parsing rules: trace/otel_env.h.
 *
 * A program that links libcurl calls tracer_global_init() once before
 * starting threads, one that loads it when an OTLP exporter needs it gives
 * tracer_options.curl_init instead; either calls tracer_global_cleanup() once
 * after the last tracer (and any other libcurl user) is gone.
 */
#ifndef TASKD_TRACER_H
#define TASKD_TRACER_H

#include "core/span.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tracer tracer;

/* Options; a NULL tracer_options * means service "taskd", no version, both defaults. */
typedef struct tracer_options {
    const char *service_name; /* default when OTEL_SERVICE_NAME is unset, e.g. "taskd" */
    const char *service_version;
    size_t queue_capacity; /* spans waiting for export (0: the default, 8192) */
    size_t local_capacity; /* spans kept for the local view (default 65536), in 512 bytes
                            * each (at least 256 KiB in all); 0 disables */
    bool xray_subsegments; /* inside a Lambda function: X-Ray gets only subsegments (xray.h) */
    /* The monotonic clock, in ns, that the OTLP exporter's body bound learned from a 413
     * expires by (NULL: clock_mono_ns); a test moves it to see the bound end. */
    int64_t (*otlp_clock_ns)(void);
    /* The monotonic clock, in ns, that the X-Ray exporter counts the wait between lookups of a
     * daemon name that did not resolve on (NULL: clock_mono_ns); a test moves it. */
    int64_t (*xray_clock_ns)(void);
    /* How long the first span of a batch waits for the rest, in ms (0: 1000): a batch goes
     * when it holds 512 spans or when this much time has passed since the queue was last
     * emptied. A test whose subject is not that wait shortens it. */
    int batch_interval_ms;
    /* The OTLP exporter's backoff before its first retry, at most, in ms (0: 500), doubling
     * for each retry after it (export_otlp.h). A test whose subject is not the spacing of the
     * retries shortens it. */
    int otlp_backoff_ms;
    /* Called before any exporter is made or thread started, when an OTLP exporter is
     * configured: makes libcurl ready (a program that loads it only when it is needed, as taskd
     * does, loads it here); false, with a reason in err, fails tracer_new(). NULL: the program
     * links libcurl and has called tracer_global_init(). */
    bool (*curl_init)(char *err, size_t errlen);
} tracer_options;

/* Process-wide set-up and tear-down of the HTTP client library (libcurl), for a program that
 * links it; tracer_global_cleanup() also ends what a curl_init of tracer_options began. */
void tracer_global_init(void);
void tracer_global_cleanup(void);

/*
 * Read the environment and, when an exporter is configured, start the export
 * thread; NULL with a reason in err (an endpoint that is not an http(s) URL, a
 * malformed AWS_XRAY_DAEMON_ADDRESS, out of memory). Lesser problems are
 * logged as warnings.
 */
tracer *tracer_new(const tracer_options *o, char *err, size_t errlen);
/* Log one line saying where spans go (the exporters, the service name), once the program that
 * made t has started. */
void tracer_log_setup(const tracer *t);
/* Hand over a finished span (copied); never blocks. Safe from any thread. */
void tracer_emit(tracer *t, const span *s);
/* tracer_emit() of a span the caller gives up: its strings move rather than being copied
 * (the one destination that needs a copy gets one), and *s is left empty. */
void tracer_take(tracer *t, span *s);
/*
 * The locally kept spans of a task, oldest start first; *out is an array of
 * deep copies (free each with span_clear, then the array). Returns the count:
 * 0 when there are none, or when out of memory (errno ENOMEM then).
 */
size_t tracer_task_spans(tracer *t, const char *task_id, span **out);
/*
 * Spans dropped because the export queue was full, export failed for good
 * (any configured exporter: OTLP rejected or gave up, X-Ray send failed or
 * its daemon's name has not resolved yet), or
 * a tracer_flush() ran out of time before they were sent.
 */
uint64_t tracer_dropped(const tracer *t);
/* Spans every configured exporter took. */
uint64_t tracer_exported(const tracer *t);
/*
 * Export everything queued now, without retries, and wait until it is sent
 * or deadline_ms (epoch milliseconds) passes; then drop (and count in
 * tracer_dropped) what is still queued: a process about to be frozen (a
 * Lambda function between invocations) then holds no spans. A batch whose
 * request is still under way is cut short and counted when it ends. True
 * when nothing was left at the deadline (spans an exporter gave up on count
 * as dropped all the same). NULL, or no exporter, is fine (true at once).
 * Safe from any thread: called while another thread's flush runs, it waits
 * for that one, which takes what this caller queued too, and returns what
 * it returns (false when its own deadline comes first: the queue is then
 * left to the flush that runs).
 */
bool tracer_flush(tracer *t, int64_t deadline_ms);
/* Flush what is queued (bounded by the export timeout) and stop. NULL is fine. */
void tracer_free(tracer *t);

#endif
