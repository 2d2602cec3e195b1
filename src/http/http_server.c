/*
 * http_server — the local HTTP/1.1 server in front of the API; see http_server.h.
 *
 * Each event-loop thread accepts connections and owns those it accepted: an epoll set in which
 * the listening socket is registered in every loop (EPOLLEXCLUSIVE: one loop wakes for a new
 * connection) and a connection once, edge-triggered for reading and writing, and an eventfd
 * through which other threads wake it. Every connection counts against its client's address
 * (admission.h) from accept until it closes; one past a bound is answered 429 or 503 at once,
 * then read from until its client closes (refused_take()), outside the epoll set. A lingering
 * connection gives way to its client's next one at a bound (conn_give_way()).
 * A connection moves through:
 *
 *   HEAD     a request head is read and judged as it comes (http_head_judge_from()), then
 *            split in place (http_head_split())
 *   BODY     its body is read: a Content-Length body into the same buffer, just after the head,
 *            so the API reads head and body where they arrived; a chunked one decoded
 *            (http_chunked) into a buffer of its own
 *   PENDING  api_begin() handed a write (or a long poll) to the store; the writer's ready()
 *            puts the connection on its loop's wake list, and the loop answers it
 *   WRITING  the response goes out: one sendmsg() of head and body, more when the socket
 *            fills
 *   STREAM   an event stream (GET /events) goes out as the stream fills; the stream's wake()
 *            uses the same wake list
 *   LINGER   answered while a body was still coming, or closing with the client's bytes
 *            unread or the answer not yet acknowledged: what comes is read and dropped for a
 *            moment, so the close does not reset the connection under the answer; closed
 *            sooner when a new connection of its client needs its place
 *
 * Waiting for a write costs no epoll_ctl() and no thread: the connection stays in its set, and
 * a commit of many writes wakes each loop once. Pipelined requests are answered in order, one
 * at a time; a connection that has answered TURN_ANSWERS of them in one go yields its turn to
 * the loop's other connections, and goes on once they had theirs (the loop's yielded list).
 *
 * Answers given before a request reaches the API (a head refused, a body over the limit or
 * late, conflicting lengths, shutting down, admission) are JSON like the API's own, and
 * counted and logged by the API under route "unmatched" (api_count_unrouted()).
 *
 * Deadlines, checked a few times a second: a first head not complete within the header
 * timeout after the connection came gets 408 (a connection that sent nothing is closed
 * silently); a kept-alive connection silent for the idle timeout is closed; a later head not
 * complete within the idle timeout plus the header timeout after the previous answer gets 408;
 * a body not complete within the body timeout gets 408; a response the client does not read
 * for the idle timeout is dropped, and so is one still waiting on it once the idle timeout has
 * passed that has not reached it at min_send_rate on average since (reads_too_slowly()): its
 * connection is reset (drop_answer()).
 */
#include "http_server.h"

#include "admission.h"
#include "core/errbuf.h"
#include "core/http_chunked.h"
#include "core/http_head.h"
#include "core/sbuf.h"
#include "core/urlcode.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/sockios.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define HEAD_LIMIT  (16 * 1024) /* a request head's bytes, the empty lines before it included */
#define IN_FIRST    4096        /* a connection's first input buffer */
#define IN_KEEP     (64 * 1024) /* the most input buffer a connection keeps between requests */
#define STREAM_READ 4096        /* an event stream's bytes per chunk */
/* A refused body is read and dropped this long (and this much) before the connection closes. */
#define LINGER_NS    (1000 * 1000000LL)
#define LINGER_BYTES (256 * 1024)
#define SWEEP_NS     (250 * 1000000LL) /* how often deadlines are looked at */
/* Connections refused at accept that a loop keeps reading from (and dropping) until their
 * client closes, LINGER_NS or LINGER_BYTES, so that a request already sent does not turn the
 * refusal into a reset. REFUSED_LINGER_ALL in all, shared among the loops (REFUSED_LINGER a
 * loop at most, one at least): a loop with all its own kept closes its oldest for a new one;
 * with more loops than REFUSED_LINGER_ALL, one whose slot is free but finds all kept closes
 * its refusal at once. Their descriptors come out of HTTP_FD_RESERVE. */
#define REFUSED_LINGER     16
#define REFUSED_LINGER_ALL 64
/* A loop out of descriptors takes the listening socket out of its set for this long. */
#define ACCEPT_PAUSE_NS (100 * 1000000LL)
#define ACCEPT_BATCH    64 /* connections accepted per event, at most */
#define EVENTS          64
#define TURN_ANSWERS    16 /* pipelined requests a connection answers before it yields its turn */

typedef struct loop loop;
typedef struct conn conn;

/* A connection refused at accept: answered, its sending side shut, read until it closes. */
typedef struct refused {
    int fd; /* -1: a free slot */
    int64_t since_ns;
    size_t dropped;
} refused;

struct http_server {
    api *api;
    metrics *metrics; /* the API's registry; NULL: nothing counted */
    admission *admission;
    int listen_fd;
    loop *loops;
    int n_loops;
    size_t body_limit;
    char too_large[96];      /* the detail of every 413 */
    size_t body_memory;      /* max_body_memory */
    atomic_size_t body_held; /* the bytes the requests being read and answered hold (hold_body()) */
    int64_t body_timeout_ns, idle_timeout_ns, header_timeout_ns;
    int64_t min_send_rate; /* bytes a second (reads_too_slowly()) */
    int max_in_flight;
    atomic_int active;    /* requests inside api_begin() .. response, parked ones included */
    atomic_int in_flight; /* the active ones but long polls: what admission bounds */
    atomic_int streams;   /* event streams not yet closed */
    atomic_int writing;   /* answers begun and not yet sent whole (respond() .. response_sent()) */
    atomic_bool stopping; /* no new requests are answered */
    atomic_int loops_stopping; /* the loops that have answered the requests still coming */
    atomic_int lingering;      /* refused connections the loops keep, in all (REFUSED_LINGER_ALL) */
    char address[80];
};

struct loop {
    http_server *h;
    pthread_t thread;
    bool started;
    int epoll_fd, wake_fd;
    _Atomic(conn *) wakes; /* connections woken by other threads (a stack) */
    atomic_bool stop;
    conn *conns;   /* every connection of this loop */
    conn *dead;    /* closed, freed once nothing will touch them */
    conn *yielded; /* connections with requests left that yielded their turn (yield_turn()) */
    conn **yielded_end;
    int64_t now_ns; /* CLOCK_MONOTONIC when this turn began: the loop's clock */
    int64_t next_sweep_ns;
    bool stop_seen;           /* the server stops: the requests coming then were answered */
    bool accepting;           /* the listening socket is in this loop's set */
    int64_t accept_resume_ns; /* when it goes back in, after running out of descriptors */
    time_t date_s;            /* the second date was written for */
    char date[40];
    refused refused[REFUSED_LINGER]; /* in no epoll set: read at each sweep */
    int refused_cap;                 /* the slots of refused this loop uses */
};

enum phase { HEAD, BODY, PENDING, WRITING, STREAM, LINGER };

struct conn {
    loop *loop;
    conn *prev, *next;  /* the loop's connections */
    conn *wake_next;    /* on the loop's wake stack */
    atomic_bool queued; /* on the wake stack, or being pushed there */
    atomic_bool done;   /* the write (or wait) in flight has called ready() */
    conn *dead_next;    /* on the loop's list of closed connections */
    conn *yield_next;   /* on the loop's yielded list */
    bool yielded;       /* on it: it runs again next turn */
    int fd;             /* -1 once closed */
    struct sockaddr_storage addr;
    enum phase phase;
    bool readable;   /* the socket may hold bytes not read yet */
    bool peer_done;  /* the client sent its last byte (or the socket failed) */
    bool closing;    /* close once nothing is in flight */
    bool keep_alive; /* the response keeps the connection open */
    bool served;    /* an answer went out and the connection stayed: the next head is a later one */
    bool head_only; /* HEAD: the response has no body */
    bool counted;   /* answered before routing and counted */
    bool split;     /* req holds the current request's head */
    bool oom;       /* no memory for the request's bytes: answered 503, then closed */
    bool active, in_flight;
    bool writing; /* its answer counts in h->writing */
    /* input: in[0..in_len), the request being read starting at 0 */
    char *in;
    size_t in_len, in_cap;
    http_head_scan scan;    /* how far its head was judged, while it comes */
    http_request_head *req; /* the split head, while the request is read and begun */
    size_t body_len;        /* a Content-Length body's bytes (after req->len) */
    bool chunked;
    bool args_split; /* query arguments split into req->fields past its header fields */
    size_t n_args;
    http_chunked dec;
    sbuf body;         /* a chunked body, decoded (its raw bytes leave in as they are read) */
    size_t held;       /* of the server's body_held, this request's, until it is answered */
    int64_t start_ns;  /* the head complete */
    int64_t idle_ns;   /* the last answer ended (or the accept) */
    int64_t io_ns;     /* the last byte read or written */
    int64_t rate_ns;   /* when a sweep first found the answer waiting on its client (0: not yet) */
    int64_t rate_from; /* the bytes of answers its client had acknowledged then, net */
    int64_t linger_ns; /* when lingering began; a refusal sets it first, to linger after it */
    size_t dropped;    /* bytes dropped while lingering */
    admission_lingerer place; /* among its client's lingering connections (admission_linger()) */
    atomic_bool give_way;     /* its place went to a new connection: it closes at its wake */
    /* output */
    sbuf out; /* the response head, or a stream's chunk */
    size_t out_off;
    const char *body_out; /* the response body (owned by ex.resp, or static) */
    size_t body_out_len, body_off;
    api_stream *stream;
    bool stream_ended;
    /* the request's exchange with the API (7 KiB), from its begin or refusal to its answer's
     * end: a connection between requests, or still waiting for its first, holds none */
    api_exchange *ex;
};

/* ---- the memory request bodies hold -------------------------------------------------------- */

/*
 * Hold bytes more of the memory request bodies may take, every connection together, for c's
 * request: the bytes of its body come so far (a chunked body's decoded), so that a head alone,
 * which costs its sender nothing, holds nothing; false when that would pass max_body_memory. What a
 * request holds is let go as its answer is about to go out (respond()), and in any case when its
 * connection is freed.
 */
static bool hold_body(conn *c, size_t bytes)
{
    http_server *h = c->loop->h;
    size_t held = atomic_load(&h->body_held);
    do {
        if (bytes > h->body_memory - held)
            return false;
    } while (!atomic_compare_exchange_weak(&h->body_held, &held, held + bytes));
    c->held += bytes;
    return true;
}

static void release_body(conn *c)
{
    if (c->held) {
        atomic_fetch_sub(&c->loop->h->body_held, c->held);
        c->held = 0;
    }
}

/* ---- counting answers given before routing ------------------------------------------------ */

/* Count one connection or request refused, or one answer dropped, by a bound or deadline (reason:
 * a short label). */
static void count_refused(http_server *h, const char *reason)
{
    if (h->metrics) {
        char labels[64];
        snprintf(labels, sizeof labels, "reason=\"%s\"", reason);
        metrics_add(h->metrics, "taskd_http_refused_total", labels, 1);
    }
}

/* ---- waking a loop ------------------------------------------------------------------------ */

/* Wake loop l from any thread: its epoll_wait() returns and it takes a turn. */
static void loop_wake(loop *l)
{
    uint64_t one = 1;
    ssize_t n = write(l->wake_fd, &one, sizeof one);
    (void)n; /* a full counter wakes the loop all the same */
}

/* Put c on its loop's wake stack (any thread); the loop runs it on its next turn. */
static void conn_wake(conn *c)
{
    if (atomic_exchange(&c->queued, true))
        return; /* on the stack already: one run serves both */
    loop *l = c->loop;
    conn *top = atomic_load(&l->wakes);
    do
        c->wake_next = top;
    while (!atomic_compare_exchange_weak(&l->wakes, &top, c));
    if (!top) /* the stack was empty: the loop may be asleep */
        loop_wake(l);
}

/* The store is done with a request's write, or a long poll's wait is over (another thread). */
static void exchange_ready(api_exchange *ex)
{
    conn *c = ex->user;
    atomic_store(&c->done, true); /* a stream's wake queued earlier is not this */
    conn_wake(c);
}

/* An event stream has more to send, or has ended (another thread). */
static void stream_wake(void *user)
{
    conn_wake(user);
}

/*
 * Make the close of socket fd, whose client does not take what it was sent, a reset rather than
 * an end: an end queues behind the bytes the socket holds, and the kernel keeps the socket, and
 * those bytes, for as long as the client goes on not taking them (a client that read nothing
 * still held 2.8 MB of an answer in a socket left in FIN_WAIT1 a minute after the close).
 */
static void reset_at_close(int fd)
{
    struct linger reset = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
}

/* The stream drops a client that reads too slowly: shut the socket, so the loop sees it fail,
 * and its close resets it. */
static void stream_abort(void *user)
{
    conn *c = user;
    reset_at_close(c->fd);
    shutdown(c->fd, SHUT_RDWR);
}

/* ---- requests in flight ------------------------------------------------------------------- */

static void leave_in_flight(http_server *h, conn *c)
{
    if (c->in_flight) {
        c->in_flight = false;
        atomic_fetch_sub(&h->in_flight, 1);
    }
}

/* The request no longer counts as active (answered, or its client left). */
static void settle(http_server *h, conn *c)
{
    leave_in_flight(h, c);
    if (c->active) {
        c->active = false;
        atomic_fetch_sub(&h->active, 1);
    }
}

/* ---- the exchange with the API ----------------------------------------------------------- */

/* The current request's exchange, zeroed when new; false when out of memory. */
static bool exchange_begin(conn *c)
{
    if (!c->ex)
        c->ex = calloc(1, sizeof *c->ex);
    return c->ex != NULL;
}

/* The request is over: its exchange goes. */
static void exchange_end(conn *c)
{
    if (c->ex) {
        api_exchange_free(c->ex);
        free(c->ex);
        c->ex = NULL;
    }
}

/* ---- closing ------------------------------------------------------------------------------ */

static void close_stream(conn *c)
{
    if (c->stream) {
        c->stream->ops->close(c->stream); /* no wake or abort follows */
        c->stream = NULL;
        atomic_fetch_sub(&c->loop->h->streams, 1);
    }
}

/* The answer went out whole, or never will: it is no longer waited for at a stop. */
static void writing_done(conn *c)
{
    if (c->writing) {
        c->writing = false;
        atomic_fetch_sub(&c->loop->h->writing, 1);
    }
}

/* Close the socket at once; the connection is freed once nothing is in flight or queued. */
static void conn_close(conn *c)
{
    http_server *h = c->loop->h;
    writing_done(c);
    if (!c->closing) {
        c->closing = true;
        c->dead_next = c->loop->dead;
        c->loop->dead = c;
    }
    close_stream(c);
    if (c->fd >= 0) {
        /* out of the set first: a process forked meanwhile may hold the socket open */
        epoll_ctl(c->loop->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
        /* its place given back before the close: a client that sees the close and connects
         * again at once may be accepted by another loop, and must not find it still taken */
        admission_leave_lingerer(h->admission, (struct sockaddr *)&c->addr, &c->place);
        close(c->fd);
        c->fd = -1;
    }
    if (c->phase == PENDING && c->ex->long_lived && h->api->pipeline &&
        h->api->pipeline->unwait_task(h->api->pipeline->ctx, c->ex))
        c->phase = HEAD; /* a long poll taken back: no ready() comes */
}

/* The bytes sent on fd not yet acknowledged (its end counting one once shut); -1 when unknown. */
static int unacked_bytes(int fd)
{
    int n = 0;
    return ioctl(fd, SIOCOUTQ, &n) == 0 ? n : -1;
}

/*
 * Whether the client has acknowledged every byte of the answer sent on fd: nothing left in the
 * send queue, or only the end once it is sent (its sequence number counts in the queue, and a
 * client that has read everything may acknowledge it late, waiting to send its own). The state
 * is read first: an end sent after it is counted in the queue read after, and taken as a byte.
 */
static bool answer_acknowledged(int fd)
{
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    int ended = getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 &&
                ti.tcpi_state != TCP_ESTABLISHED && ti.tcpi_state != TCP_CLOSE_WAIT;
    int unacked = unacked_bytes(fd);
    return unacked >= 0 && unacked <= ended;
}

/*
 * A new connection of c's client, at a bound (its own or the one in all), takes the place of c,
 * which lingers (admission_give_way_fn; the accepting loop's thread, under admission's lock): c's
 * loop closes it at its next turn. c's answer went out whole and its end with it, and its client
 * came back on another connection: held, the place refused that one (429, or 503 at the bound in
 * all) until the client's close reached c's loop (after the client had read the end, and often
 * after its next connection came), or for the whole linger of a client that keeps its socket.
 * Only a connection whose answer the client has acknowledged whole gives way (false otherwise:
 * the next one is asked): a reset would drop the bytes still queued or in flight, and the client
 * of a 201 it never read may make its task again. c's socket stays open while the lock is held
 * (its close gives its place back under the lock first). The wake is pushed under the lock too,
 * so c, seen closing by its loop after this, is not freed before the wake is taken off the stack.
 */
static bool conn_give_way(admission_lingerer *place, void *ctx)
{
    (void)ctx;
    conn *c = (conn *)((char *)place - offsetof(conn, place));
    if (!answer_acknowledged(c->fd))
        return false;
    atomic_store(&c->give_way, true);
    conn_wake(c);
    return true;
}

/* Free a closed connection when nothing will touch it any more (the loop's turn is over: no
 * event of this turn names it); true when freed. */
static bool conn_reap(conn *c)
{
    if (!c->closing || c->phase == PENDING || c->yielded || atomic_load(&c->queued))
        return false;
    loop *l = c->loop;
    settle(l->h, c);
    if (c->prev)
        c->prev->next = c->next;
    else
        l->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    exchange_end(c);
    sbuf_free(&c->body);
    release_body(c);
    sbuf_free(&c->out);
    free(c->req);
    free(c->in);
    free(c);
    return true;
}

/* ---- writing ------------------------------------------------------------------------------ */

static const char *loop_date(loop *l)
{
    time_t now = time(NULL);
    if (now != l->date_s) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(l->date, sizeof l->date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        l->date_s = now;
    }
    return l->date;
}

/* Send what is left of out and the body; false when the socket failed. */
static bool flush(conn *c)
{
    while (c->out_off < c->out.len || c->body_off < c->body_out_len) {
        struct iovec iov[2];
        int n = 0;
        if (c->out_off < c->out.len)
            iov[n++] = (struct iovec){c->out.data + c->out_off, c->out.len - c->out_off};
        if (c->body_off < c->body_out_len)
            iov[n++] =
                (struct iovec){(char *)c->body_out + c->body_off, c->body_out_len - c->body_off};
        struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t sent = sendmsg(c->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (sent < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN || errno == EWOULDBLOCK; /* EPOLLOUT will follow */
        }
        c->io_ns = c->loop->now_ns;
        size_t s = (size_t)sent, head_left = c->out.len - c->out_off;
        if (s <= head_left) {
            c->out_off += s;
        } else {
            c->out_off = c->out.len;
            c->body_off += s - head_left;
        }
    }
    return true;
}

static bool flushed(const conn *c)
{
    return c->out_off == c->out.len && c->body_off == c->body_out_len;
}

/* Start a response head in c->out: status line, Date and, unless streamed, Content-Length. */
static void put_head(conn *c, const api_response *resp, const char *type, size_t length,
                     bool chunked)
{
    sbuf *o = &c->out;
    /* what of a 100 the socket had no room for yet goes first (answer_expect()) */
    size_t left = o->len - c->out_off;
    if (left && c->out_off)
        memmove(o->data, o->data + c->out_off, left);
    sbuf_truncate(o, left);
    c->out_off = 0;
    sbuf_puts(o, "HTTP/1.1 ");
    sbuf_int(o, resp->status);
    sbuf_putc(o, ' ');
    sbuf_puts(o, http_reason_phrase(resp->status));
    sbuf_puts(o, "\r\nDate: ");
    sbuf_puts(o, loop_date(c->loop));
    if (type) {
        sbuf_puts(o, "\r\nContent-Type: ");
        sbuf_puts(o, type);
    }
    for (int i = 0; i < resp->n_headers; i++) {
        if (strcasecmp(resp->headers[i].name, "Connection") == 0) {
            if (strcasecmp(resp->headers[i].value, "close") == 0)
                c->keep_alive = false;
            continue; /* written below, once */
        }
        sbuf_puts(o, "\r\n");
        sbuf_puts(o, resp->headers[i].name);
        sbuf_puts(o, ": ");
        sbuf_puts(o, resp->headers[i].value);
    }
    for (int i = 0; i < API_DEFAULT_HEADERS; i++) {
        const api_header *d = &API_DEFAULT_HEADER[i];
        if (api_has_header(resp, d->name))
            continue;
        sbuf_puts(o, "\r\n");
        sbuf_puts(o, d->name);
        sbuf_puts(o, ": ");
        sbuf_puts(o, d->value);
    }
    if (chunked) {
        sbuf_puts(o, "\r\nTransfer-Encoding: chunked");
    } else if (length != (size_t)-1) {
        sbuf_puts(o, "\r\nContent-Length: ");
        sbuf_int(o, (int64_t)length);
    }
    if (!c->keep_alive)
        sbuf_puts(o, "\r\nConnection: close");
    else if (!c->split || !c->req->http11)
        sbuf_puts(o, "\r\nConnection: keep-alive");
    sbuf_puts(o, "\r\n\r\n");
}

static void run(conn *c);
static bool move_input(conn *c, size_t cap);
static size_t request_bytes(const conn *c);

/*
 * The request's body is read and answered: its memory goes with its share of max_body_memory,
 * not when the connection next reads a head, for an event stream keeps the connection for as
 * long as it runs, and a slow reader's answer for up to the idle timeout at every byte. The bytes
 * after a Content-Length body move up to the head, and a buffer grown past keep shrinks to what
 * is left (IN_KEEP for an answer, after which the connection reads on; IN_FIRST for a stream,
 * which reads nothing more while it runs); a chunked body's decoded bytes go.
 */
static void drop_body(conn *c, size_t keep)
{
    sbuf_free(&c->body);
    if (c->split && !c->chunked && c->body_len) {
        size_t at = c->req->len, end = request_bytes(c);
        memmove(c->in + at, c->in + end, c->in_len - end);
        c->in_len -= end - at;
        c->body_len = 0;
    }
    if (c->in_cap <= keep)
        return;
    size_t cap = IN_FIRST;
    while (cap < c->in_len)
        cap *= 2;
    if (cap < c->in_cap)
        move_input(c, cap); /* out of memory: kept until the connection reads its next head */
}

/* Send the exchange's response (ex.resp): a body, or the start of a stream. */
static void respond(conn *c)
{
    http_server *h = c->loop->h;
    /* counted before the request stops being active: a stop that sees no request active sees
     * its answer still being written, and waits for it */
    if (!c->ex->resp.stream && !c->writing) {
        c->writing = true;
        atomic_fetch_add(&h->writing, 1);
    }
    settle(h, c);
    /* the body's share goes back before the answer goes out: a client that has its answer may
     * send the next body at once, on another connection */
    release_body(c);
    api_response *resp = &c->ex->resp;
    drop_body(c, resp->stream ? IN_FIRST : IN_KEEP);
    bool http11 = c->split && c->req->http11;
    if (resp->stream) {
        c->stream = resp->stream;
        resp->stream = NULL;
        atomic_fetch_add(&h->streams, 1);
        if (!http11)
            c->keep_alive = false; /* the body ends with the connection */
        put_head(c, resp, resp->content_type, (size_t)-1, http11);
        if (sbuf_failed(&c->out)) {
            conn_close(c);
            return;
        }
        c->body_out = NULL;
        c->body_out_len = c->body_off = 0;
        c->stream_ended = false;
        c->stream->ops->attach(c->stream, stream_wake, stream_abort, c);
        c->phase = STREAM;
        return;
    }
    const char *body = resp->body;
    size_t len = resp->body_len;
    if (!body) {
        body = api_bodiless_text(resp);
        len = strlen(body);
    }
    bool no_body = resp->status == 204 || resp->status == 304;
    if (resp->streamed) /* HEAD of a stream: its head as a GET's, with no length */
        put_head(c, resp, resp->content_type, (size_t)-1, http11);
    else
        put_head(c, resp, no_body ? NULL : resp->content_type, no_body ? (size_t)-1 : len, false);
    if (sbuf_failed(&c->out)) {
        conn_close(c); /* no head to send */
        return;
    }
    c->body_out = no_body || c->head_only ? NULL : body;
    c->body_out_len = c->body_out ? len : 0;
    c->body_off = 0;
    c->phase = WRITING;
}

/* Where the request in c->in begins: past the empty lines a server ignores before a request line
 * (RFC 9112 section 2.2), such as a client's stray CRLF after a body; in_len when none came. */
static size_t head_start(const conn *c)
{
    size_t i = 0;
    while (i < c->in_len && (c->in[i] == '\r' || c->in[i] == '\n'))
        i++;
    return i;
}

/* Whether the connection holds the start of a request head: bytes other than those empty lines. */
static bool head_begun(const conn *c)
{
    return head_start(c) < c->in_len;
}

/* Fill ex.resp with {"detail": detail} and answer it before routing, counted once; why is
 * for the log. The connection closes after it unless keep. */
static void answer_unrouted(conn *c, int status, const char *detail, const char *why, bool keep)
{
    http_server *h = c->loop->h;
    if (!exchange_begin(c)) {
        conn_close(c); /* no memory for an answer */
        return;
    }
    api_response *resp = &c->ex->resp;
    api_response_free(resp);
    memset(resp, 0, sizeof *resp);
    api_error(resp, status, detail);
    if (status == 429 || status == 503)
        api_add_header(resp, "Retry-After", "1");
    if (!c->split) { /* a head refused before its split: a HEAD's answer has no body either */
        size_t at = head_start(c);
        c->head_only = c->in_len - at >= 5 && memcmp(c->in + at, "HEAD ", 5) == 0;
    }
    c->keep_alive = c->keep_alive && keep;
    if (!c->keep_alive && !c->linger_ns)
        c->linger_ns = c->loop->now_ns; /* what the client still sends must not reset the answer */
    if (!c->counted) {
        c->counted = true;
        api_count_unrouted(h->api, c->split ? c->req->method : NULL, status, c->start_ns, why);
    }
    respond(c);
}

/* ---- reading ------------------------------------------------------------------------------ */

/* Move the split head's pointers (every one of http_request_head's) from buffer from to buffer
 * to, which holds the same bytes. */
static void rebase(http_request_head *r, size_t n_args, const char *from, char *to)
{
    r->method = to + (r->method - from);
    r->path = to + (r->path - from);
    if (r->authority)
        r->authority = to + (r->authority - from);
    if (r->query)
        r->query = to + (r->query - from);
    for (size_t i = 0; i < r->n_fields + n_args; i++) {
        r->fields[i].name = to + (r->fields[i].name - from);
        if (r->fields[i].value)
            r->fields[i].value = to + (r->fields[i].value - from);
    }
}

/* Move the input buffer to one of cap bytes (at least in_len), the split head's pointers with it
 * (they point into the buffer); false when out of memory, the buffer kept as it was. */
static bool move_input(conn *c, size_t cap)
{
    char *in = malloc(cap);
    if (!in)
        return false;
    if (c->in_len)
        memcpy(in, c->in, c->in_len);
    if (c->split)
        rebase(c->req, c->n_args, c->in, in);
    free(c->in);
    c->in = in;
    c->in_cap = cap;
    return true;
}

/* Read what the socket holds into in until in holds want bytes (a read takes what the buffer has
 * room for, which may be more) or the socket is drained; false on EOF, a failure, or out of
 * memory (c->oom). */
static bool fill(conn *c, size_t want)
{
    if (!c->readable)
        return true;
    if (want > c->in_cap) {
        size_t cap = c->in_cap ? c->in_cap : IN_FIRST;
        while (cap < want)
            cap *= 2;
        if (!move_input(c, cap)) {
            c->oom = true;
            return false;
        }
    }
    while (c->in_len < want) {
        size_t room = c->in_cap - c->in_len;
        ssize_t n = recv(c->fd, c->in + c->in_len, room, MSG_DONTWAIT);
        if (n > 0) {
            c->in_len += (size_t)n;
            c->io_ns = c->loop->now_ns;
            if ((size_t)n < room) {
                c->readable = false; /* drained: the next bytes bring a new edge */
                return true;
            }
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            c->readable = false;
            return true;
        }
        c->readable = false;
        c->peer_done = true;
        return false;
    }
    return true;
}

/* The bytes of in that are the current request's (its head and a Content-Length body; a chunked
 * body's raw bytes left in as they were decoded). */
static size_t request_bytes(const conn *c)
{
    size_t used = c->split ? c->req->len + (c->chunked ? 0 : c->body_len) : 0;
    return used < c->in_len ? used : c->in_len;
}

/* The request (its head and any body) is answered: drop its bytes, keep what follows. */
static void consume_request(conn *c)
{
    size_t used = request_bytes(c);
    memmove(c->in, c->in + used, c->in_len - used);
    c->in_len -= used;
    c->scan = (http_head_scan){0};
    c->split = false;
    c->start_ns = 0;
    c->chunked = false;
    c->body_len = 0;
    c->args_split = false;
    c->n_args = 0;
    c->counted = false;
    c->head_only = false;
    sbuf_free(&c->body);
    if (c->in_cap > IN_KEEP && c->in_len <= IN_FIRST) /* a large body's room goes back */
        move_input(c, IN_FIRST);                      /* out of memory: kept */
}

static const char *lookup_query(void *ctx, const char *name)
{
    conn *c = ctx;
    http_request_head *r = c->req;
    if (!c->args_split) {
        c->args_split = true;
        c->n_args = http_query_split(r->query, r->fields + r->n_fields,
                                     HTTP_HEAD_MAX_RECORDS - r->n_fields);
    }
    for (size_t i = c->n_args; i-- > 0;) /* a repeated parameter: its last value, as FastAPI */
        if (strcmp(r->fields[r->n_fields + i].name, name) == 0)
            return r->fields[r->n_fields + i].value;
    return NULL;
}

static const char *lookup_header(void *ctx, const char *name)
{
    conn *c = ctx;
    if (c->req->authority && strcasecmp(name, "Host") == 0)
        return c->req->authority; /* an absolute target's, in place of the Host field's */
    return http_head_field(c->req, name);
}

static const char *lookup_header_at(void *ctx, const char *name, size_t i)
{
    conn *c = ctx;
    for (size_t k = 0; k < c->req->n_fields; k++)
        if (strcasecmp(c->req->fields[k].name, name) == 0 && i-- == 0)
            return c->req->fields[k].value;
    return NULL;
}

/* Two Content-Length fields that disagree. */
static bool lengths_conflict(const http_request_head *r)
{
    const char *first = NULL;
    for (size_t i = 0; i < r->n_fields; i++) {
        if (strcasecmp(r->fields[i].name, "Content-Length") != 0)
            continue;
        if (!first)
            first = r->fields[i].value;
        else if (strcmp(first, r->fields[i].value) != 0)
            return true;
    }
    return false;
}

/* Whether a header's comma-separated value lists token (any case). */
static bool lists(const char *value, const char *token)
{
    return value && http_list_has(value, value + strlen(value), token);
}

/* Whether any line of the head's field name lists token: a list field's lines are one list
 * (RFC 9110 §5.3). */
static bool fields_list(const http_request_head *r, const char *name, const char *token)
{
    for (size_t i = 0; i < r->n_fields; i++)
        if (strcasecmp(r->fields[i].name, name) == 0 && lists(r->fields[i].value, token))
            return true;
    return false;
}

/* Hand the complete request to the API. */
static void dispatch(conn *c)
{
    http_server *h = c->loop->h;
    http_request_head *r = c->req;
    /* Count first, then look at stopping: http_server_stop() does the reverse, so either it
     * waits for this request or this request sees the stop. */
    atomic_fetch_add(&h->active, 1);
    c->active = true;
    int before = atomic_fetch_add(&h->in_flight, 1);
    c->in_flight = true;
    if (atomic_load(&h->stopping)) {
        settle(h, c);
        answer_unrouted(c, 503, "The server is shutting down", "shutting down", false);
        return;
    }
    if (before >= h->max_in_flight) {
        settle(h, c);
        count_refused(h, "in_flight");
        /* admission refuses the request, not the connection */
        answer_unrouted(c, 503, "Too many requests in flight; retry later",
                        "too many requests in flight", true);
        return;
    }
    if (sbuf_failed(&c->body)) {
        settle(h, c);
        answer_unrouted(c, 503, "Out of memory reading the request",
                        "out of memory reading the body", false);
        return;
    }
    api_request req = {
        .method = r->method,
        .path = r->path,
        .query = lookup_query,
        .header = lookup_header,
        .header_at = lookup_header_at,
        .ctx = c,
        .body = c->chunked ? (c->body.data ? c->body.data : "") : c->in + r->len,
        .body_len = c->chunked ? c->body.len : c->body_len,
    };
    if (!exchange_begin(c)) {
        settle(h, c);
        conn_close(c); /* no memory for the request, nor for an answer */
        return;
    }
    c->ex->ready = exchange_ready;
    c->ex->user = c;
    if (api_begin(h->api, &req, c->ex) == API_PENDING) {
        if (c->ex->long_lived) /* a long poll: still active (a stop waits for its answer) */
            leave_in_flight(h, c);
        c->phase = PENDING;
        return;
    }
    respond(c);
}

/* Answer a request while its body may still be coming (reason: the metrics label), then
 * linger. */
static void refuse_body(conn *c, int status, const char *reason, const char *detail,
                        const char *why)
{
    count_refused(c->loop->h, reason);
    answer_unrouted(c, status, detail, why, false);
}

/* A request whose body the memory allowed for bodies cannot take now: 503, and the connection
 * closes, its body unread. */
static void refuse_body_memory(conn *c)
{
    refuse_body(c, 503, "body_memory",
                "The server holds as many request bodies as it may; retry shortly",
                "request bodies fill max_body_memory");
}

/*
 * A head the API refuses whatever its body (api_head_refused(): no access, no route, a method
 * the route does not take, a task id that is none, a trailing slash) is answered at once, its
 * body never asked for nor read: the connection ends after the answer, lingering so that a body
 * sent anyway cannot reset it (RFC 9110 §10.1.1). False when the API would take the head.
 */
static bool answer_refused_head(conn *c)
{
    http_request_head *r = c->req;
    api_request head = {.method = r->method,
                        .path = r->path,
                        .query = lookup_query,
                        .header = lookup_header,
                        .header_at = lookup_header_at,
                        .ctx = c};
    if (!api_head_refused(c->loop->h->api, &head))
        return false;
    c->chunked = false;
    c->body_len = 0;
    c->keep_alive = false;
    c->linger_ns = c->loop->now_ns;
    dispatch(c);
    return true;
}

/* Split the complete head in c->in into c->req and take from it what every answer needs (HEAD,
 * keep-alive); false when there is no memory for it: answered 503. */
static bool take_head(conn *c)
{
    if (!c->req && !(c->req = malloc(sizeof *c->req))) {
        answer_unrouted(c, 503, "Out of memory reading the request",
                        "out of memory reading the head", false);
        c->in_len = 0;
        return false;
    }
    http_request_head *r = c->req;
    http_head_split(c->in, c->in_len, r);
    url_unescape_in_place(r->path);
    c->split = true;
    c->head_only = strcmp(r->method, "HEAD") == 0; /* for every answer, refusals too */
    c->start_ns = c->loop->now_ns;
    c->keep_alive = r->http11;
    /* Connection is a list, and its lines one list (RFC 9110 §5.3, §7.6.1): "keep-alive" in one
     * and "close" in another close too. */
    if (fields_list(r, "Connection", "close"))
        c->keep_alive = false;
    else if (fields_list(r, "Connection", "keep-alive"))
        c->keep_alive = true;
    return true;
}

/* How the split head's body comes: chunked, or its Content-Length in c->body_len; false when the
 * head was answered instead (no Host, conflicting lengths, a length over the limit). */
static bool frame_body(conn *c)
{
    http_server *h = c->loop->h;
    http_request_head *r = c->req;
    if (r->http11 && !http_head_field(r, "Host")) {
        c->body_len = 0;
        answer_unrouted(c, 400, "HTTP/1.1 request without Host", "no Host", false);
        return false;
    }
    if (lengths_conflict(r)) {
        /* a proxy in front may have read the other one (request smuggling) */
        answer_unrouted(c, 400, "Conflicting Content-Length headers",
                        "conflicting Content-Length headers", false);
        return false;
    }
    const char *te = http_head_field(r, "Transfer-Encoding");
    const char *cl = http_head_field(r, "Content-Length");
    uint64_t length = 0;
    if (te) {
        c->chunked = true; /* the judge took only "chunked" */
        http_chunked_init(&c->dec);
        /* with a Content-Length too, or in HTTP/1.0 (where a front end may not know the
         * coding), the framing is in doubt: answered, then closed (RFC 9112 §6.1, §6.3) */
        c->keep_alive = c->keep_alive && !cl && r->http11;
    } else if (cl) {
        length = strtoull(cl, NULL, 10);
    }
    if (length > h->body_limit) {
        /* a head refused whatever its body gets that answer (a 401, a 404) rather than 413 */
        if (answer_refused_head(c))
            return false;
        c->body_len = 0;
        refuse_body(c, 413, "body_too_large", h->too_large, "request body over the limit");
        return false;
    }
    c->body_len = (size_t)length;
    return true;
}

/* A client waits to be told to send its body (Expect: 100-continue): told, unless the head is
 * refused whatever its body or the memory for bodies has no room for it; false when answered or
 * closed. */
static bool answer_expect(conn *c)
{
    http_server *h = c->loop->h;
    if (answer_refused_head(c))
        return false;
    /* A body the memory for bodies has no room for now is refused before the client is told to
     * send it, not once its first bytes come: a Content-Length body past what is left, a chunked
     * one (its length unknown) when nothing is. */
    size_t room = h->body_memory - atomic_load(&h->body_held);
    if (c->chunked ? room == 0 : c->body_len > room) {
        refuse_body_memory(c);
        return false;
    }
    /* Sent as an answer is (flush()): what of it a full send buffer does not take waits in out
     * for room, sent as the body is read (read_body()), and the answer follows it (put_head());
     * meanwhile the client may send its body when its own wait for the 100 ends (RFC 9110
     * §10.1.1). */
    sbuf_truncate(&c->out, 0);
    c->out_off = 0;
    sbuf_puts(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
    if (sbuf_failed(&c->out) || !flush(c)) {
        conn_close(c); /* no memory for it, or the socket failed */
        return false;
    }
    return true;
}

/* A head is complete and taken: split it and see how its body comes. */
static void begin_request(conn *c)
{
    if (!take_head(c) || !frame_body(c))
        return;
    http_request_head *r = c->req;
    bool body_due = c->chunked || c->in_len < r->len + c->body_len;
    if (body_due && r->http11 && fields_list(r, "Expect", "100-continue") && !answer_expect(c))
        return;
    c->phase = BODY;
}

/* Read the body as far as it has come; dispatch it once whole. */
static void read_body(conn *c)
{
    http_server *h = c->loop->h;
    http_request_head *r = c->req;
    if (!flush(c)) { /* a 100 waiting for room (answer_expect()) */
        conn_close(c);
        return;
    }
    for (;;) {
        if (c->loop->now_ns - c->start_ns > h->body_timeout_ns) {
            refuse_body(c, 408, "body_timeout", "Request body not received in time",
                        "request body not received in time");
            return;
        }
        if (!c->chunked) {
            size_t have = c->in_len - r->len; /* the body's bytes come so far, and what follows */
            if (have > c->body_len)
                have = c->body_len;
            if (have > c->held && !hold_body(c, have - c->held)) {
                refuse_body_memory(c);
                return;
            }
            if (c->in_len >= r->len + c->body_len) {
                dispatch(c);
                return;
            }
        } else {
            size_t at = r->len, used = 0;
            http_chunked_rc rc =
                http_chunked_feed(&c->dec, c->in + at, c->in_len - at, &used, &c->body);
            /* decoded: drop the raw bytes, keep any that follow the body */
            memmove(c->in + at, c->in + at + used, c->in_len - at - used);
            c->in_len -= used;
            if (c->body.len > h->body_limit) {
                sbuf_free(&c->body);
                refuse_body(c, 413, "body_too_large", h->too_large, "request body over the limit");
                return;
            }
            if (c->body.len > c->held && !hold_body(c, c->body.len - c->held)) {
                sbuf_free(&c->body);
                refuse_body_memory(c);
                return;
            }
            if (rc == HTTP_CHUNKED_BAD) {
                refuse_body(c, 400, "malformed", "Malformed chunked body",
                            "malformed chunked body");
                return;
            }
            if (rc == HTTP_CHUNKED_DONE) {
                dispatch(c);
                return;
            }
        }
        if (!c->readable) {
            if (c->peer_done)
                conn_close(c); /* the rest of the body can no longer come */
            return;
        }
        size_t want = c->chunked ? c->in_len + IN_FIRST : r->len + c->body_len;
        if (!fill(c, want)) {
            if (c->oom) {
                answer_unrouted(c, 503, "Out of memory reading the request",
                                "out of memory reading the body", false);
                return;
            }
            if (c->in_len < want && !c->chunked) {
                conn_close(c);
                return;
            }
        }
    }
}

/* Read and judge the next head; begin it once whole. */
static void read_head(conn *c)
{
    for (;;) {
        if (c->in_len > 0) {
            size_t n = c->in_len < HEAD_LIMIT ? c->in_len : HEAD_LIMIT;
            http_head_verdict v = http_head_judge_from(c->in, n, HEAD_LIMIT, &c->scan);
            if (v == HTTP_HEAD_OK) {
                begin_request(c);
                return;
            }
            if (v != HTTP_HEAD_MORE) {
                http_refusal rf = http_head_refusal(v, c->loop->h->too_large);
                count_refused(c->loop->h, rf.reason);
                answer_unrouted(c, rf.status, rf.detail, rf.detail, false);
                c->in_len = 0;
                return;
            }
        }
        if (!c->readable) {
            if (c->peer_done)
                conn_close(c); /* closed between requests, or within a head */
            return;
        }
        size_t want = c->in_len + IN_FIRST;
        if (!fill(c, want > HEAD_LIMIT ? HEAD_LIMIT : want)) {
            if (c->oom) {
                answer_unrouted(c, 503, "Out of memory reading the request",
                                "out of memory reading the head", false);
                c->in_len = 0;
                return;
            }
            size_t n = c->in_len < HEAD_LIMIT ? c->in_len : HEAD_LIMIT;
            if (n == 0 || http_head_judge_from(c->in, n, HEAD_LIMIT, &c->scan) == HTTP_HEAD_MORE) {
                conn_close(c);
                return;
            }
        }
    }
}

/* Read and drop what socket fd holds, counting it in *dropped: true when it is left open with
 * nothing more to read for now; false once its client closed, it failed, or LINGER_BYTES went. */
static bool drop_input(int fd, size_t *dropped)
{
    char sink[4096];
    for (;;) {
        ssize_t n = recv(fd, sink, sizeof sink, MSG_DONTWAIT);
        if (n > 0 && (*dropped += (size_t)n) < LINGER_BYTES)
            continue;
        if (n < 0 && errno == EINTR)
            continue;
        return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    }
}

/* Drop what a refused client still sends, until it stops or enough time or bytes went by. */
static void linger(conn *c)
{
    if (drop_input(c->fd, &c->dropped))
        c->readable = false;
    else
        conn_close(c);
}

/*
 * Whether closing c at once could reset its answer away: a socket closed with input unread, or
 * one that input reaches after the close, answers with a reset, which drops the answer's bytes
 * still queued or in flight. So when the client sent more than the request (bytes held, or the
 * socket readable), or has not yet acknowledged the whole answer (a large one, a slow reader),
 * the connection lingers instead.
 */
static bool close_may_reset(const conn *c)
{
    /* before the shutdown: any byte in the queue is the answer's */
    return c->readable || c->in_len > request_bytes(c) || unacked_bytes(c->fd) != 0;
}

/* The response went out: the next request, the linger, or the close. */
static void response_sent(conn *c)
{
    writing_done(c);
    exchange_end(c);
    c->rate_ns = 0;
    c->body_out = NULL;
    c->body_out_len = c->body_off = 0;
    sbuf_truncate(&c->out, 0);
    c->out_off = 0;
    /* a refusal lingers after its answer, and so does an answer that closes where a close at
     * once could reset it away; the moment runs from now, not from when the refusal was made
     * (its answer may have waited for room in the socket) */
    if (c->linger_ns || (!c->keep_alive && close_may_reset(c))) {
        c->linger_ns = c->loop->now_ns;
        /* the answer is out whole: from now the place may go to the client's next connection,
         * listed before the shutdown, as the close gives it back before the close, since the
         * client may come back as soon as it reads the end */
        admission_linger(c->loop->h->admission, (struct sockaddr *)&c->addr, &c->place);
        shutdown(c->fd, SHUT_WR);
        c->phase = LINGER;
        c->readable = true;
        return;
    }
    if (!c->keep_alive) {
        conn_close(c);
        return;
    }
    consume_request(c);
    c->idle_ns = c->loop->now_ns;
    c->served = true;
    c->phase = HEAD;
}

/* Send more of an event stream: what it has buffered, chunked on HTTP/1.1. */
static void stream_more(conn *c)
{
    bool http11 = c->split && c->req->http11;
    for (;;) {
        if (!flush(c)) {
            conn_close(c);
            return;
        }
        if (!flushed(c))
            return; /* EPOLLOUT comes */
        if (c->stream_ended) {
            response_sent(c);
            return;
        }
        sbuf_truncate(&c->out, 0);
        c->out_off = 0;
        char buf[STREAM_READ];
        long n = c->stream->ops->read(c->stream, buf, sizeof buf);
        if (n == 0)
            return; /* a wake comes when there is more */
        if (n == API_STREAM_END) {
            close_stream(c);
            c->stream_ended = true;
            if (http11)
                sbuf_puts(&c->out, "0\r\n\r\n");
            continue;
        }
        if (n < 0) { /* dropped: too slow a reader */
            conn_close(c);
            return;
        }
        if (http11) {
            char size[24];
            snprintf(size, sizeof size, "%lx\r\n", n);
            sbuf_puts(&c->out, size);
        }
        sbuf_append(&c->out, buf, (size_t)n);
        if (http11)
            sbuf_puts(&c->out, "\r\n");
        if (sbuf_failed(&c->out)) {
            conn_close(c);
            return;
        }
    }
}

/*
 * A long poll whose client closed its side (a client that gave up, or one that half-closes and
 * still reads): the wait ends, and the task is answered as it is now, so its waiter's slot comes
 * free at once rather than at the deadline. A client gone never reads the answer: the send fails
 * and the connection closes. False when the wait was woken already: its answer is on the way.
 */
static bool end_wait(conn *c)
{
    http_server *h = c->loop->h;
    const api_pipeline *p = h->api->pipeline;
    if (!p || !p->unwait_task(p->ctx, c->ex))
        return false;
    api_finish(h->api, c->ex);
    c->phase = WRITING;
    respond(c);
    return true;
}

/* Let the loop's other connections have their turn before c runs again (it has requests left). */
static void yield_turn(conn *c)
{
    loop *l = c->loop;
    if (c->yielded)
        return;
    c->yielded = true;
    c->yield_next = NULL;
    *l->yielded_end = c;
    l->yielded_end = &c->yield_next;
}

/* Run a connection as far as it can go without waiting, or until it has answered TURN_ANSWERS
 * requests: then it yields its turn. */
static void run(conn *c)
{
    int answered = 0;
    while (!c->closing) {
        enum phase before = c->phase;
        switch (c->phase) {
        case HEAD:
            read_head(c);
            break;
        case BODY:
            read_body(c);
            break;
        case PENDING:
            if (!c->peer_done || !c->ex->long_lived || !end_wait(c))
                return; /* the wake comes */
            break;      /* answered now: written below */
        case WRITING:
            if (!flush(c)) {
                conn_close(c);
                return;
            }
            if (!flushed(c))
                return; /* EPOLLOUT comes */
            response_sent(c);
            if (++answered == TURN_ANSWERS && c->phase == HEAD) {
                yield_turn(c);
                return;
            }
            break;
        case STREAM:
            if (c->peer_done) { /* an event stream's client closed its side: it has left */
                conn_close(c);
                return;
            }
            stream_more(c);
            if (c->phase == STREAM)
                return;
            break;
        case LINGER:
            linger(c);
            return;
        }
        if (c->phase == before && !c->closing)
            return; /* waiting for bytes */
    }
}

/* ---- the loop ----------------------------------------------------------------------------- */

/* A connection on the wake stack: new, or its write, wait or stream has news. */
static void woken(loop *l, conn *c)
{
    atomic_store(&c->queued, false);
    if (c->phase == PENDING && atomic_exchange(&c->done, false)) {
        api_finish(l->h->api, c->ex);
        c->phase = WRITING;
        if (c->closing) {
            settle(l->h, c); /* the client left while its write was in flight */
        } else {
            respond(c);
            run(c);
        }
    } else if (c->phase == STREAM && !c->closing) {
        run(c);
    } else if (c->phase == LINGER && !c->closing && atomic_load(&c->give_way)) {
        /* its place went to a new connection of its client; what came meanwhile is dropped
         * first, so that the close sends an end, not a reset */
        drop_input(c->fd, &c->dropped);
        conn_close(c);
    }
}

/* Run the connections that yielded their turn, each once more. */
static void run_yielded(loop *l)
{
    conn *c = l->yielded;
    l->yielded = NULL;
    l->yielded_end = &l->yielded;
    while (c) {
        conn *next = c->yield_next;
        c->yielded = false;
        if (!c->closing)
            run(c);
        c = next;
    }
}

static void drain_wakes(loop *l)
{
    uint64_t n;
    ssize_t r = read(l->wake_fd, &n, sizeof n);
    (void)r;
    conn *c = atomic_exchange(&l->wakes, NULL);
    conn *fifo = NULL; /* the stack reversed: first woken, first run */
    while (c) {
        conn *next = c->wake_next;
        c->wake_next = fifo;
        fifo = c;
        c = next;
    }
    while (fifo) {
        conn *next = fifo->wake_next;
        woken(l, fifo);
        fifo = next;
    }
}

/* Read and drop what refused connection r's client sent since the last look; close it once the
 * client closed, the socket failed, or it lingered long or sent much enough (or now: force). */
static void refused_drain(loop *l, refused *r, bool force)
{
    bool open = drop_input(r->fd, &r->dropped);
    if (force || !open || l->now_ns - r->since_ns > LINGER_NS) {
        close(r->fd);
        r->fd = -1;
        atomic_fetch_sub(&l->h->lingering, 1);
    }
}

/*
 * A slot for a connection about to be refused, taken before its answer goes out so that refusals
 * answered one after another are kept in that order: a free one, counted among the
 * REFUSED_LINGER_ALL at once (NULL when the loops keep them all already: more loops than that),
 * else this loop's oldest, whose connection gives way only once the new answer is out
 * (refused_keep()), not for one whose client is gone already.
 */
static refused *refused_take(loop *l)
{
    refused *oldest = NULL;
    for (int i = 0; i < l->refused_cap; i++) {
        refused *r = &l->refused[i];
        if (r->fd < 0) {
            if (atomic_fetch_add(&l->h->lingering, 1) < REFUSED_LINGER_ALL)
                return r;
            atomic_fetch_sub(&l->h->lingering, 1);
            return NULL;
        }
        if (!oldest || r->since_ns < oldest->since_ns)
            oldest = r;
    }
    return oldest;
}

/* Keep refused connection fd, its answer sent, in slot from refused_take(); the connection there
 * before gives way, its place in the count passed on. */
static void refused_keep(loop *l, refused *slot, int fd)
{
    if (slot->fd >= 0)
        close(slot->fd);
    *slot = (refused){.fd = fd, .since_ns = l->now_ns};
    refused_drain(l, slot, false); /* the request may be in already */
}

/* The server stops: a request still coming in, its head begun or its body on the way, is
 * answered 503 now rather than cut off when the loops stop. Run at every turn until then, for
 * the heads begun meanwhile (the stop waits for the writes in flight and the streams' ends). */
static void answer_unfinished(loop *l)
{
    bool first = !l->stop_seen;
    l->stop_seen = true;
    for (conn *c = l->conns, *next; c; c = next) {
        next = c->next;
        if (c->closing || !(c->phase == BODY || (c->phase == HEAD && head_begun(c))))
            continue;
        answer_unrouted(c, 503, "The server is shutting down", "shutting down", false);
        if (!c->split)
            c->in_len = 0; /* a head not whole: nothing of it is a request to keep */
        run(c);
    }
    if (first)
        atomic_fetch_add(&l->h->loops_stopping, 1);
}

/* The gauges of the connections open and the request bodies held, server-wide (the first
 * loop's sweep sets them: no lock on a request's way). */
static void set_gauges(http_server *h)
{
    metrics_set(h->metrics, "taskd_http_connections", "", admission_open(h->admission));
    metrics_set(h->metrics, "taskd_http_body_bytes", "", (double)atomic_load(&h->body_held));
}

/*
 * Whether c's client takes the answer waiting on it too slowly: less than min_send_rate bytes a
 * second on average since a sweep first found it waiting (now, at the first look), once the idle
 * timeout has passed since. A client that reads a segment now and then restarts the idle clock
 * each time, and held a large answer, and its memory, for hours. The bytes counted are those its
 * client acknowledged, not those handed to the kernel, whose buffers would credit it with as much
 * as they hold: the answer's bytes sent less what the send queue holds (an earlier answer's bytes
 * still queued count against it at both looks, and as progress once acknowledged).
 */
static bool reads_too_slowly(conn *c, int64_t now)
{
    int unacked = unacked_bytes(c->fd);
    int64_t acked = (int64_t)(c->out_off + c->body_off) - (unacked > 0 ? unacked : 0);
    if (!c->rate_ns) {
        c->rate_ns = now;
        c->rate_from = acked;
        return false;
    }
    int64_t waited = now - c->rate_ns;
    /* the bytes due in double: min_send_rate (up to 1 GiB) times the nanoseconds waited passes
     * int64_t once the wait passes about 9 s */
    return waited > c->loop->h->idle_timeout_ns &&
           (double)(acked - c->rate_from) <
               (double)c->loop->h->min_send_rate * (double)waited / 1e9;
}

/* Drop an answer its client does not take in time, counted (reason: the metrics label) and
 * logged as the requests refused by a deadline are (why); the connection is reset. */
static void drop_answer(conn *c, const char *reason, const char *why)
{
    count_refused(c->loop->h, reason);
    if (log_enabled(LOG_DEBUG)) {
        char sent[24], length[24];
        snprintf(sent, sizeof sent, "%zu", c->out_off + c->body_off);
        snprintf(length, sizeof length, "%zu", c->out.len + c->body_out_len);
        log_debug("answer dropped", "reason", why, "sent", sent, "length", length, NULL);
    }
    reset_at_close(c->fd);
    conn_close(c);
}

/* Deadlines: silent, slow and stuck connections, and the refused ones' linger; the gauges. */
static void sweep(loop *l, int64_t now)
{
    http_server *h = l->h;
    if (l == h->loops)
        set_gauges(h);
    for (int i = 0; i < l->refused_cap; i++)
        if (l->refused[i].fd >= 0)
            refused_drain(l, &l->refused[i], false);
    for (conn *c = l->conns, *next; c; c = next) {
        next = c->next;
        if (c->closing)
            continue;
        switch (c->phase) {
        case HEAD: {
            /* a first head is due the header timeout after the accept; a later one, the idle
             * timeout more after the answer before it, however the client trickles it */
            int64_t due = c->idle_ns + h->header_timeout_ns + (c->served ? h->idle_timeout_ns : 0);
            bool idle = c->served && now - c->io_ns > h->idle_timeout_ns;
            if (c->in_len > 0 && (now > due || idle)) {
                bool begun = head_begun(c); /* else empty lines alone (a stray CRLF) */
                if (begun || !c->served)    /* nothing came of a new connection: counted */
                    count_refused(h, "header_timeout");
                if (begun) { /* a head begun and not finished */
                    answer_unrouted(c, 408, "Request head not received in time",
                                    "request head not received in time", false);
                    c->in_len = 0;
                    run(c);
                } else { /* no request, no answer */
                    conn_close(c);
                }
            } else if (!c->served && now > due) {
                count_refused(h, "header_timeout"); /* nothing came: no answer */
                conn_close(c);
            } else if (idle) {
                conn_close(c);
            }
            break;
        }
        case BODY:
            if (now - c->start_ns > h->body_timeout_ns) {
                run(c);                                       /* read_body() answers the 408 */
            } else if (now - c->io_ns > h->idle_timeout_ns) { /* the body stalled */
                refuse_body(c, 408, "body_timeout", "Request body not received in time",
                            "request body stalled");
                run(c);
            }
            break;
        case WRITING:
            if (now - c->io_ns > h->idle_timeout_ns)
                drop_answer(c, "send_timeout", "its client does not read it");
            else if (reads_too_slowly(c, now))
                drop_answer(c, "send_rate", "its client reads it too slowly");
            break;
        case LINGER:
            if (now - c->linger_ns > LINGER_NS)
                conn_close(c);
            break;
        case PENDING:
        case STREAM:
            break;
        }
    }
}

/* Free the closed connections nothing will touch any more; keep the others listed. */
static void reap(loop *l)
{
    conn *keep = NULL;
    for (conn *c = l->dead, *next; c; c = next) {
        next = c->dead_next;
        if (!conn_reap(c)) {
            c->dead_next = keep;
            keep = c;
        }
    }
    l->dead = keep;
}

/* ---- accepting ---------------------------------------------------------------------------- */

static char accept_tag; /* the listening socket's events carry its address */

/* Put the listening socket in l's set, or take it out (out of descriptors, for a moment). */
static void set_accepting(loop *l, bool on)
{
    if (on == l->accepting)
        return;
    if (on) {
        struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = &accept_tag};
        if (epoll_ctl(l->epoll_fd, EPOLL_CTL_ADD, l->h->listen_fd, &ev) != 0)
            return; /* tried again at the next sweep */
    } else {
        epoll_ctl(l->epoll_fd, EPOLL_CTL_DEL, l->h->listen_fd, NULL);
        l->accept_resume_ns = l->now_ns + ACCEPT_PAUSE_NS;
    }
    l->accepting = on;
}

/* Refuse a connection just accepted: a whole JSON answer straight to its socket, then the
 * linger in a slot of refused_take(). */
static void refuse_at_accept(loop *l, int fd, int status, const char *reason, const char *detail)
{
    http_server *h = l->h;
    api_count_unrouted(h->api, NULL, status, 0, detail);
    count_refused(h, reason);
    char body[128], msg[512];
    int blen = snprintf(body, sizeof body, "{\"detail\":\"%s\"}", detail); /* no escaping needed */
    const api_header *d = API_DEFAULT_HEADER;
    _Static_assert(API_DEFAULT_HEADERS == 2, "every default header written below");
    int n = snprintf(msg, sizeof msg,
                     "HTTP/1.1 %d %s\r\nDate: %s\r\nConnection: close\r\n%s%s: %s\r\n%s: %s\r\n"
                     "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                     status, http_reason_phrase(status), loop_date(l),
                     status == 429 || status == 503 ? "Retry-After: 1\r\n" : "", d[0].name,
                     d[0].value, d[1].name, d[1].value, blen, body);
    refused *slot = refused_take(l);
    if (blen > 0 && (size_t)blen < sizeof body && n > 0 && (size_t)n < sizeof msg) {
        ssize_t sent = send(fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (sent == n && shutdown(fd, SHUT_WR) == 0 && slot) {
            refused_keep(l, slot, fd);
            return;
        }
    }
    if (slot && slot->fd < 0) /* a free slot's count, given back */
        atomic_fetch_sub(&h->lingering, 1);
    close(fd); /* no slot kept for it, a client gone already, or one not reading */
}

/* Take a connection just accepted (and admitted) into l: its set, its list, its first read. */
static void conn_open(loop *l, int fd, const struct sockaddr_storage *addr)
{
    http_server *h = l->h;
    conn *c = calloc(1, sizeof *c);
    if (!c) {
        admission_leave(h->admission, (const struct sockaddr *)addr);
        refuse_at_accept(l, fd, 503, "out_of_memory", "Out of memory");
        return;
    }
    int on = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    c->loop = l;
    c->fd = fd;
    c->addr = *addr;
    c->phase = HEAD;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c};
    if (epoll_ctl(l->epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        /* past the epoll watch limit (ENOSPC) or out of kernel memory: refused like a bound */
        bool nomem = errno == ENOMEM;
        admission_leave(h->admission, (const struct sockaddr *)addr);
        free(c);
        refuse_at_accept(l, fd, 503, nomem ? "out_of_memory" : "connections",
                         nomem ? "Out of memory" : "Too many connections");
        return;
    }
    c->next = l->conns;
    if (l->conns)
        l->conns->prev = c;
    l->conns = c;
    c->readable = true; /* the head is often in already */
    c->idle_ns = c->io_ns = l->now_ns;
    run(c);
}

/* The listening socket has connections waiting: accept some, within the bounds. */
static void accept_some(loop *l)
{
    http_server *h = l->h;
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        struct sockaddr_storage addr;
        socklen_t len = sizeof addr;
        int fd =
            accept4(h->listen_fd, (struct sockaddr *)&addr, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* out of descriptors: the backlog waits until some close */
                log_warn("cannot accept a connection", "component", "http", "error",
                         strerror(errno), NULL);
                set_accepting(l, false);
            }
            return; /* EAGAIN (another loop took it), or the client is already gone */
        }
        admission_verdict v = admission_enter(h->admission, (struct sockaddr *)&addr);
        if (v == ADMISSION_OK)
            conn_open(l, fd, &addr);
        else if (v == ADMISSION_CLIENT_FULL)
            refuse_at_accept(l, fd, 429, admission_reason(v),
                             "Too many connections from this client");
        else
            refuse_at_accept(l, fd, 503, admission_reason(v),
                             v == ADMISSION_FULL ? "Too many connections" : "Out of memory");
    }
}

static void *loop_main(void *arg)
{
    loop *l = arg;
    struct epoll_event ev[EVENTS];
    while (!atomic_load(&l->stop)) {
        int n = epoll_wait(l->epoll_fd, ev, EVENTS, l->yielded ? 0 : (int)(SWEEP_NS / 1000000));
        l->now_ns = clock_mono_ns();
        for (int i = 0; i < n; i++) {
            conn *c = ev[i].data.ptr;
            if (!c) {
                drain_wakes(l);
                continue;
            }
            if (ev[i].data.ptr == &accept_tag) {
                accept_some(l);
                continue;
            }
            if (c->closing)
                continue;
            if (ev[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                c->readable = true;
            if (ev[i].events & (EPOLLRDHUP | EPOLLHUP))
                c->peer_done = true; /* what it sent is still read, then no more comes */
            if (ev[i].events & EPOLLERR)
                conn_close(c);
            else
                run(c);
        }
        run_yielded(l);
        if (atomic_load(&l->h->stopping))
            answer_unfinished(l);
        if (l->now_ns >= l->next_sweep_ns) {
            l->next_sweep_ns = l->now_ns + SWEEP_NS;
            sweep(l, l->now_ns);
            if (!l->accepting && l->now_ns >= l->accept_resume_ns)
                set_accepting(l, true);
        }
        if (l->dead)
            reap(l);
    }
    return NULL;
}

/* ---- starting ---------------------------------------------------------------------------- */

/* Resolve host:port into a socket address. */
static bool resolve(const http_options *o, struct sockaddr_storage *ss, socklen_t *len, char *err,
                    size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE},
                    *res = NULL;
    char port[8];
    snprintf(port, sizeof port, "%d", o->port);
    int rc = getaddrinfo(o->host && *o->host ? o->host : NULL, port, &hints, &res);
    if (rc != 0) {
        errbuf_set(err, errlen, "cannot resolve listen address %s: %s", o->host, gai_strerror(rc));
        return false;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return true;
}

/* Format the bound address of the listening socket. */
static void bound_address(http_server *h, int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
        snprintf(h->address, sizeof h->address, "unknown");
        return;
    }
    char host[INET6_ADDRSTRLEN];
    if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        snprintf(h->address, sizeof h->address, "[%s]:%u", host, ntohs(a->sin6_port));
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        snprintf(h->address, sizeof h->address, "%s:%u", host, ntohs(a->sin_port));
    }
}

/* A bound, listening, non-blocking socket; -1 on failure, with errno saying why. */
static int listen_on(const struct sockaddr_storage *ss, socklen_t len)
{
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (ss->ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
    if (bind(fd, (const struct sockaddr *)ss, len) != 0 || listen(fd, SOMAXCONN) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* The default bound on connections: what the open-file limit leaves after HTTP_FD_RESERVE and
 * the reserve asked for, taking no limit for 1,000,000 and one that cannot be read for 1024. */
static unsigned default_max_connections(unsigned reserve)
{
    struct rlimit rl;
    rlim_t n = 1024;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        n = rl.rlim_cur == RLIM_INFINITY ? 1000000 : rl.rlim_cur;
    rlim_t kept = (rlim_t)HTTP_FD_RESERVE + reserve;
    return n > kept + 16 ? (unsigned)(n - kept) : 16;
}

/* Stop the loops that run, close their connections, and free them. */
static void stop_loops(http_server *h)
{
    for (int i = 0; i < h->n_loops; i++) {
        loop *l = &h->loops[i];
        if (l->started) {
            atomic_store(&l->stop, true);
            loop_wake(l);
            pthread_join(l->thread, NULL);
        }
    }
    for (int i = 0; i < h->n_loops; i++) {
        loop *l = &h->loops[i];
        /* nothing is in flight once the server stops: wakes still queued are void */
        for (conn *c = atomic_exchange(&l->wakes, NULL), *next; c; c = next) {
            next = c->wake_next;
            atomic_store(&c->queued, false);
        }
        for (conn *c = l->conns; c; c = c->next)
            conn_close(c);
        for (int j = 0; j < l->refused_cap; j++)
            if (l->refused[j].fd >= 0)
                refused_drain(l, &l->refused[j], true);
        for (conn *c = l->dead; c; c = c->dead_next) {
            c->phase = HEAD;
            c->yielded = false; /* the loop runs no more turns */
        }
        reap(l);
        if (l->epoll_fd >= 0)
            close(l->epoll_fd);
        if (l->wake_fd >= 0)
            close(l->wake_fd);
    }
    free(h->loops);
}

static bool start_loops(http_server *h, int n, char *err, size_t errlen)
{
    h->loops = calloc((size_t)n, sizeof *h->loops);
    if (!h->loops) {
        errbuf_set(err, errlen, "out of memory");
        return false;
    }
    h->n_loops = n;
    int cap = REFUSED_LINGER_ALL / n;
    cap = cap < 1 ? 1 : cap > REFUSED_LINGER ? REFUSED_LINGER : cap;
    for (int i = 0; i < n; i++) {
        h->loops[i].epoll_fd = h->loops[i].wake_fd = -1;
        h->loops[i].yielded_end = &h->loops[i].yielded;
        h->loops[i].refused_cap = cap;
        for (int j = 0; j < REFUSED_LINGER; j++)
            h->loops[i].refused[j].fd = -1;
    }
    for (int i = 0; i < n; i++) {
        loop *l = &h->loops[i];
        l->h = h;
        l->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        l->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
        if (l->epoll_fd < 0 || l->wake_fd < 0 ||
            epoll_ctl(l->epoll_fd, EPOLL_CTL_ADD, l->wake_fd, &ev) != 0) {
            errbuf_set(err, errlen, "cannot start the HTTP event loops: %s", strerror(errno));
            return false;
        }
        set_accepting(l, true);
        if (!l->accepting || pthread_create(&l->thread, NULL, loop_main, l) != 0) {
            errbuf_set(err, errlen, "cannot start the HTTP event loops: %s", strerror(errno));
            return false;
        }
        l->started = true;
        pthread_setname_np(l->thread, "http-loop");
    }
    return true;
}

http_server *http_server_start(const http_options *o, api *a, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    if (!resolve(o, &ss, &sslen, err, errlen))
        return NULL;
    http_server *h = calloc(1, sizeof *h);
    if (!h) {
        errbuf_set(err, errlen, "out of memory");
        return NULL;
    }
    h->api = a;
    h->metrics = a ? a->telemetry.metrics : NULL;
    h->body_limit = o->body_limit;
    api_body_too_large_detail(h->too_large, sizeof h->too_large, h->body_limit);
    h->body_timeout_ns = (int64_t)(o->body_timeout_s ? o->body_timeout_s : 60) * 1000000000LL;
    unsigned idle_timeout_s = o->timeout_s ? o->timeout_s : 30u;
    unsigned header_timeout_s = o->header_timeout_s ? o->header_timeout_s : 10;
    h->idle_timeout_ns = (int64_t)idle_timeout_s * 1000000000LL;
    h->header_timeout_ns = (int64_t)header_timeout_s * 1000000000LL;
    h->min_send_rate = o->min_send_rate ? o->min_send_rate : 1024;
    h->max_in_flight = (int)(o->max_in_flight ? o->max_in_flight : 1024);
    h->body_memory = o->max_body_memory ? o->max_body_memory : (size_t)256 * 1024 * 1024;
    if (h->body_memory < h->body_limit)
        h->body_memory = h->body_limit; /* one body of the largest size always fits */
    unsigned room = default_max_connections(o->fd_reserve);
    unsigned max_conns = o->max_connections ? o->max_connections : room;
    if (max_conns > room) { /* the operator's to choose, but not silently */
        char asked[16], left[16];
        snprintf(asked, sizeof asked, "%u", max_conns);
        snprintf(left, sizeof left, "%u", room);
        log_warn("max_connections is more than the open-file limit leaves: past the limit, new "
                 "connections wait unaccepted instead of getting 503; raise the limit (ulimit -n) "
                 "or lower max_connections",
                 "max_connections", asked, "room", left, NULL);
    }
    unsigned per_client = o->max_per_client ? o->max_per_client : max_conns / 4;
    if (!o->max_per_client && per_client > 1024)
        per_client = 1024;
    if (per_client == 0)
        per_client = 1;
    metrics_declare(h->metrics, "taskd_http_refused_total",
                    "Connections and requests refused, and answers dropped, by a bound or a "
                    "deadline, by reason.",
                    METRIC_COUNTER, NULL, 0);
    metrics_declare(h->metrics, "taskd_http_connections", "HTTP connections open now.",
                    METRIC_GAUGE, NULL, 0);
    metrics_declare(h->metrics, "taskd_http_body_bytes",
                    "Bytes of request bodies held now, every connection together "
                    "(bounded by max_body_memory).",
                    METRIC_GAUGE, NULL, 0);
    h->admission = admission_new(max_conns, per_client, o->ipv6_prefix ? o->ipv6_prefix : 64);
    if (!h->admission) {
        errbuf_set(err, errlen, "cannot set up the connection bounds: %s", strerror(errno));
        free(h);
        return NULL;
    }
    admission_set_give_way(h->admission, conn_give_way, NULL);
    set_gauges(h); /* both 0, shown from the start */
    h->listen_fd = listen_on(&ss, sslen);
    if (h->listen_fd < 0) {
        errbuf_set(err, errlen, "cannot listen on %s:%d: %s", o->host, o->port, strerror(errno));
        admission_free(h->admission);
        free(h);
        return NULL;
    }
    bound_address(h, h->listen_fd);
    if (!start_loops(h, o->threads > 0 ? o->threads : 1, err, errlen)) {
        stop_loops(h);
        close(h->listen_fd);
        admission_free(h->admission);
        free(h);
        return NULL;
    }
    return h;
}

const char *http_server_address(const http_server *h)
{
    return h->address;
}

int http_server_refusals_kept(http_server *h)
{
    return atomic_load(&h->lingering);
}

void http_server_stop(http_server *h)
{
    if (!h)
        return;
    /* Answer new requests with 503, and those still coming in (answer_unfinished()); let parked
     * writes come back and answer, then stop. */
    atomic_store(&h->stopping, true);
    for (int i = 0; i < h->n_loops; i++)
        loop_wake(&h->loops[i]);
    while (atomic_load(&h->loops_stopping) < h->n_loops)
        usleep(1000);
    while (atomic_load(&h->active) > 0)
        usleep(1000); /* writes finish: the store is still running */
    /* Event streams were told to end (pipeline_end_live()): give their last bytes, and the
     * answers still being written, up to 2 s to go out, so a client sees the stream end and its
     * answer whole rather than cut (one that does not read is cut). */
    for (int ms = 0; ms < 2000 && (atomic_load(&h->streams) > 0 || atomic_load(&h->writing) > 0);
         ms++)
        usleep(1000);
    stop_loops(h); /* and every connection with them */
    close(h->listen_fd);
    admission_free(h->admission); /* after the last connection's admission_leave() */
    free(h);
}
