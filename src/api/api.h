/*
 * api — the REST API as a pure function: a request in, a response out.
 *
 * No sockets and no SQL here: a transport builds an api_request and calls
 * api_begin() / api_finish() (the local HTTP server, which parks a connection
 * while its write commits) or the blocking api_handle() (an API Gateway event
 * translator on Lambda, tests), then sends back the api_response. Storage is
 * reached through the store port, spans and metrics through telemetry.
 */
#ifndef TASKD_API_H
#define TASKD_API_H

#include "core/auth.h"
#include "core/config.h"
#include "core/validate.h"
#include "store/store.h"
#include "trace/trace.h"

#include <stddef.h>
#include <stdint.h>

/* One incoming request; every pointer is borrowed for the call. */
typedef struct api_request {
    const char *method; /* "GET", "POST", ... */
    const char *path;   /* decoded path without the query string */
    /* Look up a query parameter / header (case-insensitive name); NULL if absent. */
    const char *(*query)(void *ctx, const char *name);
    const char *(*header)(void *ctx, const char *name);
    void *ctx; /* passed to query() and header() */
    const char *body;
    size_t body_len;
} api_request;

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
} api_response;

typedef struct api_exchange api_exchange;

/*
 * The pipeline as the API sees it (queues, redrive, metrics); optional: an
 * API without one (on Lambda) answers 404 on those routes, and on the other
 * routes only a local process serves: the trace view and the dashboard.
 */
typedef struct api_pipeline {
    /* Append {"queues": [...]} for GET /queues; a store code. */
    store_rc (*queues_json)(void *ctx, sbuf *out);
    /*
     * Move queue's dead-letter messages back as a store write: fill w (its done is set) and
     * submit it; w->rc is the outcome and *moved the count when done() runs. STORE_NOT_FOUND
     * when queue has no DLQ, another code when nothing could be submitted.
     */
    store_rc (*redrive)(void *ctx, const char *queue, store_write *w, int64_t *moved);
    /* Append the Prometheus text of GET /metrics; a store code. */
    store_rc (*metrics_text)(void *ctx, sbuf *out);
    /*
     * Park ex until task_id becomes COMPLETED or FAILED (or is deleted), or
     * until deadline_ms (clock_mono_ms()); then ex->ready() is called once, on
     * another thread. STORE_OK: parked; STORE_BUSY: as many waiters as
     * allowed already; STORE_ERROR: not taking waiters (stopping).
     */
    store_rc (*wait_task)(void *ctx, const char *task_id, int64_t deadline_ms, api_exchange *ex);
    /* Take a parked ex back: true when taken (no ready() will come), false when ready() has
     * been or is being called. */
    bool (*unwait_task)(void *ctx, api_exchange *ex);
    /*
     * Open a stream of task events (GET /events) after seq after (-1: from the
     * current end), of task_type and status only (NULL: any). STORE_OK with
     * *out; STORE_BUSY: as many clients as allowed already; STORE_ERROR: not
     * taking clients (stopping) or the change log cannot be read.
     */
    store_rc (*subscribe)(void *ctx, int64_t after, const char *task_type, const char *status,
                          api_stream **out);
    void *ctx;
} api_pipeline;

/* What the API needs; owned by the program that wires it. */
typedef struct api {
    store *store;
    const config *config;
    int64_t (*now)(void);         /* Unix seconds */
    const api_pipeline *pipeline; /* NULL when there is none */
    telemetry telemetry;          /* spans and metrics; members may be NULL */
    /* Who may call (bearer tokens, Origin and Host checks; docs/auth.md); NULL, as api_init()
     * leaves it: no checks at all, as on Lambda, where API Gateway authenticates. */
    const auth_policy *access;
    char *openapi; /* the OpenAPI document, built once */
    size_t openapi_len;
} api;

/* Prepare the API over a store, configuration and (optional) pipeline; false on failure. */
bool api_init(api *a, store *s, const config *c, const api_pipeline *pipeline, const telemetry *tel,
              int64_t (*now)(void));
/* Release what api_init() built (not the store or configuration). */
void api_free(api *a);

typedef enum api_status {
    API_DONE,    /* the response is ready */
    API_PENDING, /* a store write (or a wait) is in flight; see api_exchange.ready */
} api_status;

/*
 * One request from api_begin() to its response. Reads answer at once;
 * writes go to the store's group commit and finish later, so a transport
 * can park the connection instead of a thread while the write commits.
 */
struct api_exchange {
    api_response resp; /* the answer: after API_DONE, or after api_finish() */
    /* Set by the caller before api_begin(): called on a store thread when a
     * pending write is done; it must only wake the caller, then the caller
     * calls api_finish(). */
    void (*ready)(struct api_exchange *ex);
    void *user; /* the caller's */
    /* the API's own, kept alive while the write is in flight */
    store_write write;
    create_request create;
    update_request update;
    char *idempotency_key;
    char task_id[37];
    char traceparent[56]; /* the request's span, stored with a new task */
    span server;          /* the request's span */
    span store_span;      /* the write's span, while one is in flight */
    const char *route;    /* route pattern, for metrics */
    /* builds the response of a pending exchange other than a create or an update
     * (a redrive, a parked ?wait=) */
    void (*finish)(struct api *a, struct api_exchange *ex);
    char name[CONFIG_NAME_MAX + 1]; /* the route's {name}, for finish() */
    int64_t moved;                  /* a redrive's count */
    const char *method;
    void *waiter; /* the pipeline's record of the parked wait */
    /* Set by the API before api_begin() returns API_PENDING for an exchange that stays open
     * for long (an event stream, a long poll): the transport then stops counting it among the
     * requests in flight that its admission control bounds. */
    bool long_lived;
};

/* Start answering a request; ex must outlive the pending write. */
api_status api_begin(api *a, const api_request *req, api_exchange *ex);
/* Build the response of a write once ready() has been called. */
void api_finish(api *a, api_exchange *ex);
/* Release what the exchange holds, the response body included. */
void api_exchange_free(api_exchange *ex);

/* Answer one request, waiting for any write. Never fails: errors become 4xx/5xx. */
void api_handle(api *a, const api_request *req, api_response *resp);

/*
 * Fill resp with an error: {"detail": "..."}. When that body cannot be made (out of memory),
 * resp is a 500 without a body, which a transport answers with api_bodiless_text().
 */
void api_error(api_response *resp, int status, const char *detail);
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
/*
 * Count (taskd_http_requests_total, route "unmatched") and log at DEBUG, as the API does for
 * the requests it answers, one answer a transport gave before routing: a refused head or body,
 * admission, shutting down. method NULL: unknown (labelled "unknown"); start_ns: when the head
 * was in (clock_mono_ns()), 0 when unknown; detail: why, for the log. a may be NULL.
 */
void api_count_unrouted(api *a, const char *method, int status, int64_t start_ns,
                        const char *detail);
/* Add a response header (ignored past API_MAX_HEADERS). */
void api_add_header(api_response *resp, const char *name, const char *value);
/* Release the body. */
void api_response_free(api_response *resp);

#endif
