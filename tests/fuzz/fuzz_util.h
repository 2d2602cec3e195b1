/*
 * fuzz_util — helpers shared by the libFuzzer harnesses in tests/fuzz (header
 * only, so each harness stays one translation unit): a strict RFC 8259 JSON
 * syntax checker (jansson cannot be the judge of "is this valid JSON": it
 * rejects integers wider than 64 bits as overflow, which validate echoes back
 * verbatim on purpose), a NUL-terminated copy of the input, and FUZZ_CHECK,
 * an assertion that stays on in every build and prints what broke.
 */
#ifndef TASKD_FUZZ_UTIL_H
#define TASKD_FUZZ_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n  ", __FILE__, __LINE__, #cond);         \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* A malloc'ed NUL-terminated copy of data[0..size) (cut at an embedded NUL, as C strings are). */
static inline char *fuzz_strdup(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        abort();
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* ---- strict JSON syntax (RFC 8259), UTF-8 checked ---- */

typedef struct fuzz_json {
    const char *p, *end;
    int depth;
} fuzz_json;

static inline void fj_ws(fuzz_json *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

static inline bool fj_lit(fuzz_json *j, const char *w)
{
    size_t n = strlen(w);
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, w, n) != 0)
        return false;
    j->p += n;
    return true;
}

static inline bool fj_digits(fuzz_json *j)
{
    const char *s = j->p;
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
        j->p++;
    return j->p > s;
}

static inline bool fj_number(fuzz_json *j)
{
    if (j->p < j->end && *j->p == '-')
        j->p++;
    if (j->p < j->end && *j->p == '0')
        j->p++;
    else if (!fj_digits(j))
        return false;
    if (j->p < j->end && *j->p == '.') {
        j->p++;
        if (!fj_digits(j))
            return false;
    }
    if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
        j->p++;
        if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
            j->p++;
        if (!fj_digits(j))
            return false;
    }
    return true;
}

/* One UTF-8 sequence at j->p (not ASCII); shortest form, no surrogates, <= U+10FFFF. */
static inline bool fj_utf8(fuzz_json *j)
{
    const unsigned char *s = (const unsigned char *)j->p;
    size_t left = (size_t)(j->end - j->p);
    unsigned c = s[0], n;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf)
        n = 1, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
        n = 2, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 3, cp = c & 0x07;
    else
        return false;
    if (left < n + 1)
        return false;
    for (unsigned i = 1; i <= n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return false;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return false;
    j->p += n + 1;
    return true;
}

static inline bool fj_string(fuzz_json *j)
{
    if (j->p >= j->end || *j->p != '"')
        return false;
    j->p++;
    while (j->p < j->end) {
        unsigned char c = (unsigned char)*j->p;
        if (c == '"') {
            j->p++;
            return true;
        }
        if (c < 0x20)
            return false;
        if (c == '\\') {
            j->p++;
            if (j->p >= j->end)
                return false;
            char e = *j->p++;
            if (e == 'u') {
                for (int i = 0; i < 4; i++, j->p++) {
                    if (j->p >= j->end)
                        return false;
                    char h = *j->p;
                    if (!((h >= '0' && h <= '9') || (h >= 'a' && h <= 'f') ||
                          (h >= 'A' && h <= 'F')))
                        return false;
                }
            } else if (!strchr("\"\\/bfnrt", e) || e == '\0') {
                return false;
            }
        } else if (c >= 0x80) {
            if (!fj_utf8(j))
                return false;
        } else {
            j->p++;
        }
    }
    return false;
}

static inline bool fj_value(fuzz_json *j)
{
    fj_ws(j);
    if (j->p >= j->end)
        return false;
    char c = *j->p;
    if (c == '{' || c == '[') {
        if (++j->depth > 512)
            return false;
        char close = c == '{' ? '}' : ']';
        j->p++;
        fj_ws(j);
        if (j->p < j->end && *j->p == close) {
            j->p++;
            j->depth--;
            return true;
        }
        for (;;) {
            if (c == '{') {
                fj_ws(j);
                if (!fj_string(j))
                    return false;
                fj_ws(j);
                if (j->p >= j->end || *j->p != ':')
                    return false;
                j->p++;
            }
            if (!fj_value(j))
                return false;
            fj_ws(j);
            if (j->p >= j->end)
                return false;
            if (*j->p == ',') {
                j->p++;
                continue;
            }
            if (*j->p != close)
                return false;
            j->p++;
            j->depth--;
            return true;
        }
    }
    if (c == '"')
        return fj_string(j);
    if (c == 't')
        return fj_lit(j, "true");
    if (c == 'f')
        return fj_lit(j, "false");
    if (c == 'n')
        return fj_lit(j, "null");
    return fj_number(j);
}

/* True when text[0..len) is exactly one JSON value (surrounding whitespace allowed). */
static inline bool fuzz_json_valid(const char *text, size_t len)
{
    fuzz_json j = {text, text + len, 0};
    if (!fj_value(&j))
        return false;
    fj_ws(&j);
    return j.p == j.end;
}

#endif
