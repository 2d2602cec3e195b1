/*
 * http_server — libmicrohttpd adapter for the API; see http_server.h.
 *
 * libmicrohttpd calls on_request() several times per request: once with the
 * headers, then once per chunk of body, then a last time with no data, when
 * the request is complete and the response is queued. A request_ctx carries
 * the body between those calls; on_completed() frees it.
 *
 * Writes do not hold a thread while they commit: api_begin() hands them to
 * the store and the connection is suspended. When the store reports back
 * (on its writer thread), write_ready() resumes the connection, and
 * libmicrohttpd calls on_request() once more to send the response. The
 * suspend/resume race is settled by one atomic state per request: whoever
 * comes second — the event loop after suspending, or the writer after the
 * commit — does the resume, so it always follows the suspend. A long poll
 * (GET /tasks/{id}?wait=) is parked the same way until the pipeline's
 * waiters call ready().
 *
 * A streamed body (GET /events) is a callback response whose reader copies
 * what the stream has buffered and, when nothing is, suspends the connection
 * until the stream's owner wakes it — the same state settles that race.
 *
 * Answers given before the API routes a request are counted and logged here,
 * as the API counts and logs the rest (taskd_http_requests_total, the DEBUG
 * "request" line), under route "unmatched": the ones on_request() gives
 * itself (a declared or read body over the limit, conflicting Content-Length
 * headers, shutting down), and the ones libmicrohttpd gives on its own (431
 * headers too large, 414, 400 malformed request or header line, 505, its own
 * 413/400 for a Content-Length it cannot parse). libmicrohttpd 0.9.75 tells
 * the application of those only through its error log — most come before any
 * callback that names the connection (the URI log and completion callbacks
 * run only once the request line parsed) — so on_mhd_log() recognises its
 * "Error processing request (HTTP response code is N ...)" message, which
 * every one of its own error answers goes through, exactly once. Their bodies
 * stay libmicrohttpd's HTML: 0.9.75 has no way to replace them. The front
 * (front.h) answers the same faults in JSON on a connection's first request,
 * before libmicrohttpd sees it, so only later requests on a kept-alive
 * connection can still get one of those HTML answers.
 *
 * Bounds: the front bounds connections (in all, per client) and the time to
 * each request head (a connection's first, which it reads itself, and the
 * later ones, which it watches: front_watch_*); on_request() bounds the time
 * from a head to the end of its body (body_timeout, checked as body bytes
 * arrive; a silent client meets the idle timeout) and the requests in flight
 * (admission, 503).
 */
#include "http_server.h"

#include "front.h"
#include "core/sbuf.h"
#include "core/urlcode.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/metrics.h"

#include <arpa/inet.h>
#include <stdatomic.h>
#include <unistd.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

/* The route label of answers given before routing: the API's label for unrouted requests. */
#define UNROUTED "unmatched"

/* libmicrohttpd's memory per connection; the front's head limit stays well inside it */
#define CONNECTION_MEMORY (32 * 1024)
#define HEAD_LIMIT        (16 * 1024)
/* A refused body is read and dropped this long (and this much) before the connection closes. */
#define LINGER_NS    (1000 * 1000000LL)
#define LINGER_BYTES (256 * 1024)

struct http_server {
    struct MHD_Daemon *daemon;
    api *api;
    metrics *metrics; /* the API's registry; NULL: nothing counted */
    front *front;
    size_t body_limit;
    char too_large[96]; /* the detail of every 413 */
    int64_t body_timeout_ns;
    int max_in_flight;
    atomic_int active;    /* requests inside api_begin() .. response, suspended ones included */
    atomic_int in_flight; /* the active ones but long polls: what admission bounds */
    atomic_int streams;   /* event streams not yet completed */
    atomic_bool stopping; /* no new requests are answered */
    char address[80];
};

enum write_state { WRITE_RUNNING, WRITE_SUSPENDED, WRITE_DONE };

typedef struct request_ctx {
    sbuf body;
    bool too_large;
    bool begun;         /* api_begin() has run */
    bool active;        /* counted in http_server.active */
    bool in_flight;     /* counted in http_server.in_flight */
    bool early;         /* answered before routing, and counted */
    int64_t start_ns;   /* CLOCK_MONOTONIC, when the headers were in */
    int64_t refused_ns; /* answered while its body was still coming (0: not) */
    size_t dropped;     /* body bytes dropped since */
    atomic_int state;   /* enum write_state, while a write is in flight or a stream is empty */
    struct MHD_Connection *conn;
    api_stream *stream; /* GET /events: the body, read as it fills */
    int fd;             /* the connection's socket, while streaming */
    http_server *server;
    api_exchange ex;
} request_ctx;

static const char *lookup_query(void *ctx, const char *name)
{
    return MHD_lookup_connection_value(ctx, MHD_GET_ARGUMENT_KIND, name);
}

static const char *lookup_header(void *ctx, const char *name)
{
    return MHD_lookup_connection_value(ctx, MHD_HEADER_KIND, name);
}

/* Queue r on c with resp's status, content type and headers; frees resp. */
static enum MHD_Result queue_response(struct MHD_Connection *c, api_response *resp,
                                      struct MHD_Response *r)
{
    if (resp->content_type)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, resp->content_type);
    for (int i = 0; i < resp->n_headers; i++)
        MHD_add_response_header(r, resp->headers[i].name, resp->headers[i].value);
    api_response_free(resp);
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)resp->status, r);
    MHD_destroy_response(r);
    return ret;
}

/* Queue resp on the connection; takes ownership of resp->body. */
static enum MHD_Result send_response(struct MHD_Connection *c, api_response *resp)
{
    struct MHD_Response *r;
    if (resp->body) {
        r = MHD_create_response_from_buffer(resp->body_len, resp->body, MHD_RESPMEM_MUST_FREE);
        if (r)
            resp->body = NULL;
    } else {
        const char *text = api_bodiless_text(resp);
        r = MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
    }
    if (!r) {
        api_response_free(resp);
        return MHD_NO;
    }
    return queue_response(c, resp, r);
}

/*
 * The method as a metrics label, as the API labels it: a static string from a short list, else
 * "other"; "unknown" when libmicrohttpd answered without telling us the method (NULL).
 */
static const char *method_label(const char *m)
{
    static const char *const methods[] = {"GET", "HEAD",   "POST",   "PATCH",
                                          "PUT", "DELETE", "OPTIONS"};
    if (!m)
        return "unknown";
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (strcmp(m, methods[i]) == 0)
            return methods[i];
    return "other";
}

/*
 * Count and log (DEBUG, as the API logs the requests it answers) one answer given before
 * routing. method NULL: unknown (libmicrohttpd answered before telling us); start_ns 0: the
 * duration is unknown; detail: why, for the log line.
 */
static void count_unrouted(http_server *h, const char *method, int status, int64_t start_ns,
                           const char *detail)
{
    const char *label = method_label(method);
    if (h->metrics) {
        char labels[120];
        snprintf(labels, sizeof labels, "route=\"" UNROUTED "\",method=\"%s\",code=\"%d\"", label,
                 status);
        metrics_add(h->metrics, "taskd_http_requests_total", labels, 1);
    }
    if (log_enabled(LOG_DEBUG)) {
        char code[16], ms[32];
        snprintf(code, sizeof code, "%d", status);
        snprintf(ms, sizeof ms, "%.3f", (double)(clock_mono_ns() - start_ns) / 1e6);
        log_debug("request", "method", label, "route", UNROUTED, "status", code, "detail",
                  detail ? detail : "", start_ns ? "duration_ms" : NULL, ms, NULL);
    }
}

/* Count one connection or request refused by a bound or deadline (reason: a short label). */
static void count_refused(http_server *h, const char *reason)
{
    if (h->metrics) {
        char labels[64];
        snprintf(labels, sizeof labels, "reason=\"%s\"", reason);
        metrics_add(h->metrics, "taskd_http_refused_total", labels, 1);
    }
}

/* Send an answer given before routing (takes resp's body), counting it once. */
static enum MHD_Result answer_unrouted(http_server *h, struct MHD_Connection *c, request_ctx *ctx,
                                       const char *method, api_response *resp, const char *detail)
{
    int status = resp->status;
    enum MHD_Result ret = send_response(c, resp);
    if (ret == MHD_YES && !ctx->early) {
        ctx->early = true;
        count_unrouted(h, method, status, ctx->start_ns, detail);
    }
    return ret;
}

static enum MHD_Result reject_too_large(http_server *h, struct MHD_Connection *c, request_ctx *ctx,
                                        const char *method)
{
    api_response resp = {0};
    api_body_too_large(&resp, h->body_limit);
    return answer_unrouted(h, c, ctx, method, &resp, "request body over the limit");
}

/*
 * Refuse a request while its body is still coming in. libmicrohttpd 0.9.75 takes no response
 * until it has read a body to its end, so the JSON answer goes straight to the socket — nothing
 * else is written on a connection while its body is read — and the sending side is shut. The
 * rest of the body is then read and dropped for a moment, so that the close does not reset the
 * connection under the answer before the client has read it; then on_request() closes it.
 */
static enum MHD_Result refuse_mid_body(http_server *h, struct MHD_Connection *c, request_ctx *ctx,
                                       const char *method, int status, const char *reason,
                                       const char *detail)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci)
        return MHD_NO;
    /* counted before the answer leaves: a client that reads it and then asks /metrics sees it */
    ctx->early = true;
    count_unrouted(h, method, status, ctx->start_ns, detail);
    count_refused(h, reason);
    front_send_error(ci->connect_fd, status, detail);
    shutdown(ci->connect_fd, SHUT_WR);
    MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, 1u); /* a silent client */
    ctx->refused_ns = clock_mono_ns();
    return MHD_YES;
}

/* The unescape callback: percent-decoding as url_unescape_in_place() does ("%00" stays). */
static size_t unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    return url_unescape_in_place(s);
}

/* The request no longer counts among those in flight (it waits for long, or is done). */
static void leave_in_flight(http_server *h, request_ctx *ctx)
{
    if (ctx->in_flight) {
        ctx->in_flight = false;
        atomic_fetch_sub(&h->in_flight, 1);
    }
}

/* The request no longer counts as active (answered, or its client left). */
static void settle(http_server *h, request_ctx *ctx)
{
    leave_in_flight(h, ctx);
    if (ctx->active) {
        ctx->active = false;
        atomic_fetch_sub(&h->active, 1);
    }
}

/* The store is done with a request's write (called on the writer thread). */
static void write_ready(api_exchange *ex)
{
    request_ctx *ctx = ex->user;
    if (atomic_exchange(&ctx->state, WRITE_DONE) == WRITE_SUSPENDED)
        MHD_resume_connection(ctx->conn);
}

/*
 * A streamed body (GET /events). libmicrohttpd calls stream_reader() when it
 * can send more; with nothing buffered the reader suspends the connection
 * (0.9.75 allows that from a content reader) and returns 0, and the stream's
 * owner calls stream_wake() once there is more. The race is settled as for
 * writes: whoever comes second resumes. A suspended connection is neither
 * timed out nor closed, so the wake always finds it.
 */
static void stream_wake(void *user)
{
    request_ctx *ctx = user;
    if (atomic_exchange(&ctx->state, WRITE_DONE) == WRITE_SUSPENDED)
        MHD_resume_connection(ctx->conn);
}

/* The owner drops a client that reads too slowly: shut its socket down, so libmicrohttpd sees
 * the connection fail and closes it (on_completed() follows, which closes the stream). */
static void stream_abort(void *user)
{
    request_ctx *ctx = user;
    if (ctx->fd >= 0)
        shutdown(ctx->fd, SHUT_RDWR);
}

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    request_ctx *ctx = cls;
    atomic_store(&ctx->state, WRITE_RUNNING); /* no wake is outstanding here */
    long n = ctx->stream->ops->read(ctx->stream, buf, max);
    if (n == API_STREAM_END)
        return MHD_CONTENT_READER_END_OF_STREAM;
    if (n == API_STREAM_DROPPED || n < 0)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    if (n == 0) {
        MHD_suspend_connection(ctx->conn);
        int expected = WRITE_RUNNING;
        if (!atomic_compare_exchange_strong(&ctx->state, &expected, WRITE_SUSPENDED))
            MHD_resume_connection(ctx->conn); /* woken before the suspend */
    }
    return (ssize_t)n;
}

/* Queue a streamed response; takes resp->stream (closed here if it cannot be sent). */
static enum MHD_Result send_stream(request_ctx *ctx, struct MHD_Connection *c, api_response *resp)
{
    api_stream *st = resp->stream;
    resp->stream = NULL;
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_reader, ctx, NULL);
    if (!r) {
        st->ops->close(st);
        api_response_free(resp);
        return MHD_NO;
    }
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    ctx->fd = info ? info->connect_fd : -1;
    ctx->stream = st;
    atomic_fetch_add(&ctx->server->streams, 1); /* until on_completed() */
    atomic_store(&ctx->state, WRITE_RUNNING);
    st->ops->attach(st, stream_wake, stream_abort, ctx);
    /* MHD_NO: the connection closes, and on_completed() closes the stream */
    return queue_response(c, resp, r);
}

/* Content-Length headers seen: the first value, and whether another one disagrees. */
typedef struct lengths {
    const char *first;
    bool conflict;
} lengths;

static enum MHD_Result note_length(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    (void)kind;
    lengths *l = cls;
    if (strcasecmp(key, "Content-Length") == 0 && value) {
        if (!l->first)
            l->first = value;
        else if (strcmp(l->first, value) != 0)
            l->conflict = true;
    }
    return MHD_YES;
}

/* The front's watch over a connection's later heads (on_connection()); NULL: none. */
static front_watch *watch_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    http_server *h = cls;
    request_ctx *ctx = *con_cls;
    if (!ctx) {
        /* headers are in, unless the front answered this connection while they were coming */
        if (!front_watch_head(watch_of(c)))
            return MHD_NO;
        /* refuse a declared oversize body before reading it */
        ctx = calloc(1, sizeof *ctx);
        if (!ctx)
            return MHD_NO;
        ctx->server = h;
        ctx->start_ns = clock_mono_ns();
        *con_cls = ctx;
        /* Two lengths that disagree: a proxy in front may have read the other one (request
         * smuggling). Refused, and the connection closed, before any body is read. */
        lengths l = {0};
        MHD_get_connection_values(c, MHD_HEADER_KIND, note_length, &l);
        if (l.conflict) {
            ctx->too_large = true; /* nothing of the body is kept */
            api_response resp = {0};
            api_error(&resp, 400, "Conflicting Content-Length headers");
            api_add_header(&resp, "Connection", "close");
            return answer_unrouted(h, c, ctx, method, &resp, "conflicting Content-Length headers");
        }
        const char *cl = l.first;
        if (cl && strtoull(cl, NULL, 10) > h->body_limit) {
            ctx->too_large = true;
            return reject_too_large(h, c, ctx, method);
        }
        return MHD_YES;
    }
    if (ctx->refused_ns) {
        /* answered already: drop what comes for a moment, then close */
        bool body_done = *upload_data_size == 0;
        ctx->dropped += *upload_data_size;
        *upload_data_size = 0;
        if (body_done || ctx->dropped >= LINGER_BYTES ||
            clock_mono_ns() - ctx->refused_ns >= LINGER_NS)
            return MHD_NO;
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0; /* taken: kept, or dropped with the request */
        if (clock_mono_ns() - ctx->start_ns > h->body_timeout_ns)
            return refuse_mid_body(h, c, ctx, method, 408, "body_timeout",
                                   "Request body not received in time");
        if (ctx->body.len + n > h->body_limit) {
            /* a chunked body: its size is known to be over the limit only now */
            sbuf_free(&ctx->body);
            return refuse_mid_body(h, c, ctx, method, 413, "body_too_large", h->too_large);
        }
        sbuf_append(&ctx->body, upload_data, n);
        return MHD_YES;
    }
    if (ctx->too_large)
        return reject_too_large(h, c, ctx, method);
    if (!ctx->begun) {
        ctx->begun = true;
        /* Count first, then look at stopping: http_server_stop() does the
         * reverse, so either it waits for this request or this request
         * sees the stop. Nothing can be suspended once the daemon stops. */
        atomic_fetch_add(&h->active, 1);
        ctx->active = true;
        int before = atomic_fetch_add(&h->in_flight, 1);
        ctx->in_flight = true;
        if (atomic_load(&h->stopping)) {
            settle(h, ctx);
            api_response resp = {0};
            api_error(&resp, 503, "The server is shutting down");
            api_add_header(&resp, "Connection", "close");
            api_add_header(&resp, "Retry-After", "1");
            return answer_unrouted(h, c, ctx, method, &resp, "shutting down");
        }
        if (before >= h->max_in_flight) {
            /* admission: answered at once rather than queued without end */
            settle(h, ctx);
            api_response resp = {0};
            api_error(&resp, 503, "Too many requests in flight; retry later");
            api_add_header(&resp, "Retry-After", "1");
            count_refused(h, "in_flight");
            return answer_unrouted(h, c, ctx, method, &resp, "too many requests in flight");
        }
        if (sbuf_failed(&ctx->body)) {
            settle(h, ctx);
            api_response resp = {0};
            api_error(&resp, 503, "Out of memory reading the request");
            return answer_unrouted(h, c, ctx, method, &resp, "out of memory reading the body");
        }
        api_request req = {
            .method = method,
            .path = url,
            .query = lookup_query,
            .header = lookup_header,
            .ctx = c,
            .body = ctx->body.data ? ctx->body.data : "",
            .body_len = ctx->body.len,
        };
        ctx->ex.ready = write_ready;
        ctx->ex.user = ctx;
        ctx->conn = c;
        if (api_begin(h->api, &req, &ctx->ex) == API_PENDING) {
            if (ctx->ex.long_lived) /* a long poll: still active (a stop waits for its answer) */
                leave_in_flight(h, ctx);
            MHD_suspend_connection(c);
            int expected = WRITE_RUNNING;
            if (!atomic_compare_exchange_strong(&ctx->state, &expected, WRITE_SUSPENDED))
                MHD_resume_connection(c); /* the write finished first */
            return MHD_YES;
        }
    } else {
        /* resumed: the write is done */
        api_finish(h->api, &ctx->ex);
    }
    settle(h, ctx);
    api_response *resp = &ctx->ex.resp;
    if (resp->stream)
        return send_stream(ctx, c, resp);
    return send_response(c, resp);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    http_server *h = cls;
    if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
        front_watch_idle(watch_of(c)); /* the connection waits for its next head */
    request_ctx *ctx = *con_cls;
    if (ctx) {
        settle(h, ctx); /* a client that hung up while its write was in flight */
        if (ctx->stream) {
            ctx->stream->ops->close(ctx->stream); /* no wake or abort follows */
            atomic_fetch_sub(&h->streams, 1);
        }
        sbuf_free(&ctx->body);
        api_exchange_free(&ctx->ex);
        free(ctx);
        *con_cls = NULL;
    }
}

/*
 * The one message libmicrohttpd (0.9.75) logs for every error answer of its own, with the
 * status and the HTML page it sends as its two arguments.
 */
static const char MHD_ERROR_ANSWER[] = "Error processing request (HTTP response code is %u ('%s'))";

/*
 * Messages libmicrohttpd logs for what a client did wrong, beside that answer, or instead of one
 * (a client that hung up). DEBUG, not WARN: a client must not be able to fill the log with
 * warnings.
 */
static const char *const MHD_CLIENT_FAULTS[] = {
    "Failed to parse `Content-Length' header",
    "Too large value of 'Content-Length' header",
    "Received HTTP/1.1 request without `Host' header",
    "Not enough memory in pool to allocate header record",
    "Not enough memory in pool to parse cookies",
    "Connection was closed by remote side with incomplete request",
    /* on_request() closing a connection it answered mid-body (refuse_mid_body()) */
    "Application reported internal error, closing connection.",
};

/*
 * The text of libmicrohttpd's error page into out: what is inside <body>, tags dropped (the whole
 * page, tags dropped, when it has no body element).
 */
static void page_text(const char *page, char *out, size_t outlen)
{
    const char *p = page ? page : "";
    const char *body = strstr(p, "<body>");
    if (body)
        p = body + 6;
    size_t n = 0;
    bool in_tag = false;
    for (; *p && n + 1 < outlen; p++) {
        if (*p == '<' && strncmp(p, "</body>", 7) == 0 && body)
            break;
        if (*p == '<')
            in_tag = true;
        else if (*p == '>')
            in_tag = false;
        else if (!in_tag)
            out[n++] = *p;
    }
    out[n] = '\0';
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    http_server *h = cls;
    if (h && strncmp(fmt, MHD_ERROR_ANSWER, sizeof MHD_ERROR_ANSWER - 1) == 0) {
        va_list args;
        va_copy(args, ap);
        unsigned status = va_arg(args, unsigned);
        const char *page = va_arg(args, const char *);
        va_end(args);
        char text[200];
        page_text(page, text, sizeof text);
        count_unrouted(h, NULL, (int)status, 0, text);
        return;
    }
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    for (size_t i = 0; i < sizeof MHD_CLIENT_FAULTS / sizeof MHD_CLIENT_FAULTS[0]; i++) {
        if (strncmp(msg, MHD_CLIENT_FAULTS[i], strlen(MHD_CLIENT_FAULTS[i])) == 0) {
            log_debug(msg, "component", "http", NULL);
            return;
        }
    }
    log_warn(msg, "component", "http", NULL);
}

/*
 * libmicrohttpd's last word before it aborts on an internal inconsistency:
 * log it as a JSON line (its default goes to stderr unformatted), then abort.
 */
static void on_mhd_panic(void *cls, const char *file, unsigned int line, const char *reason)
{
    (void)cls;
    char where[256];
    snprintf(where, sizeof where, "%s:%u", file ? file : "?", line);
    log_error("libmicrohttpd panic", "reason", reason ? reason : "", "where", where, NULL);
    abort();
}

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
        snprintf(err, errlen, "cannot resolve listen address %s: %s", o->host, gai_strerror(rc));
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

/* A bound, listening, non-blocking socket; -1 on failure. */
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
        close(fd);
        return -1;
    }
    return fd;
}

/* The front hands over a connection whose first request head is in. */
static bool handoff(void *cls, int fd, const struct sockaddr *addr, socklen_t len)
{
    http_server *h = cls;
    return MHD_add_connection(h->daemon, fd, addr, len) == MHD_YES; /* else it closed fd */
}

/* The front answered or closed a connection itself. */
static void front_refused(void *cls, int status, const char *reason, const char *detail)
{
    http_server *h = cls;
    if (status)
        count_unrouted(h, NULL, status, 0, detail);
    count_refused(h, reason);
}

/* libmicrohttpd took a connection: the front watches its later heads (socket_context). It
 * closed one: the watch ends before the socket closes, and its client counts one less. */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    http_server *h = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *fd =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        *socket_context = fd ? front_watch_take(h->front, fd->connect_fd) : NULL;
        return;
    }
    front_watch_end(h->front, *socket_context);
    *socket_context = NULL;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci && ci->client_addr)
        front_closed(h->front, ci->client_addr);
}

/* The default bound on connections: what the open-file limit leaves after HTTP_FD_RESERVE. */
static unsigned default_max_connections(void)
{
    struct rlimit rl;
    rlim_t n = 1024;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        n = rl.rlim_cur;
    else if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        n = 1000000;
    return n > HTTP_FD_RESERVE + 16 ? (unsigned)(n - HTTP_FD_RESERVE) : 16;
}

http_server *http_server_start(const http_options *o, api *a, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    if (!resolve(o, &ss, &sslen, err, errlen))
        return NULL;
    http_server *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    h->api = a;
    h->metrics = a ? a->telemetry.metrics : NULL;
    h->body_limit = o->body_limit;
    api_body_too_large_detail(h->too_large, sizeof h->too_large, h->body_limit);
    h->body_timeout_ns = (int64_t)(o->body_timeout_s ? o->body_timeout_s : 60) * 1000000000LL;
    h->max_in_flight = (int)(o->max_in_flight ? o->max_in_flight : 1024);
    unsigned max_conns = o->max_connections ? o->max_connections : default_max_connections();
    unsigned per_client = o->max_per_client ? o->max_per_client : max_conns / 4;
    if (!o->max_per_client && per_client > 1024)
        per_client = 1024;
    if (per_client == 0)
        per_client = 1;
    metrics_declare(h->metrics, "taskd_http_refused_total",
                    "Connections and requests refused by a bound or a deadline, by reason.",
                    METRIC_COUNTER, NULL, 0);
    int lfd = listen_on(&ss, sslen);
    if (lfd < 0) {
        snprintf(err, errlen, "cannot listen on %s:%d (address in use or not available)", o->host,
                 o->port);
        free(h);
        return NULL;
    }
    bound_address(h, lfd);
    MHD_set_panic_func(on_mhd_panic, NULL);
    unsigned idle_timeout_s = o->timeout_s ? o->timeout_s : 30u;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
                     MHD_ALLOW_SUSPEND_RESUME | MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ITC;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* The front bounds connections; libmicrohttpd's own limit is only a backstop above it. */
    h->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log,
        h, /* first, so every message goes through it */
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(o->threads > 0 ? o->threads : 1),
        MHD_OPTION_CONNECTION_TIMEOUT, idle_timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)CONNECTION_MEMORY, MHD_OPTION_CONNECTION_LIMIT, max_conns + 64u,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
        h, MHD_OPTION_UNESCAPE_CALLBACK, unescape, h, MHD_OPTION_END);
    if (!h->daemon) {
        snprintf(err, errlen, "cannot start the HTTP server on %s", h->address);
        close(lfd);
        free(h);
        return NULL;
    }
    front_options fo = {.listen_fd = lfd,
                        .max_connections = max_conns,
                        .max_per_client = per_client,
                        .header_timeout_s = o->header_timeout_s ? o->header_timeout_s : 10,
                        .idle_timeout_s = idle_timeout_s,
                        .head_limit = HEAD_LIMIT,
                        .too_large = h->too_large,
                        .handoff = handoff,
                        .refused = front_refused,
                        .ctx = h};
    if (!front_start(&fo, &h->front, err, errlen)) {
        MHD_stop_daemon(h->daemon);
        close(lfd);
        free(h);
        return NULL;
    }
    return h;
}

const char *http_server_address(const http_server *h)
{
    return h->address;
}

void http_server_stop(http_server *h)
{
    if (!h)
        return;
    /*
     * Answer new requests with 503, let suspended writes come back and answer,
     * then stop. (No MHD_quiesce_daemon(): with epoll worker threads it races
     * the workers' own removal of the listen socket from their epoll sets and
     * libmicrohttpd 0.9.75 aborts when it loses; MHD_stop_daemon() closes the
     * listen socket anyway.)
     */
    atomic_store(&h->stopping, true);
    while (atomic_load(&h->active) > 0)
        usleep(1000); /* writes finish: the store is still running */
    /* Event streams were told to end (pipeline_end_live()): give their last bytes up to 2 s to
     * go out, so a client sees the stream end rather than cut (one that does not read is cut). */
    for (int ms = 0; ms < 2000 && atomic_load(&h->streams) > 0; ms++)
        usleep(1000);
    front_stop(h->front); /* no more handoffs */
    MHD_stop_daemon(h->daemon);
    front_free(h->front); /* after the daemon's last front_closed() */
    free(h);
}
