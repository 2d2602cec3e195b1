/*
 * Unit tests for core/http_head: a request head judged by the rules taskd's server reads heads
 * by, every verdict from the bytes that decide it; a head taken whole and its body left alone;
 * a verdict that more bytes do not change; each the same judged as the head comes, a byte at a
 * time, and a long head judged so at the cost of a few looks at it whole; a taken head split
 * into its parts, and a query into its arguments.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/http_head.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define LIMIT 256

/* The verdict of s[0..n), judged whole; judged as it comes, a byte at a time, it is the same. */
static http_head_verdict judge_n(const char *s, size_t n, size_t limit)
{
    http_head_verdict whole = http_head_judge(s, n, limit), v = HTTP_HEAD_MORE;
    http_head_scan scan = {0};
    for (size_t k = 1; k <= n && v == HTTP_HEAD_MORE; k++)
        v = http_head_judge_from(s, k, limit, &scan);
    if (v != whole)
        fail_msg("%zu bytes of \"%s\": verdict %d, but %d as they came", n, s, whole, v);
    return whole;
}

static http_head_verdict judge(const char *s)
{
    return judge_n(s, strlen(s), LIMIT);
}

/* The verdict of every prefix of s: HTTP_HEAD_MORE until the byte that decides, want from it on
 * (decided: that many bytes; 0 = the whole of s), judged whole and as it comes. */
static void check_prefixes(const char *s, http_head_verdict want, size_t decided)
{
    size_t n = strlen(s);
    if (!decided)
        decided = n;
    for (size_t k = 0; k <= n; k++) {
        http_head_verdict v = judge_n(s, k, LIMIT);
        if (k < decided && v != HTTP_HEAD_MORE)
            fail_msg("%zu bytes of \"%s\": verdict %d before byte %zu", k, s, v, decided);
        if (k >= decided && v != want)
            fail_msg("%zu bytes of \"%s\": verdict %d, want %d", k, s, v, want);
    }
}

static void test_complete_heads_taken(void **state)
{
    (void)state;
    check_prefixes("GET / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_HEAD_OK, 0);
    check_prefixes("GET / HTTP/1.0\n\n", HTTP_HEAD_OK, 0);
    check_prefixes("\r\n\r\nPOST /tasks HTTP/1.1\nHost: a\n\n", HTTP_HEAD_OK, 0);
    /* what follows the empty line is the body, not judged */
    assert_int_equal(judge("POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nno colon\r\n"),
                     HTTP_HEAD_OK);
    assert_int_equal(judge("GET / HTTP/1.1\r\nX: \r\nY:\r\n\r\n"), HTTP_HEAD_OK);
    /* a value's bytes past ASCII (obs-text) and its tabs are taken */
    assert_int_equal(judge("GET / HTTP/1.1\r\nX: caf\xc3\xa9\tb\r\n\r\n"), HTTP_HEAD_OK);
}

static void test_request_line_refused(void **state)
{
    (void)state;
    check_prefixes("GET\r\n\r\n", HTTP_HEAD_BAD, 4);
    check_prefixes(" GET / HTTP/1.1\r\n\r\n", HTTP_HEAD_BAD, 1);
    check_prefixes("GET /\x01 HTTP/1.1\r\n\r\n", HTTP_HEAD_BAD, 6);
    check_prefixes("GET / HTTP/1.1\rX\n\n", HTTP_HEAD_BAD, 16);
    check_prefixes("GET /x\r\n\r\n", HTTP_HEAD_BAD, 8);
    check_prefixes("GET / FTP/1.1\r\n\r\n", HTTP_HEAD_BAD, 15);
    check_prefixes("GET / HTTP/2.0\r\n\r\n", HTTP_HEAD_VERSION, 16);
    check_prefixes("GET / HTTP/1.1 \r\n\r\n", HTTP_HEAD_BAD, 17);
    /* the target is what lies between the spaces after the method and the last space */
    check_prefixes("T  HTTP/1.1\n\n", HTTP_HEAD_BAD, 12);
    check_prefixes("GET   HTTP/1.1\r\n\r\n", HTTP_HEAD_BAD, 16);
    /* white space inside the target; around it is tolerated */
    check_prefixes("GET /tasks/a b HTTP/1.1\r\n\r\n", HTTP_HEAD_BAD, 25);
    check_prefixes("GET /a\tb HTTP/1.1\r\n\r\n", HTTP_HEAD_BAD, 19);
    check_prefixes("GET /a\t HTTP/1.1\r\n\r\n", HTTP_HEAD_BAD, 18);
    assert_int_equal(judge("GET  /a  HTTP/1.1\r\n\r\n"), HTTP_HEAD_OK);
    assert_int_equal(judge("GET  / HTTP/1.1\r\n\r\n"), HTTP_HEAD_OK);
    /* only empty lines before the request line: a CR alone is not one */
    check_prefixes("\r\r\nGET / HTTP/1.1\r\n\r\n", HTTP_HEAD_BAD, 2);
    check_prefixes("\n\rGET / HTTP/1.1\r\n\r\n", HTTP_HEAD_BAD, 3);
    /* empty lines up to the limit, the last of them cut after its CR: no request line in it */
    char lines[LIMIT];
    memset(lines, '\n', sizeof lines);
    lines[LIMIT - 1] = '\r';
    assert_int_equal(judge_n(lines, LIMIT - 1, LIMIT), HTTP_HEAD_MORE);
    assert_int_equal(judge_n(lines, LIMIT, LIMIT), HTTP_HEAD_LINE_TOO_LONG);
    /* a method token longer than 32 characters is not one: its 33rd decides */
    check_prefixes("ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFGH / HTTP/1.1\r\n\r\n", HTTP_HEAD_BAD, 33);
}

static void test_header_lines_refused(void **state)
{
    (void)state;
    check_prefixes("GET / HTTP/1.1\r\nNo colon\r\n\r\n", HTTP_HEAD_BAD_FIELD, 0);
    check_prefixes("GET / HTTP/1.1\n folded first\nHost: a\n\n", HTTP_HEAD_BAD_FIELD, 0);
    /* a folded line (obsolete line folding): refused */
    assert_int_equal(judge("GET / HTTP/1.1\r\nX-Folded: a\r\n  b\r\n\r\n"), HTTP_HEAD_BAD_FIELD);
    assert_int_equal(judge("GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n"), HTTP_HEAD_BAD_FIELD);
    assert_int_equal(judge("GET / HTTP/1.1\r\nHost: a\r\nbad\r\nX: y\r\n\r\n"),
                     HTTP_HEAD_BAD_FIELD);
    /* a field name is a token: no blank before the colon (a front end may read "Content-Length
     * : 5" as the length, where a server that did not would take the body for a request), no
     * empty name, no control byte */
    assert_int_equal(judge("POST / HTTP/1.1\r\nContent-Length : 5\r\n\r\n"), HTTP_HEAD_BAD_FIELD);
    assert_int_equal(judge("POST / HTTP/1.1\r\nTransfer-Encoding\t: chunked\r\n\r\n"),
                     HTTP_HEAD_BAD_FIELD);
    assert_int_equal(judge("GET / HTTP/1.1\r\n: empty name\r\n\r\n"), HTTP_HEAD_BAD_FIELD);
    assert_int_equal(judge("GET / HTTP/1.1\r\nX\x01Y: z\r\n\r\n"), HTTP_HEAD_BAD_FIELD);
    assert_int_equal(judge("GET / HTTP/1.1\r\nX(Y): z\r\n\r\n"), HTTP_HEAD_BAD_FIELD);
    static const char nul_name[] = "GET / HTTP/1.1\r\nX\0: y\r\n\r\n";
    assert_int_equal(judge_n(nul_name, sizeof nul_name - 1, LIMIT), HTTP_HEAD_BAD_FIELD);
    /* a value holds no control byte but a tab: no NUL (which cut a token short), no lone CR */
    static const char nul_value[] = "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n";
    assert_int_equal(judge_n(nul_value, sizeof nul_value - 1, LIMIT), HTTP_HEAD_BAD_FIELD);
    assert_int_equal(judge("GET / HTTP/1.1\r\nX: a\rb\r\n\r\n"), HTTP_HEAD_BAD_FIELD);
    assert_int_equal(judge("GET / HTTP/1.1\r\nX: a\x1b[0m\r\n\r\n"), HTTP_HEAD_BAD_FIELD);
    assert_int_equal(judge("GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n"), HTTP_HEAD_BAD_FIELD);
}

/* One Host at most, and one that is a host[:port] (or empty). */
static void test_host(void **state)
{
    (void)state;
    assert_int_equal(judge("GET / HTTP/1.1\r\nHost: localhost:8000\r\n\r\n"), HTTP_HEAD_OK);
    assert_int_equal(judge("GET / HTTP/1.1\r\nHost: [::1]:8000\r\n\r\n"), HTTP_HEAD_OK);
    assert_int_equal(judge("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"), HTTP_HEAD_OK);
    assert_int_equal(judge("GET / HTTP/1.1\r\nHost:\r\n\r\n"), HTTP_HEAD_OK);
    assert_int_equal(judge("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n"), HTTP_HEAD_BAD_HOST);
    assert_int_equal(judge("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"), HTTP_HEAD_BAD_HOST);
    assert_int_equal(judge("GET / HTTP/1.1\r\nHost: local host\r\n\r\n"), HTTP_HEAD_BAD_HOST);
    assert_int_equal(judge("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"), HTTP_HEAD_BAD_HOST);
    assert_int_equal(judge("GET / HTTP/1.1\r\nHost: a@b\r\n\r\n"), HTTP_HEAD_BAD_HOST);
    assert_int_equal(judge("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n"), HTTP_HEAD_BAD_HOST);
}

typedef struct field_case {
    const char *value;
    http_head_verdict want;
} field_case;

/* Each value of a field in a POST's head, and the verdict the head gets. */
static void check_values(const char *field, const field_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char head[200];
        snprintf(head, sizeof head, "POST / HTTP/1.1\r\nHost: a\r\n%s:%s\r\n\r\n", field,
                 cases[i].value);
        http_head_verdict v = judge(head);
        if (v != cases[i].want)
            fail_msg("%s \"%s\": verdict %d, want %d", field, cases[i].value, v, cases[i].want);
    }
}

static void test_content_length(void **state)
{
    (void)state;
    static const field_case cases[] = {
        {"0", HTTP_HEAD_OK},
        {"21", HTTP_HEAD_OK},
        {" \t 21", HTTP_HEAD_OK}, /* blanks around it are no part of it */
        {"21 \t", HTTP_HEAD_OK},
        {"18446744073709551614", HTTP_HEAD_OK},
        {"000000000000000000000000018446744073709551614", HTTP_HEAD_OK},
        {"18446744073709551615", HTTP_HEAD_LENGTH_TOO_BIG}, /* its "until the close" */
        {"18446744073709551616", HTTP_HEAD_LENGTH_TOO_BIG},
        {"99999999999999999999999", HTTP_HEAD_LENGTH_TOO_BIG},
        {"", HTTP_HEAD_BAD_LENGTH},
        {"   ", HTTP_HEAD_BAD_LENGTH},
        {"+21", HTTP_HEAD_BAD_LENGTH},
        {"-1", HTTP_HEAD_BAD_LENGTH},
        {"0x10", HTTP_HEAD_BAD_LENGTH},
        {"2 1", HTTP_HEAD_BAD_LENGTH},
        {"1\r", HTTP_HEAD_BAD_FIELD}, /* a lone CR */
    };
    check_values("content-LENGTH", cases, sizeof cases / sizeof cases[0]);
    /* the first one is read (a second that differs is the API's to refuse) */
    assert_int_equal(judge("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: x\r\n\r\n"),
                     HTTP_HEAD_OK);
    assert_int_equal(judge("POST / HTTP/1.1\r\nContent-Length: x\r\nContent-Length: 1\r\n\r\n"),
                     HTTP_HEAD_BAD_LENGTH);
    /* a NUL in it is no digit, nor any value's byte */
    static const char nul[] = "POST / HTTP/1.1\r\nContent-Length: 2\0001\r\n\r\n";
    assert_int_equal(judge_n(nul, sizeof nul - 1, LIMIT), HTTP_HEAD_BAD_FIELD);
    /* with Transfer-Encoding anywhere, the length is not read */
    assert_int_equal(
        judge("POST / HTTP/1.1\r\nContent-Length: x\r\nTransfer-Encoding: chunked\r\n\r\n"),
        HTTP_HEAD_OK);
}

/* The Transfer-Encoding is chunked, between its blanks, in any case; anything else is refused
 * (501), and so is a second Transfer-Encoding line (a coding beyond a lone chunked). */
static void test_transfer_encoding(void **state)
{
    (void)state;
    static const field_case cases[] = {
        {"chunked", HTTP_HEAD_OK},
        {" \tChUnKeD", HTTP_HEAD_OK},
        {"chunked \t", HTTP_HEAD_OK},
        {"chunked, gzip", HTTP_HEAD_BAD_ENCODING},
        {"gzip, chunked", HTTP_HEAD_BAD_ENCODING},
        {"identity", HTTP_HEAD_BAD_ENCODING},
        {"", HTTP_HEAD_BAD_ENCODING},
        {"chunked;q=1", HTTP_HEAD_BAD_ENCODING},
    };
    check_values("Transfer-Encoding", cases, sizeof cases / sizeof cases[0]);
    static const char nul[] = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\0x\r\n\r\n";
    assert_int_equal(judge_n(nul, sizeof nul - 1, LIMIT), HTTP_HEAD_BAD_FIELD);
    /* two lines are one list: "gzip, chunked", "chunked, identity", "chunked, chunked" */
    assert_int_equal(judge("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n"
                           "Transfer-Encoding: chunked\r\n\r\n"),
                     HTTP_HEAD_BAD_ENCODING);
    assert_int_equal(judge("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
                           "Transfer-Encoding: identity\r\n\r\n"),
                     HTTP_HEAD_BAD_ENCODING);
    assert_int_equal(judge("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
                           "transfer-encoding: chunked\r\n\r\n"),
                     HTTP_HEAD_BAD_ENCODING);
}

/* "Expect: 100-continue" asks to send a body: without one it is refused, in any Expect line. */
static void test_expect_without_a_body(void **state)
{
    (void)state;
    assert_int_equal(judge("POST / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n"),
                     HTTP_HEAD_BAD_EXPECT);
    assert_int_equal(judge("POST / HTTP/1.1\r\nexpect:100-CONTINUE\r\nContent-Length: 0\r\n\r\n"),
                     HTTP_HEAD_BAD_EXPECT);
    assert_int_equal(judge("POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"),
                     HTTP_HEAD_OK);
    assert_int_equal(
        judge("POST / HTTP/1.1\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n"),
        HTTP_HEAD_OK);
    assert_int_equal(judge("GET / HTTP/1.1\r\nExpect: something\r\n\r\n"), HTTP_HEAD_OK);
    /* Expect is a list, its lines one list, as the server reads it for its 100 */
    assert_int_equal(judge("GET / HTTP/1.1\r\nExpect: something\r\nExpect: 100-continue\r\n\r\n"),
                     HTTP_HEAD_BAD_EXPECT);
    assert_int_equal(judge("GET / HTTP/1.1\r\nExpect: something, 100-Continue\r\n\r\n"),
                     HTTP_HEAD_BAD_EXPECT);
    assert_int_equal(judge("GET / HTTP/1.1\r\nExpect: 100-continued\r\n\r\n"), HTTP_HEAD_OK);
    /* HTTP/1.0 knows no 100 Continue: served as it is */
    assert_int_equal(judge("GET / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n"), HTTP_HEAD_OK);
}

/* A head whose Cookie value is count bytes of fill, judged. */
static http_head_verdict judge_cookie(char *head, size_t cap, char fill, size_t count)
{
    size_t n = (size_t)snprintf(head, cap, "GET / HTTP/1.1\r\nCookie: ");
    assert_true(n + count + 4 <= cap);
    memset(head + n, fill, count);
    n += count;
    memcpy(head + n, "\r\n\r\n", 4);
    return judge_n(head, n + 4, cap);
}

/* Header fields, query arguments and cookies each take a record of the head's budget: past it,
 * the head is refused. */
static void test_records(void **state)
{
    (void)state;
    static char head[16384];
    for (int fields = 180; fields <= 200; fields += 20) {
        size_t n = (size_t)snprintf(head, sizeof head, "GET / HTTP/1.1\r\n");
        for (int i = 0; i < fields; i++)
            n += (size_t)snprintf(head + n, sizeof head - n, "a:\r\n");
        n += (size_t)snprintf(head + n, sizeof head - n, "\r\n");
        assert_int_equal(judge_n(head, n, sizeof head),
                         fields == 180 ? HTTP_HEAD_OK : HTTP_HEAD_TOO_MANY);
    }
    for (int args = 180; args <= 200; args += 20) { /* a=1&...: one record each */
        size_t n = (size_t)snprintf(head, sizeof head, "GET /?");
        for (int i = 0; i < args; i++)
            n += (size_t)snprintf(head + n, sizeof head - n, "%s", i ? "&" : "a");
        n += (size_t)snprintf(head + n, sizeof head - n, " HTTP/1.1\r\n\r\n");
        assert_int_equal(judge_n(head, n, sizeof head),
                         args == 180 ? HTTP_HEAD_OK : HTTP_HEAD_TOO_MANY);
    }
    /* a Cookie: a record for each of its pieces (at ';' or ','), and a copy of it */
    assert_int_equal(judge_cookie(head, sizeof head, ';', 200), HTTP_HEAD_TOO_MANY);
    assert_int_equal(judge_cookie(head, sizeof head, 'c', 13000), HTTP_HEAD_TOO_MANY);
    assert_int_equal(judge_cookie(head, sizeof head, ',', 200), HTTP_HEAD_TOO_MANY);
    assert_int_equal(judge_cookie(head, sizeof head, ';', 2), HTTP_HEAD_OK);
    /* only the first Cookie field is read */
    size_t n = (size_t)snprintf(head, sizeof head, "GET / HTTP/1.1\r\nCookie: a=1\r\n");
    for (int i = 0; i < 2; i++) {
        n += (size_t)snprintf(head + n, sizeof head - n, "Cookie: ");
        memset(head + n, ';', 120);
        n += 120;
        n += (size_t)snprintf(head + n, sizeof head - n, "\r\n");
    }
    n += (size_t)snprintf(head + n, sizeof head - n, "\r\n");
    assert_int_equal(judge_n(head, n, sizeof head), HTTP_HEAD_OK);
}

static void test_limits(void **state)
{
    (void)state;
    char buf[LIMIT];
    memset(buf, 'a', sizeof buf);
    assert_int_equal(judge_n(buf, sizeof buf, LIMIT), HTTP_HEAD_BAD); /* method too long */
    memcpy(buf, "GET /", 5);
    assert_int_equal(judge_n(buf, sizeof buf - 1, LIMIT), HTTP_HEAD_MORE);
    assert_int_equal(judge_n(buf, sizeof buf, LIMIT), HTTP_HEAD_LINE_TOO_LONG);
    const char *line = "GET / HTTP/1.1\r\n";
    memcpy(buf, line, strlen(line));
    assert_int_equal(judge_n(buf, sizeof buf - 1, LIMIT), HTTP_HEAD_MORE);
    assert_int_equal(judge_n(buf, sizeof buf, LIMIT), HTTP_HEAD_TOO_LARGE);
}

static double cpu_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/*
 * A head of nearly 16 KiB that comes a byte at a time, judged at each byte as the server judges
 * it, costs the CPU of a few looks at it whole: its bytes are each looked at a few times, its
 * request line long or its header lines many. Judged from its start at each byte, such a head
 * cost about 3,000 to 5,000 looks at it whole (60-130 ms), for each client that trickled one.
 */
static void test_a_head_judged_as_it_comes(void **state)
{
    (void)state;
    static char head[16384];
    for (int long_line = 0; long_line < 2; long_line++) {
        size_t n = (size_t)snprintf(head, sizeof head, "GET /?a=");
        if (long_line) {
            memset(head + n, 'a', 16000);
            n += 16000;
        }
        n += (size_t)snprintf(head + n, sizeof head - n, " HTTP/1.1\r\nHost: a\r\n");
        for (int i = 0; !long_line && n < 16000; i++)
            n += (size_t)snprintf(head + n, sizeof head - n, "X-%03d: %0180d\r\n", i, 0);
        n += (size_t)snprintf(head + n, sizeof head - n, "\r\n");
        double start = cpu_seconds();
        for (int i = 0; i < 128; i++)
            assert_int_equal(http_head_judge(head, n, sizeof head), HTTP_HEAD_OK);
        double whole = cpu_seconds() - start;
        http_head_scan scan = {0};
        http_head_verdict v = HTTP_HEAD_MORE;
        start = cpu_seconds();
        for (size_t k = 1; k <= n && v == HTTP_HEAD_MORE; k++)
            v = http_head_judge_from(head, k, sizeof head, &scan);
        double trickled = cpu_seconds() - start;
        assert_int_equal(v, HTTP_HEAD_OK);
        if (trickled > whole)
            fail_msg("%zu bytes judged as they came a byte at a time: %.2f ms, where 128 looks "
                     "at them whole took %.2f ms",
                     n, trickled * 1e3, whole * 1e3);
    }
}

static void test_split(void **state)
{
    (void)state;
    char buf[] = "\r\nPOST /a%20b?x=1&y HTTP/1.0\r\nX-Two: h\r\nX-Pad:  v w \t\r\n"
                 "Empty:\r\nx-two: second\r\n\r\nBODY";
    size_t n = strlen(buf);
    assert_int_equal(judge_n(buf, n, sizeof buf), HTTP_HEAD_OK);
    static http_request_head h;
    http_head_split(buf, n, &h);
    assert_string_equal(h.method, "POST");
    assert_string_equal(h.path, "/a%20b"); /* not decoded: the server decodes the path */
    assert_string_equal(h.query, "x=1&y");
    assert_false(h.http11);
    assert_int_equal(h.n_fields, 4);
    assert_string_equal(h.fields[1].name, "X-Pad");
    assert_string_equal(h.fields[1].value, "v w");
    assert_string_equal(http_head_field(&h, "EMPTY"), "");
    assert_string_equal(http_head_field(&h, "X-TWO"), "h"); /* the first of two */
    assert_null(http_head_field(&h, "Cookie"));
    assert_int_equal(h.len, n - 4);
    assert_memory_equal(buf + h.len, "BODY", 4);

    char lf[] = "GET  /t  HTTP/1.1\nA:b\n\n";
    http_head_split(lf, strlen(lf), &h);
    assert_string_equal(h.path, "/t");
    assert_null(h.query);
    assert_true(h.http11);
    assert_string_equal(http_head_field(&h, "a"), "b");
    assert_int_equal(h.len, strlen("GET  /t  HTTP/1.1\nA:b\n\n"));
}

/* An absolute-form target: its path and query are the request's, its authority apart. */
static void test_absolute_form(void **state)
{
    (void)state;
    static const struct {
        const char *target, *path, *query, *authority;
    } cases[] = {
        {"http://localhost:8080/health?x=1", "/health", "x=1", "localhost:8080"},
        {"HTTPS://[::1]:9/tasks/a", "/tasks/a", NULL, "[::1]:9"},
        {"http://a", "/", NULL, "a"},
        {"http://a?q=2", "/", "q=2", "a"},
        {"http:///p", "/p", NULL, ""},
        {"http://", "/", NULL, ""},
        {"/plain?y", "/plain", "y", NULL},
        {"httpx://a/b", "httpx://a/b", NULL, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[256];
        int n = snprintf(buf, sizeof buf, "GET %s HTTP/1.1\r\nHost: h\r\n\r\n", cases[i].target);
        assert_int_equal(judge_n(buf, (size_t)n, sizeof buf), HTTP_HEAD_OK);
        static http_request_head h;
        http_head_split(buf, (size_t)n, &h);
        assert_string_equal(h.path, cases[i].path);
        if (cases[i].query)
            assert_string_equal(h.query, cases[i].query);
        else
            assert_null(h.query);
        if (cases[i].authority)
            assert_string_equal(h.authority, cases[i].authority);
        else
            assert_null(h.authority);
        assert_string_equal(http_head_field(&h, "Host"), "h");
    }
}

static void test_query_split(void **state)
{
    (void)state;
    char q[] = "a=1&&b=x+y%2Bz&flag&=v&c=%00&d=%zz";
    http_field args[8];
    size_t n = http_query_split(q, args, 8);
    assert_int_equal(n, 6);
    assert_string_equal(args[0].name, "a");
    assert_string_equal(args[0].value, "1");
    assert_string_equal(args[1].value, "x y+z");
    assert_string_equal(args[2].name, "flag");
    assert_string_equal(args[2].value, ""); /* as "flag=", as Starlette reads it */
    assert_string_equal(args[3].name, "");
    assert_string_equal(args[4].value, "%00"); /* a NUL stays encoded */
    assert_string_equal(args[5].value, "%zz");
    char q2[] = "a&b&c";
    assert_int_equal(http_query_split(q2, args, 2), 2); /* at most max */
    assert_int_equal(http_query_split(NULL, args, 2), 0);
}

static void test_refusals(void **state)
{
    (void)state;
    for (int v = HTTP_HEAD_BAD; v <= HTTP_HEAD_BAD_HOST; v++) {
        http_refusal r = http_head_refusal((http_head_verdict)v, "too large");
        assert_true(r.status >= 400 && r.status < 600);
        assert_non_null(r.reason);
        assert_non_null(r.detail);
        assert_string_not_equal(http_reason_phrase(r.status), "Unknown");
    }
    assert_int_equal(http_head_refusal(HTTP_HEAD_TOO_MANY, "").status, 431);
    assert_string_equal(http_head_refusal(HTTP_HEAD_LENGTH_TOO_BIG, "too large").detail,
                        "too large");
    assert_string_equal(http_reason_phrase(201), "Created");
    assert_string_equal(http_reason_phrase(299), "Unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_complete_heads_taken),
        cmocka_unit_test(test_request_line_refused),
        cmocka_unit_test(test_header_lines_refused),
        cmocka_unit_test(test_host),
        cmocka_unit_test(test_content_length),
        cmocka_unit_test(test_transfer_encoding),
        cmocka_unit_test(test_expect_without_a_body),
        cmocka_unit_test(test_records),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_a_head_judged_as_it_comes),
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_absolute_form),
        cmocka_unit_test(test_query_split),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
