/*
 * handlers — the handlers a binding can name, and how to add one in C.
 *
 * Built in:
 *   TASK1  the original service's demo: waits TASK1_SECONDS (default 10), then fails
 *          with probability TASK1_FAILURE_RATE (default 0.25) with
 *          "Task failed somehow", else completes. abort() cuts the wait short (the
 *          task runs again); a wait that had run out first, even an instant before,
 *          keeps its outcome (handler_result.own_end), a timeout's "timed out" too.
 *   noop   completes at once (benchmarks); its outcome always stands (own_end).
 *   exec   runs the binding's command (see exec_handler.h).
 *
 * Adding a handler written in C: implement the handler interface of
 * handler.h (a run() that fills a handler_result, and a free()), write a
 * factory `handler *my_handler_new(const handler_config *hc, char *err,
 * size_t errlen)`, and add {"my-name", my_handler_new} to the table in
 * handlers.c. A binding with "handler": "my-name" then runs it. Set
 * handler_result.own_end on a run that ended by itself, not cut short by
 * abort(): a run returned once abort() was called without it is given back,
 * and its task runs again.
 */
#ifndef TASKD_HANDLERS_H
#define TASKD_HANDLERS_H

#include "core/config.h"
#include "handler.h"

#include <stddef.h>

/* Build the handler a binding names; NULL with a reason in err. */
handler *handler_create(const handler_config *hc, char *err, size_t errlen);

/* Free a handler (NULL is fine). */
void handler_free(handler *h);

#endif
