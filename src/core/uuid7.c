/*
 * uuid7 — see uuid7.h for the layout and ordering guarantee.
 */
#include "uuid7.h"

#include "urlcode.h"

#include <string.h>

static const char hexdigits[] = "0123456789abcdef";

void uuid_format(const uint8_t in[16], char out[37])
{
    char *p = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *p++ = '-';
        *p++ = hexdigits[in[i] >> 4];
        *p++ = hexdigits[in[i] & 15];
    }
    *p = '\0';
}

bool uuid_parse(const char *s, uint8_t out[16])
{
    if (!s || strlen(s) != 36)
        return false;
    int n = 0;
    for (int i = 0; i < 36;) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
            i++;
            continue;
        }
        int hi = hex_value(s[i]), lo = hex_value(s[i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[n++] = (uint8_t)(hi << 4 | lo);
        i += 2;
    }
    return true;
}

/* The 48 bits of ms into b[0..6), most significant first. */
static void put_ms(uint8_t b[16], uint64_t ms)
{
    for (int i = 5; i >= 0; i--) {
        b[i] = (uint8_t)(ms & 0xff);
        ms >>= 8;
    }
}

void uuid7_floor(uint64_t ms, char out[37])
{
    uint8_t b[16] = {0};
    put_ms(b, ms);
    b[6] = 0x70; /* version 7, counter 0 */
    b[8] = 0x80; /* the variant, random bits 0 */
    uuid_format(b, out);
}

void uuid7_next(uuid7_gen *g, uint64_t now_ms, const uint8_t rnd[10], char out[37])
{
    if (now_ms > g->last_ms) {
        g->last_ms = now_ms;
        g->counter = (uint16_t)(rnd[0] & 0x07); /* small random start leaves room to count */
    } else if (++g->counter > 0x0fff) {
        g->last_ms++; /* counter exhausted (or clock went back): borrow a millisecond */
        g->counter = 0;
    }
    uint8_t b[16];
    put_ms(b, g->last_ms);
    b[6] = (uint8_t)(0x70 | (g->counter >> 8));
    b[7] = (uint8_t)(g->counter & 0xff);
    b[8] = (uint8_t)(0x80 | (rnd[1] & 0x3f));
    memcpy(b + 9, rnd + 2, 7);
    uuid_format(b, out);
}

void uuid7_resume(uuid7_gen *g, const char *last_id)
{
    uint8_t b[16];
    if (!uuid_parse(last_id, b) || b[6] >> 4 != 7)
        return;
    uint64_t ms = 0;
    for (int i = 0; i < 6; i++)
        ms = ms << 8 | b[i];
    uint16_t counter = (uint16_t)((b[6] & 0x0f) << 8 | b[7]);
    if (ms > g->last_ms || (ms == g->last_ms && counter > g->counter)) {
        g->last_ms = ms;
        g->counter = counter;
    }
}
