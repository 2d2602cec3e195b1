/*
 * task_cache — recently read tasks; see task_cache.h.
 */
#include "task_cache.h"

#include "core/sbuf.h"
#include "util/clock.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A task whose strings (message, data, result, trace, tracestate) take more is not kept. */
#define KEEP_MAX 2048

/*
 * A set: the tasks whose ids hash to it, up to TASK_CACHE_WAYS, under one lock. Holds and the
 * generation are the set's: a hold names the task its commit changes (held_id), so that reads
 * of the set's other tasks go on; when commits under way change several of its tasks, or any
 * (hold_all), held_id is "" and no task of the set is read.
 */
typedef struct set {
    pthread_mutex_t mu;
    pthread_cond_t released;       /* held fell to 0 */
    uint64_t gen;                  /* moved on by every hold and release */
    unsigned held;                 /* commits under way that change a task of this set */
    char held_id[TASK_ID_LEN + 1]; /* the task they change; "" when they change several */
    unsigned next;                 /* the way a put replaces when none is free */
    bool used[TASK_CACHE_WAYS];
    task ways[TASK_CACHE_WAYS];
} set;

struct task_cache {
    size_t n;
    set *sets;
};

task_cache *task_cache_new(size_t n)
{
    task_cache *c = calloc(1, sizeof *c);
    if (!c || !(c->sets = calloc(n ? n : 1, sizeof *c->sets))) {
        free(c);
        return NULL;
    }
    c->n = n ? n : 1;
    for (size_t i = 0; i < c->n; i++) {
        pthread_mutex_init(&c->sets[i].mu, NULL);
        clock_mono_cond_init(&c->sets[i].released);
    }
    return c;
}

void task_cache_free(task_cache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++) {
        for (size_t w = 0; w < TASK_CACHE_WAYS; w++)
            task_clear(&c->sets[i].ways[w]);
        pthread_mutex_destroy(&c->sets[i].mu);
        pthread_cond_destroy(&c->sets[i].released);
    }
    free(c->sets);
    free(c);
}

static set *set_of(task_cache *c, const char *id)
{
    uint64_t h = 1469598103934665603u; /* FNV-1a: the id's random tail spreads it */
    for (const char *p = id; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211u;
    return &c->sets[h % c->n];
}

/* The way that keeps task id, or -1. */
static int way_of(const set *s, const char *id)
{
    for (int w = 0; w < TASK_CACHE_WAYS; w++)
        if (s->used[w] && strcmp(s->ways[w].id, id) == 0)
            return w;
    return -1;
}

/* A commit under way changes task id (or may: several, or all). */
static bool held_for(const set *s, const char *id)
{
    return s->held && (!s->held_id[0] || strcmp(s->held_id, id) == 0);
}

/* A deep copy; false (dst empty) when out of memory. */
static bool copy_task(task *dst, const task *src)
{
    *dst = *src;
    dst->status_msg = src->status_msg ? strdup(src->status_msg) : NULL;
    dst->data = src->data ? strdup(src->data) : NULL;
    dst->result = src->result ? strdup(src->result) : NULL;
    dst->trace = src->trace ? strdup(src->trace) : NULL;
    dst->tracestate = src->tracestate ? strdup(src->tracestate) : NULL;
    dst->claim_key = src->claim_key ? strdup(src->claim_key) : NULL;
    if ((src->status_msg && !dst->status_msg) || (src->data && !dst->data) ||
        (src->result && !dst->result) || (src->trace && !dst->trace) ||
        (src->tracestate && !dst->tracestate) || (src->claim_key && !dst->claim_key)) {
        task_clear(dst);
        return false;
    }
    return true;
}

static size_t weight(const task *t)
{
    const char *s[] = {t->status_msg, t->data, t->result, t->trace, t->tracestate, t->claim_key};
    size_t n = 0;
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++)
        n += s[i] ? strlen(s[i]) : 0;
    return n;
}

bool task_cache_get(task_cache *c, const char *id, task *out, uint64_t *gen)
{
    set *s = set_of(c, id);
    pthread_mutex_lock(&s->mu);
    if (held_for(s, id)) {
        /* a commit of this task is under way: answer what it writes, not what it replaces */
        struct timespec until = clock_mono_after_ms(TASK_CACHE_HOLD_WAIT_MS);
        int rc = 0;
        while (held_for(s, id) && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&s->released, &s->mu, &until);
    }
    int w = held_for(s, id) ? -1 : way_of(s, id);
    bool found = w >= 0 && copy_task(out, &s->ways[w]);
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
    set *s = set_of(c, t->id);
    task old = {0};
    pthread_mutex_lock(&s->mu);
    /* no commit held this set since the read began, nor holds this task now */
    bool fresh = s->gen == gen && !held_for(s, t->id);
    if (fresh) {
        int w = way_of(s, t->id);
        for (int i = 0; w < 0 && i < TASK_CACHE_WAYS; i++)
            if (!s->used[i])
                w = i;
        if (w < 0) {
            w = (int)s->next;
            s->next = (s->next + 1) % TASK_CACHE_WAYS;
        }
        old = s->ways[w];
        s->ways[w] = copy;
        s->used[w] = true;
    }
    pthread_mutex_unlock(&s->mu);
    task_clear(fresh ? &old : &copy);
}

/* Drop what set s keeps of task id (NULL: all it keeps), move its generation on, and take (+1)
 * or end (-1) a hold of that task. */
static void drop(set *s, const char *id, int hold)
{
    task old[TASK_CACHE_WAYS];
    int n_old = 0;
    pthread_mutex_lock(&s->mu);
    s->gen++;
    if (hold > 0) {
        bool same = s->held && id && strcmp(s->held_id, id) == 0;
        s->held++;
        if (!same) /* the first hold names its task; another task's makes it "several" */
            str_join(s->held_id, sizeof s->held_id, s->held == 1 && id ? id : "", NULL);
    } else if (hold < 0 && s->held && --s->held == 0) { /* a release follows its hold */
        s->held_id[0] = '\0';
        pthread_cond_broadcast(&s->released);
    }
    for (int w = 0; w < TASK_CACHE_WAYS; w++) {
        if (s->used[w] && (!id || strcmp(s->ways[w].id, id) == 0)) {
            old[n_old++] = s->ways[w];
            memset(&s->ways[w], 0, sizeof s->ways[w]);
            s->used[w] = false;
        }
    }
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < n_old; i++)
        task_clear(&old[i]);
}

void task_cache_hold(task_cache *c, const char *id)
{
    drop(set_of(c, id), id, 1);
}

void task_cache_release(task_cache *c, const char *id)
{
    drop(set_of(c, id), id, -1);
}

void task_cache_hold_all(task_cache *c)
{
    for (size_t i = 0; i < c->n; i++)
        drop(&c->sets[i], NULL, 1);
}

void task_cache_release_all(task_cache *c)
{
    for (size_t i = 0; i < c->n; i++)
        drop(&c->sets[i], NULL, -1);
}
