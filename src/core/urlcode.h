/*
 * urlcode — percent-decoding of URL paths and query values, one rule for
 * both front ends (the local HTTP server and API Gateway events), so the API
 * reads the same text whichever way a request came in; and the encoding the
 * API uses when it writes a URL (a redirect's Location).
 */
#ifndef TASKD_URLCODE_H
#define TASKD_URLCODE_H

#include "sbuf.h"

#include <stddef.h>

/*
 * Percent-decode the NUL-terminated s in place; its new length. "%00" stays
 * encoded (a NUL would cut the C string short and let "id%00junk" pass for
 * "id"), and so does a '%' not followed by two hex digits (either case).
 * '+' is not touched: turning it into a space is the query parser's rule.
 */
size_t url_unescape_in_place(char *s);

/* The value of the hex digit c (either case), or -1 when c is not one. */
int hex_value(char c);

/*
 * Append s percent-encoded: every byte but the RFC 3986 unreserved ones
 * (A-Z a-z 0-9 - . _ ~) and those in keep (may be NULL) becomes %XX.
 */
void url_escape(sbuf *out, const char *s, const char *keep);

#endif
