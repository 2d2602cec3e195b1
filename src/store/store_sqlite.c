/*
 * store_sqlite — the task store on SQLite; see store_sqlite.h.
 *
 * Layout of the database (schema version in PRAGMA user_version):
 *   tasks        one row per task, keyed by its UUIDv7 id (WITHOUT ROWID, so
 *                new tasks append at the end of the primary key b-tree);
 *                indexed by (task_type, status, id) for every filtered listing
 *                (one filter alone is merged leg by leg: sq_list_tasks) and
 *                by ttl, for finished tasks that have one, for the sweep
 *   changes      the change log: one record per write, numbered by a
 *                sequence that is never reused (the writer gives each record
 *                the last seq + 1; a trim that empties the log keeps the last
 *                in meta's changes_seq); a creation's and a change's keep
 *                their parts (type, and status, message, update time and
 *                result of each side), which readers put together with the
 *                task row into DynamoDB-stream-shaped images; a removal keeps
 *                its whole old image
 *   idempotency  Idempotency-Key -> first task id, kept 24 h
 *   meta         stable secrets (the page-token key)
 *   task_history each task's status transitions (task_id, n) after its
 *                creation (n = 1, which its row records): written with the
 *                change, n from the task's hist_n (read and written with
 *                the row anyway); the latest TASK_HISTORY_MAX - 1 are kept
 *                (a gap in n means entries were dropped); deleted with the
 *                task
 *
 * Group commit. Callers hand a write (a function and its argument) to the
 * writer thread and sleep on their own condition variable. The writer takes
 * every write queued so far, runs each inside a SAVEPOINT of one transaction
 * (so a failing write undoes only itself), commits once, and wakes the
 * callers with their results. While it commits, the next batch queues up, so
 * batches grow with load and one fsync is shared by all of them.
 *
 * This file holds the port's entry points, the writer and open/close; what
 * it applies lies below it: the task writes (sqlite_tasks.c), the broker's
 * jobs, feed and standing receives (sqlite_broker.c), the statement helpers
 * and the read pool (sqlite_db.c).
 */
#include "store_sqlite.h"
#include "util/clock.h"

#include "sqlite_internal.h"

#include "core/errbuf.h"
#include "core/sbuf.h"
#include "core/uuid7.h"
#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Sets of tasks kept for reads by id (task_cache.h): 4 tasks of at most 2 KiB of strings each */
#define TASK_CACHE_SETS 1024
/* While writes fail and nothing else is written, a probe write every this many seconds */
#define PROBE_INTERVAL_S 1
/* Healthy again: a write commits, and none has failed for this long (past the pipeline's
 * longest retry backoff, 3.2 s, so its failing retries keep the store unhealthy) */
#define HEALTH_RECOVERY_MS 5000
/* After SQLITE_FULL, healthy again only once this much can be reserved beside the database,
 * looked for at most once per ROOM_LOOK_MS: a small write can commit into bytes the WAL already
 * holds (the frames of a commit that failed), which says nothing of the room the next task needs.
 */
#define ROOM_AFTER_FULL (1 << 20)
#define ROOM_LOOK_MS    1000
/* Idempotency keys forgotten at most per batch (a statement of its own after the batch's commit) */
#define PURGE_BATCH 1000
/* How long the writer watches its queue for the next write before it sleeps (watch_queue()). */
#define WRITER_WATCH_NS (30 * 1000)
/* The WAL is cut back to this size when it starts over after a checkpoint. It is checkpointed
 * at about 4 MiB, but grows past that while a reader holds an old snapshot; SQLite reuses it
 * and never shrinks it by itself, so a burst would keep its size on disk for good. */
#define WAL_SIZE_LIMIT "16777216"

/* ---- schema ------------------------------------------------------------ */

static const char *const migrations[] = {
    /* 1: tasks, change log, idempotency keys, secrets */
    "CREATE TABLE tasks ("
    "  id TEXT PRIMARY KEY,"
    "  task_type TEXT NOT NULL,"
    "  status TEXT NOT NULL,"
    "  status_msg TEXT NOT NULL DEFAULT '',"
    "  created_time INTEGER NOT NULL,"
    "  updated_time INTEGER,"
    "  finished_time INTEGER,"
    "  ttl INTEGER,"
    "  data TEXT NOT NULL,"
    "  result TEXT,"
    "  trace TEXT"
    ") WITHOUT ROWID;"
    "CREATE INDEX tasks_by_status ON tasks(status, id);"
    "CREATE INDEX tasks_by_type ON tasks(task_type, id);"
    "CREATE TABLE changes ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  event_name TEXT NOT NULL,"
    "  task_id TEXT NOT NULL,"
    "  new_image TEXT,"
    "  old_image TEXT,"
    "  created_time INTEGER NOT NULL"
    ");"
    "CREATE TABLE idempotency ("
    "  key TEXT PRIMARY KEY,"
    "  task_id TEXT NOT NULL,"
    "  created_time INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE TABLE meta (name TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;"
    "INSERT INTO meta VALUES ('page_token_key', randomblob(16));",
    /* 2: the local pipeline: queues, stream checkpoints; finished tasks for the sweep */
    "CREATE TABLE messages ("
    "  id INTEGER PRIMARY KEY,"
    "  queue TEXT NOT NULL,"
    "  task_id TEXT,"
    "  body TEXT NOT NULL,"
    "  attributes TEXT NOT NULL,"
    "  sent_ms INTEGER NOT NULL,"
    "  visible_ms INTEGER NOT NULL,"
    "  receive_count INTEGER NOT NULL DEFAULT 0,"
    "  expires_ms INTEGER NOT NULL"
    ");"
    "CREATE INDEX messages_by_visibility ON messages(queue, visible_ms);"
    "CREATE INDEX messages_by_expiry ON messages(expires_ms);"
    "CREATE TABLE checkpoints ("
    "  consumer TEXT PRIMARY KEY,"
    "  seq INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE INDEX tasks_by_finish ON tasks(finished_time) WHERE finished_time IS NOT NULL;",
    /* 3: the data's AttributeValue form, so change records never re-parse it */
    "ALTER TABLE tasks ADD COLUMN data_image TEXT;",
    /* 4: task histories (n = 1, the creation, is the task row's own); older tasks get what
     * is known: after a gap (n = 2 missing: truncated), their current status */
    "CREATE TABLE task_history ("
    "  task_id TEXT NOT NULL,"
    "  n INTEGER NOT NULL,"
    "  status TEXT NOT NULL,"
    "  status_msg TEXT NOT NULL,"
    "  time INTEGER NOT NULL,"
    "  PRIMARY KEY (task_id, n)"
    ") WITHOUT ROWID;"
    "ALTER TABLE tasks ADD COLUMN hist_n INTEGER NOT NULL DEFAULT 1;"
    "INSERT INTO task_history SELECT id, 3, status, status_msg, "
    "  coalesce(updated_time, created_time) FROM tasks WHERE status <> 'CREATED';"
    "UPDATE tasks SET hist_n = 3 WHERE status <> 'CREATED';",
    /* 5: a MODIFY's images leave out what never changes (data, trace): the task row has it */
    "ALTER TABLE changes ADD COLUMN slim INTEGER NOT NULL DEFAULT 0;",
    /* 6: the sweep looks finished tasks up by ttl: those without one (never swept) are not in
     * the index at all, so a sweep does not step over them, nor a completion index them */
    "DROP INDEX tasks_by_finish;"
    "CREATE INDEX tasks_by_ttl ON tasks(ttl) WHERE finished_time IS NOT NULL AND ttl IS NOT NULL;"
    /* and the purge of idempotency keys finds the expired ones without a scan of them all; a
     * listing filtered by both type and status reads only its page, as the DynamoDB table's
     * type_status_by_id index does, instead of stepping over every task of the type */
    "CREATE INDEX idempotency_by_time ON idempotency(created_time);"
    "CREATE INDEX tasks_by_type_status ON tasks(task_type, status, id);"
    /* which serves the listings by type alone and by status alone too, merged from one leg per
     * status or per type (sq_list_tasks()): their own indexes cost the writer more than that */
    "DROP INDEX tasks_by_status;"
    "DROP INDEX tasks_by_type;",
    /* 7: an INSERT or MODIFY record keeps its parts instead of images (slim = 2): the task's
     * type, and the status, message, update time and result of each side; the rest of an image
     * never changes, and comes from the task row, or from its REMOVE record (kept whole, and
     * found by changes_removed) once the row is gone. And seqs are given by the writer, not by
     * AUTOINCREMENT (whose sqlite_sequence row was one more page in every commit): the last one
     * given is the log's greatest, or meta's changes_seq where a trim emptied the log */
    "CREATE TABLE changes_7 ("
    "  seq INTEGER PRIMARY KEY,"
    "  event_name TEXT NOT NULL,"
    "  task_id TEXT NOT NULL,"
    "  new_image TEXT,"
    "  old_image TEXT,"
    "  created_time INTEGER NOT NULL,"
    "  slim INTEGER NOT NULL DEFAULT 0,"
    "  task_type TEXT,"
    "  new_status TEXT, new_msg TEXT, new_time INTEGER, new_result TEXT,"
    "  old_status TEXT, old_msg TEXT, old_time INTEGER, old_result TEXT"
    ");"
    "INSERT INTO changes_7 (seq, event_name, task_id, new_image, old_image, created_time, slim) "
    "  SELECT seq, event_name, task_id, new_image, old_image, created_time, slim FROM changes;"
    "INSERT OR REPLACE INTO meta (name, value) "
    "  SELECT 'changes_seq', seq FROM sqlite_sequence WHERE name = 'changes';"
    "DROP TABLE changes;"
    "ALTER TABLE changes_7 RENAME TO changes;"
    "CREATE INDEX changes_removed ON changes(task_id) WHERE event_name = 'REMOVE';",
    /* 8: a message keeps its task's type and the producer's traceparent as columns, not as a
     * JSON object of attributes (two thirds of a row) that every receive parsed back; a task's
     * message whose attributes do not parse takes the type from its task, so that its receive
     * runs the task rather than claiming it and dropping the message */
    "CREATE TABLE messages_8 ("
    "  id INTEGER PRIMARY KEY,"
    "  queue TEXT NOT NULL,"
    "  task_id TEXT,"
    "  task_type TEXT,"
    "  trace TEXT,"
    "  body TEXT NOT NULL,"
    "  sent_ms INTEGER NOT NULL,"
    "  visible_ms INTEGER NOT NULL,"
    "  receive_count INTEGER NOT NULL DEFAULT 0,"
    "  expires_ms INTEGER NOT NULL"
    ");"
    "INSERT INTO messages_8 SELECT id, queue, task_id,"
    "  coalesce(CASE WHEN json_valid(attributes) THEN json_extract(attributes, '$.TaskType.Value')"
    "    END, (SELECT t.task_type FROM tasks t WHERE t.id = messages.task_id)),"
    "  CASE WHEN json_valid(attributes) THEN json_extract(attributes, '$.traceparent.Value') END,"
    "  body, sent_ms, visible_ms, receive_count, expires_ms FROM messages;"
    "DROP TABLE messages;"
    "ALTER TABLE messages_8 RENAME TO messages;"
    "CREATE INDEX messages_by_visibility ON messages(queue, visible_ms);"
    "CREATE INDEX messages_by_expiry ON messages(expires_ms);",
    /* 9: a task's data past DATA_APART_BYTES (with its image) lives in its own row, written once:
     * every change of the task's status rewrote the whole task row, its data and data_image with it
     * (in overflow pages past about 1 KiB). The task row keeps '' and says so (data_apart); its
     * data_image is left out (NULL: whoever reads a whole change record derives it from the
     * data); deleting the task deletes its data */
    "ALTER TABLE tasks ADD COLUMN data_apart INTEGER NOT NULL DEFAULT 0;"
    "CREATE TABLE task_data ("
    "  id TEXT PRIMARY KEY,"
    "  data TEXT NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE TRIGGER task_data_gone AFTER DELETE ON tasks WHEN old.data_apart BEGIN"
    "  DELETE FROM task_data WHERE id = old.id;"
    "END;",
    /* 10: receives a runner gave back unstarted (a stop past its grace): they do not count
     * toward max_receive_count, lest a task go to the dead-letter queue never having run */
    "ALTER TABLE messages ADD COLUMN released INTEGER NOT NULL DEFAULT 0;",
    /* 11: the W3C tracestate that came with a task's traceparent, kept with the task and with
     * its messages beside their trace (NULL: none, as for every task and message before) */
    "ALTER TABLE tasks ADD COLUMN tracestate TEXT;"
    "ALTER TABLE messages ADD COLUMN tracestate TEXT;",
    /* 12: whether a dead letter's move failed its task, which a redrive alone makes CREATED
     * again (a task failed otherwise — cancelled, reported — stays final); the dead letters
     * before it moved so if their task says so */
    "ALTER TABLE messages ADD COLUMN failed_task INTEGER NOT NULL DEFAULT 0;"
    "UPDATE messages SET failed_task = 1 WHERE task_id IN (SELECT id FROM tasks "
    "  WHERE status = 'FAILED' AND status_msg LIKE 'moved to dead-letter queue %');",
    /* 13: a client's claim of a task IN_PROGRESS: the Idempotency-Key it came with and when its
     * lease ends (NULL: no client claim, or no lease), indexed for the sweep that ends leases */
    "ALTER TABLE tasks ADD COLUMN claim_key TEXT;"
    "ALTER TABLE tasks ADD COLUMN claim_expires INTEGER;"
    "CREATE INDEX tasks_by_claim_expiry ON tasks(claim_expires) WHERE claim_expires IS NOT NULL;",
};

#define N_MIGRATIONS (int)(sizeof migrations / sizeof migrations[0])

/* ---- types ------------------------------------------------------------- */

static const store_ops sqlite_ops;

/* ---- reads ------------------------------------------------------------- */

static store_rc sq_get_task(store *base, const char *id, task *out)
{
    sqlite_store *s = (sqlite_store *)base;
    uint64_t gen = 0;
    if (s->cache && task_cache_get(s->cache, id, out, &gen))
        return STORE_OK;
    reader *r = sq_reader_get(s);
    if (!r)
        return STORE_BUSY;
    sqlite3_bind_text(r->get, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(r->get);
    store_rc result;
    if (rc == SQLITE_ROW)
        result = sq_read_task_row(r->get, out, true) ? STORE_OK : STORE_ERROR;
    else if (rc == SQLITE_DONE)
        result = STORE_NOT_FOUND;
    else
        result = sq_rc_of(rc);
    sqlite3_reset(r->get);
    sqlite3_clear_bindings(r->get);
    sq_reader_put(s, r);
    if (result == STORE_OK && s->cache)
        task_cache_put(s->cache, out, gen); /* unless a commit forgot it meanwhile */
    return result;
}

/*
 * Read a task's history: its creation (entry 1, which the task row itself
 * records), then its rows. A gap in n says entries were dropped.
 */
static store_rc read_history(reader *r, const task *t, task_history *out)
{
    if (!task_history_add(out, TASK_CREATED, "", t->created_time))
        return STORE_ERROR;
    sqlite3_stmt *st = r->history;
    sqlite3_bind_text(st, 1, t->id, -1, SQLITE_STATIC);
    store_rc result = STORE_OK;
    int64_t last_n = 1;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        /* a status or message not copied fails the read, as a damaged row does */
        task_status status;
        bool nomem = false;
        const char *msg = sq_column_text(st, 2, &nomem);
        const char *name = sq_column_text(st, 1, &nomem);
        if (nomem || !msg || !task_status_parse(name, &status) ||
            !task_history_add(out, status, msg, sqlite3_column_int64(st, 3))) {
            result = STORE_ERROR;
            break;
        }
        last_n = sqlite3_column_int64(st, 0);
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        result = sq_rc_of(rc);
    out->truncated = last_n != (int64_t)out->count;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (result == STORE_OK && out->count == 1 && t->status != TASK_CREATED) {
        /* changed, yet nothing recorded: what the task itself tells */
        task_history_clear(out);
        if (!task_history_of_task(out, t))
            result = STORE_ERROR;
    }
    return result;
}

static store_rc sq_get_history(store *base, const char *id, task_history *out)
{
    sqlite_store *s = (sqlite_store *)base;
    memset(out, 0, sizeof *out);
    reader *r = sq_reader_get(s);
    if (!r)
        return STORE_BUSY;
    /* one read transaction, so the task and its history agree */
    store_rc result = sq_read_begin(r);
    task t = {0};
    if (result == STORE_OK) {
        sqlite3_bind_text(r->get, 1, id, -1, SQLITE_STATIC);
        int rc = sqlite3_step(r->get);
        if (rc == SQLITE_ROW)
            result = sq_read_task_row(r->get, &t, false) ? STORE_OK : STORE_ERROR;
        else
            result = rc == SQLITE_DONE ? STORE_NOT_FOUND : sq_rc_of(rc);
        sqlite3_reset(r->get);
        sqlite3_clear_bindings(r->get);
    }
    if (result == STORE_OK)
        result = read_history(r, &t, out);
    sq_read_end(r);
    task_clear(&t);
    sq_reader_put(s, r);
    if (result != STORE_OK)
        task_history_clear(out);
    return result;
}

/*
 * Step st (bound) and append its tasks, newest first, to rows (*n of them, room for cap); a
 * store code.
 */
static store_rc read_rows(sqlite3_stmt *st, task *rows, size_t cap, size_t *n)
{
    store_rc result = STORE_OK;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && *n < cap) {
        if (!sq_read_task_row(st, &rows[*n], false)) {
            result = STORE_ERROR;
            break;
        }
        (*n)++;
    }
    if (result == STORE_OK && rc != SQLITE_ROW && rc != SQLITE_DONE)
        result = sq_rc_of(rc);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return result;
}

static void bind_list(sqlite3_stmt *st, const char *status, const char *task_type,
                      const store_list_query *q)
{
    sq_bind_text(st, 1, status);
    sq_bind_text(st, 2, task_type);
    sq_bind_text(st, 3, q->before_id);
    sqlite3_bind_int(st, 4, q->limit + 1); /* one more tells whether a next page exists */
}

static int newest_first(const void *a, const void *b)
{
    return strcmp(((const task *)b)->id, ((const task *)a)->id);
}

/*
 * The tasks of one filter, by type alone or by status alone: one leg of tasks_by_type_status
 * per status (or per type the database has held), each its newest limit + 1, all in one read
 * transaction; the newest limit + 1 of them all are the page.
 */
static store_rc read_legs(sqlite_store *s, reader *r, const store_list_query *q, task **rows,
                          size_t *n)
{
    char(*types)[TASK_TYPE_MAX + 1] = NULL;
    size_t legs = (size_t)TASK_FAILED + 1; /* every status */
    if (q->status) { /* one leg per type, copied: creates may add to the list meanwhile */
        pthread_mutex_lock(&s->types_mu);
        legs = s->n_types;
        types = legs ? malloc(legs * sizeof *types) : NULL;
        if (types)
            memcpy(types, s->types, legs * sizeof *types);
        pthread_mutex_unlock(&s->types_mu);
        if (legs && !types)
            return STORE_ERROR;
    }
    size_t cap = legs * ((size_t)q->limit + 1);
    *rows = cap ? calloc(cap, sizeof **rows) : NULL;
    store_rc result = cap && !*rows ? STORE_ERROR : STORE_OK;
    if (result == STORE_OK && legs)
        result = sq_read_begin(r);
    sqlite3_stmt *st = r->list[LIST_LEG + (q->before_id ? 1 : 0)];
    for (size_t i = 0; i < legs && result == STORE_OK; i++) {
        bind_list(st, q->status ? q->status : task_status_name((task_status)i),
                  q->status ? types[i] : q->task_type, q);
        result = read_rows(st, *rows, cap, n);
    }
    if (legs)
        sq_read_end(r);
    free(types);
    if (result == STORE_OK)
        qsort(*rows, *n, sizeof **rows, newest_first);
    return result;
}

static store_rc sq_list_tasks(store *base, const store_list_query *q, store_page *out)
{
    sqlite_store *s = (sqlite_store *)base;
    memset(out, 0, sizeof *out);
    reader *r = sq_reader_get(s);
    if (!r)
        return STORE_BUSY;
    task *rows = NULL;
    size_t n = 0;
    store_rc result;
    if (!q->status == !q->task_type) { /* every task, or both filters: one statement */
        rows = calloc((size_t)q->limit + 1, sizeof *rows);
        sqlite3_stmt *st = r->list[(q->status ? LIST_LEG : LIST_ALL) + (q->before_id ? 1 : 0)];
        bind_list(st, q->status, q->task_type, q);
        result = rows ? read_rows(st, rows, (size_t)q->limit + 1, &n) : STORE_ERROR;
    } else {
        result = read_legs(s, r, q, &rows, &n);
    }
    sq_reader_put(s, r);
    if (result == STORE_OK) {
        out->more = n > (size_t)q->limit;
        out->count = out->more ? (size_t)q->limit : n;
    }
    for (size_t i = result == STORE_OK ? out->count : 0; i < n; i++)
        task_clear(&rows[i]);
    if (result == STORE_OK) {
        out->tasks = rows; /* NULL only when there is no leg at all (no task type yet) */
    } else {
        free(rows);
        out->count = 0;
        out->more = 0;
    }
    return result;
}

static store_rc sq_ping(store *base)
{
    sqlite_store *s = (sqlite_store *)base;
    reader *r = sq_reader_get(s);
    if (!r)
        return STORE_ERROR;
    int rc = sqlite3_exec(r->db, "SELECT count(*) FROM meta", NULL, NULL, NULL);
    sq_reader_put(s, r);
    return sq_rc_of(rc);
}

/* By tasks_by_claim_expiry: client claims whose lease ended before now, the earliest first. One
 * whose task id does not fit a task (a damaged or hand-edited database) is said and passed over
 * from then on (sq_pass_over()), as the sweep passes over the rows it cannot read: cut to fit, it
 * would end the lease of another task, or of none. */
static store_rc sq_expired_claims(store *base, int64_t now, store_claim *out, size_t max, size_t *n)
{
    sqlite_store *s = (sqlite_store *)base;
    *n = 0;
    reader *r = sq_reader_get(s);
    if (!r)
        return STORE_BUSY;
    sqlite3_stmt *st = NULL;
    int rc = sq_prepare(r->db,
                        "SELECT id, claim_expires FROM tasks WHERE claim_expires < ?1 "
                        "ORDER BY claim_expires",
                        &st);
    if (rc == SQLITE_OK) {
        /* no LIMIT: the rows come from the index as the loop reads them, up to max of those not
         * passed over, however many are found (or another read passes over) on the way */
        size_t known = sq_n_passed_over(s);
        sqlite3_bind_int64(st, 1, now);
        while (*n < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
            bool nomem = false;
            const char *id = sq_column_text(st, 0, &nomem);
            /* a NULL id, or one not copied (no memory): the read fails, rather than end the
             * lease of no task */
            if (!id) {
                rc = SQLITE_NOMEM;
                break;
            }
            if (known && sq_passed_over(s, id))
                continue;
            if (strlen(id) != TASK_ID_LEN) {
                if (!sq_pass_over(s, id,
                                  "a task's lease ran out, and its row cannot be read; the end of "
                                  "leases passes over it (the database is damaged)",
                                  task_creation_unfit(id, ""))) {
                    rc = SQLITE_NOMEM;
                    break;
                }
                continue;
            }
            memcpy(out[*n].id, id, sizeof out[*n].id);
            out[(*n)++].claim_expires = sqlite3_column_int64(st, 1);
        }
    }
    sqlite3_finalize(st);
    sq_reader_put(s, r);
    return rc == SQLITE_DONE || rc == SQLITE_ROW || rc == SQLITE_OK ? STORE_OK : sq_rc_of(rc);
}

static store_rc sq_secret(store *base, uint8_t key[16])
{
    memcpy(key, ((sqlite_store *)base)->secret, 16);
    return STORE_OK;
}

/* ---- the writer -------------------------------------------------------- */

/* An update of a task (a report, a PATCH) holds the task in the cache from its submit until
 * its commit is done: a read that comes meanwhile waits for it and answers what it writes
 * (task_cache_get(), up to TASK_CACHE_HOLD_WAIT_MS). */
static const char *updated_task(const store_write *w)
{
    return w->kind == STORE_WRITE_UPDATE && !w->adapter_data ? w->update.id : NULL;
}

/* Queue a write for the next batch; done() runs after its commit. */
static void sq_submit(store *base, store_write *w)
{
    sqlite_store *s = (sqlite_store *)base;
    w->next = NULL;
    pthread_mutex_lock(&s->mu);
    if (s->stopping) {
        pthread_mutex_unlock(&s->mu);
        w->rc = STORE_BUSY;
        w->done(w);
        return;
    }
    const char *held = updated_task(w);
    if (held) /* released by the writer, before done() */
        task_cache_hold(s->cache, held);
    if (s->queue_tail)
        s->queue_tail->next = w;
    else
        s->queue_head = w;
    s->queue_tail = w;
    atomic_fetch_add_explicit(&s->queued, 1, memory_order_release);
    pthread_mutex_unlock(&s->mu);
    /* after the unlock: a writer woken under it would only wait for the mutex */
    pthread_cond_signal(&s->wake);
}

static bool succeeded(store_rc rc)
{
    return rc == STORE_OK || rc == STORE_DUPLICATE || rc == STORE_REPEAT;
}

/* Note a failed write's SQLite code when it says writes fail until something outside changes. */
static void note_fault(sqlite_store *s, int code)
{
    switch (code) {
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_READONLY:
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
        if (!s->batch_fault)
            s->batch_fault = code;
        break;
    default: /* busy, a constraint, ...: the write's own trouble, or one that passes */
        break;
    }
}

/* The folder of the file at path ("." for a bare name), where SQLite keeps a database's -wal and
 * -shm files, into dir (size bytes); false when it does not fit, never cut. */
static bool folder_of(const char *path, char *dir, size_t size)
{
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (slash == path ? 1 : (size_t)(slash - path)) : 1;
    if (n >= size)
        return false;
    memcpy(dir, slash ? path : ".", n);
    dir[n] = '\0';
    return true;
}

/* Whether ROOM_AFTER_FULL bytes can be reserved in the database's directory: a file of that size
 * made beside it and removed. When that cannot be told (no such directory to write in, say),
 * the write that committed is taken at its word. */
static bool room_after_full(const sqlite_store *s)
{
    char path[PATH_MAX], dir[PATH_MAX];
    int n = snprintf(path, sizeof path, "%s-room", s->path);
    if (n < 0 || (size_t)n >= sizeof path || !folder_of(path, dir, sizeof dir))
        return true;
    /* a file without a name where the filesystem makes one (nothing is left if taskd dies
     * here), else a new one of its own: never one planted there */
    bool named = false;
    int fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0 && errno != ENOSPC && errno != EDQUOT) {
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        named = fd >= 0;
    }
    if (fd < 0)
        return errno != ENOSPC && errno != EDQUOT;
    int rc = posix_fallocate(fd, 0, ROOM_AFTER_FULL);
    close(fd);
    if (named)
        unlink(path);
    return rc != ENOSPC && rc != EDQUOT;
}

/*
 * After a batch: a fault seen makes the store unhealthy; a commit that wrote something makes it
 * healthy again once no write has failed for HEALTH_RECOVERY_MS, and after a full disk once it
 * has room (ROOM_AFTER_FULL). On a nearly full disk small writes (a probe, a PATCH) can succeed
 * between large ones that fail: health follows the large ones instead of flapping. Only the changes
 * between the two states are logged, so a full disk is one line, not one per write.
 */
static void settle_health(sqlite_store *s, bool wrote)
{
    int was = s->write_fault; /* only this thread changes it */
    int64_t now_ms = clock_mono_ms();
    int fault = was;
    if (s->batch_fault) {
        fault = s->batch_fault;
        s->last_fault_ms = now_ms;
    } else if (wrote && now_ms - s->last_fault_ms >= HEALTH_RECOVERY_MS) {
        if (was != SQLITE_FULL)
            fault = 0;
        else if (now_ms - s->last_room_ms >= ROOM_LOOK_MS) {
            s->last_room_ms = now_ms;
            if (room_after_full(s))
                fault = 0;
        }
    }
    if (fault == was)
        return;
    /* said before /health shows it: whoever reads the change there finds its line in the log */
    if (!was)
        log_error("the database cannot be written; writes answer 503 until it can", "database",
                  s->path, "error", sqlite3_errstr(fault), NULL);
    else if (!fault)
        log_info("the database can be written again", "database", s->path, NULL);
    pthread_mutex_lock(&s->health_mu);
    s->write_fault = fault;
    pthread_mutex_unlock(&s->health_mu);
}

static store_rc sq_write_health(store *base, char *why, size_t len)
{
    sqlite_store *s = (sqlite_store *)base;
    pthread_mutex_lock(&s->health_mu);
    int fault = s->write_fault;
    pthread_mutex_unlock(&s->health_mu);
    if (!fault)
        return STORE_OK;
    snprintf(why, len, "The task store cannot write: %s", sqlite3_errstr(fault));
    return STORE_ERROR;
}

/* Hold in the cache the tasks the batch wrote from just before its commit (hold) until
 * just after it or its rollback (release): whoever learns of the commit — by its change
 * records, which readers see the moment it lands, by a wake-up or by a reply — reads what it
 * wrote, never what the cache kept from before. */
static void hold_written(sqlite_store *s, bool hold)
{
    if (s->batch_written_lost)
        (hold ? task_cache_hold_all : task_cache_release_all)(s->cache);
    for (size_t i = 0; i < s->n_batch_written; i++)
        (hold ? task_cache_hold : task_cache_release)(s->cache, s->batch_written[i].id);
}

/* After a batch's commit: the listener counts the status changes of the tasks it wrote (a
 * claim again is a change, not one of status). */
static void after_commit(sqlite_store *s)
{
    for (size_t i = 0; i < s->n_batch_written; i++) {
        const struct written_task *w = &s->batch_written[i];
        if (s->listener.changed && !w->removed && !w->same_status)
            s->listener.changed(s->listener.ctx, w->task_type, w->status, w->created);
    }
}

/* What a batch has noted so far: a write undone takes the batch back to it. */
typedef struct batch_mark {
    size_t written;   /* s->n_batch_written: an undone write changed nothing */
    int64_t last_seq; /* s->batch_last_seq: its change records' seqs are given again */
    bool fed;         /* the feed as it was: on, where, what its checkpoint row says, and the
                       * takes it had; and whom it fed, which a set or stop undone gives back */
    int64_t fed_cp, fed_saved_cp;
    bool feed_set;
    broker_feed feed;
    char feed_consumer[CONFIG_NAME_MAX + 1];
    size_t takes;
    size_t moved;        /* the depth log's entries */
    int64_t clock_noted; /* the queue clock's last note, which a rollback takes with it */
} batch_mark;

static batch_mark batch_mark_take(sqlite_store *s)
{
    batch_mark m = {.written = s->n_batch_written,
                    .last_seq = s->batch_last_seq,
                    .fed = atomic_load(&s->feed.on),
                    .fed_cp = s->feed.cp,
                    .fed_saved_cp = s->feed.saved_cp,
                    .feed_set = s->feed.set,
                    .feed = s->feed.f,
                    .takes = s->feed.n_takes,
                    .moved = depth_log_mark(&s->depth_log),
                    .clock_noted = s->queue_clock_noted};
    memcpy(m.feed_consumer, s->feed.consumer, sizeof m.feed_consumer);
    return m;
}

/* After a ROLLBACK TO: forget what the writes since m noted. */
static void batch_rewind(sqlite_store *s, const batch_mark *m)
{
    s->n_batch_written = m->written;
    s->batch_last_seq = m->last_seq;
    sq_feed_finish(s, m->takes, false);
    /* a stop undone leaves the consumer fed (told so, it stops again), and a set undone leaves
     * none: kept, a stop undone left the feed on with no consumer set, which a stop made again
     * took for another's and left on, to feed the consumer after it went */
    s->feed.set = m->feed_set;
    s->feed.f = m->feed;
    memcpy(s->feed.consumer, m->feed_consumer, sizeof s->feed.consumer);
    atomic_store(&s->feed.on, m->fed);
    s->feed.cp = m->fed_cp;
    s->feed.saved_cp = m->fed_saved_cp; /* a publish undone wrote its checkpoint row */
    depth_log_rewind(&s->depth_log, m->moved);
    s->queue_clock_noted = m->clock_noted;
}

/* Apply one write (no savepoint of its own); w->rc is its outcome. */
static void apply_one(sqlite_store *s, store_write *w)
{
    const sq_job *job = w->adapter_data;
    if (job) {
        w->rc = job->apply(s, job->arg);
        return;
    }
    switch (w->kind) {
    case STORE_WRITE_CREATE:
        w->rc = sq_apply_create(s, w);
        break;
    case STORE_WRITE_UPDATE:
        w->rc = sq_apply_update(s, w);
        break;
    case STORE_WRITE_RECLAIM:
        w->rc = sq_apply_reclaim(s, w);
        break;
    }
}

/* Whether the batch's transaction is still open: SQLite may roll it back itself (an I/O error,
 * a full disk). A SAVEPOINT then would open a transaction of its own, which its RELEASE would
 * commit: a write that must fail with its batch would be kept alone. */
static bool in_transaction(const sqlite_store *s)
{
    return !sqlite3_get_autocommit(s->wdb);
}

/* Undo what the writes since the savepoint did. When that fails, the whole transaction goes
 * (the batch then fails as after SQLite's own rollback): the RELEASE that follows would keep
 * the half of a write that failed. */
static void rollback_to_savepoint(sqlite_store *s)
{
    if (sq_step_done(s->w_rollback_to) != SQLITE_OK)
        sq_step_done(s->w_rollback);
}

/* Apply one write inside the open transaction, in its own savepoint: a failed one (w->rc) is
 * rolled back with all the batch noted of it (feed, depths, seqs). */
static void apply_write(sqlite_store *s, store_write *w)
{
    if (!in_transaction(s) || sq_step_done(s->w_savepoint) != SQLITE_OK) {
        w->rc = STORE_ERROR;
        return;
    }
    batch_mark m = batch_mark_take(s);
    apply_one(s, w);
    if (!succeeded(w->rc)) {
        if (w->rc == STORE_ERROR)
            note_fault(s, sqlite3_errcode(s->wdb)); /* before the rollback resets it */
        rollback_to_savepoint(s);
        batch_rewind(s, &m);
    }
    if (in_transaction(s))
        sq_step_done(s->w_release);
}

/*
 * Apply the task writes from first up to end (creates, updates, reclaims: not the broker's jobs)
 * under one savepoint rather than one for each write, and return where to go on: end, or the
 * write after one that failed. A savepoint copies every page a write changes before it changes
 * it, and consecutive writes change the same pages (the last leaf of each table and index): one
 * copy for the run instead of one for each write. A write that fails having changed something
 * takes the run back: the writes before it are applied again, each in a savepoint of its own (a
 * task write applied again does the same: a new task gets a new id, an update reads its task
 * again), and the failed one keeps its outcome with nothing of it left.
 */
static store_write *apply_run(sqlite_store *s, store_write *first, store_write *end)
{
    if (!in_transaction(s) || sq_step_done(s->w_savepoint) != SQLITE_OK) {
        for (store_write *w = first; w != end; w = w->next)
            w->rc = STORE_ERROR;
        return end;
    }
    batch_mark m = batch_mark_take(s);
    store_write *failed = NULL;
    for (store_write *w = first; w != end && !failed; w = w->next) {
        int64_t before = sqlite3_total_changes64(s->wdb);
        apply_one(s, w);
        if (succeeded(w->rc))
            continue;
        if (w->rc == STORE_ERROR)
            note_fault(s, sqlite3_errcode(s->wdb));
        /* refused before it changed anything (a conflict, a task not found): nothing to undo */
        if (sqlite3_total_changes64(s->wdb) != before || !in_transaction(s))
            failed = w;
    }
    if (!failed) {
        sq_step_done(s->w_release);
        return end;
    }
    if (!in_transaction(s)) { /* the transaction went with it: so does the run */
        for (store_write *w = first; w != end; w = w->next)
            if (w != failed) /* which keeps its own error */
                w->rc = STORE_ERROR;
        return end;
    }
    rollback_to_savepoint(s);
    if (in_transaction(s))
        sq_step_done(s->w_release);
    batch_rewind(s, &m);
    for (store_write *w = first; w != failed; w = w->next) {
        task_clear(&w->current); /* what the first pass read (zero when it read nothing) */
        apply_write(s, w);
    }
    return failed->next;
}

/* Apply the task writes from first to the next broker job (or the batch's end) in runs
 * (apply_run()); return that job. */
static store_write *apply_task_writes(sqlite_store *s, store_write *first)
{
    store_write *end = first;
    while (end && !end->adapter_data)
        end = end->next;
    while (first != end)
        first = apply_run(s, first, end);
    return end;
}

/*
 * Set the connection's synchronous level: by sqlite3_exec(), not by a prepared statement, since
 * PRAGMA synchronous takes effect when it is compiled and stepping a prepared one does nothing.
 */
static int set_sync(sqlite_store *s, bool full)
{
    int rc =
        sqlite3_exec(s->wdb, full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL",
                     NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        s->syncing = full;
    return rc;
}

/* Wait for the disk at commit only when some write in the batch must be durable: SQLITE_OK, or
 * the SQLite code of a failure to set the connection to wait when it must (a commit that does not
 * wait answers none of them; one that waits where it need not costs a sync, no more). */
static int choose_sync(sqlite_store *s, const store_write *batch)
{
    bool durable = false;
    for (const store_write *w = batch; w && !durable; w = w->next)
        durable = !w->relaxed;
    durable = durable && s->sync_full;
    int rc = durable == s->syncing ? SQLITE_OK : set_sync(s, durable);
    return durable ? rc : SQLITE_OK;
}

/*
 * A commit made messages visible: the messages generation moves before its standing receives
 * settle. A runner that looked at its queue before the commit and stands after the settling
 * then finds the generation moved when it goes to sleep (broker_stand_wait()), and looks again;
 * moved only with the waiters' wake-up, after the answers (wake_waiters()), it could be missed,
 * and the runner slept out IDLE_RECHECK_MS with the message there.
 */
static void note_messages(sqlite_store *s)
{
    pthread_mutex_lock(&s->notify_mu);
    s->messages_gen++;
    pthread_mutex_unlock(&s->notify_mu);
}

/* Run one batch: its writes in savepoints (apply_task_writes()), one commit for all. */
static void run_batch(sqlite_store *s, store_write *batch)
{
    int64_t started = clock_mono_ms(); /* a step of the wall clock is not the commit's time */
    size_t writes = 0;
    for (const store_write *w = batch; w; w = w->next)
        writes++;
    int rc = choose_sync(s, batch);
    if (rc != SQLITE_OK) {
        log_error("cannot make the commit wait for the disk; its writes fail", "error",
                  sqlite3_errstr(rc), NULL);
        for (store_write *w = batch; w; w = w->next)
            w->rc = STORE_ERROR;
        return;
    }
    s->batch_wrote_changes = s->batch_sent_messages = false;
    s->n_batch_written = 0;
    s->batch_written_lost = false;
    s->batch_last_seq = atomic_load(&s->last_seq);
    depth_log_rewind(&s->depth_log, 0);
    batch_mark start = batch_mark_take(s); /* the feed as the last commit left it */
    s->batch_fault = 0;
    int64_t changes_before = sqlite3_total_changes64(s->wdb);
    rc = sq_step_done(s->w_begin);
    if (rc != SQLITE_OK) {
        store_rc failed = sq_rc_of(rc);
        note_fault(s, rc);
        if (!s->batch_fault)
            log_warn("cannot begin a write transaction", "error", sqlite3_errmsg(s->wdb), NULL);
        for (store_write *w = batch; w; w = w->next)
            w->rc = failed;
        settle_health(s, false);
        return;
    }
    for (store_write *w = batch; w;) {
        if (!in_transaction(s)) {
            /* SQLite rolled the transaction back itself (an I/O error, a full disk): what is
             * left would commit statement by statement; it fails with the batch instead */
            for (; w; w = w->next)
                w->rc = STORE_ERROR;
            break;
        }
        if (!w->adapter_data) {
            w = apply_task_writes(s, w);
            continue;
        }
        apply_write(s, w); /* a broker job: a savepoint of its own */
        w = w->next;
    }
    /* SQLite may have rolled the transaction back under the last write (an I/O error, a full
     * disk): then nothing more runs, or it would commit on its own, in autocommit; the batch
     * fails and is rewound below */
    bool gone = !in_transaction(s);
    if (!gone) {
        /* after every write: they may have made its messages visible */
        sq_standing_receive(s, apply_write);
        /* after them too: a crash after the commit leaves a note as new as the batch's deadlines
         * while the wall clock is behind, not one up to a sweep_interval old (or none) */
        sq_note_queue_clock_behind(s);
        gone = !in_transaction(s); /* and under its receives, or the note, too */
    }
    bool wrote = sqlite3_total_changes64(s->wdb) != changes_before;
    /* the fed consumer's checkpoint, with its messages */
    store_rc saved = gone ? STORE_ERROR : sq_feed_save(s);
    hold_written(s, true);
    rc = saved == STORE_OK ? sq_step_done(s->w_commit) : SQLITE_ERROR;
    if (rc != SQLITE_OK) {
        note_fault(s, rc);
        if (!s->batch_fault) /* a fault is logged once, by settle_health() */
            log_error("commit failed; the batch was rolled back", "error", sqlite3_errmsg(s->wdb),
                      NULL);
        sq_step_done(s->w_rollback);
        hold_written(s, false);
        sq_standing_settle(s, false);
        batch_rewind(s, &start);
        store_rc failed = sq_rc_of(rc) == STORE_BUSY ? STORE_BUSY : STORE_ERROR;
        for (store_write *w = batch; w; w = w->next)
            if (succeeded(w->rc))
                w->rc = failed;
    }
    if (rc == SQLITE_OK) {
        s->feed.saved_cp = s->feed.cp;
        hold_written(s, false);
        if (s->batch_sent_messages)
            note_messages(s);
        sq_standing_settle(s, true);
        sq_feed_finish(s, 0, true);
        after_commit(s);
        queue_depths_apply(s->depths, &s->depth_log, clock_steady_ms());
        if (s->depth_log.lost) {
            log_warn("queue depths lost track (out of memory); counting the queues again", NULL);
            s->depth_log.lost = sq_depths_load(s) != STORE_OK;
        }
    }
    if (rc == SQLITE_OK && s->batch_wrote_changes)
        atomic_store(&s->last_seq, s->batch_last_seq);
    /* the idle runners woken by wake_standing() before the writers have their answers, the
     * rest by wake_waiters() after */
    s->wake_changes = rc == SQLITE_OK && s->batch_wrote_changes;
    s->wake_messages = rc == SQLITE_OK && s->batch_sent_messages;
    settle_health(s, rc == SQLITE_OK && wrote);
    if (s->listener.committed)
        s->listener.committed(s->listener.ctx, writes, (double)(clock_mono_ms() - started) / 1e3,
                              s->syncing);
}

/* Wake the idle runners the last batch concerns (sq_standing_wake()). */
static void wake_standing(sqlite_store *s)
{
    if (s->wake_messages)
        sq_standing_wake(s);
}

/*
 * Wake the other threads the last batch gave work: those waiting for change records, and a
 * runner backing off after a failure for messages.
 */
static void wake_waiters(sqlite_store *s)
{
    if (!s->wake_changes && !s->wake_messages)
        return;
    if (s->wake_changes) { /* the messages generation moved with the commit (note_messages()) */
        pthread_mutex_lock(&s->notify_mu);
        s->changes_gen++;
        pthread_mutex_unlock(&s->notify_mu);
    }
    /* after the unlock, so that the threads woken do not wait for the mutex at once: a waiter
     * looks at the generations under it, and one that has not slept yet sees them moved */
    if (s->wake_changes)
        pthread_cond_broadcast(&s->changes_cv);
    if (s->wake_messages)
        pthread_cond_broadcast(&s->messages_cv);
    s->wake_changes = s->wake_messages = false;
}

static store_rc apply_probe(sqlite_store *s, void *arg)
{
    (void)arg;
    /* rewrites a row as it is: a page to the WAL at commit, no change to the data */
    return sq_rc_of(sqlite3_exec(
        s->wdb, "UPDATE meta SET value = value WHERE name = 'page_token_key'", NULL, NULL, NULL));
}

/* Writes failed and none is queued: try one, so health recovers without waiting for a client. */
static void probe_writes(sqlite_store *s)
{
    sq_job job = {.apply = apply_probe};
    store_write w = {.relaxed = true, .adapter_data = &job};
    run_batch(s, &w);
    wake_standing(s);
    wake_waiters(s);
}

/* Forget idempotency keys older than the window: once a minute, or after every batch while a
 * purge finds a whole PURGE_BATCH of them. */
static void purge_idempotency(sqlite_store *s)
{
    /* the callers' clock (the latest creation's time), the one the keys were stored with */
    int64_t now = s->latest_create;
    if (now == 0 || now - s->last_purge < 60)
        return;
    sqlite3_bind_int64(s->w_idem_purge, 1, now - STORE_IDEMPOTENCY_WINDOW);
    sqlite3_bind_int(s->w_idem_purge, 2, PURGE_BATCH);
    if (sq_step_done(s->w_idem_purge) != SQLITE_OK) {
        log_warn("idempotency key purge failed", "error", sqlite3_errmsg(s->wdb), NULL);
        s->last_purge = now;
    } else if (sqlite3_changes(s->wdb) < PURGE_BATCH) {
        s->last_purge = now; /* all gone: the next purge in a minute */
    }
}

/* A spinning core's hint to the CPU (and to a hypervisor's sibling thread). */
static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/*
 * Watch the write queue for WRITER_WATCH_NS before the writer sleeps (s->mu held, dropped
 * meanwhile). Under load the next write (a POST's, a runner's report) often comes within tens
 * of microseconds of a commit, and sleeping on the condition costs a futex wait, the
 * submitter's wake-up and a context switch back, more than the watch. Only with --sync normal:
 * where a commit waits for the disk, the writes that gather while the writer sleeps share the
 * next commit's fsync, and taking them one by one costs more (docs/design.md, "The writer
 * watches before it sleeps"). An idle writer watches once, then sleeps.
 */
static void watch_queue(sqlite_store *s)
{
    unsigned seen = atomic_load_explicit(&s->queued, memory_order_relaxed);
    pthread_mutex_unlock(&s->mu);
    int64_t until = clock_mono_ns() + WRITER_WATCH_NS;
    while (atomic_load_explicit(&s->queued, memory_order_acquire) == seen &&
           clock_mono_ns() < until)
        cpu_relax();
    pthread_mutex_lock(&s->mu);
}

static void *writer_main(void *arg)
{
    sqlite_store *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        bool watched = false;
        while (!s->queue_head && !s->stopping) {
            if (!s->write_fault) {
                if (!watched && !s->sync_full) {
                    watched = true;
                    watch_queue(s); /* then the queue is looked at again, under the lock */
                    continue;
                }
                pthread_cond_wait(&s->wake, &s->mu);
                continue;
            }
            struct timespec until = clock_mono_after_ms(PROBE_INTERVAL_S * 1000);
            if (pthread_cond_timedwait(&s->wake, &s->mu, &until) == ETIMEDOUT && !s->queue_head &&
                !s->stopping) {
                pthread_mutex_unlock(&s->mu);
                probe_writes(s);
                pthread_mutex_lock(&s->mu);
            }
        }
        if (!s->queue_head)
            break; /* stopping and drained */
        store_write *batch = s->queue_head;
        s->queue_head = s->queue_tail = NULL;
        pthread_mutex_unlock(&s->mu);

        run_batch(s, batch);
        /* the idle runners this commit gave messages first: their handlers then start while
         * the clients get their answers, and a client that reads its task next finds the
         * report already under way (a read waits for it) instead of the task still running.
         * The commit's task-cache holds are released below, with the answers: a woken runner
         * that reads such a task meanwhile reads the database, never the cache's old copy. */
        wake_standing(s);
        /* then the writers: on two cores, the other threads a commit wakes would stand
         * between a client and its reply */
        for (store_write *w = batch, *next; w; w = next) {
            next = w->next; /* w belongs to its caller again once done() runs */
            const char *held = updated_task(w);
            if (held)
                task_cache_release(s->cache, held);
            w->done(w);
        }
        wake_waiters(s);
        purge_idempotency(s);

        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ---- task types and ids ------------------------------------------------ */

/* The task types the database holds, read once at open: one index probe per type. */
static bool load_types(sqlite_store *s)
{
    sqlite3_stmt *st = NULL;
    if (sq_prepare(s->wdb,
                   "WITH RECURSIVE t(name) AS (SELECT min(task_type) FROM tasks UNION ALL "
                   "SELECT (SELECT min(task_type) FROM tasks WHERE task_type > t.name) FROM t "
                   "WHERE t.name IS NOT NULL) SELECT name FROM t WHERE name IS NOT NULL",
                   &st) != SQLITE_OK)
        return false;
    bool ok = true;
    int rc;
    while (ok && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        bool nomem = false;
        const char *type = sq_column_text(st, 0, &nomem); /* not copied: the open fails */
        /* one that does not fit is not noted cut to fit, a type no task has: its tasks are
         * damaged rows (sq_task_row_damaged()), which no read gives */
        ok = type && (strlen(type) > TASK_TYPE_MAX || sq_note_type(s, type));
    }
    sqlite3_finalize(st);
    return ok && rc == SQLITE_DONE;
}

/*
 * Task ids go on after the greatest one kept: a clock behind the one it was made by (set back,
 * or ahead before a restart) would otherwise make ids that sort below older tasks, and a new
 * task would be listed after them rather than first.
 */
static bool load_last_task_id(sqlite_store *s)
{
    sqlite3_stmt *st = NULL;
    if (sq_prepare(s->wdb, "SELECT max(id) FROM tasks", &st) != SQLITE_OK)
        return false;
    int rc = sqlite3_step(st);
    bool nomem = false; /* the id not copied fails the open: ids would go on from the clock */
    const char *last = rc == SQLITE_ROW && sqlite3_column_type(st, 0) == SQLITE_TEXT
                           ? sq_column_text(st, 0, &nomem)
                           : NULL;
    if (last)
        uuid7_resume(&s->ids, last);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW && !nomem;
}

bool store_sqlite_task_type_nth(store *base, size_t i, char *out, size_t len)
{
    sqlite_store *s = (sqlite_store *)base;
    pthread_mutex_lock(&s->types_mu);
    bool there = i < s->n_types;
    if (there)
        str_join(out, len, s->types[i], NULL);
    pthread_mutex_unlock(&s->types_mu);
    return there;
}

/* ---- open / close ------------------------------------------------------ */

static bool set_err(char *err, size_t errlen, const char *what, const char *path, const char *why)
{
    errbuf_set(err, errlen, "%s %s: %s", what, path, why);
    return false;
}

/*
 * Refuse a database taskd cannot take as its own, before anything is written to it (its journal
 * mode either): one another program made, which holds a schema of its own at version 0 (taskd's
 * first migration sets 1 in the transaction that makes its tables) or lacks taskd's tables at a
 * version of its own; or one a newer taskd migrated past what this one knows.
 */
static bool refuse_foreign(sqlite3 *db, const char *path, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    const char *sql = "SELECT (SELECT user_version FROM pragma_user_version), "
                      "(SELECT group_concat(name, ', ') FROM (SELECT name FROM sqlite_master "
                      "WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name LIMIT 4)), "
                      "(SELECT count(*) FROM sqlite_master WHERE type = 'table' "
                      "AND name IN ('tasks', 'meta'))";
    if (sq_prepare(db, sql, &st) != SQLITE_OK)
        return set_err(err, errlen, "cannot read the schema of", path, sqlite3_errmsg(db));
    bool ok = false;
    if (sqlite3_step(st) != SQLITE_ROW) {
        set_err(err, errlen, "cannot read the schema of", path, sqlite3_errmsg(db));
    } else {
        int version = sqlite3_column_int(st, 0);
        bool nomem = false; /* the names not copied are not none: the open cannot tell */
        const char *names = sq_column_text(st, 1, &nomem);
        bool ours = sqlite3_column_int(st, 2) == 2;
        if (nomem)
            set_err(err, errlen, "cannot read the schema of", path, sqlite3_errstr(SQLITE_NOMEM));
        else if (names && (version == 0 || !ours))
            errbuf_set(err, errlen,
                       "%s is not a taskd database: it holds another program's schema (%s); give "
                       "taskd a file of its own",
                       path, names);
        else if (version > 0 && !names)
            errbuf_set(err, errlen, "%s is not a taskd database: schema version %d, and no tables",
                       path, version);
        else if (version > N_MIGRATIONS)
            errbuf_set(err, errlen, "%s has schema version %d; this taskd knows up to %d", path,
                       version, N_MIGRATIONS);
        else
            ok = true;
    }
    sqlite3_finalize(st);
    return ok;
}

/* Apply the migrations the database has not seen yet, in one transaction: all of them or, when
 * one fails, none (the next start begins again from the same version). One commit, where each
 * migration had its own: a new database took 13 commits, each waiting for its fsync. */
static bool migrate(sqlite3 *db, const char *path, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    if (sq_prepare(db, "PRAGMA user_version", &st) != SQLITE_OK)
        return set_err(err, errlen, "cannot read the schema version of", path, sqlite3_errmsg(db));
    int version = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
    sqlite3_finalize(st);
    if (version < 0)
        return set_err(err, errlen, "cannot read the schema version of", path, sqlite3_errmsg(db));
    if (version >= N_MIGRATIONS)
        return true;
    char bump[48];
    snprintf(bump, sizeof bump, "PRAGMA user_version = %d", N_MIGRATIONS);
    char *msg = NULL;
    int v = version;
    bool began = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, &msg) == SQLITE_OK, ok = began;
    while (ok && v < N_MIGRATIONS &&
           (ok = sqlite3_exec(db, migrations[v], NULL, NULL, &msg) == SQLITE_OK))
        v++;
    bool applied = ok;
    ok = ok && sqlite3_exec(db, bump, NULL, NULL, &msg) == SQLITE_OK &&
         sqlite3_exec(db, "COMMIT", NULL, NULL, &msg) == SQLITE_OK;
    if (!ok) {
        if (began && !applied) /* the migration that failed */
            errbuf_set(err, errlen, "migration %d of %s failed: %s", v + 1, path,
                       msg ? msg : sqlite3_errmsg(db));
        else /* the transaction's begin, or its end */
            errbuf_set(err, errlen, "cannot migrate %s from version %d to %d: %s", path, version,
                       N_MIGRATIONS, msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return false;
    }
    for (v = version; v < N_MIGRATIONS; v++) {
        char to[16];
        snprintf(to, sizeof to, "%d", v + 1);
        log_info("schema migrated", "database", path, "version", to, NULL);
    }
    return true;
}

/*
 * Make again an index a read names (INDEXED BY) that is gone, dropped by hand: without it that
 * read cannot be prepared, and every open warned that it could not check the queues for a clock
 * gone back, and skipped the check, until the index was made by hand. Made as migrations 1 and
 * 8 made it. Said at WARN; one that cannot be made (a full disk) is said too, and the open goes
 * on, the check warning as before.
 */
static void remake_indexes(sqlite_store *s)
{
    sqlite3_stmt *st;
    if (sq_prepare(s->wdb,
                   "SELECT 1 FROM sqlite_master WHERE type = 'index' AND "
                   "name = 'messages_by_expiry'",
                   &st) != SQLITE_OK)
        return; /* not known: the check says what it finds */
    int step = sqlite3_step(st);
    sqlite3_finalize(st);
    if (step != SQLITE_DONE)
        return; /* there, or not known */
    char *msg = NULL;
    if (sqlite3_exec(s->wdb, "CREATE INDEX messages_by_expiry ON messages(expires_ms)", NULL, NULL,
                     &msg) == SQLITE_OK)
        log_warn("an index the store reads by was gone; it was made again", "database", s->path,
                 "index", "messages_by_expiry", NULL);
    else
        log_warn("an index the store reads by is gone and cannot be made again", "database",
                 s->path, "index", "messages_by_expiry", "error",
                 msg ? msg : sqlite3_errmsg(s->wdb), NULL);
    sqlite3_free(msg);
}

static bool load_secret(sqlite_store *s, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    bool ok = false;
    if (sq_prepare(s->wdb, "SELECT value FROM meta WHERE name = 'page_token_key'", &st) ==
        SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) == 16) {
            memcpy(s->secret, sqlite3_column_blob(st, 0), 16);
            ok = true;
        }
        sqlite3_finalize(st);
    }
    if (!ok)
        set_err(err, errlen, "cannot read the page token key of", s->path, sqlite3_errmsg(s->wdb));
    return ok;
}

static bool prepare_writer(sqlite_store *s)
{
    struct {
        sqlite3_stmt **st;
        const char *sql;
    } stmts[] = {
        {&s->w_begin, "BEGIN IMMEDIATE"},
        {&s->w_commit, "COMMIT"},
        {&s->w_rollback, "ROLLBACK"},
        {&s->w_savepoint, "SAVEPOINT op"},
        {&s->w_release, "RELEASE op"},
        {&s->w_rollback_to, "ROLLBACK TO op"},
        {&s->w_get, W_GET_SQL},
        {&s->w_insert,
         "INSERT INTO tasks (id, task_type, status, status_msg, created_time, ttl, "
         "data, trace, data_image, data_apart, tracestate) VALUES (?1, ?2, 'CREATED', '', ?3, ?4, "
         "?5, ?6, ?7, ?8, ?9)"},
        {&s->w_data_put, "INSERT INTO task_data (id, data) VALUES (?1, ?2)"},
        {&s->w_update,
         "UPDATE tasks SET status = ?1, status_msg = ?2, updated_time = ?3, "
         "result = coalesce(?4, result), finished_time = ?5, hist_n = ?7, claim_key = ?8, "
         "claim_expires = ?9 WHERE id = ?6"},
        {&s->w_lease, "UPDATE tasks SET claim_expires = ?2 WHERE id = ?1"},
        {&s->w_change,
         "INSERT INTO changes (seq, event_name, task_id, old_image, created_time, slim, "
         "task_type, new_status, new_msg, new_time, new_result, old_status, old_msg, old_time, "
         "old_result) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"},
        /* a key whose task is gone (swept) no longer holds: the create takes it anew */
        {&s->w_idem_get, "SELECT i.task_id FROM idempotency i JOIN tasks t ON t.id = i.task_id "
                         "WHERE i.key = ?1 AND i.created_time > ?2"},
        {&s->w_idem_put, "INSERT OR REPLACE INTO idempotency (key, task_id, created_time) "
                         "VALUES (?1, ?2, ?3)"},
        {&s->w_idem_purge, "DELETE FROM idempotency WHERE key IN (SELECT key FROM idempotency "
                           "WHERE created_time <= ?1 LIMIT ?2)"},
        {&s->w_hist_add, "INSERT INTO task_history (task_id, n, status, status_msg, time) "
                         "VALUES (?1, ?2, ?3, ?4, ?5)"},
        {&s->w_hist_time, "SELECT time FROM task_history WHERE task_id = ?1 AND n = ?2"},
        {&s->w_hist_trim, "DELETE FROM task_history WHERE task_id = ?1 AND n BETWEEN 2 AND ?2"},
        {&s->w_hist_delete, "DELETE FROM task_history WHERE task_id = ?1"},
    };
    for (size_t i = 0; i < sizeof stmts / sizeof stmts[0]; i++)
        if (sq_prepare(s->wdb, stmts[i].sql, stmts[i].st) != SQLITE_OK)
            return false;
    return true;
}

static void finalize_writer(sqlite_store *s)
{
    sqlite3_stmt *all[] = {s->w_begin,       s->w_commit,      s->w_rollback, s->w_savepoint,
                           s->w_release,     s->w_rollback_to, s->w_get,      s->w_insert,
                           s->w_data_put,    s->w_update,      s->w_change,   s->w_idem_get,
                           s->w_idem_put,    s->w_idem_purge,  s->w_hist_add, s->w_hist_trim,
                           s->w_hist_delete, s->w_hist_time,   s->w_lease};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        sqlite3_finalize(all[i]);
    sq_stmt_cache_clear(&s->w_broker);
}

/* Why taskd cannot create files in the directory of path (where SQLite keeps the database's -wal
 * and -shm files), or NULL. */
static const char *directory_unwritable(const char *path)
{
    char dir[PATH_MAX];
    if (!folder_of(path, dir, sizeof dir) || faccessat(AT_FDCWD, dir, W_OK | X_OK, AT_EACCESS) == 0)
        return NULL;
    return errno == EACCES || errno == EROFS || errno == EPERM ? strerror(errno) : NULL;
}

/* Whether fd is the file path names now (through a symbolic link, as SQLite opens it). */
static bool names_file(const char *path, int fd)
{
    struct stat named, held;
    return stat(path, &named) == 0 && fstat(fd, &held) == 0 && named.st_dev == held.st_dev &&
           named.st_ino == held.st_ino;
}

/*
 * Take an exclusive lock on the database file itself (created empty if it is
 * not there, which SQLite reads as an empty database), so two servers never
 * share a database, whatever path each was given: a symbolic link or a hard
 * link reaches the same file, and the same lock. flock() locks are apart from
 * the POSIX locks SQLite takes on the file, and this descriptor is closed only
 * after SQLite has closed the database.
 */
static bool lock_database(sqlite_store *s, char *err, size_t errlen)
{
    bool made = false;
    for (int tries = 0;; tries++) {
        /* made here, or there before (or, through a symbolic link that leads nowhere yet, not
         * known: taken as there before) */
        s->lock_fd = open(s->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        made = s->lock_fd >= 0;
        if (!made && errno == EEXIST)
            s->lock_fd = open(s->path, O_RDWR | O_CLOEXEC);
        if (!made && s->lock_fd < 0 && errno == ENOENT)
            s->lock_fd = open(s->path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (s->lock_fd < 0) {
            int e = errno;
            errbuf_set(err, errlen, "cannot open %s: %s%s", s->path, strerror(e),
                       e == ENOENT ? " (taskd creates the database, not its directory)" : "");
            return false;
        }
        if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0)
            return set_err(err, errlen, "database in use:", s->path,
                           errno == EWOULDBLOCK ? "another taskd is serving it" : strerror(errno));
        /* Still the file the path names: a start that made the file and failed removes it, then
         * lets go of its lock, and one that opened the file meanwhile would hold a lock on no
         * file while SQLite made another at the path, for a third start to take as well. */
        if (names_file(s->path, s->lock_fd))
            break;
        close(s->lock_fd);
        s->lock_fd = -1;
        if (tries == 2)
            return set_err(err, errlen, "cannot lock", s->path,
                           "its file was removed or replaced each time it was locked");
    }
    s->made_file = made; /* and locked: no other taskd has it */
    /* said here, or SQLite says "attempt to write a readonly database" of a writable file */
    const char *why = directory_unwritable(s->path);
    if (why) {
        errbuf_set(err, errlen,
                   "cannot create files beside %s: %s (SQLite keeps the database's -wal and -shm "
                   "files in its directory)",
                   s->path, why);
        return false;
    }
    return true;
}

/* After a failed open that made the database file, with its connection closed and the file still
 * locked: remove it and what SQLite made beside it, so that none is left of an open that never
 * served. What cannot be removed is said after the open's error. */
static void remove_made_files(const char *path, char *err, size_t errlen)
{
    static const char *const beside[] = {"-wal", "-shm", "-journal", ""};
    for (size_t i = 0; i < sizeof beside / sizeof beside[0]; i++) {
        char name[PATH_MAX];
        int n = snprintf(name, sizeof name, "%s%s", path, beside[i]);
        if (n < 0 || (size_t)n >= sizeof name || (unlink(name) != 0 && errno != ENOENT)) {
            if (err && errlen)
                errbuf_append(err, errlen, "; nor can the file it made be removed: %s: %s", name,
                              n < 0 || (size_t)n >= sizeof name ? "path too long"
                                                                : strerror(errno));
            return;
        }
    }
}

/*
 * Stop the store and free it. A store that ran folds the WAL back into the database first, so that
 * a clean stop leaves one file; where that fails (a full disk) the WAL stays beside it and the next
 * open reads it: nothing is lost. After a failed open (err: its error) nothing is folded here:
 * SQLite's own close folds what the open wrote (the migrations) where it can, the next open reads
 * what it cannot, and a warning of a failed checkpoint would read as if the store had run, ahead
 * of the open's own error. A connection that cannot be closed (a statement left unfinalized) stays
 * open, and is logged, or said in err after the open's error.
 */
static void close_store(sqlite_store *s, char *err, size_t errlen)
{
    if (s->writer) {
        pthread_mutex_lock(&s->mu);
        s->stopping = true;
        pthread_cond_signal(&s->wake);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->writer, NULL);
    }
    for (reader *r = s->all_readers, *next; r; r = next) {
        next = r->all_next;
        sq_reader_free(r);
    }
    finalize_writer(s);
    if (s->wdb && s->writer) {  /* opened whole */
        sq_note_queue_clock(s); /* where the queue clock is, for the next open */
        if (sqlite3_wal_checkpoint_v2(s->wdb, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL) !=
            SQLITE_OK)
            log_warn("the last checkpoint failed: the write-ahead log is kept and read at the next "
                     "start",
                     "database", s->path, "error", sqlite3_errmsg(s->wdb), NULL);
    }
    bool closed = !s->wdb || sqlite3_close(s->wdb) == SQLITE_OK;
    if (!closed) {
        if (err && errlen) {
            errbuf_append(err, errlen, "; nor can it be closed: %s", sqlite3_errmsg(s->wdb));
        } else {
            log_warn("cannot close the database: the write-ahead log is kept and read at the next "
                     "start",
                     "database", s->path, "error", sqlite3_errmsg(s->wdb), NULL);
        }
    }
    if (!s->writer && s->made_file && closed) /* a failed open that made the file */
        remove_made_files(s->path, err, errlen);
    if (s->lock_fd >= 0)
        close(s->lock_fd);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->wake);
    pthread_cond_destroy(&s->reader_free);
    pthread_mutex_destroy(&s->notify_mu);
    pthread_cond_destroy(&s->changes_cv);
    pthread_cond_destroy(&s->messages_cv);
    pthread_mutex_destroy(&s->standing_mu);
    pthread_cond_destroy(&s->standing_settled);
    pthread_mutex_destroy(&s->health_mu);
    pthread_mutex_destroy(&s->types_mu);
    pthread_mutex_destroy(&s->unreadable_mu);
    free(s->types);
    for (size_t i = 0; i < s->n_unreadable; i++)
        free(s->unreadable[i]);
    free(s->unreadable);
    free(s->batch_written);
    free(s->feed.takes);
    task_cache_free(s->cache);
    sbuf_free(&s->w_image);
    depth_log_free(&s->depth_log);
    queue_depths_free(s->depths);
    free(s->path);
    free(s);
}

static void sq_close(store *base)
{
    close_store((sqlite_store *)base, NULL, 0);
}

/*
 * The longest the configuration ever hides a message ahead of now — a queue's visibility timeout
 * or delay, a run's extension (its handler's timeout) — with a minute to spare, which covers the
 * runner's margin past it (5 s, runner.c): one hidden further at open was hidden before the wall
 * clock went back. 0 without a configuration: not known.
 */
static int64_t max_hide_ms(const config *c)
{
    if (!c)
        return 0;
    unsigned s = 0;
    for (size_t i = 0; i < c->n_queues; i++) {
        if (c->queues[i].visibility_timeout > s)
            s = c->queues[i].visibility_timeout;
        if (c->queues[i].delay > s)
            s = c->queues[i].delay;
    }
    for (size_t i = 0; i < c->n_handlers; i++)
        if (c->handlers[i].timeout > s)
            s = c->handlers[i].timeout;
    return ((int64_t)s + 60) * 1000;
}

store *store_sqlite_open(const store_sqlite_options *o, char *err, size_t errlen)
{
    sqlite_store *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(o->path))) {
        free(s);
        errbuf_set(err, errlen, "out of memory");
        return NULL;
    }
    s->base.ops = &sqlite_ops;
    s->feed.record = sq_feed_record;
    s->lock_fd = -1;
    if (o->listener)
        s->listener = *o->listener;
    s->sync_full = o->sync == STORE_SYNC_FULL;
    pthread_mutex_init(&s->mu, NULL);
    clock_mono_cond_init(&s->wake);
    pthread_cond_init(&s->reader_free, NULL);
    pthread_mutex_init(&s->notify_mu, NULL);
    clock_mono_cond_init(&s->changes_cv);
    clock_mono_cond_init(&s->messages_cv);
    pthread_mutex_init(&s->standing_mu, NULL);
    pthread_cond_init(&s->standing_settled, NULL);
    pthread_mutex_init(&s->health_mu, NULL);
    pthread_mutex_init(&s->types_mu, NULL);
    pthread_mutex_init(&s->unreadable_mu, NULL);
    s->changes_gen = s->messages_gen = 1; /* 0 means "not waited yet" to broker_wait() */
    /* before lock_database() makes the file: SQLite would say "unable to open database file" */
    size_t full, max;
    if (sq_path_length(s->path, &full, &max) && full > max) {
        errbuf_set(err, errlen,
                   "the database path is too long: %zu bytes as a full path, where SQLite takes at "
                   "most %zu: %s",
                   full, max, s->path);
        goto fail;
    }
    if (!lock_database(s, err, errlen))
        goto fail;
    int rc = sq_open_conn(s->path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &s->wdb);
    if (rc != SQLITE_OK) {
        set_err(err, errlen, "cannot open database", s->path,
                s->wdb ? sqlite3_errmsg(s->wdb) : sqlite3_errstr(rc));
        goto fail;
    }
    sqlite3_busy_timeout(s->wdb, o->busy_timeout_ms > 0 ? o->busy_timeout_ms : 5000);
    if (!refuse_foreign(s->wdb, s->path, err, errlen))
        goto fail;
    char *msg = NULL;
    /* temp_store in memory: the savepoint of each write keeps its undo pages in a statement
     * journal, which otherwise spills past 64 KiB (a receive that claims 100 tasks) into a
     * temporary file that is created, written and deleted within the write.
     * secure_delete FAST: a deleted row's bytes are zeroed in its page, as with ON (which some
     * builds of SQLite default to), but a page freed whole is not rewritten with zeros, a page
     * more in the WAL for every page of messages the pipeline empties */
    const char *pragmas = "PRAGMA journal_mode = WAL; PRAGMA temp_store = MEMORY;"
                          "PRAGMA secure_delete = FAST;"
                          "PRAGMA journal_size_limit = " WAL_SIZE_LIMIT ";";
    if (sqlite3_exec(s->wdb, pragmas, NULL, NULL, &msg) != SQLITE_OK ||
        set_sync(s, s->sync_full) != SQLITE_OK) {
        set_err(err, errlen, "cannot use database", s->path, msg ? msg : sqlite3_errmsg(s->wdb));
        sqlite3_free(msg);
        goto fail;
    }
    if (!migrate(s->wdb, s->path, err, errlen) || !load_secret(s, err, errlen))
        goto fail;
    remake_indexes(s);
    if (!load_types(s) || !load_last_task_id(s)) {
        set_err(err, errlen, "cannot read the task types and ids of", s->path,
                sqlite3_errmsg(s->wdb));
        goto fail;
    }
    if (!sq_last_ids_load(s)) {
        set_err(err, errlen, "cannot read the change log and queues of", s->path,
                sqlite3_errmsg(s->wdb));
        goto fail;
    }
    char why[256];
    int64_t back_ms, moved = sq_messages_follow_clock_back(s, o->config, &back_ms, why, sizeof why);
    if (moved < 0) {
        log_warn("cannot check the queues for a clock gone back", "error", why, NULL);
    } else if (moved > 0) { /* they would live, and some stay hidden, as long as it went back */
        char count[24], step[24];
        snprintf(count, sizeof count, "%lld", (long long)moved);
        snprintf(step, sizeof step, "%lld", (long long)-back_ms);
        log_warn("the wall clock went back since the queues' deadlines were set (by the last "
                 "stop's note of their clock, or the newest send): they moved back with it",
                 "step_ms", step, "messages", count, NULL);
    }
    int64_t max_hide = max_hide_ms(o->config);
    if (max_hide > 0) {
        int64_t n = sq_unhide_past(s, max_hide);
        if (n < 0) {
            log_warn("cannot check the queues for messages hidden past any timeout", "error",
                     sqlite3_errmsg(s->wdb), NULL);
        } else if (n > 0) { /* their tasks would wait as long as the clock went back */
            char count[24];
            snprintf(count, sizeof count, "%lld", (long long)n);
            log_warn("messages hidden past any timeout made visible: the clock went back since "
                     "they were hidden",
                     "messages", count, NULL);
        }
    }
    if (!(s->depths = queue_depths_new()) || sq_depths_load(s) != STORE_OK) {
        set_err(err, errlen, "cannot count the queues of", s->path, sqlite3_errmsg(s->wdb));
        goto fail;
    }
    if (!(s->cache = task_cache_new(TASK_CACHE_SETS))) {
        set_err(err, errlen, "cannot start the store of", s->path, "out of memory");
        goto fail;
    }
    if (!prepare_writer(s)) {
        set_err(err, errlen, "cannot prepare statements on", s->path, sqlite3_errmsg(s->wdb));
        goto fail;
    }
    if (!sq_task_columns_hold(s->w_get, true, W_GET_OWN)) {
        set_err(err, errlen, "cannot prepare statements on", s->path,
                "a task's columns are not where taskd reads them");
        goto fail;
    }
    if (pthread_create(&s->writer, NULL, writer_main, s) != 0) {
        s->writer = 0;
        set_err(err, errlen, "cannot start the writer for", s->path, strerror(errno));
        goto fail;
    }
    pthread_setname_np(s->writer, "store-writer");
    return &s->base;
fail:
    close_store(s, err, errlen);
    return NULL;
}

static const store_ops sqlite_ops = {
    .system = "sqlite",
    .submit = sq_submit,
    .get_task = sq_get_task,
    .list_tasks = sq_list_tasks,
    .get_history = sq_get_history,
    .ping = sq_ping,
    .write_health = sq_write_health,
    .expired_claims = sq_expired_claims,
    .secret = sq_secret,
    .close = sq_close,
};
