/*
 * handlers — built-in handlers and the name -> factory table; see handlers.h.
 */
#include "handlers.h"

#include "core/errbuf.h"
#include "core/sbuf.h"
#include "exec_handler.h"
#include "util/clock.h"
#include "util/log.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

void handler_result_clear(handler_result *r)
{
    if (!r)
        return;
    free(r->status_msg);
    free(r->result);
    r->status_msg = NULL;
    r->result = NULL;
    r->ok = r->retry = r->lost = r->own_end = false;
}

/* ---- TASK1: the original service's demo --------------------------------------------- */

typedef struct task1 {
    double seconds;
    double failure_rate;
    pthread_mutex_t mu; /* the wait, so abort() can cut it short */
    pthread_cond_t cond;
    bool aborted;
    int64_t aborted_ns; /* when abort() came (clock_mono_ns()) */
} task1;

/*
 * *out = the number in the environment variable name, fallback when it is unset or empty; false
 * with err set when it is something else than a number from min to max, in digits with at most
 * one decimal point (strtod would take a sign, blanks, an exponent, hex or "inf" as well).
 */
static bool env_number(const char *name, double fallback, double min, double max, double *out,
                       char *err, size_t errlen)
{
    const char *s = getenv(name);
    *out = fallback;
    if (!s || !*s)
        return true;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    bool plain = strspn(s, "0123456789.") == strlen(s) && strchr(s, '.') == strrchr(s, '.');
    if (!plain || *end || errno || !isfinite(v) || v < min || v > max) {
        errbuf_set(err, errlen, "%s must be a number from %g to %g (it is \"%.*s\")", name, min,
                   max, utf8_prec(s, 32), s);
        return false;
    }
    *out = v;
    return true;
}

static double uniform01(void)
{
    uint64_t r = 0;
    if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
        r = (uint64_t)time(NULL) * 2654435761u;
    return (double)(r >> 11) / 9007199254740992.0; /* 53 bits */
}

/*
 * Wait s seconds; true when the wait ran out by itself, false when abort() cut it short (or
 * came before it began). An abort that came once the time was up, before this thread saw it,
 * did not cut it: the wait had run out.
 */
static bool task1_wait(task1 *cfg, double s)
{
    const int64_t until_ns = clock_mono_ns() + (int64_t)(s * 1000) * 1000000;
    const struct timespec until = clock_mono_timespec(until_ns);
    pthread_mutex_lock(&cfg->mu);
    int rc = 0;
    while (!cfg->aborted && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&cfg->cond, &cfg->mu, &until);
    bool ran_out = !cfg->aborted || cfg->aborted_ns >= until_ns;
    pthread_mutex_unlock(&cfg->mu);
    return ran_out;
}

static void task1_abort(handler *h)
{
    task1 *cfg = h->ctx;
    pthread_mutex_lock(&cfg->mu);
    if (!cfg->aborted) {
        cfg->aborted = true;
        cfg->aborted_ns = clock_mono_ns();
    }
    pthread_cond_broadcast(&cfg->cond);
    pthread_mutex_unlock(&cfg->mu);
}

static void task1_run(handler *h, const handler_task *t, unsigned timeout_s, handler_result *out)
{
    (void)t;
    task1 *cfg = h->ctx;
    /* a wait that ran out is the run's own end, and so is its outcome: the task's, though an
     * abort came as it returned; one the abort cut short is not (work_run() gives it back). A
     * wait as long as the timeout times out: TASK1_SECONDS must be below it (task1_new()) */
    if (cfg->seconds >= timeout_s) {
        char msg[64];
        out->own_end = task1_wait(cfg, timeout_s);
        snprintf(msg, sizeof msg, out->own_end ? "timed out after %u s" : "aborted", timeout_s);
        out->ok = false;
        out->status_msg = strdup(msg);
        return;
    }
    out->own_end = task1_wait(cfg, cfg->seconds);
    if (!out->own_end) {
        out->ok = false;
        out->status_msg = strdup("aborted");
        return;
    }
    out->ok = uniform01() >= cfg->failure_rate;
    out->status_msg = strdup(out->ok ? "Task completed" : "Task failed somehow");
}

static void free_with_ctx(handler *h)
{
    free(h->ctx);
    free(h);
}

static void task1_free(handler *h)
{
    task1 *cfg = h->ctx;
    pthread_mutex_destroy(&cfg->mu);
    pthread_cond_destroy(&cfg->cond);
    free(cfg);
    free(h);
}

static handler *task1_new(const handler_config *hc, char *err, size_t errlen)
{
    handler *h = calloc(1, sizeof *h);
    task1 *cfg = calloc(1, sizeof *cfg);
    if (!h || !cfg) {
        free(h);
        free(cfg);
        errbuf_set(err, errlen, "out of memory");
        return NULL;
    }
    if (!env_number("TASK1_SECONDS", 10, 0, 86400, &cfg->seconds, err, errlen) ||
        !env_number("TASK1_FAILURE_RATE", 0.25, 0, 1, &cfg->failure_rate, err, errlen)) {
        free(h);
        free(cfg);
        return NULL;
    }
    if (hc && cfg->seconds >= hc->timeout) {
        /* every run would be cut short: say so now, not in a FAILED task per message */
        char seconds[32], timeout[16];
        snprintf(seconds, sizeof seconds, "%g", cfg->seconds);
        snprintf(timeout, sizeof timeout, "%u", hc->timeout);
        log_warn("TASK1_SECONDS is not below the handler's timeout: every TASK1 task on this "
                 "queue will fail as timed out; raise the binding's \"timeout\"",
                 "queue", hc->queue, "TASK1_SECONDS", seconds, "timeout", timeout, NULL);
    }
    pthread_mutex_init(&cfg->mu, NULL);
    clock_mono_cond_init(&cfg->cond);
    *h = (handler){
        .name = "TASK1", .run = task1_run, .free = task1_free, .abort = task1_abort, .ctx = cfg};
    return h;
}

/* ---- noop --------------------------------------------------------------- */

static void noop_run(handler *h, const handler_task *t, unsigned timeout_s, handler_result *out)
{
    (void)h;
    (void)t;
    (void)timeout_s;
    out->ok = true;
    out->own_end = true; /* nothing cuts it short */
    out->status_msg = strdup("Task completed");
}

static handler *noop_new(const handler_config *hc, char *err, size_t errlen)
{
    (void)hc;
    handler *h = calloc(1, sizeof *h);
    if (!h) {
        errbuf_set(err, errlen, "out of memory");
        return NULL;
    }
    *h = (handler){.name = "noop", .run = noop_run, .free = free_with_ctx};
    return h;
}

/* ---- exec --------------------------------------------------------------- */

static handler *exec_new(const handler_config *hc, char *err, size_t errlen)
{
    size_t argc = 0;
    while (hc->command && hc->command[argc])
        argc++;
    const exec_limits limits = {.cpu_s = hc->cpu_limit,
                                .memory_bytes = (uint64_t)hc->memory_limit << 20,
                                .open_files = hc->open_files};
    return exec_handler_new_limited((const char *const *)hc->command, argc, NULL, &limits, err,
                                    errlen);
}

/* ---- the table ---------------------------------------------------------- */

static const struct {
    const char *name;
    handler *(*create)(const handler_config *hc, char *err, size_t errlen);
} builtin[] = {
    {"TASK1", task1_new},
    {"noop", noop_new},
    {"exec", exec_new},
};
static const size_t n_builtin = sizeof builtin / sizeof builtin[0];

handler *handler_create(const handler_config *hc, char *err, size_t errlen)
{
    for (size_t i = 0; i < n_builtin; i++)
        if (strcmp(builtin[i].name, hc->handler) == 0) {
            char why[256] = "";
            handler *h = builtin[i].create(hc, why, sizeof why);
            if (!h) /* which of the bindings: the queue names it */
                errbuf_set(err, errlen, "the handler of queue %s: %s", hc->queue, why);
            return h;
        }
    /* the table's names, so that one added to it is named too */
    errbuf_set(err, errlen, "unknown handler \"%s\" for queue %s (known:", hc->handler, hc->queue);
    for (size_t i = 0; i < n_builtin; i++)
        if (!errbuf_append(err, errlen, " %s%s", builtin[i].name, i + 1 < n_builtin ? "," : ")"))
            break;
    return NULL;
}

void handler_free(handler *h)
{
    if (h)
        h->free(h);
}
