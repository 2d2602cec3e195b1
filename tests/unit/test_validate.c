/*
 * Unit tests for core/validate: POST /tasks and PATCH /tasks/{id} bodies and
 * the limit query parameter. The FastAPI-shaped 422 body is parsed back with
 * jansson and every detail item is checked exactly, as pydantic v2 renders
 * it: the keys in the order type, loc, msg, input, ctx; input and ctx present
 * exactly when expected, and equal as JSON values (an integer is not a real).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/validate.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---- */

/*
 * One expected detail item. loc, input and ctx are JSON texts; input or ctx
 * NULL means the item must not have that key.
 */
typedef struct expect_item {
    const char *type;
    const char *loc;
    const char *msg;
    const char *input;
    const char *ctx;
} expect_item;

#define LOC(field) "[\"body\",\"" field "\"]"
#define LOC_BODY   "[\"body\"]"
#define LOC_LIMIT  "[\"query\",\"limit\"]"

#define MSG_INT_PARSING      "Input should be a valid integer, unable to parse string as an integer"
#define MSG_INT_PARSING_SIZE "Unable to parse input string as an integer, exceeded maximum size"
#define MSG_FRACTION         "Input should be a valid integer, got a number with a fractional part"
#define MSG_INT_TYPE         "Input should be a valid integer"
#define MSG_OBJECT           "Input should be a valid dictionary or object to extract fields from"
#define MSG_DICT             "Input should be a valid dictionary"
#define MSG_STRING           "Input should be a valid string"
#define MSG_GE0              "Input should be greater than or equal to 0"
#define MSG_LE_INT64         "Input should be less than or equal to 9223372036854775807"
#define MSG_TYPES            "Input should be 'TASK1', 'TASK2' or 'TASK3'"
#define MSG_STATUSES         "Input should be 'CREATED', 'IN_PROGRESS', 'COMPLETED' or 'FAILED'"
#define MSG_RANGE                                                                                  \
    "Value error, integers must lie between -9223372036854775808 and 9223372036854775807"
#define MSG_DEEP "Value error, objects and arrays may nest at most 31 levels deep"
#define NUMBERS  "numbers must be 0 or of a magnitude from 1e-130 to below 1e126"
#define NAMES    "member names may not be empty"

#define CTX_TYPES    "{\"expected\":\"'TASK1', 'TASK2' or 'TASK3'\"}"
#define CTX_STATUSES "{\"expected\":\"'CREATED', 'IN_PROGRESS', 'COMPLETED' or 'FAILED'\"}"
#define CTX_GE0      "{\"ge\":0}"
#define CTX_LE_INT64 "{\"le\":9223372036854775807}"
#define CTX_RANGE                                                                                  \
    "{\"error\":\"integers must lie between -9223372036854775808 and 9223372036854775807\"}"
#define CTX_DEEP "{\"error\":\"objects and arrays may nest at most 31 levels deep\"}"

/*
 * Flags for reading 422 bodies: integers beyond 64 bits are echoed as sent,
 * which jansson reads only as reals; check_body() then reads both sides so.
 */
static size_t read_flags = JSON_DECODE_ANY;

/* Whether value got equals the JSON text want (any JSON value). */
static bool json_same(const json_t *got, const char *want)
{
    json_error_t jerr;
    json_t *w = json_loads(want, read_flags, &jerr);
    if (!w)
        fail_msg("expected JSON text does not parse: %s (%s)", want, jerr.text);
    bool same = got && json_equal(got, w);
    json_decref(w);
    return same;
}

/* Check one detail item against w; body is the whole 422 body, for messages. */
static void check_item(const json_t *item, const expect_item *w, size_t i, const char *body)
{
    if (!json_is_object(item))
        fail_msg("item %zu is not an object: %s", i, body);
    /* the keys, in pydantic's order */
    const char *want_keys[5] = {"type", "loc", "msg"};
    size_t nk = 3;
    if (w->input)
        want_keys[nk++] = "input";
    if (w->ctx)
        want_keys[nk++] = "ctx";
    size_t k = 0;
    for (void *it = json_object_iter((json_t *)item); it;
         it = json_object_iter_next((json_t *)item, it), k++) {
        const char *key = json_object_iter_key(it);
        if (k >= nk || strcmp(key, want_keys[k]) != 0)
            fail_msg("item %zu: key %zu is \"%s\", want \"%s\": %s", i, k, key,
                     k < nk ? want_keys[k] : "(none)", body);
    }
    if (k != nk)
        fail_msg("item %zu has %zu keys, want %zu: %s", i, k, nk, body);
    const char *type = json_string_value(json_object_get(item, "type"));
    if (!type || strcmp(type, w->type) != 0)
        fail_msg("item %zu: type is not \"%s\": %s", i, w->type, body);
    if (!json_same(json_object_get(item, "loc"), w->loc))
        fail_msg("item %zu: loc is not %s: %s", i, w->loc, body);
    const char *msg = json_string_value(json_object_get(item, "msg"));
    if (!msg || strcmp(msg, w->msg) != 0)
        fail_msg("item %zu: msg is not \"%s\": %s", i, w->msg, body);
    if (w->input && !json_same(json_object_get(item, "input"), w->input))
        fail_msg("item %zu: input is not %s: %s", i, w->input, body);
    if (w->ctx && !json_same(json_object_get(item, "ctx"), w->ctx))
        fail_msg("item %zu: ctx is not %s: %s", i, w->ctx, body);
}

/* Parse validation_body(v) and compare it with the n expected items. */
static void check_body(validation *v, const expect_item *want, size_t n)
{
    size_t len = 0;
    char *body = validation_body(v, &len);
    assert_non_null(body);
    assert_int_equal(len, strlen(body));
    if (v->count != (int)n)
        fail_msg("%d items, want %zu: %s", v->count, n, body);
    json_error_t jerr;
    read_flags = JSON_DECODE_ANY;
    json_t *root = json_loadb(body, len, 0, &jerr);
    if (!root && json_error_code(&jerr) == json_error_numeric_overflow) {
        read_flags |= JSON_DECODE_INT_AS_REAL;
        root = json_loadb(body, len, JSON_DECODE_INT_AS_REAL, &jerr);
    }
    if (!root)
        fail_msg("422 body is not JSON: %s (%s)", body, jerr.text);
    assert_int_equal(json_object_size(root), 1);
    json_t *detail = json_object_get(root, "detail");
    assert_true(json_is_array(detail));
    assert_int_equal(json_array_size(detail), n);
    for (size_t i = 0; i < n; i++)
        check_item(json_array_get(detail, i), &want[i], i, body);
    json_decref(root);
    free(body);
}

/* validate_create over len bytes with config c; expect failure with exactly the n items. */
static void create_fails_cfg(const config *c, const char *body, size_t len, const expect_item *want,
                             size_t n)
{
    create_request r;
    validation v = {0};
    if (validate_create(c, body, len, &r, &v)) {
        create_request_free(&r);
        fail_msg("accepted: %.*s", (int)len, body);
    }
    assert_null(r.data);
    assert_null(r.data_image);
    check_body(&v, want, n);
    validation_free(&v);
}

/* The same with the default config. */
static void create_fails_n(const char *body, size_t len, const expect_item *want, size_t n)
{
    config c;
    assert_true(config_defaults(&c));
    create_fails_cfg(&c, body, len, want, n);
    config_free(&c);
}

/* One expected item for a NUL-terminated body. */
static void create_fails(const char *body, expect_item want)
{
    create_fails_n(body, strlen(body), &want, 1);
}

/* {"task_type":"TASK1","ttl":<ttl>} fails with the one item want. */
static void ttl_fails(const char *ttl, expect_item want)
{
    char body[256];
    snprintf(body, sizeof body, "{\"task_type\":\"TASK1\",\"ttl\":%s}", ttl);
    create_fails(body, want);
}

/*
 * The json_invalid item the validator must give for text that jansson refuses:
 * loc ["body", <jansson's byte offset>], input {}, ctx {"error": <jansson's text>}.
 */
typedef struct json_invalid_item {
    char loc[48];
    char ctx[512];
    expect_item item;
} json_invalid_item;

static void json_invalid_for(const char *body, size_t len, json_invalid_item *out)
{
    json_error_t jerr;
    const char *nul = memchr(body, '\0', len);
    if (nul) { /* refused before the parser, which lets one pass after a number */
        snprintf(jerr.text, sizeof jerr.text, "a NUL byte is not allowed in JSON text");
        jerr.position = (int)(nul - body);
    } else if (json_loadb(body, len, JSON_DECODE_ANY, &jerr)) {
        fail_msg("jansson accepts %.*s", (int)len, body);
    }
    snprintf(out->loc, sizeof out->loc, "[\"body\",%d]", jerr.position);
    json_t *ctx = json_pack("{s:s}", "error", jerr.text);
    char *text = json_dumps(ctx, JSON_COMPACT);
    assert_non_null(text);
    assert_true(strlen(text) < sizeof out->ctx);
    strcpy(out->ctx, text);
    free(text);
    json_decref(ctx);
    out->item = (expect_item){"json_invalid", out->loc, "JSON decode error", "{}", out->ctx};
}

static void create_json_invalid(const char *body, size_t len)
{
    json_invalid_item w;
    json_invalid_for(body, len, &w);
    create_fails_n(body, len, &w.item, 1);
}

/* validate_create over text with the default config; expect success. */
static void create_ok(const char *body, create_request *r)
{
    config c;
    assert_true(config_defaults(&c));
    validation v = {0};
    bool ok = validate_create(&c, body, strlen(body), r, &v);
    if (!ok) {
        char *b = validation_body(&v, NULL);
        fail_msg("rejected %s: %s", body, b ? b : "?");
    }
    assert_int_equal(v.count, 0);
    assert_non_null(r->data);
    assert_non_null(r->data_image);
    validation_free(&v);
    config_free(&c);
}

/* {"task_type":"TASK1","ttl":<ttl>} is accepted with this ttl. */
static void ttl_ok(const char *ttl, int64_t want)
{
    char body[256];
    snprintf(body, sizeof body, "{\"task_type\":\"TASK1\",\"ttl\":%s}", ttl);
    create_request r;
    create_ok(body, &r);
    if (r.ttl != want)
        fail_msg("ttl %s read as %lld, want %lld", ttl, (long long)r.ttl, (long long)want);
    create_request_free(&r);
}

/* A malloc'ed body: prefix, then n copies of unit, then suffix. */
static char *repeat(const char *prefix, const char *unit, size_t n, const char *suffix)
{
    size_t lp = strlen(prefix), lu = strlen(unit), ls = strlen(suffix);
    char *s = malloc(lp + lu * n + ls + 1);
    assert_non_null(s);
    memcpy(s, prefix, lp);
    for (size_t i = 0; i < n; i++)
        memcpy(s + lp + i * lu, unit, lu);
    memcpy(s + lp + lu * n, suffix, ls + 1);
    return s;
}

/* ---- validation list itself ---- */

static void test_validation_empty_body(void **state)
{
    (void)state;
    validation v = {0};
    size_t len = 99;
    char *b = validation_body(&v, &len);
    assert_string_equal(b, "{\"detail\":[]}");
    assert_int_equal(len, strlen("{\"detail\":[]}"));
    free(b);
    validation_free(&v);
}

static void test_validation_add_escapes(void **state)
{
    (void)state;
    validation v = {0};
    validation_add(&v, "body", "a\"b", "t", "line\nbreak \\ \x01", NULL, NULL);
    validation_add(&v, "query", NULL, "u", "m", "[1,\"x\"]", "{\"k\":true}");
    validation_add(&v, "body", "f", "w", "no ctx", "null", NULL);
    validation_add(&v, "body", "g", "x", "no input", NULL, "{}");
    /* exactly pydantic's rendering: compact, keys in order, input and ctx only when given */
    char *b = validation_body(&v, NULL);
    assert_string_equal(
        b, "{\"detail\":["
           "{\"type\":\"t\",\"loc\":[\"body\",\"a\\\"b\"],\"msg\":\"line\\nbreak \\\\ \\u0001\"},"
           "{\"type\":\"u\",\"loc\":[\"query\"],\"msg\":\"m\",\"input\":[1,\"x\"],"
           "\"ctx\":{\"k\":true}},"
           "{\"type\":\"w\",\"loc\":[\"body\",\"f\"],\"msg\":\"no ctx\",\"input\":null},"
           "{\"type\":\"x\",\"loc\":[\"body\",\"g\"],\"msg\":\"no input\",\"ctx\":{}}]}");
    free(b);
    expect_item want[] = {
        {"t", "[\"body\",\"a\\\"b\"]", "line\nbreak \\ \x01", NULL, NULL},
        {"u", "[\"query\"]", "m", "[1,\"x\"]", "{\"k\":true}"},
        {"w", LOC("f"), "no ctx", "null", NULL},
        {"x", LOC("g"), "no input", NULL, "{}"},
    };
    check_body(&v, want, 4);
    validation_free(&v);
    assert_int_equal(v.count, 0);
    assert_null(v.items.data);
}

static void test_validation_literal(void **state)
{
    (void)state;
    static const char *const one[] = {"ONLY"}, *const two[] = {"A", "B"},
                             *const four[] = {"A", "B", "C", "D"};
    validation v = {0};
    validation_literal(&v, "query", "status", one, 1, "x");
    validation_literal(&v, "body", "kind", two, 2, "q\"uote\n\xc3\xa9");
    validation_literal(&v, "query", "task_type", four, 4, "");
    expect_item want[] = {
        {"literal_error", "[\"query\",\"status\"]", "Input should be 'ONLY'", "\"x\"",
         "{\"expected\":\"'ONLY'\"}"},
        {"literal_error", LOC("kind"), "Input should be 'A' or 'B'", "\"q\\\"uote\\n\\u00e9\"",
         "{\"expected\":\"'A' or 'B'\"}"},
        {"literal_error", "[\"query\",\"task_type\"]", "Input should be 'A', 'B', 'C' or 'D'",
         "\"\"", "{\"expected\":\"'A', 'B', 'C' or 'D'\"}"},
    };
    check_body(&v, want, 3);
    validation_free(&v);
}

/* ---- validate_create: valid bodies ---- */

static void test_create_task_type_only(void **state)
{
    (void)state;
    create_request r;
    create_ok("{\"task_type\":\"TASK1\"}", &r);
    assert_string_equal(r.task_type, "TASK1");
    assert_string_equal(r.data, "{}");
    assert_string_equal(r.data_image, "{\"M\":{}}");
    assert_int_equal(r.data_size, 3); /* as DynamoDB counts an empty map */
    assert_int_equal(r.ttl, TASK_NULL_TIME);
    create_request_free(&r);
    assert_null(r.data);
    assert_null(r.data_image);
    create_request_free(&r); /* twice is harmless */
}

static void test_create_data_reals_as_python_writes_them(void **state)
{
    (void)state;
    /* stored as the original stored them (json.dumps(): Python's repr() of each real), a whole
     * one below 1e16 with its point and ".0" */
    create_request r;
    create_ok("{\"task_type\":\"TASK1\",\"data\":{\"a\":1e15,\"b\":123456789012345e1,"
              "\"c\":1e16,\"d\":0.0001,\"e\":1E-5,\"f\":2}}",
              &r);
    assert_string_equal(r.data, "{\"a\":1000000000000000.0,\"b\":1234567890123450.0,\"c\":1e+16,"
                                "\"d\":0.0001,\"e\":1e-05,\"f\":2}");
    create_request_free(&r);
}

static void test_create_every_default_type(void **state)
{
    (void)state;
    static const char *const types[] = {"TASK1", "TASK2", "TASK3"};
    for (size_t i = 0; i < 3; i++) {
        char body[64];
        snprintf(body, sizeof body, "{\"task_type\":\"%s\",\"data\":{}}", types[i]);
        create_request r;
        create_ok(body, &r);
        assert_string_equal(r.task_type, types[i]);
        assert_string_equal(r.data, "{}");
        assert_string_equal(r.data_image, "{\"M\":{}}");
        assert_int_equal(r.data_size, 3);
        create_request_free(&r);
    }
}

static void test_create_ttl_integer(void **state)
{
    (void)state;
    ttl_ok("1662381756", 1662381756);
    ttl_ok("0", 0);
    ttl_ok("9223372036854775807", INT64_MAX);
}

static void test_create_ttl_digit_string(void **state)
{
    (void)state;
    create_request r;
    create_ok("{\"task_type\":\"TASK1\",\"data\":{\"foo\":\"bar\"},\"ttl\":\"1662381756\"}", &r);
    assert_int_equal(r.ttl, 1662381756);
    assert_string_equal(r.data, "{\"foo\":\"bar\"}");
    assert_string_equal(r.data_image, "{\"M\":{\"foo\":{\"S\":\"bar\"}}}");
    assert_int_equal(r.data_size, 3 + 1 + 3 + 3); /* the image's, as attrval_write() counted it */
    create_request_free(&r);
    ttl_ok("\"0\"", 0);
    ttl_ok("\"000123\"", 123);
    ttl_ok("\"999999999999999999\"", 999999999999999999LL); /* 18 digits */
    ttl_ok("\"9223372036854775807\"", INT64_MAX);
    ttl_ok("\"-0\"", 0); /* minus zero is zero, as int("-0") */
}

/* A ttl string is read as pydantic v2 reads an int from one, as a query parameter is. */
static void test_create_ttl_string_as_pydantic_reads_it(void **state)
{
    (void)state;
    ttl_ok("\" 5\"", 5);
    ttl_ok("\"5\\t\"", 5);
    ttl_ok("\"4_2\"", 42);
    ttl_ok("\"5.0\"", 5);
    ttl_ok("\"+5\"", 5);
    ttl_ok("\"-0_0\"", 0);
    ttl_ok("\"0.0\"", 0);
    ttl_ok("\"1_000.000\"", 1000);
    ttl_ok("\"9_223_372_036_854_775_807\"", INT64_MAX);
    ttl_ok("\" 9223372036854775807.0 \"", INT64_MAX);
    ttl_fails("\"0-5\"",
              (expect_item){"greater_than_equal", LOC("ttl"), MSG_GE0, "\"0-5\"", CTX_GE0});
    ttl_fails("\"9_223_372_036_854_775_808\"",
              (expect_item){"less_than_equal", LOC("ttl"), MSG_LE_INT64,
                            "\"9_223_372_036_854_775_808\"", CTX_LE_INT64});
    static const char *const bad[] = {"\"5.5\"", "\" \"", "\"5.\"", "\"4__2\"", "\"_7\""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ttl_fails(bad[i], (expect_item){"int_parsing", LOC("ttl"), MSG_INT_PARSING, bad[i], NULL});
    /* 4301 digits: too long for pydantic's parse; the input is too long to echo */
    char *body = repeat("{\"task_type\":\"TASK1\",\"ttl\":\"", "1", 4301, "\"}");
    create_fails(body,
                 (expect_item){"int_parsing_size", LOC("ttl"), MSG_INT_PARSING_SIZE, NULL, NULL});
    free(body);
}

static void test_create_ttl_whole_float(void **state)
{
    (void)state;
    /* a float without a fractional part is that integer, as pydantic reads it */
    ttl_ok("1662381756.0", 1662381756);
    ttl_ok("1e3", 1000);
    ttl_ok("0.0", 0);
    ttl_ok("-0.0", 0);
}

static void test_create_ttl_null(void **state)
{
    (void)state;
    create_request r;
    create_ok("{\"task_type\":\"TASK3\",\"ttl\":null}", &r);
    assert_int_equal(r.ttl, TASK_NULL_TIME);
    create_request_free(&r);
}

static void test_create_extra_fields_ignored(void **state)
{
    (void)state;
    create_request r;
    create_ok("{\"task_type\":\"TASK1\",\"unknown\":[1,2],\"id\":\"x\"}", &r);
    assert_string_equal(r.task_type, "TASK1");
    assert_string_equal(r.data, "{}");
    create_request_free(&r);
}

static void test_create_data_compact_text(void **state)
{
    (void)state;
    create_request r;
    create_ok("{ \"task_type\" : \"TASK1\" ,\n \"data\" : {\n  \"z\" : [ 1 , 2.5 , 0.1 , true , "
              "false , null , \"x\\\"y\\n\" ],\n  \"a\" : { } , \"m\" : { \"k\" : -7 } } }",
              &r);
    /* compact, and the client's key order is kept */
    assert_string_equal(
        r.data, "{\"z\":[1,2.5,0.1,true,false,null,\"x\\\"y\\n\"],\"a\":{},\"m\":{\"k\":-7}}");
    assert_string_equal(r.data_image,
                        "{\"M\":{\"z\":{\"L\":[{\"N\":\"1\"},{\"N\":\"2.5\"},{\"N\":\"0.1\"},"
                        "{\"BOOL\":true},{\"BOOL\":false},{\"NULL\":true},{\"S\":\"x\\\"y\\n\"}]},"
                        "\"a\":{\"M\":{}},\"m\":{\"M\":{\"k\":{\"N\":\"-7\"}}}}}");
    /* both are JSON and mean the same thing as the input */
    json_t *d = json_loads(r.data, 0, NULL);
    assert_non_null(d);
    assert_true(json_is_real(json_array_get(json_object_get(d, "z"), 2)));
    assert_true(json_real_value(json_array_get(json_object_get(d, "z"), 2)) == 0.1);
    json_decref(d);
    create_request_free(&r);
}

static void test_create_reals_shortest(void **state)
{
    (void)state;
    create_request r;
    create_ok("{\"task_type\":\"TASK1\",\"data\":{\"a\":0.1,\"b\":1.0,\"c\":1e125,\"d\":-0.3,"
              "\"e\":123456.789,\"f\":1.5e-130}}",
              &r);
    assert_string_equal(r.data, "{\"a\":0.1,\"b\":1.0,\"c\":1e+125,\"d\":-0.3,\"e\":123456.789,"
                                "\"f\":1.5e-130}");
    json_t *d = json_loads(r.data, 0, NULL);
    assert_non_null(d);
    assert_true(json_is_real(json_object_get(d, "b")));
    assert_true(json_real_value(json_object_get(d, "c")) == 1e125);
    assert_true(json_real_value(json_object_get(d, "f")) == 1.5e-130);
    json_decref(d);
    create_request_free(&r);
}

static void test_create_unicode_data(void **state)
{
    (void)state;
    create_request r;
    create_ok(
        "{\"task_type\":\"TASK1\",\"data\":{\"k\\u00e9\":\"\\u20ac \xe2\x82\xac \\ud83d\\ude00\","
        "\"c\":\"\\u0001\"}}",
        &r);
    assert_string_equal(
        r.data, "{\"k\xc3\xa9\":\"\xe2\x82\xac \xe2\x82\xac \xf0\x9f\x98\x80\",\"c\":\"\\u0001\"}");
    json_t *d = json_loads(r.data, 0, NULL);
    assert_non_null(d);
    assert_string_equal(json_string_value(json_object_get(d, "c")), "\x01");
    json_decref(d);
    create_request_free(&r);
}

/* Nested {"a":{"a":...{}}} depth levels deep, as text. */
static char *nested(int depth)
{
    size_t n = (size_t)depth * 6 + 4;
    char *s = malloc(n);
    assert_non_null(s);
    size_t p = 0;
    for (int i = 0; i < depth; i++) {
        memcpy(s + p, "{\"a\":", 5);
        p += 5;
    }
    s[p++] = '{';
    s[p++] = '}';
    memset(s + p, '}', (size_t)depth);
    p += (size_t)depth;
    s[p] = '\0';
    return s;
}

/* {"task_type":"TASK1","data":<data>}, malloc'ed. */
static char *with_data(const char *data)
{
    return repeat("{\"task_type\":\"TASK1\",\"data\":", data, 1, "}");
}

static void test_create_deep_nesting(void **state)
{
    (void)state;
    /* VALIDATE_MAX_DEPTH levels (nested(n) is n + 1 deep) are kept, image and all */
    char *data = nested(VALIDATE_MAX_DEPTH - 1);
    char *body = with_data(data);
    create_request r;
    create_ok(body, &r);
    assert_string_equal(r.data, data);
    assert_int_equal(strncmp(r.data_image, "{\"M\":{\"a\":{\"M\":{\"a\":", 20), 0);
    json_t *img = json_loads(r.data_image, 0, NULL);
    assert_non_null(img);
    json_decref(img);
    create_request_free(&r);
    free(body);
    free(data);

    /* one level more: a value_error that echoes the data, so no change record is too deep */
    data = nested(VALIDATE_MAX_DEPTH);
    body = with_data(data);
    create_fails(body, (expect_item){"value_error", LOC("data"), MSG_DEEP, data, CTX_DEEP});
    free(body);
    free(data);
    /* far deeper: the same error, its input (over VALIDATE_INPUT_MAX bytes) left out */
    data = nested(1100);
    assert_true(strlen(data) > VALIDATE_INPUT_MAX);
    body = with_data(data);
    create_fails(body, (expect_item){"value_error", LOC("data"), MSG_DEEP, NULL, CTX_DEEP});
    free(body);
    free(data);

    /* far past the parser's depth limit: a json_invalid, not a crash */
    data = nested(5000);
    body = with_data(data);
    create_json_invalid(body, strlen(body));
    free(body);
    free(data);
}

/* ---- validate_create: faults ---- */

static void test_create_missing_task_type(void **state)
{
    (void)state;
    /* pydantic echoes the whole body as the input of a missing field */
    create_fails("{}", (expect_item){"missing", LOC("task_type"), "Field required", "{}", NULL});
    create_fails("{\"data\":{\"k\":[1,2.5]},\"ttl\":5}",
                 (expect_item){"missing", LOC("task_type"), "Field required",
                               "{\"data\":{\"k\":[1,2.5]},\"ttl\":5}", NULL});
    create_fails("{\"Task_Type\":\"TASK1\"}",
                 (expect_item){"missing", LOC("task_type"), "Field required",
                               "{\"Task_Type\":\"TASK1\"}", NULL});
    /* a body whose JSON text passes VALIDATE_INPUT_MAX: the input is left out */
    char *body = repeat("{\"data\":{\"k\":\"", "x", VALIDATE_INPUT_MAX, "\"}}");
    create_fails(body, (expect_item){"missing", LOC("task_type"), "Field required", NULL, NULL});
    free(body);
}

static void test_create_task_type_wrong_type(void **state)
{
    (void)state;
    /* not a string: still a literal_error, as pydantic's Literal says, with the value as input */
    static const char *const values[] = {"1", "null", "[\"TASK1\"]", "true", "{}", "1.5", "-0.0"};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        char body[64];
        snprintf(body, sizeof body, "{\"task_type\":%s}", values[i]);
        create_fails(body, (expect_item){"literal_error", LOC("task_type"), MSG_TYPES, values[i],
                                         CTX_TYPES});
    }
}

static void test_create_unknown_task_type(void **state)
{
    (void)state;
    static const char *const values[] = {"\"TASK4\"",  "\"task1\"",          "\"\"",
                                         "\"TASK1 \"", "\"\\u00e9\\n\\\"\"", "\" TASK1\""};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        char body[64];
        snprintf(body, sizeof body, "{\"task_type\":%s}", values[i]);
        create_fails(body, (expect_item){"literal_error", LOC("task_type"), MSG_TYPES, values[i],
                                         CTX_TYPES});
    }
    /* "\u0000" is refused by the parser itself, in words that name no flag of its own */
    create_fails("{\"task_type\":\"TASK1\\u0000\"}",
                 (expect_item){"json_invalid", "[\"body\",26]", "JSON decode error", "{}",
                               "{\"error\":\"a NUL character (\\\\u0000) is not allowed in a "
                               "string near '\\\"TASK1\\\\u0000\\\"'\"}"});
}

static void test_create_literal_follows_config(void **state)
{
    (void)state;
    static const struct {
        const char *cfg;
        const char *msg;
        const char *ctx;
    } cases[] = {
        {"{\"task_types\":[\"ONLY\"]}", "Input should be 'ONLY'", "{\"expected\":\"'ONLY'\"}"},
        {"{\"task_types\":[\"A\",\"B\"]}", "Input should be 'A' or 'B'",
         "{\"expected\":\"'A' or 'B'\"}"},
        {"{\"task_types\":[\"A\",\"B\",\"C\",\"D\"]}", "Input should be 'A', 'B', 'C' or 'D'",
         "{\"expected\":\"'A', 'B', 'C' or 'D'\"}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        config c;
        char err[256];
        assert_true(config_defaults(&c));
        assert_true(config_load_text(&c, cases[i].cfg, "cfg", err, sizeof err));
        const char *body = "{\"task_type\":\"TASK1\"}";
        expect_item want = {"literal_error", LOC("task_type"), cases[i].msg, "\"TASK1\"",
                            cases[i].ctx};
        create_fails_cfg(&c, body, strlen(body), &want, 1);
        /* and a configured name is accepted */
        create_request r;
        validation v = {0};
        body = "{\"task_type\":\"A\"}";
        bool ok = validate_create(&c, body, strlen(body), &r, &v);
        assert_int_equal(ok, i > 0);
        if (ok) {
            assert_string_equal(r.task_type, "A");
            create_request_free(&r);
        }
        validation_free(&v);
        config_free(&c);
    }
}

static void test_create_data_not_object(void **state)
{
    (void)state;
    static const char *const datas[] = {"[]", "[1]", "\"x\"", "1", "1.5", "true", "null"};
    for (size_t i = 0; i < sizeof datas / sizeof datas[0]; i++) {
        char *body = with_data(datas[i]);
        create_fails(body, (expect_item){"dict_type", LOC("data"), MSG_DICT, datas[i], NULL});
        free(body);
    }
}

/* The 422 body of validate_create() on body, as text; the caller frees it. */
static char *create_error_text(const char *body)
{
    config c;
    assert_true(config_defaults(&c));
    create_request r;
    validation v = {0};
    assert_false(validate_create(&c, body, strlen(body), &r, &v));
    char *text = validation_body(&v, NULL);
    assert_non_null(text);
    validation_free(&v);
    config_free(&c);
    return text;
}

static void test_create_input_reals_as_sent(void **state)
{
    (void)state;
    /* a real is echoed in its shortest form, as pydantic echoes it (Python's repr), not in 17
     * digits that read back the same (0.10000000000000001) */
    static const struct {
        const char *body, *input;
    } cases[] = {
        {"{\"task_type\":\"TASK1\",\"ttl\":0.1}", "\"input\":0.1}"},
        {"{\"task_type\":\"TASK1\",\"data\":[0.1,2.5]}", "\"input\":[0.1,2.5]}"},
        {"{\"task_type\":\"TASK1\",\"data\":{\"x\":0.3,\"n\":18446744073709551616}}",
         "\"input\":{\"x\":0.3,\"n\":18446744073709551616}"},
        /* from 1e15 to 1e16 with a point, as Python's repr() writes them, not "1e+15" */
        {"{\"task_type\":\"TASK1\",\"data\":[1e15,-2.5E15,1e16,1.0]}",
         "\"input\":[1000000000000000.0,-2500000000000000.0,1e+16,1.0]}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *text = create_error_text(cases[i].body);
        if (!strstr(text, cases[i].input))
            fail_msg("%s: no %s in %s", cases[i].body, cases[i].input, text);
        free(text);
    }
}

static void test_create_input_size_limit(void **state)
{
    (void)state;
    /* an input of exactly VALIDATE_INPUT_MAX bytes of JSON is echoed... */
    char *data = repeat("\"", "x", VALIDATE_INPUT_MAX - 2, "\"");
    assert_int_equal(strlen(data), VALIDATE_INPUT_MAX);
    char *body = with_data(data);
    create_fails(body, (expect_item){"dict_type", LOC("data"), MSG_DICT, data, NULL});
    free(body);
    free(data);
    /* ...one byte more is left out */
    data = repeat("\"", "x", VALIDATE_INPUT_MAX - 1, "\"");
    body = with_data(data);
    create_fails(body, (expect_item){"dict_type", LOC("data"), MSG_DICT, NULL, NULL});
    free(body);
    free(data);
    /* the same for a long list, and for a task_type */
    data = repeat("[", "1,", VALIDATE_INPUT_MAX, "1]");
    body = with_data(data);
    create_fails(body, (expect_item){"dict_type", LOC("data"), MSG_DICT, NULL, NULL});
    free(body);
    free(data);
    body = repeat("{\"task_type\":\"", "T", VALIDATE_INPUT_MAX, "\"}");
    create_fails(body,
                 (expect_item){"literal_error", LOC("task_type"), MSG_TYPES, NULL, CTX_TYPES});
    free(body);
}

static void test_create_ttl_negative(void **state)
{
    (void)state;
    /* integers, floats and strings below 0: the bound, with the value as sent */
    static const char *const ttls[] = {
        "-1",        "-9223372036854775808",     "-1.0", "-1e20", "\"-5\"",
        "\"-0001\"", "\"-99999999999999999999\""};
    for (size_t i = 0; i < sizeof ttls / sizeof ttls[0]; i++)
        ttl_fails(ttls[i],
                  (expect_item){"greater_than_equal", LOC("ttl"), MSG_GE0, ttls[i], CTX_GE0});
}

static void test_create_ttl_int_parsing(void **state)
{
    (void)state;
    static const char *const ttls[] = {"\"12a\"", "\"\"",  "\"1.5\"", "\"abc\"", "\"0x10\"",
                                       "\"1e3\"", "\"-\"", "\"--5\"", "\"5-\"",  "\"\\u0661\""};
    for (size_t i = 0; i < sizeof ttls / sizeof ttls[0]; i++)
        ttl_fails(ttls[i],
                  (expect_item){"int_parsing", LOC("ttl"), MSG_INT_PARSING, ttls[i], NULL});
}

static void test_create_ttl_int_from_float(void **state)
{
    (void)state;
    /* the fraction is named before the sign, as pydantic checks the type before the bound */
    static const char *const ttls[] = {"1.5", "1e-3", "-0.5", "1662381756.5"};
    for (size_t i = 0; i < sizeof ttls / sizeof ttls[0]; i++)
        ttl_fails(ttls[i],
                  (expect_item){"int_from_float", LOC("ttl"), MSG_FRACTION, ttls[i], NULL});
}

static void test_create_ttl_too_large(void **state)
{
    (void)state;
    /* a digit string or a float past int64: the bound, with the value as sent */
    static const char *const ttls[] = {"\"9223372036854775808\"", "\"99999999999999999999\"",
                                       "1e20", "9.3e18", "1e300"};
    for (size_t i = 0; i < sizeof ttls / sizeof ttls[0]; i++)
        ttl_fails(ttls[i], (expect_item){"less_than_equal", LOC("ttl"), MSG_LE_INT64, ttls[i],
                                         CTX_LE_INT64});
    /* a JSON integer past int64 (2**63, 2**70, 10**30): the bound too, the number echoed as sent */
    static const char *const ints[] = {"9223372036854775808", "1180591620717411303424",
                                       "1000000000000000000000000000000"};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        ttl_fails(ints[i], (expect_item){"less_than_equal", LOC("ttl"), MSG_LE_INT64, ints[i],
                                         CTX_LE_INT64});
        char body[128], echo[64];
        snprintf(body, sizeof body, "{\"task_type\":\"TASK1\",\"ttl\":%s}", ints[i]);
        snprintf(echo, sizeof echo, "\"input\":%s,", ints[i]);
        config c;
        assert_true(config_defaults(&c));
        validation v = {0};
        create_request r;
        assert_false(validate_create(&c, body, strlen(body), &r, &v));
        char *text = validation_body(&v, NULL);
        if (!strstr(text, echo))
            fail_msg("%s not echoed digit for digit: %s", ints[i], text);
        free(text);
        validation_free(&v);
        config_free(&c);
    }
    /* below zero, the other bound */
    ttl_fails("-1180591620717411303424", (expect_item){"greater_than_equal", LOC("ttl"),
                                                       "Input should be greater than or equal to 0",
                                                       "-1180591620717411303424", "{\"ge\":0}"});
}

static void test_create_ttl_int_type(void **state)
{
    (void)state;
    static const char *const ttls[] = {"true", "false", "[]", "{}", "[1]", "{\"a\":1}"};
    for (size_t i = 0; i < sizeof ttls / sizeof ttls[0]; i++)
        ttl_fails(ttls[i], (expect_item){"int_type", LOC("ttl"), MSG_INT_TYPE, ttls[i], NULL});
}

static void test_create_huge_integer_in_data(void **state)
{
    (void)state;
    /* an integer no 64-bit field can hold, anywhere in data: a value_error on data */
    static const char *const datas[] = {
        "{\"a\":1180591620717411303424}",
        "{\"a\":[1,{\"b\":-1180591620717411303424}]}",
        "{\"a\":9223372036854775808}",
    };
    for (size_t i = 0; i < sizeof datas / sizeof datas[0]; i++) {
        char *body = with_data(datas[i]);
        create_fails(body,
                     (expect_item){"value_error", LOC("data"), MSG_RANGE, datas[i], CTX_RANGE});
        free(body);
    }
    /* the ends of int64 themselves are kept */
    create_request r;
    create_ok("{\"task_type\":\"TASK1\",\"data\":{\"lo\":-9223372036854775808,"
              "\"hi\":9223372036854775807}}",
              &r);
    assert_string_equal(r.data, "{\"lo\":-9223372036854775808,\"hi\":9223372036854775807}");
    create_request_free(&r);
}

static void test_create_several_faults(void **state)
{
    (void)state;
    /* one item per bad field, in field order task_type, data, ttl */
    const char *body = "{\"ttl\":\"12a\",\"data\":[],\"task_type\":5}";
    expect_item want[] = {
        {"literal_error", LOC("task_type"), MSG_TYPES, "5", CTX_TYPES},
        {"dict_type", LOC("data"), MSG_DICT, "[]", NULL},
        {"int_parsing", LOC("ttl"), MSG_INT_PARSING, "\"12a\"", NULL},
    };
    create_fails_n(body, strlen(body), want, 3);

    body = "{\"task_type\":\"NOPE\",\"ttl\":-3}";
    expect_item want2[] = {
        {"literal_error", LOC("task_type"), MSG_TYPES, "\"NOPE\"", CTX_TYPES},
        {"greater_than_equal", LOC("ttl"), MSG_GE0, "-3", CTX_GE0},
    };
    create_fails_n(body, strlen(body), want2, 2);

    body = "{\"data\":5,\"ttl\":true}";
    expect_item want3[] = {
        {"missing", LOC("task_type"), "Field required", "{\"data\":5,\"ttl\":true}", NULL},
        {"dict_type", LOC("data"), MSG_DICT, "5", NULL},
        {"int_type", LOC("ttl"), MSG_INT_TYPE, "true", NULL},
    };
    create_fails_n(body, strlen(body), want3, 3);

    body = "{\"task_type\":[],\"data\":{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]"
           "]]]]]]"
           "]]]]},\"ttl\":2.5}";
    expect_item want4[] = {
        {"literal_error", LOC("task_type"), MSG_TYPES, "[]", CTX_TYPES},
        {"value_error", LOC("data"), MSG_DEEP,
         "{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}", CTX_DEEP},
        {"int_from_float", LOC("ttl"), MSG_FRACTION, "2.5", NULL},
    };
    create_fails_n(body, strlen(body), want4, 3);
}

static void test_create_invalid_json(void **state)
{
    (void)state;
    static const char *const bodies[] = {
        "{",
        "{\"task_type\":\"TASK1\",}",
        "{\"task_type\":\"TASK1\"} x",
        "{'task_type':'TASK1'}",
        "nul",
        "{\"task_type\": TASK1}",
        "{\n\"task_type\": }",
        "{\"task_type\":\"TASK1\",\"ttl\":1e400}",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++)
        create_json_invalid(bodies[i], strlen(bodies[i]));

    /* the whole item, pinned: the byte offset of the fault and the parser's own words */
    create_fails("{", (expect_item){"json_invalid", "[\"body\",1]", "JSON decode error", "{}",
                                    "{\"error\":\"string or '}' expected near end of file\"}"});
    create_fails("{\n\"task_type\": }",
                 (expect_item){"json_invalid", "[\"body\",16]", "JSON decode error", "{}",
                               "{\"error\":\"unexpected token near '}'\"}"});
}

static void test_create_non_object_json(void **state)
{
    (void)state;
    static const char *const bodies[] = {"\"hello\"", "[]", "42", "true", "[{}]", "1.5"};
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++)
        create_fails(bodies[i],
                     (expect_item){"model_attributes_type", LOC_BODY, MSG_OBJECT, bodies[i], NULL});
    /* null is no body at all, as FastAPI reads it; a byte order mark is skipped */
    create_fails("null", (expect_item){"missing", LOC_BODY, "Field required", "null", NULL});
    create_fails("\xEF\xBB\xBFnull",
                 (expect_item){"missing", LOC_BODY, "Field required", "null", NULL});
    create_request r;
    create_ok("\xEF\xBB\xBF{\"task_type\":\"TASK1\"}", &r);
    create_request_free(&r);
    /* a long one: its input left out */
    char *body = repeat("[", "0,", VALIDATE_INPUT_MAX, "0]");
    create_fails(body, (expect_item){"model_attributes_type", LOC_BODY, MSG_OBJECT, NULL, NULL});
    free(body);
}

static void test_create_empty_body(void **state)
{
    (void)state;
    /* no bytes at all: the body is missing, as FastAPI says */
    expect_item missing = {"missing", LOC_BODY, "Field required", "null", NULL};
    create_fails_n("", 0, &missing, 1);
    create_fails_n(NULL, 0, &missing, 1);
    /* len governs, not the NUL */
    create_fails_n("{\"task_type\":\"TASK1\"}", 0, &missing, 1);
    /* whitespace is a body, and not JSON */
    create_json_invalid("   \n", 4);
    /* a valid object cut short is invalid */
    create_json_invalid("{\"task_type\":\"TASK1\"}", 10);
}

static void test_create_invalid_utf8(void **state)
{
    (void)state;
    static const char *const bodies[] = {
        "{\"task_type\":\"TASK1\",\"data\":{\"a\":\"\xff\"}}",
        "{\"task_type\":\"TASK1\",\"data\":{\"\xc3\x28\":1}}",
        "{\"task_type\":\"TASK\xe2\x82\"}",
        /* overlong encoding of '/' and a lone surrogate escape */
        "{\"task_type\":\"TASK1\",\"data\":{\"a\":\"\xc0\xaf\"}}",
        "{\"task_type\":\"TASK1\",\"data\":{\"a\":\"\\ud800\"}}",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++)
        create_json_invalid(bodies[i], strlen(bodies[i]));
    /* a raw NUL inside the counted body */
    static const char nul[] = "{\"task_type\":\"TASK1\",\"data\":{\"a\":\"x\0y\"}}";
    create_json_invalid(nul, sizeof nul - 1);
    /* a raw NUL is never JSON, even where jansson would let it pass (after a number) */
    static const char after_number[] = "{\"task_type\":\"TASK1\",\"data\":{\"z\":[771\0,1]}}";
    create_json_invalid(after_number, sizeof after_number - 1);
}

static void test_create_after_failure_out_is_clean(void **state)
{
    (void)state;
    /* a failed call leaves no owned strings behind and ttl reset */
    config c;
    assert_true(config_defaults(&c));
    create_request r;
    memset(&r, 0x5a, sizeof r);
    validation v = {0};
    const char *body = "{\"task_type\":\"TASK1\",\"ttl\":\"x\"}";
    assert_false(validate_create(&c, body, strlen(body), &r, &v));
    assert_null(r.data);
    assert_null(r.data_image);
    create_request_free(&r);
    validation_free(&v);
    config_free(&c);
}

/* ---- validate_update ---- */

static bool update(const char *body, update_request *r, validation *v)
{
    return validate_update(body, body ? strlen(body) : 0, r, v);
}

/* validate_update over len bytes; expect failure with exactly the n items. */
static void update_fails_n(const char *body, size_t len, const expect_item *want, size_t n)
{
    update_request r;
    validation v = {0};
    if (validate_update(body, len, &r, &v)) {
        update_request_free(&r);
        fail_msg("accepted: %.*s", (int)len, body);
    }
    assert_null(r.status_msg);
    assert_null(r.result);
    check_body(&v, want, n);
    validation_free(&v);
}

static void update_fails(const char *body, expect_item want)
{
    update_fails_n(body, strlen(body), &want, 1);
}

static void update_json_invalid(const char *body)
{
    json_invalid_item w;
    json_invalid_for(body, strlen(body), &w);
    update_fails_n(body, strlen(body), &w.item, 1);
}

static void test_update_status_only(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        task_status s;
    } cases[] = {{"CREATED", TASK_CREATED},
                 {"IN_PROGRESS", TASK_IN_PROGRESS},
                 {"COMPLETED", TASK_COMPLETED},
                 {"FAILED", TASK_FAILED}};
    for (size_t i = 0; i < 4; i++) {
        char body[64];
        snprintf(body, sizeof body, "{\"status\":\"%s\"}", cases[i].name);
        update_request r;
        validation v = {0};
        assert_true(update(body, &r, &v));
        assert_int_equal(v.count, 0);
        assert_int_equal(r.status, cases[i].s);
        assert_string_equal(r.status_msg, "");
        assert_null(r.result);
        update_request_free(&r);
        assert_null(r.status_msg);
        validation_free(&v);
    }
}

static void test_update_with_msg_and_result(void **state)
{
    (void)state;
    static const struct {
        const char *result;
        const char *text;
    } cases[] = {
        {"null", "null"},
        {"{ \"a\" : [1, 0.1, \"x\"] , \"b\":{}}", "{\"a\":[1,0.1,\"x\"],\"b\":{}}"},
        {"[ ]", "[]"},
        {"\"done\"", "\"done\""},
        {"42", "42"},
        {"-2.5", "-2.5"},
        {"true", "true"},
        {"false", "false"},
        {"3.0", "3.0"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char body[256];
        snprintf(body, sizeof body,
                 "{\"status\":\"COMPLETED\",\"status_msg\":\"all \\\"good\\\"\",\"result\":%s}",
                 cases[i].result);
        update_request r;
        validation v = {0};
        assert_true(update(body, &r, &v));
        assert_int_equal(r.status, TASK_COMPLETED);
        assert_string_equal(r.status_msg, "all \"good\"");
        assert_non_null(r.result);
        assert_string_equal(r.result, cases[i].text);
        update_request_free(&r);
        assert_null(r.result);
        validation_free(&v);
    }
}

static void test_update_missing_status(void **state)
{
    (void)state;
    update_fails("{\"status_msg\":\"x\",\"result\":1}",
                 (expect_item){"missing", LOC("status"), "Field required",
                               "{\"status_msg\":\"x\",\"result\":1}", NULL});
    update_fails("{}", (expect_item){"missing", LOC("status"), "Field required", "{}", NULL});
}

static void test_update_bad_status_value(void **state)
{
    (void)state;
    static const char *const values[] = {"\"DONE\"",        "\"completed\"", "\"\"",
                                         "\"IN PROGRESS\"", "\"FAILED \"",   "\"TASK1\""};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        char body[64];
        snprintf(body, sizeof body, "{\"status\":%s}", values[i]);
        update_fails(body, (expect_item){"literal_error", LOC("status"), MSG_STATUSES, values[i],
                                         CTX_STATUSES});
    }
}

static void test_update_status_not_string(void **state)
{
    (void)state;
    /* not a string: a literal_error too, with the value as input */
    static const char *const values[] = {"1", "null", "true", "[\"FAILED\"]", "{}", "2.5"};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        char body[64];
        snprintf(body, sizeof body, "{\"status\":%s}", values[i]);
        update_fails(body, (expect_item){"literal_error", LOC("status"), MSG_STATUSES, values[i],
                                         CTX_STATUSES});
    }
}

static void test_update_status_msg_not_string(void **state)
{
    (void)state;
    static const char *const values[] = {"null", "5", "1.5", "false", "[]", "{\"m\":\"x\"}"};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        char body[96];
        snprintf(body, sizeof body, "{\"status\":\"FAILED\",\"status_msg\":%s}", values[i]);
        update_fails(body,
                     (expect_item){"string_type", LOC("status_msg"), MSG_STRING, values[i], NULL});
    }
}

/* A body {"status":"FAILED","status_msg":"<n times unit>"}; the caller frees it. */
static char *msg_body(const char *unit, size_t n)
{
    size_t u = strlen(unit), len = 64 + u * n;
    char *b = malloc(len);
    assert_non_null(b);
    size_t at = (size_t)snprintf(b, len, "{\"status\":\"FAILED\",\"status_msg\":\"");
    for (size_t i = 0; i < n; i++, at += u)
        memcpy(b + at, unit, u);
    snprintf(b + at, len - at, "\"}");
    return b;
}

/* At most 4096 characters, counted as pydantic counts them (code points, not bytes). */
static void test_update_status_msg_too_long(void **state)
{
    (void)state;
    /* "x", "é" (2 bytes), "€" (3), "😀" (4), and an escape that jansson decodes to one */
    static const char *const units[] = {"x", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
                                        "\\u0001"};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        char *ok = msg_body(units[i], VALIDATE_STATUS_MSG_MAX);
        update_request r;
        validation v = {0};
        if (!update(ok, &r, &v))
            fail_msg("refused 4096 characters of unit %zu", i);
        update_request_free(&r);
        validation_free(&v);
        free(ok);
        char *over = msg_body(units[i], VALIDATE_STATUS_MSG_MAX + 1);
        /* the input is not echoed: its JSON text is over VALIDATE_INPUT_MAX */
        update_fails(over, (expect_item){"string_too_long", LOC("status_msg"),
                                         "String should have at most 4096 characters", NULL,
                                         "{\"max_length\":4096}"});
        free(over);
    }
}

static void test_update_result_too_deep(void **state)
{
    (void)state;
    /* a result of VALIDATE_MAX_DEPTH levels is kept; one more is refused, echoing it */
    for (int extra = 0; extra <= 1; extra++) {
        char *res = nested(VALIDATE_MAX_DEPTH - 1 + extra);
        char *body = repeat("{\"status\":\"COMPLETED\",\"result\":", res, 1, "}");
        if (!extra) {
            update_request r;
            validation v = {0};
            assert_true(update(body, &r, &v));
            assert_string_equal(r.result, res);
            update_request_free(&r);
            validation_free(&v);
        } else {
            update_fails(body,
                         (expect_item){"value_error", LOC("result"), MSG_DEEP, res, CTX_DEEP});
        }
        free(body);
        free(res);
    }
    /* a list nested as deep, and one too long to echo */
    char *res = repeat("", "[", 32, "");
    char *closing = repeat("", "]", 32, "}");
    char *body = repeat("{\"status\":\"FAILED\",\"result\":", res, 1, closing);
    char *input = repeat(res, "]", 32, "");
    update_fails(body, (expect_item){"value_error", LOC("result"), MSG_DEEP, input, CTX_DEEP});
    free(body);
    free(closing);
    free(input);
    free(res);
    res = nested(1100);
    body = repeat("{\"status\":\"FAILED\",\"result\":", res, 1, "}");
    update_fails(body, (expect_item){"value_error", LOC("result"), MSG_DEEP, NULL, CTX_DEEP});
    free(body);
    free(res);
}

/* Data and results DynamoDB could not keep are refused in both modes, saying why. */
static void test_values_every_store_keeps(void **state)
{
    (void)state;
    static const char *const kept[] = {
        "{\"a\":0.0}",       "{\"a\":-0.0}",
        "{\"a\":1e-130}",    "{\"a\":-1e-130}",
        "{\"a\":9.99e125}",  "{\"a\":[1.5,-2e100]}",
        "{\"a\":{\" \":1}}", "{\"a\":9223372036854775807}",
    };
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++) {
        char *body = with_data(kept[i]);
        create_request r;
        create_ok(body, &r);
        create_request_free(&r);
        free(body);
        body = repeat("{\"status\":\"COMPLETED\",\"result\":", kept[i], 1, "}");
        update_request u;
        validation v = {0};
        assert_true(update(body, &u, &v));
        update_request_free(&u);
        validation_free(&v);
        free(body);
    }
    static const struct {
        const char *value, *echo, *why;
    } refused[] = {
        {"{\"a\":1e126}", "{\"a\":1e126}", NUMBERS},
        {"{\"a\":[1,-1e200]}", "{\"a\":[1,-1e200]}", NUMBERS},
        {"{\"a\":9e-131}", "{\"a\":9e-131}", NUMBERS},
        {"{\"\":1}", "{\"\":1}", NAMES},
        {"{\"a\":[{\"b\":{\"\":null}}]}", "{\"a\":[{\"b\":{\"\":null}}]}", NAMES},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        char msg[160], ctx[160];
        snprintf(msg, sizeof msg, "Value error, %s", refused[i].why);
        snprintf(ctx, sizeof ctx, "{\"error\":\"%s\"}", refused[i].why);
        char *body = with_data(refused[i].value);
        create_fails(body, (expect_item){"value_error", LOC("data"), msg, refused[i].echo, ctx});
        free(body);
        body = repeat("{\"status\":\"COMPLETED\",\"result\":", refused[i].value, 1, "}");
        update_fails(body, (expect_item){"value_error", LOC("result"), msg, refused[i].echo, ctx});
        free(body);
    }
}

/* Integers beyond 64 bits where a field is checked for something else, or not at all. */
static void test_huge_integers_elsewhere(void **state)
{
    (void)state;
    /* every bad field is still named */
    const expect_item both[] = {
        {"missing", LOC("task_type"), "Field required", "{\"ttl\":1180591620717411303424}", NULL},
        {"less_than_equal", LOC("ttl"), MSG_LE_INT64, "1180591620717411303424", CTX_LE_INT64},
    };
    const char *b = "{\"ttl\":1180591620717411303424}";
    create_fails_n(b, strlen(b), both, 2);
    /* not an object at all */
    create_fails("[1180591620717411303424]",
                 (expect_item){"model_attributes_type", LOC_BODY, MSG_OBJECT,
                               "[1180591620717411303424]", NULL});
    create_fails("-1180591620717411303424",
                 (expect_item){"model_attributes_type", LOC_BODY, MSG_OBJECT,
                               "-1180591620717411303424", NULL});
    /* the check of the field's own type comes first */
    create_fails("{\"task_type\":1180591620717411303424}",
                 (expect_item){"literal_error", LOC("task_type"), MSG_TYPES,
                               "1180591620717411303424", CTX_TYPES});
    ttl_fails("[1180591620717411303424]", (expect_item){"int_type", LOC("ttl"), MSG_INT_TYPE,
                                                        "[1180591620717411303424]", NULL});
    create_fails(
        "{\"task_type\":\"TASK1\",\"data\":[1180591620717411303424]}",
        (expect_item){"dict_type", LOC("data"), MSG_DICT, "[1180591620717411303424]", NULL});
    update_fails("{\"status\":1180591620717411303424}",
                 (expect_item){"literal_error", LOC("status"), MSG_STATUSES,
                               "1180591620717411303424", CTX_STATUSES});
    update_fails("{\"status\":\"FAILED\",\"status_msg\":1180591620717411303424}",
                 (expect_item){"string_type", LOC("status_msg"), MSG_STRING,
                               "1180591620717411303424", NULL});
    /* unknown fields are ignored, whatever they hold; fractions and exponents are not integers */
    create_request r;
    create_ok("{\"task_type\":\"TASK1\",\"extra\":1180591620717411303424,"
              "\"data\":{\"x\":1.12345678901234567890123,\"y\":12345678901234567890e-5}}",
              &r);
    assert_string_equal(r.task_type, "TASK1");
    assert_non_null(strstr(r.data, "\"x\":1.1234567890123457"));
    create_request_free(&r);
    update_request u;
    validation v = {0};
    const char *p = "{\"status\":\"FAILED\",\"ttl\":1180591620717411303424}";
    assert_true(validate_update(p, strlen(p), &u, &v));
    assert_int_equal(v.count, 0);
    update_request_free(&u);
    /* a whole float just below 2**63 is a ttl */
    create_ok("{\"task_type\":\"TASK1\",\"ttl\":9.1e18}", &r);
    assert_true(r.ttl == 9100000000000000000LL);
    create_request_free(&r);
    /* a "\u0000" in a string keeps the body from being read again: it stays json_invalid */
    validation w = {0};
    const char *nul =
        "{\"task_type\":\"TASK1\",\"data\":{\"a\":\"\\u0000\",\"b\":1180591620717411303424}}";
    config c;
    assert_true(config_defaults(&c));
    assert_false(validate_create(&c, nul, strlen(nul), &r, &w));
    char *text = validation_body(&w, NULL);
    assert_non_null(strstr(text, "\"type\":\"json_invalid\""));
    free(text);
    validation_free(&w);
    config_free(&c);
}

static void test_update_huge_integer_in_result(void **state)
{
    (void)state;
    update_fails("{\"status\":\"COMPLETED\",\"result\":{\"n\":1180591620717411303424}}",
                 (expect_item){"value_error", LOC("result"), MSG_RANGE,
                               "{\"n\":1180591620717411303424}", CTX_RANGE});
}

static void test_update_several_faults(void **state)
{
    (void)state;
    const char *body = "{\"status\":\"NOPE\",\"status_msg\":7}";
    expect_item want[] = {
        {"literal_error", LOC("status"), MSG_STATUSES, "\"NOPE\"", CTX_STATUSES},
        {"string_type", LOC("status_msg"), MSG_STRING, "7", NULL},
    };
    update_fails_n(body, strlen(body), want, 2);
    body = "{\"status_msg\":null}";
    expect_item want2[] = {
        {"missing", LOC("status"), "Field required", "{\"status_msg\":null}", NULL},
        {"string_type", LOC("status_msg"), MSG_STRING, "null", NULL},
    };
    update_fails_n(body, strlen(body), want2, 2);
    body = "{\"status\":3,\"status_msg\":[],\"result\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]"
           "]]]]]]]]]]]]]]]]]]]]]}";
    expect_item want3[] = {
        {"literal_error", LOC("status"), MSG_STATUSES, "3", CTX_STATUSES},
        {"string_type", LOC("status_msg"), MSG_STRING, "[]", NULL},
        {"value_error", LOC("result"), MSG_DEEP,
         "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]", CTX_DEEP},
    };
    update_fails_n(body, strlen(body), want3, 3);
}

static void test_update_bad_bodies(void **state)
{
    (void)state;
    /* no bytes: the body is missing */
    expect_item missing = {"missing", LOC_BODY, "Field required", "null", NULL};
    update_fails_n("", 0, &missing, 1);
    update_fails_n(NULL, 0, &missing, 1);
    static const char *const invalid[] = {"{", "{\"status\":\"FAILED\"", "\xff", " ",
                                          "{\"status\":\"FAILED\",}"};
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++)
        update_json_invalid(invalid[i]);
    update_fails("null", missing);
    static const char *const nonobj[] = {"\"hello\"", "[]", "42", "[\"FAILED\"]", "false"};
    for (size_t i = 0; i < sizeof nonobj / sizeof nonobj[0]; i++)
        update_fails(nonobj[i],
                     (expect_item){"model_attributes_type", LOC_BODY, MSG_OBJECT, nonobj[i], NULL});
}

/* ---- validate_limit ---- */

static void limit_ok(const char *s, int want)
{
    validation v = {0};
    int out = -12345;
    if (!validate_limit(s, &out, &v))
        fail_msg("limit \"%s\" rejected", s ? s : "(null)");
    assert_int_equal(out, want);
    assert_int_equal(v.count, 0);
    validation_free(&v);
}

/* The limit s is refused with this type, msg and ctx; its input is s as a JSON string. */
static void limit_bad(const char *s, const char *type, const char *msg, const char *ctx)
{
    validation v = {0};
    int out = -12345;
    if (validate_limit(s, &out, &v))
        fail_msg("limit \"%s\" accepted as %d", s, out);
    assert_int_equal(out, -12345); /* untouched */
    json_t *str = json_string(s);
    char *input = json_dumps(str, JSON_ENCODE_ANY);
    expect_item want = {type, LOC_LIMIT, msg, input, ctx};
    check_body(&v, &want, 1);
    free(input);
    json_decref(str);
    validation_free(&v);
}

#define GE1     "Input should be greater than or equal to 1"
#define LE100   "Input should be less than or equal to 100"
#define CTX_GE1 "{\"ge\":1}"
#define CTX_LE  "{\"le\":100}"

static void test_limit_valid(void **state)
{
    (void)state;
    limit_ok(NULL, 10);
    limit_ok("1", 1);
    limit_ok("10", 10);
    limit_ok("100", 100);
    limit_ok("+5", 5);
    limit_ok("007", 7);
    limit_ok("0000000050", 50); /* leading zeros are not digits of the value */
    limit_ok("00000000000000000000000000000100", 100);
}

static void test_limit_range(void **state)
{
    (void)state;
    limit_bad("0", "greater_than_equal", GE1, CTX_GE1);
    limit_bad("-1", "greater_than_equal", GE1, CTX_GE1);
    limit_bad("-0", "greater_than_equal", GE1, CTX_GE1);
    limit_bad("-99999999999999999999", "greater_than_equal", GE1, CTX_GE1);
    limit_bad("101", "less_than_equal", LE100, CTX_LE);
    limit_bad("999999999", "less_than_equal", LE100, CTX_LE);
    limit_bad("2147483648", "less_than_equal", LE100, CTX_LE);
    limit_bad("99999999999999999999", "less_than_equal", LE100, CTX_LE);
}

static void test_limit_parsing(void **state)
{
    (void)state;
    static const char *const bad[] = {"abc",  "",      "1e2",   "+",     "-",       "+-1",
                                      "0x10", "10abc", "\"5\"", "q\\\"", "\xc3\xa9"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        limit_bad(bad[i], "int_parsing", MSG_INT_PARSING, NULL);
}

/*
 * The type of the item validate_limit() gives for s, or NULL with *val where it takes s. Every
 * item is checked whole: its loc, its input (s as a JSON string) and its msg and ctx by type.
 */
static const char *limit_outcome(const char *s, int *val)
{
    validation v = {0};
    if (validate_limit(s, val, &v)) {
        assert_int_equal(v.count, 0);
        validation_free(&v);
        return NULL;
    }
    char *body = validation_body(&v, NULL);
    json_t *root = json_loads(body, 0, NULL);
    assert_non_null(root);
    json_t *item = json_array_get(json_object_get(root, "detail"), 0);
    static char type[32];
    snprintf(type, sizeof type, "%s", json_string_value(json_object_get(item, "type")));
    static const struct {
        const char *type, *msg, *ctx;
    } shapes[] = {{"int_parsing", MSG_INT_PARSING, NULL},
                  {"int_parsing_size", MSG_INT_PARSING_SIZE, NULL},
                  {"greater_than_equal", GE1, CTX_GE1},
                  {"less_than_equal", LE100, CTX_LE}};
    size_t i = 0;
    while (i < sizeof shapes / sizeof shapes[0] && strcmp(shapes[i].type, type) != 0)
        i++;
    if (i == sizeof shapes / sizeof shapes[0])
        fail_msg("limit \"%s\": %s", s, body);
    json_t *str = json_string(s);
    char *input = json_dumps(str, JSON_ENCODE_ANY);
    expect_item want = {shapes[i].type, LOC_LIMIT, shapes[i].msg, input, shapes[i].ctx};
    check_body(&v, &want, 1);
    free(input);
    json_decref(str);
    json_decref(root);
    free(body);
    validation_free(&v);
    return type;
}

/*
 * What pydantic v2 (pydantic-core 2.46) answers for an int with ge=1, le=100 given these
 * strings, as a query parameter is: the value, or the type of its error. "0-5" is -5 there:
 * its leading zeros are taken wherever the next character is.
 */
static const struct {
    const char *in, *type;
    int val;
} lax_ints[] = {
    {" 5", NULL, 5},
    {"5 ", NULL, 5},
    {"\t5\n", NULL, 5},
    {"\xc2\xa0"
     "5\xe3\x80\x80",
     NULL, 5}, /* U+00A0, U+3000 */
    {"\xe2\x80\xa9"
     "5",
     NULL, 5}, /* U+2029 */
    {"\xe2\x80\x8b"
     "5",
     "int_parsing", 0}, /* U+200B is no white space */
    {"\x1c"
     "5",
     "int_parsing", 0}, /* nor is U+001C, which Python's strip() takes */
    {"4_2", NULL, 42},
    {"1_0", NULL, 10},
    {"0_7", NULL, 7},
    {"_7", "int_parsing", 0},
    {"7_", "int_parsing", 0},
    {"4__2", "int_parsing", 0},
    {"5_ ", "int_parsing", 0},
    {"5.0", NULL, 5},
    {"5.00", NULL, 5},
    {"5_0.0", NULL, 50},
    {"5.", "int_parsing", 0},
    {".0", "int_parsing", 0},
    {"5.5", "int_parsing", 0},
    {"5.0_0", "int_parsing", 0},
    {"5.0.0", "int_parsing", 0},
    {"0_.0", "int_parsing", 0},
    {"0.0", "greater_than_equal", 0},
    {"00.0", "greater_than_equal", 0},
    {"-0.0", "greater_than_equal", 0},
    {"1_000.000", "less_than_equal", 0},
    {"+5", NULL, 5},
    {"+007", NULL, 7},
    {" +0_9.000 ", NULL, 9},
    {"-0", "greater_than_equal", 0},
    {"-007", "greater_than_equal", 0},
    {"0-5", "greater_than_equal", 0},
    {"-0-5", "int_parsing", 0},
    {"0+5", "int_parsing", 0},
    {"+-5", "int_parsing", 0},
    {"-+5", "int_parsing", 0},
    {"--5", "int_parsing", 0},
    {"++5", "int_parsing", 0},
    {"+", "int_parsing", 0},
    {"-", "int_parsing", 0},
    {"", "int_parsing", 0},
    {" ", "int_parsing", 0},
    {"5 5", "int_parsing", 0},
    {"\xd9\xa5", "int_parsing", 0}, /* U+0665, an Arabic-Indic five */
    {"0x5", "int_parsing", 0},
    {"1e2", "int_parsing", 0},
    {"abc", "int_parsing", 0},
    {"00000000000000000000000000000000000000005", NULL, 5},
    {"111111111111111111111111111111", "less_than_equal", 0},
    {"9223372036854775808", "less_than_equal", 0},
    {"-9223372036854775809", "greater_than_equal", 0},
};

static void test_limit_as_pydantic_reads_it(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof lax_ints / sizeof lax_ints[0]; i++) {
        int val = -12345;
        const char *type = limit_outcome(lax_ints[i].in, &val);
        if (!type != !lax_ints[i].type || (type && strcmp(type, lax_ints[i].type) != 0) ||
            (!type && val != lax_ints[i].val))
            fail_msg("limit \"%s\": %s %d, want %s %d", lax_ints[i].in, type ? type : "taken", val,
                     lax_ints[i].type ? lax_ints[i].type : "taken", lax_ints[i].val);
    }
    /* past 4300 characters a JSON integer is too long; a cleaned one is no integer */
    static const struct {
        const char *prefix;
        char digit;
        size_t n;
        const char *suffix, *type;
    } longs[] = {
        {"", '1', 4300, "", "less_than_equal"},    {"", '1', 4301, "", "int_parsing_size"},
        {"-", '1', 4300, "", "int_parsing_size"},  {"", '1', 4301, ".0", "int_parsing_size"},
        {"", '1', 4301, "x", "int_parsing_size"},  {" ", '1', 4301, "", "int_parsing"},
        {"", '0', 4301, "", "greater_than_equal"},
    };
    for (size_t i = 0; i < sizeof longs / sizeof longs[0]; i++) {
        char *s =
            repeat(longs[i].prefix, longs[i].digit == '1' ? "1" : "0", longs[i].n, longs[i].suffix);
        int val;
        const char *type = limit_outcome(s, &val);
        if (!type || strcmp(type, longs[i].type) != 0)
            fail_msg("limit of %zu '%c's: %s, want %s", longs[i].n, longs[i].digit,
                     type ? type : "taken", longs[i].type);
        free(s);
    }
}

static void test_limit_appends_to_existing_errors(void **state)
{
    (void)state;
    static const char *const statuses[] = {"CREATED", "IN_PROGRESS", "COMPLETED", "FAILED"};
    validation v = {0};
    validation_literal(&v, "query", "status", statuses, 4, "x");
    int out = 0;
    assert_false(validate_limit("0", &out, &v));
    expect_item want[] = {
        {"literal_error", "[\"query\",\"status\"]", MSG_STATUSES, "\"x\"", CTX_STATUSES},
        {"greater_than_equal", LOC_LIMIT, GE1, "\"0\"", CTX_GE1}};
    check_body(&v, want, 2);
    validation_free(&v);
}

/* ---- validate_wait ---- */

#define LOC_WAIT "[\"query\",\"wait\"]"

static void wait_bad(const char *s, const char *type, const char *msg, const char *ctx)
{
    validation v = {0};
    int out = -12345;
    if (validate_wait(s, &out, &v))
        fail_msg("wait \"%s\" accepted as %d", s, out);
    assert_int_equal(out, -12345);
    json_t *str = json_string(s);
    char *input = json_dumps(str, JSON_ENCODE_ANY);
    expect_item want = {type, LOC_WAIT, msg, input, ctx};
    check_body(&v, &want, 1);
    free(input);
    json_decref(str);
    validation_free(&v);
}

static void test_wait(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int want;
    } good[] = {{NULL, 0},  {"1", 1},  {"30", 30}, {"60", 60},
                {"007", 7}, {"+5", 5}, {" 5 ", 5}, {"6.0", 6}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        validation v = {0};
        int out = -1;
        assert_true(validate_wait(good[i].in, &out, &v));
        assert_int_equal(out, good[i].want);
        assert_int_equal(v.count, 0);
        validation_free(&v);
    }
    wait_bad("0", "greater_than_equal", GE1, CTX_GE1);
    wait_bad("000", "greater_than_equal", GE1, CTX_GE1);
    wait_bad("61", "less_than_equal", "Input should be less than or equal to 60", "{\"le\":60}");
    wait_bad("99999999999", "less_than_equal", "Input should be less than or equal to 60",
             "{\"le\":60}");
    wait_bad("-5", "greater_than_equal", GE1, CTX_GE1);
    wait_bad("-0", "greater_than_equal", GE1, CTX_GE1);
    static const char *const bad[] = {"abc", "", "1.5", "1e1", "0x5"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        wait_bad(bad[i], "int_parsing", MSG_INT_PARSING, NULL);
}

/* A body's errors append to errors already collected (the API's query checks come first). */
static void test_create_appends_to_existing_errors(void **state)
{
    (void)state;
    config c;
    assert_true(config_defaults(&c));
    validation v = {0};
    validation_add(&v, "query", "x", "t", "m", NULL, NULL);
    create_request r;
    const char *body = "{\"task_type\":\"TASK9\"}";
    assert_false(validate_create(&c, body, strlen(body), &r, &v));
    expect_item want[] = {{"t", "[\"query\",\"x\"]", "m", NULL, NULL},
                          {"literal_error", LOC("task_type"), MSG_TYPES, "\"TASK9\"", CTX_TYPES}};
    check_body(&v, want, 2);
    validation_free(&v);
    /* even a valid body fails when errors were there before: nothing is half-accepted */
    validation_add(&v, "query", "x", "t", "m", NULL, NULL);
    body = "{\"task_type\":\"TASK1\"}";
    assert_false(validate_create(&c, body, strlen(body), &r, &v));
    assert_null(r.data);
    assert_int_equal(v.count, 1);
    validation_free(&v);
    config_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validation_empty_body),
        cmocka_unit_test(test_validation_add_escapes),
        cmocka_unit_test(test_validation_literal),
        cmocka_unit_test(test_create_task_type_only),
        cmocka_unit_test(test_create_data_reals_as_python_writes_them),
        cmocka_unit_test(test_create_every_default_type),
        cmocka_unit_test(test_create_ttl_integer),
        cmocka_unit_test(test_create_ttl_digit_string),
        cmocka_unit_test(test_create_ttl_string_as_pydantic_reads_it),
        cmocka_unit_test(test_create_ttl_whole_float),
        cmocka_unit_test(test_create_ttl_null),
        cmocka_unit_test(test_create_extra_fields_ignored),
        cmocka_unit_test(test_create_data_compact_text),
        cmocka_unit_test(test_create_reals_shortest),
        cmocka_unit_test(test_create_unicode_data),
        cmocka_unit_test(test_create_deep_nesting),
        cmocka_unit_test(test_create_missing_task_type),
        cmocka_unit_test(test_create_task_type_wrong_type),
        cmocka_unit_test(test_create_unknown_task_type),
        cmocka_unit_test(test_create_literal_follows_config),
        cmocka_unit_test(test_create_data_not_object),
        cmocka_unit_test(test_create_input_size_limit),
        cmocka_unit_test(test_create_ttl_negative),
        cmocka_unit_test(test_create_ttl_int_parsing),
        cmocka_unit_test(test_create_ttl_int_from_float),
        cmocka_unit_test(test_create_input_reals_as_sent),
        cmocka_unit_test(test_create_ttl_too_large),
        cmocka_unit_test(test_create_ttl_int_type),
        cmocka_unit_test(test_create_huge_integer_in_data),
        cmocka_unit_test(test_create_several_faults),
        cmocka_unit_test(test_create_invalid_json),
        cmocka_unit_test(test_create_non_object_json),
        cmocka_unit_test(test_create_empty_body),
        cmocka_unit_test(test_create_invalid_utf8),
        cmocka_unit_test(test_create_after_failure_out_is_clean),
        cmocka_unit_test(test_create_appends_to_existing_errors),
        cmocka_unit_test(test_update_status_only),
        cmocka_unit_test(test_update_with_msg_and_result),
        cmocka_unit_test(test_update_missing_status),
        cmocka_unit_test(test_update_bad_status_value),
        cmocka_unit_test(test_update_status_not_string),
        cmocka_unit_test(test_update_status_msg_not_string),
        cmocka_unit_test(test_update_status_msg_too_long),
        cmocka_unit_test(test_update_result_too_deep),
        cmocka_unit_test(test_values_every_store_keeps),
        cmocka_unit_test(test_update_huge_integer_in_result),
        cmocka_unit_test(test_huge_integers_elsewhere),
        cmocka_unit_test(test_update_several_faults),
        cmocka_unit_test(test_update_bad_bodies),
        cmocka_unit_test(test_limit_valid),
        cmocka_unit_test(test_limit_range),
        cmocka_unit_test(test_limit_parsing),
        cmocka_unit_test(test_limit_as_pydantic_reads_it),
        cmocka_unit_test(test_limit_appends_to_existing_errors),
        cmocka_unit_test(test_wait),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
