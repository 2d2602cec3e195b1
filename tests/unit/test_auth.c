/*
 * Unit tests for core/auth: token parsing (file lines, comma lists, bad tokens), the token file's
 * permission rule, constant-time digest comparison, loopback addresses, Host and Origin matching,
 * and every decision of auth_check() with its status and detail.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const uint8_t key[AUTH_KEY_LEN] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                                          12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                                          23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

static bool ok(const auth_policy *p, const char *token)
{
    return auth_token_ok(p, token, strlen(token));
}

static void test_token_lines(void **state)
{
    (void)state;
    auth_policy p;
    auth_init(&p, key);
    char err[256] = "";
    static const char text[] = "# the tokens of taskd\n"
                               "\n"
                               "  alpha-1  \r\n"
                               "\t# indented comment\n"
                               "beta_2\n"
                               "   \n"
                               "gamma/3+=="; /* no final newline */
    assert_true(auth_parse_token_lines(&p, text, strlen(text), err, sizeof err));
    assert_int_equal(p.n_tokens, 3);
    assert_true(ok(&p, "alpha-1"));
    assert_true(ok(&p, "beta_2"));
    assert_true(ok(&p, "gamma/3+=="));
    assert_false(ok(&p, "alpha-1 "));
    assert_false(ok(&p, "alpha"));
    assert_false(ok(&p, "alpha-11"));
    assert_false(ok(&p, "# the tokens of taskd"));
    assert_false(ok(&p, ""));
    assert_false(ok(&p, "BETA_2"));
    auth_free(&p);
}

static void test_token_lines_bad(void **state)
{
    (void)state;
    auth_policy p;
    auth_init(&p, key);
    char err[256] = "";
    static const char inner_space[] = "good\nbad token\n";
    assert_false(auth_parse_token_lines(&p, inner_space, strlen(inner_space), err, sizeof err));
    assert_non_null(strstr(err, "line 2"));
    static const char control[] = "ok\n\nx\001y\n";
    assert_false(auth_parse_token_lines(&p, control, strlen(control), err, sizeof err));
    assert_non_null(strstr(err, "line 3"));
    static const char nul[] = "a\0b";
    assert_false(auth_parse_token_lines(&p, nul, 3, err, sizeof err));
    /* no commas, as the token list has none: a token of the file is one TASKD_TOKENS can give */
    static const char comma[] = "ok\nab,cd\n";
    assert_false(auth_parse_token_lines(&p, comma, strlen(comma), err, sizeof err));
    assert_non_null(strstr(err, "line 2: a token must be visible ASCII characters, without spaces "
                                "or commas"));
    assert_false(ok(&p, "ab,cd"));
    char *long_token = malloc(AUTH_TOKEN_MAX + 2);
    memset(long_token, 'k', AUTH_TOKEN_MAX + 1);
    long_token[AUTH_TOKEN_MAX + 1] = '\0';
    assert_false(auth_add_token(&p, long_token, AUTH_TOKEN_MAX + 1, err, sizeof err));
    assert_true(auth_add_token(&p, long_token, AUTH_TOKEN_MAX, err, sizeof err));
    long_token[AUTH_TOKEN_MAX] = '\0';
    assert_true(ok(&p, long_token));
    free(long_token);
    assert_false(auth_add_token(&p, "", 0, err, sizeof err));
    auth_free(&p);
}

static void test_token_list(void **state)
{
    (void)state;
    auth_policy p;
    auth_init(&p, key);
    char err[256] = "";
    assert_true(auth_parse_token_list(&p, " one, two,,three ,", err, sizeof err));
    assert_int_equal(p.n_tokens, 3);
    assert_true(ok(&p, "one"));
    assert_true(ok(&p, "two"));
    assert_true(ok(&p, "three"));
    assert_false(ok(&p, "one,two"));
    assert_true(auth_parse_token_list(&p, "", err, sizeof err));
    assert_int_equal(p.n_tokens, 3);
    assert_false(auth_parse_token_list(&p, "four,fi ve", err, sizeof err));
    assert_non_null(strstr(err, "item 2"));
    auth_free(&p);
}

static void test_digest_compare(void **state)
{
    (void)state;
    auth_digest a = {{0x0123456789abcdefULL, 0xfedcba9876543210ULL}};
    auth_digest b = a;
    assert_true(auth_digest_equal(&a, &b));
    for (int word = 0; word < 2; word++)
        for (int bit = 0; bit < 64; bit++) {
            b = a;
            b.h[word] ^= 1ULL << bit;
            assert_false(auth_digest_equal(&a, &b));
        }
    auth_digest zero = {{0, 0}}, top = {{1ULL << 63, 0}};
    assert_true(auth_digest_equal(&zero, &zero));
    assert_false(auth_digest_equal(&zero, &top));
    assert_false(auth_digest_equal(&top, &zero));
}

static void test_tokens_are_keyed(void **state)
{
    (void)state;
    /* the same token under another key gives other digests: nothing to precompute */
    uint8_t other[AUTH_KEY_LEN];
    memcpy(other, key, sizeof other);
    other[0] ^= 1;
    auth_policy p, q;
    auth_init(&p, key);
    auth_init(&q, other);
    char err[128];
    assert_true(auth_add_token(&p, "secret", 6, err, sizeof err));
    assert_true(auth_add_token(&q, "secret", 6, err, sizeof err));
    assert_false(auth_digest_equal(&p.tokens[0], &q.tokens[0]));
    assert_true(ok(&p, "secret"));
    assert_true(ok(&q, "secret"));
    /* no plain copy of the token is kept */
    assert_null(memmem(&p, sizeof p, "secret", 6));
    assert_null(memmem(p.tokens, sizeof *p.tokens, "secret", 6));
    /* no tokens: nothing matches */
    auth_policy none;
    auth_init(&none, key);
    assert_false(ok(&none, "secret"));
    auth_free(&p);
    auth_free(&q);
    auth_free(&none);
}

/* Write a token file of this mode in dir; returns its path (static). */
static const char *token_file(const char *dir, const char *text, mode_t mode)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/tokens", dir);
    unlink(path);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
    return path;
}

static void test_token_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/taskd-auth-test.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char err[512];
    auth_policy p;
    auth_init(&p, key);

    const char *path = token_file(dir, "# comment\nt-one\n\nt-two\n", 0600);
    assert_true(auth_load_token_file(&p, path, err, sizeof err));
    assert_int_equal(p.n_tokens, 2);
    assert_true(ok(&p, "t-two"));
    auth_free(&p);

    static const mode_t refused[] = {0644, 0604, 0602, 0666};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        auth_init(&p, key);
        path = token_file(dir, "t-one\n", refused[i]);
        assert_false(auth_load_token_file(&p, path, err, sizeof err));
        assert_non_null(strstr(err, "readable or writable by others"));
        assert_non_null(strstr(err, "chmod 600"));
        assert_int_equal(p.n_tokens, 0);
        auth_free(&p);
    }
    static const mode_t allowed[] = {0400, 0640, 0660};
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++) {
        auth_init(&p, key);
        path = token_file(dir, "t-one\n", allowed[i]);
        if (!auth_load_token_file(&p, path, err, sizeof err))
            fail_msg("mode %o: %s", (unsigned)allowed[i], err);
        auth_free(&p);
    }

    auth_init(&p, key);
    path = token_file(dir, "# only comments\n\n", 0600);
    assert_false(auth_load_token_file(&p, path, err, sizeof err));
    assert_non_null(strstr(err, "holds no token"));
    path = token_file(dir, "fine\nnot fine\n", 0600);
    assert_false(auth_load_token_file(&p, path, err, sizeof err));
    assert_non_null(strstr(err, "line 2"));
    assert_false(auth_load_token_file(&p, "/nonexistent/tokens", err, sizeof err));
    assert_non_null(strstr(err, "cannot open"));
    assert_false(auth_load_token_file(&p, dir, err, sizeof err));
    assert_non_null(strstr(err, "not a regular file"));
    /* a named pipe no one writes to is refused at once: its open must not wait for a writer
     * (the alarm ends the test if it does) */
    char fifo[300];
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    alarm(10);
    assert_false(auth_load_token_file(&p, fifo, err, sizeof err));
    alarm(0);
    assert_non_null(strstr(err, "not a regular file"));
    unlink(fifo);
    auth_free(&p);

    unlink(path);
    rmdir(dir);
}

static void test_loopback(void **state)
{
    (void)state;
    static const char *const yes[] = {"127.0.0.1",      "127.1.2.3", "::1",
                                      "localhost",      "LocalHost", "::ffff:127.0.0.1",
                                      "0:0:0:0:0:0:0:1"};
    static const char *const no[] = {
        "0.0.0.0",         "::",        "10.0.0.1", "192.168.1.1",      "", "example.com",
        "::ffff:10.0.0.1", "128.0.0.1", "::2",      "localhost.example"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        if (!auth_is_loopback(yes[i]))
            fail_msg("%s is loopback", yes[i]);
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        if (auth_is_loopback(no[i]))
            fail_msg("%s is not loopback", no[i]);
    assert_false(auth_is_loopback(NULL));
}

/* Each Host of yes[] is allowed by p, and each of no[] refused. */
static void expect_hosts(const auth_policy *p, const char *const *yes, size_t n_yes,
                         const char *const *no, size_t n_no)
{
    for (size_t i = 0; i < n_yes; i++)
        if (!auth_host_allowed(p, yes[i]))
            fail_msg("Host %s is allowed", yes[i]);
    for (size_t i = 0; i < n_no; i++)
        if (auth_host_allowed(p, no[i]))
            fail_msg("Host %s is refused", no[i]);
}

static void test_hosts(void **state)
{
    (void)state;
    auth_policy p;
    auth_init(&p, key);
    /* no check configured: anything goes */
    assert_true(auth_host_allowed(&p, "evil.example"));
    p.check_host = true;
    static const char *const yes[] = {"localhost", "localhost:8080", "127.0.0.1",   "127.0.0.1:1",
                                      "[::1]",     "[::1]:65535",    "LOCALHOST:80"};
    static const char *const no[] = {"evil.example",
                                     "evil.example:8080",
                                     "127.0.0.2",
                                     "localhost.evil.example",
                                     "[::2]:80",
                                     "localhost:",
                                     "localhost:99999",
                                     "localhost:8o",
                                     "",
                                     "::1",
                                     "127.0.0.1:8080:1",
                                     "user@localhost"};
    expect_hosts(&p, yes, sizeof yes / sizeof yes[0], no, sizeof no / sizeof no[0]);
    assert_true(auth_host_allowed(&p, NULL)); /* no Host: no browser */

    char err[256];
    assert_true(
        auth_parse_hosts(&p, "taskd.internal, api.example:8443,[fd00::1]", err, sizeof err));
    assert_int_equal(p.n_hosts, 3);
    assert_true(auth_host_allowed(&p, "taskd.internal"));
    assert_true(auth_host_allowed(&p, "TASKD.internal:9000"));
    assert_true(auth_host_allowed(&p, "api.example:8443"));
    assert_false(auth_host_allowed(&p, "api.example:8444"));
    assert_false(auth_host_allowed(&p, "api.example"));
    assert_true(auth_host_allowed(&p, "[fd00::1]:80"));
    assert_true(auth_host_allowed(&p, "localhost:1")); /* the loopback names stay */
    assert_false(auth_host_allowed(&p, "evil.example"));
    assert_false(auth_parse_hosts(&p, "ok,bad host", err, sizeof err));
    assert_false(auth_parse_hosts(&p, "x:0", err, sizeof err));
    assert_false(auth_parse_hosts(&p, "http://x", err, sizeof err));
    /* a browser leaves the scheme's own port out: an entry with port 80 or 443 takes it */
    assert_true(auth_parse_hosts(&p, "tasks.example:443,plain.example:80", err, sizeof err));
    assert_true(auth_host_allowed(&p, "tasks.example"));
    assert_true(auth_host_allowed(&p, "tasks.example:443"));
    assert_false(auth_host_allowed(&p, "tasks.example:80"));
    assert_true(auth_host_allowed(&p, "plain.example"));
    assert_false(auth_host_allowed(&p, "plain.example:443"));
    assert_true(auth_parse_hosts(&p, "*", err, sizeof err));
    assert_true(auth_host_allowed(&p, "evil.example"));
    auth_free(&p);
}

/* A listener without tokens that is not loopback, and no --allowed-hosts: IP addresses are
 * answered, names are not (a rebinding page has only a name). */
static void test_ip_hosts(void **state)
{
    (void)state;
    auth_policy p;
    auth_init(&p, key);
    p.check_host = p.ip_hosts = true;
    static const char *const yes[] = {"10.0.0.5",  "10.0.0.5:8080",  "192.168.1.20:80", "[fd00::1]",
                                      "[::]:8080", "localhost:8080", "0.0.0.0"};
    static const char *const no[] = {"rebind.attacker.example:8080",
                                     "tasks.example",
                                     "10.0.0",
                                     "[10.0.0.5]",
                                     "[fd00::1",
                                     "fd00::1",
                                     "1.2.3.4.example",
                                     "[fe80::1%eth0]"};
    expect_hosts(&p, yes, sizeof yes / sizeof yes[0], no, sizeof no / sizeof no[0]);
    auth_free(&p);
}

static void test_same_origin(void **state)
{
    (void)state;
    assert_true(auth_same_origin("http://127.0.0.1:8080", "127.0.0.1:8080"));
    assert_true(auth_same_origin("http://LOCALHOST:8080", "localhost:8080"));
    assert_true(auth_same_origin("http://localhost", "localhost"));
    assert_true(auth_same_origin("http://localhost:80", "localhost"));
    assert_true(auth_same_origin("http://localhost", "localhost:80"));
    assert_true(auth_same_origin("https://api.example", "api.example:443"));
    assert_true(auth_same_origin("http://[::1]:8080", "[::1]:8080"));
    assert_false(auth_same_origin("http://127.0.0.1:8081", "127.0.0.1:8080"));
    assert_false(auth_same_origin("http://localhost:8080", "127.0.0.1:8080"));
    assert_true(auth_same_origin("https://localhost", "localhost")); /* behind a TLS proxy */
    assert_false(auth_same_origin("https://localhost", "localhost:80"));
    assert_false(auth_same_origin("http://evil.example", "localhost"));
    assert_false(auth_same_origin("null", "localhost"));
    assert_false(auth_same_origin("file://", "localhost"));
    assert_false(auth_same_origin("http://localhost/path", "localhost"));
    assert_false(auth_same_origin("http://localhost", NULL));
    assert_false(auth_same_origin(NULL, "localhost"));
    assert_false(auth_same_origin("http://", "localhost"));
}

/* ---- decisions ---- */

static auth_result check(const auth_policy *p, const char *method, const char *path,
                         const char *host, const char *origin, const char *site,
                         const char *authorization)
{
    auth_request r = {.method = method,
                      .path = path,
                      .host = host,
                      .origin = origin,
                      .sec_fetch_site = site,
                      .authorization = authorization};
    return auth_check(p, &r);
}

static void test_check_no_tokens(void **state)
{
    (void)state;
    auth_policy p;
    auth_init(&p, key);
    /* the default policy: everything passes except cross-origin writes */
    assert_int_equal(check(&p, "GET", "/tasks", "evil.example", NULL, NULL, NULL), AUTH_OK);
    assert_int_equal(check(&p, "POST", "/tasks", "x", NULL, NULL, NULL), AUTH_OK);
    assert_int_equal(check(&p, "GET", "/tasks", "x", "http://evil.example", "cross-site", NULL),
                     AUTH_OK);
    assert_int_equal(check(&p, "POST", "/tasks", "x", NULL, "cross-site", NULL), AUTH_CROSS_SITE);
    assert_int_equal(check(&p, "POST", "/tasks", "x", NULL, "Cross-Site", NULL), AUTH_CROSS_SITE);
    static const char *const unsafe[] = {"POST", "PATCH", "PUT", "DELETE"};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(check(&p, unsafe[i], "/tasks", "h:1", "http://evil.example", NULL, NULL),
                         AUTH_CROSS_ORIGIN);
        assert_int_equal(check(&p, unsafe[i], "/tasks", "h:1", "http://h:1", "same-origin", NULL),
                         AUTH_OK);
        assert_int_equal(check(&p, unsafe[i], "/tasks", "h:1", NULL, "same-site", NULL), AUTH_OK);
        assert_int_equal(check(&p, unsafe[i], "/tasks", "h:1", NULL, "none", NULL), AUTH_OK);
        assert_int_equal(check(&p, unsafe[i], "/tasks", "h:1", "null", NULL, NULL),
                         AUTH_CROSS_ORIGIN);
        assert_int_equal(check(&p, unsafe[i], "/tasks", NULL, "http://h:1", NULL, NULL),
                         AUTH_CROSS_ORIGIN);
    }
    assert_int_equal(check(&p, "HEAD", "/", "h", "http://evil", "cross-site", NULL), AUTH_OK);
    assert_int_equal(check(&p, "OPTIONS", "/", "h", "http://evil", "cross-site", NULL), AUTH_OK);
    /* a token sent to a server without tokens is ignored */
    assert_int_equal(check(&p, "GET", "/tasks", "h", NULL, NULL, "Bearer whatever"), AUTH_OK);
    auth_free(&p);
}

static void test_check_host(void **state)
{
    (void)state;
    auth_policy p;
    auth_init(&p, key);
    p.check_host = true;
    assert_int_equal(check(&p, "GET", "/tasks", "evil.example:8080", NULL, NULL, NULL),
                     AUTH_BAD_HOST);
    assert_int_equal(check(&p, "GET", "/health", "127.0.0.1:8080", NULL, NULL, NULL), AUTH_OK);
    /* a bad Host is refused before anything else is looked at */
    assert_int_equal(check(&p, "POST", "/tasks", "evil", "http://evil", "cross-site", NULL),
                     AUTH_BAD_HOST);
    assert_int_equal(check(&p, "POST", "/tasks", "localhost:1", "http://localhost:1", NULL, NULL),
                     AUTH_OK);
    auth_free(&p);
}

static void test_check_tokens(void **state)
{
    (void)state;
    auth_policy p;
    auth_init(&p, key);
    char err[128];
    assert_true(auth_parse_token_list(&p, "tok-a,tok-b", err, sizeof err));
    const char *h = "127.0.0.1:1";
    assert_int_equal(check(&p, "GET", "/tasks", h, NULL, NULL, NULL), AUTH_MISSING);
    assert_int_equal(check(&p, "GET", "/tasks", h, NULL, NULL, "Bearer tok-a"), AUTH_OK);
    assert_int_equal(check(&p, "GET", "/tasks", h, NULL, NULL, "Bearer tok-b"), AUTH_OK);
    assert_int_equal(check(&p, "GET", "/tasks", h, NULL, NULL, "bearer   tok-b  "), AUTH_OK);
    assert_int_equal(check(&p, "GET", "/tasks", h, NULL, NULL, "BEARER\ttok-a"), AUTH_OK);
    assert_int_equal(check(&p, "GET", "/tasks", h, NULL, NULL, "Bearer tok-c"), AUTH_INVALID);
    assert_int_equal(check(&p, "GET", "/tasks", h, NULL, NULL, "Bearer tok-a,tok-b"), AUTH_INVALID);
    assert_int_equal(check(&p, "GET", "/tasks", h, NULL, NULL, "Bearer tok-"), AUTH_INVALID);
    assert_int_equal(check(&p, "GET", "/tasks", h, NULL, NULL, "Bearer tok-aa"), AUTH_INVALID);
    assert_int_equal(check(&p, "GET", "/tasks", h, NULL, NULL, "Bearer"), AUTH_INVALID);
    assert_int_equal(check(&p, "GET", "/tasks", h, NULL, NULL, "Bearer "), AUTH_INVALID);
    assert_int_equal(check(&p, "GET", "/tasks", h, NULL, NULL, "Bearertok-a"), AUTH_NOT_BEARER);
    assert_int_equal(check(&p, "GET", "/tasks", h, NULL, NULL, "Basic dG9rLWE6"), AUTH_NOT_BEARER);
    assert_int_equal(check(&p, "GET", "/tasks", h, NULL, NULL, "tok-a"), AUTH_NOT_BEARER);
    assert_int_equal(check(&p, "GET", "/tasks", h, NULL, NULL, ""), AUTH_NOT_BEARER);
    /* every route that reads or writes data: metrics, health, unknown paths */
    static const char *const paths[] = {"/metrics", "/health",    "/openapi.json",
                                        "/nope",    "/dashboard", "/dashboardx/app.js",
                                        "//",       "/queues"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
        assert_int_equal(check(&p, "GET", paths[i], h, NULL, NULL, NULL), AUTH_MISSING);
    /* but the dashboard's page and files, which hold none, are read without a token */
    assert_int_equal(check(&p, "GET", "/", h, NULL, NULL, NULL), AUTH_OK);
    assert_int_equal(check(&p, "HEAD", "/", h, NULL, NULL, NULL), AUTH_OK);
    assert_int_equal(check(&p, "GET", "/dashboard/app.js", h, NULL, NULL, NULL), AUTH_OK);
    assert_int_equal(check(&p, "POST", "/", h, NULL, NULL, NULL), AUTH_MISSING);
    assert_int_equal(check(&p, "POST", "/dashboard/app.js", h, NULL, NULL, NULL), AUTH_MISSING);
    /* a cross-site write is refused even with the right token */
    assert_int_equal(check(&p, "POST", "/tasks", h, NULL, "cross-site", "Bearer tok-a"),
                     AUTH_CROSS_SITE);
    /* --metrics-public opens /metrics and /health only */
    p.metrics_public = true;
    assert_int_equal(check(&p, "GET", "/metrics", h, NULL, NULL, NULL), AUTH_OK);
    assert_int_equal(check(&p, "HEAD", "/health", h, NULL, NULL, NULL), AUTH_OK);
    assert_int_equal(check(&p, "GET", "/metrics/", h, NULL, NULL, NULL), AUTH_MISSING);
    assert_int_equal(check(&p, "GET", "/tasks", h, NULL, NULL, NULL), AUTH_MISSING);
    assert_int_equal(check(&p, "GET", "/queues", h, NULL, NULL, NULL), AUTH_MISSING);
    auth_free(&p);
}

static void test_status_and_detail(void **state)
{
    (void)state;
    static const struct {
        auth_result r;
        int status;
    } cases[] = {{AUTH_BAD_HOST, 403}, {AUTH_CROSS_SITE, 403}, {AUTH_CROSS_ORIGIN, 403},
                 {AUTH_MISSING, 401},  {AUTH_NOT_BEARER, 401}, {AUTH_INVALID, 401}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(auth_status(cases[i].r), cases[i].status);
        const char *d = auth_detail(cases[i].r);
        assert_non_null(d);
        assert_true(strlen(d) > 5);
    }
    assert_string_equal(auth_detail(AUTH_INVALID), "Invalid bearer token");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_token_lines),      cmocka_unit_test(test_token_lines_bad),
        cmocka_unit_test(test_token_list),       cmocka_unit_test(test_digest_compare),
        cmocka_unit_test(test_tokens_are_keyed), cmocka_unit_test(test_token_file),
        cmocka_unit_test(test_loopback),         cmocka_unit_test(test_hosts),
        cmocka_unit_test(test_ip_hosts),         cmocka_unit_test(test_same_origin),
        cmocka_unit_test(test_check_no_tokens),  cmocka_unit_test(test_check_host),
        cmocka_unit_test(test_check_tokens),     cmocka_unit_test(test_status_and_detail),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
