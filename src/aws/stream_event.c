/*
 * stream_event — the records of a DynamoDB stream event; see stream_event.h.
 */
#include "stream_event.h"

#include "core/errbuf.h"

#include <stdio.h>

const json_t *stream_event_records(const char *event, size_t len, json_t **doc, char *reason,
                                   size_t reasonlen)
{
    json_error_t jerr;
    *doc = json_loadb(event, len, 0, &jerr);
    const json_t *records = json_object_get(*doc, "Records");
    if (json_is_array(records))
        return records;
    snprintf(reason, reasonlen, "%s",
             !*doc                  ? jerr.text
             : json_is_object(*doc) ? "no Records array"
                                    : "the event is not a JSON object");
    errbuf_one_line(reason, reasonlen); /* jansson quotes the text near the error */
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
