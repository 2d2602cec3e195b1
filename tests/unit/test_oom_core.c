/*
 * The core under failing allocations (tests/unit/oom): each scenario runs once whole, then once
 * for every allocation it makes with that one failing, and with that one and all after it
 * failing. No run may crash, leave a block behind, or report success with a wrong result; a
 * run that fails must say so to its caller.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "oom.h"

#include "core/attrval.h"
#include "core/auth.h"
#include "core/config.h"
#include "core/filter.h"
#include "core/sbuf.h"
#include "core/span.h"
#include "core/task_event.h"
#include "core/validate.h"
#include "util/metrics.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* A result the code under test gave as a success must be right, failing allocations or not:
 * a wrong one fails the test (returning false would count as a failure it reported). */
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            fail_msg("%s: a wrong result (%s) after %zu failed allocations", __func__, #cond,      \
                     oom_failures());                                                              \
    } while (0)

/* ---- configuration ------------------------------------------------------ */

static const char CONFIG[] =
    "{\"task_types\":[\"A\",\"B\"],"
    "\"queues\":[{\"name\":\"q\",\"dead_letter_queue\":\"dlq\",\"max_receive_count\":2},"
    "{\"name\":\"dlq\"}],"
    "\"subscriptions\":[{\"queue\":\"q\",\"filter_policy\":{\"TaskType\":[\"A\",{\"prefix\":"
    "\"B\"}]}}],"
    "\"stream_consumers\":[{\"name\":\"p\",\"filter_patterns\":[{\"eventName\":[\"INSERT\"]},"
    "{\"dynamodb\":{\"NewImage\":{\"status\":{\"S\":[\"FAILED\"]}}}}]}],"
    "\"handlers\":[{\"queue\":\"q\",\"handler\":\"exec\",\"command\":[\"sh\",\"-c\",\"true\"]}]}";

static bool load_config(void *arg)
{
    (void)arg;
    config c;
    if (!config_defaults(&c))
        return false;
    char err[256] = "";
    bool ok = config_load_text(&c, CONFIG, "cfg", err, sizeof err);
    if (ok) {
        CHECK(c.n_task_types == 2 && strcmp(c.task_types[1], "B") == 0 && c.n_queues == 2);
        CHECK(c.n_subscriptions == 1 && c.subscriptions[0].policy);
        CHECK(c.n_consumers == 1 && c.consumers[0].filter && c.n_handlers == 1);
        CHECK(strcmp(c.handlers[0].command[2], "true") == 0);
    } else if (!*err) {
        fail_msg("config_load_text failed without a message");
    }
    config_free(&c);
    return ok;
}

static void test_config(void **state)
{
    (void)state;
    assert_true(oom_sweep("config", load_config, NULL) > 10);
}

/* ---- request bodies ----------------------------------------------------- */

static bool create_valid(void *arg)
{
    const config *c = arg;
    const char *body = "{\"task_type\":\"A\",\"ttl\":60,\"data\":{\"n\":[1,2.5,\"x\",null,true],"
                       "\"o\":{\"k\":\"v\"}}}";
    create_request r;
    validation v = {0};
    bool ok = validate_create(c, body, strlen(body), &r, &v);
    if (ok) {
        CHECK(strcmp(r.task_type, "A") == 0 && r.ttl == 60 && r.data && r.data_image);
        CHECK(strstr(r.data, "\"o\":{\"k\":\"v\"}") && strstr(r.data_image, "\"M\""));
        create_request_free(&r);
    } else if (!sbuf_failed(&v.items)) {
        /* the body is valid: its failure must be the list's own (a 500), not an item (a 422
         * telling the client its body is wrong) */
        fail_msg("a valid body failed with %d error items", v.count);
    }
    validation_free(&v);
    return ok;
}

static bool create_invalid(void *arg)
{
    const config *c = arg;
    const char *body = "{\"task_type\":\"NOPE\",\"ttl\":\"soon\",\"data\":[1]}";
    create_request r;
    validation v = {0};
    if (validate_create(c, body, strlen(body), &r, &v))
        fail_msg("accepted an invalid body");
    size_t len = 0;
    char *out = validation_body(&v, &len); /* NULL: the answer is a 500 */
    if (out) {                             /* the 422 sent must be the right one */
        oom_pause();
        json_t *j = json_loadb(out, len, 0, NULL);
        oom_resume();
        json_t *detail = json_object_get(j, "detail");
        const char *types[3];
        for (size_t i = 0; i < 3; i++)
            types[i] = json_string_value(json_object_get(json_array_get(detail, i), "type"));
        bool right = v.count == 3 && json_array_size(detail) == 3 && types[0] && types[1] &&
                     types[2] && strcmp(types[0], "literal_error") == 0 &&
                     strcmp(types[1], "dict_type") == 0 && strcmp(types[2], "int_parsing") == 0;
        json_decref(j);
        if (!right)
            fail_msg("an invalid body answered wrong: %s", out);
    }
    bool ok = out != NULL;
    free(out);
    validation_free(&v);
    return ok;
}

static void test_request_bodies(void **state)
{
    (void)state;
    config c;
    assert_true(config_defaults(&c));
    char err[256];
    assert_true(config_load_text(&c, CONFIG, "cfg", err, sizeof err));
    oom_sweep("validate_create, valid", create_valid, &c);
    oom_sweep("validate_create, invalid", create_invalid, &c);
    config_free(&c);
}

/* ---- filters ------------------------------------------------------------ */

static bool filter_policies(void *arg)
{
    (void)arg;
    char err[256] = "";
    filter_policy *p = filter_policy_compile(
        "{\"TaskType\":[\"A\",{\"prefix\":\"TA\"},{\"anything-but\":[\"X\",\"Y\"]}],"
        "\"n\":[{\"numeric\":[\">\",1,\"<=\",5]}],\"$or\":[{\"a\":[{\"exists\":true}]},"
        "{\"b\":[\"z\"]}]}",
        FILTER_SCOPE_ATTRIBUTES, err, sizeof err);
    if (!p) {
        if (!*err)
            fail_msg("filter_policy_compile failed without a message");
        return false;
    }
    filter_attr yes[] = {{"TaskType", NULL, "TASK1"}, {"n", "Number", "3"}, {"b", NULL, "z"}};
    filter_attr no[] = {{"TaskType", NULL, "TASK1"}, {"n", "Number", "9"}, {"b", NULL, "z"}};
    CHECK(filter_policy_match_attrs(p, yes, 3) && !filter_policy_match_attrs(p, no, 3));
    filter_policy_free(p);

    const char *patterns[] = {"{\"eventName\":[\"INSERT\"],\"dynamodb\":{\"NewImage\":"
                              "{\"task_type\":{\"S\":[{\"prefix\":\"TASK\"}]}}}}",
                              "{\"eventName\":[\"REMOVE\"]}"};
    filter_set *s = filter_set_compile(patterns, 2, err, sizeof err);
    if (!s)
        return false;
    oom_pause(); /* the record is the test's */
    json_t *rec = json_loads("{\"eventName\":\"INSERT\",\"dynamodb\":{\"NewImage\":"
                             "{\"task_type\":{\"S\":\"TASK1\"}}}}",
                             0, NULL);
    oom_resume();
    CHECK(filter_set_match(s, rec));
    json_decref(rec);
    filter_set_free(s);
    return true;
}

static void test_filters(void **state)
{
    (void)state;
    assert_true(oom_sweep("filters", filter_policies, NULL) > 10);
}

/* ---- change records and events ------------------------------------------ */

static bool images_and_events(void *arg)
{
    (void)arg;
    char *image = attrval_from_text("{\"id\":\"x\",\"list\":[1,\"two\",{\"three\":3}],"
                                    "\"flag\":false,\"none\":null}",
                                    NULL);
    if (!image)
        return false;
    oom_pause(); /* the text made is read back by the test */
    json_t *parsed = json_loads(image, 0, NULL);
    oom_resume();
    free(image);
    json_t *back = attrval_to_json(parsed);
    json_decref(parsed);
    if (!back)
        return false;
    CHECK(json_integer_value(json_array_get(json_object_get(back, "list"), 0)) == 1);
    CHECK(json_is_null(json_object_get(back, "none")) &&
          json_is_false(json_object_get(back, "flag")));
    json_decref(back);

    task t = {.status = TASK_FAILED,
              .status_msg = "it broke",
              .created_time = 100,
              .updated_time = 200,
              .ttl = TASK_NULL_TIME,
              .data = "{\"k\":\"v\"}",
              .result = "{\"r\":[1]}",
              .trace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"};
    memcpy(t.id, "0190f3c2-aaaa-7000-8000-000000000001", 37);
    memcpy(t.task_type, "TASK1", 6);
    sbuf b = {0};
    if (!attrval_task_image(&b, &t, NULL) || sbuf_failed(&b)) {
        sbuf_free(&b);
        return false;
    }
    change_row row = {.seq = 7,
                      .event_name = "MODIFY",
                      .task_id = t.id,
                      .new_image = b.data,
                      .old_image = b.data,
                      .time = 200};
    task_event e;
    task_event_rc rc = task_event_from_row(&row, &e);
    sbuf_free(&b);
    if (rc != TASK_EVENT_TOLD) { /* a row that has an event: only memory can have failed */
        CHECK(rc == TASK_EVENT_NO_MEMORY && !e.status_msg);
        return false;
    }
    CHECK(strcmp(e.status, "FAILED") == 0 && e.status_msg && strcmp(e.status_msg, "it broke") == 0);
    sbuf sse = {0};
    task_event_sse(&sse, &e);
    bool ok = !sbuf_failed(&sse);
    if (ok)
        CHECK(strstr(sse.data, "it broke") && strstr(sse.data, "id: 7\n"));
    sbuf_free(&sse);
    task_event_clear(&e);
    return ok;
}

/* A map whose first member is a number: a conversion that fails must say it ran out. */
static bool plain_of_attribute_value(void *arg)
{
    const json_t *av = arg;
    errno = 0;
    json_t *plain = attrval_to_json(av);
    if (!plain) {
        if (errno != ENOMEM)
            fail_msg("attrval_to_json failed without ENOMEM");
        return false;
    }
    CHECK(json_integer_value(json_object_get(plain, "n")) == 1 &&
          json_real_value(json_array_get(json_object_get(plain, "l"), 0)) == 2.5);
    json_decref(plain);
    return true;
}

static void test_change_images_and_events(void **state)
{
    (void)state;
    assert_true(oom_sweep("images and events", images_and_events, NULL) > 5);
    json_t *av = json_loads("{\"M\":{\"n\":{\"N\":\"1\"},\"l\":{\"L\":[{\"N\":\"2.5\"},"
                            "{\"S\":\"x\"}]}}}",
                            0, NULL);
    assert_non_null(av);
    assert_true(oom_sweep("attribute value to JSON", plain_of_attribute_value, av) > 3);
    json_decref(av);
}

/* ---- tokens ------------------------------------------------------------- */

static bool tokens(void *arg)
{
    (void)arg;
    static const uint8_t key[AUTH_KEY_LEN] = {1, 2, 3};
    auth_policy p;
    auth_init(&p, key);
    char err[200] = "";
    const char *lines = "# comment\nfirst-token-0123456789abcdef\n\nsecond-token-0123456789abcd\n";
    bool ok = auth_parse_token_lines(&p, lines, strlen(lines), err, sizeof err) &&
              auth_parse_hosts(&p, "example.com,api.example.com:8080", err, sizeof err);
    if (ok)
        CHECK(auth_token_ok(&p, "second-token-0123456789abcd", 27) &&
              !auth_token_ok(&p, "third-token-0123456789abcde", 27) &&
              auth_host_allowed(&p, "api.example.com:8080"));
    else if (!*err)
        fail_msg("a token or host list failed without a message");
    auth_free(&p);
    return ok;
}

static void test_tokens(void **state)
{
    (void)state;
    oom_sweep("tokens and hosts", tokens, NULL);
}

/* ---- metrics ------------------------------------------------------------ */

/* Whether each line of text is a JSON object. */
static bool json_lines(const char *text, size_t len)
{
    for (size_t at = 0; at < len;) {
        const char *nl = memchr(text + at, '\n', len - at);
        if (!nl)
            return false;
        json_t *o = json_loadb(text + at, (size_t)(nl - text - at), 0, NULL);
        bool obj = json_is_object(o);
        json_decref(o);
        if (!obj)
            return false;
        at = (size_t)(nl - text) + 1;
    }
    return true;
}

static bool metrics_text_and_emf(void *arg)
{
    (void)arg;
    metrics *m = metrics_new();
    if (!m)
        return false;
    static const double buckets[] = {0.1, 1};
    metrics_declare(m, "req_total", "Requests.", METRIC_COUNTER, NULL, 0);
    metrics_declare(m, "lat", "Latency.", METRIC_HISTOGRAM, buckets, 2);
    metrics_declare(m, "depth", "Depth.", METRIC_GAUGE, NULL, 0);
    metrics_keep_observations(m);
    for (int i = 0; i < 30; i++) {
        metrics_add(m, "req_total", i % 2 ? "code=\"200\"" : "code=\"500\"", 1);
        metrics_observe(m, "lat", i % 3 ? "route=\"/a\"" : "route=\"/b\"", i * 0.05);
    }
    metrics_set(m, "depth", "queue=\"q\"", 4);
    sbuf text = {0};
    metrics_write(m, &text);
    bool ok = !sbuf_failed(&text);
    /* a series that could not be made is left out (or counts from when it could): what is
     * written must still be whole lines */
    if (ok && oom_failures() == 0)
        CHECK(strstr(text.data, "req_total{code=\"200\"} 15\n") &&
              strstr(text.data, "lat_count{route=\"/b\"} 10\n") &&
              strstr(text.data, "depth{queue=\"q\"} 4\n"));
    else if (ok)
        CHECK(text.len == 0 || text.data[text.len - 1] == '\n');
    sbuf_free(&text);

    metrics_emf o = {.namespace_ = "ns", .service = "svc", .timestamp_ms = 1};
    sbuf emf = {0};
    metrics_write_emf(m, &o, &emf);
    if (ok && !sbuf_failed(&emf)) {
        oom_pause();
        CHECK(json_lines(emf.data ? emf.data : "", emf.len));
        oom_resume();
        if (oom_failures() == 0)
            CHECK(strstr(emf.data, "\"req_total\":15") && strstr(emf.data, "\"depth\":4"));
    }
    ok = ok && !sbuf_failed(&emf);
    sbuf_free(&emf);
    metrics_free(m);
    return ok;
}

static void test_metrics(void **state)
{
    (void)state;
    assert_true(oom_sweep("metrics", metrics_text_and_emf, NULL) > 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_config, oom_teardown),
        cmocka_unit_test_teardown(test_request_bodies, oom_teardown),
        cmocka_unit_test_teardown(test_filters, oom_teardown),
        cmocka_unit_test_teardown(test_change_images_and_events, oom_teardown),
        cmocka_unit_test_teardown(test_tokens, oom_teardown),
        cmocka_unit_test_teardown(test_metrics, oom_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
