/*
 * pagetoken — signed cursor tokens for listing; see pagetoken.h.
 */
#include "pagetoken.h"

#include "siphash.h"
#include "uuid7.h"

#include <string.h>

#define TOKEN_VERSION 1
#define RAW_LEN       (1 + 16 + 8) /* version, id, MAC */

#define FILTER_MAX 254 /* longest filter a token can be bound to */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Filters longer than FILTER_MAX cannot be signed whole, so no token binds them. */
static bool filters_fit(const char *status, const char *task_type)
{
    return (!status || strlen(status) <= FILTER_MAX) &&
           (!task_type || strlen(task_type) <= FILTER_MAX);
}

/* MAC input: version, id bytes, then each filter with a length prefix. */
static uint64_t token_mac(const uint8_t key[16], const uint8_t id[16], const char *status,
                          const char *task_type)
{
    uint8_t msg[1 + 16 + 2 * (1 + FILTER_MAX)];
    size_t n = 0;
    msg[n++] = TOKEN_VERSION;
    memcpy(msg + n, id, 16);
    n += 16;
    const char *filters[2] = {status, task_type};
    for (int i = 0; i < 2; i++) {
        size_t len = filters[i] ? strlen(filters[i]) : 0; /* <= FILTER_MAX: see filters_fit() */
        msg[n++] = filters[i] ? (uint8_t)(len + 1) : 0;
        memcpy(msg + n, filters[i] ? filters[i] : "", len);
        n += len;
    }
    return siphash24(key, msg, n);
}

bool pagetoken_encode(const uint8_t key[PAGETOKEN_KEY_LEN], const char *last_id, const char *status,
                      const char *task_type, char out[PAGETOKEN_TEXT_MAX])
{
    if (!filters_fit(status, task_type))
        return false;
    uint8_t raw[RAW_LEN + 2] = {0}; /* + 2 zero bytes to fill the last base64 group */
    if (!uuid_parse(last_id, raw + 1))
        return false;
    raw[0] = TOKEN_VERSION;
    uint64_t mac = token_mac(key, raw + 1, status, task_type);
    for (int i = 0; i < 8; i++)
        raw[17 + i] = (uint8_t)(mac >> (8 * i));
    size_t o = 0;
    for (size_t i = 0; i < RAW_LEN; i += 3) {
        uint32_t v = (uint32_t)raw[i] << 16 | (uint32_t)raw[i + 1] << 8 | raw[i + 2];
        out[o++] = b64[v >> 18 & 63];
        out[o++] = b64[v >> 12 & 63];
        out[o++] = b64[v >> 6 & 63];
        out[o++] = b64[v & 63];
    }
    out[o] = '\0';
    return true;
}

static int b64val(char c)
{
    const char *p = c ? strchr(b64, c) : NULL;
    return p ? (int)(p - b64) : -1;
}

bool pagetoken_decode(const uint8_t key[PAGETOKEN_KEY_LEN], const char *token, const char *status,
                      const char *task_type, char last_id[37])
{
    enum { TEXT_LEN = (RAW_LEN + 2) / 3 * 4 };
    if (!token || strlen(token) != TEXT_LEN || !filters_fit(status, task_type))
        return false;
    uint8_t raw[RAW_LEN + 2];
    size_t o = 0;
    for (size_t i = 0; i < TEXT_LEN; i += 4) {
        uint32_t v = 0;
        for (int j = 0; j < 4; j++) {
            int d = b64val(token[i + (size_t)j]);
            if (d < 0)
                return false;
            v = v << 6 | (uint32_t)d;
        }
        raw[o++] = (uint8_t)(v >> 16);
        raw[o++] = (uint8_t)(v >> 8);
        raw[o++] = (uint8_t)v;
    }
    if (raw[0] != TOKEN_VERSION || raw[RAW_LEN] != 0 || raw[RAW_LEN + 1] != 0)
        return false;
    uint64_t mac = token_mac(key, raw + 1, status, task_type);
    uint64_t got = 0;
    for (int i = 7; i >= 0; i--)
        got = got << 8 | raw[17 + i];
    if (got != mac)
        return false;
    uuid_format(raw + 1, last_id);
    return true;
}
