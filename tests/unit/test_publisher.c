/*
 * Unit tests for pipeline/publisher: the topic message made from an INSERT change record (body =
 * the task's data as plain JSON, attributes TaskId / TaskType / traceparent), the records that
 * make no message, and topic_route over the default configuration and over custom subscriptions
 * (prefix, anything-but, body scope, no policy, a queue subscribed twice, an unknown queue).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/config.h"
#include "core/filter.h"
#include "pipeline/publisher.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ID1   "0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e5f"
#define TRACE "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

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
    assert_int_equal(topic_route(&c, &m, out, 8), 1);
    assert_string_equal(out[0]->name, "task1");
    assert_ptr_equal(out[0], config_queue(&c, "task1"));
    assert_int_equal(topic_route(&c, &m, out, 0), 0);
    publish_message_free(&m);
    json_decref(rec);

    for (int i = 2; i <= 3; i++) {
        char type[8];
        snprintf(type, sizeof type, "TASK%d", i);
        rec = record("INSERT", ID1, type, DATA_M, NULL);
        assert_true(publisher_message(rec, &m));
        assert_int_equal(topic_route(&c, &m, out, 8), 0);
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
    size_t n = topic_route(c, &m, out, max);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_insert_makes_message),
        cmocka_unit_test(test_insert_with_trace),
        cmocka_unit_test(test_special_characters_survive),
        cmocka_unit_test(test_non_insert_makes_nothing),
        cmocka_unit_test(test_incomplete_insert_makes_nothing),
        cmocka_unit_test(test_route_defaults),
        cmocka_unit_test(test_route_custom_subscriptions),
        cmocka_unit_test(test_route_no_subscriptions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
