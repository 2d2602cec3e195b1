/*
 * sns_reply — reading a PublishBatch reply; see sns_reply.h.
 *
 * The reply is read with xml.h's small scanner, not an XML library: SNS's
 * answer is flat and known — <Successful> and <Failed> lists of <member>
 * elements whose children are text (Id, MessageId, Code, Message,
 * SenderFault) — so finding an element's content between <tag ...> and
 * </tag> (or nothing for <tag/>) and decoding the five named entities,
 * numeric character references and CDATA sections is all it takes. Text copied into a status
 * has its surrounding white space dropped and, when it does not fit, is cut
 * where a UTF-8 character ends and ends "..." (errbuf_set()), since it ends
 * up in JSON logs, spans and a failed task's message.
 */
#include "sns_reply.h"

#include "core/errbuf.h"
#include "core/sbuf.h"
#include "xml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The text s[0..n), entities decoded and surrounding white space dropped, into out; the length
 * of the decoded text (up to sizeof buf - 1), more than strlen(out) when it was cut or holds a
 * NUL byte.
 */
static size_t trimmed_text(const char *s, size_t n, char *out, size_t outlen)
{
    str_trim(&s, &n); /* XML's white space is str_is_ws()'s */
    char buf[1024];   /* more than any field: the text reaches errbuf_set() whole, marked if cut */
    size_t len = xml_decode(buf, sizeof buf, s, n);
    errbuf_set(out, outlen, "%s", buf); /* up to a NUL byte, which len then counts past */
    return len;
}

/*
 * The text of child tag of [s, end) into out; false (out "") when there is none. With whole, also
 * false (out "") when the text does not all fit or holds a NUL byte: a short word looked for (an
 * Id, "true") is that word only when the whole text is, whatever its first bytes say.
 */
static bool xml_child(const char *s, const char *end, const char *tag, bool whole, char *out,
                      size_t outlen)
{
    size_t n;
    const char *after;
    const char *v = xml_find(s, end, tag, &n, &after);
    out[0] = '\0';
    if (!v)
        return false;
    if (trimmed_text(v, n, out, outlen) != strlen(out) && whole) {
        out[0] = '\0';
        return false;
    }
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
 * Whether a failed entry's code says the message itself is invalid, so that no retry of it can
 * succeed. Other sender faults of an entry (a KMS key disabled or not allowed, an authorisation)
 * may be mended, and the message then goes out.
 */
static bool invalid_message(const char *code)
{
    return strcmp(code, "InvalidParameter") == 0 || strcmp(code, "InvalidParameterValue") == 0 ||
           strcmp(code, "ValidationException") == 0;
}

void sns_reply_read(const char *body, size_t len, size_t first, size_t k, const bool *sent,
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
            char id[32], fault[16];
            size_t i;
            if (!xml_child(member, mend, "Id", true, id, sizeof id) ||
                !entry_index(id, first, k, &i) || !sent[i - first] || done[i - first])
                continue;
            done[i - first] = true;
            memset(&st[i], 0, sizeof st[i]);
            if (l == 0) {
                st[i].ok = true;
                xml_child(member, mend, "MessageId", false, st[i].message_id,
                          sizeof st[i].message_id);
                continue;
            }
            if (!xml_child(member, mend, "Code", false, st[i].code, sizeof st[i].code) ||
                !st[i].code[0])
                snprintf(st[i].code, sizeof st[i].code, "%s", "Failed");
            if (!xml_child(member, mend, "Message", false, st[i].message, sizeof st[i].message) ||
                !st[i].message[0])
                snprintf(st[i].message, sizeof st[i].message, "%s",
                         "SNS did not publish the message");
            xml_child(member, mend, "SenderFault", true, fault, sizeof fault);
            st[i].sender_fault = strcmp(fault, "true") == 0;
            st[i].refused = st[i].sender_fault && invalid_message(st[i].code);
        }
    }
}
