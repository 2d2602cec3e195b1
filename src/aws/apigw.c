/*
 * apigw — API Gateway proxy events to and from the API; see apigw.h for the
 * rules (stage prefix, repeated values, decoding, base64).
 *
 * A parse copies what the API will read out of the jansson tree into one
 * apigw_data: the method, the final path, the body, and two lookup tables
 * (query parameters, headers) of name/value pairs in event order, so a
 * lookup is a linear scan returning the first match (a query parameter's
 * name as written, a header's in any case) from the end or the start, and
 * "which value wins" is decided by the order pairs are added in. The tree
 * is freed before the parse returns. req.ctx points at the apigw_data, so
 * the apigw_request itself may be moved.
 *
 * The response is written with sbuf straight into JSON text: the body goes
 * in escaped when it is UTF-8 text, base64-encoded in chunks otherwise.
 */
#include "apigw.h"

#include "core/errbuf.h"
#include "core/http_head.h"
#include "core/json_util.h"
#include "core/sbuf.h"
#include "core/urlcode.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* One name/value pair; name and value share one allocation (name first). */
typedef struct pair {
    char *name;        /* owned block */
    const char *value; /* inside the block */
} pair;

typedef struct table {
    pair *v;
    size_t n, cap;
} table;

struct apigw_data {
    char *method;
    char *path;
    char *body; /* NUL-terminated after body_len bytes */
    size_t body_len;
    char *request_id; /* NULL when absent */
    char *prefix;     /* the public path before path ("/dev"); "" when none */
    table query;
    table headers;
};

/* ---- tables ---- */

/*
 * Bytes of s (len, NUL bytes included) with each NUL written "%00", as the
 * local HTTP server leaves an encoded NUL: a value never ends early, and the
 * API sees the same text in both modes. Into out (2 * NULs + len + 1 bytes).
 */
static size_t nul_escaped_len(const char *s, size_t len)
{
    size_t n = len;
    for (size_t i = 0; i < len; i++)
        n += s[i] == '\0' ? 2 : 0;
    return n;
}

static void nul_escape(char *out, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\0') {
            memcpy(out, "%00", 3);
            out += 3;
        } else {
            *out++ = s[i];
        }
    }
    *out = '\0';
}

/* A malloc'ed nul_escape() of the JSON string s; NULL when out of memory. */
static char *nul_escaped_dup(const json_t *s)
{
    const char *text = json_string_value(s);
    size_t len = json_string_length(s);
    char *out = malloc(nul_escaped_len(text, len) + 1);
    if (out)
        nul_escape(out, text, len);
    return out;
}

/* Append a copy of name (nlen bytes) and value (vlen bytes); false when out of memory. */
static bool table_add(table *t, const char *name, size_t nlen, const char *value, size_t vlen)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 8;
        pair *v = realloc(t->v, cap * sizeof *v);
        if (!v)
            return false;
        t->v = v;
        t->cap = cap;
    }
    char *block = malloc(nlen + 1 + nul_escaped_len(value, vlen) + 1);
    if (!block)
        return false;
    memcpy(block, name, nlen);
    block[nlen] = '\0';
    nul_escape(block + nlen + 1, value, vlen);
    t->v[t->n++] = (pair){block, block + nlen + 1};
    return true;
}

/* The value of the last pair named name exactly (a query parameter), or else of the first
 * named name in any case (a header); NULL when none. */
static const char *table_get(const table *t, const char *name, bool query)
{
    for (size_t k = 0; k < t->n; k++) {
        size_t i = query ? t->n - 1 - k : k;
        if ((query ? strcmp : strcasecmp)(t->v[i].name, name) == 0)
            return t->v[i].value;
    }
    return NULL;
}

static void table_free(table *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->v[i].name);
    free(t->v);
    *t = (table){0};
}

static const char *lookup_query(void *ctx, const char *name)
{
    const struct apigw_data *d = ctx;
    return name ? table_get(&d->query, name, true) : NULL; /* the last value, as FastAPI reads */
}

static const char *lookup_header(void *ctx, const char *name)
{
    const struct apigw_data *d = ctx;
    return name ? table_get(&d->headers, name, false) : NULL;
}

static void data_free(struct apigw_data *d)
{
    if (!d)
        return;
    free(d->method);
    free(d->path);
    free(d->body);
    free(d->request_id);
    free(d->prefix);
    table_free(&d->query);
    table_free(&d->headers);
    free(d);
}

/* ---- decoding ---- */

static int b64val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/*
 * Decode standard base64 (padding optional, but if present it completes the
 * last group) into out, which has room for len / 4 * 3 + 3 bytes; false when
 * s is not base64.
 */
static bool b64_decode(const char *s, size_t len, char *out, size_t *outlen)
{
    size_t n = len;
    if (n && s[n - 1] == '=') {
        n--;
        if (n && s[n - 1] == '=')
            n--;
        if (len % 4 != 0)
            return false;
    }
    if (n % 4 == 1)
        return false;
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64val((unsigned char)s[i]);
        if (v < 0)
            return false;
        acc = (acc << 6 | (uint32_t)v) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char)(acc >> bits & 0xff);
        }
    }
    *outlen = o;
    return true;
}

/* ---- reading the event ---- */

/* The error context of one parse. */
typedef struct parse {
    char *err;
    size_t errlen;
    bool nomem; /* it failed for want of memory */
} parse;

static bool oom(parse *p)
{
    errbuf_set(p->err, p->errlen, "out of memory");
    p->nomem = true;
    return false;
}

/* A JSON string with no NUL byte inside. */
static bool plain_string(const json_t *v)
{
    return json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v);
}

/*
 * The string member key of obj (what names it in errors): *out is NULL when
 * it is absent or null, which is an error when required. Refuses other types
 * and strings holding a NUL byte.
 */
static bool get_text(parse *p, const json_t *obj, const char *key, const char *what, bool required,
                     const char **out)
{
    const json_t *v = obj ? json_object_get(obj, key) : NULL;
    *out = NULL;
    if (!v || json_is_null(v)) {
        if (required)
            errbuf_set(p->err, p->errlen, "%s is missing", what);
        return !required;
    }
    if (!json_is_string(v)) {
        errbuf_set(p->err, p->errlen, "%s must be a string", what);
        return false;
    }
    if (!plain_string(v)) {
        errbuf_set(p->err, p->errlen, "%s contains a NUL byte", what);
        return false;
    }
    *out = json_string_value(v);
    return true;
}

/* The object member key of obj: *out is NULL when absent or null; other types are refused. */
static bool get_object(parse *p, const json_t *obj, const char *key, const char *what, json_t **out)
{
    json_t *v = obj ? json_object_get(obj, key) : NULL;
    *out = NULL;
    if (!v || json_is_null(v))
        return true;
    if (!json_is_object(v)) {
        errbuf_set(p->err, p->errlen, "%s must be an object or null", what);
        return false;
    }
    *out = v;
    return true;
}

/* Add every name/value of the object of strings member key (absent or null: none). */
static bool add_single(parse *p, table *t, const json_t *ev, const char *key)
{
    json_t *obj;
    if (!get_object(p, ev, key, key, &obj))
        return false;
    if (!obj)
        return true;
    const char *name;
    json_t *v;
    json_object_foreach(obj, name, v)
    {
        if (!json_is_string(v)) {
            errbuf_set(p->err, p->errlen, "%s.%.*s must be a string", key, utf8_prec(name, 64),
                       name);
            return false;
        }
        if (!table_add(t, name, strlen(name), json_string_value(v), json_string_length(v)))
            return oom(p);
    }
    return true;
}

/*
 * Add the first value (or the last) of every list in the object of string lists member
 * key (absent or null: none; an empty list adds nothing).
 */
static bool add_multi(parse *p, table *t, const json_t *ev, const char *key, bool last)
{
    json_t *obj;
    if (!get_object(p, ev, key, key, &obj))
        return false;
    if (!obj)
        return true;
    const char *name;
    json_t *list;
    json_object_foreach(obj, name, list)
    {
        if (json_is_null(list))
            continue;
        bool strings = json_is_array(list);
        for (size_t i = 0; strings && i < json_array_size(list); i++)
            strings = json_is_string(json_array_get(list, i));
        if (!strings) {
            errbuf_set(p->err, p->errlen, "%s.%.*s must be a list of strings", key,
                       utf8_prec(name, 64), name);
            return false;
        }
        size_t n = json_array_size(list);
        if (n == 0)
            continue;
        json_t *v = json_array_get(list, last ? n - 1 : 0);
        if (!table_add(t, name, strlen(name), json_string_value(v), json_string_length(v)))
            return oom(p);
    }
    return true;
}

/* Split a raw query string as the local server does (http_query_split(); apigw.h) into t. */
static bool add_raw_query(parse *p, table *t, const char *raw)
{
    size_t max = 1;
    for (const char *c = raw; *c; c++)
        max += *c == '&';
    char *copy = strdup(raw);
    http_field *args = malloc(max * sizeof *args);
    bool ok = copy && args;
    size_t n = ok ? http_query_split(copy, args, max) : 0;
    for (size_t i = 0; ok && i < n; i++)
        ok = table_add(t, args[i].name, strlen(args[i].name), args[i].value, strlen(args[i].value));
    free(args);
    free(copy);
    return ok || oom(p);
}

/* 2.0: the cookies list as one "cookie" header, joined with "; ". */
static bool add_cookies(parse *p, table *t, const json_t *ev)
{
    const json_t *list = json_object_get(ev, "cookies");
    if (!list || json_is_null(list))
        return true;
    if (!json_is_array(list)) {
        errbuf_set(p->err, p->errlen, "cookies must be a list of strings");
        return false;
    }
    if (json_array_size(list) == 0)
        return true;
    sbuf b = {0};
    for (size_t i = 0; i < json_array_size(list); i++) {
        const json_t *c = json_array_get(list, i);
        if (!json_is_string(c) || !plain_string(c)) {
            sbuf_free(&b);
            errbuf_set(p->err, p->errlen, "cookies must be a list of strings without NUL bytes");
            return false;
        }
        if (i)
            sbuf_append(&b, "; ", 2);
        sbuf_append(&b, json_string_value(c), json_string_length(c));
    }
    bool ok = !sbuf_failed(&b) && table_add(t, "cookie", 6, b.data ? b.data : "", b.len);
    sbuf_free(&b);
    return ok || oom(p);
}

/*
 * path without a leading "/<stage>" segment (see apigw.h); stage may be NULL.
 * *cut (cut may be NULL) is the length of what was removed (0: nothing).
 */
static const char *strip_stage(const char *path, const char *stage, size_t *cut)
{
    size_t n = stage ? strlen(stage) : 0;
    bool strip = n > 0 && path[0] == '/' && strncmp(path + 1, stage, n) == 0 &&
                 (path[n + 1] == '\0' || path[n + 1] == '/');
    if (cut)
        *cut = strip ? n + 1 : 0;
    if (!strip)
        return path;
    return path[n + 1] == '\0' ? "/" : path + n + 1;
}

/* A byte a path segment holds unencoded (RFC 3986 pchar, less '%'). */
static bool segment_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("-._~!$&'()*+,;=:@", c));
}

/*
 * Whether the len bytes of s can go before a Location: empty, or "/" and
 * segments of segment_char()s, none empty, "." or "..". So it can never
 * break a header, name another host ("//host") or climb out of the API.
 */
static bool safe_prefix(const char *s, size_t len)
{
    if (len == 0)
        return true;
    if (s[0] != '/')
        return false;
    size_t start = 1;
    for (size_t i = 1; i <= len; i++) {
        if (i < len && s[i] != '/') {
            if (!segment_char((unsigned char)s[i]))
                return false;
            continue;
        }
        size_t seg = i - start;
        if (seg == 0 || (seg == 1 && s[start] == '.') ||
            (seg == 2 && s[start] == '.' && s[start + 1] == '.'))
            return false;
        start = i + 1;
    }
    return true;
}

/* Keep the len bytes of s as the public prefix when safe_prefix(), else none. */
static bool set_prefix(parse *p, struct apigw_data *d, const char *s, size_t len)
{
    if (!safe_prefix(s, len))
        len = 0;
    d->prefix = strndup(s, len);
    return d->prefix || oom(p);
}

/* The body, base64-decoded when isBase64Encoded is true; always a fresh, terminated copy. */
static bool read_body(parse *p, const json_t *ev, struct apigw_data *d)
{
    const json_t *body = json_object_get(ev, "body");
    const json_t *b64 = json_object_get(ev, "isBase64Encoded");
    if (body && !json_is_null(body) && !json_is_string(body)) {
        errbuf_set(p->err, p->errlen, "body must be a string or null");
        return false;
    }
    if (b64 && !json_is_null(b64) && !json_is_boolean(b64)) {
        errbuf_set(p->err, p->errlen, "isBase64Encoded must be a boolean");
        return false;
    }
    const char *s = json_is_string(body) ? json_string_value(body) : "";
    size_t len = json_is_string(body) ? json_string_length(body) : 0;
    if (json_is_true(b64)) {
        d->body = malloc(len / 4 * 3 + 3);
        if (!d->body)
            return oom(p);
        if (!b64_decode(s, len, d->body, &d->body_len)) {
            errbuf_set(p->err, p->errlen, "body is not valid base64");
            return false;
        }
    } else {
        d->body = malloc(len + 1);
        if (!d->body)
            return oom(p);
        memcpy(d->body, s, len);
        d->body_len = len;
    }
    d->body[d->body_len] = '\0';
    return true;
}

/* Copy the method; it must not be empty. */
static bool set_method(parse *p, struct apigw_data *d, const char *method, const char *what)
{
    if (!*method) {
        errbuf_set(p->err, p->errlen, "%s is empty", what);
        return false;
    }
    d->method = strdup(method);
    return d->method || oom(p);
}

/*
 * 1.0: the public prefix is what requestContext.path (the path the client
 * asked for: "/dev/tasks/" on the execute-api host, "/tasks/" or
 * "/<base path>/tasks/" on a custom domain) holds before the API's path.
 * None when requestContext.path is absent or does not end with that path (one
 * that is percent-encoded where path is decoded, say): a Location then goes
 * without a prefix, never with a wrong one.
 */
static bool v1_prefix(parse *p, const json_t *rc, struct apigw_data *d)
{
    const json_t *full = rc ? json_object_get(rc, "path") : NULL;
    if (!full || json_is_null(full))
        return set_prefix(p, d, "", 0);
    if (!json_is_string(full)) {
        errbuf_set(p->err, p->errlen, "requestContext.path must be a string");
        return false;
    }
    char *escaped = nul_escaped_dup(full);
    if (!escaped)
        return oom(p);
    size_t len = strlen(escaped), tail = strlen(d->path);
    bool root = strcmp(d->path, "/") == 0; /* "/dev" as well as "/dev/" */
    size_t head = 0;
    if (len >= tail && strcmp(escaped + len - tail, d->path) == 0)
        head = len - tail;
    else if (root && len > 0 && escaped[len - 1] != '/')
        head = len;
    bool ok = set_prefix(p, d, escaped, head);
    free(escaped);
    return ok;
}

/* Payload 1.0 (REST API proxy integration). */
static bool parse_v1(parse *p, const json_t *ev, const json_t *rc, struct apigw_data *d)
{
    const char *method, *stage;
    const json_t *path = json_object_get(ev, "path"); /* decoded: a NUL is possible */
    if (!get_text(p, ev, "httpMethod", "httpMethod", true, &method) ||
        !set_method(p, d, method, "httpMethod") ||
        !get_text(p, rc, "stage", "requestContext.stage", false, &stage))
        return false;
    if (!json_is_string(path) || json_string_value(path)[0] != '/') {
        errbuf_set(p->err, p->errlen, "path must be a string that starts with '/'");
        return false;
    }
    char *escaped = nul_escaped_dup(path);
    if (!escaped)
        return oom(p);
    d->path = strdup(strip_stage(escaped, stage, NULL)); /* 1.0: requestContext.path has it */
    free(escaped);
    if (!d->path)
        return oom(p);
    if (!v1_prefix(p, rc, d))
        return false;
    /* the multi-value maps win: a header is found first added, a query parameter last added */
    return add_multi(p, &d->headers, ev, "multiValueHeaders", false) &&
           add_single(p, &d->headers, ev, "headers") &&
           add_single(p, &d->query, ev, "queryStringParameters") &&
           add_multi(p, &d->query, ev, "multiValueQueryStringParameters", true);
}

/* Payload 2.0 (HTTP API). */
static bool parse_v2(parse *p, const json_t *ev, const json_t *rc, struct apigw_data *d)
{
    json_t *http;
    if (!get_object(p, rc, "http", "requestContext.http", &http))
        return false;
    if (!http) {
        errbuf_set(p->err, p->errlen, "requestContext.http is missing");
        return false;
    }
    const char *method, *path, *stage, *raw_query;
    if (!get_text(p, http, "method", "requestContext.http.method", true, &method) ||
        !set_method(p, d, method, "requestContext.http.method") ||
        !get_text(p, ev, "rawPath", "rawPath", false, &path) ||
        (!path && !get_text(p, http, "path", "rawPath", true, &path)) ||
        !get_text(p, rc, "stage", "requestContext.stage", false, &stage) ||
        !get_text(p, ev, "rawQueryString", "rawQueryString", false, &raw_query))
        return false;
    if (path[0] != '/') {
        errbuf_set(p->err, p->errlen, "rawPath must start with '/'");
        return false;
    }
    if (stage && strcmp(stage, "$default") == 0)
        stage = NULL;
    size_t cut;
    d->path = strdup(strip_stage(path, stage, &cut));
    if (!d->path)
        return oom(p);
    /* 2.0: the "/<stage>" taken off rawPath, as sent (never "$default") */
    if (!set_prefix(p, d, path, cut))
        return false;
    url_unescape_in_place(d->path);
    if (!add_cookies(p, &d->headers, ev) || !add_single(p, &d->headers, ev, "headers"))
        return false;
    return raw_query ? add_raw_query(p, &d->query, raw_query)
                     : add_single(p, &d->query, ev, "queryStringParameters");
}

/* Tell the payloads apart, then read the parts common to both. */
static bool parse_event(parse *p, const json_t *ev, struct apigw_data *d, int *version)
{
    json_t *rc;
    if (!get_object(p, ev, "requestContext", "requestContext", &rc))
        return false;
    const json_t *ver = json_object_get(ev, "version");
    bool v2 = (json_is_string(ver) && strcmp(json_string_value(ver), "2.0") == 0) ||
              (rc && json_object_get(rc, "http"));
    if (!v2 && !json_object_get(ev, "httpMethod")) {
        errbuf_set(p->err, p->errlen,
                   "not an API Gateway proxy event (no httpMethod, no requestContext.http)");
        return false;
    }
    *version = v2 ? 2 : 1;
    const char *id;
    if (!(v2 ? parse_v2(p, ev, rc, d) : parse_v1(p, ev, rc, d)) ||
        !get_text(p, rc, "requestId", "requestContext.requestId", false, &id) ||
        !read_body(p, ev, d))
        return false;
    if (id && !(d->request_id = strdup(id)))
        return oom(p);
    return true;
}

/*
 * A copy of the JSON text event (len bytes) whose object member names spell each \u0000 as
 * %00, into *out (malloc'ed, *outlen bytes); false when out of memory. API Gateway decodes a
 * REST API's query string, so a parameter named %00 reaches the event as a name holding NUL,
 * which jansson refuses in a member name even with JSON_ALLOW_NUL; locally that name stays %00
 * and matches no parameter, and so it does here. Strings are scanned as JSON has them (a
 * backslash escapes the next character); a string is a name when a colon follows it.
 */
static bool names_without_nul(const char *event, size_t len, char **out, size_t *outlen)
{
    char *copy = malloc(len + 1);
    if (!copy)
        return false;
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        if (event[i] != '"') {
            copy[n++] = event[i++];
            continue;
        }
        size_t end = i + 1; /* the closing quote */
        while (end < len && event[end] != '"')
            end += event[end] == '\\' ? 2 : 1;
        size_t after = end + 1;
        while (after < len && (event[after] == ' ' || event[after] == '\t' ||
                               event[after] == '\r' || event[after] == '\n'))
            after++;
        bool name = end < len && after < len && event[after] == ':';
        for (size_t k = i; k <= end && k < len;) {
            if (name && k + 6 <= end && memcmp(event + k, "\\u0000", 6) == 0) {
                memcpy(copy + n, "%00", 3);
                n += 3;
                k += 6;
            } else if (event[k] == '\\' && k + 1 < len && k + 1 <= end) {
                copy[n++] = event[k++];
                copy[n++] = event[k++];
            } else {
                copy[n++] = event[k++];
            }
        }
        i = end + 1;
    }
    copy[n] = '\0';
    *out = copy;
    *outlen = n;
    return true;
}

/* apigw_request_parse(), its reason and whether it failed for want of memory in p. */
static bool parse_request(parse *p, const char *event, size_t len, apigw_request *out)
{
    if (!event) {
        errbuf_set(p->err, p->errlen, "no event");
        return false;
    }
    json_error_t jerr;
    json_t *root = json_parse(event, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr, &p->nomem);
    if (!root && !p->nomem && json_error_code(&jerr) == json_error_null_byte_in_key) {
        char *spelled;
        size_t spelled_len;
        if (!names_without_nul(event, len, &spelled, &spelled_len))
            return oom(p);
        root = json_parse(spelled, spelled_len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr, &p->nomem);
        free(spelled);
    }
    if (!root && p->nomem)
        return oom(p);
    if (!root) {
        errbuf_set(p->err, p->errlen, "event is not valid JSON: %s (line %d, column %d)", jerr.text,
                   jerr.line, jerr.column);
        errbuf_one_line(p->err, p->errlen); /* jansson quotes the text near the error */
        return false;
    }
    struct apigw_data *d = NULL;
    int version = 0;
    bool ok;
    if (!json_is_object(root)) {
        errbuf_set(p->err, p->errlen, "event is not a JSON object");
        ok = false;
    } else if (!(d = calloc(1, sizeof *d))) {
        ok = oom(p);
    } else {
        ok = parse_event(p, root, d, &version);
    }
    json_decref(root);
    if (!ok) {
        errbuf_one_line(p->err, p->errlen); /* member names are quoted as decoded */
        data_free(d);
        return false;
    }
    out->data = d;
    out->version = version;
    out->request_id = d->request_id ? d->request_id : "";
    out->req = (api_request){
        .method = d->method,
        .path = d->path,
        .query = lookup_query,
        .header = lookup_header,
        .ctx = d,
        .body = d->body,
        .body_len = d->body_len,
    };
    return true;
}

bool apigw_request_parse(const char *event, size_t len, apigw_request *out, char *err,
                         size_t errlen, bool *nomem)
{
    *out = (apigw_request){0};
    parse p = {err, errlen, false};
    bool ok = parse_request(&p, event, len, out);
    if (nomem)
        *nomem = p.nomem;
    return ok;
}

void apigw_request_free(apigw_request *r)
{
    if (!r)
        return;
    data_free(r->data);
    *r = (apigw_request){0};
}

/* ---- the response ---- */

/* Well-formed UTF-8 with no NUL byte. */
static bool is_text(const unsigned char *s, size_t len)
{
    return !memchr(s, '\0', len) && utf8_valid((const char *)s, len);
}

/* Append len bytes as standard, padded base64. */
static void b64_append(sbuf *b, const unsigned char *s, size_t len)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char chunk[1024]; /* 256 groups of 4 */
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        size_t rest = len - i;
        uint32_t v = (uint32_t)s[i] << 16;
        if (rest > 1)
            v |= (uint32_t)s[i + 1] << 8;
        if (rest > 2)
            v |= s[i + 2];
        chunk[o++] = alphabet[v >> 18 & 63];
        chunk[o++] = alphabet[v >> 12 & 63];
        chunk[o++] = rest > 1 ? alphabet[v >> 6 & 63] : '=';
        chunk[o++] = rest > 2 ? alphabet[v & 63] : '=';
        if (o == sizeof chunk) {
            sbuf_append(b, chunk, o);
            o = 0;
        }
    }
    sbuf_append(b, chunk, o);
}

/*
 * Append "name": "value" to the headers object, with a comma after the
 * first; prefix (may be NULL) goes before the value.
 */
static void put_header(sbuf *b, int *count, const char *name, const char *prefix, const char *value)
{
    if ((*count)++)
        sbuf_putc(b, ',');
    sbuf_json_str(b, name);
    sbuf_putc(b, ':');
    if (!prefix || !*prefix) {
        sbuf_json_str(b, value);
        return;
    }
    sbuf joined = {0};
    sbuf_puts(&joined, prefix);
    sbuf_puts(&joined, value);
    if (sbuf_failed(&joined))
        b->failed = true;
    else
        sbuf_json_strn(b, joined.data, joined.len);
    sbuf_free(&joined);
}

char *apigw_response_json(const apigw_request *r, const api_response *resp, size_t *len)
{
    bool head = r && r->req.method && strcmp(r->req.method, "HEAD") == 0;
    bool bodiless = resp->status == 204 || resp->status == 304;
    sbuf b = {0};
    sbuf_printf(&b, "{\"statusCode\":%d,\"headers\":{", resp->status);
    const char *names[API_MAX_HEADERS + 1];
    int count = 0;
    if (resp->content_type && !bodiless) {
        names[count] = "Content-Type";
        put_header(&b, &count, "Content-Type", NULL, resp->content_type);
    }
    int n = resp->n_headers < 0 ? 0 : resp->n_headers;
    for (int i = 0; i < n && i < API_MAX_HEADERS; i++) {
        const api_header *h = &resp->headers[i];
        size_t vlen = strnlen(h->value, sizeof h->value);
        if (!h->name || vlen == sizeof h->value ||
            !is_text((const unsigned char *)h->name, strlen(h->name)) ||
            !is_text((const unsigned char *)h->value, vlen))
            continue;
        bool seen = false;
        for (int k = 0; k < count && !seen; k++)
            seen = strcasecmp(names[k], h->name) == 0;
        if (seen)
            continue;
        /* a path the API answers with is below the API's public prefix */
        bool below = r && r->data && strcasecmp(h->name, "Location") == 0 && h->value[0] == '/';
        names[count] = h->name;
        put_header(&b, &count, h->name, below ? r->data->prefix : NULL, h->value);
    }
    for (int i = 0; i < API_DEFAULT_HEADERS; i++)
        if (!api_has_header(resp, API_DEFAULT_HEADER[i].name))
            put_header(&b, &count, API_DEFAULT_HEADER[i].name, NULL, API_DEFAULT_HEADER[i].value);
    sbuf_puts(&b, "},\"body\":");
    const char *text = resp->body ? resp->body : api_bodiless_text(resp);
    const unsigned char *body = (const unsigned char *)text;
    size_t body_len = head || bodiless ? 0 : resp->body ? resp->body_len : strlen(text);
    if (is_text(body, body_len)) {
        sbuf_json_strn(&b, (const char *)body, body_len);
        sbuf_puts(&b, ",\"isBase64Encoded\":false}");
    } else {
        sbuf_putc(&b, '"');
        b64_append(&b, body, body_len);
        sbuf_puts(&b, "\",\"isBase64Encoded\":true}");
    }
    if (sbuf_failed(&b)) {
        sbuf_free(&b);
        return NULL;
    }
    return sbuf_take(&b, len);
}
