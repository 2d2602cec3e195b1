/*
 * bootstrap — the Lambda custom runtime: one program for every function of
 * the AWS deployment, its role chosen by _HANDLER.
 *
 * Init reads the environment and builds the graph — configuration, tracer,
 * the AWS clients and the store, the role — without touching the network (clients
 * connect on first use), so a cold start costs a few milliseconds. A failed
 * init is reported to /runtime/init/error and the process exits.
 *
 * Then the loop: take the next invocation; its deadline becomes the
 * thread's deadline for every AWS call; its request id joins every log line;
 * the role answers; the response (or the function error) is posted; then
 * queued spans are flushed, for 300 ms at most and never past the deadline
 * (lambda_flush_deadline()), what is not sent by then dropped and counted;
 * what the invocation changed in the metrics (the dropped spans among them)
 * is written to stdout as CloudWatch Embedded Metric Format lines; and /next
 * lets Lambda freeze the process. A 5xx answer to the post means the
 * Runtime API has failed: the process exits (non-zero) instead of asking
 * for the next invocation. Connections live across invocations.
 *
 * Environment: AWS_LAMBDA_RUNTIME_API, _HANDLER (api, publish, worker, sweep, recover),
 * TABLE_NAME (every role), TOPIC_ARN (publish, recover), QUEUE_NAME (worker: the
 * configured queue the function serves; else each record's queue),
 * TASKD_CONFIG (else $LAMBDA_TASK_ROOT/taskd.json when it exists, else the
 * defaults), LOG_LEVEL, TASKD_METRICS_NAMESPACE (the metrics' CloudWatch
 * namespace; taskd), the AWS_* variables of aws_http.h and the OTEL_* /
 * AWS_XRAY_DAEMON_ADDRESS variables of tracer.h.
 */
#include "api_role.h"
#include "aws_http.h"
#include "core/config.h"
#include "core/errbuf.h"
#include "core/sbuf.h"
#include "core/tracectx.h"
#include "dynamodb_store.h"
#include "lambda_runtime.h"
#include "publish_role.h"
#include "recover_role.h"
#include "role.h"
#include "runner/child.h"
#include "sweep_role.h"
#include "trace/exporter.h"
#include "trace/trace.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/metrics.h"
#include "worker_role.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char ROLES[] = "api, publish, worker, sweep, recover";

/* Everything init builds; torn down in reverse. */
typedef struct runtime_graph {
    config cfg;
    bool cfg_loaded;
    telemetry tel;
    aws_client *dynamodb; /* every role */
    store *store;
    aws_client *sns; /* publish */
    role *role;
    const char *metrics_namespace, *function_name; /* for each invocation's metrics */
    uint64_t spans_dropped;           /* tracer_dropped() when the last metrics were written */
    exporter_warnings flush_warnings; /* spans a flush could not send: one warning a minute */
} runtime_graph;

static void graph_free(runtime_graph *g)
{
    tracer_free(g->tel.tracer); /* first: spans it still holds may borrow the role's names */
    if (g->role)
        g->role->free(g->role);
    store_close(g->store);
    aws_client_free(g->dynamodb);
    aws_client_free(g->sns);
    metrics_free(g->tel.metrics);
    if (g->cfg_loaded)
        config_free(&g->cfg);
}

/* The configuration file: TASKD_CONFIG, else taskd.json beside the function's code. */
static bool load_config(config *c, char *err, size_t errlen)
{
    if (!config_defaults(c)) {
        errbuf_set(err, errlen, "out of memory");
        return false;
    }
    const char *path = getenv("TASKD_CONFIG");
    char beside[4096];
    const char *root = getenv("LAMBDA_TASK_ROOT");
    if (!path && root) {
        snprintf(beside, sizeof beside, "%s/taskd.json", root);
        if (access(beside, R_OK) == 0)
            path = beside;
    }
    if (path && !config_load_file(c, path, err, errlen)) {
        config_free(c);
        return false;
    }
    return true;
}

/* An environment variable the role needs; false with a message naming it. */
static bool need_env(const char *name, const char **out, const char *what, char *err, size_t errlen)
{
    *out = getenv(name);
    if (*out && **out)
        return true;
    errbuf_set(err, errlen, "%s is not set: %s", name, what);
    return false;
}

/* The DynamoDB store of TABLE_NAME (every role). */
static bool open_store(runtime_graph *g, char *err, size_t errlen)
{
    const char *table;
    if (!need_env("TABLE_NAME", &table, "name the DynamoDB table", err, errlen) ||
        !(g->dynamodb = aws_client_new(AWS_DYNAMODB, err, errlen)))
        return false;
    /* tasks created and status changes are counted; the commit metrics describe SQLite's group
     * commit, and DynamoDB's latency is AWS's own metric */
    store_listener counted = trace_store_listener(g->tel.metrics);
    counted.committed = NULL;
    dynamodb_store_options so = {.table = table,
                                 .client = g->dynamodb,
                                 .retention_grace = g->cfg.retention_grace,
                                 .listener = &counted};
    return (g->store = dynamodb_store_open(&so, err, errlen)) != NULL;
}

/* Build the graph for the role; false with the init error's type and message. */
static bool init(runtime_graph *g, const char *role_name, char *etype, size_t etlen, char *err,
                 size_t errlen)
{
    bool api = role_name && strcmp(role_name, "api") == 0;
    bool publish = role_name && strcmp(role_name, "publish") == 0;
    bool worker = role_name && strcmp(role_name, "worker") == 0;
    bool sweep = role_name && strcmp(role_name, "sweep") == 0;
    bool recover = role_name && strcmp(role_name, "recover") == 0;
    if (!api && !publish && !worker && !sweep && !recover) {
        snprintf(etype, etlen,
                 role_name && *role_name ? "Runtime.UnknownRole" : "Runtime.NoHandler");
        const char *named = role_name ? role_name : "";
        errbuf_set(err, errlen, "_HANDLER \"%.*s\" names no role: the roles are %s",
                   utf8_prec(named, 64), named, ROLES);
        return false;
    }
    snprintf(etype, etlen, "Runtime.ConfigError");
    if (!load_config(&g->cfg, err, errlen))
        return false;
    g->cfg_loaded = true;
    /* the local trace view has no reader on Lambda; spans only go to the exporters */
    tracer_options to = {
        .service_name = "taskd", .service_version = TASKD_VERSION, .xray_subsegments = true};
    if (!(g->tel.tracer = tracer_new(&to, err, errlen)))
        return false;
    tracer_log_setup(g->tel.tracer);
    if (!(g->tel.metrics = metrics_new())) {
        errbuf_set(err, errlen, "out of memory");
        return false;
    }
    trace_declare_metrics(g->tel.metrics);
    /* the tracer's count, as its increase in each invocation (taskd's /metrics reads the
     * tracer directly) */
    metrics_declare(g->tel.metrics, "taskd_spans_dropped_total",
                    "Spans dropped: export queue full or export failed.", METRIC_COUNTER, NULL, 0);
    metrics_keep_observations(g->tel.metrics);
    const char *ns = getenv("TASKD_METRICS_NAMESPACE");
    const char *function = getenv("AWS_LAMBDA_FUNCTION_NAME");
    g->metrics_namespace = ns && *ns ? ns : "taskd";
    g->function_name = function ? function : "";
    const char *topic = NULL;
    if ((publish || recover) &&
        (!need_env("TOPIC_ARN", &topic, "name the SNS topic to publish to", err, errlen) ||
         !(g->sns = aws_client_new(AWS_SNS, err, errlen))))
        return false;
    if (!open_store(g, err, errlen)) /* publish: where a task whose message is refused fails */
        return false;
    snprintf(etype, etlen, "Runtime.InitError");
    if (publish)
        g->role = publish_role_new(&g->cfg, g->sns, topic, g->store, &g->tel, err, errlen);
    else if (api)
        g->role = api_role_new(g->store, &g->cfg, &g->tel, err, errlen);
    else if (sweep)
        g->role = sweep_role_new(g->store, g->tel.metrics, NULL, err, errlen);
    else if (recover)
        g->role = recover_role_new(&g->cfg, g->sns, topic, g->store, &g->tel, err, errlen);
    else
        g->role = worker_role_new(&g->cfg, g->store, getenv("QUEUE_NAME"), &g->tel, err, errlen);
    return g->role != NULL;
}

/* The trace id of an X-Ray trace header, for the xray_trace_id log field: its Root as
 * tracectx_parse_xray() reads it (the trace the api role's request joins), whole; "" when the
 * header is refused. */
static void xray_trace_id(const char *header, char out[TRACECTX_XRAY_ID_LEN + 1])
{
    trace_ctx c;
    if (tracectx_parse_xray(header, &c))
        tracectx_xray_trace_id(c.trace_id, out);
    else
        out[0] = '\0';
}

/*
 * Send the invocation's spans (lambda_flush_deadline()) and count the spans dropped since the last
 * invocation's metrics: those the flush had to leave, those an exporter gave up on or the full
 * queue refused. An exporter warns of its own failures; spans the flush left, which no exporter
 * tried, are warned about here, at most once a minute (a collector that is down would otherwise
 * add a line to every invocation).
 */
static void flush_spans(runtime_graph *g, const lambda_invocation *inv)
{
    bool sent =
        tracer_flush(g->tel.tracer, lambda_flush_deadline(inv->deadline_ms, clock_unix_ms()));
    uint64_t dropped = tracer_dropped(g->tel.tracer);
    uint64_t lost = dropped - g->spans_dropped;
    g->spans_dropped = dropped;
    if (lost)
        metrics_add(g->tel.metrics, "taskd_spans_dropped_total", NULL, lost);
    if (!sent) {
        char n[24];
        snprintf(n, sizeof n, "%" PRIu64, lost);
        exporter_warn(&g->flush_warnings, "spans dropped: not sent before the next invocation",
                      "dropped_spans", n,
                      "the exporters did not take them within the flush's budget");
    }
}

/*
 * Write what the invocation changed in the metrics to stdout, one EMF object per line, for
 * CloudWatch Logs to extract (logs go to stderr). Their dimensions are the service and each
 * metric's labels; the function and the request are plain members, searchable in the logs.
 */
static void write_metrics(const runtime_graph *g, const lambda_invocation *inv)
{
    const char *fields[] = {"function_name", g->function_name, "function_request_id",
                            inv->request_id, NULL};
    metrics_emf o = {.namespace_ = g->metrics_namespace,
                     .service = "taskd",
                     .timestamp_ms = clock_unix_ms(),
                     .fields = fields};
    sbuf b = {0};
    metrics_write_emf(g->tel.metrics, &o, &b);
    if (sbuf_failed(&b))
        log_error("cannot write the invocation's metrics", "error", sbuf_error_text(&b), NULL);
    else if (b.len && (fwrite(b.data, 1, b.len, stdout) != b.len || fflush(stdout) != 0))
        log_error("cannot write the invocation's metrics", "error", "stdout failed", NULL);
    sbuf_free(&b);
}

/* Serve invocations until the runtime API goes away. */
static int serve(lambda_runtime *rt, runtime_graph *g)
{
    role *r = g->role;
    bool cold = true;
    char err[512];
    for (;;) {
        lambda_invocation inv = {0};
        if (!lambda_runtime_next(rt, &inv, err, sizeof err)) {
            log_error("cannot get the next invocation: exiting", "error", err, NULL);
            return 1; /* Lambda starts a fresh environment */
        }
        char root[TRACECTX_XRAY_ID_LEN + 1];
        xray_trace_id(inv.trace_id, root);
        log_context("function_request_id", inv.request_id, "cold_start", cold ? "true" : "false",
                    "xray_trace_id", root, NULL);
        cold = false;
        aws_set_deadline(lambda_call_deadline(inv.deadline_ms, clock_unix_ms()));

        role_result res = {0};
        r->invoke(r, &inv, &res);
        bool posted =
            res.response
                ? lambda_runtime_respond(rt, &inv, res.response, res.response_len, err, sizeof err)
                : lambda_runtime_fail(rt, &inv, res.error_type, res.error_message, err, sizeof err);
        /*
         * The API documents 500 for both posts as a failure of its own after which the runtime
         * must exit; another 5xx is taken the same way. A 4xx (400, 403; 413 for a response too
         * large) refuses this post only, and a post that got no answer leaves /next to tell.
         */
        bool api_failed = !posted && lambda_runtime_last_status(rt) >= 500;
        if (!posted)
            log_error("cannot post the invocation's outcome", "error", err, NULL);
        else if (!res.response)
            log_error("invocation failed", "error_type", res.error_type, "error", res.error_message,
                      NULL);
        role_result_clear(&res);
        /* spans must not wait in a frozen process: send them before the next /next */
        flush_spans(g, &inv);
        write_metrics(g, &inv);
        if (api_failed) {
            char status[24];
            snprintf(status, sizeof status, "%ld", lambda_runtime_last_status(rt));
            log_error("the runtime API failed: exiting", "status", status, NULL);
        }
        aws_set_deadline(0);
        log_context_clear();
        lambda_invocation_clear(&inv);
        if (api_failed)
            return 1; /* Lambda starts a fresh environment */
    }
}

int main(void)
{
    log_level level = LOG_INFO;
    const char *env_level = getenv("LOG_LEVEL");
    if (env_level && !log_level_parse(env_level, &level))
        level = LOG_INFO;
    log_setup(level, "taskd");
    signal(SIGPIPE, SIG_IGN);
    child_reap_supervisors_here(); /* a parent's SIGCHLD ignored is not bootstrap's */
    tracer_global_init();          /* libcurl, before any thread starts */

    char err[512], etype[64];
    lambda_runtime *rt = lambda_runtime_new(err, sizeof err);
    if (!rt) {
        log_error("not running under a Lambda runtime API", "error", err, NULL);
        tracer_global_cleanup();
        return 2;
    }
    runtime_graph g = {0};
    int status = 1;
    if (!init(&g, getenv("_HANDLER"), etype, sizeof etype, err, sizeof err)) {
        log_error("init failed", "error_type", etype, "error", err, NULL);
        char post_err[256];
        if (!lambda_runtime_init_error(rt, etype, err, post_err, sizeof post_err))
            log_error("cannot report the init error", "error", post_err, NULL);
    } else {
        log_info("ready", "role", g.role->name, "version", TASKD_VERSION, NULL);
        status = serve(rt, &g);
    }
    graph_free(&g);
    lambda_runtime_free(rt);
    tracer_global_cleanup();
    return status;
}
