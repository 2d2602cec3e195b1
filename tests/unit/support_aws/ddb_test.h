/*
 * ddb_test — DynamoDB Local for the unit tests that run a store over it.
 *
 * When DYNAMODB_ENDPOINT names an endpoint (CTest's with_standin.py starts
 * one), ddb_test_setup() points the AWS environment at it — with test
 * credentials, never real ones — makes one client for the run and reads the
 * table definition the deployment uses (deploy/table.json: TASKD_TABLE_JSON,
 * else the source tree's). Each test then creates a table of its own and
 * deletes it after.
 */
#ifndef TASKD_DDB_TEST_H
#define TASKD_DDB_TEST_H

#include "aws/aws_http.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Set up for the run; false (saying why on stderr, unless there is no endpoint) when not. */
bool ddb_test_setup(void);
/* The run's client (NULL before a successful setup). */
aws_client *ddb_test_client(void);
/*
 * Call DynamoDB operation op with req (borrowed); the answer's JSON (new
 * reference) or NULL, with the error in err (or on stderr when err is NULL).
 */
json_t *ddb_test_call(const char *op, json_t *req, char *err, size_t errlen);
/* Create table name from the definition and wait until it and its indexes are ACTIVE. */
bool ddb_test_create_table(const char *name);
/* Delete table name (errors ignored). */
void ddb_test_delete_table(const char *name);
/* Release what setup made. */
void ddb_test_teardown(void);

#endif
