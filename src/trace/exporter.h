/*
 * exporter — the one interface the tracer exports spans through, and the
 * warning rate limit every exporter applies to its own complaints.
 *
 * An exporter is a struct of function pointers that an implementation
 * embeds as its first member, followed by its own state (a socket, an HTTP
 * handle, retry settings): the tracer holds a list of exporter pointers and
 * knows nothing else about them. Implementations: export_otlp (OTLP/HTTP)
 * and export_xray (X-Ray daemon over UDP).
 *
 * Threading. export() is called from the tracer's export thread only, one
 * batch at a time, and may block (network, retries). hurry() may be called
 * from any other thread while export() runs, so an exporter that has one
 * keeps what it sets in atomics or behind its own lock. free() runs once,
 * after the export thread has been joined.
 *
 * Hurry (a flush, or shutdown): from hurry(e, true, deadline) until
 * hurry(e, false, 0) an exporter makes one attempt per batch, retries
 * nothing, cuts short any wait, and gives up on what is not sent by the
 * deadline (monotonic nanoseconds, util/clock.h). Shutdown never calls
 * hurry(e, false, 0). An exporter that never waits needs no hook (NULL).
 *
 * Counting. The tracer clears failed[] for a batch, hands the batch to
 * every exporter in turn, and counts a span as exported when no exporter
 * marked it, else as dropped.
 */
#ifndef TASKD_EXPORTER_H
#define TASKD_EXPORTER_H

#include "core/span.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct exporter exporter;

struct exporter {
    /* Where spans go, for logs: the endpoint URL, the daemon's host:port. Owned by e. */
    const char *destination;
    /* Export spans[0..n); set failed[i] for each span not taken (never clear a mark). */
    void (*export)(exporter *e, const span *spans, size_t n, bool *failed);
    /* Optional (NULL: nothing to cut short): start (on) or end hurrying; see above. */
    void (*hurry)(exporter *e, bool on, int64_t deadline_ns);
    /* Release everything e owns, e included. */
    void (*free)(exporter *e);
};

/* Free e through its own free(); NULL is fine. */
void exporter_free(exporter *e);

/* Warnings of one exporter: at most one per minute, the rest counted. Zero is ready to use. */
typedef struct exporter_warnings {
    bool ever;
    int64_t last_ns;     /* monotonic time of the last warning logged */
    uint64_t suppressed; /* warnings held back since then */
} exporter_warnings;

/*
 * Log message as a warning with the fields where_key = where, "detail" = detail and
 * "suppressed_warnings" (the count held back since the last one), unless one was logged less
 * than a minute ago: then only count it. Whether it was logged. Not thread-safe: one
 * exporter's thread calls it.
 */
bool exporter_warn(exporter_warnings *w, const char *message, const char *where_key,
                   const char *where, const char *detail);

#endif
