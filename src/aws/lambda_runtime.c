/*
 * lambda_runtime — Lambda Runtime API client over one reused libcurl handle
 * (see lambda_runtime.h for the protocol choices).
 *
 * Each request resets the handle's options (curl_easy_reset keeps the live
 * connection) and sets the common ones again: HTTP/1.1, no proxy, no
 * signals, TCP_NODELAY, a short connect timeout, and a total timeout of 0
 * for /next or the post timeout for the others. Posts send their body with
 * an explicit Content-Length and without "Expect: 100-continue" (which
 * libcurl would add for large bodies and which would cost a round trip).
 *
 * The /next body goes into a buffer sized from Content-Length when the
 * answer announces one (so a 6 MB event is one allocation), doubling
 * otherwise; on success the buffer is handed to the invocation as is. The
 * answers to posts are small: only their first REPLY_KEEP bytes are kept, to
 * quote the API's complaint in err, and a post whose answer cannot be kept
 * (out of memory) is still the post the API took. The /next headers are
 * parsed as they arrive into fixed fields; a status line starts the set
 * afresh, so an interim answer leaves nothing behind.
 */
#include "lambda_runtime.h"

#include "core/errbuf.h"
#include "core/sbuf.h"
#include "util/digits.h"

#include <curl/curl.h>
#include <jansson.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#ifndef TASKD_VERSION
#define TASKD_VERSION "0"
#endif

#define API_ENV            "AWS_LAMBDA_RUNTIME_API"
#define API_PREFIX         "/2018-06-01/runtime/"
#define USER_AGENT         "taskd/" TASKD_VERSION
#define DEFAULT_ERROR_TYPE "Runtime.UnknownReason"
#define ERROR_TYPE_HEADER  "Lambda-Runtime-Function-Error-Type: "
#define CONNECT_TIMEOUT_MS 1000L
#define API_MAX            255                /* longest accepted AWS_LAMBDA_RUNTIME_API */
#define PREALLOC_MAX       ((size_t)64 << 20) /* trust Content-Length up to this much */
#define REPLY_KEEP         1024               /* bytes of a post's answer kept */
#define QUOTE_MAX          200                /* bytes of an answer quoted in err */
#define URL_MAX            512                /* base (at most 283 bytes) + path + request id */

/* A growable byte buffer; oom is set when an allocation failed. */
typedef struct buf {
    char *data;
    size_t len;
    size_t cap;
    bool oom;
} buf;

/* The invocation headers of the answer being received. */
typedef struct next_headers {
    char request_id[sizeof(((lambda_invocation *)0)->request_id)];
    char function_arn[sizeof(((lambda_invocation *)0)->function_arn)];
    char trace_id[sizeof(((lambda_invocation *)0)->trace_id)];
    int64_t deadline_ms;
    bool have_request_id;
    const char *too_long; /* name of the first header whose value did not fit */
    size_t too_long_len;  /* its value's length */
    size_t too_long_max;  /* the longest value its field holds */
} next_headers;

struct lambda_runtime {
    CURL *curl;
    char *base; /* "http://host:port/2018-06-01/runtime/" */
    long post_timeout_ms;
    long last_status;
    buf body;         /* the answer's body */
    size_t body_keep; /* 0: keep it all; else keep at most this many bytes */
    next_headers hdr;
    char curl_err[CURL_ERROR_SIZE];
};

/* ---- buffer ---- */

/* Room for extra more bytes plus a terminator; false (and oom) when out of memory. */
static bool buf_reserve(buf *b, size_t extra)
{
    if (b->oom)
        return false;
    if (extra > SIZE_MAX - b->len - 1) {
        b->oom = true;
        return false;
    }
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = realloc(b->data, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

static bool buf_append(buf *b, const char *s, size_t len)
{
    if (!buf_reserve(b, len))
        return false;
    memcpy(b->data + b->len, s, len);
    b->len += len;
    b->data[b->len] = '\0';
    return true;
}

static void buf_free(buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

/* ---- validation ---- */

static bool is_alnum(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Is id safe as one URL path segment (see lambda_runtime.h)? */
static bool request_id_ok(const char *id)
{
    size_t n = strnlen(id, sizeof(((lambda_invocation *)0)->request_id));
    if (n == 0 || n >= sizeof(((lambda_invocation *)0)->request_id))
        return false;
    bool only_dots = true;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)id[i];
        if (!is_alnum(c) && c != '-' && c != '_' && c != '.')
            return false;
        if (c != '.')
            only_dots = false;
    }
    return !only_dots;
}

/* Is s "host:port" with a DNS name, IPv4 or [IPv6] host and a port in 1..65535? */
static bool api_address_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > API_MAX)
        return false;
    const char *colon = strrchr(s, ':');
    long port;
    if (!colon || colon == s || !digits_parse(colon + 1, strlen(colon + 1), 1, 65535, &port))
        return false;
    if (s[0] == '[') {
        if (colon[-1] != ']' || colon - s < 3)
            return false;
        for (const char *p = s + 1; p < colon - 1; p++) {
            unsigned char c = (unsigned char)*p;
            if (!is_alnum(c) && c != ':' && c != '.')
                return false;
        }
        return true;
    }
    for (const char *p = s; p < colon; p++) {
        unsigned char c = (unsigned char)*p;
        if (!is_alnum(c) && c != '.' && c != '-')
            return false;
    }
    return true;
}

/* Epoch ms from a header value of 1 to 18 digits; 0 when it is anything else. */
static int64_t parse_deadline(const char *v, size_t n)
{
    if (n == 0 || n > 18)
        return 0;
    int64_t ms = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return 0;
        ms = ms * 10 + (v[i] - '0');
    }
    return ms;
}

/* ---- libcurl callbacks ---- */

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
    lambda_runtime *rt = userdata;
    size_t n = size * nmemb;
    buf *b = &rt->body;
    if (rt->body_keep) {
        /* kept only to be quoted: out of memory, the rest goes unkept (b->oom), and the answer
         * is read to its end as the post's outcome */
        size_t room = b->len < rt->body_keep ? rt->body_keep - b->len : 0;
        if (room)
            (void)buf_append(b, data, n < room ? n : room);
        return n;
    }
    if (b->cap == 0) {
        curl_off_t announced = -1;
        if (curl_easy_getinfo(rt->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &announced) ==
                CURLE_OK &&
            announced > 0 && (size_t)announced <= PREALLOC_MAX &&
            !buf_reserve(b, (size_t)announced))
            return 0;
    }
    return buf_append(b, data, n) ? n : 0;
}

/* Copy a header value into field, or note that it did not fit. */
static void keep_header(next_headers *h, char *field, size_t size, const char *name, const char *v,
                        size_t n)
{
    if (n >= size) {
        if (!h->too_long) {
            h->too_long = name;
            h->too_long_len = n;
            h->too_long_max = size - 1;
        }
        return;
    }
    memcpy(field, v, n);
    field[n] = '\0';
}

/*
 * Keep an X-Ray trace header (Root=...;Parent=...;Sampled=...;Lineage=...) in field. One too
 * long for it keeps its Root, Parent and Sampled fields, which are all a trace needs: the
 * others (Lineage, and whatever X-Ray adds) may grow, and must not end the environment.
 */
static void keep_trace_header(next_headers *h, char *field, size_t size, const char *v, size_t n)
{
    if (n < size) {
        keep_header(h, field, size, "Lambda-Runtime-Trace-Id", v, n);
        return;
    }
    static const char *const kept[] = {"Root=", "Parent=", "Sampled="};
    size_t used = 0;
    for (const char *p = v, *end = v + n; p < end;) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *stop = semi ? semi : end;
        while (p < stop && str_is_ws(*p))
            p++;
        size_t len = (size_t)(stop - p);
        for (size_t k = 0; k < sizeof kept / sizeof kept[0]; k++) {
            size_t klen = strlen(kept[k]);
            if (len >= klen && strncasecmp(p, kept[k], klen) == 0 && used + len + 1 < size) {
                if (used)
                    field[used++] = ';';
                memcpy(field + used, p, len);
                used += len;
            }
        }
        p = stop + (semi != NULL);
    }
    field[used] = '\0';
}

static size_t on_header(char *data, size_t size, size_t nitems, void *userdata)
{
    lambda_runtime *rt = userdata;
    next_headers *h = &rt->hdr;
    size_t n = size * nitems;
    if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        memset(h, 0, sizeof *h);
        return n;
    }
    const char *colon = memchr(data, ':', n);
    if (!colon)
        return n;
    size_t name_len = (size_t)(colon - data);
    while (name_len > 0 && str_is_ws(data[name_len - 1]))
        name_len--;
    const char *v = colon + 1;
    size_t vlen = n - (size_t)(v - data);
    str_trim(&v, &vlen);

#define HEADER_IS(literal)                                                                         \
    (name_len == sizeof(literal) - 1 && strncasecmp(data, literal, name_len) == 0)
    if (HEADER_IS("Lambda-Runtime-Aws-Request-Id")) {
        keep_header(h, h->request_id, sizeof h->request_id, "Lambda-Runtime-Aws-Request-Id", v,
                    vlen);
        h->have_request_id = true;
    } else if (HEADER_IS("Lambda-Runtime-Deadline-Ms")) {
        h->deadline_ms = parse_deadline(v, vlen);
    } else if (HEADER_IS("Lambda-Runtime-Invoked-Function-Arn")) {
        /* nothing needs it: one too long for its field is left out, as if absent */
        if (vlen < sizeof h->function_arn)
            keep_header(h, h->function_arn, sizeof h->function_arn,
                        "Lambda-Runtime-Invoked-Function-Arn", v, vlen);
    } else if (HEADER_IS("Lambda-Runtime-Trace-Id")) {
        keep_trace_header(h, h->trace_id, sizeof h->trace_id, v, vlen);
    }
#undef HEADER_IS
    return n;
}

/* ---- requests ---- */

/* Reset the handle for one request to url with the given total timeout (0: none). */
static bool prepare(lambda_runtime *rt, const char *url, long timeout_ms, size_t body_keep)
{
    buf_free(&rt->body);
    rt->body_keep = body_keep;
    memset(&rt->hdr, 0, sizeof rt->hdr);
    rt->curl_err[0] = '\0';
    rt->last_status = 0;

    CURL *c = rt->curl;
    curl_easy_reset(c);
    bool ok = curl_easy_setopt(c, CURLOPT_URL, url) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_ERRORBUFFER, rt->curl_err) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_PROXY, "") == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_USERAGENT, USER_AGENT) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_WRITEDATA, rt) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_HEADERDATA, rt) == CURLE_OK;
    return ok;
}

/* Copy up to QUOTE_MAX bytes of s into out, printable ASCII only. */
static void quote(char *out, size_t outlen, const char *s, size_t n)
{
    size_t j = 0;
    for (size_t i = 0; i < n && i < QUOTE_MAX && j + 1 < outlen; i++) {
        unsigned char c = (unsigned char)s[i];
        out[j++] = c >= 0x20 && c < 0x7f ? (char)c : ' ';
    }
    out[j] = '\0';
}

/* Explain a non-2xx answer: status, its meaning, and the API's own words. */
static void explain_status(lambda_runtime *rt, const char *what, char *err, size_t errlen)
{
    long status = rt->last_status;
    const char *meaning = status == 413   ? " (payload too large)"
                          : status == 400 ? " (bad request)"
                          : status == 403 ? " (forbidden)"
                          : status == 500 ? " (runtime API failure: the runtime should exit)"
                                          : "";
    char said[QUOTE_MAX * 2 + 8] = "";
    if (rt->body.len > 0) {
        json_t *j = json_loadb(rt->body.data, rt->body.len, 0, NULL);
        const char *type = json_string_value(json_object_get(j, "errorType"));
        const char *msg = json_string_value(json_object_get(j, "errorMessage"));
        if (type || msg) {
            char t[QUOTE_MAX + 1], m[QUOTE_MAX + 1];
            quote(t, sizeof t, type ? type : "", type ? strlen(type) : 0);
            quote(m, sizeof m, msg ? msg : "", msg ? strlen(msg) : 0);
            snprintf(said, sizeof said, ": %s%s%s", t, type && msg ? ": " : "", m);
        } else {
            char q[QUOTE_MAX + 1];
            quote(q, sizeof q, rt->body.data, rt->body.len);
            snprintf(said, sizeof said, ": %s", q);
        }
        json_decref(j);
    }
    errbuf_set(err, errlen, "%s: HTTP %ld%s%s", what, status, meaning, said);
}

/* Run the prepared request; true on a 2xx answer, else false with err. */
static bool perform(lambda_runtime *rt, const char *what, char *err, size_t errlen)
{
    CURLcode rc = curl_easy_perform(rt->curl);
    long status = 0;
    if (curl_easy_getinfo(rt->curl, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK)
        status = 0;
    rt->last_status = status;
    if (rc != CURLE_OK) {
        if (rt->body.oom && !rt->body_keep)
            errbuf_set(err, errlen, "%s: out of memory", what);
        else
            errbuf_set(err, errlen, "%s: %s", what,
                       rt->curl_err[0] ? rt->curl_err : curl_easy_strerror(rc));
        return false;
    }
    if (status < 200 || status > 299) {
        explain_status(rt, what, err, errlen);
        return false;
    }
    return true;
}

/*
 * POST body to url with Content-Type application/json and, when error_type
 * is given, the error type header.
 */
static bool post(lambda_runtime *rt, const char *url, const char *what, const char *body,
                 size_t len, const char *error_type, char *err, size_t errlen)
{
    if (!prepare(rt, url, rt->post_timeout_ms, REPLY_KEEP)) {
        errbuf_set(err, errlen, "%s: cannot set up the request", what);
        return false;
    }
    char *type_header = NULL;
    if (error_type) {
        size_t prefix = strlen(ERROR_TYPE_HEADER), n = strlen(error_type);
        type_header = malloc(prefix + n + 1);
        if (!type_header) {
            errbuf_set(err, errlen, "%s: out of memory", what);
            return false;
        }
        memcpy(type_header, ERROR_TYPE_HEADER, prefix);
        /* A header line must not break: control bytes become spaces. */
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)error_type[i];
            type_header[prefix + i] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
        }
        type_header[prefix + n] = '\0';
    }

    static const char *const fixed[] = {"Content-Type: application/json",
                                        "Expect:", "Transfer-Encoding:"};
    struct curl_slist *headers = NULL;
    bool ok = true;
    for (size_t i = 0; ok && i < sizeof fixed / sizeof fixed[0]; i++) {
        struct curl_slist *h = curl_slist_append(headers, fixed[i]);
        ok = h != NULL;
        if (ok)
            headers = h;
    }
    if (ok && type_header) {
        struct curl_slist *h = curl_slist_append(headers, type_header);
        ok = h != NULL;
        if (ok)
            headers = h;
    }
    free(type_header);
    ok = ok && curl_easy_setopt(rt->curl, CURLOPT_HTTPHEADER, headers) == CURLE_OK &&
         curl_easy_setopt(rt->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len) == CURLE_OK &&
         curl_easy_setopt(rt->curl, CURLOPT_POSTFIELDS, body ? body : "") == CURLE_OK;
    if (!ok) {
        curl_slist_free_all(headers);
        errbuf_set(err, errlen, "%s: out of memory", what);
        return false;
    }
    ok = perform(rt, what, err, errlen);
    curl_easy_setopt(rt->curl, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(headers);
    buf_free(&rt->body);
    return ok;
}

/* ---- error bodies ---- */

/* s as a JSON string, each byte of an ill-formed UTF-8 sequence replaced by '?'. */
static json_t *json_text(const char *s)
{
    json_t *j = json_string(s);
    if (j)
        return j;
    size_t n = strlen(s);
    char *copy = malloc(n + 1);
    if (!copy)
        return NULL;
    utf8_copy_within(copy, n + 1, s);
    j = json_string(copy);
    free(copy);
    return j;
}

/* {"errorMessage": message, "errorType": type, "stackTrace": []}, malloc'ed; NULL when out of
 * memory. */
static char *error_body(const char *type, const char *message)
{
    json_t *o = json_object();
    bool ok = o && json_object_set_new(o, "errorMessage", json_text(message)) == 0 &&
              json_object_set_new(o, "errorType", json_text(type)) == 0 &&
              json_object_set_new(o, "stackTrace", json_array()) == 0;
    char *text = ok ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return text;
}

static bool post_error(lambda_runtime *rt, const char *url, const char *what,
                       const char *error_type, const char *message, char *err, size_t errlen)
{
    if (!error_type || !error_type[0])
        error_type = DEFAULT_ERROR_TYPE;
    char *body = error_body(error_type, message ? message : "");
    if (!body) {
        errbuf_set(err, errlen, "%s: out of memory", what);
        return false;
    }
    bool ok = post(rt, url, what, body, strlen(body), error_type, err, errlen);
    free(body);
    return ok;
}

/* The URL .../invocation/{id}/{leaf} in url; false with err when the id is unsafe. */
static bool invocation_url(lambda_runtime *rt, const lambda_invocation *inv, const char *leaf,
                           char *url, size_t urllen, const char *what, char *err, size_t errlen)
{
    rt->last_status = 0;
    if (!inv || !request_id_ok(inv->request_id)) {
        errbuf_set(err, errlen, "%s: refusing an unsafe or empty request id", what);
        return false;
    }
    int n = snprintf(url, urllen, "%sinvocation/%s/%s", rt->base, inv->request_id, leaf);
    if (n < 0 || (size_t)n >= urllen) {
        errbuf_set(err, errlen, "%s: URL too long", what);
        return false;
    }
    return true;
}

/* ---- public ---- */

lambda_runtime *lambda_runtime_new(char *err, size_t errlen)
{
    const char *api = getenv(API_ENV);
    if (!api || !api[0]) {
        errbuf_set(err, errlen, API_ENV " is not set (not running on Lambda?)");
        return NULL;
    }
    if (!api_address_ok(api)) {
        char q[QUOTE_MAX + 1];
        quote(q, sizeof q, api, strlen(api));
        errbuf_set(err, errlen, API_ENV " must be host:port, not \"%s\"", q);
        return NULL;
    }
    lambda_runtime *rt = calloc(1, sizeof *rt);
    size_t baselen = strlen("http://") + strlen(api) + strlen(API_PREFIX) + 1;
    if (rt)
        rt->base = malloc(baselen);
    if (rt && rt->base)
        rt->curl = curl_easy_init();
    if (!rt || !rt->base || !rt->curl) {
        lambda_runtime_free(rt);
        errbuf_set(err, errlen, "lambda runtime: out of memory");
        return NULL;
    }
    snprintf(rt->base, baselen, "http://%s" API_PREFIX, api);
    rt->post_timeout_ms = LAMBDA_POST_TIMEOUT_MS;
    return rt;
}

void lambda_runtime_free(lambda_runtime *rt)
{
    if (!rt)
        return;
    if (rt->curl)
        curl_easy_cleanup(rt->curl);
    buf_free(&rt->body);
    free(rt->base);
    free(rt);
}

void lambda_runtime_set_post_timeout(lambda_runtime *rt, long ms)
{
    if (rt && ms > 0)
        rt->post_timeout_ms = ms;
}

long lambda_runtime_last_status(const lambda_runtime *rt)
{
    return rt ? rt->last_status : 0;
}

bool lambda_runtime_next(lambda_runtime *rt, lambda_invocation *inv, char *err, size_t errlen)
{
    static const char what[] = "GET /next";
    memset(inv, 0, sizeof *inv);
    char url[URL_MAX];
    snprintf(url, sizeof url, "%sinvocation/next", rt->base);
    bool ok =
        prepare(rt, url, 0L, 0) && curl_easy_setopt(rt->curl, CURLOPT_HTTPGET, 1L) == CURLE_OK;
    if (!ok)
        errbuf_set(err, errlen, "%s: cannot set up the request", what);
    ok = ok && perform(rt, what, err, errlen);

    const next_headers *h = &rt->hdr;
    if (ok && h->too_long) {
        errbuf_set(err, errlen,
                   "%s: header %s of %zu bytes, longer than the %zu this runtime takes: its "
                   "invocation cannot be answered",
                   what, h->too_long, h->too_long_len, h->too_long_max);
        ok = false;
    } else if (ok && !h->have_request_id) {
        errbuf_set(err, errlen, "%s: no Lambda-Runtime-Aws-Request-Id in the answer", what);
        ok = false;
    } else if (ok && !request_id_ok(h->request_id)) {
        errbuf_set(err, errlen, "%s: unsafe Lambda-Runtime-Aws-Request-Id", what);
        ok = false;
    } else if (ok && !buf_reserve(&rt->body, 0)) { /* an empty event is still "" */
        errbuf_set(err, errlen, "%s: out of memory", what);
        ok = false;
    }
    if (!ok) {
        buf_free(&rt->body);
        return false;
    }

    memcpy(inv->request_id, h->request_id, sizeof inv->request_id);
    memcpy(inv->function_arn, h->function_arn, sizeof inv->function_arn);
    memcpy(inv->trace_id, h->trace_id, sizeof inv->trace_id);
    inv->deadline_ms = h->deadline_ms;
    if (rt->body.len == 0)
        rt->body.data[0] = '\0';
    inv->event = rt->body.data;
    inv->event_len = rt->body.len;
    memset(&rt->body, 0, sizeof rt->body);
    return true;
}

void lambda_invocation_clear(lambda_invocation *inv)
{
    if (!inv)
        return;
    free(inv->event);
    memset(inv, 0, sizeof *inv);
}

bool lambda_runtime_respond(lambda_runtime *rt, const lambda_invocation *inv, const char *body,
                            size_t len, char *err, size_t errlen)
{
    static const char what[] = "POST /response";
    char url[URL_MAX];
    if (!invocation_url(rt, inv, "response", url, sizeof url, what, err, errlen))
        return false;
    if (!body && len > 0) {
        errbuf_set(err, errlen, "%s: no body", what);
        return false;
    }
    return post(rt, url, what, body, len, NULL, err, errlen);
}

bool lambda_runtime_fail(lambda_runtime *rt, const lambda_invocation *inv, const char *error_type,
                         const char *message, char *err, size_t errlen)
{
    static const char what[] = "POST /error";
    char url[URL_MAX];
    if (!invocation_url(rt, inv, "error", url, sizeof url, what, err, errlen))
        return false;
    return post_error(rt, url, what, error_type, message, err, errlen);
}

bool lambda_runtime_init_error(lambda_runtime *rt, const char *error_type, const char *message,
                               char *err, size_t errlen)
{
    static const char what[] = "POST /init/error";
    char url[URL_MAX];
    snprintf(url, sizeof url, "%sinit/error", rt->base);
    return post_error(rt, url, what, error_type, message, err, errlen);
}

/* The most of an invocation's time its AWS calls leave for the answer to be posted. */
#define RESPONSE_RESERVE_MS 500

int64_t lambda_call_deadline(int64_t deadline_ms, int64_t now_ms)
{
    if (deadline_ms <= 0)
        return 0;
    int64_t reserve = (deadline_ms - now_ms) / 10;
    reserve = reserve < 0 ? 0 : reserve > RESPONSE_RESERVE_MS ? RESPONSE_RESERVE_MS : reserve;
    return deadline_ms - reserve;
}

/*
 * How long the spans of an invocation may take to leave once its response is posted. Lambda
 * counts the time until /next as the invocation's (a flush that reaches the deadline is a
 * timeout), and the next invocation waits for it. A collector that is up takes a batch in a few
 * milliseconds when it runs beside the function (the OpenTelemetry Lambda extension, a sidecar)
 * and in tens of milliseconds across a region; 300 ms leaves room on top for a new TLS
 * connection after a freeze (a few round trips). A collector that is down or stalled then costs
 * each invocation at most that, not the export timeout (OTEL_EXPORTER_OTLP_TIMEOUT, 10 s by
 * default) or the rest of the deadline; what it did not take is dropped and counted. The same
 * budget applies when Lambda gave no deadline.
 */
#define FLUSH_BUDGET_MS 300
/* Kept free before the deadline after a flush: the metrics lines and the request for /next. */
#define FLUSH_RESERVE_MS 50

int64_t lambda_flush_deadline(int64_t deadline_ms, int64_t now_ms)
{
    int64_t budget = now_ms + FLUSH_BUDGET_MS;
    int64_t limit = lambda_call_deadline(deadline_ms, now_ms);
    if (limit && limit > deadline_ms - FLUSH_RESERVE_MS) /* a tenth of little time is too little */
        limit = deadline_ms - FLUSH_RESERVE_MS;
    return limit && limit < budget ? limit : budget;
}
