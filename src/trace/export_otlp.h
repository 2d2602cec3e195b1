/*
 * export_otlp — the OTLP/HTTP exporter: batches of spans POSTed to the
 * traces endpoint as http/protobuf (trace/otlp_proto.h) or http/json
 * (trace/otlp_json.h), as the configuration (trace/otel_env.h) says.
 *
 * A body over 999,999 bytes (before compression) is split at once into as
 * few parts as fit, from its spans' sizes in it; with compression gzip it
 * then goes gzip-compressed with Content-Encoding: gzip (the OTLP/HTTP spec's
 * only compression). A collector
 * that answers 413 Payload Too Large gets the batch again in halves, each
 * half split again on its own 413, down to one span, which is dropped; for
 * the next 10 minutes bodies as sent (gzipped, with gzip) are bounded one
 * byte under the smallest one refused, so later batches are split before
 * they go (at once into as many parts as they need) and a span alone over
 * it is dropped unsent. 2xx is success; a partialSuccess's rejectedSpans
 * are marked failed (the first that many of the batch: the response does not
 * say which). 429/502/503/504 and transport errors are retried, up to 5
 * attempts, after the server's Retry-After (at most 60 s) or an exponential
 * backoff with jitter; anything else fails the batch. Each attempt is bounded
 * by the configured timeout. Warnings are rate-limited (exporter.h) and carry
 * the endpoint.
 *
 * While hurried (a flush or shutdown, exporter.h) a batch gets one attempt
 * whose timeout ends at the deadline: a backoff sleep is cut short, a
 * request still running at the deadline is aborted, and a batch reached
 * after it is failed at once.
 */
#ifndef TASKD_EXPORT_OTLP_H
#define TASKD_EXPORT_OTLP_H

#include "trace/exporter.h"
#include "trace/otel_env.h"
#include "trace/otlp.h"

/* Process-wide set-up and tear-down of libcurl (tracer_global_init/cleanup call these). */
void export_otlp_global_init(void);
void export_otlp_global_cleanup(void);
/*
 * The exporter for cfg's endpoint (which must be set), protocol, compression, headers and
 * timeout; spans go out with resource r, which is borrowed (with the strings it points to): it
 * must outlive the exporter. now_ns is the monotonic clock a body bound learned from a 413
 * expires by (NULL: clock_mono_ns); first_backoff_ms the cap of the backoff before the first retry
 * (0: 500 ms), doubled for each later one up to 30 s. NULL when out of memory.
 */
exporter *export_otlp_new(const otel_config *cfg, const otlp_resource *r, int64_t (*now_ns)(void),
                          int first_backoff_ms);

#endif
