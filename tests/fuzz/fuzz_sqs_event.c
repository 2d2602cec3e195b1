/*
 * fuzz_sqs_event — the records of an SQS event as the worker role reads
 * them (aws/sqs_event.h): messages delivered raw, and SNS envelopes.
 *
 * Input: the event, as Lambda hands it over ({"Records": [...]}); each of
 * its records (the first 256) is read as the worker reads it.
 *
 * Invariants:
 *  - nothing is read past the bytes given, nothing leaks (ASan); every
 *    string a record points to is still readable after the whole event is
 *    read, up to its release;
 *  - a record is refused exactly when it is not an object or has no
 *    non-empty string messageId, with a reason; it is never left unread
 *    (no allocation fails here);
 *  - a record read says what the record holds, checked against a model of
 *    sqs_event.h: its messageId; the TaskId of its messageAttributes
 *    (stringValue) when that is a task id, else, when the body is an SNS
 *    Notification envelope, the envelope's (MessageAttributes.*.Value) and
 *    its Message as the data; TaskType and traceparent from the same place;
 *    the data the body (or Message) exactly when it is a JSON object;
 *    ApproximateReceiveCount in 1..1000000 and the count given when that
 *    is one; SentTimestamp the one given when it is a number of digits;
 *    AWSTraceHeader, DeadLetterQueueSourceArn and eventSourceARN as given,
 *    and the queue the last ':' segment of the ARN;
 *  - SentTimestamp as given, or now when past SQS_SENT_MS_MAX;
 *  - the tracestate is "" or in its normal form (reading it again gives
 *    it back).
 *
 * Run: scripts/fuzz.sh sqs_event   (corpus: tests/fuzz/corpus/sqs_event/)
 */
#include "fuzz_util.h"

#include "aws/sqs_event.h"
#include "core/json_util.h"
#include "core/uuid7.h"
#include "util/log.h"

#include <ctype.h>
#include <stdlib.h>
#include <strings.h>
#include <time.h>

#define MAX_RECORDS 256

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    log_setup(LOG_ERROR, "fuzz"); /* a message without a valid task id is a warning */
    return 0;
}

static const char *string_at(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

/* attrs.name.key, as the worker reads a message attribute. */
static const char *attribute(const json_t *attrs, const char *name, const char *key)
{
    return string_at(json_object_get(attrs, name), key);
}

static bool task_id_ok(const char *id)
{
    uint8_t raw[16];
    return uuid_parse(id, raw);
}

/* Whether text is a JSON object, by the worker's own JSON reader. */
static bool json_object_text(const char *text)
{
    bool nomem = false;
    json_t *doc = text ? json_parse(text, strlen(text), 0, NULL, &nomem) : NULL;
    FUZZ_CHECK(!nomem, "out of memory");
    bool object = json_is_object(doc);
    json_decref(doc);
    return object;
}

static bool same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* attrs.name as the count sqs_event.h takes: a non-negative integer, or digits in a string (those
 * past 64 bits: LLONG_MAX). */
static bool count_given(const json_t *attrs, const char *name, long long *out)
{
    const json_t *v = json_object_get(attrs, name);
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return *out >= 0;
    }
    const char *s = json_string_value(v);
    if (!s || !*s || strspn(s, "0123456789") != strlen(s))
        return false;
    *out = strtoll(s, NULL, 10); /* LLONG_MAX past it */
    return true;
}

static void check_record(const json_t *r, size_t i, const sqs_record *rec)
{
    FUZZ_CHECK(!rec->unread, "record %zu left unread", i);
    FUZZ_CHECK(rec->message_id == string_at(r, "messageId") && *rec->message_id,
               "record %zu: messageId", i);

    /* the task: raw delivery's attributes, else an SNS envelope's */
    const json_t *raw = json_object_get(r, "messageAttributes");
    const char *body = string_at(r, "body");
    json_t *env = body ? json_loads(body, 0, NULL) : NULL;
    const char *raw_id = attribute(raw, "TaskId", "stringValue");
    bool enveloped = !task_id_ok(raw_id) && json_is_object(env) &&
                     same(string_at(env, "Type"), "Notification") && string_at(env, "Message");
    const json_t *attrs = enveloped ? json_object_get(env, "MessageAttributes") : raw;
    const char *key = enveloped ? "Value" : "stringValue";
    const char *id = attribute(attrs, "TaskId", key);
    const char *want_id = task_id_ok(raw_id) ? raw_id : enveloped && task_id_ok(id) ? id : "";
    FUZZ_CHECK(strcasecmp(rec->task_id, want_id) == 0, "record %zu: task id \"%s\", want \"%s\"", i,
               rec->task_id, want_id);
    for (const char *c = rec->task_id; *c; c++) /* as the store keeps ids */
        FUZZ_CHECK(!isupper((unsigned char)*c), "record %zu: task id \"%s\" not in lower case", i,
                   rec->task_id);
    FUZZ_CHECK(same(rec->task_type, attribute(attrs, "TaskType", key)), "record %zu: TaskType", i);
    FUZZ_CHECK(same(rec->traceparent, attribute(attrs, "traceparent", key)),
               "record %zu: traceparent", i);
    const char *data = enveloped ? string_at(env, "Message") : body;
    if (json_object_text(data))
        FUZZ_CHECK(same(rec->data, data), "record %zu: data \"%s\"", i,
                   rec->data ? rec->data : "(null)");
    else
        FUZZ_CHECK(!rec->data, "record %zu: data \"%s\" is not a JSON object", i, rec->data);
    json_decref(env);

    if (rec->tracestate[0]) {
        char again[TRACECTX_TRACESTATE_MAX + 1];
        const char *values[] = {rec->tracestate};
        FUZZ_CHECK(tracectx_parse_tracestate(values, 1, again) &&
                       strcmp(again, rec->tracestate) == 0,
                   "record %zu: tracestate \"%s\" is not in its normal form", i, rec->tracestate);
    }

    /* the system attributes */
    const json_t *sys = json_object_get(r, "attributes");
    long long n;
    FUZZ_CHECK(rec->receive_count >= 1 && rec->receive_count <= 1000000,
               "record %zu: receive count %d", i, rec->receive_count);
    if (count_given(sys, "ApproximateReceiveCount", &n) && n >= 1)
        FUZZ_CHECK(rec->receive_count == (n <= 1000000 ? n : 1000000),
                   "record %zu: receive count %d, given %lld", i, rec->receive_count, n);
    FUZZ_CHECK(rec->sent_ms >= 0, "record %zu: sent %lld", i, (long long)rec->sent_ms);
    if (count_given(sys, "SentTimestamp", &n)) {
        if (n <= SQS_SENT_MS_MAX)
            FUZZ_CHECK(rec->sent_ms == n, "record %zu: sent %lld, given %lld", i,
                       (long long)rec->sent_ms, n);
        else /* past what a span's nanoseconds hold: taken as now */
            FUZZ_CHECK(llabs(rec->sent_ms - (long long)time(NULL) * 1000) < 60000,
                       "record %zu: sent %lld, given %lld past the bound", i,
                       (long long)rec->sent_ms, n);
    }
    FUZZ_CHECK(rec->xray == string_at(sys, "AWSTraceHeader"), "record %zu: AWSTraceHeader", i);
    FUZZ_CHECK(rec->source_arn == string_at(sys, "DeadLetterQueueSourceArn"),
               "record %zu: DeadLetterQueueSourceArn", i);
    const char *arn = string_at(r, "eventSourceARN");
    FUZZ_CHECK(rec->event_source_arn == arn, "record %zu: eventSourceARN", i);
    const char *queue = sqs_queue_of_arn(arn);
    FUZZ_CHECK(arn ? queue >= arn && !strchr(queue, ':') && (queue == arn || queue[-1] == ':') &&
                         queue + strlen(queue) == arn + strlen(arn)
                   : !queue,
               "record %zu: queue of \"%s\"", i, arn ? arn : "(null)");
}

/* Touch every string a record holds (ASan: none may dangle before the event is released). */
static size_t touch(const sqs_record *rec)
{
    const char *s[] = {rec->message_id,      rec->task_type, rec->data,
                       rec->traceparent,     rec->xray,      rec->source_arn,
                       rec->event_source_arn};
    size_t n = strlen(rec->task_id) + strlen(rec->tracestate);
    for (size_t k = 0; k < sizeof s / sizeof *s; k++)
        n += s[k] ? strlen(s[k]) : 0;
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *event = json_loadb((const char *)data, size, 0, NULL);
    const json_t *records = json_object_get(event, "Records");
    size_t n = json_array_size(records);
    if (n > MAX_RECORDS)
        n = MAX_RECORDS;
    static sqs_record recs[MAX_RECORDS];
    size_t read = 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *r = json_array_get(records, i);
        char err[128];
        memset(err, 'x', sizeof err);
        const char *id = string_at(r, "messageId");
        bool answerable = json_is_object(r) && id && *id;
        bool ok = sqs_record_read(r, i, &recs[read], err, sizeof err);
        FUZZ_CHECK(ok == answerable, "record %zu %s", i, ok ? "read" : "refused");
        if (!ok) {
            FUZZ_CHECK(memchr(err, '\0', sizeof err) && err[0], "record %zu: no reason", i);
            FUZZ_CHECK(!recs[read].body_doc, "record %zu: refused, its body kept", i);
            continue;
        }
        check_record(r, i, &recs[read]);
        read++;
    }
    size_t total = 0;
    for (size_t i = 0; i < read; i++)
        total += touch(&recs[i]);
    for (size_t i = 0; i < read; i++)
        json_decref(recs[i].body_doc);
    json_decref(event);
    FUZZ_CHECK(total != (size_t)-1, "the strings' lengths add up to nothing");
    return 0;
}
