/*
 * sbuf — a growable byte buffer for building response bodies and JSON text.
 *
 * Every append either succeeds or marks the buffer as failed (out of memory, or
 * text printf could not format: sbuf_error() says which); callers check
 * sbuf_failed() once at the end instead of after every call.
 * The buffer is always NUL-terminated once anything has been appended.
 */
#ifndef TASKD_SBUF_H
#define TASKD_SBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct sbuf {
    char *data;  /* owned; NUL-terminated; NULL until the first append */
    size_t len;  /* bytes used, excluding the terminator */
    size_t cap;  /* bytes allocated */
    bool failed; /* an append failed; contents are incomplete */
    int error;   /* why, when not out of memory (see sbuf_error()) */
} sbuf;

/* Append len bytes. */
void sbuf_append(sbuf *b, const char *s, size_t len);
/* Append a NUL-terminated string (inline, so a literal's length is known when compiling). */
static inline void sbuf_puts(sbuf *b, const char *s)
{
    sbuf_append(b, s, strlen(s));
}
/* Append one character. */
void sbuf_putc(sbuf *b, char c);
/*
 * Append printf-formatted text. Text vsnprintf() cannot format (over INT_MAX bytes:
 * EOVERFLOW; a wide character the locale cannot write: EILSEQ) fails the buffer with that error.
 */
void sbuf_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append a signed integer in decimal. */
void sbuf_int(sbuf *b, int64_t v);
/*
 * Join the strings (a NULL ends the list) into out, cut to fit its size (at
 * least 1) and never inside a UTF-8 character, so always a start of the
 * whole join: span names, labels and fixed-size copies without a format
 * string to parse on the hot paths.
 */
void str_join(char *out, size_t size, ...) __attribute__((sentinel));
/*
 * Append d as Python's repr() writes a float, which is what json.dumps() writes
 * too: the fewest significant digits that read back as the same double (0.1,
 * not 0.10000000000000001; 5e-324), the nearest to d of those; in exponent
 * form below 1e-4 and from 1e16 ("1e-05", "1.5e+16"), else with a point and
 * ".0" for a whole number ("1.0", "-0.0", "1000000000000000.0"). NaN and the
 * infinities are "nan", "inf" and "-inf", which are no JSON: a caller that
 * writes JSON spells them itself.
 */
void sbuf_double(sbuf *b, double d);
/* Room for any text double_text() writes, its NUL included (the longest, 24 characters:
 * "-2.2250738585072014e-308"). */
#define DOUBLE_TEXT_MAX 32
/* d as sbuf_double() appends it, into out. */
void double_text(char out[DOUBLE_TEXT_MAX], double d);
/*
 * d as Prometheus's Go client writes a bucket's le (expfmt's writeFloat(): strconv.FormatFloat(d,
 * 'g', -1, 64), but 0 for -0 too): the same digits as double_text(), in exponent form below 1e-4
 * and from 1e6 ("1e-05", "1.048576e+06"), else without a ".0" ("1", "100000", "0.25"); 0 and -0
 * as "0" (where FormatFloat writes "-0"), "NaN", "+Inf", "-Inf".
 */
void double_text_go(char out[DOUBLE_TEXT_MAX], double d);
/*
 * Where to cut s before byte n without splitting a UTF-8 character: n, moved back past the
 * continuation bytes that s[n] is one of, at most 3 (in text that is not UTF-8, a longer run of
 * them is cut 3 bytes back). s[n] must be readable (a byte of s, or its NUL).
 */
size_t utf8_cut(const char *s, size_t n);
/* The precision for "%.*s" that prints s whole, or its first max bytes at most where a character
 * ends: a value quoted in a message, kept short, and never half a character. */
static inline int utf8_prec(const char *s, size_t max)
{
    return (int)utf8_cut(s, strnlen(s, max));
}
/*
 * The length of the well-formed UTF-8 character at s[0..n) (1 to 4), or 0 when
 * the bytes there are not one (a stray continuation byte, an overlong form, a
 * surrogate, past U+10FFFF, or cut short).
 */
size_t utf8_char_len(const char *s, size_t n);
/* Whether s[0..n) is well-formed UTF-8: utf8_char_len() finds a character at each step (a NUL
 * byte is one). */
bool utf8_valid(const char *s, size_t n);
/* Whether byte c continues a UTF-8 character (10xxxxxx) rather than starts one. */
static inline bool utf8_is_cont(char c)
{
    return ((unsigned char)c & 0xc0) == 0x80;
}
/*
 * Where a character starts at or after byte i of s[0..n): i, moved on past the continuation
 * bytes there, at most to n. utf8_cut() looks back; this looks ahead.
 */
size_t utf8_start(const char *s, size_t i, size_t n);
/* Space, tab, CR or LF: the white space of JSON and of XML, and what ends a header line. */
static inline bool str_is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}
/* Drop str_is_ws() characters from both ends of s[0..*n): *s and *n move in. */
void str_trim(const char **s, size_t *n);

/*
 * A malloc'ed copy of the string s in which every byte that starts no
 * well-formed UTF-8 character is U+FFFD, as sbuf_json_strn() writes it; NULL
 * when out of memory.
 */
char *utf8_dup(const char *s);

/*
 * Copy s into out (size bytes with the NUL, size >= 1) as well-formed UTF-8: whole characters
 * only, up to the first that does not fit, and '?' for each byte that starts none (so the copy
 * is never longer than s). Its length.
 */
size_t utf8_copy_within(char *out, size_t size, const char *s);

/*
 * Append s as a quoted, escaped JSON string (s may be NULL: appends null).
 * A byte that is not part of well-formed UTF-8 is written as U+FFFD, so the
 * result is always valid JSON, whatever s holds. Control characters and the
 * noncharacters U+FFFE and U+FFFF are escaped, so the text holds only
 * characters XML allows, as an SQS message body must. Returns the bytes of
 * the string the text reads back as: s's, and 2 more for each byte written
 * as U+FFFD (0 for null); once b has failed the count is not to be used.
 */
size_t sbuf_json_str(sbuf *b, const char *s);
/* Same for a string of known length that may contain NUL bytes. */
size_t sbuf_json_strn(sbuf *b, const char *s, size_t len);
/* True when an append failed since init. */
static inline bool sbuf_failed(const sbuf *b)
{
    return b->failed;
}
/*
 * Why the buffer failed, as an errno value: ENOMEM (memory ran out, or a length past any memory
 * was asked for), or the error of text sbuf_printf() could not format; 0 when it has not failed.
 */
int sbuf_error(const sbuf *b);
/*
 * Why the buffer failed, in words for a log line or an error's message: "out of memory" for
 * ENOMEM, else what sbuf_printf() could not format ("text too long to format" for EOVERFLOW, "a
 * character the locale cannot write" for EILSEQ, "text that cannot be formatted" for another
 * error); "" when it has not failed. Static text.
 */
const char *sbuf_error_text(const sbuf *b);
/*
 * Hand the bytes to the caller (who frees them) and reset the buffer; NULL
 * (and the bytes freed) when an allocation failed, so no caller ever gets
 * half-built text.
 */
char *sbuf_take(sbuf *b, size_t *len);
/* Free the bytes and reset. */
void sbuf_free(sbuf *b);
/* Drop what was appended past len bytes (len <= b->len), e.g. a part that turned out too big. */
void sbuf_truncate(sbuf *b, size_t len);

#endif
