/*
 * pagetoken — the opaque next_token of GET /tasks.
 *
 * A token carries the id of the last task of the page (the list is keyed by
 * id, newest first, so the next page is "ids below this one") and is signed
 * with SipHash over the id and the filters it was issued for. A token that
 * was altered, forged, or replayed with other filters fails to decode.
 * Text form: 36 characters of base64url over 25 bytes (a version byte, the 16
 * id bytes, an 8-byte MAC) padded with two zero bytes to whole groups.
 */
#ifndef TASKD_PAGETOKEN_H
#define TASKD_PAGETOKEN_H

#include <stdbool.h>
#include <stdint.h>

#define PAGETOKEN_KEY_LEN  16
#define PAGETOKEN_TEXT_MAX 48 /* buffer size for a token, NUL included */

/*
 * Encode a token for the page after last_id under the given filters (either
 * may be NULL, neither longer than 254 bytes). Returns false if last_id is
 * not a UUID or a filter is too long.
 */
bool pagetoken_encode(const uint8_t key[PAGETOKEN_KEY_LEN], const char *last_id, const char *status,
                      const char *task_type, char out[PAGETOKEN_TEXT_MAX]);

/*
 * Decode and verify a token issued for the same filters; writes the last id
 * (36 characters plus NUL). Returns false for anything malformed or tampered.
 */
bool pagetoken_decode(const uint8_t key[PAGETOKEN_KEY_LEN], const char *token, const char *status,
                      const char *task_type, char last_id[37]);

#endif
