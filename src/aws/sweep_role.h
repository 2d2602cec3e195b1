/*
 * sweep_role — the `sweep` Lambda role: the AWS deployment's housekeeping, run by a schedule
 * (serverless.yml: an EventBridge rule, every minute). It ends the leases of client claims that
 * ran out (store_end_expired_claims(): each such task FAILED, "claim expired: ..."), as taskd's
 * own sweep does; DynamoDB's TTL deletes finished tasks by itself, and messages expire in SQS.
 *
 * The event is not read (a scheduled event, or any other, starts a sweep). The answer is
 * {"ended": N, "more": true|false}: more when it stopped for the invocation's deadline with
 * leases left to end, which the next run takes. A store that fails fails the invocation
 * (Store.Busy or Store.Error), after what was ended until then.
 */
#ifndef TASKD_SWEEP_ROLE_H
#define TASKD_SWEEP_ROLE_H

#include "role.h"
#include "store/store.h"
#include "util/metrics.h"

#include <stdint.h>

/* The role over a store (borrowed), counting in metrics m (borrowed; NULL: none); now() gives
 * Unix seconds (NULL: the wall clock). NULL with err when out of memory. */
role *sweep_role_new(store *s, metrics *m, int64_t (*now)(void), char *err, size_t errlen);

#endif
