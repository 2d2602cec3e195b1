/*
 * Unit tests for core/urlcode: percent-decoding in place, the encoded NUL
 * and malformed escapes kept as written, the returned length.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/urlcode.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_text_unchanged),  cmocka_unit_test(test_escapes_decoded),
        cmocka_unit_test(test_encoded_nul_stays),     cmocka_unit_test(test_malformed_escapes_stay),
        cmocka_unit_test(test_length_matches_string),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
