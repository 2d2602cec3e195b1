/*
 * Unit tests for the `sweep` Lambda role: over a SQLite store, a scheduled
 * event ends the leases of client claims that ran out (as the role's clock
 * tells), step by step, and answers how many; it takes no step when the
 * invocation's deadline is near; a store that fails fails the invocation,
 * naming how. The DynamoDB side of the same store calls (the claims index,
 * the conditional update) is test_api's store contract over DynamoDB Local,
 * and the role behind the emulator is test_lambda_pipeline's ClaimLeases.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "aws/sweep_role.h"
#include "support/stderr_capture.h"
#include "support/store_front.h"
#include "support/tmpdir.h"
#include "support_local/sqlite_store.h"
#include "trace/trace.h"
#include "util/clock.h"
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#define NOW 1700000000 /* the claims' clock */

static const char SCHEDULED[] =
    "{\"version\":\"0\",\"detail-type\":\"Scheduled Event\",\"source\":\"aws.events\","
    "\"time\":\"2023-11-14T22:14:00Z\",\"detail\":{}}";

static int64_t sweep_now; /* the role's clock */

static int64_t role_clock(void)
{
    return sweep_now;
}

/* A front whose list of expired claims fails (rc), repeats one claim as often as asked (a list
 * that lags behind the writes: stale.id set), or is the inner store's. */
static store_rc listing_rc;
static store_claim stale;

typedef struct fixture {
    char dir[256];
    store *store;
    metrics *metrics;
    role *role;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->store = test_sqlite_store(f->dir, sizeof f->dir, "taskd-sweep-test");
    f->metrics = metrics_new();
    assert_non_null(f->metrics);
    trace_declare_metrics(f->metrics);
    sweep_now = NOW;
    listing_rc = STORE_OK; /* the front's list: the inner store's, until a case says otherwise */
    memset(&stale, 0, sizeof stale);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (f->role)
        f->role->free(f->role);
    store_close(f->store);
    metrics_free(f->metrics);
    assert_int_equal(test_tmpdir_remove(f->dir), 0);
    free(f);
    return 0;
}

static void make_role(fixture *f, store *s)
{
    char err[256] = "";
    f->role = sweep_role_new(s, f->metrics, role_clock, err, sizeof err);
    assert_non_null(f->role);
    assert_string_equal(f->role->name, "sweep");
}

/* Invoke with the scheduled event; deadline_ms 0: none known. */
static void invoke(fixture *f, int64_t deadline_ms, role_result *out)
{
    lambda_invocation inv = {.deadline_ms = deadline_ms, .event = (char *)SCHEDULED};
    inv.event_len = strlen(SCHEDULED);
    memset(out, 0, sizeof *out);
    f->role->invoke(f->role, &inv, out);
}

static void assert_answer(fixture *f, int64_t deadline_ms, const char *want)
{
    role_result res;
    invoke(f, deadline_ms, &res);
    if (!res.response)
        fail_msg("the invocation failed: %s: %s", res.error_type, res.error_message);
    assert_string_equal(res.response, want);
    role_result_clear(&res);
}

/* A TASK2 task claimed by a client whose lease ends at expires (0: a claim with no lease). */
static void claimed(fixture *f, int64_t expires, char id[37])
{
    store_new_task t = {.task_type = "TASK2", .data = "{}", .ttl = TASK_NULL_TIME};
    assert_int_equal(store_create_task(f->store, &t, NOW, id), STORE_OK);
    store_update u = {.id = id,
                      .status = TASK_IN_PROGRESS,
                      .status_msg = "mine",
                      .claim_key = "k",
                      .claim_expires = expires};
    assert_int_equal(store_update_task(f->store, &u, NOW, NULL), STORE_OK);
}

/* The count of ended leases of task_type the role's metrics hold (0: none yet). */
static long expired_count(fixture *f, const char *task_type)
{
    sbuf b = {0};
    metrics_write(f->metrics, &b);
    assert_false(sbuf_failed(&b));
    char line[128];
    snprintf(line, sizeof line, "taskd_claims_expired_total{task_type=\"%s\"} ", task_type);
    const char *at = b.data ? strstr(b.data, line) : NULL;
    long n = at ? strtol(at + strlen(line), NULL, 10) : 0;
    sbuf_free(&b);
    return n;
}

static void assert_task(fixture *f, const char *id, task_status status, const char *msg)
{
    task t;
    assert_int_equal(store_get_task(f->store, id, &t), STORE_OK);
    assert_string_equal(task_status_name(t.status), task_status_name(status));
    assert_string_equal(t.status_msg, msg);
    task_clear(&t);
}

/* The leases that ran out end, those still running and claims with no lease do not; a second
 * run finds nothing more. */
static void test_leases_that_ran_out_end(void **state)
{
    fixture *f = *state;
    char early[37], later[37], running[37], forever[37];
    claimed(f, NOW + 10, early);
    claimed(f, NOW + 20, later);
    claimed(f, NOW + 100, running);
    claimed(f, 0, forever);
    make_role(f, f->store);
    sweep_now = NOW + 30;
    assert_answer(f, 0, "{\"ended\":2,\"more\":false}");
    assert_task(f, early, TASK_FAILED,
                "claim expired: no outcome reported by 2023-11-14T22:13:30Z");
    assert_task(f, later, TASK_FAILED,
                "claim expired: no outcome reported by 2023-11-14T22:13:40Z");
    assert_task(f, running, TASK_IN_PROGRESS, "mine");
    assert_task(f, forever, TASK_IN_PROGRESS, "mine");
    assert_int_equal(expired_count(f, "TASK2"), 2);
    assert_answer(f, 0, "{\"ended\":0,\"more\":false}");
    assert_int_equal(expired_count(f, "TASK2"), 2);
}

/* More leases than one step takes: the run goes on, step after step, until none is left. */
static void test_many_leases_take_several_steps(void **state)
{
    fixture *f = *state;
    enum { N = 230 };
    char ids[N][37];
    for (int i = 0; i < N; i++)
        claimed(f, NOW + 1 + i % 7, ids[i]);
    make_role(f, f->store);
    sweep_now = NOW + 60;
    char want[64];
    snprintf(want, sizeof want, "{\"ended\":%d,\"more\":false}", N);
    assert_answer(f, clock_unix_ms() + 60000, want);
    for (int i = 0; i < N; i++) {
        task t;
        assert_int_equal(store_get_task(f->store, ids[i], &t), STORE_OK);
        assert_int_equal(t.status, TASK_FAILED);
        task_clear(&t);
    }
}

/* With the deadline near, no step starts: nothing ended, and more said. */
static void test_no_step_near_the_deadline(void **state)
{
    fixture *f = *state;
    char id[37];
    claimed(f, NOW + 1, id);
    make_role(f, f->store);
    sweep_now = NOW + 60;
    assert_answer(f, clock_unix_ms() + 1000, "{\"ended\":0,\"more\":true}");
    assert_task(f, id, TASK_IN_PROGRESS, "mine");
}

static store_rc front_expired_claims(store *s, int64_t now, store_claim *out, size_t max, size_t *n)
{
    *n = 0;
    if (listing_rc != STORE_OK)
        return listing_rc;
    if (stale.id[0]) {
        for (*n = 0; *n < max; (*n)++)
            out[*n] = stale;
        return STORE_OK;
    }
    store *inner = store_front_inner(s);
    return inner->ops->expired_claims(inner, now, out, max, n);
}

static bool answer_writes(store_front *fr, store_write *w)
{
    w->rc = fr->rc;
    return fr->rc != STORE_OK; /* STORE_OK: the inner store's answer */
}

static void front_over(store_front *fr, store *inner, store_rc write_rc, store_ops *ops)
{
    store_front_init(fr, inner, answer_writes, write_rc);
    *ops = *fr->base.ops;
    ops->expired_claims = front_expired_claims;
    fr->base.ops = ops;
}

static void assert_failed(fixture *f, const char *type, const char *message)
{
    role_result res;
    invoke(f, 0, &res);
    assert_null(res.response);
    assert_string_equal(res.error_type, type);
    assert_string_equal(res.error_message, message);
    role_result_clear(&res);
}

/* A store that fails fails the invocation: its list (busy), or its writes (an error). */
static void test_a_failing_store_fails_the_invocation(void **state)
{
    fixture *f = *state;
    char id[37];
    claimed(f, NOW + 1, id);
    sweep_now = NOW + 60;
    store_front fr;
    store_ops ops;
    front_over(&fr, f->store, STORE_OK, &ops);
    make_role(f, &fr.base);
    listing_rc = STORE_BUSY;
    assert_failed(f, "Store.Busy", "ending expired claims failed (busy) after 0 ended");
    listing_rc = STORE_OK; /* the list mended; the writes fail */
    fr.rc = STORE_ERROR;
    assert_failed(f, "Store.Error", "ending expired claims failed (error) after 0 ended");
    assert_task(f, id, TASK_IN_PROGRESS, "mine");
    fr.rc = STORE_OK; /* the store mended: the next run ends it */
    assert_answer(f, 0, "{\"ended\":1,\"more\":false}");
}

static char refused[37]; /* the task whose changes refuse_one() refuses for good */

static bool refuse_one(store_front *fr, store_write *w)
{
    (void)fr;
    if (w->kind != STORE_WRITE_UPDATE || strcmp(w->update.id, refused) != 0)
        return false;
    w->rc = STORE_INVALID;
    return true;
}

/* A lease the store can never end (a DynamoDB item at its size limit, which the failure would
 * grow) is said and passed over: the leases after it end, in this run and the next, where it
 * had held up every one of them, the earliest listed first. */
static void test_a_lease_the_store_cannot_end_is_passed_over(void **state)
{
    fixture *f = *state;
    char other[37];
    claimed(f, NOW + 1, refused); /* the earliest: first in every list */
    claimed(f, NOW + 2, other);
    store_front fr;
    store_ops ops;
    front_over(&fr, f->store, STORE_OK, &ops);
    fr.answer = refuse_one;
    make_role(f, &fr.base);
    sweep_now = NOW + 60;
    test_stderr cap;
    test_stderr_begin(&cap);
    assert_answer(f, 0, "{\"ended\":1,\"more\":false}");
    char *logged = test_stderr_end(&cap);
    expect_logged(logged, "a lease ran out that the store can never end", refused);
    free(logged);
    assert_task(f, refused, TASK_IN_PROGRESS, "mine");
    assert_task(f, other, TASK_FAILED,
                "claim expired: no outcome reported by 2023-11-14T22:13:22Z");
    claimed(f, NOW + 3, other); /* a later lease: the next run ends it too */
    assert_answer(f, 0, "{\"ended\":1,\"more\":false}");
    assert_task(f, other, TASK_FAILED,
                "claim expired: no outcome reported by 2023-11-14T22:13:23Z");
}

/* A lease renewed before it ran out is not ended, and a claim finished in time is not either. */
static void test_a_renewed_lease_is_not_ended(void **state)
{
    fixture *f = *state;
    char renewed[37], finished[37], lapsed[37];
    claimed(f, NOW + 1, renewed);
    claimed(f, NOW + 1, finished);
    claimed(f, NOW + 2, lapsed);
    store_update again = {.id = renewed,
                          .status = TASK_IN_PROGRESS,
                          .status_msg = "mine",
                          .claim_key = "k",
                          .claim_expires = NOW + 1000};
    assert_int_equal(store_update_task(f->store, &again, NOW + 1, NULL), STORE_REPEAT);
    store_update done = {.id = finished, .status = TASK_COMPLETED, .status_msg = "Task completed"};
    assert_int_equal(store_update_task(f->store, &done, NOW + 1, NULL), STORE_OK);
    make_role(f, f->store);
    sweep_now = NOW + 60;
    assert_answer(f, 0, "{\"ended\":1,\"more\":false}");
    assert_task(f, renewed, TASK_IN_PROGRESS, "mine");
    assert_task(f, finished, TASK_COMPLETED, "Task completed");
    assert_task(f, lapsed, TASK_FAILED,
                "claim expired: no outcome reported by 2023-11-14T22:13:22Z");
}

/* A list that keeps giving claims ended since (an index behind its table) ends the run: a full
 * step that ended nothing is no reason to take another. */
static void test_a_stale_list_ends_the_run(void **state)
{
    fixture *f = *state;
    claimed(f, NOW + 1, stale.id);
    stale.claim_expires = NOW + 1;
    store_update done = {.id = stale.id, .status = TASK_COMPLETED, .status_msg = "Task completed"};
    assert_int_equal(store_update_task(f->store, &done, NOW + 1, NULL), STORE_OK);
    store_front fr;
    store_ops ops;
    front_over(&fr, f->store, STORE_OK, &ops);
    make_role(f, &fr.base);
    sweep_now = NOW + 60;
    /* the deadline bounds a run that would go on (it would answer more: true after 3 s) */
    assert_answer(f, clock_unix_ms() + 8000, "{\"ended\":0,\"more\":false}");
    assert_task(f, stale.id, TASK_COMPLETED, "Task completed");
    assert_int_equal(expired_count(f, "TASK2"), 0);
}

/* An answer that could not be made fails the invocation with why: Runtime.OutOfMemory for memory
 * run out, and for text that could not be formatted an error of its own that says so. */
static void test_an_answer_not_made_says_why(void **state)
{
    (void)state;
    sbuf b = {0};
    sbuf_printf(&b, "%lc", (wint_t)0x20ac); /* the C locale has no euro sign */
    role_result out = {0};
    role_respond(&out, &b);
    assert_null(out.response);
    assert_string_equal(out.error_type, "Runtime.EncodeError");
    assert_string_equal(out.error_message,
                        "cannot encode the response: a character the locale cannot write");
    assert_false(sbuf_failed(&b));
    role_result_clear(&out);
    sbuf_append(&b, "x", SIZE_MAX); /* no such memory */
    out = (role_result){0};
    role_respond(&out, &b);
    assert_null(out.response);
    assert_string_equal(out.error_type, "Runtime.OutOfMemory");
    assert_string_equal(out.error_message, "cannot encode the response: out of memory");
    role_result_clear(&out);
}

int main(void)
{
    log_setup(LOG_ERROR, "test");
#define CASE(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        CASE(test_leases_that_ran_out_end),
        CASE(test_many_leases_take_several_steps),
        CASE(test_no_step_near_the_deadline),
        CASE(test_a_failing_store_fails_the_invocation),
        CASE(test_a_renewed_lease_is_not_ended),
        CASE(test_a_stale_list_ends_the_run),
        CASE(test_a_lease_the_store_cannot_end_is_passed_over),
        cmocka_unit_test(test_an_answer_not_made_says_why),
    };
#undef CASE
    return cmocka_run_group_tests(tests, NULL, NULL);
}
