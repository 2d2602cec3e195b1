/*
 * fuzz_http_head — the judgement of a request head, and the split of one taken
 * (core/http_head.h).
 *
 * Input: the first byte sets the limit (16 + byte * 8, so heads over it are met), the rest is
 * what the connection received; at most the limit of it is judged, as the server reads.
 *
 * Invariants:
 *  - nothing is read past the bytes given (ASan);
 *  - a verdict other than HTTP_HEAD_MORE does not change with more bytes: every prefix is
 *    judged, and the first decided verdict is the one the whole input gets;
 *  - judged as it comes (http_head_judge_from(), one scan from the first prefix on), each prefix
 *    gets the verdict it gets judged from the start, up to the first decided one;
 *  - a head taken (HTTP_HEAD_OK) holds an empty line, and its request line ends in HTTP/1.0 or
 *    HTTP/1.1; HTTP_HEAD_MORE is only given short of the limit;
 *  - the size limits are only given at the limit;
 *  - a head taken splits inside its bytes: method, path and fields NUL-terminated within the
 *    head, its length where the judge decided, no more fields than HTTP_HEAD_MAX_RECORDS; and
 *    its query splits into arguments within the same bound.
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

static bool inside(const char *p, const char *buf, size_t n)
{
    return p >= buf && p < buf + n && memchr(p, '\0', (size_t)(buf + n - p)) != NULL;
}

/* Split the head taken in buf[0..n) (a copy: the split writes into it) and check its parts. */
static void check_split(const char *head, size_t n)
{
    char *buf = malloc(n);
    if (!buf)
        abort();
    memcpy(buf, head, n);
    static http_request_head h;
    http_head_split(buf, n, &h);
    FUZZ_CHECK(h.len == n, "split length %zu, judged %zu", h.len, n);
    FUZZ_CHECK(inside(h.method, buf, n) && *h.method, "method outside the head, or empty");
    FUZZ_CHECK(inside(h.path, buf, n), "path outside the head");
    FUZZ_CHECK(!h.query || inside(h.query, buf, n), "query outside the head");
    FUZZ_CHECK(h.n_fields <= HTTP_HEAD_MAX_RECORDS, "%zu fields", h.n_fields);
    for (size_t i = 0; i < h.n_fields; i++)
        FUZZ_CHECK(inside(h.fields[i].name, buf, n) && inside(h.fields[i].value, buf, n),
                   "field %zu outside the head", i);
    size_t room = HTTP_HEAD_MAX_RECORDS - h.n_fields;
    size_t args = http_query_split(h.query, h.fields + h.n_fields, room);
    FUZZ_CHECK(args <= room, "%zu arguments", args);
    for (size_t i = 0; i < args; i++)
        FUZZ_CHECK(inside(h.fields[h.n_fields + i].name, buf, n), "argument %zu outside", i);
    free(buf);
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
    http_head_scan scan = {0};
    for (size_t k = 0; k <= n; k++) {
        http_head_verdict v = http_head_judge(buf, k, limit);
        if (decided == HTTP_HEAD_MORE) {
            http_head_verdict w = http_head_judge_from(buf, k, limit, &scan);
            FUZZ_CHECK(w == v, "%zu bytes: verdict %d as they came, %d from the start", k, w, v);
        }
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
        check_split(buf, decided_at);
    }
    if (decided == HTTP_HEAD_LINE_TOO_LONG || decided == HTTP_HEAD_TOO_LARGE)
        FUZZ_CHECK(decided_at == limit, "size verdict %d at %zu of %zu", decided, decided_at,
                   limit);
    free(buf);
    return 0;
}
