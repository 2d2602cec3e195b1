/*
 * http_server — the local HTTP/1.1 transport in front of api.
 *
 * A pool of event-loop threads (epoll) reads requests; a complete request is
 * turned into an api_request, begun by api_begin() on the same thread, and
 * its response sent back, at once or when its write has committed. Bodies
 * are read incrementally and capped at the configured limit (413); idle or
 * slow connections time out, so slow clients hold a socket, never a thread.
 * Writes, long polls and event streams leave their connection waiting in its
 * loop, not a thread.
 *
 * The loops accept connections themselves, bounded in all and per client
 * address (admission.h: 503 and 429 at once); a connection's first request
 * head has the header timeout from the accept. Past max_in_flight requests
 * being answered or waiting on a write, new ones get 503 with Retry-After.
 */
#ifndef TASKD_HTTP_SERVER_H
#define TASKD_HTTP_SERVER_H

#include "api/api.h"

#include <stddef.h>

typedef struct http_options {
    const char *host;   /* numeric address or name to bind */
    int port;           /* 0 picks a free port */
    int threads;        /* event-loop threads */
    size_t body_limit;  /* largest request body accepted */
    unsigned timeout_s; /* idle connection timeout */
    /* Bounds; 0 picks the default */
    unsigned max_connections; /* default: the open-file limit less HTTP_FD_RESERVE, fd_reserve */
    unsigned max_per_client;  /* default: max_connections / 4, at most 1024 */
    unsigned ipv6_prefix;     /* an IPv6 client is its address's first bits (default 64) */
    unsigned max_in_flight;   /* past it, 503 with Retry-After (default 1024) */
    /* Request body bytes held at once, every connection together, as they come until the answer;
     * a request whose body would pass it gets 503 with Retry-After (default 256 MiB; never less
     * than body_limit) */
    size_t max_body_memory;
    unsigned header_timeout_s; /* connect to a complete first request head (default 10) */
    unsigned body_timeout_s;   /* request head to the end of its body (default 60) */
    unsigned fd_reserve;       /* descriptors kept for others besides HTTP_FD_RESERVE (runs') */
    /* Bytes a second an answer still waiting on its client once the idle timeout has passed must
     * reach it at, on average, else it is dropped (default 1024) */
    unsigned min_send_rate;
} http_options;

/* File descriptors left for everything but client connections (database, queues, logs, runs). */
#define HTTP_FD_RESERVE 256

typedef struct http_server http_server;

/* Bind and start serving; NULL with a one-line reason in err on failure. */
http_server *http_server_start(const http_options *o, api *a, char *err, size_t errlen);
/* The bound address as "HOST:PORT" (IPv6 in brackets). */
const char *http_server_address(const http_server *h);
/* Refused connections the loops keep reading until they close or linger out, in all. */
int http_server_refusals_kept(http_server *h);
/* Answer new requests with 503, finish the ones being served, stop and free the server. */
void http_server_stop(http_server *h);

#endif
