/*
 * worker_role — the `worker` Lambda role: SQS events (the topic's messages,
 * delivered raw into a queue) into the step every transport shares
 * (runner/work.h), and the partial batch response back, so only the
 * messages that must come back are retried.
 *
 * A worker serves a configured queue in one of two modes, chosen from the
 * configuration when the role is made:
 *
 *   handler  the queue has a handler binding: its handler (TASK1, noop,
 *            exec or one compiled in, the same table as taskd's) is built
 *            once; each message's task is claimed (CREATED -> IN_PROGRESS,
 *            "Task started") with a conditional update through the store
 *            port, run, and reported.
 *   dead-letter  the queue has no binding but is some queue's dead-letter
 *            queue: each message's task becomes FAILED with the status
 *            message taskd's own queues write, "moved to dead-letter queue
 *            <dlq> after <n> receives" (n: the source queue's
 *            max_receive_count).
 *
 * A queue with neither is refused when the role is made (a queue has one
 * binding at most: the configuration refuses two).
 *
 * Which queue a message belongs to. With a queue name (bootstrap passes
 * QUEUE_NAME), the function serves that configured queue alone and every
 * record is taken to come from it, whatever its eventSourceARN says: the
 * deployed queue's physical name may differ from the configured one (a
 * stack prefix). Without one (NULL or ""), every servable configured queue
 * is prepared at once (handlers built once each) and each record goes to
 * the queue its eventSourceARN names (the last ':' segment), so then the
 * deployed queues must carry the configured names; a record naming no
 * served queue is logged and kept (it returns, and ends in its dead-letter
 * queue rather than being lost).
 *
 * What a record is, and what becomes of it:
 *   - messageAttributes TaskId (stringValue) names the task; TaskType,
 *     traceparent and tracestate come along (the task's stored type wins
 *     when the claim finds the task; a tracestate goes to the handler only
 *     with the traceparent it came with, and not when it breaks a rule). A
 *     record without TaskId, or with one that is no task id, is not a task
 *     message: it is spent, and said at WARNING. A queue subscribed without
 *     raw message delivery gets the SNS envelope as body; it is read too
 *     (Message, MessageAttributes.*.Value).
 *   - body is the task's data when it is a JSON object; otherwise the
 *     stored task's data is used.
 *   - A claim that finds the task IN_PROGRESS is a redelivery. When that
 *     claim is older than the binding's timeout the earlier delivery has
 *     died or overrun, and the task runs again; when it is younger, another
 *     delivery may be running it right now (SQS delivers at least once), so
 *     the message is kept and comes back later.
 *   - A task is not started unless it can finish (the binding's timeout)
 *     before the invocation's deadline minus WORKER_REPORT_MARGIN_MS; it is
 *     kept, not even claimed, and said at WARNING (once for the batch).
 *   - Spent (deleted by Lambda): done, gone, already final, not a task.
 *     Kept (listed in batchItemFailures): store trouble, a claim that may
 *     still be running, no time left, a report that could not be written.
 * Records run one after another; the binding's batch_size and concurrency
 * belong to the event source mapping and to Lambda's scaling.
 *
 * The answer is {"batchItemFailures": [{"itemIdentifier": "<messageId>"},
 * ...]} (the event source mapping needs ReportBatchItemFailures), an empty
 * list when every message is spent. An event without a Records array, or a
 * record without a messageId (which could not be reported alone), fails
 * the invocation (Runtime.InvalidEvent) and with it the whole batch; an
 * event that could not be read for want of memory fails it too, as the
 * function's fault (Runtime.OutOfMemory).
 *
 * Spans, in each task's trace (its message's traceparent): those of
 * work.h, "receive <queue>", "process <queue>", the claim and report
 * ("UPDATE tasks"), the reclaim of a task run again (an "UPDATE tasks" of
 * its own, in error when it did not take the task) and the run (named for
 * what the handler runs: "TASK1", "exec worker.py"); in dead-letter mode
 * "process <dlq>" with its "UPDATE tasks".
 */
#ifndef TASKD_WORKER_ROLE_H
#define TASKD_WORKER_ROLE_H

#include "core/config.h"
#include "role.h"
#include "store/store.h"
#include "trace/trace.h"

#include <stddef.h>

/* Time kept back from the invocation's deadline for the report and the answer. */
#define WORKER_REPORT_MARGIN_MS 1000

/*
 * The role serving queue_name (NULL or "": the queue of each record's
 * eventSourceARN, among every queue it can serve; see above) over a
 * configuration and a store (both borrowed, outliving the role); tel may be
 * NULL. NULL with a one-line reason in err: an unknown queue, a queue with
 * neither binding nor source queue, a handler that cannot be built, out of
 * memory.
 */
role *worker_role_new(const config *c, store *s, const char *queue_name, const telemetry *tel,
                      char *err, size_t errlen);

#endif
