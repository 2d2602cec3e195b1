/*
 * taskd — the task API and its pipeline as one local process: SQLite store,
 * change stream, publisher, queues, handlers, HTTP server.
 *
 * main() reads flags and environment, loads the configuration, wires the
 * store, the pipeline, the API and the HTTP server together, then waits for
 * SIGTERM or SIGINT and takes everything down in reverse order. Signals are blocked in
 * every thread and taken synchronously here with sigwait(), so no handler
 * runs in signal context.
 */
#include "api/api.h"
#include "util/clock.h"
#include "core/config.h"
#include "http/http_server.h"
#include "pipeline/pipeline.h"
#include "store/store_sqlite.h"
#include "trace/trace.h"
#include "util/log.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct options {
    char host[64];
    int port;
    const char *db;
    const char *config;
    store_sync sync;
    int threads;
} options;

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: taskd [OPTIONS]\n"
            "Serve the asynchronous task API on an embedded SQLite database.\n\n"
            "  --listen HOST:PORT   address to serve on (default 127.0.0.1:8080; port 0 picks a\n"
            "                       free port)                          env TASKD_LISTEN\n"
            "  --db PATH            database file (default ./tasks.db)    env TASKD_DB\n"
            "  --config PATH        JSON configuration file               env TASKD_CONFIG\n"
            "  --sync full|normal   full: every 2xx write survives power loss (default);\n"
            "                       normal: survives a crash of taskd     env TASKD_SYNC\n"
            "  --threads N          HTTP event-loop threads (default: one per CPU)\n"
            "  --help               show this help\n"
            "  --version            show the version\n\n"
            "Logs are JSON lines on stderr; LOG_LEVEL=DEBUG|INFO|WARN|ERROR sets the level.\n");
}

/* Split HOST:PORT (HOST may be [v6]); false if malformed. */
static bool parse_listen(const char *s, options *o)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s)
        return false;
    const char *host = s;
    size_t host_len = (size_t)(colon - s);
    if (host[0] == '[') {
        if (host_len < 3 || host[host_len - 1] != ']')
            return false;
        host++;
        host_len -= 2;
    }
    if (host_len >= sizeof o->host)
        return false;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || port < 0 || port > 65535)
        return false;
    memcpy(o->host, host, host_len);
    o->host[host_len] = '\0';
    o->port = (int)port;
    return true;
}

static bool parse_sync(const char *s, store_sync *out)
{
    if (strcmp(s, "full") == 0)
        *out = STORE_SYNC_FULL;
    else if (strcmp(s, "normal") == 0)
        *out = STORE_SYNC_NORMAL;
    else
        return false;
    return true;
}

static int fail(const char *msg)
{
    fprintf(stderr, "taskd: %s\n", msg);
    return 2;
}

/* Flags override the environment, which overrides the defaults. */
static int parse_options(int argc, char **argv, options *o, bool *exit_now)
{
    *exit_now = false;
    const char *listen = getenv("TASKD_LISTEN");
    const char *sync = getenv("TASKD_SYNC");
    o->db = getenv("TASKD_DB") ? getenv("TASKD_DB") : "tasks.db";
    o->config = getenv("TASKD_CONFIG");
    o->sync = STORE_SYNC_FULL;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    o->threads = ncpu > 0 ? (int)ncpu : 1; /* writes never block these threads */

    static const struct option longopts[] = {
        {"listen", required_argument, NULL, 'l'},  {"db", required_argument, NULL, 'd'},
        {"config", required_argument, NULL, 'c'},  {"sync", required_argument, NULL, 's'},
        {"threads", required_argument, NULL, 't'}, {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},       {NULL, 0, NULL, 0},
    };
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'l':
            listen = optarg;
            break;
        case 'd':
            o->db = optarg;
            break;
        case 'c':
            o->config = optarg;
            break;
        case 's':
            sync = optarg;
            break;
        case 't': {
            char *end;
            long n = strtol(optarg, &end, 10);
            if (*end || n < 1 || n > 256)
                return fail("--threads must be a number from 1 to 256");
            o->threads = (int)n;
            break;
        }
        case 'h':
            usage(stdout);
            *exit_now = true;
            return 0;
        case 'V':
            printf("taskd %s\n", TASKD_VERSION);
            *exit_now = true;
            return 0;
        default: {
            char msg[160];
            snprintf(msg, sizeof msg, "unknown or incomplete option '%s' (see --help)",
                     argv[optind - 1]);
            return fail(msg);
        }
        }
    }
    if (optind < argc) {
        char msg[160];
        snprintf(msg, sizeof msg, "unexpected argument '%s' (see --help)", argv[optind]);
        return fail(msg);
    }
    if (!parse_listen(listen ? listen : "127.0.0.1:8080", o))
        return fail("--listen must be HOST:PORT, e.g. 127.0.0.1:8080 or [::1]:0");
    if (sync && !parse_sync(sync, &o->sync))
        return fail("--sync must be full or normal");
    if (!*o->db)
        return fail("--db must name a file");
    return 0;
}

int main(int argc, char **argv)
{
    log_level level = LOG_INFO;
    const char *env_level = getenv("LOG_LEVEL");
    if (env_level && !log_level_parse(env_level, &level))
        return fail("LOG_LEVEL must be DEBUG, INFO, WARN or ERROR");
    log_setup(level, "taskd");
    tracer_global_init(); /* libcurl, before any thread starts */

    options o = {0};
    bool exit_now;
    int rc = parse_options(argc, argv, &o, &exit_now);
    if (rc || exit_now)
        return rc;

    char err[512];
    config cfg;
    if (!config_defaults(&cfg))
        return fail("out of memory");
    if (o.config && !config_load_file(&cfg, o.config, err, sizeof err)) {
        config_free(&cfg);
        return fail(err);
    }

    /* Block the stop signals before any thread starts, so all inherit it. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* Wire the graph; on failure take down what was built, in reverse. */
    int status = 2;
    telemetry tel = {.metrics = metrics_new()};
    trace_declare_metrics(tel.metrics);
    /* the local trace view keeps the last ~16k spans: about 1,800 tasks' full traces */
    tracer_options to = {.service_name = "taskd",
                         .service_version = TASKD_VERSION,
                         .queue_capacity = 8192,
                         .local_capacity = 16384};
    store_listener counted = trace_store_listener(tel.metrics);
    store_sqlite_options so = {
        .path = o.db, .sync = o.sync, .busy_timeout_ms = 5000, .listener = &counted};
    store *st = store_sqlite_open(&so, err, sizeof err);
    if (!st)
        goto no_store;
    tel.tracer = tracer_new(&to, err, sizeof err);
    if (!tel.tracer)
        goto no_tracer;
    pipeline *pipe = pipeline_start(st, &cfg, &tel, err, sizeof err);
    if (!pipe)
        goto no_pipeline;
    api a;
    if (!api_init(&a, st, &cfg, pipeline_api(pipe), &tel, clock_unix_s)) {
        snprintf(err, sizeof err, "cannot initialise the API");
        goto no_api;
    }
    http_options ho = {.host = o.host,
                       .port = o.port,
                       .threads = o.threads,
                       .body_limit = cfg.body_limit,
                       .timeout_s = 30};
    http_server *http = http_server_start(&ho, &a, err, sizeof err);
    if (!http)
        goto no_http;
    char threads[16];
    snprintf(threads, sizeof threads, "%d", o.threads);
    log_info("listening", "address", http_server_address(http), "database", o.db, "sync",
             o.sync == STORE_SYNC_FULL ? "full" : "normal", "threads", threads, "version",
             TASKD_VERSION, NULL);

    int sig = 0;
    sigwait(&stop, &sig);
    log_info("stopping", "signal", sig == SIGTERM ? "SIGTERM" : "SIGINT", NULL);
    status = 0;
    *err = '\0';
    http_server_stop(http); /* finishes the requests in flight */
no_http:
    api_free(&a);
no_api:
    if (!pipeline_stop(pipe, cfg.shutdown_grace)) {
        /* Handlers overran the grace period: their messages come back after the
         * visibility timeout. The store is consistent at every commit, so the
         * process may end here with those threads still running. */
        log_info("stopped", "handlers", "abandoned", NULL);
        return status ? fail(err) : status;
    }
no_pipeline:
    tracer_free(tel.tracer); /* flushes what is queued */
no_tracer:
    store_close(st); /* commits queued writes, checkpoints the WAL */
no_store:
    metrics_free(tel.metrics);
    tracer_global_cleanup();
    config_free(&cfg);
    if (status)
        return fail(err);
    log_info("stopped", NULL);
    return 0;
}
