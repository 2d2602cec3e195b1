/*
 * sweep_role — client claims' leases ended on a schedule; see sweep_role.h.
 */
#include "sweep_role.h"

#include "core/errbuf.h"
#include "core/sbuf.h"
#include "util/clock.h"
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>

/* Leases ended per step: one Query of the index, then one UpdateItem each */
#define SWEEP_STEP 100
/* No new step when less than this is left before the invocation's deadline */
#define STEP_RESERVE_MS 5000

typedef struct sweep_role {
    role base;
    store *store;
    metrics *metrics;
    int64_t (*now)(void);
} sweep_role;

static void sweep_invoke(role *r, const lambda_invocation *inv, role_result *out)
{
    sweep_role *sr = (sweep_role *)r;
    size_t total = 0;
    bool more = true;
    store_rc rc = STORE_OK;
    while (more && rc == STORE_OK && role_ms_left(inv) > STEP_RESERVE_MS) {
        size_t ended = 0;
        rc = store_end_expired_claims(sr->store, sr->now(), SWEEP_STEP, &ended, &more, sr->metrics);
        total += ended;
    }
    char n[24];
    snprintf(n, sizeof n, "%zu", total);
    if (rc != STORE_OK) {
        log_warn("ending expired claims failed; the next run tries again", "error",
                 store_rc_name(rc), "ended", n, NULL);
        role_fail(out, rc == STORE_BUSY ? "Store.Busy" : "Store.Error",
                  "ending expired claims failed (%s) after %zu ended", store_rc_name(rc), total);
        return;
    }
    if (total)
        log_info("expired claims ended", "count", n, NULL);
    sbuf b = {0};
    sbuf_printf(&b, "{\"ended\":%zu,\"more\":%s}", total, more ? "true" : "false");
    role_respond(out, &b);
}

static void sweep_role_free(role *r)
{
    free(r);
}

role *sweep_role_new(store *s, metrics *m, int64_t (*now)(void), char *err, size_t errlen)
{
    sweep_role *sr = calloc(1, sizeof *sr);
    if (!sr) {
        errbuf_set(err, errlen, "out of memory");
        return NULL;
    }
    *sr = (sweep_role){.base = {.name = "sweep", .invoke = sweep_invoke, .free = sweep_role_free},
                       .store = s,
                       .metrics = m,
                       .now = now ? now : clock_unix_s};
    return &sr->base;
}
