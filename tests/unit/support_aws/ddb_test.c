/*
 * ddb_test — DynamoDB Local for store tests; see ddb_test.h.
 */
#include "ddb_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static aws_client *client; /* one for the whole run */
static json_t *table_def;  /* deploy/table.json, ready for CreateTable but for TableName */

/* Where deploy/table.json is; malloc'ed. */
static char *table_json_path(void)
{
    const char *env = getenv("TASKD_TABLE_JSON");
    if (env && *env)
        return strdup(env);
    return strdup(TASKD_SOURCE_DIR "/deploy/table.json");
}

bool ddb_test_setup(void)
{
    const char *endpoint = getenv("DYNAMODB_ENDPOINT");
    if (!endpoint || !*endpoint)
        return false;
    /* never real credentials, never a real account */
    setenv("AWS_ENDPOINT_URL_DYNAMODB", endpoint, 1);
    setenv("AWS_ACCESS_KEY_ID", "AKIDTASKDTEST", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "taskd-test-secret", 1);
    setenv("AWS_SESSION_TOKEN", "taskd-test-token", 1);
    setenv("AWS_REGION", "us-east-1", 1);
    char err[256];
    if (!(client = aws_client_new(AWS_DYNAMODB, err, sizeof err))) {
        fprintf(stderr, "DynamoDB client: %s\n", err);
        return false;
    }
    char *path = table_json_path();
    json_error_t jerr;
    table_def = path ? json_load_file(path, 0, &jerr) : NULL;
    if (!table_def)
        fprintf(stderr, "cannot read the table definition %s: %s\n", path ? path : "?",
                path ? jerr.text : "out of memory");
    free(path);
    if (!table_def)
        return false;
    json_object_del(table_def, "TimeToLiveSpecification"); /* CloudFormation's, not CreateTable's */
    return true;
}

aws_client *ddb_test_client(void)
{
    return client;
}

json_t *ddb_test_call(const char *op, json_t *req, char *err, size_t errlen)
{
    char *body = json_dumps(req, JSON_COMPACT);
    char target[64];
    snprintf(target, sizeof target, "DynamoDB_20120810.%s", op);
    aws_response r;
    aws_rc rc = body ? aws_json_call(client, target, body, strlen(body), 0, &r) : AWS_ERR_NOMEM;
    free(body);
    if (!body)
        memset(&r, 0, sizeof r);
    json_t *out = NULL;
    if (rc == AWS_OK)
        out = json_loadb(r.body ? r.body : "{}", r.body ? r.body_len : 2, 0, NULL);
    else if (err)
        snprintf(err, errlen, "%s: %s %s", aws_rc_name(rc), r.error_type,
                 r.error_message ? r.error_message : "");
    else
        fprintf(stderr, "%s: %s %s\n", op, aws_rc_name(rc), r.error_type);
    aws_response_free(&r);
    return out;
}

bool ddb_test_create_table(const char *name)
{
    json_t *req = json_deep_copy(table_def);
    json_object_set_new(req, "TableName", json_string(name));
    char err[512];
    json_t *answer = ddb_test_call("CreateTable", req, err, sizeof err);
    json_decref(req);
    if (!answer) {
        fprintf(stderr, "CreateTable %s: %s\n", name, err);
        return false;
    }
    json_decref(answer);
    /* DynamoDB Local is ACTIVE at once; the service takes a while */
    for (int i = 0; i < 600; i++) {
        json_t *d = json_pack("{ss}", "TableName", name);
        answer = ddb_test_call("DescribeTable", d, NULL, 0);
        json_decref(d);
        json_t *t = json_object_get(answer, "Table");
        const char *status = json_string_value(json_object_get(t, "TableStatus"));
        bool active = status && strcmp(status, "ACTIVE") == 0;
        size_t k;
        json_t *gsi;
        json_array_foreach(json_object_get(t, "GlobalSecondaryIndexes"), k, gsi)
        {
            const char *st = json_string_value(json_object_get(gsi, "IndexStatus"));
            active = active && (!st || strcmp(st, "ACTIVE") == 0);
        }
        json_decref(answer);
        if (active)
            return true;
        usleep(100 * 1000);
    }
    fprintf(stderr, "table %s did not become ACTIVE\n", name);
    return false;
}

void ddb_test_delete_table(const char *name)
{
    json_t *req = json_pack("{ss}", "TableName", name);
    json_decref(ddb_test_call("DeleteTable", req, NULL, 0));
    json_decref(req);
}

void ddb_test_teardown(void)
{
    json_decref(table_def);
    table_def = NULL;
    aws_client_free(client);
    client = NULL;
}
