/*
 * api_role — the `api` Lambda role: API Gateway proxy events (REST payload
 * 1.0, HTTP API 2.0) into the same API function taskd serves, and its
 * answer back as the proxy response. Only the routes that mean something
 * without the local pipeline exist here: /queues, redrive, /metrics and the
 * trace view answer 404, and the dashboard is not served.
 *
 * The invocation's Lambda-Runtime-Trace-Id is the parent of the request's
 * spans (it stands in for the request's own trace headers), so the X-Ray
 * console shows the function's work under the function's segment.
 */
#ifndef TASKD_API_ROLE_H
#define TASKD_API_ROLE_H

#include "core/config.h"
#include "role.h"
#include "store/store.h"
#include "trace/trace.h"

/* The role over a store and configuration (both borrowed); NULL with err. */
role *api_role_new(store *s, const config *c, const telemetry *tel, char *err, size_t errlen);

#endif
