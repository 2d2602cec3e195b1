/*
 * sqs_event — reading one record of an SQS event; see sqs_event.h.
 */
#include "sqs_event.h"

#include "core/errbuf.h"
#include "core/json_util.h"
#include "core/uuid7.h"
#include "util/clock.h"
#include "util/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A message attribute's value: attrs.name.key as a string, or NULL. */
static const char *message_attribute(const json_t *attrs, const char *name, const char *key)
{
    return json_string_value(json_object_get(json_object_get(attrs, name), key));
}

/* attrs.name as a non-negative integer (SQS sends digits in a string), INT64_MAX for digits past
 * it, or fallback. */
static int64_t number_attribute(const json_t *attrs, const char *name, int64_t fallback)
{
    const json_t *v = json_object_get(attrs, name);
    if (json_is_integer(v))
        return json_integer_value(v) >= 0 ? json_integer_value(v) : fallback;
    const char *s = json_string_value(v);
    if (!s || *s < '0' || *s > '9')
        return fallback;
    char *end;
    errno = 0;
    long long n = strtoll(s, &end, 10);
    if (*end)
        return fallback;
    return errno == ERANGE ? INT64_MAX : (int64_t)n; /* no other errno: base 10, digits read */
}

/* Whether text is a JSON object, in *object; false when out of memory (it is not known). */
static bool is_json_object(const char *text, bool *object)
{
    bool nomem = false;
    json_t *doc = text ? json_parse(text, strlen(text), 0, NULL, &nomem) : NULL;
    *object = json_is_object(doc);
    json_decref(doc);
    return !nomem;
}

const char *sqs_queue_of_arn(const char *arn)
{
    if (!arn)
        return NULL;
    const char *colon = strrchr(arn, ':');
    return colon ? colon + 1 : arn;
}

/* Take the task's id, type and trace context from a set of attributes (key: the value's name). */
static void task_attributes(sqs_record *rec, const json_t *attrs, const char *key)
{
    const char *id = message_attribute(attrs, "TaskId", key);
    uint8_t raw[16];
    if (uuid_parse(id, raw))
        uuid_format(raw, rec->task_id); /* in lower case, as the store keeps ids */
    else if (id)
        rec->bad_task_id = true;
    rec->task_type = message_attribute(attrs, "TaskType", key);
    rec->traceparent = message_attribute(attrs, "traceparent", key);
    const char *tracestate[] = {message_attribute(attrs, "tracestate", key)};
    if (!tracectx_parse_tracestate(tracestate, 1, rec->tracestate))
        rec->tracestate[0] = '\0';
}

/* A record read only in part for want of memory: it must come back, so that SQS delivers it
 * again. */
static bool unread(sqs_record *rec)
{
    log_warn("out of memory reading a message; it will come back", "message_id", rec->message_id,
             NULL);
    rec->unread = true;
    return true;
}

bool sqs_record_read(const json_t *r, size_t i, sqs_record *rec, char *err, size_t errlen)
{
    memset(rec, 0, sizeof *rec);
    if (!json_is_object(r)) {
        errbuf_set(err, errlen, "Records[%zu] is not an object", i);
        return false;
    }
    rec->message_id = json_string_value(json_object_get(r, "messageId"));
    if (!rec->message_id || !*rec->message_id) {
        errbuf_set(err, errlen, "Records[%zu] has no messageId", i);
        return false;
    }
    const json_t *attrs = json_object_get(r, "attributes");
    int64_t count = number_attribute(attrs, "ApproximateReceiveCount", 1);
    rec->receive_count = count < 1 ? 1 : count > 1000000 ? 1000000 : (int)count;
    /* a time in milliseconds whose nanoseconds (the spans' unit) fit in 64 bits; else now */
    rec->sent_ms = number_attribute(attrs, "SentTimestamp", -1);
    if (rec->sent_ms < 0 || rec->sent_ms > SQS_SENT_MS_MAX)
        rec->sent_ms = clock_unix_ms();
    rec->xray = json_string_value(json_object_get(attrs, "AWSTraceHeader"));
    rec->source_arn = json_string_value(json_object_get(attrs, "DeadLetterQueueSourceArn"));

    const char *body = json_string_value(json_object_get(r, "body"));
    bool nomem = false;
    rec->body_doc = body ? json_parse(body, strlen(body), 0, NULL, &nomem) : NULL;
    if (nomem)
        return unread(rec); /* whether it names a task (an SNS envelope) is not known */
    if (json_is_object(rec->body_doc))
        rec->data = body;
    task_attributes(rec, json_object_get(r, "messageAttributes"), "stringValue");
    const json_t *env = rec->body_doc;
    const char *type = json_string_value(json_object_get(env, "Type"));
    const char *message = json_string_value(json_object_get(env, "Message"));
    if (!rec->task_id[0] && type && strcmp(type, "Notification") == 0 && message) {
        /* an SNS envelope (raw message delivery off): the message and its attributes inside */
        task_attributes(rec, json_object_get(env, "MessageAttributes"), "Value");
        bool object;
        if (!is_json_object(message, &object))
            return unread(rec); /* its data is not known */
        rec->data = object ? message : NULL;
    }
    rec->event_source_arn = json_string_value(json_object_get(r, "eventSourceARN"));
    return true;
}
