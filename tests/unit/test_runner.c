/*
 * Unit tests for the local runner's life cycle over a real SQLite store: a stop ends its threads
 * at once, whenever it comes. broker_wait() is wrapped (this test links with
 * -Wl,--wrap=broker_wait), so a stop can be made to arrive at one chosen moment: inside a runner
 * thread's own call that notes the broker's generation, after the thread last looked at its
 * stopping flag. A runner that looked at the flag before noting the generation would note the
 * stop's generation and then sleep out its idle recheck (10 s) before it sees the stop.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/config.h"
#include "runner/handlers.h"
#include "runner/runner.h"
#include "store/broker.h"
#include "store/store_sqlite.h"
#include "util/clock.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The runner the wrapper stops, and whether it is to stop it on the next noting call. */
static runner *stop_target;
static atomic_bool stop_armed;
static atomic_int stops_injected;

void __real_broker_wait(broker *b, bool changes, uint64_t *gen, int timeout_ms);
void __wrap_broker_wait(broker *b, bool changes, uint64_t *gen, int timeout_ms);

/* A call with timeout 0 only notes the generation: when armed, stop the runner just before. */
void __wrap_broker_wait(broker *b, bool changes, uint64_t *gen, int timeout_ms)
{
    if (timeout_ms == 0 && !changes && atomic_exchange(&stop_armed, false)) {
        runner_stop_receiving(stop_target);
        atomic_fetch_add(&stops_injected, 1);
    }
    __real_broker_wait(b, changes, gen, timeout_ms);
}

typedef struct fixture {
    char dir[64];
    char db[128];
    store *store;
    config cfg;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/taskd-runner-test.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->db, sizeof f->db, "%s/t.db", f->dir);
    char err[256] = "";
    store_sqlite_options o = {.path = f->db, .sync = STORE_SYNC_NORMAL};
    f->store = store_sqlite_open(&o, err, sizeof err);
    assert_non_null(f->store);
    const char *text = "{\"queues\": [{\"name\": \"jobs\"}],"
                       " \"subscriptions\": [{\"queue\": \"jobs\"}],"
                       " \"handlers\": [{\"queue\": \"jobs\", \"handler\": \"noop\","
                       " \"concurrency\": 1}]}";
    assert_true(config_load_text(&f->cfg, text, "test", err, sizeof err));
    atomic_store(&stop_armed, false);
    atomic_store(&stops_injected, 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    store_close(f->store);
    config_free(&f->cfg);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static runner *start(fixture *f)
{
    char err[256] = "";
    handler *h = handler_create(&f->cfg.handlers[0], err, sizeof err);
    assert_non_null(h);
    runner *r = runner_start(f->store, broker_of(f->store), &f->cfg, &f->cfg.handlers[0], h, NULL,
                             err, sizeof err);
    assert_non_null(r);
    return r;
}

/* Join within seconds; on failure still end and free the runner before failing. */
static void join_within(runner *r, double seconds, const char *what)
{
    bool ended = runner_join(r, clock_mono_s() + seconds);
    if (!ended)
        runner_join(r, clock_mono_s() + 30);
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

/* A stop that comes after the runner thread last looked at its flag, just before it notes the
 * broker's generation, still ends it at once. */
static void test_stop_between_flag_and_generation(void **state)
{
    fixture *f = *state;
    runner *r = start(f);
    usleep(100000); /* into its idle wait */
    stop_target = r;
    atomic_store(&stop_armed, true);
    broker_wake_all(broker_of(f->store)); /* the thread looks again: the stop comes in its call */
    for (int i = 0; i < 300 && atomic_load(&stops_injected) == 0; i++)
        usleep(10000);
    assert_int_equal(atomic_load(&stops_injected), 1);
    join_within(r, 3, "stopped between its steps");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_idle_runner_stops_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_between_flag_and_generation, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
