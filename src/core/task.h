/*
 * task — the task model: statuses, the transition rules of PATCH, and the
 * JSON form of a task as clients see it.
 *
 * A task's data and result are kept as compact JSON text, exactly as the
 * store holds them, so encoding a task never re-parses them.
 */
#ifndef TASKD_TASK_H
#define TASKD_TASK_H

#include "sbuf.h"

#include <stdbool.h>
#include <stdint.h>

#define TASK_ID_LEN    36   /* canonical UUID text, without the NUL */
#define TASK_TYPE_MAX  64   /* longest task type name */
#define TASK_NULL_TIME (-1) /* updated_time / ttl value meaning JSON null */

typedef enum task_status {
    TASK_CREATED,
    TASK_IN_PROGRESS,
    TASK_COMPLETED,
    TASK_FAILED,
} task_status;

typedef struct task {
    char id[TASK_ID_LEN + 1];
    char task_type[TASK_TYPE_MAX + 1];
    task_status status;
    char *status_msg;     /* owned; never NULL once loaded */
    int64_t created_time; /* Unix seconds */
    int64_t updated_time; /* Unix seconds or TASK_NULL_TIME */
    int64_t ttl;          /* Unix seconds or TASK_NULL_TIME */
    char *data;           /* owned compact JSON object text, or NULL when not loaded */
    char *result;         /* owned JSON text, or NULL for null */
    char *trace;          /* owned trace context (traceparent form), or NULL */
    char *tracestate;     /* owned W3C tracestate that came with trace (normal form), or NULL */
    /* A client's claim (PATCH IN_PROGRESS) of a task IN_PROGRESS: the Idempotency-Key it came
     * with (owned, or NULL) and when its lease ends (Unix seconds, or 0: none, as for a runner's
     * claim). Loaded where a store decides a change, not part of the task's JSON. */
    char *claim_key;
    int64_t claim_expires;
} task;

#define TASK_N_STATUSES 4
/* The wire names, in the order of task_status. */
extern const char *const task_status_names[TASK_N_STATUSES];
/* The status' wire name, e.g. "IN_PROGRESS". */
const char *task_status_name(task_status s);
/* Parse a wire name; false if s is not one of the four statuses. */
bool task_status_parse(const char *s, task_status *out);
/* True for COMPLETED and FAILED, which never change again. */
bool task_status_is_final(task_status s);
/*
 * Why a creation of this task id and type can never be published (a damaged or hand-edited
 * database), or NULL: no id or type, or one that does not fit a task. One that does not fit is
 * not cut to fit: a cut id names another task, or none.
 */
const char *task_creation_unfit(const char *task_id, const char *task_type);

/*
 * The status message of a task whose message went to a dead-letter queue:
 * "moved to dead-letter queue <dlq> after <n> receive(s)", without the count when
 * receives is 0 (not known). Cut to fit n bytes.
 */
void task_dead_letter_msg(char *out, size_t n, const char *dlq, unsigned receives);

/* What a requested change does to a task in a given state. */
typedef enum task_verdict {
    TASK_APPLY,    /* allowed: write it */
    TASK_REPEAT,   /* the very change already happened: answer success, write nothing */
    TASK_CONFLICT, /* not allowed from the current status */
} task_verdict;

/*
 * Decide a PATCH: from (cur, cur_msg) to (next, next_msg).
 * CREATED -> IN_PROGRESS | FAILED; IN_PROGRESS -> COMPLETED | FAILED.
 * Repeating a final change with the same message is TASK_REPEAT. A repeated
 * claim (IN_PROGRESS -> IN_PROGRESS) is a conflict: it cannot be told apart
 * from a competing claimer, and exactly one claimer must win.
 */
task_verdict task_decide(task_status cur, const char *cur_msg, task_status next,
                         const char *next_msg);

/*
 * Append the task's JSON object. With full, also data and result (as
 * GET /tasks/{id} returns); without, the list form.
 */
void task_to_json(sbuf *b, const task *t, bool full);

/* Free the owned strings and reset the task to zero. */
void task_clear(task *t);

/*
 * A task's history: its status transitions, oldest first. Stores keep at
 * most TASK_HISTORY_MAX entries per task (the first and the latest ones),
 * each with at most TASK_HISTORY_MSG_MAX bytes of its message.
 */
#define TASK_HISTORY_MAX     64
#define TASK_HISTORY_MSG_MAX 512

typedef struct task_history_entry {
    task_status status;
    char *status_msg; /* owned; never NULL once loaded */
    int64_t time;     /* Unix seconds */
} task_history_entry;

typedef struct task_history {
    task_history_entry *entries; /* owned */
    size_t count;
    bool truncated; /* entries are missing: dropped by the bound, or never recorded */
} task_history;

/* How many bytes of msg a history entry keeps: at most TASK_HISTORY_MSG_MAX, whole UTF-8
 * characters only. */
size_t task_history_msg_len(const char *msg);
/* Append an entry (its message cut as above); false when out of memory. */
bool task_history_add(task_history *h, task_status status, const char *msg, int64_t time);
/*
 * What is known of the history of a task that has none recorded (kept
 * before histories were): its creation and, if it changed since, its
 * current status; always truncated.
 */
bool task_history_of_task(task_history *h, const task *t);
/* A Unix time as ISO 8601 UTC text, e.g. "2022-03-25T17:26:43Z" (without quotes). */
void task_time_iso_text(char out[32], int64_t t);
/* Append task_time_iso_text() as a JSON string. */
void task_time_iso(sbuf *b, int64_t t);
/* Append {"id": ..., "history": [...], "truncated": ...}, as GET /tasks/{id}/history returns. */
void task_history_to_json(sbuf *b, const char *id, const task_history *h);
void task_history_clear(task_history *h);

#endif
