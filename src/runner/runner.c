/*
 * runner — claim, run, report; see runner.h.
 *
 * Writes are grouped per batch (store_batch): all claims of a batch share
 * one commit, and so do the reports, so a fast handler costs the store a
 * few transactions per batch rather than per task.
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
    atomic_bool stopping;
    atomic_int running; /* threads still in their loop */
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

/* The attribute's value from {"Name": {"Type": ..., "Value": ...}} text, copied into out. */
static bool attribute(const char *attributes, const char *name, char *out, size_t outlen)
{
    json_t *a = json_loads(attributes ? attributes : "{}", 0, NULL);
    const char *v = json_string_value(json_object_get(json_object_get(a, name), "Value"));
    bool ok = v && strlen(v) < outlen;
    if (ok)
        memcpy(out, v, strlen(v) + 1);
    json_decref(a);
    return ok;
}

/* Decide from a claim's outcome whether to run the task. */
static fate claim_fate(const store_write *w)
{
    switch (w->rc) {
    case STORE_OK:
        return FATE_RUN;
    case STORE_NOT_FOUND:
        return FATE_DROP; /* the task is gone */
    case STORE_CONFLICT:
        /* IN_PROGRESS: an earlier delivery died or overran; run it again */
        return w->current.status == TASK_IN_PROGRESS ? FATE_RUN : FATE_DROP;
    default:
        return FATE_KEEP; /* store trouble: let the message come back */
    }
}

/* One received batch, start to finish. */
static void work_batch(runner *r, queue_message *msgs, size_t n)
{
    char(*ids)[TASK_ID_LEN + 1] = calloc(n, sizeof *ids);
    char(*types)[TASK_TYPE_MAX + 1] = calloc(n, sizeof *types);
    store_write *claims = calloc(n, sizeof *claims);
    store_write *reports = calloc(n, sizeof *reports);
    handler_result *results = calloc(n, sizeof *results);
    fate *fates = calloc(n, sizeof *fates);
    queue_message *done = calloc(n, sizeof *done), *unstarted = calloc(n, sizeof *unstarted);
    if (!ids || !types || !claims || !reports || !results || !fates || !done || !unstarted) {
        log_error("out of memory working a batch; its messages will be redelivered", "queue",
                  r->queue->name, NULL);
        goto out;
    }
    int64_t now = (int64_t)time(NULL);

    store_batch group;
    store_batch_init(&group);
    for (size_t i = 0; i < n; i++) {
        if (!msgs[i].task_id ||
            !attribute(msgs[i].attributes, "TaskType", types[i], sizeof types[i])) {
            fates[i] = FATE_DROP; /* not a task message */
            continue;
        }
        snprintf(ids[i], sizeof ids[i], "%s", msgs[i].task_id);
        claims[i] = (store_write){
            .kind = STORE_WRITE_UPDATE,
            .now = now,
            .update = {.id = ids[i], .status = TASK_IN_PROGRESS, .status_msg = "Task started"}};
        store_batch_submit(&group, r->store, &claims[i]);
        fates[i] = FATE_RUN;
    }
    store_batch_wait(&group);
    for (size_t i = 0; i < n; i++)
        if (fates[i] == FATE_RUN)
            fates[i] = claim_fate(&claims[i]);

    size_t n_done = 0, n_unstarted = 0;
    /* the batch was received just now: hidden until about then + the visibility timeout */
    int64_t hidden_until = now_ms() + (int64_t)r->queue->visibility_timeout * 1000;
    store_batch_init(&group);
    for (size_t i = 0; i < n; i++) {
        if (fates[i] == FATE_DROP)
            done[n_done++] = msgs[i];
        if (fates[i] != FATE_RUN)
            continue;
        if (atomic_load(&r->stopping)) {
            unstarted[n_unstarted++] = msgs[i]; /* released below for redelivery */
            fates[i] = FATE_KEEP;
            continue;
        }
        if (now_ms() + (int64_t)r->binding->timeout * 1000 > hidden_until) {
            /* the rest of the batch would reappear while this task runs: keep it hidden */
            if (broker_extend(r->broker, msgs + i, n - i, r->queue->visibility_timeout) == STORE_OK)
                hidden_until = now_ms() + (int64_t)r->queue->visibility_timeout * 1000;
        }
        handler_task t = {.id = ids[i], .task_type = types[i], .data = msgs[i].body};
        r->handler->run(r->handler, &t, r->binding->timeout, &results[i]);
        if (!results[i].status_msg)
            results[i].status_msg = strdup(results[i].ok ? "Task completed" : "Task failed");
        reports[i] = (store_write){
            .kind = STORE_WRITE_UPDATE,
            .now = (int64_t)time(NULL),
            .update = {.id = ids[i],
                       .status = results[i].ok ? TASK_COMPLETED : TASK_FAILED,
                       .status_msg = results[i].status_msg ? results[i].status_msg : "",
                       .result = results[i].result},
        };
        store_batch_submit(&group, r->store, &reports[i]);
    }
    store_batch_wait(&group);
    for (size_t i = 0; i < n; i++) {
        if (fates[i] != FATE_RUN)
            continue;
        store_rc rc = reports[i].rc;
        if (rc == STORE_OK || rc == STORE_REPEAT || rc == STORE_CONFLICT || rc == STORE_NOT_FOUND)
            done[n_done++] = msgs[i]; /* reported, or already final: the message is spent */
        else
            log_warn("cannot report a task; its message will be redelivered", "task_id", ids[i],
                     "error", store_rc_name(rc), NULL);
        task_clear(&reports[i].current);
    }
    if (broker_delete(r->broker, done, n_done) != STORE_OK)
        log_warn("cannot delete finished messages; they will be redelivered and dropped", "queue",
                 r->queue->name, NULL);
    if (broker_release(r->broker, unstarted, n_unstarted) != STORE_OK)
        log_warn("cannot release messages; they reappear after the visibility timeout", "queue",
                 r->queue->name, NULL);
out:
    for (size_t i = 0; claims && i < n; i++)
        task_clear(&claims[i].current);
    for (size_t i = 0; results && i < n; i++)
        handler_result_clear(&results[i]);
    free(ids);
    free(types);
    free(claims);
    free(reports);
    free(results);
    free(fates);
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
        store_rc rc =
            broker_receive(r->broker, r->queue, r->binding->batch_size, &msgs, &n, &next_ms);
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
                     char *err, size_t errlen)
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
    }
    return r;
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
