/*
 * store — the task store port.
 *
 * The API and (later) the pipeline speak to storage only through this
 * interface: a struct of operations that each adapter (SQLite locally,
 * DynamoDB on AWS) fills in. Every write also records a change record in the
 * same atomic unit, so the change stream sees exactly the committed writes.
 *
 * All operations are safe to call from many threads at once. Strings passed
 * in are borrowed for the duration of the call; tasks handed out are owned by
 * the caller (task_clear / store_page_free).
 */
#ifndef TASKD_STORE_H
#define TASKD_STORE_H

#include "core/task.h"

#include <stddef.h>
#include <stdint.h>

typedef enum store_rc {
    STORE_OK = 0,
    STORE_NOT_FOUND, /* no such task */
    STORE_CONFLICT,  /* transition not allowed; *current holds the task as it is */
    STORE_REPEAT,    /* the change had already been made; nothing written */
    STORE_DUPLICATE, /* idempotency key seen before; id_out holds the first task's id */
    STORE_BUSY,      /* the database is locked or overloaded: retry later */
    STORE_ERROR,     /* I/O error, full disk, corruption, out of memory */
} store_rc;

/* A task to create. */
typedef struct store_new_task {
    const char *task_type;
    const char *data;            /* compact JSON object text */
    int64_t ttl;                 /* Unix seconds or TASK_NULL_TIME */
    const char *idempotency_key; /* NULL for none */
    const char *trace;           /* trace context to keep with the task, or NULL */
} store_new_task;

/* A status change (PATCH). */
typedef struct store_update {
    const char *id;
    task_status status;
    const char *status_msg; /* never NULL */
    const char *result;     /* JSON text, or NULL to leave it unset */
} store_update;

/* One page of GET /tasks, newest first. */
typedef struct store_list_query {
    const char *before_id; /* only ids below this one; NULL for the first page */
    const char *status;    /* filter or NULL */
    const char *task_type; /* filter or NULL */
    int limit;             /* 1..100 */
} store_list_query;

typedef struct store_page {
    task *tasks; /* list form: data and result not loaded */
    size_t count;
    int more; /* non-zero when tasks older than the last one exist */
} store_page;

typedef struct store store;

typedef struct store_ops {
    store_rc (*create_task)(store *s, const store_new_task *t, int64_t now, char id_out[37]);
    store_rc (*get_task)(store *s, const char *id, task *out);
    store_rc (*list_tasks)(store *s, const store_list_query *q, store_page *out);
    store_rc (*update_task)(store *s, const store_update *u, int64_t now, task *current);
    store_rc (*ping)(store *s);
    /* 16 bytes of secret that are stable for the life of the data (page tokens). */
    store_rc (*secret)(store *s, uint8_t key[16]);
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

/* Create a task; on STORE_OK or STORE_DUPLICATE, id_out holds its id. */
static inline store_rc store_create_task(store *s, const store_new_task *t, int64_t now,
                                         char id_out[37])
{
    return s->ops->create_task(s, t, now, id_out);
}
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
 * Apply a status change under the rules of task_decide(). On STORE_CONFLICT
 * (and STORE_OK / STORE_REPEAT) *current, if not NULL, receives the task as it
 * was before the change; the caller clears it.
 */
static inline store_rc store_update_task(store *s, const store_update *u, int64_t now,
                                         task *current)
{
    return s->ops->update_task(s, u, now, current);
}
/* STORE_OK when the store answers. */
static inline store_rc store_ping(store *s)
{
    return s->ops->ping(s);
}
static inline store_rc store_secret(store *s, uint8_t key[16])
{
    return s->ops->secret(s, key);
}
/* Flush pending writes and release everything. */
static inline void store_close(store *s)
{
    if (s)
        s->ops->close(s);
}

#endif
