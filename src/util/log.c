/*
 * log — JSON-lines logger; see log.h.
 */
#include "log.h"

#include "core/sbuf.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static _Atomic log_level threshold = LOG_INFO; /* read by every thread; set by log_setup() */
static const char *service_name = "taskd";

/* Python's names, as Lambda Powertools writes them */
static const char *const level_names[] = {"DEBUG", "INFO", "WARNING", "ERROR"};

/* The calling thread's context fields, rendered once: ',"name":"value"...'. */
static _Thread_local char context[LOG_CONTEXT_SIZE];

void log_context_clear(void)
{
    context[0] = '\0';
}

void log_context_save(char out[LOG_CONTEXT_SIZE])
{
    memcpy(out, context, sizeof context);
}

void log_context_load(const char saved[LOG_CONTEXT_SIZE])
{
    memcpy(context, saved, sizeof context);
    context[sizeof context - 1] = '\0';
}

void log_context(const char *name, ...)
{
    context[0] = '\0';
    sbuf b = {0};
    va_list ap;
    va_start(ap, name);
    for (; name; name = va_arg(ap, const char *)) {
        const char *value = va_arg(ap, const char *);
        size_t mark = b.len;
        sbuf_putc(&b, ',');
        sbuf_json_str(&b, name);
        sbuf_putc(&b, ':');
        sbuf_json_str(&b, value ? value : "");
        if (b.len >= sizeof context) {
            b.len = mark; /* this field does not fit: leave it (and the rest) out */
            break;
        }
    }
    va_end(ap);
    if (!sbuf_failed(&b) && b.len) {
        memcpy(context, b.data, b.len);
        context[b.len] = '\0';
    }
    sbuf_free(&b);
}

void log_setup(log_level level, const char *service)
{
    atomic_store_explicit(&threshold, level, memory_order_relaxed);
    if (service)
        service_name = service;
}

bool log_level_parse(const char *s, log_level *out)
{
    if (!s)
        return false;
    for (int i = 0; i <= LOG_ERROR; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (log_level)i;
            return true;
        }
    }
    if (strcasecmp(s, "WARN") == 0) {
        *out = LOG_WARN;
        return true;
    }
    return false;
}

bool log_enabled(log_level level)
{
    return level >= log_threshold();
}

log_level log_threshold(void)
{
    return atomic_load_explicit(&threshold, memory_order_relaxed);
}

/* Held while a line is written: a pipe takes a write over PIPE_BUF in parts, and another
 * thread's line could come between them. */
static pthread_mutex_t write_mu = PTHREAD_MUTEX_INITIALIZER;

/* How long a line begun on a full non-blocking stderr may wait for the rest to be taken. */
#define LINE_FINISH_MS 100

/* Under write_mu: the last line lost its rest, its newline with it (write_whole()). */
static bool line_cut;

/* Write p[0..n) to stderr, what a short write left over too: true once all of it is taken. A
 * non-blocking stderr that is full takes nothing of it when it takes nothing at once, as a single
 * write did, and waits up to LINE_FINISH_MS for each part of the rest once it has begun; what is
 * still not taken then is lost. *begun says whether any of it was taken. */
static bool write_whole(const char *p, size_t n, bool *begun)
{
    *begun = false;
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, p, n);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            *begun = true;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        struct pollfd out = {.fd = STDERR_FILENO, .events = POLLOUT};
        if (*begun && w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) &&
            poll(&out, 1, LINE_FINISH_MS) > 0)
            continue;
        return false;
    }
    return true;
}

/* Write a whole line to stderr, under write_mu (write_whole()): a line cut short would run into
 * the next. One that lost its rest is ended by a newline before the next line, which is dropped
 * when that newline cannot be written yet: the cut line is lost, but the next ones come whole, on
 * lines of their own. */
static void write_line(const char *p, size_t n)
{
    pthread_mutex_lock(&write_mu);
    bool begun;
    if (line_cut)
        line_cut = !write_whole("\n", 1, &begun);
    if (!line_cut)
        line_cut = !write_whole(p, n, &begun) && begun;
    pthread_mutex_unlock(&write_mu);
}

void log_write(log_level level, const char *message, ...)
{
    if (!log_enabled(level))
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[40];
    size_t n = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + n, sizeof when - n, ".%03ldZ", ts.tv_nsec / 1000000);

    sbuf b = {0};
    sbuf_puts(&b, "{\"level\":\"");
    sbuf_puts(&b, level_names[level]);
    sbuf_puts(&b, "\",\"timestamp\":\"");
    sbuf_puts(&b, when);
    sbuf_puts(&b, "\",\"message\":");
    sbuf_json_str(&b, message);
    sbuf_puts(&b, ",\"service\":");
    sbuf_json_str(&b, service_name);
    va_list ap;
    va_start(ap, message);
    const char *name;
    while ((name = va_arg(ap, const char *)) != NULL) {
        const char *value = va_arg(ap, const char *);
        sbuf_putc(&b, ',');
        sbuf_json_str(&b, name);
        sbuf_putc(&b, ':');
        sbuf_json_str(&b, value);
    }
    va_end(ap);
    sbuf_puts(&b, context);
    sbuf_puts(&b, "}\n");
    if (!sbuf_failed(&b))
        write_line(b.data, b.len);
    sbuf_free(&b);
}
