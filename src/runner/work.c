/*
 * work — claim outcome, run, report; see work.h.
 *
 * The step never waits for the store itself: work_run() submits the report
 * into the caller's store_batch and returns, so a batch's reports usually
 * share one commit, and work_finish() reads the outcome once the caller has
 * waited for the group. The claim was committed before the step began (with
 * the receive, or by the caller's own update); its span records the outcome
 * at the start of the processing, with no time of its own.
 */
#include "work.h"

#include "core/json_util.h"
#include "core/sbuf.h"
#include "core/validate.h"
#include "util/clock.h"
#include "util/log.h"

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Decide from the claim whether to run the task. */
static work_fate claim_fate(const work_item *it)
{
    switch (it->claim) {
    case STORE_OK:
        return WORK_RUN;
    case STORE_NOT_FOUND:
        return WORK_DROP; /* the task is gone */
    case STORE_CONFLICT:
        /* IN_PROGRESS after an earlier delivery of this message: that one died or overran, so
         * this one runs the task again. On a first delivery someone else claimed it (a client's
         * PATCH, the runner of another queue the task fanned out to): theirs to run; and so is
         * a task a client's claim holds, whatever delivery finds it (a delivery that failed
         * before it claimed, the client's claim in between) */
        return it->status_before == TASK_IN_PROGRESS && it->receive_count > 1 && !it->client_claimed
                   ? WORK_RUN
                   : WORK_DROP;
    case STORE_INVALID:
        /* a change the store can never make (an item at its size limit): no delivery could */
        log_error("the store can never claim this task; its message is dropped", "task_id", it->id,
                  "queue", it->queue, NULL);
        return WORK_DROP;
    default:
        return WORK_KEEP; /* store trouble: let the message come back */
    }
}

/* Open a child span of parent, belonging to task_id. */
static void child_span(span *s, const span *parent, const char *name, span_kind kind,
                       const char *task_id)
{
    trace_ctx ctx;
    trace_ctx_of(parent, &ctx);
    trace_begin(s, &ctx, name, kind);
    memcpy(s->task_id, task_id, sizeof s->task_id);
}

/*
 * The other messages' producers the receive spans of a batch link, worked out once for the
 * batch. A receive links the batch's traced messages of another trace than its own, in batch
 * order, the first SPAN_MAX_LINKS of them, and counts the rest as dropped. Its links are the
 * batch's first SPAN_MAX_LINKS traced messages (head), unless its trace is one of theirs: a walk
 * of the batch then picks them, once for each such trace (own). Its count is the traced messages
 * less those of its own trace, found in by_trace by a binary search. (A walk of the whole batch
 * for each receive span would take a million steps for a batch of 1,000.)
 */
typedef struct batch_links {
    const work_item *items;
    size_t n;
    size_t traced;
    /* the traced messages in trace id order; NULL when out of memory: each count walks the
     * batch */
    const work_item **by_trace;
    const work_item *head[SPAN_MAX_LINKS];
    size_t n_head;
    struct {
        bool known; /* worked out: the receives of head[k]'s trace link links */
        const work_item *links[SPAN_MAX_LINKS];
        size_t n_links;
    } own[SPAN_MAX_LINKS];
} batch_links;

static int by_trace_id(const void *a, const void *b)
{
    return memcmp((*(const work_item *const *)a)->producer.trace_id,
                  (*(const work_item *const *)b)->producer.trace_id, 16);
}

static void batch_links_init(batch_links *bl, const work_item *items, size_t n)
{
    memset(bl, 0, sizeof *bl);
    bl->items = items;
    bl->n = n;
    for (size_t j = 0; j < n; j++)
        if (items[j].traced) {
            if (bl->n_head < SPAN_MAX_LINKS)
                bl->head[bl->n_head++] = &items[j];
            bl->traced++;
        }
    if (bl->traced <= bl->n_head)
        return; /* nothing past the head: every count walks it */
    bl->by_trace = malloc(bl->traced * sizeof *bl->by_trace);
    if (!bl->by_trace)
        return;
    for (size_t j = 0, k = 0; j < n; j++)
        if (items[j].traced)
            bl->by_trace[k++] = &items[j];
    qsort(bl->by_trace, bl->traced, sizeof *bl->by_trace, by_trace_id);
}

/* The first of by_trace whose trace id is past trace_id (or, !past, not below it). */
static size_t trace_bound(const batch_links *bl, const uint8_t *trace_id, bool past)
{
    size_t lo = 0, hi = bl->traced;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = memcmp(bl->by_trace[mid]->producer.trace_id, trace_id, 16);
        if (c < 0 || (past && c == 0))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* How many traced messages of the batch are of trace trace_id. */
static size_t traced_in(const batch_links *bl, const uint8_t *trace_id)
{
    if (bl->by_trace)
        return trace_bound(bl, trace_id, true) - trace_bound(bl, trace_id, false);
    /* a walk: of the head when it holds them all, else of the batch (out of memory) */
    bool in_head = bl->traced <= bl->n_head;
    size_t count = 0;
    for (size_t j = 0; j < (in_head ? bl->n_head : bl->n); j++) {
        const work_item *other = in_head ? bl->head[j] : &bl->items[j];
        count += other->traced && memcmp(other->producer.trace_id, trace_id, 16) == 0;
    }
    return count;
}

/* Link s, of trace s->trace_id, to the batch's producers of other traces (see batch_links). */
static void link_producers(batch_links *bl, span *s)
{
    const work_item *const *links = bl->head;
    size_t n_links = bl->n_head;
    for (size_t k = 0; k < bl->n_head; k++) {
        if (memcmp(bl->head[k]->producer.trace_id, s->trace_id, 16) != 0)
            continue;
        if (!bl->own[k].known) {
            for (size_t j = 0; j < bl->n && bl->own[k].n_links < SPAN_MAX_LINKS; j++) {
                const work_item *other = &bl->items[j];
                if (other->traced && memcmp(other->producer.trace_id, s->trace_id, 16) != 0)
                    bl->own[k].links[bl->own[k].n_links++] = other;
            }
            bl->own[k].known = true;
        }
        links = bl->own[k].links;
        n_links = bl->own[k].n_links;
        break;
    }
    for (size_t k = 0; k < n_links; k++)
        span_add_link(s, links[k]->producer.trace_id, links[k]->producer.span_id);
    span_drop_links(s, bl->traced - traced_in(bl, s->trace_id) - n_links);
}

/* The delivery span starts when the message was sent: it shows the queue wait. */
static void begin_delivery(const work_env *e, work_item *it, batch_links *bl, size_t n,
                           int64_t received_ns)
{
    const char *system = e->messaging_system ? e->messaging_system : "taskd";
    char name[SPAN_NAME_MAX + 1];
    str_join(name, sizeof name, "receive ", it->queue, NULL);
    trace_begin(&it->receive, it->traced ? &it->producer : NULL, name, SPAN_KIND_CONSUMER);
    /* sent_ms is whole milliseconds: take the end of that millisecond, so the span never
     * seems to start before the producer's span, nor after its own end */
    int64_t sent_ns = it->sent_ms * 1000000 + 999999;
    it->receive.start_ns = sent_ns < received_ns ? sent_ns : received_ns;
    it->receive.end_ns = received_ns;
    memcpy(it->receive.task_id, it->id, sizeof it->id);
    span_set_static(&it->receive, "messaging.system", system);
    span_set_static(&it->receive, "messaging.operation.name", "receive");
    span_set_static(&it->receive, "messaging.operation.type", "receive");
    span_set_static(&it->receive, "messaging.destination.name", it->queue);
    if (it->message_id)
        span_set_str(&it->receive, "messaging.message.id", it->message_id);
    else
        span_set_int(&it->receive, "messaging.message.id", it->message_number);
    span_set_int(&it->receive, "messaging.batch.message_count", (int64_t)n);
    span_set_int(&it->receive, "taskd.receive_count", it->receive_count);
    span_set_str(&it->receive, "task.id", it->id);
    /* one batch, several traces: link the other messages' producers (those past
     * SPAN_MAX_LINKS counted in the span's dropped_links) */
    link_producers(bl, &it->receive);
    snprintf(name, sizeof name, "process %s", it->queue);
    child_span(&it->process, &it->receive, name, SPAN_KIND_CONSUMER, it->id);
    span_set_static(&it->process, "messaging.system", system);
    span_set_static(&it->process, "messaging.operation.name", "process");
    span_set_static(&it->process, "messaging.operation.type", "process");
    span_set_static(&it->process, "messaging.destination.name", it->queue);
    span_set_str(&it->process, "task.id", it->id);
}

void work_begin_update_span(const work_env *e, span *s, const work_item *it, const char *status)
{
    child_span(s, &it->process, "UPDATE tasks", SPAN_KIND_CLIENT, it->id);
    span_set_static(s, "db.system", e->store->ops->system);
    span_set_static(s, "db.operation.name", "UPDATE");
    span_set_static(s, "db.collection.name", "tasks");
    span_set_static(s, "task.status", status);
    span_set_str(s, "task.id", it->id);
}

/* End a status-update span with its outcome (in error with why, when given, else the outcome's
 * name) and, when w made it, the store's account of w. */
static void end_update_span(const work_env *e, span *s, store_rc rc, const store_write *w,
                            const char *why)
{
    if (rc != STORE_OK && rc != STORE_REPEAT)
        span_set_error(s, why ? why : store_rc_name(rc));
    if (w)
        store_trace_write(e->store, w, s);
    trace_end(&e->telemetry, s);
}

void work_item_reset(work_item *it)
{
    memset(it, 0, offsetof(work_item, receive));
    span *spans[] = {&it->receive, &it->process, &it->claim_span, &it->run_span, &it->report_span};
    for (size_t i = 0; i < sizeof spans / sizeof spans[0]; i++)
        span_reset(spans[i]);
}

void work_begin(const work_env *e, work_item *items, size_t n)
{
    int64_t received_ns = trace_now_ns(); /* one receive for the whole batch */
    batch_links bl;
    batch_links_init(&bl, items, n);
    for (size_t i = 0; i < n; i++) {
        work_item *it = &items[i];
        if (!it->id[0]) {
            it->fate = WORK_DROP; /* not a task message */
            continue;
        }
        begin_delivery(e, it, &bl, n, received_ns);
        if (it->unclaimed) { /* no claim to show: the delivery says why */
            span_set_error(&it->process, it->unclaimed);
            it->fate = WORK_KEEP;
            continue;
        }
        work_begin_update_span(e, &it->claim_span, it, "IN_PROGRESS");
        it->claim_span.start_ns = it->claim_span.end_ns = it->process.start_ns;
        if (it->claimed_with_receive)
            span_set_bool(&it->claim_span, "taskd.with_receive", true);
        it->fate = it->held ? WORK_KEEP : claim_fate(it);
        bool rerun = it->fate == WORK_RUN && it->claim == STORE_CONFLICT;
        end_update_span(e, &it->claim_span, rerun ? STORE_OK : it->claim, it->claim_write,
                        it->held);
    }
    free(bl.by_trace);
}

/* True when a run bounded by the binding's timeout, started now, ends by the item's deadline. */
static bool time_to_run(const work_env *e, const work_item *it)
{
    if (!it->deadline_ms)
        return true;
    int64_t now_ms = trace_now_ns() / 1000000;
    return it->deadline_ms - now_ms >= (int64_t)e->binding->timeout * 1000;
}

/*
 * A result every store can keep and every change record can carry: JSON
 * nesting at most VALIDATE_MAX_DEPTH levels, and json_storable(), as the API
 * demands of a PATCH.
 * Anything else fails the task with the reason instead of a report the store
 * would refuse again at each delivery. A result that cannot be checked for want
 * of memory is taskd's shortage, not the task's outcome: a retry.
 */
static void keep_storable(handler_result *r)
{
    if (!r->result)
        return;
    bool nomem; /* the result may be fine: it could not be checked */
    json_error_t jerr;
    json_t *v = json_parse(r->result, strlen(r->result), JSON_DECODE_ANY, &jerr, &nomem);
    const char *why = NULL;
    bool ok = v && json_depth_within(v, VALIDATE_MAX_DEPTH) && json_storable(v, &why);
    json_decref(v);
    if (ok)
        return;
    free(r->result);
    r->result = NULL;
    free(r->status_msg);
    char msg[192];
    if (nomem) {
        r->status_msg = strdup("out of memory checking the handler's result");
        r->retry = true;
        return;
    }
    if (why)
        snprintf(msg, sizeof msg, "the handler's result cannot be stored (%s); it was not kept",
                 why);
    else if (!v && json_error_code(&jerr) == json_error_numeric_overflow)
        snprintf(msg, sizeof msg,
                 "the handler's result cannot be stored (a number out of range: %.*s); it was "
                 "not kept",
                 utf8_prec(jerr.text, 80), jerr.text);
    else
        snprintf(msg, sizeof msg,
                 "the handler's result is not JSON nesting at most %d levels; it was not kept",
                 VALIDATE_MAX_DEPTH);
    r->status_msg = strdup(msg);
    r->ok = false;
}

/* Open the run's span under the item's processing, its trace context into tp and its trace id
 * into trace_id, and say that the run starts. */
static void begin_run(const work_env *e, work_item *it, char tp[56], char trace_id[33])
{
    handler *h = e->handler;
    char name[SPAN_NAME_MAX + 1];
    str_join(name, sizeof name, h->label ? h->label : h->name, NULL);
    child_span(&it->run_span, &it->process, name, SPAN_KIND_INTERNAL, it->id);
    span_set_static(&it->run_span, "taskd.handler", h->name);
    span_set_str(&it->run_span, "task.type", it->type);
    span_set_str(&it->run_span, "task.id", it->id);
    trace_traceparent_of(&it->run_span, tp);
    span_hex(it->run_span.trace_id, 16, trace_id);
    if (it->claim == STORE_CONFLICT) /* an earlier delivery claimed it: this one runs it again */
        log_info("task redelivered; running it again", "task_id", it->id, "trace_id", trace_id,
                 "queue", it->queue, NULL);
    log_debug("handler started", "task_id", it->id, "trace_id", trace_id, "handler", h->name, NULL);
}

/*
 * A run whose result is not the task's outcome (handler_result.retry: not started, or its
 * outcome not had, for want of something of taskd's own; .lost: run, but its end unseen): its
 * span ends in error, it is said, and the item's fate is WORK_LATER or WORK_LOST.
 */
static void set_aside(const work_env *e, work_item *it, const char *trace_id)
{
    bool retry = it->result.retry;
    const char *why = it->result.status_msg ? it->result.status_msg
                      : retry               ? "not started"
                                            : "its end is unknown";
    span_set_error(&it->run_span, why);
    trace_end(&e->telemetry, &it->run_span);
    char lost[256];
    snprintf(lost, sizeof lost, "a task's run ended unseen; its message comes back %s",
             e->lost_back ? e->lost_back : "after the visibility timeout");
    log_warn(retry ? "cannot start a task or keep its outcome; its message comes back after "
                     "the visibility timeout"
                   : lost,
             "task_id", it->id, "trace_id", trace_id, "reason", why, NULL);
    it->fate = retry ? WORK_LATER : WORK_LOST;
}

/* End the span of a run that came to the task's outcome, its time observed and a failure said;
 * the outcome's status message ("Task completed" or "Task failed" when the handler gave none). */
static const char *end_run(const work_env *e, work_item *it, const char *trace_id)
{
    if (!it->result.status_msg)
        it->result.status_msg = strdup(it->result.ok ? "Task completed" : "Task failed");
    const char *msg = it->result.status_msg ? it->result.status_msg : "";

    int64_t ran_ns = trace_now_ns() - it->run_span.start_ns;
    if (e->telemetry.metrics) {
        char labels[96];
        snprintf(labels, sizeof labels, "task_type=\"%s\"", it->type);
        metrics_observe(e->telemetry.metrics, "taskd_handler_duration_seconds", labels,
                        (double)ran_ns / 1e9);
    }
    if (!it->result.ok) {
        span_set_error(&it->run_span, msg);
        log_info("task failed", "task_id", it->id, "trace_id", trace_id, "reason", msg, NULL);
    }
    trace_end(&e->telemetry, &it->run_span);
    return msg;
}

bool work_run(const work_env *e, work_item *it, store_batch *group)
{
    if (it->fate != WORK_RUN)
        return false;
    if (!time_to_run(e, it)) {
        log_info("too near the deadline to start the task; its message will come back", "task_id",
                 it->id, "queue", it->queue, NULL);
        /* claimed, and not run: the trace says why, as for a task never claimed */
        span_set_error(&it->process, "not run: too near the deadline to start the task");
        it->fate = WORK_KEEP;
        return false;
    }
    char tp[56], trace_id[33];
    begin_run(e, it, tp, trace_id);
    handler_task t = {.id = it->id,
                      .task_type = it->type,
                      .data = it->body,
                      .traceparent = tp,
                      .tracestate = it->run_span.trace_state};
    e->handler->run(e->handler, &t, e->binding->timeout, &it->result);
    if (e->aborting && atomic_load(e->aborting) && !it->result.own_end) {
        /* cut short by shutdown: the outcome is not the task's; run it again later. A run
         * that had ended on its own before the abort is reported as any other */
        span_set_error(&it->run_span, "aborted at shutdown");
        trace_end(&e->telemetry, &it->run_span);
        it->fate = WORK_KEEP;
        return false;
    }
    keep_storable(&it->result);
    if (it->result.retry || it->result.lost) {
        set_aside(e, it, trace_id);
        return false;
    }
    const char *msg = end_run(e, it, trace_id);

    task_status status = it->result.ok ? TASK_COMPLETED : TASK_FAILED;
    work_begin_update_span(e, &it->report_span, it, task_status_name(status));
    it->report = (store_write){
        .kind = STORE_WRITE_UPDATE,
        .now = clock_unix_s(), /* the clock the API stamps creations with */
        .update = {.id = it->id, .status = status, .status_msg = msg, .result = it->result.result},
    };
    it->reported = true;
    store_batch_submit(group, e->store, &it->report);
    return true;
}

/*
 * The store refused the report for its result (DynamoDB keeps at most 400 KB an item): the task
 * fails saying so, without the result, rather than run again at each delivery until its message
 * is dead-lettered. The outcome of that second report, which takes the first one's place.
 */
static store_rc report_without_result(const work_env *e, work_item *it)
{
    log_warn("the store cannot keep the handler's result; the task fails without it", "task_id",
             it->id, NULL);
    task_clear(&it->report.current);
    it->report = (store_write){
        .kind = STORE_WRITE_UPDATE,
        .now = clock_unix_s(),
        .update = {.id = it->id,
                   .status = TASK_FAILED,
                   .status_msg =
                       "the handler's result is larger than the store can keep; it was not kept"},
    };
    return store_write_wait(e->store, &it->report);
}

bool work_finish(const work_env *e, work_item *it)
{
    bool spent = it->fate == WORK_DROP;
    if (it->fate == WORK_RUN && !it->reported)
        it->fate = WORK_KEEP; /* the caller stopped before running it */
    if (it->reported) {
        store_rc rc = it->report.rc;
        if (rc == STORE_INVALID && it->report.update.result) {
            end_update_span(e, &it->report_span, rc, &it->report, NULL);
            work_begin_update_span(e, &it->report_span, it, task_status_name(TASK_FAILED));
            rc = report_without_result(e, it);
        }
        end_update_span(e, &it->report_span, rc, &it->report, NULL);
        /* reported, or already final: the message is spent; and so it is when the store can
         * never make the change (no delivery could: running the task again would not help) */
        spent = rc == STORE_OK || rc == STORE_REPEAT || rc == STORE_CONFLICT ||
                rc == STORE_NOT_FOUND || rc == STORE_INVALID;
        if (rc == STORE_INVALID)
            log_error("the store can never keep this task's outcome; it stays IN_PROGRESS",
                      "task_id", it->id, NULL);
        if (!spent) {
            it->fate = WORK_KEEP;
            char why[160];
            log_warn("cannot report a task; its message will be redelivered", "task_id", it->id,
                     "error", store_rc_name(rc), store_reason_field(e->store, rc, why, sizeof why),
                     why, NULL);
        }
    }
    trace_end(&e->telemetry, &it->process);
    trace_end(&e->telemetry, &it->receive);
    task_clear(&it->report.current);
    handler_result_clear(&it->result);
    span_clear(&it->claim_span);
    span_clear(&it->run_span);
    span_clear(&it->report_span);
    it->reported = false;
    return spent;
}
