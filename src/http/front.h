/*
 * front — the listener's front door, in front of the HTTP server (http_server.h).
 *
 * One thread accepts every connection, bounds them (in all and per client
 * address), and holds each new one until its first request head has arrived:
 * it only peeks at the bytes, so the server later reads the request
 * itself. A complete, well-formed head hands the socket over (handoff);
 * anything else is answered here with a JSON error and closed:
 *
 *   - a request line that cannot be HTTP (a byte no method has, a control
 *     character), as soon as the first such byte is in: 400
 *   - an HTTP version other than 1.0 or 1.1: 505 (400 for no version at all)
 *   - a request line over the head limit: 414; a head over it: 431
 *   - a head not complete within the header timeout: 408, or a silent close
 *     when the client sent nothing
 *   - over the connection bound: 503; over the per-client bound: 429
 *
 * Later requests on a kept-alive connection are the server's to read and bound.
 */
#ifndef TASKD_FRONT_H
#define TASKD_FRONT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

typedef struct front front;

typedef struct front_options {
    int listen_fd;             /* bound and listening; the front closes it */
    unsigned max_connections;  /* held here and handed over, in all */
    unsigned max_per_client;   /* the same, from one client address */
    unsigned header_timeout_s; /* connect to complete first head */
    size_t head_limit;         /* largest first head, bytes */
    const char *too_large;     /* the detail of a 413 for a Content-Length past 2^64 - 1 */
    /* Give a connection with a complete head to the server; false: it refused it (and closed
     * it). The fd is the server's from then on; it calls front_closed() when it closes it. */
    bool (*handoff)(void *ctx, int fd, const struct sockaddr *addr, socklen_t len);
    /* A connection the front answered or closed itself: status 0 = closed without an answer;
     * reason is a short metrics label, detail the words of the answer. */
    void (*refused)(void *ctx, int status, const char *reason, const char *detail);
    void *ctx;
} front_options;

/* Start the accepting thread; false with a one-line reason in err. The front is stored in *out
 * before its thread starts, so the server's callbacks find it from the first connection on
 * (*out NULL on failure). */
bool front_start(const front_options *o, front **out, char *err, size_t errlen);
/* A connection handed over has closed: its client's address counts one less. */
void front_closed(front *f, const struct sockaddr *addr);
/* Stop accepting; close the listening socket and every connection not yet handed over. */
void front_stop(front *f);
/* Free the front, after the server has closed every connection handed to it. */
void front_free(front *f);

/*
 * Write a whole JSON error answer, {"detail": detail}, with "Connection: close" (and
 * "Retry-After: 1" for 429 and 503) straight to a non-blocking socket. detail must need no
 * JSON escaping. false when the socket did not take all of it.
 */
bool front_send_error(int fd, int status, const char *detail);

#endif
