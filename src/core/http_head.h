/*
 * http_head — judging the start of an HTTP/1.x connection: whether its first request head is
 * complete, and whether libmicrohttpd 0.9.75 would take it or refuse it with an HTML page of
 * its own, so that the local front can answer the refusals in JSON first (http/front.c).
 * Pure: bytes in, a verdict out.
 */
#ifndef TASKD_HTTP_HEAD_H
#define TASKD_HTTP_HEAD_H

#include <stddef.h>

#define HTTP_HEAD_MAX_METHOD 32 /* longer method tokens are not HTTP */

typedef enum http_head_verdict {
    HTTP_HEAD_MORE,           /* not complete yet, and may still pass */
    HTTP_HEAD_OK,             /* complete and taken (what follows it is the body) */
    HTTP_HEAD_BAD,            /* a malformed request line: 400 */
    HTTP_HEAD_VERSION,        /* HTTP/d.d other than 1.0 and 1.1: 505 */
    HTTP_HEAD_LINE_TOO_LONG,  /* no request line within the limit: 414 */
    HTTP_HEAD_TOO_LARGE,      /* no end of head within the limit: 431 */
    HTTP_HEAD_BAD_FIELD,      /* a header line it cannot read: 400 */
    HTTP_HEAD_BAD_LENGTH,     /* a Content-Length it cannot read: 400 */
    HTTP_HEAD_LENGTH_TOO_BIG, /* a Content-Length past 2^64 - 1: 413 */
    HTTP_HEAD_TOO_MANY,     /* more fields, query arguments and cookies than it has room for: 431 */
    HTTP_HEAD_BAD_ENCODING, /* a Transfer-Encoding other than chunked: 501 */
    HTTP_HEAD_BAD_EXPECT,   /* Expect: 100-continue on a request without a body: 417 */
} http_head_verdict;

/*
 * Judge the first n bytes received on a connection, with limit the most a head may take
 * (n <= limit: what is past it is not looked at). Empty lines before the request line are
 * skipped, as libmicrohttpd skips them. Once a verdict other than HTTP_HEAD_MORE is given, more
 * bytes do not change it.
 */
http_head_verdict http_head_judge(const char *buf, size_t n, size_t limit);

#endif
