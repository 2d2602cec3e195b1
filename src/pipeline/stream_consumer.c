/*
 * stream_consumer — the local change-stream reader; see stream_consumer.h.
 *
 * What a record becomes — filter, message, spans, routes — is the
 * publisher's (publisher.h), shared with the Lambda `publish` role. This
 * file moves batches: read from the checkpoint, hand each record to the
 * publisher, send the batch's messages and its checkpoint in one broker
 * transaction, finish the publications with the outcome, and retry or skip
 * a batch that fails.
 */
#include "stream_consumer.h"

#include "core/errbuf.h"
#include "core/sbuf.h"
#include "core/json_util.h"
#include "publisher.h"
#include "util/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * A batch's publications and the queue messages they make. Allocated once
 * for a full batch and reused: a batch is hundreds of records, and fresh
 * megabyte-sized allocations per batch cost page faults.
 */
typedef struct outbox {
    publication *pub; /* one per record that makes a message */
    size_t n_pub;
    broker_message *m; /* one per (record, queue); strings borrowed from pub */
    size_t n_m;
    size_t routes_per_record; /* capacity of m per record: the number of subscriptions */
} outbox;

struct stream_consumer {
    broker *broker;
    bool fed; /* the writer feeds it while it is caught up (broker_feed) */
    const config *config;
    const consumer_config *cc;
    telemetry telemetry;
    pthread_t thread;
    atomic_bool stopping;
    unsigned failures;        /* consecutive failed reads and attempts of a batch: the back-off */
    unsigned unread_attempts; /* of those, the last ones in a row that could not read its first
                               * record: only these count towards maximum_retry_attempts */
    change_read read_mode;    /* only INSERTs make messages: the others are read by seq alone */
    outbox box;
    char unreadable[JSON_ERROR_TEXT_LENGTH]; /* why the last attempt could not read a record */
};

static bool outbox_init(outbox *o, size_t records, size_t subscriptions)
{
    o->routes_per_record = subscriptions ? subscriptions : 1;
    o->pub = calloc(records, sizeof *o->pub);
    o->m = calloc(records * o->routes_per_record, sizeof *o->m);
    return o->pub && o->m;
}

static void outbox_free(outbox *o)
{
    free(o->pub);
    free(o->m);
    memset(o, 0, sizeof *o);
}

/* An open publication's message for each queue the topic routes it to (at most max), in m,
 * their number in *n; false when out of memory. */
static bool route(stream_consumer *sc, publication *p, broker_message *m, size_t max, size_t *n)
{
    const queue_config *routes[CONFIG_MAX_ITEMS];
    if (!publisher_route(sc->config, p, routes, max, n))
        return false;
    for (size_t r = 0; r < *n; r++)
        m[r] = (broker_message){routes[r],        p->message.task_id, p->message.task_type,
                                p->message.trace, p->message.body,    p->message.tracestate};
    if (*n == 0)
        log_debug("no subscription matches", "task_id", p->message.task_id, "task_type",
                  p->message.task_type, NULL);
    return true;
}

/*
 * Begin a publication for every record of the batch that makes a message
 * and queue its messages in o. Returns how many records were taken, from
 * the first: fewer than n when a record cannot be read (sc->unreadable says
 * why) or memory runs out; the publications begun so far stay in o, to be
 * finished.
 */
static size_t outbox_fill(stream_consumer *sc, const change_record *recs, size_t n, outbox *o)
{
    sc->unreadable[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        const change_insert *ins = &recs[i].insert;
        publication *p = &o->pub[o->n_pub];
        publish_outcome r = PUBLISH_SKIPPED;
        if (recs[i].unreadable) { /* its row never makes a record */
            snprintf(sc->unreadable, sizeof sc->unreadable, "%s", recs[i].unreadable);
            return i;
        }
        if (ins->task_id) {
            publish_source src = {ins->task_id, ins->task_type, ins->data, ins->trace,
                                  ins->tracestate};
            r = publisher_begin_insert(sc->config, sc->cc, &src, n, p);
        } else if (recs[i].json) {
            bool nomem;
            json_error_t jerr;
            json_t *rec = json_parse(recs[i].json, strlen(recs[i].json), 0, &jerr, &nomem);
            if (!rec) { /* out of memory is retried as any shortage is; only bad text skips */
                if (!nomem)
                    snprintf(sc->unreadable, sizeof sc->unreadable, "%s", jerr.text);
                return i;
            }
            r = publisher_begin(sc->config, sc->cc, rec, n, p);
            json_decref(rec);
        } /* else: not an INSERT, which makes no message (read by its seq alone) */
        if (r == PUBLISH_UNREADABLE) /* a creation no retry makes a message of */
            snprintf(sc->unreadable, sizeof sc->unreadable, "%s", p->unreadable);
        if (r == PUBLISH_NO_MEMORY || r == PUBLISH_UNREADABLE)
            return i;
        if (r == PUBLISH_READY) {
            size_t routed;
            if (!route(sc, p, &o->m[o->n_m], o->routes_per_record, &routed)) {
                publisher_finish(&sc->telemetry, p, "out of memory");
                return i; /* this record and those after it wait */
            }
            o->n_pub++;
            o->n_m += routed;
        }
    }
    return n;
}

/* Finish the batch's publications (failed when rc is not OK) and empty o for the next. */
static void outbox_finish(stream_consumer *sc, outbox *o, store_rc rc)
{
    const char *error = rc == STORE_OK ? NULL : store_rc_name(rc);
    for (size_t i = 0; i < o->n_pub; i++)
        publisher_finish(&sc->telemetry, &o->pub[i], error);
    o->n_pub = o->n_m = 0;
}

/* Why an attempt at a batch failed. */
typedef enum attempt_failure {
    FAILED_WRITE,      /* the store's: its write failed */
    FAILED_NO_MEMORY,  /* its first record could not be made a message for lack of memory */
    FAILED_UNREADABLE, /* its first record cannot be read */
} attempt_failure;

/*
 * One attempt at a batch: its messages and the checkpoint past it, in one
 * transaction. When a record cannot be read, or memory runs out for it, the
 * records before it go alone, so the next batch starts with it and only it
 * can be skipped; *why says why an attempt failed.
 */
static store_rc publish_batch(stream_consumer *sc, const change_record *recs, size_t n,
                              attempt_failure *why)
{
    outbox *o = &sc->box;
    size_t taken = outbox_fill(sc, recs, n, o);
    *why = taken ? FAILED_WRITE : sc->unreadable[0] ? FAILED_UNREADABLE : FAILED_NO_MEMORY;
    store_rc rc = taken
                      ? broker_publish(sc->broker, sc->cc->name, recs[taken - 1].seq, o->m, o->n_m)
                      : STORE_ERROR;
    outbox_finish(sc, o, rc);
    return rc;
}

/* Sleep ms before trying again, cut short by a stop (looked at every 50 ms). */
static void back_off(stream_consumer *sc, unsigned ms)
{
    for (unsigned slept = 0; slept < ms && !atomic_load(&sc->stopping); slept += 50)
        usleep(50 * 1000);
}

/* Back off after one more failed attempt in a row: 0.2 s, doubling up to 3.2 s. */
static void back_off_more(stream_consumer *sc)
{
    sc->failures += sc->failures < 5;
    back_off(sc, 100u << sc->failures);
}

/* The store's failure rc at the record seq (a batch's first), said as a warning with the
 * store's reason. */
static void warn_store_failed(stream_consumer *sc, const char *what, const char *seq, store_rc rc)
{
    char why[160];
    log_warn(what, "consumer", sc->cc->name, "sequence_number", seq, "error", store_rc_name(rc),
             store_reason_field(broker_store(sc->broker), rc, why, sizeof why), why, NULL);
}

/*
 * After a failed attempt: back off and let the batch be read again. Only a
 * record that cannot be read is given up on — past maximum_retry_attempts it
 * is logged and the checkpoint moves past it, as Lambda's maximumRetryAttempts
 * does; a write that fails (a busy or full disk) is the store's trouble, not
 * the records': it is retried until it succeeds, and nothing is skipped. The
 * attempts counted are those in a row that could not read the record: the
 * batch's failed writes before (its task removed since, in a damaged
 * database) use none of them up.
 */
static void batch_failed(stream_consumer *sc, const change_record *first, store_rc rc,
                         attempt_failure why)
{
    const consumer_config *cc = sc->cc;
    char seq[24];
    snprintf(seq, sizeof seq, "%lld", (long long)first->seq);
    if (why != FAILED_UNREADABLE) {
        sc->unread_attempts = 0;     /* the record was read: the store's failures are not its own */
        if (why == FAILED_NO_MEMORY) /* no write was made: the store has nothing to say */
            log_warn("publishing a batch ran out of memory; retrying", "consumer", cc->name,
                     "sequence_number", seq, "error", "out of memory", NULL);
        else
            warn_store_failed(sc, "publishing a batch failed; retrying", seq, rc);
    } else {
        const char *error = sc->unreadable;
        /* what else is known of it: its text, or its task's id when read by fields */
        const char *id = first->insert.task_id, *text = first->json;
        const char *known = id ? "task_id" : text ? "record" : NULL;
        if (++sc->unread_attempts <= cc->maximum_retry_attempts) {
            log_warn("a change record cannot be read; retrying", "consumer", cc->name,
                     "sequence_number", seq, "error", error, id ? "task_id" : NULL, id, NULL);
        } else {
            /* said once, when it is decided; a skip that cannot be written (a busy or full
             * disk) is the store's trouble, and backs off as a batch's failed write does
             * rather than try again at once, and say so again, for as long as it lasts */
            if (sc->unread_attempts == cc->maximum_retry_attempts + 1)
                log_error("change record skipped after failed attempts", "consumer", cc->name,
                          "sequence_number", seq, "error", error, known, id ? id : text, NULL);
            rc = broker_publish(sc->broker, cc->name, first->seq, NULL, 0);
            if (rc == STORE_OK) {
                sc->failures = sc->unread_attempts = 0;
                return;
            }
            warn_store_failed(sc, "skipping a change record failed; retrying", seq, rc);
        }
    }
    back_off_more(sc);
}

/* ---- the writer's feed ---- */

/* A created task the writer fed: its publication and its messages, until the commit. */
typedef struct fed_task {
    publication p;
    size_t n;
    broker_message m[]; /* one per route */
} fed_task;

static bool feed_take(void *ctx, const change_insert *t, const broker_message **out, size_t *n,
                      void **token)
{
    stream_consumer *sc = ctx;
    size_t max = sc->box.routes_per_record;
    fed_task *f = calloc(1, sizeof *f + max * sizeof f->m[0]);
    if (!f)
        return false;
    publish_source src = {t->task_id, t->task_type, t->data, t->trace, t->tracestate};
    publish_outcome r = publisher_begin_insert(sc->config, sc->cc, &src, 1, &f->p);
    if (r == PUBLISH_NO_MEMORY || r == PUBLISH_UNREADABLE) { /* the consumer reads it itself */
        free(f);
        return false;
    }
    if (r == PUBLISH_READY && !route(sc, &f->p, f->m, max, &f->n)) {
        publisher_finish(&sc->telemetry, &f->p, "out of memory");
        free(f);
        return false;
    }
    *out = f->m;
    *n = f->n;
    *token = f;
    return true;
}

static void feed_finish(void *ctx, void *token, bool committed)
{
    stream_consumer *sc = ctx;
    fed_task *f = token;
    publisher_finish(&sc->telemetry, &f->p, committed ? NULL : "rolled back");
    free(f);
}

/* One pass: read a batch, publish it; false when there was nothing to read (*at: the
 * consumer's place, its checkpoint, before the batch). */
static bool consume_batch(stream_consumer *sc, int64_t *at)
{
    const consumer_config *cc = sc->cc;
    change_record *recs;
    size_t n;
    int64_t checkpoint;
    store_rc rc = broker_read_changes(sc->broker, cc->name, cc->batch_size, sc->read_mode,
                                      &checkpoint, &recs, &n);
    *at = checkpoint;
    if (rc != STORE_OK) {
        /* a read: the store's reason to refuse writes is not its. A failed attempt at the
         * batch, backed off from as a failed write is */
        log_warn("cannot read the change stream", "consumer", cc->name, "error",
                 errno == ENOMEM ? "out of memory" : store_rc_name(rc), NULL);
        back_off_more(sc);
        return true;
    }
    if (n == 0) {
        sc->failures = 0;
        return false;
    }
    attempt_failure why;
    rc = publish_batch(sc, recs, n, &why);
    if (rc == STORE_OK)
        sc->failures = sc->unread_attempts = 0;
    else
        batch_failed(sc, &recs[0], rc, why);
    change_records_free(recs, n);
    return true;
}

static void *consumer_main(void *arg)
{
    stream_consumer *sc = arg;
    uint64_t gen = 0;
    for (;;) {
        /* The generation first, then the flag: see runner_main() */
        broker_wait(sc->broker, true, &gen, 0);
        if (atomic_load(&sc->stopping))
            break;
        if (sc->fed && broker_feed_on(sc->broker, sc->cc->name)) {
            broker_wait(sc->broker, true, &gen, 1000); /* the writer feeds it */
            continue;
        }
        int64_t at = 0;
        if (consume_batch(sc, &at))
            continue;
        /* at the end: the writer may feed it from here */
        if (!sc->fed || broker_publish(sc->broker, sc->cc->name, at, NULL, 0) != STORE_OK ||
            !broker_feed_on(sc->broker, sc->cc->name))
            broker_wait(sc->broker, true, &gen, 1000);
    }
    return NULL;
}

/*
 * Stop the writer feeding sc. It waits for the writer: no take or finish after it. A batch that
 * could not begin (a full disk) did not run it: tried again for up to 5 s. False when the feed
 * could not be unset: sc must then be left to the writer (a leak, not a use after free).
 */
static bool unset_feed(stream_consumer *sc)
{
    store_rc rc = STORE_OK;
    for (int tries = 0; tries < 50; tries++) {
        rc = broker_unset_feed(sc->broker, sc->cc->name);
        if (rc == STORE_OK)
            return true;
        usleep(100 * 1000);
    }
    log_error("cannot stop feeding a stream consumer; leaving it to the store", "consumer",
              sc->cc->name, "error", store_rc_name(rc), NULL);
    return false;
}

stream_consumer *stream_consumer_start(broker *b, const config *c, const consumer_config *cc,
                                       const telemetry *tel, char *err, size_t errlen)
{
    stream_consumer *sc = calloc(1, sizeof *sc);
    if (!sc) {
        errbuf_set(err, errlen, "out of memory");
        return NULL;
    }
    sc->broker = b;
    sc->config = c;
    sc->cc = cc;
    sc->read_mode =
        publisher_takes_fields(cc) ? CHANGE_READ_INSERT_FIELDS : CHANGE_READ_INSERTS_WHOLE;
    if (tel)
        sc->telemetry = *tel;
    if (!outbox_init(&sc->box, cc->batch_size, c->n_subscriptions)) {
        errbuf_set(err, errlen, "out of memory");
        outbox_free(&sc->box);
        free(sc);
        return NULL;
    }
    if (sc->read_mode == CHANGE_READ_INSERT_FIELDS) {
        /* a set that fails leaves no feed: one set in a batch that then failed is taken back
         * with it, in memory too (the batch's rewind), so the consumer reads the log unfed */
        broker_feed f = {cc->name, feed_take, feed_finish, sc};
        sc->fed = broker_set_feed(b, &f) == STORE_OK;
    }
    if (pthread_create(&sc->thread, NULL, consumer_main, sc) != 0) {
        errbuf_set(err, errlen, "cannot start stream consumer %s", cc->name);
        if (!sc->fed || unset_feed(sc)) { /* else the writer keeps it: left to the store */
            outbox_free(&sc->box);
            free(sc);
        }
        return NULL;
    }
    char name[16]; /* a thread's name on Linux: 15 bytes and its NUL */
    str_join(name, sizeof name, "stream-", cc->name, NULL);
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
    if (sc->fed && !unset_feed(sc))
        return;
    outbox_free(&sc->box);
    free(sc);
}
