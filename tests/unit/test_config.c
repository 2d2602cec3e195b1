/*
 * Unit tests for core/config: the defaults (the original service's pipeline), loading JSON
 * text over them, and the one-line error messages naming each fault. Every
 * case ends with config_free, so a sanitizer build also checks for leaks.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/config.h"
#include "core/sbuf.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

/* ---- helpers ---- */

/* Load text over fresh defaults; must succeed. The caller frees c. */
static void load_ok(config *c, const char *text)
{
    char err[512] = "";
    assert_true(config_defaults(c));
    if (!config_load_text(c, text, "cfg", err, sizeof err))
        fail_msg("rejected %s: %s", text, err);
}

/* Load text over fresh defaults; must fail with a message containing every non-NULL want. */
static void load_fails(const char *text, const char *want1, const char *want2)
{
    config c;
    char err[512] = "";
    assert_true(config_defaults(&c));
    if (config_load_text(&c, text, "cfg", err, sizeof err))
        fail_msg("accepted %s", text);
    if (strncmp(err, "cfg:", 4) != 0 || strchr(err, '\n'))
        fail_msg("message \"%s\" does not start with the name or is not one line", err);
    if (want1 && !strstr(err, want1))
        fail_msg("message \"%s\" lacks \"%s\"", err, want1);
    if (want2 && !strstr(err, want2))
        fail_msg("message \"%s\" lacks \"%s\"", err, want2);
    config_free(&c);
}

/* Load text over fresh defaults; must fail with "cfg: " and want, the whole message: one that
 * says more or less than want (a unit after a count's bounds, or none after a size's) fails. */
static void load_refused(const char *text, const char *want)
{
    config c;
    char err[512] = "";
    assert_true(config_defaults(&c));
    if (config_load_text(&c, text, "cfg", err, sizeof err))
        fail_msg("accepted %s", text);
    if (strncmp(err, "cfg: ", 5) != 0 || strcmp(err + 5, want) != 0)
        fail_msg("message \"%s\", want \"cfg: %s\"", err, want);
    config_free(&c);
}

static bool policy_matches_type(const filter_policy *p, const char *type)
{
    filter_attr a = {"TaskType", "String", type};
    return filter_policy_match_attrs(p, &a, 1);
}

static bool set_matches_event(const filter_set *s, const char *event)
{
    json_t *rec = json_pack("{s:s}", "eventName", event);
    bool m = filter_set_match(s, rec);
    json_decref(rec);
    return m;
}

/* Check that c still holds the default pipeline. */
static void check_default_pipeline(const config *c)
{
    assert_string_equal(c->topic, "tasks");
    assert_int_equal(c->n_queues, 2);
    assert_string_equal(c->queues[0].name, "task1");
    assert_string_equal(c->queues[0].dead_letter_queue, "task1-dlq");
    assert_int_equal(c->queues[0].visibility_timeout, 60);
    assert_int_equal(c->queues[0].max_receive_count, 3);
    assert_int_equal(c->queues[0].delay, 0);
    assert_int_equal(c->queues[0].retention, 4 * 24 * 3600);
    assert_string_equal(c->queues[1].name, "task1-dlq");
    assert_string_equal(c->queues[1].dead_letter_queue, "");
    assert_int_equal(c->queues[1].retention, 14 * 24 * 3600);

    assert_int_equal(c->n_subscriptions, 1);
    assert_string_equal(c->subscriptions[0].queue, "task1");
    assert_non_null(c->subscriptions[0].policy);
    assert_int_equal(filter_policy_scope(c->subscriptions[0].policy), FILTER_SCOPE_ATTRIBUTES);
    assert_true(policy_matches_type(c->subscriptions[0].policy, "TASK1"));
    assert_false(policy_matches_type(c->subscriptions[0].policy, "TASK2"));

    assert_int_equal(c->n_consumers, 1);
    assert_string_equal(c->consumers[0].name, "publisher");
    assert_string_equal(c->consumers[0].action, "publish");
    assert_non_null(c->consumers[0].filter);
    assert_int_equal(filter_set_count(c->consumers[0].filter), 1);
    assert_true(set_matches_event(c->consumers[0].filter, "INSERT"));
    assert_false(set_matches_event(c->consumers[0].filter, "MODIFY"));
    assert_false(set_matches_event(c->consumers[0].filter, "REMOVE"));
    assert_int_equal(c->consumers[0].batch_size, 100);
    assert_int_equal(c->consumers[0].maximum_retry_attempts, 5);

    assert_int_equal(c->n_handlers, 1);
    assert_string_equal(c->handlers[0].queue, "task1");
    assert_string_equal(c->handlers[0].handler, "TASK1");
    assert_null(c->handlers[0].command);
    assert_int_equal(c->handlers[0].batch_size, 1);
    assert_int_equal(c->handlers[0].concurrency, 8);
    assert_int_equal(c->handlers[0].timeout, 30);
}

/* ---- defaults ---- */

static void test_defaults(void **state)
{
    (void)state;
    config c;
    memset(&c, 0x5a, sizeof c);
    assert_true(config_defaults(&c));
    assert_int_equal(c.n_task_types, 3);
    assert_string_equal(c.task_types[0], "TASK1");
    assert_string_equal(c.task_types[1], "TASK2");
    assert_string_equal(c.task_types[2], "TASK3");
    assert_int_equal(c.body_limit, 1048576);
    assert_int_equal(c.retention_grace, 3600);
    assert_int_equal(c.sweep_interval, 60);
    assert_int_equal(c.shutdown_grace, 10);
    assert_int_equal(c.max_waiters, 1000);
    assert_int_equal(c.max_event_clients, 64);
    assert_int_equal(c.event_buffer_bytes, 256 * 1024);
    assert_int_equal(c.event_replay, 60);
    assert_int_equal(c.event_ping_interval, 15);
    assert_int_equal(c.claim_timeout, 3600);
    assert_int_equal(c.max_connections, 0); /* derived from the open-file limit */
    assert_int_equal(c.max_connections_per_client, 0);
    assert_int_equal(c.max_in_flight, 1024);
    assert_int_equal(c.max_body_memory, 256 * 1024 * 1024);
    assert_int_equal(c.header_timeout, 10);
    assert_int_equal(c.body_timeout, 60);
    assert_int_equal(c.idle_timeout, 30);
    assert_int_equal(c.min_send_rate, 1024);
    check_default_pipeline(&c);
    assert_true(config_has_task_type(&c, "TASK1"));
    assert_true(config_has_task_type(&c, "TASK3"));
    assert_false(config_has_task_type(&c, "TASK4"));
    assert_false(config_has_task_type(&c, "task1"));
    assert_false(config_has_task_type(&c, ""));
    config_free(&c);
    assert_int_equal(c.n_task_types, 0);
    assert_int_equal(c.n_queues, 0);
    assert_int_equal(c.n_subscriptions, 0);
    assert_int_equal(c.n_consumers, 0);
    assert_int_equal(c.n_handlers, 0);
    config_free(&c); /* a second free is harmless */
}

static void test_queue_lookup(void **state)
{
    (void)state;
    config c;
    assert_true(config_defaults(&c));
    const queue_config *q = config_queue(&c, "task1");
    assert_non_null(q);
    assert_ptr_equal(q, &c.queues[0]);
    q = config_queue(&c, "task1-dlq");
    assert_ptr_equal(q, &c.queues[1]);
    assert_null(config_queue(&c, "task2"));
    assert_null(config_queue(&c, "task"));
    assert_null(config_queue(&c, "TASK1"));
    assert_null(config_queue(&c, ""));
    config_free(&c);

    load_ok(&c, "{\"queues\":[{\"name\":\"task1\"},{\"name\":\"a\"},{\"name\":\"b\"}]}");
    assert_ptr_equal(config_queue(&c, "b"), &c.queues[2]);
    assert_null(config_queue(&c, "task1-dlq"));
    config_free(&c);
}

static void test_empty_object_keeps_defaults(void **state)
{
    (void)state;
    config c;
    load_ok(&c, "{}");
    assert_int_equal(c.n_task_types, 3);
    assert_int_equal(c.body_limit, 1048576);
    check_default_pipeline(&c);
    config_free(&c);
}

/* ---- the defaults scripts/check-serverless.py (and tests/lambda/fauxqs.py) fill in ---- */

/* scripts/taskd-defaults.json of this source tree. */
static json_t *tools_defaults(void)
{
    const char *path = TASKD_SOURCE_DIR "/scripts/taskd-defaults.json";
    json_error_t e;
    json_t *doc = json_load_file(path, 0, &e);
    if (!doc)
        fail_msg("%s: %s", path, e.text);
    return doc;
}

/* That have (a reference, taken) is the document's entry key. */
static void assert_as_documented(json_t *have, const json_t *doc, const char *key)
{
    const json_t *want = json_object_get(doc, key);
    if (!json_equal(have, want)) {
        char *h = json_dumps(have, JSON_ENCODE_ANY), *w = json_dumps(want, JSON_ENCODE_ANY);
        fail_msg("%s: config.c gives %s, scripts/taskd-defaults.json %s", key, h, w);
    }
    json_decref(have);
}

static void test_tools_defaults_are_taskds(void **state)
{
    (void)state;
    json_t *doc = tools_defaults();
    config c;
    /* its sections, over a configuration that has none of them, are the default ones */
    load_ok(&c, "{\"topic\":\"other\",\"queues\":[],\"subscriptions\":[],"
                "\"stream_consumers\":[],\"handlers\":[]}");
    char *sections = json_dumps(json_object_get(doc, "sections"), 0), err[512] = "";
    if (!config_load_text(&c, sections, "sections", err, sizeof err))
        fail_msg("%s", err);
    free(sections);
    check_default_pipeline(&c);
    config_free(&c);

    /* an item that gives only what it must has the document's defaults */
    load_ok(
        &c,
        "{\"queues\":[{\"name\":\"q\"},{\"name\":\"a\",\"dead_letter_queue\":\"dlq\"},"
        "{\"name\":\"dlq\"}],"
        "\"subscriptions\":[{\"queue\":\"q\"},{\"queue\":\"q\",\"filter_policy\":{\"a\":[\"b\"]}}],"
        "\"stream_consumers\":[{\"name\":\"s\"}],"
        "\"handlers\":[{\"queue\":\"q\",\"handler\":\"noop\"}]}");
    const queue_config *q = config_queue(&c, "q"), *dlq = config_queue(&c, "dlq");
    assert_as_documented(
        json_pack("{s:i,s:i,s:s,s:i,s:i}", "visibility_timeout", (int)q->visibility_timeout,
                  "max_receive_count", (int)q->max_receive_count, "dead_letter_queue",
                  q->dead_letter_queue, "delay", (int)q->delay, "retention", (int)q->retention),
        doc, "queue");
    assert_as_documented(json_integer(dlq->retention), doc, "dead_letter_queue_retention");
    /* no policy (null) lets every message through; a policy's scope */
    const subscription_config *sub = c.subscriptions;
    assert_null(sub[0].policy);
    bool body = filter_policy_scope(sub[1].policy) == FILTER_SCOPE_BODY;
    assert_as_documented(json_pack("{s:n,s:s}", "filter_policy", "filter_policy_scope",
                                   body ? "MessageBody" : "MessageAttributes"),
                         doc, "subscription");
    /* no patterns ([]) pass every record */
    const consumer_config *cc = c.consumers;
    assert_null(cc->filter);
    assert_as_documented(json_pack("{s:s,s:[],s:i,s:i}", "action", cc->action, "filter_patterns",
                                   "batch_size", (int)cc->batch_size, "maximum_retry_attempts",
                                   (int)cc->maximum_retry_attempts),
                         doc, "stream_consumer");
    const handler_config *h = c.handlers;
    assert_as_documented(json_pack("{s:i,s:i,s:i}", "batch_size", (int)h->batch_size, "concurrency",
                                   (int)h->concurrency, "timeout", (int)h->timeout),
                         doc, "handler");
    config_free(&c);
    json_decref(doc);
}

/* ---- overrides ---- */

static void test_scalar_overrides(void **state)
{
    (void)state;
    config c;
    load_ok(&c, "{\"task_types\":[\"X\",\"y.z\",\"a_b-c9\"],\"body_limit\":1024,"
                "\"retention_grace\":0,\"sweep_interval\":5,\"shutdown_grace\":3600,"
                "\"max_waiters\":0,\"max_event_clients\":3,\"event_buffer_bytes\":4096,"
                "\"event_replay\":0,\"event_ping_interval\":1,\"claim_timeout\":0,"
                "\"topic\":\"events-1\"}");
    assert_int_equal(c.n_task_types, 3);
    assert_string_equal(c.task_types[0], "X");
    assert_string_equal(c.task_types[1], "y.z");
    assert_string_equal(c.task_types[2], "a_b-c9");
    assert_false(config_has_task_type(&c, "TASK1"));
    assert_true(config_has_task_type(&c, "y.z"));
    assert_int_equal(c.body_limit, 1024);
    assert_int_equal(c.retention_grace, 0);
    assert_int_equal(c.sweep_interval, 5);
    assert_int_equal(c.shutdown_grace, 3600);
    assert_int_equal(c.max_waiters, 0);
    assert_int_equal(c.max_event_clients, 3);
    assert_int_equal(c.event_buffer_bytes, 4096);
    assert_int_equal(c.event_replay, 0);
    assert_int_equal(c.event_ping_interval, 1);
    assert_int_equal(c.claim_timeout, 0);
    assert_string_equal(c.topic, "events-1");
    config_free(&c);

    /* the range ends are accepted */
    load_ok(&c, "{\"body_limit\":64,\"retention_grace\":2147483647,\"sweep_interval\":86400}");
    assert_int_equal(c.body_limit, 64);
    assert_int_equal(c.retention_grace, 2147483647);
    assert_int_equal(c.sweep_interval, 86400);
    config_free(&c);
    load_ok(&c, "{\"body_limit\":67108864,\"sweep_interval\":1}");
    assert_int_equal(c.body_limit, 67108864);
    config_free(&c);

    /* the listener's bounds */
    load_ok(&c, "{\"client_ipv6_prefix\":96}");
    assert_int_equal(c.client_ipv6_prefix, 96);
    config_free(&c);
    load_ok(&c, "{\"max_connections\":5000,\"max_connections_per_client\":64,"
                "\"max_in_flight\":1,\"header_timeout\":3600,\"body_timeout\":1,"
                "\"idle_timeout\":7,\"max_body_memory\":68719476736,"
                "\"min_send_rate\":1073741824}");
    assert_int_equal(c.max_connections, 5000);
    assert_true(c.max_body_memory == (size_t)64 * 1024 * 1024 * 1024);
    assert_int_equal(c.max_connections_per_client, 64);
    assert_int_equal(c.client_ipv6_prefix, 64); /* the default */
    assert_int_equal(c.max_in_flight, 1);
    assert_int_equal(c.header_timeout, 3600);
    assert_int_equal(c.body_timeout, 1);
    assert_int_equal(c.idle_timeout, 7);
    assert_int_equal(c.min_send_rate, 1073741824);
    config_free(&c);
}

static void test_task_types_lengths(void **state)
{
    (void)state;
    char name[80];
    memset(name, 'N', 64);
    name[64] = '\0';
    char text[256];
    snprintf(text, sizeof text, "{\"task_types\":[\"%s\"]}", name);
    config c;
    load_ok(&c, text);
    assert_int_equal(c.n_task_types, 1);
    assert_string_equal(c.task_types[0], name);
    config_free(&c);

    /* 64 names is the most */
    char big[64 * 8 + 32];
    size_t p = (size_t)snprintf(big, sizeof big, "{\"task_types\":[");
    for (int i = 0; i < 64; i++)
        p += (size_t)snprintf(big + p, sizeof big - p, "%s\"T%d\"", i ? "," : "", i);
    snprintf(big + p, sizeof big - p, "]}");
    load_ok(&c, big);
    assert_int_equal(c.n_task_types, 64);
    assert_string_equal(c.task_types[63], "T63");
    config_free(&c);
}

static void test_queues_section_replaces(void **state)
{
    (void)state;
    config c;
    load_ok(&c, "{\"queues\":[{\"name\":\"task1\",\"visibility_timeout\":120,"
                "\"max_receive_count\":0,\"delay\":900,\"retention\":901}]}");
    assert_int_equal(c.n_queues, 1);
    const queue_config *q = config_queue(&c, "task1");
    assert_non_null(q);
    assert_int_equal(q->visibility_timeout, 120);
    assert_int_equal(q->max_receive_count, 0);
    assert_string_equal(q->dead_letter_queue, ""); /* the default's DLQ went with it */
    assert_int_equal(q->delay, 900);
    assert_int_equal(q->retention, 901);
    assert_null(config_queue(&c, "task1-dlq"));
    /* the other sections are still the defaults */
    assert_int_equal(c.n_subscriptions, 1);
    assert_int_equal(c.n_consumers, 1);
    assert_int_equal(c.n_handlers, 1);
    config_free(&c);

    /* a queue given by name only gets the queue defaults; a dead-letter queue keeps its messages
     * SQS's most, 14 days, as a dead letter's age counts from its first send in its source */
    load_ok(&c, "{\"queues\":[{\"name\":\"task1\",\"dead_letter_queue\":\"dead\"},"
                "{\"name\":\"dead\"}]}");
    assert_int_equal(c.n_queues, 2);
    q = config_queue(&c, "dead");
    assert_non_null(q);
    assert_int_equal(q->visibility_timeout, 60);
    assert_int_equal(q->max_receive_count, 3);
    assert_int_equal(q->delay, 0);
    assert_int_equal(q->retention, 14 * 24 * 3600);
    q = config_queue(&c, "task1");
    assert_string_equal(q->dead_letter_queue, "dead");
    assert_int_equal(q->retention, 4 * 24 * 3600);
    assert_int_equal(q->dead_letter_retention, 14 * 24 * 3600);
    config_free(&c);

    /* a queue knows its dead-letter queue's retention (one given is kept): a message moved there
     * keeps that long */
    load_ok(&c, "{\"queues\":[{\"name\":\"task1\",\"dead_letter_queue\":\"dead\",\"retention\":60},"
                "{\"name\":\"dead\",\"retention\":86400}]}");
    assert_int_equal(config_queue(&c, "task1")->dead_letter_retention, 86400);
    assert_int_equal(config_queue(&c, "dead")->dead_letter_retention, 0);
    config_free(&c);
    assert_true(config_defaults(&c));
    assert_int_equal(config_queue(&c, "task1")->dead_letter_retention, 14 * 24 * 3600);
    config_free(&c);
}

static void test_subscriptions_section_replaces(void **state)
{
    (void)state;
    config c;
    load_ok(&c, "{\"subscriptions\":[]}");
    assert_int_equal(c.n_subscriptions, 0);
    assert_int_equal(c.n_queues, 2);
    config_free(&c);

    load_ok(&c, "{\"subscriptions\":[{\"queue\":\"task1\"},"
                "{\"queue\":\"task1\",\"filter_policy\":{\"TaskType\":[\"TASK2\",\"TASK3\"]}},"
                "{\"queue\":\"task1\",\"filter_policy_scope\":\"MessageBody\","
                "\"filter_policy\":{\"data\":{\"k\":[1]}}}]}");
    assert_int_equal(c.n_subscriptions, 3);
    assert_string_equal(c.subscriptions[0].queue, "task1");
    assert_null(c.subscriptions[0].policy);
    assert_string_equal(c.subscriptions[1].queue, "task1");
    assert_non_null(c.subscriptions[1].policy);
    assert_int_equal(filter_policy_scope(c.subscriptions[1].policy), FILTER_SCOPE_ATTRIBUTES);
    assert_false(policy_matches_type(c.subscriptions[1].policy, "TASK1"));
    assert_true(policy_matches_type(c.subscriptions[1].policy, "TASK3"));
    assert_non_null(c.subscriptions[2].policy);
    assert_int_equal(filter_policy_scope(c.subscriptions[2].policy), FILTER_SCOPE_BODY);
    json_t *body = json_loads("{\"data\":{\"k\":1}}", 0, NULL);
    assert_true(filter_policy_match_body(c.subscriptions[2].policy, body));
    json_decref(body);
    config_free(&c);

    load_ok(&c, "{\"subscriptions\":[{\"queue\":\"task1\",\"filter_policy_scope\":"
                "\"MessageAttributes\",\"filter_policy\":{\"TaskType\":[\"TASK1\"]}}]}");
    assert_int_equal(filter_policy_scope(c.subscriptions[0].policy), FILTER_SCOPE_ATTRIBUTES);
    config_free(&c);
}

static void test_consumers_section_replaces(void **state)
{
    (void)state;
    config c;
    load_ok(&c, "{\"stream_consumers\":[{\"name\":\"c1\"},{\"name\":\"c2\",\"action\":\"publish\","
                "\"filter_patterns\":[{\"eventName\":[\"MODIFY\"]},{\"eventName\":[\"REMOVE\"]}],"
                "\"batch_size\":7,\"maximum_retry_attempts\":0}]}");
    assert_int_equal(c.n_consumers, 2);
    assert_string_equal(c.consumers[0].name, "c1");
    assert_string_equal(c.consumers[0].action, "publish");
    assert_null(c.consumers[0].filter);
    assert_int_equal(c.consumers[0].batch_size, 100);
    assert_int_equal(c.consumers[0].maximum_retry_attempts, 5);
    assert_string_equal(c.consumers[1].name, "c2");
    assert_non_null(c.consumers[1].filter);
    assert_int_equal(filter_set_count(c.consumers[1].filter), 2);
    assert_false(set_matches_event(c.consumers[1].filter, "INSERT"));
    assert_true(set_matches_event(c.consumers[1].filter, "MODIFY"));
    assert_true(set_matches_event(c.consumers[1].filter, "REMOVE"));
    assert_int_equal(c.consumers[1].batch_size, 7);
    assert_int_equal(c.consumers[1].maximum_retry_attempts, 0);
    config_free(&c);

    load_ok(&c, "{\"stream_consumers\":[]}");
    assert_int_equal(c.n_consumers, 0);
    config_free(&c);
}

static void test_handlers_section_replaces(void **state)
{
    (void)state;
    config c;
    load_ok(&c, "{\"queues\":[{\"name\":\"task1\"},{\"name\":\"other\"}],"
                "\"handlers\":[{\"queue\":\"task1\",\"handler\":\"exec\","
                "\"command\":[\"/bin/echo\",\"hello world\"],\"timeout\":60,\"concurrency\":256,"
                "\"batch_size\":1000,\"cpu_limit\":90,\"memory_limit\":256,\"open_files\":64},"
                "{\"queue\":\"other\",\"handler\":\"noop\"}]}");
    assert_int_equal(c.n_handlers, 2);
    const handler_config *h = &c.handlers[0];
    assert_string_equal(h->queue, "task1");
    assert_string_equal(h->handler, "exec");
    assert_non_null(h->command);
    assert_string_equal(h->command[0], "/bin/echo");
    assert_string_equal(h->command[1], "hello world");
    assert_null(h->command[2]);
    assert_int_equal(h->timeout, 60);
    assert_int_equal(h->concurrency, 256);
    assert_int_equal(h->batch_size, 1000);
    assert_int_equal(h->cpu_limit, 90);
    assert_int_equal(h->memory_limit, 256);
    assert_int_equal(h->open_files, 64);
    h = &c.handlers[1];
    assert_string_equal(h->handler, "noop");
    assert_null(h->command);
    assert_int_equal(h->cpu_limit + h->memory_limit + h->open_files, 0); /* the defaults */
    /* per-handler defaults differ from the default handler's concurrency of 8 */
    assert_int_equal(h->concurrency, 1);
    assert_int_equal(h->batch_size, 1);
    assert_int_equal(h->timeout, 30);
    config_free(&c);

    load_ok(&c, "{\"handlers\":[]}");
    assert_int_equal(c.n_handlers, 0);
    config_free(&c);
}

static void test_whole_pipeline(void **state)
{
    (void)state;
    config c;
    load_ok(&c, "{\"topic\":\"t\",\"task_types\":[\"A\",\"B\"],"
                "\"queues\":[{\"name\":\"qa\",\"dead_letter_queue\":\"dlq\","
                "\"visibility_timeout\":300},{\"name\":\"qb\"},{\"name\":\"dlq\"}],"
                "\"subscriptions\":[{\"queue\":\"qa\",\"filter_policy\":{\"TaskType\":[\"A\"]}},"
                "{\"queue\":\"qb\",\"filter_policy\":{\"TaskType\":[\"B\"]}}],"
                "\"stream_consumers\":[{\"name\":\"pub\",\"filter_patterns\":"
                "[{\"eventName\":[\"INSERT\"]}]}],"
                "\"handlers\":[{\"queue\":\"qa\",\"handler\":\"exec\",\"command\":[\"true\"],"
                "\"timeout\":300},{\"queue\":\"qb\",\"handler\":\"noop\",\"timeout\":60}]}");
    assert_string_equal(c.topic, "t");
    assert_int_equal(c.n_queues, 3);
    assert_int_equal(c.n_subscriptions, 2);
    assert_int_equal(c.n_consumers, 1);
    assert_int_equal(c.n_handlers, 2);
    assert_int_equal(c.handlers[0].timeout, 300);
    assert_string_equal(c.handlers[0].command[0], "true");
    config_free(&c);
}

/* A stream consumer's patterns are measured as written: 75 ranges of decimals (2,500-odd
 * characters) are within Lambda's 4,096, though json_dumps writes each number at 17 digits. */
static void test_patterns_with_decimals_within_the_size(void **state)
{
    (void)state;
    sbuf t = {0};
    sbuf_puts(&t, "{\"stream_consumers\":[{\"name\":\"pub\",\"filter_patterns\":[{\"n\":[");
    for (int i = 0; i < 75; i++)
        sbuf_printf(&t, "%s{\"numeric\":[\">\",%d.1,\"<=\",%d.2]}", i ? "," : "", i, i);
    sbuf_puts(&t, "]}]}]}");
    assert_false(t.failed);
    config c;
    load_ok(&c, t.data);
    assert_non_null(c.consumers[0].filter);
    config_free(&c);
    sbuf_free(&t);
}

static void test_load_twice_replaces(void **state)
{
    (void)state;
    /* a second load over a loaded config replaces sections without leaking the first */
    config c;
    char err[512];
    load_ok(&c, "{\"task_types\":[\"A\"],\"handlers\":[{\"queue\":\"task1\",\"handler\":"
                "\"exec\",\"command\":[\"x\",\"y\"]}],\"stream_consumers\":[{\"name\":\"p\","
                "\"filter_patterns\":[{\"eventName\":[\"INSERT\"]}]}]}");
    assert_true(config_load_text(&c,
                                 "{\"task_types\":[\"B\",\"C\"],\"handlers\":[{\"queue\":\"task1\","
                                 "\"handler\":\"exec\",\"command\":[\"z\"]}],\"subscriptions\":[],"
                                 "\"stream_consumers\":[{\"name\":\"q\"}]}",
                                 "cfg2", err, sizeof err));
    assert_int_equal(c.n_task_types, 2);
    assert_string_equal(c.task_types[0], "B");
    assert_int_equal(c.n_handlers, 1);
    assert_string_equal(c.handlers[0].command[0], "z");
    assert_null(c.handlers[0].command[1]);
    assert_int_equal(c.n_subscriptions, 0);
    assert_string_equal(c.consumers[0].name, "q");
    assert_null(c.consumers[0].filter);
    config_free(&c);
}

static void test_load_file(void **state)
{
    (void)state;
    char path[] = "/tmp/taskd-test-config-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = "{\n  \"body_limit\": 4096,\n  \"task_types\": [\"F\"]\n}\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    config c;
    char err[512] = "";
    assert_true(config_defaults(&c));
    assert_true(config_load_file(&c, path, err, sizeof err));
    assert_int_equal(c.body_limit, 4096);
    assert_string_equal(c.task_types[0], "F");
    config_free(&c);

    /* errors carry the path */
    fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    text = "{\n  \"body_limit\": 4096,\n  \"nope\": 1\n}\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    assert_true(config_defaults(&c));
    assert_false(config_load_file(&c, path, err, sizeof err));
    assert_int_equal(strncmp(err, path, strlen(path)), 0);
    assert_non_null(strstr(err, "unknown key \"nope\""));
    config_free(&c);
    unlink(path);

    assert_true(config_defaults(&c));
    assert_false(config_load_file(&c, path, err, sizeof err)); /* gone */
    assert_int_equal(strncmp(err, path, strlen(path)), 0);
    config_free(&c);
}

/* What cannot be read is said plainly, not as a parse error at line -1. */
static void check_unreadable(const char *path, const char *why)
{
    config c;
    char err[512] = "", want[256];
    assert_true(config_defaults(&c));
    assert_false(config_load_file(&c, path, err, sizeof err));
    snprintf(want, sizeof want, "%s: cannot read the configuration: %s", path, why);
    assert_string_equal(err, want);
    config_free(&c);
}

static void test_load_file_unreadable(void **state)
{
    (void)state;
    check_unreadable("/", "it is a directory");
    check_unreadable("/proc/self/mem", "Input/output error"); /* opens, then fails to read */
    check_unreadable("/dev/zero", "it is 16 MiB or larger");
    /* a regular file that large is refused by its size, unread */
    char path[] = "/tmp/taskd-test-config-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 16 << 20), 0);
    close(fd);
    check_unreadable(path, "it is 16 MiB or larger");
    unlink(path);
}

/* A UTF-8 byte order mark before the text, as some editors write one, is skipped. */
static void test_load_skips_byte_order_mark(void **state)
{
    (void)state;
    config c;
    load_ok(&c, "\xef\xbb\xbf{\"body_limit\": 4096}");
    assert_int_equal(c.body_limit, 4096);
    config_free(&c);
    load_fails("\xef\xbb\xbf\xef\xbb\xbf{}", "cfg:1:", NULL); /* one, not any number */
}

/* ---- errors ---- */

static void test_error_invalid_json(void **state)
{
    (void)state;
    load_fails("{\n  \"body_limit\": ,\n}", "cfg:2:", NULL);
    load_fails("", "cfg:", NULL);
    load_fails("{\"body_limit\": 1", "cfg:1:", NULL);
    load_fails("{\"a\":1,\n\n\"a\":2}", "cfg:3:", "duplicate");

    config c;
    char err[512];
    assert_true(config_defaults(&c));
    assert_false(config_load_text(&c, "{\n\n   x}", "cfg", err, sizeof err));
    /* name:line:column: text */
    int line = 0, col = 0;
    assert_int_equal(sscanf(err, "cfg:%d:%d:", &line, &col), 2);
    assert_int_equal(line, 3);
    assert_true(col >= 4);
    config_free(&c);

    load_fails("[]", "must be a JSON object", NULL);
    load_fails("\"x\"", "cfg:1:", "expected"); /* a bare scalar is not even read */
}

static void test_error_unknown_keys(void **state)
{
    (void)state;
    load_fails("{\"nope\":1}", "unknown key \"nope\"", NULL);
    load_fails("{\"Body_limit\":1024}", "unknown key \"Body_limit\"", NULL);
    load_fails("{\"queues\":[{\"name\":\"task1\",\"visibility\":5}]}", "queues[0]",
               "unknown key \"visibility\"");
    /* a handler on a dead-letter queue would drop every dead letter: its task has FAILED */
    load_fails("{\"handlers\":[{\"queue\":\"task1\",\"handler\":\"TASK1\"},"
               "{\"queue\":\"task1-dlq\",\"handler\":\"noop\"}]}",
               "handlers[1]", "queue \"task1-dlq\" is the dead-letter queue of queue \"task1\"");
    load_fails("{\"queues\":[{\"name\":\"task1\"},{\"name\":\"q\",\"dlq\":\"task1\"}]}",
               "queues[1]", "unknown key \"dlq\"");
    load_fails("{\"subscriptions\":[{\"queue\":\"task1\",\"policy\":{}}]}", "subscriptions[0]",
               "unknown key \"policy\"");
    load_fails("{\"stream_consumers\":[{\"name\":\"p\",\"filters\":[]}]}", "stream_consumers[0]",
               "unknown key \"filters\"");
    load_fails("{\"handlers\":[{\"queue\":\"task1\",\"handler\":\"noop\",\"args\":[]}]}",
               "handlers[0]", "unknown key \"args\"");
}

static void test_error_task_types(void **state)
{
    (void)state;
    load_fails("{\"task_types\":[\"A B\"]}", "task_types[0]", NULL);
    load_fails("{\"task_types\":[\"A\",\"\"]}", "task_types[1]", NULL);
    load_fails("{\"task_types\":[\"A\",5]}", "task_types[1]", NULL);
    load_fails("{\"task_types\":[\"A\",\"B/C\"]}", "task_types[1]", NULL);
    load_fails("{\"task_types\":[\"A\",\"caf\xc3\xa9\"]}", "task_types[1]", NULL);
    char name[70];
    memset(name, 'N', 65);
    name[65] = '\0';
    char text[128];
    snprintf(text, sizeof text, "{\"task_types\":[\"%s\"]}", name);
    load_fails(text, "task_types[0]", NULL);
    load_fails("{\"task_types\":[\"A\",\"B\",\"A\"]}", "task_types lists \"A\" twice", NULL);
    load_fails("{\"task_types\":[]}", "task_types must be a non-empty array", NULL);
    load_fails("{\"task_types\":\"TASK1\"}", "task_types must be a non-empty array", NULL);

    char big[65 * 8 + 32];
    size_t p = (size_t)snprintf(big, sizeof big, "{\"task_types\":[");
    for (int i = 0; i < 65; i++)
        p += (size_t)snprintf(big + p, sizeof big - p, "%s\"T%d\"", i ? "," : "", i);
    snprintf(big + p, sizeof big - p, "]}");
    load_fails(big, "at most 64", NULL);

    /* a failed task_types leaves the previous list in place */
    config c;
    char err[512];
    assert_true(config_defaults(&c));
    assert_false(config_load_text(&c, "{\"task_types\":[\"A\",\"A\"]}", "cfg", err, sizeof err));
    assert_int_equal(c.n_task_types, 3);
    assert_string_equal(c.task_types[0], "TASK1");
    config_free(&c);
}

static void test_error_topic(void **state)
{
    (void)state;
    load_fails("{\"topic\":\"\"}", "topic must be", NULL);
    load_fails("{\"topic\":\"a b\"}", "topic must be", NULL);
    load_fails("{\"topic\":7}", "topic must be", NULL);
}

static void test_error_queues(void **state)
{
    (void)state;
    load_fails("{\"queues\":[{\"name\":\"task1\"},{\"name\":\"task1-dlq\"},{\"name\":\"task1\"}]}",
               "queue \"task1\" is declared twice", NULL);
    /* a message delayed past its retention expires before anyone may receive it */
    load_fails("{\"queues\":[{\"name\":\"task1\",\"delay\":90,\"retention\":60}]}",
               "queue \"task1\": delay (90 s) must be shorter than retention (60 s)", NULL);
    load_fails("{\"queues\":[{\"name\":\"task1\",\"delay\":60,\"retention\":60}]}",
               "delay (60 s) must be shorter than retention (60 s)", NULL);
    load_fails("{\"queues\":[{\"name\":\"task1\",\"dead_letter_queue\":\"task1\"}]}",
               "queue \"task1\": dead_letter_queue \"task1\" must be another declared queue", NULL);
    load_fails("{\"queues\":[{\"name\":\"task1\",\"dead_letter_queue\":\"gone\"}]}",
               "queue \"task1\": dead_letter_queue \"gone\" must be another declared queue", NULL);
    load_fails(
        "{\"queues\":[{\"name\":\"a\",\"dead_letter_queue\":\"b\"},"
        "{\"name\":\"b\",\"dead_letter_queue\":\"a\"}],\"subscriptions\":[],\"handlers\":[]}",
        "queue \"a\": its dead-letter queues lead back to it (a cycle)", NULL);
    load_fails("{\"queues\":[{\"name\":\"a\",\"dead_letter_queue\":\"b\"},"
               "{\"name\":\"b\",\"dead_letter_queue\":\"c\"},{\"name\":\"c\",\"dead_letter_queue\":"
               "\"b\"}],"
               "\"subscriptions\":[],\"handlers\":[]}",
               "queues \"a\" and \"c\" share the dead_letter_queue \"b\"", NULL);
    /* two queues, one dead-letter queue: a redrive could not tell whose a message was */
    load_fails("{\"queues\":[{\"name\":\"a\",\"dead_letter_queue\":\"d\"},"
               "{\"name\":\"b\",\"dead_letter_queue\":\"d\"},{\"name\":\"d\"}],"
               "\"subscriptions\":[],\"handlers\":[]}",
               "queues \"a\" and \"b\" share the dead_letter_queue \"d\"", NULL);
    load_fails("{\"queues\":[{\"visibility_timeout\":5}]}", "queues[0]", "\"name\" is required");
    load_fails("{\"queues\":[{\"name\":\"a b\"}]}", "queues[0]", "\"name\" must be");
    load_fails("{\"queues\":[{\"name\":\"task1\",\"dead_letter_queue\":5}]}", "queues[0]",
               "\"dead_letter_queue\" must be");
    load_fails("{\"queues\":[5]}", "queues[0]", "must be an object");
    load_fails("{\"queues\":{}}", "queues must be an array of at most 32 objects", NULL);
    /* replacing the queues leaves the default subscription and handler without theirs */
    load_fails("{\"queues\":[{\"name\":\"other\"}]}",
               "the default subscriptions[0] (no \"subscriptions\" given): no queue \"task1\"",
               NULL);
    load_fails("{\"queues\":[{\"name\":\"other\"}],\"subscriptions\":[]}",
               "the default handlers[0] (no \"handlers\" given): no queue \"task1\"", NULL);

    char big[33 * 24 + 64];
    size_t p = (size_t)snprintf(big, sizeof big, "{\"queues\":[{\"name\":\"task1\"}");
    for (int i = 0; i < 32; i++)
        p += (size_t)snprintf(big + p, sizeof big - p, ",{\"name\":\"q%d\"}", i);
    snprintf(big + p, sizeof big - p, "]}");
    load_fails(big, "queues must be an array of at most 32 objects", NULL);
}

static void test_error_subscriptions(void **state)
{
    (void)state;
    load_fails("{\"subscriptions\":[{\"queue\":\"nope\"}]}", "subscriptions[0]: no queue \"nope\"",
               NULL);
    load_fails("{\"subscriptions\":[{\"queue\":\"task1\"},{\"queue\":\"task1\"},"
               "{\"queue\":\"zzz\"}]}",
               "subscriptions[2]: no queue \"zzz\"", NULL);
    /* a dead-letter queue holds its queue's dead letters, and nothing routed to it */
    load_fails("{\"subscriptions\":[{\"queue\":\"task1\"},{\"queue\":\"task1-dlq\"}]}",
               "subscriptions[1]: queue \"task1-dlq\" is the dead-letter queue of queue \"task1\"",
               NULL);
    load_fails("{\"subscriptions\":[{\"filter_policy\":{}}]}", "subscriptions[0]",
               "\"queue\" is required");
    load_fails("{\"subscriptions\":[{\"queue\":\"task1\",\"filter_policy\":"
               "{\"TaskType\":{\"nested\":[\"x\"]}}}]}",
               "subscriptions[0]: filter_policy: ", "nested");
    load_fails("{\"subscriptions\":[{\"queue\":\"task1\",\"filter_policy\":{\"TaskType\":[]}}]}",
               "subscriptions[0]: filter_policy: ", "empty");
    load_fails("{\"subscriptions\":[{\"queue\":\"task1\",\"filter_policy\":[\"TASK1\"]}]}",
               "subscriptions[0]: filter_policy: ", NULL);
    load_fails("{\"subscriptions\":[{\"queue\":\"task1\",\"filter_policy_scope\":\"Body\"}]}",
               "subscriptions[0]", "\"filter_policy_scope\" must be");
    load_fails("{\"subscriptions\":[{\"queue\":\"task1\",\"filter_policy_scope\":null}]}",
               "subscriptions[0]", "\"filter_policy_scope\" must be");
}

static void test_error_consumers(void **state)
{
    (void)state;
    load_fails("{\"stream_consumers\":[{\"name\":\"p\",\"action\":\"exec\"}]}",
               "stream_consumers[0]", "unknown action \"exec\" (known: publish)");
    load_fails("{\"stream_consumers\":[{\"name\":\"p\",\"action\":\"\"}]}", "stream_consumers[0]",
               "\"action\" must be");
    load_fails("{\"stream_consumers\":[{\"action\":\"publish\"}]}", "stream_consumers[0]",
               "\"name\" is required");
    load_fails("{\"stream_consumers\":[{\"name\":\"p\",\"filter_patterns\":"
               "[{\"eventName\":[\"INSERT\"]},{\"eventName\":\"MODIFY\"}]}]}",
               "stream_consumers[0]: filter_patterns: ", "filter 1");
    load_fails("{\"stream_consumers\":[{\"name\":\"p\",\"filter_patterns\":[{\"eventName\":[]}]}]}",
               "stream_consumers[0]: filter_patterns: ", "empty");
    load_fails("{\"stream_consumers\":[{\"name\":\"p\",\"filter_patterns\":{}}]}",
               "stream_consumers[0]", "must be an array of at most 10 patterns");
    load_fails("{\"stream_consumers\":[{\"name\":\"p\",\"filter_patterns\":[{},{},{},{},{},{},{},"
               "{},{},{},{}]}]}",
               "stream_consumers[0]", "must be an array of at most 10 patterns");
    load_fails("{\"stream_consumers\":[{\"name\":\"p\"},{\"name\":\"p\"}]}",
               "stream consumer \"p\" is declared twice", NULL);
}

static void test_error_handlers(void **state)
{
    (void)state;
    /* one handler per queue, as one AWS worker function serves one queue */
    load_fails("{\"handlers\":[{\"queue\":\"task1\",\"handler\":\"noop\"},"
               "{\"queue\":\"task1\",\"handler\":\"TASK1\"}]}",
               "handlers[1]: queue \"task1\" has a handler already (handlers[0])", NULL);
    load_fails("{\"handlers\":[{\"queue\":\"task1\",\"handler\":\"exec\"}]}", "handlers[0]",
               "\"command\" (an argv array) is required for exec");
    load_fails("{\"handlers\":[{\"queue\":\"task1\",\"handler\":\"noop\",\"command\":[\"x\"]}]}",
               "handlers[0]", "\"command\" is only for the exec handler");
    load_fails("{\"handlers\":[{\"queue\":\"task1\",\"handler\":\"noop\",\"open_files\":64}]}",
               "handlers[0]", "\"open_files\" is only for the exec handler");
    load_refused("{\"handlers\":[{\"queue\":\"task1\",\"handler\":\"exec\",\"command\":[\"x\"],"
                 "\"memory_limit\":8}]}",
                 "handlers[0]: \"memory_limit\" must be an integer from 16 to 1048576 MiB");
    load_refused("{\"handlers\":[{\"queue\":\"task1\",\"handler\":\"exec\",\"command\":[\"x\"],"
                 "\"cpu_limit\":0}]}",
                 "handlers[0]: \"cpu_limit\" must be an integer from 1 to 43200 CPU seconds");
    load_refused("{\"handlers\":[{\"queue\":\"task1\",\"handler\":\"exec\",\"command\":[\"x\"],"
                 "\"open_files\":1048577}]}",
                 "handlers[0]: \"open_files\" must be an integer from 16 to 1048576 open files");
    load_refused("{\"handlers\":[{\"queue\":\"task1\",\"handler\":\"exec\",\"command\":[\"x\"],"
                 "\"timeout\":43201}]}",
                 "handlers[0]: \"timeout\" must be an integer from 1 to 43200 seconds");
    load_fails("{\"handlers\":[{\"queue\":\"task1\",\"handler\":\"exec\",\"command\":[]}]}",
               "handlers[0]", "\"command\" must be a non-empty array of strings");
    load_fails("{\"handlers\":[{\"queue\":\"task1\",\"handler\":\"exec\",\"command\":\"ls\"}]}",
               "handlers[0]", "\"command\" must be a non-empty array of strings");
    /* a non-string after a good one: the partial argv is freed (checked by ASan) */
    load_fails("{\"handlers\":[{\"queue\":\"task1\",\"handler\":\"exec\","
               "\"command\":[\"a\",\"b\",3]}]}",
               "handlers[0]", "\"command\" must be a non-empty array of strings");
    load_fails(
        "{\"handlers\":[{\"queue\":\"task1\",\"handler\":\"noop\",\"timeout\":61}]}",
        "cfg: handlers[0]: timeout (61 s) exceeds the visibility_timeout of queue \"task1\" (60 s)",
        NULL);
    /* a default the file did not give is named as such: the file does not show it */
    load_fails("{\"queues\":[{\"name\":\"task1\",\"visibility_timeout\":10}]}",
               "cfg: the default handlers[0] (no \"handlers\" given): timeout (30 s) exceeds the "
               "visibility_timeout of queue \"task1\" (10 s)",
               NULL);
    load_fails("{\"handlers\":[{\"queue\":\"task1\",\"handler\":\"noop\"},"
               "{\"queue\":\"nope\",\"handler\":\"noop\"}]}",
               "handlers[1]: no queue \"nope\"", NULL);
    load_fails("{\"handlers\":[{\"queue\":\"task1\"}]}", "handlers[0]", "\"handler\" is required");
    load_fails("{\"handlers\":[{\"handler\":\"noop\"}]}", "handlers[0]", "\"queue\" is required");

    /* equal timeouts are fine */
    config c;
    load_ok(&c, "{\"handlers\":[{\"queue\":\"task1\",\"handler\":\"noop\",\"timeout\":60}]}");
    assert_int_equal(c.handlers[0].timeout, 60);
    config_free(&c);
}

static void test_error_numbers_out_of_range(void **state)
{
    (void)state;
    load_refused("{\"body_limit\":63}", "body_limit must be an integer from 64 to 67108864 bytes");
    load_refused("{\"body_limit\":67108865}",
                 "body_limit must be an integer from 64 to 67108864 bytes");
    load_refused("{\"body_limit\":\"1024\"}",
                 "body_limit must be an integer from 64 to 67108864 bytes");
    load_refused("{\"body_limit\":1024.0}",
                 "body_limit must be an integer from 64 to 67108864 bytes");
    load_refused("{\"retention_grace\":-1}",
                 "retention_grace must be an integer from 0 to 2147483647 seconds");
    load_refused("{\"retention_grace\":2147483648}",
                 "retention_grace must be an integer from 0 to 2147483647 seconds");
    load_refused("{\"sweep_interval\":0}",
                 "sweep_interval must be an integer from 1 to 86400 seconds");
    load_refused("{\"sweep_interval\":86401}",
                 "sweep_interval must be an integer from 1 to 86400 seconds");
    load_refused("{\"shutdown_grace\":3601}",
                 "shutdown_grace must be an integer from 0 to 3600 seconds");
    load_refused("{\"shutdown_grace\":null}",
                 "shutdown_grace must be an integer from 0 to 3600 seconds");
    load_refused("{\"max_waiters\":-1}", "max_waiters must be an integer from 0 to 100000");
    load_refused("{\"max_event_clients\":10001}",
                 "max_event_clients must be an integer from 0 to 10000");
    load_refused("{\"event_buffer_bytes\":1023}",
                 "event_buffer_bytes must be an integer from 1024 to 67108864 bytes");
    load_refused("{\"event_replay\":86401}",
                 "event_replay must be an integer from 0 to 86400 seconds");
    load_refused("{\"event_ping_interval\":0}",
                 "event_ping_interval must be an integer from 1 to 15 seconds");
    load_refused("{\"event_ping_interval\":16}",
                 "event_ping_interval must be an integer from 1 to 15 seconds");
    load_refused("{\"claim_timeout\":2592001}",
                 "claim_timeout must be an integer from 0 to 2592000 seconds");
    load_refused("{\"max_in_flight\":0}", "max_in_flight must be an integer from 1 to 1000000");
    load_refused("{\"max_body_memory\":63}",
                 "max_body_memory must be an integer from 64 to 68719476736 bytes");
    load_refused("{\"max_connections\":-1}",
                 "max_connections must be an integer from 0 to 1000000");
    load_refused("{\"max_connections_per_client\":1000001}",
                 "max_connections_per_client must be an integer from 0 to 1000000");
    load_refused("{\"client_ipv6_prefix\":31}",
                 "client_ipv6_prefix must be an integer from 32 to 128 bits");
    load_refused("{\"client_ipv6_prefix\":129}",
                 "client_ipv6_prefix must be an integer from 32 to 128 bits");
    load_refused("{\"header_timeout\":0}",
                 "header_timeout must be an integer from 1 to 3600 seconds");
    load_refused("{\"idle_timeout\":3601}",
                 "idle_timeout must be an integer from 1 to 3600 seconds");
    load_refused("{\"min_send_rate\":0}",
                 "min_send_rate must be an integer from 1 to 1073741824 bytes");
    load_refused("{\"body_timeout\":3601}",
                 "body_timeout must be an integer from 1 to 3600 seconds");

    load_refused("{\"queues\":[{\"name\":\"task1\",\"visibility_timeout\":0}]}",
                 "queues[0]: \"visibility_timeout\" must be an integer from 1 to 43200 seconds");
    load_refused("{\"queues\":[{\"name\":\"task1\",\"visibility_timeout\":43201}]}",
                 "queues[0]: \"visibility_timeout\" must be an integer from 1 to 43200 seconds");
    load_refused("{\"queues\":[{\"name\":\"task1\",\"max_receive_count\":1001}]}",
                 "queues[0]: \"max_receive_count\" must be an integer from 0 to 1000");
    load_refused("{\"queues\":[{\"name\":\"task1\",\"delay\":901}]}",
                 "queues[0]: \"delay\" must be an integer from 0 to 900 seconds");
    load_refused("{\"queues\":[{\"name\":\"task1\",\"retention\":59}]}",
                 "queues[0]: \"retention\" must be an integer from 60 to 1209600 seconds");
    load_refused("{\"queues\":[{\"name\":\"task1\",\"delay\":-1}]}",
                 "queues[0]: \"delay\" must be an integer from 0 to 900 seconds");
    /* a value that would wrap to a valid unsigned is still refused */
    load_refused("{\"queues\":[{\"name\":\"task1\",\"delay\":4294967296}]}",
                 "queues[0]: \"delay\" must be an integer from 0 to 900 seconds");
    load_refused("{\"stream_consumers\":[{\"name\":\"p\",\"batch_size\":0}]}",
                 "stream_consumers[0]: \"batch_size\" must be an integer from 1 to 10000");
    load_refused(
        "{\"stream_consumers\":[{\"name\":\"p\",\"maximum_retry_attempts\":10001}]}",
        "stream_consumers[0]: \"maximum_retry_attempts\" must be an integer from 0 to 10000");
    load_refused("{\"handlers\":[{\"queue\":\"task1\",\"handler\":\"noop\",\"concurrency\":257}]}",
                 "handlers[0]: \"concurrency\" must be an integer from 1 to 256");
    load_refused("{\"handlers\":[{\"queue\":\"task1\",\"handler\":\"noop\",\"batch_size\":0}]}",
                 "handlers[0]: \"batch_size\" must be an integer from 1 to 1000");
    load_refused("{\"handlers\":[{\"queue\":\"task1\",\"handler\":\"noop\",\"timeout\":0}]}",
                 "handlers[0]: \"timeout\" must be an integer from 1 to 43200 seconds");
    load_refused("{\"handlers\":[{\"queue\":\"task1\",\"handler\":\"noop\",\"timeout\":\"5\"}]}",
                 "handlers[0]: \"timeout\" must be an integer from 1 to 43200 seconds");
}

static void test_error_message_truncates_safely(void **state)
{
    (void)state;
    /* a small buffer gets the message cut, marked and terminated */
    config c;
    char err[16];
    memset(err, 'x', sizeof err);
    assert_true(config_defaults(&c));
    assert_false(config_load_text(&c, "{\"a_rather_long_unknown_key\":1}", "cfg", err, sizeof err));
    assert_string_equal(err, "cfg: unknown...");
    config_free(&c);
}

/*
 * A section that fails its shape check after the defaults were released must
 * leave nothing to be freed twice (ASan fails the run otherwise).
 */
static void test_failed_section_frees_once(void **state)
{
    (void)state;
    const char *bad[] = {"{\"subscriptions\": 5}", "{\"stream_consumers\": {}}",
                         "{\"handlers\": 5}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        config c;
        char err[256];
        assert_true(config_defaults(&c));
        assert_true(config_load_text(
            &c, "{\"handlers\":[{\"queue\":\"task1\",\"handler\":\"exec\",\"command\":[\"x\"]}]}",
            "cfg", err, sizeof err));
        assert_false(config_load_text(&c, bad[i], "cfg", err, sizeof err));
        assert_non_null(strstr(err, "must be an array"));
        config_free(&c);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_queue_lookup),
        cmocka_unit_test(test_empty_object_keeps_defaults),
        cmocka_unit_test(test_tools_defaults_are_taskds),
        cmocka_unit_test(test_scalar_overrides),
        cmocka_unit_test(test_task_types_lengths),
        cmocka_unit_test(test_queues_section_replaces),
        cmocka_unit_test(test_subscriptions_section_replaces),
        cmocka_unit_test(test_consumers_section_replaces),
        cmocka_unit_test(test_handlers_section_replaces),
        cmocka_unit_test(test_whole_pipeline),
        cmocka_unit_test(test_patterns_with_decimals_within_the_size),
        cmocka_unit_test(test_load_twice_replaces),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_load_file_unreadable),
        cmocka_unit_test(test_load_skips_byte_order_mark),
        cmocka_unit_test(test_error_invalid_json),
        cmocka_unit_test(test_error_unknown_keys),
        cmocka_unit_test(test_error_task_types),
        cmocka_unit_test(test_error_topic),
        cmocka_unit_test(test_error_queues),
        cmocka_unit_test(test_error_subscriptions),
        cmocka_unit_test(test_error_consumers),
        cmocka_unit_test(test_error_handlers),
        cmocka_unit_test(test_error_numbers_out_of_range),
        cmocka_unit_test(test_error_message_truncates_safely),
        cmocka_unit_test(test_failed_section_frees_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
