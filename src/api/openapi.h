/*
 * openapi — the OpenAPI 3.1 document served at /openapi.json, describing the
 * routes of api.c exactly, with the configured task types as an enum.
 */
#ifndef TASKD_OPENAPI_H
#define TASKD_OPENAPI_H

#include "core/config.h"

#include <stdbool.h>
#include <stddef.h>

/*
 * The document as JSON text (malloc'ed), or NULL when out of memory. Without
 * pipeline, the local routes (/queues, redrive, /metrics, the trace view and
 * the dashboard) are left out.
 */
char *openapi_document(const config *c, bool pipeline, size_t *len);

#endif
