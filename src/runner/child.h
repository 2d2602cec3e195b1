/*
 * child — one program run as a child process in its own process group.
 *
 * The parent's side of a run, and nothing about what the program is for:
 *   - child_start() executes a file directly (never through a shell) with a given
 *     argv and environment, in a new process group whose id is the child's pid,
 *     with the signal mask emptied and every signal disposition reset to default;
 *   - child_wait() writes the input to its standard input (then closes it), keeps
 *     the first stdout_max bytes of standard output and the last stderr_tail bytes
 *     of standard error, and returns when the child has exited and its output is
 *     drained (for at most drain_ms: a leftover background process may hold the
 *     pipes open), or when the deadline passes;
 *   - child_kill_group() kills the whole group, child_reap() collects the exit status.
 * The child stays unreaped until child_reap(), so its pid, which is also the group
 * id, cannot be reused before then: killing the group never hits an unrelated one.
 *
 * A child is used by one thread, except child_kill_group(), which any thread may call
 * between child_start() and child_reap(). The calling thread's signal mask and the
 * process's signal dispositions are the same after each call as before it.
 */
#ifndef TASKD_CHILD_H
#define TASKD_CHILD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What to run and how much of its output to keep; the pointers are borrowed until child_free(). */
typedef struct child_spec {
    const char *path;   /* the file to execute */
    char *const *argv;  /* NULL-terminated; argv[0] is the program's name for itself */
    char *const *env;   /* NULL-terminated "NAME=value" strings: the whole environment */
    const char *input;  /* written to standard input, which is closed afterwards */
    size_t input_len;   /* bytes of input */
    size_t stdout_max;  /* most bytes of standard output kept; the rest is read and discarded */
    size_t stderr_tail; /* bytes of standard error kept: the last ones written */
    int drain_ms;       /* how long output is still read after the child exits */
} child_spec;

/* How child_wait() returned. */
typedef enum child_end {
    CHILD_EXITED,    /* the child exited and its output was drained */
    CHILD_TIMED_OUT, /* the deadline passed while the child still ran */
    CHILD_FAILED,    /* the parent failed; see child_failure() */
} child_end;

/* The step in the parent that failed, as child_failure() reports it. */
typedef enum child_step {
    CHILD_OK,          /* nothing has failed */
    CHILD_PIPES,       /* creating the pipes (child_start) */
    CHILD_SPAWN,       /* starting the program (child_start) */
    CHILD_POLL,        /* waiting for the pipes (child_wait) */
    CHILD_READ_STDOUT, /* keeping standard output: out of memory (child_wait) */
    CHILD_REAP,        /* collecting the exit status (child_reap) */
} child_step;

typedef struct child child;

/* A child for spec, not started yet; NULL when out of memory. */
child *child_new(const child_spec *spec);
/* Start the program. 0, or an errno value (the step is CHILD_PIPES or CHILD_SPAWN). */
int child_start(child *c);
/*
 * Feed stdin and collect output until the child has exited and its output is drained, or
 * until deadline_ms on the monotonic clock (clock_mono_ms; INT64_MAX: none) passes first.
 * SIGPIPE is blocked in the calling thread meanwhile, and one that writing raised is consumed.
 */
child_end child_wait(child *c, int64_t deadline_ms);
/* Send SIGKILL to the child's process group; does nothing unless it has started and is unreaped. */
void child_kill_group(const child *c);
/* Close the pipes and wait for the child to end; 0 with its wait status in *status, or an errno. */
int child_reap(child *c, int *status);
/* The first failure (CHILD_OK: none), its errno value in *code. */
child_step child_failure(const child *c, int *code);
/* Standard output kept (at most stdout_max bytes, NUL-terminated, "" if none); length in *len. */
const char *child_stdout(const child *c, size_t *len);
/* The tail of standard error kept (not NUL-terminated); *cut: earlier bytes were dropped. */
const char *child_stderr_tail(const child *c, size_t *len, bool *cut);
/* Release the child; one started and not yet reaped has its group killed and is reaped first. */
void child_free(child *c);

#endif
