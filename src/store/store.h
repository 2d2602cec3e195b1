/*
 * store — the task store port.
 *
 * The API and the runner speak to storage only through this interface: a
 * struct of operations that each adapter (SQLite locally, store_sqlite.h;
 * DynamoDB on AWS, aws/dynamodb_store.h) fills in. Every write also records
 * a change record in the same atomic unit (the SQLite change log; DynamoDB
 * Streams), so the change stream sees exactly the committed writes; a
 * client's claim made again, which moves only its lease, changes nothing a
 * reader sees of the task and records none locally.
 *
 * Writes are asynchronous (store_submit: the adapter calls back when the
 * write is durable), so one thread can have many in flight and an adapter
 * can commit many callers' writes together; store_write_wait() and the
 * store_*_task() helpers wait for one. Reads answer without waiting for
 * writes. Each adapter names itself (store_ops.system), reports commits
 * to a store_listener and labels the spans of its writes (store_trace_write():
 * a store behind a service names the call that decided each), so nothing
 * above the port knows which one it is.
 *
 * All operations are safe to call from many threads at once. Strings passed
 * in are borrowed until the write is done; tasks handed out are owned by
 * the caller (task_clear / store_page_free).
 */
#ifndef TASKD_STORE_H
#define TASKD_STORE_H

#include "core/span.h"
#include "core/task.h"
#include "util/metrics.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* How long an idempotency key is remembered, in seconds (README: 24 h). */
#define STORE_IDEMPOTENCY_WINDOW (24 * 3600)
/* The longest Idempotency-Key, of a create or a claim, in bytes. */
#define STORE_IDEMPOTENCY_KEY_MAX 255

typedef enum store_rc {
    STORE_OK = 0,
    STORE_NOT_FOUND, /* no such task */
    STORE_CONFLICT,  /* transition not allowed; current holds the task as it is */
    STORE_REPEAT,    /* the change had already been made; nothing written */
    STORE_DUPLICATE, /* idempotency key seen before; id_out holds the first task's id */
    STORE_BUSY,      /* the database is locked or overloaded: retry later */
    STORE_INVALID,   /* the store can never keep this (too deep, too large): do not retry */
    STORE_ERROR,     /* I/O error, full disk, corruption, out of memory */
} store_rc;

/* A task to create. */
typedef struct store_new_task {
    const char *task_type;
    const char *data;       /* compact JSON object text */
    const char *data_image; /* the same as AttributeValue JSON, or NULL to derive it */
    /* the bytes DynamoDB counts for data_image, as attrval_write() gave them; 0 (or no
     * data_image): both derived from data where a store needs them */
    size_t data_size;
    int64_t ttl;                 /* Unix seconds or TASK_NULL_TIME */
    const char *idempotency_key; /* NULL for none */
    const char *trace;           /* trace context to keep with the task, or NULL */
    const char *tracestate;      /* the W3C tracestate that came with it (normal form), or NULL */
} store_new_task;

/* A status change (PATCH). */
typedef struct store_update {
    const char *id;
    task_status status;
    const char *status_msg; /* never NULL */
    const char *result;     /* JSON text, or NULL to leave it unset */
    /* A reclaim (STORE_WRITE_RECLAIM) only: taken only while the task's last claim is at or
     * before this time (unix s), else STORE_CONFLICT, so that of two deliveries that would
     * run a task again at once one does; 0: whenever. */
    int64_t claimed_before;
    /* Only from CREATED, a task nobody has claimed: from any other status the change is
     * STORE_CONFLICT (unless it is the very change already made: STORE_REPEAT). */
    bool from_created;
    /* A client's claim (status IN_PROGRESS) only: the Idempotency-Key it came with, or NULL,
     * and when its lease ends (Unix s; 0: never, as for a runner's claim). Kept with the task
     * while it is IN_PROGRESS. The same claim again (the same key and message) is STORE_REPEAT,
     * and moves the lease's end to this one when it is later. */
    const char *claim_key;
    int64_t claim_expires;
    /* Only while the task is IN_PROGRESS under a claim whose lease ends at exactly this time
     * (Unix s), else STORE_CONFLICT: the end of a lease that nobody renewed; 0: whenever. */
    int64_t lease_ended;
} store_update;

/* Whether u is the claim that holds cur: the same key and message, cur IN_PROGRESS. */
static inline bool store_update_is_held_claim(const store_update *u, const task *cur)
{
    return u->status == TASK_IN_PROGRESS && cur->status == TASK_IN_PROGRESS && u->claim_key &&
           cur->claim_key && strcmp(u->claim_key, cur->claim_key) == 0 &&
           strcmp(u->status_msg, cur->status_msg ? cur->status_msg : "") == 0;
}

/* task_decide() for u, of the task cur, with u's from_created and lease_ended; the claim that
 * holds the task, made again, is TASK_REPEAT. */
static inline task_verdict store_update_decide(const store_update *u, const task *cur)
{
    if (store_update_is_held_claim(u, cur))
        return TASK_REPEAT;
    if (u->lease_ended && (cur->status != TASK_IN_PROGRESS || cur->claim_expires != u->lease_ended))
        return TASK_CONFLICT;
    task_verdict v = task_decide(cur->status, cur->status_msg, u->status, u->status_msg);
    return v == TASK_APPLY && u->from_created && cur->status != TASK_CREATED ? TASK_CONFLICT : v;
}

/* Whether a repeat of u, the claim that holds cur, moves its lease's end (to u's, later). */
static inline bool store_update_renews(const store_update *u, const task *cur)
{
    return store_update_is_held_claim(u, cur) && u->claim_expires > cur->claim_expires &&
           cur->claim_expires != 0;
}

/* One page of GET /tasks, newest first. */
typedef struct store_list_query {
    const char *before_id; /* only ids below this one; NULL for the first page */
    const char *status;    /* filter or NULL */
    const char *task_type; /* filter or NULL */
    int limit;             /* 1..100 */
} store_list_query;

typedef struct store_page {
    task *tasks; /* list form: data and result not loaded; may be NULL when count is 0 */
    size_t count;
    int more; /* non-zero when tasks older than the last one exist */
} store_page;

typedef struct store store;

/* A client's claim whose lease has ended (store_ops.expired_claims). */
typedef struct store_claim {
    char id[37];
    int64_t claim_expires; /* when its lease ended, Unix seconds */
} store_claim;

typedef enum store_write_kind {
    STORE_WRITE_CREATE, /* create a task (POST) */
    STORE_WRITE_UPDATE, /* change a task's status (PATCH) */
    /* A redelivery runs a task that is IN_PROGRESS again (an earlier delivery died or
     * overran): record that claim as a change of the task, still IN_PROGRESS, whose
     * status_msg (update.status_msg) and updated_time move, with its history entry and its
     * change record (a MODIFY from IN_PROGRESS to IN_PROGRESS). STORE_CONFLICT when it is no
     * longer IN_PROGRESS. */
    STORE_WRITE_RECLAIM,
} store_write_kind;

/*
 * A write handed to the store. The caller owns it and everything it points
 * to until done() has been called; done() runs exactly once, after the write
 * is durable or has failed, and must not block. It may run on another thread
 * (an adapter that commits in the background) or on the caller's own, before
 * store_submit() returns (an adapter whose writes are remote calls).
 */
typedef struct store_write {
    store_write_kind kind;
    int64_t now; /* Unix seconds of the request */
    /* May be lost to a power failure (not to a crash): work that is redone
     * after a restart anyway, such as a claim or a queue receive. A batch of
     * only relaxed writes commits without waiting for the disk. */
    bool relaxed;
    store_new_task create; /* in, for CREATE */
    store_update update;   /* in, for UPDATE; id and status_msg for RECLAIM */
    char id[37];           /* out, for CREATE: the new task's id (or the first one, on DUPLICATE) */
    task current; /* out, for UPDATE and RECLAIM: the task before, when found; caller clears */
    store_rc rc;  /* out */
    /* out, with a failed rc: the write may have been made all the same (a remote store that did
     * not answer in time, or failed after it may have taken the write); for CREATE, id then
     * names the task it may have made. A local store's failures are never unknown. */
    bool unknown;
    /* out, for CREATE with STORE_INVALID: the bytes the task would take in the store, and the
     * most a new task may take there (room kept for the changes it can take later), when the
     * store refused it for its size before writing it; both 0 else */
    size_t size, size_limit;
    /* out, for the write's span (store_trace_write()): the remote call that decided it — its
     * operation, a static name (NULL when none was made, as a local store never makes one),
     * and the service's id of the request ("" when unknown) */
    const char *call;
    char call_request_id[64];
    void (*done)(struct store_write *w);
    void *user; /* the caller's, e.g. for done() to find its context */
    /* the adapter's while it holds the write: a queue link, and a slot for its own kinds of work */
    struct store_write *next;
    void *adapter_data;
} store_write;

/*
 * What a store tells its owner as writes commit (metrics); every member is
 * optional. Called on the thread that committed, after the commit; must not
 * block.
 */
typedef struct store_listener {
    /* A task was created (created: status is CREATED) or changed status, durably. */
    void (*changed)(void *ctx, const char *task_type, task_status status, bool created);
    /* One atomic unit of writes committed (durable: it waited for the disk), in seconds. */
    void (*committed)(void *ctx, size_t writes, double seconds, bool durable);
    void *ctx;
} store_listener;

typedef struct store_ops {
    const char *system; /* what the store is, as OpenTelemetry's db.system names it: "sqlite" */
    /* Queue a write; w->done(w) reports the outcome. */
    void (*submit)(store *s, store_write *w);
    store_rc (*get_task)(store *s, const char *id, task *out);
    store_rc (*list_tasks)(store *s, const store_list_query *q, store_page *out);
    /* A task's status transitions, oldest first (bounded: see task_history). */
    store_rc (*get_history)(store *s, const char *id, task_history *out);
    store_rc (*ping)(store *s);
    /* Whether writes succeed: STORE_OK, or STORE_ERROR with a one-line reason in why when the
     * store cannot write for a reason that does not pass by itself (a full disk, an I/O error,
     * a read-only file). Optional: NULL when the store cannot tell. */
    store_rc (*write_health)(store *s, char *why, size_t len);
    /* 16 bytes of secret that are stable for the life of the data (page tokens); cheap
     * after the first call (an adapter may fetch it then, not when it opens). */
    store_rc (*secret)(store *s, uint8_t key[16]);
    /* Add to sp, the span of the done write w, what the adapter knows of how it was made: for a
     * store that is a remote service, the call that decided it, with OpenTelemetry's names.
     * Optional: NULL when there is nothing to add. */
    void (*trace_write)(store *s, const store_write *w, span *sp);
    /* Up to max tasks IN_PROGRESS under a client's claim whose lease ended before now, the
     * earliest ends first, into out (*n of them). Optional: NULL for a store that keeps none. */
    store_rc (*expired_claims)(store *s, int64_t now, store_claim *out, size_t max, size_t *n);
    void (*close)(store *s);
} store_ops;

/* Every adapter's handle starts with this. */
struct store {
    const store_ops *ops;
};

/* Human-readable name of a return code, for logs. */
const char *store_rc_name(store_rc rc);
/* Free a page's tasks. */
void store_page_free(store_page *p);

/* Hand a write to the store without waiting (see store_write). */
static inline void store_submit(store *s, store_write *w)
{
    s->ops->submit(s, w);
}
/* Submit a write and wait for its outcome. */
store_rc store_write_wait(store *s, store_write *w);
/*
 * A group of writes submitted together and waited for together; they
 * usually share one commit. Each write's done() is taken over.
 */
typedef struct store_batch {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    size_t pending;
} store_batch;

void store_batch_init(store_batch *b);
/* Submit w as part of the batch. */
void store_batch_submit(store_batch *b, store *s, store_write *w);
/* Wait until every write submitted so far is done, then release the batch. */
void store_batch_wait(store_batch *b);

/* Create a task and wait; on STORE_OK or STORE_DUPLICATE, id_out holds its id. */
store_rc store_create_task(store *s, const store_new_task *t, int64_t now, char id_out[37]);
/* Load one task with data and result. */
static inline store_rc store_get_task(store *s, const char *id, task *out)
{
    return s->ops->get_task(s, id, out);
}
/* Load a page of tasks. */
static inline store_rc store_list_tasks(store *s, const store_list_query *q, store_page *out)
{
    return s->ops->list_tasks(s, q, out);
}
/*
 * Apply a status change under the rules of store_update_decide() and wait. When the
 * task exists, *current (if not NULL) receives it as it was before the
 * change; the caller clears it.
 */
store_rc store_update_task(store *s, const store_update *u, int64_t now, task *current);
/*
 * Load a task's history: every status it took, with its message and time,
 * as recorded in the same atomic unit as the change (STORE_NOT_FOUND when
 * there is no such task). The caller clears *out (task_history_clear).
 */
static inline store_rc store_get_history(store *s, const char *id, task_history *out)
{
    return s->ops->get_history(s, id, out);
}
/* STORE_OK when the store answers. */
static inline store_rc store_ping(store *s)
{
    return s->ops->ping(s);
}
/* STORE_OK when writes succeed, as far as the store can tell; else why says why not. */
static inline store_rc store_write_health(store *s, char *why, size_t len)
{
    return s->ops->write_health ? s->ops->write_health(s, why, len) : STORE_OK;
}
/* For a log line about a failed write, the name of its last field: "reason", with the reason the
 * store cannot write put in why, when rc is STORE_ERROR and the store knows one (a full disk, say);
 * else NULL, which ends the fields there. why is the field's value, passed after it:
 *     log_warn(..., store_reason_field(s, rc, why, sizeof why), why, NULL); */
static inline const char *store_reason_field(store *s, store_rc rc, char *why, size_t len)
{
    why[0] = '\0';
    if (rc == STORE_ERROR)
        store_write_health(s, why, len);
    return why[0] ? "reason" : NULL;
}
static inline store_rc store_secret(store *s, uint8_t key[16])
{
    return s->ops->secret(s, key);
}
/* Label sp, the span of the done write w, with what the store knows of it (trace_write). */
static inline void store_trace_write(store *s, const store_write *w, span *sp)
{
    if (s->ops->trace_write)
        s->ops->trace_write(s, w, sp);
}
/* Log a task the store itself failed (a message that expired or went to a dead-letter queue, a
 * claim's lease that ran out): a warning with its id, the reason and the id of its trace, from
 * traceparent (the task's trace context, or NULL), as the runners log a handler's failure. */
void store_log_task_failed(const char *task_id, const char *traceparent, const char *why);
/*
 * End the leases of client claims that ended before now, at most max of them: each task still
 * IN_PROGRESS under a claim that nobody renewed becomes FAILED, "claim expired: no outcome
 * reported by <its lease's end>" (a write of its own, which a renewal or an outcome that came
 * first wins: that task is left as it is), logged as a warning with its task and trace ids and
 * counted in m (when not NULL) as taskd_claims_expired_total{task_type}.
 * *ended counts the tasks failed. STORE_OK, or the first failure; *more is set when max were
 * found and some ended (there may be more).
 */
store_rc store_end_expired_claims(store *s, int64_t now, size_t max, size_t *ended, bool *more,
                                  metrics *m);
/* Flush pending writes and release everything. */
static inline void store_close(store *s)
{
    if (s)
        s->ops->close(s);
}

#endif
