/*
 * change_record — DynamoDB-Streams-shaped change records; see change_record.h.
 */
#include "change_record.h"

void change_record_write(sbuf *b, int64_t seq, const char *event, const char *task_id,
                         const char *new_image, const char *old_image, int64_t time)
{
    /* eventID: seq as 16 hex digits, written by hand (no printf on the stream's path) */
    static const char hex[] = "0123456789abcdef";
    char id[16];
    for (int i = 15, v = 0; i >= 0; i--, v += 4)
        id[i] = hex[((uint64_t)seq >> v) & 15];
    sbuf_puts(b, "{\"eventID\":\"");
    sbuf_append(b, id, sizeof id);
    sbuf_puts(b, "\",\"eventName\":");
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
    sbuf_puts(b, ",\"SequenceNumber\":\"");
    sbuf_int(b, seq);
    sbuf_puts(b, "\",\"StreamViewType\":\"NEW_AND_OLD_IMAGES\"}}");
}
