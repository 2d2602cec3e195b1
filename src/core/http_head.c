/*
 * http_head — judging and splitting a request head; see http_head.h.
 *
 * The judge's rules are those of libmicrohttpd 0.9.75, which served taskd's API before the
 * server of its own, kept so that every head is taken or refused as before (and the refusals
 * answered in JSON, where libmicrohttpd gave an HTML page, no answer, or a wait):
 *  - only empty lines (LF or CR LF) come before the request line;
 *  - the target is what lies between the spaces after the method and the last space;
 *  - a header line holds a colon; a folded line (one that starts with a blank) extends the
 *    field *name* before it, so it is refused here outright (RFC 9112 §5.2 allows that);
 *  - the Transfer-Encoding is "chunked" in any case, or it waits for the connection to close;
 *    with none, the first Content-Length is all digits and below 2^64 - 1, its "until the
 *    connection closes";
 *  - "Expect: 100-continue" on an HTTP/1.1 request without a body answers 100 and then fails
 *    the request (here in any Expect line, as one list, as the server reads it for its 100);
 *  - every header field, query argument and cookie of the first Cookie field (one at each ';'
 *    or ',') takes a 64-byte record, and that value a copy, from a budget of RECORDS_BUDGET
 *    bytes: past it the head is refused (431), which also bounds what a head may ask of the
 *    server (HTTP_HEAD_MAX_RECORDS).
 * Where the judge is stricter than that, as RFC 9112 asks (and as a front end that reads the
 * head its own way needs, lest a body be taken for a request of its own):
 *  - a field name is a token: a blank before the colon, an empty name or a control byte in it
 *    is refused (400), where libmicrohttpd took "Content-Length : 5" for another field;
 *  - a field value holds no control byte but a tab (no NUL, no lone CR): 400;
 *  - a value's blanks on both sides are not part of it ("chunked ", "5 ");
 *  - more than one Transfer-Encoding line is a coding beyond a lone chunked: 501;
 *  - more than one Host line, or a Host that is no host[:port]: 400;
 *  - more than one Authorization line: 400 (a front end may check another one than taskd);
 *  - HTTP/1.2 to 1.9: 505.
 */
#include "http_head.h"

#include "urlcode.h"

#include <ctype.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#define RECORD_BYTES   64
#define RECORDS_BUDGET (12 * 1024)
_Static_assert(RECORDS_BUDGET / RECORD_BYTES == HTTP_HEAD_MAX_RECORDS, "records of a taken head");

bool http_is_tchar(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

bool http_is_control(unsigned char ch)
{
    return (ch < 0x20 && ch != '\t') || ch == 0x7f;
}

bool http_list_has(const char *p, const char *end, const char *token)
{
    size_t n = strlen(token);
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
            p++;
        const char *e = p;
        while (e < end && *e != ',')
            e++;
        const char *t = e;
        while (t > p && (t[-1] == ' ' || t[-1] == '\t'))
            t--;
        if ((size_t)(t - p) == n && strncasecmp(p, token, n) == 0)
            return true;
        p = e;
    }
    return false;
}

static bool named(const char *name, size_t len, const char *lower)
{
    if (len != strlen(lower))
        return false;
    for (size_t i = 0; i < len; i++)
        if (tolower((unsigned char)name[i]) != lower[i])
            return false;
    return true;
}

/* A header value: between its blanks on either side. */
typedef struct value {
    const char *p, *end;
} value;

static value value_of(const char *colon, const char *line_end)
{
    value v = {colon + 1, line_end};
    while (v.p < v.end && (*v.p == ' ' || *v.p == '\t'))
        v.p++;
    while (v.end > v.p && (v.end[-1] == ' ' || v.end[-1] == '\t'))
        v.end--;
    return v;
}

/* A field value's bytes: visible ones, blanks and obs-text; no other control byte. */
static bool value_clean(value v)
{
    for (const char *c = v.p; c < v.end; c++)
        if (http_is_control((unsigned char)*c))
            return false;
    return true;
}

/* A Host value: uri-host [":" port] (RFC 3986: a reg-name, an IPv4 or a bracketed IP literal);
 * empty is one too (an authority of no host). */
static bool host_valid(value v)
{
    for (const char *c = v.p; c < v.end; c++)
        if (!isalnum((unsigned char)*c) && !strchr("-._~%!$&'()*+,;=:[]", *c))
            return false;
    return true;
}

static bool value_is(value v, const char *lower)
{
    return v.p && named(v.p, (size_t)(v.end - v.p), lower);
}

static size_t count_of(const char *p, const char *end, char c)
{
    size_t n = 0;
    for (; p < end; p++)
        n += *p == c;
    return n;
}

/* The first Content-Length's verdict, and in *zero whether it is 0. */
static http_head_verdict judge_length(value v, bool *zero)
{
    if (v.p == v.end)
        return HTTP_HEAD_BAD_LENGTH;
    uint64_t n = 0;
    for (const char *d = v.p; d < v.end; d++) {
        if (!isdigit((unsigned char)*d))
            return HTTP_HEAD_BAD_LENGTH;
        unsigned digit = (unsigned)(*d - '0');
        if (n > (UINT64_MAX - 1 - digit) / 10) /* 2^64 - 1 means "until the close" to it */
            return HTTP_HEAD_LENGTH_TOO_BIG;
        n = n * 10 + digit;
    }
    *zero = n == 0;
    return HTTP_HEAD_OK;
}

/*
 * Judge a complete head's header lines, p to end (each ending in LF or CR LF); args is the
 * number of query arguments of its target.
 */
static http_head_verdict judge_fields(const char *p, const char *end, size_t args, bool http11)
{
    value length = {0}, encoding = {0}, cookie = {0}, host = {0}; /* the first */
    bool length_seen = false, continues = false; /* 100-continue in any Expect line */
    unsigned encodings = 0, hosts = 0, authorizations = 0;
    size_t records = args, copies = 0;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *next = eol ? eol + 1 : end;
        const char *line_end = eol ? eol : end;
        if (line_end > p && line_end[-1] == '\r')
            line_end--;
        if (*p == ' ' || *p == '\t')
            return HTTP_HEAD_BAD_FIELD; /* folded */
        const char *colon = p;          /* after a token: nothing else comes before the colon */
        while (colon < line_end && http_is_tchar((unsigned char)*colon))
            colon++;
        if (colon == line_end || *colon != ':' || colon == p)
            return HTTP_HEAD_BAD_FIELD;
        value v = value_of(colon, line_end);
        if (!value_clean(v))
            return HTTP_HEAD_BAD_FIELD;
        records++;
        size_t len = (size_t)(colon - p);
        if (named(p, len, "transfer-encoding")) {
            if (!encodings++)
                encoding = v;
        } else if (named(p, len, "content-length") && !length_seen) {
            length = v;
            length_seen = true;
        } else if (named(p, len, "host")) {
            if (!hosts++)
                host = v;
        } else if (named(p, len, "authorization")) {
            authorizations++;
        } else if (named(p, len, "expect")) {
            continues = continues || http_list_has(v.p, v.end, "100-continue");
        } else if (named(p, len, "cookie") && !cookie.p) {
            cookie = v;
        }
        p = next;
    }
    if (cookie.p) { /* a cookie at every ';' or ',' at most, and a copy of the value */
        records += 1 + count_of(cookie.p, cookie.end, ';') + count_of(cookie.p, cookie.end, ',');
        copies += ((size_t)(cookie.end - cookie.p) + 1 + 15) / 16 * 16;
    }
    if (records > (RECORDS_BUDGET - copies) / RECORD_BYTES || copies > RECORDS_BUDGET)
        return HTTP_HEAD_TOO_MANY;
    if (hosts > 1 || (hosts && !host_valid(host)))
        return HTTP_HEAD_BAD_HOST;
    if (authorizations > 1)
        return HTTP_HEAD_BAD_AUTH;
    bool bodiless = true;
    if (encodings) {
        if (encodings > 1 || !value_is(encoding, "chunked"))
            return HTTP_HEAD_BAD_ENCODING;
        bodiless = false;
    } else if (length_seen) {
        bool zero = false;
        http_head_verdict v = judge_length(length, &zero);
        if (v != HTTP_HEAD_OK)
            return v;
        bodiless = zero;
    }
    if (bodiless && http11 && continues)
        return HTTP_HEAD_BAD_EXPECT;
    return HTTP_HEAD_OK;
}

/*
 * The request line of the head in buf[0..n), looked at from where s says the last look stopped:
 * HTTP_HEAD_OK once it is whole and HTTP/1.x (s->eol, s->args and s->http11 set, and the look
 * for the head's end to begin at its LF), HTTP_HEAD_MORE while it may still pass, else the
 * refusal.
 */
static http_head_verdict request_line(const char *buf, size_t n, size_t limit, http_head_scan *s)
{
    size_t i = s->line;
    for (;; s->line = i) { /* empty lines: LF or CR LF */
        if (i < n && buf[i] == '\n')
            i++;
        else if (i + 1 < n && buf[i] == '\r' && buf[i + 1] == '\n')
            i += 2;
        else if (i + 1 < n && buf[i] == '\r')
            return HTTP_HEAD_BAD;
        else if (i < n && buf[i] == '\r') /* the last byte: its LF may follow */
            return n >= limit ? HTTP_HEAD_LINE_TOO_LONG : HTTP_HEAD_MORE;
        else
            break;
    }
    size_t method = i;
    while (i < n && i - method <= HTTP_HEAD_MAX_METHOD && http_is_tchar((unsigned char)buf[i]))
        i++;
    if (i - method > HTTP_HEAD_MAX_METHOD)
        return HTTP_HEAD_BAD;
    if (i == n)
        return n >= limit ? HTTP_HEAD_LINE_TOO_LONG : HTTP_HEAD_MORE;
    if (buf[i] != ' ' || i == method)
        return HTTP_HEAD_BAD;
    /* the rest of the request line: no control characters but its CR LF */
    size_t eol = s->at > i ? s->at : i;
    for (; eol < n && buf[eol] != '\n'; eol++) {
        unsigned char ch = (unsigned char)buf[eol];
        if ((ch < 0x20 && ch != '\r' && ch != '\t') || ch == 0x7f)
            return HTTP_HEAD_BAD;
        if (ch == '\r' && eol + 1 < n && buf[eol + 1] != '\n')
            return HTTP_HEAD_BAD;
    }
    if (eol == n) {
        s->at = n - 1; /* the last byte again: a CR, whose LF may follow */
        return n >= limit ? HTTP_HEAD_LINE_TOO_LONG : HTTP_HEAD_MORE;
    }
    size_t end = eol > 0 && buf[eol - 1] == '\r' ? eol - 1 : eol;
    size_t target = i;
    while (target < end && buf[target] == ' ')
        target++;
    size_t sp = end;
    while (sp > i && buf[sp - 1] != ' ')
        sp--;
    if (sp <= target + 1) /* no target, or no version */
        return HTTP_HEAD_BAD;
    size_t target_end = sp - 1;
    while (target_end > target && buf[target_end - 1] == ' ')
        target_end--;
    for (size_t k = target; k < target_end; k++)
        if (buf[k] == ' ' || buf[k] == '\t') /* the target holds no white space (RFC 9112, 3.2) */
            return HTTP_HEAD_BAD;
    const char *v = buf + sp;
    size_t vlen = end - sp;
    if (vlen == 8 && (memcmp(v, "HTTP/1.1", 8) == 0 || memcmp(v, "HTTP/1.0", 8) == 0)) {
        /* query arguments: one for each '&' after the first '?', and the first */
        const char *q = memchr(buf + target, '?', sp - 1 - target);
        s->args = q ? 1 + count_of(q, buf + sp - 1, '&') : 0;
        s->http11 = v[7] == '1';
        s->eol = s->at = eol;
        return HTTP_HEAD_OK;
    }
    /* HTTP/d.d, another version: 505, as libmicrohttpd answers; anything else is no version */
    if (vlen == 8 && memcmp(v, "HTTP/", 5) == 0 && isdigit((unsigned char)v[5]) && v[6] == '.' &&
        isdigit((unsigned char)v[7]))
        return HTTP_HEAD_VERSION;
    return HTTP_HEAD_BAD;
}

/* HTTP_HEAD_OK once the head is complete, its request line is HTTP/1.x and its header lines
 * pass judge_fields(). */
http_head_verdict http_head_judge_from(const char *buf, size_t n, size_t limit, http_head_scan *s)
{
    if (!s->eol) {
        http_head_verdict v = request_line(buf, n, limit, s);
        if (v != HTTP_HEAD_OK)
            return v;
    }
    /* the head ends at the first empty line */
    size_t k = s->at;
    for (; k + 1 < n; k++) {
        if (buf[k] != '\n')
            continue;
        if (buf[k + 1] == '\n' || (buf[k + 1] == '\r' && k + 2 < n && buf[k + 2] == '\n'))
            return judge_fields(buf + s->eol + 1, buf + k + 1, s->args, s->http11);
    }
    if (k > s->at)
        s->at = k - 1; /* the last two bytes again: an LF and a CR, whose LF may follow */
    return n >= limit ? HTTP_HEAD_TOO_LARGE : HTTP_HEAD_MORE;
}

http_head_verdict http_head_judge(const char *buf, size_t n, size_t limit)
{
    http_head_scan from_the_start = {0};
    return http_head_judge_from(buf, n, limit, &from_the_start);
}

/* The empty lines before a request line: their length. */
static size_t leading_empty_lines(const char *buf, size_t n)
{
    size_t i = 0;
    for (;;) {
        if (i < n && buf[i] == '\n')
            i++;
        else if (i + 1 < n && buf[i] == '\r' && buf[i + 1] == '\n')
            i += 2;
        else
            return i;
    }
}

/* The end of the line starting at p (its LF, or end), and in *text_end where its text ends. */
static char *line_of(char *p, char *end, char **text_end)
{
    char *eol = memchr(p, '\n', (size_t)(end - p));
    char *t = eol ? eol : end;
    if (t > p && t[-1] == '\r')
        t--;
    *text_end = t;
    return eol ? eol : end;
}

/*
 * An absolute-form target (RFC 9112 §3.2.2: "http://host:port/path?query", as a proxy sends it,
 * which a server must take too): its path (and query) is the request's, and its authority takes
 * the place of Host. Done in place, in the room the scheme leaves: the authority moves left over
 * its "//" to end in a NUL of its own, and a target without a path gets a "/" just before its
 * end (or its '?').
 */
static void absolute_form(http_request_head *out, char *target)
{
    size_t scheme = strncasecmp(target, "http://", 7) == 0    ? 7
                    : strncasecmp(target, "https://", 8) == 0 ? 8
                                                              : 0;
    if (!scheme)
        return;
    char *a = target + scheme;
    ptrdiff_t alen = (ptrdiff_t)strcspn(a, "/?");
    if (a[alen] == '/') {
        memmove(a - 1, a, (size_t)alen);
        a[alen - 1] = '\0'; /* over the authority's last byte, moved */
        out->authority = a - 1;
        out->path = a + alen;
    } else {
        memmove(a - 2, a, (size_t)alen);
        a[alen - 2] = '\0';
        a[alen - 1] = '/';
        out->authority = a - 2;
        out->path = a + alen - 1;
    }
}

void http_head_split(char *buf, size_t n, http_request_head *out)
{
    char *end = buf + n;
    char *p = buf + leading_empty_lines(buf, n);
    out->n_fields = 0;
    out->query = NULL;
    /* the request line: method SP target SP version (the target ends at the last space) */
    char *text_end;
    char *eol = line_of(p, end, &text_end);
    char *sp = memchr(p, ' ', (size_t)(text_end - p));
    char *version = text_end;
    while (version > sp + 1 && version[-1] != ' ')
        version--;
    out->http11 = version[7] == '1';
    *sp = '\0';
    out->method = p;
    char *target = sp + 1;
    while (*target == ' ')
        target++;
    char *target_end = version - 1;
    while (target_end > target && target_end[-1] == ' ')
        target_end--;
    *target_end = '\0';
    out->path = target;
    out->authority = NULL;
    absolute_form(out, target);
    char *q = strchr(out->path, '?');
    if (q) {
        *q = '\0';
        out->query = q + 1;
    }
    /* the header lines, up to the empty one */
    p = eol + 1;
    while (p < end && *p != '\n' && !(*p == '\r' && p + 1 < end && p[1] == '\n')) {
        eol = line_of(p, end, &text_end);
        char *colon = memchr(p, ':', (size_t)(text_end - p));
        if (!colon) { /* not in a head the judge took */
            p = eol + 1;
            continue;
        }
        char *v = colon + 1;
        while (v < text_end && (*v == ' ' || *v == '\t'))
            v++;
        char *v_end = text_end; /* the judge took no NUL in a value */
        while (v_end > v && (v_end[-1] == ' ' || v_end[-1] == '\t'))
            v_end--;
        *colon = '\0';
        *v_end = '\0';
        if (out->n_fields < HTTP_HEAD_MAX_RECORDS)
            out->fields[out->n_fields++] = (http_field){p, v};
        p = eol + 1;
    }
    p += *p == '\r' ? 2 : 1;
    out->len = (size_t)(p - buf);
}

const char *http_head_field(const http_request_head *h, const char *name)
{
    for (size_t i = 0; i < h->n_fields; i++)
        if (strcasecmp(h->fields[i].name, name) == 0)
            return h->fields[i].value;
    return NULL;
}

size_t http_query_split(char *query, http_field *args, size_t max)
{
    size_t n = 0;
    char *p = query;
    while (p && *p && n < max) {
        char *amp = strchr(p, '&');
        if (amp)
            *amp = '\0';
        if (*p) {
            for (char *c = p; *c; c++)
                if (*c == '+')
                    *c = ' ';
            char *eq = strchr(p, '=');
            if (eq)
                *eq = '\0';
            size_t len = url_unescape_in_place(p);
            if (eq)
                url_unescape_in_place(eq + 1);
            args[n++] = (http_field){p, eq ? eq + 1 : p + len}; /* "?limit" as "?limit=" */
        }
        p = amp ? amp + 1 : NULL;
    }
    return n;
}

http_refusal http_head_refusal(http_head_verdict v, const char *too_large)
{
    switch (v) {
    case HTTP_HEAD_VERSION:
        return (http_refusal){505, "malformed", "HTTP version not supported"};
    case HTTP_HEAD_LINE_TOO_LONG:
        return (http_refusal){414, "head_too_large", "Request line too long"};
    case HTTP_HEAD_TOO_LARGE:
        return (http_refusal){431, "head_too_large", "Request head too large"};
    case HTTP_HEAD_BAD_FIELD:
        return (http_refusal){400, "malformed", "Malformed header line"};
    case HTTP_HEAD_BAD_HOST:
        return (http_refusal){400, "malformed", "Malformed or repeated Host header"};
    case HTTP_HEAD_BAD_AUTH:
        return (http_refusal){400, "malformed", "Repeated Authorization header"};
    case HTTP_HEAD_BAD_LENGTH:
        return (http_refusal){400, "malformed", "Malformed Content-Length"};
    case HTTP_HEAD_LENGTH_TOO_BIG:
        return (http_refusal){413, "body_too_large", too_large};
    case HTTP_HEAD_TOO_MANY:
        return (http_refusal){431, "head_too_large",
                              "Too many header fields, query parameters or cookies"};
    case HTTP_HEAD_BAD_ENCODING:
        return (http_refusal){501, "malformed", "Transfer-Encoding other than chunked"};
    case HTTP_HEAD_BAD_EXPECT:
        return (http_refusal){417, "malformed", "Expect: 100-continue without a body"};
    case HTTP_HEAD_BAD:
    case HTTP_HEAD_MORE:
    case HTTP_HEAD_OK:
        break;
    }
    return (http_refusal){400, "malformed", "Malformed request line"};
}

const char *http_reason_phrase(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 303:
        return "See Other";
    case 304:
        return "Not Modified";
    case 307:
        return "Temporary Redirect";
    case 308:
        return "Permanent Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 406:
        return "Not Acceptable";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 411:
        return "Length Required";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 417:
        return "Expectation Failed";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}
