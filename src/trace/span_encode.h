/*
 * span_encode — the rules and text pieces every span encoder shares
 * (otlp_json, otlp_proto, xray), kept in one place so the wire formats
 * cannot drift apart on them.
 *
 * Attributes: a span holds at most SPAN_MAX_ATTRS of them, and the span
 * model lets a key be set twice; every encoder sends a key once, with its
 * last value (later set wins).
 *
 * Doubles in JSON: as sbuf_double() writes them, as Python's repr() does (the
 * fewest digits that read back as the same double: 0.1, not
 * 0.10000000000000001; 1.0; 1e+16); NaN and the infinities,
 * which JSON has no number for, as the strings "NaN", "Infinity" and
 * "-Infinity" (proto3 JSON, which OTLP/JSON follows; X-Ray metadata takes
 * the same).
 */
#ifndef TASKD_SPAN_ENCODE_H
#define TASKD_SPAN_ENCODE_H

#include "core/sbuf.h"
#include "core/span.h"

#include <stdbool.h>

/* The number of attributes of s an encoder reads: n_attrs, capped at SPAN_MAX_ATTRS. */
int span_encode_attr_count(const span *s);
/* True when s->attrs[i] is overridden by a later attribute with the same key (skip it). */
bool span_encode_attr_shadowed(const span *s, int i);
/* Append d as a JSON value by the rule above. */
void span_encode_json_double(sbuf *b, double d);

#endif
