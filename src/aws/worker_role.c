/*
 * worker_role — SQS events into the work step; see worker_role.h.
 *
 * The role holds one lane per queue it serves: a handler lane (the queue's
 * binding, its handler built once, and the work_env the step needs) or a
 * dead-letter lane (the queues whose dead-letter queue it is). An
 * invocation first reads every record (sqs_event.h) and finds its lane (a
 * record the answer could not name fails the invocation before anything is
 * written), then works each lane's records as one batch, then answers with
 * the messages to keep.
 *
 * A handler lane's batch goes through work.h in its phases
 * (work_handler_lane()): plan_claims() picks the tasks whose runs, one after
 * another, can start before the invocation's deadline, and prepares their
 * claims (the rest is kept for another delivery); submit_claims() submits
 * them together (one store_batch: they share a commit where the store groups
 * writes) and waits; each claim's outcome becomes its item's (a fresh claim
 * found IN_PROGRESS is turned into "keep", see the header); work_begin;
 * submit_reclaims() claims again, together, the tasks of the items that run
 * again after an earlier delivery, and end_reclaims() lets run only those it
 * took (reclaimed()); run_items() runs work_run for each item to run, one
 * after another, the reports going into another group, and waits;
 * work_finish tells spent from kept. The tasks the claims and reclaims
 * returned (current) stay alive until the end: an item may borrow its data
 * and type from them.
 *
 * Every string a record points to is borrowed from the event's JSON or
 * from its parsed body, both released when the invocation ends.
 */
#include "worker_role.h"
#include "core/errbuf.h"
#include "core/json_util.h"
#include "util/clock.h"

#include "aws_http.h"
#include "sqs_event.h"
#include "core/sbuf.h"
#include "runner/handlers.h"
#include "runner/work.h"
#include "util/log.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* One queue the worker serves. */
typedef struct lane {
    const queue_config *queue;
    const handler_config *binding; /* handler mode; NULL in dead-letter mode */
    work_env env;                  /* handler mode: the step's environment; the handler is owned */
    const queue_config *sources[CONFIG_MAX_ITEMS]; /* dead-letter mode: whose dead letters */
    size_t n_sources;
} lane;

typedef struct worker_role {
    role base;
    store *store;
    telemetry tel;
    bool fixed; /* one queue was named: every record is its own */
    lane lanes[CONFIG_MAX_ITEMS];
    size_t n_lanes;
} worker_role;

/* One record of the event: the message as read, and what becomes of it here. */
typedef struct record {
    sqs_record m; /* strings borrowed (see the module comment) */
    lane *lane;   /* NULL: the record names no queue served here */
    bool kept;    /* the message must come back */
} record;

/* ---- reading the event --------------------------------------------------- */

static lane *lane_named(worker_role *w, const char *name)
{
    for (size_t i = 0; name && i < w->n_lanes; i++)
        if (strcmp(w->lanes[i].queue->name, name) == 0)
            return &w->lanes[i];
    return NULL;
}

/*
 * Read Records[i] into rec (sqs_event.h) and find its lane. False (with err)
 * when the record cannot be answered for on its own: not an object, or no
 * messageId.
 */
static bool read_record(worker_role *w, const json_t *r, size_t i, record *rec, char *err,
                        size_t errlen)
{
    if (!sqs_record_read(r, i, &rec->m, err, errlen))
        return false;
    if (rec->m.unread) { /* read only in part for want of memory: SQS delivers it again */
        rec->kept = true;
        return true;
    }
    rec->lane = w->fixed ? &w->lanes[0] : lane_named(w, sqs_queue_of_arn(rec->m.event_source_arn));
    if (!rec->lane) {
        const char *arn = rec->m.event_source_arn;
        log_error("message from a queue this worker does not serve; it will come back",
                  "message_id", rec->m.message_id, "event_source_arn", arn ? arn : "", NULL);
        rec->kept = true;
    }
    return true;
}

/*
 * Say the records that name no task, spent (deleted by Lambda), or they would go without a
 * trace: once the batch is answered, since a batch refused whole (a record unreadable, out of
 * memory) comes back whole, those with it.
 */
static void say_no_task(const record *recs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const record *rec = &recs[i];
        if (rec->lane && !rec->kept && !rec->m.task_id[0])
            log_warn("message names no task; it is dropped", "message_id", rec->m.message_id,
                     "queue", rec->lane->queue->name, "reason",
                     rec->m.bad_task_id ? "its TaskId is no task id" : "no TaskId attribute", NULL);
    }
}

/* ---- handler lanes -------------------------------------------------------- */

/* The context of the span that sent rec (traceparent, else AWSTraceHeader), with the message's
 * tracestate when it came with a traceparent; false when the message has none. */
static bool producer_of(const record *rec, trace_ctx *out)
{
    trace_source from = tracectx_from_headers(rec->m.traceparent, rec->m.xray, out);
    if (from == TRACECTX_W3C && rec->m.tracestate[0])
        out->tracestate = rec->m.tracestate;
    return from != TRACECTX_NONE;
}

/* Say that a claim the store failed (busy, in error) keeps its message: the store's own line
 * names the call, not the task or the message. */
static void say_claim_failed(const lane *l, const record *rec, const store_write *c)
{
    switch (c->rc) {
    case STORE_OK:
    case STORE_CONFLICT:
    case STORE_NOT_FOUND:
    case STORE_INVALID: /* each said, or not worth a word, where its fate is set (work.h) */
        return;
    default:
        break;
    }
    char why[160];
    log_warn("cannot claim task; its message will come back", "task_id", rec->m.task_id,
             "message_id", rec->m.message_id, "queue", l->queue->name, "error",
             store_rc_name(c->rc), store_reason_field(l->env.store, c->rc, why, sizeof why), why,
             NULL);
}

/* The work item of a record whose claim (c) is done. */
static void fill_item(const lane *l, const record *rec, const store_write *c, int64_t now,
                      int64_t deadline_ms, work_item *it)
{
    memset(it, 0, sizeof *it);
    it->queue = l->queue->name;
    it->message_id = rec->m.message_id;
    it->sent_ms = rec->m.sent_ms;
    it->receive_count = rec->m.receive_count;
    it->traced = producer_of(rec, &it->producer);
    it->body = "{}";
    if (!rec->m.task_id[0])
        return; /* not a task message: work_begin drops it */
    memcpy(it->id, rec->m.task_id, sizeof it->id);
    if (!c->update.id) { /* left unclaimed for want of time (plan_claims() says so) */
        it->unclaimed = "not claimed: too little time left before the invocation's deadline";
        return;
    }
    it->claim = c->rc;
    it->claim_write = c;
    say_claim_failed(l, rec, c);
    it->status_before = c->current.status;
    it->client_claimed = c->rc == STORE_CONFLICT && c->current.status == TASK_IN_PROGRESS &&
                         c->current.claim_expires != 0;
    bool found = c->current.id[0] != '\0';
    const char *type = found && c->current.task_type[0] ? c->current.task_type : rec->m.task_type;
    if (type && strlen(type) <= TASK_TYPE_MAX)
        memcpy(it->type, type, strlen(type) + 1);
    if (rec->m.data)
        it->body = rec->m.data;
    else if (found && c->current.data)
        it->body = c->current.data;
    it->deadline_ms = deadline_ms > 0 ? deadline_ms - WORKER_REPORT_MARGIN_MS : 0;
    if (c->rc == STORE_CONFLICT && c->current.status == TASK_IN_PROGRESS &&
        rec->m.receive_count > 1 && !it->client_claimed &&
        c->current.updated_time != TASK_NULL_TIME &&
        c->current.updated_time + (int64_t)l->binding->timeout > now) {
        /* a redelivery of a task claimed less than a timeout ago: the delivery before may still
         * be running it. A first delivery finds someone else's claim (a client's PATCH, the
         * runner of another queue the task fanned out to): theirs to run (claim_fate()). */
        log_info("task claimed by a delivery that may still run; its message will come back",
                 "task_id", it->id, "queue", it->queue, NULL);
        it->held = "conflict: claimed less than the handler's timeout ago, by a delivery that may "
                   "still be running it";
    }
}

/*
 * The fate of an item that would run its task again, from its reclaim's outcome: the reclaim is
 * what lets one of two such deliveries run it, so only one that took the task runs it.
 */
static work_fate reclaimed(const work_item *it, store_rc rc)
{
    switch (rc) {
    case STORE_OK:
        return WORK_RUN;
    case STORE_CONFLICT:
        /* another delivery took it again since its claim was read (an SQS duplicate in the
         * same batch, or beside it), or it is final now: this message comes back */
        log_info("task taken again by another delivery; its message will come back", "task_id",
                 it->id, "queue", it->queue, NULL);
        return WORK_KEEP;
    case STORE_NOT_FOUND:
        return WORK_DROP; /* gone since its claim was read */
    case STORE_INVALID:   /* a change the store can never make: no delivery could */
        log_error("the store can never claim this task again; its message is dropped", "task_id",
                  it->id, "queue", it->queue, NULL);
        return WORK_DROP;
    default:
        log_warn("cannot claim task again; its message will come back", "task_id", it->id, "queue",
                 it->queue, "error", store_rc_name(rc), NULL);
        return WORK_KEEP;
    }
}

/*
 * The span of an item's reclaim, a call to the store of its own: an "UPDATE tasks" under the
 * item's processing, as its claim and its report are (work.h), so that a trace shows the
 * reclaim that let the task run again, or the one that kept its message.
 */
static void begin_reclaim_span(const lane *l, const work_item *it, span *s)
{
    work_begin_update_span(&l->env, s, it, "IN_PROGRESS");
    span_set_int(s, "taskd.receive_count", it->receive_count);
}

/* End a reclaim's span with the store's answer to rw: in error unless it took the task. */
static void end_reclaim_span(worker_role *w, const store_write *rw, span *s)
{
    if (rw->rc != STORE_OK)
        span_set_error(s, rw->rc == STORE_CONFLICT
                              ? "conflict: taken again by another delivery, or finished, since "
                                "its claim was read"
                              : store_rc_name(rw->rc));
    store_trace_write(w->store, rw, s);
    trace_end(&w->tel, s);
}

/* A reclaim of an item's task, to run it again after an earlier delivery. */
typedef struct reclaim {
    store_write w;
    char msg[48];
    span span; /* its "UPDATE tasks", under the item's processing */
} reclaim;

/* Say, once for the batch, that lane l left tasks unclaimed for want of time (how many, the
 * first ten ids): a function whose timeout leaves too little for one run keeps every message
 * until its receives run out. */
static void say_unclaimed(const lane *l, size_t unclaimed, const char *ids, int64_t left_ms,
                          int64_t run_ms)
{
    char count[24], left[24], need[24];
    snprintf(count, sizeof count, "%zu", unclaimed);
    snprintf(left, sizeof left, "%lld", (long long)left_ms);
    snprintf(need, sizeof need, "%lld", (long long)(run_ms + WORKER_REPORT_MARGIN_MS));
    log_warn("too little time left in the invocation to run its tasks; their messages will "
             "come back (a run needs the binding's timeout and the report margin: a function "
             "timeout shorter than that keeps every message until it is dead-lettered)",
             "queue", l->queue->name, "tasks_not_claimed", count, "task_ids", ids, "time_left_ms",
             left, "run_needs_ms", need, NULL);
}

/*
 * Make claims[k] the claim of each task record mine[k] of lane l that can still run before the
 * deadline: runs go one after another, each up to the binding's timeout (run_ms). The rest is
 * kept, untouched, for another delivery. Returns how many claims were made.
 */
static size_t plan_claims(const lane *l, record **mine, size_t m, int64_t now, int64_t run_ms,
                          int64_t deadline_ms, store_write *claims)
{
    int64_t start_by = clock_unix_ms();
    int64_t left_ms = deadline_ms - start_by;
    size_t to_claim = 0, unclaimed = 0;
    char unclaimed_ids[10 * (TASK_ID_LEN + 1)] = ""; /* the first ten */
    for (size_t k = 0; k < m; k++) {
        if (!mine[k]->m.task_id[0])
            continue;
        start_by += run_ms;
        if (deadline_ms > 0 && start_by > deadline_ms - WORKER_REPORT_MARGIN_MS) {
            /* not claimed (fill_item() tells it by its empty claim): the message comes back */
            size_t len = strlen(unclaimed_ids);
            if (unclaimed++ < 10)
                str_join(unclaimed_ids + len, sizeof unclaimed_ids - len, len ? "," : "",
                         mine[k]->m.task_id, NULL);
            continue;
        }
        claims[k] = (store_write){
            .kind = STORE_WRITE_UPDATE,
            .now = now,
            .update = {.id = mine[k]->m.task_id,
                       .status = TASK_IN_PROGRESS,
                       .status_msg = "Task started"},
        };
        to_claim++;
    }
    if (unclaimed)
        say_unclaimed(l, unclaimed, unclaimed_ids, left_ms, run_ms);
    return to_claim;
}

/* Submit the claims made (those with a task id) together, and wait for them: they share a
 * commit where the store groups writes. */
static void submit_claims(store *st, store_write *claims, size_t m)
{
    store_batch group;
    store_batch_init(&group);
    for (size_t k = 0; k < m; k++)
        if (claims[k].update.id) /* claimed by plan_claims() */
            store_batch_submit(&group, st, &claims[k]);
    store_batch_wait(&group);
}

/* Whether an item is to run its task again after an earlier delivery: then its task is
 * reclaimed first. */
static bool runs_again(const work_item *it)
{
    return it->fate == WORK_RUN && it->claim == STORE_CONFLICT;
}

/*
 * Reclaim together, and wait for, the tasks of the items of lane l that run again: each claim
 * goes into the task's history, on the condition that no other delivery took it since (see
 * reclaimed()).
 */
static void submit_reclaims(worker_role *w, const lane *l, record **mine, const work_item *items,
                            reclaim *reclaims, size_t m, int64_t now)
{
    store_batch group;
    store_batch_init(&group);
    for (size_t k = 0; k < m; k++)
        if (runs_again(&items[k])) {
            snprintf(reclaims[k].msg, sizeof reclaims[k].msg, "Task started again (receive %d)",
                     mine[k]->m.receive_count);
            reclaims[k].w = (store_write){
                .kind = STORE_WRITE_RECLAIM,
                .now = now,
                .update = {.id = mine[k]->m.task_id,
                           .status = TASK_IN_PROGRESS,
                           .status_msg = reclaims[k].msg,
                           .claimed_before = now - (int64_t)l->binding->timeout},
            };
            begin_reclaim_span(l, &items[k], &reclaims[k].span);
            store_batch_submit(&group, w->store, &reclaims[k].w);
        }
    store_batch_wait(&group);
}

/* End the span of each reclaim made, and set its item's fate from its outcome. */
static void end_reclaims(worker_role *w, work_item *items, reclaim *reclaims, size_t m)
{
    for (size_t k = 0; k < m; k++)
        if (runs_again(&items[k])) {
            end_reclaim_span(w, &reclaims[k].w, &reclaims[k].span);
            items[k].fate = reclaimed(&items[k], reclaims[k].w.rc);
        }
}

/* Run the items to run, one after another, their reports going into one group; and wait for
 * the reports. */
static void run_items(const lane *l, work_item *items, size_t m)
{
    store_batch group;
    store_batch_init(&group);
    for (size_t k = 0; k < m; k++)
        if (items[k].fate == WORK_RUN)
            work_run(&l->env, &items[k], &group);
    store_batch_wait(&group);
}

/* Claim, run and report the lane's records; false when out of memory (nothing was done). */
static bool work_handler_lane(worker_role *w, lane *l, record *recs, size_t n, int64_t deadline_ms)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        m += recs[i].lane == l;
    if (!m)
        return true;
    record **mine = calloc(m, sizeof *mine);
    work_item *items = calloc(m, sizeof *items);
    store_write *claims = calloc(m, sizeof *claims);
    reclaim *reclaims = calloc(m, sizeof *reclaims);
    bool ok = mine && items && claims && reclaims;
    if (ok) {
        for (size_t i = 0, k = 0; i < n; i++)
            if (recs[i].lane == l)
                mine[k++] = &recs[i];
        int64_t now = (int64_t)time(NULL), run_ms = (int64_t)l->binding->timeout * 1000;
        size_t to_claim = plan_claims(l, mine, m, now, run_ms, deadline_ms, claims);
        /* The claims (a throttled store retries them), and the reclaims of the tasks to run
         * again after them, must leave every run claimed its time before the deadline: one
         * that would not gives up (STORE_BUSY, its message comes back) rather than claim a
         * task no run would then start. */
        int64_t invocation_deadline = aws_deadline();
        if (deadline_ms > 0)
            aws_set_deadline(deadline_ms - WORKER_REPORT_MARGIN_MS - (int64_t)to_claim * run_ms);
        submit_claims(w->store, claims, m);
        for (size_t k = 0; k < m; k++)
            fill_item(l, mine[k], &claims[k], now, deadline_ms, &items[k]);
        work_begin(&l->env, items, m);
        submit_reclaims(w, l, mine, items, reclaims, m, now);
        aws_set_deadline(invocation_deadline); /* the reclaims too are claims: see above */
        end_reclaims(w, items, reclaims, m);
        run_items(l, items, m);
        for (size_t k = 0; k < m; k++) {
            if (!work_finish(&l->env, &items[k]))
                mine[k]->kept = true;
            task_clear(&claims[k].current);
            task_clear(&reclaims[k].w.current);
        }
    }
    free(mine);
    free(items);
    free(claims);
    free(reclaims);
    return ok;
}

/* ---- dead-letter lanes ---------------------------------------------------- */

/* The queue a dead letter came from: the one its source ARN names, else the first configured. */
static const queue_config *source_of(const lane *l, const char *source_arn)
{
    const char *name = sqs_queue_of_arn(source_arn);
    for (size_t i = 0; name && i < l->n_sources; i++)
        if (strcmp(l->sources[i]->name, name) == 0)
            return l->sources[i];
    return l->sources[0];
}

/* Fail one dead letter's task; false when the message must come back. */
static bool fail_dead_letter(worker_role *w, const lane *l, const record *rec)
{
    const queue_config *src = source_of(l, rec->m.source_arn);
    char why[CONFIG_NAME_MAX + 64];
    task_dead_letter_msg(why, sizeof why, l->queue->name, src->max_receive_count);

    trace_ctx producer;
    bool traced = producer_of(rec, &producer);
    span process;
    char name[SPAN_NAME_MAX + 1];
    snprintf(name, sizeof name, "process %s", l->queue->name);
    trace_begin(&process, traced ? &producer : NULL, name, SPAN_KIND_CONSUMER);
    char trace_id[33]; /* for the log line; the span is gone by then */
    span_hex(process.trace_id, sizeof process.trace_id, trace_id);
    memcpy(process.task_id, rec->m.task_id, sizeof process.task_id);
    span_set_static(&process, "messaging.system", "aws_sqs");
    span_set_static(&process, "messaging.operation.type", "process");
    span_set_static(&process, "messaging.destination.name", l->queue->name);
    span_set_str(&process, "messaging.message.id", rec->m.message_id);
    span_set_int(&process, "taskd.receive_count", rec->m.receive_count);
    span_set_static(&process, "taskd.dead_letter_source", src->name);
    span_set_str(&process, "task.id", rec->m.task_id);
    store_rc rc = role_fail_task(w->store, &w->tel, &process, rec->m.task_id, why, false);
    trace_end(&w->tel, &process);

    switch (rc) {
    case STORE_OK:
        log_warn("task failed", "task_id", rec->m.task_id, "reason", why, "trace_id", trace_id,
                 NULL);
        return true;
    case STORE_REPEAT:    /* failed already, by an earlier delivery of this message */
    case STORE_CONFLICT:  /* final already: nothing to do */
    case STORE_NOT_FOUND: /* gone */
        return true;
    case STORE_INVALID: /* a change the store can never make: no delivery could */
        log_error("the store can never fail this dead-lettered task; its message is dropped",
                  "task_id", rec->m.task_id, "queue", l->queue->name, NULL);
        return true;
    default:
        log_warn("cannot fail a dead-lettered task; its message will come back", "task_id",
                 rec->m.task_id, "queue", l->queue->name, "error", store_rc_name(rc), NULL);
        return false;
    }
}

static void work_dead_letter_lane(worker_role *w, const lane *l, record *recs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (recs[i].lane == l && recs[i].m.task_id[0] && !fail_dead_letter(w, l, &recs[i]))
            recs[i].kept = true;
}

/* ---- the invocation ------------------------------------------------------- */

/* {"batchItemFailures": [...]} naming the kept records. */
static char *batch_response(const record *recs, size_t n, size_t *len)
{
    sbuf b = {0};
    sbuf_puts(&b, "{\"batchItemFailures\":[");
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        if (!recs[i].kept)
            continue;
        sbuf_puts(&b, first ? "{\"itemIdentifier\":" : ",{\"itemIdentifier\":");
        sbuf_json_str(&b, recs[i].m.message_id);
        sbuf_putc(&b, '}');
        first = false;
    }
    sbuf_puts(&b, "]}");
    if (sbuf_failed(&b)) {
        sbuf_free(&b);
        return NULL;
    }
    return sbuf_take(&b, len);
}

static void worker_invoke(role *r, const lambda_invocation *inv, role_result *out)
{
    worker_role *w = (worker_role *)r;
    json_error_t jerr;
    bool nomem;
    json_t *event = json_parse(inv->event ? inv->event : "", inv->event_len, 0, &jerr, &nomem);
    if (nomem) {
        role_fail(out, "Runtime.OutOfMemory", "cannot read the event");
        return;
    }
    const json_t *records = json_object_get(event, "Records");
    if (!json_is_array(records)) {
        if (event)
            role_fail(out, "Runtime.InvalidEvent", "the event has no Records array: not SQS");
        else
            role_fail(out, "Runtime.InvalidEvent", "the event is not JSON: %s", jerr.text);
        log_warn("not an SQS event", "error", out->error_message, NULL);
        json_decref(event);
        return;
    }
    size_t n = json_array_size(records);
    record *recs = calloc(n ? n : 1, sizeof *recs);
    if (!recs) {
        role_fail(out, "Runtime.OutOfMemory", "cannot read the event");
        json_decref(event);
        return;
    }
    char err[128];
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++)
        ok = read_record(w, json_array_get(records, i), i, &recs[i], err, sizeof err);
    if (!ok) {
        log_warn("not an SQS event", "error", err, NULL);
        role_fail(out, "Runtime.InvalidEvent", "%s", err);
    }
    for (size_t l = 0; l < w->n_lanes && ok; l++) {
        lane *ln = &w->lanes[l];
        if (ln->binding)
            ok = work_handler_lane(w, ln, recs, n, inv->deadline_ms);
        else
            work_dead_letter_lane(w, ln, recs, n);
        if (!ok)
            role_fail(out, "Runtime.OutOfMemory", "cannot work the batch");
    }
    if (ok) {
        out->response = batch_response(recs, n, &out->response_len);
        if (!out->response)
            role_fail(out, "Runtime.OutOfMemory", "cannot encode the response");
        else
            say_no_task(recs, n);
    }
    for (size_t i = 0; i < n; i++)
        json_decref(recs[i].m.body_doc);
    free(recs);
    json_decref(event);
}

/* ---- making the role ------------------------------------------------------ */

static void worker_free(role *r)
{
    worker_role *w = (worker_role *)r;
    for (size_t i = 0; i < w->n_lanes; i++)
        handler_free(w->lanes[i].env.handler);
    free(w);
}

/* "task1 (TASK1), task1-dlq (dead letters of task1), other" into out, for messages. */
static void describe_queues(const config *c, char *out, size_t outlen)
{
    size_t len = 0;
    *out = '\0';
    for (size_t i = 0; i < c->n_queues && len < outlen; i++) {
        const queue_config *q = &c->queues[i];
        const char *bound = NULL, *source = NULL;
        for (size_t j = 0; j < c->n_handlers && !bound; j++)
            if (strcmp(c->handlers[j].queue, q->name) == 0)
                bound = c->handlers[j].handler;
        for (size_t j = 0; j < c->n_queues && !source; j++)
            if (strcmp(c->queues[j].dead_letter_queue, q->name) == 0)
                source = c->queues[j].name;
        int k = bound
                    ? snprintf(out + len, outlen - len, "%s%s (%s)", i ? ", " : "", q->name, bound)
                : source ? snprintf(out + len, outlen - len, "%s%s (dead letters of %s)",
                                    i ? ", " : "", q->name, source)
                         : snprintf(out + len, outlen - len, "%s%s", i ? ", " : "", q->name);
        len += k > 0 ? (size_t)k : 0;
    }
}

typedef enum lane_rc { LANE_ADDED, LANE_NONE, LANE_ERROR } lane_rc;

/* Prepare the lane of queue q: LANE_NONE when q has neither binding nor source queue. */
static lane_rc add_lane(worker_role *w, const config *c, const queue_config *q, char *err,
                        size_t errlen)
{
    lane *l = &w->lanes[w->n_lanes];
    *l = (lane){.queue = q};
    for (size_t i = 0; i < c->n_handlers && !l->binding; i++) /* one at most: config.c */
        if (strcmp(c->handlers[i].queue, q->name) == 0)
            l->binding = &c->handlers[i];
    if (l->binding) {
        handler *h = handler_create(l->binding, err, errlen);
        if (!h)
            return LANE_ERROR;
        l->env = (work_env){
            .store = w->store, .handler = h, .binding = l->binding, .messaging_system = "aws_sqs"};
        l->env.telemetry = w->tel;
        w->n_lanes++;
        return LANE_ADDED;
    }
    for (size_t i = 0; i < c->n_queues; i++)
        if (strcmp(c->queues[i].dead_letter_queue, q->name) == 0)
            l->sources[l->n_sources++] = &c->queues[i];
    if (!l->n_sources)
        return LANE_NONE;
    w->n_lanes++;
    return LANE_ADDED;
}

role *worker_role_new(const config *c, store *s, const char *queue_name, const telemetry *tel,
                      char *err, size_t errlen)
{
    worker_role *w = calloc(1, sizeof *w);
    if (!w) {
        errbuf_set(err, errlen, "cannot make the worker: out of memory");
        return NULL;
    }
    w->base = (role){.name = "worker", .invoke = worker_invoke, .free = worker_free};
    w->store = s;
    if (tel)
        w->tel = *tel;
    w->fixed = queue_name && *queue_name;
    char queues[400];
    bool ok = true;
    if (w->fixed) {
        const queue_config *q = config_queue(c, queue_name);
        lane_rc rc = q ? add_lane(w, c, q, err, errlen) : LANE_NONE;
        ok = rc == LANE_ADDED;
        if (rc == LANE_NONE) {
            describe_queues(c, queues, sizeof queues);
            if (q)
                errbuf_set(err, errlen,
                           "queue \"%.*s\" has no handler binding and is no queue's "
                           "dead_letter_queue; configured queues: %s",
                           utf8_prec(queue_name, 80), queue_name, queues);
            else
                errbuf_set(err, errlen,
                           "no queue \"%.*s\" in the configuration; configured queues: %s",
                           utf8_prec(queue_name, 80), queue_name, queues);
        }
    } else {
        for (size_t i = 0; i < c->n_queues && ok; i++)
            ok = add_lane(w, c, &c->queues[i], err, errlen) != LANE_ERROR;
        if (ok && !w->n_lanes) {
            describe_queues(c, queues, sizeof queues);
            errbuf_set(err, errlen,
                       "no configured queue has a handler binding or a source queue; configured "
                       "queues: %s",
                       queues);
            ok = false;
        }
    }
    if (!ok) {
        worker_free(&w->base);
        return NULL;
    }
    return &w->base;
}
