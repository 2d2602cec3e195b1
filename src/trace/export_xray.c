/*
 * export_xray — segment documents to the X-Ray daemon over UDP; see
 * export_xray.h.
 *
 * State: the socket, the resolved address, the mode, the service name the
 * segments carry, and the warnings' rate limit. Sending is one sendto() per
 * span with MSG_DONTWAIT: when the daemon is slow or absent the datagram is
 * lost (UDP), never waited for, so X-Ray export cannot hold up the batch the
 * OTLP exporter is sending too.
 */
#include "export_xray.h"

#include "core/sbuf.h"
#include "util/log.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct xray_exporter {
    exporter base; /* first: the tracer's handle */
    int fd;        /* non-blocking UDP socket */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char where[300]; /* "host:port" for logs */
    const char *service_name;
    xray_mode mode;
    exporter_warnings warnings;
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

static void xray_export(exporter *e, const span *spans, size_t n, bool *failed)
{
    xray_exporter *x = (xray_exporter *)e;
    for (size_t i = 0; i < n; i++)
        if (!send_span(x, &spans[i]))
            failed[i] = true;
}

static void xray_free(exporter *e)
{
    xray_exporter *x = (xray_exporter *)e;
    close(x->fd);
    free(x);
}

bool export_xray_new(exporter **out, const char *address, const char *service_name, xray_mode mode,
                     char *err, size_t errlen)
{
    *out = NULL;
    char host[256];
    int port = 0;
    if (!xray_daemon_address(address, host, sizeof host, &port)) {
        snprintf(err, errlen, "AWS_XRAY_DAEMON_ADDRESS: not host:port or udp:host:port: %.100s",
                 address);
        return false;
    }
    char where[300];
    snprintf(where, sizeof where, "%s:%d", host, port);
    char port_s[8];
    snprintf(port_s, sizeof port_s, "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM}, *ai = NULL;
    int rc = getaddrinfo(host, port_s, &hints, &ai);
    if (rc != 0 || !ai) {
        log_warn("X-Ray export off: cannot resolve the daemon address", "daemon", where, "detail",
                 gai_strerror(rc), NULL);
        return true;
    }
    int fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        log_warn("X-Ray export off: no UDP socket", "detail", strerror(errno), NULL);
        freeaddrinfo(ai);
        return true;
    }
    xray_exporter *x = calloc(1, sizeof *x);
    if (!x) {
        close(fd);
        freeaddrinfo(ai);
        snprintf(err, errlen, "out of memory starting the tracer");
        return false;
    }
    x->fd = fd;
    memcpy(&x->addr, ai->ai_addr, ai->ai_addrlen);
    x->addrlen = ai->ai_addrlen;
    freeaddrinfo(ai);
    memcpy(x->where, where, sizeof where);
    x->service_name = service_name;
    x->mode = mode;
    x->base.destination = x->where;
    x->base.export = xray_export;
    x->base.hurry = NULL;
    x->base.free = xray_free;
    *out = &x->base;
    return true;
}
