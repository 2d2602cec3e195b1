/*
 * Unit tests for core/siphash (reference test vectors) and core/pagetoken
 * (round trip of ids and filters, text lengths, tampering, truncation, wrong
 * key, correctly signed but malformed layouts, old versions, garbage input).
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

/* Raw bytes of a token: version, id, two filter fields, MAC. */
#define RAW_MAX (1 + 16 + 2 * (1 + PAGETOKEN_FILTER_MAX) + 8)

/* Characters of unpadded base64 for n bytes. */
static size_t b64_len(size_t n)
{
    return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}

/* Text length of the token for filters of these lengths (-1: no filter). */
static size_t token_len(int status_len, int type_len)
{
    size_t raw = 1 + 16 + 1 + 1 + 8;
    raw += status_len > 0 ? (size_t)status_len : 0;
    raw += type_len > 0 ? (size_t)type_len : 0;
    return b64_len(raw);
}

static int flen(const char *f)
{
    return f ? (int)strlen(f) : -1;
}

/* The test's own unpadded base64url encoder, written group by group. */
static void b64url_encode(const uint8_t *in, size_t n, char *out)
{
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64url[v >> 18 & 63];
        out[o++] = b64url[v >> 12 & 63];
        out[o++] = b64url[v >> 6 & 63];
        out[o++] = b64url[v & 63];
    }
    if (n - i == 1) {
        out[o++] = b64url[in[i] >> 2];
        out[o++] = b64url[(in[i] & 3) << 4];
    } else if (n - i == 2) {
        out[o++] = b64url[in[i] >> 2];
        out[o++] = b64url[(in[i] & 3) << 4 | in[i + 1] >> 4];
        out[o++] = b64url[(in[i + 1] & 15) << 2];
    }
    out[o] = '\0';
}

/* Append the SipHash MAC of raw[0..n) under key (little-endian) and encode it all. */
static void seal(const uint8_t *key, uint8_t *raw, size_t n, char *out)
{
    uint64_t mac = siphash24(key, raw, n);
    for (int i = 0; i < 8; i++)
        raw[n + (size_t)i] = (uint8_t)(mac >> (8 * i));
    b64url_encode(raw, n + 8, out);
}

/* Version byte and id bytes: the first 17 raw bytes. */
static size_t raw_head(uint8_t *raw, uint8_t version, const char *id)
{
    raw[0] = version;
    assert_true(uuid_parse(id, raw + 1));
    return 17;
}

/* A filter field as encode writes it. */
static size_t raw_field(uint8_t *raw, size_t n, const char *f)
{
    if (!f) {
        raw[n++] = 0;
        return n;
    }
    size_t len = strlen(f);
    raw[n++] = (uint8_t)(len + 1);
    memcpy(raw + n, f, len);
    return n + len;
}

/*
 * Decode a private copy of the token in a buffer of exactly its size, so that
 * ASan catches a read past the terminating NUL.
 */
static bool decode_tok(const uint8_t *key, const char *token, pagetoken *out)
{
    size_t n = strlen(token);
    char *copy = malloc(n + 1);
    assert_non_null(copy);
    memcpy(copy, token, n + 1);
    bool ok = pagetoken_decode(key, copy, out);
    free(copy);
    return ok;
}

static bool decodes(const uint8_t *key, const char *token)
{
    pagetoken pt;
    return decode_tok(key, token, &pt);
}

static void encode_ok(const uint8_t *key, const char *id, const char *status, const char *type,
                      char out[PAGETOKEN_TEXT_MAX])
{
    memset(out, 'X', PAGETOKEN_TEXT_MAX);
    if (!pagetoken_encode(key, id, status, type, out))
        fail_msg("encode failed for %s", id);
    size_t n = strnlen(out, PAGETOKEN_TEXT_MAX);
    assert_true(n < PAGETOKEN_TEXT_MAX);
    assert_int_equal(n, token_len(flen(status), flen(type)));
    for (size_t i = 0; i < n; i++)
        if (!strchr(b64url, out[i]))
            fail_msg("token %s has a character outside base64url at %zu", out, i);
}

/* A decoded filter is exactly the encoded one: NULL stays NULL, "" stays "". */
static void check_filter(const char *got, const char *buf, const char *want)
{
    if (!want) {
        assert_null(got);
        return;
    }
    assert_non_null(got);
    assert_ptr_equal(got, buf);
    assert_string_equal(got, want);
}

static void check_round_trip(const char *id, const char *status, const char *type)
{
    char tok[PAGETOKEN_TEXT_MAX];
    encode_ok(key_a, id, status, type, tok);
    pagetoken pt;
    memset(&pt, 'X', sizeof pt);
    if (!decode_tok(key_a, tok, &pt))
        fail_msg("token %s for %s (%s, %s) does not decode", tok, id, status ? status : "NULL",
                 type ? type : "NULL");
    assert_int_equal(pt.last_id[36], '\0');
    /* the id comes back in canonical lower case */
    char want[37];
    for (int i = 0; i < 37; i++)
        want[i] = (id[i] >= 'A' && id[i] <= 'F') ? (char)(id[i] - 'A' + 'a') : id[i];
    assert_string_equal(pt.last_id, want);
    check_filter(pt.status, pt.status_buf, status);
    check_filter(pt.task_type, pt.task_type_buf, type);
}

static void test_token_round_trip(void **state)
{
    (void)state;
    static const char *const statuses[] = {NULL,        "CREATED", "IN_PROGRESS",
                                           "COMPLETED", "FAILED",  ""};
    static const char *const types[] = {
        NULL, "TASK1", "TASK2", "", "a-much-longer-task-type", "a b&c=d%", "\xff\x01\x7f"};
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

/* Every filter length in each slot, against every shape of the other slot. */
static void test_token_filters_come_back_exactly(void **state)
{
    (void)state;
    char f[PAGETOKEN_FILTER_MAX + 1];
    static const char *const others[] = {NULL, "", "x", "TASK1"};
    for (size_t len = 0; len <= PAGETOKEN_FILTER_MAX; len++) {
        for (size_t i = 0; i < len; i++)
            f[i] = (char)('a' + (i * 7 + len) % 26);
        f[len] = '\0';
        for (size_t o = 0; o < sizeof others / sizeof others[0]; o++) {
            check_round_trip(ID1, f, others[o]);
            check_round_trip(ID1, others[o], f);
        }
    }

    /* "" and NULL are different tokens and come back as they went in */
    char a[PAGETOKEN_TEXT_MAX], b[PAGETOKEN_TEXT_MAX];
    encode_ok(key_a, ID1, NULL, NULL, a);
    encode_ok(key_a, ID1, "", NULL, b);
    assert_string_not_equal(a, b);
    encode_ok(key_a, ID1, NULL, "", b);
    assert_string_not_equal(a, b);
    encode_ok(key_a, ID1, "", "", a);
    assert_string_not_equal(a, b);

    /* the boundary between the filters is carried, not just their concatenation */
    static const char *const split[][2] = {
        {"AB", "C"}, {"A", "BC"}, {"ABC", ""}, {"", "ABC"}, {"ABC", NULL}, {NULL, "ABC"},
    };
    char toks[6][PAGETOKEN_TEXT_MAX];
    for (size_t i = 0; i < 6; i++) {
        encode_ok(key_a, ID1, split[i][0], split[i][1], toks[i]);
        check_round_trip(ID1, split[i][0], split[i][1]);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(toks[i], toks[j]);
    }

    /* the filters are carried in their slot */
    encode_ok(key_a, ID1, "COMPLETED", NULL, a);
    encode_ok(key_a, ID1, NULL, "COMPLETED", b);
    assert_string_not_equal(a, b);
    pagetoken pt;
    assert_true(decode_tok(key_a, b, &pt));
    assert_null(pt.status);
    assert_string_equal(pt.task_type, "COMPLETED");
}

static void test_token_text_lengths(void **state)
{
    (void)state;
    char tok[PAGETOKEN_TEXT_MAX];
    assert_true(pagetoken_encode(key_a, ID1, NULL, NULL, tok));
    assert_int_equal(strlen(tok), 36);

    /* two filters of the longest length fit the buffer with the NUL */
    char f[PAGETOKEN_FILTER_MAX + 1];
    memset(f, 'z', PAGETOKEN_FILTER_MAX);
    f[PAGETOKEN_FILTER_MAX] = '\0';
    memset(tok, 'X', sizeof tok);
    assert_true(pagetoken_encode(key_a, ID1, f, f, tok));
    size_t n = strnlen(tok, sizeof tok);
    assert_true(n < PAGETOKEN_TEXT_MAX);
    assert_int_equal(n, b64_len(RAW_MAX));
    check_round_trip(ID2, f, f);

    /* every combination of lengths has the length unpadded base64 gives */
    char g[PAGETOKEN_FILTER_MAX + 1];
    for (int s = -1; s <= PAGETOKEN_FILTER_MAX; s += 5)
        for (int t = -1; t <= PAGETOKEN_FILTER_MAX; t += 3) {
            memset(f, 's', PAGETOKEN_FILTER_MAX);
            memset(g, 't', PAGETOKEN_FILTER_MAX);
            f[s < 0 ? 0 : s] = '\0';
            g[t < 0 ? 0 : t] = '\0';
            encode_ok(key_a, ID1, s < 0 ? NULL : f, t < 0 ? NULL : g, tok); /* checks length */
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
    encode_ok(key_a, ID1, "CREATED", "TASK2", b);
    assert_string_not_equal(a, b);
    encode_ok(key_a, ID1, "TASK1", "CREATED", b);
    assert_string_not_equal(a, b);

    /* the text is the base64url of the documented bytes */
    uint8_t raw[RAW_MAX];
    size_t n = raw_head(raw, 2, ID1);
    n = raw_field(raw, n, "CREATED");
    n = raw_field(raw, n, "TASK1");
    seal(key_a, raw, n, b);
    assert_string_equal(a, b);
}

/* Every position, every other base64url character: decoding must fail. */
static void check_all_flips(const char *id, const char *status, const char *type)
{
    char tok[PAGETOKEN_TEXT_MAX];
    encode_ok(key_a, id, status, type, tok);
    assert_true(decodes(key_a, tok));
    size_t n = strlen(tok);
    for (size_t i = 0; i < n; i++) {
        char orig = tok[i];
        for (size_t k = 0; k < sizeof b64url - 1; k++) {
            if (b64url[k] == orig)
                continue;
            tok[i] = b64url[k];
            if (decodes(key_a, tok))
                fail_msg("tampered token %s (position %zu, %c -> %c) decoded", tok, i, orig,
                         b64url[k]);
        }
        tok[i] = orig;
    }
    assert_true(decodes(key_a, tok));
}

static void test_token_single_char_tamper(void **state)
{
    (void)state;
    char longest[PAGETOKEN_FILTER_MAX + 1];
    memset(longest, 'q', PAGETOKEN_FILTER_MAX);
    longest[PAGETOKEN_FILTER_MAX] = '\0';
    check_all_flips(ID1, NULL, NULL);
    check_all_flips(ID2, "COMPLETED", "TASK1");
    check_all_flips("00000000-0000-0000-0000-000000000000", NULL, "TASK2");
    check_all_flips("ffffffff-ffff-ffff-ffff-ffffffffffff", "FAILED", NULL);
    check_all_flips(ID1, "", "");
    check_all_flips(ID1, "A", NULL);  /* 28 bytes: 4 unused bits at the end */
    check_all_flips(ID1, "AB", NULL); /* 29 bytes: 2 unused bits at the end */
    check_all_flips(ID1, longest, longest);
}

/* Every proper prefix of a token fails to decode. */
static void check_all_truncations(const char *status, const char *type)
{
    char tok[PAGETOKEN_TEXT_MAX], buf[PAGETOKEN_TEXT_MAX];
    encode_ok(key_a, ID1, status, type, tok);
    size_t n = strlen(tok);
    for (size_t len = 0; len < n; len++) {
        memcpy(buf, tok, len);
        buf[len] = '\0';
        if (decodes(key_a, buf))
            fail_msg("prefix of length %zu of %s decoded", len, tok);
    }
    assert_true(decodes(key_a, tok));
}

static void test_token_truncations(void **state)
{
    (void)state;
    char longest[PAGETOKEN_FILTER_MAX + 1];
    memset(longest, 'q', PAGETOKEN_FILTER_MAX);
    longest[PAGETOKEN_FILTER_MAX] = '\0';
    check_all_truncations(NULL, NULL);
    check_all_truncations("", NULL);
    check_all_truncations("A", NULL);
    check_all_truncations("AB", NULL);
    check_all_truncations("COMPLETED", "TASK1");
    check_all_truncations(longest, longest);
}

static void test_token_wrong_key(void **state)
{
    (void)state;
    char tok[PAGETOKEN_TEXT_MAX];
    encode_ok(key_a, ID1, "IN_PROGRESS", "TASK1", tok);
    assert_true(decodes(key_a, tok));
    assert_false(decodes(key_b, tok));
    /* flipping any one key bit invalidates the token */
    uint8_t k[PAGETOKEN_KEY_LEN];
    for (int bit = 0; bit < PAGETOKEN_KEY_LEN * 8; bit++) {
        memcpy(k, key_a, sizeof k);
        k[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        if (decodes(k, tok))
            fail_msg("token decoded under a key with bit %d flipped", bit);
    }
}

/* Filters longer than PAGETOKEN_FILTER_MAX are refused at encode, in either slot. */
static void test_token_too_long_filters_refused(void **state)
{
    (void)state;
    char f[10001], tok[PAGETOKEN_TEXT_MAX];
    memset(f, 'a', 10000);
    f[10000] = '\0';
    assert_false(pagetoken_encode(key_a, ID1, NULL, f, tok));
    assert_false(pagetoken_encode(key_a, ID1, f, NULL, tok));
    assert_false(pagetoken_encode(key_a, ID1, f, f, tok));
    f[PAGETOKEN_FILTER_MAX + 1] = '\0';
    assert_false(pagetoken_encode(key_a, ID1, NULL, f, tok));
    assert_false(pagetoken_encode(key_a, ID1, f, NULL, tok));
    assert_false(pagetoken_encode(key_a, ID1, f, "TASK1", tok));
    assert_false(pagetoken_encode(key_a, ID1, "CREATED", f, tok));
    f[PAGETOKEN_FILTER_MAX] = '\0';
    encode_ok(key_a, ID1, f, NULL, tok);
    encode_ok(key_a, ID1, NULL, f, tok);
    encode_ok(key_a, ID1, f, f, tok);
}

/* Expect a correctly signed token with these bytes after the id to fail to decode. */
static void check_body_refused(const char *what, const uint8_t *body, size_t len)
{
    uint8_t raw[1024];
    char text[2048];
    size_t n = raw_head(raw, 2, ID1);
    memcpy(raw + n, body, len);
    seal(key_a, raw, n + len, text);
    if (decodes(key_a, text))
        fail_msg("signed token with %s decoded", what);
}

/*
 * Tokens signed with the right key but laid out wrongly: the MAC alone must
 * not make them acceptable.
 */
static void test_token_bad_layout_refused(void **state)
{
    (void)state;
    uint8_t raw[1024];
    char text[2048], tok[PAGETOKEN_TEXT_MAX];

    /* the builder is right: a well-formed layout decodes */
    static const uint8_t ok_body[] = {3, 'a', 'b', 1};
    size_t n = raw_head(raw, 2, ID1);
    memcpy(raw + n, ok_body, sizeof ok_body);
    seal(key_a, raw, n + sizeof ok_body, text);
    encode_ok(key_a, ID1, "ab", "", tok);
    assert_string_equal(text, tok);
    pagetoken pt;
    assert_true(decode_tok(key_a, text, &pt));
    assert_string_equal(pt.status, "ab");
    assert_string_equal(pt.task_type, "");

#define REFUSED(what, ...)                                                                         \
    do {                                                                                           \
        static const uint8_t body_[] = {__VA_ARGS__};                                              \
        check_body_refused(what, body_, sizeof body_);                                             \
    } while (0)
    /* trailing bytes after the filters */
    REFUSED("a trailing zero byte", 0, 0, 0);
    REFUSED("a trailing byte", 0, 0, 'x');
    REFUSED("trailing bytes after filters", 3, 'a', 'b', 2, 'c', 'd', 'e');
    REFUSED("a third filter field", 0, 0, 2, 'x');
    /* length prefixes that do not account for the bytes */
    REFUSED("only a status field", 0);
    REFUSED("only a status value", 3, 'a', 'b');
    REFUSED("a status running to the MAC", 5, 'a', 'b', 'c', 'd');
    REFUSED("a status longer than the token", 10, 'a', 'b', 0);
    REFUSED("a task type longer than the token", 0, 10, 'a', 'b');
    REFUSED("a task type one byte short", 0, 3, 'a');
    REFUSED("a task type with nothing after its prefix", 2, 'a', 2);
    REFUSED("a 255 prefix", 255, 0);
    /* a NUL inside a value, which encode never writes */
    REFUSED("a NUL in the status", 3, 'a', 0, 0);
    REFUSED("a NUL in the task type", 0, 2, 0);
#undef REFUSED
    /* no filter fields at all */
    check_body_refused("no filter fields", ok_body, 0);

    /* a filter over PAGETOKEN_FILTER_MAX, in either slot, and up to the largest prefix */
    uint8_t body[600];
    for (size_t len = PAGETOKEN_FILTER_MAX + 1; len <= 254; len++) {
        body[0] = (uint8_t)(len + 1);
        memset(body + 1, 'a', len);
        body[1 + len] = 0;
        check_body_refused("an over-long status", body, len + 2);
        body[0] = 0;
        body[1] = (uint8_t)(len + 1);
        memset(body + 2, 'a', len);
        check_body_refused("an over-long task type", body, len + 2);
    }
    /* ... while the longest allowed one decodes */
    body[0] = PAGETOKEN_FILTER_MAX + 1;
    memset(body + 1, 'a', PAGETOKEN_FILTER_MAX);
    body[1 + PAGETOKEN_FILTER_MAX] = 0;
    n = raw_head(raw, 2, ID1);
    memcpy(raw + n, body, PAGETOKEN_FILTER_MAX + 2);
    seal(key_a, raw, n + PAGETOKEN_FILTER_MAX + 2, text);
    assert_true(decodes(key_a, text));

    /* bytes after the MAC */
    encode_ok(key_a, ID1, NULL, NULL, tok);
    n = raw_head(raw, 2, ID1);
    n = raw_field(raw, n, NULL);
    n = raw_field(raw, n, NULL);
    seal(key_a, raw, n, text);
    assert_string_equal(text, tok);
    for (size_t extra = 1; extra <= 4; extra++) {
        memset(raw + n + 8, 0, extra);
        b64url_encode(raw, n + 8 + extra, text);
        if (decodes(key_a, text))
            fail_msg("token with %zu bytes after its MAC decoded", extra);
    }
}

/* Every version byte but 2, correctly signed, is refused. */
static void test_token_wrong_version_refused(void **state)
{
    (void)state;
    uint8_t raw[64];
    char text[128];
    for (int v = 0; v < 256; v++) {
        size_t n = raw_head(raw, (uint8_t)v, ID1);
        n = raw_field(raw, n, "CREATED");
        n = raw_field(raw, n, NULL);
        seal(key_a, raw, n, text);
        if (decodes(key_a, text) != (v == 2))
            fail_msg("version %d: decode %s", v, v == 2 ? "failed" : "succeeded");
    }

    /*
     * A version-1 token as it used to be made: 1 | id | MAC over 1 | id |
     * filter fields, padded with two zero bytes to 36 characters.
     */
    static const char *const filters[][2] = {{NULL, NULL}, {"CREATED", NULL}, {NULL, "TASK1"}};
    for (size_t i = 0; i < 3; i++) {
        uint8_t msg[64];
        size_t m = raw_head(msg, 1, ID1);
        m = raw_field(msg, m, filters[i][0]);
        m = raw_field(msg, m, filters[i][1]);
        uint64_t mac = siphash24(key_a, msg, m);
        uint8_t v1[27] = {0};
        memcpy(v1, msg, 17);
        for (int k = 0; k < 8; k++)
            v1[17 + k] = (uint8_t)(mac >> (8 * k));
        b64url_encode(v1, sizeof v1, text);
        assert_int_equal(strlen(text), 36);
        if (decodes(key_a, text))
            fail_msg("version-1 token %s decoded", text);
    }
}

/*
 * The unused low bits of the last character must be zero, so that a token
 * has one text form: for 28 raw bytes (status "A") the last character carries
 * 4 unused bits, for 29 (status "AB") 2.
 */
static void check_pad_bits(const char *status, int unused)
{
    char tok[PAGETOKEN_TEXT_MAX];
    encode_ok(key_a, ID1, status, NULL, tok);
    size_t last = strlen(tok) - 1;
    assert_int_equal(strlen(tok) % 4, unused == 4 ? 2 : 3);
    int v = (int)(strchr(b64url, tok[last]) - b64url);
    int mask = (1 << unused) - 1;
    assert_int_equal(v & mask, 0); /* encode writes them as zero */
    for (int k = 1; k <= mask; k++) {
        tok[last] = b64url[v | k];
        if (decodes(key_a, tok))
            fail_msg("token %s with unused bits %d decoded", tok, k);
    }
    tok[last] = b64url[v];
    assert_true(decodes(key_a, tok));
    /* '=' padding is not accepted either */
    char buf[PAGETOKEN_TEXT_MAX + 4];
    snprintf(buf, sizeof buf, "%s=", tok);
    assert_false(decodes(key_a, buf));
    snprintf(buf, sizeof buf, "%s==", tok);
    assert_false(decodes(key_a, buf));
}

static void test_token_nonzero_pad_bits_refused(void **state)
{
    (void)state;
    check_pad_bits("A", 4);
    check_pad_bits("AB", 2);
    check_pad_bits("ABCD", 4);
    check_pad_bits("ABCDE", 2);
}

static void test_token_garbage(void **state)
{
    (void)state;
    char good[PAGETOKEN_TEXT_MAX];
    encode_ok(key_a, ID1, NULL, NULL, good);
    pagetoken pt;

    assert_false(pagetoken_decode(key_a, NULL, &pt));
    assert_false(decodes(key_a, ""));
    assert_false(decodes(key_a, "A"));
    assert_false(decodes(key_a, "not a token"));
    assert_false(decodes(key_a, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
    assert_false(decodes(key_a, "____________________________________"));
    assert_false(decodes(key_a, "AgGQ88J7HnwanS5aGyw9Tl8AAAAAAAAAAAAA"));

    char buf[2048];
    /* too long: the good token with anything appended */
    static const char *const tails[] = {"A", "=", "==", "\n", " ", "AAAA", "_", "AA", "AAA"};
    for (size_t i = 0; i < sizeof tails / sizeof tails[0]; i++) {
        snprintf(buf, sizeof buf, "%s%s", good, tails[i]);
        if (decodes(key_a, buf))
            fail_msg("token with \"%s\" appended decoded", tails[i]);
    }
    snprintf(buf, sizeof buf, " %s", good);
    assert_false(decodes(key_a, buf));
    memset(buf, 'A', sizeof buf - 1);
    buf[sizeof buf - 1] = '\0';
    assert_false(decodes(key_a, buf));
    /* every length of 'A's up to past the longest token */
    for (size_t n = 0; n < PAGETOKEN_TEXT_MAX + 8; n++) {
        memset(buf, 'A', n);
        buf[n] = '\0';
        if (decodes(key_a, buf))
            fail_msg("%zu 'A's decoded", n);
    }
    /* a token twice over */
    snprintf(buf, sizeof buf, "%s%s", good, good);
    assert_false(decodes(key_a, buf));
    /* a very long string is refused (the decoder looks at a bounded prefix) */
    char *huge = malloc(1 << 20);
    assert_non_null(huge);
    memset(huge, 'A', (1 << 20) - 1);
    huge[(1 << 20) - 1] = '\0';
    assert_false(decodes(key_a, huge));
    memcpy(huge, good, 36);
    assert_false(decodes(key_a, huge));
    free(huge);

    /* characters outside base64url, at every position */
    static const char bad_chars[] = {'+',  '/',  '=', ' ', '.',    '!',    '~',
                                     '\n', '\t', '"', '%', '\x7f', '\x80', '\xff'};
    for (size_t i = 0; i < 36; i++) {
        for (size_t k = 0; k < sizeof bad_chars; k++) {
            memcpy(buf, good, 37);
            buf[i] = bad_chars[k];
            if (decodes(key_a, buf))
                fail_msg("token with 0x%02x at %zu decoded", (unsigned char)bad_chars[k], i);
        }
    }
    /* a NUL inside the token ends it: what is before it is a truncation */
    memcpy(buf, good, 37);
    buf[20] = '\0';
    assert_false(pagetoken_decode(key_a, buf, &pt));
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
        assert_false(decodes(key_a, buf));

    /* the genuine token still decodes after all that */
    assert_true(pagetoken_decode(key_a, good, &pt));
    assert_string_equal(pt.last_id, ID1);
    assert_null(pt.status);
    assert_null(pt.task_type);
}

/* Splicing the front of one token onto the back of another fails. */
static void check_splices(const char *t1, const char *t2)
{
    char mix[PAGETOKEN_TEXT_MAX];
    size_t n1 = strlen(t1), n2 = strlen(t2);
    for (size_t cut = 1; cut < n1 && cut < n2; cut++) {
        memcpy(mix, t1, cut);
        memcpy(mix + cut, t2 + cut, n2 - cut + 1);
        if (strcmp(mix, t1) == 0 || strcmp(mix, t2) == 0)
            continue;
        if (decodes(key_a, mix))
            fail_msg("spliced token %s (cut at %zu) decoded", mix, cut);
    }
}

static void test_token_swapped_between_ids(void **state)
{
    (void)state;
    /* a token for one id never decodes as another */
    char t1[PAGETOKEN_TEXT_MAX], t2[PAGETOKEN_TEXT_MAX];
    encode_ok(key_a, ID1, NULL, NULL, t1);
    encode_ok(key_a, ID2, NULL, NULL, t2);
    assert_string_not_equal(t1, t2);
    check_splices(t1, t2);
    check_splices(t2, t1);
    pagetoken pt;
    assert_true(decode_tok(key_a, t2, &pt));
    assert_string_equal(pt.last_id, ID2);

    /* nor with other filters */
    encode_ok(key_a, ID1, "COMPLETED", "TASK1", t1);
    encode_ok(key_a, ID1, "FAILED", "TASK2", t2);
    check_splices(t1, t2);
    check_splices(t2, t1);
    encode_ok(key_a, ID2, "COMPLETED", "TASK1", t2);
    check_splices(t1, t2);
    check_splices(t2, t1);
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
        cmocka_unit_test(test_token_filters_come_back_exactly),
        cmocka_unit_test(test_token_text_lengths),
        cmocka_unit_test(test_token_deterministic_and_distinct),
        cmocka_unit_test(test_token_single_char_tamper),
        cmocka_unit_test(test_token_truncations),
        cmocka_unit_test(test_token_wrong_key),
        cmocka_unit_test(test_token_too_long_filters_refused),
        cmocka_unit_test(test_token_bad_layout_refused),
        cmocka_unit_test(test_token_wrong_version_refused),
        cmocka_unit_test(test_token_nonzero_pad_bits_refused),
        cmocka_unit_test(test_token_garbage),
        cmocka_unit_test(test_token_swapped_between_ids),
        cmocka_unit_test(test_encode_rejects_bad_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
