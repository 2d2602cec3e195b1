/*
 * store_sqlite — the store port on an embedded SQLite database (WAL mode).
 *
 * Writes go through one writer thread that commits many callers' writes in
 * one transaction (group commit): a caller's write returns only after the
 * transaction holding it is durable, yet one fsync serves the whole batch.
 * Reads use a pool of read-only connections and never wait for the writer.
 * Only this adapter includes sqlite3.h.
 */
#ifndef TASKD_STORE_SQLITE_H
#define TASKD_STORE_SQLITE_H

#include "core/config.h"
#include "store.h"

#include <stdbool.h>
#include <stddef.h>

typedef enum store_sync {
    STORE_SYNC_FULL,   /* fsync every commit: a 2xx survives power loss */
    STORE_SYNC_NORMAL, /* fsync at checkpoints: survives a process crash, not power loss */
} store_sync;

typedef struct store_sqlite_options {
    const char *path; /* database file */
    store_sync sync;
    int busy_timeout_ms;            /* how long a write waits for a lock before STORE_BUSY */
    const store_listener *listener; /* told of commits (copied); may be NULL */
    /* The configuration, read at open for what the wall clock going back left in the queues;
     * NULL: not known, and only where the last stop noted the queue clock tells (nothing is
     * unhidden). Its queues' retention tells that the clock went back after a crash, and the
     * messages' times move back with it. The longest any message is hidden ahead of now (a
     * queue's visibility timeout or delay, a handler's timeout, with a minute to spare) bounds
     * what is still hidden: a message hidden further ahead is made visible, since the clock went
     * back after it was hidden, which would strand its task that long. */
    const config *config;
} store_sqlite_options;

/*
 * Open (creating or migrating) the database and start the writer. Fails if
 * another process already serves the same database. NULL with a one-line
 * reason in err on failure.
 */
store *store_sqlite_open(const store_sqlite_options *o, char *err, size_t errlen);
/* The i-th task type the database holds tasks of (held at open, or created since), into out;
 * false past the last. s is a store store_sqlite_open() made. */
bool store_sqlite_task_type_nth(store *s, size_t i, char *out, size_t len);

#endif
