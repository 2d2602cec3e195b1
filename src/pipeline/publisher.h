/*
 * publisher — what the publishing stream consumer does with a change
 * record, and where the topic delivers the message. Pure: records in,
 * messages and routes out, so the local stream consumer and the Lambda
 * `publish` role share it.
 *
 * A matching INSERT becomes one message: body = the task's data as JSON,
 * attributes TaskId and TaskType (String) and, when the task has one,
 * traceparent. The topic hands it to every subscription whose filter policy
 * matches (attributes or body, per the policy's scope).
 */
#ifndef TASKD_PUBLISHER_H
#define TASKD_PUBLISHER_H

#include "core/config.h"
#include "core/task.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct publish_message {
    char task_id[TASK_ID_LEN + 1];
    char task_type[TASK_TYPE_MAX + 1];
    char *body;       /* owned JSON text: the task's data */
    char *attributes; /* owned JSON: {"TaskId": {"Type": "String", "Value": "..."}, ...} */
    char *trace;      /* owned traceparent, or NULL */
} publish_message;

/*
 * The message for an INSERT record; false (and nothing to free) when the
 * record is not an INSERT or lacks the task's id, type or data.
 */
bool publisher_message(const json_t *record, publish_message *out);
void publish_message_free(publish_message *m);
/* Replace the message's trace context (the producer's span); false when out of memory. */
bool publish_message_set_trace(publish_message *m, const char *traceparent);

/*
 * The queues whose subscriptions match m, in subscription order, at most
 * max; a queue subscribed twice appears once.
 */
size_t topic_route(const config *c, const publish_message *m, const queue_config **out, size_t max);

#endif
