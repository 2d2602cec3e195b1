/*
 * child — a program run in its own process group; see child.h for the contract.
 *
 * Design:
 * - child_start() uses posix_spawn() (never a shell). All pipe ends are created O_CLOEXEC
 *   and above fd 2, so a program another thread spawns at the same moment never inherits
 *   them; only the copies dup2'ed onto 0, 1 and 2 survive the exec. The child gets its own
 *   process group (POSIX_SPAWN_SETPGROUP), an empty signal mask and default signal
 *   dispositions: the parent's ignored SIGPIPE or blocked SIGTERM must not leak into it.
 * - One poll() loop over non-blocking parent ends writes stdin and reads stdout and stderr, so
 *   no full pipe can deadlock either side, whether or not the child reads its input. The loop
 *   also wakes every TICK_MS to ask waitid(WNOWAIT) whether the child has exited: a background
 *   grandchild may hold the output pipes open, so EOF alone does not say the child is done.
 *   Once it has exited, output is drained for at most drain_ms.
 * - Standard output goes into an sbuf until stdout_max bytes are kept; later bytes are read
 *   into the scratch chunk and dropped, so the child never blocks on a full pipe. Standard
 *   error keeps only its last stderr_tail bytes, in a fixed array that slides.
 * - Nothing here reaps the child except child_reap() (and child_free() as a last resort), so
 *   while the caller kills the group (kill(-pid, SIGKILL)) the pid cannot have been reused.
 * - A write to a pipe nobody reads raises SIGPIPE unless the process ignores it. child_wait()
 *   blocks SIGPIPE in the calling thread only and consumes the one an EPIPE write raised, so it
 *   works whatever the process-wide disposition is and changes no global state.
 */
#include "runner/child.h"
#include "core/sbuf.h"
#include "util/clock.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Longest wait between two checks of whether the child has exited, in milliseconds. */
#define TICK_MS 50
/* Bytes read from a pipe at a time. */
#define READ_CHUNK 65536

struct child {
    child_spec spec;
    pid_t pid;                 /* > 0 from a successful start until reaped */
    int in_fd, out_fd, err_fd; /* parent ends, non-blocking; -1 once closed */
    size_t in_off;             /* bytes of the input written so far */
    sbuf out;                  /* standard output kept, at most spec.stdout_max bytes */
    char *scratch;             /* READ_CHUNK bytes to read into */
    bool sigpipe_pending;      /* SIGPIPE was pending before child_wait() blocked it */
    child_step failed;         /* the first step that failed, CHILD_OK if none */
    int failed_code;           /* its errno value */
    size_t tail_len;           /* bytes in tail */
    bool tail_cut;             /* earlier stderr bytes were dropped */
    char tail[];               /* the last spec.stderr_tail bytes of stderr */
};

/* Note a failure; only the first one is kept. */
static void note_failure(child *c, child_step step, int code)
{
    if (c->failed == CHILD_OK) {
        c->failed = step;
        c->failed_code = code;
    }
}

static void close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd); /* not retried on EINTR: the descriptor is released either way */
        *fd = -1;
    }
}

/* ---- starting ---- */

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
static int spawn(const child_spec *spec, int in_rd, int out_wr, int err_wr, pid_t *pid)
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
        rc = posix_spawn(pid, spec->path, &fa, &at, spec->argv, spec->env);
    posix_spawnattr_destroy(&at);
    posix_spawn_file_actions_destroy(&fa);
    return rc;
}

child *child_new(const child_spec *spec)
{
    child *c = calloc(1, sizeof *c + spec->stderr_tail);
    if (!c)
        return NULL;
    c->spec = *spec;
    c->in_fd = c->out_fd = c->err_fd = -1;
    if (!(c->scratch = malloc(READ_CHUNK))) {
        free(c);
        return NULL;
    }
    return c;
}

int child_start(child *c)
{
    int pin[2] = {-1, -1}, pout[2] = {-1, -1}, perr[2] = {-1, -1};
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
        note_failure(c, CHILD_PIPES, rc);
    } else {
        pid_t pid;
        rc = spawn(&c->spec, pin[0], pout[1], perr[1], &pid);
        if (rc) {
            note_failure(c, CHILD_SPAWN, rc);
        } else {
            (void)setpgid(pid, pid); /* in case posix_spawn returns before the child set it */
            c->pid = pid;
            c->in_fd = pin[1];
            c->out_fd = pout[0];
            c->err_fd = perr[0];
            pin[1] = pout[0] = perr[0] = -1;
        }
    }
    for (int i = 0; i < 2; i++) {
        close_fd(&pin[i]);
        close_fd(&pout[i]);
        close_fd(&perr[i]);
    }
    return rc;
}

/* ---- moving data ---- */

/* Discard the SIGPIPE a write just raised in this thread (if the process does not ignore it). */
static void consume_sigpipe(const child *c)
{
    if (c->sigpipe_pending)
        return; /* it was pending already: leave it to whoever expects it */
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGPIPE);
    const struct timespec zero = {0, 0};
    while (sigtimedwait(&s, NULL, &zero) < 0 && errno == EINTR)
        ;
}

/* Write as much of the input as the pipe takes; close stdin when done or when nobody reads. */
static void pump_stdin(child *c)
{
    while (c->in_off < c->spec.input_len) {
        ssize_t n = write(c->in_fd, c->spec.input + c->in_off, c->spec.input_len - c->in_off);
        if (n >= 0) {
            c->in_off += (size_t)n;
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return;
        if (errno == EPIPE)
            consume_sigpipe(c);
        break; /* the child closed its stdin: it does not want the rest */
    }
    close_fd(&c->in_fd);
}

/* Keep s[0..n) of standard output, up to stdout_max bytes in all; false when out of memory. */
static bool keep_stdout(child *c, const char *s, size_t n)
{
    size_t room = c->spec.stdout_max - c->out.len;
    if (n > room)
        n = room; /* past the cap: discarded */
    if (n == 0)
        return true;
    sbuf_append(&c->out, s, n);
    return !sbuf_failed(&c->out);
}

/* Keep the last stderr_tail bytes of standard error. */
static void keep_stderr(child *c, const char *s, size_t n)
{
    const size_t cap = c->spec.stderr_tail;
    if (n >= cap) {
        memcpy(c->tail, s + n - cap, cap);
        c->tail_cut = c->tail_cut || n > cap || c->tail_len > 0;
        c->tail_len = cap;
        return;
    }
    if (c->tail_len + n > cap) {
        size_t drop = c->tail_len + n - cap;
        memmove(c->tail, c->tail + drop, c->tail_len - drop);
        c->tail_len -= drop;
        c->tail_cut = true;
    }
    memcpy(c->tail + c->tail_len, s, n);
    c->tail_len += n;
}

/* Read once from stdout or stderr; close it at EOF or on an error. */
static void pump_output(child *c, int *fd, bool is_stdout)
{
    ssize_t n;
    do {
        n = read(*fd, c->scratch, READ_CHUNK);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return;
    if (n <= 0) {
        close_fd(fd);
        return;
    }
    if (!is_stdout)
        keep_stderr(c, c->scratch, (size_t)n);
    else if (!keep_stdout(c, c->scratch, (size_t)n))
        note_failure(c, CHILD_READ_STDOUT, ENOMEM);
}

/* True once the child has exited (it stays unreaped, so its pid cannot be reused). */
static bool has_exited(pid_t pid)
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

/* Move data until the child exits (and its output is drained) or the deadline passes. */
static child_end supervise(child *c, int64_t deadline)
{
    int64_t drain_until = 0;
    bool exited = false;
    int idle_ms = 1;

    for (;;) {
        if (!exited && has_exited(c->pid)) {
            exited = true;
            drain_until = clock_mono_ms() + c->spec.drain_ms;
            close_fd(&c->in_fd);
        }
        if (exited && c->out_fd < 0 && c->err_fd < 0)
            return CHILD_EXITED;
        int64_t now = clock_mono_ms();
        if (exited && now >= drain_until)
            return CHILD_EXITED;
        if (!exited && now >= deadline)
            return CHILD_TIMED_OUT;

        struct pollfd p[3];
        nfds_t n = 0;
        int slot_in = -1, slot_out = -1, slot_err = -1;
        if (c->in_fd >= 0) {
            slot_in = (int)n;
            p[n++] = (struct pollfd){.fd = c->in_fd, .events = POLLOUT};
        }
        if (c->out_fd >= 0) {
            slot_out = (int)n;
            p[n++] = (struct pollfd){.fd = c->out_fd, .events = POLLIN};
        }
        if (c->err_fd >= 0) {
            slot_err = (int)n;
            p[n++] = (struct pollfd){.fd = c->err_fd, .events = POLLIN};
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
            note_failure(c, CHILD_POLL, errno);
            return CHILD_FAILED;
        }
        if (ready == 0)
            continue;
        if (slot_in >= 0 && p[slot_in].revents)
            pump_stdin(c);
        if (slot_out >= 0 && p[slot_out].revents)
            pump_output(c, &c->out_fd, true);
        if (slot_err >= 0 && p[slot_err].revents)
            pump_output(c, &c->err_fd, false);
        if (c->failed != CHILD_OK)
            return CHILD_FAILED;
    }
}

child_end child_wait(child *c, int64_t deadline_ms)
{
    if (c->pid <= 0)
        return CHILD_FAILED;
    /* Block SIGPIPE in this thread while writing stdin; see consume_sigpipe(). */
    sigset_t pipe_set, old_mask, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old_mask);
    c->sigpipe_pending = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;
    child_end end = supervise(c, deadline_ms);
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    return end;
}

/* ---- ending ---- */

void child_kill_group(const child *c)
{
    if (c->pid > 0)
        (void)kill(-c->pid, SIGKILL);
}

int child_reap(child *c, int *status)
{
    close_fd(&c->in_fd);
    close_fd(&c->out_fd);
    close_fd(&c->err_fd);
    *status = 0;
    if (c->pid <= 0)
        return ECHILD;
    pid_t w;
    do {
        w = waitpid(c->pid, status, 0);
    } while (w < 0 && errno == EINTR);
    c->pid = 0; /* reaped, or gone already: either way not ours to signal any more */
    if (w >= 0)
        return 0;
    int e = errno;
    note_failure(c, CHILD_REAP, e);
    return e;
}

child_step child_failure(const child *c, int *code)
{
    *code = c->failed_code;
    return c->failed;
}

const char *child_stdout(const child *c, size_t *len)
{
    *len = c->out.len;
    return c->out.data ? c->out.data : "";
}

const char *child_stderr_tail(const child *c, size_t *len, bool *cut)
{
    *len = c->tail_len;
    *cut = c->tail_cut;
    return c->tail;
}

void child_free(child *c)
{
    if (!c)
        return;
    if (c->pid > 0) {
        int status;
        child_kill_group(c);
        (void)child_reap(c, &status);
    }
    close_fd(&c->in_fd);
    close_fd(&c->out_fd);
    close_fd(&c->err_fd);
    sbuf_free(&c->out);
    free(c->scratch);
    free(c);
}
