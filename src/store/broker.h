/*
 * broker — the local pipeline's durable plumbing, kept in the task database:
 * the change stream (read in sequence order, with a checkpoint per
 * consumer), and the queues (SQS semantics: visibility timeout, receive
 * count, dead-letter queue, delay, retention).
 *
 * Every write joins the store's group commit, so publishing messages and
 * moving a consumer's checkpoint happen in one transaction: a crash can
 * neither lose a record nor publish it twice. Threads that consume wait on
 * broker_wait() and are woken after each commit that gives them work — once
 * the commit's own writers have their answers, so that a client's reply does
 * not wait for them; they look for work with reads (broker_next_visible,
 * broker_sweep_due) first, so an idle taskd opens no write transaction at all.
 */
#ifndef TASKD_BROKER_H
#define TASKD_BROKER_H

#include "core/config.h"
#include "core/tracectx.h"
#include "queue_depths.h"
#include "store.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

typedef struct broker broker;

/* The broker over a store opened by store_sqlite_open(). */
broker *broker_of(store *s);
/* The store under b, for what concerns the whole database (why it cannot write). */
store *broker_store(broker *b);

/* ---- change stream ----------------------------------------------------- */

/* A created task's immutable fields, as a publisher needs them; strings owned. */
typedef struct change_insert {
    char *task_id; /* NULL when the record is not an INSERT read by fields */
    char *task_type;
    char *data;       /* the task's data, JSON text */
    char *trace;      /* the creating request's traceparent, or NULL */
    char *tracestate; /* the tracestate that came with it, or NULL */
} change_insert;

typedef struct change_record {
    int64_t seq;
    /* Why its row can never be made the record mode asks for, or NULL. A damaged or
     * hand-edited database has such rows: a removed task's REMOVE record without its data, a
     * creation whose task id or type is missing or does not fit a task (it is not cut to fit),
     * or whose data kept apart is gone, a change whose side lost its status.
     * Neither json nor insert is set for one, but insert.task_id when an INSERT read by fields
     * has one. */
    const char *unreadable;
    char *json;           /* the whole record, shaped like a DynamoDB Streams record, or NULL */
    change_insert insert; /* an INSERT read by fields (CHANGE_READ_INSERT_FIELDS) */
} change_record;

/* What broker_read_changes() builds of each record. */
typedef enum change_read {
    CHANGE_READ_WHOLE,         /* every record whole (json) */
    CHANGE_READ_INSERTS_WHOLE, /* INSERTs whole; the others by their seq alone */
    CHANGE_READ_INSERT_FIELDS, /* INSERTs by fields (insert, else json when the task row is
                                * gone); the others by their seq alone */
} change_read;

/*
 * Read up to max records after the consumer's checkpoint, built as mode
 * says: a record that is not built is still returned, for its seq. Reading
 * a created task's fields from its row costs a fraction of building and
 * parsing the record. *checkpoint gets the checkpoint (0 before the first
 * commit). Free with change_records_free.
 *
 * A record whose row can never be built comes back unreadable, and the read goes on: it is the
 * consumer's to retry and skip (maximum_retry_attempts). What a retry may pass (the database
 * busy, an I/O error, no memory) fails the read; errno is ENOMEM after one that ran out of
 * memory, which the rc alone does not tell from the store's failure.
 */
store_rc broker_read_changes(broker *b, const char *consumer, size_t max, change_read mode,
                             int64_t *checkpoint, change_record **out, size_t *n);
void change_records_free(change_record *r, size_t n);

/* A change-log row as stored (the record's parts, not its JSON); strings owned, images may be
 * NULL. A row kept as parts has no images, but the task's type and its new status and
 * message (change_row), each NULL when a damaged or hand-edited row lost it: a reader passes
 * over what it cannot tell. */
typedef struct change_row_copy {
    int64_t seq;
    char *event_name;
    char *task_id;
    char *new_image;
    char *old_image;
    int64_t time; /* Unix seconds */
    char *task_type, *status, *status_msg;
} change_row_copy;

/*
 * Read up to max rows after seq after, in order, for a reader without a
 * checkpoint (GET /events and the waiters of GET /tasks/{id}?wait=): nothing
 * holds trimming back for it. Free with change_rows_free.
 */
store_rc broker_changes_after(broker *b, int64_t after, size_t max, change_row_copy **out,
                              size_t *n);
void change_rows_free(change_row_copy *r, size_t n);
/*
 * The change log's bounds: *last gets the last seq ever given (0 before the
 * first), *oldest the first seq still kept (*last + 1 when none is).
 */
store_rc broker_change_bounds(broker *b, int64_t *oldest, int64_t *last);
/* The last seq committed, as broker_change_bounds() gives it, without reading the database:
 * set before the wake-up of the commit that wrote it. */
int64_t broker_last_seq(broker *b);

/* A message for a queue; strings borrowed for the call. */
typedef struct broker_message {
    const queue_config *queue;
    const char *task_id;
    const char *task_type;
    const char *trace; /* the producer's traceparent, or NULL */
    const char *body;
    const char *tracestate; /* the W3C tracestate that goes with trace, or NULL */
} broker_message;

/*
 * Send the messages and set the consumer's checkpoint to seq, in one transaction. For the
 * consumer the writer feeds (below), a checkpoint set at the log's last record turns the feed
 * on.
 */
store_rc broker_publish(broker *b, const char *consumer, int64_t seq, const broker_message *m,
                        size_t n);

/*
 * Feeding a stream consumer from the writer. While the consumer has consumed every record, the
 * writer hands it each task it creates inside the creating transaction, sends the messages it
 * makes there and moves its checkpoint with them: a created task's messages commit with it, with
 * no read back, no second transaction and no wake-up in between. Other records only move the
 * checkpoint along (the feed is for consumers that make messages of INSERTs alone). When the
 * feed cannot take a task, it turns off and the consumer reads the log from its checkpoint as
 * before, until a broker_publish() at the log's end turns the feed on again.
 */
typedef struct broker_feed {
    const char *consumer; /* whose checkpoint moves with the feed */
    /*
     * Called by the writer, inside the transaction, for a created task (its strings borrowed
     * for the call): the messages to send (*out, *n, borrowed until finish()) and a token for
     * finish(). False (out of memory, say) turns the feed off, this task included.
     */
    bool (*take)(void *ctx, const change_insert *task, const broker_message **out, size_t *n,
                 void **token);
    /* Called by the writer once the transaction committed (true) or the write was undone. */
    void (*finish)(void *ctx, void *token, bool committed);
    void *ctx;
} broker_feed;

/* Feed f->consumer (f copied) from the writer's next write on; STORE_CONFLICT when another
 * consumer is fed already. */
store_rc broker_set_feed(broker *b, const broker_feed *f);
/* Stop feeding the consumer, if it is the one fed, its checkpoint saved past what it was fed;
 * once it returns, take() and finish() are not called again. */
store_rc broker_unset_feed(broker *b, const char *consumer);
/* Whether the writer feeds the consumer now, so that its own reading can rest. */
bool broker_feed_on(broker *b, const char *consumer);

/* ---- queues ------------------------------------------------------------ */

typedef struct queue_message {
    int64_t id;
    int receive_count;       /* with this receive; also the receipt */
    int64_t sent_ms;         /* Unix milliseconds by the wall clock */
    int64_t hidden_until_ms; /* by the steady clock: this receive hides it until then */
    char *task_id;
    char *body;
    char task_type[TASK_TYPE_MAX + 1];            /* "" when the message has none */
    char trace[TRACECTX_TRACEPARENT_LEN + 1];     /* the producer's traceparent, or "" */
    char tracestate[TRACECTX_TRACESTATE_MAX + 1]; /* the tracestate that goes with it, or "" */
    /* broker_receive_and_claim() only: the claim's outcome, and the task's status before it */
    store_rc claim;
    task_status status_before;
} queue_message;

/*
 * Receive up to max visible messages of queue q, hiding them for its
 * visibility timeout. A message received max_receive_count times already
 * moves to the dead-letter queue instead, and its task (unless finished)
 * becomes FAILED saying so. *next_ms gets when the next message becomes
 * visible (INT64_MAX if none) when nothing was received; a receive that cannot read it fails.
 *
 * A queue's deadlines (when a message is visible, when it expires; *next_ms) are kept by the
 * steady clock (clock_steady_ms()), so that a step of the wall clock neither shows a message
 * that a handler is still running nor hides one for the step's length.
 */
store_rc broker_receive(broker *b, const queue_config *q, size_t max, queue_message **out,
                        size_t *n, int64_t *next_ms);
void queue_messages_free(queue_message *m, size_t n);

/*
 * broker_receive(), and in the same transaction claim each message's task
 * (CREATED -> IN_PROGRESS, "Task started", as store_update_task() would):
 * one commit instead of two on the way to a handler. Each message's claim
 * and status_before say what happened; a lost (relaxed) claim is simply made
 * again on redelivery. The messages are hidden for hide_s seconds when that is longer than the
 * queue's visibility timeout: a runner's, for its first run (its timeout and margin), so that a
 * batch taken late (the receive committed under load, the thread scheduled late) is not received
 * again before that run begins.
 */
store_rc broker_receive_and_claim(broker *b, const queue_config *q, size_t max, unsigned hide_s,
                                  queue_message **out, size_t *n, int64_t *next_ms);

/*
 * A standing receive: a thread with nothing to receive leaves one with the writer before it
 * sleeps, and the writer makes it (as broker_receive_and_claim() would) inside the transaction
 * of the next commit that makes messages of its queue visible — the creating one, for a task
 * the writer's feed publishes. The thread, woken by that commit, takes back what was received.
 * From a created task to its handler, this saves the thread's look, its receive's transaction
 * and the wait for that commit.
 *
 * The writer wakes a standing thread only when a commit concerns it (broker_stand_wait()), so
 * a message wakes the thread that received it, not every idle thread of every queue.
 */
typedef struct broker_standing {
    const queue_config *queue; /* the caller's, as for a receive */
    size_t max;
    unsigned hide_s; /* as broker_receive_and_claim() takes it */
    /* the broker's, from broker_stand() to broker_sit() */
    bool taking;        /* the writer is receiving for it, in a transaction not yet settled */
    bool failed;        /* that receive failed: the thread receives itself */
    bool wake;          /* the last commit concerns it: woken once the writers are answered */
    bool wake_if_left;  /* so it does if its queue still holds visible messages then */
    bool woken;         /* (under the broker's lock) */
    int64_t until_ms;   /* when its broker_stand_wait() ends by itself (steady ms) */
    queue_message *got; /* what was received for it, committed */
    size_t n_got;
    pthread_cond_t cv;
    struct broker_standing *next, *next_taking;
} broker_standing;

/* Leave s (queue and max set) with the writer; s must stay in place until broker_sit(). */
void broker_stand(broker *b, broker_standing *s);
/*
 * Sleep (between broker_stand() and broker_sit()) until a commit concerns s — the writer
 * received for it, or its receive failed, or the commit left messages of its queue visible,
 * or made one due before this wait would end — or broker_wake_all(), or timeout_ms. *gen as
 * broker_wait() takes it for messages: when the generation moved since it was noted, the
 * thread may have missed a commit before it stood, and the call returns at once.
 */
void broker_stand_wait(broker *b, broker_standing *s, uint64_t *gen, int timeout_ms);
/* Take s back, with the messages received for it (*n 0: none; free with
 * queue_messages_free): once it returns, the writer no longer receives for s. */
void broker_sit(broker *b, broker_standing *s, queue_message **out, size_t *n);

/*
 * When queue's next message can be received, from a read (no write transaction): *visible_ms
 * gets the earliest visible_ms of its messages — now or earlier when one is ready — or
 * INT64_MAX when it holds none. Milliseconds of the steady clock, as the queue keeps them.
 */
store_rc broker_next_visible(broker *b, const char *queue, int64_t *visible_ms);

/* The name and message count of the i-th queue that has held messages since the store opened,
 * declared or not, in no set order: false past the last. */
bool broker_queue_nth(broker *b, size_t i, char *name, size_t len, int64_t *messages);

/* Delete received messages (a stale receipt is ignored). */
store_rc broker_delete(broker *b, const queue_message *m, size_t n);
/* Give received messages back unstarted, their receive not counted toward max_receive_count:
 * visible again now, for another receive, or (release_after) in that many seconds. */
store_rc broker_release(broker *b, const queue_message *m, size_t n);
store_rc broker_release_after(broker *b, const queue_message *m, size_t n, unsigned seconds);
/* Keep received messages hidden for another seconds from now. stale (n entries, or NULL) says
 * which receipts were stale — the message received again since, its hide having run out, or gone
 * (dead-lettered, deleted): no longer the receiver's to run or delete — and is all false when the
 * call fails. */
store_rc broker_extend(broker *b, const queue_message *m, size_t n, unsigned seconds, bool *stale);

/* A queue's depths, from counters the writer keeps (queue_depths.h): no row is read. */
store_rc broker_queue_stats(broker *b, const char *queue, queue_stats *out);
/* Change records after the consumer's checkpoint (newest sequence number less it). */
store_rc broker_stream_lag(broker *b, const char *consumer, int64_t *lag);

/*
 * Move every message of dead-letter queue dlq back to queue target, in steps of 1,000 (one
 * write each, the next submitted from the last one's done), under new ids, visible at once and
 * kept for retention seconds (target's) from then; the tasks their move to dlq failed become
 * CREATED again (one failed otherwise, cancelled say, stays FAILED). Fills w (the caller has set
 * done and user; the names and moved are borrowed until done) and submits it; w->rc is the outcome
 * and *moved the count when done() runs. A step that fails ends the redrive with its code, the
 * steps before it staying moved (*moved 0; a warning says how many, if any). A message whose task
 * can never be read (SQLITE_CORRUPT, SQLITE_NOTADB) stays in dlq, logged at ERROR, uncounted, and
 * the redrive goes on past it. STORE_ERROR when out of memory: nothing was submitted.
 */
store_rc broker_redrive_submit(broker *b, const char *dlq, const char *target, unsigned retention,
                               store_write *w, int64_t *moved);

/*
 * One step of housekeeping, as one write: delete finished tasks whose ttl has passed and that
 * finished more than retention_grace ago (REMOVE records), drop messages past retention (failing
 * their tasks), trim change records every named consumer has passed (once event_replay old), each
 * up to a bound, so that a step holds the writer for milliseconds however much is due. *removed
 * gets the number of tasks deleted; *more is true when a part stopped at its bound: step again
 * (other writes go between). removed and more may be NULL.
 */
store_rc broker_sweep(broker *b, const config *c, int64_t *removed, bool *more);
/*
 * Whether broker_sweep() would find anything to do now, from reads only: *due is false when
 * no task is past its ttl, no message past its retention and no change record trimmable.
 */
store_rc broker_sweep_due(broker *b, const config *c, bool *due);
/*
 * Note where the queue clock (the steady clock) is now, as one write, for the next open after a
 * crash: while the wall clock is behind it, the messages sent tell nothing of it (their sends
 * follow the wall clock), and a crash leaves no note of a stop. A note further ahead already kept
 * (one an open could not move the messages by) stays.
 */
store_rc broker_note_queue_clock(broker *b);

/*
 * Sleep until a commit appends change records (changes) or makes messages
 * visible (messages: sent without delay, released, redriven, moved to a
 * dead-letter queue) after *gen, or until timeout_ms. *gen is updated; pass
 * 0 the first time to return at once with the current generation. Messages
 * that become visible because time passes (a delay, a visibility timeout)
 * wake nobody: wait until broker_next_visible()'s instant for those.
 */
void broker_wait(broker *b, bool changes, uint64_t *gen, int timeout_ms);
/* Wake every waiter (shutdown). */
void broker_wake_all(broker *b);

#endif
