/*
 * taskd — the task API and its pipeline as one local process: SQLite store,
 * change stream, publisher, queues, handlers, HTTP server.
 *
 * main() reads flags and environment, loads the configuration, wires the
 * store, the pipeline, the API and the HTTP server together, then waits for
 * SIGTERM, SIGINT or SIGHUP and takes everything down in reverse order.
 * Signals are blocked in every thread and taken synchronously here with
 * sigwait(), so no handler runs in signal context.
 */
#include "api/api.h"
#include "core/auth.h"
#include "core/errbuf.h"
#include "util/clock.h"
#include "core/config.h"
#include "http/http_server.h"
#include "pipeline/pipeline.h"
#include "runner/child.h"
#include "runner/exec_handler.h"
#include "store/store_sqlite.h"
#include "taskd/curl_dl.h"
#include "taskd/start_checks.h"
#include "trace/trace.h"
#include "util/digits.h"
#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

typedef struct options {
    char host[64];
    int port;
    const char *db;
    const char *config;
    store_sync sync;
    int threads;
    const char *token_file;         /* NULL: none */
    const char *allowed_hosts;      /* NULL: none beyond the loopback names */
    const char *allowed_hosts_from; /* where it came from: the option or its variable */
    bool metrics_public;
    bool allow_unauthenticated;
} options;

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: taskd [OPTIONS]\n"
            "Serve the asynchronous task API on an embedded SQLite database.\n\n"
            "  option               meaning                     environment variable\n"
            "  --listen HOST:PORT   address to serve on         TASKD_LISTEN\n"
            "                       (default 127.0.0.1:8080;\n"
            "                       port 0 picks a free port)\n"
            "  --db PATH            database file (default      TASKD_DB\n"
            "                       ./tasks.db)\n"
            "  --config PATH        JSON configuration file     TASKD_CONFIG\n"
            "  --sync full|normal   full: every 2xx write       TASKD_SYNC\n"
            "                       survives power loss\n"
            "                       (default); normal:\n"
            "                       survives a crash of taskd\n"
            "  --threads N          HTTP event-loop threads\n"
            "                       (default: one per CPU)\n"
            "  --token-file PATH    bearer tokens, one per      TASKD_TOKEN_FILE\n"
            "                       line (# comments); others\n"
            "                       may neither read nor write\n"
            "                       the file\n"
            "                       more tokens,                TASKD_TOKENS\n"
            "                       comma-separated\n"
            "  --allow-unauthenticated[=B]                      TASKD_ALLOW_UNAUTHENTICATED=B\n"
            "                       serve a non-loopback\n"
            "                       address without tokens\n"
            "                       (something in front\n"
            "                       authenticates)\n"
            "  --metrics-public[=B]                             TASKD_METRICS_PUBLIC=B\n"
            "                       /metrics and /health need\n"
            "                       no token\n"
            "  --allowed-hosts A,B  Host names answered         TASKD_ALLOWED_HOSTS\n"
            "                       besides localhost,\n"
            "                       127.0.0.1, [::1]: NAME or\n"
            "                       NAME:PORT; * for any\n"
            "  --help               show this help\n"
            "  --version            show the version\n"
            "\n"
            "A flag wins over its environment variable; TASKD_TOKENS adds to --token-file.\n"
            "B is 1, true or yes, or 0, false or no (in any case); a flag alone is yes, an\n"
            "unset or empty variable no.\n"
            "Logs: JSON lines on stderr; LOG_LEVEL=DEBUG|INFO|WARNING|ERROR sets the level.\n"
            "The TASK1 demo handler waits TASK1_SECONDS (default 10, 0-86400), then fails\n"
            "with probability TASK1_FAILURE_RATE (default 0.25, 0-1).\n");
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
    long port;
    if (!digits_parse(colon + 1, strlen(colon + 1), 0, 65535, &port))
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

/* Past the grace, with handlers still running: how long the spans queued get to leave. */
#define ABANDON_FLUSH_MS 2000

/* Refuse to start: the reason as a log line (JSON, as every other), and exit status 2. */
static int fail(const char *msg)
{
    log_error(msg, NULL);
    return 2;
}

/* A refusal of a value, named as it was given: the variable or the flag ("from"). */
static int fail_value(const char *from, const char *must)
{
    char msg[160];
    snprintf(msg, sizeof msg, "%s %s", from, must);
    return fail(msg);
}

/* The words a yes/no flag or its variable takes (in any case), as a refusal names them. */
#define FLAG_WORDS "1, true or yes, or 0, false or no"

/* A yes/no word: false if it is none of FLAG_WORDS. */
static bool parse_yes_no(const char *v, bool *out)
{
    if (strcmp(v, "0") == 0 || strcasecmp(v, "false") == 0 || strcasecmp(v, "no") == 0)
        *out = false;
    else if (strcmp(v, "1") == 0 || strcasecmp(v, "true") == 0 || strcasecmp(v, "yes") == 0)
        *out = true;
    else
        return false;
    return true;
}

/* A yes/no environment variable: unset or empty is no; false if malformed. */
static bool env_flag(const char *name, bool *out)
{
    const char *v = getenv(name);
    if (!v || !*v) {
        *out = false;
        return true;
    }
    return parse_yes_no(v, out);
}

/* Flags override the environment, which overrides the defaults. */
static int parse_options(int argc, char **argv, options *o, bool *exit_now)
{
    *exit_now = false;
    /* where each value came from, to name it in a refusal */
    const char *listen = getenv("TASKD_LISTEN"), *listen_from = "TASKD_LISTEN";
    const char *sync = getenv("TASKD_SYNC"), *sync_from = "TASKD_SYNC";
    const char *db_from = getenv("TASKD_DB") ? "TASKD_DB" : "--db";
    const char *config_from = "TASKD_CONFIG";
    const char *token_from = "TASKD_TOKEN_FILE";
    o->db = getenv("TASKD_DB") ? getenv("TASKD_DB") : "tasks.db";
    o->config = getenv("TASKD_CONFIG");
    o->sync = STORE_SYNC_FULL;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    o->threads = ncpu > 0 ? (int)ncpu : 1; /* writes never block these threads */
    o->token_file = getenv("TASKD_TOKEN_FILE");
    o->allowed_hosts = getenv("TASKD_ALLOWED_HOSTS");
    o->allowed_hosts_from = "TASKD_ALLOWED_HOSTS";
    /* the yes/no options: a flag given, alone (yes) or with a word, leaves its variable unread */
    struct {
        const char *flag, *var;
        bool *value, given, alone;
    } yes_no[] = {
        {"--allow-unauthenticated", "TASKD_ALLOW_UNAUTHENTICATED", &o->allow_unauthenticated, false,
         false},
        {"--metrics-public", "TASKD_METRICS_PUBLIC", &o->metrics_public, false, false},
    };

    static const struct option longopts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"db", required_argument, NULL, 'd'},
        {"config", required_argument, NULL, 'c'},
        {"sync", required_argument, NULL, 's'},
        {"threads", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {"token-file", required_argument, NULL, 'T'},
        {"allowed-hosts", required_argument, NULL, 'H'},
        {"allow-unauthenticated", optional_argument, NULL, 'U'},
        {"metrics-public", optional_argument, NULL, 'M'},
        {NULL, 0, NULL, 0},
    };
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'l':
            listen = optarg;
            listen_from = "--listen";
            break;
        case 'd':
            o->db = optarg;
            db_from = "--db";
            break;
        case 'c':
            o->config = optarg;
            config_from = "--config";
            break;
        case 's':
            sync = optarg;
            sync_from = "--sync";
            break;
        case 't': {
            long n;
            if (!digits_parse(optarg, strlen(optarg), 1, 256, &n))
                return fail("--threads must be a number from 1 to 256");
            o->threads = (int)n;
            break;
        }
        case 'T':
            o->token_file = optarg;
            token_from = "--token-file";
            break;
        case 'H':
            o->allowed_hosts = optarg;
            o->allowed_hosts_from = "--allowed-hosts";
            break;
        case 'U':
        case 'M': {
            size_t i = ch == 'U' ? 0 : 1; /* yes_no[]'s order */
            bool ok = true;
            if (optarg) /* an empty word (--metrics-public=) is refused too: it says neither */
                ok = parse_yes_no(optarg, yes_no[i].value);
            else
                *yes_no[i].value = true;
            if (!ok)
                return fail_value(yes_no[i].flag, "must be " FLAG_WORDS " (alone: yes)");
            yes_no[i].given = true;
            yes_no[i].alone = !optarg;
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
            /* a long option unknown (optopt 0) or without its value is the argument before
             * optind; a short one (taskd has none) may be inside a cluster (-xy) that getopt has
             * not moved past yet, so it is named alone */
            char msg[160], opt[3] = {'-', (char)optopt, '\0'};
            const char *what =
                optopt && strncmp(argv[optind - 1], "--", 2) != 0 ? opt : argv[optind - 1];
            snprintf(msg, sizeof msg, "unknown or incomplete option '%s' (see --help)", what);
            return fail(msg);
        }
        }
    }
    if (optind < argc) {
        /* a yes/no flag given alone and a stray word of those it takes: the word was meant for
         * the flag, which takes it after '=' only (getopt's optional value) */
        const char *meant = NULL;
        bool word;
        for (size_t i = 0; i < sizeof yes_no / sizeof yes_no[0]; i++)
            if (yes_no[i].alone && parse_yes_no(argv[optind], &word))
                meant = yes_no[i].flag;
        char msg[256];
        if (meant)
            snprintf(msg, sizeof msg,
                     "unexpected argument '%s': %s takes its word after '=' (%s=%s), alone it "
                     "is yes",
                     argv[optind], meant, meant, argv[optind]);
        else
            snprintf(msg, sizeof msg, "unexpected argument '%s' (see --help)", argv[optind]);
        return fail(msg);
    }
    /* malformed yes/no variables are said after the options, so that --help and --version still
     * work, and all in one refusal */
    char bad_env[128] = "";
    int n_bad = 0;
    for (size_t i = 0; i < sizeof yes_no / sizeof yes_no[0]; i++)
        if (!yes_no[i].given && !env_flag(yes_no[i].var, yes_no[i].value))
            snprintf(bad_env + strlen(bad_env), sizeof bad_env - strlen(bad_env), "%s%s",
                     n_bad++ ? " and " : "", yes_no[i].var);
    if (n_bad)
        return fail_value(bad_env, n_bad > 1 ? "must each be " FLAG_WORDS : "must be " FLAG_WORDS);
    if (!parse_listen(listen ? listen : "127.0.0.1:8080", o))
        return fail_value(listen_from, "must be HOST:PORT, e.g. 127.0.0.1:8080 or [::1]:0");
    if (sync && !parse_sync(sync, &o->sync))
        return fail_value(sync_from, "must be full or normal");
    if (!*o->db)
        return fail_value(db_from, "must name a file");
    if (o->config && !*o->config)
        return fail_value(config_from, "must name a file");
    /* an empty path is no way to turn tokens off: an unset variable in a unit file, say */
    if (o->token_file && !*o->token_file)
        return fail_value(token_from, "must name a file");
    return 0;
}

/*
 * Build the access policy: tokens from the file and TASKD_TOKENS, the Host check on a loopback
 * listener, and no unauthenticated non-loopback listener unless asked for. 0 or an exit code.
 */
static int setup_access(const options *o, auth_policy *p)
{
    memset(p, 0, sizeof *p);
    uint8_t key[AUTH_KEY_LEN];
    if (getrandom(key, sizeof key, 0) != (ssize_t)sizeof key)
        return fail("cannot read random bytes for the token key");
    auth_init(p, key);
    memset(key, 0, sizeof key);
    char err[512], why[400];
    if (o->token_file && !auth_load_token_file(p, o->token_file, why, sizeof why)) {
        errbuf_set(err, sizeof err, "%s", why);
        return fail(err);
    }
    const char *env = getenv("TASKD_TOKENS");
    size_t had = p->n_tokens;
    if (env && !auth_parse_token_list(p, env, why, sizeof why)) {
        errbuf_set(err, sizeof err, "TASKD_TOKENS %s", why);
        return fail(err);
    }
    if (env && *env && p->n_tokens == had) /* "," or blanks: meant tokens, gave none */
        return fail("TASKD_TOKENS holds no token (unset it, or leave it empty, for none)");
    if (o->allowed_hosts && !auth_parse_hosts(p, o->allowed_hosts, why, sizeof why)) {
        errbuf_set(err, sizeof err, "%s: %s", o->allowed_hosts_from, why);
        return fail(err);
    }
    bool loopback = auth_is_loopback(o->host);
    /* Host names are checked on a loopback listener, where a page that rebinds its name to
     * 127.0.0.1 would reach taskd, and on any listener without tokens, which the operator's
     * own browser reaches too (0.0.0.0 holds 127.0.0.1): there an IP address is answered, and
     * a name only if --allowed-hosts gives it. With tokens, a rebinding page has none. */
    p->check_host = loopback || p->n_hosts > 0 || p->n_tokens == 0;
    p->ip_hosts = !loopback && p->n_tokens == 0;
    p->metrics_public = o->metrics_public;
    if (!loopback && p->n_tokens == 0 && !o->allow_unauthenticated) {
        errbuf_set(err, sizeof err,
                   "refusing to serve %s without authentication: it is not a loopback address; "
                   "give tokens (--token-file or TASKD_TOKENS), or pass --allow-unauthenticated "
                   "(TASKD_ALLOW_UNAUTHENTICATED=1) if something in front authenticates",
                   o->host);
        return fail(err);
    }
    return 0;
}

/*
 * The descriptors exec runs may hold at once, kept out of the HTTP listener's default bound;
 * a warning when the open-file limit leaves too few for them beside the listener's reserve (a
 * run that cannot get its pipes then is tried again later, README "Handlers in any language").
 */
static unsigned run_fds(const config *c)
{
    unsigned long n = 0;
    for (size_t i = 0; i < c->n_handlers; i++)
        if (strcmp(c->handlers[i].handler, "exec") == 0)
            n += (unsigned long)c->handlers[i].concurrency * EXEC_RUN_FDS;
    struct rlimit rl;
    if (n && getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur < n + HTTP_FD_RESERVE + 16) {
        char limit[24], need[24];
        snprintf(limit, sizeof limit, "%llu", (unsigned long long)rl.rlim_cur);
        snprintf(need, sizeof need, "%lu", n + HTTP_FD_RESERVE + 16);
        log_warn("the open-file limit is low for the exec runs configured; raise it (ulimit -n)",
                 "limit", limit, "wanted", need, NULL);
    }
    return n < UINT_MAX ? (unsigned)n : UINT_MAX;
}

/*
 * Descriptors 0, 1 and 2 open, on /dev/null where they were closed (a `2>&-`, a launcher that
 * closes them): else the first file taskd opens (the database's lock) would take one, and the
 * log lines written to standard error would go into it. False when one cannot be opened.
 */
static bool keep_standard_fds(void)
{
    for (int fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) != -1 || errno != EBADF)
            continue;
        int got = open("/dev/null", O_RDWR); /* the lowest free descriptor: fd */
        if (got != fd) {
            if (got >= 0)
                close(got);
            return false;
        }
    }
    return true;
}

/* The runs of a taskd killed while their supervisors were stopped (by the program, say), which
 * the kernel did not continue (a process of its session adopted them), go on, their
 * parent-death signals pending: continued here, the supervisors clear them, and are waited for
 * before the pipeline starts (a task of theirs may be visible again, and run again while its
 * last run's program still ends), up to the grace a run has (child_continue_orphans(); without
 * /proc, nothing is done). */
static void end_orphaned_runs(void)
{
    int unended, unwatched, n = child_continue_orphans(&unended, &unwatched);
    if (n > 0) {
        char count[16], left[16], unseen[16];
        snprintf(count, sizeof count, "%d", n);
        snprintf(left, sizeof left, "%d", unended);
        snprintf(unseen, sizeof unseen, "%d", unwatched);
        log_warn("continued the stopped supervisors of runs whose taskd had died; they ended "
                 "those runs (not_ended: still ending after their grace; not_waited_for: no "
                 "memory to note them)",
                 "supervisors", count, "not_ended", left, "not_waited_for", unseen, NULL);
    }
}

/* A second stop signal while the first's grace runs ends the grace: set from its own thread. */
static atomic_bool hurry;

static void *watch_second_signal(void *arg)
{
    const sigset_t *stop = arg;
    int sig;
    if (sigwait(stop, &sig) == 0) {
        log_info("a second stop signal: the handlers still running are aborted now", NULL);
        atomic_store(&hurry, true);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (!keep_standard_fds())
        return 2; /* nowhere to say why: standard error is closed */
    options o = {0};
    bool exit_now;
    int rc = parse_options(argc, argv, &o, &exit_now);
    if (rc || exit_now)
        return rc;
    log_level level = LOG_INFO;
    const char *env_level = getenv("LOG_LEVEL");
    if (env_level && !log_level_parse(env_level, &level))
        return fail("LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR");
    log_setup(level, "taskd");
    auth_policy access;
    rc = setup_access(&o, &access);
    if (rc) {
        auth_free(&access);
        return rc;
    }

    char err[512];
    config cfg;
    if (!config_defaults(&cfg)) {
        auth_free(&access);
        return fail("out of memory");
    }
    if (o.config && !config_load_file(&cfg, o.config, err, sizeof err)) {
        config_free(&cfg);
        auth_free(&access);
        return fail(err);
    }

    /* Block the stop signals before any thread starts, so all inherit it. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    /* a closed terminal: stop as cleanly as when asked to; but not under nohup (or any parent
     * that set SIGHUP ignored), which a blocked signal would no longer honour */
    struct sigaction hup;
    if (sigaction(SIGHUP, NULL, &hup) == 0 && hup.sa_handler != SIG_IGN)
        sigaddset(&stop, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);
    child_reap_supervisors_here(); /* a parent's SIGCHLD ignored is not taskd's */

    /* Wire the graph; on failure take down what was built, in reverse. */
    int status = 2;
    telemetry tel = {.metrics = metrics_new()};
    trace_declare_metrics(tel.metrics);
    /* the local trace view keeps the last ~16k spans: about 1,800 tasks' full traces */
    tracer_options to = {.service_name = "taskd",
                         .service_version = TASKD_VERSION,
                         .queue_capacity = 8192,
                         .local_capacity = 16384,
                         /* libcurl, loaded only for an OTLP exporter, before any thread starts */
                         .curl_init = curl_dl_init};
    /* what the configuration or the OTEL_* environment can get wrong is refused before the
     * database is created */
    pipeline *pipe = pipeline_new(&cfg, err, sizeof err);
    store *st = NULL;
    if (!pipe)
        goto no_store;
    tel.tracer = tracer_new(&to, err, sizeof err);
    if (!tel.tracer)
        goto no_store;
    store_listener counted = trace_store_listener(tel.metrics);
    store_sqlite_options so = {.path = o.db,
                               .sync = o.sync,
                               .busy_timeout_ms = 5000,
                               .listener = &counted,
                               .config = &cfg};
    st = store_sqlite_open(&so, err, sizeof err);
    if (!st)
        goto no_store;
    start_checks_log(st, &cfg);
    tracer_log_setup(tel.tracer);
    end_orphaned_runs();
    if (!pipeline_start(pipe, st, &tel, err, sizeof err))
        goto no_api;
    api a;
    if (!api_init(&a, st, &cfg, pipeline_api(pipe), &tel, clock_unix_s)) {
        errbuf_set(err, sizeof err, "cannot initialise the API");
        goto no_api;
    }
    a.access = &access;
    http_options ho = {.host = o.host,
                       .port = o.port,
                       .threads = o.threads,
                       .body_limit = cfg.body_limit,
                       .timeout_s = cfg.idle_timeout,
                       .max_connections = cfg.max_connections,
                       .max_per_client = cfg.max_connections_per_client,
                       .ipv6_prefix = cfg.client_ipv6_prefix,
                       .max_in_flight = cfg.max_in_flight,
                       .max_body_memory = cfg.max_body_memory,
                       .header_timeout_s = cfg.header_timeout,
                       .body_timeout_s = cfg.body_timeout,
                       .min_send_rate = cfg.min_send_rate,
                       .fd_reserve = run_fds(&cfg)};
    http_server *http = http_server_start(&ho, &a, err, sizeof err);
    if (!http)
        goto no_http;
    char threads[16];
    snprintf(threads, sizeof threads, "%d", o.threads);
    log_info("listening", "address", http_server_address(http), "database", o.db, "sync",
             o.sync == STORE_SYNC_FULL ? "full" : "normal", "threads", threads, "auth",
             access.n_tokens ? "bearer" : "none", "version", TASKD_VERSION, NULL);
    if (access.ip_hosts && !access.any_host)
        log_warn("without tokens, requests naming this server by a name get 403 (DNS "
                 "rebinding); IP addresses and localhost are answered, --allowed-hosts "
                 "(TASKD_ALLOWED_HOSTS) adds names",
                 "allowed_hosts", access.n_hosts ? "given" : "none", NULL);

    int sig = 0;
    sigwait(&stop, &sig);
    log_info("stopping", "signal",
             sig == SIGTERM  ? "SIGTERM"
             : sig == SIGINT ? "SIGINT"
                             : "SIGHUP",
             NULL);
    pthread_t watcher; /* ends with the process */
    if (pthread_create(&watcher, NULL, watch_second_signal, &stop) == 0)
        pthread_detach(watcher);
    status = 0;
    *err = '\0';
    pipeline_end_live(pipe); /* parked waits answer, event streams end */
    http_server_stop(http);  /* finishes the requests in flight */
no_http:
    api_free(&a);
no_api:
    if (!pipeline_stop(pipe, cfg.shutdown_grace, &hurry)) {
        /* Handlers overran the grace period: their messages come back once their hide
         * ends (the handler's timeout and the runner's margin, or the queue's visibility
         * timeout when longer). The store is consistent at every commit, so the
         * process may end here with those threads still running. They read the
         * configuration, which lives in this frame, and the libraries' state:
         * _exit() from here, not a return or exit(), whose cleanups (the TLS
         * library's, libcurl's) would free what those threads may be using. */
        tracer_flush(tel.tracer, clock_unix_ms() + ABANDON_FLUSH_MS); /* the threads go on */
        log_info("stopped", "handlers", "abandoned", NULL);
        int code = status ? fail(err) : status;
        fflush(NULL);
        _exit(code);
    }
    pipe = NULL;
    store_close(st); /* commits queued writes, checkpoints the WAL */
no_store:
    tracer_free(tel.tracer);      /* flushes what is queued; made before the store, freed after */
    pipeline_stop(pipe, 0, NULL); /* when it was built and never started: its handlers */
    metrics_free(tel.metrics);
    tracer_global_cleanup();
    config_free(&cfg);
    auth_free(&access);
    if (status)
        return fail(err);
    log_info("stopped", NULL);
    return 0;
}
