/*
 * tracer — the local span store and the exporters; see tracer.h.
 *
 * Design. Two rings of span copies, each behind its own mutex:
 *
 *   local store   every emitted span that names a task, overwritten oldest-first; read by
 *                 tracer_task_spans (a linear scan: it serves one task's trace view).
 *   export queue  sampled spans waiting for the export thread; full => the span is dropped.
 *
 * tracer_emit deep-copies the span (span_copy) on the caller's stack *before* taking a lock,
 * then only moves the struct into the ring slot under the mutex, so a request thread holds a
 * lock for a memcpy and never waits on the network. Whatever the slot held before is freed
 * after the lock is released.
 *
 * One export thread (started only when an exporter is configured) waits on a condition
 * variable until 512 spans are queued, 1 s has passed since the last flush, or the tracer is
 * stopping; it then moves up to 512 spans out of the ring and exports them without any lock:
 *
 *   X-Ray  each span becomes one UDP datagram (header line + segment document) sent on a
 *          non-blocking socket; a failed encode or send counts the span as dropped.
 *   OTLP   the batch is encoded (protobuf or JSON); a body over 1 MiB is split in halves
 *          until it fits. One libcurl easy handle is reused (keep-alive). 2xx is success
 *          (a partialSuccess's rejectedSpans are counted as dropped); 429/502/503/504 and
 *          transport errors are retried up to 5 attempts with exponential backoff and
 *          jitter, or after Retry-After when the server sends one; anything else drops the
 *          batch. Warnings are logged at most once a minute per exporter, with a count of the
 *          ones held back.
 *
 * A span counts as exported when every configured exporter took it, else as dropped.
 *
 * Flush (a Lambda function, frozen between invocations, must not hold spans): tracer_flush
 * makes the thread hurry exactly as a shutdown does, up to the caller's deadline, and waits on
 * a second condition variable until the queue is empty and no batch is in hand.
 *
 * Shutdown: tracer_free sets a deadline (now + the export timeout) and wakes the thread. From
 * then on no batch is retried: the batch in hand and every one still queued get a single
 * attempt whose timeout ends at the deadline (a backoff sleep is cut short, an in-flight
 * request is aborted at the deadline by the progress callback); what cannot be sent in time
 * is dropped and counted. The thread then exits and is joined.
 */
#include "tracer.h"
#include "util/clock.h"

#include "core/sbuf.h"
#include "trace/otel_env.h"
#include "trace/otlp.h"
#include "trace/otlp_json.h"
#include "trace/otlp_proto.h"
#include "trace/xray.h"
#include "util/ca_bundle.h"
#include "util/log.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef TASKD_VERSION
#define TASKD_VERSION "dev"
#endif

#define DEFAULT_QUEUE_CAPACITY 8192
#define DEFAULT_LOCAL_CAPACITY 65536
#define BATCH_MAX              512
#define FLUSH_INTERVAL_NS      1000000000LL
#define PAYLOAD_MAX            (1024 * 1024)
#define MAX_ATTEMPTS           5
#define BACKOFF_BASE_MS        500
#define BACKOFF_MAX_MS         30000
#define RETRY_AFTER_MAX_S      60
#define WARN_INTERVAL_NS       (60 * 1000000000LL)
#define RESPONSE_KEEP          4096 /* response bytes kept for partial-success parsing */

/* At most one warning per interval; the rest are counted. */
typedef struct rate_limit {
    bool ever;
    int64_t last_ns;
    uint64_t suppressed;
} rate_limit;

struct tracer {
    otel_config cfg;
    otlp_resource resource;

    /* Export queue: a ring of qcap spans, qlen of them from qhead. */
    pthread_mutex_t qmu;
    pthread_cond_t qcond; /* CLOCK_MONOTONIC; the export thread waits on it */
    span *queue;
    size_t qcap, qhead, qlen;
    atomic_bool qfull;             /* qlen == qcap, readable without the lock */
    atomic_bool stopping;          /* written under qmu, read anywhere */
    atomic_bool flushing;          /* a tracer_flush() waits: hurry, as when stopping */
    _Atomic int64_t stop_deadline; /* monotonic ns; valid once stopping or flushing */
    bool exporting;                /* the export thread has a batch in hand (under qmu) */
    pthread_cond_t idle;           /* the queue emptied and no batch is in hand */
    bool has_thread;
    pthread_t thread;

    /* Local store: a ring of lcap spans, llen of them, lnext the next slot to write. */
    pthread_mutex_t lmu;
    span *local;
    size_t lcap, lnext, llen;

    _Atomic uint64_t dropped, exported;

    /* Export-thread state (touched by that thread only, or before it starts / after join). */
    span *batch;        /* BATCH_MAX moved-out spans */
    bool *batch_failed; /* per span of the batch: some exporter did not take it */
    CURL *curl;
    struct curl_slist *headers;
    char curl_err[CURL_ERROR_SIZE];
    sbuf response; /* the first RESPONSE_KEEP bytes of the last response body */
    int xray_fd;   /* -1 when X-Ray is off */
    xray_mode xray_mode;
    struct sockaddr_storage xray_addr;
    socklen_t xray_addrlen;
    char xray_where[300]; /* "host:port" for logs */
    rate_limit otlp_warn, xray_warn;
    uint64_t rng;
};

/* ---- small helpers ---- */

static struct timespec mono_ts(int64_t ns)
{
    struct timespec ts = {.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
    return ts;
}

static const char *process_getenv(const char *name, void *ctx)
{
    (void)ctx;
    return getenv(name);
}

/* xorshift64*: jitter only, not security. */
static uint64_t next_random(tracer *t)
{
    t->rng ^= t->rng >> 12;
    t->rng ^= t->rng << 25;
    t->rng ^= t->rng >> 27;
    return t->rng * 2685821657736338717ULL;
}

/* True when a warning may be logged now; *suppressed gets the count held back since the last. */
static bool rate_ok(rate_limit *r, uint64_t *suppressed)
{
    int64_t now = clock_mono_ns();
    if (r->ever && now - r->last_ns < WARN_INTERVAL_NS) {
        r->suppressed++;
        return false;
    }
    r->ever = true;
    r->last_ns = now;
    *suppressed = r->suppressed;
    r->suppressed = 0;
    return true;
}

static void otlp_warning(tracer *t, const char *message, const char *detail)
{
    uint64_t held;
    if (!rate_ok(&t->otlp_warn, &held))
        return;
    char held_s[24];
    snprintf(held_s, sizeof held_s, "%" PRIu64, held);
    log_warn(message, "endpoint", t->cfg.endpoint, "detail", detail, "suppressed_warnings", held_s,
             NULL);
}

static void xray_warning(tracer *t, const char *message, const char *detail)
{
    uint64_t held;
    if (!rate_ok(&t->xray_warn, &held))
        return;
    char held_s[24];
    snprintf(held_s, sizeof held_s, "%" PRIu64, held);
    log_warn(message, "daemon", t->xray_where, "detail", detail, "suppressed_warnings", held_s,
             NULL);
}

/* Stopping, or a flush is waiting: no more retries, and nothing past stop_deadline. */
static bool is_stopping(tracer *t)
{
    return atomic_load(&t->stopping) || atomic_load(&t->flushing);
}

/*
 * Sleep ms milliseconds unless the tracer starts stopping first; false when woken by stop.
 * Called by the export thread only.
 */
static bool sleep_unless_stopping(tracer *t, int64_t ms)
{
    int64_t until = clock_mono_ns() + ms * 1000000;
    struct timespec ts = mono_ts(until);
    pthread_mutex_lock(&t->qmu);
    while (!is_stopping(t) && clock_mono_ns() < until)
        pthread_cond_timedwait(&t->qcond, &t->qmu, &ts);
    bool stopped = is_stopping(t);
    pthread_mutex_unlock(&t->qmu);
    return !stopped;
}

/* ---- X-Ray ---- */

/* Send one span as a daemon datagram; false (and a warning) when it did not go out. */
static bool xray_send(tracer *t, const span *s)
{
    sbuf doc = {0}, dgram = {0};
    const char *problem = NULL;
    char reason[160] = "";
    if (!xray_segment_encode(&doc, s, t->resource.service_name, t->xray_mode) ||
        sbuf_failed(&doc) || !doc.data) {
        problem = "X-Ray segment encoding failed";
    } else {
        xray_datagram(&dgram, doc.data);
        if (sbuf_failed(&dgram) || !dgram.data) {
            problem = "X-Ray datagram: out of memory";
        } else {
            ssize_t n = sendto(t->xray_fd, dgram.data, dgram.len, MSG_DONTWAIT | MSG_NOSIGNAL,
                               (const struct sockaddr *)&t->xray_addr, t->xray_addrlen);
            if (n != (ssize_t)dgram.len) {
                problem = "X-Ray datagram not sent";
                snprintf(reason, sizeof reason, "%s (%zu bytes)",
                         n < 0 ? strerror(errno) : "short send", dgram.len);
            }
        }
    }
    sbuf_free(&doc);
    sbuf_free(&dgram);
    if (problem)
        xray_warning(t, problem, reason);
    return problem == NULL;
}

/* ---- OTLP/HTTP ---- */

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    tracer *t = arg;
    size_t n = size * nmemb;
    if (t->response.len < RESPONSE_KEEP) {
        size_t keep = RESPONSE_KEEP - t->response.len;
        sbuf_append(&t->response, data, n < keep ? n : keep);
    }
    return n;
}

/* libcurl's progress callback: abort a transfer still running past the shutdown deadline. */
static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    tracer *t = arg;
    return is_stopping(t) && clock_mono_ns() > atomic_load(&t->stop_deadline) ? 1 : 0;
}

/* Read a protobuf varint; false when the buffer ends first. */
static bool pb_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t byte = *(*p)++;
        *v |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80))
            return true;
    }
    return false;
}

/*
 * The rejected_spans of an ExportTraceServiceResponse (protobuf): field 1 partial_success
 * { 1: int64 rejected_spans, 2: string error_message }. 0 when absent or unparsable.
 */
static uint64_t pb_rejected(const uint8_t *p, const uint8_t *end, int depth)
{
    while (p < end) {
        uint64_t key, v;
        if (!pb_varint(&p, end, &key))
            return 0;
        unsigned field = (unsigned)(key >> 3), wire = (unsigned)(key & 7);
        if (wire == 0) {
            if (!pb_varint(&p, end, &v))
                return 0;
            if (depth == 1 && field == 1)
                return v;
        } else if (wire == 2) {
            if (!pb_varint(&p, end, &v) || v > (uint64_t)(end - p))
                return 0;
            if (depth == 0 && field == 1)
                return pb_rejected(p, p + v, 1);
            p += v;
        } else if (wire == 1 || wire == 5) {
            size_t skip = wire == 1 ? 8 : 4;
            if ((size_t)(end - p) < skip)
                return 0;
            p += skip;
        } else {
            return 0;
        }
    }
    return 0;
}

/* Spans the server says it rejected in a 2xx response (partial success), with its message. */
static uint64_t partial_rejected(tracer *t, char *msg, size_t msglen)
{
    msg[0] = '\0';
    if (!t->response.len)
        return 0;
    char *ctype = NULL;
    curl_easy_getinfo(t->curl, CURLINFO_CONTENT_TYPE, &ctype);
    bool json = ctype ? strstr(ctype, "json") != NULL : t->cfg.protocol == OTEL_PROTOCOL_HTTP_JSON;
    if (!json) {
        const uint8_t *p = (const uint8_t *)t->response.data;
        return pb_rejected(p, p + t->response.len, 0);
    }
    json_t *root = json_loadb(t->response.data, t->response.len, 0, NULL);
    json_t *ps = json_object_get(root, "partialSuccess");
    json_t *r = json_object_get(ps, "rejectedSpans");
    uint64_t n = 0;
    if (json_is_string(r))
        n = strtoull(json_string_value(r), NULL, 10);
    else if (json_is_integer(r) && json_integer_value(r) > 0)
        n = (uint64_t)json_integer_value(r);
    const char *m = json_string_value(json_object_get(ps, "errorMessage"));
    if (m)
        snprintf(msg, msglen, "%s", m);
    json_decref(root);
    return n;
}

typedef enum post_result { POST_OK, POST_RETRY, POST_FAIL } post_result;

/*
 * One POST of body. On POST_OK *rejected is the partial-success count; on POST_RETRY
 * *retry_after_s is the server's Retry-After (0 when none); otherwise why, in why.
 */
static post_result post_once(tracer *t, const void *body, size_t len, long timeout_ms,
                             uint64_t *rejected, long *retry_after_s, char *why, size_t whylen)
{
    *rejected = 0;
    *retry_after_s = 0;
    sbuf_free(&t->response);
    t->curl_err[0] = '\0';
    curl_easy_setopt(t->curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(t->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(t->curl, CURLOPT_TIMEOUT_MS, timeout_ms);
    CURLcode rc = curl_easy_perform(t->curl);
    if (rc != CURLE_OK) {
        snprintf(why, whylen, "%s", t->curl_err[0] ? t->curl_err : curl_easy_strerror(rc));
        return rc == CURLE_ABORTED_BY_CALLBACK ? POST_FAIL : POST_RETRY;
    }
    long status = 0;
    curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 200 && status < 300) {
        char msg[200];
        *rejected = partial_rejected(t, msg, sizeof msg);
        if (*rejected) {
            char detail[300];
            snprintf(detail, sizeof detail, "%" PRIu64 " spans rejected: %s", *rejected, msg);
            otlp_warning(t, "OTLP export: partial success, rejected spans dropped", detail);
        }
        return POST_OK;
    }
    snprintf(why, whylen, "HTTP %ld: %.200s", status, t->response.data ? t->response.data : "");
    if (status == 429 || status == 502 || status == 503 || status == 504) {
        curl_off_t ra = 0;
        if (curl_easy_getinfo(t->curl, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0)
            *retry_after_s = ra > RETRY_AFTER_MAX_S ? RETRY_AFTER_MAX_S : (long)ra;
        return POST_RETRY;
    }
    return POST_FAIL;
}

/* Backoff before attempt (attempt + 1): uniform in [cap/2, cap], cap doubling from 0.5 s. */
static int64_t backoff_ms(tracer *t, int attempt)
{
    int64_t cap = BACKOFF_BASE_MS;
    for (int i = 1; i < attempt && cap < BACKOFF_MAX_MS; i++)
        cap *= 2;
    if (cap > BACKOFF_MAX_MS)
        cap = BACKOFF_MAX_MS;
    return cap / 2 + (int64_t)(next_random(t) % (uint64_t)(cap / 2 + 1));
}

/*
 * POST body with retries; the number of its n spans lost (all, none, or the rejected ones).
 * Retries are logged at debug level; a loss is one (rate-limited) warning.
 */
static uint64_t post_with_retries(tracer *t, const void *body, size_t len, size_t n)
{
    char why[300] = "", detail[400];
    for (int attempt = 1;; attempt++) {
        long timeout_ms = t->cfg.timeout_ms;
        bool final = is_stopping(t);
        if (final) {
            int64_t left = (atomic_load(&t->stop_deadline) - clock_mono_ns()) / 1000000;
            if (left <= 0) {
                snprintf(detail, sizeof detail, "%zu spans: shutdown deadline passed%s%s", n,
                         *why ? "; last error: " : "", why);
                otlp_warning(t, "OTLP export failed, spans dropped", detail);
                return n;
            }
            if (left < timeout_ms)
                timeout_ms = (long)left;
        }
        uint64_t rejected;
        long retry_after_s;
        post_result r =
            post_once(t, body, len, timeout_ms, &rejected, &retry_after_s, why, sizeof why);
        if (r == POST_OK)
            return rejected < n ? rejected : n;
        if (r == POST_FAIL || final || attempt >= MAX_ATTEMPTS) {
            snprintf(detail, sizeof detail, "%zu spans, attempt %d%s: %s", n, attempt,
                     r == POST_FAIL ? ""
                     : final        ? " (shutting down)"
                                    : " (the last)",
                     why);
            otlp_warning(t, "OTLP export failed, spans dropped", detail);
            return n;
        }
        int64_t wait = retry_after_s > 0 ? (int64_t)retry_after_s * 1000 : backoff_ms(t, attempt);
        if (log_enabled(LOG_DEBUG)) {
            char wait_s[24];
            snprintf(wait_s, sizeof wait_s, "%" PRId64, wait);
            log_debug("OTLP export: retrying", "endpoint", t->cfg.endpoint, "detail", why,
                      "wait_ms", wait_s, NULL);
        }
        sleep_unless_stopping(t, wait); /* when stop cuts it short, one final attempt follows */
    }
}

/* Encode spans[0..n) in the configured protocol; false on an encoder failure. */
static bool encode(tracer *t, const span *spans, size_t n, uint8_t **body, size_t *len)
{
    *body = NULL;
    *len = 0;
    if (t->cfg.protocol == OTEL_PROTOCOL_HTTP_JSON) {
        sbuf b = {0};
        if (!otlp_json_encode(&b, spans, n, &t->resource) || sbuf_failed(&b) || !b.data) {
            sbuf_free(&b);
            return false;
        }
        *body = (uint8_t *)sbuf_take(&b, len);
        return *body != NULL;
    }
    return otlp_proto_encode(spans, n, &t->resource, body, len);
}

/* Export spans[0..n) over OTLP, marking the ones lost in failed[]. */
static void otlp_export(tracer *t, const span *spans, size_t n, bool *failed)
{
    uint8_t *body;
    size_t len;
    bool ok = encode(t, spans, n, &body, &len);
    if ((!ok || len > PAYLOAD_MAX) && n > 1) {
        free(body);
        size_t half = n / 2;
        otlp_export(t, spans, half, failed);
        otlp_export(t, spans + half, n - half, failed + half);
        return;
    }
    if (!ok || len > PAYLOAD_MAX) {
        char detail[160];
        snprintf(detail, sizeof detail, "span %.95s: %s", spans[0].name,
                 ok ? "encoded body over 1 MiB" : "encoder failed");
        otlp_warning(t, "OTLP export failed, span dropped", detail);
        free(body);
        failed[0] = true;
        return;
    }
    uint64_t lost = post_with_retries(t, body, len, n);
    free(body);
    for (uint64_t i = 0; i < lost; i++)
        failed[i] = true;
}

/* Hand a batch to every exporter and count each span once. */
static void export_batch(tracer *t, const span *spans, size_t n)
{
    memset(t->batch_failed, 0, n * sizeof *t->batch_failed);
    if (t->xray_fd >= 0)
        for (size_t i = 0; i < n; i++)
            if (!xray_send(t, &spans[i]))
                t->batch_failed[i] = true;
    if (t->curl)
        otlp_export(t, spans, n, t->batch_failed);
    uint64_t lost = 0;
    for (size_t i = 0; i < n; i++)
        lost += t->batch_failed[i];
    atomic_fetch_add(&t->dropped, lost);
    atomic_fetch_add(&t->exported, (uint64_t)n - lost);
}

/* ---- the export thread ---- */

static void *export_main(void *arg)
{
    tracer *t = arg;
    int64_t next_flush = clock_mono_ns() + FLUSH_INTERVAL_NS;
    pthread_mutex_lock(&t->qmu);
    for (;;) {
        struct timespec ts = mono_ts(next_flush);
        while (!is_stopping(t) && t->qlen < BATCH_MAX && clock_mono_ns() < next_flush)
            pthread_cond_timedwait(&t->qcond, &t->qmu, &ts);
        if (t->qlen == 0) {
            pthread_cond_broadcast(&t->idle); /* answers a waiting tracer_flush() */
            if (atomic_load(&t->stopping))
                break;
            next_flush = clock_mono_ns() + FLUSH_INTERVAL_NS;
            if (atomic_load(&t->flushing)) { /* sleep until the flusher has seen it */
                ts = mono_ts(next_flush);
                pthread_cond_timedwait(&t->qcond, &t->qmu, &ts);
            }
            continue;
        }
        size_t n = t->qlen < BATCH_MAX ? t->qlen : BATCH_MAX;
        for (size_t i = 0; i < n; i++)
            t->batch[i] = t->queue[(t->qhead + i) % t->qcap]; /* moves ownership */
        t->qhead = (t->qhead + n) % t->qcap;
        t->qlen -= n;
        atomic_store_explicit(&t->qfull, false, memory_order_relaxed);
        if (t->qlen == 0)
            next_flush = clock_mono_ns() + FLUSH_INTERVAL_NS;
        t->exporting = true;
        pthread_mutex_unlock(&t->qmu);

        export_batch(t, t->batch, n);
        for (size_t i = 0; i < n; i++)
            span_clear(&t->batch[i]);

        pthread_mutex_lock(&t->qmu);
        t->exporting = false;
    }
    pthread_mutex_unlock(&t->qmu);
    return NULL;
}

/* ---- set-up ---- */

void tracer_global_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

void tracer_global_cleanup(void)
{
    curl_global_cleanup();
}

/* Resolve AWS_XRAY_DAEMON_ADDRESS and open the socket; false only for a malformed address. */
static bool xray_open(tracer *t, const char *address, char *err, size_t errlen)
{
    char host[256];
    int port = 0;
    if (!xray_daemon_address(address, host, sizeof host, &port)) {
        snprintf(err, errlen, "AWS_XRAY_DAEMON_ADDRESS: not host:port or udp:host:port: %.100s",
                 address);
        return false;
    }
    snprintf(t->xray_where, sizeof t->xray_where, "%s:%d", host, port);
    char port_s[8];
    snprintf(port_s, sizeof port_s, "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM}, *ai = NULL;
    int rc = getaddrinfo(host, port_s, &hints, &ai);
    if (rc != 0 || !ai) {
        log_warn("X-Ray export off: cannot resolve the daemon address", "daemon", t->xray_where,
                 "detail", gai_strerror(rc), NULL);
        return true;
    }
    int fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        log_warn("X-Ray export off: no UDP socket", "detail", strerror(errno), NULL);
    } else {
        memcpy(&t->xray_addr, ai->ai_addr, ai->ai_addrlen);
        t->xray_addrlen = ai->ai_addrlen;
        t->xray_fd = fd;
    }
    freeaddrinfo(ai);
    return true;
}

/* The libcurl handle for OTLP, with everything but the body set; false when out of memory. */
static bool otlp_open(tracer *t)
{
    char line[1024];
    snprintf(line, sizeof line, "Content-Type: %s", otel_content_type(t->cfg.protocol));
    struct curl_slist *h = curl_slist_append(NULL, line);
    if (h)
        h = curl_slist_append(h, "Expect:"); /* no 100-continue round trip */
    for (size_t i = 0; h && i < t->cfg.n_headers; i++) {
        const char *v = t->cfg.header_values[i];
        if (*v)
            snprintf(line, sizeof line, "%s: %s", t->cfg.header_keys[i], v);
        else
            snprintf(line, sizeof line, "%s;", t->cfg.header_keys[i]); /* curl: empty value */
        struct curl_slist *next = curl_slist_append(h, line);
        if (!next)
            curl_slist_free_all(h);
        h = next;
    }
    if (!h)
        return false;
    t->headers = h;
    if (!(t->curl = curl_easy_init()))
        return false;
    CURL *c = t->curl;
    curl_easy_setopt(c, CURLOPT_URL, t->cfg.endpoint);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, t->headers);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "taskd-otlp-exporter/" TASKD_VERSION);
    const char *ca = ca_bundle_path();
    if (ca)
        curl_easy_setopt(c, CURLOPT_CAINFO, ca);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, t->curl_err);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, t);
    return true;
}

static bool init_locks(tracer *t)
{
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0)
        return false;
    bool ok = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 &&
              pthread_cond_init(&t->qcond, &ca) == 0;
    if (ok && pthread_cond_init(&t->idle, &ca) != 0) {
        pthread_cond_destroy(&t->qcond);
        ok = false;
    }
    pthread_condattr_destroy(&ca);
    if (!ok)
        return false;
    if (pthread_mutex_init(&t->qmu, NULL) != 0) {
        pthread_cond_destroy(&t->qcond);
        pthread_cond_destroy(&t->idle);
        return false;
    }
    if (pthread_mutex_init(&t->lmu, NULL) != 0) {
        pthread_mutex_destroy(&t->qmu);
        pthread_cond_destroy(&t->qcond);
        pthread_cond_destroy(&t->idle);
        return false;
    }
    return true;
}

/* Free everything (the export thread is not running); the locks are initialised. */
static void release(tracer *t)
{
    for (size_t i = 0; t->queue && i < t->qlen; i++)
        span_clear(&t->queue[(t->qhead + i) % t->qcap]);
    /* The ring fills from slot 0, so the used slots are [0, llen): the rest were never touched
     * (and stay unfaulted pages). */
    for (size_t i = 0; t->local && i < t->llen; i++)
        span_clear(&t->local[i]);
    free(t->queue);
    free(t->local);
    free(t->batch);
    free(t->batch_failed);
    if (t->curl)
        curl_easy_cleanup(t->curl);
    curl_slist_free_all(t->headers);
    sbuf_free(&t->response);
    if (t->xray_fd >= 0)
        close(t->xray_fd);
    free((void *)t->resource.attr_keys);
    free((void *)t->resource.attr_values);
    otel_config_clear(&t->cfg);
    pthread_mutex_destroy(&t->qmu);
    pthread_mutex_destroy(&t->lmu);
    pthread_cond_destroy(&t->qcond);
    pthread_cond_destroy(&t->idle);
    free(t);
}

tracer *tracer_new(const tracer_options *o, char *err, size_t errlen)
{
    static const tracer_options defaults = {.service_name = "taskd",
                                            .local_capacity = DEFAULT_LOCAL_CAPACITY};
    char scratch[8];
    if (!err || errlen == 0) {
        err = scratch;
        errlen = sizeof scratch;
    }
    err[0] = '\0';
    if (!o)
        o = &defaults;
    tracer *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    t->xray_fd = -1;
    t->xray_mode = o->xray_subsegments ? XRAY_SUBSEGMENTS : XRAY_SEGMENTS;
    t->rng = (uint64_t)clock_mono_ns() ^ (uint64_t)(uintptr_t)t ^ 0x9e3779b97f4a7c15ULL;
    if (!init_locks(t)) {
        snprintf(err, errlen, "cannot create tracer locks");
        free(t);
        return NULL;
    }
    if (!otel_config_load(&t->cfg, process_getenv, NULL, o->service_name, err, errlen)) {
        release(t);
        return NULL;
    }
    for (int i = 0; i < t->cfg.n_warnings; i++)
        log_warn("tracing configuration", "problem", t->cfg.warnings[i], NULL);

    t->resource.service_name = t->cfg.service_name;
    t->resource.service_version =
        t->cfg.service_version ? t->cfg.service_version : o->service_version;
    t->resource.n_attrs = t->cfg.n_attrs;
    if (t->cfg.n_attrs) {
        const char **keys = calloc(t->cfg.n_attrs, sizeof *keys);
        const char **values = calloc(t->cfg.n_attrs, sizeof *values);
        t->resource.attr_keys = keys;
        t->resource.attr_values = values;
        if (!keys || !values)
            goto nomem;
        for (size_t i = 0; i < t->cfg.n_attrs; i++) {
            keys[i] = t->cfg.attr_keys[i];
            values[i] = t->cfg.attr_values[i];
        }
    }

    if (o->local_capacity) {
        t->lcap = o->local_capacity;
        if (!(t->local = calloc(t->lcap, sizeof *t->local)))
            goto nomem;
    }

    if (!t->cfg.disabled) {
        const char *xray = getenv("AWS_XRAY_DAEMON_ADDRESS");
        if (xray && *xray && !xray_open(t, xray, err, errlen)) {
            release(t);
            return NULL;
        }
        if (t->cfg.endpoint && !otlp_open(t))
            goto nomem;
    }
    if (t->curl || t->xray_fd >= 0) {
        t->qcap = o->queue_capacity ? o->queue_capacity : DEFAULT_QUEUE_CAPACITY;
        t->queue = calloc(t->qcap, sizeof *t->queue);
        t->batch = calloc(BATCH_MAX, sizeof *t->batch);
        t->batch_failed = calloc(BATCH_MAX, sizeof *t->batch_failed);
        if (!t->queue || !t->batch || !t->batch_failed)
            goto nomem;
        if (pthread_create(&t->thread, NULL, export_main, t) != 0) {
            snprintf(err, errlen, "cannot start the span export thread");
            release(t);
            return NULL;
        }
        t->has_thread = true;
    }
    log_info("tracing", "otlp", t->curl ? t->cfg.endpoint : "off", "protocol",
             t->curl ? otel_content_type(t->cfg.protocol) : "-", "xray",
             t->xray_fd >= 0 ? t->xray_where : "off", "service_name", t->resource.service_name,
             "sdk_disabled", t->cfg.disabled ? "true" : "false", NULL);
    return t;

nomem:
    snprintf(err, errlen, "out of memory starting the tracer");
    release(t);
    return NULL;
}

/* ---- the caller's side ---- */

void tracer_emit(tracer *t, const span *s)
{
    if (!t || !s)
        return;
    if (t->lcap && s->task_id[0]) {
        span copy, old;
        if (span_copy(&copy, s)) {
            pthread_mutex_lock(&t->lmu);
            old = t->local[t->lnext];
            t->local[t->lnext] = copy;
            t->lnext = (t->lnext + 1) % t->lcap;
            if (t->llen < t->lcap)
                t->llen++;
            pthread_mutex_unlock(&t->lmu);
            span_clear(&old);
        }
    }
    if (!t->qcap || !(s->flags & 0x01)) /* no exporter, or not sampled */
        return;
    if (atomic_load_explicit(&t->qfull, memory_order_relaxed)) { /* spare the copy */
        atomic_fetch_add(&t->dropped, 1);
        return;
    }
    span copy;
    if (!span_copy(&copy, s)) {
        atomic_fetch_add(&t->dropped, 1);
        return;
    }
    bool queued = false, wake = false;
    pthread_mutex_lock(&t->qmu);
    if (!atomic_load(&t->stopping) && t->qlen < t->qcap) {
        t->queue[(t->qhead + t->qlen) % t->qcap] = copy;
        t->qlen++;
        if (t->qlen == t->qcap)
            atomic_store_explicit(&t->qfull, true, memory_order_relaxed);
        queued = true;
        wake = t->qlen == BATCH_MAX;
    }
    pthread_mutex_unlock(&t->qmu);
    if (wake)
        pthread_cond_signal(&t->qcond);
    if (!queued) {
        span_clear(&copy);
        atomic_fetch_add(&t->dropped, 1);
    }
}

static int by_start(const void *a, const void *b)
{
    const span *x = a, *y = b;
    if (x->start_ns != y->start_ns)
        return x->start_ns < y->start_ns ? -1 : 1;
    if (x->end_ns != y->end_ns)
        return x->end_ns < y->end_ns ? -1 : 1;
    return memcmp(x->span_id, y->span_id, sizeof x->span_id);
}

size_t tracer_task_spans(tracer *t, const char *task_id, span **out)
{
    *out = NULL;
    if (!t || !t->lcap || !task_id || !*task_id)
        return 0;
    size_t found = 0, n = 0;
    span *arr = NULL;
    pthread_mutex_lock(&t->lmu);
    size_t first = (t->lnext + t->lcap - t->llen) % t->lcap;
    for (size_t i = 0; i < t->llen; i++)
        if (strcmp(t->local[(first + i) % t->lcap].task_id, task_id) == 0)
            found++;
    if (found && (arr = malloc(found * sizeof *arr))) {
        for (size_t i = 0; i < t->llen && n < found; i++) {
            const span *s = &t->local[(first + i) % t->lcap];
            if (strcmp(s->task_id, task_id) == 0 && span_copy(&arr[n], s))
                n++;
        }
    }
    pthread_mutex_unlock(&t->lmu);
    if (n == 0) {
        free(arr);
        return 0;
    }
    qsort(arr, n, sizeof *arr, by_start);
    *out = arr;
    return n;
}

uint64_t tracer_dropped(const tracer *t)
{
    return t ? atomic_load(&t->dropped) : 0;
}

uint64_t tracer_exported(const tracer *t)
{
    return t ? atomic_load(&t->exported) : 0;
}

bool tracer_flush(tracer *t, int64_t deadline_ms)
{
    if (!t || !t->has_thread)
        return true;
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    int64_t left_ms = deadline_ms - ((int64_t)wall.tv_sec * 1000 + wall.tv_nsec / 1000000);
    int64_t until = clock_mono_ns() + (left_ms > 0 ? left_ms : 0) * 1000000;
    struct timespec ts = mono_ts(until);
    pthread_mutex_lock(&t->qmu);
    atomic_store(&t->stop_deadline, until);
    atomic_store(&t->flushing, true);
    pthread_cond_broadcast(&t->qcond);
    while ((t->qlen || t->exporting) && clock_mono_ns() < until)
        pthread_cond_timedwait(&t->idle, &t->qmu, &ts);
    bool empty = !t->qlen && !t->exporting;
    atomic_store(&t->flushing, false);
    pthread_cond_broadcast(&t->qcond);
    pthread_mutex_unlock(&t->qmu);
    return empty;
}

void tracer_free(tracer *t)
{
    if (!t)
        return;
    if (t->has_thread) {
        pthread_mutex_lock(&t->qmu);
        atomic_store(&t->stop_deadline, clock_mono_ns() + (int64_t)t->cfg.timeout_ms * 1000000);
        atomic_store(&t->stopping, true);
        pthread_cond_broadcast(&t->qcond);
        pthread_mutex_unlock(&t->qmu);
        pthread_join(t->thread, NULL);
        char exported[24], dropped[24];
        snprintf(exported, sizeof exported, "%" PRIu64, atomic_load(&t->exported));
        snprintf(dropped, sizeof dropped, "%" PRIu64, atomic_load(&t->dropped));
        log_info("tracing stopped", "exported_spans", exported, "dropped_spans", dropped, NULL);
    }
    release(t);
}
