/*
 * Unit tests for trace/tracer: the local store (per-task deep copies sorted by start, ring
 * overwrite, off when capacity is 0) and the exporters against receivers run inside the test —
 * an HTTP server (support/http_stub) that records each request and answers from a script of
 * statuses (or never answers), and a UDP socket standing in for the X-Ray daemon.
 * Covered: OTLP JSON and protobuf bodies with their Content-Type and configured headers (a
 * resource from the environment that is not UTF-8 made so in the protobuf body), gzip
 * bodies (Content-Encoding, decompressing to the spans; the traces variable over the generic), only
 * sampled spans exported, a batch flushed early at 512 spans, bodies of 10^6 bytes split, a batch
 * a collector answers 413 split until it fits (a span too large alone dropped; the bound learned
 * held 10 minutes, on a clock the test moves, and on the body as sent, gzipped; a batch far over
 * it split at once, each part gzipped once), retry
 * after 503 (backoff and Retry-After), a span queued while a flush waits sent at once, a batch
 * that outlived its flush held to that flush's deadline though a later one has begun, a flush
 * called while another thread's runs answering as that one does, drop
 * without retry on 400, partial success, drops on a
 * full queue behind a stalled collector with a bounded shutdown (the batches left past its
 * deadline not gzipped), X-Ray datagrams (a client's W3C
 * trace id kept whatever its first 4 bytes; a daemon name that resolves only after start looked
 * up again, at most every 5 s on a clock the test moves; a numeric address looked up once; a
 * name answered ::1 first sent to at its IPv4 address),
 * disabled export, bad configuration, and tracer_emit staying fast with an unreachable collector.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/sbuf.h"
#include "core/span.h"
#include "trace/trace.h"
#include "trace/tracer.h"
#include "util/log.h"
#include "support/http_stub.h"
#include "support/stderr_capture.h"
#include "support/trace_env.h"

#include "trace.pb-c.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define TASK_A "0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e5f"
#define TASK_B "0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e60"

#define XRAY_HEADER "{\"format\": \"json\", \"version\": 1}\n"

/* ---- helpers ---- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Epoch milliseconds: tracer_flush() takes a wall-clock deadline, as Lambda gives one. */
static int64_t epoch_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* What the OTLP exporter has given zlib to gzip, in calls and bytes (CMakeLists.txt links this
 * test with --wrap=deflate). */
static atomic_size_t deflate_calls, deflate_bytes;

int __real_deflate(z_streamp z, int flush);
int __wrap_deflate(z_streamp z, int flush);
int __wrap_deflate(z_streamp z, int flush)
{
    atomic_fetch_add(&deflate_calls, 1);
    atomic_fetch_add(&deflate_bytes, z->avail_in);
    return __real_deflate(z, flush);
}

/* What the OTLP exporter has sized (whole requests, and spans alone) and packed as protobuf
 * bodies, in calls and bytes (CMakeLists.txt links this test with
 * --wrap=protobuf_c_message_get_packed_size and --wrap=protobuf_c_message_pack: the exporter's
 * calls come here, not the library's own for the messages inside the one it was given). */
static atomic_size_t sized_calls, spans_sized, pack_calls, pack_bytes;

size_t __real_protobuf_c_message_get_packed_size(const ProtobufCMessage *m);
size_t __wrap_protobuf_c_message_get_packed_size(const ProtobufCMessage *m);
size_t __wrap_protobuf_c_message_get_packed_size(const ProtobufCMessage *m)
{
    if (m->descriptor == &opentelemetry__proto__trace__v1__export_trace_service_request__descriptor)
        atomic_fetch_add(&sized_calls, 1);
    else
        atomic_fetch_add(&spans_sized, 1);
    return __real_protobuf_c_message_get_packed_size(m);
}

/* While the pack gate is shut, the exporter's packing of a protobuf body waits at it, pack_held
 * set: the export thread then holds its batch, no request begun, until the test opens it. */
static atomic_bool pack_gate_shut, pack_held;

size_t __real_protobuf_c_message_pack(const ProtobufCMessage *m, uint8_t *out);
size_t __wrap_protobuf_c_message_pack(const ProtobufCMessage *m, uint8_t *out);
size_t __wrap_protobuf_c_message_pack(const ProtobufCMessage *m, uint8_t *out)
{
    while (atomic_load(&pack_gate_shut)) {
        atomic_store(&pack_held, true);
        sleep_ms(1);
    }
    atomic_store(&pack_held, false);
    size_t n = __real_protobuf_c_message_pack(m, out);
    atomic_fetch_add(&pack_calls, 1);
    atomic_fetch_add(&pack_bytes, n);
    return n;
}

/* The X-Ray daemon's name as the tests give it: getaddrinfo() (CMakeLists.txt links this test
 * with --wrap=getaddrinfo) fails it until daemon_resolves is set, then answers 127.0.0.1. Every
 * lookup of it, and of 127.0.0.1, is counted. */
#define DAEMON_NAME "xray-daemon.invalid"
static atomic_bool daemon_resolves;
static atomic_int daemon_lookups, loopback_lookups;

int __real_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                       struct addrinfo **res);

/* A name with an IPv6 and an IPv4 address, answered ::1 first where either will do, as glibc
 * answers localhost when /etc/hosts gives it ::1 too; 127.0.0.1 alone for IPv4. */
#define DUAL_NAME "xray-dual.invalid"

static int dual_stack_lookup(const char *service, const struct addrinfo *hints,
                             struct addrinfo **res)
{
    struct addrinfo v4_hints = hints ? *hints : (struct addrinfo){0}, *v4 = NULL, *v6 = NULL;
    struct addrinfo v6_hints = v4_hints;
    v4_hints.ai_family = AF_INET;
    v6_hints.ai_family = AF_INET6;
    int family = hints ? hints->ai_family : AF_UNSPEC;
    int rc =
        family == AF_INET6 ? EAI_NONAME : __real_getaddrinfo("127.0.0.1", service, &v4_hints, &v4);
    if (rc != 0 || family == AF_INET) {
        *res = v4;
        return rc;
    }
    rc = __real_getaddrinfo("::1", service, &v6_hints, &v6);
    if (rc != 0) {
        freeaddrinfo(v4);
        return rc;
    }
    struct addrinfo *last = v6;
    while (last->ai_next)
        last = last->ai_next;
    last->ai_next = v4; /* freeaddrinfo() frees the chain entry by entry */
    *res = v6;
    return 0;
}
/* A daemon name whose first hang_from lookups (that at start, when 1) fail at once and whose
 * later ones hang, as a resolver that does not answer does, until hang_ends is set (or 30 s have
 * passed; the first hang_released of all lookups need not wait for it), then fail, or answer
 * 127.0.0.1 when hang_resolves is set. The lookups begun and ended are counted. */
#define HANG_NAME "xray-hang.invalid"
static atomic_bool hang_ends, hang_resolves;
static atomic_int hang_from, hang_released, hang_lookups, hang_lookups_ended;

static int hanging_lookup(const char *service, const struct addrinfo *hints, struct addrinfo **res)
{
    int number = atomic_fetch_add(&hang_lookups, 1);
    if (number >= atomic_load(&hang_from)) {
        int64_t until = now_ms() + 30000;
        while (!atomic_load(&hang_ends) && number >= atomic_load(&hang_released) &&
               now_ms() < until)
            sleep_ms(5);
    }
    int rc = atomic_load(&hang_resolves) ? __real_getaddrinfo("127.0.0.1", service, hints, res)
                                         : EAI_AGAIN;
    atomic_fetch_add(&hang_lookups_ended, 1);
    return rc;
}

int __wrap_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                       struct addrinfo **res);
int __wrap_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                       struct addrinfo **res)
{
    if (node && strcmp(node, "127.0.0.1") == 0)
        atomic_fetch_add(&loopback_lookups, 1);
    if (node && strcmp(node, DUAL_NAME) == 0)
        return dual_stack_lookup(service, hints, res);
    if (node && strcmp(node, HANG_NAME) == 0)
        return hanging_lookup(service, hints, res);
    if (!node || strcmp(node, DAEMON_NAME) != 0)
        return __real_getaddrinfo(node, service, hints, res);
    atomic_fetch_add(&daemon_lookups, 1);
    if (!atomic_load(&daemon_resolves))
        return EAI_NONAME;
    return __real_getaddrinfo("127.0.0.1", service, hints, res);
}

/* The X-Ray exporter's sockets refused: socket() (CMakeLists.txt links this test with
 * --wrap=socket) fails with EMFILE, as it does when descriptors run out, for the next
 * udp_refusals non-blocking UDP sockets asked for (the exporter's: the tests' daemons block).
 * Those refused are counted. */
static atomic_int udp_refusals, udp_refused;

/* A teardown: the tests after one that failed with UDP sockets refused have theirs. */
static int udp_sockets_allowed(void **state)
{
    (void)state;
    atomic_store(&udp_refusals, 0);
    return 0;
}

int __real_socket(int domain, int type, int protocol);
int __wrap_socket(int domain, int type, int protocol);
int __wrap_socket(int domain, int type, int protocol)
{
    if ((type & 0xf) == SOCK_DGRAM && (type & SOCK_NONBLOCK) && atomic_load(&udp_refusals) > 0) {
        atomic_fetch_sub(&udp_refusals, 1);
        atomic_fetch_add(&udp_refused, 1);
        errno = EMFILE;
        return -1;
    }
    return __real_socket(domain, type, protocol);
}

/* Lookup threads refused: pthread_create() (CMakeLists.txt links this test with
 * --wrap=pthread_create) fails with EAGAIN, as it does when threads or memory run out, for a
 * thread made detached (the X-Ray exporter's lookups: the tracer's thread and the tests' own are
 * joinable) while refuse_detached is set. Those refused are counted. */
static atomic_bool refuse_detached;
static atomic_int detached_refused;

/* A teardown: the tests after one that failed with lookup threads refused make theirs. */
static int lookup_threads_allowed(void **state)
{
    (void)state;
    atomic_store(&refuse_detached, false);
    return 0;
}

int __real_pthread_create(pthread_t *thread, const pthread_attr_t *attr, void *(*fn)(void *),
                          void *arg);
int __wrap_pthread_create(pthread_t *thread, const pthread_attr_t *attr, void *(*fn)(void *),
                          void *arg);

/* The detached threads (the X-Ray exporter's lookups) that have ended: counted once their
 * function has returned, so a lookup counted has given its answer. */
static atomic_int detached_ended;

typedef struct detached_run {
    void *(*fn)(void *);
    void *arg;
} detached_run;

static void *counted_run(void *p)
{
    detached_run run = *(detached_run *)p;
    free(p);
    void *r = run.fn(run.arg);
    atomic_fetch_add(&detached_ended, 1);
    return r;
}

/* Every thread started through pthread_create(), detached or not. */
static atomic_int threads_started;

int __wrap_pthread_create(pthread_t *thread, const pthread_attr_t *attr, void *(*fn)(void *),
                          void *arg)
{
    atomic_fetch_add(&threads_started, 1);
    int detach;
    if (!attr || pthread_attr_getdetachstate(attr, &detach) != 0 ||
        detach != PTHREAD_CREATE_DETACHED)
        return __real_pthread_create(thread, attr, fn, arg);
    if (atomic_load(&refuse_detached)) {
        atomic_fetch_add(&detached_refused, 1);
        return EAGAIN;
    }
    detached_run *run = malloc(sizeof *run);
    if (!run)
        return EAGAIN;
    *run = (detached_run){fn, arg};
    int rc = __real_pthread_create(thread, attr, counted_run, run);
    if (rc != 0)
        free(run);
    return rc;
}

/* A hook run once by the next condition wait of the thread that armed it, with the wait's mutex
 * released meanwhile (CMakeLists.txt links this test with --wrap=pthread_cond_timedwait): once
 * the wait is over (in tracer_flush(), what it does then comes after the export thread woke the
 * flush and before the flush looks at the queue), or in place of the wait, which then returns
 * at once as a spurious wake-up does (in tracer_flush(), the flush has begun). */
static void (*_Atomic wait_hook)(void);
static pthread_t wait_hook_thread;
static bool wait_hook_replaces;
/* The condition waits begun by the threads that set counts_waits. */
static _Thread_local bool counts_waits;
static atomic_int waits_counted;

int __real_pthread_cond_timedwait(pthread_cond_t *cond, pthread_mutex_t *mu,
                                  const struct timespec *until);
int __wrap_pthread_cond_timedwait(pthread_cond_t *cond, pthread_mutex_t *mu,
                                  const struct timespec *until);
int __wrap_pthread_cond_timedwait(pthread_cond_t *cond, pthread_mutex_t *mu,
                                  const struct timespec *until)
{
    if (counts_waits)
        atomic_fetch_add(&waits_counted, 1);
    void (*hook)(void) = atomic_load(&wait_hook);
    bool mine = hook && pthread_equal(pthread_self(), wait_hook_thread);
    int rc = mine && wait_hook_replaces ? 0 : __real_pthread_cond_timedwait(cond, mu, until);
    if (mine) {
        atomic_store(&wait_hook, NULL);
        pthread_mutex_unlock(mu);
        hook();
        pthread_mutex_lock(mu);
    }
    return rc;
}

static void arm_wait_hook(void (*hook)(void), bool replaces)
{
    wait_hook_thread = pthread_self();
    wait_hook_replaces = replaces;
    atomic_store(&wait_hook, hook);
}

/* Run hook in this thread's next condition wait, once it is over. */
static void after_next_wait(void (*hook)(void))
{
    arm_wait_hook(hook, false);
}

/* Run hook in place of this thread's next condition wait. */
static void instead_of_next_wait(void (*hook)(void))
{
    arm_wait_hook(hook, true);
}

/* The monotonic clock the X-Ray exporter waits between lookups on, moved by xray_clock_ahead. */
static _Atomic int64_t xray_clock_ahead;

static int64_t xray_clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + atomic_load(&xray_clock_ahead);
}

/* A finished, sampled span numbered n of a task, starting at start_ns. */
static void make_span(span *s, const char *task_id, int n, int64_t start_ns)
{
    memset(s, 0, sizeof *s);
    for (int i = 0; i < 16; i++)
        s->trace_id[i] = (uint8_t)(0xa0 + i);
    s->span_id[0] = 0x5a;
    s->span_id[1] = 0xa5;
    s->span_id[6] = (uint8_t)(n >> 8);
    s->span_id[7] = (uint8_t)n;
    s->flags = 1;
    snprintf(s->name, sizeof s->name, "span %d", n);
    s->kind = SPAN_KIND_INTERNAL;
    s->start_ns = start_ns;
    s->end_ns = start_ns + 1000;
    snprintf(s->task_id, sizeof s->task_id, "%s", task_id);
    span_set_str(s, "task.type", "echo");
    span_set_int(s, "n", n);
}

static void span_id_hex(int n, char out[17])
{
    span s;
    make_span(&s, "", n, 1);
    span_hex(s.span_id, 8, out);
    span_clear(&s);
}

/* Whether a protobuf body of len bytes holds span n (bytes fields are raw). */
static bool proto_holds_span(const void *body, size_t len, int n)
{
    span s;
    make_span(&s, "", n, 1);
    bool found = memmem(body, len, s.span_id, 8) != NULL;
    span_clear(&s);
    return found;
}

/* Emit span number n (start 1e18 + n) and clear it. */
static void emit(tracer *t, const char *task_id, int n)
{
    span s;
    make_span(&s, task_id, n, 1000000000000000000LL + n);
    tracer_emit(t, &s);
    span_clear(&s);
}

static tracer *start_with(const tracer_options *o)
{
    char err[256] = "";
    tracer *t = tracer_new(o, err, sizeof err);
    if (!t)
        print_message("tracer_new: %s\n", err);
    assert_non_null(t);
    return t;
}

static tracer *start(size_t queue, size_t local)
{
    tracer_options o = {.service_name = "taskd-test",
                        .service_version = "9.9.9",
                        .queue_capacity = queue,
                        .local_capacity = local};
    return start_with(&o);
}

/* The batch interval and the first backoff of the tests whose subject is what is sent, retried
 * or dropped, not when (tracer_options): a batch goes 20 ms after the queue emptied, not 1 s, a
 * retry follows 1-2 ms after a failure, not 250-500 ms and doubling. */
#define QUICK_BATCH_MS   20
#define QUICK_BACKOFF_MS 2

static tracer *start_quick(void)
{
    tracer_options o = {.service_name = "taskd-test",
                        .batch_interval_ms = QUICK_BATCH_MS,
                        .otlp_backoff_ms = QUICK_BACKOFF_MS};
    return start_with(&o);
}

/* Wait up to ms for the counter to reach want; true when it did. */
static bool wait_count(uint64_t (*counter)(const tracer *), const tracer *t, uint64_t want, int ms)
{
    int64_t until = now_ms() + ms;
    while (counter(t) < want && now_ms() < until)
        sleep_ms(5);
    return counter(t) >= want;
}

/* Wait up to 10 s for n (counted on another thread) to reach want: its value then. */
static int wait_atomic(atomic_int *n, int want)
{
    int64_t until = now_ms() + 10000;
    while (atomic_load(n) < want && now_ms() < until)
        sleep_ms(5);
    return atomic_load(n);
}

/* ---- the HTTP receiver (support/http_stub) ---- */

#define JSON_TYPE  "Content-Type: application/json\r\n"
#define PROTO_TYPE "Content-Type: application/x-protobuf\r\n"

/* A receiver answering from script, its last answer repeating. */
static http_stub *receiver_script(const http_stub_reply *script, size_t n)
{
    http_stub_options o = {.script = script, .script_len = n};
    return http_stub_start(&o);
}

/*
 * A receiver answering request i with statuses[i] (0-terminated, the last one repeating) and
 * {} as JSON; no statuses: it reads requests and never answers.
 */
static http_stub *receiver_start(const int *statuses)
{
    http_stub_reply script[8] = {{.action = HTTP_STUB_HANG}};
    size_t n = 0;
    for (; statuses && statuses[n]; n++) {
        assert_true(n < 8);
        script[n] = (http_stub_reply){.status = statuses[n], .headers = JSON_TYPE, .body = "{}"};
    }
    return receiver_script(script, n ? n : 1);
}

static void set_endpoint(const char *var, int port, const char *path)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    setenv(var, url, 1);
}

/* ---- the local store ---- */

static void test_local_store_sorted_copies(void **state)
{
    (void)state;
    test_trace_env_clear();
    tracer *t = start(0, 100);
    span s;
    static const int64_t starts[] = {300, 100, 200};
    for (int i = 0; i < 3; i++) {
        make_span(&s, TASK_A, i, starts[i]);
        tracer_emit(t, &s);
        span_clear(&s);
    }
    make_span(&s, TASK_B, 7, 50);
    tracer_emit(t, &s);
    span_clear(&s);
    make_span(&s, "", 8, 10); /* no task: not kept */
    tracer_emit(t, &s);
    span_clear(&s);

    span *got = NULL;
    size_t n = tracer_task_spans(t, TASK_A, &got);
    assert_int_equal(n, 3);
    assert_int_equal(got[0].start_ns, 100);
    assert_int_equal(got[1].start_ns, 200);
    assert_int_equal(got[2].start_ns, 300);
    assert_string_equal(got[0].name, "span 1");
    assert_string_equal(got[0].task_id, TASK_A);
    assert_int_equal(got[0].n_attrs, 2);
    assert_string_equal(got[0].attrs[0].v.s, "echo"); /* a deep copy: the original is gone */
    for (size_t i = 0; i < n; i++)
        span_clear(&got[i]);
    free(got);

    n = tracer_task_spans(t, TASK_B, &got);
    assert_int_equal(n, 1);
    assert_string_equal(got[0].name, "span 7");
    span_clear(&got[0]);
    free(got);

    got = (span *)&s;
    assert_int_equal(tracer_task_spans(t, "0190f3c2-0000-7000-8000-000000000000", &got), 0);
    assert_null(got);
    assert_int_equal(tracer_task_spans(t, "", &got), 0);
    assert_int_equal(tracer_dropped(t), 0);
    assert_int_equal(tracer_exported(t), 0);
    tracer_free(t);
}

static void test_local_store_keeps_the_newest(void **state)
{
    (void)state;
    test_trace_env_clear();
    tracer *t = start(0, 4);
    for (int i = 0; i < 6; i++)
        emit(t, TASK_A, i);
    span *got;
    size_t n = tracer_task_spans(t, TASK_A, &got);
    assert_int_equal(n, 4);
    for (size_t i = 0; i < n; i++) {
        char want[16];
        snprintf(want, sizeof want, "span %zu", i + 2);
        assert_string_equal(got[i].name, want);
        span_clear(&got[i]);
    }
    free(got);
    tracer_free(t);
}

static void test_local_store_off(void **state)
{
    (void)state;
    test_trace_env_clear();
    tracer *t = start(0, 0);
    emit(t, TASK_A, 1);
    span *got;
    assert_int_equal(tracer_task_spans(t, TASK_A, &got), 0);
    assert_null(got);
    tracer_free(t);
}

static void test_null_and_defaults(void **state)
{
    (void)state;
    test_trace_env_clear();
    tracer_free(NULL);
    tracer_emit(NULL, NULL);
    assert_int_equal(tracer_dropped(NULL), 0);
    assert_int_equal(tracer_exported(NULL), 0);
    span *got;
    assert_int_equal(tracer_task_spans(NULL, TASK_A, &got), 0);
    tracer *t = tracer_new(NULL, NULL, 0); /* all defaults */
    assert_non_null(t);
    emit(t, TASK_A, 1);
    assert_int_equal(tracer_task_spans(t, TASK_A, &got), 1);
    span_clear(&got[0]);
    free(got);
    tracer_free(t);
}

/* An attribute key is kept up to SPAN_KEY_MAX bytes and cut there; the values stay whole. */
static void test_attribute_keys(void **state)
{
    (void)state;
    span s;
    memset(&s, 0, sizeof s);
    char key[SPAN_KEY_MAX + 8];
    memset(key, 'k', sizeof key - 1);
    key[sizeof key - 1] = '\0';
    span_set_static(&s, "http.route", "/tasks");
    span_set_str(&s, key, "value");
    span_set_int(&s, "", 7);
    assert_int_equal(s.n_attrs, 3);
    assert_string_equal(s.attrs[0].key, "http.route");
    assert_string_equal(s.attrs[0].v.s, "/tasks");
    assert_int_equal(strlen(s.attrs[1].key), SPAN_KEY_MAX);
    assert_memory_equal(s.attrs[1].key, key, SPAN_KEY_MAX);
    assert_string_equal(s.attrs[1].v.s, "value");
    assert_string_equal(s.attrs[2].key, "");
    assert_int_equal(s.attrs[2].v.i, 7);
    span_clear(&s);
}

/* A span's name is UTF-8, as a protobuf string must be: a long one is cut between characters,
 * and a byte that starts none (a file name's, say) is a '?'. */
static void test_span_names_are_utf8(void **state)
{
    (void)state;
    char name[200] = "exec w";
    for (int i = 0; i < 60; i++)
        strcat(name, "\xc3\xa9"); /* 6 + 120 bytes: the cut falls inside one */
    span s;
    memset(&s, 0, sizeof s);
    trace_begin(&s, NULL, name, SPAN_KIND_INTERNAL);
    assert_int_equal(strlen(s.name), SPAN_NAME_MAX - 1); /* 6 + 44 x 2: whole characters */
    assert_memory_equal(s.name, name, strlen(s.name));
    char *clean = utf8_dup(s.name);
    assert_string_equal(clean, s.name);
    free(clean);
    span_clear(&s);
    trace_begin(&s, NULL, "exec a\xff.sh", SPAN_KIND_INTERNAL);
    assert_string_equal(s.name, "exec a?.sh");
    span_clear(&s);
}

/* ---- OTLP ---- */

static void test_otlp_json(void **state)
{
    (void)state;
    test_trace_env_clear();
    http_stub *r = receiver_start((const int[]){200, 0});
    set_endpoint("OTEL_EXPORTER_OTLP_ENDPOINT", http_stub_port(r), "/");
    setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json", 1);
    setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=s%20cret,x-team = core ", 1);
    setenv("OTEL_SERVICE_NAME", "tasks-api", 1);
    setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=loses,deployment.environment=st%C3%A5ge", 1);
    tracer *t = start(64, 0);
    for (int i = 1; i <= 3; i++)
        emit(t, TASK_A, i);
    span unsampled;
    make_span(&unsampled, TASK_A, 99, 5);
    unsampled.flags = 0;
    tracer_emit(t, &unsampled);
    span_clear(&unsampled);
    span with_state; /* a trace that came with a tracestate */
    make_span(&with_state, TASK_A, 4, 5);
    with_state.trace_state = strdup("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
    assert_non_null(with_state.trace_state);
    tracer_emit(t, &with_state);
    span_clear(&with_state);
    assert_true(tracer_flush(t, epoch_ms() + 5000)); /* at once, not the 1 s batch timer */
    assert_int_equal(tracer_exported(t), 4);
    assert_int_equal(tracer_dropped(t), 0);
    tracer_free(t);

    assert_int_equal(http_stub_count(r), 1);
    const http_stub_request *q = http_stub_request_at(r, 0);
    char v[128];
    assert_string_equal(q->line, "POST /v1/traces HTTP/1.1");
    assert_string_equal(http_stub_header(q, "Content-Type", v, sizeof v), "application/json");
    assert_string_equal(http_stub_header(q, "x-api-key", v, sizeof v), "s cret");
    assert_string_equal(http_stub_header(q, "x-team", v, sizeof v), "core");
    assert_null(http_stub_header(q, "Expect", v, sizeof v));
    assert_null(http_stub_header(q, "Content-Encoding", v, sizeof v)); /* not compressed */
    assert_int_equal(strlen(q->body), q->body_len);
    for (int i = 1; i <= 3; i++) {
        char hex[17];
        span_id_hex(i, hex);
        assert_non_null(strstr(q->body, hex));
    }
    char hex[17];
    span_id_hex(99, hex);
    assert_null(strstr(q->body, hex)); /* not sampled: not exported */
    /* traceState on that span only */
    const char *state_at =
        strstr(q->body, "\"traceState\":\"rojo=00f067aa0ba902b7,congo=t61rcWkgMzE\"");
    assert_non_null(state_at);
    assert_null(strstr(state_at + 1, "\"traceState\""));
    assert_ptr_equal(strstr(q->body, "\"traceState\""), state_at);
    assert_non_null(strstr(q->body, "\"tasks-api\""));
    assert_null(strstr(q->body, "loses"));
    assert_non_null(strstr(q->body, "\"deployment.environment\""));
    assert_non_null(strstr(q->body, "\"st\xc3\xa5ge\""));
    assert_non_null(strstr(q->body, "\"9.9.9\"")); /* service.version from the options */
    http_stub_stop(r);
}

/* A configured header goes out whole, however long its value: a bearer token of 2 kB (an
 * identity provider's JWT) was cut to the first 1,023 bytes of its line, and refused. */
static void test_long_header_sent_whole(void **state)
{
    (void)state;
    test_trace_env_clear();
    http_stub *r = receiver_start((const int[]){200, 0});
    set_endpoint("OTEL_EXPORTER_OTLP_ENDPOINT", http_stub_port(r), "");
    char token[2049];
    for (size_t i = 0; i < sizeof token - 1; i++)
        token[i] = "abcdefghijklmnopqrstuvwxyz0123456789"[i % 36];
    token[sizeof token - 1] = '\0';
    char headers[2200];
    snprintf(headers, sizeof headers, "x-team=core,Authorization=Bearer%%20%s,x-last=1", token);
    setenv("OTEL_EXPORTER_OTLP_HEADERS", headers, 1);
    tracer *t = start(64, 0);
    emit(t, TASK_A, 1);
    assert_true(tracer_flush(t, epoch_ms() + 5000));
    tracer_free(t);
    assert_int_equal(http_stub_count(r), 1);
    const http_stub_request *q = http_stub_request_at(r, 0);
    const char *v;
    size_t len;
    assert_true(http_stub_header_find(q, "Authorization", &v, &len));
    assert_int_equal(len, strlen("Bearer ") + strlen(token));
    assert_memory_equal(v, "Bearer ", 7);
    assert_memory_equal(v + 7, token, strlen(token));
    char one[8];
    assert_string_equal(http_stub_header(q, "x-last", one, sizeof one), "1");
    http_stub_stop(r);
}

/* True when every byte of s is zero: it holds nothing. */
/* Empty as span_reset() leaves a span: every field before the arrays zero, no entry counted. */
static bool span_empty(const span *s)
{
    static const span zero;
    return memcmp(s, &zero, offsetof(span, attrs)) == 0;
}

/* Moves and copies carry the counted attributes and links, whatever the arrays hold past them;
 * a reset span reused frees only what it owns again (ASan's leak and double-free checks). */
static void test_span_move_and_copy_take_the_counted_entries(void **state)
{
    (void)state;
    span a, b, c;
    memset(&a, 0xab, sizeof a); /* stale bytes everywhere: a reset must make it empty */
    memset(&b, 0xcd, sizeof b);
    span_reset(&a);
    assert_true(span_empty(&a));
    span_set_str(&a, "k1", "one");
    span_set_static(&a, "k2", "two");
    span_set_int(&a, "k3", 3);
    static const uint8_t tid[16] = {1}, sid[8] = {2}, sid2[8] = {3};
    span_add_link(&a, tid, sid);
    span_add_link(&a, tid, sid2);
    span_set_error(&a, "broken");
    strcpy(a.task_id, TASK_A);

    span_move(&b, &a);
    assert_true(span_empty(&a));
    assert_int_equal(b.n_attrs, 3);
    assert_int_equal(b.n_links, 2);
    assert_string_equal(b.attrs[0].v.s, "one");
    assert_string_equal(b.attrs[1].v.s, "two");
    assert_true(b.attrs[1].borrowed);
    assert_int_equal(b.attrs[2].v.i, 3);
    assert_memory_equal(b.links[1].span_id, sid2, 8);
    assert_string_equal(b.status_msg, "broken");
    assert_string_equal(b.task_id, TASK_A);

    assert_true(span_copy(&c, &b));
    assert_ptr_not_equal(c.attrs[0].v.s, b.attrs[0].v.s); /* owned strings are copied */
    assert_ptr_equal(c.attrs[1].v.s, b.attrs[1].v.s);     /* borrowed ones are not */
    assert_memory_equal(c.links[0].span_id, sid, 8);
    span_clear(&b);
    assert_true(span_empty(&b));
    span_set_str(&b, "again", "x"); /* over the stale entry 0 of the span before */
    assert_int_equal(b.n_attrs, 1);
    assert_string_equal(b.attrs[0].v.s, "x");
    span_clear(&b);
    span_clear(&c);
    span_clear(&a); /* empty: frees nothing */
}

/* A span handed over with tracer_take() reaches both places whole and leaves the caller's empty. */
static void test_take_moves(void **state)
{
    (void)state;
    test_trace_env_clear();
    http_stub *r = receiver_start((const int[]){200, 0});
    set_endpoint("OTEL_EXPORTER_OTLP_ENDPOINT", http_stub_port(r), "/");
    setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json", 1);
    tracer *t = start(64, 100);
    span s;
    make_span(&s, TASK_A, 1, 100); /* kept and exported */
    span_set_error(&s, "it failed");
    tracer_take(t, &s);
    assert_true(span_empty(&s));
    make_span(&s, "", 2, 200); /* exported only */
    tracer_take(t, &s);
    assert_true(span_empty(&s));
    make_span(&s, TASK_A, 3, 300); /* kept only */
    s.flags = 0;
    tracer_take(t, &s);
    assert_true(span_empty(&s));
    tracer_take(t, NULL);
    assert_true(tracer_flush(t, epoch_ms() + 5000)); /* at once, not the 1 s batch timer */
    assert_int_equal(tracer_exported(t), 2);

    span *got = NULL;
    assert_int_equal(tracer_task_spans(t, TASK_A, &got), 2);
    assert_string_equal(got[0].name, "span 1");
    assert_string_equal(got[0].attrs[0].v.s, "echo");
    assert_string_equal(got[0].status_msg, "it failed");
    assert_string_equal(got[1].name, "span 3");
    for (size_t i = 0; i < 2; i++)
        span_clear(&got[i]);
    free(got);
    assert_int_equal(tracer_dropped(t), 0);
    tracer_free(t);

    assert_int_equal(http_stub_count(r), 1);
    const http_stub_request *q = http_stub_request_at(r, 0);
    char hex[17];
    for (int i = 1; i <= 3; i++) {
        span_id_hex(i, hex);
        if (i < 3)
            assert_non_null(strstr(q->body, hex));
        else
            assert_null(strstr(q->body, hex)); /* not sampled */
    }
    assert_non_null(strstr(q->body, "it failed"));
    http_stub_stop(r);

    /* a tracer that keeps nothing and exports nothing frees what it is given */
    test_trace_env_clear();
    t = start(0, 0);
    make_span(&s, TASK_A, 4, 400);
    tracer_take(t, &s);
    assert_true(span_empty(&s));
    tracer_free(t);
}

static void test_otlp_protobuf(void **state)
{
    (void)state;
    test_trace_env_clear();
    http_stub *r = receiver_start((const int[]){200, 0});
    set_endpoint("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", http_stub_port(r), "/custom/traces");
    setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1", 1); /* loses to the above */
    tracer *t = start(0, 0);
    for (int i = 1; i <= 2; i++)
        emit(t, TASK_A, i);
    span with_state;
    make_span(&with_state, TASK_A, 3, 5);
    with_state.trace_state = strdup("congo=t61rcWkgMzE");
    assert_non_null(with_state.trace_state);
    tracer_emit(t, &with_state);
    span_clear(&with_state);
    tracer_free(t); /* flushes */

    assert_int_equal(http_stub_count(r), 1);
    const http_stub_request *q = http_stub_request_at(r, 0);
    char v[128];
    assert_string_equal(q->line, "POST /custom/traces HTTP/1.1");
    /* Span.trace_state, field 3, length-delimited: tag 0x1a, length 17 */
    assert_non_null(memmem(q->body, q->body_len,
                           "\x1a\x11"
                           "congo=t61rcWkgMzE",
                           19));
    assert_string_equal(http_stub_header(q, "Content-Type", v, sizeof v), "application/x-protobuf");
    for (int i = 1; i <= 2; i++)
        assert_true(proto_holds_span(q->body, q->body_len, i));
    http_stub_stop(r);
}

typedef Opentelemetry__Proto__Trace__V1__KeyValue pb_kv;

/* Fail unless s (a string field of the request named what) is well-formed UTF-8. */
static void assert_utf8(const char *what, const char *s)
{
    if (s && !utf8_valid(s, strlen(s)))
        fail_msg("%s is not UTF-8: \"%s\"", what, s);
}

/* Check the keys and string values of n attributes, and return the string value of key. */
static const char *check_kvs(pb_kv **kvs, size_t n, const char *key)
{
    const char *found = NULL;
    for (size_t i = 0; i < n; i++) {
        assert_utf8("an attribute key", kvs[i]->key);
        const char *v =
            kvs[i]->value && kvs[i]->value->value_case ==
                                 OPENTELEMETRY__PROTO__TRACE__V1__ANY_VALUE__VALUE_STRING_VALUE
                ? kvs[i]->value->string_value
                : NULL;
        assert_utf8(kvs[i]->key, v);
        if (key && strcmp(kvs[i]->key, key) == 0)
            found = v;
    }
    return found;
}

/* The resource's strings come from the environment, where nothing makes them UTF-8: a byte
 * OTEL_RESOURCE_ATTRIBUTES decodes to alone (%E9), or one in OTEL_SERVICE_NAME, is U+FFFD in
 * the request as in a span's strings, since a collector refuses a request with a protobuf
 * string that is not UTF-8, and with it every span. */
static void test_otlp_protobuf_resource_is_utf8(void **state)
{
    (void)state;
    test_trace_env_clear();
    http_stub *r = receiver_start((const int[]){200, 0});
    set_endpoint("OTEL_EXPORTER_OTLP_ENDPOINT", http_stub_port(r), "");
    setenv("OTEL_SERVICE_NAME", "caf\xe9", 1);
    setenv("OTEL_RESOURCE_ATTRIBUTES", "team=%E9quipe,r%E9gion=eu,service.version=%FFv1", 1);
    tracer *t = start(0, 0);
    emit(t, TASK_A, 1);
    tracer_free(t); /* flushes */

    assert_int_equal(http_stub_count(r), 1);
    const http_stub_request *q = http_stub_request_at(r, 0);
    Opentelemetry__Proto__Trace__V1__ExportTraceServiceRequest *req =
        opentelemetry__proto__trace__v1__export_trace_service_request__unpack(
            NULL, q->body_len, (const uint8_t *)q->body);
    assert_non_null(req);
    assert_int_equal(req->n_resource_spans, 1);
    Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = req->resource_spans[0];
    pb_kv **kvs = rs->resource->attributes;
    size_t n = rs->resource->n_attributes;
    assert_int_equal(n, 4);
    assert_string_equal(check_kvs(kvs, n, "service.name"), "caf\xef\xbf\xbd");
    assert_string_equal(check_kvs(kvs, n, "service.version"), "\xef\xbf\xbdv1");
    assert_string_equal(check_kvs(kvs, n, "team"), "\xef\xbf\xbdquipe");
    assert_string_equal(check_kvs(kvs, n, "r\xef\xbf\xbdgion"), "eu");
    /* and every other string of the request */
    for (size_t i = 0; i < rs->n_scope_spans; i++) {
        Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = rs->scope_spans[i];
        assert_utf8("the scope's name", ss->scope->name);
        assert_utf8("the scope's version", ss->scope->version);
        for (size_t j = 0; j < ss->n_spans; j++) {
            Opentelemetry__Proto__Trace__V1__Span *sp = ss->spans[j];
            assert_utf8("a span's name", sp->name);
            assert_utf8("a span's trace_state", sp->trace_state);
            assert_utf8("a span's status message", sp->status ? sp->status->message : NULL);
            check_kvs(sp->attributes, sp->n_attributes, NULL);
        }
    }
    opentelemetry__proto__trace__v1__export_trace_service_request__free_unpacked(req, NULL);
    http_stub_stop(r);
    test_trace_env_clear();
}

/* The gunzipped body (NUL-terminated, *len bytes), or NULL when it is not one gzip member. */
static char *gunzip(const char *body, size_t body_len, size_t *len)
{
    z_stream z = {0};
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) /* gzip wrapper only */
        return NULL;
    size_t cap = 4096;
    char *out = malloc(cap + 1);
    z.next_in = (Bytef *)(uintptr_t)body;
    z.avail_in = (uInt)body_len;
    int rc = Z_OK;
    while (out && rc == Z_OK) {
        if (z.total_out == cap) {
            cap *= 2;
            char *bigger = realloc(out, cap + 1);
            if (!bigger)
                break;
            out = bigger;
        }
        z.next_out = (Bytef *)out + z.total_out;
        z.avail_out = (uInt)(cap - z.total_out);
        rc = inflate(&z, Z_NO_FLUSH);
    }
    *len = z.total_out;
    bool whole = rc == Z_STREAM_END && z.avail_in == 0;
    inflateEnd(&z);
    if (!whole) {
        free(out);
        return NULL;
    }
    out[*len] = '\0';
    return out;
}

/* OTEL_EXPORTER_OTLP_COMPRESSION=gzip: a gzip body with Content-Encoding, holding the spans. */
static void test_otlp_gzip_json(void **state)
{
    (void)state;
    test_trace_env_clear();
    http_stub *r = receiver_start((const int[]){200, 0});
    set_endpoint("OTEL_EXPORTER_OTLP_ENDPOINT", http_stub_port(r), "");
    setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json", 1);
    setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip", 1);
    setenv("OTEL_SERVICE_NAME", "tasks-gzip", 1);
    tracer *t = start(0, 0);
    for (int i = 1; i <= 40; i++)
        emit(t, TASK_A, i);
    tracer_free(t); /* flushes */

    assert_int_equal(http_stub_count(r), 1);
    const http_stub_request *q = http_stub_request_at(r, 0);
    char v[128];
    assert_string_equal(http_stub_header(q, "Content-Encoding", v, sizeof v), "gzip");
    assert_string_equal(http_stub_header(q, "Content-Type", v, sizeof v), "application/json");
    assert_true(q->body_len > 18);
    assert_int_equal((uint8_t)q->body[0], 0x1f); /* the gzip magic */
    assert_int_equal((uint8_t)q->body[1], 0x8b);
    size_t len;
    char *json = gunzip(q->body, q->body_len, &len);
    assert_non_null(json);
    assert_int_equal(strlen(json), len);
    print_message("gzip: %zu bytes for %zu of JSON\n", q->body_len, len);
    assert_true(q->body_len < len / 2); /* forty similar spans compress well */
    assert_non_null(strstr(json, "\"resourceSpans\""));
    assert_non_null(strstr(json, "\"tasks-gzip\""));
    for (int i = 1; i <= 40; i++) {
        char hex[17];
        span_id_hex(i, hex);
        assert_non_null(strstr(json, hex));
    }
    free(json);
    http_stub_stop(r);
}

/* The traces variable wins over the generic one, both ways; protobuf bodies are compressed too. */
static void test_otlp_gzip_protobuf_and_precedence(void **state)
{
    (void)state;
    static const char *const settings[][2] = {
        /* OTEL_EXPORTER_OTLP_COMPRESSION, OTEL_EXPORTER_OTLP_TRACES_COMPRESSION: the second decides
         */
        {"none", "gzip"},
        {"gzip", "none"},
    };
    for (size_t k = 0; k < 2; k++) {
        test_trace_env_clear();
        http_stub *r = receiver_start((const int[]){200, 0});
        set_endpoint("OTEL_EXPORTER_OTLP_ENDPOINT", http_stub_port(r), "");
        setenv("OTEL_EXPORTER_OTLP_COMPRESSION", settings[k][0], 1);
        setenv("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", settings[k][1], 1);
        bool gzipped = strcmp(settings[k][1], "gzip") == 0;
        tracer *t = start(0, 0);
        for (int i = 1; i <= 3; i++)
            emit(t, TASK_A, i);
        tracer_free(t);
        assert_int_equal(http_stub_count(r), 1);
        const http_stub_request *q = http_stub_request_at(r, 0);
        char v[128];
        assert_string_equal(http_stub_header(q, "Content-Type", v, sizeof v),
                            "application/x-protobuf");
        const char *enc = http_stub_header(q, "Content-Encoding", v, sizeof v);
        size_t len = q->body_len;
        char *body = NULL;
        if (gzipped) {
            assert_non_null(enc);
            assert_string_equal(enc, "gzip");
            body = gunzip(q->body, q->body_len, &len);
            assert_non_null(body);
        } else {
            assert_null(enc);
            assert_null(gunzip(q->body, q->body_len, &len)); /* plain protobuf */
            len = q->body_len;
        }
        const char *b = body ? body : q->body;
        for (int i = 1; i <= 3; i++)
            assert_true(proto_holds_span(b, len, i));
        free(body);
        http_stub_stop(r);
    }
}

static void test_batch_of_512_goes_early(void **state)
{
    (void)state;
    test_trace_env_clear();
    http_stub *r = receiver_start((const int[]){200, 0});
    set_endpoint("OTEL_EXPORTER_OTLP_ENDPOINT", http_stub_port(r), "");
    tracer *t = start(0, 0);
    int64_t t0 = now_ms();
    for (int i = 0; i < 600; i++)
        emit(t, TASK_A, i);
    assert_true(wait_count(tracer_exported, t, 512, 3000));
    int64_t took = now_ms() - t0;
    print_message("512 spans exported after %lld ms\n", (long long)took);
    assert_true(took < 900); /* not the 1 s timer */
    assert_true(wait_count(tracer_exported, t, 600, 3000));
    tracer_free(t);
    assert_int_equal(http_stub_count(r), 2);
    http_stub_stop(r);
}

static void test_large_batch_is_split(void **state)
{
    (void)state;
    test_trace_env_clear();
    http_stub *r = receiver_start((const int[]){200, 0});
    set_endpoint("OTEL_EXPORTER_OTLP_ENDPOINT", http_stub_port(r), "");
    setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json", 1);
    tracer *t = start(0, 0);
    /* 20 spans of 100,500 bytes, 2 MB: in 3 parts of 7, 6 and 7 (halved: halves of 10, each a
     * body past 10^6 bytes and under 1 MiB, so 4 of 5) */
    char *big = malloc(100501);
    memset(big, 'x', 100500);
    big[100500] = '\0';
    for (int i = 0; i < 20; i++) {
        span s;
        make_span(&s, TASK_A, i, i);
        span_set_str(&s, "big", big);
        tracer_emit(t, &s);
        span_clear(&s);
    }
    free(big);
    tracer_free(t);
    assert_int_equal(http_stub_count(r), 3);
    int seen = 0;
    for (size_t q = 0; q < http_stub_count(r); q++) {
        const http_stub_request *rq = http_stub_request_at(r, q);
        assert_true(rq->body_len < 1000000); /* the strictest collector's bound */
        for (int i = 0; i < 20; i++) {
            char hex[17];
            span_id_hex(i, hex);
            if (strstr(rq->body, hex))
                seen++;
        }
    }
    assert_int_equal(seen, 20);
    http_stub_stop(r);
}

/* A collector that answers 413 to every body over *(size_t *)arg bytes, as one with a lower
 * limit than taskd's does. */
static void refuse_over(void *arg, const http_stub_request *rq, size_t index,
                        http_stub_reply *reply)
{
    (void)index;
    if (rq->body_len > *(const size_t *)arg) {
        reply->status = 413;
        reply->headers = "Content-Type: text/plain\r\n";
        reply->body = "request body too large";
    }
}

static http_stub *receiver_refusing_over(size_t *limit)
{
    static const http_stub_reply ok = {.status = 200, .headers = JSON_TYPE, .body = "{}"};
    http_stub_options o = {
        .script = &ok, .script_len = 1, .handler = refuse_over, .handler_arg = limit};
    return http_stub_start(&o);
}

/* Span n with a string of size bytes, emitted: noise of them random hex digits (which gzip to
 * about half), the rest 'x'. Spans numbered with as many digits (10 to 99, 1000 to 9999) encode
 * to one length. */
static void emit_noisy(tracer *t, int n, size_t size, size_t noise)
{
    char *v = malloc(size + 1);
    assert_non_null(v);
    memset(v, 'x', size);
    uint64_t x = 0x9e3779b97f4a7c15ULL * (uint64_t)n;
    for (size_t i = 0; i < noise; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        v[i] = "0123456789abcdef"[x >> 60];
    }
    v[size] = '\0';
    span s;
    make_span(&s, TASK_A, n, n);
    span_set_str(&s, "big", v);
    tracer_emit(t, &s);
    span_clear(&s);
    free(v);
}

/* Span n with a string of size bytes, emitted (see emit_noisy). */
static void emit_sized(tracer *t, int n, size_t size)
{
    emit_noisy(t, n, size, 0);
}

/* How many of r's requests, among those answered 200 (at most limit bytes) or refused, hold the
 * span numbered n. */
static int span_sent(http_stub *r, int n, size_t limit, bool accepted)
{
    char hex[17];
    span_id_hex(n, hex);
    int found = 0;
    for (size_t q = 0; q < http_stub_count(r); q++) {
        const http_stub_request *rq = http_stub_request_at(r, q);
        if ((rq->body_len <= limit) == accepted && strstr(rq->body, hex))
            found++;
    }
    return found;
}

/* The clock the OTLP exporter's learned bound expires by: still unless a test moves it. */
static _Atomic int64_t learned_clock_at = 1000000000000LL;

static int64_t learned_clock(void)
{
    return atomic_load(&learned_clock_at);
}

/* A tracer exporting OTLP/JSON, gzipped or not, to a collector that answers 413 to bodies over
 * *limit (*r), its learned bound on learned_clock(). */
static tracer *start_refusing_over(size_t *limit, http_stub **r, bool gzip)
{
    test_trace_env_clear();
    *r = receiver_refusing_over(limit);
    set_endpoint("OTEL_EXPORTER_OTLP_ENDPOINT", http_stub_port(*r), "");
    setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json", 1);
    if (gzip)
        setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip", 1);
    tracer_options o = {.service_name = "taskd-test", .otlp_clock_ns = learned_clock};
    return start_with(&o);
}

/* How many of r's requests from the first on were refused (over limit). */
static size_t refused_from(http_stub *r, size_t first, size_t limit)
{
    size_t refused = 0;
    for (size_t q = first; q < http_stub_count(r); q++)
        refused += http_stub_request_at(r, q)->body_len > limit;
    return refused;
}

/*
 * A batch over 999,999 bytes before gzip is split at once into as few parts as fit, cut from the
 * spans' sizes in the body the whole batch would be, which is not packed (nor gzipped): each part
 * is then packed and gzipped once. Halved, each level of halves was packed again on the way
 * down. 4,096 spans of 4,000 bytes, half noise, in batches of 512 of about 2.1 MB each.
 */
static void test_a_batch_over_the_limit_is_split_in_one_step(void **state)
{
    (void)state;
    test_trace_env_clear();
    http_stub *r = receiver_start((const int[]){200, 0});
    set_endpoint("OTEL_EXPORTER_OTLP_ENDPOINT", http_stub_port(r), "");
    setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip", 1);
    tracer *t = start(0, 0);
    atomic_store(&sized_calls, 0);
    atomic_store(&spans_sized, 0);
    atomic_store(&pack_calls, 0);
    atomic_store(&pack_bytes, 0);
    atomic_store(&deflate_calls, 0);
    atomic_store(&deflate_bytes, 0);
    int64_t t0 = now_ms();
    for (int i = 0; i < 4096; i++)
        emit_noisy(t, 1000 + i, 4000, 2000);
    assert_true(tracer_flush(t, epoch_ms() + 60000));
    int64_t took = now_ms() - t0;
    assert_int_equal(tracer_exported(t), 4096);
    tracer_free(t);
    size_t requests = http_stub_count(r), sent = 0, largest = 0;
    for (size_t q = 0; q < requests; q++) {
        const http_stub_request *rq = http_stub_request_at(r, q);
        size_t len;
        char *body = gunzip(rq->body, rq->body_len, &len);
        assert_non_null(body);
        free(body);
        sent += len;
        largest = len > largest ? len : largest;
    }
    size_t sized = atomic_load(&sized_calls), packed = atomic_load(&pack_calls);
    size_t calls = atomic_load(&deflate_calls);
    print_message("4,096 spans: %zu requests, %zu bytes before gzip (the largest %zu), %lld ms; "
                  "%zu bodies sized (%zu spans alone), %zu packed (%zu bytes), %zu gzipped (%zu "
                  "bytes)\n",
                  requests, sent, largest, (long long)took, sized, atomic_load(&spans_sized),
                  packed, atomic_load(&pack_bytes), calls, atomic_load(&deflate_bytes));
    assert_true(largest <= 999999);
    /* each request packed and gzipped once, nothing else; the batches sized only (a body, then
     * each span once), each part sized again before it is packed */
    assert_int_equal(packed, requests);
    assert_int_equal(atomic_load(&pack_bytes), sent);
    assert_int_equal(calls, requests);
    assert_int_equal(atomic_load(&deflate_bytes), sent);
    assert_true(sized <= requests + 4096 / 512 + 1);
    assert_true(atomic_load(&spans_sized) <= 4096);
    /* 3 parts of about 700 kB to a batch of 512, where halving made 4 */
    assert_true(requests <= 3 * 4096 / 512 + 2);
    http_stub_stop(r);
}

/* A collector whose limit is below PAYLOAD_MAX answers 413: the batch goes again in halves
 * until each part fits, and every span arrives; the limit, once learned, splits the batches
 * that follow before they go. */
static void test_413_splits_the_batch(void **state)
{
    (void)state;
    size_t limit = 250000;
    http_stub *r;
    tracer *t = start_refusing_over(&limit, &r, false);
    /* 20 spans of 100,500 bytes, past 999,999 bytes: parts of 7, 6 and 7. The first, 703,500
     * bytes, refused, goes as 3 (301,500: refused, then 1 + 2) and 4 (over the bound then
     * learned: 2 + 2, unsent whole). The 6 are split at once, 2 + 2 + 2, the last 7 as
     * 2 + 2 + 3, the 3 then as 1 + 2 (halved, in 4 parts of 5: 14 requests, the same 2
     * refused) */
    for (int i = 10; i < 30; i++)
        emit_sized(t, i, 100500);
    assert_true(tracer_flush(t, epoch_ms() + 10000));
    assert_int_equal(tracer_exported(t), 20);
    assert_int_equal(tracer_dropped(t), 0);
    tracer_free(t);
    for (int i = 10; i < 30; i++)
        assert_int_equal(span_sent(r, i, limit, true), 1);
    size_t refused = refused_from(r, 0, limit);
    print_message("%zu requests, %zu answered 413\n", http_stub_count(r), refused);
    /* only the first part met the limit: 7 spans, then 3 */
    assert_int_equal(refused, 2);
    assert_int_equal(http_stub_count(r), 6 + 3 + 4);
    http_stub_stop(r);
}

/* A span that alone is over the collector's limit is dropped, counted and warned about; the
 * spans sent with it arrive. One as large later is dropped without being sent. */
static void test_413_drops_a_span_too_large_alone(void **state)
{
    (void)state;
    size_t limit = 50000;
    http_stub *r;
    tracer *t = start_refusing_over(&limit, &r, false);
    test_stderr cap;
    test_stderr_begin(&cap);
    log_level was = log_threshold();
    log_setup(LOG_WARN, NULL);
    emit_sized(t, 10, 100);
    emit_sized(t, 11, 100500);
    emit_sized(t, 12, 100);
    assert_true(tracer_flush(t, epoch_ms() + 10000));
    char *err = test_stderr_end(&cap);
    assert_int_equal(tracer_exported(t), 2);
    assert_int_equal(tracer_dropped(t), 1);
    expect_logged(err, "refused a span as too large", "span 11");
    free(err);
    assert_int_equal(span_sent(r, 10, limit, true), 1);
    assert_int_equal(span_sent(r, 12, limit, true), 1);
    assert_int_equal(span_sent(r, 11, limit, true), 0);
    /* the batch of three, then 11 + 12, then 11 alone: each refused once, none again */
    assert_int_equal(span_sent(r, 11, limit, false), 3);
    size_t before = http_stub_count(r);

    /* Another span as large is not sent at all: the collector refused one of its size alone. */
    emit_sized(t, 13, 100500);
    emit_sized(t, 14, 100);
    assert_true(tracer_flush(t, epoch_ms() + 10000));
    log_setup(was, NULL);
    assert_int_equal(tracer_exported(t), 3);
    assert_int_equal(tracer_dropped(t), 2);
    tracer_free(t);
    assert_int_equal(http_stub_count(r), before + 1);
    assert_int_equal(span_sent(r, 14, limit, true), 1);
    assert_int_equal(span_sent(r, 13, limit, true) + span_sent(r, 13, limit, false), 0);
    http_stub_stop(r);
}

/* Five spans of 100,500 bytes, numbered from first, emitted and flushed: all five taken. */
static void export_five(tracer *t, int first)
{
    uint64_t exported = tracer_exported(t);
    for (int i = first; i < first + 5; i++)
        emit_sized(t, i, 100500);
    assert_true(tracer_flush(t, epoch_ms() + 10000));
    assert_int_equal(tracer_exported(t), exported + 5);
}

/* The bound learned from a 413 holds for 10 minutes from its last fall: a batch within them is
 * split before it goes, and the collector refuses nothing; one after goes whole again, is
 * refused, and is split as the first was. */
static void test_413_bound_lasts_10_minutes(void **state)
{
    (void)state;
    size_t limit = 250000;
    http_stub *r;
    tracer *t = start_refusing_over(&limit, &r, false);
    /* 5 spans, 502,500 bytes: refused; 2 taken, 3 (301,500) refused, then 1 + 2 */
    export_five(t, 10);
    assert_int_equal(refused_from(r, 0, limit), 2);
    size_t before = http_stub_count(r);

    atomic_fetch_add(&learned_clock_at, 599 * 1000000000LL);
    export_five(t, 20);
    /* split under 301,500 bytes before they went: 2, then 1 + 2 */
    assert_int_equal(refused_from(r, before, limit), 0);
    assert_int_equal(http_stub_count(r), before + 3);
    before = http_stub_count(r);

    atomic_fetch_add(&learned_clock_at, 1000000000LL);
    export_five(t, 30);
    tracer_free(t);
    /* the bound forgotten: the five went whole once, refused, then as the first five did */
    assert_int_equal(refused_from(r, before, limit), 2);
    assert_int_equal(http_stub_count(r), before + 5);
    const http_stub_request *whole = http_stub_request_at(r, before);
    assert_true(whole->body_len > limit);
    for (int i = 30; i < 35; i++) {
        char hex[17];
        span_id_hex(i, hex);
        assert_non_null(strstr(whole->body, hex));
        assert_int_equal(span_sent(r, i, limit, true), 1);
    }
    http_stub_stop(r);
}

/* With gzip the bound learned is on the body as sent, the length the collector refused: a later
 * batch that compresses worse than the refused one, under the refused size before gzip but over
 * it gzipped, is split before it goes. */
static void test_413_bound_is_on_the_gzipped_body(void **state)
{
    (void)state;
    size_t limit = 130000;
    http_stub *r;
    tracer *t = start_refusing_over(&limit, &r, true);
    /* 3 spans of 200,000 bytes, half noise: about 600,000 bytes, 175,000 gzipped: refused,
     * then 1 + 2 taken */
    for (int i = 10; i < 13; i++)
        emit_noisy(t, i, 200000, 100000);
    assert_true(tracer_flush(t, epoch_ms() + 10000));
    assert_int_equal(tracer_exported(t), 3);
    assert_int_equal(refused_from(r, 0, limit), 1);
    size_t refused_len = http_stub_request_at(r, 0)->body_len;
    size_t before = http_stub_count(r);

    /* 4 spans of 100,000 bytes of noise: about 400,000 bytes, 230,000 gzipped, split 2 + 2 */
    for (int i = 20; i < 24; i++)
        emit_noisy(t, i, 100000, 100000);
    assert_true(tracer_flush(t, epoch_ms() + 10000));
    assert_int_equal(tracer_exported(t), 7);
    tracer_free(t);
    print_message("refused %zu bytes gzipped; then %zu requests, the first of %zu bytes\n",
                  refused_len, http_stub_count(r) - before,
                  http_stub_request_at(r, before)->body_len);
    assert_int_equal(refused_from(r, before, limit), 0);
    assert_int_equal(http_stub_count(r), before + 2);
    http_stub_stop(r);
}

/* A batch far over the bound learned from a 413 is split at once into as many parts as it
 * needs, not halved again and again: gzipped whole once, then each part once, rather than each
 * half of each half too, down to parts that fit. */
static void test_413_bound_splits_a_batch_far_over_it_at_once(void **state)
{
    (void)state;
    size_t limit = SIZE_MAX;
    http_stub *r;
    tracer *t = start_refusing_over(&limit, &r, true);
    /* 48 spans of 1,000 bytes of noise, taken whole: their body gzipped; the collector's limit
     * then falls to 19/20 of it, and 48 more are refused, then taken as 24 + 24 */
    for (int i = 0; i < 48; i++)
        emit_noisy(t, 1000 + i, 1000, 1000);
    assert_true(tracer_flush(t, epoch_ms() + 10000));
    assert_int_equal(http_stub_count(r), 1);
    size_t whole48 = http_stub_request_at(r, 0)->body_len;
    limit = whole48 * 19 / 20;
    for (int i = 48; i < 96; i++)
        emit_noisy(t, 1000 + i, 1000, 1000);
    assert_true(tracer_flush(t, epoch_ms() + 10000));
    assert_int_equal(refused_from(r, 1, limit), 1);
    assert_int_equal(http_stub_count(r), 1 + 3);
    size_t before = http_stub_count(r);

    /* 512 such spans, over 10 times the bound gzipped: a dozen parts of 42 or 43 spans, each
     * under 7/8 of it; halved, they were gzipped whole, then in 2, 4, 8 and 16 parts */
    atomic_store(&deflate_calls, 0);
    atomic_store(&deflate_bytes, 0);
    for (int i = 96; i < 96 + 512; i++)
        emit_noisy(t, 1000 + i, 1000, 1000);
    assert_true(tracer_flush(t, epoch_ms() + 10000));
    assert_int_equal(tracer_exported(t), 96 + 512);
    tracer_free(t);
    size_t requests = http_stub_count(r) - before, sent = 0;
    for (size_t q = before; q < http_stub_count(r); q++) {
        const http_stub_request *rq = http_stub_request_at(r, q);
        size_t len;
        char *body = gunzip(rq->body, rq->body_len, &len);
        assert_non_null(body);
        sent += len;
        free(body);
    }
    size_t calls = atomic_load(&deflate_calls), gzipped = atomic_load(&deflate_bytes);
    print_message("limit %zu; 512 spans: %zu requests, %zu bytes before gzip; %zu gzipped in "
                  "%zu calls\n",
                  limit, requests, sent, gzipped, calls);
    assert_int_equal(refused_from(r, before, limit), 0);
    /* the whole batch once (less than its parts, which each carry the resource), then each part
     * once: less than twice what was sent */
    assert_true(gzipped < 2 * sent);
    http_stub_stop(r);
}

static void test_retry_after_503(void **state)
{
    (void)state;
    test_trace_env_clear();
    http_stub *r = receiver_start((const int[]){503, 503, 200, 0});
    set_endpoint("OTEL_EXPORTER_OTLP_ENDPOINT", http_stub_port(r), "");
    tracer *t = start(0, 0);
    emit(t, TASK_A, 1);
    emit(t, TASK_A, 2);
    assert_true(wait_count(tracer_exported, t, 2, 8000));
    assert_int_equal(tracer_dropped(t), 0);
    tracer_free(t);
    assert_int_equal(http_stub_count(r), 3);
    const http_stub_request *q0 = http_stub_request_at(r, 0), *q1 = http_stub_request_at(r, 1),
                            *q2 = http_stub_request_at(r, 2);
    assert_int_equal(q0->body_len, q2->body_len);
    assert_memory_equal(q0->body, q2->body, q0->body_len);
    /* backoff: at least 250 ms, then at least 500 ms */
    assert_true(q1->at_ms - q0->at_ms >= 240);
    assert_true(q2->at_ms - q1->at_ms >= 490);
    http_stub_stop(r);
}

/* A flush sends what is queued at once, and waits for it; a dead collector costs the deadline. */
static void test_flush_sends_now(void **state)
{
    (void)state;
    test_trace_env_clear();
    http_stub *r = receiver_start((const int[]){200, 200, 0});
    set_endpoint("OTEL_EXPORTER_OTLP_ENDPOINT", http_stub_port(r), "");
    tracer *t = start(64, 0);
    emit(t, TASK_A, 1);
    emit(t, TASK_A, 2);
    int64_t t0 = now_ms();
    assert_true(tracer_flush(t, epoch_ms() + 2000));
    assert_true(now_ms() - t0 < 900); /* not the 1 s batch timer */
    assert_int_equal(tracer_exported(t), 2);
    assert_int_equal(http_stub_count(r), 1);
    assert_true(tracer_flush(t, epoch_ms() + 2000)); /* nothing queued: at once */
    emit(t, TASK_A, 3);
    assert_true(tracer_flush(t, epoch_ms() + 2000));
    assert_int_equal(tracer_exported(t), 3);
    tracer_free(t);
    http_stub_stop(r);

    int dead;
    set_endpoint("OTEL_EXPORTER_OTLP_ENDPOINT", http_stub_refusing_port(&dead), "");
    t = start(64, 0);
    emit(t, TASK_A, 4);
    t0 = now_ms();
    tracer_flush(t, epoch_ms() + 300);
    int64_t took = now_ms() - t0;
    assert_true(took < 1500);
    assert_int_equal(tracer_exported(t), 0);
    tracer_free(t);
    close(dead);
    assert_true(tracer_flush(NULL, 0)); /* NULL tracer: nothing to do */
}

/* The tracer and the span the flush's wait queues, and when (test_span_queued_during_a_flush). */
static tracer *queued_in_flush;
static int64_t queued_in_flush_at;

static void queue_span_2(void)
{
    queued_in_flush_at = now_ms();
    emit(queued_in_flush, TASK_A, 2);
}

/*
 * A span queued while a flush waits is exported at once, as the flush waits for it: queued just
 * after the export thread found the queue empty, it woke the thread, which had gone to sleep for
 * the 1 s batch timer (the flush then waited for that, or dropped the span at a shorter
 * deadline).
 */
static void test_span_queued_during_a_flush(void **state)
{
    (void)state;
    test_trace_env_clear();
    http_stub *r = receiver_start((const int[]){200, 0});
    set_endpoint("OTEL_EXPORTER_OTLP_ENDPOINT", http_stub_port(r), "");
    setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json", 1);
    tracer *t = start(64, 0);
    queued_in_flush = t;
    emit(t, TASK_A, 1);
    /* span 1 sent, the export thread tells the flush the queue is empty; span 2 comes then */
    after_next_wait(queue_span_2);
    assert_true(tracer_flush(t, epoch_ms() + 5000));
    assert_null(atomic_load(&wait_hook));
    assert_int_equal(tracer_exported(t), 2);
    assert_int_equal(http_stub_count(r), 2);
    char hex[17];
    span_id_hex(2, hex);
    const http_stub_request *rq = http_stub_request_at(r, 1);
    assert_non_null(strstr(rq->body, hex));
    int64_t took = rq->at_ms - queued_in_flush_at;
    print_message("span 2 reached the collector %lld ms after it was queued\n", (long long)took);
    assert_true(took < 500); /* not the 1 s batch timer */
    tracer_free(t);
    http_stub_stop(r);
}

/*
 * A flush that runs out of time leaves nothing behind: what is still queued is dropped and
 * counted at once, and a request that began before the flush (the 1 s timer's, with the whole
 * export timeout) is cut short soon after, not left running for its 10 s into the next flush,
 * which then has the export thread to itself.
 */
static void test_flush_out_of_time_drops_the_rest(void **state)
{
    (void)state;
    test_trace_env_clear();
    http_stub *r = receiver_start(NULL); /* accepts, never answers */
    set_endpoint("OTEL_EXPORTER_OTLP_ENDPOINT", http_stub_port(r), "");
    tracer *t = start(64, 0); /* the default export timeout: 10 s */
    emit(t, TASK_A, 1);
    sleep_ms(1200); /* the timer fires: span 1's request waits on the collector */
    assert_int_equal(http_stub_count(r), 1);
    for (int i = 2; i <= 6; i++)
        emit(t, TASK_A, i);
    int64_t t0 = now_ms();
    assert_false(tracer_flush(t, epoch_ms() + 300));
    int64_t took = now_ms() - t0;
    assert_true(took >= 250 && took < 600);
    /* the queued ones, at once: 5. Unless span 1's request ended (at a progress check) in the
     * last 20 ms, and the export thread took the 5 as its next batch: then that one, and the 5
     * when their batch is cut, below */
    uint64_t at_once = tracer_dropped(t);
    assert_true(at_once == 5 || at_once == 1);
    assert_int_equal(tracer_exported(t), 0);
    /* span 1's request ends at the next progress check (about a second), not after 10 s */
    assert_true(wait_count(tracer_dropped, t, 6, 2500));
    print_message("the earlier request ended %lld ms after the flush began\n",
                  (long long)(now_ms() - t0));
    /* the next flush: its own batch gets the whole budget, and is cut within it */
    emit(t, TASK_A, 7);
    t0 = now_ms();
    tracer_flush(t, epoch_ms() + 300); /* true when its batch was back 20 ms before: timing */
    took = now_ms() - t0;
    assert_true(took >= 250 && took < 600);
    assert_true(wait_count(tracer_dropped, t, 7, 1000)); /* cut within the budget, not 10 s */
    assert_int_equal(http_stub_count(r), 2);
    assert_int_equal(tracer_exported(t), 0);
    t0 = now_ms();
    tracer_free(t); /* nothing left to wait for */
    assert_true(now_ms() - t0 < 500);
    http_stub_stop(r);
}

/* Wait up to ms for the export thread to wait at the shut pack gate; true when it does. */
static bool wait_pack_held(int ms)
{
    int64_t until = now_ms() + ms;
    while (!atomic_load(&pack_held) && now_ms() < until)
        sleep_ms(5);
    return atomic_load(&pack_held);
}

/* Open the pack gate (a wait hook of the flush that is to see the batch go on). */
static void open_pack_gate(void)
{
    atomic_store(&pack_gate_shut, false);
}

/* The tests that shut the pack gate open it when they end, failed or not. */
static int teardown_open_pack_gate(void **state)
{
    (void)state;
    open_pack_gate();
    return 0;
}

/*
 * A flush begun while a batch an earlier flush left in hand is still under way leaves that batch
 * the earlier flush's deadline, as when no flush follows, rather than the later flush's longer
 * one, and the later flush has its own batch sent once that one is back. The batch is held
 * at the pack gate: a request in flight ends only at libcurl's next progress check, about once a
 * second, which could fall in the last 20 ms of the first flush (the exporters' deadline is that
 * much earlier) and end the batch before the later flush begins, whatever deadline it gives.
 */
static void test_a_later_flush_keeps_the_earlier_deadline(void **state)
{
    (void)state;
    test_trace_env_clear();
    http_stub *r = receiver_start((const int[]){200, 0});
    set_endpoint("OTEL_EXPORTER_OTLP_ENDPOINT", http_stub_port(r), "");
    tracer *t = start(64, 0); /* the default export timeout: 10 s */
    atomic_store(&pack_gate_shut, true);
    emit(t, TASK_A, 1);
    /* the 1 s timer takes span 1, with the whole export timeout; its batch waits at the gate */
    assert_true(wait_pack_held(3000));
    assert_false(tracer_flush(t, epoch_ms() + 300)); /* span 1's batch is still in hand */
    emit(t, TASK_A, 2);
    instead_of_next_wait(open_pack_gate); /* the later flush has begun: the batch goes on */
    assert_true(tracer_flush(t, epoch_ms() + 5000));
    assert_null(atomic_load(&wait_hook));
    /* span 1's batch met the first flush's deadline, passed: dropped unsent. Span 2 went */
    assert_int_equal(tracer_exported(t), 1);
    assert_int_equal(tracer_dropped(t), 1);
    tracer_free(t);
    assert_int_equal(http_stub_count(r), 1);
    const http_stub_request *rq = http_stub_request_at(r, 0);
    assert_true(proto_holds_span(rq->body, rq->body_len, 2));
    http_stub_stop(r);
}

/* The tracer test_flushes_from_two_threads flushes, the thread of its second flush and that
 * flush's answer. */
static tracer *two_flushing;
static pthread_t second_flusher;
static bool second_answer;

static void *second_flush(void *arg)
{
    (void)arg;
    counts_waits = true;
    second_answer = tracer_flush(two_flushing, epoch_ms() + 10000);
    return NULL;
}

/* In the first flush's wait: once the export thread holds span 1's batch at the gate, a second
 * flush from another thread, until it waits. */
static void begin_second_flush(void)
{
    assert_true(wait_pack_held(3000));
    atomic_store(&waits_counted, 0);
    assert_int_equal(pthread_create(&second_flusher, NULL, second_flush, NULL), 0);
    int64_t until = now_ms() + 3000;
    while (atomic_load(&waits_counted) == 0 && now_ms() < until)
        sleep_ms(1);
    assert_int_not_equal(atomic_load(&waits_counted), 0);
}

/*
 * Two threads may flush at once: a flush called while another runs waits for that one and
 * answers as it did. The first here (300 ms) ends with span 1's batch held at the pack gate:
 * false, and so is the second's answer (10 s), though the batch, let go then, would have had
 * time; it meets the first deadline, passed, and is dropped unsent.
 */
static void test_flushes_from_two_threads(void **state)
{
    (void)state;
    test_trace_env_clear();
    http_stub *r = receiver_start((const int[]){200, 0});
    set_endpoint("OTEL_EXPORTER_OTLP_ENDPOINT", http_stub_port(r), "");
    tracer *t = start(0, 0);
    two_flushing = t;
    atomic_store(&pack_gate_shut, true);
    emit(t, TASK_A, 1);
    instead_of_next_wait(begin_second_flush);
    assert_false(tracer_flush(t, epoch_ms() + 300));
    assert_null(atomic_load(&wait_hook));
    open_pack_gate();
    assert_int_equal(pthread_join(second_flusher, NULL), 0);
    assert_false(second_answer);
    assert_true(wait_count(tracer_dropped, t, 1, 5000));
    assert_int_equal(tracer_exported(t), 0);
    assert_int_equal(http_stub_count(r), 0);
    tracer_free(t);
    http_stub_stop(r);
}

/*
 * A 429's Retry-After of 1 s is waited out: the retry comes at least 1000 ms after the first
 * request had come whole (the wait, on the monotonic clock the stub stamps requests with,
 * starts after its answer, which follows it), where the backoff would take 1-2 ms. Later than
 * that only by what a loaded machine adds to the export thread's waking and the retry's
 * sending; 2.5 s bounds it, where a wait of 3 s or more fails.
 */
static void test_retry_after_header(void **state)
{
    (void)state;
    test_trace_env_clear();
    static const http_stub_reply script[] = {
        {.status = 429, .headers = JSON_TYPE "Retry-After: 1\r\n", .body = "{}"},
        {.status = 200, .headers = JSON_TYPE, .body = "{}"},
    };
    http_stub *r = receiver_script(script, 2);
    set_endpoint("OTEL_EXPORTER_OTLP_ENDPOINT", http_stub_port(r), "");
    tracer *t = start_quick(); /* the backoff 1-2 ms: the wait can only be the server's */
    emit(t, TASK_A, 1);
    assert_true(wait_count(tracer_exported, t, 1, 8000));
    tracer_free(t);
    assert_int_equal(http_stub_count(r), 2);
    int64_t gap = http_stub_request_at(r, 1)->at_ms - http_stub_request_at(r, 0)->at_ms;
    print_message("retried after %lld ms\n", (long long)gap);
    assert_true(gap >= 1000 && gap < 2500);
    http_stub_stop(r);
}

static void test_gives_up_after_five_attempts(void **state)
{
    (void)state;
    test_trace_env_clear();
    http_stub *r = receiver_start((const int[]){502, 0}); /* no Retry-After: the tracer's backoff */
    set_endpoint("OTEL_EXPORTER_OTLP_ENDPOINT", http_stub_port(r), "");
    tracer *t = start_quick(); /* the count of attempts, not their spacing (test_retry_after_503) */
    emit(t, TASK_A, 1);
    assert_true(wait_count(tracer_dropped, t, 1, 15000));
    assert_int_equal(tracer_exported(t), 0);
    tracer_free(t);
    assert_int_equal(http_stub_count(r), 5);
    http_stub_stop(r);
}

/* A URL curl cannot use fails the same way every time: its spans are dropped at once, not after
 * five attempts and seconds of backoff. */
static void test_drop_on_a_url_that_cannot_be_used(void **state)
{
    (void)state;
    test_trace_env_clear();
    setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://bad host:4318/v1/traces", 1);
    /* a first backoff of 30 s: a single retry would wait 15 s or more */
    tracer_options o = {.service_name = "taskd-test",
                        .batch_interval_ms = QUICK_BATCH_MS,
                        .otlp_backoff_ms = 30000};
    tracer *t = start_with(&o);
    int64_t t0 = now_ms();
    emit(t, TASK_A, 1);
    assert_true(wait_count(tracer_dropped, t, 1, 12000));
    int64_t took = now_ms() - t0;
    print_message("dropped after %lld ms\n", (long long)took);
    assert_true(took < 10000); /* the batch goes after 20 ms; a retry would wait 15 s more */
    assert_int_equal(tracer_exported(t), 0);
    tracer_free(t);
}

static void test_drop_on_400(void **state)
{
    (void)state;
    test_trace_env_clear();
    http_stub *r = receiver_start((const int[]){400, 0});
    set_endpoint("OTEL_EXPORTER_OTLP_ENDPOINT", http_stub_port(r), "");
    tracer *t = start(0, 0);
    for (int i = 0; i < 3; i++)
        emit(t, TASK_A, i);
    assert_true(wait_count(tracer_dropped, t, 3, 5000));
    sleep_ms(300); /* no retry follows */
    assert_int_equal(http_stub_count(r), 1);
    assert_int_equal(tracer_exported(t), 0);
    assert_int_equal(tracer_dropped(t), 3);
    tracer_free(t);
    http_stub_stop(r);
}

/* A flush's exporter warnings carry the flushing thread's log context: on Lambda, the
 * invocation's request id. */
static void test_flush_warnings_carry_the_flushers_context(void **state)
{
    (void)state;
    test_trace_env_clear();
    http_stub *r = receiver_start((const int[]){400, 0});
    set_endpoint("OTEL_EXPORTER_OTLP_ENDPOINT", http_stub_port(r), "");
    tracer *t = start(0, 0);
    log_context("function_request_id", "req-42", NULL);
    test_stderr cap;
    test_stderr_begin(&cap);
    log_level was = log_threshold();
    log_setup(LOG_WARN, NULL);
    for (int i = 0; i < 3; i++)
        emit(t, TASK_A, i);
    assert_true(tracer_flush(t, epoch_ms() + 3000));
    log_setup(was, NULL);
    char *err = test_stderr_end(&cap);
    log_context_clear();
    expect_logged(err, "OTLP export failed", "\"function_request_id\":\"req-42\"");
    free(err);
    assert_int_equal(tracer_dropped(t), 3);
    tracer_free(t);
    http_stub_stop(r);
}

static void test_partial_success(void **state)
{
    (void)state;
    test_trace_env_clear();
    static const http_stub_reply script[] = {
        {.status = 200,
         .headers = JSON_TYPE,
         .body = "{\"partialSuccess\":{\"rejectedSpans\":\"2\",\"errorMessage\":\"too old\"}}"}};
    http_stub *r = receiver_script(script, 1);
    set_endpoint("OTEL_EXPORTER_OTLP_ENDPOINT", http_stub_port(r), "");
    setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json", 1);
    tracer *t = start(0, 0);
    for (int i = 0; i < 3; i++)
        emit(t, TASK_A, i);
    assert_true(wait_count(tracer_dropped, t, 2, 5000));
    assert_true(wait_count(tracer_exported, t, 1, 1000));
    assert_int_equal(tracer_dropped(t), 2);
    assert_int_equal(http_stub_count(r), 1); /* not retried */
    tracer_free(t);
    http_stub_stop(r);
}

static void test_partial_success_protobuf(void **state)
{
    (void)state;
    /* ExportTraceServiceResponse{partial_success{rejected_spans: 1, error_message: "x"}}, and
     * the same with the message first: the warning says the collector's reason */
    static const struct {
        const char *body;
        size_t len;
        const char *said;
    } cases[] = {{"\x0a\x05\x08\x01\x12\x01x", 7, "1 spans rejected: x\""},
                 {"\x0a\x08\x12\x04late\x08\x01", 10, "1 spans rejected: late\""}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        test_trace_env_clear();
        const http_stub_reply script[] = {{.status = 200,
                                           .headers = PROTO_TYPE,
                                           .body = cases[k].body,
                                           .body_len = cases[k].len}};
        http_stub *r = receiver_script(script, 1);
        set_endpoint("OTEL_EXPORTER_OTLP_ENDPOINT", http_stub_port(r), "");
        tracer *t = start(0, 0);
        test_stderr cap;
        test_stderr_begin(&cap);
        log_level was = log_threshold();
        log_setup(LOG_WARN, NULL);
        for (int i = 0; i < 3; i++)
            emit(t, TASK_A, i);
        assert_true(tracer_flush(t, epoch_ms() + 5000)); /* at once, not the 1 s batch timer */
        assert_int_equal(tracer_exported(t), 2);
        assert_int_equal(tracer_dropped(t), 1);
        tracer_free(t);
        log_setup(was, NULL);
        char *said = test_stderr_end(&cap);
        expect_logged(said, "OTLP export: partial success", cases[k].said);
        free(said);
        http_stub_stop(r);
    }
}

/*
 * A collector's reason for a partial success too long for the warning (100 '€', 300 bytes) is cut
 * where a character ends and marked "...", from a JSON answer and from a protobuf one, where it
 * was cut by bytes and logged ending in half a '€'.
 */
static void test_a_long_partial_success_reason_is_cut_in_whole_characters(void **state)
{
    (void)state;
    char euros[301] = "", json[400], proto[320], said[240];
    for (int i = 0; i < 100; i++)
        strcat(euros, "\xe2\x82\xac");
    snprintf(json, sizeof json,
             "{\"partialSuccess\":{\"rejectedSpans\":\"1\",\"errorMessage\":\"%s\"}}", euros);
    /* partial_success (305 bytes) { rejected_spans: 1, error_message (300 bytes) } */
    memcpy(proto, "\x0a\xb1\x02\x08\x01\x12\xac\x02", 8);
    memcpy(proto + 8, euros, 300);
    snprintf(said, sizeof said, "1 spans rejected: %.195s...\"", euros); /* 65 whole '€' */
    const http_stub_reply replies[] = {
        {.status = 200, .headers = JSON_TYPE, .body = json},
        {.status = 200, .headers = PROTO_TYPE, .body = proto, .body_len = 308},
    };
    for (size_t k = 0; k < sizeof replies / sizeof replies[0]; k++) {
        test_trace_env_clear();
        http_stub *r = receiver_script(&replies[k], 1);
        set_endpoint("OTEL_EXPORTER_OTLP_ENDPOINT", http_stub_port(r), "");
        if (k == 0)
            setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json", 1);
        tracer *t = start(0, 0);
        test_stderr cap;
        test_stderr_begin(&cap);
        log_level was = log_threshold();
        log_setup(LOG_WARN, NULL);
        emit(t, TASK_A, 0);
        assert_true(tracer_flush(t, epoch_ms() + 5000));
        tracer_free(t);
        log_setup(was, NULL);
        char *err = test_stderr_end(&cap);
        expect_logged(err, "OTLP export: partial success", said);
        free(err);
        http_stub_stop(r);
    }
}

/*
 * A 2xx answer whose body is no partial success — invalid JSON under a JSON Content-Type, a
 * truncated or garbage protobuf under a protobuf one, a count below 0 or not a number — rejects
 * none: each batch counts whole as exported, none dropped, and is not sent again. The truncated
 * protobufs hold rejected_spans 2 before the point where they break off, so reading past a
 * length or an unfinished varint would count spans as dropped.
 */
static void test_unreadable_partial_success_rejects_none(void **state)
{
    (void)state;
    test_trace_env_clear();
    static const http_stub_reply script[] = {
        /* JSON cut short after the count */
        {.status = 200,
         .headers = JSON_TYPE,
         .body = "{\"partialSuccess\":{\"rejectedSpans\":\"2\","},
        /* not JSON at all */
        {.status = 200, .headers = JSON_TYPE, .body = "rejectedSpans: 2"},
        /* counts that are none: below 0, with trailing bytes, past int64 */
        {.status = 200,
         .headers = JSON_TYPE,
         .body = "{\"partialSuccess\":{\"rejectedSpans\":\"-1\"}}"},
        {.status = 200,
         .headers = JSON_TYPE,
         .body = "{\"partialSuccess\":{\"rejectedSpans\":\"2abc\"}}"},
        {.status = 200,
         .headers = JSON_TYPE,
         .body = "{\"partialSuccess\":{\"rejectedSpans\":\"18446744073709551615\"}}"},
        {.status = 200,
         .headers = JSON_TYPE,
         .body = "{\"partialSuccess\":{\"rejectedSpans\":-2}}"},
        /* partial_success{rejected_spans: -1}: a ten-byte varint */
        {.status = 200,
         .headers = PROTO_TYPE,
         .body = "\x0a\x0b\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
         .body_len = 13},
        /* partial_success says 5 bytes, 4 follow: rejected_spans 2, then a cut error_message */
        {.status = 200, .headers = PROTO_TYPE, .body = "\x0a\x05\x08\x02\x12\x01", .body_len = 6},
        /* partial_success's rejected_spans varint ends mid-way */
        {.status = 200, .headers = PROTO_TYPE, .body = "\x0a\x02\x08\x82", .body_len = 4},
        /* a varint longer than 64 bits */
        {.status = 200,
         .headers = PROTO_TYPE,
         .body = "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
         .body_len = 12},
        /* text under a protobuf Content-Type (an end-group wire type first) */
        {.status = 200, .headers = PROTO_TYPE, .body = "<html>rejected 2</html>"},
    };
    enum { ANSWERS = sizeof script / sizeof script[0], PER_BATCH = 3 };
    http_stub *r = receiver_script(script, ANSWERS);
    set_endpoint("OTEL_EXPORTER_OTLP_ENDPOINT", http_stub_port(r), "");
    tracer *t = start(64, 0);
    for (int i = 0; i < ANSWERS; i++) {
        for (int k = 0; k < PER_BATCH; k++)
            emit(t, TASK_A, i * PER_BATCH + k);
        assert_true(tracer_flush(t, epoch_ms() + 3000));
        assert_int_equal(http_stub_count(r), i + 1); /* one POST, not retried */
        assert_int_equal(tracer_exported(t), (i + 1) * PER_BATCH);
        assert_int_equal(tracer_dropped(t), 0);
    }
    tracer_free(t);
    assert_int_equal(http_stub_count(r), ANSWERS);
    http_stub_stop(r);
}

static void test_full_queue_drops_and_shutdown_is_bounded(void **state)
{
    (void)state;
    test_trace_env_clear();
    http_stub *r = receiver_start(NULL); /* accepts, never answers */
    set_endpoint("OTEL_EXPORTER_OTLP_ENDPOINT", http_stub_port(r), "");
    setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "300", 1);
    test_stderr log;
    test_stderr_begin(&log);
    log_level was = log_threshold();
    log_setup(LOG_WARN, NULL);
    tracer_options o = {.service_name = "taskd-test",
                        .queue_capacity = 8,
                        .local_capacity = 16,
                        .batch_interval_ms = QUICK_BATCH_MS};
    tracer *t = start_with(&o);
    emit(t, TASK_A, 0);
    /* the timer fires: the first span's export is stuck on the collector */
    int64_t until = now_ms() + 5000;
    while (http_stub_count(r) < 1 && now_ms() < until)
        sleep_ms(5);
    assert_true(http_stub_count(r) >= 1);
    for (int i = 1; i <= 100; i++)
        emit(t, TASK_A, i);
    assert_true(tracer_dropped(t) >= 100 - 8);
    /* the stuck batch is retried until tracer_free() gives it up: then the export thread
     * tells of the drops, below */
    assert_int_equal(tracer_exported(t), 0);
    span *got;
    assert_int_equal(tracer_task_spans(t, TASK_A, &got), 16); /* the local store still fills */
    for (int i = 0; i < 16; i++)
        span_clear(&got[i]);
    free(got);
    int64_t t0 = now_ms();
    tracer_free(t);
    int64_t took = now_ms() - t0;
    print_message("shutdown took %lld ms\n", (long long)took);
    assert_true(took < 1500); /* 300 ms timeout, plus the progress callback's granularity */
    log_setup(was, NULL);
    char *logged = test_stderr_end(&log);
    /* the request threads' drops are told once, by the export thread, with their number */
    assert_int_equal(expect_logged(logged, "spans dropped: the export queue was full",
                                   " spans not exported since the last warning"),
                     1);
    free(logged);
    http_stub_stop(r);
}

/*
 * A stop whose deadline has passed drops the batches still queued without encoding or gzipping
 * them: nothing more is sent, and each of them cost an encode and a gzip before it was found too
 * late, so that a full queue behind a collector that never answers kept the stop going well past
 * its bound.
 */
static void test_stop_past_its_deadline_gzips_nothing(void **state)
{
    (void)state;
    test_trace_env_clear();
    http_stub *r = receiver_start(NULL); /* accepts, never answers */
    set_endpoint("OTEL_EXPORTER_OTLP_ENDPOINT", http_stub_port(r), "");
    setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "300", 1);
    setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip", 1);
    test_stderr log;
    test_stderr_begin(&log); /* the warnings of the drops */
    tracer *t = start(4096, 0);
    for (int i = 0; i < 512; i++) /* a whole batch: it goes at once, and hangs */
        emit_noisy(t, 1000 + i, 2000, 1000);
    int64_t until = now_ms() + 5000;
    while (http_stub_count(r) < 1 && now_ms() < until)
        sleep_ms(5);
    assert_int_equal(http_stub_count(r), 1);
    for (int i = 512; i < 512 + 4096; i++) /* 8 more batches, queued behind it */
        emit_noisy(t, 1000 + i, 2000, 1000);
    size_t calls = atomic_load(&deflate_calls);
    int64_t t0 = now_ms();
    tracer_free(t);
    int64_t took = now_ms() - t0;
    free(test_stderr_end(&log));
    size_t gzipped = atomic_load(&deflate_calls) - calls;
    print_message("stop took %lld ms, %zu batches gzipped in it\n", (long long)took, gzipped);
    /* the batch in hand goes once more, as it was gzipped; the queued ones are past the deadline
     * (one may begin just before it, when the hung request's timeout came a little early) */
    assert_true(gzipped <= 1);
    assert_true(took < 1500); /* 300 ms timeout, plus the progress callback's granularity */
    http_stub_stop(r);
}

static void test_emit_stays_fast_when_unreachable(void **state)
{
    (void)state;
    test_trace_env_clear();
    int dead;
    set_endpoint("OTEL_EXPORTER_OTLP_ENDPOINT", http_stub_refusing_port(&dead), "");
    tracer *t = tracer_new(NULL, NULL, 0); /* the defaults: queue 8192, local store 65536 */
    assert_non_null(t);
    span s;
    make_span(&s, TASK_A, 1, 1);
    span_set_str(&s, "http.route", "/tasks/{id}");
    /*
     * Cold rings cost a page fault per ~3 spans the first time round (the kernel's price, paid
     * once, not the exporter's); cycle the local store once so the timing below is the steady
     * state. The queue fills up on the way: the collector refuses connections and the export
     * thread is busy retrying, which is the case this test is about.
     */
    int64_t t0 = now_ms();
    for (int i = 0; i < 65536; i++)
        tracer_emit(t, &s);
    print_message("65536 emits on cold rings took %lld ms\n", (long long)(now_ms() - t0));
    t0 = now_ms();
    for (int i = 0; i < 10000; i++)
        tracer_emit(t, &s);
    int64_t took = now_ms() - t0;
    span_clear(&s);
    print_message("10000 emits took %lld ms\n", (long long)took);
    assert_true(took < 500); /* a blocked emit would wait for the exporter's 1 s timer */
    /* The queue was full: at most one batch (512) is in the export thread's hands, retrying. */
    assert_true(tracer_dropped(t) >= 10000 - 512);
    t0 = now_ms();
    tracer_free(t); /* one refused attempt per batch, then done */
    print_message("shutdown took %lld ms\n", (long long)(now_ms() - t0));
    close(dead);
}

/* ---- X-Ray ---- */

/* A UDP socket on loopback that the tracer is told is the X-Ray daemon at host (the environment
 * cleared of every other tracing setting first). */
static int xray_daemon_at(const char *host)
{
    test_trace_env_clear();
    int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    assert_int_equal(bind(u, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(u, (struct sockaddr *)&a, &alen), 0);
    char addr[64];
    snprintf(addr, sizeof addr, "%s:%d", host, ntohs(a.sin_port));
    setenv("AWS_XRAY_DAEMON_ADDRESS", addr, 1);
    return u;
}

static int xray_daemon(void)
{
    return xray_daemon_at("127.0.0.1");
}

/* Read the datagrams u holds (until none comes for 200 ms): the span numbers they carry, of
 * 1..max, in got[] (true for each). How many there were. */
static int xray_received(int u, bool *got, int max)
{
    int count = 0;
    char buf[65536];
    for (;;) {
        struct pollfd p = {.fd = u, .events = POLLIN};
        if (poll(&p, 1, 200) <= 0)
            return count;
        ssize_t n = recv(u, buf, sizeof buf - 1, 0);
        assert_true(n > 0);
        buf[n] = '\0';
        count++;
        for (int i = 1; i <= max; i++) {
            char hex[17];
            span_id_hex(i, hex);
            if (strstr(buf, hex))
                got[i] = true;
        }
    }
}

static void test_xray_datagrams(void **state)
{
    (void)state;
    int u = xray_daemon();
    atomic_store(&loopback_lookups, 0);
    tracer *t = start(0, 10);
    for (int i = 1; i <= 3; i++)
        emit(t, TASK_A, i);
    span unsampled;
    make_span(&unsampled, TASK_A, 4, 4);
    unsampled.flags = 0;
    tracer_emit(t, &unsampled);
    span_clear(&unsampled);
    assert_true(tracer_flush(t, epoch_ms() + 5000)); /* at once, not the 1 s batch timer */
    assert_int_equal(tracer_exported(t), 3);
    tracer_free(t);

    int got = 0;
    char buf[65536];
    for (;;) {
        struct pollfd p = {.fd = u, .events = POLLIN};
        if (poll(&p, 1, 200) <= 0)
            break;
        ssize_t n = recv(u, buf, sizeof buf - 1, 0);
        assert_true(n > 0);
        buf[n] = '\0';
        assert_true(strncmp(buf, XRAY_HEADER, strlen(XRAY_HEADER)) == 0);
        char hex[17];
        span_id_hex(got + 1, hex); /* sent in emit order */
        assert_non_null(strstr(buf, hex));
        got++;
    }
    assert_int_equal(got, 3);
    assert_int_equal(atomic_load(&loopback_lookups), 0); /* numeric: never looked up */
    close(u);
}

/* Start a tracer whose X-Ray daemon (its socket in *u) is at host, on a clock the test moves (from
 * now). */
static tracer *start_with_daemon_at(const char *host, int *u)
{
    *u = xray_daemon_at(host);
    atomic_store(&xray_clock_ahead, 0);
    tracer_options o = {.service_name = "taskd-test",
                        .xray_clock_ns = xray_clock_ns,
                        .batch_interval_ms = QUICK_BATCH_MS};
    return start_with(&o);
}

/* Start a tracer whose X-Ray daemon (its socket in *u) is named DAEMON_NAME, which resolves when
 * resolves says, its lookups counted from none, on a clock the test moves (from now). */
static tracer *start_with_daemon_name(bool resolves, int *u)
{
    atomic_store(&daemon_resolves, resolves);
    atomic_store(&daemon_lookups, 0);
    return start_with_daemon_at(DAEMON_NAME, u);
}

/*
 * A daemon name that does not resolve at start (a sidecar that comes up after taskd) keeps the
 * exporter: the spans are dropped and counted until the name resolves, looked up again on the
 * export thread at its first export (the lookup at start had ended before it) and then at most
 * every 5 s (on a clock the test moves); once it resolves the spans reach the daemon and the name
 * is not looked up again.
 */
static void test_xray_daemon_name_resolving_late(void **state)
{
    (void)state;
    int u;
    atomic_store(&detached_ended, 0);
    tracer *t = start_with_daemon_name(false, &u);
    assert_int_equal(wait_atomic(&detached_ended, 1), 1); /* begun at start, ended */
    assert_int_equal(atomic_load(&daemon_lookups), 1);

    emit(t, TASK_A, 1); /* the first export looks it up again */
    assert_true(wait_count(tracer_dropped, t, 1, 5000));
    assert_int_equal(atomic_load(&daemon_lookups), 2);

    atomic_store(&daemon_resolves, true);
    emit(t, TASK_A, 2); /* it would resolve now, but the last try was under 5 s ago */
    assert_true(wait_count(tracer_dropped, t, 2, 5000));
    assert_int_equal(atomic_load(&daemon_lookups), 2);

    atomic_fetch_add(&xray_clock_ahead, 5000000000LL);
    emit(t, TASK_A, 3);
    assert_true(wait_count(tracer_exported, t, 1, 5000));
    assert_int_equal(atomic_load(&daemon_lookups), 3);
    emit(t, TASK_A, 4);
    assert_true(wait_count(tracer_exported, t, 2, 5000));
    assert_int_equal(atomic_load(&daemon_lookups), 3); /* resolved: kept */
    assert_int_equal(tracer_dropped(t), 2);
    tracer_free(t);

    bool got[5] = {false};
    assert_int_equal(xray_received(u, got, 4), 2);
    assert_true(got[3] && got[4]);
    close(u);
}

/*
 * Spans exported by flushes alone, as inside a Lambda function, where every export is a flush's
 * (the exporters hurried): a name that did not resolve at start is looked up again there too, at
 * the first and then at most every 5 s (on a clock the test moves), each lookup waited for no
 * longer than the flush's deadline, where none began while hurried and the name was never looked
 * up again.
 */
static void test_xray_daemon_name_looked_up_again_in_flushes(void **state)
{
    (void)state;
    int u;
    atomic_store(&detached_ended, 0);
    tracer *t = start_with_daemon_name(false, &u);
    assert_int_equal(wait_atomic(&detached_ended, 1), 1); /* begun at start, ended */

    emit(t, TASK_A, 1);
    assert_true(tracer_flush(t, epoch_ms() + 5000));
    assert_int_equal(tracer_dropped(t), 1);
    assert_int_equal(atomic_load(&daemon_lookups), 2);

    atomic_store(&daemon_resolves, true);
    emit(t, TASK_A, 2); /* under 5 s after the last try */
    assert_true(tracer_flush(t, epoch_ms() + 5000));
    assert_int_equal(tracer_dropped(t), 2);
    assert_int_equal(atomic_load(&daemon_lookups), 2);

    atomic_fetch_add(&xray_clock_ahead, 5000000000LL);
    emit(t, TASK_A, 3);
    assert_true(tracer_flush(t, epoch_ms() + 5000));
    assert_int_equal(tracer_exported(t), 1);
    assert_int_equal(atomic_load(&daemon_lookups), 3);
    tracer_free(t);

    bool got[4] = {false};
    assert_int_equal(xray_received(u, got, 3), 1);
    assert_true(got[3]);
    close(u);
}

/* HANG_NAME's lookups, counted from none, hanging from the one numbered from (0: the first). */
static void hang_reset(int from)
{
    atomic_store(&hang_ends, false);
    atomic_store(&hang_resolves, false);
    atomic_store(&hang_from, from);
    atomic_store(&hang_released, 0);
    atomic_store(&hang_lookups, 0);
    atomic_store(&hang_lookups_ended, 0);
}

/* Start a tracer whose X-Ray daemon is named HANG_NAME, with a stop bounded at 1 s (the export
 * timeout), and emit a span: its export looks the name up again, and that lookup hangs. */
static tracer *start_with_a_hanging_lookup(int *u)
{
    *u = xray_daemon_at(HANG_NAME);
    setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1000", 1);
    hang_reset(1);
    atomic_store(&detached_ended, 0);
    tracer_options o = {.service_name = "taskd-test", .batch_interval_ms = QUICK_BATCH_MS};
    tracer *t = start_with(&o);
    assert_int_equal(wait_atomic(&detached_ended, 1), 1); /* begun at start, failed at once */
    emit(t, TASK_A, 1);
    assert_int_equal(wait_atomic(&hang_lookups, 2), 2);
    return t;
}

/* Let the hanging lookups end, and wait until the n begun have. */
static void end_the_hanging_lookup(int n)
{
    atomic_store(&hang_ends, true);
    assert_int_equal(wait_atomic(&hang_lookups_ended, n), n);
}

/*
 * An export that waited for the lookup at start, which then failed (a resolver that did not
 * answer, for its timeout: hanging until the test lets it fail), begins no other: its span is
 * dropped and counted then, where it looked the name up again at once and waited for that one
 * too, another timeout (30 s here). The next lookup comes 5 s later (on a clock the test moves).
 */
static void test_xray_export_waits_for_one_lookup_at_most(void **state)
{
    (void)state;
    int u;
    hang_reset(0);
    tracer *t = start_with_daemon_at(HANG_NAME, &u);
    assert_int_equal(wait_atomic(&hang_lookups, 1), 1); /* begun at start, and hanging */
    emit(t, TASK_A, 1);
    sleep_ms(50 * QUICK_BATCH_MS); /* its export waits for the lookup */
    atomic_store(&hang_released, 1);
    int64_t t0 = now_ms();
    bool dropped = wait_count(tracer_dropped, t, 1, 10000);
    int64_t took = now_ms() - t0;
    int lookups = atomic_load(&hang_lookups);
    atomic_store(&hang_ends, true); /* any later one fails at once */
    if (!dropped)
        fail_msg("the span was not dropped %lld ms after the lookup at start failed (%d lookups "
                 "begun)",
                 (long long)took, lookups);
    assert_int_equal(lookups, 1);

    atomic_fetch_add(&xray_clock_ahead, 5000000000LL);
    emit(t, TASK_A, 2);
    assert_true(wait_count(tracer_dropped, t, 2, 10000));
    assert_int_equal(atomic_load(&hang_lookups), 2);
    tracer_free(t);
    end_the_hanging_lookup(2);
    close(u);
}

/*
 * The stop's bound (the export timeout, 1 s here) holds while a lookup of the daemon's name is
 * under way and hangs (a resolver that does not answer, for its timeout): the stop leaves the
 * lookup to end alone, where it waited for it (30 s here).
 */
static void test_xray_lookup_under_way_does_not_hold_the_stop(void **state)
{
    (void)state;
    int u;
    tracer *t = start_with_a_hanging_lookup(&u);
    int64_t t0 = now_ms();
    tracer_free(t);
    int64_t took = now_ms() - t0;
    end_the_hanging_lookup(2);
    close(u);
    if (took >= 10000)
        fail_msg("the stop took %lld ms, its bound 1000", (long long)took);
}

/*
 * A flush's deadline ends its wait for a lookup under way too, the span dropped; the lookup goes
 * on, and the next export takes its answer rather than beginning another: once it found the
 * daemon, the next span is sent.
 */
static void test_xray_lookup_under_way_is_answered_after_a_flush(void **state)
{
    (void)state;
    int u;
    tracer *t = start_with_a_hanging_lookup(&u);
    int64_t t0 = now_ms();
    tracer_flush(t, epoch_ms() + 500);
    assert_true(wait_count(tracer_dropped, t, 1, 10000));
    int64_t took = now_ms() - t0;
    if (took >= 10000)
        fail_msg("the flush's span was dropped after %lld ms, its deadline 500", (long long)took);
    atomic_store(&hang_resolves, true);
    end_the_hanging_lookup(2);
    emit(t, TASK_A, 2);
    assert_true(wait_count(tracer_exported, t, 1, 5000));
    assert_int_equal(atomic_load(&hang_lookups), 2); /* the one under way, no other */
    tracer_free(t);
    bool got[3] = {false};
    assert_int_equal(xray_received(u, got, 2), 1);
    assert_true(got[2]);
    close(u);
}

/*
 * A daemon name whose lookup at start hangs (a resolver that does not answer, for its timeout:
 * 30 s here) does not hold the start, where the start waited for it: the lookup goes on on a
 * thread of its own. A span made meanwhile waits for it in the export queue, and a flush's
 * deadline drops it, counted; once the lookup has found the daemon the next span is sent, the
 * name not looked up again.
 */
static void test_xray_lookup_at_start_does_not_hold_the_start(void **state)
{
    (void)state;
    int u = xray_daemon_at(HANG_NAME);
    hang_reset(0);
    tracer_options o = {.service_name = "taskd-test", .batch_interval_ms = QUICK_BATCH_MS};
    int64_t t0 = now_ms();
    tracer *t = start_with(&o);
    int64_t took = now_ms() - t0;
    if (took >= 10000)
        fail_msg("the start took %lld ms, held by the daemon's lookup", (long long)took);
    assert_int_equal(wait_atomic(&hang_lookups, 1), 1); /* begun at start, and hanging */
    emit(t, TASK_A, 1);
    tracer_flush(t, epoch_ms() + 500);
    assert_true(wait_count(tracer_dropped, t, 1, 10000));
    assert_int_equal(tracer_exported(t), 0);
    atomic_store(&hang_resolves, true);
    end_the_hanging_lookup(1);
    emit(t, TASK_A, 2);
    assert_true(wait_count(tracer_exported, t, 1, 10000));
    assert_int_equal(atomic_load(&hang_lookups), 1); /* the one begun at start, no other */
    tracer_free(t);
    bool got[3] = {false};
    assert_int_equal(xray_received(u, got, 2), 1);
    assert_true(got[2]);
    close(u);
}

/*
 * A tracer stopped while the lookup of its daemon's name begun at start hangs, a span waiting
 * for that lookup: the stop keeps its bound (the export timeout, 1 s here), the span dropped and
 * counted, and lets go of the lookup, which ends alone later and frees what it held
 * (AddressSanitizer: nothing used after the exporter's free, nothing left behind).
 */
static void test_xray_lookup_at_start_hanging_does_not_hold_the_stop(void **state)
{
    (void)state;
    int u = xray_daemon_at(HANG_NAME);
    setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1000", 1);
    hang_reset(0);
    tracer_options o = {.service_name = "taskd-test", .batch_interval_ms = QUICK_BATCH_MS};
    tracer *t = start_with(&o);
    assert_int_equal(wait_atomic(&hang_lookups, 1), 1); /* begun at start, and hanging */
    emit(t, TASK_A, 1);
    sleep_ms(10 * QUICK_BATCH_MS); /* its export waits for the lookup */
    int64_t t0 = now_ms();
    tracer_free(t);
    int64_t took = now_ms() - t0;
    atomic_store(&hang_resolves, true);
    end_the_hanging_lookup(1);
    assert_int_equal(atomic_load(&hang_lookups), 1); /* the one begun at start, no other */
    close(u);
    if (took >= 10000)
        fail_msg("the stop took %lld ms, its bound 1000", (long long)took);
}

/* t's X-Ray exporter, refused (counted in *refused) at start, tries again at its first export,
 * refused too, whose span 1 is dropped and counted at once; span 2, under 5 s after that try
 * (on the clock the test moves), is dropped without one. */
static void refused_at_start_and_at_first_export(tracer *t, atomic_int *refused)
{
    assert_int_equal(atomic_load(refused), 1);
    emit(t, TASK_A, 1);
    assert_true(wait_count(tracer_dropped, t, 1, 10000));
    assert_int_equal(atomic_load(refused), 2);
    emit(t, TASK_A, 2);
    assert_true(wait_count(tracer_dropped, t, 2, 10000));
    assert_int_equal(atomic_load(refused), 2);
}

/*
 * A lookup whose thread cannot be made (pthread_create() failing: threads or memory run out)
 * ends there, as a failed lookup does: at start, and again at the first export, whose span is
 * dropped and counted at once, nothing waiting for a lookup that never began; the next try comes
 * 5 s later (on a clock the test moves), and once a thread can be made the name resolves and
 * the spans are sent. A refused lookup leaves nothing behind (AddressSanitizer's leak check).
 */
static void test_xray_lookup_whose_thread_cannot_start(void **state)
{
    (void)state;
    atomic_store(&detached_refused, 0);
    atomic_store(&refuse_detached, true);
    int u;
    tracer *t = start_with_daemon_name(true, &u);
    refused_at_start_and_at_first_export(t, &detached_refused);
    assert_int_equal(atomic_load(&daemon_lookups), 0);

    atomic_store(&refuse_detached, false);
    atomic_fetch_add(&xray_clock_ahead, 5000000000LL);
    emit(t, TASK_A, 3);
    assert_true(wait_count(tracer_exported, t, 1, 10000));
    assert_int_equal(atomic_load(&daemon_lookups), 1);
    assert_int_equal(tracer_dropped(t), 2);
    tracer_free(t);
    bool got[4] = {false};
    assert_int_equal(xray_received(u, got, 3), 1);
    assert_true(got[3]);
    close(u);
}

/*
 * A numeric daemon address whose socket cannot be had at start (socket() failing: descriptors run
 * out) keeps the exporter, as a name that does not resolve does: the first export tries again at
 * once, and when the socket is still refused its span is dropped and counted; the next try comes
 * 5 s later (on a clock the test moves), and once a socket can be had the spans are sent.
 */
static void test_xray_numeric_address_whose_socket_fails_at_start(void **state)
{
    (void)state;
    atomic_store(&udp_refused, 0);
    int u;
    atomic_store(&udp_refusals, 2); /* at start and at the first export */
    tracer *t = start_with_daemon_at("127.0.0.1", &u);
    refused_at_start_and_at_first_export(t, &udp_refused);

    atomic_fetch_add(&xray_clock_ahead, 5000000000LL);
    emit(t, TASK_A, 3);
    assert_true(wait_count(tracer_exported, t, 1, 10000));
    emit(t, TASK_A, 4); /* the socket kept */
    assert_true(wait_count(tracer_exported, t, 2, 10000));
    assert_int_equal(tracer_dropped(t), 2);
    assert_int_equal(atomic_load(&udp_refused), 2);
    tracer_free(t);
    bool got[5] = {false};
    assert_int_equal(xray_received(u, got, 4), 2);
    assert_true(got[3] && got[4]);
    close(u);
}

/*
 * A trace a client began with a W3C traceparent goes to X-Ray under its own id, split 8 + 24,
 * whatever time its first 4 bytes would say (1970, 2106 or now): X-Ray takes W3C trace ids and
 * does not check that part (docs/design.md, "Tracing"), so the trace stays one id across X-Ray,
 * OTLP and the logs.
 */
static void test_xray_keeps_a_w3c_trace_id(void **state)
{
    (void)state;
    int u = xray_daemon();
    char now_hex[9];
    snprintf(now_hex, sizeof now_hex, "%08x", (unsigned)time(NULL));
    char ids[3][33];
    snprintf(ids[0], sizeof ids[0], "%s", "000000014bf92f3577b34da6a3ce929d"); /* 1970 */
    snprintf(ids[1], sizeof ids[1], "%s", "ffffffff4bf92f3577b34da6a3ce929d"); /* 2106 */
    snprintf(ids[2], sizeof ids[2], "%s4bf92f3577b34da6a3ce929d", now_hex);
    tracer *t = start(0, 0);
    telemetry tel = {.tracer = t};
    for (int i = 0; i < 3; i++) {
        char header[64];
        snprintf(header, sizeof header, "00-%.32s-00f067aa0ba902b7-01", ids[i]);
        trace_ctx client;
        assert_true(tracectx_parse_traceparent(header, &client));
        span s;
        trace_begin(&s, &client, "GET /tasks", SPAN_KIND_SERVER);
        trace_end(&tel, &s);
    }
    assert_true(tracer_flush(t, epoch_ms() + 5000)); /* at once, not the 1 s batch timer */
    assert_int_equal(tracer_exported(t), 3);
    tracer_free(t);

    char buf[65536];
    for (int i = 0; i < 3; i++) {
        struct pollfd p = {.fd = u, .events = POLLIN};
        assert_int_equal(poll(&p, 1, 2000), 1);
        ssize_t n = recv(u, buf, sizeof buf - 1, 0);
        assert_true(n > 0);
        buf[n] = '\0';
        char want[80];
        snprintf(want, sizeof want, "\"trace_id\":\"1-%.8s-%s\"", ids[i], ids[i] + 8);
        if (!strstr(buf, want))
            fail_msg("span %d: no %s in %s", i, want, buf);
        assert_non_null(strstr(buf, "\"parent_id\":\"00f067aa0ba902b7\""));
    }
    close(u);
}

/*
 * A daemon name with an IPv4 and an IPv6 address (localhost, where /etc/hosts gives it ::1
 * too, whose first answer is ::1) is sent to at its IPv4 address, where the X-Ray daemon
 * listens (127.0.0.1:2000 unless told otherwise), as the X-Ray SDKs send: a datagram to ::1
 * would be lost, with nothing to say so.
 */
static void test_xray_daemon_name_with_ipv6_first(void **state)
{
    (void)state;
    int u = xray_daemon_at(DUAL_NAME);
    tracer *t = start(0, 0);
    emit(t, TASK_A, 1);
    assert_true(tracer_flush(t, epoch_ms() + 5000));
    assert_int_equal(tracer_exported(t), 1); /* sent, wherever it went */
    tracer_free(t);
    bool got[2] = {false};
    assert_int_equal(xray_received(u, got, 1), 1);
    assert_true(got[1]);
    close(u);
}

static void test_xray_send_failure_counts(void **state)
{
    (void)state;
    test_trace_env_clear();
    /* Broadcast without SO_BROADCAST: sendto fails (EACCES), the span counts as dropped. */
    setenv("AWS_XRAY_DAEMON_ADDRESS", "255.255.255.255:2000", 1);
    tracer *t = start(0, 0);
    emit(t, TASK_A, 1);
    assert_true(tracer_flush(t, epoch_ms() + 5000)); /* at once; what failed counts as dropped */
    assert_int_equal(tracer_dropped(t), 1);
    assert_int_equal(tracer_exported(t), 0);
    tracer_free(t);
}

/* A flush with the farthest deadline there is (INT64_MAX), or one long past (INT64_MIN), is no
 * overflow: the first waits for the span and sends it, the second gives up at once. */
static void test_flush_with_an_extreme_deadline(void **state)
{
    (void)state;
    int u = xray_daemon();
    tracer *t = start(0, 0);
    emit(t, TASK_A, 1);
    assert_true(tracer_flush(t, INT64_MAX));
    assert_int_equal(tracer_exported(t), 1);
    assert_int_equal(tracer_dropped(t), 0);
    assert_true(tracer_flush(t, INT64_MAX)); /* nothing queued: at once */
    emit(t, TASK_A, 2);
    tracer_flush(t, INT64_MIN); /* past: what is queued is dropped, or sent if it went first */
    assert_int_equal(tracer_exported(t) + tracer_dropped(t), 2);
    tracer_free(t);
    bool got[3] = {false};
    assert_true(xray_received(u, got, 2) >= 1);
    assert_true(got[1]);
    close(u);
}

/* ---- configuration ---- */

static void test_disabled_exports_nothing(void **state)
{
    (void)state;
    test_trace_env_clear();
    http_stub *r = receiver_start((const int[]){200, 0});
    set_endpoint("OTEL_EXPORTER_OTLP_ENDPOINT", http_stub_port(r), "");
    setenv("OTEL_SDK_DISABLED", "true", 1);
    tracer *t = start(0, 10);
    emit(t, TASK_A, 1);
    span *got;
    assert_int_equal(tracer_task_spans(t, TASK_A, &got), 1);
    span_clear(&got[0]);
    free(got);
    tracer_free(t);
    assert_int_equal(http_stub_count(r), 0);
    http_stub_stop(r);
}

static void test_bad_configuration(void **state)
{
    (void)state;
    test_trace_env_clear();
    char err[256] = "";
    setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4318", 1);
    assert_null(tracer_new(NULL, err, sizeof err));
    assert_non_null(strstr(err, "OTEL_EXPORTER_OTLP_ENDPOINT"));
    test_trace_env_clear();
    err[0] = '\0';
    setenv("AWS_XRAY_DAEMON_ADDRESS", "no-port-here", 1);
    assert_null(tracer_new(NULL, err, sizeof err));
    assert_non_null(strstr(err, "AWS_XRAY_DAEMON_ADDRESS"));
    test_trace_env_clear();
    /* Lesser problems are warnings only. */
    setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", 1);
    setenv("OTEL_RESOURCE_ATTRIBUTES", "a=%zz", 1);
    tracer *t = tracer_new(NULL, err, sizeof err);
    assert_non_null(t);
    tracer_free(t);
    test_trace_env_clear();
}

/* A curl_init that counts its calls and fails with the error taskd's gives. */
static int curl_inits;
static bool curl_init_fails(char *err, size_t errlen)
{
    curl_inits++;
    snprintf(err, errlen, "cannot load libcurl.so.4, which OTLP export needs: not there");
    return false;
}

static void test_curl_init_only_for_an_otlp_exporter(void **state)
{
    (void)state;
    test_trace_env_clear();
    tracer_options o = {.service_name = "t", .curl_init = curl_init_fails};
    char err[256] = "";
    curl_inits = 0;
    tracer *t = tracer_new(&o, err, sizeof err); /* no exporter */
    assert_non_null(t);
    tracer_free(t);
    setenv("AWS_XRAY_DAEMON_ADDRESS", "127.0.0.1:2000", 1); /* X-Ray alone: UDP */
    t = tracer_new(&o, err, sizeof err);
    assert_non_null(t);
    tracer_free(t);
    assert_int_equal(curl_inits, 0);
    setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318", 1);
    assert_null(tracer_new(&o, err, sizeof err));
    assert_int_equal(curl_inits, 1);
    assert_string_equal(err, "cannot load libcurl.so.4, which OTLP export needs: not there");
    test_trace_env_clear();
}

/* A curl_init that succeeds, noting how many threads had been started when it was called. */
static int threads_at_curl_init;
static bool curl_init_notes_threads(char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    threads_at_curl_init = atomic_load(&threads_started);
    return true;
}

/*
 * libcurl is made ready before tracer_new() starts any thread, the X-Ray exporter's lookup of a
 * daemon's name at start among them: curl_global_init() must not run beside other threads (the
 * libraries it starts are not all safe against them), and taskd's curl_init runs it.
 */
static void test_curl_init_before_any_thread(void **state)
{
    (void)state;
    test_trace_env_clear();
    atomic_store(&daemon_resolves, true);
    atomic_store(&detached_ended, 0);
    setenv("AWS_XRAY_DAEMON_ADDRESS", DAEMON_NAME ":2000", 1); /* looked up on a thread */
    setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318", 1);
    tracer_options o = {.service_name = "t", .curl_init = curl_init_notes_threads};
    char err[256] = "";
    int before = atomic_load(&threads_started);
    threads_at_curl_init = -1;
    tracer *t = tracer_new(&o, err, sizeof err);
    assert_non_null(t);
    assert_int_equal(wait_atomic(&detached_ended, 1), 1); /* the lookup at start, ended */
    tracer_free(t);
    test_trace_env_clear();
    assert_int_equal(threads_at_curl_init, before);
}

int main(void)
{
    tracer_global_init();
    log_setup(LOG_ERROR, "test_tracer");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_local_store_sorted_copies),
        cmocka_unit_test(test_curl_init_only_for_an_otlp_exporter),
        cmocka_unit_test(test_curl_init_before_any_thread),
        cmocka_unit_test(test_local_store_keeps_the_newest),
        cmocka_unit_test(test_local_store_off),
        cmocka_unit_test(test_null_and_defaults),
        cmocka_unit_test(test_attribute_keys),
        cmocka_unit_test(test_span_names_are_utf8),
        cmocka_unit_test(test_otlp_json),
        cmocka_unit_test(test_long_header_sent_whole),
        cmocka_unit_test(test_span_move_and_copy_take_the_counted_entries),
        cmocka_unit_test(test_take_moves),
        cmocka_unit_test(test_otlp_protobuf),
        cmocka_unit_test(test_otlp_protobuf_resource_is_utf8),
        cmocka_unit_test(test_otlp_gzip_json),
        cmocka_unit_test(test_otlp_gzip_protobuf_and_precedence),
        cmocka_unit_test(test_batch_of_512_goes_early),
        cmocka_unit_test(test_large_batch_is_split),
        cmocka_unit_test(test_a_batch_over_the_limit_is_split_in_one_step),
        cmocka_unit_test(test_413_splits_the_batch),
        cmocka_unit_test(test_413_drops_a_span_too_large_alone),
        cmocka_unit_test(test_413_bound_lasts_10_minutes),
        cmocka_unit_test(test_413_bound_is_on_the_gzipped_body),
        cmocka_unit_test(test_413_bound_splits_a_batch_far_over_it_at_once),
        cmocka_unit_test(test_retry_after_503),
        cmocka_unit_test(test_retry_after_header),
        cmocka_unit_test(test_flush_sends_now),
        cmocka_unit_test(test_flush_with_an_extreme_deadline),
        cmocka_unit_test(test_span_queued_during_a_flush),
        cmocka_unit_test(test_flush_out_of_time_drops_the_rest),
        cmocka_unit_test_teardown(test_a_later_flush_keeps_the_earlier_deadline,
                                  teardown_open_pack_gate),
        cmocka_unit_test_teardown(test_flushes_from_two_threads, teardown_open_pack_gate),
        cmocka_unit_test(test_gives_up_after_five_attempts),
        cmocka_unit_test(test_drop_on_a_url_that_cannot_be_used),
        cmocka_unit_test(test_drop_on_400),
        cmocka_unit_test(test_flush_warnings_carry_the_flushers_context),
        cmocka_unit_test(test_partial_success),
        cmocka_unit_test(test_partial_success_protobuf),
        cmocka_unit_test(test_a_long_partial_success_reason_is_cut_in_whole_characters),
        cmocka_unit_test(test_unreadable_partial_success_rejects_none),
        cmocka_unit_test(test_full_queue_drops_and_shutdown_is_bounded),
        cmocka_unit_test(test_stop_past_its_deadline_gzips_nothing),
        cmocka_unit_test(test_emit_stays_fast_when_unreachable),
        cmocka_unit_test(test_xray_datagrams),
        cmocka_unit_test(test_xray_keeps_a_w3c_trace_id),
        cmocka_unit_test(test_xray_daemon_name_resolving_late),
        cmocka_unit_test(test_xray_daemon_name_looked_up_again_in_flushes),
        cmocka_unit_test(test_xray_export_waits_for_one_lookup_at_most),
        cmocka_unit_test(test_xray_lookup_under_way_does_not_hold_the_stop),
        cmocka_unit_test(test_xray_lookup_under_way_is_answered_after_a_flush),
        cmocka_unit_test(test_xray_lookup_at_start_does_not_hold_the_start),
        cmocka_unit_test(test_xray_lookup_at_start_hanging_does_not_hold_the_stop),
        cmocka_unit_test_teardown(test_xray_lookup_whose_thread_cannot_start,
                                  lookup_threads_allowed),
        cmocka_unit_test_teardown(test_xray_numeric_address_whose_socket_fails_at_start,
                                  udp_sockets_allowed),
        cmocka_unit_test(test_xray_daemon_name_with_ipv6_first),
        cmocka_unit_test(test_xray_send_failure_counts),
        cmocka_unit_test(test_disabled_exports_nothing),
        cmocka_unit_test(test_bad_configuration),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    tracer_global_cleanup();
    return failed;
}
