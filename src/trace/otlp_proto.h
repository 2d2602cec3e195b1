/*
 * otlp_proto — spans as a binary protobuf ExportTraceServiceRequest, the
 * body of POST /v1/traces with Content-Type: application/x-protobuf
 * (OTLP's default http/protobuf protocol).
 *
 * The message types come from proto/trace.proto (a wire-identical subset of
 * opentelemetry-proto) compiled by protoc-c; this header does not expose
 * them. The encoder points the generated structs at the spans' own bytes
 * and strings (nothing is copied), packs once into a malloc'ed buffer and
 * frees the scaffolding. Same content as otlp_json: one ResourceSpans, one
 * ScopeSpans, ids as raw bytes (16 / 8), parent_span_id empty for roots,
 * flags = the W3C trace flags, links, dropped_attributes_count and
 * dropped_links_count (what the span counted past its bounds), status {code, message}. Layout and
 * attribute rules: see otlp.h.
 */
#ifndef TASKD_OTLP_PROTO_H
#define TASKD_OTLP_PROTO_H

#include "core/span.h"
#include "trace/otlp.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Encode spans[0..n) with resource r (NULL: no resource attributes) into a
 * malloc'ed buffer: *out (free it) and *len. False, with *out NULL and *len
 * 0, when out of memory or when spans is NULL with n > 0.
 */
bool otlp_proto_encode(const span *spans, size_t n, const otlp_resource *r, uint8_t **out,
                       size_t *len);
/*
 * The same, but a body that would be over max bytes is not packed: *out is then NULL and *len
 * its size, and sizes[i] (room for n; NULL: not wanted) the bytes of span i in it, its field's
 * tag and length included. The request for some of the spans is no longer than that body less
 * the sizes of the others (the lengths of the messages around the spans take no more bytes).
 */
bool otlp_proto_encode_within(const span *spans, size_t n, const otlp_resource *r, size_t max,
                              size_t *sizes, uint8_t **out, size_t *len);

#endif
