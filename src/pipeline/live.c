/*
 * live — waiters and event clients over the change log; see live.h.
 *
 * One mutex guards the registry: waiters (hash chains by task id, plus a
 * list in deadline order), subscribers (a list) and their buffers. The
 * thread reads change rows outside the lock, in batches of LIVE_BATCH after
 * its shared cursor, then under the lock wakes the waiters of tasks that
 * finished and appends each event to the subscribers whose filters match.
 *
 * A subscriber is "live" when its cursor has reached the shared cursor and
 * nothing held it back. One that resumes from an earlier Last-Event-ID, or
 * whose buffer had no room for an event (a burst), catches up from the log:
 * a batch at a time while its buffer is at most half full (read under the
 * lock: bounded), so a burst or its own backlog never drops it. A client
 * whose buffer is full and that has owed a read for LIVE_STALL_MS (read
 * nothing since bytes came to its empty buffer, or since its last read) is
 * dropped: it reads too slowly (or not at all). A client that had nothing to
 * read owes nothing, however long it was quiet.
 *
 * A waiter's ready() runs outside the lock: the transport keeps a parked
 * exchange until ready() comes, or until it takes the waiter back
 * (live_unwait()). A stream's wake() and abort() run under it (they only queue
 * a wake-up or shut a socket down), so none follows the stream's close.
 */
#include "live.h"

#include "core/errbuf.h"
#include "core/task_event.h"
#include "util/clock.h"
#include "util/log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIVE_BATCH       256 /* change rows read at once */
#define LIVE_BUCKETS     256 /* waiter hash chains */
#define LIVE_IDLE_MS     60000
#define LIVE_CATCHUP_MS  20   /* re-check of subscribers catching up */
#define LIVE_REREAD_MS   200  /* the next try after a failed read of the change log */
#define LIVE_STALL_MS    5000 /* a full buffer owing a read this long: the client is dropped */
#define LIVE_SAID_MAX    1024 /* rows without an event kept as said: past them, one is said again */
#define EVENT_FIELD_SIZE (TASK_EVENT_FIELD_MAX + 1)

typedef struct waiter {
    char task_id[37];
    int64_t deadline_ms;
    api_exchange *ex;
    struct waiter *hprev, *hnext; /* hash chain */
    struct waiter *dprev, *dnext; /* deadline order; also the fired list */
} waiter;

typedef struct subscriber {
    api_stream stream; /* first: the API's handle is this struct */
    live *owner;
    struct subscriber *prev, *next;
    int64_t cursor; /* the last seq passed to it (sent or filtered out) */
    char task_type[EVENT_FIELD_SIZE];
    char status[16];
    sbuf buf; /* bytes not yet read: data[off, len), len at most twice buffer_limit and a frame */
    size_t off;
    bool armed;            /* read() found nothing: wake it when there is more */
    bool behind;           /* its buffer had no room: it catches up from the log */
    int64_t owes_since_ms; /* since when it has had bytes to read: its last read, or when bytes
                            * came to its empty buffer (or its subscribe) */
    bool ended;            /* shutting down: the rest of buf, then the end */
    bool dropped;
    /* the events thread reads its rows outside the lock (catch_up()): a close meanwhile leaves
     * it to that thread to free (closed) */
    bool catching, closed;
    unsigned round; /* the catch-up round that last looked at it */
    void (*wake)(void *user);
    void (*abort)(void *user);
    void *user;
} subscriber;

struct live {
    broker *broker;
    metrics *metrics;
    unsigned max_waiters, max_clients;
    size_t buffer_limit;
    int64_t ping_ms; /* between heartbeats (event_ping_interval) */
    pthread_t thread;
    pthread_mutex_t mu;
    bool closing;
    waiter *buckets[LIVE_BUCKETS];
    waiter *dhead, *dtail;
    unsigned n_waiters;
    int64_t thread_wakes_ms; /* when the sleeping thread looks at deadlines next */
    subscriber *subs;
    unsigned n_subs;
    int64_t shared;       /* the thread's cursor: rows up to it have been handled */
    int64_t next_ping_ms; /* the next heartbeat */
    unsigned round;       /* catch_up()'s rounds, counted */
    /* the seqs of the rows without an event said (event_of()), in order, the greatest
     * LIVE_SAID_MAX: a client catching up reads again rows said before, and reads rows before them
     * that no one read */
    int64_t said[LIVE_SAID_MAX];
    size_t n_said;
};

static const api_stream_ops stream_ops;

/* ---- waiters ------------------------------------------------------------ */

static unsigned bucket_of(const char *id)
{
    unsigned h = 2166136261u; /* FNV-1a */
    for (; *id; id++)
        h = (h ^ (unsigned char)*id) * 16777619u;
    return h % LIVE_BUCKETS;
}

/* Take w out of the registry (under the lock). */
static void waiter_unlink(live *l, waiter *w)
{
    if (w->hprev)
        w->hprev->hnext = w->hnext;
    else
        l->buckets[bucket_of(w->task_id)] = w->hnext;
    if (w->hnext)
        w->hnext->hprev = w->hprev;
    if (w->dprev)
        w->dprev->dnext = w->dnext;
    else
        l->dhead = w->dnext;
    if (w->dnext)
        w->dnext->dprev = w->dprev;
    else
        l->dtail = w->dprev;
    w->ex->waiter = NULL;
    l->n_waiters--;
}

/* Move w from the registry to the fired list (under the lock). */
static void waiter_fire(live *l, waiter *w, waiter **fired)
{
    waiter_unlink(l, w);
    w->dnext = *fired;
    *fired = w;
}

/* Answer the fired waiters (outside the lock): the exchange reads the task again. */
static void answer_fired(waiter *fired)
{
    while (fired) {
        waiter *next = fired->dnext;
        fired->ex->ready(fired->ex);
        free(fired);
        fired = next;
    }
}

static void set_gauges(live *l)
{
    metrics_set(l->metrics, "taskd_task_waiters", "", l->n_waiters);
    metrics_set(l->metrics, "taskd_event_clients", "", l->n_subs);
}

store_rc live_wait(live *l, const char *task_id, int64_t deadline_ms, api_exchange *ex)
{
    waiter *w = calloc(1, sizeof *w);
    if (!w)
        return STORE_ERROR;
    snprintf(w->task_id, sizeof w->task_id, "%s", task_id);
    w->deadline_ms = deadline_ms;
    w->ex = ex;
    pthread_mutex_lock(&l->mu);
    store_rc rc = l->closing ? STORE_ERROR : l->n_waiters >= l->max_waiters ? STORE_BUSY : STORE_OK;
    if (rc != STORE_OK) {
        pthread_mutex_unlock(&l->mu);
        free(w);
        return rc;
    }
    unsigned b = bucket_of(w->task_id);
    w->hnext = l->buckets[b];
    if (w->hnext)
        w->hnext->hprev = w;
    l->buckets[b] = w;
    /* deadlines mostly come in order: look for the place from the end */
    waiter *after = l->dtail;
    while (after && after->deadline_ms > deadline_ms)
        after = after->dprev;
    w->dprev = after;
    w->dnext = after ? after->dnext : l->dhead;
    if (w->dnext)
        w->dnext->dprev = w;
    else
        l->dtail = w;
    if (after)
        after->dnext = w;
    else
        l->dhead = w;
    ex->waiter = w;
    l->n_waiters++;
    set_gauges(l);
    bool earlier = deadline_ms < l->thread_wakes_ms;
    if (earlier)
        l->thread_wakes_ms = deadline_ms;
    pthread_mutex_unlock(&l->mu);
    if (earlier) /* the thread sleeps past this deadline: wake it to sleep less */
        broker_wake_all(l->broker);
    return STORE_OK;
}

bool live_unwait(live *l, api_exchange *ex)
{
    pthread_mutex_lock(&l->mu);
    waiter *w = ex->waiter;
    if (w) {
        waiter_unlink(l, w);
        set_gauges(l);
    }
    pthread_mutex_unlock(&l->mu);
    free(w);
    return w != NULL;
}

/* ---- subscribers -------------------------------------------------------- */

/* Wake s if it waits for a wake (under the lock, so that no wake follows its close). */
static void note_wake(subscriber *s)
{
    if (s->armed && s->wake) {
        s->armed = false;
        s->wake(s->user);
    }
}

/* Drop a client (under the lock): one that reads too slowly, or whose buffer could not take an
 * event (no_memory). */
static void drop(live *l, subscriber *s, bool no_memory)
{
    char buffered[24];
    snprintf(buffered, sizeof buffered, "%zu", s->buf.len - s->off);
    s->dropped = true;
    s->ended = true;
    sbuf_free(&s->buf);
    s->off = 0;
    if (s->abort)
        s->abort(s->user); /* shuts the socket: the transport sees the client go */
    note_wake(s);
    metrics_add(l->metrics, "taskd_event_clients_dropped_total", "", 1);
    char cursor[24];
    snprintf(cursor, sizeof cursor, "%lld", (long long)s->cursor);
    if (no_memory)
        log_warn("event client dropped: no memory for its events", "last_seq", cursor, "buffered",
                 buffered, NULL);
    else
        log_info("event client dropped: it reads too slowly", "last_seq", cursor, "buffered",
                 buffered, NULL);
}

/*
 * Append a frame to s (under the lock); false when its buffer has no room
 * for it (a frame larger than the limit still goes into an empty buffer).
 */
static bool deliver(live *l, subscriber *s, const char *frame, size_t len)
{
    if (s->ended)
        return true; /* nothing more goes to it */
    size_t pending = s->buf.len - s->off;
    if (pending && pending + len > l->buffer_limit)
        return false;
    if (!pending) /* a quiet client's stall starts now, not at its last read */
        s->owes_since_ms = clock_mono_ms();
    if (s->off && s->off >= pending) { /* give back what was read: at most twice the limit */
        memmove(s->buf.data, s->buf.data + s->off, pending);
        sbuf_truncate(&s->buf, pending);
        s->off = 0;
    }
    sbuf_append(&s->buf, frame, len);
    if (sbuf_failed(&s->buf)) {
        drop(l, s, true);
        return true;
    }
    note_wake(s);
    return true;
}

/* Give s a row's event, framed in frame, if it passes s's filters; true when s should have it and
 * could not take it now (no frame was made, or no room): s gets the row again from the log. */
static bool held_back(live *l, subscriber *s, const task_event *ev, const sbuf *frame)
{
    if (!task_event_matches(ev, *s->task_type ? s->task_type : NULL, *s->status ? s->status : NULL))
        return false;
    return sbuf_failed(frame) || !deliver(l, s, frame->data, frame->len);
}

static void row_of(const change_row_copy *c, change_row *r)
{
    *r = (change_row){c->seq,  c->event_name, c->task_id, c->new_image, c->old_image,
                      c->time, c->task_type,  c->status,  c->status_msg};
}

static long stream_read(api_stream *st, char *buf, size_t max)
{
    subscriber *s = (subscriber *)st;
    live *l = s->owner;
    pthread_mutex_lock(&l->mu);
    long n;
    if (s->dropped) {
        n = API_STREAM_DROPPED;
    } else if (s->buf.len > s->off) {
        size_t k = s->buf.len - s->off;
        if (k > max)
            k = max;
        memcpy(buf, s->buf.data + s->off, k);
        s->off += k;
        s->owes_since_ms = clock_mono_ms();
        if (s->off == s->buf.len)
            s->buf.len = s->off = 0;
        n = (long)k;
    } else if (s->ended) {
        n = API_STREAM_END;
    } else {
        s->armed = true;
        n = 0;
    }
    pthread_mutex_unlock(&l->mu);
    return n;
}

static void stream_attach(api_stream *st, void (*wake)(void *user), void (*abort_fn)(void *user),
                          void *user)
{
    subscriber *s = (subscriber *)st;
    pthread_mutex_lock(&s->owner->mu);
    s->wake = wake;
    s->abort = abort_fn;
    s->user = user;
    pthread_mutex_unlock(&s->owner->mu);
}

static void subscriber_free(subscriber *s)
{
    sbuf_free(&s->buf);
    free(s);
}

static void stream_close(api_stream *st)
{
    subscriber *s = (subscriber *)st;
    live *l = s->owner;
    pthread_mutex_lock(&l->mu);
    if (s->prev)
        s->prev->next = s->next;
    else
        l->subs = s->next;
    if (s->next)
        s->next->prev = s->prev;
    l->n_subs--;
    set_gauges(l);
    bool theirs = s->catching; /* the events thread frees it when its read is done */
    s->closed = true;
    pthread_mutex_unlock(&l->mu);
    if (!theirs)
        subscriber_free(s);
}

static const api_stream_ops stream_ops = {stream_attach, stream_read, stream_close};

store_rc live_subscribe(live *l, int64_t after, const char *task_type, const char *status,
                        api_stream **out)
{
    *out = NULL;
    int64_t oldest, last;
    store_rc rc = broker_change_bounds(l->broker, &oldest, &last);
    if (rc != STORE_OK)
        return rc;
    subscriber *s = calloc(1, sizeof *s);
    if (!s)
        return STORE_ERROR;
    s->stream.ops = &stream_ops;
    s->owner = l;
    s->owes_since_ms = clock_mono_ms();
    snprintf(s->task_type, sizeof s->task_type, "%s", task_type ? task_type : "");
    snprintf(s->status, sizeof s->status, "%s", status ? status : "");
    sbuf_printf(&s->buf, "retry: %d\n\n", LIVE_RETRY_MS);
    if (after < 0) {
        s->cursor = last;      /* only what comes next */
    } else if (after > last) { /* never this log's (its numbers are never reused): reload */
        task_event_reset_sse(&s->buf, last + 1, TASK_EVENT_UNKNOWN);
        s->cursor = last;
    } else if (after + 1 < oldest) {
        task_event_reset_sse(&s->buf, oldest, TASK_EVENT_TRIMMED); /* missed ones are gone */
        s->cursor = oldest - 1;
    } else {
        s->cursor = after;
    }
    if (sbuf_failed(&s->buf)) {
        subscriber_free(s);
        return STORE_ERROR;
    }
    pthread_mutex_lock(&l->mu);
    rc = l->closing ? STORE_ERROR : l->n_subs >= l->max_clients ? STORE_BUSY : STORE_OK;
    bool wake = false;
    if (rc == STORE_OK) {
        if (!l->n_subs) /* the heartbeat starts with its first listener */
            l->next_ping_ms = s->owes_since_ms + l->ping_ms;
        s->next = l->subs;
        if (s->next)
            s->next->prev = s;
        l->subs = s;
        l->n_subs++;
        set_gauges(l);
        /* records to catch up on, or a ping due before the thread looks again: with nobody
         * listening, it sleeps up to LIVE_IDLE_MS */
        wake = s->cursor < l->shared || l->next_ping_ms < l->thread_wakes_ms;
        if (l->next_ping_ms < l->thread_wakes_ms)
            l->thread_wakes_ms = l->next_ping_ms;
    }
    pthread_mutex_unlock(&l->mu);
    if (rc != STORE_OK) {
        subscriber_free(s);
        return rc;
    }
    if (wake)
        broker_wake_all(l->broker);
    *out = &s->stream;
    return STORE_OK;
}

/* ---- the thread --------------------------------------------------------- */

/* Whether the row of seq is among those said (under the lock); noted when it is not, the
 * least said let go when there is no room. */
static bool said_before(live *l, int64_t seq)
{
    size_t lo = 0, hi = l->n_said;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (l->said[mid] < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < l->n_said && l->said[lo] == seq)
        return true;
    if (l->n_said == LIVE_SAID_MAX) {
        if (lo == 0)
            return false; /* before every row kept: said again, not kept */
        memmove(l->said, l->said + 1, --lo * sizeof *l->said);
        l->n_said--;
    }
    memmove(l->said + lo + 1, l->said + lo, (l->n_said - lo) * sizeof *l->said);
    l->said[lo] = seq;
    l->n_said++;
    return false;
}

/*
 * The event of row r (under the lock). TASK_EVENT_NONE for a damaged row (no status, or one that
 * is none; an image that does not parse), passed over for every client and waiter: said at WARN
 * with its seq, once however many read past it (said_before()): a client catching up reads again
 * the rows the thread or another client passed, and may read rows before those that no one read.
 * TASK_EVENT_NO_MEMORY: the reader stops before the row and reads it again.
 */
static task_event_rc event_of(live *l, const change_row *r, task_event *ev)
{
    task_event_rc rc = task_event_from_row(r, ev);
    if (rc == TASK_EVENT_NONE && !said_before(l, r->seq)) {
        char seq[24];
        snprintf(seq, sizeof seq, "%lld", (long long)r->seq);
        log_warn("a change record tells no event (a damaged row); passed over for events and "
                 "waiters",
                 "sequence_number", seq, r->task_id ? "task_id" : NULL, r->task_id, NULL);
    }
    return rc;
}

/*
 * Handle one shared batch (under the lock): wake the waiters of tasks that
 * finished or were deleted, and give each live subscriber its events. Returns
 * the number of rows handled: fewer than n when there was no memory for the
 * event of the next, which is read again (the shared cursor stays before it).
 */
static size_t handle_rows(live *l, const change_row_copy *rows, size_t n, waiter **fired)
{
    int64_t start = l->shared;
    size_t i = 0;
    for (; i < n; i++) {
        change_row r;
        row_of(&rows[i], &r);
        task_event ev;
        task_event_rc told = event_of(l, &r, &ev);
        if (told == TASK_EVENT_NO_MEMORY)
            break; /* this row again, for every client and waiter */
        if (told != TASK_EVENT_TOLD)
            continue; /* nothing to send, nobody to wake */
        task_status st;
        bool finished = strcmp(ev.event, "REMOVE") == 0 ||
                        (task_status_parse(ev.status, &st) && task_status_is_final(st));
        if (finished && l->n_waiters) {
            for (waiter *w = l->buckets[bucket_of(ev.id)], *next; w; w = next) {
                next = w->hnext;
                if (strcmp(w->task_id, ev.id) == 0)
                    waiter_fire(l, w, fired);
            }
        }
        sbuf frame = {0};
        task_event_sse(&frame, &ev);
        for (subscriber *s = l->subs; s; s = s->next) {
            if (s->behind || s->cursor < start || s->cursor >= r.seq)
                continue; /* catching up, or already past it */
            if (held_back(l, s, &ev, &frame)) {
                s->behind = true; /* no frame, or no room: it gets this row again from the log */
                continue;
            }
            s->cursor = r.seq;
        }
        sbuf_free(&frame);
        task_event_clear(&ev);
    }
    for (subscriber *s = l->subs; s; s = s->next)
        if (!s->behind && s->cursor >= start && i && s->cursor < rows[i - 1].seq)
            s->cursor = rows[i - 1].seq; /* rows without an event were passed too */
    return i;
}

/*
 * Rows after the shared cursor were trimmed before the thread read them (under the lock): seqs
 * are given one after another, so only a trim makes a hole. Every waiter is answered with its
 * task as it is now (its finish may have been among them), and the live subscribers catch up
 * from the log, which tells them to reload (catch_up()).
 */
static void rows_lost(live *l, waiter **fired)
{
    log_warn("change records were trimmed before the events thread read them; waiters are "
             "answered and event streams told to reload",
             NULL);
    while (l->dhead)
        waiter_fire(l, l->dhead, fired);
    for (subscriber *s = l->subs; s; s = s->next)
        s->behind = true;
}

/* Give s, which asked for rows after cursor, the rows read for it (under the lock): a reset
 * first when the log was trimmed past its cursor (reset: the oldest record now). */
static void give_rows(live *l, subscriber *s, int64_t reset, const change_row_copy *rows, size_t n)
{
    if (reset) {
        sbuf frame = {0};
        task_event_reset_sse(&frame, reset, TASK_EVENT_TRIMMED);
        bool sent = !sbuf_failed(&frame) && deliver(l, s, frame.data, frame.len);
        sbuf_free(&frame);
        if (!sent)
            return;
        s->cursor = reset - 1;
    }
    if (n ? rows[0].seq > s->cursor + 1 : s->cursor < l->shared)
        return; /* trimmed since the bounds were read: again next round */
    /* no memory for its event, no frame, or no room: this row again next round */
    bool held = false;
    for (size_t i = 0; i < n && rows[i].seq <= l->shared && !s->ended; i++) {
        change_row r;
        row_of(&rows[i], &r);
        task_event ev;
        task_event_rc told = event_of(l, &r, &ev);
        if (told == TASK_EVENT_NO_MEMORY) {
            held = true;
            break;
        }
        if (told == TASK_EVENT_TOLD) {
            sbuf frame = {0};
            task_event_sse(&frame, &ev);
            held = held_back(l, s, &ev, &frame);
            sbuf_free(&frame);
            task_event_clear(&ev);
            if (held)
                break;
        }
        s->cursor = r.seq;
    }
    if (!held && n < LIVE_BATCH && s->cursor < l->shared)
        s->cursor = l->shared; /* nothing else is left before it */
    if (s->cursor >= l->shared)
        s->behind = false;
}

/*
 * Give subscribers behind the shared cursor their next rows, a batch each while their buffer
 * is at most half full; drop those whose buffer stays full while they read nothing. True when
 * some are still behind. Called under the lock, which it lets go while it reads a subscriber's
 * rows (the HTTP loops take it to read and close streams); only this thread moves cursors and
 * the shared cursor, and a subscriber closed meanwhile is left to it to free.
 */
static bool catch_up(live *l, int64_t now)
{
    bool any = false;
    unsigned round = ++l->round;
    subscriber *s = l->subs;
    while (s) {
        if (s->round == round || s->ended || (!s->behind && s->cursor >= l->shared)) {
            s->round = round;
            s = s->next;
            continue;
        }
        s->round = round;
        if (s->buf.len - s->off > l->buffer_limit / 2) {
            subscriber *next = s->next;
            if (now - s->owes_since_ms > LIVE_STALL_MS)
                drop(l, s, false);
            else
                any = true; /* let it read first */
            s = next;
            continue;
        }
        any = true;
        s->catching = true;
        int64_t cursor = s->cursor, oldest = 0, last, reset = 0;
        pthread_mutex_unlock(&l->mu);
        change_row_copy *rows = NULL;
        size_t n = 0;
        store_rc rc = broker_change_bounds(l->broker, &oldest, &last);
        if (rc == STORE_OK && cursor + 1 < oldest) /* trimmed while it was behind: a reload */
            reset = oldest;
        if (rc == STORE_OK)
            rc = broker_changes_after(l->broker, reset ? reset - 1 : cursor, LIVE_BATCH, &rows, &n);
        pthread_mutex_lock(&l->mu);
        s->catching = false;
        if (s->closed) { /* out of the list: start again, past those looked at this round */
            subscriber_free(s);
            change_rows_free(rows, n);
            s = l->subs;
            continue;
        }
        if (rc == STORE_OK) /* else: again next round */
            give_rows(l, s, reset, rows, n);
        change_rows_free(rows, n);
        s = s->next;
    }
    return any;
}

/* Fire the waiters whose deadline has come (under the lock). */
static void expire(live *l, int64_t now, waiter **fired)
{
    while (l->dhead && l->dhead->deadline_ms <= now)
        waiter_fire(l, l->dhead, fired);
}

/*
 * Every event_ping_interval, a ping to each subscriber (under the lock), with its cursor as the
 * event id: a block with an id and no data moves the client's Last-Event-ID without being an
 * event. So one whose filter let nothing through for a while resumes from where it was, not from
 * its last event, which the log may have been trimmed past since (a reset it did not need).
 */
static void heartbeat(live *l, int64_t now)
{
    if (now < l->next_ping_ms)
        return;
    l->next_ping_ms = now + l->ping_ms;
    for (subscriber *s = l->subs; s; s = s->next) {
        char ping[48];
        int n = snprintf(ping, sizeof ping, ": ping\nid: %lld\n\n", (long long)s->cursor);
        deliver(l, s, ping, (size_t)n);
    }
}

/*
 * Read the rows after the shared cursor, in batches, for the waiters and the live subscribers;
 * with nobody listening, only note the log's end. *failing: the last read failed, or there was no
 * memory for a row's event (the shared cursor stays before it), so the next comes soon (a failure
 * is said once, and the read that works again once).
 */
static void read_new_rows(live *l, bool *failing)
{
    pthread_mutex_lock(&l->mu);
    bool listening = l->n_subs || l->n_waiters;
    pthread_mutex_unlock(&l->mu);
    if (!listening) {     /* nobody to tell: skip to the end */
        *failing = false; /* nothing to read again for */
        int64_t last = broker_last_seq(l->broker);
        pthread_mutex_lock(&l->mu);
        /* still nobody: one who came since may need the rows up to last */
        if (last > l->shared && !l->n_subs && !l->n_waiters)
            l->shared = last;
        pthread_mutex_unlock(&l->mu);
        return;
    }
    for (;;) {
        change_row_copy *rows = NULL;
        size_t n = 0;
        /* committed before the read: those rows are there unless a trim took them */
        int64_t committed = broker_last_seq(l->broker);
        store_rc rc = broker_changes_after(l->broker, l->shared, LIVE_BATCH, &rows, &n);
        if (rc != STORE_OK) {
            if (!*failing) /* once, not at every try */
                log_warn("cannot read the change log for events and waiters; retrying", "error",
                         store_rc_name(rc), NULL);
            *failing = true;
            return;
        }
        if (*failing)
            log_info("the change log is read again for events and waiters", NULL);
        *failing = false;
        waiter *fired = NULL;
        pthread_mutex_lock(&l->mu);
        if (n ? rows[0].seq > l->shared + 1 : committed > l->shared) {
            rows_lost(l, &fired);
            if (!n)
                l->shared = committed;
        }
        size_t handled = handle_rows(l, rows, n, &fired);
        if (handled)
            l->shared = rows[handled - 1].seq;
        set_gauges(l);
        pthread_mutex_unlock(&l->mu);
        char seq[24];
        snprintf(seq, sizeof seq, "%lld", handled < n ? (long long)rows[handled].seq : 0LL);
        change_rows_free(rows, n);
        answer_fired(fired);
        if (handled < n) { /* no memory for a row's event: it is read again soon */
            if (!*failing) /* once, not at every try */
                log_warn("no memory for the event of a change record; it is read again for events "
                         "and waiters",
                         "sequence_number", seq, NULL);
            *failing = true;
            return;
        }
        if (n < LIVE_BATCH)
            return;
    }
}

static void *live_main(void *arg)
{
    live *l = arg;
    uint64_t gen = 0;
    broker_wait(l->broker, true, &gen, 0); /* the current generation */
    bool behind = false;
    bool failing = false; /* the last read of the change log failed: try again soon */
    for (;;) {
        int64_t now = clock_mono_ms();
        pthread_mutex_lock(&l->mu);
        if (l->closing) {
            pthread_mutex_unlock(&l->mu);
            break;
        }
        int64_t until = now + LIVE_IDLE_MS;
        if (l->n_subs && l->next_ping_ms < until)
            until = l->next_ping_ms;
        if (l->dhead && l->dhead->deadline_ms < until)
            until = l->dhead->deadline_ms;
        if (behind && now + LIVE_CATCHUP_MS < until)
            until = now + LIVE_CATCHUP_MS;
        if (failing && now + LIVE_REREAD_MS < until) /* not the next commit: none may come */
            until = now + LIVE_REREAD_MS;
        l->thread_wakes_ms = until;
        pthread_mutex_unlock(&l->mu);
        if (until > now)
            broker_wait(l->broker, true, &gen, (int)(until - now));

        read_new_rows(l, &failing);

        waiter *fired = NULL;
        pthread_mutex_lock(&l->mu);
        now = clock_mono_ms();
        expire(l, now, &fired);
        behind = catch_up(l, now);
        heartbeat(l, now);
        set_gauges(l);
        pthread_mutex_unlock(&l->mu);
        answer_fired(fired);
    }
    return NULL;
}

live *live_start(broker *b, const config *c, metrics *m, char *err, size_t errlen)
{
    live *l = calloc(1, sizeof *l);
    if (!l) {
        errbuf_set(err, errlen, "out of memory");
        return NULL;
    }
    l->broker = b;
    l->metrics = m;
    l->max_waiters = c->max_waiters;
    l->max_clients = c->max_event_clients;
    l->buffer_limit = c->event_buffer_bytes;
    l->ping_ms = (int64_t)c->event_ping_interval * 1000;
    l->next_ping_ms = clock_mono_ms() + l->ping_ms;
    int64_t oldest;
    if (broker_change_bounds(b, &oldest, &l->shared) != STORE_OK) {
        errbuf_set(err, errlen, "cannot read the change log");
        free(l);
        return NULL;
    }
    metrics_declare(m, "taskd_task_waiters", "GET /tasks/{id}?wait= requests parked now.",
                    METRIC_GAUGE, NULL, 0);
    metrics_declare(m, "taskd_event_clients", "GET /events streams open now.", METRIC_GAUGE, NULL,
                    0);
    metrics_declare(m, "taskd_event_clients_dropped_total",
                    "GET /events clients dropped because they read too slowly.", METRIC_COUNTER,
                    NULL, 0);
    set_gauges(l);
    metrics_add(m, "taskd_event_clients_dropped_total", "", 0);
    pthread_mutex_init(&l->mu, NULL);
    if (pthread_create(&l->thread, NULL, live_main, l) != 0) {
        errbuf_set(err, errlen, "cannot start the events thread");
        pthread_mutex_destroy(&l->mu);
        free(l);
        return NULL;
    }
    pthread_setname_np(l->thread, "events");
    return l;
}

void live_close(live *l)
{
    if (!l)
        return;
    waiter *fired = NULL;
    pthread_mutex_lock(&l->mu);
    if (l->closing) {
        pthread_mutex_unlock(&l->mu);
        return;
    }
    l->closing = true;
    while (l->dhead)
        waiter_fire(l, l->dhead, &fired);
    for (subscriber *s = l->subs; s; s = s->next) {
        s->ended = true;
        note_wake(s);
    }
    set_gauges(l);
    pthread_mutex_unlock(&l->mu);
    answer_fired(fired);
    broker_wake_all(l->broker); /* the thread sees closing */
    pthread_join(l->thread, NULL);
}

void live_free(live *l)
{
    if (!l)
        return;
    live_close(l);
    if (l->subs)
        log_warn("event streams still open when the events thread stopped", NULL);
    pthread_mutex_destroy(&l->mu);
    free(l);
}
