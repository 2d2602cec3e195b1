/*
 * The in-test HTTP/1.1 server of http_stub.h. One thread accepts on a
 * non-blocking listening socket; each connection gets a thread that reads a
 * request (header block up to the blank line, then Content-Length bytes of
 * body), records it, picks its answer under the server's lock (script, then
 * handler) and acts on it, until the peer closes. Stopping writes to a pipe
 * that every thread polls along with its socket, so no thread sleeps through
 * it; http_stub_stop then joins them all and frees what was recorded.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "support/http_stub.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HEAD_MAX (1024 * 1024) /* a longer header block drops the connection */
#define READ_MIN 65536         /* room made before each read */

struct http_stub {
    int lfd, port;
    int wake[2]; /* written once to stop: readable from then on */
    pthread_t accept_thread;
    pthread_mutex_t mu;
    http_stub_reply *script;
    size_t script_len;
    http_stub_reply after;
    bool has_after;
    const char *headers;
    http_stub_handler *handler;
    void *handler_arg;
    bool no_continue;
    /* under mu */
    http_stub_request **reqs;
    size_t n_reqs, cap_reqs;
    int accepts;
    /* the accept thread's until it is joined */
    pthread_t *conns;
    size_t n_conns, cap_conns;
};

/* One connection, owned by its thread. */
typedef struct conn {
    http_stub *s;
    int fd;
    char *buf;
    size_t len, cap;
} conn;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for fd to be readable (or closed); false once the server is stopping. */
static bool wait_readable(http_stub *s, int fd)
{
    struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = s->wake[0], .events = POLLIN}};
    for (;;) {
        int r = poll(p, 2, -1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 || p[1].revents)
            return false;
        if (p[0].revents)
            return true;
    }
}

/* Sleep ms milliseconds; false when the server started stopping meanwhile. */
static bool pause_ms(http_stub *s, int ms)
{
    int64_t until = mono_ms() + ms;
    for (;;) {
        int64_t left = until - mono_ms();
        if (left <= 0)
            return true;
        struct pollfd p = {.fd = s->wake[0], .events = POLLIN};
        int r = poll(&p, 1, (int)left);
        if (r > 0 || (r < 0 && errno != EINTR))
            return false;
    }
}

static bool send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* Read what the peer sent next; false when it closed, on an error, or when the server stops. */
static bool read_more(conn *c)
{
    if (c->cap - c->len < READ_MIN) {
        size_t cap = c->cap * 2 > c->len + READ_MIN ? c->cap * 2 : c->len + READ_MIN;
        char *p = realloc(c->buf, cap);
        if (!p)
            return false;
        c->buf = p;
        c->cap = cap;
    }
    if (!wait_readable(c->s, c->fd))
        return false;
    ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
    if (n < 0 && errno == EINTR)
        return true;
    if (n <= 0)
        return false;
    c->len += (size_t)n;
    return true;
}

static void request_free(http_stub_request *rq)
{
    if (!rq)
        return;
    free(rq->line);
    free(rq->head);
    free(rq->body);
    free(rq);
}

/* The next request on c, taken off its buffer; NULL when the connection is done. */
static http_stub_request *read_request(conn *c)
{
    char *end;
    while (!(end = c->len ? memmem(c->buf, c->len, "\r\n\r\n", 4) : NULL))
        if (c->len > HEAD_MAX || !read_more(c))
            return NULL;
    size_t head_len = (size_t)(end - c->buf) + 4;
    const char *eol = memmem(c->buf, head_len, "\r\n", 2);
    const char *lines = eol + 2;
    http_stub_request *rq = calloc(1, sizeof *rq);
    if (!rq)
        return NULL;
    rq->line = strndup(c->buf, (size_t)(eol - c->buf));
    rq->head = strndup(lines, (size_t)(end + 2 - lines));
    if (!rq->line || !rq->head) {
        request_free(rq);
        return NULL;
    }
    if (sscanf(rq->line, "%15s %511s", rq->method, rq->path) != 2)
        rq->method[0] = rq->path[0] = '\0';
    rq->head_at_ms = mono_ms();

    const char *v;
    size_t vl;
    size_t body_len = 0;
    if (http_stub_header_find(rq, "Content-Length", &v, &vl))
        body_len = (size_t)strtoull(v, NULL, 10);
    bool expect = http_stub_header_find(rq, "Expect", &v, &vl);
    while (expect && vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
        vl--;
    if (expect && vl == 12 && strncasecmp(v, "100-continue", 12) == 0 && !c->s->no_continue &&
        !send_all(c->fd, "HTTP/1.1 100 Continue\r\n\r\n", 25)) {
        request_free(rq);
        return NULL;
    }
    rq->body_at_ms = c->len > head_len || body_len == 0 ? rq->head_at_ms : 0;
    while (c->len < head_len + body_len) {
        if (!read_more(c)) {
            request_free(rq);
            return NULL;
        }
        if (!rq->body_at_ms && c->len > head_len)
            rq->body_at_ms = mono_ms();
    }
    rq->body = malloc(body_len + 1);
    if (!rq->body) {
        request_free(rq);
        return NULL;
    }
    memcpy(rq->body, c->buf + head_len, body_len);
    rq->body[body_len] = '\0';
    rq->body_len = body_len;
    rq->at_ms = mono_ms();
    c->len -= head_len + body_len;
    memmove(c->buf, c->buf + head_len + body_len, c->len);
    return rq;
}

/* The scripted answer to request index (under s->mu). */
static http_stub_reply scripted(const http_stub *s, size_t index)
{
    http_stub_reply r = {.status = 200};
    if (index < s->script_len)
        r = s->script[index];
    else if (s->has_after)
        r = s->after;
    else if (s->script_len > 0)
        r = s->script[s->script_len - 1];
    r.free_body = false; /* a script's strings belong to the test */
    return r;
}

/* Record rq (taking it) and decide its answer; false when it could not be recorded. */
static bool record(http_stub *s, http_stub_request *rq, http_stub_reply *reply)
{
    pthread_mutex_lock(&s->mu);
    if (s->n_reqs == s->cap_reqs) {
        size_t cap = s->cap_reqs ? s->cap_reqs * 2 : 16;
        http_stub_request **p = realloc(s->reqs, cap * sizeof *p);
        if (!p) {
            pthread_mutex_unlock(&s->mu);
            request_free(rq);
            return false;
        }
        s->reqs = p;
        s->cap_reqs = cap;
    }
    size_t index = s->n_reqs;
    s->reqs[s->n_reqs++] = rq;
    *reply = scripted(s, index);
    if (s->handler)
        s->handler(s->handler_arg, rq, index, reply);
    pthread_mutex_unlock(&s->mu);
    return true;
}

static bool send_reply(const http_stub *s, int fd, const http_stub_reply *r)
{
    const char *body = r->body ? r->body : "";
    size_t body_len = r->body_len ? r->body_len : strlen(body);
    const char *fmt = "HTTP/1.1 %d Stub\r\nContent-Length: %zu\r\n%s%s\r\n";
    const char *common = s->headers ? s->headers : "", *own = r->headers ? r->headers : "";
    int n = snprintf(NULL, 0, fmt, r->status, body_len, common, own);
    char *head = n > 0 ? malloc((size_t)n + 1) : NULL;
    if (!head)
        return false;
    snprintf(head, (size_t)n + 1, fmt, r->status, body_len, common, own);
    bool sent = send_all(fd, head, (size_t)n) && send_all(fd, body, body_len);
    free(head);
    return sent;
}

static void *conn_main(void *arg)
{
    conn *c = arg;
    http_stub *s = c->s;
    for (;;) {
        http_stub_request *rq = read_request(c);
        http_stub_reply reply;
        if (!rq || !record(s, rq, &reply))
            break;
        bool keep = reply.delay_ms <= 0 || pause_ms(s, reply.delay_ms);
        if (keep && reply.action == HTTP_STUB_CLOSE)
            keep = false;
        else if (keep && reply.action == HTTP_STUB_ANSWER)
            keep = send_reply(s, c->fd, &reply);
        /* HTTP_STUB_HANG: no answer; the next read ends when the client gives up */
        if (reply.free_body)
            free((void *)reply.body);
        if (!keep)
            break;
    }
    close(c->fd);
    free(c->buf);
    free(c);
    return NULL;
}

static void *accept_main(void *arg)
{
    http_stub *s = arg;
    while (wait_readable(s, s->lfd)) {
        int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        /* an answer's head and body go out as two sends: without this the body waits for the
         * client's delayed ACK of the head, about 40 ms a request on a kept-alive connection */
        int on = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
        pthread_mutex_lock(&s->mu);
        s->accepts++;
        pthread_mutex_unlock(&s->mu);
        if (s->n_conns == s->cap_conns) {
            size_t cap = s->cap_conns ? s->cap_conns * 2 : 8;
            pthread_t *p = realloc(s->conns, cap * sizeof *p);
            if (!p) {
                close(fd);
                continue;
            }
            s->conns = p;
            s->cap_conns = cap;
        }
        conn *c = calloc(1, sizeof *c);
        if (c) {
            c->s = s;
            c->fd = fd;
        }
        if (!c || pthread_create(&s->conns[s->n_conns], NULL, conn_main, c) != 0) {
            free(c);
            close(fd);
            continue;
        }
        s->n_conns++;
    }
    return NULL;
}

/* A TCP socket bound to 127.0.0.1 on a free port, put in *port. */
static int loopback_socket(int flags, int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | flags, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t alen = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

http_stub *http_stub_start(const http_stub_options *o)
{
    static const http_stub_options none = {0};
    if (!o)
        o = &none;
    http_stub *s = calloc(1, sizeof *s);
    assert_non_null(s);
    if (o->script_len > 0) {
        s->script = malloc(o->script_len * sizeof *s->script);
        assert_non_null(s->script);
        memcpy(s->script, o->script, o->script_len * sizeof *s->script);
        s->script_len = o->script_len;
    }
    if (o->after) {
        s->after = *o->after;
        s->has_after = true;
    }
    s->headers = o->headers;
    s->handler = o->handler;
    s->handler_arg = o->handler_arg;
    s->no_continue = o->no_continue;
    assert_int_equal(pthread_mutex_init(&s->mu, NULL), 0);
    assert_int_equal(pipe2(s->wake, O_CLOEXEC), 0);
    s->lfd = loopback_socket(SOCK_NONBLOCK, &s->port);
    assert_int_equal(listen(s->lfd, 16), 0);
    assert_int_equal(pthread_create(&s->accept_thread, NULL, accept_main, s), 0);
    return s;
}

void http_stub_stop(http_stub *s)
{
    if (!s)
        return;
    ssize_t w = write(s->wake[1], "x", 1);
    (void)w; /* a pipe just made, never read: the byte fits */
    pthread_join(s->accept_thread, NULL);
    for (size_t i = 0; i < s->n_conns; i++)
        pthread_join(s->conns[i], NULL);
    close(s->lfd);
    close(s->wake[0]);
    close(s->wake[1]);
    for (size_t i = 0; i < s->n_reqs; i++)
        request_free(s->reqs[i]);
    free(s->reqs);
    free(s->conns);
    free(s->script);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

int http_stub_port(const http_stub *s)
{
    return s->port;
}

size_t http_stub_count(http_stub *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->n_reqs;
    pthread_mutex_unlock(&s->mu);
    return n;
}

int http_stub_connections(http_stub *s)
{
    pthread_mutex_lock(&s->mu);
    int n = s->accepts;
    pthread_mutex_unlock(&s->mu);
    return n;
}

const http_stub_request *http_stub_request_at(http_stub *s, size_t i)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->n_reqs;
    const http_stub_request *rq = i < n ? s->reqs[i] : NULL;
    pthread_mutex_unlock(&s->mu);
    if (!rq)
        fail_msg("request %zu has not arrived (%zu so far)", i, n);
    return rq;
}

bool http_stub_header_find(const http_stub_request *rq, const char *name, const char **value,
                           size_t *len)
{
    size_t nl = strlen(name);
    for (const char *line = rq->head; line && *line;) {
        const char *eol = strstr(line, "\r\n");
        size_t ll = eol ? (size_t)(eol - line) : strlen(line);
        if (ll > nl && line[nl] == ':' && strncasecmp(line, name, nl) == 0) {
            const char *v = line + nl + 1, *end = line + ll;
            while (v < end && *v == ' ')
                v++;
            if (value)
                *value = v;
            if (len)
                *len = (size_t)(end - v);
            return true;
        }
        line = eol ? eol + 2 : NULL;
    }
    return false;
}

const char *http_stub_header(const http_stub_request *rq, const char *name, char *out,
                             size_t outlen)
{
    const char *v;
    size_t vl;
    if (!http_stub_header_find(rq, name, &v, &vl))
        return NULL;
    if (vl >= outlen)
        vl = outlen - 1;
    memcpy(out, v, vl);
    out[vl] = '\0';
    return out;
}

int http_stub_refusing_port(int *fd)
{
    int port;
    *fd = loopback_socket(0, &port);
    return port;
}
