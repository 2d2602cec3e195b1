/*
 * supervisor — the process child_start() forks to run a program and clear its whole tree (see
 * child.c's design), and the pipe protocol it speaks to the parent. It runs in the fork of a
 * multi-threaded process: system calls only, no allocation, no lock.
 */
#ifndef TASKD_SUPERVISOR_H
#define TASKD_SUPERVISOR_H

#include "runner/child.h"

#include <stdint.h>
#include <sys/types.h>

/* A report from the supervisor, one atomic write of 16 bytes. */
typedef struct supervisor_report {
    int32_t kind;   /* REPORT_* */
    int32_t value;  /* STARTED: the program's pid; SPAWN_FAILED: errno; else its wait status */
    int64_t cpu_ms; /* EXITED, KILLED: the program's user + system CPU time */
} supervisor_report;

/* The program's end is EXITED when it came before the supervisor killed anything (the program
 * exited, or a signal from elsewhere or its CPU limit killed it), KILLED when it came once the
 * supervisor had begun to clear the run (the parent's end signal, or its death). */
enum { REPORT_STARTED = 1, REPORT_SPAWN_FAILED, REPORT_EXITED, REPORT_KILLED };

/* The supervisor's name (PR_SET_NAME): for ps and top, and for child_continue_orphans(). */
#define SUPERVISOR_NAME "exec-supervisor"
_Static_assert(sizeof SUPERVISOR_NAME <= 16, "PR_SET_NAME keeps 15 characters");

/* The descriptors the supervisor hands on, in its fds[] (all above 2, O_CLOEXEC). */
enum { FD_STDIN, FD_STDOUT, FD_STDERR, FD_EXEC, FD_REPORT, FD_COUNT };

/*
 * The supervisor: fds[] as the FD_* names say (FD_EXEC's write end goes to the program only,
 * FD_REPORT's is the supervisor's); parent is the process that forked it, end_sig its "end the
 * run" (also its parent-death signal). Runs spec's program and reports on FD_REPORT. Never
 * returns.
 */
_Noreturn void supervisor_main(const child_spec *spec, const int fds[FD_COUNT], pid_t parent,
                               int end_sig);

#endif
