/*
 * pagetoken — the opaque next_token of GET /tasks.
 *
 * A token carries the id of the last task of the page (the list is keyed by
 * id, newest first, so the next page is "ids below this one") and the filters
 * of the listing it belongs to, so that `?next_token=...` alone continues the
 * same listing. It is signed with SipHash over all of it: a token that was
 * altered or forged fails to decode.
 *
 * Text form: base64url without padding over the bytes
 *     version (2) | 16 id bytes | status length + 1 (0: no filter) | status |
 *     task type length + 1 (0: no filter) | task type | 8-byte MAC
 * 36 characters with no filter, at most PAGETOKEN_TEXT_MAX - 1 with both.
 */
#ifndef TASKD_PAGETOKEN_H
#define TASKD_PAGETOKEN_H

#include <stdbool.h>
#include <stdint.h>

#define PAGETOKEN_KEY_LEN    16
#define PAGETOKEN_FILTER_MAX 64  /* longest filter value a token can carry */
#define PAGETOKEN_TEXT_MAX   216 /* buffer size for a token, NUL included */

/* What a token carries. A filter is NULL when the listing had none. */
typedef struct pagetoken {
    char last_id[37];
    const char *status;    /* points into status_buf, or NULL */
    const char *task_type; /* points into task_type_buf, or NULL */
    char status_buf[PAGETOKEN_FILTER_MAX + 1];
    char task_type_buf[PAGETOKEN_FILTER_MAX + 1];
} pagetoken;

/*
 * Encode a token for the page after last_id under the given filters (either
 * may be NULL). Returns false if last_id is not a UUID or a filter is longer
 * than PAGETOKEN_FILTER_MAX.
 */
bool pagetoken_encode(const uint8_t key[PAGETOKEN_KEY_LEN], const char *last_id, const char *status,
                      const char *task_type, char out[PAGETOKEN_TEXT_MAX]);

/*
 * Decode and verify a token: the last id (36 characters, lower case) and the
 * filters it was issued for. Returns false for anything malformed, tampered
 * with, or signed with another key.
 */
bool pagetoken_decode(const uint8_t key[PAGETOKEN_KEY_LEN], const char *token, pagetoken *out);

#endif
