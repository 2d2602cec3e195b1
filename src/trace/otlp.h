/*
 * otlp — what the two OTLP encoders (otlp_json, otlp_proto) share: the
 * resource that describes this process, the instrumentation scope, and the
 * rules both apply to a span's attributes.
 *
 * Both encoders emit one ExportTraceServiceRequest holding one
 * ResourceSpans (the resource below) with one ScopeSpans (scope "taskd",
 * version OTLP_SCOPE_VERSION) holding all the spans, in the given order.
 *
 * Resource attributes: service.name and service.version (each when non-NULL
 * and non-empty), then the extra pairs in order. An extra pair whose key is
 * already present (service.name/service.version given explicitly, or an
 * earlier extra) is left out, so OTEL_SERVICE_NAME beats a service.name in
 * OTEL_RESOURCE_ATTRIBUTES; pairs with a NULL key or value are left out.
 *
 * Span attributes: the span model allows a key to be set twice; OTLP wants
 * keys unique, so only the last value of a key is sent (later set wins;
 * span_encode_attr_shadowed in trace/span_encode.h, the rule X-Ray follows too).
 */
#ifndef TASKD_OTLP_H
#define TASKD_OTLP_H

#include "core/span.h"

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#define OTLP_SCOPE_NAME "taskd"
#ifdef TASKD_VERSION
#define OTLP_SCOPE_VERSION TASKD_VERSION
#else
#define OTLP_SCOPE_VERSION ""
#endif

typedef struct otlp_resource {
    const char *service_name;     /* resource service.name; NULL or "" to leave out */
    const char *service_version;  /* resource service.version; NULL or "" to leave out */
    const char *const *attr_keys; /* n_attrs extra string attributes (OTEL_RESOURCE_ATTRIBUTES) */
    const char *const *attr_values;
    size_t n_attrs;
} otlp_resource;

/*
 * True when extra resource attribute i of r is sent (see the rules above).
 * r must not be NULL and i < r->n_attrs.
 */
static inline bool otlp_resource_attr_used(const otlp_resource *r, size_t i)
{
    const char *k = r->attr_keys ? r->attr_keys[i] : NULL;
    if (!k || !r->attr_values || !r->attr_values[i])
        return false;
    if (r->service_name && *r->service_name && strcmp(k, "service.name") == 0)
        return false;
    if (r->service_version && *r->service_version && strcmp(k, "service.version") == 0)
        return false;
    for (size_t j = 0; j < i; j++)
        if (r->attr_keys[j] && r->attr_values[j] && strcmp(r->attr_keys[j], k) == 0)
            return false;
    return true;
}

#endif
