/*
 * json_util — small helpers around jansson for the API's JSON.
 */
#ifndef TASKD_JSON_UTIL_H
#define TASKD_JSON_UTIL_H

#include "sbuf.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/*
 * Append v as compact JSON. Unlike json_dumps, reals are written as Python's
 * json module writes them (sbuf_double(): 0.1, not 0.10000000000000001; 1.0;
 * 1e+16), so stored data looks as the client sent it and as the original
 * wrote it back.
 */
void json_write_compact(sbuf *b, const json_t *v);

/*
 * json_loadb() that also says, in *nomem, whether it failed for want of memory rather than for
 * text that is not JSON: jansson 2.14 tells the two apart only through errno (its error code
 * is not set then). error may be NULL.
 */
json_t *json_parse(const char *text, size_t len, size_t flags, json_error_t *error, bool *nomem);

/* v as compact JSON text, malloc'ed; NULL when out of memory. */
char *json_to_text(const json_t *v);

/*
 * True when v nests objects and arrays at most max levels deep (a scalar is
 * 0 levels, {} and [] are 1). Stops looking past max, so a hostile value
 * costs no more than its first max levels.
 */
bool json_depth_within(const json_t *v, size_t max);

/*
 * True when DynamoDB can keep v as it is, and so can every store and every change record's
 * image: no empty member name, and every number 0 or of a magnitude from 1e-130 to below 1e126.
 * When false, *why says what is wrong, in words for a client. Recurses through v: check its
 * depth first.
 */
bool json_storable(const json_t *v, const char **why);

#endif
