/*
 * fuzz_sns_reply — the reply of a PublishBatch call read as sns.c reads it
 * (aws/sns_reply.h): which of the call's messages SNS published, and which
 * it failed, with what code, message and sender fault.
 *
 * Input: byte 0 is the index of the call's first message (first), byte 1
 * picks how many it carried (k, 1 to SNS_BATCH_MAX), bytes 2-3 which of them
 * went out (bit j: message first + j); the rest is the reply.
 *
 * Invariants:
 *  - nothing is read past the reply, nothing written past the call's k
 *    entries of done[] or past st[] (ASan: exact allocations);
 *  - no status outside the call's [first, first + k) changes, nor that of a
 *    message that did not go out or that no member names, and done[j] only
 *    for such a message named;
 *  - which messages are done, and with what, is what sns_reply.h says,
 *    checked against a model built on xml.h's lookups (fuzz_xml checks those
 *    against their own model): the first <PublishBatchResult>, its first
 *    <Successful> then <Failed>, their members in order, a message named
 *    when the whole text of a member's first <Id> (white space around it
 *    dropped, entities decoded) is 1 to 9 digits of an index of the call,
 *    the first member naming it winning; its fields the members' texts, up
 *    to a NUL byte, cut as errbuf_set() cuts what does not fit its field
 *    (at a UTF-8 boundary, then "..."), or the header's defaults;
 *    SenderFault when the text is "true";
 *  - so every message done is named by an Id in the reply, and no more are
 *    done than the reply has members (nor "<member" tags);
 *  - every text field is NUL-terminated inside its array, and well-formed
 *    UTF-8 when the reply is (decoded references are Unicode scalars).
 *
 * Run: scripts/fuzz.sh sns_reply   (corpus: tests/fuzz/corpus/sns_reply/)
 */
#include "fuzz_util.h"

#include "aws/sns_reply.h"
#include "aws/xml.h"

/* ---- the model ---- */

static bool white(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* An element's whole text: white space around it (as written) dropped, then decoded. */
typedef struct text {
    char *s; /* malloc'ed, NUL after len (and maybe inside) */
    size_t len;
} text;

static text text_of(const char *v, size_t n)
{
    while (n > 0 && white(*v)) {
        v++;
        n--;
    }
    while (n > 0 && white(v[n - 1]))
        n--;
    text t = {malloc(n + 1), 0};
    if (!t.s)
        abort();
    t.len = xml_decode(t.s, n + 1, v, n);
    FUZZ_CHECK(t.len <= n, "decoded %zu bytes of %zu", t.len, n);
    return t;
}

/* The text of the first child tag of [s, end); false (t empty) when there is none. */
static bool child(const char *s, const char *end, const char *tag, text *t)
{
    size_t n;
    const char *v = xml_find(s, end, tag, &n, NULL);
    if (!v) {
        *t = (text){NULL, 0};
        return false;
    }
    *t = text_of(v, n);
    return true;
}

/* t, up to a NUL byte, as a field of cap bytes holds it: all of it, or cut to leave room for
 * "..." before a character, moved back at most 3 continuation bytes (a character's most: past
 * them, text that is not UTF-8 is cut where it is), then "...". */
static void cut(const text *t, char *out, size_t cap)
{
    size_t n = strlen(t->s);
    const char *mark = "";
    if (n > cap - 1) {
        n = cap > 4 ? cap - 4 : 0;
        for (int back = 0; back < 3 && n > 0 && ((unsigned char)t->s[n] & 0xc0) == 0x80; back++)
            n--;
        mark = "...";
    }
    memcpy(out, t->s, n);
    snprintf(out + n, cap - n, "%s", mark);
}

/* The model's field: t cut to cap (a field's size), or dflt when t is missing or cuts to "". */
static void field(bool present, const text *t, const char *dflt, char *out, size_t cap)
{
    out[0] = '\0';
    if (present)
        cut(t, out, cap);
    if (!out[0] && dflt)
        snprintf(out, cap, "%s", dflt);
}

/* The index a whole Id text names: 1 to 9 digits. */
static bool id_of(const text *t, size_t *out)
{
    if (t->len < 1 || t->len > 9)
        return false;
    size_t v = 0;
    for (size_t i = 0; i < t->len; i++) {
        if (t->s[i] < '0' || t->s[i] > '9')
            return false;
        v = v * 10 + (size_t)(t->s[i] - '0');
    }
    *out = v;
    return true;
}

/* What sns_reply.h says becomes of each message of the call: want[j] when wdone[j]. */
static size_t model(const char *body, size_t len, size_t first, size_t k, const bool *sent,
                    bool *wdone, sns_status *want)
{
    const char *s = body, *end = body + len, *after;
    size_t n, members = 0;
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
        const char *from = list, *lend = list + n, *m;
        size_t mn;
        while ((m = xml_find(from, lend, "member", &mn, &after))) {
            FUZZ_CHECK(after > from && after <= lend, "member lookup does not move forward");
            from = after;
            members++;
            const char *mend = m + mn;
            text id;
            size_t i;
            bool named = child(m, mend, "Id", &id) && id_of(&id, &i) && i >= first &&
                         i - first < k && sent[i - first] && !wdone[i - first];
            free(id.s);
            if (!named)
                continue;
            size_t j = i - first;
            wdone[j] = true;
            sns_status *w = &want[j];
            memset(w, 0, sizeof *w);
            text t;
            if (l == 0) {
                w->ok = true;
                field(child(m, mend, "MessageId", &t), &t, NULL, w->message_id,
                      sizeof w->message_id);
                free(t.s);
                continue;
            }
            field(child(m, mend, "Code", &t), &t, "Failed", w->code, sizeof w->code);
            free(t.s);
            field(child(m, mend, "Message", &t), &t, "SNS did not publish the message", w->message,
                  sizeof w->message);
            free(t.s);
            w->sender_fault =
                child(m, mend, "SenderFault", &t) && t.len == 4 && memcmp(t.s, "true", 4) == 0;
            free(t.s);
        }
    }
    return members;
}

/* ---- checks ---- */

/* Is s[0..n) well-formed UTF-8 (a NUL byte counts as ASCII)? */
static bool utf8_valid_n(const char *s, size_t n)
{
    fuzz_json j = {s, s + n, 0};
    while (j.p < j.end)
        if ((unsigned char)*j.p < 0x80)
            j.p++;
        else if (!fj_utf8(&j))
            return false;
    return true;
}

static bool field_utf8(const char *s)
{
    return utf8_valid_n(s, strlen(s));
}

#define TERMINATED(f) (memchr((f), '\0', sizeof(f)) != NULL)

static void check_fields(const sns_status *got, size_t i, bool utf8)
{
    FUZZ_CHECK(TERMINATED(got->message_id) && TERMINATED(got->code) && TERMINATED(got->message) &&
                   TERMINATED(got->request_id),
               "message %zu: a field runs past its array", i);
    if (utf8)
        FUZZ_CHECK(field_utf8(got->message_id) && field_utf8(got->code) && field_utf8(got->message),
                   "message %zu: a field is not UTF-8, from a reply that is", i);
}

static void check_status(const sns_status *got, const sns_status *want, size_t i)
{
    FUZZ_CHECK(got->ok == want->ok, "message %zu: ok %d, want %d", i, got->ok, want->ok);
    FUZZ_CHECK(got->sender_fault == want->sender_fault, "message %zu: sender_fault %d, want %d", i,
               got->sender_fault, want->sender_fault);
    FUZZ_CHECK(strcmp(got->message_id, want->message_id) == 0,
               "message %zu: MessageId \"%s\", want \"%s\"", i, got->message_id, want->message_id);
    FUZZ_CHECK(strcmp(got->code, want->code) == 0, "message %zu: code \"%s\", want \"%s\"", i,
               got->code, want->code);
    FUZZ_CHECK(strcmp(got->message, want->message) == 0, "message %zu: message \"%s\", want \"%s\"",
               i, got->message, want->message);
    FUZZ_CHECK(!got->sent && !got->request_id[0], "message %zu: sent or request id set", i);
}

/* How many times "<member" occurs in the reply: no more messages can be done. */
static size_t member_tags(const char *s, size_t n)
{
    size_t count = 0;
    for (size_t p = 0; p + 7 <= n; p++)
        count += memcmp(s + p, "<member", 7) == 0;
    return count;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    size_t first = data[0], k = 1 + (size_t)data[1] % SNS_BATCH_MAX;
    unsigned mask = (unsigned)data[2] | (unsigned)data[3] << 8;
    size_t len = size - 4;
    /* exact copies and allocations: a read or write past any of them is ASan's */
    char *body = malloc(len ? len : 1);
    bool *sent = malloc(k), *done = malloc(k), *wdone = malloc(k);
    sns_status *st = malloc((first + k) * sizeof *st), *before = malloc((first + k) * sizeof *st);
    sns_status *want = malloc(k * sizeof *want);
    if (!body || !sent || !done || !wdone || !st || !before || !want)
        abort();
    memcpy(body, data + 4, len);
    for (size_t j = 0; j < k; j++) {
        sent[j] = mask >> j & 1;
        done[j] = wdone[j] = false;
    }
    /* every status starts as a message of its own: a local failure, or a marker */
    for (size_t i = 0; i < first + k; i++) {
        memset(&st[i], 0xa5, sizeof st[i]);
        snprintf(st[i].code, sizeof st[i].code, "before-%zu", i);
        snprintf(st[i].message, sizeof st[i].message, "untouched %zu", i);
    }
    memcpy(before, st, (first + k) * sizeof *st);

    sns_reply_read(body, len, first, k, sent, done, st);
    size_t members = model(body, len, first, k, sent, wdone, want);

    FUZZ_CHECK(memcmp(st, before, first * sizeof *st) == 0,
               "a status before the call's first (%zu) changed", first);
    bool utf8 = utf8_valid_n(body, len);
    size_t n_done = 0;
    for (size_t j = 0; j < k; j++) {
        size_t i = first + j;
        FUZZ_CHECK(done[j] == wdone[j], "message %zu: done %d, want %d (sent %d)", i, done[j],
                   wdone[j], sent[j]);
        if (!done[j]) {
            FUZZ_CHECK(memcmp(&st[i], &before[i], sizeof st[i]) == 0,
                       "message %zu: not done, yet its status changed", i);
            continue;
        }
        FUZZ_CHECK(sent[j], "message %zu done, but it did not go out", i);
        n_done++;
        check_fields(&st[i], i, utf8);
        check_status(&st[i], &want[j], i);
    }
    FUZZ_CHECK(n_done <= members && n_done <= member_tags(body, len),
               "%zu messages done from %zu members, %zu <member tags", n_done, members,
               member_tags(body, len));
    free(want);
    free(before);
    free(st);
    free(wdone);
    free(done);
    free(sent);
    free(body);
    return 0;
}
