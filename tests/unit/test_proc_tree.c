/*
 * Unit tests for runner/proc_tree: reading a process from /proc (its name may hold ") ("), a
 * descendant holding its pid and its group's id, finding the processes under one pass by pass
 * within a bound (and none under a pid a later process took), and in one walk of the children
 * files (one longer than a read), killing a process only while its pid is still the one seen,
 * continuing the stopped orphans of a name (each allocation of its notes failing in turn:
 * tests/unit/oom; one whose signal masks come behind a Groups line of 11,000 bytes), and listing a
 * directory's numbered entries.
 */
#include "runner/proc_tree.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <grp.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "oom.h"

/* A process that waits to be killed, dying with its parent; named name when not NULL. */
static pid_t sleeper(const char *name)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (prctl(PR_SET_PDEATHSIG, (unsigned long)SIGKILL) != 0 || getppid() != parent)
            _exit(1);
        if (name)
            (void)prctl(PR_SET_NAME, (unsigned long)name);
        for (;;)
            pause();
    }
    return pid;
}

/* A chain of depth processes under this one, each the parent of the next (child, grandchild,
 * ...): the first one's pid. Each dies with its parent, and exits at once should its parent have
 * died before it took that death signal: a link left so would wait for good, under init, holding
 * the test's output open. */
static pid_t chain(int depth)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        for (int link = 1;; link++) {
            if (prctl(PR_SET_PDEATHSIG, (unsigned long)SIGKILL) != 0 || getppid() != parent)
                _exit(1);
            parent = getpid();
            if (link == depth || fork() != 0)
                break; /* the last link, or the parent of the next (a fork that fails ends it) */
        }
        for (;;)
            pause();
    }
    return pid;
}

static void reap(pid_t pid)
{
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Scan from root until a pass adds nothing (or max is reached): how many were found under it. */
static size_t scan_all(pid_t root, proc_id *tree, size_t max)
{
    size_t n = 1;
    tree[0] = (proc_id){.pid = root};
    while (n < max && proc_tree_scan(tree, &n, max) > 0)
        ;
    return n - 1;
}

/* scan_all() from the top of a chain(3) until the two below it run (for at most 10 s). */
static size_t scan_chain(pid_t top, proc_id *tree, size_t max)
{
    size_t found = 0;
    for (int i = 0; i < 2000 && (found = scan_all(top, tree, max)) < 2; i++)
        sleep_ms(5);
    return found;
}

static void test_read_this_process(void **state)
{
    (void)state;
    proc_id me;
    assert_true(proc_read(getpid(), &me));
    assert_int_equal(me.pid, getpid());
    assert_int_equal(me.ppid, getppid());
    assert_int_equal(me.pgid, getpgrp());
    assert_true(me.start > 0);
    proc_id again;
    assert_true(proc_read(getpid(), &again));
    assert_true(again.start == me.start);
}

/* The name ends at the last ')': one that holds ") (" and spaces does not shift the fields. */
static void test_read_a_process_named_to_mislead(void **state)
{
    (void)state;
    pid_t pid = sleeper(") 1 (2 ");
    proc_id id = {0};
    for (int i = 0; i < 2000; i++) { /* until it has taken its name (10 s at most) */
        char comm[64] = "", path[64];
        snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
        FILE *f = fopen(path, "r");
        if (f) {
            if (!fgets(comm, sizeof comm, f))
                comm[0] = '\0';
            fclose(f);
        }
        if (comm[0] == ')')
            break;
        sleep_ms(5);
    }
    assert_true(proc_read(pid, &id));
    assert_int_equal(id.pid, pid);
    assert_int_equal(id.ppid, getpid());
    proc_id me;
    assert_true(proc_read(getpid(), &me));
    assert_true(id.start >= me.start);
    kill(pid, SIGKILL);
    reap(pid);
    /* reaped: no such process (unless its pid was taken again at once, which would not be a
     * child of this one) */
    if (proc_read(pid, &id))
        assert_int_not_equal(id.ppid, getpid());
}

static void test_read_no_such_process(void **state)
{
    (void)state;
    proc_id id;
    assert_false(proc_read((pid_t)INT32_MAX, &id)); /* past any pid_max */
    assert_false(proc_read(-1, &id));               /* no pid is negative */
    assert_false(proc_read((pid_t)INT32_MIN, &id));
}

/* A descendant holds its pid and its group's id, a zombie too, until it is reaped: for its parent
 * and for their ancestors; a process that is not one of its ancestors holds nothing for it. */
static void test_a_descendant_holds_its_pid_and_its_group(void **state)
{
    (void)state;
    pid_t pid = sleeper(NULL); /* in this process's group */
    assert_true(proc_descendant_holds(getpid(), pid));
    assert_true(proc_descendant_holds(getpid(), getpgrp()));
    assert_true(proc_descendant_holds(getppid(), pid)); /* its grandparent */
    assert_false(proc_descendant_holds(pid, pid));      /* it has no child */
    pid_t top = chain(3);
    proc_id tree[4];
    assert_int_equal(scan_chain(top, tree, 4), 2);
    assert_true(proc_descendant_holds(getpid(), tree[2].pid)); /* a great-grandchild */
    assert_true(proc_descendant_holds(tree[1].pid, tree[2].pid));
    assert_false(proc_descendant_holds(pid, tree[2].pid)); /* another branch */
    assert_false(proc_descendant_holds(tree[2].pid, top)); /* below it, not above */
    kill(top, SIGKILL);                                    /* and the others, their death signal */
    reap(top);
    kill(pid, SIGKILL);
    siginfo_t si;
    assert_int_equal(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0); /* a zombie */
    assert_true(proc_descendant_holds(getpid(), pid));
    reap(pid);
    assert_false(proc_descendant_holds(getpid(), pid));
}

/* Each pass finds the children of what the tree held; within the bound, and no one twice. */
static void test_scan_finds_the_tree_under_a_process(void **state)
{
    (void)state;
    pid_t top = chain(3);
    proc_id tree[8];
    assert_int_equal(scan_chain(top, tree, 8), 2);
    assert_int_equal(tree[1].ppid, top);
    assert_int_equal(tree[2].ppid, tree[1].pid);
    /* a scan of a whole tree adds nothing more */
    size_t n = 3;
    assert_int_equal(proc_tree_scan(tree, &n, 8), 0);
    assert_int_equal(n, 3);
    /* bounded: a tree of room 2 holds the root and its child */
    proc_id small[2];
    assert_int_equal(scan_all(top, small, 2), 1);
    assert_int_equal(small[1].pid, tree[1].pid);

    for (size_t i = 2; i > 0; i--)
        proc_signal_seen(&tree[i], SIGKILL);
    kill(top, SIGKILL);
    reap(top);
}

/* A process of the tree that ended and whose pid a later process took (another start time) has
 * no children in the tree: the children of the process that now has its pid are not the tree's,
 * and would be killed as the run's. The same process, seen with its own start time, has its
 * child found. */
static void test_scan_takes_no_children_of_a_pid_reused(void **state)
{
    (void)state;
    pid_t top = chain(2);
    proc_id tree[4];
    size_t n = 0;
    for (int i = 0; i < 2000 && (n = scan_all(top, tree, 4)) < 1; i++)
        sleep_ms(5); /* until its child runs (10 s at most) */
    assert_int_equal(n, 1);
    proc_id seen;
    assert_true(proc_read(top, &seen));
    proc_id reused[4] = {{.pid = getpid()}, seen};
    reused[1].start = seen.start + 1; /* as seen before its pid went to this process */
    n = 2;
    assert_int_equal(proc_tree_scan(reused, &n, 4), 0);
    assert_int_equal(n, 2);
    proc_id own[4] = {{.pid = getpid()}, seen};
    n = 2;
    assert_int_equal(proc_tree_scan(own, &n, 4), 1);
    assert_int_equal(own[2].pid, tree[1].pid);
    kill(top, SIGKILL); /* and its child, by its death signal */
    reap(top);
}

/* A walk of the children files finds the whole tree at once, at any depth, within the bound;
 * and, as a pass, no children of a process whose pid a later one took. */
static void test_walk_finds_the_tree_at_any_depth_at_once(void **state)
{
    (void)state;
    pid_t top = chain(3);
    proc_id tree[8];
    assert_int_equal(scan_chain(top, tree, 8), 2); /* until the chain is whole */
    proc_id walked[8] = {{.pid = top}};
    size_t n = 1;
    int added = proc_tree_walk(walked, &n, 8);
    if (added < 0) { /* no CONFIG_PROC_CHILDREN */
        kill(top, SIGKILL);
        reap(top);
        skip();
    }
    assert_int_equal(added, 2);
    assert_int_equal(n, 3);
    assert_int_equal(walked[1].pid, tree[1].pid);
    assert_int_equal(walked[2].pid, tree[2].pid);
    assert_true(walked[2].start == tree[2].start);
    assert_int_equal(proc_tree_walk(walked, &n, 8), 0); /* a whole tree: nothing more */
    proc_id small[2] = {{.pid = top}};
    n = 1;
    assert_int_equal(proc_tree_walk(small, &n, 2), 1);
    assert_int_equal(small[1].pid, tree[1].pid);
    proc_id reused[4] = {{.pid = getpid()}, tree[0]};
    assert_true(proc_read(top, &reused[1]));
    reused[1].start++; /* as seen before its pid went to this process */
    n = 2;
    assert_int_equal(proc_tree_walk(reused, &n, 4), 0);
    assert_int_equal(n, 2);
    reused[1].start--;
    assert_int_equal(proc_tree_walk(reused, &n, 4), 2);
    kill(top, SIGKILL); /* and the others, their death signal */
    reap(top);
}

/* A children file longer than one read (300 children of this process: some 2,000 bytes, read
 * 512 at a time) is read whole: a pid the read cut in two is read as one, so that one walk finds
 * every child. */
static void test_walk_reads_a_children_file_in_pieces(void **state)
{
    (void)state;
    enum { KIDS = 300 };
    pid_t kids[KIDS];
    pid_t parent = getpid();
    for (int i = 0; i < KIDS; i++) {
        kids[i] = fork();
        assert_true(kids[i] >= 0);
        if (kids[i] == 0) {
            if (prctl(PR_SET_PDEATHSIG, (unsigned long)SIGKILL) != 0 || getppid() != parent)
                _exit(1);
            for (;;)
                pause();
        }
    }
    proc_id tree[KIDS + 2] = {{.pid = parent}};
    size_t n = 1;
    int added = proc_tree_walk(tree, &n, KIDS + 2);
    for (int i = 0; i < KIDS; i++)
        kill(kids[i], SIGKILL);
    for (int i = 0; i < KIDS; i++)
        reap(kids[i]);
    if (added < 0) /* no CONFIG_PROC_CHILDREN */
        skip();
    assert_int_equal(added, KIDS);
    for (int i = 0; i < KIDS; i++) {
        size_t at = 1;
        while (at < n && tree[at].pid != kids[i])
            at++;
        assert_true(at < n);
    }
}

/* A process is killed only while its pid names the process seen: with another start time (its
 * pid taken by a later process), it is left alone. */
static void test_kill_only_the_process_seen(void **state)
{
    (void)state;
    pid_t pid = sleeper(NULL);
    proc_id seen;
    assert_true(proc_read(pid, &seen));
    proc_id other = seen;
    other.start = seen.start + 1;
    proc_signal_seen(&other, SIGKILL);
    sleep_ms(50);
    int st;
    assert_int_equal(waitpid(pid, &st, WNOHANG), 0); /* still there */
    proc_signal_seen(&seen, SIGKILL);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
}

/* While set, a stopper takes MANY_GROUPS supplementary groups before it stops (ids of 10 digits,
 * from MANY_GROUPS_FROM up): its /proc/<pid>/status then has a Groups line of 11,000 bytes. */
static bool stoppers_in_many_groups;
#define MANY_GROUPS      1000
#define MANY_GROUPS_FROM 1000000000u

/* Whether this process may set its supplementary groups (CAP_SETGID): tried in a fork. */
static bool can_set_groups(void)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        gid_t one = MANY_GROUPS_FROM;
        _exit(setgroups(1, &one) == 0 ? 0 : 1);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* A stopper's life, with end_sig (when not 0) its parent-death signal, which it blocks and takes
 * 200 ms to act on, as a supervisor takes a moment to clear its run; with held (a pipe) not NULL,
 * it acts on it once the pipe's write end is closed. */
static _Noreturn void stop_then_end(const char *name, int end_sig, const int *held)
{
    int null = open("/dev/null", O_RDWR); /* not the output of the test, should it fail */
    for (int fd = 0; fd <= 2; fd++)
        (void)dup2(null, fd);
    (void)prctl(PR_SET_NAME, (unsigned long)name);
    sigset_t end;
    sigemptyset(&end);
    if (end_sig) {
        sigaddset(&end, end_sig);
        (void)sigprocmask(SIG_BLOCK, &end, NULL);
        (void)prctl(PR_SET_PDEATHSIG, (unsigned long)end_sig);
    }
    if (held)
        close(held[1]);
    if (stoppers_in_many_groups) {
        static gid_t groups[MANY_GROUPS];
        for (int i = 0; i < MANY_GROUPS; i++)
            groups[i] = MANY_GROUPS_FROM + (gid_t)i;
        if (setgroups(MANY_GROUPS, groups) != 0)
            _exit(1);
    }
    (void)raise(SIGSTOP);
    if (end_sig && sigwaitinfo(&end, NULL) == end_sig) {
        char byte;
        if (!held)
            sleep_ms(200);
        while (held && read(held[0], &byte, 1) < 0 && errno == EINTR)
            ;
    }
    _exit(0);
}

/* A process named name that stops itself, and exits once continued: a child of this process, or
 * with orphan an orphan (its parent, a child of this one, exits once it has seen it stop), its
 * end signal pending from then on (stop_then_end()). As seen stopped. */
static proc_id stopper(const char *name, bool orphan, int end_sig)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        pid_t self = orphan ? fork() : 0;
        if (self == 0)
            stop_then_end(name, end_sig, NULL);
        int st;
        if (orphan && waitpid(self, &st, WUNTRACED) != self) /* its parent-death signal set */
            _exit(1);
        _exit(write(p[1], &self, sizeof self) == (ssize_t)sizeof self ? 0 : 1);
    }
    close(p[1]);
    if (orphan) { /* its parent reaped: gone, and the orphan re-parented */
        pid_t parent = pid;
        assert_int_equal(read(p[0], &pid, sizeof pid), (ssize_t)sizeof pid);
        reap(parent);
    }
    close(p[0]);
    proc_id id = {0};
    for (int i = 0; i < 2000 && !(proc_read(pid, &id) && id.state == 'T'); i++)
        sleep_ms(5);
    assert_int_equal(id.state, 'T');
    return id;
}

/* n stopped orphans (stop_then_end() with end_sig, held), all of one parent, a child of this
 * process, which exits once it has seen them all stop. Their name, this process's own so that no
 * other test's look continues them, into name; the write end of their hold, whose close lets them
 * end. */
static int held_orphans(char name[16], int end_sig, int n)
{
    snprintf(name, 16, "orphans-%d", (int)getpid());
    int held[2];
    assert_int_equal(pipe(held), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        for (int i = 0; i < n; i++) {
            pid_t orphan = fork();
            if (orphan == 0)
                stop_then_end(name, end_sig, held);
            if (orphan < 0)
                _exit(1);
        }
        int st;
        for (int i = 0; i < n; i++)
            if (waitpid(-1, &st, WUNTRACED) < 0 || !WIFSTOPPED(st))
                _exit(1);
        _exit(0);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    close(held[0]);
    return held[1];
}

/* Whether the process seen as id is still stopped. */
static bool still_stopped(const proc_id *id)
{
    proc_id now;
    return proc_read(id->pid, &now) && now.start == id->start && now.state == 'T';
}

/* A stopped process of the name is continued only when its parent died (it was re-parented to
 * one that runs another program file) and its parent-death signal is pending: one whose parent
 * lives and runs its file (this process), an orphan of another name, and an orphan of the name
 * without that signal (a program that only took the name), are left stopped, the child even with
 * its end signal pending (as a live taskd's supervisor is after child_kill()). The one continued
 * has ended when the call returns (it waits for it). */
static void test_continue_only_stopped_orphans_of_the_name(void **state)
{
    (void)state;
    const int end_sig = SIGRTMIN + 1;
    const proc_id orphan = stopper("orphan-test", true, end_sig);
    const proc_id child = stopper("orphan-test", false, end_sig);
    const proc_id other = stopper("orphan-other", true, end_sig);
    const proc_id named = stopper("orphan-test", true, 0);
    assert_int_not_equal(orphan.ppid, getpid());
    /* the child's end signal pending too (blocked, it stays stopped): its parent alone keeps it */
    assert_int_equal(kill(child.pid, end_sig), 0);
    int unended = -1;
    int unwatched = -1;
    assert_true(proc_continue_orphans("orphan-test", end_sig, 10000, &unended, &unwatched) >=
                1); /* others' */
    assert_int_equal(unwatched, 0);
    assert_int_equal(unended, 0);
    assert_true(still_stopped(&child));
    assert_true(still_stopped(&other));
    assert_true(still_stopped(&named));
    proc_id now; /* continued, it took its end signal and exited: gone, or a zombie of init's */
    assert_false(proc_read(orphan.pid, &now) && now.start == orphan.start && now.state != 'Z');
    (void)proc_signal_seen(&other, SIGKILL);
    (void)proc_signal_seen(&named, SIGKILL);
    kill(child.pid, SIGKILL);
    reap(child.pid);
}

/* The offset of text in /proc/<pid>/status, or -1 when it is not there. */
static long status_offset(pid_t pid, const char *text)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *at = strstr(buf, text);
    return at ? (long)(at - buf) : -1;
}

/* A stopped orphan whose signal masks come past the first 4096 bytes of its
 * /proc/<pid>/status, behind a Groups line that long (a member of many groups: an account of a
 * directory service may be in hundreds, of ids of 10 digits), is continued as any other: its end
 * signal is seen pending. The masks were looked for in the first 4096 bytes alone, and such an
 * orphan, its end signal not found, was left stopped, its run going on. */
static void test_continue_an_orphan_whose_masks_come_late(void **state)
{
    (void)state;
    if (!can_set_groups())
        skip();
    const int end_sig = SIGRTMIN + 1;
    char name[16];
    snprintf(name, sizeof name, "groups-%d", (int)getpid());
    stoppers_in_many_groups = true;
    const proc_id orphan = stopper(name, true, end_sig);
    stoppers_in_many_groups = false;
    long masks_at = status_offset(orphan.pid, "\nSigPnd:");
    int unended = -1, unwatched = -1;
    int continued = proc_continue_orphans(name, end_sig, 10000, &unended, &unwatched);
    bool stopped = still_stopped(&orphan);
    if (stopped)
        (void)proc_signal_seen(&orphan, SIGKILL);
    assert_true(masks_at > 4096);
    assert_false(stopped);
    assert_int_equal(continued, 1);
    assert_int_equal(unended, 0);
    assert_int_equal(unwatched, 0);
}

/* Orphans enough to pass the room for 64 that proc_continue_orphans()'s notes start with. */
enum { ORPHANS = 65 };

/* proc_continue_orphans() over n held orphans (held_orphans()), waiting 50 ms: its return, its
 * unended and its unwatched. A second look must find none of them stopped, once their hold has
 * ended. */
static int continue_held_orphans(int n, int *unended, int *unwatched)
{
    const int end_sig = SIGRTMIN + 1;
    char name[16];
    const int held = held_orphans(name, end_sig, n);
    int continued = proc_continue_orphans(name, end_sig, 50, unended, unwatched);
    int again, not_noted;
    int stopped = proc_continue_orphans(name, end_sig, 0, &again, &not_noted);
    close(held); /* they end (one still stopped stays so, to be seen) */
    assert_int_equal(stopped, 0);
    return continued;
}

/* Every orphan continued is waited for, however many: each still clearing its run when the wait
 * runs out, all of them count as not ended. */
static void test_wait_for_every_orphan_continued(void **state)
{
    (void)state;
    int unended = -1, unwatched = -1;
    assert_int_equal(continue_held_orphans(ORPHANS, &unended, &unwatched), ORPHANS);
    assert_int_equal(unended, ORPHANS);
    assert_int_equal(unwatched, 0);
}

/* One orphan past those the notes have room for, so that a growth that fails is not the walk's
 * last, for oom_sweep(): each orphan is continued and counted whatever allocation of the notes
 * fails; one with no memory to note it is not waited for (unwatched), and the notes made before
 * are kept, those orphans waited for. */
static bool continue_orphans_short_of_memory(void *arg)
{
    (void)arg;
    int unended = -1, unwatched = -1;
    assert_int_equal(continue_held_orphans(ORPHANS + 1, &unended, &unwatched), ORPHANS + 1);
    assert_int_equal(unwatched, (int)oom_failures());
    assert_int_equal(unended, ORPHANS + 1 - (int)oom_failures());
    return true;
}

/* An orphan continued when there is no memory to note it is continued all the same and counted,
 * not waited for, and the walk goes on past it: the notes' first room and their growth each fail
 * alone, and with every allocation after them. */
static void test_an_orphan_with_no_memory_to_note_it_is_continued(void **state)
{
    (void)state;
    assert_int_equal(oom_sweep("proc_continue_orphans", continue_orphans_short_of_memory, NULL), 2);
}

static void note_number(long number, void *arg)
{
    long *want = arg;
    if (number == want[0])
        want[1] = 1;
}

static void test_numbered_entries_of_a_directory(void **state)
{
    (void)state;
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    int dir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(dir >= 0);
    long seen[2] = {fd, 0};
    proc_each_numbered(dir, note_number, seen);
    assert_int_equal(seen[1], 1);
    close(dir);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_this_process),
        cmocka_unit_test(test_read_a_process_named_to_mislead),
        cmocka_unit_test(test_read_no_such_process),
        cmocka_unit_test(test_a_descendant_holds_its_pid_and_its_group),
        cmocka_unit_test(test_scan_finds_the_tree_under_a_process),
        cmocka_unit_test(test_scan_takes_no_children_of_a_pid_reused),
        cmocka_unit_test(test_walk_finds_the_tree_at_any_depth_at_once),
        cmocka_unit_test(test_walk_reads_a_children_file_in_pieces),
        cmocka_unit_test(test_kill_only_the_process_seen),
        cmocka_unit_test(test_continue_only_stopped_orphans_of_the_name),
        cmocka_unit_test(test_continue_an_orphan_whose_masks_come_late),
        cmocka_unit_test(test_wait_for_every_orphan_continued),
        cmocka_unit_test_teardown(test_an_orphan_with_no_memory_to_note_it_is_continued,
                                  oom_teardown),
        cmocka_unit_test(test_numbered_entries_of_a_directory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
