/*
 * Unit tests for core/validate: POST /tasks and PATCH /tasks/{id} bodies and
 * the limit query parameter, with the FastAPI-shaped 422 body parsed back
 * with jansson and every detail item (loc, msg, type) checked exactly.
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

/* One expected detail item; field NULL means loc is just [where]; msg NULL means "don't care". */
typedef struct expect_item {
    const char *where;
    const char *field;
    const char *msg;
    const char *type;
} expect_item;

#define MSG_INT_PARSING "Input should be a valid integer, unable to parse string as an integer"
#define MSG_OBJECT      "Input should be a valid dictionary or object to extract fields from"
#define MSG_TYPES       "Input should be 'TASK1', 'TASK2' or 'TASK3'"
#define MSG_STATUSES    "Input should be 'CREATED', 'IN_PROGRESS', 'COMPLETED' or 'FAILED'"

/* Parse validation_body(v) and compare it with the n expected items. */
static void check_body(validation *v, const expect_item *want, size_t n)
{
    assert_int_equal(v->count, (int)n);
    size_t len = 0;
    char *body = validation_body(v, &len);
    assert_non_null(body);
    assert_int_equal(len, strlen(body));
    json_error_t jerr;
    json_t *root = json_loadb(body, len, 0, &jerr);
    if (!root)
        fail_msg("422 body is not JSON: %s (%s)", body, jerr.text);
    assert_int_equal(json_object_size(root), 1);
    json_t *detail = json_object_get(root, "detail");
    assert_true(json_is_array(detail));
    assert_int_equal(json_array_size(detail), n);
    for (size_t i = 0; i < n; i++) {
        json_t *item = json_array_get(detail, i);
        assert_true(json_is_object(item));
        assert_int_equal(json_object_size(item), 3);
        json_t *loc = json_object_get(item, "loc");
        assert_true(json_is_array(loc));
        assert_int_equal(json_array_size(loc), want[i].field ? 2 : 1);
        assert_string_equal(json_string_value(json_array_get(loc, 0)), want[i].where);
        if (want[i].field)
            assert_string_equal(json_string_value(json_array_get(loc, 1)), want[i].field);
        const char *msg = json_string_value(json_object_get(item, "msg"));
        assert_non_null(msg);
        if (want[i].msg)
            assert_string_equal(msg, want[i].msg);
        assert_string_equal(json_string_value(json_object_get(item, "type")), want[i].type);
    }
    json_decref(root);
    free(body);
}

/* validate_create over text with the default config; expect failure with exactly one item. */
static void create_fails_one(const char *body, size_t len, const char *where, const char *field,
                             const char *msg, const char *type)
{
    config c;
    assert_true(config_defaults(&c));
    create_request r;
    validation v = {0};
    if (validate_create(&c, body, len, &r, &v))
        fail_msg("accepted: %.*s", (int)len, body);
    assert_null(r.data);
    assert_null(r.data_image);
    expect_item want = {where, field, msg, type};
    check_body(&v, &want, 1);
    validation_free(&v);
    config_free(&c);
}

static void create_fails_str(const char *body, const char *field, const char *msg, const char *type)
{
    create_fails_one(body, strlen(body), "body", field, msg, type);
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
    validation_add(&v, "body", "a\"b", "line\nbreak \\ \x01", "t");
    validation_add(&v, "query", NULL, "m", "u");
    expect_item want[] = {{"body", "a\"b", "line\nbreak \\ \x01", "t"}, {"query", NULL, "m", "u"}};
    check_body(&v, want, 2);
    validation_free(&v);
    assert_int_equal(v.count, 0);
    assert_null(v.items.data);
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
    assert_int_equal(r.ttl, TASK_NULL_TIME);
    create_request_free(&r);
    assert_null(r.data);
    assert_null(r.data_image);
    create_request_free(&r); /* twice is harmless */
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
        create_request_free(&r);
    }
}

static void test_create_ttl_integer(void **state)
{
    (void)state;
    create_request r;
    create_ok("{\"task_type\":\"TASK2\",\"ttl\":1662381756}", &r);
    assert_int_equal(r.ttl, 1662381756);
    create_request_free(&r);
    create_ok("{\"task_type\":\"TASK2\",\"ttl\":0}", &r);
    assert_int_equal(r.ttl, 0);
    create_request_free(&r);
    create_ok("{\"task_type\":\"TASK2\",\"ttl\":9223372036854775807}", &r);
    assert_true(r.ttl == INT64_MAX);
    create_request_free(&r);
}

static void test_create_ttl_digit_string(void **state)
{
    (void)state;
    create_request r;
    create_ok("{\"task_type\":\"TASK1\",\"data\":{\"foo\":\"bar\"},\"ttl\":\"1662381756\"}", &r);
    assert_int_equal(r.ttl, 1662381756);
    assert_string_equal(r.data, "{\"foo\":\"bar\"}");
    assert_string_equal(r.data_image, "{\"M\":{\"foo\":{\"S\":\"bar\"}}}");
    create_request_free(&r);
    create_ok("{\"task_type\":\"TASK1\",\"ttl\":\"0\"}", &r);
    assert_int_equal(r.ttl, 0);
    create_request_free(&r);
    create_ok("{\"task_type\":\"TASK1\",\"ttl\":\"000123\"}", &r);
    assert_int_equal(r.ttl, 123);
    create_request_free(&r);
    create_ok("{\"task_type\":\"TASK1\",\"ttl\":\"999999999999999999\"}", &r); /* 18 digits */
    assert_true(r.ttl == 999999999999999999LL);
    create_request_free(&r);
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
    create_ok("{\"task_type\":\"TASK1\",\"data\":{\"a\":0.1,\"b\":1.0,\"c\":1e300,\"d\":-0.3,"
              "\"e\":123456.789,\"f\":5e-324}}",
              &r);
    assert_string_equal(r.data, "{\"a\":0.1,\"b\":1.0,\"c\":1e+300,\"d\":-0.3,\"e\":123456.789,"
                                "\"f\":4.94065645841247e-324}");
    json_t *d = json_loads(r.data, 0, NULL);
    assert_non_null(d);
    assert_true(json_is_real(json_object_get(d, "b")));
    assert_true(json_real_value(json_object_get(d, "c")) == 1e300);
    assert_true(json_real_value(json_object_get(d, "f")) == 5e-324);
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

static void test_create_deep_nesting(void **state)
{
    (void)state;
    /* VALIDATE_MAX_DEPTH levels (nested(n) is n + 1 deep) are kept, image and all */
    char *data = nested(VALIDATE_MAX_DEPTH - 1);
    size_t blen = strlen(data) + 64;
    char *body = malloc(blen);
    snprintf(body, blen, "{\"task_type\":\"TASK1\",\"data\":%s}", data);
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

    /* one level more: refused, so no change record is ever too deep to read back */
    char msg[96];
    snprintf(msg, sizeof msg, "Input should nest objects and arrays at most %d levels deep",
             VALIDATE_MAX_DEPTH);
    int depths[] = {VALIDATE_MAX_DEPTH, 1100};
    for (size_t i = 0; i < sizeof depths / sizeof depths[0]; i++) {
        data = nested(depths[i]);
        blen = strlen(data) + 64;
        body = malloc(blen);
        snprintf(body, blen, "{\"task_type\":\"TASK1\",\"data\":%s}", data);
        create_fails_str(body, "data", msg, "value_error");
        free(body);
        free(data);
    }

    /* far past the parser's depth limit: a 422, not a crash */
    data = nested(5000);
    blen = strlen(data) + 64;
    body = malloc(blen);
    snprintf(body, blen, "{\"task_type\":\"TASK1\",\"data\":%s}", data);
    create_fails_one(body, strlen(body), "body", NULL, NULL, "json_invalid");
    free(body);
    free(data);
}

/* ---- validate_create: faults ---- */

static void test_create_missing_task_type(void **state)
{
    (void)state;
    create_fails_str("{}", "task_type", "Field required", "missing");
    create_fails_str("{\"data\":{},\"ttl\":5}", "task_type", "Field required", "missing");
}

static void test_create_task_type_wrong_type(void **state)
{
    (void)state;
    static const char *const bodies[] = {
        "{\"task_type\":1}",    "{\"task_type\":null}", "{\"task_type\":[\"TASK1\"]}",
        "{\"task_type\":true}", "{\"task_type\":{}}",   "{\"task_type\":1.5}",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++)
        create_fails_str(bodies[i], "task_type", "Input should be a valid string", "string_type");
}

static void test_create_unknown_task_type(void **state)
{
    (void)state;
    static const char *const bodies[] = {
        "{\"task_type\":\"TASK4\"}",  "{\"task_type\":\"task1\"}",        "{\"task_type\":\"\"}",
        "{\"task_type\":\"TASK1 \"}", "{\"task_type\":\"TASK1\\u0000\"}",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        /* "\u0000" is refused by the parser itself */
        if (strstr(bodies[i], "\\u0000"))
            create_fails_str(bodies[i], NULL, NULL, "json_invalid");
        else
            create_fails_str(bodies[i], "task_type", MSG_TYPES, "enum");
    }
}

static void test_create_enum_message_follows_config(void **state)
{
    (void)state;
    static const struct {
        const char *cfg;
        const char *msg;
    } cases[] = {
        {"{\"task_types\":[\"ONLY\"]}", "Input should be 'ONLY'"},
        {"{\"task_types\":[\"A\",\"B\"]}", "Input should be 'A' or 'B'"},
        {"{\"task_types\":[\"A\",\"B\",\"C\",\"D\"]}", "Input should be 'A', 'B', 'C' or 'D'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        config c;
        char err[256];
        assert_true(config_defaults(&c));
        assert_true(config_load_text(&c, cases[i].cfg, "cfg", err, sizeof err));
        create_request r;
        validation v = {0};
        const char *body = "{\"task_type\":\"TASK1\"}";
        assert_false(validate_create(&c, body, strlen(body), &r, &v));
        expect_item want = {"body", "task_type", cases[i].msg, "enum"};
        check_body(&v, &want, 1);
        validation_free(&v);
        /* and a configured name is accepted */
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
        char body[128];
        snprintf(body, sizeof body, "{\"task_type\":\"TASK1\",\"data\":%s}", datas[i]);
        create_fails_str(body, "data", "Input should be a valid dictionary", "dict_type");
    }
}

static void test_create_ttl_negative(void **state)
{
    (void)state;
    create_fails_str("{\"task_type\":\"TASK1\",\"ttl\":-1}", "ttl",
                     "Input should be greater than or equal to 0", "greater_than_equal");
    create_fails_str("{\"task_type\":\"TASK1\",\"ttl\":-9223372036854775808}", "ttl",
                     "Input should be greater than or equal to 0", "greater_than_equal");
}

static void test_create_ttl_int_parsing(void **state)
{
    (void)state;
    static const char *const ttls[] = {"\"12a\"", "\"\"", "\"1.5\"", "\"abc\"", "\"0x10\""};
    for (size_t i = 0; i < sizeof ttls / sizeof ttls[0]; i++) {
        char body[128];
        snprintf(body, sizeof body, "{\"task_type\":\"TASK1\",\"ttl\":%s}", ttls[i]);
        create_fails_str(body, "ttl", MSG_INT_PARSING, "int_parsing");
    }
}

static void test_create_ttl_int_from_float(void **state)
{
    (void)state;
    create_fails_str("{\"task_type\":\"TASK1\",\"ttl\":1.5}", "ttl",
                     "Input should be a valid integer, got a number with a fractional part",
                     "int_from_float");
    create_fails_str("{\"task_type\":\"TASK1\",\"ttl\":1e-3}", "ttl",
                     "Input should be a valid integer, got a number with a fractional part",
                     "int_from_float");
}

static void test_create_ttl_int_type(void **state)
{
    (void)state;
    static const char *const ttls[] = {"true", "false", "[]", "{}", "[1]"};
    for (size_t i = 0; i < sizeof ttls / sizeof ttls[0]; i++) {
        char body[128];
        snprintf(body, sizeof body, "{\"task_type\":\"TASK1\",\"ttl\":%s}", ttls[i]);
        create_fails_str(body, "ttl", "Input should be a valid integer", "int_type");
    }
}

static void test_create_several_faults(void **state)
{
    (void)state;
    config c;
    assert_true(config_defaults(&c));
    const char *body = "{\"ttl\":\"12a\",\"data\":[],\"task_type\":5}";
    create_request r;
    validation v = {0};
    assert_false(validate_create(&c, body, strlen(body), &r, &v));
    /* one item per bad field, in field order task_type, data, ttl */
    expect_item want[] = {
        {"body", "task_type", "Input should be a valid string", "string_type"},
        {"body", "data", "Input should be a valid dictionary", "dict_type"},
        {"body", "ttl", MSG_INT_PARSING, "int_parsing"},
    };
    check_body(&v, want, 3);
    validation_free(&v);

    body = "{\"task_type\":\"NOPE\",\"ttl\":-3}";
    assert_false(validate_create(&c, body, strlen(body), &r, &v));
    expect_item want2[] = {
        {"body", "task_type", MSG_TYPES, "enum"},
        {"body", "ttl", "Input should be greater than or equal to 0", "greater_than_equal"},
    };
    check_body(&v, want2, 2);
    validation_free(&v);

    body = "{\"data\":5,\"ttl\":true}";
    assert_false(validate_create(&c, body, strlen(body), &r, &v));
    expect_item want3[] = {
        {"body", "task_type", "Field required", "missing"},
        {"body", "data", "Input should be a valid dictionary", "dict_type"},
        {"body", "ttl", "Input should be a valid integer", "int_type"},
    };
    check_body(&v, want3, 3);
    validation_free(&v);
    config_free(&c);
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
        "{\"task_type\":\"TASK1\",\"ttl\":99999999999999999999}",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++)
        create_fails_str(bodies[i], NULL, NULL, "json_invalid");

    /* the message names the parser's complaint and where */
    config c;
    assert_true(config_defaults(&c));
    create_request r;
    validation v = {0};
    const char *body = "{\n\"task_type\": }";
    assert_false(validate_create(&c, body, strlen(body), &r, &v));
    char *text = validation_body(&v, NULL);
    json_t *root = json_loads(text, 0, NULL);
    assert_non_null(root);
    const char *msg = json_string_value(
        json_object_get(json_array_get(json_object_get(root, "detail"), 0), "msg"));
    assert_non_null(msg);
    assert_int_equal(strncmp(msg, "JSON decode error: ", 19), 0);
    assert_non_null(strstr(msg, "(line 2, column "));
    json_decref(root);
    free(text);
    validation_free(&v);
    config_free(&c);
}

static void test_create_non_object_json(void **state)
{
    (void)state;
    static const char *const bodies[] = {"\"hello\"", "[]", "42", "null", "true", "[{}]", "1.5"};
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++)
        create_fails_str(bodies[i], NULL, MSG_OBJECT, "model_attributes_type");
}

static void test_create_empty_body(void **state)
{
    (void)state;
    create_fails_one("", 0, "body", NULL, NULL, "json_invalid");
    create_fails_one(NULL, 0, "body", NULL, NULL, "json_invalid");
    create_fails_one("   \n", 4, "body", NULL, NULL, "json_invalid");
    /* len governs, not the NUL: a valid object cut short is invalid */
    create_fails_one("{\"task_type\":\"TASK1\"}", 10, "body", NULL, NULL, "json_invalid");
}

static void test_create_invalid_utf8(void **state)
{
    (void)state;
    create_fails_str("{\"task_type\":\"TASK1\",\"data\":{\"a\":\"\xff\"}}", NULL, NULL,
                     "json_invalid");
    create_fails_str("{\"task_type\":\"TASK1\",\"data\":{\"\xc3\x28\":1}}", NULL, NULL,
                     "json_invalid");
    create_fails_str("{\"task_type\":\"TASK\xe2\x82\"}", NULL, NULL, "json_invalid");
    /* overlong encoding of '/' and a lone surrogate escape */
    create_fails_str("{\"task_type\":\"TASK1\",\"data\":{\"a\":\"\xc0\xaf\"}}", NULL, NULL,
                     "json_invalid");
    create_fails_str("{\"task_type\":\"TASK1\",\"data\":{\"a\":\"\\ud800\"}}", NULL, NULL,
                     "json_invalid");
    /* a raw NUL inside the counted body */
    static const char nul[] = "{\"task_type\":\"TASK1\",\"data\":{\"a\":\"x\0y\"}}";
    create_fails_one(nul, sizeof nul - 1, "body", NULL, NULL, "json_invalid");
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
    update_request r;
    validation v = {0};
    assert_false(update("{\"status_msg\":\"x\",\"result\":1}", &r, &v));
    assert_null(r.status_msg);
    assert_null(r.result);
    expect_item want = {"body", "status", "Field required", "missing"};
    check_body(&v, &want, 1);
    validation_free(&v);
}

static void test_update_bad_status_value(void **state)
{
    (void)state;
    static const char *const values[] = {"DONE", "completed", "", "IN PROGRESS", "FAILED "};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        char body[64];
        snprintf(body, sizeof body, "{\"status\":\"%s\"}", values[i]);
        update_request r;
        validation v = {0};
        assert_false(update(body, &r, &v));
        expect_item want = {"body", "status", MSG_STATUSES, "enum"};
        check_body(&v, &want, 1);
        validation_free(&v);
    }
}

static void test_update_status_not_string(void **state)
{
    (void)state;
    static const char *const values[] = {"1", "null", "true", "[\"FAILED\"]", "{}"};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        char body[64];
        snprintf(body, sizeof body, "{\"status\":%s}", values[i]);
        update_request r;
        validation v = {0};
        assert_false(update(body, &r, &v));
        expect_item want = {"body", "status", "Input should be a valid string", "string_type"};
        check_body(&v, &want, 1);
        validation_free(&v);
    }
}

static void test_update_status_msg_not_string(void **state)
{
    (void)state;
    static const char *const values[] = {"null", "5", "1.5", "false", "[]", "{}"};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        char body[96];
        snprintf(body, sizeof body, "{\"status\":\"FAILED\",\"status_msg\":%s}", values[i]);
        update_request r;
        validation v = {0};
        assert_false(update(body, &r, &v));
        assert_null(r.status_msg);
        expect_item want = {"body", "status_msg", "Input should be a valid string", "string_type"};
        check_body(&v, &want, 1);
        validation_free(&v);
    }
}

static void test_update_result_too_deep(void **state)
{
    (void)state;
    char msg[96];
    snprintf(msg, sizeof msg, "Input should nest objects and arrays at most %d levels deep",
             VALIDATE_MAX_DEPTH);
    /* a result of VALIDATE_MAX_DEPTH levels is kept; one more is refused */
    for (int extra = 0; extra <= 1; extra++) {
        char *res = nested(VALIDATE_MAX_DEPTH - 1 + extra);
        size_t blen = strlen(res) + 64;
        char *body = malloc(blen);
        snprintf(body, blen, "{\"status\":\"COMPLETED\",\"result\":%s}", res);
        update_request r;
        validation v = {0};
        if (!extra) {
            assert_true(update(body, &r, &v));
            assert_string_equal(r.result, res);
            update_request_free(&r);
        } else {
            assert_false(update(body, &r, &v));
            expect_item want = {"body", "result", msg, "value_error"};
            check_body(&v, &want, 1);
        }
        validation_free(&v);
        free(body);
        free(res);
    }
}

static void test_update_several_faults(void **state)
{
    (void)state;
    update_request r;
    validation v = {0};
    assert_false(update("{\"status\":\"NOPE\",\"status_msg\":7}", &r, &v));
    expect_item want[] = {
        {"body", "status", MSG_STATUSES, "enum"},
        {"body", "status_msg", "Input should be a valid string", "string_type"},
    };
    check_body(&v, want, 2);
    validation_free(&v);
    assert_false(update("{\"status_msg\":null}", &r, &v));
    expect_item want2[] = {
        {"body", "status", "Field required", "missing"},
        {"body", "status_msg", "Input should be a valid string", "string_type"},
    };
    check_body(&v, want2, 2);
    validation_free(&v);
}

static void test_update_bad_bodies(void **state)
{
    (void)state;
    static const char *const invalid[] = {"", "{", "{\"status\":\"FAILED\"", "\xff"};
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        update_request r;
        validation v = {0};
        assert_false(update(invalid[i], &r, &v));
        expect_item want = {"body", NULL, NULL, "json_invalid"};
        check_body(&v, &want, 1);
        validation_free(&v);
    }
    static const char *const nonobj[] = {"\"hello\"", "[]", "42", "null"};
    for (size_t i = 0; i < sizeof nonobj / sizeof nonobj[0]; i++) {
        update_request r;
        validation v = {0};
        assert_false(update(nonobj[i], &r, &v));
        expect_item want = {"body", NULL, MSG_OBJECT, "model_attributes_type"};
        check_body(&v, &want, 1);
        validation_free(&v);
    }
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

static void limit_bad(const char *s, const char *msg, const char *type)
{
    validation v = {0};
    int out = -12345;
    if (validate_limit(s, &out, &v))
        fail_msg("limit \"%s\" accepted as %d", s, out);
    assert_int_equal(out, -12345); /* untouched */
    expect_item want = {"query", "limit", msg, type};
    check_body(&v, &want, 1);
    validation_free(&v);
}

#define GE1   "Input should be greater than or equal to 1"
#define LE100 "Input should be less than or equal to 100"

static void test_limit_valid(void **state)
{
    (void)state;
    limit_ok(NULL, 10);
    limit_ok("1", 1);
    limit_ok("10", 10);
    limit_ok("100", 100);
    limit_ok("+5", 5);
    limit_ok("007", 7);
}

static void test_limit_range(void **state)
{
    (void)state;
    limit_bad("0", GE1, "greater_than_equal");
    limit_bad("-1", GE1, "greater_than_equal");
    limit_bad("-0", GE1, "greater_than_equal");
    limit_bad("-99999999999999999999", GE1, "greater_than_equal");
    limit_bad("101", LE100, "less_than_equal");
    limit_bad("999999999", LE100, "less_than_equal");
    limit_bad("2147483648", LE100, "less_than_equal");
    limit_bad("99999999999999999999", LE100, "less_than_equal");
}

static void test_limit_parsing(void **state)
{
    (void)state;
    static const char *const bad[] = {"abc", "",  "5 ",  " 5",   "1.0",   "1e2",
                                      "+",   "-", "+-1", "0x10", "10abc", "1_0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        limit_bad(bad[i], MSG_INT_PARSING, "int_parsing");
}

static void test_limit_appends_to_existing_errors(void **state)
{
    (void)state;
    validation v = {0};
    validation_add(&v, "query", "status", "Input should be x", "enum");
    int out = 0;
    assert_false(validate_limit("0", &out, &v));
    expect_item want[] = {{"query", "status", "Input should be x", "enum"},
                          {"query", "limit", GE1, "greater_than_equal"}};
    check_body(&v, want, 2);
    validation_free(&v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validation_empty_body),
        cmocka_unit_test(test_validation_add_escapes),
        cmocka_unit_test(test_create_task_type_only),
        cmocka_unit_test(test_create_every_default_type),
        cmocka_unit_test(test_create_ttl_integer),
        cmocka_unit_test(test_create_ttl_digit_string),
        cmocka_unit_test(test_create_ttl_null),
        cmocka_unit_test(test_create_extra_fields_ignored),
        cmocka_unit_test(test_create_data_compact_text),
        cmocka_unit_test(test_create_reals_shortest),
        cmocka_unit_test(test_create_unicode_data),
        cmocka_unit_test(test_create_deep_nesting),
        cmocka_unit_test(test_create_missing_task_type),
        cmocka_unit_test(test_create_task_type_wrong_type),
        cmocka_unit_test(test_create_unknown_task_type),
        cmocka_unit_test(test_create_enum_message_follows_config),
        cmocka_unit_test(test_create_data_not_object),
        cmocka_unit_test(test_create_ttl_negative),
        cmocka_unit_test(test_create_ttl_int_parsing),
        cmocka_unit_test(test_create_ttl_int_from_float),
        cmocka_unit_test(test_create_ttl_int_type),
        cmocka_unit_test(test_create_several_faults),
        cmocka_unit_test(test_create_invalid_json),
        cmocka_unit_test(test_create_non_object_json),
        cmocka_unit_test(test_create_empty_body),
        cmocka_unit_test(test_create_invalid_utf8),
        cmocka_unit_test(test_create_after_failure_out_is_clean),
        cmocka_unit_test(test_update_status_only),
        cmocka_unit_test(test_update_with_msg_and_result),
        cmocka_unit_test(test_update_missing_status),
        cmocka_unit_test(test_update_bad_status_value),
        cmocka_unit_test(test_update_status_not_string),
        cmocka_unit_test(test_update_status_msg_not_string),
        cmocka_unit_test(test_update_result_too_deep),
        cmocka_unit_test(test_update_several_faults),
        cmocka_unit_test(test_update_bad_bodies),
        cmocka_unit_test(test_limit_valid),
        cmocka_unit_test(test_limit_range),
        cmocka_unit_test(test_limit_parsing),
        cmocka_unit_test(test_limit_appends_to_existing_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
