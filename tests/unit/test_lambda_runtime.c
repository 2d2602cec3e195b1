/*
 * Unit tests for aws/lambda_runtime against a Runtime API stand-in run inside
 * the test (support/http_stub): an HTTP/1.1 server on 127.0.0.1 that
 * answers each request from a script (status, extra headers, body, or no
 * answer at all), records every request (method, path, header block, body)
 * and counts the connections it accepted. Each connection has its own
 * thread, so a client that opened a second connection would be served, and
 * counted, rather than hang.
 * Covered: configuration from AWS_LAMBDA_RUNTIME_API; /next parsing (header
 * names in any case, deadline, ARN, trace id, body), the process environment
 * left as it was (no _X_AMZN_TRACE_ID set or unset); the /response, /error
 * and /init/error posts (paths, exact bodies, JSON escaping, the error type
 * header, no header injection); a missing, unsafe or oversized request id
 * and a function ARN too long (left out); a missing or bad deadline read as 0; one
 * connection for next + respond + next; HTTP 500 on /next and 413 on
 * /response; a 1 MB event both ways; the post timeout; and an unreachable
 * API. And the deadlines an invocation's deadline leaves its AWS calls and
 * the flush of its spans.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "aws/lambda_runtime.h"
#include "support/http_stub.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define REQUEST_ID "8476a536-e9f4-11e8-9739-2dfe598c3fcd"
#define ID_HEADER  "Lambda-Runtime-Aws-Request-Id: " REQUEST_ID "\r\n"
#define TRACE      "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1"
#define ARN        "arn:aws:lambda:us-east-2:123456789012:function:fn"
#define API_PATH   "/2018-06-01/runtime/"

extern char **environ;

/* ---- the Runtime API stand-in (support/http_stub) ---- */

/* Start a server answering from script (500 past its end) and point the runtime at it. */
static http_stub *server_start(const http_stub_reply *script, size_t script_len)
{
    static const http_stub_reply exhausted = {.status = 500, .body = "script exhausted"};
    http_stub_options o = {.script = script, .script_len = script_len, .after = &exhausted};
    http_stub *s = http_stub_start(&o);
    char api[64];
    snprintf(api, sizeof api, "127.0.0.1:%d", http_stub_port(s));
    setenv("AWS_LAMBDA_RUNTIME_API", api, 1);
    return s;
}

static void server_stop(http_stub *s)
{
    http_stub_stop(s);
    unsetenv("AWS_LAMBDA_RUNTIME_API");
}

static lambda_runtime *runtime_for_test(void)
{
    char err[256] = "";
    lambda_runtime *rt = lambda_runtime_new(err, sizeof err);
    if (!rt)
        fail_msg("lambda_runtime_new: %s", err);
    return rt;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A /next answer carrying the standard request id, extra header lines and event text. */
#define NEXT_OK(extra, event)                                                                      \
    {                                                                                              \
        .status = 200, .headers = ID_HEADER extra, .body = event                                   \
    }

/* ---- configuration ---- */

static void test_new_reads_the_environment(void **state)
{
    (void)state;
    char err[256] = "";
    unsetenv("AWS_LAMBDA_RUNTIME_API");
    assert_null(lambda_runtime_new(err, sizeof err));
    assert_non_null(strstr(err, "AWS_LAMBDA_RUNTIME_API"));

    static const char *const bad[] = {
        "",
        "127.0.0.1",
        "127.0.0.1:",
        "127.0.0.1:abc",
        ":9001",
        "127.0.0.1:0",
        "127.0.0.1:70000",
        "127.0.0.1:123456",
        "h/x:9001",
        "h:9001/x",
        "http://127.0.0.1:9001",
        "a b:9001",
        "[::1:9001",
        "[]:9001",
        "host:90 01",
        "127.0.0.1:+9001",
        "127.0.0.1:-1",
        "127.0.0.1:0x2329",
        "127.0.0.1: 9001",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv("AWS_LAMBDA_RUNTIME_API", bad[i], 1);
        err[0] = '\0';
        lambda_runtime *rt = lambda_runtime_new(err, sizeof err);
        if (rt)
            fail_msg("accepted \"%s\"", bad[i]);
        assert_true(err[0] != '\0');
    }
    /* Valid ones; nothing listens there, and creation must not try to connect. */
    static const char *const good[] = {"127.0.0.1:9001", "localhost:1", "[::1]:65535",
                                       "127.0.0.1:0000009001"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        setenv("AWS_LAMBDA_RUNTIME_API", good[i], 1);
        lambda_runtime *rt = lambda_runtime_new(NULL, 0);
        if (!rt)
            fail_msg("refused \"%s\"", good[i]);
        assert_int_equal(lambda_runtime_last_status(rt), 0);
        lambda_runtime_free(rt);
    }
    unsetenv("AWS_LAMBDA_RUNTIME_API");
    lambda_runtime_free(NULL);
    lambda_invocation_clear(NULL);
}

/* ---- /next ---- */

static void test_next_parses_the_invocation(void **state)
{
    (void)state;
    static const http_stub_reply script[] = {
        {.status = 200,
         .headers = "lambda-runtime-aws-request-id: " REQUEST_ID "\r\n"
                    "LAMBDA-RUNTIME-DEADLINE-MS:   1542409706888  \r\n"
                    "Lambda-Runtime-Invoked-Function-Arn: " ARN "\r\n"
                    "Lambda-Runtime-Trace-Id: " TRACE "\r\n"
                    "Content-Type: application/json\r\n",
         .body = "{\"hello\":\"world\"}"},
    };
    http_stub *s = server_start(script, 1);
    lambda_runtime *rt = runtime_for_test();

    lambda_invocation inv;
    char err[256] = "";
    assert_true(lambda_runtime_next(rt, &inv, err, sizeof err));
    assert_string_equal(inv.request_id, REQUEST_ID);
    assert_int_equal(inv.deadline_ms, 1542409706888LL);
    assert_string_equal(inv.function_arn, ARN);
    assert_string_equal(inv.trace_id, TRACE);
    assert_int_equal(inv.event_len, strlen("{\"hello\":\"world\"}"));
    assert_string_equal(inv.event, "{\"hello\":\"world\"}");
    assert_int_equal(lambda_runtime_last_status(rt), 200);

    const http_stub_request *q = http_stub_request_at(s, 0);
    assert_string_equal(q->method, "GET");
    assert_string_equal(q->path, API_PATH "invocation/next");
    char v[128];
    assert_non_null(http_stub_header(q, "User-Agent", v, sizeof v));
    assert_memory_equal(v, "taskd/", 6);

    lambda_invocation_clear(&inv);
    assert_null(inv.event);
    lambda_runtime_free(rt);
    server_stop(s);
}

static void test_next_empty_event_is_empty_string(void **state)
{
    (void)state;
    static const http_stub_reply script[] = {NEXT_OK("", NULL)};
    http_stub *s = server_start(script, 1);
    lambda_runtime *rt = runtime_for_test();
    lambda_invocation inv;
    assert_true(lambda_runtime_next(rt, &inv, NULL, 0));
    assert_non_null(inv.event);
    assert_string_equal(inv.event, "");
    assert_int_equal(inv.event_len, 0);
    assert_string_equal(inv.function_arn, "");
    assert_string_equal(inv.trace_id, "");
    lambda_invocation_clear(&inv);
    lambda_runtime_free(rt);
    server_stop(s);
}

/* The environment as a /next found it: the array, and the entry of _X_AMZN_TRACE_ID (if any). */
typedef struct env_seen {
    char **array;
    const char *trace;
} env_seen;

static env_seen env_now(void)
{
    return (env_seen){.array = environ, .trace = getenv("_X_AMZN_TRACE_ID")};
}

/* Whether the environment is the one seen before: nothing set, unset or moved. */
static bool env_untouched(env_seen before, const char *trace)
{
    env_seen now = env_now();
    return now.array == before.array && now.trace == before.trace &&
           (trace ? now.trace && strcmp(now.trace, trace) == 0 : !now.trace);
}

/* The trace header stays in the invocation: /next never touches the process environment, which
 * other threads read meanwhile (a setenv or unsetenv may free the array a getenv walks).
 * Whether the variable was there or not, with a header, without one, and on a failure. */
static void test_next_leaves_the_environment_alone(void **state)
{
    (void)state;
    static const http_stub_reply script[] = {
        NEXT_OK("Lambda-Runtime-Trace-Id: " TRACE "\r\n", "{}"),
        NEXT_OK("", "{}"),
        {.status = 200, .headers = "Lambda-Runtime-Trace-Id: " TRACE "\r\n", .body = "{}"},
        NEXT_OK("Lambda-Runtime-Trace-Id: " TRACE "\r\n", "{}"),
    };
    http_stub *s = server_start(script, 4);
    lambda_runtime *rt = runtime_for_test();
    lambda_invocation inv;

    setenv("_X_AMZN_TRACE_ID", "Root=the-process-own", 1);
    env_seen before = env_now();
    assert_true(lambda_runtime_next(rt, &inv, NULL, 0));
    assert_string_equal(inv.trace_id, TRACE);
    assert_true(env_untouched(before, "Root=the-process-own"));
    lambda_invocation_clear(&inv);

    assert_true(lambda_runtime_next(rt, &inv, NULL, 0)); /* no header */
    assert_string_equal(inv.trace_id, "");
    assert_true(env_untouched(before, "Root=the-process-own"));
    lambda_invocation_clear(&inv);

    assert_false(lambda_runtime_next(rt, &inv, NULL, 0)); /* no request id */
    assert_true(env_untouched(before, "Root=the-process-own"));
    lambda_invocation_clear(&inv);

    unsetenv("_X_AMZN_TRACE_ID");
    before = env_now();
    assert_true(lambda_runtime_next(rt, &inv, NULL, 0));
    assert_string_equal(inv.trace_id, TRACE);
    assert_true(env_untouched(before, NULL));
    lambda_invocation_clear(&inv);

    lambda_runtime_free(rt);
    server_stop(s);
}

/* A trace header too long to keep whole (a long Lineage) keeps what a trace needs, and the
 * invocation is served: it must not end the environment. */
static void test_long_trace_header_keeps_root_parent_sampled(void **state)
{
    (void)state;
    char header[700];
    snprintf(header, sizeof header,
             ID_HEADER "Lambda-Runtime-Trace-Id: Lineage=%0300d:0; " TRACE ";Self=x\r\n", 7);
    const http_stub_reply script[] = {{.status = 200, .headers = header, .body = "{}"}};
    http_stub *s = server_start(script, 1);
    lambda_runtime *rt = runtime_for_test();
    lambda_invocation inv;
    char err[256] = "";
    assert_true(lambda_runtime_next(rt, &inv, err, sizeof err));
    assert_string_equal(inv.trace_id, TRACE);
    lambda_invocation_clear(&inv);
    lambda_runtime_free(rt);
    server_stop(s);
}

static void test_missing_request_id(void **state)
{
    (void)state;
    static const http_stub_reply script[] = {
        {.status = 200, .headers = "Lambda-Runtime-Trace-Id: " TRACE "\r\n", .body = "{}"},
    };
    http_stub *s = server_start(script, 1);
    lambda_runtime *rt = runtime_for_test();
    lambda_invocation inv;
    char err[256] = "";
    assert_false(lambda_runtime_next(rt, &inv, err, sizeof err));
    assert_non_null(strstr(err, "Lambda-Runtime-Aws-Request-Id"));
    assert_null(inv.event);
    lambda_invocation_clear(&inv);
    lambda_runtime_free(rt);
    server_stop(s);
}

static void test_unsafe_request_id_is_rejected(void **state)
{
    (void)state;
    char long_id[300];
    memset(long_id, 'a', 200);
    long_id[200] = '\0';
    char long_header[400];
    snprintf(long_header, sizeof long_header, "Lambda-Runtime-Aws-Request-Id: %s\r\n", long_id);
    const http_stub_reply script[] = {
        {.status = 200, .headers = "Lambda-Runtime-Aws-Request-Id: abc/../../init/error\r\n"},
        {.status = 200, .headers = "Lambda-Runtime-Aws-Request-Id: ..\r\n"},
        {.status = 200, .headers = "Lambda-Runtime-Aws-Request-Id: a%2F..\r\n"},
        {.status = 200, .headers = "Lambda-Runtime-Aws-Request-Id: \r\n"},
        {.status = 200, .headers = long_header},
    };
    http_stub *s = server_start(script, 5);
    lambda_runtime *rt = runtime_for_test();
    lambda_invocation inv;
    char err[256];
    for (size_t i = 0; i < 5; i++) {
        err[0] = '\0';
        assert_false(lambda_runtime_next(rt, &inv, err, sizeof err));
        assert_non_null(strstr(err, "Lambda-Runtime-Aws-Request-Id"));
        assert_null(inv.event);
    }
    /* the last, too long: the log that ends bootstrap says by how much */
    assert_non_null(strstr(err, "of 200 bytes, longer than the 127 this runtime takes"));

    /* A forged invocation never reaches the wire. */
    lambda_invocation forged = {.request_id = "x/../../init/error"};
    err[0] = '\0';
    assert_false(lambda_runtime_respond(rt, &forged, "{}", 2, err, sizeof err));
    assert_non_null(strstr(err, "request id"));
    assert_false(lambda_runtime_fail(rt, &forged, "T", "m", NULL, 0));
    assert_false(lambda_runtime_respond(rt, NULL, "{}", 2, NULL, 0));
    assert_int_equal(http_stub_count(s), 5);

    lambda_runtime_free(rt);
    server_stop(s);
}

/* A function ARN too long for its field is left out: nothing needs it, and the invocation is
 * served. */
static void test_arn_too_long_is_left_out(void **state)
{
    (void)state;
    char arn[600];
    snprintf(arn, sizeof arn,
             "Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:%0300d\r\n" ID_HEADER, 0);
    const http_stub_reply script[] = {{.status = 200, .headers = arn, .body = "{}"}};
    http_stub *s = server_start(script, 1);
    lambda_runtime *rt = runtime_for_test();
    lambda_invocation inv;
    char err[256] = "";
    if (!lambda_runtime_next(rt, &inv, err, sizeof err))
        fail_msg("next: %s", err);
    assert_string_equal(inv.request_id, REQUEST_ID);
    assert_string_equal(inv.function_arn, "");
    assert_string_equal(inv.event, "{}");
    lambda_invocation_clear(&inv);
    lambda_runtime_free(rt);
    server_stop(s);
}

static void test_deadline_missing_or_bad_is_zero(void **state)
{
    (void)state;
    static const http_stub_reply script[] = {
        NEXT_OK("", "{}"),
        NEXT_OK("Lambda-Runtime-Deadline-Ms: 12ab\r\n", "{}"),
        NEXT_OK("Lambda-Runtime-Deadline-Ms: 99999999999999999999999\r\n", "{}"),
        NEXT_OK("Lambda-Runtime-Deadline-Ms: -5\r\n", "{}"),
        NEXT_OK("Lambda-Runtime-Deadline-Ms:\r\n", "{}"),
        NEXT_OK("Lambda-Runtime-Deadline-Ms: 1700000000123\r\n", "{}"),
    };
    http_stub *s = server_start(script, 6);
    lambda_runtime *rt = runtime_for_test();
    for (size_t i = 0; i < 6; i++) {
        lambda_invocation inv;
        char err[256] = "";
        if (!lambda_runtime_next(rt, &inv, err, sizeof err))
            fail_msg("next %zu: %s", i, err);
        assert_int_equal(inv.deadline_ms, i == 5 ? 1700000000123LL : 0);
        lambda_invocation_clear(&inv);
    }
    lambda_runtime_free(rt);
    server_stop(s);
}

static void test_next_http_500(void **state)
{
    (void)state;
    static const http_stub_reply script[] = {
        {.status = 500, .body = "{\"errorMessage\":\"boom\",\"errorType\":\"Runtime.Internal\"}"},
    };
    http_stub *s = server_start(script, 1);
    lambda_runtime *rt = runtime_for_test();
    lambda_invocation inv;
    char err[256] = "";
    assert_false(lambda_runtime_next(rt, &inv, err, sizeof err));
    assert_non_null(strstr(err, "500"));
    assert_non_null(strstr(err, "boom"));
    assert_int_equal(lambda_runtime_last_status(rt), 500);
    assert_null(inv.event);
    lambda_runtime_free(rt);
    server_stop(s);
}

static void test_unreachable_api(void **state)
{
    (void)state;
    /* A port where nothing listens. */
    int fd;
    int port = http_stub_refusing_port(&fd);
    char api[64];
    snprintf(api, sizeof api, "127.0.0.1:%d", port);
    setenv("AWS_LAMBDA_RUNTIME_API", api, 1);

    lambda_runtime *rt = runtime_for_test();
    lambda_invocation inv;
    char err[256] = "";
    int64_t t0 = now_ms();
    assert_false(lambda_runtime_next(rt, &inv, err, sizeof err));
    assert_true(now_ms() - t0 < 2000);
    assert_true(err[0] != '\0');
    assert_int_equal(lambda_runtime_last_status(rt), 0);
    assert_false(lambda_runtime_init_error(rt, "Runtime.Test", "x", err, sizeof err));
    lambda_runtime_free(rt);
    close(fd);
    unsetenv("AWS_LAMBDA_RUNTIME_API");
}

/* ---- posts ---- */

static void test_respond_posts_the_exact_body(void **state)
{
    (void)state;
    static const http_stub_reply script[] = {
        NEXT_OK("", "{}"),
        {.status = 202, .body = "{\"status\":\"OK\"}"},
        {.status = 202},
    };
    http_stub *s = server_start(script, 3);
    lambda_runtime *rt = runtime_for_test();
    lambda_invocation inv;
    char err[256] = "";
    assert_true(lambda_runtime_next(rt, &inv, err, sizeof err));

    static const char body[] = "{\"a\":\"\\u0000\",\"b\":[1,2]}\0tail";
    if (!lambda_runtime_respond(rt, &inv, body, sizeof body - 1, err, sizeof err))
        fail_msg("respond: %s", err);
    assert_int_equal(lambda_runtime_last_status(rt), 202);
    const http_stub_request *q = http_stub_request_at(s, 1);
    assert_string_equal(q->method, "POST");
    assert_string_equal(q->path, API_PATH "invocation/" REQUEST_ID "/response");
    assert_int_equal(q->body_len, sizeof body - 1);
    assert_memory_equal(q->body, body, sizeof body - 1);
    char v[128];
    assert_non_null(http_stub_header(q, "Content-Type", v, sizeof v));
    assert_string_equal(v, "application/json");
    assert_non_null(http_stub_header(q, "Content-Length", v, sizeof v));
    assert_int_equal(strtoul(v, NULL, 10), sizeof body - 1);
    assert_null(http_stub_header(q, "Transfer-Encoding", v, sizeof v));
    assert_null(http_stub_header(q, "Expect", v, sizeof v));
    assert_null(http_stub_header(q, "Lambda-Runtime-Function-Error-Type", v, sizeof v));

    /* An empty result is a valid one. */
    assert_true(lambda_runtime_respond(rt, &inv, NULL, 0, err, sizeof err));
    q = http_stub_request_at(s, 2);
    assert_int_equal(q->body_len, 0);
    assert_non_null(http_stub_header(q, "Content-Length", v, sizeof v));
    assert_string_equal(v, "0");

    lambda_invocation_clear(&inv);
    lambda_runtime_free(rt);
    server_stop(s);
}

/* Check that request q is an error post with the given type and message. */
static void assert_error_post(const http_stub_request *q, const char *path, const char *type,
                              const char *message)
{
    assert_string_equal(q->method, "POST");
    assert_string_equal(q->path, path);
    char v[256];
    assert_non_null(http_stub_header(q, "Lambda-Runtime-Function-Error-Type", v, sizeof v));
    assert_string_equal(v, type);
    assert_non_null(http_stub_header(q, "Content-Type", v, sizeof v));
    assert_string_equal(v, "application/json");

    json_error_t jerr;
    json_t *j = json_loadb(q->body, q->body_len, 0, &jerr);
    if (!j)
        fail_msg("error body is not JSON (%s): %s", jerr.text, q->body);
    assert_int_equal(json_object_size(j), 3);
    assert_string_equal(json_string_value(json_object_get(j, "errorType")), type);
    assert_string_equal(json_string_value(json_object_get(j, "errorMessage")), message);
    json_t *st = json_object_get(j, "stackTrace");
    assert_true(json_is_array(st));
    assert_int_equal(json_array_size(st), 0);
    json_decref(j);
}

static void test_fail_posts_error_json(void **state)
{
    (void)state;
    static const http_stub_reply script[] = {
        NEXT_OK("", "{}"),
        {.status = 202},
        {.status = 202},
        {.status = 202},
    };
    http_stub *s = server_start(script, 4);
    lambda_runtime *rt = runtime_for_test();
    lambda_invocation inv;
    char err[256] = "";
    assert_true(lambda_runtime_next(rt, &inv, err, sizeof err));
    static const char path[] = API_PATH "invocation/" REQUEST_ID "/error";

    /* Quotes, backslash, newline, a control byte, UTF-8, and one stray byte. */
    if (!lambda_runtime_fail(rt, &inv, "Handler.BadEvent",
                             "bad \"event\"\n\\ \x01 caf\xc3\xa9 \xff end", err, sizeof err))
        fail_msg("fail: %s", err);
    assert_error_post(http_stub_request_at(s, 1), path, "Handler.BadEvent",
                      "bad \"event\"\n\\ \x01 caf\xc3\xa9 ? end");

    /* Defaults. */
    assert_true(lambda_runtime_fail(rt, &inv, NULL, NULL, err, sizeof err));
    assert_error_post(http_stub_request_at(s, 2), path, "Runtime.UnknownReason", "");

    /* A type cannot smuggle in a header. */
    assert_true(lambda_runtime_fail(rt, &inv, "A\r\nX-Injected: 1", "m", err, sizeof err));
    const http_stub_request *q = http_stub_request_at(s, 3);
    char v[64];
    assert_null(http_stub_header(q, "X-Injected", v, sizeof v));
    assert_non_null(http_stub_header(q, "Lambda-Runtime-Function-Error-Type", v, sizeof v));
    assert_string_equal(v, "A  X-Injected: 1");

    lambda_invocation_clear(&inv);
    lambda_runtime_free(rt);
    server_stop(s);
}

static void test_init_error(void **state)
{
    (void)state;
    static const http_stub_reply script[] = {{.status = 202}, {.status = 403}};
    http_stub *s = server_start(script, 2);
    lambda_runtime *rt = runtime_for_test();
    char err[256] = "";
    if (!lambda_runtime_init_error(rt, "Runtime.ConfigInvalid", "TASKD_TABLE is not set", err,
                                   sizeof err))
        fail_msg("init_error: %s", err);
    assert_error_post(http_stub_request_at(s, 0), API_PATH "init/error", "Runtime.ConfigInvalid",
                      "TASKD_TABLE is not set");

    assert_false(lambda_runtime_init_error(rt, "Runtime.ConfigInvalid", "again", err, sizeof err));
    assert_non_null(strstr(err, "403"));
    assert_int_equal(lambda_runtime_last_status(rt), 403);
    lambda_runtime_free(rt);
    server_stop(s);
}

static void test_respond_413(void **state)
{
    (void)state;
    static const http_stub_reply script[] = {
        NEXT_OK("", "{}"),
        {.status = 413,
         .body = "{\"errorMessage\":\"Exceeded maximum allowed payload size (6291556 bytes).\","
                 "\"errorType\":\"RequestEntityTooLarge\"}"},
    };
    http_stub *s = server_start(script, 2);
    lambda_runtime *rt = runtime_for_test();
    lambda_invocation inv;
    char err[256] = "";
    assert_true(lambda_runtime_next(rt, &inv, err, sizeof err));
    assert_false(lambda_runtime_respond(rt, &inv, "{}", 2, err, sizeof err));
    assert_non_null(strstr(err, "413"));
    assert_non_null(strstr(err, "payload too large"));
    assert_non_null(strstr(err, "RequestEntityTooLarge"));
    assert_int_equal(lambda_runtime_last_status(rt), 413);
    lambda_invocation_clear(&inv);
    lambda_runtime_free(rt);
    server_stop(s);
}

static void test_connection_is_reused(void **state)
{
    (void)state;
    static const http_stub_reply script[] = {
        NEXT_OK("", "{\"n\":1}"),
        {.status = 202},
        NEXT_OK("", "{\"n\":2}"),
        {.status = 202},
    };
    http_stub *s = server_start(script, 4);
    lambda_runtime *rt = runtime_for_test();
    lambda_invocation inv;
    char err[256] = "";
    assert_true(lambda_runtime_next(rt, &inv, err, sizeof err));
    assert_true(lambda_runtime_respond(rt, &inv, "1", 1, err, sizeof err));
    lambda_invocation_clear(&inv);
    assert_true(lambda_runtime_next(rt, &inv, err, sizeof err));
    assert_string_equal(inv.event, "{\"n\":2}");
    assert_true(lambda_runtime_fail(rt, &inv, "T", "m", err, sizeof err));
    lambda_invocation_clear(&inv);
    assert_int_equal(http_stub_count(s), 4);
    assert_int_equal(http_stub_connections(s), 1);
    lambda_runtime_free(rt);
    server_stop(s);
}

static void test_large_event_round_trip(void **state)
{
    (void)state;
    size_t n = (size_t)1 << 20;
    char *event = malloc(n + 1);
    assert_non_null(event);
    memcpy(event, "{\"data\":\"", 9);
    for (size_t i = 9; i < n - 2; i++)
        event[i] = (char)('a' + i % 26);
    memcpy(event + n - 2, "\"}", 2);
    event[n] = '\0';
    const http_stub_reply script[] = {
        {.status = 200, .headers = ID_HEADER, .body = event, .body_len = n},
        {.status = 202},
    };
    http_stub *s = server_start(script, 2);
    lambda_runtime *rt = runtime_for_test();
    lambda_invocation inv;
    char err[256] = "";
    if (!lambda_runtime_next(rt, &inv, err, sizeof err))
        fail_msg("next: %s", err);
    assert_int_equal(inv.event_len, n);
    assert_memory_equal(inv.event, event, n);
    assert_int_equal(inv.event[n], '\0');

    if (!lambda_runtime_respond(rt, &inv, inv.event, inv.event_len, err, sizeof err))
        fail_msg("respond: %s", err);
    const http_stub_request *q = http_stub_request_at(s, 1);
    assert_int_equal(q->body_len, n);
    assert_memory_equal(q->body, event, n);
    char v[64];
    assert_null(http_stub_header(q, "Expect", v, sizeof v));
    assert_int_equal(http_stub_connections(s), 1);

    lambda_invocation_clear(&inv);
    lambda_runtime_free(rt);
    server_stop(s);
    free(event);
}

static void test_post_timeout(void **state)
{
    (void)state;
    static const http_stub_reply script[] = {
        NEXT_OK("", "{}"),
        {.action = HTTP_STUB_HANG},
    };
    http_stub *s = server_start(script, 2);
    lambda_runtime *rt = runtime_for_test();
    lambda_runtime_set_post_timeout(rt, 200);
    lambda_invocation inv;
    char err[256] = "";
    assert_true(lambda_runtime_next(rt, &inv, err, sizeof err));
    int64_t t0 = now_ms();
    assert_false(lambda_runtime_respond(rt, &inv, "{}", 2, err, sizeof err));
    int64_t took = now_ms() - t0;
    assert_true(took >= 150 && took < 2000);
    assert_non_null(strcasestr(err, "timed out"));
    assert_int_equal(lambda_runtime_last_status(rt), 0);
    lambda_invocation_clear(&inv);
    lambda_runtime_free(rt);
    server_stop(s);
}

/* ---- deadlines ---- */

#define NOW INT64_C(1800000000000) /* epoch ms */

static void test_call_deadline_keeps_a_tenth_for_the_answer(void **state)
{
    (void)state;
    assert_int_equal(lambda_call_deadline(0, NOW), 0); /* unknown: the calls' default budgets */
    assert_int_equal(lambda_call_deadline(NOW + 1000, NOW), NOW + 900);
    assert_int_equal(lambda_call_deadline(NOW + 4990, NOW), NOW + 4491);
    assert_int_equal(lambda_call_deadline(NOW + 5000, NOW), NOW + 4500);
    assert_int_equal(lambda_call_deadline(NOW + 5010, NOW), NOW + 4510); /* at most 500 ms */
    assert_int_equal(lambda_call_deadline(NOW + 900000, NOW), NOW + 899500);
    assert_int_equal(lambda_call_deadline(NOW + 9, NOW), NOW + 9); /* a tenth of 9 ms is 0 */
    assert_int_equal(lambda_call_deadline(NOW, NOW), NOW);
    assert_int_equal(lambda_call_deadline(NOW - 100, NOW), NOW - 100); /* past: nothing kept */
}

static void test_flush_deadline_is_the_budget_or_the_deadline_less_a_reserve(void **state)
{
    (void)state;
    /* no deadline, or one far off: the 300 ms budget */
    assert_int_equal(lambda_flush_deadline(0, NOW), NOW + 300);
    assert_int_equal(lambda_flush_deadline(NOW + 900000, NOW), NOW + 300);
    /* nearer than the budget and the 50 ms reserve: 50 ms before it, not a tenth of the time */
    assert_int_equal(lambda_flush_deadline(NOW + 350, NOW), NOW + 300);
    assert_int_equal(lambda_flush_deadline(NOW + 349, NOW), NOW + 299);
    assert_int_equal(lambda_flush_deadline(NOW + 200, NOW), NOW + 150);
    assert_int_equal(lambda_flush_deadline(NOW + 51, NOW), NOW + 1);
    /* less than the reserve left, or none: a deadline already past, no time at all */
    assert_int_equal(lambda_flush_deadline(NOW + 50, NOW), NOW);
    assert_int_equal(lambda_flush_deadline(NOW + 30, NOW), NOW - 20);
    assert_int_equal(lambda_flush_deadline(NOW - 100, NOW), NOW - 150);
}

int main(void)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_reads_the_environment),
        cmocka_unit_test(test_next_parses_the_invocation),
        cmocka_unit_test(test_next_empty_event_is_empty_string),
        cmocka_unit_test(test_next_leaves_the_environment_alone),
        cmocka_unit_test(test_missing_request_id),
        cmocka_unit_test(test_unsafe_request_id_is_rejected),
        cmocka_unit_test(test_arn_too_long_is_left_out),
        cmocka_unit_test(test_long_trace_header_keeps_root_parent_sampled),
        cmocka_unit_test(test_deadline_missing_or_bad_is_zero),
        cmocka_unit_test(test_next_http_500),
        cmocka_unit_test(test_unreachable_api),
        cmocka_unit_test(test_respond_posts_the_exact_body),
        cmocka_unit_test(test_fail_posts_error_json),
        cmocka_unit_test(test_init_error),
        cmocka_unit_test(test_respond_413),
        cmocka_unit_test(test_connection_is_reused),
        cmocka_unit_test(test_large_event_round_trip),
        cmocka_unit_test(test_post_timeout),
        cmocka_unit_test(test_call_deadline_keeps_a_tenth_for_the_answer),
        cmocka_unit_test(test_flush_deadline_is_the_budget_or_the_deadline_less_a_reserve),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return failed;
}
