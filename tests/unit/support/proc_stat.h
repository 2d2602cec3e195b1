/*
 * proc_stat — what /proc/<pid>/stat says of a process, for tests that watch
 * the processes a run starts (stopped, a zombie, whose child, started when),
 * and the names of this process's threads.
 */
#ifndef TASKD_TEST_PROC_STAT_H
#define TASKD_TEST_PROC_STAT_H

#include <stdbool.h>
#include <sys/types.h>

/*
 * The state letter of process pid ('R', 'S', 'T', 'Z', ...), and when ppid / started are not
 * NULL its parent's pid and its start time (clock ticks after boot, field 22); 0 when there is
 * no such process or its line cannot be read (ppid and started are then left as they were).
 */
char test_proc_state(pid_t pid, pid_t *ppid, unsigned long long *started);

/*
 * The name of a thread of this process that starts with prefix, into name (16 bytes: Linux keeps
 * 15 and a NUL), as the kernel holds it (/proc/self/task/<tid>/comm, which pthread_getname_np()
 * reads for a thread other than its caller); false when no thread has such a name.
 */
bool test_thread_named(const char *prefix, char name[16]);

#endif
