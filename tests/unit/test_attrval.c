/*
 * Unit tests for core/attrval (JSON <-> DynamoDB AttributeValue JSON, task
 * images), core/change_record (DynamoDB-Streams-shaped records) and
 * core/json_util (compact JSON with shortest round-trip reals). Outputs are
 * parsed back with jansson and checked field by field.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/attrval.h"
#include "core/change_record.h"
#include "core/json_util.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ID1   "0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e5f"
#define TRACE "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

/* ---- helpers ---- */

static json_t *parse(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
    if (!v)
        fail_msg("not JSON (%s): %s", e.text, text);
    return v;
}

/* attrval_write of the JSON text, as a malloc'ed string. */
static char *av_of(const char *json_text)
{
    json_t *v = parse(json_text);
    sbuf b = {0};
    attrval_write(&b, v);
    json_decref(v);
    assert_false(sbuf_failed(&b));
    return sbuf_take(&b, NULL);
}

static void expect_av(const char *json_text, const char *want)
{
    char *got = av_of(json_text);
    assert_string_equal(got, want);
    /* the AttributeValue is JSON itself */
    json_decref(parse(got));
    free(got);
}

/* json_write_compact of v as a malloc'ed string. */
static char *compact(const json_t *v)
{
    sbuf b = {0};
    json_write_compact(&b, v);
    assert_false(sbuf_failed(&b));
    return sbuf_take(&b, NULL);
}

static void expect_real_text(double d, const char *want)
{
    json_t *v = json_real(d);
    assert_non_null(v);
    char *got = compact(v);
    if (strcmp(got, want) != 0)
        fail_msg("%.17g written as \"%s\", want \"%s\"", d, got, want);
    /* and it reads back as the same real */
    json_t *back = parse(got);
    assert_true(json_is_real(back));
    assert_true(json_real_value(back) == d);
    json_decref(back);
    free(got);
    json_decref(v);
}

/* attrval_to_json of AttributeValue text; NULL when refused. */
static json_t *plain_of(const char *av_text)
{
    json_t *av = parse(av_text);
    json_t *v = attrval_to_json(av);
    json_decref(av);
    return v;
}

static void expect_refused(const char *av_text)
{
    json_t *v = plain_of(av_text);
    if (v) {
        char *s = json_dumps(v, JSON_ENCODE_ANY);
        fail_msg("%s accepted as %s", av_text, s);
    }
}

/* ---- attrval_write ---- */

static void test_write_scalars(void **state)
{
    (void)state;
    expect_av("\"hello\"", "{\"S\":\"hello\"}");
    expect_av("\"\"", "{\"S\":\"\"}");
    expect_av("\"a\\\"b\\\\c\\n\\u0001\"", "{\"S\":\"a\\\"b\\\\c\\n\\u0001\"}");
    expect_av("\"a\\u0000b\"", "{\"S\":\"a\\u0000b\"}"); /* an embedded NUL is kept */
    expect_av("\"\\u00e9\\u20ac\"", "{\"S\":\"\xc3\xa9\xe2\x82\xac\"}");
    expect_av("42", "{\"N\":\"42\"}");
    expect_av("0", "{\"N\":\"0\"}");
    expect_av("-7", "{\"N\":\"-7\"}");
    expect_av("9223372036854775807", "{\"N\":\"9223372036854775807\"}");
    expect_av("-9223372036854775808", "{\"N\":\"-9223372036854775808\"}");
    expect_av("0.1", "{\"N\":\"0.1\"}");
    expect_av("-2.5", "{\"N\":\"-2.5\"}");
    expect_av("1.0", "{\"N\":\"1.0\"}");
    expect_av("1e300", "{\"N\":\"1e+300\"}");
    expect_av("true", "{\"BOOL\":true}");
    expect_av("false", "{\"BOOL\":false}");
    expect_av("null", "{\"NULL\":true}");
}

static void test_write_containers(void **state)
{
    (void)state;
    expect_av("{}", "{\"M\":{}}");
    expect_av("[]", "{\"L\":[]}");
    expect_av("{\"b\":1,\"a\":\"x\"}", "{\"M\":{\"b\":{\"N\":\"1\"},\"a\":{\"S\":\"x\"}}}");
    expect_av("[1,\"x\",null,true]",
              "{\"L\":[{\"N\":\"1\"},{\"S\":\"x\"},{\"NULL\":true},{\"BOOL\":true}]}");
    expect_av("{\"k\\\"ey\":[]}", "{\"M\":{\"k\\\"ey\":{\"L\":[]}}}");
}

static void test_write_nested(void **state)
{
    (void)state;
    expect_av(
        "{\"a\":{\"b\":[{\"c\":[[0.5]]},{}],\"d\":false}}",
        "{\"M\":{\"a\":{\"M\":{\"b\":{\"L\":[{\"M\":{\"c\":{\"L\":[{\"L\":[{\"N\":\"0.5\"}]}]}}},"
        "{\"M\":{}}]},\"d\":{\"BOOL\":false}}}}}");
}

static void test_write_appends(void **state)
{
    (void)state;
    sbuf b = {0};
    sbuf_puts(&b, "[");
    json_t *v = json_integer(3);
    attrval_write(&b, v);
    sbuf_puts(&b, ",");
    attrval_write(&b, v);
    sbuf_puts(&b, "]");
    json_decref(v);
    assert_string_equal(b.data, "[{\"N\":\"3\"},{\"N\":\"3\"}]");
    sbuf_free(&b);
}

/*
 * The bytes attrval_write() says DynamoDB counts for what it wrote, and attrval_from_text() for
 * the same data as text: a string's UTF-8 bytes (escapes, a surrogate pair, an embedded NUL, the
 * noncharacters it escapes), a number's significant digits in pairs, 2 and its sign as written
 * (-0 is 0, reals in their shortest form), 1 for a BOOL or NULL, 3 for a map or list and 1, and
 * a member's name, for each member or element. Each count is the one the store took from the
 * written text before the writer gave it.
 */
static void test_write_counts_dynamodb_size(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        size_t size;
    } rows[] = {
        {"\"abc\"", 3},
        {"\"\"", 0},
        {"\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"", 2 + 3 + 4},
        {"\"\\u00e9\\u20AC\\ud83d\\ude00\"", 2 + 3 + 4},
        {"\"a\\u0000b\"", 3},
        {"\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0001\"", 9},
        {"\"\\ufffe\\uffff\\ufffd\"", 9},
        {"0", 2},
        {"-0", 2}, /* the integer 0 */
        {"-0.0", 3},
        {"7", 2},
        {"-7", 3},
        {"12345", 4},
        {"-12345", 5},
        {"1200300", 4}, /* 12003: trailing zeros aside */
        {"100", 2},
        {"9223372036854775807", 11},
        {"-9223372036854775808", 12},
        {"0.1", 2},
        {"1.5", 3},
        {"-2.5", 4},
        {"1.0", 2},
        {"-0.00120", 4}, /* -0.0012 */
        {"1e300", 2},
        {"-1.5E-10", 4},
        {"2.5e+17", 3},
        {"123456789012345678901234567890.5", 10}, /* 1.2345678901234568e+29: 17 digits */
        {"1.7976931348623157e308", 10},
        {"-2.2250738585072014e-308", 11},
        {"5e-324", 2}, /* written as Python writes it: one digit */
        {"true", 1},
        {"false", 1},
        {"null", 1},
        {"{}", 3},
        {"[]", 3},
        {"{\"a\":1}", 3 + 1 + 1 + 2},
        {"[1,\"ab\",null]", 3 + (1 + 2) + (1 + 2) + (1 + 1)},
        {"{\"c\\u00e9\":[{\"x\":true}],\"\":\"\"}", 3 + (1 + 3 + (3 + 1 + (3 + 1 + 1 + 1))) + 1},
        {"{\"\xe4\xb8\xad\":{\"k\\\"\":-10.25}}", 3 + 1 + 3 + (3 + 1 + 2 + 5)},
        {"[[[[1]]]]", 3 + 1 + (3 + 1 + (3 + 1 + (3 + 1 + 2)))},
        {"[{},[],{\"a\":[]}]", 3 + (1 + 3) + (1 + 3) + (1 + 3 + (1 + 1 + 3))},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        json_t *v = parse(rows[i].json);
        sbuf b = {0};
        size_t size = attrval_write(&b, v);
        assert_false(sbuf_failed(&b));
        if (size != rows[i].size)
            fail_msg("%s: %zu bytes, where %zu (%s)", rows[i].json, size, rows[i].size, b.data);
        sbuf_free(&b);
        json_decref(v);
        if (strstr(rows[i].json, "\\u0000"))
            continue; /* attrval_from_text() takes no NUL, as jansson's parse by default */
        size_t from_text = 0;
        char *image = attrval_from_text(rows[i].json, &from_text);
        assert_non_null(image);
        if (from_text != rows[i].size)
            fail_msg("%s as text: %zu bytes, where %zu", rows[i].json, from_text, rows[i].size);
        free(image);
    }
}

/*
 * A number's count is never less than what DynamoDB counts for it: AWS's documented rule (a byte
 * for two significant digits, rounded up, and 1) or DynamoDB Local's, measured by putting an item
 * at 400 KB beside each number (its digits in pairs from the decimal point, 1, and 1 for a
 * negative number, at most 21 bytes): 1 more than DynamoDB Local's at most (an even number of
 * digits in step with the decimal point, or 0), and as much for 38 digits, its most.
 */
static void test_number_size_bounds_what_dynamodb_counts(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        size_t digits; /* significant */
        size_t local;  /* DynamoDB Local's count */
        size_t size;
    } rows[] = {
        {"0", 0, 1, 2},
        {"1", 1, 2, 2},
        {"12", 2, 2, 3},
        {"123", 3, 3, 3},
        {"1.2", 2, 3, 3},
        {"-1", 1, 3, 3},
        {"-1234", 4, 4, 5},
        {"-1234567890123456789", 19, 12, 12},
        {"-9223372036854775808", 19, 12, 12},
        {"1.2345678901234567e+100", 17, 10, 10},
        {"-1.2345678901234567e-100", 17, 11, 11},
        {"12345678901234567890123456789012345678", 38, 20, 21},
        {"-12345678901234567890123456789012345678", 38, 21, 21},
        {"1.2345678901234567890123456789012345678", 38, 21, 21},
        {"-1.2345678901234567890123456789012345678", 38, 21, 21}, /* 20 pairs: still 21 */
        {"-123456789012345678901234567890123456.7", 37, 21, 21},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        size_t size = attrval_number_size(rows[i].text, strlen(rows[i].text));
        size_t documented = (rows[i].digits + 1) / 2 + 1;
        if (size != rows[i].size || size < documented || size < rows[i].local ||
            size > rows[i].local + 1 || size > ATTRVAL_NUMBER_MAX)
            fail_msg("%s: %zu bytes, where %zu (AWS's rule %zu, DynamoDB Local %zu)", rows[i].text,
                     size, rows[i].size, documented, rows[i].local);
    }
}

/* ---- attrval_to_json ---- */

static void round_trip(const char *json_text)
{
    json_t *orig = parse(json_text);
    char *av = av_of(json_text);
    json_t *avj = parse(av);
    json_t *back = attrval_to_json(avj);
    if (!back)
        fail_msg("%s (from %s) refused", av, json_text);
    if (!json_equal(orig, back)) {
        char *s = json_dumps(back, JSON_ENCODE_ANY);
        fail_msg("%s came back as %s", json_text, s);
    }
    /* integers stay integers, reals stay reals */
    assert_int_equal(json_typeof(back), json_typeof(orig));
    json_decref(back);
    json_decref(avj);
    json_decref(orig);
    free(av);
}

static void test_round_trip(void **state)
{
    (void)state;
    static const char *const texts[] = {
        "\"s\"",
        "\"\"",
        "\"a\\u0000b\"",
        "0",
        "-12",
        "9223372036854775807",
        "-9223372036854775808",
        "0.1",
        "1.0",
        "-0.0",
        "1e300",
        "2.5e-308",
        "true",
        "false",
        "null",
        "{}",
        "[]",
        "{\"a\":1,\"b\":[1,2.5,\"x\",{\"c\":null}],\"d\":{\"e\":{\"f\":[]}}}",
        "[[[[\"deep\"]]],{\"k\":false}]",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        round_trip(texts[i]);

    /* the real 1.0 keeps its type */
    json_t *v = plain_of("{\"N\":\"1.0\"}");
    assert_true(json_is_real(v));
    assert_true(json_real_value(v) == 1.0);
    json_decref(v);
    v = plain_of("{\"N\":\"1\"}");
    assert_true(json_is_integer(v));
    assert_int_equal(json_integer_value(v), 1);
    json_decref(v);
}

static void test_to_json_sets(void **state)
{
    (void)state;
    json_t *v = plain_of("{\"SS\":[\"a\",\"b\",\"\"]}");
    json_t *want = parse("[\"a\",\"b\",\"\"]");
    assert_true(json_equal(v, want));
    json_decref(v);
    json_decref(want);

    v = plain_of("{\"NS\":[\"1\",\"2.5\",\"-3\",\"1e3\"]}");
    assert_non_null(v);
    assert_int_equal(json_array_size(v), 4);
    assert_true(json_is_integer(json_array_get(v, 0)));
    assert_int_equal(json_integer_value(json_array_get(v, 0)), 1);
    assert_true(json_real_value(json_array_get(v, 1)) == 2.5);
    assert_int_equal(json_integer_value(json_array_get(v, 2)), -3);
    assert_true(json_real_value(json_array_get(v, 3)) == 1000.0);
    json_decref(v);

    v = plain_of("{\"SS\":[]}");
    assert_true(json_is_array(v));
    assert_int_equal(json_array_size(v), 0);
    json_decref(v);

    v = plain_of("{\"NULL\":true}");
    assert_true(json_is_null(v));
    json_decref(v);

    /* an N too big for int64 is still a number */
    v = plain_of("{\"N\":\"99999999999999999999\"}");
    assert_true(json_is_real(v));
    assert_true(json_real_value(v) == 1e20);
    json_decref(v);
}

static void test_to_json_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "{}",
        "{\"S\":\"a\",\"N\":\"1\"}",
        "{\"M\":{},\"L\":[]}",
        "{\"X\":\"1\"}",
        "{\"B\":\"AAEC\"}",
        "{\"BS\":[]}",
        "{\"s\":\"lower\"}",
        "{\"N\":\"abc\"}",
        "{\"N\":\"\"}",
        "{\"N\":\"12abc\"}",
        "{\"N\":\"1 \"}",
        "{\"N\":\"1e999\"}",
        "{\"N\":\"nan\"}",
        "{\"N\":\"inf\"}",
        "{\"N\":\"-Infinity\"}",
        "{\"N\":5}",
        "{\"N\":null}",
        "{\"S\":1}",
        "{\"S\":null}",
        "{\"BOOL\":\"true\"}",
        "{\"BOOL\":1}",
        "{\"M\":[]}",
        "{\"M\":\"x\"}",
        "{\"L\":{}}",
        "{\"SS\":\"a\"}",
        "{\"SS\":[1]}",
        "{\"NS\":[\"1\",\"x\"]}",
        "{\"NS\":[1]}",
        "{\"M\":{\"a\":{\"S\":\"ok\"},\"b\":{\"N\":\"bad\"}}}",
        "{\"M\":{\"a\":\"plain\"}}",
        "{\"L\":[{\"S\":\"ok\"},{\"Q\":1}]}",
        "{\"L\":[{\"L\":[{\"M\":{\"x\":{}}}]}]}",
        "\"S\"",
        "[{\"S\":\"a\"}]",
        "42",
        "null",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_refused(bad[i]);
    assert_null(attrval_to_json(NULL));
}

/* ---- attrval_from_text ---- */

static void test_from_text(void **state)
{
    (void)state;
    char *s = attrval_from_text("{\"a\": 1, \"b\": [0.1, \"x\"]}", NULL);
    assert_string_equal(
        s, "{\"M\":{\"a\":{\"N\":\"1\"},\"b\":{\"L\":[{\"N\":\"0.1\"},{\"S\":\"x\"}]}}}");
    free(s);
    s = attrval_from_text("5", NULL);
    assert_string_equal(s, "{\"N\":\"5\"}");
    free(s);
    s = attrval_from_text("\"x\"", NULL);
    assert_string_equal(s, "{\"S\":\"x\"}");
    free(s);
    s = attrval_from_text("null", NULL);
    assert_string_equal(s, "{\"NULL\":true}");
    free(s);
    s = attrval_from_text("{}", NULL);
    assert_string_equal(s, "{\"M\":{}}");
    free(s);
    assert_null(attrval_from_text("not json", NULL));
    assert_null(attrval_from_text("", NULL));
    assert_null(attrval_from_text("{\"a\":", NULL));
    assert_null(attrval_from_text("{} {}", NULL));
    assert_null(attrval_from_text(NULL, NULL));
}

/* ---- attrval_task_image ---- */

static task base_task(void)
{
    task t;
    memset(&t, 0, sizeof t);
    snprintf(t.id, sizeof t.id, "%s", ID1);
    snprintf(t.task_type, sizeof t.task_type, "TASK1");
    t.status = TASK_CREATED;
    t.status_msg = (char *)"";
    t.created_time = 1700000000;
    t.updated_time = TASK_NULL_TIME;
    t.ttl = TASK_NULL_TIME;
    t.data = (char *)"{\"foo\":\"bar\"}";
    return t;
}

static char *image(const task *t, const char *data_image, bool want_ok)
{
    sbuf b = {0};
    bool ok = attrval_task_image(&b, t, data_image);
    assert_int_equal(ok, want_ok);
    assert_false(sbuf_failed(&b));
    return sbuf_take(&b, NULL);
}

static void expect_attr(json_t *img, const char *name, const char *type, const char *text)
{
    json_t *a = json_object_get(img, name);
    if (!a)
        fail_msg("image lacks %s", name);
    assert_int_equal(json_object_size(a), 1);
    assert_string_equal(json_string_value(json_object_get(a, type)), text);
}

static void test_task_image_minimal(void **state)
{
    (void)state;
    task t = base_task();
    char *s = image(&t, NULL, true);
    assert_string_equal(s, "{\"id\":{\"S\":\"" ID1 "\"},\"task_type\":{\"S\":\"TASK1\"},"
                           "\"status\":{\"S\":\"CREATED\"},\"status_msg\":{\"S\":\"\"},"
                           "\"created_time\":{\"N\":\"1700000000\"},"
                           "\"data\":{\"M\":{\"foo\":{\"S\":\"bar\"}}}}");
    json_t *img = parse(s);
    assert_int_equal(json_object_size(img), 6);
    expect_attr(img, "id", "S", ID1);
    expect_attr(img, "task_type", "S", "TASK1");
    expect_attr(img, "status", "S", "CREATED");
    expect_attr(img, "status_msg", "S", "");
    expect_attr(img, "created_time", "N", "1700000000");
    /* unset attributes are left out, not written as NULL */
    assert_null(json_object_get(img, "updated_time"));
    assert_null(json_object_get(img, "ttl"));
    assert_null(json_object_get(img, "result"));
    assert_null(json_object_get(img, "trace"));
    json_t *data = attrval_to_json(json_object_get(img, "data"));
    json_t *want = parse("{\"foo\":\"bar\"}");
    assert_true(json_equal(data, want));
    json_decref(want);
    json_decref(data);
    json_decref(img);
    free(s);
}

static void test_task_image_all_fields(void **state)
{
    (void)state;
    task t = base_task();
    t.status = TASK_COMPLETED;
    t.status_msg = (char *)"done \"ok\"\n";
    t.updated_time = 1700000100;
    t.ttl = 0;
    t.result = (char *)"{\"n\":[1,2.5],\"s\":null}";
    t.trace = (char *)TRACE;
    char *s = image(&t, NULL, true);
    json_t *img = parse(s);
    assert_int_equal(json_object_size(img), 10);
    expect_attr(img, "status", "S", "COMPLETED");
    expect_attr(img, "status_msg", "S", "done \"ok\"\n");
    expect_attr(img, "updated_time", "N", "1700000100");
    expect_attr(img, "ttl", "N", "0"); /* zero is set, only TASK_NULL_TIME is absent */
    expect_attr(img, "trace", "S", TRACE);
    json_t *result = attrval_to_json(json_object_get(img, "result"));
    json_t *want = parse("{\"n\":[1,2.5],\"s\":null}");
    assert_true(json_equal(result, want));
    json_decref(want);
    json_decref(result);
    json_decref(img);
    /* the attribute order is fixed */
    const char *order[] = {"\"id\"",           "\"task_type\"",    "\"status\"", "\"status_msg\"",
                           "\"created_time\"", "\"updated_time\"", "\"ttl\"",    "\"data\"",
                           "\"result\"",       "\"trace\""};
    const char *p = s;
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        const char *q = strstr(p, order[i]);
        if (!q)
            fail_msg("%s missing or out of order in %s", order[i], s);
        p = q + strlen(order[i]);
    }
    free(s);
}

/* A slim MODIFY image (as schemas 5 and 6 kept them: without data and trace), restored with the
 * task's data and trace, is the whole image. */
static void test_task_image_restored(void **state)
{
    (void)state;
    task t = base_task();
    t.status = TASK_COMPLETED;
    t.updated_time = 1700000100;
    t.result = (char *)"{\"n\":1}";
    const char *slim = "{\"id\":{\"S\":\"" ID1 "\"},\"task_type\":{\"S\":\"TASK1\"},"
                       "\"status\":{\"S\":\"COMPLETED\"},\"status_msg\":{\"S\":\"\"},"
                       "\"created_time\":{\"N\":\"1700000000\"},\"updated_time\":{\"N\":"
                       "\"1700000100\"},\"result\":{\"M\":{\"n\":{\"N\":\"1\"}}}}";
    const char *traces[] = {TRACE, NULL};
    for (int i = 0; i < 2; i++) {
        t.trace = (char *)traces[i];
        char *data_image = attrval_from_text(t.data, NULL);
        assert_non_null(data_image);
        sbuf back = {0};
        attrval_image_restore(&back, slim, data_image, t.trace);
        assert_false(sbuf_failed(&back));
        char *whole = image(&t, NULL, true);
        json_t *a = parse(back.data), *b = parse(whole);
        assert_true(json_equal(a, b)); /* the same attributes; only their order differs */
        json_decref(a);
        json_decref(b);
        free(whole);
        free(data_image);
        sbuf_free(&back);
    }
    /* text that is not an image is kept as it is */
    sbuf odd = {0};
    attrval_image_restore(&odd, "null", "{\"M\":{}}", NULL);
    assert_string_equal(odd.data, "null");
    sbuf_free(&odd);
}

static void test_task_image_each_optional_alone(void **state)
{
    (void)state;
    task t = base_task();
    t.updated_time = 5;
    char *s = image(&t, NULL, true);
    json_t *img = parse(s);
    expect_attr(img, "updated_time", "N", "5");
    assert_null(json_object_get(img, "ttl"));
    json_decref(img);
    free(s);

    t = base_task();
    t.ttl = 1662381756;
    s = image(&t, NULL, true);
    img = parse(s);
    expect_attr(img, "ttl", "N", "1662381756");
    assert_null(json_object_get(img, "updated_time"));
    json_decref(img);
    free(s);

    t = base_task();
    t.result = (char *)"null";
    s = image(&t, NULL, true);
    img = parse(s);
    json_t *r = json_object_get(img, "result");
    assert_non_null(r);
    assert_true(json_is_true(json_object_get(r, "NULL")));
    assert_null(json_object_get(img, "trace"));
    json_decref(img);
    free(s);

    t = base_task();
    t.trace = (char *)TRACE;
    s = image(&t, NULL, true);
    img = parse(s);
    expect_attr(img, "trace", "S", TRACE);
    assert_null(json_object_get(img, "result"));
    json_decref(img);
    free(s);

    /* a NULL status_msg is written as "" */
    t = base_task();
    t.status_msg = NULL;
    t.status = TASK_IN_PROGRESS;
    s = image(&t, NULL, true);
    img = parse(s);
    expect_attr(img, "status_msg", "S", "");
    expect_attr(img, "status", "S", "IN_PROGRESS");
    json_decref(img);
    free(s);
}

static void test_task_image_data_image_same(void **state)
{
    (void)state;
    static const char *const datas[] = {
        "{}", "{\"foo\":\"bar\"}", "{\"a\":[1,0.1,1.0,true,null,{\"b\":\"\\u00e9\"}],\"z\":{}}"};
    for (size_t i = 0; i < sizeof datas / sizeof datas[0]; i++) {
        task t = base_task();
        t.data = (char *)datas[i];
        t.result = (char *)"[1]";
        char *derived = image(&t, NULL, true);
        char *data_image = attrval_from_text(datas[i], NULL);
        assert_non_null(data_image);
        char *given = image(&t, data_image, true);
        assert_string_equal(given, derived);
        free(given);
        free(data_image);
        free(derived);
    }

    /* no data at all is an empty map, the same as data "{}" */
    task t = base_task();
    t.data = NULL;
    char *none = image(&t, NULL, true);
    t.data = (char *)"{}";
    char *empty = image(&t, NULL, true);
    char *given = image(&t, "{\"M\":{}}", true);
    assert_string_equal(none, empty);
    assert_string_equal(given, empty);
    assert_non_null(strstr(none, "\"data\":{\"M\":{}}"));
    free(none);
    free(empty);
    free(given);

    /* the given image is used as is, even if t->data disagrees */
    t.data = (char *)"{\"a\":1}";
    given = image(&t, "{\"M\":{\"b\":{\"N\":\"2\"}}}", true);
    assert_non_null(strstr(given, "\"data\":{\"M\":{\"b\":{\"N\":\"2\"}}}"));
    free(given);
}

static void test_task_image_bad_stored_json(void **state)
{
    (void)state;
    task t = base_task();
    t.data = (char *)"{not json";
    char *s = image(&t, NULL, false);
    json_t *img = parse(s); /* still a JSON object, without data */
    assert_null(json_object_get(img, "data"));
    expect_attr(img, "id", "S", ID1);
    json_decref(img);
    free(s);

    t = base_task();
    t.result = (char *)"[1,";
    t.trace = (char *)TRACE;
    s = image(&t, NULL, false);
    img = parse(s);
    assert_null(json_object_get(img, "result"));
    assert_non_null(json_object_get(img, "data"));
    expect_attr(img, "trace", "S", TRACE);
    json_decref(img);
    free(s);
}

/* ---- change_record_write ---- */

static json_t *record(int64_t seq, const char *event, const char *id, const char *new_image,
                      const char *old_image, int64_t time)
{
    sbuf b = {0};
    change_record_write(&b, seq, event, id, new_image, old_image, time);
    assert_false(sbuf_failed(&b));
    json_t *r = parse(b.data);
    sbuf_free(&b);
    return r;
}

static void check_common(json_t *r, int64_t seq, const char *event, const char *id, int64_t time)
{
    char eid[32];
    snprintf(eid, sizeof eid, "%016llx", (unsigned long long)seq);
    assert_string_equal(json_string_value(json_object_get(r, "eventID")), eid);
    assert_string_equal(json_string_value(json_object_get(r, "eventName")), event);
    assert_string_equal(json_string_value(json_object_get(r, "eventVersion")), "1.1");
    assert_string_equal(json_string_value(json_object_get(r, "eventSource")), "taskd:store");
    json_t *ddb = json_object_get(r, "dynamodb");
    assert_true(json_is_object(ddb));
    json_t *keys = json_object_get(ddb, "Keys");
    assert_int_equal(json_object_size(keys), 1);
    assert_int_equal(json_object_size(json_object_get(keys, "id")), 1);
    assert_string_equal(json_string_value(json_object_get(json_object_get(keys, "id"), "S")), id);
    json_t *sn = json_object_get(ddb, "SequenceNumber");
    assert_true(json_is_string(sn));
    char seqs[32];
    snprintf(seqs, sizeof seqs, "%lld", (long long)seq);
    assert_string_equal(json_string_value(sn), seqs);
    assert_string_equal(json_string_value(json_object_get(ddb, "StreamViewType")),
                        "NEW_AND_OLD_IMAGES");
    json_t *t = json_object_get(ddb, "ApproximateCreationDateTime");
    assert_true(json_is_integer(t));
    assert_int_equal(json_integer_value(t), time);
}

static void test_record_insert(void **state)
{
    (void)state;
    task t = base_task();
    char *img = image(&t, NULL, true);
    json_t *r = record(1, "INSERT", ID1, img, NULL, 1700000000);
    check_common(r, 1, "INSERT", ID1, 1700000000);
    json_t *ddb = json_object_get(r, "dynamodb");
    assert_null(json_object_get(ddb, "OldImage"));
    json_t *want = parse(img);
    assert_true(json_equal(json_object_get(ddb, "NewImage"), want));
    json_decref(want);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_object_get(ddb, "NewImage"), "task_type"), "S")),
                        "TASK1");
    json_decref(r);
    free(img);
}

static void test_record_modify(void **state)
{
    (void)state;
    task before = base_task();
    task after = base_task();
    after.status = TASK_IN_PROGRESS;
    after.updated_time = 1700000050;
    char *old_img = image(&before, NULL, true);
    char *new_img = image(&after, NULL, true);
    json_t *r = record(123456789, "MODIFY", ID1, new_img, old_img, 1700000050);
    check_common(r, 123456789, "MODIFY", ID1, 1700000050);
    json_t *ddb = json_object_get(r, "dynamodb");
    json_t *n = json_object_get(ddb, "NewImage");
    json_t *o = json_object_get(ddb, "OldImage");
    assert_non_null(n);
    assert_non_null(o);
    expect_attr(n, "status", "S", "IN_PROGRESS");
    expect_attr(o, "status", "S", "CREATED");
    expect_attr(n, "updated_time", "N", "1700000050");
    assert_null(json_object_get(o, "updated_time"));
    json_decref(r);
    free(old_img);
    free(new_img);
}

static void test_record_remove(void **state)
{
    (void)state;
    task t = base_task();
    t.status = TASK_FAILED;
    char *img = image(&t, NULL, true);
    json_t *r = record(INT64_MAX, "REMOVE", ID1, NULL, img, 0);
    check_common(r, INT64_MAX, "REMOVE", ID1, 0);
    assert_string_equal(json_string_value(json_object_get(r, "eventID")), "7fffffffffffffff");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(r, "dynamodb"), "SequenceNumber")),
        "9223372036854775807");
    json_t *ddb = json_object_get(r, "dynamodb");
    assert_null(json_object_get(ddb, "NewImage"));
    expect_attr(json_object_get(ddb, "OldImage"), "status", "S", "FAILED");
    json_decref(r);
    free(img);
}

static void test_record_escapes_and_appends(void **state)
{
    (void)state;
    /* the id and event name are escaped; two records append into one buffer */
    sbuf b = {0};
    sbuf_putc(&b, '[');
    change_record_write(&b, 7, "INSERT", "we\"ird\\id", "{\"id\":{\"S\":\"x\"}}", NULL, 5);
    sbuf_putc(&b, ',');
    change_record_write(&b, 8, "REMOVE", "x", NULL, "{}", 6);
    sbuf_putc(&b, ']');
    json_t *arr = parse(b.data);
    assert_int_equal(json_array_size(arr), 2);
    check_common(json_array_get(arr, 0), 7, "INSERT", "we\"ird\\id", 5);
    check_common(json_array_get(arr, 1), 8, "REMOVE", "x", 6);
    assert_string_equal(json_string_value(json_object_get(json_array_get(arr, 0), "eventID")),
                        "0000000000000007");
    json_decref(arr);
    sbuf_free(&b);
}

/* ---- json_write_compact ---- */

static void test_compact_reals(void **state)
{
    (void)state;
    expect_real_text(0.1, "0.1");
    expect_real_text(1e300, "1e+300");
    expect_real_text(1.0, "1.0");
    expect_real_text(-1.0, "-1.0");
    expect_real_text(100.0, "100.0");
    expect_real_text(0.0, "0.0");
    expect_real_text(-0.0, "-0.0");
    expect_real_text(2.5, "2.5");
    expect_real_text(0.1 + 0.2, "0.30000000000000004");
    expect_real_text(1.0 / 3.0, "0.3333333333333333");
    expect_real_text(1e-7, "1e-07");
    expect_real_text(1e16, "1e+16");
    expect_real_text(123456789.0, "123456789.0");
    expect_real_text(123456.789, "123456.789");
    expect_real_text(1.7976931348623157e308, "1.7976931348623157e+308");
    expect_real_text(2.2250738585072014e-308, "2.2250738585072014e-308");
    expect_real_text(9007199254740993.0, "9007199254740992.0");
}

static void test_compact_reals_round_trip(void **state)
{
    (void)state;
    /* many doubles, including subnormals, read back bit for bit and as reals */
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double d;
        memcpy(&d, &x, sizeof d);
        if (!isfinite(d))
            continue;
        json_t *v = json_real(d);
        char *s = compact(v);
        assert_true(strlen(s) <= 25);
        json_t *back = json_loads(s, JSON_DECODE_ANY, NULL);
        if (!back || !json_is_real(back) || memcmp(&d, &(double){json_real_value(back)}, 8) != 0)
            fail_msg("%.17g written as %s does not read back", d, s);
        json_decref(back);
        json_decref(v);
        free(s);
    }
}

static void test_compact_integers_and_literals(void **state)
{
    (void)state;
    json_t *v = parse("[0,-1,9223372036854775807,-9223372036854775808,true,false,null]");
    char *s = compact(v);
    assert_string_equal(s, "[0,-1,9223372036854775807,-9223372036854775808,true,false,null]");
    free(s);
    json_decref(v);
}

static void test_compact_strings(void **state)
{
    (void)state;
    static const char raw[] = "q\"b\\s/\n\r\t\b\f\x01\x1f\x7f\0z\xc3\xa9";
    json_t *v = json_stringn(raw, sizeof raw - 1);
    assert_non_null(v);
    char *s = compact(v);
    assert_string_equal(s, "\"q\\\"b\\\\s/\\n\\r\\t\\b\\f\\u0001\\u001f\x7f\\u0000z\xc3\xa9\"");
    json_t *back = parse(s);
    assert_true(json_equal(back, v));
    json_decref(back);
    free(s);
    json_decref(v);
}

static void test_compact_key_order(void **state)
{
    (void)state;
    json_t *o = json_object();
    json_object_set_new(o, "zeta", json_integer(1));
    json_object_set_new(o, "alpha", json_integer(2));
    json_object_set_new(o, "mid\"q", json_array());
    json_object_set_new(o, "b", json_object());
    char *s = compact(o);
    assert_string_equal(s, "{\"zeta\":1,\"alpha\":2,\"mid\\\"q\":[],\"b\":{}}");
    free(s);
    json_decref(o);

    /* and the order of parsed text */
    json_t *p = parse("{ \"c\" : 1 , \"a\" : { \"y\" : 0.5 , \"x\" : [ ] } , \"b\" : \"\" }");
    s = compact(p);
    assert_string_equal(s, "{\"c\":1,\"a\":{\"y\":0.5,\"x\":[]},\"b\":\"\"}");
    free(s);
    json_decref(p);
}

static void test_json_to_text(void **state)
{
    (void)state;
    json_t *v = parse("{\"a\": [1, 0.1, 1.0, \"x\"], \"b\": null}");
    char *s = json_to_text(v);
    assert_string_equal(s, "{\"a\":[1,0.1,1.0,\"x\"],\"b\":null}");
    free(s);
    json_decref(v);
    v = json_real(1e300);
    s = json_to_text(v);
    assert_string_equal(s, "1e+300");
    free(s);
    json_decref(v);

    /* compact appends to what is already in the buffer */
    sbuf b = {0};
    sbuf_puts(&b, "x=");
    v = json_integer(5);
    json_write_compact(&b, v);
    json_decref(v);
    assert_string_equal(b.data, "x=5");
    sbuf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_scalars),
        cmocka_unit_test(test_write_containers),
        cmocka_unit_test(test_write_nested),
        cmocka_unit_test(test_write_appends),
        cmocka_unit_test(test_write_counts_dynamodb_size),
        cmocka_unit_test(test_number_size_bounds_what_dynamodb_counts),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_to_json_sets),
        cmocka_unit_test(test_to_json_malformed),
        cmocka_unit_test(test_from_text),
        cmocka_unit_test(test_task_image_minimal),
        cmocka_unit_test(test_task_image_all_fields),
        cmocka_unit_test(test_task_image_restored),
        cmocka_unit_test(test_task_image_each_optional_alone),
        cmocka_unit_test(test_task_image_data_image_same),
        cmocka_unit_test(test_task_image_bad_stored_json),
        cmocka_unit_test(test_record_insert),
        cmocka_unit_test(test_record_modify),
        cmocka_unit_test(test_record_remove),
        cmocka_unit_test(test_record_escapes_and_appends),
        cmocka_unit_test(test_compact_reals),
        cmocka_unit_test(test_compact_reals_round_trip),
        cmocka_unit_test(test_compact_integers_and_literals),
        cmocka_unit_test(test_compact_strings),
        cmocka_unit_test(test_compact_key_order),
        cmocka_unit_test(test_json_to_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
