/*
 * Unit tests for the built-in handlers at an abort (handlers.c): a run that came to its own end
 * says so (handler_result.own_end), so its outcome is the task's though an abort came as it
 * returned; a run the abort cut short does not, and its task is given back (test_work drives
 * both through the work step).
 * pthread_cond_timedwait() is wrapped (this test links with -Wl,--wrap=...), so that an abort
 * comes at one chosen moment of TASK1's wait:
 * - as the wait begins, before it runs out (the abort wakes it);
 * - once the wait has run out, before the waiting thread has its lock back (the abort takes the
 *   lock first, and the thread finds the handler aborted when it looks).
 * And a binding naming no handler: the refusal names every one the table has.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/sbuf.h"
#include "runner/handlers.h"
#include "support/builtin_handler.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The handler to abort as its next wait begins, and the one to abort once its wait ran out. */
static _Atomic(handler *) abort_in_wait;
static _Atomic(handler *) abort_after_wait;

int __real_pthread_cond_timedwait(pthread_cond_t *cond, pthread_mutex_t *mu,
                                  const struct timespec *until);
int __wrap_pthread_cond_timedwait(pthread_cond_t *cond, pthread_mutex_t *mu,
                                  const struct timespec *until);

int __wrap_pthread_cond_timedwait(pthread_cond_t *cond, pthread_mutex_t *mu,
                                  const struct timespec *until)
{
    handler *h = atomic_exchange(&abort_in_wait, NULL);
    if (h) { /* the abort comes while the wait lasts, and wakes it */
        pthread_mutex_unlock(mu);
        h->abort(h);
        pthread_mutex_lock(mu);
        return 0;
    }
    int rc = __real_pthread_cond_timedwait(cond, mu, until);
    if (rc == ETIMEDOUT && (h = atomic_exchange(&abort_after_wait, NULL))) {
        /* the wait ran out; the abort takes the lock before this thread has it back */
        pthread_mutex_unlock(mu);
        h->abort(h);
        pthread_mutex_lock(mu);
    }
    return rc;
}

/* A built-in handler as a binding with a timeout of 7200 s makes it; for TASK1, its wait and its
 * failure rate. */
static handler *make(const char *name, const char *seconds, const char *failure_rate)
{
    const handler_config binding = {.queue = "jobs", .timeout = 7200};
    return test_builtin_handler(&binding, name, seconds, failure_rate);
}

/* One run of h within timeout_s. */
static handler_result run(handler *h, unsigned timeout_s)
{
    handler_task t = {.id = "t1", .task_type = "TASK1", .data = "{}"};
    handler_result r = {0};
    h->run(h, &t, timeout_s, &r);
    return r;
}

/* A run reported ok or not, saying msg, own_end or not; then clear it (own_end with the rest). */
static void expect(handler_result *r, bool ok, const char *msg, bool own_end)
{
    assert_int_equal(r->ok, ok);
    assert_string_equal(r->status_msg, msg);
    assert_null(r->result);
    assert_false(r->retry);
    assert_false(r->lost);
    if (r->own_end != own_end)
        fail_msg("\"%s\": own_end %d, want %d", msg, r->own_end, own_end);
    handler_result_clear(r);
    assert_false(r->own_end);
}

/* A run of a fresh handler, no abort about: it ends by itself, ok or not, saying msg. */
static void ends_by_itself(const char *name, const char *seconds, const char *failure_rate,
                           unsigned timeout_s, bool ok, const char *msg)
{
    handler *h = make(name, seconds, failure_rate);
    handler_result r = run(h, timeout_s);
    expect(&r, ok, msg, true);
    handler_free(h);
}

/* noop completes by itself. */
static void test_noop_ends_by_itself(void **state)
{
    (void)state;
    ends_by_itself("noop", "0", "0", 30, true, "Task completed");
}

/* A TASK1 wait that runs out is the run's own end, and so is what the failure rate decides
 * after it; and so is a wait cut short by the handler's timeout: "timed out" is the task's. A
 * wait as long as the timeout times out too, as the start's warning and the README say: it
 * completed, at the end of its timeout, where every run of a TASK1_SECONDS not below it was to
 * fail as timed out. */
static void test_task1_wait_that_runs_out_is_its_own_end(void **state)
{
    (void)state;
    ends_by_itself("TASK1", "0", "0", 30, true, "Task completed");
    ends_by_itself("TASK1", "0", "1", 30, false, "Task failed somehow");
    ends_by_itself("TASK1", "1", "0", 0, false, "timed out after 0 s");
    ends_by_itself("TASK1", "1", "0", 1, false, "timed out after 1 s");
}

/* A TASK1 run of a handler waiting seconds, within timeout_s, with *when armed to abort the
 * handler at its moment of the wait: the wait takes the abort, and the run ends as wanted; the
 * run after it is cut at once. */
static void abort_at(_Atomic(handler *) *when, const char *seconds, unsigned timeout_s, bool ok,
                     const char *msg, bool own_end)
{
    handler *h = make("TASK1", seconds, "0");
    atomic_store(when, h);
    handler_result r = run(h, timeout_s);
    assert_null(atomic_load(when)); /* the wait took the abort */
    expect(&r, ok, msg, own_end);
    r = run(h, timeout_s);
    expect(&r, false, "aborted", false);
    handler_free(h);
}

/* An abort that comes while TASK1 waits cuts the run short: not its own end, whether it waited
 * for TASK1_SECONDS or for its timeout; and so is a run begun after the abort, a wait of 0 s
 * too. */
static void test_task1_wait_the_abort_cuts_is_not_its_own_end(void **state)
{
    (void)state;
    abort_at(&abort_in_wait, "3600", 7200, false, "aborted", false);
    abort_at(&abort_in_wait, "3600", 60, false, "aborted", false); /* the timeout's wait */

    handler *h = make("TASK1", "0", "0");
    h->abort(h);
    handler_result r = run(h, 30);
    expect(&r, false, "aborted", false);
    r = run(h, 0);
    expect(&r, false, "aborted", false);
    handler_free(h);
}

/* An abort that comes once TASK1's wait has run out, before the waiting thread has seen it: the
 * run ended by itself first, and its outcome stands, a timeout's too. */
static void test_task1_wait_that_ran_out_before_the_abort_is_its_own_end(void **state)
{
    (void)state;
    abort_at(&abort_after_wait, "0", 30, true, "Task completed", true);
    abort_at(&abort_after_wait, "1", 0, false, "timed out after 0 s", true); /* the timeout's */
}

/* A TASK1_SECONDS refused is quoted in its first 32 bytes at most, never half a character. */
static void test_a_refused_setting_is_quoted_in_whole_characters(void **state)
{
    (void)state;
    char value[128] = "1";
    for (int i = 0; i < 40; i++)
        strcat(value, "\xc3\xa9"); /* é: the 32 bytes end in the middle of one */
    setenv("TASK1_SECONDS", value, 1);
    handler_config hc = {.queue = "task1", .handler = "TASK1", .timeout = 30};
    char err[256] = "";
    handler *h = handler_create(&hc, err, sizeof err);
    unsetenv("TASK1_SECONDS");
    assert_null(h);
    assert_non_null(strstr(err, "(it is \"1\xc3\xa9"));
    assert_true(utf8_valid(err, strlen(err)));
}

/* A binding naming no handler is refused with the names of the table's, each one a binding may
 * name; a short buffer takes what fits. */
static void test_an_unknown_handler_is_refused_with_the_known_ones(void **state)
{
    (void)state;
    handler_config hc = {.queue = "jobs", .handler = "nope", .timeout = 30};
    char err[256] = "";
    assert_null(handler_create(&hc, err, sizeof err));
    assert_string_equal(err, "unknown handler \"nope\" for queue jobs (known: TASK1, noop, exec)");

    char names[256];
    snprintf(names, sizeof names, "%s", strstr(err, "(known: ") + strlen("(known: "));
    names[strcspn(names, ")")] = '\0';
    for (char *save = NULL, *name = strtok_r(names, ", ", &save); name;
         name = strtok_r(NULL, ", ", &save)) {
        snprintf(hc.handler, sizeof hc.handler, "%s", name);
        char why[256] = "";
        handler_free(handler_create(&hc, why, sizeof why)); /* exec, with no command, is refused */
        if (strstr(why, "unknown handler"))
            fail_msg("the refusal names %s, which is no handler: %s", name, why);
    }

    char small[51];
    snprintf(hc.handler, sizeof hc.handler, "nope");
    assert_null(handler_create(&hc, small, sizeof small));
    assert_string_equal(small, "unknown handler \"nope\" for queue jobs (known: T...");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_noop_ends_by_itself),
        cmocka_unit_test(test_task1_wait_that_runs_out_is_its_own_end),
        cmocka_unit_test(test_task1_wait_the_abort_cuts_is_not_its_own_end),
        cmocka_unit_test(test_task1_wait_that_ran_out_before_the_abort_is_its_own_end),
        cmocka_unit_test(test_an_unknown_handler_is_refused_with_the_known_ones),
        cmocka_unit_test(test_a_refused_setting_is_quoted_in_whole_characters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
