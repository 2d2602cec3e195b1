/*
 * tracer — the local span store, the export queue and the thread that drains
 * it into the exporters; see tracer.h.
 *
 * Design. Two stores of finished spans, each behind its own mutex:
 *
 *   local store   every emitted span that names a task, packed into a byte ring (span_log.h)
 *                 and overwritten oldest-first; read by tracer_task_spans (a linear scan: it
 *                 serves one task's trace view).
 *   export queue  sampled spans waiting for the export thread, a ring of span structs moved in
 *                 under the lock (a copy made before it when the local store keeps the span
 *                 too); full => the span is dropped.
 *
 * A request thread holds either lock for a copy of memory and never waits on the network.
 *
 * Exporters sit behind one interface (exporter.h), each with its own state: X-Ray
 * (export_xray.h: one UDP datagram per span, never waits on the daemon; a daemon name that did
 * not resolve at start is looked up again, at most every 5 s, the export waiting for it no
 * longer than a flush's or the stop's deadline) and OTLP/HTTP (export_otlp.h:
 * encoding, retries with backoff and Retry-After, partial success). tracer_new builds the
 * list from the environment (otel_env.h, AWS_XRAY_DAEMON_ADDRESS), X-Ray first.
 *
 * One export thread (started only when an exporter is configured) waits on a condition
 * variable until 512 spans are queued, the batch interval (1 s by default) has passed since the
 * last flush, a span is queued while a tracer_flush() waits, or the tracer is stopping; it then
 * moves up to 512 spans out of the ring and, without any lock, hands the batch to every
 * exporter in turn. A span counts as exported when every configured exporter took it, else as
 * dropped.
 *
 * Flush (a Lambda function, frozen between invocations, must not hold spans): tracer_flush
 * makes the thread and the exporters hurry exactly as a shutdown does, and waits on a second
 * condition variable until the queue is empty and no batch is in hand, or the caller's deadline
 * passes. The exporters are told a deadline FLUSH_SLACK_NS earlier, so that a batch whose request
 * they cut there is back, and counted, by the time the flush gives up. Then what is still
 * queued is dropped and counted, as when the queue is full: the caller is about to be frozen,
 * and spans kept in a frozen process reach no one. A batch still in hand then (one whose request
 * began before the flush, which an exporter cuts short only at its next progress check) keeps
 * the exporters hurried until the export thread is done with it, so that its request ends
 * there, dropped, rather than after the export timeout, across a freeze and into the next
 * invocation's flush. A flush (or the stop) that begins while that batch is in hand leaves it
 * the earlier flush's deadline, when that is the sooner, and gives the exporters its own once
 * the batch is back: a later, longer deadline would let that request run on past the bound of
 * the flush it belongs to, spending the later flush's time on it. A flush called while another
 * thread's runs only waits, on the same condition variable, for that one to end, and answers as
 * it did: the running flush waits for the queue to empty, so it takes what the second caller
 * queued before calling (two flushes side by side would share one flag and one hurry, which the
 * first to end would turn off under the other).
 *
 * Shutdown: tracer_free sets a deadline (now + the export timeout), hurries the exporters
 * and wakes the thread. From then on no batch is retried: the batch in hand and every one
 * still queued get a single attempt whose timeout ends at the deadline (a backoff sleep is
 * cut short, an in-flight request is aborted at the deadline); what cannot be sent in time is
 * dropped and counted, a batch taken past the deadline without being encoded. The thread then
 * exits and is joined.
 *
 * Locks: qmu, then an exporter's own lock (hurry() is called under qmu); exporters never
 * take qmu or lmu.
 */
#include "tracer.h"

#include "core/errbuf.h"
#include "core/tracectx.h"
#include "trace/export_otlp.h"
#include "trace/export_xray.h"
#include "trace/exporter.h"
#include "trace/otel_env.h"
#include "trace/otlp.h"
#include "trace/span_log.h"
#include "util/clock.h"
#include "util/log.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_QUEUE_CAPACITY 8192
#define DEFAULT_LOCAL_CAPACITY 65536
#define LOCAL_BYTES_PER_SPAN   512          /* the local store's bytes per span it may keep */
#define LOCAL_MIN_BYTES        (256 * 1024) /* so that a span of 64 KiB still fits */
#define BATCH_MAX              512
#define FLUSH_INTERVAL_MS      1000       /* the default batch interval */
#define FLUSH_SLACK_NS         20000000LL /* exporters give up this long before a flush does */
#define MAX_EXPORTERS          2          /* X-Ray, OTLP */

struct tracer {
    otel_config cfg;
    otlp_resource resource; /* points into cfg; the exporters borrow both */

    /* Export queue: a ring of qcap spans, qlen of them from qhead. */
    pthread_mutex_t qmu;
    pthread_cond_t qcond; /* CLOCK_MONOTONIC; the export thread waits on it */
    int64_t interval_ns;  /* the batch timer: a batch goes this long after the queue emptied */
    span *queue;
    size_t qcap, qhead, qlen;
    atomic_bool qfull;    /* qlen == qcap, readable without the lock */
    atomic_bool stopping; /* written under qmu, read anywhere */
    atomic_bool flushing; /* a tracer_flush() waits: hurry, as when stopping */
    bool exporting;       /* the export thread has a batch in hand (under qmu) */
    /* a flush ended with a batch in hand: its end ends the hurry (qmu). A flush or a stop that
     * begins meanwhile hurries the exporters itself (hurry_begin), and the export thread then
     * gives them its deadline (it ends the hurry only when neither is under way). */
    bool hurry_held;
    /* the deadline the exporters are hurried to (0: none), and that of the flush or the stop
     * under way (qmu) */
    int64_t hurried_until, hurry_until;
    /* the log context of the thread that flushes (qmu): on Lambda the invocation's request id,
     * which the exporters' warnings about the batches of that flush then carry */
    char flush_context[LOG_CONTEXT_SIZE];
    /* the flushes ended, and whether the last left nothing (qmu), for a flush that waits on
     * another */
    uint64_t flushes;
    bool flushed;
    pthread_cond_t idle; /* the queue emptied and no batch is in hand, or a flush ended */
    bool has_thread;
    pthread_t thread;

    /* Local store (NULL: off). */
    pthread_mutex_t lmu;
    span_log *local;

    _Atomic uint64_t dropped, exported;
    _Atomic uint64_t unqueued; /* of the dropped, those the queue never took (it was full) */

    /* The configured exporters, in export order (set before the thread starts). */
    exporter *exporters[MAX_EXPORTERS];
    size_t n_exporters;
    const exporter *otlp, *xray; /* which is which, for tracer_log_setup() */

    /* Export-thread state (touched by that thread only, or before it starts / after join). */
    span *batch;                         /* BATCH_MAX moved-out spans */
    bool *batch_failed;                  /* per span of the batch: some exporter did not take it */
    uint64_t unqueued_told;              /* unqueued as of the last warning about it */
    exporter_warnings unqueued_warnings; /* that warning's rate limit */
};

/* ---- small helpers ---- */

static const char *process_getenv(const char *name, void *ctx)
{
    (void)ctx;
    return getenv(name);
}

/* Stopping, or a flush is waiting: drain the queue now. */
static bool is_stopping(tracer *t)
{
    return atomic_load(&t->stopping) || atomic_load(&t->flushing);
}

/* Start (on, up to deadline_ns) or end hurrying every exporter that can; see exporter.h. */
static void hurry_exporters(tracer *t, bool on, int64_t deadline_ns)
{
    t->hurried_until = on ? deadline_ns : 0;
    for (size_t i = 0; i < t->n_exporters; i++)
        if (t->exporters[i]->hurry)
            t->exporters[i]->hurry(t->exporters[i], on, deadline_ns);
}

/* A flush or the stop begins (qmu held): hurry the exporters up to deadline_ns. A batch an
 * earlier flush left in hand keeps that flush's deadline when it is the sooner, so that its
 * request still ends there: the export thread moves the exporters on once the batch is back. */
static void hurry_begin(tracer *t, int64_t deadline_ns)
{
    t->hurry_until = deadline_ns;
    if (!t->hurry_held || deadline_ns < t->hurried_until)
        hurry_exporters(t, true, deadline_ns);
}

/* ---- the export thread ---- */

/* Hand a batch to every exporter and count each span once. */
static void export_batch(tracer *t, const span *spans, size_t n)
{
    memset(t->batch_failed, 0, n * sizeof *t->batch_failed);
    for (size_t i = 0; i < t->n_exporters; i++)
        t->exporters[i]->export(t->exporters[i], spans, n, t->batch_failed);
    uint64_t lost = 0;
    for (size_t i = 0; i < n; i++)
        lost += t->batch_failed[i];
    atomic_fetch_add(&t->dropped, lost);
    atomic_fetch_add(&t->exported, (uint64_t)n - lost);
}

/*
 * Spans dropped because the export queue was full (counted on the callers' threads, which must
 * not log for each) since the last warning about them: one rate-limited warning saying how many.
 */
static void warn_unqueued(tracer *t)
{
    uint64_t n = atomic_load(&t->unqueued);
    if (n == t->unqueued_told)
        return;
    char detail[96];
    snprintf(detail, sizeof detail, "%" PRIu64 " spans not exported since the last warning",
             n - t->unqueued_told);
    if (exporter_warn(&t->unqueued_warnings,
                      "spans dropped: the export queue was full (exporters too slow)", "queue",
                      "export", detail))
        t->unqueued_told = n;
}

static void *export_main(void *arg)
{
    tracer *t = arg;
    int64_t next_flush = clock_mono_ns() + t->interval_ns;
    pthread_mutex_lock(&t->qmu);
    for (;;) {
        struct timespec ts = clock_mono_timespec(next_flush);
        while (!is_stopping(t) && t->qlen < BATCH_MAX && clock_mono_ns() < next_flush)
            pthread_cond_timedwait(&t->qcond, &t->qmu, &ts);
        if (t->qlen == 0) {
            pthread_cond_broadcast(&t->idle); /* answers a waiting tracer_flush() */
            if (atomic_load(&t->stopping))
                break;
            next_flush = clock_mono_ns() + t->interval_ns;
            if (atomic_load(&t->flushing)) { /* sleep until the flusher has seen it */
                ts = clock_mono_timespec(next_flush);
                pthread_cond_timedwait(&t->qcond, &t->qmu, &ts);
            }
            continue;
        }
        size_t n = t->qlen < BATCH_MAX ? t->qlen : BATCH_MAX;
        for (size_t i = 0; i < n; i++)
            span_move(&t->batch[i], &t->queue[(t->qhead + i) % t->qcap]);
        t->qhead = (t->qhead + n) % t->qcap;
        t->qlen -= n;
        atomic_store_explicit(&t->qfull, false, memory_order_relaxed);
        if (t->qlen == 0)
            next_flush = clock_mono_ns() + t->interval_ns;
        t->exporting = true;
        if (atomic_load(&t->flushing))
            log_context_load(t->flush_context);
        else
            log_context_clear();
        pthread_mutex_unlock(&t->qmu);

        export_batch(t, t->batch, n);
        for (size_t i = 0; i < n; i++)
            span_clear(&t->batch[i]);
        warn_unqueued(t);

        pthread_mutex_lock(&t->qmu);
        t->exporting = false;
        if (t->hurry_held) { /* the batch a flush left in hand is done */
            t->hurry_held = false;
            if (atomic_load(&t->flushing) || atomic_load(&t->stopping))
                hurry_exporters(t, true, t->hurry_until); /* the deadline of the one under way */
            else
                hurry_exporters(t, false, 0);
        }
    }
    pthread_mutex_unlock(&t->qmu);
    return NULL;
}

/* ---- set-up ---- */

void tracer_global_init(void)
{
    export_otlp_global_init();
}

void tracer_global_cleanup(void)
{
    export_otlp_global_cleanup();
}

static bool init_locks(tracer *t)
{
    if (clock_mono_cond_init(&t->qcond) != 0)
        return false;
    if (clock_mono_cond_init(&t->idle) != 0) {
        pthread_cond_destroy(&t->qcond);
        return false;
    }
    if (pthread_mutex_init(&t->qmu, NULL) != 0) {
        pthread_cond_destroy(&t->qcond);
        pthread_cond_destroy(&t->idle);
        return false;
    }
    if (pthread_mutex_init(&t->lmu, NULL) != 0) {
        pthread_mutex_destroy(&t->qmu);
        pthread_cond_destroy(&t->qcond);
        pthread_cond_destroy(&t->idle);
        return false;
    }
    return true;
}

/* Free everything (the export thread is not running); the locks are initialised. */
static void release(tracer *t)
{
    for (size_t i = 0; t->queue && i < t->qlen; i++)
        span_clear(&t->queue[(t->qhead + i) % t->qcap]);
    free(t->queue);
    span_log_free(t->local);
    free(t->batch);
    free(t->batch_failed);
    for (size_t i = 0; i < t->n_exporters; i++)
        exporter_free(t->exporters[i]);
    free((void *)t->resource.attr_keys);
    free((void *)t->resource.attr_values);
    otel_config_clear(&t->cfg);
    pthread_mutex_destroy(&t->qmu);
    pthread_mutex_destroy(&t->lmu);
    pthread_cond_destroy(&t->qcond);
    pthread_cond_destroy(&t->idle);
    free(t);
}

tracer *tracer_new(const tracer_options *o, char *err, size_t errlen)
{
    static const tracer_options defaults = {.service_name = "taskd",
                                            .local_capacity = DEFAULT_LOCAL_CAPACITY};
    char scratch[8];
    if (!err || errlen == 0) {
        err = scratch;
        errlen = sizeof scratch;
    }
    err[0] = '\0';
    if (!o)
        o = &defaults;
    exporter *xray = NULL, *otlp = NULL; /* t->exporters owns them */
    tracer *t = calloc(1, sizeof *t);
    if (!t) {
        errbuf_set(err, errlen, "out of memory");
        return NULL;
    }
    if (!init_locks(t)) {
        errbuf_set(err, errlen, "cannot create tracer locks");
        free(t);
        return NULL;
    }
    t->interval_ns =
        (int64_t)(o->batch_interval_ms > 0 ? o->batch_interval_ms : FLUSH_INTERVAL_MS) * 1000000;
    if (!otel_config_load(&t->cfg, process_getenv, NULL, o->service_name, err, errlen)) {
        release(t);
        return NULL;
    }
    for (int i = 0; i < t->cfg.n_warnings; i++)
        log_warn("tracing configuration", "problem", t->cfg.warnings[i], NULL);

    t->resource.service_name = t->cfg.service_name;
    t->resource.service_version =
        t->cfg.service_version ? t->cfg.service_version : o->service_version;
    t->resource.n_attrs = t->cfg.n_attrs;
    if (t->cfg.n_attrs) {
        const char **keys = calloc(t->cfg.n_attrs, sizeof *keys);
        const char **values = calloc(t->cfg.n_attrs, sizeof *values);
        t->resource.attr_keys = keys;
        t->resource.attr_values = values;
        if (!keys || !values)
            goto nomem;
        for (size_t i = 0; i < t->cfg.n_attrs; i++) {
            keys[i] = t->cfg.attr_keys[i];
            values[i] = t->cfg.attr_values[i];
        }
    }

    if (o->local_capacity) {
        size_t bytes = o->local_capacity * LOCAL_BYTES_PER_SPAN;
        if (!(t->local = span_log_new(o->local_capacity,
                                      bytes > LOCAL_MIN_BYTES ? bytes : LOCAL_MIN_BYTES)))
            goto nomem;
    }

    if (!t->cfg.disabled) {
        /* before the X-Ray exporter starts its lookup: curl_global_init() runs beside no thread */
        if (t->cfg.endpoint && o->curl_init && !o->curl_init(err, errlen)) {
            release(t);
            return NULL;
        }
        const char *address = getenv("AWS_XRAY_DAEMON_ADDRESS");
        if (address && *address) {
            xray_mode mode = o->xray_subsegments ? XRAY_SUBSEGMENTS : XRAY_SEGMENTS;
            if (!export_xray_new(&xray, address, t->resource.service_name, mode, o->xray_clock_ns,
                                 err, errlen)) {
                release(t);
                return NULL;
            }
            if (xray)
                t->exporters[t->n_exporters++] = xray;
        }
        if (t->cfg.endpoint) {
            if (!(otlp =
                      export_otlp_new(&t->cfg, &t->resource, o->otlp_clock_ns, o->otlp_backoff_ms)))
                goto nomem;
            t->exporters[t->n_exporters++] = otlp;
        }
    }
    if (t->n_exporters) {
        t->qcap = o->queue_capacity ? o->queue_capacity : DEFAULT_QUEUE_CAPACITY;
        t->queue = calloc(t->qcap, sizeof *t->queue);
        t->batch = calloc(BATCH_MAX, sizeof *t->batch);
        t->batch_failed = calloc(BATCH_MAX, sizeof *t->batch_failed);
        if (!t->queue || !t->batch || !t->batch_failed)
            goto nomem;
        if (pthread_create(&t->thread, NULL, export_main, t) != 0) {
            errbuf_set(err, errlen, "cannot start the span export thread");
            release(t);
            return NULL;
        }
        t->has_thread = true;
    }
    t->otlp = otlp;
    t->xray = xray;
    return t;

nomem:
    errbuf_set(err, errlen, "out of memory starting the tracer");
    release(t);
    return NULL;
}

void tracer_log_setup(const tracer *t)
{
    log_info("tracing", "otlp", t->otlp ? t->otlp->destination : "off", "protocol",
             t->otlp ? otel_content_type(t->cfg.protocol) : "-", "xray",
             t->xray ? t->xray->destination : "off", "service_name", t->resource.service_name,
             "sdk_disabled", t->cfg.disabled ? "true" : "false", NULL);
}

/* ---- the caller's side ---- */

/* Count a span dropped before the export queue took it. */
static void drop_unqueued(tracer *t)
{
    atomic_fetch_add(&t->dropped, 1);
    atomic_fetch_add(&t->unqueued, 1);
}

/* Queue a span (owned) for export, or drop and count it. */
static void enqueue(tracer *t, span *s)
{
    bool queued = false, wake = false;
    pthread_mutex_lock(&t->qmu);
    if (!atomic_load(&t->stopping) && t->qlen < t->qcap) {
        span_move(&t->queue[(t->qhead + t->qlen) % t->qcap], s);
        t->qlen++;
        if (t->qlen == t->qcap)
            atomic_store_explicit(&t->qfull, true, memory_order_relaxed);
        queued = true;
        /* a flush waits for this span: the export thread, which sleeps for the batch timer once
         * it finds the queue empty, takes it now */
        wake = t->qlen == BATCH_MAX || atomic_load(&t->flushing);
    }
    pthread_mutex_unlock(&t->qmu);
    if (wake)
        pthread_cond_signal(&t->qcond);
    if (!queued)
        drop_unqueued(t);
}

void tracer_take(tracer *t, span *s)
{
    if (!t || !s)
        return;
    bool keep = t->local && s->task_id[0];
    bool export = t->qcap && (s->flags & TRACECTX_FLAG_SAMPLED); /* an exporter, and sampled */
    if (export && atomic_load_explicit(&t->qfull, memory_order_relaxed)) { /* spare the copy */
        drop_unqueued(t);
        export = false;
    }
    if (export) {
        span copy;
        if (!keep) {
            enqueue(t, s); /* the queue takes s itself */
        } else if (span_copy(&copy, s)) {
            enqueue(t, &copy);
            span_clear(&copy); /* empty unless it was dropped */
        } else {
            atomic_fetch_add(&t->dropped, 1); /* out of memory, not a full queue */
        }
    }
    if (keep) {
        pthread_mutex_lock(&t->lmu);
        span_log_put(t->local, s); /* a span over a quarter of the store is not kept */
        pthread_mutex_unlock(&t->lmu);
    }
    span_clear(s); /* what the queue did not take */
}

void tracer_emit(tracer *t, const span *s)
{
    span copy;
    if (t && s && (t->local || t->qcap) && span_copy(&copy, s))
        tracer_take(t, &copy);
    else if (t && s && (t->local || t->qcap))
        atomic_fetch_add(&t->dropped, 1);
}

/* Time order; of two spans that start together, the parent (or else the longer) first. */
static int by_start(const void *a, const void *b)
{
    const span *x = a, *y = b;
    if (x->start_ns != y->start_ns)
        return x->start_ns < y->start_ns ? -1 : 1;
    if (memcmp(y->parent_id, x->span_id, sizeof x->span_id) == 0)
        return -1;
    if (memcmp(x->parent_id, y->span_id, sizeof x->span_id) == 0)
        return 1;
    if (x->end_ns != y->end_ns)
        return x->end_ns > y->end_ns ? -1 : 1;
    return memcmp(x->span_id, y->span_id, sizeof x->span_id);
}

size_t tracer_task_spans(tracer *t, const char *task_id, span **out)
{
    *out = NULL;
    if (!t || !t->local || !task_id || !*task_id)
        return 0;
    pthread_mutex_lock(&t->lmu);
    size_t n = span_log_task(t->local, task_id, out);
    int err = errno; /* out of memory says so */
    pthread_mutex_unlock(&t->lmu);
    errno = err;
    if (n > 1)
        qsort(*out, n, sizeof **out, by_start);
    return n;
}

uint64_t tracer_dropped(const tracer *t)
{
    return t ? atomic_load(&t->dropped) : 0;
}

uint64_t tracer_exported(const tracer *t)
{
    return t ? atomic_load(&t->exported) : 0;
}

bool tracer_flush(tracer *t, int64_t deadline_ms)
{
    if (!t || !t->has_thread)
        return true;
    int64_t now_ms = clock_unix_ms(), now = clock_mono_ns();
    /* the time left, capped where the monotonic deadline would pass INT64_MAX (a deadline of
     * INT64_MAX, or INT64_MIN, is no overflow) */
    int64_t left_ms = deadline_ms > now_ms ? deadline_ms - now_ms : 0;
    if (left_ms > (INT64_MAX - now) / 1000000)
        left_ms = (INT64_MAX - now) / 1000000;
    int64_t until = now + left_ms * 1000000;
    int64_t exporters_until = until - FLUSH_SLACK_NS > now ? until - FLUSH_SLACK_NS : now;
    struct timespec ts = clock_mono_timespec(until);
    pthread_mutex_lock(&t->qmu);
    if (atomic_load(&t->flushing)) { /* another thread's: it takes what this caller queued */
        uint64_t running = t->flushes;
        while (t->flushes == running && clock_mono_ns() < until)
            pthread_cond_timedwait(&t->idle, &t->qmu, &ts);
        bool empty = t->flushes != running && t->flushed;
        pthread_mutex_unlock(&t->qmu);
        return empty;
    }
    log_context_save(t->flush_context);
    hurry_begin(t, exporters_until);
    atomic_store(&t->flushing, true);
    pthread_cond_broadcast(&t->qcond);
    while ((t->qlen || t->exporting) && clock_mono_ns() < until)
        pthread_cond_timedwait(&t->idle, &t->qmu, &ts);
    bool empty = !t->qlen && !t->exporting;
    /* past the deadline: what is queued is dropped (see above) */
    uint64_t cut = t->qlen;
    for (; t->qlen; t->qlen--, t->qhead = (t->qhead + 1) % t->qcap)
        span_clear(&t->queue[t->qhead]);
    atomic_store_explicit(&t->qfull, false, memory_order_relaxed);
    atomic_fetch_add(&t->dropped, cut);
    atomic_store(&t->flushing, false);
    t->hurry_held = t->exporting; /* the export thread ends the hurry when the batch is back */
    if (!t->hurry_held)
        hurry_exporters(t, false, 0);
    t->flushes++;
    t->flushed = empty;
    pthread_cond_broadcast(&t->qcond);
    pthread_cond_broadcast(&t->idle); /* a flush that waits on this one */
    pthread_mutex_unlock(&t->qmu);
    return empty;
}

void tracer_free(tracer *t)
{
    if (!t)
        return;
    if (t->has_thread) {
        pthread_mutex_lock(&t->qmu);
        hurry_begin(t, clock_mono_ns() + (int64_t)t->cfg.timeout_ms * 1000000);
        atomic_store(&t->stopping, true);
        pthread_cond_broadcast(&t->qcond);
        pthread_mutex_unlock(&t->qmu);
        pthread_join(t->thread, NULL);
        char exported[24], dropped[24];
        snprintf(exported, sizeof exported, "%" PRIu64, atomic_load(&t->exported));
        snprintf(dropped, sizeof dropped, "%" PRIu64, atomic_load(&t->dropped));
        log_info("tracing stopped", "exported_spans", exported, "dropped_spans", dropped, NULL);
    }
    release(t);
}
