/*
 * admission — the listener's bounds on connections: in all, and per client address.
 *
 * Every connection counts against its client's address from accept until it closes: an IPv4
 * address, or an IPv6 address's first ipv6_prefix bits (a /64 by default; an IPv4 address
 * mapped into IPv6 counts as itself). Past
 * max_per_client a new one is refused for its client (the server answers 429); past
 * max_connections in all, for everyone (503). The counts are a hash table under a mutex, shared
 * by the server's event loops.
 *
 * A connection that lingers (its answer given whole, its sending side shut, only reading and
 * dropping what its client still sends: admission_linger()) still counts, but gives way to its
 * client's next connection: one that comes at its client's bound, or at the bound in all,
 * takes the place of that client's oldest lingering connection that the give_way callback lets
 * go (the server's: one whose answer the client has acknowledged whole), which is then closed.
 * A client never holds more than max_per_client sockets, and is not refused for connections
 * that, for it, are over; another client's are never closed for it.
 */
#ifndef TASKD_ADMISSION_H
#define TASKD_ADMISSION_H

#include <stdbool.h>

#include <sys/socket.h>

typedef struct admission admission;

/* Why a connection was refused: ADMISSION_OK (0) when it was let in. */
typedef enum admission_verdict {
    ADMISSION_OK,
    ADMISSION_FULL,          /* max_connections open in all */
    ADMISSION_CLIENT_FULL,   /* max_per_client open from its address */
    ADMISSION_OUT_OF_MEMORY, /* no room to count a new client */
} admission_verdict;

/* A connection's link among its client's lingering ones; zeroed before its admission_enter(),
 * touched by admission alone, under its lock. */
typedef struct admission_lingerer {
    struct admission_lingerer *prev, *next; /* the client's lingering connections, oldest first */
    int state;                              /* 0, or listed, or its place taken (admission.c) */
} admission_lingerer;

/* Whether lingering connection l gives its place to a new connection of its client: if so
 * (true) it must close, and its admission_leave_lingerer() gives nothing back; false leaves it
 * as it is (the client's next lingering connection is asked). Called under admission's lock, on
 * the thread of that admission_enter(), while l's connection is still open: it must not call
 * admission back, only have l's owner close it. */
typedef bool admission_give_way_fn(admission_lingerer *l, void *ctx);

/* Bounds of max_connections in all and max_per_client per address (each at least 1), an IPv6
 * client being its address's first ipv6_prefix bits (1 to 128); NULL when out of memory, or
 * with no random bytes for its hash key. */
admission *admission_new(unsigned max_connections, unsigned max_per_client, unsigned ipv6_prefix);
void admission_free(admission *a);

/* Count a new connection from addr unless that passes a bound; ADMISSION_OK when counted (at
 * its client's bound or the one in all, in the place of a lingering connection of that client
 * that gives way). */
admission_verdict admission_enter(admission *a, const struct sockaddr *addr);
/* A connection counted by admission_enter() has closed. */
void admission_leave(admission *a, const struct sockaddr *addr);

/* Whom admission_enter() tells to close a lingering connection whose place it gives to a new
 * one (none, the default: a client at its bound is refused whatever its connections do). */
void admission_set_give_way(admission *a, admission_give_way_fn *give_way, void *ctx);
/* The connection of l, counted by admission_enter(), lingers: it may give way from now on. */
void admission_linger(admission *a, const struct sockaddr *addr, admission_lingerer *l);
/* The connection of l has closed: as admission_leave(), but for one that lingered and gave its
 * place to another (admission_give_way_fn), nothing is given back. */
void admission_leave_lingerer(admission *a, const struct sockaddr *addr, admission_lingerer *l);
/* The connections counted and not yet closed, every client together. */
unsigned admission_open(admission *a);

/* The short metrics label of a refusal ("connections", "client_connections", "out_of_memory"). */
const char *admission_reason(admission_verdict v);

#endif
