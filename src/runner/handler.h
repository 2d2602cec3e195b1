/*
 * handler — the interface between the task runner and the code that runs a task.
 *
 * A handler is a small object with a name, a run() function and a free()
 * function. The runner hands it one task at a time (from several threads at
 * once) and stores what it reports: ok = COMPLETED, otherwise FAILED, with a
 * status message and an optional JSON result; or that the task could not be
 * started for want of something of taskd's own (retry), when nothing is
 * stored and the task is tried again later. Built-in handlers (the TASK1
 * demo, exec) and handlers written in C all implement this interface.
 */
#ifndef TASKD_HANDLER_H
#define TASKD_HANDLER_H
#include <stdbool.h>
/* One task handed to a handler; every pointer is borrowed for the call. */
typedef struct handler_task {
    const char *id;
    const char *task_type;
    const char *data;        /* the task's data: compact JSON object text */
    const char *traceparent; /* W3C trace context, or NULL */
    /* The W3C tracestate that came with the task's trace context (members joined by ',', at
     * most 512 characters), or NULL: a handler that calls on in the same trace sends it
     * unchanged beside its own traceparent (or with its own entry added at the left). */
    const char *tracestate;
} handler_task;
/* What a handler reports; strings are malloc'ed and owned by the caller after run(). */
typedef struct handler_result {
    bool ok; /* true: COMPLETED, false: FAILED */
    /* Not started, or its outcome not had (a result that could not be read or checked), for
     * want of descriptors, processes or memory of taskd's own: not the task's outcome. Nothing
     * is stored; its message comes back after its visibility timeout (locally the receive does
     * not count toward the queue's max_receive_count: taskd's want is not the task's).
     * status_msg says why. */
    bool retry;
    /* Run, but how it ended is unknown (the process supervising it was killed): nothing is
     * stored; its message comes back once its hide ends (work_env.lost_back) and the receive
     * counts, so that a run that always ends so goes, in the end, to the dead-letter queue. */
    bool lost;
    /* The run came to its own end before an abort() could cut it short (exec: the program's
     * exit was seen, its timeout passed or its output went over the cap, before taskd asked for
     * the run's end; TASK1: its wait ran out first; noop: always): its outcome is the task's
     * even when abort() came meanwhile, while its output was still read or its run cleared, or
     * as it returned. Left false, an outcome returned once abort() was called is taken as cut
     * short by it: nothing is stored, and the task runs again. */
    bool own_end;
    char *status_msg; /* e.g. "Task completed", or the error text; never NULL after run() */
    char *result;     /* JSON text of the result, or NULL for none */
} handler_result;
typedef struct handler handler;
struct handler {
    const char *name;  /* the handler's kind: "TASK1", "noop", "exec", ... */
    const char *label; /* what a run runs, for span names ("exec worker.py"); NULL: the name */
    /* Run one task within timeout_s seconds and fill *out. Called from several threads at once. */
    void (*run)(handler *h, const handler_task *t, unsigned timeout_s, handler_result *out);
    void (*free)(handler *h);
    /* Optional (NULL if not needed): make runs in progress return now, and
     * later ones at once; used at shutdown when the grace period is over. */
    void (*abort)(handler *h);
    void *ctx;
};
/* Release a result's strings. */
void handler_result_clear(handler_result *r);
#endif
