/*
 * Unit tests for core/errbuf: a message formatted whole when it fits; one that does not is cut
 * where a UTF-8 character ends and ends "...", however small the buffer, formatted with a caller's
 * arguments (errbuf_vset()) as well; appends stop at a cut, and add nothing after it;
 * control characters made '?'.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/errbuf.h"

#include <string.h>

static void test_set_fits_whole(void **state)
{
    (void)state;
    char err[12];
    errbuf_set(err, sizeof err, "%s %d", "record", 42);
    assert_string_equal(err, "record 42");
    errbuf_set(err, sizeof err, "%s", "eleven char"); /* exactly as long as fits: no cut */
    assert_string_equal(err, "eleven char");
    errbuf_set(NULL, 12, "x");
    memset(err, 'x', sizeof err);
    errbuf_set(err, 0, "y");
    assert_int_equal(err[0], 'x');
}

static void test_set_shows_its_cut(void **state)
{
    (void)state;
    char err[12];
    errbuf_set(err, sizeof err, "%s", "twelve chars");
    assert_string_equal(err, "twelve c...");
    errbuf_set(err, sizeof err, "arn:aws:sqs:eu-west-1:%s", "123456789012:q");
    assert_string_equal(err, "arn:aws:...");
    /* "é" is 2 bytes, "€" 3: the cut comes before the character that would be split */
    errbuf_set(err, sizeof err, "%s", "abcdefgé...");
    assert_string_equal(err, "abcdefg...");
    errbuf_set(err, sizeof err, "%s", "abcdef€ghi");
    assert_string_equal(err, "abcdef...");
    errbuf_set(err, sizeof err, "%s", "abcdefgh€x");
    assert_string_equal(err, "abcdefgh...");
    /* a buffer too small for the mark has what of it fits */
    static const char *const small[] = {"", ".", "..", "..."};
    for (size_t n = 1; n <= 4; n++) {
        errbuf_set(err, n, "%s", "abcdef");
        assert_string_equal(err, small[n - 1]);
    }
}

/* A function of its own that takes a format, as role_fail() is: errbuf_vset() into its buffer. */
static void fail_with(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail_with(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    errbuf_vset(err, errlen, fmt, ap);
    va_end(ap);
}

static void test_vset_is_set(void **state)
{
    (void)state;
    char err[12];
    fail_with(err, sizeof err, "%s %d", "record", 42);
    assert_string_equal(err, "record 42");
    fail_with(err, sizeof err, "%s", "abcdef€ghi"); /* outside text, cut as set cuts it */
    assert_string_equal(err, "abcdef...");
}

static void test_append_adds_until_a_cut(void **state)
{
    (void)state;
    char err[24];
    errbuf_set(err, sizeof err, "keys");
    const char *sep = ": ";
    static const char *const keys[] = {"version", "id", "detail-type", "source"};
    size_t added = 0;
    while (added < 4 && errbuf_append(err, sizeof err, "%s%s", sep, keys[added])) {
        sep = ", ";
        added++;
    }
    assert_int_equal(added, 2); /* the third did not fit */
    assert_string_equal(err, "keys: version, id, d...");
    errbuf_set(err, sizeof err, "a");
    assert_true(errbuf_append(err, sizeof err, "%s", "bcdefghijklmnopqrstuvw"));
    assert_string_equal(err, "abcdefghijklmnopqrstuvw");
    /* one byte past the end: the cut falls in what was there before */
    assert_false(errbuf_append(err, sizeof err, "x"));
    assert_string_equal(err, "abcdefghijklmnopqrst...");
    assert_false(errbuf_append(err, sizeof err, "%s", "")); /* a cut that fills it stays cut */
    assert_false(errbuf_append(NULL, 24, "x"));
}

/* A cut that stepped back over a character leaves room after its "...": an append after it adds
 * nothing there, and is false, so that the text ends with its mark. */
static void test_append_after_a_cut_adds_nothing(void **state)
{
    (void)state;
    char err[12];
    /* "é" is 2 bytes, "€" 3, "😀" 4: the cut leaves 1, 2 and 3 bytes free */
    static const char *const texts[] = {"abcdefgé...", "abcdef€ghi", "abcde😀fgh"};
    static const char *const cuts[] = {"abcdefg...", "abcdef...", "abcde..."};
    for (size_t i = 0; i < 3; i++) {
        errbuf_set(err, sizeof err, "%s", texts[i]);
        assert_string_equal(err, cuts[i]);
        assert_false(errbuf_append(err, sizeof err, "%s", "x"));
        assert_false(errbuf_append(err, sizeof err, "; nor can it be closed: %s", "busy"));
        assert_false(errbuf_append(err, sizeof err, "%s", ""));
        assert_string_equal(err, cuts[i]);
    }
    /* text that ends "..." by itself is added to, even where the last cut left its mark */
    errbuf_set(err, sizeof err, "%s", "abcde...");
    assert_true(errbuf_append(err, sizeof err, "x"));
    assert_string_equal(err, "abcde...x");
}

static void test_one_line(void **state)
{
    (void)state;
    char err[32];
    errbuf_set(err, sizeof err, "near '%s'", "a\nb\x1b[2J\x7f");
    errbuf_one_line(err, sizeof err);
    assert_string_equal(err, "near 'a?b?[2J?'");
    errbuf_one_line(NULL, 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_fits_whole),
        cmocka_unit_test(test_set_shows_its_cut),
        cmocka_unit_test(test_vset_is_set),
        cmocka_unit_test(test_append_adds_until_a_cut),
        cmocka_unit_test(test_append_after_a_cut_adds_nothing),
        cmocka_unit_test(test_one_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
