/*
 * log — structured logging: one JSON object per line on stderr.
 *
 * Every line has level, timestamp (UTC, RFC 3339 with milliseconds), message
 * and service, plus any extra string fields the caller passes as name/value
 * pairs ending in NULL:
 *
 *     log_info("listening", "address", "127.0.0.1:8080", NULL);
 *
 * A line is written whole, under a lock, so lines from several threads
 * never interleave, however long. A full non-blocking stderr drops a line
 * it takes nothing of, and one it took part of loses its rest after a
 * while; the next line begins on a line of its own. The level threshold
 * and service name are set at start-up; the threshold may be changed later
 * while other threads log (tests do, around a case). Besides them each thread may carry context
 * fields that every line it writes repeats (the Lambda runtime sets the
 * invocation's request id this way).
 */
#ifndef TASKD_LOG_H
#define TASKD_LOG_H

#include <stdbool.h>

typedef enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR } log_level;

/* Set the threshold and service name (default INFO, "taskd"). */
void log_setup(log_level threshold, const char *service);
/* Parse "DEBUG", "INFO", "WARN"/"WARNING", "ERROR" (any case); false if unknown. */
bool log_level_parse(const char *s, log_level *out);
/* True when lines at this level are written. */
bool log_enabled(log_level level);
/* The threshold log_setup() set, for a caller that changes it to set it back. */
log_level log_threshold(void);
/*
 * Set the calling thread's context fields (NULL-terminated name/value pairs,
 * copied; less than LOG_CONTEXT_SIZE bytes of JSON, the rest left out),
 * replacing any.
 */
void log_context(const char *name, ...) __attribute__((sentinel));
/* Clear the calling thread's context fields. */
void log_context_clear(void);
/* The calling thread's context fields as written (for another thread to take on). */
#define LOG_CONTEXT_SIZE 480
void log_context_save(char out[LOG_CONTEXT_SIZE]);
/* Take on context fields saved by log_context_save(), in any thread. */
void log_context_load(const char saved[LOG_CONTEXT_SIZE]);
/* Write one line: message plus NULL-terminated name/value string pairs. */
void log_write(log_level level, const char *message, ...) __attribute__((sentinel));

#define log_debug(...) log_write(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_write(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_write(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_write(LOG_ERROR, __VA_ARGS__)

#endif
