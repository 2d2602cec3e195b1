/*
 * fuzz_stream_event — DynamoDB stream events as the publish role reads them
 * (aws/stream_event.h): the Records, and for each record the publication
 * the publisher begins (filter patterns, the INSERT's message, its spans)
 * with the attributes SNS takes.
 *
 * Input: the event, as Lambda hands it over ({"Records": [...]}). Each of
 * its records (the first 64) is begun for each publish consumer of a fixed
 * configuration: one passing INSERTs, one with patterns on the new image
 * (prefix, anything-but, numeric), one without patterns.
 *
 * Invariants:
 *  - nothing is read past the bytes given, nothing leaks (ASan);
 *  - Records are found exactly when the event is a JSON object with a
 *    Records array each of whose records has the eventSource aws:dynamodb
 *    or taskd:store (the recover role's); else the reason is what
 *    stream_event.h says (want_reason()), on one line (each control
 *    character '?'), and one too long for the publish role's buffer
 *    (PUBLISH_REASON_SIZE) is cut where a UTF-8 character ends and ends
 *    "...";
 *  - a record becomes a message exactly when the consumer's patterns match
 *    it and it is an INSERT whose new image holds a task id, a task type no
 *    longer than allowed and object data; no allocation fails here;
 *  - a message is the image's: its task id and type, its data as the body
 *    (JSON text of the same value), and the attributes SNS takes (each a
 *    String with a string Value: TaskId, TaskType, traceparent, and
 *    tracestate only with a stored trace it went with);
 *  - the spans: process, the consumer's, a child of the stored trace when
 *    that is a valid traceparent (else a new trace), and publish, its
 *    child, whose context is the message's traceparent;
 *  - publisher_message() (the same message without spans) agrees.
 *
 * Run: scripts/fuzz.sh stream_event   (corpus: tests/fuzz/corpus/stream_event/)
 */
#include "fuzz_util.h"

#include "aws/publish_role.h"
#include "aws/stream_event.h"
#include "core/attrval.h"
#include "core/filter.h"
#include "core/sbuf.h"

#define MAX_RECORDS 64

/* The harness ends its spans without a tracer: trace_end() never hands one over. */
void tracer_take(tracer *t, span *s)
{
    (void)t;
    (void)s;
    abort();
}

static const char CONFIG[] =
    "{\"topic\": \"tasks\", \"stream_consumers\": ["
    " {\"name\": \"publisher\", \"action\": \"publish\","
    "  \"filter_patterns\": [{\"eventName\": [\"INSERT\"]}]},"
    " {\"name\": \"typed\", \"action\": \"publish\", \"filter_patterns\": ["
    "  {\"eventName\": [\"INSERT\"],"
    "   \"dynamodb\": {\"NewImage\": {\"task_type\": {\"S\": [{\"prefix\": \"TASK\"}]}}}},"
    "  {\"eventName\": [{\"anything-but\": [\"REMOVE\"]}],"
    "   \"dynamodb\": {\"NewImage\": {\"priority\": {\"N\": [{\"numeric\": [\">\", 0]}]}}}}]},"
    " {\"name\": \"all\", \"action\": \"publish\"}]}";

static config cfg;

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char err[256];
    if (!config_defaults(&cfg) || !config_load_text(&cfg, CONFIG, "fuzz", err, sizeof err)) {
        fprintf(stderr, "fuzz_stream_event: the configuration: %s\n", err);
        abort();
    }
    return 0;
}

static const char *string_at(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

/* The index of the first record of records that has neither eventSource aws:dynamodb nor
 * taskd:store (the size of records when none). */
static size_t first_foreign(const json_t *records)
{
    size_t i = 0;
    for (; i < json_array_size(records); i++) {
        const char *source = string_at(json_array_get(records, i), "eventSource");
        if (!source || (strcmp(source, "aws:dynamodb") != 0 && strcmp(source, "taskd:store") != 0))
            break;
    }
    return i;
}

/* The reason stream_event.h gives for event doc (NULL: not JSON, as jerr says), whole: before
 * its control characters are made '?' and it is cut to fit. */
static void want_reason(json_t *doc, const json_error_t *jerr, sbuf *b)
{
    const json_t *records = json_object_get(doc, "Records");
    if (!json_is_object(doc)) {
        sbuf_puts(b, doc ? "the event is not a JSON object" : jerr->text);
    } else if (records && !json_is_array(records)) {
        sbuf_puts(b, "Records is not an array");
    } else if (!records) {
        sbuf_puts(b, "no Records array");
        const char *source = string_at(doc, "eventSource"), *arn = string_at(doc, "eventSourceArn");
        if (source)
            sbuf_printf(b, "; eventSource %s%s%s", source, arn ? ", from " : "", arn ? arn : "");
        const char *key, *sep = "; its keys: ";
        json_t *value;
        json_object_foreach(doc, key, value)
        {
            sbuf_printf(b, "%s%s", sep, key);
            sep = ", ";
        }
    } else {
        size_t i = first_foreign(records);
        const json_t *record = json_array_get(records, i);
        bool sns =
            !json_object_get(record, "eventSource") && json_object_get(record, "EventSource");
        const char *key = sns ? "EventSource" : "eventSource";
        const char *source = string_at(record, key);
        const char *arn = string_at(record, sns ? "EventSubscriptionArn" : "eventSourceARN");
        if (source && strcmp(source, "aws:s3") == 0)
            arn = string_at(json_object_get(json_object_get(record, "s3"), "bucket"), "arn");
        sbuf_printf(b, "record %zu ", i);
        if (!json_is_object(record))
            sbuf_puts(b, "is not an object");
        else if (!source)
            sbuf_puts(b, "names no eventSource");
        else
            sbuf_printf(b, "has %s %s%s%s", key, source, arn ? ", from " : "", arn ? arn : "");
    }
}

/* reason (of size bytes), checked to be want (of want_reason()) on one line, cut as it must be. */
static void check_reason(const char *reason, size_t size, sbuf *want)
{
    FUZZ_CHECK(!want->failed, "out of memory");
    for (size_t i = 0; i < want->len; i++)
        if ((unsigned char)want->data[i] < 0x20 || want->data[i] == 0x7f)
            want->data[i] = '?';
    FUZZ_CHECK(memchr(reason, '\0', size), "reason not ended");
    size_t keep = want->len;
    const char *mark = "";
    if (keep >= size) { /* the characters that end before room for "...", then "..." */
        keep = size - 4;
        while (keep > 0 && ((unsigned char)want->data[keep] & 0xc0) == 0x80)
            keep--; /* back to the start of a character: jansson took in UTF-8 only */
        mark = "...";
    }
    FUZZ_CHECK(strncmp(reason, want->data, keep) == 0 && strcmp(reason + keep, mark) == 0,
               "reason \"%s\", not \"%s\"", reason, want->data);
}

/* image.name.S */
static const char *image_string(const json_t *image, const char *name)
{
    return string_at(json_object_get(image, name), "S");
}

/* The attribute name of a message's attributes: its Value, checked to be a String. */
static const char *attribute(const json_t *attrs, const char *name)
{
    const json_t *a = json_object_get(attrs, name);
    if (!a)
        return NULL;
    FUZZ_CHECK(json_is_object(a) && json_object_size(a) == 2 &&
                   strcmp(string_at(a, "Type") ? string_at(a, "Type") : "", "String") == 0 &&
                   json_is_string(json_object_get(a, "Value")),
               "attribute %s is not a String", name);
    return string_at(a, "Value");
}

static bool same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool zero(const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return false;
    return true;
}

/* An open publication p of record for consumer cc, checked against the record. */
static void check_publication(const consumer_config *cc, const json_t *record, const publication *p)
{
    const publish_message *m = &p->message;
    const json_t *image = json_object_get(json_object_get(record, "dynamodb"), "NewImage");
    FUZZ_CHECK(strcmp(m->task_id, image_string(image, "id")) == 0, "task id %s", m->task_id);
    FUZZ_CHECK(strcmp(m->task_type, image_string(image, "task_type")) == 0, "task type %s",
               m->task_type);

    /* the body: the image's data as JSON text */
    json_t *body = json_loads(m->body, 0, NULL);
    json_t *data = attrval_to_json(json_object_get(image, "data"));
    FUZZ_CHECK(fuzz_json_valid(m->body, strlen(m->body)) && json_is_object(body) &&
                   json_equal(body, data),
               "body %s is not the image's data", m->body);
    json_decref(data);
    json_decref(body);

    /* the trace: publish under process, under the stored traceparent when it is one */
    trace_ctx stored, sent;
    const char *trace = image_string(image, "trace");
    bool known = trace && tracectx_parse_traceparent(trace, &stored);
    FUZZ_CHECK(m->trace && tracectx_parse_traceparent(m->trace, &sent),
               "traceparent \"%s\" is not valid", m->trace ? m->trace : "(null)");
    FUZZ_CHECK(memcmp(sent.trace_id, p->publish.trace_id, 16) == 0 &&
                   memcmp(sent.span_id, p->publish.span_id, 8) == 0,
               "the message's traceparent is not the publish span's");
    FUZZ_CHECK(memcmp(p->publish.trace_id, p->process.trace_id, 16) == 0 &&
                   memcmp(p->publish.parent_id, p->process.span_id, 8) == 0,
               "publish is not a child of process");
    if (known)
        FUZZ_CHECK(memcmp(p->process.trace_id, stored.trace_id, 16) == 0 &&
                       memcmp(p->process.parent_id, stored.span_id, 8) == 0,
                   "process is not a child of the stored trace %s", trace);
    else
        FUZZ_CHECK(zero(p->process.parent_id, 8), "process has a parent without a stored trace");
    char name[SPAN_NAME_MAX + 1];
    snprintf(name, sizeof name, "process %s", cc->name);
    FUZZ_CHECK(strcmp(p->process.name, name) == 0, "span %s", p->process.name);
    FUZZ_CHECK(strcmp(p->publish.name, "publish tasks") == 0, "span %s", p->publish.name);
    const char *state = image_string(image, "tracestate");
    FUZZ_CHECK(m->tracestate ? known && same(m->tracestate, state) : !known || !state,
               "tracestate \"%s\" (stored trace %s)", m->tracestate ? m->tracestate : "(null)",
               trace ? trace : "(null)");

    /* the attributes, as SNS takes them */
    FUZZ_CHECK(m->attributes && fuzz_json_valid(m->attributes, strlen(m->attributes)),
               "attributes %s", m->attributes ? m->attributes : "(null)");
    json_t *attrs = json_loads(m->attributes, 0, NULL);
    FUZZ_CHECK(json_is_object(attrs) && json_object_size(attrs) == 3 + (m->tracestate != NULL),
               "attributes %s", m->attributes);
    FUZZ_CHECK(same(attribute(attrs, "TaskId"), m->task_id) &&
                   same(attribute(attrs, "TaskType"), m->task_type) &&
                   same(attribute(attrs, "traceparent"), m->trace) &&
                   same(attribute(attrs, "tracestate"), m->tracestate),
               "attributes %s", m->attributes);
    json_decref(attrs);
}

/* Whether record makes a message, by what publisher.h says (patterns aside). */
static bool complete_insert(const json_t *record)
{
    const json_t *image = json_object_get(json_object_get(record, "dynamodb"), "NewImage");
    const char *id = image_string(image, "id"), *type = image_string(image, "task_type");
    if (!same(string_at(record, "eventName"), "INSERT") || !id || strlen(id) != TASK_ID_LEN ||
        !type || strlen(type) > TASK_TYPE_MAX)
        return false;
    json_t *data = attrval_to_json(json_object_get(image, "data"));
    bool object = json_is_object(data);
    json_decref(data);
    return object;
}

static void check_record(const json_t *record, size_t batch)
{
    bool complete = complete_insert(record);
    publish_message plain;
    bool made = publisher_message(record, &plain);
    FUZZ_CHECK(made == complete, "publisher_message %s a record", made ? "took" : "refused");
    for (size_t c = 0; c < cfg.n_consumers; c++) {
        const consumer_config *cc = &cfg.consumers[c];
        publication p;
        publish_outcome r = stream_record_begin(&cfg, cc, record, batch, &p);
        FUZZ_CHECK(r != PUBLISH_NO_MEMORY, "out of memory");
        bool want = complete && filter_set_match(cc->filter, record);
        FUZZ_CHECK((r == PUBLISH_READY) == want, "consumer %s: %s", cc->name,
                   r == PUBLISH_READY ? "a message, unwanted" : "no message");
        if (r != PUBLISH_READY)
            continue;
        check_publication(cc, record, &p);
        FUZZ_CHECK(strcmp(plain.task_id, p.message.task_id) == 0 &&
                       strcmp(plain.task_type, p.message.task_type) == 0 &&
                       strcmp(plain.body, p.message.body) == 0,
                   "publisher_message differs");
        publisher_finish(NULL, &p, NULL);
    }
    if (made)
        publish_message_free(&plain);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* an exact copy, so that a read past size is a read past the allocation */
    char *event = malloc(size ? size : 1);
    if (!event)
        abort();
    memcpy(event, data, size);
    json_t *doc = (json_t *)1;
    char reason[PUBLISH_REASON_SIZE]; /* the publish role's */
    memset(reason, 'x', sizeof reason);
    const json_t *records = stream_event_records(event, size, &doc, reason, sizeof reason, NULL);
    json_error_t jerr;
    json_t *again = json_loadb(event, size, 0, &jerr);
    FUZZ_CHECK(!doc == !again, "the event %s JSON", doc ? "is not" : "is");
    const json_t *all = json_object_get(again, "Records");
    size_t first = first_foreign(all);
    FUZZ_CHECK(!records == !(json_is_array(all) && first == json_array_size(all)), "Records %s",
               records ? "found" : "not found");
    if (!records) {
        sbuf want = {0};
        want_reason(again, &jerr, &want);
        check_reason(reason, sizeof reason, &want);
        sbuf_free(&want);
    }
    size_t n = json_array_size(records);
    for (size_t i = 0; i < n && i < MAX_RECORDS; i++)
        check_record(json_array_get(records, i), n);
    json_decref(again);
    json_decref(doc);
    free(event);
    return 0;
}
