/*
 * exec_handler — runs a configured program per task; see exec_handler.h for the contract.
 *
 * Design:
 * - Creation does everything that can fail for configuration reasons: it validates argv,
 *   resolves the program in PATH and snapshots the allow-listed part of the environment
 *   (PATH, HOME, LANG, LC_*, TZ, TMPDIR: nothing else, so no credential or token of taskd's
 *   reaches a program unless env_extra names it). The handler is read-only
 *   afterwards (but for the list of runs in progress, under its mutex), so any number of
 *   threads may run it at once.
 * - run() turns the task into a child process (child.h): the task as one line of JSON on its
 *   standard input, the snapshot plus TASK_ID, TASK_TYPE, TRACEPARENT and TRACESTATE as its
 *   environment.
 *   How the child ended becomes the handler_result; exec_result.h makes the result text and
 *   the failure message, this file the messages for a run that could not go as planned.
 * - Every run is contained and limited by child.h: its whole process tree is killed on
 *   timeout, when standard output passes EXEC_STDOUT_MAX, and after every exit; abort() kills
 *   the trees of the runs in progress (tracked from before their start to their reap, in a list
 *   that needs no memory) and of any started afterwards. It notes when it came: a run whose
 *   deadline had passed by then timed out, though its thread saw the deadline and the kill at
 *   once. The timeout counts from before the start: a start that hangs times out, or is
 *   aborted, as a run does. The CPU limit is the run's timeout + 1 s: the timeout ends a
 *   single-threaded program first; the limit stops one whose threads burn CPU time faster than
 *   the clock.
 */
#include "runner/exec_handler.h"
#include "core/errbuf.h"
#include "core/sbuf.h"
#include "runner/child.h"
#include "runner/exec_result.h"
#include "util/clock.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* Searched when PATH is unset. */
#define DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"
/* The kernel's handlers of other executable formats, where mounted. */
#define BINFMT_MISC "/proc/sys/fs/binfmt_misc"

/* A run between its start and its reap, on the stack of the thread that runs it: the list of
 * them that abort() walks needs no memory, so no run started escapes an abort. */
typedef struct tracked_run {
    child *c;
    struct tracked_run *prev, *next;
} tracked_run;

/* The handler: the interface first, then the read-only configuration. */
typedef struct exec_handler {
    handler base;
    char *path;       /* the file to execute: argv[0] or where PATH found it */
    char **argv;      /* NULL-terminated copy of the configured argv */
    char *label;      /* "exec <program's file name>", the base's label */
    char **env;       /* NULL-terminated: allow-listed inherited variables, then env_extra */
    size_t env_count; /* entries in env */
    exec_limits limits;
    /* children running now (started, not yet reaped), for abort() */
    pthread_mutex_t mu;
    tracked_run *running;
    bool aborted;
    int64_t aborted_ms; /* when abort() came (clock_mono_ms()) */
} exec_handler;

/* ---- small helpers ---- */

/* Thread-safe strerror. */
static const char *errstr(int e, char *buf, size_t len)
{
#if defined(__GLIBC__) && defined(_GNU_SOURCE)
    return strerror_r(e, buf, len);
#else
    if (strerror_r(e, buf, len) != 0)
        snprintf(buf, len, "error %d", e);
    return buf;
#endif
}

/* Set out->status_msg from a format; falls back to "out of memory" (NULL only if even that fails).
 */
static void set_status(handler_result *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void set_status(handler_result *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    free(out->status_msg);
    out->status_msg = s ? s : strdup("out of memory");
}

static void free_strv(char **v)
{
    if (!v)
        return;
    for (char **p = v; *p; p++)
        free(*p);
    free(v);
}

/* Length of the name in a "NAME=value" string (all of it if there is no '='). */
static size_t env_name_len(const char *kv)
{
    const char *eq = strchr(kv, '=');
    return eq ? (size_t)(eq - kv) : strlen(kv);
}

static bool same_env_name(const char *a, const char *b)
{
    size_t n = env_name_len(a);
    return n == env_name_len(b) && strncmp(a, b, n) == 0;
}

/* True for the inherited variables a program gets (all others are dropped). */
static bool is_passed_through(const char *kv)
{
    static const char *const names[] = {"PATH=", "HOME=", "LANG=", "TZ=", "TMPDIR="};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (same_env_name(kv, names[i]))
            return true;
    return strncmp(kv, "LC_", 3) == 0; /* LC_ALL, LC_CTYPE, ... */
}

/* True for the variables run() sets for each task. */
static bool is_task_var(const char *kv)
{
    static const char *const names[] = {"TASK_ID=", "TASK_TYPE=", "TRACEPARENT=", "TRACESTATE="};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (same_env_name(kv, names[i]))
            return true;
    return false;
}

/* ---- creation ---- */

/* 0 if path is an executable regular file, else an errno value. */
static int check_executable(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return errno;
    if (S_ISDIR(st.st_mode))
        return EISDIR;
    if (!S_ISREG(st.st_mode))
        return EACCES;
    if (access(path, X_OK) != 0)
        return errno;
    return 0;
}

/* Whether the kernel has binfmt_misc handlers, which may run a file that is neither ELF nor has a
 * #! line (a .jar, a .exe): entries in BINFMT_MISC besides "register" and "status". */
static bool binfmt_handlers(void)
{
    DIR *d = opendir(BINFMT_MISC);
    if (!d)
        return false; /* not mounted: none */
    bool any = false;
    for (struct dirent *e; !any && (e = readdir(d));)
        any = e->d_name[0] != '.' && strcmp(e->d_name, "register") != 0 &&
              strcmp(e->d_name, "status") != 0;
    closedir(d);
    return any;
}

/* Whether the kernel can run the executable file at path, as far as its first bytes tell: an ELF
 * image, or a #! line whose interpreter is an executable file (a relative one is found from the
 * working directory, which a run inherits), or anything when binfmt_misc has handlers. Anything
 * else fails every run (execve: ENOEXEC, or ENOENT for the interpreter); said in err. A file it
 * cannot read (mode 0111) passes. */
static bool check_format(const char *path, char *err, size_t errlen)
{
    static const char elf[4] = {0x7f, 'E', 'L', 'F'};
    char head[256]; /* what Linux reads of a #! line (BINPRM_BUF_SIZE) */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, head, sizeof head - 1) : -1;
    if (fd >= 0)
        close(fd);
    if (n < 0)
        return true;
    head[n] = '\0';
    if (n >= 4 && memcmp(head, elf, sizeof elf) == 0)
        return true;
    if (n < 2 || head[0] != '#' || head[1] != '!') {
        if (binfmt_handlers())
            return true; /* one of them may take it */
        errbuf_set(err, errlen, "exec: %s: not a program the system can run (no #! line, not ELF)",
                   path);
        return false;
    }
    char *interp = head + 2 + strspn(head + 2, " \t");
    size_t len = strcspn(interp, " \t\n");
    if (!interp[len] && (size_t)n == sizeof head - 1)
        return true; /* a line longer than what was read: left to the kernel */
    interp[len] = '\0';
    char ebuf[128];
    int e = *interp ? check_executable(interp) : ENOENT;
    if (e) {
        errbuf_set(err, errlen, "exec: %s: its #! line names \"%s\": %s", path, interp,
                   errstr(e, ebuf, sizeof ebuf));
        return false;
    }
    return true;
}

/* Find the file to execute for argv[0]; NULL with a message in err if there is none. */
static char *resolve_program(const char *name, char *err, size_t errlen)
{
    char ebuf[128];
    if (strchr(name, '/')) {
        int e = check_executable(name);
        if (e) {
            errbuf_set(err, errlen, "exec: %s: %s", name, errstr(e, ebuf, sizeof ebuf));
            return NULL;
        }
        char *p = strdup(name);
        if (!p)
            errbuf_set(err, errlen, "exec: out of memory");
        return p;
    }
    const char *path = getenv("PATH");
    if (!path)
        path = DEFAULT_PATH;
    for (const char *dir = path;;) {
        const char *end = strchr(dir, ':');
        size_t dlen = end ? (size_t)(end - dir) : strlen(dir);
        sbuf b = {0};
        if (dlen == 0)
            sbuf_putc(&b, '.'); /* an empty PATH entry means the current directory */
        else
            sbuf_append(&b, dir, dlen);
        sbuf_putc(&b, '/');
        sbuf_puts(&b, name);
        char *cand = sbuf_take(&b, NULL);
        if (!cand) {
            errbuf_set(err, errlen, "exec: out of memory");
            return NULL;
        }
        if (check_executable(cand) == 0)
            return cand;
        free(cand);
        if (!end)
            break;
        dir = end + 1;
    }
    errbuf_set(err, errlen, "exec: %s: no executable of that name in PATH", name);
    return NULL;
}

/* The allow-listed inherited variables (PATH at least) minus the names env_extra sets, then
 * env_extra. */
static char **build_base_env(const char *const *extra, size_t nextra, size_t *count)
{
    size_t ninherit = 0;
    for (char **e = environ; e && *e; e++)
        ninherit++;
    char **env = calloc(ninherit + nextra + 2, sizeof *env);
    if (!env)
        return NULL;
    size_t n = 0;
    bool have_path = false;
    for (size_t i = 0; i < nextra; i++)
        have_path = have_path || same_env_name(extra[i], "PATH=");
    for (char **e = environ; e && *e; e++) {
        if (!strchr(*e, '=') || !is_passed_through(*e))
            continue;
        bool overridden = false;
        for (size_t i = 0; i < nextra && !overridden; i++)
            overridden = same_env_name(*e, extra[i]);
        for (size_t i = 0; i < n && !overridden; i++) /* a name twice in environ: the first */
            overridden = same_env_name(*e, env[i]);
        if (overridden)
            continue;
        have_path = have_path || same_env_name(*e, "PATH=");
        if (!(env[n++] = strdup(*e)))
            goto oom;
    }
    if (!have_path && !(env[n++] = strdup("PATH=" DEFAULT_PATH)))
        goto oom;
    for (size_t i = 0; i < nextra; i++) {
        bool later = false; /* the last of several entries with one name wins */
        for (size_t j = i + 1; j < nextra && !later; j++)
            later = same_env_name(extra[i], extra[j]);
        if (later)
            continue;
        if (!(env[n++] = strdup(extra[i])))
            goto oom;
    }
    *count = n;
    return env;
oom:
    free_strv(env);
    return NULL;
}

static void exec_run(handler *h, const handler_task *t, unsigned timeout_s, handler_result *out);
static void exec_free(handler *h);
static void exec_abort(handler *h);

handler *exec_handler_new(const char *const *argv, size_t argc, const char *const *env_extra,
                          char *err, size_t errlen)
{
    return exec_handler_new_limited(argv, argc, env_extra, NULL, err, errlen);
}

handler *exec_handler_new_limited(const char *const *argv, size_t argc,
                                  const char *const *env_extra, const exec_limits *limits,
                                  char *err, size_t errlen)
{
    errbuf_set(err, errlen, "%s", "");
    if (!argv || argc == 0 || !argv[0] || !argv[0][0]) {
        errbuf_set(err, errlen, "exec: the command is empty");
        return NULL;
    }
    for (size_t i = 1; i < argc; i++) {
        if (!argv[i]) {
            errbuf_set(err, errlen, "exec: argument %zu is NULL", i);
            return NULL;
        }
    }
    size_t nextra = 0;
    for (; env_extra && env_extra[nextra]; nextra++) {
        const char *kv = env_extra[nextra];
        if (!strchr(kv, '=') || kv[0] == '=') {
            errbuf_set(err, errlen, "exec: environment entry \"%s\" is not NAME=value", kv);
            return NULL;
        }
        if (is_task_var(kv)) {
            errbuf_set(err, errlen, "exec: environment entry \"%s\" sets a variable run() sets",
                       kv);
            return NULL;
        }
    }

    exec_handler *x = calloc(1, sizeof *x);
    if (!x) {
        errbuf_set(err, errlen, "exec: out of memory");
        return NULL;
    }
    x->base = (handler){
        .name = "exec", .run = exec_run, .free = exec_free, .abort = exec_abort, .ctx = x};
    pthread_mutex_init(&x->mu, NULL);
    if (limits)
        x->limits = *limits;
    if (!x->limits.memory_bytes)
        x->limits.memory_bytes = EXEC_MEMORY_MAX;
    if (!x->limits.open_files)
        x->limits.open_files = EXEC_OPEN_FILES_MAX;
    if (!(x->path = resolve_program(argv[0], err, errlen)) || !check_format(x->path, err, errlen))
        goto fail;
    if (!(x->argv = calloc(argc + 1, sizeof *x->argv)))
        goto oom;
    for (size_t i = 0; i < argc; i++)
        if (!(x->argv[i] = strdup(argv[i])))
            goto oom;
    const char *slash = strrchr(argv[0], '/');
    if (asprintf(&x->label, "exec %s", slash ? slash + 1 : argv[0]) < 0) {
        x->label = NULL;
        goto oom;
    }
    x->base.label = x->label;
    if (!(x->env = build_base_env(env_extra, nextra, &x->env_count)))
        goto oom;
    return &x->base;
oom:
    errbuf_set(err, errlen, "exec: out of memory");
fail:
    exec_free(&x->base);
    return NULL;
}

static void exec_free(handler *h)
{
    if (!h)
        return;
    exec_handler *x = h->ctx;
    free(x->path);
    free(x->label);
    free_strv(x->argv);
    free_strv(x->env);
    pthread_mutex_destroy(&x->mu);
    free(x);
}

/* ---- runs in progress, for abort() ---- */

/*
 * Note a child (t->c), from before its start, so abort() can kill it; if the handler was aborted
 * already, kill it at once. It cannot fail: t is the caller's until untrack_child(). (It once
 * grew an array, and a run whose growth failed went unnoted, to run on past an abort until its
 * timeout.)
 */
static void track_child(exec_handler *x, tracked_run *t)
{
    pthread_mutex_lock(&x->mu);
    if (x->aborted)
        child_kill(t->c);
    t->prev = NULL;
    t->next = x->running;
    if (x->running)
        x->running->prev = t;
    x->running = t;
    pthread_mutex_unlock(&x->mu);
}

/* Forget a child before it is reaped (its supervisor's pid stays valid until then). */
static void untrack_child(exec_handler *x, tracked_run *t)
{
    pthread_mutex_lock(&x->mu);
    if (t->prev)
        t->prev->next = t->next;
    else
        x->running = t->next;
    if (t->next)
        t->next->prev = t->prev;
    pthread_mutex_unlock(&x->mu);
}

static void exec_abort(handler *h)
{
    exec_handler *x = h->ctx;
    pthread_mutex_lock(&x->mu);
    if (!x->aborted) {
        x->aborted = true;
        x->aborted_ms = clock_mono_ms();
    }
    for (tracked_run *t = x->running; t; t = t->next)
        child_kill(t->c);
    pthread_mutex_unlock(&x->mu);
}

/* Whether abort() came at or after ms (clock_mono_ms()). */
static bool aborted_since(exec_handler *x, int64_t ms)
{
    pthread_mutex_lock(&x->mu);
    bool since = x->aborted && x->aborted_ms >= ms;
    pthread_mutex_unlock(&x->mu);
    return since;
}

/* ---- one run ---- */

/* The task as one line of JSON for the child's stdin; NULL when out of memory. */
static char *build_input(const handler_task *t, size_t *len)
{
    sbuf b = {0};
    sbuf_puts(&b, "{\"id\":");
    sbuf_json_str(&b, t->id ? t->id : "");
    sbuf_puts(&b, ",\"task_type\":");
    sbuf_json_str(&b, t->task_type ? t->task_type : "");
    sbuf_puts(&b, ",\"data\":");
    sbuf_puts(&b, t->data && t->data[0] ? t->data : "null");
    sbuf_puts(&b, "}\n");
    return sbuf_take(&b, len);
}

/* The base environment plus this task's variables; the last *nowned entries are to be freed. */
static char **build_env(const exec_handler *x, const handler_task *t, size_t *nowned)
{
    const char *names[] = {"TASK_ID=", "TASK_TYPE=", "TRACEPARENT=", "TRACESTATE="};
    /* a tracestate only beside the traceparent it goes with, and never empty */
    const char *values[] = {t->id ? t->id : "", t->task_type ? t->task_type : "", t->traceparent,
                            t->traceparent && t->tracestate && t->tracestate[0] ? t->tracestate
                                                                                : NULL};
    size_t count = sizeof names / sizeof names[0];
    char **env = calloc(x->env_count + count + 1, sizeof *env);
    if (!env)
        return NULL;
    memcpy(env, x->env, x->env_count * sizeof *env);
    size_t n = x->env_count;
    *nowned = 0;
    for (size_t i = 0; i < count; i++) {
        if (!values[i])
            continue;
        sbuf b = {0};
        sbuf_puts(&b, names[i]);
        sbuf_puts(&b, values[i]);
        if (!(env[n] = sbuf_take(&b, NULL))) {
            for (size_t j = x->env_count; j < n; j++)
                free(env[j]);
            free(env);
            return NULL;
        }
        n++;
        (*nowned)++;
    }
    return env;
}

static void free_env(char **env, size_t count, size_t nowned)
{
    if (!env)
        return;
    for (size_t i = 0; i < nowned; i++)
        free(env[count + i]);
    free(env);
}

/* A failure to start that says taskd is short of something (descriptors, processes, memory),
 * not that the program cannot run: the task is tried again later (handler_result.retry). */
static bool short_of_resources(int code)
{
    return code == EMFILE || code == ENFILE || code == EAGAIN || code == ENOMEM;
}

/* Fill *out for a child that could not be started, watched or reaped. */
static void report_failure(handler_result *out, const exec_handler *x, const child *c)
{
    char ebuf[128];
    int code;
    child_step step = child_failure(c, &code);
    const char *why = errstr(code, ebuf, sizeof ebuf);
    /* taskd's own shortage, not the task's outcome: to start it, to wait for it, or to keep
     * what it printed */
    out->retry = ((step == CHILD_PIPES || step == CHILD_SPAWN) && short_of_resources(code)) ||
                 ((step == CHILD_POLL || step == CHILD_READ_STDOUT) && code == ENOMEM);
    out->lost = step == CHILD_SUPERVISOR; /* killed under the run: its end is not known */
    switch (step) {
    case CHILD_PIPES:
        set_status(out, "exec: cannot create pipes: %s", why);
        break;
    case CHILD_SPAWN:
        set_status(out, "exec: cannot start %s: %s", x->path, why);
        break;
    case CHILD_POLL:
        set_status(out, "exec: poll: %s", why);
        break;
    case CHILD_READ_STDOUT:
        set_status(out, "exec: reading standard output: %s", why);
        break;
    case CHILD_REAP:
        set_status(out, "exec: cannot get the exit status of %s: %s", x->path, why);
        break;
    case CHILD_SUPERVISOR:
        set_status(out, "exec: the process supervising %s ended without its exit status; run again",
                   x->path);
        break;
    case CHILD_OK: /* an abort before the start: nothing was started (no reap) */
        set_status(out, "exec: %s did not run", x->path);
        break;
    }
}

/* Fill *out from how the child ended: completed with its stdout, or failed with its stderr. */
static void report_exit(handler_result *out, int status, const child *c, unsigned cpu_limit_s)
{
    size_t n;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        const char *text = child_stdout(c, &n);
        if (exec_result_from_stdout(text, n, &out->result) != 0) {
            set_status(out, "exec: out of memory building the result");
            out->retry = true; /* it completed: the outcome is not a failure of the task's */
            return;
        }
        out->ok = true;
        /* not set_status(), whose fallback says "out of memory": NULL if even this fails, and
         * the work step reports it as "Task completed" */
        free(out->status_msg);
        out->status_msg = strdup("Task completed");
        return;
    }
    bool cut;
    const char *tail = child_stderr_tail(c, &n, &cut);
    char *msg = exec_result_failure(status, cpu_limit_s, child_cpu_ms(c), tail, n, cut);
    if (msg) {
        free(out->status_msg);
        out->status_msg = msg;
    } else {
        set_status(out, "exec: out of memory");
    }
}

/* Start a child and run it to its end within timeout_s (0: no limit), its start included, and
 * fill *out. abort() reaches it from before its start: a start that hangs is a run too. */
static void run_child(exec_handler *x, child *c, unsigned timeout_s, unsigned cpu_limit_s,
                      handler_result *out)
{
    tracked_run tracked = {.c = c};
    track_child(x, &tracked);
    const int64_t deadline = timeout_s ? clock_mono_ms() + (int64_t)timeout_s * 1000 : INT64_MAX;
    child_end end = child_start(c, deadline) != 0 ? CHILD_FAILED : child_wait(c, deadline);
    /* A kill that ended the wait (an abort's, seen alone or with the end it caused) but came at
     * or after the deadline, which this thread, held up waking from it, saw only with the kill:
     * the run had timed out first, as a TASK1 wait had run out. */
    bool killed = end == CHILD_KILLED || (end == CHILD_EXITED && !child_ended_alone(c));
    if (killed && aborted_since(x, deadline))
        end = CHILD_TIMED_OUT;
    /* Kill whatever is left of the run while the unreaped supervisor still holds its pid. */
    child_kill(c);
    untrack_child(x, &tracked);
    int status;
    int wait_err = child_reap(c, &status);

    if (end == CHILD_TIMED_OUT)
        set_status(out, "timed out after %u s", timeout_s);
    else if (end == CHILD_STDOUT_OVER)
        set_status(out, "output over %zu bytes; not kept", EXEC_STDOUT_MAX);
    else if (end == CHILD_FAILED || wait_err)
        report_failure(out, x, c);
    else if (end == CHILD_KILLED && WIFEXITED(status) && WEXITSTATUS(status) == 0)
        set_status(out, "aborted; its output was not read to the end"); /* never a result */
    else
        report_exit(out, status, c, cpu_limit_s);
    /* the program ended by itself and all it wrote was read, or the run timed out or its
     * output went over before an abort's kill came (child_wait() gives a time-out only when it
     * saw no kill first, and output over whenever the bytes past the cap were read, which the
     * program wrote before any kill ended it; a kill seen with the deadline it came after is a
     * time-out, above): its outcome is the task's, even when an abort came while the output was
     * drained or the run cleared */
    out->own_end = end == CHILD_TIMED_OUT || end == CHILD_STDOUT_OVER ||
                   (end == CHILD_EXITED && !wait_err && child_ended_alone(c));
}

static void exec_run(handler *h, const handler_task *t, unsigned timeout_s, handler_result *out)
{
    if (!out)
        return;
    *out = (handler_result){0};
    if (!h || !h->ctx || !t) {
        set_status(out, "exec: run() called without a handler or a task");
        return;
    }
    exec_handler *x = h->ctx;
    size_t input_len = 0, nowned = 0;
    char *input = build_input(t, &input_len);
    char **env = build_env(x, t, &nowned);
    unsigned cpu_s = x->limits.cpu_s;
    if (!cpu_s && timeout_s && timeout_s < UINT_MAX)
        cpu_s = timeout_s + 1;
    child *c = NULL;
    if (input && env)
        c = child_new(&(child_spec){.path = x->path,
                                    .argv = x->argv,
                                    .env = env,
                                    .input = input,
                                    .input_len = input_len,
                                    .stdout_max = EXEC_STDOUT_MAX,
                                    .stderr_tail = EXEC_STDERR_TAIL,
                                    .drain_ms = EXEC_DRAIN_MS,
                                    .limits = {.cpu_s = cpu_s,
                                               .data_bytes = x->limits.memory_bytes,
                                               .nofile = x->limits.open_files,
                                               .no_core = true}});
    if (!c) {
        set_status(out, "exec: out of memory");
        out->retry = true;
    } else {
        run_child(x, c, timeout_s, cpu_s, out);
    }
    child_free(c);
    free(input);
    free_env(env, x->env_count, nowned);
}
