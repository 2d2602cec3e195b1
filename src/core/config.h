/*
 * config — the product configuration: what tasks exist and the limits the
 * API enforces. Loaded from a JSON file (see README "Configuration"); every
 * field has a default, so no file at all reproduces the seed.
 *
 * Process settings (listen address, database path, sync mode) are not here:
 * they are flags of the program that runs the API.
 */
#ifndef TASKD_CONFIG_H
#define TASKD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_MAX_TASK_TYPES 64

typedef struct config {
    char *task_types[CONFIG_MAX_TASK_TYPES]; /* owned names */
    size_t n_task_types;
    size_t body_limit;       /* largest accepted request body, bytes */
    int64_t retention_grace; /* seconds a finished task is kept past its ttl */
} config;

/* Fill in the defaults: TASK1..TASK3, 256 KiB bodies, 1 h grace. */
bool config_defaults(config *c);
/*
 * Load a JSON configuration file over the defaults. Unknown keys and wrong
 * types are errors; on failure err holds one line naming the fault.
 */
bool config_load_file(config *c, const char *path, char *err, size_t errlen);
/* Same, from JSON text (name is used in messages). */
bool config_load_text(config *c, const char *text, const char *name, char *err, size_t errlen);
/* True if name is a configured task type. */
bool config_has_task_type(const config *c, const char *name);
/* Release the owned strings. */
void config_free(config *c);

#endif
