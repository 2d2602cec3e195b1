/*
 * Unit tests for store/task_cache: copies in and out, holds across commits, large tasks
 * left out, tasks sharing a set, and the rule that a read racing with a commit never leaves what
 * was before it in the cache (threads playing writer and readers).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "store/task_cache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ID1 "0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e5f"
#define ID2 "0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e60"

static task make(const char *id, const char *msg)
{
    task t = {
        .status = TASK_IN_PROGRESS, .created_time = 1, .updated_time = 2, .ttl = TASK_NULL_TIME};
    snprintf(t.id, sizeof t.id, "%s", id);
    snprintf(t.task_type, sizeof t.task_type, "TASK1");
    t.status_msg = strdup(msg);
    t.data = strdup("{\"a\":1}");
    t.trace = strdup("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    return t;
}

static void test_put_get_hold(void **state)
{
    (void)state;
    task_cache *c = task_cache_new(64);
    assert_non_null(c);
    task out;
    uint64_t gen = 99;
    assert_false(task_cache_get(c, ID1, &out, &gen));
    task t = make(ID1, "Task started");
    task_cache_put(c, &t, gen);
    memset(&out, 0, sizeof out);
    assert_true(task_cache_get(c, ID1, &out, &gen));
    assert_string_equal(out.id, ID1);
    assert_string_equal(out.status_msg, "Task started");
    assert_string_equal(out.data, "{\"a\":1}");
    assert_ptr_not_equal(out.data, t.data); /* a copy the caller owns */
    assert_null(out.result);
    assert_int_equal(out.status, TASK_IN_PROGRESS);
    task_clear(&out);
    assert_false(task_cache_get(c, ID2, &out, &gen)); /* another id is not it */

    /* a held task is not read, and nothing put while it is held is kept */
    task_cache_hold(c, ID1);
    assert_false(task_cache_get(c, ID1, &out, &gen));
    task_cache_put(c, &t, gen);
    assert_false(task_cache_get(c, ID1, &out, &gen));
    task_cache_hold(c, ID1); /* holds add up: a second commit of the same task */
    task_cache_release(c, ID1);
    task_cache_put(c, &t, gen);
    assert_false(task_cache_get(c, ID1, &out, &gen)); /* still held once */
    task_cache_release(c, ID1);
    assert_false(task_cache_get(c, ID1, &out, &gen)); /* the release dropped it */
    task_cache_put(c, &t, gen);
    assert_true(task_cache_get(c, ID1, &out, &gen));
    task_clear(&out);

    /* a put after a hold or a release that came between its get and the put keeps nothing */
    uint64_t before;
    task_cache_hold(c, ID1);
    task_cache_release(c, ID1);
    assert_false(task_cache_get(c, ID1, &out, &before));
    task_cache_hold(c, ID1);
    task_cache_release(c, ID1);
    task_cache_put(c, &t, before);
    assert_false(task_cache_get(c, ID1, &out, &gen));
    task_cache_put(c, &t, gen);
    assert_true(task_cache_get(c, ID1, &out, &gen));
    task_clear(&out);

    /* holding all */
    task_cache_hold_all(c);
    assert_false(task_cache_get(c, ID1, &out, &gen));
    task_cache_put(c, &t, gen);
    assert_false(task_cache_get(c, ID1, &out, &gen));
    task_cache_release_all(c);
    assert_false(task_cache_get(c, ID1, &out, &gen)); /* the release dropped it */
    task_cache_put(c, &t, gen);
    assert_true(task_cache_get(c, ID1, &out, &gen));
    task_clear(&out);

    /* a large task is not kept */
    task big = make(ID2, "");
    free(big.data);
    big.data = malloc(4000);
    memset(big.data, 'x', 3999);
    big.data[3999] = '\0';
    assert_false(task_cache_get(c, ID2, &out, &gen));
    task_cache_put(c, &big, gen);
    assert_false(task_cache_get(c, ID2, &out, &gen));
    task_clear(&big);
    task_clear(&t);
    task_cache_free(c);
    task_cache_free(NULL);
}

/* Ids that share a set are kept side by side, up to TASK_CACHE_WAYS; one more takes the place
 * of one of them, each in turn. A hold of one of them leaves the others readable; holds of two make
 * the whole set miss until both end. */
static void test_tasks_sharing_a_set(void **state)
{
    (void)state;
    task_cache *c = task_cache_new(1); /* every id shares the one set */
    assert_non_null(c);
    char ids[TASK_CACHE_WAYS + 1][TASK_ID_LEN + 1];
    task ts[TASK_CACHE_WAYS + 1];
    task out;
    uint64_t gen;
    for (int i = 0; i <= TASK_CACHE_WAYS; i++) {
        snprintf(ids[i], sizeof ids[i], "0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e%02d", i);
        ts[i] = make(ids[i], "kept");
    }
    for (int i = 0; i < TASK_CACHE_WAYS; i++) {
        assert_false(task_cache_get(c, ids[i], &out, &gen));
        task_cache_put(c, &ts[i], gen);
    }
    for (int i = 0; i < TASK_CACHE_WAYS; i++) {
        assert_true(task_cache_get(c, ids[i], &out, &gen));
        assert_string_equal(out.id, ids[i]);
        task_clear(&out);
    }
    /* one more: one of them gives way (the first, the turn's start), the others stay */
    assert_false(task_cache_get(c, ids[TASK_CACHE_WAYS], &out, &gen));
    task_cache_put(c, &ts[TASK_CACHE_WAYS], gen);
    assert_false(task_cache_get(c, ids[0], &out, &gen));
    for (int i = 1; i <= TASK_CACHE_WAYS; i++) {
        assert_true(task_cache_get(c, ids[i], &out, &gen));
        task_clear(&out);
    }
    /* a hold of one task drops it alone; the others are read while it is held */
    task_cache_hold(c, ids[1]);
    assert_false(task_cache_get(c, ids[1], &out, &gen));
    assert_true(task_cache_get(c, ids[2], &out, &gen));
    task_clear(&out);
    /* and a task read meanwhile is kept */
    assert_false(task_cache_get(c, ids[0], &out, &gen));
    task_cache_put(c, &ts[0], gen);
    assert_true(task_cache_get(c, ids[0], &out, &gen));
    task_clear(&out);
    /* a second task held at once: no task of the set is read (released at once: no wait) */
    task_cache_hold(c, ids[2]);
    assert_false(task_cache_get(c, ids[3], &out, &gen));
    task_cache_release(c, ids[2]);
    task_cache_release(c, ids[1]);
    assert_true(task_cache_get(c, ids[3], &out, &gen));
    task_clear(&out);
    assert_false(task_cache_get(c, ids[1], &out, &gen)); /* its release dropped it */
    assert_false(task_cache_get(c, ids[2], &out, &gen));
    for (int i = 0; i <= TASK_CACHE_WAYS; i++)
        task_clear(&ts[i]);
    task_cache_free(c);
}

/*
 * A writer holds the task, "commits" version v of it (the database holds v from then on,
 * for every reader), then releases it. Readers note the version the database holds, then
 * read: a hit must hold at least that version; a miss reads the database and puts it. A stale
 * put, or a hit on what was kept before a commit that readers can already see, would show as a
 * hit older than the version noted.
 */
typedef struct race {
    task_cache *c;
    atomic_long db; /* the committed version */
    atomic_bool stop;
    atomic_long hits, stale;
} race;

static void *writer_main(void *arg)
{
    race *r = arg;
    for (long v = 1; !atomic_load(&r->stop); v++) {
        task_cache_hold(r->c, ID1);
        atomic_store(&r->db, v);
        task_cache_release(r->c, ID1);
    }
    return NULL;
}

static void *reader_main(void *arg)
{
    race *r = arg;
    while (!atomic_load(&r->stop)) {
        long seen = atomic_load(&r->db);
        task out;
        uint64_t gen;
        if (task_cache_get(r->c, ID1, &out, &gen)) {
            atomic_fetch_add(&r->hits, 1);
            if (strtol(out.status_msg, NULL, 10) < seen)
                atomic_fetch_add(&r->stale, 1);
            task_clear(&out);
            continue;
        }
        char v[24];
        snprintf(v, sizeof v, "%ld", atomic_load(&r->db)); /* the read, after the get */
        task t = make(ID1, v);
        task_cache_put(r->c, &t, gen);
        task_clear(&t);
    }
    return NULL;
}

static void test_no_stale_read_after_a_commit(void **state)
{
    (void)state;
    race r = {.c = task_cache_new(16)};
    assert_non_null(r.c);
    pthread_t w, rd[3];
    assert_int_equal(pthread_create(&w, NULL, writer_main, &r), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&rd[i], NULL, reader_main, &r), 0);
    struct timespec ts = {0, 400 * 1000 * 1000};
    nanosleep(&ts, NULL);
    atomic_store(&r.stop, true);
    pthread_join(w, NULL);
    for (int i = 0; i < 3; i++)
        pthread_join(rd[i], NULL);
    print_message("hits %ld, stale %ld\n", atomic_load(&r.hits), atomic_load(&r.stale));
    assert_int_equal(atomic_load(&r.stale), 0);
    task_cache_free(r.c);
}

static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

typedef struct releaser {
    task_cache *c;
    int after_ms;
} releaser;

static void *releaser_main(void *arg)
{
    releaser *r = arg;
    struct timespec ts = {0, (long)r->after_ms * 1000000L};
    nanosleep(&ts, NULL);
    task_cache_release(r->c, ID1);
    return NULL;
}

/* One try of a get while its task's commit is under way and released after 15 ms: another
 * task's get must not wait, its own must wait for the release. Says whether the try showed
 * that, in `why` if not. */
static bool try_get_during_a_commit(task_cache *c, char *why, size_t why_size)
{
    task out;
    uint64_t gen;
    task_cache_hold(c, ID1);
    releaser r = {c, 15};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, releaser_main, &r), 0);
    double t0 = mono_ms();
    assert_false(task_cache_get(c, ID2, &out, &gen)); /* another task: no wait */
    double other = mono_ms() - t0;
    assert_false(task_cache_get(c, ID1, &out, &gen)); /* its task: waits for the release */
    double waited = mono_ms() - t0;
    pthread_join(th, NULL);
    snprintf(why, why_size,
             "another task's get took %.1f ms, its own %.1f ms (release after 15 ms)", other,
             waited);
    return other < 12 && waited >= 12;
}

/* A get of a task whose commit is under way waits for it (up to 20 ms), then misses: the read
 * that follows answers the commit. A get of another task sharing the set does not wait. The
 * timed half is tried up to five times: a thread descheduled for 12 ms on a loaded machine
 * spoils a try, where a get that never waits, or waits for every task, spoils every one. */
static void test_get_waits_for_a_commit_of_its_task(void **state)
{
    (void)state;
    task_cache *c = task_cache_new(1); /* every id shares the one set */
    assert_non_null(c);
    task t = make(ID1, "before");
    task out;
    uint64_t gen;
    assert_false(task_cache_get(c, ID1, &out, &gen));
    task_cache_put(c, &t, gen);

    char why[160] = "";
    bool shown = false;
    for (int i = 0; i < 5 && !shown; i++)
        shown = try_get_during_a_commit(c, why, sizeof why);
    if (!shown)
        fail_msg("in five tries: %s", why);
    assert_false(task_cache_get(c, ID1, &out, &gen)); /* the generation after the last release */
    task_cache_put(c, &t, gen);                       /* read after the release: kept */
    assert_true(task_cache_get(c, ID1, &out, &gen));
    task_clear(&out);

    task_cache_hold(c, ID1); /* never released in time: the get gives up after 20 ms */
    double t0 = mono_ms();
    assert_false(task_cache_get(c, ID1, &out, &gen));
    double waited = mono_ms() - t0;
    if (waited < 15)
        fail_msg("a get gave up on a held task after %.1f ms, not 20", waited);
    task_cache_release(c, ID1);
    task_clear(&t);
    task_cache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get_hold),
        cmocka_unit_test(test_tasks_sharing_a_set),
        cmocka_unit_test(test_no_stale_read_after_a_commit),
        cmocka_unit_test(test_get_waits_for_a_commit_of_its_task),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
