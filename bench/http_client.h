/*
 * http_client — the few HTTP/1.1 client steps the C benches take against taskd on the loopback:
 * a connection, a whole write, one response read by its Content-Length, a string field of a
 * flat JSON body, and the monotonic clock and sorting they time with.
 */
#ifndef BENCH_HTTP_CLIENT_H
#define BENCH_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

/* Seconds on the monotonic clock. */
double now_s(void);

/* A connection to 127.0.0.1:port (TCP_NODELAY, reads time out after timeout_s), or -1. */
int connect_to(int port, double timeout_s);

/* Write all of p[0..n); false on a broken connection. */
bool send_all(int fd, const char *p, size_t n);

/* One response: its status code and its body (NUL-terminated, in buf); false on a broken
 * connection or a response this client does not read (no Content-Length, too large, anything
 * after the body). */
bool read_response(int fd, char *buf, size_t size, int *status, const char **body);

/* The string value of "key" in a flat JSON object (no escapes in the values read here). */
bool json_string(const char *json, const char *key, char *out, size_t size);

/* qsort()'s comparison of doubles, ascending. */
int cmp_double(const void *a, const void *b);

#endif
