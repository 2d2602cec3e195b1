/*
 * pipeline — the local pipeline of taskd, wired from the configuration:
 * stream consumers (the publisher), the runners of every handler binding,
 * and the housekeeping sweep (ttl, message retention, stream trimming).
 * Also answers the API's questions about queues and metrics.
 */
#ifndef TASKD_PIPELINE_H
#define TASKD_PIPELINE_H

#include "api/api.h"
#include "core/config.h"
#include "store/store.h"
#include "trace/trace.h"

#include <stdatomic.h>

typedef struct pipeline pipeline;

/*
 * Build every binding's handler (a known name, an exec program that exists): what the
 * configuration can get wrong is found here, before a store is opened. NULL with a reason
 * in err. Start it with pipeline_start(), or free it with pipeline_stop().
 */
pipeline *pipeline_new(const config *c, char *err, size_t errlen);
/* Start every thread over the store; false with a reason in err (then pipeline_stop() it). */
bool pipeline_start(pipeline *p, store *s, const telemetry *tel, char *err, size_t errlen);
/* The view the API serves /queues, /queues/{name}/redrive and /metrics from. */
const api_pipeline *pipeline_api(pipeline *p);
/*
 * The first step of shutting down, before the HTTP server stops: every
 * parked GET /tasks/{id}?wait= is answered now and every GET /events stream
 * ends; new ones are answered at once / refused.
 */
void pipeline_end_live(pipeline *p);
/*
 * Stop: no new messages are taken; running handlers get grace_s seconds to
 * finish, or until *hurry is set (NULL: never; a second stop signal), then are
 * aborted; consumers and the sweep stop. False if handlers were still running
 * 5 s after the abort (their messages will be redelivered after a restart);
 * the pipeline is then left allocated, since threads still use it.
 */
bool pipeline_stop(pipeline *p, unsigned grace_s, const atomic_bool *hurry);

#endif
