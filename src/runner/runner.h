/*
 * runner — the threads that work a queue for one handler binding.
 *
 * Each thread receives up to batch_size messages and claims their tasks
 * (CREATED -> IN_PROGRESS, "Task started") in the same transaction, runs the
 * handler on each, reports COMPLETED or FAILED, and deletes the messages.
 * A message whose task is already finished, or gone, is dropped. A task
 * found IN_PROGRESS is a redelivery after a crash or a timeout: it is run
 * again. A message not deleted — the process died, or the report failed —
 * reappears once its hide ends (the handler's timeout and 5 s, or the
 * queue's visibility timeout when longer); past max_receive_count the broker
 * moves it to the dead-letter queue and fails the task.
 */
#ifndef TASKD_RUNNER_H
#define TASKD_RUNNER_H

#include "core/config.h"
#include "handler.h"
#include "store/broker.h"
#include "store/store.h"
#include "trace/trace.h"

#include <stdatomic.h>

typedef struct runner runner;

/* Start the binding's threads; the runner takes the handler. NULL with err. */
runner *runner_start(store *s, broker *b, const config *c, const handler_config *hc, handler *h,
                     const telemetry *tel, char *err, size_t errlen);
/*
 * Stop receiving. A batch already received (its tasks claimed) is still run
 * to its end; runner_join() waits for it.
 */
void runner_stop_receiving(runner *r);
/*
 * Make running handlers return now (exec process groups are killed) and
 * start no more; those tasks are not reported. The messages of runs cut
 * short are visible again at once, their receive counted toward the queue's
 * max_receive_count; those of a batch never started are released, their
 * receive not counted (after a restart, the tasks run again).
 */
void runner_abort(runner *r);
/* Wait for the threads until deadline (CLOCK_MONOTONIC seconds), or until *cut_short is set
 * (NULL: never); true when all ended. */
bool runner_join(runner *r, double deadline, const atomic_bool *cut_short);
/* Free a runner whose threads ended. */
void runner_free(runner *r);

#endif
