/*
 * change_record — DynamoDB-Streams-shaped change records; see change_record.h.
 */
#include "change_record.h"

void change_record_write(sbuf *b, int64_t seq, const char *event, const char *task_id,
                         const char *new_image, const char *old_image, int64_t time)
{
    sbuf_printf(b, "{\"eventID\":\"%016llx\",\"eventName\":", (unsigned long long)seq);
    sbuf_json_str(b, event);
    sbuf_puts(b, ",\"eventVersion\":\"1.1\",\"eventSource\":\"taskd:store\","
                 "\"dynamodb\":{\"ApproximateCreationDateTime\":");
    sbuf_int(b, time);
    sbuf_puts(b, ",\"Keys\":{\"id\":{\"S\":");
    sbuf_json_str(b, task_id);
    sbuf_puts(b, "}}");
    if (new_image) {
        sbuf_puts(b, ",\"NewImage\":");
        sbuf_puts(b, new_image);
    }
    if (old_image) {
        sbuf_puts(b, ",\"OldImage\":");
        sbuf_puts(b, old_image);
    }
    sbuf_printf(b, ",\"SequenceNumber\":\"%lld\",\"StreamViewType\":\"NEW_AND_OLD_IMAGES\"}}",
                (long long)seq);
}
