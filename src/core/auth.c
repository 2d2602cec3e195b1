/*
 * auth — see auth.h and docs/auth.md.
 */
#include "auth.h"

#include "errbuf.h"
#include "sbuf.h"
#include "siphash.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define TOKEN_FILE_MAX (1u << 20)

void auth_init(auth_policy *p, const uint8_t key[AUTH_KEY_LEN])
{
    memset(p, 0, sizeof *p);
    memcpy(p->key, key, AUTH_KEY_LEN);
}

void auth_free(auth_policy *p)
{
    free(p->tokens);
    for (size_t i = 0; i < p->n_hosts; i++)
        free(p->hosts[i]);
    free(p->hosts);
    memset(p, 0, sizeof *p);
}

static auth_digest digest(const auth_policy *p, const char *s, size_t len)
{
    auth_digest d = {{siphash24(p->key, s, len), siphash24(p->key + 16, s, len)}};
    return d;
}

bool auth_digest_equal(const auth_digest *a, const auth_digest *b)
{
    uint64_t diff = (a->h[0] ^ b->h[0]) | (a->h[1] ^ b->h[1]);
    /* the top bit of diff | -diff is set unless diff is 0: no branch on the data */
    return ((diff | (0 - diff)) >> 63) == 0;
}

bool auth_token_ok(const auth_policy *p, const char *token, size_t len)
{
    auth_digest given = digest(p, token, len);
    unsigned found = 0;
    for (size_t i = 0; i < p->n_tokens; i++) /* every one: no early exit on a match */
        found |= (unsigned)auth_digest_equal(&given, &p->tokens[i]);
    return found != 0;
}

bool auth_add_token(auth_policy *p, const char *token, size_t len, char *err, size_t errlen)
{
    if (len == 0 || len > AUTH_TOKEN_MAX) {
        errbuf_set(err, errlen, "a token must be 1 to %d characters", AUTH_TOKEN_MAX);
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)token[i];
        if (c < 0x21 || c > 0x7e || c == ',') { /* a comma would part it in TASKD_TOKENS */
            errbuf_set(err, errlen,
                       "a token must be visible ASCII characters, without spaces or commas");
            return false;
        }
    }
    auth_digest *grown = realloc(p->tokens, (p->n_tokens + 1) * sizeof *grown);
    if (!grown) {
        errbuf_set(err, errlen, "out of memory");
        return false;
    }
    p->tokens = grown;
    p->tokens[p->n_tokens++] = digest(p, token, len);
    return true;
}

static bool blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Trim blanks around s[0..*len); returns the new start. */
static const char *trim(const char *s, size_t *len)
{
    while (*len && blank(*s)) {
        s++;
        (*len)--;
    }
    while (*len && blank(s[*len - 1]))
        (*len)--;
    return s;
}

bool auth_parse_token_lines(auth_policy *p, const char *text, size_t len, char *err, size_t errlen)
{
    size_t line = 0;
    const char *end = text + len;
    while (text < end) {
        line++;
        const char *nl = memchr(text, '\n', (size_t)(end - text));
        size_t n = (size_t)((nl ? nl : end) - text);
        const char *tok = trim(text, &n);
        text = nl ? nl + 1 : end;
        if (n == 0 || tok[0] == '#')
            continue;
        char why[160];
        if (!auth_add_token(p, tok, n, why, sizeof why)) {
            errbuf_set(err, errlen, "line %zu: %s", line, why);
            return false;
        }
    }
    return true;
}

bool auth_parse_token_list(auth_policy *p, const char *list, char *err, size_t errlen)
{
    size_t item = 0;
    while (*list) {
        item++;
        const char *comma = strchr(list, ',');
        size_t n = comma ? (size_t)(comma - list) : strlen(list);
        const char *tok = trim(list, &n);
        list += comma ? (size_t)(comma - list) + 1 : strlen(list);
        if (n == 0)
            continue;
        char why[160];
        if (!auth_add_token(p, tok, n, why, sizeof why)) {
            errbuf_set(err, errlen, "item %zu: %s", item, why);
            return false;
        }
    }
    return true;
}

bool auth_load_token_file(auth_policy *p, const char *path, char *err, size_t errlen)
{
    /* O_NONBLOCK: a named pipe is refused below, not waited on for a writer (a regular file's
     * reads ignore it) */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        errbuf_set(err, errlen, "cannot open token file %s: %s", path, strerror(errno));
        return false;
    }
    struct stat st;
    char *buf = NULL;
    bool ok = false;
    if (fstat(fd, &st) != 0) {
        errbuf_set(err, errlen, "cannot read token file %s: %s", path, strerror(errno));
    } else if (!S_ISREG(st.st_mode)) {
        errbuf_set(err, errlen, "token file %s is not a regular file", path);
    } else if (st.st_mode & (S_IROTH | S_IWOTH)) {
        errbuf_set(err, errlen,
                   "token file %s is readable or writable by others (mode %04o): "
                   "restrict it, e.g. chmod 600 %s",
                   path, (unsigned)(st.st_mode & 07777), path);
    } else if (st.st_size > (off_t)TOKEN_FILE_MAX) {
        errbuf_set(err, errlen, "token file %s is over %u bytes", path, TOKEN_FILE_MAX);
    } else if (!(buf = malloc((size_t)st.st_size + 1))) {
        errbuf_set(err, errlen, "out of memory");
    } else {
        size_t got = 0;
        ssize_t n = 0;
        while (got < (size_t)st.st_size && (n = read(fd, buf + got, (size_t)st.st_size - got)) > 0)
            got += (size_t)n;
        size_t before = p->n_tokens;
        char why[200];
        if (n < 0)
            errbuf_set(err, errlen, "cannot read token file %s: %s", path, strerror(errno));
        else if (!auth_parse_token_lines(p, buf, got, why, sizeof why))
            errbuf_set(err, errlen, "token file %s, %s", path, why);
        else if (p->n_tokens == before)
            errbuf_set(err, errlen, "token file %s holds no token", path);
        else
            ok = true;
    }
    if (buf)
        memset(buf, 0, (size_t)st.st_size); /* no copy of the tokens left behind */
    free(buf);
    close(fd);
    return ok;
}

/*
 * Split a Host value ("name", "name:port", "[v6]", "[v6]:port") into its name (brackets kept)
 * and port (0: none). False when malformed.
 */
static bool split_host(const char *s, size_t len, const char **name, size_t *name_len,
                       unsigned *port)
{
    const char *colon = NULL;
    if (len && s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (!close)
            return false;
        *name_len = (size_t)(close - s) + 1;
        if (*name_len < len) {
            if (close[1] != ':')
                return false;
            colon = close + 1;
        }
    } else {
        colon = memchr(s, ':', len);
        *name_len = colon ? (size_t)(colon - s) : len;
    }
    *name = s;
    *port = 0;
    if (*name_len == 0)
        return false;
    for (size_t i = 0; i < *name_len; i++)
        if ((unsigned char)s[i] <= 0x20 || s[i] == '/' || s[i] == ',' || s[i] == '@')
            return false;
    if (colon) {
        const char *d = colon + 1, *end = s + len;
        if (d == end || end - d > 5)
            return false;
        unsigned v = 0;
        for (; d < end; d++) {
            if (*d < '0' || *d > '9')
                return false;
            v = v * 10 + (unsigned)(*d - '0');
        }
        if (v == 0 || v > 65535)
            return false;
        *port = v;
    }
    return true;
}

static bool same_name(const char *a, size_t alen, const char *b, size_t blen)
{
    return alen == blen && strncasecmp(a, b, alen) == 0;
}

bool auth_parse_hosts(auth_policy *p, const char *list, char *err, size_t errlen)
{
    while (*list) {
        const char *comma = strchr(list, ',');
        size_t n = comma ? (size_t)(comma - list) : strlen(list);
        const char *item = trim(list, &n);
        list += comma ? (size_t)(comma - list) + 1 : strlen(list);
        if (n == 0)
            continue;
        if (n == 1 && item[0] == '*') {
            p->any_host = true;
            continue;
        }
        const char *name;
        size_t name_len;
        unsigned port;
        if (!split_host(item, n, &name, &name_len, &port)) {
            errbuf_set(err, errlen, "allowed host '%.*s' must be NAME or NAME:PORT",
                       (int)utf8_cut(item, n > 100 ? 100 : n), item);
            return false;
        }
        char **grown = realloc(p->hosts, (p->n_hosts + 1) * sizeof *grown);
        if (!grown || !(grown[p->n_hosts] = strndup(item, n))) {
            if (grown)
                p->hosts = grown;
            errbuf_set(err, errlen, "out of memory");
            return false;
        }
        p->hosts = grown;
        p->n_hosts++;
    }
    return true;
}

bool auth_is_loopback(const char *host)
{
    if (!host)
        return false;
    if (strcasecmp(host, "localhost") == 0)
        return true;
    struct in_addr v4;
    if (inet_pton(AF_INET, host, &v4) == 1)
        return (ntohl(v4.s_addr) >> 24) == 127;
    struct in6_addr v6;
    if (inet_pton(AF_INET6, host, &v6) == 1) {
        static const uint8_t one[16] = {[15] = 1};
        static const uint8_t mapped[12] = {[10] = 0xff, [11] = 0xff};
        return memcmp(v6.s6_addr, one, 16) == 0 ||
               (memcmp(v6.s6_addr, mapped, 12) == 0 && v6.s6_addr[12] == 127);
    }
    return false;
}

/* Whether name (len bytes, brackets kept) is an IPv4 address or a bracketed IPv6 one. */
static bool ip_literal(const char *name, size_t len)
{
    char text[64];
    bool v6 = len > 2 && name[0] == '[' && name[len - 1] == ']';
    if (v6) {
        name++;
        len -= 2;
    }
    if (len >= sizeof text)
        return false;
    memcpy(text, name, len);
    text[len] = '\0';
    unsigned char addr[16];
    return inet_pton(v6 ? AF_INET6 : AF_INET, text, addr) == 1;
}

bool auth_host_allowed(const auth_policy *p, const char *host)
{
    if (!p->check_host || p->any_host || !host)
        return true; /* no Host at all is no browser's request */
    const char *name;
    size_t name_len;
    unsigned port;
    if (!split_host(host, strlen(host), &name, &name_len, &port))
        return false;
    static const char *const loopback[] = {"localhost", "127.0.0.1", "[::1]"};
    for (size_t i = 0; i < sizeof loopback / sizeof loopback[0]; i++)
        if (same_name(name, name_len, loopback[i], strlen(loopback[i])))
            return true;
    if (p->ip_hosts && ip_literal(name, name_len))
        return true;
    for (size_t i = 0; i < p->n_hosts; i++) {
        const char *allowed;
        size_t allowed_len;
        unsigned allowed_port;
        if (split_host(p->hosts[i], strlen(p->hosts[i]), &allowed, &allowed_len, &allowed_port) &&
            same_name(name, name_len, allowed, allowed_len) &&
            (allowed_port == 0 || allowed_port == port ||
             /* a browser leaves out the scheme's own port */
             (port == 0 && (allowed_port == 80 || allowed_port == 443))))
            return true;
    }
    return false;
}

bool auth_same_origin(const char *origin, const char *host)
{
    if (!origin || !host)
        return false;
    unsigned default_port;
    const char *authority;
    if (strncasecmp(origin, "http://", 7) == 0) {
        default_port = 80;
        authority = origin + 7;
    } else if (strncasecmp(origin, "https://", 8) == 0) {
        default_port = 443;
        authority = origin + 8;
    } else {
        return false; /* "null", or a scheme no page of ours comes from */
    }
    size_t alen = strcspn(authority, "/");
    if (authority[alen] && strcmp(authority + alen, "/") != 0)
        return false; /* an Origin has no path */
    const char *oname, *hname;
    size_t olen, hlen;
    unsigned oport, hport;
    if (!split_host(authority, alen, &oname, &olen, &oport) ||
        !split_host(host, strlen(host), &hname, &hlen, &hport))
        return false;
    return same_name(oname, olen, hname, hlen) &&
           (oport ? oport : default_port) == (hport ? hport : default_port);
}

static bool safe_method(const char *m)
{
    return strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0 || strcmp(m, "OPTIONS") == 0;
}

auth_result auth_check(const auth_policy *p, const auth_request *r)
{
    if (!auth_host_allowed(p, r->host))
        return AUTH_BAD_HOST;
    if (!safe_method(r->method)) {
        if (r->sec_fetch_site && strcasecmp(r->sec_fetch_site, "cross-site") == 0)
            return AUTH_CROSS_SITE;
        if (r->origin && !auth_same_origin(r->origin, r->host))
            return AUTH_CROSS_ORIGIN;
    }
    if (p->n_tokens == 0)
        return AUTH_OK;
    if (p->metrics_public && (strcmp(r->path, "/metrics") == 0 || strcmp(r->path, "/health") == 0))
        return AUTH_OK;
    /* the dashboard's page and files hold no data: a browser loads them without a token, and
     * the page asks for one to read the API */
    if (safe_method(r->method) &&
        (strcmp(r->path, "/") == 0 || strncmp(r->path, "/dashboard/", 11) == 0))
        return AUTH_OK;
    const char *a = r->authorization;
    if (!a)
        return AUTH_MISSING;
    while (*a == ' ' || *a == '\t')
        a++;
    if (strncasecmp(a, "Bearer", 6) != 0 || (a[6] != ' ' && a[6] != '\t' && a[6] != '\0'))
        return AUTH_NOT_BEARER;
    a += 6;
    while (*a == ' ' || *a == '\t')
        a++;
    size_t len = strlen(a);
    while (len && (a[len - 1] == ' ' || a[len - 1] == '\t'))
        len--;
    return auth_token_ok(p, a, len) ? AUTH_OK : AUTH_INVALID;
}

int auth_status(auth_result r)
{
    switch (r) {
    case AUTH_OK:
        return 200;
    case AUTH_BAD_HOST:
    case AUTH_CROSS_SITE:
    case AUTH_CROSS_ORIGIN:
        return 403;
    default:
        return 401;
    }
}

const char *auth_detail(auth_result r)
{
    switch (r) {
    case AUTH_OK:
        return "OK";
    case AUTH_BAD_HOST:
        return "Host not allowed: this server answers only to its own names "
               "(see --allowed-hosts)";
    case AUTH_CROSS_SITE:
        return "Cross-site request refused";
    case AUTH_CROSS_ORIGIN:
        return "Cross-origin request refused: Origin does not match Host";
    case AUTH_MISSING:
        return "Not authenticated: send Authorization: Bearer <token>";
    case AUTH_NOT_BEARER:
        return "Not authenticated: the Authorization scheme must be Bearer";
    case AUTH_INVALID:
        return "Invalid bearer token";
    }
    return "Forbidden";
}
