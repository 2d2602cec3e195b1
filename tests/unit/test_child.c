/*
 * Unit tests for runner/child: input on stdin, the environment given and no other, the cap on
 * stdout (and the buffer that never outgrows it), the sliding stderr tail, exit statuses, the
 * deadline, a background process holding stdout after the child exits, output left in an
 * enlarged pipe at the end kept whole (and a failed look at it failing the wait), unread input,
 * spawn failures, a start whose read of the exec's outcome fails, a supervisor killed in the
 * start, child_free() on a child still running, a kill or a passed deadline before the start, an
 * end reported behind the start a start cut short left unread (taken past the deadline);
 * containment (a descendant in a session of its own is gone after a normal end, a timeout (with
 * /proc's own list out of reach, or the children files), a growing tree, and a SIGKILL of the
 * process running the child; more descendants than a round holds; the program's group after a reap
 * whose poll() fails, after a forced end that does not see its supervisor stop, after one that
 * comes once the program ended, after a supervisor killed once the program ended, after one killed
 * as the forced end sees it stopped, and held by a grandchild of the supervisor alone), only stdio
 * inherited, no signal ignored or blocked in the program, a supervisor left to its reap whatever
 * SIGCHLD was, a foreign SIGTERM passed on; and the resource limits (values, a soft limit of ours
 * below them, SIGXCPU, EMFILE).
 *
 * The programs are one-line shell scripts run with sh -c, so they need no files of their own.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "runner/child.h"
#include "support/proc_stat.h"
#include "util/clock.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SH "/bin/sh"

/* A spec running `sh -c script` with env (NULL: an empty environment) and generous limits. */
static child_spec script_spec(char **argv, const char *script, char **env)
{
    static char *no_env[] = {NULL};
    argv[0] = "sh";
    argv[1] = "-c";
    argv[2] = (char *)script;
    argv[3] = NULL;
    return (child_spec){.path = SH,
                        .argv = argv,
                        .env = env ? env : no_env,
                        .stdout_max = 1 << 16,
                        .stderr_tail = 256,
                        .drain_ms = 100};
}

/* A spec running `sh -c script sh pidfile` (the script writes its pids there) on the PATH, with
 * small limits and a 300 ms kill grace: for the programs whose supervisor stops or dies, or
 * clears a tree. argv has room for 6. */
static child_spec stopper_spec(char **argv, const char *script, const char *pidfile)
{
    static char *path_env[] = {"PATH=/usr/local/bin:/usr/bin:/bin", NULL};
    argv[0] = "sh";
    argv[1] = "-c";
    argv[2] = (char *)script;
    argv[3] = "sh";
    argv[4] = (char *)pidfile;
    argv[5] = NULL;
    return (child_spec){.path = SH,
                        .argv = argv,
                        .env = path_env,
                        .stdout_max = 64,
                        .stderr_tail = 64,
                        .drain_ms = 100,
                        .kill_grace_ms = 300};
}

/* While above 0, the number of poll() calls still to fail with ENOMEM (the kernel short of
 * memory), counted down. poll() stands in for libc's in the whole test program. */
static int polls_to_fail;
/* While set, poll() sees nothing ready: it waits its timeout out and returns 0, as though the
 * descriptors had nothing to give by then (a supervisor that does not report in time). */
static bool polls_see_nothing;

int poll(struct pollfd *fds, nfds_t n, int timeout)
{
    if (polls_to_fail > 0) {
        polls_to_fail--;
        errno = ENOMEM;
        return -1;
    }
    if (polls_see_nothing) {
        clock_sleep_ms(timeout);
        return 0;
    }
    struct timespec ts = {timeout / 1000, (long)(timeout % 1000) * 1000000};
    return ppoll(fds, n, timeout < 0 ? NULL : &ts, NULL);
}

/* While above 0, the number of FIONREAD requests still to fail with EIO, counted down. ioctl()
 * stands in for libc's in the whole test program. */
static int fionreads_to_fail;

int ioctl(int fd, unsigned long request, ...)
{
    va_list ap;
    va_start(ap, request);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    if (request == FIONREAD && fionreads_to_fail > 0) {
        fionreads_to_fail--;
        errno = EIO;
        return -1;
    }
    return (int)syscall(SYS_ioctl, fd, request, arg);
}

/* While above 0, the number of reads of 4 bytes still to fail with EIO, counted down: the start's
 * read of the exec's outcome (an int32_t), which no other read of a run asks for. read() stands
 * in for libc's in the whole test program. */
static int exec_reads_to_fail;

ssize_t read(int fd, void *buf, size_t n)
{
    if (n == sizeof(int32_t) && exec_reads_to_fail > 0) {
        exec_reads_to_fail--;
        errno = EIO;
        return -1;
    }
    return (ssize_t)syscall(SYS_read, fd, buf, n);
}

/* While set, the next fork() (a run's start forking its supervisor) also forks a process that holds
 * every descriptor of the run's pipes, as the program does until its exec is through, and that no
 * kill of the run ends: it stands for a program stuck in its exec (an uninterruptible sleep on a
 * hung file system). Its pid in pipe_holder. fork() stands in for libc's in the whole test
 * program. */
static bool hold_the_pipes;
static pid_t pipe_holder;

pid_t fork(void)
{
    static pid_t (*real_fork)(void);
    if (!real_fork)
        real_fork = (pid_t(*)(void))dlsym(RTLD_NEXT, "fork");
    pid_t pid = real_fork();
    if (pid > 0 && hold_the_pipes) {
        hold_the_pipes = false;
        pipe_holder = _Fork(); /* every signal blocked, as across the start's fork */
        if (pipe_holder == 0)
            for (;;)
                pause();
    }
    return pid;
}

/* While not 0, the prctl() option at which the supervisor of a run being started is killed (a
 * SIGKILL, as from elsewhere): PR_SET_CHILD_SUBREAPER, the supervisor's own, before it starts the
 * program; PR_SET_PDEATHSIG with SIGKILL, the program's, after its start is reported and before
 * the program takes its death signal. prctl() stands in for libc's in the whole test program;
 * like libc's, it passes on four arguments whatever the option. */
static int supervisor_killed_at;

int prctl(int option, ...)
{
    va_list ap;
    va_start(ap, option);
    unsigned long arg[4];
    for (int i = 0; i < 4; i++)
        arg[i] = va_arg(ap, unsigned long);
    va_end(ap);
    if (option == supervisor_killed_at && option == PR_SET_CHILD_SUBREAPER)
        kill(getpid(), SIGKILL);
    if (option == supervisor_killed_at && option == PR_SET_PDEATHSIG && arg[0] == SIGKILL) {
        pid_t supervisor = getppid();
        kill(supervisor, SIGKILL);
        while (getppid() == supervisor) /* until it is gone */
            clock_sleep_ms(1);
    }
    return (int)syscall(SYS_prctl, option, arg[0], arg[1], arg[2], arg[3]);
}

/* While set, a process whose stop waitpid() reports is killed (a SIGKILL from elsewhere) before the
 * stop is returned, and is a zombie by then: a supervisor that dies as soon as its stop is seen.
 * Cleared once done. waitpid() stands in for libc's in the whole test program. */
static bool stopped_ones_die;

pid_t waitpid(pid_t pid, int *status, int options)
{
    pid_t w = (pid_t)syscall(SYS_wait4, pid, status, options, NULL);
    if (stopped_ones_die && w > 0 && WIFSTOPPED(*status)) {
        stopped_ones_die = false;
        kill(w, SIGKILL);
        siginfo_t si;
        while (waitid(P_PID, (id_t)w, &si, WEXITED | WNOWAIT) < 0 && errno == EINTR)
            ;
    }
    return w;
}

/* While set, "/proc" cannot be opened (ENOENT), as on a machine without it mounted; while
 * children_unlisted is, no thread's children file (/proc/<pid>/task/<tid>/children) can, as on a
 * kernel without CONFIG_PROC_CHILDREN. open() stands in for libc's in the whole test program, the
 * supervisors (its forks) included. */
static bool proc_unlisted, children_unlisted;

int open(const char *path, int flags, ...)
{
    mode_t mode = 0;
    if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) {
        va_list ap;
        va_start(ap, flags);
        mode = va_arg(ap, mode_t);
        va_end(ap);
    }
    size_t len = strlen(path), tail = sizeof "/children" - 1;
    if ((proc_unlisted && strcmp(path, "/proc") == 0) ||
        (children_unlisted && len >= tail && strcmp(path + len - tail, "/children") == 0)) {
        errno = ENOENT;
        return -1;
    }
    return (int)syscall(SYS_openat, AT_FDCWD, path, flags, mode);
}

/* c's first failure, its errno value in *code, once c's run is ended: child_reap()'s answer in
 * *reaped, and c freed. */
static child_step failure_then_end(child *c, int *code, int *reaped)
{
    *code = 0;
    child_step step = child_failure(c, code);
    int status;
    *reaped = child_reap(c, &status);
    child_free(c);
    return step;
}

/* Start c, wait until deadline_ms from now, kill the group and reap; returns how it ended. */
static child_end run(child *c, int64_t deadline_ms, int *status)
{
    const int64_t deadline = clock_mono_ms() + deadline_ms;
    assert_int_equal(child_start(c, deadline), 0);
    child_end end = child_wait(c, deadline);
    child_kill(c);
    assert_int_equal(child_reap(c, status), 0);
    return end;
}

/* ---- containment helpers ---- */

/*
 * A script that leaves a process in a session of its own, re-parented away from the program
 * (a double fork: the subshell exits at once), records "<program pid> <escapee pid>
 * <background pid>" in $1 once they all run, then runs the rest.
 */
#define ESCAPE_PROLOGUE                                                                            \
    "f=$1; ( setsid sh -c 'echo $$ > \"$1\"; exec sleep 30' sh \"$f.esc\" & ); "                   \
    "sleep 30 & bg=$!; "                                                                           \
    "while [ ! -s \"$f.esc\" ]; do sleep 0.01; done; "                                             \
    "echo $$ $(cat \"$f.esc\") $bg > \"$f.tmp\"; rm -f \"$f.esc\"; mv \"$f.tmp\" \"$f\"; "

static bool have_setsid(void)
{
    return access("/usr/bin/setsid", X_OK) == 0 || access("/bin/setsid", X_OK) == 0;
}

/* Whether the kernel lists each thread's children (CONFIG_PROC_CHILDREN). */
static bool have_children_files(void)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)getpid(), (int)gettid());
    return access(path, R_OK) == 0;
}

/* A fresh file name in /tmp (nothing there yet). */
static void temp_name(char *buf, size_t len)
{
    snprintf(buf, len, "/tmp/test_child.XXXXXX");
    int fd = mkstemp(buf);
    assert_true(fd >= 0);
    close(fd);
    unlink(buf);
}

/* Clock ticks after boot, the unit of a process's start time in /proc/<pid>/stat. */
static unsigned long long boot_ticks(const struct timespec *wall)
{
    struct timespec now, boot;
    clock_gettime(CLOCK_REALTIME, &now);
    clock_gettime(CLOCK_BOOTTIME, &boot);
    double since_boot = (double)boot.tv_sec + boot.tv_nsec / 1e9 -
                        ((double)now.tv_sec + now.tv_nsec / 1e9) +
                        ((double)wall->tv_sec + wall->tv_nsec / 1e9);
    /* + 1: file times come from a coarse clock, which may lag a process's start by a tick */
    return (unsigned long long)(since_boot * (double)sysconf(_SC_CLK_TCK)) + 1;
}

/* Read up to max pids from path, waiting up to 10 s for the file to appear; *written is when it
 * was written (clock ticks after boot): every process it names had started by then. */
static int read_pids(const char *path, pid_t *pids, int max, unsigned long long *written)
{
    for (int i = 0; i < 1000 && access(path, R_OK) != 0; i++)
        usleep(10000);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    struct stat st;
    *written = fstat(fileno(f), &st) == 0 ? boot_ticks(&st.st_mtim) : 0;
    int n = 0;
    long v;
    while (n < max && fscanf(f, "%ld", &v) == 1)
        pids[n++] = (pid_t)v;
    fclose(f);
    return n;
}

/*
 * The state letter of the fixture's process pid ('R', 'S', 'Z', ...), or 0 when there is none: no
 * process of that pid, or one that started after the fixture wrote its pid file (written), which
 * reuses the pid (pid_max may be small), or a thread's id (its /proc entry is its process's).
 */
static char fixture_state(pid_t pid, unsigned long long written)
{
    unsigned long long started = 0;
    char state = test_proc_state(pid, NULL, &started);
    return state && started <= written ? state : 0;
}

/* True when the fixture's process pid no longer runs (gone, or a zombie nobody reaped yet). */
static bool not_running(pid_t pid, unsigned long long written)
{
    char s = fixture_state(pid, written);
    return s == 0 || s == 'Z' || s == 'X';
}

/* SIGKILL the fixture's process pid, through a pidfd opened before checking that it is still
 * the fixture's, so a pid reused meanwhile is never signalled. */
static void kill_fixture(pid_t pid, unsigned long long written)
{
    int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pfd < 0)
        return;
    if (!not_running(pid, written))
        (void)syscall(SYS_pidfd_send_signal, pfd, SIGKILL, NULL, 0);
    close(pfd);
}

/* Wait up to ms for every fixture pid to stop running; kill and report any that did not. */
static void assert_all_end(const pid_t *pids, int n, unsigned long long written, int ms)
{
    for (int waited = 0;; waited += 20) {
        int alive = 0;
        for (int i = 0; i < n; i++)
            alive += !not_running(pids[i], written);
        if (!alive)
            return;
        if (waited >= ms)
            break;
        usleep(20000);
    }
    for (int i = 0; i < n; i++)
        if (!not_running(pids[i], written)) {
            kill_fixture(pids[i], written);
            fail_msg("process %d (%d of %d) outlived its run", (int)pids[i], i + 1, n);
        }
}

/* Run script (with the pid file as $1) until deadline_ms from now, then kill and reap;
 * returns how child_wait() ended, the pids in pids[0..3). */
static child_end run_escaping(const char *script, int64_t deadline_ms, pid_t pids[3],
                              unsigned long long *written, int *status)
{
    char pidfile[64];
    temp_name(pidfile, sizeof pidfile);
    char *argv[] = {"sh", "-c", (char *)script, "sh", pidfile, NULL};
    char *env[] = {"PATH=/usr/local/bin:/usr/bin:/bin", NULL};
    child_spec spec = {.path = SH,
                       .argv = argv,
                       .env = env,
                       .stdout_max = 1 << 16,
                       .stderr_tail = 256,
                       .drain_ms = 100};
    child *c = child_new(&spec);
    assert_non_null(c);
    child_end end = run(c, deadline_ms, status);
    child_free(c);
    assert_int_equal(read_pids(pidfile, pids, 3, written), 3);
    unlink(pidfile);
    return end;
}

static void test_input_reaches_stdin(void **state)
{
    (void)state;
    char *argv[4];
    child_spec spec = script_spec(argv, "cat", NULL);
    spec.input = "hello\nworld\n";
    spec.input_len = strlen(spec.input);
    child *c = child_new(&spec);
    assert_non_null(c);
    int status;
    assert_int_equal(run(c, 10000, &status), CHILD_EXITED);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    size_t n;
    assert_string_equal(child_stdout(c, &n), "hello\nworld\n");
    assert_int_equal(n, 12);
    int code;
    assert_int_equal(child_failure(c, &code), CHILD_OK);
    child_free(c);
}

static void test_environment_is_exactly_the_one_given(void **state)
{
    (void)state;
    setenv("CHILD_TEST_INHERITED", "leaked", 1);
    char *env[] = {"CHILD_TEST_VAR=given value", NULL};
    char *argv[4];
    child_spec spec = script_spec(
        argv, "printf '%s|%s' \"$CHILD_TEST_VAR\" \"${CHILD_TEST_INHERITED-unset}\"", env);
    child *c = child_new(&spec);
    assert_non_null(c);
    int status;
    assert_int_equal(run(c, 10000, &status), CHILD_EXITED);
    unsetenv("CHILD_TEST_INHERITED");
    size_t n;
    assert_string_equal(child_stdout(c, &n), "given value|unset");
    child_free(c);
}

static void test_stdout_over_the_cap(void **state)
{
    (void)state;
    char *argv[4];
    child_spec spec = script_spec(argv, "printf 0123456789; printf abcdefghij; echo more", NULL);
    spec.stdout_max = 15;
    child *c = child_new(&spec);
    assert_non_null(c);
    int status;
    assert_int_equal(run(c, 10000, &status), CHILD_STDOUT_OVER);
    size_t n;
    assert_string_equal(child_stdout(c, &n), "0123456789abcde");
    assert_int_equal(n, 15);
    assert_true(child_stdout_reserved(c) <= 16);
    child_free(c);

    /* Exactly the cap is not over it. */
    spec = script_spec(argv, "printf 0123456789; printf abcde", NULL);
    spec.stdout_max = 15;
    c = child_new(&spec);
    assert_non_null(c);
    assert_int_equal(run(c, 10000, &status), CHILD_EXITED);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_string_equal(child_stdout(c, &n), "0123456789abcde");
    child_free(c);
}

/* Output past the cap read in the same wait as a kill: the program wrote it before the kill
 * ended it, so the end is the output's (the kill won: CHILD_KILLED, and an exec run so ended
 * was given back to go over again after a restart). */
static void test_stdout_over_seen_with_a_kill_is_over(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_child.XXXXXX", ready[64], script[160];
    assert_non_null(mkdtemp(dir));
    snprintf(ready, sizeof ready, "%s/ready", dir);
    snprintf(script, sizeof script, "printf 0123456789abcdefghij; : > %s; exec sleep 30", ready);
    char *argv[4];
    child_spec spec = script_spec(argv, script, NULL);
    spec.stdout_max = 15;
    child *c = child_new(&spec);
    assert_non_null(c);
    assert_int_equal(child_start(c, INT64_MAX), 0);
    for (int i = 0; i < 1000 && access(ready, F_OK) != 0; i++)
        usleep(10000);
    assert_int_equal(access(ready, F_OK), 0); /* the output is in the pipe */
    child_kill(c);
    assert_int_equal(child_wait(c, clock_mono_ms() + 10000), CHILD_STDOUT_OVER);
    int status;
    child_reap(c, &status);
    child_free(c);
    unlink(ready);
    rmdir(dir);
}

/* An endless writer is stopped as soon as it passes the cap, within 10 s, not at the deadline
 * (30 s); the buffer for a 1 MiB cap stays at 1 MiB + 1 (it used to double to 2 MiB). */
static void test_stdout_over_stops_an_endless_writer(void **state)
{
    (void)state;
    char *argv[4];
    child_spec spec = script_spec(argv, "exec yes", NULL);
    spec.stdout_max = (size_t)1 << 20;
    child *c = child_new(&spec);
    assert_non_null(c);
    int64_t start = clock_mono_ms();
    int status;
    assert_int_equal(run(c, 30000, &status), CHILD_STDOUT_OVER);
    assert_true(clock_mono_ms() - start < 10000);
    size_t n;
    const char *out = child_stdout(c, &n);
    assert_int_equal(n, (size_t)1 << 20);
    assert_memory_equal(out, "y\ny\n", 4);
    assert_int_equal(child_stdout_reserved(c), ((size_t)1 << 20) + 1);
    assert_true(WIFSIGNALED(status)); /* killed: it would never have stopped */
    child_free(c);
}

static void test_no_stdout_is_empty(void **state)
{
    (void)state;
    char *argv[4];
    child_spec spec = script_spec(argv, "exit 0", NULL);
    child *c = child_new(&spec);
    assert_non_null(c);
    int status;
    run(c, 10000, &status);
    size_t n = 99;
    assert_string_equal(child_stdout(c, &n), "");
    assert_int_equal(n, 0);
    bool cut = true;
    child_stderr_tail(c, &n, &cut);
    assert_int_equal(n, 0);
    assert_false(cut);
    child_free(c);
}

static void test_stderr_keeps_the_tail(void **state)
{
    (void)state;
    char *argv[4];
    child_spec spec = script_spec(argv, "printf abc >&2; exit 4", NULL);
    spec.stderr_tail = 8;
    child *c = child_new(&spec);
    assert_non_null(c);
    int status;
    assert_int_equal(run(c, 10000, &status), CHILD_EXITED);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 4);
    size_t n;
    bool cut;
    const char *tail = child_stderr_tail(c, &n, &cut);
    assert_int_equal(n, 3);
    assert_memory_equal(tail, "abc", 3);
    assert_false(cut);
    child_free(c);

    /* Several writes, together longer than the tail: only the last 8 bytes stay. */
    spec = script_spec(argv,
                       "printf 0123 >&2; sleep 0.05; printf 456789 >&2; sleep 0.05; "
                       "printf ab >&2",
                       NULL);
    spec.stderr_tail = 8;
    c = child_new(&spec);
    assert_non_null(c);
    run(c, 10000, &status);
    tail = child_stderr_tail(c, &n, &cut);
    assert_int_equal(n, 8);
    assert_memory_equal(tail, "456789ab", 8);
    assert_true(cut);
    child_free(c);

    /* Exactly the tail's size in one write: nothing was dropped. */
    spec = script_spec(argv, "printf 01234567 >&2", NULL);
    spec.stderr_tail = 8;
    c = child_new(&spec);
    assert_non_null(c);
    run(c, 10000, &status);
    tail = child_stderr_tail(c, &n, &cut);
    assert_int_equal(n, 8);
    assert_memory_equal(tail, "01234567", 8);
    assert_false(cut);
    child_free(c);
}

static void test_killed_by_signal(void **state)
{
    (void)state;
    char *argv[4];
    child_spec spec = script_spec(argv, "kill -TERM $$", NULL);
    child *c = child_new(&spec);
    assert_non_null(c);
    int status;
    assert_int_equal(run(c, 10000, &status), CHILD_EXITED);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGTERM);
    child_free(c);
}

/* The wait ends at its deadline (1 s), the program and what it started killed: a wait kept more
 * than 4 s late fails the bound (5 s; the worst run measured beside busy loops under
 * AddressSanitizer took 1.7 s), one twice as long would not; one that waited for the program's
 * end (30 s) fails on how it ended. */
static void test_deadline_passes(void **state)
{
    (void)state;
    char *argv[4];
    child_spec spec = script_spec(argv, "sleep 30 & sleep 30", NULL);
    child *c = child_new(&spec);
    assert_non_null(c);
    int64_t start = clock_mono_ms();
    int status;
    assert_int_equal(run(c, 1000, &status), CHILD_TIMED_OUT);
    int64_t elapsed = clock_mono_ms() - start;
    assert_true(elapsed >= 1000);
    assert_true(elapsed < 5000);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);
    child_free(c);
}

/* The end of the output a background process holds (its sleep's, 30 s on) is not waited for once
 * the program has exited: the wait ends 100 ms (drain_ms) on, within a third of that sleep, a
 * bound a loaded machine keeps to. The deadline is past the sleep, so that a wait for the
 * output's end would end with the sleep, as the program did, and fail the bound alone. */
static void test_background_process_holding_stdout(void **state)
{
    (void)state;
    char *argv[4];
    child_spec spec = script_spec(argv, "sleep 30 & echo done", NULL);
    spec.drain_ms = 100;
    child *c = child_new(&spec);
    assert_non_null(c);
    int64_t start = clock_mono_ms();
    int status;
    assert_int_equal(run(c, 60000, &status), CHILD_EXITED);
    assert_true(clock_mono_ms() - start < 10000);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    size_t n;
    assert_string_equal(child_stdout(c, &n), "done\n");
    child_free(c);
}

static void test_unread_input(void **state)
{
    (void)state;
    void (*old)(int) = signal(SIGPIPE, SIG_DFL); /* a stray SIGPIPE would kill the test */
    size_t len = (size_t)1 << 20;
    char *input = malloc(len);
    assert_non_null(input);
    memset(input, 'x', len);
    char *argv[4];
    child_spec spec = script_spec(argv, "exec 0<&-; echo ok", NULL);
    spec.input = input;
    spec.input_len = len;
    child *c = child_new(&spec);
    assert_non_null(c);
    int status;
    assert_int_equal(run(c, 10000, &status), CHILD_EXITED);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    size_t n;
    assert_string_equal(child_stdout(c, &n), "ok\n");
    child_free(c);
    free(input);
    signal(SIGPIPE, old);
}

static void test_spawn_failure(void **state)
{
    (void)state;
    char *argv[4];
    child_spec spec = script_spec(argv, "exit 0", NULL);
    spec.path = "/nonexistent/program";
    child *c = child_new(&spec);
    assert_non_null(c);
    assert_int_equal(child_start(c, INT64_MAX), ENOENT);
    int code;
    assert_int_equal(child_failure(c, &code), CHILD_SPAWN);
    assert_int_equal(code, ENOENT);
    child_kill(c); /* the exec failed: nothing of it runs */
    child_free(c); /* reaps the supervisor */
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
}

/* child_free() kills the program and reaps its supervisor at once: within 10 s, where one that
 * waited for the program (30 s) or for the kill's grace (30 s here) would fail. */
static void test_free_kills_a_running_child(void **state)
{
    (void)state;
    char *argv[4];
    child_spec spec = script_spec(argv, "sleep 30", NULL);
    spec.kill_grace_ms = 30000;
    child *c = child_new(&spec);
    assert_non_null(c);
    assert_int_equal(child_start(c, INT64_MAX), 0);
    int64_t start = clock_mono_ms();
    child_free(c); /* kills the group and reaps: returns at once, leaves no zombie */
    assert_true(clock_mono_ms() - start < 10000);
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
    child_free(NULL);
}

/* A supervisor killed (a SIGKILL from elsewhere, the OOM killer) while the run starts, before it
 * reports the program's start or after, before the program takes its death signal: the program
 * never runs, and the start fails as a run whose supervisor died under it (CHILD_SUPERVISOR: the
 * exec handler runs its task again), not as a program that cannot be started. It failed with
 * CHILD_SPAWN (ECHILD, or ESRCH from the program's check), and the exec handler failed the task
 * for good: "exec: cannot start /bin/sh: No such process". */
static void test_a_supervisor_killed_in_the_start_is_killed_under_the_run(void **state)
{
    (void)state;
    const int at[] = {PR_SET_CHILD_SUBREAPER, PR_SET_PDEATHSIG};
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
        char *argv[4];
        child_spec spec = script_spec(argv, "exit 0", NULL);
        child *c = child_new(&spec);
        assert_non_null(c);
        supervisor_killed_at = at[i];
        int rc = child_start(c, INT64_MAX);
        supervisor_killed_at = 0;
        int code, status;
        child_step step = child_failure(c, &code);
        int reaped = child_reap(c, &status);
        child_free(c);
        assert_int_equal(step, CHILD_SUPERVISOR);
        assert_int_equal(rc, code);
        assert_int_equal(code, i == 0 ? ECHILD : ESRCH);
        assert_int_equal(reaped, ECHILD);
    }
}

/* Start a `sleep 30` with deadline (ms on the monotonic clock) after before(c) (NULL: none), and
 * expect nothing to be started: the wait ends as end, nothing is left to reap (no supervisor, no
 * program) and this process has no child. */
static void expect_nothing_started(void (*before)(const child *), int64_t deadline, child_end end)
{
    char *argv[4];
    child_spec spec = script_spec(argv, "sleep 30", NULL);
    child *c = child_new(&spec);
    assert_non_null(c);
    if (before)
        before(c);
    assert_int_equal(child_start(c, deadline), 0);
    assert_int_equal(child_wait(c, deadline), end);
    int status, code;
    assert_int_equal(child_reap(c, &status), ECHILD); /* no supervisor to reap */
    assert_int_equal(child_failure(c, &code), CHILD_OK);
    assert_int_equal(child_pid(c), 0); /* no program */
    assert_false(child_ended_alone(c));
    child_free(c);
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
}

/* A kill before the start is not lost: the run ends killed at once (once, a kill found no
 * supervisor to signal, and the run went on to its deadline), and nothing is started (the start
 * forked the supervisor, which started the program, and the kill reached them only then: the
 * reap found the program's pid and its end). */
static void test_a_kill_before_the_start_ends_the_run(void **state)
{
    (void)state;
    const int64_t deadline = clock_mono_ms() + 10000;
    expect_nothing_started(child_kill, deadline, CHILD_KILLED);
    assert_true(clock_mono_ms() < deadline);
}

/* A deadline passed before the start starts nothing: the run ends timed out at once. The start
 * forked the supervisor and the program all the same, and the run killed them then (a third of
 * such programs ran their first command). */
static void test_a_deadline_passed_before_the_start_starts_nothing(void **state)
{
    (void)state;
    expect_nothing_started(NULL, clock_mono_ms(), CHILD_TIMED_OUT);
}

/* ---- containment ---- */

/* After a normal end, nothing the program started survives: not the background process in its
 * group, nor the one that moved to a session of its own and was re-parented away. They are gone
 * (killed and reaped) by the time child_reap() returns, so no waiting is needed. */
static void test_normal_end_kills_escaped_descendants(void **state)
{
    (void)state;
    if (!have_setsid())
        skip();
    pid_t pids[3];
    unsigned long long written = 0;
    int status;
    child_end end = run_escaping(ESCAPE_PROLOGUE "echo done", 20000, pids, &written, &status);
    assert_int_equal(end, CHILD_EXITED);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    for (int i = 0; i < 3; i++)
        if (fixture_state(pids[i], written) != 0) {
            assert_all_end(pids, 3, written, 0);
            fail_msg("process %d survived the run", (int)pids[i]);
        }
}

/* A run of a program that left a descendant in a session of its own (re-parented to the
 * supervisor) and one in its group times out: both are gone, with the program, once reaped. */
static void assert_a_timeout_kills_escaped_descendants(void)
{
    pid_t pids[3];
    unsigned long long written = 0;
    int status;
    child_end end = run_escaping(ESCAPE_PROLOGUE "sleep 30", 1500, pids, &written, &status);
    assert_int_equal(end, CHILD_TIMED_OUT);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    for (int i = 0; i < 3; i++)
        if (fixture_state(pids[i], written) != 0) {
            assert_all_end(pids, 3, written, 0);
            fail_msg("process %d survived the timeout", (int)pids[i]);
        }
}

static void test_timeout_kills_escaped_descendants(void **state)
{
    (void)state;
    if (!have_setsid())
        skip();
    assert_a_timeout_kills_escaped_descendants();
}

/* A round lists the run's processes alone, each's children (its children files), not every
 * process on the machine: with /proc's own list out of reach, the descendant in a session of its
 * own is found and killed all the same. A round read every process in /proc, whose cost grew
 * with the machine's processes (65 ms with 3,000 more): without that list it could kill only the
 * program's group, and the escapee went on under init. */
static void test_a_round_reads_the_runs_processes_alone(void **state)
{
    (void)state;
    if (!have_setsid() || !have_children_files())
        skip();
    proc_unlisted = true;
    assert_a_timeout_kills_escaped_descendants();
}

/* On a kernel without the children files (CONFIG_PROC_CHILDREN), a round passes over every
 * process in /proc, and the escapee is killed as before. */
static void test_without_children_files_a_round_reads_every_process(void **state)
{
    (void)state;
    if (!have_setsid())
        skip();
    children_unlisted = true;
    assert_a_timeout_kills_escaped_descendants();
}

/* Every list of /proc back as it is. */
static int lists_restored(void **state)
{
    (void)state;
    proc_unlisted = children_unlisted = false;
    return 0;
}

/* A fork bomb of sorts: every process starts another one and the tree keeps changing while it is
 * killed. Still nothing is left. */
static void test_kill_while_the_tree_grows(void **state)
{
    (void)state;
    char *argv[4];
    child_spec spec = script_spec(
        argv, "f() { sleep 0.05; f & sleep 30; }; for i in 1 2 3 4; do f & done; sleep 30", NULL);
    child *c = child_new(&spec);
    assert_non_null(c);
    int status;
    assert_int_equal(run(c, 700, &status), CHILD_TIMED_OUT);
    child_free(c);
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1); /* no zombie of ours either */
    assert_int_equal(errno, ECHILD);
}

/* More descendants than one round of the supervisor's clearing lists (1024, the root among them):
 * what a round misses, here by its cap as a process forked or read before its parent would be,
 * is found and killed in the rounds after it, while one descendant is alive. They are in a
 * session and a group of their own, which the kill of the program's group in child_reap() does
 * not reach; the grace is long, so that only the rounds can clear them. Each is a fork of the
 * shell reading a FIFO it holds open for writing too, which no kill of the others ends: a fork of
 * sh, where a sleep is a fork and an exec, costs a third of the time to make. */
static void test_what_a_round_misses_a_later_one_kills(void **state)
{
    (void)state;
    if (!have_setsid())
        skip();
    char pidfile[64];
    temp_name(pidfile, sizeof pidfile);
    const char *script =
        "f=$1; setsid sh -c 'mkfifo \"$1.p\" && exec 3<>\"$1.p\" && rm \"$1.p\" || exit; "
        "i=0; while [ $i -lt 1100 ]; do read x <&3 & i=$((i+1)); done; "
        "echo $$ > \"$1.tmp\"; mv \"$1.tmp\" \"$1\"; wait' sh \"$f\" & "
        "while [ ! -s \"$f\" ]; do sleep 0.01; done";
    char *argv[6];
    child_spec spec = stopper_spec(argv, script, pidfile);
    spec.kill_grace_ms = 60000; /* the rounds alone clear them, not child_reap()'s group kill */
    child *c = child_new(&spec);
    assert_non_null(c);
    int status;
    assert_int_equal(run(c, 120000, &status), CHILD_EXITED);
    child_free(c);
    pid_t group[1];
    unsigned long long written = 0;
    assert_int_equal(read_pids(pidfile, group, 1, &written), 1);
    unlink(pidfile);
    if (kill(-group[0], 0) == 0) {
        (void)kill(-group[0], SIGKILL);
        fail_msg("the group of %d outlived its run", (int)group[0]);
    }
    assert_int_equal(errno, ESRCH);
}

/* SIGKILL of the process that runs the child (here a fork of this test that does what the
 * exec handler does): the supervisor's parent-death signal kills the program and everything it
 * started, the session escapee and the background process included. */
static void test_parent_sigkill_kills_the_run(void **state)
{
    (void)state;
    if (!have_setsid())
        skip();
    char pidfile[64];
    temp_name(pidfile, sizeof pidfile);
    pid_t runner = fork();
    assert_true(runner >= 0);
    if (runner == 0) {
        char *argv[] = {"sh", "-c", ESCAPE_PROLOGUE "sleep 30", "sh", pidfile, NULL};
        char *env[] = {"PATH=/usr/local/bin:/usr/bin:/bin", NULL};
        child_spec spec = {.path = SH,
                           .argv = argv,
                           .env = env,
                           .stdout_max = 64,
                           .stderr_tail = 64,
                           .drain_ms = 100};
        child *c = child_new(&spec);
        if (!c || child_start(c, INT64_MAX) != 0)
            _exit(2);
        (void)child_wait(c, clock_mono_ms() + 30000);
        _exit(3); /* not reached: killed first */
    }
    pid_t pids[3];
    unsigned long long written = 0;
    int got = read_pids(pidfile, pids, 3, &written);
    kill(runner, SIGKILL);
    int st;
    assert_int_equal(waitpid(runner, &st, 0), runner);
    unlink(pidfile);
    assert_int_equal(got, 3);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    assert_all_end(pids, 3, written, 10000);
}

/* The program gets exactly standard input, output and error: not a descriptor this process
 * opened without O_CLOEXEC, nor this process's other pipes; its supervisor holds none either. */
static void test_only_stdio_is_inherited(void **state)
{
    (void)state;
    char leak_path[64];
    temp_name(leak_path, sizeof leak_path);
    int leak = open(leak_path, O_RDWR | O_CREAT | O_EXCL, 0600); /* no O_CLOEXEC */
    assert_true(leak > 2);
    char script[512];
    snprintf(script, sizeof script,
             "for fd in /proc/$$/fd/*; do n=${fd##*/}; [ \"$n\" -gt 2 ] && [ -e \"$fd\" ] && "
             "echo \"program has $n\"; done; "
             "ls -l /proc/$PPID/fd | grep -q %s && echo supervisor has it; echo checked",
             leak_path);
    char *argv[4];
    char *env[] = {"PATH=/usr/local/bin:/usr/bin:/bin", NULL};
    child_spec spec = script_spec(argv, script, env);
    child *c = child_new(&spec);
    assert_non_null(c);
    int status;
    assert_int_equal(run(c, 10000, &status), CHILD_EXITED);
    close(leak);
    unlink(leak_path);
    size_t n;
    assert_string_equal(child_stdout(c, &n), "checked\n");
    child_free(c);
}

/* The program starts with every signal at its default and none blocked, whatever this process
 * ignores or blocks: taskd ignores SIGPIPE, keeps SIGHUP ignored under nohup and blocks its stop
 * signals, and exec would pass each on (a program ignoring SIGPIPE writes on to a reader gone). */
static void test_the_program_ignores_and_blocks_no_signal(void **state)
{
    (void)state;
    struct sigaction ign = {.sa_handler = SIG_IGN}, old_pipe, old_hup;
    sigemptyset(&ign.sa_mask);
    assert_int_equal(sigaction(SIGPIPE, &ign, &old_pipe), 0);
    assert_int_equal(sigaction(SIGHUP, &ign, &old_hup), 0);
    sigset_t stop, old_mask;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, &old_mask);
    char *argv[4];
    child_spec spec = script_spec(argv,
                                  "while read -r k v; do case $k in SigBlk:|SigIgn:) "
                                  "echo \"$k $v\";; esac; done </proc/$$/status",
                                  NULL);
    child *c = child_new(&spec);
    assert_non_null(c);
    int status;
    child_end end = run(c, 10000, &status);
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    sigaction(SIGPIPE, &old_pipe, NULL);
    sigaction(SIGHUP, &old_hup, NULL);
    assert_int_equal(end, CHILD_EXITED);
    size_t n;
    assert_string_equal(child_stdout(c, &n),
                        "SigBlk: 0000000000000000\nSigIgn: 0000000000000000\n");
    child_free(c);
}

static void on_sigchld(int sig)
{
    (void)sig;
}

/* SIGCHLD's disposition as it was before a test changed it; put back by restore_sigchld(). */
static struct sigaction sigchld_before;

static int restore_sigchld(void **state)
{
    (void)state;
    return sigaction(SIGCHLD, &sigchld_before, NULL);
}

/* Under a SIGCHLD ignored (SIG_IGN, which a parent passes on across exec) or taken with
 * SA_NOCLDWAIT the kernel reaps each supervisor as it exits, and the end signal child_reap() sends
 * goes to its pid, free or another process's. child_reap_supervisors_here() gives SIGCHLD its
 * default, or keeps the handler without the flag: a run's supervisor, ended, waits for child_reap()
 * to reap it. */
static void test_a_supervisor_is_left_to_its_reap_whatever_sigchld_was(void **state)
{
    (void)state;
    struct sigaction ign = {.sa_handler = SIG_IGN},
                     handled = {.sa_handler = on_sigchld, .sa_flags = SA_NOCLDWAIT | SA_RESTART};
    sigemptyset(&ign.sa_mask);
    sigemptyset(&handled.sa_mask);
    assert_int_equal(sigaction(SIGCHLD, NULL, &sigchld_before), 0);
    const struct sigaction *given[] = {&ign, &handled};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(sigaction(SIGCHLD, given[i], NULL), 0);
        child_reap_supervisors_here();
        struct sigaction now;
        assert_int_equal(sigaction(SIGCHLD, NULL, &now), 0);
        assert_true(now.sa_handler == (i == 0 ? SIG_DFL : on_sigchld));
        assert_int_equal(now.sa_flags & (SA_NOCLDWAIT | SA_RESTART), i == 0 ? 0 : SA_RESTART);
        char *argv[4];
        child_spec spec = script_spec(argv, "exit 0", NULL);
        child *c = child_new(&spec);
        assert_non_null(c);
        const int64_t deadline = clock_mono_ms() + 10000;
        assert_int_equal(child_start(c, deadline), 0);
        assert_int_equal(child_wait(c, deadline), CHILD_EXITED);
        /* the supervisor exits once the program has ended: a zombie until child_reap() */
        siginfo_t si = {0};
        for (int t = 0; t < 1000 && !si.si_pid; t++)
            if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) != 0 || !si.si_pid)
                usleep(10000);
        int status;
        assert_int_equal(child_reap(c, &status), 0);
        child_free(c);
        assert_true(si.si_pid > 0);
        assert_int_equal(si.si_code, CLD_EXITED);
    }
}

/* A SIGTERM that does not come from the parent (a service manager stopping everything) is passed
 * on to the program, which decides: here it finishes its work and exits 0. */
static void test_foreign_sigterm_goes_to_the_program(void **state)
{
    (void)state;
    char ready[64];
    temp_name(ready, sizeof ready);
    char *argv[] = {"sh",
                    "-c",
                    "trap 'echo got TERM; exit 0' TERM; echo ready; : > \"$1\"; "
                    "while :; do sleep 0.05; done",
                    "sh",
                    ready,
                    NULL};
    child_spec spec = {.path = SH,
                       .argv = argv,
                       .env = (char *[]){NULL},
                       .stdout_max = 64,
                       .stderr_tail = 64,
                       .drain_ms = 100};
    child *c = child_new(&spec);
    assert_non_null(c);
    assert_int_equal(child_start(c, INT64_MAX), 0);
    /* The supervisor is the program's parent. */
    pid_t supervisor = 0;
    assert_true(test_proc_state(child_pid(c), &supervisor, NULL) != 0);
    assert_true(supervisor > 1 && supervisor != getpid());
    pid_t sender = fork(); /* not the parent: another process sends it, once the trap is set */
    assert_true(sender >= 0);
    if (sender == 0) {
        for (int i = 0; i < 1000 && access(ready, F_OK) != 0; i++)
            usleep(10000);
        _exit(kill(supervisor, SIGTERM) == 0 ? 0 : 1);
    }
    child_end end = child_wait(c, clock_mono_ms() + 20000);
    int st;
    assert_int_equal(waitpid(sender, &st, 0), sender);
    unlink(ready);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_int_equal(end, CHILD_EXITED);
    int status;
    assert_int_equal(child_reap(c, &status), 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    size_t n;
    assert_string_equal(child_stdout(c, &n), "ready\ngot TERM\n");
    child_free(c);
}

/* A program that stops its supervisor (it may: same user) cannot make the run hang: past the
 * grace period (300 ms) child_reap() kills the supervisor and the program's group, within 10 s,
 * where a reap that waited for the program would end with its sleep (30 s). */
static void test_stopped_supervisor_does_not_hang(void **state)
{
    (void)state;
    char pidfile[64];
    temp_name(pidfile, sizeof pidfile);
    char *argv[6];
    child_spec spec =
        stopper_spec(argv, "sleep 30 & echo $! > \"$1\"; kill -STOP $PPID; wait", pidfile);
    child *c = child_new(&spec);
    assert_non_null(c);
    int64_t start = clock_mono_ms();
    assert_int_equal(child_start(c, INT64_MAX), 0);
    pid_t pids[2] = {child_pid(c), 0};
    assert_int_equal(child_wait(c, clock_mono_ms() + 500), CHILD_TIMED_OUT);
    child_kill(c);
    int status, code;
    assert_int_equal(child_reap(c, &status), ECHILD);
    assert_int_equal(child_failure(c, &code), CHILD_SUPERVISOR);
    assert_true(clock_mono_ms() - start < 10000);
    child_free(c);
    unsigned long long written = 0;
    assert_int_equal(read_pids(pidfile, &pids[1], 1, &written), 1);
    unlink(pidfile);
    assert_all_end(pids, 2, written, 10000); /* the program, too, started before the file */
}

/* A run of a program that leaves a background sleep in its process group: what its spec borrows
 * (the script, argv and the pid file), then the pids the program writes there (the sleep, the
 * program, its supervisor) once they all run, and when (see read_pids()). */
typedef struct group_run {
    char script[160];
    char *argv[6];
    char pidfile[64];
    pid_t pids[3];
    unsigned long long written;
} group_run;

/* A child under stopper_spec() whose program starts the sleep, writes the pids, then runs then. */
static child *group_child(group_run *g, const char *then)
{
    snprintf(g->script, sizeof g->script,
             "sleep 30 & echo $! $$ $PPID > \"$1.tmp\"; mv \"$1.tmp\" \"$1\"; %s", then);
    temp_name(g->pidfile, sizeof g->pidfile);
    child_spec spec = stopper_spec(g->argv, g->script, g->pidfile);
    child *c = child_new(&spec);
    assert_non_null(c);
    return c;
}

/* Read the pids the group run's program wrote (waiting for them), and remove its pid file. */
static void group_pids(group_run *g)
{
    assert_int_equal(read_pids(g->pidfile, g->pids, 3, &g->written), 3);
    unlink(g->pidfile);
}

/* A group run started with no deadline, its pids read. */
static child *group_started(group_run *g, const char *then)
{
    child *c = group_child(g, then);
    assert_int_equal(child_start(c, INT64_MAX), 0);
    group_pids(g);
    return c;
}

/* Reap a group run whose program exited 0 by itself: its end is the run's, and the background
 * sleep it left in its group ends with the run. */
static void reap_own_end(child *c, const group_run *g)
{
    int status;
    assert_int_equal(child_reap(c, &status), 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_true(child_ended_alone(c));
    child_free(c);
    assert_all_end(g->pids, 1, g->written, 10000); /* the background sleep */
}

/* Wait, up to 10 s, until the fixture's process pid is stopped. */
static void await_stopped(pid_t pid, unsigned long long written)
{
    for (int i = 0; i < 1000 && fixture_state(pid, written) != 'T'; i++)
        usleep(10000);
    assert_int_equal(fixture_state(pid, written), 'T');
}

/* Stop the fixture's supervisor pid and wait until it is stopped. */
static void stop_supervisor(pid_t pid, unsigned long long written)
{
    assert_int_equal(kill(pid, SIGSTOP), 0);
    await_stopped(pid, written);
}

/* A group run whose program exits by itself, its supervisor then stopped (by the test, once the
 * end is reported: only the reap is left). */
static child *group_stopped_after_its_end(group_run *g)
{
    child *c = group_started(g, "true");
    assert_int_equal(child_wait(c, clock_mono_ms() + 10000), CHILD_EXITED);
    stop_supervisor(g->pids[2], g->written);
    return c;
}

/* A start cut short (its deadline passed before the supervisor's report was seen) has not read
 * the program's pid; its reap must still know it: a program that stopped its supervisor leaves
 * its process group to the forced end, which kills that group only by the program's pid. It was
 * lost (the report went unread), and the background process of the group went on under init. */
static void test_a_start_cut_short_still_ends_the_programs_group(void **state)
{
    (void)state;
    group_run g;
    child *c = group_child(&g, "kill -STOP $PPID; wait");
    /* ahead enough that the start begins before it: a deadline passed then starts nothing */
    const int64_t deadline = clock_mono_ms() + 500;
    polls_see_nothing = true;
    assert_int_equal(child_start(c, deadline), 0);
    polls_see_nothing = false;
    assert_int_equal(child_pid(c), 0); /* cut short */
    assert_int_equal(child_wait(c, deadline), CHILD_TIMED_OUT);
    group_pids(&g);
    await_stopped(g.pids[2], g.written); /* the supervisor stopped: only the forced end is left */
    int status;
    assert_int_equal(child_reap(c, &status), ECHILD);
    pid_t known = child_pid(c);
    child_free(c);
    assert_all_end(g.pids, 2, g.written, 10000); /* the background sleep and the program */
    assert_int_equal(known, g.pids[1]);
}

/* A child of `echo done` whose start is cut short by a deadline 500 ms on (the start sees nothing
 * ready by then: the program's start is not read), then the wait past that deadline once the
 * program has ended and the supervisor has reported it, behind its start, with fionreads failing
 * looks at what the report pipe holds. How the wait ended. */
static child_end wait_past_a_start_cut_short(child **c, int fionreads)
{
    static char *argv[4];
    child_spec spec = script_spec(argv, "echo done", NULL);
    *c = child_new(&spec);
    assert_non_null(*c);
    /* ahead enough that the start begins before it: a deadline passed then starts nothing */
    const int64_t deadline = clock_mono_ms() + 500;
    polls_see_nothing = true;
    assert_int_equal(child_start(*c, deadline), 0);
    polls_see_nothing = false;
    assert_int_equal(child_pid(*c), 0); /* cut short */
    /* the supervisor (this process's one child) exits once it has reported the program's start
     * and end: waited for here and left unreaped */
    siginfo_t si = {0};
    assert_int_equal(waitid(P_ALL, 0, &si, WEXITED | WNOWAIT), 0);
    fionreads_to_fail = fionreads;
    child_end end = child_wait(*c, deadline);
    fionreads_to_fail = 0;
    return end;
}

/* The wait's look past the deadline takes every report the supervisor wrote by then: an end
 * queued behind the start that a start cut short left unread is the run's outcome, the program
 * exited. The look read the start alone and said CHILD_TIMED_OUT. A failed look at what is
 * left in the pipe (FIONREAD) fails the wait with its error, rather than leaving an end unread. */
static void test_an_end_queued_behind_a_start_cut_short_is_taken(void **state)
{
    (void)state;
    child *c;
    assert_int_equal(wait_past_a_start_cut_short(&c, 0), CHILD_EXITED);
    assert_true(child_pid(c) > 0); /* the start, read by the wait */
    size_t n;
    assert_string_equal(child_stdout(c, &n), "done\n");
    int status;
    assert_int_equal(child_reap(c, &status), 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_true(child_ended_alone(c));
    child_free(c);

    assert_int_equal(wait_past_a_start_cut_short(&c, 1), CHILD_FAILED);
    int code = 0;
    assert_int_equal(child_failure(c, &code), CHILD_POLL);
    assert_int_equal(code, EIO);
    child_free(c);
}

/* A start whose wait for the supervisor's report fails (poll(): ENOMEM) fails as a wait does
 * (CHILD_POLL: "exec: poll: ..."), not as a program that cannot be started (CHILD_SPAWN: "exec:
 * cannot start PATH: ..."), which it was said as: the supervisor was forked, and the program may
 * well run. What was started is reaped. */
static void test_a_start_whose_poll_fails_says_so(void **state)
{
    (void)state;
    char *argv[4];
    child_spec spec = script_spec(argv, "exit 0", NULL);
    child *c = child_new(&spec);
    assert_non_null(c);
    polls_to_fail = 2; /* the look for a kill before the fork (none, taken as none), then it */
    int rc = child_start(c, clock_mono_ms() + 10000);
    polls_to_fail = 0;
    assert_int_equal(rc, ENOMEM);
    int code = 0;
    assert_int_equal(child_failure(c, &code), CHILD_POLL);
    assert_int_equal(code, ENOMEM);
    int status;
    assert_int_equal(child_reap(c, &status), 0);
    child_free(c);
}

/* A start whose read of the exec's outcome fails (EIO) fails as a wait does (CHILD_POLL), here
 * with a program that could not be executed: the read failed, so whether the exec did is not
 * known. It was taken as what it read, nothing, which is the exec's success: a run that never
 * started was taken for one. What was started is reaped. */
static void test_a_start_whose_read_of_the_exec_fails_says_so(void **state)
{
    (void)state;
    char *argv[] = {"no-such-program", NULL};
    char *env[] = {NULL};
    child_spec spec = {.path = "/nonexistent/no-such-program",
                       .argv = argv,
                       .env = env,
                       .stdout_max = 64,
                       .stderr_tail = 64,
                       .drain_ms = 100};
    child *c = child_new(&spec);
    assert_non_null(c);
    exec_reads_to_fail = 1;
    int rc = child_start(c, clock_mono_ms() + 10000);
    int left = exec_reads_to_fail;
    exec_reads_to_fail = 0;
    int code, reaped;
    child_step step = failure_then_end(c, &code, &reaped);
    assert_int_equal(reaped, 0);
    assert_int_equal(left, 0); /* the read was made, and failed */
    assert_int_equal(rc, EIO);
    assert_int_equal(step, CHILD_POLL);
    assert_int_equal(code, EIO);
}

/* A reap whose wait for the supervisor's reports fails (poll(): ENOMEM, each time) still ends the
 * run as one whose wait works: here the supervisor died under the run (a SIGKILL, the OOM killer),
 * and the background process the program left in its process group is killed with that group.
 * And it waits between its tries. A failed poll was taken as the grace's end without a
 * force_end(): the group was left to one, and ran on under init; and the reap polled again at
 * once, without waiting, for as long as poll() failed. */
static void test_a_reap_whose_poll_fails_still_ends_the_programs_group(void **state)
{
    (void)state;
    group_run g;
    child *c = group_started(&g, "wait");
    assert_int_equal(kill(g.pids[2], SIGKILL), 0); /* this process's child, not reaped yet */
    const int fails = 10000;
    polls_to_fail = fails;
    int status, code;
    assert_int_equal(child_reap(c, &status), ECHILD);
    int failed = fails - polls_to_fail;
    polls_to_fail = 0;
    assert_int_equal(child_failure(c, &code), CHILD_SUPERVISOR);
    child_free(c);
    assert_all_end(g.pids, 2, g.written, 10000);
    /* at most one a millisecond through the 300 ms grace, and none once it is over */
    assert_in_range(failed, 1, 400);
}

/* A forced end that cannot see its supervisor stop within its wait (its stop reported already:
 * taken here; for real, a supervisor traced, or held in the kernel) still ends the program's
 * process group with the supervisor, as it does once it sees the stop: the background process
 * the program left in its group is killed. It killed the supervisor alone, and the background
 * process went on under init. */
static void test_a_supervisor_not_seen_to_stop_still_ends_the_programs_group(void **state)
{
    (void)state;
    group_run g;
    child *c = group_started(&g, "kill -STOP $PPID; wait");
    int sup_status; /* its stop, taken here */
    assert_int_equal(waitpid(g.pids[2], &sup_status, WUNTRACED), g.pids[2]);
    assert_true(WIFSTOPPED(sup_status));
    int status, code;
    assert_int_equal(child_reap(c, &status), ECHILD);
    assert_int_equal(child_failure(c, &code), CHILD_SUPERVISOR);
    child_free(c);
    assert_all_end(g.pids, 2, g.written, 10000);
}

/* A program that ended by itself and left a background process in its process group, whose
 * supervisor is then stopped (by that process, say; here by the test, once the end is reported):
 * the forced end still kills that group. It killed the group only while the program's end was not
 * known (its pid, the group's id, could be another's once reaped), and the background sleep went
 * on under init; a child of the stopped supervisor in the group holds the id as surely. */
static void test_a_stop_after_the_programs_end_still_ends_its_group(void **state)
{
    (void)state;
    group_run g;
    child *c = group_stopped_after_its_end(&g);
    reap_own_end(c, &g);
}

/* A supervisor killed (a SIGKILL from elsewhere, the OOM killer) after the program ended by
 * itself, leaving a background process in its process group: the reap still kills that group,
 * as it does when the kill comes before the program's end, and the program's end stays the
 * run's outcome. It killed the group only while the program's end was not known, and the
 * background sleep went on under init. */
static void test_a_supervisor_killed_after_the_programs_end_still_ends_its_group(void **state)
{
    (void)state;
    group_run g;
    child *c = group_started(&g, "exit 0");
    assert_int_equal(child_wait(c, clock_mono_ms() + 10000), CHILD_EXITED);
    assert_int_equal(kill(g.pids[2], SIGKILL), 0); /* this process's child, not reaped yet */
    reap_own_end(c, &g);
}

/* A stopped supervisor that dies (a SIGKILL from elsewhere) between the forced end's look at its
 * status and its look for a child holding the program's group (here as soon as its stop is seen):
 * its children went to init, none is found, and the background process the program left in its
 * group is killed as after any death of the supervisor. The forced end took the group for no
 * longer the run's and did not kill it, nor did the reap after a forced end: the background sleep
 * went on under init. */
static void test_a_stopped_supervisor_dying_as_it_is_looked_at_still_ends_the_group(void **state)
{
    (void)state;
    group_run g;
    child *c = group_stopped_after_its_end(&g);
    stopped_ones_die = true;
    reap_own_end(c, &g);
    assert_false(stopped_ones_die); /* the stop was seen, and the supervisor killed then */
}

/* A program that ended by itself, leaving a process in its group that is a grandchild of the
 * supervisor, not a child: its parent, a child of the program's, started it and then left the
 * group (setsid), and was adopted by the supervisor at the program's end. The supervisor is then
 * stopped: the forced end still kills the group, the grandchild with it; its parent, in a session
 * of its own, goes to init. The forced end looked for a child of the supervisor in the group,
 * found none, and the grandchild went on under init. */
static void test_a_stop_still_ends_a_group_held_by_a_grandchild_alone(void **state)
{
    (void)state;
    if (!have_setsid())
        skip();
    char pidfile[64], *argv[6];
    temp_name(pidfile, sizeof pidfile);
    /* the subshell (the parent) starts the sleep (the grandchild), then leaves the group and
     * writes "<sleep> <itself> <program> <supervisor>"; the program waits for that and exits */
    const char *script = "f=$1; ( sleep 30 & exec setsid sh -c "
                         "'echo $2 $$ $3 $4 > \"$1.tmp\"; mv \"$1.tmp\" \"$1\"; exec sleep 30' "
                         "sh \"$f\" $! $$ $PPID ) & "
                         "while [ ! -s \"$f\" ]; do sleep 0.01; done";
    child_spec spec = stopper_spec(argv, script, pidfile);
    child *c = child_new(&spec);
    assert_non_null(c);
    assert_int_equal(child_start(c, INT64_MAX), 0);
    pid_t pids[4];
    unsigned long long written = 0;
    assert_int_equal(read_pids(pidfile, pids, 4, &written), 4);
    assert_int_equal(child_wait(c, clock_mono_ms() + 10000), CHILD_EXITED);
    unlink(pidfile); /* which the program waited for */
    pid_t parent = 0;
    assert_int_equal(test_proc_state(pids[0], &parent, NULL), 'S');
    assert_int_equal(parent, pids[1]); /* the grandchild's parent still runs */
    stop_supervisor(pids[3], written);
    int status;
    assert_int_equal(child_reap(c, &status), 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    child_free(c);
    kill_fixture(pids[1], written); /* the parent, in a session of its own */
    assert_all_end(pids, 1, written, 10000);
}

typedef struct waiter {
    child *c;
    child_end end;
} waiter;

static void *wait_main(void *arg)
{
    waiter *w = arg;
    w->end = child_wait(w->c, clock_mono_ms() + 30000);
    return NULL;
}

/* child_kill() from another thread ends a child_wait() at once, even when the program stopped
 * its supervisor (so that the kill cannot end the program): child_reap() then kills both past
 * its grace, rather than the wait lasting until its deadline (30 s, as the program does); the
 * wait and the reap within 10 s. A kill before the wait ends it too. */
static void test_kill_ends_the_wait_of_a_stopped_supervisor(void **state)
{
    (void)state;
    char pidfile[64];
    temp_name(pidfile, sizeof pidfile);
    char *argv[6];
    child_spec spec =
        stopper_spec(argv,
                     "kill -STOP $PPID; echo $$ $PPID > \"$1.tmp\"; mv \"$1.tmp\" \"$1\"; "
                     "exec sleep 30",
                     pidfile);
    child *c = child_new(&spec);
    assert_non_null(c);
    assert_int_equal(child_start(c, INT64_MAX), 0);
    waiter w = {.c = c};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, wait_main, &w), 0);
    pid_t pids[2] = {0, 0}; /* the program, its supervisor */
    unsigned long long written = 0;
    assert_int_equal(read_pids(pidfile, pids, 2, &written), 2);
    unlink(pidfile);
    await_stopped(pids[1], written);
    int64_t start = clock_mono_ms();
    child_kill(c);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(w.end, CHILD_KILLED);
    assert_int_equal(child_wait(c, clock_mono_ms() + 30000), CHILD_KILLED); /* killed before */
    int status, code;
    assert_int_equal(child_reap(c, &status), ECHILD);
    assert_int_equal(child_failure(c, &code), CHILD_SUPERVISOR);
    assert_true(clock_mono_ms() - start < 10000);
    child_free(c);
    assert_all_end(pids, 2, written, 10000);
}

/* A kill that comes after the program's end, its report and output waiting unread, does not cut
 * the wait short: the output is read to its end and the program's exit status kept. */
static void test_kill_after_the_end_keeps_the_output(void **state)
{
    (void)state;
    char *argv[4];
    child_spec spec = script_spec(argv, "head -c 1000 /dev/zero | tr '\\0' x", NULL);
    child *c = child_new(&spec);
    assert_non_null(c);
    assert_int_equal(child_start(c, INT64_MAX), 0);
    /* the supervisor (this process's one child) exits once it has reported the program's end;
     * waited for here and left unreaped */
    siginfo_t si = {0};
    assert_int_equal(waitid(P_ALL, 0, &si, WEXITED | WNOWAIT), 0);
    assert_int_equal(si.si_code, CLD_EXITED);
    child_kill(c);
    assert_int_equal(child_wait(c, clock_mono_ms() + 10000), CHILD_EXITED);
    size_t n;
    child_stdout(c, &n);
    assert_int_equal(n, 1000);
    int status;
    assert_int_equal(child_reap(c, &status), 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    child_free(c);
}

/* The program's end is its own when it came before the end of the run was asked, even if the
 * supervisor still had a process of the run to clear then; an end the clearing brought is not
 * (its wait status, SIGKILL, is the supervisor's doing). */
static void test_an_end_of_its_own_is_told_from_a_kill(void **state)
{
    (void)state;
    char *argv[4];
    char *env[] = {"PATH=/usr/local/bin:/usr/bin:/bin", NULL};
    child_spec spec = script_spec(argv, "sleep 30 </dev/null >/dev/null 2>&1 & exit 3", env);
    child *c = child_new(&spec);
    assert_non_null(c);
    assert_int_equal(child_start(c, INT64_MAX), 0);
    assert_false(child_ended_alone(c));
    pid_t program = child_pid(c);
    /* reaped by the supervisor, which lives on for the background sleep */
    for (int i = 0; i < 1000 && !(kill(program, 0) != 0 && errno == ESRCH); i++)
        usleep(10000);
    assert_int_equal(kill(program, 0), -1);
    child_kill(c); /* now the supervisor clears the run: the sleep */
    child_wait(c, clock_mono_ms() + 10000);
    int status;
    assert_int_equal(child_reap(c, &status), 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 3);
    assert_true(child_ended_alone(c));
    child_free(c);

    spec = script_spec(argv, "exec sleep 30", env);
    c = child_new(&spec);
    assert_non_null(c);
    assert_int_equal(child_start(c, INT64_MAX), 0);
    child_kill(c);
    child_wait(c, clock_mono_ms() + 10000);
    assert_int_equal(child_reap(c, &status), 0);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    assert_false(child_ended_alone(c));
    child_free(c);
}

/* Output still in the pipe when the program's end is read is kept whole, however late the wait
 * gets to it: here the program's stdout pipe is enlarged (F_SETPIPE_SZ, as a program may do
 * itself; done through /proc), the program leaves several reads' worth in it and ends before
 * the wait starts, and with drain_ms 0 the time to wait for more is up once the end is read. */
static void test_output_left_in_the_pipe_at_the_end_is_kept(void **state)
{
    (void)state;
    char go[64];
    temp_name(go, sizeof go);
    char *argv[] = {
        "sh",
        "-c",
        "while [ ! -e \"$1\" ]; do sleep 0.01; done; head -c 300000 /dev/zero | tr '\\0' x",
        "sh",
        go,
        NULL};
    char *env[] = {"PATH=/usr/local/bin:/usr/bin:/bin", NULL};
    child_spec spec = {.path = SH,
                       .argv = argv,
                       .env = env,
                       .stdout_max = 1 << 20,
                       .stderr_tail = 256,
                       .drain_ms = 0};
    child *c = child_new(&spec);
    assert_non_null(c);
    assert_int_equal(child_start(c, INT64_MAX), 0);
    char fd_path[64];
    snprintf(fd_path, sizeof fd_path, "/proc/%d/fd/1", (int)child_pid(c));
    int fd = open(fd_path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    assert_true(fd >= 0);
    int size = fcntl(fd, F_SETPIPE_SZ, 1 << 20);
    close(fd);
    if (size < (1 << 20)) { /* no room for it all: the program would wait for each read */
        int status;
        child_kill(c);
        assert_int_equal(child_reap(c, &status), 0);
        child_free(c);
        skip();
    }
    int go_fd = open(go, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    assert_true(go_fd >= 0);
    close(go_fd);
    /* the supervisor (this process's one child) exits once it has reported the program's end;
     * waited for here and left unreaped: all the output is in the pipe, none of it read */
    siginfo_t si = {0};
    assert_int_equal(waitid(P_ALL, 0, &si, WEXITED | WNOWAIT), 0);
    assert_int_equal(child_wait(c, clock_mono_ms() + 10000), CHILD_EXITED);
    size_t n;
    const char *out = child_stdout(c, &n);
    int status;
    assert_int_equal(child_reap(c, &status), 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    unlink(go);
    assert_int_equal(n, 300000);
    assert_int_equal(strspn(out, "x"), 300000);
    child_free(c);
}

/* The look at what a pipe holds once the program's end is read (ioctl(FIONREAD)) failing fails
 * the wait, with its error: what was read by then is not taken for the whole output. Here the
 * supervisor has reported the end before the wait begins, and drain_ms 0 leaves no time to wait
 * for more. */
static void test_a_failed_look_at_the_output_left_fails_the_wait(void **state)
{
    (void)state;
    char *argv[4];
    child_spec spec = script_spec(argv, "echo left", NULL);
    spec.drain_ms = 0;
    child *c = child_new(&spec);
    assert_non_null(c);
    assert_int_equal(child_start(c, INT64_MAX), 0);
    /* the supervisor (this process's one child) exits once it has reported the program's end;
     * waited for here and left unreaped */
    siginfo_t si = {0};
    assert_int_equal(waitid(P_ALL, 0, &si, WEXITED | WNOWAIT), 0);
    fionreads_to_fail = 1;
    child_end end = child_wait(c, clock_mono_ms() + 10000);
    int left = fionreads_to_fail;
    fionreads_to_fail = 0;
    int code, reaped;
    child_step step = failure_then_end(c, &code, &reaped);
    assert_int_equal(reaped, 0);
    assert_int_equal(left, 0); /* the look was made, and failed */
    assert_int_equal(end, CHILD_FAILED);
    assert_int_equal(step, CHILD_POLL);
    assert_int_equal(code, EIO);
}

/* ---- resource limits ---- */

/* The open-file limit test_limits_are_applied() lowers for a while; its teardown gives it back. */
static struct rlimit saved_nofile;

static int restore_nofile(void **state)
{
    (void)state;
    if (saved_nofile.rlim_cur)
        setrlimit(RLIMIT_NOFILE, &saved_nofile);
    return 0;
}

static void test_limits_are_applied(void **state)
{
    (void)state;
    char *argv[4];
    child_spec spec = script_spec(argv,
                                  "echo $(ulimit -St) $(ulimit -Ht) $(ulimit -Sd) $(ulimit -Hd) "
                                  "$(ulimit -Sn) $(ulimit -Hn) $(ulimit -Sc) $(ulimit -Hc)",
                                  NULL);
    spec.limits = (child_limits){
        .cpu_s = 7, .data_bytes = (uint64_t)256 << 20, .nofile = 100, .no_core = true};
    child *c = child_new(&spec);
    assert_non_null(c);
    int status;
    assert_int_equal(run(c, 10000, &status), CHILD_EXITED);
    size_t n;
    assert_string_equal(child_stdout(c, &n), "7 8 262144 262144 100 100 0 0\n");
    child_free(c);

    /* None asked for: the program inherits ours. */
    struct rlimit cpu;
    assert_int_equal(getrlimit(RLIMIT_CPU, &cpu), 0);
    spec = script_spec(argv, "ulimit -St", NULL);
    c = child_new(&spec);
    assert_non_null(c);
    run(c, 10000, &status);
    char want[64];
    if (cpu.rlim_cur == RLIM_INFINITY)
        snprintf(want, sizeof want, "unlimited\n");
    else
        snprintf(want, sizeof want, "%llu\n", (unsigned long long)cpu.rlim_cur);
    assert_string_equal(child_stdout(c, &n), want);
    child_free(c);

    /* A soft limit of ours below the one asked for holds; the hard one is lowered as asked. */
    struct rlimit files;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &files), 0);
    if (files.rlim_cur < 50 || files.rlim_max < 100)
        return;
    saved_nofile = files; /* given back by the teardown, should a check fail meanwhile */
    struct rlimit lower = {.rlim_cur = 50, .rlim_max = files.rlim_max};
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &lower), 0);
    spec = script_spec(argv, "echo $(ulimit -Sn) $(ulimit -Hn)", NULL);
    spec.limits.nofile = 100;
    c = child_new(&spec);
    assert_non_null(c);
    run(c, 10000, &status);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &files), 0);
    assert_string_equal(child_stdout(c, &n), "50 100\n");
    child_free(c);
}

/* A busy loop past its CPU limit gets SIGXCPU, and its CPU time is reported. */
static void test_cpu_limit_sends_sigxcpu(void **state)
{
    (void)state;
    char *argv[4];
    child_spec spec = script_spec(argv, "while :; do :; done", NULL);
    spec.limits.cpu_s = 1;
    child *c = child_new(&spec);
    assert_non_null(c);
    int status;
    assert_int_equal(run(c, 30000, &status), CHILD_EXITED);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGXCPU);
    int64_t cpu = child_cpu_ms(c);
    /* about 1 s; on a loaded virtual machine the time wait4() reports was seen 20% short */
    if (cpu < 500 || cpu >= 5000)
        fail_msg("the program used %lld ms of CPU time, not about 1 s", (long long)cpu);
    child_free(c);
}

/* Past the open-files limit, open() fails with EMFILE. */
static void test_open_files_limit(void **state)
{
    (void)state;
    char *argv[4];
    /* fds 0-2 are taken: a limit of 6 lets the shell open 3, 4 and 5, and not 6. */
    child_spec spec = script_spec(argv,
                                  "exec 3</dev/null 4</dev/null 5</dev/null; echo opened 3-5; "
                                  "exec 6</dev/null; echo opened 6",
                                  NULL);
    spec.limits.nofile = 6;
    child *c = child_new(&spec);
    assert_non_null(c);
    int status;
    assert_int_equal(run(c, 10000, &status), CHILD_EXITED);
    size_t n;
    assert_string_equal(child_stdout(c, &n), "opened 3-5\n");
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) != 0);
    bool cut;
    const char *tail = child_stderr_tail(c, &n, &cut);
    char err[257];
    snprintf(err, sizeof err, "%.*s", (int)n, tail);
    if (!strstr(err, "Too many open files"))
        fail_msg("stderr: %s", err);
    child_free(c);
}

typedef struct reaper {
    child *c;
    int rc, status;
    atomic_bool done;
} reaper;

static void *reap_main(void *arg)
{
    reaper *r = arg;
    r->rc = child_reap(r->c, &r->status);
    atomic_store(&r->done, true);
    return NULL;
}

/*
 * A reap after a time-out does not wait for the report pipe to close when a process that the kill
 * does not end holds it open, as a program stuck in its exec does until the exec is through: the
 * supervisor reports the program killed and is reaped, and the reap returns past its grace (2 s)
 * and within 10 s, with the program's end. It read the pipe to its end once past the grace,
 * blocking, and returned only when the holder was killed.
 */
static void test_a_reap_does_not_wait_on_a_report_pipe_held_open(void **state)
{
    (void)state;
    char *argv[4];
    child_spec spec = script_spec(argv, "exec sleep 30", NULL);
    child *c = child_new(&spec);
    assert_non_null(c);
    hold_the_pipes = true;
    pipe_holder = 0;
    int64_t deadline = clock_mono_ms() + 1000;
    assert_int_equal(child_start(c, deadline), 0); /* its exec's outcome held: cut short */
    hold_the_pipes = false;
    assert_true(pipe_holder > 0);
    assert_int_equal(child_wait(c, deadline), CHILD_TIMED_OUT);
    reaper r = {.c = c};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, reap_main, &r), 0);
    int64_t start = clock_mono_ms();
    while (!atomic_load(&r.done) && clock_mono_ms() - start < 10000)
        clock_sleep_ms(10);
    bool reaped = atomic_load(&r.done);
    kill(pipe_holder, SIGKILL); /* lets a reap that waits for the pipe's end go */
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(waitpid(pipe_holder, NULL, 0), pipe_holder);
    if (!reaped)
        fail_msg("the reap did not return within 10 s: it waited for the report pipe's end");
    assert_int_equal(r.rc, 0);
    assert_true(WIFSIGNALED(r.status));
    assert_int_equal(WTERMSIG(r.status), SIGKILL);
    child_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_input_reaches_stdin),
        cmocka_unit_test(test_environment_is_exactly_the_one_given),
        cmocka_unit_test(test_stdout_over_the_cap),
        cmocka_unit_test(test_stdout_over_seen_with_a_kill_is_over),
        cmocka_unit_test(test_stdout_over_stops_an_endless_writer),
        cmocka_unit_test(test_no_stdout_is_empty),
        cmocka_unit_test(test_stderr_keeps_the_tail),
        cmocka_unit_test(test_killed_by_signal),
        cmocka_unit_test(test_deadline_passes),
        cmocka_unit_test(test_background_process_holding_stdout),
        cmocka_unit_test(test_unread_input),
        cmocka_unit_test(test_spawn_failure),
        cmocka_unit_test(test_a_supervisor_killed_in_the_start_is_killed_under_the_run),
        cmocka_unit_test(test_free_kills_a_running_child),
        cmocka_unit_test(test_a_kill_before_the_start_ends_the_run),
        cmocka_unit_test(test_a_deadline_passed_before_the_start_starts_nothing),
        cmocka_unit_test(test_normal_end_kills_escaped_descendants),
        cmocka_unit_test(test_timeout_kills_escaped_descendants),
        cmocka_unit_test_teardown(test_a_round_reads_the_runs_processes_alone, lists_restored),
        cmocka_unit_test_teardown(test_without_children_files_a_round_reads_every_process,
                                  lists_restored),
        cmocka_unit_test(test_kill_while_the_tree_grows),
        cmocka_unit_test(test_what_a_round_misses_a_later_one_kills),
        cmocka_unit_test(test_parent_sigkill_kills_the_run),
        cmocka_unit_test(test_only_stdio_is_inherited),
        cmocka_unit_test(test_the_program_ignores_and_blocks_no_signal),
        cmocka_unit_test_teardown(test_a_supervisor_is_left_to_its_reap_whatever_sigchld_was,
                                  restore_sigchld),
        cmocka_unit_test(test_foreign_sigterm_goes_to_the_program),
        cmocka_unit_test(test_stopped_supervisor_does_not_hang),
        cmocka_unit_test(test_a_start_cut_short_still_ends_the_programs_group),
        cmocka_unit_test(test_an_end_queued_behind_a_start_cut_short_is_taken),
        cmocka_unit_test(test_a_start_whose_poll_fails_says_so),
        cmocka_unit_test(test_a_start_whose_read_of_the_exec_fails_says_so),
        cmocka_unit_test(test_a_reap_whose_poll_fails_still_ends_the_programs_group),
        cmocka_unit_test(test_a_supervisor_not_seen_to_stop_still_ends_the_programs_group),
        cmocka_unit_test(test_a_stop_after_the_programs_end_still_ends_its_group),
        cmocka_unit_test(test_a_supervisor_killed_after_the_programs_end_still_ends_its_group),
        cmocka_unit_test(test_a_stopped_supervisor_dying_as_it_is_looked_at_still_ends_the_group),
        cmocka_unit_test(test_a_stop_still_ends_a_group_held_by_a_grandchild_alone),
        cmocka_unit_test(test_kill_ends_the_wait_of_a_stopped_supervisor),
        cmocka_unit_test(test_kill_after_the_end_keeps_the_output),
        cmocka_unit_test(test_an_end_of_its_own_is_told_from_a_kill),
        cmocka_unit_test(test_output_left_in_the_pipe_at_the_end_is_kept),
        cmocka_unit_test(test_a_failed_look_at_the_output_left_fails_the_wait),
        cmocka_unit_test_teardown(test_limits_are_applied, restore_nofile),
        cmocka_unit_test(test_cpu_limit_sends_sigxcpu),
        cmocka_unit_test(test_open_files_limit),
        cmocka_unit_test(test_a_reap_does_not_wait_on_a_report_pipe_held_open),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
