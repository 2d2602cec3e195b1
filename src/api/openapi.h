/*
 * openapi — the OpenAPI 3 document served at /openapi.json, describing the
 * routes of api.c exactly, with the configured task types as an enum.
 */
#ifndef TASKD_OPENAPI_H
#define TASKD_OPENAPI_H

#include "core/config.h"

#include <stddef.h>

/* The document as JSON text (malloc'ed), or NULL when out of memory. */
char *openapi_document(const config *c, size_t *len);

#endif
