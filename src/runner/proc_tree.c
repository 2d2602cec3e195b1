#include "runner/proc_tree.h"
#include "util/clock.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

void proc_each_numbered(int dir, void (*each)(long number, void *arg), void *arg)
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

/* The index of pid in tree[0..n), or n when it is not there. */
static size_t tree_index(const proc_id *tree, size_t n, pid_t pid)
{
    size_t i = 0;
    while (i < n && tree[i].pid != pid)
        i++;
    return i;
}

/* pid in decimal at at, not ended: how many characters. A pid below 0 is written as its 32 bits
 * unsigned, at most 10 digits as any pid, a number no process has. */
static size_t put_pid(char *at, pid_t pid)
{
    char digits[16];
    size_t nd = 0, len = 0;
    for (uint32_t v = (uint32_t)pid; nd == 0 || v; v /= 10)
        digits[nd++] = (char)('0' + v % 10);
    while (nd)
        at[len++] = digits[--nd];
    return len;
}

/* "/proc/<pid>/<file>" into path; file is a name of at most 8 characters. */
static void proc_path(char path[32], pid_t pid, const char *file)
{
    size_t len = sizeof "/proc/" - 1;
    memcpy(path, "/proc/", len);
    len += put_pid(path + len, pid);
    path[len++] = '/';
    memcpy(path + len, file, strlen(file) + 1);
}

/* The start of /proc/<pid>/<file> into buf (one read, of at most size - 1 bytes), ended by a
 * '\0'; its length, or -1 when it cannot be read. */
static ssize_t proc_file(pid_t pid, const char *file, char *buf, size_t size)
{
    char path[32];
    proc_path(path, pid, file);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t got = read(fd, buf, size - 1);
    close(fd);
    if (got < 0)
        return -1;
    buf[got] = '\0';
    return got;
}

/* /proc/<pid>/stat is "pid (comm) S ppid ... starttime". */
bool proc_read(pid_t pid, proc_id *out)
{
    char buf[1024]; /* enough for 22 fields of at most 20 digits each and the name */
    if (proc_file(pid, "stat", buf, sizeof buf) <= 0)
        return false;
    const char *p = strrchr(buf, ')'); /* comm may hold ')' and spaces: the last one ends it */
    if (!p || p[1] != ' ' || !p[2] || p[3] != ' ')
        return false;
    const char state = p[2];
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
    *out = (proc_id){.pid = pid,
                     .ppid = (pid_t)field[0],
                     .pgid = (pid_t)field[1],
                     .state = state,
                     .start = field[18]};
    return true;
}

/* Call each(pid, arg) for every process in /proc; false when /proc cannot be listed. */
static bool each_process(void (*each)(long number, void *arg), void *arg)
{
    int dir = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0)
        return false;
    proc_each_numbered(dir, each, arg);
    close(dir);
    return true;
}

/* Whether p descends from ancestor, its ancestors read one at a time: false at the top (init, or
 * no parent), and at one already gone (ended and reaped between two reads, microseconds apart:
 * what it left went to a subreaper above it, which this walk does not follow). */
static bool descends(proc_id p, pid_t ancestor)
{
    while (p.ppid != ancestor)
        if (p.ppid <= 1 || !proc_read(p.ppid, &p))
            return false;
    return true;
}

/* proc_descendant_holds()'s look for a descendant of ancestor with id as its pid or its
 * group's. */
typedef struct id_holder {
    pid_t ancestor, id;
    bool found;
} id_holder;

static void note_if_holder(long number, void *arg)
{
    id_holder *h = arg;
    proc_id p;
    if (!h->found && proc_read((pid_t)number, &p) && (p.pid == h->id || p.pgid == h->id))
        h->found = descends(p, h->ancestor);
}

bool proc_descendant_holds(pid_t ancestor, pid_t id)
{
    proc_id p;
    if (proc_read(id, &p) && descends(p, ancestor))
        return true; /* the most common: the program itself, not yet reaped */
    id_holder h = {ancestor, id, false};
    return each_process(note_if_holder, &h) && h.found;
}

/* proc_tree_scan() adding to tree[0..*n) the children of what is in it. */
typedef struct tree_scan {
    proc_id *tree;
    size_t *n, max;
    int added;
} tree_scan;

/* Whether the process seen as id still has its pid: read again, with the start time seen. */
static bool still_there(const proc_id *id)
{
    proc_id now;
    return proc_read(id->pid, &now) && now.start == id->start;
}

/* A process whose parent is in the tree joins it, if that parent is still the process seen
 * (tree[0], the root, keeps its pid throughout): read after the child, it had the pid all along,
 * so the child's is it. One that ended since, its pid free or another's, has its children found
 * once they are re-parented; a later process of its pid is not the tree's, nor are its children. */
static void join_if_child(tree_scan *t, pid_t pid)
{
    if (pid <= 0 || tree_index(t->tree, *t->n, pid) < *t->n || *t->n == t->max)
        return;
    proc_id id;
    if (!proc_read(pid, &id) || id.ppid <= 0)
        return;
    size_t parent = tree_index(t->tree, *t->n, id.ppid);
    if (parent < *t->n && (parent == 0 || still_there(&t->tree[parent]))) {
        t->tree[(*t->n)++] = id;
        t->added++;
    }
}

static void add_if_child(long number, void *arg)
{
    join_if_child(arg, (pid_t)number);
}

int proc_tree_scan(proc_id *tree, size_t *n, size_t max)
{
    tree_scan scan = {tree, n, max, 0};
    return each_process(add_if_child, &scan) ? scan.added : -1;
}

/* proc_tree_walk() reading the children of one process of the tree, thread by thread. */
typedef struct children_walk {
    tree_scan *scan;
    pid_t pid;
    bool listed; /* a thread's children file was opened */
} children_walk;

/* Offer to the tree every child the thread tid of w->pid lists in
 * /proc/<pid>/task/<tid>/children ("12 345 "), read in pieces: a child that ends between two
 * pieces may shift the list under the reader and hide another, which a later round finds. */
static void walk_thread(long tid, void *arg)
{
    children_walk *w = arg;
    char path[48];
    proc_path(path, w->pid, "task/");
    size_t len = strlen(path);
    len += put_pid(path + len, (pid_t)tid);
    memcpy(path + len, "/children", sizeof "/children");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    w->listed = true;
    char buf[512];
    long number = -1; /* the pid being read: -1 between two, -2 past any pid */
    ssize_t got;
    while ((got = read(fd, buf, sizeof buf)) > 0 || (got < 0 && errno == EINTR))
        for (ssize_t i = 0; i < got; i++) {
            if (buf[i] >= '0' && buf[i] <= '9') {
                long digit = buf[i] - '0';
                if (number == -1)
                    number = digit;
                else if (number >= 0)
                    number = number < INT32_MAX / 10 ? number * 10 + digit : -2;
            } else {
                if (number > 0)
                    join_if_child(w->scan, (pid_t)number);
                number = -1;
            }
        }
    if (number > 0)
        join_if_child(w->scan, (pid_t)number);
    close(fd);
}

int proc_tree_walk(proc_id *tree, size_t *n, size_t max)
{
    tree_scan scan = {tree, n, max, 0};
    for (size_t at = 0; at < *n && *n < max; at++) {
        char path[32];
        proc_path(path, tree[at].pid, "task");
        int dir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        children_walk w = {&scan, tree[at].pid, false};
        if (dir >= 0) {
            proc_each_numbered(dir, walk_thread, &w);
            close(dir);
        }
        if (at == 0 && !w.listed)
            return -1; /* no /proc, or no children files (CONFIG_PROC_CHILDREN) */
    }
    return scan.added;
}

/* How: through a pidfd (Linux 5.3+), opened first and then checked against the start time
 * seen, so the check and the signal are about one process even if id's pid was reused in
 * between (a pidfd cannot be opened for a thread id, and pins the process). Before 5.3: the
 * same check, then kill(); the pid would have to be reused between the two calls. */
bool proc_signal_seen(const proc_id *id, int sig)
{
    bool sent = false;
    int pfd = (int)syscall(SYS_pidfd_open, id->pid, 0);
    if (pfd >= 0) {
        if (still_there(id))
            sent = syscall(SYS_pidfd_send_signal, pfd, sig, NULL, 0) == 0;
        close(pfd);
    } else if (errno == ENOSYS) {
        if (still_there(id))
            sent = kill(id->pid, sig) == 0;
    }
    /* else gone (ESRCH), or its pid is now a thread's (EINVAL): not ours */
    return sent;
}

/* Whether pid's name (/proc/<pid>/comm, which ends in a newline) is name. */
static bool named(pid_t pid, const char *name)
{
    char comm[32];
    ssize_t got = proc_file(pid, "comm", comm, sizeof comm);
    size_t n = strlen(name);
    return got == (ssize_t)n + 1 && memcmp(comm, name, n) == 0 && comm[n] == '\n';
}

/* The program file pid runs into *st; false when it cannot be read (another user's process,
 * one not dumpable, one exiting). */
static bool program_file(pid_t pid, struct stat *st)
{
    char path[32];
    proc_path(path, pid, "exe");
    return stat(path, st) == 0;
}

/* Whether line (no newline) is a SigPnd or ShdPnd mask of /proc/<pid>/status (hex) with bit
 * sig - 1 set. */
static bool mask_has(const char *line, int sig)
{
    static const char *const masks[] = {"SigPnd:\t", "ShdPnd:\t"};
    for (size_t i = 0; i < sizeof masks / sizeof *masks; i++) {
        size_t len = strlen(masks[i]);
        if (strncmp(line, masks[i], len) == 0)
            return strtoull(line + len, NULL, 16) >> (sig - 1) & 1;
    }
    return false;
}

/* Whether sig is pending for pid, for the process or its thread (the SigPnd and ShdPnd masks of
 * /proc/<pid>/status). The file is read line by line to its end: the Groups line before the masks
 * is as long as the process has supplementary groups (up to 65536 of them), which no buffer
 * holds; a line longer than the buffer is none of the masks, and is passed over. */
static bool pending(pid_t pid, int sig)
{
    char path[32];
    proc_path(path, pid, "status");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    char buf[4096];
    size_t have = 0;   /* bytes in buf: the start of a line, not yet whole */
    bool over = false; /* buf holds the rest of a line longer than it, passed over */
    bool found = false;
    ssize_t got;
    while (!found && (got = read(fd, buf + have, sizeof buf - 1 - have)) > 0) {
        have += (size_t)got;
        buf[have] = '\0';
        char *line = buf, *end;
        while (!found && (end = strchr(line, '\n'))) {
            *end = '\0';
            found = !over && mask_has(line, sig);
            over = false;
            line = end + 1;
        }
        have -= (size_t)(line - buf);
        if (have == sizeof buf - 1) { /* a line longer than buf: passed over to its end */
            have = 0;
            over = true;
        }
        memmove(buf, line, have);
    }
    close(fd);
    return found;
}

/* Milliseconds between proc_continue_orphans()'s looks at those it continued. */
#define ORPHANS_LOOK_MS 10

/* proc_continue_orphans()'s look at each process. */
typedef struct orphans {
    const char *name;
    int sig;
    int continued;
    proc_id *noted; /* those continued, to wait for: noted[0..n), room for size */
    int n, size;
} orphans;

static void continue_if_orphan(long number, void *arg)
{
    orphans *o = arg;
    proc_id p;
    struct stat own, parents;
    if (!proc_read((pid_t)number, &p) || p.state != 'T' || !named(p.pid, o->name) ||
        !pending(p.pid, o->sig) || !program_file(p.pid, &own))
        return;
    if (program_file(p.ppid, &parents) && parents.st_dev == own.st_dev &&
        parents.st_ino == own.st_ino)
        return; /* its parent, alive */
    if (!proc_signal_seen(&p, SIGCONT))
        return;
    o->continued++;
    if (o->n == o->size) {
        int size = o->size ? 2 * o->size : 64;
        proc_id *more = realloc(o->noted, (size_t)size * sizeof *more);
        if (!more)
            return; /* continued, not waited for */
        o->noted = more;
        o->size = size;
    }
    o->noted[o->n++] = p;
}

/* How many of ids[0..n) still run: not gone, not a zombie, their pids not reused. */
static int running(const proc_id *ids, int n)
{
    int left = 0;
    proc_id now;
    for (int i = 0; i < n; i++)
        left += proc_read(ids[i].pid, &now) && now.start == ids[i].start && now.state != 'Z' &&
                now.state != 'X';
    return left;
}

int proc_continue_orphans(const char *name, int sig, int wait_ms, int *unended, int *unwatched)
{
    orphans o = {.name = name, .sig = sig};
    *unended = *unwatched = 0;
    if (!each_process(continue_if_orphan, &o))
        return -1;
    *unwatched = o.continued - o.n;
    const int64_t until = clock_mono_ms() + wait_ms;
    while ((*unended = running(o.noted, o.n)) > 0 && clock_mono_ms() < until)
        clock_sleep_ms(ORPHANS_LOOK_MS);
    free(o.noted);
    return o.continued;
}
