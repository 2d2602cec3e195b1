/*
 * urlcode — percent-decoding of URL paths and query values, one rule for
 * both front ends (the local HTTP server and API Gateway events), so the API
 * reads the same text whichever way a request came in.
 */
#ifndef TASKD_URLCODE_H
#define TASKD_URLCODE_H

#include <stddef.h>

/*
 * Percent-decode the NUL-terminated s in place; its new length. "%00" stays
 * encoded (a NUL would cut the C string short and let "id%00junk" pass for
 * "id"), and so does a '%' not followed by two hex digits (either case).
 * '+' is not touched: turning it into a space is the query parser's rule.
 */
size_t url_unescape_in_place(char *s);

#endif
