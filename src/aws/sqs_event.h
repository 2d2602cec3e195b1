/*
 * sqs_event — one record of an SQS event as the worker role reads it
 * (worker_role.h): which message it is, the task it names, the task's data
 * and the trace context it came with. Pure: jansson and the core, no store,
 * no network.
 *
 * A record's fields:
 *   - messageId: required (a record without one could not be reported
 *     alone in a partial batch response);
 *   - messageAttributes TaskId / TaskType / traceparent / tracestate
 *     (stringValue), raw message delivery; when there is no TaskId and the
 *     body is an SNS envelope ({"Type": "Notification", "Message": ...}),
 *     its MessageAttributes (Value) and Message instead;
 *   - body (or the envelope's Message): the task's data when it is a JSON
 *     object;
 *   - attributes ApproximateReceiveCount (1 when absent or not a count, at
 *     most 1000000, which a count past 64 bits is too), SentTimestamp (now
 *     when absent or past SQS_SENT_MS_MAX), AWSTraceHeader and
 *     DeadLetterQueueSourceArn;
 *   - eventSourceARN: the queue, its last ':' segment.
 */
#ifndef TASKD_SQS_EVENT_H
#define TASKD_SQS_EVENT_H

#include "core/task.h"
#include "core/tracectx.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The latest SentTimestamp taken as given (epoch ms, year 2262): its nanoseconds, which start the
 * receive span, fit in an int64_t with the millisecond's last nanosecond added. */
#define SQS_SENT_MS_MAX ((INT64_MAX - 999999) / 1000000)

/* One record as read. Strings are borrowed from the event's JSON or from body_doc. */
typedef struct sqs_record {
    const char *message_id;        /* never NULL or "" once read */
    char task_id[TASK_ID_LEN + 1]; /* "": not a task message */
    const char *task_type;         /* the TaskType attribute, or NULL */
    const char *data;              /* the body when it is a JSON object, else NULL */
    const char *traceparent;       /* the traceparent attribute, or NULL */
    /* the tracestate attribute in its normal form ("" when absent or it breaks a rule) */
    char tracestate[TRACECTX_TRACESTATE_MAX + 1];
    const char *xray;             /* attributes.AWSTraceHeader, or NULL */
    const char *source_arn;       /* attributes.DeadLetterQueueSourceArn, or NULL */
    const char *event_source_arn; /* the queue's ARN (sqs_queue_of_arn()), or NULL */
    int64_t sent_ms;
    int receive_count;
    /* a TaskId attribute came that is no task id (not a UUID: empty, too long, or any other
     * text); task_id is "" unless an SNS envelope inside named a good one (the flag is then not
     * read) */
    bool bad_task_id;
    json_t *body_doc; /* the parsed body (owned: json_decref), or NULL */
    /* out of memory reading it: what it holds is not known (the fields after message_id may
     * be missing); the message must come back */
    bool unread;
} sqs_record;

/*
 * Read Records[i] (r) into rec (zeroed first). False with a one-line reason
 * in err when the record cannot be answered for on its own: not an object,
 * or no messageId. True otherwise, rec->unread telling a record read only in
 * part for want of memory.
 */
bool sqs_record_read(const json_t *r, size_t i, sqs_record *rec, char *err, size_t errlen);

/* The queue name of a queue ARN: its last ':' segment (NULL for NULL). */
const char *sqs_queue_of_arn(const char *arn);

#endif
