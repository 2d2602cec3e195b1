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

#define MAX_ROUTES 32

struct stream_consumer {
    broker *broker;
    const config *config;
    const consumer_config *cc;
    pthread_t thread;
    atomic_bool stopping;
    unsigned failures; /* consecutive failed attempts of the current batch */
};

/* The messages a batch of records produces. */
typedef struct outbox {
    publish_message *pm; /* one per published record */
    size_t n_pm;
    broker_message *m; /* one per (record, queue) */
    size_t n_m;
} outbox;

static void outbox_free(outbox *o)
{
    for (size_t i = 0; i < o->n_pm; i++)
        publish_message_free(&o->pm[i]);
    free(o->pm);
    free(o->m);
    memset(o, 0, sizeof *o);
}

/* Filter and route records into o; false when out of memory. */
static bool fill_outbox(stream_consumer *sc, const change_record *recs, size_t n, outbox *o)
{
    o->pm = calloc(n, sizeof *o->pm);
    o->m = calloc(n * MAX_ROUTES, sizeof *o->m);
    if (!o->pm || !o->m)
        return false;
    for (size_t i = 0; i < n; i++) {
        json_t *rec = json_loads(recs[i].json, 0, NULL);
        if (!rec)
            return false;
        bool pass = filter_set_match(sc->cc->filter, rec);
        publish_message *pm = &o->pm[o->n_pm];
        if (pass && publisher_message(rec, pm)) {
            o->n_pm++;
            const queue_config *routes[MAX_ROUTES];
            size_t nr = topic_route(sc->config, pm, routes, MAX_ROUTES);
            for (size_t r = 0; r < nr; r++)
                o->m[o->n_m++] = (broker_message){routes[r], pm->task_id, pm->body, pm->attributes};
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
    outbox o = {0};
    rc = fill_outbox(sc, recs, n, &o)
             ? broker_publish(sc->broker, cc->name, recs[n - 1].seq, o.m, o.n_m)
             : STORE_ERROR;
    outbox_free(&o);
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
                                       char *err, size_t errlen)
{
    stream_consumer *sc = calloc(1, sizeof *sc);
    if (!sc) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    sc->broker = b;
    sc->config = c;
    sc->cc = cc;
    if (pthread_create(&sc->thread, NULL, consumer_main, sc) != 0) {
        snprintf(err, errlen, "cannot start stream consumer %s", cc->name);
        free(sc);
        return NULL;
    }
    return sc;
}

void stream_consumer_stop(stream_consumer *sc)
{
    if (!sc)
        return;
    atomic_store(&sc->stopping, true);
    broker_wake_all(sc->broker);
    pthread_join(sc->thread, NULL);
    free(sc);
}
