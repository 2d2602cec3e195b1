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
 * - The supervisor reports on a pipe in fixed 16-byte records (atomic writes): STARTED with
 *   the program's pid or SPAWN_FAILED with an errno value, then EXITED with the program's wait
 *   status and CPU time (wait4). It waits in sigwaitinfo() for SIGCHLD (reaps everything, and
 *   exits once no child is left after the program ended) or the end signal from the parent
 *   (sent by child_kill(), or as the parent-death signal): a real-time signal, which queues,
 *   so that it cannot merge with a SIGTERM someone else sent and be lost. Then it lists its
 *   descendants from /proc
 *   (PPid links, a few passes), SIGKILLs them all, reaps, and repeats until it has no child
 *   left. Without /proc it can only kill the program's process group. A SIGTERM from anyone
 *   else (a service manager stopping everything) is passed on to the program, whose call it is.
 * - child_reap() gives the supervisor kill_grace_ms to clear the run, then stops it (SIGSTOP, so
 *   it reaps nothing more), SIGKILLs the program's process group if the program's pid is still
 *   the program's (a process of that pid whose parent is the supervisor), and SIGKILLs the
 *   supervisor: a stopped or stuck supervisor cannot hang the parent.
 * - The parent's poll() loop writes stdin and reads stdout, stderr and the report pipe, so no
 *   full pipe can deadlock either side, and the program's exit is seen at once. It also polls
 *   an eventfd that child_kill() signals, so a kill ends the wait even when the supervisor
 *   cannot answer it (stopped by the program). Once it has
 *   exited, output is drained for at most drain_ms: a background process may hold the pipes.
 * - Standard output is kept in a buffer that grows by doubling but never past stdout_max + 1
 *   bytes; a byte past stdout_max ends child_wait() with CHILD_STDOUT_OVER. Standard error
 *   keeps only its last stderr_tail bytes, in a fixed array that slides.
 * - No signal goes to a pid that may have been reused. The supervisor is reaped only by
 *   child_reap(), so while this process signals it its pid is its own. The supervisor notes each
 *   descendant it finds in /proc with its start time, and signals it through a pidfd opened
 *   before checking that start time again (Linux 5.3+; before, check then kill()): a pid that
 *   was reused meanwhile, even by a thread of another process, is left alone.
 * - A write to a pipe nobody reads raises SIGPIPE unless the process ignores it. child_wait()
 *   blocks SIGPIPE in the calling thread only and consumes the one an EPIPE write raised, so it
 *   works whatever the process-wide disposition is and changes no global state.
 */
#include "runner/child.h"
#include "util/clock.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Bytes read from a pipe at a time. */
#define READ_CHUNK 65536
/* Most descendants killed in one round; more are found in the next round. */
#define TREE_MAX 1024
/* Passes over /proc per round: each finds the children of the processes found so far. */
#define TREE_PASSES 8
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
    pid_t pid;                        /* the supervisor: > 0 from a successful start until reaped */
    pid_t program;                    /* the program's pid, once started */
    int in_fd, out_fd, err_fd, st_fd; /* parent ends (stdin, stdout, stderr, reports); -1: closed */
    int kill_fd;                      /* eventfd child_kill() signals (child_wait() returns); -1 */
    size_t in_off;                    /* bytes of the input written so far */
    char *out;                        /* standard output kept, NUL-terminated; NULL if none */
    size_t out_len, out_cap;          /* bytes kept, bytes allocated */
    bool out_over;                    /* standard output went past stdout_max */
    char *scratch;                    /* READ_CHUNK bytes to read into */
    bool sigpipe_pending;             /* SIGPIPE was pending before child_wait() blocked it */
    bool exited;                      /* the supervisor reported the program's end */
    int status;                       /* then its wait status */
    int64_t cpu_ms;                   /* and its CPU time */
    child_step failed;                /* the first step that failed, CHILD_OK if none */
    int failed_code;                  /* its errno value */
    size_t tail_len;                  /* bytes in tail */
    bool tail_cut;                    /* earlier stderr bytes were dropped */
    char tail[];                      /* the last spec.stderr_tail bytes of stderr */
};

/* A report from the supervisor. */
typedef struct report {
    int32_t kind;   /* REPORT_* */
    int32_t value;  /* STARTED: the program's pid; SPAWN_FAILED: errno; EXITED: wait status */
    int64_t cpu_ms; /* EXITED: the program's user + system CPU time */
} report;

enum { REPORT_STARTED = 1, REPORT_SPAWN_FAILED, REPORT_EXITED };

/* The descriptors the supervisor hands on, in its fds[] (all above 2, O_CLOEXEC). */
enum { FD_STDIN, FD_STDOUT, FD_STDERR, FD_EXEC, FD_REPORT, FD_COUNT };

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

/* ---- the program (runs in the supervisor's fork: system calls only) ---- */

/* Lower one limit to at most want_soft / want_hard (never above the inherited hard limit). */
static int lower_limit(int resource, rlim_t want_soft, rlim_t want_hard)
{
    struct rlimit cur;
    if (getrlimit(resource, &cur) != 0)
        return errno;
    struct rlimit r = {.rlim_cur = want_soft, .rlim_max = want_hard};
    if (r.rlim_max > cur.rlim_max)
        r.rlim_max = cur.rlim_max;
    if (r.rlim_cur > r.rlim_max)
        r.rlim_cur = r.rlim_max;
    return setrlimit(resource, &r) == 0 ? 0 : errno;
}

static int apply_limits(const child_limits *l)
{
    int e = 0;
    if (!e && l->cpu_s)
        e = lower_limit(RLIMIT_CPU, l->cpu_s, (rlim_t)l->cpu_s + 1);
    if (!e && l->data_bytes)
        e = lower_limit(RLIMIT_DATA, l->data_bytes, l->data_bytes);
    if (!e && l->nofile)
        e = lower_limit(RLIMIT_NOFILE, l->nofile, l->nofile);
    if (!e && l->no_core)
        e = lower_limit(RLIMIT_CORE, 0, 0);
    return e;
}

/*
 * Become the program: fds are stdin's read end, stdout's and stderr's write ends, then the
 * write end of the exec pipe (O_CLOEXEC: EOF for the parent once the exec succeeded, else the
 * errno value); go is a pipe's read end that reaches EOF once the supervisor has done its part.
 */
static _Noreturn void run_program(const child *c, const int fds[], int go, pid_t supervisor)
{
    int e = 0;
    char byte;
    while (read(go, &byte, 1) < 0 && errno == EINTR)
        ;
    close(go);
    if (prctl(PR_SET_PDEATHSIG, (unsigned long)SIGKILL) != 0)
        e = errno;
    else if (getppid() != supervisor)
        e = ESRCH; /* the supervisor died before the death signal was set */
    if (!e && setpgid(0, 0) != 0)
        e = errno;
    /* The pipe ends are above fd 2 (make_pipe), so no dup2 clobbers another. */
    for (int i = 0; i < 3 && !e; i++)
        if (dup2(fds[i], i) < 0)
            e = errno;
    if (!e)
        e = apply_limits(&c->spec.limits);
    if (!e) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execve(c->spec.path, c->spec.argv, c->spec.env);
        e = errno;
    }
    int32_t code = e;
    (void)!write(fds[FD_EXEC], &code, sizeof code);
    _exit(127);
}

/* ---- the supervisor (a fork of a multi-threaded process: system calls only) ---- */

static void send_report(int fd, int32_t kind, int32_t value, int64_t cpu_ms)
{
    report r = {.kind = kind, .value = value, .cpu_ms = cpu_ms};
    while (write(fd, &r, sizeof r) < 0 && errno == EINTR)
        ;
}

/* Every disposition back to SIG_DFL: an ignored SIGCHLD would reap for us, and an ignored
 * signal would stay ignored in the program. */
static void reset_signals(void)
{
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    for (int s = 1; s < NSIG; s++)
        if (s != SIGKILL && s != SIGSTOP)
            (void)sigaction(s, &dfl, NULL); /* fails harmlessly for the C library's own */
}

/* keep[0..n) in ascending order, all above 2. */
static bool kept(const int *keep, size_t n, int fd)
{
    for (size_t i = 0; i < n; i++)
        if (keep[i] == fd)
            return true;
    return false;
}

/*
 * Call each(number, arg) for every entry of the directory dir whose name is a decimal number
 * (/proc: processes, never the ids of their other threads; /proc/self/fd: descriptors). It reads
 * with getdents64() into a stack buffer, so a child may use it between fork() and exec.
 */
static void each_numbered_entry(int dir, void (*each)(long number, void *arg), void *arg)
{
    _Alignas(8) char buf[4096];
    ssize_t got;
    while ((got = getdents64(dir, buf, sizeof buf)) > 0) {
        for (ssize_t off = 0; off < got;) {
            const struct dirent64 *d = (const struct dirent64 *)(const void *)(buf + off);
            off += d->d_reclen;
            long number = 0;
            const char *p = d->d_name;
            for (; *p >= '0' && *p <= '9'; p++)
                number = number * 10 + (*p - '0');
            if (!*p && p != d->d_name)
                each(number, arg);
        }
    }
}

/* close_others() listing /proc/self/fd: what it keeps, and the listing's own descriptor. */
typedef struct close_listed {
    const int *keep;
    size_t n;
    int dir;
} close_listed;

static void close_listed_fd(long number, void *arg)
{
    const close_listed *l = arg;
    int fd = (int)number;
    if (fd > STDERR_FILENO && fd != l->dir && !kept(l->keep, l->n, fd))
        close(fd);
}

/* Close every descriptor above 2 but keep[0..n), which is sorted; this process's other pipes,
 * sockets and files must not stay open in a process that lives as long as the run. */
static void close_others(const int *keep, size_t n)
{
    unsigned from = STDERR_FILENO + 1;
    bool ok = true;
    for (size_t i = 0; i <= n && ok; i++) {
        unsigned to = i < n ? (unsigned)keep[i] - 1 : ~0U;
        if (from <= to)
            ok = close_range(from, to, 0) == 0;
        if (i < n)
            from = (unsigned)keep[i] + 1;
    }
    if (ok)
        return;
    /* Kernels before 5.9: list /proc/self/fd, else close up to the descriptor limit. */
    int dir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir >= 0) {
        close_listed listed = {keep, n, dir};
        each_numbered_entry(dir, close_listed_fd, &listed);
        close(dir);
        return;
    }
    struct rlimit rl;
    int max = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 65536 ? (int)rl.rlim_cur : 65536;
    for (int fd = STDERR_FILENO + 1; fd < max; fd++)
        if (!kept(keep, n, fd))
            close(fd);
}

/* A process as /proc shows it: its parent and its start time, which together with its pid tell
 * it from a later process that reuses the pid. */
typedef struct proc_id {
    pid_t pid;
    pid_t ppid;
    unsigned long long start; /* clock ticks after boot (field 22 of /proc/<pid>/stat) */
} proc_id;

static bool in_tree(const proc_id *tree, size_t n, pid_t pid)
{
    for (size_t i = 0; i < n; i++)
        if (tree[i].pid == pid)
            return true;
    return false;
}

/* Read pid's parent and start time from /proc/<pid>/stat ("pid (comm) S ppid ... starttime");
 * false when there is no such process. */
static bool proc_read(pid_t pid, proc_id *out)
{
    char path[32] = "/proc/", digits[16];
    size_t nd = 0;
    for (unsigned long v = (unsigned long)pid; nd == 0 || v; v /= 10)
        digits[nd++] = (char)('0' + v % 10);
    size_t len = strlen(path);
    while (nd)
        path[len++] = digits[--nd];
    memcpy(path + len, "/stat", sizeof "/stat");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    char buf[1024]; /* enough for 22 fields of at most 20 digits each and the name */
    ssize_t got = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (got <= 0)
        return false;
    buf[got] = '\0';
    const char *p = strrchr(buf, ')'); /* comm may hold ')' and spaces: the last one ends it */
    if (!p || p[1] != ' ' || !p[2] || p[3] != ' ')
        return false;
    unsigned long long field[19] = {0}; /* fields 4 (ppid) to 22 (starttime) */
    p += 4;
    for (int f = 0; f < 19; f++) {
        if (*p == '-')
            p++; /* tty_nr, priority and nice may be negative; none of them is kept */
        if (*p < '0' || *p > '9')
            return false;
        for (; *p >= '0' && *p <= '9'; p++)
            field[f] = field[f] * 10 + (unsigned long long)(*p - '0');
        if (f < 18 && *p++ != ' ')
            return false;
    }
    *out = (proc_id){.pid = pid, .ppid = (pid_t)field[0], .start = field[18]};
    return true;
}

/* scan_pass() adding to tree[0..*n) the children of what is in it. */
typedef struct tree_scan {
    proc_id *tree;
    size_t *n;
    int added;
} tree_scan;

static void add_if_child(long number, void *arg)
{
    tree_scan *t = arg;
    pid_t pid = (pid_t)number;
    if (pid <= 0 || in_tree(t->tree, *t->n, pid) || *t->n == TREE_MAX)
        return;
    proc_id id;
    if (proc_read(pid, &id) && id.ppid > 0 && in_tree(t->tree, *t->n, id.ppid)) {
        t->tree[(*t->n)++] = id;
        t->added++;
    }
}

/* One pass over /proc adding to tree[0..*n) every process whose parent is in it. Returns how
 * many were added, or -1 when /proc cannot be listed. */
static int scan_pass(proc_id *tree, size_t *n)
{
    int dir = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0)
        return -1;
    tree_scan scan = {tree, n, 0};
    each_numbered_entry(dir, add_if_child, &scan);
    close(dir);
    return scan.added;
}

/*
 * SIGKILL the process seen as id, only if pid still names that process: through a pidfd
 * (Linux 5.3+), opened first and then checked against the start time seen, so the check and
 * the signal are about one process even if id's pid was reused in between (a pidfd cannot be
 * opened for a thread id, and pins the process). Before 5.3: the same check, then kill(); the
 * pid would have to be reused between the two calls.
 */
static void kill_seen(const proc_id *id)
{
    proc_id now;
    int pfd = (int)syscall(SYS_pidfd_open, id->pid, 0);
    if (pfd >= 0) {
        if (proc_read(id->pid, &now) && now.start == id->start)
            (void)syscall(SYS_pidfd_send_signal, pfd, SIGKILL, NULL, 0);
        close(pfd);
    } else if (errno == ENOSYS) {
        if (proc_read(id->pid, &now) && now.start == id->start)
            (void)kill(id->pid, SIGKILL);
    }
    /* else gone (ESRCH), or its pid is now a thread's (EINVAL): not ours */
}

/* How the program ended, as the supervisor knows it. */
typedef struct program_end {
    pid_t pid;
    bool ended, reported;
    int status;
    int64_t cpu_ms;
} program_end;

/* Reap every child that has ended, noting the program's end. True once no child is left. */
static bool reap_children(program_end *pe)
{
    for (;;) {
        int st;
        struct rusage ru;
        pid_t w = wait4(-1, &st, WNOHANG, &ru);
        if (w > 0) {
            if (w == pe->pid) {
                pe->ended = true;
                pe->status = st;
                pe->cpu_ms = ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
                             (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
            }
            continue;
        }
        if (w == 0)
            return false;
        if (errno != EINTR)
            return true; /* ECHILD */
    }
}

static void report_end(int st_fd, program_end *pe)
{
    if (pe->ended && !pe->reported) {
        send_report(st_fd, REPORT_EXITED, pe->status, pe->cpu_ms);
        pe->reported = true;
    }
}

/* Wait up to ms for SIGCHLD (blocked, so it stays pending until taken here). */
static void await_sigchld(int ms)
{
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    (void)sigtimedwait(&chld, NULL, &ts);
}

/* Kill every descendant, round after round, until no child is left; the program's end is
 * reported as soon as it is reaped (child_reap() kills its group only while it is not). */
static void kill_tree(int st_fd, program_end *pe)
{
    int pause_ms = 1;
    for (;;) {
        bool none_left = reap_children(pe);
        report_end(st_fd, pe);
        if (none_left)
            return;
        proc_id tree[TREE_MAX];
        size_t n = 1;
        tree[0] = (proc_id){.pid = getpid()};
        int added = 0;
        for (int pass = 0; pass < TREE_PASSES; pass++)
            if ((added = scan_pass(tree, &n)) <= 0)
                break;
        if (added < 0 && n == 1) {
            /* No /proc: the program's group is all that can be found. */
            if (!pe->ended) {
                (void)kill(-pe->pid, SIGKILL);
                (void)kill(pe->pid, SIGKILL);
            } else {
                return; /* what is left goes to init when the supervisor exits */
            }
        }
        for (size_t i = 1; i < n; i++)
            kill_seen(&tree[i]);
        await_sigchld(pause_ms);
        if (pause_ms < 100)
            pause_ms *= 2;
    }
}

/*
 * The supervisor: fds[] as the FD_* names say (FD_EXEC's write end goes to the program only,
 * FD_REPORT's is the supervisor's); parent is the process that forked it. Never returns.
 */
static _Noreturn void supervisor_main(const child *c, const int fds[FD_COUNT], pid_t parent,
                                      int end_sig)
{
    const int st_fd = fds[FD_REPORT];
    if (prctl(PR_SET_PDEATHSIG, (unsigned long)end_sig) != 0 || getppid() != parent)
        _exit(1); /* the parent is gone already: nobody to run for */
    (void)prctl(PR_SET_NAME, (unsigned long)"exec-supervisor"); /* for ps and top */
    (void)setpgid(0, 0);
    reset_signals();
    if (prctl(PR_SET_CHILD_SUBREAPER, 1UL) != 0) {
        send_report(st_fd, REPORT_SPAWN_FAILED, errno, 0);
        _exit(1);
    }
    int keep[FD_COUNT];
    for (int i = 0; i < FD_COUNT; i++) /* sorted, for close_others() */
        for (int j = i; j >= 0; j--) {
            if (j == 0 || keep[j - 1] < fds[i]) {
                keep[j] = fds[i];
                break;
            }
            keep[j] = keep[j - 1];
        }
    close_others(keep, FD_COUNT);
    /* Nor this process's standard streams: the supervisor writes to none of them. */
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    for (int fd = 0; null >= 0 && fd <= STDERR_FILENO; fd++)
        if (fd != null)
            (void)dup2(null, fd);
    if (null > STDERR_FILENO)
        close(null);

    /*
     * The program waits on the go pipe until the supervisor has reported its pid and closed its
     * own end of the exec pipe: once the program runs its own code, nothing is left for the
     * supervisor to do that the program could prevent (by stopping it, say), and the parent
     * learns of the exec from the exec pipe alone.
     */
    int go[2];
    if (pipe2(go, O_CLOEXEC) != 0) {
        send_report(st_fd, REPORT_SPAWN_FAILED, errno, 0);
        _exit(1);
    }
    pid_t self = getpid();
    pid_t prog = _Fork();
    if (prog == 0) {
        close(go[1]);
        run_program(c, fds, go[0], self);
    }
    int fork_err = errno;
    close(go[0]);
    for (int i = 0; i < FD_COUNT; i++)
        if (i != FD_REPORT)
            close(fds[i]);
    if (prog < 0) {
        send_report(st_fd, REPORT_SPAWN_FAILED, fork_err, 0);
        _exit(1);
    }
    send_report(st_fd, REPORT_STARTED, prog, 0);
    close(go[1]);

    program_end pe = {.pid = prog};
    sigset_t wanted;
    sigemptyset(&wanted);
    sigaddset(&wanted, SIGCHLD);
    sigaddset(&wanted, SIGTERM);
    sigaddset(&wanted, end_sig);
    for (;;) {
        siginfo_t si;
        memset(&si, 0, sizeof si);
        int sig = sigwaitinfo(&wanted, &si);
        /* child_kill() or child_reap(), or the parent died (its death signal). Past the user's
         * RLIMIT_SIGPENDING the kernel delivers a real-time signal without its sender (si_pid
         * 0): taken as the parent's too, since anyone else's could only end the run early */
        if (sig == end_sig && (si.si_pid == parent || si.si_pid == 0 || getppid() != parent))
            break;
        if (sig == SIGTERM) { /* someone else's, e.g. a service manager's: the program's call */
            if (!pe.ended)
                (void)kill(prog, SIGTERM);
            continue;
        }
        if (sig != SIGCHLD)
            continue;
        bool none_left = reap_children(&pe);
        report_end(st_fd, &pe);
        if (none_left && pe.ended)
            _exit(0);
    }
    kill_tree(st_fd, &pe);
    _exit(0);
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

/* Read one report: 1, 0 at EOF, or -errno. */
static int read_report(int fd, report *r)
{
    size_t have = 0;
    while (have < sizeof *r) {
        ssize_t n = read(fd, (char *)r + have, sizeof *r - have);
        if (n > 0)
            have += (size_t)n;
        else if (n == 0)
            return 0;
        else if (errno != EINTR)
            return -errno;
    }
    return 1;
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
    return c;
}

/* Reap a supervisor that failed to start the program (it ends once it has reaped the program). */
static void reap_failed_start(child *c)
{
    (void)kill(c->pid, end_signal());
    close_fd(&c->in_fd);
    close_fd(&c->out_fd);
    close_fd(&c->err_fd);
    close_fd(&c->st_fd);
    close_fd(&c->kill_fd);
    while (waitpid(c->pid, NULL, 0) < 0 && errno == EINTR)
        ;
    c->pid = 0;
}

int child_start(child *c)
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
    if (!rc) /* for child_kill(); the supervisor closes its copy with the rest */
        rc = make_eventfd(&c->kill_fd);
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
            supervisor_main(c, fds, parent, end_sig);
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
        close_fd(&c->kill_fd);
        return rc;
    }

    /* The program's pid, then the exec's outcome: EOF, or the errno value of what failed. */
    report r;
    int got = read_report(c->st_fd, &r);
    if (got == 1 && r.kind == REPORT_STARTED) {
        c->program = r.value;
        int32_t exec_err = 0;
        size_t have = 0;
        while (have < sizeof exec_err) {
            ssize_t n = read(pex[0], (char *)&exec_err + have, sizeof exec_err - have);
            if (n > 0)
                have += (size_t)n;
            else if (n == 0 || errno != EINTR)
                break;
        }
        close_fd(&pex[0]);
        if (have == 0)
            return 0;
        rc = have == sizeof exec_err && exec_err > 0 ? exec_err : EIO;
    } else {
        close_fd(&pex[0]);
        rc = got == 1 && r.kind == REPORT_SPAWN_FAILED && r.value > 0 ? r.value
             : got < 0                                                ? -got
                                                                      : ECHILD;
    }
    note_failure(c, CHILD_SPAWN, rc);
    reap_failed_start(c);
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

/* Take a report from the supervisor; false when it ended without reporting the program's end. */
static bool pump_reports(child *c)
{
    report r;
    int got = read_report(c->st_fd, &r);
    if (got == 1) {
        if (r.kind == REPORT_EXITED) {
            c->exited = true;
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

/* Move data until the program exits (and its output is drained), its output goes past the cap,
 * the deadline passes, or child_kill() is called before the program's end is known. */
static child_end pump_until_end(child *c, int64_t deadline)
{
    int64_t drain_until = c->exited ? clock_mono_ms() + c->spec.drain_ms : 0;
    for (;;) {
        if (c->out_over)
            return CHILD_STDOUT_OVER;
        int64_t now = clock_mono_ms();
        if (c->exited && ((c->out_fd < 0 && c->err_fd < 0) || now >= drain_until))
            return CHILD_EXITED;
        if (!c->exited && now >= deadline)
            return CHILD_TIMED_OUT;

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
        int64_t wait = c->exited ? drain_until - now : deadline == INT64_MAX ? -1 : deadline - now;
        if (wait > INT_MAX)
            wait = INT_MAX;
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
        /* last: a kill that came with the program's end (its report read above) waits for
         * the output to be drained, as any end does */
        if (slot_kill >= 0 && p[slot_kill].revents && !c->exited)
            return CHILD_KILLED;
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
    child_end end = pump_until_end(c, deadline_ms);
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    return end;
}

/* ---- ending ---- */

void child_kill(const child *c)
{
    if (c->pid <= 0)
        return;
    (void)kill(c->pid, end_signal()); /* the supervisor kills its whole tree */
    /* and child_wait() returns now, whether or not it can: a stopped supervisor is then
     * child_reap()'s to kill after its grace, not left until the deadline */
    uint64_t one = 1;
    ssize_t n = write(c->kill_fd, &one, sizeof one);
    (void)n; /* full (past 2^64 - 2 kills) is as readable as one */
}

/*
 * The supervisor did not clear the run in time (the program stopped it, or it is stuck): kill
 * it, and first the program's process group, but only while that group's id is still the
 * program's. The supervisor is stopped before looking, so it reaps nothing more; then a process
 * with the program's pid whose parent is the supervisor is the program, alive or a zombie (the
 * supervisor's other children are orphans of the run it adopted), and while it holds that pid
 * no process outside the run can lead a group of that id. True when the supervisor was reaped
 * here (it ended on its own meanwhile).
 */
static bool force_end(child *c, int *sup_status)
{
    (void)kill(c->pid, SIGSTOP);
    pid_t w = 0;
    for (int waited = 0; waited < FORCE_STOP_WAIT_MS; waited++) {
        do {
            w = waitpid(c->pid, sup_status, WNOHANG | WUNTRACED);
        } while (w < 0 && errno == EINTR);
        if (w != 0)
            break;
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    if (w < 0 || (w == c->pid && !WIFSTOPPED(*sup_status)))
        return true; /* it exited (reaped now, or elsewhere): nothing left to signal */
    proc_id prog;
    if (w == c->pid && !c->exited && c->program > 0 && proc_read(c->program, &prog) &&
        prog.ppid == c->pid)
        (void)kill(-c->program, SIGKILL);
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
    bool forced = false, reaped = false;
    int sup_status;
    while (c->st_fd >= 0) {
        int64_t left = forced ? -1 : until - clock_mono_ms();
        if (!forced && left <= 0) {
            /* Leftovers the supervisor had adopted go to init. */
            reaped = force_end(c, &sup_status);
            forced = true;
            continue;
        }
        struct pollfd p = {.fd = c->st_fd, .events = POLLIN};
        int ready = poll(&p, 1, (int)left);
        if (ready < 0 && errno != EINTR) {
            forced = true; /* cannot wait politely: wait as long as it takes */
            continue;
        }
        if (ready > 0)
            (void)pump_reports(c); /* closes st_fd at EOF */
    }
    pid_t w = c->pid;
    while (!reaped && (w = waitpid(c->pid, &sup_status, 0)) < 0 && errno == EINTR)
        ;
    int e = w < 0 ? errno : 0;
    c->pid = 0; /* reaped, or gone already: either way not ours to signal any more */
    if (!c->exited) {
        /* The supervisor died (a SIGKILL, the OOM killer) before the program's end: the program
         * dies of its parent-death signal, but what it started in its process group would go
         * on under init. The group's id is not reused while any of them lives; once none does,
         * this finds nobody (another process would have to take that id as its group's in the
         * meantime, after the pids wrapped around). Not after force_end(), which did it
         * while it could tell the group was still the program's. */
        if (c->program > 0 && !forced)
            (void)kill(-c->program, SIGKILL);
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
