/*
 * Unit tests for the `worker` Lambda role: SQS events, shaped as Lambda
 * sends them (Records[] with messageId, body, attributes, raw-delivered
 * message attributes TaskId / TaskType / traceparent / tracestate, eventSourceARN), go
 * through the role's invoke over a real store, and the partial batch
 * response and the stored tasks are checked.
 *
 * The role only speaks to the store port, so the cases run over SQLite (a
 * database in a temporary directory) always and, when DYNAMODB_ENDPOINT
 * names a DynamoDB (Local) endpoint, over DynamoDB too: each fixture then
 * creates a fresh table from deploy/table.json and deletes it afterwards
 * (support_aws/ddb_test.h).
 *
 * The configuration binds the built-in handlers: task1 runs noop; jobs runs
 * a tiny exec command that echoes the task it is given (its result, then)
 * and appends a line to a file in the fixture's directory (so runs can be
 * counted); broken runs one that fails; traced one whose result is its TRACESTATE ("unset"
 * without). task1-dlq is task1's dead-letter queue, without a binding; orphan is neither bound
 * nor a dead-letter queue.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "aws/aws_http.h"
#include "aws/dynamodb_store.h"
#include "support_aws/ddb_test.h"
#include "aws/worker_role.h"
#include "store/store_sqlite.h"
#include "util/log.h"
#include "support/stderr_capture.h"
#include "support/store_front.h"
#include "support/tmpdir.h"
#include "support/trace_env.h"

#include <ctype.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PRODUCER  "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
#define NO_TASK   "019ac6a4-3f0e-7a31-b0c2-5d1e8f2a9c44"
#define MINUTE_MS 60000

typedef struct fixture {
    char dir[256];  /* temporary directory: the run counter, and the sqlite database */
    char table[64]; /* dynamodb: this fixture's table */
    char runs[320]; /* file the exec handlers append one line to per run */
    store *store;
    tracer *tracer;
    telemetry tel;
    config cfg;
    role *role;
} fixture;

/* ---- stores ------------------------------------------------------------------------------ */

typedef struct factory {
    const char *name;
    store *(*open)(fixture *f);
    void (*destroy)(fixture *f);
} factory;

static const factory *current;

static store *sqlite_open(fixture *f)
{
    char db[320], err[256];
    snprintf(db, sizeof db, "%s/t.db", f->dir);
    store_sqlite_options o = {.path = db, .sync = STORE_SYNC_NORMAL};
    store *s = store_sqlite_open(&o, err, sizeof err);
    if (!s)
        fprintf(stderr, "sqlite store: %s\n", err);
    return s;
}

static void nothing(fixture *f)
{
    (void)f;
}

static store *ddb_open(fixture *f)
{
    static atomic_int counter;
    snprintf(f->table, sizeof f->table, "taskd_worker_test_%ld_%d", (long)getpid(),
             atomic_fetch_add(&counter, 1));
    if (!ddb_test_create_table(f->table))
        return NULL;
    char err[256];
    dynamodb_store_options o = {
        .table = f->table, .client = ddb_test_client(), .retention_grace = 3600};
    store *s = dynamodb_store_open(&o, err, sizeof err);
    if (!s)
        fprintf(stderr, "dynamodb store: %s\n", err);
    return s;
}

static void ddb_destroy(fixture *f)
{
    ddb_test_delete_table(f->table);
}

static const factory factories[] = {
    {"sqlite", sqlite_open, nothing},
    {"dynamodb", ddb_open, ddb_destroy},
};

/* ---- fixture ------------------------------------------------------------------------------ */

/* The test configuration (see the module comment), as JSON text to free. */
static char *config_text(const fixture *f)
{
    json_t *c = json_pack("{s:[{s:s, s:i, s:i, s:s}, {s:s}, {s:s}, {s:s}, {s:s}, {s:s}],"
                          " s:[{s:s, s:s}, {s:s, s:s, s:[s,s,s,s]}, {s:s, s:s, s:[s,s,s,s]},"
                          " {s:s, s:s, s:[s,s,s]}]}",
                          "queues", "name", "task1", "visibility_timeout", 60, "max_receive_count",
                          3, "dead_letter_queue", "task1-dlq", "name", "task1-dlq", "name", "jobs",
                          "name", "broken", "name", "orphan", "name", "traced", "handlers", "queue",
                          "task1", "handler", "noop", "queue", "jobs", "handler", "exec", "command",
                          "sh", "-c", "cat; echo run >> \"$0\"", f->runs, "queue", "broken",
                          "handler", "exec", "command", "sh", "-c",
                          "cat >/dev/null; echo run >> \"$0\"; echo boom >&2; exit 3", f->runs,
                          "queue", "traced", "handler", "exec", "command", "sh", "-c",
                          "cat >/dev/null; printf '%s' \"${TRACESTATE-unset}\"");
    char *text = json_dumps(c, JSON_COMPACT);
    json_decref(c);
    return text;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_true(test_tmpdir_make(f->dir, sizeof f->dir, "taskd-worker-test"));
    snprintf(f->runs, sizeof f->runs, "%s/runs", f->dir);
    f->store = current->open(f);
    assert_non_null(f->store);
    test_trace_env_clear();
    char err[256] = "";
    tracer_options to = {.service_name = "taskd-test", .local_capacity = 1024};
    f->tracer = tracer_new(&to, err, sizeof err);
    assert_non_null(f->tracer);
    f->tel = (telemetry){.tracer = f->tracer};
    assert_true(config_defaults(&f->cfg));
    char *text = config_text(f);
    bool loaded = config_load_text(&f->cfg, text, "test config", err, sizeof err);
    free(text);
    if (!loaded)
        fprintf(stderr, "%s\n", err);
    assert_true(loaded);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (f->role)
        f->role->free(f->role);
    store_close(f->store);
    current->destroy(f);
    tracer_free(f->tracer);
    config_free(&f->cfg);
    assert_int_equal(test_tmpdir_remove(f->dir), 0);
    free(f);
    return 0;
}

/* ---- helpers ------------------------------------------------------------------------------ */

static int64_t now_ms(void)
{
    return trace_now_ns() / 1000000;
}

/* Make the role for queue (NULL: by each record's eventSourceARN) over store st into f->role. */
static void make_role_over(fixture *f, store *st, const char *queue)
{
    char err[512] = "";
    f->role = worker_role_new(&f->cfg, st, queue, &f->tel, err, sizeof err);
    if (!f->role)
        fprintf(stderr, "%s\n", err);
    assert_non_null(f->role);
}

/* make_role_over() the fixture's store. */
static void make_role(fixture *f, const char *queue)
{
    make_role_over(f, f->store, queue);
}

/* Create a TASK1 task; its id into id. */
static void create_task(fixture *f, const char *data, const char *traceparent, char id[37])
{
    store_new_task t = {
        .task_type = "TASK1", .data = data, .ttl = TASK_NULL_TIME, .trace = traceparent};
    assert_int_equal(store_create_task(f->store, &t, time(NULL), id), STORE_OK);
}

static void set_status(fixture *f, const char *id, task_status status, const char *msg,
                       int64_t when)
{
    store_update u = {.id = id, .status = status, .status_msg = msg};
    assert_int_equal(store_update_task(f->store, &u, when, NULL), STORE_OK);
}

static void assert_status(fixture *f, const char *id, task_status want, const char *msg)
{
    task t = {0};
    assert_int_equal(store_get_task(f->store, id, &t), STORE_OK);
    assert_string_equal(task_status_name(t.status), task_status_name(want));
    if (msg)
        assert_string_equal(t.status_msg, msg);
    task_clear(&t);
}

/* The jobs handler echoes its input into the result: check the task and data it was given. */
static void assert_data_seen(fixture *f, const char *id, const char *data)
{
    task t = {0};
    assert_int_equal(store_get_task(f->store, id, &t), STORE_OK);
    assert_non_null(t.result);
    json_t *seen = json_loads(t.result, 0, NULL), *want = json_loads(data, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(seen, "id")), id);
    assert_string_equal(json_string_value(json_object_get(seen, "task_type")), "TASK1");
    assert_true(json_equal(json_object_get(seen, "data"), want));
    json_decref(seen);
    json_decref(want);
    task_clear(&t);
}

/* How many times the exec handlers ran. */
static int runs(const fixture *f)
{
    FILE *fp = fopen(f->runs, "r");
    int n = 0, c;
    while (fp && (c = fgetc(fp)) != EOF)
        n += c == '\n';
    if (fp)
        fclose(fp);
    return n;
}

/* One SQS message of an event. */
typedef struct msg {
    const char *message_id;
    const char *queue;       /* its eventSourceARN's queue */
    const char *task_id;     /* NULL: no TaskId attribute */
    const char *body;        /* NULL: "{}" */
    const char *traceparent; /* NULL: none */
    int receive_count;       /* 0: 1 */
    const char *tracestate;  /* NULL: none */
    const char *xray;        /* attributes.AWSTraceHeader; NULL: none */
    const char *sent;        /* attributes.SentTimestamp; NULL: 20 ms ago */
    const char *count;       /* attributes.ApproximateReceiveCount; NULL: receive_count's */
} msg;

/* An SQS event of the messages, as Lambda sends it (lambda-events.md (c), raw delivery). */
static char *sqs_event(const msg *m, size_t n)
{
    json_t *records = json_array();
    for (size_t i = 0; i < n; i++) {
        char count[32], sent[24], arn[160];
        if (m[i].count)
            snprintf(count, sizeof count, "%s", m[i].count);
        else
            snprintf(count, sizeof count, "%d", m[i].receive_count ? m[i].receive_count : 1);
        if (m[i].sent)
            snprintf(sent, sizeof sent, "%s", m[i].sent);
        else
            snprintf(sent, sizeof sent, "%lld", (long long)(now_ms() - 20));
        snprintf(arn, sizeof arn, "arn:aws:sqs:us-east-1:123456789012:%s", m[i].queue);
        json_t *attrs = json_object();
        if (m[i].task_id) {
            json_object_set_new(attrs, "TaskId",
                                json_pack("{ss s[] s[] ss}", "stringValue", m[i].task_id,
                                          "stringListValues", "binaryListValues", "dataType",
                                          "String"));
            json_object_set_new(attrs, "TaskType",
                                json_pack("{ss ss}", "stringValue", "TASK1", "dataType", "String"));
        }
        if (m[i].traceparent)
            json_object_set_new(
                attrs, "traceparent",
                json_pack("{ss ss}", "stringValue", m[i].traceparent, "dataType", "String"));
        if (m[i].tracestate)
            json_object_set_new(
                attrs, "tracestate",
                json_pack("{ss ss}", "stringValue", m[i].tracestate, "dataType", "String"));
        json_array_append_new(
            records,
            json_pack("{ss ss ss s{ss ss ss ss} so ss ss ss ss}", "messageId", m[i].message_id,
                      "receiptHandle", "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a", "body",
                      m[i].body ? m[i].body : "{}", "attributes", "ApproximateReceiveCount", count,
                      "SentTimestamp", sent, "SenderId", "AIDAIENQZJOLO23YVJ4VO",
                      "ApproximateFirstReceiveTimestamp", sent, "messageAttributes", attrs,
                      "md5OfBody", "e4e68fb7bd0e697a0ae8f1bb342846b3", "eventSource", "aws:sqs",
                      "eventSourceARN", arn, "awsRegion", "us-east-1"));
        if (m[i].xray)
            json_object_set_new(json_object_get(json_array_get(records, i), "attributes"),
                                "AWSTraceHeader", json_string(m[i].xray));
    }
    json_t *event = json_pack("{so}", "Records", records);
    char *text = json_dumps(event, JSON_COMPACT);
    json_decref(event);
    return text;
}

/* Invoke the role with event text and a deadline (epoch ms; 0: unknown). */
static role_result invoke_text(fixture *f, const char *event, int64_t deadline_ms)
{
    lambda_invocation inv = {.deadline_ms = deadline_ms};
    snprintf(inv.request_id, sizeof inv.request_id, "8476a536-e9f4-11e8-9739-2dfe598c3fcd");
    inv.event = strdup(event);
    inv.event_len = strlen(event);
    role_result res = {0};
    f->role->invoke(f->role, &inv, &res);
    free(inv.event);
    return res;
}

static role_result invoke(fixture *f, const msg *m, size_t n, int64_t deadline_ms)
{
    char *event = sqs_event(m, n);
    role_result res = invoke_text(f, event, deadline_ms);
    free(event);
    return res;
}

/* The answer's batchItemFailures as "id1,id2" (checks the shape); res is cleared. */
static void assert_failures(role_result *res, const char *want)
{
    assert_non_null(res->response);
    json_t *doc = json_loadb(res->response, res->response_len, 0, NULL);
    assert_non_null(doc);
    assert_int_equal(json_object_size(doc), 1);
    json_t *list = json_object_get(doc, "batchItemFailures");
    assert_true(json_is_array(list));
    char got[256] = "";
    size_t i;
    json_t *item;
    json_array_foreach(list, i, item)
    {
        assert_int_equal(json_object_size(item), 1);
        const char *id = json_string_value(json_object_get(item, "itemIdentifier"));
        assert_non_null(id);
        snprintf(got + strlen(got), sizeof got - strlen(got), "%s%s", i ? "," : "", id);
    }
    assert_string_equal(got, want);
    json_decref(doc);
    role_result_clear(res);
}

/* Spans kept for a task. */
typedef struct spans {
    span *s;
    size_t n;
} spans;

static const span *find(const spans *sp, const char *name, const char *status)
{
    for (size_t i = 0; i < sp->n; i++) {
        const span *s = &sp->s[i];
        const char *st = NULL;
        for (int a = 0; a < s->n_attrs; a++)
            if (strcmp(s->attrs[a].key, "task.status") == 0)
                st = s->attrs[a].v.s;
        if (strcmp(s->name, name) == 0 && (!status || (st && strcmp(st, status) == 0)))
            return s;
    }
    return NULL;
}

static const char *attr_str(const span *s, const char *key)
{
    for (int a = 0; a < s->n_attrs; a++)
        if (strcmp(s->attrs[a].key, key) == 0 && s->attrs[a].type == SPAN_ATTR_STRING)
            return s->attrs[a].v.s;
    return NULL;
}

static void spans_free(spans *sp)
{
    for (size_t i = 0; i < sp->n; i++)
        span_clear(&sp->s[i]);
    free(sp->s);
}

/* A status-update span as the store labels it (store_trace_write()): over DynamoDB, the
 * UpdateItem that made the change, with its table, region and request id; over SQLite, no call. */
static void assert_store_call(const fixture *f, const span *s)
{
    assert_non_null(s);
    if (strcmp(current->name, "dynamodb") != 0) {
        assert_null(attr_str(s, "rpc.system"));
        assert_null(attr_str(s, "rpc.method"));
        return;
    }
    const char *const want[][2] = {
        {"rpc.system", "aws-api"},    {"rpc.service", "DynamoDB"},
        {"rpc.method", "UpdateItem"}, {"aws.dynamodb.table_names", f->table},
        {"cloud.region", NULL},       {"aws.request_id", NULL},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const char *v = attr_str(s, want[i][0]);
        if (!v || !*v)
            fail_msg("%s: no attribute %s", s->name, want[i][0]);
        if (want[i][1])
            assert_string_equal(v, want[i][1]);
    }
}

static void assert_child(const span *child, const span *parent)
{
    assert_non_null(child);
    assert_non_null(parent);
    assert_memory_equal(child->trace_id, parent->trace_id, 16);
    assert_memory_equal(child->parent_id, parent->span_id, 8);
}

/* ---- handler mode ------------------------------------------------------------------------ */

static void test_noop_completes(void **state)
{
    fixture *f = *state;
    make_role(f, "task1");
    assert_string_equal(f->role->name, "worker");
    char id[37];
    create_task(f, "{\"foo\":\"bar\"}", NULL, id);
    msg m = {.message_id = "m-1", .queue = "task1", .task_id = id, .body = "{\"foo\":\"bar\"}"};
    role_result res = invoke(f, &m, 1, now_ms() + MINUTE_MS);
    assert_string_equal(res.response, "{\"batchItemFailures\":[]}");
    assert_failures(&res, "");
    assert_status(f, id, TASK_COMPLETED, "Task completed");
}

static void test_exec_completes(void **state)
{
    fixture *f = *state;
    make_role(f, "jobs");
    char id[37];
    create_task(f, "{\"n\":0}", NULL, id);
    msg m = {.message_id = "m-1", .queue = "jobs", .task_id = id, .body = "{\"n\":0}"};
    role_result res = invoke(f, &m, 1, now_ms() + MINUTE_MS);
    assert_failures(&res, "");
    assert_int_equal(runs(f), 1);
    assert_status(f, id, TASK_COMPLETED, "Task completed");
    assert_data_seen(f, id, "{\"n\":0}");
}

static void test_handler_failure_fails_and_is_spent(void **state)
{
    fixture *f = *state;
    make_role(f, "broken");
    char id[37];
    create_task(f, "{}", NULL, id);
    msg m = {.message_id = "m-1", .queue = "broken", .task_id = id};
    role_result res = invoke(f, &m, 1, now_ms() + MINUTE_MS);
    assert_failures(&res, ""); /* reported: the message is spent */
    assert_int_equal(runs(f), 1);
    assert_status(f, id, TASK_FAILED, "exit status 3: boom");
}

static void test_missing_task_spent(void **state)
{
    fixture *f = *state;
    make_role(f, "jobs");
    msg m = {.message_id = "m-1", .queue = "jobs", .task_id = NO_TASK};
    role_result res = invoke(f, &m, 1, now_ms() + MINUTE_MS);
    assert_failures(&res, "");
    assert_int_equal(runs(f), 0);
}

static void test_completed_task_spent_not_run(void **state)
{
    fixture *f = *state;
    make_role(f, "jobs");
    char id[37];
    create_task(f, "{}", NULL, id);
    int64_t now = time(NULL);
    set_status(f, id, TASK_IN_PROGRESS, "Task started", now);
    set_status(f, id, TASK_COMPLETED, "done before", now);
    msg m = {.message_id = "m-1", .queue = "jobs", .task_id = id, .receive_count = 2};
    role_result res = invoke(f, &m, 1, now_ms() + MINUTE_MS);
    assert_failures(&res, "");
    assert_int_equal(runs(f), 0);
    assert_status(f, id, TASK_COMPLETED, "done before");
}

static void test_fresh_claim_kept(void **state)
{
    fixture *f = *state;
    make_role(f, "jobs");
    char id[37];
    create_task(f, "{}", NULL, id);
    set_status(f, id, TASK_IN_PROGRESS, "Task started", time(NULL)); /* another delivery, now */
    msg m = {.message_id = "m-1", .queue = "jobs", .task_id = id, .receive_count = 2};
    role_result res = invoke(f, &m, 1, now_ms() + MINUTE_MS);
    assert_failures(&res, "m-1"); /* comes back later */
    assert_int_equal(runs(f), 0);
    assert_status(f, id, TASK_IN_PROGRESS, "Task started");

    /* the claim span tells the conflict it met, not a busy store */
    spans sp = {0};
    sp.n = tracer_task_spans(f->tracer, id, &sp.s);
    const span *claim = find(&sp, "UPDATE tasks", "IN_PROGRESS");
    assert_non_null(claim);
    assert_int_equal(claim->status, SPAN_STATUS_ERROR);
    assert_string_equal(claim->status_msg, "conflict: claimed less than the handler's timeout ago, "
                                           "by a delivery that may still be running it");
    spans_free(&sp);
}

/* A first delivery that finds its task claimed, however fresh the claim, finds someone else's:
 * a client's PATCH IN_PROGRESS, or the runner of another queue the task fanned out to. Its message
 * is spent and the task left to them, as the local runner leaves it: kept, it would come back
 * once the claim was older than the binding's timeout and take the task over. */
/* A delivery (receive_count receives) of a task a client claimed at claimed_at, with a lease:
 * its message is spent, and the task left to the client, not run. */
static void delivery_leaves_a_clients_claim(fixture *f, int64_t claimed_at, int receive_count)
{
    make_role(f, "jobs");
    char id[37];
    create_task(f, "{}", NULL, id);
    store_update u = {.id = id,
                      .status = TASK_IN_PROGRESS,
                      .status_msg = "mine",
                      .claim_key = "client-key",
                      .claim_expires = time(NULL) + 3600};
    assert_int_equal(store_update_task(f->store, &u, claimed_at, NULL), STORE_OK);
    msg m = {.message_id = "m-1", .queue = "jobs", .task_id = id, .receive_count = receive_count};
    role_result res = invoke(f, &m, 1, now_ms() + MINUTE_MS);
    assert_failures(&res, ""); /* spent */
    assert_int_equal(runs(f), 0);
    assert_status(f, id, TASK_IN_PROGRESS, "mine");
}

static void test_first_delivery_leaves_a_claim_to_its_holder(void **state)
{
    delivery_leaves_a_clients_claim(*state, time(NULL), 1);
}

/* A redelivery (its first delivery failed before it claimed) that finds a client's claim holds
 * the task, however old, leaves it to the client: a runner's claim as old would be taken over
 * and run again, a client's would be taken from it. */
static void test_redelivery_leaves_a_clients_claim(void **state)
{
    delivery_leaves_a_clients_claim(*state, time(NULL) - 1000, 2); /* older than the timeout */
}

static void test_stale_claim_runs_again(void **state)
{
    fixture *f = *state;
    make_role(f, "jobs");
    char id[37];
    create_task(f, "{}", NULL, id);
    /* claimed long ago (more than the binding's 30 s): that delivery died */
    set_status(f, id, TASK_IN_PROGRESS, "Task started", time(NULL) - 1000);
    msg m = {.message_id = "m-1", .queue = "jobs", .task_id = id, .receive_count = 2};
    role_result res = invoke(f, &m, 1, now_ms() + MINUTE_MS);
    assert_failures(&res, "");
    assert_int_equal(runs(f), 1);
    assert_status(f, id, TASK_COMPLETED, "Task completed");
}

/* A receive count past 64 bits is a count past any other, not the first delivery's: a stale
 * claim is taken over as at any redelivery, where the delivery was taken for a first one and left
 * the task to the claim's dead holder, spending its message. */
static void test_a_receive_count_past_64_bits_is_a_redelivery(void **state)
{
    fixture *f = *state;
    make_role(f, "jobs");
    const char *counts[] = {"9223372036854775808", "99999999999999999999999"};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        char id[37];
        create_task(f, "{}", NULL, id);
        set_status(f, id, TASK_IN_PROGRESS, "Task started", time(NULL) - 1000);
        msg m = {.message_id = "m-1", .queue = "jobs", .task_id = id, .count = counts[i]};
        role_result res = invoke(f, &m, 1, now_ms() + MINUTE_MS);
        assert_failures(&res, "");
        assert_int_equal(runs(f), (int)i + 1);
        assert_status(f, id, TASK_COMPLETED, "Task completed");
    }
}

/* What the task read when its report came (note_task_at_report()). */
static task at_report;

static bool note_task_at_report(store_front *f, store_write *w)
{
    if (w->kind == STORE_WRITE_UPDATE && task_status_is_final(w->update.status)) {
        task_clear(&at_report);
        assert_int_equal(store_get_task(f->inner, w->update.id, &at_report), STORE_OK);
    }
    return false; /* made by the store behind */
}

/* A task run again says so while it runs, in its status_msg and updated_time, as a claim does:
 * readers of the task and of the stream see the run again, not only its history. */
static void test_a_task_run_again_says_so(void **state)
{
    fixture *f = *state;
    store_front r;
    store_front_init(&r, f->store, note_task_at_report, STORE_OK);
    make_role_over(f, &r.base, "jobs");
    char id[37];
    create_task(f, "{}", NULL, id);
    int64_t long_ago = time(NULL) - 1000;
    set_status(f, id, TASK_IN_PROGRESS, "Task started", long_ago); /* that delivery died */
    msg m = {.message_id = "m-1", .queue = "jobs", .task_id = id, .receive_count = 2};
    role_result res = invoke(f, &m, 1, now_ms() + MINUTE_MS);
    assert_failures(&res, "");
    assert_int_equal(runs(f), 1);
    assert_string_equal(task_status_name(at_report.status), "IN_PROGRESS");
    assert_string_equal(at_report.status_msg, "Task started again (receive 2)");
    assert_true(at_report.updated_time > long_ago);
    task_clear(&at_report);
    assert_status(f, id, TASK_COMPLETED, "Task completed");
}

/* Two deliveries that would each run a task again (a redelivery and an SQS duplicate of it, in
 * one batch): the first takes it again and runs it; the second finds it taken since its claim
 * was read, and its message comes back instead of running the task a second time. */
static void test_duplicate_redeliveries_run_once(void **state)
{
    fixture *f = *state;
    make_role(f, "jobs");
    char id[37];
    create_task(f, "{}", NULL, id);
    set_status(f, id, TASK_IN_PROGRESS, "Task started", time(NULL) - 1000); /* that one died */
    msg m[2] = {{.message_id = "m-1", .queue = "jobs", .task_id = id, .receive_count = 2},
                {.message_id = "m-1b", .queue = "jobs", .task_id = id, .receive_count = 3}};
    role_result res = invoke(f, m, 2, now_ms() + 2 * MINUTE_MS);
    assert_failures(&res, "m-1b");
    assert_int_equal(runs(f), 1);
    assert_status(f, id, TASK_COMPLETED, "Task completed");
}

/* For a store in front of the fixture's: answer every reclaim with the front's rc, untried. */
static bool answer_reclaims(store_front *f, store_write *w)
{
    if (w->kind != STORE_WRITE_RECLAIM)
        return false;
    w->rc = f->rc;
    return true;
}

/* A delivery that would run a task again runs it only once its reclaim took the task: a reclaim
 * that failed (the store busy, or in error) leaves the other delivery that may be running it
 * alone, and its message comes back; one whose task is gone drops its message. */
static void test_a_failed_reclaim_does_not_run_the_task(void **state)
{
    fixture *f = *state;
    const store_rc fails[] = {STORE_BUSY, STORE_ERROR, STORE_NOT_FOUND, STORE_INVALID};
    for (size_t i = 0; i < sizeof fails / sizeof fails[0]; i++) {
        store_front r;
        store_front_init(&r, f->store, answer_reclaims, fails[i]);
        make_role_over(f, &r.base, "jobs");
        char id[37];
        create_task(f, "{}", NULL, id);
        set_status(f, id, TASK_IN_PROGRESS, "Task started", time(NULL) - 1000); /* long ago */
        msg m = {.message_id = "m-1", .queue = "jobs", .task_id = id, .receive_count = 2};
        role_result res = invoke(f, &m, 1, now_ms() + MINUTE_MS);
        f->role->free(f->role);
        f->role = NULL;
        assert_int_equal(r.answered, 1);
        /* gone, or a change the store can never make: no delivery could run it */
        assert_failures(&res,
                        fails[i] == STORE_NOT_FOUND || fails[i] == STORE_INVALID ? "" : "m-1");
        assert_int_equal(runs(f), 0);
        assert_status(f, id, TASK_IN_PROGRESS, "Task started");
    }
}

/* The statuses (1 << status) whose updates answer_updates_to() answers with the front's rc. */
static unsigned refused_statuses;

static bool answer_updates_to(store_front *f, store_write *w)
{
    if (w->kind != STORE_WRITE_UPDATE || !(refused_statuses & 1u << w->update.status))
        return false;
    w->rc = f->rc;
    return true;
}

/* A change the store can never make (a DynamoDB item at its size limit, which the change would
 * grow) spends the message, said at ERROR: no delivery could make it, so the message is not kept
 * to come back until its receives run out. The claim, the report and a dead letter's failure. */
static void test_a_change_the_store_can_never_make_spends_the_message(void **state)
{
    fixture *f = *state;
    static const struct {
        unsigned refused;
        const char *queue;
        const char *logged;
        task_status left;
    } cases[] = {
        {1u << TASK_IN_PROGRESS, "jobs", "the store can never claim this task", TASK_CREATED},
        /* the outcome, and the failure without the result that follows it */
        {1u << TASK_COMPLETED | 1u << TASK_FAILED, "jobs",
         "the store can never keep this task's outcome", TASK_IN_PROGRESS},
        {1u << TASK_FAILED, "task1-dlq", "the store can never fail this dead-lettered task",
         TASK_CREATED},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        store_front r;
        store_front_init(&r, f->store, answer_updates_to, STORE_INVALID);
        refused_statuses = cases[i].refused;
        make_role_over(f, &r.base, cases[i].queue);
        char id[37];
        create_task(f, "{}", NULL, id);
        msg m = {.message_id = "m-1", .queue = cases[i].queue, .task_id = id, .receive_count = 1};
        test_stderr cap;
        test_stderr_begin(&cap);
        role_result res = invoke(f, &m, 1, now_ms() + MINUTE_MS);
        char *logged = test_stderr_end(&cap);
        f->role->free(f->role);
        f->role = NULL;
        assert_failures(&res, ""); /* spent */
        assert_true(r.answered >= 1);
        expect_logged(logged, cases[i].logged, id);
        free(logged);
        task t;
        assert_int_equal(store_get_task(f->store, id, &t), STORE_OK);
        assert_string_equal(task_status_name(t.status), task_status_name(cases[i].left));
        task_clear(&t);
    }
}

/* For a store in front of the fixture's: note the AWS deadline a claim, and a reclaim, is made
 * under. */
static int64_t claimed_under, reclaimed_under;

static bool note_claim_deadlines(store_front *f, store_write *w)
{
    (void)f;
    if (w->kind == STORE_WRITE_UPDATE && w->update.status == TASK_IN_PROGRESS)
        claimed_under = aws_deadline();
    else if (w->kind == STORE_WRITE_RECLAIM)
        reclaimed_under = aws_deadline();
    return false; /* made by the store behind */
}

/* Invoke the role for queue "jobs" over a store noting the deadlines its claims are made under,
 * with a minute left, for m's task; it must run once and leave the invocation's deadline as it
 * was. The deadline the claims should have been made under: the binding's timeout (30 s) and
 * the report's margin before the invocation's. */
static int64_t invoke_noting_claim_deadlines(fixture *f, const msg *m)
{
    store_front r;
    store_front_init(&r, f->store, note_claim_deadlines, STORE_OK);
    make_role_over(f, &r.base, "jobs");
    int64_t before = aws_deadline(), deadline = now_ms() + MINUTE_MS;
    claimed_under = reclaimed_under = 0;
    role_result res = invoke(f, m, 1, deadline);
    assert_failures(&res, "");
    assert_int_equal(runs(f), 1);
    assert_int_equal(aws_deadline(), before); /* the invocation's again after the claims */
    f->role->free(f->role);                   /* before r, in front of the store, goes */
    f->role = NULL;
    return deadline - WORKER_REPORT_MARGIN_MS - 30 * 1000;
}

/* A claim (which a throttled store retries) may take only what leaves its run the binding's
 * timeout before the deadline, less the report's margin: one that took longer would claim a
 * task the worker then could not start, IN_PROGRESS with nothing running it. */
static void test_a_claim_leaves_its_run_its_time(void **state)
{
    fixture *f = *state;
    char id[37];
    create_task(f, "{}", NULL, id);
    msg m = {.message_id = "m-1", .queue = "jobs", .task_id = id};
    int64_t want = invoke_noting_claim_deadlines(f, &m);
    assert_int_equal(claimed_under, want);
}

/* A delivery that runs a task again claims it a second time, by its reclaim: that reclaim (which
 * a throttled store retries too) may take no more than the claim before it, or it would take the
 * task again from the delivery that died and then find it too near the deadline to start,
 * IN_PROGRESS "Task started again" with nothing running it and its message spent a receive. */
static void test_a_reclaim_leaves_its_run_its_time(void **state)
{
    fixture *f = *state;
    char id[37];
    create_task(f, "{}", NULL, id);
    set_status(f, id, TASK_IN_PROGRESS, "Task started", time(NULL) - 1000); /* that one died */
    msg m = {.message_id = "m-1", .queue = "jobs", .task_id = id, .receive_count = 2};
    int64_t want = invoke_noting_claim_deadlines(f, &m);
    assert_status(f, id, TASK_COMPLETED, "Task completed");
    assert_int_equal(claimed_under, want);
    assert_int_equal(reclaimed_under, want);
}

static void test_deadline_too_near_kept(void **state)
{
    fixture *f = *state;
    make_role(f, "jobs");
    char id[37];
    create_task(f, "{}", NULL, id);
    msg m = {.message_id = "m-1", .queue = "jobs", .task_id = id};
    /* half a second left, and the binding's timeout is 30 s */
    role_result res = invoke(f, &m, 1, now_ms() + 500);
    assert_failures(&res, "m-1");
    assert_int_equal(runs(f), 0);
    assert_status(f, id, TASK_CREATED, ""); /* not even claimed: nothing to take over later */
}

/* For a store in front of the fixture's: make each claim in the store behind, then let 2.5 s
 * pass before it is answered, as an earlier run of the batch that overran its timeout would
 * take them after it. */
static bool time_after_claims(store_front *f, store_write *w)
{
    if (w->kind != STORE_WRITE_UPDATE || w->update.status != TASK_IN_PROGRESS)
        return false; /* made by the store behind */
    store_write_wait(f->inner, w);
    nanosleep(&(struct timespec){.tv_sec = 2, .tv_nsec = 500000000}, NULL);
    return true; /* answered with the store behind's answer */
}

/* A task claimed and then too near the deadline to start (the time its run needed went after
 * its claim) is not run, and its message comes back; its trace says why, as one never claimed does,
 * where its delivery ended OK after a claim OK and nothing more. */
static void test_a_claimed_task_too_near_the_deadline_says_so(void **state)
{
    fixture *f = *state;
    store_front r;
    store_front_init(&r, f->store, time_after_claims, STORE_OK);
    make_role_over(f, &r.base, "jobs");
    char id[37];
    create_task(f, "{}", NULL, id);
    msg m = {.message_id = "m-1", .queue = "jobs", .task_id = id};
    /* a run of the binding's 30 s and the report's margin fit, with 2 s to spare */
    role_result res = invoke(f, &m, 1, now_ms() + 30000 + WORKER_REPORT_MARGIN_MS + 2000);
    f->role->free(f->role);
    f->role = NULL;
    assert_failures(&res, "m-1");
    assert_int_equal(runs(f), 0);
    assert_status(f, id, TASK_IN_PROGRESS, "Task started"); /* claimed */
    spans sp = {0};
    sp.n = tracer_task_spans(f->tracer, id, &sp.s);
    const span *process = find(&sp, "process jobs", NULL);
    assert_non_null(process);
    assert_non_null(find(&sp, "UPDATE tasks", "IN_PROGRESS"));
    assert_int_equal(process->status, SPAN_STATUS_ERROR);
    assert_string_equal(process->status_msg, "not run: too near the deadline to start the task");
    spans_free(&sp);
}

/* The log lines (JSON, one a line) of logged whose message begins with prefix, into out (at most
 * max, the caller decrefs them); how many there were. */
static size_t log_lines(const char *logged, const char *prefix, json_t **out, size_t max)
{
    size_t n = 0;
    for (const char *line = logged; *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        json_t *doc = json_loadb(line, len, 0, NULL);
        const char *message = json_string_value(json_object_get(doc, "message"));
        if (message && strncmp(message, prefix, strlen(prefix)) == 0 && n++ < max)
            out[n - 1] = json_incref(doc);
        json_decref(doc);
        line += len + (end != NULL);
    }
    return n;
}

/* invoke_text() with what the role logs at WARNING and above caught, into *logged (the caller
 * frees it); the threshold is then set back to what it was. */
static role_result invoke_text_logged(fixture *f, const char *event, int64_t deadline_ms,
                                      char **logged)
{
    test_stderr cap;
    log_level was = log_threshold();
    log_setup(LOG_WARN, NULL);
    test_stderr_begin(&cap);
    role_result res = invoke_text(f, event, deadline_ms);
    *logged = test_stderr_end(&cap);
    log_setup(was, NULL);
    return res;
}

/* invoke(), the same way. */
static role_result invoke_logged(fixture *f, const msg *m, size_t n, int64_t deadline_ms,
                                 char **logged)
{
    char *event = sqs_event(m, n);
    role_result res = invoke_text_logged(f, event, deadline_ms, logged);
    free(event);
    return res;
}

/* Tasks left unclaimed for want of time (a function whose timeout is too short for its handler
 * would keep every message until it is dead-lettered) are said at WARNING, once for the batch,
 * with what an operator needs to see why: the tasks, the time left and the time a run needs.
 * Their spans show no claim never made, and say why the delivery did nothing. */
static void test_unclaimed_tasks_are_said(void **state)
{
    fixture *f = *state;
    make_role(f, "jobs");
    char ids[3][37];
    for (int i = 0; i < 3; i++)
        create_task(f, "{}", NULL, ids[i]);
    msg m[3] = {
        {.message_id = "m-1", .queue = "jobs", .task_id = ids[0]},
        {.message_id = "m-2", .queue = "jobs", .task_id = ids[1]},
        {.message_id = "m-3", .queue = "jobs", .task_id = ids[2]},
    };
    /* 45 s left: one run of the binding's 30 s fits with the report's margin, not two */
    char *logged;
    int64_t before = now_ms();
    role_result res = invoke_logged(f, m, 3, before + 45000, &logged);
    assert_failures(&res, "m-2,m-3");
    assert_int_equal(runs(f), 1);
    assert_status(f, ids[0], TASK_COMPLETED, "Task completed");
    assert_status(f, ids[1], TASK_CREATED, "");
    assert_status(f, ids[2], TASK_CREATED, "");

    json_t *said[2] = {0};
    size_t n = log_lines(logged, "too little time left", said, 2);
    if (n != 1)
        fail_msg("%zu lines say so; logged: %s", n, logged);
    json_t *line = said[0];
    assert_string_equal(json_string_value(json_object_get(line, "level")), "WARNING");
    assert_string_equal(json_string_value(json_object_get(line, "queue")), "jobs");
    assert_string_equal(json_string_value(json_object_get(line, "tasks_not_claimed")), "2");
    char want_ids[80];
    snprintf(want_ids, sizeof want_ids, "%s,%s", ids[1], ids[2]);
    assert_string_equal(json_string_value(json_object_get(line, "task_ids")), want_ids);
    assert_string_equal(json_string_value(json_object_get(line, "run_needs_ms")), "31000");
    const char *left = json_string_value(json_object_get(line, "time_left_ms"));
    assert_non_null(left);
    assert_in_range(strtoll(left, NULL, 10), 44000, 45000);
    json_decref(line);
    free(logged);

    spans sp = {0};
    sp.n = tracer_task_spans(f->tracer, ids[1], &sp.s);
    const span *process = find(&sp, "process jobs", NULL);
    assert_non_null(find(&sp, "receive jobs", NULL));
    assert_non_null(process);
    assert_null(find(&sp, "UPDATE tasks", NULL)); /* no claim was made */
    assert_int_equal(process->status, SPAN_STATUS_ERROR);
    assert_string_equal(process->status_msg,
                        "not claimed: too little time left before the invocation's deadline");
    spans_free(&sp);
}

/* A claim the store fails (busy, in error) keeps its message, and says so at WARNING with the
 * task, the message and the store's answer: the store's own line names the call it made, not
 * which message comes back for it. */
static void test_a_failed_claim_is_said(void **state)
{
    fixture *f = *state;
    const store_rc fails[] = {STORE_BUSY, STORE_ERROR};
    for (size_t i = 0; i < sizeof fails / sizeof fails[0]; i++) {
        store_front r;
        store_front_init(&r, f->store, answer_updates_to, fails[i]);
        refused_statuses = 1u << TASK_IN_PROGRESS;
        make_role_over(f, &r.base, "jobs");
        char id[37];
        create_task(f, "{}", NULL, id);
        msg m = {.message_id = "m-1", .queue = "jobs", .task_id = id, .receive_count = 1};
        char *logged;
        role_result res = invoke_logged(f, &m, 1, now_ms() + MINUTE_MS, &logged);
        f->role->free(f->role);
        f->role = NULL;
        assert_failures(&res, "m-1");
        assert_int_equal(r.answered, 1);
        assert_int_equal(runs(f), 0);
        json_t *said[2] = {0};
        size_t n = log_lines(logged, "cannot claim task", said, 2);
        if (n != 1)
            fail_msg("case %zu: %zu lines say so; logged: %s", i, n, logged);
        assert_string_equal(json_string_value(json_object_get(said[0], "level")), "WARNING");
        assert_string_equal(json_string_value(json_object_get(said[0], "task_id")), id);
        assert_string_equal(json_string_value(json_object_get(said[0], "message_id")), "m-1");
        assert_string_equal(json_string_value(json_object_get(said[0], "queue")), "jobs");
        assert_string_equal(json_string_value(json_object_get(said[0], "error")),
                            store_rc_name(fails[i]));
        json_decref(said[0]);
        free(logged);
        assert_status(f, id, TASK_CREATED, "");
    }
}

/* A delivery that runs a task again shows its reclaim, a store call of its own, in the task's
 * trace: an "UPDATE tasks" span under its processing, beside the claim that found the task
 * IN_PROGRESS; one that failed (the store busy, or the task taken again since) is in error, and
 * tells why the message came back with no run. */
static void test_a_reclaim_is_traced(void **state)
{
    fixture *f = *state;
    const store_rc answers[] = {STORE_OK, STORE_BUSY, STORE_CONFLICT};
    for (size_t i = 0; i < sizeof answers / sizeof answers[0]; i++) {
        store_front r;
        store_front_init(&r, f->store,
                         answers[i] == STORE_OK ? note_claim_deadlines : answer_reclaims,
                         answers[i]);
        make_role_over(f, &r.base, "jobs");
        char id[37];
        create_task(f, "{}", PRODUCER, id);
        set_status(f, id, TASK_IN_PROGRESS, "Task started", time(NULL) - 1000); /* that one died */
        msg m = {.message_id = "m-1",
                 .queue = "jobs",
                 .task_id = id,
                 .receive_count = 2,
                 .traceparent = PRODUCER};
        int ran = runs(f);
        role_result res = invoke(f, &m, 1, now_ms() + MINUTE_MS);
        f->role->free(f->role);
        f->role = NULL;
        assert_failures(&res, answers[i] == STORE_OK ? "" : "m-1");
        assert_int_equal(runs(f) - ran, answers[i] == STORE_OK ? 1 : 0);

        spans sp = {0};
        sp.n = tracer_task_spans(f->tracer, id, &sp.s);
        const span *process = find(&sp, "process jobs", NULL), *claim = NULL, *reclaim = NULL;
        for (size_t k = 0; k < sp.n; k++) {
            const span *s = &sp.s[k];
            const char *st = attr_str(s, "task.status");
            if (strcmp(s->name, "UPDATE tasks") != 0 || !st || strcmp(st, "IN_PROGRESS") != 0)
                continue;
            if (s->start_ns == process->start_ns && !claim)
                claim = s; /* the claim's span has no time of its own (work.h) */
            else
                reclaim = s;
        }
        assert_child(claim, process);
        assert_child(reclaim, process);
        assert_string_equal(attr_str(reclaim, "db.system"), attr_str(claim, "db.system"));
        assert_string_equal(attr_str(reclaim, "task.id"), id);
        if (answers[i] == STORE_OK) {
            assert_int_not_equal(reclaim->status, SPAN_STATUS_ERROR);
            assert_store_call(f, reclaim);
            assert_non_null(find(&sp, "UPDATE tasks", "COMPLETED"));
        } else {
            assert_int_equal(reclaim->status, SPAN_STATUS_ERROR);
            if (answers[i] == STORE_BUSY)
                assert_string_equal(reclaim->status_msg, store_rc_name(STORE_BUSY));
            else
                assert_non_null(strstr(reclaim->status_msg, "taken again by another delivery"));
        }
        spans_free(&sp);
    }
}

static void test_batch_mixed_outcomes(void **state)
{
    fixture *f = *state;
    make_role(f, "jobs");
    char done[37], busy[37];
    create_task(f, "{}", NULL, done);
    create_task(f, "{}", NULL, busy);
    set_status(f, busy, TASK_IN_PROGRESS, "Task started", time(NULL));
    msg m[3] = {
        {.message_id = "m-done", .queue = "jobs", .task_id = done},
        {.message_id = "m-not-a-task", .queue = "jobs", .body = "{\"hello\":1}"},
        {.message_id = "m-busy", .queue = "jobs", .task_id = busy, .receive_count = 2},
    };
    role_result res = invoke(f, m, 3, now_ms() + MINUTE_MS);
    assert_failures(&res, "m-busy");
    assert_int_equal(runs(f), 1);
    assert_status(f, done, TASK_COMPLETED, "Task completed");
    assert_status(f, busy, TASK_IN_PROGRESS, "Task started");
}

/* A message that names no task (no TaskId attribute, or one that is no task id) is spent, and
 * said at WARNING with its message id, queue and why, in both modes: deleted in silence, it
 * left no trace of what came and went. */
static void test_a_message_naming_no_task_is_said(void **state)
{
    fixture *f = *state;
    static const char *const queues[] = {"jobs", "task1-dlq"};
    for (size_t q = 0; q < sizeof queues / sizeof queues[0]; q++) {
        make_role(f, queues[q]);
        msg m[3] = {
            {.message_id = "m-none", .queue = queues[q], .body = "{\"hello\":1}"},
            {.message_id = "m-bad", .queue = queues[q], .task_id = ""},
            {.message_id = "m-odd", .queue = queues[q], .task_id = "task-17"},
        };
        char *logged;
        role_result res = invoke_logged(f, m, 3, now_ms() + MINUTE_MS, &logged);
        f->role->free(f->role);
        f->role = NULL;
        assert_failures(&res, "");
        assert_int_equal(runs(f), 0);
        json_t *said[4] = {0};
        size_t n = log_lines(logged, "message names no task", said, 4);
        if (n != 3)
            fail_msg("%s: %zu lines say so; logged: %s", queues[q], n, logged);
        static const char *const want[][2] = {{"m-none", "no TaskId attribute"},
                                              {"m-bad", "its TaskId is no task id"},
                                              {"m-odd", "its TaskId is no task id"}};
        for (size_t i = 0; i < 3; i++) {
            assert_string_equal(json_string_value(json_object_get(said[i], "level")), "WARNING");
            assert_string_equal(json_string_value(json_object_get(said[i], "message_id")),
                                want[i][0]);
            assert_string_equal(json_string_value(json_object_get(said[i], "queue")), queues[q]);
            assert_string_equal(json_string_value(json_object_get(said[i], "reason")), want[i][1]);
            json_decref(said[i]);
        }
        free(logged);
    }
}

/* A TaskId in upper case (sent by hand: ids are made and kept in lower case) names its task, as
 * the API's routes take it. */
static void test_a_task_id_in_upper_case_names_its_task(void **state)
{
    fixture *f = *state;
    make_role(f, "jobs");
    char id[37], upper[37];
    create_task(f, "{}", NULL, id);
    for (size_t i = 0; i < sizeof upper; i++)
        upper[i] = (char)toupper((unsigned char)id[i]);
    role_result res = invoke(f, &(msg){.message_id = "m-upper", .queue = "jobs", .task_id = upper},
                             1, now_ms() + MINUTE_MS);
    assert_failures(&res, "");
    assert_int_equal(runs(f), 1);
    assert_status(f, id, TASK_COMPLETED, "Task completed");
}

/* A batch refused whole (a record in it unreadable: Runtime.InvalidEvent) comes back whole, the
 * message that names no task with it: it is not said to be dropped, at this delivery nor at the
 * next ones, where it was at each. */
static void test_a_message_naming_no_task_in_a_batch_that_comes_back_is_not_dropped(void **state)
{
    fixture *f = *state;
    make_role(f, "jobs");
    char *text = sqs_event(&(msg){.message_id = "m-none", .queue = "jobs", .body = "{}"}, 1);
    json_t *doc = json_loads(text, 0, NULL);
    free(text);
    json_array_append_new(json_object_get(doc, "Records"), json_pack("{ss}", "body", "{}"));
    char *event = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    char *logged;
    role_result res = invoke_text_logged(f, event, now_ms() + MINUTE_MS, &logged);
    free(event);
    assert_null(res.response);
    assert_string_equal(res.error_type, "Runtime.InvalidEvent");
    role_result_clear(&res);
    json_t *said[1] = {0};
    size_t n = log_lines(logged, "message names no task", said, 1);
    if (n != 0)
        fail_msg("%zu lines say a message of a batch that comes back is dropped; logged: %s", n,
                 logged);
    free(logged);
}

static void test_unknown_deadline_runs(void **state)
{
    fixture *f = *state;
    make_role(f, "task1");
    char id[37];
    create_task(f, "{}", NULL, id);
    msg m = {.message_id = "m-1", .queue = "task1", .task_id = id};
    role_result res = invoke(f, &m, 1, 0); /* no deadline known: the binding's timeout only */
    assert_failures(&res, "");
    assert_status(f, id, TASK_COMPLETED, NULL);
}

static void test_body_not_an_object_uses_stored_data(void **state)
{
    fixture *f = *state;
    make_role(f, "jobs");
    char id[37];
    create_task(f, "{\"k\":1}", NULL, id);
    msg m = {.message_id = "m-1", .queue = "jobs", .task_id = id, .body = "not json"};
    role_result res = invoke(f, &m, 1, now_ms() + MINUTE_MS);
    assert_failures(&res, "");
    assert_status(f, id, TASK_COMPLETED, NULL);
    assert_data_seen(f, id, "{\"k\":1}");
}

static void test_sns_envelope(void **state)
{
    fixture *f = *state;
    make_role(f, "task1");
    char id[37];
    create_task(f, "{\"foo\":\"bar\"}", NULL, id);
    /* raw message delivery off: the body is SNS's envelope, the SQS attributes are empty */
    json_t *env = json_pack("{ss ss ss ss s{s{ss ss} s{ss ss}}}", "Type", "Notification",
                            "MessageId", "dc1e94d9-56c5-5e96-808d-cc7f68faa162", "TopicArn",
                            "arn:aws:sns:us-east-1:123456789012:tasks", "Message",
                            "{\"foo\":\"bar\"}", "MessageAttributes", "TaskId", "Type", "String",
                            "Value", id, "TaskType", "Type", "String", "Value", "TASK1");
    char *body = json_dumps(env, JSON_COMPACT);
    json_decref(env);
    msg m = {.message_id = "m-1", .queue = "task1", .body = body};
    role_result res = invoke(f, &m, 1, now_ms() + MINUTE_MS);
    free(body);
    assert_failures(&res, "");
    assert_status(f, id, TASK_COMPLETED, "Task completed");
}

/* ---- dead-letter mode -------------------------------------------------------------------- */

static void test_dead_letters_fail_tasks(void **state)
{
    fixture *f = *state;
    make_role(f, "task1-dlq");
    char created[37], running[37], finished[37];
    create_task(f, "{}", PRODUCER, created);
    create_task(f, "{}", NULL, running);
    create_task(f, "{}", NULL, finished);
    int64_t now = time(NULL);
    set_status(f, running, TASK_IN_PROGRESS, "Task started", now);
    set_status(f, finished, TASK_IN_PROGRESS, "Task started", now);
    set_status(f, finished, TASK_COMPLETED, "Task completed", now);
    msg m[5] = {
        {.message_id = "d-1", .queue = "task1-dlq", .task_id = created, .traceparent = PRODUCER},
        {.message_id = "d-2", .queue = "task1-dlq", .task_id = running},
        {.message_id = "d-3", .queue = "task1-dlq", .task_id = finished},
        {.message_id = "d-4", .queue = "task1-dlq", .task_id = NO_TASK},
        {.message_id = "d-5", .queue = "task1-dlq"}, /* not a task message */
    };
    role_result res = invoke(f, m, 5, now_ms() + MINUTE_MS);
    assert_failures(&res, "");
    const char *why = "moved to dead-letter queue task1-dlq after 3 receives";
    assert_status(f, created, TASK_FAILED, why);
    assert_status(f, running, TASK_FAILED, why);
    assert_status(f, finished, TASK_COMPLETED, "Task completed");

    /* a second delivery of the same dead letter changes nothing and is spent */
    res = invoke(f, m, 1, now_ms() + MINUTE_MS);
    assert_failures(&res, "");
    assert_status(f, created, TASK_FAILED, why);

    /* its spans, in the message's trace */
    spans sp = {0};
    sp.n = tracer_task_spans(f->tracer, created, &sp.s);
    const span *process = find(&sp, "process task1-dlq", NULL);
    assert_non_null(process);
    trace_ctx producer;
    assert_true(tracectx_parse_traceparent(PRODUCER, &producer));
    assert_memory_equal(process->trace_id, producer.trace_id, 16);
    assert_memory_equal(process->parent_id, producer.span_id, 8);
    assert_int_equal(process->kind, SPAN_KIND_CONSUMER);
    assert_string_equal(attr_str(process, "messaging.message.id"), "d-1");
    assert_string_equal(attr_str(process, "taskd.dead_letter_source"), "task1");
    const span *update = find(&sp, "UPDATE tasks", "FAILED");
    assert_child(update, process);
    assert_int_not_equal(update->status, SPAN_STATUS_ERROR);
    assert_store_call(f, update);
    spans_free(&sp);
}

/* ---- events, routing, construction ------------------------------------------------------- */

static void test_malformed_events_fail(void **state)
{
    fixture *f = *state;
    make_role(f, "task1");
    static const char *bad[] = {
        "{}",
        "not json",
        "{\"Records\": {}}",
        "{\"Records\": [1]}",
        "{\"Records\": [{\"body\": \"{}\", \"eventSource\": \"aws:sqs\"}]}",
        /* jansson's message quotes the control character it stopped at */
        "{\"Records\": [\n\x01]}",
        "{\"Records\": [\x1b[2J]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        role_result res = invoke_text(f, bad[i], now_ms() + MINUTE_MS);
        assert_null(res.response);
        assert_string_equal(res.error_type, "Runtime.InvalidEvent");
        assert_true(res.error_message[0] != '\0');
        for (const char *c = res.error_message; *c; c++) /* one line, for logs and Lambda */
            assert_true((unsigned char)*c >= 0x20 && *c != 0x7f);
        role_result_clear(&res);
    }
    /* nothing was done for the good record before the bad one */
    char id[37];
    create_task(f, "{}", NULL, id);
    char *good = sqs_event(&(msg){.message_id = "m-1", .queue = "task1", .task_id = id}, 1);
    json_t *doc = json_loads(good, 0, NULL);
    free(good);
    json_array_append_new(json_object_get(doc, "Records"), json_pack("{ss}", "body", "{}"));
    char *event = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    role_result res = invoke_text(f, event, now_ms() + MINUTE_MS);
    free(event);
    assert_null(res.response);
    role_result_clear(&res);
    assert_status(f, id, TASK_CREATED, NULL);

    res = invoke_text(f, "{\"Records\": []}", now_ms() + MINUTE_MS);
    assert_failures(&res, "");
}

static void test_routing_by_event_source(void **state)
{
    fixture *f = *state;
    make_role(f, NULL); /* every servable queue; each record by its eventSourceARN */
    char work[37], dead[37];
    create_task(f, "{}", NULL, work);
    create_task(f, "{}", NULL, dead);
    msg m[3] = {
        {.message_id = "r-1", .queue = "task1", .task_id = work},
        {.message_id = "r-2", .queue = "task1-dlq", .task_id = dead},
        {.message_id = "r-3", .queue = "elsewhere", .task_id = NO_TASK},
    };
    role_result res = invoke(f, m, 3, now_ms() + MINUTE_MS);
    assert_failures(&res, "r-3"); /* a queue not served here: kept, not lost */
    assert_status(f, work, TASK_COMPLETED, "Task completed");
    assert_status(f, dead, TASK_FAILED, "moved to dead-letter queue task1-dlq after 3 receives");
}

static void test_named_queue_ignores_arn(void **state)
{
    fixture *f = *state;
    make_role(f, "task1");
    char id[37];
    create_task(f, "{}", NULL, id);
    /* the deployed queue's physical name differs from the configured one */
    msg m = {.message_id = "m-1", .queue = "taskd-stack-Task1Queue-1A2B3C", .task_id = id};
    role_result res = invoke(f, &m, 1, now_ms() + MINUTE_MS);
    assert_failures(&res, "");
    assert_status(f, id, TASK_COMPLETED, NULL);
}

static void test_constructor_errors(void **state)
{
    fixture *f = *state;
    char err[512] = "";
    assert_null(worker_role_new(&f->cfg, f->store, "nope", &f->tel, err, sizeof err));
    assert_non_null(strstr(err, "\"nope\""));
    assert_non_null(strstr(err, "task1 (noop)"));
    assert_non_null(strstr(err, "task1-dlq (dead letters of task1)"));

    assert_null(worker_role_new(&f->cfg, f->store, "orphan", &f->tel, err, sizeof err));
    assert_non_null(strstr(err, "\"orphan\""));
    assert_non_null(strstr(err, "no handler binding"));
    assert_non_null(strstr(err, "jobs (exec)"));

    config none;
    assert_true(config_defaults(&none));
    assert_true(config_load_text(&none,
                                 "{\"handlers\": [], \"queues\": [{\"name\": \"q\"}], "
                                 "\"subscriptions\": []}",
                                 "none", err, sizeof err));
    assert_null(worker_role_new(&none, f->store, NULL, NULL, err, sizeof err));
    assert_non_null(strstr(err, "configured queues: q"));
    config_free(&none);

    /* a DLQ served by name; no telemetry is fine */
    role *r = worker_role_new(&f->cfg, f->store, "task1-dlq", NULL, err, sizeof err);
    assert_non_null(r);
    r->free(r);
}

/* ---- spans ------------------------------------------------------------------------------- */

static void test_spans_in_the_message_trace(void **state)
{
    fixture *f = *state;
    make_role(f, "task1");
    char id[37];
    create_task(f, "{}", PRODUCER, id);
    msg m = {.message_id = "059f36b4-87a3-44ab-83d2-661975830a7d",
             .queue = "task1",
             .task_id = id,
             .traceparent = PRODUCER};
    role_result res = invoke(f, &m, 1, now_ms() + MINUTE_MS);
    assert_failures(&res, "");

    spans sp = {0};
    sp.n = tracer_task_spans(f->tracer, id, &sp.s);
    assert_int_equal(sp.n, 5);
    const span *receive = find(&sp, "receive task1", NULL),
               *process = find(&sp, "process task1", NULL),
               *claim = find(&sp, "UPDATE tasks", "IN_PROGRESS"), *run = find(&sp, "noop", NULL),
               *report = find(&sp, "UPDATE tasks", "COMPLETED");
    assert_non_null(receive);
    trace_ctx producer;
    assert_true(tracectx_parse_traceparent(PRODUCER, &producer));
    assert_memory_equal(receive->trace_id, producer.trace_id, 16);
    assert_memory_equal(receive->parent_id, producer.span_id, 8);
    assert_string_equal(attr_str(receive, "messaging.message.id"),
                        "059f36b4-87a3-44ab-83d2-661975830a7d");
    assert_string_equal(attr_str(receive, "messaging.destination.name"), "task1");
    assert_string_equal(attr_str(receive, "messaging.system"), "aws_sqs");
    assert_string_equal(attr_str(claim, "db.system"), f->store->ops->system);
    assert_string_equal(attr_str(report, "db.system"), f->store->ops->system);
    assert_child(process, receive);
    assert_child(claim, process);
    assert_int_not_equal(claim->status, SPAN_STATUS_ERROR);
    assert_child(run, process);
    assert_int_not_equal(run->status, SPAN_STATUS_ERROR);
    assert_child(report, process);
    assert_store_call(f, claim);
    assert_store_call(f, report);
    spans_free(&sp);
}

/* A SentTimestamp that is no time (past year 2262 in nanoseconds) is taken as absent: the receive
 * span starts at the receive, not at a time wrapped around from it. */
static void test_a_sent_time_out_of_range_is_now(void **state)
{
    fixture *f = *state;
    make_role(f, "task1");
    const char *sent[] = {"99999999999999999", "9223372036854776"};
    for (size_t i = 0; i < sizeof sent / sizeof sent[0]; i++) {
        char id[37];
        create_task(f, "{}", NULL, id);
        msg m = {.message_id = "m-1", .queue = "task1", .task_id = id, .sent = sent[i]};
        int64_t before_ns = now_ms() * 1000000;
        role_result res = invoke(f, &m, 1, now_ms() + MINUTE_MS);
        assert_failures(&res, "");
        assert_status(f, id, TASK_COMPLETED, "Task completed");
        spans sp = {0};
        sp.n = tracer_task_spans(f->tracer, id, &sp.s);
        const span *receive = find(&sp, "receive task1", NULL);
        assert_non_null(receive);
        assert_in_range(receive->start_ns, before_ns - 1000000000, receive->end_ns);
        spans_free(&sp);
    }
}

/* The result of the traced handler for one message on its queue: the TRACESTATE it saw. */
static char *traced_run(fixture *f, msg m)
{
    char id[37];
    create_task(f, "{}", PRODUCER, id);
    m.message_id = "5d0c3a8e-traced";
    m.queue = "traced";
    m.task_id = id;
    role_result res = invoke(f, &m, 1, now_ms() + MINUTE_MS);
    assert_failures(&res, "");
    task t;
    assert_int_equal(store_get_task(f->store, id, &t), STORE_OK);
    assert_int_equal(t.status, TASK_COMPLETED);
    assert_non_null(t.result);
    json_t *r = json_loads(t.result, JSON_DECODE_ANY, NULL);
    assert_true(json_is_string(r));
    char *seen = strdup(json_string_value(r));
    json_decref(r);
    task_clear(&t);
    return seen;
}

/* The tracestate attribute reaches the handler with the traceparent it came with (in its normal
 * form); never a bad one, nor one beside an X-Ray header alone. */
static void test_tracestate_to_the_handler(void **state)
{
    fixture *f = *state;
    make_role(f, "traced");
    struct {
        msg m;
        const char *want;
    } cases[] = {
        {{.traceparent = PRODUCER, .tracestate = "rojo=1 , congo=2"}, "rojo=1,congo=2"},
        {{.traceparent = PRODUCER}, "unset"},
        {{.traceparent = PRODUCER, .tracestate = "rojo=1,BAD=2"}, "unset"},
        {{.tracestate = "rojo=1"}, "unset"},
        {{.xray = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
          .tracestate = "rojo=1"},
         "unset"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *seen = traced_run(f, cases[i].m);
        if (strcmp(seen, cases[i].want) != 0)
            fail_msg("case %zu: the handler saw %s, not %s", i, seen, cases[i].want);
        free(seen);
    }
}

int main(void)
{
    log_setup(LOG_ERROR, "test");
    log_level level;
    const char *env = getenv("LOG_LEVEL");
    if (env && log_level_parse(env, &level))
        log_setup(level, "test");
#define CASE(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        CASE(test_noop_completes),
        CASE(test_exec_completes),
        CASE(test_handler_failure_fails_and_is_spent),
        CASE(test_missing_task_spent),
        CASE(test_completed_task_spent_not_run),
        CASE(test_fresh_claim_kept),
        CASE(test_first_delivery_leaves_a_claim_to_its_holder),
        CASE(test_a_change_the_store_can_never_make_spends_the_message),
        CASE(test_redelivery_leaves_a_clients_claim),
        CASE(test_stale_claim_runs_again),
        CASE(test_a_receive_count_past_64_bits_is_a_redelivery),
        CASE(test_a_task_run_again_says_so),
        CASE(test_a_failed_reclaim_does_not_run_the_task),
        CASE(test_a_claim_leaves_its_run_its_time),
        CASE(test_a_reclaim_leaves_its_run_its_time),
        CASE(test_duplicate_redeliveries_run_once),
        CASE(test_deadline_too_near_kept),
        CASE(test_a_claimed_task_too_near_the_deadline_says_so),
        CASE(test_unclaimed_tasks_are_said),
        CASE(test_a_failed_claim_is_said),
        CASE(test_a_reclaim_is_traced),
        CASE(test_batch_mixed_outcomes),
        CASE(test_a_message_naming_no_task_is_said),
        CASE(test_a_task_id_in_upper_case_names_its_task),
        CASE(test_a_message_naming_no_task_in_a_batch_that_comes_back_is_not_dropped),
        CASE(test_unknown_deadline_runs),
        CASE(test_body_not_an_object_uses_stored_data),
        CASE(test_sns_envelope),
        CASE(test_dead_letters_fail_tasks),
        CASE(test_malformed_events_fail),
        CASE(test_routing_by_event_source),
        CASE(test_named_queue_ignores_arn),
        CASE(test_constructor_errors),
        CASE(test_spans_in_the_message_trace),
        CASE(test_a_sent_time_out_of_range_is_now),
        CASE(test_tracestate_to_the_handler),
    };
#undef CASE
    tracer_global_init();
    bool have_dynamodb = ddb_test_setup();
    int failed = 0;
    for (size_t i = 0; i < sizeof factories / sizeof factories[0]; i++) {
        current = &factories[i];
        if (strcmp(current->name, "dynamodb") == 0 && !have_dynamodb)
            continue;
        char group[64];
        snprintf(group, sizeof group, "worker role over %s", current->name);
        failed += _cmocka_run_group_tests(group, tests, sizeof tests / sizeof tests[0], NULL, NULL);
    }
    if (!have_dynamodb)
        printf("dynamodb skipped: DYNAMODB_ENDPOINT is not set\n");
    ddb_test_teardown();
    tracer_global_cleanup();
    return failed;
}
