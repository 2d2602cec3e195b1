/*
 * uuid7 — time-ordered identifiers (RFC 9562 UUID version 7).
 *
 * 48 bits of Unix milliseconds, then a 12-bit counter that keeps ids made in
 * the same millisecond increasing (RFC 9562 §6.2 method 1), then 62 random
 * bits. Ids from one generator sort, as text and as bytes, in the order they
 * were made, so the store appends new tasks at the end of its key order.
 * A generator is not thread-safe; give each thread its own or lock it.
 */
#ifndef TASKD_UUID7_H
#define TASKD_UUID7_H

#include <stdbool.h>
#include <stdint.h>

typedef struct uuid7_gen {
    uint64_t last_ms; /* timestamp of the last id made */
    uint16_t counter; /* 12-bit sequence within last_ms */
} uuid7_gen;

/*
 * Make the next id as 36 characters of lower-case text plus NUL in out.
 * now_ms is the clock; rnd supplies 10 random bytes. If the clock goes
 * backwards or the counter overflows, the id borrows the next millisecond so
 * ordering still holds.
 */
void uuid7_next(uuid7_gen *g, uint64_t now_ms, const uint8_t rnd[10], char out[37]);

/*
 * Go on after last_id, the greatest id made before (by an earlier run, say): every id g makes
 * next sorts above it, whatever the clock then says. An id that is not a version-7 UUID, or
 * one below what g has made, changes nothing.
 */
void uuid7_resume(uuid7_gen *g, const char *last_id);

/*
 * The lowest version-7 id of millisecond ms, as text (36 characters plus NUL): every id made in
 * ms sorts at or above it, and every id made before ms below it.
 */
void uuid7_floor(uint64_t ms, char out[37]);

/* Parse canonical UUID text (any version) into 16 bytes; false if malformed. */
bool uuid_parse(const char *s, uint8_t out[16]);
/* Format 16 bytes as canonical lower-case UUID text. */
void uuid_format(const uint8_t in[16], char out[37]);

#endif
