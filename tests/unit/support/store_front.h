/*
 * store_front — a store in front of another, for tests that need a store to answer some writes
 * as a real one would not on demand (busy, in error, refused).
 *
 * Each write goes first to answer(): when it sets w->rc and returns true, the front answers the
 * write itself (done() is called, answered counts it); when it returns false, the write goes to
 * inner. Reads, health and the span of a write go to inner. With no inner, answer() must answer
 * every write, and reads fail with STORE_ERROR.
 *
 * Header only, as the support library needs nothing of taskd: the tests that include it link
 * the store port already.
 */
#ifndef TASKD_TEST_STORE_FRONT_H
#define TASKD_TEST_STORE_FRONT_H

#include "store/store.h"

#include <stdbool.h>

typedef struct store_front store_front;
struct store_front {
    store base;
    store *inner; /* borrowed; NULL: none */
    bool (*answer)(store_front *f, store_write *w);
    store_rc rc;  /* for answer() to give, as it sees fit */
    int answered; /* the writes the front answered itself */
};

static inline store *store_front_inner(store *s)
{
    return ((store_front *)s)->inner;
}

static inline void store_front_submit(store *s, store_write *w)
{
    store_front *f = (store_front *)s;
    if (f->answer(f, w)) {
        f->answered++;
        w->done(w);
    } else if (f->inner) {
        store_submit(f->inner, w);
    } else {
        w->rc = STORE_ERROR;
        w->done(w);
    }
}

static inline store_rc store_front_get_task(store *s, const char *id, task *out)
{
    return store_front_inner(s) ? store_get_task(store_front_inner(s), id, out) : STORE_ERROR;
}

static inline store_rc store_front_list_tasks(store *s, const store_list_query *q, store_page *out)
{
    return store_front_inner(s) ? store_list_tasks(store_front_inner(s), q, out) : STORE_ERROR;
}

static inline store_rc store_front_get_history(store *s, const char *id, task_history *out)
{
    return store_front_inner(s) ? store_get_history(store_front_inner(s), id, out) : STORE_ERROR;
}

static inline store_rc store_front_ping(store *s)
{
    return store_front_inner(s) ? store_ping(store_front_inner(s)) : STORE_ERROR;
}

static inline store_rc store_front_secret(store *s, uint8_t key[16])
{
    return store_front_inner(s) ? store_secret(store_front_inner(s), key) : STORE_ERROR;
}

static inline void store_front_trace_write(store *s, const store_write *w, span *sp)
{
    if (store_front_inner(s))
        store_trace_write(store_front_inner(s), w, sp);
}

static inline void store_front_close(store *s)
{
    (void)s; /* inner is the caller's */
}

/* A front over inner (NULL: none) whose writes go first to answer(). */
static inline void store_front_init(store_front *f, store *inner,
                                    bool (*answer)(store_front *f, store_write *w), store_rc rc)
{
    static const store_ops ops = {
        .system = "front",
        .submit = store_front_submit,
        .get_task = store_front_get_task,
        .list_tasks = store_front_list_tasks,
        .get_history = store_front_get_history,
        .ping = store_front_ping,
        .secret = store_front_secret,
        .trace_write = store_front_trace_write,
        .close = store_front_close,
    };
    *f = (store_front){.base = {&ops}, .inner = inner, .answer = answer, .rc = rc};
}

#endif
