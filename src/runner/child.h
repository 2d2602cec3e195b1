/*
 * child — one program run as a contained child process.
 *
 * The parent's side of a run, and nothing about what the program is for:
 *   - child_start() forks a supervising process (a copy of this one that never execs and
 *     makes only system calls) which becomes a child subreaper, then starts the program
 *     and executes it directly (never through a shell) with a given argv and environment,
 *     in its own process group, with exactly standard input, output and error open, the
 *     signal mask emptied, every signal disposition reset to default, the resource limits
 *     asked for, and PR_SET_PDEATHSIG so that it is killed when the supervisor ends;
 *   - child_wait() writes the input to its standard input (then closes it), keeps the first
 *     stdout_max bytes of standard output and the last stderr_tail bytes of standard error,
 *     and returns when the program has exited and its output is drained (all it wrote, and
 *     for at most drain_ms more: a leftover background process may hold the pipes open), when
 *     standard output goes past stdout_max, when the deadline passes, or when child_kill() is
 *     called;
 *   - child_kill() kills the program and every descendant it left; child_reap() does too (if
 *     anything still runs) and collects the program's exit status once every one is gone.
 *
 * Containment: every process the program starts stays a descendant of the supervisor, even
 * one that calls setsid() or double-forks (orphans are re-parented to the subreaper, not to
 * init), so killing "the run" means killing the supervisor's whole tree, which it does on
 * child_kill() or child_reap(). The supervisor also does this when the thread that called
 * child_start() ends (its PR_SET_PDEATHSIG), so nothing outlives a SIGKILL of this process:
 * the thread that starts a child must therefore live until the child is reaped. A supervisor
 * stopped then (by the program, say) takes that signal only once continued: by the kernel, or by
 * child_continue_orphans(), called as this process starts again. A SIGKILL of
 * the supervisor itself kills the program (its PR_SET_PDEATHSIG), and child_reap() then kills the
 * program's process group; descendants that left that group (setsid()) go to init.
 *
 * A child is used by one thread, except child_kill(), which any thread may call between
 * child_new() and child_reap(). The calling thread's signal mask and the process's signal
 * dispositions are the same after each call as before it.
 */
#ifndef TASKD_CHILD_H
#define TASKD_CHILD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Resource limits of the program (setrlimit before exec); 0 / false leaves one as inherited.
 * A limit is never raised above the one the program would inherit, soft or hard. */
typedef struct child_limits {
    unsigned cpu_s;      /* RLIMIT_CPU: SIGXCPU after this many CPU seconds, SIGKILL 1 s later */
    uint64_t data_bytes; /* RLIMIT_DATA: most bytes of heap and private writable mappings */
    unsigned nofile;     /* RLIMIT_NOFILE, soft and hard: most open file descriptors */
    bool no_core;        /* RLIMIT_CORE 0: no core dumps */
} child_limits;

/* What to run and how much of its output to keep; the pointers are borrowed until child_free(). */
typedef struct child_spec {
    const char *path;    /* the file to execute */
    char *const *argv;   /* NULL-terminated; argv[0] is the program's name for itself */
    char *const *env;    /* NULL-terminated "NAME=value" strings: the whole environment */
    const char *input;   /* written to standard input, which is closed afterwards */
    size_t input_len;    /* bytes of input */
    size_t stdout_max;   /* most bytes of standard output kept; more ends child_wait() */
    size_t stderr_tail;  /* bytes of standard error kept: the last ones written */
    int drain_ms;        /* how long output is still waited for after the program exits */
    int kill_grace_ms;   /* how long child_reap() lets the supervisor clear the run (0: 2000) */
    child_limits limits; /* resource limits of the program */
} child_spec;

/* How child_wait() returned. */
typedef enum child_end {
    CHILD_EXITED,      /* the program exited and its output was drained */
    CHILD_TIMED_OUT,   /* the deadline passed while the program still ran (or before the start) */
    CHILD_STDOUT_OVER, /* standard output went past stdout_max bytes (the program may still run) */
    CHILD_KILLED,      /* child_kill() came before the program's end was known (it may still run) */
    CHILD_FAILED,      /* the parent failed; see child_failure() */
} child_end;

/* The step that failed, as child_failure() reports it. */
typedef enum child_step {
    CHILD_OK,          /* nothing has failed */
    CHILD_PIPES,       /* creating the pipes (child_start) and the kill's eventfd (child_new) */
    CHILD_SPAWN,       /* starting the supervisor or the program (child_start) */
    CHILD_POLL,        /* waiting for the pipes, or looking into them (child_start, child_wait) */
    CHILD_READ_STDOUT, /* keeping standard output: out of memory (child_wait) */
    CHILD_REAP,        /* collecting the supervisor's exit status (child_reap) */
    CHILD_SUPERVISOR,  /* the supervisor ended without reporting the program's end */
} child_step;

typedef struct child child;

/* A child for spec, not started yet; NULL when out of memory. */
child *child_new(const child_spec *spec);
/*
 * Start the program; returns once it has been executed. 0, or an errno value (the step is
 * CHILD_PIPES or CHILD_SPAWN: e.g. ENOENT when the file does not exist; CHILD_SUPERVISOR when the
 * supervisor died before the program's exec, killed: ECHILD before it reported the program's
 * start, ESRCH after; CHILD_POLL when the wait for either failed, or the read of the exec's
 * outcome); after one, what was started is
 * reaped by child_reap() or child_free(). A start that has not ended when deadline_ms on the
 * monotonic clock (clock_mono_ms; INT64_MAX: none) passes, or when child_kill() is called during
 * it, is cut short: 0 all the same, and the run ends as one that started does: child_wait() with
 * that deadline makes its look past it at once, and returns CHILD_TIMED_OUT or CHILD_KILLED unless
 * the program's end was reported by then (see there), and child_reap() kills and reaps whatever was
 * started. After a child_kill() before it, or with deadline_ms passed as it begins, nothing is
 * started: 0 all the same, child_wait() returns CHILD_KILLED or CHILD_TIMED_OUT, child_reap()
 * ECHILD (no step).
 */
int child_start(child *c, int64_t deadline_ms);
/*
 * Feed stdin and collect output until the program has exited and its output is drained, until
 * standard output goes past stdout_max, until deadline_ms on the monotonic clock
 * (clock_mono_ms; INT64_MAX: none) passes, or until child_kill() is called (from any thread,
 * before or during the wait) while the program's end is not known, whichever comes first. Past
 * the deadline the wait makes one look, without waiting, at every report the supervisor has
 * written by then: an end among them is taken, whatever is queued ahead of it (the start's
 * report, left unread by a start cut short) and however late this thread looks: the program
 * exited, it did not time out. An end reported by the deadline is always taken; one reported
 * after it is taken only when it came before that look (nothing tells the two apart); one
 * reported after the look is a time-out.
 * After CHILD_KILLED the output kept and the stderr tail are what was read by then. SIGPIPE is
 * blocked in the calling thread meanwhile, and one that writing raised is consumed.
 */
child_end child_wait(child *c, int64_t deadline_ms);
/* Kill the program and all its descendants (asynchronously: child_reap() waits for them), and
 * end a child_start() or child_wait() under way or to come (CHILD_KILLED); kills nothing before
 * the start or after the reap. */
void child_kill(const child *c);
/*
 * End the run: close the pipes, kill the program if it still runs and whatever it left running,
 * wait for all of it to be gone and reap the supervisor. A supervisor that has not finished
 * within kill_grace_ms (stopped, say) is killed, and with it the program's process group while
 * that group's id is still the run's, so this never hangs on it. 0 with the program's wait status
 * in *status, or an errno value (the step is CHILD_REAP or CHILD_SUPERVISOR: the supervisor ended
 * without reporting the program's end; none, with ECHILD, when nothing was started).
 */
int child_reap(child *c, int *status);
/* The first failure (CHILD_OK: none), its errno value in *code. */
child_step child_failure(const child *c, int *code);
/* The program's pid once started (0 before; it may have ended since), for logs and tests. */
pid_t child_pid(const child *c);
/*
 * True once the program is known to have ended by itself: its end came before its supervisor
 * began to kill the run (child_kill(), child_reap(), this process's death), whether it exited
 * or a signal from elsewhere (its CPU limit, say) killed it. False while its end is not known,
 * and when it died in the clearing of the run.
 */
bool child_ended_alone(const child *c);
/* CPU time (user + system) the program used, in milliseconds; -1 until it is known to have
 * ended (after child_wait() returned CHILD_EXITED, or after child_reap()). */
int64_t child_cpu_ms(const child *c);
/* Standard output kept (at most stdout_max bytes, NUL-terminated, "" if none); length in *len. */
const char *child_stdout(const child *c, size_t *len);
/* Bytes allocated to keep standard output: never more than stdout_max + 1. */
size_t child_stdout_reserved(const child *c);
/* The tail of standard error kept (not NUL-terminated); *cut: earlier bytes were dropped. */
const char *child_stderr_tail(const child *c, size_t *len, bool *cut);
/* Release the child; one started and not yet reaped is killed and reaped first. */
void child_free(child *c);
/*
 * Continue the supervisors whose parent died while they were stopped (a process that ran children
 * killed while a program had stopped its supervisor) and that the kernel did not continue (their
 * new parent is of that process's session): a stopped process takes no signal, its
 * parent-death signal included, so their programs ran on. Continued, each takes that signal and
 * clears its run as it does when its parent dies, and is waited for: within the grace a run
 * has to be cleared (2 s), so that their runs have ended before this process runs others (a
 * task of theirs again); *unended: how many had not ended by then; *unwatched: how many were
 * not waited for (no memory to note them). A supervisor whose parent lives is left alone,
 * stopped or not. How many were continued; -1 without /proc, when nothing is done.
 */
int child_continue_orphans(int *unended, int *unwatched);
/*
 * Give SIGCHLD its default disposition when this process ignores it (SIG_IGN, which a parent's
 * setting passes on across exec), and clear SA_NOCLDWAIT from a handler of it: under either the
 * kernel reaps each supervisor as it exits, and child_kill() and child_reap() then signal its
 * pid, free, which another process may have taken (the end signal's default action ends a
 * process). Call it as the process starts, before any run.
 */
void child_reap_supervisors_here(void);

#endif
