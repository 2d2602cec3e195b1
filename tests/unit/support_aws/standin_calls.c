/*
 * standin_calls — calls that must succeed against fauxqs; see standin_calls.h.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "standin_calls.h"

#include "aws/sns.h"
#include "util/clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CALL_MS 5000

void standin_query_ok(aws_client *c, sbuf *form, const char *tag, char *out, size_t outlen)
{
    assert_false(sbuf_failed(form));
    aws_response r;
    if (aws_query_call(c, form->data, form->len, clock_unix_ms() + CALL_MS, &r) != AWS_OK)
        fail_msg("%s: %s %s", form->data, r.error_type, r.error_message ? r.error_message : "");
    char open[64], close[64];
    snprintf(open, sizeof open, "<%s>", tag);
    snprintf(close, sizeof close, "</%s>", tag);
    const char *a = r.body ? strstr(r.body, open) : NULL, *b = a ? strstr(a, close) : NULL;
    assert_non_null(b);
    a += strlen(open);
    snprintf(out, outlen, "%.*s", (int)(b - a), a);
    aws_response_free(&r);
    sbuf_free(form);
}

json_t *standin_sqs_ok(aws_client *c, const char *action, json_t *req)
{
    char target[64];
    snprintf(target, sizeof target, "AmazonSQS.%s", action);
    char *body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    assert_non_null(body);
    aws_response r;
    aws_rc rc = aws_json_call(c, target, body, strlen(body), clock_unix_ms() + CALL_MS, &r);
    free(body);
    if (rc != AWS_OK)
        fail_msg("%s: %s %s", action, r.error_type, r.error_message ? r.error_message : "");
    json_t *out = json_loads(r.body ? r.body : "{}", 0, NULL);
    aws_response_free(&r);
    assert_non_null(out);
    return out;
}

void standin_task1_subscription(aws_client *sns, aws_client *sqs, char topic_arn[256],
                                char queue_url[256])
{
    char suffix[48], qname[64], queue_arn[256], sub_arn[256];
    snprintf(suffix, sizeof suffix, "%d-%lld", (int)getpid(), (long long)clock_unix_ms());
    sbuf f = {0};
    sbuf_printf(&f, "Action=CreateTopic&Version=2010-03-31&Name=tasks-%s", suffix);
    standin_query_ok(sns, &f, "TopicArn", topic_arn, 256);
    snprintf(qname, sizeof qname, "task1-%s", suffix);
    json_t *q = standin_sqs_ok(sqs, "CreateQueue", json_pack("{s:s}", "QueueName", qname));
    snprintf(queue_url, 256, "%s", json_string_value(json_object_get(q, "QueueUrl")));
    json_decref(q);
    json_t *qa = standin_sqs_ok(
        sqs, "GetQueueAttributes",
        json_pack("{s:s, s:[s]}", "QueueUrl", queue_url, "AttributeNames", "QueueArn"));
    snprintf(queue_arn, sizeof queue_arn, "%s",
             json_string_value(json_object_get(json_object_get(qa, "Attributes"), "QueueArn")));
    json_decref(qa);
    const char *policy = "{\"TaskType\":[\"TASK1\"]}";
    sbuf_puts(&f, "Action=Subscribe&Version=2010-03-31&Protocol=sqs&TopicArn=");
    sns_form_append(&f, topic_arn, strlen(topic_arn));
    sbuf_puts(&f, "&Endpoint=");
    sns_form_append(&f, queue_arn, strlen(queue_arn));
    sbuf_puts(&f, "&Attributes.entry.1.key=RawMessageDelivery&Attributes.entry.1.value=true"
                  "&Attributes.entry.2.key=FilterPolicy&Attributes.entry.2.value=");
    sns_form_append(&f, policy, strlen(policy));
    standin_query_ok(sns, &f, "SubscriptionArn", sub_arn, sizeof sub_arn);
}

/* A call that must fail with the error type type: f's Query call with c when f is given, else the
 * SQS JSON call of action with req (taken). */
static void expect_error(aws_client *c, sbuf *f, const char *action, json_t *req, const char *type)
{
    aws_response r;
    aws_rc rc;
    if (f) {
        assert_false(sbuf_failed(f));
        rc = aws_query_call(c, f->data, f->len, clock_unix_ms() + CALL_MS, &r);
        sbuf_free(f);
    } else {
        char target[64], *body = json_dumps(req, JSON_COMPACT);
        json_decref(req);
        assert_non_null(body);
        snprintf(target, sizeof target, "AmazonSQS.%s", action);
        rc = aws_json_call(c, target, body, strlen(body), clock_unix_ms() + CALL_MS, &r);
        free(body);
    }
    if (rc == AWS_OK || strcmp(r.error_type, type) != 0)
        fail_msg("%s: %s where %s was expected", action, rc == AWS_OK ? "answered" : r.error_type,
                 type);
    aws_response_free(&r);
}

void standin_task1_delete(aws_client *sns, aws_client *sqs, const char *topic_arn,
                          const char *queue_url)
{
    char id[128];
    sbuf f = {0};
    sbuf_puts(&f, "Action=DeleteTopic&Version=2010-03-31&TopicArn=");
    sns_form_append(&f, topic_arn, strlen(topic_arn));
    standin_query_ok(sns, &f, "RequestId", id, sizeof id);
    json_decref(standin_sqs_ok(sqs, "DeleteQueue", json_pack("{s:s}", "QueueUrl", queue_url)));

    sbuf_puts(&f, "Action=GetTopicAttributes&Version=2010-03-31&TopicArn=");
    sns_form_append(&f, topic_arn, strlen(topic_arn));
    expect_error(sns, &f, "GetTopicAttributes", NULL, "NotFound");
    const char *name = strrchr(queue_url, '/');
    assert_non_null(name);
    expect_error(sqs, NULL, "GetQueueUrl", json_pack("{s:s}", "QueueName", name + 1),
                 "QueueDoesNotExist");
}

const char *standin_message_attribute(json_t *msg, const char *name)
{
    json_t *a = json_object_get(json_object_get(msg, "MessageAttributes"), name);
    assert_string_equal(json_string_value(json_object_get(a, "DataType")), "String");
    return json_string_value(json_object_get(a, "StringValue"));
}
