/*
 * task_event — one task status change as GET /events sends it: a
 * Server-Sent Event built from a row of the change log.
 *
 *   id: 123
 *   event: task
 *   data: {"seq":123,"id":"...","task_type":"TASK1","status":"IN_PROGRESS",
 *          "status_msg":"Task started","time":"2026-01-02T03:04:05Z","event":"MODIFY"}
 *
 * The fields come from the record's new image, or from its old image for a
 * REMOVE (a ttl delete). Pure: no I/O.
 */
#ifndef TASKD_TASK_EVENT_H
#define TASKD_TASK_EVENT_H

#include "sbuf.h"

#include <stdbool.h>
#include <stdint.h>

#define TASK_EVENT_FIELD_MAX 64 /* task types are at most 64 characters */

/* A change-log row as the store keeps it; strings borrowed (images may be NULL). */
typedef struct change_row {
    int64_t seq;
    const char *event_name; /* INSERT, MODIFY or REMOVE */
    const char *task_id;
    const char *new_image; /* AttributeValue JSON of the item, or NULL */
    const char *old_image;
    int64_t time; /* Unix seconds of the change */
    /* the event's fields when the row keeps them apart (then its images may be NULL), or NULL:
     * read from the image */
    const char *task_type, *status, *status_msg;
} change_row;

/* The fields of one event, read from a row's image. */
typedef struct task_event {
    int64_t seq;
    char event[8]; /* INSERT, MODIFY, REMOVE */
    char id[37];
    char task_type[TASK_EVENT_FIELD_MAX + 1];
    char status[16];
    char *status_msg; /* owned */
    int64_t time;
} task_event;

/* What task_event_from_row() found. */
typedef enum {
    TASK_EVENT_TOLD,     /* the row's event is in out */
    TASK_EVENT_NONE,     /* the row has none: its image is missing or malformed, or its status is
                          * none (a damaged row) */
    TASK_EVENT_NO_MEMORY /* no memory to read it: the row may have one, read it again later */
} task_event_rc;

/* Read the event of a row into out (cleared with task_event_clear() when TASK_EVENT_TOLD). */
task_event_rc task_event_from_row(const change_row *row, task_event *out);
/* Release what task_event_from_row() allocated. */
void task_event_clear(task_event *e);
/* Whether e passes the filters (NULL: any). */
bool task_event_matches(const task_event *e, const char *task_type, const char *status);
/* Append the event's SSE frame: id, event: task, data (one JSON line), blank line. */
void task_event_sse(sbuf *b, const task_event *e);
/* Why a client's position cannot be resumed: its records were trimmed from the change log, or it
 * is past the log's newest record (a position of another database, or of this one before it was
 * restored from an older copy). */
typedef enum { TASK_EVENT_TRIMMED, TASK_EVENT_UNKNOWN } task_event_lost;
/* Append the SSE frame telling a client its position is lost (why): id (oldest_seq - 1, where a
 * reconnect resumes), event: reset, data with detail and oldest_seq, the first seq it will get
 * next. */
void task_event_reset_sse(sbuf *b, int64_t oldest_seq, task_event_lost why);

#endif
