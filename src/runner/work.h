/*
 * work — one task message through claim, run and report: the step every
 * transport shares.
 *
 * A caller receives messages its own way and claims their tasks
 * (CREATED -> IN_PROGRESS, "Task started") its own way: the local runner
 * takes both from one SQLite transaction; a Lambda worker gets an SQS event
 * and claims each task with a conditional update through the store port.
 * It then fills one work_item per message and drives the step in phases:
 *
 *   work_begin(items, n)       the batch's delivery spans; each item's fate
 *   work_run(item, group)      each item whose fate is WORK_RUN: the handler,
 *                              and its report submitted into a store_batch
 *   store_batch_wait(group)    the reports of the batch share a commit
 *   work_finish(item)          each item: spans ended; is the message spent?
 *
 * Between runs the caller does its transport's own work (the local runner
 * keeps its batch hidden, and stops starting tasks at shutdown).
 *
 * The fate follows the claim: claimed, run; the task gone, drop; found
 * IN_PROGRESS (an earlier delivery died or overran), run again; found
 * finished, drop; store trouble, keep; not made (unclaimed), keep; held by
 * a run that may still be going (held), keep. A task
 * that cannot finish before the item's deadline is not started, and a run
 * cut short by the caller's abort flag is not reported: both are kept (a
 * run that had ended on its own before the abort is reported). A message
 * is spent (the caller deletes it) when its task was dropped, or reported,
 * or found already final by the report; otherwise it must come back (the
 * caller releases it or lets its visibility timeout pass).
 *
 * Spans, in the task's trace: "receive <queue>" (from when the message was
 * sent to the receive, linking the other traces of the batch), under it
 * "process <queue>", and under that the claim and the report ("UPDATE
 * tasks") and the handler run, named for what it runs (handler.label, else
 * its name: "TASK1", "exec worker.py"). The claim's and the report's spans
 * also carry what the store tells of the write (store_trace_write(): the
 * call to a store behind a service).
 *
 * The step knows the store port, the handler interface and telemetry; no
 * queue, no database. Items are independent: one thread per item is fine,
 * as long as work_begin has seen the whole batch first.
 */
#ifndef TASKD_WORK_H
#define TASKD_WORK_H

#include "core/config.h"
#include "core/task.h"
#include "handler.h"
#include "store/store.h"
#include "trace/trace.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What is shared by every item of one handler binding; the caller owns it all. */
typedef struct work_env {
    store *store;                  /* where reports are written */
    handler *handler;              /* runs the tasks; its name names the run span */
    const handler_config *binding; /* its timeout bounds one run */
    telemetry telemetry;           /* spans and the handler duration metric; members may be NULL */
    const char *messaging_system;  /* the queues' messaging.system ("aws_sqs"); NULL: "taskd" */
    /* When the message of a run whose end is unknown (WORK_LOST), left hidden, comes back, as
     * the log says it: "once its hide ends (...)"; NULL: "after the visibility timeout". */
    const char *lost_back;
    /* The caller's shutdown flag, or NULL. When it is set as a run returns,
     * the outcome is not the task's (the handler was told to give up): the
     * task is not reported and the item is kept; unless the handler says
     * the run had come to its own end first (handler_result.own_end). */
    const atomic_bool *aborting;
} work_env;

/* What happens to an item. */
typedef enum work_fate {
    WORK_RUN,   /* run the handler and report */
    WORK_DROP,  /* nothing to do: no task, or it is gone or finished; the message is spent */
    WORK_KEEP,  /* not now: the message must come back */
    WORK_LATER, /* not now, nor at once: the message comes back after its visibility timeout */
    WORK_LOST   /* run, its end unknown: the message comes back once its hide ends (lost_back),
                 * the receive counted */
} work_fate;

/*
 * One received message. The caller fills the inputs (zero the rest: calloc, or
 * work_item_reset() for an item used before) and keeps every borrowed string
 * alive until work_finish().
 */
typedef struct work_item {
    /* in: the message */
    char id[TASK_ID_LEN + 1];     /* the task's id; "" for a message that names no task (dropped) */
    char type[TASK_TYPE_MAX + 1]; /* the task's type */
    const char *body;             /* the task's data, JSON object text; borrowed */
    const char *queue;            /* the queue's name; spans keep it uncopied: a configured name */
    bool traced;                  /* producer holds the message's trace context (its traceparent) */
    trace_ctx producer;     /* the context of the span that sent the message, its tracestate too */
    int64_t sent_ms;        /* when the message was sent, Unix milliseconds */
    int receive_count;      /* deliveries of the message, this one included */
    int64_t message_number; /* the message's id, when it is a number (the local queue's) */
    const char *message_id; /* the message's id as text (SQS), or NULL: message_number is */
    /* in: the claim, as the caller made it */
    /* no claim was made, and why (borrowed until work_begin() returns): the item is kept, and
     * no claim span shows a claim never made: the delivery's ("process <queue>") ends in error
     * with this; NULL when the claim below was made */
    const char *unclaimed;
    store_rc claim; /* the claim's outcome */
    /* the claim came back conflict on a task a run that may still be going holds, and why
     * (borrowed until work_begin() returns): the item is kept, and the claim span ends in error
     * with this; NULL otherwise */
    const char *held;
    task_status status_before; /* the task's status before the claim (when found) */
    /* the claim found the task held by a client's claim (PATCH IN_PROGRESS, with a lease):
     * theirs to finish, whatever delivery this is */
    bool client_claimed;
    bool claimed_with_receive; /* the claim rode in the receive's own transaction */
    int64_t deadline_ms;       /* Unix ms by which a run must end; 0: the binding's timeout only */
    /* the claim's write, when the caller made it through the store port (its span then shows
     * the call, store_trace_write()); NULL otherwise; borrowed until work_begin() returns */
    const store_write *claim_write;
    /* out */
    work_fate fate;
    /* the step's own, from work_begin() to work_finish() */
    bool reported; /* the report was submitted */
    handler_result result;
    store_write report;
    /* the spans last: work_item_reset() zeroes what comes before them */
    span receive, process, claim_span, run_span, report_span;
} work_item;

/* Empty an item for its next message as a zeroed one would be, without touching the unused
 * room of its spans (7.5 KiB an item, most of it never written). */
void work_item_reset(work_item *it);

/*
 * Open the delivery spans of a received batch (all its items at once, so
 * each can link the others' traces) and the claim spans, and set each
 * item's fate from its claim.
 */
void work_begin(const work_env *e, work_item *items, size_t n);
/*
 * Open a status-update span of the item (s; status: the one written): an "UPDATE tasks" under
 * its processing, as its claim's and its report's are, for a call to the store of its own
 * beside them (the AWS worker's reclaim). The caller ends it.
 */
void work_begin_update_span(const work_env *e, span *s, const work_item *it, const char *status);
/*
 * Run an item whose fate is WORK_RUN and submit its report into group. False
 * when it was not run to an outcome — too near its deadline for the
 * binding's timeout (the handler is not called), or aborted — and its fate
 * is then WORK_KEEP: the caller may hand the message back at once; or when
 * the task could not be started, or its outcome had, for want of taskd's own
 * resources (handler_result.retry), WORK_LATER: the
 * message is left hidden, to come back after its visibility timeout; or when
 * its end is unknown (handler_result.lost), WORK_LOST: left hidden, to come back once its hide
 * ends (lost_back), the receive counted.
 */
bool work_run(const work_env *e, work_item *it, store_batch *group);
/*
 * After the group is waited on (or for an item never run): end the item's
 * spans and release what the step holds. True when the message is spent
 * (delete it); false when it must come back. An item left at WORK_RUN but
 * never run (the caller stopped first) is kept.
 */
bool work_finish(const work_env *e, work_item *it);

#endif
