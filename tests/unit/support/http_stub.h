/*
 * An HTTP/1.1 server for unit tests, run inside the test process: a thread
 * listening on 127.0.0.1 (a free port), and a thread per accepted connection
 * that serves requests one after the other on it (keep-alive). Each request
 * (request line, header block, Content-Length body, arrival time) is recorded,
 * then answered from a script: request i gets script[i] — a status with header
 * lines and a body, optionally after a delay; no answer at all; or the
 * connection closed without an answer. An optional handler sees every request
 * and may change or compute its answer. "Expect: 100-continue" gets
 * "100 Continue" at once.
 *
 * Functions that fail the running test (cmocka) say so; the server threads
 * never do. All strings a script points to must outlive the server.
 */
#ifndef TASKD_TEST_HTTP_STUB_H
#define TASKD_TEST_HTTP_STUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum http_stub_action {
    HTTP_STUB_ANSWER, /* send the status, header lines and body */
    HTTP_STUB_HANG,   /* never answer; the connection stays open until the client gives up */
    HTTP_STUB_CLOSE,  /* close the connection without an answer */
} http_stub_action;

/* One answer. Zero-initialized fields mean: answer, no extra headers, empty body, no delay. */
typedef struct http_stub_reply {
    http_stub_action action;
    int status;
    const char *headers; /* extra header lines, each ending "\r\n"; NULL: none */
    const char *body;    /* NULL: empty */
    size_t body_len;     /* 0: strlen(body) */
    int delay_ms;        /* wait this long before acting */
    const void *data;    /* anything the test attaches to this step, for its handler */
    bool free_body;      /* body was allocated by a handler: free() it once sent */
} http_stub_reply;

/* One request as received. */
typedef struct http_stub_request {
    char *line;      /* the request line, without its "\r\n" */
    char method[16]; /* from the request line */
    char path[512];  /* the request target */
    char *head;      /* the header lines, each ending "\r\n", without the request line */
    char *body;      /* Content-Length bytes, NUL-terminated after them */
    size_t body_len;
    int64_t at_ms;      /* CLOCK_MONOTONIC milliseconds when the whole request had arrived */
    int64_t head_at_ms; /* ... when its header block had */
    int64_t body_at_ms; /* ... and the first bytes of its body (none: head_at_ms) */
} http_stub_request;

/*
 * Called for request index (from 0) before it is answered, with reply set to the scripted
 * answer; it may change any of it. It runs with the server's lock held, one request at a time,
 * so it may keep state in arg without locking; it must not call http_stub functions.
 */
typedef void http_stub_handler(void *arg, const http_stub_request *rq, size_t index,
                               http_stub_reply *reply);

typedef struct http_stub_options {
    const http_stub_reply *script; /* the answers to requests 0, 1, ... (copied) */
    size_t script_len;
    /* The answer to every request past the script; NULL: the script's last answer again (none:
     * status 200, empty body). */
    const http_stub_reply *after;
    const char *headers; /* header lines sent with every answer, before the reply's own */
    http_stub_handler *handler;
    void *handler_arg;
    /* Never answer "Expect: 100-continue" with "100 Continue": a client that waits for one
     * sends its body only once its own wait is over. */
    bool no_continue;
} http_stub_options;

typedef struct http_stub http_stub;

/* Start a server (o NULL: every request answered 200 with an empty body); fails the test when
 * it cannot listen. */
http_stub *http_stub_start(const http_stub_options *o);

/* Stop the server: close every connection, join its threads, free it and its records. */
void http_stub_stop(http_stub *s);

/* The port it listens on, on 127.0.0.1. */
int http_stub_port(const http_stub *s);

/* Requests received so far (each one recorded). */
size_t http_stub_count(http_stub *s);

/* Connections accepted so far. */
int http_stub_connections(http_stub *s);

/* Request i (from 0), valid until http_stub_stop; fails the test unless it has arrived. */
const http_stub_request *http_stub_request_at(http_stub *s, size_t i);

/*
 * The first header field called name (in any case) of rq: true with its value (leading spaces
 * skipped, up to the end of the line) at *value for *len bytes, not NUL-terminated; value and
 * len may be NULL. False when rq has no such field.
 */
bool http_stub_header_find(const http_stub_request *rq, const char *name, const char **value,
                           size_t *len);

/* That value copied into out (cut to outlen - 1 bytes): out, or NULL when absent. */
const char *http_stub_header(const http_stub_request *rq, const char *name, char *out,
                             size_t outlen);

/*
 * A port on 127.0.0.1 that refuses connections: bound but not listening, held by the socket
 * put in *fd until the caller closes it. Fails the test when no socket can be had.
 */
int http_stub_refusing_port(int *fd);

#endif
