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
 * The reply is read with xml.h's small scanner, not an XML library: SNS's
 * answer is flat and known — <Successful> and <Failed> lists of <member>
 * elements whose children are text (Id, MessageId, Code, Message,
 * SenderFault) — so finding an element's content between <tag ...> and
 * </tag> (or nothing for <tag/>) and decoding the five named entities and
 * numeric character references is all it takes. Text copied into a status
 * has its surrounding white space dropped and is cut at a UTF-8 character
 * boundary, since it ends up in JSON logs and spans.
 */
#include "sns.h"

#include "xml.h"

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

/* Copy s[0..n) into out (outlen > 0), cut at a UTF-8 character boundary when it does not fit. */
static void copy_cut(char *out, size_t outlen, const char *s, size_t n)
{
    if (n >= outlen) {
        n = outlen - 1;
        while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
            n--; /* s[n] would be a continuation byte: cut before its lead byte */
    }
    memcpy(out, s, n);
    out[n] = '\0';
}

static void status_fail(sns_status *st, const char *code, bool sender_fault, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void status_fail(sns_status *st, const char *code, bool sender_fault, const char *fmt, ...)
{
    memset(st, 0, sizeof *st);
    st->sender_fault = sender_fault;
    copy_cut(st->code, sizeof st->code, code, strlen(code));
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    copy_cut(st->message, sizeof st->message, text, strlen(text));
}

/* ---- local checks ---- */

/* Is s[0..n) well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF)? */
static bool utf8_valid(const unsigned char *s, size_t n)
{
    for (size_t i = 0, k; i < n; i += k)
        if (!(k = utf8_char_len((const char *)s + i, n - i)))
            return false;
    return true;
}

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

/*
 * Append message m as entry number member, with Id id, to form; false (form
 * untouched) with st failed when it cannot be published as it is.
 */
static bool append_entry(sbuf *form, size_t member, size_t id, const sns_message *m, sns_status *st)
{
    size_t blen = m->body ? strlen(m->body) : 0;
    if (blen == 0) {
        status_fail(st, SNS_INVALID_LOCAL, true, "the message body is empty");
        return false;
    }
    if (!utf8_valid((const unsigned char *)m->body, blen)) {
        status_fail(st, SNS_INVALID_LOCAL, true, "the message body is not valid UTF-8");
        return false;
    }
    json_t *attrs = NULL;
    if (m->attributes_json) {
        json_error_t jerr;
        attrs = json_loads(m->attributes_json, 0, &jerr);
        if (!json_is_object(attrs)) {
            json_decref(attrs);
            status_fail(st, SNS_INVALID_LOCAL, true,
                        "the message attributes are not a JSON object");
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
            status_fail(st, SNS_INVALID_LOCAL, true,
                        "message attribute \"%.64s\" needs a Type and a string Value", name);
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

/* ---- reading the reply ---- */

/* The text s[0..n), entities decoded and surrounding white space dropped, into out. */
static void xml_text(const char *s, size_t n, char *out, size_t outlen)
{
    const char *end = s + n;
    while (s < end && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n'))
        s++;
    while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' || end[-1] == '\n'))
        end--;
    char buf[1024]; /* more than any field: copy_cut sees past its cut and keeps whole characters */
    size_t len = xml_decode(buf, sizeof buf, s, (size_t)(end - s));
    copy_cut(out, outlen, buf, len);
}

/* The text of child tag of [s, end) into out; false (out "") when there is none. */
static bool xml_child(const char *s, const char *end, const char *tag, char *out, size_t outlen)
{
    size_t n;
    const char *after;
    const char *v = xml_find(s, end, tag, &n, &after);
    out[0] = '\0';
    if (!v)
        return false;
    xml_text(v, n, out, outlen);
    return true;
}

/* The message index an Id names, if it is one of the call's messages [first, first + k). */
static bool entry_index(const char *id, size_t first, size_t k, size_t *out)
{
    if (!*id || strspn(id, "0123456789") != strlen(id) || strlen(id) > 9)
        return false;
    size_t i = (size_t)strtoul(id, NULL, 10);
    if (i < first || i >= first + k)
        return false;
    *out = i;
    return true;
}

/*
 * Read a PublishBatch reply for messages [first, first + k) of st, of which
 * those with sent[i - first] went out: set the outcome of each it mentions;
 * done[] marks them.
 */
static void read_reply(const char *body, size_t len, size_t first, size_t k, const bool *sent,
                       bool *done, sns_status *st)
{
    const char *s = body, *end = body + len, *after;
    size_t n;
    const char *result = xml_find(s, end, "PublishBatchResult", &n, &after);
    if (result) {
        s = result;
        end = result + n;
    }
    static const char *const lists[2] = {"Successful", "Failed"};
    for (int l = 0; l < 2; l++) {
        const char *list = xml_find(s, end, lists[l], &n, &after);
        if (!list)
            continue;
        const char *ls = list, *lend = list + n, *member;
        size_t mn;
        while ((member = xml_find(ls, lend, "member", &mn, &after))) {
            ls = after;
            const char *mend = member + mn;
            char id[32], code[64], message[256], fault[16];
            size_t i;
            if (!xml_child(member, mend, "Id", id, sizeof id) || !entry_index(id, first, k, &i) ||
                !sent[i - first] || done[i - first])
                continue;
            done[i - first] = true;
            if (l == 0) {
                memset(&st[i], 0, sizeof st[i]);
                st[i].ok = true;
                xml_child(member, mend, "MessageId", st[i].message_id, sizeof st[i].message_id);
                continue;
            }
            if (!xml_child(member, mend, "Code", code, sizeof code) || !code[0])
                snprintf(code, sizeof code, "%s", "Failed");
            if (!xml_child(member, mend, "Message", message, sizeof message) || !message[0])
                snprintf(message, sizeof message, "%s", "SNS did not publish the message");
            xml_child(member, mend, "SenderFault", fault, sizeof fault);
            status_fail(&st[i], code, strcmp(fault, "true") == 0, "%s", message);
        }
    }
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
    char why[200];
    if (r->error_message)
        copy_cut(why, sizeof why, r->error_message, strlen(r->error_message));
    else
        snprintf(why, sizeof why, "%s", aws_rc_name(rc));
    for (size_t j = 0; j < k; j++)
        if (sent[j]) {
            if (r->status > 0)
                status_fail(&st[first + j], code, rc == AWS_ERR_CLIENT, "%s (HTTP %ld, %d %s)", why,
                            r->status, r->attempts, r->attempts == 1 ? "attempt" : "attempts");
            else
                status_fail(&st[first + j], code, false, "%s (%d %s)", why, r->attempts,
                            r->attempts == 1 ? "attempt" : "attempts");
        }
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
    if (rc != AWS_OK) {
        fail_call(rc, &r, first, k, sent, st);
        mark_sent(&r, first, k, sent, st);
        aws_response_free(&r);
        return false;
    }
    if (r.body)
        read_reply(r.body, r.body_len, first, k, sent, done, st);
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
        status_fail(&st[i], SNS_NOT_SENT, false,
                    "not sent: an earlier message of the batch failed");
    return all;
}
