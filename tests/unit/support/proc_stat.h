/*
 * proc_stat — what /proc/<pid>/stat says of a process, for tests that watch
 * the processes a run starts (stopped, a zombie, whose child, started when).
 */
#ifndef TASKD_TEST_PROC_STAT_H
#define TASKD_TEST_PROC_STAT_H

#include <sys/types.h>

/*
 * The state letter of process pid ('R', 'S', 'T', 'Z', ...), and when ppid / started are not
 * NULL its parent's pid and its start time (clock ticks after boot, field 22); 0 when there is
 * no such process or its line cannot be read (ppid and started are then left as they were).
 */
char test_proc_state(pid_t pid, pid_t *ppid, unsigned long long *started);

#endif
