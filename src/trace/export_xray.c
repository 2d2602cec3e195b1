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
 * A daemon name that does not resolve at start (a sidecar that comes up after
 * taskd, a DNS hiccup) leaves the exporter without a socket (fd -1): export()
 * looks the name up again, on the export thread, at most once every
 * RESOLVE_INTERVAL_NS counted from the end of the last try, and not while
 * hurried (a lookup can last a resolver's timeout, past a flush's or a
 * shutdown's deadline). Until one succeeds every span is marked failed, and
 * warned about as a send that failed is. Once resolved, the address is kept
 * for the run, as one resolved at start is.
 */
#include "export_xray.h"

#include "core/errbuf.h"
#include "core/sbuf.h"
#include "util/clock.h"
#include "util/log.h"

#include <errno.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define RESOLVE_INTERVAL_NS (5 * 1000000000LL)

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
    bool tried;                /* a lookup has failed on the export thread... */
    int64_t tried_ns;          /* ...and ended at this time */
    char unresolved[160];      /* why the daemon has no socket yet, for the warnings */
    atomic_bool hurried;       /* a flush or shutdown: no lookup now */
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
            problem = "X-Ray datagram: out of memory";
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

/* A UDP socket for the family of x->addr, or -1 (errno). */
static int open_socket(const xray_exporter *x)
{
    return socket(x->addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
}

/* The name that did not resolve at start, again if it is time: whether x now has a socket. */
static bool resolve_late(xray_exporter *x)
{
    if (atomic_load(&x->hurried) || (x->tried && x->clock_ns() - x->tried_ns < RESOLVE_INTERVAL_NS))
        return false;
    int rc = lookup(x->host, x->port, &x->addr, &x->addrlen);
    if (rc == 0 && (x->fd = open_socket(x)) < 0)
        snprintf(x->unresolved, sizeof x->unresolved, "no UDP socket: %s", strerror(errno));
    else if (rc != 0)
        snprintf(x->unresolved, sizeof x->unresolved, "%s", gai_strerror(rc));
    if (x->fd < 0) {
        x->tried = true;
        x->tried_ns = x->clock_ns();
        return false;
    }
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
    (void)deadline_ns;
    atomic_store(&((xray_exporter *)e)->hurried, on);
}

static void xray_free(exporter *e)
{
    xray_exporter *x = (xray_exporter *)e;
    if (x->fd >= 0)
        close(x->fd);
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
    int rc = lookup(x->host, x->port, &x->addr, &x->addrlen);
    if (rc != 0) {
        /* not yet, perhaps: the export thread tries again (resolve_late()) */
        snprintf(x->unresolved, sizeof x->unresolved, "%s", gai_strerror(rc));
        warn(x, "X-Ray daemon address does not resolve: spans dropped until it does",
             x->unresolved);
    } else if ((x->fd = open_socket(x)) < 0) {
        log_warn("X-Ray export off: no UDP socket", "detail", strerror(errno), NULL);
        free(x);
        return true;
    }
    *out = &x->base;
    return true;
}
