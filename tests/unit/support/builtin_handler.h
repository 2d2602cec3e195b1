/*
 * builtin_handler — a built-in handler (noop, TASK1) made as a binding makes it, with TASK1's
 * wait and failure rate given for the one call, for the tests that run one (test_handlers at an
 * abort in its wait, test_work through the work step).
 *
 * Header only, as the support library needs nothing of taskd: the tests that include it link
 * the handlers already.
 */
#ifndef TASKD_TEST_BUILTIN_HANDLER_H
#define TASKD_TEST_BUILTIN_HANDLER_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "runner/handlers.h"

#include <stdio.h>
#include <stdlib.h>

/* The handler named name, under binding's queue and timeout; for TASK1, TASK1_SECONDS and
 * TASK1_FAILURE_RATE are seconds and failure_rate while it is made, and unset after. Fails the
 * running test (cmocka), with the reason, when it cannot be made. */
static inline handler *test_builtin_handler(const handler_config *binding, const char *name,
                                            const char *seconds, const char *failure_rate)
{
    setenv("TASK1_SECONDS", seconds, 1);
    setenv("TASK1_FAILURE_RATE", failure_rate, 1);
    handler_config hc = *binding;
    snprintf(hc.handler, sizeof hc.handler, "%s", name);
    char err[256] = "";
    handler *h = handler_create(&hc, err, sizeof err);
    if (!h)
        fail_msg("handler_create %s: %s", name, err);
    unsetenv("TASK1_SECONDS");
    unsetenv("TASK1_FAILURE_RATE");
    return h;
}

#endif
