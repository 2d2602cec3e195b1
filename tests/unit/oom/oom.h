/*
 * oom — allocation failures on demand, for the tests that sweep a piece of code through every
 * allocation it makes (tests/unit/test_oom_*.c, test_proc_tree.c).
 *
 * The test is linked with --wrap for malloc, calloc, realloc, free, strdup, strndup, asprintf
 * and vasprintf (CMakeLists.txt), so every allocation the project's code makes goes through
 * here, and jansson's too (oom_sweep() gives it these functions). An armed allocation fails
 * as the real one would when memory runs out: NULL (or -1), errno ENOMEM. A jansson parse or
 * dump is one allocation, failing as a whole (oom.c says why).
 *
 * Only the sweeping thread's allocations count and fail. A block must be freed on the thread
 * that made it, as far as the count goes: a scenario must not hand one made in a run to
 * another thread to free (a writer, an exporter), nor free one made by another thread.
 *
 * A test that uses cmocka_unit_test_teardown(test, oom_teardown) leaves no run armed when one
 * of its checks fails inside a sweep, so the tests after it run as usual.
 */
#ifndef TASKD_TEST_OOM_H
#define TASKD_TEST_OOM_H

#include <stdbool.h>
#include <stddef.h>

/* What a sweep runs: the code under test from start to end, everything it made freed again.
 * True when it succeeded, having checked that what it made is right (a wrong result is a
 * failed check, fail_msg(), not false); false when the code reported a failure (which is
 * right only when an allocation failed). */
typedef bool (*oom_scenario)(void *arg);

/*
 * Run fn once with nothing failing (it must succeed), then again for each allocation it made,
 * failing that one alone, and then that one and every one after it. Every run must leave no
 * block allocated that it did not free. Returns the number of allocations of the clean run.
 */
size_t oom_sweep(const char *name, oom_scenario fn, void *arg);

/* Allocations made, and failed, since the current run began (for a scenario's own checks). */
size_t oom_allocations(void);
size_t oom_failures(void);

/* Between these (they nest), nothing fails nor counts as an allocation, though blocks still
 * count: for a scenario's checks of what the code under test made. */
void oom_pause(void);
void oom_resume(void);

/*
 * For code whose allocations happen on threads of its own (the HTTP server's loops), outside
 * any sweep: the nth malloc, calloc or realloc (1-based) of at least min_size bytes made by a
 * thread named thread_name (pthread_setname_np) after this call fails, that one alone, and
 * nothing is counted. oom_thread_failed() tells whether it has failed yet; oom_thread_disarm()
 * forgets one that has not.
 */
void oom_thread_arm(const char *thread_name, size_t min_size, unsigned nth);
bool oom_thread_failed(void);
void oom_thread_disarm(void);
/* The same for a copy of a string: the next strdup or strndup of exactly text (at most 127
 * bytes) by a thread named thread_name fails; oom_thread_failed() tells when it has. */
void oom_thread_arm_copy(const char *thread_name, const char *text);
/* The same for the nth such copy (1-based), the ones before it made as usual. */
void oom_thread_arm_copy_nth(const char *thread_name, const char *text, unsigned nth);

/* A cmocka teardown: ends a run a failed check left armed. */
int oom_teardown(void **state);

#endif
