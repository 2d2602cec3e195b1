/*
 * sqlite_internal — what the SQLite adapter's files share: the store's
 * state, and what each file gives the files above it, grouped by the file
 * that defines it, from the ground up: sqlite_db.c (statement helpers,
 * connections, the read pool), sqlite_tasks.c (the task writes),
 * sqlite_broker.c (the change stream and queues). store_sqlite.c, on top,
 * calls them all; what they call back is handed down to them (sq_feed.record,
 * sq_standing_receive()'s apply). Only files in src/store/ include this, and test_broker,
 * which checks sq_task_columns_hold() alone.
 */
#ifndef TASKD_SQLITE_INTERNAL_H
#define TASKD_SQLITE_INTERNAL_H

#include "core/sbuf.h"
#include "core/uuid7.h"
#include "broker.h"
#include "queue_depths.h"
#include "task_cache.h"
#include "store.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#define TASK_COLUMNS "id, task_type, status, status_msg, created_time, updated_time, ttl"
/* A task's data, from its row or, kept apart (schema 9), from its task_data row; t names the
 * task table in the statement */
#define TASK_DATA_OF(t)                                                                            \
    "CASE WHEN " t ".data_apart THEN (SELECT d.data FROM task_data d WHERE d.id = " t              \
    ".id) ELSE " t ".data END"
#define TASK_COLUMNS_FULL TASK_COLUMNS ", " TASK_DATA_OF("tasks") ", result, trace, tracestate"
/* Where each column of TASK_COLUMNS(_FULL) stands in a statement that selects them first, in their
 * order there; a statement's own columns after them start at TC_END_FULL (TC_END after
 * TASK_COLUMNS alone) */
enum task_col {
    TC_ID,
    TC_TYPE,
    TC_STATUS,
    TC_MSG,
    TC_CREATED,
    TC_UPDATED,
    TC_TTL,
    TC_END, /* TASK_COLUMNS_FULL's more: */
    TC_DATA = TC_END,
    TC_RESULT,
    TC_TRACE,
    TC_TRACESTATE,
    TC_END_FULL,
};

/*
 * The broker's statements (sqlite_broker.c) on one connection: each is
 * prepared there the first time it runs and kept until the connection closes.
 */
#define SQ_BROKER_STMTS 32
typedef struct sq_stmt_cache {
    sqlite3_stmt *st[SQ_BROKER_STMTS];
} sq_stmt_cache;

/* A listing's statements: every task, or one type's tasks of one status (tasks_by_type_status);
 * each also with a before id (+ 1). */
enum { LIST_ALL = 0, LIST_LEG = 2, LIST_STMTS = 4 };

/* A read connection with its prepared statements. */
typedef struct reader {
    sqlite3 *db;
    sq_stmt_cache broker;      /* the broker's reads */
    sqlite3_stmt *get;         /* one task by id */
    sqlite3_stmt *history;     /* one task's history, oldest first */
    sqlite3_stmt *list[4];     /* LIST_ALL or LIST_LEG, each + 1 with a before id */
    sqlite3_stmt *begin, *end; /* one read transaction around a listing's legs */
    struct reader *next;       /* free list */
    struct reader *all_next;   /* every reader, for closing */
} reader;

typedef struct sqlite_store sqlite_store;

/* The writer's feed of one stream consumer (broker_feed); writer thread only, but for `on`. */
typedef struct sq_feed {
    /* told of every change record the writer appends: sq_feed_record(), set at open. The task
     * writes (sqlite_tasks.c) stand below the broker, whose feed sends a creation's messages */
    store_rc (*record)(sqlite_store *s, int64_t seq, const char *event, const task *created);
    broker_feed f;
    char consumer[CONFIG_NAME_MAX + 1];
    bool set;
    atomic_bool on;
    int64_t cp;       /* the last record the consumer has had, while on */
    int64_t saved_cp; /* the checkpoint as committed: the batch's cp is written when it moved */
    struct sq_take {
        void (*finish)(void *ctx, void *token, bool committed);
        void *ctx, *token;
    } * takes; /* this batch's, finished after its commit with the callbacks they came from */
    size_t n_takes, cap_takes;
} sq_feed;

struct sqlite_store {
    store base;
    char *path;
    int lock_fd;
    bool made_file; /* the open made the file (not there before): a failed open removes it */

    /* writer side; the connection is used only by the writer thread */
    sqlite3 *wdb;
    bool sync_full; /* --sync full: durable writes wait for the disk */
    bool syncing;   /* the connection's current synchronous setting is FULL */
    sqlite3_stmt *w_begin, *w_commit, *w_rollback, *w_savepoint, *w_release, *w_rollback_to;
    sqlite3_stmt *w_get, *w_insert, *w_data_put, *w_update, *w_change, *w_idem_get, *w_idem_put,
        *w_idem_purge;
    sqlite3_stmt *w_hist_add, *w_hist_trim, *w_hist_delete, *w_hist_time;
    sqlite3_stmt *w_lease;  /* a renewed claim's lease */
    sq_stmt_cache w_broker; /* the broker's writes */
    sbuf w_image;           /* sq_write_change's image of a removed task, reused */
    uuid7_gen ids;
    uint8_t entropy[4096]; /* random bytes for ids, refilled in bulk (writer only) */
    size_t entropy_used;
    int64_t last_purge;
    int64_t latest_create; /* the newest creation's time, in the callers' clock */
    /* Every task type the database has held (read at open, added to by creates): a listing by
     * status alone is merged from one leg per type. Only grows, and only the writer adds to
     * it: the writer reads it without the lock, readers copy it under the lock. */
    pthread_mutex_t types_mu;
    char (*types)[TASK_TYPE_MAX + 1];
    size_t n_types, cap_types;

    pthread_t writer;
    pthread_mutex_t mu;  /* guards the write queue, stopping and the reader pool */
    pthread_cond_t wake; /* writer: work queued or stopping */
    store_write *queue_head, *queue_tail;
    atomic_uint queued; /* bumped (under mu) by every write queued: what the idle writer watches */
    bool stopping;

    reader *free_readers;
    reader *all_readers;
    int n_readers; /* opened or being opened */
    pthread_cond_t reader_free;
    bool readers_failing; /* the last read connection opened failed to (said once, at WARN) */

    uint8_t secret[16];

    /* told of committed status changes (task_type, status) and of each commit */
    store_listener listener;
    /* the tasks this batch wrote a change record of (writer thread only): after its commit the
     * cache forgets them and the listener counts their status changes */
    struct written_task {
        char id[TASK_ID_LEN + 1];
        char task_type[TASK_TYPE_MAX + 1];
        task_status status;
        bool created, removed, same_status;
    } * batch_written;
    size_t n_batch_written, cap_batch_written;
    bool batch_written_lost; /* out of memory noting one: the commit forgets every task */

    /* what the last batch did, for the wake-ups after its commit (writer thread only) */
    bool batch_wrote_changes;
    int64_t batch_last_seq; /* the seq of the batch's last change record kept so far */
    bool batch_sent_messages;
    /* the greatest message id given, to a send or a move (writer thread only): ids are never
     * given twice while taskd runs, so that a receipt (id, receive_count) a runner holds names
     * one receive of one message, not a later one that took the id of a message deleted
     * meanwhile, nor the same one's receive in the queue it moved to */
    int64_t last_message_id;
    /* where this process last noted the queue clock in meta (steady ms, 0: not yet; writer
     * thread only), so that a batch while the wall clock is behind notes it when it is stale */
    int64_t queue_clock_noted;

    /* whether writes succeed: the SQLite code of the last write that failed for a reason
     * that does not pass by itself (SQLITE_FULL, SQLITE_IOERR, ...), 0 once one commits */
    pthread_mutex_t health_mu;
    int write_fault;
    int batch_fault;       /* this batch's (writer thread only) */
    int64_t last_fault_ms; /* monotonic time of the last such failure (writer thread only) */
    int64_t last_room_ms;  /* ... and of the last look for room after SQLITE_FULL (the same) */

    /* the queues' depths, and what this batch did to them (applied after its commit) */
    queue_depths *depths;
    depth_log depth_log;

    sq_feed feed;
    task_cache *cache; /* tasks read lately by id */
    /* wake-ups for the local pipeline: new change records, new visible messages; each kind
     * has its own condition, so a commit wakes only the threads it gives work */
    pthread_mutex_t notify_mu;
    pthread_cond_t changes_cv;
    pthread_cond_t messages_cv;
    uint64_t changes_gen;     /* bumped after a commit that appended change records */
    uint64_t messages_gen;    /* bumped after a commit that made messages visible */
    bool wake_changes;        /* the last batch's wake-ups, due once its writers are answered */
    bool wake_messages;       /* (writer thread only) */
    _Atomic int64_t last_seq; /* the last committed change record's seq, set before the bump */

    /* standing receives (broker_stand()), made by the writer before a commit */
    pthread_mutex_t standing_mu;
    pthread_cond_t standing_settled; /* no receive the writer was making is unsettled */
    broker_standing *standing;

    /* tasks whose rows a sweep cannot read (a damaged database): finished ones past their ttl,
     * or ones whose lease ran out; their ids in strcmp() order: said once each, then passed over
     * by the sweeps and the due check until taskd starts again. Added to under unreadable_mu */
    pthread_mutex_t unreadable_mu;
    char **unreadable;
    size_t n_unreadable, cap_unreadable;
};

/*
 * The adapter's own work (the local queues and change stream), run by the
 * writer inside its transaction, in the same group commit as the port's
 * writes: a store_write whose adapter_data points to an sq_job.
 */
typedef struct sq_job {
    store_rc (*apply)(sqlite_store *s, void *arg);
    void *arg;
} sq_job;

/* ---- sqlite_db.c: statement helpers, connections, the read pool ---- */

/* SQLite result code to store result code. */
store_rc sq_rc_of(int sqlite_rc);
/* Column col's text, borrowed; NULL for SQL NULL, or with *failed set when SQLite's own copy
 * of it failed (no memory), which must not pass for NULL. */
const char *sq_column_text(sqlite3_stmt *st, int col, bool *failed);
/* A copy of column col, which may be NULL, into *out (NULL for SQL NULL); false when the column
 * holds a value and there is no memory for its copy (which must not pass for NULL). */
bool sq_dup_nullable_col(sqlite3_stmt *st, int col, char **out);
/* An integer column, or TASK_NULL_TIME for SQL NULL. */
int64_t sq_time_col(sqlite3_stmt *st, int col);
/* Bind a time (TASK_NULL_TIME binds NULL) / a string (NULL binds NULL). */
void sq_bind_time(sqlite3_stmt *st, int idx, int64_t t);
void sq_bind_text(sqlite3_stmt *st, int idx, const char *s);
/* Step a statement that returns nothing useful, then reset it; an SQLite code. */
int sq_step_done(sqlite3_stmt *st);
/* The length of path as a full path (from the working directory, through symbolic links), as SQLite
 * makes it to open a database, and the longest it opens one at; false when it cannot tell (the open
 * then says what is wrong with the path). */
bool sq_path_length(const char *path, size_t *len, size_t *max);
/* Open a connection to path (flags as sqlite3_open_v2()'s, each connection used by one thread
 * at a time), with taskd's settings; an SQLite code. */
int sq_open_conn(const char *path, int flags, sqlite3 **out);
/* Prepare a statement kept for the connection's life. */
int sq_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st);
/* Finalize a connection's cached statements (before it closes). */
void sq_stmt_cache_clear(sq_stmt_cache *c);
/* Whether st's first columns are TASK_COLUMNS(_FULL)'s where enum task_col places them, and its
 * own after them the columns named in own (NULL-terminated; NULL: none), each known by its name:
 * checked where such a statement is prepared, so that one whose columns drifted from the enum
 * fails there rather than read one column for another. */
bool sq_task_columns_hold(sqlite3_stmt *st, bool full, const char *const *own);
/* The writer's read of a task before it changes it: TASK_COLUMNS_FULL, then its own columns, in
 * the order of enum w_get_col and named by W_GET_OWN */
#define W_GET_SQL                                                                                  \
    "SELECT " TASK_COLUMNS_FULL ", hist_n, claim_key, claim_expires FROM tasks WHERE id = ?1"
enum w_get_col { WG_HIST_N = TC_END_FULL, WG_CLAIM_KEY, WG_CLAIM_EXPIRES };
#define W_GET_OWN ((const char *const[]){"hist_n", "claim_key", "claim_expires", NULL})
/* Read the current row of a TASK_COLUMNS(_FULL) query into t; false when a column was not copied
 * (no memory), or the row is damaged (sq_task_row_damaged()). */
bool sq_read_task_row(sqlite3_stmt *st, task *t, bool full);
/* Why the current row of a TASK_COLUMNS_FULL query is one only a damaged or hand-edited database
 * holds, or NULL: it lacks a value every task row holds (type, status, message, data: its data
 * kept apart, and that row gone), or its id or type does not fit a task (task_creation_unfit(): a
 * cut id names another task, or none). NULL with *failed set when its id or type was not copied
 * (no memory). */
const char *sq_task_row_damaged(sqlite3_stmt *st, bool *failed);
/* The tasks the sweeps pass over, whose rows they cannot read (sqlite_store.unreadable): whether
 * id is one, and how many there are. */
bool sq_passed_over(sqlite_store *s, const char *id);
size_t sq_n_passed_over(sqlite_store *s);
/* Pass over task id from now on, and say so once at ERROR, in what's words, with why its row
 * cannot be read and how many are passed over: nothing more when another pass has found it
 * since the caller looked, each id said and counted once however many passes find it at once;
 * false when out of memory. */
bool sq_pass_over(sqlite_store *s, const char *id, const char *what, const char *why);
/* Borrow / return a read connection. */
reader *sq_reader_get(sqlite_store *s);
void sq_reader_put(sqlite_store *s, reader *r);
/* Close a read connection with its statements (at close, every one of s->all_readers). */
void sq_reader_free(reader *r);
/* One read transaction on r, so that several statements read one snapshot; a store code. Every
 * begin that succeeded ends with sq_read_end(), its statements reset first. */
store_rc sq_read_begin(reader *r);
void sq_read_end(reader *r);

/* ---- sqlite_tasks.c: the writer's task writes, with their change records and history ---- */

/* How a change record keeps its images (changes.slim). */
enum {
    CHANGE_WHOLE = 0, /* new_image and old_image whole (a REMOVE; any record before schema 5) */
    CHANGE_SLIM_MODIFY = 1, /* a MODIFY's images without data and trace (schemas 5 and 6) */
    CHANGE_PARTS = 2,       /* no images: task_type and the new_* and old_* parts (schema 7) */
};
/* Writer thread only: append the change record of a creation (old_image NULL), a change (both)
 * or a removal (new_image NULL). */
store_rc sq_write_change(sqlite_store *s, const char *event, const task *new_image,
                         const task *old_image, int64_t now);
/* Writer thread only: forget a deleted task's history. */
store_rc sq_history_delete(sqlite_store *s, const char *id);
/* Note that the database holds tasks of type t (sqlite_store.types); false when out of memory.
 * The writer, or the opening thread before it starts. */
bool sq_note_type(sqlite_store *s, const char *t);
/* Writer thread only: apply a creation (STORE_WRITE_CREATE) inside the open transaction. */
store_rc sq_apply_create(sqlite_store *s, store_write *w);
/* Writer thread only: apply a status change (STORE_WRITE_UPDATE) inside the open transaction. */
store_rc sq_apply_update(sqlite_store *s, store_write *w);
/* Writer thread only: apply a redelivery's claim (STORE_WRITE_RECLAIM) inside the open
 * transaction. */
store_rc sq_apply_reclaim(sqlite_store *s, store_write *w);
/*
 * Writer thread only: record that a task IN_PROGRESS is claimed again (a
 * redelivery runs it again): its status_msg (msg) and updated_time, a history
 * entry and a MODIFY change record; STORE_CONFLICT when it is not IN_PROGRESS.
 */
store_rc sq_claim_again(sqlite_store *s, const char *id, const char *msg, int64_t now);
/* Writer thread only: change a task's status outside the PATCH rules (DLQ, redrive). */
store_rc sq_force_status(sqlite_store *s, const char *id, task_status status, const char *msg,
                         int64_t now);

/* ---- sqlite_broker.c: the feed, the standing receives, the queues at open and close ---- */

/* Writer: a change record just written, for the feed: messages of a created task, the
 * consumer's place moved. sq_write_change() calls it as sq_feed.record. */
store_rc sq_feed_record(sqlite_store *s, int64_t seq, const char *event, const task *created);
/* Writer, before the commit: make the standing receives of the queues the batch made messages
 * visible in, each applied by apply in a savepoint of its own (its one target: the writer's
 * apply_write()); after it (or the rollback): settle them. */
void sq_standing_receive(sqlite_store *s, void (*apply)(sqlite_store *s, store_write *w));
void sq_standing_settle(sqlite_store *s, bool committed);
/* Writer, once the committed batch's writers are answered: wake the standing threads it
 * concerns (broker_stand_wait()). */
void sq_standing_wake(sqlite_store *s);
/* Writer: write the fed consumer's checkpoint if the batch moved it (before the commit). */
store_rc sq_feed_save(sqlite_store *s);
/* Writer: finish the feed's takes from the first one on, committed or undone. */
void sq_feed_finish(sqlite_store *s, size_t first, bool committed);

/* The change log's last seq (the greatest, or meta's when a trim emptied the log) into s->last_seq,
 * and the greatest message id into s->last_message_id, at open; false when they cannot be read. */
bool sq_last_ids_load(sqlite_store *s);
/* Count the messages of every queue into s->depths (at open, and if the counters were lost). */
store_rc sq_depths_load(sqlite_store *s);
/* At close, after the writer's last commit: note where the queue clock is (the steady clock's
 * now) in meta, for sq_messages_follow_clock_back() at the next open, unless a note further ahead
 * is kept there (one an open could not move the messages by). Nothing when it cannot be written:
 * the next open reads the messages instead. */
void sq_note_queue_clock(sqlite_store *s);
/* Writer, in the batch's transaction, before its commit: while the wall clock is a second or more
 * behind the queue clock (stepped back since taskd started), note where that clock is, as
 * sq_note_queue_clock() does, unless this process noted it less than a second ago: the batch may
 * have set deadlines by it, and a crash after its commit leaves no note of a stop. A comparison
 * of the two clocks otherwise. */
void sq_note_queue_clock_behind(sqlite_store *s);
/* At open, before the counting: when the queue clock was a second or more ahead of now where the
 * last taskd stopped (noted by sq_note_queue_clock(), or before a crash by
 * sq_note_queue_clock_behind() or broker_note_queue_clock(); taken from meta with the move, in one
 * transaction), or at the newest send, by both the send's wall-clock time and its expiry less its
 * queue's retention in c (c NULL: the messages do not tell), the clock went back since, by the
 * further at least; every message's visibility and expiry, and its send when ahead of the wall
 * clock now, move back as far
 * (*back_ms), so that the queues' deadlines keep their lengths on the clock taskd reads now. The
 * count moved, or -1 when it cannot be done (SQLite's reason in err; the note is kept). */
int64_t sq_messages_follow_clock_back(sqlite_store *s, const config *c, int64_t *back_ms, char *err,
                                      size_t errlen);
/* At open, before the counting: make visible the messages hidden more than bound_ms ahead of
 * now (the clock went back); the count made visible, or -1 when it cannot be written. */
int64_t sq_unhide_past(sqlite_store *s, int64_t bound_ms);

#endif
