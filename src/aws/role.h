/*
 * role — what one Lambda function does with an invocation's event.
 *
 * bootstrap runs one role, chosen by _HANDLER: `api` (API Gateway events into
 * the API function); `publish` (DynamoDB stream records to the topic),
 * `worker` (queue messages to handlers), `sweep` (scheduled: client claims
 * whose lease ran out) and `recover` (new tasks whose records the stream
 * dropped unpublished) follow the same interface. A role
 * answers with the JSON its event source expects, or fails the invocation
 * with an error type and message (Lambda then reports a function error).
 */
#ifndef TASKD_ROLE_H
#define TASKD_ROLE_H

#include "core/sbuf.h"
#include "lambda_runtime.h"
#include "store/store.h"
#include "trace/trace.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The outcome of one invocation. */
typedef struct role_result {
    char *response; /* owned JSON for /response, or NULL when the invocation failed */
    size_t response_len;
    char error_type[64]; /* when failed: e.g. "Runtime.InvalidEvent" */
    char error_message[256];
} role_result;

typedef struct role role;
struct role {
    const char *name;
    /* Handle one invocation (its deadline is already the thread's AWS deadline). */
    void (*invoke)(role *r, const lambda_invocation *inv, role_result *out);
    void (*free)(role *r);
};

/* Fail the invocation with a type and a message (printf-style), kept on one line (each control
 * character becomes '?', as errbuf_one_line() does) and ending "..." where it is cut to fit
 * (errbuf_set()). */
void role_fail(role_result *out, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Answer with the JSON text b holds, which out takes (b is left empty); when b failed, the
 * invocation fails, saying why (sbuf_error_text()): Runtime.OutOfMemory when b ran out of memory,
 * Runtime.EncodeError for text it could not format. */
void role_respond(role_result *out, sbuf *b);
/* Release what a result owns. */
void role_result_clear(role_result *out);
/* Milliseconds left before the invocation's deadline; INT64_MAX when Lambda gave none. */
int64_t role_ms_left(const lambda_invocation *inv);

/*
 * Fail the task id (status FAILED, status message why) in s, a write of its own, traced as an
 * `UPDATE tasks` span, child of parent, to tel; with from_created, only a task nobody has claimed
 * (store_update.from_created). The store's answer (STORE_CONFLICT: the task is final already, or
 * the change is not allowed from its status).
 */
store_rc role_fail_task(store *s, const telemetry *tel, const span *parent, const char *id,
                        const char *why, bool from_created);

#endif
