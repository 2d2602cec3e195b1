/*
 * Unit tests for the local runner's life cycle over a real SQLite store: a stop ends its threads
 * at once, whenever it comes, and what a thread has claimed when it comes is run to its end.
 * broker_wait(), broker_receive_and_claim() and broker_sit() are wrapped (this test links with
 * -Wl,--wrap=...), so a stop can be made to arrive at one chosen moment:
 * - inside a runner thread's own call that notes the broker's generation, after the thread last
 *   looked at its stopping flag. A runner that looked at the flag before noting the generation
 *   would note the stop's generation and then sleep out its idle recheck (10 s) before it sees
 *   the stop;
 * - just after a receive has committed its claims, before any handler starts — the runner's own
 *   receive, or the standing one the writer made for it in the sending commit. A runner that
 *   gave such a batch back would leave its tasks IN_PROGRESS with nothing running them.
 * broker_extend() is wrapped too, to fail on demand, to count the extensions made, and to hold
 * one the runner's keeper makes as a writer slow to commit it would; and broker_release() and
 * broker_delete(), to fail on demand.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/config.h"
#include "core/sbuf.h"
#include "runner/handlers.h"
#include "runner/runner.h"
#include "store/broker.h"
#include "store/store.h"
#include "util/clock.h"
#include "support/proc_stat.h"
#include "support/stderr_capture.h"
#include "support/tmpdir.h"
#include "support_local/sqlite_store.h"

#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* The runner the wrapper stops, and whether it is to stop it on the next noting call. */
static _Atomic(runner *) stop_target;
static atomic_bool stop_armed;
static atomic_int stops_injected;

void __real_broker_wait(broker *b, bool changes, uint64_t *gen, int timeout_ms);
void __wrap_broker_wait(broker *b, bool changes, uint64_t *gen, int timeout_ms);

/* A call with timeout 0 only notes the generation: when armed, stop the runner just before. */
void __wrap_broker_wait(broker *b, bool changes, uint64_t *gen, int timeout_ms)
{
    if (timeout_ms == 0 && !changes && atomic_exchange(&stop_armed, false)) {
        runner_stop_receiving(atomic_load(&stop_target));
        atomic_fetch_add(&stops_injected, 1);
    }
    __real_broker_wait(b, changes, gen, timeout_ms);
}

/* When armed, stop the runner as soon as a receive has committed its claims. */
static atomic_bool stop_after_claim_armed;
/* When armed, a receive's hide runs out as soon as it has committed, and the receive returns once
 * the messages it got are in the dead-letter queue "dead" (another receive moved them). */
static atomic_bool hide_runs_out_armed;
static atomic_bool hide_ran_out; /* that receive is returning */
/* When armed, a receive that got messages (the thread's own, or its standing one) returns them
 * 1.5 s after its commit. */
static atomic_bool late_take_armed;
static void let_the_hide_run_out(broker *b, queue_message *m, size_t n);

/* Stop the target runner (waiting for the test to name it: a runner may receive as it starts). */
static void inject_stop(void)
{
    while (!atomic_load(&stop_target))
        usleep(1000);
    runner_stop_receiving(atomic_load(&stop_target));
    atomic_fetch_add(&stops_injected, 1);
}

store_rc __real_broker_receive_and_claim(broker *b, const queue_config *q, size_t max,
                                         unsigned hide_s, queue_message **out, size_t *n,
                                         int64_t *next_ms);
store_rc __wrap_broker_receive_and_claim(broker *b, const queue_config *q, size_t max,
                                         unsigned hide_s, queue_message **out, size_t *n,
                                         int64_t *next_ms);

store_rc __wrap_broker_receive_and_claim(broker *b, const queue_config *q, size_t max,
                                         unsigned hide_s, queue_message **out, size_t *n,
                                         int64_t *next_ms)
{
    store_rc rc = __real_broker_receive_and_claim(b, q, max, hide_s, out, n, next_ms);
    if (rc == STORE_OK && *n > 0 && atomic_exchange(&late_take_armed, false))
        usleep(1500000); /* taken 1.5 s after its commit, as a thread scheduled late takes it */
    if (rc == STORE_OK && *n > 0 && atomic_exchange(&stop_after_claim_armed, false))
        inject_stop();
    if (rc == STORE_OK && *n > 0 && atomic_exchange(&hide_runs_out_armed, false))
        let_the_hide_run_out(b, *out, *n);
    return rc;
}

void __real_broker_sit(broker *b, broker_standing *st, queue_message **out, size_t *n);
void __wrap_broker_sit(broker *b, broker_standing *st, queue_message **out, size_t *n);

/* The same for a standing receive: stop as soon as the thread has taken back its claims. */
static atomic_int stood_claims; /* batches a runner got from a standing receive */
static atomic_int stands;       /* standing receives left with the writer */

void __real_broker_stand(broker *b, broker_standing *s);
void __wrap_broker_stand(broker *b, broker_standing *s);

void __wrap_broker_stand(broker *b, broker_standing *s)
{
    __real_broker_stand(b, s);
    atomic_fetch_add(&stands, 1);
}

void __wrap_broker_sit(broker *b, broker_standing *st, queue_message **out, size_t *n)
{
    __real_broker_sit(b, st, out, n);
    if (*n > 0 && atomic_exchange(&late_take_armed, false))
        usleep(1500000); /* taken 1.5 s after the commit that received it */
    if (*n > 0)
        atomic_fetch_add(&stood_claims, 1);
    if (*n > 0 && atomic_exchange(&stop_after_claim_armed, false))
        inject_stop();
}

/* broker_extend(), broker_release() and broker_delete() calls still to fail (STORE_BUSY, as a
 * store that is busy answers). */
static atomic_int extends_to_fail, releases_to_fail, deletes_to_fail;

/* Take one of the failures *left says are still to come: true when there was one. */
static bool take_failure(atomic_int *left)
{
    int n = atomic_load(left);
    while (n > 0 && !atomic_compare_exchange_weak(left, &n, n - 1))
        ;
    return n > 0;
}

store_rc __real_broker_extend(broker *b, const queue_message *m, size_t n, unsigned seconds,
                              bool *stale);
store_rc __wrap_broker_extend(broker *b, const queue_message *m, size_t n, unsigned seconds,
                              bool *stale);

/* When armed, an extension the keeper makes (from its thread, keep-<queue>) waits until the test
 * lets it go, as a writer slow to commit it would hold it. */
static pthread_mutex_t keeper_extend_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t keeper_extend_cv; /* an extension held, or let go */
static bool keeper_extend_armed, keeper_extend_held, keeper_extend_let_go;

static void hold_a_keeper_extension(void)
{
    char name[16] = "";
    pthread_getname_np(pthread_self(), name, sizeof name);
    if (strncmp(name, "keep-", 5) != 0)
        return;
    pthread_mutex_lock(&keeper_extend_mu);
    if (keeper_extend_armed) {
        keeper_extend_held = true;
        pthread_cond_broadcast(&keeper_extend_cv);
        while (!keeper_extend_let_go)
            pthread_cond_wait(&keeper_extend_cv, &keeper_extend_mu);
    }
    pthread_mutex_unlock(&keeper_extend_mu);
}

/* Have hold_a_keeper_extension() hold the keeper's next one, until let_keeper_extensions_go(). */
static void arm_keeper_hold(void)
{
    assert_int_equal(clock_mono_cond_init(&keeper_extend_cv), 0);
    keeper_extend_armed = true;
    keeper_extend_held = keeper_extend_let_go = false;
}

static void let_keeper_extensions_go(void)
{
    pthread_mutex_lock(&keeper_extend_mu);
    keeper_extend_armed = false;
    keeper_extend_let_go = true;
    pthread_cond_broadcast(&keeper_extend_cv);
    pthread_mutex_unlock(&keeper_extend_mu);
}

/* Extensions made (not failed here), by any thread. */
static atomic_int extends_made;

store_rc __wrap_broker_extend(broker *b, const queue_message *m, size_t n, unsigned seconds,
                              bool *stale)
{
    hold_a_keeper_extension();
    if (take_failure(&extends_to_fail))
        return STORE_BUSY;
    store_rc rc = __real_broker_extend(b, m, n, seconds, stale);
    if (rc == STORE_OK)
        atomic_fetch_add(&extends_made, 1);
    return rc;
}

/* The messages m[n] visible again at once, and their receive's hide said to end now, as when that
 * hide runs out; back once they are all in the dead-letter queue "dead" (or 10 s passed). */
static void let_the_hide_run_out(broker *b, queue_message *m, size_t n)
{
    assert_int_equal(__real_broker_extend(b, m, n, 0, NULL), STORE_OK);
    for (size_t i = 0; i < n; i++)
        m[i].hidden_until_ms = clock_steady_ms();
    queue_stats dead = {0};
    for (int i = 0; i < 1000 && dead.visible < (int64_t)n; i++) {
        assert_int_equal(broker_queue_stats(b, "dead", &dead), STORE_OK);
        usleep(10000);
    }
    atomic_store(&hide_ran_out, true);
}

store_rc __real_broker_release(broker *b, const queue_message *m, size_t n);
store_rc __wrap_broker_release(broker *b, const queue_message *m, size_t n);

store_rc __wrap_broker_release(broker *b, const queue_message *m, size_t n)
{
    return take_failure(&releases_to_fail) ? STORE_BUSY : __real_broker_release(b, m, n);
}

store_rc __real_broker_delete(broker *b, const queue_message *m, size_t n);
store_rc __wrap_broker_delete(broker *b, const queue_message *m, size_t n);

store_rc __wrap_broker_delete(broker *b, const queue_message *m, size_t n)
{
    return take_failure(&deletes_to_fail) ? STORE_BUSY : __real_broker_delete(b, m, n);
}

typedef struct fixture {
    char dir[256];
    store *store;
    config cfg;
} fixture;

/* ---- a commit between a runner's look and its standing ---- */

/* When armed, broker_next_visible() lands, after the runner's real look found nothing, a commit
 * that sends its queue a message, and returns once that commit has settled its standing receives
 * but before the writer wakes its waiters: the runner then stands after the settling. */
static atomic_bool look_race_armed;
static fixture *look_race_fixture;
static atomic_bool look_race_settled; /* the sending commit's first answer has begun */
static char look_race_task[37];

store_rc __real_broker_next_visible(broker *b, const char *queue, int64_t *visible_ms);
store_rc __wrap_broker_next_visible(broker *b, const char *queue, int64_t *visible_ms);

/* done() of a write that holds the writer: the first one before the sending batch (so that the
 * publish and the second write share one), the second one inside that batch's answers. */
static void hold_writer(store_write *w)
{
    if (w->user)
        atomic_store(&look_race_settled, true);
    usleep(w->user ? 300000 : 100000);
}

static void *send_while_held(void *arg)
{
    fixture *f = arg;
    store_write first = {.kind = STORE_WRITE_CREATE,
                         .now = time(NULL),
                         .create = {.task_type = "TASK2", .data = "{}", .ttl = 0},
                         .done = hold_writer};
    store_write second = first;
    second.user = &second;
    store_submit(f->store, &first); /* its done() holds the writer: the next two share a batch */
    usleep(20000);
    store_submit(f->store, &second);
    const queue_config *q = config_queue(&f->cfg, "jobs");
    broker_message m = {.queue = q, .task_id = look_race_task, .task_type = "TASK1", .body = "{}"};
    assert_int_equal(broker_publish(broker_of(f->store), "test", 1, &m, 1), STORE_OK);
    return NULL;
}

store_rc __wrap_broker_next_visible(broker *b, const char *queue, int64_t *visible_ms)
{
    store_rc rc = __real_broker_next_visible(b, queue, visible_ms);
    if (rc == STORE_OK && *visible_ms == INT64_MAX && atomic_exchange(&look_race_armed, false)) {
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, send_while_held, look_race_fixture), 0);
        pthread_detach(t);
        while (!atomic_load(&look_race_settled))
            usleep(100);
    }
    return rc;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->store = test_sqlite_store(f->dir, sizeof f->dir, "taskd-runner-test");
    char err[256] = "";
    const char *text = "{\"queues\": [{\"name\": \"jobs\"}],"
                       " \"subscriptions\": [{\"queue\": \"jobs\"}],"
                       " \"handlers\": [{\"queue\": \"jobs\", \"handler\": \"noop\","
                       " \"concurrency\": 1, \"batch_size\": 3}]}";
    assert_true(config_load_text(&f->cfg, text, "test", err, sizeof err));
    atomic_store(&stop_armed, false);
    atomic_store(&stop_after_claim_armed, false);
    atomic_store(&hide_runs_out_armed, false);
    atomic_store(&hide_ran_out, false);
    atomic_store(&late_take_armed, false);
    atomic_store(&stops_injected, 0);
    atomic_store(&stood_claims, 0);
    atomic_store(&stands, 0);
    atomic_store(&stop_target, NULL);
    atomic_store(&extends_to_fail, 0);
    atomic_store(&releases_to_fail, 0);
    atomic_store(&deletes_to_fail, 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    store_close(f->store);
    config_free(&f->cfg);
    assert_int_equal(test_tmpdir_remove(f->dir), 0);
    free(f);
    return 0;
}

/* Start a runner of the configuration's first binding with handler h. */
static runner *start_with(fixture *f, handler *h)
{
    char err[256] = "";
    runner *r = runner_start(f->store, broker_of(f->store), &f->cfg, &f->cfg.handlers[0], h, NULL,
                             err, sizeof err);
    if (!r)
        fail_msg("%s", err);
    return r;
}

static runner *start(fixture *f)
{
    char err[256] = "";
    handler *h = handler_create(&f->cfg.handlers[0], err, sizeof err);
    assert_non_null(h);
    return start_with(f, h);
}

/* The configuration text in place of the fixture's. */
static void use_config(fixture *f, const char *text)
{
    config_free(&f->cfg);
    char err[256] = "";
    if (!config_load_text(&f->cfg, text, "test", err, sizeof err))
        fail_msg("%s", err);
}

/* Join within seconds; on failure still end and free the runner before failing. */
static void join_within(runner *r, double seconds, const char *what)
{
    bool ended = runner_join(r, clock_mono_s() + seconds, NULL);
    if (!ended)
        runner_join(r, clock_mono_s() + 30, NULL);
    runner_free(r);
    if (!ended)
        fail_msg("%s: the runner did not end within %.0f s of its stop", what, seconds);
}

/* An idle runner (waiting for messages) ends at once on a stop. */
static void test_idle_runner_stops_at_once(void **state)
{
    fixture *f = *state;
    runner *r = start(f);
    usleep(100000); /* into its idle wait */
    runner_stop_receiving(r);
    join_within(r, 3, "idle");
}

/*
 * A runner's threads are named "keep-" and "run-" and as much of the queue's name as fits Linux's
 * 15 bytes, cut where a character ends: a name of '€' (3 bytes) has three whole ones there, where
 * a cut by bytes kept three and a third, or two thirds.
 */
static void test_runner_thread_names_are_whole_characters(void **state)
{
    fixture *f = *state;
    static const char queue[] = "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac";
    str_join(f->cfg.queues[0].name, sizeof f->cfg.queues[0].name, queue, NULL);
    str_join(f->cfg.subscriptions[0].queue, sizeof f->cfg.subscriptions[0].queue, queue, NULL);
    str_join(f->cfg.handlers[0].queue, sizeof f->cfg.handlers[0].queue, queue, NULL);
    runner *r = start(f);
    char keeper[16] = "", run[16] = "";
    bool named = test_thread_named("keep-", keeper) && test_thread_named("run-", run);
    runner_stop_receiving(r);
    join_within(r, 3, "named");
    assert_true(named);
    assert_string_equal(keeper, "keep-\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac");
    assert_string_equal(run, "run-\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac");
}

/* A stop that comes after the runner thread last looked at its flag, just before it notes the
 * broker's generation, still ends it at once. */
static void test_stop_between_flag_and_generation(void **state)
{
    fixture *f = *state;
    runner *r = start(f);
    usleep(100000); /* into its idle wait */
    atomic_store(&stop_target, r);
    atomic_store(&stop_armed, true);
    broker_wake_all(broker_of(f->store)); /* the thread looks again: the stop comes in its call */
    for (int i = 0; i < 300 && atomic_load(&stops_injected) == 0; i++)
        usleep(10000);
    assert_int_equal(atomic_load(&stops_injected), 1);
    join_within(r, 3, "stopped between its steps");
}

/* Create n tasks and send each its message on queue jobs, as the publisher would. */
static void send_tasks(fixture *f, size_t n, char ids[][37])
{
    const queue_config *q = config_queue(&f->cfg, "jobs");
    assert_non_null(q);
    broker_message m[8];
    assert_true(n <= 8);
    for (size_t i = 0; i < n; i++) {
        store_new_task t = {.task_type = "TASK1", .data = "{}", .ttl = 0};
        assert_int_equal(store_create_task(f->store, &t, (int64_t)time(NULL), ids[i]), STORE_OK);
        m[i] = (broker_message){.queue = q, .task_id = ids[i], .task_type = "TASK1", .body = "{}"};
    }
    assert_int_equal(broker_publish(broker_of(f->store), "test", 1, m, n), STORE_OK);
}

/*
 * A stop that comes just after a receive committed its claims, before any handler started: the
 * whole claimed batch is still run and reported, and its messages are gone from the queue.
 * standing: the runner waits idle, and the sending commit claims the tasks for it (its standing
 * receive); else the tasks are queued before it starts, and its own receive claims them.
 */
static void stop_after_claim(fixture *f, bool standing)
{
    char ids[3][37];
    atomic_store(&stop_after_claim_armed, true);
    if (!standing)
        send_tasks(f, 3, ids);
    runner *r = start(f);
    atomic_store(&stop_target, r);
    if (standing) {
        /* its receive left with the writer: the sending commit claims for it */
        for (int i = 0; i < 500 && atomic_load(&stands) == 0; i++)
            usleep(10000);
        send_tasks(f, 3, ids);
    }
    for (int i = 0; i < 300 && atomic_load(&stops_injected) == 0; i++)
        usleep(10000);
    assert_int_equal(atomic_load(&stops_injected), 1);
    assert_int_equal(atomic_load(&stood_claims), standing ? 1 : 0);
    join_within(r, 5, "stopped after its claim");
    for (size_t i = 0; i < 3; i++) {
        task t = {0};
        assert_int_equal(store_get_task(f->store, ids[i], &t), STORE_OK);
        if (t.status != TASK_COMPLETED)
            fail_msg("task %zu of the claimed batch is %s after a graceful stop, not COMPLETED", i,
                     task_status_name(t.status));
        task_clear(&t);
    }
    queue_stats st;
    assert_int_equal(broker_queue_stats(broker_of(f->store), "jobs", &st), STORE_OK);
    assert_int_equal(st.visible + st.in_flight + st.delayed, 0);
}

static void test_stop_after_standing_claim_runs_the_batch(void **state)
{
    stop_after_claim(*state, true);
}

static void test_stop_after_own_claim_runs_the_batch(void **state)
{
    stop_after_claim(*state, false);
}

/*
 * A batch whose visibility must be extended before a run (taken 1.5 s after its receive, which
 * hid it for the run's timeout and margin), when the extension fails: the task is not run while
 * its message may be delivered again, but given back; its next delivery runs it. The failure is
 * said with the store's error, as the runner's other failed writes are.
 */
static void test_batch_not_kept_hidden_is_given_back(void **state)
{
    fixture *f = *state;
    use_config(f, "{\"queues\": [{\"name\": \"jobs\", \"visibility_timeout\": 2}],"
                  " \"subscriptions\": [{\"queue\": \"jobs\"}],"
                  " \"handlers\": [{\"queue\": \"jobs\", \"handler\": \"noop\","
                  " \"timeout\": 2, \"batch_size\": 3}]}");
    atomic_store(&extends_to_fail, 1);
    char ids[1][37];
    send_tasks(f, 1, ids);
    atomic_store(&late_take_armed, true);
    test_stderr cap;
    test_stderr_begin(&cap);
    runner *r = start(f);
    task t = {0};
    for (int i = 0; i < 500; i++) {
        task_clear(&t);
        assert_int_equal(store_get_task(f->store, ids[0], &t), STORE_OK);
        if (t.status == TASK_COMPLETED)
            break;
        usleep(10000);
    }
    runner_stop_receiving(r);
    join_within(r, 5, "after the batch");
    char *log = test_stderr_end(&cap);
    size_t warned =
        expect_logged(log, "cannot keep a batch hidden while it runs", "\"error\":\"busy\"");
    free(log);
    assert_int_equal(warned, 1);
    assert_int_equal(atomic_load(&extends_to_fail), 0);
    assert_int_equal(t.status, TASK_COMPLETED);
    task_clear(&t);
    task_history h = {0};
    assert_int_equal(store_get_history(f->store, ids[0], &h), STORE_OK);
    /* claimed, given back unrun, run on its second delivery */
    assert_int_equal(h.count, 4);
    assert_string_equal(h.entries[2].status_msg, "Task started again (receive 2)");
    task_history_clear(&h);
}

/* Descriptors this process has open. */
static int open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n - 3; /* ".", ".." and the directory's own */
}

/* Queue "jobs", its messages visible again 1 s after a receive, moved to the dead-letter queue
 * "dead" at their second: the configuration's start, its "handlers" to follow. */
#define JOBS_DEAD_AFTER_ONE_RECEIVE                                                                \
    "{\"queues\": [{\"name\": \"jobs\", \"visibility_timeout\": 1,"                                \
    " \"max_receive_count\": 1, \"dead_letter_queue\": \"dead\"},"                                 \
    " {\"name\": \"dead\"}],"                                                                      \
    " \"subscriptions\": [{\"queue\": \"jobs\"}],"

/*
 * A task taskd cannot start for want of its own descriptors (an exec run's pipes, EMFILE) comes
 * back after the visibility timeout without its receive counted: with max_receive_count 1 it
 * would otherwise go to the dead-letter queue, FAILED, never having run.
 */
static void test_a_task_taskd_cannot_start_is_not_dead_lettered(void **state)
{
    fixture *f = *state;
    use_config(f, JOBS_DEAD_AFTER_ONE_RECEIVE
               " \"handlers\": [{\"queue\": \"jobs\", \"handler\": \"exec\","
               " \"command\": [\"/bin/true\"], \"timeout\": 1}]}");
    char ids[1][37];
    send_tasks(f, 1, ids);
    task t = {0};
    assert_int_equal(store_get_task(f->store, ids[0], &t), STORE_OK); /* a reader, opened now */
    task_clear(&t);
    struct rlimit was;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &was), 0);
    /* room for the runner's own, not for a run's pipes */
    struct rlimit low = {.rlim_cur = (rlim_t)open_fds() + 4, .rlim_max = was.rlim_max};
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    runner *r = start(f);
    usleep(3500 * 1000); /* three or four receives, a second apart */
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &was), 0);
    assert_int_equal(store_get_task(f->store, ids[0], &t), STORE_OK);
    bool dead = t.status == TASK_FAILED;
    task_clear(&t);
    for (int i = 0; i < 500 && !dead; i++) {
        assert_int_equal(store_get_task(f->store, ids[0], &t), STORE_OK);
        bool done = t.status == TASK_COMPLETED || t.status == TASK_FAILED;
        dead = t.status == TASK_FAILED;
        task_clear(&t);
        if (done)
            break;
        usleep(10000);
    }
    runner_stop_receiving(r);
    join_within(r, 5, "after the task");
    assert_int_equal(store_get_task(f->store, ids[0], &t), STORE_OK);
    if (t.status != TASK_COMPLETED)
        fail_msg("task %s \"%s\", not COMPLETED", task_status_name(t.status), t.status_msg);
    task_clear(&t);
}

/* A runner that looked at its queue just before the commit that sends it a message, and stands
 * after that commit settled its standing receives (the writer still answering its writes), runs
 * the task at once: it found the messages generation moved. It slept out its idle recheck, 10 s,
 * before. */
static void test_a_commit_between_look_and_standing_is_not_missed(void **state)
{
    fixture *f = *state;
    store_new_task t = {.task_type = "TASK1", .data = "{}", .ttl = 0};
    assert_int_equal(store_create_task(f->store, &t, (int64_t)time(NULL), look_race_task),
                     STORE_OK);
    look_race_fixture = f;
    runner *r = start(f);
    usleep(100000); /* into its idle wait */
    atomic_store(&look_race_armed, true);
    double armed_at = clock_mono_s();
    broker_wake_all(broker_of(f->store)); /* it looks again */
    task got = {0};
    for (int i = 0; i < 600; i++) {
        assert_int_equal(store_get_task(f->store, look_race_task, &got), STORE_OK);
        bool done = got.status == TASK_COMPLETED;
        task_clear(&got);
        if (done)
            break;
        usleep(10000);
    }
    double took = clock_mono_s() - armed_at;
    assert_false(atomic_load(&look_race_armed)); /* the race was made */
    runner_stop_receiving(r);
    join_within(r, 5, "after the task");
    assert_int_equal(store_get_task(f->store, look_race_task, &got), STORE_OK);
    task_status st = got.status;
    task_clear(&got);
    if (st != TASK_COMPLETED || took > 3)
        fail_msg("task %s %.1f s after the commit, not COMPLETED within 3 s", task_status_name(st),
                 took);
}

/*
 * A task's message that names no task type (a row edited by hand, or damaged) is still its
 * task's: the receive claims the task, so the run takes the type from the task. The runner took
 * such a message for one that names no task and dropped it, with the task claimed: IN_PROGRESS
 * for good, its message gone.
 */
static void test_a_message_without_its_type_runs_its_task(void **state)
{
    fixture *f = *state;
    char id[37];
    store_new_task nt = {.task_type = "TASK1", .data = "{}", .ttl = 0};
    assert_int_equal(store_create_task(f->store, &nt, (int64_t)time(NULL), id), STORE_OK);
    broker_message m = {.queue = config_queue(&f->cfg, "jobs"), .task_id = id, .body = "{}"};
    assert_int_equal(broker_publish(broker_of(f->store), "test", 1, &m, 1), STORE_OK);
    runner *r = start(f);
    /* the message leaves the queue once its task is reported (or, dropped, at once) */
    queue_stats st = {0};
    for (int i = 0; i < 500; i++) {
        assert_int_equal(broker_queue_stats(broker_of(f->store), "jobs", &st), STORE_OK);
        if (st.visible + st.in_flight + st.delayed == 0)
            break;
        usleep(10000);
    }
    runner_stop_receiving(r);
    join_within(r, 5, "after the task");
    assert_int_equal(st.visible + st.in_flight + st.delayed, 0);
    task t = {0};
    assert_int_equal(store_get_task(f->store, id, &t), STORE_OK);
    task_status got = t.status;
    task_clear(&t);
    if (got != TASK_COMPLETED)
        fail_msg("task %s with its message gone, not COMPLETED", task_status_name(got));
}

/* A handler that ignores its timeout: each run waits until the test lets it end. */
static pthread_mutex_t overrun_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t overrun_cv; /* a run began, or the runs may end */
static int overrun_runs;
static bool overrun_released;

static void overrun_run(handler *h, const handler_task *t, unsigned timeout_s, handler_result *out)
{
    (void)h, (void)t, (void)timeout_s;
    pthread_mutex_lock(&overrun_mu);
    overrun_runs++;
    pthread_cond_broadcast(&overrun_cv);
    while (!overrun_released)
        pthread_cond_wait(&overrun_cv, &overrun_mu);
    pthread_mutex_unlock(&overrun_mu);
    *out = (handler_result){.ok = true, .status_msg = strdup("Task completed")};
}

static void overrun_free(handler *h)
{
    (void)h;
}

/* The task the overrun_one handler holds, each of its runs; the others it completes at once. */
static char overrun_task[37];

static void overrun_one_run(handler *h, const handler_task *t, unsigned timeout_s,
                            handler_result *out)
{
    if (strcmp(t->id, overrun_task) == 0) {
        overrun_run(h, t, timeout_s, out);
        return;
    }
    *out = (handler_result){.ok = true, .status_msg = strdup("Task completed")};
}

static handler overrun_one = {.name = "overrun-one", .run = overrun_one_run, .free = overrun_free};
static handler overrun_all = {.name = "overrun", .run = overrun_run, .free = overrun_free};

/* No run of the overrun handlers begun, none let end. */
static void overrun_reset(void)
{
    assert_int_equal(clock_mono_cond_init(&overrun_cv), 0);
    overrun_runs = 0;
    overrun_released = false;
}

/* Wait until a run of the overrun handlers has begun (or 10 s passed); the runs begun by then. */
static int overrun_begun(void)
{
    pthread_mutex_lock(&overrun_mu);
    struct timespec until = clock_mono_after_ms(10000);
    while (overrun_runs == 0 && pthread_cond_timedwait(&overrun_cv, &overrun_mu, &until) == 0)
        ;
    int runs = overrun_runs;
    pthread_mutex_unlock(&overrun_mu);
    return runs;
}

/*
 * Load the configuration text (queue "jobs" and its binding), send one task (its id into id),
 * and start a runner whose handler holds that task's runs until release_overrun(); returns once
 * its first run has begun (or 10 s passed), with *runs the runs begun by then.
 */
static runner *start_overrun(fixture *f, const char *text, char id[37], int *runs)
{
    use_config(f, text);
    overrun_reset();
    char ids[1][37];
    send_tasks(f, 1, ids);
    memcpy(id, ids[0], sizeof ids[0]);
    memcpy(overrun_task, ids[0], sizeof overrun_task);
    runner *r = start_with(f, &overrun_one);
    *runs = overrun_begun();
    return r;
}

/* Let the runs start_overrun()'s handler holds end. */
static void release_overrun(void)
{
    pthread_mutex_lock(&overrun_mu);
    overrun_released = true;
    pthread_cond_broadcast(&overrun_cv);
    pthread_mutex_unlock(&overrun_mu);
}

/* Stop the runner start_overrun() started, its runs released. */
static void stop_overrun(runner *r, const char *what)
{
    runner_stop_receiving(r);
    join_within(r, 5, what);
    pthread_cond_destroy(&overrun_cv);
}

/* Wait up to ms for the task to be COMPLETED; its status then. */
static task_status wait_completed(fixture *f, const char *id, int ms)
{
    task t = {0};
    task_status st = TASK_CREATED;
    for (int i = 0; i < ms / 10; i++) {
        task_clear(&t);
        assert_int_equal(store_get_task(f->store, id, &t), STORE_OK);
        st = t.status;
        if (st == TASK_COMPLETED)
            break;
        usleep(10000);
    }
    task_clear(&t);
    return st;
}

/*
 * A run that outlives its timeout and the runner's margin (a handler that overruns, or a kill and
 * a report held up on a loaded machine) keeps its message hidden as long as it goes on: the
 * runner beside it does not receive the message and run the task a second time meanwhile. The
 * message was hidden for the timeout and 5 s, then came back while the first run still went.
 */
static void test_a_run_past_its_margin_is_not_delivered_again(void **state)
{
    fixture *f = *state;
    char id[37];
    int first;
    runner *r = start_overrun(f,
                              "{\"queues\": [{\"name\": \"jobs\", \"visibility_timeout\": 1}],"
                              " \"subscriptions\": [{\"queue\": \"jobs\"}],"
                              " \"handlers\": [{\"queue\": \"jobs\", \"handler\": \"noop\","
                              " \"timeout\": 1, \"concurrency\": 2}]}",
                              id, &first);
    /* the run began about when its message was hidden for 1 + 5 s: wait 2 s past that for a
     * second run (the other thread stands, due to receive the message once it is visible) */
    pthread_mutex_lock(&overrun_mu);
    struct timespec until = clock_mono_after_ms((1 + 5 + 2) * 1000);
    while (overrun_runs == 1 && pthread_cond_timedwait(&overrun_cv, &overrun_mu, &until) == 0)
        ;
    int runs = overrun_runs;
    pthread_mutex_unlock(&overrun_mu);
    queue_stats st = {0};
    assert_int_equal(broker_queue_stats(broker_of(f->store), "jobs", &st), STORE_OK);
    release_overrun();
    task_status got = wait_completed(f, id, 5000);
    stop_overrun(r, "after the run");
    assert_int_equal(first, 1);
    if (runs != 1)
        fail_msg("the task ran %d times while its first run went on", runs);
    assert_int_equal(st.in_flight, 1);
    assert_int_equal(st.visible, 0);
    assert_int_equal(got, TASK_COMPLETED);
    task_history hist = {0};
    assert_int_equal(store_get_history(f->store, id, &hist), STORE_OK);
    assert_int_equal(hist.count, 3); /* created, started once, completed */
    task_history_clear(&hist);
}

/*
 * While the keeper's extension of one run's message waits for its commit (a writer slow to
 * commit, as on a loaded machine), the runner's other threads start and end their runs: only the
 * run whose message is being extended waits for it, before its message is deleted. The keeper
 * made the extension holding the lock every run takes at its start and end, and a task sent
 * meanwhile stayed IN_PROGRESS, its thread stopped at its run's start, until the commit came.
 */
static void test_a_keeper_extension_holds_up_no_other_run(void **state)
{
    fixture *f = *state;
    arm_keeper_hold();
    char ids[2][37];
    int runs; /* not looked at: the keeper's extension held says the run went on */
    runner *r = start_overrun(f,
                              "{\"queues\": [{\"name\": \"jobs\", \"visibility_timeout\": 1}],"
                              " \"subscriptions\": [{\"queue\": \"jobs\"}],"
                              " \"handlers\": [{\"queue\": \"jobs\", \"handler\": \"noop\","
                              " \"timeout\": 1, \"concurrency\": 2}]}",
                              ids[0], &runs);
    /* the first run goes on past its timeout and margin: 2.5 s before its message would be
     * visible again (1 + 5 s after its start), the keeper extends it, and that write is held */
    pthread_mutex_lock(&keeper_extend_mu);
    struct timespec until = clock_mono_after_ms(15000);
    while (!keeper_extend_held &&
           pthread_cond_timedwait(&keeper_extend_cv, &keeper_extend_mu, &until) == 0)
        ;
    bool held = keeper_extend_held;
    pthread_mutex_unlock(&keeper_extend_mu);
    /* a task sent now is run by the other thread, the extension still held */
    send_tasks(f, 1, ids + 1);
    task_status second = wait_completed(f, ids[1], 3000);
    let_keeper_extensions_go();
    release_overrun();
    task_status first = wait_completed(f, ids[0], 5000);
    stop_overrun(r, "after the runs");
    pthread_cond_destroy(&keeper_extend_cv);
    assert_true(held);
    if (second != TASK_COMPLETED)
        fail_msg("the second task %s 3 s after it was sent, while the keeper's extension of the "
                 "first waited for its commit; not COMPLETED",
                 task_status_name(second));
    assert_int_equal(first, TASK_COMPLETED);
    /* the first run's message was deleted after its end: the queue is empty */
    queue_stats st = {0};
    assert_int_equal(broker_queue_stats(broker_of(f->store), "jobs", &st), STORE_OK);
    assert_int_equal(st.visible + st.in_flight + st.delayed, 0);
}

/*
 * An abort gives back each message of the batch it cuts short whatever became of the others: here
 * the release of the task it left unstarted fails, and the run it cut short is visible again at
 * once all the same (its task runs again at the next start, not after the visibility timeout).
 * The give-backs were one chain of ||: a failed release skipped the rest, and that message
 * stayed hidden. The failure is said with the store's error, which the warning left out.
 */
static void test_an_aborts_give_backs_are_each_made(void **state)
{
    fixture *f = *state;
    overrun_reset();
    char ids[2][37];
    send_tasks(f, 2, ids); /* before the runner starts: one batch, its first run held */
    runner *r = start_with(f, &overrun_all);
    int runs = overrun_begun();
    atomic_store(&releases_to_fail, 1);
    test_stderr cap;
    test_stderr_begin(&cap);
    runner_abort(r);
    release_overrun();
    stop_overrun(r, "after the abort");
    char *log = test_stderr_end(&cap);
    /* the messages are hidden still for the batch's run, not for the visibility timeout */
    size_t warned = expect_logged(
        log, "cannot release messages; they reappear once their hide ends", "\"error\":\"busy\"");
    free(log);
    assert_int_equal(warned, 1);
    assert_int_equal(runs, 1);
    assert_int_equal(atomic_load(&releases_to_fail), 0); /* the release was made, and failed */
    queue_stats st = {0};
    assert_int_equal(broker_queue_stats(broker_of(f->store), "jobs", &st), STORE_OK);
    if (st.visible != 1 || st.in_flight != 1)
        fail_msg("visible %lld, in flight %lld after the abort: the run cut short is to be "
                 "visible, the unstarted task (its release failed) hidden",
                 (long long)st.visible, (long long)st.in_flight);
}

/*
 * A batch's tasks that have finished keep their messages hidden while the rest of the batch runs,
 * until the batch deletes them at its end: here the first task of a batch of two completes at
 * once and the second runs on past its timeout and margin, and the first one's message is not
 * received again meanwhile. Only the runs to come were kept hidden: the finished one's message
 * came back 6 s after the receive (its hide before the first run), and the queue's other thread
 * received it a second time, which with max_receive_count 1 moved it to the dead-letter queue, a
 * dead letter of a task COMPLETED.
 */
static void test_a_finished_tasks_message_stays_hidden_while_its_batch_runs(void **state)
{
    fixture *f = *state;
    use_config(f, JOBS_DEAD_AFTER_ONE_RECEIVE
               " \"handlers\": [{\"queue\": \"jobs\", \"handler\": \"noop\","
               " \"timeout\": 1, \"batch_size\": 2, \"concurrency\": 2}]}");
    overrun_reset();
    char ids[2][37];
    send_tasks(f, 2, ids); /* before the runner starts: one batch, the first task first */
    memcpy(overrun_task, ids[1], sizeof overrun_task);
    runner *r = start_with(f, &overrun_one);
    int runs = overrun_begun();
    task_status first = wait_completed(f, ids[0], 5000);
    /* the batch was hidden for 1 + 5 s as its first run began: wait 3 s past that, the
     * queue's other thread standing, due to receive any message of it that shows */
    queue_stats dead = {0};
    int64_t until = clock_mono_ms() + (1 + 5 + 3) * 1000;
    while (dead.visible == 0 && clock_mono_ms() < until) {
        assert_int_equal(broker_queue_stats(broker_of(f->store), "dead", &dead), STORE_OK);
        usleep(10000);
    }
    release_overrun();
    task_status second = wait_completed(f, ids[1], 5000);
    stop_overrun(r, "after the batch");
    assert_int_equal(runs, 1);
    assert_int_equal(first, TASK_COMPLETED);
    assert_int_equal(second, TASK_COMPLETED);
    if (dead.visible != 0)
        fail_msg("%lld dead letter(s) while the batch ran: the completed task's message was "
                 "received again",
                 (long long)dead.visible);
    queue_stats jobs = {0};
    assert_int_equal(broker_queue_stats(broker_of(f->store), "jobs", &jobs), STORE_OK);
    assert_int_equal(jobs.visible + jobs.in_flight + jobs.delayed, 0);
}

/*
 * A batch whose messages cannot be deleted once its tasks are done (a store busy) says so with the
 * store's error: the warning named the queue alone, where the runner's other failed writes (a
 * receive, a report) say what the store answered.
 */
static void test_a_failed_delete_is_said_with_the_error(void **state)
{
    fixture *f = *state;
    atomic_store(&deletes_to_fail, 1);
    char ids[1][37];
    send_tasks(f, 1, ids);
    test_stderr cap;
    test_stderr_begin(&cap);
    runner *r = start(f);
    task_status st = wait_completed(f, ids[0], 5000);
    for (int i = 0; i < 500 && atomic_load(&deletes_to_fail) > 0; i++)
        usleep(10000);
    runner_stop_receiving(r);
    join_within(r, 5, "after the task"); /* the batch's warning said before its thread ended */
    char *log = test_stderr_end(&cap);
    size_t warned = expect_logged(log, "cannot delete finished messages", "\"error\":\"busy\"");
    free(log);
    assert_int_equal(st, TASK_COMPLETED);
    assert_int_equal(atomic_load(&deletes_to_fail), 0);
    assert_int_equal(warned, 1);
}

/* A handler that notes, as each run starts, how long its queue's messages are still hidden; under
 * keeper_extend_mu, so that a test waits for the runs or a keeper's extension held alike. */
static broker *hidden_broker;
static int hidden_runs;
static int64_t hidden_for_ms[2]; /* at each run's start, until the queue's first is visible */

static void hidden_run(handler *h, const handler_task *t, unsigned timeout_s, handler_result *out)
{
    (void)h, (void)t, (void)timeout_s;
    int64_t due = 0;
    store_rc rc = broker_next_visible(hidden_broker, "jobs", &due);
    pthread_mutex_lock(&keeper_extend_mu);
    if (hidden_runs < 2)
        hidden_for_ms[hidden_runs] = rc == STORE_OK ? due - clock_steady_ms() : -1;
    hidden_runs++;
    pthread_cond_broadcast(&keeper_extend_cv);
    pthread_mutex_unlock(&keeper_extend_mu);
    *out = (handler_result){.ok = true, .status_msg = strdup("Task completed")};
}

static handler hidden_check = {.name = "hidden-check", .run = hidden_run, .free = overrun_free};

/*
 * A batch whose visibility timeout (1 s) is shorter than a run may take (its timeout, 1 s, and
 * the runner's 5 s margin) is hidden for a run before it starts, not once the run goes on: at the
 * start of the first run and of the second, the batch's messages are hidden for seconds more
 * (6 s), by the receive or an extension before the run. The keeper's own extensions are held
 * meanwhile, so only those can have landed; a runner that left that extension to the keeper had
 * it held before either run began, the batch due back within the receive's 1 s.
 */
static void test_a_batch_is_hidden_before_a_run_that_would_outlast_it(void **state)
{
    fixture *f = *state;
    use_config(f, "{\"queues\": [{\"name\": \"jobs\", \"visibility_timeout\": 1}],"
                  " \"subscriptions\": [{\"queue\": \"jobs\"}],"
                  " \"handlers\": [{\"queue\": \"jobs\", \"handler\": \"noop\","
                  " \"timeout\": 1, \"batch_size\": 2}]}");
    arm_keeper_hold();
    hidden_broker = broker_of(f->store);
    hidden_runs = 0;
    char ids[2][37];
    send_tasks(f, 2, ids); /* before the runner starts: one batch */
    runner *r = start_with(f, &hidden_check);
    /* both runs begin, or the keeper's extension is held (the run it keeps waits for it) */
    pthread_mutex_lock(&keeper_extend_mu);
    struct timespec until = clock_mono_after_ms(10000);
    while (hidden_runs < 2 && !keeper_extend_held &&
           pthread_cond_timedwait(&keeper_extend_cv, &keeper_extend_mu, &until) == 0)
        ;
    int runs = hidden_runs;
    int64_t hidden[2] = {hidden_for_ms[0], hidden_for_ms[1]};
    pthread_mutex_unlock(&keeper_extend_mu);
    let_keeper_extensions_go();
    task_status got[2] = {wait_completed(f, ids[0], 5000), wait_completed(f, ids[1], 5000)};
    runner_stop_receiving(r);
    join_within(r, 5, "after the batch");
    pthread_cond_destroy(&keeper_extend_cv);
    if (runs < 2)
        fail_msg("%d of the 2 runs began before the keeper extended the batch", runs);
    for (int i = 0; i < 2; i++)
        if (hidden[i] < 3000)
            fail_msg("run %d began with the batch hidden %lld ms more, for a run of up to 6 s",
                     i + 1, (long long)hidden[i]);
    assert_int_equal(got[0], TASK_COMPLETED);
    assert_int_equal(got[1], TASK_COMPLETED);
}

/*
 * A keeper whose extensions fail (a store busy or full) tries again every 0.2 s, and warns once
 * for the streak, not at every try: it warned 5 times a second for each run it kept, as long as
 * the store's trouble lasted.
 */
static void test_a_keeper_that_cannot_extend_warns_once(void **state)
{
    fixture *f = *state;
    char id[37];
    int runs;
    /* hidden 7 s at the receive: enough for the run's 1 + 5 s, so only the keeper extends */
    runner *r = start_overrun(
        f,
        "{\"queues\": [{\"name\": \"jobs\", \"visibility_timeout\": 7}],"
        " \"subscriptions\": [{\"queue\": \"jobs\"}],"
        " \"handlers\": [{\"queue\": \"jobs\", \"handler\": \"noop\", \"timeout\": 1}]}",
        id, &runs);
    /* the keeper's first 5 extensions fail (4.5 s after the receive, then every 0.2 s), the
     * sixth is made */
    test_stderr cap;
    test_stderr_begin(&cap);
    int made = atomic_load(&extends_made);
    atomic_store(&extends_to_fail, 5);
    for (int i = 0; i < 1000 && atomic_load(&extends_made) == made; i++)
        usleep(10000);
    bool extended = atomic_load(&extends_made) > made;
    char *log = test_stderr_end(&cap);
    int failed_left = atomic_load(&extends_to_fail);
    atomic_store(&extends_to_fail, 0);
    release_overrun();
    task_status st = wait_completed(f, id, 5000);
    stop_overrun(r, "after the run");
    size_t warned = expect_logged(log, "cannot keep the message of a run in progress hidden", NULL);
    if (warned != 1)
        print_message("%s", log);
    free(log);
    if (warned != 1)
        fail_msg("warned %zu times for 5 failed extensions in a row", warned);
    assert_int_equal(runs, 1);
    assert_true(extended);
    assert_int_equal(failed_left, 0);
    assert_int_equal(st, TASK_COMPLETED);
}

/* A handler that counts its runs and completes each. */
static atomic_int counted_runs;

static void counted_run(handler *h, const handler_task *t, unsigned timeout_s, handler_result *out)
{
    (void)h, (void)t, (void)timeout_s;
    atomic_fetch_add(&counted_runs, 1);
    *out = (handler_result){.ok = true, .status_msg = strdup("Task completed")};
}

static handler counted = {.name = "counted", .run = counted_run, .free = overrun_free};

/*
 * A batch whose hide ran out before its first run (a receive committed under load, its thread
 * scheduled late), and whose messages another receive has since taken — here moved to the
 * dead-letter queue, at max_receive_count 1 — runs none of its tasks and says so for each: they
 * are that receive's now. The extension before the first run, its receipts stale, changed nothing
 * and said nothing, and the runner ran both tasks, FAILED by their move to the dead-letter queue.
 */
static void test_a_batch_received_again_elsewhere_is_not_run(void **state)
{
    fixture *f = *state;
    use_config(f, JOBS_DEAD_AFTER_ONE_RECEIVE
               " \"handlers\": [{\"queue\": \"jobs\", \"handler\": \"noop\","
               " \"timeout\": 1, \"batch_size\": 2, \"concurrency\": 2}]}");
    atomic_store(&counted_runs, 0);
    char ids[2][37];
    send_tasks(f, 2, ids); /* before the runner starts: one batch */
    atomic_store(&hide_runs_out_armed, true);
    test_stderr cap;
    test_stderr_begin(&cap);
    runner *r = start_with(f, &counted);
    for (int i = 0; i < 2000 && !atomic_load(&hide_ran_out); i++)
        usleep(10000);
    runner_stop_receiving(r); /* the batch received goes on */
    join_within(r, 10, "after the batch");
    char *log = test_stderr_end(&cap);
    int runs = atomic_load(&counted_runs);
    size_t warned = runs ? 0 : expect_logged(log, "the task is not run here", NULL);
    free(log);
    assert_true(atomic_load(&hide_ran_out));
    if (runs != 0)
        fail_msg("%d task(s) run after their messages went to the dead-letter queue", runs);
    assert_int_equal(warned, 2);
    for (int i = 0; i < 2; i++) {
        task t = {0};
        assert_int_equal(store_get_task(f->store, ids[i], &t), STORE_OK);
        assert_int_equal(t.status, TASK_FAILED);
        task_clear(&t);
    }
    queue_stats dead = {0};
    assert_int_equal(broker_queue_stats(broker_of(f->store), "dead", &dead), STORE_OK);
    assert_int_equal(dead.visible, 2);
}

/*
 * A batch taken 1.5 s after its receive committed (a thread scheduled late on a loaded machine),
 * at a visibility timeout of 1 s, runs its tasks: the receive hid it for its first run (the
 * timeout and the runner's 5 s margin). Hidden for 1 s, its messages were received again by the
 * queue's other thread before the first run's extension, and at max_receive_count 1 moved to the
 * dead-letter queue, their tasks FAILED, never run. standing: the runner waits idle, and the
 * sending commit receives the batch for it (its standing receive); else the tasks are queued
 * before it starts, and its own receive takes them.
 */
static void batch_taken_late(fixture *f, bool standing)
{
    use_config(f, JOBS_DEAD_AFTER_ONE_RECEIVE
               " \"handlers\": [{\"queue\": \"jobs\", \"handler\": \"noop\","
               " \"timeout\": 1, \"batch_size\": 2, \"concurrency\": 2}]}");
    atomic_store(&counted_runs, 0);
    char ids[2][37];
    if (!standing)
        send_tasks(f, 2, ids); /* before the runner starts: one batch */
    atomic_store(&late_take_armed, true);
    runner *r = start_with(f, &counted);
    if (standing) {
        /* both threads' receives left with the writer: the sending commit fills the first */
        for (int i = 0; i < 500 && atomic_load(&stands) < 2; i++)
            usleep(10000);
        assert_int_equal(atomic_load(&stands), 2);
        send_tasks(f, 2, ids);
    }
    task_status got[2] = {wait_completed(f, ids[0], 10000), wait_completed(f, ids[1], 5000)};
    runner_stop_receiving(r);
    join_within(r, 10, "after the batch");
    assert_false(atomic_load(&late_take_armed));
    queue_stats dead = {0};
    assert_int_equal(broker_queue_stats(broker_of(f->store), "dead", &dead), STORE_OK);
    if (dead.visible != 0)
        fail_msg("%lld dead letter(s) of a batch taken 1.5 s after its %sreceive",
                 (long long)dead.visible, standing ? "standing " : "");
    assert_int_equal(got[0], TASK_COMPLETED);
    assert_int_equal(got[1], TASK_COMPLETED);
    assert_int_equal(atomic_load(&counted_runs), 2);
    assert_int_equal(atomic_load(&stood_claims), standing ? 1 : 0);
}

static void test_a_batch_taken_late_runs_its_tasks(void **state)
{
    batch_taken_late(*state, false);
}

static void test_a_batch_a_standing_receive_took_late_runs_its_tasks(void **state)
{
    batch_taken_late(*state, true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_idle_runner_stops_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_runner_thread_names_are_whole_characters, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_stop_between_flag_and_generation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_after_standing_claim_runs_the_batch, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_stop_after_own_claim_runs_the_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_not_kept_hidden_is_given_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_task_taskd_cannot_start_is_not_dead_lettered, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_commit_between_look_and_standing_is_not_missed,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_message_without_its_type_runs_its_task, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_run_past_its_margin_is_not_delivered_again, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_keeper_extension_holds_up_no_other_run, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_keeper_that_cannot_extend_warns_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_batch_is_hidden_before_a_run_that_would_outlast_it,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_an_aborts_give_backs_are_each_made, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_failed_delete_is_said_with_the_error, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_a_finished_tasks_message_stays_hidden_while_its_batch_runs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_batch_received_again_elsewhere_is_not_run, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_batch_taken_late_runs_its_tasks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_batch_a_standing_receive_took_late_runs_its_tasks,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
