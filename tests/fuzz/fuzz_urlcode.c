/*
 * fuzz_urlcode — query and route pieces: percent-decoding and -encoding
 * (core/urlcode.h) and the limit query parameter (validate_limit).
 *
 * Input: any bytes, read as a C string (cut at the first NUL), as a path or
 * query value arrives after the front end's split.
 *
 * Invariants:
 *  - unescape: returns strlen of the result, never grows, never produces a
 *    NUL; unescape(escape(s)) == s (with and without a keep set), and
 *    escape's output is only unreserved characters, keep bytes and %XX;
 *  - validate_limit: accepted means 1..100 and no error; rejected means one
 *    error and a 422 body that is valid JSON (a byte that is not UTF-8 is
 *    echoed as U+FFFD; the finding that made it so is a corpus seed, regress-*).
 *
 * Run: scripts/fuzz.sh urlcode   (corpus: tests/fuzz/corpus/urlcode/)
 */
#include "fuzz_util.h"

#include "core/urlcode.h"
#include "core/validate.h"

static void check_escape_round_trip(const char *s, const char *keep)
{
    sbuf e = {0};
    url_escape(&e, s, keep);
    FUZZ_CHECK(!sbuf_failed(&e), "out of memory");
    const char *enc = e.data ? e.data : "";
    for (const char *p = enc; *p; p++) {
        unsigned char c = (unsigned char)*p;
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '.' || c == '_' || c == '~' || c == '%' ||
                  (keep && strchr(keep, c));
        FUZZ_CHECK(ok, "escape left byte 0x%02x plain in %s", c, enc);
    }
    char *dec = strdup(enc);
    size_t n = url_unescape_in_place(dec);
    FUZZ_CHECK(n == strlen(s) && strcmp(dec, s) == 0, "unescape(escape(s)) != s: %s -> %s -> %s", s,
               enc, dec);
    free(dec);
    sbuf_free(&e);
}

static void check_limit(const char *s)
{
    validation v = {0};
    int out = -12345;
    if (validate_limit(s, &out, &v)) {
        FUZZ_CHECK(v.count == 0 && out >= 1 && out <= 100, "accepted limit %d with %d errors", out,
                   v.count);
    } else {
        FUZZ_CHECK(v.count == 1 && out == -12345, "rejected with %d errors, out %d", v.count, out);
        size_t len = 0;
        char *body = validation_body(&v, &len);
        FUZZ_CHECK(body && fuzz_json_valid(body, len), "422 body is not valid JSON: %s", body);
        free(body);
    }
    validation_free(&v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_strdup(data, size);
    size_t before = strlen(s);

    check_limit(s);
    check_escape_round_trip(s, NULL);
    check_escape_round_trip(s, "/:@!$&'()*+,;=");

    char *d = strdup(s);
    size_t n = url_unescape_in_place(d);
    FUZZ_CHECK(n == strlen(d) && n <= before, "unescape returned %zu, strlen %zu, input %zu", n,
               strlen(d), before);
    /* decoding is the query parser's step before the limit check: check the decoded value too */
    check_limit(d);
    free(d);
    free(s);
    return 0;
}
