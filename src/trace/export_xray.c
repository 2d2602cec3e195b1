/*
 * export_xray — segment documents to the X-Ray daemon over UDP; see
 * export_xray.h.
 *
 * State: the socket, the resolved address, the mode, the service name the
 * segments carry, and the warnings' rate limit. Sending is one sendto() per
 * span with MSG_DONTWAIT: when the daemon is slow or absent the datagram is
 * lost (UDP), never waited for, so X-Ray export cannot hold up the batch the
 * OTLP exporter is sending too.
 *
 * The exporter has no socket (fd -1) until the daemon's name resolves. Every
 * lookup runs on a thread of its own (a lookup_job), the first begun at start,
 * which does not wait for it: a lookup can last a resolver's timeout, and the
 * start (taskd's, a Lambda function's init) must not. export() waits for the
 * lookup under way, and a flush or a shutdown that comes meanwhile ends the
 * wait at its deadline (hurry() wakes it): the spans are dropped and counted,
 * and the lookup goes on alone; the next export() waits for it again, or takes
 * its answer, and the exporter's free() lets go of it. Spans made meanwhile
 * wait in the export queue, dropped and counted at its bound. A name that does
 * not resolve at start (a sidecar that comes up after taskd, a DNS hiccup) is
 * looked up again at the next export, unless that export waited for the
 * lookup at start to fail (no export waits for two lookups: a resolver that
 * does not answer would hold it for two of its timeouts), then at most once
 * every RESOLVE_INTERVAL_NS counted from the end of the last try. A lookup
 * starts while hurried too (on Lambda every export is a flush's), its wait
 * bounded by the hurry's deadline as any is. Until a lookup succeeds every span is marked failed,
 * and warned about as a send that failed is; a lookup whose thread cannot be
 * started counts as a failed one. Once resolved, the address is kept for the
 * run.
 */
#include "export_xray.h"

#include "core/errbuf.h"
#include "core/sbuf.h"
#include "util/clock.h"
#include "util/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define RESOLVE_INTERVAL_NS (5 * 1000000000LL)

/* A lookup of the daemon's name on a thread of its own, and its answer: the exporter's and the
 * thread's, freed by whichever lets go of it last. */
typedef struct lookup_job {
    pthread_mutex_t mu;
    pthread_cond_t ended; /* CLOCK_MONOTONIC; done was set, or the exporter was hurried */
    int refs;             /* under mu */
    bool done;            /* under mu; then rc, addr and addrlen are the answer */
    int rc;               /* getaddrinfo's */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char host[256], port[8];
} lookup_job;

typedef struct xray_exporter {
    exporter base; /* first: the tracer's handle */
    int fd;        /* non-blocking UDP socket; -1 until the daemon's name resolves */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char where[300]; /* "host:port" for logs */
    char host[256], port[8];
    const char *service_name;
    xray_mode mode;
    exporter_warnings warnings;
    int64_t (*clock_ns)(void); /* monotonic ns, for the wait between lookups */
    bool at_start;             /* job is the lookup begun at start */
    bool tried;                /* a lookup after the one at start has failed... */
    int64_t tried_ns;          /* ...and ended at this time */
    char unresolved[160];      /* why the daemon has no socket yet, for the warnings */
    atomic_bool hurried;       /* a flush or shutdown: no wait for a lookup... */
    _Atomic int64_t hurry_ns;  /* ...past this (monotonic ns) */
    pthread_mutex_t mu;        /* job, against hurry() */
    lookup_job *job;           /* the lookup under way, or ended unread; NULL: none */
} xray_exporter;

static void warn(xray_exporter *x, const char *message, const char *detail)
{
    exporter_warn(&x->warnings, message, "daemon", x->where, detail);
}

/* Send one span as a daemon datagram; false (and a warning) when it did not go out. */
static bool send_span(xray_exporter *x, const span *s)
{
    sbuf doc = {0}, dgram = {0};
    const char *problem = NULL;
    char reason[160] = "";
    if (!xray_segment_encode(&doc, s, x->service_name, x->mode) || sbuf_failed(&doc) || !doc.data) {
        problem = "X-Ray segment encoding failed";
    } else {
        xray_datagram(&dgram, doc.data);
        if (sbuf_failed(&dgram) || !dgram.data) {
            problem = "X-Ray datagram not made";
            snprintf(reason, sizeof reason, "%s", sbuf_error_text(&dgram));
        } else {
            ssize_t n = sendto(x->fd, dgram.data, dgram.len, MSG_DONTWAIT | MSG_NOSIGNAL,
                               (const struct sockaddr *)&x->addr, x->addrlen);
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
        warn(x, problem, reason);
    return problem == NULL;
}

/*
 * Look the daemon's name host up into *addr and *addrlen: its first IPv4 address, else its first
 * (an IPv6 address, or a name that has only those); getaddrinfo's result (0: resolved). The
 * daemon listens on IPv4 (127.0.0.1:2000 unless told otherwise) and the X-Ray SDKs send over
 * IPv4, while a name such as localhost may be answered ::1 first: what is sent there is lost.
 */
static int lookup(const char *host, const char *port, struct sockaddr_storage *addr,
                  socklen_t *addrlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM}, *ai = NULL;
    int rc = getaddrinfo(host, port, &hints, &ai);
    if (rc != 0)
        return rc;
    if (!ai)
        return EAI_NONAME;
    const struct addrinfo *use = ai;
    for (const struct addrinfo *p = ai; p; p = p->ai_next) {
        if (p->ai_family == AF_INET) {
            use = p;
            break;
        }
    }
    memcpy(addr, use->ai_addr, use->ai_addrlen);
    *addrlen = use->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}

/* host, when it is a numeric IPv4 or IPv6 address, with port into *addr and *addrlen: whether it
 * is one (it needs no lookup, nor a thread for one). */
static bool numeric_address(const char *host, int port, struct sockaddr_storage *addr,
                            socklen_t *addrlen)
{
    struct sockaddr_in v4 = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    struct sockaddr_in6 v6 = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &v4.sin_addr) == 1) {
        memcpy(addr, &v4, sizeof v4);
        *addrlen = sizeof v4;
    } else if (inet_pton(AF_INET6, host, &v6.sin6_addr) == 1) {
        memcpy(addr, &v6, sizeof v6);
        *addrlen = sizeof v6;
    } else {
        return false;
    }
    return true;
}

/* A UDP socket for the family of x->addr, or -1 (errno). */
static int open_socket(const xray_exporter *x)
{
    return socket(x->addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
}

static void job_release(lookup_job *j)
{
    pthread_mutex_lock(&j->mu);
    bool last = --j->refs == 0;
    pthread_mutex_unlock(&j->mu);
    if (last) {
        pthread_mutex_destroy(&j->mu);
        pthread_cond_destroy(&j->ended);
        free(j);
    }
}

static void *lookup_main(void *arg)
{
    lookup_job *j = arg;
    int rc = lookup(j->host, j->port, &j->addr, &j->addrlen); /* read once done, under mu */
    pthread_mutex_lock(&j->mu);
    j->rc = rc;
    j->done = true;
    pthread_cond_broadcast(&j->ended);
    pthread_mutex_unlock(&j->mu);
    job_release(j);
    return NULL;
}

/* Start looking the daemon's name up on a thread of its own (x->job): 0, or why not (an errno). */
static int start_lookup(xray_exporter *x)
{
    lookup_job *j = calloc(1, sizeof *j);
    if (!j)
        return ENOMEM;
    int rc = pthread_mutex_init(&j->mu, NULL);
    if (rc != 0) {
        free(j);
        return rc;
    }
    if ((rc = clock_mono_cond_init(&j->ended)) != 0) {
        pthread_mutex_destroy(&j->mu);
        free(j);
        return rc;
    }
    memcpy(j->host, x->host, sizeof j->host);
    memcpy(j->port, x->port, sizeof j->port);
    j->refs = 2; /* the exporter's and the thread's */
    pthread_attr_t attr;
    pthread_t thread;
    if ((rc = pthread_attr_init(&attr)) == 0) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        rc = pthread_create(&thread, &attr, lookup_main, j);
        pthread_attr_destroy(&attr);
    }
    if (rc != 0) {
        j->refs = 1;
        job_release(j);
        return rc;
    }
    pthread_mutex_lock(&x->mu);
    x->job = j;
    pthread_mutex_unlock(&x->mu);
    return 0;
}

/* Let go of x->job (the thread keeps it until its lookup ends). */
static void drop_lookup(xray_exporter *x)
{
    pthread_mutex_lock(&x->mu);
    lookup_job *j = x->job;
    x->job = NULL;
    pthread_mutex_unlock(&x->mu);
    if (j)
        job_release(j);
}

/* Wait for x->job to end, for as long as it takes, or, hurried, until the hurry's deadline:
 * whether it ended (then its answer is in *rc and, found, x->addr, and the job is let go). */
static bool wait_lookup(xray_exporter *x, int *rc)
{
    lookup_job *j = x->job;
    pthread_mutex_lock(&j->mu);
    while (!j->done) {
        if (!atomic_load(&x->hurried)) {
            pthread_cond_wait(&j->ended, &j->mu);
            continue;
        }
        int64_t until = atomic_load(&x->hurry_ns);
        if (clock_mono_ns() >= until)
            break;
        struct timespec ts = clock_mono_timespec(until);
        pthread_cond_timedwait(&j->ended, &j->mu, &ts);
    }
    bool done = j->done;
    if (done) {
        *rc = j->rc;
        if (j->rc == 0) {
            x->addr = j->addr;
            x->addrlen = j->addrlen;
        }
    }
    pthread_mutex_unlock(&j->mu);
    if (done)
        drop_lookup(x);
    return done;
}

/* start_lookup(), saying in x->unresolved why not when it failed: whether it started. */
static bool begin_lookup(xray_exporter *x)
{
    int err = start_lookup(x);
    if (err != 0)
        snprintf(x->unresolved, sizeof x->unresolved, "cannot start a lookup: %s", strerror(err));
    return err == 0;
}

/* Whether lookup j has ended. */
static bool lookup_ended(lookup_job *j)
{
    pthread_mutex_lock(&j->mu);
    bool done = j->done;
    pthread_mutex_unlock(&j->mu);
    return done;
}

/* The answer of the lookup under way (begun at start, or one a flush stopped waiting for), or
 * the name looked up again if it is time: whether x now has a socket. */
static bool resolve_late(xray_exporter *x)
{
    bool ended = false; /* the lookup under way had ended before this export came to it */
    if (x->job) {
        ended = lookup_ended(x->job);
    } else {
        if (x->tried && x->clock_ns() - x->tried_ns < RESOLVE_INTERVAL_NS)
            return false;
        if (!begin_lookup(x)) {
            x->tried = true;
            x->tried_ns = x->clock_ns();
            return false;
        }
    }
    int rc;
    if (!wait_lookup(x, &rc)) { /* it goes on: the next export waits for it again */
        snprintf(x->unresolved, sizeof x->unresolved,
                 "its lookup had not ended by the deadline of a flush or a stop");
        return false;
    }
    bool late = !x->at_start; /* not the lookup begun at start */
    x->at_start = false;
    if (rc == 0 && (x->fd = open_socket(x)) < 0)
        snprintf(x->unresolved, sizeof x->unresolved, "no UDP socket: %s", strerror(errno));
    else if (rc != 0)
        snprintf(x->unresolved, sizeof x->unresolved, "%s", gai_strerror(rc));
    if (x->fd < 0) {
        /* the one at start failed: this export tries again, unless it waited for that one */
        x->tried = late || !ended;
        x->tried_ns = x->clock_ns();
        return !x->tried && resolve_late(x);
    }
    if (late)
        log_info("X-Ray daemon address resolved", "daemon", x->where, NULL);
    return true;
}

static void xray_export(exporter *e, const span *spans, size_t n, bool *failed)
{
    xray_exporter *x = (xray_exporter *)e;
    if (x->fd < 0 && !resolve_late(x)) {
        char detail[220];
        snprintf(detail, sizeof detail, "%s (%zu spans)", x->unresolved, n);
        warn(x, "X-Ray spans dropped: the daemon address does not resolve", detail);
        for (size_t i = 0; i < n; i++)
            failed[i] = true;
        return;
    }
    for (size_t i = 0; i < n; i++)
        if (!send_span(x, &spans[i]))
            failed[i] = true;
}

static void xray_hurry(exporter *e, bool on, int64_t deadline_ns)
{
    xray_exporter *x = (xray_exporter *)e;
    atomic_store(&x->hurry_ns, deadline_ns);
    atomic_store(&x->hurried, on);
    pthread_mutex_lock(&x->mu); /* a wait for a lookup now ends at the deadline */
    if (x->job) {
        pthread_mutex_lock(&x->job->mu);
        pthread_cond_broadcast(&x->job->ended);
        pthread_mutex_unlock(&x->job->mu);
    }
    pthread_mutex_unlock(&x->mu);
}

static void xray_free(exporter *e)
{
    xray_exporter *x = (xray_exporter *)e;
    if (x->fd >= 0)
        close(x->fd);
    drop_lookup(x);
    pthread_mutex_destroy(&x->mu);
    free(x);
}

bool export_xray_new(exporter **out, const char *address, const char *service_name, xray_mode mode,
                     int64_t (*clock_ns)(void), char *err, size_t errlen)
{
    *out = NULL;
    char host[256];
    int port = 0;
    if (!xray_daemon_address(address, host, sizeof host, &port)) {
        errbuf_set(err, errlen, "AWS_XRAY_DAEMON_ADDRESS: not host:port or udp:host:port: %.*s",
                   utf8_prec(address, 100), address);
        return false;
    }
    xray_exporter *x = calloc(1, sizeof *x);
    if (!x) {
        errbuf_set(err, errlen, "out of memory starting the tracer");
        return false;
    }
    if (pthread_mutex_init(&x->mu, NULL) != 0) {
        free(x);
        errbuf_set(err, errlen, "cannot create the X-Ray exporter's lock");
        return false;
    }
    x->fd = -1;
    memcpy(x->host, host, sizeof host);
    snprintf(x->port, sizeof x->port, "%d", port);
    snprintf(x->where, sizeof x->where, "%s:%d", host, port);
    x->service_name = service_name;
    x->mode = mode;
    x->clock_ns = clock_ns ? clock_ns : clock_mono_ns;
    x->base.destination = x->where;
    x->base.export = xray_export;
    x->base.hurry = xray_hurry;
    x->base.free = xray_free;
    if (numeric_address(host, port, &x->addr, &x->addrlen)) {
        /* a socket that cannot be had now: the export thread tries again at its first export */
        if ((x->fd = open_socket(x)) < 0) {
            snprintf(x->unresolved, sizeof x->unresolved, "no UDP socket: %s", strerror(errno));
            warn(x, "X-Ray daemon has no socket: spans dropped until it has", x->unresolved);
        }
    } else if (!(x->at_start = begin_lookup(x))) {
        /* the export thread waits for its answer, or tries again at its first export */
        warn(x, "X-Ray daemon address not looked up: spans dropped until it resolves",
             x->unresolved);
    }
    *out = &x->base;
    return true;
}
