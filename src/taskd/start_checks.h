/*
 * What taskd says at start about its configuration against its database: messages no runner
 * will read, task types the database holds and the configuration no longer declares, task
 * types no subscription routes, queues routed to that nothing reads, dead-letter queues that
 * can never fill or keep messages no longer than their queue. Warnings and information only: each
 * is something an operator may mean, and taskd starts anyway.
 */
#ifndef TASKD_START_CHECKS_H
#define TASKD_START_CHECKS_H

#include "core/config.h"
#include "store/store.h"

/* Logs each finding, once; st is the open SQLite store taskd is about to serve. */
void start_checks_log(store *st, const config *c);

#endif
