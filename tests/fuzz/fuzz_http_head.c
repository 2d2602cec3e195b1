/*
 * fuzz_http_head — the front's judgement of a connection's first request head
 * (core/http_head.h).
 *
 * Input: the first byte sets the limit (16 + byte * 8, so heads over it are met), the rest is
 * what the connection received; at most the limit of it is judged, as the front peeks.
 *
 * Invariants:
 *  - nothing is read past the bytes given (ASan);
 *  - a verdict other than HTTP_HEAD_MORE does not change with more bytes: every prefix is
 *    judged, and the first decided verdict is the one the whole input gets;
 *  - a head taken (HTTP_HEAD_OK) holds an empty line, and its request line ends in HTTP/1.0 or
 *    HTTP/1.1; HTTP_HEAD_MORE is only given short of the limit;
 *  - the size limits are only given at the limit.
 *
 * Run: scripts/fuzz.sh http_head   (corpus: tests/fuzz/corpus/http_head/)
 */
#include "fuzz_util.h"

#include "core/http_head.h"

static bool has_empty_line(const char *s, size_t n)
{
    for (size_t k = 0; k + 1 < n; k++)
        if (s[k] == '\n' &&
            (s[k + 1] == '\n' || (k + 2 < n && s[k + 1] == '\r' && s[k + 2] == '\n')))
            return true;
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t limit = 16 + (size_t)data[0] * 8;
    size_t n = size - 1 < limit ? size - 1 : limit;
    /* an exact copy, so that a read past n is a read past the allocation */
    char *buf = malloc(n ? n : 1);
    if (!buf)
        abort();
    memcpy(buf, data + 1, n);

    http_head_verdict decided = HTTP_HEAD_MORE;
    size_t decided_at = 0;
    for (size_t k = 0; k <= n; k++) {
        http_head_verdict v = http_head_judge(buf, k, limit);
        if (v == HTTP_HEAD_MORE) {
            FUZZ_CHECK(decided == HTTP_HEAD_MORE, "%zu bytes: more, after verdict %d at %zu", k,
                       decided, decided_at);
            FUZZ_CHECK(k < limit, "more at the limit (%zu)", limit);
            continue;
        }
        if (decided == HTTP_HEAD_MORE) {
            decided = v;
            decided_at = k;
        }
        FUZZ_CHECK(v == decided, "%zu bytes: verdict %d, but %d at %zu", k, v, decided, decided_at);
    }
    if (decided == HTTP_HEAD_OK) {
        const char *line = buf; /* the request line, after any empty lines */
        while (line < buf + n && (*line == '\r' || *line == '\n'))
            line++;
        const char *lf = memchr(line, '\n', (size_t)(buf + n - line));
        FUZZ_CHECK(lf != NULL, "taken without a request line");
        FUZZ_CHECK(has_empty_line(lf, (size_t)(buf + decided_at - lf)),
                   "taken without an empty line after the request line");
        const char *end = lf > buf && lf[-1] == '\r' ? lf - 1 : lf;
        FUZZ_CHECK(end - buf >= 8 &&
                       (memcmp(end - 8, "HTTP/1.1", 8) == 0 || memcmp(end - 8, "HTTP/1.0", 8) == 0),
                   "taken with a request line not ending in HTTP/1.x");
    }
    if (decided == HTTP_HEAD_LINE_TOO_LONG || decided == HTTP_HEAD_TOO_LARGE)
        FUZZ_CHECK(decided_at == limit, "size verdict %d at %zu of %zu", decided, decided_at,
                   limit);
    free(buf);
    return 0;
}
