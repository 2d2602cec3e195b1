/*
 * aws_http — signed POSTs to DynamoDB, SNS and SQS over libcurl; see
 * aws_http.h for the contract.
 *
 * Configuration. aws_client_new() reads the environment once: the region
 * (only [A-Za-z0-9-], it goes into the CURLOPT_AWS_SIGV4 string), the keys
 * and the session token (printable, as they go into headers), and the
 * endpoint, parsed with libcurl's URL API: http or https, a host, no user
 * name, query or fragment, and a path of unreserved characters and single
 * '/' only (path_signable()); a URL without a path gets "/", so calls go to
 * POST / of the endpoint. The default endpoint is
 * https://<service>.<region>.amazonaws.com/ (amazonaws.com.cn for the cn-
 * regions).
 *
 * Handles. Every call takes a libcurl easy handle from the client's pool (a
 * mutex-protected stack of idle handles; a new one when it is empty), uses
 * it for all its attempts and puts it back. curl_easy_reset() between calls
 * clears the options but keeps the handle's live connections and DNS cache,
 * so consecutive calls reuse one keep-alive connection, and N concurrent
 * callers end up with N handles and N connections.
 *
 * Signing. curl signs host, x-amz-date and every header given through
 * CURLOPT_HTTPHEADER, and hashes the body given through CURLOPT_POSTFIELDS;
 * so Content-Type, X-Amz-Target and X-Amz-Security-Token go in that list,
 * the user agent through CURLOPT_USERAGENT (not signed), and nothing else —
 * never X-Amzn-Trace-Id. Expect: 100-continue (which curl adds to HTTP/1.1
 * bodies over 1 MiB) is suppressed with an "Expect:" entry, but only with
 * libcurl 8.3.0 or newer: older versions sign such a removal entry as an
 * empty "expect" header that is never sent, which breaks the signature.
 * With those, the header curl adds is not signed, and
 * CURLOPT_EXPECT_100_TIMEOUT_MS 0 sends the body without waiting for the
 * "100 Continue".
 *
 * Attempts. Each attempt gets CURLOPT_TIMEOUT_MS = the time left to the
 * deadline and a connect timeout of at most AWS_CONNECT_MS. Its outcome is
 * classified: 2xx OK; 429, or a 4xx/5xx whose error type is throttling,
 * THROTTLED; other 5xx and transient transport failures (no connection,
 * reset, empty reply, a connect timeout with time left) UNAVAILABLE; a
 * transfer cut by the deadline TIMEOUT; other 4xx CLIENT. THROTTLED and
 * UNAVAILABLE are retried after aws_backoff_ms(attempt, 25, 2000, random)
 * unless that sleep plus AWS_MIN_ATTEMPT_MS would pass the deadline or
 * AWS_MAX_ATTEMPTS were made; then the last classification is the result.
 * A retry the deadline cuts short, or a wait it leaves no room for, keeps
 * the classification before it, so that a call answers TIMEOUT only when
 * its first attempt was cut short: the deadline passed before any answer.
 * When an attempt went out whole and got a 5xx or no answer, and the call
 * still ends throttled, unavailable or timed out, unanswered says the
 * service may have acted on it: no later answer told.
 * aws_retry_pause() is that rule, for callers that retry a request
 * themselves.
 * Random numbers come from a per-thread xorshift64* seeded from the clock
 * and the thread's own address, so threads never share state.
 *
 * Errors. The body of a non-2xx answer is read as JSON when it starts with
 * '{' (__type or code, cut at the first ':' and taken after the last '#';
 * message or Message) and as XML when it starts with '<' (<Code> and
 * <Message> inside <Error>, read by aws_error_read_xml(), a pure function
 * of the body: aws_error.h). Without a type there, the x-amzn-query-error
 * header (before ';') and then x-amzn-errortype (before ':') are used, all
 * through aws_error_type(). An error answer that gives no message (no
 * body, or a body without one) has its HTTP status as its message, with its
 * type or the beginning of its body. When no answer came, error_message
 * carries libcurl's reason. An answer is kept up to AWS_MAX_BODY (64 MiB); a longer
 * one is UNAVAILABLE, not retried, and says so.
 * Every answer's request id (the header DynamoDB, SNS and SQS send as
 * x-amzn-RequestId; the other spellings AWS uses are taken too) is kept for
 * the caller's spans.
 */
#include "aws_http.h"
#include "util/clock.h"

#include "core/errbuf.h"
#include "core/sbuf.h"
#include "util/ca_bundle.h"
#include "util/curl_retry.h"
#include "aws_error.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#ifndef TASKD_VERSION
#define TASKD_VERSION "0"
#endif

#define AWS_USER_AGENT     "taskd/" TASKD_VERSION
#define AWS_BACKOFF_BASE   25   /* ms */
#define AWS_BACKOFF_CAP    2000 /* ms */
#define AWS_MIN_ATTEMPT_MS 10   /* no retry with less time than this left */
#define AWS_CONNECT_MS     3000 /* connect timeout cap of one attempt */
#define AWS_MAX_BODY_MIB   64   /* an answer kept at most, in MiB */
#define AWS_MAX_BODY       (AWS_MAX_BODY_MIB * 1024L * 1024)
#define AWS_QUOTE_(x)      #x
#define AWS_QUOTE(x)       AWS_QUOTE_(x)
#define AWS_POOL_MAX_IDLE  64

/* what a call whose answer passed AWS_MAX_BODY says */
static const char answer_too_long[] =
    "the answer is longer than " AWS_QUOTE(AWS_MAX_BODY_MIB) " MiB, the most a call keeps";

struct aws_client {
    aws_service service;
    char *endpoint; /* normalized URL */
    char region[64];
    char sigv4[128]; /* "aws:amz:<region>:<service>" */
    char *access_key;
    char *secret_key;
    char *token_header;    /* "X-Amz-Security-Token: ..." or NULL */
    bool remove_expect;    /* the libcurl in use leaves "Expect:" out of the signature */
    const char *ca_bundle; /* trusted CAs (ca_bundle.h), or NULL for libcurl's default */
    pthread_mutex_t mu;    /* guards idle / n_idle */
    CURL *idle[AWS_POOL_MAX_IDLE];
    int n_idle;
};

static const char *const service_names[] = {"dynamodb", "sns", "sqs"};
static const char *const service_env[] = {"AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_SNS",
                                          "AWS_ENDPOINT_URL_SQS"};

/* ---- clock, deadline, random ---- */

static _Thread_local int64_t thread_deadline;

void aws_set_deadline(int64_t deadline_ms)
{
    thread_deadline = deadline_ms > 0 ? deadline_ms : 0;
}

int64_t aws_deadline(void)
{
    return thread_deadline;
}

static _Thread_local uint64_t rnd_state;

static uint32_t random_u32(void)
{
    if (rnd_state == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        /* splitmix64 of the clock and this thread's own variable's address */
        uint64_t z = ((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec) ^
                     (uint64_t)(uintptr_t)&rnd_state;
        z += 0x9e3779b97f4a7c15u;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
        z ^= z >> 31;
        rnd_state = z ? z : 0x2545f4914f6cdd1du;
    }
    /* xorshift64* */
    rnd_state ^= rnd_state >> 12;
    rnd_state ^= rnd_state << 25;
    rnd_state ^= rnd_state >> 27;
    return (uint32_t)((rnd_state * 0x2545f4914f6cdd1du) >> 32);
}

int64_t aws_backoff_ms(int attempt, int64_t base_ms, int64_t cap_ms, uint32_t rnd)
{
    if (base_ms <= 0 || cap_ms <= 0)
        return 0;
    if (attempt < 1)
        attempt = 1;
    int64_t ceiling = base_ms < cap_ms ? base_ms : cap_ms;
    for (int i = 1; i < attempt && ceiling < cap_ms; i++)
        ceiling = ceiling > cap_ms / 2 ? cap_ms : ceiling * 2;
    if (ceiling < (int64_t)UINT32_MAX)
        return (int64_t)(((uint64_t)rnd * (uint64_t)(ceiling + 1)) >> 32);
    return (int64_t)((uint64_t)ceiling / UINT32_MAX * rnd);
}

bool aws_retry_pause(int attempts, int64_t deadline_ms)
{
    if (attempts >= AWS_MAX_ATTEMPTS)
        return false;
    int64_t wait = aws_backoff_ms(attempts, AWS_BACKOFF_BASE, AWS_BACKOFF_CAP, random_u32());
    if (clock_unix_ms() + wait + AWS_MIN_ATTEMPT_MS > deadline_ms)
        return false;
    clock_sleep_ms(wait);
    return true;
}

/* ---- names ---- */

const char *aws_rc_name(aws_rc rc)
{
    switch (rc) {
    case AWS_OK:
        return "ok";
    case AWS_ERR_CLIENT:
        return "client error";
    case AWS_ERR_THROTTLED:
        return "throttled";
    case AWS_ERR_UNAVAILABLE:
        return "unavailable";
    case AWS_ERR_TIMEOUT:
        return "timeout";
    case AWS_ERR_NOMEM:
        return "out of memory";
    }
    return "unknown";
}

bool aws_error_is_throttling(const char *error_type)
{
    /* The AWS SDKs' throttling codes, plus the KMS throttling of SNS and SQS. */
    static const char *const names[] = {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "Throttled",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "LimitExceededException",
        "TransactionInProgressException",
        "BandwidthLimitExceeded",
        "SlowDown",
        "PriorRequestNotComplete",
        "KMSThrottling",
        "KMSThrottlingException",
        "KmsThrottled",
    };
    if (!error_type || !*error_type)
        return false;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(error_type, names[i]) == 0)
            return true;
    return false;
}

/* ---- client ---- */

static bool region_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-'))
            return false;
    }
    return true;
}

/* Non-empty, printable ASCII, and no spaces when !spaces. */
static bool printable(const char *s, bool spaces)
{
    if (!*s)
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p >= 0x7f || (*p == ' ' && !spaces))
            return false;
    return true;
}

static const char *env_value(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/*
 * Whether libcurl's SigV4 signs requests to path as AWS checks them. curl
 * puts the path into the canonical request as it is sent; AWS, for every
 * service but S3, URI-encodes each segment of the path it received once more
 * and removes redundant slashes. The two agree only on a path of RFC 3986's
 * unreserved characters with no "//".
 */
static bool path_signable(const char *path)
{
    for (const char *p = path; *p; p++) {
        char ch = *p;
        if (ch == '/'
                ? p[1] == '/'
                : !((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                    (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' || ch == '~'))
            return false;
    }
    return true;
}

/* The bytes of a URL url_shown() shows at most before its user info, and from there on. */
#define URL_SHOWN_PART 200
/* A buffer for url_shown(): the two parts, "<user info>" and "?...". */
#define URL_SHOWN_SIZE (2 * URL_SHOWN_PART + 16)

/*
 * url as an error message may show it (into buf, URL_SHOWN_SIZE bytes: at most URL_SHOWN_PART
 * bytes before the user info and as many from its end, each cut where a character ends): no
 * user info, query or fragment, which may hold a secret (a key and password, a presigned URL's
 * token), however long. The user info ends at the authority's last '@', and a "://" after a '?'
 * or '#' starts no authority.
 */
static const char *url_shown(const char *url, char *buf, size_t size)
{
    size_t end = strcspn(url, "?#");
    const char *sep = strstr(url, "://");
    size_t head = sep && (size_t)(sep - url) < end ? (size_t)(sep - url) + 3 : 0;
    const char *authority = url + head;
    const char *at = NULL;
    for (const char *p = authority; p < url + end && *p != '/'; p++)
        if (*p == '@')
            at = p;
    const char *rest = at ? at : url;
    size_t rest_len = end - (size_t)(rest - url);
    buf[0] = '\0';
    if (at)
        snprintf(buf, size, "%.*s<user info>",
                 utf8_prec(url, head < URL_SHOWN_PART ? head : URL_SHOWN_PART), url);
    size_t used = strlen(buf);
    snprintf(buf + used, size - used, "%.*s",
             utf8_prec(rest, rest_len < URL_SHOWN_PART ? rest_len : URL_SHOWN_PART), rest);
    if (url[end]) {
        used = strlen(buf);
        snprintf(buf + used, size - used, "%s", url[end] == '?' ? "?..." : "#...");
    }
    return buf;
}

/*
 * Validate url and store its normalized form in *out (malloc'd); false with
 * a reason in err. source names the variable it came from.
 */
static bool endpoint_parse(const char *url, const char *source, char **out, char *err,
                           size_t errlen)
{
    char shown[URL_SHOWN_SIZE];
    *out = NULL;
    CURLU *u = curl_url();
    if (!u) {
        errbuf_set(err, errlen, "out of memory");
        return false;
    }
    bool ok = false;
    char *scheme = NULL, *host = NULL, *part = NULL, *full = NULL;
    const char *authority = strstr(url, "://");
    if (!authority || authority[3] == '/' || /* libcurl takes "http:///h" for "http://h" */
        curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
        errbuf_set(err, errlen, "%s: not an http:// or https:// URL: %s", source,
                   url_shown(url, shown, sizeof shown));
        goto done;
    }
    if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !*host) {
        errbuf_set(err, errlen, "%s: no host in %s", source, url_shown(url, shown, sizeof shown));
        goto done;
    }
    const char *refused = curl_url_get(u, CURLUPART_USER, &part, 0) == CURLUE_OK    ? "user info"
                          : curl_url_get(u, CURLUPART_QUERY, &part, 0) == CURLUE_OK ? "a query"
                          : curl_url_get(u, CURLUPART_FRAGMENT, &part, 0) == CURLUE_OK
                              ? "a fragment"
                              : NULL;
    if (refused) { /* not shown: it may hold a secret */
        errbuf_set(err, errlen, "%s: an endpoint URL may not have %s: %s", source, refused,
                   url_shown(url, shown, sizeof shown));
        goto done;
    }
    if (curl_url_get(u, CURLUPART_PATH, &part, 0) == CURLUE_OK && !path_signable(part)) {
        errbuf_set(err, errlen,
                   "%s: the path of an endpoint may hold only letters, digits, '-', '.', '_', "
                   "'~' and single '/' (requests to others would be signed wrong): %s",
                   source, url_shown(url, shown, sizeof shown));
        goto done;
    }
    if (curl_url_get(u, CURLUPART_URL, &full, 0) != CURLUE_OK) {
        errbuf_set(err, errlen, "%s: malformed URL: %s", source,
                   url_shown(url, shown, sizeof shown));
        goto done;
    }
    *out = strdup(full);
    if (!*out) {
        errbuf_set(err, errlen, "out of memory");
        goto done;
    }
    ok = true;
done:
    curl_free(scheme);
    curl_free(host);
    curl_free(part);
    curl_free(full);
    curl_url_cleanup(u);
    return ok;
}

aws_client *aws_client_new(aws_service service, char *err, size_t errlen)
{
    if ((int)service < AWS_DYNAMODB || (int)service > AWS_SQS) {
        errbuf_set(err, errlen, "unknown AWS service %d", (int)service);
        return NULL;
    }
    const char *svc = service_names[service];

    const char *region = env_value("AWS_REGION");
    const char *region_var = "AWS_REGION";
    if (!region) {
        region = env_value("AWS_DEFAULT_REGION");
        region_var = "AWS_DEFAULT_REGION";
    }
    if (!region)
        region = "us-east-1";
    else if (!region_ok(region)) {
        errbuf_set(err, errlen, "%s: not a region name: %.*s", region_var, utf8_prec(region, 80),
                   region);
        return NULL;
    }

    const char *akid = env_value("AWS_ACCESS_KEY_ID");
    const char *secret = env_value("AWS_SECRET_ACCESS_KEY");
    const char *token = env_value("AWS_SESSION_TOKEN");
    if (!akid || !secret) {
        errbuf_set(err, errlen,
                   "no AWS credentials: AWS_ACCESS_KEY_ID and "
                   "AWS_SECRET_ACCESS_KEY must be set");
        return NULL;
    }
    if (!printable(akid, false) || strchr(akid, '/')) {
        errbuf_set(err, errlen, "AWS_ACCESS_KEY_ID: not a key id");
        return NULL;
    }
    if (token && !printable(token, false)) {
        errbuf_set(err, errlen, "AWS_SESSION_TOKEN: not a token");
        return NULL;
    }

    aws_client *c = calloc(1, sizeof *c);
    if (!c) {
        errbuf_set(err, errlen, "out of memory");
        return NULL;
    }
    c->service = service;
    snprintf(c->region, sizeof c->region, "%s", region);
    snprintf(c->sigv4, sizeof c->sigv4, "aws:amz:%s:%s", region, svc);

    const char *url = env_value(service_env[service]);
    const char *url_var = service_env[service];
    if (!url) {
        url = env_value("AWS_ENDPOINT_URL");
        url_var = "AWS_ENDPOINT_URL";
    }
    bool ok;
    if (url) {
        ok = endpoint_parse(url, url_var, &c->endpoint, err, errlen);
    } else {
        char def[160];
        snprintf(def, sizeof def, "https://%s.%s.amazonaws.com%s/", svc, region,
                 strncmp(region, "cn-", 3) == 0 ? ".cn" : "");
        ok = endpoint_parse(def, "AWS_REGION", &c->endpoint, err, errlen);
    }
    if (!ok) {
        free(c);
        return NULL;
    }

    c->access_key = strdup(akid);
    c->secret_key = strdup(secret);
    if (token) {
        size_t n = strlen("X-Amz-Security-Token: ") + strlen(token) + 1;
        c->token_header = malloc(n);
        if (c->token_header)
            snprintf(c->token_header, n, "X-Amz-Security-Token: %s", token);
    }
    if (!c->access_key || !c->secret_key || (token && !c->token_header)) {
        errbuf_set(err, errlen, "out of memory");
        free(c->access_key);
        free(c->secret_key);
        free(c->token_header);
        free(c->endpoint);
        free(c);
        return NULL;
    }
    const curl_version_info_data *vi = curl_version_info(CURLVERSION_NOW);
    c->remove_expect = vi && vi->version_num >= 0x080300;
    c->ca_bundle = ca_bundle_path();
    pthread_mutex_init(&c->mu, NULL);
    return c;
}

void aws_client_free(aws_client *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->n_idle; i++)
        curl_easy_cleanup(c->idle[i]);
    pthread_mutex_destroy(&c->mu);
    free(c->endpoint);
    free(c->access_key);
    if (c->secret_key) {
        memset(c->secret_key, 0, strlen(c->secret_key));
        free(c->secret_key);
    }
    free(c->token_header);
    free(c);
}

const char *aws_client_endpoint(const aws_client *c)
{
    return c->endpoint;
}

const char *aws_client_region(const aws_client *c)
{
    return c->region;
}

void aws_span_call(span *sp, const aws_client *c, const char *service, const char *method,
                   const char *request_id)
{
    span_set_static(sp, "rpc.system", "aws-api");
    span_set_static(sp, "rpc.service", service);
    span_set_static(sp, "rpc.method", method);
    span_set_str(sp, "cloud.region", c->region);
    if (request_id[0])
        span_set_str(sp, "aws.request_id", request_id);
}

static CURL *handle_take(aws_client *c)
{
    CURL *h = NULL;
    pthread_mutex_lock(&c->mu);
    if (c->n_idle > 0)
        h = c->idle[--c->n_idle];
    pthread_mutex_unlock(&c->mu);
    if (h)
        curl_easy_reset(h);
    else
        h = curl_easy_init();
    return h;
}

static void handle_give(aws_client *c, CURL *h)
{
    pthread_mutex_lock(&c->mu);
    if (c->n_idle < AWS_POOL_MAX_IDLE) {
        c->idle[c->n_idle++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&c->mu);
    if (h)
        curl_easy_cleanup(h);
}

/* ---- one attempt's answer ---- */

typedef struct answer {
    char *body;
    size_t len, cap;
    bool nomem;            /* the body could not be stored: out of memory */
    bool too_long;         /* ... or it is over AWS_MAX_BODY */
    char query_error[128]; /* x-amzn-query-error */
    char error_type[128];  /* x-amzn-errortype */
    char request_id[64];   /* x-amzn-RequestId, x-amzn-request-id or x-amz-request-id */
} answer;

static void answer_reset(answer *a)
{
    free(a->body);
    memset(a, 0, sizeof *a);
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
    answer *a = userp;
    size_t n = size * nmemb;
    if (a->len + n + 1 > a->cap) {
        if (a->len + n > (size_t)AWS_MAX_BODY) {
            a->too_long = true;
            return 0;
        }
        size_t cap = a->cap ? a->cap : 1024;
        while (cap < a->len + n + 1)
            cap *= 2;
        if (cap > (size_t)AWS_MAX_BODY + 1)
            cap = (size_t)AWS_MAX_BODY + 1; /* the most kept, and its NUL */
        char *p = realloc(a->body, cap);
        if (!p) {
            a->nomem = true;
            return 0;
        }
        a->body = p;
        a->cap = cap;
    }
    memcpy(a->body + a->len, data, n);
    a->len += n;
    a->body[a->len] = '\0';
    return n;
}

/* Copy the value of header line "name: value\r\n" into out when the name matches. */
static void header_value(const char *line, size_t n, const char *name, char *out, size_t outlen)
{
    size_t nl = strlen(name);
    if (n <= nl || line[nl] != ':' || strncasecmp(line, name, nl) != 0)
        return;
    const char *v = line + nl + 1;
    size_t len = n - nl - 1;
    str_trim(&v, &len);
    if (len > outlen - 1)
        len = outlen - 1;
    memcpy(out, v, len);
    out[len] = '\0';
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userp)
{
    answer *a = userp;
    size_t n = size * nmemb;
    header_value(data, n, "x-amzn-query-error", a->query_error, sizeof a->query_error);
    header_value(data, n, "x-amzn-errortype", a->error_type, sizeof a->error_type);
    header_value(data, n, "x-amzn-RequestId", a->request_id, sizeof a->request_id);
    header_value(data, n, "x-amzn-request-id", a->request_id, sizeof a->request_id);
    header_value(data, n, "x-amz-request-id", a->request_id, sizeof a->request_id);
    return n;
}

/* ---- error bodies ---- */

static void parse_json_error(aws_response *r)
{
    json_t *root = json_loadb(r->body, r->body_len, 0, NULL);
    if (!json_is_object(root)) {
        json_decref(root);
        return;
    }
    const char *type = json_string_value(json_object_get(root, "__type"));
    if (!type)
        type = json_string_value(json_object_get(root, "code"));
    if (type)
        aws_error_type(r->error_type, sizeof r->error_type, type, strlen(type), ':');
    const char *msg = json_string_value(json_object_get(root, "message"));
    if (!msg)
        msg = json_string_value(json_object_get(root, "Message"));
    if (msg)
        r->error_message = strdup(msg);
    json_decref(root);
}

/* The message of an error answer that gave none: its HTTP status, with its error type when one
 * came, else the beginning of its body, the white space around it left out, when it has more
 * than white space, on one line. None when out of memory. */
static void say_status(aws_response *r)
{
    char msg[160];
    const char *text = r->body ? r->body : "";
    size_t len = r->body ? r->body_len : 0;
    while (len > 0 && isspace((unsigned char)*text))
        text++, len--;
    while (len > 0 && isspace((unsigned char)text[len - 1]))
        len--;
    if (r->error_type[0])
        errbuf_set(msg, sizeof msg, "HTTP %ld, %s, with no message", r->status, r->error_type);
    else if (len > 0)
        errbuf_set(msg, sizeof msg, "HTTP %ld with no error named: %.*s", r->status,
                   len > INT_MAX ? INT_MAX : (int)len, text);
    else if (r->body_len > 0)
        errbuf_set(msg, sizeof msg, "HTTP %ld with a body of white space alone", r->status);
    else
        errbuf_set(msg, sizeof msg, "HTTP %ld with no body", r->status);
    errbuf_one_line(msg, sizeof msg);
    r->error_message = strdup(msg);
    r->message_is_status = r->error_message != NULL;
}

static void parse_error(aws_response *r, const answer *a)
{
    if (r->body) {
        const char *p = r->body;
        while (str_is_ws(*p))
            p++;
        if (*p == '{')
            parse_json_error(r);
        else if (*p == '<')
            aws_error_read_xml(r->body, r->body_len, r->error_type, sizeof r->error_type,
                               &r->error_message);
    }
    if (!r->error_type[0] && a->query_error[0])
        aws_error_type(r->error_type, sizeof r->error_type, a->query_error, strlen(a->query_error),
                       ';');
    if (!r->error_type[0] && a->error_type[0])
        aws_error_type(r->error_type, sizeof r->error_type, a->error_type, strlen(a->error_type),
                       ':');
    if (!r->error_message)
        say_status(r);
}

/* ---- the call ---- */

typedef enum outcome {
    OUT_DONE,  /* final: rc as classified */
    OUT_RETRY, /* retryable: rc is what it becomes if no retry follows */
} outcome;

/* Whether this attempt sent its whole request (body_len bytes of body): the service may then
 * have acted on it, answered or not. */
static bool request_sent(CURL *h, size_t body_len)
{
    long head = 0;
    curl_off_t body = 0;
    return curl_easy_getinfo(h, CURLINFO_REQUEST_SIZE, &head) == CURLE_OK && head > 0 &&
           curl_easy_getinfo(h, CURLINFO_SIZE_UPLOAD_T, &body) == CURLE_OK &&
           body >= (curl_off_t)body_len;
}

/* Fill out from this attempt (which sent body_len bytes of body) and classify it. */
static outcome classify(CURL *h, CURLcode cc, answer *a, const char *errbuf, int64_t deadline,
                        size_t body_len, aws_response *out, aws_rc *rc)
{
    if (cc == CURLE_OPERATION_TIMEDOUT && out->attempts > 0 &&
        clock_unix_ms() > deadline - AWS_MIN_ATTEMPT_MS) {
        /* A retry cut short by the deadline tells nothing new: keep the previous attempt's
         * answer (still throttled, still unavailable). But when its request went out whole,
         * the service may have acted on it: unanswered says so. */
        out->unanswered = request_sent(h, body_len);
        return OUT_DONE;
    }
    aws_response_free(out);
    if (cc != CURLE_OK) {
        const char *why = errbuf[0] ? errbuf : curl_easy_strerror(cc);
        if (cc == CURLE_WRITE_ERROR && a->too_long)
            why = answer_too_long;
        out->error_message = strdup(why);
        if (cc == CURLE_OUT_OF_MEMORY || (cc == CURLE_WRITE_ERROR && a->nomem)) {
            *rc = AWS_ERR_NOMEM;
            return OUT_DONE;
        }
        if (cc == CURLE_WRITE_ERROR && a->too_long) {
            *rc = AWS_ERR_UNAVAILABLE; /* no answer the caller can read; the same again */
            return OUT_DONE;
        }
        if (cc == CURLE_OPERATION_TIMEDOUT && clock_unix_ms() > deadline - AWS_MIN_ATTEMPT_MS) {
            *rc = AWS_ERR_TIMEOUT;
            return OUT_DONE;
        }
        *rc = AWS_ERR_UNAVAILABLE;
        return curl_transient(cc) ? OUT_RETRY : OUT_DONE;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
    snprintf(out->request_id, sizeof out->request_id, "%s", a->request_id);
    if (a->len > 0) {
        out->body = a->body;
        out->body_len = a->len;
        a->body = NULL;
        a->len = a->cap = 0;
    }
    if (out->status >= 200 && out->status < 300) {
        *rc = AWS_OK;
        return OUT_DONE;
    }
    parse_error(out, a);
    if (out->status == 429 ||
        (out->status >= 400 && out->status < 600 && aws_error_is_throttling(out->error_type))) {
        *rc = AWS_ERR_THROTTLED;
        return OUT_RETRY;
    }
    if (out->status >= 500 && out->status < 600) {
        *rc = AWS_ERR_UNAVAILABLE;
        return OUT_RETRY;
    }
    *rc = AWS_ERR_CLIENT;
    return OUT_DONE;
}

static aws_rc call(aws_client *c, const char *target, const char *body, size_t len,
                   int64_t deadline_ms, aws_response *out)
{
    aws_response scratch;
    if (!out)
        out = &scratch;
    memset(out, 0, sizeof *out);
    int64_t deadline = deadline_ms > 0 ? deadline_ms : thread_deadline;
    if (deadline <= 0)
        deadline = clock_unix_ms() + AWS_DEFAULT_CALL_MS;
    if (!body) {
        body = "";
        len = 0;
    }

    struct curl_slist *headers = NULL, *tail;
    char target_header[256];
    const char *lines[4];
    int n_lines = 0;
    if (target) {
        snprintf(target_header, sizeof target_header, "X-Amz-Target: %s", target);
        lines[n_lines++] = "Content-Type: application/x-amz-json-1.0";
        lines[n_lines++] = target_header;
    } else {
        lines[n_lines++] = "Content-Type: application/x-www-form-urlencoded; charset=utf-8";
    }
    if (c->token_header)
        lines[n_lines++] = c->token_header;
    if (c->remove_expect)
        lines[n_lines++] = "Expect:";
    for (int i = 0; i < n_lines; i++) {
        tail = curl_slist_append(headers, lines[i]);
        if (!tail) {
            curl_slist_free_all(headers);
            return AWS_ERR_NOMEM;
        }
        headers = tail;
    }
    CURL *h = handle_take(c);
    if (!h) {
        curl_slist_free_all(headers);
        return AWS_ERR_NOMEM;
    }

    answer a = {0};
    char errbuf[CURL_ERROR_SIZE];
    curl_easy_setopt(h, CURLOPT_URL, c->endpoint);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, AWS_USER_AGENT);
    if (c->ca_bundle)
        curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_bundle);
    curl_easy_setopt(h, CURLOPT_AWS_SIGV4, c->sigv4);
    curl_easy_setopt(h, CURLOPT_USERNAME, c->access_key);
    curl_easy_setopt(h, CURLOPT_PASSWORD, c->secret_key);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)len);
    curl_easy_setopt(h, CURLOPT_EXPECT_100_TIMEOUT_MS, 0L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &a);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &a);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);

    aws_rc rc = AWS_ERR_TIMEOUT;
    /* an attempt went out whole and was answered 5xx or not at all: the service may have acted */
    bool maybe_acted = false;
    for (;;) {
        int64_t left = deadline - clock_unix_ms();
        if (left <= 0) {
            if (out->attempts == 0) {
                rc = AWS_ERR_TIMEOUT;
                out->error_message = strdup("the deadline passed before the first attempt");
            }
            break;
        }
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)left);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                         (long)(left < AWS_CONNECT_MS ? left : AWS_CONNECT_MS));
        answer_reset(&a);
        errbuf[0] = '\0';
        int attempts = out->attempts + 1;
        CURLcode cc = curl_easy_perform(h);
        outcome o = classify(h, cc, &a, errbuf, deadline, len, out, &rc);
        out->attempts = attempts;
        if (out->status >= 500 || (cc != CURLE_OK && request_sent(h, len)))
            maybe_acted = true;
        if (o == OUT_DONE || !aws_retry_pause(attempts, deadline))
            break;
    }
    /* a later attempt throttled, failed or cut short tells nothing of what that one did */
    if (maybe_acted &&
        (rc == AWS_ERR_THROTTLED || rc == AWS_ERR_UNAVAILABLE || rc == AWS_ERR_TIMEOUT))
        out->unanswered = true;
    answer_reset(&a);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    handle_give(c, h);
    curl_slist_free_all(headers);
    if (out == &scratch)
        aws_response_free(out);
    return rc;
}

aws_rc aws_json_call(aws_client *c, const char *target, const char *body, size_t body_len,
                     int64_t deadline_ms, aws_response *out)
{
    if (out)
        memset(out, 0, sizeof *out);
    if (!c || !target || !*target || strlen(target) > 200 || strpbrk(target, "\r\n"))
        return AWS_ERR_CLIENT;
    return call(c, target, body, body_len, deadline_ms, out);
}

aws_rc aws_query_call(aws_client *c, const char *form, size_t form_len, int64_t deadline_ms,
                      aws_response *out)
{
    if (out)
        memset(out, 0, sizeof *out);
    if (!c)
        return AWS_ERR_CLIENT;
    return call(c, NULL, form, form_len, deadline_ms, out);
}

void aws_response_free(aws_response *r)
{
    if (!r)
        return;
    free(r->body);
    free(r->error_message);
    memset(r, 0, sizeof *r);
}
