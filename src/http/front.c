/*
 * front — accepting connections and waiting for their first request head; see front.h.
 *
 * One thread runs an epoll set over the listening socket, a stop eventfd and every connection
 * still waiting for its first head. Waiting connections are edge-triggered: each arrival of
 * bytes wakes the thread once, and it peeks at everything received so far (at most the head
 * limit) to judge the head. Deadlines are a fixed time after an event, so each list below is in
 * deadline order and the loop sleeps until the first deadline of either.
 *
 * A connection answered here lingers for a moment before it is closed: its unread bytes are
 * read and dropped, so closing it does not reset the connection under the answer before the
 * client has read it.
 *
 * Every connection counts against its client's address from accept until it closes: here, or in
 * the server after the handoff (front_closed()). The counts are a hash table under a mutex,
 * shared with the server's threads.
 *
 */
#include "front.h"

#include "core/http_head.h"
#include "util/clock.h"
#include "util/log.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define LINGER_NS       (1000 * 1000000LL) /* an answered connection's last second */
#define LINGER_BYTES    (256 * 1024)       /* read and dropped at most while lingering */
#define CLIENT_BUCKETS  4096
#define ACCEPT_PAUSE_NS (100 * 1000000LL) /* accepting waits this long when out of fds */

enum wait_state { WAIT_HEAD, WAIT_LINGER };

typedef struct conn {
    int fd;
    enum wait_state state;
    int64_t deadline_ns;
    size_t dropped; /* bytes read and dropped while lingering */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    struct conn *prev, *next;
} conn;

typedef struct conn_list {
    conn *head, *tail;
} conn_list;

/* One client address and its open connections. */
typedef struct client {
    unsigned char key[17]; /* family, then the address bytes */
    unsigned count;
    struct client *next;
} client;

struct front {
    front_options o;
    int epoll_fd, stop_fd;
    pthread_t thread;
    bool running;
    conn_list heads, lingers; /* each in deadline order */
    unsigned held;            /* connections here, in either list */
    int64_t accept_paused_until;
    char *peek; /* head_limit bytes */
    char listen_tag, stop_tag;

    pthread_mutex_t lock; /* guards the fields below */
    unsigned open;        /* every connection not yet closed, held here or handed over */
    client *clients[CLIENT_BUCKETS];
};

/* ---- per-client counts ------------------------------------------------------------------- */

static size_t client_key(const struct sockaddr *a, unsigned char key[17])
{
    memset(key, 0, 17);
    key[0] = (unsigned char)a->sa_family;
    if (a->sa_family == AF_INET) {
        memcpy(key + 1, &((const struct sockaddr_in *)a)->sin_addr, 4);
        return 5;
    }
    if (a->sa_family == AF_INET6) {
        memcpy(key + 1, &((const struct sockaddr_in6 *)a)->sin6_addr, 16);
        return 17;
    }
    return 1;
}

static client **client_slot(front *f, const unsigned char key[17])
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (int i = 0; i < 17; i++)
        h = (h ^ key[i]) * 16777619u;
    client **p = &f->clients[h % CLIENT_BUCKETS];
    while (*p && memcmp((*p)->key, key, 17) != 0)
        p = &(*p)->next;
    return p;
}

/* Count a new connection from addr; NULL when it may open, else why not (a metrics reason). */
static const char *admit(front *f, const struct sockaddr *addr)
{
    unsigned char key[17];
    client_key(addr, key);
    const char *refusal = NULL;
    pthread_mutex_lock(&f->lock);
    client **slot = client_slot(f, key);
    if (f->open >= f->o.max_connections) {
        refusal = "connections";
    } else if (*slot && (*slot)->count >= f->o.max_per_client) {
        refusal = "client_connections";
    } else if (!*slot && !(*slot = calloc(1, sizeof **slot))) {
        refusal = "out_of_memory";
    } else {
        memcpy((*slot)->key, key, 17);
        (*slot)->count++;
        f->open++;
    }
    pthread_mutex_unlock(&f->lock);
    return refusal;
}

void front_closed(front *f, const struct sockaddr *addr)
{
    unsigned char key[17];
    client_key(addr, key);
    pthread_mutex_lock(&f->lock);
    client **slot = client_slot(f, key);
    if (*slot) {
        if (--(*slot)->count == 0) {
            client *gone = *slot;
            *slot = gone->next;
            free(gone);
        }
        f->open--;
    }
    pthread_mutex_unlock(&f->lock);
}

/* ---- answers ------------------------------------------------------------------------------ */

bool front_send_error(int fd, int status, const char *detail)
{
    char body[256], date[64], msg[640];
    int blen = snprintf(body, sizeof body, "{\"detail\":\"%s\"}", detail);
    if (blen < 0 || (size_t)blen >= sizeof body)
        return false;
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    bool retry = status == 429 || status == 503;
    int n = snprintf(msg, sizeof msg,
                     "HTTP/1.1 %d %s\r\nDate: %s\r\nConnection: close\r\n%s"
                     "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                     status, http_reason_phrase(status), date, retry ? "Retry-After: 1\r\n" : "",
                     blen, body);
    if (n < 0 || (size_t)n >= sizeof msg)
        return false;
    ssize_t sent = send(fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
    return sent == n;
}

/* ---- the lists of waiting connections ----------------------------------------------------- */

static void list_push(conn_list *l, conn *c)
{
    c->next = NULL;
    c->prev = l->tail;
    if (l->tail)
        l->tail->next = c;
    else
        l->head = c;
    l->tail = c;
}

static void list_remove(conn_list *l, conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        l->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        l->tail = c->prev;
    c->prev = c->next = NULL;
}

static conn_list *list_of(front *f, conn *c)
{
    return c->state == WAIT_HEAD ? &f->heads : &f->lingers;
}

/* Close a connection held here (its fd leaves the epoll set as it closes). */
static void drop(front *f, conn *c)
{
    list_remove(list_of(f, c), c);
    close(c->fd);
    front_closed(f, (struct sockaddr *)&c->addr);
    f->held--;
    free(c);
}

/* Answer a waiting connection and let it linger; consumed: bytes of its head to read first. */
static void answer(front *f, conn *c, size_t consumed, int status, const char *reason,
                   const char *detail)
{
    while (consumed > 0) {
        ssize_t n = recv(c->fd, f->peek, consumed, MSG_DONTWAIT);
        if (n <= 0)
            break;
        consumed -= (size_t)n;
    }
    f->o.refused(f->o.ctx, status, reason, detail); /* counted before the client can read it */
    front_send_error(c->fd, status, detail);
    shutdown(c->fd, SHUT_WR);
    list_remove(&f->heads, c);
    c->state = WAIT_LINGER;
    c->deadline_ns = clock_mono_ns() + LINGER_NS;
    list_push(&f->lingers, c);
}

/* ---- handing over ------------------------------------------------------------------------ */

/* Bytes have arrived on a waiting connection, or its client has shut its side (hangup). */
static void readable(front *f, conn *c, bool hangup)
{
    if (c->state == WAIT_LINGER) {
        for (;;) {
            ssize_t n = recv(c->fd, f->peek, f->o.head_limit, MSG_DONTWAIT);
            if (n > 0 && (c->dropped += (size_t)n) < LINGER_BYTES)
                continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
                return;
            drop(f, c); /* the client closed, or sends too much: enough */
            return;
        }
    }
    ssize_t n = recv(c->fd, f->peek, f->o.head_limit, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        drop(f, c); /* closed before its request */
        return;
    }
    http_head_verdict v = http_head_judge(f->peek, (size_t)n, f->o.head_limit);
    if (v == HTTP_HEAD_MORE) {
        if (hangup)
            drop(f, c); /* the rest of the head can no longer come */
        return;
    }
    if (v != HTTP_HEAD_OK) {
        http_refusal r = http_head_refusal(v, f->o.too_large);
        answer(f, c, (size_t)n, r.status, r.reason, r.detail);
        return;
    }
    list_remove(&f->heads, c);
    f->held--;
    epoll_ctl(f->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
    if (!f->o.handoff(f->o.ctx, c->fd, (struct sockaddr *)&c->addr, c->addrlen))
        front_closed(f, (struct sockaddr *)&c->addr);
    free(c);
}

/* ---- accepting ---------------------------------------------------------------------------- */

static void pause_accepting(front *f, bool pause)
{
    struct epoll_event ev = {.events = pause ? 0 : EPOLLIN, .data.ptr = &f->listen_tag};
    epoll_ctl(f->epoll_fd, EPOLL_CTL_MOD, f->o.listen_fd, &ev);
    f->accept_paused_until = pause ? clock_mono_ns() + ACCEPT_PAUSE_NS : 0;
}

static void accept_some(front *f)
{
    for (int i = 0; i < 64; i++) {
        conn probe = {0};
        probe.addrlen = sizeof probe.addr;
        int fd = accept4(f->o.listen_fd, (struct sockaddr *)&probe.addr, &probe.addrlen,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* Out of descriptors: the backlog waits until some close. */
                log_warn("cannot accept a connection", "component", "http", "error",
                         strerror(errno), NULL);
                pause_accepting(f, true);
            }
            return; /* EAGAIN, or the client is already gone */
        }
        const char *refusal = admit(f, (struct sockaddr *)&probe.addr);
        if (refusal) {
            bool per_client = strcmp(refusal, "client_connections") == 0;
            int status = per_client ? 429 : 503;
            const char *detail =
                per_client ? "Too many connections from this client" : "Too many connections";
            f->o.refused(f->o.ctx, status, refusal, detail);
            front_send_error(fd, status, detail);
            close(fd);
            continue;
        }
        conn *c = malloc(sizeof *c);
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET};
        if (c) {
            *c = probe;
            c->fd = fd;
            c->state = WAIT_HEAD;
            c->deadline_ns = clock_mono_ns() + (int64_t)f->o.header_timeout_s * 1000000000LL;
            ev.data.ptr = c;
        }
        if (!c || epoll_ctl(f->epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0) {
            free(c);
            close(fd);
            front_closed(f, (struct sockaddr *)&probe.addr);
            continue;
        }
        list_push(&f->heads, c);
        f->held++;
    }
}

/* Deadlines: a head not in time gets a 408 (a silent close if nothing came); lingering ends. */
static void expire(front *f, int64_t now)
{
    while (f->lingers.head && f->lingers.head->deadline_ns <= now)
        drop(f, f->lingers.head);
    while (f->heads.head && f->heads.head->deadline_ns <= now) {
        conn *c = f->heads.head;
        ssize_t n = recv(c->fd, f->peek, f->o.head_limit, MSG_PEEK | MSG_DONTWAIT);
        if (n > 0) {
            answer(f, c, (size_t)n, 408, "header_timeout", "Request head not received in time");
        } else {
            f->o.refused(f->o.ctx, 0, "header_timeout", "nothing received");
            drop(f, c);
        }
    }
    if (f->accept_paused_until && f->accept_paused_until <= now)
        pause_accepting(f, false);
}

static int next_timeout_ms(front *f, int64_t now)
{
    int64_t first = INT64_MAX;
    if (f->heads.head)
        first = f->heads.head->deadline_ns;
    if (f->lingers.head && f->lingers.head->deadline_ns < first)
        first = f->lingers.head->deadline_ns;
    if (f->accept_paused_until && f->accept_paused_until < first)
        first = f->accept_paused_until;
    if (first == INT64_MAX)
        return -1;
    if (first <= now)
        return 0;
    return (int)((first - now + 999999) / 1000000);
}

static void *run(void *arg)
{
    front *f = arg;
    struct epoll_event evs[64];
    for (;;) {
        int n = epoll_wait(f->epoll_fd, evs, 64, next_timeout_ms(f, clock_mono_ns()));
        if (n < 0 && errno != EINTR) {
            log_error("front: epoll_wait failed", "component", "http", "error", strerror(errno),
                      NULL);
            return NULL;
        }
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            if (p == &f->stop_tag)
                return NULL;
            if (p == &f->listen_tag)
                accept_some(f);
            else
                readable(f, p, evs[i].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR));
        }
        expire(f, clock_mono_ns());
    }
}

/* ---- start and stop ----------------------------------------------------------------------- */

bool front_start(const front_options *o, front **out, char *err, size_t errlen)
{
    *out = NULL;
    front *f = calloc(1, sizeof *f);
    if (!f || !(f->peek = malloc(o->head_limit))) {
        free(f);
        snprintf(err, errlen, "out of memory");
        return false;
    }
    f->o = *o;
    f->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    f->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    pthread_mutex_init(&f->lock, NULL);
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = &f->listen_tag};
    struct epoll_event sev = {.events = EPOLLIN, .data.ptr = &f->stop_tag};
    *out = f;
    if (f->epoll_fd < 0 || f->stop_fd < 0 ||
        epoll_ctl(f->epoll_fd, EPOLL_CTL_ADD, o->listen_fd, &lev) != 0 ||
        epoll_ctl(f->epoll_fd, EPOLL_CTL_ADD, f->stop_fd, &sev) != 0 ||
        pthread_create(&f->thread, NULL, run, f) != 0) {
        snprintf(err, errlen, "cannot start the connection acceptor: %s", strerror(errno));
        f->o.listen_fd = -1; /* the caller still owns it */
        *out = NULL;
        front_stop(f);
        front_free(f);
        return false;
    }
    pthread_setname_np(f->thread, "http-front");
    f->running = true;
    return true;
}

void front_stop(front *f)
{
    if (!f)
        return;
    if (f->running) {
        uint64_t one = 1;
        if (write(f->stop_fd, &one, sizeof one) < 0)
            log_warn("front: cannot signal the acceptor", "component", "http", NULL);
        pthread_join(f->thread, NULL);
        f->running = false;
    }
    while (f->heads.head)
        drop(f, f->heads.head);
    while (f->lingers.head)
        drop(f, f->lingers.head);
    if (f->o.listen_fd >= 0)
        close(f->o.listen_fd);
    f->o.listen_fd = -1;
}

void front_free(front *f)
{
    if (!f)
        return;
    front_stop(f);
    if (f->epoll_fd >= 0)
        close(f->epoll_fd);
    if (f->stop_fd >= 0)
        close(f->stop_fd);
    for (size_t i = 0; i < CLIENT_BUCKETS; i++) {
        while (f->clients[i]) {
            client *next = f->clients[i]->next;
            free(f->clients[i]);
            f->clients[i] = next;
        }
    }
    pthread_mutex_destroy(&f->lock);
    free(f->peek);
    free(f);
}
