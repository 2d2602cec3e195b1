/*
 * otlp_json — spans as an OTLP/HTTP JSON ExportTraceServiceRequest
 * (tracing.md §8), the body of POST /v1/traces with
 * Content-Type: application/json.
 *
 * OTLP's JSON mapping differs from plain proto3 JSON and this encoder follows
 * OTLP: lowerCamelCase keys; trace and span ids as lowercase hex strings;
 * enums (kind, status code) as integers; 64-bit integers (times, intValue)
 * as decimal strings; non-finite doubles as "NaN" / "Infinity" /
 * "-Infinity". parentSpanId is left out for root spans, links only when
 * there are some, droppedAttributesCount and droppedLinksCount (what the
 * span counted past its bounds) only when not 0; span events are not in the
 * span model and never sent.
 * Layout and attribute rules: see otlp.h.
 */
#ifndef TASKD_OTLP_JSON_H
#define TASKD_OTLP_JSON_H

#include "core/sbuf.h"
#include "core/span.h"
#include "trace/otlp.h"

#include <stdbool.h>
#include <stddef.h>

/*
 * Append the request for spans[0..n) with resource r (NULL: no resource
 * attributes) to b. False when out of memory (b then holds partial text and
 * is marked failed) or when spans is NULL with n > 0.
 */
bool otlp_json_encode(sbuf *b, const span *spans, size_t n, const otlp_resource *r);
/*
 * The same, with sizes[i] (room for n; NULL: not wanted) the bytes of span i in the text, the
 * comma before it included: the request for some of the spans is then no longer than the text
 * less the sizes of the others.
 */
bool otlp_json_encode_sized(sbuf *b, const span *spans, size_t n, const otlp_resource *r,
                            size_t *sizes);

#endif
