/*
 * sqlite_broker — the local change stream and queues, in the task database;
 * see broker.h.
 *
 *   messages     one row per message: id (given by the writer, at a send and
 *                again at a move to or from a dead-letter queue), queue, task
 *                id, the task's type, the producer's traceparent and
 *                tracestate, body, sent_ms (the wall clock), visible_ms (when
 *                it may next be received) and expires_ms (its retention), both
 *                by the steady clock, receive_count, released (receives given
 *                back unstarted, which max_receive_count does not count), and
 *                failed_task (its move to the dead-letter queue failed its
 *                task, which a redrive makes CREATED again). A receive hides a
 *                message by moving visible_ms forward; the (id, receive_count)
 *                pair is the receipt, so a worker whose visibility ran out
 *                cannot delete the message another worker has since received.
 *   checkpoints  the last change-record sequence number each consumer has
 *                finished with.
 *
 * Writes run as jobs (sq_job) in the store's group commit; reads
 * use the store's read connections. Every write that moves a message notes
 * it in the batch's depth_log, so the queue depths (queue_depths.h) follow
 * the commits without counting rows. Statements are prepared on a connection
 * the first time they run there and kept with it (sq_stmt_cache): at low load
 * a batch is a single task, and parsing SQL cost more than running it.
 */
#include "broker.h"
#include "core/errbuf.h"
#include "util/clock.h"

#include "core/attrval.h"
#include "core/change_record.h"
#include "core/json_util.h"
#include "sqlite_internal.h"
#include "util/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* What one sweep step does at most, so that it holds the writer for milliseconds, not seconds:
 * expired tasks deleted, expired messages dropped, change records trimmed. */
#define SWEEP_BATCH    500
#define SWEEP_MESSAGES 500
#define TRIM_BATCH     5000
/* Messages a redrive step moves: a dead-letter queue of 100,000 moves in 100 writes. */
#define REDRIVE_BATCH 1000

broker *broker_of(store *s)
{
    return (broker *)s;
}

static sqlite_store *sq(broker *b)
{
    return (sqlite_store *)b;
}

store *broker_store(broker *b)
{
    return &sq(b)->base;
}

/* Run fn in the writer's transaction and wait for the commit. */
static store_rc run_write(broker *b, store_rc (*fn)(sqlite_store *s, void *arg), void *arg,
                          bool relaxed)
{
    sq_job job = {.apply = fn, .arg = arg};
    store_write w = {.relaxed = relaxed, .adapter_data = &job};
    return store_write_wait(&sq(b)->base, &w);
}

/* A change row's columns, in the order of enum change_col; BST_CHANGES_AFTER_TASK adds the
 * task row's (NULL when it is gone). */
#define CHANGE_COLUMNS                                                                             \
    "c.seq, c.event_name, c.task_id, c.new_image, c.old_image, c.created_time, c.slim, "           \
    "c.task_type, c.new_status, c.new_msg, c.new_time, c.new_result, c.old_status, c.old_msg, "    \
    "c.old_time, c.old_result"
#define CHANGE_TASK_COLUMNS                                                                        \
    "t.task_type, " TASK_DATA_OF("t") ", t.trace, t.data_image, t.created_time, t.ttl, "           \
                                      "t.tracestate"

/* The last seq given: the log's greatest, or the one kept when a trim emptied the log. */
#define LAST_SEQ                                                                                   \
    "max(coalesce((SELECT max(seq) FROM changes), 0), "                                            \
    "coalesce((SELECT value FROM meta WHERE name = 'changes_seq'), 0))"

/* The names of the queues there are messages in, as q(name) (NULL last), found by
 * messages_by_visibility: a probe for each queue, as load_types() finds the task types */
#define QUEUE_NAMES                                                                                \
    "q(name) AS (SELECT min(queue) FROM messages UNION ALL "                                       \
    "SELECT (SELECT min(queue) FROM messages WHERE queue > q.name) FROM q "                        \
    "WHERE q.name IS NOT NULL)"

/* A change record a trim may delete, with trim_bounds()'s ?1 and ?2: passed by every consumer
 * and event_replay old. One that a consumer has not read stays, however old: its task is still
 * to be published. */
#define TRIMMABLE "(seq <= ?1 AND created_time <= ?2)"

enum change_col {
    CC_SEQ,
    CC_EVENT,
    CC_TASK_ID,
    CC_NEW_IMAGE,
    CC_OLD_IMAGE,
    CC_TIME,
    CC_SLIM,
    CC_TYPE,
    CC_NEW_SIDE, /* status, msg, time, result */
    CC_OLD_SIDE = CC_NEW_SIDE + 4,
    CT_TYPE = CC_OLD_SIDE + 4, /* the task row's */
    CT_DATA,
    CT_TRACE,
    CT_DATA_IMAGE,
    CT_CREATED,
    CT_TTL,
    CT_TRACESTATE,
};

/* The broker's statements: the slots of an sq_stmt_cache. */
typedef enum bst {
    BST_CHECKPOINT,
    BST_CHANGES_AFTER,
    BST_CHANGES_AFTER_TASK,
    BST_REMOVED,
    BST_CHANGE_BOUNDS,
    BST_LAST_SEQ,
    BST_LAST_MESSAGE_ID,
    BST_LAST_SEQ_PUT,
    BST_PUBLISH,
    BST_CHECKPOINT_PUT,
    BST_TASK_STATUS,
    BST_RECEIVE,
    BST_HIDE,
    BST_MOVE,
    BST_NEXT_VISIBLE,
    BST_RECEIPT,
    BST_RECEIPT_DELETE,
    BST_RECEIPT_EXTEND,
    BST_RECEIPT_RELEASE,
    BST_DEPTHS,
    BST_REDRIVE_BATCH,
    BST_SWEEP_TASKS,
    BST_TASK_DELETE,
    BST_SWEEP_MESSAGES,
    BST_MESSAGE_DELETE,
    BST_TRIM_CHANGES,
    BST_DUE_TASKS,
    BST_DUE_MESSAGES,
    BST_DUE_CHANGES,
    BST_COUNT
} bst;

_Static_assert(BST_COUNT <= SQ_BROKER_STMTS, "sq_stmt_cache has a slot for every statement");

static const char *const bst_sql[BST_COUNT] = {
    [BST_CHECKPOINT] = "SELECT seq FROM checkpoints WHERE consumer = ?1",
    [BST_CHANGES_AFTER] = "SELECT " CHANGE_COLUMNS " FROM changes c "
                          "WHERE c.seq > ?1 ORDER BY c.seq LIMIT ?2",
    /* and what never changes in its task, while the task row is there */
    [BST_CHANGES_AFTER_TASK] = "SELECT " CHANGE_COLUMNS ", " CHANGE_TASK_COLUMNS
                               " FROM changes c LEFT JOIN tasks t ON t.id = c.task_id "
                               "WHERE c.seq > ?1 ORDER BY c.seq LIMIT ?2",
    /* what a removed task's records take from it: its REMOVE record (a task has one) */
    [BST_REMOVED] = "SELECT old_image FROM changes WHERE task_id = ?1 AND event_name = 'REMOVE'",
    [BST_CHANGE_BOUNDS] = "SELECT " LAST_SEQ ", (SELECT min(seq) FROM changes)",
    /* read once, at open: the writer keeps it from there (broker_last_seq()) */
    [BST_LAST_SEQ] = "SELECT " LAST_SEQ,
    /* set by every trim, for when it empties the log */
    [BST_LAST_SEQ_PUT] = "INSERT OR REPLACE INTO meta (name, value) VALUES ('changes_seq', ?1)",
    [BST_LAST_MESSAGE_ID] = "SELECT coalesce(max(id), 0) FROM messages",
    /* the id is given by the writer, never twice (sqlite_store.last_message_id): SQLite's
     * own would be the greatest + 1, again the id of a newest message deleted since */
    [BST_PUBLISH] =
        "INSERT INTO messages (queue, task_id, task_type, trace, body, sent_ms, "
        "visible_ms, expires_ms, tracestate, id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    [BST_CHECKPOINT_PUT] = "INSERT OR REPLACE INTO checkpoints (consumer, seq) VALUES (?1, ?2)",
    [BST_TASK_STATUS] = "SELECT status, trace FROM tasks WHERE id = ?1",
    [BST_RECEIVE] =
        "SELECT id, receive_count, sent_ms, task_id, body, visible_ms, task_type, trace, "
        "receive_count - released, tracestate, expires_ms FROM messages "
        "WHERE queue = ?1 AND visible_ms <= ?2 "
        "ORDER BY visible_ms, id LIMIT ?3",
    [BST_HIDE] = "UPDATE messages SET visible_ms = ?2, receive_count = ?3 WHERE id = ?1",
    /* under a new id (?7, as a send's): its receives counted afresh, a receipt from before the
     * move would name its first receive in the new queue */
    [BST_MOVE] = "UPDATE messages SET queue = ?2, visible_ms = ?3, receive_count = 0, "
                 "released = 0, expires_ms = ?4, failed_task = ?5, sent_ms = ?6, id = ?7 "
                 "WHERE id = ?1",
    /* messages_by_visibility (queue, visible_ms): one index probe */
    [BST_NEXT_VISIBLE] = "SELECT min(visible_ms) FROM messages WHERE queue = ?1",
    [BST_RECEIPT] = "SELECT queue, visible_ms FROM messages WHERE id = ?1 AND receive_count = ?2",
    /* one statement: where the message was comes back with its deletion */
    [BST_RECEIPT_DELETE] = "DELETE FROM messages WHERE id = ?1 AND receive_count = ?2 "
                           "RETURNING queue, visible_ms",
    [BST_RECEIPT_EXTEND] = "UPDATE messages SET visible_ms = ?3 "
                           "WHERE id = ?1 AND receive_count = ?2",
    [BST_RECEIPT_RELEASE] = "UPDATE messages SET visible_ms = ?3, released = released + 1 "
                            "WHERE id = ?1 AND receive_count = ?2",
    /* The hidden ones by messages_by_visibility, a probe for each queue (QUEUE_NAMES), and each
     * queue's visible ones as its count less its hidden ones, counted over that index alone
     * (covering: no message row is read), where a look at every message row grouped them all by
     * visibility and receive (docs/design.md, "A start") */
    [BST_DEPTHS] =
        "WITH RECURSIVE " QUEUE_NAMES ", hidden AS (SELECT queue, visible_ms, "
        "receive_count > 0 AS received, count(*) AS n FROM messages WHERE queue IN "
        "(SELECT name FROM q WHERE name IS NOT NULL) AND visible_ms > ?1 GROUP BY 1, 2, 3) "
        "SELECT queue, visible_ms, received, n FROM hidden UNION ALL "
        "SELECT queue, 0, 0, count(*) - coalesce((SELECT sum(n) FROM hidden h "
        "WHERE h.queue = m.queue), 0) FROM messages m GROUP BY queue",
    /* messages_by_visibility: a step reads its batch, the next one the batch after it */
    [BST_REDRIVE_BATCH] =
        "SELECT id, visible_ms, receive_count, task_id, failed_task FROM messages "
        "WHERE queue = ?1 LIMIT ?2",
    /* by tasks_by_ttl: only finished tasks with a ttl, in ttl order. No LIMIT: the step reads
     * rows as it goes, and its caller stops at its bound, past the rows passed over
     * (sqlite_store.unreadable), however many another pass adds meanwhile */
    [BST_SWEEP_TASKS] = "SELECT " TASK_COLUMNS_FULL " FROM tasks "
                        "WHERE finished_time IS NOT NULL AND ttl IS NOT NULL AND ttl < ?2 "
                        "AND finished_time < ?1",
    [BST_TASK_DELETE] = "DELETE FROM tasks WHERE id = ?1",
    /* not one in flight: its run decides its task (a message expires once it is visible) */
    [BST_SWEEP_MESSAGES] = "SELECT id, queue, task_id, visible_ms, receive_count "
                           "FROM messages WHERE expires_ms < ?1 AND visible_ms <= ?1 LIMIT ?2",
    [BST_MESSAGE_DELETE] = "DELETE FROM messages WHERE id = ?1",
    /* the log is trimmed from its start, TRIM_BATCH seqs at a time (a range of the rowid) */
    /* up to the first record it must keep, never past it: a record's time is its write's,
     * taken before the writer gave its seq, so a later seq can be older by a second, and
     * deleting it alone would leave a hole that a client resuming before it never learns of */
    [BST_TRIM_CHANGES] = "DELETE FROM changes WHERE seq < coalesce((SELECT min(seq) FROM changes "
                         "WHERE seq < (SELECT min(seq) FROM changes) + ?3 AND NOT " TRIMMABLE "), "
                         "(SELECT min(seq) FROM changes) + ?3)",
    /* the same conditions as sweep_tasks, sweep_messages and trim_changes, one row each (the
     * tasks' read on to the first not passed over) */
    [BST_DUE_TASKS] = "SELECT id FROM tasks WHERE finished_time IS NOT NULL AND ttl IS NOT NULL "
                      "AND ttl < ?2 AND finished_time < ?1",
    [BST_DUE_MESSAGES] = "SELECT 1 FROM messages WHERE expires_ms < ?1 AND visible_ms <= ?1 "
                         "LIMIT 1",
    /* the log's first record: trimming stops at the first one it must keep */
    [BST_DUE_CHANGES] = "SELECT 1 FROM changes WHERE seq = (SELECT min(seq) FROM changes) "
                        "AND " TRIMMABLE,
};

/*
 * Statement id on a connection, from its cache (prepared on first use); logs and returns NULL
 * on failure. Every use ends with stmt_done(), on every path: a statement left stepping would
 * hold its read transaction open.
 */
static sqlite3_stmt *stmt(sq_stmt_cache *c, sqlite3 *db, bst id)
{
    if (!c->st[id] && sq_prepare(db, bst_sql[id], &c->st[id]) != SQLITE_OK) {
        log_error("cannot prepare a broker statement", "error", sqlite3_errmsg(db), NULL);
        sqlite3_finalize(c->st[id]);
        c->st[id] = NULL;
    }
    return c->st[id];
}

/* A statement on the writer's connection / on a read connection. */
static sqlite3_stmt *wstmt(sqlite_store *s, bst id)
{
    return stmt(&s->w_broker, s->wdb, id);
}

static sqlite3_stmt *rstmt(reader *r, bst id)
{
    return stmt(&r->broker, r->db, id);
}

/* Ready a statement from stmt() (or NULL) for its next use. */
static void stmt_done(sqlite3_stmt *st)
{
    if (st) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
}

/* ---- change stream ----------------------------------------------------- */

static int64_t checkpoint_of(sqlite3_stmt *st, const char *consumer, store_rc *rc)
{
    if (!st) {
        *rc = STORE_ERROR;
        return 0;
    }
    sqlite3_bind_text(st, 1, consumer, -1, SQLITE_STATIC);
    int r = sqlite3_step(st);
    int64_t seq = r == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    *rc = r == SQLITE_ROW || r == SQLITE_DONE ? STORE_OK : sq_rc_of(r);
    stmt_done(st);
    return seq;
}

/* One row of the change log (seq, event_name, task_id, new_image, old_image, created_time, slim,
 * and with the task: its task_type, data, trace, data_image and tracestate, NULL when the task
 * row is gone),
 * borrowed for the call; false when it could not be kept (out of memory). */
typedef bool (*change_visit)(sqlite3_stmt *row, void *ctx);

/* Visit up to max change rows after seq after, in seq order; a store code. */
static store_rc visit_changes(reader *r, int64_t after, size_t max, bool with_task,
                              change_visit visit, void *ctx)
{
    sqlite3_stmt *st = rstmt(r, with_task ? BST_CHANGES_AFTER_TASK : BST_CHANGES_AFTER);
    if (!st)
        return STORE_ERROR;
    sqlite3_bind_int64(st, 1, after);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)max);
    store_rc rc = STORE_OK;
    size_t n = 0;
    int step = SQLITE_DONE;
    while (n < max && (step = sqlite3_step(st)) == SQLITE_ROW) {
        if (!visit(st, ctx)) {
            rc = STORE_ERROR;
            break;
        }
        n++;
    }
    if (rc == STORE_OK && n < max && step != SQLITE_DONE)
        rc = sq_rc_of(step);
    stmt_done(st);
    return rc;
}

typedef struct record_sink {
    reader *r;
    change_record *recs; /* room for max */
    size_t n;
    change_read mode;
} record_sink;

/* Column i's text into dst[size], cut to fit; "" for a NULL, or with *failed set as
 * sq_column_text() sets it. */
static void column_copy(sqlite3_stmt *st, int i, char *dst, size_t size, bool *failed)
{
    const char *t = sq_column_text(st, i, failed);
    size_t n = t ? strnlen(t, size - 1) : 0;
    memcpy(dst, t ? t : "", n);
    dst[n] = '\0';
}

/* Column i's text, copied; NULL for a NULL, or with *failed set when memory ran out. */
static char *column_dup(sqlite3_stmt *st, int i, bool *failed)
{
    char *copy;
    if (!sq_dup_nullable_col(st, i, &copy))
        *failed = true;
    return copy;
}

/*
 * What a record's images take from its task, which never changes: from the task row, or once
 * the row is gone from the task's REMOVE record (whole, and never trimmed before the task's
 * other records, which come before it). Strings borrowed from the row or from removed.
 */
typedef struct task_rest {
    bool known;
    bool failed; /* it could not be read (an error, or no memory): the read fails */
    bool broken; /* it never will be (a REMOVE record without the data, a task row without its
                  * data kept apart): the record is unreadable */
    int64_t created_time, ttl;
    const char *data, *data_image, *trace, *tracestate;
    json_t *removed;        /* the REMOVE record's image, parsed */
    char *removed_data_img; /* its data, as data_image */
} task_rest;

/* An image's number attribute name; TASK_NULL_TIME when it has none, or one that is not a
 * number. */
static int64_t image_number(const json_t *image, const char *name)
{
    const char *n = json_string_value(json_object_get(json_object_get(image, name), "N"));
    if (!n)
        return TASK_NULL_TIME;
    char *end;
    errno = 0;
    long long v = strtoll(n, &end, 10);
    return end != n && *end == '\0' && errno == 0 ? v : TASK_NULL_TIME;
}

/* The rest of a removed task from its REMOVE record; false when there is none, or it cannot be
 * read (rest->failed: an error or no memory, which a retry may pass) or never will be
 * (rest->broken: its image is not JSON, or holds no data image or no creation time). */
static bool rest_from_removal(reader *r, const char *task_id, task_rest *rest)
{
    sqlite3_stmt *st = r ? rstmt(r, BST_REMOVED) : NULL;
    rest->failed = !st;
    rest->broken = !task_id;
    if (rest->failed || rest->broken)
        return false;
    sqlite3_bind_text(st, 1, task_id, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    bool nomem = false;
    const char *text = step == SQLITE_ROW ? sq_column_text(st, 0, &nomem) : NULL;
    if (text)
        rest->removed = json_parse(text, strlen(text), 0, NULL, &nomem);
    stmt_done(st);
    /* the data's image is an object ({"M": ...}, {"S": ...}): anything else there is none, and
     * json_dumps() refuses it as it refuses no memory */
    const json_t *data = json_object_get(rest->removed, "data");
    if (!json_is_object(data))
        data = NULL;
    rest->removed_data_img = data ? json_dumps(data, JSON_COMPACT) : NULL;
    /* none (DONE) is a database edited by hand, read without it; an error or no memory fails
     * the read, and a REMOVE image that is not there whole never reads */
    rest->failed =
        (step != SQLITE_DONE && step != SQLITE_ROW) || nomem || (data && !rest->removed_data_img);
    rest->broken = !rest->failed && step == SQLITE_ROW && !data;
    if (!rest->removed_data_img)
        return false;
    rest->created_time = image_number(rest->removed, "created_time");
    rest->ttl = image_number(rest->removed, "ttl");
    rest->data_image = rest->removed_data_img;
    rest->trace = json_string_value(json_object_get(json_object_get(rest->removed, "trace"), "S"));
    rest->tracestate =
        json_string_value(json_object_get(json_object_get(rest->removed, "tracestate"), "S"));
    /* every task has its creation time: an image without it is missing a piece as one
     * without the data is, and the records never read either */
    rest->broken = rest->created_time == TASK_NULL_TIME;
    return !rest->broken;
}

/* The rest of the task of the record st is at (a BST_CHANGES_AFTER_TASK row), for the records
 * that leave it out; r reads a removed task's REMOVE record. */
static void task_rest_of(reader *r, sqlite3_stmt *st, task_rest *rest)
{
    memset(rest, 0, sizeof *rest);
    rest->created_time = rest->ttl = TASK_NULL_TIME;
    if (sqlite3_column_int(st, CC_SLIM) == CHANGE_WHOLE)
        return; /* its images need nothing of the task (a REMOVE's row is gone: no lookup) */
    if (sqlite3_column_type(st, CT_DATA) != SQLITE_NULL) {
        rest->known = true;
        rest->created_time = sqlite3_column_int64(st, CT_CREATED);
        rest->ttl = sqlite3_column_type(st, CT_TTL) == SQLITE_NULL
                        ? TASK_NULL_TIME
                        : sqlite3_column_int64(st, CT_TTL);
        rest->data = sq_column_text(st, CT_DATA, &rest->failed);
        /* data_image is there for rows written since schema 3 through the API; else derived */
        rest->data_image = sq_column_text(st, CT_DATA_IMAGE, &rest->failed);
        rest->trace = sq_column_text(st, CT_TRACE, &rest->failed);
        rest->tracestate = sq_column_text(st, CT_TRACESTATE, &rest->failed);
        return;
    }
    /* the task row is there without its data: data kept apart whose row is gone, which a
     * REMOVE record cannot stand in for (the task is not removed), and the data is not "{}" */
    if (sqlite3_column_type(st, CT_CREATED) != SQLITE_NULL) {
        rest->broken = true;
        return;
    }
    const char *id = sq_column_text(st, CC_TASK_ID, &rest->failed);
    if (rest->failed)
        return;
    rest->known = rest_from_removal(r, id, rest);
    if (!rest->known) { /* neither: the database was edited by hand */
        rest->created_time = sqlite3_column_int64(st, CC_TIME);
        rest->ttl = TASK_NULL_TIME;
        rest->data = rest->data_image = rest->trace = rest->tracestate = NULL;
    }
}

static void task_rest_clear(task_rest *rest)
{
    json_decref(rest->removed);
    free(rest->removed_data_img);
}

/* One side of a record kept as parts, as the task it shows (strings borrowed); *failed set
 * when a column's text could not be had. False when the side has no status, or one that is
 * none (a damaged or hand-edited row): it shows no task, where it showed one CREATED. */
static bool side_task(sqlite3_stmt *st, bool insert, int side, const task_rest *rest, task *t,
                      bool *failed)
{
    *t = (task){.status = TASK_CREATED,
                .status_msg = "",
                .created_time = rest->created_time,
                .updated_time = TASK_NULL_TIME,
                .ttl = rest->ttl,
                .data = (char *)rest->data,
                .trace = (char *)rest->trace,
                .tracestate = (char *)rest->tracestate};
    column_copy(st, CC_TASK_ID, t->id, sizeof t->id, failed);
    column_copy(st, CC_TYPE, t->task_type, sizeof t->task_type, failed);
    if (insert) /* a creation's new side */
        return true;
    const char *status = sq_column_text(st, side, failed);
    if (!*failed && !task_status_parse(status, &t->status))
        return false;
    const char *msg = sq_column_text(st, side + 1, failed);
    t->status_msg = (char *)(msg ? msg : "");
    if (sqlite3_column_type(st, side + 2) != SQLITE_NULL)
        t->updated_time = sqlite3_column_int64(st, side + 2);
    t->result = (char *)sq_column_text(st, side + 3, failed);
    return true;
}

/* A record's image (NULL when it has none): put together from its parts and the task's rest,
 * or an old slim MODIFY's with data and trace put back. NULL with room failed when memory ran
 * out: the record is not to be read without it; NULL with *broken set when its side of the
 * parts shows no task: it never will be. */
static const char *image_of(sqlite3_stmt *st, bool insert, bool new_side, const task_rest *rest,
                            sbuf *room, bool *broken)
{
    int slim = sqlite3_column_int(st, CC_SLIM);
    if (slim == CHANGE_PARTS) {
        if (!new_side && insert)
            return NULL;
        task t;
        bool failed = false;
        if (!side_task(st, new_side && insert, new_side ? CC_NEW_SIDE : CC_OLD_SIDE, rest, &t,
                       &failed)) {
            *broken = true;
            return NULL;
        }
        if (failed) {
            room->failed = true;
            return NULL;
        }
        bool ok = attrval_task_image(room, &t, rest->data_image);
        return ok && !sbuf_failed(room) ? room->data : NULL;
    }
    bool failed = false;
    const char *image = sq_column_text(st, new_side ? CC_NEW_IMAGE : CC_OLD_IMAGE, &failed);
    if (failed)
        room->failed = true;
    if (!image || slim != CHANGE_SLIM_MODIFY || !rest->known)
        return image;
    sbuf derived = {0};
    if (!rest->data_image && rest->data)
        attrval_append_text(&derived, rest->data);
    if (sbuf_failed(&derived))
        room->failed = true;
    else
        attrval_image_restore(room, image, rest->data_image ? rest->data_image : derived.data,
                              rest->trace);
    sbuf_free(&derived);
    return sbuf_failed(room) ? NULL : room->data;
}

static void change_insert_clear(change_insert *c)
{
    free(c->task_id);
    free(c->task_type);
    free(c->data);
    free(c->trace);
    free(c->tracestate);
    memset(c, 0, sizeof *c);
}

/* A row as the sink's mode builds it: whole (change_record_write()), by fields, or by seq. */
static bool add_record(sqlite3_stmt *st, void *ctx)
{
    record_sink *k = ctx;
    change_record *r = &k->recs[k->n++]; /* counted first: a half-built record is freed too */
    r->seq = sqlite3_column_int64(st, CC_SEQ);
    bool failed = false;
    const char *event = sq_column_text(st, CC_EVENT, &failed);
    if (failed)
        return false; /* not to be taken for a record of another event, and passed over */
    bool insert = event && strcmp(event, "INSERT") == 0;
    if (k->mode != CHANGE_READ_WHOLE && !insert)
        return true;
    if (k->mode == CHANGE_READ_INSERT_FIELDS && sqlite3_column_type(st, CT_DATA) != SQLITE_NULL) {
        r->insert.task_id = column_dup(st, CC_TASK_ID, &failed);
        r->insert.task_type = column_dup(st, CT_TYPE, &failed);
        r->insert.data = column_dup(st, CT_DATA, &failed);
        r->insert.trace = column_dup(st, CT_TRACE, &failed);
        r->insert.tracestate = column_dup(st, CT_TRACESTATE, &failed);
        if (failed)
            return false;
        r->unreadable = task_creation_unfit(r->insert.task_id, r->insert.task_type);
        if (r->unreadable) {              /* it never reads */
            char *id = r->insert.task_id; /* kept, for the consumer to name */
            r->insert.task_id = NULL;
            change_insert_clear(&r->insert);
            r->insert.task_id = id;
        }
        return true;
    }
    /* an image of parts is put together as its task's, whose id and type must fit a task */
    if (sqlite3_column_int(st, CC_SLIM) == CHANGE_PARTS) {
        r->unreadable = task_creation_unfit(sq_column_text(st, CC_TASK_ID, &failed),
                                            sq_column_text(st, CC_TYPE, &failed));
        if (failed || r->unreadable)
            return !failed;
    }
    task_rest rest;
    task_rest_of(k->r, st, &rest);
    if (rest.failed || rest.broken) {
        task_rest_clear(&rest);
        r->unreadable = rest.broken ? "its row cannot be made a record" : NULL;
        return !rest.failed;
    }
    sbuf j = {0}, ni = {0}, oi = {0};
    bool broken = false;
    const char *new_image = image_of(st, insert, true, &rest, &ni, &broken);
    const char *old_image = image_of(st, insert, false, &rest, &oi, &broken);
    const char *id = sq_column_text(st, CC_TASK_ID, &failed);
    /* no memory fails the read, which a retry may pass, before a side that never reads */
    bool nomem = failed || sbuf_failed(&ni) || sbuf_failed(&oi);
    bool ok = !nomem && !broken;
    if (ok)
        change_record_write(&j, r->seq, event, id, new_image, old_image,
                            sqlite3_column_int64(st, CC_TIME));
    sbuf_free(&ni);
    sbuf_free(&oi);
    task_rest_clear(&rest);
    r->json = ok && !sbuf_failed(&j) ? sbuf_take(&j, NULL) : NULL;
    sbuf_free(&j);
    if (broken && !nomem) {
        r->unreadable = "its row lost a status, or holds one that is none";
        return true;
    }
    return r->json != NULL;
}

store_rc broker_read_changes(broker *b, const char *consumer, size_t max, change_read mode,
                             int64_t *checkpoint, change_record **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    *checkpoint = 0;
    errno = 0; /* ENOMEM from here on is this read's: an allocation that failed fails it */
    reader *r = sq_reader_get(sq(b));
    if (!r)
        return STORE_BUSY;
    record_sink k = {r, calloc(max ? max : 1, sizeof *k.recs), 0, mode};
    /* the checkpoint and the records after it from one snapshot: a commit between the two
     * reads may have published records past the checkpoint read (a fed batch whose feed turned
     * off part-way), and their messages would be sent again */
    store_rc rc = k.recs ? sq_read_begin(r) : STORE_ERROR;
    if (rc == STORE_OK) {
        *checkpoint = checkpoint_of(rstmt(r, BST_CHECKPOINT), consumer, &rc); /* busy stays busy */
        if (rc == STORE_OK)
            rc = visit_changes(r, *checkpoint, max, true, add_record, &k);
        sq_read_end(r);
    }
    sq_reader_put(sq(b), r);
    if (rc != STORE_OK || k.n == 0) {
        change_records_free(k.recs, k.n);
        return rc;
    }
    *out = k.recs;
    *n = k.n;
    return STORE_OK;
}

void change_records_free(change_record *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(r[i].json);
        change_insert_clear(&r[i].insert);
    }
    free(r);
}

typedef struct row_sink {
    change_row_copy *rows; /* room for max */
    size_t n;
} row_sink;

/* A row's columns, copied; false when memory ran out. A column NULL in a damaged or hand-edited
 * database stays NULL: the row is the reader's to pass over (task_event_from_row()), not a read
 * that fails on every retry and holds back every reader behind it. */
static bool copy_row(sqlite3_stmt *st, void *ctx)
{
    row_sink *k = ctx;
    change_row_copy *c = &k->rows[k->n++]; /* counted first: a half-copied row is freed too */
    bool failed = false;
    c->seq = sqlite3_column_int64(st, CC_SEQ);
    c->event_name = column_dup(st, CC_EVENT, &failed);
    c->task_id = column_dup(st, CC_TASK_ID, &failed);
    c->new_image = column_dup(st, CC_NEW_IMAGE, &failed);
    c->old_image = column_dup(st, CC_OLD_IMAGE, &failed);
    c->time = sqlite3_column_int64(st, CC_TIME);
    if (sqlite3_column_int(st, CC_SLIM) == CHANGE_PARTS) {
        bool insert = c->event_name && strcmp(c->event_name, "INSERT") == 0;
        c->task_type = column_dup(st, CC_TYPE, &failed);
        if (insert) {
            c->status = strdup("CREATED");
            c->status_msg = strdup("");
            failed |= !c->status || !c->status_msg;
        } else {
            c->status = column_dup(st, CC_NEW_SIDE, &failed);
            c->status_msg = column_dup(st, CC_NEW_SIDE + 1, &failed);
        }
    }
    return !failed;
}

store_rc broker_changes_after(broker *b, int64_t after, size_t max, change_row_copy **out,
                              size_t *n)
{
    *out = NULL;
    *n = 0;
    reader *r = sq_reader_get(sq(b));
    if (!r)
        return STORE_BUSY;
    row_sink k = {calloc(max ? max : 1, sizeof *k.rows), 0};
    store_rc rc = k.rows ? visit_changes(r, after, max, false, copy_row, &k) : STORE_ERROR;
    sq_reader_put(sq(b), r);
    if (rc != STORE_OK || k.n == 0) {
        change_rows_free(k.rows, k.n);
        return rc;
    }
    *out = k.rows;
    *n = k.n;
    return STORE_OK;
}

void change_rows_free(change_row_copy *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(r[i].event_name);
        free(r[i].task_id);
        free(r[i].new_image);
        free(r[i].old_image);
        free(r[i].task_type);
        free(r[i].status);
        free(r[i].status_msg);
    }
    free(r);
}

int64_t broker_last_seq(broker *b)
{
    return atomic_load(&sq(b)->last_seq);
}

store_rc broker_change_bounds(broker *b, int64_t *oldest, int64_t *last)
{
    *oldest = 1;
    *last = 0;
    reader *r = sq_reader_get(sq(b));
    if (!r)
        return STORE_BUSY;
    sqlite3_stmt *st = rstmt(r, BST_CHANGE_BOUNDS);
    store_rc rc = STORE_ERROR;
    if (st) {
        int step = sqlite3_step(st);
        if (step == SQLITE_ROW) {
            *last = sqlite3_column_int64(st, 0); /* NULL (no row yet) reads as 0 */
            *oldest =
                sqlite3_column_type(st, 1) == SQLITE_NULL ? *last + 1 : sqlite3_column_int64(st, 1);
            rc = STORE_OK;
        } else {
            rc = sq_rc_of(step);
        }
        stmt_done(st);
    }
    sq_reader_put(sq(b), r);
    return rc;
}

typedef struct publish_args {
    const char *consumer;
    int64_t seq;
    const broker_message *m;
    size_t n;
} publish_args;

/* Writer: insert messages, noting them in the batch's queue depths; an SQLite code. They are
 * sent now by the wall clock, and visible and expiring by the steady one (broker.h). */
static int send_messages(sqlite_store *s, const broker_message *m, size_t n)
{
    int64_t sent_ms = clock_unix_ms(), now = clock_steady_ms();
    sqlite3_stmt *ins = wstmt(s, BST_PUBLISH);
    int rc = ins ? SQLITE_OK : SQLITE_ERROR;
    for (size_t i = 0; i < n && rc == SQLITE_OK; i++) {
        const queue_config *q = m[i].queue;
        sqlite3_bind_text(ins, 1, q->name, -1, SQLITE_STATIC);
        sq_bind_text(ins, 2, m[i].task_id);
        sq_bind_text(ins, 3, m[i].task_type);
        sq_bind_text(ins, 4, m[i].trace);
        sqlite3_bind_text(ins, 5, m[i].body, -1, SQLITE_STATIC);
        sqlite3_bind_int64(ins, 6, sent_ms);
        sqlite3_bind_int64(ins, 7, now + (int64_t)q->delay * 1000);
        sqlite3_bind_int64(ins, 8, now + (int64_t)q->retention * 1000);
        sq_bind_text(ins, 9, m[i].tracestate);
        sqlite3_bind_int64(ins, 10, ++s->last_message_id); /* an undone batch leaves a gap */
        rc = sq_step_done(ins);
        if (rc == SQLITE_OK)
            depth_log_enter(&s->depth_log, s->depths, q->name, now + (int64_t)q->delay * 1000,
                            false, now);
    }
    stmt_done(ins);
    if (n)
        s->batch_sent_messages = true;
    return rc;
}

static int set_checkpoint(sqlite_store *s, const char *consumer, int64_t seq)
{
    sqlite3_stmt *st = wstmt(s, BST_CHECKPOINT_PUT);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_text(st, 1, consumer, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, seq);
    int rc = sq_step_done(st);
    stmt_done(st);
    return rc;
}

static store_rc feed_catch_up(sqlite_store *s);

/*
 * The fed consumer's checkpoint never moves back. The consumer reads the log once it finds the
 * feed off, and the feed turns off inside a batch (a take refused, out of memory), after it may
 * have fed that batch's first creations: read before the commit, the checkpoint is the one the
 * batch moves on from, and nothing is past it yet. Published there, as the log's end, it would
 * take the checkpoint back, and the catch-up would send the fed creations' messages again. A
 * rollback can turn the feed on again after the consumer found it off (the commit of a batch
 * whose take was refused fails): its publish may then come after creations the writer fed in
 * the publish's own batch, whose place the feed alone has until that batch's end.
 */
static store_rc apply_publish(sqlite_store *s, void *arg)
{
    publish_args *a = arg;
    sq_feed *f = &s->feed;
    bool fed = f->set && strcmp(a->consumer, f->consumer) == 0;
    int64_t seq = a->seq;
    if (fed) {
        store_rc rc = STORE_OK;
        int64_t saved = checkpoint_of(wstmt(s, BST_CHECKPOINT), a->consumer, &rc);
        if (rc != STORE_OK)
            return rc;
        /* nor behind what this batch fed it before this publish, saved only at the batch's end */
        if (f->cp != f->saved_cp && f->cp > saved)
            saved = f->cp;
        if (saved > seq)
            seq = saved;
    }
    int rc = send_messages(s, a->m, a->n);
    if (rc == SQLITE_OK)
        rc = set_checkpoint(s, a->consumer, seq);
    if (rc == SQLITE_OK && fed) {
        f->saved_cp = f->cp = seq;
        return feed_catch_up(s);
    }
    return sq_rc_of(rc);
}

store_rc broker_publish(broker *b, const char *consumer, int64_t seq, const broker_message *m,
                        size_t n)
{
    publish_args a = {consumer, seq, m, n};
    /* relaxed: lost together with its checkpoint, the batch is simply published again */
    return run_write(b, apply_publish, &a, true);
}

/* ---- the writer's feed ---------------------------------------------------- */

store_rc sq_feed_record(sqlite_store *s, int64_t seq, const char *event, const task *created)
{
    sq_feed *f = &s->feed;
    if (!atomic_load(&f->on))
        return STORE_OK;
    if (strcmp(event, "INSERT") == 0 && created) {
        if (f->n_takes == f->cap_takes) {
            size_t cap = f->cap_takes ? 2 * f->cap_takes : 64;
            struct sq_take *grown = realloc(f->takes, cap * sizeof *grown);
            if (!grown) {
                atomic_store(&f->on, false);
                return STORE_OK; /* the consumer reads it from the log */
            }
            f->takes = grown;
            f->cap_takes = cap;
        }
        change_insert t = {(char *)created->id, (char *)created->task_type, created->data,
                           created->trace, created->tracestate};
        const broker_message *m = NULL;
        size_t n = 0;
        void *token = NULL;
        if (!f->f.take(f->f.ctx, &t, &m, &n, &token)) {
            atomic_store(&f->on, false);
            return STORE_OK;
        }
        /* finished whatever happens next */
        f->takes[f->n_takes++] = (struct sq_take){f->f.finish, f->f.ctx, token};
        int rc = send_messages(s, m, n);
        if (rc != SQLITE_OK)
            return sq_rc_of(rc); /* the write fails, and is undone with its messages */
    }
    f->cp = seq;
    return STORE_OK;
}

/* Records a consumer at most this far behind the log's end are fed by the writer at once. */
#define FEED_CATCH_UP_MAX 1000

/*
 * Writer, after the fed consumer's checkpoint was set to feed.cp: feed it what the log holds
 * past that, inside this transaction, and turn the feed on; a consumer that publishes what it
 * read while more came in would otherwise never reach the end under load. Leaves the feed off
 * when the rest is longer than FEED_CATCH_UP_MAX or holds a creation whose task row is gone,
 * or has no id or type or one that does not fit a task (task_creation_unfit(): the consumer reads
 * those itself). A column SQLite cannot copy for lack of memory fails the write, which the
 * consumer makes again.
 */
static store_rc feed_catch_up(sqlite_store *s)
{
    sq_feed *f = &s->feed;
    if (s->batch_last_seq - f->cp > FEED_CATCH_UP_MAX) {
        atomic_store(&f->on, false);
        return STORE_OK;
    }
    atomic_store(&f->on, true);
    if (f->cp == s->batch_last_seq)
        return STORE_OK;
    /* the rows as the change reader has them (visit_changes()), on the writer's connection */
    sqlite3_stmt *st = wstmt(s, BST_CHANGES_AFTER_TASK);
    if (!st) {
        atomic_store(&f->on, false);
        return STORE_OK; /* the consumer reads the rest itself */
    }
    sqlite3_bind_int64(st, 1, f->cp);
    sqlite3_bind_int64(st, 2, FEED_CATCH_UP_MAX);
    store_rc rc = STORE_OK;
    int step = SQLITE_DONE;
    while (rc == STORE_OK && atomic_load(&f->on) && (step = sqlite3_step(st)) == SQLITE_ROW) {
        bool failed = false;
        const char *event = sq_column_text(st, CC_EVENT, &failed);
        bool insert = event && strcmp(event, "INSERT") == 0;
        task t = {0};
        const char *id = NULL, *type = NULL;
        if (insert) {
            t.data = (char *)sq_column_text(st, CT_DATA, &failed);
            t.trace = (char *)sq_column_text(st, CT_TRACE, &failed);
            t.tracestate = (char *)sq_column_text(st, CT_TRACESTATE, &failed);
            id = sq_column_text(st, CC_TASK_ID, &failed);
            type = sq_column_text(st, CT_TYPE, &failed);
        }
        if (failed) {
            /* SQLite could not copy a column (no memory): the write fails, rather than feed a
             * creation without it or take it for another event's record. SQLite rolls the
             * transaction back itself when the statement is reset after the failed copy */
            rc = STORE_ERROR;
            break;
        }
        /* gone, or (a damaged database) without its id or type, or with one that does not fit:
         * the consumer reads the rest itself, and a creation it cannot read it retries, then
         * logs at ERROR and skips */
        if (insert && (!t.data || task_creation_unfit(id, type))) {
            atomic_store(&f->on, false);
            break;
        }
        if (insert) { /* they fit */
            memcpy(t.id, id, sizeof t.id);
            memcpy(t.task_type, type, strlen(type) + 1);
        }
        rc = sq_feed_record(s, sqlite3_column_int64(st, CC_SEQ), event ? event : "",
                            insert ? &t : NULL);
    }
    if (rc == STORE_OK && atomic_load(&f->on) && step != SQLITE_DONE)
        rc = sq_rc_of(step);
    stmt_done(st);
    if (rc != STORE_OK)
        atomic_store(&f->on, false); /* the write is undone: run_batch() restores the feed */
    return rc;
}

store_rc sq_feed_save(sqlite_store *s)
{
    sq_feed *f = &s->feed;
    if (!f->set || f->cp == f->saved_cp)
        return STORE_OK;
    int rc = set_checkpoint(s, f->consumer, f->cp);
    return sq_rc_of(rc);
}

void sq_feed_finish(sqlite_store *s, size_t first, bool committed)
{
    sq_feed *f = &s->feed;
    for (size_t i = first; i < f->n_takes; i++)
        f->takes[i].finish(f->takes[i].ctx, f->takes[i].token, committed);
    if (first < f->n_takes)
        f->n_takes = first;
}

typedef struct feed_args {
    const broker_feed *set; /* or NULL: unset */
    const char *consumer;
} feed_args;

static store_rc apply_set_feed(sqlite_store *s, void *arg)
{
    const feed_args *a = arg;
    sq_feed *f = &s->feed;
    bool same = f->set && strcmp(f->consumer, a->consumer) == 0;
    if (!a->set && !same)
        return STORE_OK; /* not the one fed */
    if (a->set && f->set && !same)
        return STORE_CONFLICT; /* one consumer is fed at a time */
    /* what this batch fed it so far is saved now, as sq_feed_save() does at the batch's end for
     * a consumer still fed: its messages commit with the batch, and a checkpoint left behind
     * them would have them published again after a restart */
    if (f->set) {
        store_rc rc = sq_feed_save(s);
        if (rc != STORE_OK)
            return rc;
        f->saved_cp = f->cp;
    }
    /* on at the consumer's next publish at the log's end */
    atomic_store(&f->on, false);
    f->set = a->set != NULL;
    if (a->set) {
        f->f = *a->set;
        snprintf(f->consumer, sizeof f->consumer, "%s", a->set->consumer);
    }
    return STORE_OK;
}

store_rc broker_set_feed(broker *b, const broker_feed *f)
{
    feed_args a = {f, f->consumer};
    return run_write(b, apply_set_feed, &a, true);
}

store_rc broker_unset_feed(broker *b, const char *consumer)
{
    feed_args a = {NULL, consumer};
    return run_write(b, apply_set_feed, &a, true);
}

bool broker_feed_on(broker *b, const char *consumer)
{
    sq_feed *f = &sq(b)->feed;
    return atomic_load(&f->on) && strcmp(f->consumer, consumer) == 0;
}

/* ---- queues ------------------------------------------------------------ */

/* A text column into dst[size] if it fits whole, else "" (a cut value would be another); *failed
 * set when SQLite could not copy it. Whether it fitted (NULL or not copied: "", which does). */
static bool copy_whole_col(sqlite3_stmt *st, int col, char *dst, size_t size, bool *failed)
{
    const char *t = sq_column_text(st, col, failed);
    size_t n = t ? strlen(t) : 0;
    memcpy(dst, t ? t : "", n < size ? n : 0);
    dst[n < size ? n : 0] = '\0';
    return n < size;
}

static void queue_messages_free_one(queue_message *m);

typedef struct receive_args {
    const queue_config *q;
    size_t max;
    unsigned hide_s; /* hide what is delivered this long, if longer than the visibility timeout */
    bool claim;      /* also claim each delivered message's task */
    queue_message *out;
    size_t n;
    int64_t next_ms;
} receive_args;

/* Writer: fail a task whose message left for the DLQ or expired, unless it finished (or, with
 * spare_claimed, unless it is not CREATED). */
static store_rc fail_unfinished(sqlite_store *s, const char *task_id, const char *why,
                                bool spare_claimed, bool *failed)
{
    if (failed) /* whether this changed the task (NULL: not asked) */
        *failed = false;
    if (!task_id)
        return STORE_OK;
    task t = {0};
    store_rc rc = STORE_OK;
    sqlite3_stmt *st = wstmt(s, BST_TASK_STATUS);
    if (!st)
        return STORE_ERROR;
    sqlite3_bind_text(st, 1, task_id, -1, SQLITE_STATIC);
    int r = sqlite3_step(st);
    bool finished = true, nomem = false;
    char trace[64] = ""; /* its trace context, for the log line */
    if (r == SQLITE_ROW && task_status_parse(sq_column_text(st, 0, &nomem), &t.status)) {
        finished =
            task_status_is_final(t.status) || (spare_claimed && t.status == TASK_IN_PROGRESS);
        column_copy(st, 1, trace, sizeof trace, &nomem);
    } else if (r != SQLITE_DONE) {
        rc = sq_rc_of(r);
    }
    /* a status SQLite could not copy is not a task finished; and the reset after such a copy
     * rolls the batch back, so that nothing more may run in it (it would commit alone) */
    if (nomem)
        rc = STORE_ERROR;
    stmt_done(st);
    if (rc == STORE_OK && !finished) {
        rc = sq_force_status(s, task_id, TASK_FAILED, why, clock_unix_s());
        if (failed)
            *failed = rc == STORE_OK;
        if (rc == STORE_OK)
            store_log_task_failed(task_id, trace, why);
    }
    return rc;
}

/* Drop message id of queue, past its retention, and fail its task unless it finished. A copy
 * never received whose task is IN_PROGRESS spares it: the claim is another's (a client's, or the
 * runner of another queue the task fanned out to), whose outcome is the task's. A copy received
 * before may hold the claim itself (its run died): then the task would never finish. */
static store_rc expire_message(sqlite_store *s, int64_t id, const char *queue, const char *task_id,
                               int64_t visible_ms, int receive_count)
{
    char why[200];
    snprintf(why, sizeof why, "message expired in queue %s before the task finished", queue);
    store_rc rc = fail_unfinished(s, task_id, why, receive_count == 0, NULL);
    sqlite3_stmt *del = rc == STORE_OK ? wstmt(s, BST_MESSAGE_DELETE) : NULL;
    if (rc == STORE_OK && !del)
        return STORE_ERROR;
    if (rc == STORE_OK) {
        sqlite3_bind_int64(del, 1, id);
        rc = sq_rc_of(sq_step_done(del));
    }
    if (rc == STORE_OK)
        depth_log_leave(&s->depth_log, s->depths, queue, visible_ms, receive_count > 0);
    return rc;
}

/* What a receive reads of a message besides what it delivers. */
typedef struct candidate {
    int64_t was_visible; /* its visible_ms */
    int counted;         /* its receives but those given back unstarted */
    int64_t expires_ms;
} candidate;

/* The BST_RECEIVE row of sel into m and c; false when a column was not copied (no memory). */
static bool read_candidate(sqlite3_stmt *sel, queue_message *m, candidate *c)
{
    c->was_visible = sqlite3_column_int64(sel, 5);
    c->counted = sqlite3_column_int(sel, 8);
    c->expires_ms = sqlite3_column_int64(sel, 10);
    m->id = sqlite3_column_int64(sel, 0);
    m->receive_count = sqlite3_column_int(sel, 1);
    m->sent_ms = sqlite3_column_int64(sel, 2);
    bool task_copied = sq_dup_nullable_col(sel, 3, &m->task_id);
    bool body_copied = sq_dup_nullable_col(sel, 4, &m->body);
    bool short_of_memory = !task_copied || !body_copied;
    copy_whole_col(sel, 6, m->task_type, sizeof m->task_type, &short_of_memory);
    copy_whole_col(sel, 7, m->trace, sizeof m->trace, &short_of_memory);
    copy_whole_col(sel, 9, m->tracestate, sizeof m->tracestate, &short_of_memory);
    return !short_of_memory;
}

/*
 * Read up to max messages of queue q visible at now into *msgs and *cands (*n of them, arrays
 * of max), before any is moved: the updates after move them in the index being read. On
 * failure nothing is left to free.
 */
static store_rc read_candidates(sqlite_store *s, const queue_config *q, size_t max, int64_t now,
                                queue_message **msgs, candidate **cands, size_t *n)
{
    sqlite3_stmt *sel = wstmt(s, BST_RECEIVE);
    if (!sel)
        return STORE_ERROR;
    sqlite3_bind_text(sel, 1, q->name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(sel, 2, now);
    sqlite3_bind_int64(sel, 3, (sqlite3_int64)max);
    queue_message *got = calloc(max, sizeof *got);
    candidate *cand = calloc(max, sizeof *cand);
    size_t nc = 0;
    int r = SQLITE_OK;
    bool short_of_memory = false; /* a column not copied: delivered without it, a task is lost */
    while (got && cand && nc < max && !short_of_memory && (r = sqlite3_step(sel)) == SQLITE_ROW) {
        short_of_memory = !read_candidate(sel, &got[nc], &cand[nc]);
        nc++;
    }
    stmt_done(sel);
    if (!got || !cand || short_of_memory ||
        (r != SQLITE_DONE && r != SQLITE_ROW && r != SQLITE_OK)) {
        queue_messages_free(got, nc);
        free(cand);
        return got && cand && !short_of_memory ? sq_rc_of(r) : STORE_ERROR;
    }
    *msgs = got;
    *cands = cand;
    *n = nc;
    return STORE_OK;
}

/* Move message m of queue q (c: as read), received max_receive_count times, to q's dead-letter
 * queue, and fail its task unless it finished. It is not delivered (its id becomes 0). */
static store_rc dead_letter(sqlite_store *s, const queue_config *q, queue_message *m,
                            const candidate *c, int64_t now, sqlite3_stmt *move)
{
    char why[200];
    task_dead_letter_msg(why, sizeof why, q->dead_letter_queue, (unsigned)c->counted);
    bool failed; /* the move failed the task: a redrive makes it CREATED again */
    store_rc rc = fail_unfinished(s, m->task_id, why, false, &failed);
    sqlite3_bind_int64(move, 1, m->id);
    sqlite3_bind_text(move, 2, q->dead_letter_queue, -1, SQLITE_STATIC);
    sqlite3_bind_int64(move, 3, now);
    /* as SQS: the dead-letter queue's retention, from the message's first send. The send is by
     * the wall clock and the queue's deadlines by the steady one: the message's age by the wall
     * clock, taken from now by the steady one, so that a step of the wall clock before the send
     * neither shortens a dead letter's life (a step back longer than the retention dropped it
     * on arrival) nor lengthens it; one during the message's life still does, by the step */
    int64_t age = clock_unix_ms() - m->sent_ms;
    sqlite3_bind_int64(move, 4,
                       now - (age > 0 ? age : 0) + (int64_t)q->dead_letter_retention * 1000);
    sqlite3_bind_int(move, 5, failed);
    sqlite3_bind_int64(move, 6, m->sent_ms);
    sqlite3_bind_int64(move, 7, ++s->last_message_id);
    if (rc == STORE_OK)
        rc = sq_rc_of(sq_step_done(move));
    if (rc == STORE_OK) {
        depth_log_leave(&s->depth_log, s->depths, q->name, c->was_visible, m->receive_count > 0);
        depth_log_enter(&s->depth_log, s->depths, q->dead_letter_queue, now, false, now);
    }
    s->batch_sent_messages = true; /* visible at once in the DLQ: wake its runners */
    m->id = 0;                     /* not delivered */
    return rc;
}

/*
 * Claim the task of message m of queue q, delivered by this receive (received_before: by one
 * before it too). A message whose task is gone, final, or someone else's to run (a client's
 * claim, another queue's copy): work.c drops it (claim_fate()). It goes with this receive, not
 * after the batch: kept until then it could outlive its visibility timeout or a crash and come
 * back as a redelivery, which would run someone else's task.
 */
static store_rc claim_task(sqlite_store *s, const queue_config *q, queue_message *m,
                           bool received_before, sqlite3_stmt *del)
{
    store_rc rc = STORE_OK;
    store_write claim = {
        .kind = STORE_WRITE_UPDATE,
        .now = clock_unix_s(),
        .update = {.id = m->task_id, .status = TASK_IN_PROGRESS, .status_msg = "Task started"}};
    m->claim = sq_apply_update(s, &claim);
    m->status_before = claim.current.status;
    /* a message without its task's type (a row edited by hand, or damaged) runs with the
     * task's: the runner drops a message without one, which would leave the task claimed here
     * IN_PROGRESS for good */
    if (!m->task_type[0] && claim.current.task_type[0])
        memcpy(m->task_type, claim.current.task_type, sizeof m->task_type);
    task_clear(&claim.current);
    bool again =
        m->claim == STORE_CONFLICT && m->status_before == TASK_IN_PROGRESS && received_before;
    if (again) {
        /* an earlier delivery died or overran: this one runs the task again (on a first
         * delivery, someone else claimed it: work.c drops the message) */
        char msg[64];
        snprintf(msg, sizeof msg, "Task started again (receive %d)", m->receive_count);
        store_rc again_rc = sq_claim_again(s, m->task_id, msg, clock_unix_s());
        if (again_rc == STORE_ERROR || again_rc == STORE_BUSY)
            rc = again_rc; /* the whole receive is rolled back and retried */
    }
    if (m->claim == STORE_ERROR || m->claim == STORE_BUSY)
        rc = m->claim; /* the whole receive is rolled back and retried */
    bool drop = m->claim == STORE_NOT_FOUND || (m->claim == STORE_CONFLICT && !again);
    if (rc == STORE_OK && drop) {
        sqlite3_bind_int64(del, 1, m->id);
        rc = sq_rc_of(sq_step_done(del));
        if (rc == STORE_OK)
            depth_log_leave(&s->depth_log, s->depths, q->name, m->hidden_until_ms, true);
    }
    return rc;
}

/* Deliver message m of queue q (c: as read): hide it until hidden_until, a receive more, and
 * with claim, claim its task. */
static store_rc deliver(sqlite_store *s, const queue_config *q, queue_message *m,
                        const candidate *c, bool claim, int64_t now, int64_t hidden_until,
                        sqlite3_stmt *hide, sqlite3_stmt *del)
{
    bool received_before = m->receive_count > 0;
    m->receive_count++;
    m->hidden_until_ms = hidden_until;
    sqlite3_bind_int64(hide, 1, m->id);
    sqlite3_bind_int64(hide, 2, hidden_until);
    sqlite3_bind_int(hide, 3, m->receive_count);
    store_rc rc = sq_rc_of(sq_step_done(hide));
    if (rc == STORE_OK) {
        depth_log_leave(&s->depth_log, s->depths, q->name, c->was_visible, received_before);
        depth_log_enter(&s->depth_log, s->depths, q->name, hidden_until, true, now);
    }
    if (rc == STORE_OK && claim && m->task_id)
        rc = claim_task(s, q, m, received_before, del);
    return rc;
}

/*
 * Route each message of queue q read (msgs[n], cands[n]), until one fails: one past its
 * retention expires, and one received max_receive_count times moves to the dead-letter queue
 * (neither is delivered: its id becomes 0); the others are delivered, hidden until hidden_until.
 */
static store_rc route_candidates(sqlite_store *s, const queue_config *q, bool claim, int64_t now,
                                 int64_t hidden_until, queue_message *msgs, const candidate *cands,
                                 size_t n)
{
    sqlite3_stmt *hide = wstmt(s, BST_HIDE);
    sqlite3_stmt *move = wstmt(s, BST_MOVE);
    sqlite3_stmt *del = wstmt(s, BST_MESSAGE_DELETE);
    store_rc rc = hide && move && del ? STORE_OK : STORE_ERROR;
    for (size_t i = 0; i < n && rc == STORE_OK; i++) {
        queue_message *m = &msgs[i];
        const candidate *c = &cands[i];
        bool exhausted = q->max_receive_count && c->counted >= (int)q->max_receive_count;
        if (c->expires_ms < now) { /* as the sweep would have: never delivered */
            rc = expire_message(s, m->id, q->name, m->task_id, c->was_visible, m->receive_count);
            m->id = 0;
        } else if (exhausted && *q->dead_letter_queue) {
            rc = dead_letter(s, q, m, c, now, move);
        } else {
            rc = deliver(s, q, m, c, claim, now, hidden_until, hide, del);
        }
    }
    stmt_done(hide);
    stmt_done(move);
    stmt_done(del);
    return rc;
}

/* Hand out in a the messages of msgs[n] delivered (id not 0), when the receive did not fail
 * (rc), and free the rest. */
static void keep_delivered(receive_args *a, queue_message *msgs, size_t n, store_rc rc)
{
    a->n = 0;
    for (size_t i = 0; i < n; i++) {
        if (msgs[i].id && rc == STORE_OK)
            msgs[a->n++] = msgs[i];
        else
            queue_messages_free_one(&msgs[i]);
    }
    a->out = a->n ? msgs : NULL;
    if (!a->n)
        free(msgs);
}

/* When the next message of queue becomes visible (steady clock), into *visible_ms (INT64_MAX
 * when it has none), by st (BST_NEXT_VISIBLE on the writer's connection or a reader's; NULL: it
 * could not be prepared); a store code. */
static store_rc next_visible(sqlite3_stmt *st, const char *queue, int64_t *visible_ms)
{
    *visible_ms = INT64_MAX;
    if (!st)
        return STORE_ERROR;
    sqlite3_bind_text(st, 1, queue, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        *visible_ms = sqlite3_column_int64(st, 0);
    stmt_done(st);
    return sq_rc_of(step);
}

/* Writer: a receive (receive_args). The visible messages are read, each is routed, and the
 * delivered ones are handed out; when none is, next_ms says when one will be visible, and a
 * receive that cannot read it fails. */
static store_rc apply_receive(sqlite_store *s, void *arg)
{
    receive_args *a = arg;
    int64_t now = clock_steady_ms();
    a->next_ms = INT64_MAX;
    queue_message *msgs = NULL;
    candidate *cands = NULL;
    size_t n = 0;
    store_rc rc = read_candidates(s, a->q, a->max, now, &msgs, &cands, &n);
    if (rc != STORE_OK)
        return rc;
    unsigned hide_s = a->hide_s > a->q->visibility_timeout ? a->hide_s : a->q->visibility_timeout;
    rc = route_candidates(s, a->q, a->claim, now, now + (int64_t)hide_s * 1000, msgs, cands, n);
    free(cands);
    keep_delivered(a, msgs, n, rc);
    /* a look that fails fails the receive: INT64_MAX would say the queue holds nothing */
    if (rc == STORE_OK && a->n == 0)
        rc = next_visible(wstmt(s, BST_NEXT_VISIBLE), a->q->name, &a->next_ms);
    return rc;
}

static void queue_messages_free_one(queue_message *m)
{
    free(m->task_id);
    free(m->body);
    memset(m, 0, sizeof *m);
}

static store_rc receive_messages(broker *b, const queue_config *q, size_t max, unsigned hide_s,
                                 bool claim, queue_message **out, size_t *n, int64_t *next_ms)
{
    receive_args a = {.q = q, .max = max ? max : 1, .hide_s = hide_s, .claim = claim};
    /* relaxed: a lost receive (or claim) only makes the message visible again sooner */
    store_rc rc = run_write(b, apply_receive, &a, true);
    if (rc != STORE_OK) {
        queue_messages_free(a.out, a.n);
        a.out = NULL;
        a.n = 0;
    }
    *out = a.out;
    *n = a.n;
    *next_ms = a.next_ms;
    return rc;
}

store_rc broker_receive(broker *b, const queue_config *q, size_t max, queue_message **out,
                        size_t *n, int64_t *next_ms)
{
    return receive_messages(b, q, max, 0, false, out, n, next_ms);
}

store_rc broker_receive_and_claim(broker *b, const queue_config *q, size_t max, unsigned hide_s,
                                  queue_message **out, size_t *n, int64_t *next_ms)
{
    return receive_messages(b, q, max, hide_s, true, out, n, next_ms);
}

/* ---- standing receives ---------------------------------------------------- */

void broker_stand(broker *b, broker_standing *st)
{
    sqlite_store *s = sq(b);
    st->taking = st->failed = st->wake = st->wake_if_left = st->woken = false;
    st->until_ms = INT64_MAX;
    st->got = NULL;
    st->n_got = 0;
    clock_mono_cond_init(&st->cv); /* no failure but ENOMEM, which this attribute cannot hit */
    pthread_mutex_lock(&s->standing_mu);
    st->next = s->standing;
    s->standing = st;
    pthread_mutex_unlock(&s->standing_mu);
}

void broker_sit(broker *b, broker_standing *st, queue_message **out, size_t *n)
{
    sqlite_store *s = sq(b);
    pthread_mutex_lock(&s->standing_mu);
    while (st->taking) /* the writer is receiving for it: a commit away */
        pthread_cond_wait(&s->standing_settled, &s->standing_mu);
    for (broker_standing **p = &s->standing; *p; p = &(*p)->next)
        if (*p == st) {
            *p = st->next;
            break;
        }
    pthread_mutex_unlock(&s->standing_mu);
    pthread_cond_destroy(&st->cv); /* out of the list: the writer no longer signals it */
    *out = st->got;
    *n = st->n_got;
    st->got = NULL;
    st->n_got = 0;
}

void broker_stand_wait(broker *b, broker_standing *st, uint64_t *gen, int timeout_ms)
{
    sqlite_store *s = sq(b);
    pthread_mutex_lock(&s->notify_mu);
    bool moved = *gen != 0 && *gen != s->messages_gen;
    *gen = s->messages_gen;
    pthread_mutex_unlock(&s->notify_mu);
    if (moved || timeout_ms <= 0)
        return;
    /* st stood before the look above: a commit or broker_wake_all() after it finds st listed */
    struct timespec until = clock_mono_after_ms(timeout_ms);
    pthread_mutex_lock(&s->standing_mu);
    st->until_ms = clock_steady_ms() + timeout_ms;
    while (!st->woken)
        if (pthread_cond_timedwait(&st->cv, &s->standing_mu, &until) == ETIMEDOUT)
            break;
    pthread_mutex_unlock(&s->standing_mu);
}

/* Whether a standing receive before st (from first) on st's queue got less than its max:
 * then the queue has nothing visible left for st. */
static bool queue_drained(const broker_standing *first, const broker_standing *st)
{
    for (const broker_standing *e = first; e != st; e = e->next_taking)
        if (!e->failed && e->n_got < (e->max ? e->max : 1) &&
            strcmp(e->queue->name, st->queue->name) == 0)
            return true;
    return false;
}

void sq_standing_receive(sqlite_store *s, void (*apply)(sqlite_store *s, store_write *w))
{
    if (!s->batch_sent_messages)
        return;                     /* nothing was made visible */
    broker_standing *taking = NULL; /* stay in place: broker_sit() waits for their settling */
    pthread_mutex_lock(&s->standing_mu);
    for (broker_standing *st = s->standing; st; st = st->next)
        if (!st->taking && !st->n_got && /* not filled by an earlier commit */
            depth_log_makes_visible(&s->depth_log, s->depths, st->queue->name)) {
            st->taking = true;
            st->next_taking = taking;
            taking = st;
        }
    pthread_mutex_unlock(&s->standing_mu);
    for (broker_standing *st = taking; st; st = st->next_taking) {
        st->failed = false;
        if (queue_drained(taking, st))
            continue; /* as a receive that found nothing, without the query */
        receive_args a = {
            .q = st->queue, .max = st->max ? st->max : 1, .hide_s = st->hide_s, .claim = true};
        sq_job job = {.apply = apply_receive, .arg = &a};
        store_write w = {.relaxed = true, .adapter_data = &job};
        apply(s, &w); /* a failed one is rolled back alone; its thread receives itself */
        st->failed = w.rc != STORE_OK;
        if (!st->failed) {
            st->got = a.out;
            st->n_got = a.n;
        } else {
            queue_messages_free(a.out, a.n);
        }
    }
}

/*
 * Writer, standing_mu held, the batch committed and its depth log not yet applied: whether
 * the batch concerns st. It does when it received for st (or failed to: st receives itself),
 * or made a message of st's queue due before st's wait ends (st sleeps until then instead);
 * and when it made messages of st's queue visible, if some are left once the log is applied
 * (sq_standing_wake()): messages that went to the other standing threads wake nobody else.
 */
static void standing_concerned(sqlite_store *s, broker_standing *st)
{
    const char *queue = st->queue->name;
    st->wake = st->n_got || st->failed ||
               depth_log_first_hidden(&s->depth_log, s->depths, queue) < st->until_ms;
    st->wake_if_left = !st->wake && depth_log_makes_visible(&s->depth_log, s->depths, queue);
}

void sq_standing_wake(sqlite_store *s)
{
    int64_t now_ms = clock_steady_ms();
    pthread_mutex_lock(&s->standing_mu);
    for (broker_standing *st = s->standing; st; st = st->next) {
        bool wake = st->wake;
        if (!wake && st->wake_if_left) {
            queue_stats left;
            queue_depths_get(s->depths, st->queue->name, now_ms, &left);
            wake = left.visible > 0;
        }
        st->wake = st->wake_if_left = false;
        if (wake && !st->woken) {
            st->woken = true;
            /* under the lock: once st->woken is seen, its thread may sit and destroy cv */
            pthread_cond_signal(&st->cv);
        }
    }
    pthread_mutex_unlock(&s->standing_mu);
}

void sq_standing_settle(sqlite_store *s, bool committed)
{
    pthread_mutex_lock(&s->standing_mu);
    bool settled = false;
    for (broker_standing *st = s->standing; st; st = st->next) {
        if (committed && s->batch_sent_messages && !st->woken)
            standing_concerned(s, st);
        if (!st->taking)
            continue;
        if (!committed) { /* the next commit receives for it: no wake-up */
            queue_messages_free(st->got, st->n_got);
            st->got = NULL;
            st->n_got = 0;
        }
        st->taking = false;
        settled = true;
    }
    if (settled)
        pthread_cond_broadcast(&s->standing_settled);
    pthread_mutex_unlock(&s->standing_mu);
}

void queue_messages_free(queue_message *m, size_t n)
{
    if (!m)
        return;
    for (size_t i = 0; i < n; i++)
        queue_messages_free_one(&m[i]);
    free(m);
}

store_rc broker_next_visible(broker *b, const char *queue, int64_t *visible_ms)
{
    *visible_ms = INT64_MAX;
    reader *r = sq_reader_get(sq(b));
    if (!r)
        return STORE_BUSY;
    store_rc rc = next_visible(rstmt(r, BST_NEXT_VISIBLE), queue, visible_ms);
    sq_reader_put(sq(b), r);
    return rc;
}

typedef struct receipt_args {
    const queue_message *m;
    size_t n;
    bool deleting;
    bool release;          /* given back unstarted: the receive not counted */
    int64_t visible_in_ms; /* when not deleting: visible again this long from now */
    bool *stale;           /* n entries, or NULL: each receipt found stale */
} receipt_args;

/*
 * Writer: run a receipt's statement, a select or a delete returning where the message was
 * (its queue) and until when it was hidden; false when the receipt is stale (the message is
 * gone or was received again) or the statement failed (*rc).
 */
static bool receipt_message(sqlite3_stmt *st, const queue_message *m, char *queue, size_t len,
                            int64_t *visible_ms, int *rc)
{
    sqlite3_bind_int64(st, 1, m->id);
    sqlite3_bind_int(st, 2, m->receive_count);
    int step = sqlite3_step(st);
    bool found = step == SQLITE_ROW, nomem = false;
    if (found) {
        column_copy(st, 0, queue, len, &nomem);
        *visible_ms = sqlite3_column_int64(st, 1);
    }
    /* a queue not copied: the reset below rolls the batch back, and a receipt applied after it
     * would commit alone */
    *rc = nomem ? SQLITE_NOMEM : step == SQLITE_ROW || step == SQLITE_DONE ? SQLITE_OK : step;
    sqlite3_reset(st);
    return found && *rc == SQLITE_OK;
}

static store_rc apply_receipts(sqlite_store *s, void *arg)
{
    receipt_args *a = arg;
    /* a delete finds and deletes in one statement; an extend or a release finds, then updates */
    sqlite3_stmt *find = wstmt(s, a->deleting ? BST_RECEIPT_DELETE : BST_RECEIPT);
    sqlite3_stmt *update =
        a->deleting ? NULL : wstmt(s, a->release ? BST_RECEIPT_RELEASE : BST_RECEIPT_EXTEND);
    int rc = find && (a->deleting || update) ? SQLITE_OK : SQLITE_ERROR;
    int64_t now = clock_steady_ms();
    if (a->stale) /* this try's alone: a batch retried after a failed commit marks afresh */
        memset(a->stale, 0, a->n * sizeof *a->stale);
    for (size_t i = 0; i < a->n && rc == SQLITE_OK; i++) {
        char queue[256];
        int64_t was;
        if (!receipt_message(find, &a->m[i], queue, sizeof queue, &was, &rc)) {
            /* a stale receipt changes nothing; a failed one ends the loop */
            if (a->stale && rc == SQLITE_OK)
                a->stale[i] = true;
            continue;
        }
        if (update) {
            sqlite3_bind_int64(update, 1, a->m[i].id);
            sqlite3_bind_int(update, 2, a->m[i].receive_count);
            sqlite3_bind_int64(update, 3, now + a->visible_in_ms);
            if ((rc = sq_step_done(update)) != SQLITE_OK)
                break;
        }
        depth_log_leave(&s->depth_log, s->depths, queue, was, true);
        if (update)
            depth_log_enter(&s->depth_log, s->depths, queue, now + a->visible_in_ms, true, now);
    }
    stmt_done(find);
    stmt_done(update);
    if (!a->deleting && a->visible_in_ms == 0 && a->n)
        s->batch_sent_messages = true;
    return sq_rc_of(rc);
}

store_rc broker_delete(broker *b, const queue_message *m, size_t n)
{
    receipt_args a = {.m = m, .n = n, .deleting = true};
    /* relaxed: a message whose delete is lost comes back, finds its task final, and goes */
    return n ? run_write(b, apply_receipts, &a, true) : STORE_OK;
}

store_rc broker_release_after(broker *b, const queue_message *m, size_t n, unsigned seconds)
{
    receipt_args a = {.m = m, .n = n, .release = true, .visible_in_ms = (int64_t)seconds * 1000};
    return n ? run_write(b, apply_receipts, &a, true) : STORE_OK;
}

store_rc broker_release(broker *b, const queue_message *m, size_t n)
{
    return broker_release_after(b, m, n, 0);
}

store_rc broker_extend(broker *b, const queue_message *m, size_t n, unsigned seconds, bool *stale)
{
    receipt_args a = {.m = m, .n = n, .visible_in_ms = (int64_t)seconds * 1000, .stale = stale};
    store_rc rc = n ? run_write(b, apply_receipts, &a, true) : STORE_OK;
    if (rc != STORE_OK && stale) /* what a failed write read is not known to hold */
        memset(stale, 0, n * sizeof *stale);
    return rc;
}

/* ---- visibility -------------------------------------------------------- */

bool broker_queue_nth(broker *b, size_t i, char *name, size_t len, int64_t *messages)
{
    return queue_depths_nth(sq(b)->depths, i, name, len, messages);
}

store_rc broker_queue_stats(broker *b, const char *queue, queue_stats *out)
{
    queue_depths_get(sq(b)->depths, queue, clock_steady_ms(), out);
    return STORE_OK;
}

/* Note where the queue clock is (the steady clock's now) in meta, unless a note further ahead is
 * there: one an open could not move the messages by, still to be used. SQLite's result. */
static int note_queue_clock(sqlite_store *s)
{
    sqlite3_stmt *st = NULL;
    int64_t now = clock_steady_ms();
    int rc = sqlite3_prepare_v2(s->wdb,
                                "INSERT INTO meta (name, value) VALUES ('queue_clock_at_stop', ?1) "
                                "ON CONFLICT (name) DO UPDATE SET value = CASE WHEN "
                                "typeof(value) = 'integer' AND value > excluded.value THEN value "
                                "ELSE excluded.value END",
                                -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, now);
        rc = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return rc;
    s->queue_clock_noted = now;
    return SQLITE_OK;
}

void sq_note_queue_clock(sqlite_store *s)
{
    note_queue_clock(s);
}

void sq_note_queue_clock_behind(sqlite_store *s)
{
    /* a clock read apart or slewing is not behind; a note under a second old is as good as now
     * (an open moves by no less than a second), so that under load it is one write a second */
    if (clock_steady_skew_ms() > -1000 || clock_steady_ms() - s->queue_clock_noted < 1000)
        return;
    /* a failure is the sweeper's to log: it notes again at its next sweep, and this at the next
     * batch; the batch goes on (a statement refused is undone alone) */
    note_queue_clock(s);
}

static store_rc apply_note_queue_clock(sqlite_store *s, void *arg)
{
    (void)arg;
    return sq_rc_of(note_queue_clock(s));
}

store_rc broker_note_queue_clock(broker *b)
{
    /* durable: it is for a crash, a machine's too */
    return run_write(b, apply_note_queue_clock, NULL, false);
}

/* Where the queue clock was when the last taskd stopped (or last noted it, before a crash), into
 * *at (left as it is when none was noted), taken from the database, in the move's transaction, so
 * that it counts for one move; -1 when it cannot be read, else 0. */
static int take_queue_clock_at_stop(sqlite_store *s, int64_t *at)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->wdb,
                           "DELETE FROM meta WHERE name = 'queue_clock_at_stop' RETURNING value",
                           -1, &st, NULL) != SQLITE_OK) {
        sqlite3_finalize(st);
        return -1;
    }
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        if (sqlite3_column_type(st, 0) == SQLITE_INTEGER)
            *at = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* The newest send of queue (the wall clock), into *sent; false when it cannot be read. */
static bool newest_send(sqlite_store *s, const char *queue, int64_t *sent)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->wdb, "SELECT max(sent_ms) FROM messages WHERE queue = ?1", -1, &st,
                           NULL) != SQLITE_OK) {
        sqlite3_finalize(st);
        return false;
    }
    sqlite3_bind_text(st, 1, queue, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    *sent = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW;
}

/* Where the queue clock was at the newest send by the messages themselves, into *last, when that
 * is a second or more ahead of now (INT64_MIN: nothing tells, or not that far ahead); false when
 * they cannot be read. */
static bool queue_clock_at_newest_send(sqlite_store *s, const config *c, int64_t now, int64_t *last)
{
    *last = INT64_MIN;
    if (!c || !c->n_queues)
        return true;
    /* Where the queue clock was at the newest send, by each of its two records: its expiry less
     * its queue's retention (the steady clock), and its send (the wall clock, which the steady
     * one starts from). Each alone may be ahead of now without the clock having gone back while
     * taskd was down: the expiry when the retention was shortened since, the send when the wall
     * clock was stepped forward while taskd ran (the steady clock kept behind it). Taken when
     * both say so, and by the nearer, the furthest of the queues'.
     *
     * Only a queue whose newest expiry less its retention is a second or more ahead matters: the
     * open moves nothing for less. Its messages that tell expire at least that far ahead plus the
     * shortest retention configured, and messages_by_expiry reads those alone: none while the
     * clock has not gone back and no retention was shortened, but the younger messages of the
     * queues kept longer (a dead-letter queue's 14 days against 4), where a look at every message
     * read them all (200-270 ms for 98,000 queued: docs/design.md, "A start"). The newest send
     * is then read of the queues ahead alone, in full (no index holds it). */
    int64_t at_least = now + 1000;
    unsigned shortest = c->queues[0].retention;
    for (size_t i = 1; i < c->n_queues; i++)
        if (c->queues[i].retention < shortest)
            shortest = c->queues[i].retention;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->wdb,
                           "SELECT queue, max(expires_ms) FROM messages INDEXED BY "
                           "messages_by_expiry WHERE expires_ms >= ?1 GROUP BY 1",
                           -1, &st, NULL) != SQLITE_OK) {
        sqlite3_finalize(st);
        return false;
    }
    sqlite3_bind_int64(st, 1, at_least + (int64_t)shortest * 1000);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        bool nomem = false;
        const char *name = sq_column_text(st, 0, &nomem);
        if (nomem) { /* the queue not read: the check fails, as when the read does */
            rc = SQLITE_NOMEM;
            break;
        }
        const queue_config *q = name ? config_queue(c, name) : NULL;
        if (!q)
            continue; /* a queue no longer configured: its retention is not known */
        int64_t by_expiry = sqlite3_column_int64(st, 1) - (int64_t)q->retention * 1000;
        int64_t by_send;
        if (by_expiry < at_least)
            continue;
        if (!newest_send(s, name, &by_send)) {
            rc = SQLITE_ERROR;
            break;
        }
        int64_t at = by_expiry < by_send ? by_expiry : by_send;
        if (at >= at_least && at > *last)
            *last = at;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE;
}

/* sq_messages_follow_clock_back()'s work, in the transaction it opened. */
static int64_t follow_clock_back(sqlite_store *s, const config *c, int64_t *back_ms)
{
    /* Where the queue clock was when the last taskd stopped, as it noted then, or, after a
     * crash, at its last batch or sweep that noted it while its wall clock was behind it: a wall
     * clock stepped back while that taskd ran left its deadlines on the clock it started with and
     * its sends on the clock stepped back, and nothing in the messages tells. A note from a batch
     * or a sweep is older than the crash: it moves the messages back less far than their clock
     * went, never further. Without one (a crash with the wall clock not behind), the newest send
     * tells a clock gone back while taskd was down; read always, since a move that failed at the
     * last open is still to be made. Taken by the further */
    int64_t at_stop = INT64_MIN, last = INT64_MIN;
    int64_t now = clock_steady_ms();
    if (take_queue_clock_at_stop(s, &at_stop) < 0 || !queue_clock_at_newest_send(s, c, now, &last))
        return -1;
    if (at_stop > last)
        last = at_stop;
    /* less than a second is the two clocks read apart, or slewing */
    if (last == INT64_MIN || last - now < 1000)
        return 0;
    /* A send moves only when it is ahead of the wall clock now, which a send by it never is:
     * one made after the wall clock was put right while taskd ran was by the right clock, though
     * its deadlines were kept to the old one, and moved it made the message older by the step (a
     * dead-letter queue of a shorter retention dropped it on arrival). A send by the clock ahead
     * that is no longer ahead stays: the message counts younger, never older */
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->wdb,
                           "UPDATE messages SET sent_ms = CASE WHEN sent_ms > ?2 THEN sent_ms - ?1 "
                           "ELSE sent_ms END, visible_ms = visible_ms - ?1, "
                           "expires_ms = expires_ms - ?1",
                           -1, &st, NULL) != SQLITE_OK) {
        sqlite3_finalize(st);
        return -1;
    }
    sqlite3_bind_int64(st, 1, last - now);
    sqlite3_bind_int64(st, 2, clock_unix_ms());
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return -1;
    *back_ms = last - now;
    return sqlite3_changes64(s->wdb);
}

int64_t sq_messages_follow_clock_back(sqlite_store *s, const config *c, int64_t *back_ms, char *err,
                                      size_t errlen)
{
    *back_ms = 0;
    /* One transaction, so that the note is taken only with the move made: taken alone, a move
     * that then failed lost it, and the next open no longer told the step */
    int64_t moved = -1;
    if (sqlite3_exec(s->wdb, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK) {
        moved = follow_clock_back(s, c, back_ms);
        if (moved >= 0 && sqlite3_exec(s->wdb, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
            moved = -1;
    }
    if (moved < 0) {
        errbuf_set(err, errlen, "%s", sqlite3_errmsg(s->wdb));
        if (!sqlite3_get_autocommit(s->wdb)) /* SQLite may have rolled it back itself */
            sqlite3_exec(s->wdb, "ROLLBACK", NULL, NULL, NULL);
        *back_ms = 0;
    }
    return moved;
}

int64_t sq_unhide_past(sqlite_store *s, int64_t bound_ms)
{
    /* by messages_by_visibility, queue by queue (found by a probe each, as load_types() finds
     * the task types): the messages hidden that far are few or none, where a look at every
     * message read them all (40-270 ms for 98,000 queued at a load of 20-40, against 0.5-4 ms:
     * docs/design.md, "A start") */
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->wdb,
                           "WITH RECURSIVE " QUEUE_NAMES
                           " UPDATE messages SET visible_ms = ?1 WHERE queue IN "
                           "(SELECT name FROM q WHERE name IS NOT NULL) AND visible_ms > ?2",
                           -1, &st, NULL) != SQLITE_OK) {
        sqlite3_finalize(st);
        return -1;
    }
    int64_t now = clock_steady_ms();
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_int64(st, 2, now + bound_ms);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? sqlite3_changes64(s->wdb) : -1;
}

store_rc sq_depths_load(sqlite_store *s)
{
    queue_depths_clear(s->depths);
    sqlite3_stmt *st = wstmt(s, BST_DEPTHS);
    if (!st)
        return STORE_ERROR;
    sqlite3_bind_int64(st, 1, clock_steady_ms());
    int step;
    bool ok = true;
    while (ok && (step = sqlite3_step(st)) == SQLITE_ROW) {
        bool nomem = false;
        const char *queue = sq_column_text(st, 0, &nomem); /* not read: the count fails */
        ok = !nomem && queue &&
             queue_depths_load(s->depths, queue, sqlite3_column_int64(st, 1),
                               sqlite3_column_int(st, 2) != 0, sqlite3_column_int64(st, 3));
    }
    stmt_done(st);
    return !ok ? STORE_ERROR : step == SQLITE_DONE ? STORE_OK : sq_rc_of(step);
}

store_rc broker_stream_lag(broker *b, const char *consumer, int64_t *lag)
{
    *lag = 0;
    reader *r = sq_reader_get(sq(b));
    if (!r)
        return STORE_BUSY;
    store_rc rc;
    int64_t cp = checkpoint_of(rstmt(r, BST_CHECKPOINT), consumer, &rc);
    sq_reader_put(sq(b), r);
    /* the newest sequence number less the checkpoint: numbers are never reused or skipped by
     * a commit, so this is the count of records after the checkpoint without reading them */
    int64_t last = broker_last_seq(b);
    if (rc == STORE_OK && last > cp)
        *lag = last - cp;
    return rc;
}

/* The one value of statement id into *out; false when it cannot be read. */
static bool read_int(sqlite_store *s, bst id, int64_t *out)
{
    sqlite3_stmt *st = wstmt(s, id);
    int step = st ? sqlite3_step(st) : SQLITE_ERROR;
    *out = step == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    stmt_done(st);
    return step == SQLITE_ROW || step == SQLITE_DONE;
}

bool sq_last_ids_load(sqlite_store *s)
{
    int64_t seq;
    bool ok =
        read_int(s, BST_LAST_SEQ, &seq) && read_int(s, BST_LAST_MESSAGE_ID, &s->last_message_id);
    atomic_store(&s->last_seq, seq);
    return ok;
}

typedef struct redrive_args {
    const char *dlq, *target;
    unsigned retention; /* the target's: a redriven message's life begins anew */
    int64_t moved;      /* by the step */
    bool more;          /* the step read a whole batch: step again */
    /* the dead letters left where they are, their task unreadable for good, in id order: the
     * steps after the one that left them pass over them */
    int64_t *left;
    size_t n_left, cap_left;
    /* the step's dead letters whose task id is longer than any task's, moved without a task:
     * said once the step commits (redrive_done()), not by a step undone that moved none */
    int64_t unfit[REDRIVE_BATCH];
    size_t n_unfit;
} redrive_args;

/* One message a redrive step moves, read before any is moved. */
typedef struct redriven {
    int64_t id, visible_ms;
    bool received;
    bool failed_task;              /* its move to the DLQ failed its task */
    char task_id[TASK_ID_LEN + 1]; /* "": none */
} redriven;

/*
 * Whether a read that failed with rc will fail the same way every time: the pages that hold the
 * row are damaged (SQLITE_CORRUPT) or the file is not a database (SQLITE_NOTADB). Every other
 * failure may pass (busy, locked, out of memory, an I/O error, a full disk, an interrupt) or is
 * the connection's, not the row's (misuse, a schema change).
 */
static bool read_fails_for_good(int rc)
{
    int primary = rc & 0xff; /* extended codes, e.g. SQLITE_CORRUPT_INDEX, by their primary */
    return primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB;
}

/*
 * The task of a redriven message whose move to the DLQ failed it: CREATED again, when it is
 * still there and FAILED. A task that can never be read (read_fails_for_good()) gets STORE_OK
 * and its SQLite code in *unreadable (else 0): its message is to stay where it is, or every
 * redrive would stop at it; any other failed read fails the step.
 */
static store_rc redrive_task(sqlite_store *s, const char *id, const char *msg, int *unreadable)
{
    *unreadable = 0;
    sqlite3_stmt *get = wstmt(s, BST_TASK_STATUS);
    if (!get)
        return STORE_ERROR;
    sqlite3_bind_text(get, 1, id, -1, SQLITE_STATIC);
    task_status st = TASK_CREATED;
    int step = sqlite3_step(get);
    bool nomem = false;
    bool failed = step == SQLITE_ROW && task_status_parse(sq_column_text(get, 0, &nomem), &st) &&
                  st == TASK_FAILED;
    stmt_done(get);
    if (nomem) /* not read: and the reset has rolled the step back */
        return STORE_ERROR;
    if (step != SQLITE_ROW && step != SQLITE_DONE) {
        /* the step goes on only while its transaction does */
        if (read_fails_for_good(step) && !sqlite3_get_autocommit(s->wdb)) {
            *unreadable = step;
            return STORE_OK;
        }
        return sq_rc_of(step); /* unread: the step is undone, its message not moved */
    }
    return failed ? sq_force_status(s, id, TASK_CREATED, msg, clock_unix_s()) : STORE_OK;
}

static int compare_ids(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Whether an earlier step of the redrive left message id where it is. */
static bool left_before(const redrive_args *a, int64_t id)
{
    return a->n_left && bsearch(&id, a->left, a->n_left, sizeof *a->left, compare_ids);
}

/* Note message id as left where it is; false when out of memory. */
static bool note_left(redrive_args *a, int64_t id)
{
    if (a->n_left == a->cap_left) {
        size_t cap = a->cap_left ? 2 * a->cap_left : 16;
        int64_t *grown = realloc(a->left, cap * sizeof *grown);
        if (!grown)
            return false;
        a->left = grown;
        a->cap_left = cap;
    }
    a->left[a->n_left++] = id;
    return true;
}

/* Read the step's batch of the DLQ into batch[REDRIVE_BATCH] (*n of them), before any is moved,
 * passing over the messages an earlier step left where they are. */
static store_rc read_redrive_batch(sqlite_store *s, redrive_args *a, redriven *batch, size_t *n)
{
    *n = 0;
    sqlite3_stmt *sel = wstmt(s, BST_REDRIVE_BATCH);
    if (!sel)
        return STORE_ERROR;
    sqlite3_bind_text(sel, 1, a->dlq, -1, SQLITE_STATIC);
    /* as many more as there are messages left behind, which may come first */
    sqlite3_bind_int64(sel, 2, REDRIVE_BATCH + (int64_t)a->n_left);
    int step = SQLITE_DONE;
    bool nomem = false;
    while (*n < REDRIVE_BATCH && !nomem && (step = sqlite3_step(sel)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(sel, 0);
        if (left_before(a, id))
            continue;
        redriven *m = &batch[(*n)++];
        m->id = id;
        m->visible_ms = sqlite3_column_int64(sel, 1);
        m->received = sqlite3_column_int(sel, 2) > 0;
        /* one that does not fit is none, not cut to name another task */
        bool fits = copy_whole_col(sel, 3, m->task_id, sizeof m->task_id, &nomem);
        m->failed_task = sqlite3_column_int(sel, 4) != 0;
        if (!fits)
            a->unfit[a->n_unfit++] = id;
    }
    stmt_done(sel);
    /* a task id not copied: its message would go back without its task made CREATED */
    return nomem                                       ? STORE_ERROR
           : step == SQLITE_ROW || step == SQLITE_DONE ? STORE_OK
                                                       : sq_rc_of(step);
}

/* One redrive step: up to REDRIVE_BATCH messages of the DLQ back to the target, visible now,
 * with a fresh receive count; those whose task can never be read stay (said at ERROR), and
 * the steps after pass over them. */
static store_rc apply_redrive(sqlite_store *s, void *arg)
{
    redrive_args *a = arg;
    a->moved = 0;
    a->more = false;
    a->n_unfit = 0;
    size_t left_before_step = a->n_left;
    int64_t now = clock_steady_ms(), sent_ms = clock_unix_ms();
    redriven *batch = malloc(REDRIVE_BATCH * sizeof *batch);
    if (!batch)
        return STORE_ERROR;
    size_t n = 0;
    store_rc rc = read_redrive_batch(s, a, batch, &n);
    char msg[200];
    snprintf(msg, sizeof msg, "Redriven from %s", a->dlq);
    sqlite3_stmt *mv = rc == STORE_OK ? wstmt(s, BST_MOVE) : NULL;
    if (rc == STORE_OK && !mv)
        rc = STORE_ERROR;
    int64_t moved = 0;
    for (size_t i = 0; i < n && rc == STORE_OK; i++) {
        /* a task failed otherwise (cancelled, reported) stays final: its message is dropped */
        int unreadable = 0;
        if (batch[i].task_id[0] && batch[i].failed_task)
            rc = redrive_task(s, batch[i].task_id, msg, &unreadable);
        if (rc == STORE_OK && unreadable) {
            if (!note_left(a, batch[i].id)) {
                rc = STORE_ERROR;
                break;
            }
            char id[24];
            snprintf(id, sizeof id, "%lld", (long long)batch[i].id);
            log_error("a dead letter's task cannot be read; the message stays in the dead-letter "
                      "queue",
                      "queue", a->dlq, "message_id", id, "task_id", batch[i].task_id, "error",
                      sqlite3_errstr(unreadable), NULL);
            continue;
        }
        if (rc != STORE_OK)
            break;
        sqlite3_bind_int64(mv, 1, batch[i].id);
        sqlite3_bind_text(mv, 2, a->target, -1, SQLITE_STATIC);
        sqlite3_bind_int64(mv, 3, now);
        sqlite3_bind_int64(mv, 4, now + (int64_t)a->retention * 1000);
        sqlite3_bind_int(mv, 5, 0);
        /* sent again: a later move to the dead-letter queue counts its retention from here, as
         * the queue's own does; from the first send, it could arrive there already expired */
        sqlite3_bind_int64(mv, 6, sent_ms);
        sqlite3_bind_int64(mv, 7, ++s->last_message_id);
        rc = sq_rc_of(sq_step_done(mv));
        if (rc == STORE_OK) {
            depth_log_leave(&s->depth_log, s->depths, a->dlq, batch[i].visible_ms,
                            batch[i].received);
            depth_log_enter(&s->depth_log, s->depths, a->target, now, false, now);
            moved++;
        }
    }
    stmt_done(mv);
    free(batch);
    if (a->n_left > left_before_step)
        qsort(a->left, a->n_left, sizeof *a->left, compare_ids);
    if (rc == STORE_OK && n) {
        a->moved = moved;
        a->more = n == REDRIVE_BATCH;
        s->batch_sent_messages |= moved > 0;
    }
    return rc;
}

/* A redrive in flight: its job and arguments, and the caller's done(), which it wraps. */
typedef struct redrive_job {
    sq_job job;
    redrive_args args;
    store *store;
    void (*done)(store_write *w);
    int64_t *moved;
    int64_t total; /* moved by the steps so far */
} redrive_job;

/*
 * Writer: a step is done. While steps read whole batches, the same write is submitted again for
 * the next, so that other writes go between. Then report the count, release the job and hand
 * the write back to its caller. A step that fails ends the redrive with its code; the batches
 * moved before it stay moved, and a redrive again moves the rest.
 */
static void redrive_done(store_write *w)
{
    redrive_job *j = w->adapter_data;
    if (w->rc == STORE_OK) {
        for (size_t i = 0; i < j->args.n_unfit; i++) {
            char mid[24];
            snprintf(mid, sizeof mid, "%lld", (long long)j->args.unfit[i]);
            log_warn("a dead letter's task id is longer than any task id; it was redriven as a "
                     "message without a task",
                     "queue", j->args.dlq, "message_id", mid, NULL);
        }
        j->total += j->args.moved;
        if (j->args.more) {
            store_submit(j->store, w); /* on the writer thread: queued for the next batch */
            return;
        }
    }
    *j->moved = w->rc == STORE_OK ? j->total : 0;
    char n[24], left[24];
    snprintf(n, sizeof n, "%lld", (long long)j->total);
    snprintf(left, sizeof left, "%zu", j->args.n_left);
    if (w->rc == STORE_OK && j->args.n_left)
        log_warn("dead-letter queue redriven but for messages whose task cannot be read", "queue",
                 j->args.target, "moved", n, "left", left, NULL);
    else if (w->rc == STORE_OK)
        log_info("dead-letter queue redriven", "queue", j->args.target, "moved", n, NULL);
    else if (j->total)
        log_warn("dead-letter queue redrive stopped part way; redrive again to move the rest",
                 "queue", j->args.target, "moved", n, "error", store_rc_name(w->rc), NULL);
    w->done = j->done;
    w->adapter_data = NULL;
    free(j->args.left);
    free(j);
    w->done(w);
}

store_rc broker_redrive_submit(broker *b, const char *dlq, const char *target, unsigned retention,
                               store_write *w, int64_t *moved)
{
    redrive_job *j = calloc(1, sizeof *j);
    if (!j)
        return STORE_ERROR;
    j->args = (redrive_args){.dlq = dlq, .target = target, .retention = retention};
    j->job = (sq_job){.apply = apply_redrive, .arg = &j->args};
    j->store = &sq(b)->base;
    j->done = w->done;
    j->moved = moved;
    w->relaxed = false;
    w->adapter_data = &j->job; /* the job is the first member: adapter_data is j */
    w->done = redrive_done;
    store_submit(&sq(b)->base, w);
    return STORE_OK;
}

/* ---- housekeeping ------------------------------------------------------ */

/* Whether statement st (NULL: it could not be prepared), with args bound to ?1..?n_args, returns
 * a row. */
static store_rc any_row(sqlite3_stmt *st, const int64_t *args, int n_args, bool *found)
{
    *found = false;
    if (!st)
        return STORE_ERROR;
    for (int i = 0; i < n_args; i++)
        sqlite3_bind_int64(st, i + 1, args[i]);
    int step = sqlite3_step(st);
    *found = step == SQLITE_ROW;
    stmt_done(st);
    return step == SQLITE_ROW || step == SQLITE_DONE ? STORE_OK : sq_rc_of(step);
}

typedef struct sweep_args {
    const config *c;
    int64_t removed;
    bool more; /* a part of the step stopped at its bound: there is more to sweep */
} sweep_args;

/*
 * Read up to SWEEP_BATCH expired finished tasks into doomed (*n of them), passing over those it
 * could not read before; one it cannot read now (a damaged row, sq_task_row_damaged()) is
 * passed over from now on (sq_pass_over()), and counts toward the bound. *more: the bound was
 * reached.
 */
static store_rc read_doomed(sqlite_store *s, sweep_args *a, int64_t now, task *doomed, size_t *n,
                            bool *more)
{
    *n = 0;
    *more = false;
    sqlite3_stmt *sel = wstmt(s, BST_SWEEP_TASKS);
    if (!sel ||
        !sq_task_columns_hold(sel, true, NULL)) /* sq_task_row_damaged() reads them by place */
        return STORE_ERROR;
    size_t known = sq_n_passed_over(s);
    sqlite3_bind_int64(sel, 1, now - a->c->retention_grace);
    sqlite3_bind_int64(sel, 2, now);
    size_t read = 0;
    bool failed = false; /* out of memory */
    int step = SQLITE_DONE;
    while (read < SWEEP_BATCH && !failed && (step = sqlite3_step(sel)) == SQLITE_ROW) {
        const char *id = sq_column_text(sel, TC_ID, &failed);
        if (!id || (known && sq_passed_over(s, id)))
            continue;
        read++;
        const char *damage;
        if (sq_read_task_row(sel, &doomed[*n], true))
            (*n)++;
        else if ((damage = sq_task_row_damaged(sel, &failed)))
            failed = !sq_pass_over(s, id,
                                   "a finished task past its ttl cannot be read; the sweep passes "
                                   "over it (the database is damaged)",
                                   damage);
        else
            failed = true;
    }
    stmt_done(sel);
    *more = read == SWEEP_BATCH;
    return failed                                      ? STORE_ERROR
           : step == SQLITE_ROW || step == SQLITE_DONE ? STORE_OK
                                                       : sq_rc_of(step);
}

/* Delete up to SWEEP_BATCH expired finished tasks, each with a REMOVE record. */
static store_rc sweep_tasks(sqlite_store *s, sweep_args *a, int64_t now)
{
    task *doomed = calloc(SWEEP_BATCH, sizeof *doomed);
    size_t n = 0;
    bool full = false;
    store_rc rc = doomed ? read_doomed(s, a, now, doomed, &n, &full) : STORE_ERROR;
    sqlite3_stmt *del = rc == STORE_OK ? wstmt(s, BST_TASK_DELETE) : NULL;
    for (size_t i = 0; i < n && del && rc == STORE_OK; i++) {
        sqlite3_bind_text(del, 1, doomed[i].id, -1, SQLITE_STATIC);
        rc = sq_rc_of(sq_step_done(del));
        if (rc == STORE_OK)
            rc = sq_history_delete(s, doomed[i].id);
        if (rc == STORE_OK)
            rc = sq_write_change(s, "REMOVE", NULL, &doomed[i], now);
    }
    if (rc == STORE_OK && n && !del)
        rc = STORE_ERROR;
    stmt_done(del);
    for (size_t i = 0; i < n; i++)
        task_clear(&doomed[i]);
    free(doomed);
    if (rc == STORE_OK) {
        a->removed = (int64_t)n;
        a->more |= full;
    }
    return rc;
}

/* Drop up to SWEEP_MESSAGES messages past their retention; fail the tasks they carried. */
static store_rc sweep_messages(sqlite_store *s, sweep_args *a, int64_t now_ms)
{
    sqlite3_stmt *sel = wstmt(s, BST_SWEEP_MESSAGES);
    store_rc rc = sel ? STORE_OK : STORE_ERROR;
    if (rc == STORE_OK) {
        sqlite3_bind_int64(sel, 1, now_ms);
        sqlite3_bind_int(sel, 2, SWEEP_MESSAGES);
    }
    int step = SQLITE_DONE, n = 0;
    while (rc == STORE_OK && (step = sqlite3_step(sel)) == SQLITE_ROW) {
        bool nomem = false;
        const char *queue = sq_column_text(sel, 1, &nomem);
        const char *task_id = sq_column_text(sel, 2, &nomem);
        rc = nomem || !queue
                 ? STORE_ERROR
                 : expire_message(s, sqlite3_column_int64(sel, 0), queue, task_id,
                                  sqlite3_column_int64(sel, 3), sqlite3_column_int(sel, 4));
        n++;
    }
    if (rc == STORE_OK && step != SQLITE_DONE) /* the select itself failed */
        rc = sq_rc_of(step);
    stmt_done(sel);
    a->more |= rc == STORE_OK && n == SWEEP_MESSAGES;
    return rc;
}

/*
 * What a trim may delete, as bounds[0] and [1] of BST_TRIM_CHANGES and BST_DUE_CHANGES (?1, ?2;
 * the trim's ?3 is its batch): the records up to the seq every named consumer has passed (all
 * when no consumer is named) once event_replay seconds old, so that a GET /events client that
 * reconnects within them resumes where it was. cp: BST_CHECKPOINT on the connection that reads.
 */
static store_rc trim_bounds(const config *c, sqlite3_stmt *cp, int64_t now, int64_t bounds[2])
{
    int64_t floor = INT64_MAX;
    store_rc rc = STORE_OK;
    for (size_t i = 0; i < c->n_consumers && rc == STORE_OK; i++) {
        int64_t seq = checkpoint_of(cp, c->consumers[i].name, &rc);
        if (seq < floor)
            floor = seq;
    }
    bounds[0] = c->n_consumers ? floor : INT64_MAX;
    bounds[1] = now - c->event_replay;
    return rc;
}

/*
 * Trim change records every consumer has passed (trim_bounds()) from the log's start: up to
 * TRIM_BATCH seqs per step. The trim stops at the first record it must keep.
 */
static store_rc trim_changes(sqlite_store *s, sweep_args *a, int64_t now)
{
    int64_t bounds[3] = {0, 0, TRIM_BATCH};
    store_rc rc = trim_bounds(a->c, wstmt(s, BST_CHECKPOINT), now, bounds);
    if (rc != STORE_OK)
        return rc;
    bool found;
    rc = any_row(wstmt(s, BST_TRIM_CHANGES), bounds, 3, &found); /* a DELETE: no row */
    if (rc == STORE_OK && sqlite3_changes(s->wdb) > 0) /* the last seq outlives its record */
        rc = any_row(wstmt(s, BST_LAST_SEQ_PUT), &s->batch_last_seq, 1, &found);
    if (rc != STORE_OK)
        return rc;
    rc = any_row(wstmt(s, BST_DUE_CHANGES), bounds, 2, &found); /* the new first one too? */
    a->more |= found;
    return rc;
}

static store_rc apply_sweep(sqlite_store *s, void *arg)
{
    sweep_args *a = arg;
    int64_t now = clock_unix_s();
    a->removed = 0;
    a->more = false; /* a write may be applied again (a retried batch): each time from scratch */
    store_rc rc = sweep_tasks(s, a, now);
    if (rc == STORE_OK)
        rc = sweep_messages(s, a, clock_steady_ms());
    if (rc == STORE_OK)
        rc = trim_changes(s, a, now);
    return rc;
}

store_rc broker_sweep(broker *b, const config *c, int64_t *removed, bool *more)
{
    sweep_args a = {c, 0, false};
    store_rc rc = run_write(b, apply_sweep, &a, false);
    if (removed)
        *removed = rc == STORE_OK ? a.removed : 0;
    if (more)
        *more = rc == STORE_OK && a.more;
    return rc;
}

/* Whether a finished task is past its ttl (BST_DUE_TASKS, bound to bounds), but for those the
 * sweep passes over. */
static store_rc tasks_due(sqlite_store *s, reader *r, const int64_t bounds[2], bool *due)
{
    sqlite3_stmt *st = rstmt(r, BST_DUE_TASKS);
    if (!st)
        return STORE_ERROR;
    sqlite3_bind_int64(st, 1, bounds[0]);
    sqlite3_bind_int64(st, 2, bounds[1]);
    bool failed = false;
    int step = SQLITE_DONE;
    while (!*due && !failed && (step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *id = sq_column_text(st, 0, &failed);
        *due = id && !sq_passed_over(s, id);
    }
    stmt_done(st);
    return failed ? STORE_ERROR : *due || step == SQLITE_DONE ? STORE_OK : sq_rc_of(step);
}

store_rc broker_sweep_due(broker *b, const config *c, bool *due)
{
    *due = false;
    reader *r = sq_reader_get(sq(b));
    if (!r)
        return STORE_BUSY;
    int64_t now = clock_unix_s();
    int64_t changes[2];
    store_rc rc = trim_bounds(c, rstmt(r, BST_CHECKPOINT), now, changes);
    int64_t tasks[] = {now - c->retention_grace, now};
    int64_t messages[] = {clock_steady_ms()};
    if (rc == STORE_OK)
        rc = tasks_due(sq(b), r, tasks, due);
    if (rc == STORE_OK && !*due)
        rc = any_row(rstmt(r, BST_DUE_MESSAGES), messages, 1, due);
    if (rc == STORE_OK && !*due)
        rc = any_row(rstmt(r, BST_DUE_CHANGES), changes, 2, due);
    sq_reader_put(sq(b), r);
    if (rc != STORE_OK)
        *due = true; /* cannot tell: let the sweep look */
    return rc;
}

/* ---- wake-ups ---------------------------------------------------------- */

void broker_wait(broker *b, bool changes, uint64_t *gen, int timeout_ms)
{
    sqlite_store *s = sq(b);
    struct timespec until = clock_mono_after_ms(timeout_ms);
    pthread_mutex_lock(&s->notify_mu);
    uint64_t *current = changes ? &s->changes_gen : &s->messages_gen;
    pthread_cond_t *cv = changes ? &s->changes_cv : &s->messages_cv;
    if (*gen != 0) {
        int rc = 0;
        while (*current == *gen && rc != ETIMEDOUT && timeout_ms > 0)
            rc = pthread_cond_timedwait(cv, &s->notify_mu, &until);
    }
    *gen = *current;
    pthread_mutex_unlock(&s->notify_mu);
}

void broker_wake_all(broker *b)
{
    sqlite_store *s = sq(b);
    pthread_mutex_lock(&s->notify_mu);
    s->changes_gen++;
    s->messages_gen++;
    pthread_mutex_unlock(&s->notify_mu);
    pthread_cond_broadcast(&s->changes_cv); /* after the unlock, as wake_waiters() */
    pthread_cond_broadcast(&s->messages_cv);
    pthread_mutex_lock(&s->standing_mu);
    for (broker_standing *st = s->standing; st; st = st->next) {
        st->woken = true;
        pthread_cond_signal(&st->cv);
    }
    pthread_mutex_unlock(&s->standing_mu);
}
