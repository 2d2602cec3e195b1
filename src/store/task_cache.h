/*
 * task_cache — the tasks read lately by id, so that reading one again
 * (GET /tasks/{id}, a client polling its task) needs no read transaction.
 *
 * Correctness rests on two rules the SQLite store keeps:
 *   - the writer forgets every task a commit changed after the commit and
 *     before it tells anyone of it, so nobody told of a write reads what was
 *     there before;
 *   - a reader that missed notes its slot's generation, reads the database,
 *     and puts what it read only if the generation is unchanged: a commit
 *     that forgot the slot in between (whose data the read may or may not
 *     have seen) makes the put a no-op.
 * A direct-mapped table of slots, each with its own lock; tasks whose
 * strings are large are not kept, so the cache stays small.
 */
#ifndef TASKD_TASK_CACHE_H
#define TASKD_TASK_CACHE_H

#include "core/task.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct task_cache task_cache;

/* A cache of n slots; NULL when out of memory. */
task_cache *task_cache_new(size_t n);
void task_cache_free(task_cache *c);

/* A copy of the kept task into *out: true when found. Else false, and *gen
 * gets the slot's generation for task_cache_put(). */
bool task_cache_get(task_cache *c, const char *id, task *out, uint64_t *gen);
/* Keep a copy of t as read after a get that missed with gen, unless the slot was forgotten
 * since or t is too large to keep. */
void task_cache_put(task_cache *c, const task *t, uint64_t gen);
/* Task id changed or went: drop it and move its slot's generation on. */
void task_cache_forget(task_cache *c, const char *id);
/* Every task: task_cache_forget() of each slot. */
void task_cache_forget_all(task_cache *c);

#endif
