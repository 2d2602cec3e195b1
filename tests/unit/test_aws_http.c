/*
 * Unit tests for aws/aws_http against an HTTP server run inside the test
 * (support/http_stub: a thread per connection, keep-alive) that records
 * every request and answers from a per-test script (a status with headers
 * and body, no answer at all, or a closed connection). The test checks
 * each received request's SigV4 signature the way AWS does — canonical
 * request from what actually arrived, key derivation from the secret —
 * with SHA-256 and HMAC written here from FIPS 180-4 and RFC 2104, so a
 * header that curl signs but does not send (or sends but the server cannot
 * see) fails the test.
 *
 * Covered: the request's shape (POST /, Content-Type, X-Amz-Target, the
 * Authorization credential scope and signed headers, the session token,
 * the user agent, no X-Amzn-Trace-Id, no Expect), a body over 1 MiB,
 * retries on 5xx, throttling and a dropped connection, no retry on other
 * 4xx, JSON and XML error parsing, deadlines (explicit, per-thread, past,
 * a server that never answers, a refused connection, throttled or 5xx
 * until the deadline), endpoint and region configuration (an endpoint path
 * that would be signed wrong is refused), connection
 * reuse and the handle pool under concurrency, the backoff bounds, and the
 * answer's request id (every header name AWS uses for it, on errors too).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "aws/aws_http.h"
#include "core/sbuf.h"
#include "util/clock.h"
#include "support/http_stub.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/*
 * How far past its deadline a call may be seen to return: thread scheduling on
 * a loaded two-core machine under the sanitizers. Without the deadline these
 * calls would retry for seconds, so the bound still tells.
 */
#define SLACK_MS 250

#define AKID   "AKIDEXAMPLE"
#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define TOKEN  "FwoGZXIvYXdzEXAMPLE//token+with/slashes="
#define REGION "eu-west-1"

/* ---- utilities ---- */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static void clear_env(void)
{
    static const char *const vars[] = {
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_DYNAMODB",
        "AWS_ENDPOINT_URL_SNS",
        "AWS_ENDPOINT_URL_SQS",
    };
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        unsetenv(vars[i]);
}

static void set_credentials(bool token)
{
    setenv("AWS_ACCESS_KEY_ID", AKID, 1);
    setenv("AWS_SECRET_ACCESS_KEY", SECRET, 1);
    if (token)
        setenv("AWS_SESSION_TOKEN", TOKEN, 1);
    else
        unsetenv("AWS_SESSION_TOKEN");
}

/* ---- SHA-256 (FIPS 180-4) and HMAC (RFC 2104), for checking signatures ---- */

typedef struct sha256 {
    uint32_t h[8];
    uint8_t buf[64];
    size_t n;
    uint64_t total;
} sha256;

static const uint32_t sha_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static uint32_t ror(uint32_t x, int n)
{
    return (x >> n) | (x << (32 - n));
}

static void sha_block(sha256 *s, const uint8_t *p)
{
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = s->h[0], b = s->h[1], c = s->h[2], d = s->h[3], e = s->h[4], f = s->h[5],
             g = s->h[6], h = s->h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 =
            h + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) + ((e & f) ^ (~e & g)) + sha_k[i] + w[i];
        uint32_t t2 = (ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        h = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    s->h[0] += a;
    s->h[1] += b;
    s->h[2] += c;
    s->h[3] += d;
    s->h[4] += e;
    s->h[5] += f;
    s->h[6] += g;
    s->h[7] += h;
}

static void sha_init(sha256 *s)
{
    static const uint32_t h0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(s->h, h0, sizeof h0);
    s->n = 0;
    s->total = 0;
}

static void sha_update(sha256 *s, const void *data, size_t len)
{
    const uint8_t *p = data;
    s->total += len;
    while (len > 0) {
        size_t take = 64 - s->n < len ? 64 - s->n : len;
        memcpy(s->buf + s->n, p, take);
        s->n += take;
        p += take;
        len -= take;
        if (s->n == 64) {
            sha_block(s, s->buf);
            s->n = 0;
        }
    }
}

static void sha_final(sha256 *s, uint8_t out[32])
{
    uint64_t bits = s->total * 8;
    uint8_t pad = 0x80;
    sha_update(s, &pad, 1);
    pad = 0;
    while (s->n != 56)
        sha_update(s, &pad, 1);
    uint8_t len[8];
    for (int i = 0; i < 8; i++)
        len[i] = (uint8_t)(bits >> (56 - 8 * i));
    sha_update(s, len, 8);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(s->h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(s->h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(s->h[i] >> 8);
        out[4 * i + 3] = (uint8_t)s->h[i];
    }
}

static void sha_hex(const void *data, size_t len, char hex[65])
{
    sha256 s;
    uint8_t d[32];
    sha_init(&s);
    sha_update(&s, data, len);
    sha_final(&s, d);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
}

static void hmac(const uint8_t *key, size_t klen, const void *msg, size_t mlen, uint8_t out[32])
{
    uint8_t k[64] = {0}, ipad[64], opad[64], inner[32];
    if (klen > 64) {
        sha256 s;
        sha_init(&s);
        sha_update(&s, key, klen);
        sha_final(&s, k);
    } else {
        memcpy(k, key, klen);
    }
    for (int i = 0; i < 64; i++) {
        ipad[i] = k[i] ^ 0x36;
        opad[i] = k[i] ^ 0x5c;
    }
    sha256 s;
    sha_init(&s);
    sha_update(&s, ipad, 64);
    sha_update(&s, msg, mlen);
    sha_final(&s, inner);
    sha_init(&s);
    sha_update(&s, opad, 64);
    sha_update(&s, inner, 32);
    sha_final(&s, out);
}

/* ---- the in-test server (support/http_stub), answering as AWS does ---- */

/* A server answering from script, its last answer repeating (none: 200 "{}"), with a request id. */
static http_stub *server_start(const http_stub_reply *script, size_t n)
{
    static const http_stub_reply ok = {.status = 200, .body = "{}"};
    http_stub_options o = {.script = n ? script : &ok,
                           .script_len = n ? n : 1,
                           .headers = "x-amzn-RequestId: 66916324-67ca-54bb-a410-3f567a7a0571\r\n"};
    return http_stub_start(&o);
}

/* The value of header name of rq without surrounding blanks, copied into out; false if absent. */
static bool head_get(const http_stub_request *rq, const char *name, char *out, size_t outlen)
{
    const char *v;
    size_t vl;
    if (!http_stub_header_find(rq, name, &v, &vl))
        return false;
    while (vl > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        vl--;
    }
    while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
        vl--;
    if (out) {
        size_t cl = vl < outlen - 1 ? vl : outlen - 1;
        memcpy(out, v, cl);
        out[cl] = '\0';
    }
    return true;
}

/* Point the environment at s and make a client for service. */
static aws_client *client_for(http_stub *s, aws_service service, bool token)
{
    clear_env();
    set_credentials(token);
    setenv("AWS_REGION", REGION, 1);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", http_stub_port(s));
    setenv("AWS_ENDPOINT_URL", url, 1);
    char err[256] = "";
    aws_client *c = aws_client_new(service, err, sizeof err);
    if (!c)
        fail_msg("aws_client_new: %s", err);
    return c;
}

static int64_t in_ms(int64_t ms)
{
    return clock_unix_ms() + ms;
}

/* ---- SigV4 check of a received request ---- */

typedef struct auth {
    char akid[64], date[16], region[64], service[32];
    char signed_headers[512];
    char signature[80];
} auth;

static void parse_auth(const http_stub_request *rq, auth *a)
{
    char v[1024];
    assert_true(head_get(rq, "Authorization", v, sizeof v));
    memset(a, 0, sizeof *a);
    int n = sscanf(v,
                   "AWS4-HMAC-SHA256 Credential=%63[^/]/%15[^/]/%63[^/]/%31[^/]/aws4_request, "
                   "SignedHeaders=%511[^,], Signature=%79s",
                   a->akid, a->date, a->region, a->service, a->signed_headers, a->signature);
    if (n != 6)
        fail_msg("Authorization not understood: %s", v);
}

/* Is name one of the ';'-separated signed headers? */
static bool is_signed(const auth *a, const char *name)
{
    size_t nl = strlen(name);
    for (const char *p = a->signed_headers; *p;) {
        const char *e = strchr(p, ';');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == nl && strncmp(p, name, nl) == 0)
            return true;
        p = e ? e + 1 : p + len;
    }
    return false;
}

/* Recompute the signature from what the server received, as AWS does. */
static void assert_signature_valid(const http_stub_request *rq)
{
    auth a;
    parse_auth(rq, &a);
    char amz_date[32];
    assert_true(head_get(rq, "X-Amz-Date", amz_date, sizeof amz_date));
    assert_int_equal(strlen(amz_date), 16);
    assert_memory_equal(amz_date, a.date, 8);

    size_t cap = 8192, len = 0;
    char *canon = malloc(cap);
    assert_non_null(canon);
    len += (size_t)snprintf(canon + len, cap - len, "%s\n%s\n\n", rq->method, rq->path);
    char names[512];
    snprintf(names, sizeof names, "%s", a.signed_headers);
    char *save = NULL;
    for (char *name = strtok_r(names, ";", &save); name; name = strtok_r(NULL, ";", &save)) {
        char value[2048];
        if (!head_get(rq, name, value, sizeof value))
            fail_msg("signed header %s was not received", name);
        /* collapse runs of spaces, as the canonical form wants */
        char *w = value;
        for (char *r = value; *r; r++)
            if (!(*r == ' ' && w > value && w[-1] == ' '))
                *w++ = *r;
        *w = '\0';
        len += (size_t)snprintf(canon + len, cap - len, "%s:%s\n", name, value);
        assert_true(len < cap);
    }
    char body_hash[65];
    sha_hex(rq->body, rq->body_len, body_hash);
    len += (size_t)snprintf(canon + len, cap - len, "\n%s\n%s", a.signed_headers, body_hash);
    assert_true(len < cap);

    char canon_hash[65];
    sha_hex(canon, len, canon_hash);
    free(canon);
    char sts[512];
    int sl = snprintf(sts, sizeof sts, "AWS4-HMAC-SHA256\n%s\n%s/%s/%s/aws4_request\n%s", amz_date,
                      a.date, a.region, a.service, canon_hash);

    uint8_t k[32];
    char secret[128];
    snprintf(secret, sizeof secret, "AWS4%s", SECRET);
    hmac((const uint8_t *)secret, strlen(secret), a.date, strlen(a.date), k);
    hmac(k, 32, a.region, strlen(a.region), k);
    hmac(k, 32, a.service, strlen(a.service), k);
    hmac(k, 32, "aws4_request", 12, k);
    uint8_t sig[32];
    hmac(k, 32, sts, (size_t)sl, sig);
    char sig_hex[65];
    for (int i = 0; i < 32; i++)
        snprintf(sig_hex + 2 * i, 3, "%02x", sig[i]);
    assert_string_equal(sig_hex, a.signature);
}

/* ---- tests: pure functions ---- */

static void test_sha256_known_answers(void **state)
{
    (void)state;
    char hex[65];
    sha_hex("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    sha_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    /* RFC 4231 test case 2 */
    uint8_t mac[32];
    hmac((const uint8_t *)"Jefe", 4, "what do ya want for nothing?", 28, mac);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", mac[i]);
    assert_string_equal(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

static void test_backoff_bounds(void **state)
{
    (void)state;
    for (int attempt = 1; attempt <= 40; attempt++) {
        int64_t ceiling = 25;
        for (int i = 1; i < attempt && ceiling < 2000; i++)
            ceiling *= 2;
        if (ceiling > 2000)
            ceiling = 2000;
        assert_int_equal(aws_backoff_ms(attempt, 25, 2000, 0), 0);
        assert_int_equal(aws_backoff_ms(attempt, 25, 2000, UINT32_MAX), ceiling);
        uint32_t x = 2463534242u;
        for (int i = 0; i < 200; i++) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            int64_t b = aws_backoff_ms(attempt, 25, 2000, x);
            assert_true(b >= 0 && b <= ceiling);
        }
    }
    assert_int_equal(aws_backoff_ms(1, 25, 2000, UINT32_MAX / 2), 12);
    assert_int_equal(aws_backoff_ms(0, 25, 2000, UINT32_MAX), 25);
    assert_int_equal(aws_backoff_ms(-3, 25, 2000, UINT32_MAX), 25);
    assert_int_equal(aws_backoff_ms(3, 25, 60, UINT32_MAX), 60);
    assert_int_equal(aws_backoff_ms(1000000, 25, 2000, UINT32_MAX), 2000);
    assert_int_equal(aws_backoff_ms(2, 0, 2000, UINT32_MAX), 0);
    assert_true(aws_backoff_ms(200, 1, INT64_MAX, UINT32_MAX) > 0);
}

static void test_throttling_names_and_rc_names(void **state)
{
    (void)state;
    static const char *const yes[] = {
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "Throttling",
        "Throttled",
        "RequestThrottled",
        "TooManyRequestsException",
        "TransactionInProgressException",
        "LimitExceededException",
        "KMSThrottling",
        "KmsThrottled",
    };
    static const char *const no[] = {
        "ConditionalCheckFailedException",
        "ValidationException",
        "ResourceNotFoundException",
        "AccessDeniedException",
        "QueueDoesNotExist",
        "InvalidParameter",
        "OverLimit",
        "throttlingexception",
        "",
        "ThrottlingExceptionX",
    };
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        assert_true(aws_error_is_throttling(yes[i]));
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        assert_false(aws_error_is_throttling(no[i]));
    assert_false(aws_error_is_throttling(NULL));
    assert_string_equal(aws_rc_name(AWS_OK), "ok");
    assert_string_equal(aws_rc_name(AWS_ERR_THROTTLED), "throttled");
    assert_string_equal(aws_rc_name(AWS_ERR_TIMEOUT), "timeout");
    assert_string_equal(aws_rc_name((aws_rc)99), "unknown");
}

static void *read_deadline(void *arg)
{
    *(int64_t *)arg = aws_deadline();
    return NULL;
}

static void test_deadline_is_per_thread(void **state)
{
    (void)state;
    assert_int_equal(aws_deadline(), 0);
    int64_t d = in_ms(5000);
    aws_set_deadline(d);
    assert_int_equal(aws_deadline(), d);
    int64_t other = -1;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, read_deadline, &other), 0);
    pthread_join(t, NULL);
    assert_int_equal(other, 0);
    aws_set_deadline(0);
    assert_int_equal(aws_deadline(), 0);
    int64_t now = clock_unix_ms();
    assert_true(now > (int64_t)1600000000000 && now < (int64_t)4000000000000);
}

/* ---- tests: configuration ---- */

static aws_client *client_from_env(aws_service svc, char *err, size_t errlen)
{
    err[0] = '\0';
    return aws_client_new(svc, err, errlen);
}

static void test_endpoint_precedence(void **state)
{
    (void)state;
    char err[256];
    clear_env();
    set_credentials(false);
    setenv("AWS_REGION", "eu-central-1", 1);
    setenv("AWS_ENDPOINT_URL", "http://localhost:4566", 1);
    setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:8000", 1);

    aws_client *c = client_from_env(AWS_DYNAMODB, err, sizeof err);
    assert_non_null(c);
    assert_string_equal(aws_client_endpoint(c), "http://127.0.0.1:8000/");
    assert_string_equal(aws_client_region(c), "eu-central-1");
    aws_client_free(c);

    c = client_from_env(AWS_SQS, err, sizeof err);
    assert_non_null(c);
    assert_string_equal(aws_client_endpoint(c), "http://localhost:4566/");
    aws_client_free(c);

    setenv("AWS_ENDPOINT_URL_SNS", "https://sns.example.test:9443/base/", 1);
    c = client_from_env(AWS_SNS, err, sizeof err);
    assert_non_null(c);
    assert_string_equal(aws_client_endpoint(c), "https://sns.example.test:9443/base/");
    aws_client_free(c);

    /* an empty variable counts as unset */
    setenv("AWS_ENDPOINT_URL_DYNAMODB", "", 1);
    c = client_from_env(AWS_DYNAMODB, err, sizeof err);
    assert_non_null(c);
    assert_string_equal(aws_client_endpoint(c), "http://localhost:4566/");
    aws_client_free(c);
}

static void test_default_endpoint_and_region(void **state)
{
    (void)state;
    char err[256];
    clear_env();
    set_credentials(false);
    aws_client *c = client_from_env(AWS_DYNAMODB, err, sizeof err);
    assert_non_null(c);
    assert_string_equal(aws_client_region(c), "us-east-1");
    assert_string_equal(aws_client_endpoint(c), "https://dynamodb.us-east-1.amazonaws.com/");
    aws_client_free(c);

    setenv("AWS_DEFAULT_REGION", "ap-southeast-2", 1);
    c = client_from_env(AWS_SQS, err, sizeof err);
    assert_non_null(c);
    assert_string_equal(aws_client_endpoint(c), "https://sqs.ap-southeast-2.amazonaws.com/");
    aws_client_free(c);

    setenv("AWS_REGION", "eu-west-1", 1); /* beats AWS_DEFAULT_REGION */
    c = client_from_env(AWS_SNS, err, sizeof err);
    assert_non_null(c);
    assert_string_equal(aws_client_region(c), "eu-west-1");
    assert_string_equal(aws_client_endpoint(c), "https://sns.eu-west-1.amazonaws.com/");
    aws_client_free(c);

    setenv("AWS_REGION", "cn-north-1", 1);
    c = client_from_env(AWS_DYNAMODB, err, sizeof err);
    assert_non_null(c);
    assert_string_equal(aws_client_endpoint(c), "https://dynamodb.cn-north-1.amazonaws.com.cn/");
    aws_client_free(c);
}

static void test_missing_credentials(void **state)
{
    (void)state;
    char err[256];
    clear_env();
    assert_null(client_from_env(AWS_DYNAMODB, err, sizeof err));
    assert_non_null(strstr(err, "AWS_ACCESS_KEY_ID"));

    setenv("AWS_ACCESS_KEY_ID", AKID, 1);
    assert_null(client_from_env(AWS_SQS, err, sizeof err));
    assert_non_null(strstr(err, "AWS_SECRET_ACCESS_KEY"));

    clear_env();
    setenv("AWS_SECRET_ACCESS_KEY", SECRET, 1);
    assert_null(client_from_env(AWS_SNS, err, sizeof err));
    assert_true(err[0] != '\0');

    /* a session token alone is not credentials; a token with a line break is refused */
    set_credentials(false);
    setenv("AWS_SESSION_TOKEN", "abc\r\nX-Evil: 1", 1);
    assert_null(client_from_env(AWS_SNS, err, sizeof err));
    assert_non_null(strstr(err, "AWS_SESSION_TOKEN"));
}

static void test_malformed_configuration(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "localhost:8000", "ftp://localhost/", "http://",     "http:///x", "http://h:8000/?a=b",
        "http://h/#frag", "http://u:p@h/",    "http://h x/", "not a url", "://h",
    };
    char err[256];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        clear_env();
        set_credentials(false);
        setenv("AWS_ENDPOINT_URL", bad[i], 1);
        aws_client *c = client_from_env(AWS_DYNAMODB, err, sizeof err);
        if (c)
            fail_msg("accepted endpoint %s as %s", bad[i], aws_client_endpoint(c));
        assert_non_null(strstr(err, "AWS_ENDPOINT_URL"));

        /* the service's own variable is checked the same way */
        unsetenv("AWS_ENDPOINT_URL");
        setenv("AWS_ENDPOINT_URL_SQS", bad[i], 1);
        assert_null(client_from_env(AWS_SQS, err, sizeof err));
        assert_non_null(strstr(err, "AWS_ENDPOINT_URL_SQS"));
    }
    /* a part that may hold a secret is named, never shown */
    static const struct {
        const char *url, *part, *shown;
    } secret[] = {
        {"https://AKIAEXAMPLE:wJalrSECRET@dynamodb.local/", "user info",
         "https://<user info>@dynamodb.local/"},
        {"https://dynamodb.local/?X-Amz-Security-Token=SECRET", "a query",
         "https://dynamodb.local/?..."},
        {"https://dynamodb.local/#SECRET", "a fragment", "https://dynamodb.local/#..."},
        {"ftp://user:SECRET@h/?SECRET", "http://", "ftp://<user info>@h/?..."},
        /* a password holding '@' (libcurl takes no such URL): the user info ends at the last */
        {"https://AKIAEXAMPLE:wJalr@SECRET@dynamodb.local/", "not an http:// or https:// URL",
         "https://<user info>@dynamodb.local/"},
        /* a "://" in the query starts no authority */
        {"http?SECRET://user@dynamodb.local/", "not an http:// or https:// URL", ": http?..."},
        {"https://AKIAEXAMPLE:LONG@dynamodb.local/?X-Amz-Security-Token=SECRET", "user info",
         "https://<user info>@dynamodb.local/?..."},
    };
    for (size_t i = 0; i < sizeof secret / sizeof secret[0]; i++) {
        clear_env();
        set_credentials(false);
        /* LONG: a password of 300 bytes, past what the message shows of a URL */
        char url[512];
        const char *longpw = strstr(secret[i].url, "LONG");
        if (longpw)
            snprintf(url, sizeof url, "%.*s%0300d%s", (int)(longpw - secret[i].url), secret[i].url,
                     0, longpw + 4);
        else
            snprintf(url, sizeof url, "%s", secret[i].url);
        setenv("AWS_ENDPOINT_URL_DYNAMODB", url, 1);
        assert_null(client_from_env(AWS_DYNAMODB, err, sizeof err));
        if (strstr(err, "SECRET") || !strstr(err, secret[i].part) || !strstr(err, secret[i].shown))
            fail_msg("endpoint %s refused as: %s", secret[i].url, err);
    }
    clear_env();
    set_credentials(false);
    setenv("AWS_REGION", "eu-west-1:evil", 1);
    assert_null(client_from_env(AWS_DYNAMODB, err, sizeof err));
    assert_non_null(strstr(err, "AWS_REGION"));

    /* a path that libcurl's SigV4 would sign otherwise than AWS checks it is refused, saying why */
    static const char *const bad_paths[] = {
        "http://127.0.0.1:8000/some%20path/x",
        "http://127.0.0.1:8000/%7Euser/",
        "http://h/a:b",
        "http://h/a//b",
        "https://h/x@y/",
    };
    for (size_t i = 0; i < sizeof bad_paths / sizeof bad_paths[0]; i++) {
        clear_env();
        set_credentials(false);
        setenv("AWS_ENDPOINT_URL_DYNAMODB", bad_paths[i], 1);
        aws_client *c = client_from_env(AWS_DYNAMODB, err, sizeof err);
        if (c)
            fail_msg("accepted endpoint %s as %s", bad_paths[i], aws_client_endpoint(c));
        assert_non_null(strstr(err, "AWS_ENDPOINT_URL_DYNAMODB"));
        assert_non_null(strstr(err, "path"));
    }
    /* one of unreserved characters is kept as it is */
    clear_env();
    set_credentials(false);
    setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:8000/v1/tasks_db-2.x~y", 1);
    aws_client *c = client_from_env(AWS_DYNAMODB, err, sizeof err);
    assert_non_null(c);
    assert_string_equal(aws_client_endpoint(c), "http://127.0.0.1:8000/v1/tasks_db-2.x~y");
    aws_client_free(c);

    /* upper-case scheme is fine and normalized */
    clear_env();
    set_credentials(false);
    setenv("AWS_ENDPOINT_URL", "HTTP://127.0.0.1:8000", 1);
    c = client_from_env(AWS_DYNAMODB, err, sizeof err);
    assert_non_null(c);
    assert_string_equal(aws_client_endpoint(c), "http://127.0.0.1:8000/");
    aws_client_free(c);
}

/*
 * The endpoint a refusal shows is cut where a character ends: its 200 bytes at most before the
 * user info and as many from there (here "x" and 66 '€' of 3 bytes, then "http://h/" and 63,
 * where byte 200 is inside the next '€'), all of it in a message long enough.
 */
static void test_a_shown_endpoint_is_cut_in_whole_characters(void **state)
{
    (void)state;
    static const char euro[] = "\xe2\x82\xac";
    char url[1024], want[1024], err[1024];
    /* a scheme of 1 + 70 '€': not http://, and user info to hide */
    str_join(url, sizeof url, "x", NULL);
    for (int i = 0; i < 70; i++)
        strcat(url, euro);
    strcat(url, "://user:SECRET@h/");
    str_join(want, sizeof want, "x", NULL);
    for (int i = 0; i < 66; i++)
        strcat(want, euro);
    strcat(want, "<user info>@h/");
    clear_env();
    set_credentials(false);
    setenv("AWS_ENDPOINT_URL_DYNAMODB", url, 1);
    assert_null(client_from_env(AWS_DYNAMODB, err, sizeof err));
    if (!utf8_valid(err, strlen(err)) || !strstr(err, want) || strstr(err, "SECRET"))
        fail_msg("endpoint refused as: %s", err);

    /* a path of 100 '€', which is not signable */
    str_join(url, sizeof url, "http://h/", NULL);
    for (int i = 0; i < 100; i++)
        strcat(url, euro);
    str_join(want, sizeof want, "http://h/", NULL);
    for (int i = 0; i < 63; i++)
        strcat(want, euro);
    clear_env();
    set_credentials(false);
    setenv("AWS_ENDPOINT_URL_DYNAMODB", url, 1);
    assert_null(client_from_env(AWS_DYNAMODB, err, sizeof err));
    size_t len = strlen(err), wlen = strlen(want);
    if (!utf8_valid(err, len) || len < wlen || strcmp(err + len - wlen, want) != 0)
        fail_msg("endpoint refused as: %s", err);
    clear_env();
}

/* ---- tests: requests and answers ---- */

static void test_json_call_request_shape(void **state)
{
    (void)state;
    http_stub_reply script[] = {{.status = 200,
                                 .headers = "Content-Type: application/x-amz-json-1.0\r\n",
                                 .body = "{\"Item\":{\"id\":{\"S\":\"a\"}}}"}};
    http_stub *s = server_start(script, 1);
    aws_client *c = client_for(s, AWS_DYNAMODB, true);
    const char *body = "{\"TableName\":\"tasks\",\"Key\":{\"id\":{\"S\":\"a\"}}}";
    aws_response r;
    aws_rc rc = aws_json_call(c, "DynamoDB_20120810.GetItem", body, strlen(body), in_ms(2000), &r);
    assert_int_equal(rc, AWS_OK);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.attempts, 1);
    assert_string_equal(r.body, "{\"Item\":{\"id\":{\"S\":\"a\"}}}");
    assert_int_equal(r.body_len, strlen(r.body));
    assert_string_equal(r.error_type, "");
    assert_null(r.error_message);
    aws_response_free(&r);

    assert_int_equal(http_stub_count(s), 1);
    const http_stub_request *rq = http_stub_request_at(s, 0);
    char v[1024];
    assert_string_equal(rq->method, "POST");
    assert_string_equal(rq->path, "/");
    assert_true(head_get(rq, "X-Amz-Target", v, sizeof v));
    assert_string_equal(v, "DynamoDB_20120810.GetItem");
    assert_true(head_get(rq, "Content-Type", v, sizeof v));
    assert_string_equal(v, "application/x-amz-json-1.0");
    assert_true(head_get(rq, "X-Amz-Security-Token", v, sizeof v));
    assert_string_equal(v, TOKEN);
    assert_true(head_get(rq, "User-Agent", v, sizeof v));
    assert_string_equal(v, "taskd/" TASKD_VERSION);
    assert_false(head_get(rq, "X-Amzn-Trace-Id", NULL, 0));
    assert_false(head_get(rq, "Expect", NULL, 0));
    assert_int_equal(rq->body_len, strlen(body));
    assert_memory_equal(rq->body, body, rq->body_len);

    auth a;
    parse_auth(rq, &a);
    assert_string_equal(a.akid, AKID);
    assert_string_equal(a.region, REGION);
    assert_string_equal(a.service, "dynamodb");
    assert_string_equal(a.signed_headers,
                        "content-type;host;x-amz-date;x-amz-security-token;x-amz-target");
    assert_false(is_signed(&a, "user-agent"));
    assert_signature_valid(rq);

    aws_client_free(c);
    http_stub_stop(s);
}

static void test_query_call_request_shape(void **state)
{
    (void)state;
    http_stub_reply script[] = {{.status = 200,
                                 .headers = "Content-Type: text/xml\r\n",
                                 .body =
                                     "<PublishResponse><PublishResult><MessageId>m-1</MessageId>"
                                     "</PublishResult></PublishResponse>"}};
    http_stub *s = server_start(script, 1);
    aws_client *c = client_for(s, AWS_SNS, false);
    const char *form = "Action=Publish&Version=2010-03-31&TopicArn=arn%3Aaws%3Asns%3Aeu-west-1%3A"
                       "123456789012%3Atasks&Message=%7B%7D";
    aws_response r;
    assert_int_equal(aws_query_call(c, form, strlen(form), in_ms(2000), &r), AWS_OK);
    assert_non_null(strstr(r.body, "<MessageId>m-1</MessageId>"));
    aws_response_free(&r);

    const http_stub_request *rq = http_stub_request_at(s, 0);
    char v[256];
    assert_string_equal(rq->method, "POST");
    assert_string_equal(rq->path, "/");
    assert_true(head_get(rq, "Content-Type", v, sizeof v));
    assert_string_equal(v, "application/x-www-form-urlencoded; charset=utf-8");
    assert_false(head_get(rq, "X-Amz-Target", NULL, 0));
    assert_false(head_get(rq, "X-Amz-Security-Token", NULL, 0));
    assert_false(head_get(rq, "X-Amzn-Trace-Id", NULL, 0));
    assert_int_equal(rq->body_len, strlen(form));
    assert_memory_equal(rq->body, form, rq->body_len);
    auth a;
    parse_auth(rq, &a);
    assert_string_equal(a.service, "sns");
    assert_string_equal(a.signed_headers, "content-type;host;x-amz-date");
    assert_signature_valid(rq);

    aws_client_free(c);
    http_stub_stop(s);
}

/*
 * A body over 1 MiB, for which curl would send "Expect: 100-continue" and wait a second for the
 * "100 Continue", which a server may never send (this one does not), is sent at once, signed.
 * With libcurl 8.3.0 or newer the request has no Expect header, so no wait can be. With an older
 * one the header goes, unsigned, and the body follows the head without curl's wait: its first
 * bytes would come at least 1000 ms after the head (curl's default wait), where without it they
 * come with the head or right after it, however loaded the machine. The call's own time, which
 * a loaded machine stretches, is not bounded.
 */
static void test_large_body_is_signed_without_expect(void **state)
{
    (void)state;
    static const http_stub_reply ok = {.status = 200, .body = "{}"};
    http_stub_options o = {.script = &ok, .script_len = 1, .no_continue = true};
    http_stub *s = http_stub_start(&o);
    aws_client *c = client_for(s, AWS_SQS, true);
    size_t n = 1536 * 1024;
    char *body = malloc(n);
    assert_non_null(body);
    for (size_t i = 0; i < n; i++)
        body[i] = (char)('a' + i % 26);
    aws_response r;
    assert_int_equal(aws_json_call(c, "AmazonSQS.SendMessage", body, n, in_ms(30000), &r), AWS_OK);
    aws_response_free(&r);

    assert_int_equal(http_stub_count(s), 1);
    const http_stub_request *rq = http_stub_request_at(s, 0);
    assert_int_equal(rq->body_len, n);
    assert_memory_equal(rq->body, body, n);
    auth a;
    parse_auth(rq, &a);
    assert_false(is_signed(&a, "expect"));
    assert_signature_valid(rq);
    /* libcurl before 8.3.0 cannot drop the header without signing it (see aws_http.c) */
    if (curl_version_info(CURLVERSION_NOW)->version_num >= 0x080300)
        assert_false(head_get(rq, "Expect", NULL, 0));
    else if (rq->body_at_ms - rq->head_at_ms >= 1000)
        fail_msg("the body began %lld ms after the head: curl waited for a 100 Continue",
                 (long long)(rq->body_at_ms - rq->head_at_ms));
    free(body);
    aws_client_free(c);
    http_stub_stop(s);
}

static void test_retry_5xx_then_ok(void **state)
{
    (void)state;
    http_stub_reply script[] = {
        {.status = 500,
         .body = "{\"__type\":\"com.amazonaws.dynamodb.v20120810#InternalServerError\"}"},
        {.status = 503,
         .body = "{\"__type\":\"com.amazonaws.dynamodb.v20120810#ServiceUnavailable\"}"},
        {.status = 200, .body = "{}"},
    };
    http_stub *s = server_start(script, 3);
    aws_client *c = client_for(s, AWS_DYNAMODB, false);
    aws_response r;
    assert_int_equal(aws_json_call(c, "DynamoDB_20120810.PutItem", "{}", 2, in_ms(3000), &r),
                     AWS_OK);
    assert_int_equal(r.attempts, 3);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.error_type, "");
    aws_response_free(&r);
    assert_int_equal(http_stub_count(s), 3);
    for (int i = 0; i < 3; i++) {
        assert_string_equal(http_stub_request_at(s, i)->body, "{}");
        assert_signature_valid(http_stub_request_at(s, i));
    }
    aws_client_free(c);
    http_stub_stop(s);
}

static void test_retry_throttling_then_ok(void **state)
{
    (void)state;
    http_stub_reply script[] = {
        {.status = 400,
         .body = "{\"__type\":\"com.amazon.coral.availability#ThrottlingException\","
                 "\"message\":\"Rate exceeded\"}"},
        {.status = 400,
         .body = "{\"__type\":\"com.amazonaws.dynamodb.v20120810#"
                 "ProvisionedThroughputExceededException\","
                 "\"message\":\"slow down\"}"},
        {.status = 200, .body = "{\"Attributes\":{}}"},
    };
    http_stub *s = server_start(script, 3);
    aws_client *c = client_for(s, AWS_DYNAMODB, false);
    aws_response r;
    assert_int_equal(aws_json_call(c, "DynamoDB_20120810.UpdateItem", "{}", 2, in_ms(3000), &r),
                     AWS_OK);
    assert_int_equal(r.attempts, 3);
    assert_string_equal(r.body, "{\"Attributes\":{}}");
    assert_null(r.error_message);
    aws_response_free(&r);
    aws_client_free(c);
    http_stub_stop(s);
}

static void test_client_error_is_not_retried(void **state)
{
    (void)state;
    http_stub_reply script[] = {
        {.status = 400,
         .headers = "Content-Type: application/x-amz-json-1.0\r\n",
         .body =
             "{\"__type\": \"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException\",\n"
             " \"message\": \"The conditional request failed\"}"},
        {.status = 200, .body = "{}"},
    };
    http_stub *s = server_start(script, 2);
    aws_client *c = client_for(s, AWS_DYNAMODB, false);
    aws_response r;
    assert_int_equal(aws_json_call(c, "DynamoDB_20120810.PutItem", "{}", 2, in_ms(3000), &r),
                     AWS_ERR_CLIENT);
    assert_int_equal(r.attempts, 1);
    assert_int_equal(r.status, 400);
    assert_string_equal(r.error_type, "ConditionalCheckFailedException");
    assert_string_equal(r.error_message, "The conditional request failed");
    assert_non_null(strstr(r.body, "ConditionalCheckFailedException"));
    aws_response_free(&r);
    assert_null(r.body);
    assert_null(r.error_message);
    assert_int_equal(http_stub_count(s), 1);
    aws_client_free(c);
    http_stub_stop(s);
}

static void test_json_error_variants(void **state)
{
    (void)state;
    http_stub_reply script[] = {
        /* "Message", a type with no '#' and a ":" suffix */
        {.status = 400,
         .body = "{\"__type\":\"ValidationException:http://internal.amazon.com/coral/\","
                 "\"Message\":\"One or more parameter values were invalid\"}"},
        /* SQS: __type first, the x-amzn-query-error header only as a fall-back */
        {.status = 400,
         .headers = "x-amzn-query-error: AWS.SimpleQueueService.NonExistentQueue;Sender\r\n",
         .body = "{\"__type\":\"com.amazonaws.sqs#QueueDoesNotExist\","
                 "\"message\":\"The specified queue does not exist.\"}"},
        {.status = 400,
         .headers = "x-amzn-query-error: AWS.SimpleQueueService.NonExistentQueue;Sender\r\n",
         .body = "{\"message\":\"The specified queue does not exist.\"}"},
        /* neither: no type, a body that is not JSON */
        {.status = 403, .body = "Forbidden"},
    };
    http_stub *s = server_start(script, 4);
    aws_client *c = client_for(s, AWS_SQS, false);
    aws_response r;

    assert_int_equal(aws_json_call(c, "AmazonSQS.SendMessage", "{}", 2, in_ms(2000), &r),
                     AWS_ERR_CLIENT);
    assert_string_equal(r.error_type, "ValidationException");
    assert_string_equal(r.error_message, "One or more parameter values were invalid");
    aws_response_free(&r);

    assert_int_equal(aws_json_call(c, "AmazonSQS.SendMessage", "{}", 2, in_ms(2000), &r),
                     AWS_ERR_CLIENT);
    assert_string_equal(r.error_type, "QueueDoesNotExist");
    assert_string_equal(r.error_message, "The specified queue does not exist.");
    aws_response_free(&r);

    assert_int_equal(aws_json_call(c, "AmazonSQS.SendMessage", "{}", 2, in_ms(2000), &r),
                     AWS_ERR_CLIENT);
    assert_string_equal(r.error_type, "AWS.SimpleQueueService.NonExistentQueue");
    assert_string_equal(r.error_message, "The specified queue does not exist.");
    aws_response_free(&r);

    assert_int_equal(aws_json_call(c, "AmazonSQS.SendMessage", "{}", 2, in_ms(2000), &r),
                     AWS_ERR_CLIENT);
    assert_int_equal(r.status, 403);
    assert_string_equal(r.error_type, "");
    assert_string_equal(r.error_message, "HTTP 403 with no error named: Forbidden");
    assert_string_equal(r.body, "Forbidden");
    aws_response_free(&r);

    aws_client_free(c);
    http_stub_stop(s);
}

/* An error answer that gives no message says its HTTP status all the same, to the caller and
 * through it to the log: with the type a header gave, or the beginning of a body that named no
 * error (on one line, cut, the white space around it left out), or that it had no body, or one
 * of white space alone (where it said "with no error named: " and the blanks). */
static void test_error_without_a_message_says_its_status(void **state)
{
    (void)state;
    char long_body[400];
    memset(long_body, 'y', sizeof long_body - 1);
    long_body[sizeof long_body - 1] = '\0';
    http_stub_reply script[] = {
        {.status = 400},
        {.status = 400,
         .headers =
             "x-amzn-ErrorType: AccessDeniedException:http://internal.amazon.com/coral/\r\n"},
        {.status = 403, .body = "Access\r\nDenied"},
        {.status = 404, .body = long_body},
        {.status = 400, .body = "{\"__type\":\"com.amazon.coral.validate#ValidationException\"}"},
        {.status = 403, .body = " \r\n\t \n"},
        {.status = 404, .body = "\n  Not Found \r\n"},
    };
    http_stub *s = server_start(script, 7);
    aws_client *c = client_for(s, AWS_DYNAMODB, false);
    static const char *const said[] = {
        "HTTP 400 with no body",
        "HTTP 400, AccessDeniedException, with no message",
        "HTTP 403 with no error named: Access??Denied",
        NULL, /* the long body, cut */
        "HTTP 400, ValidationException, with no message",
        "HTTP 403 with a body of white space alone",
        "HTTP 404 with no error named: Not Found",
    };
    for (size_t i = 0; i < sizeof said / sizeof said[0]; i++) {
        aws_response r;
        aws_rc rc = aws_json_call(c, "DynamoDB_20120810.GetItem", "{}", 2, in_ms(2000), &r);
        assert_int_equal(rc, AWS_ERR_CLIENT);
        assert_non_null(r.error_message);
        if (said[i])
            assert_string_equal(r.error_message, said[i]);
        else
            assert_true(strncmp(r.error_message, "HTTP 404 with no error named: yyy", 33) == 0 &&
                        strlen(r.error_message) < 200 &&
                        strcmp(r.error_message + strlen(r.error_message) - 3, "...") == 0);
        aws_response_free(&r);
    }
    aws_client_free(c);
    http_stub_stop(s);
}

static void test_sns_xml_error(void **state)
{
    (void)state;
    http_stub_reply script[] = {
        {.status = 400,
         .headers = "Content-Type: text/xml\r\n",
         .body =
             "<ErrorResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\">\n"
             "  <Error><Type>Sender</Type><Code>InvalidParameter</Code>"
             "<Message>Invalid parameter: &lt;Message&gt; &amp; &quot;Subject&quot; &apos;x&apos; "
             "&#233;&#x263A;</Message></Error>\n"
             "  <RequestId>d74b8436-ae13-5ab4-a9ff-ce54dfea72a0</RequestId>\n"
             "</ErrorResponse>"},
    };
    http_stub *s = server_start(script, 1);
    aws_client *c = client_for(s, AWS_SNS, false);
    aws_response r;
    const char *form = "Action=Publish&Version=2010-03-31";
    assert_int_equal(aws_query_call(c, form, strlen(form), in_ms(2000), &r), AWS_ERR_CLIENT);
    assert_int_equal(r.attempts, 1);
    assert_string_equal(r.error_type, "InvalidParameter");
    assert_string_equal(r.error_message,
                        "Invalid parameter: <Message> & \"Subject\" 'x' \xc3\xa9\xe2\x98\xba");
    aws_response_free(&r);
    aws_client_free(c);
    http_stub_stop(s);
}

static void test_sns_throttled_until_deadline(void **state)
{
    (void)state;
    http_stub_reply script[] = {
        {.status = 429,
         .headers = "Content-Type: text/xml\r\n",
         .body = "<ErrorResponse><Error><Type>Sender</Type><Code>Throttled</Code>"
                 "<Message>Rate exceeded</Message></Error></ErrorResponse>"},
    };
    http_stub *s = server_start(script, 1);
    aws_client *c = client_for(s, AWS_SNS, false);
    aws_response r;
    int64_t t0 = mono_ms();
    assert_int_equal(aws_query_call(c, "Action=Publish", 14, in_ms(300), &r), AWS_ERR_THROTTLED);
    int64_t took = mono_ms() - t0;
    assert_true(took <= 300 + SLACK_MS);
    assert_true(r.attempts >= 2 && r.attempts <= 10);
    assert_int_equal(r.attempts, http_stub_count(s));
    assert_int_equal(r.status, 429);
    assert_string_equal(r.error_type, "Throttled");
    assert_string_equal(r.error_message, "Rate exceeded");
    aws_response_free(&r);
    aws_client_free(c);
    http_stub_stop(s);
}

/* A 400 is throttling by its code alone, here written on a line of its own. */
static void test_sns_code_on_its_own_line(void **state)
{
    (void)state;
    http_stub_reply script[] = {
        {.status = 400,
         .headers = "Content-Type: text/xml\r\n",
         .body = "<ErrorResponse><Error><Type>Sender</Type><Code>\n  Throttled\r\n  </Code>"
                 "<Message>Rate exceeded</Message></Error></ErrorResponse>"},
    };
    http_stub *s = server_start(script, 1);
    aws_client *c = client_for(s, AWS_SNS, false);
    aws_response r;
    assert_int_equal(aws_query_call(c, "Action=Publish", 14, in_ms(200), &r), AWS_ERR_THROTTLED);
    assert_true(r.attempts >= 2);
    assert_int_equal(r.status, 400);
    assert_string_equal(r.error_type, "Throttled");
    aws_response_free(&r);
    aws_client_free(c);
    http_stub_stop(s);
}

/* 5xx answers until the deadline: the last one is the answer, unavailable, whether the deadline
 * then falls in a retry's wait or cuts a retry short. Only a call whose first attempt is cut short
 * has no answer and times out, so the deadline is long enough for two answers on a loaded machine
 * (each comes UNTIL_DEADLINE_ANSWER_MS late, so that the deadline, not AWS_MAX_ATTEMPTS, ends the
 * retries). */
#define UNTIL_DEADLINE_MS        10000
#define UNTIL_DEADLINE_ANSWER_MS 1500

static void test_5xx_until_deadline_is_unavailable(void **state)
{
    (void)state;
    http_stub_reply script[] = {{.status = 503, .body = "", .delay_ms = UNTIL_DEADLINE_ANSWER_MS}};
    http_stub *s = server_start(script, 1);
    aws_client *c = client_for(s, AWS_SQS, false);
    aws_response r;
    int64_t t0 = mono_ms();
    assert_int_equal(
        aws_json_call(c, "AmazonSQS.ReceiveMessage", "{}", 2, in_ms(UNTIL_DEADLINE_MS), &r),
        AWS_ERR_UNAVAILABLE);
    assert_true(mono_ms() - t0 <= UNTIL_DEADLINE_MS + SLACK_MS);
    assert_true(r.attempts >= 2);
    assert_true(r.attempts < AWS_MAX_ATTEMPTS);
    assert_int_equal(r.status, 503);
    assert_null(r.body);
    assert_string_equal(r.error_message, "HTTP 503 with no body");
    aws_response_free(&r);
    aws_client_free(c);
    http_stub_stop(s);
}

/* A retry the deadline cut short after it went out whole may have been acted on: the answer
 * stays the attempt before's (throttled), and says the last one went unanswered (a create
 * answered "busy, retry" would be made twice). The retry is never answered, and the deadline
 * leaves the first answer 3 s to come on a loaded machine. */
static void test_retry_sent_and_cut_short_is_unknown(void **state)
{
    (void)state;
    http_stub_reply script[] = {
        {.status = 400,
         .body = "{\"__type\":\"com.amazonaws.dynamodb.v20120810#"
                 "ProvisionedThroughputExceededException\",\"message\":\"slow down\"}"},
        {.action = HTTP_STUB_HANG}};
    http_stub *s = server_start(script, 2);
    aws_client *c = client_for(s, AWS_DYNAMODB, false);
    aws_response r;
    assert_int_equal(aws_json_call(c, "DynamoDB_20120810.PutItem", "{\"a\":1}", 7, in_ms(3000), &r),
                     AWS_ERR_THROTTLED);
    assert_true(r.unanswered);
    assert_int_equal(r.attempts, 2);
    assert_int_equal(http_stub_count(s), 2);
    aws_response_free(&r);
    aws_client_free(c);
    http_stub_stop(s);
}

static void test_dropped_connection_is_retried(void **state)
{
    (void)state;
    http_stub_reply script[] = {{.action = HTTP_STUB_CLOSE},
                                {.status = 200, .body = "{\"ok\":true}"}};
    http_stub *s = server_start(script, 2);
    aws_client *c = client_for(s, AWS_SQS, false);
    aws_response r;
    assert_int_equal(aws_json_call(c, "AmazonSQS.DeleteMessage", "{}", 2, in_ms(2000), &r), AWS_OK);
    assert_int_equal(r.attempts, 2);
    assert_string_equal(r.body, "{\"ok\":true}");
    aws_response_free(&r);
    aws_client_free(c);
    http_stub_stop(s);
}

static void test_empty_success_body(void **state)
{
    (void)state;
    http_stub_reply script[] = {{.status = 200, .body = ""}};
    http_stub *s = server_start(script, 1);
    aws_client *c = client_for(s, AWS_SQS, false);
    aws_response r;
    assert_int_equal(aws_json_call(c, "AmazonSQS.DeleteMessage", "{}", 2, in_ms(2000), &r), AWS_OK);
    assert_null(r.body);
    assert_int_equal(r.body_len, 0);
    aws_response_free(&r);
    /* a NULL response is allowed when the caller only wants the code */
    assert_int_equal(aws_json_call(c, "AmazonSQS.DeleteMessage", "{}", 2, in_ms(2000), NULL),
                     AWS_OK);
    aws_client_free(c);
    http_stub_stop(s);
}

/* An answer over the 64 MiB a call keeps is no answer the caller can read: unavailable, not
 * retried (it would come the same), and said so, where it was "out of memory" with libcurl's
 * "Failure writing output to destination". One of exactly 64 MiB is kept. */
static void test_answer_over_the_bound(void **state)
{
    (void)state;
    size_t most = 64u * 1024 * 1024;
    char *big = malloc(most + 1);
    assert_non_null(big);
    memset(big, 'x', most + 1);
    http_stub_reply script[] = {{.status = 200, .body = big, .body_len = most + 1},
                                {.status = 200, .body = big, .body_len = most}};
    http_stub *s = server_start(script, 2);
    aws_client *c = client_for(s, AWS_SQS, false);
    aws_response r;
    assert_int_equal(aws_json_call(c, "AmazonSQS.ReceiveMessage", "{}", 2, in_ms(20000), &r),
                     AWS_ERR_UNAVAILABLE);
    assert_int_equal(r.attempts, 1);
    assert_null(r.body);
    assert_string_equal(r.error_message, "the answer is longer than 64 MiB, the most a call keeps");
    aws_response_free(&r);
    assert_int_equal(aws_json_call(c, "AmazonSQS.ReceiveMessage", "{}", 2, in_ms(20000), &r),
                     AWS_OK);
    assert_int_equal(r.body_len, most);
    aws_response_free(&r);
    assert_int_equal(http_stub_count(s), 2);
    aws_client_free(c);
    http_stub_stop(s);
    free(big);
}

/* The answer's request id, under each name AWS gives it, kept on errors too; none without one. */
static void test_request_id(void **state)
{
    (void)state;
    http_stub_reply script[] = {
        {.status = 200,
         .headers = "X-Amzn-Requestid: LDM6CJP8RMQ1FHKSC1RBVJFPNVV4KQNSO5AEMF66Q9ASUAAJG\r\n"},
        {.status = 200, .headers = "x-amz-request-id: C9ER4AJX75574TDJ\r\n"},
        {.status = 200, .headers = "x-amzn-request-id: 79b9da39-b7ae-508a-a6bc-864b2829c622\r\n"},
        {.status = 400,
         .headers = "x-amzn-RequestId: 0e8c1a3b-5d2f-4b6e-9a7c-3f1d2e4b5a6c\r\n",
         .body = "{\"__type\":\"com.amazon.coral.validate#ValidationException\"}"},
        {.status = 200, .body = "{}"},
    };
    http_stub_options o = {.script = script, .script_len = 5};
    http_stub *s = http_stub_start(&o);
    aws_client *c = client_for(s, AWS_DYNAMODB, false);
    static const struct {
        aws_rc rc;
        const char *id;
    } want[] = {{AWS_OK, "LDM6CJP8RMQ1FHKSC1RBVJFPNVV4KQNSO5AEMF66Q9ASUAAJG"},
                {AWS_OK, "C9ER4AJX75574TDJ"},
                {AWS_OK, "79b9da39-b7ae-508a-a6bc-864b2829c622"},
                {AWS_ERR_CLIENT, "0e8c1a3b-5d2f-4b6e-9a7c-3f1d2e4b5a6c"},
                {AWS_OK, ""}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        aws_response r;
        assert_int_equal(aws_json_call(c, "DynamoDB_20120810.GetItem", "{}", 2, in_ms(2000), &r),
                         want[i].rc);
        assert_string_equal(r.request_id, want[i].id);
        aws_response_free(&r);
        assert_string_equal(r.request_id, "");
    }
    aws_client_free(c);
    http_stub_stop(s);

    /* no answer: no request id */
    int fd;
    int port = http_stub_refusing_port(&fd);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
    setenv("AWS_ENDPOINT_URL", url, 1);
    char err[256];
    c = aws_client_new(AWS_DYNAMODB, err, sizeof err);
    assert_non_null(c);
    aws_response r;
    assert_int_equal(aws_json_call(c, "DynamoDB_20120810.GetItem", "{}", 2, in_ms(100), &r),
                     AWS_ERR_UNAVAILABLE);
    assert_string_equal(r.request_id, "");
    aws_response_free(&r);
    aws_client_free(c);
    close(fd);
}

static void test_no_answer_times_out_at_deadline(void **state)
{
    (void)state;
    http_stub_reply script[] = {{.action = HTTP_STUB_HANG}};
    http_stub *s = server_start(script, 1);
    aws_client *c = client_for(s, AWS_DYNAMODB, false);
    aws_response r;
    int64_t t0 = mono_ms();
    assert_int_equal(aws_json_call(c, "DynamoDB_20120810.Query", "{}", 2, in_ms(300), &r),
                     AWS_ERR_TIMEOUT);
    int64_t took = mono_ms() - t0;
    assert_true(took >= 280 && took <= 300 + SLACK_MS);
    assert_int_equal(r.attempts, 1);
    assert_int_equal(r.status, 0);
    assert_null(r.body);
    assert_non_null(r.error_message); /* libcurl's reason */
    aws_response_free(&r);
    aws_client_free(c);
    http_stub_stop(s);
}

static void test_thread_deadline_applies(void **state)
{
    (void)state;
    http_stub_reply script[] = {{.action = HTTP_STUB_HANG}};
    http_stub *s = server_start(script, 1);
    aws_client *c = client_for(s, AWS_DYNAMODB, false);
    aws_response r;
    aws_set_deadline(in_ms(250));
    int64_t t0 = mono_ms();
    assert_int_equal(aws_json_call(c, "DynamoDB_20120810.Query", "{}", 2, 0, &r), AWS_ERR_TIMEOUT);
    int64_t took = mono_ms() - t0;
    aws_set_deadline(0);
    assert_true(took >= 230 && took <= 250 + SLACK_MS);
    aws_response_free(&r);

    /* an explicit deadline beats the thread's */
    aws_set_deadline(in_ms(5000));
    t0 = mono_ms();
    assert_int_equal(aws_json_call(c, "DynamoDB_20120810.Query", "{}", 2, in_ms(150), &r),
                     AWS_ERR_TIMEOUT);
    took = mono_ms() - t0;
    aws_set_deadline(0);
    assert_true(took >= 130 && took <= 150 + SLACK_MS);
    aws_response_free(&r);
    aws_client_free(c);
    http_stub_stop(s);
}

/* A call whose deadline has passed sends nothing and says why: a timeout with no attempt. */
static void test_past_deadline_sends_nothing(void **state)
{
    (void)state;
    http_stub *s = server_start(NULL, 0);
    aws_client *c = client_for(s, AWS_DYNAMODB, false);
    aws_response r;
    assert_int_equal(aws_json_call(c, "DynamoDB_20120810.GetItem", "{}", 2, in_ms(-5), &r),
                     AWS_ERR_TIMEOUT);
    assert_int_equal(r.attempts, 0);
    assert_int_equal(r.status, 0);
    assert_non_null(r.error_message); /* logged as the call's detail */
    assert_string_equal(r.error_message, "the deadline passed before the first attempt");
    aws_response_free(&r);
    assert_int_equal(http_stub_count(s), 0);
    aws_client_free(c);
    http_stub_stop(s);
}

static void test_refused_connection_is_unavailable(void **state)
{
    (void)state;
    int fd;
    int port = http_stub_refusing_port(&fd); /* bound, not listening: connections are refused */
    clear_env();
    set_credentials(false);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
    setenv("AWS_ENDPOINT_URL_DYNAMODB", url, 1);
    char err[256];
    aws_client *c = aws_client_new(AWS_DYNAMODB, err, sizeof err);
    assert_non_null(c);
    aws_response r;
    int64_t t0 = mono_ms();
    assert_int_equal(aws_json_call(c, "DynamoDB_20120810.GetItem", "{}", 2, in_ms(400), &r),
                     AWS_ERR_UNAVAILABLE);
    int64_t took = mono_ms() - t0;
    assert_true(took <= 400 + SLACK_MS);
    assert_true(r.attempts >= 2);
    assert_int_equal(r.status, 0);
    assert_non_null(r.error_message);
    aws_response_free(&r);
    aws_client_free(c);
    close(fd);
}

static void test_connection_is_reused(void **state)
{
    (void)state;
    http_stub *s = server_start(NULL, 0);
    aws_client *c = client_for(s, AWS_DYNAMODB, true);
    for (int i = 0; i < 3; i++) {
        aws_response r;
        assert_int_equal(aws_json_call(c, "DynamoDB_20120810.GetItem", "{}", 2, in_ms(2000), &r),
                         AWS_OK);
        aws_response_free(&r);
    }
    assert_int_equal(http_stub_count(s), 3);
    assert_int_equal(http_stub_connections(s), 1);
    for (int i = 0; i < 3; i++)
        assert_signature_valid(http_stub_request_at(s, i));
    aws_client_free(c);
    http_stub_stop(s);
}

typedef struct worker {
    aws_client *c;
    int ok;
} worker;

static void *worker_main(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < 5; i++) {
        char body[64];
        int n = snprintf(body, sizeof body, "{\"n\":%d}", i);
        aws_response r;
        if (aws_json_call(w->c, "AmazonSQS.SendMessage", body, (size_t)n, in_ms(3000), &r) ==
                AWS_OK &&
            r.body && strcmp(r.body, "{}") == 0)
            w->ok++;
        aws_response_free(&r);
    }
    return NULL;
}

static void test_pool_under_concurrency(void **state)
{
    (void)state;
    http_stub *s = server_start(NULL, 0);
    aws_client *c = client_for(s, AWS_SQS, true);
    worker w[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (worker){.c = c};
        assert_int_equal(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].ok, 5);
    }
    assert_int_equal(http_stub_count(s), 20);
    assert_true(http_stub_connections(s) >= 1 && http_stub_connections(s) <= 4);
    /* afterwards, one caller reuses a pooled connection */
    int before = http_stub_connections(s);
    assert_int_equal(aws_json_call(c, "AmazonSQS.SendMessage", "{}", 2, in_ms(2000), NULL), AWS_OK);
    assert_int_equal(http_stub_connections(s), before);
    aws_client_free(c);
    http_stub_stop(s);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    http_stub *s = server_start(NULL, 0);
    aws_client *c = client_for(s, AWS_DYNAMODB, false);
    aws_response r;
    assert_int_equal(aws_json_call(c, "", "{}", 2, in_ms(1000), &r), AWS_ERR_CLIENT);
    assert_int_equal(r.attempts, 0);
    assert_int_equal(aws_json_call(c, "A\r\nX-Evil: 1", "{}", 2, in_ms(1000), &r), AWS_ERR_CLIENT);
    assert_int_equal(aws_json_call(NULL, "T", "{}", 2, in_ms(1000), &r), AWS_ERR_CLIENT);
    assert_int_equal(aws_query_call(NULL, "a", 1, in_ms(1000), &r), AWS_ERR_CLIENT);
    aws_response_free(&r);
    aws_response_free(NULL);
    aws_client_free(NULL);
    sleep_ms(1);
    assert_int_equal(http_stub_count(s), 0);
    aws_client_free(c);
    http_stub_stop(s);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_known_answers),
        cmocka_unit_test(test_backoff_bounds),
        cmocka_unit_test(test_throttling_names_and_rc_names),
        cmocka_unit_test(test_deadline_is_per_thread),
        cmocka_unit_test(test_endpoint_precedence),
        cmocka_unit_test(test_default_endpoint_and_region),
        cmocka_unit_test(test_missing_credentials),
        cmocka_unit_test(test_malformed_configuration),
        cmocka_unit_test(test_a_shown_endpoint_is_cut_in_whole_characters),
        cmocka_unit_test(test_json_call_request_shape),
        cmocka_unit_test(test_query_call_request_shape),
        cmocka_unit_test(test_large_body_is_signed_without_expect),
        cmocka_unit_test(test_retry_5xx_then_ok),
        cmocka_unit_test(test_retry_throttling_then_ok),
        cmocka_unit_test(test_client_error_is_not_retried),
        cmocka_unit_test(test_json_error_variants),
        cmocka_unit_test(test_error_without_a_message_says_its_status),
        cmocka_unit_test(test_sns_xml_error),
        cmocka_unit_test(test_sns_throttled_until_deadline),
        cmocka_unit_test(test_sns_code_on_its_own_line),
        cmocka_unit_test(test_5xx_until_deadline_is_unavailable),
        cmocka_unit_test(test_retry_sent_and_cut_short_is_unknown),
        cmocka_unit_test(test_dropped_connection_is_retried),
        cmocka_unit_test(test_empty_success_body),
        cmocka_unit_test(test_answer_over_the_bound),
        cmocka_unit_test(test_request_id),
        cmocka_unit_test(test_no_answer_times_out_at_deadline),
        cmocka_unit_test(test_thread_deadline_applies),
        cmocka_unit_test(test_past_deadline_sends_nothing),
        cmocka_unit_test(test_refused_connection_is_unavailable),
        cmocka_unit_test(test_connection_is_reused),
        cmocka_unit_test(test_pool_under_concurrency),
        cmocka_unit_test(test_bad_arguments),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    clear_env();
    curl_global_cleanup();
    return failed;
}
