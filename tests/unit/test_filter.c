/*
 * test_filter — table-driven tests of src/core/filter.c.
 *
 * Every table row is one case: a Lambda pattern against a record, an SNS policy against
 * message attributes or a body, or a pattern/policy that must be rejected with a message that
 * names the fault. The tables hold every worked example of the reference notes
 * (the documented examples: DynamoDB R1..R4, SQS, attribute messages M1..M5 with $or, the
 * body-scope example) and, for every operator, at least one matching and one non-matching case
 * in both languages. A table test reports every failing row before it fails.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/filter.h"
#include "core/sbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* ---- Lambda patterns over records ------------------------------------------------------- */

typedef struct pattern_case {
    const char *pattern;
    const char *record;
    bool want;
} pattern_case;

/* DynamoDB stream records of the tasks table (NEW_AND_OLD_IMAGES), as in the reference. */
#define KEYS "\"Keys\":{\"id\":{\"S\":\"t1\"}}"
#define IMG(status, type)                                                                          \
    "{\"id\":{\"S\":\"t1\"},\"status\":{\"S\":\"" status "\"},\"task_type\":{\"S\":\"" type "\"}}"
#define R1                                                                                         \
    "{\"eventName\":\"INSERT\",\"dynamodb\":{" KEYS                                                \
    ",\"NewImage\":" IMG("CREATED", "TASK1") ",\"SequenceNumber\":\"1\"}}"
#define R2                                                                                         \
    "{\"eventName\":\"MODIFY\",\"dynamodb\":{" KEYS                                                \
    ",\"OldImage\":" IMG("CREATED", "TASK1") ",\"NewImage\":" IMG(                                 \
        "IN_PROGRESS", "TASK1") ",\"SequenceNumber\":\"2\"}}"
#define R3                                                                                         \
    "{\"eventName\":\"MODIFY\",\"dynamodb\":{" KEYS                                                \
    ",\"OldImage\":" IMG("IN_PROGRESS", "TASK1") ",\"NewImage\":" IMG(                             \
        "COMPLETED", "TASK1") ",\"SequenceNumber\":\"3\"}}"
#define R4                                                                                         \
    "{\"eventName\":\"REMOVE\",\"dynamodb\":{" KEYS                                                \
    ",\"OldImage\":" IMG("COMPLETED", "TASK1") ",\"SequenceNumber\":\"4\"}}"
/* R2 whose NewImage lacks task_type (the "if NewImage has task_type" cell of example 3). */
#define R2_NO_TYPE                                                                                 \
    "{\"eventName\":\"MODIFY\",\"dynamodb\":{" KEYS ",\"OldImage\":" IMG(                          \
        "CREATED",                                                                                 \
        "TASK1") ",\"NewImage\":{\"id\":{\"S\":\"t1\"},\"status\":{\"S\":\"IN_PROGRESS\"}}}}"

#define P1 "{\"dynamodb\":{\"NewImage\":{\"status\":{\"S\":[\"CREATED\"]}}}}"
#define P2                                                                                         \
    "{\"dynamodb\":{\"NewImage\":{\"status\":{\"S\":[{\"anything-but\":[\"COMPLETED\","            \
    "\"FAILED\"]}]}}}}"
#define P3 "{\"dynamodb\":{\"NewImage\":{\"task_type\":{\"S\":[{\"prefix\":\"TASK\"}]}}}}"
#define P4 "{\"dynamodb\":{\"OldImage\":{\"status\":{\"S\":[{\"exists\":true}]}}}}"
#define P5 "{\"dynamodb\":{\"NewImage\":{\"ttl\":{\"N\":[{\"exists\":false}]}}}}"
#define P6 "{\"eventName\":[\"INSERT\"]}"

/* One row of the reference's table: a pattern against R1..R4. */
#define ROW4(p, w1, w2, w3, w4)                                                                    \
    {p, R1, w1}, {p, R2, w2}, {p, R3, w3},                                                         \
    {                                                                                              \
        p, R4, w4                                                                                  \
    }

static const pattern_case dynamodb_cases[] = {
    /* Part A worked examples: pattern, then R1..R4 as in the reference's table */
    ROW4(P1, true, false, false, false),
    ROW4(P2, true, true, false, false),
    ROW4(P3, true, true, true, false),
    ROW4(P4, false, true, true, true),
    ROW4(P5, true, true, true, true), /* R4: parent NewImage absent = absent */
    ROW4(P6, true, false, false, false),
    {P3, R2_NO_TYPE, false}, /* example 3 "only if NewImage has task_type" */
    /* the publisher's filter: INSERTs of one task type */
    {"{\"eventName\":[\"INSERT\"],\"dynamodb\":{\"NewImage\":{\"task_type\":{\"S\":[\"TASK1\"]}}}}",
     R1, true},
    {"{\"eventName\":[\"INSERT\"],\"dynamodb\":{\"NewImage\":{\"task_type\":{\"S\":[\"TASK2\"]}}}}",
     R1, false},
    /* REMOVE excluded by requiring a NewImage leaf */
    {"{\"dynamodb\":{\"NewImage\":{\"id\":{\"S\":[{\"exists\":true}]}}}}", R4, false},
    {"{\"dynamodb\":{\"NewImage\":{\"id\":{\"S\":[{\"exists\":true}]}}}}", R3, true},
};

static const pattern_case operator_cases[] = {
    /* Null */
    {"{\"UserID\":[null]}", "{\"UserID\":null}", true},
    {"{\"UserID\":[null]}", "{\"UserID\":\"null\"}", false},
    {"{\"UserID\":[null]}", "{}", false},
    /* Empty */
    {"{\"LastName\":[\"\"]}", "{\"LastName\":\"\"}", true},
    {"{\"LastName\":[\"\"]}", "{\"LastName\":\"x\"}", false},
    {"{\"LastName\":[\"\"]}", "{\"LastName\":null}", false},
    /* Equals: exact, case-sensitive */
    {"{\"Name\":[\"Alice\"]}", "{\"Name\":\"Alice\"}", true},
    {"{\"Name\":[\"Alice\"]}", "{\"Name\":\"alice\"}", false},
    {"{\"Name\":[\"Alice\"]}", "{\"Name\":\"Alice \"}", false},
    {"{\"Name\":[\"Alice\"]}", "{\"Other\":\"Alice\"}", false},
    /* And / Or */
    {"{\"Location\":[\"New York\"],\"Day\":[\"Monday\"]}",
     "{\"Location\":\"New York\",\"Day\":\"Monday\",\"x\":1}", true},
    {"{\"Location\":[\"New York\"],\"Day\":[\"Monday\"]}",
     "{\"Location\":\"New York\",\"Day\":\"Tuesday\"}", false},
    {"{\"PaymentType\":[\"Credit\",\"Debit\"]}", "{\"PaymentType\":\"Debit\"}", true},
    {"{\"PaymentType\":[\"Credit\",\"Debit\"]}", "{\"PaymentType\":\"Cash\"}", false},
    /* exact numbers by JSON form: 300 is not 300.0, nor "300" */
    {"{\"n\":[300]}", "{\"n\":300}", true},
    {"{\"n\":[300]}", "{\"n\":300.0}", false},
    {"{\"n\":[300]}", "{\"n\":\"300\"}", false},
    {"{\"n\":[300.0]}", "{\"n\":300.0}", true},
    {"{\"n\":[300.0]}", "{\"n\":300}", false},
    {"{\"n\":[\"300\"]}", "{\"n\":300}", false},
    /* booleans */
    {"{\"b\":[true]}", "{\"b\":true}", true},
    {"{\"b\":[true]}", "{\"b\":false}", false},
    {"{\"b\":[true]}", "{\"b\":\"true\"}", false},
    /* Not: anything-but with a list of strings */
    {"{\"Weather\":[{\"anything-but\":[\"Raining\"]}]}", "{\"Weather\":\"Sunny\"}", true},
    {"{\"Weather\":[{\"anything-but\":[\"Raining\"]}]}", "{\"Weather\":\"Raining\"}", false},
    {"{\"Weather\":[{\"anything-but\":[\"Raining\"]}]}", "{}", false},
    {"{\"Weather\":[{\"anything-but\":[\"Raining\"]}]}", "{\"Weather\":null}", true},
    {"{\"Weather\":[{\"anything-but\":[\"Raining\"]},{\"exists\":false}]}", "{}", true},
    /* anything-but: a single string, a single number, a list of numbers */
    {"{\"s\":[{\"anything-but\":\"x\"}]}", "{\"s\":\"y\"}", true},
    {"{\"s\":[{\"anything-but\":\"x\"}]}", "{\"s\":\"x\"}", false},
    {"{\"n\":[{\"anything-but\":5}]}", "{\"n\":6}", true},
    {"{\"n\":[{\"anything-but\":5}]}", "{\"n\":5}", false},
    {"{\"n\":[{\"anything-but\":[100,500]}]}", "{\"n\":200}", true},
    {"{\"n\":[{\"anything-but\":[100,500]}]}", "{\"n\":500}", false},
    /* its numbers by JSON form, as exact numbers: 500.0 is not 500, so it is not excluded */
    {"{\"n\":[{\"anything-but\":[100,500]}]}", "{\"n\":500.0}", true},
    {"{\"n\":[{\"anything-but\":[300]}]}", "{\"n\":300.0}", true},
    {"{\"n\":[{\"anything-but\":[300]}]}", "{\"n\":300}", false},
    {"{\"n\":[{\"anything-but\":[300.0]}]}", "{\"n\":300.0}", false},
    {"{\"n\":[{\"anything-but\":[300.0]}]}", "{\"n\":300}", true},
    {"{\"n\":[{\"anything-but\":[100,500]}]}", "{\"n\":\"500\"}", true},
    /* anything-but prefix / suffix / equals-ignore-case */
    {"{\"k\":[{\"anything-but\":{\"prefix\":\"order-\"}}]}", "{\"k\":\"data-entry\"}", true},
    {"{\"k\":[{\"anything-but\":{\"prefix\":\"order-\"}}]}", "{\"k\":\"order_number\"}", true},
    {"{\"k\":[{\"anything-but\":{\"prefix\":\"order-\"}}]}", "{\"k\":\"order-cancelled\"}", false},
    {"{\"k\":[{\"anything-but\":{\"suffix\":\".png\"}}]}", "{\"k\":\"a.jpg\"}", true},
    {"{\"k\":[{\"anything-but\":{\"suffix\":\".png\"}}]}", "{\"k\":\"a.png\"}", false},
    {"{\"k\":[{\"anything-but\":{\"equals-ignore-case\":[\"ALPHA\",\"beta\"]}}]}",
     "{\"k\":\"gamma\"}", true},
    {"{\"k\":[{\"anything-but\":{\"equals-ignore-case\":[\"ALPHA\",\"beta\"]}}]}",
     "{\"k\":\"Alpha\"}", false},
    /* anything-but over a record array: some element not excluded */
    {"{\"k\":[{\"anything-but\":[\"a\"]}]}", "{\"k\":[\"a\",\"b\"]}", true},
    {"{\"k\":[{\"anything-but\":[\"a\"]}]}", "{\"k\":[\"a\"]}", false},
    /* Numeric equals and every comparison */
    {"{\"Price\":[{\"numeric\":[\"=\",100]}]}", "{\"Price\":100}", true},
    {"{\"Price\":[{\"numeric\":[\"=\",100]}]}", "{\"Price\":100.0}", true},
    {"{\"Price\":[{\"numeric\":[\"=\",100]}]}", "{\"Price\":101}", false},
    {"{\"Price\":[{\"numeric\":[\"=\",100]}]}", "{\"Price\":\"100\"}", false},
    {"{\"n\":[{\"numeric\":[\"<\",5]}]}", "{\"n\":4.99}", true},
    {"{\"n\":[{\"numeric\":[\"<\",5]}]}", "{\"n\":5}", false},
    {"{\"n\":[{\"numeric\":[\"<=\",5]}]}", "{\"n\":5}", true},
    {"{\"n\":[{\"numeric\":[\"<=\",5]}]}", "{\"n\":5.01}", false},
    {"{\"n\":[{\"numeric\":[\">\",5]}]}", "{\"n\":6}", true},
    {"{\"n\":[{\"numeric\":[\">\",5]}]}", "{\"n\":5}", false},
    {"{\"n\":[{\"numeric\":[\">=\",5]}]}", "{\"n\":5}", true},
    {"{\"n\":[{\"numeric\":[\">=\",5]}]}", "{\"n\":-5}", false},
    {"{\"n\":[{\"numeric\":[\">=\",5]}]}", "{\"n\":true}", false},
    /* Numeric range */
    {"{\"Price\":[{\"numeric\":[\">\",10,\"<=\",20]}]}", "{\"Price\":20}", true},
    {"{\"Price\":[{\"numeric\":[\">\",10,\"<=\",20]}]}", "{\"Price\":15.5}", true},
    {"{\"Price\":[{\"numeric\":[\">\",10,\"<=\",20]}]}", "{\"Price\":10}", false},
    {"{\"Price\":[{\"numeric\":[\">\",10,\"<=\",20]}]}", "{\"Price\":21}", false},
    {"{\"Price\":[{\"numeric\":[\">=\",10,\"<\",20]}]}", "{\"Price\":10}", true},
    {"{\"Price\":[{\"numeric\":[\">=\",10,\"<\",20]}]}", "{\"Price\":20}", false},
    /* DynamoDB numbers are strings: numeric never matches them, equality does */
    {"{\"N\":[{\"numeric\":[\">\",1]}]}", "{\"N\":\"5\"}", false},
    {"{\"N\":[\"5\"]}", "{\"N\":\"5\"}", true},
    /* Exists / does not exist */
    {"{\"ProductName\":[{\"exists\":true}]}", "{\"ProductName\":\"x\"}", true},
    {"{\"ProductName\":[{\"exists\":true}]}", "{\"ProductName\":null}", true},
    {"{\"ProductName\":[{\"exists\":true}]}", "{\"Other\":1}", false},
    {"{\"ProductName\":[{\"exists\":true}]}", "{\"ProductName\":{\"a\":1}}", false},
    {"{\"ProductName\":[{\"exists\":true}]}", "{\"ProductName\":[]}", false},
    {"{\"ProductName\":[{\"exists\":false}]}", "{\"Other\":1}", true},
    {"{\"ProductName\":[{\"exists\":false}]}", "{\"ProductName\":\"x\"}", false},
    {"{\"ProductName\":[{\"exists\":false}]}", "{\"ProductName\":[]}", true},
    {"{\"a\":{\"b\":{\"c\":[{\"exists\":false}]}}}", "{\"x\":1}", true},
    {"{\"a\":{\"b\":{\"c\":[{\"exists\":false}]}}}", "{\"a\":{\"b\":{\"c\":0}}}", false},
    /* Begins with / ends with */
    {"{\"Region\":[{\"prefix\":\"us-\"}]}", "{\"Region\":\"us-east-1\"}", true},
    {"{\"Region\":[{\"prefix\":\"us-\"}]}", "{\"Region\":\"eu-west-1\"}", false},
    {"{\"Region\":[{\"prefix\":\"us-\"}]}", "{\"Region\":\"us\"}", false},
    {"{\"Region\":[{\"prefix\":\"1\"}]}", "{\"Region\":12}", false},
    {"{\"File\":[{\"suffix\":\".png\"}]}", "{\"File\":\"a/b.png\"}", true},
    {"{\"File\":[{\"suffix\":\".png\"}]}", "{\"File\":\"a/b.PNG\"}", false},
    /* equals-ignore-case */
    {"{\"Name\":[{\"equals-ignore-case\":\"alice\"}]}", "{\"Name\":\"ALICE\"}", true},
    {"{\"Name\":[{\"equals-ignore-case\":\"alice\"}]}", "{\"Name\":\"alicia\"}", false},
    /* it folds the ASCII letters alone, as the README says */
    {"{\"Name\":[{\"equals-ignore-case\":\"\xc3\xa9t\xc3\xa9\"}]}",
     "{\"Name\":\"\xc3\xa9T\xc3\xa9\"}", true},
    {"{\"Name\":[{\"equals-ignore-case\":\"\xc3\xa9t\xc3\xa9\"}]}",
     "{\"Name\":\"\xc3\x89T\xc3\x89\"}", false},
    /* cidr, IPv4 and IPv6 */
    {"{\"ip\":[{\"cidr\":\"10.0.0.0/24\"}]}", "{\"ip\":\"10.0.0.255\"}", true},
    {"{\"ip\":[{\"cidr\":\"10.0.0.0/24\"}]}", "{\"ip\":\"10.0.1.0\"}", false},
    {"{\"ip\":[{\"cidr\":\"10.0.0.0/24\"}]}", "{\"ip\":\"not-an-ip\"}", false},
    {"{\"ip\":[{\"cidr\":\"10.0.0.5/30\"}]}", "{\"ip\":\"10.0.0.7\"}", true},
    {"{\"ip\":[{\"cidr\":\"10.0.0.5/30\"}]}", "{\"ip\":\"10.0.0.8\"}", false},
    {"{\"ip\":[{\"cidr\":\"2001:db8::/32\"}]}", "{\"ip\":\"2001:db8:ffff::1\"}", true},
    {"{\"ip\":[{\"cidr\":\"2001:db8::/32\"}]}", "{\"ip\":\"2001:db9::1\"}", false},
    {"{\"ip\":[{\"cidr\":\"2001:db8::/32\"}]}", "{\"ip\":\"10.0.0.1\"}", false},
    /* record arrays: any element */
    {"{\"tags\":[\"b\"]}", "{\"tags\":[\"a\",\"b\"]}", true},
    {"{\"tags\":[\"c\"]}", "{\"tags\":[\"a\",\"b\"]}", false},
    {"{\"tags\":[\"c\"]}", "{\"tags\":[[\"a\"],[\"c\"]]}", true},
    {"{\"items\":{\"k\":[\"b\"]}}", "{\"items\":[{\"k\":\"a\"},{\"k\":\"b\"}]}", true},
    {"{\"items\":{\"k\":[\"c\"]}}", "{\"items\":[{\"k\":\"a\"},{\"k\":\"b\"}]}", false},
    /* one element must match a nested pattern as a whole */
    {"{\"items\":{\"k\":[\"a\"],\"v\":[2]}}",
     "{\"items\":[{\"k\":\"a\",\"v\":1},{\"k\":\"b\",\"v\":2}]}", false},
    {"{\"items\":{\"k\":[\"b\"],\"v\":[2]}}",
     "{\"items\":[{\"k\":\"a\",\"v\":1},{\"k\":\"b\",\"v\":2}]}", true},
    /* "exists": false over an array of objects: absent only when no element holds the key, as
     * AWS matches the elements' fields as the parent's */
    {"{\"a\":{\"b\":[{\"exists\":false}]}}", "{\"a\":[{\"b\":1},{\"c\":2}]}", false},
    {"{\"a\":{\"b\":[{\"exists\":false}]}}", "{\"a\":[{\"c\":1},{\"c\":2}]}", true},
    {"{\"a\":{\"b\":[{\"exists\":false}],\"c\":[2]}}", "{\"a\":[{\"b\":1},{\"c\":2}]}", false},
    {"{\"a\":{\"b\":[{\"exists\":false}],\"c\":[2]}}", "{\"a\":[{\"b\":[]},{\"c\":2}]}", true},
    {"{\"a\":{\"b\":{\"c\":[{\"exists\":false}]}}}",
     "{\"a\":[{\"b\":[{\"c\":1}]},{\"b\":[{\"d\":1}]}]}", false},
    {"{\"a\":{\"b\":{\"c\":[{\"exists\":false}]}}}", "{\"a\":[{\"b\":{\"d\":1}},{\"x\":1}]}", true},
    /* five such leaves under one array, each answered for the whole array */
    {"{\"a\":{\"p\":[{\"exists\":false}],\"q\":[{\"exists\":false}],\"r\":[{\"exists\":false}],"
     "\"s\":[{\"exists\":false}],\"t\":[{\"exists\":false}]}}",
     "{\"a\":[{\"c\":1},{\"t\":1}]}", false},
    {"{\"a\":{\"p\":[{\"exists\":false}],\"q\":[{\"exists\":false}],\"r\":[{\"exists\":false}],"
     "\"s\":[{\"exists\":false}],\"t\":[{\"exists\":false}]}}",
     "{\"a\":[{\"c\":1},{\"c\":2}]}", true},
    /* and one in an "$or" alternative below the array too */
    {"{\"a\":{\"$or\":[{\"b\":[{\"exists\":false}]},{\"c\":[\"y\"]}]}}",
     "{\"a\":[{\"b\":1},{\"c\":2}]}", false},
    {"{\"a\":{\"$or\":[{\"b\":[{\"exists\":false}]},{\"c\":[\"y\"]}]}}",
     "{\"a\":[{\"d\":1},{\"c\":2}]}", true},
    /* another rule of the leaf still holds in one element; "exists": true stays per element */
    {"{\"a\":{\"b\":[{\"exists\":false},1]}}", "{\"a\":[{\"b\":1},{\"c\":2}]}", true},
    {"{\"a\":{\"b\":[{\"exists\":true}],\"c\":[2]}}", "{\"a\":[{\"b\":1},{\"c\":2}]}", false},
    /* nesting: a scalar where the pattern expects an object holds nothing */
    {"{\"a\":{\"b\":[\"x\"]}}", "{\"a\":\"x\"}", false},
    {"{\"a\":{\"b\":[\"x\"]}}", "{\"a\":{\"b\":\"x\"}}", true},
    /* $or (EventBridge syntax), and "$or" that is an ordinary key */
    {"{\"$or\":[{\"a\":[\"x\"]},{\"b\":[\"y\"]}]}", "{\"b\":\"y\"}", true},
    {"{\"$or\":[{\"a\":[\"x\"]},{\"b\":[\"y\"]}]}", "{\"a\":\"y\",\"b\":\"x\"}", false},
    {"{\"c\":[1],\"$or\":[{\"a\":[\"x\"]},{\"b\":[\"y\"]}]}", "{\"a\":\"x\",\"c\":2}", false},
    {"{\"$or\":[\"x\"]}", "{\"$or\":\"x\"}", true},
    {"{\"$or\":[\"x\"]}", "{\"a\":\"x\"}", false},
    /* duplicate keys: the last occurrence wins */
    {"{\"a\":[\"x\"],\"a\":[\"y\"]}", "{\"a\":\"y\"}", true},
    {"{\"a\":[\"x\"],\"a\":[\"y\"]}", "{\"a\":\"x\"}", false},
    /* a body that is already an object is matched as JSON */
    {"{\"body\":{\"k\":[\"v\"]}}", "{\"body\":{\"k\":\"v\"}}", true},
};

static int run_pattern_table(const pattern_case *cases, size_t n)
{
    int failures = 0;
    for (size_t i = 0; i < n; i++) {
        char err[256];
        filter_pattern *p = filter_pattern_compile(cases[i].pattern, err, sizeof err);
        json_error_t je;
        json_t *rec = json_loads(cases[i].record, 0, &je);
        if (!p || !rec) {
            print_error("row %zu: setup failed: %s %s\n", i, p ? "" : err, rec ? "" : je.text);
            failures++;
        } else if (filter_pattern_match(p, rec) != cases[i].want) {
            print_error("row %zu: %s vs %s: want %s\n", i, cases[i].pattern, cases[i].record,
                        cases[i].want ? "match" : "no match");
            failures++;
        }
        filter_pattern_free(p);
        json_decref(rec);
    }
    return failures;
}

static void test_pattern_dynamodb_examples(void **state)
{
    (void)state;
    assert_int_equal(run_pattern_table(dynamodb_cases, N_ELEMS(dynamodb_cases)), 0);
}

static void test_pattern_operators(void **state)
{
    (void)state;
    assert_int_equal(run_pattern_table(operator_cases, N_ELEMS(operator_cases)), 0);
}

/* ---- Lambda patterns over SQS records ------------------------------------------------------ */

typedef struct sqs_case {
    const char *pattern;
    const char *body;          /* the message body text, as SQS delivers it */
    const char *receive_count; /* attributes.ApproximateReceiveCount */
    const char *task_type;     /* messageAttributes.task_type.stringValue, NULL = absent */
    bool want;
} sqs_case;

#define SQS_P1 "{\"body\":{\"task_type\":[\"TASK1\",\"TASK2\"]}}"
#define SQS_P2 "{\"body\":{\"priority\":[{\"numeric\":[\">=\",5]}]}}"
#define SQS_P3 "{\"messageAttributes\":{\"task_type\":{\"stringValue\":[\"TASK1\"]}}}"
#define SQS_P4 "{\"attributes\":{\"ApproximateReceiveCount\":[\"1\"]}}"

static const sqs_case sqs_cases[] = {
    /* the reference's SQS table */
    {SQS_P1, "{\"task_type\":\"TASK2\",\"id\":\"x\"}", "1", NULL, true},
    {SQS_P1, "{\"task_type\":\"TASK3\"}", "1", NULL, false},
    {SQS_P1, "TASK1", "1", NULL, false}, /* plain text under a JSON pattern: dropped */
    {SQS_P2, "{\"priority\":7}", "1", NULL, true},
    {SQS_P2, "{\"priority\":4}", "1", NULL, false},
    {SQS_P2, "{\"priority\":\"7\"}", "1", NULL, false},
    {SQS_P2, "{}", "1", NULL, false},
    {SQS_P3, "{}", "1", "TASK1", true},
    {SQS_P3, "{}", "1", NULL, false},
    {SQS_P3, "{}", "1", "TASK2", false},
    {SQS_P4, "{}", "1", NULL, true},
    {SQS_P4, "{}", "2", NULL, false},
    {SQS_P4, "plain text", "1", NULL, true}, /* no body in the pattern: no format check */
    /* the other way round: a plain-string pattern against a JSON body is dropped */
    {"{\"body\":[{\"prefix\":\"TASK\"}]}", "TASK1", "1", NULL, true},
    {"{\"body\":[{\"prefix\":\"TASK\"}]}", "{\"task\":\"TASK1\"}", "1", NULL, false},
    {"{\"body\":[\"hello\"]}", "hello", "1", NULL, true},
    {"{\"body\":[\"hello\"]}", "bye", "1", NULL, false},
};

static json_t *sqs_record(const sqs_case *c)
{
    json_t *attrs = json_object();
    if (c->task_type)
        json_object_set_new(
            attrs, "task_type",
            json_pack("{s:s, s:s}", "stringValue", c->task_type, "dataType", "String"));
    return json_pack("{s:s, s:s, s:{s:s}, s:o, s:s}", "messageId", "m1", "body", c->body,
                     "attributes", "ApproximateReceiveCount", c->receive_count, "messageAttributes",
                     attrs, "eventSource", "aws:sqs");
}

static void test_pattern_sqs_examples(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < N_ELEMS(sqs_cases); i++) {
        char err[256];
        filter_pattern *p = filter_pattern_compile(sqs_cases[i].pattern, err, sizeof err);
        json_t *rec = sqs_record(&sqs_cases[i]);
        assert_non_null(rec);
        if (!p || filter_pattern_match(p, rec) != sqs_cases[i].want) {
            print_error("sqs row %zu: %s vs body %s: want %s %s\n", i, sqs_cases[i].pattern,
                        sqs_cases[i].body, sqs_cases[i].want ? "match" : "no match", p ? "" : err);
            failures++;
        }
        filter_pattern_free(p);
        json_decref(rec);
    }
    assert_int_equal(failures, 0);
}

/* ---- pattern sets -------------------------------------------------------------------------- */

static bool set_matches(const filter_set *s, const char *record)
{
    json_t *rec = json_loads(record, 0, NULL);
    assert_non_null(rec);
    bool ok = filter_set_match(s, rec);
    json_decref(rec);
    return ok;
}

/* A set that may match a record with eventName value: the full match of one such record, and
 * what filter_set_may_match_field() says before the record is built. */
static bool may_match_event(const char *const *patterns, size_t n, const char *value)
{
    char err[256];
    filter_set *s = filter_set_compile(patterns, n, err, sizeof err);
    assert_non_null(s);
    bool may = filter_set_may_match_field(s, "eventName", value);
    filter_set_free(s);
    return may;
}

static void test_set_may_match_field(void **state)
{
    (void)state;
    const char *const inserts[] = {"{\"eventName\":[\"INSERT\"]}"};
    assert_true(may_match_event(inserts, 1, "INSERT"));
    assert_false(may_match_event(inserts, 1, "MODIFY"));
    /* another pattern of the set may take it */
    const char *const either[] = {
        "{\"eventName\":[\"INSERT\"]}",
        "{\"dynamodb\":{\"NewImage\":{\"status\":{\"S\":[\"FAILED\"]}}}}"};
    assert_true(may_match_event(either, 2, "MODIFY"));
    /* rules other than equality, and "$or" */
    const char *const but[] = {"{\"eventName\":[{\"anything-but\":[\"REMOVE\"]}]}"};
    assert_true(may_match_event(but, 1, "MODIFY"));
    assert_false(may_match_event(but, 1, "REMOVE"));
    const char *const prefix[] = {"{\"eventName\":[{\"prefix\":\"MOD\"}]}"};
    assert_true(may_match_event(prefix, 1, "MODIFY"));
    assert_false(may_match_event(prefix, 1, "INSERT"));
    const char *const ors[] = {"{\"$or\":[{\"eventName\":[\"INSERT\"]},"
                               "{\"eventName\":[\"REMOVE\"]}]}"};
    assert_true(may_match_event(ors, 1, "REMOVE"));
    assert_false(may_match_event(ors, 1, "MODIFY"));
    const char *const or_open[] = {"{\"$or\":[{\"eventName\":[\"INSERT\"]},"
                                   "{\"eventID\":[{\"exists\":true}]}]}"};
    assert_true(may_match_event(or_open, 1, "MODIFY"));
    /* a pattern that does not name the field, and no patterns at all */
    const char *const other[] = {"{\"eventSource\":[\"aws:dynamodb\"]}"};
    assert_true(may_match_event(other, 1, "MODIFY"));
    assert_true(filter_set_may_match_field(NULL, "eventName", "MODIFY"));
    /* which sets are decided by eventName alone */
    const char *const *decided[] = {inserts, but, prefix, ors};
    for (size_t i = 0; i < 4; i++) {
        char err[256];
        filter_set *s = filter_set_compile(decided[i], 1, err, sizeof err);
        assert_non_null(s);
        assert_true(filter_set_decided_by_field(s, "eventName"));
        assert_false(filter_set_decided_by_field(s, "eventID"));
        filter_set_free(s);
    }
    const char *const *open_ones[] = {either, or_open, other};
    const size_t open_n[] = {2, 1, 1};
    for (size_t i = 0; i < 3; i++) {
        char err[256];
        filter_set *s = filter_set_compile(open_ones[i], open_n[i], err, sizeof err);
        assert_non_null(s);
        assert_false(filter_set_decided_by_field(s, "eventName"));
        filter_set_free(s);
    }
    assert_true(filter_set_decided_by_field(NULL, "eventName"));
    /* whenever the set refuses early, it refuses the whole record too */
    const char *const recs[] = {"{\"eventName\":\"MODIFY\",\"dynamodb\":{}}",
                                "{\"eventName\":\"REMOVE\",\"eventID\":\"1\"}"};
    const char *const *sets[] = {inserts, but, prefix, ors};
    for (size_t i = 0; i < 4; i++) {
        char err[256];
        filter_set *s = filter_set_compile(sets[i], 1, err, sizeof err);
        assert_non_null(s);
        for (size_t r = 0; r < 2; r++) {
            json_t *rec = json_loads(recs[r], 0, NULL);
            const char *ev = json_string_value(json_object_get(rec, "eventName"));
            if (!filter_set_may_match_field(s, "eventName", ev))
                assert_false(filter_set_match(s, rec));
            json_decref(rec);
        }
        filter_set_free(s);
    }
}

/* The attributes a message of the topic carries (publisher.c's publish_attribute_names). */
static const char *const carried[] = {"TaskId", "TaskType", "traceparent", "tracestate", NULL};

/* What filter_policy_may_match_attr() says of TaskType value under an attribute policy, for
 * messages that carry what the topic's do (all: any attribute); and when it says no, a whole
 * message as the topic publishes it is refused too. */
static bool may_route_of(const char *policy, const char *value, bool all)
{
    char err[256];
    filter_policy *p = filter_policy_compile(policy, FILTER_SCOPE_ATTRIBUTES, err, sizeof err);
    if (!p)
        fail_msg("%s: %s", policy, err);
    bool may = filter_policy_may_match_attr(p, "TaskType", value, all ? NULL : carried);
    const filter_attr published[] = {{"TaskId", "String", "0190d7a4-0000-7000-8000-000000000000"},
                                     {"TaskType", "String", value},
                                     {"traceparent", "String",
                                      "00-0af7651916cd43dd8448eb211c80319c-"
                                      "b7ad6b7169203331-01"}};
    if (!may)
        assert_false(filter_policy_match_attrs(p, published, 3));
    filter_policy_free(p);
    return may;
}

static bool may_route(const char *policy, const char *value)
{
    return may_route_of(policy, value, true);
}

static void test_policy_may_match_attr(void **state)
{
    (void)state;
    /* a key the topic's messages never carry is absent from every one */
    assert_true(may_route("{\"TaskType\":[\"TASK1\"],\"Other\":[\"x\"]}", "TASK1"));
    assert_false(may_route_of("{\"TaskType\":[\"TASK1\"],\"Other\":[\"x\"]}", "TASK1", false));
    assert_false(may_route_of("{\"Nope\":[\"x\"]}", "TASK1", false));
    assert_false(may_route_of("{\"Nope\":[{\"anything-but\":[\"x\"]}]}", "TASK1", false));
    assert_true(may_route_of("{\"Nope\":[{\"exists\":false}]}", "TASK1", false));
    assert_true(may_route_of("{\"traceparent\":[{\"exists\":true}]}", "TASK1", false));
    const char *either = "{\"$or\":[{\"Nope\":[\"x\"]},{\"TaskType\":[\"TASK1\"]}]}";
    assert_true(may_route_of(either, "TASK1", false));
    assert_false(may_route_of(either, "TASK2", false));
    assert_true(may_route("{\"TaskType\":[\"TASK1\"]}", "TASK1"));
    assert_false(may_route("{\"TaskType\":[\"TASK1\"]}", "TASK2"));
    assert_true(may_route("{\"TaskType\":[{\"anything-but\":[\"TASK1\"]}]}", "resize"));
    assert_false(may_route("{\"TaskType\":[{\"anything-but\":[\"TASK1\"]}]}", "TASK1"));
    assert_true(may_route("{\"TaskType\":[{\"prefix\":\"image.\"}]}", "image.resize"));
    assert_false(may_route("{\"TaskType\":[{\"prefix\":\"image.\"}]}", "resize"));
    assert_false(may_route("{\"TaskType\":[{\"numeric\":[\">\",0]}]}", "TASK1"));
    /* a message always carries TaskType: a policy that wants it absent takes none */
    assert_false(may_route("{\"TaskType\":[{\"exists\":false}]}", "TASK1"));
    assert_true(may_route("{\"TaskType\":[{\"exists\":true}]}", "TASK1"));
    /* "$or": one branch open to it is enough */
    const char *ors = "{\"$or\":[{\"TaskType\":[\"a\"]},{\"TaskType\":[\"b\"]}]}";
    assert_true(may_route(ors, "b"));
    assert_false(may_route(ors, "c"));
    assert_true(
        may_route("{\"$or\":[{\"TaskType\":[\"a\"]},{\"TaskId\":[{\"prefix\":\"0\"}]}]}", "c"));
    /* keys ANDed: one on another attribute leaves the verdict to it */
    assert_false(may_route("{\"TaskType\":[\"a\"],\"TaskId\":[{\"exists\":true}]}", "c"));
    assert_true(may_route("{\"TaskId\":[{\"prefix\":\"0190\"}]}", "anything"));
    assert_true(may_route("{}", "anything"));
    /* no policy, or one on the body: the type does not decide */
    assert_true(filter_policy_may_match_attr(NULL, "TaskType", "x", NULL));
    char err[256];
    filter_policy *body =
        filter_policy_compile("{\"kind\":[\"a\"]}", FILTER_SCOPE_BODY, err, sizeof err);
    assert_non_null(body);
    assert_true(filter_policy_may_match_attr(body, "TaskType", "x", NULL));
    filter_policy_free(body);
}

static void test_set_or_and_empty(void **state)
{
    (void)state;
    char err[256];
    const char *const two[] = {P6, P4};
    filter_set *s = filter_set_compile(two, 2, err, sizeof err);
    assert_non_null(s);
    assert_int_equal(filter_set_count(s), 2);
    assert_true(set_matches(s, R1)); /* first filter */
    assert_true(set_matches(s, R4)); /* second filter */
    assert_false(set_matches(s, "{\"eventName\":\"MODIFY\",\"dynamodb\":{}}"));
    filter_set_free(s);

    filter_set *empty = filter_set_compile(NULL, 0, err, sizeof err);
    assert_non_null(empty);
    assert_int_equal(filter_set_count(empty), 0);
    assert_true(set_matches(empty, R4));
    filter_set_free(empty);
    assert_true(set_matches(NULL, R4)); /* no FilterCriteria: no filtering */
    assert_int_equal(filter_set_count(NULL), 0);

    const char *const bad[] = {P6, "{\"eventName\":\"INSERT\"}"};
    assert_null(filter_set_compile(bad, 2, err, sizeof err));
    assert_non_null(strstr(err, "filter 1:"));
    assert_non_null(strstr(err, "array of rules"));
    assert_null(filter_set_compile(NULL, 1, err, sizeof err));
    filter_set_free(NULL);
}

static void test_pattern_api_edges(void **state)
{
    (void)state;
    char err[256];
    filter_pattern *p = filter_pattern_compile(P6, err, sizeof err);
    assert_non_null(p);
    json_t *arr = json_loads("[1]", 0, NULL);
    assert_false(filter_pattern_match(p, arr)); /* a record must be an object */
    assert_false(filter_pattern_match(p, NULL));
    json_decref(arr);
    filter_pattern_free(p);
    assert_false(filter_pattern_match(NULL, NULL));
    filter_pattern_free(NULL);

    /* compiling from a parsed object; the object stays the caller's */
    json_t *obj = json_loads(P1, 0, NULL);
    p = filter_pattern_compile_json(obj, err, sizeof err);
    json_decref(obj);
    assert_non_null(p);
    json_t *rec = json_loads(R1, 0, NULL);
    assert_true(filter_pattern_match(p, rec));
    json_decref(rec);
    filter_pattern_free(p);
    assert_null(filter_pattern_compile_json(NULL, err, sizeof err));
    assert_non_null(strstr(err, "missing"));

    /* err may be NULL or tiny */
    assert_null(filter_pattern_compile("{", NULL, 0));
    char tiny[8];
    assert_null(filter_pattern_compile("{", tiny, sizeof tiny));
    assert_int_equal(strlen(tiny), sizeof tiny - 1);
    assert_null(filter_pattern_compile(NULL, err, sizeof err));
    assert_non_null(strstr(err, "NULL"));
}

/* ---- SNS policies over message attributes -------------------------------------------------- */

/* The reference's messages M1..M5. */
static const filter_attr M1[] = {{"task_type", "String", "TASK1"}, {"priority", "Number", "7"}};
static const filter_attr M2[] = {{"task_type", "String", "TASK3"}, {"priority", "Number", "2"}};
static const filter_attr M3[] = {{"task_type", "String", "TASK1"}};
static const filter_attr M4[] = {{"tags", "String.Array", "[\"urgent\",\"billing\"]"}};
#define MSG(m) m, N_ELEMS(m)
#define M5     NULL, 0

/* Other messages for the operator rows. */
static const filter_attr A_PUBLISHED_TASK1[] = {{"TaskId", "String", "t1"},
                                                {"TaskType", "String", "TASK1"}};
static const filter_attr A_PUBLISHED_TASK2[] = {{"TaskId", "String", "t2"},
                                                {"TaskType", "String", "TASK2"}};
static const filter_attr A_FILE_PNG[] = {{"file", "String", "cat.png"}};
static const filter_attr A_FILE_JPG[] = {{"file", "String", "cat.jpg"}};
static const filter_attr A_K_DATA[] = {{"k", "String", "data-entry"}};
static const filter_attr A_K_ORDER_NO[] = {{"k", "String", "order_number"}};
static const filter_attr A_K_ORDER_CANCEL[] = {{"k", "String", "order-cancelled"}};
static const filter_attr A_IP_IN[] = {{"ip", "String", "10.0.0.255"}};
static const filter_attr A_IP_OUT[] = {{"ip", "String", "10.0.1.1"}};
static const filter_attr A_PRICE_3015[] = {{"price", "Number", "301.5"}};
static const filter_attr A_PRICE_3015E[] = {{"price", "Number", "3.015e2"}};
static const filter_attr A_PRICE_301[] = {{"price", "Number", "301"}};
static const filter_attr A_PRICE_STR[] = {{"price", "String", "301.5"}};
static const filter_attr A_PRICE_BAD[] = {{"price", "Number", "abc"}};
static const filter_attr A_N_200[] = {{"n", "Number", "200"}};
static const filter_attr A_N_500[] = {{"n", "Number", "500.0"}};
static const filter_attr A_EMPTY_TYPE[] = {{"task_type", "String", ""}};
static const filter_attr A_NUMS_HIGH[] = {{"n", "String.Array", "[1, 5]"}};
static const filter_attr A_NUMS_LOW[] = {{"n", "String.Array", "[0, 1]"}};
static const filter_attr A_BAD_ARRAY[] = {{"tags", "String.Array", "urgent"}};
static const filter_attr A_BINARY[] = {{"img", "Binary", "AAEC"}};
static const filter_attr A_BINARY_AND_S[] = {{"img", "Binary", "AAEC"}, {"s", "String", "x"}};
static const filter_attr A_CUSTOM_NUM[] = {{"priority", "Number.int", "9"}};
static const filter_attr A_DEFAULT_TYPE[] = {{"task_type", NULL, "TASK1"}};
static const filter_attr A_OR_NAME[] = {{"$or", "String", "xa"}};
static const filter_attr A_TASK_MIXED[] = {{"task_type", "String", "Task1"}};

typedef struct attrs_case {
    const char *policy;
    const filter_attr *attrs;
    size_t n;
    bool want;
} attrs_case;

#define SP1 "{\"task_type\":[\"TASK1\",\"TASK2\"]}"
#define SP2 "{\"task_type\":[\"TASK1\"],\"priority\":[{\"numeric\":[\">=\",5]}]}"
#define SP3 "{\"task_type\":[{\"anything-but\":[\"TASK3\"]}]}"
#define SP4 "{\"task_type\":[{\"anything-but\":[\"TASK3\"]},{\"exists\":false}]}"
#define SP5 "{\"task_type\":[{\"prefix\":\"TASK\"}]}"
#define SP6 "{\"tags\":[\"urgent\"]}"
#define SP7                                                                                        \
    "{\"task_type\":[\"TASK1\"],\"$or\":[{\"priority\":[{\"numeric\":[\">\",5]}]},{\"tags\":"      \
    "[\"urgent\"]}]}"
#define SP8 "{\"priority\":[{\"numeric\":[\">\",0,\"<=\",5]}]}"

/* One row of the reference's table: a policy against M1..M5. */
#define ROW5(p, w1, w2, w3, w4, w5)                                                                \
    {p, MSG(M1), w1}, {p, MSG(M2), w2}, {p, MSG(M3), w3}, {p, MSG(M4), w4},                        \
    {                                                                                              \
        p, M5, w5                                                                                  \
    }

static const attrs_case attrs_cases[] = {
    /* Part B worked examples: policy, then M1..M5 as in the reference's table */
    ROW5(SP1, true, false, true, false, false),
    ROW5(SP2, true, false, false, false, false),
    ROW5(SP3, true, false, true, false, false),
    ROW5(SP4, true, false, true, true, false),
    ROW5(SP5, true, true, true, false, false),
    ROW5(SP6, false, false, false, true, false),
    ROW5(SP7, true, false, false, false, false),
    ROW5(SP8, false, true, false, false, false),
    /* the default subscription */
    {"{\"TaskType\":[\"TASK1\"]}", MSG(A_PUBLISHED_TASK1), true},
    {"{\"TaskType\":[\"TASK1\"]}", MSG(A_PUBLISHED_TASK2), false},
    /* suffix */
    {"{\"file\":[{\"suffix\":\".png\"}]}", MSG(A_FILE_PNG), true},
    {"{\"file\":[{\"suffix\":\".png\"}]}", MSG(A_FILE_JPG), false},
    /* equals-ignore-case */
    {"{\"task_type\":[{\"equals-ignore-case\":\"task1\"}]}", MSG(A_TASK_MIXED), true},
    {"{\"task_type\":[{\"equals-ignore-case\":\"task1\"}]}", MSG(M2), false},
    /* exact strings are case-sensitive */
    {"{\"task_type\":[\"TASK1\"]}", MSG(A_TASK_MIXED), false},
    /* anything-but: one string, and equals-ignore-case */
    {"{\"task_type\":[{\"anything-but\":\"TASK3\"}]}", MSG(M1), true},
    {"{\"task_type\":[{\"anything-but\":\"TASK3\"}]}", MSG(M2), false},
    {"{\"task_type\":[{\"anything-but\":{\"equals-ignore-case\":\"task3\"}}]}", MSG(M1), true},
    {"{\"task_type\":[{\"anything-but\":{\"equals-ignore-case\":\"task3\"}}]}", MSG(M2), false},
    /* anything-but numbers against Number attributes, compared numerically */
    {"{\"n\":[{\"anything-but\":[100,500]}]}", MSG(A_N_200), true},
    {"{\"n\":[{\"anything-but\":[100,500]}]}", MSG(A_N_500), false},
    /* anything-but prefix / suffix */
    {"{\"k\":[{\"anything-but\":{\"prefix\":\"order-\"}}]}", MSG(A_K_DATA), true},
    {"{\"k\":[{\"anything-but\":{\"prefix\":\"order-\"}}]}", MSG(A_K_ORDER_NO), true},
    {"{\"k\":[{\"anything-but\":{\"prefix\":\"order-\"}}]}", MSG(A_K_ORDER_CANCEL), false},
    {"{\"file\":[{\"anything-but\":{\"suffix\":\".png\"}}]}", MSG(A_FILE_JPG), true},
    {"{\"file\":[{\"anything-but\":{\"suffix\":\".png\"}}]}", MSG(A_FILE_PNG), false},
    /* cidr */
    {"{\"ip\":[{\"cidr\":\"10.0.0.0/24\"}]}", MSG(A_IP_IN), true},
    {"{\"ip\":[{\"cidr\":\"10.0.0.0/24\"}]}", MSG(A_IP_OUT), false},
    /* numeric exact: a numeric compare of Number attributes */
    {"{\"price\":[{\"numeric\":[\"=\",301.5]}]}", MSG(A_PRICE_3015), true},
    {"{\"price\":[{\"numeric\":[\"=\",301.5]}]}", MSG(A_PRICE_3015E), true},
    {"{\"price\":[{\"numeric\":[\"=\",301.5]}]}", MSG(A_PRICE_301), false},
    {"{\"price\":[{\"numeric\":[\"=\",301.5]}]}", MSG(A_PRICE_STR), false},
    {"{\"price\":[{\"numeric\":[\"=\",301.5]}]}", MSG(A_PRICE_BAD), false},
    {"{\"price\":[301.5]}", MSG(A_PRICE_3015E), true},
    {"{\"price\":[301.5]}", MSG(A_PRICE_301), false},
    {"{\"priority\":[{\"numeric\":[\">\",8]}]}", MSG(A_CUSTOM_NUM), true},
    /* numeric range, each comparison */
    {"{\"priority\":[{\"numeric\":[\"<\",7]}]}", MSG(M1), false},
    {"{\"priority\":[{\"numeric\":[\"<=\",7]}]}", MSG(M1), true},
    {"{\"priority\":[{\"numeric\":[\">=\",7.5]}]}", MSG(M1), false},
    {"{\"priority\":[{\"numeric\":[\">=\",0,\"<\",7]}]}", MSG(M1), false},
    {"{\"priority\":[{\"numeric\":[\">=\",0,\"<\",7]}]}", MSG(M2), true},
    /* exists: true needs a non-empty value */
    {"{\"task_type\":[{\"exists\":true}]}", MSG(M1), true},
    {"{\"task_type\":[{\"exists\":true}]}", MSG(M4), false},
    {"{\"task_type\":[{\"exists\":true}]}", MSG(A_EMPTY_TYPE), false},
    /* exists: false, only when the message has attributes */
    {"{\"task_type\":[{\"exists\":false}]}", MSG(M4), true},
    {"{\"task_type\":[{\"exists\":false}]}", MSG(M1), false},
    {"{\"task_type\":[{\"exists\":false}]}", M5, false},
    /* String.Array elements, including numbers */
    {"{\"tags\":[\"billing\",\"x\"]}", MSG(M4), true},
    {"{\"tags\":[{\"prefix\":\"urg\"}]}", MSG(M4), true},
    {"{\"tags\":[{\"prefix\":\"x\"}]}", MSG(M4), false},
    {"{\"n\":[{\"numeric\":[\">\",1]}]}", MSG(A_NUMS_HIGH), true},
    {"{\"n\":[{\"numeric\":[\">\",1]}]}", MSG(A_NUMS_LOW), false},
    {"{\"tags\":[\"urgent\"]}", MSG(A_BAD_ARRAY), false},
    /* Binary attributes take no part */
    {"{\"img\":[{\"exists\":true}]}", MSG(A_BINARY), false},
    {"{\"img\":[{\"exists\":false}]}", MSG(A_BINARY_AND_S), true},
    {"{\"img\":[{\"exists\":false}]}", MSG(A_BINARY), false},
    /* a missing type means String */
    {"{\"task_type\":[\"TASK1\"]}", MSG(A_DEFAULT_TYPE), true},
    /* "$or" with objects that use operator words is an ordinary attribute name */
    {"{\"$or\":[{\"prefix\":\"x\"},{\"suffix\":\"y\"}]}", MSG(A_OR_NAME), true},
    {"{\"$or\":[{\"prefix\":\"y\"},{\"suffix\":\"x\"}]}", MSG(A_OR_NAME), false},
    /* an empty policy filters nothing */
    {"{}", M5, true},
    {"{}", MSG(M2), true},
};

static void test_policy_attributes(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < N_ELEMS(attrs_cases); i++) {
        const attrs_case *c = &attrs_cases[i];
        char err[256];
        filter_policy *p =
            filter_policy_compile(c->policy, FILTER_SCOPE_ATTRIBUTES, err, sizeof err);
        if (!p || filter_policy_match_attrs(p, c->attrs, c->n) != c->want) {
            print_error("attrs row %zu: %s (%zu attributes): want %s %s\n", i, c->policy, c->n,
                        c->want ? "match" : "no match", p ? "" : err);
            failures++;
        }
        filter_policy_free(p);
    }
    assert_int_equal(failures, 0);
}

/* ---- SNS policies over message bodies ------------------------------------------------------ */

typedef struct body_case {
    const char *policy;
    const char *body; /* JSON text */
    bool want;
} body_case;

#define BP "{\"task\":{\"type\":[\"TASK1\"],\"priority\":[{\"numeric\":[\">=\",5]}]}}"

static const body_case body_cases[] = {
    /* the reference's body-scope example */
    {BP, "{\"task\":{\"type\":\"TASK1\",\"priority\":9,\"id\":\"x\"}}", true},
    {BP, "{\"task\":{\"type\":\"TASK1\",\"priority\":\"9\"}}", false},
    {BP, "{\"type\":\"TASK1\",\"priority\":9}", false},
    {BP, "\"TASK1\"", false},
    /* operators in body scope */
    {"{\"k\":[\"v\"]}", "{\"k\":\"v\"}", true},
    {"{\"k\":[\"v\"]}", "{\"k\":\"V\"}", false},
    {"{\"k\":[{\"prefix\":\"ab\"}]}", "{\"k\":\"abc\"}", true},
    {"{\"k\":[{\"prefix\":\"ab\"}]}", "{\"k\":\"bc\"}", false},
    {"{\"k\":[{\"suffix\":\"bc\"}]}", "{\"k\":\"abc\"}", true},
    {"{\"k\":[{\"suffix\":\"bc\"}]}", "{\"k\":\"abd\"}", false},
    {"{\"k\":[{\"equals-ignore-case\":\"ABC\"}]}", "{\"k\":\"abc\"}", true},
    {"{\"k\":[{\"equals-ignore-case\":\"ABC\"}]}", "{\"k\":\"abd\"}", false},
    {"{\"k\":[{\"anything-but\":[\"rugby\",\"tennis\"]}]}", "{\"k\":\"golf\"}", true},
    {"{\"k\":[{\"anything-but\":[\"rugby\",\"tennis\"]}]}", "{\"k\":\"rugby\"}", false},
    {"{\"k\":[{\"anything-but\":[\"rugby\",\"tennis\"]}]}", "{\"k\":[\"rugby\",\"baseball\"]}",
     true},
    {"{\"k\":[{\"anything-but\":[\"rugby\"]}]}", "{\"k\":null}", false},
    {"{\"k\":[{\"anything-but\":[\"rugby\"]}]}", "{}", false},
    {"{\"k\":[{\"anything-but\":{\"prefix\":\"a\"}}]}", "{\"k\":\"ba\"}", true},
    {"{\"k\":[{\"anything-but\":{\"prefix\":\"a\"}}]}", "{\"k\":\"ab\"}", false},
    {"{\"k\":[{\"numeric\":[\">\",0,\"<=\",150]}]}", "{\"k\":150}", true},
    {"{\"k\":[{\"numeric\":[\">\",0,\"<=\",150]}]}", "{\"k\":0}", false},
    {"{\"k\":[300]}", "{\"k\":300.0}", true}, /* SNS compares numbers numerically */
    {"{\"k\":[{\"anything-but\":[300]}]}", "{\"k\":300.0}", false}, /* in anything-but too */
    {"{\"k\":[{\"anything-but\":[300]}]}", "{\"k\":301}", true},
    {"{\"k\":[300]}", "{\"k\":301}", false},
    {"{\"ip\":[{\"cidr\":\"192.168.0.0/16\"}]}", "{\"ip\":\"192.168.4.2\"}", true},
    {"{\"ip\":[{\"cidr\":\"192.168.0.0/16\"}]}", "{\"ip\":\"192.169.4.2\"}", false},
    {"{\"k\":[\"\"]}", "{\"k\":\"\"}", true},
    {"{\"k\":[\"\"]}", "{\"k\":\" \"}", false},
    {"{\"k\":[null]}", "{\"k\":null}", true},
    {"{\"k\":[null]}", "{\"k\":0}", false},
    {"{\"k\":[true]}", "{\"k\":true}", true},
    {"{\"k\":[true]}", "{\"k\":false}", false},
    /* exists in body scope: null and "" do not count as present */
    {"{\"k\":[{\"exists\":true}]}", "{\"k\":\"x\"}", true},
    {"{\"k\":[{\"exists\":true}]}", "{\"k\":null}", false},
    {"{\"k\":[{\"exists\":true}]}", "{\"k\":\"\"}", false},
    {"{\"k\":[{\"exists\":false}]}", "{\"j\":1}", true},
    {"{\"k\":[{\"exists\":false}]}", "{\"k\":null}", true},
    {"{\"k\":[{\"exists\":false}]}", "{\"k\":1}", false},
    /* nesting and arrays of objects */
    {"{\"a\":{\"b\":{\"c\":[\"x\"]}}}", "{\"a\":{\"b\":{\"c\":\"x\"}}}", true},
    {"{\"a\":{\"b\":{\"c\":[\"x\"]}}}", "{\"a\":{\"b\":{\"c\":\"y\"}}}", false},
    {"{\"a\":{\"c\":[\"x\"]}}", "{\"a\":[{\"c\":\"y\"},{\"c\":\"x\"}]}", true},
    /* "exists": false there: no element may hold the key (null does not count in SNS) */
    {"{\"a\":{\"b\":[{\"exists\":false}]}}", "{\"a\":[{\"b\":1},{\"c\":2}]}", false},
    {"{\"a\":{\"b\":[{\"exists\":false}]}}", "{\"a\":[{\"b\":null},{\"c\":2}]}", true},
    /* $or across keys in the body */
    {"{\"source\":[\"a\"],\"$or\":[{\"m\":[\"x\"]},{\"n\":[\"y\"]}]}",
     "{\"source\":\"a\",\"n\":\"y\"}", true},
    {"{\"source\":[\"a\"],\"$or\":[{\"m\":[\"x\"]},{\"n\":[\"y\"]}]}",
     "{\"source\":\"b\",\"n\":\"y\"}", false},
    {"{\"source\":[\"a\"],\"$or\":[{\"m\":[\"x\"]},{\"n\":[\"y\"]}]}",
     "{\"source\":\"a\",\"m\":\"y\"}", false},
    /* a body that is not an object never matches a policy */
    {"{\"k\":[{\"exists\":false}]}", "[1]", false},
    {"{}", "[1]", true},
};

static void test_policy_body(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < N_ELEMS(body_cases); i++) {
        const body_case *c = &body_cases[i];
        char err[256];
        filter_policy *p = filter_policy_compile(c->policy, FILTER_SCOPE_BODY, err, sizeof err);
        json_t *body = json_loads(c->body, JSON_DECODE_ANY, NULL);
        if (!p || !body || filter_policy_match_body(p, body) != c->want) {
            print_error("body row %zu: %s vs %s: want %s %s\n", i, c->policy, c->body,
                        c->want ? "match" : "no match", p ? "" : err);
            failures++;
        }
        filter_policy_free(p);
        json_decref(body);
    }
    assert_int_equal(failures, 0);
}

static void test_policy_api_edges(void **state)
{
    (void)state;
    char err[256];
    filter_policy *attrs = filter_policy_compile(SP1, FILTER_SCOPE_ATTRIBUTES, err, sizeof err);
    filter_policy *body = filter_policy_compile(SP1, FILTER_SCOPE_BODY, err, sizeof err);
    assert_non_null(attrs);
    assert_non_null(body);
    assert_int_equal(filter_policy_scope(attrs), FILTER_SCOPE_ATTRIBUTES);
    assert_int_equal(filter_policy_scope(body), FILTER_SCOPE_BODY);
    json_t *msg = json_loads("{\"task_type\":\"TASK1\"}", 0, NULL);
    assert_true(filter_policy_match_body(body, msg));
    assert_false(filter_policy_match_body(attrs, msg)); /* wrong scope */
    assert_false(filter_policy_match_attrs(body, M1, N_ELEMS(M1)));
    assert_false(filter_policy_match_body(body, NULL));
    json_decref(msg);
    filter_policy_free(attrs);
    filter_policy_free(body);

    /* no policy: everything is delivered */
    assert_true(filter_policy_match_attrs(NULL, NULL, 0));
    assert_true(filter_policy_match_body(NULL, NULL));
    filter_policy_free(NULL);

    json_t *obj = json_loads(SP7, 0, NULL);
    filter_policy *p = filter_policy_compile_json(obj, FILTER_SCOPE_ATTRIBUTES, err, sizeof err);
    json_decref(obj);
    assert_non_null(p);
    assert_true(filter_policy_match_attrs(p, M1, N_ELEMS(M1)));
    filter_policy_free(p);
}

/* ---- compile errors ------------------------------------------------------------------------ */

typedef enum lang { PATTERN, ATTRS, BODY } lang;

typedef struct error_case {
    lang lang;
    const char *text;
    const char *want; /* a fragment the message must contain */
} error_case;

static const error_case error_cases[] = {
    /* invalid JSON, with jansson's position */
    {PATTERN, "{\"a\":[\"x\"]", "invalid JSON at line 1, column"},
    {PATTERN, "not json", "invalid JSON at line 1, column 3: invalid token"},
    {ATTRS, "{\"a\":\n[\"x\",]}", "invalid JSON at line 2"},
    /* not an object */
    {PATTERN, "[\"a\"]", "must be a JSON object, not array"},
    {PATTERN, "\"x\"", "must be a JSON object, not string"},
    {BODY, "5", "must be a JSON object, not number"},
    {PATTERN, "{}", "empty object"},
    {PATTERN, "{\"a\":{}}", "at a: empty object"},
    {BODY, "{\"a\":{}}", "at a: empty object"},
    /* a leaf that is not an array */
    {PATTERN, "{\"eventName\":\"INSERT\"}", "at eventName: the value must be an array of rules"},
    {PATTERN, "{\"a\":{\"b\":5}}",
     "at a.b: the value must be an array of rules (e.g. [\"x\"]) "
     "or a nested object, not number"},
    {ATTRS, "{\"a\":true}", "not boolean"},
    /* empty rule array */
    {PATTERN, "{\"a\":[]}", "at a: empty rule array"},
    {ATTRS, "{\"a\":[]}", "empty rule array"},
    /* rules of the wrong shape */
    {PATTERN, "{\"a\":[[\"x\"]]}", "not an array"},
    {PATTERN, "{\"a\":[{}]}", "exactly one key, not 0"},
    {PATTERN, "{\"a\":[{\"prefix\":\"x\",\"suffix\":\"y\"}]}", "exactly one key, not 2"},
    /* unknown operators */
    {PATTERN, "{\"a\":[{\"regex\":\"x\"}]}", "unknown operator \"regex\""},
    {PATTERN, "{\"a\":[{\"wildcard\":\"x*\"}]}", "unknown operator \"wildcard\""},
    {ATTRS, "{\"a\":[{\"Prefix\":\"x\"}]}", "unknown operator \"Prefix\""},
    /* wrong operand types */
    {PATTERN, "{\"a\":[{\"prefix\":5}]}", "\"prefix\" needs a string, not number"},
    {ATTRS, "{\"a\":[{\"prefix\":5}]}", "\"prefix\" needs a string, not number"},
    {PATTERN, "{\"a\":[{\"suffix\":[\"x\"]}]}", "\"suffix\" needs a string, not array"},
    {BODY, "{\"a\":[{\"equals-ignore-case\":null}]}", "\"equals-ignore-case\" needs a string"},
    {PATTERN, "{\"a\":[{\"exists\":\"yes\"}]}", "\"exists\" needs true or false, not string"},
    {PATTERN, "{\"a\":[{\"cidr\":5}]}", "\"cidr\" needs a string"},
    {PATTERN, "{\"a\":[{\"numeric\":5}]}", "\"numeric\" needs an array"},
    /* anything-but */
    {PATTERN, "{\"a\":[{\"anything-but\":[]}]}", "\"anything-but\": the list is empty"},
    {PATTERN, "{\"a\":[{\"anything-but\":[\"x\",1]}]}", "mixes strings and numbers"},
    {PATTERN, "{\"a\":[{\"anything-but\":[true]}]}", "strings or numbers, not boolean"},
    {PATTERN, "{\"a\":[{\"anything-but\":null}]}", "not null"},
    {PATTERN, "{\"a\":[{\"anything-but\":{\"prefix\":5}}]}", "\"prefix\" needs a string"},
    {PATTERN, "{\"a\":[{\"anything-but\":{\"prefix\":\"\"}}]}", "non-empty string"},
    {PATTERN, "{\"a\":[{\"anything-but\":{\"wildcard\":\"x\"}}]}", "unknown operator \"wildcard\""},
    {PATTERN, "{\"a\":[{\"anything-but\":{\"prefix\":\"x\",\"suffix\":\"y\"}}]}",
     "exactly one key"},
    {PATTERN, "{\"a\":[{\"anything-but\":{\"equals-ignore-case\":[1]}}]}",
     "must be strings, not number"},
    /* numeric operator sequences */
    {PATTERN, "{\"a\":[{\"numeric\":[]}]}", "at least one comparison"},
    {PATTERN, "{\"a\":[{\"numeric\":[\">\",5,\">\",3]}]}", "bad operator sequence"},
    {ATTRS, "{\"a\":[{\"numeric\":[\">\",5,\">\",3]}]}", "bad operator sequence"},
    {PATTERN, "{\"a\":[{\"numeric\":[\"<\",5,\">\",3]}]}", "bad operator sequence"},
    {PATTERN, "{\"a\":[{\"numeric\":[\"=\",5,\"<\",6]}]}", "bad operator sequence"},
    {PATTERN, "{\"a\":[{\"numeric\":[\">\",20,\"<\",10]}]}",
     "lower bound 20 must be below upper bound 10"},
    {BODY, "{\"a\":[{\"numeric\":[\">=\",5,\"<=\",5]}]}", "lower bound 5 must be below"},
    {PATTERN, "{\"a\":[{\"numeric\":[\"==\",5]}]}", "unknown operator \"==\""},
    {PATTERN, "{\"a\":[{\"numeric\":[\">\",\"5\"]}]}", "\">\" needs a number, not string"},
    {PATTERN, "{\"a\":[{\"numeric\":[\">\"]}]}", "needs a number after it"},
    {PATTERN, "{\"a\":[{\"numeric\":[5,\">\"]}]}", "must be an operator"},
    {PATTERN, "{\"a\":[{\"numeric\":[\">\",1,\"<\",5,\"<\",6]}]}", "too many elements"},
    {PATTERN, "{\"a\":[{\"numeric\":[\">\",1,\"<\"]}]}", "needs a number after it"},
    /* cidr */
    {PATTERN, "{\"a\":[{\"cidr\":\"10.0.0.0\"}]}", "exactly one '/'"},
    {PATTERN, "{\"a\":[{\"cidr\":\"10.0.0.0/33\"}]}", "mask /33 is too long"},
    {PATTERN, "{\"a\":[{\"cidr\":\"10.0.0/8\"}]}", "not an IPv4 or IPv6 address"},
    {PATTERN, "{\"a\":[{\"cidr\":\"10.0.0.0/x\"}]}", "mask bits must be an integer"},
    {ATTRS, "{\"a\":[{\"cidr\":\"10.0.0.0/\"}]}", "mask bits missing"},
    /* the fault's path is named */
    {PATTERN, "{\"dynamodb\":{\"NewImage\":{\"status\":{\"S\":[{\"prefix\":1}]}}}}",
     "at dynamodb.NewImage.status.S: \"prefix\" needs a string"},
    {PATTERN, "{\"$or\":[{\"a\":[\"x\"]},{\"b\":[]}]}", "at $or[1].b: empty rule array"},
    /* "$or" that is not recognised is an ordinary key, compiled as such */
    {ATTRS, "{\"$or\":[{\"a\":[\"x\"]}]}", "unknown operator \"a\""},
    {ATTRS, "{\"$or\":[{\"numeric\":[\"x\"]},{\"b\":[\"y\"]}]}",
     "at $or: \"numeric\": unknown operator \"x\""},
    /* SNS: attribute policies are flat */
    {ATTRS, "{\"a\":{\"b\":[\"x\"]}}", "at a: nested objects are not allowed"},
    {ATTRS, "{\"$or\":[{\"a\":{\"b\":[\"x\"]}},{\"c\":[\"y\"]}]}", "must be flat"},
    /* SNS: 5 keys, 150 combinations */
    {ATTRS, "{\"a\":[1],\"b\":[1],\"c\":[1],\"d\":[1],\"e\":[1],\"f\":[1]}", "too many keys: 6"},
    /* a body policy counts its leaf keys, nested ones too */
    {BODY, "{\"a\":[1],\"b\":[1],\"c\":[1],\"d\":[1],\"e\":[1],\"f\":[1]}",
     "too many keys: 6 leaf keys"},
    {BODY, "{\"a\":{\"b\":[1],\"c\":[1],\"d\":[1]},\"e\":{\"f\":[1],\"g\":[1],\"h\":[1]}}",
     "too many keys: 6 leaf keys"},
    {ATTRS, "{\"a\":[1],\"$or\":[{\"b\":[1]},{\"c\":[1],\"d\":[1],\"e\":[1],\"f\":[1],\"g\":[1]}]}",
     "too many keys: 6 in one alternative"},
    {ATTRS, "{\"a\":[1,2,3,4,5,6,7,8,9,10,11],\"b\":[1,2,3,4,5,6,7,8,9,10,11,12,13,14]}",
     "too complex: 154 value combinations"},
    {BODY, "{\"a\":{\"b\":{\"c\":[1,2,3,4,5,6,7,8,9]}},\"d\":{\"e\":[1,2,3]}}",
     "too complex: 162 value combinations"},
    /* SNS: numeric limits */
    {ATTRS, "{\"a\":[{\"numeric\":[\">\",1000000001]}]}", "out of range"},
    {BODY, "{\"a\":[{\"numeric\":[\">\",-1e10,\"<\",0]}]}", "out of range"},
    {ATTRS, "{\"a\":[2000000000]}", "out of range"},
    {ATTRS, "{\"a\":[{\"anything-but\":[-2e9]}]}", "out of range"},
    {ATTRS, "{\"a\":[{\"numeric\":[\"=\",0.123456]}]}", "more than 5 digits after the decimal"},
};

static filter_pattern *compile_any(lang l, const char *text, char *err, size_t errlen,
                                   filter_policy **policy)
{
    *policy = NULL;
    if (l == PATTERN)
        return filter_pattern_compile(text, err, errlen);
    *policy = filter_policy_compile(text, l == BODY ? FILTER_SCOPE_BODY : FILTER_SCOPE_ATTRIBUTES,
                                    err, errlen);
    return NULL;
}

static void test_compile_errors(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < N_ELEMS(error_cases); i++) {
        const error_case *c = &error_cases[i];
        char err[512] = "";
        filter_policy *pol;
        filter_pattern *pat = compile_any(c->lang, c->text, err, sizeof err, &pol);
        if (pat || pol || !strstr(err, c->want)) {
            print_error("error row %zu: %s: want an error mentioning '%s', got %s '%s'\n", i,
                        c->text, c->want, (pat || pol) ? "success" : "error", err);
            failures++;
        }
        filter_pattern_free(pat);
        filter_policy_free(pol);
    }
    assert_int_equal(failures, 0);
}

/* A refusal naming a long key, whose path or message is cut, is cut where a character ends. */
static void test_a_cut_refusal_is_whole_characters(void **state)
{
    (void)state;
    char text[1024] = "{\"a";
    for (int i = 0; i < 300; i++)
        strcat(text, "\xc3\xa9"); /* é */
    strcat(text, "\":[{\"no-such-operator\":1}]}");
    for (size_t room = 40; room <= 512; room += 1) {
        char err[512];
        filter_pattern *pat = filter_pattern_compile(text, err, room);
        assert_null(pat);
        if (!utf8_valid(err, strlen(err)))
            fail_msg("with %zu bytes of room the refusal cuts a character: %s", room, err);
    }
}

/* Policies at the limits compile. */
static void test_sns_limits_accept(void **state)
{
    (void)state;
    static const char *const ok_attrs[] = {
        "{\"a\":[1],\"b\":[1],\"c\":[1],\"d\":[1],\"e\":[1]}",
        /* 5 keys per $or alternative: a + d,e,f,g */
        "{\"a\":[1],\"$or\":[{\"b\":[1],\"c\":[1]},{\"d\":[1],\"e\":[1],\"f\":[1],\"g\":[1]}]}",
        "{\"a\":[1,2,3,4,5,6,7,8,9,10],\"b\":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15]}", /* 150 */
        "{\"a\":[{\"numeric\":[\">=\",-1000000000,\"<=\",1000000000]}]}",
        "{\"a\":[{\"numeric\":[\"=\",0.12345]}]}",
        "{\"a\":[{\"numeric\":[\"=\",301.5]}]}",
    };
    char err[256];
    for (size_t i = 0; i < N_ELEMS(ok_attrs); i++) {
        filter_policy *p =
            filter_policy_compile(ok_attrs[i], FILTER_SCOPE_ATTRIBUTES, err, sizeof err);
        if (!p)
            print_error("%s: %s\n", ok_attrs[i], err);
        assert_non_null(p);
        filter_policy_free(p);
    }
    /* the reference's body example: 3×4×2×3 = 72 combinations; Lambda has no such limits
     * (only its pattern's length, test_pattern_length) */
    filter_policy *p =
        filter_policy_compile("{\"a\":{\"b\":{\"c\":[1,2,3,4]}},\"d\":{\"e\":[1,2,3]}}",
                              FILTER_SCOPE_BODY, err, sizeof err);
    assert_non_null(p);
    filter_policy_free(p);
    filter_pattern *pat = filter_pattern_compile(
        "{\"a\":[{\"numeric\":[\">\",-1e12,\"<\",0.1234567]}],\"b\":[1,2,3],\"c\":[1],\"d\":[1],"
        "\"e\":[1],\"f\":[1]}",
        err, sizeof err);
    assert_non_null(pat);
    filter_pattern_free(pat);

    /* five leaf keys in a body policy, nested */
    p = filter_policy_compile("{\"a\":{\"b\":[1],\"c\":[1]},\"d\":{\"e\":[1],\"f\":[1]},\"g\":[1]}",
                              FILTER_SCOPE_BODY, err, sizeof err);
    assert_non_null(p);
    filter_policy_free(p);

    /* the 256 KB limit, for a policy given as JSON (the configuration's) as for text */
    char *long_value = malloc(262144);
    assert_non_null(long_value);
    memset(long_value, 'x', 262143);
    long_value[262143] = '\0';
    json_t *policy = json_pack("{s:[s]}", "a", long_value);
    assert_non_null(policy);
    assert_null(filter_policy_compile_json(policy, FILTER_SCOPE_ATTRIBUTES, err, sizeof err));
    assert_non_null(strstr(err, "policy too large"));
    json_decref(policy);
    free(long_value);

    /* the 256 KB text limit */
    size_t big = 262144 + 16;
    char *text = malloc(big + 1);
    assert_non_null(text);
    memset(text, ' ', big);
    memcpy(text, "{\"a\":[\"x\"]}", 11);
    text[big] = '\0';
    assert_null(filter_policy_compile(text, FILTER_SCOPE_ATTRIBUTES, err, sizeof err));
    assert_non_null(strstr(err, "policy too large"));
    free(text);
}

/* A pattern of exactly n characters: {"a":["xxx..."]} with what filling the string. */
static char *pattern_of(size_t n, const char *what)
{
    size_t wlen = strlen(what), units = strstr(what, "\xf0") ? 2 : 1; /* per copy of what */
    size_t fill = (n - strlen("{\"a\":[\"\"]}")) / units;
    char *s = malloc(fill * wlen + 16);
    assert_non_null(s);
    char *p = s + sprintf(s, "{\"a\":[\"");
    for (size_t i = 0; i < fill; i++, p += wlen)
        memcpy(p, what, wlen);
    strcpy(p, "\"]}");
    return s;
}

/* Lambda's Pattern holds at most 4096 characters, counted as AWS counts them (UTF-16). */
static void test_pattern_length(void **state)
{
    (void)state;
    char err[256];
    char *at = pattern_of(4096, "x"), *over = pattern_of(4097, "x");
    filter_pattern *p = filter_pattern_compile(at, err, sizeof err);
    assert_non_null(p);
    filter_pattern_free(p);
    assert_null(filter_pattern_compile(over, err, sizeof err));
    assert_string_equal(err, "pattern too large: 4097 characters (at most 4096)");
    /* as JSON (the configuration's): its compact text */
    json_t *j = json_loads(over, 0, NULL);
    assert_non_null(j);
    assert_null(filter_pattern_compile_json(j, err, sizeof err));
    assert_string_equal(err, "pattern too large: 4097 characters (at most 4096)");
    json_decref(j);
    const char *const set[] = {"{\"b\":[1]}", over};
    assert_null(filter_set_compile(set, 2, err, sizeof err));
    assert_non_null(strstr(err, "filter 1: pattern too large"));
    free(at);
    free(over);

    /* "é" is two bytes and one character: 4096 characters in 8,000-odd bytes */
    at = pattern_of(4096, "\xc3\xa9");
    assert_true(strlen(at) > 8000);
    p = filter_pattern_compile(at, err, sizeof err);
    assert_non_null(p);
    filter_pattern_free(p);
    free(at);
    /* past U+FFFF a character is two: 2,045 of them and the pattern's 10 make 4100 */
    over = pattern_of(4100, "\xf0\x9f\x98\x80");
    assert_null(filter_pattern_compile(over, err, sizeof err));
    assert_string_equal(err, "pattern too large: 4100 characters (at most 4096)");
    free(over);
}

/* A pattern given as JSON (the configuration's) is measured with each number as short as it
 * reads back, as it was written: json_dumps' 0.10000000000000001 made 0.1 six times longer. */
static void test_pattern_length_counts_numbers_as_written(void **state)
{
    (void)state;
    char err[256];
    sbuf text = {0};
    sbuf_puts(&text, "{\"a\":[{\"anything-but\":[");
    for (int i = 0; i < 900; i++)
        sbuf_puts(&text, i ? ",0.1" : "0.1");
    sbuf_puts(&text, "]}]}");
    assert_true(text.len < 4096);
    json_t *j = json_loads(text.data, 0, NULL);
    assert_non_null(j);
    filter_pattern *p = filter_pattern_compile_json(j, err, sizeof err);
    if (!p)
        fail_msg("a %zu-character pattern refused: %s", text.len, err);
    filter_pattern_free(p);
    json_decref(j);
    sbuf_free(&text);
}

/* "$or" nested in "$or" is an operator at every level, or an ordinary key at every level
 * above an operator word used as a field name. */
static void test_nested_or(void **state)
{
    (void)state;
    char err[256];
    /* a deep chain: each level's second alternative holds the next */
    sbuf deep = {0};
    const int levels = 100; /* 2,400 characters: within Lambda's 4096 */
    for (int i = 0; i < levels; i++)
        sbuf_printf(&deep, "{\"$or\":[{\"a%d\":[\"x\"]},", i);
    sbuf_puts(&deep, "{\"last\":[\"y\"]}");
    for (int i = 0; i < levels; i++)
        sbuf_puts(&deep, "]}");
    assert_false(sbuf_failed(&deep));
    const char *const one[] = {deep.data};
    filter_set *p = filter_set_compile(one, 1, err, sizeof err);
    assert_non_null(p);
    assert_true(set_matches(p, "{\"last\":\"y\"}"));
    assert_true(set_matches(p, "{\"a99\":\"x\"}"));
    assert_false(set_matches(p, "{\"last\":\"x\"}"));
    filter_set_free(p);
    sbuf_free(&deep);

    /* an operator word as a field name three levels down: "$or" is a plain key at the top */
    const char *plain = "{\"$or\":[{\"a\":[\"x\"]},{\"$or\":[{\"b\":[\"y\"]},"
                        "{\"$or\":[{\"c\":[\"z\"]},{\"prefix\":\"w\"}]}]}]}";
    filter_policy *pol = filter_policy_compile(plain, FILTER_SCOPE_ATTRIBUTES, err, sizeof err);
    assert_null(pol);
    assert_non_null(strstr(err, "unknown operator \"a\""));
}

/*
 * "exists": false under an array of objects asks the whole array once per leaf: with the five
 * keys a body policy may have, all such leaves, a 20,000-element array (some 80 KB of task data)
 * whose last element holds the fifth key is answered at once, where the fifth leaf's question
 * was asked again for every element (minutes). A pattern with 70 such leaves is answered at
 * once, and rightly, too; a policy with more than the answers have room for is refused on SNS's
 * key limit.
 */
static void test_exists_false_over_a_long_array_asks_it_once(void **state)
{
    (void)state;
    char err[256];
    filter_policy *p = filter_policy_compile(
        "{\"a\":{\"p\":[{\"exists\":false}],\"q\":[{\"exists\":false}],\"r\":[{\"exists\":false}],"
        "\"s\":[{\"exists\":false}],\"t\":[{\"exists\":false}]}}",
        FILTER_SCOPE_BODY, err, sizeof err);
    if (!p)
        fail_msg("%s", err);
    const size_t n = 20000;
    json_t *arr = json_array();
    assert_non_null(arr);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(json_array_append_new(arr, json_pack("{s:i}", i == n - 1 ? "t" : "c", 1)),
                         0);
    json_t *body = json_pack("{s:o}", "a", arr);
    assert_non_null(body);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_false(filter_policy_match_body(p, body)); /* t is in the array */
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    if (took > 10)
        fail_msg("matching a %zu-element array took %.1f s", n, took);
    json_decref(body);
    filter_policy_free(p);

    /* a Lambda pattern may have many more such leaves: 70 */
    sbuf text = {0};
    sbuf_puts(&text, "{\"a\":{");
    for (int i = 0; i < 70; i++)
        sbuf_printf(&text, "%s\"k%d\":[{\"exists\":false}]", i ? "," : "", i);
    sbuf_puts(&text, "}}");
    assert_false(sbuf_failed(&text));
    filter_pattern *pat = filter_pattern_compile(text.data, err, sizeof err);
    if (!pat)
        fail_msg("%s", err);
    const char *const last[] = {"k69", "k0", "c"};
    for (size_t l = 0; l < N_ELEMS(last); l++) {
        json_t *items = json_array();
        assert_non_null(items);
        for (size_t i = 0; i < 5000; i++)
            assert_int_equal(
                json_array_append_new(items, json_pack("{s:i}", i == 4999 ? last[l] : "c", 1)), 0);
        json_t *rec = json_pack("{s:o}", "a", items);
        assert_non_null(rec);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        bool m = filter_pattern_match(pat, rec);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        if (m != (strcmp(last[l], "c") == 0) || took > 10)
            fail_msg("70 leaves, %s last: %s in %.1f s", last[l], m ? "match" : "no match", took);
        json_decref(rec);
    }
    filter_pattern_free(pat);

    /* a policy with more such leaves than the answers have room for is refused on SNS's limit */
    sbuf_truncate(&text, 0);
    sbuf_putc(&text, '{');
    for (int i = 0; i < 1100; i++)
        sbuf_printf(&text, "%s\"k%d\":[{\"exists\":false}]", i ? "," : "", i);
    sbuf_putc(&text, '}');
    assert_false(sbuf_failed(&text));
    assert_null(filter_policy_compile(text.data, FILTER_SCOPE_ATTRIBUTES, err, sizeof err));
    assert_non_null(strstr(err, "too many keys: 1100"));
    sbuf_free(&text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pattern_dynamodb_examples),
        cmocka_unit_test(test_pattern_operators),
        cmocka_unit_test(test_pattern_sqs_examples),
        cmocka_unit_test(test_set_or_and_empty),
        cmocka_unit_test(test_set_may_match_field),
        cmocka_unit_test(test_pattern_api_edges),
        cmocka_unit_test(test_pattern_length),
        cmocka_unit_test(test_pattern_length_counts_numbers_as_written),
        cmocka_unit_test(test_nested_or),
        cmocka_unit_test(test_policy_attributes),
        cmocka_unit_test(test_policy_body),
        cmocka_unit_test(test_policy_api_edges),
        cmocka_unit_test(test_policy_may_match_attr),
        cmocka_unit_test(test_compile_errors),
        cmocka_unit_test(test_a_cut_refusal_is_whole_characters),
        cmocka_unit_test(test_sns_limits_accept),
        cmocka_unit_test(test_exists_false_over_a_long_array_asks_it_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
