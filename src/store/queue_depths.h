/*
 * queue_depths — how many messages each local queue holds, kept in memory as
 * the store's writer moves them, so GET /queues and /metrics answer in
 * O(queues) however large a backlog grows.
 *
 * A queue's depths depend on the clock as well as on writes: a delayed
 * message or one whose visibility timeout runs out becomes visible without
 * any write. So each queue keeps its total, and the messages hidden until a
 * later instant as a time-ordered list of (visible_ms, count) slots; a read
 * first drops the slots whose instant has passed (those messages are
 * visible now). Visible = total - hidden.
 *
 * The writer records what each write does in a depth_log while its
 * transaction is open, forgets a rolled-back write's part (depth_log_mark /
 * depth_log_rewind), and applies the log only after the commit, so the
 * counters follow committed data exactly. Loaded once at start from the
 * database (queue_depths_load_*).
 *
 * Thread-safe: the writer applies, any thread reads.
 */
#ifndef TASKD_QUEUE_DEPTHS_H
#define TASKD_QUEUE_DEPTHS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct queue_stats {
    int64_t visible;   /* ready to receive */
    int64_t in_flight; /* received, not yet deleted, still hidden */
    int64_t delayed;   /* sent, not yet visible */
} queue_stats;

typedef struct queue_depths queue_depths;

queue_depths *queue_depths_new(void);
void queue_depths_free(queue_depths *d);

/* A queue's depths at now_ms (zeros for a queue never seen). */
void queue_depths_get(queue_depths *d, const char *queue, int64_t now_ms, queue_stats *out);

/* The name (copied into name, size len) and message count of the i-th queue seen, in no set
 * order: false past the last. */
bool queue_depths_nth(queue_depths *d, size_t i, char *name, size_t len, int64_t *total);

/* Forget everything (before loading again). */
void queue_depths_clear(queue_depths *d);
/*
 * Loading from the database: n messages in queue, of which those with visible_ms later than
 * the load's instant are given with that visible_ms (received: receive_count > 0); the others
 * with visible_ms 0. False when out of memory.
 */
bool queue_depths_load(queue_depths *d, const char *queue, int64_t visible_ms, bool received,
                       int64_t n);

/* What one batch of writes did to the queues (writer thread only). */
typedef struct depth_op depth_op;
typedef struct depth_log {
    depth_op *ops;
    size_t n, cap;
    bool lost; /* out of memory: the counters must be loaded again */
} depth_log;

/*
 * A message enters queue, hidden until visible_ms (received or not), or visible when
 * visible_ms <= now_ms; / leaves queue, where it was hidden until visible_ms.
 */
void depth_log_enter(depth_log *l, queue_depths *d, const char *queue, int64_t visible_ms,
                     bool received, int64_t now_ms);
void depth_log_leave(depth_log *l, queue_depths *d, const char *queue, int64_t visible_ms,
                     bool received);
/* Whether the log makes a message of queue visible at once (entering visible); true too when
 * the log lost track. */
bool depth_log_makes_visible(depth_log *l, queue_depths *d, const char *queue);

/* The earliest instant at which a message the log enters hidden in queue becomes visible
 * (INT64_MAX: none); INT64_MIN when the log lost track. */
int64_t depth_log_first_hidden(depth_log *l, queue_depths *d, const char *queue);

/* Where a write's part of the log begins; drop it when the write is rolled back. */
static inline size_t depth_log_mark(const depth_log *l)
{
    return l->n;
}
static inline void depth_log_rewind(depth_log *l, size_t mark)
{
    l->n = mark;
}

/*
 * After the commit: apply the log to the counters and empty it. When l->lost is set instead,
 * nothing is applied: the caller loads the counters again.
 */
void queue_depths_apply(queue_depths *d, depth_log *l, int64_t now_ms);
void depth_log_free(depth_log *l);

#endif
