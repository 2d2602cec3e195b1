/*
 * clock_shift — an LD_PRELOAD shim for tests: the wall clock (CLOCK_REALTIME and its coarse
 * form) reads as many seconds ahead as the file named by CLOCK_SHIFT_FILE says (negative:
 * behind), as if it had been set with date -s; the monotonic clocks are left alone. The file
 * is looked at again at most every 20 ms, so a test steps the clock of a running process by
 * rewriting it. Without the file, or with the variable unset, nothing changes.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef int (*clock_gettime_fn)(clockid_t, struct timespec *);

static clock_gettime_fn real; /* looked up once, before the process's threads start */
static _Atomic int64_t shift_ns;
static _Atomic int64_t next_look_ns;

__attribute__((constructor)) static void find_real(void)
{
    real = (clock_gettime_fn)dlsym(RTLD_NEXT, "clock_gettime");
}

static int64_t ns_of(const struct timespec *ts)
{
    return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

/* The shift the file gives (0 without one); two threads reading it at once read the same. */
static int64_t read_shift(void)
{
    const char *path = getenv("CLOCK_SHIFT_FILE");
    FILE *f = path ? fopen(path, "r") : NULL;
    long long seconds = 0;
    if (f) {
        if (fscanf(f, "%lld", &seconds) != 1)
            seconds = 0;
        fclose(f);
    }
    return (int64_t)seconds * 1000000000;
}

int clock_gettime(clockid_t id, struct timespec *ts)
{
    if (!real) {
        errno = ENOSYS;
        return -1;
    }
    int rc = real(id, ts);
    if (rc != 0 || (id != CLOCK_REALTIME && id != CLOCK_REALTIME_COARSE))
        return rc;
    struct timespec mono;
    real(CLOCK_MONOTONIC, &mono);
    int64_t now = ns_of(&mono);
    if (now >= atomic_load(&next_look_ns)) {
        atomic_store(&next_look_ns, now + 20000000);
        atomic_store(&shift_ns, read_shift());
    }
    int64_t t = ns_of(ts) + atomic_load(&shift_ns);
    ts->tv_sec = t / 1000000000;
    ts->tv_nsec = t % 1000000000;
    return 0;
}
