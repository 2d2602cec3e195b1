/*
 * live — what GET /tasks/{id}?wait= and GET /events follow: the change log,
 * read by one thread for every waiting request and every event client.
 *
 * Waiters are parked exchanges keyed by task id; the thread wakes them when a
 * change record shows their task COMPLETED, FAILED or deleted, and at their
 * deadline (one sorted deadline list, no timer per waiter). Event clients
 * each have a bounded buffer the thread appends formatted events to, read by
 * the transport as it can send; a client whose buffer has no room for an
 * event catches up from the log, and one whose buffer stays full with nothing
 * read for 5 s is dropped. No thread per request either way. The thread
 * sleeps on the broker's change wake-up, so an idle taskd reads nothing.
 */
#ifndef TASKD_LIVE_H
#define TASKD_LIVE_H

#include "api/api.h"
#include "core/config.h"
#include "store/broker.h"
#include "util/metrics.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct live live;

#define LIVE_RETRY_MS 2000 /* the reconnection delay advised to event clients */

/* Start the thread (bounds from c: max_waiters, max_event_clients, event_buffer_bytes; every
 * event_ping_interval, ": ping" with its position as the id to every event client); metrics may
 * be NULL. NULL with a reason in err. */
live *live_start(broker *b, const config *c, metrics *m, char *err, size_t errlen);
/* api_pipeline.wait_task / unwait_task / subscribe, over a live. */
store_rc live_wait(live *l, const char *task_id, int64_t deadline_ms, api_exchange *ex);
bool live_unwait(live *l, api_exchange *ex);
store_rc live_subscribe(live *l, int64_t after, const char *task_type, const char *status,
                        api_stream **out);
/*
 * Shutting down: answer every waiter now, end every event stream (a client
 * gets the rest of its buffer, then the end), refuse new ones, and stop the
 * thread. Streams stay allocated until the transport closes them.
 */
void live_close(live *l);
/* Join the thread and free; every stream must have been closed by its transport. */
void live_free(live *l);

#endif
