/*
 * clock — the clocks the code reads, in the units it wants.
 *
 * Wall clock (CLOCK_REALTIME) for what is stored or sent: task times,
 * message timestamps, span times, Lambda deadlines (epoch milliseconds).
 * Monotonic clock (CLOCK_MONOTONIC) for intervals and timeouts, which must
 * not jump when the wall clock is set.
 * Steady wall clock for deadlines that are stored, and so must be wall time
 * across restarts, yet must not jump while the process runs: when a queue
 * message is visible again, when it expires.
 * CPU time, as getrusage() and wait4() report it, for what a program used.
 */
#ifndef TASKD_CLOCK_H
#define TASKD_CLOCK_H

#include <pthread.h>
#include <stdint.h>
#include <sys/resource.h>
#include <time.h>

/* Wall clock: Unix seconds, milliseconds, nanoseconds. */
int64_t clock_unix_s(void);
int64_t clock_unix_ms(void);
int64_t clock_unix_ns(void);
/*
 * Steady wall clock: Unix milliseconds that advance with the monotonic clock
 * from the wall clock's reading the first time any thread asks. A step of the
 * wall clock while the process runs (date -s, an NTP step) does not move it;
 * NTP's slewing moves both clocks alike. A new process starts from the wall
 * clock again.
 */
int64_t clock_steady_ms(void);
/* How far the wall clock has been stepped away from the steady clock (ms; 0 without a step). */
int64_t clock_steady_skew_ms(void);
/* Monotonic clock: milliseconds, nanoseconds, seconds. */
int64_t clock_mono_ms(void);
int64_t clock_mono_ns(void);
double clock_mono_s(void);
/* The user and system CPU time ru holds (getrusage(), wait4()) in milliseconds. A computation
 * alone: a fork of a multi-threaded process may call it. */
int64_t clock_cpu_ms(const struct rusage *ru);
/* Sleep ms milliseconds (none for ms <= 0), the rest again after a signal's interruption. */
void clock_sleep_ms(int64_t ms);
/*
 * A monotonic time in nanoseconds (as clock_mono_ns gives) as a timespec,
 * the deadline pthread_cond_timedwait wants on a CLOCK_MONOTONIC condition.
 */
struct timespec clock_mono_timespec(int64_t ns);
/* The monotonic deadline ms milliseconds from now, as clock_mono_timespec gives it. */
struct timespec clock_mono_after_ms(int64_t ms);
/*
 * Initialise a condition variable whose timed waits read the monotonic clock,
 * so that setting the wall clock neither stretches nor cuts them short.
 * 0, or an error number.
 */
int clock_mono_cond_init(pthread_cond_t *cond);

#endif
