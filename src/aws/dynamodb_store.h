/*
 * dynamodb_store — the task store port over one DynamoDB table (the table
 * of deploy/table.json: key id, the list indexes all_by_id, status_by_id,
 * type_by_id and type_status_by_id, each sorted by id, and claims_by_expiry,
 * the client claims with a lease, sorted by its end).
 *
 * Every operation is one or a few synchronous calls through aws_http, made
 * on the caller's thread: store_submit() runs the write and calls done()
 * before it returns, which the port allows. Nothing is batched: DynamoDB
 * makes each single write durable on its own, and each write's stream record
 * is the change record the publisher reads.
 *
 * Items: a task is id, task_type, status, status_msg, created_time,
 * updated_time (once changed), task_ttl (the client's ttl), data (a map),
 * result, trace, tracestate (when the request had one), history (its status
 * changes, with history_dropped once trimmed), write_token (the last update's
 * mark), claimed_time (its last claim), claim_key, claim_expires and
 * claim_lease (while a client's claim holds it), and the index keys list_all
 * ("tasks") and type_status ("<task_type>#<status>"). The table's
 * TTL attribute, ttl, is written only when a task with a task_ttl finishes:
 * max(task_ttl, finish + grace), so an unfinished task never expires and a
 * finished one stays readable for the grace. Other items share the table
 * under ids that are not UUIDs and never read as tasks: "idem#<key>", or
 * "idem~<hex>" for a key that is not UTF-8 (Idempotency-Key, expired by ttl
 * after 24 h), and "meta#secret" (the page-token key).
 *
 * Opening makes no network call (a Lambda's init must not wait on the
 * network); a missing table shows up as STORE_ERROR, logged, on first use.
 */
#ifndef TASKD_DYNAMODB_STORE_H
#define TASKD_DYNAMODB_STORE_H

#include "aws/aws_http.h"
#include "store/store.h"

#include <stddef.h>
#include <stdint.h>

typedef struct dynamodb_store_options {
    const char *table;              /* table name (copied) */
    aws_client *client;             /* borrowed, an AWS_DYNAMODB client; outlives the store */
    const store_listener *listener; /* told of every successful write (copied); may be NULL */
    int64_t retention_grace;        /* seconds a finished task stays readable (configuration) */
} dynamodb_store_options;

/*
 * The store over the table, system name "dynamodb"; the span of each write
 * names the DynamoDB call that decided it (store_trace_write()). No network
 * call; NULL with a one-line reason in err for bad options or out of memory.
 */
store *dynamodb_store_open(const dynamodb_store_options *o, char *err, size_t errlen);

#endif
