/*
 * publisher — what a publishing stream consumer does with one change record,
 * and where the topic delivers the message. Transport-neutral: records in,
 * messages, spans and routes out; no store, no broker. The local stream
 * consumer and the Lambda `publish` role call the same functions and differ
 * only in how they send (a broker transaction with the checkpoint, or SNS
 * PublishBatch calls) and in who routes (the local topic here, SNS there).
 *
 * A record that passes the consumer's filter patterns and is a complete
 * INSERT becomes one message: body = the task's data as JSON, attributes
 * TaskId and TaskType (String) and traceparent (the publish span's context,
 * below), kept as fields and built as JSON for a transport that wants them
 * so (publish_message_attributes()). The topic hands it to every
 * subscription whose filter policy matches (attributes or body, per the
 * policy's scope).
 *
 * Tracing: publisher_begin() opens two spans in the task's trace — `process
 * <consumer>` (CONSUMER, child of the context stored with the task, a new
 * trace when there is none) and `publish <topic>` (PRODUCER, its child, whose
 * messaging.system is the configuration's topic_system: "taskd" locally,
 * "aws.sns" on AWS) — and puts the producer's context in the message, where
 * the queue's consumer finds its parent. Both stay open while the caller
 * sends, and publisher_finish() ends them (ERROR when the send failed), so
 * their times cover the send.
 *
 * A publication owns its message and its spans from publisher_begin() to
 * publisher_finish(); it is used by one thread at a time.
 */
#ifndef TASKD_PUBLISHER_H
#define TASKD_PUBLISHER_H

#include "core/config.h"
#include "core/task.h"
#include "trace/trace.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct publish_message {
    char task_id[TASK_ID_LEN + 1];
    char task_type[TASK_TYPE_MAX + 1];
    char *body; /* owned JSON text: the task's data */
    /* owned JSON {"TaskId": {"Type": "String", "Value": "..."}, ...}, for a transport that takes
     * them so (SNS): NULL until publish_message_attributes() builds it */
    char *attributes;
    char *trace;      /* owned traceparent, or NULL */
    char *tracestate; /* owned W3C tracestate that goes with trace (the task's), or NULL */
} publish_message;

/* One record on its way to the topic: its message and the spans that cover it. */
typedef struct publication {
    publish_message message; /* trace and traceparent attribute: the publish span's context */
    span process;            /* CONSUMER `process <consumer>`: child of the task's stored context */
    span publish;            /* PRODUCER `publish <topic>`: child of process */
    const char *unreadable;  /* PUBLISH_UNREADABLE: why (static text) */
} publication;

/* What publisher_begin() made of a record. */
typedef enum publish_outcome {
    PUBLISH_SKIPPED,   /* filtered out, or not an INSERT: nothing to send or finish */
    PUBLISH_READY,     /* the publication is open: send its message, then publisher_finish() */
    PUBLISH_NO_MEMORY, /* out of memory: nothing to finish; the record has to be tried again */
    /* an INSERT the patterns let through that makes no message (no task id, type or data, one
     * that does not fit a task, data that is not an object: a damaged or hand-edited database);
     * its unreadable says why. Nothing to finish; no retry reads it better */
    PUBLISH_UNREADABLE,
} publish_outcome;

/*
 * Begin publishing one change record (a DynamoDB Streams record; borrowed for
 * the call) for consumer cc of configuration c: check cc's filter patterns,
 * build the message, open its spans. batch_size is the number of records
 * the consumer received together with this one (messaging.batch.message_count).
 * *p holds something only on PUBLISH_READY (else it is left empty, but
 * for the reason of PUBLISH_UNREADABLE); its spans borrow names from c and
 * cc, which must outlive it.
 */
publish_outcome publisher_begin(const config *c, const consumer_config *cc, const json_t *record,
                                size_t batch_size, publication *p);
/* A created task's fields, borrowed: what an INSERT record's message is made of. */
typedef struct publish_source {
    const char *task_id;
    const char *task_type;
    const char *data;       /* the task's data, JSON text */
    const char *trace;      /* the creating request's traceparent, or NULL */
    const char *tracestate; /* the tracestate that came with it, or NULL */
} publish_source;
/*
 * Whether cc's filter patterns look at nothing but eventName, so that an
 * INSERT's fields are all publisher_begin_insert() needs: a reader can then
 * skip building and parsing whole records.
 */
bool publisher_takes_fields(const consumer_config *cc);
/*
 * publisher_begin() for an INSERT given by its fields, for a consumer whose
 * patterns publisher_takes_fields() (they are checked against eventName
 * alone). The same message and spans as from the whole record.
 */
publish_outcome publisher_begin_insert(const config *c, const consumer_config *cc,
                                       const publish_source *src, size_t batch_size,
                                       publication *p);
/*
 * The local topic's fan-out for an open publication: its queues, as
 * topic_route() finds them (at most max, in *n), each also named on the
 * publish span (taskd.queue); false when out of memory. A topic that routes
 * by itself (SNS) skips this.
 */
bool publisher_route(const config *c, publication *p, const queue_config **out, size_t max,
                     size_t *n);
/*
 * End the publication's spans — publish, then process — marked failed with
 * error unless it is NULL (the message was sent), hand them to t's tracer,
 * and free the message. *p is then empty (a zeroed one is fine too).
 */
void publisher_finish(const telemetry *t, publication *p, const char *error);

/*
 * The message for an INSERT record, with its attributes built; false (and
 * nothing to free) when the record is not an INSERT or lacks the task's id,
 * type or data, or when out of memory.
 */
bool publisher_message(const json_t *record, publish_message *out);
/* Free what m owns and clear its pointers; twice is harmless. */
void publish_message_free(publish_message *m);
/* Replace the message's trace context (the producer's span), in its attributes too if they are
 * built; false when out of memory. */
bool publish_message_set_trace(publish_message *m, const char *traceparent);
/*
 * Build m->attributes from the message's task id, type and trace: TaskId, TaskType,
 * traceparent and (when there is one) tracestate as String attributes, four of SNS's ten. The local
 * broker keeps the fields themselves; SNS takes the attributes. False when out of memory.
 */
bool publish_message_attributes(publish_message *m);
/* Every attribute name a message may carry (NULL-terminated): the ones this builds. */
extern const char *const publish_attribute_names[];

/*
 * The queues whose subscriptions match m, in subscription order, at most
 * max, in *n; a queue subscribed twice appears once. False when out of
 * memory (a policy on the message body could not be tried): not "none".
 */
bool topic_route(const config *c, const publish_message *m, const queue_config **out, size_t max,
                 size_t *n);
/*
 * False when no subscription can route a task of this type to a queue: every one's filter
 * policy refuses its TaskType whatever else the message carries (a policy on the message body
 * may route it, as far as this can tell).
 */
bool topic_may_route_type(const config *c, const char *task_type);
/* False when no stream consumer of c publishes new tasks (action publish, a filter that may let
 * an INSERT through): then nothing reaches the topic. */
bool publisher_may_publish_inserts(const config *c);

#endif
