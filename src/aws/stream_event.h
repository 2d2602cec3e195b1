/*
 * stream_event — a DynamoDB stream event as the publish role reads it
 * (publish_role.h): its Records, and for each record the publication the
 * publisher begins (publisher.h: the consumer's filter patterns, the message
 * of a complete INSERT, its spans), with the message's attributes built as
 * SNS takes them. Pure: no SNS, no store.
 */
#ifndef TASKD_STREAM_EVENT_H
#define TASKD_STREAM_EVENT_H

#include "core/config.h"
#include "pipeline/publisher.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/*
 * The Records array of an event (len bytes), with the parsed event in *doc
 * (json_decref it; NULL when the event is not JSON). NULL when the event is
 * not a DynamoDB stream event, with why in reason, on one line (each control
 * character '?', as errbuf_one_line() makes it) and ending "..." where it is
 * cut to fit (errbuf_set()): jansson's message, "the event is not a JSON
 * object", "Records is not an array", "no Records array; eventSource
 * aws:kafka, from <its eventSourceArn>; its keys: ..." (the source an event
 * names at its top, with its ARN when it has one, and the event's keys,
 * never its other values: they say what came), or the first record that is
 * not a stream record (whose eventSource is aws:dynamodb, or taskd:store:
 * the recover role's, change_record.h): "record 0 has eventSource aws:sqs,
 * from <its eventSourceARN>" (SNS's: EventSource, from its
 * EventSubscriptionArn; S3's: from its s3.bucket.arn), "record 0 names no
 * eventSource", "record 0 is not an object". An event of another source
 * sent here by mistake is so refused whole, never passed over record by
 * record and answered as done, which would drop it unread. An event that
 * could not be parsed for want of memory is no fault of its own: NULL too,
 * reason "out of memory", and *nomem (nomem may be NULL) says which it was.
 */
const json_t *stream_event_records(const char *event, size_t len, json_t **doc, char *reason,
                                   size_t reasonlen, bool *nomem);

/*
 * Begin publishing record (one of the batch_size records of an event) for
 * consumer cc of c: publisher_begin(), then the message's attributes.
 * PUBLISH_READY with *p open (publisher_finish() it), PUBLISH_SKIPPED, or
 * PUBLISH_NO_MEMORY with nothing to finish.
 */
publish_outcome stream_record_begin(const config *c, const consumer_config *cc,
                                    const json_t *record, size_t batch_size, publication *p);

#endif
