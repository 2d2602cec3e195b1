#include "taskd/start_checks.h"

#include "core/sbuf.h"
#include "pipeline/publisher.h"
#include "store/broker.h"
#include "store/store_sqlite.h"
#include "util/log.h"

#include <stdio.h>
#include <string.h>

/* Whether a handler binding takes from queue q. */
static bool has_handler(const config *c, const queue_config *q)
{
    for (size_t i = 0; i < c->n_handlers; i++)
        if (strcmp(c->handlers[i].queue, q->name) == 0)
            return true;
    return false;
}

/* Whether a subscription routes messages to queue q. */
static bool subscribed(const config *c, const queue_config *q)
{
    for (size_t i = 0; i < c->n_subscriptions; i++)
        if (strcmp(c->subscriptions[i].queue, q->name) == 0)
            return true;
    return false;
}

/* The messages queue name holds (0: none, or not known). */
static int64_t messages_held(broker *b, const char *name)
{
    char each[256];
    int64_t n;
    for (size_t i = 0; broker_queue_nth(b, i, each, sizeof each, &n); i++)
        if (strcmp(each, name) == 0)
            return n;
    return 0;
}

/* Messages no runner will read: in a queue the configuration no longer declares (removed or
 * renamed since), which /queues does not show either, or in a queue no handler takes from (its
 * binding removed since, say; a dead-letter queue's are dead letters, whose tasks failed). Their
 * tasks wait, CREATED or IN_PROGRESS, until a handler takes the queue again or their retention
 * ends. Said at start, once per queue. */
static void warn_stranded_queues(broker *b, const config *c)
{
    char name[256];
    int64_t n;
    for (size_t i = 0; broker_queue_nth(b, i, name, sizeof name, &n); i++) {
        const queue_config *q = config_queue(c, name);
        if (n <= 0 || (q && (has_handler(c, q) || config_dead_letter_source(c, q))))
            continue;
        char count[24];
        snprintf(count, sizeof count, "%lld", (long long)n);
        if (!q)
            log_warn("a queue the configuration does not declare holds messages; their tasks "
                     "(but dead letters', which failed) wait until it is declared again, or fail "
                     "when their retention ends",
                     "queue", name, "messages", count, NULL);
        else if (subscribed(c, q)) /* and warn_unread_queues() leaves it to this line */
            log_warn("a queue no handler takes from holds messages, and a subscription routes "
                     "more to it; their tasks wait until a handler is bound to it, or fail when "
                     "their retention ends (unless a client claimed them)",
                     "queue", name, "messages", count, NULL);
        else
            log_warn("a queue no handler takes from holds messages; their tasks wait until a "
                     "handler is bound to it, or fail when their retention ends",
                     "queue", name, "messages", count, NULL);
    }
}

/* Task types the database holds tasks of that the configuration no longer declares: their tasks
 * list and their messages run, but POST and ?task_type= refuse the type. Said at start. */
static void warn_undeclared_types(store *st, const config *c)
{
    char name[TASK_TYPE_MAX + 1];
    for (size_t i = 0; store_sqlite_task_type_nth(st, i, name, sizeof name); i++)
        if (!config_has_task_type(c, name))
            log_warn("the database holds tasks of a type the configuration does not declare: "
                     "they list and their messages run, but POST /tasks and ?task_type= refuse "
                     "the type until it is declared again",
                     "task_type", name, NULL);
}

/* A queue subscriptions route messages to that no handler takes from: its messages wait
 * unread until their retention ends, and then fail their tasks (unless a client claimed them).
 * Said at start, once per queue, unless it holds messages already (warn_stranded_queues() says
 * both). */
static void warn_unread_queues(broker *b, const config *c)
{
    for (size_t i = 0; i < c->n_subscriptions; i++) {
        const queue_config *q = config_queue(c, c->subscriptions[i].queue);
        bool said = false; /* by an earlier subscription to the same queue */
        for (size_t j = 0; j < i && !said; j++)
            said = strcmp(c->subscriptions[j].queue, c->subscriptions[i].queue) == 0;
        if (!q || has_handler(c, q) || said || messages_held(b, q->name) > 0)
            continue;
        log_warn("a subscription routes messages to a queue no handler takes from: they wait "
                 "unread, and fail their tasks when their retention ends (unless a client "
                 "claimed them)",
                 "queue", q->name, NULL);
    }
}

/* A dead-letter queue that can never hold a message: its queue is a dead-letter queue itself
 * (nothing receives from one, so nothing moves on), or never moves one (max_receive_count 0).
 * Said at start, not refused: its dead letters from before can still be redriven. And one that
 * keeps messages no longer than its queue: a dead letter keeps the age of its first send, as in
 * SQS, so one that waited long in its queue is dropped on arrival, its task failed by the move
 * with no dead letter left to redrive (the AWS deployment's checker refuses it). */
static void warn_dead_letter_queues(const config *c)
{
    for (size_t i = 0; i < c->n_queues; i++) {
        const queue_config *q = &c->queues[i];
        if (!*q->dead_letter_queue)
            continue;
        if (config_dead_letter_source(c, q))
            log_warn("a dead-letter queue has a dead-letter queue of its own: nothing receives "
                     "from a dead-letter queue, so nothing moves on to it",
                     "queue", q->name, "dead_letter_queue", q->dead_letter_queue, NULL);
        else if (q->max_receive_count == 0)
            log_warn("a queue with max_receive_count 0 moves no message to its dead-letter queue",
                     "queue", q->name, "dead_letter_queue", q->dead_letter_queue, NULL);
        else if (q->dead_letter_retention <= q->retention) {
            char kept[16], dead_kept[16];
            snprintf(kept, sizeof kept, "%u", q->retention);
            snprintf(dead_kept, sizeof dead_kept, "%u", q->dead_letter_retention);
            /* a queue kept the most leaves its dead-letter queue nothing longer to keep */
            const char *fix = q->retention >= CONFIG_RETENTION_MAX
                                  ? "give the queue a shorter retention"
                                  : "give the dead-letter queue a longer retention";
            log_warn("a dead-letter queue keeps messages no longer than the queue it serves: a "
                     "dead letter keeps the age of its first send, so one that waited long in "
                     "the queue is dropped on arrival and cannot be redriven",
                     "queue", q->name, "retention", kept, "dead_letter_queue", q->dead_letter_queue,
                     "dead_letter_retention", dead_kept, "fix", fix, NULL);
        }
    }
}

/* Task types the API accepts that no subscription routes to a queue, or none when no consumer
 * publishes at all: their tasks stay CREATED unless a client claims them. Said at start, in one
 * line: as information, since the defaults route TASK1 alone (SPEC), but a type added without a
 * route shows there. */
static void note_unrouted_types(const config *c)
{
    if (!publisher_may_publish_inserts(c)) {
        log_info("no stream consumer publishes new tasks: they stay CREATED unless a client "
                 "claims them",
                 NULL);
        return;
    }
    sbuf names = {0};
    for (size_t i = 0; i < c->n_task_types; i++) {
        if (topic_may_route_type(c, c->task_types[i]))
            continue;
        if (names.len)
            sbuf_puts(&names, ", ");
        sbuf_puts(&names, c->task_types[i]);
    }
    if (names.len && !names.failed)
        log_info("task types that no subscription routes to a queue; their tasks stay CREATED "
                 "unless a client claims them",
                 "task_types", names.data, NULL);
    sbuf_free(&names);
}

void start_checks_log(store *st, const config *c)
{
    warn_stranded_queues(broker_of(st), c);
    warn_undeclared_types(st, c);
    note_unrouted_types(c);
    warn_unread_queues(broker_of(st), c);
    warn_dead_letter_queues(c);
}
