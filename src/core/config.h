/*
 * config — the product configuration: what tasks exist, the limits the API
 * enforces, and the pipeline: the topic, queues with their dead-letter
 * queues, subscriptions with filter policies, stream consumers with filter
 * patterns and handler bindings. Loaded from a JSON file (see README
 * "Configuration"); every field has a default, and no file at all reproduces
 * the original service: TASK1 tasks flow to queue task1 and its demo handler, TASK2 and
 * TASK3 have no subscriber and stay CREATED.
 *
 * Process settings (listen address, database path, sync mode) are not here:
 * they are flags of the program that runs the API.
 */
#ifndef TASKD_CONFIG_H
#define TASKD_CONFIG_H

#include "filter.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_MAX_TASK_TYPES 64
#define CONFIG_MAX_ITEMS      32 /* queues, subscriptions, consumers, handlers each */
#define CONFIG_NAME_MAX       80
#define CONFIG_RETENTION_MAX  (14 * 24 * 3600) /* a queue's retention at most (SQS's) */

/* A durable queue (SQS semantics). */
typedef struct queue_config {
    char name[CONFIG_NAME_MAX + 1];
    unsigned visibility_timeout; /* seconds a received message stays invisible */
    unsigned max_receive_count;  /* receives before the move to the DLQ (0: never) */
    char dead_letter_queue[CONFIG_NAME_MAX + 1]; /* "" for none */
    unsigned delay;                              /* seconds before a new message becomes visible */
    unsigned retention;                          /* seconds a message is kept at most */
    unsigned dead_letter_retention; /* the dead-letter queue's retention (set at load) */
} queue_config;

/* A subscription of a queue to the topic. */
typedef struct subscription_config {
    char queue[CONFIG_NAME_MAX + 1];
    filter_policy *policy; /* owned; NULL delivers everything */
} subscription_config;

/* A stream consumer: reads change records through a filter. */
typedef struct consumer_config {
    char name[CONFIG_NAME_MAX + 1];   /* also the checkpoint's name */
    char action[CONFIG_NAME_MAX + 1]; /* "publish": matching INSERTs go to the topic */
    filter_set *filter;               /* owned; NULL passes every record */
    unsigned batch_size;
    unsigned maximum_retry_attempts; /* failed attempts of a batch before its record is skipped */
} consumer_config;

/* A handler bound to a queue. */
typedef struct handler_config {
    char queue[CONFIG_NAME_MAX + 1];
    char handler[CONFIG_NAME_MAX + 1]; /* "TASK1", "noop", "exec" or a compiled-in name */
    char **command;                    /* owned NULL-terminated argv, for exec */
    unsigned batch_size;               /* messages received at once */
    unsigned concurrency;              /* runner threads */
    unsigned timeout;                  /* seconds one task may run */
    /* exec only, per run; 0: the default (README, "Handlers in any language") */
    unsigned cpu_limit;    /* CPU seconds (RLIMIT_CPU); default timeout + 1 */
    unsigned memory_limit; /* MiB of data memory (RLIMIT_DATA); default 1024 */
    unsigned open_files;   /* open file descriptors (RLIMIT_NOFILE); default 1024 */
} handler_config;

typedef struct config {
    char *task_types[CONFIG_MAX_TASK_TYPES]; /* owned names */
    size_t n_task_types;
    size_t body_limit;          /* largest accepted request body, bytes */
    size_t data_limit;          /* largest task data as JSON text, bytes; 0: none (AWS: SNS's) */
    int64_t retention_grace;    /* a finished task past its ttl is kept until more than this many
                                 * seconds have passed since it finished */
    unsigned sweep_interval;    /* seconds between retention sweeps */
    unsigned shutdown_grace;    /* seconds running handlers get to finish on SIGTERM */
    unsigned max_waiters;       /* GET /tasks/{id}?wait= requests parked at once (then 503) */
    unsigned max_event_clients; /* GET /events streams open at once (then 503) */
    size_t event_buffer_bytes;  /* events buffered per client; past it the client is dropped */
    unsigned event_replay; /* seconds a change record outlives its readers, for /events resumes */
    unsigned event_ping_interval; /* seconds between the pings of a GET /events stream */
    /* seconds a client's claim (PATCH IN_PROGRESS) holds its task without an outcome, from the
     * claim or its last repeat; then the task fails. 0: for good */
    unsigned claim_timeout;
    /* The local HTTP listener's bounds (0: derived from the open-file limit, see http_server.h) */
    unsigned max_connections;            /* open client connections, in all */
    unsigned max_connections_per_client; /* open connections from one client address */
    unsigned client_ipv6_prefix;         /* the bits of an IPv6 address that name its client */
    unsigned max_in_flight;              /* requests being answered or waiting on a write */
    size_t max_body_memory;  /* bytes of request bodies held at once, every connection together */
    unsigned header_timeout; /* seconds from connecting to a complete request head */
    unsigned body_timeout;   /* seconds from the request head to the end of its body */
    unsigned idle_timeout;   /* seconds a kept-alive connection may stay silent between requests */
    unsigned min_send_rate;  /* bytes a second an answer waiting past idle_timeout must reach its
                                client at, on average */

    char topic[CONFIG_NAME_MAX + 1];
    /* What the topic is, as the publish span's messaging.system names it; not read from the
     * file: NULL is taskd's own topic ("taskd"), and the Lambda publish role sets SNS's
     * ("aws.sns") on its view of the configuration. */
    const char *topic_system;
    queue_config queues[CONFIG_MAX_ITEMS];
    size_t n_queues;
    subscription_config subscriptions[CONFIG_MAX_ITEMS];
    size_t n_subscriptions;
    consumer_config consumers[CONFIG_MAX_ITEMS];
    size_t n_consumers;
    handler_config handlers[CONFIG_MAX_ITEMS];
    size_t n_handlers;
} config;

/* Fill in the defaults: TASK1..TASK3, 1 MiB bodies, 1 h grace. */
bool config_defaults(config *c);
/*
 * Load a JSON configuration file over the defaults. Unknown keys and wrong
 * types are errors; on failure err holds one line naming the fault.
 */
bool config_load_file(config *c, const char *path, char *err, size_t errlen);
/* Same, from JSON text (name is used in messages). */
bool config_load_text(config *c, const char *text, const char *name, char *err, size_t errlen);
/* True if name is a configured task type. */
bool config_has_task_type(const config *c, const char *name);
/* The queue called name, or NULL. */
const queue_config *config_queue(const config *c, const char *name);
/* The queue whose dead-letter queue q is, or NULL. */
const queue_config *config_dead_letter_source(const config *c, const queue_config *q);
/* Release the owned strings. */
void config_free(config *c);

#endif
