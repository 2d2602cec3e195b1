/*
 * exec_handler — the built-in `exec` handler: runs a configured command per task.
 *
 * The command's argv comes from configuration and is executed directly, never
 * through a shell. Each run (see child.h, and docs/design.md, "Containing `exec` runs"):
 *   - starts the program under a supervising process that is a child subreaper, in
 *     its own process group, with only standard input, output and error open, the
 *     signal mask emptied and every signal disposition reset to default; every
 *     process it starts, even one that calls setsid() or double-forks, is killed
 *     when the run ends (normally, by timeout or by abort()), and when taskd dies;
 *   - limits its resources (exec_limits; by default CPU time the timeout + 1 s:
 *     SIGXCPU, then SIGKILL; data memory RLIMIT_DATA 1 GiB; 1024 open files), no core dumps;
 *   - writes the task as one line of JSON, {"id":...,"task_type":...,"data":...}
 *     followed by a newline, to its standard input;
 *   - passes only an allow-list of the environment snapshotted at creation (PATH,
 *     HOME, LANG, LC_*, TZ, TMPDIR; PATH defaults to /usr/local/bin:/usr/bin:/bin),
 *     then env_extra, then TASK_ID, TASK_TYPE, TRACEPARENT and TRACESTATE (the last
 *     two only when the task has them: TRACESTATE is the W3C tracestate that came
 *     with the task's traceparent, in its normal form): no AWS_*, TASKD_* or other
 *     secrets reach the program;
 *   - captures standard output (at most 1 MiB) and the last 4 KiB of standard error.
 * Exit status 0 completes the task ("Task completed") with standard output as
 * the result: the JSON text itself (compacted) when it parses as JSON, else a
 * JSON string of it with trailing newlines trimmed, or no result when empty.
 * Anything else fails the task: "exit status N: <stderr tail>", "killed by
 * signal N (SIGNAME): <stderr tail>" ("killed by signal 24 (SIGXCPU: CPU time
 * limit of N s)" for the CPU limit), "output over 1048576 bytes; not kept" as soon
 * as standard output passes 1 MiB (the program is killed), or "timed out after N s"
 * once the timeout passes and the program has been killed. When the program exits,
 * whatever it left running is killed after at most ~100 ms spent draining output a
 * leftover background process may still hold open: no process outlives its task.
 * A program that ended by itself before an abort() asked for its run's end (while its
 * output was drained or its run cleared) has its outcome marked handler_result.own_end:
 * it is the task's, as is a time-out that came before the abort (a deadline passed by the
 * time the abort came, however late the run saw either) and output over the cap (written
 * before the kill ended the program); one the abort killed is not.
 */
#ifndef TASKD_EXEC_HANDLER_H
#define TASKD_EXEC_HANDLER_H

#include "runner/handler.h"

#include <stddef.h>
#include <stdint.h>

/* Most bytes of standard output kept as the result; more fails the task. */
#define EXEC_STDOUT_MAX ((size_t)1 << 20)
/* Bytes of standard error kept: the last ones written. */
#define EXEC_STDERR_TAIL 4096
/* Most bytes of the stderr tail quoted in a failure's status_msg (whole lines when possible). */
#define EXEC_STATUS_TAIL 1000
/* How long output is still read after the program exits, in milliseconds. */
#define EXEC_DRAIN_MS 100
/* Default RLIMIT_DATA of a run: heap and private writable mappings (not reserved address
 * space, which runtimes such as V8 or the JVM take by the gigabyte). */
#define EXEC_MEMORY_MAX ((uint64_t)1 << 30)
/* Default RLIMIT_NOFILE of a run. */
#define EXEC_OPEN_FILES_MAX 1024u
/* Descriptors a run holds in taskd at most: its five pipes while it starts, and the eventfd
 * that ends its wait when it is killed. */
#define EXEC_RUN_FDS 11u

/* Resource limits of each run; a 0 field takes its default. */
typedef struct exec_limits {
    unsigned cpu_s;        /* CPU seconds; default: the run's timeout + 1 (none without one) */
    uint64_t memory_bytes; /* RLIMIT_DATA; default EXEC_MEMORY_MAX */
    unsigned open_files;   /* RLIMIT_NOFILE; default EXEC_OPEN_FILES_MAX */
} exec_limits;

/*
 * Create an exec handler for argv[0..argc) plus env_extra, a NULL-terminated list of
 * "NAME=value" strings (or NULL), with the default limits. argv[0] is the program: a path
 * when it contains '/', which must be an executable regular file, else a name looked up in
 * PATH now (an unset PATH searches /usr/local/bin:/usr/bin:/bin). Everything is copied.
 * Returns NULL with a message in err[0..errlen) when argv is empty, the program is missing or
 * not executable, an env_extra entry has no '=' or an empty name, or memory runs out.
 * The handler's run() treats timeout_s == 0 as "no time limit"; free() releases it.
 */
handler *exec_handler_new(const char *const *argv, size_t argc, const char *const *env_extra,
                          char *err, size_t errlen);
/* The same with limits (NULL: the defaults). */
handler *exec_handler_new_limited(const char *const *argv, size_t argc,
                                  const char *const *env_extra, const exec_limits *limits,
                                  char *err, size_t errlen);

#endif
