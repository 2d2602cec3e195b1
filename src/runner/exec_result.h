/*
 * exec_result — what the exec handler reports for a program that ran: the result
 * made from its standard output, or the status message made from its wait status
 * and the tail of its standard error.
 *
 * Pure text work, no I/O. Everything returned is valid UTF-8 (invalid bytes become
 * U+FFFD), and a result is always valid JSON, so both can be stored and sent as is.
 */
#ifndef TASKD_EXEC_RESULT_H
#define TASKD_EXEC_RESULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The result for standard output s[0..n), a UTF-8 byte order mark first left out, malloc'ed
 * into *result: the JSON text itself, with the whitespace between tokens removed, when it
 * parses as JSON (or is nested too deep to parse); else a JSON string of it with trailing
 * newlines trimmed, NUL bytes and invalid UTF-8 as U+FFFD; NULL when that leaves nothing. 0,
 * or ENOMEM.
 */
int exec_result_from_stdout(const char *s, size_t n, char **result);

/*
 * The status message, malloc'ed, for a program that did not exit with status 0:
 * "exit status N", "killed by signal N (SIGNAME)" or "ended with wait status 0xN", then
 * ": " and the last whole lines (at most EXEC_STATUS_TAIL bytes) of the stderr tail
 * tail[0..n) when it holds more than white space; cut says the tail lost its beginning.
 * With a CPU time limit (cpu_limit_s > 0), a program killed by SIGXCPU, or by SIGKILL after
 * using at least cpu_limit_s s of CPU (cpu_ms), is "killed by signal N (SIGNAME: CPU time
 * limit of L s)". NULL when out of memory.
 */
char *exec_result_failure(int wait_status, unsigned cpu_limit_s, int64_t cpu_ms, const char *tail,
                          size_t n, bool cut);

#endif
