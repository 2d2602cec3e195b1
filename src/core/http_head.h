/*
 * http_head — reading an HTTP/1.x request head: whether it is complete and may be taken
 * (http_head_judge()), and its parts once it is (http_head_split()), for the local HTTP server
 * (http/http_server.c, for every head of a connection). Pure: bytes in, a verdict or the parts
 * out.
 */
#ifndef TASKD_HTTP_HEAD_H
#define TASKD_HTTP_HEAD_H

#include <stdbool.h>
#include <stddef.h>

#define HTTP_HEAD_MAX_METHOD 32 /* longer method tokens are not HTTP */
/* The most header fields and query arguments a head that passes may have, together. */
#define HTTP_HEAD_MAX_RECORDS 192

typedef enum http_head_verdict {
    HTTP_HEAD_MORE,           /* not complete yet, and may still pass */
    HTTP_HEAD_OK,             /* complete and taken (what follows it is the body) */
    HTTP_HEAD_BAD,            /* a malformed request line: 400 */
    HTTP_HEAD_VERSION,        /* HTTP/d.d other than 1.0 and 1.1: 505 */
    HTTP_HEAD_LINE_TOO_LONG,  /* no request line within the limit: 414 */
    HTTP_HEAD_TOO_LARGE,      /* no end of head within the limit: 431 */
    HTTP_HEAD_BAD_FIELD,      /* a header line it cannot read: 400 */
    HTTP_HEAD_BAD_LENGTH,     /* a Content-Length it cannot read: 400 */
    HTTP_HEAD_LENGTH_TOO_BIG, /* a Content-Length past 2^64 - 1: 413 */
    HTTP_HEAD_TOO_MANY,     /* more fields, query arguments and cookies than it has room for: 431 */
    HTTP_HEAD_BAD_ENCODING, /* a Transfer-Encoding other than chunked: 501 */
    HTTP_HEAD_BAD_EXPECT,   /* Expect: 100-continue on a request without a body: 417 */
    HTTP_HEAD_BAD_HOST,     /* more than one Host, or one that is no host[:port]: 400 */
    HTTP_HEAD_BAD_AUTH,     /* more than one Authorization: 400 (which would be checked?) */
} http_head_verdict;

/*
 * Judge the first n bytes received on a connection, with limit the most a head may take
 * (n <= limit: what is past it is not looked at). Empty lines before the request line are
 * skipped. Once a verdict other than HTTP_HEAD_MORE is given, more
 * bytes do not change it.
 */
http_head_verdict http_head_judge(const char *buf, size_t n, size_t limit);

/* Where the judge left a head not complete yet (HTTP_HEAD_MORE): zeroed for each head. */
typedef struct http_head_scan {
    size_t line; /* the empty lines before the request line end here, so far */
    size_t at;   /* the look for the request line's end, then for the head's, goes on here */
    size_t eol;  /* the request line's LF, once it came and passed (0 before) */
    size_t args; /* then, its target's query arguments */
    bool http11; /* and its version */
} http_head_scan;

/*
 * http_head_judge() of a head as its bytes come: buf[0..n) holds the bytes judged before with s,
 * and more, and the judge goes on where the last look stopped. The same verdict, but a head that
 * comes a byte at a time has each byte looked at a few times, not once for every byte after it.
 */
http_head_verdict http_head_judge_from(const char *buf, size_t n, size_t limit, http_head_scan *s);

/* How a refused head is answered: status, a short metrics label and the JSON detail. */
typedef struct http_refusal {
    int status;
    const char *reason;
    const char *detail;
} http_refusal;

/* The answer to verdict v (neither MORE nor OK); too_large is the detail of a 413. */
http_refusal http_head_refusal(http_head_verdict v, const char *too_large);

/* A byte of a token (RFC 9110 tchar): a method, a header field's name, a trailer's. */
bool http_is_tchar(unsigned char ch);
/* A control byte, which no header value, chunk extension or trailer holds (a tab they may). */
bool http_is_control(unsigned char ch);
/* Whether the comma-separated list p to end (a field value) holds token, in any case; the blanks
 * around an element are not part of it. */
bool http_list_has(const char *p, const char *end, const char *token);

/* The reason phrase of an HTTP status ("Unknown" for one not listed). */
const char *http_reason_phrase(int status);

/* A header field or query argument (of which one without '=' has the value ""). */
typedef struct http_field {
    char *name;
    char *value;
} http_field;

/* A head's parts, each NUL-terminated inside the buffer split. */
typedef struct http_request_head {
    char *method;
    char *path; /* the target up to its first '?', not decoded ("/" and on, of an absolute one) */
    char *authority; /* of an absolute-form target ("http://host:port/..."), else NULL */
    char *query;     /* what follows that '?', not decoded; NULL when there is none */
    bool http11;     /* HTTP/1.1, else HTTP/1.0 */
    size_t len;      /* the head's bytes, with the empty lines before it and the one that ends it */
    http_field fields[HTTP_HEAD_MAX_RECORDS]; /* value: after leading and before trailing blanks */
    size_t n_fields;
} http_request_head;

/*
 * Split the head at the start of buf[0..n), which http_head_judge() took (HTTP_HEAD_OK), in
 * place: the method, target and each field's name and value get a NUL at their end.
 */
void http_head_split(char *buf, size_t n, http_request_head *out);

/* The first field named name (any case), or NULL. */
const char *http_head_field(const http_request_head *h, const char *name);

/*
 * Split a query string (NUL-terminated, changed in place) at each '&' into arguments at their
 * first '=', turning '+' into a space and percent-decoding names and values
 * (url_unescape_in_place()). Empty pieces are skipped; a piece without '=' is a name whose value
 * is "", as Starlette reads it (Python's parse_qsl() keeping blank values): "?limit" is
 * "?limit=". The count, at most max.
 */
size_t http_query_split(char *query, http_field *args, size_t max);

#endif
