/*
 * http_chunked — decoding a request body sent with "Transfer-Encoding: chunked" (RFC 9112 §7.1)
 * as its bytes arrive. Chunk extensions and trailer fields are read and dropped. Pure: bytes
 * in, body bytes out.
 */
#ifndef TASKD_HTTP_CHUNKED_H
#define TASKD_HTTP_CHUNKED_H

#include "sbuf.h"

#include <stddef.h>
#include <stdint.h>

/* The longest chunk-size line (extensions included), and the most trailer bytes. */
#define HTTP_CHUNKED_LINE_MAX    4096
#define HTTP_CHUNKED_TRAILER_MAX (16 * 1024)
/* The most framing (size lines, extensions included, and the CR LF after each chunk's data) a
 * body may carry beyond 16 bytes a chunk and twice its data: a chunk of one byte ("1\r\nx\r\n")
 * takes five, but extensions could otherwise make a body of a few bytes cost gigabytes to read. */
#define HTTP_CHUNKED_EXCESS_MAX (16 * 1024)

typedef enum http_chunked_rc {
    HTTP_CHUNKED_MORE, /* every byte taken; the body goes on */
    HTTP_CHUNKED_DONE, /* the body ended (its last chunk and trailers are in) */
    HTTP_CHUNKED_BAD,  /* not chunked framing, or a line, trailers or framing past their bound */
} http_chunked_rc;

typedef struct http_chunked {
    int state;
    uint64_t left;   /* bytes of the current chunk still to come, or its size being read */
    size_t line;     /* bytes of the current size line or of the trailers so far */
    uint64_t excess; /* framing beyond its allowance so far (HTTP_CHUNKED_EXCESS_MAX) */
} http_chunked;

/* A decoder at the start of a body. */
void http_chunked_init(http_chunked *c);

/*
 * Decode in[0..n): the body's bytes are appended to body; *used is how many of the n bytes were
 * read (all of them but after DONE, where the next request's bytes begin, or BAD). A failed
 * append shows in body (sbuf_failed()).
 */
http_chunked_rc http_chunked_feed(http_chunked *c, const char *in, size_t n, size_t *used,
                                  sbuf *body);

#endif
