/*
 * Unit tests for aws/publish_role: the `publish` Lambda role driven with
 * DynamoDB Streams events (the shape of the Lambda docs: eventID, eventName,
 * eventSource aws:dynamodb, dynamodb.Keys / NewImage / SequenceNumber /
 * StreamViewType, eventSourceARN) against a fake SNS run inside the test (a
 * support/http_stub server) that decodes each PublishBatch form, records its
 * entries (body and attributes) and answers Successful for each, Failed for
 * the entries whose TaskId the test names, or a fixed error for the whole
 * call.
 *
 * Covered: an INSERT published (the task's data as the body, TaskId /
 * TaskType / traceparent attributes, the topic ARN); MODIFY and REMOVE
 * records and the store's own items (idem#, meta#: no task_type) skipped;
 * a per-entry failure at record 3 of 5 (reported by its SequenceNumber);
 * a failure in the second PublishBatch call (records of later calls never
 * sent, no spans for them); a topic that does not exist (the first record
 * reported); a failure on a record without a SequenceNumber (the
 * invocation fails, its message ending "..." where SNS's long reason cuts
 * it); events that are not stream events (no Records array,
 * said with its keys, and the source and ARN of Kafka's, Amazon MQ's or
 * DocumentDB's; records of SQS, SNS, Kinesis, S3 (its bucket's ARN),
 * CloudFront or none, said with their source and ARN; a reason too long for the error message
 * cut once, at its end, ending "..."); an empty batch;
 * the spans (process and publish, in the trace stored with the task, the
 * message's traceparent = the publish span, ERROR on the failed record, the
 * publish span's messaging.system aws.sns and its PublishBatch call);
 * the constructor's refusals.
 *
 * With FAUXQS_ENDPOINT set (a running fauxqs), one more test sends through
 * the real stand-in: a topic, a queue subscribed with raw delivery and the
 * filter policy {"TaskType": ["TASK1"]}, an event of a TASK1 and a TASK2
 * INSERT and a MODIFY, and the one message the queue then holds, with its
 * body and attributes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "aws/publish_role.h"
#include "aws/recover_role.h"
#include "util/clock.h"
#include "aws/sns.h"
#include "core/config.h"
#include "core/sbuf.h"
#include "trace/trace.h"
#include "util/log.h"
#include "support/form_decode.h"
#include "support/http_stub.h"
#include "support/stderr_capture.h"
#include "support/store_front.h"
#include "support/trace_env.h"
#include "support_aws/standin_calls.h"
#include "support/tmpdir.h"
#include "support_local/sqlite_exec.h"
#include "support_local/sqlite_store.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TOPIC      "arn:aws:sns:eu-west-1:123456789012:tasks"
#define TRACE_ID   "0af7651916cd43dd8448eb211c80319c"
#define TRACE_SPAN "b7ad6b7169203331"
#define TRACE      "00-" TRACE_ID "-" TRACE_SPAN "-01"
#define M          "PublishBatchRequestEntries.member."

/* ---- the fake SNS ---- */

/* One entry of a PublishBatch as the fake received it. */
typedef struct entry {
    char *message;
    char task_id[64], task_type[32], traceparent[64];
    int n_attrs;
    bool failed; /* answered as Failed */
} entry;

#define MAX_ENTRIES 256

/* The fake's state; its handler runs under the server's lock, one request at a time. */
typedef struct fake_sns {
    http_stub *http;
    const char *fail_task_ids;   /* ",<id>,<id>," answered as Failed */
    const char *refuse_task_ids; /* the same, Failed with SenderFault true */
    int status;                  /* != 200: every call answers this with error_body */
    const char *error_body;
    char topic[256];   /* TopicArn of the last call */
    int calls;         /* PublishBatch calls */
    int other_actions; /* calls of any other action */
    entry entries[MAX_ENTRIES];
    int n_entries;
} fake_sns;

/* The decoded value of key in a form body, or NULL (owned by the caller). */
static char *form_value(const char *body, const char *key)
{
    size_t kl = strlen(key);
    for (const char *p = body; p && *p;) {
        const char *amp = strchr(p, '&');
        size_t fl = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', fl);
        if (eq) {
            char *k = form_decode(p, (size_t)(eq - p));
            bool hit = k && strlen(k) == kl && memcmp(k, key, kl) == 0;
            free(k);
            if (hit)
                return form_decode(eq + 1, fl - (size_t)(eq - p) - 1);
        }
        p = amp ? amp + 1 : NULL;
    }
    return NULL;
}

static char *form_valuef(const char *body, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static char *form_valuef(const char *body, const char *fmt, ...)
{
    char key[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(key, sizeof key, fmt, ap);
    va_end(ap);
    return form_value(body, key);
}

/* Record a PublishBatch's entries and make its answer. */
static char *answer_batch(fake_sns *s, const char *body)
{
    sbuf ok = {0}, bad = {0}, out = {0};
    char *topic = form_value(body, "TopicArn");
    snprintf(s->topic, sizeof s->topic, "%s", topic ? topic : "");
    free(topic);
    s->calls++;
    for (int n = 1;; n++) {
        char *id = form_valuef(body, M "%d.Id", n);
        if (!id)
            break;
        assert_true(s->n_entries < MAX_ENTRIES);
        entry *e = &s->entries[s->n_entries++];
        memset(e, 0, sizeof *e);
        e->message = form_valuef(body, M "%d.Message", n);
        for (int k = 1;; k++) {
            char *name = form_valuef(body, M "%d.MessageAttributes.entry.%d.Name", n, k);
            if (!name)
                break;
            char *type = form_valuef(body, M "%d.MessageAttributes.entry.%d.Value.DataType", n, k);
            char *value =
                form_valuef(body, M "%d.MessageAttributes.entry.%d.Value.StringValue", n, k);
            assert_non_null(type);
            assert_string_equal(type, "String");
            assert_non_null(value);
            if (strcmp(name, "TaskId") == 0)
                snprintf(e->task_id, sizeof e->task_id, "%s", value);
            else if (strcmp(name, "TaskType") == 0)
                snprintf(e->task_type, sizeof e->task_type, "%s", value);
            else if (strcmp(name, "traceparent") == 0)
                snprintf(e->traceparent, sizeof e->traceparent, "%s", value);
            e->n_attrs++;
            free(name);
            free(type);
            free(value);
        }
        char needle[80];
        snprintf(needle, sizeof needle, ",%s,", e->task_id);
        e->failed = s->fail_task_ids && strstr(s->fail_task_ids, needle);
        bool refused = s->refuse_task_ids && strstr(s->refuse_task_ids, needle);
        if (refused)
            sbuf_printf(&bad,
                        "<member><Id>%s</Id><Code>InvalidParameter</Code><Message>Invalid "
                        "parameter: Message</Message><SenderFault>true</SenderFault></member>",
                        id);
        else if (e->failed)
            sbuf_printf(&bad,
                        "<member><Id>%s</Id><Code>KMSThrottling</Code><Message>key busy"
                        "</Message><SenderFault>false</SenderFault></member>",
                        id);
        else
            sbuf_printf(&ok, "<member><Id>%s</Id><MessageId>msg-%s</MessageId></member>", id, id);
        free(id);
    }
    sbuf_puts(&out, "<PublishBatchResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\">"
                    "<PublishBatchResult><Successful>");
    sbuf_append(&out, ok.data ? ok.data : "", ok.len);
    sbuf_puts(&out, "</Successful><Failed>");
    sbuf_append(&out, bad.data ? bad.data : "", bad.len);
    sbuf_puts(&out, "</Failed></PublishBatchResult></PublishBatchResponse>");
    sbuf_free(&ok);
    sbuf_free(&bad);
    return sbuf_take(&out, NULL);
}

/* Answer a request as SNS would, recording what it carried. */
static void answer(void *arg, const http_stub_request *rq, size_t index, http_stub_reply *reply)
{
    fake_sns *s = arg;
    (void)index;
    char *action = form_value(rq->body, "Action");
    if (!action || strcmp(action, "PublishBatch") != 0) {
        s->other_actions++;
        reply->status = 400;
        reply->body = "<ErrorResponse><Error><Code>InvalidAction</Code></Error></ErrorResponse>";
    } else if (s->status != 200) {
        s->calls++;
        reply->status = s->status;
        reply->body = s->error_body;
    } else {
        reply->status = 200;
        reply->body = answer_batch(s, rq->body);
        reply->free_body = true;
    }
    free(action);
}

/* The request id the fake SNS answers every call with. */
#define REQUEST_ID        "f8cf9d2c-6b1a-5c3e-9d4f-0a1b2c3d4e5f"
#define REQUEST_ID_HEADER "x-amzn-RequestId: " REQUEST_ID "\r\n"

static fake_sns *fake_sns_start(void)
{
    fake_sns *s = calloc(1, sizeof *s);
    assert_non_null(s);
    s->status = 200;
    http_stub_options o = {.headers = "Content-Type: text/xml\r\n" REQUEST_ID_HEADER,
                           .handler = answer,
                           .handler_arg = s};
    s->http = http_stub_start(&o);
    return s;
}

static void fake_sns_stop(fake_sns *s)
{
    http_stub_stop(s->http);
    for (int i = 0; i < s->n_entries; i++)
        free(s->entries[i].message);
    free(s);
}

/* ---- the role under test ---- */

typedef struct fixture {
    fake_sns *sns;
    char dir[256]; /* the store's database */
    store *store;  /* where the task of a message SNS refuses fails */
    aws_client *client;
    config cfg;
    tracer *tracer;
    telemetry tel;
    role *role;
} fixture;

static void fixture_start(fixture *f)
{
    memset(f, 0, sizeof *f);
    f->sns = fake_sns_start();
    unsetenv("AWS_ENDPOINT_URL");
    unsetenv("AWS_SESSION_TOKEN");
    test_trace_env_clear();
    setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", 1);
    setenv("AWS_REGION", "eu-west-1", 1);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", http_stub_port(f->sns->http));
    setenv("AWS_ENDPOINT_URL_SNS", url, 1);
    char err[256] = "";
    f->client = aws_client_new(AWS_SNS, err, sizeof err);
    if (!f->client)
        fail_msg("aws_client_new: %s", err);
    assert_true(config_defaults(&f->cfg));
    tracer_options o = {.service_name = "taskd-test", .local_capacity = 1024};
    f->tracer = tracer_new(&o, err, sizeof err);
    if (!f->tracer)
        fail_msg("tracer_new: %s", err);
    f->tel = (telemetry){.tracer = f->tracer};
    f->store = test_sqlite_store(f->dir, sizeof f->dir, "taskd-publish-test");
    f->role = publish_role_new(&f->cfg, f->client, TOPIC, f->store, &f->tel, err, sizeof err);
    if (!f->role)
        fail_msg("publish_role_new: %s", err);
    assert_string_equal(f->role->name, "publish");
}

static void fixture_stop(fixture *f)
{
    f->role->free(f->role);
    store_close(f->store);
    assert_int_equal(test_tmpdir_remove(f->dir), 0);
    tracer_free(f->tracer);
    config_free(&f->cfg);
    aws_client_free(f->client);
    fake_sns_stop(f->sns);
}

/* Invoke role r with event (JSON text) and deadline_ms (Unix ms); the result's response, or
 * NULL with res failed. */
static void invoke_role(role *r, const char *event, int64_t deadline_ms, role_result *res)
{
    lambda_invocation inv = {0};
    snprintf(inv.request_id, sizeof inv.request_id, "req-1");
    inv.deadline_ms = deadline_ms;
    inv.event = strdup(event);
    inv.event_len = strlen(event);
    memset(res, 0, sizeof *res);
    r->invoke(r, &inv, res);
    lambda_invocation_clear(&inv);
}

/* invoke_role() with what it logs at WARNING and above, returned (free() it); the threshold is
 * then set back to what it was. */
static char *invoke_role_logged(role *r, const char *event, int64_t deadline_ms, role_result *res)
{
    test_stderr cap;
    log_level was = log_threshold();
    log_setup(LOG_WARN, NULL);
    test_stderr_begin(&cap);
    invoke_role(r, event, deadline_ms, res);
    char *logged = test_stderr_end(&cap);
    log_setup(was, NULL);
    return logged;
}

/* Invoke the fixture's role with event, 5 s to go. */
static void invoke(fixture *f, const char *event, role_result *res)
{
    invoke_role(f->role, event, clock_unix_ms() + 5000, res);
}

/* ---- stream events ---- */

static void task_id(int n, char out[37])
{
    snprintf(out, 37, "0190f3c2-7b1e-7c3a-9d2e-%012d", n);
}

/*
 * A stream record: event INSERT / MODIFY / REMOVE of item id with task_type
 * (NULL: an item without one), data {"n": n}, the stored trace (NULL: none)
 * and SequenceNumber seq (NULL: left out).
 */
static json_t *stream_record(const char *event, const char *id, const char *type, int n,
                             const char *trace, const char *seq)
{
    json_t *img =
        json_pack("{s:{s:s}, s:{s:s}, s:{s:s}, s:{s:s}, s:{s:{s:{s:s}, s:{s:s}}}}", "id", "S", id,
                  "status", "S", "CREATED", "status_msg", "S", "", "created_time", "N",
                  "1648229203", "data", "M", "n", "N", "0", "note", "S", "a&b=c+d e\xc3\xa9\n");
    assert_non_null(img);
    char num[16];
    snprintf(num, sizeof num, "%d", n);
    json_object_set_new(json_object_get(json_object_get(img, "data"), "M"), "n",
                        json_pack("{s:s}", "N", num));
    if (type) {
        json_object_set_new(img, "task_type", json_pack("{s:s}", "S", type));
        char ts[64];
        snprintf(ts, sizeof ts, "%s#CREATED", type);
        json_object_set_new(img, "type_status", json_pack("{s:s}", "S", ts));
        json_object_set_new(img, "list_all", json_pack("{s:s}", "S", "tasks"));
    }
    if (trace)
        json_object_set_new(img, "trace", json_pack("{s:s}", "S", trace));
    json_t *ddb =
        json_pack("{s:i, s:{s:{s:s}}, s:i, s:s}", "ApproximateCreationDateTime", 1648229203, "Keys",
                  "id", "S", id, "SizeBytes", 120, "StreamViewType", "NEW_AND_OLD_IMAGES");
    if (strcmp(event, "REMOVE") == 0)
        json_object_set_new(ddb, "OldImage", img);
    else
        json_object_set_new(ddb, "NewImage", img);
    if (strcmp(event, "MODIFY") == 0)
        json_object_set(ddb, "OldImage", json_object_get(ddb, "NewImage"));
    if (seq)
        json_object_set_new(ddb, "SequenceNumber", json_string(seq));
    json_t *rec = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:s}", "eventID",
                            "c4ca4238a0b923820dcc509a6f75849b", "eventName", event, "eventVersion",
                            "1.1", "eventSource", "aws:dynamodb", "awsRegion", "eu-west-1",
                            "dynamodb", ddb, "eventSourceARN",
                            "arn:aws:dynamodb:eu-west-1:123456789012:table/tasks/stream/"
                            "2022-03-25T00:00:00.000");
    assert_non_null(rec);
    return rec;
}

/* {"Records": records} as text (records is consumed). */
static char *event_text(json_t *records)
{
    json_t *ev = json_pack("{s:o}", "Records", records);
    char *text = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    assert_non_null(text);
    return text;
}

/* A sequence number as DynamoDB writes them: digits beyond 64 bits. */
static void seq_of(int n, char out[32])
{
    snprintf(out, 32, "1110000000000000000%05d", n);
}

/* n INSERTs of TASK1, records 1..n, each with the stored trace. */
static char *inserts(int n)
{
    json_t *records = json_array();
    for (int i = 1; i <= n; i++) {
        char id[37], seq[32];
        task_id(i, id);
        seq_of(i, seq);
        json_array_append_new(records, stream_record("INSERT", id, "TASK1", i, TRACE, seq));
    }
    return event_text(records);
}

static void expect_response(const role_result *res, const char *want)
{
    if (!res->response)
        fail_msg("invocation failed: %s: %s", res->error_type, res->error_message);
    assert_string_equal(res->response, want);
    assert_int_equal(res->response_len, strlen(want));
}

static void expect_failed_at(const role_result *res, int record)
{
    char seq[32], want[128];
    seq_of(record, seq);
    snprintf(want, sizeof want, "{\"batchItemFailures\":[{\"itemIdentifier\":\"%s\"}]}", seq);
    expect_response(res, want);
}

/* The task's spans (process first), exactly want of them. */
static size_t task_spans(fixture *f, int n, span **out, size_t want)
{
    char id[37];
    task_id(n, id);
    size_t got = tracer_task_spans(f->tracer, id, out);
    assert_int_equal(got, want);
    if (got == 2 && strncmp((*out)[0].name, "process", 7) != 0) {
        span t = (*out)[0];
        (*out)[0] = (*out)[1];
        (*out)[1] = t;
    }
    return got;
}

static void free_spans(span *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        span_clear(&s[i]);
    free(s);
}

static const span_attr *attr_of(const span *s, const char *key)
{
    for (int i = 0; i < s->n_attrs; i++)
        if (strcmp(s->attrs[i].key, key) == 0)
            return &s->attrs[i];
    return NULL;
}

/* A publish span that names the PublishBatch call that carried its message. */
static void expect_publish_call(const span *s)
{
    static const char *const want[][2] = {
        {"rpc.system", "aws-api"},    {"rpc.service", "SNS"},        {"rpc.method", "PublishBatch"},
        {"aws.sns.topic.arn", TOPIC}, {"cloud.region", "eu-west-1"}, {"aws.request_id", REQUEST_ID},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const span_attr *a = attr_of(s, want[i][0]);
        if (!a)
            fail_msg("%s: no attribute %s", s->name, want[i][0]);
        assert_int_equal(a->type, SPAN_ATTR_STRING);
        assert_string_equal(a->v.s, want[i][1]);
    }
}

/* ---- tests ---- */

static void test_insert_published(void **state)
{
    (void)state;
    fixture f;
    fixture_start(&f);
    char *ev = inserts(1);
    role_result res;
    invoke(&f, ev, &res);
    expect_response(&res, "{\"batchItemFailures\":[]}");
    role_result_clear(&res);
    free(ev);

    assert_int_equal(f.sns->calls, 1);
    assert_string_equal(f.sns->topic, TOPIC);
    assert_int_equal(f.sns->n_entries, 1);
    const entry *e = &f.sns->entries[0];
    char id[37];
    task_id(1, id);
    json_t *body = json_loads(e->message, 0, NULL);
    assert_non_null(body);
    json_t *want = json_pack("{s:i, s:s}", "n", 1, "note", "a&b=c+d e\xc3\xa9\n");
    assert_true(json_equal(body, want)); /* the task's data, as plain JSON */
    json_decref(want);
    json_decref(body);
    assert_string_equal(e->task_id, id);
    assert_string_equal(e->task_type, "TASK1");
    assert_int_equal(e->n_attrs, 3);
    /* the traceparent carries the task's trace, with the publish span as parent */
    assert_int_equal(strlen(e->traceparent), 55);
    assert_memory_equal(e->traceparent, "00-" TRACE_ID "-", 36);
    assert_memory_not_equal(e->traceparent + 36, TRACE_SPAN, 16);
    assert_string_equal(e->traceparent + 52, "-01");
    fixture_stop(&f);
}

static void test_spans_in_the_task_trace(void **state)
{
    (void)state;
    fixture f;
    fixture_start(&f);
    f.sns->fail_task_ids = ",0190f3c2-7b1e-7c3a-9d2e-000000000002,";
    char *ev = inserts(2);
    role_result res;
    invoke(&f, ev, &res);
    expect_failed_at(&res, 2);
    role_result_clear(&res);
    free(ev);

    span *s = NULL;
    size_t n = task_spans(&f, 1, &s, 2);
    char hex[33];
    assert_string_equal(s[0].name, "process publisher");
    assert_int_equal(s[0].kind, SPAN_KIND_CONSUMER);
    assert_string_equal(s[1].name, "publish tasks");
    assert_int_equal(s[1].kind, SPAN_KIND_PRODUCER);
    for (int i = 0; i < 2; i++) {
        span_hex(s[i].trace_id, 16, hex);
        assert_string_equal(hex, TRACE_ID);
        assert_int_equal(s[i].status, SPAN_STATUS_UNSET);
        assert_true(s[i].end_ns >= s[i].start_ns && s[i].end_ns > 0);
    }
    span_hex(s[0].parent_id, 8, hex);
    assert_string_equal(hex, TRACE_SPAN); /* the context stored with the task */
    assert_memory_equal(s[1].parent_id, s[0].span_id, 8);
    /* the message's traceparent is the publish span's context */
    char tp[56];
    trace_traceparent_of(&s[1], tp);
    assert_string_equal(f.sns->entries[0].traceparent, tp);
    const span_attr *mid = attr_of(&s[1], "messaging.message.id");
    assert_non_null(mid);
    assert_string_equal(mid->v.s, "msg-0");
    /* the topic is SNS, and the publish span says so; process reads the table's changes */
    assert_string_equal(attr_of(&s[1], "messaging.system")->v.s, "aws.sns");
    assert_string_equal(attr_of(&s[0], "messaging.system")->v.s, "taskd");
    expect_publish_call(&s[1]);
    assert_null(attr_of(&s[0], "rpc.system"));
    free_spans(s, n);

    /* the failed one: both spans ERROR with SNS's code and message */
    n = task_spans(&f, 2, &s, 2);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(s[i].status, SPAN_STATUS_ERROR);
        assert_non_null(s[i].status_msg);
        assert_string_equal(s[i].status_msg, "KMSThrottling: key busy");
    }
    assert_null(attr_of(&s[1], "messaging.message.id"));
    expect_publish_call(&s[1]); /* it went out, and SNS refused it */
    free_spans(s, n);
    fixture_stop(&f);
}

static void test_skipped_records(void **state)
{
    (void)state;
    fixture f;
    fixture_start(&f);
    char id1[37], id2[37];
    task_id(1, id1);
    task_id(2, id2);
    json_t *records = json_array();
    json_array_append_new(records, stream_record("MODIFY", id1, "TASK1", 1, TRACE, "101"));
    json_array_append_new(records, stream_record("REMOVE", id1, "TASK1", 1, TRACE, "102"));
    json_array_append_new(records, stream_record("INSERT", "idem#order-42", NULL, 0, NULL, "103"));
    json_array_append_new(records, stream_record("INSERT", "meta#secret", NULL, 0, NULL, "104"));
    json_array_append_new(records, stream_record("INSERT", id2, "TASK2", 2, NULL, "105"));
    char *ev = event_text(records);
    role_result res;
    invoke(&f, ev, &res);
    expect_response(&res, "{\"batchItemFailures\":[]}");
    role_result_clear(&res);
    free(ev);
    assert_int_equal(f.sns->calls, 1);
    assert_int_equal(f.sns->n_entries, 1); /* only the INSERT of a task */
    assert_string_equal(f.sns->entries[0].task_id, id2);
    assert_string_equal(f.sns->entries[0].task_type, "TASK2");
    /* a task without a stored trace gets a new one */
    assert_int_equal(strlen(f.sns->entries[0].traceparent), 55);
    span *s = NULL;
    size_t n = task_spans(&f, 1, &s, 0); /* the skipped records opened no spans */
    free_spans(s, n);

    /* only records that make nothing: no call at all */
    records = json_array();
    json_array_append_new(records, stream_record("MODIFY", id1, "TASK1", 1, TRACE, "106"));
    ev = event_text(records);
    invoke(&f, ev, &res);
    expect_response(&res, "{\"batchItemFailures\":[]}");
    role_result_clear(&res);
    free(ev);
    assert_int_equal(f.sns->calls, 1);
    fixture_stop(&f);
}

/* An INSERT of a task whose image cannot be made a message (here its data is gone; a stream that
 * carries keys only has no image at all) is passed over, as no retry would read it better, and
 * said at ERROR with its task, sequence number and why: its task stays CREATED. What makes no
 * message by design (a MODIFY, the store's own items) is passed over without a word. */
static void test_unreadable_insert_is_said(void **state)
{
    (void)state;
    fixture f;
    fixture_start(&f);
    char id1[37], id2[37], id3[37];
    task_id(1, id1);
    task_id(2, id2);
    task_id(3, id3);
    json_t *records = json_array();
    json_array_append_new(records, stream_record("MODIFY", id1, "TASK1", 1, TRACE, "201"));
    json_array_append_new(records, stream_record("INSERT", "idem#order-42", NULL, 0, NULL, "202"));
    json_t *no_data = stream_record("INSERT", id2, "TASK1", 2, NULL, "203");
    json_object_del(json_object_get(json_object_get(no_data, "dynamodb"), "NewImage"), "data");
    json_array_append_new(records, no_data);
    json_t *keys_only = stream_record("INSERT", id3, "TASK1", 3, NULL, "204");
    json_object_del(json_object_get(keys_only, "dynamodb"), "NewImage");
    json_array_append_new(records, keys_only);
    json_array_append_new(records, stream_record("INSERT", id1, "TASK1", 1, NULL, "205"));
    char *ev = event_text(records);
    role_result res;
    char *logged = invoke_role_logged(f.role, ev, clock_unix_ms() + 5000, &res);
    expect_response(&res, "{\"batchItemFailures\":[]}");
    role_result_clear(&res);
    free(ev);
    assert_int_equal(f.sns->n_entries, 1);
    assert_string_equal(f.sns->entries[0].task_id, id1);
    const char *said = "a new task's stream record cannot be made a message";
    char record[2][160];
    snprintf(record[0], sizeof record[0],
             "\"task_id\":\"%s\",\"sequence_number\":\"203\",\"error\":\"its task has no data\"",
             id2);
    snprintf(record[1], sizeof record[1],
             "\"task_id\":\"%s\",\"sequence_number\":\"204\",\"error\":\"the record has no new "
             "image\"",
             id3);
    assert_int_equal(expect_logged(logged, said, record[0]), 2);
    expect_logged(logged, said, record[1]);
    expect_not_logged(logged, "idem#");
    expect_not_logged(logged, "\"201\"");
    free(logged);
    fixture_stop(&f);
}

/* What a case logs is caught at WARNING, and the threshold set back to the one it found. */
static void test_a_logged_invocation_keeps_the_threshold(void **state)
{
    (void)state;
    fixture f;
    fixture_start(&f);
    log_setup(LOG_INFO, NULL);
    role_result res;
    char *logged = invoke_role_logged(f.role, "{}", clock_unix_ms() + 5000, &res);
    log_level after = log_threshold();
    log_setup(LOG_ERROR, NULL);
    assert_int_equal(after, LOG_INFO);
    expect_logged(logged, "\"not a DynamoDB stream event", "\"error\":\"no Records array");
    free(logged);
    role_result_clear(&res);
    fixture_stop(&f);
}

static void test_failure_at_record_3_of_5(void **state)
{
    (void)state;
    fixture f;
    fixture_start(&f);
    f.sns->fail_task_ids = ",0190f3c2-7b1e-7c3a-9d2e-000000000003,";
    char *ev = inserts(5);
    role_result res;
    char *logged = invoke_role_logged(f.role, ev, clock_unix_ms() + 5000, &res);
    expect_failed_at(&res, 3);
    role_result_clear(&res);
    free(ev);
    /* the warning that the batch stopped there says why: SNS's error for record 3 */
    expect_logged(logged, "\"batch stopped at a failed record",
                  "\"records_left\":\"3\",\"error\":\"KMSThrottling: key busy\"}");
    free(logged);
    /*
     * One PublishBatch carried all five: records 1-2 are done; 4-5 went in the
     * same call (and go again with the retry from record 3).
     */
    assert_int_equal(f.sns->calls, 1);
    assert_int_equal(f.sns->n_entries, 5);
    for (int i = 0; i < 5; i++) {
        char id[37];
        task_id(i + 1, id);
        assert_string_equal(f.sns->entries[i].task_id, id); /* in record order */
        assert_int_equal(f.sns->entries[i].failed, i == 2);
    }
    fixture_stop(&f);
}

static void test_failure_stops_later_batches(void **state)
{
    (void)state;
    fixture f;
    fixture_start(&f);
    f.sns->fail_task_ids = ",0190f3c2-7b1e-7c3a-9d2e-000000000013,";
    char *ev = inserts(25);
    role_result res;
    invoke(&f, ev, &res);
    expect_failed_at(&res, 13);
    role_result_clear(&res);
    free(ev);
    assert_int_equal(f.sns->calls, 2); /* records 21-25 never sent */
    assert_int_equal(f.sns->n_entries, 20);
    for (int i = 0; i < 20; i++) {
        char id[37];
        task_id(i + 1, id);
        assert_string_equal(f.sns->entries[i].task_id, id);
    }
    span *s = NULL;
    size_t n = task_spans(&f, 12, &s, 2);
    assert_int_equal(s[1].status, SPAN_STATUS_UNSET);
    free_spans(s, n);
    n = task_spans(&f, 13, &s, 2);
    assert_int_equal(s[1].status, SPAN_STATUS_ERROR);
    free_spans(s, n);
    n = task_spans(&f, 14, &s, 2); /* sent in the failed call, and published */
    assert_int_equal(s[1].status, SPAN_STATUS_UNSET);
    free_spans(s, n);
    n = task_spans(&f, 21, &s, 0); /* never sent: no spans; the retry traces it */
    free_spans(s, n);
    fixture_stop(&f);
}

/* A message SNS refuses (SenderFault) can never go out: its record is passed over, logged, not
 * reported, lest the mapping retry it until the stream drops it (here its task is in no store,
 * so that the role cannot fail it either); the records never sent after its call are reported,
 * from the first. */
static void test_refused_message_is_passed_over(void **state)
{
    (void)state;
    fixture f;
    fixture_start(&f);
    f.sns->refuse_task_ids = ",0190f3c2-7b1e-7c3a-9d2e-000000000003,";
    char *ev = inserts(5);
    role_result res;
    invoke(&f, ev, &res);
    expect_response(&res, "{\"batchItemFailures\":[]}"); /* 4 and 5 went in the same call */
    role_result_clear(&res);
    free(ev);
    assert_int_equal(f.sns->calls, 1);
    span *s = NULL;
    size_t n = task_spans(&f, 3, &s, 3); /* process, publish, and the UPDATE that would fail it */
    for (size_t i = 0; i < n; i++)
        if (strcmp(s[i].name, "UPDATE tasks") == 0) /* no such task in the store */
            assert_string_equal(s[i].status_msg, "not found");
        else if (strncmp(s[i].name, "publish", 7) == 0)
            assert_int_equal(s[i].status, SPAN_STATUS_ERROR);
        else
            assert_int_equal(strncmp(s[i].name, "process", 7), 0);
    free_spans(s, n);

    f.sns->refuse_task_ids = ",0190f3c2-7b1e-7c3a-9d2e-000000000013,";
    ev = inserts(25);
    invoke(&f, ev, &res);
    expect_failed_at(&res, 21); /* 21-25 never sent; 13 is not tried again */
    role_result_clear(&res);
    free(ev);
    fixture_stop(&f);
}

/* The INSERT records of n new TASK1 tasks of f's store, records 1..n; their ids into ids. */
static char *stored_inserts(fixture *f, int n, char ids[][37])
{
    json_t *records = json_array();
    for (int i = 1; i <= n; i++) {
        store_new_task t = {.task_type = "TASK1", .data = "{}", .ttl = TASK_NULL_TIME};
        assert_int_equal(store_create_task(f->store, &t, time(NULL), ids[i - 1]), STORE_OK);
        char seq[32];
        seq_of(i, seq);
        json_array_append_new(records, stream_record("INSERT", ids[i - 1], "TASK1", i, TRACE, seq));
    }
    return event_text(records);
}

static void expect_status(fixture *f, const char *id, task_status want, const char *msg_part)
{
    task t = {0};
    assert_int_equal(store_get_task(f->store, id, &t), STORE_OK);
    assert_int_equal(t.status, want);
    if (!strstr(t.status_msg, msg_part))
        fail_msg("task %s: status_msg \"%s\" does not say \"%s\"", id, t.status_msg, msg_part);
    task_clear(&t);
}

/* The INSERTs of 3 new tasks (ids), the second of which SNS refuses (refuse: its list). */
/* Invoke f with event ev: no record may be reported failed. */
static void expect_all_published(fixture *f, const char *ev)
{
    role_result res;
    invoke(f, ev, &res);
    expect_response(&res, "{\"batchItemFailures\":[]}");
    role_result_clear(&res);
}

static char *second_refused(fixture *f, char ids[3][37], char refuse[48])
{
    char *ev = stored_inserts(f, 3, ids);
    snprintf(refuse, 48, ",%s,", ids[1]);
    f->sns->refuse_task_ids = refuse;
    return ev;
}

/* A message SNS refuses can never go out: its task fails with SNS's reason, which a client reads
 * (no longer CREATED for good), and its record is not reported; the others are published. */
static void test_refused_message_fails_its_task(void **state)
{
    (void)state;
    fixture f;
    fixture_start(&f);
    char ids[3][37], refuse[48];
    char *ev = second_refused(&f, ids, refuse);
    expect_all_published(&f, ev);
    expect_status(&f, ids[0], TASK_CREATED, "");
    expect_status(&f, ids[1], TASK_FAILED, "its message is refused (InvalidParameter: ");
    expect_status(&f, ids[2], TASK_CREATED, "");
    /* delivered again (the stream is at least once): the task is final, the record passed over */
    expect_all_published(&f, ev);
    expect_status(&f, ids[1], TASK_FAILED, "its message is refused");
    free(ev);
    fixture_stop(&f);
}

/* A task a client claimed (PATCH IN_PROGRESS) before its message was refused is the client's to
 * finish: it is not failed under it, and the record is passed over. */
static void test_refused_message_of_a_claimed_task_leaves_it(void **state)
{
    (void)state;
    fixture f;
    fixture_start(&f);
    char ids[3][37], refuse[48];
    char *ev = second_refused(&f, ids, refuse);
    store_update claim = {.id = ids[1], .status = TASK_IN_PROGRESS, .status_msg = "mine"};
    assert_int_equal(store_update_task(f.store, &claim, time(NULL), NULL), STORE_OK);
    expect_all_published(&f, ev);
    expect_status(&f, ids[1], TASK_IN_PROGRESS, "mine");
    free(ev);
    fixture_stop(&f);
}

/* For a store of nothing but a front: answer every write with the front's rc. */
static bool answer_all(store_front *f, store_write *w)
{
    w->rc = f->rc;
    return true;
}

/* Invoke f's event ev with a publish role over a store that fails every write with rc. */
static void invoke_failing(fixture *f, const char *ev, store_rc rc, role_result *res)
{
    store_front down;
    store_front_init(&down, NULL, answer_all, rc);
    char err[256] = "";
    role *r = publish_role_new(&f->cfg, f->client, TOPIC, &down.base, &f->tel, err, sizeof err);
    assert_non_null(r);
    role *own = f->role;
    f->role = r;
    invoke(f, ev, res);
    f->role = own;
    r->free(r);
    assert_int_equal(down.answered, 1);
}

/* A task whose message is refused cannot be failed when the store is in error: its record is
 * reported, and its retry fails it; one the store can never change (INVALID: an item at its size
 * limit) is passed over rather than hold the shard. */
static void test_refused_message_whose_task_cannot_fail_is_retried(void **state)
{
    (void)state;
    fixture f;
    fixture_start(&f);
    char ids[3][37], refuse[48];
    char *ev = second_refused(&f, ids, refuse);
    role_result res;
    invoke_failing(&f, ev, STORE_ERROR, &res);
    expect_failed_at(&res, 2);
    role_result_clear(&res);
    expect_status(&f, ids[1], TASK_CREATED, "");
    expect_all_published(&f, ev); /* the retry, from record 2, once the store can write */
    expect_status(&f, ids[1], TASK_FAILED, "its message is refused");
    free(ev);

    char more[3][37];
    ev = second_refused(&f, more, refuse);
    invoke_failing(&f, ev, STORE_INVALID, &res);
    expect_response(&res, "{\"batchItemFailures\":[]}");
    role_result_clear(&res);
    free(ev);
    fixture_stop(&f);
}

static void test_topic_not_found(void **state)
{
    (void)state;
    fixture f;
    fixture_start(&f);
    f.sns->status = 404;
    f.sns->error_body = "<ErrorResponse><Error><Type>Sender</Type><Code>NotFound</Code>"
                        "<Message>Topic does not exist</Message></Error></ErrorResponse>";
    char *ev = inserts(3);
    role_result res;
    invoke(&f, ev, &res);
    expect_failed_at(&res, 1);
    role_result_clear(&res);
    free(ev);
    assert_int_equal(f.sns->calls, 1);
    span *s = NULL;
    size_t n = task_spans(&f, 1, &s, 2);
    assert_int_equal(s[1].status, SPAN_STATUS_ERROR);
    assert_non_null(strstr(s[1].status_msg, "NotFound: Topic does not exist"));
    free_spans(s, n);
    fixture_stop(&f);
}

/* The invocation failed with type, its message whole up to a cut at its end, which says so:
 * whole (longer than the message) cut once, as errbuf_set() cuts ASCII text. */
static void expect_cut(const role_result *res, const char *type, const char *whole)
{
    assert_null(res->response);
    assert_string_equal(res->error_type, type);
    size_t len = strlen(res->error_message);
    assert_int_equal(len, sizeof res->error_message - 1);
    assert_true(strlen(whole) > len);
    assert_memory_equal(res->error_message, whole, len - 3);
    assert_string_equal(res->error_message + len - 3, "...");
}

static void test_failure_without_sequence_number(void **state)
{
    (void)state;
    fixture f;
    fixture_start(&f);
    char id1[37], id2[37];
    task_id(1, id1);
    task_id(2, id2);
    f.sns->fail_task_ids = ",0190f3c2-7b1e-7c3a-9d2e-000000000002,";
    json_t *records = json_array();
    json_array_append_new(records, stream_record("INSERT", id1, "TASK1", 1, NULL, NULL));
    json_array_append_new(records, stream_record("INSERT", id2, "TASK1", 2, NULL, NULL));
    char *ev = event_text(records);
    role_result res;
    invoke(&f, ev, &res);
    assert_null(res.response);
    assert_string_equal(res.error_type, "Publish.Failed");
    assert_string_equal(res.error_message, "record 1 has no SequenceNumber to report and was not "
                                           "published: KMSThrottling: key busy");
    role_result_clear(&res);
    free(ev);

    /* SNS's reason for refusing the whole call, in the record's, is more than the message holds:
     * it is cut at the message's end, and says so */
#define IAM_REFUSAL                                                                                \
    "User: arn:aws:sts::123456789012:assumed-role/taskd-dev-publish/taskd-dev-publish is not "     \
    "authorized to perform: SNS:PublishBatch on resource: arn:aws:sns:eu-west-1:123456789012:"     \
    "tasks because no identity-based policy allows the SNS:PublishBatch action"
    f.sns->fail_task_ids = NULL;
    f.sns->status = 403;
    f.sns->error_body = "<ErrorResponse><Error><Type>Sender</Type><Code>AuthorizationError</Code>"
                        "<Message>" IAM_REFUSAL "</Message></Error></ErrorResponse>";
    records = json_array();
    json_array_append_new(records, stream_record("INSERT", id1, "TASK1", 1, NULL, NULL));
    ev = event_text(records);
    invoke(&f, ev, &res);
    expect_cut(&res, "Publish.Failed",
               "record 0 has no SequenceNumber to report and was not published: "
               "AuthorizationError: " IAM_REFUSAL);
#undef IAM_REFUSAL
    role_result_clear(&res);
    free(ev);

    /* without SequenceNumbers but all published: a normal answer */
    f.sns->status = 200;
    records = json_array();
    json_array_append_new(records, stream_record("INSERT", id1, "TASK1", 1, NULL, NULL));
    ev = event_text(records);
    expect_all_published(&f, ev);
    free(ev);
    fixture_stop(&f);
}

static void test_not_a_stream_event(void **state)
{
    (void)state;
    fixture f;
    fixture_start(&f);
    static const char *const bad[] = {
        "not json", "[]", "{\"foo\":1}", "{\"Records\":{}}", "{\"Records\":null}", "\"Records\"",
        /* jansson's message quotes the control character it stopped at */
        "{\"Records\": [\n\x01]}", "{\"Records\": [\x1b[2J]}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        role_result res;
        invoke(&f, bad[i], &res);
        assert_null(res.response);
        assert_string_equal(res.error_type, "Runtime.InvalidEvent");
        assert_non_null(strstr(res.error_message, "not a DynamoDB stream event"));
        for (const char *c = res.error_message; *c; c++) /* one line, for logs and Lambda */
            assert_true((unsigned char)*c >= 0x20 && *c != 0x7f);
        role_result_clear(&res);
    }
    role_result res;
    invoke(&f, "{\"Records\":[]}", &res);
    expect_response(&res, "{\"batchItemFailures\":[]}");
    role_result_clear(&res);
    assert_int_equal(f.sns->calls, 0);
    assert_int_equal(f.sns->other_actions, 0);
    fixture_stop(&f);
}

/* Invoke f with event, which must be refused as no stream event, for the reason why. */
static void expect_refused(fixture *f, const char *event, const char *why)
{
    role_result res;
    invoke(f, event, &res);
    char want[300];
    snprintf(want, sizeof want, "not a DynamoDB stream event: %s", why);
    assert_null(res.response);
    assert_string_equal(res.error_type, "Runtime.InvalidEvent");
    assert_string_equal(res.error_message, want);
    role_result_clear(&res);
}

/* Events that have no Records array are refused with their keys, which say what came, and none of
 * their values (a request's Authorization header, a message's body have no place in a log) but
 * the source and ARN that Kafka's, Amazon MQ's and DocumentDB's name at their top: what follows
 * "not a DynamoDB stream event: " in the error. */
static void test_an_event_without_records_says_what_it_is(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"{\"version\":\"0\",\"id\":\"6a7e8feb-b491-4cf7-a9f1-bf3703467718\",\"detail-type\":"
         "\"Scheduled Event\",\"source\":\"aws.events\",\"account\":\"123456789012\",\"time\":"
         "\"2026-12-05T06:00:00Z\",\"region\":\"eu-west-1\",\"resources\":[\"arn:aws:events:eu-"
         "west-1:123456789012:rule/taskd-dev-sweep\"],\"detail\":{}}",
         "no Records array; its keys: version, id, detail-type, source, account, time, region, "
         "resources, detail"},
        {"{\"resource\":\"/tasks\",\"path\":\"/tasks\",\"httpMethod\":\"POST\",\"headers\":{"
         "\"Authorization\":\"Bearer s3cret\"},\"requestContext\":{\"apiId\":\"abc123\"},\"body\":"
         "\"{}\",\"isBase64Encoded\":false}",
         "no Records array; its keys: resource, path, httpMethod, headers, requestContext, body, "
         "isBase64Encoded"},
        /* Amazon MSK, whose keys come last, whole in the message; a Kafka cluster of one's own,
         * which has no ARN */
        {"{\"eventSource\":\"aws:kafka\",\"eventSourceArn\":\"arn:aws:kafka:eu-west-1:123456789012:"
         "cluster/tasks/751d2973-a626-431c-9d4e-d7975eb44dd7-2\",\"bootstrapServers\":\"b-1.tasks."
         "abc123.c2.kafka.eu-west-1.amazonaws.com:9098\",\"records\":{\"tasks-0\":[{\"topic\":"
         "\"tasks\",\"partition\":0,\"offset\":15,\"timestamp\":1796450400000,\"timestampType\":"
         "\"CREATE_TIME\",\"key\":\"a2V5\",\"value\":\"czNjcmV0\",\"headers\":[]}]}}",
         "no Records array; eventSource aws:kafka, from arn:aws:kafka:eu-west-1:123456789012:"
         "cluster/tasks/751d2973-a626-431c-9d4e-d7975eb44dd7-2; its keys: eventSource, "
         "eventSourceArn, bootstrapServers, records"},
        {"{\"eventSource\":\"SelfManagedKafka\",\"bootstrapServers\":\"kafka.example.com:9092\","
         "\"records\":{\"tasks-0\":[{\"topic\":\"tasks\",\"partition\":0,\"offset\":15,"
         "\"value\":\"czNjcmV0\"}]}}",
         "no Records array; eventSource SelfManagedKafka; its keys: eventSource, "
         "bootstrapServers, records"},
        {"{\"eventSource\":\"aws:mq\",\"eventSourceArn\":\"arn:aws:mq:eu-west-1:123456789012:"
         "broker:tasks:b-9bcfa592-423a-4942-879d-eb284b418fc8\",\"messages\":[{\"messageID\":"
         "\"ID:b-9bcfa592-423a-4942-879d-eb284b418fc8-1.mq.eu-west-1.amazonaws.com-37557-"
         "1234520418293-4:1:1:1:1\",\"messageType\":\"jms/text-message\",\"data\":\"czNjcmV0\","
         "\"destination\":{\"physicalName\":\"tasks\"}}]}",
         "no Records array; eventSource aws:mq, from arn:aws:mq:eu-west-1:123456789012:broker:"
         "tasks:b-9bcfa592-423a-4942-879d-eb284b418fc8; its keys: eventSource, eventSourceArn, "
         "messages"},
        {"{\"eventSourceArn\":\"arn:aws:rds:eu-west-1:123456789012:cluster:tasks\",\"events\":[{"
         "\"event\":{\"_id\":{\"_data\":\"0163eeb6e7000000090100000009000041e1\"},"
         "\"operationType\":\"insert\",\"ns\":{\"db\":\"tasks\",\"coll\":\"tasks\"},"
         "\"fullDocument\":{\"token\":\"s3cret\"}}}],\"eventSource\":\"aws:docdb\"}",
         "no Records array; eventSource aws:docdb, from arn:aws:rds:eu-west-1:123456789012:"
         "cluster:tasks; its keys: eventSourceArn, events, eventSource"},
        {"{\"Records\":{}}", "Records is not an array"},
        {"{}", "no Records array"},
    };
    fixture f;
    fixture_start(&f);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_refused(&f, cases[i][0], cases[i][1]);
    assert_int_equal(f.sns->calls, 0);
    fixture_stop(&f);
}

/* A reason longer than the room the error message leaves it (the ARN of a long topic's
 * subscription) is cut once, at the message's end, and ends "...": a name cut short shows it. */
static void test_a_long_reason_shows_its_cut(void **state)
{
    (void)state;
    fixture f;
    fixture_start(&f);
    char topic[257], arn[360], want[448];
    for (size_t i = 0; i < sizeof topic - 1; i++) /* the longest name SNS takes */
        topic[i] = "0123456789"[i % 10];
    topic[sizeof topic - 1] = '\0';
    snprintf(arn, sizeof arn,
             "arn:aws:sns:eu-west-1:123456789012:%s:2bcfbf39-05c3-41de-beaa-fcfcc21c8f55", topic);
    json_t *records = json_pack("[{s:s, s:s, s:s}]", "EventSource", "aws:sns", "EventVersion",
                                "1.0", "EventSubscriptionArn", arn);
    char *ev = event_text(records);
    snprintf(want, sizeof want,
             "not a DynamoDB stream event: record 0 has EventSource aws:sns, from %s", arn);
    role_result res;
    invoke(&f, ev, &res);
    expect_cut(&res, "Runtime.InvalidEvent", want); /* the one cut: "...", no more */
    role_result_clear(&res);
    free(ev);
    assert_int_equal(f.sns->calls, 0);
    fixture_stop(&f);
}

/*
 * Records that are not the stream's (an event source mapping or a trigger of another service
 * pointed here by mistake) are refused, alone and after a new task's INSERT, which is then not
 * published either: passed over and answered as done, they would be dropped unread (an SQS
 * queue's messages deleted). Only the stream's records (eventSource aws:dynamodb) and the recover
 * role's (taskd:store, its tests below) are read: every record of theirs names its source, so
 * one that names none is neither's. Each is what follows "record <i> " in the error.
 */
static void test_records_of_another_source_are_refused(void **state)
{
    (void)state;
    static const char *const foreign[][2] = {
        {"{\"messageId\":\"m1\",\"receiptHandle\":\"r1\",\"body\":\"{}\",\"attributes\":{"
         "\"ApproximateReceiveCount\":\"1\"},\"messageAttributes\":{},\"md5OfBody\":"
         "\"99914b932bd37a50b983c5e7c90ae93b\",\"eventSource\":\"aws:sqs\",\"eventSourceARN\":"
         "\"arn:aws:sqs:eu-west-1:123456789012:taskd-dev-publish-failures\",\"awsRegion\":"
         "\"eu-west-1\"}",
         "has eventSource aws:sqs, from "
         "arn:aws:sqs:eu-west-1:123456789012:taskd-dev-publish-failures"},
        /* SNS capitalises its names */
        {"{\"EventSource\":\"aws:sns\",\"EventVersion\":\"1.0\",\"EventSubscriptionArn\":\"arn:aws:"
         "sns:eu-west-1:123456789012:taskd-dev-tasks:2bcfbf39-05c3-41de-beaa-fcfcc21c8f55\","
         "\"Sns\":{\"Type\":\"Notification\",\"MessageId\":"
         "\"95df01b4-ee98-5cb9-9903-4c221d41eb5e\",\"TopicArn\":"
         "\"arn:aws:sns:eu-west-1:123456789012:taskd-dev-tasks\",\"Subject\":null,"
         "\"Message\":\"{}\",\"Timestamp\":\"2026-12-05T06:00:00.000Z\",\"MessageAttributes\":{}}}",
         "has EventSource aws:sns, from "
         "arn:aws:sns:eu-west-1:123456789012:taskd-dev-tasks:2bcfbf39-05c3-41de-beaa-fcfcc21c8f55"},
        {"{\"kinesis\":{\"kinesisSchemaVersion\":\"1.0\",\"partitionKey\":\"1\",\"sequenceNumber\":"
         "\"49590338271490256608559692538361571095921575989136588898\",\"data\":\"e30=\","
         "\"approximateArrivalTimestamp\":1545084650.987},\"eventSource\":\"aws:kinesis\","
         "\"eventVersion\":\"1.0\",\"eventID\":\"shardId-000000000006:4959033827149025660855969253"
         "8361571095921575989136588898\",\"eventName\":\"aws:kinesis:record\",\"awsRegion\":"
         "\"eu-west-1\",\"eventSourceARN\":\"arn:aws:kinesis:eu-west-1:123456789012:stream/"
         "tasks\"}",
         "has eventSource aws:kinesis, from arn:aws:kinesis:eu-west-1:123456789012:stream/tasks"},
        /* no eventSourceARN: the bucket's ARN, in its s3 part */
        {"{\"eventVersion\":\"2.1\",\"eventSource\":\"aws:s3\",\"awsRegion\":\"eu-west-1\","
         "\"eventTime\":\"2026-12-05T06:00:00.000Z\",\"eventName\":\"ObjectCreated:Put\",\"s3\":{"
         "\"s3SchemaVersion\":\"1.0\",\"bucket\":{\"name\":\"taskd-uploads\",\"arn\":"
         "\"arn:aws:s3:::taskd-uploads\"},\"object\":{\"key\":\"tasks.json\",\"size\":2}}}",
         "has eventSource aws:s3, from arn:aws:s3:::taskd-uploads"},
        /* a stream record without its eventSource, and CloudFront's, which names none */
        {"{\"eventID\":\"1\",\"eventName\":\"INSERT\",\"eventVersion\":\"1.1\",\"awsRegion\":"
         "\"eu-west-1\",\"dynamodb\":{\"Keys\":{\"id\":{\"S\":\"0190f3c2-7b1e-7c3a-9d2e-"
         "000000000009\"}},\"SequenceNumber\":\"109\"}}",
         "names no eventSource"},
        {"{\"cf\":{\"config\":{\"distributionId\":\"EDFDVBD6EXAMPLE\",\"eventType\":"
         "\"viewer-request\"},\"request\":{\"method\":\"GET\",\"uri\":\"/\",\"headers\":{}}}}",
         "names no eventSource"},
        {"\"not a record\"", "is not an object"},
    };
    fixture f;
    fixture_start(&f);
    char id[37], seq[32];
    task_id(1, id);
    seq_of(1, seq);
    for (size_t i = 0; i < sizeof foreign / sizeof foreign[0]; i++) {
        for (int at = 0; at <= 1; at++) {
            json_t *records = json_array();
            if (at == 1)
                json_array_append_new(records, stream_record("INSERT", id, "TASK1", 1, TRACE, seq));
            json_t *record = json_loads(foreign[i][0], JSON_DECODE_ANY, NULL);
            assert_non_null(record);
            json_array_append_new(records, record);
            char *ev = event_text(records), why[200];
            snprintf(why, sizeof why, "record %d %s", at, foreign[i][1]);
            expect_refused(&f, ev, why);
            free(ev);
        }
    }
    assert_int_equal(f.sns->calls, 0);
    fixture_stop(&f);
}

static void test_deadline_already_past(void **state)
{
    (void)state;
    fixture f;
    fixture_start(&f);
    char *ev = inserts(2);
    lambda_invocation inv = {0};
    inv.deadline_ms = clock_unix_ms() + PUBLISH_RESERVE_MS / 2; /* less than the reserve left */
    inv.event = ev;
    inv.event_len = strlen(ev);
    role_result res = {0};
    f.role->invoke(f.role, &inv, &res);
    expect_failed_at(&res, 1);
    role_result_clear(&res);
    free(ev);
    assert_int_equal(f.sns->calls, 0);
    fixture_stop(&f);
}

static void test_constructor_refusals(void **state)
{
    (void)state;
    fixture f;
    fixture_start(&f); /* for a client */
    config c;
    assert_true(config_defaults(&c));
    char err[256] = "";
    assert_null(publish_role_new(&c, f.client, "", f.store, NULL, err, sizeof err));
    assert_non_null(strstr(err, "TOPIC_ARN"));
    assert_null(publish_role_new(&c, NULL, TOPIC, f.store, NULL, err, sizeof err));
    assert_null(publish_role_new(&c, f.client, TOPIC, NULL, NULL, err, sizeof err));
    assert_non_null(strstr(err, "no store"));
    config_free(&c);

    assert_true(config_defaults(&c));
    assert_true(config_load_text(&c, "{\"stream_consumers\": []}", "test", err, sizeof err));
    err[0] = '\0';
    assert_null(publish_role_new(&c, f.client, TOPIC, f.store, NULL, err, sizeof err));
    assert_non_null(strstr(err, "action publish"));
    config_free(&c);
    fixture_stop(&f);
}

/* ---- the real stand-in (FAUXQS_ENDPOINT) ---- */

static aws_client *standin_client(const char *endpoint, aws_service service)
{
    setenv(service == AWS_SNS ? "AWS_ENDPOINT_URL_SNS" : "AWS_ENDPOINT_URL_SQS", endpoint, 1);
    char err[256] = "";
    aws_client *c = aws_client_new(service, err, sizeof err);
    if (!c)
        fail_msg("aws_client_new: %s", err);
    return c;
}

/* The role against fauxqs: a topic, a queue subscribed raw with {"TaskType": ["TASK1"]}. */
static void test_fauxqs_end_to_end(void **state)
{
    (void)state;
    const char *endpoint = getenv("FAUXQS_ENDPOINT");
    if (!endpoint || !*endpoint) {
        skip();
        return;
    }
    fixture f;
    fixture_start(&f); /* for the environment, the configuration and the tracer */
    aws_client *sns = standin_client(endpoint, AWS_SNS);
    aws_client *sqs = standin_client(endpoint, AWS_SQS);
    char topic_arn[256], queue_url[256];
    standin_task1_subscription(sns, sqs, topic_arn, queue_url);

    char err[256] = "";
    role *r = publish_role_new(&f.cfg, sns, topic_arn, f.store, &f.tel, err, sizeof err);
    if (!r)
        fail_msg("publish_role_new: %s", err);
    char id1[37], id2[37];
    task_id(1, id1);
    task_id(2, id2);
    json_t *records = json_array();
    json_array_append_new(records, stream_record("INSERT", id1, "TASK1", 1, TRACE, "201"));
    json_array_append_new(records, stream_record("INSERT", id2, "TASK2", 2, TRACE, "202"));
    json_array_append_new(records, stream_record("MODIFY", id1, "TASK1", 1, TRACE, "203"));
    char *ev = event_text(records);
    lambda_invocation inv = {
        .deadline_ms = clock_unix_ms() + 5000, .event = ev, .event_len = strlen(ev)};
    role_result res = {0};
    r->invoke(r, &inv, &res);
    expect_response(&res, "{\"batchItemFailures\":[]}");
    role_result_clear(&res);
    free(ev);

    json_t *got = standin_sqs_ok(sqs, "ReceiveMessage",
                                 json_pack("{s:s, s:i, s:[s], s:i}", "QueueUrl", queue_url,
                                           "MaxNumberOfMessages", 10, "MessageAttributeNames",
                                           "All", "WaitTimeSeconds", 1));
    json_t *msgs = json_object_get(got, "Messages");
    assert_int_equal(json_array_size(msgs), 1); /* TASK2 filtered out, MODIFY skipped */
    json_t *m = json_array_get(msgs, 0);
    json_t *body = json_loads(json_string_value(json_object_get(m, "Body")), 0, NULL);
    json_t *want = json_pack("{s:i, s:s}", "n", 1, "note", "a&b=c+d e\xc3\xa9\n");
    assert_true(json_equal(body, want));
    json_decref(want);
    json_decref(body);
    assert_string_equal(standin_message_attribute(m, "TaskId"), id1);
    assert_string_equal(standin_message_attribute(m, "TaskType"), "TASK1");
    span *s = NULL;
    size_t n = task_spans(&f, 1, &s, 2);
    char tp[56];
    trace_traceparent_of(&s[1], tp);
    assert_string_equal(standin_message_attribute(m, "traceparent"), tp);
    free_spans(s, n);
    json_decref(got);

    standin_task1_delete(sns, sqs, topic_arn, queue_url);
    r->free(r);
    aws_client_free(sqs);
    aws_client_free(sns);
    fixture_stop(&f);
}

/* ---- recover: the new tasks of records the stream dropped, published again ---- */

/* The ISO 8601 UTC text of Unix milliseconds, with them. */
static void iso_of(int64_t ms, char out[32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char s[24];
    strftime(s, sizeof s, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, 32, "%s.%03dZ", s, (int)(ms % 1000));
}

/* A publish-failures message's body, as Lambda writes it: a batch of a table's stream whose
 * records arrived from first_ms to last_ms, dropped for its age. Owned text. */
static char *batch_report(int64_t first_ms, int64_t last_ms)
{
    char first[32], last[32];
    iso_of(first_ms, first);
    iso_of(last_ms, last);
    json_t *body = json_pack(
        "{s:{s:s, s:s, s:s, s:i}, s:{s:i, s:s}, s:s, s:s, s:{s:s, s:s, s:s, s:s, s:s, s:i, s:s}}",
        "requestContext", "requestId", "c1a2b3c4-0000-4000-8000-000000000001", "functionArn",
        "arn:aws:lambda:eu-west-1:123456789012:function:taskd-dev-publish", "condition",
        "RecordAgeExceeded", "approximateInvokeCount", 1440, "responseContext", "statusCode", 200,
        "executedVersion", "$LATEST", "version", "1.0", "timestamp", last, "DDBStreamBatchInfo",
        "shardId", "shardId-00000001700000000000-12345678", "startSequenceNumber",
        "11100000000000000000001", "endSequenceNumber", "11100000000000000000009",
        "approximateArrivalOfFirstRecord", first, "approximateArrivalOfLastRecord", last,
        "batchSize", 9, "streamArn",
        "arn:aws:dynamodb:eu-west-1:123456789012:table/tasks/stream/2026-12-01T00:00:00.000");
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    assert_non_null(text);
    return text;
}

/* An SQS event of n publish-failures messages: message ids ids[i], bodies bodies[i]. */
static char *failures_event(const char *const *ids, char *const *bodies, size_t n)
{
    json_t *records = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(
            records, json_pack("{s:s, s:s, s:{s:s}, s:s, s:s}", "messageId", ids[i], "body",
                               bodies[i], "attributes", "ApproximateReceiveCount", "1",
                               "eventSource", "aws:sqs", "eventSourceARN",
                               "arn:aws:sqs:eu-west-1:123456789012:taskd-dev-publish-failures"));
    return event_text(records);
}

static role *recover_role_over(fixture *f, store *s)
{
    char err[256] = "";
    role *r = recover_role_new(&f->cfg, f->client, TOPIC, s, &f->tel, err, sizeof err);
    if (!r)
        fail_msg("recover_role_new: %s", err);
    assert_string_equal(r->name, "recover");
    return r;
}

/* Invoke r with one message per window (windows[2i], windows[2i+1]: Unix ms), ids m1, m2...;
 * the response must be want. With logged, what r logs (invoke_role_logged()) is put there. The
 * deadline is far: a new page needs PAGE_RESERVE_MS (3 s) left, and a page of a loaded sanitizer
 * build can take seconds (the time left has tests of its own). */
static void recover_windows(role *r, const int64_t *windows, size_t n, const char *want,
                            char **logged)
{
    static const char *const ids[] = {"m1", "m2", "m3"};
    char *bodies[3];
    assert_true(n <= 3);
    for (size_t i = 0; i < n; i++)
        bodies[i] = batch_report(windows[2 * i], windows[2 * i + 1]);
    char *ev = failures_event(ids, bodies, n);
    role_result res;
    int64_t deadline = clock_unix_ms() + 60000;
    if (logged)
        *logged = invoke_role_logged(r, ev, deadline, &res);
    else
        invoke_role(r, ev, deadline, &res);
    expect_response(&res, want);
    role_result_clear(&res);
    free(ev);
    for (size_t i = 0; i < n; i++)
        free(bodies[i]);
}

static void create(fixture *f, const char *type, const char *data, char id[37])
{
    store_new_task t = {.task_type = type, .data = data, .ttl = TASK_NULL_TIME, .trace = TRACE};
    assert_int_equal(store_create_task(f->store, &t, time(NULL), id), STORE_OK);
}

static const entry *entry_of(const fixture *f, const char *id)
{
    for (int i = 0; i < f->sns->n_entries; i++)
        if (strcmp(f->sns->entries[i].task_id, id) == 0)
            return &f->sns->entries[i];
    return NULL;
}

#define MINUTE 60000

/* The tasks made in a message's window and still CREATED are published again, as the stream
 * would have: their data, type and trace; a task claimed or finished since is not, and neither is
 * one made outside the window. */
static void test_recover_publishes_the_new_tasks_of_its_window(void **state)
{
    (void)state;
    fixture f;
    fixture_start(&f);
    role *r = recover_role_over(&f, f.store);
    int64_t t0 = clock_unix_ms();
    char a[37], b[37], claimed[37], failed[37];
    create(&f, "TASK1", "{\"n\":1}", a);
    create(&f, "TASK2", "{\"n\":2}", b);
    create(&f, "TASK1", "{}", claimed);
    create(&f, "TASK3", "{}", failed);
    store_update claim = {.id = claimed, .status = TASK_IN_PROGRESS, .status_msg = "mine"};
    assert_int_equal(store_update_task(f.store, &claim, time(NULL), NULL), STORE_OK);
    store_update reject = {.id = failed, .status = TASK_FAILED, .status_msg = "rejected"};
    assert_int_equal(store_update_task(f.store, &reject, time(NULL), NULL), STORE_OK);
    int64_t t1 = clock_unix_ms();

    /* windows before and after, beyond the margin */
    int64_t away[] = {t0 - 10 * MINUTE, t0 - 2 * MINUTE, t1 + 2 * MINUTE, t1 + 10 * MINUTE};
    recover_windows(r, away, 2, "{\"batchItemFailures\":[]}", NULL);
    assert_int_equal(f.sns->calls, 0);

    int64_t window[] = {t0, t1};
    recover_windows(r, window, 1, "{\"batchItemFailures\":[]}", NULL);
    assert_int_equal(f.sns->n_entries, 2);
    const entry *ea = entry_of(&f, a), *eb = entry_of(&f, b);
    assert_non_null(ea);
    assert_non_null(eb);
    assert_string_equal(ea->message, "{\"n\":1}");
    assert_string_equal(ea->task_type, "TASK1");
    assert_string_equal(eb->message, "{\"n\":2}");
    assert_string_equal(eb->task_type, "TASK2");
    /* the publish span's context, in the task's trace */
    assert_int_equal(strncmp(ea->traceparent, "00-" TRACE_ID "-", 36), 0);
    assert_string_not_equal(ea->traceparent, TRACE);
    assert_string_equal(f.sns->topic, TOPIC);
    assert_null(entry_of(&f, claimed));
    assert_null(entry_of(&f, failed));

    /* the window's edges are widened: a window that ends just before the tasks still has them */
    int64_t before[] = {t0 - 2 * RECOVER_MARGIN_MS / 3, t0 - RECOVER_MARGIN_MS / 2};
    recover_windows(r, before, 1, "{\"batchItemFailures\":[]}", NULL);
    assert_int_equal(f.sns->n_entries, 4);
    /* and one that begins after them, by as long as a create's write may take after its id */
    int64_t after[] = {t1 + RECOVER_CREATE_MS + RECOVER_MARGIN_MS / 2,
                       t1 + RECOVER_CREATE_MS + RECOVER_MARGIN_MS};
    recover_windows(r, after, 1, "{\"batchItemFailures\":[]}", NULL);
    assert_int_equal(f.sns->n_entries, 6);
    /* but not one that begins later than that (by more than its start's cut to the second) */
    int64_t later[] = {t1 + RECOVER_CREATE_MS + RECOVER_MARGIN_MS + 1001,
                       t1 + RECOVER_CREATE_MS + RECOVER_MARGIN_MS + 2000};
    recover_windows(r, later, 1, "{\"batchItemFailures\":[]}", NULL);
    assert_int_equal(f.sns->n_entries, 6);
    r->free(r);
    fixture_stop(&f);
}

/* A task whose stored data is not JSON (edited behind the store's back) has no record to make:
 * it is said and passed over, and the others are published; the message is not failed for it,
 * which no retry would mend. */
static void test_recover_passes_over_a_task_without_a_record(void **state)
{
    (void)state;
    fixture f;
    fixture_start(&f);
    role *r = recover_role_over(&f, f.store);
    int64_t t0 = clock_unix_ms();
    char bad[37], good[37], db[320];
    create(&f, "TASK1", "{}", bad);
    create(&f, "TASK1", "{}", good);
    snprintf(db, sizeof db, "%s/t.db", f.dir);
    assert_int_equal(test_sqlite_exec(db, "UPDATE tasks SET data = '{not json' WHERE id = ?1", bad),
                     1);
    int64_t window[] = {t0, clock_unix_ms()};
    char *logged;
    recover_windows(r, window, 1, "{\"batchItemFailures\":[]}", &logged);
    expect_logged(logged, "a stranded task's record cannot be made", bad);
    free(logged);
    assert_int_equal(f.sns->n_entries, 1);
    assert_non_null(entry_of(&f, good));
    r->free(r);
    fixture_stop(&f);
}

/* A window of more tasks than a page: every one published, in pages of RECOVER_BATCH. */
static void test_recover_pages_through_a_window(void **state)
{
    (void)state;
    fixture f;
    fixture_start(&f);
    role *r = recover_role_over(&f, f.store);
    enum { N = 2 * RECOVER_BATCH + 30 };
    assert_true(N <= MAX_ENTRIES);
    static char ids[N][37];
    int64_t t0 = clock_unix_ms();
    for (int i = 0; i < N; i++)
        create(&f, "TASK1", "{}", ids[i]);
    int64_t window[] = {t0, clock_unix_ms()};
    recover_windows(r, window, 1, "{\"batchItemFailures\":[]}", NULL);
    assert_int_equal(f.sns->n_entries, N);
    for (int i = 0; i < N; i++)
        assert_non_null(entry_of(&f, ids[i]));
    assert_int_equal(f.sns->calls, N / 10); /* 10 a PublishBatch call, 100 a page */
    r->free(r);
    fixture_stop(&f);
}

/* The types of a window take their pages in turn: a type with more tasks still CREATED than a
 * page (as one no subscription takes keeps them, listed again at each delivery of its message)
 * has its first page, then the next type its own, before its second. Had it all its pages first,
 * a type after it would wait for them, and an invocation's time could run out before its first
 * page at every delivery of the message, its tasks never published again. */
static void test_recover_takes_the_types_in_turn(void **state)
{
    (void)state;
    fixture f;
    fixture_start(&f);
    role *r = recover_role_over(&f, f.store);
    enum { N = RECOVER_BATCH + 5 };
    assert_true(N + 1 <= MAX_ENTRIES);
    static char ids[N][37];
    char other[37];
    int64_t t0 = clock_unix_ms();
    for (int i = 0; i < N; i++)
        create(&f, "TASK1", "{}", ids[i]);
    create(&f, "TASK2", "{}", other);
    int64_t window[] = {t0, clock_unix_ms()};
    recover_windows(r, window, 1, "{\"batchItemFailures\":[]}", NULL);
    assert_int_equal(f.sns->n_entries, N + 1);
    int at = -1;
    for (int i = 0; i < f.sns->n_entries; i++)
        if (strcmp(f.sns->entries[i].task_id, other) == 0)
            at = i;
    /* after TASK1's first page, before its second */
    assert_int_equal(at, RECOVER_BATCH);
    for (int i = 0; i < N; i++)
        assert_non_null(entry_of(&f, ids[i]));
    r->free(r);
    fixture_stop(&f);
}

/* A message whose tasks were not all published is reported, and only that one: SQS gives it
 * again. So is one the invocation's deadline or the store cut short. */
static void test_recover_reports_what_it_did_not_publish(void **state)
{
    (void)state;
    fixture f;
    fixture_start(&f);
    role *r = recover_role_over(&f, f.store);
    int64_t t0 = clock_unix_ms();
    char a[37], fail[48];
    create(&f, "TASK1", "{}", a);
    int64_t t1 = clock_unix_ms();
    snprintf(fail, sizeof fail, ",%s,", a);
    f.sns->fail_task_ids = fail;
    int64_t windows[] = {t0 - 10 * MINUTE, t0 - 5 * MINUTE, t0, t1};
    recover_windows(r, windows, 2, "{\"batchItemFailures\":[{\"itemIdentifier\":\"m2\"}]}", NULL);
    assert_int_equal(f.sns->calls, 1);
    f.sns->fail_task_ids = NULL;
    recover_windows(r, windows + 2, 1, "{\"batchItemFailures\":[]}", NULL);
    assert_int_equal(f.sns->calls, 2);

    /* no time left for a page: said, with the type it stopped at and the time that was left */
    char *body = batch_report(t0, t1);
    static const char *const m1[] = {"m1"};
    char *ev = failures_event(m1, &body, 1);
    role_result res;
    char *logged = invoke_role_logged(r, ev, clock_unix_ms() + 1000, &res);
    expect_response(&res, "{\"batchItemFailures\":[{\"itemIdentifier\":\"m1\"}]}");
    role_result_clear(&res);
    assert_int_equal(f.sns->calls, 2);
    expect_logged(logged,
                  "\"too little time left in the invocation for another page of stranded tasks; "
                  "the message comes back\"",
                  "\"task_type\":\"TASK1\",\"time_left_ms\":\"");
    free(logged);
    r->free(r);

    /* a store that cannot list */
    store_front down;
    store_front_init(&down, NULL, answer_all, STORE_ERROR);
    r = recover_role_over(&f, &down.base);
    invoke_role(r, ev, clock_unix_ms() + 5000, &res);
    expect_response(&res, "{\"batchItemFailures\":[{\"itemIdentifier\":\"m1\"}]}");
    role_result_clear(&res);
    assert_int_equal(f.sns->calls, 2);
    r->free(r);
    free(ev);
    free(body);
    fixture_stop(&f);
}

/* A listing the AWS calls' deadline cuts, as the DynamoDB store's Query is cut: it lasts until
 * that deadline has passed and is STORE_BUSY, as aws_http's AWS_ERR_TIMEOUT is in that store. */
static store_rc list_until_the_deadline(store *s, const store_list_query *q, store_page *out)
{
    (void)s;
    (void)q;
    (void)out;
    while (clock_unix_ms() <= aws_deadline()) {
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
    return STORE_BUSY;
}

static bool answer_none(store_front *f, store_write *w)
{
    (void)f;
    (void)w;
    return false;
}

/* A page the AWS calls' deadline cut is said as such, the message coming back, where it was said
 * as a listing that failed, as if the store had refused it. */
static void test_recover_says_a_page_the_deadline_cut(void **state)
{
    (void)state;
    fixture f;
    fixture_start(&f);
    store_front cut;
    store_front_init(&cut, f.store, answer_none, STORE_OK);
    store_ops ops = *cut.base.ops;
    ops.list_tasks = list_until_the_deadline;
    cut.base.ops = &ops;
    role *r = recover_role_over(&f, &cut.base);
    int64_t t0 = clock_unix_ms();
    char *body = batch_report(t0 - MINUTE, t0);
    static const char *const m1[] = {"m1"};
    char *ev = failures_event(m1, &body, 1);
    role_result res;
    aws_set_deadline(clock_unix_ms() + 200); /* as bootstrap sets it, before the invocation's */
    char *logged = invoke_role_logged(r, ev, clock_unix_ms() + 60000, &res);
    aws_set_deadline(0);
    expect_response(&res, "{\"batchItemFailures\":[{\"itemIdentifier\":\"m1\"}]}");
    role_result_clear(&res);
    expect_logged(logged,
                  "\"the invocation's time ran out listing stranded tasks; the message comes "
                  "back\"",
                  "\"task_type\":\"TASK1\",\"error\":\"busy\"");
    expect_not_logged(logged, "listing stranded tasks failed");
    free(logged);
    assert_int_equal(f.sns->calls, 0);
    r->free(r);
    free(ev);
    free(body);
    fixture_stop(&f);
}

/* What is not a report of a dropped batch is dropped, said in the log, never retried; an event
 * that is not an SQS event, or a record without a messageId, fails the invocation. */
static void test_recover_drops_what_it_cannot_read(void **state)
{
    (void)state;
    fixture f;
    fixture_start(&f);
    role *r = recover_role_over(&f, f.store);
    char a[37];
    create(&f, "TASK1", "{}", a);
    static const char *const bodies[] = {
        "not json",
        "{}",
        "{\"DDBStreamBatchInfo\":[]}",
        "{\"DDBStreamBatchInfo\":{\"approximateArrivalOfFirstRecord\":\"yesterday\","
        "\"approximateArrivalOfLastRecord\":\"2026-12-05T06:00:00Z\"}}",
        "{\"DDBStreamBatchInfo\":{\"approximateArrivalOfFirstRecord\":\"2026-12-05T06:00:01Z\","
        "\"approximateArrivalOfLastRecord\":\"2026-12-05T06:00:00Z\"}}",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        static const char *const m1[] = {"m1"};
        char *body = (char *)bodies[i];
        char *ev = failures_event(m1, &body, 1);
        role_result res;
        char *logged = invoke_role_logged(r, ev, clock_unix_ms() + 5000, &res);
        expect_response(&res, "{\"batchItemFailures\":[]}");
        role_result_clear(&res);
        free(ev);
        expect_logged(logged,
                      "\"a publish-failures message that reports no stream batch; dropped\"",
                      "\"message_id\":\"m1\"");
        free(logged);
    }
    static const char *const events[] = {
        "not json",
        "[]",
        "{\"Records\":{}}",
        "{\"Records\":[{\"body\":\"{}\"}]}", /* no messageId */
        "{\"Records\":[{\"messageId\":\"\",\"body\":\"{}\"}]}",
    };
    for (size_t i = 0; i < sizeof events / sizeof events[0]; i++) {
        role_result res;
        invoke_role(r, events[i], clock_unix_ms() + 5000, &res);
        assert_null(res.response);
        assert_string_equal(res.error_type, "Runtime.InvalidEvent");
        role_result_clear(&res);
    }
    assert_int_equal(f.sns->calls, 0);
    r->free(r);
    fixture_stop(&f);
}

static void test_recover_window_times(void **state)
{
    (void)state;
    static const struct {
        const char *first, *last;
        int64_t first_ms, last_ms; /* -1: unreadable */
    } cases[] = {
        {"2026-12-05T06:00:00Z", "2026-12-05T06:00:00Z", 1796450400000, 1796450400000},
        {"2026-12-05T06:00:00.5Z", "2026-12-05T06:00:01.123456Z", 1796450400500, 1796450401123},
        {"2026-12-05T06:00:00.835Z", "2026-12-06T00:00:00Z", 1796450400835, 1796515200000},
        {"2026-12-05T06:00:00", "2026-12-05T06:00:00Z", -1, -1},       /* no zone */
        {"2026-12-05T06:00:00+00:00", "2026-12-05T06:00:00Z", -1, -1}, /* an offset */
        {"2026-12-05 06:00:00Z", "2026-12-05T06:00:00Z", -1, -1},
        {"2026-13-05T06:00:00Z", "2026-12-05T06:00:00Z", -1, -1},
        {"2026-12-05T06:00:00.Z", "2026-12-05T06:00:00Z", -1, -1},
        {"+026-12-05T06:00:00Z", "2026-12-05T06:00:00Z", -1, -1},
        {"1969-12-31T23:59:59Z", "2026-12-05T06:00:00Z", -1, -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *body =
            json_pack("{s:{s:s, s:s}}", "DDBStreamBatchInfo", "approximateArrivalOfFirstRecord",
                      cases[i].first, "approximateArrivalOfLastRecord", cases[i].last);
        int64_t first = 0, last = 0;
        char why[200] = "";
        bool read = recover_window(body, &first, &last, why, sizeof why);
        json_decref(body);
        if (cases[i].first_ms < 0) {
            assert_false(read);
            assert_true(why[0] != '\0');
        } else {
            assert_true(read);
            assert_int_equal(first, cases[i].first_ms);
            assert_int_equal(last, cases[i].last_ms);
        }
    }
    int64_t first, last;
    char why[200];
    assert_false(recover_window(NULL, &first, &last, why, sizeof why));
}

int main(void)
{
    log_setup(LOG_ERROR, "taskd-test");
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_insert_published),
        cmocka_unit_test(test_spans_in_the_task_trace),
        cmocka_unit_test(test_skipped_records),
        cmocka_unit_test(test_unreadable_insert_is_said),
        cmocka_unit_test(test_a_logged_invocation_keeps_the_threshold),
        cmocka_unit_test(test_failure_at_record_3_of_5),
        cmocka_unit_test(test_failure_stops_later_batches),
        cmocka_unit_test(test_refused_message_is_passed_over),
        cmocka_unit_test(test_refused_message_fails_its_task),
        cmocka_unit_test(test_refused_message_of_a_claimed_task_leaves_it),
        cmocka_unit_test(test_refused_message_whose_task_cannot_fail_is_retried),
        cmocka_unit_test(test_topic_not_found),
        cmocka_unit_test(test_failure_without_sequence_number),
        cmocka_unit_test(test_not_a_stream_event),
        cmocka_unit_test(test_an_event_without_records_says_what_it_is),
        cmocka_unit_test(test_a_long_reason_shows_its_cut),
        cmocka_unit_test(test_records_of_another_source_are_refused),
        cmocka_unit_test(test_deadline_already_past),
        cmocka_unit_test(test_constructor_refusals),
        cmocka_unit_test(test_fauxqs_end_to_end),
        cmocka_unit_test(test_recover_publishes_the_new_tasks_of_its_window),
        cmocka_unit_test(test_recover_pages_through_a_window),
        cmocka_unit_test(test_recover_takes_the_types_in_turn),
        cmocka_unit_test(test_recover_passes_over_a_task_without_a_record),
        cmocka_unit_test(test_recover_reports_what_it_did_not_publish),
        cmocka_unit_test(test_recover_says_a_page_the_deadline_cut),
        cmocka_unit_test(test_recover_drops_what_it_cannot_read),
        cmocka_unit_test(test_recover_window_times),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return failed;
}
