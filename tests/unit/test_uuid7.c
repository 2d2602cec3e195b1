/*
 * Unit tests for core/uuid7: text format, ordering under every clock
 * behaviour, the timestamp field, and uuid_parse / uuid_format.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/uuid7.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { NIDS = 100000 };

/* Deterministic pseudo-random bytes (xorshift64*), so failures reproduce. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng_next(void)
{
    uint64_t x = rng_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 0x2545f4914f6cdd1dULL;
}

static void rng_fill(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(rng_next() >> 56);
}

static bool is_lower_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static unsigned hexval(char c)
{
    return c <= '9' ? (unsigned)(c - '0') : (unsigned)(c - 'a' + 10);
}

/* Check canonical UUIDv7 text; reports the offending id. */
static void check_format(const char *s)
{
    if (strlen(s) != 36)
        fail_msg("length %zu: %s", strlen(s), s);
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                fail_msg("no dash at %d: %s", i, s);
        } else if (!is_lower_hex(s[i])) {
            fail_msg("not lower-case hex at %d: %s", i, s);
        }
    }
    if (s[14] != '7')
        fail_msg("version nibble is not 7: %s", s);
    if ((hexval(s[19]) & 0xc) != 0x8)
        fail_msg("variant bits are not 10: %s", s);
}

/* The 48-bit Unix-millisecond field of an id's text. */
static uint64_t id_ms(const char *s)
{
    uint64_t v = 0;
    for (int i = 0; i < 13; i++) {
        if (i == 8)
            continue;
        v = v << 4 | hexval(s[i]);
    }
    return v;
}

/* The 12-bit counter field that follows the version nibble. */
static unsigned id_counter(const char *s)
{
    return hexval(s[15]) << 8 | hexval(s[16]) << 4 | hexval(s[17]);
}

static void test_format_single(void **state)
{
    (void)state;
    uuid7_gen g = {0};
    uint8_t rnd[10];
    rng_fill(rnd, sizeof rnd);
    char out[37];
    memset(out, 'X', sizeof out);
    uuid7_next(&g, 1648229203123ULL, rnd, out);
    assert_int_equal(out[36], '\0');
    check_format(out);
    assert_true(id_ms(out) == 1648229203123ULL);
    /* 1648229203123 = 0x017fc21dbcb3 */
    assert_memory_equal(out, "017fc21d-bcb3-7", 15);
}

static void test_format_many_random(void **state)
{
    (void)state;
    uuid7_gen g = {0};
    uint8_t rnd[10];
    char out[37];
    uint64_t now = 1700000000000ULL;
    for (int i = 0; i < 20000; i++) {
        rng_fill(rnd, sizeof rnd);
        now += rng_next() % 3; /* mostly same or next millisecond */
        uuid7_next(&g, now, rnd, out);
        check_format(out);
    }
}

static void test_random_bits_from_rnd(void **state)
{
    (void)state;
    char out[37];
    uint8_t b[16];

    /* all-zero randomness: the 62 random bits are zero, variant still 10 */
    uuid7_gen g = {0};
    uint8_t zero[10] = {0};
    uuid7_next(&g, 1000, zero, out);
    check_format(out);
    assert_true(uuid_parse(out, b));
    assert_int_equal(b[8], 0x80);
    for (int i = 9; i < 16; i++)
        assert_int_equal(b[i], 0);

    /* all-ones randomness: the random bits are all ones, variant and version intact */
    uuid7_gen g2 = {0};
    uint8_t ones[10];
    memset(ones, 0xff, sizeof ones);
    uuid7_next(&g2, 1000, ones, out);
    check_format(out);
    assert_true(uuid_parse(out, b));
    assert_int_equal(b[8], 0xbf);
    for (int i = 9; i < 16; i++)
        assert_int_equal(b[i], 0xff);
    assert_int_equal(b[6] >> 4, 7);
    assert_true(id_ms(out) == 1000);
}

/* Make NIDS ids with clock(i) and check they are strictly increasing. */
static void check_increasing(uint64_t (*clock)(int), int rnd_mode, uint64_t *first_ms,
                             uint64_t *last_ms)
{
    uuid7_gen g = {0};
    uint8_t rnd[10];
    char prev[37] = "";
    char out[37];
    for (int i = 0; i < NIDS; i++) {
        if (rnd_mode == 0)
            rng_fill(rnd, sizeof rnd);
        else
            memset(rnd, rnd_mode == 1 ? 0x00 : 0xff, sizeof rnd);
        uuid7_next(&g, clock(i), rnd, out);
        check_format(out);
        if (i > 0 && strcmp(prev, out) >= 0)
            fail_msg("id %d not increasing: %s then %s", i, prev, out);
        if (i == 0 && first_ms)
            *first_ms = id_ms(out);
        memcpy(prev, out, sizeof out);
    }
    if (last_ms)
        *last_ms = id_ms(prev);
}

#define T0 1700000000000ULL

static uint64_t clock_fixed(int i)
{
    (void)i;
    return T0;
}

static uint64_t clock_rising(int i)
{
    return T0 + (uint64_t)i;
}

static uint64_t clock_rising_slowly(int i)
{
    return T0 + (uint64_t)i / 1000; /* 1000 ids per millisecond */
}

/* Steps back by up to 50 ms every so often, and sometimes by a lot. */
static uint64_t clock_backwards(int i)
{
    uint64_t t = T0 + (uint64_t)i / 10;
    if (i % 97 == 0)
        t -= 50;
    if (i % 1013 == 0)
        t -= 100000;
    if (i > NIDS / 2)
        t -= 20000; /* a large permanent step back half way */
    return t;
}

/* Strictly decreasing clock. */
static uint64_t clock_reversed(int i)
{
    return T0 - (uint64_t)i;
}

static void test_order_same_ms(void **state)
{
    (void)state;
    for (int mode = 0; mode < 3; mode++) {
        uint64_t first = 0, last = 0;
        check_increasing(clock_fixed, mode, &first, &last);
        assert_true(first == T0);
        /*
         * The 12-bit counter holds thousands of ids per millisecond, so the
         * borrowed milliseconds stay few (at most 4096 ids fit in one).
         */
        assert_true(last >= T0 + NIDS / 4096 - 1);
        assert_true(last <= T0 + NIDS / 2048 + 1);
    }
}

static void test_order_rising_clock(void **state)
{
    (void)state;
    for (int mode = 0; mode < 3; mode++) {
        check_increasing(clock_rising, mode, NULL, NULL);
        check_increasing(clock_rising_slowly, mode, NULL, NULL);
    }
}

static void test_order_clock_backwards(void **state)
{
    (void)state;
    for (int mode = 0; mode < 3; mode++) {
        check_increasing(clock_backwards, mode, NULL, NULL);
        check_increasing(clock_reversed, mode, NULL, NULL);
    }
}

static void test_timestamp_is_now(void **state)
{
    (void)state;
    uuid7_gen g = {0};
    uint8_t rnd[10];
    char out[37];
    /* a rising clock: every id carries exactly now_ms */
    for (int i = 0; i < NIDS; i++) {
        uint64_t now = T0 + (uint64_t)i * 7;
        rng_fill(rnd, sizeof rnd);
        uuid7_next(&g, now, rnd, out);
        if (id_ms(out) != now)
            fail_msg("id %s has ms %llu, want %llu", out, (unsigned long long)id_ms(out),
                     (unsigned long long)now);
    }
    /* thousands of ids within one millisecond all carry that millisecond */
    uint64_t now = T0 + 10000000;
    unsigned prev_counter = 0;
    for (int i = 0; i < 2048; i++) {
        rng_fill(rnd, sizeof rnd);
        uuid7_next(&g, now, rnd, out);
        if (id_ms(out) != now)
            fail_msg("id %d (%s) left the millisecond early", i, out);
        if (i > 0 && id_counter(out) <= prev_counter)
            fail_msg("counter not increasing at %d: %s", i, out);
        prev_counter = id_counter(out);
    }
    /* specific well-known values */
    static const uint64_t stamps[] = {1, 0x123456789abcULL, 0xffffffffffffULL - 1};
    for (size_t i = 0; i < sizeof stamps / sizeof stamps[0]; i++) {
        uuid7_gen g2 = {0};
        rng_fill(rnd, sizeof rnd);
        uuid7_next(&g2, stamps[i], rnd, out);
        check_format(out);
        assert_true(id_ms(out) == stamps[i]);
    }
    uuid7_gen g3 = {0};
    uuid7_next(&g3, 0x123456789abcULL, rnd, out);
    assert_memory_equal(out, "12345678-9abc-7", 15);
}

/* After a backwards step the ids stay ahead: their ms never drops. */
static void test_backwards_keeps_ms(void **state)
{
    (void)state;
    uuid7_gen g = {0};
    uint8_t rnd[10];
    char a[37], b[37], c[37];
    rng_fill(rnd, sizeof rnd);
    uuid7_next(&g, T0 + 500, rnd, a);
    rng_fill(rnd, sizeof rnd);
    uuid7_next(&g, T0, rnd, b); /* clock went back 500 ms */
    assert_true(strcmp(a, b) < 0);
    assert_true(id_ms(b) >= T0 + 500);
    rng_fill(rnd, sizeof rnd);
    uuid7_next(&g, T0 + 1000, rnd, c); /* clock caught up and passed */
    assert_true(strcmp(b, c) < 0);
    assert_true(id_ms(c) == T0 + 1000);
}

/* A generator resumed after an earlier run's greatest id makes ids above it, whatever its clock
 * says; a lower id, or one of another version, changes nothing. */
static void test_resume_after_last_id(void **state)
{
    (void)state;
    uint8_t rnd[10];
    char before[37], next[37], later[37];
    uuid7_gen earlier = {0};
    rng_fill(rnd, sizeof rnd);
    uuid7_next(&earlier, T0 + 3600000, rnd, before); /* made by a clock an hour ahead */

    uuid7_gen g = {0};
    uuid7_resume(&g, before);
    uuid7_resume(&g, "01000000-0000-7fff-bfff-ffffffffffff"); /* lower: ignored */
    uuid7_resume(&g, "ffffffff-ffff-4fff-bfff-ffffffffffff"); /* version 4: ignored */
    uuid7_resume(&g, "not an id");
    rng_fill(rnd, sizeof rnd);
    uuid7_next(&g, T0, rnd, next);
    check_format(next);
    if (strcmp(before, next) >= 0)
        fail_msg("resumed after %s, made %s", before, next);
    assert_true(id_ms(next) == T0 + 3600000);

    /* the greatest counter of its millisecond: the next id borrows the millisecond after */
    uuid7_gen full = {0};
    uuid7_resume(&full, "01a24684-1284-7fff-8554-f245738cce79");
    memset(rnd, 0, sizeof rnd);
    uuid7_next(&full, T0, rnd, later);
    if (strcmp("01a24684-1284-7fff-8554-f245738cce79", later) >= 0)
        fail_msg("made %s after a full millisecond", later);
}

static const char sample[] = "0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e5f";
static const uint8_t sample_bytes[16] = {0x01, 0x90, 0xf3, 0xc2, 0x7b, 0x1e, 0x7c, 0x3a,
                                         0x9d, 0x2e, 0x5a, 0x1b, 0x2c, 0x3d, 0x4e, 0x5f};

static void test_parse_valid(void **state)
{
    (void)state;
    uint8_t b[16];
    assert_true(uuid_parse(sample, b));
    assert_memory_equal(b, sample_bytes, 16);

    uint8_t up[16];
    assert_true(uuid_parse("0190F3C2-7B1E-7C3A-9D2E-5A1B2C3D4E5F", up));
    assert_memory_equal(up, sample_bytes, 16);
    assert_true(uuid_parse("0190F3c2-7b1E-7C3a-9d2E-5A1b2C3d4E5f", up));
    assert_memory_equal(up, sample_bytes, 16);

    /* any version is accepted */
    uint8_t v4[16];
    assert_true(uuid_parse("f47ac10b-58cc-4372-a567-0e02b2c3d479", v4));
    assert_int_equal(v4[0], 0xf4);
    assert_int_equal(v4[15], 0x79);
    uint8_t nil[16], max[16];
    static const uint8_t zeros[16] = {0};
    assert_true(uuid_parse("00000000-0000-0000-0000-000000000000", nil));
    assert_memory_equal(nil, zeros, 16);
    assert_true(uuid_parse("FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF", max));
    for (int i = 0; i < 16; i++)
        assert_int_equal(max[i], 0xff);
}

static void check_rejected(const char *s)
{
    uint8_t b[16];
    if (uuid_parse(s, b))
        fail_msg("accepted \"%s\"", s ? s : "(null)");
}

static void test_parse_rejects(void **state)
{
    (void)state;
    check_rejected(NULL);
    check_rejected("");
    /* wrong length */
    check_rejected("0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e5");
    check_rejected("0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e5f0");
    check_rejected("0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e5f ");
    check_rejected(" 0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e5f");
    check_rejected("{0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e5f}");
    /* missing dashes */
    check_rejected("0190f3c27b1e7c3a9d2e5a1b2c3d4e5f");
    check_rejected("0190f3c2-7b1e7c3a-9d2e-5a1b2c3d4e5f0");
    check_rejected("0190f3c207b1e-7c3a-9d2e-5a1b2c3d4e5f");
    /* dashes in the wrong places (still 36 characters) */
    check_rejected("0190f3c-27b1e-7c3a-9d2e-5a1b2c3d4e5f");
    check_rejected("0190f3c2-7b1e-7c3a-9d2e5-a1b2c3d4e5f");
    check_rejected("0190f3c2:7b1e:7c3a:9d2e:5a1b2c3d4e5f");
    /* non-hex */
    check_rejected("0190f3g2-7b1e-7c3a-9d2e-5a1b2c3d4e5f");
    check_rejected("0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e5G");
    check_rejected("0x90f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e5f");
    check_rejected("+190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e5f");
    check_rejected("0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e5\xc3");

    /* every single position: a non-hex character, or a hex digit where a dash belongs */
    for (int i = 0; i < 36; i++) {
        char s[37];
        memcpy(s, sample, sizeof s);
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        static const char bad_hex[] = {'g', 'G', 'z', ' ', '-', '.', ':', '/', '@', '`', '\x7f'};
        if (dash) {
            s[i] = '0';
            check_rejected(s);
            s[i] = '_';
            check_rejected(s);
        } else {
            for (size_t k = 0; k < sizeof bad_hex; k++) {
                s[i] = bad_hex[k];
                check_rejected(s);
            }
        }
    }
}

static void test_format_known(void **state)
{
    (void)state;
    char out[37];
    memset(out, 'X', sizeof out);
    uuid_format(sample_bytes, out);
    assert_string_equal(out, sample);
    uint8_t ff[16];
    memset(ff, 0xff, sizeof ff);
    uuid_format(ff, out);
    assert_string_equal(out, "ffffffff-ffff-ffff-ffff-ffffffffffff");
}

static void test_parse_format_round_trip(void **state)
{
    (void)state;
    for (int i = 0; i < 10000; i++) {
        uint8_t in[16], back[16];
        rng_fill(in, sizeof in);
        char text[37];
        uuid_format(in, text);
        assert_int_equal(strlen(text), 36);
        assert_true(uuid_parse(text, back));
        assert_memory_equal(in, back, 16);
    }
    /* text -> bytes -> text normalises to lower case */
    uint8_t b[16];
    char text[37];
    assert_true(uuid_parse("0190F3C2-7B1E-7C3A-9D2E-5A1B2C3D4E5F", b));
    uuid_format(b, text);
    assert_string_equal(text, sample);

    /* generated ids survive the round trip unchanged */
    uuid7_gen g = {0};
    for (int i = 0; i < 1000; i++) {
        uint8_t rnd[10];
        rng_fill(rnd, sizeof rnd);
        char id[37], again[37];
        uuid7_next(&g, T0 + (uint64_t)(i / 3), rnd, id);
        assert_true(uuid_parse(id, b));
        uuid_format(b, again);
        assert_string_equal(id, again);
    }
}

/* The floor of a millisecond sorts at or below every id made in it, above every id made before it,
 * and is itself a version-7 id of that millisecond. */
static void test_floor(void **state)
{
    (void)state;
    char floor[37], next_floor[37];
    uuid7_floor(0x0190f3c27b1eULL, floor);
    assert_string_equal(floor, "0190f3c2-7b1e-7000-8000-000000000000");
    uuid7_floor(0x0190f3c27b1fULL, next_floor);
    uint8_t low[10] = {0}, high[10];
    memset(high, 0xff, sizeof high);
    for (int i = 0; i < 2; i++) {
        uuid7_gen g = {0};
        char id[37];
        uuid7_next(&g, 0x0190f3c27b1eULL, i ? high : low, id);
        assert_true(strcmp(floor, id) <= 0);
        assert_true(strcmp(id, next_floor) < 0);
        for (int k = 0; k < 4000; k++) /* the counter's last values, in the same millisecond */
            uuid7_next(&g, 0x0190f3c27b1eULL, high, id);
        assert_true(strcmp(id, next_floor) < 0 || g.last_ms > 0x0190f3c27b1eULL);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_single),
        cmocka_unit_test(test_format_many_random),
        cmocka_unit_test(test_random_bits_from_rnd),
        cmocka_unit_test(test_order_same_ms),
        cmocka_unit_test(test_order_rising_clock),
        cmocka_unit_test(test_order_clock_backwards),
        cmocka_unit_test(test_timestamp_is_now),
        cmocka_unit_test(test_backwards_keeps_ms),
        cmocka_unit_test(test_resume_after_last_id),
        cmocka_unit_test(test_parse_valid),
        cmocka_unit_test(test_parse_rejects),
        cmocka_unit_test(test_format_known),
        cmocka_unit_test(test_parse_format_round_trip),
        cmocka_unit_test(test_floor),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
