/*
 * recover_role — the `recover` Lambda role: new tasks whose stream records were never published
 * (the stream dropped them, 24 h after they failed to go out), published again.
 *
 * The publish function's stream mapping retries a record SNS did not take until it is published,
 * for as long as the stream keeps it: 24 h. A record it drops unpublished is reported to the
 * publish-failures queue, without the record itself: the shard, the sequence numbers and the
 * approximate arrival times of the first and last records of the batch
 * ({"DDBStreamBatchInfo": {"approximateArrivalOfFirstRecord": "2026-12-05T06:00:00Z",
 * "approximateArrivalOfLastRecord": ...}}). Their tasks would stay CREATED for good. This role
 * reads that queue: for each such message it lists the tasks still CREATED, of every configured
 * type, made in that window (widened by RECOVER_MARGIN_MS on both sides, as arrival times are
 * approximate and ids come from the API functions' clocks, and by RECOVER_CREATE_MS more before
 * it, as a write may land that long after its id was made), and hands each, as the INSERT
 * record the stream had (change_record.h, the task's image), to the publish role: the same
 * filter, message, spans and failure handling. An operator can send such a message by hand to
 * publish again the new tasks of any window.
 *
 * A task that is still CREATED because its message waits in a queue is published again as well:
 * delivery is at least once, and the claim of the copy that comes second gets 409, so it is
 * dropped. A window is listed newest first, a page of each task type in turn (a type with
 * many tasks still CREATED, as one no subscription takes keeps them, does not hold the others
 * back until the deadline).
 *
 * The event is an SQS event; the answer {"batchItemFailures": [...]} names each message whose
 * window was not wholly published (the publish role reported a failure, the store failed, or the
 * invocation's deadline came first, or its body could not be parsed for want of memory): SQS
 * gives it again, and its tasks still CREATED are published again then. A message whose body is
 * not such a report is logged and dropped (no retry would read it). An event that is not an SQS
 * event, or a record without a messageId (sqs_record_read()), is Runtime.InvalidEvent; an event
 * that could not be parsed for want of memory is Runtime.OutOfMemory.
 */
#ifndef TASKD_RECOVER_ROLE_H
#define TASKD_RECOVER_ROLE_H

#include "aws_http.h"
#include "core/config.h"
#include "role.h"
#include "store/store.h"
#include "trace/trace.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How far a window is widened on each side, in milliseconds: arrival times are given to the
 * second, and an id takes the time of its API function's clock. */
#define RECOVER_MARGIN_MS 5000
/* How much further its early side is widened: the longest from a create's id to its write. The
 * store retries a create's write under the id it made first (throttled, or a 5xx answer) until
 * the api function's deadline: its Timeout, at most this (scripts/check-serverless.py reads it
 * here) and at most 25 s, which leaves a cold start room before API Gateway gives up, at 29 s. */
#define RECOVER_CREATE_MS 25000
/* Records handed to the publish role at a time (one SNS PublishBatch call per 10). */
#define RECOVER_BATCH 100

/*
 * The role: the publish role over c, sns, topic_arn, tasks and tel (publish_role_new(), which
 * says what each is), and the store tasks read to find what to publish. NULL with a reason in err
 * as publish_role_new() fails, or out of memory.
 */
role *recover_role_new(const config *c, aws_client *sns, const char *topic_arn, store *tasks,
                       const telemetry *tel, char *err, size_t errlen);

/*
 * The window of a publish-failures message's body (parsed; NULL: the body is not JSON): the
 * approximate arrival times of its batch's first and last records (ISO 8601 UTC,
 * "2026-12-05T06:00:00Z", with or without a fraction of a second) into *first_ms and *last_ms,
 * Unix milliseconds. False, with a one-line reason in why, when it is not such a report: no
 * retry would read it.
 */
bool recover_window(const json_t *body, int64_t *first_ms, int64_t *last_ms, char *why,
                    size_t whylen);

#endif
