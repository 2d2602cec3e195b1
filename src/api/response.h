/*
 * response — what the API answers, as every transport sends it: a status, a
 * JSON body or a stream, a few headers; and the error bodies ({"detail": ...})
 * that the API, the dashboard and the transports give alike.
 */
#ifndef TASKD_API_RESPONSE_H
#define TASKD_API_RESPONSE_H

#include <stdbool.h>
#include <stddef.h>

#define API_MAX_HEADERS 8 /* the dashboard's security and caching headers */

typedef struct api_header {
    const char *name; /* static string */
    char value[384];  /* a redirect's Location carries a page token */
} api_header;

/*
 * A response body sent as it comes (GET /events): the API hands the stream
 * to the transport in api_response.stream, and the transport reads it until
 * it ends, or closes it when the client is gone.
 */
typedef struct api_stream api_stream;

#define API_STREAM_END     (-1) /* the stream is over (shutting down): end the response */
#define API_STREAM_DROPPED (-2) /* the client read too slowly and was dropped: close */

typedef struct api_stream_ops {
    /*
     * Attach the transport before the first read. wake(user) is called on
     * another thread, once after each read() that returned 0, when there is
     * more to read (or the stream ended), under the stream's lock: it must
     * only queue a wake-up (never block, never call the stream), and none
     * comes once close() has returned. abort(user) is called when the stream
     * drops its client (it reads too slowly), under the same lock: it must
     * only shut the socket down.
     */
    void (*attach)(api_stream *s, void (*wake)(void *user), void (*abort)(void *user), void *user);
    /* Copy up to max buffered bytes into buf: the count; 0 when nothing is buffered (a wake
     * follows); API_STREAM_END or API_STREAM_DROPPED. */
    long (*read)(api_stream *s, char *buf, size_t max);
    /* The client is gone or the response is dropped: release the stream; no callback follows. */
    void (*close)(api_stream *s);
} api_stream_ops;

struct api_stream {
    const api_stream_ops *ops;
};

/* The response; api_response_free() releases the body. */
typedef struct api_response {
    int status;
    const char *content_type; /* static string; NULL when there is no body */
    char *body;               /* owned */
    size_t body_len;
    api_header headers[API_MAX_HEADERS];
    int n_headers;
    api_stream *stream; /* owned; set instead of a body by GET /events */
    bool streamed;      /* HEAD of GET /events: a GET would stream, so no length is told */
} api_response;

/*
 * Fill resp with an error: {"detail": "..."}. When that body cannot be made (out of memory),
 * resp is a 500 without a body, which a transport answers with api_bodiless_text().
 */
void api_error(api_response *resp, int status, const char *detail);
/*
 * Fill resp with the error of a body that could not be made: b is the failed buffer, or NULL
 * when memory ran out elsewhere. A 500 in every case, since no input taskd accepts can make its
 * text fail but a shortage of taskd's own (a value quoted whole is bounded by the body limit, far
 * below the INT_MAX bytes sbuf_printf() can format): "Out of memory" for ENOMEM, else "Cannot
 * make the answer: " and sbuf_error_text()'s words.
 */
struct sbuf;
void api_sbuf_error(api_response *resp, const struct sbuf *b);
/* What a transport sends for a response without a body of its own: "", or for an error (whose
 * body api_error() could not make) {"detail":"Out of memory"}. Static, never freed. */
const char *api_bodiless_text(const api_response *resp);
/*
 * Fill resp with the 413 of a body over limit bytes. api_begin() answers it
 * itself; a transport that can refuse the body before reading it all uses it
 * too, so every transport gives the same answer.
 */
void api_body_too_large(api_response *resp, size_t limit);
/* That 413's detail, written into buf (size bytes; 96 are enough); returns buf. */
const char *api_body_too_large_detail(char *buf, size_t size, size_t limit);
/* Add a response header (ignored past API_MAX_HEADERS). */
void api_add_header(api_response *resp, const char *name, const char *value);
/* Whether resp carries a header of that name (any case). */
bool api_has_header(const api_response *resp, const char *name);

/*
 * The headers every transport adds to an answer that has none of that name: a browser never
 * guesses another type than the one told, and an answer opened as a page runs nothing, loads
 * nothing and cannot be framed. The dashboard's answers carry their own policy.
 */
#define API_DEFAULT_HEADERS 2
extern const api_header API_DEFAULT_HEADER[API_DEFAULT_HEADERS];
/* Release the body. */
void api_response_free(api_response *resp);

#endif
