/*
 * queue_depths — per-queue message counts kept by the writer; see queue_depths.h.
 */
#include "queue_depths.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Messages hidden until one instant. */
typedef struct slot {
    int64_t at; /* visible_ms */
    int64_t received, fresh;
} slot;

typedef struct queue_count {
    char *name;
    int64_t total;
    int64_t hidden_received, hidden_fresh; /* sums over the slots */
    slot *slots;                           /* slots[start..n), ordered by at */
    size_t start, n, cap;
} queue_count;

struct queue_depths {
    pthread_mutex_t mu;
    queue_count *queues;
    size_t n, cap;
};

typedef enum op_kind { OP_ENTER, OP_LEAVE } op_kind;

struct depth_op {
    op_kind kind;
    bool received;
    size_t queue; /* an index into queue_depths.queues: stable, queues are never removed */
    int64_t at;   /* visible_ms when hidden, 0 when visible */
};

queue_depths *queue_depths_new(void)
{
    queue_depths *d = calloc(1, sizeof *d);
    if (d)
        pthread_mutex_init(&d->mu, NULL);
    return d;
}

static void clear_locked(queue_depths *d)
{
    for (size_t i = 0; i < d->n; i++) {
        free(d->queues[i].name);
        free(d->queues[i].slots);
    }
    free(d->queues);
    d->queues = NULL;
    d->n = d->cap = 0;
}

void queue_depths_free(queue_depths *d)
{
    if (!d)
        return;
    clear_locked(d);
    pthread_mutex_destroy(&d->mu);
    free(d);
}

void queue_depths_clear(queue_depths *d)
{
    pthread_mutex_lock(&d->mu);
    clear_locked(d);
    pthread_mutex_unlock(&d->mu);
}

/* The queue's index, added when new; (size_t)-1 when out of memory. Under mu. */
static size_t queue_index(queue_depths *d, const char *name)
{
    for (size_t i = 0; i < d->n; i++)
        if (strcmp(d->queues[i].name, name) == 0)
            return i;
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 8;
        queue_count *q = realloc(d->queues, cap * sizeof *q);
        if (!q)
            return (size_t)-1;
        d->queues = q;
        d->cap = cap;
    }
    queue_count *q = &d->queues[d->n];
    memset(q, 0, sizeof *q);
    if (!(q->name = strdup(name)))
        return (size_t)-1;
    return d->n++;
}

static queue_count *find_locked(queue_depths *d, const char *name)
{
    for (size_t i = 0; i < d->n; i++)
        if (strcmp(d->queues[i].name, name) == 0)
            return &d->queues[i];
    return NULL;
}

/* Drop the slots whose instant has come: their messages are visible now. */
static void prune(queue_count *q, int64_t now_ms)
{
    while (q->start < q->n && q->slots[q->start].at <= now_ms) {
        q->hidden_received -= q->slots[q->start].received;
        q->hidden_fresh -= q->slots[q->start].fresh;
        q->start++;
    }
    if (q->start == q->n) {
        q->start = q->n = 0;
    } else if (q->start > q->cap / 2) {
        memmove(q->slots, q->slots + q->start, (q->n - q->start) * sizeof *q->slots);
        q->n -= q->start;
        q->start = 0;
    }
}

/* The first slot at or after at (binary search from start). */
static size_t slot_position(const queue_count *q, int64_t at)
{
    size_t lo = q->start, hi = q->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (q->slots[mid].at < at)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Count n more (or fewer, n < 0) messages hidden until at; false when out of memory. */
static bool slot_add(queue_count *q, int64_t at, bool received, int64_t n)
{
    size_t i = slot_position(q, at);
    if (i == q->n || q->slots[i].at != at) {
        if (n < 0)
            return true; /* its slot has passed: the message was counted visible */
        if (q->n == q->cap) {
            size_t cap = q->cap ? q->cap * 2 : 16;
            slot *s = realloc(q->slots, cap * sizeof *s);
            if (!s)
                return false;
            q->slots = s;
            q->cap = cap;
        }
        memmove(q->slots + i + 1, q->slots + i, (q->n - i) * sizeof *q->slots);
        q->slots[i] = (slot){.at = at};
        q->n++;
    }
    int64_t *count = received ? &q->slots[i].received : &q->slots[i].fresh;
    if (*count + n < 0)
        n = -*count;
    *count += n;
    if (received)
        q->hidden_received += n;
    else
        q->hidden_fresh += n;
    return true;
}

bool queue_depths_nth(queue_depths *d, size_t i, char *name, size_t len, int64_t *total)
{
    pthread_mutex_lock(&d->mu);
    bool found = i < d->n;
    if (found) {
        snprintf(name, len, "%s", d->queues[i].name);
        *total = d->queues[i].total;
    }
    pthread_mutex_unlock(&d->mu);
    return found;
}

void queue_depths_get(queue_depths *d, const char *queue, int64_t now_ms, queue_stats *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&d->mu);
    queue_count *q = find_locked(d, queue);
    if (q) {
        prune(q, now_ms);
        out->in_flight = q->hidden_received;
        out->delayed = q->hidden_fresh;
        out->visible = q->total - q->hidden_received - q->hidden_fresh;
    }
    pthread_mutex_unlock(&d->mu);
}

bool queue_depths_load(queue_depths *d, const char *queue, int64_t visible_ms, bool received,
                       int64_t n)
{
    pthread_mutex_lock(&d->mu);
    size_t i = queue_index(d, queue);
    bool ok = i != (size_t)-1;
    if (ok) {
        d->queues[i].total += n;
        if (visible_ms)
            ok = slot_add(&d->queues[i], visible_ms, received, n);
    }
    pthread_mutex_unlock(&d->mu);
    return ok;
}

/* ---- the writer's log --------------------------------------------------- */

static depth_op *log_push(depth_log *l)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        depth_op *ops = realloc(l->ops, cap * sizeof *ops);
        if (!ops) {
            l->lost = true;
            return NULL;
        }
        l->ops = ops;
        l->cap = cap;
    }
    return &l->ops[l->n++];
}

static size_t index_of(depth_log *l, queue_depths *d, const char *queue)
{
    pthread_mutex_lock(&d->mu);
    size_t i = queue_index(d, queue);
    pthread_mutex_unlock(&d->mu);
    if (i == (size_t)-1)
        l->lost = true;
    return i;
}

void depth_log_enter(depth_log *l, queue_depths *d, const char *queue, int64_t visible_ms,
                     bool received, int64_t now_ms)
{
    size_t q = index_of(l, d, queue);
    depth_op *op = q != (size_t)-1 ? log_push(l) : NULL;
    if (op)
        *op = (depth_op){.kind = OP_ENTER,
                         .received = received,
                         .queue = q,
                         .at = visible_ms > now_ms ? visible_ms : 0};
}

void depth_log_leave(depth_log *l, queue_depths *d, const char *queue, int64_t visible_ms,
                     bool received)
{
    size_t q = index_of(l, d, queue);
    depth_op *op = q != (size_t)-1 ? log_push(l) : NULL;
    if (op)
        *op = (depth_op){.kind = OP_LEAVE, .received = received, .queue = q, .at = visible_ms};
}

bool depth_log_makes_visible(depth_log *l, queue_depths *d, const char *queue)
{
    if (l->lost)
        return true;
    size_t q = index_of(l, d, queue);
    if (q == (size_t)-1)
        return false;
    for (size_t i = 0; i < l->n; i++) {
        const depth_op *op = &l->ops[i];
        if (op->kind == OP_ENTER && op->queue == q && !op->at)
            return true;
    }
    return false;
}

int64_t depth_log_first_hidden(depth_log *l, queue_depths *d, const char *queue)
{
    if (l->lost)
        return INT64_MIN;
    size_t q = index_of(l, d, queue);
    int64_t first = INT64_MAX;
    for (size_t i = 0; q != (size_t)-1 && i < l->n; i++) {
        const depth_op *op = &l->ops[i];
        if (op->kind == OP_ENTER && op->queue == q && op->at && op->at < first)
            first = op->at;
    }
    return first;
}

void queue_depths_apply(queue_depths *d, depth_log *l, int64_t now_ms)
{
    pthread_mutex_lock(&d->mu);
    for (size_t i = 0; i < l->n && !l->lost; i++) {
        const depth_op *op = &l->ops[i];
        queue_count *q = &d->queues[op->queue];
        switch (op->kind) {
        case OP_ENTER:
            q->total++;
            if (op->at && !slot_add(q, op->at, op->received, 1))
                l->lost = true;
            break;
        case OP_LEAVE:
            q->total--;
            slot_add(q, op->at, op->received, -1); /* never allocates */
            break;
        }
    }
    for (size_t i = 0; i < d->n; i++)
        prune(&d->queues[i], now_ms); /* keeps the slots to those still ahead */
    pthread_mutex_unlock(&d->mu);
    l->n = 0;
}

void depth_log_free(depth_log *l)
{
    free(l->ops);
    memset(l, 0, sizeof *l);
}
