/*
 * task_cache — recently read tasks; see task_cache.h.
 */
#include "task_cache.h"
#include "util/clock.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A task whose strings (message, data, result, trace) take more is not kept. */
#define KEEP_MAX 2048
/* A get waits at most this long for a commit under way on its task. */
#define HOLD_WAIT_MS 20

typedef struct slot {
    pthread_mutex_t mu;
    pthread_cond_t released;       /* held fell to 0 */
    uint64_t gen;                  /* moved on by every hold and release */
    unsigned held;                 /* commits under way that change a task of this slot */
    char held_id[TASK_ID_LEN + 1]; /* the task they change; "" when they change several */
    bool used;
    task t;
} slot;

struct task_cache {
    size_t n;
    slot *slots;
};

task_cache *task_cache_new(size_t n)
{
    task_cache *c = calloc(1, sizeof *c);
    if (!c || !(c->slots = calloc(n ? n : 1, sizeof *c->slots))) {
        free(c);
        return NULL;
    }
    c->n = n ? n : 1;
    for (size_t i = 0; i < c->n; i++) {
        pthread_mutex_init(&c->slots[i].mu, NULL);
        clock_mono_cond_init(&c->slots[i].released);
    }
    return c;
}

void task_cache_free(task_cache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++) {
        task_clear(&c->slots[i].t);
        pthread_mutex_destroy(&c->slots[i].mu);
        pthread_cond_destroy(&c->slots[i].released);
    }
    free(c->slots);
    free(c);
}

static slot *slot_of(task_cache *c, const char *id)
{
    uint64_t h = 1469598103934665603u; /* FNV-1a: the id's random tail spreads it */
    for (const char *p = id; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211u;
    return &c->slots[h % c->n];
}

/* A deep copy; false (dst empty) when out of memory. */
static bool copy_task(task *dst, const task *src)
{
    *dst = *src;
    dst->status_msg = src->status_msg ? strdup(src->status_msg) : NULL;
    dst->data = src->data ? strdup(src->data) : NULL;
    dst->result = src->result ? strdup(src->result) : NULL;
    dst->trace = src->trace ? strdup(src->trace) : NULL;
    if ((src->status_msg && !dst->status_msg) || (src->data && !dst->data) ||
        (src->result && !dst->result) || (src->trace && !dst->trace)) {
        task_clear(dst);
        return false;
    }
    return true;
}

static size_t weight(const task *t)
{
    const char *s[] = {t->status_msg, t->data, t->result, t->trace};
    size_t n = 0;
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++)
        n += s[i] ? strlen(s[i]) : 0;
    return n;
}

bool task_cache_get(task_cache *c, const char *id, task *out, uint64_t *gen)
{
    slot *s = slot_of(c, id);
    pthread_mutex_lock(&s->mu);
    if (s->held && (!s->held_id[0] || strcmp(s->held_id, id) == 0)) {
        /* a commit of this task is under way: answer what it writes, not what it replaces */
        struct timespec until = clock_mono_after_ms(HOLD_WAIT_MS);
        int rc = 0;
        while (s->held && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&s->released, &s->mu, &until);
    }
    bool found = s->used && !s->held && strcmp(s->t.id, id) == 0 && copy_task(out, &s->t);
    *gen = s->gen;
    pthread_mutex_unlock(&s->mu);
    return found;
}

void task_cache_put(task_cache *c, const task *t, uint64_t gen)
{
    if (weight(t) > KEEP_MAX)
        return;
    task copy;
    if (!copy_task(&copy, t))
        return;
    slot *s = slot_of(c, t->id);
    task old = {0};
    pthread_mutex_lock(&s->mu);
    bool fresh = s->gen == gen && !s->held; /* no commit held this slot since the read began */
    if (fresh) {
        old = s->t;
        s->t = copy;
        s->used = true;
    }
    pthread_mutex_unlock(&s->mu);
    task_clear(fresh ? &old : &copy);
}

/* Drop what slot s keeps, move its generation on, and take (+1) or end (-1) a hold of task id
 * (NULL: of any). */
static void drop(slot *s, const char *id, int hold)
{
    task old = {0};
    pthread_mutex_lock(&s->mu);
    s->gen++;
    if (hold > 0) {
        bool same = s->held && id && strcmp(s->held_id, id) == 0;
        s->held++;
        if (!same) /* the first hold names its task; another task's makes it "several" */
            snprintf(s->held_id, sizeof s->held_id, "%s", s->held == 1 && id ? id : "");
    } else if (hold < 0 && s->held && --s->held == 0) { /* a release follows its hold */
        s->held_id[0] = '\0';
        pthread_cond_broadcast(&s->released);
    }
    if (s->used) {
        old = s->t;
        memset(&s->t, 0, sizeof s->t);
        s->used = false;
    }
    pthread_mutex_unlock(&s->mu);
    task_clear(&old);
}

void task_cache_hold(task_cache *c, const char *id)
{
    drop(slot_of(c, id), id, 1);
}

void task_cache_release(task_cache *c, const char *id)
{
    drop(slot_of(c, id), id, -1);
}

void task_cache_hold_all(task_cache *c)
{
    for (size_t i = 0; i < c->n; i++)
        drop(&c->slots[i], NULL, 1);
}

void task_cache_release_all(task_cache *c)
{
    for (size_t i = 0; i < c->n; i++)
        drop(&c->slots[i], NULL, -1);
}
