/*
 * Unit tests for core/sbuf: appends, growth, printf, integers, shortest
 * round-trip doubles, JSON strings, ownership hand-off.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/sbuf.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>

/* Check the invariants every non-empty buffer must keep. */
static void check_invariants(const sbuf *b)
{
    assert_non_null(b->data);
    assert_true(b->cap >= b->len + 1);
    assert_int_equal(b->data[b->len], '\0');
    assert_false(sbuf_failed(b));
}

/* The bytes of the string that JSON text reads back as (0 for null), as jansson reads it. */
static size_t read_back_len(const char *text)
{
    json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    assert_non_null(v);
    size_t n = json_is_string(v) ? json_string_length(v) : 0;
    json_decref(v);
    return n;
}

/* Encode s[0..len) with sbuf_json_strn and compare the text to want, and the bytes it says the
 * text reads back as to those jansson reads. */
static void check_json_strn(const char *s, size_t len, const char *want)
{
    sbuf b = {0};
    assert_int_equal(sbuf_json_strn(&b, s, len), read_back_len(want));
    check_invariants(&b);
    assert_string_equal(b.data, want);
    assert_int_equal(b.len, strlen(want));
    sbuf_free(&b);
}

static void check_json_str(const char *s, const char *want)
{
    sbuf b = {0};
    assert_int_equal(sbuf_json_str(&b, s), read_back_len(want));
    check_invariants(&b);
    assert_string_equal(b.data, want);
    assert_int_equal(b.len, strlen(want));
    sbuf_free(&b);
}

static void test_str_join_cuts_to_fit(void **state)
{
    (void)state;
    char out[8];
    str_join(out, sizeof out, "GET", " ", "/tasks", (const char *)NULL);
    assert_string_equal(out, "GET /ta"); /* 7 characters and the terminator */
    str_join(out, sizeof out, "ab", "", "cd", (const char *)NULL);
    assert_string_equal(out, "abcd");
    str_join(out, sizeof out, (const char *)NULL);
    assert_string_equal(out, "");
    memset(out, 'x', sizeof out);
    str_join(out, 1, "abc", (const char *)NULL);
    assert_string_equal(out, "");
    assert_int_equal(out[1], 'x'); /* nothing written past size */
    /* never inside a UTF-8 character: 6 bytes, then "é" whole or not at all */
    str_join(out, sizeof out, "exec ", "\xc3\xa9\xc3\xa9", (const char *)NULL);
    assert_string_equal(out, "exec \xc3\xa9");
    str_join(out, sizeof out, "exec  ", "\xe2\x82\xac", (const char *)NULL);
    assert_string_equal(out, "exec  ");
    /* the join's start: nothing after a part that was cut, which a short one would still fit */
    str_join(out, sizeof out, "exec  ", "\xe2\x82\xac", "!", (const char *)NULL);
    assert_string_equal(out, "exec  ");
    str_join(out, sizeof out, "GET /tasks", "x", (const char *)NULL);
    assert_string_equal(out, "GET /ta");
}

static void test_take_empty_returns_empty_string(void **state)
{
    (void)state;
    sbuf b = {0};
    size_t len = 12345;
    char *s = sbuf_take(&b, &len);
    assert_non_null(s);
    assert_string_equal(s, "");
    assert_int_equal(len, 0);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    free(s);

    /* len may be NULL */
    s = sbuf_take(&b, NULL);
    assert_non_null(s);
    assert_string_equal(s, "");
    free(s);
}

static void test_take_hands_over_and_resets(void **state)
{
    (void)state;
    sbuf b = {0};
    sbuf_puts(&b, "hello");
    char *before = b.data;
    size_t len = 0;
    char *s = sbuf_take(&b, &len);
    assert_ptr_equal(s, before);
    assert_string_equal(s, "hello");
    assert_int_equal(len, 5);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    assert_false(sbuf_failed(&b));

    /* the buffer is reusable and independent of the taken bytes */
    sbuf_puts(&b, "world");
    assert_string_equal(b.data, "world");
    assert_string_equal(s, "hello");
    free(s);
    sbuf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);

    /* free on a never-used buffer is harmless; so is reuse after free */
    sbuf_free(&b);
    sbuf_putc(&b, 'x');
    assert_string_equal(b.data, "x");
    sbuf_free(&b);
}

static void test_truncate(void **state)
{
    (void)state;
    sbuf b = {0};
    sbuf_truncate(&b, 0); /* nothing appended yet: nothing to do */
    assert_null(b.data);
    sbuf_puts(&b, "[1,2");
    sbuf_truncate(&b, 2);
    assert_int_equal(b.len, 2);
    assert_string_equal(b.data, "[1");
    sbuf_truncate(&b, 5); /* past the end: unchanged */
    assert_string_equal(b.data, "[1");
    sbuf_putc(&b, ']');
    assert_string_equal(b.data, "[1]");
    sbuf_free(&b);
}

static void test_append_puts_putc(void **state)
{
    (void)state;
    sbuf b = {0};
    sbuf_append(&b, "abcdef", 3);
    check_invariants(&b);
    assert_string_equal(b.data, "abc");
    assert_int_equal(b.len, 3);

    sbuf_puts(&b, "XYZ");
    sbuf_putc(&b, '!');
    sbuf_append(&b, "ignored", 0);
    sbuf_puts(&b, "");
    check_invariants(&b);
    assert_string_equal(b.data, "abcXYZ!");
    assert_int_equal(b.len, 7);

    /* appending raw bytes keeps embedded NULs and the length */
    sbuf_append(&b, "p\0q", 3);
    check_invariants(&b);
    assert_int_equal(b.len, 10);
    assert_memory_equal(b.data, "abcXYZ!p\0q", 11);
    sbuf_free(&b);
}

static void test_append_zero_on_empty(void **state)
{
    (void)state;
    sbuf b = {0};
    sbuf_append(&b, "", 0);
    /* "always NUL-terminated once anything has been appended" */
    check_invariants(&b);
    assert_string_equal(b.data, "");
    assert_int_equal(b.len, 0);
    sbuf_free(&b);
}

static void test_growth_many_appends(void **state)
{
    (void)state;
    enum { N = 100000 };
    char *ref = malloc(N * 3 + 1);
    assert_non_null(ref);
    size_t rlen = 0;
    sbuf b = {0};
    size_t last_cap = 0;
    unsigned grows = 0;
    for (int i = 0; i < N; i++) {
        char c = (char)('a' + i % 26);
        switch (i % 3) {
        case 0:
            sbuf_putc(&b, c);
            ref[rlen++] = c;
            break;
        case 1: {
            char two[2] = {c, (char)('0' + i % 10)};
            sbuf_append(&b, two, 2);
            memcpy(ref + rlen, two, 2);
            rlen += 2;
            break;
        }
        default: {
            char three[4] = {'<', c, '>', '\0'};
            sbuf_puts(&b, three);
            memcpy(ref + rlen, three, 3);
            rlen += 3;
            break;
        }
        }
        assert_int_equal(b.len, rlen);
        assert_true(b.cap >= b.len + 1);
        if (b.cap != last_cap) {
            grows++;
            last_cap = b.cap;
        }
    }
    ref[rlen] = '\0';
    check_invariants(&b);
    assert_int_equal(b.len, rlen);
    assert_memory_equal(b.data, ref, rlen + 1);
    /* doubling growth: ~200000 bytes need only a handful of reallocations */
    assert_true(grows <= 20);
    size_t len = 0;
    char *s = sbuf_take(&b, &len);
    assert_int_equal(len, rlen);
    assert_string_equal(s, ref);
    free(s);
    free(ref);
}

static void test_growth_single_large_append(void **state)
{
    (void)state;
    enum { N = 5000 };
    char *big = malloc(N);
    assert_non_null(big);
    for (int i = 0; i < N; i++)
        big[i] = (char)('A' + i % 26);
    sbuf b = {0};
    sbuf_putc(&b, '[');
    sbuf_append(&b, big, N);
    sbuf_putc(&b, ']');
    check_invariants(&b);
    assert_int_equal(b.len, N + 2);
    assert_int_equal(b.data[0], '[');
    assert_memory_equal(b.data + 1, big, N);
    assert_int_equal(b.data[N + 1], ']');
    sbuf_free(&b);
    free(big);
}

static void test_printf_short(void **state)
{
    (void)state;
    sbuf b = {0};
    sbuf_printf(&b, "%d-%s-%c", 42, "x", 'y');
    check_invariants(&b);
    assert_string_equal(b.data, "42-x-y");
    assert_int_equal(b.len, 6);
    sbuf_printf(&b, "%s", "");
    assert_string_equal(b.data, "42-x-y");
    assert_int_equal(b.len, 6);
    sbuf_printf(&b, "|%05.1f|", 3.14159);
    assert_string_equal(b.data, "42-x-y|003.1|");
    sbuf_free(&b);
}

/* Append a formatted string of exactly n characters after a prefix. */
static void check_printf_len(size_t prefix, size_t n)
{
    char *arg = malloc(n + 1);
    assert_non_null(arg);
    for (size_t i = 0; i < n; i++)
        arg[i] = (char)('a' + i % 26);
    arg[n] = '\0';
    sbuf b = {0};
    for (size_t i = 0; i < prefix; i++)
        sbuf_putc(&b, '#');
    sbuf_printf(&b, "%s", arg);
    sbuf_printf(&b, "<%zu>", n);
    char tail[32];
    int tn = snprintf(tail, sizeof tail, "<%zu>", n);
    check_invariants(&b);
    assert_int_equal(b.len, prefix + n + (size_t)tn);
    for (size_t i = 0; i < prefix; i++)
        assert_int_equal(b.data[i], '#');
    assert_memory_equal(b.data + prefix, arg, n);
    assert_string_equal(b.data + prefix + n, tail);
    assert_int_equal(strlen(b.data), b.len);
    sbuf_free(&b);
    free(arg);
}

static void test_printf_long(void **state)
{
    (void)state;
    /* around the 256-byte stack buffer, and far beyond it */
    static const size_t lens[] = {254, 255, 256, 257, 300, 1000, 4096, 100000};
    static const size_t prefixes[] = {0, 1, 100, 127, 200, 5000};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++)
        for (size_t j = 0; j < sizeof prefixes / sizeof prefixes[0]; j++)
            check_printf_len(prefixes[j], lens[i]);
}

static void test_printf_long_with_arguments(void **state)
{
    (void)state;
    /* several conversions in the long path must all be evaluated again */
    sbuf b = {0};
    char want[2048];
    int wn = 0;
    sbuf_puts(&b, "start:");
    wn += snprintf(want + wn, sizeof want - (size_t)wn, "start:");
    char pad[400];
    memset(pad, 'p', sizeof pad - 1);
    pad[sizeof pad - 1] = '\0';
    sbuf_printf(&b, "%d/%s/%lld/%x", -17, pad, (long long)INT64_MIN, 0xbeefu);
    wn += snprintf(want + wn, sizeof want - (size_t)wn, "%d/%s/%lld/%x", -17, pad,
                   (long long)INT64_MIN, 0xbeefu);
    check_invariants(&b);
    assert_string_equal(b.data, want);
    assert_int_equal(b.len, (size_t)wn);
    sbuf_free(&b);
}

static void check_int(int64_t v, const char *want)
{
    sbuf b = {0};
    sbuf_int(&b, v);
    check_invariants(&b);
    assert_string_equal(b.data, want);
    assert_int_equal(b.len, strlen(want));
    sbuf_free(&b);
}

static void test_int_values(void **state)
{
    (void)state;
    check_int(0, "0");
    check_int(1, "1");
    check_int(-1, "-1");
    check_int(1648229203, "1648229203");
    check_int(INT32_MAX, "2147483647");
    check_int((int64_t)INT32_MIN - 1, "-2147483649");
    check_int(INT64_MAX, "9223372036854775807");
    check_int(INT64_MIN, "-9223372036854775808");
    check_int(INT64_MIN + 1, "-9223372036854775807");

    sbuf b = {0};
    sbuf_puts(&b, "[");
    sbuf_int(&b, INT64_MIN);
    sbuf_putc(&b, ',');
    sbuf_int(&b, INT64_MAX);
    sbuf_putc(&b, ']');
    assert_string_equal(b.data, "[-9223372036854775808,9223372036854775807]");
    sbuf_free(&b);
}

static void check_double(double d, const char *want)
{
    sbuf b = {0};
    sbuf_double(&b, d);
    check_invariants(&b);
    assert_string_equal(b.data, want);
    assert_int_equal(b.len, strlen(want));
    sbuf_free(&b);
}

/* Doubles (their bits) and the text Python's repr() gives them, as python3 wrote it. */
static const struct {
    uint64_t bits;
    const char *repr;
} python_reprs[] = {
    {0x0000000000000000ULL, "0.0"},
    {0x8000000000000000ULL, "-0.0"},
    {0x3ff0000000000000ULL, "1.0"},
    {0xbff0000000000000ULL, "-1.0"},
    {0x4059000000000000ULL, "100.0"},
    {0x3fb999999999999aULL, "0.1"},
    {0x4004000000000000ULL, "2.5"},
    {0x3fd3333333333334ULL, "0.30000000000000004"},
    {0x3fd5555555555555ULL, "0.3333333333333333"},
    {0x40fe240c9fbe76c9ULL, "123456.789"},
    {0x430c6bf526340000ULL, "1000000000000000.0"},
    {0xc30c6bf526340000ULL, "-1000000000000000.0"},
    {0x42dc12218377de40ULL, "123456789012345.0"},
    {0x43118b54f22aeb00ULL, "1234567890123456.0"},
    {0x4341c37937e07fffULL, "9999999999999998.0"},
    {0x4341c37937e08000ULL, "1e+16"},
    {0x434aa535d3d0c000ULL, "1.5e+16"},
    {0x4345ee2a2eb5a5c4ULL, "1.2345678901234568e+16"},
    {0x4340000000000000ULL, "9007199254740992.0"},
    {0x43e0000000000000ULL, "9.223372036854776e+18"},
    {0x4480f0cf064dd592ULL, "1e+22"},
    {0x44b52d02c7e14af6ULL, "1e+23"},
    {0x7fefffffffffffffULL, "1.7976931348623157e+308"},
    {0x3f1a36e2eb1c432dULL, "0.0001"},
    {0x3f202e4b6ce5dc68ULL, "0.00012345"},
    {0x3ee4f8b588e368f1ULL, "1e-05"},
    {0x3ee9e3abe16fc70dULL, "1.2345e-05"},
    {0x3e7ad7f29abcaf48ULL, "1e-07"},
    {0x01a56e1fc2f8f359ULL, "1e-300"},
    {0x0010000000000000ULL, "2.2250738585072014e-308"},
    {0x000fffffffffffffULL, "2.225073858507201e-308"},
    {0x0000000000000001ULL, "5e-324"},
    {0x0000000000000002ULL, "1e-323"},
    {0x0000000000000005ULL, "2.5e-323"},
    {0x000000000003cc7bULL, "1.23e-318"},
    {0x0000000000000003ULL, "1.5e-323"},
    {0x0020000000000000ULL, "4.450147717014403e-308"},
    {0x4580000000000000ULL, "6.189700196426902e+26"},
    {0x3c00000000000000ULL, "1.0842021724855044e-19"},
    {0x54b249ad2594c37dULL, "1e+100"},
    {0x2b2bff2ee48e0530ULL, "1e-100"},
    {0x3fe9999999999999ULL, "0.7999999999999999"},
    {0x3ff199999999999aULL, "1.1"},
    {0x4011666666666666ULL, "4.35"},
    {0x444b1ae4d6e2ef50ULL, "1e+21"},
    {0x419d6f3454000000ULL, "123456789.0"},
    {0x3b20000000000000ULL, "6.617444900424222e-24"},
    {0x4790000000000000ULL, "5.316911983139664e+36"},
    {0x5300000000000000ULL, "6.518515124270356e+91"},
};

static void test_double_as_python_writes_it(void **state)
{
    (void)state;
    /* 0.1 not 0.10000000000000001, 0.30000000000000004 with its 17; the point and ".0" of a whole
     * number up to 1e16 (1e15 was "1e+15"), the exponent from there and below 1e-4; a subnormal
     * in its fewest digits (5e-324, where 15 digits gave 4.94065645841247e-324); a power of two
     * whose nearest 16 digits lie too far below it, in the 16 above (6.189700196426902e+26) */
    for (size_t i = 0; i < sizeof python_reprs / sizeof python_reprs[0]; i++) {
        double d;
        memcpy(&d, &python_reprs[i].bits, sizeof d);
        char text[DOUBLE_TEXT_MAX];
        double_text(text, d);
        if (strcmp(text, python_reprs[i].repr) != 0)
            fail_msg("%#llx: %s, where Python writes %s", (unsigned long long)python_reprs[i].bits,
                     text, python_reprs[i].repr);
        check_double(d, python_reprs[i].repr);
    }
}

static void test_double_not_finite(void **state)
{
    (void)state;
    /* as Python writes them (never printf's "-nan"); a caller that needs JSON spells these */
    check_double(INFINITY, "inf");
    check_double(-INFINITY, "-inf");
    check_double(NAN, "nan");
    check_double(-NAN, "nan");
}

/* A double of one of the kinds whose text is made differently: any bits, a decimal of 1 to 17
 * digits, a power of two or a double beside one, a whole number up to 2^64. */
static double random_double(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    uint64_t r = *x;
    double d;
    switch (r % 4) {
    case 0:
        memcpy(&d, x, sizeof d);
        return d;
    case 1: {
        char text[48];
        uint64_t scale = 10;
        for (int digits = (int)(r >> 8) % 17; digits > 0; digits--)
            scale *= 10;
        snprintf(text, sizeof text, "%llue%d", (unsigned long long)((r >> 16) % scale),
                 (int)((r >> 2) % 61) - 30);
        return strtod(text, NULL);
    }
    case 2:
        d = ldexp(1.0, (int)((r >> 8) % 2098) - 1074);
        return (r >> 4) % 3 == 0 ? d : nextafter(d, (r >> 4) % 3 == 1 ? 0 : INFINITY);
    default:
        return (double)(r >> (r >> 2) % 64);
    }
}

static void test_double_as_python_writes_random_doubles(void **state)
{
    (void)state;
    /* python3 writes the repr() of 100,000 doubles, others at each run */
    uint64_t x = (uint64_t)time(NULL) * 2654435761u | 1;
    char path[] = "/tmp/test_sbuf_doubles.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    enum { N = 100000 };
    double *ds = malloc(N * sizeof *ds);
    assert_non_null(ds);
    for (int i = 0; i < N; i++) {
        ds[i] = random_double(&x);
        uint64_t bits;
        memcpy(&bits, &ds[i], sizeof bits);
        fprintf(f, "%016llx\n", (unsigned long long)bits);
    }
    assert_int_equal(fclose(f), 0);
    char cmd[256];
    snprintf(
        cmd, sizeof cmd,
        "python3 -c 'import struct, sys\n"
        "for l in sys.stdin: print(repr(struct.unpack(\"<d\", bytes.fromhex(l)[::-1])[0]))' <%s",
        path);
    FILE *py = popen(cmd, "r");
    assert_non_null(py);
    char line[64], differs[160] = "";
    int i = 0;
    for (; i < N && fgets(line, sizeof line, py); i++) {
        line[strcspn(line, "\n")] = '\0';
        char text[DOUBLE_TEXT_MAX];
        double_text(text, ds[i]);
        if (strcmp(text, line) != 0) {
            uint64_t bits;
            memcpy(&bits, &ds[i], sizeof bits);
            snprintf(differs, sizeof differs, "%#llx: %s, where Python writes %s",
                     (unsigned long long)bits, text, line);
            break;
        }
    }
    int rc = pclose(py); /* the file and python3 are gone before any failure is told */
    unlink(path);
    free(ds);
    if (differs[0])
        fail_msg("%s", differs);
    if (i == 0 && WIFEXITED(rc) && WEXITSTATUS(rc) == 127)
        skip(); /* no python3 to ask */
    assert_int_equal(rc, 0);
    assert_int_equal(i, N);
}

static void test_double_round_trips(void **state)
{
    (void)state;
    /* many bit patterns, subnormals included: the text reads back bit for bit */
    uint64_t x = 0x2545f4914f6cdd1dULL;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double d;
        memcpy(&d, &x, sizeof d);
        if (!isfinite(d))
            continue;
        sbuf b = {0};
        sbuf_double(&b, d);
        check_invariants(&b);
        assert_true(b.len <= 24);
        double back = strtod(b.data, NULL);
        if (memcmp(&d, &back, sizeof d) != 0)
            fail_msg("%.17g written as %s does not read back", d, b.data);
        sbuf_free(&b);
    }
}

static void test_double_appends_after_content(void **state)
{
    (void)state;
    sbuf b = {0};
    sbuf_puts(&b, "[");
    sbuf_double(&b, 0.5);
    sbuf_putc(&b, ',');
    sbuf_double(&b, -1e-300);
    sbuf_putc(&b, ']');
    check_invariants(&b);
    assert_string_equal(b.data, "[0.5,-1e-300]");
    sbuf_free(&b);
}

static void test_json_plain_and_null(void **state)
{
    (void)state;
    check_json_str("", "\"\"");
    check_json_str("abc", "\"abc\"");
    check_json_str("Task completed", "\"Task completed\"");
    check_json_str(NULL, "null");
    /* '/' and DEL need no escaping */
    check_json_str("a/b\x7f", "\"a/b\x7f\"");
}

static void test_json_quotes_backslash(void **state)
{
    (void)state;
    check_json_str("\"", "\"\\\"\"");
    check_json_str("\\", "\"\\\\\"");
    check_json_str("say \"hi\"", "\"say \\\"hi\\\"\"");
    check_json_str("C:\\dir\\f", "\"C:\\\\dir\\\\f\"");
    check_json_str("\\\"", "\"\\\\\\\"\"");
}

static void test_json_named_controls(void **state)
{
    (void)state;
    check_json_str("\n", "\"\\n\"");
    check_json_str("\t", "\"\\t\"");
    check_json_str("\r", "\"\\r\"");
    check_json_str("a\r\nb\tc", "\"a\\r\\nb\\tc\"");
    check_json_str("\b", "\"\\b\""); /* two bytes, as JSON names them, not six */
    check_json_str("\f", "\"\\f\"");
}

static void test_json_other_controls(void **state)
{
    (void)state;
    check_json_str("\x01", "\"\\u0001\"");
    check_json_str("\x1f", "\"\\u001f\"");
    check_json_str("x\x1by", "\"x\\u001by\"");

    /* every byte 0x01..0x1f: named escape for \n \r \t \b \f, \u00XX otherwise */
    for (int c = 1; c < 0x20; c++) {
        char in[2] = {(char)c, '\0'};
        char want[16];
        if (c == '\n')
            snprintf(want, sizeof want, "\"\\n\"");
        else if (c == '\r')
            snprintf(want, sizeof want, "\"\\r\"");
        else if (c == '\t')
            snprintf(want, sizeof want, "\"\\t\"");
        else if (c == '\b')
            snprintf(want, sizeof want, "\"\\b\"");
        else if (c == '\f')
            snprintf(want, sizeof want, "\"\\f\"");
        else
            snprintf(want, sizeof want, "\"\\u%04x\"", (unsigned)c);
        check_json_str(in, want);
    }
}

static void test_json_utf8_passes_through(void **state)
{
    (void)state;
    const char *s = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xe6\x97\xa5\xe6\x9c\xac";
    char want[64];
    snprintf(want, sizeof want, "\"%s\"", s);
    check_json_str(s, want);
}

static void check_utf8_dup(const char *in, const char *want)
{
    char *got = utf8_dup(in);
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

static void test_utf8_dup_replaces_what_is_not_utf8(void **state)
{
    (void)state;
    check_utf8_dup("", "");
    check_utf8_dup("caf\xc3\xa9 \xf0\x9f\x98\x80", "caf\xc3\xa9 \xf0\x9f\x98\x80");
    check_utf8_dup("/tasks/\xff", "/tasks/\xef\xbf\xbd");
    check_utf8_dup("\xc3", "\xef\xbf\xbd"); /* cut short */
    /* stray continuations */
    check_utf8_dup("a\x80\x80"
                   "b",
                   "a\xef\xbf\xbd\xef\xbf\xbd"
                   "b");
    check_utf8_dup("\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"); /* a surrogate */
    check_utf8_dup("\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd");                 /* overlong */
}

static void test_utf8_valid_takes_only_well_formed_text(void **state)
{
    (void)state;
    assert_true(utf8_valid("", 0));
    assert_true(utf8_valid("caf\xc3\xa9 \xf0\x9f\x98\x80", 10));
    assert_true(utf8_valid("a\0b", 3));              /* a NUL is a character */
    assert_true(utf8_valid("\xf4\x8f\xbf\xbf", 4));  /* U+10FFFF */
    assert_true(utf8_valid("\xed\x9f\xbf", 3));      /* U+D7FF, below the surrogates */
    assert_false(utf8_valid("\xc3\xa9", 1));         /* cut short by n */
    assert_false(utf8_valid("a\x80", 2));            /* a stray continuation */
    assert_false(utf8_valid("\xc0\xaf", 2));         /* overlong */
    assert_false(utf8_valid("\xe0\x9f\xbf", 3));     /* overlong */
    assert_false(utf8_valid("\xf0\x8f\xbf\xbf", 4)); /* overlong */
    assert_false(utf8_valid("\xed\xa0\x80", 3));     /* a surrogate */
    assert_false(utf8_valid("\xf4\x90\x80\x80", 4)); /* past U+10FFFF */
    assert_false(utf8_valid("\xff", 1));
    assert_false(utf8_valid("ok\xe2\x82", 4)); /* cut short at the end */
}

static void check_utf8_copy_within(const char *in, size_t size, const char *want)
{
    char out[16];
    assert_true(size <= sizeof out);
    assert_int_equal(utf8_copy_within(out, size, in), strlen(want));
    assert_string_equal(out, want);
}

static void test_utf8_copy_within_keeps_whole_characters(void **state)
{
    (void)state;
    check_utf8_copy_within("receive jobs", 16, "receive jobs");
    check_utf8_copy_within("caf\xc3\xa9", 16, "caf\xc3\xa9");
    check_utf8_copy_within("caf\xc3\xa9", 5, "caf");    /* 4 bytes of room: not half of it */
    check_utf8_copy_within("\xf0\x9f\x98\x80!", 4, ""); /* 3 of room, a 4-byte emoji */
    check_utf8_copy_within("\xf0\x9f\x98\x80!", 5, "\xf0\x9f\x98\x80");
    check_utf8_copy_within("\xf0\x9f\x98\x80!", 6, "\xf0\x9f\x98\x80!");
    check_utf8_copy_within("a\xff"
                           "b\xc3",
                           16, "a?b?");                /* not UTF-8, a character cut short */
    check_utf8_copy_within("\xed\xa0\x80", 16, "???"); /* a surrogate */
    check_utf8_copy_within("abc", 1, "");
}

static void test_json_strn_embedded_nul(void **state)
{
    (void)state;
    check_json_strn("a\0b", 3, "\"a\\u0000b\"");
    check_json_strn("\0", 1, "\"\\u0000\"");
    check_json_strn("", 0, "\"\"");
    /* only len bytes are read */
    check_json_strn("abcdef", 2, "\"ab\"");
    check_json_strn("\"x\0\n", 4, "\"\\\"x\\u0000\\n\"");
}

/* U+FFFE and U+FFFF are escaped (an SQS body may not hold them); their neighbours are not. */
static void test_json_strn_escapes_noncharacters(void **state)
{
    (void)state;
    check_json_strn("a\357\277\276b", 5, "\"a\\ufffeb\"");
    check_json_strn("\357\277\277", 3, "\"\\uffff\"");
    check_json_strn("\357\277\275\357\277\274", 6,
                    "\"\357\277\275\357\277\274\""); /* U+FFFD, U+FFFC */
    check_json_strn("\357\277\276\357\277\277\360\220\200\200", 10,
                    "\"\\ufffe\\uffff\360\220\200\200\"");
    check_json_strn("\357\277", 2, "\"\\ufffd\\ufffd\""); /* cut short: not a character */

    /* and jansson reads the escapes back as the characters */
    json_t *v = json_loads("\"\\ufffe\\uffff\"", JSON_DECODE_ANY, NULL);
    assert_non_null(v);
    assert_string_equal(json_string_value(v), "\xef\xbf\xbe\xef\xbf\xbf");
    json_decref(v);
}

static void test_json_appends_after_content(void **state)
{
    (void)state;
    sbuf b = {0};
    sbuf_puts(&b, "{\"k\":");
    sbuf_json_str(&b, "v\"1");
    sbuf_puts(&b, ",\"n\":");
    sbuf_json_str(&b, NULL);
    sbuf_putc(&b, '}');
    check_invariants(&b);
    assert_string_equal(b.data, "{\"k\":\"v\\\"1\",\"n\":null}");
    sbuf_free(&b);
}

/* Whatever ASCII goes in comes back out of a real JSON parser unchanged. */
static void test_json_roundtrip_with_jansson(void **state)
{
    (void)state;
    char in[128];
    size_t n = 0;
    for (int c = 1; c < 128; c++)
        in[n++] = (char)c;
    in[n] = '\0';

    sbuf b = {0};
    sbuf_puts(&b, "[");
    sbuf_json_str(&b, in);
    sbuf_puts(&b, ",");
    sbuf_json_strn(&b, "x\0y", 3);
    sbuf_puts(&b, ",");
    sbuf_json_str(&b, "\xc3\xa9\xe2\x82\xac");
    sbuf_puts(&b, ",");
    sbuf_json_str(&b, NULL);
    sbuf_puts(&b, "]");
    check_invariants(&b);

    json_error_t err;
    json_t *root = json_loads(b.data, JSON_ALLOW_NUL, &err);
    if (!root)
        fail_msg("jansson rejected %s: %s", b.data, err.text);
    assert_true(json_is_array(root));
    assert_int_equal(json_array_size(root), 4);
    assert_string_equal(json_string_value(json_array_get(root, 0)), in);
    json_t *nul = json_array_get(root, 1);
    assert_int_equal(json_string_length(nul), 3);
    assert_memory_equal(json_string_value(nul), "x\0y", 3);
    assert_string_equal(json_string_value(json_array_get(root, 2)), "\xc3\xa9\xe2\x82\xac");
    assert_true(json_is_null(json_array_get(root, 3)));
    json_decref(root);
    sbuf_free(&b);
}

/* A long escaped string crosses several growth steps. */
static void test_json_long_string(void **state)
{
    (void)state;
    enum { N = 3000 };
    char *in = malloc(N + 1);
    assert_non_null(in);
    for (int i = 0; i < N; i++)
        in[i] = (i % 3 == 0) ? '"' : (i % 3 == 1) ? '\x01' : 'z';
    in[N] = '\0';
    sbuf b = {0};
    sbuf_json_str(&b, in);
    check_invariants(&b);
    /* each triple becomes \" + \u0001 + z = 2 + 6 + 1 bytes */
    assert_int_equal(b.len, 2 + (N / 3) * 9);
    json_error_t err;
    json_t *v = json_loads(b.data, JSON_DECODE_ANY, &err);
    assert_non_null(v);
    assert_string_equal(json_string_value(v), in);
    json_decref(v);
    sbuf_free(&b);
    free(in);
}

static void test_a_length_past_any_memory_fails(void **state)
{
    (void)state;
    /* refused before anything is read: a length whose room and terminator would wrap to less
     * than the buffer holds, or one short of that */
    static const size_t lengths[] = {SIZE_MAX, SIZE_MAX - 3, SIZE_MAX / 4};
    for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
        sbuf b = {0};
        sbuf_puts(&b, "keep");
        sbuf_append(&b, "x", lengths[i]);
        assert_true(sbuf_failed(&b));
        assert_int_equal(sbuf_error(&b), ENOMEM);
        assert_int_equal(b.len, 4);
        assert_string_equal(b.data, "keep");
        sbuf_free(&b);
    }
    /* a JSON string's length and its quotes would wrap too: refused before s is read */
    static const size_t strn[] = {SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - 2};
    for (size_t i = 0; i < sizeof strn / sizeof strn[0]; i++) {
        sbuf b = {0};
        sbuf_puts(&b, "keep");
        assert_int_equal(sbuf_json_strn(&b, "x", strn[i]), 0);
        assert_true(sbuf_failed(&b));
        assert_int_equal(b.len, 4);
        sbuf_free(&b);
    }
}

/* Text printf cannot write fails the buffer with its own error, not as memory run out. */
static void test_printf_format_error_is_not_out_of_memory(void **state)
{
    (void)state;
    sbuf b = {0};
    assert_int_equal(sbuf_error(&b), 0);
    sbuf_puts(&b, "keep");
    sbuf_printf(&b, "%lc", (wint_t)0x20ac); /* the C locale has no euro sign */
    assert_true(sbuf_failed(&b));
    assert_int_equal(sbuf_error(&b), EILSEQ);
    sbuf_append(&b, "x", SIZE_MAX); /* the first failure's error stands */
    assert_int_equal(sbuf_error(&b), EILSEQ);
    assert_null(sbuf_take(&b, NULL));
    assert_int_equal(sbuf_error(&b), 0);
}

/* sbuf_error_text() says what failed the buffer, and out of memory only when memory ran out. */
static void test_error_text_says_why(void **state)
{
    (void)state;
    sbuf b = {0};
    assert_string_equal(sbuf_error_text(&b), "");
    sbuf_printf(&b, "%lc", (wint_t)0x20ac); /* the C locale has no euro sign */
    assert_string_equal(sbuf_error_text(&b), "a character the locale cannot write");
    sbuf_free(&b);
    sbuf_append(&b, "x", SIZE_MAX);
    assert_string_equal(sbuf_error_text(&b), "out of memory");
    sbuf_free(&b);
    /* past INT_MAX bytes, which vsnprintf() cannot count */
    b = (sbuf){.failed = true, .error = EOVERFLOW};
    assert_string_equal(sbuf_error_text(&b), "text too long to format");
    b = (sbuf){.failed = true, .error = EINVAL};
    assert_string_equal(sbuf_error_text(&b), "text that cannot be formatted");
}

/* As Go's fmt.Print writes a float64 (strconv's 'g', -1), as Prometheus's Go client writes le. */
static void test_double_text_go(void **state)
{
    (void)state;
    static const struct {
        double d;
        const char *want;
    } cases[] = {
        {1, "1"},
        {0, "0"},
        {-0.0, "0"},
        {-1, "-1"},
        {0.25, "0.25"},
        {0.1, "0.1"},
        {-2.5, "-2.5"},
        {0.0001, "0.0001"},
        {0.00001, "1e-05"},
        {0.000125, "0.000125"},
        {100000, "100000"},
        {123456.5, "123456.5"},
        {999999, "999999"},
        {1e6, "1e+06"},
        {1048576, "1.048576e+06"},
        {1234567.5, "1.2345675e+06"},
        {1e21, "1e+21"},
        {5e-324, "5e-324"},
        {1.7976931348623157e308, "1.7976931348623157e+308"},
        {NAN, "NaN"},
        {INFINITY, "+Inf"},
        {-INFINITY, "-Inf"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[DOUBLE_TEXT_MAX];
        double_text_go(out, cases[i].d);
        if (strcmp(out, cases[i].want) != 0)
            fail_msg("%.17g: %s, where Go writes %s", cases[i].d, out, cases[i].want);
    }
}

static void test_failed_is_sticky(void **state)
{
    (void)state;
    sbuf b = {0};
    sbuf_puts(&b, "keep");
    assert_false(sbuf_failed(&b));
    b.failed = true; /* as if an allocation had failed */
    sbuf_puts(&b, "lost");
    sbuf_putc(&b, 'x');
    sbuf_int(&b, 7);
    sbuf_printf(&b, "%s", "more");
    sbuf_json_str(&b, "q");
    assert_true(sbuf_failed(&b));
    assert_int_equal(b.len, 4);
    assert_string_equal(b.data, "keep");
    sbuf_free(&b);
    assert_false(sbuf_failed(&b));
    /* taking a failed buffer gives nothing, never the part that was built */
    sbuf_puts(&b, "part");
    b.failed = true;
    size_t len = 99;
    assert_null(sbuf_take(&b, &len));
    assert_int_equal(len, 0);
    assert_false(sbuf_failed(&b));
    assert_null(b.data);
}

static void test_utf8_cut_never_splits_a_character(void **state)
{
    (void)state;
    const char *s = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z"; /* a é € 😀 z */
    assert_int_equal(utf8_cut(s, 0), 0);
    assert_int_equal(utf8_cut(s, 1), 1); /* before é */
    assert_int_equal(utf8_cut(s, 2), 1); /* inside é */
    assert_int_equal(utf8_cut(s, 3), 3); /* before € */
    assert_int_equal(utf8_cut(s, 4), 3); /* inside € */
    assert_int_equal(utf8_cut(s, 5), 3);
    assert_int_equal(utf8_cut(s, 6), 6);   /* before 😀 */
    assert_int_equal(utf8_cut(s, 9), 6);   /* inside 😀, at its last byte */
    assert_int_equal(utf8_cut(s, 10), 10); /* before z */
    assert_int_equal(utf8_cut(s, 11), 11); /* at the NUL */
    /* stray continuation bytes at the start: back to 0, never before it */
    assert_int_equal(utf8_cut("\x80\x80x", 1), 0);
    assert_int_equal(utf8_cut("\x80\x80x", 2), 2); /* before x */
    /* a run of stray continuation bytes longer than a character's: at most 3 bytes back */
    const char *stray = "exec: \xb5\xb5\xb5\xb5\xb5\xb5\xb5\xb5";
    assert_int_equal(utf8_cut(stray, 12), 9);
    assert_int_equal(utf8_cut(stray, 7), 5); /* within reach: the space taken for their lead */
}

/* Trim s[0..n) and compare what is left with want[0..want_n). */
static void check_trim_n(const char *s, size_t n, const char *want, size_t want_n)
{
    const char *t = s;
    size_t m = n;
    str_trim(&t, &m);
    assert_int_equal(m, want_n);
    assert_memory_equal(t, want, m);
    assert_true(t >= s && t + m <= s + n);
}

static void check_trim(const char *s, size_t n, const char *want)
{
    check_trim_n(s, n, want, strlen(want));
}

static void test_str_trim_drops_white_space_at_both_ends(void **state)
{
    (void)state;
    check_trim(" \t\r\nThrottling\r\n \t", 18, "Throttling");
    check_trim("a b", 3, "a b");         /* inside, kept */
    check_trim("\v\fx\f", 4, "\v\fx\f"); /* not str_is_ws() */
    check_trim(" \n\t\r", 4, "");
    check_trim("", 0, "");
    check_trim_n(" x \0 ", 5, "x \0", 3); /* a NUL is not white space */
    check_trim(" ab  cd", 4, "ab");       /* nothing past n is looked at */
}

static void test_utf8_start_skips_to_a_character(void **state)
{
    (void)state;
    const char *s = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z"; /* a é € 😀 z */
    assert_int_equal(utf8_start(s, 0, 11), 0);
    assert_int_equal(utf8_start(s, 1, 11), 1);  /* at é */
    assert_int_equal(utf8_start(s, 2, 11), 3);  /* inside é: at € */
    assert_int_equal(utf8_start(s, 4, 11), 6);  /* inside €: at 😀 */
    assert_int_equal(utf8_start(s, 7, 11), 10); /* inside 😀: at z */
    assert_int_equal(utf8_start(s, 11, 11), 11);
    assert_int_equal(utf8_start(s, 7, 9), 9); /* never past n */
    assert_int_equal(utf8_start("\x80\x80", 0, 2), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_str_join_cuts_to_fit),
        cmocka_unit_test(test_take_empty_returns_empty_string),
        cmocka_unit_test(test_take_hands_over_and_resets),
        cmocka_unit_test(test_truncate),
        cmocka_unit_test(test_append_puts_putc),
        cmocka_unit_test(test_append_zero_on_empty),
        cmocka_unit_test(test_growth_many_appends),
        cmocka_unit_test(test_growth_single_large_append),
        cmocka_unit_test(test_printf_short),
        cmocka_unit_test(test_printf_long),
        cmocka_unit_test(test_printf_long_with_arguments),
        cmocka_unit_test(test_int_values),
        cmocka_unit_test(test_double_as_python_writes_it),
        cmocka_unit_test(test_double_not_finite),
        cmocka_unit_test(test_double_as_python_writes_random_doubles),
        cmocka_unit_test(test_double_round_trips),
        cmocka_unit_test(test_double_appends_after_content),
        cmocka_unit_test(test_json_plain_and_null),
        cmocka_unit_test(test_json_quotes_backslash),
        cmocka_unit_test(test_json_named_controls),
        cmocka_unit_test(test_json_other_controls),
        cmocka_unit_test(test_json_utf8_passes_through),
        cmocka_unit_test(test_utf8_dup_replaces_what_is_not_utf8),
        cmocka_unit_test(test_utf8_valid_takes_only_well_formed_text),
        cmocka_unit_test(test_utf8_copy_within_keeps_whole_characters),
        cmocka_unit_test(test_json_strn_embedded_nul),
        cmocka_unit_test(test_json_strn_escapes_noncharacters),
        cmocka_unit_test(test_json_appends_after_content),
        cmocka_unit_test(test_json_roundtrip_with_jansson),
        cmocka_unit_test(test_json_long_string),
        cmocka_unit_test(test_a_length_past_any_memory_fails),
        cmocka_unit_test(test_printf_format_error_is_not_out_of_memory),
        cmocka_unit_test(test_error_text_says_why),
        cmocka_unit_test(test_failed_is_sticky),
        cmocka_unit_test(test_double_text_go),
        cmocka_unit_test(test_utf8_cut_never_splits_a_character),
        cmocka_unit_test(test_str_trim_drops_white_space_at_both_ends),
        cmocka_unit_test(test_utf8_start_skips_to_a_character),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
