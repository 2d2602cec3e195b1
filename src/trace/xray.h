/*
 * xray — spans as AWS X-Ray segment documents for the X-Ray daemon's UDP
 * protocol (tracing.md §3, §4). Pure text building, no sockets.
 *
 * Every span becomes one self-contained document, so documents can be sent
 * one datagram each, in any order:
 *  - a segment when the span starts this service's part of the trace: a
 *    SERVER span (its parent, if any, is the remote caller — the span model
 *    has no "parent is remote" bit, so a SERVER span's parent is taken to be
 *    remote) or any span without a parent (an independent subsegment must
 *    name a parent). name = the service name, parent_id = the caller when
 *    there is one.
 *  - otherwise an independent subsegment: type "subsegment", trace_id,
 *    parent_id = the parent span's id (a segment or another subsegment),
 *    name = the span name. A CLIENT or PRODUCER span is a downstream call:
 *    namespace "aws" when it is a call to an AWS API (OpenTelemetry's
 *    rpc.system "aws-api"), which is then named for the service called
 *    (rpc.service: "DynamoDB", "SNS"; the span name without one) and gets
 *    an aws object of what the span tells: operation (rpc.method),
 *    table_name (aws.dynamodb.table_names), queue_url (aws.sqs.queue.url),
 *    region (cloud.region) and request_id (aws.request_id); namespace
 *    "remote" for any other call.
 * Both carry: id (span id, 16 hex), trace_id ("1-8hex-24hex"), start_time
 * and end_time (epoch seconds with microseconds; in_progress when end is 0),
 * an http block from http.request.method, url.path and
 * http.response.status_code, error (4xx), throttle (429), fault (5xx, or
 * status ERROR without a 4xx), a cause holding the status message, and
 * annotations: task_id plus every string/int/bool attribute, keys mapped to
 * [A-Za-z0-9_] (one '_' per other character; the first key wins a clash),
 * strings cut to 250 bytes; metadata {"otel": {every attribute by its own
 * key}}, strings cut to 2048 bytes. A document that would still exceed
 * XRAY_DOC_MAX bytes (the daemon takes at most 64 kB per datagram) is
 * written without its metadata; everything else is bounded well below that.
 *
 * Links are not sent (the segment document has none; X-Ray links an SQS consumer's trace to
 * its producers itself, from AWSTraceHeader), nor are the counts of links and attributes the
 * span dropped past its bounds (no field takes them).
 *
 * Names keep only what X-Ray accepts (ASCII letters, digits, space and
 * _ . : / % & # = + \ - @); anything else becomes '_' (one per UTF-8
 * character) and names are cut to 200 characters.
 *
 * On Lambda the function's segment belongs to Lambda, and only subsegments
 * may be sent (XRAY_SUBSEGMENTS): a SERVER span becomes a subsegment too,
 * under its parent — the function segment named by Lambda-Runtime-Trace-Id.
 * Only a span with no parent at all is still written as a segment.
 */
#ifndef TASKD_XRAY_H
#define TASKD_XRAY_H

#include "core/sbuf.h"
#include "core/span.h"

#include <stdbool.h>
#include <stddef.h>

#define XRAY_DEFAULT_HOST        "127.0.0.1"
#define XRAY_DEFAULT_PORT        2000
#define XRAY_NAME_MAX            200   /* characters in a segment or subsegment name */
#define XRAY_STRING_MAX          250   /* bytes kept of annotation, http, aws and cause strings */
#define XRAY_METADATA_STRING_MAX 2048  /* bytes kept of a string attribute in metadata */
#define XRAY_DOC_MAX             60000 /* bigger documents lose their metadata (limit 64 kB) */

/* Whether taskd owns the segments of its traces (see above). */
typedef enum xray_mode {
    XRAY_SEGMENTS,    /* a service of its own: SERVER and root spans are segments */
    XRAY_SUBSEGMENTS, /* inside a segment another owns (Lambda): parented spans are subsegments */
} xray_mode;

/*
 * Append the X-Ray document for s to b as mode says; service_name names segments (NULL or
 * empty: "unknown_service"). False when out of memory (b is then marked failed) or when the
 * span's trace id or span id is all zero.
 */
bool xray_segment_encode(sbuf *b, const span *s, const char *service_name, xray_mode mode);
/* Append the daemon header line {"format": "json", "version": 1}, '\n', then doc. */
void xray_datagram(sbuf *b, const char *doc);
/*
 * The daemon's UDP address from AWS_XRAY_DAEMON_ADDRESS's value env:
 * "host:port", or space-separated "udp:host:port tcp:host:port" (either
 * order; the udp part is used); "[v6addr]:port" brackets are removed.
 * NULL or blank: 127.0.0.1:2000. False (outputs untouched) when malformed,
 * when only a tcp part is given, or when the host does not fit hostlen.
 */
bool xray_daemon_address(const char *env, char *host, size_t hostlen, int *port);

#endif
