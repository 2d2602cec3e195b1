/*
 * child — a program run as a contained child process; see child.h for the contract.
 *
 * Design:
 * - Three processes per run: the parent (any thread of this process), the supervisor and the
 *   program. child_start() forks the supervisor with every signal blocked; it never execs and
 *   makes only system calls (it is a copy of a multi-threaded process). It sets
 *   PR_SET_PDEATHSIG(end_signal()) (and checks getppid() did not change before that), moves to a
 *   process group of its own (terminal signals are not the program's business), resets every
 *   signal disposition, becomes a child subreaper (PR_SET_CHILD_SUBREAPER) and closes every
 *   descriptor but the five it hands on. Then it forks the program (_Fork: no atfork handlers),
 *   reports its pid, and lets it go: the program sets PR_SET_PDEATHSIG(SIGKILL) (checking
 *   getppid() again), takes a process group of its own, puts the pipe ends on 0, 1 and 2,
 *   applies the resource limits, empties its signal mask and execs. The exec's outcome reaches
 *   the parent directly on an O_CLOEXEC pipe that only the program holds by then (EOF: the exec
 *   succeeded; else the errno value), so a program that stops its supervisor at once (it may:
 *   same user) cannot make child_start() wait forever.
 * - Nor can a start that hangs (an execve() on an unreachable NFS hard mount, a supervisor
 *   stopped before it reports): child_start() waits for the report and the exec's outcome only
 *   until the run's deadline or child_kill(), whose eventfd child_new() makes so that a kill
 *   before the start is not lost. Past either it returns as though started, and the run ends as
 *   one that started does: child_wait() finds the deadline passed or the kill at once (taking
 *   the reports written by then, the start's it left unread and any end behind it), and
 *   child_reap() clears it (a supervisor that does not answer is killed after its grace). A kill
 *   that came before the start, or a deadline already passed, is seen before the fork: nothing
 *   is started, not even for the moment its end signal would take to reach the supervisor.
 * - Why a supervisor rather than this process as the subreaper: the supervisor's descendants,
 *   and only they, are re-parented to it when their parent dies, so "the run" is exactly its
 *   process tree: no scanning for orphans that might belong to another run or to other code,
 *   no reaping of children others wait for. When this process dies, even by SIGKILL, the
 *   supervisor gets the end signal (its parent-death signal) and kills the whole tree, which a
 *   process-wide subreaper could not do for grandchildren. The price is two forks of this
 *   process per run (supervisor, program) instead of a posix_spawn(): copying and tearing down
 *   page tables costs about 0.08 ms per MiB of this process's anonymous memory (taskd has
 *   ~8 MiB: a run costs what it did before, ~1.5 ms for /bin/true); the pages this process
 *   writes while a run lasts are copied once (copy-on-write).
 * - A supervisor stopped when this process dies (the program may stop it: same user) takes its
 *   end signal only once continued. The kernel continues it when its new parent is init or of
 *   another session: its process group, orphaned, has a stopped member (SIGHUP, blocked here,
 *   then SIGCONT). A new parent of this process's session (a subreaper, a PID namespace's init)
 *   leaves it stopped; so child_continue_orphans(), called as this process starts again, continues
 *   every stopped process named SUPERVISOR_NAME, its end signal pending (a program merely named
 *   so has none), whose parent does not run its program file: a supervisor is a fork of its
 *   parent and never execs, so while its parent lives the two run one file, and once that parent
 *   died its new one runs another. Another process's stopped supervisor, whose parent lives, is
 *   left alone; one stopped after that start, or traced, is not continued. The start waits, up to
 *   the kill grace, for those it continued to end their runs.
 * - The supervisor reports on a pipe in fixed 16-byte records (atomic writes): STARTED with the
 *   program's pid or SPAWN_FAILED with an errno value, then EXITED with the program's wait
 *   status and CPU time (wait4), or KILLED with them when the program was reaped only once the
 *   supervisor had begun to kill the run (so the parent can tell a program that ended by itself,
 *   whose outcome stands, from one its end signal killed). It waits in sigwaitinfo() for SIGCHLD
 *   (reaps everything, and exits once no child is left after the program ended) or the end
 *   signal from the parent (sent by child_kill(), or as the parent-death signal): a real-time
 *   signal, which queues, so that it cannot merge with a SIGTERM someone else sent and be lost.
 *   Then it lists its descendants from /proc (each process's children files, walked down
 *   from it; without them, one pass over every process's PPid link), SIGKILLs them all,
 *   reaps, and repeats until it has no child left. Without /proc it can only kill the
 *   program's process group. A SIGTERM from anyone else (a service manager stopping everything)
 *   is passed on to the program, whose call it is.
 * - child_reap() gives the supervisor kill_grace_ms to clear the run, then stops it (SIGSTOP, so
 *   it reaps nothing more), SIGKILLs the program's process group if a descendant of the
 *   supervisor (the run's) still has the program's pid or is in that group, so that its id is
 *   still the run's, and SIGKILLs the supervisor: a stopped or stuck supervisor cannot hang
 *   the parent. Nor can a report pipe held open past the kill (by a program stuck in its exec,
 *   which holds it until the exec is through): once the supervisor is reaped, the reports it
 *   wrote are taken as the pipe holds them, without waiting for its end.
 * - The parent's poll() loop writes stdin and reads stdout, stderr and the report pipe, so no
 *   full pipe can deadlock either side, and the program's exit is seen at once. It also polls
 *   an eventfd that child_kill() signals, so a kill ends the wait even when the supervisor
 *   cannot answer it (stopped by the program). Once it has exited, everything it wrote is in
 *   the pipes (as much as a pipe holds, which the program may enlarge: F_SETPIPE_SZ) and is
 *   read to the end whenever this thread gets to it; drain_ms bounds only the wait for more,
 *   which a background process holding the pipes may still write.
 * - Standard output is kept in a buffer that grows by doubling but never past stdout_max + 1
 *   bytes; a byte past stdout_max ends child_wait() with CHILD_STDOUT_OVER. Standard error
 *   keeps only its last stderr_tail bytes, in a fixed array that slides.
 * - No signal goes to a pid that may have been reused. The supervisor is reaped only by
 *   child_reap(), so while this process signals it its pid is its own (this process must not
 *   ignore SIGCHLD, under which the kernel reaps it: child_reap_supervisors_here() undoes that).
 *   The supervisor notes each descendant it finds in /proc with its start time, and signals it
 *   through a pidfd opened before checking that start time again (Linux 5.3+; before, check then
 *   kill()): a pid that was reused meanwhile, even by a thread of another process, is left alone.
 *   A process found is taken for a child of one noted only while that one still has its start
 *   time, so the children of a later process given the pid of one that ended are not taken for
 *   the run's.
 * - A write to a pipe nobody reads raises SIGPIPE unless the process ignores it. child_wait()
 *   blocks SIGPIPE in the calling thread only and consumes the one an EPIPE write raised, so it
 *   works whatever the process-wide disposition is and changes no global state.
 * - Where it lives: this file is the parent's side; supervisor.c the supervisor's and the
 *   program's until its exec, and the protocol between them; proc_tree.c the walk of /proc and
 *   the kill of a process seen there, which both use.
 */
#include "runner/child.h"
#include "runner/proc_tree.h"
#include "runner/supervisor.h"
#include "util/clock.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Bytes read from a pipe at a time. */
#define READ_CHUNK 65536
/* The parent's "end the run" to the supervisor; see the design above. SIGRTMIN is already
 * past the two glibc keeps for itself; + 1 leaves SIGRTMIN to code that takes the first free
 * one without asking (neither taskd nor its libraries use either). */
static int end_signal(void)
{
    return SIGRTMIN + 1;
}
/* Default time child_reap() gives the supervisor to clear the run before killing it. */
#define KILL_GRACE_MS 2000
/* Most milliseconds child_reap() waits for a supervisor it stops to be stopped. */
#define FORCE_STOP_WAIT_MS 500

struct child {
    child_spec spec;
    _Atomic pid_t pid;                /* the supervisor: > 0 from its fork until reaped; atomic:
                                         child_kill() reads it in any thread from the start on */
    pid_t program;                    /* the program's pid, once started */
    int in_fd, out_fd, err_fd, st_fd; /* parent ends (stdin, stdout, stderr, reports); -1: closed */
    int kill_fd;                      /* eventfd child_kill() signals (the start and child_wait()
                                         return); -1 when it could not be made */
    size_t in_off;                    /* bytes of the input written so far */
    char *out;                        /* standard output kept, NUL-terminated; NULL if none */
    size_t out_len, out_cap;          /* bytes kept, bytes allocated */
    bool out_over;                    /* standard output went past stdout_max */
    char *scratch;                    /* READ_CHUNK bytes to read into */
    bool sigpipe_pending;             /* SIGPIPE was pending before child_wait() blocked it */
    bool exited;                      /* the supervisor reported the program's end */
    int status;                       /* then its wait status */
    int64_t cpu_ms;                   /* and its CPU time */
    bool ended_alone;                 /* and it came before the supervisor killed anything */
    child_step failed;                /* the first step that failed, CHILD_OK if none */
    int failed_code;                  /* its errno value */
    size_t tail_len;                  /* bytes in tail */
    bool tail_cut;                    /* earlier stderr bytes were dropped */
    char tail[];                      /* the last spec.stderr_tail bytes of stderr */
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

static int make_eventfd(int *fd)
{
    *fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    return *fd < 0 ? errno : 0;
}

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return errno;
    return 0;
}

/* Read size bytes into buf, or as many as come before the end of the pipe or a failure (its errno
 * value into *err, else 0): the bytes read. */
static size_t read_whole(int fd, void *buf, size_t size, int *err)
{
    size_t have = 0;
    *err = 0;
    while (have < size) {
        ssize_t n = read(fd, (char *)buf + have, size - have);
        if (n > 0)
            have += (size_t)n;
        else if (n == 0)
            break;
        else if (errno != EINTR) {
            *err = errno;
            break;
        }
    }
    return have;
}

/* Read one report: 1, 0 at EOF, or -errno. */
static int read_report(int fd, supervisor_report *r)
{
    int err;
    size_t have = read_whole(fd, r, sizeof *r, &err);
    return err ? -err : have == sizeof *r;
}

child *child_new(const child_spec *spec)
{
    child *c = calloc(1, sizeof *c + spec->stderr_tail);
    if (!c)
        return NULL;
    c->spec = *spec;
    c->in_fd = c->out_fd = c->err_fd = c->st_fd = c->kill_fd = -1;
    c->cpu_ms = -1;
    if (!(c->scratch = malloc(READ_CHUNK))) {
        free(c);
        return NULL;
    }
    /* for child_kill(), which may come before the start: the start fails without it */
    int e = make_eventfd(&c->kill_fd);
    if (e)
        note_failure(c, CHILD_PIPES, e);
    return c;
}

/* Whether child_kill() has been called: its eventfd is readable (it is never read). */
static bool kill_came(const child *c)
{
    struct pollfd p = {.fd = c->kill_fd, .events = POLLIN};
    return poll(&p, 1, 0) > 0;
}

/*
 * Wait until fd can be read (or is at its end): 1; 0 once deadline_ms has passed or child_kill()
 * was called, whichever comes first; -errno when poll() fails. What fd holds by the deadline is
 * taken however late this thread looks: one more look without waiting before it gives up.
 */
static int await_start(const child *c, int fd, int64_t deadline_ms)
{
    for (;;) {
        struct pollfd p[2] = {{.fd = c->kill_fd, .events = POLLIN}, {.fd = fd, .events = POLLIN}};
        int64_t now = clock_mono_ms();
        int64_t wait = deadline_ms == INT64_MAX ? -1 : now >= deadline_ms ? 0 : deadline_ms - now;
        int ready = poll(p, 2, wait > INT_MAX ? INT_MAX : (int)wait);
        if (ready < 0 && errno != EINTR)
            return -errno;
        if (ready > 0)
            return p[0].revents ? 0 : 1;
        if (ready == 0 && wait == 0)
            return 0;
    }
}

/* Make the run's pipes and fork its supervisor, keeping the parent's ends; the read end of the
 * exec pipe into *exec_fd. 0, or an errno value (noted: CHILD_PIPES or CHILD_SPAWN), with
 * nothing of them left open. */
static int fork_supervisor(child *c, int *exec_fd)
{
    int pin[2] = {-1, -1}, pout[2] = {-1, -1}, perr[2] = {-1, -1}, pst[2] = {-1, -1};
    int pex[2] = {-1, -1};
    int rc = make_pipe(pin);
    if (!rc)
        rc = make_pipe(pout);
    if (!rc)
        rc = make_pipe(perr);
    if (!rc)
        rc = make_pipe(pst);
    if (!rc)
        rc = make_pipe(pex);
    if (!rc)
        rc = set_nonblock(pin[1]);
    if (!rc)
        rc = set_nonblock(pout[0]);
    if (!rc)
        rc = set_nonblock(perr[0]);
    pid_t pid = -1;
    if (rc) {
        note_failure(c, CHILD_PIPES, rc);
    } else {
        /* Every signal blocked across the fork: no handler of this process may run in the
         * supervisor, which takes the signals it wants with sigwaitinfo(). */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        pid_t parent = getpid();
        int end_sig = end_signal();
        pid = fork();
        if (pid == 0) {
            const int fds[FD_COUNT] = {[FD_STDIN] = pin[0],
                                       [FD_STDOUT] = pout[1],
                                       [FD_STDERR] = perr[1],
                                       [FD_EXEC] = pex[1],
                                       [FD_REPORT] = pst[1]};
            supervisor_main(&c->spec, fds, parent, end_sig);
        }
        rc = pid < 0 ? errno : 0;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (rc) {
            note_failure(c, CHILD_SPAWN, rc);
        } else {
            c->pid = pid;
            c->in_fd = pin[1];
            c->out_fd = pout[0];
            c->err_fd = perr[0];
            c->st_fd = pst[0];
            pin[1] = pout[0] = perr[0] = pst[0] = -1;
        }
    }
    close_fd(&pex[1]); /* the program's (and until it forks the program, the supervisor's) */
    for (int i = 0; i < 2; i++) {
        close_fd(&pin[i]);
        close_fd(&pout[i]);
        close_fd(&perr[i]);
        close_fd(&pst[i]);
    }
    if (rc) {
        close_fd(&pex[0]);
        return rc;
    }
    *exec_fd = pex[0];
    return 0;
}

/* The program's pid, then the exec's outcome on exec_fd: EOF, or the errno value of what failed;
 * each until the deadline or a kill, past which the start is cut short: 0, and child_wait() ends
 * the run as one that started (see child.h). 0 once the program is executed, else an errno value
 * (noted; CHILD_POLL when the wait itself failed, or the read of the exec's outcome). */
static int await_exec(child *c, int exec_fd, int64_t deadline_ms)
{
    supervisor_report r;
    int ready = await_start(c, c->st_fd, deadline_ms);
    int got = ready > 0 ? read_report(c->st_fd, &r) : 0;
    /* The supervisor died (a SIGKILL, the OOM killer) before it reported, or before the program
     * took its death signal (its check says ESRCH): killed under the run, as child_wait() would
     * find it, not a program that cannot be started. */
    bool died = ready > 0 && got == 0;
    int rc;
    if (got == 1 && r.kind == REPORT_STARTED) {
        c->program = r.value;
        ready = await_start(c, exec_fd, deadline_ms);
        int32_t exec_err = 0;
        int read_err = 0;
        size_t have = ready > 0 ? read_whole(exec_fd, &exec_err, sizeof exec_err, &read_err) : 0;
        if (read_err) /* this process's look failed: whether the exec did is not known */
            ready = -read_err;
        rc = have == 0 ? 0 : have == sizeof exec_err && exec_err > 0 ? exec_err : EIO;
        died = rc == ESRCH;
    } else {
        rc = got == 1 && r.kind == REPORT_SPAWN_FAILED && r.value > 0 ? r.value
             : got < 0                                                ? -got
                                                                      : ECHILD;
    }
    if (ready < 0) { /* this process's wait or read failed, not the start: the program may run */
        note_failure(c, CHILD_POLL, -ready);
        return -ready;
    }
    if (ready == 0 || rc == 0)
        return 0;
    note_failure(c, died ? CHILD_SUPERVISOR : CHILD_SPAWN, rc);
    return rc;
}

int child_start(child *c, int64_t deadline_ms)
{
    if (c->failed != CHILD_OK)
        return c->failed_code; /* no kill's eventfd */
    if (kill_came(c) || clock_mono_ms() >= deadline_ms)
        return 0; /* nothing is started: the run ends killed, or timed out */
    int exec_fd = -1;
    int rc = fork_supervisor(c, &exec_fd);
    if (!rc)
        rc = await_exec(c, exec_fd, deadline_ms);
    close_fd(&exec_fd);
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
        break; /* the program closed its stdin: it does not want the rest */
    }
    close_fd(&c->in_fd);
}

/* Keep s[0..n) of standard output, up to stdout_max bytes in all (more sets out_over); the
 * buffer doubles as it grows, but never past stdout_max + 1. False when out of memory. */
static bool keep_stdout(child *c, const char *s, size_t n)
{
    size_t room = c->spec.stdout_max - c->out_len;
    if (n > room) {
        c->out_over = true;
        n = room;
    }
    if (n == 0)
        return true;
    size_t need = c->out_len + n + 1;
    if (need > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 4096;
        while (cap < need)
            cap = cap > SIZE_MAX / 2 ? need : cap * 2;
        if (cap > c->spec.stdout_max + 1)
            cap = c->spec.stdout_max + 1;
        char *p = realloc(c->out, cap);
        if (!p)
            return false;
        c->out = p;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, s, n);
    c->out_len += n;
    c->out[c->out_len] = '\0';
    return true;
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

/* Read once from stdout or stderr; close it at EOF or on an error. The bytes read: 0 when it
 * was closed, -1 when it had nothing (EAGAIN). */
static ssize_t pump_output(child *c, int *fd, bool is_stdout)
{
    ssize_t n;
    do {
        n = read(*fd, c->scratch, READ_CHUNK);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return -1;
    if (n <= 0) {
        close_fd(fd);
        return 0;
    }
    if (!is_stdout)
        keep_stderr(c, c->scratch, (size_t)n);
    else if (!keep_stdout(c, c->scratch, (size_t)n))
        note_failure(c, CHILD_READ_STDOUT, ENOMEM);
    return n;
}

/*
 * Read, without waiting, the bytes stdout or stderr holds now. Once the program's end is
 * reported everything it wrote is in the pipe (its writes came before its exit), however long
 * this thread was held up before reading it; what a background process writes after this look
 * is not waited for. False on a failure (noted).
 */
static bool pump_rest(child *c, int *fd, bool is_stdout)
{
    int left = 0;
    if (*fd >= 0 && ioctl(*fd, FIONREAD, &left) != 0) {
        note_failure(c, CHILD_POLL, errno);
        return false;
    }
    while (left > 0 && *fd >= 0 && !c->out_over && c->failed == CHILD_OK) {
        ssize_t n = pump_output(c, fd, is_stdout);
        if (n <= 0)
            break;
        left -= n > left ? left : (int)n;
    }
    return c->failed == CHILD_OK;
}

/* Take one report from the supervisor; false when it ended without reporting the program's end. */
static bool take_report(child *c)
{
    supervisor_report r;
    int got = read_report(c->st_fd, &r);
    if (got == 1) {
        if (r.kind == REPORT_STARTED && c->program <= 0) /* a start cut short did not read it */
            c->program = r.value;
        if (r.kind == REPORT_EXITED || r.kind == REPORT_KILLED) {
            c->exited = true;
            c->ended_alone = r.kind == REPORT_EXITED;
            c->status = r.value;
            c->cpu_ms = r.cpu_ms;
        }
        return true;
    }
    close_fd(&c->st_fd);
    if (!c->exited)
        note_failure(c, CHILD_SUPERVISOR, got < 0 ? -got : ECHILD);
    return false;
}

/*
 * Take the reports the supervisor has written, the pipe seen ready: the first, then every whole
 * one the pipe holds now, without waiting, until the program's end. A start cut short leaves its
 * STARTED unread, ahead of the end the program may have reported since. False when the supervisor
 * ended without reporting the program's end, or on a failure (noted).
 */
static bool pump_reports(child *c)
{
    int held = 0;
    do {
        if (!take_report(c))
            return false;
        if (!c->exited && ioctl(c->st_fd, FIONREAD, &held) != 0) {
            note_failure(c, CHILD_POLL, errno);
            return false;
        }
    } while (!c->exited && held >= (int)sizeof(supervisor_report));
    return true;
}

/* Take the whole reports the pipe holds now, without waiting for more, until the program's end;
 * then close it. */
static void take_reports_held(child *c)
{
    int held = 0;
    while (c->st_fd >= 0 && !c->exited && ioctl(c->st_fd, FIONREAD, &held) == 0 &&
           held >= (int)sizeof(supervisor_report) && take_report(c))
        ;
    close_fd(&c->st_fd);
}

/* Move data until the program exits (and its output is drained), its output goes past the cap,
 * the deadline passes, or child_kill() is called before the program's end is known. */
static child_end pump_until_end(child *c, int64_t deadline)
{
    int64_t drain_until = c->exited ? clock_mono_ms() + c->spec.drain_ms : 0;
    for (;;) {
        if (c->out_over)
            return CHILD_STDOUT_OVER;
        int64_t now = clock_mono_ms();
        if (c->exited && c->out_fd < 0 && c->err_fd < 0)
            return CHILD_EXITED;
        if (c->exited && now >= drain_until) { /* what the program left is read all the same */
            if (!pump_rest(c, &c->out_fd, true) || !pump_rest(c, &c->err_fd, false))
                return CHILD_FAILED;
            return c->out_over ? CHILD_STDOUT_OVER : CHILD_EXITED;
        }
        /* Past the deadline, one more look without waiting before it times out: an end the
         * supervisor has reported by this look (the program exited by the deadline, this thread
         * held up before it read the report) is the run's outcome, not a time-out, whatever
         * reports are queued ahead of it (pump_reports()); one reported after it is a time-out. */
        bool last_look = !c->exited && now >= deadline;

        struct pollfd p[5];
        nfds_t n = 0;
        int slot_in = -1, slot_out = -1, slot_err = -1, slot_st = -1, slot_kill = -1;
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
        if (!c->exited && c->st_fd >= 0) {
            slot_st = (int)n;
            p[n++] = (struct pollfd){.fd = c->st_fd, .events = POLLIN};
        }
        if (!c->exited) { /* the kill's eventfd, left readable: a later wait returns too */
            slot_kill = (int)n;
            p[n++] = (struct pollfd){.fd = c->kill_fd, .events = POLLIN};
        }
        int64_t wait = c->exited               ? drain_until - now
                       : last_look             ? 0
                       : deadline == INT64_MAX ? -1
                                               : deadline - now;
        if (wait > INT_MAX)
            wait = INT_MAX;
        int ready = poll(p, n, (int)wait);
        if (ready < 0) {
            if (errno == EINTR)
                continue;
            note_failure(c, CHILD_POLL, errno);
            return CHILD_FAILED;
        }
        if (ready == 0) {
            if (last_look)
                return CHILD_TIMED_OUT;
            continue;
        }
        if (slot_in >= 0 && p[slot_in].revents)
            pump_stdin(c);
        if (slot_out >= 0 && p[slot_out].revents)
            pump_output(c, &c->out_fd, true);
        if (slot_err >= 0 && p[slot_err].revents)
            pump_output(c, &c->err_fd, false);
        if (slot_st >= 0 && p[slot_st].revents) {
            if (!pump_reports(c))
                return CHILD_FAILED;
            if (c->exited) {
                drain_until = clock_mono_ms() + c->spec.drain_ms;
                close_fd(&c->in_fd);
            }
        }
        if (c->failed != CHILD_OK)
            return CHILD_FAILED;
        if (c->out_over) /* written before any kill in this look could end the program */
            return CHILD_STDOUT_OVER;
        /* last: a kill that came with the program's end (its report read above) waits for
         * the output to be drained, as any end does */
        if (slot_kill >= 0 && p[slot_kill].revents && !c->exited)
            return CHILD_KILLED;
        if (last_look && !c->exited)
            return CHILD_TIMED_OUT;
    }
}

child_end child_wait(child *c, int64_t deadline_ms)
{
    if (c->pid <= 0) /* not started: its start failed, or a kill or the deadline came before it */
        return c->failed != CHILD_OK            ? CHILD_FAILED
               : kill_came(c)                   ? CHILD_KILLED
               : clock_mono_ms() >= deadline_ms ? CHILD_TIMED_OUT
                                                : CHILD_FAILED; /* or never started at all */
    /* Block SIGPIPE in this thread while writing stdin; see consume_sigpipe(). */
    sigset_t pipe_set, old_mask, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old_mask);
    c->sigpipe_pending = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;
    child_end end = pump_until_end(c, deadline_ms);
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    return end;
}

/* ---- ending ---- */

void child_kill(const child *c)
{
    pid_t pid = c->pid;
    if (pid > 0)
        (void)kill(pid, end_signal()); /* the supervisor kills its whole tree */
    /* and the start or child_wait() returns now, whether or not it can: a stopped supervisor is
     * then child_reap()'s to kill after its grace, not left until the deadline */
    uint64_t one = 1;
    ssize_t n = c->kill_fd >= 0 ? write(c->kill_fd, &one, sizeof one) : 0;
    (void)n; /* full (past 2^64 - 2 kills) is as readable as one */
}

/* The supervisor's next change of state, without waiting (waitpid(), WNOHANG | WUNTRACED): its pid
 * with the status in *sup_status, 0 when there is none, -1 when it was reaped elsewhere (SIGCHLD
 * ignored). */
static pid_t supervisor_change(const child *c, int *sup_status)
{
    pid_t w;
    do {
        w = waitpid(c->pid, sup_status, WNOHANG | WUNTRACED);
    } while (w < 0 && errno == EINTR);
    return w;
}

/* Whether that change (w, sup_status) is its end: it exited or was killed, reaped now or
 * elsewhere. */
static bool supervisor_ended(pid_t w, int sup_status)
{
    return w < 0 || (w > 0 && !WIFSTOPPED(sup_status));
}

/*
 * The supervisor did not clear the run in time (the program, or what it left, stopped it, or it is
 * stuck): kill it, and first the program's process group, but only while that group's id is still
 * the run's. The supervisor is stopped before looking, so it reaps nothing more; then its
 * descendants are the run's (the program, alive or a zombie, the orphans of the run it adopted and
 * theirs), and while one of them has the program's pid, or is in the group of that id (a
 * background process the program left there, once it ended, or one started by a process that
 * left the group since), no process outside the run can lead a group of that id
 * (proc_descendant_holds()). One not seen to stop within the wait is stopped all the same (traced,
 * or its stop taken by a wait elsewhere) or held in the kernel (an uninterruptible sleep), which it
 * leaves only to stop: it reaps nothing more either, and is looked at the same way; or it was
 * continued (the program may send it SIGCONT as it sent SIGSTOP), and then the look is racy only
 * against a pid reused within microseconds. One that dies while it is looked at (a SIGKILL from
 * elsewhere) hands its children to init and becomes a zombie in one step (under the kernel's
 * tasklist lock, Linux 3.19 on): a look that missed a holder for that is followed by one at its
 * status, which finds it dead. True when the supervisor was reaped here (it ended meanwhile); the
 * reap then kills the group as it does after any death of the supervisor.
 */
static bool force_end(child *c, int *sup_status)
{
    (void)kill(c->pid, SIGSTOP);
    pid_t w = 0;
    for (int waited = 0; waited < FORCE_STOP_WAIT_MS; waited++) {
        if ((w = supervisor_change(c, sup_status)) != 0)
            break;
        clock_sleep_ms(1);
    }
    if (supervisor_ended(w, *sup_status))
        return true; /* nothing left to signal */
    if (c->program > 0 && proc_descendant_holds(c->pid, c->program))
        (void)kill(-c->program, SIGKILL);
    else if ((w = supervisor_change(c, sup_status)) != 0 && supervisor_ended(w, *sup_status))
        return true;             /* it died as it was looked at: its children went to init first */
    (void)kill(c->pid, SIGKILL); /* also ends the stop */
    return false;
}

int child_reap(child *c, int *status)
{
    close_fd(&c->in_fd);
    close_fd(&c->out_fd);
    close_fd(&c->err_fd);
    *status = 0;
    if (c->pid <= 0)
        return ECHILD;
    (void)kill(c->pid, end_signal()); /* the program, if it still runs, and what it left */
    /* Reports until EOF: the supervisor has killed and reaped them all, and exited. */
    const int grace = c->spec.kill_grace_ms > 0 ? c->spec.kill_grace_ms : KILL_GRACE_MS;
    const int64_t until = clock_mono_ms() + grace;
    /* POLITE while the grace runs; FORCED once past it (force_end()); REAPED when force_end()
     * found it ended and reaped it. A poll that fails does not end the grace: it is tried again
     * a moment later. Past the grace the supervisor is killed or gone: once it is reaped, what it
     * reported is all in the pipe, and is taken without waiting for the pipe to close, which a
     * program stuck in its exec (an uninterruptible sleep the kill does not end) holds open. */
    enum { POLITE, FORCED, REAPED } ending = POLITE;
    int sup_status = 0; /* its exit status once reaped; 0 (a clean exit) when unknown */
    while (c->st_fd >= 0 && ending == POLITE) {
        int64_t left = until - clock_mono_ms();
        if (left <= 0) {
            /* Leftovers the supervisor had adopted go to init. */
            ending = force_end(c, &sup_status) ? REAPED : FORCED;
            break;
        }
        struct pollfd p = {.fd = c->st_fd, .events = POLLIN};
        int ready = poll(&p, 1, (int)left);
        if (ready < 0 && errno != EINTR)
            clock_sleep_ms(1);
        if (ready > 0)
            (void)pump_reports(c); /* closes st_fd at EOF */
    }
    pid_t w = c->pid;
    while (ending != REAPED && (w = waitpid(c->pid, &sup_status, 0)) < 0 && errno == EINTR)
        ;
    int e = w < 0 ? errno : 0; /* before the reads below, which may set errno */
    take_reports_held(c);
    c->pid = 0; /* reaped, or gone already: either way not ours to signal any more */
    /* The supervisor died (a SIGKILL, the OOM killer) before it cleared the run: before the
     * program's end, which its parent-death signal then brings, or after it. Either way what the
     * program started in its process group would go on under init. The group's id is not reused
     * while any of them lives; once none does, this finds nobody (another process would have to
     * take that id as its group's in the meantime, after the pids wrapped around). Not after a
     * force_end() that killed the supervisor (FORCED), which did it while it could tell the group
     * was still the run's; after one that found it ended (REAPED), as after its end seen here. */
    bool died = !c->exited || (!e && WIFSIGNALED(sup_status));
    if (died && c->program > 0 && ending != FORCED)
        (void)kill(-c->program, SIGKILL);
    if (!c->exited) {
        note_failure(c, CHILD_SUPERVISOR, ECHILD);
        return ECHILD;
    }
    *status = c->status;
    if (e && e != ECHILD) { /* ECHILD: reaped elsewhere (SIGCHLD ignored); the report counts */
        note_failure(c, CHILD_REAP, e);
        return e;
    }
    return 0;
}

child_step child_failure(const child *c, int *code)
{
    *code = c->failed_code;
    return c->failed;
}

pid_t child_pid(const child *c)
{
    return c->program;
}

bool child_ended_alone(const child *c)
{
    return c->exited && c->ended_alone;
}

int64_t child_cpu_ms(const child *c)
{
    return c->exited ? c->cpu_ms : -1;
}

const char *child_stdout(const child *c, size_t *len)
{
    *len = c->out_len;
    return c->out ? c->out : "";
}

size_t child_stdout_reserved(const child *c)
{
    return c->out_cap;
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
        child_kill(c);
        (void)child_reap(c, &status);
    }
    close_fd(&c->in_fd);
    close_fd(&c->out_fd);
    close_fd(&c->err_fd);
    close_fd(&c->st_fd);
    close_fd(&c->kill_fd);
    free(c->out);
    free(c->scratch);
    free(c);
}

int child_continue_orphans(int *unended, int *unwatched)
{
    return proc_continue_orphans(SUPERVISOR_NAME, end_signal(), KILL_GRACE_MS, unended, unwatched);
}

void child_reap_supervisors_here(void)
{
    struct sigaction sa;
    if (sigaction(SIGCHLD, NULL, &sa) != 0)
        return;
    if (sa.sa_handler == SIG_IGN)
        sa.sa_handler = SIG_DFL;
    else if (!(sa.sa_flags & SA_NOCLDWAIT))
        return;
    sa.sa_flags &= ~SA_NOCLDWAIT;
    (void)sigaction(SIGCHLD, &sa, NULL);
}
