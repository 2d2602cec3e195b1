/*
 * fuzz_pagetoken — the opaque next_token of GET /tasks (core/pagetoken.h),
 * which clients send back at will.
 *
 * Input, by its first byte:
 *  - anything but '\x01': the whole input is a token text for
 *    pagetoken_decode with a fixed key; decoding strictly means a decoded token
 *    re-encodes to exactly the same text;
 *  - '\x01': the rest is the token's raw bytes; the harness signs them with the
 *    key (SipHash, as pagetoken.c does) and base64url-encodes them, so that the
 *    layout checks behind the MAC are reached ("correctly signed but
 *    malformed"); then as above;
 * and always, encode -> decode round trip over fields taken from the input
 * (16 id bytes, then status and task type split at the first NUL): an encoded
 * token decodes to the same id and filters, and not under another key.
 *
 * Run: scripts/fuzz.sh pagetoken   (corpus: tests/fuzz/corpus/pagetoken/)
 */
#include "fuzz_util.h"

#include "core/pagetoken.h"
#include "core/siphash.h"
#include "core/uuid7.h"

static const uint8_t key[PAGETOKEN_KEY_LEN] = {0, 1, 2,  3,  4,  5,  6,  7,
                                               8, 9, 10, 11, 12, 13, 14, 15};
static const uint8_t other_key[PAGETOKEN_KEY_LEN] = {1};

static bool same_filter(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void check_decode(const char *text)
{
    pagetoken t;
    memset(&t, 0xAA, sizeof t);
    if (!pagetoken_decode(key, text, &t))
        return;
    FUZZ_CHECK(strlen(t.last_id) == 36, "last_id %s", t.last_id);
    for (const char *p = t.last_id; *p; p++)
        FUZZ_CHECK(!(*p >= 'A' && *p <= 'Z'), "upper case in last_id %s", t.last_id);
    char again[PAGETOKEN_TEXT_MAX];
    FUZZ_CHECK(pagetoken_encode(key, t.last_id, t.status, t.task_type, again),
               "decoded token does not re-encode: %s", text);
    FUZZ_CHECK(strcmp(again, text) == 0, "token %s re-encodes as %s", text, again);
}

static void b64url(const uint8_t *in, size_t len, char *out)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        acc = acc << 8 | in[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[o++] = b64[acc >> bits & 63];
        }
        acc &= (1u << bits) - 1;
    }
    if (bits > 0)
        out[o++] = b64[acc << (6 - bits) & 63];
    out[o] = '\0';
}

static void check_signed(const uint8_t *raw, size_t n)
{
    if (n > 200)
        return;
    uint8_t buf[208];
    memcpy(buf, raw, n);
    uint64_t mac = siphash24(key, buf, n);
    for (int i = 0; i < 8; i++)
        buf[n + (size_t)i] = (uint8_t)(mac >> (8 * i));
    char text[300];
    b64url(buf, n + 8, text);
    check_decode(text);
}

static void check_round_trip(const uint8_t *data, size_t size)
{
    if (size < 16)
        return;
    char id[37];
    uuid_format(data, id);
    char *rest = fuzz_strdup(data + 16, size - 16);
    const char *status = rest, *type = NULL;
    size_t rlen = size - 16, slen = strlen(rest);
    if (slen < rlen)
        type = rest + slen + 1; /* NUL-separated; rest is NUL-terminated at rlen */
    if (slen == 0)
        status = NULL;
    char text[PAGETOKEN_TEXT_MAX];
    bool fits = (!status || strlen(status) <= PAGETOKEN_FILTER_MAX) &&
                (!type || strlen(type) <= PAGETOKEN_FILTER_MAX);
    bool ok = pagetoken_encode(key, id, status, type, text);
    FUZZ_CHECK(ok == fits, "encode %d for filters of %zu and %zu bytes", ok,
               status ? strlen(status) : 0, type ? strlen(type) : 0);
    if (ok) {
        FUZZ_CHECK(strlen(text) < PAGETOKEN_TEXT_MAX, "token too long");
        pagetoken t;
        FUZZ_CHECK(pagetoken_decode(key, text, &t), "own token rejected: %s", text);
        FUZZ_CHECK(strcmp(t.last_id, id) == 0, "id %s came back as %s", id, t.last_id);
        FUZZ_CHECK(same_filter(t.status, status) && same_filter(t.task_type, type),
                   "filters did not round-trip: %s", text);
        FUZZ_CHECK(!pagetoken_decode(other_key, text, &t), "token accepted under another key");
        check_decode(text);
    }
    free(rest);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 0 && data[0] == 1) {
        check_signed(data + 1, size - 1);
    } else {
        char *text = fuzz_strdup(data, size);
        check_decode(text);
        free(text);
    }
    check_round_trip(data, size);
    return 0;
}
