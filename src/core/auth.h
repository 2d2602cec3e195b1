/*
 * auth — who may call the API and from where (docs/auth.md): bearer tokens,
 * cross-origin writes, and the Host header of a loopback listener.
 *
 * Pure: a policy is built from text (a token file's contents, a comma list)
 * and a random key the caller supplies; auth_check() decides one request from
 * its method, path and a few headers. Only auth_load_token_file() reads a file.
 *
 * Tokens are never kept or compared as text: each is hashed with SipHash-2-4
 * under two per-process keys (a 128-bit digest), and a presented token is
 * hashed the same way and compared with every digest without an early exit,
 * so neither the content nor the length of a token leaks through timing.
 */
#ifndef TASKD_AUTH_H
#define TASKD_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUTH_KEY_LEN   32 /* two SipHash keys */
#define AUTH_TOKEN_MAX 4096

typedef struct auth_digest {
    uint64_t h[2];
} auth_digest;

typedef struct auth_policy {
    uint8_t key[AUTH_KEY_LEN];
    auth_digest *tokens; /* none: no authentication */
    size_t n_tokens;
    bool metrics_public; /* GET /metrics and /health need no token */
    bool check_host;     /* refuse Host headers outside the loopback names and hosts[] */
    bool ip_hosts;       /* and allow any IP address (a name is what a rebinding page has) */
    bool any_host;       /* "*" among the allowed hosts: no Host check */
    char **hosts;        /* extra allowed Host values ("name" any port, or "name:port") */
    size_t n_hosts;
} auth_policy;

typedef enum auth_result {
    AUTH_OK,
    AUTH_BAD_HOST,     /* 403: Host not allowed (DNS rebinding) */
    AUTH_CROSS_SITE,   /* 403: unsafe method with Sec-Fetch-Site: cross-site */
    AUTH_CROSS_ORIGIN, /* 403: unsafe method with an Origin other than Host */
    AUTH_MISSING,      /* 401: no Authorization header */
    AUTH_NOT_BEARER,   /* 401: Authorization of another scheme */
    AUTH_INVALID,      /* 401: a bearer token that is not one of ours */
} auth_result;

/* What auth_check() looks at; absent headers are NULL. */
typedef struct auth_request {
    const char *method;
    const char *path;
    const char *host;
    const char *origin;
    const char *sec_fetch_site;
    const char *authorization;
} auth_request;

/* An empty policy (no tokens, no Host check) under key (AUTH_KEY_LEN random bytes). */
void auth_init(auth_policy *p, const uint8_t key[AUTH_KEY_LEN]);
void auth_free(auth_policy *p);

/* Add one token (1..AUTH_TOKEN_MAX visible ASCII characters, no comma); false with a reason in
 * err. */
bool auth_add_token(auth_policy *p, const char *token, size_t len, char *err, size_t errlen);
/*
 * Add the tokens of a token file's text: one per line, surrounding blanks trimmed, blank lines
 * and lines starting with '#' ignored. False (with the line number in err) on a bad token.
 */
bool auth_parse_token_lines(auth_policy *p, const char *text, size_t len, char *err, size_t errlen);
/* Add the tokens of a comma-separated list (TASKD_TOKENS); empty items are ignored. */
bool auth_parse_token_list(auth_policy *p, const char *list, char *err, size_t errlen);
/*
 * Read a token file: refused when others may read or write it (mode & 006), when it is not a
 * regular file, or when it holds no token. False with a one-line reason in err.
 */
bool auth_load_token_file(auth_policy *p, const char *path, char *err, size_t errlen);
/* Add the comma-separated allowed Host values; "*" allows any. False on a malformed item. */
bool auth_parse_hosts(auth_policy *p, const char *list, char *err, size_t errlen);

/* Is token one of the policy's? Constant time in the token and in which one matches. */
bool auth_token_ok(const auth_policy *p, const char *token, size_t len);
/* Constant-time equality of two digests. */
bool auth_digest_equal(const auth_digest *a, const auth_digest *b);
/* True for a numeric loopback address (127.0.0.0/8, ::1, ::ffff:127.x) or "localhost". */
bool auth_is_loopback(const char *host);
/* Is a Host header value allowed by the policy (loopback names, or the configured hosts)? */
bool auth_host_allowed(const auth_policy *p, const char *host);
/* Is an Origin header the same origin as the Host header? */
bool auth_same_origin(const char *origin, const char *host);

/* Decide one request. */
auth_result auth_check(const auth_policy *p, const auth_request *r);
/* The HTTP status (401 or 403) and the detail of a refusal. */
int auth_status(auth_result r);
const char *auth_detail(auth_result r);

#endif
