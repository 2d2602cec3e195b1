/*
 * Unit tests for util/digits: plain decimal digits in a range, and nothing else (no sign, blank,
 * "0x" or other character; no number past the range, however long).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "util/digits.h"

#include <limits.h>
#include <string.h>

static void taken(const char *s, long min, long max, long want)
{
    long v = -7;
    if (!digits_parse(s, strlen(s), min, max, &v))
        fail_msg("refused \"%s\" (%ld to %ld)", s, min, max);
    assert_int_equal(v, want);
}

static void refused(const char *s, long min, long max)
{
    long v = -7;
    if (digits_parse(s, strlen(s), min, max, &v))
        fail_msg("took \"%s\" (%ld to %ld) as %ld", s, min, max, v);
    assert_int_equal(v, -7); /* untouched */
}

static void test_digits_in_range(void **state)
{
    (void)state;
    taken("0", 0, 65535, 0);
    taken("80", 0, 65535, 80);
    taken("65535", 1, 65535, 65535);
    taken("1", 1, 256, 1);
    taken("256", 1, 256, 256);
    taken("0080", 1, 65535, 80);
    taken("0000000000000000000000065535", 1, 65535, 65535); /* leading zeros are no overflow */
    taken("9223372036854775807", 0, LONG_MAX, LONG_MAX);
}

static void test_anything_else_is_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",     "+80",  "-0",  "-1", " 80", "80 ",  "8 0", "\t80",
        "80\n", "0x50", "0X1", "8a", "1e3", "80.0", "1,0", "0b1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        refused(bad[i], 0, 65535);
}

static void test_out_of_range_is_refused(void **state)
{
    (void)state;
    refused("65536", 0, 65535);
    refused("123456", 0, 65535);
    refused("0", 1, 65535);
    refused("00", 1, 256);
    refused("257", 1, 256);
    refused("9223372036854775808", 0, LONG_MAX);
    refused("99999999999999999999999999999", 0, LONG_MAX); /* would wrap to a small number */
    refused("18446744073709551696", 0, 65535);             /* 2^64 + 80, 80 if it wrapped */
    refused("5", 0, 4);
    refused("7", 0, 5);
}

static void test_only_the_length_given_is_read(void **state)
{
    (void)state;
    long v = -7;
    assert_true(digits_parse("2000 tcp:1", 4, 1, 65535, &v));
    assert_int_equal(v, 2000);
    assert_false(digits_parse("2000", 0, 0, 65535, &v));
    assert_int_equal(v, 2000);
    assert_true(digits_parse("12x", 2, 0, 99, &v));
    assert_int_equal(v, 12);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_digits_in_range),
        cmocka_unit_test(test_anything_else_is_refused),
        cmocka_unit_test(test_out_of_range_is_refused),
        cmocka_unit_test(test_only_the_length_given_is_read),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
