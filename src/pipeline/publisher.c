/*
 * publisher — change record to topic message and spans, and topic fan-out;
 * see publisher.h.
 */
#include "publisher.h"

#include "core/attrval.h"
#include "core/json_util.h"
#include "core/sbuf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* record.dynamodb.NewImage.<name>.S, or NULL. */
static const char *image_string(const json_t *image, const char *name)
{
    return json_string_value(json_object_get(json_object_get(image, name), "S"));
}

static void put_attr(sbuf *b, bool first, const char *name, const char *value)
{
    if (!first)
        sbuf_putc(b, ',');
    sbuf_json_str(b, name);
    sbuf_puts(b, ":{\"Type\":\"String\",\"Value\":");
    sbuf_json_str(b, value);
    sbuf_putc(b, '}');
}

const char *const publish_attribute_names[] = {"TaskId", "TaskType", "traceparent", "tracestate",
                                               NULL};

bool publish_message_attributes(publish_message *m)
{
    sbuf a = {0};
    sbuf_putc(&a, '{');
    put_attr(&a, true, "TaskId", m->task_id);
    put_attr(&a, false, "TaskType", m->task_type);
    if (m->trace)
        put_attr(&a, false, "traceparent", m->trace);
    if (m->tracestate)
        put_attr(&a, false, "tracestate", m->tracestate);
    sbuf_putc(&a, '}');
    free(m->attributes);
    m->attributes = sbuf_failed(&a) ? NULL : sbuf_take(&a, NULL);
    sbuf_free(&a);
    return m->attributes != NULL;
}

/* The message for a created task's fields (its attributes are built on demand:
 * publish_message_attributes()): READY, UNREADABLE when they are incomplete or do not fit a task
 * (*why says why), NO_MEMORY; out holds something to free only when READY. */
static publish_outcome message_of(const publish_source *src, publish_message *out, const char **why)
{
    memset(out, 0, sizeof *out);
    *why = task_creation_unfit(src->task_id, src->task_type);
    if (!*why && !src->data)
        *why = "its task has no data";
    if (*why)
        return PUBLISH_UNREADABLE;
    memcpy(out->task_id, src->task_id, TASK_ID_LEN + 1);
    str_join(out->task_type, sizeof out->task_type, src->task_type, NULL);
    out->body = strdup(src->data);
    out->trace = src->trace ? strdup(src->trace) : NULL;
    /* a tracestate goes only with the traceparent it came with */
    out->tracestate = src->trace && src->tracestate ? strdup(src->tracestate) : NULL;
    if (out->body && (!src->trace || out->trace) &&
        (!src->trace || !src->tracestate || out->tracestate))
        return PUBLISH_READY;
    publish_message_free(out);
    return PUBLISH_NO_MEMORY;
}

/*
 * The message for an INSERT record, as message_of() makes it: READY, SKIPPED
 * when the record is not an INSERT, UNREADABLE (*why) when it is not a whole
 * one, NO_MEMORY.
 */
static publish_outcome make_message(const json_t *record, publish_message *out, const char **why)
{
    memset(out, 0, sizeof *out);
    *why = NULL;
    const char *event = json_string_value(json_object_get(record, "eventName"));
    if (!event || strcmp(event, "INSERT") != 0)
        return PUBLISH_SKIPPED;
    const json_t *image = json_object_get(json_object_get(record, "dynamodb"), "NewImage");
    const json_t *data_image = json_object_get(image, "data");
    errno = 0;
    json_t *data = attrval_to_json(data_image);
    if (!json_is_object(data)) {
        json_decref(data);
        /* out of memory, the data may be fine: the record is tried again, not skipped */
        if (!data && errno == ENOMEM)
            return PUBLISH_NO_MEMORY;
        *why = !image       ? "the record has no new image"
               : data_image ? "its task's data is not an object"
                            : "its task has no data";
        return PUBLISH_UNREADABLE;
    }
    char *text = json_to_text(data);
    json_decref(data);
    if (!text)
        return PUBLISH_NO_MEMORY;
    publish_source src = {image_string(image, "id"), image_string(image, "task_type"), text,
                          image_string(image, "trace"), image_string(image, "tracestate")};
    publish_outcome r = message_of(&src, out, why);
    free(text);
    return r;
}

bool publisher_message(const json_t *record, publish_message *out)
{
    const char *why;
    if (make_message(record, out, &why) != PUBLISH_READY)
        return false;
    if (publish_message_attributes(out))
        return true;
    publish_message_free(out);
    return false;
}

bool publish_message_set_trace(publish_message *m, const char *traceparent)
{
    char *copy = strdup(traceparent);
    if (!copy)
        return false;
    free(m->trace);
    m->trace = copy;
    return !m->attributes || publish_message_attributes(m); /* built before: again */
}

void publish_message_free(publish_message *m)
{
    free(m->body);
    free(m->attributes);
    free(m->trace);
    free(m->tracestate);
    m->body = m->attributes = m->trace = m->tracestate = NULL;
}

/* Whether m matches sub's policy in *match; false when out of memory. */
static bool subscription_matches(const subscription_config *sub, const publish_message *m,
                                 bool *match)
{
    *match = true;
    if (!sub->policy)
        return true;
    if (filter_policy_scope(sub->policy) == FILTER_SCOPE_BODY) {
        bool nomem;
        json_t *body = json_parse(m->body, strlen(m->body), 0, NULL, &nomem);
        *match = body && filter_policy_match_body(sub->policy, body);
        json_decref(body);
        return !nomem;
    }
    /* the attributes SNS matches the policy against: those the message carries */
    filter_attr attrs[4] = {{"TaskId", "String", m->task_id}, {"TaskType", "String", m->task_type}};
    size_t n = 2;
    if (m->trace)
        attrs[n++] = (filter_attr){"traceparent", "String", m->trace};
    if (m->tracestate)
        attrs[n++] = (filter_attr){"tracestate", "String", m->tracestate};
    *match = filter_policy_match_attrs(sub->policy, attrs, n);
    return true;
}

bool topic_route(const config *c, const publish_message *m, const queue_config **out, size_t max,
                 size_t *n)
{
    *n = 0;
    for (size_t i = 0; i < c->n_subscriptions && *n < max; i++) {
        const subscription_config *sub = &c->subscriptions[i];
        bool match;
        if (!subscription_matches(sub, m, &match))
            return false;
        if (!match)
            continue;
        const queue_config *q = config_queue(c, sub->queue);
        bool seen = false;
        for (size_t j = 0; j < *n && !seen; j++)
            seen = out[j] == q;
        if (q && !seen)
            out[(*n)++] = q;
    }
    return true;
}

bool publisher_may_publish_inserts(const config *c)
{
    for (size_t i = 0; i < c->n_consumers; i++)
        if (strcmp(c->consumers[i].action, "publish") == 0 &&
            filter_set_may_match_field(c->consumers[i].filter, "eventName", "INSERT"))
            return true;
    return false;
}

bool topic_may_route_type(const config *c, const char *task_type)
{
    for (size_t i = 0; i < c->n_subscriptions; i++) /* each names a declared queue (config.c) */
        if (filter_policy_may_match_attr(c->subscriptions[i].policy, "TaskType", task_type,
                                         publish_attribute_names))
            return true;
    return false;
}

/*
 * Open the record's spans in the task's trace — process (a consumer of the
 * change stream) and publish (the producer of the topic message) — and put
 * the producer's context in the message; false when out of memory.
 */
static bool open_spans(const config *c, const consumer_config *cc, size_t batch_size,
                       publication *p)
{
    trace_ctx task_ctx, ctx;
    const char *stored = p->message.trace;
    bool known = stored && tracectx_parse_traceparent(stored, &task_ctx);
    if (!known) { /* a new trace: the stored tracestate was not its */
        free(p->message.tracestate);
        p->message.tracestate = NULL;
    } else {
        task_ctx.tracestate = p->message.tracestate;
    }
    char name[SPAN_NAME_MAX + 1];
    str_join(name, sizeof name, "process ", cc->name, NULL);
    trace_begin(&p->process, known ? &task_ctx : NULL, name, SPAN_KIND_CONSUMER);
    span_set_static(&p->process, "messaging.system", "taskd");
    span_set_static(&p->process, "messaging.operation.name", "process");
    span_set_static(&p->process, "messaging.operation.type", "process");
    span_set_static(&p->process, "messaging.destination.name", "changes");
    span_set_static(&p->process, "messaging.consumer.group.name", cc->name);
    span_set_int(&p->process, "messaging.batch.message_count", (int64_t)batch_size);
    trace_ctx_of(&p->process, &ctx);
    str_join(name, sizeof name, "publish ", c->topic, NULL);
    trace_begin(&p->publish, &ctx, name, SPAN_KIND_PRODUCER);
    span_set_static(&p->publish, "messaging.system", c->topic_system ? c->topic_system : "taskd");
    span_set_static(&p->publish, "messaging.operation.name", "publish");
    span_set_static(&p->publish, "messaging.operation.type", "send");
    span_set_static(&p->publish, "messaging.destination.name", c->topic);
    span *both[2] = {&p->process, &p->publish};
    for (int k = 0; k < 2; k++) {
        memcpy(both[k]->task_id, p->message.task_id, sizeof both[k]->task_id);
        span_set_str(both[k], "task.id", p->message.task_id);
    }
    char tp[TRACECTX_TRACEPARENT_LEN + 1];
    trace_traceparent_of(&p->publish, tp);
    return publish_message_set_trace(&p->message, tp);
}

/* Open the spans of a publication whose message is made; false (all undone) without memory. */
static publish_outcome opened(const config *c, const consumer_config *cc, size_t batch_size,
                              publish_outcome made, publication *p)
{
    if (made == PUBLISH_READY && !open_spans(c, cc, batch_size, p)) {
        span_clear(&p->publish);
        span_clear(&p->process);
        publish_message_free(&p->message);
        return PUBLISH_NO_MEMORY;
    }
    return made;
}

publish_outcome publisher_begin(const config *c, const consumer_config *cc, const json_t *record,
                                size_t batch_size, publication *p)
{
    memset(p, 0, sizeof *p);
    if (!filter_set_match(cc->filter, record))
        return PUBLISH_SKIPPED;
    return opened(c, cc, batch_size, make_message(record, &p->message, &p->unreadable), p);
}

bool publisher_takes_fields(const consumer_config *cc)
{
    return filter_set_decided_by_field(cc->filter, "eventName");
}

publish_outcome publisher_begin_insert(const config *c, const consumer_config *cc,
                                       const publish_source *src, size_t batch_size, publication *p)
{
    memset(p, 0, sizeof *p);
    if (!filter_set_may_match_field(cc->filter, "eventName", "INSERT"))
        return PUBLISH_SKIPPED;
    return opened(c, cc, batch_size, message_of(src, &p->message, &p->unreadable), p);
}

bool publisher_route(const config *c, publication *p, const queue_config **out, size_t max,
                     size_t *n)
{
    if (!topic_route(c, &p->message, out, max, n))
        return false;
    if (*n == 1) {
        span_set_static(&p->publish, "taskd.queue", out[0]->name);
    } else if (*n > 1) { /* fanned out: every queue, in one attribute */
        sbuf queues = {0};
        for (size_t i = 0; i < *n; i++) {
            if (i)
                sbuf_putc(&queues, ',');
            sbuf_puts(&queues, out[i]->name);
        }
        if (!sbuf_failed(&queues))
            span_set_str(&p->publish, "taskd.queue", queues.data);
        sbuf_free(&queues);
    }
    return true;
}

void publisher_finish(const telemetry *t, publication *p, const char *error)
{
    if (error) {
        span_set_error(&p->publish, error);
        span_set_error(&p->process, error);
    }
    trace_end(t, &p->publish);
    trace_end(t, &p->process);
    publish_message_free(&p->message);
    memset(p, 0, sizeof *p);
}
