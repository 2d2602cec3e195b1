/*
 * standin_calls — calls that must succeed against fauxqs; see standin_calls.h.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "standin_calls.h"

#include "util/clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

const char *standin_message_attribute(json_t *msg, const char *name)
{
    json_t *a = json_object_get(json_object_get(msg, "MessageAttributes"), name);
    assert_string_equal(json_string_value(json_object_get(a, "DataType")), "String");
    return json_string_value(json_object_get(a, "StringValue"));
}
