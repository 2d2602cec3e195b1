/*
 * span_log — the local trace view's store: the newest spans, each packed into one record of a
 * byte ring (ids, times, name, task, status and attributes, the strings inline), the oldest
 * overwritten first.
 *
 * A span keeps about 300 bytes there instead of its 1.5 KiB struct, a put is one sequential
 * copy with no allocation, and what it overwrites needs no free. Reads unpack the records of
 * one task into spans of their own. Not thread-safe: the tracer holds a lock around it.
 */
#ifndef TASKD_SPAN_LOG_H
#define TASKD_SPAN_LOG_H

#include "core/span.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct span_log span_log;

/* A log of at most max_spans spans in at most bytes bytes; NULL when out of memory. */
span_log *span_log_new(size_t max_spans, size_t bytes);
void span_log_free(span_log *l);

/* Keep a copy of s, dropping the oldest records to make room; false when s's record is larger
 * than a quarter of the log (not kept). */
bool span_log_put(span_log *l, const span *s);

/* Copies of the spans kept for task_id, oldest first, in *out (malloc'd; each span owns its
 * strings); their number. 0 and *out NULL when none, or when out of memory (errno ENOMEM then;
 * left as it was when there are none). */
size_t span_log_task(const span_log *l, const char *task_id, span **out);

/* Spans kept. */
size_t span_log_count(const span_log *l);

#endif
