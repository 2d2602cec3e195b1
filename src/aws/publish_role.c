/*
 * publish_role — DynamoDB stream records to the SNS topic; see
 * publish_role.h.
 *
 * One invocation in three steps. Begin: every record goes through
 * stream_record_begin() (stream_event.h: publisher_begin() and the
 * message's attributes) in order, and the READY ones are kept with their
 * record's index (a record the publisher cannot begin for lack of memory
 * ends this step: it and what follows are left for the retry). Send: the
 * kept messages go to sns_publish_batch() in one array; it cuts them into
 * PublishBatch calls and stops after the first call with a failure. Finish:
 * each publication is finished with its outcome — published, or failed with
 * SNS's code and message (its spans then say ERROR) — except those never
 * sent, whose spans are dropped: they are sent, and traced, on the retry.
 * The publish span of a message that went out names the PublishBatch call
 * that carried it (label_call()).
 *
 * The first failed record is the lowest record index among the failed
 * messages and those never sent (and the record where beginning stopped);
 * since the records were sent in order and sending stopped at the first
 * failed call, every record before it was published, or passed over: a
 * message refused as invalid (sns_status.refused: SNS's InvalidParameter or
 * the like for its entry, or the checks before sending) can never go out, so
 * its task is failed with SNS's reason (role_fail_task()), which a client
 * reads, and its record is not reported, lest the stream mapping, which
 * retries a reported record until it is published, hold the shard on it for
 * the stream's 24 h. Only a task nobody has claimed is failed: one a client
 * took with PATCH is left to it. A task that cannot be failed then (the
 * store busy or in error) is reported as a failed record instead: its retry
 * fails it then.
 */
#include "publish_role.h"

#include "core/errbuf.h"
#include "core/uuid7.h"
#include "pipeline/publisher.h"
#include "sns.h"
#include "stream_event.h"
#include "util/log.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct publish_role {
    role base;
    config cfg;                /* a view of the caller's (the pointers stay the caller's) */
    const consumer_config *cc; /* the first consumer with action publish, in cfg */
    aws_client *sns;
    char *topic_arn;
    store *tasks; /* where the task of a message SNS refuses is failed */
    telemetry tel;
} publish_role;

/* One invocation's working set: an entry per record that became a message. */
typedef struct outbox {
    publication *pub;
    sns_message *msg;
    sns_status *st;
    size_t *record; /* the index in Records of each */
    size_t n;
} outbox;

static bool outbox_alloc(outbox *o, size_t records)
{
    memset(o, 0, sizeof *o);
    o->pub = calloc(records, sizeof *o->pub);
    o->msg = calloc(records, sizeof *o->msg);
    o->st = calloc(records, sizeof *o->st);
    o->record = calloc(records, sizeof *o->record);
    return o->pub && o->msg && o->st && o->record;
}

static void outbox_free(outbox *o)
{
    free(o->pub);
    free(o->msg);
    free(o->st);
    free(o->record);
    memset(o, 0, sizeof *o);
}

static const char *sequence_number(const json_t *record)
{
    const char *s =
        json_string_value(json_object_get(json_object_get(record, "dynamodb"), "SequenceNumber"));
    return s && *s ? s : NULL;
}

/* The answer for a batch whose first failed record is seq (NULL: none failed). */
static void respond(role_result *out, const char *seq)
{
    json_t *item = seq ? json_pack("{s:s}", "itemIdentifier", seq) : NULL;
    json_t *body = seq && !item ? NULL : json_pack("{s:[o*]}", "batchItemFailures", item);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text) {
        role_fail(out, "Runtime.OutOfMemory", "cannot encode the response");
        return;
    }
    out->response = text;
    out->response_len = strlen(text);
}

/*
 * Say so, with why (the publication's unreadable), when an INSERT the consumer's patterns take,
 * which the publisher could make no message of (PUBLISH_UNREADABLE: no new image, data that is
 * not a map, a type out of shape), is a task's: no retry would read it better, and its task stays
 * CREATED. The store's own items (an idempotency key, meta#...), whose key is no task id, are
 * passed over without a word, as are the records the patterns leave out (PUBLISH_SKIPPED).
 */
static void say_unreadable(const json_t *record, const char *why)
{
    const json_t *keys = json_object_get(json_object_get(record, "dynamodb"), "Keys");
    const char *id = json_string_value(json_object_get(json_object_get(keys, "id"), "S"));
    uint8_t raw[16];
    if (!uuid_parse(id, raw))
        return;
    const char *seq = sequence_number(record);
    log_error("a new task's stream record cannot be made a message; it is passed over and the "
              "task stays CREATED",
              "task_id", id, "sequence_number", seq ? seq : "", "error", why, NULL);
}

/* Begin a publication for each record that makes a message; the index where it had to stop. */
static size_t begin_all(publish_role *pr, const json_t *records, outbox *o)
{
    size_t n = json_array_size(records);
    for (size_t i = 0; i < n; i++) {
        publication *p = &o->pub[o->n];
        const json_t *record = json_array_get(records, i);
        publish_outcome r = stream_record_begin(&pr->cfg, pr->cc, record, n, p);
        if (r == PUBLISH_UNREADABLE)
            say_unreadable(record, p->unreadable);
        if (r == PUBLISH_SKIPPED || r == PUBLISH_UNREADABLE)
            continue;
        if (r == PUBLISH_NO_MEMORY)
            return i;
        o->msg[o->n] = (sns_message){p->message.body, p->message.attributes};
        o->record[o->n] = i;
        o->n++;
    }
    return n;
}

/*
 * The publish span of a message that went out: the PublishBatch call that carried it, named as
 * OpenTelemetry's AWS SDK conventions name one.
 */
static void label_call(const publish_role *pr, span *s, const sns_status *st)
{
    if (!st->sent)
        return;
    aws_span_call(s, pr->sns, "SNS", "PublishBatch", st->request_id);
    span_set_str(s, "aws.sns.topic.arn", pr->topic_arn);
}

/*
 * Fail the task of p, whose message is refused with error (seq: its record's sequence number);
 * false when its record must be tried again, for the task could not be failed.
 */
static bool fail_refused(publish_role *pr, const publication *p, const char *error, const char *seq)
{
    char why[400], trace_id[33];
    snprintf(why, sizeof why, "cannot publish the task: its message is refused (%s)", error);
    span_hex(p->publish.trace_id, sizeof p->publish.trace_id, trace_id);
    /* only a task nobody has claimed: one a client took is the client's to finish */
    store_rc rc = role_fail_task(pr->tasks, &pr->tel, &p->publish, p->message.task_id, why, true);
    switch (rc) {
    case STORE_OK:
        log_warn("task failed", "task_id", p->message.task_id, "reason", why, "trace_id", trace_id,
                 "sequence_number", seq ? seq : "", NULL);
        return true;
    case STORE_REPEAT:    /* failed already, by an earlier try of this record */
    case STORE_CONFLICT:  /* claimed or final already: not this role's to fail */
    case STORE_NOT_FOUND: /* gone */
    case STORE_INVALID:   /* a change the store can never make (an item at its size limit) */
        log_error("the task's message is refused; its record is passed over", "task_id",
                  p->message.task_id, "sequence_number", seq ? seq : "", "error", error, "store",
                  store_rc_name(rc), NULL);
        return true;
    default:
        log_warn("cannot fail a task whose message is refused; its record is tried again",
                 "task_id", p->message.task_id, "error", store_rc_name(rc), NULL);
        return false;
    }
}

/* Finish every publication with its outcome; the record index of the first failure (or stop). */
static size_t finish_all(publish_role *pr, const json_t *records, outbox *o, size_t stop, char *why,
                         size_t whylen)
{
    size_t first = stop;
    if (stop < json_array_size(records))
        snprintf(why, whylen, "out of memory beginning the record's publication");
    for (size_t j = 0; j < o->n; j++) {
        publication *p = &o->pub[j];
        const sns_status *st = &o->st[j];
        label_call(pr, &p->publish, st);
        if (st->ok) {
            if (st->message_id[0])
                span_set_str(&p->publish, "messaging.message.id", st->message_id);
            publisher_finish(&pr->tel, p, NULL);
            continue;
        }
        if (strcmp(st->code, SNS_NOT_SENT) == 0) {
            publisher_finish(NULL, p, NULL); /* never sent: no spans; the retry traces it */
            if (o->record[j] < first) {
                first = o->record[j];
                snprintf(why, whylen, "%s", st->message);
            }
            continue;
        }
        char error[sizeof st->code + sizeof st->message + 4];
        errbuf_set(error, sizeof error, "%s: %s", st->code, st->message);
        const char *seq = sequence_number(json_array_get(records, o->record[j]));
        if (st->refused && fail_refused(pr, p, error, seq)) {
            publisher_finish(&pr->tel, p, error);
            continue;
        }
        log_warn("cannot publish the task", "task_id", p->message.task_id, "task_type",
                 p->message.task_type, "sequence_number", seq ? seq : "", "error", error, NULL);
        if (o->record[j] < first) {
            first = o->record[j];
            snprintf(why, whylen, "%s", error);
        }
        publisher_finish(&pr->tel, p, error);
    }
    return first;
}

static void publish_invoke(role *r, const lambda_invocation *inv, role_result *out)
{
    publish_role *pr = (publish_role *)r;
    json_t *event;
    char reason[PUBLISH_REASON_SIZE];
    bool nomem;
    const json_t *records =
        stream_event_records(inv->event, inv->event_len, &event, reason, sizeof reason, &nomem);
    if (!records && nomem) {
        role_fail(out, "Runtime.OutOfMemory", "cannot read the event");
        return;
    }
    if (!records) {
        log_warn("not a DynamoDB stream event", "error", reason, NULL);
        role_fail(out, "Runtime.InvalidEvent", PUBLISH_NOT_STREAM "%s", reason);
        json_decref(event);
        return;
    }
    size_t n = json_array_size(records);
    if (n == 0) {
        respond(out, NULL);
        json_decref(event);
        return;
    }
    outbox o;
    if (!outbox_alloc(&o, n)) {
        outbox_free(&o);
        json_decref(event);
        role_fail(out, "Runtime.OutOfMemory", "cannot hold %zu records", n);
        return;
    }
    size_t stop = begin_all(pr, records, &o);
    int64_t deadline = 0; /* unknown: aws_http's default budget */
    if (inv->deadline_ms > 0) {
        deadline = inv->deadline_ms - PUBLISH_RESERVE_MS;
        if (deadline <= 0)
            deadline = 1; /* already past: fail at once, without sending */
    }
    sns_publish_batch(pr->sns, pr->topic_arn, o.msg, o.n, deadline, o.st);
    char why[400] = "";
    size_t first = finish_all(pr, records, &o, stop, why, sizeof why);
    if (first == n) {
        respond(out, NULL);
    } else {
        const char *seq = sequence_number(json_array_get(records, first));
        if (seq) {
            char left[24];
            snprintf(left, sizeof left, "%zu", n - first);
            log_warn("batch stopped at a failed record; it and those after it are retried",
                     "sequence_number", seq, "records_left", left, "error", why, NULL);
            respond(out, seq);
        } else {
            /* SNS's reason last: a cut to fit takes its end, not what the failure means */
            role_fail(out, "Publish.Failed",
                      "record %zu has no SequenceNumber to report and was not published: %s", first,
                      why);
        }
    }
    outbox_free(&o);
    json_decref(event);
}

static void publish_role_free(role *r)
{
    publish_role *pr = (publish_role *)r;
    if (!pr)
        return;
    free(pr->topic_arn);
    free(pr);
}

role *publish_role_new(const config *c, aws_client *sns, const char *topic_arn, store *tasks,
                       const telemetry *tel, char *err, size_t errlen)
{
    const consumer_config *cc = NULL;
    for (size_t i = 0; c && i < c->n_consumers && !cc; i++)
        if (strcmp(c->consumers[i].action, "publish") == 0)
            cc = &c->consumers[i];
    if (!cc) {
        errbuf_set(err, errlen, "the configuration has no stream consumer with action publish");
        return NULL;
    }
    if (!sns || !topic_arn || !*topic_arn) {
        errbuf_set(err, errlen, "no SNS client or no topic ARN (TOPIC_ARN) to publish to");
        return NULL;
    }
    if (!tasks) {
        errbuf_set(err, errlen, "no store to fail the tasks whose message SNS refuses in");
        return NULL;
    }
    publish_role *pr = calloc(1, sizeof *pr);
    char *arn = strdup(topic_arn);
    if (!pr || !arn) {
        free(pr);
        free(arn);
        errbuf_set(err, errlen, "cannot create the publish role: out of memory");
        return NULL;
    }
    pr->base = (role){.name = "publish", .invoke = publish_invoke, .free = publish_role_free};
    pr->cfg = *c;
    pr->cfg.topic_system = "aws.sns"; /* the topic is SNS: the publish spans say so */
    pr->cc = &pr->cfg.consumers[cc - c->consumers];
    pr->sns = sns;
    pr->topic_arn = arn;
    pr->tasks = tasks;
    if (tel)
        pr->tel = *tel;
    return &pr->base;
}
