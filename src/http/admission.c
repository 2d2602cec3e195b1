/*
 * admission — the listener's bounds on connections; see admission.h.
 */
#include "admission.h"

#include "core/siphash.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define CLIENT_BUCKETS 4096

/* One client address and its open connections. */
typedef struct client {
    unsigned char key[17]; /* family, then the address bytes */
    unsigned count;        /* its connections, the lingering ones among them */
    admission_lingerer *lingering, *lingering_last; /* those lingering, oldest first */
    struct client *next;
} client;

/* The lingering connections of a client asked to give way to its next one, at most. */
#define GIVE_WAY_ASKS 4

/* An admission_lingerer's state. */
enum { NOT_LINGERING, LINGERING, GAVE_WAY };

struct admission {
    unsigned max_connections, max_per_client;
    unsigned ipv6_prefix; /* the bits of an IPv6 address that name its client */
    uint8_t hash_key[16]; /* random: a client cannot choose addresses that share a bucket */
    admission_give_way_fn *give_way; /* NULL: no connection gives way */
    void *give_way_ctx;
    pthread_mutex_t lock; /* guards the fields below */
    unsigned open;        /* every connection counted and not yet closed */
    client *clients[CLIENT_BUCKETS];
};

/*
 * The client an address counts against: an IPv4 address (mapped into IPv6 by a dual-stack
 * listener or not), or an IPv6 address's first prefix bits. A /64, the default, is what a
 * network hands one subscriber or link, and its host picks any of its 2^64 addresses at will
 * (privacy addresses): counted by the whole address, one host could open max_per_client
 * connections from each. Where one /64 holds many clients (the pods of a node), a longer
 * prefix tells them apart.
 */
static void client_key(const struct sockaddr *a, unsigned prefix, unsigned char key[17])
{
    memset(key, 0, 17);
    if (a->sa_family == AF_INET6) {
        const struct in6_addr *in6 = &((const struct sockaddr_in6 *)a)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(in6)) {
            key[0] = AF_INET;
            memcpy(key + 1, in6->s6_addr + 12, 4);
        } else {
            key[0] = AF_INET6;
            memcpy(key + 1, in6->s6_addr, prefix / 8);
            if (prefix % 8)
                key[1 + prefix / 8] =
                    in6->s6_addr[prefix / 8] & (unsigned char)(0xff00 >> prefix % 8);
        }
    } else if (a->sa_family == AF_INET) {
        key[0] = AF_INET;
        memcpy(key + 1, &((const struct sockaddr_in *)a)->sin_addr, 4);
    } else {
        key[0] = (unsigned char)a->sa_family;
    }
}

static client **client_slot(admission *a, const unsigned char key[17])
{
    client **p = &a->clients[siphash24(a->hash_key, key, 17) % CLIENT_BUCKETS];
    while (*p && memcmp((*p)->key, key, 17) != 0)
        p = &(*p)->next;
    return p;
}

admission *admission_new(unsigned max_connections, unsigned max_per_client, unsigned ipv6_prefix)
{
    admission *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    if (getrandom(a->hash_key, sizeof a->hash_key, 0) != (ssize_t)sizeof a->hash_key) {
        free(a);
        return NULL;
    }
    a->max_connections = max_connections ? max_connections : 1;
    a->max_per_client = max_per_client ? max_per_client : 1;
    a->ipv6_prefix = ipv6_prefix < 1 ? 1 : ipv6_prefix > 128 ? 128 : ipv6_prefix;
    pthread_mutex_init(&a->lock, NULL);
    return a;
}

void admission_free(admission *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < CLIENT_BUCKETS; i++) {
        while (a->clients[i]) {
            client *next = a->clients[i]->next;
            free(a->clients[i]);
            a->clients[i] = next;
        }
    }
    pthread_mutex_destroy(&a->lock);
    free(a);
}

void admission_set_give_way(admission *a, admission_give_way_fn *give_way, void *ctx)
{
    pthread_mutex_lock(&a->lock);
    a->give_way = give_way;
    a->give_way_ctx = ctx;
    pthread_mutex_unlock(&a->lock);
}

static void unlist(client *cl, admission_lingerer *l)
{
    if (l->prev)
        l->prev->next = l->next;
    else
        cl->lingering = l->next;
    if (l->next)
        l->next->prev = l->prev;
    else
        cl->lingering_last = l->prev;
    l->prev = l->next = NULL;
}

/* The oldest of cl's lingering connections that gives way when asked (NULL: none). A few are
 * asked, oldest first: asking may cost the server calls to the system, under the lock that
 * every accept and close takes. */
static admission_lingerer *giving_way(admission *a, client *cl)
{
    if (!a->give_way)
        return NULL;
    admission_lingerer *l = cl->lingering;
    for (int asked = 0; l && asked < GIVE_WAY_ASKS; l = l->next, asked++)
        if (a->give_way(l, a->give_way_ctx))
            return l;
    return NULL;
}

admission_verdict admission_enter(admission *a, const struct sockaddr *addr)
{
    unsigned char key[17];
    client_key(addr, a->ipv6_prefix, key);
    admission_verdict v = ADMISSION_OK;
    pthread_mutex_lock(&a->lock);
    client **slot = client_slot(a, key);
    bool client_full = *slot && (*slot)->count >= a->max_per_client;
    bool full = a->open >= a->max_connections;
    /* at its own bound or the one in all, the place of a lingering connection that gives way
     * passes to this one: the counts stay */
    admission_lingerer *l = (client_full || full) && *slot ? giving_way(a, *slot) : NULL;
    if (l) {
        unlist(*slot, l);
        l->state = GAVE_WAY;
    } else if (full) {
        v = ADMISSION_FULL;
    } else if (client_full) {
        v = ADMISSION_CLIENT_FULL;
    } else if (!*slot && !(*slot = calloc(1, sizeof **slot))) {
        v = ADMISSION_OUT_OF_MEMORY;
    } else {
        memcpy((*slot)->key, key, 17);
        (*slot)->count++;
        a->open++;
    }
    pthread_mutex_unlock(&a->lock);
    return v;
}

unsigned admission_open(admission *a)
{
    pthread_mutex_lock(&a->lock);
    unsigned open = a->open;
    pthread_mutex_unlock(&a->lock);
    return open;
}

void admission_linger(admission *a, const struct sockaddr *addr, admission_lingerer *l)
{
    unsigned char key[17];
    client_key(addr, a->ipv6_prefix, key);
    pthread_mutex_lock(&a->lock);
    client *cl = *client_slot(a, key);
    if (cl && l->state == NOT_LINGERING) {
        l->prev = cl->lingering_last;
        l->next = NULL;
        if (cl->lingering_last)
            cl->lingering_last->next = l;
        else
            cl->lingering = l;
        cl->lingering_last = l;
        l->state = LINGERING;
    }
    pthread_mutex_unlock(&a->lock);
}

void admission_leave(admission *a, const struct sockaddr *addr)
{
    admission_leave_lingerer(a, addr, NULL);
}

void admission_leave_lingerer(admission *a, const struct sockaddr *addr, admission_lingerer *l)
{
    unsigned char key[17];
    client_key(addr, a->ipv6_prefix, key);
    pthread_mutex_lock(&a->lock);
    client **slot = client_slot(a, key);
    if (l && l->state == GAVE_WAY) {
        /* its place went to another connection, which gives it back when it closes */
    } else if (*slot) {
        if (l && l->state == LINGERING)
            unlist(*slot, l);
        if (--(*slot)->count == 0) {
            client *gone = *slot;
            *slot = gone->next;
            free(gone);
        }
        a->open--;
    }
    pthread_mutex_unlock(&a->lock);
}

const char *admission_reason(admission_verdict v)
{
    switch (v) {
    case ADMISSION_FULL:
        return "connections";
    case ADMISSION_CLIENT_FULL:
        return "client_connections";
    case ADMISSION_OUT_OF_MEMORY:
        return "out_of_memory";
    case ADMISSION_OK:
        break;
    }
    return "";
}
