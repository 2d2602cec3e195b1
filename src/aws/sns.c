/*
 * sns — PublishBatch over aws_http's Query call; see sns.h for the contract.
 *
 * A call is built as one form (sbuf): Action, Version, TopicArn, then one
 * PublishBatchRequestEntries.member.N per message that passed the local
 * checks, N counting those from 1 with no gap. Each entry is built in its own
 * buffer first, so a message whose attributes turn out malformed halfway
 * leaves nothing behind in the form. An entry's Id is the message's index in
 * the caller's array (decimal), so the reply's Ids lead straight back to
 * st[] and an Id that is not one of the call's is ignored.
 *
 * The reply is read by sns_reply_read() (sns_reply.h), a pure function of
 * its bytes. Text copied into a status that does not fit is cut at a UTF-8
 * character boundary and ends "..." (errbuf_set(), core/errbuf.h), since it
 * ends up in JSON logs and spans.
 */
#include "sns.h"

#include "core/errbuf.h"
#include "core/json_util.h"
#include "core/sbuf.h"
#include "sns_reply.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ENTRY "PublishBatchRequestEntries.member."

/* ---- form encoding ---- */

void sns_form_append(sbuf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '.' || ch == '_' || ch == '~') {
            sbuf_putc(b, (char)ch);
        } else {
            char esc[3] = {'%', hex[ch >> 4], hex[ch & 15]};
            sbuf_append(b, esc, 3);
        }
    }
}

static void form_str(sbuf *b, const char *s)
{
    sns_form_append(b, s, strlen(s));
}

/* ---- statuses ---- */

static void status_vfail(sns_status *st, const char *code, bool sender_fault, const char *fmt,
                         va_list ap) __attribute__((format(printf, 4, 0)));

static void status_vfail(sns_status *st, const char *code, bool sender_fault, const char *fmt,
                         va_list ap)
{
    memset(st, 0, sizeof *st);
    st->sender_fault = sender_fault;
    errbuf_set(st->code, sizeof st->code, "%s", code);
    errbuf_vset(st->message, sizeof st->message, fmt, ap);
}

static void status_fail(sns_status *st, const char *code, bool sender_fault, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void status_fail(sns_status *st, const char *code, bool sender_fault, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    status_vfail(st, code, sender_fault, fmt, ap);
    va_end(ap);
}

/* Fail st as never sent, after an earlier call failed (sns.h: Order). */
static void not_sent(sns_status *st)
{
    status_fail(st, SNS_NOT_SENT, false, "not sent: an earlier message of the batch failed");
}

/* ---- local checks ---- */

static size_t message_bytes(const sns_message *m)
{
    return (m->body ? strlen(m->body) : 0) + (m->attributes_json ? strlen(m->attributes_json) : 0);
}

size_t sns_batch_fit(const sns_message *m, size_t n)
{
    size_t k = 0, bytes = 0;
    while (k < n && k < SNS_BATCH_MAX) {
        size_t b = message_bytes(&m[k]);
        if (k > 0 && bytes + b > SNS_BATCH_BYTES)
            break;
        bytes += b;
        k++;
    }
    return k;
}

/* Whether st was refused by the checks before sending (refuse()). */
static bool refused_here(const sns_status *st)
{
    return st->refused && strcmp(st->code, SNS_INVALID_LOCAL) == 0;
}

/* Fail st as refused before sending: the message cannot be published as it is. */
static void refuse(sns_status *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void refuse(sns_status *st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    status_vfail(st, SNS_INVALID_LOCAL, true, fmt, ap);
    va_end(ap);
    st->refused = true;
}

/*
 * Append message m as entry number member, with Id id, to form; false (form
 * untouched) with st failed when it cannot be published as it is.
 */
static bool append_entry(sbuf *form, size_t member, size_t id, const sns_message *m, sns_status *st)
{
    size_t blen = m->body ? strlen(m->body) : 0;
    if (blen == 0) {
        refuse(st, "the message body is empty");
        return false;
    }
    if (!utf8_valid(m->body, blen)) {
        refuse(st, "the message body is not valid UTF-8");
        return false;
    }
    json_t *attrs = NULL;
    if (m->attributes_json) {
        json_error_t jerr;
        bool nomem;
        attrs = json_parse(m->attributes_json, strlen(m->attributes_json), 0, &jerr, &nomem);
        if (nomem) {
            /* not the message's fault: a retry may publish it */
            status_fail(st, "OutOfMemory", false, "out of memory reading the message attributes");
            return false;
        }
        if (!json_is_object(attrs)) {
            json_decref(attrs);
            refuse(st, "the message attributes are not a JSON object");
            return false;
        }
    }
    sbuf e = {0};
    sbuf_printf(&e, "&" ENTRY "%zu.Id=%zu&" ENTRY "%zu.Message=", member, id, member);
    sns_form_append(&e, m->body, blen);
    size_t k = 0;
    const char *name;
    json_t *a;
    bool good = true;
    json_object_foreach(attrs, name, a)
    {
        const char *type = json_string_value(json_object_get(a, "Type"));
        json_t *value = json_object_get(a, "Value");
        if (!*name || !type || !*type || !json_is_string(value)) {
            refuse(st, "message attribute \"%.*s\" needs a Type and a string Value",
                   utf8_prec(name, 64), name);
            good = false;
            break;
        }
        k++;
        sbuf_printf(&e, "&" ENTRY "%zu.MessageAttributes.entry.%zu.Name=", member, k);
        form_str(&e, name);
        sbuf_printf(&e, "&" ENTRY "%zu.MessageAttributes.entry.%zu.Value.DataType=", member, k);
        form_str(&e, type);
        bool binary = strncmp(type, "Binary", 6) == 0;
        sbuf_printf(&e, "&" ENTRY "%zu.MessageAttributes.entry.%zu.Value.%s=", member, k,
                    binary ? "BinaryValue" : "StringValue");
        sns_form_append(&e, json_string_value(value), json_string_length(value));
    }
    json_decref(attrs);
    if (good && sbuf_failed(&e)) {
        status_fail(st, "OutOfMemory", false, "out of memory building the request");
        good = false;
    }
    if (good)
        sbuf_append(form, e.data, e.len);
    sbuf_free(&e);
    return good;
}

/* ---- the calls ---- */

/* Fail every sent message of a call that failed as a whole. */
static void fail_call(aws_rc rc, const aws_response *r, size_t first, size_t k, const bool *sent,
                      sns_status *st)
{
    const char *code = r->error_type[0]            ? r->error_type
                       : rc == AWS_ERR_THROTTLED   ? "Throttled"
                       : rc == AWS_ERR_UNAVAILABLE ? "ServiceUnavailable"
                       : rc == AWS_ERR_TIMEOUT     ? "Timeout"
                       : rc == AWS_ERR_NOMEM       ? "OutOfMemory"
                                                   : "ClientError";
    char why[200]; /* with room left in the message for the HTTP status and the attempts */
    if (r->error_message)
        errbuf_set(why, sizeof why, "%s", r->error_message);
    else
        snprintf(why, sizeof why, "%s", aws_rc_name(rc));
    char http[32] = ""; /* the status, unless the message says it already */
    if (r->status > 0 && !r->message_is_status)
        snprintf(http, sizeof http, "HTTP %ld, ", r->status);
    for (size_t j = 0; j < k; j++)
        if (sent[j])
            status_fail(&st[first + j], code, r->status > 0 && rc == AWS_ERR_CLIENT, "%s (%s%d %s)",
                        why, http, r->attempts, r->attempts == 1 ? "attempt" : "attempts");
}

/* Whether SNS refused a whole call for the size of its messages together (BatchRequestTooLong;
 * the SDKs name the shape BatchRequestTooLongException). */
static bool batch_too_long(const char *code)
{
    return strcmp(code, "BatchRequestTooLong") == 0 ||
           strcmp(code, "BatchRequestTooLongException") == 0;
}

/* Mark the messages a call carried as sent, with its request id, once a request went out. */
static void mark_sent(const aws_response *r, size_t first, size_t k, const bool *sent,
                      sns_status *st)
{
    for (size_t j = 0; j < k && r->attempts > 0; j++)
        if (sent[j]) {
            st[first + j].sent = true;
            snprintf(st[first + j].request_id, sizeof st[first + j].request_id, "%s",
                     r->request_id);
        }
}

/* One PublishBatch call for m[first, first + k); true when all k were published. */
static bool publish_call(aws_client *c, const char *topic_arn, const sns_message *m, size_t first,
                         size_t k, int64_t deadline_ms, sns_status *st)
{
    bool sent[SNS_BATCH_MAX] = {false}, done[SNS_BATCH_MAX] = {false};
    sbuf form = {0};
    sbuf_puts(&form, "Action=PublishBatch&Version=2010-03-31&TopicArn=");
    form_str(&form, topic_arn);
    size_t members = 0;
    bool all = true;
    for (size_t j = 0; j < k; j++) {
        sent[j] = append_entry(&form, members + 1, first + j, &m[first + j], &st[first + j]);
        if (sent[j])
            members++;
        else
            all = false;
    }
    if (members == 0) {
        sbuf_free(&form);
        return false;
    }
    if (sbuf_failed(&form)) {
        aws_response none = {0};
        fail_call(AWS_ERR_NOMEM, &none, first, k, sent, st);
        sbuf_free(&form);
        return false;
    }
    aws_response r;
    aws_rc rc = aws_query_call(c, form.data, form.len, deadline_ms, &r);
    sbuf_free(&form);
    if (members > 1 && rc == AWS_ERR_CLIENT && batch_too_long(r.error_type)) {
        /* over the topic's size limit together (a MaximumMessageSize below SNS's 256 KB): the
         * halves go as calls of their own, in order, down to single messages; the messages
         * refused before sending stop no more than they would have in this call */
        aws_response_free(&r);
        size_t h = k / 2;
        bool ok = publish_call(c, topic_arn, m, first, h, deadline_ms, st), on = true;
        for (size_t j = 0; j < h; j++)
            on = on && (st[first + j].ok || refused_here(&st[first + j]));
        if (on)
            return publish_call(c, topic_arn, m, first + h, k - h, deadline_ms, st) && ok;
        for (size_t j = h; j < k; j++)
            if (sent[j]) /* the others keep what the checks before sending said */
                not_sent(&st[first + j]);
        return false;
    }
    if (rc != AWS_OK) {
        fail_call(rc, &r, first, k, sent, st);
        /* one message alone is more than the topic takes: it can never go */
        if (rc == AWS_ERR_CLIENT && batch_too_long(r.error_type))
            for (size_t j = 0; j < k; j++)
                if (sent[j])
                    st[first + j].refused = true;
        mark_sent(&r, first, k, sent, st);
        aws_response_free(&r);
        return false;
    }
    if (r.body)
        sns_reply_read(r.body, r.body_len, first, k, sent, done, st);
    for (size_t j = 0; j < k; j++) {
        if (sent[j] && !done[j])
            status_fail(&st[first + j], r.body ? SNS_NO_OUTCOME : SNS_UNREADABLE, false, "%s",
                        r.body ? "the PublishBatch reply does not mention the message"
                               : "the PublishBatch reply is empty");
        all = all && st[first + j].ok;
    }
    mark_sent(&r, first, k, sent, st);
    aws_response_free(&r);
    return all;
}

bool sns_publish_batch(aws_client *c, const char *topic_arn, const sns_message *m, size_t n,
                       int64_t deadline_ms, sns_status *st)
{
    size_t i = 0;
    bool all = true;
    if (!c || !topic_arn || !*topic_arn) {
        for (; i < n; i++)
            status_fail(&st[i], SNS_INVALID_LOCAL, true, "no client or no topic ARN");
        return n == 0;
    }
    while (i < n && all) {
        size_t k = sns_batch_fit(m + i, n - i);
        all = publish_call(c, topic_arn, m, i, k, deadline_ms, st);
        i += k;
    }
    for (; i < n; i++)
        not_sent(&st[i]);
    return all;
}
