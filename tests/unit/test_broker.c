/*
 * Unit tests for store/sqlite_broker: queue visibility and receipts, release, delay, the move to
 * the dead-letter queue (failing unfinished tasks) and redrive, the change stream with per-consumer
 * checkpoints across a reopen, the atomicity of publish + checkpoint, stream lag, the retention
 * sweep and the commit wake-ups of broker_wait; and the reads that let an idle pipeline skip its
 * writes: broker_next_visible (when a queue's next message is due) and broker_sweep_due; and a
 * standing receive in a commit that fails (WAL writes failed by a VFS over the default one); the
 * store's close after a start refused on a full disk (the database's writes failed too) and with a
 * statement left on its connection.
 *
 * Every test opens a fresh database (sync NORMAL) in its own mkdtemp directory and removes it
 * afterwards. The waits are real: visibility timeouts and delays of 1 s, slept for ~1.1 s.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/attrval.h"
#include "core/change_record.h"
#include "core/config.h"
#include "core/sbuf.h"
#include "core/task_event.h"
#include "core/task.h"
#include "pipeline/stream_consumer.h"
#include "store/broker.h"
#include "store/store.h"
#include "store/store_sqlite.h"
#include "store/sqlite_internal.h" /* sq_task_columns_hold() and W_GET_SQL, checked alone */
#include "store/task_cache.h"
#include "util/clock.h"
#include "util/log.h"

#include "support/proc_stat.h"
#include "support/stderr_capture.h"
#include "support_local/sqlite_exec.h"

#include <dirent.h>
#include <sqlite3.h>
#include <errno.h>
#include <limits.h>
#include <jansson.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The read of the change log with its tasks (BST_CHANGES_AFTER_TASK): a consumer's, on a read
 * connection, and the writer's catch-up. Its columns: 1 event_name, 2 task_id, 7 the record's
 * task_type, 16 the task row's, 17 its data. */
#define CATCH_UP_SQL                                                                               \
    "SELECT c.seq, c.event_name, c.task_id, c.new_image, c.old_image, c.created_time, c.slim, "    \
    "c.task_type, c.new_status, c.new_msg, c.new_time, c.new_result, c.old_status, c.old_msg, "    \
    "c.old_time, c.old_result, t.task_type"

/* sqlite3_step, wrapped for this test (CMakeLists.txt): the next step of a statement whose SQL
 * begins with fail_sql[i] fails with SQLITE_IOERR, once for each (the writer's thread reads
 * them). */
static _Atomic(const char *) fail_sql[2];
/* The next step of a statement whose SQL begins with unreadable_sql runs with reads_fail set on
 * its thread: every read the faulty VFS (below) makes for it fails, as a disk's would, and SQLite
 * says so itself. */
static _Atomic(const char *) unreadable_sql;
static _Thread_local bool reads_fail;
/* While consumer_reads_fail is set, every consumer's read of the change log (CATCH_UP_SQL on a
 * read connection) fails with SQLITE_IOERR, as on a failing disk; failed_consumer_reads counts
 * them. */
static atomic_bool consumer_reads_fail;
static atomic_int failed_consumer_reads;
static bool fail_a_consumer_read(sqlite3_stmt *st)
{
    if (!atomic_load(&consumer_reads_fail) || !sqlite3_db_readonly(sqlite3_db_handle(st), "main") ||
        strncmp(sqlite3_sql(st), CATCH_UP_SQL, strlen(CATCH_UP_SQL)) != 0)
        return false;
    atomic_fetch_add(&failed_consumer_reads, 1);
    return true;
}
/* While corrupt_task is set, every read of that task's status fails with SQLITE_CORRUPT, as when
 * the page of its row is damaged; corrupt_reads counts them. */
static _Atomic(const char *) corrupt_task;
static atomic_int corrupt_reads;
/* clock_unix_ms, wrapped too: the wall clock as taskd reads it, wall_step_ms ahead (behind when
 * negative), as if set with date -s; with step_at_commit, the next COMMIT steps it back an hour
 * while it runs. */
static _Atomic int64_t wall_step_ms;
static atomic_bool step_at_commit;
int64_t __real_clock_unix_ms(void);
int64_t __wrap_clock_unix_ms(void);
int64_t __wrap_clock_unix_ms(void)
{
    return __real_clock_unix_ms() + atomic_load(&wall_step_ms);
}
/* While read_hold.armed, a consumer's read of the change log (CATCH_UP_SQL on a read connection)
 * stops before its first step, says so (at), and goes on once the test lets it (go). */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_bool armed;
    bool at, go;
} read_hold = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
static void hold_a_read(sqlite3_stmt *st)
{
    bool armed = true;
    if (!atomic_load(&read_hold.armed) || !sqlite3_db_readonly(sqlite3_db_handle(st), "main") ||
        strncmp(sqlite3_sql(st), CATCH_UP_SQL, strlen(CATCH_UP_SQL)) != 0 ||
        !atomic_compare_exchange_strong(&read_hold.armed, &armed, false))
        return;
    pthread_mutex_lock(&read_hold.mu);
    read_hold.at = true;
    pthread_cond_broadcast(&read_hold.cv);
    while (!read_hold.go)
        pthread_cond_wait(&read_hold.cv, &read_hold.mu);
    pthread_mutex_unlock(&read_hold.mu);
}
/* While hold_sql is set, the next step of a statement whose SQL begins with it prepares another on
 * that statement's connection and leaves it unfinalized in held, as a statement the store leaked
 * would be, which keeps the connection from closing until release_held(). */
static _Atomic(const char *) hold_sql;
static sqlite3_stmt *held;
static void hold_a_statement(sqlite3_stmt *st)
{
    const char *sql = atomic_load(&hold_sql);
    if (sql && strncmp(sqlite3_sql(st), sql, strlen(sql)) == 0 &&
        atomic_compare_exchange_strong(&hold_sql, &sql, NULL))
        sqlite3_prepare_v2(sqlite3_db_handle(st), "SELECT 1", -1, &held, NULL);
}
/* Finalize what hold_a_statement() left, and close the connection it kept open. */
static void release_held(void)
{
    assert_non_null(held);
    sqlite3 *db = sqlite3_db_handle(held);
    sqlite3_finalize(held);
    held = NULL;
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
}
/* While meet.sql is set, the first step on each thread of a statement whose SQL begins with it
 * waits until meet.want steps have come there (10 s at most), as reads that begin at once do. */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    _Atomic(const char *) sql;
    int want, came;
} meet = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
static _Thread_local bool met;
static void meet_a_step(sqlite3_stmt *st)
{
    const char *sql = atomic_load(&meet.sql);
    if (!sql || met || strncmp(sqlite3_sql(st), sql, strlen(sql)) != 0)
        return;
    met = true;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    pthread_mutex_lock(&meet.mu);
    meet.came++;
    pthread_cond_broadcast(&meet.cv);
    while (meet.came < meet.want && pthread_cond_timedwait(&meet.cv, &meet.mu, &until) == 0)
        ;
    pthread_mutex_unlock(&meet.mu);
}
/* Whether st's SQL begins with the statement armed (one of fail_sql, or unreadable_sql), which
 * this step then takes, disarming it. */
static bool takes(_Atomic(const char *) *armed, sqlite3_stmt *st)
{
    const char *sql = atomic_load(armed);
    return sql && strncmp(sqlite3_sql(st), sql, strlen(sql)) == 0 &&
           atomic_compare_exchange_strong(armed, &sql, NULL);
}
int __real_sqlite3_step(sqlite3_stmt *st);
int __wrap_sqlite3_step(sqlite3_stmt *st);
int __wrap_sqlite3_step(sqlite3_stmt *st)
{
    hold_a_read(st);
    hold_a_statement(st);
    meet_a_step(st);
    bool step = true;
    if (strcmp(sqlite3_sql(st), "COMMIT") == 0 &&
        atomic_compare_exchange_strong(&step_at_commit, &step, false))
        atomic_fetch_sub(&wall_step_ms, 3600 * 1000);
    for (size_t i = 0; i < sizeof fail_sql / sizeof fail_sql[0]; i++)
        if (takes(&fail_sql[i], st))
            return SQLITE_IOERR;
    if (fail_a_consumer_read(st))
        return SQLITE_IOERR;
    if (takes(&unreadable_sql, st)) {
        reads_fail = true;
        int rc = __real_sqlite3_step(st);
        reads_fail = false;
        return rc;
    }
    const char *corrupt = atomic_load(&corrupt_task);
    if (corrupt && strcmp(sqlite3_sql(st), "SELECT status, trace FROM tasks WHERE id = ?1") == 0) {
        char *sql = sqlite3_expanded_sql(st);
        bool hit = sql && strstr(sql, corrupt);
        sqlite3_free(sql);
        if (hit) {
            atomic_fetch_add(&corrupt_reads, 1);
            return SQLITE_CORRUPT;
        }
    }
    return __real_sqlite3_step(st);
}

/* sqlite3_exec, wrapped too: while sync_full_fails is set, the store's PRAGMA that makes its
 * commits wait for the disk fails, as when SQLite is short of memory to compile it. */
static atomic_bool sync_full_fails;
/* The next sqlite3_exec of exactly exec_fails fails with SQLITE_IOERR, as on a failing disk. */
static _Atomic(const char *) exec_fails;
int __real_sqlite3_exec(sqlite3 *db, const char *sql, int (*cb)(void *, int, char **, char **),
                        void *arg, char **errmsg);
int __wrap_sqlite3_exec(sqlite3 *db, const char *sql, int (*cb)(void *, int, char **, char **),
                        void *arg, char **errmsg);
int __wrap_sqlite3_exec(sqlite3 *db, const char *sql, int (*cb)(void *, int, char **, char **),
                        void *arg, char **errmsg)
{
    if (atomic_load(&sync_full_fails) && strcmp(sql, "PRAGMA synchronous = FULL") == 0)
        return SQLITE_NOMEM;
    const char *failing = atomic_load(&exec_fails);
    if (failing && strcmp(sql, failing) == 0 &&
        atomic_compare_exchange_strong(&exec_fails, &failing, NULL))
        return SQLITE_IOERR;
    return __real_sqlite3_exec(db, sql, cb, arg, errmsg);
}

/* When set, the next flock() first removes this file, as a start that made it, failed and let go
 * of its lock removes it after another start opened it and before that one locks it. */
static _Atomic(const char *) removed_as_locked;
int __real_flock(int fd, int op);
int __wrap_flock(int fd, int op);
int __wrap_flock(int fd, int op)
{
    const char *path = atomic_exchange(&removed_as_locked, NULL);
    if (path)
        assert_int_equal(unlink(path), 0);
    return __real_flock(fd, op);
}

/* SQLite's own allocations go through these (main(), lookaside off): while sqlite_mem_fails is
 * set on a thread, each one SQLite makes there fails, as when memory runs out. */
static sqlite3_mem_methods sqlite_mem;
static _Thread_local bool sqlite_mem_fails;
static void *failing_malloc(int n)
{
    return sqlite_mem_fails ? NULL : sqlite_mem.xMalloc(n);
}
static void *failing_realloc(void *p, int n)
{
    return sqlite_mem_fails ? NULL : sqlite_mem.xRealloc(p, n);
}
/* sqlite3_column_text and sqlite3_column_bytes, wrapped too: when fail_text_of is a column, a
 * consumer's next read of that column's text or size from a change-log row (CATCH_UP_SQL on a
 * read connection) is made with SQLite short of memory, and fail_text_of is cleared (-1). With
 * fail_text_sql set, the read is instead the writer's (a reader's with fail_text_on_reader), of
 * a statement whose SQL begins with it, and fail_text_skip such reads go by first. */
static atomic_int fail_text_of = -1;
static _Atomic(const char *) fail_text_sql;
static atomic_bool fail_text_on_reader;
static atomic_int fail_text_skip;
static bool fail_this_text(sqlite3_stmt *st, int i)
{
    int armed = i;
    const char *sql = atomic_load(&fail_text_sql);
    bool on_writer = sql != NULL && !atomic_load(&fail_text_on_reader);
    if (!sql)
        sql = CATCH_UP_SQL;
    if (atomic_load(&fail_text_of) != i ||
        !sqlite3_db_readonly(sqlite3_db_handle(st), "main") == !on_writer ||
        strncmp(sqlite3_sql(st), sql, strlen(sql)) != 0)
        return false;
    if (atomic_fetch_sub(&fail_text_skip, 1) > 0)
        return false;
    atomic_store(&fail_text_skip, 0);
    return atomic_compare_exchange_strong(&fail_text_of, &armed, -1);
}
const unsigned char *__real_sqlite3_column_text(sqlite3_stmt *st, int i);
const unsigned char *__wrap_sqlite3_column_text(sqlite3_stmt *st, int i);
const unsigned char *__wrap_sqlite3_column_text(sqlite3_stmt *st, int i)
{
    if (!fail_this_text(st, i))
        return __real_sqlite3_column_text(st, i);
    sqlite_mem_fails = true;
    const unsigned char *t = __real_sqlite3_column_text(st, i);
    sqlite_mem_fails = false;
    return t;
}
int __real_sqlite3_column_bytes(sqlite3_stmt *st, int i);
int __wrap_sqlite3_column_bytes(sqlite3_stmt *st, int i);
int __wrap_sqlite3_column_bytes(sqlite3_stmt *st, int i)
{
    if (!fail_this_text(st, i))
        return __real_sqlite3_column_bytes(st, i);
    sqlite_mem_fails = true;
    int n = __real_sqlite3_column_bytes(st, i);
    sqlite_mem_fails = false;
    return n;
}

/* Arm the next read of column col's text by a statement whose SQL begins with sql, on the
 * writer's connection (on_reader: a reader's), after skip such reads. */
static void fail_a_text(const char *sql, int col, bool on_reader, int skip)
{
    atomic_store(&fail_text_skip, skip);
    atomic_store(&fail_text_on_reader, on_reader);
    atomic_store(&fail_text_sql, sql);
    atomic_store(&fail_text_of, col);
}

/* Disarm what fail_a_text() armed; the test fails when the read was not made. */
static void expect_a_text_failed(const char *what)
{
    atomic_store(&fail_text_sql, NULL);
    atomic_store(&fail_text_on_reader, false);
    atomic_store(&fail_text_skip, 0);
    if (atomic_exchange(&fail_text_of, -1) != -1)
        fail_msg("%s: its text was not read", what);
}

/* ---- fixture ---- */

static const char *db_path; /* the current test's database, for counting its rows directly */

typedef struct fx {
    char dir[64];
    char path[128];
    store *s;
    broker *b;
} fx;

static store *open_db(const char *path, const store_listener *l)
{
    store_sqlite_options o = {
        .path = path, .sync = STORE_SYNC_NORMAL, .busy_timeout_ms = 5000, .listener = l};
    char err[256] = "";
    store *s = store_sqlite_open(&o, err, sizeof err);
    if (!s)
        print_error("store_sqlite_open(%s): %s\n", path, err);
    return s;
}

/* Close the test's database and open it again, with listener l (NULL: none). */
static void reopen(fx *f, const store_listener *l)
{
    store_close(f->s);
    f->s = open_db(f->path, l);
    assert_non_null(f->s);
    f->b = broker_of(f->s);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/test_broker.XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof f->path, "%s/tasks.db", f->dir);
    f->s = open_db(f->path, NULL);
    if (!f->s) {
        rmdir(f->dir);
        free(f);
        return -1;
    }
    f->b = broker_of(f->s);
    db_path = f->path;
    *state = f;
    return 0;
}

/* Remove folder dir and the files in it: rmdir()'s result. */
static int remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char p[512];
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    return rmdir(dir);
}

static int teardown(void **state)
{
    fx *f = *state;
    store_close(f->s);
    int rc = remove_dir(f->dir);
    free(f);
    return rc;
}

/* ---- helpers ---- */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wall clock in ms, as the broker's visible_ms. */
static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Return once every commit so far has woken its waiters. The writer answers a batch's writes
 * before it wakes the batch's waiters, and wakes them before it starts the next batch: one more
 * write, answered, settles the wake-ups of all before it. */
static void settle_wakeups(broker *b)
{
    assert_int_equal(broker_unset_feed(b, "nobody"), STORE_OK); /* a write that changes nothing */
}

static void sleep_ms(int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static queue_config make_queue(const char *name, unsigned visibility, unsigned max_receive,
                               const char *dlq, unsigned delay)
{
    queue_config q;
    memset(&q, 0, sizeof q);
    snprintf(q.name, sizeof q.name, "%s", name);
    q.visibility_timeout = visibility;
    q.max_receive_count = max_receive;
    snprintf(q.dead_letter_queue, sizeof q.dead_letter_queue, "%s", dlq ? dlq : "");
    q.delay = delay;
    q.retention = q.dead_letter_retention = 4 * 24 * 3600;
    return q;
}

/* Create a TASK1 task with data {} and the given ttl; its id goes to id. */
static void create_task(store *s, int64_t ttl, char id[37])
{
    store_new_task t = {.task_type = "TASK1", .data = "{}", .ttl = ttl};
    assert_int_equal(store_create_task(s, &t, (int64_t)time(NULL), id), STORE_OK);
    assert_int_equal(strlen(id), TASK_ID_LEN);
}

static void set_status(store *s, const char *id, task_status st, const char *msg, int64_t now)
{
    store_update u = {.id = id, .status = st, .status_msg = msg, .result = NULL};
    assert_int_equal(store_update_task(s, &u, now, NULL), STORE_OK);
}

/* CREATED -> IN_PROGRESS -> COMPLETED, both at now. */
static void complete_task(store *s, const char *id, int64_t now)
{
    set_status(s, id, TASK_IN_PROGRESS, "", now);
    set_status(s, id, TASK_COMPLETED, "done", now);
}

static void expect_status(store *s, const char *id, task_status st, const char *msg_part)
{
    task t;
    memset(&t, 0, sizeof t);
    assert_int_equal(store_get_task(s, id, &t), STORE_OK);
    if (t.status != st || (msg_part && !strstr(t.status_msg, msg_part)))
        print_error("task %s: status %s \"%s\", want %s containing \"%s\"\n", id,
                    task_status_name(t.status), t.status_msg, task_status_name(st),
                    msg_part ? msg_part : "");
    task_status got = t.status;
    bool msg_ok = !msg_part || strstr(t.status_msg, msg_part) != NULL;
    task_clear(&t);
    assert_int_equal(got, st);
    assert_true(msg_ok);
}

/* A statement of sql on a connection of our own to the test's database, opened with flags
 * (read-only or read-write); own_done() finishes both. */
static sqlite3_stmt *own_stmt(int flags, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open_v2(db_path, &db, flags, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    return st;
}

static void own_done(sqlite3_stmt *st)
{
    sqlite3 *db = sqlite3_db_handle(st);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* The depths of queue as rows of the database say, read on a connection of our own. */
static void count_rows(const char *queue, queue_stats *out)
{
    sqlite3_stmt *st = own_stmt(SQLITE_OPEN_READONLY,
                                "SELECT count(*) FILTER (WHERE visible_ms <= ?2),"
                                " count(*) FILTER (WHERE visible_ms > ?2 AND receive_count > 0),"
                                " count(*) FILTER (WHERE visible_ms > ?2 AND receive_count = 0) "
                                "FROM messages WHERE queue = ?1");
    sqlite3_bind_text(st, 1, queue, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, wall_ms());
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    out->visible = sqlite3_column_int64(st, 0);
    out->in_flight = sqlite3_column_int64(st, 1);
    out->delayed = sqlite3_column_int64(st, 2);
    own_done(st);
}

/* The broker's depths (its counters) are the ones expected, and the ones the rows say. */
static void expect_stats(broker *b, const char *queue, int64_t visible, int64_t in_flight,
                         int64_t delayed)
{
    queue_stats st, rows;
    assert_int_equal(broker_queue_stats(b, queue, &st), STORE_OK);
    count_rows(queue, &rows);
    if (st.visible != rows.visible || st.in_flight != rows.in_flight || st.delayed != rows.delayed)
        print_error("queue %s: counted %lld %lld %lld, rows %lld %lld %lld\n", queue,
                    (long long)st.visible, (long long)st.in_flight, (long long)st.delayed,
                    (long long)rows.visible, (long long)rows.in_flight, (long long)rows.delayed);
    assert_memory_equal(&st, &rows, sizeof st);
    if (st.visible != visible || st.in_flight != in_flight || st.delayed != delayed)
        print_error("queue %s: visible %lld in_flight %lld delayed %lld, want %lld %lld %lld\n",
                    queue, (long long)st.visible, (long long)st.in_flight, (long long)st.delayed,
                    (long long)visible, (long long)in_flight, (long long)delayed);
    assert_int_equal(st.visible, visible);
    assert_int_equal(st.in_flight, in_flight);
    assert_int_equal(st.delayed, delayed);
}

/* The broker's depths of queue are the rows', whatever they are now; total messages in all. */
static void expect_same(broker *b, const char *queue, int64_t total)
{
    queue_stats st, rows;
    assert_int_equal(broker_queue_stats(b, queue, &st), STORE_OK);
    count_rows(queue, &rows);
    if (memcmp(&st, &rows, sizeof st) != 0)
        print_error("queue %s: counted %lld %lld %lld, rows %lld %lld %lld\n", queue,
                    (long long)st.visible, (long long)st.in_flight, (long long)st.delayed,
                    (long long)rows.visible, (long long)rows.in_flight, (long long)rows.delayed);
    assert_memory_equal(&st, &rows, sizeof st);
    assert_int_equal(st.visible + st.in_flight + st.delayed, total);
}

#define PRODUCER_TRACE "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

/* Publish n messages (bodies "{\"i\":<k>}" from first) to q for consumer "test" at seq; the
 * even ones of type TASK1 and with a trace, the odd ones with neither. */
static void publish_bodies(broker *b, const queue_config *q, int first, int n, const char *task_id)
{
    char bodies[8][32];
    broker_message m[8];
    assert_true(n <= 8);
    for (int i = 0; i < n; i++) {
        snprintf(bodies[i], sizeof bodies[i], "{\"i\":%d}", first + i);
        m[i] = (broker_message){.queue = q,
                                .task_id = task_id,
                                .task_type = i % 2 ? NULL : "TASK1",
                                .trace = i % 2 ? NULL : PRODUCER_TRACE,
                                .body = bodies[i]};
    }
    assert_int_equal(broker_publish(b, "test", first + n, m, (size_t)n), STORE_OK);
}

/* Messages made visible again as when their visibility ran out: the receives count toward
 * max_receive_count (a release, of messages never started, does not). */
static store_rc give_back(broker *b, const queue_message *m, size_t n)
{
    return broker_extend(b, m, n, 0, NULL);
}

static void note_done(store_write *w)
{
    atomic_store((atomic_bool *)w->user, true);
}

/* A redrive as the API submits it, waited for: its outcome, *moved the count. */
static store_rc redrive(broker *b, const char *dlq, const char *target, int64_t *moved)
{
    atomic_bool done = false;
    store_write w = {.done = note_done, .user = &done};
    store_rc rc = broker_redrive_submit(b, dlq, target, 3600, &w, moved);
    if (rc != STORE_OK)
        return rc;
    for (int i = 0; i < 10000 && !atomic_load(&done); i++)
        sleep_ms(1);
    assert_true(atomic_load(&done));
    return w.rc;
}

static size_t receive(broker *b, const queue_config *q, size_t max, queue_message **out,
                      int64_t *next_ms)
{
    size_t n = 99;
    int64_t next = -1;
    assert_int_equal(broker_receive(b, q, max, out, &n, &next), STORE_OK);
    if (next_ms)
        *next_ms = next;
    return n;
}

/* Receive the queue's n messages, give them back counted, and receive again: past a
 * max_receive_count of 1, they all move to the dead-letter queue, and none is delivered. */
static void exhaust(broker *b, const queue_config *q, size_t n)
{
    queue_message *m = NULL;
    assert_int_equal(receive(b, q, 10, &m, NULL), n);
    assert_int_equal(give_back(b, m, n), STORE_OK);
    queue_messages_free(m, n);
    assert_int_equal(receive(b, q, 10, &m, NULL), 0);
    queue_messages_free(m, 0);
}

/* ---- visibility, receipts, release, delay ---- */

/* A type or trace too long for a received message's room reads "", not cut to another value. */
static void test_message_fields_that_do_not_fit_read_empty(void **state)
{
    fx *f = *state;
    queue_config q = make_queue("work", 1, 0, NULL, 0);
    char type[TASK_TYPE_MAX + 2], trace[TRACECTX_TRACEPARENT_LEN + 2];
    memset(type, 't', sizeof type - 1);
    type[sizeof type - 1] = '\0';
    snprintf(trace, sizeof trace, "%sX", PRODUCER_TRACE);
    broker_message m[2] = {
        {.queue = &q, .task_type = type, .trace = trace, .body = "{}"},
        {.queue = &q, .task_type = type + 1, .trace = PRODUCER_TRACE, .body = "{}"}};
    assert_int_equal(broker_publish(f->b, "test", 1, m, 2), STORE_OK);
    queue_message *got = NULL;
    assert_int_equal(receive(f->b, &q, 2, &got, NULL), 2);
    assert_string_equal(got[0].task_type, "");
    assert_string_equal(got[0].trace, "");
    assert_string_equal(got[1].task_type, type + 1); /* the longest that fits, whole */
    assert_string_equal(got[1].trace, PRODUCER_TRACE);
    queue_messages_free(got, 2);
}

/* A message keeps the tracestate that goes with its trace; one without has "". */
static void test_message_tracestate(void **state)
{
    fx *f = *state;
    queue_config q = make_queue("work", 1, 0, NULL, 0);
    const char *ts = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE";
    broker_message m[2] = {
        {.queue = &q,
         .task_type = "TASK1",
         .trace = PRODUCER_TRACE,
         .body = "{}",
         .tracestate = ts},
        {.queue = &q, .task_type = "TASK1", .trace = PRODUCER_TRACE, .body = "{}"}};
    assert_int_equal(broker_publish(f->b, "test", 1, m, 2), STORE_OK);
    queue_message *got = NULL;
    assert_int_equal(receive(f->b, &q, 2, &got, NULL), 2);
    assert_string_equal(got[0].trace, PRODUCER_TRACE);
    assert_string_equal(got[0].tracestate, ts);
    assert_string_equal(got[1].tracestate, "");
    queue_messages_free(got, 2);
}

static void test_visibility_timeout(void **state)
{
    fx *f = *state;
    queue_config q = make_queue("work", 1, 0, NULL, 0);
    publish_bodies(f->b, &q, 0, 3, NULL);
    expect_stats(f->b, "work", 3, 0, 0);

    queue_message *m1 = NULL;
    int64_t asked = clock_steady_ms();
    assert_int_equal(receive(f->b, &q, 2, &m1, NULL), 2);
    int64_t answered = clock_steady_ms();
    /* each says until when the receive hides it: the receive's now + the visibility timeout */
    for (int i = 0; i < 2; i++)
        assert_true(m1[i].hidden_until_ms >= asked + 1000 &&
                    m1[i].hidden_until_ms <= answered + 1000);
    assert_string_equal(m1[0].body, "{\"i\":0}");
    assert_string_equal(m1[1].body, "{\"i\":1}");
    assert_string_equal(m1[0].task_type, "TASK1");
    assert_string_equal(m1[0].trace, PRODUCER_TRACE);
    assert_string_equal(m1[1].task_type, "");
    assert_string_equal(m1[1].trace, "");
    assert_null(m1[0].task_id);
    assert_int_equal(m1[0].receive_count, 1);
    assert_int_equal(m1[1].receive_count, 1);
    assert_true(m1[0].id != m1[1].id);
    assert_true(m1[0].sent_ms > 0 && m1[0].sent_ms <= wall_ms());
    expect_stats(f->b, "work", 1, 2, 0);

    /* the two received ones are hidden: only the third comes */
    queue_message *m2 = NULL;
    assert_int_equal(receive(f->b, &q, 10, &m2, NULL), 1);
    assert_string_equal(m2[0].body, "{\"i\":2}");
    assert_int_equal(m2[0].receive_count, 1);
    expect_stats(f->b, "work", 0, 3, 0);
    int64_t hidden_at = wall_ms();

    /* nothing left: next_ms says when the first hidden one returns (about 1 s from now) */
    queue_message *none = NULL;
    int64_t next = 0;
    assert_int_equal(receive(f->b, &q, 10, &none, &next), 0);
    queue_messages_free(none, 0);
    assert_true(next > wall_ms() && next <= hidden_at + 1000);
    assert_true(next >= m1[0].sent_ms + 1000);

    sleep_ms(1100);
    expect_stats(f->b, "work", 3, 0, 0);
    queue_message *m3 = NULL;
    assert_int_equal(receive(f->b, &q, 10, &m3, NULL), 3);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(m3[i].receive_count, 2);
        char want[32];
        snprintf(want, sizeof want, "{\"i\":%zu}", i);
        assert_string_equal(m3[i].body, want);
    }
    assert_int_equal(m3[0].id, m1[0].id);
    assert_int_equal(m3[1].id, m1[1].id);
    assert_int_equal(m3[2].id, m2[0].id);
    expect_stats(f->b, "work", 0, 3, 0);
    queue_messages_free(m1, 2);
    queue_messages_free(m2, 1);
    queue_messages_free(m3, 3);
}

static void test_delete_and_stale_receipt(void **state)
{
    fx *f = *state;
    queue_config q = make_queue("work", 60, 0, NULL, 0);
    publish_bodies(f->b, &q, 0, 2, NULL);

    queue_message *first = NULL;
    assert_int_equal(receive(f->b, &q, 2, &first, NULL), 2);
    assert_int_equal(first[0].receive_count, 1);
    /* message 1: deleted with the right receipt */
    assert_int_equal(broker_delete(f->b, &first[1], 1), STORE_OK);
    expect_stats(f->b, "work", 0, 1, 0);

    /* message 0: received again (receipt 2); the receipt-1 copy is now stale */
    assert_int_equal(broker_release(f->b, &first[0], 1), STORE_OK);
    queue_message *second = NULL;
    assert_int_equal(receive(f->b, &q, 2, &second, NULL), 1);
    assert_int_equal(second[0].id, first[0].id);
    assert_int_equal(second[0].receive_count, 2);

    assert_int_equal(broker_delete(f->b, &first[0], 1), STORE_OK); /* stale: ignored */
    expect_stats(f->b, "work", 0, 1, 0);
    assert_int_equal(broker_release(f->b, &first[0], 1), STORE_OK); /* stale: ignored */
    expect_stats(f->b, "work", 0, 1, 0);
    queue_message *none = NULL;
    assert_int_equal(receive(f->b, &q, 2, &none, NULL), 0);
    queue_messages_free(none, 0);

    assert_int_equal(broker_delete(f->b, &second[0], 1), STORE_OK);
    expect_stats(f->b, "work", 0, 0, 0);
    int64_t next = 0;
    assert_int_equal(receive(f->b, &q, 2, &none, &next), 0);
    queue_messages_free(none, 0);
    assert_true(next == INT64_MAX);

    /* deleting twice and deleting nothing are harmless */
    assert_int_equal(broker_delete(f->b, &second[0], 1), STORE_OK);
    assert_int_equal(broker_delete(f->b, NULL, 0), STORE_OK);
    queue_messages_free(first, 2);
    queue_messages_free(second, 1);
}

static void test_release(void **state)
{
    fx *f = *state;
    queue_config q = make_queue("work", 600, 0, NULL, 0);
    publish_bodies(f->b, &q, 0, 3, NULL);
    queue_message *m = NULL;
    assert_int_equal(receive(f->b, &q, 3, &m, NULL), 3);
    expect_stats(f->b, "work", 0, 3, 0);

    /* release two of the three: visible at once, without waiting for the 600 s timeout */
    assert_int_equal(broker_release(f->b, m, 2), STORE_OK);
    expect_stats(f->b, "work", 2, 1, 0);
    queue_message *again = NULL;
    assert_int_equal(receive(f->b, &q, 10, &again, NULL), 2);
    assert_int_equal(again[0].id, m[0].id);
    assert_int_equal(again[1].id, m[1].id);
    assert_int_equal(again[0].receive_count, 2);
    assert_int_equal(again[1].receive_count, 2);
    expect_stats(f->b, "work", 0, 3, 0);
    assert_int_equal(broker_release(f->b, NULL, 0), STORE_OK);
    queue_messages_free(m, 3);
    queue_messages_free(again, 2);

    /* a released receive does not count toward max_receive_count: a stop that gave back
     * messages it never started must not send their tasks to the dead-letter queue */
    char id[37];
    create_task(f->s, TASK_NULL_TIME, id);
    queue_config once = make_queue("once", 600, 1, "once-dlq", 0);
    publish_bodies(f->b, &once, 0, 1, id);
    for (int i = 1; i <= 3; i++) {
        assert_int_equal(receive(f->b, &once, 10, &m, NULL), 1);
        assert_int_equal(m[0].receive_count, i);
        assert_int_equal(broker_release(f->b, m, 1), STORE_OK);
        queue_messages_free(m, 1);
    }
    expect_stats(f->b, "once-dlq", 0, 0, 0);
    expect_status(f->s, id, TASK_CREATED, NULL);
    /* and one that counts (its visibility ran out) still moves it */
    exhaust(f->b, &once, 1);
    expect_stats(f->b, "once-dlq", 1, 0, 0);
    expect_status(f->s, id, TASK_FAILED, "dead-letter queue once-dlq after 1 receive");
}

static void test_delay(void **state)
{
    fx *f = *state;
    queue_config q = make_queue("slow", 30, 0, NULL, 1);
    int64_t before = wall_ms();
    publish_bodies(f->b, &q, 0, 1, NULL);
    int64_t after = wall_ms();
    expect_stats(f->b, "slow", 0, 0, 1);

    queue_message *m = NULL;
    int64_t next = 0;
    assert_int_equal(receive(f->b, &q, 1, &m, &next), 0);
    queue_messages_free(m, 0);
    assert_true(next >= before + 1000 && next <= after + 1000);

    sleep_ms(next - wall_ms() + 100);
    expect_stats(f->b, "slow", 1, 0, 0);
    assert_int_equal(receive(f->b, &q, 1, &m, NULL), 1);
    assert_string_equal(m[0].body, "{\"i\":0}");
    assert_int_equal(m[0].receive_count, 1);
    assert_true(m[0].sent_ms >= before && m[0].sent_ms <= after);
    queue_messages_free(m, 1);
    expect_stats(f->b, "slow", 0, 1, 0);
}

/*
 * A receive that finds nothing and cannot read when the queue's next message is due fails, for
 * its caller to try again. It answered STORE_OK with no next message (INT64_MAX), and a runner
 * slept as over an empty queue until its idle recheck, 10 s, past a message due sooner.
 */
static void test_a_receive_that_cannot_tell_the_next_message_fails(void **state)
{
    fx *f = *state;
    queue_config q = make_queue("slow", 30, 0, NULL, 1);
    publish_bodies(f->b, &q, 0, 1, NULL);
    atomic_store(&fail_sql[0], "SELECT min(visible_ms) FROM messages");
    queue_message *m = NULL;
    size_t n = 99;
    int64_t next = 0;
    assert_int_equal(broker_receive(f->b, &q, 1, &m, &n, &next), STORE_ERROR);
    assert_null(atomic_load(&fail_sql[0])); /* the look that failed was the receive's */
    assert_int_equal(n, 0);
    assert_null(m);
    next = 0;
    assert_int_equal(receive(f->b, &q, 1, &m, &next), 0); /* the next one tells */
    queue_messages_free(m, 0);
    assert_true(next > wall_ms() && next < INT64_MAX);
}

/* ---- dead-letter queue, redrive ---- */

static void test_dlq_move_fails_task(void **state)
{
    fx *f = *state;
    char id[37];
    create_task(f->s, TASK_NULL_TIME, id);
    queue_config q = make_queue("work", 1, 2, "dlq", 0);
    queue_config dlq = make_queue("dlq", 30, 0, NULL, 0);
    publish_bodies(f->b, &q, 0, 1, id);

    queue_message *m = NULL;
    assert_int_equal(receive(f->b, &q, 1, &m, NULL), 1);
    assert_int_equal(m[0].receive_count, 1);
    assert_string_equal(m[0].task_id, id);
    queue_messages_free(m, 1);
    sleep_ms(1100);
    assert_int_equal(receive(f->b, &q, 1, &m, NULL), 1);
    assert_int_equal(m[0].receive_count, 2);
    queue_messages_free(m, 1);
    expect_status(f->s, id, TASK_CREATED, NULL);
    sleep_ms(1100);

    /* received max_receive_count times already: moved, not delivered */
    int64_t next = 0;
    assert_int_equal(receive(f->b, &q, 1, &m, &next), 0);
    queue_messages_free(m, 0);
    assert_true(next == INT64_MAX);
    expect_stats(f->b, "work", 0, 0, 0);
    expect_stats(f->b, "dlq", 1, 0, 0);
    expect_status(f->s, id, TASK_FAILED, "dead-letter queue dlq after 2 receives");

    /* the failure is a MODIFY change record like any other */
    int64_t cp = -1;
    change_record *r = NULL;
    size_t n = 0;
    assert_int_equal(broker_read_changes(f->b, "observer", 10, CHANGE_READ_WHOLE, &cp, &r, &n),
                     STORE_OK);
    assert_int_equal(n, 2);
    json_t *rec = json_loads(r[1].json, 0, NULL);
    assert_non_null(rec);
    assert_string_equal(json_string_value(json_object_get(rec, "eventName")), "MODIFY");
    json_t *ddb = json_object_get(rec, "dynamodb");
    json_t *img = json_object_get(ddb, "NewImage");
    assert_string_equal(json_string_value(json_object_get(json_object_get(img, "status"), "S")),
                        "FAILED");
    img = json_object_get(ddb, "OldImage");
    assert_string_equal(json_string_value(json_object_get(json_object_get(img, "status"), "S")),
                        "CREATED");
    json_decref(rec);
    change_records_free(r, n);

    /* the DLQ delivers it like any queue, counting afresh */
    assert_int_equal(receive(f->b, &dlq, 1, &m, NULL), 1);
    assert_string_equal(m[0].task_id, id);
    assert_string_equal(m[0].body, "{\"i\":0}");
    assert_int_equal(m[0].receive_count, 1);
    queue_messages_free(m, 1);
}

static void test_dlq_move_keeps_finished_task(void **state)
{
    fx *f = *state;
    char done[37], failed[37];
    create_task(f->s, TASK_NULL_TIME, done);
    create_task(f->s, TASK_NULL_TIME, failed);
    int64_t now = (int64_t)time(NULL);
    complete_task(f->s, done, now);
    set_status(f->s, failed, TASK_FAILED, "handler said no", now);
    queue_config q = make_queue("work", 600, 1, "dlq", 0);
    publish_bodies(f->b, &q, 0, 1, done);
    publish_bodies(f->b, &q, 1, 1, failed);

    exhaust(f->b, &q, 2);
    expect_stats(f->b, "dlq", 2, 0, 0);
    expect_status(f->s, done, TASK_COMPLETED, "done");
    expect_status(f->s, failed, TASK_FAILED, "handler said no");

    task t;
    assert_int_equal(store_get_task(f->s, done, &t), STORE_OK);
    assert_string_equal(t.status_msg, "done");
    task_clear(&t);
    assert_int_equal(store_get_task(f->s, failed, &t), STORE_OK);
    assert_string_equal(t.status_msg, "handler said no");
    task_clear(&t);
}

/* A receive that moves one message to the DLQ still delivers the others it found. */
static void test_dlq_move_in_mixed_batch(void **state)
{
    fx *f = *state;
    char old[37], fresh[37];
    create_task(f->s, TASK_NULL_TIME, old);
    create_task(f->s, TASK_NULL_TIME, fresh);
    queue_config q = make_queue("work", 600, 1, "dlq", 0);
    publish_bodies(f->b, &q, 0, 1, old);
    queue_message *m = NULL;
    assert_int_equal(receive(f->b, &q, 10, &m, NULL), 1);
    assert_int_equal(give_back(f->b, m, 1), STORE_OK);
    queue_messages_free(m, 1);
    publish_bodies(f->b, &q, 1, 2, fresh);

    /* the released one comes first in visibility order and is exhausted */
    assert_int_equal(receive(f->b, &q, 10, &m, NULL), 2);
    assert_string_equal(m[0].task_id, fresh);
    assert_string_equal(m[0].body, "{\"i\":1}");
    assert_int_equal(m[0].receive_count, 1);
    assert_string_equal(m[1].task_id, fresh);
    assert_string_equal(m[1].body, "{\"i\":2}");
    queue_messages_free(m, 2);
    expect_stats(f->b, "dlq", 1, 0, 0);
    expect_stats(f->b, "work", 0, 2, 0);
    expect_status(f->s, old, TASK_FAILED, "dead-letter queue dlq after 1 receive");
    expect_status(f->s, fresh, TASK_CREATED, NULL);
}

/*
 * A redrive moves the dead letters back with a fresh receive count, and makes CREATED again the
 * tasks their move failed, and only those: a task finished otherwise before its message died
 * (completed, or cancelled by a client) stays as it is, final.
 */
static void test_redrive(void **state)
{
    fx *f = *state;
    char a[37], b[37], done[37], cancelled[37];
    create_task(f->s, TASK_NULL_TIME, a);
    create_task(f->s, TASK_NULL_TIME, b);
    create_task(f->s, TASK_NULL_TIME, done);
    create_task(f->s, TASK_NULL_TIME, cancelled);
    complete_task(f->s, done, (int64_t)time(NULL));
    set_status(f->s, cancelled, TASK_FAILED, "cancelled by client", (int64_t)time(NULL));
    queue_config q = make_queue("work", 600, 1, "dlq", 0);
    publish_bodies(f->b, &q, 0, 1, a);
    publish_bodies(f->b, &q, 1, 1, b);
    publish_bodies(f->b, &q, 2, 1, done);
    publish_bodies(f->b, &q, 3, 1, NULL); /* a message without a task */
    publish_bodies(f->b, &q, 4, 1, cancelled);

    /* receive, release, receive: all five move to the DLQ */
    queue_message *m = NULL;
    exhaust(f->b, &q, 5);
    expect_stats(f->b, "dlq", 5, 0, 0);
    expect_status(f->s, a, TASK_FAILED, "dead-letter queue dlq after 1 receive");
    expect_status(f->s, b, TASK_FAILED, "dead-letter queue dlq after 1 receive");
    expect_status(f->s, cancelled, TASK_FAILED, "cancelled by client");

    int64_t moved = -1;
    assert_int_equal(redrive(f->b, "dlq", "work", &moved), STORE_OK);
    assert_int_equal(moved, 5);
    expect_stats(f->b, "dlq", 0, 0, 0);
    expect_stats(f->b, "work", 5, 0, 0);
    expect_status(f->s, a, TASK_CREATED, "Redriven from dlq");
    expect_status(f->s, b, TASK_CREATED, "Redriven from dlq");
    expect_status(f->s, done, TASK_COMPLETED, "done");
    expect_status(f->s, cancelled, TASK_FAILED, "cancelled by client");

    /* back in the queue with a fresh receive count */
    assert_int_equal(receive(f->b, &q, 10, &m, NULL), 5);
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(m[i].receive_count, 1);
    assert_string_equal(m[0].task_id, a);
    assert_string_equal(m[1].task_id, b);
    assert_string_equal(m[2].task_id, done);
    assert_null(m[3].task_id);
    assert_string_equal(m[4].task_id, cancelled);
    queue_messages_free(m, 5);

    /* an empty DLQ moves nothing */
    moved = -1;
    assert_int_equal(redrive(f->b, "dlq", "work", &moved), STORE_OK);
    assert_int_equal(moved, 0);
}

/* A task a (FAILED) whose message went to "dlq" (of "work") with its task id made longer than
 * any task id, as a hand-edited row's. */
static void dead_letter_of_an_unfit_id(fx *f, char a[37])
{
    create_task(f->s, TASK_NULL_TIME, a);
    queue_config q = make_queue("work", 600, 1, "dlq", 0);
    publish_bodies(f->b, &q, 0, 1, a);
    exhaust(f->b, &q, 1);
    assert_int_equal(test_sqlite_exec(db_path,
                                      "UPDATE messages SET task_id = task_id || 'x' "
                                      "WHERE task_id = ?1",
                                      a),
                     1);
}

/* A dead letter whose task id is longer than any task id (a hand-edited row's) is redriven as a
 * message without a task, and the redrive says so, where it said nothing: its task, had the id
 * been cut to name one, stays as it was. */
static void test_a_dead_letter_whose_task_id_does_not_fit_is_said(void **state)
{
    fx *f = *state;
    char a[37];
    dead_letter_of_an_unfit_id(f, a);
    test_stderr cap;
    log_level was = log_threshold();
    log_setup(LOG_WARN, NULL);
    test_stderr_begin(&cap);
    int64_t moved = -1;
    store_rc rc = redrive(f->b, "dlq", "work", &moved);
    char *log = test_stderr_end(&cap);
    log_setup(was, NULL);
    assert_int_equal(rc, STORE_OK);
    assert_int_equal(moved, 1);
    expect_logged(log, "a dead letter's task id is longer than any task id", "\"queue\":\"dlq\"");
    free(log);
    expect_status(f->s, a, TASK_FAILED, "dead-letter queue dlq after 1 receive");
    expect_stats(f->b, "work", 1, 0, 0);
}

/* A redrive that cannot read a dead letter's task undoes its step and says so: moved without
 * its task made CREATED again, the message would meet a FAILED task and be dropped. */
static void test_redrive_that_cannot_read_a_task(void **state)
{
    fx *f = *state;
    char a[37];
    create_task(f->s, TASK_NULL_TIME, a);
    queue_config q = make_queue("work", 600, 1, "dlq", 0);
    publish_bodies(f->b, &q, 0, 1, a);
    exhaust(f->b, &q, 1);
    expect_status(f->s, a, TASK_FAILED, "dead-letter queue dlq after 1 receive");

    int64_t moved = -1;
    atomic_store(&fail_sql[0], "SELECT status, trace FROM tasks WHERE id = ?1");
    assert_int_equal(redrive(f->b, "dlq", "work", &moved), STORE_ERROR);
    assert_null(atomic_load(&fail_sql[0])); /* the read that failed was the redrive's */
    expect_stats(f->b, "dlq", 1, 0, 0);
    expect_stats(f->b, "work", 0, 0, 0);
    expect_status(f->s, a, TASK_FAILED, "dead-letter queue dlq after 1 receive");

    assert_int_equal(redrive(f->b, "dlq", "work", &moved), STORE_OK);
    assert_int_equal(moved, 1);
    expect_stats(f->b, "work", 1, 0, 0);
    expect_status(f->s, a, TASK_CREATED, "Redriven from dlq");
}

/* A write that fails half done is undone; when undoing it fails too, its whole batch goes: a
 * task row kept without its change record would never be published. */
static void test_a_write_that_cannot_be_undone_fails_its_batch(void **state)
{
    fx *f = *state;
    atomic_store(&fail_sql[0], "INSERT INTO changes "); /* after the task's row */
    atomic_store(&fail_sql[1], "ROLLBACK TO op");
    store_new_task nt = {.task_type = "TASK1", .data = "{}", .ttl = TASK_NULL_TIME};
    char id[37];
    assert_int_equal(store_create_task(f->s, &nt, (int64_t)time(NULL), id), STORE_ERROR);
    assert_null(atomic_load(&fail_sql[0]));
    assert_null(atomic_load(&fail_sql[1]));
    sqlite3_stmt *st = own_stmt(SQLITE_OPEN_READONLY, "SELECT count(*) FROM tasks");
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 0);
    own_done(st);
    /* and the store goes on */
    create_task(f->s, TASK_NULL_TIME, id);
    expect_status(f->s, id, TASK_CREATED, "");
}

static void count_row(const char *sql, const char *id, int64_t want);

/* The id of task_id's message. */
static int64_t message_of(const char *task_id)
{
    sqlite3_stmt *st = own_stmt(SQLITE_OPEN_READONLY, "SELECT id FROM messages WHERE task_id = ?1");
    sqlite3_bind_text(st, 1, task_id, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t id = sqlite3_column_int64(st, 0);
    own_done(st);
    return id;
}

/*
 * A dead letter whose task can never be read (SQLITE_CORRUPT) stays in the dead-letter queue,
 * said at ERROR with its message and task; the redrive moves the others and counts only them.
 * Once the task reads again, a redrive moves it too.
 */
static void test_redrive_over_a_task_that_cannot_be_read(void **state)
{
    fx *f = *state;
    char a[37], b[37], c[37];
    create_task(f->s, TASK_NULL_TIME, a);
    create_task(f->s, TASK_NULL_TIME, b);
    create_task(f->s, TASK_NULL_TIME, c);
    queue_config q = make_queue("work", 600, 1, "dlq", 0);
    publish_bodies(f->b, &q, 0, 1, a);
    publish_bodies(f->b, &q, 1, 1, b);
    publish_bodies(f->b, &q, 2, 1, c);
    exhaust(f->b, &q, 3);
    expect_stats(f->b, "dlq", 3, 0, 0);

    atomic_store(&corrupt_reads, 0);
    atomic_store(&corrupt_task, b);
    int64_t moved = -1;
    test_stderr cap;
    test_stderr_begin(&cap);
    store_rc rc = redrive(f->b, "dlq", "work", &moved);
    char *log = test_stderr_end(&cap);
    atomic_store(&corrupt_task, NULL);
    assert_int_equal(rc, STORE_OK);
    assert_int_equal(moved, 2);
    assert_int_equal(atomic_load(&corrupt_reads), 1);
    expect_stats(f->b, "dlq", 1, 0, 0);
    expect_stats(f->b, "work", 2, 0, 0);
    expect_status(f->s, a, TASK_CREATED, "Redriven from dlq");
    expect_status(f->s, b, TASK_FAILED, "dead-letter queue dlq after 1 receive");
    expect_status(f->s, c, TASK_CREATED, "Redriven from dlq");
    count_row("SELECT count(*) FROM messages WHERE queue = 'dlq' AND task_id = ?1", b, 1);
    char said[96];
    snprintf(said, sizeof said, "\"message_id\":\"%lld\",\"task_id\":\"%s\"",
             (long long)message_of(b), b);
    expect_logged(log, "\"level\":\"ERROR\"", said);
    free(log);

    assert_int_equal(redrive(f->b, "dlq", "work", &moved), STORE_OK);
    assert_int_equal(moved, 1);
    expect_stats(f->b, "dlq", 0, 0, 0);
    expect_status(f->s, b, TASK_CREATED, "Redriven from dlq");
}

/* The message of task id: its expires_ms - sent_ms, and its expires_ms - now (ms). */
static void message_life(const char *id, int64_t *from_send, int64_t *from_now)
{
    sqlite3_stmt *st =
        own_stmt(SQLITE_OPEN_READONLY, "SELECT expires_ms - sent_ms, expires_ms - "
                                       "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) "
                                       "FROM messages WHERE task_id = ?1");
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    *from_send = sqlite3_column_int64(st, 0);
    *from_now = sqlite3_column_int64(st, 1);
    own_done(st);
}

/* Receive and claim, as a runner does: the count received. */
static size_t receive_claiming(broker *b, const queue_config *q, queue_message **m)
{
    size_t n = 0;
    int64_t next_ms = 0;
    assert_int_equal(broker_receive_and_claim(b, q, 10, 0, m, &n, &next_ms), STORE_OK);
    return n;
}

/* One step of housekeeping, records every consumer passed trimmed at once. */
static store_rc sweep_once(broker *b)
{
    config c;
    assert_true(config_defaults(&c));
    c.event_replay = 0;
    int64_t removed = -1;
    store_rc rc = broker_sweep(b, &c, &removed, NULL);
    config_free(&c);
    return rc;
}

/* Put the messages of task id past their retention (when expire), then sweep with the defaults. */
static void sweep_expiring(fx *f, const char *id, bool expire)
{
    if (expire)
        assert_int_equal(
            test_sqlite_exec(db_path, "UPDATE messages SET expires_ms = 1 WHERE task_id = ?1", id),
            1);
    assert_int_equal(sweep_once(f->b), STORE_OK);
}

/*
 * A message's life: a dead letter is kept for its dead-letter queue's retention from its first
 * send (as SQS), a redriven one for its queue's retention from the redrive; and one past its
 * retention is not expired while it is in flight (its run decides its task), only once it is
 * visible again.
 */
static void test_message_lifetimes(void **state)
{
    fx *f = *state;
    char id[37];
    create_task(f->s, TASK_NULL_TIME, id);
    queue_config q = make_queue("work", 600, 1, "dlq", 0);
    q.retention = 60;
    q.dead_letter_retention = 3600;
    publish_bodies(f->b, &q, 0, 1, id);
    int64_t from_send, from_now;
    message_life(id, &from_send, &from_now);
    assert_int_equal(from_send, 60 * 1000);

    queue_message *m = NULL;
    assert_int_equal(receive(f->b, &q, 10, &m, NULL), 1);
    assert_int_equal(give_back(f->b, m, 1), STORE_OK);
    queue_messages_free(m, 1);
    assert_int_equal(receive(f->b, &q, 10, &m, NULL), 0); /* moved to the DLQ */
    queue_messages_free(m, 0);
    message_life(id, &from_send, &from_now);
    /* the send by the wall clock, the end by the steady one: read a millisecond apart */
    if (from_send < 3600 * 1000 - 10 || from_send > 3600 * 1000 + 10)
        fail_msg("a dead letter expires %lld ms after its send", (long long)from_send);

    assert_int_equal(test_sqlite_exec(db_path,
                                      "UPDATE messages SET sent_ms = sent_ms - 7200000 "
                                      "WHERE task_id = ?1",
                                      id),
                     1);
    int64_t moved = -1;
    assert_int_equal(redrive(f->b, "dlq", "work", &moved), STORE_OK); /* retention 3600 */
    assert_int_equal(moved, 1);
    message_life(id, &from_send, &from_now);
    if (from_now <= 3590 * 1000 || from_now > 3601 * 1000) /* clocks read apart */
        fail_msg("a redriven message expires in %lld ms", (long long)from_now);
    /* sent again by the redrive: dead-lettered once more, it is kept for the dead-letter queue's
     * retention from the redrive, not from its first send (2 h back here, past that retention) */
    assert_int_equal(receive(f->b, &q, 10, &m, NULL), 1);
    assert_int_equal(give_back(f->b, m, 1), STORE_OK);
    queue_messages_free(m, 1);
    assert_int_equal(receive(f->b, &q, 10, &m, NULL), 0); /* moved to the DLQ again */
    queue_messages_free(m, 0);
    message_life(id, &from_send, &from_now);
    if (from_send < 3600 * 1000 - 10 || from_send > 3600 * 1000 + 10)
        fail_msg("dead-lettered again, a message expires %lld ms after its send",
                 (long long)from_send);
    if (from_now <= 3590 * 1000 || from_now > 3601 * 1000)
        fail_msg("dead-lettered again, a redriven message expires in %lld ms", (long long)from_now);
    assert_int_equal(redrive(f->b, "dlq", "work", &moved), STORE_OK);
    assert_int_equal(moved, 1);

    /* received (the task claimed, as a runner does), then past its retention */
    assert_int_equal(receive_claiming(f->b, &q, &m), 1);
    sweep_expiring(f, id, true);
    expect_status(f->s, id, TASK_IN_PROGRESS, "Task started"); /* running: left alone */
    expect_stats(f->b, "work", 0, 1, 0);
    /* given back unfinished: visible again, it is expired, and its task failed */
    assert_int_equal(broker_release(f->b, m, 1), STORE_OK);
    queue_messages_free(m, 1);
    sweep_expiring(f, id, false);
    expect_status(f->s, id, TASK_FAILED, "message expired in queue work before the task finished");
    expect_stats(f->b, "work", 0, 0, 0);
}

/*
 * A message the runner will drop (its task claimed by someone else, or finished) leaves with the
 * receive that finds it so: kept until the batch ends, it could come back after its visibility
 * timeout or a crash as a redelivery, and run the other claimer's task. A redelivery of the
 * message's own claim is kept.
 */
/*
 * A message's id is never given again while taskd runs: a runner that still holds the receipt of
 * a message deleted since (dropped at its receive, say, its task someone else's) must not delete
 * the next message, which SQLite would have given the same id when the deleted one was the newest.
 */
static void test_a_stale_receipt_spares_a_message_that_came_after(void **state)
{
    fx *f = *state;
    queue_config q = make_queue("work", 60, 0, NULL, 0);
    queue_message *first = NULL, *next = NULL;
    publish_bodies(f->b, &q, 0, 1, NULL);
    assert_int_equal(receive(f->b, &q, 1, &first, NULL), 1);
    assert_int_equal(broker_delete(f->b, first, 1), STORE_OK); /* gone: the newest message */
    publish_bodies(f->b, &q, 1, 1, NULL);
    assert_int_equal(receive(f->b, &q, 1, &next, NULL), 1);
    assert_true(next[0].id > first[0].id);
    assert_int_equal(next[0].receive_count, first[0].receive_count);
    assert_int_equal(broker_delete(f->b, first, 1), STORE_OK); /* the stale receipt, again */
    expect_stats(f->b, "work", 0, 1, 0);                       /* the next one is still there */
    queue_messages_free(first, 1);
    queue_messages_free(next, 1);

    /* nor after a restart: ids go on from the greatest kept */
    int64_t kept = 0;
    sqlite3_stmt *st = own_stmt(SQLITE_OPEN_READONLY, "SELECT max(id) FROM messages");
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    kept = sqlite3_column_int64(st, 0);
    own_done(st);
    reopen(f, NULL);
    publish_bodies(f->b, &q, 2, 1, NULL);
    st = own_stmt(SQLITE_OPEN_READONLY, "SELECT max(id) FROM messages");
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int64(st, 0), kept + 1);
    own_done(st);
}

/*
 * A receipt held from before a message moved to the dead-letter queue, or was redriven from it,
 * is stale there: the move counts the message's receives afresh, and kept under its id, the
 * message's first receive in its new queue had the receipt of its first in the old one. A runner
 * whose run outlived its visibility, past a move to the dead-letter queue and a redrive,
 * deleted with that receipt the redriven copy another runner was running: a crash then left its
 * task IN_PROGRESS with no message. The receipt held across the move alone is stale too.
 */
static void test_a_receipt_from_before_a_move_is_stale(void **state)
{
    fx *f = *state;
    queue_config q = make_queue("work", 600, 1, "dlq", 0);
    queue_config dlq = make_queue("dlq", 600, 0, NULL, 0);
    publish_bodies(f->b, &q, 0, 1, NULL);
    queue_message *old = NULL, *dead = NULL, *back = NULL;
    assert_int_equal(receive(f->b, &q, 1, &old, NULL), 1);
    assert_int_equal(give_back(f->b, old, 1), STORE_OK); /* counted: its run overran */
    queue_message *none = NULL;
    assert_int_equal(receive(f->b, &q, 1, &none, NULL), 0); /* moved to the DLQ */
    queue_messages_free(none, 0);

    assert_int_equal(receive(f->b, &dlq, 1, &dead, NULL), 1);
    assert_int_equal(dead[0].receive_count, old[0].receive_count);
    assert_int_equal(broker_delete(f->b, old, 1), STORE_OK); /* the old run ends */
    expect_stats(f->b, "dlq", 0, 1, 0);                      /* the DLQ's copy still there */
    assert_int_equal(give_back(f->b, dead, 1), STORE_OK);
    expect_stats(f->b, "dlq", 1, 0, 0);

    int64_t moved = 0;
    assert_int_equal(redrive(f->b, "dlq", "work", &moved), STORE_OK);
    assert_int_equal(moved, 1);
    assert_int_equal(receive(f->b, &q, 1, &back, NULL), 1);
    assert_int_equal(broker_delete(f->b, old, 1), STORE_OK);
    assert_int_equal(broker_delete(f->b, dead, 1), STORE_OK);
    expect_stats(f->b, "work", 0, 1, 0); /* neither receipt names the redriven copy */
    assert_int_equal(broker_delete(f->b, back, 1), STORE_OK);
    expect_stats(f->b, "work", 0, 0, 0);
    queue_messages_free(old, 1);
    queue_messages_free(dead, 1);
    queue_messages_free(back, 1);
}

static void test_a_dropped_message_leaves_with_its_receive(void **state)
{
    fx *f = *state;
    queue_config q = make_queue("work", 1, 3, NULL, 0); /* visible again after 1 s */
    char claimed[37], failed[37], own[37];
    create_task(f->s, TASK_NULL_TIME, claimed);
    create_task(f->s, TASK_NULL_TIME, failed);
    create_task(f->s, TASK_NULL_TIME, own);
    publish_bodies(f->b, &q, 0, 1, claimed);
    publish_bodies(f->b, &q, 1, 1, failed);
    set_status(f->s, claimed, TASK_IN_PROGRESS, "a client is on it", (int64_t)time(NULL));
    set_status(f->s, failed, TASK_FAILED, "cancelled", (int64_t)time(NULL));

    queue_message *m = NULL;
    assert_int_equal(receive_claiming(f->b, &q, &m), 2);
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(m[i].claim, STORE_CONFLICT);
        assert_int_equal(m[i].receive_count, 1);
    }
    queue_messages_free(m, 2);
    expect_stats(f->b, "work", 0, 0, 0); /* both gone, not in flight */
    sleep(2);                            /* past the visibility timeout */
    assert_int_equal(receive_claiming(f->b, &q, &m), 0);
    queue_messages_free(m, 0);
    expect_status(f->s, claimed, TASK_IN_PROGRESS, "a client is on it");

    /* its own claim, given back: the redelivery keeps its message and claims again */
    publish_bodies(f->b, &q, 2, 1, own);
    assert_int_equal(receive_claiming(f->b, &q, &m), 1);
    assert_int_equal(m[0].claim, STORE_OK);
    assert_int_equal(give_back(f->b, m, 1), STORE_OK);
    queue_messages_free(m, 1);
    assert_int_equal(receive_claiming(f->b, &q, &m), 1);
    assert_int_equal(m[0].claim, STORE_CONFLICT);
    assert_int_equal(m[0].status_before, TASK_IN_PROGRESS);
    queue_messages_free(m, 1);
    expect_stats(f->b, "work", 0, 1, 0);
    expect_status(f->s, own, TASK_IN_PROGRESS, "Task started"); /* and again, in its history */
}

/* The status counts of a listener's changes (count_change()). */
typedef struct changes_counted {
    int by_status[4];
} changes_counted;

static void count_change(void *ctx, const char *task_type, task_status status, bool created)
{
    (void)task_type;
    (void)created;
    ((changes_counted *)ctx)->by_status[status]++;
}

/* A status field of a change record's image ("NewImage", "OldImage"). */
static const char *image_s(json_t *rec, const char *image, const char *field)
{
    json_t *img = json_object_get(json_object_get(rec, "dynamodb"), image);
    return json_string_value(json_object_get(json_object_get(img, field), "S"));
}

/*
 * A redelivery that runs its task again is a change of the task, as on DynamoDB: its message
 * and updated_time move, and a MODIFY record says so (the stream, /events and the dashboard show
 * the run again), but it is not a status change for the metrics.
 */
static void test_a_claim_again_is_a_change_of_its_task(void **state)
{
    fx *f = *state;
    changes_counted cc = {0};
    store_listener l = {.changed = count_change, .ctx = &cc};
    reopen(f, &l);
    queue_config q = make_queue("work", 1, 3, NULL, 0); /* visible again after 1 s */
    char id[37];
    create_task(f->s, TASK_NULL_TIME, id);
    publish_bodies(f->b, &q, 0, 1, id);
    queue_message *m = NULL;
    assert_int_equal(receive_claiming(f->b, &q, &m), 1);
    assert_int_equal(m[0].claim, STORE_OK);
    queue_messages_free(m, 1);
    task before = {0};
    assert_int_equal(store_get_task(f->s, id, &before), STORE_OK);
    sleep_ms(2100); /* its run died: past the visibility timeout, and a second on */
    assert_int_equal(receive_claiming(f->b, &q, &m), 1);
    assert_int_equal(m[0].claim, STORE_CONFLICT);
    assert_int_equal(m[0].status_before, TASK_IN_PROGRESS);
    queue_messages_free(m, 1);

    task after = {0};
    assert_int_equal(store_get_task(f->s, id, &after), STORE_OK);
    assert_int_equal(after.status, TASK_IN_PROGRESS);
    assert_string_equal(after.status_msg, "Task started again (receive 2)");
    assert_true(after.updated_time > before.updated_time);
    task_clear(&before);
    task_clear(&after);

    int64_t cp = -1;
    change_record *r = NULL;
    size_t n = 0;
    assert_int_equal(broker_read_changes(f->b, "observer", 10, CHANGE_READ_WHOLE, &cp, &r, &n),
                     STORE_OK);
    assert_int_equal(n, 3); /* the creation, the claim, the claim again */
    json_t *rec = json_loads(r[2].json, 0, NULL);
    assert_non_null(rec);
    assert_string_equal(json_string_value(json_object_get(rec, "eventName")), "MODIFY");
    assert_string_equal(image_s(rec, "OldImage", "status"), "IN_PROGRESS");
    assert_string_equal(image_s(rec, "OldImage", "status_msg"), "Task started");
    assert_string_equal(image_s(rec, "NewImage", "status"), "IN_PROGRESS");
    assert_string_equal(image_s(rec, "NewImage", "status_msg"), "Task started again (receive 2)");
    json_decref(rec);
    change_records_free(r, n);

    /* the creation and the one claim: status changes; the claim again is none */
    assert_int_equal(cc.by_status[TASK_CREATED], 1);
    assert_int_equal(cc.by_status[TASK_IN_PROGRESS], 1);
    reopen(f, NULL);
}

/*
 * A copy of a task's message that expires unreceived while the task is IN_PROGRESS leaves the
 * task to its claimer (a client, or the runner of another queue it fanned out to): the copy goes,
 * the task is not failed under the run that will finish it.
 */
static void test_an_expired_copy_spares_a_task_another_runs(void **state)
{
    fx *f = *state;
    char id[37];
    create_task(f->s, TASK_NULL_TIME, id);
    queue_config q = make_queue("other", 600, 0, NULL, 0);
    publish_bodies(f->b, &q, 0, 1, id);
    set_status(f->s, id, TASK_IN_PROGRESS, "another queue's runner", (int64_t)time(NULL));
    sweep_expiring(f, id, true);
    expect_stats(f->b, "other", 0, 0, 0);
    expect_status(f->s, id, TASK_IN_PROGRESS, "another queue's runner");
}

/*
 * A message past its retention is not delivered, though no sweep dropped it yet (they run a
 * minute apart): the receive that meets it does what the sweep would have, drops it and fails
 * its task, and delivers the next one.
 */
static void test_a_receive_drops_what_is_past_its_retention(void **state)
{
    fx *f = *state;
    char stale[37], fresh[37];
    create_task(f->s, TASK_NULL_TIME, stale);
    create_task(f->s, TASK_NULL_TIME, fresh);
    queue_config q = make_queue("work", 600, 0, NULL, 0);
    publish_bodies(f->b, &q, 0, 1, stale);
    publish_bodies(f->b, &q, 1, 1, fresh);
    assert_int_equal(
        test_sqlite_exec(db_path, "UPDATE messages SET expires_ms = 1 WHERE task_id = ?1", stale),
        1);
    queue_message *m = NULL;
    assert_int_equal(receive_claiming(f->b, &q, &m), 1);
    assert_string_equal(m[0].task_id, fresh);
    queue_messages_free(m, 1);
    expect_status(f->s, stale, TASK_FAILED,
                  "message expired in queue work before the task finished");
    expect_status(f->s, fresh, TASK_IN_PROGRESS, "Task started");
    expect_stats(f->b, "work", 0, 1, 0); /* the stale one gone, the fresh one in flight */
}

typedef struct commit_count {
    atomic_int commits;
} commit_count;

static void count_commit(void *ctx, size_t writes, double seconds, bool durable)
{
    (void)writes;
    (void)seconds;
    (void)durable;
    atomic_fetch_add(&((commit_count *)ctx)->commits, 1);
}

/* The duration of the last commit a listener was told of (note_commit_time()). */
typedef struct commit_time {
    double seconds;
    int commits;
} commit_time;

static void note_commit_time(void *ctx, size_t writes, double seconds, bool durable)
{
    (void)writes;
    (void)durable;
    commit_time *t = ctx; /* the writer's; read once the write that committed is done */
    t->seconds = seconds;
    t->commits++;
}

/*
 * A commit is timed by the monotonic clock: the wall clock stepped back an hour while it ran
 * (date -s, an NTP step) made it last -3600 s in taskd_store_commit_seconds, whose sum a rate
 * then read as negative.
 */
static void test_a_commit_is_timed_by_the_monotonic_clock(void **state)
{
    fx *f = *state;
    commit_time t = {0};
    store_listener l = {.committed = note_commit_time, .ctx = &t};
    reopen(f, &l);
    atomic_store(&step_at_commit, true);
    char id[37];
    store_new_task nt = {.task_type = "TASK2", .data = "{}", .ttl = TASK_NULL_TIME};
    store_rc rc = store_create_task(f->s, &nt, clock_unix_s(), id);
    bool stepped = !atomic_load(&step_at_commit);
    atomic_store(&step_at_commit, false);
    atomic_store(&wall_step_ms, 0);
    assert_int_equal(rc, STORE_OK);
    assert_true(stepped);
    assert_int_equal(t.commits, 1);
    if (!(t.seconds >= 0 && t.seconds < 60))
        fail_msg("the commit took %.3f s", t.seconds);
}

/* A dead-letter queue "dlq" of n messages: first one of a task (*id) that its move there failed,
 * then n - 1 without a task. */
static void fill_dlq(fx *f, int n, char id[37])
{
    create_task(f->s, TASK_NULL_TIME, id);
    set_status(f->s, id, TASK_FAILED, "dead-letter queue dlq after 3 receives",
               (int64_t)time(NULL));
    queue_config dlq = make_queue("dlq", 30, 0, NULL, 0);
    publish_bodies(f->b, &dlq, 0, 1, id); /* the first a step reads */
    /* as its move to the DLQ would have marked it: it failed the task */
    assert_int_equal(
        test_sqlite_exec(db_path, "UPDATE messages SET failed_task = 1 WHERE task_id = ?1", id), 1);
    for (int i = 1; i < n; i += 8)
        publish_bodies(f->b, &dlq, i, n - i < 8 ? n - i : 8, NULL);
}

/*
 * A redrive moves a dead-letter queue 1,000 messages per write, each step submitted again from
 * the last one's done(), so that a large DLQ does not hold the writer in one transaction; the
 * count is the whole, and the tasks and depths follow.
 */
static void test_redrive_in_steps(void **state)
{
    fx *f = *state;
    commit_count cc = {0};
    store_listener l = {.committed = count_commit, .ctx = &cc};
    reopen(f, &l);

    enum { N = 2500 };
    char id[37];
    fill_dlq(f, N, id);
    expect_stats(f->b, "dlq", N, 0, 0);

    atomic_store(&cc.commits, 0);
    int64_t moved = -1;
    assert_int_equal(redrive(f->b, "dlq", "work", &moved), STORE_OK);
    assert_int_equal(moved, N);
    assert_int_equal(atomic_load(&cc.commits), 3); /* 1,000, 1,000, 500 */
    expect_stats(f->b, "dlq", 0, 0, 0);
    expect_stats(f->b, "work", N, 0, 0);
    expect_status(f->s, id, TASK_CREATED, "Redriven from dlq");

    /* and back, and an empty DLQ moves nothing in one step */
    assert_int_equal(redrive(f->b, "work", "dlq", &moved), STORE_OK);
    assert_int_equal(moved, N);
    assert_int_equal(redrive(f->b, "work", "dlq", &moved), STORE_OK);
    assert_int_equal(moved, 0);
    expect_stats(f->b, "dlq", N, 0, 0);
}

/* A dead letter left by a redrive step, its task unreadable, is passed over by the steps after
 * it: read once, the rest moved, the whole batch after it taken in the next step. */
static void test_redrive_in_steps_over_a_task_that_cannot_be_read(void **state)
{
    fx *f = *state;
    commit_count cc = {0};
    store_listener l = {.committed = count_commit, .ctx = &cc};
    reopen(f, &l);

    enum { N = 2001 };
    char id[37];
    fill_dlq(f, N, id);

    atomic_store(&corrupt_reads, 0);
    atomic_store(&corrupt_task, id);
    atomic_store(&cc.commits, 0);
    int64_t moved = -1;
    test_stderr cap;
    test_stderr_begin(&cap);
    store_rc rc = redrive(f->b, "dlq", "work", &moved);
    free(test_stderr_end(&cap));
    atomic_store(&corrupt_task, NULL);
    assert_int_equal(rc, STORE_OK);
    assert_int_equal(moved, N - 1);
    assert_int_equal(atomic_load(&corrupt_reads), 1);
    assert_int_equal(atomic_load(&cc.commits), 3); /* 999 and 1 left, 1,000, 1 */
    expect_stats(f->b, "dlq", 1, 0, 0);
    expect_stats(f->b, "work", N - 1, 0, 0);
    expect_status(f->s, id, TASK_FAILED, "dead-letter queue dlq after 3 receives");
}

/* Rows of the idempotency table, read on a connection of our own. */
static int64_t idempotency_keys(void)
{
    sqlite3_stmt *st = own_stmt(SQLITE_OPEN_READONLY, "SELECT count(*) FROM idempotency");
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t n = sqlite3_column_int64(st, 0);
    own_done(st);
    return n;
}

static void create_keyed(store *s, const char *key, int64_t now, char id[37])
{
    store_new_task t = {
        .task_type = "TASK1", .data = "{}", .ttl = TASK_NULL_TIME, .idempotency_key = key};
    assert_int_equal(store_create_task(s, &t, now, id), STORE_OK);
}

/*
 * A key whose task id was made longer than a task's by hand (its task's row too) is said once,
 * with that id, and a create with it makes a new task, as one whose task is gone does. Its id was
 * cut to fit: the create answered a duplicate of the task its first 36 characters name (here gone
 * by its new name).
 */
static void test_a_key_of_an_id_longer_than_a_task_s_makes_a_new_task(void **state)
{
    fx *f = *state;
    int64_t now = (int64_t)time(NULL);
    char first[37], again[37] = "", whole[38];
    create_keyed(f->s, "k", now, first);
    snprintf(whole, sizeof whole, "%sx", first);
    assert_int_equal(
        test_sqlite_exec(db_path, "UPDATE tasks SET id = ?1 || 'x' WHERE id = ?1", first), 1);
    assert_int_equal(test_sqlite_exec(db_path,
                                      "UPDATE idempotency SET task_id = ?1 || 'x' "
                                      "WHERE task_id = ?1",
                                      first),
                     1);
    store_new_task t = {
        .task_type = "TASK1", .data = "{}", .ttl = TASK_NULL_TIME, .idempotency_key = "k"};
    test_stderr cap;
    test_stderr_begin(&cap);
    store_rc rc = store_create_task(f->s, &t, now, again);
    char *log = test_stderr_end(&cap);
    if (rc != STORE_OK)
        fail_msg("a create with the key answered %s, id %s", store_rc_name(rc), again);
    assert_string_not_equal(again, first);
    assert_int_equal(expect_logged(log, "names a task whose row cannot be read", whole), 1);
    free(log);
    expect_status(f->s, again, TASK_CREATED, NULL);
    /* the key names the new task now */
    char third[37];
    store_new_task t2 = t;
    assert_int_equal(store_create_task(f->s, &t2, now, third), STORE_DUPLICATE);
    assert_string_equal(third, again);
}

/*
 * Keys older than the idempotency window are forgotten after a batch, 1,000 per purge: a
 * purge that finds a whole batch purges again after the next batch instead of a minute later.
 * A purge runs after its batch's writers have their answers, so it is known to be done only
 * once the next write is answered.
 */
static void test_idempotency_keys_purged_in_steps(void **state)
{
    fx *f = *state;
    const int64_t t0 = 1000000, later = t0 + STORE_IDEMPOTENCY_WINDOW + 100;
    char id[37], first[37], again[37];
    create_keyed(f->s, "k0", t0, first);
    for (int i = 1; i < 2500; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        create_keyed(f->s, key, t0, id);
    }
    assert_int_equal(idempotency_keys(), 2500); /* one purge ran at t0: nothing was old */
    create_keyed(f->s, "fresh", later, id);     /* its batch's purge takes 1,000 */
    create_keyed(f->s, NULL, later, id);        /* answered: that purge is done */
    int64_t left = idempotency_keys();
    assert_true(left >= 501 && left <= 1501); /* this batch's own purge may have run too */
    create_keyed(f->s, NULL, later, id);
    create_keyed(f->s, NULL, later, id);
    assert_int_equal(idempotency_keys(), 1); /* "fresh" */
    /* a forgotten key creates a new task */
    create_keyed(f->s, "k0", later, again);
    assert_string_not_equal(again, first);
}

/* A page of q's ids, newest first, into ids (at most 8); returns the count, *more the flag. */
static size_t list_ids(store *s, const store_list_query *q, char ids[8][37], int *more)
{
    store_page p;
    assert_int_equal(store_list_tasks(s, q, &p), STORE_OK);
    assert_true(p.count <= 8);
    for (size_t i = 0; i < p.count; i++)
        memcpy(ids[i], p.tasks[i].id, 37);
    size_t n = p.count;
    *more = p.more;
    store_page_free(&p);
    return n;
}

/*
 * A listing by one filter is merged from tasks_by_type_status, one leg per status or per task
 * type; the types are read from the database at open (a type no longer configured still lists)
 * and noted by every create.
 */
static void test_listing_by_one_filter_merges_its_legs(void **state)
{
    fx *f = *state;
    int64_t now = (int64_t)time(NULL);
    char a[37], b[37], c[37], d[37];
    store_new_task t = {.task_type = "OLD", .data = "{}", .ttl = TASK_NULL_TIME};
    assert_int_equal(store_create_task(f->s, &t, now, a), STORE_OK);
    t.task_type = "NEW";
    assert_int_equal(store_create_task(f->s, &t, now, b), STORE_OK);
    reopen(f, NULL); /* OLD and NEW are read back from the database */
    t.task_type = "OLD";
    assert_int_equal(store_create_task(f->s, &t, now, c), STORE_OK);
    t.task_type = "LATEST"; /* a type first seen now */
    assert_int_equal(store_create_task(f->s, &t, now, d), STORE_OK);
    set_status(f->s, c, TASK_IN_PROGRESS, "", now);

    char ids[8][37];
    int more;
    store_list_query q = {.status = "CREATED", .limit = 2};
    assert_int_equal(list_ids(f->s, &q, ids, &more), 2);
    assert_string_equal(ids[0], d);
    assert_string_equal(ids[1], b);
    assert_true(more);
    q.before_id = b;
    assert_int_equal(list_ids(f->s, &q, ids, &more), 1);
    assert_string_equal(ids[0], a);
    assert_false(more);

    q = (store_list_query){.task_type = "OLD", .limit = 1};
    assert_int_equal(list_ids(f->s, &q, ids, &more), 1);
    assert_string_equal(ids[0], c); /* IN_PROGRESS, newer than the CREATED one */
    assert_true(more);
    q.before_id = c;
    assert_int_equal(list_ids(f->s, &q, ids, &more), 1);
    assert_string_equal(ids[0], a);
    assert_false(more);
}

/*
 * An extension says which of its receipts are stale: a message received again since (its hide ran
 * out) and one deleted are no longer the first receiver's, neither to run nor to delete, and the
 * receipt still held is extended. The extension changed nothing for a stale receipt and said
 * nothing either: a runner whose batch's hide had run out before its first extension went on to
 * run tasks another receive had since taken, or moved to the dead-letter queue.
 */
static void test_an_extension_says_which_receipts_are_stale(void **state)
{
    fx *f = *state;
    queue_config q = make_queue("work", 600, 0, NULL, 0);
    publish_bodies(f->b, &q, 0, 3, NULL);
    queue_message *m = NULL, *again = NULL;
    assert_int_equal(receive(f->b, &q, 3, &m, NULL), 3);
    assert_int_equal(give_back(f->b, &m[0], 1), STORE_OK); /* as when its hide runs out */
    assert_int_equal(receive(f->b, &q, 3, &again, NULL), 1);
    assert_int_equal(again[0].id, m[0].id);
    assert_int_equal(broker_delete(f->b, &m[1], 1), STORE_OK);
    bool stale[3] = {true, true, true};
    assert_int_equal(broker_extend(f->b, m, 3, 600, stale), STORE_OK);
    assert_true(stale[0]);
    assert_true(stale[1]);
    assert_false(stale[2]);
    bool again_stale = true;
    assert_int_equal(broker_extend(f->b, again, 1, 600, &again_stale), STORE_OK);
    assert_false(again_stale);
    expect_stats(f->b, "work", 0, 2, 0);
    queue_messages_free(m, 3);
    queue_messages_free(again, 1);
}

/* The depths are counters the writer keeps: after every kind of move, and loaded again on
 * reopen, they equal the rows (expect_stats counts them too). */
static void test_depths_follow_every_move_and_reopen(void **state)
{
    fx *f = *state;
    queue_config q = make_queue("work", 1, 2, "dlq", 0);
    queue_config d = make_queue("later", 600, 0, NULL, 1);
    publish_bodies(f->b, &q, 0, 6, NULL);
    publish_bodies(f->b, &d, 6, 2, NULL);
    expect_stats(f->b, "work", 6, 0, 0);
    expect_stats(f->b, "later", 0, 0, 2);

    queue_message *m = NULL;
    assert_int_equal(receive(f->b, &q, 4, &m, NULL), 4);
    expect_stats(f->b, "work", 2, 4, 0);
    assert_int_equal(broker_delete(f->b, &m[0], 1), STORE_OK);
    assert_int_equal(broker_delete(f->b, &m[0], 1), STORE_OK); /* stale: nothing */
    assert_int_equal(give_back(f->b, &m[1], 1), STORE_OK);
    assert_int_equal(broker_extend(f->b, &m[2], 1, 600, NULL), STORE_OK);
    queue_messages_free(m, 4);
    expect_stats(f->b, "work", 3, 2, 0);

    /* the hidden ones come back when their time passes, the delayed ones too */
    sleep_ms(1100);
    expect_stats(f->b, "work", 4, 1, 0);
    expect_stats(f->b, "later", 2, 0, 0);

    /* two were received twice: the next receive moves them to the DLQ, and takes the other two */
    assert_int_equal(receive(f->b, &q, 10, &m, NULL), 4);
    queue_messages_free(m, 4);
    sleep_ms(1100);
    assert_int_equal(receive(f->b, &q, 10, &m, NULL), 2);
    queue_messages_free(m, 2);
    expect_stats(f->b, "dlq", 2, 0, 0);
    expect_same(f->b, "work", 3); /* hidden for 1 s (2) or 600 s (1): the clock decides */

    reopen(f, NULL);
    expect_stats(f->b, "dlq", 2, 0, 0);
    expect_same(f->b, "work", 3);
    expect_stats(f->b, "later", 2, 0, 0);

    int64_t moved = 0;
    assert_int_equal(redrive(f->b, "dlq", "work", &moved), STORE_OK);
    assert_int_equal(moved, 2);
    expect_stats(f->b, "dlq", 0, 0, 0);
    expect_same(f->b, "work", 5);
    expect_stats(f->b, "nowhere", 0, 0, 0);
}

/*
 * The open counts each queue's depths by messages_by_visibility: a probe for its hidden messages
 * and a count of its index entries, where it read every message row. Over queues in each state
 * (names that sort apart, one the prefix of another, a dead-letter queue's; messages visible,
 * delayed, received, given back, hidden for longer, all deleted), the counts it loads are those
 * of a read of every row (expect_stats() compares them with count_rows()).
 */
static void test_open_counts_the_depths_as_a_read_of_every_row(void **state)
{
    fx *f = *state;
    queue_config a = make_queue("a", 600, 0, NULL, 0);
    queue_config gone = make_queue("b", 600, 0, NULL, 0);
    queue_config work = make_queue("work", 600, 0, "work-dlq", 0);
    queue_config dlq = make_queue("work-dlq", 600, 0, NULL, 0);
    queue_config zz = make_queue("zz", 600, 0, NULL, 600);
    publish_bodies(f->b, &a, 0, 3, NULL);
    publish_bodies(f->b, &gone, 3, 2, NULL);
    publish_bodies(f->b, &work, 5, 8, NULL);
    publish_bodies(f->b, &dlq, 13, 2, NULL);
    publish_bodies(f->b, &zz, 15, 2, NULL);

    queue_message *m = NULL;
    assert_int_equal(receive(f->b, &a, 1, &m, NULL), 1);
    queue_messages_free(m, 1);
    assert_int_equal(receive(f->b, &gone, 2, &m, NULL), 2);
    assert_int_equal(broker_delete(f->b, m, 2), STORE_OK);
    queue_messages_free(m, 2);
    assert_int_equal(receive(f->b, &work, 5, &m, NULL), 5);
    assert_int_equal(give_back(f->b, &m[0], 1), STORE_OK); /* received, visible */
    assert_int_equal(broker_extend(f->b, &m[1], 1, 1200, NULL), STORE_OK);
    assert_int_equal(broker_delete(f->b, &m[2], 1), STORE_OK);
    queue_messages_free(m, 5);
    assert_int_equal(receive(f->b, &dlq, 2, &m, NULL), 2);
    assert_int_equal(give_back(f->b, m, 2), STORE_OK);
    queue_messages_free(m, 2);
    assert_int_equal(receive(f->b, &dlq, 1, &m, NULL), 1);
    queue_messages_free(m, 1);

    reopen(f, NULL);
    expect_stats(f->b, "a", 2, 1, 0);
    expect_stats(f->b, "b", 0, 0, 0);
    expect_stats(f->b, "work", 4, 3, 0);
    expect_stats(f->b, "work-dlq", 1, 1, 0);
    expect_stats(f->b, "zz", 0, 0, 2);
}

/* Whether sq_task_columns_hold() takes sql, prepared on the test's database, for the writer's
 * read of a task (W_GET_OWN after TASK_COLUMNS_FULL). */
static bool writer_read_holds(const char *sql)
{
    sqlite3_stmt *st = own_stmt(SQLITE_OPEN_READONLY, sql);
    bool holds = sq_task_columns_hold(st, true, W_GET_OWN);
    own_done(st);
    return holds;
}

/*
 * The open checks the writer's read of a task to its last column: load_task() reads its own
 * three after TASK_COLUMNS_FULL by their place, where only the first eleven were checked, and a
 * statement whose own columns drifted (two swapped, one left out) read one for another.
 */
static void test_the_writers_read_of_a_task_is_checked_to_its_last_column(void **state)
{
    (void)state;
    assert_true(writer_read_holds(W_GET_SQL));
    assert_false(writer_read_holds("SELECT " TASK_COLUMNS_FULL ", claim_key, hist_n, "
                                   "claim_expires FROM tasks WHERE id = ?1"));
    assert_false(writer_read_holds("SELECT " TASK_COLUMNS_FULL ", hist_n, claim_key FROM tasks "
                                   "WHERE id = ?1"));
    assert_false(writer_read_holds("SELECT " TASK_COLUMNS_FULL " FROM tasks WHERE id = ?1"));
}

/* ---- at open: messages hidden past any timeout ---- */

/* Open the test's database (closed) as taskd does, with configuration c: the warnings the open
 * logged go to *log (freed by the caller). */
static void open_configured(fx *f, const config *c, char **log)
{
    store_sqlite_options o = {
        .path = f->path, .sync = STORE_SYNC_NORMAL, .busy_timeout_ms = 5000, .config = c};
    char err[256] = "";
    test_stderr cap;
    log_level was = log_threshold();
    log_setup(LOG_WARN, NULL);
    test_stderr_begin(&cap);
    f->s = store_sqlite_open(&o, err, sizeof err);
    *log = test_stderr_end(&cap);
    log_setup(was, NULL);
    if (!f->s)
        print_error("store_sqlite_open(%s): %s\nlogged: %s\n", f->path, err, *log);
    assert_non_null(f->s);
    f->b = broker_of(f->s);
}

/* Close the test's database and open it again, as open_configured(). */
static void reopen_configured(fx *f, const config *c, char **log)
{
    store_close(f->s);
    open_configured(f, c, log);
}

/* Close and open again with c, the open saying it moved the messages back for a wall clock gone
 * back, and nothing of a check it could not make. */
static void reopen_moving_back(fx *f, const config *c)
{
    char *log = NULL;
    reopen_configured(f, c, &log);
    expect_logged(log, "the wall clock went back", NULL);
    expect_not_logged(log, "cannot check");
    free(log);
}

/* A configuration of one queue, q, and one handler on it of the given timeout (config_free()). */
static void config_of_queue(config *c, const queue_config *q, unsigned handler_timeout)
{
    assert_true(config_defaults(c));
    c->queues[0] = *q;
    c->n_queues = 1;
    snprintf(c->handlers[0].queue, sizeof c->handlers[0].queue, "%s", q->name);
    c->handlers[0].timeout = handler_timeout;
    c->n_handlers = 1;
}

/* Set the visibility of the message of body {"i":i} to ahead_s seconds from now. */
static void hide_for(int i, int64_t ahead_s)
{
    char at[24], sql[128];
    snprintf(at, sizeof at, "%lld", (long long)(wall_ms() + ahead_s * 1000));
    snprintf(sql, sizeof sql,
             "UPDATE messages SET visible_ms = CAST(?1 AS INTEGER) WHERE body = '{\"i\":%d}'", i);
    assert_int_equal(test_sqlite_exec(db_path, sql, at), 1);
}

/*
 * An open makes visible a message hidden further ahead than any timeout (the wall clock went
 * back since it was hidden). When that UPDATE fails (here a trigger refuses to bring a message
 * forward by more than an hour, which nothing but that UPDATE does), the open warns with
 * SQLite's error and goes on: the store works, the message stays hidden. The next open, the
 * trigger gone, makes it visible and says so.
 */
static void test_open_warns_when_it_cannot_unhide(void **state)
{
    fx *f = *state;
    queue_config q = make_queue("work", 30, 0, NULL, 0);
    config c;
    config_of_queue(&c, &q, 30); /* nothing hidden more than 90 s ahead */
    publish_bodies(f->b, &q, 0, 2, NULL);
    hide_for(0, 24 * 3600);
    test_sqlite_exec(db_path,
                     "CREATE TRIGGER no_unhide BEFORE UPDATE OF visible_ms ON messages "
                     "WHEN OLD.visible_ms - NEW.visible_ms > 3600000 BEGIN "
                     "SELECT RAISE(ABORT, 'refused to bring a message forward'); END",
                     NULL);

    char *log = NULL;
    reopen_configured(f, &c, &log);
    expect_logged(log, "cannot check the queues for messages hidden past any timeout",
                  "refused to bring a message forward");
    expect_not_logged(log, "made visible");
    free(log);

    /* the store works: the message stays hidden (delayed: never received), the other is
     * received and deleted, a new one goes through, a task is created and updated */
    expect_stats(f->b, "work", 1, 0, 1);
    queue_message *m = NULL;
    assert_int_equal(receive(f->b, &q, 10, &m, NULL), 1);
    assert_string_equal(m[0].body, "{\"i\":1}");
    assert_int_equal(broker_delete(f->b, m, 1), STORE_OK);
    queue_messages_free(m, 1);
    publish_bodies(f->b, &q, 2, 1, NULL);
    assert_int_equal(receive(f->b, &q, 10, &m, NULL), 1);
    assert_string_equal(m[0].body, "{\"i\":2}");
    assert_int_equal(broker_delete(f->b, m, 1), STORE_OK);
    queue_messages_free(m, 1);
    char id[37];
    create_task(f->s, 0, id);
    complete_task(f->s, id, (int64_t)time(NULL));
    expect_status(f->s, id, TASK_COMPLETED, "done");
    expect_stats(f->b, "work", 0, 0, 1);

    test_sqlite_exec(db_path, "DROP TRIGGER no_unhide", NULL);
    reopen_configured(f, &c, &log);
    expect_logged(log, "messages hidden past any timeout made visible", "\"messages\":\"1\"");
    expect_not_logged(log, "cannot check");
    free(log);
    expect_stats(f->b, "work", 1, 0, 0);
    assert_int_equal(receive(f->b, &q, 10, &m, NULL), 1);
    assert_string_equal(m[0].body, "{\"i\":0}");
    queue_messages_free(m, 1);
    config_free(&c);
}

/* That log says n messages hidden past any timeout were made visible (none: it says nothing of
 * them); log freed. */
static void expect_unhidden(char *log, int n)
{
    char count[32];
    snprintf(count, sizeof count, "\"messages\":\"%d\"", n);
    if (n == 0)
        expect_not_logged(log, "made visible");
    else
        expect_logged(log, "messages hidden past any timeout made visible", count);
    free(log);
}

/* Reopen the store configured with q alone, bound to a handler of timeout_s, and expect the open
 * to have made n messages visible. */
static void reopen_with_queue(fx *f, const queue_config *q, int timeout_s, int n)
{
    config c;
    char *log = NULL;
    config_of_queue(&c, q, timeout_s);
    reopen_configured(f, &c, &log);
    config_free(&c);
    expect_unhidden(log, n);
}

/*
 * How far ahead a message may be hidden at open is read from the configuration: the longest of
 * its queues' visibility timeouts and delays and its handlers' timeouts, and a minute. A
 * message hidden within that stays hidden; one hidden further is made visible. Each of the
 * three counts.
 */
static void test_open_unhides_past_the_configured_timeouts(void **state)
{
    fx *f = *state;
    queue_config q = make_queue("work", 30, 0, NULL, 0);
    publish_bodies(f->b, &q, 0, 2, NULL);
    hide_for(0, 630);
    hide_for(1, 700);
    reopen_with_queue(f, &q, 600, 1); /* a run's 600 s: nothing hidden more than 660 s ahead */
    expect_stats(f->b, "work", 1, 0, 1);
    queue_message *m = NULL;
    assert_int_equal(receive(f->b, &q, 10, &m, NULL), 1);
    assert_string_equal(m[0].body, "{\"i\":1}");
    queue_messages_free(m, 1);

    /* a queue's delay of 600 s, or its visibility timeout: the first stays hidden */
    q.delay = 600;
    reopen_with_queue(f, &q, 30, 0);
    q.delay = 0;
    q.visibility_timeout = 600;
    reopen_with_queue(f, &q, 30, 0);
    expect_stats(f->b, "work", 0, 1, 1);
    /* none so long: it is made visible */
    q.visibility_timeout = 30;
    reopen_with_queue(f, &q, 30, 1);
    expect_stats(f->b, "work", 1, 1, 0);
}

/*
 * The open's look for messages hidden past any timeout goes queue by queue: it finds each queue
 * there is a message in, whether configured or not (names that sort apart, one the prefix of
 * another, a dead-letter queue's), and makes visible every message hidden too far in each.
 */
static void test_open_unhides_in_every_queue(void **state)
{
    fx *f = *state;
    const char *names[] = {"a", "work", "work-dlq", "zz"};
    queue_config q[4];
    for (int i = 0; i < 4; i++) {
        q[i] = make_queue(names[i], 30, 0, NULL, 0);
        publish_bodies(f->b, &q[i], 3 * i, 3, NULL);
        hide_for(3 * i, 24 * 3600);
        hide_for(3 * i + 2, 24 * 3600);
    }
    reopen_with_queue(f, &q[1], 30, 8); /* "work" alone configured */
    for (int i = 0; i < 4; i++)
        expect_stats(f->b, names[i], 3, 0, 0);
}

/* The send, visibility and expiry of the only message, from the database. */
static void message_times(int64_t t[3])
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT sent_ms, visible_ms, expires_ms FROM messages",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    for (int i = 0; i < 3; i++)
        t[i] = sqlite3_column_int64(st, i);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* That log warns that the open could not check the queues for a clock gone back, and also
 * after it, on its line or a later one (NULL: not looked for), and says nothing of one found;
 * log freed. */
static void expect_clock_unchecked(char *log, const char *also)
{
    const char *warned = "cannot check the queues for a clock gone back";
    expect_logged(log, warned, NULL);
    if (also)
        expect_logged(strstr(log, warned), also, NULL);
    expect_not_logged(log, "the wall clock went back");
    free(log);
}

/* A configuration c of queue q ("work", config_free()), and one message in it sent by a clock an
 * hour ahead of this one, its times (message_times()) in ahead. */
static void message_an_hour_ahead(fx *f, const queue_config *q, config *c, int64_t ahead[3])
{
    config_of_queue(c, q, 30);
    publish_bodies(f->b, q, 0, 1, NULL);
    assert_int_equal(test_sqlite_exec(db_path,
                                      "UPDATE messages SET sent_ms = sent_ms + 3600000, "
                                      "visible_ms = visible_ms + 3600000, "
                                      "expires_ms = expires_ms + 3600000",
                                      NULL),
                     1);
    message_times(ahead);
}

/*
 * A read connection that cannot be opened (no descriptor left: the soft limit lowered to the
 * lowest free one) makes the read answer busy, which its client is told to retry (a 503 with
 * Retry-After), and is said once at WARN with SQLite's and the system's reasons, however many
 * reads fail meanwhile; once one opens, at INFO. It was said nowhere: clients got 503s while the
 * log said nothing of why.
 */
static void test_a_read_connection_that_cannot_open_is_said(void **state)
{
    fx *f = *state;
    reopen(f, NULL); /* no read connection opened yet */
    log_level was_level = log_threshold();
    log_setup(LOG_INFO, NULL);
    test_stderr cap;
    test_stderr_begin(&cap);
    int lowest_free = 0;
    while (fcntl(lowest_free, F_GETFD) != -1)
        lowest_free++;
    struct rlimit was;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &was), 0);
    struct rlimit low = {.rlim_cur = (rlim_t)lowest_free, .rlim_max = was.rlim_max};
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    task t;
    store_rc first = store_get_task(f->s, "01a25348-9b08-7004-8da2-8034a889ea20", &t);
    store_rc second = store_get_task(f->s, "01a25348-9b08-7004-8da2-8034a889ea21", &t);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &was), 0);
    store_rc after = store_get_task(f->s, "01a25348-9b08-7004-8da2-8034a889ea20", &t);
    char *log = test_stderr_end(&cap);
    log_setup(was_level, NULL);
    assert_int_equal(first, STORE_BUSY);
    assert_int_equal(second, STORE_BUSY);
    assert_int_equal(after, STORE_NOT_FOUND);
    assert_int_equal(expect_logged(log, "cannot open a read connection", "Too many open files"), 1);
    expect_logged(strstr(log, "cannot open a read connection"), "a read connection opens again",
                  NULL);
    free(log);
}

/* Whether the database has an index of that name. */
static bool has_index(const char *name)
{
    sqlite3_stmt *q =
        own_stmt(SQLITE_OPEN_READONLY,
                 "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = ?1");
    sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    bool has = sqlite3_column_int(q, 0) == 1;
    own_done(q);
    return has;
}

/*
 * messages_by_expiry dropped by hand is made again by the open, said at WARN, and the check for
 * a clock gone back, which reads by it, is made: every open warned that it could not check, and
 * skipped it, until the index was made by hand. The next open has nothing to make.
 */
static void test_the_open_makes_a_dropped_index_again(void **state)
{
    fx *f = *state;
    queue_config q = make_queue("work", 30, 0, NULL, 0);
    config c;
    int64_t ahead[3], t[3];
    message_an_hour_ahead(f, &q, &c, ahead);
    test_sqlite_exec(db_path, "DROP INDEX messages_by_expiry", NULL);
    assert_false(has_index("messages_by_expiry"));

    char *log = NULL;
    reopen_configured(f, &c, &log);
    expect_logged(log, "an index the store reads by was gone", "\"index\":\"messages_by_expiry\"");
    expect_logged(log, "the wall clock went back", NULL);
    expect_not_logged(log, "cannot check");
    free(log);
    assert_true(has_index("messages_by_expiry"));
    message_times(t);
    assert_true(t[0] <= wall_ms()); /* moved back with the clock */
    assert_true(t[2] < ahead[2]);

    reopen_configured(f, &c, &log);
    expect_not_logged(log, "an index the store reads by");
    free(log);
    config_free(&c);
}

/*
 * The open checks the queues for a wall clock gone back while taskd was down (the send and the
 * expiry of the newest message both ahead of the clock) and moves the messages' times back
 * with it. When that check cannot be made, its read, the read of where the last taskd stopped
 * its queue clock, or its UPDATE failing, the open warns and
 * goes on: the store works, the times stay as they were, and what is hidden past any timeout is
 * still made visible after it. The next open that can, moves them.
 */
static void test_open_warns_when_it_cannot_check_for_a_clock_gone_back(void **state)
{
    fx *f = *state;
    queue_config q = make_queue("work", 30, 0, NULL, 0);
    config c;
    int64_t ahead[3], t[3];
    message_an_hour_ahead(f, &q, &c, ahead);

    /* its read fails (an I/O error) */
    char *log = NULL;
    atomic_store(&fail_sql[0], "SELECT queue, max(expires_ms)");
    reopen_configured(f, &c, &log);
    assert_null(atomic_load(&fail_sql[0])); /* the check's read was made, and failed */
    expect_clock_unchecked(log, "messages hidden past any timeout made visible");
    message_times(t);
    assert_int_equal(t[0], ahead[0]);
    assert_int_equal(t[2], ahead[2]);
    assert_true(t[1] <= wall_ms()); /* made visible all the same */
    expect_stats(f->b, "work", 1, 0, 0);
    char id[37];
    create_task(f->s, 0, id);
    complete_task(f->s, id, (int64_t)time(NULL));
    expect_status(f->s, id, TASK_COMPLETED, "done");

    /* the read of where the last taskd stopped its queue clock fails */
    atomic_store(&fail_sql[0], "DELETE FROM meta WHERE name = 'queue_clock_at_stop'");
    reopen_configured(f, &c, &log);
    assert_null(atomic_load(&fail_sql[0]));
    expect_clock_unchecked(log, NULL);
    int64_t visible = t[1];
    message_times(t);
    assert_int_equal(t[0], ahead[0]);
    assert_int_equal(t[1], visible);
    assert_int_equal(t[2], ahead[2]);

    /* its UPDATE fails (a trigger refuses to move an expiry, which nothing but it does) */
    test_sqlite_exec(db_path,
                     "CREATE TRIGGER no_move BEFORE UPDATE OF expires_ms ON messages BEGIN "
                     "SELECT RAISE(ABORT, 'refused to move a message back'); END",
                     NULL);
    reopen_configured(f, &c, &log);
    expect_clock_unchecked(log, "refused to move a message back");
    message_times(t);
    assert_int_equal(t[0], ahead[0]);
    assert_int_equal(t[1], visible);
    assert_int_equal(t[2], ahead[2]);
    queue_message *m = NULL;
    assert_int_equal(receive(f->b, &q, 10, &m, NULL), 1);
    assert_string_equal(m[0].body, "{\"i\":0}");
    assert_int_equal(broker_release(f->b, m, 1), STORE_OK);
    queue_messages_free(m, 1);

    /* the trigger gone, the next open moves the three back by the hour */
    test_sqlite_exec(db_path, "DROP TRIGGER no_move", NULL);
    reopen_moving_back(f, &c);
    config_free(&c);
    message_times(t);
    assert_true(t[0] <= wall_ms());
    assert_true(ahead[0] - t[0] > 3590 * 1000);
    assert_int_equal(ahead[2] - t[2], ahead[0] - t[0]);
}

/* Where the queue clock was at the newest send, by a read of every message, as the open's check
 * for a clock gone back read them before it went by messages_by_expiry: for each queue of c, the
 * nearer of its newest send and its newest expiry less its retention; the furthest of those
 * (INT64_MIN: none). */
static int64_t newest_send_by_every_row(const config *c)
{
    sqlite3_stmt *st = own_stmt(SQLITE_OPEN_READONLY, "SELECT queue, max(expires_ms), "
                                                      "max(sent_ms) FROM messages GROUP BY 1");
    int64_t last = INT64_MIN;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const queue_config *q = config_queue(c, (const char *)sqlite3_column_text(st, 0));
        if (!q)
            continue;
        int64_t by_expiry; /* an expiry set by hand far behind: as far behind as can be */
        if (__builtin_sub_overflow(sqlite3_column_int64(st, 1), (int64_t)q->retention * 1000,
                                   &by_expiry))
            by_expiry = INT64_MIN;
        int64_t by_send = sqlite3_column_int64(st, 2);
        int64_t at = by_expiry < by_send ? by_expiry : by_send;
        if (at > last)
            last = at;
    }
    own_done(st);
    return last;
}

/* The expiry of the first message. */
static int64_t first_expiry(void)
{
    sqlite3_stmt *st =
        own_stmt(SQLITE_OPEN_READONLY, "SELECT expires_ms FROM messages ORDER BY id LIMIT 1");
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t at = sqlite3_column_int64(st, 0);
    own_done(st);
    return at;
}

/* Move the sends and the expiries of queue's messages ahead by the hours given. */
static void put_ahead(const char *queue, int sent_h, int expires_h)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "UPDATE messages SET sent_ms = sent_ms + %d, expires_ms = expires_ms + %d "
             "WHERE queue = ?1",
             sent_h * 3600000, expires_h * 3600000);
    assert_true(test_sqlite_exec(db_path, sql, queue) > 0);
}

/*
 * The open's check for a clock gone back reads by messages_by_expiry the messages that expire
 * over a second later than a send now to the queue of the shortest retention would, and the
 * newest send of the queues a second or more ahead alone, where it read every message. Over
 * queues in each state (retentions of an hour, 4 and 14 days; a queue no longer configured;
 * nothing ahead, a queue ahead by its send and its expiry, by its expiry alone as when its
 * retention was shortened, by its send alone as when the wall clock was stepped forward, two
 * ahead, by unequal steps), the open moves the messages as far as a read of every message says
 * (newest_send_by_every_row()): not at all when that is less than a second ahead.
 */
static void test_the_check_for_a_clock_gone_back_is_a_read_of_every_message(void **state)
{
    fx *f = *state;
    queue_config a = make_queue("a", 30, 0, NULL, 0);
    a.retention = 3600;
    queue_config work = make_queue("work", 30, 0, "work-dlq", 0);
    queue_config dlq = make_queue("work-dlq", 30, 0, NULL, 0);
    dlq.retention = 14 * 24 * 3600;
    queue_config zz = make_queue("zz", 30, 0, NULL, 0);
    publish_bodies(f->b, &a, 0, 2, NULL);
    publish_bodies(f->b, &work, 2, 3, NULL);
    publish_bodies(f->b, &dlq, 5, 2, NULL);
    publish_bodies(f->b, &zz, 7, 2, NULL);
    config c;
    config_of_queue(&c, &work, 30);
    c.queues[1] = a;
    c.queues[2] = dlq;
    c.n_queues = 3;

    static const struct {
        const char *queue;
        int sent_h, expires_h;
    } steps[] = {
        {NULL, 0, 0}, {"work", 2, 2},     {"work-dlq", 0, 3}, {"a", 3, 0},
        {"zz", 5, 5}, {"work-dlq", 2, 0}, {"a", 0, 4},        {"work", 3, 1},
    };
    /* the steps a read of every message moves at (a move takes every expiry back, and the sends
     * ahead of the wall clock alone): "work" ahead by two hours; "work-dlq" by its expiry's hour,
     * its send two; "a" by one and "work" by two; "work" by its expiry's hour, its send three */
    const unsigned moving = 1u << 1 | 1u << 5 | 1u << 6 | 1u << 7;
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        if (steps[i].queue)
            put_ahead(steps[i].queue, steps[i].sent_h, steps[i].expires_h);
        if (i == 6)
            put_ahead("work", 2, 3); /* two ahead: "a" by an hour, "work" by two */
        int64_t before = first_expiry(), from = clock_steady_ms();
        int64_t last = newest_send_by_every_row(&c);
        char *log = NULL;
        reopen_configured(f, &c, &log);
        int64_t to = clock_steady_ms(), moved = before - first_expiry();
        bool ahead = last != INT64_MIN && last - from >= 1000;
        if (ahead != ((moving >> i) & 1))
            print_error("step %zu: every row says %lld ms ahead\n", i, (long long)(last - from));
        assert_int_equal(ahead, (moving >> i) & 1);
        if (last == INT64_MIN || last - from < 1000) {
            if (moved != 0)
                print_error("step %zu: moved by %lld ms, where every row says %lld ms ahead\n", i,
                            (long long)moved, (long long)(last - from));
            assert_int_equal(moved, 0);
            expect_not_logged(log, "the wall clock went back");
        } else {
            if (moved < last - to || moved > last - from)
                print_error("step %zu: moved by %lld ms, where every row says %lld-%lld ms\n", i,
                            (long long)moved, (long long)(last - to), (long long)(last - from));
            assert_true(moved >= last - to && moved <= last - from);
            expect_logged(log, "the wall clock went back", NULL);
        }
        expect_not_logged(log, "cannot check");
        free(log);
    }
    config_free(&c);
}

/* The next of a test's pseudo-random numbers (xorshift64). */
static uint64_t next_random(uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

/* Set the send and the expiry of message id. */
static void set_message_times(int64_t id, int64_t sent_ms, int64_t expires_ms)
{
    sqlite3_stmt *st =
        own_stmt(SQLITE_OPEN_READWRITE, "UPDATE messages SET sent_ms = ?2, expires_ms = ?3 "
                                        "WHERE id = ?1");
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, sent_ms);
    sqlite3_bind_int64(st, 3, expires_ms);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    own_done(st);
}

/* A time for a message's send or expiry, around now (base) and retention_s (that of a queue the
 * message may or may not be in): behind, less than a second ahead, hours ahead, a retention's
 * length ahead give or take less than a second or an hour, a month ahead, or at either end of
 * what a value set by hand can be. */
static int64_t random_time(uint64_t *r, int64_t base, unsigned retention_s)
{
    int64_t ret = (int64_t)retention_s * 1000;
    switch (next_random(r) % 9) {
    case 0:
        return base - (int64_t)(next_random(r) % (15 * 24 * 3600000ull));
    case 1:
        return base + (int64_t)(next_random(r) % 800);
    case 2:
        return base + (int64_t)(next_random(r) % (4 * 3600000ull));
    case 3:
        return base + ret - (int64_t)(next_random(r) % 800);
    case 4:
        return base + ret + (int64_t)(next_random(r) % 800);
    case 5:
        return base + ret + 2000 + (int64_t)(next_random(r) % 3600000ull);
    case 6:
        return base + 30 * 24 * 3600000ll;
    case 7:
        return next_random(r) % 2 ? INT64_MAX : INT64_MIN;
    default:
        return base;
    }
}

/*
 * The check for a clock gone back holds to a read of every message over random states: in each
 * round, queues configured or not (one of them with no message), of retentions of 0, a second,
 * an hour, 4 and 14 days or more than any, none the ones the messages were sent with; each
 * message's send and expiry behind, less than a second ahead, ahead by hours, by its retention
 * give or take, a month ahead, or at an end of what a 64-bit value can be. The first message,
 * in the queue no longer configured, keeps ordinary times for the move to be read from it.
 */
static void test_the_check_for_a_clock_gone_back_holds_to_every_row_at_random(void **state)
{
    fx *f = *state;
    static const char *const names[] = {"a", "work", "work-dlq", "empty", "zz"};
    static const unsigned retentions[] = {0, 1, 3600, 4 * 24 * 3600, 14 * 24 * 3600, UINT_MAX};
    queue_config zz = make_queue("zz", 30, 0, NULL, 0);
    publish_bodies(f->b, &zz, 0, 1, NULL);
    for (int i = 0; i < 3; i++) {
        queue_config q = make_queue(names[i], 30, 0, NULL, 0);
        publish_bodies(f->b, &q, 1 + 2 * i, 2, NULL);
    }
    int64_t ids[7];
    sqlite3_stmt *st = own_stmt(SQLITE_OPEN_READONLY, "SELECT id FROM messages ORDER BY id");
    for (int i = 0; i < 7; i++) {
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        ids[i] = sqlite3_column_int64(st, 0);
    }
    own_done(st);

    uint64_t seed = (uint64_t)clock_unix_ns() | 1, r = seed;
    for (int round = 0; round < 40; round++) {
        config c;
        queue_config first = make_queue(names[0], 30, 0, NULL, 0);
        config_of_queue(&c, &first, 30);
        c.n_queues = 0;
        unsigned kept[5] = {0};
        for (int i = 0; i < 4; i++) {
            kept[i] = retentions[next_random(&r) % 6];
            if (next_random(&r) % 4 == 0)
                continue; /* not configured this round */
            c.queues[c.n_queues] = make_queue(names[i], 30, 0, NULL, 0);
            c.queues[c.n_queues++].retention = kept[i];
        }
        int64_t wall = wall_ms(), steady = clock_steady_ms();
        for (int i = 1; i < 7; i++) {
            unsigned ret = kept[(i - 1) / 2];
            set_message_times(ids[i], random_time(&r, wall, 0), random_time(&r, steady, ret));
        }
        int64_t probe = steady + (int64_t)(next_random(&r) % 3600000);
        set_message_times(ids[0], wall - 1000, probe);

        int64_t from = clock_steady_ms(), last = newest_send_by_every_row(&c);
        char *log = NULL;
        reopen_configured(f, &c, &log);
        int64_t to = clock_steady_ms();
        st = own_stmt(SQLITE_OPEN_READONLY, "SELECT expires_ms FROM messages WHERE id = ?1");
        sqlite3_bind_int64(st, 1, ids[0]);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        int64_t after = sqlite3_column_int64(st, 0);
        own_done(st);
        /* ahead by a second or more at both ends of the open: moved back by as far; by less at
         * both: not moved; in between (a loaded machine), either */
        bool must = last != INT64_MIN && last - to >= 1000;
        bool must_not = last == INT64_MIN || last - from < 1000;
        bool moved_right =
            last != INT64_MIN && after <= probe - (last - to) && after >= probe - (last - from);
        if ((must && !moved_right) || (must_not && after != probe) ||
            (!must && !must_not && after != probe && !moved_right))
            print_error("seed %llu, round %d: the probe's expiry went from %lld to %lld, where "
                        "every row says %lld ms ahead at the open's start, %lld at its end\n",
                        (unsigned long long)seed, round, (long long)probe, (long long)after,
                        (long long)(last == INT64_MIN ? INT64_MIN : last - from),
                        (long long)(last == INT64_MIN ? INT64_MIN : last - to));
        if (must)
            assert_true(moved_right);
        else if (must_not)
            assert_int_equal(after, probe);
        else
            assert_true(after == probe || moved_right);
        expect_not_logged(log, "cannot check");
        free(log);
        config_free(&c);
    }
}

/* Where the note of the queue clock in meta says it was, or INT64_MIN when there is none. */
static int64_t noted_queue_clock(void)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT value FROM meta WHERE name = 'queue_clock_at_stop'",
                                        -1, &st, NULL),
                     SQLITE_OK);
    int64_t at = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : INT64_MIN;
    sqlite3_finalize(st);
    sqlite3_close(db);
    return at;
}

/*
 * The last stop's note of its queue clock, an hour ahead (the wall clock went back while it ran),
 * is taken with the move it tells, in one transaction: an open whose move is refused warns and
 * keeps it, the stop after that keeps it over its own nearer note, and the next open moves the
 * messages back by it. Taken in a statement of its own before the move, it was lost with the
 * failed move, and the next open found nothing ahead.
 */
static void test_a_move_that_fails_keeps_the_note_of_the_queue_clock(void **state)
{
    fx *f = *state;
    queue_config q = make_queue("work", 30, 0, NULL, 0);
    config c;
    config_of_queue(&c, &q, 30);
    publish_bodies(f->b, &q, 0, 1, NULL);
    int64_t before[3], t[3];
    message_times(before);
    store_close(f->s);
    int64_t ahead = clock_steady_ms() + 3600 * 1000;
    char note[24];
    snprintf(note, sizeof note, "%lld", (long long)ahead);
    assert_int_equal(test_sqlite_exec(db_path,
                                      "INSERT OR REPLACE INTO meta (name, value) "
                                      "VALUES ('queue_clock_at_stop', CAST(?1 AS INTEGER))",
                                      note),
                     1);
    test_sqlite_exec(db_path,
                     "CREATE TRIGGER no_move BEFORE UPDATE OF expires_ms ON messages BEGIN "
                     "SELECT RAISE(ABORT, 'refused to move a message back'); END",
                     NULL);

    /* the move refused: the times stay, and so does the note */
    char *log = NULL;
    open_configured(f, &c, &log);
    expect_clock_unchecked(log, "refused to move a message back");
    message_times(t);
    for (int i = 0; i < 3; i++)
        assert_int_equal(t[i], before[i]);
    assert_int_equal(noted_queue_clock(), ahead);

    /* the trigger gone, the next open (after a stop) moves the deadlines back by the note */
    test_sqlite_exec(db_path, "DROP TRIGGER no_move", NULL);
    reopen_moving_back(f, &c);
    config_free(&c);
    message_times(t);
    assert_int_equal(t[0], before[0]); /* a send not ahead of the wall clock stays */
    int64_t back = before[2] - t[2];
    assert_true(back > 3590 * 1000 && back <= 3600 * 1000);
    assert_int_equal(before[1] - t[1], back);
    assert_int_equal(noted_queue_clock(), INT64_MIN); /* taken with the move */
}

/* While taskd runs, broker_note_queue_clock() writes the note of where the queue clock is (the
 * steady clock's now), through the writer; a note further ahead, kept by an open that could not
 * move the messages by it, stays. */
static void test_note_of_the_queue_clock_while_running(void **state)
{
    fx *f = *state;
    int64_t before = clock_steady_ms();
    assert_int_equal(broker_note_queue_clock(f->b), STORE_OK);
    int64_t at = noted_queue_clock();
    assert_true(at >= before && at <= clock_steady_ms());

    char ahead[24];
    snprintf(ahead, sizeof ahead, "%lld", (long long)(clock_steady_ms() + 3600 * 1000));
    assert_int_equal(test_sqlite_exec(db_path,
                                      "UPDATE meta SET value = CAST(?1 AS INTEGER) "
                                      "WHERE name = 'queue_clock_at_stop'",
                                      ahead),
                     1);
    assert_int_equal(broker_note_queue_clock(f->b), STORE_OK);
    assert_int_equal(noted_queue_clock(), strtoll(ahead, NULL, 10));
}

static void test_retention_expires_messages(void **state)
{
    fx *f = *state;
    char id[37];
    create_task(f->s, TASK_NULL_TIME, id);
    queue_config q = make_queue("short", 30, 0, NULL, 0);
    q.retention = 0; /* expires as soon as it is sent */
    queue_config keep = make_queue("long", 30, 0, NULL, 0);
    publish_bodies(f->b, &q, 0, 1, id);
    publish_bodies(f->b, &keep, 1, 1, NULL);
    sleep_ms(20);

    config c;
    assert_true(config_defaults(&c));
    c.event_replay = 0; /* records every consumer passed go at the next sweep */
    int64_t removed = -1;
    assert_int_equal(broker_sweep(f->b, &c, &removed, NULL), STORE_OK);
    config_free(&c);
    assert_int_equal(removed, 0);
    expect_stats(f->b, "short", 0, 0, 0);
    expect_stats(f->b, "long", 1, 0, 0);
    expect_status(f->s, id, TASK_FAILED, "message expired in queue short");
}

/* ---- concurrent receivers ---- */

enum { N_RECEIVERS = 4, N_CONCURRENT_MSGS = 48 };

typedef struct receiver {
    broker *b;
    const queue_config *q;
    int64_t ids[N_CONCURRENT_MSGS];
    size_t n;
    int errors;
} receiver;

static void *receiver_main(void *arg)
{
    receiver *r = arg;
    for (int round = 0; round < 100; round++) {
        queue_message *m = NULL;
        size_t n = 0;
        int64_t next = 0;
        if (broker_receive(r->b, r->q, 3, &m, &n, &next) != STORE_OK) {
            r->errors++;
            continue;
        }
        for (size_t i = 0; i < n; i++) {
            if (r->n < N_CONCURRENT_MSGS && m[i].receive_count == 1)
                r->ids[r->n++] = m[i].id;
            else
                r->errors++;
        }
        queue_messages_free(m, n);
        if (n == 0)
            break;
    }
    return NULL;
}

/* Receivers racing on one queue: every message goes to exactly one of them. */
static void test_concurrent_receivers(void **state)
{
    fx *f = *state;
    queue_config q = make_queue("work", 600, 0, NULL, 0);
    for (int i = 0; i < N_CONCURRENT_MSGS; i += 8)
        publish_bodies(f->b, &q, i, 8, NULL);
    receiver r[N_RECEIVERS];
    pthread_t th[N_RECEIVERS];
    memset(r, 0, sizeof r);
    for (int i = 0; i < N_RECEIVERS; i++) {
        r[i].b = f->b;
        r[i].q = &q;
        assert_int_equal(pthread_create(&th[i], NULL, receiver_main, &r[i]), 0);
    }
    int64_t all[N_RECEIVERS * N_CONCURRENT_MSGS];
    size_t total = 0;
    for (int i = 0; i < N_RECEIVERS; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(r[i].errors, 0);
        for (size_t j = 0; j < r[i].n; j++)
            all[total++] = r[i].ids[j];
    }
    assert_int_equal(total, N_CONCURRENT_MSGS);
    for (size_t i = 0; i < total; i++)
        for (size_t j = i + 1; j < total; j++)
            assert_true(all[i] != all[j]);
    expect_stats(f->b, "work", 0, N_CONCURRENT_MSGS, 0);
}

/* ---- standing receives ---- */

/* Sit s down; the number received for it, its messages in *out (freed by the caller). */
static size_t sit(broker *b, broker_standing *st, queue_message **out)
{
    size_t n = 99;
    broker_sit(b, st, out, &n);
    return n;
}

/* The writer receives (and claims) for a standing thread in the commit that sends its queue a
 * visible message, and only then: not for another queue's, not for a delayed one, not once the
 * thread sat down; two standing on one queue share what came, each up to its max. */
static void test_standing_receive(void **state)
{
    fx *f = *state;
    queue_config q = make_queue("work", 600, 0, NULL, 0);
    queue_config other = make_queue("other", 600, 0, NULL, 0);
    queue_config later = make_queue("later", 600, 0, NULL, 60);
    char id[37];
    create_task(f->s, TASK_NULL_TIME, id);

    broker_standing st = {.queue = &q, .max = 10};
    broker_stand(f->b, &st);
    publish_bodies(f->b, &other, 0, 1, NULL);
    queue_message *m = NULL;
    assert_int_equal(sit(f->b, &st, &m), 0); /* another queue's message */
    assert_null(m);

    broker_standing late = {.queue = &later, .max = 10};
    broker_stand(f->b, &late);
    publish_bodies(f->b, &later, 1, 1, NULL);
    assert_int_equal(sit(f->b, &late, &m), 0); /* delayed: not visible yet */

    broker_stand(f->b, &st);
    publish_bodies(f->b, &q, 2, 1, id);
    assert_int_equal(sit(f->b, &st, &m), 1);
    assert_string_equal(m[0].task_id, id);
    assert_string_equal(m[0].body, "{\"i\":2}");
    assert_int_equal(m[0].receive_count, 1);
    assert_int_equal(m[0].claim, STORE_OK); /* claimed in the sending commit */
    assert_int_equal(m[0].status_before, TASK_CREATED);
    expect_status(f->s, id, TASK_IN_PROGRESS, "Task started");
    expect_stats(f->b, "work", 0, 1, 0);
    assert_int_equal(broker_delete(f->b, m, 1), STORE_OK);
    queue_messages_free(m, 1);

    broker_stand(f->b, &st); /* sat down before the send: nothing is received for it */
    assert_int_equal(sit(f->b, &st, &m), 0);
    publish_bodies(f->b, &q, 3, 1, NULL);
    expect_stats(f->b, "work", 1, 0, 0);
    assert_int_equal(receive(f->b, &q, 10, &m, NULL), 1);
    queue_messages_free(m, 1);

    broker_standing a = {.queue = &q, .max = 2}, b = {.queue = &q, .max = 2};
    broker_stand(f->b, &a);
    broker_stand(f->b, &b);
    publish_bodies(f->b, &q, 4, 5, NULL);
    queue_message *ma = NULL, *mb = NULL;
    assert_int_equal(sit(f->b, &a, &ma), 2);
    assert_int_equal(sit(f->b, &b, &mb), 2);
    assert_true(ma[0].id != mb[0].id && ma[0].id != mb[1].id);
    queue_messages_free(ma, 2);
    queue_messages_free(mb, 2);
    expect_stats(f->b, "work", 1, 5, 0); /* one left visible; the one received above in flight */
}

/* ---- an injected write failure: a VFS over the default one whose WAL writes fail on demand ----
 */

static sqlite3_vfs *real_vfs;
static sqlite3_vfs faulty_vfs;
static atomic_bool wal_full;      /* while set, every write to a WAL file answers SQLITE_FULL */
static atomic_bool wal_full_once; /* while set, the next write to a WAL file does, and clears it */
static atomic_bool db_full;       /* while set, every write to a database file does */

typedef struct faulty_file {
    sqlite3_file base;
    sqlite3_file *real; /* the default VFS's file, in the bytes that follow */
    bool wal, db;
} faulty_file;

static sqlite3_file *real_of(sqlite3_file *f)
{
    return ((faulty_file *)f)->real;
}

static int f_close(sqlite3_file *f)
{
    return real_of(f)->pMethods->xClose(real_of(f));
}
static int f_read(sqlite3_file *f, void *buf, int n, sqlite3_int64 off)
{
    if (reads_fail)
        return SQLITE_IOERR_READ;
    return real_of(f)->pMethods->xRead(real_of(f), buf, n, off);
}
static int f_write(sqlite3_file *f, const void *buf, int n, sqlite3_int64 off)
{
    faulty_file *ff = (faulty_file *)f;
    if ((ff->wal && (atomic_load(&wal_full) || atomic_exchange(&wal_full_once, false))) ||
        (ff->db && atomic_load(&db_full)))
        return SQLITE_FULL;
    return real_of(f)->pMethods->xWrite(real_of(f), buf, n, off);
}
static int f_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    return real_of(f)->pMethods->xTruncate(real_of(f), size);
}
static atomic_int wal_syncs; /* syncs of a WAL file, counted */
static int f_sync(sqlite3_file *f, int flags)
{
    if (((faulty_file *)f)->wal)
        atomic_fetch_add(&wal_syncs, 1);
    return real_of(f)->pMethods->xSync(real_of(f), flags);
}
static int f_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    return real_of(f)->pMethods->xFileSize(real_of(f), size);
}
static int f_lock(sqlite3_file *f, int level)
{
    return real_of(f)->pMethods->xLock(real_of(f), level);
}
static int f_unlock(sqlite3_file *f, int level)
{
    return real_of(f)->pMethods->xUnlock(real_of(f), level);
}
static int f_check_reserved(sqlite3_file *f, int *out)
{
    return real_of(f)->pMethods->xCheckReservedLock(real_of(f), out);
}
static int f_file_control(sqlite3_file *f, int op, void *arg)
{
    return real_of(f)->pMethods->xFileControl(real_of(f), op, arg);
}
static int f_sector_size(sqlite3_file *f)
{
    return real_of(f)->pMethods->xSectorSize(real_of(f));
}
static int f_device(sqlite3_file *f)
{
    return real_of(f)->pMethods->xDeviceCharacteristics(real_of(f));
}
static int f_shm_map(sqlite3_file *f, int page, int size, int extend, void volatile **out)
{
    return real_of(f)->pMethods->xShmMap(real_of(f), page, size, extend, out);
}
static int f_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
    return real_of(f)->pMethods->xShmLock(real_of(f), offset, n, flags);
}
static void f_shm_barrier(sqlite3_file *f)
{
    real_of(f)->pMethods->xShmBarrier(real_of(f));
}
static int f_shm_unmap(sqlite3_file *f, int delete_flag)
{
    return real_of(f)->pMethods->xShmUnmap(real_of(f), delete_flag);
}
static int f_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **out)
{
    return real_of(f)->pMethods->xFetch(real_of(f), off, n, out);
}
static int f_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
    return real_of(f)->pMethods->xUnfetch(real_of(f), off, p);
}

static const sqlite3_io_methods faulty_io = {
    .iVersion = 3,
    .xClose = f_close,
    .xRead = f_read,
    .xWrite = f_write,
    .xTruncate = f_truncate,
    .xSync = f_sync,
    .xFileSize = f_file_size,
    .xLock = f_lock,
    .xUnlock = f_unlock,
    .xCheckReservedLock = f_check_reserved,
    .xFileControl = f_file_control,
    .xSectorSize = f_sector_size,
    .xDeviceCharacteristics = f_device,
    .xShmMap = f_shm_map,
    .xShmLock = f_shm_lock,
    .xShmBarrier = f_shm_barrier,
    .xShmUnmap = f_shm_unmap,
    .xFetch = f_fetch,
    .xUnfetch = f_unfetch,
};

static int faulty_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags,
                       int *out_flags)
{
    (void)vfs;
    faulty_file *ff = (faulty_file *)file;
    ff->real = (sqlite3_file *)(ff + 1);
    ff->wal = (flags & SQLITE_OPEN_WAL) != 0;
    ff->db = (flags & SQLITE_OPEN_MAIN_DB) != 0;
    int rc = real_vfs->xOpen(real_vfs, name, ff->real, flags, out_flags);
    ff->base.pMethods = ff->real->pMethods ? &faulty_io : NULL;
    return rc;
}

/* Make the faulty VFS the default, for the stores opened until faulty_vfs_off(). */
static void faulty_vfs_on(void)
{
    real_vfs = sqlite3_vfs_find(NULL);
    assert_non_null(real_vfs);
    faulty_vfs = *real_vfs;
    faulty_vfs.zName = "faulty";
    faulty_vfs.szOsFile = (int)sizeof(faulty_file) + real_vfs->szOsFile;
    faulty_vfs.xOpen = faulty_open;
    faulty_vfs.pNext = NULL;
    assert_int_equal(sqlite3_vfs_register(&faulty_vfs, 1), SQLITE_OK);
}

static void faulty_vfs_off(void)
{
    atomic_store(&wal_full, false);
    atomic_store(&wal_full_once, false);
    atomic_store(&db_full, false);
    atomic_store(&unreadable_sql, NULL); /* a read meant to fail that was never made */
    sqlite3_vfs_register(real_vfs, 1);
    sqlite3_vfs_unregister(&faulty_vfs);
}

/* The fixture on the faulty VFS, for tests that make writes fail. */
static int setup_faulty(void **state)
{
    faulty_vfs_on();
    return setup(state);
}

static int teardown_faulty(void **state)
{
    int rc = teardown(state);
    faulty_vfs_off();
    return rc;
}

/*
 * --sync full: a commit that holds a durable write waits for the WAL to reach the disk; one of
 * only relaxed writes (a publish) does not; the next durable one does again. --sync normal: no
 * commit syncs (but the one that starts a WAL, for its header). (PRAGMA synchronous takes effect
 * when compiled: a prepared one set the level once, when the writer was opened, and every commit
 * then went without a sync.)
 */
static void test_sync_full_waits_for_the_disk(void **state)
{
    (void)state;
    faulty_vfs_on();
    char dir[] = "/tmp/test_broker_sync.XXXXXX", path[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/tasks.db", dir);
    store_sqlite_options o = {.path = path, .sync = STORE_SYNC_FULL, .busy_timeout_ms = 5000};
    char err[256] = "", id[37];
    store *s = store_sqlite_open(&o, err, sizeof err);
    assert_non_null(s);
    queue_config q = make_queue("work", 30, 0, NULL, 0);
    store_new_task t = {.task_type = "TASK1", .data = "{}"};
    int before = atomic_load(&wal_syncs);
    assert_int_equal(store_create_task(s, &t, (int64_t)time(NULL), id), STORE_OK);
    int after_create = atomic_load(&wal_syncs);
    assert_true(after_create > before);
    publish_bodies(broker_of(s), &q, 1, 2, id); /* relaxed */
    int after_publish = atomic_load(&wal_syncs);
    assert_int_equal(after_publish, after_create);
    assert_int_equal(store_create_task(s, &t, (int64_t)time(NULL), id), STORE_OK);
    assert_true(atomic_load(&wal_syncs) > after_publish);
    store_close(s);

    o.sync = STORE_SYNC_NORMAL;
    s = store_sqlite_open(&o, err, sizeof err);
    assert_non_null(s);
    /* the first commit starts a new WAL, whose header is synced at any level */
    assert_int_equal(store_create_task(s, &t, (int64_t)time(NULL), id), STORE_OK);
    before = atomic_load(&wal_syncs);
    for (int i = 0; i < 3; i++)
        assert_int_equal(store_create_task(s, &t, (int64_t)time(NULL), id), STORE_OK);
    assert_int_equal(atomic_load(&wal_syncs), before);
    store_close(s);
    faulty_vfs_off();
    assert_int_equal(remove_dir(dir), 0);
}

/*
 * --sync full: a batch that holds a durable write, whose commit cannot be made to wait for the
 * disk (the PRAGMA that says so fails), fails, with nothing of it written: its writes were
 * answered as durable, and committed without a sync. The next one, which can, commits as before.
 */
static void test_a_durable_batch_that_cannot_wait_for_the_disk_fails(void **state)
{
    (void)state;
    faulty_vfs_on();
    char dir[] = "/tmp/test_broker_sync.XXXXXX", path[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/tasks.db", dir);
    db_path = path;
    store_sqlite_options o = {.path = path, .sync = STORE_SYNC_FULL, .busy_timeout_ms = 5000};
    char err[256] = "", id[37] = "";
    store *s = store_sqlite_open(&o, err, sizeof err);
    assert_non_null(s);
    queue_config q = make_queue("work", 30, 0, NULL, 0);
    publish_bodies(broker_of(s), &q, 1, 2, NULL); /* relaxed: its commit did not wait */
    store_new_task t = {.task_type = "TASK1", .data = "{}"};
    int before = atomic_load(&wal_syncs);
    atomic_store(&sync_full_fails, true);
    test_stderr cap;
    test_stderr_begin(&cap);
    store_rc rc = store_create_task(s, &t, (int64_t)time(NULL), id);
    char *log = test_stderr_end(&cap);
    atomic_store(&sync_full_fails, false);
    assert_int_equal(rc, STORE_ERROR);
    assert_int_equal(atomic_load(&wal_syncs), before);
    expect_logged(log, "cannot make the commit wait for the disk", NULL);
    free(log);
    count_row("SELECT count(*) FROM tasks WHERE ?1 IS NOT NULL", "", 0);
    assert_int_equal(store_create_task(s, &t, (int64_t)time(NULL), id), STORE_OK);
    assert_true(atomic_load(&wal_syncs) > before);
    store_close(s);
    faulty_vfs_off();
    db_path = NULL;
    assert_int_equal(remove_dir(dir), 0);
}

/* A standing receive made in a batch whose commit fails is undone with it: its thread gets
 * nothing, its message and claim were never written, and the next commit receives as before. */
static void test_standing_receive_in_a_failed_commit(void **state)
{
    fx *f = *state;
    queue_config q = make_queue("work", 600, 0, NULL, 0);
    char id[37];
    create_task(f->s, TASK_NULL_TIME, id);

    broker_standing st = {.queue = &q, .max = 10};
    broker_stand(f->b, &st);
    atomic_store(&wal_full, true);
    broker_message m = {.queue = &q, .task_id = id, .body = "{\"i\":1}"};
    assert_int_not_equal(broker_publish(f->b, "test", 1, &m, 1), STORE_OK);
    atomic_store(&wal_full, false);
    queue_message *got = NULL;
    assert_int_equal(sit(f->b, &st, &got), 0);
    assert_null(got);
    expect_stats(f->b, "work", 0, 0, 0);
    expect_status(f->s, id, TASK_CREATED, NULL);

    broker_stand(f->b, &st);
    publish_bodies(f->b, &q, 2, 1, id);
    assert_int_equal(sit(f->b, &st, &got), 1);
    assert_string_equal(got[0].body, "{\"i\":2}");
    assert_int_equal(got[0].claim, STORE_OK);
    expect_status(f->s, id, TASK_IN_PROGRESS, "Task started");
    assert_int_equal(broker_delete(f->b, got, 1), STORE_OK);
    queue_messages_free(got, 1);
    expect_stats(f->b, "work", 0, 0, 0);
}

/* Open the test's database (closed) on the faulty VFS, with the disk failing the reads of the
 * last task id: the open fails, and its error goes to err, what it logged (at WARNING) to *log. */
static void open_failing(fx *f, char *err, size_t errlen, char **log)
{
    store_sqlite_options o = {.path = f->path, .sync = STORE_SYNC_NORMAL, .busy_timeout_ms = 5000};
    test_stderr cap;
    log_level was = log_threshold();
    log_setup(LOG_WARN, NULL);
    atomic_store(&unreadable_sql, "SELECT max(id) FROM tasks");
    test_stderr_begin(&cap);
    store *s = store_sqlite_open(&o, err, errlen);
    *log = test_stderr_end(&cap);
    log_setup(was, NULL);
    assert_null(s);
    assert_null(atomic_load(&unreadable_sql)); /* the read was made, and failed */
}

/*
 * A start refused on a full disk, where the last stop could not fold the WAL back into the
 * database: the open says its own error, and logs no checkpoint, which would read as if the store
 * had run, ahead of that error (it logged "the last checkpoint failed", database or disk is full).
 * A connection it cannot close (a statement left on it) is said after its error, not logged
 * before it. Nothing is lost: the next start reads the WAL.
 */
static void test_a_start_refused_on_a_full_disk(void **state)
{
    fx *f = *state;
    char id[37], err[512] = "", *log = NULL, refused[256], left[384];
    snprintf(refused, sizeof refused, "cannot read the task types and ids of %s: disk I/O error",
             f->path);
    snprintf(left, sizeof left,
             "%s; nor can it be closed: unable to close due to unfinalized statements or "
             "unfinished backups",
             refused);
    create_task(f->s, TASK_NULL_TIME, id);
    atomic_store(&db_full, true);
    store_close(f->s); /* its checkpoint fails: the WAL is kept */
    f->s = NULL;
    char wal[160];
    struct stat st;
    snprintf(wal, sizeof wal, "%s-wal", f->path);
    assert_int_equal(stat(wal, &st), 0);
    assert_true(st.st_size > 0);

    open_failing(f, err, sizeof err, &log);
    assert_string_equal(err, refused);
    expect_not_logged(log, "checkpoint");
    free(log);

    atomic_store(&hold_sql, "SELECT max(id) FROM tasks");
    open_failing(f, err, sizeof err, &log);
    release_held();
    expect_not_logged(log, "cannot close");
    free(log);
    assert_string_equal(err, left);

    atomic_store(&db_full, false);
    assert_non_null(f->s = open_db(f->path, NULL));
    f->b = broker_of(f->s);
    expect_status(f->s, id, TASK_CREATED, NULL);
}

/* A stop whose connection cannot be closed (a statement left on it) says so, and frees the rest:
 * the next open, in the same process, reads what it wrote. */
static void test_a_stop_that_cannot_close_the_database(void **state)
{
    fx *f = *state;
    char id[37];
    atomic_store(&hold_sql, "INSERT INTO tasks");
    create_task(f->s, TASK_NULL_TIME, id);
    assert_null(atomic_load(&hold_sql));
    test_stderr cap;
    log_level was = log_threshold();
    log_setup(LOG_WARN, NULL);
    test_stderr_begin(&cap);
    store_close(f->s);
    char *log = test_stderr_end(&cap);
    log_setup(was, NULL);
    f->s = NULL;
    release_held();
    expect_logged(
        log, "cannot close the database: the write-ahead log is kept and read at the next start",
        "unable to close due to unfinalized statements");
    expect_not_logged(log, "checkpoint");
    free(log);

    assert_non_null(f->s = open_db(f->path, NULL));
    f->b = broker_of(f->s);
    expect_status(f->s, id, TASK_CREATED, NULL);
}

/* A writer held after a commit (the listener runs on its thread) until the test lets it go, so
 * that what the test submits meanwhile makes one batch; writes counts the batch's writes. */
typedef struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool armed, held, open;
    size_t writes;
} gate;

static void hold_after_commit(void *ctx, size_t writes, double seconds, bool durable)
{
    (void)seconds;
    (void)durable;
    gate *g = ctx;
    pthread_mutex_lock(&g->mu);
    g->writes = writes;
    if (g->armed) {
        g->armed = false;
        g->held = true;
        pthread_cond_broadcast(&g->cv);
        while (!g->open)
            pthread_cond_wait(&g->cv, &g->mu);
    }
    pthread_mutex_unlock(&g->mu);
}

/*
 * Submit n writes so that they make one batch of their own, in this order: a first write is held
 * after its commit (g, the store's commit listener since reopen()) while they queue, and
 * while_held (if given) runs then. Waits for them all; the held write must have committed.
 */
static void submit_as_one_batch(fx *f, gate *g, store_write *w, size_t n, void (*while_held)(void))
{
    pthread_mutex_lock(&g->mu);
    g->armed = true;
    pthread_mutex_unlock(&g->mu);
    store_batch batch;
    store_batch_init(&batch);
    store_write hold = {.kind = STORE_WRITE_CREATE,
                        .now = time(NULL),
                        .create = {.task_type = "TASK1", .data = "{}"}};
    store_batch_submit(&batch, f->s, &hold);
    pthread_mutex_lock(&g->mu);
    while (!g->held)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
    if (while_held)
        while_held();
    for (size_t i = 0; i < n; i++)
        store_batch_submit(&batch, f->s, &w[i]);
    pthread_mutex_lock(&g->mu);
    g->open = true;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
    store_batch_wait(&batch);
    assert_int_equal(hold.rc, STORE_OK);
}

/* {"x":"aaa...a"} with n a's; free it. */
static char *json_of_size(size_t n)
{
    char *data = malloc(n + 16);
    assert_non_null(data);
    memcpy(data, "{\"x\":\"", 6);
    memset(data + 6, 'a', n);
    memcpy(data + 6 + n, "\"}", 3);
    return data;
}

static void count_row(const char *sql, const char *id, int64_t want)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t got = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    if (got != want)
        print_error("%s [%s]: %lld, want %lld\n", sql, id, (long long)got, (long long)want);
    assert_int_equal(got, want);
}

/*
 * Task writes in one batch share a savepoint; one that fails after it changed something (here
 * its history row is refused, after its task row and change record were written) is undone
 * alone: the writes before and after it in the batch commit, and nothing of it remains.
 */
static void test_a_failed_write_is_undone_alone_in_its_batch(void **state)
{
    fx *f = *state;
    gate g = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    store_listener l = {.committed = hold_after_commit, .ctx = &g};
    reopen(f, &l);
    char a[37], b[37], c[37];
    create_task(f->s, 0, a);
    create_task(f->s, 0, b);
    test_sqlite_exec(db_path,
                     "CREATE TRIGGER refuse BEFORE INSERT ON task_history "
                     "WHEN NEW.status_msg = 'refused' BEGIN SELECT RAISE(ABORT, "
                     "'refused'); END",
                     NULL);

    store_write w[3] = {
        {.kind = STORE_WRITE_UPDATE,
         .now = time(NULL),
         .update = {.id = a, .status = TASK_IN_PROGRESS, .status_msg = "started"}},
        {.kind = STORE_WRITE_UPDATE,
         .now = time(NULL),
         .update = {.id = b, .status = TASK_IN_PROGRESS, .status_msg = "refused"}},
        {.kind = STORE_WRITE_CREATE,
         .now = time(NULL),
         .create = {.task_type = "TASK2", .data = "{}"}},
    };
    submit_as_one_batch(f, &g, w, 3, NULL);
    assert_int_equal(g.writes, 3); /* one batch */
    assert_int_equal(w[0].rc, STORE_OK);
    assert_int_not_equal(w[1].rc, STORE_OK);
    assert_int_equal(w[2].rc, STORE_OK);
    snprintf(c, sizeof c, "%s", w[2].id);
    task_clear(&w[0].current);
    task_clear(&w[1].current);

    expect_status(f->s, a, TASK_IN_PROGRESS, "started");
    expect_status(f->s, b, TASK_CREATED, NULL);
    expect_status(f->s, c, TASK_CREATED, NULL);
    count_row("SELECT count(*) FROM changes WHERE task_id = ?1", a, 2);
    count_row("SELECT count(*) FROM changes WHERE task_id = ?1", b, 1); /* its INSERT only */
    count_row("SELECT count(*) FROM task_history WHERE task_id = ?1", a, 1);
    count_row("SELECT count(*) FROM task_history WHERE task_id = ?1", b, 0);
    count_row("SELECT hist_n FROM tasks WHERE id = ?1", b, 1);
    count_row("SELECT count(*) FROM changes WHERE task_id = ?1", c, 1);
}

/* Commits fail from the first one after `armed` is set (the listener runs after each commit). */
static void fail_after_commit(void *ctx, size_t writes, double seconds, bool durable)
{
    (void)writes;
    (void)seconds;
    (void)durable;
    if (atomic_exchange((atomic_bool *)ctx, false))
        atomic_store(&wal_full, true);
}

/*
 * A write whose failure makes SQLite roll the whole transaction back (the disk full while a big
 * write spills its pages to the WAL, once) fails the rest of its batch with it: the write before
 * it in the batch went with the transaction and is not applied again on its own, and the one
 * after it is not committed statement by statement. The next batch commits.
 */
static void fail_next_wal_write(void)
{
    atomic_store(&wal_full_once, true);
}

static void test_a_transaction_sqlite_rolled_back_fails_its_batch(void **state)
{
    fx *f = *state;
    gate g = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    store_listener l = {.committed = hold_after_commit, .ctx = &g};
    reopen(f, &l);
    char a[37], id[37];
    create_task(f->s, 0, a);
    /* more than the writer's page cache (2 MiB): its pages spill to the WAL before the commit */
    char *big = json_of_size(4 << 20);
    int64_t last = broker_last_seq(f->b) + 1; /* with the held write's record */
    store_write w[3] = {
        {.kind = STORE_WRITE_UPDATE,
         .now = time(NULL),
         .update = {.id = a, .status = TASK_IN_PROGRESS, .status_msg = "started"}},
        {.kind = STORE_WRITE_CREATE,
         .now = time(NULL),
         .create = {.task_type = "TASK1", .data = big}},
        {.kind = STORE_WRITE_CREATE,
         .now = time(NULL),
         .create = {.task_type = "TASK2", .data = "{}"}},
    };
    submit_as_one_batch(f, &g, w, 3, fail_next_wal_write);
    free(big);
    assert_false(atomic_load(&wal_full_once)); /* the spill met it */
    for (int i = 0; i < 3; i++)
        if (w[i].rc == STORE_OK)
            fail_msg("write %d of the rolled-back batch answered OK", i);
    task_clear(&w[0].current);
    expect_status(f->s, a, TASK_CREATED, NULL);
    assert_int_equal(broker_last_seq(f->b), last);
    count_row("SELECT count(*) FROM tasks WHERE id <> ?1", a, 1); /* the hold's */
    /* and the next batch commits */
    create_task(f->s, 0, id);
    assert_int_equal(broker_last_seq(f->b), last + 1);
}

/* A dead letter whose task id does not fit is said once its step commits: a step undone (its
 * commit failing, the disk full) moved it nowhere and says nothing of it, and the redrive made
 * again says it once. It was said as the step read it, before the commit: by the step undone as
 * redriven, and again by the redrive that moved it. */
static void test_a_dead_letter_whose_task_id_does_not_fit_is_said_once_moved(void **state)
{
    fx *f = *state;
    char a[37];
    dead_letter_of_an_unfit_id(f, a);
    log_level was = log_threshold();
    log_setup(LOG_WARN, NULL);
    const char *said = "a dead letter's task id is longer than any task id";
    for (int round = 0; round < 2; round++) {
        test_stderr cap;
        test_stderr_begin(&cap);
        atomic_store(&wal_full, round == 0);
        int64_t moved = -1;
        store_rc rc = redrive(f->b, "dlq", "work", &moved);
        atomic_store(&wal_full, false);
        char *log = test_stderr_end(&cap);
        if (round == 0) {
            assert_int_not_equal(rc, STORE_OK);
            expect_stats(f->b, "dlq", 1, 0, 0);
            expect_not_logged(log, said);
        } else {
            assert_int_equal(rc, STORE_OK);
            assert_int_equal(moved, 1);
            assert_int_equal(expect_logged(log, said, "\"queue\":\"dlq\""), 1);
        }
        free(log);
    }
    log_setup(was, NULL);
    expect_stats(f->b, "work", 1, 0, 0);
}

/*
 * A redrive whose second step cannot commit ends with that step's error and no count; the step
 * before it stays moved, the counters follow the rows, and a redrive again moves the rest.
 */
static void test_redrive_failing_part_way(void **state)
{
    fx *f = *state;
    atomic_bool armed = false;
    store_listener l = {.committed = fail_after_commit, .ctx = &armed};
    reopen(f, &l);
    queue_config dlq = make_queue("dlq", 30, 0, NULL, 0);
    for (int i = 0; i < 2500; i += 8)
        publish_bodies(f->b, &dlq, i, 2500 - i < 8 ? 2500 - i : 8, NULL);

    atomic_store(&armed, true);
    int64_t moved = -1;
    store_rc rc = redrive(f->b, "dlq", "work", &moved);
    atomic_store(&wal_full, false);
    assert_int_not_equal(rc, STORE_OK);
    assert_int_equal(moved, 0);
    expect_stats(f->b, "work", 1000, 0, 0);
    expect_stats(f->b, "dlq", 1500, 0, 0);

    assert_int_equal(redrive(f->b, "dlq", "work", &moved), STORE_OK);
    assert_int_equal(moved, 1500);
    expect_stats(f->b, "work", 2500, 0, 0);
    expect_stats(f->b, "dlq", 0, 0, 0);
}

#define N_STANDING_MSGS 300

typedef struct stander {
    broker *b;
    const queue_config *q;
    atomic_bool done;
    atomic_bool stood; /* stood once: the sends may begin */
    size_t got;
    int64_t ids[N_STANDING_MSGS];
    int errors;
} stander;

/* Stand and sit in a loop, as a runner does, while another thread sends. */
static void *stander_main(void *arg)
{
    stander *t = arg;
    while (!atomic_load(&t->done)) {
        broker_standing st = {.queue = t->q, .max = 3};
        broker_stand(t->b, &st);
        atomic_store(&t->stood, true);
        sched_yield();
        queue_message *m = NULL;
        size_t n = sit(t->b, &st, &m);
        for (size_t i = 0; i < n; i++) {
            if (t->got < N_STANDING_MSGS && m[i].receive_count == 1)
                t->ids[t->got++] = m[i].id;
            else
                t->errors++;
        }
        queue_messages_free(m, n);
    }
    return NULL;
}

/* Sitting down races the writer's receives: each message is received once, by the standing
 * thread or by a plain receive after it, never lost in between and never twice. */
static void test_standing_receive_race(void **state)
{
    fx *f = *state;
    queue_config q = make_queue("work", 600, 0, NULL, 0);
    stander t = {.b = f->b, .q = &q};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, stander_main, &t), 0);
    /* the sends begin once the thread stands: on a loaded machine it could be scheduled only
     * after the last of them, and receive none */
    int64_t until = mono_ms() + 10000;
    while (!atomic_load(&t.stood) && mono_ms() < until)
        sleep_ms(1);
    assert_true(atomic_load(&t.stood));
    for (int i = 0; i < N_STANDING_MSGS; i++)
        publish_bodies(f->b, &q, i, 1, NULL);
    atomic_store(&t.done, true);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(t.errors, 0);
    queue_message *rest = NULL;
    size_t n_rest = receive(f->b, &q, N_STANDING_MSGS, &rest, NULL);
    assert_int_equal(t.got + n_rest, N_STANDING_MSGS);
    assert_true(t.got > 0); /* the standing thread did receive */
    for (size_t i = 0; i < n_rest; i++)
        assert_int_equal(rest[i].receive_count, 1);
    for (size_t i = 0; i < t.got; i++)
        for (size_t j = 0; j < n_rest; j++)
            assert_true(t.ids[i] != rest[j].id);
    queue_messages_free(rest, n_rest);
    expect_stats(f->b, "work", 0, N_STANDING_MSGS, 0);
}

/* A runner's idle wait: stand, sleep in broker_stand_wait(), sit; when it woke and what it got. */
typedef struct sleeper {
    broker *b;
    const queue_config *q;
    int timeout_ms;
    atomic_bool standing; /* stood and about to sleep */
    atomic_llong woke_ms; /* mono_ms() when broker_stand_wait() returned; 0 before */
    size_t n;
} sleeper;

static void *sleeper_main(void *arg)
{
    sleeper *t = arg;
    uint64_t gen = 0;
    broker_wait(t->b, false, &gen, 0); /* noted before standing, as a runner does */
    broker_standing st = {.queue = t->q, .max = 1};
    broker_stand(t->b, &st);
    atomic_store(&t->standing, true);
    broker_stand_wait(t->b, &st, &gen, t->timeout_ms);
    atomic_store(&t->woke_ms, mono_ms());
    queue_message *m = NULL;
    t->n = sit(t->b, &st, &m);
    queue_messages_free(m, t->n);
    return NULL;
}

static void start_sleepers(sleeper *t, pthread_t *th, int n)
{
    for (int i = 0; i < n; i++)
        assert_int_equal(pthread_create(&th[i], NULL, sleeper_main, &t[i]), 0);
    for (int i = 0; i < n; i++)
        while (!atomic_load(&t[i].standing))
            sleep_ms(1);
    sleep_ms(100); /* asleep in broker_stand_wait() by now */
}

static int awake(sleeper *t, int n)
{
    int k = 0;
    for (int i = 0; i < n; i++)
        k += atomic_load(&t[i].woke_ms) != 0;
    return k;
}

/* A commit wakes the standing thread it received for, not every idle one: the other thread
 * standing on the queue and one on another queue sleep on, until broker_wake_all(). */
static void test_standing_wakes_only_whom_it_concerns(void **state)
{
    fx *f = *state;
    queue_config q = make_queue("work", 600, 0, NULL, 0);
    queue_config other = make_queue("other", 600, 0, NULL, 0);
    sleeper t[3] = {{.b = f->b, .q = &q, .timeout_ms = 20000},
                    {.b = f->b, .q = &q, .timeout_ms = 20000},
                    {.b = f->b, .q = &other, .timeout_ms = 20000}};
    pthread_t th[3];
    start_sleepers(t, th, 3);
    assert_int_equal(awake(t, 3), 0);

    int64_t sent = mono_ms();
    publish_bodies(f->b, &q, 0, 1, NULL);
    while (awake(t, 3) == 0 && mono_ms() - sent < 5000)
        sleep_ms(1);
    sleep_ms(300); /* time for a needless wake-up to show */
    assert_int_equal(awake(t, 3), 1);
    int got = atomic_load(&t[0].woke_ms) ? 0 : 1;
    assert_true(atomic_load(&t[got].woke_ms) - sent < 5000);

    broker_wake_all(f->b); /* a stop wakes the others at once */
    int64_t stopped = mono_ms();
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    assert_true(mono_ms() - stopped < 5000);
    for (int i = 0; i < 3; i++)
        assert_int_equal(t[i].n, i == got ? 1 : 0);
    expect_stats(f->b, "work", 0, 1, 0);
}

/* A commit that sends a delayed message wakes the queue's standing threads whose wait would
 * end after it becomes visible (to sleep until then instead), and only those. */
static void test_standing_wakes_for_a_message_due_sooner(void **state)
{
    fx *f = *state;
    queue_config later = make_queue("later", 600, 0, NULL, 2);
    sleeper t[2] = {{.b = f->b, .q = &later, .timeout_ms = 20000},
                    {.b = f->b, .q = &later, .timeout_ms = 1000}};
    pthread_t th[2];
    start_sleepers(t, th, 2);

    int64_t sent = mono_ms();
    publish_bodies(f->b, &later, 0, 1, NULL); /* visible in 2 s */
    assert_int_equal(pthread_join(th[0], NULL), 0);
    assert_true(atomic_load(&t[0].woke_ms) - sent < 1000); /* not at its own 20 s */
    assert_int_equal(t[0].n, 0);
    assert_int_equal(pthread_join(th[1], NULL), 0); /* at its own second, not woken */
    assert_true(atomic_load(&t[1].woke_ms) - sent >= 500);
    assert_int_equal(t[1].n, 0);
}

/* ---- change stream ---- */

/* Check that record json is an INSERT of task id with status CREATED and sequence number seq. */
static void check_insert_record(const change_record *r, const char *id)
{
    json_error_t je;
    json_t *rec = json_loads(r->json, 0, &je);
    if (!rec)
        print_error("record %lld is not JSON: %s: %s\n", (long long)r->seq, je.text, r->json);
    assert_non_null(rec);
    assert_string_equal(json_string_value(json_object_get(rec, "eventName")), "INSERT");
    json_t *ddb = json_object_get(rec, "dynamodb");
    assert_true(json_is_object(ddb));
    json_t *key = json_object_get(json_object_get(json_object_get(ddb, "Keys"), "id"), "S");
    assert_string_equal(json_string_value(key), id);
    json_t *img = json_object_get(ddb, "NewImage");
    assert_string_equal(json_string_value(json_object_get(json_object_get(img, "id"), "S")), id);
    assert_string_equal(json_string_value(json_object_get(json_object_get(img, "status"), "S")),
                        "CREATED");
    assert_string_equal(json_string_value(json_object_get(json_object_get(img, "task_type"), "S")),
                        "TASK1");
    assert_null(json_object_get(ddb, "OldImage"));
    json_t *seq = json_object_get(ddb, "SequenceNumber");
    assert_true(json_is_string(seq));
    char want[32];
    snprintf(want, sizeof want, "%lld", (long long)r->seq);
    assert_string_equal(json_string_value(seq), want);
    json_decref(rec);
}

static void test_checkpoint_recovery(void **state)
{
    fx *f = *state;
    char ids[5][37];
    for (int i = 0; i < 5; i++)
        create_task(f->s, TASK_NULL_TIME, ids[i]);

    int64_t cp = -1;
    change_record *r = NULL;
    size_t n = 0;
    assert_int_equal(broker_read_changes(f->b, "c1", 2, CHANGE_READ_WHOLE, &cp, &r, &n), STORE_OK);
    assert_int_equal(cp, 0);
    assert_int_equal(n, 2);
    assert_true(r[0].seq > 0 && r[1].seq > r[0].seq);
    check_insert_record(&r[0], ids[0]);
    check_insert_record(&r[1], ids[1]);
    int64_t second = r[1].seq;
    change_records_free(r, n);

    /* reading does not move the checkpoint */
    assert_int_equal(broker_read_changes(f->b, "c1", 2, CHANGE_READ_WHOLE, &cp, &r, &n), STORE_OK);
    assert_int_equal(n, 2);
    check_insert_record(&r[0], ids[0]);
    change_records_free(r, n);

    assert_int_equal(broker_publish(f->b, "c1", second, NULL, 0), STORE_OK);

    /* the checkpoint is durable: close and reopen the same file */
    reopen(f, NULL);

    assert_int_equal(broker_read_changes(f->b, "c1", 10, CHANGE_READ_WHOLE, &cp, &r, &n), STORE_OK);
    assert_int_equal(cp, second);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++) {
        assert_true(r[i].seq > second);
        if (i)
            assert_true(r[i].seq > r[i - 1].seq);
        check_insert_record(&r[i], ids[i + 2]);
    }
    change_records_free(r, n);

    /* another consumer has its own checkpoint: from the start */
    assert_int_equal(broker_read_changes(f->b, "c2", 10, CHANGE_READ_WHOLE, &cp, &r, &n), STORE_OK);
    assert_int_equal(cp, 0);
    assert_int_equal(n, 5);
    for (size_t i = 0; i < n; i++)
        check_insert_record(&r[i], ids[i]);
    change_records_free(r, n);

    /* nothing after the last record */
    int64_t lag = -1;
    assert_int_equal(broker_stream_lag(f->b, "c1", &lag), STORE_OK);
    assert_int_equal(lag, 3);
}

/* Each read mode builds what it says, and every record keeps its place (its seq). */
static void test_change_read_modes(void **state)
{
    fx *f = *state;
    char a[37], b[37];
    store_new_task t = {.task_type = "TASK2",
                        .data = "{\"k\":[1,2.5,\"v\"]}",
                        .trace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                        .tracestate = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"};
    assert_int_equal(store_create_task(f->s, &t, (int64_t)time(NULL), a), STORE_OK);
    set_status(f->s, a, TASK_IN_PROGRESS, "started", wall_ms());
    create_task(f->s, TASK_NULL_TIME, b);
    int64_t cp = -1;
    change_record *r = NULL;
    size_t n = 0;

    assert_int_equal(broker_read_changes(f->b, "c", 10, CHANGE_READ_WHOLE, &cp, &r, &n), STORE_OK);
    assert_int_equal(n, 3);
    assert_non_null(r[1].json);
    assert_null(r[0].insert.task_id);
    /* a MODIFY is kept slim, and read whole: data and trace come back from the task row */
    json_t *mod = json_loads(r[1].json, 0, NULL);
    assert_non_null(mod);
    assert_string_equal(json_string_value(json_object_get(mod, "eventName")), "MODIFY");
    json_t *ddb = json_object_get(mod, "dynamodb");
    const char *imgs[] = {"NewImage", "OldImage"}, *statuses[] = {"IN_PROGRESS", "CREATED"};
    for (int i = 0; i < 2; i++) {
        json_t *img = json_object_get(ddb, imgs[i]);
        assert_string_equal(json_string_value(json_object_get(json_object_get(img, "status"), "S")),
                            statuses[i]);
        json_t *data = json_object_get(json_object_get(img, "data"), "M");
        assert_non_null(data);
        json_t *k = json_object_get(json_object_get(data, "k"), "L");
        assert_int_equal(json_array_size(k), 3);
        assert_string_equal(json_string_value(json_object_get(json_array_get(k, 1), "N")), "2.5");
        assert_string_equal(json_string_value(json_object_get(json_object_get(img, "trace"), "S")),
                            t.trace);
        assert_string_equal(
            json_string_value(json_object_get(json_object_get(img, "tracestate"), "S")),
            t.tracestate);
    }
    json_decref(mod);
    change_records_free(r, n);

    assert_int_equal(broker_read_changes(f->b, "c", 10, CHANGE_READ_INSERTS_WHOLE, &cp, &r, &n),
                     STORE_OK);
    assert_int_equal(n, 3);
    check_insert_record(&r[2], b);
    assert_null(r[1].json);
    assert_null(r[1].insert.task_id);
    assert_true(r[0].seq < r[1].seq && r[1].seq < r[2].seq);
    change_records_free(r, n);

    assert_int_equal(broker_read_changes(f->b, "c", 10, CHANGE_READ_INSERT_FIELDS, &cp, &r, &n),
                     STORE_OK);
    assert_int_equal(n, 3);
    assert_null(r[0].json);
    assert_string_equal(r[0].insert.task_id, a);
    assert_string_equal(r[0].insert.task_type, "TASK2");
    assert_string_equal(r[0].insert.data, "{\"k\":[1,2.5,\"v\"]}");
    assert_string_equal(r[0].insert.trace, t.trace);
    assert_non_null(r[0].insert.tracestate);
    assert_string_equal(r[0].insert.tracestate, t.tracestate);
    assert_null(r[1].json);
    assert_null(r[1].insert.task_id);
    assert_string_equal(r[2].insert.task_id, b);
    assert_null(r[2].insert.trace);
    assert_null(r[2].insert.tracestate);
    int64_t newest = r[2].seq;
    change_records_free(r, n);

    /* the last seq, kept in memory by the writer, is the log's own, and survives a reopen */
    int64_t oldest = 0, last = 0;
    assert_int_equal(broker_change_bounds(f->b, &oldest, &last), STORE_OK);
    assert_int_equal(broker_last_seq(f->b), last);
    assert_int_equal(broker_last_seq(f->b), newest);
    /* a write that is refused (an unknown task) keeps no record and moves nothing */
    store_update u = {.id = "0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e5f",
                      .status = TASK_COMPLETED,
                      .status_msg = "",
                      .result = NULL};
    assert_int_equal(store_update_task(f->s, &u, wall_ms(), NULL), STORE_NOT_FOUND);
    assert_int_equal(broker_last_seq(f->b), last);
    reopen(f, NULL);
    assert_int_equal(broker_last_seq(f->b), last);

    /* a created task whose row is gone is read whole, from its record */
    /* its row deleted behind the store's back, as if it were gone before being published */
    assert_int_equal(test_sqlite_exec(db_path, "DELETE FROM tasks WHERE id = ?1", b), 1);
    assert_int_equal(broker_read_changes(f->b, "c", 10, CHANGE_READ_INSERT_FIELDS, &cp, &r, &n),
                     STORE_OK);
    assert_int_equal(n, 3);
    assert_string_equal(r[0].insert.task_id, a);
    assert_null(r[2].insert.task_id);
    check_insert_record(&r[2], b);
    change_records_free(r, n);
}

/* The JSON of the record of seq that the images of new_state and old_state make, as the writer
 * wrote whole records before it kept their parts. */
static char *record_of(int64_t seq, const char *event, const char *id, const task *new_state,
                       const task *old_state, int64_t time)
{
    sbuf ni = {0}, oi = {0}, j = {0};
    if (new_state)
        assert_true(attrval_task_image(&ni, new_state, NULL));
    if (old_state)
        assert_true(attrval_task_image(&oi, old_state, NULL));
    change_record_write(&j, seq, event, id, new_state ? ni.data : NULL, old_state ? oi.data : NULL,
                        time);
    sbuf_free(&ni);
    sbuf_free(&oi);
    assert_false(sbuf_failed(&j));
    return sbuf_take(&j, NULL);
}

static change_record *read_whole(fx *f, size_t want)
{
    int64_t cp = -1;
    change_record *r = NULL;
    size_t n = 0;
    assert_int_equal(broker_read_changes(f->b, "reader", 100, CHANGE_READ_WHOLE, &cp, &r, &n),
                     STORE_OK);
    assert_int_equal(n, want);
    return r;
}

/*
 * A creation's and a change's records keep their parts, not images, and read whole as the
 * images of the task's states, byte for byte as the writer rendered them when it kept them;
 * once the sweep has removed the task row, its REMOVE record gives them what the row gave.
 * Readers without a checkpoint (GET /events, the waiters) get each event's fields apart.
 */
/* The rows of a task's data kept apart (schema 9): its task_data row, and the task row's mark. */
static int data_rows(const char *id, int *apart)
{
    sqlite3_stmt *q =
        own_stmt(SQLITE_OPEN_READONLY, "SELECT (SELECT count(*) FROM task_data WHERE id = ?1), "
                                       "(SELECT data_apart FROM tasks WHERE id = ?1)");
    sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    int n = sqlite3_column_int(q, 0);
    *apart = sqlite3_column_int(q, 1);
    own_done(q);
    return n;
}

static void records_kept_as_parts_read_whole(fx *f, const char *data, bool apart)
{
    int64_t now = (int64_t)time(NULL);
    const char *trace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    store_new_task nt = {.task_type = "TASK2", .data = data, .trace = trace, .ttl = now - 10};
    char id[37];
    assert_int_equal(store_create_task(f->s, &nt, now - 7, id), STORE_OK);
    task states[3];
    memset(states, 0, sizeof states);
    assert_int_equal(store_get_task(f->s, id, &states[0]), STORE_OK);
    set_status(f->s, id, TASK_IN_PROGRESS, "started", now - 6);
    assert_int_equal(store_get_task(f->s, id, &states[1]), STORE_OK);
    store_update u = {.id = id,
                      .status = TASK_COMPLETED,
                      .status_msg = "done \"at last\"",
                      .result = "{\"r\":[true,null,\"x\"]}"};
    assert_int_equal(store_update_task(f->s, &u, now - 5, NULL), STORE_OK);
    assert_int_equal(store_get_task(f->s, id, &states[2]), STORE_OK);
    for (int i = 0; i < 3; i++) {
        assert_non_null(states[i].data);
        if (!states[i].trace) /* a read by id leaves the trace out */
            assert_non_null(states[i].trace = strdup(trace));
    }
    assert_int_equal(states[0].ttl, now - 10);
    assert_non_null(states[2].result);
    for (int i = 0; i < 3; i++)
        assert_string_equal(states[i].data, data);
    int marked;
    assert_int_equal(data_rows(id, &marked), apart);
    assert_int_equal(marked, apart);

    /* only the parts are kept: no images, no data */
    sqlite3_stmt *q = own_stmt(SQLITE_OPEN_READONLY,
                               "SELECT count(*) FROM changes WHERE slim = 2 AND new_image IS NULL "
                               "AND old_image IS NULL AND task_type = 'TASK2' AND task_id = ?1");
    sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(q, 0), 3);
    own_done(q);

    change_record *r = read_whole(f, 3);
    char *want[3] = {
        record_of(r[0].seq, "INSERT", id, &states[0], NULL, now - 7),
        record_of(r[1].seq, "MODIFY", id, &states[1], &states[0], now - 6),
        record_of(r[2].seq, "MODIFY", id, &states[2], &states[1], now - 5),
    };
    for (int i = 0; i < 3; i++)
        assert_string_equal(r[i].json, want[i]);
    change_records_free(r, 3);

    /* the event fields, apart */
    change_row_copy *rows = NULL;
    size_t n = 0;
    assert_int_equal(broker_changes_after(f->b, 0, 10, &rows, &n), STORE_OK);
    assert_int_equal(n, 3);
    const char *statuses[] = {"CREATED", "IN_PROGRESS", "COMPLETED"};
    const char *msgs[] = {"", "started", "done \"at last\""};
    for (size_t i = 0; i < n; i++) {
        assert_null(rows[i].new_image);
        assert_string_equal(rows[i].task_type, "TASK2");
        assert_string_equal(rows[i].status, statuses[i]);
        assert_string_equal(rows[i].status_msg, msgs[i]);
    }
    change_rows_free(rows, n);

    /* the row is swept: the same records, from the REMOVE record */
    config c;
    assert_true(config_defaults(&c));
    c.event_replay = 0; /* records every consumer passed go at the next sweep */
    c.retention_grace = 0;
    int64_t removed = 0;
    assert_int_equal(broker_sweep(f->b, &c, &removed, NULL), STORE_OK);
    config_free(&c);
    assert_int_equal(removed, 1);
    assert_int_equal(data_rows(id, &marked), 0); /* gone with its task */
    r = read_whole(f, 4);
    for (int i = 0; i < 3; i++)
        assert_string_equal(r[i].json, want[i]);
    char *gone = record_of(r[3].seq, "REMOVE", id, NULL, &states[2], r[3].seq ? now : 0);
    json_t *rem = json_loads(r[3].json, 0, NULL), *exp = json_loads(gone, 0, NULL);
    assert_non_null(rem);
    assert_true(json_equal(json_object_get(json_object_get(rem, "dynamodb"), "OldImage"),
                           json_object_get(json_object_get(exp, "dynamodb"), "OldImage")));
    json_decref(rem);
    json_decref(exp);
    free(gone);
    change_records_free(r, 4);
    /* and a creation read by its fields comes whole, from there too */
    int64_t cp = -1;
    assert_int_equal(broker_read_changes(f->b, "reader", 1, CHANGE_READ_INSERT_FIELDS, &cp, &r, &n),
                     STORE_OK);
    assert_int_equal(n, 1);
    assert_null(r[0].insert.task_id);
    assert_string_equal(r[0].json, want[0]);
    change_records_free(r, n);
    /* a REMOVE record that does not read back, not JSON or without the task's data, never
     * will: the records that need it come back unreadable, rather than fail the read for good
     * (a consumer retried it forever, and read nothing after it) or give images without what
     * it held; the read goes on past them. Data that is there but not an image (null, a
     * string, a number) is no more the task's data than none; nor is an image with the data
     * but without its task's creation time, or with one that is not a number, a whole one */
    const char *spoilt[] = {"not json",
                            "{\"id\":{\"S\":\"x\"},\"created_time\":{\"N\":\"1\"}}",
                            "{\"data\":null,\"created_time\":{\"N\":\"1\"}}",
                            "{\"data\":\"x\",\"created_time\":{\"N\":\"1\"}}",
                            "{\"data\":7,\"created_time\":{\"N\":\"1\"}}",
                            "{\"data\":{\"S\":\"x\"}}",
                            "{\"data\":{\"S\":\"x\"},\"created_time\":{\"S\":\"1\"}}",
                            "{\"data\":{\"S\":\"x\"},\"created_time\":{\"N\":\"1x\"}}",
                            NULL};
    for (size_t k = 0; k < sizeof spoilt / sizeof *spoilt; k++) {
        sqlite3_stmt *spoil =
            own_stmt(SQLITE_OPEN_READWRITE, "UPDATE changes SET old_image = ?2 WHERE task_id = ?1 "
                                            "AND event_name = 'REMOVE'");
        sqlite3_bind_text(spoil, 1, id, -1, SQLITE_STATIC);
        if (spoilt[k])
            sqlite3_bind_text(spoil, 2, spoilt[k], -1, SQLITE_STATIC);
        assert_int_equal(sqlite3_step(spoil), SQLITE_DONE);
        assert_int_equal(sqlite3_changes(sqlite3_db_handle(spoil)), 1);
        own_done(spoil);
        r = read_whole(f, 4);
        for (int i = 0; i < 3; i++) {
            assert_true(r[i].unreadable);
            assert_null(r[i].json);
        }
        assert_false(r[3].unreadable); /* the REMOVE itself, whole as it is kept */
        assert_non_null(r[3].json);
        change_records_free(r, 4);
        assert_int_equal(
            broker_read_changes(f->b, "reader", 1, CHANGE_READ_INSERT_FIELDS, &cp, &r, &n),
            STORE_OK);
        assert_int_equal(n, 1);
        assert_true(r[0].unreadable);
        assert_null(r[0].json);
        assert_null(r[0].insert.task_id);
        change_records_free(r, n);
    }
    for (int i = 0; i < 3; i++) {
        free(want[i]);
        task_clear(&states[i]);
    }
}

/*
 * A message body SQLite cannot copy for lack of memory fails the receive, which is tried again,
 * and is not delivered without it. The copy's check asked the column's type after its text,
 * which SQLite leaves undefined after a conversion: a body made a blob (a hand-edited row) whose
 * copy failed read as NULL, and the message went out with no body.
 */
static void test_a_body_sqlite_cannot_copy_fails_the_receive(void **state)
{
    fx *f = *state;
    queue_config q = make_queue("work", 30, 0, NULL, 0);
    broker_message m = {.queue = &q, .task_type = "TASK1", .body = "{\"n\":7}"};
    assert_int_equal(broker_publish(f->b, "test", 1, &m, 1), STORE_OK);
    assert_int_equal(
        test_sqlite_exec(db_path, "UPDATE messages SET body = CAST(body AS BLOB) WHERE queue = ?1",
                         "work"),
        1);
    queue_message *got = NULL;
    size_t n = 99;
    int64_t next = -1;
    atomic_store(&fail_text_sql, "SELECT id, receive_count, sent_ms, task_id, body,");
    atomic_store(&fail_text_of, 4);
    store_rc rc = broker_receive(f->b, &q, 1, &got, &n, &next);
    atomic_store(&fail_text_sql, NULL);
    if (atomic_load(&fail_text_of) != -1)
        fail_msg("the receive did not read the body's text");
    if (rc == STORE_OK)
        fail_msg("the body not copied, the receive gave %zu message(s)%s", n,
                 n && !got[0].body ? ", without its body" : "");
    assert_int_equal(n, 0);
    /* and received again, it comes whole */
    assert_int_equal(receive(f->b, &q, 1, &got, NULL), 1);
    assert_string_equal(got[0].body, "{\"n\":7}");
    queue_messages_free(got, 1);
}

/*
 * A change row kept as parts that lost its new status or message (a damaged or hand-edited
 * database) reads for GET /events and the waiters of ?wait= as it is, and the read goes on.
 * Taken for a failed read, it failed again at every retry, and every reader of the log stood
 * behind it for good. The events' reader passes over a row without a status (it has no event),
 * and tells one without a message with an empty one.
 */
static void test_a_row_without_its_status_or_message_reads_for_events(void **state)
{
    fx *f = *state;
    char id[37], next[37];
    create_task(f->s, TASK_NULL_TIME, id);
    int64_t now = (int64_t)time(NULL);
    set_status(f->s, id, TASK_IN_PROGRESS, "started", now);
    set_status(f->s, id, TASK_COMPLETED, "done", now);
    create_task(f->s, TASK_NULL_TIME, next);
    int64_t last = broker_last_seq(f->b);
    char seq[24];
    snprintf(seq, sizeof seq, "%lld", (long long)(last - 2));
    assert_int_equal(
        test_sqlite_exec(db_path, "UPDATE changes SET new_status = NULL WHERE seq = ?1", seq), 1);
    snprintf(seq, sizeof seq, "%lld", (long long)(last - 1));
    assert_int_equal(
        test_sqlite_exec(db_path, "UPDATE changes SET new_msg = NULL WHERE seq = ?1", seq), 1);

    change_row_copy *rows = NULL;
    size_t n = 0;
    assert_int_equal(broker_changes_after(f->b, last - 4, 10, &rows, &n), STORE_OK);
    assert_int_equal(n, 4);
    const char *want[4][3] = {
        {"INSERT", "CREATED", ""}, {NULL}, {"MODIFY", "COMPLETED", ""}, {"INSERT", "CREATED", ""}};
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(rows[i].seq, last - 3 + (int64_t)i);
        change_row r = {rows[i].seq,       rows[i].event_name, rows[i].task_id,
                        rows[i].new_image, rows[i].old_image,  rows[i].time,
                        rows[i].task_type, rows[i].status,     rows[i].status_msg};
        task_event ev;
        bool told = task_event_from_row(&r, &ev) == TASK_EVENT_TOLD;
        if (!want[i][0]) {
            assert_false(told);
            continue;
        }
        assert_true(told);
        assert_string_equal(ev.event, want[i][0]);
        assert_string_equal(ev.id, i == 3 ? next : id);
        assert_string_equal(ev.status, want[i][1]);
        assert_string_equal(ev.status_msg, want[i][2]);
        task_event_clear(&ev);
    }
    change_rows_free(rows, n);
}

/* The change row of seq as GET /events and the waiters read it: whether it tells an event, and
 * its status when it does (st[16]). */
static bool event_of_row(fx *f, int64_t seq, char st[16])
{
    change_row_copy *rows = NULL;
    size_t n = 0;
    assert_int_equal(broker_changes_after(f->b, seq - 1, 1, &rows, &n), STORE_OK);
    assert_int_equal(n, 1);
    change_row r = {rows[0].seq,       rows[0].event_name, rows[0].task_id,
                    rows[0].new_image, rows[0].old_image,  rows[0].time,
                    rows[0].task_type, rows[0].status,     rows[0].status_msg};
    task_event ev;
    bool told = task_event_from_row(&r, &ev) == TASK_EVENT_TOLD;
    if (told) {
        snprintf(st, 16, "%s", ev.status);
        task_event_clear(&ev);
    }
    change_rows_free(rows, n);
    return told;
}

/*
 * A change kept as parts whose side lost its status, or holds one that is no status (a damaged
 * or hand-edited row), shows no task: a whole read gives it unreadable, for the consumer to
 * retry and skip with its seq said, and the read goes on; GET /events and the waiters pass over
 * it. The whole read made that side a task CREATED (the parts' default), and the events' reader
 * sent the text as the task's status.
 */
static void test_a_change_kept_as_parts_without_a_status_is_unreadable(void **state)
{
    fx *f = *state;
    char id[37], next[37];
    create_task(f->s, TASK_NULL_TIME, id);
    set_status(f->s, id, TASK_IN_PROGRESS, "started", (int64_t)time(NULL));
    create_task(f->s, TASK_NULL_TIME, next);
    int64_t last = broker_last_seq(f->b);
    char seq[24];
    snprintf(seq, sizeof seq, "%lld", (long long)(last - 1)); /* the MODIFY */
    const struct {
        const char *spoil, *mend;
        bool events_pass_over; /* its new side's status is spoilt */
    } cases[] = {
        {"UPDATE changes SET new_status = NULL WHERE seq = ?1",
         "UPDATE changes SET new_status = 'IN_PROGRESS' WHERE seq = ?1", true},
        {"UPDATE changes SET new_status = 'STARTED' WHERE seq = ?1",
         "UPDATE changes SET new_status = 'IN_PROGRESS' WHERE seq = ?1", true},
        {"UPDATE changes SET old_status = NULL WHERE seq = ?1",
         "UPDATE changes SET old_status = 'CREATED' WHERE seq = ?1", false},
        {"UPDATE changes SET old_status = 'created' WHERE seq = ?1",
         "UPDATE changes SET old_status = 'CREATED' WHERE seq = ?1", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        assert_int_equal(test_sqlite_exec(db_path, cases[i].spoil, seq), 1);
        change_record *r = read_whole(f, 3);
        if (!r[1].unreadable)
            fail_msg("case %zu: the change read as %s", i, r[1].json ? r[1].json : "nothing");
        assert_null(r[1].json);
        check_insert_record(&r[0], id);
        check_insert_record(&r[2], next);
        change_records_free(r, 3);
        char st[16];
        bool told = event_of_row(f, last - 1, st);
        if (cases[i].events_pass_over && told)
            fail_msg("case %zu: the events' reader told the change as status %s", i, st);
        assert_int_equal(test_sqlite_exec(db_path, cases[i].mend, seq), 1);
    }
    /* mended, it reads whole */
    change_record *r = read_whole(f, 3);
    assert_false(r[1].unreadable);
    assert_non_null(strstr(r[1].json, "\"IN_PROGRESS\""));
    change_records_free(r, 3);
}

/*
 * A creation kept as parts whose task row is there but whose data kept apart is not (its
 * task_data row gone) is unreadable to every reader that builds it, the publisher's by fields
 * among them, and the read goes on: its task is neither removed (no REMOVE record stands in) nor
 * without data. It read as the task with data {}, and the publisher sent its message so.
 */
static void test_a_creation_whose_data_apart_is_gone_is_unreadable(void **state)
{
    fx *f = *state;
    char data[2048], id[37], next[37];
    int len = snprintf(data, sizeof data, "{\"blob\":\"");
    memset(data + len, 'x', 1500);
    strcpy(data + len + 1500, "\"}");
    store_new_task nt = {.task_type = "TASK1", .data = data};
    assert_int_equal(store_create_task(f->s, &nt, (int64_t)time(NULL), id), STORE_OK);
    create_task(f->s, TASK_NULL_TIME, next);
    int apart;
    assert_int_equal(data_rows(id, &apart), 1);
    assert_int_equal(apart, 1);
    assert_int_equal(test_sqlite_exec(db_path, "DELETE FROM task_data WHERE id = ?1", id), 1);
    const change_read modes[] = {CHANGE_READ_WHOLE, CHANGE_READ_INSERTS_WHOLE,
                                 CHANGE_READ_INSERT_FIELDS};
    for (size_t i = 0; i < sizeof modes / sizeof *modes; i++) {
        int64_t cp = -1;
        change_record *r = NULL;
        size_t n = 0;
        assert_int_equal(broker_read_changes(f->b, "reader", 10, modes[i], &cp, &r, &n), STORE_OK);
        assert_int_equal(n, 2);
        if (!r[0].unreadable)
            fail_msg("mode %zu: the creation read as %s", i,
                     r[0].json          ? r[0].json
                     : r[0].insert.data ? r[0].insert.data
                                        : "nothing");
        assert_null(r[0].json);
        assert_null(r[0].insert.data);
        assert_false(r[1].unreadable);
        if (modes[i] == CHANGE_READ_INSERT_FIELDS)
            assert_string_equal(r[1].insert.task_id, next);
        else
            check_insert_record(&r[1], next);
        change_records_free(r, n);
    }
}

/* Close the test's database and make it again, empty, in UTF-16, by sql. */
static void make_utf16(fx *f, const char *sql)
{
    store_close(f->s);
    f->s = NULL;
    const char *suffix[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < 3; i++) {
        char p[160];
        snprintf(p, sizeof p, "%s%s", f->path, suffix[i]);
        unlink(p);
    }
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA encoding = 'UTF-16le'", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

/* The test's database made again empty, of UTF-16 text, and opened. */
static void reopen_utf16(fx *f)
{
    make_utf16(f, "CREATE TABLE x (a); DROP TABLE x");
    f->s = open_db(f->path, NULL);
    assert_non_null(f->s);
    f->b = broker_of(f->s);
}

/*
 * A column's text that SQLite cannot copy for lack of memory fails the read, which a consumer
 * retries, whatever its column. Only column_dup() looked, and by the column's type after the
 * copy, which SQLite leaves undefined (a number whose conversion failed reads NULL); the other
 * reads took a NULL text for a NULL column: an event name not read made a creation another
 * event's record, passed over, and a whole record was built with eventName null, or an image
 * without its task's id or type. The next step of the read fails (SQLite keeps the error), but
 * a batch's last record has none after it: each read here is a batch of one. In a database of
 * UTF-16 text, every text a reader asks for is a copy SQLite makes, here with its allocations
 * failing.
 */
static void test_a_column_sqlite_cannot_copy_fails_the_read(void **state)
{
    fx *f = *state;
    reopen_utf16(f);
    char id[37];
    create_task(f->s, TASK_NULL_TIME, id);

    /* the columns of CATCH_UP_SQL a creation's read takes text from */
    const struct {
        change_read mode;
        int col;
    } cases[] = {
        {CHANGE_READ_INSERT_FIELDS, 1},  {CHANGE_READ_INSERT_FIELDS, 2},
        {CHANGE_READ_INSERT_FIELDS, 16}, {CHANGE_READ_INSERT_FIELDS, 17},
        {CHANGE_READ_INSERTS_WHOLE, 1},  {CHANGE_READ_WHOLE, 1},
        {CHANGE_READ_WHOLE, 2},          {CHANGE_READ_WHOLE, 7},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int64_t cp = -1;
        change_record *r = NULL;
        size_t n = 0;
        atomic_store(&fail_text_of, cases[i].col);
        store_rc rc = broker_read_changes(f->b, "reader", 1, cases[i].mode, &cp, &r, &n);
        if (atomic_load(&fail_text_of) != -1)
            fail_msg("case %zu: column %d's text was not read", i, cases[i].col);
        if (rc == STORE_OK)
            fail_msg("case %zu: column %d's text failing, the read gave %zu record(s)%s%s", i,
                     cases[i].col, n, n && r[0].unreadable ? ", unreadable" : "",
                     n && !r[0].insert.data && !r[0].json ? ", without data" : "");
        assert_int_equal(n, 0);
        /* and read again, it reads whole */
        assert_int_equal(broker_read_changes(f->b, "reader", 10, cases[i].mode, &cp, &r, &n),
                         STORE_OK);
        assert_int_equal(n, 1);
        assert_false(r[0].unreadable);
        if (cases[i].mode == CHANGE_READ_INSERT_FIELDS) {
            assert_string_equal(r[0].insert.task_id, id);
            assert_string_equal(r[0].insert.data, "{}");
        } else {
            check_insert_record(&r[0], id);
        }
        change_records_free(r, n);
    }
}

/* The task's status read, as fail_unfinished() and the redrive make it on the writer. */
#define TASK_STATUS_SQL "SELECT status, trace FROM tasks WHERE id = ?1"

/*
 * Task id's message in queue "short", past its retention: a sweep whose read of column col of
 * sql cannot be copied fails, leaving the message and its task CREATED, and the next sweep drops
 * the message and fails the task.
 */
static void sweep_fails_then_expires(fx *f, const char *id, const char *sql, int col)
{
    fail_a_text(sql, col, false, 0);
    store_rc rc = sweep_once(f->b);
    expect_a_text_failed("the sweep's read");
    if (rc == STORE_OK)
        fail_msg("column %d not copied: the sweep went on", col);
    count_row("SELECT count(*) FROM messages WHERE task_id = ?1", id, 1);
    expect_status(f->s, id, TASK_CREATED, NULL);
    expect_stats(f->b, "short", 1, 0, 0);
    assert_int_equal(sweep_once(f->b), STORE_OK);
    count_row("SELECT count(*) FROM messages WHERE task_id = ?1", id, 0);
    expect_status(f->s, id, TASK_FAILED, "message expired in queue short");
    expect_stats(f->b, "short", 0, 0, 0);
}

/*
 * A task's status or trace that SQLite cannot copy, as a message past its retention or its
 * max_receive_count goes, fails the write, and the message stays until a write that reads them
 * fails its task. The status not copied read as a task finished, and the reset after the copy
 * rolled the batch back before the message went, which then went alone in autocommit: the
 * message was dropped or moved to the dead-letter queue, its task left CREATED for good. In a
 * database of UTF-16 text every text read is a copy SQLite makes.
 */
static void test_a_status_sqlite_cannot_copy_leaves_the_message_to_fail_its_task(void **state)
{
    fx *f = *state;
    reopen_utf16(f);
    queue_config expiring = make_queue("short", 30, 0, NULL, 0);
    expiring.retention = 0; /* expires as soon as it is sent */
    queue_config q = make_queue("work", 30, 1, "dlq", 0);
    /* tasks with a trace, which the log line of their failure takes */
    store_new_task traced = {.task_type = "TASK1", .data = "{}", .trace = PRODUCER_TRACE};
    for (int col = 0; col < 2; col++) { /* status, trace */
        char id[37];
        assert_int_equal(store_create_task(f->s, &traced, (int64_t)time(NULL), id), STORE_OK);
        publish_bodies(f->b, &expiring, 0, 1, id);
        sleep_ms(20); /* past its expiry, by the steady clock's ms */
        sweep_fails_then_expires(f, id, TASK_STATUS_SQL, col);

        assert_int_equal(store_create_task(f->s, &traced, (int64_t)time(NULL), id), STORE_OK);
        publish_bodies(f->b, &q, 0, 1, id);
        queue_message *m = NULL;
        assert_int_equal(receive(f->b, &q, 1, &m, NULL), 1);
        assert_int_equal(give_back(f->b, m, 1), STORE_OK);
        queue_messages_free(m, 1);
        fail_a_text(TASK_STATUS_SQL, col, false, 0);
        size_t n = 99;
        int64_t next = -1;
        store_rc rc = broker_receive(f->b, &q, 1, &m, &n, &next);
        expect_a_text_failed("the move's read of its task");
        if (rc == STORE_OK)
            queue_messages_free(m, n);
        if (rc == STORE_OK)
            fail_msg("column %d not copied: the receive went on", col);
        count_row("SELECT count(*) FROM messages WHERE task_id = ?1 AND queue = 'work'", id, 1);
        expect_status(f->s, id, TASK_CREATED, NULL);
        expect_stats(f->b, "work", 1, 0, 0);
        /* the next receive moves it, failing the task */
        assert_int_equal(receive(f->b, &q, 1, &m, NULL), 0);
        queue_messages_free(m, 0);
        count_row("SELECT count(*) FROM messages WHERE task_id = ?1 AND queue = 'dlq'", id, 1);
        expect_status(f->s, id, TASK_FAILED, "dead-letter queue dlq");
        expect_stats(f->b, "work", 0, 0, 0);
        assert_int_equal(test_sqlite_exec(db_path, "DELETE FROM messages WHERE task_id = ?1", id),
                         1);
        reopen(f, NULL); /* the depths counted again without it */
    }
}

/*
 * The queue or task id of a message past its retention that SQLite cannot copy fails the
 * sweep, and the next one drops it. The queue not copied went to the depths' log as NULL, and
 * the sweep crashed on it; a task id not copied is harmless (the sweep's next step fails, SQLite
 * keeping the error, and rolls back the message's deletion).
 */
static void test_a_queue_the_sweep_cannot_copy_fails_the_sweep(void **state)
{
    fx *f = *state;
    reopen_utf16(f);
    queue_config expiring = make_queue("short", 30, 0, NULL, 0);
    expiring.retention = 0;
    for (int col = 1; col < 3; col++) { /* queue, task_id */
        char id[37];
        create_task(f->s, TASK_NULL_TIME, id);
        publish_bodies(f->b, &expiring, 0, 1, id);
        sleep_ms(20);
        sweep_fails_then_expires(
            f, id, "SELECT id, queue, task_id, visible_ms, receive_count FROM messages", col);
    }
}

/*
 * A redrive that cannot copy the status or id of a dead letter's task fails its step, and the
 * step made again moves the message and makes the task CREATED again. The status not copied
 * read as a task not failed, and the id (the step's last row, REDRIVE_BATCH of them) as no
 * task; the reset after the copy rolled the step back, and the messages went back to their
 * queue alone, in autocommit, the task left FAILED with its message to be run.
 */
static void test_a_task_the_redrive_cannot_copy_fails_the_step(void **state)
{
    fx *f = *state;
    reopen_utf16(f);
    queue_config q = make_queue("work", 30, 1, "dlq", 0);
    const struct {
        const char *sql;
        int col, skip, others;
    } cases[] = {
        {TASK_STATUS_SQL, 0, 0, 0},
        /* REDRIVE_BATCH less one dead letters without a task before it: its id is the step's last
         * row, read without a step after it */
        {"SELECT id, visible_ms, receive_count, task_id, failed_task FROM messages", 3, 0, 999},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char id[37];
        create_task(f->s, TASK_NULL_TIME, id);
        publish_bodies(f->b, &q, 0, 1, id);
        exhaust(f->b, &q, 1);
        expect_status(f->s, id, TASK_FAILED, "dead-letter queue dlq");
        if (cases[i].others) {
            char n[16];
            snprintf(n, sizeof n, "%d", cases[i].others);
            assert_int_equal(
                test_sqlite_exec(
                    db_path,
                    "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k "
                    "WHERE i < CAST(?1 AS INTEGER)) INSERT INTO messages (queue, body, sent_ms, "
                    "visible_ms, expires_ms) SELECT 'dlq', '{}', 0, 0, 1e15 FROM k",
                    n),
                cases[i].others);
            reopen(f, NULL); /* the depths counted again with them */
        }
        fail_a_text(cases[i].sql, cases[i].col, false, cases[i].skip);
        int64_t moved = -1;
        store_rc rc = redrive(f->b, "dlq", "work", &moved);
        expect_a_text_failed("the redrive's read of the task");
        if (rc == STORE_OK)
            fail_msg("case %zu: the redrive moved %lld", i, (long long)moved);
        count_row("SELECT count(*) FROM messages WHERE queue = 'dlq' AND task_id = ?1", id, 1);
        count_row("SELECT count(*) FROM messages WHERE queue = ?1", "work", 0);
        expect_status(f->s, id, TASK_FAILED, NULL);
        expect_stats(f->b, "dlq", 1 + cases[i].others, 0, 0);
        /* made again, it moves them all and makes the task CREATED */
        assert_int_equal(redrive(f->b, "dlq", "work", &moved), STORE_OK);
        assert_int_equal(moved, 1 + cases[i].others);
        expect_status(f->s, id, TASK_CREATED, "Redriven from dlq");
        expect_stats(f->b, "dlq", 0, 0, 0);
        expect_stats(f->b, "work", 1 + cases[i].others, 0, 0);
        assert_int_equal(test_sqlite_exec(db_path, "DELETE FROM messages", NULL),
                         1 + cases[i].others);
        reopen(f, NULL);
    }
}

/*
 * A receipt whose message's queue SQLite cannot copy fails, and changes nothing. The reset
 * after the copy rolled the batch back, and the release went on alone in autocommit: the
 * message was made visible by a release that failed, and the runner's release made again
 * counted it given back twice.
 */
static void test_a_queue_a_receipt_cannot_copy_fails_it(void **state)
{
    fx *f = *state;
    reopen_utf16(f);
    queue_config q = make_queue("work", 30, 0, NULL, 0);
    publish_bodies(f->b, &q, 0, 1, NULL);
    queue_message *m = NULL;
    assert_int_equal(receive(f->b, &q, 1, &m, NULL), 1);
    fail_a_text("SELECT queue, visible_ms FROM messages", 0, false, 0);
    store_rc rc = broker_release(f->b, m, 1);
    expect_a_text_failed("the receipt's read of its message");
    assert_int_not_equal(rc, STORE_OK);
    count_row("SELECT count(*) FROM messages WHERE released = 0 AND receive_count = 1 AND "
              "queue = ?1",
              "work", 1);
    expect_stats(f->b, "work", 0, 1, 0);
    assert_int_equal(broker_release(f->b, m, 1), STORE_OK);
    count_row("SELECT released FROM messages WHERE queue = ?1", "work", 1);
    expect_stats(f->b, "work", 1, 0, 0);
    queue_messages_free(m, 1);
}

/*
 * A received message's type or trace that SQLite cannot copy fails the receive, and the
 * message is delivered whole by the next. The type's size was read first, which is where the
 * copy is made: one that failed read 0, and the reset after it rolled the batch back, the
 * message then hidden alone in autocommit, its receive counted and never delivered.
 */
static void test_a_type_the_receive_cannot_copy_fails_it(void **state)
{
    fx *f = *state;
    reopen_utf16(f);
    queue_config q = make_queue("work", 30, 0, NULL, 0);
    for (int col = 6; col < 8; col++) { /* task_type, trace */
        publish_bodies(f->b, &q, 0, 1, NULL);
        queue_message *m = NULL;
        size_t n = 99;
        int64_t next = -1;
        fail_a_text("SELECT id, receive_count, sent_ms, task_id, body,", col, false, 0);
        store_rc rc = broker_receive(f->b, &q, 1, &m, &n, &next);
        expect_a_text_failed("the receive's read of the message");
        if (rc == STORE_OK)
            queue_messages_free(m, n);
        if (rc == STORE_OK)
            fail_msg("column %d not copied: the receive delivered %zu", col, n);
        expect_stats(f->b, "work", 1, 0, 0);
        assert_int_equal(receive(f->b, &q, 1, &m, NULL), 1);
        assert_int_equal(m[0].receive_count, 1);
        assert_string_equal(m[0].task_type, "TASK1");
        assert_string_equal(m[0].trace, PRODUCER_TRACE);
        assert_int_equal(broker_delete(f->b, m, 1), STORE_OK);
        queue_messages_free(m, 1);
    }
}

/*
 * A task's id, type or status that SQLite cannot copy fails its read (GET /tasks/{id} answers
 * 503) rather than answer another task: the id and type read "", and the status, not parsed,
 * FAILED.
 */
static void test_a_task_column_sqlite_cannot_copy_fails_the_get(void **state)
{
    fx *f = *state;
    reopen_utf16(f);
    char id[37];
    create_task(f->s, TASK_NULL_TIME, id);
    const int cols[] = {0, 1, 2, 3, 7}; /* id, task_type, status, status_msg, data */
    for (size_t i = 0; i < sizeof cols / sizeof *cols; i++) {
        reopen(f, NULL); /* the task cache empty: the get reads the row */
        task t;
        memset(&t, 0, sizeof t);
        fail_a_text("SELECT id, task_type, status, status_msg", cols[i], true, 0);
        store_rc rc = store_get_task(f->s, id, &t);
        expect_a_text_failed("the get's read of the task");
        if (rc == STORE_OK)
            fail_msg("column %d not copied: the task read as %s \"%s\" of type \"%s\"", cols[i],
                     task_status_name(t.status), t.id, t.task_type);
        task_clear(&t);
        assert_int_equal(store_get_task(f->s, id, &t), STORE_OK);
        assert_string_equal(t.id, id);
        assert_string_equal(t.task_type, "TASK1");
        assert_int_equal(t.status, TASK_CREATED);
        assert_string_equal(t.data, "{}");
        task_clear(&t);
    }
}

/*
 * A queue's name SQLite cannot copy at open: the count of the queues' depths fails the open, and
 * the check for a clock gone back is said not made, as when their reads fail; the next open
 * counts the queue. Both took the name not copied for NULL, and crashed on it.
 */
static void test_a_queue_the_open_cannot_copy_fails_its_read(void **state)
{
    fx *f = *state;
    reopen_utf16(f);
    queue_config q = make_queue("work", 30, 0, NULL, 0);
    publish_bodies(f->b, &q, 0, 1, NULL);
    config c;
    config_of_queue(&c, &q, 30);
    char *log = NULL;
    put_ahead("work", 1, 1); /* its name is read then */
    fail_a_text("SELECT queue, max(expires_ms) FROM messages INDEXED BY", 0, false, 0);
    reopen_configured(f, &c, &log);
    expect_a_text_failed("the check's read of a queue");
    expect_clock_unchecked(log, NULL);
    config_free(&c);
    expect_stats(f->b, "work", 1, 0, 0);

    store_close(f->s);
    fail_a_text("WITH RECURSIVE q(name) AS (SELECT min(queue) FROM messages UNION ALL "
                "SELECT (SELECT min(queue) FROM messages WHERE queue > q.name) FROM q "
                "WHERE q.name IS NOT NULL), hidden",
                0, false, 0);
    f->s = open_db(f->path, NULL);
    expect_a_text_failed("the count's read of a queue");
    assert_null(f->s);
    f->s = open_db(f->path, NULL);
    assert_non_null(f->s);
    f->b = broker_of(f->s);
    expect_stats(f->b, "work", 1, 0, 0);
}

/*
 * A create whose Idempotency-Key names a task the writer cannot copy the id of fails, and so
 * does the create after it in its batch, which leaves nothing; made again, the first answers its
 * key's task. The id not copied was taken for a duplicate of "(null)", a create that succeeded,
 * though the reset after the copy had rolled the batch back: the next create was written alone
 * in autocommit, and its task stayed while the batch's failed commit answered it failed.
 */
static void test_a_key_whose_task_the_create_cannot_copy_fails_it(void **state)
{
    fx *f = *state;
    reopen_utf16(f);
    gate g = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    store_listener l = {.committed = hold_after_commit, .ctx = &g};
    reopen(f, &l);
    store_new_task keyed = {
        .task_type = "TASK1", .data = "{}", .ttl = TASK_NULL_TIME, .idempotency_key = "k"};
    char first[37], again[37];
    assert_int_equal(store_create_task(f->s, &keyed, (int64_t)time(NULL), first), STORE_OK);
    store_write w[2] = {
        {.kind = STORE_WRITE_CREATE, .now = time(NULL), .create = keyed},
        {.kind = STORE_WRITE_CREATE,
         .now = time(NULL),
         .create = {.task_type = "TASK2", .data = "{}", .ttl = TASK_NULL_TIME}},
    };
    fail_a_text("SELECT i.task_id FROM idempotency", 0, false, 0);
    submit_as_one_batch(f, &g, w, 2, NULL);
    expect_a_text_failed("the create's read of its key's task");
    assert_int_equal(g.writes, 2); /* one batch */
    if (w[0].rc != STORE_ERROR)
        fail_msg("the key's task not copied: the create answered %s \"%s\"", store_rc_name(w[0].rc),
                 w[0].id);
    assert_int_equal(w[1].rc, STORE_ERROR);
    count_row("SELECT count(*) FROM tasks WHERE task_type = ?1", "TASK2", 0);
    assert_int_equal(store_create_task(f->s, &keyed, (int64_t)time(NULL), again), STORE_DUPLICATE);
    assert_string_equal(again, first);
}

/*
 * A task type SQLite cannot copy at open fails the open, as when its read does; the next open
 * reads every type. The type not copied was noted as NULL: the first of them as "", and any
 * after it crashed in the search of those noted before.
 */
static void test_a_type_the_open_cannot_copy_fails_it(void **state)
{
    fx *f = *state;
    reopen_utf16(f);
    char id[37];
    create_task(f->s, TASK_NULL_TIME, id);
    store_new_task nt = {.task_type = "TASK2", .data = "{}", .ttl = TASK_NULL_TIME};
    assert_int_equal(store_create_task(f->s, &nt, (int64_t)time(NULL), id), STORE_OK);
    store_close(f->s);
    fail_a_text("WITH RECURSIVE t(name)", 0, false, 1); /* TASK2, after TASK1 */
    f->s = open_db(f->path, NULL);
    expect_a_text_failed("the open's read of a task type");
    assert_null(f->s);
    f->s = open_db(f->path, NULL);
    assert_non_null(f->s);
    f->b = broker_of(f->s);
    char type[TASK_TYPE_MAX + 1];
    assert_true(store_sqlite_task_type_nth(f->s, 0, type, sizeof type));
    assert_string_equal(type, "TASK1");
    assert_true(store_sqlite_task_type_nth(f->s, 1, type, sizeof type));
    assert_string_equal(type, "TASK2");
    assert_false(store_sqlite_task_type_nth(f->s, 2, type, sizeof type));
}

/*
 * A task type longer than any type can be (a hand-edited row's) is not among the types the open
 * reads, where it was noted cut to its first 64 characters: a type no task has, listed by
 * GET /task-types. The types that fit are read as before.
 */
static void test_a_type_too_long_is_not_read_cut_at_open(void **state)
{
    fx *f = *state;
    char id[37], other[37];
    create_task(f->s, TASK_NULL_TIME, id);
    create_task(f->s, TASK_NULL_TIME, other);
    char type[TASK_TYPE_MAX + 2];
    memset(type, 'A', TASK_TYPE_MAX + 1);
    type[TASK_TYPE_MAX + 1] = '\0';
    char sql[256];
    snprintf(sql, sizeof sql, "UPDATE tasks SET task_type = '%s' WHERE id = ?1", type);
    assert_int_equal(test_sqlite_exec(db_path, sql, id), 1);
    reopen(f, NULL);
    char read[TASK_TYPE_MAX + 1];
    assert_true(store_sqlite_task_type_nth(f->s, 0, read, sizeof read));
    assert_string_equal(read, "TASK1");
    assert_false(store_sqlite_task_type_nth(f->s, 1, read, sizeof read));
}

/*
 * The newest task id SQLite cannot copy at open fails the open; the next open goes on after that
 * id, and a task made with the clock an hour behind is still listed first. The id not copied was
 * passed over as NULL, and the ids went on from the clock: below the older task's.
 */
static void test_a_newest_id_the_open_cannot_copy_fails_it(void **state)
{
    fx *f = *state;
    reopen_utf16(f);
    char older[37], newer[37] = "";
    create_task(f->s, TASK_NULL_TIME, older);
    store_close(f->s);
    atomic_store(&wall_step_ms, -3600 * 1000);
    fail_a_text("SELECT max(id) FROM tasks", 0, false, 0);
    f->s = open_db(f->path, NULL);
    expect_a_text_failed("the open's read of the newest id");
    bool opened = f->s != NULL;
    if (!opened)
        f->s = open_db(f->path, NULL);
    if (f->s)
        create_task(f->s, TASK_NULL_TIME, newer);
    atomic_store(&wall_step_ms, 0);
    assert_non_null(f->s);
    if (opened || strcmp(newer, older) <= 0)
        fail_msg("the open %s: %s, made after %s, sorts %s it", opened ? "did not fail" : "failed",
                 newer, older, strcmp(newer, older) <= 0 ? "below" : "above");
}

/*
 * The names of a database's tables SQLite cannot copy at open fail the open, which changes
 * nothing; read, another program's database is refused. The names not copied read as none, and
 * another program's database at schema version 0 passed for a new one: taskd made its tables in
 * it.
 */
static void test_a_schema_the_open_cannot_copy_fails_it(void **state)
{
    fx *f = *state;
    make_utf16(f, "CREATE TABLE other (a)");
    fail_a_text("SELECT (SELECT user_version FROM pragma_user_version)", 1, false, 0);
    f->s = open_db(f->path, NULL);
    expect_a_text_failed("the open's read of the schema");
    if (f->s)
        fail_msg("another program's database, its tables not read, was opened as taskd's");
    count_row("SELECT count(*) FROM sqlite_master WHERE name <> ?1", "other", 0);
    f->s = open_db(f->path, NULL);
    assert_null(f->s);
}

/*
 * A lapsed claim whose task id SQLite cannot copy fails the read of the leases to end, and the
 * next one ends it. The id not copied, the last row of a full step (no step after it to fail),
 * read as "", no task: the step ended nothing and answered OK, its lease left running until the
 * next interval with nothing said.
 */
static void test_a_lapsed_claim_the_read_cannot_copy_fails_it(void **state)
{
    fx *f = *state;
    reopen_utf16(f);
    char id[37];
    create_task(f->s, TASK_NULL_TIME, id);
    int64_t now = time(NULL);
    store_update u = {.id = id,
                      .status = TASK_IN_PROGRESS,
                      .status_msg = "working",
                      .claim_key = "k",
                      .claim_expires = now + 10};
    assert_int_equal(store_update_task(f->s, &u, now, NULL), STORE_OK);
    size_t ended = 99;
    bool more = true;
    fail_a_text("SELECT id, claim_expires FROM tasks", 0, true, 0);
    store_rc rc = store_end_expired_claims(f->s, now + 11, 1, &ended, &more, NULL);
    expect_a_text_failed("the read of the lapsed claims");
    if (rc != STORE_ERROR)
        fail_msg("a lapsed claim not copied: the step answered %s, %zu ended", store_rc_name(rc),
                 ended);
    expect_status(f->s, id, TASK_IN_PROGRESS, "working");
    assert_int_equal(store_end_expired_claims(f->s, now + 11, 1, &ended, &more, NULL), STORE_OK);
    assert_int_equal(ended, 1);
    expect_status(f->s, id, TASK_FAILED, "claim expired");
}

static void test_records_kept_as_parts_read_whole(void **state)
{
    records_kept_as_parts_read_whole(*state, "{\"k\":[1,2.5,\"v\"],\"s\":\"\\u00e9 \\\"q\\\"\"}",
                                     false);
}

/* The same with data kept in a row of its own: read back whole by every reader, through every
 * change of status, and deleted with its task. */
static void test_records_with_data_apart_read_whole(void **state)
{
    char data[4096];
    int n =
        snprintf(data, sizeof data, "{\"k\":[1,2.5,\"v\"],\"s\":\"\\u00e9 \\\"q\\\"\",\"blob\":\"");
    memset(data + n, 'x', 3000);
    strcpy(data + n + 3000, "\"}");
    records_kept_as_parts_read_whole(*state, data, true);
}

/* Records written before schema 7 keep their images, and read as they did: whole ones as
 * written, a slim MODIFY (schemas 5 and 6) with data and trace put back from the task row. */
static void test_records_with_images_read_as_before(void **state)
{
    fx *f = *state;
    int64_t now = (int64_t)time(NULL);
    const char *trace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    store_new_task nt = {.task_type = "TASK1", .data = "{\"n\":7}", .trace = trace};
    char id[37];
    assert_int_equal(store_create_task(f->s, &nt, now, id), STORE_OK);
    task t;
    memset(&t, 0, sizeof t);
    assert_int_equal(store_get_task(f->s, id, &t), STORE_OK);
    if (!t.trace)
        assert_non_null(t.trace = strdup(trace));
    task next = t;
    next.status = TASK_IN_PROGRESS;
    next.status_msg = "started";
    next.updated_time = now;
    sbuf whole = {0}, slim_new = {0}, slim_old = {0};
    assert_true(attrval_task_image(&whole, &t, NULL));
    /* a slim image: the whole one without data and trace */
    task bare = next;
    bare.data = NULL;
    bare.trace = NULL;
    assert_true(attrval_task_image(&slim_new, &bare, NULL));
    bare = t;
    bare.data = NULL;
    bare.trace = NULL;
    assert_true(attrval_task_image(&slim_old, &bare, NULL));
    /* attrval_task_image() writes data {} for none: take it out */
    const char *empty = ",\"data\":{\"M\":{}}";
    char *cut[2] = {strstr(slim_new.data, empty), strstr(slim_old.data, empty)};
    assert_non_null(cut[0]);
    assert_non_null(cut[1]);
    memmove(cut[0], cut[0] + strlen(empty), strlen(cut[0] + strlen(empty)) + 1);
    memmove(cut[1], cut[1] + strlen(empty), strlen(cut[1] + strlen(empty)) + 1);

    sqlite3_stmt *ins = own_stmt(SQLITE_OPEN_READWRITE,
                                 "INSERT INTO changes (seq, event_name, task_id, new_image, "
                                 "old_image, created_time, slim) VALUES (?1, ?2, ?3, ?4, ?5, ?6, "
                                 "?7)");
    assert_int_equal(sqlite3_exec(sqlite3_db_handle(ins), "DELETE FROM changes", NULL, NULL, NULL),
                     SQLITE_OK);
    struct {
        const char *event, *new_image, *old_image;
        int slim;
    } rows[] = {{"INSERT", whole.data, NULL, 0}, {"MODIFY", slim_new.data, slim_old.data, 1}};
    for (int i = 0; i < 2; i++) {
        sqlite3_bind_int64(ins, 1, 1000 + i);
        sqlite3_bind_text(ins, 2, rows[i].event, -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 3, id, -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 4, rows[i].new_image, -1, SQLITE_STATIC);
        if (rows[i].old_image)
            sqlite3_bind_text(ins, 5, rows[i].old_image, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(ins, 5);
        sqlite3_bind_int64(ins, 6, now);
        sqlite3_bind_int(ins, 7, rows[i].slim);
        assert_int_equal(sqlite3_step(ins), SQLITE_DONE);
        sqlite3_reset(ins);
    }
    own_done(ins);

    change_record *r = read_whole(f, 2);
    char *want[2] = {record_of(1000, "INSERT", id, &t, NULL, now),
                     record_of(1001, "MODIFY", id, &next, &t, now)};
    assert_string_equal(r[0].json, want[0]);
    assert_string_equal(r[1].json, want[1]);
    change_records_free(r, 2);
    /* and their events come from their images */
    change_row_copy *ev = NULL;
    size_t n = 0;
    assert_int_equal(broker_changes_after(f->b, 0, 10, &ev, &n), STORE_OK);
    assert_int_equal(n, 2);
    assert_null(ev[1].status);
    assert_string_equal(ev[1].new_image, slim_new.data);
    change_rows_free(ev, n);
    free(want[0]);
    free(want[1]);
    sbuf_free(&whole);
    sbuf_free(&slim_new);
    sbuf_free(&slim_old);
    task_clear(&t);
}

/* Seqs are never given twice: not after a trim emptied the log, nor after a reopen then, nor
 * after a write that was undone (the next one takes its seq, which nothing saw). */
static void test_seqs_go_on_after_an_emptied_log(void **state)
{
    fx *f = *state;
    char id[37];
    for (int i = 0; i < 3; i++)
        create_task(f->s, TASK_NULL_TIME, id);
    int64_t last = broker_last_seq(f->b);
    assert_int_equal(last, 3);
    config c;
    assert_true(config_defaults(&c));
    c.event_replay = 0; /* records every consumer passed go at the next sweep */
    snprintf(c.consumers[0].name, sizeof c.consumers[0].name, "c");
    assert_int_equal(broker_publish(f->b, "c", last, NULL, 0), STORE_OK);
    int64_t removed = 0;
    assert_int_equal(broker_sweep(f->b, &c, &removed, NULL), STORE_OK);
    config_free(&c);
    int64_t oldest = 0, bound = 0;
    assert_int_equal(broker_change_bounds(f->b, &oldest, &bound), STORE_OK);
    assert_int_equal(bound, last);      /* the last seq given outlives its record */
    assert_int_equal(oldest, last + 1); /* none kept */
    reopen(f, NULL);
    assert_int_equal(broker_last_seq(f->b), last);
    create_task(f->s, TASK_NULL_TIME, id);
    assert_int_equal(broker_last_seq(f->b), last + 1);
    change_row_copy *rows = NULL;
    size_t n = 0;
    assert_int_equal(broker_changes_after(f->b, 0, 10, &rows, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(rows[0].seq, last + 1);
    assert_string_equal(rows[0].task_id, id);
    change_rows_free(rows, n);
    /* a refused write gives no seq; the next one takes the next */
    store_update u = {.id = id, .status = TASK_COMPLETED, .status_msg = "x"};
    assert_int_equal(store_update_task(f->s, &u, (int64_t)time(NULL), NULL), STORE_CONFLICT);
    set_status(f->s, id, TASK_FAILED, "cancelled", (int64_t)time(NULL));
    assert_int_equal(broker_last_seq(f->b), last + 2);
}

/* ---- the writer's feed ---- */

/* A feed that sends each created task's data to one queue, and counts what it is told. */
typedef struct fake_feed {
    const queue_config *q;
    int takes, committed, undone;
    bool refuse;    /* take() fails */
    bool bad_body;  /* take() returns a message the queue cannot store */
    int calls;      /* take()'s, refused or not */
    int refuse_nth; /* the call of this number (from 1) fails */
    /* when set, a call that fails reads the consumer's place and what it would read from there
     * into *read_at and *read_n, as the consumer does once it finds the feed off */
    broker *b;
    int64_t *read_at;
    size_t *read_n;
    void (*refused)(void); /* when set, called by a call that fails */
    int partial;           /* takes of a creation without its data, id or type */
} fake_feed;

static size_t unread(broker *b, const char *consumer, int64_t *cp);

typedef struct fake_take {
    broker_message m;
    char id[37];
    char body[128];
} fake_take;

static bool fake_feed_take(void *ctx, const change_insert *t, const broker_message **out, size_t *n,
                           void **token)
{
    fake_feed *ff = ctx;
    if (ff->refuse || ++ff->calls == ff->refuse_nth) {
        if (ff->read_at)
            *ff->read_n = unread(ff->b, "pub", ff->read_at);
        if (ff->refused)
            ff->refused();
        return false;
    }
    ff->partial += !t->data || !*t->task_id || !*t->task_type;
    fake_take *k = calloc(1, sizeof *k);
    assert_non_null(k);
    snprintf(k->id, sizeof k->id, "%s", t->task_id);
    snprintf(k->body, sizeof k->body, "%s", t->data ? t->data : "");
    k->m = (broker_message){ff->q, k->id, "TASK1", NULL, ff->bad_body ? NULL : k->body, NULL};
    ff->takes++;
    *out = &k->m;
    *n = 1;
    *token = k;
    return true;
}

static void fake_feed_finish(void *ctx, void *token, bool committed)
{
    fake_feed *ff = ctx;
    ff->committed += committed;
    ff->undone += !committed;
    free(token);
}

/* The consumer's place, and how many records it would read from there. */
static size_t unread(broker *b, const char *consumer, int64_t *cp)
{
    change_record *r = NULL;
    size_t n = 0;
    assert_int_equal(broker_read_changes(b, consumer, 100, CHANGE_READ_INSERT_FIELDS, cp, &r, &n),
                     STORE_OK);
    change_records_free(r, n);
    return n;
}

/* The consumer reads its next record and publishes it, with no message: its place moves past
 * it. The record's task id goes to id (when not NULL). */
static void publish_next(broker *b, const char *consumer, char id[37])
{
    int64_t cp = -1;
    change_record *r = NULL;
    size_t n = 0;
    assert_int_equal(broker_read_changes(b, consumer, 1, CHANGE_READ_INSERT_FIELDS, &cp, &r, &n),
                     STORE_OK);
    assert_int_equal(n, 1);
    if (id)
        snprintf(id, 37, "%s", r[0].insert.task_id);
    assert_int_equal(broker_publish(b, consumer, r[0].seq, NULL, 0), STORE_OK);
    change_records_free(r, n);
}

/*
 * The set-up of the feed tests whose writes make one batch: the writer held after a commit on
 * demand (g, the store's commit listener since reopen()), queue "work" with the given visibility
 * timeout, and consumer "pub" fed by ff, caught up past a creation, the feed on. The fields of ff
 * a refused take uses are the test's to set after.
 */
typedef struct held_feed {
    gate g;
    store_listener l;
    queue_config q;
    fake_feed ff;
    broker_feed feed;
} held_feed;

static void start_held_feed(fx *f, held_feed *h, unsigned visibility)
{
    memset(h, 0, sizeof *h);
    pthread_mutex_init(&h->g.mu, NULL);
    pthread_cond_init(&h->g.cv, NULL);
    h->l = (store_listener){.committed = hold_after_commit, .ctx = &h->g};
    reopen(f, &h->l);
    h->q = make_queue("work", visibility, 0, NULL, 0);
    h->ff.q = &h->q;
    h->feed = (broker_feed){"pub", fake_feed_take, fake_feed_finish, &h->ff};
    char a[37];
    create_task(f->s, TASK_NULL_TIME, a);
    assert_int_equal(broker_set_feed(f->b, &h->feed), STORE_OK);
    publish_next(f->b, "pub", NULL);
    assert_true(broker_feed_on(f->b, "pub"));
}

/* start_held_feed() with a visibility of 30 s, the consumer's reads in a batch noted: where it
 * read (*at, -1 before any) and how many records it found past that (*behind, 99 before any). */
static void start_held_feed_reading(fx *f, held_feed *h, int64_t *at, size_t *behind)
{
    start_held_feed(f, h, 30);
    *at = -1;
    *behind = 99;
    h->ff.b = f->b;
    h->ff.read_at = at;
    h->ff.read_n = behind;
}

/* n creations of a TASK1 task with data {}, as writes to submit. */
static void make_creations(store_write *w, size_t n)
{
    for (size_t i = 0; i < n; i++)
        w[i] = (store_write){.kind = STORE_WRITE_CREATE,
                             .now = time(NULL),
                             .create = {.task_type = "TASK1", .data = "{}", .ttl = TASK_NULL_TIME}};
}

/* Two creations made one batch after the held write, the feed refusing the batch's second (the
 * held write's creation is fed (1), then the batch's first (2)): both commit, the feed off. */
static void creations_in_one_batch_the_second_refused(fx *f, held_feed *h, store_write w[2])
{
    h->ff.refuse_nth = 3;
    make_creations(w, 2);
    submit_as_one_batch(f, &h->g, w, 2, NULL);
    assert_int_equal(h->g.writes, 2); /* one batch */
    assert_int_equal(w[0].rc, STORE_OK);
    assert_int_equal(w[1].rc, STORE_OK);
    assert_false(broker_feed_on(f->b, "pub"));
}

/* A config of queue q, its subscription, and consumer "pub", fed (it tests eventName alone),
 * that tries a record it cannot read retries times before it skips it. */
static void load_fed_consumer_config(config *cfg, int retries)
{
    char text[512], err[256] = "";
    snprintf(text, sizeof text,
             "{\"queues\":[{\"name\":\"q\"}],\"subscriptions\":[{\"queue\":\"q\"}],"
             "\"stream_consumers\":[{\"name\":\"pub\",\"maximum_retry_attempts\":%d,"
             "\"filter_patterns\":[{\"eventName\":[\"INSERT\"]}]}],\"handlers\":[]}",
             retries);
    assert_true(config_defaults(cfg));
    if (!config_load_text(cfg, text, "test", err, sizeof err))
        fail_msg("config: %s", err);
}

/* Remove task id behind the store's back, leaving its REMOVE record without the task's data:
 * its INSERT never builds again. */
static void remove_leaving_no_data(const char *id)
{
    const char *edits[] = {"DELETE FROM tasks WHERE id = ?1",
                           "INSERT INTO changes (event_name, task_id, old_image, created_time) "
                           "VALUES ('REMOVE', ?1, '{}', 1)"};
    for (size_t i = 0; i < 2; i++) {
        sqlite3_stmt *st = own_stmt(SQLITE_OPEN_READWRITE, edits[i]);
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        assert_int_equal(sqlite3_step(st), SQLITE_DONE);
        own_done(st);
    }
}

/*
 * A consumer's record that never builds, past its attempts while the database cannot be
 * written: the skip is tried again after a back-off, as a batch whose write fails is, and said
 * once, not tried (and logged at ERROR) again at once for as long as the disk stays full; once
 * the database can be written, the record is skipped.
 */
static void test_a_skip_that_cannot_be_written_backs_off(void **state)
{
    fx *f = *state;
    config cfg;
    char err[256] = "";
    load_fed_consumer_config(&cfg, 0);
    char id[37];
    create_task(f->s, TASK_NULL_TIME, id);
    remove_leaving_no_data(id);
    reopen(f, NULL);
    int64_t cp = -1;
    assert_int_equal(unread(f->b, "pub", &cp), 2);

    atomic_store(&wal_full, true);
    test_stderr cap;
    test_stderr_begin(&cap);
    stream_consumer *sc =
        stream_consumer_start(f->b, &cfg, &cfg.consumers[0], NULL, err, sizeof err);
    if (!sc) {
        free(test_stderr_end(&cap));
        fail_msg("stream_consumer_start: %s", err);
    }
    usleep(1000 * 1000);
    atomic_store(&wal_full, false);
    for (int i = 0; i < 500 && unread(f->b, "pub", &cp) == 2; i++)
        usleep(20 * 1000);
    stream_consumer_stop(sc);
    char *said = test_stderr_end(&cap);
    size_t skipped = expect_logged(said, "change record skipped after failed attempts", NULL);
    size_t left = unread(f->b, "pub", &cp);
    free(said);
    config_free(&cfg);
    if (skipped != 1)
        fail_msg("the skip was said %zu times in the second the disk was full", skipped);
    assert_int_equal(left, 0);
}

/*
 * A consumer's thread is named "stream-" and as much of the consumer's name as fits Linux's 15
 * bytes, cut where a character ends: a name of '€' (3 bytes) has two whole ones there, where a
 * cut by bytes kept two and a half.
 */
static void test_a_consumer_thread_name_is_whole_characters(void **state)
{
    fx *f = *state;
    config cfg;
    char err[256] = "", name[16];
    load_fed_consumer_config(&cfg, 0);
    str_join(cfg.consumers[0].name, sizeof cfg.consumers[0].name,
             "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac", NULL);
    stream_consumer *sc =
        stream_consumer_start(f->b, &cfg, &cfg.consumers[0], NULL, err, sizeof err);
    if (!sc)
        fail_msg("stream_consumer_start: %s", err);
    bool named = test_thread_named("stream-", name);
    stream_consumer_stop(sc);
    config_free(&cfg);
    assert_true(named);
    assert_string_equal(name, "stream-\xe2\x82\xac\xe2\x82\xac");
}

/*
 * A creation the consumer read, whose publish the store failed, then removed in a damaged
 * database (no data left in its REMOVE record) before the next attempt: from there it never
 * builds, and it has its maximum_retry_attempts as any record that cannot be read. The failed
 * write is the store's trouble and used none of them: counted with them, the record was
 * skipped at its first attempt that could not read it, unretried.
 */
static void test_a_failed_write_uses_none_of_a_records_attempts(void **state)
{
    fx *f = *state;
    config cfg;
    char err[256] = "";
    load_fed_consumer_config(&cfg, 1);
    char id[37];
    create_task(f->s, TASK_NULL_TIME, id);
    int64_t seq = broker_last_seq(f->b);

    /* the consumer's first read is held with its snapshot taken: it reads the creation whole
     * while the task is removed meanwhile, and its publish fails */
    pthread_mutex_lock(&read_hold.mu);
    read_hold.at = read_hold.go = false;
    pthread_mutex_unlock(&read_hold.mu);
    atomic_store(&read_hold.armed, true);
    test_stderr cap;
    log_level was = log_threshold();
    log_setup(LOG_WARN, NULL);
    test_stderr_begin(&cap);
    stream_consumer *sc =
        stream_consumer_start(f->b, &cfg, &cfg.consumers[0], NULL, err, sizeof err);
    if (!sc) {
        free(test_stderr_end(&cap));
        log_setup(was, NULL);
        fail_msg("stream_consumer_start: %s", err);
    }
    pthread_mutex_lock(&read_hold.mu);
    while (!read_hold.at)
        pthread_cond_wait(&read_hold.cv, &read_hold.mu);
    remove_leaving_no_data(id);
    atomic_store(&fail_sql[0], "INSERT OR REPLACE INTO checkpoints");
    read_hold.go = true;
    pthread_cond_broadcast(&read_hold.cv);
    pthread_mutex_unlock(&read_hold.mu);

    int64_t cp = 0;
    for (int i = 0; i < 500 && cp < seq; i++) {
        unread(f->b, "pub", &cp);
        if (cp < seq)
            usleep(20 * 1000);
    }
    stream_consumer_stop(sc);
    char *said = test_stderr_end(&cap);
    log_setup(was, NULL);
    size_t failed = expect_logged(said, "publishing a batch failed; retrying", NULL);
    size_t retried = expect_logged(said, "a change record cannot be read; retrying", NULL);
    size_t skipped = expect_logged(said, "change record skipped after failed attempts", NULL);
    free(said);
    config_free(&cfg);
    assert_null(atomic_load(&fail_sql[0])); /* the publish failed */
    if (failed != 1 || retried != 1 || skipped != 1)
        fail_msg("after a failed publish, the record that no longer reads was retried %zu "
                 "time(s) of 1 and skipped %zu time(s) (%zu failed publish)",
                 retried, skipped, failed);
    assert_int_equal(cp, seq);
}

/* The store's commit listener of the test below, told of each batch, one whose commit failed
 * too: once armed, the write after the batch it is told of cannot begin. */
static atomic_bool begin_fails_next;

static void fail_the_next_begin(void *ctx, size_t writes, double seconds, bool durable)
{
    (void)ctx;
    (void)writes;
    (void)seconds;
    (void)durable;
    if (atomic_exchange(&begin_fails_next, false))
        atomic_store(&fail_sql[1], "BEGIN IMMEDIATE");
}

/* The consumer's place once it is at the log's end, waited for up to 10 s. */
static int64_t wait_consumed(broker *b, const char *consumer)
{
    int64_t cp = 0;
    for (int i = 0; i < 500; i++) {
        unread(b, consumer, &cp);
        if (cp == broker_last_seq(b))
            break;
        usleep(20 * 1000);
    }
    return cp;
}

/*
 * A consumer whose feed cannot be set at its start (the commit of the set fails) reads the log
 * unfed, and its start writes nothing more: the set is undone with its batch, in memory too, so
 * no feed is left to take back. The start used to unset it all the same, trying again for up to
 * 5 s while the store failed. Two creations after it each have one message: a feed left set
 * would have turned on at the consumer's publish at the log's end, and the writer fed the
 * second creation while the consumer read it from the log.
 */
static void test_a_feed_that_cannot_be_set_is_not_unset(void **state)
{
    fx *f = *state;
    static const store_listener l = {.committed = fail_the_next_begin};
    reopen(f, &l);
    config cfg;
    char err[256] = "";
    load_fed_consumer_config(&cfg, 0);
    atomic_store(&fail_sql[0], "COMMIT");
    atomic_store(&begin_fails_next, true);
    stream_consumer *sc =
        stream_consumer_start(f->b, &cfg, &cfg.consumers[0], NULL, err, sizeof err);
    const char *next_begin = atomic_exchange(&fail_sql[1], NULL);
    if (!sc)
        fail_msg("stream_consumer_start: %s", err);
    bool set_failed = atomic_load(&fail_sql[0]) == NULL, fed = broker_feed_on(f->b, "pub");
    char id[2][37];
    int64_t cp[2];
    for (int i = 0; i < 2; i++) {
        create_task(f->s, TASK_NULL_TIME, id[i]);
        cp[i] = wait_consumed(f->b, "pub");
    }
    stream_consumer_stop(sc);
    config_free(&cfg);
    assert_true(set_failed);
    assert_false(fed);
    if (!next_begin)
        fail_msg("the start wrote again after the feed could not be set");
    assert_int_equal(cp[0], broker_last_seq(f->b) - 1);
    assert_int_equal(cp[1], broker_last_seq(f->b));
    for (int i = 0; i < 2; i++)
        count_row("SELECT count(*) FROM messages WHERE task_id = ?1", id[i], 1);
}

/* The NOT NULL of the tasks table's type taken out of its schema, as in a damaged or
 * hand-edited database. Reopens the store, on the schema so edited. */
static void let_tasks_lose_their_type(fx *f)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    assert_int_equal(sqlite3_exec(db,
                                  "PRAGMA writable_schema = ON; UPDATE sqlite_schema SET sql = "
                                  "replace(sql, 'task_type TEXT NOT NULL', 'task_type TEXT') "
                                  "WHERE name = 'tasks'; PRAGMA writable_schema = OFF",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_changes(db), 1);
    sqlite3_close(db);
    reopen(f, NULL);
}

/* Task id's row without its type, as in a damaged or hand-edited database. */
static void lose_the_type_of(fx *f, const char *id)
{
    let_tasks_lose_their_type(f);
    assert_int_equal(
        test_sqlite_exec(db_path, "UPDATE tasks SET task_type = NULL WHERE id = ?1", id), 1);
}

/*
 * A creation whose task row lost its type is one the consumer cannot read: retried, then said at
 * ERROR with its sequence number and task id, and skipped. So it is when the writer's catch-up,
 * at the fed consumer's publish of the creation before it, meets it first: the feed turns off
 * and the consumer reads it itself. The catch-up fed it as it was, with an empty type, and moved
 * past it without a word.
 */
static void test_a_creation_without_its_type_is_said_after_a_catch_up(void **state)
{
    fx *f = *state;
    char id[3][37];
    create_task(f->s, TASK_NULL_TIME, id[0]);
    create_task(f->s, TASK_NULL_TIME, id[1]);
    lose_the_type_of(f, id[1]);
    char seq[24];
    snprintf(seq, sizeof seq, "\"sequence_number\":\"%lld\"", (long long)broker_last_seq(f->b));
    config cfg;
    char err[256] = "";
    load_fed_consumer_config(&cfg, 0);
    test_stderr cap;
    test_stderr_begin(&cap);
    stream_consumer *sc =
        stream_consumer_start(f->b, &cfg, &cfg.consumers[0], NULL, err, sizeof err);
    if (!sc) {
        free(test_stderr_end(&cap));
        fail_msg("stream_consumer_start: %s", err);
    }
    int64_t cp = wait_consumed(f->b, "pub");
    create_task(f->s, TASK_NULL_TIME, id[2]); /* fed */
    int64_t cp_after = wait_consumed(f->b, "pub");
    stream_consumer_stop(sc);
    char *said = test_stderr_end(&cap);
    config_free(&cfg);
    const char *skip = "change record skipped after failed attempts";
    size_t skipped = expect_logged(said, skip, seq);
    expect_logged(said, skip, id[1]);
    if (skipped != 1)
        fail_msg("the creation without its type was said %zu times at ERROR: %s", skipped, said);
    free(said);
    assert_int_equal(cp, broker_last_seq(f->b) - 1);
    assert_int_equal(cp_after, broker_last_seq(f->b));
    for (int i = 0; i < 3; i++)
        count_row("SELECT count(*) FROM messages WHERE task_id = ?1", id[i], i != 1);
}

/* Consumers "pub", fed (it tests eventName alone), and "all", which reads records whole (its
 * pattern is on eventSource): a record a batch, one it cannot read skipped at once. */
static void load_batch_of_one_configs(config *cfg)
{
    char err[256] = "";
    assert_true(config_defaults(cfg));
    if (!config_load_text(
            cfg,
            "{\"queues\":[{\"name\":\"q\"}],\"subscriptions\":[{\"queue\":\"q\"}],"
            "\"stream_consumers\":[{\"name\":\"pub\",\"batch_size\":1,"
            "\"maximum_retry_attempts\":0,\"filter_patterns\":[{\"eventName\":[\"INSERT\"]}]},"
            "{\"name\":\"all\",\"batch_size\":1,\"maximum_retry_attempts\":0,"
            "\"filter_patterns\":[{\"eventSource\":[\"taskd:store\"]}]}],\"handlers\":[]}",
            "test", err, sizeof err))
        fail_msg("config: %s", err);
}

/* A damage of a task's rows that leaves its task id or its type unfit for a task, in the task
 * row and in its change record alike, and the reason a reader gives for it. */
typedef struct unfit_damage {
    const char *edits[2];
    const char *reason;
} unfit_damage;

/* Run consumer cc until it has consumed the log to its end (*cp: its place then, waited for up
 * to 10 s), and stop it; what it logged meanwhile, to free. */
static char *consume_to_the_end(fx *f, const config *cfg, const consumer_config *cc, int64_t *cp)
{
    char err[256] = "";
    test_stderr cap;
    test_stderr_begin(&cap);
    stream_consumer *sc = stream_consumer_start(f->b, cfg, cc, NULL, err, sizeof err);
    if (!sc) {
        free(test_stderr_end(&cap));
        fail_msg("stream_consumer_start: %s", err);
    }
    *cp = wait_consumed(f->b, cc->name);
    stream_consumer_stop(sc);
    return test_stderr_end(&cap);
}

/*
 * Consumer cc, from the log's end, meets creations A, B and C, the first and last damaged as d
 * says: it skips them, each said once at ERROR with its sequence number and the reason, and
 * publishes B alone. A fed consumer reads A itself, and the writer's catch-up at the publish of
 * A's skip meets C, which it leaves to the consumer. The catch-up fed C cut to fit, its message
 * named for no task (C's id before the damage) or of another type; the consumer's own read
 * skipped A without a word, or, reading it whole, published it cut too.
 */
static void unfit_creations_are_skipped(fx *f, const config *cfg, const consumer_config *cc,
                                        const unfit_damage *d)
{
    assert_int_equal(broker_publish(f->b, cc->name, broker_last_seq(f->b), NULL, 0), STORE_OK);
    char id[3][37], seq[2][64], reason[128];
    for (int i = 0; i < 3; i++)
        create_task(f->s, TASK_NULL_TIME, id[i]);
    for (int k = 0; k < 2; k++) {
        int64_t at = broker_last_seq(f->b) - 2 + 2 * k;
        snprintf(seq[k], sizeof seq[k], "\"sequence_number\":\"%lld\"", (long long)at);
        for (int e = 0; e < 2; e++)
            assert_int_equal(test_sqlite_exec(db_path, d->edits[e], id[2 * k]), 1);
    }
    snprintf(reason, sizeof reason, "\"error\":\"%s\"", d->reason);
    int64_t cp;
    char *said = consume_to_the_end(f, cfg, cc, &cp);
    size_t skipped = expect_logged(said, "change record skipped after failed attempts", NULL);
    for (int k = 0; k < 2; k++) {
        char skip[256]; /* the skip's own line, not a retry's warning, gives the reason */
        snprintf(skip, sizeof skip, "%s,%s", seq[k], reason);
        expect_logged(said, "change record skipped after failed attempts", skip);
    }
    if (skipped != 2)
        fail_msg("%s: %zu skips said, want 2: %s", cc->name, skipped, said);
    free(said);
    assert_int_equal(cp, broker_last_seq(f->b));
    for (int i = 0; i < 3; i++)
        count_row("SELECT count(*) FROM messages WHERE substr(task_id, 1, 36) = ?1", id[i], i == 1);
}

/*
 * A creation whose task id or type does not fit a task, in a damaged database, is never
 * published cut to fit, whoever meets it: a consumer reading it by its fields or whole, or the
 * writer's catch-up; each skip is said once. Nor is one without its type published with an
 * empty one by a consumer reading it whole.
 */
static void test_a_creation_that_does_not_fit_a_task_is_skipped_and_said(void **state)
{
    fx *f = *state;
    let_tasks_lose_their_type(f);
    static const unfit_damage damages[] = {
        {{"UPDATE tasks SET task_type = NULL WHERE id = ?1",
          "UPDATE changes SET task_type = NULL WHERE task_id = ?1"},
         "its task has no type"},
        {{"UPDATE tasks SET id = id || '-0' WHERE id = ?1",
          "UPDATE changes SET task_id = task_id || '-0' WHERE task_id = ?1"},
         "its task id is not 36 characters long"},
        {{"UPDATE tasks SET task_type = task_type || hex(zeroblob(30)) WHERE id = ?1",
          "UPDATE changes SET task_type = task_type || hex(zeroblob(30)) WHERE task_id = ?1"},
         "its task type is longer than 64 characters"},
    };
    config cfg;
    load_batch_of_one_configs(&cfg);
    for (size_t c = 0; c < cfg.n_consumers; c++)
        for (size_t d = 0; d < sizeof damages / sizeof *damages; d++)
            unfit_creations_are_skipped(f, &cfg, &cfg.consumers[c], &damages[d]);
    config_free(&cfg);
}

/*
 * A creation written whole (as every record was before schema 5, or by hand) whose record reads
 * but makes no message: its image names a task id that does not fit a task, or holds data that
 * is not an object, in a damaged or hand-edited database. Whichever consumer meets it, reading
 * records whole or (its task row gone) by fields, cannot read it: it is skipped, said once at
 * ERROR with its sequence number and why, and the creations around it are published. Both
 * passed it over without a word, as a record their patterns left out.
 */
static void test_a_creation_that_makes_no_message_is_skipped_and_said(void **state)
{
    fx *f = *state;
    static const struct {
        const char *image, *reason;
    } damages[] = {
        {"{\"id\":{\"S\":\"x\"},\"task_type\":{\"S\":\"TASK1\"},\"data\":{\"M\":{}}}",
         "its task id is not 36 characters long"},
        {"{\"id\":{\"S\":\"0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e5f\"},\"task_type\":{\"S\":\"TASK1\"},"
         "\"data\":{\"S\":\"{}\"}}",
         "its task's data is not an object"},
    };
    config cfg;
    load_batch_of_one_configs(&cfg);
    for (size_t c = 0; c < cfg.n_consumers; c++)
        for (size_t d = 0; d < sizeof damages / sizeof *damages; d++) {
            const consumer_config *cc = &cfg.consumers[c];
            assert_int_equal(broker_publish(f->b, cc->name, broker_last_seq(f->b), NULL, 0),
                             STORE_OK);
            char id[2][37], skip[256];
            create_task(f->s, TASK_NULL_TIME, id[0]);
            assert_int_equal(test_sqlite_exec(db_path,
                                              "INSERT INTO changes (event_name, task_id, "
                                              "new_image, created_time) VALUES ('INSERT', "
                                              "json_extract(?1, '$.id.S'), ?1, 1)",
                                              damages[d].image),
                             1);
            reopen(f, NULL); /* the writer learns the log's end anew */
            snprintf(skip, sizeof skip, "\"sequence_number\":\"%lld\",\"error\":\"%s\"",
                     (long long)broker_last_seq(f->b), damages[d].reason);
            create_task(f->s, TASK_NULL_TIME, id[1]);
            int64_t cp;
            char *said = consume_to_the_end(f, &cfg, cc, &cp);
            size_t skipped =
                expect_logged(said, "change record skipped after failed attempts", skip);
            if (skipped != 1)
                fail_msg("%s: %zu skips said, want 1: %s", cc->name, skipped, said);
            free(said);
            assert_int_equal(cp, broker_last_seq(f->b));
            for (int i = 0; i < 2; i++)
                count_row("SELECT count(*) FROM messages WHERE task_id = ?1", id[i], 1);
        }
    config_free(&cfg);
}

/*
 * A consumer whose reads of the change log fail (an I/O error, for 3 s) tries again after a
 * back-off that grows from 0.2 s to 3.2 s, as after a failed write, and reads on once it can:
 * it tried again every 0.2 s, its warning said each time, five times a second for as long as
 * the disk failed.
 */
static void test_a_read_that_fails_backs_off(void **state)
{
    fx *f = *state;
    config cfg;
    load_batch_of_one_configs(&cfg);
    const consumer_config *cc = &cfg.consumers[1]; /* "all": not fed, it reads the log */
    char id[37];
    create_task(f->s, TASK_NULL_TIME, id);
    atomic_store(&failed_consumer_reads, 0);
    atomic_store(&consumer_reads_fail, true);
    char err[256] = "";
    test_stderr cap;
    log_level was = log_threshold();
    log_setup(LOG_WARN, NULL);
    test_stderr_begin(&cap);
    stream_consumer *sc = stream_consumer_start(f->b, &cfg, cc, NULL, err, sizeof err);
    if (!sc) {
        atomic_store(&consumer_reads_fail, false);
        free(test_stderr_end(&cap));
        log_setup(was, NULL);
        fail_msg("stream_consumer_start: %s", err);
    }
    usleep(3000 * 1000);
    atomic_store(&consumer_reads_fail, false);
    int failed = atomic_load(&failed_consumer_reads);
    int64_t cp = wait_consumed(f->b, cc->name);
    stream_consumer_stop(sc);
    char *said = test_stderr_end(&cap);
    log_setup(was, NULL);
    size_t warned = expect_logged(said, "cannot read the change stream", NULL);
    free(said);
    config_free(&cfg);
    /* at 0, 0.2, 0.6, 1.4 and 3 s; a loaded machine only makes them fewer */
    if (failed > 6 || warned > 7)
        fail_msg("%d failed reads in 3 s (%zu said), want at most 6", failed, warned);
    assert_int_equal(cp, broker_last_seq(f->b));
    count_row("SELECT count(*) FROM messages WHERE task_id = ?1", id, 1);
}

/*
 * A fed creation whose commit fails: the feed's take is finished as undone, the consumer's place
 * stays where the last commit left it, the feed stays on, and the next creation is fed as before
 * (once: the undone take is not finished again as committed).
 */
static void test_feed_in_a_failed_commit(void **state)
{
    fx *f = *state;
    queue_config q = make_queue("work", 30, 0, NULL, 0);
    fake_feed ff = {.q = &q};
    broker_feed feed = {"pub", fake_feed_take, fake_feed_finish, &ff};
    char a[37], b[37];
    create_task(f->s, TASK_NULL_TIME, a);
    assert_int_equal(broker_set_feed(f->b, &feed), STORE_OK);
    publish_next(f->b, "pub", NULL);
    assert_true(broker_feed_on(f->b, "pub"));
    int64_t cp = -1, last = broker_last_seq(f->b);

    atomic_store(&wal_full, true);
    store_new_task t = {.task_type = "TASK1", .data = "{}", .ttl = TASK_NULL_TIME};
    assert_int_not_equal(store_create_task(f->s, &t, (int64_t)time(NULL), b), STORE_OK);
    atomic_store(&wal_full, false);
    assert_int_equal(ff.takes, 1);
    assert_int_equal(ff.undone, 1);
    assert_int_equal(ff.committed, 0);
    assert_true(broker_feed_on(f->b, "pub"));
    assert_int_equal(broker_last_seq(f->b), last);
    assert_int_equal(unread(f->b, "pub", &cp), 0);
    assert_int_equal(cp, last);
    expect_stats(f->b, "work", 0, 0, 0);

    create_task(f->s, TASK_NULL_TIME, b);
    assert_int_equal(ff.takes, 2);
    assert_int_equal(ff.committed, 1);
    assert_int_equal(ff.undone, 1);
    assert_int_equal(unread(f->b, "pub", &cp), 0);
    assert_int_equal(cp, broker_last_seq(f->b));
    expect_stats(f->b, "work", 1, 0, 0);
    assert_int_equal(broker_unset_feed(f->b, "pub"), STORE_OK);
}

/*
 * A feed that turns off part-way through a batch (a take refused, as when it is out of memory)
 * after it fed the batch's first creation. The consumer, finding the feed off before the batch
 * commits, reads the log from the checkpoint the last commit left, finds nothing past it, and
 * publishes there, at what it takes for the log's end. That publish does not take the
 * checkpoint back behind the fed creation: the writer's catch-up feeds only the record the feed
 * could not take, and every task has one message.
 */
static void test_feed_off_part_way_through_a_batch(void **state)
{
    fx *f = *state;
    held_feed h;
    int64_t at;
    size_t behind;
    start_held_feed_reading(f, &h, &at, &behind);

    store_write w[2];
    creations_in_one_batch_the_second_refused(f, &h, w);
    int64_t last = broker_last_seq(f->b);
    assert_int_equal(behind, 0); /* the batch not committed: nothing past the held write's */
    assert_int_equal(at, last - 2);
    count_row("SELECT seq FROM checkpoints WHERE consumer = ?1", "pub", last - 1);

    /* the consumer's publish at what it read: on again, from where the feed left off */
    assert_int_equal(broker_publish(f->b, "pub", at, NULL, 0), STORE_OK);
    assert_true(broker_feed_on(f->b, "pub"));
    count_row("SELECT seq FROM checkpoints WHERE consumer = ?1", "pub", last);
    assert_int_equal(h.ff.takes, 3); /* the held write's, and each of the batch's once */
    count_row("SELECT count(*) FROM messages WHERE task_id = ?1", w[0].id, 1);
    count_row("SELECT count(*) FROM messages WHERE task_id = ?1", w[1].id, 1);
    expect_stats(f->b, "work", 3, 0, 0);
    assert_int_equal(broker_unset_feed(f->b, "pub"), STORE_OK);
    task_clear(&w[0].current);
    task_clear(&w[1].current);
}

/*
 * The writer's catch-up, at the fed consumer's publish behind the log's end, reads the creations
 * past it on the writer's connection. A column's text that SQLite cannot copy there for lack of
 * memory fails the publish (SQLite rolls the transaction back), and the publish made again feeds
 * the creation whole. Unchecked, an event name not copied made the creation another event's
 * record, passed over with the checkpoint moved past it (its task never sent), and a data, id
 * or type not copied was fed as missing. In a database of UTF-16 text every text read is a copy
 * SQLite makes.
 */
static void test_a_column_the_catch_up_cannot_copy_fails_the_publish(void **state)
{
    fx *f = *state;
    reopen_utf16(f);
    queue_config q = make_queue("work", 30, 0, NULL, 0);
    fake_feed ff = {.q = &q};
    broker_feed feed = {"pub", fake_feed_take, fake_feed_finish, &ff};
    const int cols[] = {1, 2, 16, 17}; /* event_name, task_id, the task's type and data */
    for (size_t i = 0; i < sizeof cols / sizeof *cols; i++) {
        assert_int_equal(broker_set_feed(f->b, &feed), STORE_OK); /* off until a publish */
        char id[37];
        create_task(f->s, TASK_NULL_TIME, id);
        int64_t last = broker_last_seq(f->b);
        ff.takes = ff.partial = ff.committed = 0;
        atomic_store(&fail_text_sql, CATCH_UP_SQL);
        atomic_store(&fail_text_of, cols[i]);
        store_rc rc = broker_publish(f->b, "pub", last - 1, NULL, 0);
        atomic_store(&fail_text_sql, NULL);
        if (atomic_load(&fail_text_of) != -1)
            fail_msg("column %d: the catch-up did not read its text", cols[i]);
        if (rc == STORE_OK || ff.takes || ff.partial)
            fail_msg("column %d not copied: the publish %s, %d creation(s) fed (%d committed), "
                     "%d without data, id or type",
                     cols[i], rc == STORE_OK ? "committed" : "failed", ff.takes, ff.committed,
                     ff.partial);
        count_row("SELECT coalesce(max(seq), 0) FROM checkpoints WHERE consumer = ?1", "pub",
                  last - 1);
        /* made again, it feeds the creation whole */
        assert_int_equal(broker_publish(f->b, "pub", last - 1, NULL, 0), STORE_OK);
        assert_true(broker_feed_on(f->b, "pub"));
        assert_int_equal(ff.takes, 1);
        assert_int_equal(ff.committed, 1);
        assert_int_equal(ff.partial, 0);
        count_row("SELECT seq FROM checkpoints WHERE consumer = ?1", "pub", last);
        count_row("SELECT count(*) FROM messages WHERE task_id = ?1", id, 1);
        assert_int_equal(broker_unset_feed(f->b, "pub"), STORE_OK);
    }
}

/* A consumer's read from a thread of its own, as the stream consumer makes it once it finds
 * the feed off: its place and the creations it would publish. */
static struct consumer_read {
    broker *b;
    pthread_t th;
    int64_t at;
    change_record *r;
    size_t n;
    store_rc rc;
} cread;

static void *consumer_read_main(void *arg)
{
    (void)arg;
    cread.rc = broker_read_changes(cread.b, "pub", 100, CHANGE_READ_INSERT_FIELDS, &cread.at,
                                   &cread.r, &cread.n);
    return NULL;
}

/* The feed refused (on the writer's thread, its batch not committed): the consumer starts its
 * read, which reads its checkpoint and is held before its records. */
static void start_a_held_read(void)
{
    pthread_mutex_lock(&read_hold.mu);
    read_hold.at = read_hold.go = false;
    pthread_mutex_unlock(&read_hold.mu);
    atomic_store(&read_hold.armed, true);
    assert_int_equal(pthread_create(&cread.th, NULL, consumer_read_main, NULL), 0);
    pthread_mutex_lock(&read_hold.mu);
    while (!read_hold.at)
        pthread_cond_wait(&read_hold.cv, &read_hold.mu);
    pthread_mutex_unlock(&read_hold.mu);
}

/*
 * The feed turns off part-way through a batch, as in test_feed_off_part_way_through_a_batch, and
 * the consumer that finds it off reads its checkpoint before the batch commits, and the records
 * after it once it has: the batch moved the checkpoint past the creation it fed and sent its
 * message. The checkpoint and the records are of one snapshot, so the consumer reads nothing
 * past its checkpoint and publishes there; read apart, it read the fed creation after the
 * checkpoint that came before it, and published its message a second time.
 */
static void test_a_read_across_a_commit_is_one_snapshot(void **state)
{
    fx *f = *state;
    held_feed h;
    start_held_feed(f, &h, 30);
    h.ff.refused = start_a_held_read;
    cread = (struct consumer_read){.b = f->b};

    store_write w[2];
    creations_in_one_batch_the_second_refused(f, &h, w);
    int64_t last = broker_last_seq(f->b);
    count_row("SELECT seq FROM checkpoints WHERE consumer = ?1", "pub", last - 1);
    /* committed: the read goes on to its records */
    pthread_mutex_lock(&read_hold.mu);
    read_hold.go = true;
    pthread_cond_broadcast(&read_hold.cv);
    pthread_mutex_unlock(&read_hold.mu);
    assert_int_equal(pthread_join(cread.th, NULL), 0);
    assert_int_equal(cread.rc, STORE_OK);
    assert_int_equal(cread.at, last - 2);

    /* the consumer publishes what it read, a message for each creation, and its place */
    broker_message m[2];
    for (size_t i = 0; i < cread.n && i < 2; i++)
        m[i] = (broker_message){&h.q, cread.r[i].insert.task_id, "TASK1", NULL, "{}", NULL};
    assert_true(cread.n <= 2);
    assert_int_equal(
        broker_publish(f->b, "pub", cread.n ? cread.r[cread.n - 1].seq : cread.at, m, cread.n),
        STORE_OK);
    change_records_free(cread.r, cread.n);
    assert_true(broker_feed_on(f->b, "pub"));
    count_row("SELECT seq FROM checkpoints WHERE consumer = ?1", "pub", last);
    count_row("SELECT count(*) FROM messages WHERE task_id = ?1", w[0].id, 1);
    count_row("SELECT count(*) FROM messages WHERE task_id = ?1", w[1].id, 1);
    assert_int_equal(cread.n, 0);
    expect_stats(f->b, "work", 3, 0, 0);
    assert_int_equal(broker_unset_feed(f->b, "pub"), STORE_OK);
    task_clear(&w[0].current);
    task_clear(&w[1].current);
}

/* A publish the test makes from a thread of its own while the writer is held, told queued once
 * the store has it: the store's submit is looked at through ops of the test's own meanwhile. */
static struct queued_publish {
    store *s;
    const store_ops *real;
    store_ops spy;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool queued;
    pthread_t th;
    int64_t seq;
    store_rc rc;
} qp = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void spy_submit(store *s, store_write *w)
{
    qp.real->submit(s, w);
    pthread_mutex_lock(&qp.mu);
    qp.queued = true;
    pthread_cond_broadcast(&qp.cv);
    pthread_mutex_unlock(&qp.mu);
}

static void *publisher_main(void *arg)
{
    (void)arg;
    qp.rc = broker_publish(broker_of(qp.s), "pub", qp.seq, NULL, 0);
    return NULL;
}

/* Start run on a thread of its own (*th), and return once the write it makes is queued in qp.s,
 * whose submit is looked at through ops of the test's own meanwhile. */
static void start_queued(pthread_t *th, void *(*run)(void *))
{
    qp.queued = false;
    qp.real = qp.s->ops;
    qp.spy = *qp.real;
    qp.spy.submit = spy_submit;
    qp.s->ops = &qp.spy;
    assert_int_equal(pthread_create(th, NULL, run, NULL), 0);
    pthread_mutex_lock(&qp.mu);
    while (!qp.queued)
        pthread_cond_wait(&qp.cv, &qp.mu);
    pthread_mutex_unlock(&qp.mu);
    qp.s->ops = qp.real;
}

/* while_held: the publish, two records past the log's end, queued first in the next batch */
static void queue_publish_past_the_end(void)
{
    qp.seq = broker_last_seq(broker_of(qp.s)) + 2;
    start_queued(&qp.th, publisher_main);
}

/*
 * A publish of the fed consumer undone after it wrote its checkpoint (its catch-up cannot read
 * the log), with the feed on, then creations fed in the same batch up to the seq that publish
 * named: the checkpoint is saved with them. The undone publish gives the feed back the
 * checkpoint its row has; kept at the publish's seq, the feed would have taken the row for
 * saved there already, and left it behind the records fed (read again after a restart).
 */
static void test_an_undone_publish_gives_the_feed_back_its_saved_checkpoint(void **state)
{
    fx *f = *state;
    held_feed h;
    start_held_feed(f, &h, 30);

    qp.s = f->s;
    atomic_store(&fail_sql[0], CATCH_UP_SQL);
    store_write w[2];
    make_creations(w, 2);
    submit_as_one_batch(f, &h.g, w, 2, queue_publish_past_the_end);
    assert_int_equal(pthread_join(qp.th, NULL), 0);
    assert_null(atomic_load(&fail_sql[0])); /* the catch-up's read failed */
    assert_int_equal(h.g.writes, 3);        /* one batch, the publish first */
    assert_int_not_equal(qp.rc, STORE_OK);
    assert_int_equal(w[0].rc, STORE_OK);
    assert_int_equal(w[1].rc, STORE_OK);
    int64_t last = broker_last_seq(f->b);
    assert_int_equal(last, qp.seq);
    assert_true(broker_feed_on(f->b, "pub"));
    count_row("SELECT seq FROM checkpoints WHERE consumer = ?1", "pub", last);
    assert_int_equal(broker_unset_feed(f->b, "pub"), STORE_OK);
    task_clear(&w[0].current);
    task_clear(&w[1].current);
}

/* The creations and the stop of the test below, queued while the writer is held: the two
 * creations first, then the stop of the feed from a thread of its own (broker_unset_feed() waits
 * for its batch), told queued as qp's publish is. */
static store_batch stop_batch;
static store_write stop_creations[2];
static pthread_t stop_thread;
static store_rc stop_rc;

static void *unset_main(void *arg)
{
    (void)arg;
    stop_rc = broker_unset_feed(broker_of(qp.s), "pub");
    return NULL;
}

static void queue_creations_then_the_stop(void)
{
    store_batch_init(&stop_batch);
    make_creations(stop_creations, 2);
    for (size_t i = 0; i < 2; i++)
        store_batch_submit(&stop_batch, qp.s, &stop_creations[i]);
    start_queued(&stop_thread, unset_main);
}

/* The creations and the stop made one batch, while_held queuing them: waits for them all. */
static void creations_and_the_stop_in_one_batch(fx *f, gate *g, void (*while_held)(void))
{
    qp.s = f->s;
    submit_as_one_batch(f, g, NULL, 0, while_held);
    store_batch_wait(&stop_batch);
    assert_int_equal(pthread_join(stop_thread, NULL), 0);
    assert_int_equal(g->writes, 3); /* one batch: the two creations, then the stop */
}

/*
 * The fed consumer stopped (broker_unset_feed()) in the batch that fed it creations: their
 * messages commit, and so does the checkpoint past them. Left where the last commit had it, a
 * restart would have the consumer read those creations again and publish them a second time.
 */
static void test_a_stop_in_a_fed_batch_saves_the_checkpoint(void **state)
{
    fx *f = *state;
    held_feed h;
    start_held_feed(f, &h, 30);

    creations_and_the_stop_in_one_batch(f, &h.g, queue_creations_then_the_stop);
    assert_int_equal(stop_rc, STORE_OK);
    assert_int_equal(stop_creations[0].rc, STORE_OK);
    assert_int_equal(stop_creations[1].rc, STORE_OK);
    assert_false(broker_feed_on(f->b, "pub"));
    assert_int_equal(h.ff.takes, 3); /* the held write's creation, and the batch's two */
    assert_int_equal(h.ff.committed, 3);
    for (size_t i = 0; i < 2; i++)
        count_row("SELECT count(*) FROM messages WHERE task_id = ?1", stop_creations[i].id, 1);
    int64_t last = broker_last_seq(f->b);
    count_row("SELECT seq FROM checkpoints WHERE consumer = ?1", "pub", last);

    reopen(f, NULL); /* a restart: the consumer reads from its checkpoint, and nothing is left */
    int64_t cp = -1;
    assert_int_equal(unread(f->b, "pub", &cp), 0);
    assert_int_equal(cp, last);
    task_clear(&stop_creations[0].current);
    task_clear(&stop_creations[1].current);
}

static void queue_creations_then_the_stop_and_fail_the_commit(void)
{
    queue_creations_then_the_stop();
    atomic_store(&fail_sql[0], "COMMIT"); /* the held batch's is done: the next batch's */
}

/*
 * A stop of the fed consumer in a batch whose commit fails is undone with it: the consumer is
 * still fed, and the stop made again stops the feed. The rollback gave the feed back its place
 * and turned it on again but left it without a consumer, so that the stop made again found none
 * fed and changed nothing: the writer went on feeding the consumer that had stopped (in taskd,
 * freed), whose checkpoint it no longer saved, and a restart published those creations again.
 */
static void test_a_stop_in_a_failed_commit_leaves_the_consumer_fed(void **state)
{
    fx *f = *state;
    held_feed h;
    start_held_feed(f, &h, 30);
    int64_t last = broker_last_seq(f->b);

    creations_and_the_stop_in_one_batch(f, &h.g, queue_creations_then_the_stop_and_fail_the_commit);
    assert_null(atomic_load(&fail_sql[0])); /* the commit failed */
    assert_int_not_equal(stop_rc, STORE_OK);
    assert_int_not_equal(stop_creations[0].rc, STORE_OK);
    assert_int_not_equal(stop_creations[1].rc, STORE_OK);
    assert_int_equal(h.ff.takes, 3); /* the held write's creation, and the batch's two, undone */
    assert_int_equal(h.ff.undone, 2);
    assert_true(broker_feed_on(f->b, "pub"));
    assert_int_equal(broker_last_seq(f->b), last + 1);
    count_row("SELECT seq FROM checkpoints WHERE consumer = ?1", "pub", last + 1);

    /* the stop made again stops it: a creation after it is the consumer's to read */
    assert_int_equal(broker_unset_feed(f->b, "pub"), STORE_OK);
    assert_false(broker_feed_on(f->b, "pub"));
    char b[37];
    create_task(f->s, TASK_NULL_TIME, b);
    assert_int_equal(h.ff.takes, 3);
    count_row("SELECT count(*) FROM messages WHERE task_id = ?1", b, 0);
    int64_t cp = -1;
    assert_int_equal(unread(f->b, "pub", &cp), 1);
    assert_int_equal(cp, last + 1);
    task_clear(&stop_creations[0].current);
    task_clear(&stop_creations[1].current);
}

/* The creations and the publish of the test below, queued while the writer is held: the two
 * creations first, then the consumer's publish at qp.seq from a thread of its own. */
static store_batch fed_batch;
static store_write fed_creations[2];

static void queue_creations_then_the_publish(void)
{
    store_batch_init(&fed_batch);
    make_creations(fed_creations, 2);
    for (size_t i = 0; i < 2; i++)
        store_batch_submit(&fed_batch, qp.s, &fed_creations[i]);
    start_queued(&qp.th, publisher_main);
}

/* A refused take's: the commit of its batch fails (set after the consumer's read, whose
 * transaction ends with a COMMIT of its own). */
static void fail_the_next_commit(void)
{
    atomic_store(&fail_sql[0], "COMMIT");
}

/*
 * The feed turns off in a batch whose commit then fails (a take refused, then the disk), and the
 * rollback turns it on again: the consumer, which found it off meanwhile, read nothing past its
 * place. Then one batch after a held write's creation: two creations, the second's take refused
 * when refuse_second, and the consumer's publish at that place.
 */
static void publish_in_a_batch_of_creations(fx *f, held_feed *h, bool refuse_second)
{
    int64_t at;
    size_t behind;
    start_held_feed_reading(f, h, &at, &behind);
    h->ff.refuse = true;
    h->ff.refused = fail_the_next_commit;
    store_new_task t = {.task_type = "TASK1", .data = "{}", .ttl = TASK_NULL_TIME};
    char a[37];
    assert_int_not_equal(store_create_task(f->s, &t, (int64_t)time(NULL), a), STORE_OK);
    assert_null(atomic_load(&fail_sql[0])); /* the commit failed */
    h->ff.refuse = false;
    h->ff.read_at = NULL;
    h->ff.refused = NULL;
    int64_t last = broker_last_seq(f->b);
    assert_int_equal(behind, 0);
    assert_int_equal(at, last);
    assert_true(broker_feed_on(f->b, "pub")); /* on again with the rollback */

    /* the held write's creation is the next take, then the batch's */
    h->ff.refuse_nth = refuse_second ? h->ff.calls + 3 : 0;
    qp.s = f->s;
    qp.seq = at;
    submit_as_one_batch(f, &h->g, NULL, 0, queue_creations_then_the_publish);
    store_batch_wait(&fed_batch);
    assert_int_equal(pthread_join(qp.th, NULL), 0);
    assert_int_equal(h->g.writes, 3); /* one batch: the two creations, then the publish */
    assert_int_equal(qp.rc, STORE_OK);
    assert_int_equal(fed_creations[0].rc, STORE_OK);
    assert_int_equal(fed_creations[1].rc, STORE_OK);
}

/*
 * That publish lands after creations the writer fed in its own batch. It does not take the
 * checkpoint back behind them: the row still had the place the last commit saved, and a publish
 * that kept only that one had the catch-up feed the batch's creations again, each task's message
 * sent twice.
 */
static void test_a_publish_after_creations_fed_in_its_batch_keeps_their_place(void **state)
{
    fx *f = *state;
    held_feed h;
    publish_in_a_batch_of_creations(f, &h, false);
    assert_true(broker_feed_on(f->b, "pub"));
    for (size_t i = 0; i < 2; i++)
        count_row("SELECT count(*) FROM messages WHERE task_id = ?1", fed_creations[i].id, 1);
    assert_int_equal(h.ff.takes, 3); /* the held write's creation, and the batch's two once */
    count_row("SELECT seq FROM checkpoints WHERE consumer = ?1", "pub", broker_last_seq(f->b));
    expect_stats(f->b, "work", 3, 0, 0);
    assert_int_equal(broker_unset_feed(f->b, "pub"), STORE_OK);
    task_clear(&fed_creations[0].current);
    task_clear(&fed_creations[1].current);
}

/*
 * As above, the feed turning off again in the publish's own batch, at its second creation, before
 * the publish: the publish keeps the place of the first, which the feed took, and its catch-up
 * feeds the second alone. Kept at the row's place, the catch-up fed the first again.
 */
static void test_a_publish_after_the_feed_turned_off_in_its_batch_keeps_the_place_fed(void **state)
{
    fx *f = *state;
    held_feed h;
    publish_in_a_batch_of_creations(f, &h, true);
    assert_true(broker_feed_on(f->b, "pub")); /* on again at the publish */
    for (size_t i = 0; i < 2; i++)
        count_row("SELECT count(*) FROM messages WHERE task_id = ?1", fed_creations[i].id, 1);
    /* the held write's creation, the batch's first, and its second by the catch-up */
    assert_int_equal(h.ff.takes, 3);
    assert_int_equal(h.ff.calls, 4); /* and the second's refused take */
    count_row("SELECT seq FROM checkpoints WHERE consumer = ?1", "pub", broker_last_seq(f->b));
    expect_stats(f->b, "work", 3, 0, 0);
    assert_int_equal(broker_unset_feed(f->b, "pub"), STORE_OK);
    task_clear(&fed_creations[0].current);
    task_clear(&fed_creations[1].current);
}

/* The standing runner of the test below, sat down while its batch is held. */
static broker *rolled_back_broker;
static broker_standing *rolled_back_standing;

static void stand_and_fail_next_wal_write(void)
{
    broker_stand(rolled_back_broker, rolled_back_standing);
    fail_next_wal_write();
}

/*
 * A batch that SQLite rolls back itself (the disk full while a big write spills to the WAL,
 * once), with the feed on and a runner standing on the fed queue: nothing runs after the
 * rollback, where it would commit on its own. The runner's receive claims nothing (the held
 * write's message stays visible); the fed consumer's checkpoint is not saved past the log's end,
 * so a record written after a restart is read; and the seqs given next follow the log's, so the
 * writes after it commit.
 */
static void test_feed_and_standing_in_a_transaction_sqlite_rolled_back(void **state)
{
    fx *f = *state;
    held_feed h;
    start_held_feed(f, &h, 600);
    char b[37], c[37];

    broker_standing st = {.queue = &h.q, .max = 10};
    rolled_back_broker = f->b;
    rolled_back_standing = &st;
    char *big = json_of_size(4 << 20);
    store_write w[2] = {
        {.kind = STORE_WRITE_CREATE,
         .now = time(NULL),
         .create = {.task_type = "TASK1", .data = "{}", .ttl = TASK_NULL_TIME}},
        {.kind = STORE_WRITE_CREATE,
         .now = time(NULL),
         .create = {.task_type = "TASK1", .data = big, .ttl = TASK_NULL_TIME}},
    };
    submit_as_one_batch(f, &h.g, w, 2, stand_and_fail_next_wal_write);
    free(big);
    assert_false(atomic_load(&wal_full_once)); /* the spill met it */
    assert_int_not_equal(w[0].rc, STORE_OK);
    assert_int_not_equal(w[1].rc, STORE_OK);
    queue_message *got = NULL;
    size_t n = sit(f->b, &st, &got);
    queue_messages_free(got, n);
    assert_int_equal(n, 0);
    expect_stats(f->b, "work", 1, 0, 0);
    int64_t last = broker_last_seq(f->b);
    count_row("SELECT max(seq) FROM changes WHERE ?1 IS NOT NULL", "", last);
    count_row("SELECT seq FROM checkpoints WHERE consumer = ?1", "pub", last);

    create_task(f->s, TASK_NULL_TIME, b); /* fed, and committed */
    assert_int_equal(broker_last_seq(f->b), last + 1);
    expect_stats(f->b, "work", 2, 0, 0);
    assert_int_equal(broker_unset_feed(f->b, "pub"), STORE_OK);
    reopen(f, NULL); /* a restart: the consumer reads from its checkpoint */
    create_task(f->s, TASK_NULL_TIME, c);
    int64_t cp = -1;
    assert_int_equal(unread(f->b, "pub", &cp), 1);
    assert_int_equal(cp, last + 1);
}

static void test_feed(void **state)
{
    fx *f = *state;
    queue_config q = make_queue("work", 30, 0, NULL, 0);
    fake_feed ff = {.q = &q};
    broker_feed feed = {"pub", fake_feed_take, fake_feed_finish, &ff};
    char a[37], b[37], c[37], d[37], e[37];
    create_task(f->s, TASK_NULL_TIME, a); /* before the feed: the consumer's to read */
    assert_int_equal(broker_set_feed(f->b, &feed), STORE_OK);
    broker_feed other = {"other", fake_feed_take, fake_feed_finish, &ff};
    assert_int_equal(broker_set_feed(f->b, &other), STORE_CONFLICT);
    assert_false(broker_feed_on(f->b, "pub"));
    create_task(f->s, TASK_NULL_TIME, b); /* off: not fed */
    assert_int_equal(ff.takes, 0);
    expect_stats(f->b, "work", 0, 0, 0);

    /* the consumer publishes a's record; the writer catches it up with b's and feeds it */
    char first[37];
    publish_next(f->b, "pub", first);
    assert_string_equal(first, a);
    int64_t cp = -1;
    assert_true(broker_feed_on(f->b, "pub"));
    assert_false(broker_feed_on(f->b, "other"));
    assert_int_equal(ff.takes, 1);
    assert_int_equal(ff.committed, 1);
    expect_stats(f->b, "work", 1, 0, 0);
    assert_int_equal(unread(f->b, "pub", &cp), 0);
    assert_int_equal(cp, broker_last_seq(f->b));

    /* fed: a created task's message commits with it; a status change moves the place along */
    create_task(f->s, TASK_NULL_TIME, c);
    assert_int_equal(ff.takes, 2);
    assert_int_equal(ff.committed, 2);
    expect_stats(f->b, "work", 2, 0, 0);
    set_status(f->s, c, TASK_IN_PROGRESS, "", wall_ms());
    assert_int_equal(unread(f->b, "pub", &cp), 0);
    assert_int_equal(cp, broker_last_seq(f->b));
    int64_t lag = -1;
    assert_int_equal(broker_stream_lag(f->b, "pub", &lag), STORE_OK);
    assert_int_equal(lag, 0);
    queue_message *m = NULL;
    assert_int_equal(receive(f->b, &q, 10, &m, NULL), 2);
    assert_string_equal(m[0].task_id, b);
    assert_string_equal(m[1].task_id, c);
    assert_string_equal(m[1].body, "{}");
    queue_messages_free(m, 2);

    /* a message the queue refuses undoes the creation with it; the feed stays on */
    ff.bad_body = true;
    store_new_task t = {.task_type = "TASK1", .data = "{}", .ttl = TASK_NULL_TIME};
    int64_t last = broker_last_seq(f->b);
    assert_int_not_equal(store_create_task(f->s, &t, (int64_t)time(NULL), d), STORE_OK);
    assert_int_equal(ff.takes, 3);
    assert_int_equal(ff.undone, 1);
    assert_int_equal(broker_last_seq(f->b), last);
    assert_true(broker_feed_on(f->b, "pub"));
    ff.bad_body = false;

    /* a feed that cannot take a task turns off: the consumer reads that record itself */
    ff.refuse = true;
    create_task(f->s, TASK_NULL_TIME, d);
    assert_false(broker_feed_on(f->b, "pub"));
    assert_int_equal(unread(f->b, "pub", &cp), 1);
    ff.refuse = false;
    create_task(f->s, TASK_NULL_TIME, e); /* off: not fed either */
    assert_int_equal(ff.takes, 3);
    assert_int_equal(unread(f->b, "pub", &cp), 2);
    /* the consumer publishes d's record; the writer takes e and is on again */
    publish_next(f->b, "pub", first);
    assert_string_equal(first, d);
    assert_true(broker_feed_on(f->b, "pub"));
    assert_int_equal(ff.takes, 4);

    /* unset: nothing more is fed or finished */
    assert_int_equal(broker_unset_feed(f->b, "other"), STORE_OK); /* not the one fed */
    assert_true(broker_feed_on(f->b, "pub"));
    assert_int_equal(broker_unset_feed(f->b, "pub"), STORE_OK);
    assert_false(broker_feed_on(f->b, "pub"));
    create_task(f->s, TASK_NULL_TIME, e);
    assert_int_equal(ff.takes, 4);
    assert_int_equal(ff.committed + ff.undone, ff.takes);
}

static void test_publish_is_atomic(void **state)
{
    fx *f = *state;
    char id[37];
    create_task(f->s, TASK_NULL_TIME, id);
    queue_config q = make_queue("work", 30, 0, NULL, 0);
    queue_config other = make_queue("other", 30, 0, NULL, 0);
    broker_message m[3] = {
        {.queue = &q, .task_id = id, .body = "{\"a\":1}"},
        {.queue = &other, .task_id = id, .body = "{\"b\":2}"},
        {.queue = &q, .task_id = NULL, .body = "{\"c\":3}"},
    };
    assert_int_equal(broker_publish(f->b, "pub", 7, m, 3), STORE_OK);
    /* both visible once publish returns: the messages and the checkpoint */
    expect_stats(f->b, "work", 2, 0, 0);
    expect_stats(f->b, "other", 1, 0, 0);
    int64_t cp = -1;
    change_record *r = NULL;
    size_t n = 0;
    assert_int_equal(broker_read_changes(f->b, "pub", 10, CHANGE_READ_WHOLE, &cp, &r, &n),
                     STORE_OK);
    assert_int_equal(cp, 7);
    change_records_free(r, n);

    /* a batch whose second message cannot be stored (NULL body): nothing of it is kept */
    broker_message bad[2] = {
        {.queue = &q, .task_id = id, .body = "{\"d\":4}"},
        {.queue = &q, .task_id = id, .body = NULL},
    };
    assert_int_not_equal(broker_publish(f->b, "pub", 9, bad, 2), STORE_OK);
    expect_stats(f->b, "work", 2, 0, 0);
    assert_int_equal(broker_read_changes(f->b, "pub", 10, CHANGE_READ_WHOLE, &cp, &r, &n),
                     STORE_OK);
    assert_int_equal(cp, 7);
    change_records_free(r, n);

    /* and the store still works afterwards */
    assert_int_equal(broker_publish(f->b, "pub", 9, bad, 1), STORE_OK);
    expect_stats(f->b, "work", 3, 0, 0);
    assert_int_equal(broker_read_changes(f->b, "pub", 10, CHANGE_READ_WHOLE, &cp, &r, &n),
                     STORE_OK);
    assert_int_equal(cp, 9);
    change_records_free(r, n);
}

static void test_stream_lag(void **state)
{
    fx *f = *state;
    int64_t lag = -1;
    assert_int_equal(broker_stream_lag(f->b, "lagger", &lag), STORE_OK);
    assert_int_equal(lag, 0);

    char ids[3][37];
    for (int i = 0; i < 3; i++)
        create_task(f->s, TASK_NULL_TIME, ids[i]);
    assert_int_equal(broker_stream_lag(f->b, "lagger", &lag), STORE_OK);
    assert_int_equal(lag, 3);

    int64_t cp = -1;
    change_record *r = NULL;
    size_t n = 0;
    assert_int_equal(broker_read_changes(f->b, "lagger", 10, CHANGE_READ_WHOLE, &cp, &r, &n),
                     STORE_OK);
    assert_int_equal(n, 3);
    int64_t first = r[0].seq, last = r[2].seq;
    change_records_free(r, n);

    assert_int_equal(broker_publish(f->b, "lagger", first, NULL, 0), STORE_OK);
    assert_int_equal(broker_stream_lag(f->b, "lagger", &lag), STORE_OK);
    assert_int_equal(lag, 2);
    assert_int_equal(broker_publish(f->b, "lagger", last, NULL, 0), STORE_OK);
    assert_int_equal(broker_stream_lag(f->b, "lagger", &lag), STORE_OK);
    assert_int_equal(lag, 0);

    /* a status change appends a record: lag again; other consumers are unaffected */
    set_status(f->s, ids[0], TASK_IN_PROGRESS, "", (int64_t)time(NULL));
    assert_int_equal(broker_stream_lag(f->b, "lagger", &lag), STORE_OK);
    assert_int_equal(lag, 1);
    assert_int_equal(broker_stream_lag(f->b, "someone-else", &lag), STORE_OK);
    assert_int_equal(lag, 4);
}

/* ---- sweep ---- */

/* A change record a consumer has not read stays, however old (a taskd stopped for days with its
 * publisher behind: its tasks are still to be published); one every consumer has read goes. */
static void test_unread_records_outlive_a_day(void **state)
{
    fx *f = *state;
    char a[37], b[37];
    create_task(f->s, TASK_NULL_TIME, a);
    create_task(f->s, TASK_NULL_TIME, b);
    config c;
    assert_true(config_defaults(&c));
    c.event_replay = 86400; /* the longest the configuration takes: a read record 3 days old goes */
    snprintf(c.consumers[0].name, sizeof c.consumers[0].name, "day-consumer");
    int64_t cp = -1;
    change_record *r = NULL;
    size_t n = 0;
    assert_int_equal(broker_read_changes(f->b, "observer", 100, CHANGE_READ_WHOLE, &cp, &r, &n),
                     STORE_OK);
    assert_int_equal(n, 2);
    int64_t read_seq = r[0].seq, unread_seq = r[1].seq;
    change_records_free(r, n);
    assert_int_equal(broker_publish(f->b, "day-consumer", read_seq, NULL, 0), STORE_OK);
    sqlite3_stmt *age = own_stmt(SQLITE_OPEN_READWRITE,
                                 "UPDATE changes SET created_time = created_time - 3 * 86400");
    assert_int_equal(sqlite3_step(age), SQLITE_DONE);
    own_done(age);

    int64_t removed = -1;
    assert_int_equal(broker_sweep(f->b, &c, &removed, NULL), STORE_OK);
    assert_int_equal(broker_read_changes(f->b, "observer", 100, CHANGE_READ_WHOLE, &cp, &r, &n),
                     STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(r[0].seq, unread_seq);
    change_records_free(r, n);
    config_free(&c);
}

static void test_sweep(void **state)
{
    fx *f = *state;
    int64_t now = (int64_t)time(NULL);
    char gone[37], created[37], future[37];
    create_task(f->s, now - 10, gone);     /* finished, ttl past: removed */
    create_task(f->s, now - 10, created);  /* not finished, ttl past: kept */
    create_task(f->s, now + 3600, future); /* finished, ttl future: kept */
    complete_task(f->s, gone, now - 5);
    complete_task(f->s, future, now - 5);

    config c;
    assert_true(config_defaults(&c));
    c.event_replay = 0; /* records every consumer passed go at the next sweep */
    assert_int_equal(c.n_consumers, 1);
    snprintf(c.consumers[0].name, sizeof c.consumers[0].name, "sweep-consumer");

    /* the default grace (1 h) keeps the finished task a while longer */
    int64_t removed = -1;
    assert_int_equal(broker_sweep(f->b, &c, &removed, NULL), STORE_OK);
    assert_int_equal(removed, 0);
    expect_status(f->s, gone, TASK_COMPLETED, NULL);

    /* 3 INSERTs + 4 MODIFYs; the configured consumer has finished the first 4 */
    int64_t cp = -1;
    change_record *r = NULL;
    size_t n = 0;
    assert_int_equal(broker_read_changes(f->b, "observer", 100, CHANGE_READ_WHOLE, &cp, &r, &n),
                     STORE_OK);
    assert_int_equal(n, 7);
    int64_t passed = r[3].seq, kept_first = r[4].seq;
    change_records_free(r, n);
    assert_int_equal(broker_publish(f->b, "sweep-consumer", passed, NULL, 0), STORE_OK);

    c.retention_grace = 0;
    assert_int_equal(broker_sweep(f->b, &c, &removed, NULL), STORE_OK);
    assert_int_equal(removed, 1);
    task t;
    memset(&t, 0, sizeof t);
    assert_int_equal(store_get_task(f->s, gone, &t), STORE_NOT_FOUND);
    expect_status(f->s, created, TASK_CREATED, NULL);
    expect_status(f->s, future, TASK_COMPLETED, NULL);

    /* records up to the consumer's checkpoint are trimmed; a REMOVE record was appended */
    assert_int_equal(broker_read_changes(f->b, "observer", 100, CHANGE_READ_WHOLE, &cp, &r, &n),
                     STORE_OK);
    assert_int_equal(n, 4);
    assert_int_equal(r[0].seq, kept_first);
    json_t *rec = json_loads(r[3].json, 0, NULL);
    assert_non_null(rec);
    assert_string_equal(json_string_value(json_object_get(rec, "eventName")), "REMOVE");
    json_t *ddb = json_object_get(rec, "dynamodb");
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_object_get(ddb, "Keys"), "id"), "S")),
                        gone);
    assert_null(json_object_get(ddb, "NewImage"));
    json_t *old = json_object_get(ddb, "OldImage");
    assert_string_equal(json_string_value(json_object_get(json_object_get(old, "status"), "S")),
                        "COMPLETED");
    assert_string_equal(json_string_value(json_object_get(json_object_get(old, "id"), "S")), gone);
    json_decref(rec);
    change_records_free(r, n);

    /* sweeping again removes nothing more */
    assert_int_equal(broker_sweep(f->b, &c, &removed, NULL), STORE_OK);
    assert_int_equal(removed, 0);
    assert_int_equal(broker_read_changes(f->b, "observer", 100, CHANGE_READ_WHOLE, &cp, &r, &n),
                     STORE_OK);
    assert_int_equal(n, 4);
    change_records_free(r, n);
    config_free(&c);
}

/* ---- reads before writes: when is there work ---- */

static int64_t next_visible(broker *b, const char *queue)
{
    int64_t v = -1;
    assert_int_equal(broker_next_visible(b, queue, &v), STORE_OK);
    return v;
}

static void test_next_visible(void **state)
{
    fx *f = *state;
    queue_config q = make_queue("work", 30, 0, NULL, 0);
    queue_config slow = make_queue("slow", 30, 0, NULL, 1);
    assert_true(next_visible(f->b, "work") == INT64_MAX); /* empty */

    /* a message sent with a delay is due when the delay ends */
    int64_t before = wall_ms();
    publish_bodies(f->b, &slow, 0, 1, NULL);
    int64_t after = wall_ms();
    int64_t due = next_visible(f->b, "slow");
    assert_true(due >= before + 1000 && due <= after + 1000);
    assert_true(next_visible(f->b, "work") == INT64_MAX); /* another queue's messages */

    /* one ready now */
    publish_bodies(f->b, &q, 1, 2, NULL);
    assert_true(next_visible(f->b, "work") <= wall_ms());

    /* received: hidden for the visibility timeout, the earliest one counts */
    queue_message *m = NULL;
    assert_int_equal(receive(f->b, &q, 1, &m, NULL), 1);
    assert_true(next_visible(f->b, "work") <= wall_ms()); /* the second is still ready */
    queue_message *m2 = NULL;

    assert_int_equal(receive(f->b, &q, 1, &m2, NULL), 1);
    due = next_visible(f->b, "work");
    assert_true(due > wall_ms() && due >= m[0].sent_ms + 30000 && due <= wall_ms() + 30000);

    /* released: ready again at once; deleted: nothing left */
    assert_int_equal(broker_release(f->b, m2, 1), STORE_OK);
    assert_true(next_visible(f->b, "work") <= wall_ms());
    queue_message *m3 = NULL;
    assert_int_equal(receive(f->b, &q, 1, &m3, NULL), 1);
    assert_int_equal(broker_delete(f->b, m, 1), STORE_OK);
    assert_int_equal(broker_delete(f->b, m3, 1), STORE_OK);
    assert_true(next_visible(f->b, "work") == INT64_MAX);
    queue_messages_free(m, 1);
    queue_messages_free(m2, 1);
    queue_messages_free(m3, 1);
}

/* The messages generation now (broker_wait without waiting). */
/* The messages generation once every commit so far has woken its waiters. */
static uint64_t messages_gen(broker *b)
{
    settle_wakeups(b);
    uint64_t gen = 0;
    broker_wait(b, false, &gen, 0);
    return gen;
}

static void test_which_commits_wake_runners(void **state)
{
    fx *f = *state;
    char id[37];
    create_task(f->s, TASK_NULL_TIME, id);
    queue_config q = make_queue("work", 1, 1, "dlq", 0);

    uint64_t g = messages_gen(f->b);
    publish_bodies(f->b, &q, 0, 1, id);
    assert_true(messages_gen(f->b) != g); /* sent */

    /* a receive hides: nothing new to receive, nobody woken */
    g = messages_gen(f->b);
    queue_message *m = NULL;
    assert_int_equal(receive(f->b, &q, 1, &m, NULL), 1);
    assert_true(messages_gen(f->b) == g);
    queue_message *none = NULL;
    assert_int_equal(receive(f->b, &q, 1, &none, NULL), 0); /* an empty receive neither */
    assert_true(messages_gen(f->b) == g);
    assert_int_equal(broker_extend(f->b, m, 1, 1, NULL), STORE_OK); /* nor keeping it hidden */
    assert_true(messages_gen(f->b) == g);
    queue_messages_free(m, 1);

    /* the visibility timeout passes (no wake-up: runners sleep until next_visible); the next
     * receive moves it to the dead-letter queue, where it is visible at once: that wakes */
    sleep_ms(1100);
    assert_true(messages_gen(f->b) == g);
    assert_int_equal(receive(f->b, &q, 1, &none, NULL), 0);
    assert_true(messages_gen(f->b) != g);
    assert_true(next_visible(f->b, "dlq") <= wall_ms());
    expect_status(f->s, id, TASK_FAILED, "dead-letter queue dlq");
}

static bool sweep_due(broker *b, const config *c)
{
    bool due = false;
    assert_int_equal(broker_sweep_due(b, c, &due), STORE_OK);
    return due;
}

/* Make the change record seq seconds older than it was written. */
static void age_record(int64_t seq, int seconds)
{
    sqlite3_stmt *age =
        own_stmt(SQLITE_OPEN_READWRITE,
                 "UPDATE changes SET created_time = created_time - ?2 WHERE seq = ?1");
    sqlite3_bind_int64(age, 1, seq);
    sqlite3_bind_int(age, 2, seconds);
    assert_int_equal(sqlite3_step(age), SQLITE_DONE);
    own_done(age);
}

/* Records every consumer has passed outlive them by event_replay seconds, so that a
 * GET /events client that reconnects within them resumes where it was, not from a reset. */
static void test_passed_records_are_kept_for_the_replay(void **state)
{
    fx *f = *state;
    config c;
    assert_true(config_defaults(&c));
    assert_int_equal(c.event_replay, 60);
    char id[37];
    create_task(f->s, (int64_t)time(NULL) + 3600, id);
    create_task(f->s, (int64_t)time(NULL) + 3600, id);
    int64_t oldest = -1, newest = -1;
    assert_int_equal(broker_change_bounds(f->b, &oldest, &newest), STORE_OK);
    assert_int_equal(broker_publish(f->b, c.consumers[0].name, newest, NULL, 0), STORE_OK);

    /* passed, but just written: nothing due, and a sweep keeps them */
    assert_false(sweep_due(f->b, &c));
    int64_t removed = -1;
    assert_int_equal(broker_sweep(f->b, &c, &removed, NULL), STORE_OK);
    int64_t first = -1, last = -1;
    assert_int_equal(broker_change_bounds(f->b, &first, &last), STORE_OK);
    assert_int_equal(first, oldest);

    /* the second one a replay old (its write's time a second before the first's, say): kept
     * while the first is, or the log would have a hole no reset tells of */
    age_record(newest, 60);
    assert_int_equal(broker_sweep(f->b, &c, &removed, NULL), STORE_OK);
    count_row("SELECT count(*) FROM changes WHERE ?1 IS NOT NULL", "", 2);

    /* the first one a replay old too: both go */
    age_record(oldest, 60);
    assert_true(sweep_due(f->b, &c));
    assert_int_equal(broker_sweep(f->b, &c, &removed, NULL), STORE_OK);
    assert_int_equal(broker_change_bounds(f->b, &first, &last), STORE_OK);
    assert_int_equal(first, last + 1); /* none kept */
    assert_false(sweep_due(f->b, &c));

    /* no replay: passed records go at the next sweep */
    create_task(f->s, (int64_t)time(NULL) + 3600, id);
    assert_int_equal(broker_change_bounds(f->b, &oldest, &newest), STORE_OK);
    assert_int_equal(broker_publish(f->b, c.consumers[0].name, newest, NULL, 0), STORE_OK);
    assert_false(sweep_due(f->b, &c));
    c.event_replay = 0;
    assert_true(sweep_due(f->b, &c));
    assert_int_equal(broker_sweep(f->b, &c, &removed, NULL), STORE_OK);
    assert_int_equal(broker_change_bounds(f->b, &first, &last), STORE_OK);
    assert_int_equal(first, last + 1);
    config_free(&c);
}

static void test_sweep_due(void **state)
{
    fx *f = *state;
    config c;
    assert_true(config_defaults(&c));
    c.event_replay = 0; /* records every consumer passed go at the next sweep */
    assert_int_equal(c.n_consumers, 1);
    c.retention_grace = 0;
    assert_false(sweep_due(f->b, &c)); /* a fresh database */

    /* a change record the consumer has not read: kept, nothing to sweep */
    int64_t now = (int64_t)time(NULL);
    char id[37];
    create_task(f->s, now + 3600, id);
    assert_false(sweep_due(f->b, &c));
    /* once read, it can be trimmed */
    assert_int_equal(broker_publish(f->b, c.consumers[0].name, 1, NULL, 0), STORE_OK);
    assert_true(sweep_due(f->b, &c));
    int64_t removed = -1;
    assert_int_equal(broker_sweep(f->b, &c, &removed, NULL), STORE_OK);
    assert_false(sweep_due(f->b, &c));

    /* a finished task past its ttl (and the grace) */
    char old[37];
    create_task(f->s, now - 10, old);
    complete_task(f->s, old, now - 5);
    int64_t cp = -1;
    change_record *r = NULL;
    size_t n = 0;
    assert_int_equal(broker_read_changes(f->b, "observer", 100, CHANGE_READ_WHOLE, &cp, &r, &n),
                     STORE_OK);
    assert_true(n > 0);
    int64_t last = r[n - 1].seq;
    change_records_free(r, n);
    /* not yet read by the consumer: only the task makes the sweep due */
    assert_true(sweep_due(f->b, &c));
    c.retention_grace = 3600; /* within the grace: not yet */
    assert_false(sweep_due(f->b, &c));
    c.retention_grace = 0;
    assert_int_equal(broker_publish(f->b, c.consumers[0].name, last, NULL, 0), STORE_OK);
    assert_int_equal(broker_sweep(f->b, &c, &removed, NULL), STORE_OK);
    assert_int_equal(removed, 1);
    /* the sweep's own REMOVE record is past the checkpoint: nothing due until it is read */
    assert_false(sweep_due(f->b, &c));

    /* a message past its retention */
    queue_config q = make_queue("work", 30, 0, NULL, 0);
    q.retention = 0;
    publish_bodies(f->b, &q, 100, 1, NULL);
    sleep_ms(5);
    assert_true(sweep_due(f->b, &c));
    assert_int_equal(broker_sweep(f->b, &c, &removed, NULL), STORE_OK);
    expect_stats(f->b, "work", 0, 0, 0);
    config_free(&c);
}

static off_t wal_size(void)
{
    char wal[160];
    snprintf(wal, sizeof wal, "%s-wal", db_path);
    struct stat st;
    return stat(wal, &st) == 0 ? st.st_size : -1;
}

/* A WAL grown past the limit while a reader held an old snapshot is cut back to the limit
 * (16 MiB, WAL_SIZE_LIMIT) once it starts over, instead of keeping its size on disk. */
static void test_wal_cut_back_after_a_burst(void **state)
{
    fx *f = *state;
    const off_t limit = 16 << 20;
    sqlite3 *r = NULL;
    assert_int_equal(sqlite3_open_v2(db_path, &r, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(r, "BEGIN; SELECT count(*) FROM tasks;", NULL, NULL, NULL),
                     SQLITE_OK); /* holds its snapshot: no checkpoint can start the WAL over */
    char *data = json_of_size(200 << 10);
    char id[37];
    for (int i = 0; i < 100; i++) { /* 20 MiB of data in the task rows */
        store_new_task t = {.task_type = "TASK1", .data = data};
        assert_int_equal(store_create_task(f->s, &t, (int64_t)time(NULL), id), STORE_OK);
    }
    free(data);
    off_t grown = wal_size();
    if (grown <= limit)
        print_error("WAL %lld bytes after the burst\n", (long long)grown);
    assert_true(grown > limit);
    assert_int_equal(sqlite3_exec(r, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(r);
    /* the next commits checkpoint it all, start the WAL over and cut it back */
    for (int i = 0; i < 50 && wal_size() > limit; i++)
        create_task(f->s, 0, id);
    off_t after = wal_size();
    if (after > limit)
        print_error("WAL %lld bytes after the burst, %lld after the reader left\n",
                    (long long)grown, (long long)after);
    assert_true(after >= 0 && after <= limit);
}

/*
 * However much is due, a sweep step does a bounded amount (500 expired tasks, 500 expired
 * messages, 5,000 seqs of the change log), so that it holds the writer for milliseconds; it
 * says there is more, and the steps together sweep it all.
 */
static void test_sweep_steps_are_bounded(void **state)
{
    fx *f = *state;
    int64_t now = (int64_t)time(NULL);
    enum { EXPIRED = 1100, MORE = 2000, MESSAGES = 1100 };
    for (int i = 0; i < EXPIRED; i++) { /* 3 records each */
        char id[37];
        create_task(f->s, now - 10, id);
        complete_task(f->s, id, now - 5);
    }
    for (int i = 0; i < MORE; i++) { /* 1 record each: 5,300 in all */
        char id[37];
        create_task(f->s, now + 3600, id);
    }
    queue_config q = make_queue("work", 30, 0, NULL, 0);
    q.retention = 0;
    for (int i = 0; i < MESSAGES; i += 8)
        publish_bodies(f->b, &q, i, MESSAGES - i < 8 ? MESSAGES - i : 8, NULL);
    sleep_ms(5);

    config c;
    assert_true(config_defaults(&c));
    c.event_replay = 0; /* records every consumer passed go at the next sweep */
    c.retention_grace = 0;
    int64_t last = broker_last_seq(f->b), oldest = -1, newest = -1;
    assert_int_equal(last, 3 * EXPIRED + MORE);
    assert_int_equal(broker_publish(f->b, c.consumers[0].name, last, NULL, 0), STORE_OK);

    /* tasks 500, 500, 100; messages the same; the log's 5,300 passed records in two steps */
    int64_t removed[3] = {-1, -1, -1};
    bool more[3] = {false, false, true};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(broker_sweep(f->b, &c, &removed[i], &more[i]), STORE_OK);
        if (i == 0) { /* the log's first 5,000 seqs went */
            assert_int_equal(broker_change_bounds(f->b, &oldest, &newest), STORE_OK);
            assert_int_equal(oldest, 5001);
        }
    }
    assert_int_equal(removed[0], 500);
    assert_int_equal(removed[1], 500);
    assert_int_equal(removed[2], EXPIRED - 1000);
    assert_true(more[0]);
    assert_true(more[1]);
    assert_false(more[2]);
    expect_stats(f->b, "work", 0, 0, 0);
    /* what is left of the log: the sweep's REMOVE records, which the consumer has not read */
    assert_int_equal(broker_change_bounds(f->b, &oldest, &newest), STORE_OK);
    assert_int_equal(oldest, last + 1);
    assert_int_equal(newest, last + EXPIRED);
    assert_false(sweep_due(f->b, &c));
    config_free(&c);
}

/* A finished task past its ttl is swept once more than retention_grace has passed since it
 * finished, not in the second it is exactly that old (README, "retention_grace"): the due check,
 * whose conditions are the sweep's, says so at the bound, looking again if the clock's second
 * moved meanwhile; then the sweep deletes it. */
static void test_a_task_is_swept_once_more_than_the_grace_has_passed(void **state)
{
    fx *f = *state;
    int64_t finished = clock_unix_s() - 10;
    char id[37];
    create_task(f->s, finished - 10, id);
    complete_task(f->s, id, finished);
    config c;
    assert_true(config_defaults(&c));
    bool at = true, past = false;
    for (int64_t now = 0; now != clock_unix_s();) {
        now = clock_unix_s();
        c.retention_grace = now - finished; /* it finished exactly the grace ago */
        at = sweep_due(f->b, &c);
        c.retention_grace--;
        past = sweep_due(f->b, &c);
    }
    assert_false(at);
    assert_true(past);
    int64_t removed = -1;
    assert_int_equal(broker_sweep(f->b, &c, &removed, NULL), STORE_OK);
    assert_int_equal(removed, 1);
    config_free(&c);
}

/*
 * A finished task past its ttl whose row cannot be read (a damaged database: its data kept apart,
 * and that row gone) is said once, with its id, and passed over: 500 of them at the front of the
 * sweep's order (a whole step's worth) held back every task after them, for good. The sweep
 * deletes the later tasks, and neither it nor its due check looks at the unreadable ones again.
 */
static void test_the_sweep_passes_over_a_task_it_cannot_read(void **state)
{
    fx *f = *state;
    int64_t now = (int64_t)time(NULL);
    enum { DAMAGED = 500, LATER = 3 };
    /* made in one batch, finished and damaged by hand: first in ttl order */
    store_write *w = calloc(DAMAGED, sizeof *w);
    assert_non_null(w);
    store_batch batch;
    store_batch_init(&batch);
    for (int i = 0; i < DAMAGED; i++) {
        w[i] = (store_write){.kind = STORE_WRITE_CREATE,
                             .now = now,
                             .create = {.task_type = "TASK1", .data = "{}", .ttl = now - 100}};
        store_batch_submit(&batch, f->s, &w[i]);
    }
    store_batch_wait(&batch);
    for (int i = 0; i < DAMAGED; i++)
        assert_int_equal(w[i].rc, STORE_OK);
    char first[37];
    memcpy(first, w[0].id, sizeof first);
    free(w);
    char ttl[24];
    snprintf(ttl, sizeof ttl, "%lld", (long long)(now - 100));
    assert_int_equal(test_sqlite_exec(f->path,
                                      "UPDATE tasks SET status = 'COMPLETED', finished_time = "
                                      "ttl + 95, data_apart = 1 WHERE ttl = ?1",
                                      ttl),
                     DAMAGED);
    for (int i = 0; i < LATER; i++) {
        char id[37];
        create_task(f->s, now - 10, id);
        complete_task(f->s, id, now - 5);
    }
    config c;
    assert_true(config_defaults(&c));
    c.retention_grace = 0;

    test_stderr cap;
    test_stderr_begin(&cap);
    int64_t removed = 0;
    bool more = true;
    for (int step = 0; step < 4 && more; step++) {
        int64_t n = -1;
        assert_int_equal(broker_sweep(f->b, &c, &n, &more), STORE_OK);
        removed += n;
    }
    char *log = test_stderr_end(&cap);
    assert_false(more);
    assert_int_equal(removed, LATER);
    count_row("SELECT count(*) FROM tasks WHERE ?1 IS NOT NULL", "", DAMAGED);
    /* each said once, with its id */
    assert_int_equal(expect_logged(log, "cannot be read; the sweep passes over it", first),
                     DAMAGED);
    free(log);

    /* nothing left to sweep but them: not due, and a sweep says none of them again */
    assert_false(sweep_due(f->b, &c));
    test_stderr_begin(&cap);
    assert_int_equal(broker_sweep(f->b, &c, &removed, &more), STORE_OK);
    log = test_stderr_end(&cap);
    assert_int_equal(removed, 0);
    assert_false(more);
    expect_not_logged(log, "cannot be read");
    free(log);
    config_free(&c);
}

/* The task created last (the greatest id) takes id with an 'x' after it, as in a hand-edited
 * database: its id is 37 characters long, and its first 36 name task id. */
static void give_the_last_task_a_longer_id_of(const char *id)
{
    assert_int_equal(test_sqlite_exec(db_path,
                                      "UPDATE tasks SET id = ?1 || 'x' "
                                      "WHERE id = (SELECT max(id) FROM tasks)",
                                      id),
                     1);
}

/*
 * A finished task past its ttl whose id was made longer than a task's by hand is said once, with
 * its whole id and why, and passed over by the sweep, as a row it cannot read; the task its first
 * 36 characters name stays. Its id was cut to fit: the sweep deleted that other task, not yet
 * past its ttl, with a REMOVE record of it, and left the damaged row.
 */
static void test_the_sweep_passes_over_an_id_longer_than_a_task_s(void **state)
{
    fx *f = *state;
    int64_t now = (int64_t)time(NULL);
    char kept[37], damaged[37], whole[38];
    create_task(f->s, now + 3600, kept);
    complete_task(f->s, kept, now - 5);
    create_task(f->s, now - 10, damaged);
    complete_task(f->s, damaged, now - 5);
    give_the_last_task_a_longer_id_of(kept);
    snprintf(whole, sizeof whole, "%sx", kept);
    int64_t last = broker_last_seq(f->b);
    config c;
    assert_true(config_defaults(&c));
    c.retention_grace = 0;

    test_stderr cap;
    test_stderr_begin(&cap);
    int64_t removed = -1;
    bool more = true;
    store_rc rc = broker_sweep(f->b, &c, &removed, &more);
    char *log = test_stderr_end(&cap);
    assert_int_equal(rc, STORE_OK);
    assert_int_equal(removed, 0);
    count_row("SELECT count(*) FROM tasks WHERE id = ?1", kept, 1);
    assert_int_equal(broker_last_seq(f->b), last); /* no REMOVE */
    expect_status(f->s, kept, TASK_COMPLETED, "done");
    assert_int_equal(expect_logged(log, "the sweep passes over it", whole), 1);
    expect_logged(log, "the sweep passes over it", "its task id is not 36 characters long");
    free(log);
    count_row("SELECT count(*) FROM tasks WHERE id = ?1", whole, 1);
    config_free(&c);
}

/*
 * A lapsed claim whose task id was made longer than a task's by hand is said once, with its whole
 * id, and passed over by the end of leases; the next step says nothing of it again. Its id was
 * cut to fit: the step tried to end the lease of the task its first 36 characters name, whose
 * own lease was renewed (refused as such), and nothing was said of the damaged row.
 */
static void test_a_lapsed_claim_of_an_id_longer_than_a_task_s_is_passed_over(void **state)
{
    fx *f = *state;
    int64_t now = (int64_t)time(NULL);
    char kept[37], damaged[37], whole[38];
    create_task(f->s, TASK_NULL_TIME, kept);
    create_task(f->s, TASK_NULL_TIME, damaged);
    /* both leases end at now + 10: the damaged row's read as the kept task's would end that */
    const char *ids[] = {kept, damaged};
    for (int i = 0; i < 2; i++) {
        store_update u = {.id = ids[i],
                          .status = TASK_IN_PROGRESS,
                          .status_msg = "working",
                          .claim_key = "k",
                          .claim_expires = now + 10};
        assert_int_equal(store_update_task(f->s, &u, now, NULL), STORE_OK);
    }
    give_the_last_task_a_longer_id_of(kept);
    snprintf(whole, sizeof whole, "%sx", kept);
    /* the kept task's lease is renewed: only the damaged row's has run out at now + 11 */
    assert_int_equal(test_sqlite_exec(db_path,
                                      "UPDATE tasks SET claim_expires = claim_expires + 3600 "
                                      "WHERE id = ?1",
                                      kept),
                     1);

    size_t ended = 99;
    bool more = true;
    test_stderr cap;
    test_stderr_begin(&cap);
    store_rc rc = store_end_expired_claims(f->s, now + 11, 10, &ended, &more, NULL);
    char *log = test_stderr_end(&cap);
    assert_int_equal(rc, STORE_OK);
    assert_int_equal(ended, 0);
    expect_status(f->s, kept, TASK_IN_PROGRESS, "working");
    assert_int_equal(expect_logged(log, "the end of leases passes over it", whole), 1);
    free(log);
    test_stderr_begin(&cap);
    assert_int_equal(store_end_expired_claims(f->s, now + 11, 10, &ended, &more, NULL), STORE_OK);
    log = test_stderr_end(&cap);
    assert_int_equal(ended, 0);
    expect_not_logged(log, "passes over it");
    free(log);
}

/* A task in progress (its id into id) whose client claim's lease ends at lease_end. */
static void lapse_a_claim(store *s, int64_t now, int64_t lease_end, char id[37])
{
    create_task(s, TASK_NULL_TIME, id);
    store_update u = {.id = id,
                      .status = TASK_IN_PROGRESS,
                      .status_msg = "working",
                      .claim_key = "k",
                      .claim_expires = lease_end};
    assert_int_equal(store_update_task(s, &u, now, NULL), STORE_OK);
}

/* The same, its id made longer than a task's, as a damaged database holds; its whole id into
 * whole. */
static void lapse_a_claim_of_a_longer_id(store *s, int64_t now, int64_t lease_end, char whole[38])
{
    char id[37];
    lapse_a_claim(s, now, lease_end, id);
    give_the_last_task_a_longer_id_of(id);
    snprintf(whole, 38, "%sx", id);
}

typedef struct lease_end {
    store *s;
    int64_t now;
    store_rc rc;
    size_t ended;
} lease_end;

static void *end_leases(void *arg)
{
    lease_end *e = arg;
    bool more;
    e->rc = store_end_expired_claims(e->s, e->now, 10, &e->ended, &more, NULL);
    return NULL;
}

/*
 * Two ends of leases at once, each of which finds the same damaged row (a lapsed claim of an id
 * longer than a task's) before either passes over it, say it once, and count it once: the next
 * damaged row found is said as the second. Each pass looked for the row among those passed over
 * before its read only, and both added it, said it and counted it.
 */
static void test_two_ends_of_leases_at_once_say_a_damaged_row_once(void **state)
{
    fx *f = *state;
    int64_t now = (int64_t)time(NULL);
    char whole[38], next[38];
    lapse_a_claim_of_a_longer_id(f->s, now, now + 10, whole);

    pthread_mutex_lock(&meet.mu);
    meet.want = 2;
    meet.came = 0;
    pthread_mutex_unlock(&meet.mu);
    atomic_store(&meet.sql, "SELECT id, claim_expires FROM tasks");
    lease_end ends[2] = {{.s = f->s, .now = now + 11}, {.s = f->s, .now = now + 11}};
    pthread_t threads[2];
    test_stderr cap;
    test_stderr_begin(&cap);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, end_leases, &ends[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(threads[i], NULL);
    char *log = test_stderr_end(&cap);
    atomic_store(&meet.sql, NULL);
    assert_int_equal(meet.came, 2); /* both had begun their read before either went on */
    for (int i = 0; i < 2; i++) {
        assert_int_equal(ends[i].rc, STORE_OK);
        assert_int_equal(ends[i].ended, 0);
    }
    size_t said = expect_logged(log, "the end of leases passes over it", whole);
    if (said != 1)
        fail_msg("the damaged row said %zu times by two ends of leases at once:\n%s", said, log);
    expect_logged(log, whole, "\"unreadable_tasks\":\"1\"");
    free(log);

    lapse_a_claim_of_a_longer_id(f->s, now, now + 10, next);
    test_stderr_begin(&cap);
    ends[0].rc = STORE_ERROR;
    end_leases(&ends[0]);
    log = test_stderr_end(&cap);
    assert_int_equal(ends[0].rc, STORE_OK);
    assert_int_equal(expect_logged(log, "the end of leases passes over it", next), 1);
    expect_logged(log, next, "\"unreadable_tasks\":\"2\"");
    expect_not_logged(log, whole);
    free(log);
}

/*
 * A step of the end of leases that finds a damaged row (a lapsed claim of an id longer than a
 * task's, read first) still ends as many leases as it may, two here, in that step. The read was
 * bounded to max and as many rows as were passed over before it: the row it passed over itself
 * took a place, and the second lease was left running until the next interval.
 */
static void test_a_damaged_lapsed_claim_takes_no_place_of_a_step(void **state)
{
    fx *f = *state;
    int64_t now = (int64_t)time(NULL);
    char whole[38], ids[2][37];
    lapse_a_claim_of_a_longer_id(f->s, now, now + 5, whole); /* the first to lapse */
    for (int i = 0; i < 2; i++)
        lapse_a_claim(f->s, now, now + 10, ids[i]);
    size_t ended = 99;
    bool more = false;
    test_stderr cap;
    test_stderr_begin(&cap);
    store_rc rc = store_end_expired_claims(f->s, now + 11, 2, &ended, &more, NULL);
    char *log = test_stderr_end(&cap);
    assert_int_equal(rc, STORE_OK);
    assert_int_equal(expect_logged(log, "the end of leases passes over it", whole), 1);
    free(log);
    if (ended != 2)
        fail_msg("a step of two that passed over a damaged row ended %zu leases", ended);
    for (int i = 0; i < 2; i++)
        expect_status(f->s, ids[i], TASK_FAILED, "claim expired");
}

/* Whether path is there (lstat()). */
static bool is_there(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/*
 * An open that made the database file (it was not there) and then failed (the commit of its
 * migrations) leaves no file behind, nor its -wal or -shm: the next start would find a file
 * made by a taskd that never served. One that was there before the open stays, whatever the
 * open did to it.
 */
static void test_a_failed_open_removes_the_file_it_made(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_broker_made.XXXXXX", path[64], wal[72], shm[72];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/tasks.db", dir);
    snprintf(wal, sizeof wal, "%s-wal", path);
    snprintf(shm, sizeof shm, "%s-shm", path);
    store_sqlite_options o = {.path = path, .sync = STORE_SYNC_NORMAL, .busy_timeout_ms = 5000};
    for (int there = 0; there < 2; there++) {
        if (there) { /* an empty file, which SQLite reads as an empty database */
            FILE *fp = fopen(path, "w");
            assert_non_null(fp);
            fclose(fp);
        }
        char err[512] = "";
        atomic_store(&exec_fails, "COMMIT"); /* the migrations' */
        store *s = store_sqlite_open(&o, err, sizeof err);
        bool armed = atomic_exchange(&exec_fails, NULL) != NULL;
        if (s)
            store_close(s);
        assert_false(armed); /* the migration was made, and failed */
        assert_null(s);
        if (!strstr(err, "cannot migrate ") || !strstr(err, " from version 0 to "))
            fail_msg("the open's error: %s", err);
        if (is_there(path) != (there == 1) || is_there(wal) || is_there(shm))
            fail_msg("a failed open of a file %s: the file %s, its -wal %s, its -shm %s",
                     there ? "there before" : "it made", is_there(path) ? "left" : "removed",
                     is_there(wal) ? "left" : "not there", is_there(shm) ? "left" : "not there");
    }
    /* the file that stayed opens */
    store *s = open_db(path, NULL);
    assert_non_null(s);
    store_close(s);
    assert_int_equal(remove_dir(dir), 0);
}

/*
 * An open whose file is removed between its open and its lock (another start made the file,
 * failed, removed it and let go of its lock) locks the file the path names, not the one removed:
 * a second open of the path finds it in use. It locked the removed file, while SQLite made another
 * at the path, which the second open locked and served too.
 */
static void test_an_open_locks_the_file_the_path_names(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_broker_lock.XXXXXX", path[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/tasks.db", dir);
    FILE *fp = fopen(path, "w"); /* the other start's, as it made it */
    assert_non_null(fp);
    fclose(fp);
    atomic_store(&removed_as_locked, path);
    store *s = open_db(path, NULL);
    assert_null(atomic_load(&removed_as_locked));
    assert_non_null(s);
    store_sqlite_options o = {.path = path, .sync = STORE_SYNC_NORMAL, .busy_timeout_ms = 5000};
    char err[512] = "";
    store *second = store_sqlite_open(&o, err, sizeof err);
    if (second) {
        store_close(second);
        store_close(s);
        fail_msg("a second open of a database served: the first held a lock on a removed file");
    }
    if (!strstr(err, "another taskd is serving it"))
        fail_msg("the second open's error: %s", err);
    store_close(s);
    assert_int_equal(remove_dir(dir), 0);
}

/* ---- wake-ups ---- */

typedef struct waker {
    broker *b;
    store *s;
    const queue_config *q;
    int delay_ms;
    bool create; /* create a task (a change) instead of publishing a message */
    store_rc rc;
} waker;

static void *waker_main(void *arg)
{
    waker *w = arg;
    sleep_ms(w->delay_ms);
    if (w->create) {
        store_new_task t = {.task_type = "TASK1", .data = "{}", .ttl = TASK_NULL_TIME};
        char id[37];
        w->rc = store_create_task(w->s, &t, (int64_t)time(NULL), id);
    } else {
        broker_message m = {.queue = w->q, .task_id = NULL, .body = "{}"};
        w->rc = broker_publish(w->b, "waker", 1, &m, 1);
    }
    return NULL;
}

/* What the listener sees of the broker's change generation while a commit is told to it. */
typedef struct order_probe {
    broker *b;
    uint64_t gen_seen;
    int calls;
} order_probe;

static void probe_changed(void *ctx, const char *task_type, task_status status, bool created)
{
    (void)task_type, (void)status, (void)created;
    order_probe *p = ctx;
    uint64_t g = 0;
    broker_wait(p->b, true, &g, 0); /* gen 0: only reads the current generation */
    p->gen_seen = g;
    p->calls++;
}

/* A commit's after-work (the cache forgetting its tasks, the listener counting them) comes
 * before its wake-ups: a waiter woken by the commit (GET ?wait=) must not read the task from
 * the cache as it was before. */
static void test_commit_wakes_after_the_cache_forgot(void **state)
{
    fx *f = *state;
    order_probe p = {0};
    store_listener l = {.changed = probe_changed, .ctx = &p};
    reopen(f, &l);
    p.b = f->b;
    uint64_t before = 0;
    broker_wait(f->b, true, &before, 0);
    char id[37];
    create_task(f->s, TASK_NULL_TIME, id);
    assert_int_equal(p.calls, 1);
    assert_int_equal(p.gen_seen, before); /* not woken yet while the after-work runs */
    uint64_t after = 0;
    settle_wakeups(f->b);
    broker_wait(f->b, true, &after, 0);
    assert_true(after > before); /* and woken once it is done */
}

/* A new task, IN_PROGRESS, read once so that the cache keeps it as such. */
static void create_in_progress_cached(store *s, char id[37], int64_t now)
{
    create_task(s, TASK_NULL_TIME, id);
    set_status(s, id, TASK_IN_PROGRESS, "", now);
    task t = {0};
    assert_int_equal(store_get_task(s, id, &t), STORE_OK);
    assert_int_equal(t.status, TASK_IN_PROGRESS);
    task_clear(&t);
}

/* A reader that follows the change log, as the events thread does for GET ?wait=. */
typedef struct follower {
    store *s;
    broker *b;
    int64_t after; /* the log's end before the first write: records after it are followed */
    atomic_bool done;
    int finished_seen, stale;
    char stale_status[16];
} follower;

static void *follower_main(void *arg)
{
    follower *fl = arg;
    int64_t after = fl->after;
    while (!atomic_load(&fl->done)) {
        change_row_copy *rows = NULL;
        size_t n = 0;
        if (broker_changes_after(fl->b, after, 100, &rows, &n) != STORE_OK)
            continue;
        for (size_t i = 0; i < n; i++) {
            after = rows[i].seq;
            if (!rows[i].status || strcmp(rows[i].status, "COMPLETED") != 0)
                continue;
            fl->finished_seen++;
            task t = {0};
            if (store_get_task(fl->s, rows[i].task_id, &t) == STORE_OK &&
                t.status != TASK_COMPLETED) {
                fl->stale++;
                snprintf(fl->stale_status, sizeof fl->stale_status, "%s",
                         task_status_name(t.status));
            }
            task_clear(&t);
        }
        change_rows_free(rows, n);
    }
    return NULL;
}

/* Whoever sees a commit's change record reads the task as that commit left it, never as the
 * cache held it before: the writer holds the cache's slots across its commit. */
static void test_change_record_readers_read_the_commit(void **state)
{
    fx *f = *state;
    /* the log's end taken here, not by the thread: it may start after the first commits */
    follower fl = {.s = f->s, .b = f->b, .after = broker_last_seq(f->b)};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, follower_main, &fl), 0);
    int64_t now = (int64_t)time(NULL);
    for (int i = 0; i < 300; i++) {
        char id[37];
        create_in_progress_cached(f->s, id, now);
        set_status(f->s, id, TASK_COMPLETED, "done", now);
    }
    settle_wakeups(f->b);
    for (int i = 0; i < 2000 && fl.finished_seen < 300; i++)
        sleep_ms(10);
    atomic_store(&fl.done, true);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(fl.finished_seen, 300);
    if (fl.stale)
        fail_msg("%d of 300 tasks read %s after their COMPLETED record was seen", fl.stale,
                 fl.stale_status);
}

/* A read of a task that comes after an update of it was submitted answers the update, however
 * soon: the update holds the task's cache slot from its submit to its commit. A commit slower
 * than the read's wait (TASK_CACHE_HOLD_WAIT_MS: a slow disk, a sanitizer build on a busy
 * machine) is not waited for; a read that answers the old status must have waited that long. */
static void test_read_after_submit_sees_the_update(void **state)
{
    fx *f = *state;
    int64_t now = (int64_t)time(NULL);
    int late = 0;
    for (int i = 0; i < 50; i++) {
        char id[37];
        create_in_progress_cached(f->s, id, now);
        store_batch b;
        store_batch_init(&b);
        store_write w = {.kind = STORE_WRITE_UPDATE,
                         .now = now,
                         .update = {.id = id, .status = TASK_COMPLETED, .status_msg = "done"}};
        store_batch_submit(&b, f->s, &w);
        task t = {0};
        int64_t t0 = clock_mono_ns();
        assert_int_equal(store_get_task(f->s, id, &t), STORE_OK); /* the commit may be pending */
        int64_t waited_ms = (clock_mono_ns() - t0) / 1000000;
        if (t.status != TASK_COMPLETED && waited_ms < TASK_CACHE_HOLD_WAIT_MS)
            fail_msg("task %d read %s after %lld ms, its COMPLETED update submitted before", i,
                     task_status_name(t.status), (long long)waited_ms);
        late += t.status != TASK_COMPLETED;
        task_clear(&t);
        store_batch_wait(&b);
        assert_int_equal(w.rc, STORE_OK);
        task_clear(&w.current);
    }
    if (late)
        print_message("%d of 50 commits took longer than a read waits\n", late);
}

static void test_broker_wait(void **state)
{
    fx *f = *state;
    queue_config q = make_queue("work", 30, 0, NULL, 0);

    /* gen 0: returns at once with the current generation */
    uint64_t gen = 0;
    int64_t t0 = mono_ms();
    broker_wait(f->b, false, &gen, 5000);
    assert_true(gen != 0);
    assert_true(mono_ms() - t0 < 1000);

    /* a publish from another thread wakes a message waiter promptly */
    uint64_t before = gen;
    waker w = {.b = f->b, .s = f->s, .q = &q, .delay_ms = 100, .rc = STORE_ERROR};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, waker_main, &w), 0);
    t0 = mono_ms();
    broker_wait(f->b, false, &gen, 5000);
    int64_t waited = mono_ms() - t0;
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(w.rc, STORE_OK);
    assert_true(gen != before);
    if (waited >= 2000)
        print_error("broker_wait took %lld ms after a publish\n", (long long)waited);
    assert_true(waited < 2000);

    /* a new task wakes a change waiter */
    uint64_t cgen = 0;
    broker_wait(f->b, true, &cgen, 0);
    before = cgen;
    w = (waker){.b = f->b, .s = f->s, .q = &q, .delay_ms = 100, .create = true, .rc = STORE_ERROR};
    assert_int_equal(pthread_create(&th, NULL, waker_main, &w), 0);
    t0 = mono_ms();
    broker_wait(f->b, true, &cgen, 5000);
    waited = mono_ms() - t0;
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(w.rc, STORE_OK);
    assert_true(cgen != before);
    assert_true(waited < 2000);

    /* nothing happens: times out after about the timeout, generation unchanged */
    before = gen;
    t0 = mono_ms();
    broker_wait(f->b, false, &gen, 300);
    waited = mono_ms() - t0;
    assert_true(gen == before);
    assert_true(waited >= 250 && waited < 2000);

    /* a message-only commit does not end a wait for changes */
    before = cgen;
    w = (waker){.b = f->b, .s = f->s, .q = &q, .delay_ms = 50, .rc = STORE_ERROR};
    assert_int_equal(pthread_create(&th, NULL, waker_main, &w), 0);
    t0 = mono_ms();
    broker_wait(f->b, true, &cgen, 300);
    waited = mono_ms() - t0;
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(w.rc, STORE_OK);
    assert_true(cgen == before);
    assert_true(waited >= 250);

    /* broker_wake_all ends every wait */
    broker_wake_all(f->b);
    before = gen;
    t0 = mono_ms();
    broker_wait(f->b, false, &gen, 5000);
    assert_true(gen != before);
    assert_true(mono_ms() - t0 < 1000);
}

int main(int argc, char **argv)
{
    log_setup(LOG_ERROR, "test_broker"); /* keep the migration and "task failed" lines out */
    /* SQLite's allocations through failing_malloc() and failing_realloc(), none from a
     * connection's lookaside, which those never see */
    if (sqlite3_config(SQLITE_CONFIG_GETMALLOC, &sqlite_mem) != SQLITE_OK)
        return 1;
    sqlite3_mem_methods m = sqlite_mem;
    m.xMalloc = failing_malloc;
    m.xRealloc = failing_realloc;
    if (sqlite3_config(SQLITE_CONFIG_MALLOC, &m) != SQLITE_OK ||
        sqlite3_config(SQLITE_CONFIG_LOOKASIDE, 0, 0) != SQLITE_OK)
        return 1;
    /* Three groups of about equal time, each run as a CTest entry of its own (CMakeLists.txt),
     * so that none carries the whole program's time against its limit: under AddressSanitizer on
     * a loaded machine the program took 105 s of the 120 s. The queues: messages, dead letters,
     * redrives, durable commits, the open's queue clock. */
    const struct CMUnitTest queues[] = {
        cmocka_unit_test_setup_teardown(test_visibility_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_message_tracestate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_message_fields_that_do_not_fit_read_empty, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_delete_and_stale_receipt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_release, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_receive_that_cannot_tell_the_next_message_fails,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_dlq_move_fails_task, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dlq_move_keeps_finished_task, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dlq_move_in_mixed_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_message_lifetimes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_stale_receipt_spares_a_message_that_came_after,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_receipt_from_before_a_move_is_stale, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_dropped_message_leaves_with_its_receive, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_claim_again_is_a_change_of_its_task, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_receive_drops_what_is_past_its_retention, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_an_expired_copy_spares_a_task_another_runs, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_redrive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redrive_in_steps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_commit_is_timed_by_the_monotonic_clock, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_dead_letter_whose_task_id_does_not_fit_is_said,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_redrive_that_cannot_read_a_task, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redrive_over_a_task_that_cannot_be_read, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_redrive_in_steps_over_a_task_that_cannot_be_read,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_unread_records_outlive_a_day, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_write_that_cannot_be_undone_fails_its_batch, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_redrive_failing_part_way, setup_faulty,
                                        teardown_faulty),
        cmocka_unit_test_setup_teardown(
            test_a_dead_letter_whose_task_id_does_not_fit_is_said_once_moved, setup_faulty,
            teardown_faulty),
        cmocka_unit_test(test_sync_full_waits_for_the_disk),
        cmocka_unit_test(test_a_durable_batch_that_cannot_wait_for_the_disk_fails),
        cmocka_unit_test_setup_teardown(test_listing_by_one_filter_merges_its_legs, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_idempotency_keys_purged_in_steps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_key_of_an_id_longer_than_a_task_s_makes_a_new_task,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_an_extension_says_which_receipts_are_stale, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_depths_follow_every_move_and_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_the_writers_read_of_a_task_is_checked_to_its_last_column, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_counts_the_depths_as_a_read_of_every_row, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_open_warns_when_it_cannot_unhide, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_unhides_past_the_configured_timeouts, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_open_unhides_in_every_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_the_check_for_a_clock_gone_back_is_a_read_of_every_message, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_the_check_for_a_clock_gone_back_holds_to_every_row_at_random, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_warns_when_it_cannot_check_for_a_clock_gone_back,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_the_open_makes_a_dropped_index_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_read_connection_that_cannot_open_is_said, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_move_that_fails_keeps_the_note_of_the_queue_clock,
                                        setup, teardown),
    };
    /* Standing receives, starts and stops, the change log's records and the columns SQLite
     * cannot copy, the feed. */
    const struct CMUnitTest records[] = {
        cmocka_unit_test_setup_teardown(test_note_of_the_queue_clock_while_running, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_retention_expires_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_receivers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_standing_receive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_standing_receive_race, setup, teardown),
        cmocka_unit_test_setup_teardown(test_standing_wakes_only_whom_it_concerns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_standing_wakes_for_a_message_due_sooner, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_standing_receive_in_a_failed_commit, setup_faulty,
                                        teardown_faulty),
        cmocka_unit_test_setup_teardown(test_a_start_refused_on_a_full_disk, setup_faulty,
                                        teardown_faulty),
        cmocka_unit_test_setup_teardown(test_a_stop_that_cannot_close_the_database, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_recovery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_publish_is_atomic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_change_read_modes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_records_kept_as_parts_read_whole, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_column_the_catch_up_cannot_copy_fails_the_publish,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_body_sqlite_cannot_copy_fails_the_receive, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_change_kept_as_parts_without_a_status_is_unreadable,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_creation_whose_data_apart_is_gone_is_unreadable,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_row_without_its_status_or_message_reads_for_events,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_column_sqlite_cannot_copy_fails_the_read, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_a_status_sqlite_cannot_copy_leaves_the_message_to_fail_its_task, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_queue_the_sweep_cannot_copy_fails_the_sweep, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_task_the_redrive_cannot_copy_fails_the_step, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_queue_a_receipt_cannot_copy_fails_it, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_type_the_receive_cannot_copy_fails_it, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_task_column_sqlite_cannot_copy_fails_the_get, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_queue_the_open_cannot_copy_fails_its_read, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_key_whose_task_the_create_cannot_copy_fails_it,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_type_the_open_cannot_copy_fails_it, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_type_too_long_is_not_read_cut_at_open, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_newest_id_the_open_cannot_copy_fails_it, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_schema_the_open_cannot_copy_fails_it, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_lapsed_claim_the_read_cannot_copy_fails_it, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_records_with_data_apart_read_whole, setup, teardown),
        cmocka_unit_test_setup_teardown(test_records_with_images_read_as_before, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seqs_go_on_after_an_emptied_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_feed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_feed_in_a_failed_commit, setup_faulty,
                                        teardown_faulty),
        cmocka_unit_test_setup_teardown(test_a_consumer_thread_name_is_whole_characters, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_skip_that_cannot_be_written_backs_off, setup_faulty,
                                        teardown_faulty),
        cmocka_unit_test_setup_teardown(test_a_failed_write_uses_none_of_a_records_attempts, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_feed_that_cannot_be_set_is_not_unset, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_creation_without_its_type_is_said_after_a_catch_up,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_creation_that_does_not_fit_a_task_is_skipped_and_said, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_creation_that_makes_no_message_is_skipped_and_said,
                                        setup, teardown),
    };
    /* The feed's failures and snapshots, the wake-ups, the sweep, the WAL and rolled-back
     * transactions. */
    const struct CMUnitTest sweep[] = {
        cmocka_unit_test_setup_teardown(test_a_read_that_fails_backs_off, setup, teardown),
        cmocka_unit_test_setup_teardown(test_feed_off_part_way_through_a_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_read_across_a_commit_is_one_snapshot, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_an_undone_publish_gives_the_feed_back_its_saved_checkpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_stop_in_a_fed_batch_saves_the_checkpoint, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_stop_in_a_failed_commit_leaves_the_consumer_fed,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_publish_after_creations_fed_in_its_batch_keeps_their_place, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_publish_after_the_feed_turned_off_in_its_batch_keeps_the_place_fed, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_stream_lag, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sweep, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broker_wait, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_after_submit_sees_the_update, setup, teardown),
        cmocka_unit_test_setup_teardown(test_change_record_readers_read_the_commit, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_commit_wakes_after_the_cache_forgot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_next_visible, setup, teardown),
        cmocka_unit_test_setup_teardown(test_which_commits_wake_runners, setup, teardown),
        cmocka_unit_test_setup_teardown(test_passed_records_are_kept_for_the_replay, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_sweep_due, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sweep_steps_are_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_task_is_swept_once_more_than_the_grace_has_passed,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_the_sweep_passes_over_a_task_it_cannot_read, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_the_sweep_passes_over_an_id_longer_than_a_task_s,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_lapsed_claim_of_an_id_longer_than_a_task_s_is_passed_over, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_ends_of_leases_at_once_say_a_damaged_row_once,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_damaged_lapsed_claim_takes_no_place_of_a_step, setup,
                                        teardown),
        cmocka_unit_test(test_a_failed_open_removes_the_file_it_made),
        cmocka_unit_test(test_an_open_locks_the_file_the_path_names),
        cmocka_unit_test_setup_teardown(test_wal_cut_back_after_a_burst, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_failed_write_is_undone_alone_in_its_batch, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_transaction_sqlite_rolled_back_fails_its_batch,
                                        setup_faulty, teardown_faulty),
        cmocka_unit_test_setup_teardown(test_feed_and_standing_in_a_transaction_sqlite_rolled_back,
                                        setup_faulty, teardown_faulty),
    };
    const char *group = argc > 1 ? argv[1] : NULL; /* "queues", "records" or "sweep"; none: all */
    bool all = !group;
    if (!all && strcmp(group, "queues") != 0 && strcmp(group, "records") != 0 &&
        strcmp(group, "sweep") != 0) {
        fprintf(stderr, "usage: %s [queues|records|sweep]\n", argv[0]);
        return 2;
    }
    int failed = 0;
    if (all || strcmp(group, "queues") == 0)
        failed += cmocka_run_group_tests_name("queues", queues, NULL, NULL);
    if (all || strcmp(group, "records") == 0)
        failed += cmocka_run_group_tests_name("records", records, NULL, NULL);
    if (all || strcmp(group, "sweep") == 0)
        failed += cmocka_run_group_tests_name("sweep", sweep, NULL, NULL);
    return failed;
}
