/*
 * Unit tests for core/task: status names, the PATCH state machine and the
 * client JSON form (checked by parsing it with jansson).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/task.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define ID1 "0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e5f"

static const task_status all_statuses[] = {TASK_CREATED, TASK_IN_PROGRESS, TASK_COMPLETED,
                                           TASK_FAILED};
enum { NSTATUS = sizeof all_statuses / sizeof all_statuses[0] };

/* ---- status names ---- */

static void test_status_names(void **state)
{
    (void)state;
    assert_string_equal(task_status_name(TASK_CREATED), "CREATED");
    assert_string_equal(task_status_name(TASK_IN_PROGRESS), "IN_PROGRESS");
    assert_string_equal(task_status_name(TASK_COMPLETED), "COMPLETED");
    assert_string_equal(task_status_name(TASK_FAILED), "FAILED");
    assert_string_equal(task_status_name((task_status)4), "UNKNOWN");
    assert_string_equal(task_status_name((task_status)-1), "UNKNOWN");
}

static void test_status_parse_round_trip(void **state)
{
    (void)state;
    for (int i = 0; i < NSTATUS; i++) {
        task_status out = (task_status)99;
        assert_true(task_status_parse(task_status_name(all_statuses[i]), &out));
        assert_int_equal(out, all_statuses[i]);
    }
    task_status out = (task_status)99;
    assert_true(task_status_parse("IN_PROGRESS", &out));
    assert_int_equal(out, TASK_IN_PROGRESS);
    assert_true(task_status_parse("FAILED", &out));
    assert_int_equal(out, TASK_FAILED);
}

static void test_status_parse_rejects(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "created",     "",           "DONE",     "Created",
        "COMPLETE",    "COMPLETED ", " FAILED",  "IN PROGRESS",
        "in_progress", "UNKNOWN",    "CREATEDX", "FAILED\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        task_status out = (task_status)99;
        if (task_status_parse(bad[i], &out))
            fail_msg("accepted \"%s\"", bad[i]);
        assert_int_equal(out, 99); /* output untouched on failure */
    }
    task_status out = (task_status)99;
    assert_false(task_status_parse(NULL, &out));
    assert_int_equal(out, 99);
}

static void test_status_is_final(void **state)
{
    (void)state;
    assert_false(task_status_is_final(TASK_CREATED));
    assert_false(task_status_is_final(TASK_IN_PROGRESS));
    assert_true(task_status_is_final(TASK_COMPLETED));
    assert_true(task_status_is_final(TASK_FAILED));
}

/* ---- task_decide ---- */

#define A TASK_APPLY
#define R TASK_REPEAT
#define C TASK_CONFLICT

/* [from][to] when the requested message equals the current one. */
static const task_verdict same_msg_table[4][4] = {
    /* columns (to): CREATED, IN_PROGRESS, COMPLETED, FAILED */
    [TASK_CREATED] = {C, A, C, A},
    [TASK_IN_PROGRESS] = {C, C, A, A},
    [TASK_COMPLETED] = {C, C, R, C},
    [TASK_FAILED] = {C, C, C, R},
};

/* [from][to] when the requested message differs from the current one. */
static const task_verdict other_msg_table[4][4] = {
    /* columns (to): CREATED, IN_PROGRESS, COMPLETED, FAILED */
    [TASK_CREATED] = {C, A, C, A},
    [TASK_IN_PROGRESS] = {C, C, A, A},
    [TASK_COMPLETED] = {C, C, C, C},
    [TASK_FAILED] = {C, C, C, C},
};

static const char *verdict_name(task_verdict v)
{
    switch (v) {
    case TASK_APPLY:
        return "APPLY";
    case TASK_REPEAT:
        return "REPEAT";
    case TASK_CONFLICT:
        return "CONFLICT";
    }
    return "?";
}

static void check_decide(task_status from, const char *from_msg, task_status to, const char *to_msg,
                         task_verdict want)
{
    task_verdict got = task_decide(from, from_msg, to, to_msg);
    if (got != want)
        fail_msg("%s(\"%s\") -> %s(\"%s\"): got %s, want %s", task_status_name(from),
                 from_msg ? from_msg : "(null)", task_status_name(to), to_msg ? to_msg : "(null)",
                 verdict_name(got), verdict_name(want));
}

static void test_decide_all_pairs_same_message(void **state)
{
    (void)state;
    static const char *const msgs[] = {"", "Task started", "Task completed"};
    for (size_t m = 0; m < sizeof msgs / sizeof msgs[0]; m++)
        for (int f = 0; f < NSTATUS; f++)
            for (int t = 0; t < NSTATUS; t++)
                check_decide(all_statuses[f], msgs[m], all_statuses[t], msgs[m],
                             same_msg_table[all_statuses[f]][all_statuses[t]]);
}

static void test_decide_all_pairs_other_message(void **state)
{
    (void)state;
    static const char *const pairs[][2] = {
        {"Task started", "Task completed"},    {"", "x"}, {"x", ""}, {"done", "Done"},
        {"Task completed", "Task completed "},
    };
    for (size_t m = 0; m < sizeof pairs / sizeof pairs[0]; m++)
        for (int f = 0; f < NSTATUS; f++)
            for (int t = 0; t < NSTATUS; t++)
                check_decide(all_statuses[f], pairs[m][0], all_statuses[t], pairs[m][1],
                             other_msg_table[all_statuses[f]][all_statuses[t]]);
}

/* The same table spelled out pair by pair. */
static void test_decide_spelled_out(void **state)
{
    (void)state;
    /* CREATED */
    check_decide(TASK_CREATED, "", TASK_IN_PROGRESS, "Task started", A); /* the claim */
    check_decide(TASK_CREATED, "", TASK_FAILED, "cancelled", A);
    check_decide(TASK_CREATED, "", TASK_COMPLETED, "Task completed", C);
    check_decide(TASK_CREATED, "", TASK_CREATED, "", C);
    check_decide(TASK_CREATED, "", TASK_CREATED, "again", C);
    /* IN_PROGRESS */
    check_decide(TASK_IN_PROGRESS, "Task started", TASK_COMPLETED, "Task completed", A);
    check_decide(TASK_IN_PROGRESS, "Task started", TASK_FAILED, "boom", A);
    check_decide(TASK_IN_PROGRESS, "Task started", TASK_IN_PROGRESS, "Task started", C);
    check_decide(TASK_IN_PROGRESS, "Task started", TASK_IN_PROGRESS, "other", C);
    check_decide(TASK_IN_PROGRESS, "Task started", TASK_CREATED, "Task started", C);
    /* COMPLETED */
    check_decide(TASK_COMPLETED, "Task completed", TASK_COMPLETED, "Task completed", R);
    check_decide(TASK_COMPLETED, "Task completed", TASK_COMPLETED, "other", C);
    check_decide(TASK_COMPLETED, "Task completed", TASK_FAILED, "Task completed", C);
    check_decide(TASK_COMPLETED, "Task completed", TASK_IN_PROGRESS, "Task completed", C);
    check_decide(TASK_COMPLETED, "Task completed", TASK_CREATED, "Task completed", C);
    /* FAILED */
    check_decide(TASK_FAILED, "boom", TASK_FAILED, "boom", R);
    check_decide(TASK_FAILED, "boom", TASK_FAILED, "bang", C);
    check_decide(TASK_FAILED, "boom", TASK_COMPLETED, "boom", C);
    check_decide(TASK_FAILED, "boom", TASK_IN_PROGRESS, "boom", C);
    check_decide(TASK_FAILED, "boom", TASK_CREATED, "boom", C);
}

static void test_decide_null_messages(void **state)
{
    (void)state;
    /* NULL messages must not crash; the implementation reads NULL as "" */
    check_decide(TASK_COMPLETED, NULL, TASK_COMPLETED, NULL, R);
    check_decide(TASK_COMPLETED, NULL, TASK_COMPLETED, "", R);
    check_decide(TASK_FAILED, "", TASK_FAILED, NULL, R);
    check_decide(TASK_FAILED, NULL, TASK_FAILED, "x", C);
    check_decide(TASK_IN_PROGRESS, NULL, TASK_IN_PROGRESS, NULL, C);
    check_decide(TASK_CREATED, NULL, TASK_IN_PROGRESS, NULL, A);
    check_decide(TASK_IN_PROGRESS, NULL, TASK_COMPLETED, NULL, A);
}

#undef A
#undef R
#undef C

static void test_dead_letter_msg(void **state)
{
    (void)state;
    char buf[80];
    task_dead_letter_msg(buf, sizeof buf, "q-dlq", 1);
    assert_string_equal(buf, "moved to dead-letter queue q-dlq after 1 receive");
    task_dead_letter_msg(buf, sizeof buf, "q-dlq", 3);
    assert_string_equal(buf, "moved to dead-letter queue q-dlq after 3 receives");
    task_dead_letter_msg(buf, sizeof buf, "q-dlq", 0); /* the count not known */
    assert_string_equal(buf, "moved to dead-letter queue q-dlq");
    task_dead_letter_msg(buf, 12, "q-dlq", 3); /* cut, still a string */
    assert_string_equal(buf, "moved to de");
}

/* ---- task_to_json ---- */

static void init_task(task *t)
{
    memset(t, 0, sizeof *t);
    strcpy(t->id, ID1);
    strcpy(t->task_type, "TASK1");
    t->status = TASK_COMPLETED;
    t->status_msg = strdup("Task completed");
    t->created_time = 1648229203;
    t->updated_time = 1648229218;
    t->ttl = 1662381756;
    t->data = NULL;
    t->result = NULL;
    t->trace = NULL;
}

static char *to_json(const task *t, bool full)
{
    sbuf b = {0};
    task_to_json(&b, t, full);
    assert_false(sbuf_failed(&b));
    char *s = sbuf_take(&b, NULL);
    assert_non_null(s);
    return s;
}

static json_t *parse_object(const char *text)
{
    json_error_t err;
    json_t *v = json_loads(text, JSON_REJECT_DUPLICATES, &err);
    if (!v)
        fail_msg("invalid JSON (%s): %s", err.text, text);
    assert_true(json_is_object(v));
    return v;
}

static void check_string_field(json_t *o, const char *key, const char *want)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_string(v))
        fail_msg("field %s is not a string", key);
    assert_string_equal(json_string_value(v), want);
}

static void check_int_field(json_t *o, const char *key, int64_t want)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        fail_msg("field %s is not an integer", key);
    assert_true(json_integer_value(v) == want);
}

static void check_null_field(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_null(v))
        fail_msg("field %s is missing or not null", key);
}

static void test_json_list_form(void **state)
{
    (void)state;
    task t;
    init_task(&t);
    t.data = strdup("{\"secret\":1}");
    t.result = strdup("{\"out\":2}");
    char *s = to_json(&t, false);
    json_t *o = parse_object(s);
    assert_int_equal(json_object_size(o), 7);
    check_string_field(o, "id", ID1);
    check_string_field(o, "task_type", "TASK1");
    check_string_field(o, "status", "COMPLETED");
    check_string_field(o, "status_msg", "Task completed");
    check_int_field(o, "created_time", 1648229203);
    check_int_field(o, "updated_time", 1648229218);
    check_int_field(o, "ttl", 1662381756);
    assert_null(json_object_get(o, "data"));
    assert_null(json_object_get(o, "result"));
    assert_null(json_object_get(o, "trace"));
    assert_null(strstr(s, "secret"));
    assert_null(strstr(s, "out"));
    json_decref(o);
    free(s);
    task_clear(&t);
}

static void test_json_list_form_exact_text(void **state)
{
    (void)state;
    task t;
    init_task(&t);
    char *s = to_json(&t, false);
    assert_string_equal(s, "{\"id\":\"" ID1 "\",\"task_type\":\"TASK1\",\"status\":\"COMPLETED\","
                           "\"status_msg\":\"Task completed\",\"created_time\":1648229203,"
                           "\"updated_time\":1648229218,\"ttl\":1662381756}");
    free(s);
    task_clear(&t);
}

static void test_json_full_form(void **state)
{
    (void)state;
    task t;
    init_task(&t);
    const char *data = "{\"a\":[1,2,{\"b\":null}],\"s\":\"x\\\"y\\u00e9\",\"n\":-3.5e2}";
    t.data = strdup(data);
    t.result = strdup("{\"ok\":true,\"items\":[\"p\",\"q\"]}");
    char *s = to_json(&t, true);
    json_t *o = parse_object(s);
    assert_int_equal(json_object_size(o), 9);
    check_string_field(o, "id", ID1);
    check_string_field(o, "task_type", "TASK1");
    check_string_field(o, "status", "COMPLETED");
    check_string_field(o, "status_msg", "Task completed");
    check_int_field(o, "created_time", 1648229203);
    check_int_field(o, "updated_time", 1648229218);
    check_int_field(o, "ttl", 1662381756);
    assert_null(json_object_get(o, "trace"));

    /* data is spliced in raw: the exact text appears, and it parses to the same value */
    assert_non_null(strstr(s, ",\"data\":{\"a\":[1,2,{\"b\":null}],\"s\":\"x\\\"y\\u00e9\","
                              "\"n\":-3.5e2},"));
    json_t *want_data = json_loads(data, 0, NULL);
    assert_non_null(want_data);
    assert_true(json_equal(json_object_get(o, "data"), want_data));
    json_decref(want_data);

    json_t *res = json_object_get(o, "result");
    assert_true(json_is_object(res));
    assert_true(json_is_true(json_object_get(res, "ok")));
    assert_int_equal(json_array_size(json_object_get(res, "items")), 2);
    json_decref(o);
    free(s);
    task_clear(&t);
}

static void test_json_full_form_null_result(void **state)
{
    (void)state;
    task t;
    init_task(&t);
    t.data = strdup("{}");
    t.result = NULL;
    char *s = to_json(&t, true);
    json_t *o = parse_object(s);
    assert_int_equal(json_object_size(o), 9);
    json_t *d = json_object_get(o, "data");
    assert_true(json_is_object(d));
    assert_int_equal(json_object_size(d), 0);
    check_null_field(o, "result");
    assert_non_null(strstr(s, ",\"result\":null}"));
    json_decref(o);
    free(s);
    task_clear(&t);
}

static void test_json_full_form_scalar_results(void **state)
{
    (void)state;
    static const char *const results[] = {"42", "\"text\"", "[1,2,3]", "false", "null", "-0.5"};
    for (size_t i = 0; i < sizeof results / sizeof results[0]; i++) {
        task t;
        init_task(&t);
        t.data = strdup("{\"k\":\"v\"}");
        t.result = strdup(results[i]);
        char *s = to_json(&t, true);
        json_t *o = parse_object(s);
        json_t *want = json_loads(results[i], JSON_DECODE_ANY, NULL);
        assert_non_null(want);
        if (!json_equal(json_object_get(o, "result"), want))
            fail_msg("result %s not spliced: %s", results[i], s);
        json_decref(want);
        json_decref(o);
        free(s);
        task_clear(&t);
    }
}

static void test_json_full_form_missing_data(void **state)
{
    (void)state;
    /* data not loaded (NULL): still valid JSON, an empty object */
    task t;
    init_task(&t);
    char *s = to_json(&t, true);
    json_t *o = parse_object(s);
    json_t *d = json_object_get(o, "data");
    assert_true(json_is_object(d));
    assert_int_equal(json_object_size(d), 0);
    check_null_field(o, "result");
    json_decref(o);
    free(s);
    task_clear(&t);
}

static void test_json_null_times(void **state)
{
    (void)state;
    task t;
    init_task(&t);
    t.status = TASK_CREATED;
    t.updated_time = TASK_NULL_TIME;
    t.ttl = TASK_NULL_TIME;
    for (int full = 0; full < 2; full++) {
        char *s = to_json(&t, full);
        json_t *o = parse_object(s);
        check_string_field(o, "status", "CREATED");
        check_int_field(o, "created_time", 1648229203);
        check_null_field(o, "updated_time");
        check_null_field(o, "ttl");
        assert_non_null(strstr(s, "\"updated_time\":null,\"ttl\":null"));
        json_decref(o);
        free(s);
    }

    /* 0 is a time, not null */
    t.updated_time = 0;
    t.ttl = 0;
    t.created_time = 0;
    char *s = to_json(&t, false);
    json_t *o = parse_object(s);
    check_int_field(o, "created_time", 0);
    check_int_field(o, "updated_time", 0);
    check_int_field(o, "ttl", 0);
    json_decref(o);
    free(s);

    /* only one of the two null */
    t.updated_time = TASK_NULL_TIME;
    t.ttl = 1662381756;
    s = to_json(&t, false);
    o = parse_object(s);
    check_null_field(o, "updated_time");
    check_int_field(o, "ttl", 1662381756);
    json_decref(o);
    free(s);
    task_clear(&t);
}

static void test_json_large_times(void **state)
{
    (void)state;
    task t;
    init_task(&t);
    t.created_time = INT64_MAX;
    t.updated_time = INT64_MIN;
    t.ttl = 4102444800; /* 2100-01-01, beyond 32 bits */
    char *s = to_json(&t, false);
    json_t *o = parse_object(s);
    check_int_field(o, "created_time", INT64_MAX);
    check_int_field(o, "updated_time", INT64_MIN);
    check_int_field(o, "ttl", 4102444800);
    json_decref(o);
    free(s);
    task_clear(&t);
}

static void test_json_status_msg_escaping(void **state)
{
    (void)state;
    const char *msg = "He said \"no\"\n\tpath C:\\tmp\r\x01\x1f caf\xc3\xa9 \xe2\x9c\x93";
    task t;
    init_task(&t);
    t.status = TASK_FAILED;
    free(t.status_msg);
    t.status_msg = strdup(msg);
    for (int full = 0; full < 2; full++) {
        char *s = to_json(&t, full);
        json_t *o = parse_object(s);
        check_string_field(o, "status", "FAILED");
        check_string_field(o, "status_msg", msg);
        /* no raw control characters in the output */
        for (const char *p = s; *p; p++)
            assert_true((unsigned char)*p >= 0x20);
        json_decref(o);
        free(s);
    }
    task_clear(&t);
}

static void test_json_null_status_msg(void **state)
{
    (void)state;
    task t;
    init_task(&t);
    free(t.status_msg);
    t.status_msg = NULL;
    char *s = to_json(&t, false);
    json_t *o = parse_object(s);
    check_string_field(o, "status_msg", "");
    json_decref(o);
    free(s);
    task_clear(&t);
}

static void test_json_every_status(void **state)
{
    (void)state;
    for (int i = 0; i < NSTATUS; i++) {
        task t;
        init_task(&t);
        t.status = all_statuses[i];
        char *s = to_json(&t, i % 2 == 0);
        json_t *o = parse_object(s);
        check_string_field(o, "status", task_status_name(all_statuses[i]));
        json_decref(o);
        free(s);
        task_clear(&t);
    }
}

static void test_json_appends_into_list(void **state)
{
    (void)state;
    task a, b2;
    init_task(&a);
    init_task(&b2);
    strcpy(b2.id, "0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e60");
    strcpy(b2.task_type, "TASK2");
    b2.status = TASK_IN_PROGRESS;
    sbuf b = {0};
    sbuf_puts(&b, "{\"tasks\":[");
    task_to_json(&b, &a, false);
    sbuf_putc(&b, ',');
    task_to_json(&b, &b2, false);
    sbuf_puts(&b, "],\"next_token\":null}");
    assert_false(sbuf_failed(&b));
    json_t *o = parse_object(b.data);
    json_t *arr = json_object_get(o, "tasks");
    assert_int_equal(json_array_size(arr), 2);
    check_string_field(json_array_get(arr, 0), "id", ID1);
    check_string_field(json_array_get(arr, 1), "id", "0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e60");
    check_string_field(json_array_get(arr, 1), "task_type", "TASK2");
    check_string_field(json_array_get(arr, 1), "status", "IN_PROGRESS");
    json_decref(o);
    sbuf_free(&b);
    task_clear(&a);
    task_clear(&b2);
}

static void test_task_clear(void **state)
{
    (void)state;
    task t;
    init_task(&t);
    t.data = strdup("{}");
    t.result = strdup("1");
    t.trace = strdup("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    task_clear(&t); /* ASan reports a leak if any string is not freed */
    assert_null(t.status_msg);
    assert_null(t.data);
    assert_null(t.result);
    assert_null(t.trace);
    assert_string_equal(t.id, "");
    assert_string_equal(t.task_type, "");
    assert_int_equal(t.created_time, 0);
    assert_int_equal(t.updated_time, 0);
    assert_int_equal(t.ttl, 0);
    assert_int_equal(t.status, 0);
    task_clear(&t); /* clearing twice is safe */
}

/* ---- history ---- */

static void test_history_msg_len(void **state)
{
    (void)state;
    assert_int_equal(task_history_msg_len(""), 0);
    assert_int_equal(task_history_msg_len("Task started"), 12);
    char msg[TASK_HISTORY_MSG_MAX + 8];
    memset(msg, 'a', sizeof msg - 1);
    msg[sizeof msg - 1] = '\0';
    assert_int_equal(task_history_msg_len(msg), TASK_HISTORY_MSG_MAX);
    msg[TASK_HISTORY_MSG_MAX] = '\0'; /* exactly the limit: whole */
    assert_int_equal(task_history_msg_len(msg), TASK_HISTORY_MSG_MAX);
    /* a character across the limit is left out whole, however long it is */
    memset(msg, 'a', sizeof msg - 1);
    msg[sizeof msg - 1] = '\0';
    for (int len = 2; len <= 4; len++)
        for (int start = TASK_HISTORY_MSG_MAX - len + 1; start <= TASK_HISTORY_MSG_MAX; start++) {
            char m[sizeof msg];
            memcpy(m, msg, sizeof m);
            static const char *const chars[] = {"", "", "\xc3\xa9", "\xe2\x82\xac",
                                                "\xf0\x9f\x98\x80"};
            memcpy(m + start, chars[len], (size_t)len);
            assert_int_equal(task_history_msg_len(m), start);
        }
    /* one that ends at the limit is kept */
    memcpy(msg + TASK_HISTORY_MSG_MAX - 2, "\xc3\xa9", 2);
    assert_int_equal(task_history_msg_len(msg), TASK_HISTORY_MSG_MAX);
}

static void test_history_of_task(void **state)
{
    (void)state;
    task t = {.status = TASK_CREATED,
              .status_msg = "",
              .created_time = 100,
              .updated_time = TASK_NULL_TIME};
    task_history h = {0};
    assert_true(task_history_of_task(&h, &t));
    assert_int_equal(h.count, 1);
    assert_int_equal(h.entries[0].status, TASK_CREATED);
    assert_int_equal(h.entries[0].time, 100);
    assert_true(h.truncated);
    task_history_clear(&h);
    assert_int_equal(h.count, 0);
    assert_null(h.entries);

    t = (task){
        .status = TASK_FAILED, .status_msg = "boom", .created_time = 100, .updated_time = 160};
    assert_true(task_history_of_task(&h, &t));
    assert_int_equal(h.count, 2);
    assert_int_equal(h.entries[1].status, TASK_FAILED);
    assert_string_equal(h.entries[1].status_msg, "boom");
    assert_int_equal(h.entries[1].time, 160);
    task_history_clear(&h);
}

static void test_history_json(void **state)
{
    (void)state;
    task_history h = {0};
    assert_true(task_history_add(&h, TASK_CREATED, "", 1648229203));
    assert_true(task_history_add(&h, TASK_IN_PROGRESS, NULL, 1648229204));
    assert_true(task_history_add(&h, TASK_COMPLETED, "\"done\"\n", 4102444800));
    sbuf b = {0};
    task_history_to_json(&b, ID1, &h);
    char *text = sbuf_take(&b, NULL);
    assert_string_equal(
        text, "{\"id\":\"" ID1 "\",\"history\":["
              "{\"status\":\"CREATED\",\"status_msg\":\"\",\"time\":\"2022-03-25T17:26:43Z\"},"
              "{\"status\":\"IN_PROGRESS\",\"status_msg\":\"\",\"time\":\"2022-03-25T17:26:44Z\"},"
              "{\"status\":\"COMPLETED\",\"status_msg\":\"\\\"done\\\"\\n\","
              "\"time\":\"2100-01-01T00:00:00Z\"}],\"truncated\":false}");
    free(text);
    h.truncated = true;
    sbuf b2 = {0};
    task_history_to_json(&b2, ID1, &h);
    json_t *o = parse_object(b2.data);
    assert_true(json_is_true(json_object_get(o, "truncated")));
    assert_int_equal(json_array_size(json_object_get(o, "history")), 3);
    json_decref(o);
    sbuf_free(&b2);
    task_history_clear(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_names),
        cmocka_unit_test(test_status_parse_round_trip),
        cmocka_unit_test(test_status_parse_rejects),
        cmocka_unit_test(test_status_is_final),
        cmocka_unit_test(test_decide_all_pairs_same_message),
        cmocka_unit_test(test_decide_all_pairs_other_message),
        cmocka_unit_test(test_decide_spelled_out),
        cmocka_unit_test(test_decide_null_messages),
        cmocka_unit_test(test_dead_letter_msg),
        cmocka_unit_test(test_json_list_form),
        cmocka_unit_test(test_json_list_form_exact_text),
        cmocka_unit_test(test_json_full_form),
        cmocka_unit_test(test_json_full_form_null_result),
        cmocka_unit_test(test_json_full_form_scalar_results),
        cmocka_unit_test(test_json_full_form_missing_data),
        cmocka_unit_test(test_json_null_times),
        cmocka_unit_test(test_json_large_times),
        cmocka_unit_test(test_json_status_msg_escaping),
        cmocka_unit_test(test_json_null_status_msg),
        cmocka_unit_test(test_json_every_status),
        cmocka_unit_test(test_json_appends_into_list),
        cmocka_unit_test(test_task_clear),
        cmocka_unit_test(test_history_msg_len),
        cmocka_unit_test(test_history_of_task),
        cmocka_unit_test(test_history_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
