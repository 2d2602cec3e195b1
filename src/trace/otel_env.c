/*
 * otel_env — OTEL_* environment variables to exporter settings; see otel_env.h.
 *
 * Everything is read through the caller's getenv callback and every problem short of an
 * unusable endpoint becomes a warning string in the result, so the whole module is a pure
 * function of its inputs. Lists ("k=v,k=v") are parsed by one splitter shared by the headers
 * and the resource attributes; they differ in what an error costs (one entry vs the whole
 * variable), and in that the resource's strings, which go into protobuf strings, are made UTF-8.
 */
#include "otel_env.h"

#include "core/errbuf.h"
#include "core/http_head.h"
#include "core/sbuf.h"
#include "core/urlcode.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_TIMEOUT_MS 86400000L

/* ---- small helpers ---- */

static void warn(otel_config *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn(otel_config *c, const char *fmt, ...)
{
    if (c->n_warnings >= OTEL_MAX_WARNINGS)
        return;
    va_list ap;
    va_start(ap, fmt);
    errbuf_vset(c->warnings[c->n_warnings++], OTEL_WARNING_MAX, fmt, ap);
    va_end(ap);
}

/* The variable's value, NULL when unset or empty (the spec treats both alike). */
static const char *env(otel_getenv_fn get, void *ctx, const char *name)
{
    const char *v = get(name, ctx);
    return v && *v ? v : NULL;
}

/* The first of two variables that is set. */
static const char *env2(otel_getenv_fn get, void *ctx, const char *specific, const char *generic,
                        const char **which)
{
    const char *v = env(get, ctx, specific);
    *which = specific;
    if (!v) {
        v = env(get, ctx, generic);
        *which = generic;
    }
    return v;
}

static bool is_ows(char ch)
{
    return ch == ' ' || ch == '\t';
}

/* Trim spaces and tabs from both ends of [*s, *s + *len). */
static void trim(const char **s, size_t *len)
{
    while (*len > 0 && is_ows(**s)) {
        (*s)++;
        (*len)--;
    }
    while (*len > 0 && is_ows((*s)[*len - 1]))
        (*len)--;
}

typedef enum decode_status { DECODE_OK, DECODE_BAD, DECODE_NOMEM } decode_status;

static decode_status decode(const char *s, size_t len, char **out)
{
    *out = NULL;
    char *d = malloc(len + 1);
    if (!d)
        return DECODE_NOMEM;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (ch == '%') {
            if (len - i < 3 || hex_value(s[i + 1]) < 0 || hex_value(s[i + 2]) < 0) {
                free(d);
                return DECODE_BAD;
            }
            ch = (char)(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
            i += 2;
            if (ch == '\0') {
                free(d);
                return DECODE_BAD;
            }
        }
        d[n++] = ch;
    }
    d[n] = '\0';
    *out = d;
    return DECODE_OK;
}

char *otel_percent_decode(const char *s, size_t len)
{
    char *out;
    decode(s, len, &out);
    return out;
}

/* Replace *s by its copy as well-formed UTF-8 (utf8_dup); false when out of memory. */
static bool to_utf8(char **s)
{
    char *clean = utf8_dup(*s);
    if (!clean)
        return false;
    free(*s);
    *s = clean;
    return true;
}

/* ---- key/value lists ---- */

typedef struct kv_list {
    size_t n, cap;
    char **keys;
    char **values;
} kv_list;

static void kv_free(kv_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->keys[i]);
        free(l->values[i]);
    }
    free(l->keys);
    free(l->values);
    memset(l, 0, sizeof *l);
}

/* Add or replace (a repeated key keeps its last value, in its first position); takes k and v. */
static bool kv_put(kv_list *l, char *k, char *v)
{
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->keys[i], k) == 0) {
            free(k);
            free(l->values[i]);
            l->values[i] = v;
            return true;
        }
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 4;
        char **keys = realloc(l->keys, cap * sizeof *keys);
        if (keys)
            l->keys = keys;
        char **values = keys ? realloc(l->values, cap * sizeof *values) : NULL;
        if (values)
            l->values = values;
        if (!keys || !values) {
            free(k);
            free(v);
            return false;
        }
        l->cap = cap;
    }
    l->keys[l->n] = k;
    l->values[l->n] = v;
    l->n++;
    return true;
}

/* Remove key from l, returning its value (owned by the caller) or NULL. */
static char *kv_take(kv_list *l, const char *key)
{
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->keys[i], key) != 0)
            continue;
        char *v = l->values[i];
        free(l->keys[i]);
        memmove(&l->keys[i], &l->keys[i + 1], (l->n - i - 1) * sizeof *l->keys);
        memmove(&l->values[i], &l->values[i + 1], (l->n - i - 1) * sizeof *l->values);
        l->n--;
        return v;
    }
    return NULL;
}

typedef enum entry_status { ENTRY_OK, ENTRY_BAD, ENTRY_NOMEM } entry_status;

/* Checks a decoded header entry: a reason when it is unusable, else NULL. */
typedef const char *(*entry_check_fn)(const char *key, const char *value);

/*
 * Parse "k=v,k=v" into l. Each bad entry is reported through warn with the variable's name;
 * with strict set the first bad entry ends the parse with ENTRY_BAD (the caller discards l).
 * With utf8 set, each decoded key and value is made well-formed UTF-8 before it is put (so keys
 * that differ only in such bytes are one key).
 */
static entry_status parse_list(otel_config *c, const char *var, const char *text, bool strict,
                               bool utf8, entry_check_fn check, kv_list *l)
{
    const char *p = text;
    for (int index = 1;; index++) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        const char *item = p;
        trim(&item, &len);
        if (len > 0) {
            const char *eq = memchr(item, '=', len);
            const char *reason = NULL;
            char *k = NULL, *v = NULL;
            if (!eq) {
                reason = "no '='";
            } else {
                const char *ks = item, *vs = eq + 1;
                size_t klen = (size_t)(eq - item), vlen = len - klen - 1;
                trim(&ks, &klen);
                trim(&vs, &vlen);
                if (klen == 0) {
                    reason = "empty key";
                } else {
                    decode_status ds = decode(ks, klen, &k);
                    if (ds == DECODE_OK)
                        ds = decode(vs, vlen, &v);
                    if (ds == DECODE_OK && utf8 && (!to_utf8(&k) || !to_utf8(&v)))
                        ds = DECODE_NOMEM;
                    if (ds == DECODE_NOMEM) {
                        free(k);
                        free(v);
                        return ENTRY_NOMEM;
                    }
                    if (ds == DECODE_BAD) {
                        reason = "bad percent-encoding";
                    } else if (check) {
                        reason = check(k, v);
                    }
                }
            }
            if (reason) {
                free(k);
                free(v);
                if (strict)
                    warn(c, "%s: entry %d: %s; the whole variable is discarded", var, index,
                         reason);
                else
                    warn(c, "%s: entry %d ignored (%s)", var, index, reason);
                if (strict)
                    return ENTRY_BAD;
            } else if (!kv_put(l, k, v)) {
                return ENTRY_NOMEM;
            }
        }
        if (!comma)
            break;
        p = comma + 1;
    }
    return ENTRY_OK;
}

/* A header a request may carry (a server may answer 400 to a request with any other, and every
 * export would fail): a token for the name, no control character but a tab in the value; and
 * not one of those the exporter sets itself. */
static const char *check_header(const char *key, const char *value)
{
    for (const char *c = key; *c; c++)
        if (!http_is_tchar((unsigned char)*c))
            return "invalid header name";
    for (const char *c = value; *c; c++)
        if (http_is_control((unsigned char)*c))
            return "invalid header value";
    if (strcasecmp(key, "content-type") == 0)
        return "Content-Type is set by the exporter";
    if (strcasecmp(key, "content-encoding") == 0)
        return "Content-Encoding is set by the exporter (see OTEL_EXPORTER_OTLP_COMPRESSION)";
    return NULL;
}

/* ---- endpoint ---- */

static bool has_http_scheme(const char *url)
{
    return strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0;
}

/* url as-is, except that an empty path becomes "/" (before any query or fragment). */
static char *traces_url_as_is(const char *url)
{
    const char *auth = strstr(url, "://") + 3;
    size_t hostlen = strcspn(auth, "/?#");
    if (auth[hostlen] == '/')
        return strdup(url);
    size_t pre = (size_t)(auth - url) + hostlen, len = strlen(url);
    char *out = malloc(len + 2);
    if (!out)
        return NULL;
    memcpy(out, url, pre);
    out[pre] = '/';
    memcpy(out + pre + 1, url + pre, len - pre + 1);
    return out;
}

/* base with "/v1/traces" appended to its path, after that path's trailing slashes: a query
 * or a fragment the base has stays after it, as OTLP appends the signal's path to the base URL's
 * path, not to its text. */
static char *traces_url_from_base(const char *base)
{
    const char *auth = strstr(base, "://") + 3;
    size_t end = (size_t)(auth - base) + strcspn(auth, "?#"); /* the path's end */
    size_t len = end;
    while (len > (size_t)(auth - base) && base[len - 1] == '/')
        len--;
    static const char suffix[] = "/v1/traces";
    size_t rest = strlen(base + end);
    char *out = malloc(len + sizeof suffix - 1 + rest + 1);
    if (!out)
        return NULL;
    memcpy(out, base, len);
    memcpy(out + len, suffix, sizeof suffix - 1);
    memcpy(out + len + sizeof suffix - 1, base + end, rest + 1);
    return out;
}

/* ---- the load ---- */

static bool parse_timeout(otel_config *c, const char *var, const char *text)
{
    errno = 0;
    char *end = NULL;
    long v = strtol(text, &end, 10);
    while (end && is_ows(*end))
        end++;
    if (errno || end == text || *end || v < 1 || v > MAX_TIMEOUT_MS) {
        warn(c, "%s: \"%.*s\" is not a timeout in milliseconds (1..%ld); using %ld", var,
             utf8_prec(text, 40), text, MAX_TIMEOUT_MS, OTEL_DEFAULT_TIMEOUT_MS);
        return false;
    }
    c->timeout_ms = v;
    return true;
}

static void parse_protocol(otel_config *c, const char *var, const char *text)
{
    if (strcmp(text, "http/protobuf") == 0) {
        c->protocol = OTEL_PROTOCOL_HTTP_PROTOBUF;
    } else if (strcmp(text, "http/json") == 0) {
        c->protocol = OTEL_PROTOCOL_HTTP_JSON;
    } else if (strcmp(text, "grpc") == 0) {
        warn(c, "%s: grpc is not supported by this exporter; using http/protobuf", var);
        c->protocol = OTEL_PROTOCOL_HTTP_PROTOBUF;
    } else {
        warn(c, "%s: unknown protocol \"%.*s\"; using http/protobuf", var, utf8_prec(text, 40),
             text);
        c->protocol = OTEL_PROTOCOL_HTTP_PROTOBUF;
    }
}

bool otel_config_load(otel_config *c, otel_getenv_fn get, void *ctx, const char *default_service,
                      char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    c->protocol = OTEL_PROTOCOL_HTTP_PROTOBUF;
    c->timeout_ms = OTEL_DEFAULT_TIMEOUT_MS;
    kv_list headers = {0}, attrs = {0};
    char *attr_service = NULL;
    const char *which;
    const char *v;

    if ((v = env(get, ctx, "OTEL_SDK_DISABLED"))) {
        if (strcasecmp(v, "true") == 0)
            c->disabled = true;
        else if (strcasecmp(v, "false") != 0)
            warn(c, "OTEL_SDK_DISABLED: \"%.*s\" is neither true nor false; ignored",
                 utf8_prec(v, 40), v);
    }

    if ((v = env(get, ctx, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))) {
        if (!has_http_scheme(v)) {
            errbuf_set(err, errlen, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: not an http(s) URL: %.*s",
                       utf8_prec(v, 100), v);
            goto failed;
        }
        if (!(c->endpoint = traces_url_as_is(v)))
            goto nomem;
    } else if ((v = env(get, ctx, "OTEL_EXPORTER_OTLP_ENDPOINT"))) {
        if (!has_http_scheme(v)) {
            errbuf_set(err, errlen, "OTEL_EXPORTER_OTLP_ENDPOINT: not an http(s) URL: %.*s",
                       utf8_prec(v, 100), v);
            goto failed;
        }
        if (!(c->endpoint = traces_url_from_base(v)))
            goto nomem;
    }

    if ((v = env2(get, ctx, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL",
                  &which)))
        parse_protocol(c, which, v);
    if ((v = env2(get, ctx, "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT",
                  &which)))
        parse_timeout(c, which, v);
    if ((v = env2(get, ctx, "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
                  "OTEL_EXPORTER_OTLP_COMPRESSION", &which))) {
        if (strcmp(v, "gzip") == 0)
            c->compression = OTEL_COMPRESSION_GZIP;
        else if (strcmp(v, "none") != 0)
            warn(c, "%s: unknown compression \"%.*s\"; sending uncompressed", which,
                 utf8_prec(v, 40), v);
    }
    if ((v = env2(get, ctx, "OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS",
                  &which))) {
        if (parse_list(c, which, v, false, false, check_header, &headers) == ENTRY_NOMEM)
            goto nomem;
    }

    if ((v = env(get, ctx, "OTEL_RESOURCE_ATTRIBUTES"))) {
        entry_status st = parse_list(c, "OTEL_RESOURCE_ATTRIBUTES", v, true, true, NULL, &attrs);
        if (st == ENTRY_NOMEM)
            goto nomem;
        if (st == ENTRY_BAD)
            kv_free(&attrs);
    }
    attr_service = kv_take(&attrs, "service.name");
    c->service_version = kv_take(&attrs, "service.version");
    if ((v = env(get, ctx, "OTEL_SERVICE_NAME"))) {
        free(attr_service);
        c->service_name = utf8_dup(v);
    } else if (attr_service) {
        c->service_name = attr_service;
    } else {
        c->service_name = strdup(default_service ? default_service : "unknown_service");
    }
    if (!c->service_name)
        goto nomem;

    c->n_headers = headers.n;
    c->header_keys = headers.keys;
    c->header_values = headers.values;
    c->n_attrs = attrs.n;
    c->attr_keys = attrs.keys;
    c->attr_values = attrs.values;
    return true;

nomem:
    errbuf_set(err, errlen, "out of memory reading the OTEL_* environment");
failed:
    kv_free(&headers);
    kv_free(&attrs);
    otel_config_clear(c);
    return false;
}

void otel_config_clear(otel_config *c)
{
    kv_list headers = {c->n_headers, c->n_headers, c->header_keys, c->header_values};
    kv_list attrs = {c->n_attrs, c->n_attrs, c->attr_keys, c->attr_values};
    kv_free(&headers);
    kv_free(&attrs);
    free(c->endpoint);
    free(c->service_name);
    free(c->service_version);
    memset(c, 0, sizeof *c);
}

const char *otel_content_type(otel_protocol p)
{
    return p == OTEL_PROTOCOL_HTTP_JSON ? "application/json" : "application/x-protobuf";
}
