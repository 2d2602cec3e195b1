/*
 * stream_consumer — the local change-stream reader; see stream_consumer.h.
 */
#include "stream_consumer.h"

#include "publisher.h"
#include "util/log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * The messages a batch of records produces, with their spans. Allocated once
 * for a full batch and reused: a batch is hundreds of records, and fresh
 * megabyte-sized allocations per batch cost page faults.
 */
typedef struct outbox {
    publish_message *pm; /* one per published record */
    span (*spans)[2];    /* per published record: process (consumer), publish (producer) */
    size_t n_pm;
    broker_message *m; /* one per (record, queue) */
    size_t n_m;
    size_t routes_per_record; /* capacity of m per record: the number of subscriptions */
} outbox;

struct stream_consumer {
    broker *broker;
    const config *config;
    const consumer_config *cc;
    telemetry telemetry;
    pthread_t thread;
    atomic_bool stopping;
    unsigned failures; /* consecutive failed attempts of the current batch */
    outbox box;
};

static bool outbox_init(outbox *o, size_t records, size_t subscriptions)
{
    o->routes_per_record = subscriptions ? subscriptions : 1;
    o->pm = calloc(records, sizeof *o->pm);
    o->spans = calloc(records, sizeof *o->spans);
    o->m = calloc(records * o->routes_per_record, sizeof *o->m);
    return o->pm && o->spans && o->m;
}

/* End the spans of a batch (failed when rc is not OK) and empty the box for the next. */
static void outbox_reset(stream_consumer *sc, outbox *o, store_rc rc)
{
    for (size_t i = 0; i < o->n_pm; i++) {
        for (int k = 1; k >= 0; k--) {
            if (rc != STORE_OK)
                span_set_error(&o->spans[i][k], store_rc_name(rc));
            trace_end(&sc->telemetry, &o->spans[i][k]);
        }
        publish_message_free(&o->pm[i]);
    }
    o->n_pm = o->n_m = 0;
}

static void outbox_free(outbox *o)
{
    free(o->pm);
    free(o->spans);
    free(o->m);
    memset(o, 0, sizeof *o);
}

/*
 * Open the record's spans in the task's trace — process (a consumer of the
 * change stream) and publish (the producer of the topic message) — and put
 * the producer's context in the message, where the queue's consumer finds it.
 */
static void trace_record(stream_consumer *sc, publish_message *pm, span sp[2], size_t batch)
{
    trace_ctx task_ctx, ctx;
    bool known = pm->trace && tracectx_parse_traceparent(pm->trace, &task_ctx);
    char name[SPAN_NAME_MAX + 1];
    snprintf(name, sizeof name, "process %s", sc->cc->name);
    trace_begin(&sp[0], known ? &task_ctx : NULL, name, SPAN_KIND_CONSUMER);
    span_set_static(&sp[0], "messaging.system", "taskd");
    span_set_static(&sp[0], "messaging.operation.type", "process");
    span_set_static(&sp[0], "messaging.destination.name", "changes");
    span_set_static(&sp[0], "messaging.consumer.group.name", sc->cc->name);
    span_set_int(&sp[0], "messaging.batch.message_count", (int64_t)batch);
    trace_ctx_of(&sp[0], &ctx);
    snprintf(name, sizeof name, "publish %s", sc->config->topic);
    trace_begin(&sp[1], &ctx, name, SPAN_KIND_PRODUCER);
    span_set_static(&sp[1], "messaging.system", "taskd");
    span_set_static(&sp[1], "messaging.operation.type", "send");
    span_set_static(&sp[1], "messaging.destination.name", sc->config->topic);
    for (int k = 0; k < 2; k++) {
        memcpy(sp[k].task_id, pm->task_id, sizeof sp[k].task_id);
        span_set_str(&sp[k], "task.id", pm->task_id);
    }
    char tp[56];
    trace_traceparent_of(&sp[1], tp);
    publish_message_set_trace(pm, tp);
}

/* Filter and route records into o; false when out of memory. */
/* Filter and route records (at most the box's capacity) into o; false when a record is not JSON. */
static bool fill_outbox(stream_consumer *sc, const change_record *recs, size_t n, outbox *o)
{
    for (size_t i = 0; i < n; i++) {
        json_t *rec = json_loads(recs[i].json, 0, NULL);
        if (!rec)
            return false;
        bool pass = filter_set_match(sc->cc->filter, rec);
        publish_message *pm = &o->pm[o->n_pm];
        if (pass && publisher_message(rec, pm)) {
            trace_record(sc, pm, o->spans[o->n_pm], n);
            o->n_pm++;
            const queue_config *routes[CONFIG_MAX_ITEMS];
            size_t nr = topic_route(sc->config, pm, routes, o->routes_per_record);
            for (size_t r = 0; r < nr; r++) {
                o->m[o->n_m++] = (broker_message){routes[r], pm->task_id, pm->body, pm->attributes};
                span_set_static(&o->spans[o->n_pm - 1][1], "taskd.queue", routes[r]->name);
            }
            if (nr == 0)
                log_debug("no subscription matches", "task_id", pm->task_id, "task_type",
                          pm->task_type, NULL);
        }
        json_decref(rec);
    }
    return true;
}

/* One pass: read a batch, publish it; false when there was nothing to read. */
static bool consume_batch(stream_consumer *sc)
{
    const consumer_config *cc = sc->cc;
    change_record *recs;
    size_t n;
    int64_t checkpoint;
    store_rc rc = broker_read_changes(sc->broker, cc->name, cc->batch_size, &checkpoint, &recs, &n);
    if (rc != STORE_OK) {
        log_warn("cannot read the change stream", "consumer", cc->name, "error", store_rc_name(rc),
                 NULL);
        usleep(200000);
        return true;
    }
    if (n == 0)
        return false;
    outbox *o = &sc->box;
    rc = fill_outbox(sc, recs, n, o)
             ? broker_publish(sc->broker, cc->name, recs[n - 1].seq, o->m, o->n_m)
             : STORE_ERROR;
    outbox_reset(sc, o, rc);
    if (rc == STORE_OK) {
        sc->failures = 0;
    } else if (++sc->failures > cc->maximum_retry_attempts) {
        char seq[24];
        snprintf(seq, sizeof seq, "%lld", (long long)recs[0].seq);
        log_error("change record skipped after failed attempts", "consumer", cc->name,
                  "sequence_number", seq, "record", recs[0].json, "error", store_rc_name(rc), NULL);
        if (broker_publish(sc->broker, cc->name, recs[0].seq, NULL, 0) == STORE_OK)
            sc->failures = 0;
    } else {
        log_warn("publishing a batch failed; retrying", "consumer", cc->name, "error",
                 store_rc_name(rc), NULL);
        usleep(100000u << (sc->failures < 5 ? sc->failures : 5));
    }
    change_records_free(recs, n);
    return true;
}

static void *consumer_main(void *arg)
{
    stream_consumer *sc = arg;
    uint64_t gen = 0;
    while (!atomic_load(&sc->stopping)) {
        broker_wait(sc->broker, true, &gen, 0); /* note the generation before reading */
        if (!consume_batch(sc))
            broker_wait(sc->broker, true, &gen, 1000);
    }
    return NULL;
}

stream_consumer *stream_consumer_start(broker *b, const config *c, const consumer_config *cc,
                                       const telemetry *tel, char *err, size_t errlen)
{
    stream_consumer *sc = calloc(1, sizeof *sc);
    if (!sc) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    sc->broker = b;
    sc->config = c;
    sc->cc = cc;
    if (tel)
        sc->telemetry = *tel;
    if (!outbox_init(&sc->box, cc->batch_size, c->n_subscriptions)) {
        snprintf(err, errlen, "out of memory");
        outbox_free(&sc->box);
        free(sc);
        return NULL;
    }
    if (pthread_create(&sc->thread, NULL, consumer_main, sc) != 0) {
        snprintf(err, errlen, "cannot start stream consumer %s", cc->name);
        outbox_free(&sc->box);
        free(sc);
        return NULL;
    }
    char name[16];
    snprintf(name, sizeof name, "stream-%.8s", cc->name);
    pthread_setname_np(sc->thread, name);
    return sc;
}

void stream_consumer_stop(stream_consumer *sc)
{
    if (!sc)
        return;
    atomic_store(&sc->stopping, true);
    broker_wake_all(sc->broker);
    pthread_join(sc->thread, NULL);
    outbox_free(&sc->box);
    free(sc);
}
