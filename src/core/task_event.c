/*
 * task_event — SSE frames of task changes; see task_event.h.
 *
 * The image is DynamoDB-shaped ({"status": {"S": "..."}}); only string
 * attributes are read. Strings that go into the frame are JSON-escaped, so a
 * status_msg holding a newline stays inside one data: line.
 */
#include "task_event.h"

#include "json_util.h"
#include "task.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* The S value of attribute name of an image, or NULL. */
static const char *image_str(json_t *image, const char *name)
{
    return json_string_value(json_object_get(json_object_get(image, name), "S"));
}

static bool copy_field(char *dst, size_t dstlen, const char *src)
{
    if (!src || strlen(src) >= dstlen)
        return false;
    memcpy(dst, src, strlen(src) + 1);
    return true;
}

task_event_rc task_event_from_row(const change_row *row, task_event *out)
{
    memset(out, 0, sizeof *out);
    bool removed = row->event_name && strcmp(row->event_name, "REMOVE") == 0;
    const char *text = removed ? row->old_image : row->new_image;
    if ((!text && !row->status) || !row->event_name || !row->task_id)
        return TASK_EVENT_NONE;
    bool nomem = false;
    json_t *image = row->status ? NULL : json_parse(text, strlen(text), 0, NULL, &nomem);
    if (nomem)
        return TASK_EVENT_NO_MEMORY;
    const char *type = row->status ? row->task_type : image_str(image, "task_type");
    const char *status = row->status ? row->status : image_str(image, "status");
    const char *msg = row->status ? row->status_msg : image_str(image, "status_msg");
    task_status parsed; /* one that is no status (a damaged row) tells no task */
    bool ok = task_status_parse(status, &parsed) &&
              copy_field(out->event, sizeof out->event, row->event_name) &&
              copy_field(out->id, sizeof out->id, row->task_id) &&
              copy_field(out->task_type, sizeof out->task_type, type) &&
              copy_field(out->status, sizeof out->status, status);
    if (ok)
        out->status_msg = strdup(msg ? msg : "");
    json_decref(image);
    if (!ok)
        return TASK_EVENT_NONE;
    if (!out->status_msg)
        return TASK_EVENT_NO_MEMORY;
    out->seq = row->seq;
    out->time = row->time;
    return TASK_EVENT_TOLD;
}

void task_event_clear(task_event *e)
{
    free(e->status_msg);
    e->status_msg = NULL;
}

bool task_event_matches(const task_event *e, const char *task_type, const char *status)
{
    return (!task_type || strcmp(task_type, e->task_type) == 0) &&
           (!status || strcmp(status, e->status) == 0);
}

void task_event_sse(sbuf *b, const task_event *e)
{
    sbuf_printf(b, "id: %lld\nevent: task\ndata: {\"seq\":%lld,\"id\":", (long long)e->seq,
                (long long)e->seq);
    sbuf_json_str(b, e->id);
    sbuf_puts(b, ",\"task_type\":");
    sbuf_json_str(b, e->task_type);
    sbuf_puts(b, ",\"status\":");
    sbuf_json_str(b, e->status);
    sbuf_puts(b, ",\"status_msg\":");
    sbuf_json_str(b, e->status_msg ? e->status_msg : "");
    sbuf_puts(b, ",\"time\":");
    task_time_iso(b, e->time);
    sbuf_puts(b, ",\"event\":");
    sbuf_json_str(b, e->event);
    sbuf_puts(b, "}\n\n");
}

void task_event_reset_sse(sbuf *b, int64_t oldest_seq, task_event_lost why)
{
    /* its id is the seq before oldest_seq: a client that reconnects before the next event
     * resumes there, instead of asking for the lost position (and its reset) again */
    sbuf_printf(b,
                "id: %lld\nevent: reset\ndata: {\"detail\":\"%s; reload, then follow from "
                "oldest_seq\",\"oldest_seq\":%lld}\n\n",
                (long long)(oldest_seq - 1),
                why == TASK_EVENT_TRIMMED
                    ? "Events after the requested id were trimmed from the change log"
                    : "The requested id is past the change log's newest event",
                (long long)oldest_seq);
}
