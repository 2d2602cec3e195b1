/*
 * fuzz_http_chunked — decoding a chunked request body (core/http_chunked.h).
 *
 * Input: the first byte sets how the rest is cut into pieces (1 + byte bytes each, the last
 * shorter); the rest is the body as it arrives.
 *
 * Invariants:
 *  - nothing is read past the bytes given (ASan);
 *  - every piece is read whole while the body goes on; once it ends or is refused, the answer
 *    does not change, and the bytes read stop there;
 *  - the outcome, the body and the bytes read are the same whatever the cut: the whole input
 *    fed at once decides the same;
 *  - the body is never larger than the bytes read;
 *  - unless refused, the bytes read are at most 19 times the body's and the bounds of the
 *    framing's excess, of a size line and of the trailers (HTTP_CHUNKED_EXCESS_MAX: 16 bytes a
 *    chunk and twice its data are free, and a chunk has a byte at least).
 *
 * Run: scripts/fuzz.sh http_chunked   (corpus: tests/fuzz/corpus/http_chunked/)
 */
#include "fuzz_util.h"

#include "core/http_chunked.h"

/* Feed in[0..n) in pieces of step bytes: the outcome, the body, and in *used the bytes read. */
static http_chunked_rc feed(const char *in, size_t n, size_t step, sbuf *body, size_t *used)
{
    http_chunked c;
    http_chunked_init(&c);
    http_chunked_rc rc = HTTP_CHUNKED_MORE;
    *used = 0;
    while (*used < n) {
        size_t piece = n - *used < step ? n - *used : step, u = 0;
        char *copy = malloc(piece); /* an exact copy: a read past it is caught */
        if (!copy)
            abort();
        memcpy(copy, in + *used, piece);
        rc = http_chunked_feed(&c, copy, piece, &u, body);
        free(copy);
        FUZZ_CHECK(u <= piece, "read %zu of a piece of %zu", u, piece);
        *used += u;
        if (rc != HTTP_CHUNKED_MORE)
            break;
        FUZZ_CHECK(u == piece, "more, with %zu of %zu bytes of a piece read", u, piece);
    }
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = 1 + data[0];
    const char *in = (const char *)data + 1;
    size_t n = size - 1;
    sbuf cut = {0}, whole = {0};
    size_t used_cut = 0, used_whole = 0;
    http_chunked_rc rc_cut = feed(in, n, step, &cut, &used_cut);
    http_chunked_rc rc_whole = feed(in, n, n ? n : 1, &whole, &used_whole);
    FUZZ_CHECK(rc_cut == rc_whole, "outcome %d in pieces of %zu, %d whole", rc_cut, step, rc_whole);
    FUZZ_CHECK(used_cut == used_whole, "read %zu in pieces, %zu whole", used_cut, used_whole);
    FUZZ_CHECK(cut.len == whole.len && (!cut.len || memcmp(cut.data, whole.data, cut.len) == 0),
               "bodies differ: %zu bytes in pieces, %zu whole", cut.len, whole.len);
    FUZZ_CHECK(whole.len <= used_whole, "body of %zu from %zu bytes", whole.len, used_whole);
    FUZZ_CHECK(rc_whole == HTTP_CHUNKED_BAD ||
                   used_whole <= 19 * whole.len + HTTP_CHUNKED_EXCESS_MAX + HTTP_CHUNKED_LINE_MAX +
                                     HTTP_CHUNKED_TRAILER_MAX + 64,
               "%zu bytes read for a body of %zu", used_whole, whole.len);
    sbuf_free(&cut);
    sbuf_free(&whole);
    return 0;
}
