/*
 * Unit tests for the work step (claim outcome, run, report) over a real
 * SQLite store in a temporary directory, with an in-test handler and a
 * tracer that keeps spans locally. Each test claims its tasks through the
 * store port, as a Lambda worker would (a conditional update), and drives
 * work_begin / work_run / store_batch_wait / work_finish the way both
 * callers do.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "runner/handlers.h"
#include "runner/work.h"
#include "util/log.h"
#include "support/builtin_handler.h"
#include "support/store_front.h"
#include "support/tmpdir.h"
#include "support_local/sqlite_store.h"
#include "support/trace_env.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PRODUCER_A "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
#define PRODUCER_B "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

/* The in-test handler: data {"mode": "fail"} fails, {"mode": "slow"} takes 50 ms,
 * {"mode": "retry"} cannot be started, {"mode": "own"} completes and says its run came to its
 * own end (handler_result.own_end), else ok. */
typedef struct test_handler {
    atomic_int calls;
    unsigned timeout_s;   /* as passed to the last run */
    char traceparent[56]; /* as passed to the last run */
} test_handler;

static void fake_run(handler *h, const handler_task *t, unsigned timeout_s, handler_result *out)
{
    test_handler *th = h->ctx;
    atomic_fetch_add(&th->calls, 1);
    th->timeout_s = timeout_s;
    snprintf(th->traceparent, sizeof th->traceparent, "%s", t->traceparent ? t->traceparent : "");
    if (strstr(t->data, "\"slow\""))
        usleep(50000);
    if (strstr(t->data, "\"retry\"")) {
        out->ok = false;
        out->retry = true;
        out->status_msg = strdup("cannot create pipes: Too many open files");
        return;
    }
    if (strstr(t->data, "\"fail\"")) {
        out->ok = false;
        out->status_msg = strdup("it broke");
        out->result = NULL;
        return;
    }
    out->ok = true;
    out->status_msg = strdup("all done");
    out->own_end = strstr(t->data, "\"own\"") != NULL;
    if (strstr(t->data, "\"deep\"")) { /* a result deeper than any store keeps */
        char deep[80];
        memset(deep, '[', 40);
        memset(deep + 40, ']', 39);
        deep[79] = '\0'; /* one bracket short: not even JSON */
        out->result =
            strdup(strstr(t->data, "\"broken\"") ? deep
                                                 : "[[[[[[[[[[[[[[[[[[[[[[[[[["
                                                   "[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]");
        return;
    }
    if (strstr(t->data, "\"huge\"")) { /* a number DynamoDB cannot keep */
        out->result =
            strdup(strstr(t->data, "\"int\"") ? "{\"n\":12345678901234567890}" : "{\"n\":1e200}");
        return;
    }
    if (strstr(t->data, "\"big\"")) { /* more than refusing_store keeps */
        char big[256];
        memset(big, 'x', sizeof big);
        big[0] = big[sizeof big - 2] = '"';
        big[sizeof big - 1] = '\0';
        out->result = strdup(big);
        return;
    }
    out->result = strdup("{\"n\":1}");
}

/* For a store in front of the fixture's: refuse, as STORE_INVALID, a report whose result is over
 * 128 bytes (as DynamoDB refuses an item over 400 KB); every other write passes through. */
static bool refuse_big_result(store_front *f, store_write *w)
{
    if (w->kind != STORE_WRITE_UPDATE || !w->update.result || strlen(w->update.result) <= 128)
        return false;
    w->rc = f->rc;
    return true;
}

static void fake_free(handler *h)
{
    (void)h;
}

typedef struct fixture {
    char dir[256];
    store *store;
    tracer *tracer;
    metrics *metrics;
    handler_config binding;
    test_handler th;
    handler handler;
    atomic_bool aborting;
    work_env env;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->store = test_sqlite_store(f->dir, sizeof f->dir, "taskd-work-test");
    char err[256] = "";
    test_trace_env_clear();
    tracer_options to = {.service_name = "taskd-test", .local_capacity = 1024};
    f->tracer = tracer_new(&to, err, sizeof err);
    assert_non_null(f->tracer);
    f->metrics = metrics_new();
    assert_non_null(f->metrics);
    trace_declare_metrics(f->metrics);
    f->binding = (handler_config){
        .queue = "jobs", .handler = "test", .batch_size = 4, .concurrency = 1, .timeout = 5};
    f->handler = (handler){.name = "test", .run = fake_run, .free = fake_free, .ctx = &f->th};
    f->env = (work_env){.store = f->store,
                        .handler = &f->handler,
                        .binding = &f->binding,
                        .telemetry = {.tracer = f->tracer, .metrics = f->metrics},
                        .aborting = &f->aborting};
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    store_close(f->store);
    tracer_free(f->tracer);
    metrics_free(f->metrics);
    assert_int_equal(test_tmpdir_remove(f->dir), 0);
    free(f);
    return 0;
}

static int64_t now_ms(void)
{
    return trace_now_ns() / 1000000;
}

/* Create a TASK1 task with data; its id into id. */
static void create_task(fixture *f, const char *data, char id[37])
{
    store_new_task t = {.task_type = "TASK1", .data = data, .ttl = TASK_NULL_TIME};
    assert_int_equal(store_create_task(f->store, &t, time(NULL), id), STORE_OK);
}

/* A message of queue "jobs" for task id (NULL: a message that names no task). */
static void fill_item(work_item *it, const char *id, const char *body, const char *traceparent)
{
    memset(it, 0, sizeof *it);
    if (id) {
        snprintf(it->id, sizeof it->id, "%s", id);
        snprintf(it->type, sizeof it->type, "TASK1");
    }
    it->body = body;
    it->queue = "jobs";
    it->traced = traceparent && tracectx_parse_traceparent(traceparent, &it->producer);
    it->sent_ms = now_ms() - 20;
    it->receive_count = 1;
    it->message_number = 7;
}

/* Claim the item's task through the store port (CREATED -> IN_PROGRESS), as a Lambda worker does.
 */
static void claim(fixture *f, work_item *it)
{
    store_update u = {.id = it->id, .status = TASK_IN_PROGRESS, .status_msg = "Task started"};
    task before = {0};
    it->claim = store_update_task(f->store, &u, time(NULL), &before);
    it->status_before = before.status;
    task_clear(&before);
}

/* A claim that finds the task past CREATED: a conflict, with the status it found. */
static void claim_conflicts(fixture *f, work_item *it, task_status before)
{
    claim(f, it);
    assert_int_equal(it->claim, STORE_CONFLICT);
    assert_int_equal(it->status_before, before);
}

/* The whole step over a batch, as a caller drives it; spent[i] says what to do with message i. */
static void work_all(fixture *f, work_item *items, size_t n, bool *spent, bool *ran)
{
    work_begin(&f->env, items, n);
    store_batch group;
    store_batch_init(&group);
    for (size_t i = 0; i < n; i++) {
        bool r = items[i].fate == WORK_RUN && work_run(&f->env, &items[i], &group);
        if (ran)
            ran[i] = r;
    }
    store_batch_wait(&group);
    for (size_t i = 0; i < n; i++)
        spent[i] = work_finish(&f->env, &items[i]);
}

/* One item through the whole step; true when its message is spent. */
static bool work_one(fixture *f, work_item *it)
{
    bool spent;
    work_all(f, it, 1, &spent, NULL);
    return spent;
}

/* The task as stored; clear it after. */
static task load(fixture *f, const char *id)
{
    task t = {0};
    assert_int_equal(store_get_task(f->store, id, &t), STORE_OK);
    return t;
}

static void assert_status(fixture *f, const char *id, task_status want, const char *msg)
{
    task t = load(f, id);
    assert_string_equal(task_status_name(t.status), task_status_name(want));
    if (msg)
        assert_string_equal(t.status_msg, msg);
    task_clear(&t);
}

/* A task's locally kept spans. */
typedef struct spans {
    span *s;
    size_t n;
} spans;

static spans spans_of(fixture *f, const char *id)
{
    spans out = {0};
    out.n = tracer_task_spans(f->tracer, id, &out.s);
    return out;
}

static void spans_free(spans *sp)
{
    for (size_t i = 0; i < sp->n; i++)
        span_clear(&sp->s[i]);
    free(sp->s);
}

static const span_attr *attr(const span *s, const char *key)
{
    for (int i = 0; i < s->n_attrs; i++)
        if (strcmp(s->attrs[i].key, key) == 0)
            return &s->attrs[i];
    return NULL;
}

static const char *attr_str(const span *s, const char *key)
{
    const span_attr *a = attr(s, key);
    return a && a->type == SPAN_ATTR_STRING ? a->v.s : NULL;
}

/* The span named name (and, when status is not NULL, with that task.status); NULL if none. */
static const span *find(const spans *sp, const char *name, const char *status)
{
    for (size_t i = 0; i < sp->n; i++) {
        const span *s = &sp->s[i];
        const char *st = attr_str(s, "task.status");
        if (strcmp(s->name, name) == 0 && (!status || (st && strcmp(st, status) == 0)))
            return s;
    }
    return NULL;
}

static void assert_child(const span *child, const span *parent)
{
    assert_memory_equal(child->trace_id, parent->trace_id, 16);
    assert_memory_equal(child->parent_id, parent->span_id, 8);
}

/* ---- the fate of a claim ------------------------------------------------------------- */

static void test_claimed_task_completes(void **state)
{
    fixture *f = *state;
    char id[37];
    create_task(f, "{\"mode\":\"ok\"}", id);
    work_item it;
    fill_item(&it, id, "{\"mode\":\"ok\"}", NULL);
    claim(f, &it);
    assert_int_equal(it.claim, STORE_OK);
    assert_true(work_one(f, &it));
    assert_int_equal(it.fate, WORK_RUN);
    assert_int_equal(atomic_load(&f->th.calls), 1);
    assert_int_equal(f->th.timeout_s, 5);
    task t = load(f, id);
    assert_int_equal(t.status, TASK_COMPLETED);
    assert_string_equal(t.status_msg, "all done");
    assert_string_equal(t.result, "{\"n\":1}");
    task_clear(&t);
}

/* Create a task of data, claim it and work it: the task as it ended (id gets its id). */
static task run_one(fixture *f, const char *data, char id[37])
{
    create_task(f, data, id);
    work_item it;
    fill_item(&it, id, data, NULL);
    claim(f, &it);
    assert_true(work_one(f, &it));
    return load(f, id);
}

static void test_failing_task_fails(void **state)
{
    fixture *f = *state;
    char id[37];
    task t = run_one(f, "{\"mode\":\"fail\"}", id);
    assert_int_equal(atomic_load(&f->th.calls), 1);
    assert_int_equal(t.status, TASK_FAILED);
    assert_string_equal(t.status_msg, "it broke");
    assert_null(t.result);
    task_clear(&t);

    spans sp = spans_of(f, id);
    const span *run = find(&sp, "test", NULL);
    assert_non_null(run);
    assert_int_equal(run->status, SPAN_STATUS_ERROR);
    assert_string_equal(run->status_msg, "it broke");
    spans_free(&sp);
}

/* A result no store could keep fails the task with the reason, once, instead of a report refused at
 * each delivery. */
static void test_unstorable_result_fails(void **state)
{
    fixture *f = *state;
    const char *datas[] = {"{\"mode\":\"deep\"}", "{\"mode\":\"deep\",\"x\":\"broken\"}"};
    for (size_t i = 0; i < 2; i++) {
        char id[37];
        task t = run_one(f, datas[i], id);
        assert_int_equal(t.status, TASK_FAILED);
        assert_non_null(strstr(t.status_msg, "not JSON nesting at most 31 levels"));
        assert_null(t.result);
        task_clear(&t);
    }
    char id[37];
    task t = run_one(f, "{\"mode\":\"huge\"}", id);
    assert_int_equal(t.status, TASK_FAILED);
    assert_string_equal(t.status_msg,
                        "the handler's result cannot be stored (numbers must be 0 or "
                        "of a magnitude from 1e-130 to below 1e126); it was not kept");
    assert_null(t.result);
    task_clear(&t);
    /* past the parser's range: not JSON to it, but not text to quote either (exec_result.c) */
    t = run_one(f, "{\"mode\":\"huge\",\"x\":\"int\"}", id);
    assert_int_equal(t.status, TASK_FAILED);
    assert_string_equal(t.status_msg, "the handler's result cannot be stored (a number out of "
                                      "range: too big integer near '12345678901234567890'); it "
                                      "was not kept");
    assert_null(t.result);
    task_clear(&t);
}

/* A result the store refuses fails the task without it, once: the message is spent, not kept
 * to run the handler again at each delivery. */
static void test_result_the_store_refuses_fails_the_task(void **state)
{
    fixture *f = *state;
    store_front r;
    store_front_init(&r, f->store, refuse_big_result, STORE_INVALID);
    f->env.store = &r.base;
    char id[37];
    task t = run_one(f, "{\"mode\":\"big\"}", id);
    assert_int_equal(r.answered, 1);
    assert_int_equal(atomic_load(&f->th.calls), 1);
    assert_int_equal(t.status, TASK_FAILED);
    assert_non_null(strstr(t.status_msg, "larger than the store can keep"));
    assert_null(t.result);
    task_clear(&t);

    spans sp = spans_of(f, id);
    const span *refused = find(&sp, "UPDATE tasks", "COMPLETED");
    assert_non_null(refused);
    assert_int_equal(refused->status, SPAN_STATUS_ERROR);
    assert_non_null(find(&sp, "UPDATE tasks", "FAILED"));
    spans_free(&sp);
    f->env.store = f->store;
}

static void test_missing_task_dropped(void **state)
{
    fixture *f = *state;
    work_item it;
    fill_item(&it, "019ac6a4-3f0e-7a31-b0c2-5d1e8f2a9c44", "{}", NULL);
    claim(f, &it);
    assert_int_equal(it.claim, STORE_NOT_FOUND);
    assert_true(work_one(f, &it)); /* spent: nothing left to do */
    assert_int_equal(it.fate, WORK_DROP);
    assert_int_equal(atomic_load(&f->th.calls), 0);

    spans sp = spans_of(f, it.id);
    const span *claim_span = find(&sp, "UPDATE tasks", "IN_PROGRESS");
    assert_non_null(claim_span);
    assert_int_equal(claim_span->status, SPAN_STATUS_ERROR);
    assert_string_equal(claim_span->status_msg, "not found");
    assert_null(find(&sp, "test", NULL));
    spans_free(&sp);
}

static void test_redelivery_runs_again(void **state)
{
    fixture *f = *state;
    char id[37];
    create_task(f, "{}", id);
    work_item first;
    fill_item(&first, id, "{}", NULL);
    claim(f, &first); /* an earlier delivery claimed it, then died */
    assert_int_equal(first.claim, STORE_OK);

    work_item again;
    fill_item(&again, id, "{}", NULL);
    again.receive_count = 2;
    claim_conflicts(f, &again, TASK_IN_PROGRESS);
    assert_true(work_one(f, &again));
    assert_int_equal(again.fate, WORK_RUN);
    assert_int_equal(atomic_load(&f->th.calls), 1);
    assert_status(f, id, TASK_COMPLETED, "all done");

    /* the claim span of a rerun is not an error */
    spans sp = spans_of(f, id);
    const span *claim_span = find(&sp, "UPDATE tasks", "IN_PROGRESS");
    assert_non_null(claim_span);
    assert_int_not_equal(claim_span->status, SPAN_STATUS_ERROR);
    spans_free(&sp);
}

static void test_first_delivery_of_a_task_claimed_elsewhere_dropped(void **state)
{
    fixture *f = *state;
    char id[37];
    create_task(f, "{}", id);
    work_item other; /* a client's PATCH, or the runner of another queue it fanned out to */
    fill_item(&other, id, "{}", NULL);
    claim(f, &other);
    assert_int_equal(other.claim, STORE_OK);

    work_item first; /* this queue's first delivery of its message */
    fill_item(&first, id, "{}", NULL);
    claim_conflicts(f, &first, TASK_IN_PROGRESS);
    assert_true(work_one(f, &first));
    assert_int_equal(first.fate, WORK_DROP);
    assert_int_equal(atomic_load(&f->th.calls), 0); /* not run: the claimer runs it */
    assert_status(f, id, TASK_IN_PROGRESS, "Task started");
}

static void test_finished_task_dropped(void **state)
{
    fixture *f = *state;
    char id[37];
    create_task(f, "{}", id);
    work_item first;
    fill_item(&first, id, "{}", NULL);
    claim(f, &first);
    assert_true(work_one(f, &first));
    assert_int_equal(atomic_load(&f->th.calls), 1);

    work_item late; /* a redelivery after the report */
    fill_item(&late, id, "{\"mode\":\"fail\"}", NULL);
    claim_conflicts(f, &late, TASK_COMPLETED);
    assert_true(work_one(f, &late));
    assert_int_equal(late.fate, WORK_DROP);
    assert_int_equal(atomic_load(&f->th.calls), 1); /* not run again */
    assert_status(f, id, TASK_COMPLETED, "all done");
}

static void test_store_trouble_kept(void **state)
{
    fixture *f = *state;
    char id[37];
    create_task(f, "{}", id);
    work_item it;
    fill_item(&it, id, "{}", NULL);
    it.claim = STORE_BUSY; /* the claim could not be written */
    assert_false(work_one(f, &it));
    assert_int_equal(it.fate, WORK_KEEP);
    assert_int_equal(atomic_load(&f->th.calls), 0);
    assert_status(f, id, TASK_CREATED, NULL);

    spans sp = spans_of(f, id);
    const span *claim_span = find(&sp, "UPDATE tasks", "IN_PROGRESS");
    assert_non_null(claim_span);
    assert_string_equal(claim_span->status_msg, "busy");
    spans_free(&sp);
}

/* ---- deadlines and shutdown ------------------------------------------------------------ */

static void test_deadline_too_near_kept(void **state)
{
    fixture *f = *state;
    char near_id[37], far_id[37];
    create_task(f, "{}", near_id);
    create_task(f, "{}", far_id);
    work_item items[2];
    fill_item(&items[0], near_id, "{}", NULL);
    fill_item(&items[1], far_id, "{}", NULL);
    claim(f, &items[0]);
    claim(f, &items[1]);
    items[0].deadline_ms = now_ms() + 1000; /* the binding's timeout is 5 s */
    items[1].deadline_ms = now_ms() + 60000;
    bool spent[2], ran[2];
    work_all(f, items, 2, spent, ran);

    assert_false(ran[0]);
    assert_false(spent[0]); /* the message comes back */
    assert_int_equal(items[0].fate, WORK_KEEP);
    assert_status(f, near_id, TASK_IN_PROGRESS, "Task started");
    assert_true(ran[1]);
    assert_true(spent[1]);
    assert_status(f, far_id, TASK_COMPLETED, "all done");
    assert_int_equal(atomic_load(&f->th.calls), 1); /* only the task with time to finish */

    spans sp = spans_of(f, near_id);
    assert_null(find(&sp, "test", NULL));
    assert_non_null(find(&sp, "process jobs", NULL));
    spans_free(&sp);
}

/*
 * Run a claimed task with data whose run ends without an outcome (when aborting, shutdown comes
 * while it runs): work_run() says so with fate, the task is not reported (IN_PROGRESS "Task
 * started", no report span), and its run span is an error saying run_msg. The env's handler
 * runs it: the in-test one (called once), or a built-in one.
 */
static void expect_not_reported(fixture *f, const char *data, bool aborting, work_fate fate,
                                const char *run_msg)
{
    char id[37];
    create_task(f, data, id);
    work_item it;
    fill_item(&it, id, data, NULL);
    claim(f, &it);
    work_begin(&f->env, &it, 1);
    atomic_store(&f->aborting, aborting);
    store_batch group;
    store_batch_init(&group);
    assert_false(work_run(&f->env, &it, &group));
    store_batch_wait(&group);
    assert_int_equal(it.fate, fate);
    assert_false(work_finish(&f->env, &it));
    if (f->env.handler == &f->handler)
        assert_int_equal(atomic_load(&f->th.calls), 1);
    assert_status(f, id, TASK_IN_PROGRESS, "Task started");

    spans sp = spans_of(f, id);
    const span *run = find(&sp, f->env.handler->name, NULL);
    assert_non_null(run);
    assert_int_equal(run->status, SPAN_STATUS_ERROR);
    assert_string_equal(run->status_msg, run_msg);
    assert_null(find(&sp, "UPDATE tasks", "COMPLETED"));
    assert_null(find(&sp, "UPDATE tasks", "FAILED"));
    spans_free(&sp);
}

/* Shutdown while the task runs: the outcome is not the task's; its message may come back at
 * once. */
static void test_aborted_run_kept(void **state)
{
    expect_not_reported(*state, "{\"mode\":\"slow\"}", true, WORK_KEEP, "aborted at shutdown");
}

/* Shutdown while the handler returns from a run that had come to its own end (an exec program
 * that exited just before the abort): its outcome is the task's, reported as any other. */
static void test_run_ended_on_its_own_before_the_abort_reported(void **state)
{
    fixture *f = *state;
    char id[37];
    atomic_store(&f->aborting, true);
    task t = run_one(f, "{\"mode\":\"own\"}", id);
    assert_int_equal(atomic_load(&f->th.calls), 1);
    assert_int_equal(t.status, TASK_COMPLETED);
    assert_string_equal(t.status_msg, "all done");
    assert_string_equal(t.result, "{\"n\":1}");
    task_clear(&t);

    spans sp = spans_of(f, id);
    const span *run = find(&sp, "test", NULL);
    assert_non_null(run);
    assert_int_not_equal(run->status, SPAN_STATUS_ERROR);
    assert_non_null(find(&sp, "UPDATE tasks", "COMPLETED"));
    spans_free(&sp);
}

/* Shutdown as a built-in handler's run ends by itself (the abort flag is set, as runner_abort()
 * sets it before it aborts the handler): noop's run, and a TASK1 wait that ran out, completed or
 * failed at the failure rate's word, are the task's outcome, reported; not run again. */
static void test_builtin_runs_that_ended_by_themselves_reported_at_an_abort(void **state)
{
    fixture *f = *state;
    const struct {
        const char *handler, *failure_rate;
        task_status status;
        const char *msg;
    } cases[] = {
        {"noop", "0", TASK_COMPLETED, "Task completed"},
        {"TASK1", "0", TASK_COMPLETED, "Task completed"},
        {"TASK1", "1", TASK_FAILED, "Task failed somehow"},
    };
    atomic_store(&f->aborting, true);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        handler *h =
            test_builtin_handler(&f->binding, cases[i].handler, "0", cases[i].failure_rate);
        f->env.handler = h;
        char id[37];
        task t = run_one(f, "{}", id); /* reported: its message spent */
        assert_string_equal(task_status_name(t.status), task_status_name(cases[i].status));
        assert_string_equal(t.status_msg, cases[i].msg);
        task_clear(&t);
        f->env.handler = &f->handler;
        handler_free(h);
    }
}

/* Shutdown that cuts a TASK1 wait short (its own, or its timeout's): the task is given back to
 * run again, neither FAILED "aborted" nor COMPLETED. */
static void test_task1_run_the_abort_cut_given_back(void **state)
{
    fixture *f = *state;
    const unsigned timeouts[] = {7200, 5}; /* past TASK1_SECONDS, then short of it */
    atomic_store(&f->aborting, true);
    for (size_t i = 0; i < sizeof timeouts / sizeof timeouts[0]; i++) {
        f->binding.timeout = timeouts[i];
        handler *h = test_builtin_handler(&f->binding, "TASK1", "3600", "0");
        f->env.handler = h;
        h->abort(h); /* its wait is cut as it begins */
        expect_not_reported(f, "{}", true, WORK_KEEP, "aborted at shutdown");
        f->env.handler = &f->handler;
        handler_free(h);
    }
}

/* A task the handler could not start (short of descriptors, say) is not reported either: its
 * message is left to come back after the visibility timeout. */
static void test_run_the_handler_cannot_start_comes_back_later(void **state)
{
    expect_not_reported(*state, "{\"mode\":\"retry\"}", false, WORK_LATER,
                        "cannot create pipes: Too many open files");
}

static void test_unstarted_item_kept(void **state)
{
    fixture *f = *state;
    char id[37];
    create_task(f, "{}", id);
    work_item it;
    fill_item(&it, id, "{}", NULL);
    claim(f, &it);
    work_begin(&f->env, &it, 1);
    assert_int_equal(it.fate, WORK_RUN);
    /* the caller stops before running it */
    assert_false(work_finish(&f->env, &it));
    assert_int_equal(it.fate, WORK_KEEP);
    assert_int_equal(atomic_load(&f->th.calls), 0);
}

/* ---- spans and metrics ------------------------------------------------------------------ */

static void test_spans_of_a_run(void **state)
{
    fixture *f = *state;
    char id[37];
    create_task(f, "{}", id);
    work_item it;
    fill_item(&it, id, "{}", PRODUCER_A);
    it.claimed_with_receive = true;
    claim(f, &it);
    int64_t sent_ms = it.sent_ms;
    assert_true(work_one(f, &it));

    spans sp = spans_of(f, id);
    assert_int_equal(sp.n, 5);
    const span *receive = find(&sp, "receive jobs", NULL),
               *process = find(&sp, "process jobs", NULL),
               *claim_span = find(&sp, "UPDATE tasks", "IN_PROGRESS"),
               *run = find(&sp, "test", NULL), *report = find(&sp, "UPDATE tasks", "COMPLETED");
    assert_non_null(receive);
    assert_non_null(process);
    assert_non_null(claim_span);
    assert_non_null(run);
    assert_non_null(report);

    /* the delivery continues the producer's trace and starts when the message was sent */
    trace_ctx producer;
    assert_true(tracectx_parse_traceparent(PRODUCER_A, &producer));
    assert_memory_equal(receive->trace_id, producer.trace_id, 16);
    assert_memory_equal(receive->parent_id, producer.span_id, 8);
    assert_int_equal(receive->kind, SPAN_KIND_CONSUMER);
    assert_true(receive->start_ns <= sent_ms * 1000000 + 999999);
    assert_true(receive->end_ns >= receive->start_ns);
    assert_string_equal(attr_str(receive, "messaging.destination.name"), "jobs");
    assert_string_equal(attr_str(receive, "messaging.operation.name"), "receive");
    assert_string_equal(attr_str(receive, "messaging.operation.type"), "receive");
    assert_string_equal(attr_str(receive, "task.id"), id);
    assert_int_equal(attr(receive, "messaging.message.id")->v.i, 7);
    assert_int_equal(attr(receive, "messaging.batch.message_count")->v.i, 1);
    assert_int_equal(attr(receive, "taskd.receive_count")->v.i, 1);
    assert_int_equal(receive->n_links, 0);

    assert_child(process, receive);
    assert_int_equal(process->kind, SPAN_KIND_CONSUMER);
    assert_string_equal(attr_str(process, "messaging.operation.name"), "process");
    assert_string_equal(attr_str(process, "messaging.operation.type"), "process");

    assert_child(claim_span, process);
    assert_int_equal(claim_span->kind, SPAN_KIND_CLIENT);
    assert_int_equal(claim_span->start_ns, claim_span->end_ns);
    assert_true(attr(claim_span, "taskd.with_receive")->v.b);
    /* both store spans name the store, as the semantic conventions ask */
    assert_string_equal(attr_str(claim_span, "db.system"), "sqlite");
    assert_string_equal(attr_str(report, "db.system"), "sqlite");
    assert_string_equal(attr_str(receive, "messaging.system"), "taskd");

    assert_child(run, process);
    assert_int_equal(run->kind, SPAN_KIND_INTERNAL);
    assert_int_not_equal(run->status, SPAN_STATUS_ERROR);
    assert_string_equal(attr_str(run, "taskd.handler"), "test");
    assert_string_equal(attr_str(run, "task.type"), "TASK1");
    char tp[56];
    trace_traceparent_of(run, tp);
    assert_string_equal(f->th.traceparent, tp); /* the handler runs in its span's context */

    assert_child(report, process);
    assert_int_equal(report->kind, SPAN_KIND_CLIENT);
    assert_string_equal(attr_str(report, "db.operation.name"), "UPDATE");
    assert_true(report->start_ns >= run->end_ns);
    spans_free(&sp);
}

/* A batch of more traces than a span keeps links to: the receive span links SPAN_MAX_LINKS of the
 * other messages' producers and counts the rest as dropped, to be said in the export. */
static void test_batch_links_past_the_bound_are_counted(void **state)
{
    fixture *f = *state;
    char a[37];
    create_task(f, "{}", a);
    enum { N = SPAN_MAX_LINKS + 4 };
    work_item items[N];
    char producers[N][56];
    fill_item(&items[0], a, "{}", PRODUCER_A);
    for (int i = 1; i < N; i++) { /* each of another trace; they name no task: dropped */
        snprintf(producers[i], sizeof producers[i], "00-%032x-b7ad6b7169203331-01", (unsigned)i);
        fill_item(&items[i], NULL, "{}", producers[i]);
        assert_true(items[i].traced);
    }
    claim(f, &items[0]);
    bool spent[N];
    work_all(f, items, N, spent, NULL);
    assert_status(f, a, TASK_COMPLETED, NULL);

    spans sp = spans_of(f, a);
    const span *receive = find(&sp, "receive jobs", NULL);
    assert_non_null(receive);
    assert_int_equal(receive->n_links, SPAN_MAX_LINKS);
    assert_int_equal(receive->dropped_links, N - 1 - SPAN_MAX_LINKS);
    assert_int_equal(receive->dropped_attrs, 0);
    assert_int_equal(find(&sp, "process jobs", NULL)->dropped_links, 0);
    spans_free(&sp);
}

/* A batch's shape for test_batch_links_as_a_walk_of_the_batch_gave(): n messages sent by
 * producers of as many traces (in turn, or drawn at random), the first half by the first when
 * front; every untraced-th without a producer and every no_task-th naming no task (0: none). */
typedef struct batch_shape {
    size_t n, producers;
    bool random, front;
    size_t untraced, no_task;
} batch_shape;

/* Fill items as shape says (message j's producer span j + 1, so that each link says which message
 * it came from), each task's claim made elsewhere: no claim span, no store. */
static void fill_shape(work_item *items, const batch_shape *shape, uint32_t *seed)
{
    for (size_t j = 0; j < shape->n; j++) {
        *seed = *seed * 1103515245u + 12345u;
        size_t p = shape->front && j < shape->n / 2 ? 0
                   : shape->random                  ? (*seed >> 8) % shape->producers
                                                    : j % shape->producers;
        char id[37], traceparent[56];
        snprintf(id, sizeof id, "01a2340a-5507-7003-aba9-%012zu", j % 1000000000000u);
        snprintf(traceparent, sizeof traceparent, "00-%032zx-%016zx-01", p + 1, j + 1);
        bool traced = !shape->untraced || j % shape->untraced != 0;
        bool names_task = !shape->no_task || j % shape->no_task != 0;
        fill_item(&items[j], names_task ? id : NULL, "{}", traced ? traceparent : NULL);
        items[j].unclaimed = "claimed elsewhere";
    }
}

/* Whether each receive span of items links what a walk of the batch for it links: the first
 * SPAN_MAX_LINKS other traced messages of another trace than its own, in batch order, and counts
 * the rest as dropped. */
static void expect_links_of_a_walk(const work_item *items, size_t n, const batch_shape *shape)
{
    for (size_t i = 0; i < n; i++) {
        const span *s = &items[i].receive;
        if (!items[i].id[0])
            continue;
        int linked = 0;
        uint32_t dropped = 0;
        for (size_t j = 0; j < n; j++) {
            const work_item *other = &items[j];
            if (j == i || !other->traced || memcmp(other->producer.trace_id, s->trace_id, 16) == 0)
                continue;
            if (linked == SPAN_MAX_LINKS) {
                dropped++;
                continue;
            }
            if (linked >= s->n_links ||
                memcmp(s->links[linked].trace_id, other->producer.trace_id, 16) != 0 ||
                memcmp(s->links[linked].span_id, other->producer.span_id, 8) != 0)
                fail_msg("a batch of %zu by %zu producers (random %d, front %d, untraced %zu, no "
                         "task %zu): message %zu's link %d is not message %zu's producer",
                         n, shape->producers, shape->random, shape->front, shape->untraced,
                         shape->no_task, i, linked, j);
            linked++;
        }
        if (s->n_links != linked || s->dropped_links != dropped)
            fail_msg("a batch of %zu by %zu producers (random %d, front %d, untraced %zu, no task "
                     "%zu): message %zu has %d links, %u dropped, where a walk gave %d and %u",
                     n, shape->producers, shape->random, shape->front, shape->untraced,
                     shape->no_task, i, s->n_links, s->dropped_links, linked, dropped);
    }
}

/*
 * The receive spans of a batch link what a walk of the whole batch for each gave them (the
 * other messages' producers of another trace than their own, SPAN_MAX_LINKS of them in batch
 * order, the rest counted as dropped): batches of 1 to 40 and of 1,000 messages, by one producer,
 * a few, or one each, in turn or at random, with the first half by one, with messages without a
 * producer and messages that name no task.
 */
static void test_batch_links_as_a_walk_of_the_batch_gave(void **state)
{
    fixture *f = *state;
    enum { MOST = 1000 };
    work_item *items = calloc(MOST, sizeof *items);
    assert_non_null(items);
    uint32_t seed = 1;
    size_t batches = 0;
    for (size_t n = 1; n <= 41; n++) {
        size_t size = n == 41 ? MOST : n;
        const size_t pools[] = {1, 2, 3, 5, SPAN_MAX_LINKS + 1, size};
        for (size_t p = 0; p < sizeof pools / sizeof pools[0]; p++)
            for (int shape_bits = 0; shape_bits < 16; shape_bits++) {
                batch_shape shape = {.n = size,
                                     .producers = pools[p],
                                     .random = shape_bits & 1,
                                     .front = shape_bits & 2,
                                     .untraced = shape_bits & 4 ? 4 : 0,
                                     .no_task = shape_bits & 8 ? 5 : 0};
                fill_shape(items, &shape, &seed);
                work_begin(&f->env, items, size);
                expect_links_of_a_walk(items, size, &shape);
                for (size_t j = 0; j < size; j++) {
                    span_clear(&items[j].receive);
                    span_clear(&items[j].process);
                }
                batches++;
            }
    }
    assert_int_equal(batches, 41 * 6 * 16);
    free(items);
}

static void test_batch_links_and_metric(void **state)
{
    fixture *f = *state;
    char a[37], b[37];
    create_task(f, "{}", a);
    create_task(f, "{\"mode\":\"slow\"}", b);
    work_item items[3];
    fill_item(&items[0], a, "{}", PRODUCER_A);
    fill_item(&items[1], b, "{\"mode\":\"slow\"}", PRODUCER_B);
    fill_item(&items[2], NULL, "{}", PRODUCER_B); /* names no task: dropped, still linked */
    items[1].message_id = "059f36b4-87a3-44ab-83d2-661975830a7d"; /* an SQS-style id */
    claim(f, &items[0]);
    claim(f, &items[1]);
    bool spent[3];
    work_all(f, items, 3, spent, NULL);
    assert_true(spent[0] && spent[1] && spent[2]);
    assert_int_equal(items[2].fate, WORK_DROP);
    assert_int_equal(atomic_load(&f->th.calls), 2);
    assert_status(f, a, TASK_COMPLETED, NULL);
    assert_status(f, b, TASK_COMPLETED, NULL);

    trace_ctx pb;
    assert_true(tracectx_parse_traceparent(PRODUCER_B, &pb));
    spans sp = spans_of(f, a);
    const span *receive = find(&sp, "receive jobs", NULL);
    assert_non_null(receive);
    assert_int_equal(attr(receive, "messaging.batch.message_count")->v.i, 3);
    assert_int_equal(receive->n_links, 2); /* the other two messages' producers */
    assert_memory_equal(receive->links[0].trace_id, pb.trace_id, 16);
    assert_memory_equal(receive->links[0].span_id, pb.span_id, 8);
    spans_free(&sp);

    sp = spans_of(f, b);
    receive = find(&sp, "receive jobs", NULL);
    assert_non_null(receive);
    assert_string_equal(attr_str(receive, "messaging.message.id"),
                        "059f36b4-87a3-44ab-83d2-661975830a7d");
    assert_int_equal(receive->n_links, 1); /* the same trace as its own is not linked */
    assert_false(attr(find(&sp, "UPDATE tasks", "IN_PROGRESS"), "taskd.with_receive"));
    spans_free(&sp);

    sbuf out = {0};
    metrics_write(f->metrics, &out);
    assert_non_null(
        strstr(out.data, "taskd_handler_duration_seconds_count{task_type=\"TASK1\"} 2\n"));
    sbuf_free(&out);
}

int main(void)
{
    log_setup(LOG_WARN, "taskd-test");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_claimed_task_completes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failing_task_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unstorable_result_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_result_the_store_refuses_fails_the_task, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_batch_links_past_the_bound_are_counted, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_batch_links_as_a_walk_of_the_batch_gave, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_missing_task_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redelivery_runs_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_first_delivery_of_a_task_claimed_elsewhere_dropped,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_finished_task_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_trouble_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deadline_too_near_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_aborted_run_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_ended_on_its_own_before_the_abort_reported, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_builtin_runs_that_ended_by_themselves_reported_at_an_abort, setup, teardown),
        cmocka_unit_test_setup_teardown(test_task1_run_the_abort_cut_given_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_the_handler_cannot_start_comes_back_later, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unstarted_item_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spans_of_a_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_links_and_metric, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
