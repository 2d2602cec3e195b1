/*
 * Unit tests for core/urlcode: percent-decoding in place, the encoded NUL
 * and malformed escapes kept as written, the returned length; and
 * percent-encoding: unreserved bytes kept, every other byte %XX in upper
 * case, the keep set honoured, appending to what the buffer holds.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/urlcode.h"

#include <stdlib.h>
#include <string.h>

/* Decode a copy of in and compare it (and the returned length) to want. */
static void check(const char *in, const char *want)
{
    char buf[128];
    assert_true(strlen(in) < sizeof buf);
    strcpy(buf, in);
    size_t n = url_unescape_in_place(buf);
    assert_string_equal(buf, want);
    assert_int_equal(n, strlen(want));
}

static void test_plain_text_unchanged(void **state)
{
    (void)state;
    check("", "");
    check("/v1/tasks", "/v1/tasks");
    check("a+b=c&d", "a+b=c&d"); /* '+' is the query parser's business */
}

static void test_escapes_decoded(void **state)
{
    (void)state;
    check("%41", "A");
    check("a%20b", "a b");
    check("%2f%2F", "//"); /* either case */
    check("%41%42%43", "ABC");
    check("caf%C3%A9", "caf\xc3\xa9");
    check("%ff", "\xff");
    check("%01", "\x01");
    check("%25", "%");
    check("%2541", "%41"); /* decoded once, not again */
}

static void test_encoded_nul_stays(void **state)
{
    (void)state;
    check("%00", "%00");
    check("id%00junk", "id%00junk");
    check("%00%41", "%00A");
}

static void test_malformed_escapes_stay(void **state)
{
    (void)state;
    check("%", "%");
    check("%4", "%4");
    check("a%", "a%");
    check("a%4", "a%4");
    check("%zz", "%zz");
    check("%4g", "%4g");
    check("%g4", "%g4");
    check("%%41", "%A");
    check("100%", "100%");
    check("% 41", "% 41");
}

static void test_length_matches_string(void **state)
{
    (void)state;
    char buf[] = "x%41y%00z%";
    size_t n = url_unescape_in_place(buf);
    assert_int_equal(n, strlen(buf));
    assert_string_equal(buf, "xAy%00z%");
}

/* Encode in (keep as given) into a fresh buffer and compare with want. */
static void check_escape(const char *in, const char *keep, const char *want)
{
    sbuf b = {0};
    url_escape(&b, in, keep);
    assert_false(sbuf_failed(&b));
    size_t len = 0;
    char *got = sbuf_take(&b, &len); /* "" when nothing was appended */
    assert_non_null(got);
    assert_string_equal(got, want);
    assert_int_equal(len, strlen(want));
    free(got);
    sbuf_free(&b);
}

static void test_escape_unreserved_kept(void **state)
{
    (void)state;
    check_escape("", NULL, "");
    check_escape("", "/", "");
    check_escape("ABCDEFGHIJKLMNOPQRSTUVWXYZ", NULL, "ABCDEFGHIJKLMNOPQRSTUVWXYZ");
    check_escape("abcdefghijklmnopqrstuvwxyz0123456789", NULL,
                 "abcdefghijklmnopqrstuvwxyz0123456789");
    check_escape("-._~", NULL, "-._~");
    check_escape("0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e5f", NULL,
                 "0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e5f");
    check_escape("IN_PROGRESS", NULL, "IN_PROGRESS");
}

static void test_escape_reserved_and_others(void **state)
{
    (void)state;
    /* every other printable byte is %XX, upper-case hex */
    check_escape(" ", NULL, "%20");
    check_escape("a b", NULL, "a%20b");
    check_escape("/?#[]@", NULL, "%2F%3F%23%5B%5D%40");
    check_escape("!$&'()*+,;=", NULL, "%21%24%26%27%28%29%2A%2B%2C%3B%3D");
    check_escape("%", NULL, "%25");
    check_escape("%41", NULL, "%2541"); /* already-encoded text is encoded again */
    check_escape("\"<>\\^`{|}", NULL, "%22%3C%3E%5C%5E%60%7B%7C%7D");
    check_escape("\x01\t\n\r\x1f\x7f", NULL, "%01%09%0A%0D%1F%7F");
}

static void test_escape_utf8_bytes(void **state)
{
    (void)state;
    /* each byte of a multi-byte character on its own, as browsers do */
    check_escape("caf\xc3\xa9", NULL, "caf%C3%A9");
    check_escape("\xe2\x82\xac", NULL, "%E2%82%AC");
    check_escape("\xf0\x9f\x98\x80", NULL, "%F0%9F%98%80");
    check_escape("\xff\x80", NULL, "%FF%80"); /* bytes, whether or not they are UTF-8 */
}

static void test_escape_keep_set(void **state)
{
    (void)state;
    check_escape("/tasks/0190f3c2-7b1e", "/", "/tasks/0190f3c2-7b1e");
    check_escape("/a b/", "/", "/a%20b/");
    check_escape("a/b?c=d", NULL, "a%2Fb%3Fc%3Dd");
    check_escape("a/b?c=d", "/", "a/b%3Fc%3Dd");
    check_escape("a/b?c=d", "/?=", "a/b?c=d");
    check_escape("a/b?c=d", "", "a%2Fb%3Fc%3Dd"); /* an empty set keeps nothing more */
    check_escape("x%y", "%", "x%y");
    check_escape("a&b c", "& ", "a&b c");
}

static void test_escape_appends(void **state)
{
    (void)state;
    sbuf b = {0};
    sbuf_puts(&b, "/tasks?status=");
    url_escape(&b, "IN PROGRESS", NULL);
    sbuf_puts(&b, "&next_token=");
    url_escape(&b, "ab-_=", NULL);
    assert_false(sbuf_failed(&b));
    char *got = sbuf_take(&b, NULL);
    assert_string_equal(got, "/tasks?status=IN%20PROGRESS&next_token=ab-_%3D");
    free(got);
    sbuf_free(&b);
}

static void test_escape_round_trip(void **state)
{
    (void)state;
    /* every byte but NUL, encoded then decoded in place, is itself again */
    char all[256];
    for (int i = 1; i < 256; i++)
        all[i - 1] = (char)i;
    all[255] = '\0';
    sbuf b = {0};
    url_escape(&b, all, NULL);
    assert_false(sbuf_failed(&b));
    char *enc = sbuf_take(&b, NULL);
    /* 66 unreserved bytes as they are, the other 189 as three bytes */
    assert_int_equal(strlen(enc), 66 + 189 * 3);
    size_t n = url_unescape_in_place(enc);
    assert_int_equal(n, 255);
    assert_memory_equal(enc, all, 255);
    free(enc);
    sbuf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_text_unchanged),
        cmocka_unit_test(test_escapes_decoded),
        cmocka_unit_test(test_encoded_nul_stays),
        cmocka_unit_test(test_malformed_escapes_stay),
        cmocka_unit_test(test_length_matches_string),
        cmocka_unit_test(test_escape_unreserved_kept),
        cmocka_unit_test(test_escape_reserved_and_others),
        cmocka_unit_test(test_escape_utf8_bytes),
        cmocka_unit_test(test_escape_keep_set),
        cmocka_unit_test(test_escape_appends),
        cmocka_unit_test(test_escape_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
