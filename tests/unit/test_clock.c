/*
 * Unit tests for util/clock: the monotonic nanoseconds-to-timespec
 * conversion condition-variable deadlines use, conditions on the monotonic
 * clock, the clocks' units, the steady wall clock (a step of the wall
 * clock itself is driven in integration/test_clock_step.py), and CPU time.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "util/clock.h"

#include <errno.h>
#include <pthread.h>
#include <time.h>

static void check_ts(int64_t ns, long long want_sec, long want_nsec)
{
    struct timespec ts = clock_mono_timespec(ns);
    assert_int_equal((long long)ts.tv_sec, want_sec);
    assert_int_equal(ts.tv_nsec, want_nsec);
}

static void test_timespec_splits_seconds(void **state)
{
    (void)state;
    check_ts(0, 0, 0);
    check_ts(1, 0, 1);
    check_ts(999999999, 0, 999999999);
    check_ts(1000000000, 1, 0);
    check_ts(1000000001, 1, 1);
    check_ts(1500000000, 1, 500000000);
    check_ts(INT64_C(86400123456789), 86400, 123456789);
    check_ts(INT64_MAX, INT64_MAX / 1000000000, (long)(INT64_MAX % 1000000000));
}

static void test_timespec_is_a_monotonic_deadline(void **state)
{
    (void)state;
    /* now + 1 s on CLOCK_MONOTONIC, as a condition variable on that clock reads it */
    int64_t until = clock_mono_ns() + 1000000000;
    struct timespec ts = clock_mono_timespec(until);
    struct timespec now;
    assert_int_equal(clock_gettime(CLOCK_MONOTONIC, &now), 0);
    int64_t ahead = ((int64_t)ts.tv_sec - now.tv_sec) * 1000000000 + (ts.tv_nsec - now.tv_nsec);
    assert_true(ahead > 0 && ahead <= 1000000000);
    assert_true(ts.tv_nsec >= 0 && ts.tv_nsec < 1000000000);
}

static void test_cond_waits_on_the_monotonic_clock(void **state)
{
    (void)state;
    /* a condition on the wall clock would take a monotonic deadline (about the uptime) as
     * long past and return at once; a monotonic one waits the 50 ms */
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cond;
    assert_int_equal(clock_mono_cond_init(&cond), 0);
    int64_t start = clock_mono_ns();
    struct timespec until = clock_mono_after_ms(50);
    pthread_mutex_lock(&mu);
    int rc = 0;
    while (rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&cond, &mu, &until);
    pthread_mutex_unlock(&mu);
    int64_t waited_ms = (clock_mono_ns() - start) / 1000000;
    assert_true(waited_ms >= 49);
    assert_true(waited_ms < 5000);
    pthread_cond_destroy(&cond);
}

static void test_units_agree(void **state)
{
    (void)state;
    int64_t ns = clock_mono_ns(), ms = clock_mono_ms();
    assert_true(ms >= ns / 1000000 && ms - ns / 1000000 < 1000);
    int64_t uns = clock_unix_ns(), ums = clock_unix_ms(), us = clock_unix_s();
    assert_true(ums >= uns / 1000000 && ums - uns / 1000000 < 1000);
    assert_true(us >= uns / 1000000000 && us - uns / 1000000000 < 2);
}

static void test_steady_clock_starts_at_the_wall_clock(void **state)
{
    (void)state;
    int64_t wall = clock_unix_ms(), steady = clock_steady_ms();
    assert_true(steady - wall >= -50 && steady - wall <= 50);
    int64_t skew = clock_steady_skew_ms();
    assert_true(skew >= -50 && skew <= 50); /* no step in a test run */
    int64_t last = clock_steady_ms();
    for (int i = 0; i < 100000; i++) { /* never goes back */
        int64_t now = clock_steady_ms();
        assert_true(now >= last);
        last = now;
    }
    struct timespec pause = {.tv_nsec = 20000000};
    nanosleep(&pause, NULL);
    assert_true(clock_steady_ms() - steady >= 20); /* and moves with time */
}

/* A sleep lasts at least its milliseconds, and none at all for 0 or less. */
static void test_sleep_takes_at_least_its_time(void **state)
{
    (void)state;
    int64_t t0 = clock_mono_ns();
    clock_sleep_ms(20);
    assert_true(clock_mono_ns() - t0 >= 20 * 1000000);
    t0 = clock_mono_ns();
    clock_sleep_ms(0);
    clock_sleep_ms(-5);
    assert_true(clock_mono_ns() - t0 < 1000 * 1000000LL); /* not a negative count taken as huge */
}

/* CPU time is user and system time together, their microseconds carried into milliseconds. */
static void test_cpu_time_in_milliseconds(void **state)
{
    (void)state;
    struct rusage ru = {.ru_utime = {1, 500000}, .ru_stime = {2, 600999}};
    assert_int_equal(clock_cpu_ms(&ru), 4100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timespec_splits_seconds),
        cmocka_unit_test(test_timespec_is_a_monotonic_deadline),
        cmocka_unit_test(test_cond_waits_on_the_monotonic_clock),
        cmocka_unit_test(test_units_agree),
        cmocka_unit_test(test_steady_clock_starts_at_the_wall_clock),
        cmocka_unit_test(test_sleep_takes_at_least_its_time),
        cmocka_unit_test(test_cpu_time_in_milliseconds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
