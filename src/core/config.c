/*
 * config — defaults and the JSON configuration file. Parsing is strict:
 * a misspelt key is reported rather than silently ignored, because a
 * configuration typo in a job system means work that never runs. A section
 * given in the file (queues, subscriptions, ...) replaces the default one
 * whole; cross-references (a subscription's queue, a DLQ) are checked after
 * everything is read.
 */
#include "config.h"
#include "json_util.h"
#include "errbuf.h"

#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *const default_types[] = {"TASK1", "TASK2", "TASK3"};

static void clear_types(config *c)
{
    for (size_t i = 0; i < c->n_task_types; i++)
        free(c->task_types[i]);
    c->n_task_types = 0;
}

static void clear_pipeline(config *c);

static void default_queue(queue_config *q, const char *name)
{
    memset(q, 0, sizeof *q);
    snprintf(q->name, sizeof q->name, "%s", name);
    q->visibility_timeout = 60;
    q->max_receive_count = 3;
    /* retention 0: not given, set by settle_retention() */
}

/*
 * Each queue's retention where none was given: SQS's default (4 days), but for a dead-letter
 * queue SQS's most (14 days), since a dead letter's age counts from its first send and one kept
 * no longer than in its source could be dropped on arrival (AWS advises a longer retention).
 * Then each queue's dead_letter_retention, from its dead-letter queue.
 */
static void settle_retention(config *c)
{
    for (size_t i = 0; i < c->n_queues; i++) {
        queue_config *q = &c->queues[i];
        if (!q->retention)
            q->retention = config_dead_letter_source(c, q) ? CONFIG_RETENTION_MAX : 4 * 24 * 3600;
    }
    for (size_t i = 0; i < c->n_queues; i++) {
        queue_config *q = &c->queues[i];
        const queue_config *dlq =
            *q->dead_letter_queue ? config_queue(c, q->dead_letter_queue) : NULL;
        q->dead_letter_retention = dlq ? dlq->retention : 0;
    }
}

/* The original service's pipeline: INSERTs published to "tasks", TASK1 to queue task1. */
static bool default_pipeline(config *c)
{
    snprintf(c->topic, sizeof c->topic, "tasks");
    default_queue(&c->queues[0], "task1");
    snprintf(c->queues[0].dead_letter_queue, sizeof c->queues[0].dead_letter_queue, "task1-dlq");
    default_queue(&c->queues[1], "task1-dlq");
    c->n_queues = 2;
    settle_retention(c);
    snprintf(c->subscriptions[0].queue, sizeof c->subscriptions[0].queue, "task1");
    char err[128];
    c->subscriptions[0].policy = filter_policy_compile("{\"TaskType\":[\"TASK1\"]}",
                                                       FILTER_SCOPE_ATTRIBUTES, err, sizeof err);
    c->n_subscriptions = 1;
    consumer_config *pub = &c->consumers[0];
    snprintf(pub->name, sizeof pub->name, "publisher");
    snprintf(pub->action, sizeof pub->action, "publish");
    const char *insert_only = "{\"eventName\":[\"INSERT\"]}";
    pub->filter = filter_set_compile(&insert_only, 1, err, sizeof err);
    pub->batch_size = 100;
    pub->maximum_retry_attempts = 5;
    c->n_consumers = 1;
    handler_config *h = &c->handlers[0];
    snprintf(h->queue, sizeof h->queue, "task1");
    snprintf(h->handler, sizeof h->handler, "TASK1");
    h->batch_size = 1;
    h->concurrency = 8;
    h->timeout = 30;
    c->n_handlers = 1;
    return c->subscriptions[0].policy && pub->filter;
}

bool config_defaults(config *c)
{
    memset(c, 0, sizeof *c);
    c->body_limit = 1024 * 1024;
    c->retention_grace = 3600;
    c->sweep_interval = 60;
    c->shutdown_grace = 10;
    c->claim_timeout = 3600;
    c->max_waiters = 1000;
    c->max_event_clients = 64;
    c->event_buffer_bytes = 256 * 1024;
    c->event_replay = 60;
    c->event_ping_interval = 15;
    c->max_in_flight = 1024;
    c->max_body_memory = 256 * 1024 * 1024;
    c->header_timeout = 10;
    c->body_timeout = 60;
    c->idle_timeout = 30;
    c->min_send_rate = 1024;
    c->client_ipv6_prefix = 64;
    if (!default_pipeline(c)) {
        clear_pipeline(c);
        return false;
    }
    for (size_t i = 0; i < 3; i++) {
        c->task_types[i] = strdup(default_types[i]);
        if (!c->task_types[i]) {
            config_free(c);
            return false;
        }
        c->n_task_types++;
    }
    return true;
}

/* A task type: 1..64 characters of letters, digits, '_', '-', '.'. */
static bool valid_type_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        bool ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                  (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' || ch == '.';
        if (!ok)
            return false;
    }
    return true;
}

static bool load_task_types(config *c, json_t *v, const char *name, char *err, size_t errlen)
{
    if (!json_is_array(v) || json_array_size(v) == 0 ||
        json_array_size(v) > CONFIG_MAX_TASK_TYPES) {
        errbuf_set(err, errlen, "%s: task_types must be a non-empty array of at most %d names",
                   name, CONFIG_MAX_TASK_TYPES);
        return false;
    }
    size_t i;
    json_t *item;
    json_array_foreach(v, i, item)
    {
        const char *s = json_string_value(item);
        if (!s || !valid_type_name(s)) {
            errbuf_set(
                err, errlen,
                "%s: task_types[%zu] must be 1-64 characters of letters, digits, '_', '-', '.'",
                name, i);
            return false;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(s, json_string_value(json_array_get(v, j))) == 0) {
                errbuf_set(err, errlen, "%s: task_types lists \"%s\" twice", name, s);
                return false;
            }
        }
    }
    clear_types(c);
    json_array_foreach(v, i, item)
    {
        c->task_types[i] = strdup(json_string_value(item));
        if (!c->task_types[i]) {
            errbuf_set(err, errlen, "%s: out of memory", name);
            return false;
        }
        c->n_task_types++;
    }
    return true;
}

/* "must be an integer from min to max" in buf, naming unit ("seconds", "MiB"; NULL: a plain
 * count) after the bounds: what a value out of range is told. */
static const char *out_of_range(char *buf, size_t len, int64_t min, int64_t max, const char *unit)
{
    snprintf(buf, len, "must be an integer from %lld to %lld%s%s", (long long)min, (long long)max,
             unit ? " " : "", unit ? unit : "");
    return buf;
}

/* A top-level integer from min to max, in unit (as out_of_range() has it). */
static bool load_positive(json_t *v, const char *key, int64_t min, int64_t max, const char *unit,
                          int64_t *out, const char *name, char *err, size_t errlen)
{
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        char must[96];
        errbuf_set(err, errlen, "%s: %s %s", name, key,
                   out_of_range(must, sizeof must, min, max, unit));
        return false;
    }
    *out = json_integer_value(v);
    return true;
}

/* ---- pipeline sections --------------------------------------------------- */

/* Each section's owned parts freed and its count reset, so nothing is freed twice. */
static void clear_subscriptions(config *c)
{
    for (size_t i = 0; i < c->n_subscriptions; i++)
        filter_policy_free(c->subscriptions[i].policy);
    c->n_subscriptions = 0;
}

static void clear_consumers(config *c)
{
    for (size_t i = 0; i < c->n_consumers; i++)
        filter_set_free(c->consumers[i].filter);
    c->n_consumers = 0;
}

static void clear_handlers(config *c)
{
    for (size_t i = 0; i < c->n_handlers; i++) {
        for (char **a = c->handlers[i].command; a && *a; a++)
            free(*a);
        free(c->handlers[i].command);
    }
    c->n_handlers = 0;
}

static void clear_pipeline(config *c)
{
    clear_subscriptions(c);
    clear_consumers(c);
    clear_handlers(c);
    c->n_queues = 0;
}

/* Reading one object of a section: where it is, for messages. */
typedef struct reader {
    const char *file;
    const char *section;
    size_t index;
    char *err;
    size_t errlen;
} reader;

static bool fault(reader *r, const char *fmt, const char *key)
{
    char what[512];
    errbuf_set(what, sizeof what, fmt, key);
    errbuf_set(r->err, r->errlen, "%s: %s[%zu]: %s", r->file, r->section, r->index, what);
    return false;
}

static bool read_name(reader *r, json_t *obj, const char *key, bool required, char *out,
                      size_t outlen)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return required ? fault(r, "\"%s\" is required", key) : true;
    const char *s = json_string_value(v);
    if (!s || !valid_type_name(s) || strlen(s) >= outlen)
        return fault(r, "\"%s\" must be 1-64 characters of letters, digits, '_', '-', '.'", key);
    snprintf(out, outlen, "%s", s);
    return true;
}

/* An integer from min to max, in unit (as out_of_range() has it). */
static bool read_uint(reader *r, json_t *obj, const char *key, unsigned min, unsigned max,
                      const char *unit, unsigned *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return true;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        char must[96], fmt[128];
        snprintf(fmt, sizeof fmt, "\"%%s\" %s", out_of_range(must, sizeof must, min, max, unit));
        return fault(r, fmt, key);
    }
    *out = (unsigned)json_integer_value(v);
    return true;
}

/* Reject keys other than the allowed ones. */
static bool only_keys(reader *r, json_t *obj, const char *const *allowed)
{
    if (!json_is_object(obj))
        return fault(r, "%s", "must be an object");
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        bool ok = false;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = strcmp(*a, key) == 0;
        if (!ok)
            return fault(r, "unknown key \"%s\"", key);
    }
    return true;
}

static bool read_queue(reader *r, json_t *o, queue_config *q)
{
    static const char *const keys[] = {"name",
                                       "visibility_timeout",
                                       "max_receive_count",
                                       "dead_letter_queue",
                                       "delay",
                                       "retention",
                                       NULL};
    default_queue(q, "");
    return only_keys(r, o, keys) && read_name(r, o, "name", true, q->name, sizeof q->name) &&
           read_uint(r, o, "visibility_timeout", 1, 12 * 3600, "seconds", &q->visibility_timeout) &&
           read_uint(r, o, "max_receive_count", 0, 1000, NULL, &q->max_receive_count) &&
           read_name(r, o, "dead_letter_queue", false, q->dead_letter_queue,
                     sizeof q->dead_letter_queue) &&
           read_uint(r, o, "delay", 0, 900, "seconds", &q->delay) &&
           read_uint(r, o, "retention", 60, CONFIG_RETENTION_MAX, "seconds", &q->retention);
}

static bool read_subscription(reader *r, json_t *o, subscription_config *sub)
{
    static const char *const keys[] = {"queue", "filter_policy", "filter_policy_scope", NULL};
    if (!only_keys(r, o, keys) || !read_name(r, o, "queue", true, sub->queue, sizeof sub->queue))
        return false;
    filter_scope scope = FILTER_SCOPE_ATTRIBUTES;
    json_t *sv = json_object_get(o, "filter_policy_scope");
    if (sv) {
        const char *s = json_string_value(sv);
        if (s && strcmp(s, "MessageBody") == 0)
            scope = FILTER_SCOPE_BODY;
        else if (!s || strcmp(s, "MessageAttributes") != 0)
            return fault(r, "\"%s\" must be \"MessageAttributes\" or \"MessageBody\"",
                         "filter_policy_scope");
    }
    json_t *pv = json_object_get(o, "filter_policy");
    if (!pv)
        return true;
    char why[256];
    sub->policy = filter_policy_compile_json(pv, scope, why, sizeof why);
    return sub->policy ? true : fault(r, "filter_policy: %s", why);
}

static bool read_consumer(reader *r, json_t *o, consumer_config *cc)
{
    static const char *const keys[] = {
        "name", "action", "filter_patterns", "batch_size", "maximum_retry_attempts", NULL};
    cc->batch_size = 100;
    cc->maximum_retry_attempts = 5;
    snprintf(cc->action, sizeof cc->action, "publish");
    if (!only_keys(r, o, keys) || !read_name(r, o, "name", true, cc->name, sizeof cc->name) ||
        !read_name(r, o, "action", false, cc->action, sizeof cc->action) ||
        !read_uint(r, o, "batch_size", 1, 10000, NULL, &cc->batch_size) ||
        !read_uint(r, o, "maximum_retry_attempts", 0, 10000, NULL, &cc->maximum_retry_attempts))
        return false;
    if (strcmp(cc->action, "publish") != 0)
        return fault(r, "unknown action \"%s\" (known: publish)", cc->action);
    json_t *pv = json_object_get(o, "filter_patterns");
    if (!pv)
        return true;
    if (!json_is_array(pv) || json_array_size(pv) > 10)
        return fault(r, "\"%s\" must be an array of at most 10 patterns", "filter_patterns");
    char *texts[10] = {0};
    size_t n = json_array_size(pv);
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++) {
        texts[i] = json_to_text(json_array_get(pv, i)); /* numbers read back the same */
        ok = texts[i] != NULL;
    }
    char why[256] = "out of memory";
    if (ok)
        cc->filter = filter_set_compile((const char *const *)texts, n, why, sizeof why);
    for (size_t i = 0; i < n; i++)
        free(texts[i]);
    return cc->filter ? true : fault(r, "filter_patterns: %s", why);
}

static bool read_handler(reader *r, json_t *o, handler_config *h)
{
    static const char *const keys[] = {"queue",       "handler", "command",   "batch_size",
                                       "concurrency", "timeout", "cpu_limit", "memory_limit",
                                       "open_files",  NULL};
    static const char *const exec_only[] = {"command", "cpu_limit", "memory_limit", "open_files"};
    h->batch_size = 1;
    h->concurrency = 1;
    h->timeout = 30;
    if (!only_keys(r, o, keys) || !read_name(r, o, "queue", true, h->queue, sizeof h->queue) ||
        !read_name(r, o, "handler", true, h->handler, sizeof h->handler) ||
        !read_uint(r, o, "batch_size", 1, 1000, NULL, &h->batch_size) ||
        !read_uint(r, o, "concurrency", 1, 256, NULL, &h->concurrency) ||
        !read_uint(r, o, "timeout", 1, 12 * 3600, "seconds", &h->timeout) ||
        !read_uint(r, o, "cpu_limit", 1, 12 * 3600, "CPU seconds", &h->cpu_limit) ||
        !read_uint(r, o, "memory_limit", 16, 1u << 20, "MiB", &h->memory_limit) ||
        !read_uint(r, o, "open_files", 16, 1u << 20, "open files", &h->open_files))
        return false;
    bool is_exec = strcmp(h->handler, "exec") == 0;
    for (size_t i = 0; !is_exec && i < sizeof exec_only / sizeof exec_only[0]; i++)
        if (json_object_get(o, exec_only[i]))
            return fault(r, "\"%s\" is only for the exec handler", exec_only[i]);
    json_t *cmd = json_object_get(o, "command");
    if (!cmd)
        return is_exec ? fault(r, "\"%s\" (an argv array) is required for exec", "command") : true;
    if (!json_is_array(cmd) || json_array_size(cmd) == 0 || json_array_size(cmd) > 256)
        return fault(r, "\"%s\" must be a non-empty array of strings (argv)", "command");
    h->command = calloc(json_array_size(cmd) + 1, sizeof *h->command);
    if (!h->command)
        return fault(r, "%s", "out of memory");
    for (size_t i = 0; i < json_array_size(cmd); i++) {
        const char *s = json_string_value(json_array_get(cmd, i));
        if (!s)
            return fault(r, "\"%s\" must be a non-empty array of strings (argv)", "command");
        if (!(h->command[i] = strdup(s)))
            return fault(r, "%s", "out of memory");
    }
    return true;
}

/* Read one array section into items via read_item; replaces the defaults. */
#define READ_SECTION(c, v, file, err, errlen, name, items, count, read_item)                       \
    do {                                                                                           \
        reader r_ = {file, name, 0, err, errlen};                                                  \
        if (!json_is_array(v) || json_array_size(v) > CONFIG_MAX_ITEMS) {                          \
            errbuf_set(err, errlen, "%s: %s must be an array of at most %d objects", file, name,   \
                       CONFIG_MAX_ITEMS);                                                          \
            return false;                                                                          \
        }                                                                                          \
        (count) = 0;                                                                               \
        for (r_.index = 0; r_.index < json_array_size(v); r_.index++) {                            \
            memset(&(items)[r_.index], 0, sizeof(items)[0]);                                       \
            (count)++;                                                                             \
            if (!read_item(&r_, json_array_get(v, r_.index), &(items)[r_.index]))                  \
                return false;                                                                      \
        }                                                                                          \
    } while (0)

/* Check the references between sections. */
/* Which of the sections that have defaults the file gave. */
typedef struct given_sections {
    bool subscriptions, handlers;
} given_sections;

/* How an error names entry i of a section: "handlers[0]", or, when the file did not give the
 * section, the default entry it kept (which the file does not show). */
static const char *entry_name(char *buf, size_t size, const char *section, size_t i, bool given)
{
    if (given)
        snprintf(buf, size, "%s[%zu]", section, i);
    else
        snprintf(buf, size, "the default %s[%zu] (no \"%s\" given)", section, i, section);
    return buf;
}

const queue_config *config_dead_letter_source(const config *c, const queue_config *q)
{
    for (size_t k = 0; k < c->n_queues; k++)
        if (strcmp(c->queues[k].dead_letter_queue, q->name) == 0)
            return &c->queues[k];
    return NULL;
}

static bool check_pipeline(const config *c, const given_sections *given, const char *file,
                           char *err, size_t errlen)
{
    char entry[96], other[96];
    for (size_t i = 0; i < c->n_queues; i++) {
        const queue_config *q = &c->queues[i];
        for (size_t j = 0; j < i; j++)
            if (strcmp(c->queues[j].name, q->name) == 0) {
                errbuf_set(err, errlen, "%s: queue \"%s\" is declared twice", file, q->name);
                return false;
            }
        if (q->delay >= q->retention) {
            errbuf_set(err, errlen,
                       "%s: queue \"%s\": delay (%u s) must be shorter than retention (%u s); "
                       "every message would expire before it could be received",
                       file, q->name, q->delay, q->retention);
            return false;
        }
        if (*q->dead_letter_queue && (strcmp(q->dead_letter_queue, q->name) == 0 ||
                                      !config_queue(c, q->dead_letter_queue))) {
            errbuf_set(err, errlen,
                       "%s: queue \"%s\": dead_letter_queue \"%s\" must be another "
                       "declared queue",
                       file, q->name, q->dead_letter_queue);
            return false;
        }
        /* a redrive sends a dead-letter queue's messages back to the one queue it serves */
        for (size_t j = 0; j < i && *q->dead_letter_queue; j++)
            if (strcmp(c->queues[j].dead_letter_queue, q->dead_letter_queue) == 0) {
                errbuf_set(err, errlen,
                           "%s: queues \"%s\" and \"%s\" share the dead_letter_queue \"%s\"; "
                           "a redrive could not tell their messages apart: give each its own",
                           file, c->queues[j].name, q->name, q->dead_letter_queue);
                return false;
            }
    }
    /* Following dead_letter_queue from any queue must end: a cycle would send a queue's
     * messages round, and a redrive of one queue would empty the other. */
    for (size_t i = 0; i < c->n_queues; i++) {
        const queue_config *q = &c->queues[i];
        /* a queue that leads into a cycle without being on it is reported by the cycle's own */
        for (size_t hops = 0; q && *q->dead_letter_queue && hops <= c->n_queues; hops++) {
            q = config_queue(c, q->dead_letter_queue);
            if (q == &c->queues[i]) {
                errbuf_set(err, errlen,
                           "%s: queue \"%s\": its dead-letter queues lead back to it (a cycle)",
                           file, c->queues[i].name);
                return false;
            }
        }
    }
    for (size_t i = 0; i < c->n_subscriptions; i++) {
        const char *at = entry_name(entry, sizeof entry, "subscriptions", i, given->subscriptions);
        const queue_config *q = config_queue(c, c->subscriptions[i].queue);
        if (!q) {
            errbuf_set(err, errlen, "%s: %s: no queue \"%s\"", file, at, c->subscriptions[i].queue);
            return false;
        }
        /* what a dead-letter queue holds are its queue's dead letters: a message routed there
         * would count as one, and a redrive would send it to a queue it was never routed to */
        const queue_config *source = config_dead_letter_source(c, q);
        if (source) {
            errbuf_set(err, errlen,
                       "%s: %s: queue \"%s\" is the dead-letter queue of queue \"%s\"; subscribe "
                       "a queue of its own",
                       file, at, q->name, source->name);
            return false;
        }
    }
    for (size_t i = 0; i < c->n_consumers; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(c->consumers[i].name, c->consumers[j].name) == 0) {
                errbuf_set(err, errlen, "%s: stream consumer \"%s\" is declared twice", file,
                           c->consumers[i].name);
                return false;
            }
    for (size_t i = 0; i < c->n_handlers; i++) {
        const char *at = entry_name(entry, sizeof entry, "handlers", i, given->handlers);
        const handler_config *h = &c->handlers[i];
        const queue_config *q = config_queue(c, h->queue);
        if (!q) {
            errbuf_set(err, errlen, "%s: %s: no queue \"%s\"", file, at, h->queue);
            return false;
        }
        /* a dead letter's task is FAILED as it arrives: a handler could never claim it, and
         * would drop (delete) every dead letter, leaving nothing to look at or redrive */
        const queue_config *source = config_dead_letter_source(c, q);
        if (source) {
            errbuf_set(err, errlen,
                       "%s: %s: queue \"%s\" is the dead-letter queue of queue \"%s\"; its "
                       "tasks have FAILED, no handler can run them (redrive them instead: "
                       "POST /queues/%s/redrive)",
                       file, at, q->name, source->name, source->name);
            return false;
        }
        /* a queue's messages go to one handler, as an AWS worker function serves one queue: two
         * would each take whichever task came first */
        for (size_t j = 0; j < i; j++)
            if (strcmp(c->handlers[j].queue, h->queue) == 0) {
                errbuf_set(err, errlen,
                           "%s: %s: queue \"%s\" has a handler already (%s); give it one "
                           "binding, with the concurrency it needs",
                           file, at, h->queue,
                           entry_name(other, sizeof other, "handlers", j, given->handlers));
                return false;
            }
        /* the runner extends a batch's visibility as it goes, but one task must fit */
        if (h->timeout > q->visibility_timeout) {
            errbuf_set(err, errlen,
                       "%s: %s: timeout (%u s) exceeds the "
                       "visibility_timeout of queue \"%s\" (%u s); messages would be redelivered "
                       "while still running",
                       file, at, h->timeout, q->name, q->visibility_timeout);
            return false;
        }
    }
    return true;
}

static bool load_root(config *c, json_t *root, const char *name, char *err, size_t errlen)
{
    if (!json_is_object(root)) {
        errbuf_set(err, errlen, "%s: the configuration must be a JSON object", name);
        return false;
    }
    given_sections given = {0};
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v)
    {
        int64_t n;
        if (strcmp(key, "task_types") == 0) {
            if (!load_task_types(c, v, name, err, errlen))
                return false;
        } else if (strcmp(key, "body_limit") == 0) {
            if (!load_positive(v, key, 64, 64 * 1024 * 1024, "bytes", &n, name, err, errlen))
                return false;
            c->body_limit = (size_t)n;
        } else if (strcmp(key, "retention_grace") == 0) {
            if (!load_positive(v, key, 0, INT32_MAX, "seconds", &n, name, err, errlen))
                return false;
            c->retention_grace = n;
        } else if (strcmp(key, "event_replay") == 0) {
            if (!load_positive(v, key, 0, 86400, "seconds", &n, name, err, errlen))
                return false;
            c->event_replay = (unsigned)n;
        } else if (strcmp(key, "event_ping_interval") == 0) {
            /* no longer than 15 s: the dashboard takes a stream silent for 35 s as dropped */
            if (!load_positive(v, key, 1, 15, "seconds", &n, name, err, errlen))
                return false;
            c->event_ping_interval = (unsigned)n;
        } else if (strcmp(key, "sweep_interval") == 0) {
            if (!load_positive(v, key, 1, 86400, "seconds", &n, name, err, errlen))
                return false;
            c->sweep_interval = (unsigned)n;
        } else if (strcmp(key, "claim_timeout") == 0) {
            if (!load_positive(v, key, 0, 30 * 86400, "seconds", &n, name, err, errlen))
                return false;
            c->claim_timeout = (unsigned)n;
        } else if (strcmp(key, "shutdown_grace") == 0) {
            if (!load_positive(v, key, 0, 3600, "seconds", &n, name, err, errlen))
                return false;
            c->shutdown_grace = (unsigned)n;
        } else if (strcmp(key, "max_waiters") == 0) {
            if (!load_positive(v, key, 0, 100000, NULL, &n, name, err, errlen))
                return false;
            c->max_waiters = (unsigned)n;
        } else if (strcmp(key, "max_event_clients") == 0) {
            if (!load_positive(v, key, 0, 10000, NULL, &n, name, err, errlen))
                return false;
            c->max_event_clients = (unsigned)n;
        } else if (strcmp(key, "event_buffer_bytes") == 0) {
            if (!load_positive(v, key, 1024, 64 * 1024 * 1024, "bytes", &n, name, err, errlen))
                return false;
            c->event_buffer_bytes = (size_t)n;
        } else if (strcmp(key, "max_connections") == 0) {
            if (!load_positive(v, key, 0, 1000000, NULL, &n, name, err, errlen))
                return false;
            c->max_connections = (unsigned)n;
        } else if (strcmp(key, "max_connections_per_client") == 0) {
            if (!load_positive(v, key, 0, 1000000, NULL, &n, name, err, errlen))
                return false;
            c->max_connections_per_client = (unsigned)n;
        } else if (strcmp(key, "client_ipv6_prefix") == 0) {
            if (!load_positive(v, key, 32, 128, "bits", &n, name, err, errlen))
                return false;
            c->client_ipv6_prefix = (unsigned)n;
        } else if (strcmp(key, "max_body_memory") == 0) {
            if (!load_positive(v, key, 64, (int64_t)64 * 1024 * 1024 * 1024, "bytes", &n, name, err,
                               errlen))
                return false;
            c->max_body_memory = (size_t)n;
        } else if (strcmp(key, "max_in_flight") == 0) {
            if (!load_positive(v, key, 1, 1000000, NULL, &n, name, err, errlen))
                return false;
            c->max_in_flight = (unsigned)n;
        } else if (strcmp(key, "header_timeout") == 0) {
            if (!load_positive(v, key, 1, 3600, "seconds", &n, name, err, errlen))
                return false;
            c->header_timeout = (unsigned)n;
        } else if (strcmp(key, "body_timeout") == 0) {
            if (!load_positive(v, key, 1, 3600, "seconds", &n, name, err, errlen))
                return false;
            c->body_timeout = (unsigned)n;
        } else if (strcmp(key, "idle_timeout") == 0) {
            if (!load_positive(v, key, 1, 3600, "seconds", &n, name, err, errlen))
                return false;
            c->idle_timeout = (unsigned)n;
        } else if (strcmp(key, "min_send_rate") == 0) {
            if (!load_positive(v, key, 1, 1073741824, "bytes", &n, name, err, errlen))
                return false;
            c->min_send_rate = (unsigned)n;
        } else if (strcmp(key, "topic") == 0) {
            const char *t = json_string_value(v);
            if (!t || !valid_type_name(t)) {
                errbuf_set(err, errlen,
                           "%s: topic must be 1-64 characters of letters, digits, "
                           "'_', '-', '.'",
                           name);
                return false;
            }
            snprintf(c->topic, sizeof c->topic, "%s", t);
        } else if (strcmp(key, "queues") == 0) {
            READ_SECTION(c, v, name, err, errlen, "queues", c->queues, c->n_queues, read_queue);
        } else if (strcmp(key, "subscriptions") == 0) {
            given.subscriptions = true;
            clear_subscriptions(c);
            READ_SECTION(c, v, name, err, errlen, "subscriptions", c->subscriptions,
                         c->n_subscriptions, read_subscription);
        } else if (strcmp(key, "stream_consumers") == 0) {
            clear_consumers(c);
            READ_SECTION(c, v, name, err, errlen, "stream_consumers", c->consumers, c->n_consumers,
                         read_consumer);
        } else if (strcmp(key, "handlers") == 0) {
            given.handlers = true;
            clear_handlers(c);
            READ_SECTION(c, v, name, err, errlen, "handlers", c->handlers, c->n_handlers,
                         read_handler);
        } else {
            errbuf_set(err, errlen, "%s: unknown key \"%s\"", name, key);
            return false;
        }
    }
    settle_retention(c);
    return check_pipeline(c, &given, name, err, errlen);
}

/* Keep an error message on one line, as config.h promises (a newline in a JSON key); false. */
static bool one_line(char *err, size_t errlen)
{
    errbuf_one_line(err, errlen);
    return false;
}

/* A configuration file past this is refused unread: far beyond any, and a bound on /dev/zero. */
#define CONFIG_FILE_MAX (16u << 20)

/* Parse text[0..len) (a UTF-8 byte order mark first is skipped, as an editor may write one). */
static bool load_text(config *c, const char *text, size_t len, const char *name, char *err,
                      size_t errlen)
{
    if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0) {
        text += 3;
        len -= 3;
    }
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        errbuf_set(err, errlen, "%s:%d:%d: %s", name, jerr.line, jerr.column, jerr.text);
        return one_line(err, errlen);
    }
    bool ok = load_root(c, root, name, err, errlen);
    json_decref(root);
    return ok || one_line(err, errlen);
}

bool config_load_text(config *c, const char *text, const char *name, char *err, size_t errlen)
{
    return load_text(c, text, strlen(text), name, err, errlen);
}

/* The file's whole text into *out (free it); NULL, or why it cannot be read, said plainly. */
static const char *read_whole(const char *path, char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    struct stat st;
    if (stat(path, &st) != 0)
        return strerror(errno);
    if (S_ISDIR(st.st_mode))
        return "it is a directory";
    if (S_ISREG(st.st_mode) && (uintmax_t)st.st_size >= CONFIG_FILE_MAX)
        return "it is 16 MiB or larger";
    FILE *f = fopen(path, "re"); /* a pipe or a device: read up to the bound */
    if (!f)
        return strerror(errno);
    const char *why = NULL;
    size_t cap = 0;
    for (;;) {
        if (*len == cap) {
            char *grown = cap < CONFIG_FILE_MAX ? realloc(*out, cap = cap ? cap * 2 : 4096) : NULL;
            if (!grown) {
                why = cap < CONFIG_FILE_MAX ? "out of memory" : "it is 16 MiB or larger";
                break;
            }
            *out = grown;
        }
        size_t n = fread(*out + *len, 1, cap - *len, f);
        *len += n;
        if (n == 0) {
            if (ferror(f))
                why = strerror(errno);
            break;
        }
    }
    fclose(f);
    if (why) {
        free(*out);
        *out = NULL;
    }
    return why;
}

bool config_load_file(config *c, const char *path, char *err, size_t errlen)
{
    char *text;
    size_t len;
    const char *why = read_whole(path, &text, &len);
    if (why) {
        errbuf_set(err, errlen, "%s: cannot read the configuration: %s", path, why);
        return one_line(err, errlen);
    }
    bool ok = load_text(c, text ? text : "", len, path, err, errlen);
    free(text);
    return ok;
}

bool config_has_task_type(const config *c, const char *name)
{
    for (size_t i = 0; i < c->n_task_types; i++)
        if (strcmp(c->task_types[i], name) == 0)
            return true;
    return false;
}

const queue_config *config_queue(const config *c, const char *name)
{
    for (size_t i = 0; i < c->n_queues; i++)
        if (strcmp(c->queues[i].name, name) == 0)
            return &c->queues[i];
    return NULL;
}

void config_free(config *c)
{
    clear_types(c);
    clear_pipeline(c);
}
