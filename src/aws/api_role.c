/*
 * api_role — API Gateway events into api_handle(); see api_role.h.
 *
 * An event that is not an API Gateway proxy event fails the invocation
 * (Runtime.InvalidEvent): API Gateway never sends one, so whoever did gets a
 * function error rather than an HTTP answer it would not read. One that
 * could not be read for want of memory is Runtime.OutOfMemory, the function's
 * fault, not the event's.
 */
#include "api_role.h"
#include "core/errbuf.h"
#include "util/clock.h"

#include "api/api.h"
#include "apigw.h"
#include "util/log.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/*
 * On AWS a task's data travels as an SNS message, which holds at most 256 KiB
 * with its attributes: a larger task could be stored but never published, and
 * would hold up the stream. So the API refuses it (413) at the door: a body
 * over the limit, and data whose JSON text, as the message carries it, is.
 */
#define SNS_BODY_LIMIT (256 * 1024 - 2048) /* room left for the message attributes */

typedef struct api_role {
    role base;
    config cfg; /* the configuration, with the body limit an SNS message can carry */
    api api;
} api_role;

/* The request as the API sees it: the event's, with the invocation's trace. */
typedef struct traced_request {
    const api_request *event; /* the decoded event */
    const char *trace_id;     /* Lambda-Runtime-Trace-Id, or NULL */
} traced_request;

static const char *traced_header(void *ctx, const char *name)
{
    const traced_request *t = ctx;
    if (t->trace_id) {
        if (strcasecmp(name, "X-Amzn-Trace-Id") == 0)
            return t->trace_id;
        if (strcasecmp(name, "traceparent") == 0)
            return NULL; /* the function's segment is the parent, not the caller's span */
    }
    return t->event->header ? t->event->header(t->event->ctx, name) : NULL;
}

static const char *traced_query(void *ctx, const char *name)
{
    const traced_request *t = ctx;
    return t->event->query ? t->event->query(t->event->ctx, name) : NULL;
}

static void api_invoke(role *r, const lambda_invocation *inv, role_result *out)
{
    api_role *ar = (api_role *)r;
    apigw_request ev;
    char err[256];
    bool nomem;
    if (!apigw_request_parse(inv->event, inv->event_len, &ev, err, sizeof err, &nomem)) {
        if (nomem) {
            role_fail(out, "Runtime.OutOfMemory", "cannot read the event");
            return;
        }
        log_warn("not an API Gateway proxy event", "error", err, NULL);
        role_fail(out, "Runtime.InvalidEvent", "%s", err);
        return;
    }
    traced_request t = {.event = &ev.req, .trace_id = inv->trace_id[0] ? inv->trace_id : NULL};
    api_request req = ev.req;
    req.header = traced_header;
    req.header_at = NULL; /* the event's headers: one value each (2.0 joins repeated ones) */
    req.query = traced_query;
    req.ctx = &t;
    api_response resp = {0};
    api_handle(&ar->api, &req, &resp);
    out->response = apigw_response_json(&ev, &resp, &out->response_len);
    if (!out->response)
        role_fail(out, "Runtime.OutOfMemory", "cannot encode the response");
    api_response_free(&resp);
    apigw_request_free(&ev);
}

static void api_role_free(role *r)
{
    api_role *ar = (api_role *)r;
    api_free(&ar->api);
    free(ar);
}

role *api_role_new(store *s, const config *c, const telemetry *tel, char *err, size_t errlen)
{
    api_role *ar = calloc(1, sizeof *ar);
    if (ar) {
        ar->cfg = *c; /* a view: the pointers stay the caller's */
        if (ar->cfg.body_limit > SNS_BODY_LIMIT)
            ar->cfg.body_limit = SNS_BODY_LIMIT;
        ar->cfg.data_limit = SNS_BODY_LIMIT;
    }
    if (!ar || !api_init(&ar->api, s, &ar->cfg, NULL, tel, clock_unix_s)) {
        free(ar);
        errbuf_set(err, errlen, "cannot initialise the API: out of memory");
        return NULL;
    }
    ar->base = (role){.name = "api", .invoke = api_invoke, .free = api_role_free};
    return &ar->base;
}
