/*
 * clock — wall, steady wall, monotonic and CPU time; see clock.h.
 */
#include "clock.h"

#include <errno.h>
#include <time.h>

static int64_t ns_of(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t clock_unix_s(void)
{
    /* not time(): glibc reads a coarse clock there, which can still say the last
     * second when CLOCK_REALTIME has passed to the next; the units must agree */
    return ns_of(CLOCK_REALTIME) / 1000000000;
}

int64_t clock_unix_ms(void)
{
    return ns_of(CLOCK_REALTIME) / 1000000;
}

int64_t clock_unix_ns(void)
{
    return ns_of(CLOCK_REALTIME);
}

static int64_t steady_base_ns; /* the wall clock less the monotonic one, at the first look */
static pthread_once_t steady_once = PTHREAD_ONCE_INIT;

static void steady_begin(void)
{
    steady_base_ns = ns_of(CLOCK_REALTIME) - ns_of(CLOCK_MONOTONIC);
}

int64_t clock_steady_ms(void)
{
    pthread_once(&steady_once, steady_begin);
    return (ns_of(CLOCK_MONOTONIC) + steady_base_ns) / 1000000;
}

int64_t clock_steady_skew_ms(void)
{
    pthread_once(&steady_once, steady_begin);
    return (ns_of(CLOCK_REALTIME) - ns_of(CLOCK_MONOTONIC) - steady_base_ns) / 1000000;
}

int64_t clock_mono_ms(void)
{
    return ns_of(CLOCK_MONOTONIC) / 1000000;
}

int64_t clock_mono_ns(void)
{
    return ns_of(CLOCK_MONOTONIC);
}

double clock_mono_s(void)
{
    return (double)ns_of(CLOCK_MONOTONIC) / 1e9;
}

int64_t clock_cpu_ms(const struct rusage *ru)
{
    return ((int64_t)ru->ru_utime.tv_sec + ru->ru_stime.tv_sec) * 1000 +
           (ru->ru_utime.tv_usec + ru->ru_stime.tv_usec) / 1000;
}

void clock_sleep_ms(int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

struct timespec clock_mono_timespec(int64_t ns)
{
    struct timespec ts = {.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
    return ts;
}

struct timespec clock_mono_after_ms(int64_t ms)
{
    return clock_mono_timespec(ns_of(CLOCK_MONOTONIC) + ms * 1000000);
}

int clock_mono_cond_init(pthread_cond_t *cond)
{
    pthread_condattr_t attr;
    int rc = pthread_condattr_init(&attr);
    if (rc != 0)
        return rc;
    rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(cond, &attr);
    pthread_condattr_destroy(&attr);
    return rc;
}
