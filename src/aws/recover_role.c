/*
 * recover_role — the new tasks of stream records dropped unpublished, published again; see
 * recover_role.h.
 */
#include "recover_role.h"

#include "core/attrval.h"
#include "core/change_record.h"
#include "core/errbuf.h"
#include "core/json_util.h"
#include "core/sbuf.h"
#include "core/uuid7.h"
#include "publish_role.h"
#include "sqs_event.h"
#include "util/clock.h"
#include "util/log.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* No new page when less than this is left before the invocation's deadline */
#define PAGE_RESERVE_MS 3000

typedef struct recover_role {
    role base;
    const config *cfg; /* borrowed: the task types */
    store *tasks;
    role *publish;
} recover_role;

/* How far a message's window got. */
typedef enum outcome {
    OUT_DONE,   /* every task of it still CREATED was published */
    OUT_FAILED, /* the store or the publish role failed: the message comes back */
} outcome;

/* ---- the window ------------------------------------------------------------ */

/* n decimal digits at s as a number, or -1. */
static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* "YYYY-MM-DDTHH:MM:SS[.fraction]Z" as Unix milliseconds; false for anything else. */
static bool iso_ms(const char *s, int64_t *out)
{
    if (!s || strlen(s) < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
        s[16] != ':')
        return false;
    int year = digits(s, 4), mon = digits(s + 5, 2), day = digits(s + 8, 2);
    int hour = digits(s + 11, 2), min = digits(s + 14, 2), sec = digits(s + 17, 2);
    if (year < 1970 || mon < 1 || mon > 12 || day < 1 || day > 31 || hour < 0 || hour > 23 ||
        min < 0 || min > 59 || sec < 0 || sec > 60)
        return false;
    const char *p = s + 19;
    int ms = 0, k = 0;
    if (*p == '.') {
        for (p++; *p >= '0' && *p <= '9'; p++, k++)
            if (k < 3)
                ms = ms * 10 + (*p - '0');
        if (k == 0)
            return false;
        for (; k < 3; k++)
            ms *= 10;
    }
    if (strcmp(p, "Z") != 0)
        return false;
    struct tm tm = {.tm_year = year - 1900,
                    .tm_mon = mon - 1,
                    .tm_mday = day,
                    .tm_hour = hour,
                    .tm_min = min,
                    .tm_sec = sec};
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return false;
    *out = (int64_t)t * 1000 + ms;
    return true;
}

bool recover_window(const json_t *body, int64_t *first_ms, int64_t *last_ms, char *why,
                    size_t whylen)
{
    const json_t *info = json_object_get(body, "DDBStreamBatchInfo");
    bool read = false;
    if (!body)
        snprintf(why, whylen, "the body is not JSON");
    else if (!json_is_object(info))
        snprintf(why, whylen, "the body has no DDBStreamBatchInfo object");
    else if (!iso_ms(json_string_value(json_object_get(info, "approximateArrivalOfFirstRecord")),
                     first_ms) ||
             !iso_ms(json_string_value(json_object_get(info, "approximateArrivalOfLastRecord")),
                     last_ms))
        snprintf(why, whylen,
                 "DDBStreamBatchInfo has no approximateArrivalOfFirstRecord and "
                 "approximateArrivalOfLastRecord as UTC times (2026-12-05T06:00:00Z)");
    else if (*last_ms < *first_ms)
        snprintf(why, whylen, "its last record arrived before its first");
    else
        read = true;
    return read;
}

/* ---- publishing again ------------------------------------------------------ */

/* Whether a publish role's answer reports no record failed. */
static bool published_all(const char *response, size_t len)
{
    json_t *doc = json_loadb(response, len, 0, NULL);
    const json_t *failures = json_object_get(doc, "batchItemFailures");
    bool all = json_is_array(failures) && json_array_size(failures) == 0;
    json_decref(doc);
    return all;
}

/* Hand the stream event in ev to the publish role, in this invocation's time; true when it
 * published (or passed over) every record. */
static bool publish_event(recover_role *rr, const lambda_invocation *inv, const sbuf *ev)
{
    lambda_invocation sub = *inv; /* its deadline and trace; the event is ev (borrowed) */
    sub.event = ev->data;
    sub.event_len = ev->len;
    role_result res = {0};
    rr->publish->invoke(rr->publish, &sub, &res);
    bool all = res.response && published_all(res.response, res.response_len);
    if (!res.response)
        log_warn("publishing stranded tasks failed", "error_type", res.error_type, "error",
                 res.error_message, NULL);
    role_result_clear(&res);
    return all;
}

/* Append the INSERT record of task id to ev (the n-th: its sequence number) when the task is
 * still CREATED; *added tells whether it was. */
static outcome add_record(recover_role *rr, sbuf *ev, const char *id, size_t n, bool *added)
{
    *added = false;
    task t;
    store_rc rc = store_get_task(rr->tasks, id, &t);
    if (rc == STORE_NOT_FOUND)
        return OUT_DONE; /* gone meanwhile (its ttl) */
    if (rc != STORE_OK) {
        log_warn("reading a stranded task failed", "task_id", id, "error", store_rc_name(rc), NULL);
        return OUT_FAILED;
    }
    outcome o = OUT_DONE;
    if (t.status == TASK_CREATED) { /* not claimed meanwhile */
        sbuf image = {0};
        bool json = attrval_task_image(&image, &t, NULL);
        if (sbuf_failed(&image)) {
            o = OUT_FAILED; /* out of memory: the message comes back */
        } else if (!json) { /* stored data that is not JSON: no retry would make its record */
            log_error("a stranded task's record cannot be made: its data is not JSON; passed over",
                      "task_id", id, NULL);
        } else {
            if (n > 1)
                sbuf_putc(ev, ',');
            change_record_write(ev, (int64_t)n, "INSERT", t.id, image.data, NULL, t.created_time);
            *added = true;
        }
        sbuf_free(&image);
    }
    task_clear(&t);
    return o;
}

/* Where the listing of one task type in a window stands. */
typedef struct cursor {
    const char *task_type;
    char before[TASK_ID_LEN + 1]; /* the next page's ids are below this one */
    bool done;                    /* no page left: every task of the type in the window seen */
} cursor;

/*
 * Publish again the next page of c's type: its tasks still CREATED whose ids are at least lo
 * and below c->before, newest first, as one event for the publish role. c moves past the page
 * (done after the last); *count grows by the records handed over.
 */
static outcome recover_page(recover_role *rr, const lambda_invocation *inv, cursor *c,
                            const char *lo, size_t *count)
{
    store_list_query q = {.before_id = c->before,
                          .status = "CREATED",
                          .task_type = c->task_type,
                          .limit = RECOVER_BATCH};
    store_page page;
    store_rc rc = store_list_tasks(rr->tasks, &q, &page);
    if (rc != STORE_OK) {
        /* the AWS calls' deadline (before the invocation's) passed: the page was cut by it, not
         * refused by the store */
        int64_t calls_until = aws_deadline();
        if (calls_until > 0 && clock_unix_ms() >= calls_until)
            log_warn("the invocation's time ran out listing stranded tasks; the message comes "
                     "back",
                     "task_type", c->task_type, "error", store_rc_name(rc), NULL);
        else
            log_warn("listing stranded tasks failed", "task_type", c->task_type, "error",
                     store_rc_name(rc), NULL);
        return OUT_FAILED;
    }
    sbuf ev = {0};
    sbuf_puts(&ev, "{\"Records\":[");
    size_t n = 0;
    bool past = false; /* a task older than the window */
    outcome o = OUT_DONE;
    for (size_t i = 0; i < page.count && o == OUT_DONE; i++) {
        if ((past = strcmp(page.tasks[i].id, lo) < 0))
            break;
        bool added = false;
        o = add_record(rr, &ev, page.tasks[i].id, n + 1, &added);
        n += added;
    }
    c->done = !page.more || page.count == 0 || past;
    if (page.count > 0)
        memcpy(c->before, page.tasks[page.count - 1].id, sizeof c->before);
    store_page_free(&page);
    sbuf_puts(&ev, "]}");
    if (o == OUT_DONE && n > 0) {
        if (sbuf_failed(&ev) || !publish_event(rr, inv, &ev))
            o = OUT_FAILED;
        else
            *count += n;
    }
    sbuf_free(&ev);
    return o;
}

/*
 * Publish again the tasks of every configured type still CREATED whose ids are at least lo and
 * below below: a page of each type in turn, so that a type with many such tasks (one no
 * subscription takes stays CREATED, and is listed again at each delivery of the message) does
 * not spend the invocation's time before the others have theirs.
 */
static outcome recover_types(recover_role *rr, const lambda_invocation *inv, const char *lo,
                             const char *below, size_t *count)
{
    size_t n = rr->cfg->n_task_types;
    cursor *cursors = calloc(n ? n : 1, sizeof *cursors);
    if (!cursors)
        return OUT_FAILED; /* out of memory: the message comes back */
    for (size_t i = 0; i < n; i++) {
        cursors[i].task_type = rr->cfg->task_types[i];
        snprintf(cursors[i].before, sizeof cursors[i].before, "%s", below);
    }
    outcome o = OUT_DONE;
    for (bool more = true; more && o == OUT_DONE;) {
        more = false;
        for (size_t i = 0; i < n && o == OUT_DONE; i++) {
            if (cursors[i].done)
                continue;
            const int64_t left_ms = role_ms_left(inv);
            if (left_ms > PAGE_RESERVE_MS) {
                o = recover_page(rr, inv, &cursors[i], lo, count);
            } else {
                char left[24];
                snprintf(left, sizeof left, "%lld", (long long)left_ms);
                log_warn("too little time left in the invocation for another page of stranded "
                         "tasks; the message comes back",
                         "task_type", cursors[i].task_type, "time_left_ms", left, NULL);
                o = OUT_FAILED;
            }
            more = more || !cursors[i].done;
        }
    }
    free(cursors);
    return o;
}

/* One publish-failures message (its body parsed, sqs_event.h): the tasks of its window
 * published again. */
static outcome recover_message(recover_role *rr, const lambda_invocation *inv, const sqs_record *m)
{
    if (m->unread)
        return OUT_FAILED; /* its body not parsed for want of memory: it comes back */
    const char *message_id = m->message_id;
    int64_t first, last;
    char why[200];
    if (!recover_window(m->body_doc, &first, &last, why, sizeof why)) {
        log_error("a publish-failures message that reports no stream batch; dropped", "message_id",
                  message_id, "error", why, NULL);
        return OUT_DONE;
    }
    char lo[TASK_ID_LEN + 1], below[TASK_ID_LEN + 1];
    const int64_t early = RECOVER_CREATE_MS + RECOVER_MARGIN_MS;
    uuid7_floor((uint64_t)(first > early ? first - early : 0), lo);
    uuid7_floor((uint64_t)(last + RECOVER_MARGIN_MS + 1), below);
    size_t count = 0;
    outcome o = recover_types(rr, inv, lo, below, &count);
    char n[24], from[32], to[32];
    snprintf(n, sizeof n, "%zu", count);
    task_time_iso_text(from, first / 1000);
    task_time_iso_text(to, last / 1000);
    if (o == OUT_DONE)
        log_info("stranded tasks published again", "message_id", message_id, "count", n, "from",
                 from, "to", to, NULL);
    else
        log_warn("publishing stranded tasks again stopped; the message comes back", "message_id",
                 message_id, "count", n, "from", from, "to", to, NULL);
    return o;
}

static void recover_invoke(role *r, const lambda_invocation *inv, role_result *out)
{
    recover_role *rr = (recover_role *)r;
    json_error_t e;
    bool nomem;
    json_t *event = json_parse(inv->event, inv->event_len, 0, &e, &nomem);
    if (nomem) {
        role_fail(out, "Runtime.OutOfMemory", "cannot read the event");
        return;
    }
    const json_t *records = json_object_get(event, "Records");
    if (!json_is_array(records)) {
        const char *why = event ? "no Records array" : e.text;
        log_warn("not an SQS event", "error", why, NULL);
        role_fail(out, "Runtime.InvalidEvent", "not an SQS event: %s", why);
        json_decref(event);
        return;
    }
    sbuf b = {0};
    sbuf_puts(&b, "{\"batchItemFailures\":[");
    size_t failed = 0;
    for (size_t i = 0; i < json_array_size(records); i++) {
        sqs_record m;
        char err[160];
        if (!sqs_record_read(json_array_get(records, i), i, &m, err, sizeof err)) {
            /* it could not be reported alone: the whole batch comes back */
            sbuf_free(&b);
            json_decref(event);
            role_fail(out, "Runtime.InvalidEvent", "%s", err);
            return;
        }
        if (recover_message(rr, inv, &m) != OUT_DONE) {
            sbuf_puts(&b, failed++ ? "," : "");
            sbuf_puts(&b, "{\"itemIdentifier\":");
            sbuf_json_str(&b, m.message_id);
            sbuf_putc(&b, '}');
        }
        json_decref(m.body_doc);
    }
    json_decref(event);
    sbuf_puts(&b, "]}");
    role_respond(out, &b);
}

static void recover_role_free(role *r)
{
    recover_role *rr = (recover_role *)r;
    if (rr->publish)
        rr->publish->free(rr->publish);
    free(rr);
}

role *recover_role_new(const config *c, aws_client *sns, const char *topic_arn, store *tasks,
                       const telemetry *tel, char *err, size_t errlen)
{
    recover_role *rr = calloc(1, sizeof *rr);
    if (!rr) {
        errbuf_set(err, errlen, "out of memory");
        return NULL;
    }
    *rr = (recover_role){
        .base = {.name = "recover", .invoke = recover_invoke, .free = recover_role_free},
        .cfg = c,
        .tasks = tasks};
    if (!(rr->publish = publish_role_new(c, sns, topic_arn, tasks, tel, err, errlen))) {
        free(rr);
        return NULL;
    }
    return &rr->base;
}
