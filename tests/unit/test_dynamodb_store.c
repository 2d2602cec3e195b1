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
 * not retried). A keyed create whose key is taken (a ConditionalCheckFailed
 * reason carrying the key item): the duplicate when its task is there, or when
 * reading it fails; when the task is gone, the key item is deleted under the
 * condition that it still names that task and the create tried again (also
 * when the condition fails: another create took the key meanwhile), and a
 * DeleteItem that fails is the create's answer. A claim whose UpdateItem was
 * applied but answered 500, so that its second attempt (the same token) fails
 * its condition: the claimer's own (STORE_OK, CREATED before it), and a
 * conflict when the item carries another update's token. A claim applied whose
 * answer's old image cannot be read: done, with the task before as the update
 * knows it. A read of the key item whose answer cannot be read, or a key item
 * whose task_id or ttl cannot be read: an error, the create not tried again. A task's time past 64
 * bits: a malformed item; one, read alone or in a page, is logged. A create unanswered, with a key
 * or without: unknown, naming the task it may have made. The span of a write: the call that decided
 * it, with its request id, table and region. A new task's item: counted as AWS's rules count the
 * item it sends, and refused with that size before any call, with a key or without.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "aws/aws_http.h"
#include "aws/dynamodb_store.h"
#include "core/attrval.h"
#include "core/sbuf.h"
#include "core/task.h"
#include "core/tracectx.h"
#include "store/store.h"
#include "support/http_stub.h"
#include "support/stderr_capture.h"
#include "util/clock.h"
#include "util/log.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
/* The key's item as the cancellation reason of its Put carries it
 * (ReturnValuesOnConditionCheckFailure ALL_OLD), naming task id, its window still open. */
#define KEY_TAKEN_BY(id)                                                                           \
    CANCELLED("None, ConditionalCheckFailed",                                                      \
              NONE ",{\"Code\":\"ConditionalCheckFailed\",\"Message\":\"The conditional request "  \
                   "failed\",\"Item\":{\"id\":{\"S\":\"idem#order-42\"},\"task_id\":{\"S\":\"" id  \
                   "\"},\"created_time\":{\"N\":\"1700000000\"},\"ttl\":{\"N\":\"9999999999\"}}}")
#define OLD_TASK   "0190a6b2-7c3d-7e4f-8a5b-1c2d3e4f5a6b"
#define OTHER_TASK "0190a6b2-7c3d-7e4f-8a5b-1c2d3e4f5a6c"
static const char KEY_TAKEN[] = KEY_TAKEN_BY(OLD_TASK);
/* the same without the key's item (a DynamoDB that does not return it): the store reads it */
static const char KEY_TAKEN_NO_ITEM[] =
    CANCELLED("None, ConditionalCheckFailed",
              NONE ",{\"Code\":\"ConditionalCheckFailed\",\"Message\":\"The conditional request "
                   "failed\"}");
static const char KEY_ITEM[] =
    "{\"Item\":{\"id\":{\"S\":\"idem#order-42\"},\"task_id\":{\"S\":\"" OLD_TASK "\"},"
    "\"created_time\":{\"N\":\"1700000000\"},\"ttl\":{\"N\":\"9999999999\"}}}";
static const char KEY_TAKEN_BY_OTHER[] = KEY_TAKEN_BY(OTHER_TASK);
/* GetItem of a task that is there */
#define TASK_ITEM(id)                                                                              \
    "{\"Item\":{\"id\":{\"S\":\"" id "\"},\"task_type\":{\"S\":\"TASK1\"},\"status\":{\"S\":"      \
    "\"CREATED\"},\"created_time\":{\"N\":\"1700000000\"},\"data\":{\"M\":{}}}}"
static const char OLD_TASK_ITEM[] = TASK_ITEM(OLD_TASK);
static const char OTHER_TASK_ITEM[] = TASK_ITEM(OTHER_TASK);
static const char ACCESS_DENIED[] =
    "{\"__type\":\"com.amazon.coral.service#AccessDeniedException\","
    "\"Message\":\"not authorized\"}";
static const char CONDITION_FAILED[] =
    "{\"__type\":\"" DDB_TYPE "ConditionalCheckFailedException\",\"message\":\"The conditional "
    "request failed\"}";
static const char VALIDATION_CALL[] =
    "{\"__type\":\"com.amazon.coral.validate#ValidationException\","
    "\"message\":\"The provided key element does not match the schema\"}";
static const char THROTTLED_CALL[] =
    "{\"__type\":\"" DDB_TYPE "ThrottlingException\",\"message\":\"Rate of requests exceeds the "
    "allowed throughput.\"}";

static const char UNKNOWN_REASON[] =
    CANCELLED("ItemCollectionSizeLimitExceeded, None",
              "{\"Code\":\"ItemCollectionSizeLimitExceeded\",\"Message\":\"too big\"}," NONE);

/* One test's fake DynamoDB, client and store. */
typedef struct fixture {
    http_stub *server;
    aws_client *client;
    store *store;
} fixture;

/* Start the fake answering from script (its last answer repeating), each answer passed through
 * handler when there is one, and open the store over it. */
static void start_handled(fixture *f, const http_stub_reply *script, size_t n,
                          http_stub_handler *handler, void *arg)
{
    http_stub_options o = {.script = script,
                           .script_len = n,
                           .headers = "Content-Type: application/x-amz-json-1.0\r\n"
                                      "x-amzn-RequestId: 66916324-67ca-54bb-a410-3f567a7a0571\r\n",
                           .handler = handler,
                           .handler_arg = arg};
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

static void start(fixture *f, const http_stub_reply *script, size_t n)
{
    start_handled(f, script, n, NULL, NULL);
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

/* The text of JSON string v, failing the test when it is not one. */
static const char *text_of(const json_t *v)
{
    assert_true(json_is_string(v));
    return json_string_value(v);
}

/* Request i must be operation op (e.g. "GetItem") on the table; its body, parsed (decref it). */
static json_t *request_of(fixture *f, size_t i, const char *op)
{
    const http_stub_request *rq = http_stub_request_at(f->server, i);
    char target[96], want[96];
    assert_non_null(http_stub_header(rq, "X-Amz-Target", target, sizeof target));
    snprintf(want, sizeof want, "DynamoDB_20120810.%s", op);
    assert_string_equal(target, want);
    json_t *body = json_loadb(rq->body, rq->body_len, 0, NULL);
    assert_non_null(body);
    if (strcmp(op, "TransactWriteItems") != 0) /* a transaction's items name their tables */
        assert_string_equal(text_of(json_object_get(body, "TableName")), "tasks");
    return body;
}

/* Request i must be a TransactWriteItems; its ClientRequestToken (the new task's id) into token. */
static void transaction_at(fixture *f, size_t i, char token[37])
{
    json_t *body = request_of(f, i, "TransactWriteItems");
    const char *t = text_of(json_object_get(body, "ClientRequestToken"));
    assert_int_equal(strlen(t), TASK_ID_LEN);
    memcpy(token, t, TASK_ID_LEN + 1);
    json_decref(body);
}

/* Request i must be a consistent GetItem of task id. */
static void task_read_at(fixture *f, size_t i, const char *id)
{
    json_t *body = request_of(f, i, "GetItem");
    json_t *key = json_object_get(body, "Key");
    assert_int_equal(json_object_size(key), 1);
    assert_string_equal(text_of(json_object_get(json_object_get(key, "id"), "S")), id);
    assert_true(json_is_true(json_object_get(body, "ConsistentRead")));
    json_decref(body);
}

/* Request i must be the DeleteItem of key "order-42"'s item, on condition that it names task id. */
static void key_delete_at(fixture *f, size_t i, const char *id)
{
    json_t *body = request_of(f, i, "DeleteItem");
    json_t *key = json_object_get(body, "Key");
    assert_int_equal(json_object_size(key), 1);
    assert_string_equal(text_of(json_object_get(json_object_get(key, "id"), "S")), "idem#order-42");
    assert_string_equal(text_of(json_object_get(body, "ConditionExpression")), "task_id = :t");
    json_t *values = json_object_get(body, "ExpressionAttributeValues");
    assert_int_equal(json_object_size(values), 1);
    assert_string_equal(text_of(json_object_get(json_object_get(values, ":t"), "S")), id);
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

/* The size a refused new task's item is said to have, its data {"pad":<360 KB of text>,"k":<value>}
 * (no "k" when value is NULL), given as its image and attrval's count of it with extra added, or
 * as text alone (image NULL) for the store to derive both; 0 when it is not refused with a size. */
static size_t refused_size(fixture *f, const char *value, bool image, size_t extra)
{
    size_t pad = 360 * 1000;
    char *data = malloc(pad + strlen(value ? value : "") + 64);
    assert_non_null(data);
    int k = sprintf(data, "{\"pad\":\"");
    memset(data + k, 'x', pad);
    sprintf(data + k + pad, "\"%s%s}", value ? ",\"k\":" : "", value ? value : "");
    size_t size = 0;
    char *data_image = image ? attrval_from_text(data, &size) : NULL;
    assert_true(!image || data_image);
    store_write w = {.kind = STORE_WRITE_CREATE,
                     .now = 1700000000,
                     .create = {.task_type = "TASK1",
                                .data = data,
                                .data_image = data_image,
                                .data_size = size ? size + extra : 0,
                                .ttl = TASK_NULL_TIME}};
    store_rc rc = store_write_wait(f->store, &w);
    free(data_image);
    free(data);
    return rc == STORE_INVALID ? w.size : 0;
}

/* getrandom() (CMakeLists.txt links this test with --wrap=getrandom), counted, failing with EIO
 * while random_fails is set. */
static atomic_int random_calls;
static atomic_bool random_fails;

ssize_t __real_getrandom(void *buf, size_t len, unsigned flags);
ssize_t __wrap_getrandom(void *buf, size_t len, unsigned flags);
ssize_t __wrap_getrandom(void *buf, size_t len, unsigned flags)
{
    atomic_fetch_add(&random_calls, 1);
    if (atomic_load(&random_fails)) {
        errno = EIO;
        return -1;
    }
    return __real_getrandom(buf, len, flags);
}

/* A create too big is refused (413) before its id is taken, keyed or not: with getrandom()
 * failing, which the id needs, it is still STORE_INVALID with its size, where it was STORE_ERROR
 * (500); nothing random is taken, nothing sent. */
static void test_a_create_too_big_takes_no_id(void **state)
{
    (void)state;
    fixture f;
    start(&f, NULL, 0);
    size_t pad = 360 * 1000;
    char *data = malloc(pad + 16);
    assert_non_null(data);
    int k = sprintf(data, "{\"pad\":\"");
    memset(data + k, 'x', pad);
    strcpy(data + k + pad, "\"}");
    const char *keys[] = {NULL, "key-1"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        store_write w = {.kind = STORE_WRITE_CREATE,
                         .now = 1700000000,
                         .create = {.task_type = "TASK1",
                                    .data = data,
                                    .idempotency_key = keys[i],
                                    .ttl = TASK_NULL_TIME}};
        atomic_store(&random_calls, 0);
        atomic_store(&random_fails, true);
        store_rc rc = store_write_wait(f.store, &w);
        atomic_store(&random_fails, false);
        if (rc != STORE_INVALID)
            fail_msg("%s create: %s where invalid (%d random calls)", keys[i] ? "a keyed" : "a",
                     store_rc_name(rc), atomic_load(&random_calls));
        assert_true(w.size > pad && w.size > w.size_limit);
        assert_int_equal(atomic_load(&random_calls), 0);
    }
    free(data);
    assert_int_equal(http_stub_count(f.server), 0);
    stop(&f);
}

/*
 * A new task's data is counted as attrval_write() counted it when it wrote the image (a string's
 * UTF-8 bytes, a number's significant digits and its sign, 1 for a BOOL or NULL, 3 for a map or
 * list and 1 and its name for each member), that count taken as given, the image not read again;
 * without an image both are derived from the data, to the same count. Nothing is sent.
 */
static void test_new_task_data_counted_as_its_image_was_written(void **state)
{
    (void)state;
    fixture f;
    start(&f, NULL, 0);
    size_t base = refused_size(&f, NULL, true, 0);
    assert_true(base > 360 * 1000);
    static const struct {
        const char *value;
        size_t bytes; /* of the value alone */
    } cases[] = {
        {"\"abc\"", 3},
        {"\"\\u00e9\\u20AC\\ud83d\\ude00\"", 2 + 3 + 4},
        {"-12.5", 3 / 2 + 2 + 1},
        {"null", 1},
        {"{\"ab\":1,\"c\\u00e9\":[\"x\",true]}",
         3 + (1 + 2 + 2) + (1 + 3 + (3 + (1 + 1) + (1 + 1)))},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t want = base + 1 + 1 + cases[i].bytes;
        size_t given = refused_size(&f, cases[i].value, true, 0);
        size_t derived = refused_size(&f, cases[i].value, false, 0);
        if (given != want || derived != want)
            fail_msg("%s: counted %zu bytes given its image, %zu from its text, where %zu",
                     cases[i].value, given - base - 2, derived - base - 2, cases[i].bytes);
    }
    /* the count given is the one taken */
    assert_int_equal(refused_size(&f, NULL, true, 1000), base + 1000);
    assert_int_equal(http_stub_count(f.server), 0);
    stop(&f);
}

/* The bytes AWS's rules count for a number's text as the store writes one (an integer): a byte
 * for each two significant digits, leading and trailing zeros aside, 2, and 1 more for a negative
 * number, the most DynamoDB may count for it (docs/design.md). */
static size_t number_counted(const char *n)
{
    bool negative = *n == '-';
    n += negative;
    assert_true(*n && strspn(n, "0123456789") == strlen(n));
    while (*n == '0')
        n++;
    size_t digits = strlen(n);
    while (digits && n[digits - 1] == '0')
        digits--;
    return digits / 2 + 2 + negative;
}

/* The bytes AWS's rules count for AttributeValue v as it was sent: a string's UTF-8 bytes, a
 * number's number_counted(), 1 for a BOOL or NULL, and for a map or a list 3 and, for each member
 * or element, 1, with a member its name's bytes. */
static size_t value_counted(const json_t *v)
{
    assert_int_equal(json_object_size(v), 1);
    const char *type = json_object_iter_key(json_object_iter((json_t *)v));
    const json_t *x = json_object_get(v, type);
    if (strcmp(type, "S") == 0)
        return strlen(text_of(x));
    if (strcmp(type, "N") == 0)
        return number_counted(text_of(x));
    if (strcmp(type, "NULL") == 0 || strcmp(type, "BOOL") == 0)
        return 1;
    size_t size = 3;
    const char *name;
    const json_t *member;
    if (strcmp(type, "M") == 0) {
        json_object_foreach((json_t *)x, name, member) size +=
            1 + strlen(name) + value_counted(member);
        return size;
    }
    assert_string_equal(type, "L");
    for (size_t i = 0; i < json_array_size(x); i++)
        size += 1 + value_counted(json_array_get(x, i));
    return size;
}

/* The first n bytes of pattern repeated, into out (n + 1 bytes). */
static char *repeat(char *out, const char *pattern, size_t n)
{
    size_t len = strlen(pattern);
    for (size_t i = 0; i < n; i++)
        out[i] = pattern[i % len];
    out[n] = '\0';
    return out;
}

/* Bytes of data past the most an item takes: a create counted this much more is refused. */
#define PAST_ANY_ITEM (400 * 1024)

/*
 * A new task's item, its data {} (3 bytes), is counted by the store as AWS's rules count the item
 * it sends: created, its PutItem's Item is counted here; created again with its data counted
 * PAST_ANY_ITEM bytes more, it is refused, with that count and those bytes as its size, with an
 * Idempotency-Key or without, and nothing is sent.
 */
static void check_item_count(fixture *f, store_new_task c, int64_t now)
{
    c.data = "{}";
    c.data_image = "{\"M\":{}}";
    c.data_size = 3;
    store_write w = {.kind = STORE_WRITE_CREATE, .now = now, .create = c};
    assert_int_equal(store_write_wait(f->store, &w), STORE_OK);
    size_t n = http_stub_count(f->server);
    json_t *body = request_of(f, n - 1, "PutItem");
    const json_t *item = json_object_get(body, "Item");
    size_t want = 0;
    const char *name;
    const json_t *v;
    json_object_foreach((json_t *)item, name, v) want += strlen(name) + value_counted(v);
    json_decref(body);
    c.data_size += PAST_ANY_ITEM;
    w = (store_write){.kind = STORE_WRITE_CREATE, .now = now, .create = c};
    assert_int_equal(store_write_wait(f->store, &w), STORE_INVALID);
    assert_int_equal(w.size_limit, 356454); /* CREATE_ITEM_MAX, as design.md gives it */
    /* with an Idempotency-Key, its transaction's task item the same */
    store_write keyed = {.kind = STORE_WRITE_CREATE, .now = now, .create = c};
    keyed.create.idempotency_key = "order-42";
    assert_int_equal(store_write_wait(f->store, &keyed), STORE_INVALID);
    assert_int_equal(keyed.size, w.size);
    assert_int_equal(http_stub_count(f->server), n);
    if (w.size - PAST_ANY_ITEM != want)
        fail_msg("task_type of %zu bytes, trace %s, tracestate of %zd bytes, task_ttl %lld, "
                 "created_time %lld: counted %zu bytes, where %zu",
                 strlen(c.task_type), c.trace ? "set" : "absent",
                 c.tracestate ? (ssize_t)strlen(c.tracestate) : (ssize_t)-1, (long long)c.ttl,
                 (long long)now, w.size - PAST_ANY_ITEM, want);
}

/*
 * A new task's item is counted, its attributes as the store writes them, as AWS's rules count the
 * item sent: every optional attribute (task_ttl, trace, tracestate) present or absent, task types
 * of every length to TASK_TYPE_MAX and tracestates of every length to TRACECTX_TRACESTATE_MAX (of
 * characters of 1 to 3 bytes, quotes, control characters, and bytes that are not UTF-8, which the
 * request holds as U+FFFD), and numbers of every width, signed or not, with trailing zeros or not.
 */
static void test_new_task_item_counted_as_written(void **state)
{
    (void)state;
    fixture f;
    start(&f, NULL, 0);
    static const char mixed[] = "T\xc3\xa9\"\\\x01\xff\xe2\x82\xac/x";
    static const char trace[] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    char type[TASK_TYPE_MAX + 1], state_text[TRACECTX_TRACESTATE_MAX + 1];
    for (size_t len = 1; len <= TASK_TYPE_MAX; len++)
        for (int present = 0; present < 8; present++) {
            store_new_task c = {.task_type = repeat(type, mixed, len),
                                .ttl = present & 1 ? 1700086400 : TASK_NULL_TIME,
                                .trace = present & 2 ? trace : NULL,
                                .tracestate = present & 4 ? "vendor=a1" : NULL};
            check_item_count(&f, c, 1700000000);
        }
    for (size_t len = 0; len <= TRACECTX_TRACESTATE_MAX; len++) {
        store_new_task c = {.task_type = "TASK1",
                            .ttl = len % 2 ? TASK_NULL_TIME : 1700086400,
                            .trace = len % 3 ? trace : NULL,
                            .tracestate =
                                repeat(state_text, len % 4 ? "rojo=00f0,c=\xff" : mixed, len)};
        check_item_count(&f, c, 1700000000);
    }
    /* numbers of every width: 9..., 10..., 12...; negative too; and the ends of int64 */
    int64_t numbers[19 * 6 + 2];
    size_t count = 0;
    int64_t nines = 0, power = 1, digits = 0;
    for (int width = 1; width <= 19; width++) {
        nines = width < 19 ? nines * 10 + 9 : INT64_MAX; /* 19 nines are past int64 */
        digits = digits * 10 + width % 10;
        numbers[count++] = nines;
        numbers[count++] = -nines;
        numbers[count++] = power;
        numbers[count++] = -power;
        numbers[count++] = digits;
        numbers[count++] = -digits;
        if (width < 19)
            power *= 10;
    }
    numbers[count++] = INT64_MIN;
    numbers[count++] = 0;
    for (size_t i = 0; i < count; i++) {
        store_new_task c = {.task_type = "TASK1", .ttl = TASK_NULL_TIME};
        check_item_count(&f, c, numbers[i]); /* created_time, and the history entry's time */
        if (numbers[i] != TASK_NULL_TIME) {
            c.ttl = numbers[i];
            check_item_count(&f, c, 1700000000);
        }
    }
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

/* A keyed create whose transaction is cancelled with this answer fails at once: STORE_ERROR, no
 * other call. */
static void check_cancelled_is_an_error(const char *cancellation)
{
    const http_stub_reply script[] = {{.status = 400, .body = cancellation}};
    fixture f;
    start(&f, script, 1);
    char id[37];
    assert_int_equal(create_keyed(&f, id), STORE_ERROR);
    assert_int_equal(http_stub_count(f.server), 1);
    stop(&f);
}

static void test_unknown_reason_is_an_error(void **state)
{
    (void)state;
    check_cancelled_is_an_error(UNKNOWN_REASON);
}

/* The key's item id in the transaction a create with Idempotency-Key key sends. */
static void check_key_item(const char *key, const char *want)
{
    const http_stub_reply script[] = {{.status = 200, .body = "{}"}};
    fixture f;
    start(&f, script, 1);
    store_new_task t = {
        .task_type = "TASK1", .data = "{}", .ttl = TASK_NULL_TIME, .idempotency_key = key};
    char id[37];
    assert_int_equal(store_create_task(f.store, &t, clock_unix_ms() / 1000, id), STORE_OK);
    char token[37];
    transaction_at(&f, 0, token);
    const http_stub_request *rq = http_stub_request_at(f.server, 0);
    json_t *body = json_loadb(rq->body, rq->body_len, 0, NULL);
    assert_non_null(body);
    const char *found = NULL;
    size_t i;
    json_t *item;
    json_array_foreach(json_object_get(body, "TransactItems"), i, item)
    {
        const char *name = json_string_value(json_object_get(
            json_object_get(json_object_get(json_object_get(item, "Put"), "Item"), "id"), "S"));
        if (name && strncmp(name, "idem", 4) == 0)
            found = name;
    }
    assert_non_null(found);
    assert_string_equal(found, want);
    json_decref(body);
    stop(&f);
}

/* A key that is UTF-8 is its item's id as it is; one that is not, in hex (DynamoDB keys are
 * UTF-8 strings). */
static void test_key_not_utf8_is_kept_in_hex(void **state)
{
    (void)state;
    check_key_item("caf\xc3\xa9", "idem#caf\xc3\xa9");
    check_key_item("\xff\xfe", "idem~fffe");
    check_key_item("a\xed\xa0\x80", "idem~61eda080"); /* a surrogate */
}

static void test_key_of_live_task_is_duplicate(void **state)
{
    (void)state;
    const http_stub_reply script[] = {{.status = 400, .body = KEY_TAKEN},
                                      {.status = 200, .body = OLD_TASK_ITEM}};
    fixture f;
    start(&f, script, 2);
    char id[37], token[37];
    assert_int_equal(create_keyed(&f, id), STORE_DUPLICATE);
    assert_string_equal(id, OLD_TASK);
    assert_int_equal(http_stub_count(f.server), 2); /* nothing deleted, nothing tried again */
    transaction_at(&f, 0, token);
    task_read_at(&f, 1, OLD_TASK);
    stop(&f);
}

/* A cancellation that names the key's Put but carries no item: the key is read (consistently) for
 * its task, which decides as the item would have; a key gone meanwhile is taken anew. */
static void test_key_taken_without_its_item_is_read(void **state)
{
    (void)state;
    const http_stub_reply taken[] = {{.status = 400, .body = KEY_TAKEN_NO_ITEM},
                                     {.status = 200, .body = KEY_ITEM},
                                     {.status = 200, .body = OLD_TASK_ITEM}};
    fixture f;
    start(&f, taken, 3);
    char id[37], token[37], again[37];
    assert_int_equal(create_keyed(&f, id), STORE_DUPLICATE);
    assert_string_equal(id, OLD_TASK);
    assert_int_equal(http_stub_count(f.server), 3);
    transaction_at(&f, 0, token);
    task_read_at(&f, 1, "idem#order-42"); /* the key's item, read as a task is */
    task_read_at(&f, 2, OLD_TASK);
    stop(&f);

    const http_stub_reply gone[] = {{.status = 400, .body = KEY_TAKEN_NO_ITEM},
                                    {.status = 200, .body = "{}"},
                                    {.status = 200, .body = "{}"}};
    start(&f, gone, 3);
    assert_int_equal(create_keyed(&f, id), STORE_OK);
    assert_int_equal(http_stub_count(f.server), 3);
    transaction_at(&f, 0, token);
    task_read_at(&f, 1, "idem#order-42");
    transaction_at(&f, 2, again);
    assert_string_not_equal(token, again); /* a new id for the new try */
    assert_string_equal(id, again);
    stop(&f);
}

/* A read of the key whose answer cannot be read: the create fails, saying so; the key is not
 * taken for free (which would try the transaction again, against a key still taken). */
static void test_key_read_unreadable_is_an_error(void **state)
{
    (void)state;
    const http_stub_reply script[] = {{.status = 400, .body = KEY_TAKEN_NO_ITEM},
                                      {.status = 200, .body = "{\"Item\":{\"id\""}};
    fixture f;
    start(&f, script, 2);
    char id[37], token[37];
    assert_int_equal(create_keyed(&f, id), STORE_ERROR);
    assert_int_equal(http_stub_count(f.server), 2); /* nothing tried again */
    transaction_at(&f, 0, token);
    task_read_at(&f, 1, "idem#order-42");
    stop(&f);
}

/* A key item whose task_id or ttl cannot be read, carried by the cancellation or read after it:
 * the create fails, saying so, where the key was taken for free and the transaction tried again
 * against a key DynamoDB's condition holds taken. */
static void test_key_item_unreadable_is_an_error(void **state)
{
    (void)state;
    static const char *const items[] = {
        /* read after the cancellation: a ttl past int64 */
        "{\"Item\":{\"id\":{\"S\":\"idem#order-42\"},\"task_id\":{\"S\":\"" OLD_TASK "\"},"
        "\"ttl\":{\"N\":\"9223372036854775808\"}}}",
        /* read after the cancellation: no task_id */
        "{\"Item\":{\"id\":{\"S\":\"idem#order-42\"},\"ttl\":{\"N\":\"9999999999\"}}}"};
    for (size_t i = 0; i < sizeof items / sizeof *items; i++) {
        const http_stub_reply script[] = {{.status = 400, .body = KEY_TAKEN_NO_ITEM},
                                          {.status = 200, .body = items[i]}};
        fixture f;
        start(&f, script, 2);
        test_stderr c;
        test_stderr_begin(&c);
        char id[37], token[37];
        store_rc got = create_keyed(&f, id);
        char *log = test_stderr_end(&c);
        assert_int_equal(got, STORE_ERROR);
        assert_int_equal(http_stub_count(f.server), 2); /* nothing tried again */
        assert_int_equal(expect_logged(log, "Idempotency-Key item cannot be read", "tasks"), 1);
        expect_not_logged(log, "order-42"); /* the client's key is not said */
        free(log);
        transaction_at(&f, 0, token);
        task_read_at(&f, 1, "idem#order-42");
        stop(&f);
    }
    /* carried by the cancellation: no ttl */
    check_cancelled_is_an_error(CANCELLED(
        "None, ConditionalCheckFailed",
        NONE ",{\"Code\":\"ConditionalCheckFailed\",\"Message\":\"The conditional request "
             "failed\",\"Item\":{\"id\":{\"S\":\"idem#order-42\"},\"task_id\":{\"S\":\"" OLD_TASK
             "\"}}}"));
}

/* An item whose time does not fit in 64 bits is malformed, not a task of that time cut to
 * INT64_MAX (or INT64_MIN). */
static void test_time_past_int64_is_malformed(void **state)
{
    (void)state;
    static const char *const times[] = {"9223372036854775808", "-9223372036854775809",
                                        "99999999999999999999999999999999999999"};
    for (size_t i = 0; i < sizeof times / sizeof *times; i++) {
        char body[512];
        snprintf(body, sizeof body,
                 "{\"Item\":{\"id\":{\"S\":\"" OLD_TASK "\"},\"task_type\":{\"S\":\"TASK1\"},"
                 "\"status\":{\"S\":\"CREATED\"},\"created_time\":{\"N\":\"%s\"},"
                 "\"data\":{\"M\":{}}}}",
                 times[i]);
        const http_stub_reply script[] = {{.status = 200, .body = body}};
        fixture f;
        start(&f, script, 1);
        task t;
        assert_int_equal(store_get_task(f.store, OLD_TASK, &t), STORE_ERROR);
        stop(&f);
    }
}

/* A refusal without a body or an error type is logged with its HTTP status, where the line
 * said "error":"" and nothing of why. */
static void test_refusal_without_a_body_is_logged_with_its_status(void **state)
{
    (void)state;
    const http_stub_reply script[] = {{.status = 403}};
    fixture f;
    start(&f, script, 1);
    test_stderr c;
    test_stderr_begin(&c);
    task t;
    store_rc got = store_get_task(f.store, OLD_TASK, &t);
    char *log = test_stderr_end(&c);
    assert_int_equal(got, STORE_ERROR);
    assert_int_equal(
        expect_logged(log, "DynamoDB refused a request", "\"error\":\"HTTP 403 with no body\""), 1);
    free(log);
    stop(&f);
}

/* A task's item that cannot be read fails its read with a log line naming the item and the
 * table (the client's 503 says no more), read alone or in a page. */
static void test_malformed_item_is_logged(void **state)
{
    (void)state;
#define BAD_ITEM                                                                                   \
    "{\"id\":{\"S\":\"" OLD_TASK "\"},\"task_type\":{\"S\":\"TASK1\"},\"status\":{\"S\":"          \
    "\"BOGUS\"},\"created_time\":{\"N\":\"1700000000\"}}"
    const http_stub_reply script[] = {{.status = 200, .body = "{\"Item\":" BAD_ITEM "}"},
                                      {.status = 200, .body = "{\"Items\":[" BAD_ITEM "]}"}};
#undef BAD_ITEM
    fixture f;
    start(&f, script, 2);
    test_stderr c;
    test_stderr_begin(&c);
    task t;
    store_rc got = store_get_task(f.store, OLD_TASK, &t);
    store_list_query q = {.limit = 10};
    store_page page;
    store_rc listed = store_list_tasks(f.store, &q, &page);
    char *log = test_stderr_end(&c);
    assert_int_equal(got, STORE_ERROR);
    assert_int_equal(listed, STORE_ERROR);
    assert_int_equal(expect_logged(log, "cannot be read as a task", OLD_TASK), 2);
    free(log);
    stop(&f);
}

static void test_key_of_task_not_read_is_duplicate(void **state)
{
    (void)state;
    /* whether the task is there is not known: the key is not freed on a guess */
    const http_stub_reply script[] = {{.status = 400, .body = KEY_TAKEN},
                                      {.status = 400, .body = ACCESS_DENIED}};
    fixture f;
    start(&f, script, 2);
    char id[37], token[37];
    assert_int_equal(create_keyed(&f, id), STORE_DUPLICATE);
    assert_string_equal(id, OLD_TASK);
    assert_int_equal(http_stub_count(f.server), 2);
    transaction_at(&f, 0, token);
    task_read_at(&f, 1, OLD_TASK);
    stop(&f);
}

static void test_key_of_gone_task_is_freed_and_taken(void **state)
{
    (void)state;
    const http_stub_reply script[] = {{.status = 400, .body = KEY_TAKEN},
                                      {.status = 200, .body = "{}"}, /* no such task */
                                      {.status = 200, .body = "{}"}, /* the key item deleted */
                                      {.status = 200, .body = "{}"}};
    fixture f;
    start(&f, script, 4);
    char id[37], first[37], second[37];
    assert_int_equal(create_keyed(&f, id), STORE_OK);
    assert_int_equal(http_stub_count(f.server), 4);
    transaction_at(&f, 0, first);
    task_read_at(&f, 1, OLD_TASK);
    key_delete_at(&f, 2, OLD_TASK);
    transaction_at(&f, 3, second);
    assert_string_not_equal(first, second);
    assert_string_equal(id, second);
    stop(&f);
}

static void test_key_taken_anew_while_freed_is_duplicate(void **state)
{
    (void)state;
    /* the key item no longer names the gone task when it is deleted: another create took the
     * key meanwhile, and the create tried again is that one's duplicate */
    const http_stub_reply script[] = {{.status = 400, .body = KEY_TAKEN},
                                      {.status = 200, .body = "{}"},
                                      {.status = 400, .body = CONDITION_FAILED},
                                      {.status = 400, .body = KEY_TAKEN_BY_OTHER},
                                      {.status = 200, .body = OTHER_TASK_ITEM}};
    fixture f;
    start(&f, script, 5);
    char id[37], first[37], second[37];
    assert_int_equal(create_keyed(&f, id), STORE_DUPLICATE);
    assert_string_equal(id, OTHER_TASK);
    assert_int_equal(http_stub_count(f.server), 5);
    transaction_at(&f, 0, first);
    task_read_at(&f, 1, OLD_TASK);
    key_delete_at(&f, 2, OLD_TASK);
    transaction_at(&f, 3, second);
    assert_string_not_equal(first, second);
    task_read_at(&f, 4, OTHER_TASK);
    stop(&f);
}

/* A DeleteItem refused is the create's error; a ValidationException too, which is no fault of
 * the task's (it sends no item): not STORE_INVALID, a 422 that would blame the client. */
static void test_key_not_freed_is_the_answer(void **state)
{
    (void)state;
    const char *const refusals[] = {ACCESS_DENIED, VALIDATION_CALL};
    for (size_t i = 0; i < sizeof refusals / sizeof refusals[0]; i++) {
        const http_stub_reply script[] = {{.status = 400, .body = KEY_TAKEN},
                                          {.status = 200, .body = "{}"},
                                          {.status = 400, .body = refusals[i]}};
        fixture f;
        start(&f, script, 3);
        char id[37], token[37];
        assert_int_equal(create_keyed(&f, id), STORE_ERROR);
        assert_int_equal(http_stub_count(f.server), 3); /* not tried again */
        transaction_at(&f, 0, token);
        task_read_at(&f, 1, OLD_TASK);
        key_delete_at(&f, 2, OLD_TASK);
        stop(&f);
    }
}

static void test_key_delete_throttled_is_busy(void **state)
{
    (void)state;
    const http_stub_reply script[] = {{.status = 400, .body = KEY_TAKEN},
                                      {.status = 200, .body = "{}"},
                                      {.status = 400, .body = THROTTLED_CALL}};
    fixture f;
    start(&f, script, 3);
    aws_set_deadline(clock_unix_ms() + 700);
    char id[37], token[37];
    assert_int_equal(create_keyed(&f, id), STORE_BUSY);
    size_t n = http_stub_count(f.server);
    assert_true(n >= 4); /* the DeleteItem was retried as a throttled call is */
    transaction_at(&f, 0, token);
    task_read_at(&f, 1, OLD_TASK);
    for (size_t i = 2; i < n; i++)
        key_delete_at(&f, i, OLD_TASK);
    stop(&f);
}

/* ---- the spans of writes ---- */

/* The value of string attribute key of s, or NULL. */
static const char *span_str(const span *s, const char *key)
{
    for (int i = 0; i < s->n_attrs; i++)
        if (strcmp(s->attrs[i].key, key) == 0 && s->attrs[i].type == SPAN_ATTR_STRING)
            return s->attrs[i].v.s;
    return NULL;
}

/* w's span as the store labels it: the call, its request id, the table and the region. */
static void expect_call(fixture *f, const store_write *w, const char *op, const char *request_id)
{
    assert_non_null(w->call);
    assert_string_equal(w->call, op);
    assert_string_equal(w->call_request_id, request_id);
    span sp;
    memset(&sp, 0, sizeof sp);
    store_trace_write(f->store, w, &sp);
    assert_int_equal(sp.n_attrs, 6);
    assert_string_equal(span_str(&sp, "rpc.system"), "aws-api");
    assert_string_equal(span_str(&sp, "rpc.service"), "DynamoDB");
    assert_string_equal(span_str(&sp, "rpc.method"), op);
    assert_string_equal(span_str(&sp, "aws.dynamodb.table_names"), "tasks");
    assert_string_equal(span_str(&sp, "cloud.region"), "eu-west-1");
    assert_string_equal(span_str(&sp, "aws.request_id"), request_id);
    span_clear(&sp);
}

/* A write notes the call that decided it, and its span says so (store_trace_write()): a create's
 * PutItem; an update's UpdateItem after the GetItem that taught it the task's facts; the
 * GetItem that settled an update without one; nothing for a write refused before any call. */
static void test_write_span_names_its_call(void **state)
{
    (void)state;
#define REQUEST_ID(id) "x-amzn-RequestId: " id "\r\n"
    const http_stub_reply script[] = {
        {.status = 200, .headers = REQUEST_ID("PUT-1"), .body = "{}"},
        {.status = 200, .headers = REQUEST_ID("GET-1"), .body = OLD_TASK_ITEM},
        {.status = 200,
         .headers = REQUEST_ID("UPDATE-1"),
         .body = "{\"Attributes\":{\"id\":{\"S\":\"" OLD_TASK "\"},\"task_type\":{\"S\":"
                 "\"TASK1\"},\"status\":{\"S\":\"CREATED\"},\"created_time\":{\"N\":"
                 "\"1700000000\"},\"data\":{\"M\":{}}}}"},
        {.status = 200, .headers = REQUEST_ID("GET-2"), .body = OTHER_TASK_ITEM},
    };
#undef REQUEST_ID
    fixture f;
    start(&f, script, 4);
    int64_t now = clock_unix_ms() / 1000;

    store_write create = {.kind = STORE_WRITE_CREATE,
                          .now = now,
                          .create = {.task_type = "TASK1", .data = "{}", .ttl = TASK_NULL_TIME}};
    assert_int_equal(store_write_wait(f.store, &create), STORE_OK);
    expect_call(&f, &create, "PutItem", "PUT-1");

    store_write start_it = {
        .kind = STORE_WRITE_UPDATE,
        .now = now,
        .update = {.id = OLD_TASK, .status = TASK_IN_PROGRESS, .status_msg = "Task started"}};
    assert_int_equal(store_write_wait(f.store, &start_it), STORE_OK);
    task_clear(&start_it.current);
    task_read_at(&f, 1, OLD_TASK);
    json_decref(request_of(&f, 2, "UpdateItem"));
    expect_call(&f, &start_it, "UpdateItem", "UPDATE-1");

    store_write finish = {
        .kind = STORE_WRITE_UPDATE,
        .now = now,
        .update = {.id = OTHER_TASK, .status = TASK_COMPLETED, .status_msg = "Task completed"}};
    assert_int_equal(store_write_wait(f.store, &finish), STORE_CONFLICT); /* it is CREATED */
    task_clear(&finish.current);
    task_read_at(&f, 3, OTHER_TASK);
    expect_call(&f, &finish, "GetItem", "GET-2");
    assert_int_equal(http_stub_count(f.server), 4);

    store_write refused = {
        .kind = STORE_WRITE_UPDATE,
        .now = now,
        .update = {.id = "not-a-task", .status = TASK_IN_PROGRESS, .status_msg = "Task started"}};
    assert_int_equal(store_write_wait(f.store, &refused), STORE_NOT_FOUND);
    assert_null(refused.call);
    assert_string_equal(refused.call_request_id, "");
    span sp;
    memset(&sp, 0, sizeof sp);
    store_trace_write(f.store, &refused, &sp);
    assert_int_equal(sp.n_attrs, 0);
    assert_int_equal(http_stub_count(f.server), 4);
    stop(&f);
}

/* ---- an update whose answer was lost ---- */

/* The claim's item as a failed condition returns it: IN_PROGRESS, its history the creation and
 * the claim, and the write_token the claim wrote. */
#define CLAIMED_ITEM_FAILED(token)                                                                 \
    "{\"__type\":\"" DDB_TYPE "ConditionalCheckFailedException\",\"message\":\"The conditional "   \
    "request failed\",\"Item\":{\"id\":{\"S\":\"" OLD_TASK "\"},\"task_type\":{\"S\":\"TASK1\"},"  \
    "\"status\":{\"S\":\"IN_PROGRESS\"},\"status_msg\":{\"S\":\"Task started\"},"                  \
    "\"created_time\":{\"N\":\"1700000000\"},\"updated_time\":{\"N\":\"1700000005\"},"             \
    "\"data\":{\"M\":{}},\"write_token\":{\"S\":\"" token "\"},\"history\":{\"L\":["               \
    "{\"M\":{\"s\":{\"S\":\"CREATED\"},\"m\":{\"S\":\"\"},\"t\":{\"N\":\"1700000000\"}}},"         \
    "{\"M\":{\"s\":{\"S\":\"IN_PROGRESS\"},\"m\":{\"S\":\"Task started\"},\"t\":{\"N\":"           \
    "\"1700000005\"}}}]}}}"

/* The write_token an UpdateItem request sets (its :wt value) into token; false when none. */
static bool token_of(const char *body, size_t len, char token[64])
{
    json_t *root = json_loadb(body, len, 0, NULL);
    const char *t = json_string_value(json_object_get(
        json_object_get(json_object_get(root, "ExpressionAttributeValues"), ":wt"), "S"));
    bool ok = t && strlen(t) < 64;
    if (ok)
        memcpy(token, t, strlen(t) + 1);
    json_decref(root);
    return ok;
}

typedef struct lost_claim {
    size_t retry_at; /* the request that is the second attempt */
    bool same_token; /* the item carries the retried request's token, else another's */
    char body[2048];
} lost_claim;

/* Request retry_at, the claim's second attempt, fails its condition on the item as the first
 * attempt (the request before, answered 500 after it was applied) left it, or as another claim
 * did. */
static void answer_lost_claim(void *arg, const http_stub_request *rq, size_t index,
                              http_stub_reply *reply)
{
    lost_claim *c = arg;
    char token[64];
    if (index != c->retry_at || !token_of(rq->body, rq->body_len, token))
        return;
    const char *mark = c->same_token ? token : "0190a6b2-0000-7000-8000-000000000000";
    snprintf(c->body, sizeof c->body, CLAIMED_ITEM_FAILED("%s"), mark);
    reply->status = 400;
    reply->body = c->body;
    reply->body_len = strlen(c->body);
}

/* An UpdateItem DynamoDB applied, but whose answer was lost: aws_http tries it again. */
#define LOST_ANSWER                                                                                \
    {                                                                                              \
        .status = 500, .body = "{\"__type\":\"" DDB_TYPE                                           \
                               "InternalServerError\",\"message\":\"Internal "                     \
                               "server error\"}"                                                   \
    }

/* Requests i and i + 1 carry one write_token, fresh as a task id: one write, tried again. */
static void tried_again_with_its_token(fixture *f, size_t i)
{
    char first[64], second[64];
    const http_stub_request *a = http_stub_request_at(f->server, i);
    const http_stub_request *b = http_stub_request_at(f->server, i + 1);
    assert_true(token_of(a->body, a->body_len, first));
    assert_true(token_of(b->body, b->body_len, second));
    assert_string_equal(first, second);
    assert_int_equal(strlen(first), TASK_ID_LEN);
}

/* Claim OLD_TASK over a fake whose first UpdateItem is applied but answered 500. */
static store_rc claim_after_lost_answer(bool same_token, task_status *before)
{
    const http_stub_reply script[] = {
        {.status = 200, .body = OLD_TASK_ITEM}, /* the facts */
        LOST_ANSWER,
        {.status = 400, .body = CONDITION_FAILED}, /* replaced by answer_lost_claim */
    };
    lost_claim c = {.retry_at = 2, .same_token = same_token};
    fixture f;
    start_handled(&f, script, 3, answer_lost_claim, &c);
    store_write w = {
        .kind = STORE_WRITE_UPDATE,
        .now = 1700000005,
        .update = {.id = OLD_TASK, .status = TASK_IN_PROGRESS, .status_msg = "Task started"}};
    store_rc rc = store_write_wait(f.store, &w);
    *before = w.current.status;
    task_clear(&w.current);
    assert_int_equal(http_stub_count(f.server), 3);
    task_read_at(&f, 0, OLD_TASK);
    tried_again_with_its_token(&f, 1);
    stop(&f);
    return rc;
}

/* A claim applied by an attempt whose answer was lost is the claimer's, not a conflict with
 * itself: the item carries its token. The task before it was CREATED. */
static void test_claim_applied_by_a_lost_attempt_is_ours(void **state)
{
    (void)state;
    task_status before = TASK_FAILED;
    assert_int_equal(claim_after_lost_answer(true, &before), STORE_OK);
    assert_int_equal(before, TASK_CREATED);
}

/* The same failed condition on an item another claim wrote is a conflict, as ever. */
static void test_claim_taken_by_another_is_a_conflict(void **state)
{
    (void)state;
    task_status before = TASK_FAILED;
    assert_int_equal(claim_after_lost_answer(false, &before), STORE_CONFLICT);
    assert_int_equal(before, TASK_IN_PROGRESS);
}

/* A redelivery's reclaim of OLD_TASK at 1700000005, taken only if its last claim is timeout s
 * old or older. */
static store_write reclaim_of_old_task(int64_t timeout)
{
    return (store_write){.kind = STORE_WRITE_RECLAIM,
                         .now = 1700000005,
                         .update = {.id = OLD_TASK,
                                    .status = TASK_IN_PROGRESS,
                                    .status_msg = "Task started again",
                                    .claimed_before = 1700000005 - timeout}};
}

/* A redelivery's reclaim over a fake whose first UpdateItem is applied but answered 500: the
 * second attempt (the same token) fails its condition, claimed_time being new. */
static store_rc reclaim_after_lost_answer(bool same_token)
{
    const http_stub_reply script[] = {
        LOST_ANSWER, {.status = 400, .body = CONDITION_FAILED}, /* replaced by answer_lost_claim */
    };
    lost_claim c = {.retry_at = 1, .same_token = same_token};
    fixture f;
    start_handled(&f, script, 2, answer_lost_claim, &c);
    store_write w = reclaim_of_old_task(30);
    store_rc rc = store_write_wait(f.store, &w);
    task_clear(&w.current);
    assert_int_equal(http_stub_count(f.server), 2);
    tried_again_with_its_token(&f, 0);
    stop(&f);
    return rc;
}

/* A reclaim applied by an attempt whose answer was lost is the delivery's own: it runs the task
 * (before the token, its second attempt found claimed_time new and gave the message back). */
static void test_reclaim_applied_by_a_lost_attempt_is_ours(void **state)
{
    (void)state;
    assert_int_equal(reclaim_after_lost_answer(true), STORE_OK);
}

/* Another delivery's reclaim since: a conflict, and this one gives its message back. */
static void test_reclaim_taken_by_another_is_a_conflict(void **state)
{
    (void)state;
    assert_int_equal(reclaim_after_lost_answer(false), STORE_CONFLICT);
}

/* A failed condition's answer: OLD_TASK IN_PROGRESS, claimed at 1700000001, another update's
 * token, its history of n entries. The caller frees it. */
static char *long_history_refusal(size_t n)
{
    sbuf b = {0};
    sbuf_puts(&b, "{\"__type\":\"" DDB_TYPE "ConditionalCheckFailedException\",\"message\":\"The "
                  "conditional request failed\",\"Item\":{\"id\":{\"S\":\"" OLD_TASK "\"},"
                  "\"task_type\":{\"S\":\"TASK1\"},\"status\":{\"S\":\"IN_PROGRESS\"},"
                  "\"status_msg\":{\"S\":\"again\"},\"created_time\":{\"N\":\"1700000000\"},"
                  "\"claimed_time\":{\"N\":\"1700000001\"},\"data\":{\"M\":{}},\"write_token\":"
                  "{\"S\":\"0190a6b2-0000-7000-8000-000000000000\"},\"history\":{\"L\":[");
    for (size_t i = 0; i < n; i++)
        sbuf_printf(&b,
                    "%s{\"M\":{\"s\":{\"S\":\"%s\"},\"m\":{\"S\":\"\"},\"t\":{\"N\":"
                    "\"1700000000\"}}}",
                    i ? "," : "", i ? "IN_PROGRESS" : "CREATED");
    sbuf_puts(&b, "]}}}");
    assert_false(sbuf_failed(&b));
    return b.data;
}

/* A reclaim is conditioned on the history holding at most TASK_HISTORY_MAX entries, as each
 * change's trim leaves it: one a failed trim left longer (65) is trimmed, and the reclaim, tried
 * again with its token, is made; a reclaim is no conflict for that. Reclaims so never grow an item
 * past the room its creation kept. */
static void test_reclaim_waits_for_a_long_history_to_be_trimmed(void **state)
{
    (void)state;
    char *refusal = long_history_refusal(TASK_HISTORY_MAX + 1);
    const http_stub_reply script[] = {
        {.status = 400, .body = refusal},
        {.status = 200, .body = "{}"}, /* the trim */
        {.status = 200, .body = "{}"}, /* the reclaim again */
    };
    fixture f;
    start(&f, script, 3);
    store_write w = reclaim_of_old_task(2);
    assert_int_equal(store_write_wait(f.store, &w), STORE_OK);
    task_clear(&w.current);
    assert_int_equal(http_stub_count(f.server), 3);
    json_t *first = request_of(&f, 0, "UpdateItem");
    assert_non_null(
        strstr(text_of(json_object_get(first, "ConditionExpression")), "size(#hist) <= :hmax"));
    assert_string_equal(
        text_of(json_object_get(
            json_object_get(json_object_get(first, "ExpressionAttributeValues"), ":hmax"), "N")),
        "64");
    json_decref(first);
    json_t *trim = request_of(&f, 1, "UpdateItem");
    assert_string_equal(text_of(json_object_get(trim, "UpdateExpression")),
                        "REMOVE #h[1] ADD #hd :k");
    json_decref(trim);
    char tokens[2][64];
    for (size_t i = 0; i < 2; i++) {
        const http_stub_request *rq = http_stub_request_at(f.server, 2 * i);
        assert_true(token_of(rq->body, rq->body_len, tokens[i]));
    }
    assert_string_equal(tokens[0], tokens[1]); /* one reclaim, tried again */
    stop(&f);
    free(refusal);
}

/* Request 1, the reclaim's second attempt, fails its condition on the item its first attempt
 * (answered 500 after it was applied) left: its token, and a history grown past TASK_HISTORY_MAX
 * (arg: long_history_refusal()'s text, its token replaced here). */
static void answer_lost_reclaim_long_history(void *arg, const http_stub_request *rq, size_t index,
                                             http_stub_reply *reply)
{
    char *refusal = arg, token[64];
    char *mark = strstr(refusal, "0190a6b2-0000-7000-8000-000000000000");
    if (index != 1 || !mark || !token_of(rq->body, rq->body_len, token) ||
        strlen(token) != TASK_ID_LEN)
        return;
    memcpy(mark, token, TASK_ID_LEN);
    reply->status = 400;
    reply->body = refusal;
    reply->body_len = strlen(refusal);
}

/* A reclaim applied by an attempt whose answer was lost, that took the history past
 * TASK_HISTORY_MAX, trims it, as an update met again on its own token does: the next reclaim is
 * not refused for it. */
static void test_reclaim_applied_by_a_lost_attempt_trims(void **state)
{
    (void)state;
    char *refusal = long_history_refusal(TASK_HISTORY_MAX + 1);
    const http_stub_reply script[] = {
        LOST_ANSWER,
        {.status = 400, .body = CONDITION_FAILED}, /* replaced by the handler */
        {.status = 200, .body = "{}"},             /* the trim */
    };
    fixture f;
    start_handled(&f, script, 3, answer_lost_reclaim_long_history, refusal);
    store_write w = reclaim_of_old_task(30);
    assert_int_equal(store_write_wait(f.store, &w), STORE_OK);
    task_clear(&w.current);
    assert_int_equal(http_stub_count(f.server), 3);
    tried_again_with_its_token(&f, 0);
    json_t *trim = request_of(&f, 2, "UpdateItem");
    assert_string_equal(text_of(json_object_get(trim, "UpdateExpression")),
                        "REMOVE #h[1] ADD #hd :k");
    json_decref(trim);
    stop(&f);
    free(refusal);
}

/* Claim OLD_TASK (CREATED) over a fake that applies the UpdateItem and answers it with body. */
static store_rc claim_answered(const char *body, task *before)
{
    const http_stub_reply script[] = {
        {.status = 200, .body = OLD_TASK_ITEM}, /* the facts */
        {.status = 200, .body = body},
    };
    fixture f;
    start(&f, script, 2);
    store_write w = {
        .kind = STORE_WRITE_UPDATE,
        .now = 1700000005,
        .update = {.id = OLD_TASK, .status = TASK_IN_PROGRESS, .status_msg = "Task started"}};
    store_rc rc = store_write_wait(f.store, &w);
    *before = w.current;
    assert_int_equal(http_stub_count(f.server), 2);
    task_read_at(&f, 0, OLD_TASK);
    json_t *req = request_of(&f, 1, "UpdateItem");
    json_decref(req);
    stop(&f);
    return rc;
}

/* An update DynamoDB applied is done, though the old image it answered with cannot be read (a
 * malformed item, an answer not JSON, one without the task): its client's claim holds the task,
 * and a retry of it would meet its own claim. The task before is what the update knows: its id,
 * type and status. It is said once, a warning with the task and why. */
static void test_applied_update_with_unreadable_old_image_is_done(void **state)
{
    (void)state;
    const char *const answers[] = {
        "{\"Attributes\":{\"id\":{\"S\":\"" OLD_TASK "\"},\"task_type\":{\"S\":\"TASK1\"},"
        "\"status\":{\"S\":\"STARTED\"},\"created_time\":{\"N\":\"1700000000\"}}}",
        "{\"Attributes\":{\"id\":{\"S\":\"" OLD_TASK "\"},\"task_type\":{\"S\":\"TASK1\"},"
        "\"status\":{\"S\":\"CREATED\"},\"created_time\":{\"N\":\"1.5e9\"}}}",
        "{\"Attributes\":",
        "{}",
    };
    const char *const reasons[] = {"malformed, or out of memory", "malformed, or out of memory",
                                   "the answer is not JSON", "the answer holds no task"};
    for (size_t i = 0; i < sizeof answers / sizeof answers[0]; i++) {
        task before;
        log_setup(LOG_WARN, "test_dynamodb_store");
        test_stderr c;
        test_stderr_begin(&c);
        store_rc rc = claim_answered(answers[i], &before);
        char *log = test_stderr_end(&c);
        log_setup(LOG_ERROR, "test_dynamodb_store");
        assert_int_equal(rc, STORE_OK);
        assert_int_equal(expect_logged(log, OLD_TASK, NULL), 1);
        expect_logged(log, "its image before the update is unreadable", reasons[i]);
        free(log);
        assert_string_equal(before.id, OLD_TASK);
        assert_string_equal(before.task_type, "TASK1");
        assert_int_equal(before.status, TASK_CREATED);
        assert_null(before.data);
        task_clear(&before);
    }
}

static void no_done(store_write *w)
{
    (void)w;
}

/* A create with Idempotency-Key key (NULL: none), made directly, under a deadline of 700 ms. */
static store_write create_direct(fixture *f, const char *key)
{
    aws_set_deadline(clock_unix_ms() + 700);
    store_write w = {.kind = STORE_WRITE_CREATE,
                     .now = clock_unix_ms() / 1000,
                     .create = {.task_type = "TASK1",
                                .data = "{\"n\":1}",
                                .ttl = TASK_NULL_TIME,
                                .idempotency_key = key},
                     .done = no_done};
    store_submit(f->store, &w); /* answered before it returns */
    return w;
}

/* A create whose PutItem DynamoDB answered 500 until the deadline may have been made all the
 * same (a 5xx may follow the write): unknown, with the id it may have made; one that was
 * throttled was refused, and is not, unless a try of it went out and was cut short or was
 * answered 500 before the throttling. */
static void test_unanswered_create_may_have_made_its_task(void **state)
{
    (void)state;
    const http_stub_reply lost[] = {LOST_ANSWER};
    fixture f;
    start(&f, lost, 1);
    store_write w = create_direct(&f, NULL);
    assert_int_equal(w.rc, STORE_ERROR);
    assert_true(w.unknown);
    json_t *body = request_of(&f, 0, "PutItem");
    const json_t *item = json_object_get(body, "Item");
    assert_string_equal(text_of(json_object_get(json_object_get(item, "id"), "S")), w.id);
    json_decref(body);
    stop(&f);

    const http_stub_reply throttled[] = {
        {.status = 400,
         .body = "{\"__type\":\"" DDB_TYPE "ProvisionedThroughputExceededException\","
                 "\"message\":\"The level of configured provisioned throughput for the table was "
                 "exceeded.\"}"}};
    start(&f, throttled, 1);
    w = create_direct(&f, NULL);
    assert_int_equal(w.rc, STORE_BUSY);
    assert_false(w.unknown);
    stop(&f);

    /* throttled, then tried again and answered after the deadline: that try may have been made */
    const http_stub_reply late[] = {throttled[0], {.status = 200, .body = "{}", .delay_ms = 3000}};
    start(&f, late, 2);
    w = create_direct(&f, NULL);
    assert_int_equal(w.rc, STORE_BUSY);
    assert_true(w.unknown);
    assert_int_equal(http_stub_count(f.server), 2);
    stop(&f);

    /* answered 500, then throttled until the deadline: the throttled tries say nothing of the
     * first, which may have been made */
    const http_stub_reply lost_then_throttled[] = {LOST_ANSWER, throttled[0]};
    start(&f, lost_then_throttled, 2);
    w = create_direct(&f, NULL);
    assert_int_equal(w.rc, STORE_BUSY);
    assert_true(w.unknown);
    assert_true(http_stub_count(f.server) >= 2);
    body = request_of(&f, 0, "PutItem");
    item = json_object_get(body, "Item");
    assert_string_equal(text_of(json_object_get(json_object_get(item, "id"), "S")), w.id);
    json_decref(body);
    stop(&f);
}

/* The item a PutItem put, kept by the stub's handler for an answer that gives it back. */
typedef struct put_item {
    size_t read_at;        /* the request (a GetItem) answered with it */
    const char *else_body; /* the answer to it when not NULL, else the item */
    char body[1024];
} put_item;

/* Request 0's item (a PutItem's) is the answer to request read_at, unless else_body is set. */
static void answer_put_item(void *arg, const http_stub_request *rq, size_t index,
                            http_stub_reply *reply)
{
    put_item *p = arg;
    if (index == 0) {
        json_t *body = json_loadb(rq->body, rq->body_len, 0, NULL);
        char *item = json_dumps(json_object_get(body, "Item"), JSON_COMPACT);
        snprintf(p->body, sizeof p->body, "{\"Item\":%s}", item ? item : "null");
        free(item);
        json_decref(body);
    } else if (index == p->read_at && !p->else_body) {
        reply->status = 200;
        reply->body = p->body;
        reply->body_len = strlen(p->body);
    }
}

/* A create whose PutItem went through but was answered 500 meets its own item when tried again.
 * Where the failed condition gives no item back (a DynamoDB that does not return it), the item is
 * read: the create's own is the create done, not "id already taken"; another's is an error; an
 * item that cannot be read leaves the create unknown, naming its id. */
static void test_create_meeting_its_own_item_is_done(void **state)
{
    (void)state;
    const char *const reads[] = {NULL, OLD_TASK_ITEM, ACCESS_DENIED};
    const store_rc answers[] = {STORE_OK, STORE_ERROR, STORE_ERROR};
    for (size_t i = 0; i < 3; i++) {
        const http_stub_reply script[] = {
            LOST_ANSWER,
            {.status = 400, .body = CONDITION_FAILED},
            {.status = i == 2 ? 400 : 200, .body = reads[i] ? reads[i] : "{}"},
        };
        put_item p = {.read_at = 2, .else_body = reads[i]};
        fixture f;
        start_handled(&f, script, 3, answer_put_item, &p);
        store_write w = create_direct(&f, NULL);
        assert_int_equal(w.rc, answers[i]);
        assert_int_equal(w.unknown, i == 2);
        assert_int_equal(http_stub_count(f.server), 3);
        json_t *put = request_of(&f, 0, "PutItem");
        const char *id =
            text_of(json_object_get(json_object_get(json_object_get(put, "Item"), "id"), "S"));
        if (w.rc == STORE_OK || w.unknown)
            assert_string_equal(w.id, id);
        task_read_at(&f, 2, id);
        json_decref(put);
        stop(&f);
    }
}

/* A keyed create whose transaction DynamoDB answered 500 until the deadline is unknown too, with
 * the id it may have made (its ClientRequestToken): the one of its last try, not a task an
 * earlier try found the key naming. */
static void test_unanswered_keyed_create_names_its_task(void **state)
{
    (void)state;
    const http_stub_reply lost[] = {LOST_ANSWER};
    fixture f;
    start(&f, lost, 1);
    store_write w = create_direct(&f, "order-42");
    assert_int_equal(w.rc, STORE_ERROR);
    assert_true(w.unknown);
    char token[37];
    transaction_at(&f, 0, token);
    assert_string_equal(w.id, token);
    stop(&f);

    /* the key named a task that is gone: freed, and the create tried again, unanswered */
    const http_stub_reply gone[] = {{.status = 400, .body = KEY_TAKEN},
                                    {.status = 200, .body = "{}"}, /* no such task */
                                    {.status = 200, .body = "{}"}, /* the key item deleted */
                                    LOST_ANSWER};
    start(&f, gone, 4);
    w = create_direct(&f, "order-42");
    assert_int_equal(w.rc, STORE_ERROR);
    assert_true(w.unknown);
    char first[37], second[37];
    transaction_at(&f, 0, first);
    task_read_at(&f, 1, OLD_TASK);
    key_delete_at(&f, 2, OLD_TASK);
    transaction_at(&f, 3, second);
    assert_string_not_equal(first, second);
    assert_string_equal(w.id, second);
    stop(&f);
}

/* Request 1, a transaction tried again, is cancelled: the task's Put and the key's failed their
 * conditions, the key item naming the transaction's own ClientRequestToken (its first attempt
 * went through; a DynamoDB that does not honour the token). */
static void answer_key_taken_by_itself(void *arg, const http_stub_request *rq, size_t index,
                                       http_stub_reply *reply)
{
    char *body = arg;
    json_t *root = json_loadb(rq->body, rq->body_len, 0, NULL);
    const char *token = json_string_value(json_object_get(root, "ClientRequestToken"));
    if (index == 1 && token && strlen(token) == TASK_ID_LEN) {
        snprintf(body, 1024,
                 CANCELLED("ConditionalCheckFailed, ConditionalCheckFailed",
                           "{\"Code\":\"ConditionalCheckFailed\"},{\"Code\":"
                           "\"ConditionalCheckFailed\",\"Item\":{\"id\":{\"S\":\"idem#order-42\"},"
                           "\"task_id\":{\"S\":\"%s\"},\"created_time\":{\"N\":\"1700000000\"},"
                           "\"ttl\":{\"N\":\"9999999999\"}}}"),
                 token);
        reply->status = 400;
        reply->body = body;
        reply->body_len = strlen(body);
    }
    json_decref(root);
}

/* A keyed create whose transaction went through but was answered 500, tried again and cancelled
 * on its own key (the key item names this very transaction's task), made the task: done (201),
 * not a duplicate of itself, and the task is not read again. */
static void test_keyed_create_meeting_its_own_key_is_done(void **state)
{
    (void)state;
    const http_stub_reply script[] = {
        LOST_ANSWER, {.status = 400, .body = KEY_TAKEN}, {.status = 200, .body = OLD_TASK_ITEM}};
    char body[1024];
    fixture f;
    start_handled(&f, script, 3, answer_key_taken_by_itself, body);
    store_write w = create_direct(&f, "order-42");
    assert_int_equal(w.rc, STORE_OK);
    assert_false(w.unknown);
    assert_int_equal(http_stub_count(f.server), 2);
    char first[37], second[37];
    transaction_at(&f, 0, first);
    transaction_at(&f, 1, second);
    assert_string_equal(first, second);
    assert_string_equal(w.id, first);
    stop(&f);
}

/* A create whose every try was refused its connection never went out: it made nothing, and is
 * not unknown (its client may create it again), with a key or without. */
static void test_create_never_sent_made_nothing(void **state)
{
    (void)state;
    int fd;
    int port = http_stub_refusing_port(&fd); /* bound, not listening: connections are refused */
    const http_stub_reply none[] = {{.status = 200, .body = "{}"}};
    fixture f;
    start(&f, none, 1);
    store_close(f.store);
    aws_client_free(f.client);
    char url[64], err[256] = "";
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    setenv("AWS_ENDPOINT_URL_DYNAMODB", url, 1);
    f.client = aws_client_new(AWS_DYNAMODB, err, sizeof err);
    assert_non_null(f.client);
    dynamodb_store_options so = {.table = "tasks", .client = f.client, .retention_grace = 3600};
    f.store = dynamodb_store_open(&so, err, sizeof err);
    assert_non_null(f.store);

    store_write w = create_direct(&f, NULL);
    assert_int_not_equal(w.rc, STORE_OK);
    assert_false(w.unknown);

    aws_set_deadline(clock_unix_ms() + 700);
    store_write k = {.kind = STORE_WRITE_CREATE,
                     .now = clock_unix_ms() / 1000,
                     .create = {.task_type = "TASK1",
                                .data = "{\"n\":1}",
                                .ttl = TASK_NULL_TIME,
                                .idempotency_key = "order-42"},
                     .done = no_done};
    store_submit(f.store, &k);
    assert_int_not_equal(k.rc, STORE_OK);
    assert_false(k.unknown);
    assert_int_equal(http_stub_count(f.server), 0);
    stop(&f);
    close(fd);
}

/* A listing follows each page's LastEvaluatedKey, and stops with an error when the service gives
 * back the key it was sent: asking again would get the same page until the deadline. */
static void test_list_stops_on_a_key_given_back(void **state)
{
    (void)state;
#define PAGE_KEY(id) "\"LastEvaluatedKey\":{\"id\":{\"S\":\"" id "\"},\"list_all\":{\"S\":\"all\"}}"
    const http_stub_reply script[] = {
        {.status = 200, .body = "{\"Items\":[]," PAGE_KEY("k1") "}"},
        {.status = 200, .body = "{\"Items\":[]," PAGE_KEY("k2") "}"},
        {.status = 200, .body = "{\"Items\":[]," PAGE_KEY("k2") "}"}, /* repeats */
    };
#undef PAGE_KEY
    fixture f;
    start(&f, script, 3);
    aws_set_deadline(clock_unix_ms() + 2000); /* bounds the loop the guard would not end */
    store_list_query q = {.limit = 10};
    store_page page;
    assert_int_equal(store_list_tasks(f.store, &q, &page), STORE_ERROR);
    assert_int_equal(page.count, 0);
    assert_int_equal(http_stub_count(f.server), 3);
    const char *starts[] = {NULL, "k1", "k2"};
    for (size_t i = 0; i < 3; i++) {
        json_t *body = request_of(&f, i, "Query");
        json_t *key = json_object_get(body, "ExclusiveStartKey");
        if (starts[i])
            assert_string_equal(text_of(json_object_get(json_object_get(key, "id"), "S")),
                                starts[i]);
        else
            assert_null(key);
        json_decref(body);
    }
    stop(&f);
}

int main(void)
{
    log_setup(LOG_ERROR, "test_dynamodb_store"); /* the warnings of busy tables are expected */
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_throttled_transaction_is_retried),
        cmocka_unit_test(test_claim_applied_by_a_lost_attempt_is_ours),
        cmocka_unit_test(test_claim_taken_by_another_is_a_conflict),
        cmocka_unit_test(test_reclaim_applied_by_a_lost_attempt_is_ours),
        cmocka_unit_test(test_reclaim_taken_by_another_is_a_conflict),
        cmocka_unit_test(test_reclaim_waits_for_a_long_history_to_be_trimmed),
        cmocka_unit_test(test_reclaim_applied_by_a_lost_attempt_trims),
        cmocka_unit_test(test_applied_update_with_unreadable_old_image_is_done),
        cmocka_unit_test(test_throttled_until_deadline_is_busy),
        cmocka_unit_test(test_validation_reason_is_invalid),
        cmocka_unit_test(test_new_task_item_counted_as_written),
        cmocka_unit_test(test_conflict_is_retried),
        cmocka_unit_test(test_unknown_reason_is_an_error),
        cmocka_unit_test(test_key_not_utf8_is_kept_in_hex),
        cmocka_unit_test(test_key_of_live_task_is_duplicate),
        cmocka_unit_test(test_key_taken_without_its_item_is_read),
        cmocka_unit_test(test_key_read_unreadable_is_an_error),
        cmocka_unit_test(test_key_item_unreadable_is_an_error),
        cmocka_unit_test(test_time_past_int64_is_malformed),
        cmocka_unit_test(test_malformed_item_is_logged),
        cmocka_unit_test(test_key_of_task_not_read_is_duplicate),
        cmocka_unit_test(test_key_of_gone_task_is_freed_and_taken),
        cmocka_unit_test(test_key_taken_anew_while_freed_is_duplicate),
        cmocka_unit_test(test_key_not_freed_is_the_answer),
        cmocka_unit_test(test_key_delete_throttled_is_busy),
        cmocka_unit_test(test_write_span_names_its_call),
        cmocka_unit_test(test_unanswered_create_may_have_made_its_task),
        cmocka_unit_test(test_create_meeting_its_own_item_is_done),
        cmocka_unit_test(test_unanswered_keyed_create_names_its_task),
        cmocka_unit_test(test_keyed_create_meeting_its_own_key_is_done),
        cmocka_unit_test(test_create_never_sent_made_nothing),
        cmocka_unit_test(test_new_task_data_counted_as_its_image_was_written),
        cmocka_unit_test(test_a_create_too_big_takes_no_id),
        cmocka_unit_test(test_refusal_without_a_body_is_logged_with_its_status),
        cmocka_unit_test(test_list_stops_on_a_key_given_back),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return failed;
}
