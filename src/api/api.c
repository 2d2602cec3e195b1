/*
 * api — routing and the handlers of SPEC §1.
 *
 * The route table maps a path shape to the handler of each method; a path
 * that matches with no handler for the method is a 405 with Allow listing the
 * methods that exist. HEAD is answered like GET (the transport drops the
 * body). Store results map to status codes in one place, store_status().
 */
#include "api.h"

#include "core/pagetoken.h"
#include "core/sbuf.h"
#include "core/uuid7.h"
#include "core/validate.h"
#include "openapi.h"

#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char JSON_TYPE[] = "application/json";

void api_add_header(api_response *resp, const char *name, const char *value)
{
    if (resp->n_headers >= API_MAX_HEADERS)
        return;
    api_header *h = &resp->headers[resp->n_headers++];
    h->name = name;
    snprintf(h->value, sizeof h->value, "%s", value);
}

/* Take the buffer as the response body; a failed buffer becomes a 500. */
static void set_body(api_response *resp, int status, sbuf *b)
{
    if (sbuf_failed(b)) {
        sbuf_free(b);
        api_error(resp, 500, "Out of memory");
        return;
    }
    resp->status = status;
    resp->content_type = JSON_TYPE;
    resp->body = sbuf_take(b, &resp->body_len);
}

void api_error(api_response *resp, int status, const char *detail)
{
    free(resp->body);
    sbuf b = {0};
    sbuf_puts(&b, "{\"detail\":");
    sbuf_json_str(&b, detail);
    sbuf_putc(&b, '}');
    resp->status = status;
    resp->content_type = JSON_TYPE;
    resp->body = sbuf_failed(&b) ? NULL : sbuf_take(&b, &resp->body_len);
    if (!resp->body)
        resp->body_len = 0;
    sbuf_free(&b);
}

void api_response_free(api_response *resp)
{
    free(resp->body);
    resp->body = NULL;
}

static void validation_error(api_response *resp, validation *v)
{
    free(resp->body);
    resp->body = validation_body(v, &resp->body_len);
    if (!resp->body) {
        api_error(resp, 500, "Out of memory");
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
    default:
        return false;
    }
}

/* ---- handlers ---------------------------------------------------------- */

static api_status get_health(api *a, const api_request *req, const char *id, api_exchange *ex)
{
    api_response *resp = &ex->resp;
    (void)req;
    (void)id;
    if (store_ping(a->store) != STORE_OK) {
        api_error(resp, 503, "The task store does not answer");
        api_add_header(resp, "Retry-After", "5");
        return API_DONE;
    }
    sbuf b = {0};
    sbuf_puts(&b, "{\"status\":\"ok\"}");
    set_body(resp, 200, &b);
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
    ex->ready(ex);
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
    const char *key = req->header ? req->header(req->ctx, "Idempotency-Key") : NULL;
    if (key && (strlen(key) == 0 || strlen(key) > 255)) {
        api_error(resp, 400, "Idempotency-Key must be 1 to 255 characters");
        return API_DONE;
    }
    if (key && !(ex->idempotency_key = strdup(key))) {
        api_error(resp, 503, "Out of memory");
        return API_DONE;
    }
    ex->write = (store_write){
        .kind = STORE_WRITE_CREATE,
        .now = a->now(),
        .create = {.task_type = ex->create.task_type,
                   .data = ex->create.data,
                   .ttl = ex->create.ttl,
                   .idempotency_key = ex->idempotency_key},
        .done = write_done,
    };
    store_submit(a->store, &ex->write);
    return API_PENDING;
}

static void finish_create(api_exchange *ex)
{
    api_response *resp = &ex->resp;
    store_rc rc = ex->write.rc;
    if (store_failed(resp, rc))
        return;
    sbuf b = {0};
    sbuf_puts(&b, "{\"id\":");
    sbuf_json_str(&b, ex->write.id);
    sbuf_putc(&b, '}');
    set_body(resp, rc == STORE_DUPLICATE ? 200 : 201, &b);
    char location[64];
    snprintf(location, sizeof location, "/tasks/%s", ex->write.id);
    api_add_header(resp, "Location", location);
}

static const char *query(const api_request *req, const char *name)
{
    return req->query ? req->query(req->ctx, name) : NULL;
}

static api_status list_tasks(api *a, const api_request *req, const char *id, api_exchange *ex)
{
    api_response *resp = &ex->resp;
    (void)id;
    validation v = {0};
    store_list_query q = {0};
    validate_limit(query(req, "limit"), &q.limit, &v);
    q.status = query(req, "status");
    task_status st;
    if (q.status && !task_status_parse(q.status, &st))
        validation_add(&v, "query", "status",
                       "Input should be 'CREATED', 'IN_PROGRESS', 'COMPLETED' or 'FAILED'", "enum");
    q.task_type = query(req, "task_type");
    if (q.task_type && !config_has_task_type(a->config, q.task_type))
        validation_add(&v, "query", "task_type", "Input should be a configured task type", "enum");
    if (v.count) {
        validation_error(resp, &v);
        validation_free(&v);
        return API_DONE;
    }
    char before[37];
    const char *token = query(req, "next_token");
    if (token) {
        if (!pagetoken_decode(a->token_key, token, q.status, q.task_type, before)) {
            api_error(resp, 400, "Invalid next_token");
            return API_DONE;
        }
        q.before_id = before;
    }
    store_page page = {0};
    if (store_failed(resp, store_list_tasks(a->store, &q, &page)))
        return API_DONE;
    sbuf b = {0};
    sbuf_puts(&b, "{\"tasks\":[");
    for (size_t i = 0; i < page.count; i++) {
        if (i)
            sbuf_putc(&b, ',');
        task_to_json(&b, &page.tasks[i], false);
    }
    sbuf_puts(&b, "],\"next_token\":");
    char next[PAGETOKEN_TEXT_MAX];
    if (page.more && page.count &&
        pagetoken_encode(a->token_key, page.tasks[page.count - 1].id, q.status, q.task_type, next))
        sbuf_json_str(&b, next);
    else
        sbuf_puts(&b, "null");
    sbuf_putc(&b, '}');
    store_page_free(&page);
    set_body(resp, 200, &b);
    return API_DONE;
}

static api_status get_task(api *a, const api_request *req, const char *id, api_exchange *ex)
{
    api_response *resp = &ex->resp;
    (void)req;
    task t = {0};
    if (store_failed(resp, store_get_task(a->store, id, &t)))
        return API_DONE;
    sbuf b = {0};
    task_to_json(&b, &t, true);
    task_clear(&t);
    set_body(resp, 200, &b);
    return API_DONE;
}

static api_status patch_task(api *a, const api_request *req, const char *id, api_exchange *ex)
{
    validation v = {0};
    if (!validate_update(req->body, req->body_len, &ex->update, &v)) {
        validation_error(&ex->resp, &v);
        validation_free(&v);
        return API_DONE;
    }
    snprintf(ex->task_id, sizeof ex->task_id, "%s", id);
    ex->write = (store_write){
        .kind = STORE_WRITE_UPDATE,
        .now = a->now(),
        .update = {.id = ex->task_id,
                   .status = ex->update.status,
                   .status_msg = ex->update.status_msg,
                   .result = ex->update.result},
        .done = write_done,
    };
    store_submit(a->store, &ex->write);
    return API_PENDING;
}

static void finish_update(api_exchange *ex)
{
    api_response *resp = &ex->resp;
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

static api_status post_redrive(api *a, const api_request *req, const char *queue, api_exchange *ex)
{
    (void)req;
    int64_t moved = 0;
    store_rc rc = a->pipeline->redrive(a->pipeline->ctx, queue, &moved);
    if (rc == STORE_NOT_FOUND) {
        api_error(&ex->resp, 404, "No such queue with a dead-letter queue");
        return API_DONE;
    }
    if (store_failed(&ex->resp, rc))
        return API_DONE;
    sbuf b = {0};
    sbuf_printf(&b, "{\"queue\":");
    sbuf_json_str(&b, queue);
    sbuf_printf(&b, ",\"moved\":%lld}", (long long)moved);
    set_body(&ex->resp, 200, &b);
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

/* ---- routing ----------------------------------------------------------- */

typedef api_status (*handler_fn)(api *a, const api_request *req, const char *param,
                                 api_exchange *ex);

typedef enum param_kind { PARAM_NONE, PARAM_TASK_ID, PARAM_NAME } param_kind;

typedef struct route {
    const char *pattern; /* path, with at most one "{}" standing for one segment */
    param_kind param;
    bool pipeline; /* served only when the API has a pipeline */
    handler_fn get, post, patch;
    const char *allow;
} route;

static const route routes[] = {
    {"/health", PARAM_NONE, false, get_health, NULL, NULL, "GET, HEAD"},
    {"/openapi.json", PARAM_NONE, false, get_openapi, NULL, NULL, "GET, HEAD"},
    {"/tasks", PARAM_NONE, false, list_tasks, post_task, NULL, "GET, HEAD, POST"},
    {"/tasks/{}", PARAM_TASK_ID, false, get_task, NULL, patch_task, "GET, HEAD, PATCH"},
    {"/queues", PARAM_NONE, true, get_queues, NULL, NULL, "GET, HEAD"},
    {"/queues/{}/redrive", PARAM_NAME, true, NULL, post_redrive, NULL, "POST"},
    {"/metrics", PARAM_NONE, true, get_metrics, NULL, NULL, "GET, HEAD"},
};

/* Match path against a pattern; the "{}" segment is copied into param. */
static bool match_pattern(const char *pattern, const char *path, char *param, size_t paramlen)
{
    const char *hole = strstr(pattern, "{}");
    if (!hole)
        return strcmp(pattern, path) == 0;
    size_t pre = (size_t)(hole - pattern), post = strlen(hole + 2), len = strlen(path);
    if (len <= pre + post || strncmp(path, pattern, pre) != 0 ||
        strcmp(path + len - post, hole + 2) != 0)
        return false;
    size_t seg = len - pre - post;
    if (seg >= paramlen || memchr(path + pre, '/', seg))
        return false;
    memcpy(param, path + pre, seg);
    param[seg] = '\0';
    return true;
}

static const route *match_route(const api *a, const char *path, char *param, size_t paramlen)
{
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        const route *r = &routes[i];
        if ((!r->pipeline || a->pipeline) && match_pattern(r->pattern, path, param, paramlen))
            return r;
    }
    return NULL;
}

api_status api_begin(api *a, const api_request *req, api_exchange *ex)
{
    void (*ready)(api_exchange *) = ex->ready;
    void *user = ex->user;
    memset(ex, 0, sizeof *ex);
    ex->ready = ready;
    ex->user = user;
    api_response *resp = &ex->resp;
    char param[128];
    const route *r = match_route(a, req->path, param, sizeof param);
    if (!r) {
        api_error(resp, 404, "Not Found");
        return API_DONE;
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
        return API_DONE;
    }
    if (r->param == PARAM_TASK_ID) {
        uint8_t raw[16];
        if (!uuid_parse(param, raw)) {
            api_error(resp, 404, "Task not found");
            return API_DONE;
        }
        uuid_format(raw, param); /* ids are stored in lower case */
    }
    return fn(a, req, r->param == PARAM_NONE ? NULL : param, ex);
}

void api_finish(api *a, api_exchange *ex)
{
    (void)a;
    if (ex->write.kind == STORE_WRITE_CREATE)
        finish_create(ex);
    else
        finish_update(ex);
}

void api_exchange_free(api_exchange *ex)
{
    api_response_free(&ex->resp);
    create_request_free(&ex->create);
    update_request_free(&ex->update);
    task_clear(&ex->write.current);
    free(ex->idempotency_key);
    ex->idempotency_key = NULL;
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
    api_exchange_free(&call.ex);
}

bool api_init(api *a, store *s, const config *c, const api_pipeline *pipeline, int64_t (*now)(void))
{
    memset(a, 0, sizeof *a);
    a->store = s;
    a->config = c;
    a->now = now;
    if (store_secret(s, a->token_key) != STORE_OK)
        return false;
    a->pipeline = pipeline;
    a->openapi = openapi_document(c, pipeline != NULL, &a->openapi_len);
    return a->openapi != NULL;
}

void api_free(api *a)
{
    free(a->openapi);
    a->openapi = NULL;
}
