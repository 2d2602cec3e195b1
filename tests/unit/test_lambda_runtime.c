/*
 * Unit tests for aws/lambda_runtime against a Runtime API stand-in run inside
 * the test: an HTTP/1.1 server thread on 127.0.0.1:0 that answers each
 * request from a script (status, extra headers, body, or no answer at all),
 * records every request (method, path, header block, body) and counts the
 * connections it accepted. It polls all its connections at once, so a client
 * that opened a second connection would be served, and counted, rather than
 * hang.
 * Covered: configuration from AWS_LAMBDA_RUNTIME_API; /next parsing (header
 * names in any case, deadline, ARN, trace id, body) and _X_AMZN_TRACE_ID set
 * and unset; the /response, /error and /init/error posts (paths, exact bodies,
 * JSON escaping, the error type header, no header injection); a missing,
 * unsafe or oversized request id and other header values too long; a
 * missing or bad deadline read as 0; one connection for next + respond +
 * next; HTTP 500 on /next and 413 on /response; a 1 MB event both ways; the
 * post timeout; and an unreachable API.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "aws/lambda_runtime.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define REQUEST_ID "8476a536-e9f4-11e8-9739-2dfe598c3fcd"
#define ID_HEADER  "Lambda-Runtime-Aws-Request-Id: " REQUEST_ID "\r\n"
#define TRACE      "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1"
#define ARN        "arn:aws:lambda:us-east-2:123456789012:function:fn"
#define API_PATH   "/2018-06-01/runtime/"

/* ---- the Runtime API stand-in ---- */

/* One scripted answer. */
typedef struct reply {
    int status;
    const char *headers; /* extra header lines, each ending "\r\n"; NULL: none */
    const char *body;    /* NULL: empty */
    size_t body_len;     /* 0: strlen(body) */
    bool hang;           /* never answer this request */
} reply;

/* One request as received. */
typedef struct request {
    char method[16];
    char path[512];
    char *head; /* owned: the header lines */
    char *body; /* owned, NUL-terminated */
    size_t body_len;
} request;

#define MAX_REQUESTS 16
#define MAX_CONNS    8

typedef struct conn {
    int fd;
    char *data;
    size_t len;
    size_t cap;
} conn;

typedef struct server {
    int listen_fd;
    int port;
    int wake[2]; /* written to stop the thread */
    pthread_t thread;
    const reply *script;
    size_t script_len;
    pthread_mutex_t mu;
    request requests[MAX_REQUESTS];
    size_t count; /* requests received (may exceed MAX_REQUESTS) */
    int accepted; /* connections accepted */
    conn conns[MAX_CONNS];
} server;

static void conn_close(conn *c)
{
    close(c->fd);
    free(c->data);
    memset(c, 0, sizeof *c);
    c->fd = -1;
}

static bool send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* Value of Content-Length in a header block, 0 when absent. */
static size_t content_length(const char *head, size_t n)
{
    static const char name[] = "\r\nContent-Length:";
    for (size_t i = 0; i + sizeof name - 1 <= n; i++)
        if (strncasecmp(head + i, name, sizeof name - 1) == 0)
            return strtoul(head + i + sizeof name - 1, NULL, 10);
    return 0;
}

/* Answer one request per the script; false to drop the connection. */
static bool answer(server *s, int fd, size_t index)
{
    reply r = {.status = 500, .body = "script exhausted"};
    if (index < s->script_len)
        r = s->script[index];
    if (r.hang)
        return true;
    size_t body_len = r.body_len ? r.body_len : (r.body ? strlen(r.body) : 0);
    char head[2048];
    int n = snprintf(head, sizeof head, "HTTP/1.1 %d Scripted\r\nContent-Length: %zu\r\n%s\r\n",
                     r.status, body_len, r.headers ? r.headers : "");
    if (n < 0 || (size_t)n >= sizeof head)
        return false;
    return send_all(fd, head, (size_t)n) && send_all(fd, r.body ? r.body : "", body_len);
}

/* Take every complete request off the connection's buffer; false to drop it. */
static bool serve_buffered(server *s, conn *c)
{
    for (;;) {
        char *end = c->len ? memmem(c->data, c->len, "\r\n\r\n", 4) : NULL;
        if (!end)
            return true;
        size_t head_len = (size_t)(end - c->data) + 4;
        size_t body_len = content_length(c->data, head_len);
        if (c->len < head_len + body_len)
            return true;

        request q = {0};
        const char *line_end = memmem(c->data, head_len, "\r\n", 2);
        sscanf(c->data, "%15s %511s", q.method, q.path);
        size_t hl = head_len - (size_t)(line_end + 2 - c->data);
        q.head = malloc(hl + 1);
        q.body = malloc(body_len + 1);
        if (!q.head || !q.body) {
            free(q.head);
            free(q.body);
            return false;
        }
        memcpy(q.head, line_end + 2, hl);
        q.head[hl] = '\0';
        memcpy(q.body, c->data + head_len, body_len);
        q.body[body_len] = '\0';
        q.body_len = body_len;

        pthread_mutex_lock(&s->mu);
        size_t index = s->count++;
        if (index < MAX_REQUESTS) {
            s->requests[index] = q;
        } else {
            free(q.head);
            free(q.body);
        }
        pthread_mutex_unlock(&s->mu);

        memmove(c->data, c->data + head_len + body_len, c->len - head_len - body_len);
        c->len -= head_len + body_len;
        if (!answer(s, c->fd, index))
            return false;
    }
}

/* Read what is there; false when the peer closed or the connection failed. */
static bool read_conn(conn *c)
{
    if (c->cap - c->len < 65536) {
        size_t cap = c->cap ? c->cap * 2 : 131072;
        char *p = realloc(c->data, cap);
        if (!p)
            return false;
        c->data = p;
        c->cap = cap;
    }
    ssize_t n = recv(c->fd, c->data + c->len, c->cap - c->len, 0);
    if (n < 0 && errno == EINTR)
        return true;
    if (n <= 0)
        return false;
    c->len += (size_t)n;
    return true;
}

static void *server_main(void *arg)
{
    server *s = arg;
    for (;;) {
        struct pollfd p[2 + MAX_CONNS];
        p[0] = (struct pollfd){.fd = s->wake[0], .events = POLLIN};
        p[1] = (struct pollfd){.fd = s->listen_fd, .events = POLLIN};
        for (int i = 0; i < MAX_CONNS; i++)
            p[2 + i] = (struct pollfd){.fd = s->conns[i].fd, .events = POLLIN};
        if (poll(p, 2 + MAX_CONNS, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[0].revents)
            break;
        if (p[1].revents & POLLIN) {
            int fd = accept(s->listen_fd, NULL, NULL);
            if (fd >= 0) {
                pthread_mutex_lock(&s->mu);
                s->accepted++;
                pthread_mutex_unlock(&s->mu);
                int slot = -1;
                for (int i = 0; i < MAX_CONNS && slot < 0; i++)
                    if (s->conns[i].fd < 0)
                        slot = i;
                if (slot < 0)
                    close(fd);
                else
                    s->conns[slot].fd = fd;
            }
        }
        for (int i = 0; i < MAX_CONNS; i++) {
            conn *c = &s->conns[i];
            if (c->fd < 0 || !p[2 + i].revents || p[2 + i].fd != c->fd)
                continue;
            if (!read_conn(c) || !serve_buffered(s, c))
                conn_close(c);
        }
    }
    return NULL;
}

/* Start a server answering from script (kept by the caller) and point the runtime at it. */
static server *server_start(const reply *script, size_t script_len)
{
    server *s = calloc(1, sizeof *s);
    assert_non_null(s);
    s->script = script;
    s->script_len = script_len;
    for (int i = 0; i < MAX_CONNS; i++)
        s->conns[i].fd = -1;
    assert_int_equal(pthread_mutex_init(&s->mu, NULL), 0);
    assert_int_equal(pipe(s->wake), 0);
    s->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s->listen_fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(s->listen_fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(s->listen_fd, 8), 0);
    socklen_t alen = sizeof a;
    assert_int_equal(getsockname(s->listen_fd, (struct sockaddr *)&a, &alen), 0);
    s->port = ntohs(a.sin_port);
    char api[64];
    snprintf(api, sizeof api, "127.0.0.1:%d", s->port);
    setenv("AWS_LAMBDA_RUNTIME_API", api, 1);
    assert_int_equal(pthread_create(&s->thread, NULL, server_main, s), 0);
    return s;
}

static void server_stop(server *s)
{
    assert_int_equal(write(s->wake[1], "x", 1), 1);
    pthread_join(s->thread, NULL);
    for (int i = 0; i < MAX_CONNS; i++)
        if (s->conns[i].fd >= 0)
            conn_close(&s->conns[i]);
    close(s->listen_fd);
    close(s->wake[0]);
    close(s->wake[1]);
    for (size_t i = 0; i < s->count && i < MAX_REQUESTS; i++) {
        free(s->requests[i].head);
        free(s->requests[i].body);
    }
    pthread_mutex_destroy(&s->mu);
    free(s);
    unsetenv("AWS_LAMBDA_RUNTIME_API");
}

static size_t server_count(server *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->count;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static int server_accepted(server *s)
{
    pthread_mutex_lock(&s->mu);
    int n = s->accepted;
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* Request i, which must have arrived (the client saw its answer). */
static const request *server_request(server *s, size_t i)
{
    assert_true(i < server_count(s));
    assert_true(i < MAX_REQUESTS);
    pthread_mutex_lock(&s->mu);
    const request *q = &s->requests[i];
    pthread_mutex_unlock(&s->mu);
    return q;
}

/* Value of header name in a recorded header block into out; NULL when absent. */
static const char *header_value(const request *q, const char *name, char *out, size_t outlen)
{
    size_t nlen = strlen(name);
    for (const char *line = q->head; *line;) {
        const char *eol = strstr(line, "\r\n");
        if (!eol)
            break;
        if ((size_t)(eol - line) > nlen && line[nlen] == ':' &&
            strncasecmp(line, name, nlen) == 0) {
            const char *v = line + nlen + 1;
            while (*v == ' ')
                v++;
            size_t n = (size_t)(eol - v);
            if (n >= outlen)
                n = outlen - 1;
            memcpy(out, v, n);
            out[n] = '\0';
            return out;
        }
        line = eol + 2;
    }
    return NULL;
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
    static const char *const good[] = {"127.0.0.1:9001", "localhost:1", "[::1]:65535"};
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
    static const reply script[] = {
        {.status = 200,
         .headers = "lambda-runtime-aws-request-id: " REQUEST_ID "\r\n"
                    "LAMBDA-RUNTIME-DEADLINE-MS:   1542409706888  \r\n"
                    "Lambda-Runtime-Invoked-Function-Arn: " ARN "\r\n"
                    "Lambda-Runtime-Trace-Id: " TRACE "\r\n"
                    "Content-Type: application/json\r\n",
         .body = "{\"hello\":\"world\"}"},
    };
    server *s = server_start(script, 1);
    lambda_runtime *rt = runtime_for_test();
    unsetenv("_X_AMZN_TRACE_ID");

    lambda_invocation inv;
    char err[256] = "";
    assert_true(lambda_runtime_next(rt, &inv, err, sizeof err));
    assert_string_equal(inv.request_id, REQUEST_ID);
    assert_int_equal(inv.deadline_ms, 1542409706888LL);
    assert_string_equal(inv.function_arn, ARN);
    assert_string_equal(inv.trace_id, TRACE);
    assert_int_equal(inv.event_len, strlen("{\"hello\":\"world\"}"));
    assert_string_equal(inv.event, "{\"hello\":\"world\"}");
    assert_non_null(getenv("_X_AMZN_TRACE_ID"));
    assert_string_equal(getenv("_X_AMZN_TRACE_ID"), TRACE);
    assert_int_equal(lambda_runtime_last_status(rt), 200);

    const request *q = server_request(s, 0);
    assert_string_equal(q->method, "GET");
    assert_string_equal(q->path, API_PATH "invocation/next");
    char v[128];
    assert_non_null(header_value(q, "User-Agent", v, sizeof v));
    assert_memory_equal(v, "taskd/", 6);

    lambda_invocation_clear(&inv);
    assert_null(inv.event);
    lambda_runtime_free(rt);
    server_stop(s);
}

static void test_next_empty_event_is_empty_string(void **state)
{
    (void)state;
    static const reply script[] = {NEXT_OK("", NULL)};
    server *s = server_start(script, 1);
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

static void test_trace_env_set_and_unset(void **state)
{
    (void)state;
    static const reply script[] = {
        NEXT_OK("Lambda-Runtime-Trace-Id: " TRACE "\r\n", "{}"),
        NEXT_OK("", "{}"),
    };
    server *s = server_start(script, 2);
    lambda_runtime *rt = runtime_for_test();
    setenv("_X_AMZN_TRACE_ID", "Root=stale", 1);

    lambda_invocation inv;
    assert_true(lambda_runtime_next(rt, &inv, NULL, 0));
    assert_string_equal(getenv("_X_AMZN_TRACE_ID"), TRACE);
    lambda_invocation_clear(&inv);

    assert_true(lambda_runtime_next(rt, &inv, NULL, 0));
    assert_string_equal(inv.trace_id, "");
    assert_null(getenv("_X_AMZN_TRACE_ID"));
    lambda_invocation_clear(&inv);

    lambda_runtime_free(rt);
    server_stop(s);
}

static void test_missing_request_id(void **state)
{
    (void)state;
    static const reply script[] = {
        {.status = 200, .headers = "Lambda-Runtime-Trace-Id: " TRACE "\r\n", .body = "{}"},
    };
    server *s = server_start(script, 1);
    lambda_runtime *rt = runtime_for_test();
    setenv("_X_AMZN_TRACE_ID", "Root=stale", 1);
    lambda_invocation inv;
    char err[256] = "";
    assert_false(lambda_runtime_next(rt, &inv, err, sizeof err));
    assert_non_null(strstr(err, "Lambda-Runtime-Aws-Request-Id"));
    assert_null(inv.event);
    assert_null(getenv("_X_AMZN_TRACE_ID"));
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
    const reply script[] = {
        {.status = 200, .headers = "Lambda-Runtime-Aws-Request-Id: abc/../../init/error\r\n"},
        {.status = 200, .headers = "Lambda-Runtime-Aws-Request-Id: ..\r\n"},
        {.status = 200, .headers = "Lambda-Runtime-Aws-Request-Id: a%2F..\r\n"},
        {.status = 200, .headers = "Lambda-Runtime-Aws-Request-Id: \r\n"},
        {.status = 200, .headers = long_header},
    };
    server *s = server_start(script, 5);
    lambda_runtime *rt = runtime_for_test();
    lambda_invocation inv;
    char err[256];
    for (size_t i = 0; i < 5; i++) {
        err[0] = '\0';
        assert_false(lambda_runtime_next(rt, &inv, err, sizeof err));
        assert_non_null(strstr(err, "Lambda-Runtime-Aws-Request-Id"));
        assert_null(inv.event);
    }

    /* A forged invocation never reaches the wire. */
    lambda_invocation forged = {.request_id = "x/../../init/error"};
    err[0] = '\0';
    assert_false(lambda_runtime_respond(rt, &forged, "{}", 2, err, sizeof err));
    assert_non_null(strstr(err, "request id"));
    assert_false(lambda_runtime_fail(rt, &forged, "T", "m", NULL, 0));
    assert_false(lambda_runtime_respond(rt, NULL, "{}", 2, NULL, 0));
    assert_int_equal(server_count(s), 5);

    lambda_runtime_free(rt);
    server_stop(s);
}

static void test_header_too_long(void **state)
{
    (void)state;
    char arn[600];
    snprintf(arn, sizeof arn,
             "Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:%0300d\r\n" ID_HEADER, 0);
    const reply script[] = {{.status = 200, .headers = arn, .body = "{}"}};
    server *s = server_start(script, 1);
    lambda_runtime *rt = runtime_for_test();
    lambda_invocation inv;
    char err[256] = "";
    assert_false(lambda_runtime_next(rt, &inv, err, sizeof err));
    assert_non_null(strstr(err, "Lambda-Runtime-Invoked-Function-Arn"));
    assert_null(inv.event);
    lambda_runtime_free(rt);
    server_stop(s);
}

static void test_deadline_missing_or_bad_is_zero(void **state)
{
    (void)state;
    static const reply script[] = {
        NEXT_OK("", "{}"),
        NEXT_OK("Lambda-Runtime-Deadline-Ms: 12ab\r\n", "{}"),
        NEXT_OK("Lambda-Runtime-Deadline-Ms: 99999999999999999999999\r\n", "{}"),
        NEXT_OK("Lambda-Runtime-Deadline-Ms: -5\r\n", "{}"),
        NEXT_OK("Lambda-Runtime-Deadline-Ms:\r\n", "{}"),
        NEXT_OK("Lambda-Runtime-Deadline-Ms: 1700000000123\r\n", "{}"),
    };
    server *s = server_start(script, 6);
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
    static const reply script[] = {
        {.status = 500, .body = "{\"errorMessage\":\"boom\",\"errorType\":\"Runtime.Internal\"}"},
    };
    server *s = server_start(script, 1);
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
    /* A port that was just free: nothing listens there. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t alen = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    close(fd);
    char api[64];
    snprintf(api, sizeof api, "127.0.0.1:%d", ntohs(a.sin_port));
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
    unsetenv("AWS_LAMBDA_RUNTIME_API");
}

/* ---- posts ---- */

static void test_respond_posts_the_exact_body(void **state)
{
    (void)state;
    static const reply script[] = {
        NEXT_OK("", "{}"),
        {.status = 202, .body = "{\"status\":\"OK\"}"},
        {.status = 202},
    };
    server *s = server_start(script, 3);
    lambda_runtime *rt = runtime_for_test();
    lambda_invocation inv;
    char err[256] = "";
    assert_true(lambda_runtime_next(rt, &inv, err, sizeof err));

    static const char body[] = "{\"a\":\"\\u0000\",\"b\":[1,2]}\0tail";
    if (!lambda_runtime_respond(rt, &inv, body, sizeof body - 1, err, sizeof err))
        fail_msg("respond: %s", err);
    assert_int_equal(lambda_runtime_last_status(rt), 202);
    const request *q = server_request(s, 1);
    assert_string_equal(q->method, "POST");
    assert_string_equal(q->path, API_PATH "invocation/" REQUEST_ID "/response");
    assert_int_equal(q->body_len, sizeof body - 1);
    assert_memory_equal(q->body, body, sizeof body - 1);
    char v[128];
    assert_non_null(header_value(q, "Content-Type", v, sizeof v));
    assert_string_equal(v, "application/json");
    assert_non_null(header_value(q, "Content-Length", v, sizeof v));
    assert_int_equal(strtoul(v, NULL, 10), sizeof body - 1);
    assert_null(header_value(q, "Transfer-Encoding", v, sizeof v));
    assert_null(header_value(q, "Expect", v, sizeof v));
    assert_null(header_value(q, "Lambda-Runtime-Function-Error-Type", v, sizeof v));

    /* An empty result is a valid one. */
    assert_true(lambda_runtime_respond(rt, &inv, NULL, 0, err, sizeof err));
    q = server_request(s, 2);
    assert_int_equal(q->body_len, 0);
    assert_non_null(header_value(q, "Content-Length", v, sizeof v));
    assert_string_equal(v, "0");

    lambda_invocation_clear(&inv);
    lambda_runtime_free(rt);
    server_stop(s);
}

/* Check that request q is an error post with the given type and message. */
static void assert_error_post(const request *q, const char *path, const char *type,
                              const char *message)
{
    assert_string_equal(q->method, "POST");
    assert_string_equal(q->path, path);
    char v[256];
    assert_non_null(header_value(q, "Lambda-Runtime-Function-Error-Type", v, sizeof v));
    assert_string_equal(v, type);
    assert_non_null(header_value(q, "Content-Type", v, sizeof v));
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
    static const reply script[] = {
        NEXT_OK("", "{}"),
        {.status = 202},
        {.status = 202},
        {.status = 202},
    };
    server *s = server_start(script, 4);
    lambda_runtime *rt = runtime_for_test();
    lambda_invocation inv;
    char err[256] = "";
    assert_true(lambda_runtime_next(rt, &inv, err, sizeof err));
    static const char path[] = API_PATH "invocation/" REQUEST_ID "/error";

    /* Quotes, backslash, newline, a control byte, UTF-8, and one stray byte. */
    if (!lambda_runtime_fail(rt, &inv, "Handler.BadEvent",
                             "bad \"event\"\n\\ \x01 caf\xc3\xa9 \xff end", err, sizeof err))
        fail_msg("fail: %s", err);
    assert_error_post(server_request(s, 1), path, "Handler.BadEvent",
                      "bad \"event\"\n\\ \x01 caf\xc3\xa9 ? end");

    /* Defaults. */
    assert_true(lambda_runtime_fail(rt, &inv, NULL, NULL, err, sizeof err));
    assert_error_post(server_request(s, 2), path, "Runtime.UnknownReason", "");

    /* A type cannot smuggle in a header. */
    assert_true(lambda_runtime_fail(rt, &inv, "A\r\nX-Injected: 1", "m", err, sizeof err));
    const request *q = server_request(s, 3);
    char v[64];
    assert_null(header_value(q, "X-Injected", v, sizeof v));
    assert_non_null(header_value(q, "Lambda-Runtime-Function-Error-Type", v, sizeof v));
    assert_string_equal(v, "A  X-Injected: 1");

    lambda_invocation_clear(&inv);
    lambda_runtime_free(rt);
    server_stop(s);
}

static void test_init_error(void **state)
{
    (void)state;
    static const reply script[] = {{.status = 202}, {.status = 403}};
    server *s = server_start(script, 2);
    lambda_runtime *rt = runtime_for_test();
    char err[256] = "";
    if (!lambda_runtime_init_error(rt, "Runtime.ConfigInvalid", "TASKD_TABLE is not set", err,
                                   sizeof err))
        fail_msg("init_error: %s", err);
    assert_error_post(server_request(s, 0), API_PATH "init/error", "Runtime.ConfigInvalid",
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
    static const reply script[] = {
        NEXT_OK("", "{}"),
        {.status = 413,
         .body = "{\"errorMessage\":\"Exceeded maximum allowed payload size (6291556 bytes).\","
                 "\"errorType\":\"RequestEntityTooLarge\"}"},
    };
    server *s = server_start(script, 2);
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
    static const reply script[] = {
        NEXT_OK("", "{\"n\":1}"),
        {.status = 202},
        NEXT_OK("", "{\"n\":2}"),
        {.status = 202},
    };
    server *s = server_start(script, 4);
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
    assert_int_equal(server_count(s), 4);
    assert_int_equal(server_accepted(s), 1);
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
    const reply script[] = {
        {.status = 200, .headers = ID_HEADER, .body = event, .body_len = n},
        {.status = 202},
    };
    server *s = server_start(script, 2);
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
    const request *q = server_request(s, 1);
    assert_int_equal(q->body_len, n);
    assert_memory_equal(q->body, event, n);
    char v[64];
    assert_null(header_value(q, "Expect", v, sizeof v));
    assert_int_equal(server_accepted(s), 1);

    lambda_invocation_clear(&inv);
    lambda_runtime_free(rt);
    server_stop(s);
    free(event);
}

static void test_post_timeout(void **state)
{
    (void)state;
    static const reply script[] = {
        NEXT_OK("", "{}"),
        {.hang = true},
    };
    server *s = server_start(script, 2);
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

int main(void)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_reads_the_environment),
        cmocka_unit_test(test_next_parses_the_invocation),
        cmocka_unit_test(test_next_empty_event_is_empty_string),
        cmocka_unit_test(test_trace_env_set_and_unset),
        cmocka_unit_test(test_missing_request_id),
        cmocka_unit_test(test_unsafe_request_id_is_rejected),
        cmocka_unit_test(test_header_too_long),
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
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return failed;
}
