/*
 * admission — the listener's bounds on connections: in all, and per client address.
 *
 * Every connection counts against its client's address from accept until it closes: an IPv4
 * address, or an IPv6 address's first ipv6_prefix bits (a /64 by default; an IPv4 address
 * mapped into IPv6 counts as itself). Past
 * max_per_client a new one is refused for its client (the server answers 429); past
 * max_connections in all, for everyone (503). The counts are a hash table under a mutex, shared
 * by the server's event loops.
 */
#ifndef TASKD_ADMISSION_H
#define TASKD_ADMISSION_H

#include <sys/socket.h>

typedef struct admission admission;

/* Why a connection was refused: ADMISSION_OK (0) when it was let in. */
typedef enum admission_verdict {
    ADMISSION_OK,
    ADMISSION_FULL,          /* max_connections open in all */
    ADMISSION_CLIENT_FULL,   /* max_per_client open from its address */
    ADMISSION_OUT_OF_MEMORY, /* no room to count a new client */
} admission_verdict;

/* Bounds of max_connections in all and max_per_client per address (each at least 1), an IPv6
 * client being its address's first ipv6_prefix bits (1 to 128); NULL when out of memory, or
 * with no random bytes for its hash key. */
admission *admission_new(unsigned max_connections, unsigned max_per_client, unsigned ipv6_prefix);
void admission_free(admission *a);

/* Count a new connection from addr unless that passes a bound; ADMISSION_OK when counted. */
admission_verdict admission_enter(admission *a, const struct sockaddr *addr);
/* A connection counted by admission_enter() has closed. */
void admission_leave(admission *a, const struct sockaddr *addr);
/* The connections counted and not yet closed, every client together. */
unsigned admission_open(admission *a);

/* The short metrics label of a refusal ("connections", "client_connections", "out_of_memory"). */
const char *admission_reason(admission_verdict v);

#endif
