/*
 * pagetoken — signed cursor tokens for listing; see pagetoken.h.
 *
 * Bytes of a token (version 2):
 *     2 | 16 id bytes | status field | task type field | 8-byte MAC
 * where a filter field is one byte, length + 1 (0: no filter), then that many
 * bytes of the value, and the MAC is SipHash-2-4 over everything before it,
 * stored little-endian. The text is base64url of those bytes without padding.
 *
 * Decoding is strict so that a token has exactly one text form and one byte
 * form: every character must be in the alphabet, the unused low bits of the
 * last character must be zero, the length prefixes must account for every
 * byte up to the MAC, and the MAC must match.
 */
#include "pagetoken.h"

#include "siphash.h"
#include "uuid7.h"

#include <string.h>

#define TOKEN_VERSION 2
#define ID_LEN        16
#define MAC_LEN       8
#define RAW_MIN       (1 + ID_LEN + 1 + 1 + MAC_LEN) /* no filters: 27 bytes */
#define RAW_MAX       (1 + ID_LEN + 2 * (1 + PAGETOKEN_FILTER_MAX) + MAC_LEN)

/* Characters of unpadded base64 for n bytes: 4 per 3, plus 2 or 3 for a tail. */
#define B64_LEN(n) ((n) / 3 * 4 + ((n) % 3 ? (n) % 3 + 1 : 0))
#define TEXT_MAX   B64_LEN(RAW_MAX) /* longest valid token text */

_Static_assert(B64_LEN(RAW_MIN) == 36, "a token without filters is 36 characters");
_Static_assert(TEXT_MAX < PAGETOKEN_TEXT_MAX, "the longest token fits its buffer with its NUL");
_Static_assert(PAGETOKEN_FILTER_MAX + 1 <= 255, "a filter length + 1 fits its one-byte prefix");

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Append a filter field at raw[n]; returns the new length. len <= FILTER_MAX. */
static size_t put_filter(uint8_t *raw, size_t n, const char *f, size_t len)
{
    raw[n++] = f ? (uint8_t)(len + 1) : 0;
    if (f) {
        memcpy(raw + n, f, len);
        n += len;
    }
    return n;
}

/* Length of filter f, or false if it is longer than PAGETOKEN_FILTER_MAX. */
static bool filter_len(const char *f, size_t *len)
{
    *len = f ? strnlen(f, PAGETOKEN_FILTER_MAX + 1) : 0;
    return *len <= PAGETOKEN_FILTER_MAX;
}

/* Unpadded base64url of in[0..len) into out, NUL-terminated. */
static void b64_encode(const uint8_t *in, size_t len, char *out)
{
    uint32_t acc = 0; /* bits not yet written, fewer than 6 between bytes */
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
    if (bits > 0) /* the tail, padded with zero bits */
        out[o++] = b64[acc << (6 - bits) & 63];
    out[o] = '\0';
}

bool pagetoken_encode(const uint8_t key[PAGETOKEN_KEY_LEN], const char *last_id, const char *status,
                      const char *task_type, char out[PAGETOKEN_TEXT_MAX])
{
    size_t status_len, type_len;
    if (!filter_len(status, &status_len) || !filter_len(task_type, &type_len))
        return false;
    uint8_t raw[RAW_MAX];
    if (!uuid_parse(last_id, raw + 1))
        return false;
    raw[0] = TOKEN_VERSION;
    size_t n = 1 + ID_LEN;
    n = put_filter(raw, n, status, status_len);
    n = put_filter(raw, n, task_type, type_len);
    uint64_t mac = siphash24(key, raw, n);
    for (int i = 0; i < MAC_LEN; i++)
        raw[n++] = (uint8_t)(mac >> (8 * i));
    b64_encode(raw, n, out);
    return true;
}

static int b64val(char c)
{
    const char *p = c ? strchr(b64, c) : NULL;
    return p ? (int)(p - b64) : -1;
}

/*
 * Unpadded base64url text[0..len) into raw; returns the byte count, or 0 if a
 * character is outside the alphabet, the length cannot be unpadded base64, or
 * the unused bits of the last character are not zero.
 */
static size_t b64_decode(const char *text, size_t len, uint8_t *raw)
{
    uint32_t acc = 0; /* bits not yet output, fewer than 8 between characters */
    int bits = 0;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        int d = b64val(text[i]);
        if (d < 0)
            return 0;
        acc = acc << 6 | (uint32_t)d;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            raw[n++] = (uint8_t)(acc >> bits);
        }
        acc &= (1u << bits) - 1;
    }
    /* 6 bits left: a lone character makes no byte; others must be zero */
    if (bits >= 6 || acc != 0)
        return 0;
    return n;
}

/*
 * Read the filter field at raw[*pos], which must end at or before end.
 * Sets *val to the value (not NUL-terminated) or NULL for no filter.
 */
static bool get_filter(const uint8_t *raw, size_t *pos, size_t end, const uint8_t **val,
                       size_t *len)
{
    if (*pos >= end)
        return false;
    uint8_t prefix = raw[(*pos)++];
    *val = NULL;
    *len = 0;
    if (prefix == 0)
        return true;
    *len = (size_t)prefix - 1;
    if (*len > PAGETOKEN_FILTER_MAX || *len > end - *pos)
        return false;
    /* a NUL inside would cut the value short; encode never makes one */
    if (memchr(raw + *pos, '\0', *len))
        return false;
    *val = raw + *pos;
    *pos += *len;
    return true;
}

/* Copy a decoded filter into buf and return it, or NULL for no filter. */
static const char *set_filter(char *buf, const uint8_t *val, size_t len)
{
    if (!val)
        return NULL;
    memcpy(buf, val, len);
    buf[len] = '\0';
    return buf;
}

bool pagetoken_decode(const uint8_t key[PAGETOKEN_KEY_LEN], const char *token, pagetoken *out)
{
    if (!token)
        return false;
    /* strnlen: never look further than the longest token (and its NUL) */
    size_t len = strnlen(token, TEXT_MAX + 1);
    if (len < B64_LEN(RAW_MIN) || len > TEXT_MAX)
        return false;
    uint8_t raw[RAW_MAX];
    size_t n = b64_decode(token, len, raw);
    if (n < RAW_MIN || raw[0] != TOKEN_VERSION)
        return false;

    /* the filter fields must fill exactly the bytes between id and MAC */
    size_t end = n - MAC_LEN, pos = 1 + ID_LEN;
    const uint8_t *status, *task_type;
    size_t status_len, type_len;
    if (!get_filter(raw, &pos, end, &status, &status_len) ||
        !get_filter(raw, &pos, end, &task_type, &type_len) || pos != end)
        return false;

    uint64_t got = 0;
    for (int i = MAC_LEN - 1; i >= 0; i--)
        got = got << 8 | raw[end + (size_t)i];
    if (got != siphash24(key, raw, end))
        return false;

    uuid_format(raw + 1, out->last_id);
    out->status = set_filter(out->status_buf, status, status_len);
    out->task_type = set_filter(out->task_type_buf, task_type, type_len);
    return true;
}
