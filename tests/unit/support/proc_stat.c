/*
 * proc_stat — reading /proc/<pid>/stat and /proc/self/task; see proc_stat.h.
 */
#include "support/proc_stat.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>

char test_proc_state(pid_t pid, pid_t *ppid, unsigned long long *started)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* "pid (comm) S ppid ...": comm may hold anything */
    if (!p || p[1] != ' ' || !p[2])
        return 0;
    char state = p[2];
    int parent = 0;
    unsigned long long start = 0;
    p += 2; /* field 3, the state */
    if (sscanf(p, "%*c %d", &parent) != 1)
        return 0;
    for (int field = 3; field < 22 && p; field++) /* on to field 22, the start time */
        if ((p = strchr(p, ' ')))
            p++;
    if (!p || sscanf(p, "%llu", &start) != 1)
        return 0;
    if (ppid)
        *ppid = (pid_t)parent;
    if (started)
        *started = start;
    return state;
}

bool test_thread_named(const char *prefix, char name[16])
{
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return false;
    bool found = false;
    for (struct dirent *e; !found && (e = readdir(d)) != NULL;) {
        char path[300];
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = e->d_name[0] != '.' ? fopen(path, "r") : NULL;
        if (!f)
            continue;
        size_t n = fread(name, 1, 15, f);
        fclose(f);
        name[n] = '\0';
        name[strcspn(name, "\n")] = '\0'; /* the file ends its name with a newline */
        found = strncmp(name, prefix, strlen(prefix)) == 0;
    }
    closedir(d);
    return found;
}
