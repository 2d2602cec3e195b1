/*
 * oom — the allocation wrappers and the sweep (oom.h). Only the thread that runs a sweep is
 * counted and failed (the run is thread-local): a library's own threads allocate as usual,
 * unless one allocation of theirs is armed to fail by name (oom_thread_arm()).
 *
 * jansson 2.14's parser and dumper do not survive an allocation failing inside them: the
 * lexer drops a byte of a token whose buffer cannot grow (and can write past it), and a dump
 * leaves out a key it could not append and still succeeds. Those are jansson's to mend, not
 * the code under test's, so a parse or a dump is one point of failure here: the program's
 * calls of json_loads(), json_loadb(), json_load_file() and json_dumps() come to the
 * definitions below (they take the symbols), which fail as a whole or run jansson's own with
 * nothing inside failing. The blocks they make still count, so a tree or text never freed is
 * still caught.
 */
#include "oom.h"

#include <dlfcn.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
void __real_free(void *p);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
int __real_vasprintf(char **out, const char *fmt, va_list ap);

void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t size);
void __wrap_free(void *p);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);
int __wrap_vasprintf(char **out, const char *fmt, va_list ap);
int __wrap_asprintf(char **out, const char *fmt, ...);
/* what _FORTIFY_SOURCE turns (v)asprintf into */
int __wrap___vasprintf_chk(char **out, int flag, const char *fmt, va_list ap);
int __wrap___asprintf_chk(char **out, int flag, const char *fmt, ...);

/* The current run: this thread's alone, so other threads never see one armed. */
static _Thread_local struct {
    bool on;
    int quiet; /* inside jansson's parse or dump, or a scenario's check: nothing fails */
    size_t allocations, failures;
    size_t fail_at; /* 1-based; 0: none fails */
    bool and_after; /* and every allocation after it */
    long live;      /* blocks allocated less blocks freed, this run */
} run;

/* Whether this allocation fails (errno set as the real one would). */
static bool fails(void)
{
    if (!run.on || run.quiet)
        return false;
    size_t n = ++run.allocations;
    if (run.fail_at && (n == run.fail_at || (run.and_after && n > run.fail_at))) {
        run.failures++;
        errno = ENOMEM;
        return true;
    }
    return false;
}

/* The armed failure on other threads (oom_thread_arm()): countdown is the allocations of at
 * least min_size by a thread of that name still to go before the one that fails; 0 when none
 * is armed. */
static struct {
    char name[16];
    size_t min_size;
    atomic_uint countdown;
    atomic_bool failed;
} other;

void oom_thread_arm(const char *thread_name, size_t min_size, unsigned nth)
{
    atomic_store(&other.countdown, 0);
    snprintf(other.name, sizeof other.name, "%s", thread_name);
    other.min_size = min_size;
    atomic_store(&other.failed, false);
    atomic_store(&other.countdown, nth);
}

/* The armed failure of a copy on another thread (oom_thread_arm_copy()). */
static struct {
    char name[16];
    char text[128];
    atomic_uint skip; /* copies of the text still to make before the one that fails */
    atomic_bool armed;
} copy;

void oom_thread_arm_copy(const char *thread_name, const char *text)
{
    oom_thread_arm_copy_nth(thread_name, text, 1);
}

void oom_thread_arm_copy_nth(const char *thread_name, const char *text, unsigned nth)
{
    atomic_store(&copy.armed, false);
    snprintf(copy.name, sizeof copy.name, "%s", thread_name);
    snprintf(copy.text, sizeof copy.text, "%s", text);
    atomic_store(&copy.skip, nth ? nth - 1 : 0);
    atomic_store(&other.failed, false);
    atomic_store(&copy.armed, true);
}

bool oom_thread_failed(void)
{
    return atomic_load(&other.failed);
}

void oom_thread_disarm(void)
{
    atomic_store(&other.countdown, 0);
    atomic_store(&copy.armed, false);
}

/* Whether this copy of s (n bytes at most) is the one armed to fail on another thread. */
static bool copy_fails(const char *s, size_t n)
{
    if (!atomic_load_explicit(&copy.armed, memory_order_acquire) ||
        strnlen(s, n) != strlen(copy.text) || strncmp(s, copy.text, strlen(copy.text)) != 0)
        return false;
    char name[16];
    if (pthread_getname_np(pthread_self(), name, sizeof name) != 0 || strcmp(name, copy.name) != 0)
        return false;
    unsigned skip = atomic_load(&copy.skip);
    while (skip && !atomic_compare_exchange_weak(&copy.skip, &skip, skip - 1))
        ;
    if (skip)
        return false; /* an earlier copy than the one armed */
    if (!atomic_exchange(&copy.armed, false))
        return false;
    atomic_store(&other.failed, true);
    errno = ENOMEM;
    return true;
}

/* Whether this allocation of size bytes is the one armed to fail on another thread. */
static bool thread_fails(size_t size)
{
    if (atomic_load_explicit(&other.countdown, memory_order_acquire) == 0 || size < other.min_size)
        return false;
    char name[16];
    if (pthread_getname_np(pthread_self(), name, sizeof name) != 0 || strcmp(name, other.name) != 0)
        return false;
    unsigned left = atomic_load(&other.countdown);
    while (left > 0 && !atomic_compare_exchange_weak(&other.countdown, &left, left - 1))
        ;
    if (left != 1)
        return false;
    atomic_store(&other.failed, true);
    errno = ENOMEM;
    return true;
}

static void *made(void *p)
{
    if (p && run.on)
        run.live++;
    return p;
}

void *__wrap_malloc(size_t size)
{
    return fails() || thread_fails(size) ? NULL : made(__real_malloc(size));
}

void *__wrap_calloc(size_t n, size_t size)
{
    return fails() || thread_fails(n * size) ? NULL : made(__real_calloc(n, size));
}

void *__wrap_realloc(void *p, size_t size)
{
    if (!p)
        return __wrap_malloc(size);
    if (size == 0) { /* glibc frees p */
        __wrap_free(p);
        return NULL;
    }
    if (fails() || thread_fails(size))
        return NULL; /* p stays as it was */
    return __real_realloc(p, size);
}

void __wrap_free(void *p)
{
    if (p && run.on)
        run.live--;
    __real_free(p);
}

char *__wrap_strdup(const char *s)
{
    return fails() || copy_fails(s, SIZE_MAX) ? NULL : made(__real_strdup(s));
}

char *__wrap_strndup(const char *s, size_t n)
{
    return fails() || copy_fails(s, n) ? NULL : made(__real_strndup(s, n));
}

int __wrap_vasprintf(char **out, const char *fmt, va_list ap)
{
    if (fails())
        return -1; /* *out is undefined then: left as it was */
    int n = __real_vasprintf(out, fmt, ap);
    if (n >= 0)
        made(*out);
    return n;
}

int __wrap_asprintf(char **out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = __wrap_vasprintf(out, fmt, ap);
    va_end(ap);
    return n;
}

int __wrap___vasprintf_chk(char **out, int flag, const char *fmt, va_list ap)
{
    (void)flag;
    return __wrap_vasprintf(out, fmt, ap);
}

int __wrap___asprintf_chk(char **out, int flag, const char *fmt, ...)
{
    (void)flag;
    va_list ap;
    va_start(ap, fmt);
    int n = __wrap_vasprintf(out, fmt, ap);
    va_end(ap);
    return n;
}

void oom_pause(void)
{
    run.quiet++;
}

void oom_resume(void)
{
    run.quiet--;
}

/* jansson's parse and dump, each one point of failure (see the top of the file). */

/* The real function of that name, past the program's own definition. */
static void *jansson(const char *name)
{
    void *f = dlsym(RTLD_NEXT, name);
    if (!f) {
        fprintf(stderr, "oom: jansson's %s not found\n", name);
        abort();
    }
    return f;
}

/* Whether a parse fails at its start, as jansson 2.14's does when its lexer cannot be made:
 * errno ENOMEM, the error's position reset and its text empty, and no error code set. */
static bool parse_fails(json_error_t *error)
{
    if (!fails())
        return false;
    if (error) {
        error->line = error->column = -1;
        error->position = 0;
        snprintf(error->source, sizeof error->source, "<string>");
        error->text[0] = '\0';
    }
    return true;
}

json_t *json_loads(const char *input, size_t flags, json_error_t *error)
{
    static json_t *(*real)(const char *, size_t, json_error_t *);
    if (!real)
        *(void **)&real = jansson("json_loads");
    if (parse_fails(error))
        return NULL;
    run.quiet++;
    json_t *j = real(input, flags, error);
    run.quiet--;
    return j;
}

json_t *json_loadb(const char *buffer, size_t len, size_t flags, json_error_t *error)
{
    static json_t *(*real)(const char *, size_t, size_t, json_error_t *);
    if (!real)
        *(void **)&real = jansson("json_loadb");
    if (parse_fails(error))
        return NULL;
    run.quiet++;
    json_t *j = real(buffer, len, flags, error);
    run.quiet--;
    return j;
}

json_t *json_load_file(const char *path, size_t flags, json_error_t *error)
{
    static json_t *(*real)(const char *, size_t, json_error_t *);
    if (!real)
        *(void **)&real = jansson("json_load_file");
    if (parse_fails(error))
        return NULL;
    run.quiet++;
    json_t *j = real(path, flags, error);
    run.quiet--;
    return j;
}

char *json_dumps(const json_t *json, size_t flags)
{
    static char *(*real)(const json_t *, size_t);
    if (!real)
        *(void **)&real = jansson("json_dumps");
    if (fails())
        return NULL;
    run.quiet++;
    char *text = real(json, flags);
    run.quiet--;
    return text;
}

size_t oom_allocations(void)
{
    return run.allocations;
}

size_t oom_failures(void)
{
    return run.failures;
}

int oom_teardown(void **state)
{
    (void)state;
    run.on = false;
    run.quiet = 0;
    return 0;
}

/* One run of fn with allocation fail_at failing (and those after it): fn's result. Aborts,
 * with what it was, when the run leaves blocks behind or fails with nothing failing. */
static bool one_run(const char *name, oom_scenario fn, void *arg, size_t fail_at, bool and_after)
{
    run.allocations = run.failures = 0;
    run.fail_at = fail_at;
    run.and_after = and_after;
    run.live = 0;
    run.on = true;
    bool ok = fn(arg);
    run.on = false;
    const char *wrong = NULL;
    if (run.live != 0)
        wrong = "left blocks allocated";
    else if (!ok && run.failures == 0)
        wrong = "failed with no allocation failing";
    if (wrong) {
        fprintf(stderr, "oom: %s %s (%ld blocks) in the run failing allocation %zu%s\n", name,
                wrong, run.live, fail_at, and_after ? " and after" : "");
        abort();
    }
    return ok;
}

size_t oom_sweep(const char *name, oom_scenario fn, void *arg)
{
    json_set_alloc_funcs(__wrap_malloc, __wrap_free); /* counted while a run is on, as the rest */
    if (!one_run(name, fn, arg, 0, false)) {
        fprintf(stderr, "oom: %s failed with nothing failing\n", name);
        abort();
    }
    size_t n = run.allocations;
    size_t failed_runs = 0;
    for (size_t k = 1; k <= n; k++)
        for (int and_after = 0; and_after <= 1; and_after++)
            failed_runs += !one_run(name, fn, arg, k, and_after);
    printf("oom: %s: %zu allocations, %zu runs, %zu of them reported the failure\n", name, n, 2 * n,
           failed_runs);
    return n;
}
