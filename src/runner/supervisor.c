#include "runner/supervisor.h"
#include "runner/proc_tree.h"
#include "util/clock.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Most descendants killed in one round; more are found in the next round. */
#define TREE_MAX 1024

/* ---- the program (runs in the supervisor's fork: system calls only) ---- */

/* Lower one limit to at most want_soft / want_hard, never above the inherited one: the soft
 * value no higher than the inherited soft limit, the hard no higher than the hard limit. */
static int lower_limit(int resource, rlim_t want_soft, rlim_t want_hard)
{
    struct rlimit cur;
    if (getrlimit(resource, &cur) != 0)
        return errno;
    struct rlimit r = {.rlim_cur = want_soft, .rlim_max = want_hard};
    if (r.rlim_max > cur.rlim_max)
        r.rlim_max = cur.rlim_max;
    if (r.rlim_cur > cur.rlim_cur) /* RLIM_INFINITY is the largest value: no bound */
        r.rlim_cur = cur.rlim_cur;
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
static _Noreturn void run_program(const child_spec *spec, const int fds[], int go, pid_t supervisor)
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
        e = apply_limits(&spec->limits);
    if (!e) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execve(spec->path, spec->argv, spec->env);
        e = errno;
    }
    int32_t code = e;
    (void)!write(fds[FD_EXEC], &code, sizeof code);
    _exit(127);
}

/* ---- the supervisor (a fork of a multi-threaded process: system calls only) ---- */

static void send_report(int fd, int32_t kind, int32_t value, int64_t cpu_ms)
{
    supervisor_report r = {.kind = kind, .value = value, .cpu_ms = cpu_ms};
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
        proc_each_numbered(dir, close_listed_fd, &listed);
        close(dir);
        return;
    }
    struct rlimit rl;
    int max = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 65536 ? (int)rl.rlim_cur : 65536;
    for (int fd = STDERR_FILENO + 1; fd < max; fd++)
        if (!kept(keep, n, fd))
            close(fd);
}

/* How the program ended, as the supervisor knows it. */
typedef struct program_end {
    pid_t pid;
    bool ended, reported;
    bool killing; /* kill_tree() has sent its first kill */
    bool killed;  /* the program was reaped once killing was under way */
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
                pe->killed = pe->killing;
                pe->status = st;
                pe->cpu_ms = clock_cpu_ms(&ru);
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
        send_report(st_fd, pe->killed ? REPORT_KILLED : REPORT_EXITED, pe->status, pe->cpu_ms);
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
 * reported as soon as it is reaped, so that the parent has it should the supervisor die while it
 * clears the rest (child_reap() then kills the program's group itself): as its own (EXITED) when
 * the first reap, before any kill, finds it ended, else as KILLED. A round walks the tree down
 * from the supervisor through each process's children files, which reads what the run holds;
 * where the kernel has none, it makes one pass over /proc, which reads every process on the
 * machine. What the round missed (a process forked as it read, past TREE_MAX, a pid reused, one
 * whose parent the pass read after it) is found in a later round, since a descendant alive keeps
 * a child of the supervisor alive (itself, or an ancestor of it: the supervisor is the subreaper
 * of what it leaves); see design.md, "Processes: nothing outlives its run". */
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
        int added = proc_tree_walk(tree, &n, TREE_MAX);
        if (added < 0) /* no children files: a pass over every process */
            added = proc_tree_scan(tree, &n, TREE_MAX);
        pe->killing = true; /* an end reaped from here on may be this round's doing */
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
            (void)proc_signal_seen(&tree[i], SIGKILL);
        await_sigchld(pause_ms);
        if (pause_ms < 100)
            pause_ms *= 2;
    }
}

/* Close every descriptor this process inherited but fds[], and put /dev/null on 0, 1 and 2. */
static void close_inherited(const int fds[FD_COUNT])
{
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
}

/*
 * Wait for the end signal from parent (child_kill() or child_reap(), or its death), reaping the
 * program and whatever it left as they end and reporting the program's end on st_fd; exit once
 * the program has ended and no child is left. A SIGTERM from anyone else goes to the program.
 */
static void await_end_signal(int st_fd, program_end *pe, pid_t parent, int end_sig)
{
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
            return;
        if (sig == SIGTERM) { /* someone else's, e.g. a service manager's: the program's call */
            if (!pe->ended)
                (void)kill(pe->pid, SIGTERM);
            continue;
        }
        if (sig != SIGCHLD)
            continue;
        bool none_left = reap_children(pe);
        report_end(st_fd, pe);
        if (none_left && pe->ended)
            _exit(0);
    }
}

_Noreturn void supervisor_main(const child_spec *spec, const int fds[FD_COUNT], pid_t parent,
                               int end_sig)
{
    const int st_fd = fds[FD_REPORT];
    if (prctl(PR_SET_PDEATHSIG, (unsigned long)end_sig) != 0 || getppid() != parent)
        _exit(1); /* the parent is gone already: nobody to run for */
    /* Named by the system call itself: AddressSanitizer wraps the C library's prctl() and, for
     * PR_SET_NAME, takes a lock of its own to note a thread's name, which another thread of the
     * parent may have held at the fork; the supervisor then waited for it for good, and its run
     * could only time out (8 forks in 2000 beside a thread starting threads). */
    (void)syscall(SYS_prctl, PR_SET_NAME, (unsigned long)SUPERVISOR_NAME, 0UL, 0UL, 0UL);
    (void)setpgid(0, 0);
    reset_signals();
    if (prctl(PR_SET_CHILD_SUBREAPER, 1UL) != 0) {
        send_report(st_fd, REPORT_SPAWN_FAILED, errno, 0);
        _exit(1);
    }
    close_inherited(fds);

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
        run_program(spec, fds, go[0], self);
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
    await_end_signal(st_fd, &pe, parent, end_sig);
    kill_tree(st_fd, &pe);
    _exit(0);
}
