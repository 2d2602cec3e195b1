/*
 * Unit tests for store/queue_depths: the counters the writer keeps. Time is given explicitly
 * (now_ms), so hidden messages becoming visible is tested without sleeping; a rolled-back
 * write's part of the log is forgotten; a redrive moves a whole queue; loading gives the
 * same counts as the moves that led there.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "store/queue_depths.h"

static void expect(queue_depths *d, const char *q, int64_t now_ms, int64_t visible,
                   int64_t in_flight, int64_t delayed)
{
    queue_stats st;
    queue_depths_get(d, q, now_ms, &st);
    if (st.visible != visible || st.in_flight != in_flight || st.delayed != delayed)
        print_error("%s at %lld: %lld %lld %lld, want %lld %lld %lld\n", q, (long long)now_ms,
                    (long long)st.visible, (long long)st.in_flight, (long long)st.delayed,
                    (long long)visible, (long long)in_flight, (long long)delayed);
    assert_int_equal(st.visible, visible);
    assert_int_equal(st.in_flight, in_flight);
    assert_int_equal(st.delayed, delayed);
}

static void test_moves_and_time(void **state)
{
    (void)state;
    queue_depths *d = queue_depths_new();
    assert_non_null(d);
    depth_log l = {0};
    expect(d, "q", 1000, 0, 0, 0);

    /* three sent visible, two delayed until 2000 */
    for (int i = 0; i < 3; i++)
        depth_log_enter(&l, d, "q", 1000, false, 1000);
    depth_log_enter(&l, d, "q", 2000, false, 1000);
    depth_log_enter(&l, d, "q", 2000, false, 1000);
    expect(d, "q", 1000, 0, 0, 0); /* nothing before the commit */
    queue_depths_apply(d, &l, 1000);
    expect(d, "q", 1000, 3, 0, 2);

    /* two received, hidden until 1500 */
    for (int i = 0; i < 2; i++) {
        depth_log_leave(&l, d, "q", 1000, false);
        depth_log_enter(&l, d, "q", 1500, true, 1000);
    }
    queue_depths_apply(d, &l, 1000);
    expect(d, "q", 1000, 1, 2, 2);
    /* one deleted while hidden */
    depth_log_leave(&l, d, "q", 1500, true);
    queue_depths_apply(d, &l, 1100);
    expect(d, "q", 1100, 1, 1, 2);
    /* time passes: the received one's visibility runs out, then the delay */
    expect(d, "q", 1500, 2, 0, 2);
    expect(d, "q", 1999, 2, 0, 2);
    expect(d, "q", 2000, 4, 0, 0);
    /* a message that leaves after its slot passed was counted visible */
    depth_log_leave(&l, d, "q", 2000, false);
    queue_depths_apply(d, &l, 2100);
    expect(d, "q", 2100, 3, 0, 0);

    depth_log_free(&l);
    queue_depths_free(d);
}

static void test_rollback_and_redrive(void **state)
{
    (void)state;
    queue_depths *d = queue_depths_new();
    depth_log l = {0};
    depth_log_enter(&l, d, "work", 0, false, 10);
    size_t mark = depth_log_mark(&l);
    depth_log_enter(&l, d, "work", 0, false, 10);
    depth_log_enter(&l, d, "dlq", 500, true, 10);
    depth_log_rewind(&l, mark); /* that write was rolled back */
    queue_depths_apply(d, &l, 10);
    expect(d, "work", 10, 1, 0, 0);
    expect(d, "dlq", 10, 0, 0, 0);

    depth_log_enter(&l, d, "dlq", 10, false, 10);
    depth_log_enter(&l, d, "dlq", 900, true, 10); /* one in flight in the DLQ */
    queue_depths_apply(d, &l, 10);
    expect(d, "dlq", 10, 1, 1, 0);
    assert_false(depth_log_makes_visible(&l, d, "work"));
    /* a redrive: each leaves the DLQ from where it was and enters work, visible */
    depth_log_leave(&l, d, "dlq", 10, false);
    depth_log_enter(&l, d, "work", 20, false, 20);
    depth_log_leave(&l, d, "dlq", 900, true);
    depth_log_enter(&l, d, "work", 20, false, 20);
    assert_true(depth_log_makes_visible(&l, d, "work"));
    queue_depths_apply(d, &l, 20);
    expect(d, "dlq", 20, 0, 0, 0);
    expect(d, "work", 20, 3, 0, 0);
    expect(d, "dlq", 1000, 0, 0, 0); /* its old slot is gone with it */

    depth_log_free(&l);
    queue_depths_free(d);
}

static void test_load(void **state)
{
    (void)state;
    queue_depths *d = queue_depths_new();
    assert_true(queue_depths_load(d, "q", 0, false, 5));
    assert_true(queue_depths_load(d, "q", 0, true, 2));
    assert_true(queue_depths_load(d, "q", 300, true, 3));
    assert_true(queue_depths_load(d, "q", 200, false, 4));
    expect(d, "q", 100, 7, 3, 4);
    expect(d, "q", 250, 11, 3, 0);
    queue_depths_clear(d);
    expect(d, "q", 250, 0, 0, 0);
    queue_depths_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_moves_and_time),
        cmocka_unit_test(test_rollback_and_redrive),
        cmocka_unit_test(test_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
