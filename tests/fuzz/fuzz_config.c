/*
 * fuzz_config — the configuration file loader (core/config.h), through its
 * buffer API config_load_text, over the defaults as taskd and bootstrap do.
 * The file is trusted more than a request, but it is hand-written, and it
 * carries filter patterns and policies, handler commands and limits.
 *
 * Invariants: a failed load leaves a one-line, non-empty message; a loaded
 * configuration is within its bounds (counts <= the arrays, names terminated,
 * every subscription and handler names a configured queue, every dead-letter
 * queue exists) and its task types are found by config_has_task_type;
 * config_free releases everything (LeakSanitizer checks), also after a failure.
 *
 * Its first finding is a seed of the corpus (regress-*): a filter key with a
 * newline put that newline in the one-line message.
 *
 * Run: scripts/fuzz.sh config   (corpus: tests/fuzz/corpus/config/)
 */
#include "fuzz_util.h"

#include "core/config.h"

static void check_name(const char *s, const char *what)
{
    FUZZ_CHECK(strnlen(s, CONFIG_NAME_MAX + 1) <= CONFIG_NAME_MAX, "%s not terminated", what);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_strdup(data, size);
    config c;
    memset(&c, 0, sizeof c);
    FUZZ_CHECK(config_defaults(&c), "config_defaults failed");
    char err[512];
    err[0] = 'X';
    err[1] = '\0';
    if (config_load_text(&c, text, "fuzz.json", err, sizeof err)) {
        FUZZ_CHECK(c.n_task_types <= CONFIG_MAX_TASK_TYPES && c.n_queues <= CONFIG_MAX_ITEMS &&
                       c.n_subscriptions <= CONFIG_MAX_ITEMS && c.n_consumers <= CONFIG_MAX_ITEMS &&
                       c.n_handlers <= CONFIG_MAX_ITEMS,
                   "counts out of bounds");
        for (size_t i = 0; i < c.n_task_types; i++)
            FUZZ_CHECK(c.task_types[i] && config_has_task_type(&c, c.task_types[i]),
                       "task type %zu not found", i);
        check_name(c.topic, "topic");
        for (size_t i = 0; i < c.n_queues; i++) {
            check_name(c.queues[i].name, "queue name");
            check_name(c.queues[i].dead_letter_queue, "dead_letter_queue");
            FUZZ_CHECK(config_queue(&c, c.queues[i].name) != NULL, "queue %s not found",
                       c.queues[i].name);
            if (c.queues[i].dead_letter_queue[0])
                FUZZ_CHECK(config_queue(&c, c.queues[i].dead_letter_queue) != NULL,
                           "dead-letter queue %s of %s not configured",
                           c.queues[i].dead_letter_queue, c.queues[i].name);
        }
        for (size_t i = 0; i < c.n_subscriptions; i++) {
            check_name(c.subscriptions[i].queue, "subscription queue");
            FUZZ_CHECK(config_queue(&c, c.subscriptions[i].queue) != NULL,
                       "subscription to unknown queue %s", c.subscriptions[i].queue);
        }
        for (size_t i = 0; i < c.n_consumers; i++) {
            check_name(c.consumers[i].name, "consumer name");
            check_name(c.consumers[i].action, "consumer action");
        }
        for (size_t i = 0; i < c.n_handlers; i++) {
            check_name(c.handlers[i].queue, "handler queue");
            check_name(c.handlers[i].handler, "handler name");
            const queue_config *q = config_queue(&c, c.handlers[i].queue);
            FUZZ_CHECK(q != NULL, "handler on unknown queue %s", c.handlers[i].queue);
            FUZZ_CHECK(c.handlers[i].timeout <= q->visibility_timeout,
                       "handler timeout beyond its queue's visibility timeout");
        }
        FUZZ_CHECK(!config_queue(&c, "\x01no such queue"), "config_queue found nonsense");
    } else {
        FUZZ_CHECK(strnlen(err, sizeof err) < sizeof err && err[0] != '\0' && strcmp(err, "X") != 0,
                   "failed without a message");
        FUZZ_CHECK(!strchr(err, '\n'), "message is not one line: %s", err);
    }
    config_free(&c);
    free(text);
    return 0;
}
