/*
 * exec_handler — runs a configured program per task; see exec_handler.h for the contract.
 *
 * Design:
 * - Creation does everything that can fail for configuration reasons: it validates argv,
 *   resolves the program in PATH and snapshots the environment. The handler is read-only
 *   afterwards, so run() takes no locks and any number of threads may run it at once.
 * - run() starts the child with posix_spawn() (never a shell). All pipe ends are created
 *   O_CLOEXEC and above fd 2, so a program another thread spawns at the same moment never
 *   inherits them; only the copies dup2'ed onto 0, 1 and 2 survive the exec. The child gets
 *   its own process group (POSIX_SPAWN_SETPGROUP), an empty signal mask and default signal
 *   dispositions: the server's ignored SIGPIPE or blocked SIGTERM must not leak into it.
 * - One poll() loop over non-blocking parent ends writes stdin and reads stdout and stderr, so
 *   no full pipe can deadlock either side, whether or not the child reads its input. The loop
 *   also wakes every TICK_MS to ask waitid(WNOWAIT) whether the child has exited: a background
 *   grandchild may hold the output pipes open, so EOF alone does not say the child is done.
 *   Once it has exited, output is drained for at most EXEC_DRAIN_MS.
 * - The group is killed (kill(-pgid, SIGKILL)) on timeout and after every exit, and only then
 *   is the child reaped, with waitpid() on its own pid: while it is an unreaped zombie its pid,
 *   which is also the group id, cannot be reused, so the kill never hits an unrelated group.
 * - A write to a pipe nobody reads raises SIGPIPE unless the process ignores it. run() blocks
 *   SIGPIPE in the calling thread only, while it writes, and consumes the one an EPIPE write
 *   raised, so it works whatever the process-wide disposition is and changes no global state.
 * - Standard output that parses as JSON (checked with jansson) is returned as its own text
 *   with the whitespace between tokens removed, not re-serialised: jansson would print 0.1 as
 *   0.10000000000000001. Text that is not JSON becomes a JSON string; invalid UTF-8 is
 *   replaced with U+FFFD there and in status messages, so both are always valid JSON/UTF-8.
 */
#include "runner/exec_handler.h"
#include "util/clock.h"

#include "util/errbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* Longest wait between two checks of whether the child has exited, in milliseconds. */
#define TICK_MS 50
/* Bytes read from a pipe at a time. */
#define READ_CHUNK 65536
/* Searched when PATH is unset. */
#define DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"

/* The handler: the interface first, then the read-only configuration. */
typedef struct exec_handler {
    handler base;
    char *path;       /* the file to execute: argv[0] or where PATH found it */
    char **argv;      /* NULL-terminated copy of the configured argv */
    char **env;       /* NULL-terminated: inherited variables, then env_extra */
    size_t env_count; /* entries in env */
    /* children running now (unreaped, so their ids cannot be reused), for abort() */
    pthread_mutex_t mu;
    pid_t *running;
    size_t n_running, cap_running;
    bool aborted;
} exec_handler;

/* ---- small helpers ---- */

/* A growable byte buffer; an allocation failure marks it failed and later appends do nothing. */
typedef struct obuf {
    char *p;
    size_t len, cap;
    size_t max; /* if non-zero: the most bytes it will hold, so growth stops at max + 1 */
    bool failed;
} obuf;

static bool ob_reserve(obuf *b, size_t more)
{
    if (b->failed)
        return false;
    if (more > SIZE_MAX - b->len - 1) {
        b->failed = true;
        return false;
    }
    size_t need = b->len + more + 1;
    if (need <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (b->max && need <= b->max + 1 && cap > b->max + 1)
        cap = b->max + 1;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->failed = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

static void ob_put(obuf *b, const void *s, size_t n)
{
    if (!ob_reserve(b, n))
        return;
    if (n)
        memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void ob_puts(obuf *b, const char *s)
{
    ob_put(b, s, strlen(s));
}

static void ob_printf(obuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void ob_printf(obuf *b, const char *fmt, ...)
{
    char small[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    if ((size_t)n < sizeof small) {
        ob_put(b, small, (size_t)n);
        return;
    }
    if (!ob_reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* Hand over the NUL-terminated bytes (NULL if an allocation failed) and reset. */
static char *ob_take(obuf *b)
{
    char *p = b->failed ? NULL : b->p;
    if (b->failed)
        free(b->p);
    else if (!p)
        p = calloc(1, 1);
    *b = (obuf){0};
    return p;
}

/* Length of the well-formed UTF-8 sequence at s[0..n), 0 if it is not one. */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0], lo = 0x80, hi = 0xBF;
    size_t len;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        else if (c == 0xED)
            hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90; /* overlong */
        else if (c == 0xF4)
            hi = 0x8F; /* above U+10FFFF */
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return len;
}

/* Append s[0..n) as UTF-8, each invalid byte (and NUL unless keep_nul) replaced with U+FFFD. */
static void ob_utf8(obuf *b, const char *s, size_t n, bool keep_nul)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, run = 0; /* u[run..i) is valid and not yet appended */
    while (i < n) {
        size_t len = utf8_seq_len(u + i, n - i);
        if (len && (u[i] != 0 || keep_nul)) {
            i += len;
            continue;
        }
        ob_put(b, s + run, i - run);
        ob_put(b, "\xEF\xBF\xBD", 3);
        run = ++i;
    }
    ob_put(b, s + run, n - run);
}

/* Append s[0..n) (valid UTF-8) as a quoted JSON string. */
static void ob_json_strn(obuf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    ob_put(b, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        ob_put(b, s + run, i - run);
        run = i + 1;
        switch (c) {
        case '"':
            ob_put(b, "\\\"", 2);
            break;
        case '\\':
            ob_put(b, "\\\\", 2);
            break;
        case '\n':
            ob_put(b, "\\n", 2);
            break;
        case '\r':
            ob_put(b, "\\r", 2);
            break;
        case '\t':
            ob_put(b, "\\t", 2);
            break;
        default: {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            ob_put(b, esc, sizeof esc);
        }
        }
    }
    ob_put(b, s + run, n - run);
    ob_put(b, "\"", 1);
}

/* Append valid JSON text s[0..n) without the whitespace between its tokens. */
static void ob_json_compact(obuf *b, const char *s, size_t n)
{
    bool in_string = false, escaped = false;
    size_t run = 0; /* s[run..i) is to be kept and not yet appended */
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_string) {
            if (escaped)
                escaped = false;
            else if (c == '\\')
                escaped = true;
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            ob_put(b, s + run, i - run);
            run = i + 1;
        }
    }
    ob_put(b, s + run, n - run);
}

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

/* True for the variables run() sets for each task. */
static bool is_task_var(const char *kv)
{
    static const char *const names[] = {"TASK_ID=", "TASK_TYPE=", "TRACEPARENT="};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (same_env_name(kv, names[i]))
            return true;
    return false;
}

static void close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd); /* not retried on EINTR: the descriptor is released either way */
        *fd = -1;
    }
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
        obuf b = {0};
        if (dlen == 0)
            ob_puts(&b, "."); /* an empty PATH entry means the current directory */
        else
            ob_put(&b, dir, dlen);
        ob_puts(&b, "/");
        ob_puts(&b, name);
        char *cand = ob_take(&b);
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

/* The inherited environment minus the task variables and names env_extra sets, then env_extra. */
static char **build_base_env(const char *const *extra, size_t nextra, size_t *count)
{
    size_t ninherit = 0;
    for (char **e = environ; e && *e; e++)
        ninherit++;
    char **env = calloc(ninherit + nextra + 1, sizeof *env);
    if (!env)
        return NULL;
    size_t n = 0;
    for (char **e = environ; e && *e; e++) {
        if (!strchr(*e, '=') || is_task_var(*e))
            continue;
        bool overridden = false;
        for (size_t i = 0; i < nextra && !overridden; i++)
            overridden = same_env_name(*e, extra[i]);
        if (overridden)
            continue;
        if (!(env[n++] = strdup(*e)))
            goto oom;
    }
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

/*
 * Note a running child so abort() can kill its group; if the handler was
 * aborted already, kill it at once. (If the list cannot grow, the child just
 * runs to its timeout.)
 */
static void track_child(exec_handler *x, pid_t pid)
{
    pthread_mutex_lock(&x->mu);
    if (x->aborted) {
        (void)kill(-pid, SIGKILL);
    } else {
        if (x->n_running == x->cap_running) {
            size_t cap = x->cap_running ? 2 * x->cap_running : 8;
            pid_t *p = realloc(x->running, cap * sizeof *p);
            if (p) {
                x->running = p;
                x->cap_running = cap;
            }
        }
        if (x->n_running < x->cap_running)
            x->running[x->n_running++] = pid;
    }
    pthread_mutex_unlock(&x->mu);
}

/* Forget a child before it is reaped (its id stays valid until then). */
static void untrack_child(exec_handler *x, pid_t pid)
{
    pthread_mutex_lock(&x->mu);
    for (size_t i = 0; i < x->n_running; i++) {
        if (x->running[i] == pid) {
            x->running[i] = x->running[--x->n_running];
            break;
        }
    }
    pthread_mutex_unlock(&x->mu);
}

static void exec_abort(handler *h)
{
    exec_handler *x = h->ctx;
    pthread_mutex_lock(&x->mu);
    x->aborted = true;
    for (size_t i = 0; i < x->n_running; i++)
        (void)kill(-x->running[i], SIGKILL);
    pthread_mutex_unlock(&x->mu);
}

handler *exec_handler_new(const char *const *argv, size_t argc, const char *const *env_extra,
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
    if (!(x->path = resolve_program(argv[0], err, errlen)))
        goto fail;
    if (!(x->argv = calloc(argc + 1, sizeof *x->argv)))
        goto oom;
    for (size_t i = 0; i < argc; i++)
        if (!(x->argv[i] = strdup(argv[i])))
            goto oom;
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
    free_strv(x->argv);
    free_strv(x->env);
    free(x->running);
    pthread_mutex_destroy(&x->mu);
    free(x);
}

/* ---- one run ---- */

/* The task as one line of JSON for the child's stdin; NULL when out of memory. */
static char *build_payload(const handler_task *t, size_t *len)
{
    const char *id = t->id ? t->id : "";
    const char *type = t->task_type ? t->task_type : "";
    obuf b = {0};
    ob_puts(&b, "{\"id\":");
    ob_json_strn(&b, id, strlen(id));
    ob_puts(&b, ",\"task_type\":");
    ob_json_strn(&b, type, strlen(type));
    ob_puts(&b, ",\"data\":");
    ob_puts(&b, t->data && t->data[0] ? t->data : "null");
    ob_puts(&b, "}\n");
    *len = b.len;
    return ob_take(&b);
}

/* The base environment plus this task's variables; the last *nowned entries are to be freed. */
static char **build_env(const exec_handler *x, const handler_task *t, size_t *nowned)
{
    char **env = calloc(x->env_count + 4, sizeof *env);
    if (!env)
        return NULL;
    memcpy(env, x->env, x->env_count * sizeof *env);
    const char *names[] = {"TASK_ID=", "TASK_TYPE=", "TRACEPARENT="};
    const char *values[] = {t->id ? t->id : "", t->task_type ? t->task_type : "", t->traceparent};
    size_t n = x->env_count;
    *nowned = 0;
    for (size_t i = 0; i < 3; i++) {
        if (!values[i])
            continue;
        obuf b = {0};
        ob_puts(&b, names[i]);
        ob_puts(&b, values[i]);
        if (!(env[n] = ob_take(&b))) {
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

/* pipe2(O_CLOEXEC) with both ends moved above fd 2, so dup2 onto 0..2 cannot clobber them. */
static int make_pipe(int p[2])
{
    if (pipe2(p, O_CLOEXEC) != 0) {
        p[0] = p[1] = -1;
        return errno;
    }
    for (int i = 0; i < 2; i++) {
        if (p[i] > STDERR_FILENO)
            continue;
        int fd = fcntl(p[i], F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
        int e = errno;
        close(p[i]);
        p[i] = fd;
        if (fd < 0) {
            close_fd(&p[0]);
            close_fd(&p[1]);
            return e;
        }
    }
    return 0;
}

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return errno;
    return 0;
}

/* Start the program with stdin/stdout/stderr on the given ends; 0 or an errno value. */
static int spawn_child(const exec_handler *x, char **env, int in_rd, int out_wr, int err_wr,
                       pid_t *pid)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    int rc = posix_spawn_file_actions_init(&fa);
    if (rc)
        return rc;
    rc = posix_spawnattr_init(&at);
    if (rc) {
        posix_spawn_file_actions_destroy(&fa);
        return rc;
    }
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    sigdelset(&all, SIGKILL);
    sigdelset(&all, SIGSTOP);
    rc = posix_spawn_file_actions_adddup2(&fa, in_rd, STDIN_FILENO);
    if (!rc)
        rc = posix_spawn_file_actions_adddup2(&fa, out_wr, STDOUT_FILENO);
    if (!rc)
        rc = posix_spawn_file_actions_adddup2(&fa, err_wr, STDERR_FILENO);
    if (!rc)
        rc = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                               POSIX_SPAWN_SETSIGDEF);
    if (!rc)
        rc = posix_spawnattr_setpgroup(&at, 0);
    if (!rc)
        rc = posix_spawnattr_setsigmask(&at, &none);
    if (!rc)
        rc = posix_spawnattr_setsigdefault(&at, &all);
    if (!rc)
        rc = posix_spawn(pid, x->path, &fa, &at, x->argv, env);
    posix_spawnattr_destroy(&at);
    posix_spawn_file_actions_destroy(&fa);
    return rc;
}

/* The parent's side of one run. */
typedef struct run_io {
    int in_fd, out_fd, err_fd; /* parent ends, non-blocking; -1 once closed */
    const char *in;            /* the payload */
    size_t in_len, in_off;
    obuf out;                    /* stdout, at most EXEC_STDOUT_MAX bytes */
    char tail[EXEC_STDERR_TAIL]; /* the last bytes of stderr */
    size_t tail_len;             /* bytes in tail */
    bool tail_cut;               /* earlier stderr bytes were dropped */
    char *scratch;               /* READ_CHUNK bytes */
    bool sigpipe_pending;        /* SIGPIPE was pending before run() blocked it */
    int error;                   /* errno of a failure in the parent, 0 if none */
    const char *error_what;      /* what failed */
} run_io;

typedef enum run_end { END_EXITED, END_TIMEOUT, END_ERROR } run_end;

/* Discard the SIGPIPE a write just raised in this thread (if the process does not ignore it). */
static void consume_sigpipe(const run_io *io)
{
    if (io->sigpipe_pending)
        return; /* it was pending already: leave it to whoever expects it */
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGPIPE);
    const struct timespec zero = {0, 0};
    while (sigtimedwait(&s, NULL, &zero) < 0 && errno == EINTR)
        ;
}

/* Write as much of the payload as the pipe takes; close stdin when done or when nobody reads. */
static void pump_stdin(run_io *io)
{
    while (io->in_off < io->in_len) {
        ssize_t n = write(io->in_fd, io->in + io->in_off, io->in_len - io->in_off);
        if (n >= 0) {
            io->in_off += (size_t)n;
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return;
        if (errno == EPIPE)
            consume_sigpipe(io);
        break; /* the child closed its stdin: it does not want the rest */
    }
    close_fd(&io->in_fd);
}

/* Keep the last EXEC_STDERR_TAIL bytes of stderr. */
static void tail_append(run_io *io, const char *s, size_t n)
{
    if (n >= sizeof io->tail) {
        memcpy(io->tail, s + n - sizeof io->tail, sizeof io->tail);
        io->tail_cut = io->tail_cut || n > sizeof io->tail || io->tail_len > 0;
        io->tail_len = sizeof io->tail;
        return;
    }
    if (io->tail_len + n > sizeof io->tail) {
        size_t drop = io->tail_len + n - sizeof io->tail;
        memmove(io->tail, io->tail + drop, io->tail_len - drop);
        io->tail_len -= drop;
        io->tail_cut = true;
    }
    memcpy(io->tail + io->tail_len, s, n);
    io->tail_len += n;
}

/* Read once from stdout or stderr; close it at EOF or on an error. */
static void pump_output(run_io *io, int *fd, bool is_stdout)
{
    char *dst = io->scratch;
    size_t room = READ_CHUNK;
    if (is_stdout && io->out.len < EXEC_STDOUT_MAX) {
        size_t want = EXEC_STDOUT_MAX - io->out.len;
        if (want > READ_CHUNK)
            want = READ_CHUNK;
        if (!ob_reserve(&io->out, want)) {
            io->error = ENOMEM;
            io->error_what = "reading standard output";
            return;
        }
        dst = io->out.p + io->out.len;
        room = want;
    }
    ssize_t n;
    do {
        n = read(*fd, dst, room);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return;
    if (n <= 0) {
        close_fd(fd);
        return;
    }
    if (dst != io->scratch) {
        io->out.len += (size_t)n;
        io->out.p[io->out.len] = '\0';
    } else if (!is_stdout) {
        tail_append(io, dst, (size_t)n);
    } /* else: stdout past its cap, discarded */
}

/* True once the child has exited (it stays unreaped, so its pid cannot be reused). */
static bool child_exited(pid_t pid)
{
    for (;;) {
        siginfo_t si;
        memset(&si, 0, sizeof si);
        if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0)
            return si.si_pid == pid;
        if (errno != EINTR)
            return true; /* ECHILD: reaped elsewhere (SIGCHLD ignored); nothing to wait for */
    }
}

/* Move data until the child exits (and its output is drained) or the timeout passes. */
static run_end supervise(run_io *io, pid_t pid, unsigned timeout_s)
{
    const int64_t deadline = timeout_s ? clock_mono_ms() + (int64_t)timeout_s * 1000 : INT64_MAX;
    int64_t drain_until = 0;
    bool exited = false;
    int idle_ms = 1;

    for (;;) {
        if (!exited && child_exited(pid)) {
            exited = true;
            drain_until = clock_mono_ms() + EXEC_DRAIN_MS;
            close_fd(&io->in_fd);
        }
        if (exited && io->out_fd < 0 && io->err_fd < 0)
            return END_EXITED;
        int64_t now = clock_mono_ms();
        if (exited && now >= drain_until)
            return END_EXITED;
        if (!exited && now >= deadline)
            return END_TIMEOUT;

        struct pollfd p[3];
        nfds_t n = 0;
        int slot_in = -1, slot_out = -1, slot_err = -1;
        if (io->in_fd >= 0) {
            slot_in = (int)n;
            p[n++] = (struct pollfd){.fd = io->in_fd, .events = POLLOUT};
        }
        if (io->out_fd >= 0) {
            slot_out = (int)n;
            p[n++] = (struct pollfd){.fd = io->out_fd, .events = POLLIN};
        }
        if (io->err_fd >= 0) {
            slot_err = (int)n;
            p[n++] = (struct pollfd){.fd = io->err_fd, .events = POLLIN};
        }
        int64_t wait = exited ? drain_until - now : deadline - now;
        if (!exited) {
            /* With no pipe left to wake us, back off from 1 ms: the child is probably exiting. */
            int tick = n ? TICK_MS : idle_ms;
            if (!n && idle_ms < TICK_MS)
                idle_ms *= 2;
            if (wait > tick)
                wait = tick;
        }
        int ready = poll(p, n, (int)wait);
        if (ready < 0) {
            if (errno == EINTR)
                continue;
            io->error = errno;
            io->error_what = "poll";
            return END_ERROR;
        }
        if (ready == 0)
            continue;
        if (slot_in >= 0 && p[slot_in].revents)
            pump_stdin(io);
        if (slot_out >= 0 && p[slot_out].revents)
            pump_output(io, &io->out_fd, true);
        if (slot_err >= 0 && p[slot_err].revents)
            pump_output(io, &io->err_fd, false);
        if (io->error)
            return END_ERROR;
    }
}

/* The result for standard output: its JSON compacted, else a JSON string, NULL if empty. */
static int make_result(const char *s, size_t n, char **result)
{
    *result = NULL;
    if (n == 0)
        return 0;
    obuf b = {0};
    json_error_t jerr;
    json_t *v = json_loadb(s, n, JSON_DECODE_ANY, &jerr);
    if (v) {
        json_decref(v);
        ob_json_compact(&b, s, n);
    } else {
        while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
            n--;
        if (n == 0)
            return 0;
        obuf text = {0};
        ob_utf8(&text, s, n, true);
        if (text.failed) {
            free(text.p);
            return ENOMEM;
        }
        ob_json_strn(&b, text.p, text.len);
        free(text.p);
    }
    *result = ob_take(&b);
    return *result ? 0 : ENOMEM;
}

/* Append ": <the last line(s) of stderr, up to EXEC_STATUS_TAIL bytes>" when there are any. */
static void ob_stderr_summary(obuf *b, const char *s, size_t n, bool cut)
{
    size_t start = 0;
    if (cut) /* the tail may begin inside a UTF-8 sequence */
        while (start < n && ((unsigned char)s[start] & 0xC0) == 0x80)
            start++;
    while (n > start &&
           (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    if (n - start > EXEC_STATUS_TAIL) {
        size_t from = n - EXEC_STATUS_TAIL;
        const char *nl = memchr(s + from, '\n', n - from);
        if (nl) {
            from = (size_t)(nl - s) + 1; /* whole lines only */
        } else {
            cut = true;
            while (from < n && ((unsigned char)s[from] & 0xC0) == 0x80)
                from++;
        }
        start = from;
    }
    while (start < n &&
           (s[start] == '\n' || s[start] == '\r' || s[start] == ' ' || s[start] == '\t'))
        start++;
    if (start == n)
        return;
    ob_puts(b, ": ");
    ob_utf8(b, s + start, n - start, false);
}

static const char *signal_name(int sig)
{
    switch (sig) {
    case SIGHUP:
        return "SIGHUP";
    case SIGINT:
        return "SIGINT";
    case SIGQUIT:
        return "SIGQUIT";
    case SIGILL:
        return "SIGILL";
    case SIGTRAP:
        return "SIGTRAP";
    case SIGABRT:
        return "SIGABRT";
    case SIGBUS:
        return "SIGBUS";
    case SIGFPE:
        return "SIGFPE";
    case SIGKILL:
        return "SIGKILL";
    case SIGUSR1:
        return "SIGUSR1";
    case SIGSEGV:
        return "SIGSEGV";
    case SIGUSR2:
        return "SIGUSR2";
    case SIGPIPE:
        return "SIGPIPE";
    case SIGALRM:
        return "SIGALRM";
    case SIGTERM:
        return "SIGTERM";
    case SIGCHLD:
        return "SIGCHLD";
    case SIGCONT:
        return "SIGCONT";
    case SIGSTOP:
        return "SIGSTOP";
    case SIGTSTP:
        return "SIGTSTP";
    case SIGTTIN:
        return "SIGTTIN";
    case SIGTTOU:
        return "SIGTTOU";
    case SIGURG:
        return "SIGURG";
    case SIGXCPU:
        return "SIGXCPU";
    case SIGXFSZ:
        return "SIGXFSZ";
    case SIGVTALRM:
        return "SIGVTALRM";
    case SIGPROF:
        return "SIGPROF";
    case SIGSYS:
        return "SIGSYS";
#ifdef SIGWINCH
    case SIGWINCH:
        return "SIGWINCH";
#endif
    default:
        return "unknown signal";
    }
}

/* Fill *out from how the child ended. */
static void report_exit(handler_result *out, int status, const run_io *io)
{
    obuf b = {0};
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        int e = make_result(io->out.p, io->out.len, &out->result);
        if (e) {
            set_status(out, "exec: out of memory building the result");
            return;
        }
        out->ok = true;
        set_status(out, "Task completed");
        return;
    }
    if (WIFEXITED(status))
        ob_printf(&b, "exit status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        ob_printf(&b, "killed by signal %d (%s)", WTERMSIG(status), signal_name(WTERMSIG(status)));
    else
        ob_printf(&b, "ended with wait status %#x", (unsigned)status);
    ob_stderr_summary(&b, io->tail, io->tail_len, io->tail_cut);
    char *msg = ob_take(&b);
    if (msg) {
        free(out->status_msg);
        out->status_msg = msg;
    } else {
        set_status(out, "exec: out of memory");
    }
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
    char ebuf[128];
    int pin[2] = {-1, -1}, pout[2] = {-1, -1}, perr[2] = {-1, -1};
    run_io io = {.in_fd = -1, .out_fd = -1, .err_fd = -1, .out = {.max = EXEC_STDOUT_MAX}};
    size_t nowned = 0;
    char *payload = build_payload(t, &io.in_len);
    char **env = build_env(x, t, &nowned);
    io.in = payload;
    io.scratch = malloc(READ_CHUNK);
    if (!payload || !env || !io.scratch) {
        set_status(out, "exec: out of memory");
        goto done;
    }

    int rc = make_pipe(pin);
    if (!rc)
        rc = make_pipe(pout);
    if (!rc)
        rc = make_pipe(perr);
    if (!rc)
        rc = set_nonblock(pin[1]);
    if (!rc)
        rc = set_nonblock(pout[0]);
    if (!rc)
        rc = set_nonblock(perr[0]);
    if (rc) {
        set_status(out, "exec: cannot create pipes: %s", errstr(rc, ebuf, sizeof ebuf));
        goto done;
    }

    pid_t pid;
    rc = spawn_child(x, env, pin[0], pout[1], perr[1], &pid);
    close_fd(&pin[0]);
    close_fd(&pout[1]);
    close_fd(&perr[1]);
    if (rc) {
        set_status(out, "exec: cannot start %s: %s", x->path, errstr(rc, ebuf, sizeof ebuf));
        goto done;
    }
    (void)setpgid(pid, pid); /* in case posix_spawn returns before the child set it */
    track_child(x, pid);
    io.in_fd = pin[1];
    io.out_fd = pout[0];
    io.err_fd = perr[0];
    pin[1] = pout[0] = perr[0] = -1;

    /* Block SIGPIPE in this thread while writing stdin; see consume_sigpipe(). */
    sigset_t pipe_set, old_mask, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old_mask);
    io.sigpipe_pending = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;
    run_end end = supervise(&io, pid, timeout_s);
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);

    /* Kill whatever is left of the group while the unreaped child still holds the group id. */
    (void)kill(-pid, SIGKILL);
    untrack_child(x, pid);
    close_fd(&io.in_fd);
    close_fd(&io.out_fd);
    close_fd(&io.err_fd);
    int status = 0;
    pid_t w;
    do {
        w = waitpid(pid, &status, 0);
    } while (w < 0 && errno == EINTR);
    int wait_err = w < 0 ? errno : 0;

    if (end == END_TIMEOUT)
        set_status(out, "timed out after %u s", timeout_s);
    else if (end == END_ERROR)
        set_status(out, "exec: %s: %s", io.error_what, errstr(io.error, ebuf, sizeof ebuf));
    else if (wait_err)
        set_status(out, "exec: cannot get the exit status of %s: %s", x->path,
                   errstr(wait_err, ebuf, sizeof ebuf));
    else
        report_exit(out, status, &io);

done:
    for (int i = 0; i < 2; i++) {
        close_fd(&pin[i]);
        close_fd(&pout[i]);
        close_fd(&perr[i]);
    }
    free(payload);
    free_env(env, x->env_count, nowned);
    free(io.scratch);
    free(io.out.p);
}
