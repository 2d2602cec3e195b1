/*
 * exec_handler — the built-in `exec` handler: runs a configured command per task.
 *
 * The command's argv comes from configuration and is executed directly, never
 * through a shell. Each run:
 *   - starts the program in its own process group, with the signal mask
 *     emptied and every signal disposition reset to default;
 *   - writes the task as one line of JSON, {"id":...,"task_type":...,"data":...}
 *     followed by a newline, to its standard input;
 *   - passes the environment snapshotted at creation (minus any TASK_ID,
 *     TASK_TYPE and TRACEPARENT it held) plus env_extra, TASK_ID, TASK_TYPE and
 *     TRACEPARENT (the last only when the task has one);
 *   - captures standard output (the first 1 MiB) and the last 4 KiB of
 *     standard error.
 * Exit status 0 completes the task ("Task completed") with standard output as
 * the result: the JSON text itself (compacted) when it parses as JSON, else a
 * JSON string of it with trailing newlines trimmed, or no result when empty.
 * Anything else fails the task: "exit status N: <stderr tail>", "killed by
 * signal N (SIGNAME): <stderr tail>", or "timed out after N s" once the timeout
 * passes and the process group has been killed. When the program exits, its
 * process group is killed too, after at most ~100 ms spent draining output a
 * leftover background process may still hold open: no process outlives its task.
 */
#ifndef TASKD_EXEC_HANDLER_H
#define TASKD_EXEC_HANDLER_H

#include "runner/handler.h"

#include <stddef.h>

/* Most bytes of standard output kept as the result; the rest is read and discarded. */
#define EXEC_STDOUT_MAX ((size_t)1 << 20)
/* Bytes of standard error kept: the last ones written. */
#define EXEC_STDERR_TAIL 4096
/* Most bytes of the stderr tail quoted in a failure's status_msg (whole lines when possible). */
#define EXEC_STATUS_TAIL 1000
/* How long output is still read after the program exits, in milliseconds. */
#define EXEC_DRAIN_MS 100

/*
 * Create an exec handler for argv[0..argc) plus env_extra, a NULL-terminated list of
 * "NAME=value" strings (or NULL). argv[0] is the program: a path when it contains '/',
 * which must be an executable regular file, else a name looked up in PATH now (an
 * unset PATH searches /usr/local/bin:/usr/bin:/bin). Everything is copied. Returns NULL
 * with a message in err[0..errlen) when argv is empty, the program is missing or not
 * executable, an env_extra entry has no '=' or an empty name, or memory runs out.
 * The handler's run() treats timeout_s == 0 as "no time limit"; free() releases it.
 */
handler *exec_handler_new(const char *const *argv, size_t argc, const char *const *env_extra,
                          char *err, size_t errlen);

#endif
