/*
 * Unit tests for core/http_chunked: a chunked body decoded whatever way its bytes are cut,
 * extensions and trailers dropped, the bytes after it left for the next request, and framing
 * that is not chunked, or lines or framing past their bounds, refused.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/http_chunked.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Decode s fed in pieces of step bytes; the result, the body in *body and in *used the bytes
 * read of s in all. */
static http_chunked_rc decode(const char *s, size_t n, size_t step, sbuf *body, size_t *used)
{
    http_chunked c;
    http_chunked_init(&c);
    *used = 0;
    http_chunked_rc rc = HTTP_CHUNKED_MORE;
    while (*used < n && rc == HTTP_CHUNKED_MORE) {
        size_t piece = n - *used < step ? n - *used : step, u = 0;
        rc = http_chunked_feed(&c, s + *used, piece, &u, body);
        *used += u;
        if (rc == HTTP_CHUNKED_MORE)
            assert_int_equal(u, piece);
    }
    return rc;
}

static void expect_body(const char *s, const char *want, size_t tail)
{
    size_t n = strlen(s);
    for (size_t step = 1; step <= n; step++) {
        sbuf body = {0};
        size_t used;
        assert_int_equal(decode(s, n, step, &body, &used), HTTP_CHUNKED_DONE);
        assert_int_equal(used, n - tail);
        assert_int_equal(body.len, strlen(want));
        assert_memory_equal(body.data ? body.data : "", want, body.len);
        sbuf_free(&body);
    }
}

static void expect_bad(const char *s)
{
    size_t n = strlen(s);
    for (size_t step = 1; step <= n; step++) {
        sbuf body = {0};
        size_t used;
        if (decode(s, n, step, &body, &used) != HTTP_CHUNKED_BAD)
            fail_msg("\"%s\" in pieces of %zu: not refused", s, step);
        sbuf_free(&body);
    }
}

static void test_bodies(void **state)
{
    (void)state;
    expect_body("0\r\n\r\n", "", 0);
    expect_body("5\r\nhello\r\n0\r\n\r\n", "hello", 0);
    expect_body("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\nGET / HTTP/1.1", "hello world", 14);
    expect_body("A;name=val\r\n0123456789\r\n00\r\n\r\n", "0123456789", 0); /* extension, 00 */
    expect_body("3\r\nabc\r\n0\r\nX-T: 1\r\nY: 2\r\n\r\nrest", "abc", 4);   /* trailers */
    expect_body("f\r\n0123456789abcde\r\n0\r\n\r\n", "0123456789abcde", 0);
    expect_body("3 \r\nabc\r\n0\r\n\r\n", "abc", 0);             /* blank before the line's end */
    expect_body("3 \t;x=\"a b\"\r\nabc\r\n0\r\n\r\n", "abc", 0); /* and before a ';' */
    expect_body("3\r\nabc\r\n0\r\nT:\tv \xc3\xa9\r\n\r\n", "abc", 0); /* trailer bytes */
    /* a size's leading zeros count for nothing (1*HEXDIG), the last chunk's too */
    expect_body("00000000000000000003\r\nabc\r\n0000000000000000000\r\n\r\n", "abc", 0);
    sbuf body = {0}; /* the largest size, 15 digits, after zeros: its data to come */
    size_t used;
    assert_int_equal(decode("0000fffffffffffffff\r\nab", 23, 1, &body, &used), HTTP_CHUNKED_MORE);
    assert_int_equal(body.len, 2);
    sbuf_free(&body);
}

static void test_refused(void **state)
{
    (void)state;
    expect_bad("zz\r\n");
    expect_bad("\r\n");
    expect_bad("-1\r\n");
    expect_bad(";x\r\n");
    expect_bad("3\rabc");
    expect_bad("3\r\nabcX\r\n");           /* data longer than its size */
    expect_bad("3\r\nabc\rX");             /* a CR without its LF */
    expect_bad("0\r\n\rX");                /* the same after the last chunk */
    expect_bad("0\r\nT: 1\rX");            /* and in a trailer */
    expect_bad("1000000000000000\r\n");    /* 16 hex digits */
    expect_bad("0001000000000000000\r\n"); /* and after leading zeros */
    /* every line ends in CR LF: a front end that ends one at a bare LF reads another body */
    expect_bad("3\nabc\r\n0\r\n\r\n");
    expect_bad("3\r\nabc\n0\r\n\r\n");
    expect_bad("3;x\nabc\r\n0\r\n\r\n");
    expect_bad("0\r\n\n");
    expect_bad("0\r\nT: 1\n\r\n");
    /* after the size's blanks, only a ';' */
    expect_bad("3 garbage\r\nabc\r\n0\r\n\r\n");
    /* control bytes in an extension or a trailer; a trailer line is name ":" value */
    expect_bad("3;a\x01\r\nabc\r\n0\r\n\r\n");
    expect_bad("3\r\nabc\r\n0\r\nT: a\x7f\r\n\r\n");
    expect_bad("3\r\nabc\r\n0\r\nno colon\r\n\r\n");
    expect_bad("3\r\nabc\r\n0\r\n: v\r\n\r\n");
    expect_bad("3\r\nabc\r\n0\r\nT : v\r\n\r\n");
    /* a NUL in an extension */
    sbuf body = {0};
    size_t used;
    assert_int_equal(decode("3;a\0b\r\nabc\r\n0\r\n\r\n", 17, 17, &body, &used), HTTP_CHUNKED_BAD);
    sbuf_free(&body);
}

static void test_bounds(void **state)
{
    (void)state;
    size_t n = HTTP_CHUNKED_LINE_MAX + 16;
    char *s = malloc(n + 1);
    assert_non_null(s);
    memset(s, 'e', n);
    memcpy(s, "1;", 2);
    s[n] = '\0';
    sbuf body = {0};
    size_t used;
    assert_int_equal(decode(s, n, n, &body, &used), HTTP_CHUNKED_BAD);
    assert_true(used <= HTTP_CHUNKED_LINE_MAX + 1);
    /* trailers past their bound */
    size_t t = HTTP_CHUNKED_TRAILER_MAX + 64;
    char *tr = malloc(t + 1);
    assert_non_null(tr);
    memcpy(tr, "0\r\n", 3);
    for (size_t i = 3; i < t; i += 8)
        memcpy(tr + i, "X: abc\r\n", t - i < 8 ? t - i : 8);
    tr[t] = '\0';
    assert_int_equal(decode(tr, t, t, &body, &used), HTTP_CHUNKED_BAD);
    /* a size line of exactly the bound passes */
    memset(s, ' ', HTTP_CHUNKED_LINE_MAX);
    s[0] = '1';
    s[HTTP_CHUNKED_LINE_MAX - 2] = '\r';
    s[HTTP_CHUNKED_LINE_MAX - 1] = '\n';
    memcpy(s + HTTP_CHUNKED_LINE_MAX, "x\r\n0\r\n\r\n", 8);
    assert_int_equal(decode(s, HTTP_CHUNKED_LINE_MAX + 8, 7, &body, &used), HTTP_CHUNKED_DONE);
    assert_int_equal(body.len, 1);
    sbuf_free(&body);
    free(tr);
    free(s);
}

/* n chunks of one byte, each size line followed by ext (and its CR LF), then the last chunk. */
static char *one_byte_chunks(size_t n, const char *ext, size_t *len)
{
    size_t line = 1 + strlen(ext) + 2 + 1 + 2;
    char *s = malloc(n * line + 6);
    assert_non_null(s);
    char *p = s;
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "1%s\r\nx\r\n", ext);
    p += sprintf(p, "0\r\n\r\n");
    *len = (size_t)(p - s);
    return s;
}

/* Framing is bounded against the data it carries: one-byte chunks, or short extensions, pass
 * (16 bytes a chunk and twice its data are free); long extensions on small chunks, which could
 * make a body of a few bytes cost gigabytes to read, are refused once their excess passes
 * HTTP_CHUNKED_EXCESS_MAX, whatever way the bytes are cut. */
static void test_framing_bound(void **state)
{
    (void)state;
    size_t len, used;
    sbuf body = {0};
    char *s = one_byte_chunks(100000, "", &len); /* 5 bytes of framing a byte */
    assert_int_equal(decode(s, len, len, &body, &used), HTTP_CHUNKED_DONE);
    assert_int_equal(body.len, 100000);
    sbuf_free(&body);
    free(s);
    s = one_byte_chunks(100000, ";n=v;a=b", &len); /* 13: still within the allowance */
    assert_int_equal(decode(s, len, 4096, &body, &used), HTTP_CHUNKED_DONE);
    assert_int_equal(body.len, 100000);
    sbuf_free(&body);
    free(s);
    char ext[1001] = ";";
    memset(ext + 1, 'e', sizeof ext - 2);
    ext[sizeof ext - 1] = '\0';
    s = one_byte_chunks(1000, ext, &len); /* about 1 MB of framing for 1,000 bytes */
    for (size_t step = 1; step <= len; step = step * 7 + 1) {
        assert_int_equal(decode(s, len, step, &body, &used), HTTP_CHUNKED_BAD);
        /* refused at the line that passes the bound */
        assert_true(used <= HTTP_CHUNKED_EXCESS_MAX + 2 * 1010);
        assert_true(body.len <= 17);
        sbuf_free(&body);
    }
    free(s);
    /* a single long size line is no excess beyond the bound: the line's own bound holds it */
    memset(ext + 1, 'e', sizeof ext - 2);
    s = one_byte_chunks(15, ext, &len);
    assert_int_equal(decode(s, len, len, &body, &used), HTTP_CHUNKED_DONE);
    assert_int_equal(body.len, 15);
    sbuf_free(&body);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bodies),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_framing_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
