/*
 * runner — claim, run, report; see runner.h.
 *
 * Writes are grouped per batch: the claims ride in the receive's
 * transaction, the reports go out as one group (store_batch) that usually
 * shares a commit, and the deletes are one more; a fast handler costs the
 * store a few transactions per batch rather than per task.
 */
#include "runner.h"

#include "handlers.h"
#include "util/log.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct runner {
    store *store;
    broker *broker;
    const queue_config *queue;
    const handler_config *binding;
    handler *handler;
    telemetry telemetry;
    atomic_bool stopping;
    atomic_bool aborting; /* handlers were told to give up: do not report what they return */
    atomic_int running;   /* threads still in their loop */
    pthread_t *threads;
    unsigned n_threads;
};

/* What happens to one received message. */
typedef enum fate { FATE_RUN, FATE_DROP, FATE_KEEP } fate;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Copy attribute name's value from parsed {"Name": {"Type": ..., "Value": ...}} into out. */
static bool attribute(const json_t *attrs, const char *name, char *out, size_t outlen)
{
    const char *v = json_string_value(json_object_get(json_object_get(attrs, name), "Value"));
    bool ok = v && strlen(v) < outlen;
    if (ok)
        memcpy(out, v, strlen(v) + 1);
    return ok;
}

/* Decide from the claim made with the receive whether to run the task. */
static fate claim_fate(const queue_message *m)
{
    switch (m->claim) {
    case STORE_OK:
        return FATE_RUN;
    case STORE_NOT_FOUND:
        return FATE_DROP; /* the task is gone */
    case STORE_CONFLICT:
        /* IN_PROGRESS: an earlier delivery died or overran; run it again */
        return m->status_before == TASK_IN_PROGRESS ? FATE_RUN : FATE_DROP;
    default:
        return FATE_KEEP; /* store trouble: let the message come back */
    }
}

/* One received message, through claim, run and report. */
typedef struct item {
    queue_message *msg;
    char id[TASK_ID_LEN + 1];
    char type[TASK_TYPE_MAX + 1];
    bool traced; /* producer is the message's trace context */
    trace_ctx producer;
    fate fate;
    store_write report;
    handler_result result;
    /* spans, in the task's trace: the delivery (queue wait), the processing
     * and, under it, the claim, the handler run and the report */
    span receive, process, claim_span, run_span, report_span;
} item;

/* Open a child span of parent named "<what> <queue or type>". */
static void child_span(span *s, const span *parent, const char *name, span_kind kind,
                       const char *task_id)
{
    trace_ctx ctx;
    trace_ctx_of(parent, &ctx);
    trace_begin(s, &ctx, name, kind);
    memcpy(s->task_id, task_id, sizeof s->task_id);
}

/* The delivery span starts when the message was sent: it shows the queue wait. */
static void begin_delivery(runner *r, item *it, const item *items, size_t n, int64_t received_ns)
{
    char name[SPAN_NAME_MAX + 1];
    snprintf(name, sizeof name, "receive %s", r->queue->name);
    trace_begin(&it->receive, it->traced ? &it->producer : NULL, name, SPAN_KIND_CONSUMER);
    /* sent_ms is whole milliseconds: take the end of that millisecond, so the span never
     * seems to start before the producer's span, nor after its own end */
    int64_t sent_ns = it->msg->sent_ms * 1000000 + 999999;
    it->receive.start_ns = sent_ns < received_ns ? sent_ns : received_ns;
    it->receive.end_ns = received_ns;
    memcpy(it->receive.task_id, it->id, sizeof it->id);
    span_set_static(&it->receive, "messaging.system", "taskd");
    span_set_static(&it->receive, "messaging.operation.type", "receive");
    span_set_static(&it->receive, "messaging.destination.name", r->queue->name);
    span_set_int(&it->receive, "messaging.message.id", it->msg->id);
    span_set_int(&it->receive, "messaging.batch.message_count", (int64_t)n);
    span_set_int(&it->receive, "taskd.receive_count", it->msg->receive_count);
    span_set_str(&it->receive, "task.id", it->id);
    /* one batch, several traces: link the other messages' producers */
    for (size_t j = 0; j < n && it->receive.n_links < SPAN_MAX_LINKS; j++) {
        const item *other = &items[j];
        if (other != it && other->traced &&
            memcmp(other->producer.trace_id, it->receive.trace_id, 16) != 0)
            span_add_link(&it->receive, other->producer.trace_id, other->producer.span_id);
    }
    snprintf(name, sizeof name, "process %s", r->queue->name);
    child_span(&it->process, &it->receive, name, SPAN_KIND_CONSUMER, it->id);
    span_set_static(&it->process, "messaging.system", "taskd");
    span_set_static(&it->process, "messaging.operation.type", "process");
    span_set_static(&it->process, "messaging.destination.name", r->queue->name);
    span_set_str(&it->process, "task.id", it->id);
}

/* A status-update span under parent. */
static void begin_update_span(span *s, const span *parent, const item *it, const char *status)
{
    child_span(s, parent, "UPDATE tasks", SPAN_KIND_CLIENT, it->id);
    span_set_static(s, "db.operation.name", "UPDATE");
    span_set_static(s, "db.collection.name", "tasks");
    span_set_static(s, "task.status", status);
    span_set_str(s, "task.id", it->id);
}

static void end_update_span(const runner *r, span *s, store_rc rc)
{
    if (rc != STORE_OK && rc != STORE_REPEAT)
        span_set_error(s, store_rc_name(rc));
    trace_end(&r->telemetry, s);
}

/* Claim every task of the batch in one group of writes; decide each message's fate. */
/*
 * The messages were received with their tasks claimed (one transaction):
 * read each message's attributes once, open the delivery spans and a span
 * for the claim, and decide each message's fate.
 */
static void settle_claims(runner *r, item *items, size_t n)
{
    int64_t received_ns = trace_now_ns();
    for (size_t i = 0; i < n; i++) { /* each message's attributes, parsed once */
        item *it = &items[i];
        json_t *attrs = json_loads(it->msg->attributes ? it->msg->attributes : "{}", 0, NULL);
        char tp[64];
        it->traced = attribute(attrs, "traceparent", tp, sizeof tp) &&
                     tracectx_parse_traceparent(tp, &it->producer);
        bool is_task = it->msg->task_id && attribute(attrs, "TaskType", it->type, sizeof it->type);
        json_decref(attrs);
        it->fate = is_task ? FATE_RUN : FATE_DROP; /* not a task message: dropped */
        if (is_task)
            snprintf(it->id, sizeof it->id, "%s", it->msg->task_id);
    }
    for (size_t i = 0; i < n; i++) {
        item *it = &items[i];
        if (it->fate == FATE_DROP)
            continue;
        begin_delivery(r, it, items, n, received_ns);
        /* the claim was committed with the receive (which the delivery span covers);
         * it is recorded at the start of the processing, with no time of its own */
        begin_update_span(&it->claim_span, &it->process, it, "IN_PROGRESS");
        it->claim_span.start_ns = it->claim_span.end_ns = it->process.start_ns;
        span_set_bool(&it->claim_span, "taskd.with_receive", true);
        it->fate = claim_fate(it->msg);
        bool rerun = it->fate == FATE_RUN && it->msg->claim == STORE_CONFLICT;
        end_update_span(r, &it->claim_span, rerun ? STORE_OK : it->msg->claim);
        if (rerun)
            log_info("task redelivered; running it again", "task_id", it->id, "queue",
                     r->queue->name, NULL);
    }
}

/* Run one claimed task and submit its report into group. */
static bool run_one(runner *r, item *it, store_batch *group)
{
    char name[SPAN_NAME_MAX + 1], tp[56], trace_id[33];
    snprintf(name, sizeof name, "%s %s", r->handler->name, it->type);
    child_span(&it->run_span, &it->process, name, SPAN_KIND_INTERNAL, it->id);
    span_set_static(&it->run_span, "taskd.handler", r->handler->name);
    span_set_str(&it->run_span, "task.type", it->type);
    span_set_str(&it->run_span, "task.id", it->id);
    trace_traceparent_of(&it->run_span, tp);
    span_hex(it->run_span.trace_id, 16, trace_id);
    log_debug("handler started", "task_id", it->id, "trace_id", trace_id, "handler",
              r->handler->name, NULL);

    handler_task t = {
        .id = it->id, .task_type = it->type, .data = it->msg->body, .traceparent = tp};
    r->handler->run(r->handler, &t, r->binding->timeout, &it->result);
    if (atomic_load(&r->aborting)) {
        /* cut short by shutdown: the outcome is not the task's; run it again later */
        span_set_error(&it->run_span, "aborted at shutdown");
        trace_end(&r->telemetry, &it->run_span);
        it->fate = FATE_KEEP;
        return false;
    }
    if (!it->result.status_msg)
        it->result.status_msg = strdup(it->result.ok ? "Task completed" : "Task failed");
    const char *msg = it->result.status_msg ? it->result.status_msg : "";

    int64_t ran_ns = trace_now_ns() - it->run_span.start_ns;
    if (r->telemetry.metrics) {
        char labels[96];
        snprintf(labels, sizeof labels, "task_type=\"%s\"", it->type);
        metrics_observe(r->telemetry.metrics, "taskd_handler_duration_seconds", labels,
                        (double)ran_ns / 1e9);
    }
    if (!it->result.ok) {
        span_set_error(&it->run_span, msg);
        log_info("task failed", "task_id", it->id, "trace_id", trace_id, "reason", msg, NULL);
    }
    trace_end(&r->telemetry, &it->run_span);

    task_status status = it->result.ok ? TASK_COMPLETED : TASK_FAILED;
    begin_update_span(&it->report_span, &it->process, it, task_status_name(status));
    it->report = (store_write){
        .kind = STORE_WRITE_UPDATE,
        .now = (int64_t)time(NULL),
        .update = {.id = it->id, .status = status, .status_msg = msg, .result = it->result.result},
    };
    store_batch_submit(group, r->store, &it->report);
    return true;
}

/* One received batch, start to finish. */
static void work_batch(runner *r, queue_message *msgs, size_t n)
{
    item *items = calloc(n, sizeof *items);
    queue_message *done = calloc(n, sizeof *done), *unstarted = calloc(n, sizeof *unstarted);
    if (!items || !done || !unstarted) {
        log_error("out of memory working a batch; its messages will be redelivered", "queue",
                  r->queue->name, NULL);
        free(items);
        free(done);
        free(unstarted);
        return;
    }
    for (size_t i = 0; i < n; i++)
        items[i].msg = &msgs[i];
    settle_claims(r, items, n);

    size_t n_done = 0, n_unstarted = 0;
    /* the batch was received just now: hidden until about then + the visibility timeout */
    int64_t hidden_until = now_ms() + (int64_t)r->queue->visibility_timeout * 1000;
    store_batch group;
    store_batch_init(&group);
    for (size_t i = 0; i < n; i++) {
        item *it = &items[i];
        if (it->fate == FATE_DROP)
            done[n_done++] = *it->msg;
        if (it->fate != FATE_RUN)
            continue;
        if (atomic_load(&r->stopping)) {
            unstarted[n_unstarted++] = *it->msg; /* released below for redelivery */
            it->fate = FATE_KEEP;
            continue;
        }
        if (now_ms() + (int64_t)r->binding->timeout * 1000 > hidden_until) {
            /* the rest of the batch would reappear while this task runs: keep it hidden */
            if (broker_extend(r->broker, msgs + i, n - i, r->queue->visibility_timeout) == STORE_OK)
                hidden_until = now_ms() + (int64_t)r->queue->visibility_timeout * 1000;
        }
        if (!run_one(r, it, &group))
            unstarted[n_unstarted++] = *it->msg; /* aborted: released for redelivery */
    }
    store_batch_wait(&group);
    for (size_t i = 0; i < n; i++) {
        item *it = &items[i];
        if (it->fate == FATE_RUN) {
            store_rc rc = it->report.rc;
            end_update_span(r, &it->report_span, rc);
            if (rc == STORE_OK || rc == STORE_REPEAT || rc == STORE_CONFLICT ||
                rc == STORE_NOT_FOUND)
                done[n_done++] = *it->msg; /* reported, or already final: the message is spent */
            else
                log_warn("cannot report a task; its message will be redelivered", "task_id", it->id,
                         "error", store_rc_name(rc), NULL);
        }
        trace_end(&r->telemetry, &it->process);
        trace_end(&r->telemetry, &it->receive);
        task_clear(&it->report.current);
        handler_result_clear(&it->result);
        span_clear(&it->claim_span);
        span_clear(&it->report_span);
    }
    if (broker_delete(r->broker, done, n_done) != STORE_OK)
        log_warn("cannot delete finished messages; they will be redelivered and dropped", "queue",
                 r->queue->name, NULL);
    if (broker_release(r->broker, unstarted, n_unstarted) != STORE_OK)
        log_warn("cannot release messages; they reappear after the visibility timeout", "queue",
                 r->queue->name, NULL);
    free(items);
    free(done);
    free(unstarted);
}

static void *runner_main(void *arg)
{
    runner *r = arg;
    uint64_t gen = 0;
    while (!atomic_load(&r->stopping)) {
        broker_wait(r->broker, false, &gen, 0); /* note the generation before receiving */
        queue_message *msgs;
        size_t n;
        int64_t next_ms;
        store_rc rc = broker_receive_and_claim(r->broker, r->queue, r->binding->batch_size, &msgs,
                                               &n, &next_ms);
        if (rc != STORE_OK) {
            log_warn("cannot receive from queue", "queue", r->queue->name, "error",
                     store_rc_name(rc), NULL);
            usleep(200000);
            continue;
        }
        if (n == 0) {
            int64_t wait = next_ms == INT64_MAX ? 1000 : next_ms - now_ms();
            broker_wait(r->broker, false, &gen, wait < 1 ? 1 : wait > 1000 ? 1000 : (int)wait);
            continue;
        }
        work_batch(r, msgs, n);
        queue_messages_free(msgs, n);
    }
    atomic_fetch_sub(&r->running, 1);
    return NULL;
}

runner *runner_start(store *s, broker *b, const config *c, const handler_config *hc, handler *h,
                     const telemetry *tel, char *err, size_t errlen)
{
    runner *r = calloc(1, sizeof *r);
    pthread_t *threads = calloc(hc->concurrency, sizeof *threads);
    if (!r || !threads) {
        free(r);
        free(threads);
        handler_free(h);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    *r = (runner){.store = s,
                  .broker = b,
                  .queue = config_queue(c, hc->queue),
                  .binding = hc,
                  .handler = h,
                  .threads = threads};
    if (tel)
        r->telemetry = *tel;
    for (unsigned i = 0; i < hc->concurrency; i++) {
        atomic_fetch_add(&r->running, 1);
        if (pthread_create(&r->threads[i], NULL, runner_main, r) != 0) {
            atomic_fetch_sub(&r->running, 1);
            snprintf(err, errlen, "cannot start runner threads for queue %s", hc->queue);
            runner_stop_receiving(r);
            runner_join(r, 1e18);
            runner_free(r);
            return NULL;
        }
        r->n_threads++;
        char name[16];
        snprintf(name, sizeof name, "run-%.11s", hc->queue);
        pthread_setname_np(r->threads[i], name);
    }
    return r;
}

void runner_abort(runner *r)
{
    atomic_store(&r->aborting, true);
    atomic_store(&r->stopping, true);
    if (r->handler->abort)
        r->handler->abort(r->handler);
}

void runner_stop_receiving(runner *r)
{
    atomic_store(&r->stopping, true);
    broker_wake_all(r->broker);
}

static double monotonic_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

bool runner_join(runner *r, double deadline)
{
    while (atomic_load(&r->running) > 0 && monotonic_s() < deadline)
        usleep(10000);
    if (atomic_load(&r->running) > 0)
        return false;
    for (unsigned i = 0; i < r->n_threads; i++)
        pthread_join(r->threads[i], NULL);
    r->n_threads = 0;
    return true;
}

void runner_free(runner *r)
{
    if (!r)
        return;
    handler_free(r->handler);
    free(r->threads);
    free(r);
}
