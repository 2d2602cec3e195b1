/*
 * store — helpers shared by every store adapter.
 */
#include "store.h"

#include "core/tracectx.h"
#include "util/log.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *store_rc_name(store_rc rc)
{
    switch (rc) {
    case STORE_OK:
        return "ok";
    case STORE_NOT_FOUND:
        return "not found";
    case STORE_CONFLICT:
        return "conflict";
    case STORE_REPEAT:
        return "repeat";
    case STORE_DUPLICATE:
        return "duplicate";
    case STORE_BUSY:
        return "busy";
    case STORE_INVALID:
        return "invalid";
    case STORE_ERROR:
        return "error";
    }
    return "unknown";
}

void store_page_free(store_page *p)
{
    for (size_t i = 0; i < p->count; i++)
        task_clear(&p->tasks[i]);
    free(p->tasks);
    p->tasks = NULL;
    p->count = 0;
}

/* A write plus what a waiting thread needs to sleep until it is done. */
typedef struct waiter {
    store_write w; /* first: done() gets &w and casts back */
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool done;
} waiter;

static void wake_waiter(store_write *w)
{
    waiter *wt = (waiter *)w;
    pthread_mutex_lock(&wt->mu);
    wt->done = true;
    pthread_cond_signal(&wt->cond);
    pthread_mutex_unlock(&wt->mu);
}

store_rc store_write_wait(store *s, store_write *w)
{
    waiter wt = {.w = *w, .done = false};
    wt.w.done = wake_waiter;
    pthread_mutex_init(&wt.mu, NULL);
    pthread_cond_init(&wt.cond, NULL);
    store_submit(s, &wt.w);
    pthread_mutex_lock(&wt.mu);
    while (!wt.done)
        pthread_cond_wait(&wt.cond, &wt.mu);
    pthread_mutex_unlock(&wt.mu);
    pthread_cond_destroy(&wt.cond);
    pthread_mutex_destroy(&wt.mu);
    void (*done)(store_write *) = w->done;
    *w = wt.w;
    w->done = done;
    return w->rc;
}

store_rc store_create_task(store *s, const store_new_task *t, int64_t now, char id_out[37])
{
    store_write w = {.kind = STORE_WRITE_CREATE, .now = now, .create = *t};
    store_rc rc = store_write_wait(s, &w);
    memcpy(id_out, w.id, sizeof w.id);
    return rc;
}

store_rc store_update_task(store *s, const store_update *u, int64_t now, task *current)
{
    store_write w = {.kind = STORE_WRITE_UPDATE, .now = now, .update = *u};
    store_rc rc = store_write_wait(s, &w);
    if (current)
        *current = w.current;
    else
        task_clear(&w.current);
    return rc;
}

static void batch_write_done(store_write *w)
{
    store_batch *b = w->user;
    pthread_mutex_lock(&b->mu);
    if (--b->pending == 0)
        pthread_cond_signal(&b->cond);
    pthread_mutex_unlock(&b->mu);
}

void store_batch_init(store_batch *b)
{
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cond, NULL);
    b->pending = 0;
}

void store_batch_submit(store_batch *b, store *s, store_write *w)
{
    w->done = batch_write_done;
    w->user = b;
    pthread_mutex_lock(&b->mu);
    b->pending++;
    pthread_mutex_unlock(&b->mu);
    store_submit(s, w);
}

void store_batch_wait(store_batch *b)
{
    pthread_mutex_lock(&b->mu);
    while (b->pending)
        pthread_cond_wait(&b->cond, &b->mu);
    pthread_mutex_unlock(&b->mu);
    pthread_cond_destroy(&b->cond);
    pthread_mutex_destroy(&b->mu);
}

/* The status message of a task whose claim's lease ended at expires (ISO 8601 UTC, as the
 * task's history gives times). */
static void claim_expired_msg(char *out, size_t n, int64_t expires)
{
    char iso[32];
    task_time_iso_text(iso, expires);
    snprintf(out, n, "claim expired: no outcome reported by %s", iso);
}

void store_log_task_failed(const char *task_id, const char *traceparent, const char *why)
{
    char trace_id[33] = "";
    trace_ctx ctx;
    if (traceparent && tracectx_parse_traceparent(traceparent, &ctx))
        span_hex(ctx.trace_id, sizeof ctx.trace_id, trace_id);
    log_warn("task failed", "task_id", task_id, "reason", why, /* trace_id when known */
             *trace_id ? "trace_id" : NULL, trace_id, NULL);
}

store_rc store_end_expired_claims(store *s, int64_t now, size_t max, size_t *ended, bool *more,
                                  metrics *m)
{
    *ended = 0;
    *more = false;
    if (!s->ops->expired_claims || max == 0)
        return STORE_OK;
    store_claim *claims = calloc(max, sizeof *claims);
    if (!claims)
        return STORE_ERROR;
    size_t n = 0;
    store_rc rc = s->ops->expired_claims(s, now, claims, max, &n);
    for (size_t i = 0; i < n && rc == STORE_OK; i++) {
        char why[96];
        claim_expired_msg(why, sizeof why, claims[i].claim_expires);
        store_update u = {.id = claims[i].id,
                          .status = TASK_FAILED,
                          .status_msg = why,
                          .lease_ended = claims[i].claim_expires};
        task was = {0};
        store_rc one = store_update_task(s, &u, now, &was);
        if (one == STORE_OK) {
            (*ended)++;
            store_log_task_failed(was.id, was.trace, why);
            if (m) {
                char labels[96];
                snprintf(labels, sizeof labels, "task_type=\"%s\"", was.task_type);
                metrics_add(m, "taskd_claims_expired_total", labels, 1);
            }
        } else if (one == STORE_INVALID) {
            /* a change the store can never make (a DynamoDB item at its size limit, which the
             * failure would grow): said, and passed over, lest it hold up every lease after it */
            log_error("a lease ran out that the store can never end; the task stays IN_PROGRESS",
                      "task_id", claims[i].id, NULL);
        } else if (one != STORE_CONFLICT && one != STORE_NOT_FOUND && one != STORE_REPEAT) {
            rc = one; /* renewed, finished or gone meanwhile: theirs; else a failure */
        }
        task_clear(&was);
    }
    /* a full step that ended nothing found only tasks changed since (a store whose list lags
     * behind its writes, as a DynamoDB index does, lists them again): the next run looks */
    *more = rc == STORE_OK && n == max && *ended > 0;
    free(claims);
    return rc;
}
