/*
 * Unit tests for aws/apigw: API Gateway proxy events (payload 1.0 and 2.0)
 * into api_requests — stage prefix, repeated query parameters and headers,
 * lookup (a header's name in any case, a parameter's as written),
 * percent-decoding, cookies, base64 bodies, every rejection, mangled input
 * — and api_responses into the Lambda response JSON (201 with Location,
 * 204, 422, HEAD, binary bodies; a Location below the stage or base path
 * the event came through). One end-to-end test passes a parsed event
 * through a fake API; no store is started.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "aws/apigw.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Payload 1.0 as the REST API proxy integration sends it (shape of the AWS example). */
static const char V1_EVENT[] =
    "{\"resource\": \"/tasks/{id}\","
    " \"path\": \"/tasks/0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e5f\","
    " \"httpMethod\": \"GET\","
    " \"headers\": {\"Accept\": \"application/json\", \"X-Amzn-Trace-Id\": \"Root=1-abc\"},"
    " \"multiValueHeaders\": {\"Accept\": [\"application/json\"],"
    "   \"X-Amzn-Trace-Id\": [\"Root=1-abc\"]},"
    " \"queryStringParameters\": {\"limit\": \"10\"},"
    " \"multiValueQueryStringParameters\": {\"limit\": [\"10\"]},"
    " \"pathParameters\": {\"id\": \"0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e5f\"},"
    " \"stageVariables\": null,"
    " \"requestContext\": {"
    "   \"accountId\": \"123456789012\", \"apiId\": \"abc123\", \"resourceId\": \"x1y2z3\","
    "   \"resourcePath\": \"/tasks/{id}\","
    "   \"path\": \"/prod/tasks/0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e5f\","
    "   \"httpMethod\": \"GET\", \"stage\": \"prod\","
    "   \"requestId\": \"c6af9ac6-7b61-11e6-9a41-93e8deadbeef\","
    "   \"extendedRequestId\": \"abcdEFGHijkl=\","
    "   \"requestTime\": \"04/Mar/2020:19:15:17 +0000\", \"requestTimeEpoch\": 1583349317135,"
    "   \"protocol\": \"HTTP/1.1\", \"domainName\": \"abc123.execute-api.eu-west-1.amazonaws.com\","
    "   \"domainPrefix\": \"abc123\","
    "   \"identity\": {\"sourceIp\": \"203.0.113.7\", \"userAgent\": \"curl/8.5.0\"},"
    "   \"authorizer\": null},"
    " \"body\": null,"
    " \"isBase64Encoded\": false}";

/* Payload 2.0 as an HTTP API sends it, on a named stage. */
static const char V2_EVENT[] =
    "{\"version\": \"2.0\","
    " \"routeKey\": \"$default\","
    " \"rawPath\": \"/prod/tasks\","
    " \"rawQueryString\": \"status=CREATED&limit=5\","
    " \"cookies\": [\"session=abc\", \"theme=dark\"],"
    " \"headers\": {\"accept\": \"application/json\", \"x-forwarded-for\": \"203.0.113.7\","
    "   \"content-type\": \"application/json\"},"
    " \"queryStringParameters\": {\"status\": \"CREATED\", \"limit\": \"5\"},"
    " \"requestContext\": {"
    "   \"accountId\": \"123456789012\", \"apiId\": \"abc123\","
    "   \"domainName\": \"abc123.execute-api.eu-west-1.amazonaws.com\","
    "   \"domainPrefix\": \"abc123\","
    "   \"http\": {\"method\": \"POST\", \"path\": \"/prod/tasks\", \"protocol\": \"HTTP/1.1\","
    "     \"sourceIp\": \"203.0.113.7\", \"userAgent\": \"curl/8.5.0\"},"
    "   \"requestId\": \"JKJaXmPLvHcESHA=\", \"routeKey\": \"$default\", \"stage\": \"prod\","
    "   \"time\": \"04/Mar/2020:19:15:17 +0000\", \"timeEpoch\": 1583349317135},"
    " \"body\": \"{\\\"task_type\\\":\\\"TASK1\\\"}\","
    " \"pathParameters\": null,"
    " \"isBase64Encoded\": false,"
    " \"stageVariables\": null}";

static void parse_ok(const char *event, apigw_request *r)
{
    char err[256] = "";
    if (!apigw_request_parse(event, strlen(event), r, err, sizeof err, NULL))
        fail_msg("parse failed: %s\nevent: %s", err, event);
}

/* Parse a 1.0 event with the given path and stage; returns the API's path in buf. */
static const char *v1_path(const char *path, const char *stage, char *buf, size_t len)
{
    char event[512];
    if (stage)
        snprintf(event, sizeof event,
                 "{\"httpMethod\":\"GET\",\"path\":\"%s\",\"requestContext\":{\"stage\":\"%s\"}}",
                 path, stage);
    else
        snprintf(event, sizeof event, "{\"httpMethod\":\"GET\",\"path\":\"%s\"}", path);
    apigw_request r;
    parse_ok(event, &r);
    snprintf(buf, len, "%s", r.req.path);
    apigw_request_free(&r);
    return buf;
}

/* Parse a 2.0 event with the given rawPath, rawQueryString (NULL: none) and stage. */
static void v2_parse(const char *raw_path, const char *raw_query, const char *stage,
                     apigw_request *r)
{
    char query[256] = "";
    if (raw_query)
        snprintf(query, sizeof query, "\"rawQueryString\":\"%s\",", raw_query);
    char event[768];
    snprintf(event, sizeof event,
             "{\"version\":\"2.0\",\"rawPath\":\"%s\",%s"
             "\"requestContext\":{\"http\":{\"method\":\"GET\"},\"stage\":\"%s\"}}",
             raw_path, query, stage);
    parse_ok(event, r);
}

static const char *q(const apigw_request *r, const char *name)
{
    return r->req.query(r->req.ctx, name);
}

static const char *h(const apigw_request *r, const char *name)
{
    return r->req.header(r->req.ctx, name);
}

/* ---- payload 1.0 ---- */

static void test_v1_sample_event(void **state)
{
    (void)state;
    apigw_request r;
    parse_ok(V1_EVENT, &r);
    assert_int_equal(r.version, 1);
    assert_string_equal(r.req.method, "GET");
    assert_string_equal(r.req.path, "/tasks/0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e5f");
    assert_string_equal(r.request_id, "c6af9ac6-7b61-11e6-9a41-93e8deadbeef");
    assert_string_equal(q(&r, "limit"), "10");
    assert_null(q(&r, "status"));
    assert_string_equal(h(&r, "Accept"), "application/json");
    assert_string_equal(h(&r, "x-amzn-trace-id"), "Root=1-abc");
    assert_null(h(&r, "Idempotency-Key"));
    assert_non_null(r.req.body);
    assert_int_equal(r.req.body_len, 0);
    assert_string_equal(r.req.body, "");
    apigw_request_free(&r);
    apigw_request_free(&r); /* twice is harmless */
    apigw_request_free(NULL);
}

static void test_v1_stage_prefix(void **state)
{
    (void)state;
    char buf[128];
    /* execute-api host: path has no stage */
    assert_string_equal(v1_path("/tasks", "prod", buf, sizeof buf), "/tasks");
    /* a path carrying the stage (custom domain mapped with it) */
    assert_string_equal(v1_path("/prod/tasks", "prod", buf, sizeof buf), "/tasks");
    assert_string_equal(v1_path("/prod/tasks/abc/trace", "prod", buf, sizeof buf),
                        "/tasks/abc/trace");
    assert_string_equal(v1_path("/prod", "prod", buf, sizeof buf), "/");
    assert_string_equal(v1_path("/prod/", "prod", buf, sizeof buf), "/");
    /* only a whole segment is the stage */
    assert_string_equal(v1_path("/production/tasks", "prod", buf, sizeof buf), "/production/tasks");
    assert_string_equal(v1_path("/pro/tasks", "prod", buf, sizeof buf), "/pro/tasks");
    assert_string_equal(v1_path("/tasks/prod", "prod", buf, sizeof buf), "/tasks/prod");
    /* no stage known: nothing stripped */
    assert_string_equal(v1_path("/prod/tasks", NULL, buf, sizeof buf), "/prod/tasks");
    assert_string_equal(v1_path("/prod/tasks", "", buf, sizeof buf), "/prod/tasks");
    /* 1.0 paths arrive decoded: no second decoding */
    assert_string_equal(v1_path("/tasks/a%2541", "prod", buf, sizeof buf), "/tasks/a%2541");
    assert_string_equal(v1_path("/", "prod", buf, sizeof buf), "/");
}

static void test_v1_multi_value_query(void **state)
{
    (void)state;
    apigw_request r;
    parse_ok("{\"httpMethod\":\"GET\",\"path\":\"/tasks\","
             "\"queryStringParameters\":{\"status\":\"DONE\",\"limit\":\"4\",\"only\":\"x\"},"
             "\"multiValueQueryStringParameters\":{\"status\":[\"CREATED\",\"DONE\"],"
             "\"limit\":[\"3\"],\"empty\":[],\"nothing\":null}}",
             &r);
    assert_string_equal(q(&r, "status"), "DONE"); /* last of the list, as locally and FastAPI */
    assert_null(q(&r, "STATUS")); /* a name as written, as FastAPI reads it: not in any case */
    assert_string_equal(q(&r, "limit"), "3"); /* the multi-value map wins */
    assert_string_equal(q(&r, "only"), "x");  /* single-value map still read */
    assert_null(q(&r, "empty"));
    assert_null(q(&r, "nothing"));
    assert_null(q(&r, "missing"));
    assert_null(h(&r, "accept"));
    apigw_request_free(&r);

    parse_ok("{\"httpMethod\":\"GET\",\"path\":\"/tasks\",\"queryStringParameters\":null,"
             "\"multiValueQueryStringParameters\":null,\"headers\":null,"
             "\"multiValueHeaders\":null,\"requestContext\":null}",
             &r);
    assert_null(q(&r, "status"));
    assert_null(h(&r, "accept"));
    assert_string_equal(r.request_id, "");
    apigw_request_free(&r);
}

static void test_v1_multi_value_headers(void **state)
{
    (void)state;
    apigw_request r;
    parse_ok("{\"httpMethod\":\"POST\",\"path\":\"/tasks\","
             "\"headers\":{\"X-Thing\":\"second\",\"Idempotency-Key\":\"k1\","
             "\"content-type\":\"application/json\"},"
             "\"multiValueHeaders\":{\"X-Thing\":[\"first\",\"second\"],"
             "\"content-type\":[\"application/json\"]}}",
             &r);
    assert_string_equal(h(&r, "X-Thing"), "first");
    assert_string_equal(h(&r, "x-thing"), "first");
    assert_string_equal(h(&r, "X-THING"), "first");
    assert_string_equal(h(&r, "idempotency-key"), "k1");
    assert_string_equal(h(&r, "IDEMPOTENCY-KEY"), "k1");
    assert_string_equal(h(&r, "Content-Type"), "application/json");
    assert_null(h(&r, "X-Thin"));
    assert_null(h(&r, "X-Things"));
    assert_null(q(&r, "X-Thing")); /* headers are not query parameters */
    apigw_request_free(&r);
}

static void test_v1_base64_body(void **state)
{
    (void)state;
    apigw_request r;
    /* "hello\0world" */
    parse_ok("{\"httpMethod\":\"POST\",\"path\":\"/tasks\",\"body\":\"aGVsbG8Ad29ybGQ=\","
             "\"isBase64Encoded\":true}",
             &r);
    assert_int_equal(r.req.body_len, 11);
    assert_memory_equal(r.req.body, "hello\0world", 12); /* terminated */
    apigw_request_free(&r);

    /* padding optional; every tail length */
    static const struct {
        const char *b64;
        const char *plain;
    } ok[] = {{"", ""},
              {"Zg==", "f"},
              {"Zg", "f"},
              {"Zm8=", "fo"},
              {"Zm8", "fo"},
              {"Zm9v", "foo"},
              {"Zm9vYg==", "foob"},
              {"Zm9vYmE", "fooba"},
              {"Zm9vYmFy", "foobar"},
              {"+/+/", "\xfb\xff\xbf"}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        char event[256];
        snprintf(
            event, sizeof event,
            "{\"httpMethod\":\"POST\",\"path\":\"/t\",\"body\":\"%s\",\"isBase64Encoded\":true}",
            ok[i].b64);
        parse_ok(event, &r);
        assert_int_equal(r.req.body_len, strlen(ok[i].plain));
        assert_memory_equal(r.req.body, ok[i].plain, strlen(ok[i].plain) + 1);
        apigw_request_free(&r);
    }

    /* a text body keeps its NUL bytes and its length; isBase64Encoded null = false */
    parse_ok("{\"httpMethod\":\"POST\",\"path\":\"/t\",\"body\":\"a\\u0000b\","
             "\"isBase64Encoded\":null}",
             &r);
    assert_int_equal(r.req.body_len, 3);
    assert_memory_equal(r.req.body, "a\0b", 4);
    apigw_request_free(&r);

    /* not base64-encoded: the body is taken as is, even if it looks like base64 */
    parse_ok("{\"httpMethod\":\"POST\",\"path\":\"/t\",\"body\":\"Zm9v\"}", &r);
    assert_string_equal(r.req.body, "Zm9v");
    assert_int_equal(r.req.body_len, 4);
    apigw_request_free(&r);
}

/* ---- payload 2.0 ---- */

static void test_v2_sample_event(void **state)
{
    (void)state;
    apigw_request r;
    parse_ok(V2_EVENT, &r);
    assert_int_equal(r.version, 2);
    assert_string_equal(r.req.method, "POST");
    assert_string_equal(r.req.path, "/tasks"); /* "/prod" stripped */
    assert_string_equal(r.request_id, "JKJaXmPLvHcESHA=");
    assert_string_equal(q(&r, "status"), "CREATED");
    assert_string_equal(q(&r, "limit"), "5");
    assert_string_equal(h(&r, "Content-Type"), "application/json");
    assert_string_equal(h(&r, "X-Forwarded-For"), "203.0.113.7");
    assert_string_equal(h(&r, "Cookie"), "session=abc; theme=dark");
    assert_string_equal(r.req.body, "{\"task_type\":\"TASK1\"}");
    assert_int_equal(r.req.body_len, strlen("{\"task_type\":\"TASK1\"}"));
    apigw_request_free(&r);

    /* requestContext.http alone tells a 2.0 event; rawPath missing: http.path */
    parse_ok("{\"requestContext\":{\"http\":{\"method\":\"GET\",\"path\":\"/health\"}}}", &r);
    assert_int_equal(r.version, 2);
    assert_string_equal(r.req.path, "/health");
    assert_null(h(&r, "cookie"));
    assert_int_equal(r.req.body_len, 0);
    apigw_request_free(&r);

    /* an HTTP API's payload 1.0 is read as 1.0 */
    parse_ok("{\"version\":\"1.0\",\"httpMethod\":\"GET\",\"path\":\"/tasks\","
             "\"requestContext\":{\"stage\":\"$default\"}}",
             &r);
    assert_int_equal(r.version, 1);
    assert_string_equal(r.req.path, "/tasks");
    apigw_request_free(&r);
}

static void test_v2_stage_stripping(void **state)
{
    (void)state;
    static const struct {
        const char *raw, *stage, *want;
    } cases[] = {
        {"/prod/tasks/abc", "prod", "/tasks/abc"},
        {"/prod", "prod", "/"},
        {"/tasks", "prod", "/tasks"},
        {"/production", "prod", "/production"},
        {"/tasks", "$default", "/tasks"},
        {"/$default/tasks", "$default", "/$default/tasks"}, /* $default is never a prefix */
        {"/v1/tasks", "v1", "/tasks"},
        {"/%70rod/tasks", "prod", "/prod/tasks"}, /* stripped before decoding */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        apigw_request r;
        v2_parse(cases[i].raw, NULL, cases[i].stage, &r);
        if (strcmp(r.req.path, cases[i].want) != 0)
            fail_msg("%s on stage %s: got %s, want %s", cases[i].raw, cases[i].stage, r.req.path,
                     cases[i].want);
        apigw_request_free(&r);
    }
}

static void test_v2_percent_decoding(void **state)
{
    (void)state;
    static const struct {
        const char *raw, *want;
    } paths[] = {
        {"/tasks/a%20b", "/tasks/a b"},
        {"/tasks/a%2Fb", "/tasks/a/b"}, /* as libmicrohttpd: decoded before routing */
        {"/tasks/%41%6a%6A", "/tasks/Ajj"},
        {"/tasks/a+b", "/tasks/a+b"},             /* no '+' rule in paths */
        {"/tasks/id%00junk", "/tasks/id%00junk"}, /* NUL never decoded */
        {"/tasks/%zz%4", "/tasks/%zz%4"},         /* malformed escapes kept */
        {"/tasks/%", "/tasks/%"},
        {"/tasks/%C3%A9", "/tasks/\xc3\xa9"},
    };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        apigw_request r;
        v2_parse(paths[i].raw, NULL, "$default", &r);
        if (strcmp(r.req.path, paths[i].want) != 0)
            fail_msg("%s: got %s, want %s", paths[i].raw, r.req.path, paths[i].want);
        apigw_request_free(&r);
    }

    apigw_request r;
    v2_parse("/tasks",
             "q=a+b%2Bc&x=%41&s=1&s=2&flag&both&both=1&k=v=w&&e=&z=%00&%73tatus=DONE&n+m=1&"
             "Case=upper",
             "$default", &r);
    assert_string_equal(q(&r, "q"), "a b+c"); /* '+' is a space, "%2B" a plus */
    assert_string_equal(q(&r, "x"), "A");
    assert_string_equal(q(&r, "s"), "2");    /* the last of a repeat */
    assert_string_equal(q(&r, "flag"), "");  /* a name without '=' as "flag=", as Starlette */
    assert_string_equal(q(&r, "both"), "1"); /* ... and is a repeat like any other */
    assert_string_equal(q(&r, "k"), "v=w");
    assert_string_equal(q(&r, "e"), "");
    assert_string_equal(q(&r, "z"), "%00");
    assert_string_equal(q(&r, "status"), "DONE"); /* names are decoded too */
    assert_string_equal(q(&r, "n m"), "1");
    assert_string_equal(q(&r, "Case"), "upper");
    assert_null(q(&r, "case")); /* a name as written, as FastAPI reads it */
    assert_null(q(&r, "missing"));
    apigw_request_free(&r);

    v2_parse("/tasks", "", "$default", &r);
    assert_null(q(&r, "status"));
    apigw_request_free(&r);
}

static void test_v2_cookies_and_query_fallback(void **state)
{
    (void)state;
    apigw_request r;
    parse_ok("{\"version\":\"2.0\",\"rawPath\":\"/tasks\",\"cookies\":[\"a=1\"],"
             "\"headers\":{\"x-multi\":\"one,two\"},"
             "\"queryStringParameters\":{\"status\":\"CREATED,DONE\"},"
             "\"requestContext\":{\"http\":{\"method\":\"GET\"},\"stage\":\"$default\"}}",
             &r);
    assert_string_equal(h(&r, "COOKIE"), "a=1");
    assert_string_equal(h(&r, "X-Multi"), "one,two"); /* joined by API Gateway; kept */
    /* no rawQueryString: the map is used as API Gateway joined it */
    assert_string_equal(q(&r, "status"), "CREATED,DONE");
    apigw_request_free(&r);

    parse_ok("{\"version\":\"2.0\",\"rawPath\":\"/tasks\",\"cookies\":[],"
             "\"rawQueryString\":\"status=DONE\","
             "\"queryStringParameters\":{\"status\":\"CREATED\"},"
             "\"requestContext\":{\"http\":{\"method\":\"GET\"}}}",
             &r);
    assert_null(h(&r, "cookie"));
    assert_string_equal(q(&r, "status"), "DONE"); /* rawQueryString preferred */
    apigw_request_free(&r);
}

/* ---- rejections ---- */

/* A decoded NUL reaches the API as "%00", as the local server leaves it: no value ends early. */
static void test_v1_nul_kept_encoded(void **state)
{
    (void)state;
    const char *ev = "{\"httpMethod\":\"GET\",\"path\":\"/tasks/a\\u0000b\","
                     "\"headers\":{\"A\":\"x\\u0000y\"},"
                     "\"multiValueQueryStringParameters\":{\"status\":[\"CREATED\\u0000x\"]}}";
    apigw_request r;
    char err[128] = "";
    if (!apigw_request_parse(ev, strlen(ev), &r, err, sizeof err, NULL))
        fail_msg("refused: %s", err);
    assert_string_equal(r.req.path, "/tasks/a%00b");
    assert_string_equal(r.req.header(r.req.ctx, "a"), "x%00y");
    assert_string_equal(r.req.query(r.req.ctx, "status"), "CREATED%00x");
    apigw_request_free(&r);
}

/* API Gateway decodes a REST API's query string, so a parameter named %00 reaches the event as a
 * member name holding NUL, which a JSON parser may refuse: the name is spelled %00 again, as the
 * local server leaves it, and matches nothing; values and the body keep their own. Before, the
 * invocation failed, and the client got API Gateway's 502 without a detail. */
static void test_nul_in_a_name_kept_encoded(void **state)
{
    (void)state;
    static const char *const events[] = {
        "{\"httpMethod\":\"GET\",\"path\":\"/tasks\","
        "\"queryStringParameters\":{\"\\u0000\":\"1\",\"limit\":\"5\"},"
        "\"multiValueQueryStringParameters\" : {\"a\\u0000\\u0000b\" :[\"1\"],\"limit\":[\"5\"]},"
        "\"headers\":{\"x-note\":\"a\\u0000\\\"\\\\u0000\",\"A\\u0000B\":\"x\"},"
        "\"body\":\"{\\\"k\\\\u0000\\\":1}\"}",
        "{\"version\":\"2.0\",\"rawPath\":\"/tasks\",\"rawQueryString\":\"%00=1&limit=5\","
        "\"queryStringParameters\":{\"\\u0000\":\"1\",\"limit\":\"5\"},"
        "\"headers\":{\"x-note\":\"a\\u0000\\\"\\\\u0000\"},"
        "\"requestContext\":{\"http\":{\"method\":\"GET\"}},"
        "\"body\":\"{\\\"k\\\\u0000\\\":1}\"}",
    };
    for (size_t i = 0; i < sizeof events / sizeof events[0]; i++) {
        apigw_request r;
        char err[160] = "";
        if (!apigw_request_parse(events[i], strlen(events[i]), &r, err, sizeof err, NULL))
            fail_msg("event %zu refused: %s", i, err);
        assert_string_equal(q(&r, "limit"), "5");
        assert_string_equal(q(&r, "%00"), "1");
        assert_string_equal(h(&r, "x-note"), "a%00\"\\u0000"); /* a value keeps its NUL, spelled */
        if (i == 0) /* a header's name, which HTTP would not carry: spelled too, and ignored */
            assert_string_equal(h(&r, "a%00b"), "x");
        assert_memory_equal(r.req.body, "{\"k\\u0000\":1}", r.req.body_len);
        assert_int_equal(r.req.body_len, strlen("{\"k\\u0000\":1}"));
        apigw_request_free(&r);
    }
}

static void test_malformed_events(void **state)
{
    (void)state;
    static const struct {
        const char *event;
        const char *reason; /* a part of the error message */
    } bad[] = {
        {"", "not valid JSON"},
        {"not json", "not valid JSON"},
        {"{\"httpMethod\":\"GET\",", "not valid JSON"},
        /* jansson's message quotes the text near the error, line breaks and all */
        {"\"v\\\n", "not valid JSON"},
        {"{\"httpMethod\":\"GE\r\n\tT\"}", "not valid JSON"},
        {"[]", "not a JSON object"},
        {"42", "not a JSON object"},
        {"null", "not a JSON object"},
        {"\"GET /tasks\"", "not a JSON object"},
        {"{}", "not an API Gateway proxy event"},
        {"{\"Records\":[]}", "not an API Gateway proxy event"},
        {"{\"requestContext\":{}}", "not an API Gateway proxy event"},
        {"{\"requestContext\":\"x\",\"httpMethod\":\"GET\",\"path\":\"/\"}",
         "requestContext must be an object"},
        {"{\"httpMethod\":null,\"path\":\"/\"}", "httpMethod is missing"},
        {"{\"httpMethod\":7,\"path\":\"/\"}", "httpMethod must be a string"},
        {"{\"httpMethod\":\"\",\"path\":\"/\"}", "httpMethod is empty"},
        {"{\"httpMethod\":\"G\\u0000ET\",\"path\":\"/\"}", "httpMethod contains a NUL byte"},
        {"{\"httpMethod\":\"GET\"}", "path must be a string"},
        {"{\"httpMethod\":\"GET\",\"path\":[\"/\"]}", "path must be a string"},
        {"{\"httpMethod\":\"GET\",\"path\":\"tasks\"}", "starts with '/'"},
        {"{\"httpMethod\":\"GET\",\"path\":\"\"}", "starts with '/'"},
        {"{\"httpMethod\":\"GET\",\"path\":\"/\",\"requestContext\":{\"stage\":1}}",
         "requestContext.stage must be a string"},
        {"{\"httpMethod\":\"GET\",\"path\":\"/\",\"requestContext\":{\"requestId\":{}}}",
         "requestContext.requestId must be a string"},
        {"{\"httpMethod\":\"GET\",\"path\":\"/\",\"headers\":[]}",
         "headers must be an object or null"},
        {"{\"httpMethod\":\"GET\",\"path\":\"/\",\"headers\":{\"Accept\":1}}",
         "headers.Accept must be a string"},
        {"{\"httpMethod\":\"GET\",\"path\":\"/\",\"headers\":{\"Accept\":null}}",
         "headers.Accept must be a string"},
        {"{\"httpMethod\":\"GET\",\"path\":\"/\",\"headers\":{\"A\\r\\n\\tB\\u007f\":1}}",
         "must be a string"}, /* a name quoted in the reason, its line break too */
        {"{\"httpMethod\":\"GET\",\"path\":\"/\",\"multiValueHeaders\":{\"Accept\":\"x\"}}",
         "multiValueHeaders.Accept must be a list of strings"},
        {"{\"httpMethod\":\"GET\",\"path\":\"/\",\"multiValueHeaders\":{\"Accept\":[\"x\",2]}}",
         "multiValueHeaders.Accept must be a list of strings"},
        {"{\"httpMethod\":\"GET\",\"path\":\"/\",\"queryStringParameters\":\"limit=1\"}",
         "queryStringParameters must be an object or null"},
        {"{\"httpMethod\":\"GET\",\"path\":\"/\",\"queryStringParameters\":{\"limit\":1}}",
         "queryStringParameters.limit must be a string"},
        {"{\"httpMethod\":\"GET\",\"path\":\"/\","
         "\"multiValueQueryStringParameters\":{\"limit\":[1]}}",
         "multiValueQueryStringParameters.limit must be a list of strings"},
        {"{\"httpMethod\":\"GET\",\"path\":\"/\",\"body\":{}}", "body must be a string or null"},
        {"{\"httpMethod\":\"GET\",\"path\":\"/\",\"body\":\"\",\"isBase64Encoded\":\"true\"}",
         "isBase64Encoded must be a boolean"},
        {"{\"httpMethod\":\"POST\",\"path\":\"/\",\"body\":\"Zm9v!\",\"isBase64Encoded\":true}",
         "body is not valid base64"},
        {"{\"httpMethod\":\"POST\",\"path\":\"/\",\"body\":\"Z\",\"isBase64Encoded\":true}",
         "body is not valid base64"},
        {"{\"httpMethod\":\"POST\",\"path\":\"/\",\"body\":\"Zg=\",\"isBase64Encoded\":true}",
         "body is not valid base64"},
        {"{\"httpMethod\":\"POST\",\"path\":\"/\",\"body\":\"Z===\",\"isBase64Encoded\":true}",
         "body is not valid base64"},
        {"{\"httpMethod\":\"POST\",\"path\":\"/\",\"body\":\"Zg==Zg==\",\"isBase64Encoded\":true}",
         "body is not valid base64"},
        {"{\"httpMethod\":\"POST\",\"path\":\"/\",\"body\":\"Zm9v\\n\",\"isBase64Encoded\":true}",
         "body is not valid base64"},
        {"{\"httpMethod\":\"POST\",\"path\":\"/\",\"body\":\"Zm-_\",\"isBase64Encoded\":true}",
         "body is not valid base64"},
        {"{\"version\":\"2.0\",\"rawPath\":\"/\"}", "requestContext.http is missing"},
        {"{\"version\":\"2.0\",\"rawPath\":\"/\",\"requestContext\":{\"http\":\"GET\"}}",
         "requestContext.http must be an object"},
        {"{\"version\":\"2.0\",\"rawPath\":\"/\",\"requestContext\":{\"http\":{}}}",
         "requestContext.http.method is missing"},
        {"{\"version\":\"2.0\",\"requestContext\":{\"http\":{\"method\":\"GET\"}}}",
         "rawPath is missing"},
        {"{\"version\":\"2.0\",\"rawPath\":5,\"requestContext\":{\"http\":{\"method\":\"GET\"}}}",
         "rawPath must be a string"},
        {"{\"version\":\"2.0\",\"rawPath\":\"x\",\"requestContext\":{\"http\":{\"method\":\"GET\"}}"
         "}",
         "rawPath must start with '/'"},
        {"{\"version\":\"2.0\",\"rawPath\":\"/\",\"rawQueryString\":1,"
         "\"requestContext\":{\"http\":{\"method\":\"GET\"}}}",
         "rawQueryString must be a string"},
        {"{\"version\":\"2.0\",\"rawPath\":\"/\",\"cookies\":\"a=1\","
         "\"requestContext\":{\"http\":{\"method\":\"GET\"}}}",
         "cookies must be a list of strings"},
        {"{\"version\":\"2.0\",\"rawPath\":\"/\",\"cookies\":[\"a=1\",2],"
         "\"requestContext\":{\"http\":{\"method\":\"GET\"}}}",
         "cookies must be a list of strings"},
        {"{\"version\":\"2.0\",\"rawPath\":\"/\",\"headers\":{\"a\":true},"
         "\"requestContext\":{\"http\":{\"method\":\"GET\"}}}",
         "headers.a must be a string"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        apigw_request r;
        memset(&r, 0x5a, sizeof r);
        char err[256] = "";
        if (apigw_request_parse(bad[i].event, strlen(bad[i].event), &r, err, sizeof err, NULL))
            fail_msg("accepted: %s", bad[i].event);
        if (!strstr(err, bad[i].reason))
            fail_msg("event %s\n  error \"%s\"\n  want  \"%s\"", bad[i].event, err, bad[i].reason);
        for (const char *c = err; *c; c++) /* one line, no control characters */
            if ((unsigned char)*c < 0x20 || *c == 0x7f)
                fail_msg("event %s\n  error \"%s\" holds byte 0x%02x", bad[i].event, err, *c);
        assert_null(r.data); /* emptied: freeing is harmless */
        apigw_request_free(&r);
        /* err may be NULL */
        assert_false(apigw_request_parse(bad[i].event, strlen(bad[i].event), &r, NULL, 0, NULL));
    }
    apigw_request r;
    char err[64];
    assert_false(apigw_request_parse(NULL, 0, &r, err, sizeof err, NULL));
    /* the length is honoured: a valid event cut short is not read past its length */
    assert_false(apigw_request_parse(V1_EVENT, strlen(V1_EVENT) - 1, &r, err, sizeof err, NULL));
    /* a small error buffer is not overrun */
    char tiny[8];
    memset(tiny, 'x', sizeof tiny);
    assert_false(apigw_request_parse("{}", 2, &r, tiny, 4, NULL));
    assert_int_equal(strlen(tiny), 3);
}

/* Every prefix and many single-byte changes of a valid event: no crash, no leak. */
static void test_mangled_events(void **state)
{
    (void)state;
    const char *events[] = {V1_EVENT, V2_EVENT};
    static const char subst[] = {'"', '{', '}', '[', ']', ',', ':', '0', 'n', '\\', '%', '\0', 'x'};
    for (size_t e = 0; e < 2; e++) {
        size_t len = strlen(events[e]);
        char *copy = malloc(len + 1);
        assert_non_null(copy);
        for (size_t cut = 0; cut <= len; cut++) {
            char *prefix = malloc(cut ? cut : 1); /* exact size: ASan sees any overread */
            assert_non_null(prefix);
            memcpy(prefix, events[e], cut);
            apigw_request r;
            bool ok = apigw_request_parse(prefix, cut, &r, NULL, 0, NULL);
            assert_true(ok == (cut == len));
            apigw_request_free(&r);
            free(prefix);
        }
        for (size_t i = 0; i < len; i++) {
            for (size_t s = 0; s < sizeof subst; s++) {
                memcpy(copy, events[e], len);
                copy[i] = subst[s];
                apigw_request r;
                if (apigw_request_parse(copy, len, &r, NULL, 0, NULL)) {
                    assert_non_null(r.req.method);
                    assert_non_null(r.req.path);
                    assert_non_null(r.req.body);
                    (void)h(&r, "accept");
                    (void)q(&r, "limit");
                    size_t out_len;
                    api_response resp = {.status = 200};
                    char *json = apigw_response_json(&r, &resp, &out_len);
                    assert_non_null(json);
                    free(json);
                }
                apigw_request_free(&r);
            }
        }
        free(copy);
    }
}

/* ---- responses ---- */

/* The response JSON of resp to r, parsed into a jansson object (checked to be of the right shape).
 */
static json_t *respond(const apigw_request *r, const api_response *resp)
{
    size_t len = 0;
    char *text = apigw_response_json(r, resp, &len);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    json_error_t jerr;
    json_t *v = json_loadb(text, len, 0, &jerr);
    if (!v)
        fail_msg("response is not JSON: %s\n%s", jerr.text, text);
    free(text);
    assert_true(json_is_object(v));
    assert_true(json_is_integer(json_object_get(v, "statusCode")));
    assert_true(json_is_object(json_object_get(v, "headers")));
    assert_true(json_is_string(json_object_get(v, "body")));
    assert_true(json_is_boolean(json_object_get(v, "isBase64Encoded")));
    assert_null(json_object_get(v, "multiValueHeaders"));
    assert_int_equal(json_object_size(v), 4);
    return v;
}

static const char *header_of(const json_t *v, const char *name)
{
    return json_string_value(json_object_get(json_object_get(v, "headers"), name));
}

static void test_response_201_location(void **state)
{
    (void)state;
    apigw_request r;
    parse_ok(V1_EVENT, &r);
    const char body[] = "{\"id\":\"0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e5f\",\"status\":\"CREATED\"}";
    api_response resp = {.status = 201, .content_type = "application/json"};
    resp.body = strdup(body);
    resp.body_len = strlen(body);
    api_add_header(&resp, "Location", "/tasks/0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e5f");
    json_t *v = respond(&r, &resp);
    assert_int_equal(json_integer_value(json_object_get(v, "statusCode")), 201);
    assert_string_equal(header_of(v, "Content-Type"), "application/json");
    /* below the stage, as the client sees the API */
    assert_string_equal(header_of(v, "Location"),
                        "/prod/tasks/0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e5f");
    /* and what every answer carries */
    assert_string_equal(header_of(v, "X-Content-Type-Options"), "nosniff");
    assert_string_equal(header_of(v, "Content-Security-Policy"),
                        "default-src 'none'; frame-ancestors 'none'");
    assert_int_equal(json_object_size(json_object_get(v, "headers")), 4);
    assert_string_equal(json_string_value(json_object_get(v, "body")), body);
    assert_false(json_is_true(json_object_get(v, "isBase64Encoded")));
    json_decref(v);
    api_response_free(&resp);
    apigw_request_free(&r);
}

static void test_response_204_no_body(void **state)
{
    (void)state;
    apigw_request r;
    parse_ok(V2_EVENT, &r);
    api_response resp = {.status = 204};
    json_t *v = respond(&r, &resp);
    assert_int_equal(json_integer_value(json_object_get(v, "statusCode")), 204);
    assert_int_equal(json_object_size(json_object_get(v, "headers")), API_DEFAULT_HEADERS);
    assert_string_equal(json_string_value(json_object_get(v, "body")), "");
    assert_false(json_is_true(json_object_get(v, "isBase64Encoded")));
    json_decref(v);

    /* even a 204 that carries a body and a type loses both */
    resp.content_type = "application/json";
    resp.body = strdup("{}");
    resp.body_len = 2;
    v = respond(&r, &resp);
    assert_null(header_of(v, "Content-Type"));
    assert_string_equal(json_string_value(json_object_get(v, "body")), "");
    json_decref(v);
    api_response_free(&resp);
    apigw_request_free(&r);
}

static void test_response_422_json(void **state)
{
    (void)state;
    api_response resp = {0};
    api_error(&resp, 422, "task_type: must be \"TASK1\"\n");
    /* NULL request: answering an event that did not parse works too */
    json_t *v = respond(NULL, &resp);
    assert_int_equal(json_integer_value(json_object_get(v, "statusCode")), 422);
    assert_string_equal(header_of(v, "Content-Type"), resp.content_type);
    json_t *body = json_loads(json_string_value(json_object_get(v, "body")), 0, NULL);
    assert_non_null(body);
    assert_string_equal(json_string_value(json_object_get(body, "detail")),
                        "task_type: must be \"TASK1\"\n");
    json_decref(body);
    json_decref(v);
    api_response_free(&resp);
}

/* An error whose body could not be made (api_error() out of memory) still answers JSON. */
static void test_response_error_without_body(void **state)
{
    (void)state;
    api_response resp = {.status = 500, .content_type = "application/json"};
    json_t *v = respond(NULL, &resp);
    assert_int_equal(json_integer_value(json_object_get(v, "statusCode")), 500);
    assert_string_equal(json_string_value(json_object_get(v, "body")),
                        "{\"detail\":\"Out of memory\"}");
    json_decref(v);
    resp.status = 204; /* a success without a body stays without one */
    v = respond(NULL, &resp);
    assert_string_equal(json_string_value(json_object_get(v, "body")), "");
    json_decref(v);
}

static void test_response_head(void **state)
{
    (void)state;
    apigw_request r;
    parse_ok("{\"httpMethod\":\"HEAD\",\"path\":\"/tasks\"}", &r);
    api_response resp = {.status = 200, .content_type = "application/json"};
    resp.body = strdup("{\"tasks\":[]}");
    resp.body_len = strlen(resp.body);
    json_t *v = respond(&r, &resp);
    assert_int_equal(json_integer_value(json_object_get(v, "statusCode")), 200);
    assert_string_equal(header_of(v, "Content-Type"), "application/json");
    assert_string_equal(json_string_value(json_object_get(v, "body")), "");
    assert_false(json_is_true(json_object_get(v, "isBase64Encoded")));
    json_decref(v);
    api_response_free(&resp);
    apigw_request_free(&r);
}

/* Decode the base64 body of a response and compare it with want. */
static void assert_binary_body(const json_t *v, const char *want, size_t want_len)
{
    assert_true(json_is_true(json_object_get(v, "isBase64Encoded")));
    char event[1024];
    snprintf(event, sizeof event,
             "{\"httpMethod\":\"POST\",\"path\":\"/\",\"body\":\"%s\",\"isBase64Encoded\":true}",
             json_string_value(json_object_get(v, "body")));
    apigw_request back;
    parse_ok(event, &back); /* the round trip through the decoder */
    assert_int_equal(back.req.body_len, want_len);
    assert_memory_equal(back.req.body, want, want_len);
    apigw_request_free(&back);
}

static void test_response_binary_body(void **state)
{
    (void)state;
    static const struct {
        const char *bytes;
        size_t len;
        bool text;
    } cases[] = {
        {"\x89PNG\r\n\x1a\n\0\xff", 10, false},
        {"a\0b", 3, false},             /* NUL */
        {"\xc0\x80", 2, false},         /* overlong NUL */
        {"\xe0\x80\xaf", 3, false},     /* overlong '/' */
        {"\xed\xa0\x80", 3, false},     /* surrogate */
        {"\xf4\x90\x80\x80", 4, false}, /* past U+10FFFF */
        {"\xf5\x80\x80\x80", 4, false},
        {"caf\xc3", 4, false}, /* cut short */
        {"\x80", 1, false},
        {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14, true},
        {"# TYPE taskd_tasks gauge\ntaskd_tasks 3\n", 39, true},
        {"<p>\t\"quoted\"\\</p>", 17, true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        api_response resp = {.status = 200, .content_type = "application/octet-stream"};
        resp.body = malloc(cases[i].len);
        memcpy(resp.body, cases[i].bytes, cases[i].len);
        resp.body_len = cases[i].len;
        json_t *v = respond(NULL, &resp);
        if (cases[i].text) {
            assert_false(json_is_true(json_object_get(v, "isBase64Encoded")));
            assert_int_equal(json_string_length(json_object_get(v, "body")), cases[i].len);
            assert_memory_equal(json_string_value(json_object_get(v, "body")), cases[i].bytes,
                                cases[i].len);
        } else {
            assert_binary_body(v, cases[i].bytes, cases[i].len);
        }
        json_decref(v);
        api_response_free(&resp);
    }

    /* a body long enough to need several base64 chunks, every byte value */
    api_response resp = {.status = 200, .content_type = "application/octet-stream"};
    resp.body_len = 3000;
    resp.body = malloc(resp.body_len);
    for (size_t i = 0; i < resp.body_len; i++)
        resp.body[i] = (char)(i * 7 + 1);
    json_t *v = respond(NULL, &resp);
    assert_true(json_is_true(json_object_get(v, "isBase64Encoded")));
    const char *b64 = json_string_value(json_object_get(v, "body"));
    assert_int_equal(strlen(b64), 4000);
    char *event = malloc(4200);
    snprintf(event, 4200,
             "{\"httpMethod\":\"POST\",\"path\":\"/\",\"body\":\"%s\",\"isBase64Encoded\":true}",
             b64);
    apigw_request back;
    parse_ok(event, &back);
    assert_int_equal(back.req.body_len, 3000);
    assert_memory_equal(back.req.body, resp.body, 3000);
    apigw_request_free(&back);
    free(event);
    json_decref(v);
    api_response_free(&resp);
}

static void test_response_headers_unique(void **state)
{
    (void)state;
    api_response resp = {.status = 405, .content_type = "application/json"};
    api_add_header(&resp, "Allow", "GET, HEAD");
    api_add_header(&resp, "allow", "POST");              /* a repeat is dropped */
    api_add_header(&resp, "content-type", "text/plain"); /* so is a second type */
    api_add_header(&resp, "Retry-After", "1");
    char *text = apigw_response_json(NULL, &resp, NULL); /* len may be NULL */
    assert_non_null(text);
    assert_non_null(strstr(text, "\"Allow\":\"GET, HEAD\""));
    assert_null(strstr(text, "POST"));
    free(text);
    json_t *v = respond(NULL, &resp);
    assert_int_equal(json_object_size(json_object_get(v, "headers")), 3 + API_DEFAULT_HEADERS);
    assert_string_equal(header_of(v, "Content-Type"), "application/json");
    assert_string_equal(header_of(v, "Retry-After"), "1");
    assert_null(header_of(v, "allow"));
    json_decref(v);
    api_response_free(&resp);
}

/* An answer with a policy of its own (the dashboard's) keeps it, and still gets nosniff. */
static void test_response_own_policy_kept(void **state)
{
    (void)state;
    api_response resp = {.status = 200, .content_type = "text/html"};
    api_add_header(&resp, "content-security-policy", "default-src 'self'");
    json_t *v = respond(NULL, &resp);
    json_t *headers = json_object_get(v, "headers");
    assert_int_equal(json_object_size(headers), 3);
    assert_string_equal(header_of(v, "content-security-policy"), "default-src 'self'");
    assert_null(header_of(v, "Content-Security-Policy"));
    assert_string_equal(header_of(v, "X-Content-Type-Options"), "nosniff");
    json_decref(v);
}

/*
 * The Location the response to event gets when the API answers status with
 * location (and an Allow header, which must pass unchanged); into out.
 */
static const char *location_for(const char *event, int status, const char *location, char *out,
                                size_t len)
{
    apigw_request r;
    parse_ok(event, &r);
    api_response resp = {.status = status};
    api_add_header(&resp, "Location", location);
    api_add_header(&resp, "Allow", "/tasks");
    json_t *v = respond(&r, &resp);
    assert_string_equal(header_of(v, "Allow"), "/tasks");
    snprintf(out, len, "%s", header_of(v, "Location"));
    json_decref(v);
    api_response_free(&resp);
    apigw_request_free(&r);
    return out;
}

/* A 1.0 event for method path whose requestContext has path full (NULL: none) and stage dev. */
static const char *v1_event(const char *method, const char *path, const char *full, char *out,
                            size_t len)
{
    json_t *rc = json_pack("{s:s}", "stage", "dev");
    if (full)
        json_object_set_new(rc, "path", json_string(full));
    json_t *ev =
        json_pack("{s:s, s:s, s:o}", "httpMethod", method, "path", path, "requestContext", rc);
    char *text = json_dumps(ev, JSON_COMPACT);
    snprintf(out, len, "%s", text);
    free(text);
    json_decref(ev);
    return out;
}

static void test_location_v1_prefix(void **state)
{
    (void)state;
    static const struct {
        const char *path, *full, *want;
    } cases[] = {
        /* the execute-api host: the stage is in requestContext.path only */
        {"/tasks", "/dev/tasks", "/dev"},
        {"/tasks/", "/dev/tasks/", "/dev"},
        {"/tasks/abc/", "/dev/tasks/abc/", "/dev"},
        {"/", "/dev/", "/dev"},
        {"/", "/dev", "/dev"},
        /* a custom domain: its base path mapping, of one or more segments, or none */
        {"/tasks", "/api/tasks", "/api"},
        {"/tasks", "/orders/v1/tasks", "/orders/v1"},
        {"/tasks", "/tasks", ""},
        {"/", "/", ""},
        /* mapped with the stage's name: the path carries it, and loses it */
        {"/dev/tasks", "/dev/tasks", "/dev"},
        /* no requestContext.path, or one that does not end with the path */
        {"/tasks", NULL, ""},
        {"/tasks", "/dev/other", ""},
        {"/tasks/a b", "/dev/tasks/a%20b", ""},
        /* what could break the header or lead elsewhere is never used */
        {"/tasks", "/a\r\nSet-Cookie: x=1/tasks", ""},
        {"/tasks", "//evil.example/tasks", ""},
        {"/tasks", "/dev//tasks", ""},
        {"/tasks", "/../tasks", ""},
        {"/tasks", "/./tasks", ""},
        {"/tasks", "/a b/tasks", ""},
        {"/tasks", "/%2e%2e/tasks", ""},
        {"/tasks", "/a\\b/tasks", ""},
        {"/tasks", "/a\"b/tasks", ""},
        {"/tasks", "/caf\xc3\xa9/tasks", ""},
        {"/tasks", "dev/tasks", ""},
        {"/tasks", "/a?b/tasks", ""},
        {"/tasks", "/a#b/tasks", ""},
        /* what a base path may hold */
        {"/tasks", "/v1.2_beta-3~x/tasks", "/v1.2_beta-3~x"},
        {"/tasks", "/..a/tasks", "/..a"},
    };
    char event[512], got[512], want[512];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        v1_event("POST", cases[i].path, cases[i].full, event, sizeof event);
        location_for(event, 201, "/tasks/0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e5f", got, sizeof got);
        snprintf(want, sizeof want, "%s/tasks/0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e5f", cases[i].want);
        if (strcmp(got, want) != 0)
            fail_msg("path %s, requestContext.path %s: Location %s, want %s", cases[i].path,
                     cases[i].full ? cases[i].full : "(none)", got, want);
    }
}

/* What the API answers through a REST API stage: POST's 201 and a trailing slash's 307. */
static void test_location_v1_stage(void **state)
{
    (void)state;
    char event[512], got[512];
    v1_event("POST", "/tasks", "/dev/tasks", event, sizeof event);
    assert_string_equal(
        location_for(event, 201, "/tasks/0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e5f", got, sizeof got),
        "/dev/tasks/0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e5f");
    v1_event("GET", "/tasks/", "/dev/tasks/", event, sizeof event);
    assert_string_equal(location_for(event, 307, "/tasks?limit=1", got, sizeof got),
                        "/dev/tasks?limit=1");
    /* the sample event (stage prod) */
    assert_string_equal(location_for(V1_EVENT, 307, "/tasks/abc", got, sizeof got),
                        "/prod/tasks/abc");
    /* only a path: an absolute URL or another header stays as it is */
    assert_string_equal(location_for(event, 307, "https://example.com/x", got, sizeof got),
                        "https://example.com/x");
    assert_string_equal(location_for(event, 307, "tasks", got, sizeof got), "tasks");
    /* whatever the case of the header's name */
    apigw_request r;
    parse_ok(event, &r);
    api_response resp = {.status = 307};
    api_add_header(&resp, "location", "/tasks");
    json_t *v = respond(&r, &resp);
    assert_string_equal(header_of(v, "location"), "/dev/tasks");
    json_decref(v);
    api_response_free(&resp);
    apigw_request_free(&r);
    /* answering an event that did not parse: no prefix */
    api_response bare = {.status = 307};
    api_add_header(&bare, "Location", "/tasks");
    v = respond(NULL, &bare);
    assert_string_equal(header_of(v, "Location"), "/tasks");
    json_decref(v);
    api_response_free(&bare);
}

/* A 2.0 event: the stage taken off rawPath, when it is not $default. */
static void test_location_v2_stage(void **state)
{
    (void)state;
    static const struct {
        const char *raw, *stage, *location, *want;
    } cases[] = {
        {"/dev/tasks", "dev", "/tasks/abc", "/dev/tasks/abc"},
        {"/dev/tasks/", "dev", "/tasks?limit=1", "/dev/tasks?limit=1"},
        {"/dev", "dev", "/tasks", "/dev/tasks"},
        {"/tasks/", "$default", "/tasks?limit=1", "/tasks?limit=1"},
        {"/$default/tasks/", "$default", "/tasks", "/tasks"},
        {"/tasks/", "dev", "/tasks", "/tasks"}, /* the stage is not in rawPath */
        {"/dev%2Fx/tasks/", "dev", "/tasks", "/tasks"},
    };
    char event[512], got[512];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(event, sizeof event,
                 "{\"version\":\"2.0\",\"rawPath\":\"%s\",\"rawQueryString\":\"limit=1\","
                 "\"requestContext\":{\"http\":{\"method\":\"GET\"},\"stage\":\"%s\"}}",
                 cases[i].raw, cases[i].stage);
        location_for(event, 307, cases[i].location, got, sizeof got);
        if (strcmp(got, cases[i].want) != 0)
            fail_msg("rawPath %s on stage %s: Location %s, want %s", cases[i].raw, cases[i].stage,
                     got, cases[i].want);
    }
    /* a stage whose name could not be a path segment is not used */
    apigw_request r;
    parse_ok("{\"version\":\"2.0\",\"rawPath\":\"/a b/tasks\","
             "\"requestContext\":{\"http\":{\"method\":\"GET\"},\"stage\":\"a b\"}}",
             &r);
    assert_string_equal(r.req.path, "/tasks");
    api_response resp = {.status = 307};
    api_add_header(&resp, "Location", "/tasks");
    json_t *v = respond(&r, &resp);
    assert_string_equal(header_of(v, "Location"), "/tasks");
    json_decref(v);
    api_response_free(&resp);
    apigw_request_free(&r);
}

/* ---- end to end ---- */

typedef struct seen {
    int calls;
} seen;

/* A stand-in for the API: checks the request the translator built, answers 201. */
static void fake_api(seen *s, const api_request *req, api_response *resp)
{
    s->calls++;
    assert_string_equal(req->method, "POST");
    assert_string_equal(req->path, "/tasks");
    assert_non_null(req->query);
    assert_non_null(req->header);
    assert_string_equal(req->header(req->ctx, "idempotency-key"), "key-1");
    assert_string_equal(req->header(req->ctx, "Content-Type"), "application/json");
    assert_string_equal(req->header(req->ctx, "TRACEPARENT"),
                        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    assert_string_equal(req->query(req->ctx, "dry_run"), "yes please");
    assert_null(req->query(req->ctx, "limit"));
    assert_int_equal(req->body_len, strlen("{\"task_type\":\"TASK1\"}"));
    assert_memory_equal(req->body, "{\"task_type\":\"TASK1\"}", req->body_len + 1);
    resp->status = 201;
    resp->content_type = "application/json";
    resp->body = strdup("{\"id\":\"0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e5f\"}");
    resp->body_len = strlen(resp->body);
    api_add_header(resp, "Location", "/tasks/0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e5f");
}

static void test_end_to_end(void **state)
{
    (void)state;
    /* 2.0 on stage "prod": base64 body, encoded query, mixed-case header names */
    const char event[] =
        "{\"version\":\"2.0\",\"rawPath\":\"/prod/"
        "tasks\",\"rawQueryString\":\"dry_run=yes+please\","
        "\"headers\":{\"idempotency-key\":\"key-1\",\"content-type\":\"application/json\","
        "\"traceparent\":\"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\"},"
        "\"requestContext\":{\"http\":{\"method\":\"POST\",\"path\":\"/prod/tasks\"},"
        "\"requestId\":\"req-1\",\"stage\":\"prod\"},"
        "\"body\":\"eyJ0YXNrX3R5cGUiOiJUQVNLMSJ9\",\"isBase64Encoded\":true}";
    apigw_request parsed;
    parse_ok(event, &parsed);
    apigw_request r = parsed; /* the request may be moved: lookups use the owned data */
    memset(&parsed, 0, sizeof parsed);
    assert_string_equal(r.request_id, "req-1");

    seen s = {0};
    api_response resp = {0};
    fake_api(&s, &r.req, &resp);
    assert_int_equal(s.calls, 1);
    json_t *v = respond(&r, &resp);
    assert_int_equal(json_integer_value(json_object_get(v, "statusCode")), 201);
    assert_string_equal(header_of(v, "Location"),
                        "/prod/tasks/0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e5f");
    assert_string_equal(json_string_value(json_object_get(v, "body")),
                        "{\"id\":\"0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e5f\"}");
    json_decref(v);
    api_response_free(&resp);
    apigw_request_free(&r);
}

/* Many headers and parameters: the tables grow, the first header and the last parameter of each
 * name still win. */
static void test_many_values(void **state)
{
    (void)state;
    json_t *ev = json_pack("{s:s, s:s}", "httpMethod", "GET", "path", "/tasks");
    json_t *hdrs = json_object();
    json_t *mq = json_object();
    char name[32], value[32];
    for (int i = 0; i < 2000; i++) {
        snprintf(name, sizeof name, "X-H%d", i);
        snprintf(value, sizeof value, "v%d", i);
        json_object_set_new(hdrs, name, json_string(value));
        json_object_set_new(mq, name, json_pack("[s,s]", value, "later"));
    }
    json_object_set_new(ev, "headers", hdrs);
    json_object_set_new(ev, "multiValueQueryStringParameters", mq);
    char *text = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    apigw_request r;
    parse_ok(text, &r);
    free(text);
    assert_string_equal(h(&r, "x-h0"), "v0");
    assert_string_equal(h(&r, "X-H1999"), "v1999");
    assert_string_equal(q(&r, "X-H1234"), "later");
    assert_null(q(&r, "x-h1234")); /* a parameter's name as written */
    assert_null(h(&r, "X-H2000"));
    apigw_request_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v1_sample_event),
        cmocka_unit_test(test_v1_stage_prefix),
        cmocka_unit_test(test_v1_multi_value_query),
        cmocka_unit_test(test_v1_multi_value_headers),
        cmocka_unit_test(test_v1_base64_body),
        cmocka_unit_test(test_v2_sample_event),
        cmocka_unit_test(test_v2_stage_stripping),
        cmocka_unit_test(test_v2_percent_decoding),
        cmocka_unit_test(test_v2_cookies_and_query_fallback),
        cmocka_unit_test(test_v1_nul_kept_encoded),
        cmocka_unit_test(test_nul_in_a_name_kept_encoded),
        cmocka_unit_test(test_malformed_events),
        cmocka_unit_test(test_mangled_events),
        cmocka_unit_test(test_response_201_location),
        cmocka_unit_test(test_response_204_no_body),
        cmocka_unit_test(test_response_422_json),
        cmocka_unit_test(test_response_error_without_body),
        cmocka_unit_test(test_response_head),
        cmocka_unit_test(test_response_binary_body),
        cmocka_unit_test(test_response_headers_unique),
        cmocka_unit_test(test_location_v1_prefix),
        cmocka_unit_test(test_location_v1_stage),
        cmocka_unit_test(test_location_v2_stage),
        cmocka_unit_test(test_end_to_end),
        cmocka_unit_test(test_response_own_policy_kept),
        cmocka_unit_test(test_many_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
