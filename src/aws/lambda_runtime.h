/*
 * lambda_runtime — the client side of the Lambda Runtime API (version
 * 2018-06-01) for bootstrap: fetch the next invocation, post its result or
 * its error, or report a failed start.
 *
 * The API is plain HTTP on a local address given by AWS_LAMBDA_RUNTIME_API
 * ("host:port"). One libcurl handle is made at creation and reused for every
 * request, so the connection is kept alive across /next, /response and
 * /error; no proxy is ever used. GET /next has no timeout, because Lambda
 * freezes the process while it waits there, possibly for long; the posts are
 * bounded by a timeout (LAMBDA_POST_TIMEOUT_MS unless changed).
 *
 * Protocol choices:
 *   - The request id goes into URL paths, so an id that is empty, longer
 *     than 127 bytes, made only of dots, or holding a byte outside
 *     [A-Za-z0-9._-] is refused (by /next and again by the posts).
 *   - A missing or unparseable Lambda-Runtime-Deadline-Ms gives
 *     deadline_ms 0, "unknown": failing /next would strand an invocation
 *     that could still be served, and Lambda itself always sends the header,
 *     so this only matters with emulators. Callers treat 0 as "no deadline
 *     known" (aws_set_deadline(0) falls back to the default budget).
 *   - Nothing is silently truncated. A request id too long for its field
 *     is a protocol error. A trace header too long for its field keeps its
 *     whole Root, Parent and Sampled fields, and a function ARN too long for
 *     its field is left out ("", as when absent): neither must end the
 *     runtime, and nothing reads the ARN.
 *   - The trace header stays in the invocation (trace_id), for the caller to
 *     pass to what needs it; it is not exported as _X_AMZN_TRACE_ID. Nothing
 *     in the process reads that variable (exec programs get an allow-listed
 *     environment and the task's own trace in TRACEPARENT), and setenv or
 *     unsetenv while other threads call getenv (libcurl reads the proxy
 *     variables on every transfer, in the span exporter's thread too; the
 *     AWS clients read their credentials) may hand a reader a freed array:
 *     the process environment is never changed here.
 *
 * A runtime is used by one thread at a time. Errors are returned with a
 * one-line reason in the caller's err buffer (err may be NULL).
 *
 * What an invocation's deadline leaves its AWS calls and the flush of its
 * spans is decided here too, from the deadline and the time now alone.
 */
#ifndef TASKD_LAMBDA_RUNTIME_H
#define TASKD_LAMBDA_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Default bound of the /response and /error posts. */
#define LAMBDA_POST_TIMEOUT_MS 10000

/* One invocation as /next delivered it. */
typedef struct lambda_invocation {
    char request_id[128];   /* Lambda-Runtime-Aws-Request-Id, validated (see above) */
    int64_t deadline_ms;    /* Lambda-Runtime-Deadline-Ms, epoch ms; 0 when unknown */
    char function_arn[256]; /* Lambda-Runtime-Invoked-Function-Arn, "" when absent */
    char trace_id[256];     /* Lambda-Runtime-Trace-Id, "" when absent */
    char *event;            /* owned, NUL-terminated (never NULL after success) */
    size_t event_len;       /* bytes of event, excluding the terminator */
} lambda_invocation;

typedef struct lambda_runtime lambda_runtime;

/*
 * A runtime for the API named by AWS_LAMBDA_RUNTIME_API; NULL with the
 * reason in err when it is unset or malformed, or out of memory. Opens no
 * connection. curl_global_init must have been called.
 */
lambda_runtime *lambda_runtime_new(char *err, size_t errlen);
/* Close the connection and free the runtime (NULL is fine). */
void lambda_runtime_free(lambda_runtime *rt);
/* Change the timeout of the posts (ms > 0). */
void lambda_runtime_set_post_timeout(lambda_runtime *rt, long ms);
/* HTTP status of the last request; 0 when none answered. */
long lambda_runtime_last_status(const lambda_runtime *rt);

/*
 * Block (without timeout) for the next invocation and fill inv, which need
 * not be initialised: its previous contents are overwritten, not freed.
 * Leaves the process environment alone. false with err on a transport error, a
 * non-2xx answer, a missing, unsafe or too long request id, or out of memory;
 * inv is then empty (clearing it is harmless).
 */
bool lambda_runtime_next(lambda_runtime *rt, lambda_invocation *inv, char *err, size_t errlen);
/* Free the event and zero inv (NULL is fine). */
void lambda_invocation_clear(lambda_invocation *inv);

/*
 * POST .../invocation/{id}/response with body (len bytes, application/json).
 * false with err on a transport error or a non-2xx answer, naming the status
 * (413: payload too large) and the API's own message when it gave one.
 */
bool lambda_runtime_respond(lambda_runtime *rt, const lambda_invocation *inv, const char *body,
                            size_t len, char *err, size_t errlen);
/*
 * POST .../invocation/{id}/error with {"errorMessage", "errorType",
 * "stackTrace": []} and Lambda-Runtime-Function-Error-Type: error_type.
 * error_type NULL or "" means "Runtime.UnknownReason"; message NULL means "".
 * Bytes that are not UTF-8 are sent as '?'. false with err as for respond.
 */
bool lambda_runtime_fail(lambda_runtime *rt, const lambda_invocation *inv, const char *error_type,
                         const char *message, char *err, size_t errlen);
/*
 * POST /runtime/init/error with the same body and header, for a start that
 * failed before the first /next. false with err as for respond.
 */
bool lambda_runtime_init_error(lambda_runtime *rt, const char *error_type, const char *message,
                               char *err, size_t errlen);

/*
 * The deadline for an invocation's AWS calls (epoch ms) at now_ms: a little before Lambda's
 * deadline_ms, so that an answer (a 503 when DynamoDB stays throttled) is still posted in time: a
 * tenth of the time left, at most 500 ms (none once the deadline is past). 0 when deadline_ms is 0
 * (unknown): each call keeps its default budget.
 */
int64_t lambda_call_deadline(int64_t deadline_ms, int64_t now_ms);
/*
 * The deadline (epoch ms) of the flush of an invocation's spans, which starts at now_ms once its
 * response is posted: 300 ms later, or 50 ms before deadline_ms when that comes first (in the past
 * when less than 50 ms are left), so that the metrics lines and /next still come in time. Without
 * a deadline (0), the 300 ms.
 */
int64_t lambda_flush_deadline(int64_t deadline_ms, int64_t now_ms);

#endif
