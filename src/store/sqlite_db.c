/*
 * sqlite_db — the SQLite adapter's ground floor: the statement helpers every
 * file of it uses (result codes, columns, bindings, a task row), the
 * connections (process-wide settings, how one is opened) and the pool of
 * read-only connections with their prepared statements, borrowed by the
 * port's reads and the broker's, and the tasks the sweeps pass over. See sqlite_internal.h.
 */
#include "sqlite_internal.h"

#include "util/log.h"

#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_READERS 64
/* SQLite's pager opens no database whose full path, with this much more (its "-journal"), is
 * longer than its VFS's mxPathname */
#define JOURNAL_ROOM 8

/* ---- helpers ----------------------------------------------------------- */

store_rc sq_rc_of(int sqlite_rc)
{
    switch (sqlite_rc) {
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW:
        return STORE_OK;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return STORE_BUSY;
    default:
        return STORE_ERROR;
    }
}

const char *sq_column_text(sqlite3_stmt *st, int col, bool *failed)
{
    /* the type first: SQLite leaves it undefined once the text converted the value (a number
     * whose conversion failed then reads NULL, as a NULL) */
    if (sqlite3_column_type(st, col) == SQLITE_NULL)
        return NULL;
    const char *t = (const char *)sqlite3_column_text(st, col);
    if (!t)
        *failed = true; /* SQLite's own copy of it failed: no memory */
    return t;
}

int64_t sq_time_col(sqlite3_stmt *st, int col)
{
    return sqlite3_column_type(st, col) == SQLITE_NULL ? TASK_NULL_TIME
                                                       : sqlite3_column_int64(st, col);
}

void sq_bind_time(sqlite3_stmt *st, int idx, int64_t t)
{
    if (t == TASK_NULL_TIME)
        sqlite3_bind_null(st, idx);
    else
        sqlite3_bind_int64(st, idx, t);
}

void sq_bind_text(sqlite3_stmt *st, int idx, const char *s)
{
    if (s)
        sqlite3_bind_text(st, idx, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, idx);
}

/* Run a statement that returns no rows, then reset it. */
int sq_step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

bool sq_dup_nullable_col(sqlite3_stmt *st, int col, char **out)
{
    bool failed = false;
    const char *t = sq_column_text(st, col, &failed);
    *out = t ? strdup(t) : NULL;
    return !failed && (*out || !t);
}

bool sq_task_columns_hold(sqlite3_stmt *st, bool full, const char *const *own)
{
    static const char *const names[TC_END_FULL] = {
        [TC_ID] = "id",          [TC_TYPE] = "task_type",       [TC_STATUS] = "status",
        [TC_MSG] = "status_msg", [TC_CREATED] = "created_time", [TC_UPDATED] = "updated_time",
        [TC_TTL] = "ttl",        [TC_DATA] = "CASE WHEN ", /* TASK_DATA_OF()'s expression, named by
                                                              its text */
        [TC_RESULT] = "result",  [TC_TRACE] = "trace",          [TC_TRACESTATE] = "tracestate",
    };
    int n = full ? TC_END_FULL : TC_END, n_own = 0;
    while (own && own[n_own])
        n_own++;
    if (sqlite3_column_count(st) < n + n_own)
        return false;
    for (int i = 0; i < n + n_own; i++) {
        const char *name = sqlite3_column_name(st, i); /* NULL: no memory */
        const char *want = i < n ? names[i] : own[i - n];
        if (!name || (i == TC_DATA ? strncmp(name, want, strlen(want)) : strcmp(name, want)) != 0)
            return false;
    }
    return true;
}

/* Read the columns of TASK_COLUMNS [_FULL] (enum task_col) of the current row into t. */
bool sq_read_task_row(sqlite3_stmt *st, task *t, bool full)
{
    memset(t, 0, sizeof *t);
    /* each text through sq_column_text(): one SQLite could not copy fails the read, where it
     * was an empty id or type, a task FAILED, or (the columns are NOT NULL) a NULL */
    bool failed = false;
    const char *id = sq_column_text(st, TC_ID, &failed);
    const char *type = sq_column_text(st, TC_TYPE, &failed);
    /* one that does not fit is not cut to fit: a cut id names another task, or none */
    bool fits = !task_creation_unfit(id, type);
    if (fits) {
        snprintf(t->id, sizeof t->id, "%s", id);
        snprintf(t->task_type, sizeof t->task_type, "%s", type);
    }
    const char *status = sq_column_text(st, TC_STATUS, &failed);
    if (!task_status_parse(status, &t->status))
        t->status = TASK_FAILED; /* unreachable when copied: the column only holds valid names */
    bool ok = !failed && fits && status && sq_dup_nullable_col(st, TC_MSG, &t->status_msg) &&
              t->status_msg;
    t->created_time = sqlite3_column_int64(st, TC_CREATED);
    t->updated_time = sq_time_col(st, TC_UPDATED);
    t->ttl = sq_time_col(st, TC_TTL);
    if (full) {
        ok = ok && sq_dup_nullable_col(st, TC_DATA, &t->data) && t->data &&
             sq_dup_nullable_col(st, TC_RESULT, &t->result) &&
             sq_dup_nullable_col(st, TC_TRACE, &t->trace) &&
             sq_dup_nullable_col(st, TC_TRACESTATE, &t->tracestate);
    }
    if (!ok)
        task_clear(t);
    return ok;
}

const char *sq_task_row_damaged(sqlite3_stmt *st, bool *failed)
{
    static const int kept[] = {TC_TYPE, TC_STATUS, TC_MSG, TC_DATA};
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++)
        if (sqlite3_column_type(st, kept[i]) == SQLITE_NULL)
            return "its row lacks a value taskd keeps";
    const char *unfit =
        task_creation_unfit(sq_column_text(st, TC_ID, failed), sq_column_text(st, TC_TYPE, failed));
    return *failed ? NULL : unfit;
}

/* ---- tasks the sweeps pass over ----------------------------------------- */

/* Where id is in s->unreadable, or where it would go (*found: whether it is there); under
 * unreadable_mu. */
static size_t unreadable_place(const sqlite_store *s, const char *id, bool *found)
{
    size_t lo = 0, hi = s->n_unreadable;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(s->unreadable[mid], id) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < s->n_unreadable && strcmp(s->unreadable[lo], id) == 0;
    return lo;
}

bool sq_passed_over(sqlite_store *s, const char *id)
{
    bool found;
    pthread_mutex_lock(&s->unreadable_mu);
    unreadable_place(s, id, &found);
    pthread_mutex_unlock(&s->unreadable_mu);
    return found;
}

size_t sq_n_passed_over(sqlite_store *s)
{
    pthread_mutex_lock(&s->unreadable_mu);
    size_t n = s->n_unreadable;
    pthread_mutex_unlock(&s->unreadable_mu);
    return n;
}

bool sq_pass_over(sqlite_store *s, const char *id, const char *what, const char *why)
{
    pthread_mutex_lock(&s->unreadable_mu);
    /* there already when another pass found it since the caller looked (sq_passed_over(), or not
     * at all while none was known): said and counted once */
    bool found;
    size_t at = unreadable_place(s, id, &found);
    char *copy = found ? NULL : strdup(id);
    if (copy && s->n_unreadable == s->cap_unreadable) {
        size_t cap = s->cap_unreadable ? 2 * s->cap_unreadable : 16;
        char **grown = realloc(s->unreadable, cap * sizeof *grown);
        if (grown) {
            s->unreadable = grown;
            s->cap_unreadable = cap;
        }
    }
    bool added = copy && s->n_unreadable < s->cap_unreadable;
    if (added) {
        memmove(s->unreadable + at + 1, s->unreadable + at,
                (s->n_unreadable - at) * sizeof *s->unreadable);
        s->unreadable[at] = copy;
        s->n_unreadable++;
    }
    size_t n = s->n_unreadable;
    pthread_mutex_unlock(&s->unreadable_mu);
    if (found)
        return true;
    if (!added) {
        free(copy);
        return false;
    }
    char count[24];
    snprintf(count, sizeof count, "%zu", n);
    log_error(what, "task_id", id, "error", why, "unreadable_tasks", count, NULL);
    return true;
}

/* ---- connections ------------------------------------------------------- */

/*
 * Process-wide SQLite settings, made once before SQLite initializes. Memory
 * statistics off: with them on, every allocation and free inside SQLite takes a
 * global mutex to count bytes that taskd never reads (sqlite3_memory_used()).
 */
static void configure_sqlite(void)
{
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); /* SQLITE_MISUSE if already initialized: kept */
}

/* configure_sqlite() once, before SQLite is first used. */
static void sq_configure(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, configure_sqlite);
}

bool sq_path_length(const char *path, size_t *len, size_t *max)
{
    sq_configure();
    sqlite3_vfs *vfs = sqlite3_vfs_find(NULL);
    /* room for the working directory before a relative path */
    size_t room = strlen(path) + PATH_MAX + 1;
    if (!vfs || vfs->mxPathname <= JOURNAL_ROOM || room > INT_MAX)
        return false;
    char *full = malloc(room);
    bool told = full && vfs->xFullPathname(vfs, path, (int)room, full) == SQLITE_OK;
    if (told) {
        *len = strlen(full);
        *max = (size_t)(vfs->mxPathname - JOURNAL_ROOM);
    }
    free(full);
    return told;
}

int sq_open_conn(const char *path, int flags, sqlite3 **out)
{
    sq_configure();
    int rc = sqlite3_open_v2(path, out, flags | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_extended_result_codes(*out, 0);
    sqlite3_busy_timeout(*out, 5000);
    return SQLITE_OK;
}

int sq_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
    return sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
}

void sq_stmt_cache_clear(sq_stmt_cache *c)
{
    for (int i = 0; i < SQ_BROKER_STMTS; i++) {
        sqlite3_finalize(c->st[i]);
        c->st[i] = NULL;
    }
}

void sq_reader_free(reader *r)
{
    if (!r)
        return;
    sq_stmt_cache_clear(&r->broker);
    sqlite3_finalize(r->get);
    sqlite3_finalize(r->history);
    for (int i = 0; i < LIST_STMTS; i++)
        sqlite3_finalize(r->list[i]);
    sqlite3_finalize(r->begin);
    sqlite3_finalize(r->end);
    sqlite3_close(r->db);
    free(r);
}

/* Why a read connection failed to open, from SQLite's error and the system's, into why[len]. */
static void reader_failure(sqlite3 *db, char *why, size_t len)
{
    int os = db ? sqlite3_system_errno(db) : 0;
    snprintf(why, len, "%s%s%s", db ? sqlite3_errmsg(db) : "out of memory", os ? ": " : "",
             os ? strerror(os) : "");
}

/* A read connection with its statements; NULL with why[len] said when it cannot be had. */
static reader *reader_open(const char *path, char *why, size_t len)
{
    reader *r = calloc(1, sizeof *r);
    if (!r) {
        reader_failure(NULL, why, len);
        return NULL;
    }
    if (sq_open_conn(path, SQLITE_OPEN_READONLY, &r->db) != SQLITE_OK ||
        sq_prepare(r->db, "SELECT " TASK_COLUMNS_FULL " FROM tasks WHERE id = ?1", &r->get) !=
            SQLITE_OK ||
        !sq_task_columns_hold(r->get, true, NULL) ||
        sq_prepare(r->db,
                   "SELECT n, status, status_msg, time FROM task_history WHERE task_id = ?1 "
                   "ORDER BY n",
                   &r->history) != SQLITE_OK) {
        goto fail;
    }
    for (int v = 0; v < LIST_STMTS; v++) {
        char sql[256];
        snprintf(sql, sizeof sql,
                 "SELECT " TASK_COLUMNS " FROM tasks WHERE 1%s%s ORDER BY id DESC LIMIT ?4",
                 v & LIST_LEG ? " AND task_type = ?2 AND status = ?1" : "",
                 v & 1 ? " AND id < ?3" : "");
        if (sq_prepare(r->db, sql, &r->list[v]) != SQLITE_OK ||
            !sq_task_columns_hold(r->list[v], false, NULL)) {
            goto fail;
        }
    }
    if (sq_prepare(r->db, "BEGIN", &r->begin) != SQLITE_OK ||
        sq_prepare(r->db, "COMMIT", &r->end) != SQLITE_OK) {
        goto fail;
    }
    return r;
fail:
    reader_failure(r->db, why, len);
    sq_reader_free(r);
    return NULL;
}

/* Borrow a read connection, opening one if none is free (up to MAX_READERS). */
reader *sq_reader_get(sqlite_store *s)
{
    pthread_mutex_lock(&s->mu);
    while (!s->free_readers && s->n_readers >= MAX_READERS)
        pthread_cond_wait(&s->reader_free, &s->mu);
    reader *r = s->free_readers;
    if (r) {
        s->free_readers = r->next;
        pthread_mutex_unlock(&s->mu);
        return r;
    }
    s->n_readers++; /* reserve a place, then open outside the lock */
    pthread_mutex_unlock(&s->mu);
    char why[256];
    r = reader_open(s->path, why, sizeof why);
    pthread_mutex_lock(&s->mu);
    /* a failure passes (descriptors or memory come free), and its callers answer "busy" meanwhile
     * (a 503 with Retry-After): said once when it begins, and once when a connection opens again */
    bool began = !r && !s->readers_failing, ended = r && s->readers_failing;
    s->readers_failing = !r;
    if (r) {
        r->all_next = s->all_readers;
        s->all_readers = r;
    } else {
        s->n_readers--; /* give the place back; the caller answers "busy" */
        pthread_cond_signal(&s->reader_free);
    }
    pthread_mutex_unlock(&s->mu);
    if (began)
        log_warn("cannot open a read connection; reads answer busy until one opens", "database",
                 s->path, "error", why, NULL);
    else if (ended)
        log_info("a read connection opens again", "database", s->path, NULL);
    return r;
}

void sq_reader_put(sqlite_store *s, reader *r)
{
    pthread_mutex_lock(&s->mu);
    r->next = s->free_readers;
    s->free_readers = r;
    pthread_cond_signal(&s->reader_free);
    pthread_mutex_unlock(&s->mu);
}

store_rc sq_read_begin(reader *r)
{
    int rc = sqlite3_step(r->begin);
    sqlite3_reset(r->begin);
    return rc == SQLITE_DONE ? STORE_OK : sq_rc_of(rc);
}

void sq_read_end(reader *r)
{
    sqlite3_step(r->end); /* a read transaction: nothing to fail but "none is active" */
    sqlite3_reset(r->end);
}
