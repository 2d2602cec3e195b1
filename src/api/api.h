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
#include "response.h"
#include "store/store.h"
#include "trace/trace.h"

#include <stddef.h>
#include <stdint.h>

/* One incoming request; every pointer is borrowed for the call. */
typedef struct api_request {
    const char *method; /* "GET", "POST", ... */
    const char *path;   /* decoded path without the query string */
    /* Look up a query parameter (by its name as written: "LIMIT" is not "limit", as FastAPI reads
     * them) / header (by its name in any case); NULL if absent. A repeated parameter gives its
     * last value (as FastAPI reads it), a repeated header its first. */
    const char *(*query)(void *ctx, const char *name);
    const char *(*header)(void *ctx, const char *name);
    /* Optional (NULL: header() alone): the value of the i-th field named name (from 0, in the
     * order they came), NULL past the last; for a header that may come on several lines. */
    const char *(*header_at)(void *ctx, const char *name, size_t i);
    void *ctx; /* passed to query(), header() and header_at() */
    const char *body;
    size_t body_len;
} api_request;

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
    /* The change log's last seq now: every change up to it is in what a read made after this
     * call sees (GET /tasks says it, so that GET /events can continue from it). */
    int64_t (*last_seq)(void *ctx);
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
    /* the request's tracestate (normal form), when its traceparent was taken; else "" */
    char tracestate[TRACECTX_TRACESTATE_MAX + 1];
    span server;       /* the request's span */
    bool new_trace;    /* the request came with no trace context: its span began a trace */
    span store_span;   /* the write's span, while one is in flight */
    const char *route; /* route pattern, for metrics */
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
/* Whether req's head alone refuses it, whatever its body (401 or 403, 404, 405, a redirect):
 * a server asked "Expect: 100-continue" then answers without reading the body. */
bool api_head_refused(const api *a, const api_request *req);
/* Build the response of a write once ready() has been called. */
void api_finish(api *a, api_exchange *ex);
/* Release what the exchange holds, the response body included. */
void api_exchange_free(api_exchange *ex);

/* Answer one request, waiting for any write. Never fails: errors become 4xx/5xx. */
void api_handle(api *a, const api_request *req, api_response *resp);

/*
 * Count (taskd_http_requests_total, route "unmatched") and log at DEBUG, as the API does for
 * the requests it answers, one answer a transport gave before routing: a refused head or body,
 * admission, shutting down. method NULL: unknown (labelled "unknown"); start_ns: when the head
 * was in (clock_mono_ns()), 0 when unknown; detail: why, for the log. a may be NULL.
 */
void api_count_unrouted(api *a, const char *method, int status, int64_t start_ns,
                        const char *detail);

#endif
