/*
 * Unit tests for aws/sns: PublishBatch against an HTTP server run inside the
 * test (support/http_stub: a thread per connection, keep-alive) that
 * records every request and answers from a per-test script: a fixed status
 * and body, or an "echo" that reads the request's entries and answers
 * Successful for each Id, Failed for the Ids the step names.
 *
 * Covered: percent-encoding (RFC 3986: '&', '=', '+', ' ', '/', unicode,
 * newlines), the request's form field by field and byte for byte (Action,
 * Version, TopicArn, entries with their attributes, contiguous member and
 * attribute numbers), batches cut at ten messages and at 256 KiB, reading
 * the XML reply (MessageIds, per-entry Code / Message / SenderFault,
 * entities, <Failed/>, Ids that are not the call's, Ids and SenderFaults
 * that only begin with the word, a failed entry's message cut to fit, an
 * entry the reply does not mention, an empty reply), throttling then
 * success (aws_http's retries), a 404 NotFound failing every message
 * without a retry, the stop after the first failed call, a call too long
 * for the topic split in halves down to single messages, messages refused
 * before sending, a deadline already past; which messages went out, with
 * their call's request id.
 *
 * With FAUXQS_ENDPOINT set (e.g. http://127.0.0.1:4566 of a running
 * fauxqs), one more test goes through a real stand-in: topic, queue, raw
 * subscription with a filter policy, PublishBatch, and the queue's messages
 * with their attributes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "aws/sns.h"
#include "aws/sns_reply.h"
#include "util/clock.h"
#include "core/sbuf.h"
#include "support/form_decode.h"
#include "support/http_stub.h"
#include "support_aws/standin_calls.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TOPIC     "arn:aws:sns:eu-west-1:123456789012:tasks"
#define TOPIC_ENC "arn%3Aaws%3Asns%3Aeu-west-1%3A123456789012%3Atasks"
#define M         "PublishBatchRequestEntries.member."

/* ---- forms ---- */

#define MAX_FIELDS 256

typedef struct form {
    size_t n;
    char *key[MAX_FIELDS];
    char *val[MAX_FIELDS];
} form;

/* Parse an application/x-www-form-urlencoded body; fails the test on a malformed one. */
static void form_parse(const char *body, size_t len, form *f)
{
    memset(f, 0, sizeof *f);
    const char *p = body, *end = body + len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *fe = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(fe - p));
        assert_non_null(eq);
        assert_true(f->n < MAX_FIELDS);
        f->key[f->n] = form_decode(p, (size_t)(eq - p));
        f->val[f->n] = form_decode(eq + 1, (size_t)(fe - eq - 1));
        if (!f->key[f->n] || !f->val[f->n])
            fail_msg("badly encoded form field: %.*s", (int)(fe - p), p);
        f->n++;
        p = fe + (amp ? 1 : 0);
    }
}

static const char *form_get(const form *f, const char *key)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->key[i], key) == 0)
            return f->val[i];
    return NULL;
}

static const char *form_getf(const form *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static const char *form_getf(const form *f, const char *fmt, ...)
{
    char key[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(key, sizeof key, fmt, ap);
    va_end(ap);
    return form_get(f, key);
}

static void form_free(form *f)
{
    for (size_t i = 0; i < f->n; i++) {
        free(f->key[i]);
        free(f->val[i]);
    }
    f->n = 0;
}

/* The answer to a PublishBatch: Successful for each entry, Failed for those fail_ids names. */
static char *echo_reply(const http_stub_request *rq, const char *fail_ids)
{
    form f;
    form_parse(rq->body, rq->body_len, &f);
    sbuf ok = {0}, bad = {0}, out = {0};
    for (int n = 1;; n++) {
        const char *id = form_getf(&f, M "%d.Id", n);
        if (!id)
            break;
        char needle[32];
        snprintf(needle, sizeof needle, ",%s,", id);
        if (fail_ids && strstr(fail_ids, needle))
            sbuf_printf(&bad,
                        "<member><Code>InternalError</Code><Id>%s</Id>"
                        "<Message>entry &lt;%s&gt; failed</Message>"
                        "<SenderFault>false</SenderFault></member>",
                        id, id);
        else
            sbuf_printf(&ok, "<member><Id>%s</Id><MessageId>msg-%s</MessageId></member>", id, id);
    }
    sbuf_puts(&out, "<PublishBatchResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\">\n"
                    "  <PublishBatchResult>\n    <Failed>");
    sbuf_append(&out, bad.data ? bad.data : "", bad.len);
    sbuf_puts(&out, "</Failed>\n    <Successful>");
    sbuf_append(&out, ok.data ? ok.data : "", ok.len);
    sbuf_puts(&out, "</Successful>\n  </PublishBatchResult>\n  <ResponseMetadata><RequestId>"
                    "r-1</RequestId></ResponseMetadata>\n</PublishBatchResponse>\n");
    sbuf_free(&ok);
    sbuf_free(&bad);
    form_free(&f);
    return sbuf_take(&out, NULL);
}

/* ---- the server (support/http_stub) ---- */

/* A scripted answer without a body is an echo of the entries, failing the Ids in its data. */
static void echo(void *arg, const http_stub_request *rq, size_t index, http_stub_reply *reply)
{
    (void)arg;
    (void)index;
    if (!reply->body) {
        reply->body = echo_reply(rq, reply->data);
        reply->free_body = true;
    }
}

/* The request id the server answers every call with. */
#define REQUEST_ID "b5e7d2a1-0c3f-5e4d-8a9b-7c6d5e4f3a2b"

/* A server answering from steps, the last one repeating (none: an echo), as text/xml. */
static http_stub *server_start(const http_stub_reply *steps, size_t n)
{
    http_stub_options o = {.script = steps,
                           .script_len = n,
                           .headers = "Content-Type: text/xml\r\n"
                                      "x-amzn-RequestId: " REQUEST_ID "\r\n",
                           .handler = echo};
    return http_stub_start(&o);
}

/* Fake credentials and the SNS endpoint at url; a client for SNS. */
static aws_client *client_at(const char *url, aws_service service)
{
    unsetenv("AWS_ENDPOINT_URL");
    unsetenv("AWS_SESSION_TOKEN");
    setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", 1);
    setenv("AWS_REGION", "eu-west-1", 1);
    setenv(service == AWS_SNS ? "AWS_ENDPOINT_URL_SNS" : "AWS_ENDPOINT_URL_SQS", url, 1);
    char err[256] = "";
    aws_client *c = aws_client_new(service, err, sizeof err);
    if (!c)
        fail_msg("aws_client_new: %s", err);
    return c;
}

static aws_client *client_for(http_stub *s)
{
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", http_stub_port(s));
    return client_at(url, AWS_SNS);
}

static int64_t in_ms(int64_t ms)
{
    return clock_unix_ms() + ms;
}

#define ATTRS(id, type)                                                                            \
    "{\"TaskId\":{\"Type\":\"String\",\"Value\":\"" id "\"},"                                      \
    "\"TaskType\":{\"Type\":\"String\",\"Value\":\"" type "\"}}"

/* ---- tests: encoding and batching ---- */

static void test_form_encoding(void **state)
{
    (void)state;
    sbuf b = {0};
    const char in[] = "a&b=c+d e~-._/:ü\n\"{}%";
    sns_form_append(&b, in, strlen(in));
    assert_false(sbuf_failed(&b));
    assert_string_equal(b.data, "a%26b%3Dc%2Bd%20e~-._%2F%3A%C3%BC%0A%22%7B%7D%25");
    sbuf_free(&b);
    sns_form_append(&b, "x\0y", 3); /* a NUL byte is data too */
    assert_string_equal(b.data, "x%00y");
    sbuf_free(&b);
}

static void test_batch_fit(void **state)
{
    (void)state;
    sns_message m[25];
    for (int i = 0; i < 25; i++)
        m[i] = (sns_message){"{}", ATTRS("x", "TASK1")};
    assert_int_equal(sns_batch_fit(m, 25), SNS_BATCH_MAX);
    assert_int_equal(sns_batch_fit(m, 3), 3);
    assert_int_equal(sns_batch_fit(m, 0), 0);

    size_t big = 100 * 1024;
    char *body = malloc(big + 1);
    assert_non_null(body);
    memset(body, 'a', big);
    body[big] = '\0';
    for (int i = 0; i < 5; i++)
        m[i] = (sns_message){body, NULL};
    assert_int_equal(sns_batch_fit(m, 5), 2); /* 3 x 100 KiB > 256 KiB */
    char *huge = malloc(300 * 1024 + 1);
    assert_non_null(huge);
    memset(huge, 'b', 300 * 1024);
    huge[300 * 1024] = '\0';
    m[0] = (sns_message){huge, NULL};
    assert_int_equal(sns_batch_fit(m, 5), 1); /* too large alone: still one per call */
    m[0] = (sns_message){body, NULL};
    m[1] = (sns_message){huge, NULL};
    assert_int_equal(sns_batch_fit(m, 5), 1);
    free(body);
    free(huge);
}

/* ---- tests: the request and the reply ---- */

static void test_request_form(void **state)
{
    (void)state;
    http_stub *s = server_start(NULL, 0);
    aws_client *c = client_for(s);
    const char *tricky =
        "{\"s\":\"a&b=c+d e\",\"u\":\"h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x9a\x80\","
        "\"nl\":\"x\ny\"}";
    const char *tricky_attrs =
        "{\"TaskId\":{\"Type\":\"String\",\"Value\":\"0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e5f\"},"
        "\"TaskType\":{\"Type\":\"String\",\"Value\":\"TASK 1+&=\"},"
        "\"traceparent\":{\"Type\":\"String\","
        "\"Value\":\"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\"}}";
    sns_message m[2] = {{"{\"foo\":\"bar\"}", ATTRS("id-1", "TASK1")}, {tricky, tricky_attrs}};
    sns_status st[2];
    assert_true(sns_publish_batch(c, TOPIC, m, 2, in_ms(3000), st));
    for (int i = 0; i < 2; i++) {
        assert_true(st[i].ok);
        char want[16];
        snprintf(want, sizeof want, "msg-%d", i);
        assert_string_equal(st[i].message_id, want);
    }
    assert_int_equal(http_stub_count(s), 1);
    const http_stub_request *rq = http_stub_request_at(s, 0);
    char v[128];
    assert_non_null(http_stub_header(rq, "Content-Type", v, sizeof v));
    assert_string_equal(v, "application/x-www-form-urlencoded; charset=utf-8");

    /* byte for byte, up to the second entry */
    const char *want = "Action=PublishBatch&Version=2010-03-31&TopicArn=" TOPIC_ENC "&" M "1.Id=0"
                       "&" M "1.Message=%7B%22foo%22%3A%22bar%22%7D"
                       "&" M "1.MessageAttributes.entry.1.Name=TaskId"
                       "&" M "1.MessageAttributes.entry.1.Value.DataType=String"
                       "&" M "1.MessageAttributes.entry.1.Value.StringValue=id-1"
                       "&" M "1.MessageAttributes.entry.2.Name=TaskType"
                       "&" M "1.MessageAttributes.entry.2.Value.DataType=String"
                       "&" M "1.MessageAttributes.entry.2.Value.StringValue=TASK1"
                       "&" M "2.Id=1"
                       "&" M "2.Message=%7B%22s%22%3A%22a%26b%3Dc%2Bd%20e%22%2C%22u%22%3A%22h%C3%A9"
                       "llo%20%E2%9C%93%20%F0%9F%9A%80%22%2C%22nl%22%3A%22x%0Ay%22%7D";
    assert_true(rq->body_len > strlen(want));
    assert_memory_equal(rq->body, want, strlen(want));

    /* and every field, decoded */
    form f;
    form_parse(rq->body, rq->body_len, &f);
    assert_int_equal(f.n, 3 + 2 * 2 + 3 * 2 + 3 * 3);
    assert_string_equal(form_get(&f, "Action"), "PublishBatch");
    assert_string_equal(form_get(&f, "Version"), "2010-03-31");
    assert_string_equal(form_get(&f, "TopicArn"), TOPIC);
    assert_string_equal(form_get(&f, M "2.Message"), tricky);
    assert_string_equal(form_get(&f, M "2.MessageAttributes.entry.1.Name"), "TaskId");
    assert_string_equal(form_get(&f, M "2.MessageAttributes.entry.1.Value.StringValue"),
                        "0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e5f");
    assert_string_equal(form_get(&f, M "2.MessageAttributes.entry.2.Value.StringValue"),
                        "TASK 1+&=");
    assert_string_equal(form_get(&f, M "2.MessageAttributes.entry.3.Name"), "traceparent");
    assert_string_equal(form_get(&f, M "2.MessageAttributes.entry.3.Value.DataType"), "String");
    assert_string_equal(form_get(&f, M "2.MessageAttributes.entry.3.Value.StringValue"),
                        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    assert_null(form_get(&f, M "3.Id"));
    form_free(&f);
    aws_client_free(c);
    http_stub_stop(s);
}

static void test_attribute_types(void **state)
{
    (void)state;
    http_stub *s = server_start(NULL, 0);
    aws_client *c = client_for(s);
    sns_message m[2] = {{"x", "{\"n\":{\"Type\":\"Number\",\"Value\":\"5\"},"
                              "\"b\":{\"Type\":\"Binary\",\"Value\":\"AAE=\"}}"},
                        {"y", "{}"}};
    sns_status st[2];
    assert_true(sns_publish_batch(c, TOPIC, m, 2, in_ms(3000), st));
    form f;
    const http_stub_request *rq = http_stub_request_at(s, 0);
    form_parse(rq->body, rq->body_len, &f);
    assert_string_equal(form_get(&f, M "1.MessageAttributes.entry.1.Value.DataType"), "Number");
    assert_string_equal(form_get(&f, M "1.MessageAttributes.entry.1.Value.StringValue"), "5");
    assert_string_equal(form_get(&f, M "1.MessageAttributes.entry.2.Value.DataType"), "Binary");
    assert_string_equal(form_get(&f, M "1.MessageAttributes.entry.2.Value.BinaryValue"), "AAE=");
    assert_null(form_get(&f, M "1.MessageAttributes.entry.2.Value.StringValue"));
    assert_string_equal(form_get(&f, M "2.Message"), "y");
    assert_null(form_get(&f, M "2.MessageAttributes.entry.1.Name"));
    form_free(&f);
    aws_client_free(c);
    http_stub_stop(s);
}

static void test_reply_per_entry_outcomes(void **state)
{
    (void)state;
    /* Failed first, an entity and a character reference, an Id not of the call, one missing */
    http_stub_reply steps[] = {
        {.status = 200,
         .body = "<?xml version=\"1.0\"?>\n"
                 "<PublishBatchResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\">\n"
                 " <PublishBatchResult>\n  <Failed>\n   <member>\n"
                 "    <Code>InvalidParameter</Code>\n    <Id>1</Id>\n"
                 "    <Message>"
                 "Invalid parameter: &quot;Message&quot; too &lt;long&gt; &amp; caf&#233; "
                 "&#x2713;</Message>\n    <SenderFault>true</SenderFault>\n   </member>\n"
                 "   <member><Id>7</Id><Code>X</Code></member>\n  </Failed>\n  <Successful>\n"
                 "   <member>\n    <Id>0</Id>\n    <MessageId>5d9f-aa</MessageId>\n   </member>\n"
                 "   <member><Id>3</Id><MessageId>m3</MessageId></member>\n  </Successful>\n"
                 " </PublishBatchResult>\n</PublishBatchResponse>\n"}};
    http_stub *s = server_start(steps, 1);
    aws_client *c = client_for(s);
    sns_message m[4] = {{"a", NULL}, {"b", NULL}, {"c", NULL}, {"d", NULL}};
    sns_status st[4];
    assert_false(sns_publish_batch(c, TOPIC, m, 4, in_ms(3000), st));
    assert_true(st[0].ok);
    assert_string_equal(st[0].message_id, "5d9f-aa");
    assert_false(st[1].ok);
    assert_true(st[1].sender_fault);
    assert_true(st[1].refused); /* its own entry's SenderFault */
    assert_string_equal(st[1].code, "InvalidParameter");
    assert_string_equal(st[1].message,
                        "Invalid parameter: \"Message\" too <long> & caf\xc3\xa9 \xe2\x9c\x93");
    assert_false(st[2].ok); /* not mentioned */
    assert_string_equal(st[2].code, SNS_NO_OUTCOME);
    assert_false(st[2].refused);
    assert_true(st[3].ok);
    assert_string_equal(st[3].message_id, "m3");
    for (int i = 0; i < 4; i++) { /* each went out, in the one call */
        assert_true(st[i].sent);
        assert_string_equal(st[i].request_id, REQUEST_ID);
    }
    assert_int_equal(http_stub_count(s), 1);
    aws_client_free(c);
    http_stub_stop(s);
}

static void test_reply_self_closing_failed(void **state)
{
    (void)state;
    http_stub_reply steps[] = {
        {.status = 200,
         .body = "<PublishBatchResponse><PublishBatchResult><Failed/><Successful><member>"
                 "<Id>0</Id><MessageId>m0</MessageId></member><member><Id>1</Id>"
                 "<MessageId>m1</MessageId></member></Successful></PublishBatchResult>"
                 "</PublishBatchResponse>"}};
    http_stub *s = server_start(steps, 1);
    aws_client *c = client_for(s);
    sns_message m[2] = {{"a", NULL}, {"b", NULL}};
    sns_status st[2];
    assert_true(sns_publish_batch(c, TOPIC, m, 2, in_ms(3000), st));
    assert_string_equal(st[0].message_id, "m0");
    assert_string_equal(st[1].message_id, "m1");
    aws_client_free(c);
    http_stub_stop(s);
}

/* Read a reply to messages 0 and 1, both sent, as the call would; st[] starts zeroed. */
static void read_two(const char *body, size_t len, bool done[2], sns_status st[2])
{
    bool sent[2] = {true, true};
    done[0] = done[1] = false;
    memset(st, 0, 2 * sizeof *st);
    sns_reply_read(body, len, 0, 2, sent, done, st);
}

static void test_reply_reads_whole_words(void **state)
{
    (void)state;
    /* An Id is the message's only when all its text is the number: not "1" then a NUL byte, nor
     * "1" then more than the Id's room, cut before a broken character; SenderFault the same. */
#define REPLY(list, member)                                                                        \
    "<PublishBatchResponse><PublishBatchResult><" list "><member>" member "</member></" list       \
    "></PublishBatchResult></PublishBatchResponse>"
    static const char nul_id[] = REPLY("Successful", "<Id>1\0</Id><MessageId>m1</MessageId>");
    static const char well[] = REPLY("Successful", "<Id>1</Id><MessageId>m1</MessageId>");
    bool done[2];
    sns_status st[2];
    read_two(nul_id, sizeof nul_id - 1, done, st);
    assert_false(done[0]);
    assert_false(done[1]);
    read_two(well, sizeof well - 1, done, st);
    assert_true(done[1]);
    assert_true(st[1].ok);
    assert_string_equal(st[1].message_id, "m1");

    char long_id[256], long_fault[256];
    char tail[41];
    memset(tail, 0x80, 40);
    tail[40] = '\0';
    snprintf(long_id, sizeof long_id,
             REPLY("Successful", "<Id>1\xc3%s</Id><MessageId>m</MessageId>"), tail);
    read_two(long_id, strlen(long_id), done, st);
    assert_false(done[1]);
    assert_false(st[1].ok);

    snprintf(long_fault, sizeof long_fault,
             REPLY("Failed", "<Id>1</Id><Code>InternalError</Code><SenderFault>true\xc3%.20s"
                             "</SenderFault>"),
             tail);
    read_two(long_fault, strlen(long_fault), done, st);
    assert_true(done[1]);
    assert_false(st[1].ok);
    assert_string_equal(st[1].code, "InternalError");
    assert_false(st[1].sender_fault);
    static const char fault[] =
        REPLY("Failed", "<Id>1</Id><Code>InternalError</Code><SenderFault> true </SenderFault>");
    read_two(fault, sizeof fault - 1, done, st);
    assert_true(st[1].sender_fault);
    assert_false(st[1].refused); /* a sender fault, but not an invalid message: may be mended */
    static const char kms[] =
        REPLY("Failed", "<Id>1</Id><Code>KMSDisabled</Code><SenderFault>true</SenderFault>");
    read_two(kms, sizeof kms - 1, done, st);
    assert_true(st[1].sender_fault);
    assert_false(st[1].refused);
    static const char invalid[] = REPLY(
        "Failed", "<Id>1</Id><Code>InvalidParameterValue</Code><SenderFault>true</SenderFault>");
    read_two(invalid, sizeof invalid - 1, done, st);
    assert_true(st[1].refused);
#undef REPLY
}

/* Text in a CDATA section is read as written: an Id, a SenderFault, a code and a message. */
static void test_reply_reads_cdata_sections(void **state)
{
    (void)state;
    static const char reply[] =
        "<PublishBatchResponse><PublishBatchResult><Successful><member>"
        "<Id><![CDATA[0]]></Id><MessageId><![CDATA[m0]]></MessageId></member></Successful>"
        "<Failed><member><Id> <![CDATA[1]]> </Id><Code><![CDATA[InvalidParameter]]></Code>"
        "<Message><![CDATA[a <b> & &amp;]]></Message><SenderFault><![CDATA[true]]></SenderFault>"
        "</member></Failed></PublishBatchResult></PublishBatchResponse>";
    bool done[2];
    sns_status st[2];
    read_two(reply, sizeof reply - 1, done, st);
    assert_true(done[0]);
    assert_true(st[0].ok);
    assert_string_equal(st[0].message_id, "m0");
    assert_true(done[1]);
    assert_false(st[1].ok);
    assert_string_equal(st[1].code, "InvalidParameter");
    assert_string_equal(st[1].message, "a <b> & &amp;");
    assert_true(st[1].sender_fault);
    assert_true(st[1].refused);
}

/* A failed entry's message longer than a status keeps (SNS's KMS refusal, with the key's ARN and
 * KMS's own request id) is cut to fit and says so. */
static void test_reply_long_message_shows_its_cut(void **state)
{
    (void)state;
#define KMS_REFUSAL                                                                                \
    "User: arn:aws:sts::123456789012:assumed-role/taskd-dev-publish/taskd-dev-publish is not "     \
    "authorized to perform: kms:GenerateDataKey on resource: arn:aws:kms:eu-west-1:123456789012:"  \
    "key/1234abcd-12ab-34cd-56ef-1234567890ab because no identity-based policy allows the "        \
    "kms:GenerateDataKey action (Service: AWSKMS; Status Code: 400; Error Code: "                  \
    "AccessDeniedException; Request ID: 7c5b7a3e-0d7d-4b1e-9f2c-3e9a1b2c4d5e; Proxy: null)"
    static const char reply[] =
        "<PublishBatchResponse><PublishBatchResult><Failed><member><Id>1</Id>"
        "<Code>KMSAccessDenied</Code><Message>" KMS_REFUSAL "</Message>"
        "<SenderFault>true</SenderFault></member></Failed></PublishBatchResult>"
        "</PublishBatchResponse>";
    bool done[2];
    sns_status st[2];
    read_two(reply, sizeof reply - 1, done, st);
    assert_true(done[1]);
    assert_string_equal(st[1].code, "KMSAccessDenied");
    char want[sizeof st[1].message];
    assert_true(sizeof KMS_REFUSAL > sizeof want);
    snprintf(want, sizeof want, "%.*s...", (int)sizeof want - 4, KMS_REFUSAL);
    assert_string_equal(st[1].message, want);
#undef KMS_REFUSAL
}

static void test_empty_reply_fails(void **state)
{
    (void)state;
    http_stub_reply steps[] = {{.status = 200, .body = ""}};
    http_stub *s = server_start(steps, 1);
    aws_client *c = client_for(s);
    sns_message m[1] = {{"a", NULL}};
    sns_status st[1];
    assert_false(sns_publish_batch(c, TOPIC, m, 1, in_ms(3000), st));
    assert_false(st[0].ok);
    assert_string_equal(st[0].code, SNS_UNREADABLE);
    aws_client_free(c);
    http_stub_stop(s);
}

static void test_throttled_then_ok(void **state)
{
    (void)state;
    http_stub_reply steps[] = {
        {.status = 400,
         .body =
             "<ErrorResponse><Error><Type>Sender</Type><Code>Throttled</Code><Message>Rate exceeded"
             "</Message></Error><RequestId>r</RequestId></ErrorResponse>"},
        {.status = 503,
         .body = "<ErrorResponse><Error><Code>InternalError</Code></Error></ErrorResponse>"},
        {.status = 200}};
    http_stub *s = server_start(steps, 3);
    aws_client *c = client_for(s);
    sns_message m[3] = {{"a", NULL}, {"b", NULL}, {"c", NULL}};
    sns_status st[3];
    assert_true(sns_publish_batch(c, TOPIC, m, 3, in_ms(5000), st));
    for (int i = 0; i < 3; i++)
        assert_true(st[i].ok);
    assert_int_equal(http_stub_count(s), 3);
    /* every attempt carried the same form */
    assert_string_equal(http_stub_request_at(s, 0)->body, http_stub_request_at(s, 2)->body);
    aws_client_free(c);
    http_stub_stop(s);
}

static void test_not_found_fails_all(void **state)
{
    (void)state;
    http_stub_reply steps[] = {
        {.status = 404,
         .body = "<ErrorResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\">\n  <Error>"
                 "\n    <Type>Sender</Type>\n    <Code>NotFound</Code>\n    <Message>Topic does "
                 "not exist</Message>\n  </Error>\n  <RequestId>r</RequestId>\n"
                 "</ErrorResponse>\n"}};
    http_stub *s = server_start(steps, 1);
    aws_client *c = client_for(s);
    sns_message m[12];
    for (int i = 0; i < 12; i++)
        m[i] = (sns_message){"{}", ATTRS("x", "TASK1")};
    sns_status st[12];
    assert_false(sns_publish_batch(c, TOPIC, m, 12, in_ms(3000), st));
    for (int i = 0; i < 10; i++) {
        assert_false(st[i].ok);
        assert_string_equal(st[i].code, "NotFound");
        assert_true(st[i].sender_fault);
        assert_false(st[i].refused); /* the whole call's fault: the topic may come back */
        assert_non_null(strstr(st[i].message, "Topic does not exist"));
        assert_non_null(strstr(st[i].message, "HTTP 404"));
    }
    for (int i = 0; i < 10; i++) { /* sent, and refused with the call */
        assert_true(st[i].sent);
        assert_string_equal(st[i].request_id, REQUEST_ID);
    }
    for (int i = 10; i < 12; i++) { /* the second call is never made */
        assert_string_equal(st[i].code, SNS_NOT_SENT);
        assert_false(st[i].sent);
        assert_string_equal(st[i].request_id, "");
    }
    assert_int_equal(http_stub_count(s), 1); /* no retry of a 4xx */
    aws_client_free(c);
    http_stub_stop(s);
}

/* SNS's reason for refusing a whole call, longer than a status keeps of it, is cut where a
 * character ends and says so, before the HTTP status and the attempts, which are kept. */
static void test_a_long_refusal_shows_its_cut(void **state)
{
    (void)state;
    http_stub_reply steps[] = {
        {.status = 403,
         .body = "<ErrorResponse><Error><Type>Sender</Type><Code>AuthorizationError</Code><Message>"
                 "User: arn:aws:sts::123456789012:assumed-role/taskd-dev-publish/taskd-dev-publish "
                 "is not authorized to perform: SNS:PublishBatch on resource: "
                 "arn:aws:sns:eu-west-1:123456789012:tasks because no identity-based policy allows "
                 "the SNS:PublishBatch action</Message></Error>"
                 "<RequestId>r</RequestId></ErrorResponse>"}};
    http_stub *s = server_start(steps, 1);
    aws_client *c = client_for(s);
    sns_message m[1] = {{"{}", ATTRS("x", "TASK1")}};
    sns_status st[1];
    assert_false(sns_publish_batch(c, TOPIC, m, 1, in_ms(3000), st));
    assert_string_equal(st[0].code, "AuthorizationError");
    const char *end = strstr(st[0].message, "... (HTTP 403, 1 attempt)");
    assert_non_null(end);
    assert_string_equal(end, "... (HTTP 403, 1 attempt)");
    assert_int_equal(end - st[0].message, 199 - 3); /* the reason's 200 bytes, "..." its end */
    assert_int_equal(strncmp(st[0].message, "User: arn:aws:sts::123456789012:assumed-role/", 45),
                     0);
    aws_client_free(c);
    http_stub_stop(s);
}

/* A call refused with no body has aws_http's words for a message, which give the status: the
 * status is not given again beside the attempts. */
static void test_a_refusal_without_a_body_gives_its_status_once(void **state)
{
    (void)state;
    http_stub_reply steps[] = {{.status = 403, .body = ""}};
    http_stub *s = server_start(steps, 1);
    aws_client *c = client_for(s);
    sns_message m[1] = {{"{}", ATTRS("x", "TASK1")}};
    sns_status st[1];
    assert_false(sns_publish_batch(c, TOPIC, m, 1, in_ms(3000), st));
    assert_string_equal(st[0].code, "ClientError");
    assert_true(st[0].sender_fault);
    assert_string_equal(st[0].message, "HTTP 403 with no body (1 attempt)");
    aws_client_free(c);
    http_stub_stop(s);

    http_stub_reply unavailable[] = {{.status = 503, .body = ""}}; /* retried to the deadline */
    s = server_start(unavailable, 1);
    c = client_for(s);
    assert_false(sns_publish_batch(c, TOPIC, m, 1, in_ms(1000), st));
    assert_string_equal(st[0].code, "ServiceUnavailable");
    assert_false(st[0].sender_fault);
    const char *said = strstr(st[0].message, "HTTP 503");
    if (strncmp(st[0].message, "HTTP 503 with no body (", 23) != 0 || strstr(said + 1, "HTTP 503"))
        fail_msg("a 503 without a body says \"%s\"", st[0].message);
    aws_client_free(c);
    http_stub_stop(s);
}

/* An error code longer than a status holds is cut the same way, "..." its end. */
static void test_a_long_error_code_shows_its_cut(void **state)
{
    (void)state;
    char body[512];
    char code[101];
    memset(code, 'X', sizeof code - 1);
    code[sizeof code - 1] = '\0';
    snprintf(body, sizeof body,
             "<ErrorResponse><Error><Type>Sender</Type><Code>%s</Code><Message>no</Message>"
             "</Error><RequestId>r</RequestId></ErrorResponse>",
             code);
    http_stub_reply steps[] = {{.status = 400, .body = body}};
    http_stub *s = server_start(steps, 1);
    aws_client *c = client_for(s);
    sns_message m[1] = {{"{}", ATTRS("x", "TASK1")}};
    sns_status st[1];
    assert_false(sns_publish_batch(c, TOPIC, m, 1, in_ms(3000), st));
    assert_int_equal(strlen(st[0].code), sizeof st[0].code - 1);
    assert_string_equal(st[0].code + sizeof st[0].code - 4, "...");
    assert_int_equal(strspn(st[0].code, "X"), sizeof st[0].code - 4);
    aws_client_free(c);
    http_stub_stop(s);
}

/* A message over SNS's size limit by itself goes in a call of its own, which SNS refuses whole as
 * too long: that message can never go out, so it is refused; two messages over the limit together
 * are not (each may go alone). */
static void test_message_too_long_alone_is_refused(void **state)
{
    (void)state;
    static const char too_long[] =
        "<ErrorResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><Error><Type>Sender"
        "</Type><Code>BatchRequestTooLong</Code><Message>The length of all the messages put "
        "together is more than the limit.</Message></Error><RequestId>r</RequestId>"
        "</ErrorResponse>";
    http_stub_reply steps[] = {{.status = 400, .body = too_long}};
    http_stub *s = server_start(steps, 1);
    aws_client *c = client_for(s);
    size_t big = 300 * 1024;
    char *huge = malloc(big + 1);
    assert_non_null(huge);
    memset(huge, 'h', big);
    huge[big] = '\0';
    sns_message m[3] = {{huge, NULL}, {"a", NULL}, {"b", NULL}};
    sns_status st[3];
    assert_false(sns_publish_batch(c, TOPIC, m, 3, in_ms(3000), st));
    assert_false(st[0].ok);
    assert_string_equal(st[0].code, "BatchRequestTooLong");
    assert_true(st[0].sender_fault);
    assert_true(st[0].refused);
    assert_true(st[0].sent);
    for (int i = 1; i < 3; i++) { /* the next call is not made: their turn comes on the retry */
        assert_string_equal(st[i].code, SNS_NOT_SENT);
        assert_false(st[i].refused);
    }
    assert_int_equal(http_stub_count(s), 1);

    /* the same answer to a call of two: neither need be over the limit alone, so each goes in a
     * call of its own; the first, refused alone too, is refused, and the second waits its turn */
    m[0] = (sns_message){"x", NULL};
    m[1] = (sns_message){"y", NULL};
    assert_false(sns_publish_batch(c, TOPIC, m, 2, in_ms(3000), st));
    assert_string_equal(st[0].code, "BatchRequestTooLong");
    assert_true(st[0].refused);
    assert_string_equal(st[1].code, SNS_NOT_SENT);
    assert_false(st[1].refused);
    assert_int_equal(http_stub_count(s), 1 + 2);
    free(huge);
    aws_client_free(c);
    http_stub_stop(s);
}

/* The number of entries in a PublishBatch form, and the bytes of their messages. */
static size_t entries_of(const http_stub_request *rq, size_t *bytes)
{
    form f;
    form_parse(rq->body, rq->body_len, &f);
    size_t n = 0;
    *bytes = 0;
    for (const char *msg; (msg = form_getf(&f, M "%zu.Message", n + 1)); n++)
        *bytes += strlen(msg);
    form_free(&f);
    return n;
}

/* The calls s took, in order: each call's entries and their messages' bytes. */
static void assert_calls(http_stub *s, const size_t calls[][2], size_t n)
{
    assert_int_equal(http_stub_count(s), n);
    for (size_t i = 0; i < n; i++) {
        size_t bytes;
        assert_int_equal(entries_of(http_stub_request_at(s, i), &bytes), calls[i][0]);
        assert_int_equal(bytes, calls[i][1]);
    }
}

/* A topic whose MaximumMessageSize is *arg bytes: a call whose messages add up to more is
 * refused whole, BatchRequestTooLong; others are echoed. */
static void refuse_over(void *arg, const http_stub_request *rq, size_t index,
                        http_stub_reply *reply)
{
    (void)index;
    size_t bytes;
    entries_of(rq, &bytes);
    if (bytes <= *(const size_t *)arg) {
        reply->body = echo_reply(rq, NULL);
        reply->free_body = true;
        return;
    }
    reply->status = 400;
    reply->body =
        "<ErrorResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><Error><Type>Sender"
        "</Type><Code>BatchRequestTooLong</Code><Message>The length of all the messages put "
        "together is more than the limit.</Message></Error><RequestId>r</RequestId>"
        "</ErrorResponse>";
}

/* A stub of a topic whose MaximumMessageSize is 64 bytes (refuse_over()). */
static http_stub *small_topic_start(void)
{
    static size_t limit = 64;
    http_stub_reply steps[] = {{.status = 200}};
    http_stub_options o = {.script = steps,
                           .script_len = 1,
                           .headers = "Content-Type: text/xml\r\n"
                                      "x-amzn-RequestId: " REQUEST_ID "\r\n",
                           .handler = refuse_over,
                           .handler_arg = &limit};
    return http_stub_start(&o);
}

/* Bodies for it: three of 40 bytes ('a', 'b', 'c'), and big, one of 100 ('z'). */
static void sized_bodies(char small[3][41], char big[101])
{
    for (int i = 0; i < 3; i++) {
        memset(small[i], 'a' + i, 40);
        small[i][40] = '\0';
    }
    memset(big, 'z', 100);
    big[100] = '\0';
}

/* A topic whose size limit is below SNS's 256 KB refuses a call that sns_batch_fit() made whole:
 * the call is split in halves, each a call of its own, down to single messages, in the same
 * sns_publish_batch(). Each message then goes out, alone where it must, and one over the limit by
 * itself is refused; a message after it waits for the retry, as after any failed call. */
static void test_call_too_long_for_the_topic_is_split(void **state)
{
    (void)state;
    http_stub *s = small_topic_start();
    aws_client *c = client_for(s);
    char small[3][41], big[101];
    sized_bodies(small, big);
    sns_message m[4] = {{small[0], NULL}, {small[1], NULL}, {small[2], NULL}, {big, NULL}};
    sns_status st[4];
    assert_false(sns_publish_batch(c, TOPIC, m, 4, in_ms(3000), st));
    for (int i = 0; i < 3; i++) {
        assert_true(st[i].ok);
        assert_true(st[i].sent);
    }
    assert_false(st[3].ok);
    assert_true(st[3].sent);
    assert_true(st[3].refused);
    assert_string_equal(st[3].code, "BatchRequestTooLong");
    /* all four, refused; the halves 0-1, refused; 0; 1; the halves 2-3, refused; 2; 3, refused */
    const size_t calls[][2] = {{4, 220}, {2, 80}, {1, 40}, {1, 40}, {2, 140}, {1, 40}, {1, 100}};
    assert_calls(s, calls, sizeof calls / sizeof calls[0]);
    http_stub_stop(s);

    /* the one over the limit in the middle: the message after it is not sent */
    s = small_topic_start();
    aws_client_free(c);
    c = client_for(s);
    m[1] = (sns_message){big, NULL};
    assert_false(sns_publish_batch(c, TOPIC, m, 3, in_ms(3000), st));
    assert_true(st[0].ok);
    assert_true(st[1].refused);
    assert_string_equal(st[1].code, "BatchRequestTooLong");
    assert_string_equal(st[2].code, SNS_NOT_SENT);
    assert_false(st[2].sent);
    assert_false(st[2].refused);
    assert_int_equal(http_stub_count(s), 4); /* all three; 0; 1-2; 1 */
    aws_client_free(c);
    http_stub_stop(s);
}

/* A message the checks before sending refuse stops no more of a split call than of the call it
 * came from: in the first half, the second half still goes; in a second half held back by the
 * first's failure, it is refused still, not left for the retry as one not sent. */
static void test_split_call_keeps_the_refusals_before_sending(void **state)
{
    (void)state;
    http_stub *s = small_topic_start();
    aws_client *c = client_for(s);
    char small[3][41], big[101];
    sized_bodies(small, big);
    sns_message m[4] = {{"", NULL}, {small[0], NULL}, {small[1], NULL}, {small[2], NULL}};
    sns_status st[4];
    assert_false(sns_publish_batch(c, TOPIC, m, 4, in_ms(3000), st));
    assert_string_equal(st[0].code, SNS_INVALID_LOCAL);
    assert_true(st[0].refused);
    assert_false(st[0].sent);
    for (int i = 1; i < 4; i++)
        if (!st[i].ok || !st[i].sent)
            fail_msg("message %d: %s %s", i, st[i].code, st[i].message);
    /* the three, refused; the half 0-1: 1; the half 2-3, refused; 2; 3 */
    const size_t calls[][2] = {{3, 120}, {1, 40}, {2, 80}, {1, 40}, {1, 40}};
    assert_calls(s, calls, sizeof calls / sizeof calls[0]);
    http_stub_stop(s);

    /* the first half fails (one over the limit by itself): the second is not sent, but for its
     * message not UTF-8, which is refused */
    s = small_topic_start();
    aws_client_free(c);
    c = client_for(s);
    m[0] = (sns_message){big, NULL};
    m[1] = (sns_message){small[0], NULL};
    m[2] = (sns_message){"bad \xc3\x28 utf-8", NULL};
    m[3] = (sns_message){small[1], NULL};
    assert_false(sns_publish_batch(c, TOPIC, m, 4, in_ms(3000), st));
    assert_true(st[0].refused);
    assert_string_equal(st[0].code, "BatchRequestTooLong");
    assert_string_equal(st[1].code, SNS_NOT_SENT);
    assert_string_equal(st[2].code, SNS_INVALID_LOCAL);
    assert_true(st[2].refused);
    assert_false(st[2].sent);
    assert_non_null(strstr(st[2].message, "UTF-8"));
    assert_string_equal(st[3].code, SNS_NOT_SENT);
    assert_false(st[3].refused);
    assert_false(st[3].sent);
    assert_int_equal(http_stub_count(s), 3); /* the three; 0-1; 0 */
    aws_client_free(c);
    http_stub_stop(s);
}

static void test_batches_stop_after_failed_call(void **state)
{
    (void)state;
    http_stub_reply steps[] = {{.status = 200}, {.status = 200, .data = ",13,"}, {.status = 200}};
    http_stub *s = server_start(steps, 3);
    aws_client *c = client_for(s);
    sns_message m[25];
    char bodies[25][16];
    for (int i = 0; i < 25; i++) {
        snprintf(bodies[i], sizeof bodies[i], "{\"i\":%d}", i);
        m[i] = (sns_message){bodies[i], NULL};
    }
    sns_status st[25];
    assert_false(sns_publish_batch(c, TOPIC, m, 25, in_ms(3000), st));
    for (int i = 0; i < 20; i++) {
        if (i == 13) {
            assert_false(st[i].ok);
            assert_string_equal(st[i].code, "InternalError");
            assert_false(st[i].sender_fault);
            assert_string_equal(st[i].message, "entry <13> failed");
        } else {
            assert_true(st[i].ok);
        }
    }
    for (int i = 20; i < 25; i++) {
        assert_false(st[i].ok);
        assert_string_equal(st[i].code, SNS_NOT_SENT);
    }
    assert_int_equal(http_stub_count(s), 2);
    /* each call numbers its members from 1; the Ids are the messages' indexes */
    for (int r = 0; r < 2; r++) {
        form f;
        const http_stub_request *rq = http_stub_request_at(s, (size_t)r);
        form_parse(rq->body, rq->body_len, &f);
        for (int k = 1; k <= 10; k++) {
            char id[8];
            snprintf(id, sizeof id, "%d", r * 10 + k - 1);
            assert_string_equal(form_getf(&f, M "%d.Id", k), id);
            assert_string_equal(form_getf(&f, M "%d.Message", k), bodies[r * 10 + k - 1]);
        }
        assert_null(form_getf(&f, M "11.Id"));
        form_free(&f);
    }
    aws_client_free(c);
    http_stub_stop(s);
}

static void test_unpublishable_messages(void **state)
{
    (void)state;
    http_stub *s = server_start(NULL, 0);
    aws_client *c = client_for(s);
    sns_message m[6] = {
        {"good", NULL},
        {"bad \xc3\x28 utf-8", NULL},
        {"", NULL},
        {"x", "[1,2]"},
        {"y", "{\"TaskId\":{\"Type\":\"String\",\"Value\":5}}"},
        {"also good", ATTRS("i", "T")},
    };
    sns_status st[6];
    assert_false(sns_publish_batch(c, TOPIC, m, 6, in_ms(3000), st));
    assert_true(st[0].ok);
    for (int i = 1; i <= 4; i++) {
        assert_false(st[i].ok);
        assert_string_equal(st[i].code, SNS_INVALID_LOCAL);
        assert_true(st[i].sender_fault);
        assert_true(st[i].refused);
        assert_false(st[i].sent);
        assert_string_equal(st[i].request_id, "");
    }
    assert_true(st[0].sent && st[5].sent);
    assert_non_null(strstr(st[1].message, "UTF-8"));
    assert_non_null(strstr(st[4].message, "TaskId"));
    assert_true(st[5].ok);
    assert_int_equal(http_stub_count(s), 1);
    form f;
    const http_stub_request *rq = http_stub_request_at(s, 0);
    form_parse(rq->body, rq->body_len, &f);
    assert_string_equal(form_get(&f, M "1.Id"), "0");
    assert_string_equal(form_get(&f, M "2.Id"), "5"); /* members stay contiguous */
    assert_string_equal(form_get(&f, M "2.Message"), "also good");
    assert_null(form_get(&f, M "3.Id"));
    form_free(&f);

    /* overlong encodings, surrogates and stray continuation bytes are not UTF-8 either */
    static const char *const bad[] = {"\xc0\xaf", "\xed\xa0\x80", "\x80", "\xf4\x90\x80\x80",
                                      "\xe2\x82"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sns_message one = {bad[i], NULL};
        assert_false(sns_publish_batch(c, TOPIC, &one, 1, in_ms(3000), st));
        assert_string_equal(st[0].code, SNS_INVALID_LOCAL);
    }
    assert_int_equal(http_stub_count(s), 1); /* none of them was sent */
    aws_client_free(c);
    http_stub_stop(s);
}

static void test_past_deadline_sends_nothing(void **state)
{
    (void)state;
    http_stub *s = server_start(NULL, 0);
    aws_client *c = client_for(s);
    sns_message m[2] = {{"a", NULL}, {"b", NULL}};
    sns_status st[2];
    assert_false(sns_publish_batch(c, TOPIC, m, 2, clock_unix_ms() - 1000, st));
    for (int i = 0; i < 2; i++) {
        assert_false(st[i].ok);
        assert_string_equal(st[i].code, "Timeout");
        assert_false(st[i].sent); /* no request went out */
    }
    assert_int_equal(http_stub_count(s), 0);
    /* no topic: refused */
    assert_false(sns_publish_batch(c, "", m, 2, 0, st));
    assert_string_equal(st[1].code, SNS_INVALID_LOCAL);
    assert_true(sns_publish_batch(c, TOPIC, m, 0, 0, st)); /* nothing to do */
    aws_client_free(c);
    http_stub_stop(s);
}

/* ---- the real stand-in (FAUXQS_ENDPOINT) ---- */

static void test_fauxqs_publish_batch(void **state)
{
    (void)state;
    const char *endpoint = getenv("FAUXQS_ENDPOINT");
    if (!endpoint || !*endpoint) {
        skip();
        return;
    }
    aws_client *sqs = client_at(endpoint, AWS_SQS);
    aws_client *sns = client_at(endpoint, AWS_SNS);
    char topic_arn[256], queue_url[256];
    standin_task1_subscription(sns, sqs, topic_arn, queue_url);

    const char *tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    char attrs1[512];
    snprintf(attrs1, sizeof attrs1,
             "{\"TaskId\":{\"Type\":\"String\",\"Value\":\"id-1\"},"
             "\"TaskType\":{\"Type\":\"String\",\"Value\":\"TASK1\"},"
             "\"traceparent\":{\"Type\":\"String\",\"Value\":\"%s\"}}",
             tp);
    const char *body1 = "{\"s\":\"a&b=c+d e\",\"u\":\"h\xc3\xa9llo\",\"nl\":\"x\\ny\"}";
    sns_message m[3] = {{body1, attrs1},
                        {"{\"n\":2}", ATTRS("id-2", "TASK2")},
                        {"{\"n\":3}", ATTRS("id-3", "TASK1")}};
    sns_status st[3];
    assert_true(sns_publish_batch(sns, topic_arn, m, 3, in_ms(5000), st));
    for (int i = 0; i < 3; i++) {
        assert_true(st[i].ok);
        assert_true(strlen(st[i].message_id) > 0);
    }

    json_t *got = standin_sqs_ok(sqs, "ReceiveMessage",
                                 json_pack("{s:s, s:i, s:[s], s:i}", "QueueUrl", queue_url,
                                           "MaxNumberOfMessages", 10, "MessageAttributeNames",
                                           "All", "WaitTimeSeconds", 1));
    json_t *msgs = json_object_get(got, "Messages");
    assert_int_equal(json_array_size(msgs), 2); /* TASK2 filtered out */
    json_t *first = json_array_get(msgs, 0), *second = json_array_get(msgs, 1);
    if (strcmp(standin_message_attribute(first, "TaskId"), "id-1") != 0) {
        json_t *t = first;
        first = second;
        second = t;
    }
    assert_string_equal(json_string_value(json_object_get(first, "Body")), body1);
    assert_string_equal(standin_message_attribute(first, "TaskId"), "id-1");
    assert_string_equal(standin_message_attribute(first, "TaskType"), "TASK1");
    assert_string_equal(standin_message_attribute(first, "traceparent"), tp);
    assert_string_equal(json_string_value(json_object_get(second, "Body")), "{\"n\":3}");
    assert_string_equal(standin_message_attribute(second, "TaskId"), "id-3");
    json_decref(got);

    /* a topic that does not exist */
    char missing[300];
    snprintf(missing, sizeof missing, "%s-missing", topic_arn);
    assert_false(sns_publish_batch(sns, missing, m, 1, in_ms(5000), st));
    assert_string_equal(st[0].code, "NotFound");

    standin_task1_delete(sns, sqs, topic_arn, queue_url);
    aws_client_free(sns);
    aws_client_free(sqs);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_form_encoding),
        cmocka_unit_test(test_batch_fit),
        cmocka_unit_test(test_request_form),
        cmocka_unit_test(test_attribute_types),
        cmocka_unit_test(test_reply_per_entry_outcomes),
        cmocka_unit_test(test_reply_self_closing_failed),
        cmocka_unit_test(test_reply_reads_whole_words),
        cmocka_unit_test(test_reply_reads_cdata_sections),
        cmocka_unit_test(test_reply_long_message_shows_its_cut),
        cmocka_unit_test(test_empty_reply_fails),
        cmocka_unit_test(test_throttled_then_ok),
        cmocka_unit_test(test_not_found_fails_all),
        cmocka_unit_test(test_a_long_refusal_shows_its_cut),
        cmocka_unit_test(test_a_long_error_code_shows_its_cut),
        cmocka_unit_test(test_a_refusal_without_a_body_gives_its_status_once),
        cmocka_unit_test(test_batches_stop_after_failed_call),
        cmocka_unit_test(test_message_too_long_alone_is_refused),
        cmocka_unit_test(test_call_too_long_for_the_topic_is_split),
        cmocka_unit_test(test_split_call_keeps_the_refusals_before_sending),
        cmocka_unit_test(test_unpublishable_messages),
        cmocka_unit_test(test_past_deadline_sends_nothing),
        cmocka_unit_test(test_fauxqs_publish_batch),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return failed;
}
