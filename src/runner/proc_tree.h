/*
 * proc_tree — processes as /proc shows them, for a supervisor to find and kill every process
 * under it. Every function here but proc_continue_orphans() makes system calls only (no
 * allocation, no lock, no stdio), so code between fork() and exec, or in the fork of a
 * multi-threaded process, may call them.
 */
#ifndef TASKD_PROC_TREE_H
#define TASKD_PROC_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* A process as /proc shows it: its parent and its start time, which together with its pid tell
 * it from a later process that reuses the pid, its process group and its state. */
typedef struct proc_id {
    pid_t pid;
    pid_t ppid;
    pid_t pgid;
    char state;               /* field 3 of /proc/<pid>/stat: 'T' stopped, 't' traced, 'Z'... */
    unsigned long long start; /* clock ticks after boot (field 22 of /proc/<pid>/stat) */
} proc_id;

/*
 * Call each(number, arg) for every entry of the directory dir whose name is a decimal number
 * (/proc: processes, never the ids of their other threads; /proc/self/fd: descriptors). It
 * reads with getdents64() into a stack buffer.
 */
void proc_each_numbered(int dir, void (*each)(long number, void *arg), void *arg);

/* pid's parent, process group, state and start time into *out; false when there is no such
 * process. */
bool proc_read(pid_t pid, proc_id *out);

/*
 * Whether a descendant of ancestor (a zombie too) has id as its pid or as its process group's.
 * While one has, no process made since can have that pid or lead a group of that id: the kernel
 * gives a new process no pid that is still a process's or a process group's (POSIX's "Process ID
 * Reuse"), and a group takes its id from the pid of the process that makes it. A descendant, not
 * only a child: a process stays in its group when its parent leaves it (setsid(), setpgid()), so
 * a grandchild may be in the group while no child is. False too when /proc cannot be listed.
 */
bool proc_descendant_holds(pid_t ancestor, pid_t id);

/* One pass over /proc adding to tree[0..*n) every process whose parent is in it, up to max in
 * all: tree[0], the root, must keep its pid throughout (the caller, or a child it has not
 * reaped); another parent counts only while its pid is still the process seen (its start time),
 * so that a later process given the pid of one that ended adds none of its own children.
 * Returns how many were added, or -1 when /proc cannot be listed. A pass finds the
 * children of what it holds when it starts, and some of theirs: pass again until none is added. */
int proc_tree_scan(proc_id *tree, size_t *n, size_t max);

/* Add to tree[0..*n) the descendants of what it holds, at any depth, up to max in all, as each
 * process lists its children (/proc/<pid>/task/<tid>/children, every thread's), each child
 * taken as proc_tree_scan() takes it (read before its parent is checked again): what it reads is
 * what the tree holds, where a pass reads every process on the machine. Returns how many were
 * added, or -1, none added, when tree[0]'s children cannot be listed (no /proc, or a kernel
 * without CONFIG_PROC_CHILDREN): proc_tree_scan() is the way then. A child that forks or ends as
 * it is read may be missed: walk again until none is added. */
int proc_tree_walk(proc_id *tree, size_t *n, size_t max);

/* Send sig to the process seen as id, only if its pid still names that process (its start time
 * is the one seen): a pid reused meanwhile, even by a thread of another process, is left alone.
 * True when the signal was sent. */
bool proc_signal_seen(const proc_id *id, int sig);

/*
 * SIGCONT every process named name (its comm, as PR_SET_NAME set it) that is stopped (not traced),
 * has sig pending (its parent-death signal) and whose parent does not run its program file
 * (/proc/<pid>/exe, which must be readable for it, and need not be for the parent). For processes
 * that are forks of their parent and never exec, those are the ones whose parent died: they were
 * re-parented to init or a subreaper, which runs another file, where a parent alive runs theirs.
 * A process that only took the name (any program whose file name begins with it, cut to 15
 * characters) has no such signal pending. Each is signalled as proc_signal_seen() does. Then it
 * waits, at most wait_ms, for those continued to end (gone or zombies: their new parent reaps
 * them), and puts in *unended how many still run, and in *unwatched how many were not waited
 * for (no memory to note them). How many were continued, or -1 when /proc cannot be listed.
 */
int proc_continue_orphans(const char *name, int sig, int wait_ms, int *unended, int *unwatched);

#endif
