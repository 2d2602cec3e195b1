/*
 * The AWS adapters (src/aws) under failing allocations (tests/unit/oom): each scenario runs once
 * whole, then once for every allocation it makes with that one failing, and with that one and
 * all after it failing. No run may crash, leave a block behind, or report success with a wrong
 * result; a run that fails must say so to its caller.
 *
 * The first scenarios run on the sweeping thread alone and send nothing: API Gateway events
 * and responses, XML and the Query form, clients, and the SNS, role and DynamoDB code up to
 * its call, which gives up before connecting because its deadline has passed (aws_http.h); the
 * worker and API roles run over a store kept in this file. The last ones read answers, and
 * those come from a small HTTP server in this process, on 127.0.0.1, on threads of its own
 * (which the sweep neither counts nor fails): SNS replies and errors, the publish role's
 * messages published, DynamoDB items, and the Lambda Runtime API.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "oom.h"
#include "support/store_front.h"
#include "support/trace_env.h"

#include "aws/api_role.h"
#include "aws/apigw.h"
#include "aws/aws_http.h"
#include "aws/dynamodb_store.h"
#include "aws/lambda_runtime.h"
#include "aws/publish_role.h"
#include "aws/recover_role.h"
#include "aws/role.h"
#include "aws/sns.h"
#include "aws/worker_role.h"
#include "aws/xml.h"
#include "core/config.h"
#include "core/sbuf.h"
#include "core/task.h"
#include "store/store.h"
#include "util/log.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* An AWS deadline long gone: calls give up before connecting. */
#define PAST 1

#define TASK_A  "0190f3c2-7b1e-7c3a-9d2e-000000000001"
#define TASK_B  "0190f3c2-7b1e-7c3a-9d2e-000000000002"
#define TASK_C  "0190f3c2-7b1e-7c3a-9d2e-000000000003"
#define TASK_D  "0190f3c2-7b1e-7c3a-9d2e-000000000004"
#define TASK_E  "0190f3c2-7b1e-7c3a-9d2e-000000000005"
#define NO_TASK "019ac6a4-3f0e-7a31-b0c2-5d1e8f2a9c44"
#define TRACE   "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

/* A wrong result: say what, and stop here as the sweep itself does (oom.c). */
static void wrong(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void wrong(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("oom_aws: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

static bool eq(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

/* RFC 3986's unreserved characters, which a form leaves as they are. */
static bool unreserved(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           (c && strchr("-._~", c));
}

/*
 * Whether a failure says something. A run that fails for lack of memory need not say "out of
 * memory" (jansson tells a failed allocation in a document from a syntax error only at times),
 * but it must fail, and say so; the sweep checks that it fails only when an allocation did.
 */
static bool said(const char *text)
{
    return text && *text;
}

/* A call that made nothing, with err its reason: false, for the scenario to return (the sweep
 * checks that it failed only when an allocation did); without a reason, a wrong result. */
static bool failed_saying(const char *err, const char *what)
{
    if (!said(err))
        wrong("%s failed without a reason", what);
    return false;
}

/* An event and (part of) the reason it is refused for. */
typedef struct refusal {
    const char *event, *why;
} refusal;

/* ---- API Gateway events ------------------------------------------------- */

/* Parse event into r; false (the reason said) when it was refused, which it may be for want of
 * memory only, and must say so: a good event refused as bad would be dropped. */
static bool apigw_parsed(const char *event, apigw_request *r, const char *what)
{
    char err[256] = "";
    bool nomem = false;
    if (apigw_request_parse(event, strlen(event), r, err, sizeof err, &nomem))
        return true;
    if (!nomem)
        wrong("%s refused, not for want of memory: %s", what, err);
    return failed_saying(err, what);
}

static const char APIGW_V1[] =
    "{\"resource\":\"/{proxy+}\",\"path\":\"/prod/tasks/x\\u0000y\",\"httpMethod\":\"POST\","
    "\"headers\":{\"Content-Type\":\"application/json\",\"X-One\":\"1\",\"Accept\":\"text/plain\"},"
    "\"multiValueHeaders\":{\"Accept\":[\"application/json\",\"text/html\"],"
    "\"X-Multi\":[\"a\",\"b\"],\"X-None\":[]},"
    "\"queryStringParameters\":{\"limit\":\"5\",\"status\":\"CREATED\"},"
    "\"multiValueQueryStringParameters\":{\"limit\":[\"10\",\"20\"],\"empty\":[],\"n\":null},"
    "\"pathParameters\":{\"proxy\":\"tasks\"},\"stageVariables\":null,"
    "\"requestContext\":{\"stage\":\"prod\",\"requestId\":\"c6af9ac6-7b61-11e6\","
    "\"path\":\"/prod/tasks/x\\u0000y\",\"identity\":{\"sourceIp\":\"203.0.113.7\"}},"
    "\"body\":\"{\\\"task_type\\\":\\\"TASK1\\\",\\\"data\\\":{\\\"k\\\":\\\"v\\\"}}\","
    "\"isBase64Encoded\":false}";

/* The headers every answer carries (response.h), as the response JSON writes them. */
#define DEFAULT_HEADERS                                                                            \
    "\"X-Content-Type-Options\":\"nosniff\",\"Content-Security-Policy\":\"default-src "            \
    "'none'; frame-ancestors 'none'\""

static bool apigw_v1(void *arg)
{
    (void)arg;
    apigw_request r;
    if (!apigw_parsed(APIGW_V1, &r, "a 1.0 event"))
        return false;
    const api_request *q = &r.req;
    static const char body[] = "{\"task_type\":\"TASK1\",\"data\":{\"k\":\"v\"}}";
    const char *multi = q->header(q->ctx, "x-multi"), *none = q->header(q->ctx, "X-None");
    bool ok = r.version == 1 && eq(q->method, "POST") && eq(q->path, "/tasks/x%00y") &&
              eq(r.request_id, "c6af9ac6-7b61-11e6") && eq(q->query(q->ctx, "limit"), "20") &&
              !q->query(q->ctx, "LIMIT") && eq(q->query(q->ctx, "status"), "CREATED") &&
              !q->query(q->ctx, "empty") && eq(q->header(q->ctx, "accept"), "application/json") &&
              eq(q->header(q->ctx, "x-one"), "1") && multi && eq(multi, "a") && !none &&
              q->body_len == strlen(body) && memcmp(q->body, body, q->body_len) == 0;
    if (!ok)
        wrong("a 1.0 event read wrong");

    api_response resp = {.status = 201, .content_type = "application/json", .n_headers = 2};
    resp.headers[0].name = "Location";
    snprintf(resp.headers[0].value, sizeof resp.headers[0].value, "/tasks/1");
    resp.headers[1].name = "content-type"; /* a repeat of Content-Type: left out */
    snprintf(resp.headers[1].value, sizeof resp.headers[1].value, "text/plain");
    resp.body = (char *)"{\"id\":\"1\",\"s\":\"\xc3\xa9\\n\"}";
    resp.body_len = strlen(resp.body);
    size_t len = 0;
    char *json = apigw_response_json(&r, &resp, &len);
    apigw_request_free(&r);
    if (!json)
        return false;
    static const char want[] =
        "{\"statusCode\":201,\"headers\":{\"Content-Type\":\"application/json\","
        "\"Location\":\"/prod/tasks/1\"," DEFAULT_HEADERS
        "},\"body\":\"{\\\"id\\\":\\\"1\\\",\\\"s\\\":\\\"\xc3\xa9\\\\n\\\"}\","
        "\"isBase64Encoded\":false}";
    if (len != strlen(json) || strcmp(json, want) != 0)
        wrong("response %s, not %s", json, want);
    free(json);
    return true;
}

static const char APIGW_V2[] =
    "{\"version\":\"2.0\",\"routeKey\":\"$default\",\"rawPath\":\"/prod/tasks/a%2Fb+c\","
    "\"rawQueryString\":\"a=1&a=2&b=x+y%21&flag&&=v&c=%00\","
    "\"cookies\":[\"s=1\",\"t=2\"],"
    "\"headers\":{\"content-type\":\"application/octet-stream\",\"x-h\":\"v\"},"
    "\"queryStringParameters\":{\"ignored\":\"1\"},"
    "\"requestContext\":{\"http\":{\"method\":\"PUT\",\"path\":\"/prod/tasks/a/b c\"},"
    "\"stage\":\"prod\",\"requestId\":\"JKJaXmPLvHcESHA=\"},"
    "\"body\":\"AAECAwQF/w==\",\"isBase64Encoded\":true}";

static bool apigw_v2(void *arg)
{
    (void)arg;
    apigw_request r;
    if (!apigw_parsed(APIGW_V2, &r, "a 2.0 event"))
        return false;
    const api_request *q = &r.req;
    static const char body[] = {0, 1, 2, 3, 4, 5, (char)0xff};
    bool ok = r.version == 2 && eq(q->method, "PUT") && eq(q->path, "/tasks/a/b+c") &&
              eq(r.request_id, "JKJaXmPLvHcESHA=") && eq(q->query(q->ctx, "a"), "2") &&
              eq(q->query(q->ctx, "b"), "x y!") && eq(q->query(q->ctx, "flag"), "") &&
              eq(q->query(q->ctx, "c"), "%00") && !q->query(q->ctx, "ignored") &&
              eq(q->header(q->ctx, "Cookie"), "s=1; t=2") && eq(q->header(q->ctx, "X-H"), "v") &&
              q->body_len == sizeof body && memcmp(q->body, body, sizeof body) == 0 &&
              q->body[q->body_len] == '\0';
    if (!ok)
        wrong("a 2.0 event read wrong");

    /* a binary body goes as base64; HEAD and 204 send none */
    api_response resp = {.status = 200, .content_type = "application/octet-stream"};
    resp.body = (char *)body;
    resp.body_len = sizeof body;
    char *bin = apigw_response_json(&r, &resp, NULL);
    apigw_request_free(&r);
    apigw_request head = {.req = {.method = "HEAD"}};
    char *nothing = apigw_response_json(&head, &resp, NULL);
    resp.status = 204;
    char *none = apigw_response_json(NULL, &resp, NULL);
    ok = bin && nothing && none;
    if (ok) {
        if (strcmp(bin, "{\"statusCode\":200,\"headers\":{\"Content-Type\":\"application/"
                        "octet-stream\"," DEFAULT_HEADERS "},\"body\":\"AAECAwQF/w==\","
                        "\"isBase64Encoded\":true}") != 0 ||
            strcmp(nothing, "{\"statusCode\":200,\"headers\":{\"Content-Type\":\"application/"
                            "octet-stream\"," DEFAULT_HEADERS "},\"body\":\"\","
                            "\"isBase64Encoded\":false}") != 0 ||
            strcmp(none, "{\"statusCode\":204,\"headers\":{" DEFAULT_HEADERS "},\"body\":\"\","
                         "\"isBase64Encoded\":false}") != 0)
            wrong("responses %s / %s / %s", bin, nothing, none);
    }
    free(bin);
    free(nothing);
    free(none);
    return ok;
}

/* Events API Gateway never sends, each with (part of) the reason it is refused for. */
static const refusal BAD_EVENTS[] = {
    {"{\"httpMethod\":", "not valid JSON"},
    {"[1,2]", "not a JSON object"},
    {"{\"body\":\"x\"}", "not an API Gateway proxy event"},
    {"{\"httpMethod\":5,\"path\":\"/\"}", "httpMethod must be a string"},
    {"{\"httpMethod\":\"GET\"}", "path must be a string"},
    {"{\"httpMethod\":\"GET\",\"path\":\"/\",\"headers\":{\"a\":\"1\",\"b\":2}}",
     "headers.b must be a string"},
    {"{\"httpMethod\":\"GET\",\"path\":\"/\",\"multiValueHeaders\":{\"a\":[\"1\",2]}}",
     "must be a list of strings"},
    {"{\"httpMethod\":\"GET\",\"path\":\"/\",\"queryStringParameters\":[]}",
     "must be an object or null"},
    {"{\"httpMethod\":\"GET\",\"path\":\"/\",\"body\":\"@@@@\",\"isBase64Encoded\":true}",
     "not valid base64"},
    {"{\"version\":\"2.0\",\"rawPath\":\"/\",\"cookies\":[\"a\",1],"
     "\"requestContext\":{\"http\":{\"method\":\"GET\"}}}",
     "cookies must be a list"},
    {"{\"version\":\"2.0\",\"rawPath\":\"/\",\"requestContext\":{\"http\":{\"method\":\"\"}}}",
     "method is empty"},
    {"{\"version\":\"2.0\",\"rawPath\":\"/\",\"rawQueryString\":\"a=1&b=2\","
     "\"requestContext\":{\"http\":{\"method\":\"GET\"}},\"body\":7}",
     "body must be a string"},
};

static bool apigw_refusals(void *arg)
{
    (void)arg;
    bool ok = true;
    for (size_t i = 0; i < sizeof BAD_EVENTS / sizeof BAD_EVENTS[0]; i++) {
        apigw_request r;
        char err[256] = "";
        const char *ev = BAD_EVENTS[i].event;
        bool nomem = false;
        if (apigw_request_parse(ev, strlen(ev), &r, err, sizeof err, &nomem))
            wrong("accepted %s", ev);
        if (r.data)
            wrong("a refused event left data behind");
        apigw_request_free(&r);
        if (!said(err))
            wrong("%s refused without a reason", ev);
        if (!nomem && !strstr(err, BAD_EVENTS[i].why))
            wrong("%s refused with \"%s\", not for want of memory", ev, err);
        ok = ok && !nomem;
    }
    return ok;
}

static void test_apigw(void **state)
{
    (void)state;
    assert_true(oom_sweep("apigw 1.0 event and text response", apigw_v1, NULL) > 10);
    assert_true(oom_sweep("apigw 2.0 event and binary response", apigw_v2, NULL) > 10);
    assert_true(oom_sweep("apigw refusals", apigw_refusals, NULL) > 20);
}

/* ---- XML and the Query form --------------------------------------------- */

static bool xml_and_form(void *arg)
{
    (void)arg;
    /* xml.h allocates nothing: read an answer, then encode a long text into a form */
    static const char reply[] =
        "<R><Failed><member><Id>3</Id><Message>a &lt;b&gt; &amp; &#233;&#x1F600; &bogus;</Message>"
        "</member><member/></Failed><Empty/><Successful>x</Successful></R>";
    const char *end = reply + sizeof reply - 1, *after;
    size_t n;
    const char *failed = xml_find(reply, end, "Failed", &n, &after);
    const char *msg = failed ? xml_find(failed, failed + n, "Message", &n, NULL) : NULL;
    char text[128];
    size_t tl = msg ? xml_decode(text, sizeof text, msg, n) : 0;
    size_t en;
    if (!msg || strcmp(text, "a <b> & \xc3\xa9\xf0\x9f\x98\x80 &bogus;") != 0 ||
        tl != strlen(text) || !xml_find(reply, end, "Empty", &en, NULL) || en != 0 ||
        xml_find(reply, end, "Fail", &en, NULL))
        wrong("xml read wrong");

    char in[3000];
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = "a&b=c+d e~-._/:\n\"{}%\x01\xc3\xbc"[i % 23];
    sbuf b = {0};
    sns_form_append(&b, in, sizeof in);
    if (sbuf_failed(&b)) {
        sbuf_free(&b);
        return false;
    }
    /* decode it back: unreserved bytes as they are, every other one %XX */
    bool ok = true;
    size_t o = 0;
    for (size_t i = 0; ok && i < b.len; i++, o++) {
        unsigned v = (unsigned char)b.data[i];
        bool escaped = v == '%';
        if (escaped)
            ok = i + 2 < b.len && strchr("0123456789ABCDEF", b.data[i + 1]) &&
                 strchr("0123456789ABCDEF", b.data[i + 2]) &&
                 sscanf(b.data + i + 1, "%2X", &v) == 1;
        i += escaped ? 2 : 0;
        ok = ok && o < sizeof in && v == (unsigned char)in[o] && unreserved((char)v) != escaped;
    }
    if (!ok || o != sizeof in)
        wrong("form encoding wrong");
    sbuf_free(&b);
    return true;
}

static void test_xml_and_form(void **state)
{
    (void)state;
    oom_sweep("xml and the Query form", xml_and_form, NULL);
}

/* ---- AWS clients ---------------------------------------------------------- */

/* Fake credentials, an endpoint nothing is ever sent to, and no proxy for 127.0.0.1. */
static void aws_environment(void)
{
    static const char *const unset[] = {"AWS_ENDPOINT_URL_DYNAMODB",
                                        "AWS_ENDPOINT_URL_SNS",
                                        "AWS_ENDPOINT_URL_SQS",
                                        "AWS_SESSION_TOKEN",
                                        "AWS_DEFAULT_REGION",
                                        "_X_AMZN_TRACE_ID",
                                        "http_proxy",
                                        "HTTP_PROXY",
                                        "https_proxy",
                                        "HTTPS_PROXY",
                                        "all_proxy",
                                        "ALL_PROXY"};
    for (size_t i = 0; i < sizeof unset / sizeof unset[0]; i++)
        unsetenv(unset[i]);
    test_trace_env_clear();
    setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", 1);
    setenv("AWS_REGION", "eu-west-1", 1);
    setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9", 1);
}

static aws_client *new_client(aws_service service)
{
    char err[256] = "";
    aws_client *c = aws_client_new(service, err, sizeof err);
    if (!c)
        wrong("aws_client_new: %s", err);
    return c;
}

static bool clients(void *arg)
{
    (void)arg;
    setenv("AWS_SESSION_TOKEN", "FQoGZXIvYXdzEXAMPLETOKEN", 1);
    char err[256] = "";
    aws_client *c = aws_client_new(AWS_SQS, err, sizeof err);
    unsetenv("AWS_SESSION_TOKEN");
    if (!c)
        return failed_saying(err, "aws_client_new");
    bool ok = strcmp(aws_client_endpoint(c), "http://127.0.0.1:9/") == 0 &&
              strcmp(aws_client_region(c), "eu-west-1") == 0;
    aws_response r;
    /* its reason, unless the copy of it failed */
    ok = ok && aws_json_call(c, "AmazonSQS.SendMessage", "{}", 2, PAST, &r) == AWS_ERR_TIMEOUT &&
         r.attempts == 0 && !r.body &&
         (!r.error_message ||
          strcmp(r.error_message, "the deadline passed before the first attempt") == 0);
    aws_response_free(&r);
    ok = ok && aws_query_call(c, "Action=Publish", 14, PAST, &r) == AWS_ERR_TIMEOUT &&
         r.attempts == 0;
    aws_response_free(&r);
    aws_client_free(c);
    if (!ok)
        wrong("a client made wrong");

    setenv("AWS_ENDPOINT_URL_DYNAMODB", "ftp://example.com/", 1);
    err[0] = '\0';
    c = aws_client_new(AWS_DYNAMODB, err, sizeof err);
    unsetenv("AWS_ENDPOINT_URL_DYNAMODB");
    if (c)
        wrong("a client for an ftp endpoint");
    if (!said(err))
        wrong("an ftp endpoint refused without a reason");
    return strstr(err, "not an http") != NULL;
}

static void test_clients(void **state)
{
    (void)state;
    oom_sweep("aws clients", clients, NULL);
}

/* ---- SNS ---------------------------------------------------------------- */

#define SNS_TOPIC   "arn:aws:sns:eu-west-1:123456789012:tasks"
#define SNS_MISSING "arn:aws:sns:eu-west-1:123456789012:missing"

#define ATTRS(id)                                                                                  \
    "{\"TaskId\":{\"Type\":\"String\",\"Value\":\"" id "\"},"                                      \
    "\"TaskType\":{\"Type\":\"String\",\"Value\":\"TASK1\"},"                                      \
    "\"blob\":{\"Type\":\"Binary\",\"Value\":\"AAEC\"}}"

static const sns_message SNS_MESSAGES[] = {
    {"{\"n\":0}", ATTRS(TASK_A)},
    {"", NULL},                                      /* empty */
    {"bad \xff utf-8", NULL},                        /* not UTF-8 */
    {"{\"n\":3}", "[1]"},                            /* not an object */
    {"{\"n\":4}", "{\"a\":{\"Type\":\"String\"}}"},  /* no Value */
    {"{\"n\":5,\"s\":\"a&b=c+d e\xc3\xa9\"}", NULL}, /* no attributes */
    {"{\"n\":6}", ATTRS(TASK_B)},
    {"{\"n\":7}", "{\"t\":{\"Type\":\"Number\",\"Value\":\"7\"}}"},
    {"{\"n\":8}", ATTRS(TASK_C)},
    {"{\"n\":9}", ATTRS(TASK_D)},
    {"{\"n\":10}", ATTRS(TASK_E)}, /* the second call's: never sent */
    {"{\"n\":11}", NULL},
};
#define N_SNS (sizeof SNS_MESSAGES / sizeof SNS_MESSAGES[0])

/* What becomes of message i when its call times out. */
static const char *sns_expected(size_t i)
{
    if (i >= SNS_BATCH_MAX)
        return SNS_NOT_SENT;
    return i >= 1 && i <= 4 ? SNS_INVALID_LOCAL : "Timeout";
}

static bool sns_expired(void *arg)
{
    aws_client *c = arg;
    sns_status st[N_SNS];
    memset(st, 0x55, sizeof st);
    if (sns_publish_batch(c, SNS_TOPIC, SNS_MESSAGES, N_SNS, PAST, st))
        wrong("published past the deadline");
    bool ok = true;
    for (size_t i = 0; i < N_SNS; i++) {
        const char *want = sns_expected(i);
        if (st[i].ok)
            wrong("message %zu published", i);
        if (!said(st[i].code) || !said(st[i].message))
            wrong("message %zu failed without a code or a message", i);
        if (strcmp(st[i].code, want) != 0 ||
            st[i].sender_fault != (strcmp(want, SNS_INVALID_LOCAL) == 0))
            ok = false; /* failed otherwise: right only for lack of memory */
    }
    return ok;
}

static void test_sns(void **state)
{
    (void)state;
    aws_client *c = new_client(AWS_SNS);
    assert_true(oom_sweep("sns PublishBatch past its deadline", sns_expired, c) > 20);
    aws_client_free(c);
}

/* ---- the publish role --------------------------------------------------- */

/* A stream record's JSON: event of item id with task_type (NULL: none) and the stored trace. */
static void stream_record(sbuf *b, const char *event, const char *id, const char *type,
                          const char *trace, int seq)
{
    sbuf_printf(b,
                "{\"eventID\":\"c4ca4238a0b9238%d\",\"eventName\":\"%s\",\"eventVersion\":\"1.1\","
                "\"eventSource\":\"aws:dynamodb\",\"awsRegion\":\"eu-west-1\",\"dynamodb\":{"
                "\"ApproximateCreationDateTime\":1648229203,\"Keys\":{\"id\":{\"S\":\"%s\"}},"
                "\"SequenceNumber\":\"11100000000000000000%d\",\"SizeBytes\":120,"
                "\"StreamViewType\":\"NEW_AND_OLD_IMAGES\",\"%s\":{\"id\":{\"S\":\"%s\"},"
                "\"status\":{\"S\":\"CREATED\"},\"status_msg\":{\"S\":\"\"},"
                "\"created_time\":{\"N\":\"1648229203\"},\"data\":{\"M\":{\"n\":{\"N\":\"%d\"},"
                "\"l\":{\"L\":[{\"S\":\"x\"},{\"BOOL\":true},{\"NULL\":true}]},"
                "\"note\":{\"S\":\"a&b=c+d e\\u00e9\"}}}",
                seq, event, id, seq, strcmp(event, "REMOVE") == 0 ? "OldImage" : "NewImage", id,
                seq);
    if (type)
        sbuf_printf(b,
                    ",\"task_type\":{\"S\":\"%s\"},\"type_status\":{\"S\":\"%s#CREATED\"},"
                    "\"list_all\":{\"S\":\"tasks\"}",
                    type, type);
    if (trace)
        sbuf_printf(b, ",\"trace\":{\"S\":\"%s\"}", trace);
    sbuf_puts(b, "}},\"eventSourceARN\":\"arn:aws:dynamodb:eu-west-1:123456789012:table/tasks/"
                 "stream/2022-03-25T00:00:00.000\"}");
}

/* Records 0..5: a MODIFY, a key item, INSERTs of TASK1 (traced) and TASK2, a REMOVE, an INSERT. */
static char *stream_event(void)
{
    sbuf b = {0};
    sbuf_puts(&b, "{\"Records\":[");
    stream_record(&b, "MODIFY", TASK_A, "TASK1", NULL, 0);
    sbuf_putc(&b, ',');
    stream_record(&b, "INSERT", "idem#key-1", NULL, NULL, 1);
    sbuf_putc(&b, ',');
    stream_record(&b, "INSERT", TASK_B, "TASK1", TRACE, 2);
    sbuf_putc(&b, ',');
    stream_record(&b, "INSERT", TASK_C, "TASK2", NULL, 3);
    sbuf_putc(&b, ',');
    stream_record(&b, "REMOVE", TASK_D, "TASK1", NULL, 4);
    sbuf_putc(&b, ',');
    stream_record(&b, "INSERT", TASK_E, "TASK3", TRACE, 5);
    sbuf_puts(&b, "]}");
    return sbuf_take(&b, NULL);
}

typedef struct publish_case {
    const config *cfg;
    aws_client *sns;
    const char *event;
    int64_t deadline_ms;
} publish_case;

/* The record a publish answer names ({"batchItemFailures":[{"itemIdentifier": seq}]}); -1 when it
 * names none, -2 when it is something else. */
static int failed_record(const char *response)
{
    if (strcmp(response, "{\"batchItemFailures\":[]}") == 0)
        return -1;
    static const char head[] = "{\"batchItemFailures\":[{\"itemIdentifier\":\"11100000000000000000";
    int n, end = 0;
    if (strncmp(response, head, sizeof head - 1) != 0 ||
        sscanf(response + sizeof head - 1, "%d\"}]}%n", &n, &end) != 1 || end == 0 ||
        response[sizeof head - 1 + (size_t)end] != '\0')
        return -2;
    return n;
}

/* The store of the publish role, where a task whose message SNS refuses would fail. SNS refuses
 * none here: a write means that a lack of memory was taken for a refusal, which would fail a task
 * for good. */
static bool no_write(store_front *f, store_write *w)
{
    (void)f;
    wrong("the publish role failed task %s: \"%s\"", w->update.id, w->update.status_msg);
}

/* The publish role of pc, to SNS_TOPIC; NULL (the reason said) when it could not be made. */
static role *publish_role(const publish_case *pc)
{
    static store_front no_writes;
    store_front_init(&no_writes, NULL, no_write, STORE_ERROR);
    char err[256] = "";
    role *r = publish_role_new(pc->cfg, pc->sns, SNS_TOPIC, &no_writes.base, NULL, err, sizeof err);
    if (!r)
        failed_saying(err, "publish_role_new");
    return r;
}

/* Invoke r with event (inv's other fields as given) into *res: true when it answered; false
 * (res cleared) when the invocation failed, which it must say why, and not as the event's fault:
 * every event given here is good, and fails only for want of memory. */
static bool invoked(role *r, lambda_invocation inv, const char *event, role_result *res)
{
    inv.event = (char *)event;
    inv.event_len = strlen(event);
    *res = (role_result){0};
    r->invoke(r, &inv, res);
    if (res->response)
        return true;
    if (!said(res->error_type) || !said(res->error_message))
        wrong("an invocation failed without a reason");
    if (strcmp(res->error_type, "Runtime.InvalidEvent") == 0)
        wrong("a good event refused as bad: %s", res->error_message);
    role_result_clear(res);
    return false;
}

static bool publish_expired(void *arg)
{
    const publish_case *pc = arg;
    role *r = publish_role(pc);
    if (!r)
        return false;
    role_result res;
    lambda_invocation inv = {.deadline_ms = pc->deadline_ms, .request_id = "req-1"};
    bool done = invoked(r, inv, pc->event, &res);
    r->free(r);
    if (!done)
        return false; /* a failed invocation is retried whole: only for lack of memory here */
    /*
     * Every message times out: the first INSERT (record 2) is where the retry starts; an
     * earlier record only when memory ran out there. A later one would leave record 2's task
     * unpublished for good (an INSERT skipped for want of memory as if it were no task's).
     */
    int at = failed_record(res.response);
    if (at < 0 || at > 2 || res.response_len != strlen(res.response))
        wrong("answered %s", res.response);
    role_result_clear(&res);
    return at == 2;
}

static bool publish_refusals(void *arg)
{
    const publish_case *pc = arg;
    role *r = publish_role(pc);
    if (!r)
        return false;
    static const char *const events[] = {"{\"Records\":{}}", "[]",
                                         "{\"Records\":", "{\"Records\":[]}"};
    bool ok = true;
    for (size_t i = 0; i < sizeof events / sizeof events[0]; i++) {
        lambda_invocation inv = {.deadline_ms = PAST, .event = (char *)events[i]};
        inv.event_len = strlen(events[i]);
        role_result res = {0};
        r->invoke(r, &inv, &res);
        if (i == 3) {
            if (res.response && strcmp(res.response, "{\"batchItemFailures\":[]}") != 0)
                wrong("an empty batch answered %s", res.response);
            if (!res.response && (!said(res.error_type) || !said(res.error_message)))
                wrong("an empty batch failed without a reason");
            ok = ok && res.response;
        } else if (!res.response && strcmp(res.error_type, "Runtime.OutOfMemory") == 0) {
            ok = false;
        } else if (res.response || strcmp(res.error_type, "Runtime.InvalidEvent") != 0) {
            wrong("%s answered %s", events[i], res.response ? res.response : res.error_type);
        }
        role_result_clear(&res);
    }
    r->free(r);
    return ok;
}

static void test_publish_role(void **state)
{
    (void)state;
    config cfg;
    assert_true(config_defaults(&cfg));
    aws_client *c = new_client(AWS_SNS);
    char *event = stream_event();
    assert_non_null(event);
    publish_case pc = {.cfg = &cfg, .sns = c, .event = event, .deadline_ms = PAST};
    assert_true(oom_sweep("publish role past its deadline", publish_expired, &pc) > 50);
    oom_sweep("publish role refusals", publish_refusals, &pc);
    free(event);
    aws_client_free(c);
    config_free(&cfg);
}

/* ---- a store in memory, for the worker and API roles ------------------- */

typedef struct mem_task {
    char id[TASK_ID_LEN + 1];
    task_status status;
    char msg[128];
    char data[128];
    int64_t updated;
} mem_task;

typedef struct mem_store {
    store base;
    mem_task tasks[8];
    size_t n;
} mem_store;

static mem_task *mem_find(mem_store *m, const char *id)
{
    for (size_t i = 0; id && i < m->n; i++)
        if (strcmp(m->tasks[i].id, id) == 0)
            return &m->tasks[i];
    return NULL;
}

/* The task as a store hands it out (owned strings); false when out of memory. */
static bool mem_copy(const mem_task *t, task *out)
{
    memset(out, 0, sizeof *out);
    memcpy(out->id, t->id, sizeof out->id);
    snprintf(out->task_type, sizeof out->task_type, "TASK1");
    out->status = t->status;
    out->created_time = 1648229203;
    out->updated_time = t->updated;
    out->ttl = TASK_NULL_TIME;
    out->status_msg = strdup(t->msg);
    out->data = strdup(t->data);
    if (out->status_msg && out->data)
        return true;
    task_clear(out);
    return false;
}

static store_rc mem_write(mem_store *m, store_write *w)
{
    if (w->kind == STORE_WRITE_CREATE) {
        if (m->n == sizeof m->tasks / sizeof m->tasks[0] || strlen(w->create.data) >= 128)
            return STORE_ERROR;
        mem_task *t = &m->tasks[m->n];
        *t = (mem_task){.status = TASK_CREATED, .updated = TASK_NULL_TIME};
        snprintf(t->id, sizeof t->id, "0190f3c2-7b1e-7c3a-9d2e-0000000000%02zu", ++m->n);
        snprintf(t->data, sizeof t->data, "%s", w->create.data);
        memcpy(w->id, t->id, sizeof w->id);
        return STORE_OK;
    }
    mem_task *t = mem_find(m, w->update.id);
    if (!t)
        return STORE_NOT_FOUND;
    if (!mem_copy(t, &w->current))
        return STORE_ERROR;
    if (w->kind == STORE_WRITE_RECLAIM)
        return t->status == TASK_IN_PROGRESS ? STORE_OK : STORE_CONFLICT;
    switch (task_decide(t->status, t->msg, w->update.status, w->update.status_msg)) {
    case TASK_REPEAT:
        return STORE_REPEAT;
    case TASK_CONFLICT:
        return STORE_CONFLICT;
    case TASK_APPLY:
        break;
    }
    t->status = w->update.status;
    snprintf(t->msg, sizeof t->msg, "%s", w->update.status_msg);
    t->updated = w->now;
    return STORE_OK;
}

static void mem_submit(store *s, store_write *w)
{
    w->rc = mem_write((mem_store *)s, w);
    w->done(w);
}

static store_rc mem_get(store *s, const char *id, task *out)
{
    mem_task *t = mem_find((mem_store *)s, id);
    memset(out, 0, sizeof *out);
    return !t ? STORE_NOT_FOUND : mem_copy(t, out) ? STORE_OK : STORE_ERROR;
}

static store_rc mem_list(store *s, const store_list_query *q, store_page *out)
{
    (void)s;
    (void)q;
    memset(out, 0, sizeof *out);
    return STORE_OK;
}

static store_rc mem_history(store *s, const char *id, task_history *out)
{
    (void)s;
    (void)id;
    memset(out, 0, sizeof *out);
    return STORE_NOT_FOUND;
}

static store_rc mem_ping(store *s)
{
    (void)s;
    return STORE_OK;
}

static store_rc mem_secret(store *s, uint8_t key[16])
{
    (void)s;
    memset(key, 7, 16);
    return STORE_OK;
}

static void mem_close(store *s)
{
    (void)s;
}

static const store_ops mem_ops = {
    .system = "memory",
    .submit = mem_submit,
    .get_task = mem_get,
    .list_tasks = mem_list,
    .get_history = mem_history,
    .ping = mem_ping,
    .secret = mem_secret,
    .close = mem_close,
};

/* ---- the worker role ---------------------------------------------------- */

static const char WORKER_CONFIG[] =
    "{\"queues\":[{\"name\":\"task1\",\"max_receive_count\":3,\"dead_letter_queue\":\"task1-dlq\"},"
    "{\"name\":\"task1-dlq\"}],"
    "\"handlers\":[{\"queue\":\"task1\",\"handler\":\"noop\",\"timeout\":60}]}";

/* One SQS record's JSON. attrs: its messageAttributes' members. */
static void sqs_record(sbuf *b, const char *message_id, const char *queue, const char *attrs,
                       const char *body)
{
    sbuf_printf(b,
                "{\"messageId\":\"%s\",\"receiptHandle\":\"AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a\","
                "\"body\":",
                message_id);
    sbuf_json_str(b, body);
    sbuf_printf(b,
                ",\"attributes\":{\"ApproximateReceiveCount\":\"2\",\"SentTimestamp\":"
                "\"1648229203000\",\"SenderId\":\"AIDAIENQZJOLO23YVJ4VO\","
                "\"ApproximateFirstReceiveTimestamp\":\"1648229203000\"},"
                "\"messageAttributes\":{%s},\"md5OfBody\":\"e4e68fb7bd0e697a0ae8f1bb342846b3\","
                "\"eventSource\":\"aws:sqs\","
                "\"eventSourceARN\":\"arn:aws:sqs:us-east-1:123456789012:%s\","
                "\"awsRegion\":\"us-east-1\"}",
                attrs, queue);
}

#define SQS_ATTRS(id)                                                                              \
    "\"TaskId\":{\"stringValue\":\"" id "\",\"stringListValues\":[],\"binaryListValues\":[],"      \
    "\"dataType\":\"String\"},\"TaskType\":{\"stringValue\":\"TASK1\",\"dataType\":\"String\"},"   \
    "\"traceparent\":{\"stringValue\":\"" TRACE "\",\"dataType\":\"String\"}"

/*
 * m1 runs TASK_A; m2 names a finished task, m3 a missing one, m4 none (all three spent); m5 runs
 * TASK_C, named inside an SNS envelope; m6 fails TASK_D as a dead letter; m7 comes from a queue
 * the worker does not serve and m8's task was claimed a moment ago (both kept).
 */
static char *sqs_event(void)
{
    sbuf b = {0};
    sbuf_puts(&b, "{\"Records\":[");
    sqs_record(&b, "m1", "task1", SQS_ATTRS(TASK_A), "{\"k\":[1,2,{\"x\":null}]}");
    sbuf_putc(&b, ',');
    sqs_record(&b, "m2", "task1", SQS_ATTRS(TASK_B), "{}");
    sbuf_putc(&b, ',');
    sqs_record(&b, "m3", "task1", SQS_ATTRS(NO_TASK), "not json");
    sbuf_putc(&b, ',');
    sqs_record(&b, "m4", "task1", "", "{\"k\":1}");
    sbuf_putc(&b, ',');
    sqs_record(&b, "m5", "task1", "",
               "{\"Type\":\"Notification\",\"MessageId\":\"22b80b92\",\"TopicArn\":\"arn:aws:sns:"
               "us-east-1:123456789012:tasks\",\"Message\":\"{\\\"n\\\":5}\",\"MessageAttributes\":"
               "{\"TaskId\":{\"Type\":\"String\",\"Value\":\"" TASK_C "\"},\"TaskType\":{\"Type\":"
               "\"String\",\"Value\":\"TASK1\"}}}");
    sbuf_putc(&b, ',');
    sqs_record(&b, "m6", "task1-dlq", SQS_ATTRS(TASK_D), "{}");
    sbuf_putc(&b, ',');
    sqs_record(&b, "m7", "elsewhere", SQS_ATTRS(TASK_E), "{}");
    sbuf_putc(&b, ',');
    sqs_record(&b, "m8", "task1", SQS_ATTRS(TASK_E), "{}");
    sbuf_puts(&b, "]}");
    return sbuf_take(&b, NULL);
}

typedef struct worker_case {
    const config *cfg;
    mem_store store;
    const char *event;
} worker_case;

static void worker_store_reset(mem_store *m)
{
    memset(m, 0, sizeof *m);
    m->base.ops = &mem_ops;
    const struct {
        const char *id;
        task_status status;
        const char *msg;
    } tasks[] = {
        {TASK_A, TASK_CREATED, ""},
        {TASK_B, TASK_COMPLETED, "Task completed"},
        {TASK_C, TASK_CREATED, ""},
        {TASK_D, TASK_IN_PROGRESS, "Task started"},
        {TASK_E, TASK_IN_PROGRESS, "Task started"},
    };
    for (size_t i = 0; i < sizeof tasks / sizeof tasks[0]; i++) {
        mem_task *t = &m->tasks[m->n++];
        snprintf(t->id, sizeof t->id, "%s", tasks[i].id);
        t->status = tasks[i].status;
        snprintf(t->msg, sizeof t->msg, "%s", tasks[i].msg);
        snprintf(t->data, sizeof t->data, "{\"stored\":%zu}", i);
        t->updated = tasks[i].status == TASK_CREATED ? TASK_NULL_TIME : (int64_t)time(NULL);
    }
}

/* The messageIds a worker answer lists, as ",m1,m2,"; false when it is not such an answer. */
static bool kept_ids(const char *response, char *out, size_t outlen)
{
    static const char head[] = "{\"batchItemFailures\":[";
    if (strncmp(response, head, sizeof head - 1) != 0)
        return false;
    const char *p = response + sizeof head - 1;
    snprintf(out, outlen, ",");
    while (*p != ']') {
        char id[16];
        int n = 0;
        if (sscanf(p, "{\"itemIdentifier\":\"%15[^\"]\"}%n", id, &n) != 1 || n == 0)
            return false;
        strncat(out, id, outlen - strlen(out) - 1);
        strncat(out, ",", outlen - strlen(out) - 1);
        p += n;
        if (*p == ',')
            p++;
    }
    return strcmp(p, "]}") == 0;
}

/* The worker role over wc's store, reset, serving queue (NULL: all of them); NULL (the reason
 * said) when it could not be made. */
static role *worker_role(worker_case *wc, const char *queue)
{
    worker_store_reset(&wc->store);
    char err[512] = "";
    role *r = worker_role_new(wc->cfg, &wc->store.base, queue, NULL, err, sizeof err);
    if (!r)
        failed_saying(err, "worker_role_new");
    return r;
}

static bool worker_batch(void *arg)
{
    worker_case *wc = arg;
    role *r = worker_role(wc, NULL);
    if (!r)
        return false;
    role_result res;
    lambda_invocation inv = {.request_id = "8476a536-e9f4-11e8-9739-2dfe598c3fcd"};
    bool done = invoked(r, inv, wc->event, &res);
    r->free(r);
    if (!done)
        return false;
    char kept[128];
    if (!kept_ids(res.response, kept, sizeof kept) || res.response_len != strlen(res.response))
        wrong("answered %s", res.response);
    role_result_clear(&res);

    /* What must come back does; a message that is spent had its task done. */
    if (!strstr(kept, ",m7,") || !strstr(kept, ",m8,"))
        wrong("kept %s: m7 and m8 must come back", kept);
    const struct {
        const char *message, *task;
        task_status done;
    } runs[] = {{"m1", TASK_A, TASK_COMPLETED},
                {"m5", TASK_C, TASK_COMPLETED},
                {"m6", TASK_D, TASK_FAILED}};
    bool all = true;
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        char needle[8];
        snprintf(needle, sizeof needle, ",%s,", runs[i].message);
        const mem_task *t = mem_find(&wc->store, runs[i].task);
        if (strstr(kept, needle)) {
            all = false; /* kept: it comes back, whatever became of its task */
            continue;
        }
        if (t->status != runs[i].done)
            wrong("%s spent with task %s %s", runs[i].message, t->id, task_status_name(t->status));
    }
    if (strcmp(mem_find(&wc->store, TASK_D)->msg, "moved to dead-letter queue task1-dlq after 3 "
                                                  "receives") != 0 &&
        !strstr(kept, ",m6,"))
        wrong("dead letter failed with \"%s\"", mem_find(&wc->store, TASK_D)->msg);
    /* only the two must come back when nothing failed */
    return all && strcmp(kept, ",m7,m8,") == 0;
}

static bool worker_refusals(void *arg)
{
    worker_case *wc = arg;
    role *r = worker_role(wc, "task1");
    if (!r)
        return false;
    static const refusal bad[] = {
        {"{\"Records\":", "not JSON"},
        {"{\"records\":[]}", "no Records array"},
        {"{\"Records\":[{\"messageId\":\"a\",\"body\":\"{}\"},7]}", "Records[1] is not an object"},
        {"{\"Records\":[{\"body\":\"{}\"}]}", "Records[0] has no messageId"},
    };
    bool ok = true;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        lambda_invocation inv = {.event = (char *)bad[i].event};
        inv.event_len = strlen(bad[i].event);
        role_result res = {0};
        r->invoke(r, &inv, &res);
        if (res.response)
            wrong("%s answered %s", bad[i].event, res.response);
        if (strcmp(res.error_type, "Runtime.InvalidEvent") == 0 &&
            strstr(res.error_message, bad[i].why))
            ;
        else if (said(res.error_type) && said(res.error_message))
            ok = false;
        else
            wrong("%s refused with %s: %s", bad[i].event, res.error_type, res.error_message);
        role_result_clear(&res);
    }
    /* a named queue takes every record as its own: this one names no task, and is spent */
    lambda_invocation inv = {.event =
                                 (char *)"{\"Records\":[{\"messageId\":\"x\",\"body\":\"{}\","
                                         "\"eventSourceARN\":\"arn:aws:sqs:us-east-1:1:other\"}]}"};
    inv.event_len = strlen(inv.event);
    role_result res = {0};
    r->invoke(r, &inv, &res);
    if (res.response) {
        bool spent = strcmp(res.response, "{\"batchItemFailures\":[]}") == 0;
        if (!spent && strcmp(res.response, "{\"batchItemFailures\":[{\"itemIdentifier\":\"x\"}]}"))
            wrong("a message of the named queue answered %s", res.response);
        ok = ok && spent; /* kept: it comes back, which is right only for lack of memory */
    } else if (said(res.error_type) && said(res.error_message)) {
        ok = false;
    } else {
        wrong("a message of the named queue failed without a reason");
    }
    role_result_clear(&res);
    r->free(r);
    return ok;
}

static void test_worker_role(void **state)
{
    (void)state;
    config cfg;
    assert_true(config_defaults(&cfg));
    char err[256] = "";
    if (!config_load_text(&cfg, WORKER_CONFIG, "worker config", err, sizeof err))
        wrong("%s", err);
    worker_case wc = {.cfg = &cfg};
    char *event = sqs_event();
    assert_non_null(event);
    wc.event = event;
    assert_true(oom_sweep("worker role batch", worker_batch, &wc) > 50);
    oom_sweep("worker role refusals", worker_refusals, &wc);
    free(event);
    config_free(&cfg);
}

/* ---- the API role --------------------------------------------------------- */

typedef struct api_case {
    role *role;
    mem_store *store;
} api_case;

/* Invoke the API role with event; its response, or NULL when the invocation failed. */
static char *api_invoke(const api_case *ac, const char *event)
{
    lambda_invocation inv = {.request_id = "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
                             .trace_id = "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1"};
    role_result res;
    invoked(ac->role, inv, event, &res);
    return res.response;
}

/* Whether an API answer is status with every one of the texts in its (JSON-escaped) body. */
static bool answered(const char *response, int status, const char *text, const char *more)
{
    char head[32];
    snprintf(head, sizeof head, "{\"statusCode\":%d,", status);
    return response && strncmp(response, head, strlen(head)) == 0 && strstr(response, text) &&
           (!more || strstr(response, more));
}

static bool api_requests(void *arg)
{
    const api_case *ac = arg;
    worker_store_reset(ac->store);
    bool ok = true;

    char *r = api_invoke(ac, "{\"version\":\"2.0\",\"rawPath\":\"/tasks/" TASK_D "\","
                             "\"requestContext\":{\"http\":{\"method\":\"GET\"},"
                             "\"requestId\":\"r1\"},\"headers\":{\"accept\":\"*/*\"}}");
    if (!answered(r, 200, TASK_D, "IN_PROGRESS")) {
        if (answered(r, 200, "", NULL))
            wrong("a task read wrong: %s", r);
        ok = false; /* a 500, or a failed invocation */
    }
    free(r);

    r = api_invoke(ac, "{\"httpMethod\":\"POST\",\"path\":\"/tasks\",\"headers\":{\"Content-Type\":"
                       "\"application/json\"},\"requestContext\":{\"requestId\":\"r2\"},"
                       "\"body\":\"{\\\"task_type\\\":\\\"TASK1\\\",\\\"data\\\":{\\\"x\\\":[1,"
                       "\\\"y\\\"]}}\",\"isBase64Encoded\":false}");
    if (!answered(r, 201, "0190f3c2-7b1e-7c3a-9d2e-000000000006", "\"Location\":")) {
        if (answered(r, 201, "", NULL))
            wrong("a task created wrong: %s", r);
        ok = false;
    }
    free(r);

    r = api_invoke(ac, "{\"httpMethod\":\"GET\",\"path\":\"/tasks/" NO_TASK "\","
                       "\"requestContext\":{}}");
    if (!answered(r, 404, "Task not found", NULL)) {
        /* without memory: a 500, or the 404 without its detail */
        if (r && !answered(r, 500, "", NULL) && !answered(r, 404, "\"body\":\"\"", NULL))
            wrong("a missing task answered %s", r);
        ok = false;
    }
    free(r);
    return ok;
}

static void test_api_role(void **state)
{
    (void)state;
    config cfg;
    assert_true(config_defaults(&cfg));
    mem_store m;
    worker_store_reset(&m);
    char err[256] = "";
    api_case ac = {.role = api_role_new(&m.base, &cfg, NULL, err, sizeof err), .store = &m};
    if (!ac.role)
        fail_msg("api_role_new: %s", err);
    assert_true(oom_sweep("api role", api_requests, &ac) > 30);
    ac.role->free(ac.role);
    config_free(&cfg);
}

/* ---- the DynamoDB store, past its deadline ------------------------------ */

/* The DynamoDB store of table "tasks" through c; NULL (the reason said) when it could not be
 * opened. */
static store *dynamodb_open(aws_client *c)
{
    char err[256] = "";
    dynamodb_store_options o = {.table = "tasks", .client = c, .retention_grace = 3600};
    store *s = dynamodb_store_open(&o, err, sizeof err);
    if (!s)
        failed_saying(err, "dynamodb_store_open");
    return s;
}

static bool dynamodb_expired(void *arg)
{
    aws_client *c = arg;
    aws_set_deadline(PAST);
    store *s = dynamodb_open(c);
    if (!s) {
        aws_set_deadline(0);
        return false;
    }
    store_rc rc[12];
    int n = 0;
    int64_t now = 1648229203;
    char id[37];
    store_new_task t = {.task_type = "TASK1",
                        .data = "{\"a\":[1,\"x\",{\"b\":null}],\"c\":true}",
                        .ttl = now + 60,
                        .trace = TRACE};
    rc[n++] = store_create_task(s, &t, now, id);
    t.idempotency_key = "key-1";
    rc[n++] = store_create_task(s, &t, now, id);
    t.idempotency_key = "\xff\xfe key";
    t.data_image = "{\"M\":{}}";
    t.data_size = 3;
    rc[n++] = store_create_task(s, &t, now, id);
    store_update u = {
        .id = TASK_A, .status = TASK_COMPLETED, .status_msg = "done", .result = "{\"r\":[1,2]}"};
    rc[n++] = store_update_task(s, &u, now, NULL);
    store_write w = {.kind = STORE_WRITE_RECLAIM,
                     .now = now,
                     .update = {.id = TASK_A, .status = TASK_IN_PROGRESS, .status_msg = "again"}};
    rc[n++] = store_write_wait(s, &w);
    task_clear(&w.current);
    task got;
    rc[n++] = store_get_task(s, TASK_B, &got);
    task_clear(&got);
    store_page page;
    store_list_query lq = {
        .before_id = TASK_C, .status = "CREATED", .task_type = "TASK1", .limit = 5};
    rc[n++] = store_list_tasks(s, &lq, &page);
    store_page_free(&page);
    task_history h;
    rc[n++] = store_get_history(s, TASK_D, &h);
    task_history_clear(&h);
    rc[n++] = store_ping(s);
    uint8_t key[16];
    rc[n++] = store_secret(s, key);
    store_rc not_a_task = store_get_task(s, "idem#key-1", &got);
    task_clear(&got);
    store_close(s);
    aws_set_deadline(0);
    if (not_a_task != STORE_NOT_FOUND)
        wrong("a key item read as a task: %s", store_rc_name(not_a_task));
    bool ok = true;
    for (int i = 0; i < n; i++) {
        if (rc[i] == STORE_BUSY) /* a timeout: try again later */
            continue;
        if (rc[i] != STORE_ERROR)
            wrong("operation %d: %s", i, store_rc_name(rc[i]));
        ok = false;
    }
    return ok;
}

static void test_dynamodb_expired(void **state)
{
    (void)state;
    aws_client *c = new_client(AWS_DYNAMODB);
    assert_true(oom_sweep("dynamodb store past its deadline", dynamodb_expired, c) > 20);
    aws_client_free(c);
}

/* ---- answers from a server in this process ------------------------------- */

/*
 * A small HTTP/1.1 server on 127.0.0.1 (keep-alive; Content-Length bodies) that answers each
 * request with what a handler computes, head and body in one write: with the two apart, the
 * body would wait for the client's delayed acknowledgement of the head, some 40 ms a request,
 * which thousands of runs cannot afford.
 */
typedef struct request {
    const char *path; /* the request target */
    const char *head; /* the header lines */
    const char *body; /* NUL-terminated */
} request;

typedef struct reply {
    int status;
    const char *headers; /* extra lines, each ending "\r\n"; NULL: none */
    const char *body;
} reply;

typedef void answer_fn(void *arg, const request *rq, reply *out);

typedef struct conn conn;
typedef struct server {
    int lfd, port;
    answer_fn *answer;
    void *arg;
    pthread_t acceptor;
    pthread_mutex_t mu; /* guards the fields below */
    pthread_cond_t gone;
    conn *conns; /* open connections */
    char last_body[4096];
} server;

struct conn {
    server *s;
    int fd;
    conn *next;
};

/* The value of header name in a head (NUL-terminated lines), copied into out; "" when absent. */
static void header_value(const char *head, const char *name, char *out, size_t outlen)
{
    size_t n = strlen(name);
    out[0] = '\0';
    for (const char *line = head; line && *line;
         line = strstr(line, "\r\n") ? strstr(line, "\r\n") + 2 : NULL) {
        if (strncasecmp(line, name, n) != 0 || line[n] != ':')
            continue;
        const char *v = line + n + 1, *end = strstr(v, "\r\n");
        while (*v == ' ')
            v++;
        size_t len = end ? (size_t)(end - v) : strlen(v);
        snprintf(out, outlen, "%.*s", (int)len, v);
        return;
    }
}

static bool send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k <= 0)
            return false;
        p += k;
        n -= (size_t)k;
    }
    return true;
}

/* Serve one connection's requests until it closes. */
static void *serve(void *arg)
{
    conn *c = arg;
    server *s = c->s;
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap + 1);
    for (bool open = buf != NULL; open;) {
        /* a head, then its body */
        char *end = NULL;
        size_t head_len = 0, body_len = 0;
        for (;;) {
            buf[len] = '\0';
            if (!end && (end = strstr(buf, "\r\n\r\n"))) {
                head_len = (size_t)(end - buf) + 4;
                char cl[32];
                end[2] = '\0';
                header_value(strstr(buf, "\r\n") + 2, "Content-Length", cl, sizeof cl);
                end[2] = '\r';
                body_len = (size_t)strtoul(cl, NULL, 10);
            }
            if (end && len >= head_len + body_len)
                break;
            if (len == cap) {
                open = false;
                break;
            }
            ssize_t k = recv(c->fd, buf + len, cap - len, 0);
            if (k <= 0) {
                open = false;
                break;
            }
            len += (size_t)k;
        }
        if (!open)
            break;
        char *body = malloc(body_len + 1);
        if (!body)
            break;
        memcpy(body, buf + head_len, body_len);
        body[body_len] = '\0';
        end[2] = '\0'; /* the head: the request line and the header lines */
        char *line_end = strstr(buf, "\r\n");
        *line_end = '\0';
        char path[512] = "";
        sscanf(buf, "%*s %511s", path);
        request rq = {.path = path, .head = line_end + 2, .body = body};
        reply rp = {.status = 200, .body = ""};
        /* the answer is made under the lock: a handler may answer from a buffer of its own */
        pthread_mutex_lock(&s->mu);
        snprintf(s->last_body, sizeof s->last_body, "%s", body);
        s->answer(s->arg, &rq, &rp);
        size_t n = strlen(rp.body) + (rp.headers ? strlen(rp.headers) : 0) + 128;
        char *out = malloc(n);
        int k = out ? snprintf(out, n, "HTTP/1.1 %d Answer\r\nContent-Length: %zu\r\n%s\r\n%s",
                               rp.status, strlen(rp.body), rp.headers ? rp.headers : "", rp.body)
                    : -1;
        pthread_mutex_unlock(&s->mu);
        open = k > 0 && send_all(c->fd, out, (size_t)k);
        free(out);
        free(body);
        len -= head_len + body_len;
        memmove(buf, buf + head_len + body_len, len);
    }
    free(buf);
    pthread_mutex_lock(&s->mu);
    for (conn **p = &s->conns; *p; p = &(*p)->next)
        if (*p == c) {
            *p = c->next;
            break;
        }
    close(c->fd);
    free(c);
    pthread_cond_broadcast(&s->gone);
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static void *accept_loop(void *arg)
{
    server *s = arg;
    for (;;) {
        int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return NULL; /* shut down */
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conn *c = calloc(1, sizeof *c);
        pthread_t t;
        if (!c) {
            close(fd);
            continue;
        }
        *c = (conn){.s = s, .fd = fd};
        pthread_mutex_lock(&s->mu);
        c->next = s->conns;
        s->conns = c;
        pthread_mutex_unlock(&s->mu);
        if (pthread_create(&t, NULL, serve, c) == 0) {
            pthread_detach(t);
        } else {
            pthread_mutex_lock(&s->mu);
            s->conns = c->next;
            pthread_mutex_unlock(&s->mu);
            close(fd);
            free(c);
        }
    }
}

/* A server answering with answer(arg, ...), and var, an endpoint variable (or
 * AWS_LAMBDA_RUNTIME_API, host:port), pointed at it. */
static server *server_start(answer_fn *answer, void *arg, const char *var)
{
    server *s = calloc(1, sizeof *s);
    assert_non_null(s);
    s->answer = answer;
    s->arg = arg;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->gone, NULL);
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    assert_true(s->lfd >= 0 && bind(s->lfd, (struct sockaddr *)&a, sizeof a) == 0 &&
                listen(s->lfd, 64) == 0 && getsockname(s->lfd, (struct sockaddr *)&a, &alen) == 0);
    s->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&s->acceptor, NULL, accept_loop, s), 0);
    char url[64];
    if (strcmp(var, "AWS_LAMBDA_RUNTIME_API") == 0)
        snprintf(url, sizeof url, "127.0.0.1:%d", s->port);
    else
        snprintf(url, sizeof url, "http://127.0.0.1:%d", s->port);
    setenv(var, url, 1);
    return s;
}

/* The body of the last request it received, copied into out. */
static void server_last_body(server *s, char *out, size_t outlen)
{
    pthread_mutex_lock(&s->mu);
    snprintf(out, outlen, "%s", s->last_body);
    pthread_mutex_unlock(&s->mu);
}

static void server_stop(server *s)
{
    shutdown(s->lfd, SHUT_RDWR); /* accept() returns */
    pthread_join(s->acceptor, NULL);
    close(s->lfd);
    pthread_mutex_lock(&s->mu);
    for (conn *c = s->conns; c; c = c->next)
        shutdown(c->fd, SHUT_RDWR);
    while (s->conns)
        pthread_cond_wait(&s->gone, &s->mu);
    pthread_mutex_unlock(&s->mu);
    pthread_cond_destroy(&s->gone);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* -- SNS -- */

/* A PublishBatch of messages 0..3: 0 and 2 published, 1 failed, 3 not mentioned. */
static const char SNS_REPLY[] =
    "<PublishBatchResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\">\n"
    " <PublishBatchResult>\n  <Failed>\n   <member><Code>InternalError</Code><Id>1</Id>"
    "<Message>entry &lt;1&gt; failed &#x263A;</Message><SenderFault>false</SenderFault></member>\n"
    "  </Failed>\n  <Successful>\n   <member><Id>0</Id><MessageId>msg-0</MessageId></member>\n"
    "   <member><Id>7</Id><MessageId>not-ours</MessageId></member>\n"
    "   <member><MessageId>msg-2</MessageId><Id> 2 </Id></member>\n  </Successful>\n"
    " </PublishBatchResult>\n <ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata>\n"
    "</PublishBatchResponse>\n";

static const char SNS_NOT_FOUND[] =
    "<ErrorResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\">\n  <Error><Type>Sender"
    "</Type><Code>NotFound</Code><Message>Topic &quot;missing&quot; does not exist</Message>"
    "</Error>\n  <RequestId>r-2</RequestId>\n</ErrorResponse>\n";

static void sns_answer(void *arg, const request *rq, reply *out)
{
    (void)arg;
    bool missing = strstr(rq->body, "missing") != NULL;
    out->status = missing ? 404 : 200;
    out->body = missing ? SNS_NOT_FOUND : SNS_REPLY;
}

static bool sns_replies(void *arg)
{
    (void)arg;
    char err[256];
    aws_client *c = aws_client_new(AWS_SNS, err, sizeof err);
    if (!c)
        return false;
    static const sns_message m[] = {{"{\"n\":0}", ATTRS(TASK_A)},
                                    {"{\"n\":1}", ATTRS(TASK_B)},
                                    {"{\"n\":2}", NULL},
                                    {"{\"n\":3}", ATTRS(TASK_C)}};
    sns_status st[4];
    if (sns_publish_batch(c, SNS_TOPIC, m, 4, 0, st))
        wrong("a batch with failures published");
    bool ok = true;
    for (size_t i = 0; i < 4; i++)
        if (!st[i].ok && (!said(st[i].code) || !said(st[i].message)))
            wrong("message %zu failed without a code or message", i);
    if ((st[0].ok && strcmp(st[0].message_id, "msg-0") != 0) ||
        (st[2].ok && strcmp(st[2].message_id, "msg-2") != 0) || st[1].ok || st[3].ok)
        wrong("read as %s %s %d %d", st[0].message_id, st[2].message_id, st[1].ok, st[3].ok);
    if (strcmp(st[1].code, "InternalError") == 0 &&
        (st[1].sender_fault || strcmp(st[1].message, "entry <1> failed \xe2\x98\xba") != 0))
        wrong("message 1 failed as %s", st[1].message);
    /* a message that could not be sent, or a reply that could not be read, fails them */
    ok = st[0].ok && st[2].ok && strcmp(st[1].code, "InternalError") == 0 &&
         strcmp(st[3].code, SNS_NO_OUTCOME) == 0;

    /* a topic that does not exist fails the whole call */
    if (sns_publish_batch(c, SNS_MISSING, m, 2, 0, st))
        wrong("published to a missing topic");
    for (size_t i = 0; i < 2; i++) {
        if (st[i].ok || !said(st[i].code) || !said(st[i].message))
            wrong("message %zu: %s", i, st[i].code);
        if (strcmp(st[i].code, "NotFound") != 0 || !st[i].sender_fault ||
            strncmp(st[i].message, "Topic \"missing\" does not exist (HTTP 404, 1 attempt)", 52))
            ok = false; /* the answer could not be read */
    }
    aws_client_free(c);
    return ok;
}

static void test_sns_replies(void **state)
{
    (void)state;
    server *h = server_start(sns_answer, NULL, "AWS_ENDPOINT_URL_SNS");
    assert_true(oom_sweep("sns replies and errors", sns_replies, NULL) > 20);
    unsetenv("AWS_ENDPOINT_URL_SNS");
    server_stop(h);
}

/* -- the publish role, published -- */

typedef struct sns_seen {
    atomic_uint tasks; /* bit i: TASK_<i> published (A = 0) */
} sns_seen;

/* Answer Successful for each entry of the form, noting its task. */
static void sns_accept(void *arg, const request *rq, reply *out)
{
    sns_seen *seen = arg;
    static char body[4096];
    int n = snprintf(body, sizeof body, "<PublishBatchResponse><PublishBatchResult><Successful>");
    for (int k = 1; k <= SNS_BATCH_MAX; k++) {
        char key[96];
        snprintf(key, sizeof key, "PublishBatchRequestEntries.member.%d.Id=", k);
        const char *id = strstr(rq->body, key);
        if (!id)
            break;
        int v = atoi(id + strlen(key));
        n += snprintf(body + n, sizeof body - (size_t)n,
                      "<member><Id>%d</Id><MessageId>m-%d</MessageId></member>", v, v);
    }
    snprintf(body + n, sizeof body - (size_t)n,
             "</Successful><Failed/></PublishBatchResult></PublishBatchResponse>");
    static const char *const ids[] = {TASK_A, TASK_B, TASK_C, TASK_D, TASK_E};
    for (unsigned i = 0; i < 5; i++)
        if (strstr(rq->body, ids[i]))
            atomic_fetch_or(&seen->tasks, 1u << i);
    out->status = 200;
    out->body = body; /* copied into the answer while the server's lock is held */
}

typedef struct published_case {
    publish_case pc;
    sns_seen *seen;
} published_case;

static bool publish_published(void *arg)
{
    published_case *c = arg;
    atomic_store(&c->seen->tasks, 0);
    role *r = publish_role(&c->pc);
    if (!r)
        return false;
    role_result res;
    bool done = invoked(r, (lambda_invocation){.request_id = "req-2"}, c->pc.event, &res);
    r->free(r);
    if (!done)
        return false;
    int at = failed_record(res.response);
    if (at == -2)
        wrong("answered %s", res.response);
    role_result_clear(&res);
    /* The INSERTs are records 2 (TASK_B), 3 (TASK_C) and 5 (TASK_E): each before the record the
     * retry starts at (all when none) must have been published. */
    unsigned seen = atomic_load(&c->seen->tasks);
    static const struct {
        int record;
        unsigned task;
    } inserts[] = {{2, 1u << 1}, {3, 1u << 2}, {5, 1u << 4}};
    for (size_t i = 0; i < 3; i++)
        if ((at == -1 || inserts[i].record < at) && !(seen & inserts[i].task))
            wrong("record %d's task neither published nor retried (answered at %d)",
                  inserts[i].record, at);
    if (seen & (1u << 0 | 1u << 3))
        wrong("a MODIFY or REMOVE published");
    return at == -1;
}

/* A fake SNS that takes every message (sns_accept()), a client of it, and the defaults. */
typedef struct sns_stage {
    sns_seen seen;
    server *h;
    config cfg;
    aws_client *client;
} sns_stage;

static void sns_stage_start(sns_stage *st)
{
    atomic_init(&st->seen.tasks, 0);
    st->h = server_start(sns_accept, &st->seen, "AWS_ENDPOINT_URL_SNS");
    assert_true(config_defaults(&st->cfg));
    st->client = new_client(AWS_SNS);
    unsetenv("AWS_ENDPOINT_URL_SNS");
}

static void sns_stage_stop(sns_stage *st)
{
    aws_client_free(st->client);
    config_free(&st->cfg);
    server_stop(st->h);
}

static void test_publish_published(void **state)
{
    (void)state;
    sns_stage st;
    sns_stage_start(&st);
    char *event = stream_event();
    assert_non_null(event);
    published_case pc = {{.cfg = &st.cfg, .sns = st.client, .event = event}, &st.seen};
    assert_true(oom_sweep("publish role, published", publish_published, &pc) > 50);
    free(event);
    sns_stage_stop(&st);
}

/* -- the recover role -- */

/* The page of m's tasks that q asks for, newest first (every task here is a TASK1). */
static store_rc mem_list_of(store *s, const store_list_query *q, store_page *out)
{
    mem_store *m = (mem_store *)s;
    memset(out, 0, sizeof *out);
    if (q->task_type && strcmp(q->task_type, "TASK1") != 0)
        return STORE_OK;
    if (!(out->tasks = calloc((size_t)q->limit, sizeof *out->tasks)))
        return STORE_ERROR;
    for (size_t i = m->n; i-- > 0;) {
        const mem_task *t = &m->tasks[i];
        if ((q->before_id && strcmp(t->id, q->before_id) >= 0) ||
            (q->status && strcmp(q->status, task_status_name(t->status)) != 0))
            continue;
        if (out->count == (size_t)q->limit) {
            out->more = 1;
            break;
        }
        if (!mem_copy(t, &out->tasks[out->count])) {
            store_page_free(out);
            return STORE_ERROR;
        }
        out->count++;
    }
    return STORE_OK;
}

typedef struct recover_case {
    const config *cfg;
    aws_client *sns;
    sns_seen *seen;
    const char *event; /* one publish-failures message, "m1", whose window holds TASK_A..E */
} recover_case;

/* A report of tasks stranded CREATED: those still CREATED (A, C) are published again, or the
 * message comes back; a message spent with one of them unpublished would strand it for good. */
static bool recover_published(void *arg)
{
    recover_case *c = arg;
    atomic_store(&c->seen->tasks, 0);
    mem_store m;
    worker_store_reset(&m); /* A and C CREATED, B COMPLETED, D and E IN_PROGRESS */
    store_ops ops = mem_ops;
    ops.list_tasks = mem_list_of;
    m.base.ops = &ops;
    char err[256] = "";
    role *r = recover_role_new(c->cfg, c->sns, SNS_TOPIC, &m.base, NULL, err, sizeof err);
    if (!r)
        return failed_saying(err, "recover_role_new");
    role_result res;
    bool done = invoked(r, (lambda_invocation){.request_id = "req-3"}, c->event, &res);
    r->free(r);
    if (!done)
        return false;
    bool spent = strcmp(res.response, "{\"batchItemFailures\":[]}") == 0;
    if (!spent && strcmp(res.response, "{\"batchItemFailures\":[{\"itemIdentifier\":\"m1\"}]}"))
        wrong("answered %s", res.response);
    role_result_clear(&res);
    unsigned seen = atomic_load(&c->seen->tasks);
    if (seen & (1u << 1 | 1u << 3 | 1u << 4))
        wrong("a task no longer CREATED published (seen %#x)", seen);
    if (spent && seen != (1u << 0 | 1u << 2))
        wrong("the report spent with a stranded task unpublished (seen %#x)", seen);
    return spent;
}

static void test_recover_role(void **state)
{
    (void)state;
    sns_stage st;
    sns_stage_start(&st);
    /* TASK_A..E's ids carry 2024-07-27T10:35:27.390Z: the window is that second, widened */
    static const char event[] =
        "{\"Records\":[{\"messageId\":\"m1\",\"eventSource\":\"aws:sqs\",\"body\":"
        "\"{\\\"DDBStreamBatchInfo\\\":{"
        "\\\"approximateArrivalOfFirstRecord\\\":\\\"2024-07-27T10:35:27Z\\\","
        "\\\"approximateArrivalOfLastRecord\\\":\\\"2024-07-27T10:35:27Z\\\"}}\"}]}";
    recover_case rc = {&st.cfg, st.client, &st.seen, event};
    assert_true(oom_sweep("recover role", recover_published, &rc) > 20);
    sns_stage_stop(&st);
}

/* -- DynamoDB -- */

#define DDB_TYPE "com.amazonaws.dynamodb.v20120810#"
#define HISTORY_A                                                                                  \
    "\"history\":{\"L\":[{\"M\":{\"s\":{\"S\":\"CREATED\"},\"m\":{\"S\":\"\"},\"t\":{\"N\":"       \
    "\"1648229203\"}}},{\"M\":{\"s\":{\"S\":\"IN_PROGRESS\"},\"m\":{\"S\":\"Task started\"},"      \
    "\"t\":{\"N\":\"1648229210\"}}}]}"
#define ITEM_A                                                                                     \
    "{\"id\":{\"S\":\"" TASK_A "\"},\"task_type\":{\"S\":\"TASK1\"},\"status\":{\"S\":"            \
    "\"IN_PROGRESS\"},\"status_msg\":{\"S\":\"Task started\"},\"created_time\":{\"N\":"            \
    "\"1648229203\"},\"updated_time\":{\"N\":\"1648229210\"},\"task_ttl\":{\"N\":\"1648232803\"}," \
    "\"data\":{\"M\":{\"k\":{\"L\":[{\"N\":\"1\"},{\"S\":\"x\"},{\"NULL\":true}]},\"b\":{"         \
    "\"BOOL\":true}}},\"result\":{\"M\":{\"r\":{\"N\":\"2.5\"}}},\"trace\":{\"S\":\"" TRACE        \
    "\"},\"list_all\":{\"S\":\"tasks\"},\"type_status\":{\"S\":\"TASK1#IN_PROGRESS\"}," HISTORY_A  \
    ",\"history_dropped\":{\"N\":\"0\"}}"
#define ITEM_OF(id, status)                                                                        \
    "{\"id\":{\"S\":\"" id "\"},\"task_type\":{\"S\":\"TASK1\"},\"status\":{\"S\":\"" status       \
    "\"},\"status_msg\":{\"S\":\"\"},\"created_time\":{\"N\":\"1648229203\"},\"data\":{\"M\":{}}}"

/* What the fake DynamoDB answers: status and body by operation and what the request names. */
static void ddb_answer(void *arg, const request *rq, reply *out)
{
    (void)arg;
    char target[96] = "";
    header_value(rq->head, "X-Amz-Target", target, sizeof target);
    const char *op = strchr(target, '.') ? strchr(target, '.') + 1 : "";
    const char *b = rq->body;
    out->status = 200;
    out->body = "{}";
    if (strcmp(op, "GetItem") == 0) {
        if (strstr(b, TASK_A))
            out->body = "{\"Item\":" ITEM_A "}";
        else if (strstr(b, TASK_B))
            out->body = "{\"Item\":" ITEM_OF(TASK_B, "CREATED") "}";
        else if (strstr(b, TASK_D))
            out->body = "{\"Item\":" ITEM_OF(TASK_D, "IN_PROGRESS") "}";
        else if (strstr(b, TASK_C)) /* a duplicate's task: still there */
            out->body = "{\"Item\":" ITEM_OF(TASK_C, "CREATED") "}";
        else if (strstr(b, "meta#secret"))
            out->body = "{\"Item\":{\"id\":{\"S\":\"meta#secret\"},\"value\":{\"S\":"
                        "\"000102030405060708090a0b0c0d0e0f\"}}}";
        else if (strstr(b, "idem#key-1"))
            out->body = "{\"Item\":{\"id\":{\"S\":\"idem#key-1\"},\"task_id\":{\"S\":\"" TASK_C
                        "\"},\"created_time\":{\"N\":\"1648229203\"},\"ttl\":{\"N\":"
                        "\"4102444800\"}}}";
    } else if (strcmp(op, "UpdateItem") == 0) {
        if (strstr(b, "\":ip\""))
            out->body = "{\"Attributes\":{" HISTORY_A "}}";
        else if (strstr(b, TASK_A))
            out->body = "{\"Attributes\":" ITEM_A "}";
        else {
            out->status = 400;
            out->body = "{\"__type\":\"" DDB_TYPE "ConditionalCheckFailedException\","
                        "\"message\":\"The conditional request failed\",\"Item\":" ITEM_OF(
                            TASK_D, "COMPLETED") "}";
        }
    } else if (strcmp(op, "Query") == 0) {
        out->body =
            strstr(b, "ExclusiveStartKey")
                ? "{\"Items\":[" ITEM_OF(TASK_C, "CREATED") "," ITEM_OF(TASK_B,
                                                                        "CREATED") "],\"Count\":2}"
                : "{\"Items\":[" ITEM_OF(
                      TASK_E,
                      "CREATED") ",{\"id\":{\"S\":"
                                 "\"idem#x\"}}],\"Count\":2,\"LastEvaluatedKey\":{\"id\":{\"S\":"
                                 "\"" TASK_E "\"},\"type_status\":{\"S\":\"TASK1#CREATED\"}}}";
    } else if (strcmp(op, "TransactWriteItems") == 0) {
        out->status = 400;
        out->body = "{\"__type\":\"" DDB_TYPE "TransactionCanceledException\",\"message\":"
                    "\"Transaction cancelled, please refer cancellation reasons for specific "
                    "reasons [None, ConditionalCheckFailed]\",\"CancellationReasons\":[{\"Code\":"
                    "\"None\"},{\"Code\":\"ConditionalCheckFailed\",\"Message\":\"The "
                    "conditional request failed\",\"Item\":{\"id\":{\"S\":\"idem#key-1\"},"
                    "\"task_id\":{\"S\":\"" TASK_C "\"},\"ttl\":{\"N\":\"4102444800\"}}}]}";
    } else if (strcmp(op, "PutItem") != 0) {
        out->status = 400;
        out->body = "{\"__type\":\"" DDB_TYPE "ValidationException\",\"message\":\"what?\"}";
    }
}

/* A wrong result of a store call: fails the scenario when it is STORE_ERROR (reported),
 * stops the sweep otherwise. */
static bool store_ok(store_rc got, store_rc want, const char *what)
{
    if (got == want)
        return true;
    if (got != STORE_ERROR)
        wrong("%s: %s, not %s", what, store_rc_name(got), store_rc_name(want));
    return false;
}

static bool dynamodb_answers(void *arg)
{
    store *s = dynamodb_open(arg);
    if (!s)
        return false;
    int64_t now = 1648229300;
    bool ok = true;

    task t;
    if (store_ok(store_get_task(s, TASK_A, &t), STORE_OK, "get A")) {
        if (t.status != TASK_IN_PROGRESS || strcmp(t.status_msg, "Task started") != 0 ||
            t.created_time != 1648229203 || t.updated_time != 1648229210 || t.ttl != 1648232803 ||
            strcmp(t.task_type, "TASK1") != 0 ||
            strcmp(t.data, "{\"k\":[1,\"x\",null],\"b\":true}") != 0 ||
            strcmp(t.result, "{\"r\":2.5}") != 0 || strcmp(t.trace, TRACE) != 0)
            wrong("task A read as %s %s %s", t.status_msg, t.data, t.result);
    } else {
        ok = false;
    }
    task_clear(&t);

    /* A's facts are known now (unless the read failed): one UpdateItem */
    task before;
    store_update u = {
        .id = TASK_A, .status = TASK_COMPLETED, .status_msg = "done", .result = "{\"r\":[1,2]}"};
    if (store_ok(store_update_task(s, &u, now, &before), STORE_OK, "complete A"))
        ok = ok && before.status == TASK_IN_PROGRESS && strcmp(before.id, TASK_A) == 0;
    else
        ok = false;
    task_clear(&before);
    /* B is CREATED: completing it conflicts on the read */
    u = (store_update){.id = TASK_B, .status = TASK_COMPLETED, .status_msg = "done"};
    if (store_ok(store_update_task(s, &u, now, &before), STORE_CONFLICT, "complete B"))
        ok = ok && before.status == TASK_CREATED && strcmp(before.id, TASK_B) == 0;
    else
        ok = false;
    task_clear(&before);
    /* D reads IN_PROGRESS, but the update finds it COMPLETED */
    u = (store_update){.id = TASK_D, .status = TASK_FAILED, .status_msg = "boom"};
    if (store_ok(store_update_task(s, &u, now, &before), STORE_CONFLICT, "fail D"))
        ok = ok && before.status == TASK_COMPLETED;
    else
        ok = false;
    task_clear(&before);

    store_write w = {.kind = STORE_WRITE_RECLAIM,
                     .now = now,
                     .update = {.id = TASK_A, .status = TASK_IN_PROGRESS, .status_msg = "again"}};
    ok = store_ok(store_write_wait(s, &w), STORE_OK, "reclaim A") && ok;
    task_clear(&w.current);

    task_history h;
    if (store_ok(store_get_history(s, TASK_A, &h), STORE_OK, "history of A")) {
        if (h.count != 2 || h.truncated || h.entries[1].status != TASK_IN_PROGRESS ||
            strcmp(h.entries[1].status_msg, "Task started") != 0 || h.entries[1].time != 1648229210)
            wrong("history of A read wrong");
    } else {
        ok = false;
    }
    task_history_clear(&h);

    store_page page;
    store_list_query q = {.status = "CREATED", .task_type = "TASK1", .limit = 2};
    if (store_ok(store_list_tasks(s, &q, &page), STORE_OK, "list")) {
        if (page.count != 2 || !page.more || strcmp(page.tasks[0].id, TASK_E) != 0 ||
            strcmp(page.tasks[1].id, TASK_C) != 0 || page.tasks[0].data)
            wrong("page read wrong");
    } else {
        ok = false;
    }
    store_page_free(&page);

    char id[37] = "";
    store_new_task nt = {.task_type = "TASK1", .data = "{\"a\":1}", .ttl = TASK_NULL_TIME};
    if (store_ok(store_create_task(s, &nt, now, id), STORE_OK, "create")) {
        if (strlen(id) != TASK_ID_LEN)
            wrong("created as %s", id);
    } else {
        ok = false;
    }
    nt.idempotency_key = "key-1";
    if (store_ok(store_create_task(s, &nt, now, id), STORE_DUPLICATE, "create again")) {
        if (strcmp(id, TASK_C) != 0)
            wrong("a duplicate of %s", id);
    } else {
        ok = false;
    }

    uint8_t key[16];
    if (store_ok(store_secret(s, key), STORE_OK, "secret")) {
        for (int i = 0; i < 16; i++)
            if (key[i] != i)
                wrong("secret read wrong");
    } else {
        ok = false;
    }
    ok = store_ok(store_ping(s), STORE_OK, "ping") && ok;
    store_close(s);
    return ok;
}

static void test_dynamodb_answers(void **state)
{
    (void)state;
    server *h = server_start(ddb_answer, NULL, "AWS_ENDPOINT_URL_DYNAMODB");
    aws_client *c = new_client(AWS_DYNAMODB);
    unsetenv("AWS_ENDPOINT_URL_DYNAMODB");
    assert_true(oom_sweep("dynamodb store answers", dynamodb_answers, c) > 100);
    aws_client_free(c);
    server_stop(h);
}

/* -- the Lambda Runtime API -- */

static const char NEXT_EVENT[] = "{\"Records\":[{\"messageId\":\"m1\",\"body\":\"{}\"}],"
                                 "\"padding\":\"0123456789abcdef0123456789abcdef\"}";

static void runtime_answer(void *arg, const request *rq, reply *out)
{
    (void)arg;
    out->status = 202;
    out->body = "{\"status\":\"OK\"}";
    if (strstr(rq->path, "/invocation/next")) {
        out->status = 200;
        out->headers = "Lambda-Runtime-Aws-Request-Id: 8476a536-e9f4-11e8-9739-2dfe598c3fcd\r\n"
                       "Lambda-Runtime-Deadline-Ms: 1700000000000\r\n"
                       "Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:eu-west-1:"
                       "123456789012:function:taskd\r\n"
                       "Lambda-Runtime-Trace-Id: Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;"
                       "Parent=9a9197af755a6419;Sampled=1\r\n";
        out->body = NEXT_EVENT;
    } else if (strstr(rq->path, "/too-big/")) {
        out->status = 413;
        out->body = "{\"errorMessage\":\"Exceeded maximum allowed payload size (6291556 "
                    "bytes).\",\"errorType\":\"RequestEntityTooLarge\"}";
    }
}

/* The body of the last request the server received (in a buffer of the caller's thread). */
static const char *last_body(server *h)
{
    static _Thread_local char body[4096];
    server_last_body(h, body, sizeof body);
    return body;
}

static bool lambda_runtime_calls(void *arg)
{
    server *h = arg;
    char err[256] = "";
    lambda_runtime *rt = lambda_runtime_new(err, sizeof err);
    if (!rt)
        return failed_saying(err, "lambda_runtime_new");
    lambda_runtime_set_post_timeout(rt, 5000);
    bool ok = true;
    lambda_invocation inv;
    if (lambda_runtime_next(rt, &inv, err, sizeof err)) {
        if (strcmp(inv.request_id, "8476a536-e9f4-11e8-9739-2dfe598c3fcd") != 0 ||
            inv.deadline_ms != 1700000000000 || strcmp(inv.event, NEXT_EVENT) != 0 ||
            inv.event_len != strlen(NEXT_EVENT) || !strstr(inv.function_arn, "function:taskd") ||
            strncmp(inv.trace_id, "Root=1-5bef4de7", 15) != 0 ||
            getenv("_X_AMZN_TRACE_ID")) /* the header stays in inv, not the environment */
            wrong("an invocation read wrong");
    } else {
        if (!said(err) || inv.event)
            wrong("/next failed without a reason, or left an event");
        ok = false;
        snprintf(inv.request_id, sizeof inv.request_id, "8476a536-e9f4-11e8-9739-2dfe598c3fcd");
    }
    static const char answer[] = "{\"batchItemFailures\":[]}";
    if (lambda_runtime_respond(rt, &inv, answer, strlen(answer), err, sizeof err)) {
        if (strcmp(last_body(h), answer) != 0)
            wrong("responded %s", last_body(h));
    } else {
        ok = false;
    }
    if (lambda_runtime_fail(rt, &inv, "Runtime.Bad\ntype", "it broke \xff there", err,
                            sizeof err)) {
        if (strcmp(last_body(h), "{\"errorMessage\":\"it broke ? there\",\"errorType\":"
                                 "\"Runtime.Bad\\ntype\",\"stackTrace\":[]}") != 0)
            wrong("failed with %s", last_body(h));
    } else {
        ok = false;
    }
    lambda_invocation_clear(&inv);
    if (lambda_runtime_init_error(rt, NULL, NULL, err, sizeof err)) {
        if (strcmp(last_body(h), "{\"errorMessage\":\"\",\"errorType\":\"Runtime.UnknownReason\","
                                 "\"stackTrace\":[]}") != 0)
            wrong("init error %s", last_body(h));
    } else {
        ok = false;
    }
    lambda_invocation big = {.request_id = "too-big"};
    if (lambda_runtime_respond(rt, &big, answer, strlen(answer), err, sizeof err))
        wrong("a 413 taken for an answer");
    if (lambda_runtime_last_status(rt) != 413 || !strstr(err, "HTTP 413 (payload too large)"))
        ok = false; /* no answer: the request could not be made */
    else if (!strstr(err, "RequestEntityTooLarge: Exceeded maximum allowed payload size"))
        ok = false; /* the answer was quoted as it came, without its JSON read */
    lambda_runtime_free(rt);
    return ok;
}

static void test_lambda_runtime(void **state)
{
    (void)state;
    server *h = server_start(runtime_answer, NULL, "AWS_LAMBDA_RUNTIME_API");
    assert_true(oom_sweep("lambda runtime", lambda_runtime_calls, h) > 10);
    unsetenv("AWS_LAMBDA_RUNTIME_API");
    server_stop(h);
}

/* A post's answer is kept only to be quoted: a post the Runtime API took succeeds with no memory
 * to keep its answer, and one it refused fails for its status, quoted or not. */
static bool lambda_runtime_posts(void *arg)
{
    lambda_runtime *rt = arg;
    char err[256] = "";
    static const char answer[] = "{\"batchItemFailures\":[]}";
    lambda_invocation inv = {.request_id = "8476a536-e9f4-11e8-9739-2dfe598c3fcd"};
    if (!lambda_runtime_respond(rt, &inv, answer, strlen(answer), err, sizeof err))
        wrong("a post the Runtime API took (202) failed: %s", err);
    lambda_invocation big = {.request_id = "too-big"};
    if (lambda_runtime_respond(rt, &big, answer, strlen(answer), err, sizeof err))
        wrong("a 413 taken for an answer");
    if (lambda_runtime_last_status(rt) != 413 || !strstr(err, "HTTP 413 (payload too large)"))
        wrong("a 413 failed otherwise: %s", err);
    return true;
}

static void test_lambda_runtime_posts(void **state)
{
    (void)state;
    server *h = server_start(runtime_answer, NULL, "AWS_LAMBDA_RUNTIME_API");
    char err[256] = "";
    lambda_runtime *rt = lambda_runtime_new(err, sizeof err);
    unsetenv("AWS_LAMBDA_RUNTIME_API");
    if (!rt)
        fail_msg("lambda_runtime_new: %s", err);
    lambda_runtime_set_post_timeout(rt, 5000);
    assert_true(oom_sweep("lambda runtime posts, their answers unkept", lambda_runtime_posts, rt) >=
                2);
    lambda_runtime_free(rt);
    server_stop(h);
}

int main(void)
{
    log_setup((log_level)(LOG_ERROR + 1), "test_oom_aws"); /* no log lines: thousands of runs */
    curl_global_init(CURL_GLOBAL_DEFAULT);
    aws_environment();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_apigw, oom_teardown),
        cmocka_unit_test_teardown(test_xml_and_form, oom_teardown),
        cmocka_unit_test_teardown(test_clients, oom_teardown),
        cmocka_unit_test_teardown(test_sns, oom_teardown),
        cmocka_unit_test_teardown(test_publish_role, oom_teardown),
        cmocka_unit_test_teardown(test_worker_role, oom_teardown),
        cmocka_unit_test_teardown(test_api_role, oom_teardown),
        cmocka_unit_test_teardown(test_dynamodb_expired, oom_teardown),
        cmocka_unit_test_teardown(test_sns_replies, oom_teardown),
        cmocka_unit_test_teardown(test_publish_published, oom_teardown),
        cmocka_unit_test_teardown(test_recover_role, oom_teardown),
        cmocka_unit_test_teardown(test_dynamodb_answers, oom_teardown),
        cmocka_unit_test_teardown(test_lambda_runtime, oom_teardown),
        cmocka_unit_test_teardown(test_lambda_runtime_posts, oom_teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
