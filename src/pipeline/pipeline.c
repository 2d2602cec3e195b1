/*
 * pipeline — wiring and the API view; see pipeline.h.
 */
#include "pipeline.h"
#include "core/errbuf.h"
#include "util/clock.h"

#include "runner/handlers.h"
#include "runner/runner.h"
#include "store/broker.h"
#include "live.h"
#include "stream_consumer.h"
#include "util/log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* How far the wall clock must move against the steady one to be called a step. */
#define CLOCK_STEP_MS 1000
/* Expired claims ended per step of the sweep */
#define CLAIMS_STEP 100

struct pipeline {
    store *store;
    broker *broker;
    const config *config;
    telemetry telemetry;
    stream_consumer *consumers[CONFIG_MAX_ITEMS];
    runner *runners[CONFIG_MAX_ITEMS];
    handler *handlers[CONFIG_MAX_ITEMS]; /* built, not yet handed to their runner */
    pthread_t sweeper;
    bool sweeper_started;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool stopping;
    live *live; /* waiters of GET /tasks/{id}?wait= and clients of GET /events */
    api_pipeline view;
};

/* ---- the sweep ---------------------------------------------------------- */

/* Sleep one sweep interval, or until the pipeline stops; false when stopping. */
static bool sweeper_sleep(pipeline *p)
{
    struct timespec until = clock_mono_after_ms((int64_t)p->config->sweep_interval * 1000);
    pthread_mutex_lock(&p->mu);
    while (!p->stopping && pthread_cond_timedwait(&p->cond, &p->mu, &until) == 0)
        ;
    bool more = !p->stopping;
    pthread_mutex_unlock(&p->mu);
    return more;
}

/* Whether the pipeline is stopping. */
static bool stopping(pipeline *p)
{
    pthread_mutex_lock(&p->mu);
    bool stop = p->stopping;
    pthread_mutex_unlock(&p->mu);
    return stop;
}

/*
 * Say when the wall clock was stepped (by a second or more) since the last look: task times
 * follow it, while queue deadlines keep to the steady clock (broker.h) until taskd restarts.
 */
static void note_clock_step(int64_t *skew_ms)
{
    int64_t skew = clock_steady_skew_ms(), step = skew - *skew_ms;
    if (step > -CLOCK_STEP_MS && step < CLOCK_STEP_MS)
        return;
    *skew_ms = skew;
    char by[24];
    snprintf(by, sizeof by, "%lld", (long long)step);
    log_warn("the wall clock was stepped; task times follow it, queue deadlines keep to the "
             "clock taskd started with",
             "step_ms", by, NULL);
}

/*
 * While the wall clock is behind the steady one by a second or more (stepped back since taskd
 * started), have the store note where the queue clock is, at every sweep: the sends made since
 * follow the wall clock, and after a crash nothing else would tell the next open that the
 * queues' deadlines are ahead (a clean stop notes it itself, and the writer with its batches,
 * but an idle taskd has none). A note a sweep old moves them back
 * by the step less up to a sweep interval, never further. A failure is logged once, until a note is
 * made again (*failing).
 */
static void note_queue_clock(pipeline *p, bool *failing)
{
    if (clock_steady_skew_ms() > -CLOCK_STEP_MS)
        return;
    store_rc rc = broker_note_queue_clock(p->broker);
    if (rc != STORE_OK && !*failing)
        log_warn("cannot note the queue clock ahead of the wall clock; after a crash the restart "
                 "may keep the queues' deadlines ahead by the step",
                 "error", store_rc_name(rc), NULL);
    *failing = rc != STORE_OK;
}

/* Fail the tasks whose client claims' leases ended (store_end_expired_claims()), in steps of
 * CLAIMS_STEP, each task a write of its own. */
static void end_expired_claims(pipeline *p)
{
    store_rc rc = STORE_OK;
    for (bool more = true; more && rc == STORE_OK && !stopping(p);) {
        size_t ended;
        rc = store_end_expired_claims(p->store, clock_unix_s(), CLAIMS_STEP, &ended, &more,
                                      p->telemetry.metrics);
    }
    if (rc != STORE_OK)
        log_warn("ending expired claims failed; retrying next interval", "error", store_rc_name(rc),
                 NULL);
}

/*
 * The first sweep waits an interval: start-up belongs to recovering work, not to cleanup. A
 * sweep is a write transaction; reads tell first whether there is anything to sweep, so an idle
 * taskd writes nothing (but the queue clock's note while the wall clock is behind it). A sweep is
 * made of bounded steps, each a write of its own, so other writes go between them however much is
 * due.
 */
static void *sweeper_main(void *arg)
{
    pipeline *p = arg;
    /* from the clock taskd started with, not this thread's first look: under load that came
     * after a step made just after the start, which was then never logged */
    int64_t skew_ms = 0;
    bool note_failing = false;
    while (sweeper_sleep(p)) {
        note_clock_step(&skew_ms);
        note_queue_clock(p, &note_failing);
        end_expired_claims(p);
        bool due = true;
        if (broker_sweep_due(p->broker, p->config, &due) == STORE_OK && !due)
            continue;
        int64_t removed = 0;
        store_rc rc = STORE_OK;
        for (bool more = true; more && rc == STORE_OK && !stopping(p);) {
            int64_t n = 0;
            rc = broker_sweep(p->broker, p->config, &n, &more);
            removed += n;
        }
        if (rc != STORE_OK)
            log_warn("retention sweep failed; retrying next interval", "error", store_rc_name(rc),
                     NULL);
        if (removed) {
            char n[24];
            snprintf(n, sizeof n, "%lld", (long long)removed);
            log_info("expired tasks deleted", "count", n, NULL);
        }
    }
    return NULL;
}

/* ---- the API view ------------------------------------------------------- */

static store_rc queues_json(void *ctx, sbuf *out)
{
    pipeline *p = ctx;
    const config *c = p->config;
    sbuf_puts(out, "{\"queues\":[");
    for (size_t i = 0; i < c->n_queues; i++) {
        const queue_config *q = &c->queues[i];
        queue_stats st, dlq = {0};
        store_rc rc = broker_queue_stats(p->broker, q->name, &st);
        if (rc == STORE_OK && *q->dead_letter_queue)
            rc = broker_queue_stats(p->broker, q->dead_letter_queue, &dlq);
        if (rc != STORE_OK)
            return rc;
        if (i)
            sbuf_putc(out, ',');
        sbuf_puts(out, "{\"name\":");
        sbuf_json_str(out, q->name);
        sbuf_printf(out, ",\"depth\":%lld,\"in_flight\":%lld,\"delayed\":%lld",
                    (long long)st.visible, (long long)st.in_flight, (long long)st.delayed);
        sbuf_puts(out, ",\"dead_letter_queue\":");
        if (*q->dead_letter_queue) {
            sbuf_json_str(out, q->dead_letter_queue);
            sbuf_printf(out, ",\"dead_letter_count\":%lld",
                        (long long)(dlq.visible + dlq.in_flight + dlq.delayed));
        } else {
            sbuf_puts(out, "null,\"dead_letter_count\":0");
        }
        sbuf_printf(out, ",\"visibility_timeout\":%u,\"max_receive_count\":%u}",
                    q->visibility_timeout, q->max_receive_count);
    }
    sbuf_puts(out, "]}");
    return sbuf_failed(out) ? STORE_ERROR : STORE_OK;
}

static store_rc redrive(void *ctx, const char *queue, store_write *w, int64_t *moved)
{
    pipeline *p = ctx;
    const queue_config *q = config_queue(p->config, queue);
    if (!q || !*q->dead_letter_queue)
        return STORE_NOT_FOUND;
    /* the configuration's names outlive the write */
    return broker_redrive_submit(p->broker, q->dead_letter_queue, q->name, q->retention, w, moved);
}

/* The queues' gauges, from their counts st[] (the configuration's order): ready, in flight and
 * delayed for each queue, then what each queue's dead-letter queue holds. */
static void put_queue_gauges(const config *c, const queue_stats *st, sbuf *out)
{
    static const char *const gauges[][2] = {
        {"taskd_queue_depth", "Messages ready to be received"},
        {"taskd_queue_in_flight", "Messages received and not yet deleted"},
        {"taskd_queue_delayed", "Messages sent and not yet visible"},
    };
    for (size_t g = 0; g < 3; g++) {
        sbuf_printf(out, "# HELP %s %s.\n# TYPE %s gauge\n", gauges[g][0], gauges[g][1],
                    gauges[g][0]);
        for (size_t i = 0; i < c->n_queues; i++) {
            int64_t v = g == 0 ? st[i].visible : g == 1 ? st[i].in_flight : st[i].delayed;
            sbuf_printf(out, "%s{queue=\"%s\"} %lld\n", gauges[g][0], c->queues[i].name,
                        (long long)v);
        }
    }
    sbuf_puts(out, "# HELP taskd_queue_dead_letter Messages in the queue's dead-letter queue.\n"
                   "# TYPE taskd_queue_dead_letter gauge\n");
    for (size_t i = 0; i < c->n_queues; i++) {
        const queue_config *q = &c->queues[i];
        const queue_config *d =
            *q->dead_letter_queue ? config_queue(c, q->dead_letter_queue) : NULL;
        if (!d)
            continue;
        const queue_stats *ds = &st[d - c->queues];
        sbuf_printf(out, "taskd_queue_dead_letter{queue=\"%s\",dead_letter_queue=\"%s\"} %lld\n",
                    q->name, d->name, (long long)(ds->visible + ds->in_flight + ds->delayed));
    }
}

/* Each stream consumer's lag, read from the store. */
static store_rc put_stream_lag(pipeline *p, sbuf *out)
{
    const config *c = p->config;
    sbuf_puts(out, "# HELP taskd_stream_lag Change records not yet processed by the consumer.\n"
                   "# TYPE taskd_stream_lag gauge\n");
    for (size_t i = 0; i < c->n_consumers; i++) {
        int64_t lag;
        store_rc rc = broker_stream_lag(p->broker, c->consumers[i].name, &lag);
        if (rc != STORE_OK)
            return rc;
        sbuf_printf(out, "taskd_stream_lag{consumer=\"%s\"} %lld\n", c->consumers[i].name,
                    (long long)lag);
    }
    return STORE_OK;
}

/* The tracer's counters of spans dropped and exported. */
static void put_span_counters(const tracer *t, sbuf *out)
{
    sbuf_printf(out,
                "# HELP taskd_spans_dropped_total Spans dropped: export queue full or "
                "export failed.\n# TYPE taskd_spans_dropped_total counter\n"
                "taskd_spans_dropped_total %llu\n",
                (unsigned long long)tracer_dropped(t));
    sbuf_printf(out,
                "# HELP taskd_spans_exported_total Spans accepted by an exporter.\n"
                "# TYPE taskd_spans_exported_total counter\ntaskd_spans_exported_total %llu\n",
                (unsigned long long)tracer_exported(t));
}

/* GET /metrics' text: the queues' and stream consumers' gauges, read from the store (a read
 * that fails is the answer), the tracer's counters, then the registry's families. */
static store_rc metrics_text(void *ctx, sbuf *out)
{
    pipeline *p = ctx;
    const config *c = p->config;
    queue_stats st[CONFIG_MAX_ITEMS];
    for (size_t i = 0; i < c->n_queues; i++) {
        store_rc rc = broker_queue_stats(p->broker, c->queues[i].name, &st[i]);
        if (rc != STORE_OK)
            return rc;
    }
    put_queue_gauges(c, st, out);
    store_rc rc = put_stream_lag(p, out);
    if (rc != STORE_OK)
        return rc;
    if (p->telemetry.tracer)
        put_span_counters(p->telemetry.tracer, out);
    if (p->telemetry.metrics)
        metrics_write(p->telemetry.metrics, out);
    return sbuf_failed(out) ? STORE_ERROR : STORE_OK;
}

static store_rc wait_task(void *ctx, const char *task_id, int64_t deadline_ms, api_exchange *ex)
{
    return live_wait(((pipeline *)ctx)->live, task_id, deadline_ms, ex);
}

static bool unwait_task(void *ctx, api_exchange *ex)
{
    return live_unwait(((pipeline *)ctx)->live, ex);
}

static store_rc subscribe(void *ctx, int64_t after, const char *task_type, const char *status,
                          api_stream **out)
{
    return live_subscribe(((pipeline *)ctx)->live, after, task_type, status, out);
}

static int64_t last_seq(void *ctx)
{
    return broker_last_seq(((pipeline *)ctx)->broker);
}

/* ---- start / stop ------------------------------------------------------- */

pipeline *pipeline_new(const config *c, char *err, size_t errlen)
{
    pipeline *p = calloc(1, sizeof *p);
    if (!p) {
        errbuf_set(err, errlen, "out of memory");
        return NULL;
    }
    p->config = c;
    p->view = (api_pipeline){.queues_json = queues_json,
                             .redrive = redrive,
                             .metrics_text = metrics_text,
                             .wait_task = wait_task,
                             .unwait_task = unwait_task,
                             .subscribe = subscribe,
                             .last_seq = last_seq,
                             .ctx = p};
    pthread_mutex_init(&p->mu, NULL);
    clock_mono_cond_init(&p->cond);
    for (size_t i = 0; i < c->n_handlers; i++) {
        if (!(p->handlers[i] = handler_create(&c->handlers[i], err, errlen))) {
            pipeline_stop(p, 0, NULL);
            return NULL;
        }
    }
    return p;
}

bool pipeline_start(pipeline *p, store *s, const telemetry *tel, char *err, size_t errlen)
{
    const config *c = p->config;
    if (tel)
        p->telemetry = *tel;
    p->store = s;
    p->broker = broker_of(s);
    for (size_t i = 0; i < c->n_handlers; i++) {
        handler *h = p->handlers[i];
        p->handlers[i] = NULL; /* the runner's now, even when it fails to start */
        if (!(p->runners[i] =
                  runner_start(s, p->broker, c, &c->handlers[i], h, &p->telemetry, err, errlen)))
            return false;
    }
    for (size_t i = 0; i < c->n_consumers; i++)
        if (!(p->consumers[i] = stream_consumer_start(p->broker, c, &c->consumers[i], &p->telemetry,
                                                      err, errlen)))
            return false;
    if (!(p->live = live_start(p->broker, c, p->telemetry.metrics, err, errlen)))
        return false;
    if (pthread_create(&p->sweeper, NULL, sweeper_main, p) != 0) {
        errbuf_set(err, errlen, "cannot start the retention sweep");
        return false;
    }
    p->sweeper_started = true;
    pthread_setname_np(p->sweeper, "sweeper");
    return true;
}

const api_pipeline *pipeline_api(pipeline *p)
{
    return &p->view;
}

void pipeline_end_live(pipeline *p)
{
    if (p)
        live_close(p->live);
}

bool pipeline_stop(pipeline *p, unsigned grace_s, const atomic_bool *hurry)
{
    if (!p)
        return true;
    const config *c = p->config;
    for (size_t i = 0; i < c->n_handlers; i++)
        if (p->runners[i])
            runner_stop_receiving(p->runners[i]);
    double deadline = clock_mono_s() + grace_s;
    bool late[CONFIG_MAX_ITEMS] = {false}, all = true;
    for (size_t i = 0; i < c->n_handlers; i++)
        late[i] = p->runners[i] && !runner_join(p->runners[i], deadline, hurry);
    /* past the grace period: stop the handlers themselves (exec children are killed), every
     * binding at once; their messages go back to the queue and the tasks run again after a
     * restart */
    bool cut_short = hurry && atomic_load(hurry) && clock_mono_s() < deadline;
    for (size_t i = 0; i < c->n_handlers; i++)
        if (late[i]) {
            log_warn(cut_short ? "handlers still running when a second stop signal ended the grace "
                                 "period; aborting them"
                               : "handlers still running after the grace period; aborting them",
                     "queue", c->handlers[i].queue, NULL);
            runner_abort(p->runners[i]);
        }
    deadline = clock_mono_s() + 5;
    for (size_t i = 0; i < c->n_handlers; i++)
        if (late[i])
            all = runner_join(p->runners[i], deadline, NULL) && all;
    if (!all) {
        log_warn("handlers did not return when aborted; leaving them", NULL);
        return false;
    }
    for (size_t i = 0; i < c->n_consumers; i++)
        stream_consumer_stop(p->consumers[i]);
    live_free(p->live);
    p->live = NULL;
    pthread_mutex_lock(&p->mu);
    p->stopping = true;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->mu);
    if (p->sweeper_started)
        pthread_join(p->sweeper, NULL);
    for (size_t i = 0; i < c->n_handlers; i++) {
        runner_free(p->runners[i]);
        handler_free(p->handlers[i]);
    }
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cond);
    free(p);
    return true;
}
