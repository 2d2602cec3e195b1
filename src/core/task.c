/*
 * task — statuses, the PATCH state machine and the client JSON form.
 */
#include "task.h"

#include "sbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *const task_status_names[TASK_N_STATUSES] = {
    [TASK_CREATED] = "CREATED",
    [TASK_IN_PROGRESS] = "IN_PROGRESS",
    [TASK_COMPLETED] = "COMPLETED",
    [TASK_FAILED] = "FAILED",
};

const char *task_status_name(task_status s)
{
    if ((unsigned)s > TASK_FAILED)
        return "UNKNOWN";
    return task_status_names[s];
}

bool task_status_parse(const char *s, task_status *out)
{
    if (!s)
        return false;
    for (unsigned i = 0; i <= TASK_FAILED; i++) {
        if (strcmp(s, task_status_names[i]) == 0) {
            *out = (task_status)i;
            return true;
        }
    }
    return false;
}

bool task_status_is_final(task_status s)
{
    return s == TASK_COMPLETED || s == TASK_FAILED;
}

const char *task_creation_unfit(const char *task_id, const char *task_type)
{
    if (!task_id)
        return "its task has no id";
    if (!task_type)
        return "its task has no type";
    if (strlen(task_id) != TASK_ID_LEN)
        return "its task id is not 36 characters long";
    if (strlen(task_type) > TASK_TYPE_MAX)
        return "its task type is longer than 64 characters";
    return NULL;
}

void task_dead_letter_msg(char *out, size_t n, const char *dlq, unsigned receives)
{
    if (receives)
        snprintf(out, n, "moved to dead-letter queue %s after %u receive%s", dlq, receives,
                 receives == 1 ? "" : "s");
    else
        snprintf(out, n, "moved to dead-letter queue %s", dlq);
}

task_verdict task_decide(task_status cur, const char *cur_msg, task_status next,
                         const char *next_msg)
{
    if (cur == next) {
        bool same_msg = strcmp(cur_msg ? cur_msg : "", next_msg ? next_msg : "") == 0;
        return task_status_is_final(cur) && same_msg ? TASK_REPEAT : TASK_CONFLICT;
    }
    switch (cur) {
    case TASK_CREATED:
        return next == TASK_IN_PROGRESS || next == TASK_FAILED ? TASK_APPLY : TASK_CONFLICT;
    case TASK_IN_PROGRESS:
        return task_status_is_final(next) ? TASK_APPLY : TASK_CONFLICT;
    default:
        return TASK_CONFLICT;
    }
}

static void put_time(sbuf *b, int64_t t)
{
    if (t == TASK_NULL_TIME)
        sbuf_puts(b, "null");
    else
        sbuf_int(b, t);
}

void task_to_json(sbuf *b, const task *t, bool full)
{
    sbuf_puts(b, "{\"id\":");
    sbuf_json_str(b, t->id);
    sbuf_puts(b, ",\"task_type\":");
    sbuf_json_str(b, t->task_type);
    sbuf_puts(b, ",\"status\":\"");
    sbuf_puts(b, task_status_name(t->status));
    sbuf_puts(b, "\",\"status_msg\":");
    sbuf_json_str(b, t->status_msg ? t->status_msg : "");
    sbuf_puts(b, ",\"created_time\":");
    sbuf_int(b, t->created_time);
    sbuf_puts(b, ",\"updated_time\":");
    put_time(b, t->updated_time);
    sbuf_puts(b, ",\"ttl\":");
    put_time(b, t->ttl);
    if (full) {
        sbuf_puts(b, ",\"data\":");
        sbuf_puts(b, t->data ? t->data : "{}");
        sbuf_puts(b, ",\"result\":");
        sbuf_puts(b, t->result ? t->result : "null");
    }
    sbuf_putc(b, '}');
}

void task_clear(task *t)
{
    free(t->status_msg);
    free(t->data);
    free(t->result);
    free(t->trace);
    free(t->tracestate);
    free(t->claim_key);
    memset(t, 0, sizeof *t);
}

size_t task_history_msg_len(const char *msg)
{
    size_t n = strlen(msg);
    if (n <= TASK_HISTORY_MSG_MAX)
        return n;
    return utf8_cut(msg, TASK_HISTORY_MSG_MAX);
}

bool task_history_add(task_history *h, task_status status, const char *msg, int64_t time)
{
    task_history_entry *p = realloc(h->entries, (h->count + 1) * sizeof *p);
    if (!p)
        return false;
    h->entries = p;
    size_t n = task_history_msg_len(msg ? msg : "");
    char *copy = strndup(msg ? msg : "", n);
    if (!copy)
        return false;
    h->entries[h->count++] = (task_history_entry){status, copy, time};
    return true;
}

bool task_history_of_task(task_history *h, const task *t)
{
    h->truncated = true;
    bool ok = task_history_add(h, TASK_CREATED, "", t->created_time);
    if (ok && t->status != TASK_CREATED)
        ok =
            task_history_add(h, t->status, t->status_msg,
                             t->updated_time != TASK_NULL_TIME ? t->updated_time : t->created_time);
    return ok;
}

void task_time_iso_text(char out[32], int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, 32, "1970-01-01T00:00:00Z"); /* beyond any calendar */
}

void task_time_iso(sbuf *b, int64_t t)
{
    char text[32];
    task_time_iso_text(text, t);
    sbuf_json_str(b, text);
}

void task_history_to_json(sbuf *b, const char *id, const task_history *h)
{
    sbuf_puts(b, "{\"id\":");
    sbuf_json_str(b, id);
    sbuf_puts(b, ",\"history\":[");
    for (size_t i = 0; i < h->count; i++) {
        const task_history_entry *e = &h->entries[i];
        sbuf_puts(b, i ? ",{\"status\":\"" : "{\"status\":\"");
        sbuf_puts(b, task_status_name(e->status));
        sbuf_puts(b, "\",\"status_msg\":");
        sbuf_json_str(b, e->status_msg ? e->status_msg : "");
        sbuf_puts(b, ",\"time\":");
        task_time_iso(b, e->time);
        sbuf_putc(b, '}');
    }
    sbuf_puts(b, h->truncated ? "],\"truncated\":true}" : "],\"truncated\":false}");
}

void task_history_clear(task_history *h)
{
    for (size_t i = 0; i < h->count; i++)
        free(h->entries[i].status_msg);
    free(h->entries);
    memset(h, 0, sizeof *h);
}
