/*
 * export_otlp — OTLP/HTTP export with retries; see export_otlp.h.
 *
 * State: one libcurl easy handle, reused for every POST so the connection is
 * kept alive, with the request headers, error buffer and the first
 * RESPONSE_KEEP bytes of the last response body (enough for a partialSuccess; a
 * longer one is warned about, its spans counted as exported) and its size;
 * the encoding; the warnings' rate limit; the jitter generator; and the hurry
 * flag with its deadline. The handle and everything but the hurry state are
 * touched by the export thread only. The hurry state is set from the thread
 * that flushes or stops the tracer: the flag and deadline are atomics (read by
 * the retry loop and by libcurl's progress callback mid-transfer), and a
 * mutex with a condition variable lets hurry() wake a backoff sleep.
 *
 * A batch goes out as: encode (a body over PAYLOAD_MAX split at once, the
 * parts cut from the spans' sizes in it, the whole neither packed nor
 * gzipped: export_fitting()), gzip it when so configured (splitting it while
 * what would be sent is over body_max) -> post_with_retries -> post_once per
 * attempt.
 * Losses are marked in the caller's failed[] and warned about once per POST.
 * PAYLOAD_MAX bounds the encoded body before compression, taskd's own limit.
 * body_max is learned: none at first, then one byte under the smallest body a
 * collector answered 413 Payload Too Large, so the batches that follow are
 * split before they go rather than each refused first, and a span alone over
 * it is dropped unsent. It bounds the body as sent, gzipped when so
 * configured: the 413 answered a request of that length, which is what a
 * proxy in front of the collector counts. A refused batch is split in halves
 * and each sent (down to one span, which is then dropped); it is never
 * retried as it was. A batch over a bound learned before is split at once
 * into as many parts as its body needs, each part's share of the body taken
 * to be its share of the spans, rather than halved step by step with each
 * half encoded and gzipped again; a part still over is split again. The
 * learned bound lasts LEARNED_MAX_NS from its last fall, then none holds
 * again: a collector whose limit was raised gets whole batches back, one that
 * kept it costs a few 413s again.
 */
#include "export_otlp.h"

#include "core/errbuf.h"
#include "core/sbuf.h"
#include "trace/otlp_json.h"
#include "trace/otlp_proto.h"
#include "util/ca_bundle.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/curl_retry.h"

#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#ifndef TASKD_VERSION
#define TASKD_VERSION "dev"
#endif

#define PAYLOAD_MAX       999999 /* under New Relic's 10^6 bytes (1 MiB elsewhere) */
#define MAX_ATTEMPTS      5
#define BACKOFF_BASE_MS   500
#define BACKOFF_MAX_MS    30000
#define RETRY_AFTER_MAX_S 60
#define RESPONSE_KEEP     (64 * 1024)          /* response bytes kept for partial-success parsing */
#define LEARNED_MAX_NS    (600 * 1000000000LL) /* how long a bound learned from a 413 holds */

typedef struct otlp_exporter {
    exporter base; /* first: the tracer's handle */
    char *endpoint;
    otel_protocol protocol;
    otel_compression compression;
    long timeout_ms;
    const otlp_resource *resource; /* borrowed */
    CURL *curl;
    struct curl_slist *headers;
    char curl_err[CURL_ERROR_SIZE];
    sbuf response;           /* the first RESPONSE_KEEP bytes of the last response body */
    size_t response_size;    /* the whole body's */
    size_t body_max;         /* bodies as sent over this are split (SIZE_MAX: none learned) */
    int64_t body_max_until;  /* now_ns() when a learned body_max ends */
    int64_t (*now_ns)(void); /* the monotonic clock body_max_until is on */
    int64_t backoff_base_ms; /* the backoff's cap before the first retry */
    exporter_warnings warnings;
    uint64_t rng;

    /* Hurry state, set by hurry() from another thread. */
    pthread_mutex_t mu;
    pthread_cond_t wake; /* CLOCK_MONOTONIC; a backoff sleep waits on it */
    atomic_bool hurried;
    _Atomic int64_t deadline; /* monotonic ns; valid once hurried */
} otlp_exporter;

static void warn(otlp_exporter *o, const char *message, const char *detail)
{
    exporter_warn(&o->warnings, message, "endpoint", o->endpoint, detail);
}

/* xorshift64*: jitter only, not security. */
static uint64_t next_random(otlp_exporter *o)
{
    o->rng ^= o->rng >> 12;
    o->rng ^= o->rng << 25;
    o->rng ^= o->rng >> 27;
    return o->rng * 2685821657736338717ULL;
}

/* ---- hurry ---- */

static void otlp_hurry(exporter *e, bool on, int64_t deadline_ns)
{
    otlp_exporter *o = (otlp_exporter *)e;
    pthread_mutex_lock(&o->mu);
    if (on)
        atomic_store(&o->deadline, deadline_ns);
    atomic_store(&o->hurried, on);
    pthread_cond_broadcast(&o->wake);
    pthread_mutex_unlock(&o->mu);
}

/* Sleep ms milliseconds unless hurried first (then return at once). */
static void sleep_unless_hurried(otlp_exporter *o, int64_t ms)
{
    int64_t until = clock_mono_ns() + ms * 1000000;
    struct timespec ts = clock_mono_timespec(until);
    pthread_mutex_lock(&o->mu);
    while (!atomic_load(&o->hurried) && clock_mono_ns() < until)
        pthread_cond_timedwait(&o->wake, &o->mu, &ts);
    pthread_mutex_unlock(&o->mu);
}

/* ---- one POST ---- */

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    otlp_exporter *o = arg;
    size_t n = size * nmemb;
    o->response_size += n;
    if (o->response.len < RESPONSE_KEEP) {
        size_t keep = RESPONSE_KEEP - o->response.len;
        sbuf_append(&o->response, data, n < keep ? n : keep);
    }
    return n;
}

/* libcurl's progress callback: abort a transfer still running past the hurry deadline. */
static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    otlp_exporter *o = arg;
    return atomic_load(&o->hurried) && clock_mono_ns() > atomic_load(&o->deadline) ? 1 : 0;
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
 * { 1: int64 rejected_spans, 2: string error_message }, the message into msg (cut to msglen as
 * errbuf_set() cuts).
 * 0 when absent, unparsable or negative.
 */
static uint64_t pb_rejected(const uint8_t *p, const uint8_t *end, int depth, char *msg,
                            size_t msglen)
{
    uint64_t n = 0;
    while (p < end) {
        uint64_t key, v;
        if (!pb_varint(&p, end, &key))
            return 0;
        unsigned field = (unsigned)(key >> 3), wire = (unsigned)(key & 7);
        if (wire == 0) {
            if (!pb_varint(&p, end, &v))
                return 0;
            if (depth == 1 && field == 1)
                n = v > INT64_MAX ? 0 : v; /* an int64 below 0 is no count */
        } else if (wire == 2) {
            if (!pb_varint(&p, end, &v) || v > (uint64_t)(end - p))
                return 0;
            if (depth == 0 && field == 1)
                return pb_rejected(p, p + v, 1, msg, msglen);
            if (depth == 1 && field == 2)
                errbuf_set(msg, msglen, "%.*s", v > INT_MAX ? INT_MAX : (int)v, (const char *)p);
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
    return n;
}

/* The JSON form of an int64 count: a string of decimal digits, or a number; anything else (a
 * sign, a fraction, trailing bytes, past INT64_MAX) counts none. */
static uint64_t json_count(const json_t *v)
{
    if (json_is_integer(v))
        return json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
    const char *s = json_string_value(v);
    if (!s || !*s || s[strspn(s, "0123456789")] != '\0')
        return 0;
    errno = 0;
    unsigned long long n = strtoull(s, NULL, 10);
    return errno || n > INT64_MAX ? 0 : (uint64_t)n;
}

/* Spans the server says it rejected in a 2xx response (partial success), with its message. */
static uint64_t partial_rejected(otlp_exporter *o, char *msg, size_t msglen)
{
    msg[0] = '\0';
    if (!o->response.len)
        return 0;
    char *ctype = NULL;
    curl_easy_getinfo(o->curl, CURLINFO_CONTENT_TYPE, &ctype);
    bool json = ctype ? strstr(ctype, "json") != NULL : o->protocol == OTEL_PROTOCOL_HTTP_JSON;
    if (!json) {
        const uint8_t *p = (const uint8_t *)o->response.data;
        uint64_t n = pb_rejected(p, p + o->response.len, 0, msg, msglen);
        if (!n)
            msg[0] = '\0'; /* a message from an answer that broke off says nothing */
        return n;
    }
    json_t *root = json_loadb(o->response.data, o->response.len, 0, NULL);
    json_t *ps = json_object_get(root, "partialSuccess");
    uint64_t n = json_count(json_object_get(ps, "rejectedSpans"));
    const char *m = json_string_value(json_object_get(ps, "errorMessage"));
    if (m)
        errbuf_set(msg, msglen, "%s", m);
    json_decref(root);
    return n;
}

typedef enum post_result { POST_OK, POST_RETRY, POST_FAIL, POST_TOO_LARGE } post_result;

/*
 * One POST of body. On POST_OK *rejected is the partial-success count; on POST_RETRY
 * *retry_after_s is the server's Retry-After (0 when none); otherwise why, in why.
 * POST_TOO_LARGE: the collector answered 413.
 */
static post_result post_once(otlp_exporter *o, const void *body, size_t len, long timeout_ms,
                             uint64_t *rejected, long *retry_after_s, char *why, size_t whylen)
{
    *rejected = 0;
    *retry_after_s = 0;
    sbuf_free(&o->response);
    o->response_size = 0;
    o->curl_err[0] = '\0';
    curl_easy_setopt(o->curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(o->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(o->curl, CURLOPT_TIMEOUT_MS, timeout_ms);
    CURLcode rc = curl_easy_perform(o->curl);
    if (rc != CURLE_OK) {
        snprintf(why, whylen, "%s", o->curl_err[0] ? o->curl_err : curl_easy_strerror(rc));
        return curl_transient(rc) ? POST_RETRY : POST_FAIL;
    }
    long status = 0;
    curl_easy_getinfo(o->curl, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 200 && status < 300) {
        char msg[200];
        /* what a reply past RESPONSE_KEEP says of rejected spans is out of reach */
        if (o->response_size > RESPONSE_KEEP) {
            snprintf(msg, sizeof msg, "%zu bytes, of which the first %d were kept",
                     o->response_size, RESPONSE_KEEP);
            warn(o,
                 "OTLP export: a reply too long to read for a partial success; its spans "
                 "count as exported",
                 msg);
            return POST_OK;
        }
        *rejected = partial_rejected(o, msg, sizeof msg);
        if (*rejected) {
            char detail[300];
            snprintf(detail, sizeof detail, "%" PRIu64 " spans rejected: %s", *rejected, msg);
            warn(o, "OTLP export: partial success, rejected spans dropped", detail);
        }
        return POST_OK;
    }
    const char *answer = o->response.data ? o->response.data : "";
    snprintf(why, whylen, "HTTP %ld: %.*s", status, utf8_prec(answer, 200), answer);
    if (status == 429 || status == 502 || status == 503 || status == 504) {
        curl_off_t ra = 0;
        if (curl_easy_getinfo(o->curl, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0)
            *retry_after_s = ra > RETRY_AFTER_MAX_S ? RETRY_AFTER_MAX_S : (long)ra;
        return POST_RETRY;
    }
    return status == 413 ? POST_TOO_LARGE : POST_FAIL;
}

/* ---- retries ---- */

/* Backoff before attempt (attempt + 1): uniform in [cap/2, cap], cap doubling from
 * backoff_base_ms (0.5 s). */
static int64_t backoff_ms(otlp_exporter *o, int attempt)
{
    int64_t cap = o->backoff_base_ms;
    for (int i = 1; i < attempt && cap < BACKOFF_MAX_MS; i++)
        cap *= 2;
    if (cap > BACKOFF_MAX_MS)
        cap = BACKOFF_MAX_MS;
    return cap / 2 + (int64_t)(next_random(o) % (uint64_t)(cap / 2 + 1));
}

/*
 * POST body with retries; the number of its n spans lost (all, none, or the rejected ones).
 * Retries are logged at debug level; a loss is one (rate-limited) warning. A 413 is neither
 * retried nor warned about here: *too_large is set and all n count as lost, for the caller to
 * split the batch or warn of the span.
 */
static uint64_t post_with_retries(otlp_exporter *o, const void *body, size_t len, size_t n,
                                  bool *too_large)
{
    *too_large = false;
    char why[300] = "", detail[400];
    for (int attempt = 1;; attempt++) {
        long timeout_ms = o->timeout_ms;
        bool final = atomic_load(&o->hurried);
        if (final) {
            int64_t left = (atomic_load(&o->deadline) - clock_mono_ns()) / 1000000;
            if (left <= 0) {
                snprintf(detail, sizeof detail,
                         "%zu spans: the deadline of a flush or a stop passed%s%s", n,
                         *why ? "; last error: " : "", why);
                warn(o, "OTLP export failed, spans dropped", detail);
                return n;
            }
            if (left < timeout_ms)
                timeout_ms = (long)left;
        }
        uint64_t rejected;
        long retry_after_s;
        post_result r =
            post_once(o, body, len, timeout_ms, &rejected, &retry_after_s, why, sizeof why);
        if (r == POST_OK)
            return rejected < n ? rejected : n;
        if (r == POST_TOO_LARGE) {
            *too_large = true;
            return n;
        }
        if (r == POST_FAIL || final || attempt >= MAX_ATTEMPTS) {
            snprintf(detail, sizeof detail, "%zu spans, attempt %d%s: %s", n, attempt,
                     r == POST_FAIL ? ""
                     : final        ? " (flushing or stopping: no retry)"
                                    : " (the last)",
                     why);
            warn(o, "OTLP export failed, spans dropped", detail);
            return n;
        }
        int64_t wait = retry_after_s > 0 ? (int64_t)retry_after_s * 1000 : backoff_ms(o, attempt);
        if (log_enabled(LOG_DEBUG)) {
            char wait_s[24];
            snprintf(wait_s, sizeof wait_s, "%" PRId64, wait);
            log_debug("OTLP export: retrying", "endpoint", o->endpoint, "detail", why, "wait_ms",
                      wait_s, NULL);
        }
        sleep_unless_hurried(o, wait); /* when a hurry cuts it short, one final attempt follows */
    }
}

/* ---- a batch ---- */

/*
 * Encode spans[0..n) in the configured protocol; false on an encoder failure. A body over
 * PAYLOAD_MAX may come back as its length alone, *body NULL (protobuf: not packed), and then
 * sizes[i] (room for n; NULL: not wanted) is the bytes of span i in it.
 */
static bool encode(otlp_exporter *o, const span *spans, size_t n, uint8_t **body, size_t *len,
                   size_t *sizes)
{
    *body = NULL;
    *len = 0;
    if (o->protocol == OTEL_PROTOCOL_HTTP_JSON) {
        sbuf b = {0};
        if (!otlp_json_encode_sized(&b, spans, n, o->resource, sizes) || sbuf_failed(&b) ||
            !b.data) {
            sbuf_free(&b);
            return false;
        }
        *body = (uint8_t *)sbuf_take(&b, len);
        return *body != NULL;
    }
    return otlp_proto_encode_within(spans, n, o->resource, PAYLOAD_MAX, sizes, body, len);
}

/*
 * in[0..len) as one gzip member (RFC 1952) in a new buffer at *out, *outlen bytes; false when
 * zlib fails (out of memory), *out then NULL.
 */
static bool gzip_body(const uint8_t *in, size_t len, uint8_t **out, size_t *outlen)
{
    *out = NULL;
    *outlen = 0;
    z_stream z = {0};
    /* windowBits 15 + 16: a gzip header and trailer instead of zlib's */
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return false;
    uLong cap = deflateBound(&z, (uLong)len);
    uint8_t *buf = malloc(cap ? cap : 1);
    if (!buf) {
        deflateEnd(&z);
        return false;
    }
    z.next_in = (Bytef *)(uintptr_t)in; /* zlib does not write through next_in */
    z.avail_in = (uInt)len;             /* len <= PAYLOAD_MAX */
    z.next_out = buf;
    z.avail_out = (uInt)cap;
    int rc = deflate(&z, Z_FINISH); /* deflateBound room: one call finishes */
    size_t produced = (size_t)z.total_out;
    deflateEnd(&z);
    if (rc != Z_STREAM_END) {
        free(buf);
        return false;
    }
    *out = buf;
    *outlen = produced;
    return true;
}

/* Warn of span s dropped as too large for the collector: its body of len bytes as sent was
 * answered 413 (refused) or is over one that was (not sent). */
static void warn_too_large(otlp_exporter *o, const span *s, size_t len, bool refused)
{
    char detail[300];
    snprintf(detail, sizeof detail, "span %.*s: a body of %zu bytes%s %s", utf8_prec(s->name, 95),
             s->name, len, o->compression == OTEL_COMPRESSION_GZIP ? " gzipped" : "",
             refused ? "was answered 413"
                     : "was not sent: the collector answered 413 to one no larger");
    warn(o, "OTLP export: the collector refused a span as too large, span dropped", detail);
}

/* After a 413 to a body of len bytes as sent: the bound falls under it (and its time restarts). */
static void learn_body_max(otlp_exporter *o, size_t len)
{
    if (len - 1 >= o->body_max) /* len >= 1: no span encodes or compresses to nothing */
        return;
    /* the first fall at info level, the others at debug */
    bool first = o->body_max == SIZE_MAX;
    o->body_max = len - 1;
    o->body_max_until = o->now_ns() + LEARNED_MAX_NS;
    if (first || log_enabled(LOG_DEBUG)) {
        char max_s[24];
        snprintf(max_s, sizeof max_s, "%zu", o->body_max);
        log_write(first ? LOG_INFO : LOG_DEBUG,
                  "OTLP export: the collector answered 413 Payload Too Large; batches are split "
                  "to bodies of at most body_max bytes as sent for the next 10 minutes",
                  "endpoint", o->endpoint, "body_max", max_s, NULL);
    }
}

static void otlp_export(exporter *e, const span *spans, size_t n, bool *failed);

/* Export spans[0..n) in parts (2 to n) of as near one count as may be, each on its own. */
static void export_parts(exporter *e, const span *spans, size_t n, bool *failed, size_t parts)
{
    size_t from = 0;
    for (size_t i = 1; i <= parts; i++) {
        size_t to = n * i / parts;
        otlp_export(e, spans + from, to - from, failed + from);
        from = to;
    }
}

/*
 * spans[0..n), encoded to len bytes, over PAYLOAD_MAX (n > 1): exported in as few parts as that
 * needs, cut at once from the spans' sizes in that body (sizes[i]), rather than halved again and
 * again with each half encoded anew. A part's body is at most the rest of the body (len less the
 * sizes, what every part carries) and its spans' sizes, and a part is cut before a span that would
 * take it past PAYLOAD_MAX, so that none is over but a span alone over it (dropped by
 * otlp_export()); within that the parts are of about one size, each cut at the span whose middle
 * is past its share of the sizes.
 */
static void export_fitting(otlp_exporter *o, const span *spans, size_t n, bool *failed,
                           const size_t *sizes, size_t len)
{
    size_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += sizes[i];
    if (!sum) { /* no span takes a byte: no encoding this exporter knows */
        export_parts(&o->base, spans, n, failed, 2);
        return;
    }
    size_t rest = len - sum;
    size_t room = PAYLOAD_MAX > rest ? PAYLOAD_MAX - rest : 1;
    size_t parts = (sum + room - 1) / room;
    size_t from = 0, in_part = 0, before = 0, next = 1; /* next: the even cut sought, of parts */
    for (size_t i = 0; i < n; i++) {
        size_t middle = before + sizes[i] / 2;
        if (i > from && (in_part + sizes[i] > room || middle * parts >= next * sum)) {
            otlp_export(&o->base, spans + from, i - from, failed + from);
            from = i;
            in_part = 0;
        }
        while (middle * parts >= next * sum)
            next++;
        in_part += sizes[i];
        before += sizes[i];
    }
    otlp_export(&o->base, spans + from, n - from, failed + from);
}

/*
 * spans[0..n), len bytes as sent, too large for the collector (refused: answered 413; else over
 * a body that was): exported again in parts, or, one span, dropped with a warning. The parts are
 * as many as len needs if each part's share of it is its share of the spans, aimed at 7/8 of
 * body_max (a part compresses a little worse than its batch, and spans differ in size): two after
 * a refusal, body_max then len - 1; more for a batch far over a bound learned before, so that it
 * is split at once, not halved step by step with each half encoded and gzipped again. A part
 * still over is split again as its batch was.
 */
static void too_large_for_collector(otlp_exporter *o, const span *spans, size_t n, bool *failed,
                                    size_t len, bool refused)
{
    if (n > 1) {
        size_t aim = o->body_max - o->body_max / 8;
        size_t parts = aim ? len / aim + 1 : n;
        export_parts(&o->base, spans, n, failed, parts < n ? parts : n);
        return;
    }
    warn_too_large(o, &spans[0], len, refused);
    failed[0] = true;
}

/* Drop all n spans of a batch, marked in failed[], with a warning saying why. */
static void drop_all(otlp_exporter *o, size_t n, bool *failed, const char *why)
{
    char detail[128];
    snprintf(detail, sizeof detail, "%zu spans: %s", n, why);
    warn(o, "OTLP export failed, spans dropped", detail);
    for (size_t i = 0; i < n; i++)
        failed[i] = true;
}

/* Export spans[0..n), marking the ones lost in failed[]. */
static void otlp_export(exporter *e, const span *spans, size_t n, bool *failed)
{
    otlp_exporter *o = (otlp_exporter *)e;
    if (atomic_load(&o->hurried) && clock_mono_ns() >= atomic_load(&o->deadline)) {
        /* past the deadline of a flush or a stop: nothing more goes out, so nothing is encoded
         * (a stop behind a full queue would encode and gzip every batch only to drop it) */
        drop_all(o, n, failed, "the deadline of a flush or a stop passed");
        return;
    }
    if (o->body_max != SIZE_MAX && o->now_ns() >= o->body_max_until)
        o->body_max = SIZE_MAX;
    uint8_t *body;
    size_t len;
    size_t *sizes = n > 1 ? malloc(n * sizeof *sizes) : NULL;
    bool ok = encode(o, spans, n, &body, &len, sizes);
    if ((!ok || len > PAYLOAD_MAX) && n > 1) {
        free(body);
        if (ok && sizes)
            export_fitting(o, spans, n, failed, sizes, len);
        else
            export_parts(e, spans, n, failed, 2); /* in halves */
        free(sizes);
        return;
    }
    free(sizes);
    if (!ok || len > PAYLOAD_MAX) {
        char detail[160];
        snprintf(detail, sizeof detail, "span %.*s: %s", utf8_prec(spans[0].name, 95),
                 spans[0].name, ok ? "encoded body over 999,999 bytes" : "encoder failed");
        warn(o, "OTLP export failed, span dropped", detail);
        free(body);
        failed[0] = true;
        return;
    }
    if (o->compression == OTEL_COMPRESSION_GZIP) {
        uint8_t *gz;
        size_t gzlen;
        bool zipped = gzip_body(body, len, &gz, &gzlen);
        free(body);
        if (!zipped) {
            drop_all(o, n, failed, "gzip compression failed");
            return;
        }
        body = gz;
        len = gzlen;
    }
    if (len > o->body_max) {
        /* over a body the collector refused: it would be refused too */
        free(body);
        too_large_for_collector(o, spans, n, failed, len, false);
        return;
    }
    bool too_large;
    uint64_t lost = post_with_retries(o, body, len, n, &too_large);
    free(body);
    if (too_large) {
        learn_body_max(o, len);
        too_large_for_collector(o, spans, n, failed, len, true);
        return;
    }
    for (uint64_t i = 0; i < lost; i++)
        failed[i] = true;
}

/* ---- set-up ---- */

void export_otlp_global_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

void export_otlp_global_cleanup(void)
{
    curl_global_cleanup();
}

static void otlp_free(exporter *e)
{
    otlp_exporter *o = (otlp_exporter *)e;
    if (o->curl)
        curl_easy_cleanup(o->curl);
    curl_slist_free_all(o->headers);
    sbuf_free(&o->response);
    free(o->endpoint);
    pthread_mutex_destroy(&o->mu);
    pthread_cond_destroy(&o->wake);
    free(o);
}

/* The mutex and the monotonic condition variable; false when either cannot be made. */
static bool init_locks(otlp_exporter *o)
{
    if (clock_mono_cond_init(&o->wake) != 0)
        return false;
    if (pthread_mutex_init(&o->mu, NULL) != 0) {
        pthread_cond_destroy(&o->wake);
        return false;
    }
    return true;
}

/* The request headers: Content-Type, Content-Encoding when compressing, no Expect, then the
 * configured ones; NULL when out of memory. */
static struct curl_slist *request_headers(const otel_config *cfg)
{
    char line[1024];
    snprintf(line, sizeof line, "Content-Type: %s", otel_content_type(cfg->protocol));
    struct curl_slist *h = curl_slist_append(NULL, line);
    if (h && cfg->compression == OTEL_COMPRESSION_GZIP) {
        struct curl_slist *next = curl_slist_append(h, "Content-Encoding: gzip");
        if (!next)
            curl_slist_free_all(h);
        h = next;
    }
    if (h) {
        struct curl_slist *next = curl_slist_append(h, "Expect:"); /* no 100-continue round trip */
        if (!next)
            curl_slist_free_all(h);
        h = next;
    }
    for (size_t i = 0; h && i < cfg->n_headers; i++) {
        const char *k = cfg->header_keys[i], *v = cfg->header_values[i];
        size_t size = strlen(k) + strlen(v) + 3; /* a token may be longer than line */
        char *field = malloc(size);
        if (field && *v)
            snprintf(field, size, "%s: %s", k, v);
        else if (field)
            snprintf(field, size, "%s;", k); /* curl: empty value */
        struct curl_slist *next = field ? curl_slist_append(h, field) : NULL;
        free(field);
        if (!next)
            curl_slist_free_all(h);
        h = next;
    }
    return h;
}

exporter *export_otlp_new(const otel_config *cfg, const otlp_resource *r, int64_t (*now_ns)(void),
                          int first_backoff_ms)
{
    otlp_exporter *o = calloc(1, sizeof *o);
    if (!o)
        return NULL;
    if (!init_locks(o)) {
        free(o);
        return NULL;
    }
    o->base.export = otlp_export;
    o->base.hurry = otlp_hurry;
    o->base.free = otlp_free;
    o->protocol = cfg->protocol;
    o->compression = cfg->compression;
    o->timeout_ms = cfg->timeout_ms;
    o->body_max = SIZE_MAX;
    o->now_ns = now_ns ? now_ns : clock_mono_ns;
    o->backoff_base_ms = first_backoff_ms > 0 ? first_backoff_ms : BACKOFF_BASE_MS;
    o->resource = r;
    o->rng = (uint64_t)clock_mono_ns() ^ (uint64_t)(uintptr_t)o ^ 0x9e3779b97f4a7c15ULL;
    if (!(o->endpoint = strdup(cfg->endpoint)) || !(o->headers = request_headers(cfg)) ||
        !(o->curl = curl_easy_init())) {
        otlp_free(&o->base);
        return NULL;
    }
    o->base.destination = o->endpoint;
    CURL *c = o->curl;
    curl_easy_setopt(c, CURLOPT_URL, o->endpoint);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, o->headers);
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
    curl_easy_setopt(c, CURLOPT_WRITEDATA, o);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, o->curl_err);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, o);
    return &o->base;
}
