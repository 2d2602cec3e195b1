/*
 * exporter — what the exporters share: freeing through the interface and the
 * warning rate limit; see exporter.h.
 *
 * The rate limit exists because an exporter's failures come in floods (a
 * collector down fails every batch): the first warning goes out, the next
 * minute's are only counted, and the count rides on the next warning that
 * does go out, so nothing is hidden without a trace of it.
 */
#include "exporter.h"

#include "util/clock.h"
#include "util/log.h"

#include <inttypes.h>
#include <stdio.h>

#define WARN_INTERVAL_NS (60 * 1000000000LL)

void exporter_free(exporter *e)
{
    if (e)
        e->free(e);
}

bool exporter_warn(exporter_warnings *w, const char *message, const char *where_key,
                   const char *where, const char *detail)
{
    int64_t now = clock_mono_ns();
    if (w->ever && now - w->last_ns < WARN_INTERVAL_NS) {
        w->suppressed++;
        return false;
    }
    w->ever = true;
    w->last_ns = now;
    char held[24];
    snprintf(held, sizeof held, "%" PRIu64, w->suppressed);
    w->suppressed = 0;
    log_warn(message, where_key, where, "detail", detail, "suppressed_warnings", held, NULL);
    return true;
}
