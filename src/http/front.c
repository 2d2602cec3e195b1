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
 * A connection handed over stays on a list of watches (front_watch_*) under the same mutex
 * until the server closes it: on the handed list until the server takes it, then on the
 * watches. One the server closes without taking it (libmicrohttpd 0.9.75 drops a connection it
 * cannot start, out of memory or past its own limit, and says nothing) is found when accept gives
 * its descriptor out again, or once a second when the descriptor no longer names its socket. The
 * server's threads mark in it, with one atomic operation, when a response has ended and when the
 * next head is in; once a second, while any connection is open, this thread looks for heads overdue
 * and answers them. The mutex also keeps a watch's socket open while this thread writes to it: the
 * server ends the watch before it closes the socket.
 */
#include "front.h"

#include "core/http_head.h"
#include "util/clock.h"
#include "util/log.h"

#include <errno.h>
#include <stdatomic.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LINGER_NS       (1000 * 1000000LL) /* an answered connection's last second */
#define LINGER_BYTES    (256 * 1024)       /* read and dropped at most while lingering */
#define CLIENT_BUCKETS  4096
#define ACCEPT_PAUSE_NS (100 * 1000000LL)  /* accepting waits this long when out of fds */
#define WATCH_TICK_NS   (1000 * 1000000LL) /* how often the watches are looked at */
#define WATCH_ANSWERED  (-1)               /* a watch's waiting_since once answered here */

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

/* A connection handed over, watched between its requests. */
struct front_watch {
    int fd;
    dev_t dev; /* the socket's, to tell it from whatever reuses fd */
    ino_t ino;
    struct sockaddr_storage addr; /* its client, counted since the accept */
    int64_t handed_ns;            /* when it was handed over */
    /* CLOCK_MONOTONIC ns when its last response ended and the next head is awaited; 0 while a
     * request is under way (or none has ended yet); WATCH_ANSWERED once answered here */
    _Atomic int64_t waiting_since;
    int64_t answered_ns; /* when its 408 was written here, 0 before (under the lock) */
    bool read_shut;      /* and its reading side shut since */
    struct front_watch *prev, *next;
};

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

    int64_t next_watch_ns; /* when the watches are next looked at */

    pthread_mutex_t lock; /* guards the fields below */
    unsigned open;        /* every connection not yet closed, held here or handed over */
    front_watch *handed;  /* the connections handed over, not yet taken by the server */
    front_watch *watches; /* the connections the server took, not yet closed */
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

static const char *reason_phrase(int status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 408:
        return "Request Timeout";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 417:
        return "Expectation Failed";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Error";
    }
}

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
                     status, reason_phrase(status), date, retry ? "Retry-After: 1\r\n" : "", blen,
                     body);
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

static void watch_link(front_watch **list, front_watch *w)
{
    w->prev = NULL;
    w->next = *list;
    if (w->next)
        w->next->prev = w;
    *list = w;
}

static void watch_unlink(front_watch **list, front_watch *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        *list = w->next;
    if (w->next)
        w->next->prev = w->prev;
    w->prev = w->next = NULL;
}

/* The watch of a connection about to be handed over, on the handed list; NULL: not watched. */
static front_watch *watch_hand(front *f, const conn *c)
{
    struct stat st;
    front_watch *w = calloc(1, sizeof *w);
    if (!w || fstat(c->fd, &st) != 0) {
        free(w);
        return NULL;
    }
    w->fd = c->fd;
    w->dev = st.st_dev;
    w->ino = st.st_ino;
    memcpy(&w->addr, &c->addr, sizeof w->addr);
    w->handed_ns = clock_mono_ns();
    pthread_mutex_lock(&f->lock);
    watch_link(&f->handed, w);
    pthread_mutex_unlock(&f->lock);
    return w;
}

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
    switch (http_head_judge(f->peek, (size_t)n, f->o.head_limit)) {
    case HTTP_HEAD_MORE:
        if (hangup)
            drop(f, c); /* the rest of the head can no longer come */
        return;
    case HTTP_HEAD_BAD:
        answer(f, c, (size_t)n, 400, "malformed", "Malformed request line");
        return;
    case HTTP_HEAD_VERSION:
        answer(f, c, (size_t)n, 505, "malformed", "HTTP version not supported");
        return;
    case HTTP_HEAD_LINE_TOO_LONG:
        answer(f, c, (size_t)n, 414, "head_too_large", "Request line too long");
        return;
    case HTTP_HEAD_TOO_LARGE:
        answer(f, c, (size_t)n, 431, "head_too_large", "Request head too large");
        return;
    case HTTP_HEAD_BAD_FIELD:
        answer(f, c, (size_t)n, 400, "malformed", "Malformed header line");
        return;
    case HTTP_HEAD_BAD_LENGTH:
        answer(f, c, (size_t)n, 400, "malformed", "Malformed Content-Length");
        return;
    case HTTP_HEAD_LENGTH_TOO_BIG:
        answer(f, c, (size_t)n, 413, "body_too_large", f->o.too_large);
        return;
    case HTTP_HEAD_TOO_MANY:
        answer(f, c, (size_t)n, 431, "head_too_large",
               "Too many header fields, query parameters or cookies");
        return;
    case HTTP_HEAD_BAD_ENCODING:
        answer(f, c, (size_t)n, 501, "malformed", "Transfer-Encoding other than chunked");
        return;
    case HTTP_HEAD_BAD_EXPECT:
        answer(f, c, (size_t)n, 417, "malformed", "Expect: 100-continue without a body");
        return;
    case HTTP_HEAD_OK:
        break;
    }
    list_remove(&f->heads, c);
    f->held--;
    epoll_ctl(f->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
    front_watch *w = watch_hand(f, c); /* before the server can take it */
    if (!f->o.handoff(f->o.ctx, c->fd, (struct sockaddr *)&c->addr, c->addrlen)) {
        if (w) {
            pthread_mutex_lock(&f->lock);
            watch_unlink(&f->handed, w);
            pthread_mutex_unlock(&f->lock);
            free(w);
        }
        front_closed(f, (struct sockaddr *)&c->addr);
    }
    free(c);
}

/* ---- later heads on connections handed over ----------------------------------------------- */

front_watch *front_watch_take(front *f, int fd)
{
    pthread_mutex_lock(&f->lock);
    front_watch *w = f->handed;
    while (w && w->fd != fd)
        w = w->next;
    if (w) {
        watch_unlink(&f->handed, w);
        watch_link(&f->watches, w);
    }
    pthread_mutex_unlock(&f->lock);
    return w;
}

/* Whether a connection handed over and not taken is gone: fd closed, or now another file. */
static bool handed_gone(const front_watch *w, int reused_fd)
{
    struct stat st;
    if (w->fd == reused_fd)
        return true;
    if (fstat(w->fd, &st) != 0)
        return errno == EBADF; /* closed; any other failure tells nothing */
    return st.st_dev != w->dev || st.st_ino != w->ino;
}

/*
 * Count as closed the connections the server closed without taking: those whose descriptor
 * accept just gave out again (reused_fd), and, with reused_fd -1, those handed over a second
 * or more ago whose descriptor no longer names their socket.
 */
static void forget_handed(front *f, int reused_fd, int64_t now)
{
    front_watch *gone = NULL;
    pthread_mutex_lock(&f->lock);
    for (front_watch *w = f->handed, *next; w; w = next) {
        next = w->next;
        bool due = reused_fd >= 0 ? w->fd == reused_fd : now - w->handed_ns >= WATCH_TICK_NS;
        if (due && handed_gone(w, reused_fd)) {
            watch_unlink(&f->handed, w);
            watch_link(&gone, w);
        }
    }
    pthread_mutex_unlock(&f->lock);
    while (gone) {
        front_watch *w = gone;
        gone = w->next;
        log_warn("the server closed a connection it did not start", "component", "http", NULL);
        front_closed(f, (struct sockaddr *)&w->addr);
        free(w);
    }
}

void front_watch_end(front *f, front_watch *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&f->lock);
    watch_unlink(&f->watches, w);
    pthread_mutex_unlock(&f->lock);
    free(w);
}

void front_watch_idle(front_watch *w)
{
    int64_t in_request = 0; /* an answered watch stays answered */
    if (w)
        atomic_compare_exchange_strong(&w->waiting_since, &in_request, clock_mono_ns());
}

bool front_watch_head(front_watch *w)
{
    if (!w)
        return true;
    int64_t since = atomic_load(&w->waiting_since);
    while (since != WATCH_ANSWERED) /* 0 stays 0: the front answers only a waiting one */
        if (since == 0 || atomic_compare_exchange_weak(&w->waiting_since, &since, 0))
            return true;
    return false;
}

/*
 * Answer the heads overdue with a 408 and shut the sending side; a second later, shut the
 * reading side too, so that libmicrohttpd reads the end of the stream and closes the
 * connection even if the client keeps sending.
 */
static void watch_heads(front *f, int64_t now)
{
    int64_t limit = ((int64_t)f->o.idle_timeout_s + (int64_t)f->o.header_timeout_s) * 1000000000LL;
    unsigned overdue = 0;
    forget_handed(f, -1, now);
    pthread_mutex_lock(&f->lock);
    for (front_watch *w = f->watches; w; w = w->next) {
        int64_t since = atomic_load(&w->waiting_since);
        if (since > 0 && now - since >= limit &&
            atomic_compare_exchange_strong(&w->waiting_since, &since, WATCH_ANSWERED))
            overdue++; /* its answer is written below */
    }
    pthread_mutex_unlock(&f->lock);
    /* counted before a client can read its answer, and outside the lock, which every
     * connection's open and close takes */
    for (unsigned i = 0; i < overdue; i++)
        f->o.refused(f->o.ctx, 408, "header_timeout", "Request head not received in time");
    pthread_mutex_lock(&f->lock);
    for (front_watch *w = f->watches; w; w = w->next) {
        if (atomic_load(&w->waiting_since) != WATCH_ANSWERED || w->read_shut)
            continue;
        if (!w->answered_ns) {
            front_send_error(w->fd, 408, "Request head not received in time");
            shutdown(w->fd, SHUT_WR);
            w->answered_ns = now;
        } else if (now - w->answered_ns >= LINGER_NS) {
            shutdown(w->fd, SHUT_RD);
            w->read_shut = true;
        }
    }
    /* ticking while any connection is open: a watch starts on a server thread after its
     * handoff, when this thread may already be asleep */
    f->next_watch_ns = f->open ? now + WATCH_TICK_NS : 0;
    pthread_mutex_unlock(&f->lock);
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
        forget_handed(f, fd, 0);
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
    if (f->next_watch_ns <= now)
        watch_heads(f, now); /* also schedules the next look, if any connection is open */
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
    if (f->next_watch_ns && f->next_watch_ns < first)
        first = f->next_watch_ns;
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
    while (f->watches) /* none once the server has closed its connections */
        front_watch_end(f, f->watches);
    while (f->handed) { /* nor any it did not take: it closed them too */
        front_watch *w = f->handed;
        watch_unlink(&f->handed, w);
        free(w);
    }
    pthread_mutex_destroy(&f->lock);
    free(f->peek);
    free(f);
}
