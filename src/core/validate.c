/*
 * validate — FastAPI-compatible request validation; see validate.h.
 *
 * Types, messages and ctx follow pydantic v2 ("missing"/"Field required",
 * "int_parsing"/"Input should be a valid integer, unable to parse string as
 * an integer", "literal_error"/"Input should be 'A' or 'B'", ...), which is
 * what FastAPI clients already parse.
 */
#include "validate.h"

#include "attrval.h"
#include "json_util.h"
#include "sbuf.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Append one item; loc is the JSON text of the loc array. */
static void add_item(validation *v, const char *type, const char *loc, const char *msg,
                     const char *input, const char *ctx)
{
    if (v->count++)
        sbuf_putc(&v->items, ',');
    sbuf_puts(&v->items, "{\"type\":");
    sbuf_json_str(&v->items, type);
    sbuf_printf(&v->items, ",\"loc\":%s,\"msg\":", loc);
    sbuf_json_str(&v->items, msg);
    if (input)
        sbuf_printf(&v->items, ",\"input\":%s", input);
    if (ctx)
        sbuf_printf(&v->items, ",\"ctx\":%s", ctx);
    sbuf_putc(&v->items, '}');
}

void validation_add(validation *v, const char *where, const char *field, const char *type,
                    const char *msg, const char *input, const char *ctx)
{
    sbuf loc = {0};
    sbuf_putc(&loc, '[');
    sbuf_json_str(&loc, where);
    if (field) {
        sbuf_putc(&loc, ',');
        sbuf_json_str(&loc, field);
    }
    sbuf_putc(&loc, ']');
    if (sbuf_failed(&loc))
        v->items.failed = true;
    else
        add_item(v, type, loc.data, msg, input, ctx);
    sbuf_free(&loc);
}

char *validation_body(validation *v, size_t *len)
{
    sbuf b = {0};
    sbuf_puts(&b, "{\"detail\":[");
    if (v->items.data)
        sbuf_append(&b, v->items.data, v->items.len);
    sbuf_puts(&b, "]}");
    if (sbuf_failed(&b) || sbuf_failed(&v->items)) {
        sbuf_free(&b);
        return NULL;
    }
    return sbuf_take(&b, len);
}

void validation_free(validation *v)
{
    sbuf_free(&v->items);
    v->count = 0;
}

/*
 * The JSON text of an input to echo, or NULL when it is too long to echo, or when memory ran
 * out (then v fails: an item without its input would say the input was too long). Reals are
 * in their shortest form (json_write_compact()), as pydantic echoes them: 0.1, not
 * 0.10000000000000001. Placeholders of integers beyond 64 bits (see widen()) become the numbers.
 */
static char *input_text(validation *v, const json_t *j)
{
    char *t = json_to_text(j);
    if (!t) {
        v->items.failed = true;
        return NULL;
    }
    static const char tag[] = "\"\\u0000int:";
    char *w = t;
    for (const char *r = t; *r;) {
        if (strncmp(r, tag, sizeof tag - 1) == 0) {
            r += sizeof tag - 1;
            while (*r && *r != '"')
                *w++ = *r++;
            r += *r == '"';
        } else {
            *w++ = *r++;
        }
    }
    *w = '\0';
    if (strlen(t) > VALIDATE_INPUT_MAX) {
        free(t);
        t = NULL;
    }
    return t;
}

/* One error at ["body", field] (field NULL: ["body"]) about input j. */
static void body_error(validation *v, const char *field, const char *type, const char *msg,
                       const json_t *j, const char *ctx)
{
    char *input = j ? input_text(v, j) : NULL;
    validation_add(v, "body", field, type, msg, j ? input : "null", ctx);
    free(input);
}

/*
 * The ctx {"error": "<text>"} of pydantic's value_error and json_invalid; false, with v failed,
 * when memory ran out (an item without it would hide why the value was refused).
 */
static bool error_ctx(validation *v, sbuf *ctx, const char *text)
{
    sbuf_puts(ctx, "{\"error\":");
    sbuf_json_str(ctx, text);
    sbuf_putc(ctx, '}');
    if (sbuf_failed(ctx))
        v->items.failed = true;
    return !sbuf_failed(ctx);
}

/* pydantic's value_error: "Value error, <text>" with ctx {"error": "<text>"}. */
static void value_error(validation *v, const char *field, const char *text, const json_t *j)
{
    char msg[256];
    snprintf(msg, sizeof msg, "Value error, %s", text);
    sbuf ctx = {0};
    if (error_ctx(v, &ctx, text))
        body_error(v, field, "value_error", msg, j, ctx.data);
    sbuf_free(&ctx);
}

/*
 * Integers beyond 64 bits. JSON allows them and the original (Python) took
 * them; jansson refuses them, which would read as a JSON decode error. So a
 * body that fails only for that is parsed again with each such integer in a
 * placeholder string, "\0int:<digits>", which validation recognises: it can
 * then say which field is out of range, ignore unknown fields as usual, and
 * echo the number as it was sent.
 */
#define WIDE_TAG     "\0int:"
#define WIDE_TAG_LEN 5

static bool is_wide(const json_t *j)
{
    return json_is_string(j) && json_string_length(j) > WIDE_TAG_LEN &&
           memcmp(json_string_value(j), WIDE_TAG, WIDE_TAG_LEN) == 0;
}

/* The digits of a placeholder ("-123..."). */
static const char *wide_digits(const json_t *j)
{
    return json_string_value(j) + WIDE_TAG_LEN;
}

static bool holds_wide(const json_t *j)
{
    if (is_wide(j))
        return true;
    size_t i;
    const char *k;
    json_t *e;
    if (json_is_array(j)) {
        json_array_foreach(j, i, e)
        {
            if (holds_wide(e))
                return true;
        }
    }
    if (json_is_object(j)) {
        json_object_foreach((json_t *)j, k, e)
        {
            if (holds_wide(e))
                return true;
        }
    }
    return false;
}

/* Whether the integer literal s[0..n) (an optional '-', then digits) fits int64. */
static bool fits_int64(const char *s, size_t n)
{
    bool negative = s[0] == '-';
    const char *d = s + negative;
    size_t nd = n - negative;
    while (nd > 1 && *d == '0') {
        d++;
        nd--;
    }
    const char *max = negative ? "9223372036854775808" : "9223372036854775807";
    return nd < 19 || (nd == 19 && memcmp(d, max, 19) <= 0);
}

/*
 * The body with every integer literal beyond int64 turned into a placeholder
 * string; NULL when out of memory or when the body has "\u0000" in a string
 * (then a placeholder could not be told from text the client sent).
 */
static char *widen(const char *body, size_t len, size_t *out_len)
{
    sbuf b = {0};
    for (size_t i = 0; i < len;) {
        char c = body[i];
        if (c == '"') { /* copy a string whole, escapes included */
            size_t j = i + 1;
            while (j < len && body[j] != '"') {
                if (body[j] == '\\') {
                    if (j + 6 <= len && memcmp(body + j, "\\u0000", 6) == 0) {
                        sbuf_free(&b);
                        return NULL;
                    }
                    j++;
                }
                j++;
            }
            j = j < len ? j + 1 : len;
            sbuf_append(&b, body + i, j - i);
            i = j;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            size_t j = i + 1;
            while (j < len && body[j] >= '0' && body[j] <= '9')
                j++;
            size_t int_end = j; /* then a fraction and an exponent, if any */
            while (j < len && body[j] && strchr("0123456789.eE+-", body[j]))
                j++;
            bool integer = j == int_end;
            size_t sign = c == '-';
            /* "012" is not JSON: left as it is, for the parser to refuse */
            bool leading_zero = j - i > sign + 1 && body[i + sign] == '0';
            if (integer && j - i > sign && !leading_zero && !fits_int64(body + i, j - i)) {
                sbuf_puts(&b, "\"\\u0000int:");
                sbuf_append(&b, body + i, j - i);
                sbuf_putc(&b, '"');
            } else {
                sbuf_append(&b, body + i, j - i);
            }
            i = j;
        } else {
            sbuf_putc(&b, c);
            i++;
        }
    }
    return sbuf_take(&b, out_len);
}

/*
 * Parse the body; integers beyond 64 bits come back as placeholders (see widen()). NULL with
 * *nomem when memory ran out.
 */
static json_t *load_body(const char *body, size_t len, json_error_t *jerr, bool *nomem)
{
    json_t *root = json_parse(body, len, JSON_DECODE_ANY, jerr, nomem);
    if (root || *nomem || json_error_code(jerr) != json_error_numeric_overflow)
        return root;
    size_t wlen;
    errno = 0;
    char *wide = widen(body, len, &wlen);
    if (!wide) {
        *nomem = errno == ENOMEM; /* else a "\u0000": the first error stands */
        return NULL;
    }
    json_error_t werr;
    root = json_parse(wide, wlen, JSON_DECODE_ANY | JSON_ALLOW_NUL, &werr, nomem);
    free(wide);
    return root; /* NULL: the first error stands, unless memory ran out */
}

/*
 * The parser's words for a "\u0000" name its own flag ("\u0000 is not allowed without
 * JSON_ALLOW_NUL near ..."), which tells a client nothing it can set: said in the client's words.
 */
static void say_nul_plainly(json_error_t *jerr)
{
    static const char jansson[] = "\\u0000 is not allowed without JSON_ALLOW_NUL";
    static const char plain[] = "a NUL character (\\u0000) is not allowed in a string";
    if (strncmp(jerr->text, jansson, sizeof jansson - 1) != 0)
        return;
    char rest[sizeof jerr->text]; /* " near '...'", cut where the longer words leave no room */
    size_t keep = strnlen(jerr->text + sizeof jansson - 1, sizeof rest - sizeof plain);
    memcpy(rest, jerr->text + sizeof jansson - 1, keep);
    memcpy(jerr->text, plain, sizeof plain - 1);
    memcpy(jerr->text + sizeof plain - 1, rest, keep);
    jerr->text[sizeof plain - 1 + keep] = '\0';
}

/*
 * Parse the body as a JSON object. An empty (or null) body is a missing one,
 * as in FastAPI; text that is not JSON is json_invalid at ["body", byte offset];
 * JSON that is not an object is model_attributes_type.
 */
static json_t *parse_object(const char *body, size_t len, validation *v)
{
    if (!body || len == 0) {
        validation_add(v, "body", NULL, "missing", "Field required", "null", NULL);
        return NULL;
    }
    if (len >= 3 && memcmp(body, "\xEF\xBB\xBF", 3) == 0) {
        body += 3; /* a UTF-8 byte order mark, as Python's json.loads skips it */
        len -= 3;
    }
    json_error_t jerr;
    const char *nul = memchr(body, '\0', len);
    json_t *root = NULL;
    bool nomem = false;
    if (nul) { /* never JSON, though the parser lets one pass after a number */
        snprintf(jerr.text, sizeof jerr.text, "a NUL byte is not allowed in JSON text");
        jerr.position = (int)(nul - body);
    } else {
        root = load_body(body, len, &jerr, &nomem);
    }
    if (json_is_null(root)) { /* FastAPI reads a null body as none at all */
        json_decref(root);
        validation_add(v, "body", NULL, "missing", "Field required", "null", NULL);
        return NULL;
    }
    if (nomem) {
        v->items.failed = true; /* whether the body is JSON is not known */
        return NULL;
    }
    if (!root) {
        say_nul_plainly(&jerr);
        char loc[48];
        snprintf(loc, sizeof loc, "[\"body\",%d]", jerr.position);
        sbuf ctx = {0};
        if (error_ctx(v, &ctx, jerr.text))
            add_item(v, "json_invalid", loc, "JSON decode error", "{}", ctx.data);
        sbuf_free(&ctx);
        return NULL;
    }
    if (!json_is_object(root)) {
        body_error(v, NULL, "model_attributes_type",
                   "Input should be a valid dictionary or object to extract fields from", root,
                   NULL);
        json_decref(root);
        return NULL;
    }
    return root;
}

/* pydantic's error for an integer beyond 64 bits inside data or result. */
static void wide_value_error(validation *v, const char *field, const json_t *j)
{
    value_error(v, field, "integers must lie between -9223372036854775808 and 9223372036854775807",
                j);
}

/* The literal message and ctx pydantic gives: "Input should be 'A', 'B' or 'C'". */
static void literal_error(validation *v, const char *where, const char *field,
                          const char *const *names, size_t n, const char *input)
{
    sbuf expected = {0}, msg = {0}, ctx = {0};
    for (size_t i = 0; i < n; i++) {
        if (i)
            sbuf_puts(&expected, i + 1 == n ? " or " : ", ");
        sbuf_printf(&expected, "'%s'", names[i]);
    }
    sbuf_puts(&msg, "Input should be ");
    if (expected.data)
        sbuf_append(&msg, expected.data, expected.len);
    sbuf_puts(&ctx, "{\"expected\":");
    sbuf_json_str(&ctx, expected.data ? expected.data : "");
    sbuf_putc(&ctx, '}');
    if (sbuf_failed(&expected) || sbuf_failed(&msg) || sbuf_failed(&ctx))
        v->items.failed = true; /* an item without its choices would mislead */
    else
        validation_add(v, where, field, "literal_error", msg.data, input, ctx.data);
    sbuf_free(&expected);
    sbuf_free(&msg);
    sbuf_free(&ctx);
}

void validation_literal(validation *v, const char *where, const char *field,
                        const char *const *names, size_t n, const char *value)
{
    sbuf input = {0};
    sbuf_json_str(&input, value);
    if (sbuf_failed(&input))
        v->items.failed = true; /* not "null": the value was not that */
    else
        literal_error(v, where, field, names, n, input.data);
    sbuf_free(&input);
}

/* A field that is missing: pydantic echoes the whole body as its input. */
static void missing(validation *v, const char *field, const json_t *root)
{
    body_error(v, field, "missing", "Field required", root, NULL);
}

static void check_task_type(const config *c, const json_t *root, create_request *out,
                            validation *errs)
{
    json_t *v = json_object_get(root, "task_type");
    if (!v) {
        missing(errs, "task_type", root);
        return;
    }
    const char *s = json_string_value(v);
    if (!s || !config_has_task_type(c, s)) {
        char *input = input_text(errs, v);
        literal_error(errs, "body", "task_type", (const char *const *)c->task_types,
                      c->n_task_types, input);
        free(input);
        return;
    }
    snprintf(out->task_type, sizeof out->task_type, "%s", s);
}

/*
 * An integer in a string as pydantic v2 reads it in lax mode (pydantic-core's str_as_int()):
 * the text whole as a JSON integer (-?(0|[1-9][0-9]*)), else the text cleaned and read so
 * again. Cleaning trims Unicode white space (Rust's trim()), takes one '+' and then one '-'
 * (not "+-", "--" or "-+"), leading zeros (and '_' among them: "0_7" is 7), a fraction of
 * zeros ("5.00" is 5, "5." is not) and, where the rest has '_' neither first nor last nor
 * doubled, every '_' ("4_2" is 42); text the cleaning leaves as it was is not an integer.
 * Leading zeros are taken from the start of the text left, wherever its first other character
 * is: "0-5" is -5, as pydantic reads it. A text beginning with a JSON integer of more than
 * 4300 characters is too long (int_parsing_size), as Python's int() limit; cleaned text of that
 * length is not an integer. Nothing else: not "0x5", "1e2", "5.5", "٥" or "".
 */
typedef enum { LAX_INT_OK, LAX_INT_PARSING, LAX_INT_SIZE } lax_int;

#define LAX_INT_MAX_CHARS 4300

/* The length of the JSON integer s[0..n) starts with (0 if none). */
static size_t json_int_prefix(const char *s, size_t n)
{
    size_t i = n > 0 && s[0] == '-';
    if (i >= n || s[i] < '0' || s[i] > '9')
        return 0;
    if (s[i] == '0')
        return i + 1;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++;
    return i;
}

/* The JSON integer s[0..n) (whole), saturated to int64 with *beyond set past its range. */
static bool json_int_value(const char *s, size_t n, int64_t *out, bool *beyond)
{
    if (n == 0 || json_int_prefix(s, n) != n)
        return false;
    bool negative = s[0] == '-';
    uint64_t mag = 0, limit = negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    *beyond = false;
    for (size_t i = negative; i < n; i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (mag > (limit - d) / 10) {
            *beyond = true;
            mag = limit;
            break;
        }
        mag = mag * 10 + d;
    }
    *out = negative ? (int64_t)(0 - mag) : (int64_t)mag;
    return true;
}

/* The length of the Unicode white space (Rust's char::is_whitespace) s[0..n) starts with. */
static size_t space_at(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    if (n >= 1 && ((u[0] >= 0x09 && u[0] <= 0x0D) || u[0] == ' '))
        return 1;
    if (n >= 2 && u[0] == 0xC2 && (u[1] == 0x85 || u[1] == 0xA0))
        return 2;
    if (n < 3)
        return 0;
    unsigned c = (unsigned)u[0] << 16 | (unsigned)u[1] << 8 | u[2];
    bool space = c == 0xE19A80 || (c >= 0xE28080 && c <= 0xE2808A) || c == 0xE280A8 ||
                 c == 0xE280A9 || c == 0xE280AF || c == 0xE2819F || c == 0xE38080;
    return space ? 3 : 0;
}

/* The length of the Unicode white space s[0..n) ends with. */
static size_t space_before(const char *s, size_t n)
{
    for (size_t k = 1; k <= 3 && k <= n; k++)
        if (space_at(s + n - k, k) == k)
            return k;
    return 0;
}

/* pydantic's strip_leading_zeros(): false where it gives None. */
static bool strip_leading_zeros(const char **s, size_t *n)
{
    const char *p = *s;
    if (*n == 0 || (p[0] != '0' && !(p[0] >= '1' && p[0] <= '9') && p[0] != '-'))
        return false;
    if (p[0] != '0')
        return true;
    for (size_t i = 1; i < *n; i++) {
        if (p[i] == '0' || p[i] == '_')
            continue;
        if ((p[i] >= '1' && p[i] <= '9') || p[i] == '-' || p[i] == '.') {
            size_t from = p[i] == '.' ? i - 1 : i; /* "00.0" keeps a zero: "0.0" */
            *s += from;
            *n -= from;
            return true;
        }
        return false;
    }
    *s += *n - 1; /* all zeros (or '_'): the last character */
    *n = 1;
    return true;
}

/* pydantic's clean_int_str(), into *clean; false where it gives None. */
static bool clean_int_text(const char *s, size_t n, sbuf *clean)
{
    size_t before = n, k;
    while ((k = space_at(s, n)) > 0) {
        s += k;
        n -= k;
    }
    while ((k = space_before(s, n)) > 0)
        n -= k;
    if (n > 0 && s[0] == '+') {
        if (n > 1 && s[1] == '-')
            return false;
        s++;
        n--;
    }
    bool negative = n > 0 && s[0] == '-';
    if (negative) {
        if (n > 1 && (s[1] == '-' || s[1] == '+'))
            return false;
        s++;
        n--;
    }
    if (!strip_leading_zeros(&s, &n))
        return false;
    const char *dot = memchr(s, '.', n);
    if (dot) {
        size_t frac = n - (size_t)(dot - s) - 1;
        size_t zeros = 0;
        while (zeros < frac && dot[1 + zeros] == '0')
            zeros++;
        if (frac > 0 && zeros == frac)
            n = (size_t)(dot - s);
    }
    bool unders = memchr(s, '_', n) && s[0] != '_' && s[n - 1] != '_';
    for (size_t i = 0; unders && i + 1 < n; i++)
        unders = !(s[i] == '_' && s[i + 1] == '_');
    if (!unders && n + negative == before)
        return false; /* nothing taken: the text was read as it is */
    if (negative)
        sbuf_putc(clean, '-');
    for (size_t i = 0; i < n; i++)
        if (!unders || s[i] != '_')
            sbuf_putc(clean, s[i]);
    return true;
}

/*
 * The integer in s[0..n) as pydantic reads it, saturated to int64 (*beyond set past its range);
 * LAX_INT_PARSING also when memory runs out (then v fails).
 */
static lax_int lax_str_int(const char *s, size_t n, int64_t *out, bool *beyond, validation *v)
{
    if (json_int_prefix(s, n) > LAX_INT_MAX_CHARS)
        return LAX_INT_SIZE;
    if (json_int_value(s, n, out, beyond))
        return LAX_INT_OK;
    sbuf clean = {0};
    bool ok = clean_int_text(s, n, &clean);
    if (sbuf_failed(&clean))
        v->items.failed = true;
    ok = ok && clean.data && clean.len <= LAX_INT_MAX_CHARS &&
         json_int_value(clean.data, clean.len, out, beyond);
    sbuf_free(&clean);
    return ok ? LAX_INT_OK : LAX_INT_PARSING;
}

#define MSG_INT_PARSING      "Input should be a valid integer, unable to parse string as an integer"
#define MSG_INT_PARSING_SIZE "Unable to parse input string as an integer, exceeded maximum size"

/* ttl below 0 or above int64: pydantic's bound errors. */
static void ttl_too_small(validation *v, const json_t *j)
{
    body_error(v, "ttl", "greater_than_equal", "Input should be greater than or equal to 0", j,
               "{\"ge\":0}");
}

static void ttl_too_large(validation *v, const json_t *j)
{
    body_error(v, "ttl", "less_than_equal",
               "Input should be less than or equal to 9223372036854775807", j,
               "{\"le\":9223372036854775807}");
}

/* ttl: absent/null, a non-negative integer, or a string of one as pydantic reads it
 * (lax_str_int()). */
static void check_ttl(json_t *v, create_request *out, validation *errs)
{
    out->ttl = TASK_NULL_TIME;
    if (!v || json_is_null(v))
        return;
    if (is_wide(v)) {
        if (wide_digits(v)[0] == '-')
            ttl_too_small(errs, v);
        else
            ttl_too_large(errs, v);
        return;
    }
    if (json_is_integer(v)) {
        if (json_integer_value(v) < 0) {
            ttl_too_small(errs, v);
            return;
        }
        out->ttl = json_integer_value(v);
        return;
    }
    if (json_is_string(v)) {
        int64_t t;
        bool beyond;
        lax_int r = lax_str_int(json_string_value(v), json_string_length(v), &t, &beyond, errs);
        if (r == LAX_INT_SIZE)
            body_error(errs, "ttl", "int_parsing_size", MSG_INT_PARSING_SIZE, v, NULL);
        else if (r == LAX_INT_PARSING)
            body_error(errs, "ttl", "int_parsing", MSG_INT_PARSING, v, NULL);
        else if (t < 0)
            ttl_too_small(errs, v);
        else if (beyond)
            ttl_too_large(errs, v);
        else
            out->ttl = t;
        return;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        /* within int64, so the cast below is defined */
        bool in_range = d >= -9223372036854775808.0 && d < 9223372036854775808.0;
        if (in_range && d != (double)(long long)d)
            body_error(errs, "ttl", "int_from_float",
                       "Input should be a valid integer, got a number with a fractional part", v,
                       NULL);
        else if (d < 0)
            ttl_too_small(errs, v);
        else if (!in_range)
            ttl_too_large(errs, v);
        else
            out->ttl = (int64_t)d; /* a whole number written as a float, as pydantic accepts */
        return;
    }
    body_error(errs, "ttl", "int_type", "Input should be a valid integer", v, NULL);
}

/* A value nested deeper than VALIDATE_MAX_DEPTH. */
static void too_deep(validation *v, const char *field, const json_t *j)
{
    char text[96];
    snprintf(text, sizeof text, "objects and arrays may nest at most %d levels deep",
             VALIDATE_MAX_DEPTH);
    value_error(v, field, text, j);
}

bool validate_create(const config *c, const char *body, size_t len, create_request *out,
                     validation *v)
{
    memset(out, 0, sizeof *out);
    out->ttl = TASK_NULL_TIME;
    json_t *root = parse_object(body, len, v);
    if (!root)
        return false;
    check_task_type(c, root, out, v);
    json_t *data = json_object_get(root, "data");
    const char *why;
    if (data && !json_is_object(data))
        body_error(v, "data", "dict_type", "Input should be a valid dictionary", data, NULL);
    else if (data && holds_wide(data))
        wide_value_error(v, "data", data);
    else if (data && !json_depth_within(data, VALIDATE_MAX_DEPTH))
        too_deep(v, "data", data);
    else if (data && !json_storable(data, &why))
        value_error(v, "data", why, data);
    check_ttl(json_object_get(root, "ttl"), out, v);
    if (v->count == 0) {
        /* both forms here, on the request's thread, not in the store's single writer */
        sbuf image = {0};
        if (data) {
            out->data_size = attrval_write(&image, data);
        } else {
            sbuf_puts(&image, "{\"M\":{}}");
            out->data_size = ATTRVAL_NESTED; /* an empty map */
        }
        out->data = data ? json_to_text(data) : strdup("{}");
        out->data_image = sbuf_failed(&image) ? NULL : sbuf_take(&image, NULL);
        sbuf_free(&image);
        if (!out->data || !out->data_image)
            v->items.failed = true;
    }
    json_decref(root);
    if (v->count || sbuf_failed(&v->items)) {
        create_request_free(out);
        return false;
    }
    return true;
}

void create_request_free(create_request *r)
{
    free(r->data);
    free(r->data_image);
    r->data = r->data_image = NULL;
}

#define STR_(x) #x
#define STR(x)  STR_(x)

/* A JSON string's length in Unicode code points (jansson keeps it as valid UTF-8). */
static size_t code_points(const json_t *s)
{
    const unsigned char *p = (const unsigned char *)json_string_value(s);
    size_t n = 0, len = json_string_length(s);
    for (size_t i = 0; i < len; i++)
        n += !utf8_is_cont((char)p[i]);
    return n;
}

bool validate_update(const char *body, size_t len, update_request *out, validation *v)
{
    memset(out, 0, sizeof *out);
    json_t *root = parse_object(body, len, v);
    if (!root)
        return false;
    json_t *status = json_object_get(root, "status");
    if (!status) {
        missing(v, "status", root);
    } else if (!json_is_string(status) ||
               !task_status_parse(json_string_value(status), &out->status)) {
        char *input = input_text(v, status);
        literal_error(v, "body", "status", task_status_names, TASK_N_STATUSES, input);
        free(input);
    }
    json_t *msg = json_object_get(root, "status_msg");
    if (msg && (!json_is_string(msg) || is_wide(msg)))
        body_error(v, "status_msg", "string_type", "Input should be a valid string", msg, NULL);
    else if (msg && code_points(msg) > VALIDATE_STATUS_MSG_MAX)
        body_error(v, "status_msg", "string_too_long",
                   "String should have at most " STR(VALIDATE_STATUS_MSG_MAX) " characters", msg,
                   "{\"max_length\":" STR(VALIDATE_STATUS_MSG_MAX) "}");
    json_t *result = json_object_get(root, "result");
    const char *why;
    if (result && holds_wide(result))
        wide_value_error(v, "result", result);
    else if (result && !json_depth_within(result, VALIDATE_MAX_DEPTH))
        too_deep(v, "result", result);
    else if (result && !json_storable(result, &why))
        value_error(v, "result", why, result);
    if (v->count == 0) {
        out->status_msg = strdup(json_is_string(msg) ? json_string_value(msg) : "");
        out->result = result ? json_to_text(result) : NULL;
        if (!out->status_msg || (result && !out->result))
            v->items.failed = true;
    }
    json_decref(root);
    if (v->count || sbuf_failed(&v->items)) {
        update_request_free(out);
        return false;
    }
    return true;
}

void update_request_free(update_request *r)
{
    free(r->status_msg);
    free(r->result);
    r->status_msg = NULL;
    r->result = NULL;
}

/*
 * A bounded query parameter, as pydantic reads an int with ge/le from a string (lax_str_int()):
 * int_parsing or int_parsing_size for what is not an integer, greater_than_equal /
 * less_than_equal with their bound in ctx.
 */
static bool query_int(const char *name, const char *s, long lo, long hi, int *out, validation *v)
{
    sbuf input = {0};
    sbuf_json_str(&input, s);
    const char *in = sbuf_failed(&input) ? "null" : input.data;
    int64_t val = 0;
    bool beyond, ok = false;
    lax_int r = lax_str_int(s, strlen(s), &val, &beyond, v);
    if (r == LAX_INT_SIZE) {
        validation_add(v, "query", name, "int_parsing_size", MSG_INT_PARSING_SIZE, in, NULL);
    } else if (r == LAX_INT_PARSING) {
        validation_add(v, "query", name, "int_parsing", MSG_INT_PARSING, in, NULL);
    } else {
        char msg[80], ctx[40];
        if (val < lo) {
            snprintf(msg, sizeof msg, "Input should be greater than or equal to %ld", lo);
            snprintf(ctx, sizeof ctx, "{\"ge\":%ld}", lo);
            validation_add(v, "query", name, "greater_than_equal", msg, in, ctx);
        } else if (val > hi) {
            snprintf(msg, sizeof msg, "Input should be less than or equal to %ld", hi);
            snprintf(ctx, sizeof ctx, "{\"le\":%ld}", hi);
            validation_add(v, "query", name, "less_than_equal", msg, in, ctx);
        } else {
            *out = (int)val;
            ok = true;
        }
    }
    if (!ok && sbuf_failed(&input))
        v->items.failed = true; /* its item says "null" for an input it could not quote */
    sbuf_free(&input);
    return ok;
}

bool validate_limit(const char *s, int *out, validation *v)
{
    if (!s) {
        *out = 10;
        return true;
    }
    return query_int("limit", s, 1, 100, out, v);
}

bool validate_wait(const char *s, int *out, validation *v)
{
    if (!s) {
        *out = 0;
        return true;
    }
    return query_int("wait", s, 1, VALIDATE_WAIT_MAX, out, v);
}
