/*
 * task — statuses, the PATCH state machine and the client JSON form.
 */
#include "task.h"

#include <stdlib.h>
#include <string.h>

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
    memset(t, 0, sizeof *t);
}
