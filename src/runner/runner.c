/*
 * runner — the local queue's threads; see runner.h.
 *
 * Each thread receives a batch with its tasks claimed in the same
 * transaction, turns the messages into work items, and hands them to the
 * step of work.h (claim outcome, run, report). What belongs to the queue
 * stays here: keeping a batch hidden while its tasks run, for as long as each
 * goes on (the runner's keeper), releasing what an abort left unstarted, and
 * deleting what is done.
 *
 * A stop ends the receiving, never a batch: what a thread has claimed when
 * a graceful stop arrives is run to its end, within shutdown_grace. Only
 * runner_abort() (past the grace) cuts it short; the tasks it leaves
 * IN_PROGRESS run again when their messages come back after a restart.
 *
 * Writes are grouped per batch: the claims ride in the receive's
 * transaction, the reports go out as one group (store_batch) that usually
 * shares a commit, and the deletes are one more; a fast handler costs the
 * store a few transactions per batch rather than per task.
 *
 * Idle costs no write: a receive is a write transaction, so a thread first
 * reads when the queue's next message is due (broker_next_visible). With
 * none ready it stands (broker_stand_wait) until a commit receives for it,
 * leaves its queue a message it did not take (sent, released, redriven, moved
 * to this dead-letter queue) or makes one due earlier, or until the earliest
 * hidden one comes back (a delay, or a visibility timeout — after a restart,
 * the messages in flight when the process died), and only then receives.
 */
#include "runner.h"
#include "core/errbuf.h"
#include "core/sbuf.h"
#include "util/clock.h"

#include "handlers.h"
#include "util/log.h"
#include "work.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* A queue with nothing due is looked at again (a read) at least this often. */
#define IDLE_RECHECK_MS 10000
/* What a run may take past its handler's timeout: the kill's grace (2 s) and the forced stop's
 * wait (0.5 s, child.c), then the reap and the report's commit. Its message is hidden that long
 * from its receive or its start (and no longer: a crash's redelivery waits for it); a run that
 * takes longer (a loaded machine, a handler that overruns its timeout) has its keeper extend it as
 * it goes. */
#define RUN_MARGIN_S 5
/* RUN_MARGIN_S as the text of its number, for what is said of it. */
#define TEXT_OF_(x)       #x
#define TEXT_OF(x)        TEXT_OF_(x)
#define RUN_MARGIN_S_TEXT TEXT_OF(RUN_MARGIN_S)
/* How long a message is hidden for a run (batch_hide_s(), from the receive or the keeper's last
 * extension), as the log says it. */
#define HIDE_TEXT                                                                                  \
    "(the handler's timeout and " RUN_MARGIN_S_TEXT " s, or the visibility timeout when longer)"
/* A run still going this close to the time its message would be visible again has the keeper
 * hide its batch for as long again: the extension's commit has this long to land. */
#define KEEP_AHEAD_MS (RUN_MARGIN_S * 1000 / 2)
/* A batch its receive hid for its first run (batch_hide_s()) is not hidden again before that run
 * for the time its thread took to start it, up to this long: a run has its timeout and 1.5 s
 * before the keeper extends it, as it has at the least before a run the batch is extended for. */
#define TAKE_SLACK_MS 1000
/* A failed extension is tried again this soon (warned of once for the failures in a row). */
#define KEEP_RETRY_MS 200

/* A run in progress, as the runner's keeper sees it: the messages of its batch, and when they
 * would be visible again. Lives on the running thread's stack while it is watched. */
typedef struct kept_run {
    const queue_message *msgs; /* the whole batch's */
    size_t n;
    bool *stale;          /* n: the messages an extension found received again elsewhere, or gone */
    bool *marks;          /* n: room for what one extension finds */
    unsigned hide_s;      /* how long an extension hides them */
    int64_t hidden_until; /* steady ms; keep_extend() moves it on */
    int64_t try_at;       /* when the keeper extends them next (steady ms) */
    bool extending;       /* the keeper's extension of them is under way (under keep_mu) */
    bool failing;         /* its last extension failed, and the keeper warned of it */
    struct kept_run *next;
} kept_run;

struct runner {
    broker *broker;
    const queue_config *queue;
    const handler_config *binding;
    work_env work; /* the store, the handler (owned), telemetry, and &aborting */
    atomic_bool stopping;
    atomic_bool aborting; /* handlers were told to give up: do not report what they return */
    atomic_int running;   /* threads still in their loop */
    pthread_t *threads;
    unsigned n_threads;
    /* the keeper: a thread that keeps the messages of runs in progress hidden until they end */
    pthread_mutex_t keep_mu;
    pthread_cond_t keep_cv;     /* a run watched, or the keeper's stop */
    pthread_cond_t extended_cv; /* an extension ended: its run may be unwatched */
    kept_run *kept;             /* the runs watched (under keep_mu) */
    int64_t keeper_due;         /* when the keeper wakes by itself (steady ms; INT64_MAX: never) */
    bool keeper_stop;           /* (under keep_mu) */
    bool keeper_started;
    pthread_t keeper;
};

/* Warn that a write or a read of the queue failed: what, the queue, and what the store said. */
static void warn_store(const runner *r, const char *what, store_rc rc)
{
    char why[160];
    log_warn(what, "queue", r->queue->name, "error", store_rc_name(rc),
             store_reason_field(r->work.store, rc, why, sizeof why), why, NULL);
}

/*
 * Hide k's messages for another k->hide_s, and move k's times on when they are; the messages
 * whose receipts it finds stale are marked in k->stale, for good. Made without
 * keep_mu, which every run takes at its start and end, so that the other runs go on however long
 * the writer takes to commit it: by the running thread before k is watched (keep_watch()), or by
 * the keeper with k marked extending.
 */
static store_rc keep_extend(runner *r, kept_run *k)
{
    int64_t asked = clock_steady_ms(); /* the writer's now is no earlier */
    store_rc rc = broker_extend(r->broker, k->msgs, k->n, k->hide_s, k->marks);
    if (rc == STORE_OK) {
        k->hidden_until = asked + (int64_t)k->hide_s * 1000;
        k->try_at = k->hidden_until - KEEP_AHEAD_MS;
        for (size_t i = 0; i < k->n; i++)
            k->stale[i] |= k->marks[i];
    }
    return rc;
}

/*
 * The keeper's loop. A run normally ends within its timeout and margin, before its message would
 * be visible again (keep_watch() hides it that long before the run starts), and costs the keeper
 * nothing but its watch. One that does not (its kill or report held up on a loaded machine, a
 * handler past its timeout) would let its message be delivered again while it runs, and run beside
 * itself: the keeper hides the message (and the rest of the batch, waiting behind it or waiting
 * to be deleted with it) for another hide_s, KEEP_AHEAD_MS before that time, and again as long as
 * the run goes on, as an SQS consumer extends a message's visibility. A run that ends while its
 * extension is under way waits for it (kept_run.extending) before its message is deleted or given
 * back: no extension lands after those.
 */
static void *keeper_main(void *arg)
{
    runner *r = arg;
    pthread_mutex_lock(&r->keep_mu);
    while (!r->keeper_stop) {
        int64_t now = clock_steady_ms(), due = INT64_MAX;
        for (kept_run *k = r->kept; k; k = k->next) {
            if (k->try_at > now) {
                due = k->try_at < due ? k->try_at : due;
                continue;
            }
            /* k stays in the list while it is extended (keep_unwatch() waits), and so does
             * k->next, kept by whoever unlinks the run after it; runs watched meanwhile go
             * to the front, seen by the next look */
            k->extending = true;
            pthread_mutex_unlock(&r->keep_mu);
            store_rc rc = keep_extend(r, k);
            pthread_mutex_lock(&r->keep_mu);
            k->extending = false;
            pthread_cond_broadcast(&r->extended_cv);
            if (rc != STORE_OK) {
                if (!k->failing) /* once while the store's trouble lasts, not every try */
                    warn_store(
                        r, "cannot keep the message of a run in progress hidden; trying again", rc);
                k->try_at = clock_steady_ms() + KEEP_RETRY_MS;
            }
            k->failing = rc != STORE_OK;
            due = 0; /* look again: the clock moved while the writer answered */
        }
        r->keeper_due = due;
        if (due == INT64_MAX) {
            pthread_cond_wait(&r->keep_cv, &r->keep_mu);
        } else if (due > now) {
            struct timespec until = clock_mono_after_ms(due - now);
            pthread_cond_timedwait(&r->keep_cv, &r->keep_mu, &until);
        }
        r->keeper_due = 0; /* awake: it looks at every run before it sleeps again */
    }
    pthread_mutex_unlock(&r->keep_mu);
    return NULL;
}

/*
 * Have the keeper watch k (filled but for try_at, extending, failing and next) while its run goes
 * on; first, when its messages would be visible again within run_s (the run's timeout and
 * margin) and TAKE_SLACK_MS, hide them as the keeper does: the store's error when that fails, and
 * the run is not to start (its message could be delivered again while it runs), k not watched.
 * Nor is it when the message of the run (msgs[i]) was found stale (*stale): received again
 * elsewhere, it is not to run here. The keeper is woken only when it would otherwise sleep past
 * k's time: not once a task.
 */
static store_rc keep_watch(runner *r, kept_run *k, unsigned run_s, size_t i, bool *stale)
{
    k->try_at = k->hidden_until - KEEP_AHEAD_MS;
    k->extending = k->failing = false;
    if (clock_steady_ms() + (int64_t)run_s * 1000 > k->hidden_until + TAKE_SLACK_MS) {
        store_rc rc = keep_extend(r, k);
        if (rc != STORE_OK)
            return rc;
    }
    /* read before the keeper may write the marks: once k is watched, only after keep_unwatch() */
    if ((*stale = k->stale[i]))
        return STORE_OK;
    pthread_mutex_lock(&r->keep_mu);
    k->next = r->kept;
    r->kept = k;
    if (k->try_at < r->keeper_due)
        pthread_cond_signal(&r->keep_cv);
    pthread_mutex_unlock(&r->keep_mu);
    return STORE_OK;
}

/* The run of k ended: the keeper no longer extends it (waiting for an extension of it under
 * way). When its messages are visible again, as the last extension left them. */
static int64_t keep_unwatch(runner *r, kept_run *k)
{
    pthread_mutex_lock(&r->keep_mu);
    while (k->extending)
        pthread_cond_wait(&r->extended_cv, &r->keep_mu);
    for (kept_run **p = &r->kept; *p; p = &(*p)->next)
        if (*p == k) {
            *p = k->next;
            break;
        }
    int64_t hidden_until = k->hidden_until;
    pthread_mutex_unlock(&r->keep_mu);
    return hidden_until;
}

/* A received message as a work item: its task and trace from the message, its claim as
 * received. */
static void work_item_of(const runner *r, const queue_message *m, work_item *it)
{
    it->traced = m->trace[0] && tracectx_parse_traceparent(m->trace, &it->producer);
    if (it->traced && m->tracestate[0])
        it->producer.tracestate = m->tracestate;
    if (m->task_id && m->task_type[0]) { /* else the id stays "": not a task message, dropped */
        snprintf(it->type, sizeof it->type, "%s", m->task_type);
        snprintf(it->id, sizeof it->id, "%s", m->task_id);
    }
    it->body = m->body;
    it->queue = r->queue->name;
    it->sent_ms = m->sent_ms;
    it->receive_count = m->receive_count;
    it->message_number = m->id;
    it->claim = m->claim;
    it->status_before = m->status_before;
    it->claimed_with_receive = true;
    /* no deadline but the binding's timeout: the batch is kept hidden as long as it runs */
    it->deadline_ms = 0;
}

/* How long a batch is hidden for a run: its timeout and margin, or the visibility timeout when
 * that is longer (it may be as long as the timeout: the runner gives the run its margin). A
 * receive hides the batch that long already, for its first run: hidden for the visibility
 * timeout alone, a batch taken late (the receive committed under load, the thread scheduled late)
 * could be received again, and dead-lettered, before that run's extension. */
static unsigned batch_hide_s(const runner *r)
{
    unsigned run_s = r->binding->timeout + RUN_MARGIN_S;
    return run_s > r->queue->visibility_timeout ? run_s : r->queue->visibility_timeout;
}

/*
 * A runner thread's room for its batches, kept from one batch to the next: a batch of 100
 * items is 800 KiB, which calloc would zero (and the cache lose) for every batch.
 */
typedef struct batch_room {
    work_item *items;
    queue_message *done;      /* reported, or nothing to run: deleted */
    queue_message *unstarted; /* never started: released, the receive not counted */
    queue_message *aborted;   /* cut short by an abort: visible again, the receive counted */
    queue_message *later;     /* taskd short of its own resources: back after the timeout */
    bool *stale, *marks;      /* the batch's kept_run's */
    size_t n_done, n_unstarted, n_aborted, n_later; /* the batch's in each */
    size_t cap;
} batch_room;

static void batch_room_free(batch_room *b)
{
    free(b->items);
    free(b->done);
    free(b->unstarted);
    free(b->aborted);
    free(b->later);
    free(b->stale);
    free(b->marks);
    *b = (batch_room){0};
}

/* Room for n messages; false when out of memory. */
static bool batch_room_fit(batch_room *b, size_t n)
{
    if (n <= b->cap)
        return true;
    batch_room_free(b);
    b->items = malloc(n * sizeof *b->items);
    b->done = malloc(n * sizeof *b->done);
    b->unstarted = malloc(n * sizeof *b->unstarted);
    b->aborted = malloc(n * sizeof *b->aborted);
    b->later = malloc(n * sizeof *b->later);
    b->stale = malloc(n * sizeof *b->stale);
    b->marks = malloc(n * sizeof *b->marks);
    if (!b->items || !b->done || !b->unstarted || !b->aborted || !b->later || !b->stale ||
        !b->marks) {
        batch_room_free(b);
        return false;
    }
    b->cap = n;
    return true;
}

/* At the batch's end (its reports' group waited on), finish each of its items; delete the
 * messages done and give back the others room's lists hold. */
static void end_batch(runner *r, batch_room *room, const queue_message *msgs, size_t n)
{
    work_item *items = room->items;
    size_t taken_again = 0; /* runs whose messages were received again before the batch ended */
    for (size_t i = 0; i < n; i++) {
        taken_again += room->stale[i] && items[i].reported;
        if (work_finish(&r->work, &items[i]) && !room->stale[i])
            room->done[room->n_done++] = msgs[i];
    }
    if (taken_again) {
        char count[24];
        snprintf(count, sizeof count, "%zu", taken_again);
        log_warn("messages of tasks run were received again before their batch ended, their hide "
                 "having run out; they are not deleted here",
                 "queue", r->queue->name, "messages", count, NULL);
    }
    store_rc rc = broker_delete(r->broker, room->done, room->n_done);
    if (rc != STORE_OK)
        warn_store(r, "cannot delete finished messages; they will be redelivered and dropped", rc);
    /* the ones never started are released, their receive not counted toward the queue's
     * max_receive_count; those taskd could not start (its own want, not the task's) likewise,
     * but visible only after the visibility timeout; the ones cut short count (a handler that
     * never ends goes, in the end, to the dead-letter queue) and are visible again at once */
    /* each tried whatever became of the one before; the first failure said */
    store_rc unstarted_rc = broker_release(r->broker, room->unstarted, room->n_unstarted);
    store_rc later_rc =
        broker_release_after(r->broker, room->later, room->n_later, r->queue->visibility_timeout);
    store_rc aborted_rc = broker_extend(r->broker, room->aborted, room->n_aborted, 0, NULL);
    rc = unstarted_rc != STORE_OK ? unstarted_rc : later_rc != STORE_OK ? later_rc : aborted_rc;
    if (rc != STORE_OK)
        warn_store(r, "cannot release messages; they reappear once their hide ends " HIDE_TEXT, rc);
}

/* At the batch's start, its items made from its messages into room (which fits them) and begun;
 * when the batch is visible again: the receive's now + batch_hide_s() (the receive may have been
 * made a while before this thread took it: a standing one, in a commit under load). */
static int64_t begin_batch(runner *r, batch_room *room, const queue_message *msgs, size_t n)
{
    work_item *items = room->items;
    room->n_done = room->n_unstarted = room->n_aborted = room->n_later = 0;
    memset(room->stale, 0, n * sizeof *room->stale);
    for (size_t i = 0; i < n; i++) {
        work_item_reset(&items[i]);
        work_item_of(r, &msgs[i], &items[i]);
    }
    work_begin(&r->work, items, n);
    int64_t hidden_until = INT64_MAX;
    for (size_t i = 0; i < n; i++)
        if (msgs[i].hidden_until_ms < hidden_until)
            hidden_until = msgs[i].hidden_until_ms;
    return hidden_until;
}

/* One received batch, start to finish. */
static void work_batch(runner *r, batch_room *room, queue_message *msgs, size_t n)
{
    if (!batch_room_fit(room, n)) {
        /* given back unstarted, their receive not counted: taskd's own want must not walk the
         * tasks to the dead-letter queue (they come back after the visibility timeout, as a
         * batch a runner could not start does) */
        store_rc rc = broker_release_after(r->broker, msgs, n, r->queue->visibility_timeout);
        log_error("out of memory working a batch; its messages will be redelivered", "queue",
                  r->queue->name, rc != STORE_OK ? "error" : NULL, store_rc_name(rc), NULL);
        return;
    }
    work_item *items = room->items;
    int64_t hidden_until = begin_batch(r, room, msgs, n);
    /* a run is to last at most this long (one that goes on has the keeper hide its message
     * further): a message is hidden for it, the visibility timeout at least */
    unsigned run_s = r->binding->timeout + RUN_MARGIN_S;
    unsigned hide_s = batch_hide_s(r);
    bool kept_hidden = true; /* false once the rest cannot be kept hidden through a run */
    store_batch group;
    store_batch_init(&group);
    for (size_t i = 0; i < n; i++) {
        if (items[i].fate != WORK_RUN)
            continue;
        /* A graceful stop does not end a batch: its tasks were claimed (IN_PROGRESS) with the
         * receive, and nothing could run them until a restart if it were given back here.
         * Only an abort (past shutdown_grace) leaves the rest unstarted. */
        if (atomic_load(&r->aborting) || !kept_hidden) {
            room->unstarted[room->n_unstarted++] = msgs[i]; /* work_finish() keeps it */
            continue;
        }
        /* the batch is kept hidden while the task runs: those to run after it, and those that
         * ran before it, whose messages are deleted with the batch's (visible again meanwhile,
         * they would be received again, and be dead-lettered once received too often) */
        kept_run keep = {.msgs = msgs,
                         .n = n,
                         .stale = room->stale,
                         .marks = room->marks,
                         .hide_s = hide_s,
                         .hidden_until = hidden_until};
        bool stale = false;
        store_rc kept = keep_watch(r, &keep, run_s, i, &stale);
        if (kept != STORE_OK) {
            warn_store(
                r, "cannot keep a batch hidden while it runs; its tasks not started are given back",
                kept);
            kept_hidden = false;
            room->unstarted[room->n_unstarted++] = msgs[i];
            continue;
        }
        if (stale) {
            /* received again since, by another thread (or dead-lettered there): its task is
             * that receive's now, and runs there if anywhere; left at WORK_RUN, it is kept */
            hidden_until = keep.hidden_until; /* not watched */
            log_warn("a task's message was received again before its run, its hide having run "
                     "out; the task is not run here",
                     "queue", r->queue->name, "task_id", items[i].id, NULL);
            continue;
        }
        work_run(&r->work, &items[i], &group);
        hidden_until = keep_unwatch(r, &keep);
        if (items[i].fate == WORK_KEEP) /* cut short by an abort (no deadline here) */
            room->aborted[room->n_aborted++] = msgs[i];
        else if (items[i].fate == WORK_LATER) /* taskd short of descriptors or memory */
            room->later[room->n_later++] = msgs[i];
        /* WORK_LOST: left hidden as the batch was, back once that hide ends, counted */
    }
    store_batch_wait(&group);
    end_batch(r, room, msgs, n);
}

/* Milliseconds from now until due_ms (the steady clock; INT64_MAX: never), within 1 .. cap_ms. */
static int wait_until_ms(int64_t due_ms, int cap_ms)
{
    int64_t wait = due_ms == INT64_MAX ? cap_ms : due_ms - clock_steady_ms();
    return wait < 1 ? 1 : wait > cap_ms ? cap_ms : (int)wait;
}

/*
 * Sleep until a commit gives the queue work (or timeout_ms, or a stop), with a standing receive
 * left with the writer meanwhile, and work what it received. A stop that finds messages
 * received works them like any batch: they were claimed.
 */
static void wait_standing(runner *r, batch_room *room, uint64_t *gen, int timeout_ms)
{
    broker_standing st = {
        .queue = r->queue, .max = r->binding->batch_size, .hide_s = batch_hide_s(r)};
    broker_stand(r->broker, &st);
    broker_stand_wait(r->broker, &st, gen, timeout_ms);
    queue_message *msgs;
    size_t n;
    broker_sit(r->broker, &st, &msgs, &n);
    if (n) {
        work_batch(r, room, msgs, n);
        queue_messages_free(msgs, n);
    }
}

static void *runner_main(void *arg)
{
    runner *r = arg;
    batch_room room = {0};
    uint64_t gen = 0;
    unsigned failures = 0; /* receives failed in a row */
    for (;;) {
        /* Note the generation, then look at the flag: runner_stop_receiving() sets the flag
         * before it bumps the generation, so a stop this look misses ends the waits below at
         * once. (Looking first would let a stop slip in between, and the runner would sleep
         * out IDLE_RECHECK_MS with the stop's generation noted: a shutdown 10 s late.) */
        broker_wait(r->broker, false, &gen, 0);
        if (atomic_load(&r->stopping))
            break;
        int64_t due_ms;
        store_rc look = broker_next_visible(r->broker, r->queue->name, &due_ms);
        if (look == STORE_OK && due_ms > clock_steady_ms()) {
            /* nothing to receive yet: no write transaction; the writer receives for this
             * thread in the commit that brings the queue a message */
            wait_standing(r, &room, &gen, wait_until_ms(due_ms, IDLE_RECHECK_MS));
            continue;
        }
        if (look != STORE_OK) /* cannot tell: the receive below finds out */
            log_debug("cannot look at queue; receiving", "queue", r->queue->name, "error",
                      store_rc_name(look), NULL);
        queue_message *msgs;
        size_t n;
        int64_t next_ms;
        store_rc rc = broker_receive_and_claim(r->broker, r->queue, r->binding->batch_size,
                                               batch_hide_s(r), &msgs, &n, &next_ms);
        if (rc != STORE_OK) {
            /* the store's trouble (busy, a full disk): back off from 0.2 s to 3.2 s (as the
             * stream consumer does), waking early for a commit or to stop */
            failures += failures < 5;
            warn_store(r, "cannot receive from queue", rc);
            broker_wait(r->broker, false, &gen, 100 << failures);
            continue;
        }
        failures = 0;
        if (n == 0) {
            /* Another thread was first (or the message left for the dead-letter queue): sleep
             * until the receive's own next_ms, as after a look, without looking again now —
             * the winner is about to start its handler, and the losers stay out of its way. */
            wait_standing(r, &room, &gen, wait_until_ms(next_ms, IDLE_RECHECK_MS));
            continue;
        }
        work_batch(r, &room, msgs, n);
        queue_messages_free(msgs, n);
    }
    batch_room_free(&room);
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
        errbuf_set(err, errlen, "out of memory");
        return NULL;
    }
    *r = (runner){.broker = b,
                  .queue = config_queue(c, hc->queue),
                  .binding = hc,
                  .work = {.store = s,
                           .handler = h,
                           .binding = hc,
                           .lost_back = "once its hide ends " HIDE_TEXT},
                  .threads = threads};
    r->work.aborting = &r->aborting;
    if (tel)
        r->work.telemetry = *tel;
    pthread_mutex_init(&r->keep_mu, NULL);
    clock_mono_cond_init(&r->keep_cv);
    pthread_cond_init(&r->extended_cv, NULL);
    if (pthread_create(&r->keeper, NULL, keeper_main, r) != 0) {
        errbuf_set(err, errlen, "cannot start the keeper thread for queue %s", hc->queue);
        runner_free(r);
        return NULL;
    }
    r->keeper_started = true;
    char name[16]; /* a thread's name on Linux: 15 bytes and its NUL */
    str_join(name, sizeof name, "keep-", hc->queue, NULL);
    pthread_setname_np(r->keeper, name);
    for (unsigned i = 0; i < hc->concurrency; i++) {
        atomic_fetch_add(&r->running, 1);
        if (pthread_create(&r->threads[i], NULL, runner_main, r) != 0) {
            atomic_fetch_sub(&r->running, 1);
            errbuf_set(err, errlen, "cannot start runner threads for queue %s", hc->queue);
            runner_stop_receiving(r);
            runner_join(r, 1e18, NULL);
            runner_free(r);
            return NULL;
        }
        r->n_threads++;
        str_join(name, sizeof name, "run-", hc->queue, NULL);
        pthread_setname_np(r->threads[i], name);
    }
    return r;
}

void runner_abort(runner *r)
{
    atomic_store(&r->aborting, true);
    atomic_store(&r->stopping, true);
    if (r->work.handler->abort)
        r->work.handler->abort(r->work.handler);
}

void runner_stop_receiving(runner *r)
{
    atomic_store(&r->stopping, true);
    broker_wake_all(r->broker);
}

bool runner_join(runner *r, double deadline, const atomic_bool *cut_short)
{
    while (atomic_load(&r->running) > 0 && clock_mono_s() < deadline &&
           !(cut_short && atomic_load(cut_short)))
        usleep(10000);
    if (atomic_load(&r->running) > 0)
        return false;
    for (unsigned i = 0; i < r->n_threads; i++)
        pthread_join(r->threads[i], NULL);
    r->n_threads = 0;
    if (r->keeper_started) { /* no run is left to keep hidden */
        pthread_mutex_lock(&r->keep_mu);
        r->keeper_stop = true;
        pthread_cond_signal(&r->keep_cv);
        pthread_mutex_unlock(&r->keep_mu);
        pthread_join(r->keeper, NULL);
        r->keeper_started = false;
    }
    return true;
}

void runner_free(runner *r)
{
    if (!r)
        return;
    pthread_mutex_destroy(&r->keep_mu);
    pthread_cond_destroy(&r->keep_cv);
    pthread_cond_destroy(&r->extended_cv);
    handler_free(r->work.handler);
    free(r->threads);
    free(r);
}
