/*
 * publish_role — the `publish` Lambda role: DynamoDB Streams records in, one
 * SNS message per new task out, and a partial batch response back.
 *
 * The event is {"Records": [...]} from the table's stream. Each record goes
 * through the publisher (publisher.h) for the configuration's first stream
 * consumer whose action is `publish` — the very step the local stream
 * consumer runs: its filter patterns (applied again here; the event source
 * mapping's filter may be the same or absent), the message (the task's data
 * as the body; TaskId, TaskType, traceparent and, when the task has one,
 * tracestate attributes) and the `process
 * <consumer>` / `publish <topic>` spans in the task's trace (the publish
 * span's messaging.system is SNS's, aws.sns, and it names the PublishBatch
 * call that carried its message). Records that
 * make no message (a MODIFY or REMOVE, the store's own key and meta items,
 * which have no task_type) are skipped. So is the INSERT of a task whose
 * image cannot be made a message (none, as a stream of keys only carries,
 * or its data not a map): no retry would read it better; it is logged at
 * ERROR with its task id and sequence number, for its task stays CREATED.
 * The messages go to the topic with PublishBatch, in record order (sns.h).
 *
 * The answer is {"batchItemFailures": [...]}: empty when every message was
 * published, else the SequenceNumber of the first record whose message was
 * not. The event source mapping then checkpoints before that record and
 * sends it and everything after it again, so nothing after the first
 * failure is sent in this invocation, and the records before it are done.
 * (A record after it that was published in the same PublishBatch call is
 * published again on the retry: delivery is at least once.) When the record
 * that failed has no SequenceNumber to report, the whole invocation fails,
 * and so the whole batch is retried.
 *
 * A message SNS refuses as invalid (InvalidParameter and the like, for its
 * entry) can never go out: its task, unless someone claimed it, is failed,
 * with the reason, in the store, and its record is not reported (it would
 * hold the shard until the stream drops it); a task the store cannot fail
 * then (busy, in error) is reported, as a message SNS did not take is.
 *
 * Failures of the invocation: an event that is not a stream event (no
 * Records array, or a record of another source than the stream's or the
 * recover role's: a queue's mapping, an SNS subscription or another trigger
 * pointed here, whose records, passed over, would be dropped unread, a
 * queue's messages deleted) is Runtime.InvalidEvent, with what it is
 * (stream_event.h); one that could not be read for want of memory is
 * Runtime.OutOfMemory, as is a batch too large to hold; an unreportable
 * failure is Publish.Failed.
 *
 * Every SNS call is bounded by the invocation's deadline less
 * PUBLISH_RESERVE_MS, which is left for answering Lambda.
 */
#ifndef TASKD_PUBLISH_ROLE_H
#define TASKD_PUBLISH_ROLE_H

#include "aws_http.h"
#include "core/config.h"
#include "role.h"
#include "trace/trace.h"

/* Time kept back from the invocation's deadline for posting the response. */
#define PUBLISH_RESERVE_MS 500

/* What the error of an event that is no stream event says ahead of its reason (stream_event.h),
 * and the room for that reason: what the error message leaves after it, so that a reason too
 * long is cut once, at the message's end. */
#define PUBLISH_NOT_STREAM "not a DynamoDB stream event: "
#define PUBLISH_REASON_SIZE                                                                        \
    (sizeof(((role_result *)0)->error_message) - (sizeof PUBLISH_NOT_STREAM - 1))

/*
 * The role over configuration c, the SNS client sns, the topic's ARN and
 * the store tasks, where the task of a message SNS refuses as invalid is
 * failed with its reason (all borrowed: the role keeps a copy of c, whose
 * pointers stay the caller's, and of topic_arn); spans go to tel. NULL
 * with a reason in err when c has no stream consumer with action publish,
 * the ARN is empty, there is no store, or out of memory.
 */
role *publish_role_new(const config *c, aws_client *sns, const char *topic_arn, store *tasks,
                       const telemetry *tel, char *err, size_t errlen);

#endif
