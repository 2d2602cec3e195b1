/*
 * stream_event — the records of a DynamoDB stream event; see stream_event.h.
 */
#include "stream_event.h"

#include "core/errbuf.h"
#include "core/json_util.h"

#include <string.h>

/*
 * Why doc (NULL: not JSON, jansson's reason in jerr) has no Records array, in reason. The events
 * of sources that send no Records (Amazon MSK and other Kafka, Amazon MQ, DocumentDB) name their
 * eventSource, and eventSourceArn, at the top; an object's keys say what came (an EventBridge
 * event's source and detail-type, an API Gateway request's httpMethod), where its other values
 * might hold what no log should (an Authorization header, a message's body).
 */
static void no_records(json_t *doc, const json_error_t *jerr, char *reason, size_t reasonlen)
{
    if (!json_is_object(doc)) {
        errbuf_set(reason, reasonlen, "%s", doc ? "the event is not a JSON object" : jerr->text);
        return;
    }
    if (json_object_get(doc, "Records")) {
        errbuf_set(reason, reasonlen, "Records is not an array");
        return;
    }
    errbuf_set(reason, reasonlen, "no Records array");
    const char *source = json_string_value(json_object_get(doc, "eventSource"));
    const char *arn = json_string_value(json_object_get(doc, "eventSourceArn"));
    if (source && !errbuf_append(reason, reasonlen, "; eventSource %s%s%s", source,
                                 arn ? ", from " : "", arn ? arn : ""))
        return;
    const char *key, *sep = "; its keys: ";
    json_t *value;
    json_object_foreach(doc, key, value)
    {
        if (!errbuf_append(reason, reasonlen, "%s%s", sep, key))
            return;
        sep = ", ";
    }
}

/*
 * Whether record, at i in Records, is a stream record: one whose eventSource is a DynamoDB
 * stream's, or the recover role's (change_record.h). Else what it is in reason: a record of
 * another source, from a mapping or trigger pointed here by mistake, which the publisher would
 * pass over and the answer of success drop unread (an SQS queue's messages deleted).
 */
static bool stream_record(const json_t *record, size_t i, char *reason, size_t reasonlen)
{
    if (!json_is_object(record)) {
        errbuf_set(reason, reasonlen, "record %zu is not an object", i);
        return false;
    }
    const char *source = json_string_value(json_object_get(record, "eventSource"));
    if (source && (strcmp(source, "aws:dynamodb") == 0 || strcmp(source, "taskd:store") == 0))
        return true;
    /* SNS writes its own names: EventSource, and the subscription that sent the record */
    bool sns = !json_object_get(record, "eventSource") && json_object_get(record, "EventSource");
    const char *key = sns ? "EventSource" : "eventSource";
    source = json_string_value(json_object_get(record, key));
    const char *arn =
        json_string_value(json_object_get(record, sns ? "EventSubscriptionArn" : "eventSourceARN"));
    if (source && strcmp(source, "aws:s3") == 0) /* S3 names its bucket's ARN, in s3.bucket */
        arn = json_string_value(
            json_object_get(json_object_get(json_object_get(record, "s3"), "bucket"), "arn"));
    if (!source)
        errbuf_set(reason, reasonlen, "record %zu names no eventSource", i);
    else
        errbuf_set(reason, reasonlen, "record %zu has %s %s%s%s", i, key, source,
                   arn ? ", from " : "", arn ? arn : "");
    return false;
}

const json_t *stream_event_records(const char *event, size_t len, json_t **doc, char *reason,
                                   size_t reasonlen, bool *nomem)
{
    json_error_t jerr;
    bool no_memory;
    *doc = json_parse(event, len, 0, &jerr, &no_memory);
    if (nomem)
        *nomem = no_memory;
    if (no_memory) {
        errbuf_set(reason, reasonlen, "out of memory");
        return NULL;
    }
    const json_t *records = json_object_get(*doc, "Records");
    bool stream = json_is_array(records);
    if (!stream)
        no_records(*doc, &jerr, reason, reasonlen);
    for (size_t i = 0; stream && i < json_array_size(records); i++)
        stream = stream_record(json_array_get(records, i), i, reason, reasonlen);
    if (stream)
        return records;
    errbuf_one_line(reason, reasonlen); /* jansson quotes the text near the error; a key or a
                                         * source may hold a line break */
    return NULL;
}

publish_outcome stream_record_begin(const config *c, const consumer_config *cc,
                                    const json_t *record, size_t batch_size, publication *p)
{
    publish_outcome r = publisher_begin(c, cc, record, batch_size, p);
    if (r != PUBLISH_READY)
        return r;
    if (!publish_message_attributes(&p->message)) {
        publisher_finish(NULL, p, NULL); /* never sent: no spans */
        return PUBLISH_NO_MEMORY;
    }
    return PUBLISH_READY;
}
