/*
 * Unit tests for core/siphash (reference test vectors) and core/pagetoken
 * (round trip, tampering, wrong key, other filters, garbage input).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/pagetoken.h"
#include "core/siphash.h"
#include "core/uuid7.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- SipHash-2-4 ---- */

/*
 * vectors_sip64 of the SipHash reference implementation (vectors.h): key
 * 00 01 .. 0f, message 00 01 .. (n-1), tag read as a little-endian 64-bit
 * value. Also cross-checked with OpenSSL's SIPHASH MAC (size 8).
 */
static const struct {
    size_t len;
    uint64_t tag;
} sip_vectors[] = {
    {0, 0x726fdb47dd0e0e31ULL},  {1, 0x74f839c593dc67fdULL},  {2, 0x0d6c8009d9a94f5aULL},
    {3, 0x85676696d7fb7e2dULL},  {4, 0xcf2794e0277187b7ULL},  {5, 0x18765564cd99a68dULL},
    {6, 0xcbc9466e58fee3ceULL},  {7, 0xab0200f58b01d137ULL},  {8, 0x93f5f5799a932462ULL},
    {9, 0x9e0082df0ba9e4b0ULL},  {10, 0x7a5dbbc594ddb9f3ULL}, {11, 0xf4b32f46226bada7ULL},
    {12, 0x751e8fbc860ee5fbULL}, {13, 0x14ea5627c0843d90ULL}, {14, 0xf723ca908e7af2eeULL},
    {15, 0xa129ca6149be45e5ULL}, {16, 0x3f2acc7f57c29bdbULL}, {63, 0x958a324ceb064572ULL},
};

/* Longer messages (bytes i mod 256), computed with OpenSSL's SIPHASH MAC. */
static const struct {
    size_t len;
    uint64_t tag;
} sip_long[] = {
    {64, 0xacd2c40b8502cad8ULL},
    {256, 0x999d0526d2a7bfd7ULL},
    {1000, 0xdb9b3ed69e31c9a6ULL},
};

static void sip_key(uint8_t key[16])
{
    for (int i = 0; i < 16; i++)
        key[i] = (uint8_t)i;
}

static void test_siphash_reference_vectors(void **state)
{
    (void)state;
    uint8_t key[16];
    sip_key(key);
    uint8_t msg[64];
    for (int i = 0; i < 64; i++)
        msg[i] = (uint8_t)i;
    for (size_t i = 0; i < sizeof sip_vectors / sizeof sip_vectors[0]; i++) {
        uint64_t got = siphash24(key, msg, sip_vectors[i].len);
        if (got != sip_vectors[i].tag)
            fail_msg("n=%zu: got 0x%016llx, want 0x%016llx", sip_vectors[i].len,
                     (unsigned long long)got, (unsigned long long)sip_vectors[i].tag);
    }
}

static void test_siphash_spot_values(void **state)
{
    (void)state;
    /* three published reference values, spelled out on their own */
    uint8_t key[16];
    sip_key(key);
    const uint8_t msg[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    assert_true(siphash24(key, msg, 0) == 0x726fdb47dd0e0e31ULL);
    assert_true(siphash24(key, msg, 1) == 0x74f839c593dc67fdULL);
    assert_true(siphash24(key, msg, 8) == 0x93f5f5799a932462ULL);
    assert_true(siphash24(key, msg, 15) == 0xa129ca6149be45e5ULL);
    /* a NULL pointer is fine for an empty message */
    assert_true(siphash24(key, NULL, 0) == 0x726fdb47dd0e0e31ULL);
}

static void test_siphash_long_messages(void **state)
{
    (void)state;
    uint8_t key[16];
    sip_key(key);
    uint8_t *msg = malloc(1001);
    assert_non_null(msg);
    for (int i = 0; i < 1000; i++)
        msg[i] = (uint8_t)i;
    for (size_t i = 0; i < sizeof sip_long / sizeof sip_long[0]; i++) {
        uint64_t got = siphash24(key, msg, sip_long[i].len);
        if (got != sip_long[i].tag)
            fail_msg("n=%zu: got 0x%016llx, want 0x%016llx", sip_long[i].len,
                     (unsigned long long)got, (unsigned long long)sip_long[i].tag);
    }
    /* unaligned input gives the same tag */
    memmove(msg + 1, msg, 1000);
    assert_true(siphash24(key, msg + 1, 63) == 0x958a324ceb064572ULL);
    assert_true(siphash24(key, msg + 1, 1000) == 0xdb9b3ed69e31c9a6ULL);
    free(msg);
}

static void test_siphash_sensitivity(void **state)
{
    (void)state;
    uint8_t key[16];
    sip_key(key);
    uint8_t msg[24];
    for (int i = 0; i < 24; i++)
        msg[i] = (uint8_t)(0xa0 + i);
    uint64_t base = siphash24(key, msg, sizeof msg);
    /* every single message bit and every key bit changes the tag */
    for (int bit = 0; bit < 24 * 8; bit++) {
        msg[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_true(siphash24(key, msg, sizeof msg) != base);
        msg[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    for (int bit = 0; bit < 128; bit++) {
        key[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_true(siphash24(key, msg, sizeof msg) != base);
        key[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    assert_true(siphash24(key, msg, sizeof msg) == base);
    /* the length is bound: a trailing zero byte changes the tag */
    uint8_t z[9] = {0};
    for (size_t n = 0; n < 8; n++)
        assert_true(siphash24(key, z, n) != siphash24(key, z, n + 1));
}

/* ---- page tokens ---- */

static const uint8_t key_a[PAGETOKEN_KEY_LEN] = {0x4b, 0x1e, 0x90, 0x02, 0xee, 0x71, 0x3c, 0xd5,
                                                 0x08, 0x6a, 0xf2, 0x19, 0xb7, 0x44, 0x2d, 0x83};
static const uint8_t key_b[PAGETOKEN_KEY_LEN] = {0};

#define ID1 "0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e5f"
#define ID2 "0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e60"

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void encode_ok(const uint8_t *key, const char *id, const char *status, const char *type,
                      char out[PAGETOKEN_TEXT_MAX])
{
    memset(out, 'X', PAGETOKEN_TEXT_MAX);
    if (!pagetoken_encode(key, id, status, type, out))
        fail_msg("encode failed for %s", id);
    size_t n = strnlen(out, PAGETOKEN_TEXT_MAX);
    assert_true(n < PAGETOKEN_TEXT_MAX);
    assert_int_equal(n, 36);
    for (size_t i = 0; i < n; i++)
        if (!strchr(b64url, out[i]))
            fail_msg("token %s has a character outside base64url at %zu", out, i);
}

static bool decodes(const uint8_t *key, const char *token, const char *status, const char *type)
{
    char id[37];
    return pagetoken_decode(key, token, status, type, id);
}

static void check_round_trip(const char *id, const char *status, const char *type)
{
    char tok[PAGETOKEN_TEXT_MAX];
    encode_ok(key_a, id, status, type, tok);
    char back[37];
    memset(back, 'X', sizeof back);
    if (!pagetoken_decode(key_a, tok, status, type, back))
        fail_msg("token %s for %s (%s, %s) does not decode", tok, id, status ? status : "NULL",
                 type ? type : "NULL");
    assert_int_equal(back[36], '\0');
    /* the id comes back in canonical lower case */
    char want[37];
    for (int i = 0; i < 37; i++)
        want[i] = (id[i] >= 'A' && id[i] <= 'F') ? (char)(id[i] - 'A' + 'a') : id[i];
    assert_string_equal(back, want);
}

static void test_token_round_trip(void **state)
{
    (void)state;
    static const char *const statuses[] = {NULL,        "CREATED", "IN_PROGRESS",
                                           "COMPLETED", "FAILED",  ""};
    static const char *const types[] = {NULL, "TASK1", "TASK2", "", "a-much-longer-task-type"};
    for (size_t s = 0; s < sizeof statuses / sizeof statuses[0]; s++)
        for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
            check_round_trip(ID1, statuses[s], types[t]);
            check_round_trip(ID2, statuses[s], types[t]);
        }
    check_round_trip("00000000-0000-0000-0000-000000000000", NULL, NULL);
    check_round_trip("ffffffff-ffff-ffff-ffff-ffffffffffff", "FAILED", "TASK3");
    check_round_trip("0190F3C2-7B1E-7C3A-9D2E-5A1B2C3D4E5F", NULL, "TASK1");
    check_round_trip("f47ac10b-58cc-4372-a567-0e02b2c3d479", NULL, NULL); /* any version */

    /* many generated ids */
    uuid7_gen g = {0};
    for (int i = 0; i < 2000; i++) {
        uint8_t rnd[10];
        for (int k = 0; k < 10; k++)
            rnd[k] = (uint8_t)(i * 31 + k * 7);
        char id[37];
        uuid7_next(&g, 1700000000000ULL + (uint64_t)i / 4, rnd, id);
        check_round_trip(id, i % 2 ? "COMPLETED" : NULL, i % 3 ? "TASK2" : NULL);
    }
}

static void test_token_deterministic_and_distinct(void **state)
{
    (void)state;
    char a[PAGETOKEN_TEXT_MAX], b[PAGETOKEN_TEXT_MAX];
    encode_ok(key_a, ID1, "CREATED", "TASK1", a);
    encode_ok(key_a, ID1, "CREATED", "TASK1", b);
    assert_string_equal(a, b);
    /* upper-case input encodes the same bytes */
    encode_ok(key_a, "0190F3C2-7B1E-7C3A-9D2E-5A1B2C3D4E5F", "CREATED", "TASK1", b);
    assert_string_equal(a, b);

    encode_ok(key_a, ID2, "CREATED", "TASK1", b);
    assert_string_not_equal(a, b);
    encode_ok(key_b, ID1, "CREATED", "TASK1", b);
    assert_string_not_equal(a, b);
    encode_ok(key_a, ID1, NULL, "TASK1", b);
    assert_string_not_equal(a, b);
    encode_ok(key_a, ID1, "CREATED", NULL, b);
    assert_string_not_equal(a, b);
}

/* Every position, every other base64url character: decoding must fail. */
static void check_all_flips(const char *id, const char *status, const char *type)
{
    char tok[PAGETOKEN_TEXT_MAX];
    encode_ok(key_a, id, status, type, tok);
    assert_true(decodes(key_a, tok, status, type));
    size_t n = strlen(tok);
    for (size_t i = 0; i < n; i++) {
        char orig = tok[i];
        for (size_t k = 0; k < sizeof b64url - 1; k++) {
            if (b64url[k] == orig)
                continue;
            tok[i] = b64url[k];
            if (decodes(key_a, tok, status, type))
                fail_msg("tampered token %s (position %zu, %c -> %c) decoded", tok, i, orig,
                         b64url[k]);
        }
        tok[i] = orig;
    }
    assert_true(decodes(key_a, tok, status, type));
}

static void test_token_single_char_tamper(void **state)
{
    (void)state;
    check_all_flips(ID1, NULL, NULL);
    check_all_flips(ID2, "COMPLETED", "TASK1");
    check_all_flips("00000000-0000-0000-0000-000000000000", NULL, "TASK2");
    check_all_flips("ffffffff-ffff-ffff-ffff-ffffffffffff", "FAILED", NULL);
}

static void test_token_wrong_key(void **state)
{
    (void)state;
    char tok[PAGETOKEN_TEXT_MAX];
    encode_ok(key_a, ID1, "IN_PROGRESS", "TASK1", tok);
    assert_true(decodes(key_a, tok, "IN_PROGRESS", "TASK1"));
    assert_false(decodes(key_b, tok, "IN_PROGRESS", "TASK1"));
    /* flipping any one key bit invalidates the token */
    uint8_t k[PAGETOKEN_KEY_LEN];
    for (int bit = 0; bit < PAGETOKEN_KEY_LEN * 8; bit++) {
        memcpy(k, key_a, sizeof k);
        k[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        if (decodes(k, tok, "IN_PROGRESS", "TASK1"))
            fail_msg("token decoded under a key with bit %d flipped", bit);
    }
}

static void test_token_other_filters(void **state)
{
    (void)state;
    char tok[PAGETOKEN_TEXT_MAX];

    /* issued with a status filter */
    encode_ok(key_a, ID1, "COMPLETED", NULL, tok);
    assert_true(decodes(key_a, tok, "COMPLETED", NULL));
    assert_false(decodes(key_a, tok, NULL, NULL));
    assert_false(decodes(key_a, tok, "", NULL));
    assert_false(decodes(key_a, tok, "FAILED", NULL));
    assert_false(decodes(key_a, tok, "COMPLETE", NULL));
    assert_false(decodes(key_a, tok, "COMPLETED ", NULL));
    assert_false(decodes(key_a, tok, "completed", NULL));
    assert_false(decodes(key_a, tok, "COMPLETED", "TASK1"));
    assert_false(decodes(key_a, tok, NULL, "COMPLETED")); /* filter moved to the other slot */

    /* issued with no filters */
    encode_ok(key_a, ID1, NULL, NULL, tok);
    assert_true(decodes(key_a, tok, NULL, NULL));
    assert_false(decodes(key_a, tok, "CREATED", NULL));
    assert_false(decodes(key_a, tok, NULL, "TASK1"));
    assert_false(decodes(key_a, tok, "", NULL)); /* empty filter is not "no filter" */
    assert_false(decodes(key_a, tok, NULL, ""));
    assert_false(decodes(key_a, tok, "", ""));

    /* issued with a task_type filter */
    encode_ok(key_a, ID1, NULL, "TASK1", tok);
    assert_true(decodes(key_a, tok, NULL, "TASK1"));
    assert_false(decodes(key_a, tok, NULL, "TASK2"));
    assert_false(decodes(key_a, tok, NULL, "TASK"));
    assert_false(decodes(key_a, tok, NULL, "TASK11"));
    assert_false(decodes(key_a, tok, NULL, NULL));
    assert_false(decodes(key_a, tok, "TASK1", NULL));
    assert_false(decodes(key_a, tok, "CREATED", "TASK1"));

    /* issued with both */
    encode_ok(key_a, ID1, "FAILED", "TASK3", tok);
    assert_true(decodes(key_a, tok, "FAILED", "TASK3"));
    assert_false(decodes(key_a, tok, "FAILED", "TASK2"));
    assert_false(decodes(key_a, tok, "FAILED", NULL));
    assert_false(decodes(key_a, tok, NULL, "TASK3"));
    assert_false(decodes(key_a, tok, "TASK3", "FAILED"));

    /* the boundary between the two filters is bound, not just their concatenation */
    encode_ok(key_a, ID1, "AB", "C", tok);
    assert_true(decodes(key_a, tok, "AB", "C"));
    assert_false(decodes(key_a, tok, "A", "BC"));
    assert_false(decodes(key_a, tok, "ABC", ""));
    assert_false(decodes(key_a, tok, "", "ABC"));
    assert_false(decodes(key_a, tok, "ABC", NULL));
}

static void test_token_long_filters(void **state)
{
    (void)state;
    /* filters up to 253 bytes are bound in full */
    char f1[300], f2[300];
    for (size_t len = 1; len <= 253; len++) {
        memset(f1, 'a', len);
        f1[len] = '\0';
        memcpy(f2, f1, len + 1);
        f2[len - 1] = 'b'; /* differs only in the last byte */
        char tok[PAGETOKEN_TEXT_MAX];
        encode_ok(key_a, ID1, NULL, f1, tok);
        assert_true(decodes(key_a, tok, NULL, f1));
        if (decodes(key_a, tok, NULL, f2))
            fail_msg("task_type of length %zu differing in its last byte accepted", len);
        f2[len - 1] = 'a';
        f2[len] = 'a';
        f2[len + 1] = '\0'; /* one byte longer */
        if (decodes(key_a, tok, NULL, f2))
            fail_msg("task_type of length %zu accepted for length %zu", len + 1, len);
    }
}

/*
 * Filters longer than 254 bytes cannot be signed whole: no token is issued
 * for them and none decodes under them, so two long filters sharing a prefix
 * can never share a token.
 */
static void test_token_very_long_filters_refused(void **state)
{
    (void)state;
    char f1[400], tok[PAGETOKEN_TEXT_MAX], id[37];
    memset(f1, 'a', 300);
    f1[300] = '\0';
    assert_false(pagetoken_encode(key_a, ID1, NULL, f1, tok));
    assert_false(pagetoken_encode(key_a, ID1, f1, NULL, tok));
    f1[254] = '\0';
    encode_ok(key_a, ID1, NULL, f1, tok);
    assert_true(decodes(key_a, tok, NULL, f1));
    f1[254] = 'a';
    f1[255] = '\0';
    assert_false(pagetoken_decode(key_a, tok, NULL, f1, id));
}

static void test_token_garbage(void **state)
{
    (void)state;
    char good[PAGETOKEN_TEXT_MAX];
    encode_ok(key_a, ID1, NULL, NULL, good);
    char last[37] = "untouched";

    assert_false(pagetoken_decode(key_a, NULL, NULL, NULL, last));
    assert_false(decodes(key_a, "", NULL, NULL));
    assert_false(decodes(key_a, "A", NULL, NULL));
    assert_false(decodes(key_a, "not a token", NULL, NULL));
    assert_false(decodes(key_a, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", NULL, NULL));
    assert_false(decodes(key_a, "____________________________________", NULL, NULL));
    assert_false(decodes(key_a, "AQGQ88J7HnwanS5aGyw9Tl8AAAAAAAAAAAAA", NULL, NULL));

    char buf[2048];
    /* too short: every proper prefix */
    for (size_t n = 0; n < 36; n++) {
        memcpy(buf, good, n);
        buf[n] = '\0';
        if (decodes(key_a, buf, NULL, NULL))
            fail_msg("prefix of length %zu decoded", n);
    }
    /* too long: the good token with anything appended */
    static const char *const tails[] = {"A", "=", "==", "\n", " ", "AAAA", "_"};
    for (size_t i = 0; i < sizeof tails / sizeof tails[0]; i++) {
        snprintf(buf, sizeof buf, "%s%s", good, tails[i]);
        if (decodes(key_a, buf, NULL, NULL))
            fail_msg("token with \"%s\" appended decoded", tails[i]);
    }
    snprintf(buf, sizeof buf, " %s", good);
    assert_false(decodes(key_a, buf, NULL, NULL));
    memset(buf, 'A', sizeof buf - 1);
    buf[sizeof buf - 1] = '\0';
    assert_false(decodes(key_a, buf, NULL, NULL));
    /* a token twice over */
    snprintf(buf, sizeof buf, "%s%s", good, good);
    assert_false(decodes(key_a, buf, NULL, NULL));

    /* characters outside base64url, at every position */
    static const char bad_chars[] = {'+',  '/',  '=', ' ', '.',    '!',    '~',
                                     '\n', '\t', '"', '%', '\x7f', '\x80', '\xff'};
    for (size_t i = 0; i < 36; i++) {
        for (size_t k = 0; k < sizeof bad_chars; k++) {
            memcpy(buf, good, 37);
            buf[i] = bad_chars[k];
            if (decodes(key_a, buf, NULL, NULL))
                fail_msg("token with 0x%02x at %zu decoded", (unsigned char)bad_chars[k], i);
        }
    }
    /* the standard-base64 spelling of a token is not accepted */
    memcpy(buf, good, 37);
    int converted = 0;
    for (size_t i = 0; i < 36; i++) {
        if (buf[i] == '-') {
            buf[i] = '+';
            converted++;
        } else if (buf[i] == '_') {
            buf[i] = '/';
            converted++;
        }
    }
    if (converted)
        assert_false(decodes(key_a, buf, NULL, NULL));

    /* the genuine token still decodes after all that */
    assert_true(pagetoken_decode(key_a, good, NULL, NULL, last));
    assert_string_equal(last, ID1);
}

static void test_token_swapped_between_ids(void **state)
{
    (void)state;
    /* splicing the MAC part of one token onto the id part of another fails */
    char t1[PAGETOKEN_TEXT_MAX], t2[PAGETOKEN_TEXT_MAX], mix[PAGETOKEN_TEXT_MAX];
    encode_ok(key_a, ID1, NULL, NULL, t1);
    encode_ok(key_a, ID2, NULL, NULL, t2);
    assert_string_not_equal(t1, t2);
    for (size_t cut = 1; cut < 36; cut++) {
        memcpy(mix, t1, cut);
        memcpy(mix + cut, t2 + cut, 37 - cut);
        if (strcmp(mix, t1) == 0 || strcmp(mix, t2) == 0)
            continue;
        if (decodes(key_a, mix, NULL, NULL))
            fail_msg("spliced token %s (cut at %zu) decoded", mix, cut);
    }
}

static void test_encode_rejects_bad_id(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "not-a-uuid",
        "0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e5",
        "0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e5f0",
        "0190f3c27b1e7c3a9d2e5a1b2c3d4e5f",
        "{0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e5f}",
        "0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e5g",
        "0190f3c2_7b1e_7c3a_9d2e_5a1b2c3d4e5f",
        " 0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e5",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char out[PAGETOKEN_TEXT_MAX];
        if (pagetoken_encode(key_a, bad[i], NULL, NULL, out))
            fail_msg("encode accepted \"%s\"", bad[i]);
        if (pagetoken_encode(key_a, bad[i], "CREATED", "TASK1", out))
            fail_msg("encode accepted \"%s\" with filters", bad[i]);
    }
    char out[PAGETOKEN_TEXT_MAX];
    assert_false(pagetoken_encode(key_a, NULL, NULL, NULL, out));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_siphash_reference_vectors),
        cmocka_unit_test(test_siphash_spot_values),
        cmocka_unit_test(test_siphash_long_messages),
        cmocka_unit_test(test_siphash_sensitivity),
        cmocka_unit_test(test_token_round_trip),
        cmocka_unit_test(test_token_deterministic_and_distinct),
        cmocka_unit_test(test_token_single_char_tamper),
        cmocka_unit_test(test_token_wrong_key),
        cmocka_unit_test(test_token_other_filters),
        cmocka_unit_test(test_token_long_filters),
        cmocka_unit_test(test_token_very_long_filters_refused),
        cmocka_unit_test(test_token_garbage),
        cmocka_unit_test(test_token_swapped_between_ids),
        cmocka_unit_test(test_encode_rejects_bad_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
