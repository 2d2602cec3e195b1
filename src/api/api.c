/*
 * api — routing and the handlers of the REST API (README "Routes").
 *
 * The route table maps a path shape to the handler of each method; a path
 * that matches with no handler for the method is a 405 with Allow listing the
 * methods that exist. HEAD is answered like GET (the transport drops the
 * body). Store results map to status codes in one place, store_failed().
 *
 * Reads answer inside api_begin(); a write is handed to the store and
 * api_begin() returns API_PENDING; api_finish() builds its response once the
 * store reports back. conclude() closes the request's span and counts it.
 */
#include "api.h"

#include "core/pagetoken.h"
#include "core/sbuf.h"
#include "core/urlcode.h"
#include "core/uuid7.h"
#include "core/validate.h"
#include "dashboard.h"
#include "openapi.h"
#include "trace/span_encode.h"
#include "util/clock.h"
#include "util/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char JSON_TYPE[] = "application/json";

/* A page of GET /tasks stops before the task that would take its body past this. */
#define LIST_BODY_MAX (1024 * 1024)
/* The route label of a request no route took, and of answers a transport gives before routing */
#define UNROUTED "unmatched"

/* Take the buffer as the response body; a failed buffer becomes a 500. */
static void set_body(api_response *resp, int status, sbuf *b)
{
    if (sbuf_failed(b)) {
        api_sbuf_error(resp, b);
        sbuf_free(b);
        return;
    }
    resp->status = status;
    resp->content_type = JSON_TYPE;
    resp->body = sbuf_take(b, &resp->body_len);
}

static void validation_error(api_response *resp, validation *v)
{
    free(resp->body);
    resp->body = validation_body(v, &resp->body_len);
    if (!resp->body) { /* the items' own failure, or the body's want of memory */
        api_sbuf_error(resp, sbuf_failed(&v->items) ? &v->items : NULL);
        return;
    }
    resp->status = 422;
    resp->content_type = JSON_TYPE;
}

/* Map a store failure to its response; true when rc was handled as an error. */
static bool store_failed(api_response *resp, store_rc rc)
{
    switch (rc) {
    case STORE_BUSY:
        api_error(resp, 503, "The task store is busy; retry shortly");
        api_add_header(resp, "Retry-After", "1");
        return true;
    case STORE_ERROR:
        api_error(resp, 503, "The task store is unavailable; retry shortly");
        api_add_header(resp, "Retry-After", "5");
        return true;
    case STORE_NOT_FOUND:
        api_error(resp, 404, "Task not found");
        return true;
    case STORE_INVALID: {
        validation v = {0};
        validation_add(&v, "body", NULL, "value_error",
                       "Value error, the task store cannot keep this value (too large or too "
                       "deeply nested)",
                       NULL,
                       "{\"error\":\"the task store cannot keep this value (too large or too "
                       "deeply nested)\"}");
        validation_error(resp, &v);
        validation_free(&v);
        return true;
    }
    default:
        return false;
    }
}

/* ---- handlers ---------------------------------------------------------- */

/* The request's header name, or its query parameter name: NULL when absent (or when the
 * transport gives none). */
static const char *header(const api_request *req, const char *name)
{
    return req->header ? req->header(req->ctx, name) : NULL;
}

static const char *query(const api_request *req, const char *name)
{
    return req->query ? req->query(req->ctx, name) : NULL;
}

/* Whether header name came in more than one line (known only where the transport gives every
 * line: header_at). */
static bool header_repeated(const api_request *req, const char *name)
{
    return req->header_at && req->header_at(req->ctx, name, 1);
}

static api_status get_health(api *a, const api_request *req, const char *id, api_exchange *ex)
{
    api_response *resp = &ex->resp;
    (void)req;
    (void)id;
    char why[160] = "The task store does not answer";
    bool healthy = store_ping(a->store) == STORE_OK &&
                   store_write_health(a->store, why, sizeof why) == STORE_OK;
    sbuf b = {0};
    if (healthy) {
        sbuf_puts(&b, "{\"status\":\"ok\"}");
        set_body(resp, 200, &b);
        return API_DONE;
    }
    sbuf_puts(&b, "{\"status\":\"unhealthy\",\"detail\":");
    sbuf_json_str(&b, why);
    sbuf_putc(&b, '}');
    set_body(resp, 503, &b);
    api_add_header(resp, "Retry-After", "5");
    return API_DONE;
}

/* GET / and GET /dashboard/{name}: the page and its files (dashboard.h). */
static api_status get_dashboard(api *a, const api_request *req, const char *id, api_exchange *ex)
{
    (void)a;
    (void)id;
    dashboard_serve("index.html", header(req, "If-None-Match"), &ex->resp);
    return API_DONE;
}

static api_status get_dashboard_file(api *a, const api_request *req, const char *name,
                                     api_exchange *ex)
{
    (void)a;
    dashboard_serve(name, header(req, "If-None-Match"), &ex->resp);
    return API_DONE;
}

static api_status get_openapi(api *a, const api_request *req, const char *id, api_exchange *ex)
{
    api_response *resp = &ex->resp;
    (void)req;
    (void)id;
    sbuf b = {0};
    sbuf_append(&b, a->openapi, a->openapi_len);
    set_body(resp, 200, &b);
    return API_DONE;
}

static void write_done(store_write *w)
{
    api_exchange *ex = (api_exchange *)((char *)w - offsetof(api_exchange, write));
    ex->store_span.end_ns = trace_now_ns();
    ex->ready(ex);
}

/* Open the span of the store write, a child of the request's span. */
static void begin_store_span(const api *a, api_exchange *ex, const char *operation)
{
    trace_ctx parent;
    trace_ctx_of(&ex->server, &parent);
    char name[64];
    snprintf(name, sizeof name, "%s tasks", operation);
    trace_begin(&ex->store_span, &parent, name, SPAN_KIND_CLIENT);
    span_set_static(&ex->store_span, "db.system", a->store->ops->system);
    span_set_static(&ex->store_span, "db.operation.name", operation);
    span_set_static(&ex->store_span, "db.collection.name", "tasks");
}

/* The request's Idempotency-Key into ex (none: NULL); false with the answer set when it is
 * refused. Two lines of it (where the transport gives every line) name no one key: a retry that
 * sent only the second would make a task again. */
static bool take_idempotency_key(const api_request *req, api_exchange *ex)
{
    const char *key = header(req, "Idempotency-Key");
    if (key && header_repeated(req, "Idempotency-Key")) {
        api_error(&ex->resp, 400, "Idempotency-Key must be given once");
        return false;
    }
    if (key && (strlen(key) == 0 || strlen(key) > STORE_IDEMPOTENCY_KEY_MAX)) {
        api_error(&ex->resp, 400, "Idempotency-Key must be 1 to 255 bytes");
        return false;
    }
    if (key && !(ex->idempotency_key = strdup(key))) {
        api_error(&ex->resp, 503, "Out of memory");
        api_add_header(&ex->resp, "Retry-After", "1");
        return false;
    }
    return true;
}

static api_status post_task(api *a, const api_request *req, const char *id, api_exchange *ex)
{
    (void)id;
    api_response *resp = &ex->resp;
    validation v = {0};
    if (!validate_create(a->config, req->body, req->body_len, &ex->create, &v)) {
        validation_error(resp, &v);
        validation_free(&v);
        return API_DONE;
    }
    /* the data as a message carries it, which can be longer than as sent ("1e9" is
     * 1000000000.0): a task that could be stored but never published would be left behind */
    size_t data_len = a->config->data_limit ? strlen(ex->create.data) : 0;
    if (data_len > a->config->data_limit) {
        char detail[128];
        snprintf(detail, sizeof detail,
                 "Task data too large for a queue message: %zu bytes as JSON (limit %zu bytes)",
                 data_len, a->config->data_limit);
        api_error(resp, 413, detail);
        return API_DONE;
    }
    if (!take_idempotency_key(req, ex))
        return API_DONE;
    trace_traceparent_of(&ex->server, ex->traceparent);
    begin_store_span(a, ex, "INSERT");
    ex->write = (store_write){
        .kind = STORE_WRITE_CREATE,
        .now = a->now(),
        .create = {.task_type = ex->create.task_type,
                   .data = ex->create.data,
                   .data_image = ex->create.data_image,
                   .data_size = ex->create.data_size,
                   .ttl = ex->create.ttl,
                   .idempotency_key = ex->idempotency_key,
                   .trace = ex->traceparent,
                   .tracestate = ex->tracestate[0] ? ex->tracestate : NULL},
        .done = write_done,
    };
    store_submit(a->store, &ex->write);
    return API_PENDING;
}

static void finish_create(api_exchange *ex)
{
    api_response *resp = &ex->resp;
    store_rc rc = ex->write.rc;
    if (rc != STORE_OK && rc != STORE_DUPLICATE && ex->write.unknown) {
        /* not "busy": a retry could make the task twice; say how to tell */
        char detail[200];
        if (ex->idempotency_key)
            snprintf(detail, sizeof detail,
                     "The task store did not confirm the write; the task may have been created: "
                     "retry with the same Idempotency-Key");
        else
            snprintf(detail, sizeof detail,
                     "The task store did not confirm the write; the task may have been created "
                     "as %s: GET /tasks/%s tells before you create it again",
                     ex->write.id, ex->write.id);
        api_error(resp, 503, detail);
        api_add_header(resp, "Retry-After", "1");
        return;
    }
    if (rc == STORE_INVALID && ex->write.size_limit) {
        char detail[160];
        snprintf(detail, sizeof detail,
                 "Task too large for the task store: %zu bytes as stored (limit %zu bytes, "
                 "leaving room for its claim, history and status messages)",
                 ex->write.size, ex->write.size_limit);
        api_error(resp, 413, detail);
        return;
    }
    if (store_failed(resp, rc))
        return;
    sbuf b = {0};
    sbuf_puts(&b, "{\"id\":");
    sbuf_json_str(&b, ex->write.id);
    sbuf_putc(&b, '}');
    set_body(resp, rc == STORE_DUPLICATE ? 200 : 201, &b);
    memcpy(ex->task_id, ex->write.id, sizeof ex->task_id);
    char location[64];
    snprintf(location, sizeof location, "/tasks/%s", ex->write.id);
    api_add_header(resp, "Location", location);
}

/* The status and task_type filters of a listing or of the event stream (NULL: none); one that
 * names no status or no configured type is recorded in v. */
static void read_filters(const api *a, const api_request *req, const char **status,
                         const char **task_type, validation *v)
{
    *status = query(req, "status");
    task_status st;
    if (*status && !task_status_parse(*status, &st))
        validation_literal(v, "query", "status", task_status_names, TASK_N_STATUSES, *status);
    *task_type = query(req, "task_type");
    if (*task_type && !config_has_task_type(a->config, *task_type))
        validation_literal(v, "query", "task_type", (const char *const *)a->config->task_types,
                           a->config->n_task_types, *task_type);
}

/* A filter given with a next_token must be the token's own, or absent. */
static bool same_filter(const char *given, const char *carried)
{
    return !given || (carried && strcmp(given, carried) == 0);
}

static api_status list_tasks(api *a, const api_request *req, const char *id, api_exchange *ex)
{
    api_response *resp = &ex->resp;
    (void)id;
    validation v = {0};
    store_list_query q = {0};
    validate_limit(query(req, "limit"), &q.limit, &v);
    read_filters(a, req, &q.status, &q.task_type, &v);
    if (v.count || sbuf_failed(&v.items)) { /* an error that could not be recorded too */
        validation_error(resp, &v);
        validation_free(&v);
        return API_DONE;
    }
    /* the key that signs page tokens: the store keeps it (and fetches it on first use) */
    uint8_t key[16];
    if (store_failed(resp, store_secret(a->store, key)))
        return API_DONE;
    pagetoken from;
    const char *token = query(req, "next_token");
    if (token && *token) { /* an empty next_token is the first page, as in the original */
        if (!pagetoken_decode(key, token, &from)) {
            api_error(resp, 400, "Invalid next_token");
            return API_DONE;
        }
        if (!same_filter(q.status, from.status) || !same_filter(q.task_type, from.task_type)) {
            api_error(resp, 400,
                      "next_token belongs to a listing with other filters: repeat its status and "
                      "task_type, or leave them out");
            return API_DONE;
        }
        q.status = from.status; /* the token carries the listing's filters */
        q.task_type = from.task_type;
        q.before_id = from.last_id;
    }
    /* read before the list: every change up to it is in the list (a later one may be too) */
    int64_t seq =
        a->pipeline && a->pipeline->last_seq ? a->pipeline->last_seq(a->pipeline->ctx) : -1;
    store_page page = {0};
    if (store_failed(resp, store_list_tasks(a->store, &q, &page)))
        return API_DONE;
    sbuf b = {0};
    sbuf_puts(&b, "{\"tasks\":[");
    size_t shown = 0; /* the first task always; the others while the body stays in bounds */
    for (; shown < page.count; shown++) {
        size_t before = b.len;
        if (shown)
            sbuf_putc(&b, ',');
        task_to_json(&b, &page.tasks[shown], false);
        if (shown && b.len > LIST_BODY_MAX) {
            sbuf_truncate(&b, before);
            break;
        }
    }
    sbuf_puts(&b, "],\"next_token\":");
    char next[PAGETOKEN_TEXT_MAX];
    if ((page.more || shown < page.count) && shown &&
        pagetoken_encode(key, page.tasks[shown - 1].id, q.status, q.task_type, next))
        sbuf_json_str(&b, next);
    else
        sbuf_puts(&b, "null");
    sbuf_putc(&b, '}');
    store_page_free(&page);
    set_body(resp, 200, &b);
    if (seq >= 0) { /* GET /events with it as Last-Event-ID misses no change after the list */
        char text[24];
        snprintf(text, sizeof text, "%lld", (long long)seq);
        api_add_header(resp, "X-Last-Event-ID", text);
    }
    return API_DONE;
}

/*
 * Read task id and answer it (200 with its JSON, or the store's error), when
 * always or when it is COMPLETED or FAILED; true when resp is the answer.
 */
static bool answer_task(api *a, const char *id, bool always, api_response *resp)
{
    task t = {0};
    if (store_failed(resp, store_get_task(a->store, id, &t)))
        return true;
    if (!always && !task_status_is_final(t.status)) {
        task_clear(&t);
        return false;
    }
    sbuf b = {0};
    task_to_json(&b, &t, true);
    task_clear(&t);
    set_body(resp, 200, &b);
    return true;
}

/* A parked wait was woken (the change, its deadline or shutdown): the task as it is now. */
static void finish_wait(api *a, api_exchange *ex)
{
    answer_task(a, ex->task_id, true, &ex->resp);
}

/*
 * GET /tasks/{id}, and with ?wait=N the long poll: a task that is not yet
 * COMPLETED or FAILED is parked with the pipeline's waiters (no thread held)
 * until it is, or for N seconds; api_finish() then answers it as it is.
 * The waiter is registered before the task is read again, so a change that
 * lands in between is seen either by that read or by the waiters. Without a
 * pipeline (Lambda) there are no waiters: the task is answered at once.
 */
static api_status get_task(api *a, const api_request *req, const char *id, api_exchange *ex)
{
    api_response *resp = &ex->resp;
    validation v = {0};
    int wait = 0;
    if (!validate_wait(query(req, "wait"), &wait, &v)) {
        validation_error(resp, &v);
        validation_free(&v);
        return API_DONE;
    }
    /* max_waiters 0 turns waiting off: answered at once, as on Lambda */
    bool can_wait = wait && a->pipeline && a->pipeline->wait_task && a->config->max_waiters > 0;
    if (answer_task(a, id, !can_wait, resp))
        return API_DONE; /* no wait, absent, finished, or a store error */
    store_rc rc =
        a->pipeline->wait_task(a->pipeline->ctx, id, clock_mono_ms() + (int64_t)wait * 1000, ex);
    if (rc == STORE_BUSY) {
        api_error(resp, 503, "Too many requests are waiting for tasks; retry shortly");
        api_add_header(resp, "Retry-After", "1");
        return API_DONE;
    }
    if (rc != STORE_OK) { /* stopping: answer as it is */
        answer_task(a, id, true, resp);
        return API_DONE;
    }
    ex->finish = finish_wait;
    if (answer_task(a, id, false, resp)) { /* it finished (or went) meanwhile */
        if (a->pipeline->unwait_task(a->pipeline->ctx, ex)) {
            ex->finish = NULL;
            return API_DONE;
        }
        api_response_free(resp); /* woken already: api_finish() answers */
        memset(resp, 0, sizeof *resp);
    }
    ex->long_lived = true; /* parked for seconds: not a request in flight for admission */
    return API_PENDING;    /* ready() comes: at the change, the deadline or shutdown */
}

/* The Last-Event-ID header, else the last_event_id parameter: *after gets it, or -1 (none). */
static bool parse_last_event_id(const api_request *req, int64_t *after, validation *v)
{
    *after = -1;
    const char *s = header(req, "Last-Event-ID");
    const char *where = "header", *field = "last-event-id";
    if (!s || !*s) {
        s = query(req, "last_event_id");
        where = "query";
        field = "last_event_id";
    }
    if (!s)
        return true;
    size_t n = strlen(s);
    if (n == 0 || n > 18 || strspn(s, "0123456789") != n) {
        sbuf in = {0};
        sbuf_json_str(&in, s);
        if (sbuf_failed(&in)) /* not "null": the value was not that */
            v->items.failed = true;
        else
            validation_add(v, where, field, "int_parsing",
                           "Input should be a valid integer, unable to parse string as an integer",
                           in.data, NULL);
        sbuf_free(&in);
        return false;
    }
    *after = strtoll(s, NULL, 10);
    return true;
}

/*
 * GET /events: Server-Sent Events of task changes, read from the change log
 * by the pipeline (one reader for every client); the response body is a
 * stream the transport sends as it fills. Local only: on Lambda there is no
 * change log to follow from a request.
 */
static api_status get_events(api *a, const api_request *req, const char *id, api_exchange *ex)
{
    (void)id;
    api_response *resp = &ex->resp;
    if (a->config->max_event_clients == 0) { /* turned off: not a "busy, retry" */
        api_error(resp, 404, "GET /events is turned off here (max_event_clients is 0)");
        return API_DONE;
    }
    validation v = {0};
    const char *status, *task_type;
    read_filters(a, req, &status, &task_type, &v);
    int64_t after;
    parse_last_event_id(req, &after, &v);
    if (v.count || sbuf_failed(&v.items)) {
        validation_error(resp, &v);
        validation_free(&v);
        return API_DONE;
    }
    store_rc rc = a->pipeline->subscribe(a->pipeline->ctx, after, task_type, status, &resp->stream);
    if (rc == STORE_BUSY) {
        api_error(resp, 503, "Too many event clients; retry shortly");
        api_add_header(resp, "Retry-After", "1");
        return API_DONE;
    }
    if (rc != STORE_OK) {
        api_error(resp, 503, "The event stream is not available; retry shortly");
        api_add_header(resp, "Retry-After", "1");
        return API_DONE;
    }
    if (strcmp(req->method, "HEAD") == 0) { /* a GET's answer, bounds included, with no stream */
        resp->stream->ops->close(resp->stream);
        resp->stream = NULL;
        resp->streamed = true;
    }
    resp->status = 200;
    resp->content_type = "text/event-stream";
    api_add_header(resp, "Cache-Control", "no-store");
    return API_DONE;
}

static api_status get_history(api *a, const api_request *req, const char *id, api_exchange *ex)
{
    (void)req;
    task_history h = {0};
    if (store_failed(&ex->resp, store_get_history(a->store, id, &h)))
        return API_DONE;
    sbuf b = {0};
    task_history_to_json(&b, id, &h);
    task_history_clear(&h);
    set_body(&ex->resp, 200, &b);
    return API_DONE;
}

/*
 * A PATCH that claims a task (IN_PROGRESS) holds it for claim_timeout seconds: a lease, after
 * which the sweep fails the task, unless the claim is made again before (the same
 * Idempotency-Key and message), which answers 204 again and starts the lease over. Without a
 * key a repeat cannot be told from another claimer: 409. Other changes ignore the key.
 */
static api_status patch_task(api *a, const api_request *req, const char *id, api_exchange *ex)
{
    validation v = {0};
    if (!validate_update(req->body, req->body_len, &ex->update, &v)) {
        validation_error(&ex->resp, &v);
        validation_free(&v);
        return API_DONE;
    }
    bool claim = ex->update.status == TASK_IN_PROGRESS;
    if (claim && !take_idempotency_key(req, ex))
        return API_DONE;
    int64_t now = a->now();
    snprintf(ex->task_id, sizeof ex->task_id, "%s", id);
    begin_store_span(a, ex, "UPDATE");
    ex->write = (store_write){
        .kind = STORE_WRITE_UPDATE,
        .now = now,
        .update = {.id = ex->task_id,
                   .status = ex->update.status,
                   .status_msg = ex->update.status_msg,
                   .result = ex->update.result,
                   .claim_key = claim ? ex->idempotency_key : NULL,
                   .claim_expires =
                       claim && a->config->claim_timeout ? now + a->config->claim_timeout : 0},
        .done = write_done,
    };
    store_submit(a->store, &ex->write);
    return API_PENDING;
}

/*
 * A PATCH that came with no trace context joins its task's trace (SPEC: one trace covers a
 * task's life, its status updates too): its span becomes a child of the span that created the
 * task, as a handler's run is of the chain that delivered it, and the write's span follows.
 * Done once the write has read the task, before either span ends.
 */
static void join_task_trace(api_exchange *ex)
{
    trace_ctx task_ctx;
    const task *t = &ex->write.current;
    if (!ex->new_trace || !t->trace || !tracectx_parse_traceparent(t->trace, &task_ctx))
        return;
    task_ctx.tracestate = t->tracestate;
    trace_adopt(&ex->server, &task_ctx);
    if (ex->store_span.start_ns) {
        trace_ctx server;
        trace_ctx_of(&ex->server, &server);
        trace_adopt(&ex->store_span, &server);
    }
}

static void finish_update(api_exchange *ex)
{
    api_response *resp = &ex->resp;
    join_task_trace(ex);
    if (ex->write.rc == STORE_CONFLICT) {
        char detail[160];
        snprintf(detail, sizeof detail, "Task is %s; cannot change it to %s",
                 task_status_name(ex->write.current.status), task_status_name(ex->update.status));
        api_error(resp, 409, detail);
    } else if (!store_failed(resp, ex->write.rc)) {
        resp->status = 204;
    }
}

static api_status get_queues(api *a, const api_request *req, const char *id, api_exchange *ex)
{
    (void)req;
    (void)id;
    sbuf b = {0};
    store_rc rc = a->pipeline->queues_json(a->pipeline->ctx, &b);
    if (store_failed(&ex->resp, rc)) {
        sbuf_free(&b);
        return API_DONE;
    }
    set_body(&ex->resp, 200, &b);
    return API_DONE;
}

static void finish_redrive(api *a, api_exchange *ex)
{
    (void)a;
    if (store_failed(&ex->resp, ex->write.rc))
        return;
    const char *queue = ex->name;
    sbuf b = {0};
    sbuf_printf(&b, "{\"queue\":");
    sbuf_json_str(&b, queue);
    sbuf_printf(&b, ",\"moved\":%lld}", (long long)ex->moved);
    set_body(&ex->resp, 200, &b);
}

/* A redrive moves a whole dead-letter queue: a write like any other, never on this thread. */
static api_status post_redrive(api *a, const api_request *req, const char *queue, api_exchange *ex)
{
    (void)req;
    store_rc rc = STORE_NOT_FOUND;
    if (strlen(queue) < sizeof ex->name) {
        snprintf(ex->name, sizeof ex->name, "%s", queue);
        ex->write = (store_write){.now = a->now(), .done = write_done};
        ex->finish = finish_redrive;
        rc = a->pipeline->redrive(a->pipeline->ctx, ex->name, &ex->write, &ex->moved);
        if (rc == STORE_OK)
            return API_PENDING;
        ex->finish = NULL;
    }
    if (rc == STORE_NOT_FOUND)
        api_error(&ex->resp, 404, "No such queue with a dead-letter queue");
    else
        store_failed(&ex->resp, rc);
    return API_DONE;
}

static api_status get_metrics(api *a, const api_request *req, const char *id, api_exchange *ex)
{
    (void)req;
    (void)id;
    sbuf b = {0};
    store_rc rc = a->pipeline->metrics_text(a->pipeline->ctx, &b);
    if (store_failed(&ex->resp, rc)) {
        sbuf_free(&b);
        return API_DONE;
    }
    set_body(&ex->resp, 200, &b);
    ex->resp.content_type = "text/plain; version=0.0.4; charset=utf-8";
    return API_DONE;
}

static void put_span_json(sbuf *b, const span *s)
{
    static const char *const kinds[] = {"UNSPECIFIED", "INTERNAL", "SERVER",
                                        "CLIENT",      "PRODUCER", "CONSUMER"};
    char hex[33];
    sbuf_puts(b, "{\"name\":");
    sbuf_json_str(b, s->name);
    span_hex(s->trace_id, 16, hex);
    sbuf_printf(b, ",\"trace_id\":\"%s\"", hex);
    span_hex(s->span_id, 8, hex);
    sbuf_printf(b, ",\"span_id\":\"%s\",\"parent_span_id\":", hex);
    if (span_has_parent(s)) {
        span_hex(s->parent_id, 8, hex);
        sbuf_printf(b, "\"%s\"", hex);
    } else {
        sbuf_puts(b, "null");
    }
    sbuf_printf(b, ",\"kind\":\"%s\",\"start_time_unix_nano\":%lld,\"end_time_unix_nano\":%lld",
                kinds[s->kind <= SPAN_KIND_CONSUMER ? s->kind : 0], (long long)s->start_ns,
                (long long)s->end_ns);
    sbuf_printf(b, ",\"duration_ms\":%.3f,\"attributes\":{",
                (double)(s->end_ns - s->start_ns) / 1e6);
    bool first = true;
    for (int i = 0; i < span_encode_attr_count(s); i++) {
        if (span_encode_attr_shadowed(s, i))
            continue; /* a key once, with its last value, as every exporter sends it */
        const span_attr *at = &s->attrs[i];
        if (!first)
            sbuf_putc(b, ',');
        first = false;
        sbuf_json_str(b, at->key);
        sbuf_putc(b, ':');
        switch (at->type) {
        case SPAN_ATTR_STRING:
            sbuf_json_str(b, at->v.s);
            break;
        case SPAN_ATTR_INT:
            sbuf_int(b, at->v.i);
            break;
        case SPAN_ATTR_DOUBLE:
            span_encode_json_double(b, at->v.d);
            break;
        case SPAN_ATTR_BOOL:
            sbuf_puts(b, at->v.b ? "true" : "false");
            break;
        }
    }
    static const char *const codes[] = {"UNSET", "OK", "ERROR"};
    sbuf_printf(b, "},\"links\":%d,\"status\":{\"code\":\"%s\",\"message\":", s->n_links,
                codes[s->status]);
    sbuf_json_str(b, s->status_msg ? s->status_msg : "");
    sbuf_puts(b, "}}");
}

static api_status get_trace(api *a, const api_request *req, const char *id, api_exchange *ex)
{
    (void)req;
    task t = {0};
    if (store_failed(&ex->resp, store_get_task(a->store, id, &t)))
        return API_DONE;
    task_clear(&t);
    span *spans = NULL;
    errno = 0;
    size_t n = a->telemetry.tracer ? tracer_task_spans(a->telemetry.tracer, id, &spans) : 0;
    if (n == 0 && errno == ENOMEM) { /* not a trace without spans */
        api_error(&ex->resp, 500, "Out of memory");
        return API_DONE;
    }
    sbuf b = {0};
    sbuf_puts(&b, "{\"task_id\":");
    sbuf_json_str(&b, id);
    sbuf_puts(&b, ",\"spans\":[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            sbuf_putc(&b, ',');
        put_span_json(&b, &spans[i]);
        span_clear(&spans[i]);
    }
    free(spans);
    sbuf_puts(&b, "]}");
    set_body(&ex->resp, 200, &b);
    return API_DONE;
}

/* ---- routing ----------------------------------------------------------- */

typedef api_status (*handler_fn)(api *a, const api_request *req, const char *param,
                                 api_exchange *ex);

typedef enum param_kind { PARAM_NONE, PARAM_TASK_ID, PARAM_NAME } param_kind;

typedef struct route {
    const char *pattern; /* path, with at most one "{name}" standing for one segment */
    param_kind param;
    /* NULL: served everywhere. Else served only by a process with the local pipeline and trace
     * store (taskd), and this says what the AWS deployment has instead ("": nothing) */
    const char *on_aws;
    handler_fn get, post, patch;
    const char *allow;
} route;

static const route routes[] = {
    {"/", PARAM_NONE, "", get_dashboard, NULL, NULL, "GET, HEAD"},
    {"/dashboard/{name}", PARAM_NAME, "", get_dashboard_file, NULL, NULL, "GET, HEAD"},
    {"/health", PARAM_NONE, NULL, get_health, NULL, NULL, "GET, HEAD"},
    {"/openapi.json", PARAM_NONE, NULL, get_openapi, NULL, NULL, "GET, HEAD"},
    {"/tasks", PARAM_NONE, NULL, list_tasks, post_task, NULL, "GET, HEAD, POST"},
    {"/tasks/{task_id}", PARAM_TASK_ID, NULL, get_task, NULL, patch_task, "GET, HEAD, PATCH"},
    {"/tasks/{task_id}/trace", PARAM_TASK_ID, "the AWS deployment's traces are in X-Ray", get_trace,
     NULL, NULL, "GET, HEAD"},
    {"/tasks/{task_id}/history", PARAM_TASK_ID, NULL, get_history, NULL, NULL, "GET, HEAD"},
    {"/queues", PARAM_NONE,
     "the AWS deployment's queue counts are SQS's, in its console and CloudWatch metrics",
     get_queues, NULL, NULL, "GET, HEAD"},
    {"/queues/{name}/redrive", PARAM_NAME,
     "on AWS a dead-letter queue's worker fails each dead letter's task and deletes the message, "
     "so there is none to send back",
     NULL, post_redrive, NULL, "POST"},
    {"/metrics", PARAM_NONE, "the AWS deployment's functions send their metrics to CloudWatch",
     get_metrics, NULL, NULL, "GET, HEAD"},
    {"/events", PARAM_NONE, "the AWS deployment's task changes are in its DynamoDB table's stream",
     get_events, NULL, NULL, "GET, HEAD"},
};

/* Match path against a pattern; the "{name}" segment is copied into param. */
static bool match_pattern(const char *pattern, const char *path, char *param, size_t paramlen)
{
    const char *hole = strchr(pattern, '{');
    if (!hole)
        return strcmp(pattern, path) == 0;
    const char *rest = strchr(hole, '}') + 1;
    size_t pre = (size_t)(hole - pattern), post = strlen(rest), len = strlen(path);
    if (len <= pre + post || strncmp(path, pattern, pre) != 0 ||
        strcmp(path + len - post, rest) != 0)
        return false;
    size_t seg = len - pre - post;
    if (memchr(path + pre, '/', seg))
        return false;
    if (seg >= paramlen)
        seg = 0; /* too long to be any id or name: the route's own 404 says so */
    memcpy(param, path + pre, seg);
    param[seg] = '\0';
    return true;
}

/* The route that serves path in a process with the local pipeline or without it (AWS). */
static const route *match_route(bool pipeline, const char *path, char *param, size_t paramlen)
{
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        const route *r = &routes[i];
        if ((!r->on_aws || pipeline) && match_pattern(r->pattern, path, param, paramlen))
            return r;
    }
    return NULL;
}

/* The decimal text of an HTTP status (100..999; anything else as it comes) into out. */
static const char *status_text(int status, char out[12])
{
    if (status < 100 || status > 999) {
        snprintf(out, 12, "%d", status);
        return out;
    }
    out[0] = (char)('0' + status / 100);
    out[1] = (char)('0' + status / 10 % 10);
    out[2] = (char)('0' + status % 10);
    out[3] = '\0';
    return out;
}

/* Close the request's span and count it, once its response is known. */
static void conclude(api *a, api_exchange *ex)
{
    int status = ex->resp.status;
    span *sv = &ex->server;
    bool wrote = ex->store_span.start_ns != 0;
    /* the task's own view keeps the requests that changed it: not those that read it, nor
     * writes refused or repeated, which any client may send without end */
    bool changed = wrote && ex->write.rc == STORE_OK;
    if (wrote) {
        if (changed)
            snprintf(ex->store_span.task_id, sizeof ex->store_span.task_id, "%s", ex->task_id);
        if (*ex->task_id)
            span_set_str(&ex->store_span, "task.id", ex->task_id);
        if (!(ex->write.rc == STORE_OK || ex->write.rc == STORE_DUPLICATE ||
              ex->write.rc == STORE_REPEAT))
            span_set_error(&ex->store_span, store_rc_name(ex->write.rc));
        store_trace_write(a->store, &ex->write, &ex->store_span);
        trace_end(&a->telemetry, &ex->store_span);
    }
    span_set_int(sv, "http.response.status_code", status);
    if (*ex->task_id) {
        span_set_str(sv, "task.id", ex->task_id);
        if (changed)
            snprintf(sv->task_id, sizeof sv->task_id, "%s", ex->task_id);
    }
    if (status >= 500)
        span_set_error(sv, ex->resp.body ? ex->resp.body : "server error");
    double seconds = (double)(trace_now_ns() - sv->start_ns) / 1e9;
    if (log_enabled(LOG_DEBUG)) {
        char code[12], ms[32], trace_id[33];
        status_text(status, code);
        snprintf(ms, sizeof ms, "%.3f", seconds * 1e3);
        span_hex(sv->trace_id, 16, trace_id);
        log_debug("request", "method", ex->method, "route", ex->route, "status", code,
                  "duration_ms", ms, "trace_id", trace_id, *ex->task_id ? "task_id" : NULL,
                  ex->task_id, NULL);
    }
    trace_end(&a->telemetry, sv);
    if (a->telemetry.metrics) {
        char labels[160], code[12];
        str_join(labels, sizeof labels, "route=\"", ex->route, "\"", (const char *)NULL);
        metrics_observe(a->telemetry.metrics, "taskd_http_request_duration_seconds", labels,
                        seconds);
        str_join(labels, sizeof labels, "route=\"", ex->route, "\",method=\"", ex->method,
                 "\",code=\"", status_text(status, code), "\"", (const char *)NULL);
        metrics_add(a->telemetry.metrics, "taskd_http_requests_total", labels, 1);
    }
}

/* The method as a static string (metrics labels outlive the request). */
static const char *known_method(const char *m)
{
    static const char *const methods[] = {"GET", "HEAD",   "POST",   "PATCH",
                                          "PUT", "DELETE", "OPTIONS"};
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (strcmp(m, methods[i]) == 0)
            return methods[i];
    return "other";
}

void api_count_unrouted(api *a, const char *method, int status, int64_t start_ns,
                        const char *detail)
{
    const char *label = method ? known_method(method) : "unknown";
    char code[12];
    status_text(status, code);
    if (a && a->telemetry.metrics) {
        char labels[120];
        str_join(labels, sizeof labels, "route=\"" UNROUTED "\",method=\"", label, "\",code=\"",
                 code, "\"", (const char *)NULL);
        metrics_add(a->telemetry.metrics, "taskd_http_requests_total", labels, 1);
    }
    if (log_enabled(LOG_DEBUG)) {
        char ms[32];
        snprintf(ms, sizeof ms, "%.3f", (double)(clock_mono_ns() - start_ns) / 1e6);
        log_debug("request", "method", label, "route", UNROUTED, "status", code, "detail",
                  detail ? detail : "", start_ns ? "duration_ms" : NULL, ms, NULL);
    }
}

/*
 * A path that matches a route once its trailing slashes are dropped is sent there
 * with a 307, as FastAPI does, so clients written against the original keep
 * working; the query parameters the API reads go along. False when the path
 * is not such a path (or the Location would not fit): it is then a 404. Out of
 * memory, resp is a 500 (true).
 */
static bool redirect_slash(const api *a, const api_request *req, api_response *resp)
{
    static const char *const params[] = {"last_event_id", "limit",     "next_token",
                                         "status",        "task_type", "wait"};
    char path[256], param[128];
    size_t len = strlen(req->path);
    if (len < 2 || len > sizeof path || req->path[len - 1] != '/')
        return false;
    while (len > 1 && req->path[len - 1] == '/')
        len--; /* every trailing slash, as Starlette strips them */
    memcpy(path, req->path, len);
    path[len] = '\0';
    if (!match_route(a->pipeline != NULL, path, param, sizeof param))
        return false;
    sbuf loc = {0};
    url_escape(&loc, path, "/");
    char sep = '?';
    for (size_t i = 0; i < sizeof params / sizeof params[0]; i++) {
        const char *v = query(req, params[i]);
        if (!v)
            continue;
        sbuf_printf(&loc, "%c%s=", sep, params[i]);
        url_escape(&loc, v, NULL);
        sep = '&';
    }
    if (sbuf_failed(&loc)) { /* a redirect that cannot be made is no 404 */
        api_sbuf_error(resp, &loc);
        sbuf_free(&loc);
        return true;
    }
    bool fits = loc.len < sizeof resp->headers[0].value;
    if (fits) {
        resp->status = 307;
        api_add_header(resp, "Location", loc.data);
    }
    sbuf_free(&loc);
    return fits;
}

/* Answer 401 or 403 when the access policy refuses the request (docs/auth.md). */
static bool refused(const auth_policy *p, const api_request *req, api_response *resp)
{
    auth_request ar = {.method = req->method,
                       .path = req->path,
                       .host = header(req, "Host"),
                       .origin = header(req, "Origin"),
                       .sec_fetch_site = header(req, "Sec-Fetch-Site"),
                       .authorization = header(req, "Authorization")};
    auth_result r = auth_check(p, &ar);
    if (r == AUTH_OK)
        return false;
    api_error(resp, auth_status(r), auth_detail(r));
    if (auth_status(r) == 401)
        api_add_header(resp, "WWW-Authenticate",
                       r == AUTH_INVALID ? "Bearer realm=\"taskd\", error=\"invalid_token\""
                                         : "Bearer realm=\"taskd\"");
    return true;
}

/*
 * What the request's head alone decides, for route r (NULL: none matched) and its parameter
 * (a task id is put in its stored form): the handler to run, or NULL with the answer in resp
 * (401 or 403, a redirect or 404, 405, a task id that is none).
 */
static handler_fn judge_head(const api *a, const api_request *req, const route *r, char *param,
                             api_response *resp)
{
    if (a->access && refused(a->access, req, resp))
        return NULL;
    if (!r) {
        if (redirect_slash(a, req, resp))
            return NULL;
        /* a route of taskd's own: say so, and what the AWS deployment has instead */
        char seg[128]; /* the route is wanted, not its segment */
        const route *own = a->pipeline ? NULL : match_route(true, req->path, seg, sizeof seg);
        if (own) {
            char detail[256]; /* the route's first method, its pattern, what is on AWS */
            snprintf(detail, sizeof detail, "%.*s %s is served by taskd only%s%s",
                     (int)strcspn(own->allow, ","), own->allow, own->pattern,
                     *own->on_aws ? ": " : "", own->on_aws);
            api_error(resp, 404, detail);
        } else {
            api_error(resp, 404, "Not Found");
        }
        return NULL;
    }
    handler_fn fn = NULL;
    if (strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0)
        fn = r->get;
    else if (strcmp(req->method, "POST") == 0)
        fn = r->post;
    else if (strcmp(req->method, "PATCH") == 0)
        fn = r->patch;
    if (!fn) {
        api_error(resp, 405, "Method Not Allowed");
        api_add_header(resp, "Allow", r->allow);
        return NULL;
    }
    if (r->param == PARAM_TASK_ID) {
        uint8_t raw[16];
        if (!uuid_parse(param, raw)) {
            api_error(resp, 404, "Task not found");
            return NULL;
        }
        uuid_format(raw, param); /* ids are stored in lower case */
    }
    return fn;
}

bool api_head_refused(const api *a, const api_request *req)
{
    char param[128];
    api_response scratch = {0};
    bool refused = !judge_head(
        a, req, match_route(a->pipeline != NULL, req->path, param, sizeof param), param, &scratch);
    api_response_free(&scratch);
    return refused;
}

/* Route to the handler; API_DONE when the response is already in ex->resp. */
static api_status dispatch(api *a, const api_request *req, api_exchange *ex)
{
    char param[128];
    const route *r = match_route(a->pipeline != NULL, req->path, param, sizeof param);
    ex->route = r ? r->pattern : UNROUTED;
    str_join(ex->server.name, sizeof ex->server.name, ex->method, " ", ex->route,
             (const char *)NULL);
    span_set_static(&ex->server, "http.route", ex->route);
    handler_fn fn = judge_head(a, req, r, param, &ex->resp);
    if (!fn)
        return API_DONE;
    if (r->param == PARAM_TASK_ID)
        memcpy(ex->task_id, param, sizeof ex->task_id);
    return fn(a, req, r->param == PARAM_NONE ? NULL : param, ex);
}

/* Lines of one header read as one list at most; a request with more has its tracestate dropped */
#define TRACESTATE_LINES_MAX 64

/*
 * The request's tracestate in its normal form into out, "" when it has none or it breaks a rule
 * (tracectx_parse_tracestate()): every tracestate field, in order, when the transport gives
 * them all (header_at), else the one value header() gives.
 */
static void read_tracestate(const api_request *req, char out[TRACECTX_TRACESTATE_MAX + 1])
{
    const char *lines[TRACESTATE_LINES_MAX + 1];
    size_t n = 0;
    if (req->header_at) {
        while (n <= TRACESTATE_LINES_MAX && (lines[n] = req->header_at(req->ctx, "tracestate", n)))
            n++;
    } else if (req->header && (lines[0] = req->header(req->ctx, "tracestate"))) {
        n = 1;
    }
    if (n > TRACESTATE_LINES_MAX || !tracectx_parse_tracestate(lines, n, out))
        out[0] = '\0';
}

api_status api_begin(api *a, const api_request *req, api_exchange *ex)
{
    void (*ready)(api_exchange *) = ex->ready;
    void *user = ex->user;
    memset(ex, 0, sizeof *ex);
    ex->ready = ready;
    ex->user = user;
    ex->method = known_method(req->method);
    ex->route = UNROUTED; /* until routed: a body over the limit is answered before */

    trace_ctx incoming;
    const char *tp = header(req, "traceparent");
    if (tp && header_repeated(req, "traceparent"))
        tp = NULL; /* two: neither is the caller's (W3C: a new trace), as their join would say */
    const char *xr = header(req, "X-Amzn-Trace-Id");
    trace_source from = tracectx_from_headers(tp, xr, &incoming);
    bool continued = from != TRACECTX_NONE;
    if (from == TRACECTX_W3C) { /* a tracestate goes with a traceparent, never with X-Ray's */
        read_tracestate(req, ex->tracestate);
        incoming.tracestate = ex->tracestate[0] ? ex->tracestate : NULL;
    }
    trace_begin(&ex->server, continued ? &incoming : NULL, ex->method, SPAN_KIND_SERVER);
    ex->new_trace = !continued;
    if (strcmp(ex->method, "other") != 0) /* a known method: its static name, no copy */
        span_set_static(&ex->server, "http.request.method", ex->method);
    else
        span_set_str(&ex->server, "http.request.method", req->method);
    span_set_str(&ex->server, "url.path", req->path);
    /* API Gateway (and a TLS proxy in front of taskd) says how the client came in */
    const char *proto = header(req, "X-Forwarded-Proto");
    span_set_static(&ex->server, "url.scheme",
                    proto && strcasecmp(proto, "https") == 0 ? "https" : "http");

    api_status st = API_DONE;
    if (req->body_len > a->config->body_limit)
        api_body_too_large(&ex->resp, a->config->body_limit);
    else
        st = dispatch(a, req, ex);
    if (st == API_DONE)
        conclude(a, ex);
    return st;
}

void api_finish(api *a, api_exchange *ex)
{
    if (ex->finish)
        ex->finish(a, ex);
    else if (ex->write.kind == STORE_WRITE_CREATE)
        finish_create(ex);
    else
        finish_update(ex);
    conclude(a, ex);
}

void api_exchange_free(api_exchange *ex)
{
    api_response_free(&ex->resp);
    create_request_free(&ex->create);
    update_request_free(&ex->update);
    task_clear(&ex->write.current);
    free(ex->idempotency_key);
    ex->idempotency_key = NULL;
    span_clear(&ex->server);
    span_clear(&ex->store_span);
}

/* api_handle(): an exchange plus a condition variable to wait on. */
typedef struct blocking_call {
    api_exchange ex;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool ready;
} blocking_call;

static void wake_blocking_call(api_exchange *ex)
{
    blocking_call *call = ex->user;
    pthread_mutex_lock(&call->mu);
    call->ready = true;
    pthread_cond_signal(&call->cond);
    pthread_mutex_unlock(&call->mu);
}

void api_handle(api *a, const api_request *req, api_response *resp)
{
    blocking_call call = {.ex = {.ready = wake_blocking_call}};
    call.ex.user = &call;
    pthread_mutex_init(&call.mu, NULL);
    pthread_cond_init(&call.cond, NULL);
    if (api_begin(a, req, &call.ex) == API_PENDING) {
        pthread_mutex_lock(&call.mu);
        while (!call.ready)
            pthread_cond_wait(&call.cond, &call.mu);
        pthread_mutex_unlock(&call.mu);
        api_finish(a, &call.ex);
    }
    pthread_cond_destroy(&call.cond);
    pthread_mutex_destroy(&call.mu);
    *resp = call.ex.resp;
    call.ex.resp.body = NULL; /* moved to the caller */
    call.ex.resp.stream = NULL;
    api_exchange_free(&call.ex);
}

bool api_init(api *a, store *s, const config *c, const api_pipeline *pipeline, const telemetry *tel,
              int64_t (*now)(void))
{
    memset(a, 0, sizeof *a);
    a->store = s;
    a->config = c;
    a->now = now;
    a->pipeline = pipeline;
    if (tel)
        a->telemetry = *tel;
    a->openapi = openapi_document(c, pipeline != NULL, &a->openapi_len);
    return a->openapi != NULL;
}

void api_free(api *a)
{
    free(a->openapi);
    a->openapi = NULL;
}
