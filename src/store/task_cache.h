/*
 * task_cache — the tasks read lately by id, so that reading one again
 * (GET /tasks/{id}, a client polling its task) needs no read transaction.
 *
 * Correctness rests on two rules the SQLite store keeps:
 *   - the writer holds every task a commit changes from just before the
 *     commit until just after it, and a held task is not read from the
 *     cache: a reader that sees the commit some other way (its change
 *     record, a wake-up, a reply) never reads the task as it was before;
 *   - a reader that missed notes its set's generation, reads the database,
 *     and puts what it read only if the generation is unchanged: a hold or a
 *     release in between (a commit whose data the read may or may not have
 *     seen) makes the put a no-op.
 * Sets of TASK_CACHE_WAYS tasks, each set with its own lock, chosen by a hash
 * of the id; tasks whose strings are large are not kept, so the cache stays
 * small.
 */
#ifndef TASKD_TASK_CACHE_H
#define TASKD_TASK_CACHE_H

#include "core/task.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Tasks a set keeps: ids that hash alike share a set without pushing each other out. */
#define TASK_CACHE_WAYS 4

typedef struct task_cache task_cache;

/* A cache of n sets (n * TASK_CACHE_WAYS tasks); NULL when out of memory. */
task_cache *task_cache_new(size_t n);
void task_cache_free(task_cache *c);

/* A get waits at most this long for a commit under way on its task. */
#define TASK_CACHE_HOLD_WAIT_MS 20

/* A copy of the kept task into *out: true when found. Else false, and *gen
 * gets the set's generation for task_cache_put(). A commit under way that
 * changes task id (held) is waited for, up to TASK_CACHE_HOLD_WAIT_MS, so
 * that the read that follows a miss answers what the commit wrote. A commit
 * slower than that is not waited for: the read answers the task as the
 * database holds it, before a write its writer has not been answered yet. */
bool task_cache_get(task_cache *c, const char *id, task *out, uint64_t *gen);
/* Keep a copy of t as read after a get that missed with gen, unless its set was held or
 * released since (or t is held now), or t is too large to keep. When its set is full, t takes
 * the place of one of the set's tasks, each in turn. */
void task_cache_put(task_cache *c, const task *t, uint64_t gen);
/* A commit is about to change task id: drop it, and read it from the database (gets miss,
 * puts are no-ops) until task_cache_release(). Holds add up. Holds of two tasks of one set
 * at once make gets and puts of all its tasks miss until both are released. */
void task_cache_hold(task_cache *c, const char *id);
/* The commit (or its rollback) is done: end one hold of id, dropping it again. */
void task_cache_release(task_cache *c, const char *id);
/* Every task: task_cache_hold() / task_cache_release() of all (what a commit changed is not
 * known). */
void task_cache_hold_all(task_cache *c);
void task_cache_release_all(task_cache *c);

#endif
