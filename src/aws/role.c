/*
 * role — helpers shared by the Lambda roles; see role.h.
 */
#include "role.h"

#include "core/errbuf.h"
#include "util/clock.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void role_fail(role_result *out, const char *type, const char *fmt, ...)
{
    free(out->response);
    out->response = NULL;
    out->response_len = 0;
    snprintf(out->error_type, sizeof out->error_type, "%s", type);
    va_list ap;
    va_start(ap, fmt);
    errbuf_vset(out->error_message, sizeof out->error_message, fmt, ap);
    va_end(ap);
    /* one line, whatever a parser's message brought in: it is logged and sent to Lambda */
    errbuf_one_line(out->error_message, sizeof out->error_message);
}

void role_respond(role_result *out, sbuf *b)
{
    if (sbuf_failed(b)) {
        /* Lambda's type for a shortage; text that could not be formatted is taskd's own fault */
        role_fail(out, sbuf_error(b) == ENOMEM ? "Runtime.OutOfMemory" : "Runtime.EncodeError",
                  "cannot encode the response: %s", sbuf_error_text(b));
        sbuf_free(b);
        return;
    }
    out->response = b->data;
    out->response_len = b->len;
    *b = (sbuf){0};
}

void role_result_clear(role_result *out)
{
    free(out->response);
    memset(out, 0, sizeof *out);
}

int64_t role_ms_left(const lambda_invocation *inv)
{
    return inv->deadline_ms ? inv->deadline_ms - clock_unix_ms() : INT64_MAX;
}

store_rc role_fail_task(store *s, const telemetry *tel, const span *parent, const char *id,
                        const char *why, bool from_created)
{
    trace_ctx ctx;
    span update;
    trace_ctx_of(parent, &ctx);
    trace_begin(&update, &ctx, "UPDATE tasks", SPAN_KIND_CLIENT);
    snprintf(update.task_id, sizeof update.task_id, "%s", id);
    span_set_static(&update, "db.system", s->ops->system);
    span_set_static(&update, "db.operation.name", "UPDATE");
    span_set_static(&update, "db.collection.name", "tasks");
    span_set_static(&update, "task.status", "FAILED");
    span_set_str(&update, "task.id", id);
    store_write fail = {
        .kind = STORE_WRITE_UPDATE,
        .now = (int64_t)time(NULL),
        .update = {.id = id,
                   .status = TASK_FAILED,
                   .status_msg = why,
                   .from_created = from_created},
    };
    store_rc rc = store_write_wait(s, &fail);
    task_clear(&fail.current);
    if (rc != STORE_OK && rc != STORE_REPEAT)
        span_set_error(&update, store_rc_name(rc));
    store_trace_write(s, &fail, &update);
    trace_end(tel, &update);
    return rc;
}
