/*
 * Unit tests for pipeline/publisher: the topic message made from an INSERT change record (body =
 * the task's data as plain JSON, attributes TaskId / TaskType / traceparent), the records that
 * make no message, and topic_route over the default configuration and over custom subscriptions
 * (prefix, anything-but, body scope, no policy, a queue subscribed twice, an unknown queue).
 *
 * And the entry point both publishing consumers call: publisher_begin over the consumer's filter
 * patterns (passing, failing, INSERT against MODIFY and REMOVE); the spans it opens (names,
 * kinds, messaging attributes — the publish span's messaging.system the configured topic's —,
 * parent = the record's stored traceparent or a new trace, the message's traceparent = the
 * publish span); publisher_route (queues by filter policy, named on
 * the publish span); publisher_finish handing both spans to a tracer with a local store, with
 * and without an error.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/config.h"
#include "core/filter.h"
#include "pipeline/publisher.h"
#include "trace/trace.h"
#include "util/log.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ID1    "0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e5f"
#define TRACE  "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
#define TRACE2 "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

/* The data {"n":42,"x":1.5,"s":"hi","b":true,"z":null,"l":[1,"two"],"o":{"k":"v"}} typed. */
#define DATA_M                                                                                     \
    "{\"M\":{\"n\":{\"N\":\"42\"},\"x\":{\"N\":\"1.5\"},\"s\":{\"S\":\"hi\"},"                     \
    "\"b\":{\"BOOL\":true},\"z\":{\"NULL\":true},"                                                 \
    "\"l\":{\"L\":[{\"N\":\"1\"},{\"S\":\"two\"}]},\"o\":{\"M\":{\"k\":{\"S\":\"v\"}}}}}"
#define DATA_PLAIN                                                                                 \
    "{\"n\":42,\"x\":1.5,\"s\":\"hi\",\"b\":true,\"z\":null,"                                      \
    "\"l\":[1,\"two\"],\"o\":{\"k\":\"v\"}}"

/* ---- helpers ---- */

/* A change record: event, and a NewImage with the given typed attributes (NULL to leave out). */
static json_t *record(const char *event, const char *id, const char *type, const char *data_m,
                      const char *trace)
{
    json_t *img = json_object();
    if (id)
        json_object_set_new(img, "id", json_pack("{s:s}", "S", id));
    if (type)
        json_object_set_new(img, "task_type", json_pack("{s:s}", "S", type));
    json_object_set_new(img, "status", json_pack("{s:s}", "S", "CREATED"));
    json_object_set_new(img, "status_msg", json_pack("{s:s}", "S", ""));
    json_object_set_new(img, "created_time", json_pack("{s:s}", "N", "1700000000"));
    if (data_m) {
        json_t *d = json_loads(data_m, 0, NULL);
        assert_non_null(d);
        json_object_set_new(img, "data", d);
    }
    if (trace)
        json_object_set_new(img, "trace", json_pack("{s:s}", "S", trace));
    json_t *rec =
        json_pack("{s:s, s:s, s:{s:{s:{s:s}}, s:s, s:s}}", "eventName", event, "eventSource",
                  "taskd:store", "dynamodb", "Keys", "id", "S", id ? id : "", "SequenceNumber", "1",
                  "StreamViewType", "NEW_AND_OLD_IMAGES");
    assert_non_null(rec);
    json_object_set_new(json_object_get(rec, "dynamodb"), "NewImage", img);
    return rec;
}

/* The String attribute name of the attributes JSON, or NULL. */
static const char *attr_value(json_t *attrs, const char *name)
{
    json_t *a = json_object_get(attrs, name);
    const char *type = json_string_value(json_object_get(a, "Type"));
    assert_true(a == NULL || (type && strcmp(type, "String") == 0));
    return json_string_value(json_object_get(a, "Value"));
}

/* A hand-made message for routing. */
static publish_message message(const char *type, const char *body, const char *trace)
{
    publish_message m;
    memset(&m, 0, sizeof m);
    snprintf(m.task_id, sizeof m.task_id, "%s", ID1);
    snprintf(m.task_type, sizeof m.task_type, "%s", type);
    m.body = strdup(body);
    m.attributes = strdup("{}");
    m.trace = trace ? strdup(trace) : NULL;
    return m;
}

/* ---- publisher_message ---- */

static void test_insert_makes_message(void **state)
{
    (void)state;
    json_t *rec = record("INSERT", ID1, "TASK1", DATA_M, NULL);
    publish_message m;
    assert_true(publisher_message(rec, &m));
    assert_string_equal(m.task_id, ID1);
    assert_string_equal(m.task_type, "TASK1");
    assert_null(m.trace);

    /* the body is the data as plain JSON, not the typed form */
    json_error_t je;
    json_t *body = json_loads(m.body, 0, &je);
    assert_non_null(body);
    json_t *want = json_loads(DATA_PLAIN, 0, NULL);
    assert_non_null(want);
    if (!json_equal(body, want))
        print_error("body %s, want %s\n", m.body, DATA_PLAIN);
    assert_true(json_equal(body, want));
    assert_true(json_is_integer(json_object_get(body, "n")));
    assert_null(strstr(m.body, "\"M\""));
    json_decref(want);
    json_decref(body);

    /* attributes: TaskId and TaskType as String attributes, nothing else */
    json_t *attrs = json_loads(m.attributes, 0, &je);
    assert_non_null(attrs);
    assert_int_equal(json_object_size(attrs), 2);
    assert_string_equal(attr_value(attrs, "TaskId"), ID1);
    assert_string_equal(attr_value(attrs, "TaskType"), "TASK1");
    assert_null(attr_value(attrs, "traceparent"));
    json_decref(attrs);

    publish_message_free(&m);
    assert_null(m.body);
    assert_null(m.attributes);
    publish_message_free(&m); /* twice is harmless */
    json_decref(rec);
}

/* A record's tracestate goes into the message beside its traceparent: a String attribute of
 * its own (four of SNS's ten), and only with the traceparent it came with. */
static void test_insert_with_tracestate(void **state)
{
    (void)state;
    const char *ts = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE";
    json_t *rec = record("INSERT", ID1, "TASK2", "{\"M\":{}}", TRACE);
    json_object_set_new(json_object_get(json_object_get(rec, "dynamodb"), "NewImage"), "tracestate",
                        json_pack("{s:s}", "S", ts));
    publish_message m;
    assert_true(publisher_message(rec, &m));
    assert_non_null(m.tracestate);
    assert_string_equal(m.tracestate, ts);
    json_t *attrs = json_loads(m.attributes, 0, NULL);
    assert_non_null(attrs);
    assert_int_equal(json_object_size(attrs), 4);
    assert_string_equal(attr_value(attrs, "traceparent"), TRACE);
    assert_string_equal(attr_value(attrs, "tracestate"), ts);
    json_decref(attrs);
    /* a new traceparent (the publish span's) keeps the trace's tracestate */
    assert_true(publish_message_set_trace(&m, TRACE2));
    attrs = json_loads(m.attributes, 0, NULL);
    assert_string_equal(attr_value(attrs, "tracestate"), ts);
    json_decref(attrs);
    publish_message_free(&m);
    assert_null(m.tracestate);
    json_decref(rec);

    /* without a traceparent, a tracestate is not sent */
    rec = record("INSERT", ID1, "TASK2", "{\"M\":{}}", NULL);
    json_object_set_new(json_object_get(json_object_get(rec, "dynamodb"), "NewImage"), "tracestate",
                        json_pack("{s:s}", "S", ts));
    assert_true(publisher_message(rec, &m));
    assert_null(m.tracestate);
    attrs = json_loads(m.attributes, 0, NULL);
    assert_int_equal(json_object_size(attrs), 2);
    json_decref(attrs);
    publish_message_free(&m);
    json_decref(rec);
}

static void test_insert_with_trace(void **state)
{
    (void)state;
    json_t *rec = record("INSERT", ID1, "TASK2", "{\"M\":{}}", TRACE);
    publish_message m;
    assert_true(publisher_message(rec, &m));
    assert_string_equal(m.task_type, "TASK2");
    assert_string_equal(m.body, "{}");
    assert_non_null(m.trace);
    assert_string_equal(m.trace, TRACE);
    json_t *attrs = json_loads(m.attributes, 0, NULL);
    assert_non_null(attrs);
    assert_int_equal(json_object_size(attrs), 3);
    assert_string_equal(attr_value(attrs, "TaskId"), ID1);
    assert_string_equal(attr_value(attrs, "TaskType"), "TASK2");
    assert_string_equal(attr_value(attrs, "traceparent"), TRACE);
    json_decref(attrs);
    /* a new trace goes into attributes built before */
    assert_true(publish_message_set_trace(&m, TRACE2));
    attrs = json_loads(m.attributes, 0, NULL);
    assert_non_null(attrs);
    assert_string_equal(attr_value(attrs, "traceparent"), TRACE2);
    json_decref(attrs);
    publish_message_free(&m);
    assert_null(m.trace);
    json_decref(rec);
}

static void test_special_characters_survive(void **state)
{
    (void)state;
    /* a type name with '.', '-', '_' and data strings that need escaping */
    json_t *rec =
        record("INSERT", ID1, "my.type-1_x",
               "{\"M\":{\"q\":{\"S\":\"a \\\"quoted\\\" \\\\ line\\nnext \\u00e9\"}}}", NULL);
    publish_message m;
    assert_true(publisher_message(rec, &m));
    json_t *body = json_loads(m.body, 0, NULL);
    assert_non_null(body);
    assert_string_equal(json_string_value(json_object_get(body, "q")),
                        "a \"quoted\" \\ line\nnext \xc3\xa9");
    json_decref(body);
    json_t *attrs = json_loads(m.attributes, 0, NULL);
    assert_non_null(attrs);
    assert_string_equal(attr_value(attrs, "TaskType"), "my.type-1_x");
    json_decref(attrs);
    publish_message_free(&m);
    json_decref(rec);
}

/* True when every character of the UTF-8 text s is one XML 1.0 allows (SQS's rule for a body). */
static bool xml_allowed(const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    while (*u) {
        uint32_t c;
        size_t k = *u < 0x80 ? 1 : *u < 0xe0 ? 2 : *u < 0xf0 ? 3 : 4;
        c = k == 1 ? *u : (uint32_t)(*u & (0x7f >> k));
        for (size_t i = 1; i < k; i++)
            c = c << 6 | (u[i] & 0x3f);
        if (!(c == 0x9 || c == 0xa || c == 0xd || (c >= 0x20 && c <= 0xd7ff) ||
              (c >= 0xe000 && c <= 0xfffd) || c >= 0x10000))
            return false;
        u += k;
    }
    return true;
}

/* Data holding characters an SQS body may not: the body escapes them and reads back the same. */
static void test_body_holds_only_what_sqs_carries(void **state)
{
    (void)state;
    /* U+FFFE, U+FFFF, a control character, U+FFFD (which SQS takes) */
    json_t *rec =
        record("INSERT", ID1, "TASK1",
               "{\"M\":{\"q\":{\"S\":\"a\357\277\276b\357\277\277c\\u0001d\357\277\275\"}}}", NULL);
    publish_message m;
    assert_true(publisher_message(rec, &m));
    assert_true(xml_allowed(m.body));
    json_t *body = json_loads(m.body, 0, NULL);
    assert_non_null(body);
    assert_string_equal(json_string_value(json_object_get(body, "q")),
                        "a\357\277\276b\357\277\277c\001d\357\277\275");
    json_decref(body);
    publish_message_free(&m);
    json_decref(rec);
}

/* A record that makes no message: false, and nothing left to free. */
static void expect_no_message(json_t *rec, const char *what)
{
    publish_message m;
    memset(&m, 0xa5, sizeof m);
    bool got = publisher_message(rec, &m);
    if (got)
        print_error("%s: made a message\n", what);
    assert_false(got);
    assert_null(m.body);
    assert_null(m.attributes);
    assert_null(m.trace);
    json_decref(rec);
}

static void test_non_insert_makes_nothing(void **state)
{
    (void)state;
    expect_no_message(record("MODIFY", ID1, "TASK1", DATA_M, NULL), "MODIFY");
    /* REMOVE: only an OldImage */
    json_t *rm = record("REMOVE", ID1, "TASK1", DATA_M, NULL);
    json_t *ddb = json_object_get(rm, "dynamodb");
    json_object_set(ddb, "OldImage", json_object_get(ddb, "NewImage"));
    json_object_del(ddb, "NewImage");
    expect_no_message(rm, "REMOVE");
    /* REMOVE even with a NewImage-like shape is not an INSERT */
    expect_no_message(record("REMOVE", ID1, "TASK1", DATA_M, NULL), "REMOVE with NewImage");
    expect_no_message(record("insert", ID1, "TASK1", DATA_M, NULL), "lower-case insert");
    json_t *no_event = record("INSERT", ID1, "TASK1", DATA_M, NULL);
    json_object_del(no_event, "eventName");
    expect_no_message(no_event, "no eventName");
}

static void test_incomplete_insert_makes_nothing(void **state)
{
    (void)state;
    expect_no_message(record("INSERT", ID1, "TASK1", NULL, NULL), "missing data");
    expect_no_message(record("INSERT", NULL, "TASK1", DATA_M, NULL), "missing id");
    expect_no_message(record("INSERT", ID1, NULL, DATA_M, NULL), "missing task_type");
    expect_no_message(record("INSERT", "0190f3c2", "TASK1", DATA_M, NULL), "short id");
    expect_no_message(record("INSERT", ID1, "TASK1", "{\"S\":\"{}\"}", NULL), "data not M");
    expect_no_message(record("INSERT", ID1, "TASK1", "{\"L\":[]}", NULL), "data a list");
    expect_no_message(record("INSERT", ID1, "TASK1", "{\"M\":{\"n\":{\"N\":\"x\"}}}", NULL),
                      "data with a bad number");
    char long_type[TASK_TYPE_MAX + 2];
    memset(long_type, 'T', sizeof long_type - 1);
    long_type[sizeof long_type - 1] = '\0';
    expect_no_message(record("INSERT", ID1, long_type, DATA_M, NULL), "task_type too long");
    json_t *no_image = record("INSERT", ID1, "TASK1", DATA_M, NULL);
    json_object_del(json_object_get(no_image, "dynamodb"), "NewImage");
    expect_no_message(no_image, "no NewImage");
    /* id typed as a number rather than a string */
    json_t *num_id = record("INSERT", ID1, "TASK1", DATA_M, NULL);
    json_t *img = json_object_get(json_object_get(num_id, "dynamodb"), "NewImage");
    json_object_set_new(img, "id", json_pack("{s:s}", "N", "1"));
    expect_no_message(num_id, "numeric id");
}

/* ---- topic_route ---- */

static void test_route_defaults(void **state)
{
    (void)state;
    config c;
    assert_true(config_defaults(&c));
    const queue_config *out[8];

    json_t *rec = record("INSERT", ID1, "TASK1", DATA_M, NULL);
    publish_message m;
    assert_true(publisher_message(rec, &m));
    size_t n;
    assert_true(topic_route(&c, &m, out, 8, &n));
    assert_int_equal(n, 1);
    assert_string_equal(out[0]->name, "task1");
    assert_ptr_equal(out[0], config_queue(&c, "task1"));
    assert_true(topic_route(&c, &m, out, 0, &n));
    assert_int_equal(n, 0);
    publish_message_free(&m);
    json_decref(rec);

    for (int i = 2; i <= 3; i++) {
        char type[8];
        snprintf(type, sizeof type, "TASK%d", i);
        rec = record("INSERT", ID1, type, DATA_M, NULL);
        assert_true(publisher_message(rec, &m));
        assert_true(topic_route(&c, &m, out, 8, &n));
        assert_int_equal(n, 0);
        publish_message_free(&m);
        json_decref(rec);
    }
    config_free(&c);
}

/* Add a queue with SQS defaults. */
static void add_queue(config *c, const char *name)
{
    queue_config *q = &c->queues[c->n_queues++];
    memset(q, 0, sizeof *q);
    snprintf(q->name, sizeof q->name, "%s", name);
    q->visibility_timeout = 30;
    q->retention = 3600;
}

/* Subscribe queue with a policy (NULL policy text: deliver everything). */
static void subscribe(config *c, const char *queue, const char *policy, filter_scope scope)
{
    subscription_config *s = &c->subscriptions[c->n_subscriptions++];
    memset(s, 0, sizeof *s);
    snprintf(s->queue, sizeof s->queue, "%s", queue);
    if (policy) {
        char err[256] = "";
        s->policy = filter_policy_compile(policy, scope, err, sizeof err);
        if (!s->policy)
            print_error("policy %s: %s\n", policy, err);
        assert_non_null(s->policy);
    }
}

/* Route a message; the names of the queues, joined by ',', go to names. */
static size_t route(const config *c, const char *type, const char *body, const char *trace,
                    size_t max, char *names, size_t len)
{
    publish_message m = message(type, body, trace);
    const queue_config *out[CONFIG_MAX_ITEMS];
    assert_true(max <= CONFIG_MAX_ITEMS);
    size_t n;
    assert_true(topic_route(c, &m, out, max, &n));
    names[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        assert_non_null(out[i]);
        assert_ptr_equal(out[i], config_queue(c, out[i]->name));
        size_t used = strlen(names);
        snprintf(names + used, len - used, "%s%s", i ? "," : "", out[i]->name);
    }
    publish_message_free(&m);
    return n;
}

static void expect_route(const config *c, const char *type, const char *body, const char *trace,
                         const char *want)
{
    char got[256];
    route(c, type, body, trace, CONFIG_MAX_ITEMS, got, sizeof got);
    if (strcmp(got, want) != 0)
        print_error("route %s %s%s%s: got [%s], want [%s]\n", type, body, trace ? " trace " : "",
                    trace ? trace : "", got, want);
    assert_string_equal(got, want);
}

static void test_route_custom_subscriptions(void **state)
{
    (void)state;
    config c;
    assert_true(config_defaults(&c));
    for (size_t i = 0; i < c.n_subscriptions; i++)
        filter_policy_free(c.subscriptions[i].policy);
    c.n_subscriptions = 0;
    c.n_queues = 0;
    add_queue(&c, "all-tasks");
    add_queue(&c, "not-task1");
    add_queue(&c, "urgent");
    add_queue(&c, "traced");
    add_queue(&c, "never");

    subscribe(&c, "all-tasks", "{\"TaskType\":[{\"prefix\":\"TASK\"}]}", FILTER_SCOPE_ATTRIBUTES);
    subscribe(&c, "not-task1", "{\"TaskType\":[{\"anything-but\":[\"TASK1\"]}]}",
              FILTER_SCOPE_ATTRIBUTES);
    subscribe(&c, "urgent", "{\"priority\":[{\"numeric\":[\">=\",5]}],\"kind\":[\"job\"]}",
              FILTER_SCOPE_BODY);
    subscribe(&c, "all-tasks", NULL, FILTER_SCOPE_ATTRIBUTES); /* again, with no policy */
    subscribe(&c, "traced", "{\"traceparent\":[{\"exists\":true}]}", FILTER_SCOPE_ATTRIBUTES);
    subscribe(&c, "never", "{\"TaskType\":[\"NOTHING\"]}", FILTER_SCOPE_ATTRIBUTES);
    subscribe(&c, "ghost", NULL, FILTER_SCOPE_ATTRIBUTES); /* no such queue: skipped */

    /* TASK1 matches the prefix; the second all-tasks subscription does not list it again */
    expect_route(&c, "TASK1", "{}", NULL, "all-tasks");
    /* anything-but lets TASK2 through */
    expect_route(&c, "TASK2", "{}", NULL, "all-tasks,not-task1");
    /* body scope: both keys must match the body */
    expect_route(&c, "TASK1", "{\"priority\":7,\"kind\":\"job\"}", NULL, "all-tasks,urgent");
    expect_route(&c, "TASK1", "{\"priority\":4,\"kind\":\"job\"}", NULL, "all-tasks");
    expect_route(&c, "TASK1", "{\"priority\":9,\"kind\":\"other\"}", NULL, "all-tasks");
    expect_route(&c, "TASK1", "{\"priority\":\"9\",\"kind\":\"job\"}", NULL, "all-tasks");
    /* a type without the prefix: reached through not-task1, urgent, and the no-policy entry,
     * in subscription order */
    expect_route(&c, "JOB", "{\"priority\":5,\"kind\":\"job\"}", NULL,
                 "not-task1,urgent,all-tasks");
    /* the traceparent attribute is there for policies when the task has one */
    expect_route(&c, "TASK2", "{}", TRACE, "all-tasks,not-task1,traced");
    expect_route(&c, "task1", "{}", NULL, "not-task1,all-tasks");

    /* max caps the list */
    char names[256];
    assert_int_equal(route(&c, "TASK2", "{}", TRACE, 2, names, sizeof names), 2);
    assert_string_equal(names, "all-tasks,not-task1");
    assert_int_equal(route(&c, "TASK2", "{}", TRACE, 1, names, sizeof names), 1);
    assert_string_equal(names, "all-tasks");

    config_free(&c);
}

static void test_route_no_subscriptions(void **state)
{
    (void)state;
    config c;
    assert_true(config_defaults(&c));
    for (size_t i = 0; i < c.n_subscriptions; i++)
        filter_policy_free(c.subscriptions[i].policy);
    c.n_subscriptions = 0;
    char names[64];
    assert_int_equal(route(&c, "TASK1", "{}", NULL, 8, names, sizeof names), 0);

    /* a policy that matches everything ({}) delivers everything */
    subscribe(&c, "task1-dlq", "{}", FILTER_SCOPE_ATTRIBUTES);
    subscribe(&c, "task1", "{}", FILTER_SCOPE_BODY);
    expect_route(&c, "ANY", "{\"x\":1}", NULL, "task1-dlq,task1");
    config_free(&c);
}

/* ---- publisher_begin / publisher_route / publisher_finish ---- */

/* The trace and parent span of TRACE, as the spans carry them. */
#define TRACE_ID        "0af7651916cd43dd8448eb211c80319c"
#define TRACE_SPAN      "b7ad6b7169203331"
#define TRACE_UNSAMPLED "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"

/* A consumer named name over the given filter patterns (none: every record). */
static consumer_config consumer(const char *name, const char *const *patterns, size_t n)
{
    consumer_config cc;
    memset(&cc, 0, sizeof cc);
    snprintf(cc.name, sizeof cc.name, "%s", name);
    snprintf(cc.action, sizeof cc.action, "publish");
    cc.batch_size = 100;
    if (n) {
        char err[256] = "";
        cc.filter = filter_set_compile(patterns, n, err, sizeof err);
        if (!cc.filter)
            print_error("patterns: %s\n", err);
        assert_non_null(cc.filter);
    }
    return cc;
}

/* The attribute key of s, or NULL; with count, how many times it is there. */
static const span_attr *span_attr_of(const span *s, const char *key, int *count)
{
    const span_attr *found = NULL;
    int n = 0;
    for (int i = 0; i < s->n_attrs; i++)
        if (strcmp(s->attrs[i].key, key) == 0) {
            found = found ? found : &s->attrs[i];
            n++;
        }
    if (count)
        *count = n;
    return found;
}

static void expect_str_attr(const span *s, const char *key, const char *want)
{
    const span_attr *a = span_attr_of(s, key, NULL);
    if (!a)
        print_error("%s: no attribute %s\n", s->name, key);
    assert_non_null(a);
    assert_int_equal(a->type, SPAN_ATTR_STRING);
    assert_string_equal(a->v.s, want);
}

static void expect_hex(const uint8_t *bytes, size_t n, const char *want)
{
    char hex[33];
    assert_true(2 * n < sizeof hex);
    span_hex(bytes, n, hex);
    assert_string_equal(hex, want);
}

/* True when every byte of the publication is zero: nothing open, nothing owned. */
static bool publication_empty(const publication *p)
{
    static const publication zero;
    return memcmp(p, &zero, sizeof zero) == 0;
}

/* publisher_begin on a record that must make nothing: the outcome want, with why its reason
 * (NULL: none), and an empty publication but for the reason. */
static void expect_nothing(const config *c, const consumer_config *cc, json_t *rec,
                           publish_outcome want, const char *why, const char *what)
{
    publication *p = malloc(sizeof *p);
    assert_non_null(p);
    memset(p, 0xa5, sizeof *p);
    publish_outcome r = publisher_begin(c, cc, rec, 1, p);
    if (r != want)
        print_error("%s: outcome %d, want %d\n", what, (int)r, (int)want);
    assert_int_equal(r, want);
    if (why)
        assert_string_equal(p->unreadable, why);
    else
        assert_null(p->unreadable);
    p->unreadable = NULL;
    assert_true(publication_empty(p));
    publisher_finish(NULL, p, NULL); /* an empty one is harmless to finish */
    free(p);
    json_decref(rec);
}

static void expect_skipped(const config *c, const consumer_config *cc, json_t *rec,
                           const char *what)
{
    expect_nothing(c, cc, rec, PUBLISH_SKIPPED, NULL, what);
}

/* publisher_begin on a record that must make a message; finish it (no tracer) and free. */
static void expect_ready(const config *c, const consumer_config *cc, json_t *rec, const char *what)
{
    publication *p = malloc(sizeof *p);
    assert_non_null(p);
    publish_outcome r = publisher_begin(c, cc, rec, 1, p);
    if (r != PUBLISH_READY)
        print_error("%s: outcome %d, want ready\n", what, (int)r);
    assert_int_equal(r, PUBLISH_READY);
    assert_string_equal(p->message.task_id, ID1);
    publisher_finish(NULL, p, NULL);
    assert_true(publication_empty(p));
    free(p);
    json_decref(rec);
}

static void test_begin_filter_patterns(void **state)
{
    (void)state;
    config c;
    assert_true(config_defaults(&c));

    /* the default consumer: {"eventName":["INSERT"]} */
    const consumer_config *dflt = &c.consumers[0];
    assert_string_equal(dflt->name, "publisher");
    expect_ready(&c, dflt, record("INSERT", ID1, "TASK1", DATA_M, TRACE), "default, INSERT");
    expect_skipped(&c, dflt, record("MODIFY", ID1, "TASK1", DATA_M, TRACE), "default, MODIFY");

    /* a pattern over the image: only TASK1 passes, whatever the subscriptions */
    const char *only_task1[] = {
        "{\"dynamodb\":{\"NewImage\":{\"task_type\":{\"S\":[\"TASK1\"]}}}}"};
    consumer_config t1 = consumer("task1-only", only_task1, 1);
    expect_ready(&c, &t1, record("INSERT", ID1, "TASK1", DATA_M, NULL), "TASK1 passes");
    expect_skipped(&c, &t1, record("INSERT", ID1, "TASK2", DATA_M, NULL), "TASK2 filtered out");
    expect_skipped(&c, &t1, record("INSERT", ID1, "TASK3", DATA_M, TRACE), "TASK3 filtered out");
    filter_set_free(t1.filter);

    /* patterns are ORed */
    const char *either[] = {"{\"dynamodb\":{\"NewImage\":{\"task_type\":{\"S\":[\"TASK2\"]}}}}",
                            "{\"dynamodb\":{\"NewImage\":{\"task_type\":{\"S\":[\"TASK3\"]}}}}"};
    consumer_config t23 = consumer("task23", either, 2);
    expect_skipped(&c, &t23, record("INSERT", ID1, "TASK1", DATA_M, NULL), "TASK1 in neither");
    expect_ready(&c, &t23, record("INSERT", ID1, "TASK2", DATA_M, NULL), "TASK2, first pattern");
    expect_ready(&c, &t23, record("INSERT", ID1, "TASK3", DATA_M, NULL), "TASK3, second pattern");
    filter_set_free(t23.filter);

    /* a filter that lets only MODIFY through publishes nothing: MODIFY makes no message */
    const char *modify[] = {"{\"eventName\":[\"MODIFY\"]}"};
    consumer_config mod = consumer("modify", modify, 1);
    expect_skipped(&c, &mod, record("MODIFY", ID1, "TASK1", DATA_M, NULL),
                   "MODIFY passes, no message");
    expect_skipped(&c, &mod, record("INSERT", ID1, "TASK1", DATA_M, NULL), "INSERT filtered out");
    filter_set_free(mod.filter);
    config_free(&c);
}

static void test_begin_insert_not_modify(void **state)
{
    (void)state;
    config c;
    assert_true(config_defaults(&c));
    consumer_config all = consumer("all", NULL, 0); /* no filter: every record reaches the check */
    expect_ready(&c, &all, record("INSERT", ID1, "TASK1", DATA_M, NULL), "INSERT");
    expect_skipped(&c, &all, record("MODIFY", ID1, "TASK1", DATA_M, NULL), "MODIFY");
    expect_skipped(&c, &all, record("REMOVE", ID1, "TASK1", DATA_M, NULL), "REMOVE");
    /* an INSERT the patterns let through that makes no message: none can be made of it, said
     * why (it was skipped as one filtered out, and its consumer passed it over unsaid) */
    expect_nothing(&c, &all, record("INSERT", ID1, "TASK1", NULL, NULL), PUBLISH_UNREADABLE,
                   "its task has no data", "INSERT without data");
    expect_nothing(&c, &all, record("INSERT", ID1, "TASK1", "{\"S\":\"{}\"}", NULL),
                   PUBLISH_UNREADABLE, "its task's data is not an object", "data not M");
    expect_nothing(&c, &all, record("INSERT", NULL, "TASK1", DATA_M, NULL), PUBLISH_UNREADABLE,
                   "its task has no id", "INSERT without id");
    expect_nothing(&c, &all, record("INSERT", ID1, NULL, DATA_M, NULL), PUBLISH_UNREADABLE,
                   "its task has no type", "INSERT without type");
    expect_nothing(&c, &all, record("INSERT", "0190f3c2", "TASK1", DATA_M, NULL),
                   PUBLISH_UNREADABLE, "its task id is not 36 characters long", "short id");
    /* one the patterns leave out is theirs, whatever it holds */
    const char *modify[] = {"{\"eventName\":[\"MODIFY\"]}"};
    consumer_config mod = consumer("modify", modify, 1);
    expect_skipped(&c, &mod, record("INSERT", NULL, "TASK1", DATA_M, NULL), "filtered out");
    filter_set_free(mod.filter);
    config_free(&c);
}

/* An INSERT given by its fields makes the same message as the whole record does. */
static void test_begin_insert_by_fields(void **state)
{
    (void)state;
    config c;
    assert_true(config_defaults(&c));
    const consumer_config *dflt = &c.consumers[0];
    assert_true(publisher_takes_fields(dflt));
    const char *only_task1[] = {
        "{\"dynamodb\":{\"NewImage\":{\"task_type\":{\"S\":[\"TASK1\"]}}}}"};
    consumer_config t1 = consumer("task1-only", only_task1, 1);
    assert_false(publisher_takes_fields(&t1)); /* it needs the image */
    filter_set_free(t1.filter);

    const char *traces[] = {TRACE, NULL};
    for (int k = 0; k < 2; k++) {
        publication *whole = calloc(1, sizeof *whole), *fields = calloc(1, sizeof *fields);
        assert_true(whole && fields);
        json_t *rec = record("INSERT", ID1, "TASK2", DATA_M, traces[k]);
        assert_int_equal(publisher_begin(&c, dflt, rec, 3, whole), PUBLISH_READY);
        json_decref(rec);
        publish_source src = {ID1, "TASK2", DATA_PLAIN, traces[k], NULL};
        assert_int_equal(publisher_begin_insert(&c, dflt, &src, 3, fields), PUBLISH_READY);
        assert_string_equal(fields->message.task_id, whole->message.task_id);
        assert_string_equal(fields->message.task_type, "TASK2");
        assert_string_equal(fields->message.body, whole->message.body);
        assert_true(publish_message_attributes(&fields->message));
        assert_true(publish_message_attributes(&whole->message));
        json_t *a = json_loads(fields->message.attributes, 0, NULL);
        json_t *b = json_loads(whole->message.attributes, 0, NULL);
        assert_non_null(a);
        assert_string_equal(attr_value(a, "TaskId"), ID1);
        assert_string_equal(attr_value(a, "TaskType"), attr_value(b, "TaskType"));
        /* the traceparent is each publish span's own; its trace is the task's */
        assert_int_equal(fields->process.kind, whole->process.kind);
        if (traces[k])
            assert_memory_equal(fields->publish.trace_id, whole->publish.trace_id,
                                sizeof fields->publish.trace_id);
        json_decref(a);
        json_decref(b);
        publisher_finish(NULL, whole, NULL);
        publisher_finish(NULL, fields, NULL);
        free(whole);
        free(fields);
    }

    /* incomplete fields make nothing, said why; a consumer whose patterns refuse INSERTs
     * makes nothing of them */
    publication *p = calloc(1, sizeof *p);
    assert_non_null(p);
    publish_source no_data = {ID1, "TASK2", NULL, NULL, NULL};
    assert_int_equal(publisher_begin_insert(&c, dflt, &no_data, 1, p), PUBLISH_UNREADABLE);
    assert_string_equal(p->unreadable, "its task has no data");
    publish_source short_id = {"0190f3c2", "TASK2", DATA_PLAIN, NULL, NULL};
    assert_int_equal(publisher_begin_insert(&c, dflt, &short_id, 1, p), PUBLISH_UNREADABLE);
    assert_string_equal(p->unreadable, "its task id is not 36 characters long");
    const char *modify[] = {"{\"eventName\":[\"MODIFY\"]}"};
    consumer_config mod = consumer("modify", modify, 1);
    assert_true(publisher_takes_fields(&mod));
    publish_source ok = {ID1, "TASK2", DATA_PLAIN, NULL, NULL};
    assert_int_equal(publisher_begin_insert(&c, &mod, &ok, 1, p), PUBLISH_SKIPPED);
    assert_true(publication_empty(p));
    filter_set_free(mod.filter);
    free(p);
    config_free(&c);
}

static void test_begin_opens_spans(void **state)
{
    (void)state;
    config c;
    assert_true(config_defaults(&c));
    json_t *rec = record("INSERT", ID1, "TASK1", DATA_M, TRACE);
    publication *p = calloc(1, sizeof *p);
    assert_non_null(p);
    assert_int_equal(publisher_begin(&c, &c.consumers[0], rec, 7, p), PUBLISH_READY);

    /* process: a consumer of the change stream, child of the context stored with the task */
    const span *proc = &p->process;
    assert_string_equal(proc->name, "process publisher");
    assert_int_equal(proc->kind, SPAN_KIND_CONSUMER);
    expect_hex(proc->trace_id, 16, TRACE_ID);
    expect_hex(proc->parent_id, 8, TRACE_SPAN);
    assert_int_equal(proc->flags, 0x01);
    assert_true(proc->start_ns > 0);
    assert_int_equal(proc->end_ns, 0);
    assert_int_equal(proc->status, SPAN_STATUS_UNSET);
    assert_string_equal(proc->task_id, ID1);
    expect_str_attr(proc, "messaging.system", "taskd");
    expect_str_attr(proc, "messaging.operation.name", "process");
    expect_str_attr(proc, "messaging.operation.type", "process");
    expect_str_attr(proc, "messaging.destination.name", "changes");
    expect_str_attr(proc, "messaging.consumer.group.name", "publisher");
    expect_str_attr(proc, "task.id", ID1);
    const span_attr *count = span_attr_of(proc, "messaging.batch.message_count", NULL);
    assert_non_null(count);
    assert_int_equal(count->type, SPAN_ATTR_INT);
    assert_int_equal(count->v.i, 7);

    /* publish: the producer of the topic message, child of process */
    const span *pub = &p->publish;
    assert_string_equal(pub->name, "publish tasks");
    assert_int_equal(pub->kind, SPAN_KIND_PRODUCER);
    assert_memory_equal(pub->trace_id, proc->trace_id, 16);
    assert_memory_equal(pub->parent_id, proc->span_id, 8);
    assert_memory_not_equal(pub->span_id, proc->span_id, 8);
    assert_int_equal(pub->flags, 0x01);
    assert_true(pub->start_ns >= proc->start_ns);
    assert_int_equal(pub->end_ns, 0);
    assert_string_equal(pub->task_id, ID1);
    expect_str_attr(pub, "messaging.system", "taskd");
    expect_str_attr(pub, "messaging.operation.name", "publish");
    expect_str_attr(pub, "messaging.operation.type", "send");
    expect_str_attr(pub, "messaging.destination.name", "tasks");
    expect_str_attr(pub, "task.id", ID1);
    assert_null(span_attr_of(pub, "taskd.queue", NULL)); /* routes come from publisher_route */

    /* the message carries the producer's context, in its trace and its attributes (built on
     * demand: the local broker keeps the fields) */
    char want[56];
    trace_traceparent_of(pub, want);
    assert_string_equal(p->message.trace, want);
    assert_string_not_equal(p->message.trace, TRACE);
    assert_null(p->message.attributes);
    assert_true(publish_message_attributes(&p->message));
    json_t *attrs = json_loads(p->message.attributes, 0, NULL);
    assert_non_null(attrs);
    assert_int_equal(json_object_size(attrs), 3);
    assert_string_equal(attr_value(attrs, "TaskId"), ID1);
    assert_string_equal(attr_value(attrs, "TaskType"), "TASK1");
    assert_string_equal(attr_value(attrs, "traceparent"), want);
    json_decref(attrs);
    json_t *body = json_loads(p->message.body, 0, NULL);
    json_t *plain = json_loads(DATA_PLAIN, 0, NULL);
    assert_true(json_equal(body, plain));
    json_decref(plain);
    json_decref(body);

    publisher_finish(NULL, p, NULL);
    assert_true(publication_empty(p));
    free(p);
    json_decref(rec);

    /* an unsampled stored context stays unsampled */
    rec = record("INSERT", ID1, "TASK1", DATA_M, TRACE_UNSAMPLED);
    p = calloc(1, sizeof *p);
    assert_non_null(p);
    assert_int_equal(publisher_begin(&c, &c.consumers[0], rec, 1, p), PUBLISH_READY);
    assert_int_equal(p->process.flags, 0x00);
    assert_int_equal(p->publish.flags, 0x00);
    assert_string_equal(p->message.trace + strlen(p->message.trace) - 3, "-00");
    publisher_finish(NULL, p, NULL);
    free(p);
    json_decref(rec);
    config_free(&c);
}

/* The publish span names the configured topic's system (SNS's on AWS); the process span, a
 * consumer of the change stream, stays taskd's. */
static void test_publish_span_names_the_topic_system(void **state)
{
    (void)state;
    config c;
    assert_true(config_defaults(&c));
    c.topic_system = "aws.sns";
    publication *p = calloc(1, sizeof *p);
    assert_non_null(p);
    json_t *rec = record("INSERT", ID1, "TASK1", DATA_M, TRACE);
    assert_int_equal(publisher_begin(&c, &c.consumers[0], rec, 1, p), PUBLISH_READY);
    expect_str_attr(&p->publish, "messaging.system", "aws.sns");
    expect_str_attr(&p->process, "messaging.system", "taskd");
    int n;
    span_attr_of(&p->publish, "messaging.system", &n);
    assert_int_equal(n, 1);
    publisher_finish(NULL, p, NULL);
    json_decref(rec);

    /* from the fields too */
    publish_source src = {ID1, "TASK1", "{\"foo\":\"bar\"}", TRACE, NULL};
    assert_int_equal(publisher_begin_insert(&c, &c.consumers[0], &src, 1, p), PUBLISH_READY);
    expect_str_attr(&p->publish, "messaging.system", "aws.sns");
    publisher_finish(NULL, p, NULL);
    free(p);
    config_free(&c);
}

static void test_begin_without_stored_trace(void **state)
{
    (void)state;
    config c;
    assert_true(config_defaults(&c));
    static const uint8_t zero[8];
    /* no context with the task, and one that does not parse: a new sampled trace */
    const char *stored[] = {NULL, "not-a-traceparent"};
    for (size_t i = 0; i < 2; i++) {
        json_t *rec = record("INSERT", ID1, "TASK2", "{\"M\":{}}", stored[i]);
        publication *p = calloc(1, sizeof *p);
        assert_non_null(p);
        assert_int_equal(publisher_begin(&c, &c.consumers[0], rec, 1, p), PUBLISH_READY);
        assert_false(span_has_parent(&p->process));
        assert_memory_equal(p->process.parent_id, zero, 8);
        assert_int_equal(p->process.flags, 0x01);
        assert_memory_equal(p->publish.trace_id, p->process.trace_id, 16);
        assert_memory_equal(p->publish.parent_id, p->process.span_id, 8);
        char want[56];
        trace_traceparent_of(&p->publish, want);
        assert_non_null(p->message.trace);
        assert_string_equal(p->message.trace, want);
        assert_true(publish_message_attributes(&p->message));
        json_t *attrs = json_loads(p->message.attributes, 0, NULL);
        assert_non_null(attrs);
        assert_string_equal(attr_value(attrs, "traceparent"), want);
        json_decref(attrs);
        publisher_finish(NULL, p, NULL);
        free(p);
        json_decref(rec);
    }
    config_free(&c);
}

/* A tracer keeping spans locally only. */
static tracer *local_tracer(void)
{
    tracer_options o = {.service_name = "taskd-test", .local_capacity = 64};
    char err[256] = "";
    tracer *t = tracer_new(&o, err, sizeof err);
    if (!t)
        print_error("tracer_new: %s\n", err);
    assert_non_null(t);
    return t;
}

/* Begin and finish one TASK1 record with error; the task's spans (process, publish) go to out. */
static void publish_one(const char *error, span out[2])
{
    config c;
    assert_true(config_defaults(&c));
    tracer *t = local_tracer();
    telemetry tel = {.tracer = t, .metrics = NULL};
    json_t *rec = record("INSERT", ID1, "TASK1", DATA_M, TRACE);
    publication *p = calloc(1, sizeof *p);
    assert_non_null(p);
    assert_int_equal(publisher_begin(&c, &c.consumers[0], rec, 3, p), PUBLISH_READY);
    const queue_config *routes[CONFIG_MAX_ITEMS];
    size_t n_routes;
    assert_true(publisher_route(&c, p, routes, CONFIG_MAX_ITEMS, &n_routes));
    assert_int_equal(n_routes, 1);
    uint8_t proc_id[8], pub_id[8];
    memcpy(proc_id, p->process.span_id, 8);
    memcpy(pub_id, p->publish.span_id, 8);
    char message_trace[56];
    snprintf(message_trace, sizeof message_trace, "%s", p->message.trace);

    span *none = NULL;
    assert_int_equal(tracer_task_spans(t, ID1, &none), 0); /* nothing until finished */
    free(none);
    publisher_finish(&tel, p, error);
    assert_true(publication_empty(p));

    span *got = NULL;
    size_t n = tracer_task_spans(t, ID1, &got);
    assert_int_equal(n, 2);
    /* the two, process first (they may share a start time: then the sort order is the store's) */
    if (strcmp(got[0].name, "process publisher") != 0) {
        span tmp = got[0];
        got[0] = got[1];
        got[1] = tmp;
    }
    assert_string_equal(got[0].name, "process publisher");
    assert_string_equal(got[1].name, "publish tasks");
    assert_int_equal(got[0].kind, SPAN_KIND_CONSUMER);
    assert_int_equal(got[1].kind, SPAN_KIND_PRODUCER);
    assert_true(got[1].start_ns >= got[0].start_ns);
    assert_memory_equal(got[0].span_id, proc_id, 8);
    assert_memory_equal(got[1].span_id, pub_id, 8);
    assert_memory_equal(got[1].parent_id, proc_id, 8);
    expect_hex(got[0].parent_id, 8, TRACE_SPAN);
    char tp[56];
    trace_traceparent_of(&got[1], tp);
    assert_string_equal(tp, message_trace);
    for (size_t i = 0; i < n; i++) {
        assert_true(got[i].end_ns >= got[i].start_ns && got[i].end_ns > 0);
        assert_string_equal(got[i].task_id, ID1);
    }
    /* publish ends first; process, around it, after */
    assert_true(got[0].end_ns >= got[1].end_ns);
    expect_str_attr(&got[1], "taskd.queue", "task1");
    for (size_t i = 0; i < n; i++) {
        assert_true(span_copy(&out[i], &got[i]));
        span_clear(&got[i]);
    }
    free(got);
    json_decref(rec);
    free(p);
    tracer_free(t);
    config_free(&c);
}

static void test_finish_emits_spans(void **state)
{
    (void)state;
    span got[2];
    publish_one(NULL, got);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(got[i].status, SPAN_STATUS_UNSET);
        assert_null(got[i].status_msg);
        span_clear(&got[i]);
    }
}

static void test_finish_marks_error(void **state)
{
    (void)state;
    span got[2];
    publish_one("STORE_BUSY", got);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(got[i].status, SPAN_STATUS_ERROR);
        assert_non_null(got[i].status_msg);
        assert_string_equal(got[i].status_msg, "STORE_BUSY");
        span_clear(&got[i]);
    }
}

/* Begin a record of type (no stored trace) and route it; the queue names joined by ','. */
static size_t route_record(const config *c, const char *type, const char *data_m, size_t max,
                           char *names, size_t len)
{
    json_t *rec = record("INSERT", ID1, type, data_m, NULL);
    publication *p = calloc(1, sizeof *p);
    assert_non_null(p);
    assert_int_equal(publisher_begin(c, &c->consumers[0], rec, 1, p), PUBLISH_READY);
    const queue_config *out[CONFIG_MAX_ITEMS];
    size_t n;
    assert_true(publisher_route(c, p, out, max, &n));
    names[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        assert_ptr_equal(out[i], config_queue(c, out[i]->name));
        size_t used = strlen(names);
        snprintf(names + used, len - used, "%s%s", i ? "," : "", out[i]->name);
    }
    /* one attribute names the queues on the publish span, in order (a key is sent once) */
    int count = 0;
    const span_attr *queues = span_attr_of(&p->publish, "taskd.queue", &count);
    assert_int_equal(count, n ? 1 : 0);
    if (n)
        assert_string_equal(queues->v.s, names);
    publisher_finish(NULL, p, NULL);
    free(p);
    json_decref(rec);
    return n;
}

static void test_route_publication(void **state)
{
    (void)state;
    config c;
    assert_true(config_defaults(&c));
    char names[256];

    /* the default subscription: TaskType TASK1 to task1 */
    assert_int_equal(route_record(&c, "TASK1", DATA_M, CONFIG_MAX_ITEMS, names, sizeof names), 1);
    assert_string_equal(names, "task1");
    assert_int_equal(route_record(&c, "TASK2", DATA_M, CONFIG_MAX_ITEMS, names, sizeof names), 0);

    for (size_t i = 0; i < c.n_subscriptions; i++)
        filter_policy_free(c.subscriptions[i].policy);
    c.n_subscriptions = 0;
    c.n_queues = 0;
    add_queue(&c, "task2");
    add_queue(&c, "traced");
    add_queue(&c, "urgent");
    add_queue(&c, "everything");
    subscribe(&c, "task2", "{\"TaskType\":[\"TASK2\"]}", FILTER_SCOPE_ATTRIBUTES);
    /* the record has no stored trace, yet the message has the publish span's */
    subscribe(&c, "traced", "{\"traceparent\":[{\"exists\":true}]}", FILTER_SCOPE_ATTRIBUTES);
    subscribe(&c, "urgent", "{\"priority\":[{\"numeric\":[\">=\",5]}]}", FILTER_SCOPE_BODY);
    subscribe(&c, "everything", NULL, FILTER_SCOPE_ATTRIBUTES);

    assert_int_equal(route_record(&c, "TASK1", "{\"M\":{\"priority\":{\"N\":\"9\"}}}",
                                  CONFIG_MAX_ITEMS, names, sizeof names),
                     3);
    assert_string_equal(names, "traced,urgent,everything");
    assert_int_equal(route_record(&c, "TASK2", "{\"M\":{\"priority\":{\"N\":\"1\"}}}",
                                  CONFIG_MAX_ITEMS, names, sizeof names),
                     3);
    assert_string_equal(names, "task2,traced,everything");
    /* max caps the list, and the span names only what was routed */
    assert_int_equal(route_record(&c, "TASK2", "{\"M\":{}}", 1, names, sizeof names), 1);
    assert_string_equal(names, "task2");
    config_free(&c);
}

int main(void)
{
    /* spans stay in the tracer's local store: nothing is exported from a unit test */
    setenv("OTEL_SDK_DISABLED", "true", 1);
    log_setup(LOG_ERROR, "test_publisher");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_insert_makes_message),
        cmocka_unit_test(test_insert_with_trace),
        cmocka_unit_test(test_insert_with_tracestate),
        cmocka_unit_test(test_special_characters_survive),
        cmocka_unit_test(test_body_holds_only_what_sqs_carries),
        cmocka_unit_test(test_non_insert_makes_nothing),
        cmocka_unit_test(test_incomplete_insert_makes_nothing),
        cmocka_unit_test(test_route_defaults),
        cmocka_unit_test(test_begin_insert_by_fields),
        cmocka_unit_test(test_route_custom_subscriptions),
        cmocka_unit_test(test_route_no_subscriptions),
        cmocka_unit_test(test_begin_filter_patterns),
        cmocka_unit_test(test_begin_insert_not_modify),
        cmocka_unit_test(test_begin_opens_spans),
        cmocka_unit_test(test_publish_span_names_the_topic_system),
        cmocka_unit_test(test_begin_without_stored_trace),
        cmocka_unit_test(test_finish_emits_spans),
        cmocka_unit_test(test_finish_marks_error),
        cmocka_unit_test(test_route_publication),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
