/*
 * Unit tests for aws/dynamodb_store against a fake DynamoDB run inside the test
 * (support/http_stub) that answers each request from a per-test script, as
 * DynamoDB answers: what the store makes of answers DynamoDB Local does not
 * give on demand.
 *
 * Covered: a create with an Idempotency-Key whose TransactWriteItems is
 * cancelled (HTTP 400 TransactionCanceledException) for throttling — retried
 * with a new id until it goes through, STORE_BUSY when still throttled at the
 * deadline —, for a ValidationError (STORE_INVALID, not retried), for a
 * TransactionConflict (retried) and for a reason it does not know (an error,
 * not retried).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "aws/aws_http.h"
#include "aws/dynamodb_store.h"
#include "core/task.h"
#include "store/store.h"
#include "support/http_stub.h"
#include "util/clock.h"
#include "util/log.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How far past its deadline a call may be seen to return (a loaded machine, sanitizers). */
#define SLACK_MS 250

#define DDB_TYPE "com.amazonaws.dynamodb.v20120810#"
/* A cancelled transaction as DynamoDB answers it: reasons in the order of TransactItems (the
 * task, then its key item). */
#define CANCELLED(codes, reasons)                                                                  \
    "{\"__type\":\"" DDB_TYPE "TransactionCanceledException\",\"message\":\"Transaction "          \
    "cancelled, please refer cancellation reasons for specific reasons [" codes                    \
    "]\",\"CancellationReasons\":[" reasons "]}"
#define NONE "{\"Code\":\"None\"}"

static const char THROTTLED[] = CANCELLED(
    "ThrottlingError, None",
    "{\"Code\":\"ThrottlingError\",\"Message\":\"Throughput exceeds the current capacity for one "
    "or more global secondary indexes. DynamoDB is automatically scaling your index so please "
    "try again shortly.\"}," NONE);
static const char OVER_PROVISIONED[] =
    CANCELLED("None, ProvisionedThroughputExceeded", NONE
              ",{\"Code\":\"ProvisionedThroughputExceeded\",\"Message\":\"The level of configured "
              "provisioned throughput for the table was exceeded.\"}");
static const char INVALID[] =
    CANCELLED("ValidationError, None", "{\"Code\":\"ValidationError\",\"Message\":\"Item size has "
                                       "exceeded the maximum allowed size\"}," NONE);
static const char CONFLICT[] =
    CANCELLED("None, TransactionConflict", NONE ",{\"Code\":\"TransactionConflict\",\"Message\":"
                                                "\"Transaction is ongoing for the item\"}");
static const char UNKNOWN_REASON[] =
    CANCELLED("ItemCollectionSizeLimitExceeded, None",
              "{\"Code\":\"ItemCollectionSizeLimitExceeded\",\"Message\":\"too big\"}," NONE);

/* One test's fake DynamoDB, client and store. */
typedef struct fixture {
    http_stub *server;
    aws_client *client;
    store *store;
} fixture;

/* Start the fake answering from script (its last answer repeating) and open the store over it. */
static void start(fixture *f, const http_stub_reply *script, size_t n)
{
    http_stub_options o = {.script = script,
                           .script_len = n,
                           .headers = "Content-Type: application/x-amz-json-1.0\r\n"
                                      "x-amzn-RequestId: 66916324-67ca-54bb-a410-3f567a7a0571\r\n"};
    f->server = http_stub_start(&o);
    setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", 1);
    unsetenv("AWS_SESSION_TOKEN");
    setenv("AWS_REGION", "eu-west-1", 1);
    unsetenv("AWS_ENDPOINT_URL");
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", http_stub_port(f->server));
    setenv("AWS_ENDPOINT_URL_DYNAMODB", url, 1);
    char err[256] = "";
    f->client = aws_client_new(AWS_DYNAMODB, err, sizeof err);
    if (!f->client)
        fail_msg("aws_client_new: %s", err);
    dynamodb_store_options so = {.table = "tasks", .client = f->client, .retention_grace = 3600};
    f->store = dynamodb_store_open(&so, err, sizeof err);
    if (!f->store)
        fail_msg("dynamodb_store_open: %s", err);
}

static void stop(fixture *f)
{
    store_close(f->store);
    aws_client_free(f->client);
    http_stub_stop(f->server);
    unsetenv("AWS_ENDPOINT_URL_DYNAMODB");
    aws_set_deadline(0);
}

/* POST /tasks with an Idempotency-Key, as the API asks it of the store. */
static store_rc create_keyed(fixture *f, char id[37])
{
    store_new_task t = {.task_type = "TASK1",
                        .data = "{\"n\":1}",
                        .ttl = TASK_NULL_TIME,
                        .idempotency_key = "order-42"};
    id[0] = '\0';
    return store_create_task(f->store, &t, clock_unix_ms() / 1000, id);
}

/* Request i must be a TransactWriteItems; its ClientRequestToken (the new task's id) into token. */
static void transaction_at(fixture *f, size_t i, char token[37])
{
    const http_stub_request *rq = http_stub_request_at(f->server, i);
    char target[96];
    assert_non_null(http_stub_header(rq, "X-Amz-Target", target, sizeof target));
    assert_string_equal(target, "DynamoDB_20120810.TransactWriteItems");
    json_t *body = json_loadb(rq->body, rq->body_len, 0, NULL);
    assert_non_null(body);
    const char *t = json_string_value(json_object_get(body, "ClientRequestToken"));
    assert_non_null(t);
    assert_int_equal(strlen(t), TASK_ID_LEN);
    memcpy(token, t, TASK_ID_LEN + 1);
    json_decref(body);
}

static void test_throttled_transaction_is_retried(void **state)
{
    (void)state;
    /* one reason each way DynamoDB gives it, then the transaction goes through */
    const http_stub_reply script[] = {{.status = 400, .body = THROTTLED},
                                      {.status = 400, .body = OVER_PROVISIONED},
                                      {.status = 200, .body = "{}"}};
    fixture f;
    start(&f, script, 3);
    char id[37];
    assert_int_equal(create_keyed(&f, id), STORE_OK);
    assert_int_equal(http_stub_count(f.server), 3);
    char first[37], second[37], third[37];
    transaction_at(&f, 0, first);
    transaction_at(&f, 1, second);
    transaction_at(&f, 2, third);
    /* nothing was written by a cancelled transaction: each try is a new task id */
    assert_string_not_equal(first, second);
    assert_string_not_equal(second, third);
    assert_string_equal(id, third);
    stop(&f);
}

static void test_throttled_until_deadline_is_busy(void **state)
{
    (void)state;
    const http_stub_reply script[] = {{.status = 400, .body = THROTTLED}};
    fixture f;
    start(&f, script, 1);
    aws_set_deadline(clock_unix_ms() + 700);
    int64_t t0 = clock_mono_ms();
    char id[37];
    assert_int_equal(create_keyed(&f, id), STORE_BUSY);
    int64_t took = clock_mono_ms() - t0;
    assert_true(took <= 700 + SLACK_MS);
    size_t n = http_stub_count(f.server);
    assert_true(n >= 2 && n <= AWS_MAX_ATTEMPTS);
    char token[37];
    for (size_t i = 0; i < n; i++)
        transaction_at(&f, i, token);
    stop(&f);
}

static void test_validation_reason_is_invalid(void **state)
{
    (void)state;
    const http_stub_reply script[] = {{.status = 400, .body = INVALID}};
    fixture f;
    start(&f, script, 1);
    char id[37];
    assert_int_equal(create_keyed(&f, id), STORE_INVALID);
    assert_int_equal(http_stub_count(f.server), 1); /* it can never be kept: not tried again */
    stop(&f);
}

static void test_conflict_is_retried(void **state)
{
    (void)state;
    const http_stub_reply script[] = {{.status = 400, .body = CONFLICT},
                                      {.status = 200, .body = "{}"}};
    fixture f;
    start(&f, script, 2);
    char id[37], first[37], second[37];
    assert_int_equal(create_keyed(&f, id), STORE_OK);
    assert_int_equal(http_stub_count(f.server), 2);
    transaction_at(&f, 0, first);
    transaction_at(&f, 1, second);
    assert_string_not_equal(first, second);
    assert_string_equal(id, second);
    stop(&f);
}

static void test_unknown_reason_is_an_error(void **state)
{
    (void)state;
    const http_stub_reply script[] = {{.status = 400, .body = UNKNOWN_REASON}};
    fixture f;
    start(&f, script, 1);
    char id[37];
    assert_int_equal(create_keyed(&f, id), STORE_ERROR);
    assert_int_equal(http_stub_count(f.server), 1);
    stop(&f);
}

int main(void)
{
    log_setup(LOG_ERROR, "test_dynamodb_store"); /* the warnings of busy tables are expected */
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_throttled_transaction_is_retried),
        cmocka_unit_test(test_throttled_until_deadline_is_busy),
        cmocka_unit_test(test_validation_reason_is_invalid),
        cmocka_unit_test(test_conflict_is_retried),
        cmocka_unit_test(test_unknown_reason_is_an_error),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return failed;
}
