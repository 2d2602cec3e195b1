/*
 * dynamodb_store — the store port over DynamoDB; see dynamodb_store.h.
 *
 * Requests are built as text (sbuf, every string escaped) so the data's
 * AttributeValue image, which the API already made, goes in without being
 * parsed again; answers are parsed with jansson.
 *
 * Create. The id is a UUIDv7 from one generator under a mutex. Without an
 * Idempotency-Key: one PutItem, condition attribute_not_exists(id). If the
 * condition fails, the item with that fresh id can only be this very call's
 * own earlier attempt (aws_http retried after a lost answer), which the
 * returned item confirms (none returned: it is read); that is a success. With a key: one
 * TransactWriteItems putting the task and the item "idem#<key>" {task_id,
 * created_time, ttl = now + 24 h}; the key item's condition is
 * attribute_not_exists(id) OR ttl <= now, so a key past its window (which
 * DynamoDB's TTL deletes only eventually) is free again, exactly when the
 * SQLite adapter forgets it. The task id is the transaction's
 * ClientRequestToken, so a retried transaction is not applied twice. A
 * cancellation whose reason for the key item is ConditionalCheckFailed is a
 * duplicate: the reason carries the key item (else it is read, consistently)
 * and its task_id is the answer (this very transaction's task: its own
 * attempt whose answer was lost, a success), unless that task is gone (its ttl deleted
 * it while the key lived on): the key item is deleted, if it still names that
 * task, and the create tried again. A TransactionConflict (two creators of one
 * key at the same moment) is retried with a new id after a short pause. A
 * cancellation for throttling (a ThrottlingError or
 * ProvisionedThroughputExceeded reason, which DynamoDB answers as a 400
 * TransactionCanceledException that aws_http does not retry) is retried with
 * a new id as aws_http retries a throttled call (aws_retry_pause(): the same
 * backoff, attempts and deadline), and is STORE_BUSY when still throttled. A
 * ValidationError reason is STORE_INVALID, as a ValidationException of a
 * single write is.
 * In either, the item is counted as DynamoDB counts it as it is written
 * (put_task_item(): each attribute by its writer, the data as attrval_write()
 * counted its image): one that would leave less room than the changes the task
 * can take need (ITEM_GROWTH_MAX) is STORE_INVALID, with its size and the
 * limit, before its id is taken (leaves_room()), so that no task is made that
 * could never be claimed or finished.
 * Keys that are not valid UTF-8 cannot go into JSON as they are; they are
 * kept as "idem~<hex of the bytes>", a prefix no UTF-8 key can produce.
 *
 * Update. store_update_decide() is the rule (task_decide(), and only from
 * CREATED for an update with from_created): the UpdateItem's condition
 * admits exactly the statuses from which it allows the requested one
 * (IN_PROGRESS: status = CREATED; COMPLETED: IN_PROGRESS; FAILED: CREATED or
 * IN_PROGRESS, or CREATED alone with from_created), so of concurrent
 * claimers one wins. ReturnValues ALL_OLD
 * gives the task before the change (w->current); on a failed condition,
 * ReturnValuesOnConditionCheckFailure ALL_OLD gives the task as it is (none:
 * not found), and task_decide() on it tells REPEAT from CONFLICT. Each
 * update also sets write_token, a fresh UUIDv7 of its own, kept through its
 * attempts: a failed condition on an item carrying it is this very update,
 * applied by an attempt whose answer was lost (aws_http tried again after a
 * 5xx or a dropped connection). That is STORE_OK, with the status before it
 * read from the history, where task_decide() would have taken a claim's
 * second attempt for a conflict with the first.
 *   The update must also write type_status ("<task_type>#<status>") and, on
 * a final status, ttl = max(task_ttl, now + grace), and an UpdateExpression
 * can neither concatenate strings nor take a maximum. Both need the task's
 * task_type and task_ttl, which never change after creation; so the update
 * takes them as known facts and checks them in the same condition:
 * task_type = :type, and one of attribute_not_exists(task_ttl) (no ttl is
 * written), task_ttl <= :grace (SET ttl = :grace) or task_ttl > :grace (SET
 * ttl = task_ttl). Facts come from a small in-memory cache filled by every
 * create and every item read (so a worker's claim teaches its completion),
 * else from one consistent GetItem first, whose item also answers at once a
 * change that task_decide() refuses. If the condition fails while the status
 * would allow the change, the facts were wrong: they are taken from the
 * returned item and the update is tried again (bounded). Cost: one call when
 * the facts are cached, two when not.
 *
 * Reads. get_task: GetItem with ConsistentRead; an id that is not a UUID is
 * not looked up, and an item without task_type (a key or meta item) is not
 * a task. list_tasks: one Query of the index that has the filter as its
 * partition key (none: all_by_id, partition "tasks"), id < before_id,
 * newest first, Limit = limit + 1 (one more says whether there is a next
 * page). Only when the 1 MB page limit cut the answer short is the Query
 * continued from LastEvaluatedKey. Never a Scan, never a FilterExpression.
 * Indexes are eventually consistent: a task may reach the list a moment
 * after its creation answered.
 *
 * Errors. Throttling and timeouts are STORE_BUSY; no answer (5xx,
 * connection) and every refused request (missing table, validation, access)
 * are STORE_ERROR, logged with the table and DynamoDB's message; a write
 * DynamoDB can never take (a ValidationException, or a ValidationError reason
 * of a transaction) is STORE_INVALID.
 *
 * Spans. A write notes the call that decided it (note_call()): a create's
 * PutItem or its last TransactWriteItems, an update's or a reclaim's last
 * UpdateItem, or the GetItem that settled an update without one; the write's
 * span gets it from store_trace_write() as OpenTelemetry's AWS SDK
 * conventions name it (rpc.*, the table, the region, the request id).
 */
#include "dynamodb_store.h"
#include "core/errbuf.h"
#include "util/clock.h"

#include "core/attrval.h"
#include "core/json_util.h"
#include "core/sbuf.h"
#include "core/uuid7.h"
#include "core/validate.h"
#include "util/log.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define FACT_SLOTS   1024    /* cached task_type/task_ttl of recent tasks */
#define UPDATE_TRIES 4       /* condition retries when cached facts were wrong */
#define CREATE_TRIES 5       /* transactions tried while they meet TransactionConflict */
#define LIST_ALL_KEY "tasks" /* the one partition of all_by_id */
/* The one partition of claims_by_expiry, a sparse index: an item is in it while a client's claim
 * with a lease holds it (claim_lease set with claim_expires) */
#define CLAIM_LEASE_KEY "lease"
/* The most bytes an item holds, as DynamoDB counts them (400 KB). */
#define ITEM_MAX      409600
#define NUMBER_MAX    ATTRVAL_NUMBER_MAX
#define SECRET_ID     "meta#secret"
#define PING_ID       "meta#ping"
#define TARGET_PREFIX "DynamoDB_20120810."

/* The immutable facts of a task an update needs. */
typedef struct fact {
    char id[TASK_ID_LEN + 1]; /* empty: free slot */
    char task_type[TASK_TYPE_MAX + 1];
    int64_t ttl; /* task_ttl or TASK_NULL_TIME */
} fact;

typedef struct ddb_store {
    store base;
    char *table;
    aws_client *client;
    store_listener listener;
    int64_t grace;

    pthread_mutex_t ids_mu; /* guards ids */
    uuid7_gen ids;

    pthread_mutex_t secret_mu; /* guards secret, have_secret; held while fetching it */
    bool have_secret;
    uint8_t secret[16];

    pthread_mutex_t facts_mu; /* guards facts */
    fact facts[FACT_SLOTS];
} ddb_store;

static const store_ops dynamodb_ops;

/* ---- small helpers ----------------------------------------------------- */

/* Only canonical UUID text names a task; anything else is never looked up. */
static bool is_task_id(const char *id)
{
    uint8_t bytes[16];
    return id && strlen(id) == TASK_ID_LEN && uuid_parse(id, bytes);
}

/* Append a client's key as an S value: text and the key when it is UTF-8, else hex and the hex
 * of its bytes (JSON, and so an S attribute, holds UTF-8 only). */
static void put_key_text(sbuf *b, const char *key, const char *text, const char *hex)
{
    static const char digits[] = "0123456789abcdef";
    sbuf v = {0};
    if (utf8_valid(key, strlen(key))) {
        sbuf_puts(&v, text);
        sbuf_puts(&v, key);
    } else {
        sbuf_puts(&v, hex);
        for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
            sbuf_putc(&v, digits[*p >> 4]);
            sbuf_putc(&v, digits[*p & 15]);
        }
    }
    if (sbuf_failed(&v))
        b->failed = true;
    sbuf_puts(b, "{\"S\":");
    sbuf_json_str(b, v.data ? v.data : "");
    sbuf_putc(b, '}');
    sbuf_free(&v);
}

/* Append the id of a key's item: "idem#<key>", or "idem~<hex>" for a key that is not UTF-8. */
static void put_idem_id(sbuf *b, const char *key)
{
    put_key_text(b, key, "idem#", "idem~");
}

/* Append value name: a claim's key as its item keeps it, "k#<key>" or "k~<hex>". */
static void put_claim_key(sbuf *b, const char *name, const char *key)
{
    sbuf_putc(b, ',');
    sbuf_json_str(b, name);
    sbuf_putc(b, ':');
    put_key_text(b, key, "k#", "k~");
}

/* A claim's key from its attribute (put_claim_key()), malloc'ed; NULL with *ok false when out of
 * memory, NULL with *ok true when the attribute is not one taskd writes. */
static char *claim_key_of(const char *attr, bool *ok)
{
    *ok = true;
    if (strncmp(attr, "k#", 2) == 0) {
        char *key = strdup(attr + 2);
        *ok = key != NULL;
        return key;
    }
    size_t n = strlen(attr) - 2;
    if (strncmp(attr, "k~", 2) != 0 || n % 2)
        return NULL;
    char *key = malloc(n / 2 + 1);
    if (!key) {
        *ok = false;
        return NULL;
    }
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(attr + 2 + 2 * i, "%2x", &v) != 1 || v == 0) {
            free(key);
            return NULL;
        }
        key[i] = (char)v;
    }
    key[n / 2] = '\0';
    return key;
}

/* ---- request text ------------------------------------------------------ */

/* "name":{"S":"value"} with a leading comma unless first. Returns the bytes DynamoDB counts for
 * the attribute: its name's and its value's, as the text reads back (sbuf_json_str()). */
static size_t put_s(sbuf *b, bool comma, const char *name, const char *value)
{
    if (comma)
        sbuf_putc(b, ',');
    size_t size = sbuf_json_str(b, name);
    sbuf_puts(b, ":{\"S\":");
    size += sbuf_json_str(b, value);
    sbuf_putc(b, '}');
    return size;
}

/* "name":{"N":"value"} with a leading comma unless first. Returns the bytes DynamoDB counts for
 * the attribute: its name's and its number's (attrval_number_size(), of the digits written). */
static size_t put_n(sbuf *b, bool comma, const char *name, int64_t value)
{
    if (comma)
        sbuf_putc(b, ',');
    size_t size = sbuf_json_str(b, name);
    sbuf_puts(b, ":{\"N\":\"");
    size_t start = b->len;
    sbuf_int(b, value);
    if (!sbuf_failed(b))
        size += attrval_number_size(b->data + start, b->len - start);
    sbuf_puts(b, "\"}");
    return size;
}

/* One history entry: {"M":{"s":{"S":status},"m":{"S":message},"t":{"N":time}}}. Returns the
 * bytes DynamoDB counts for it, a map: ATTRVAL_NESTED, and 1 for each member with its own. */
static size_t put_history_entry(sbuf *b, task_status status, const char *msg, int64_t time)
{
    sbuf_puts(b, "{\"M\":{");
    size_t size = ATTRVAL_NESTED + 1 + put_s(b, false, "s", task_status_name(status));
    sbuf_puts(b, ",\"m\":{\"S\":");
    size += 1 + 1 + sbuf_json_strn(b, msg, task_history_msg_len(msg));
    sbuf_putc(b, '}');
    size += 1 + put_n(b, true, "t", time);
    sbuf_puts(b, "}}");
    return size;
}

/* {"TableName":"...", — the common opening of every request */
static void begin_request(sbuf *b, const ddb_store *s)
{
    sbuf_puts(b, "{\"TableName\":");
    sbuf_json_str(b, s->table);
}

/* "Key":{"id":{"S":"..."}} with a leading comma */
static void put_key(sbuf *b, const char *id)
{
    sbuf_puts(b, ",\"Key\":{");
    put_s(b, false, "id", id);
    sbuf_putc(b, '}');
}

/* ---- calls and errors -------------------------------------------------- */

/* One call: op (e.g. "GetItem") with the request text in b, which is freed. */
static aws_rc ddb_call(ddb_store *s, const char *op, sbuf *b, aws_response *r)
{
    memset(r, 0, sizeof *r);
    if (sbuf_failed(b)) {
        sbuf_free(b);
        return AWS_ERR_NOMEM;
    }
    char target[64];
    snprintf(target, sizeof target, TARGET_PREFIX "%s", op);
    aws_rc rc = aws_json_call(s->client, target, b->data, b->len, 0, r);
    sbuf_free(b);
    return rc;
}

/* Note on w the call that decides it, for its span (ddb_trace_write()); a later one replaces it. */
static void note_call(store_write *w, const char *op, const aws_response *r)
{
    w->call = op;
    snprintf(w->call_request_id, sizeof w->call_request_id, "%s", r->request_id);
}

static bool error_is(const aws_response *r, const char *type)
{
    return strcmp(r->error_type, type) == 0;
}

/* The store's answer to a failed call, logged. */
static store_rc failure(const ddb_store *s, const char *op, aws_rc rc, const aws_response *r)
{
    const char *msg = r->error_message ? r->error_message : "";
    switch (rc) {
    case AWS_OK:
        return STORE_OK;
    case AWS_ERR_THROTTLED:
    case AWS_ERR_TIMEOUT:
        log_warn("DynamoDB busy", "table", s->table, "operation", op, "error", aws_rc_name(rc),
                 "detail", msg, NULL);
        return STORE_BUSY;
    case AWS_ERR_UNAVAILABLE:
        log_error("DynamoDB unavailable", "table", s->table, "operation", op, "detail", msg, NULL);
        return STORE_ERROR;
    case AWS_ERR_NOMEM:
        log_error("out of memory calling DynamoDB", "table", s->table, "operation", op, NULL);
        return STORE_ERROR;
    case AWS_ERR_CLIENT:
        break;
    }
    if (error_is(r, "ResourceNotFoundException")) {
        log_error("DynamoDB table not found", "table", s->table, "operation", op, "error", msg,
                  NULL);
        return STORE_ERROR;
    }
    if (error_is(r, "ValidationException") && strcmp(op, "Query") != 0 &&
        strcmp(op, "GetItem") != 0 && strcmp(op, "DeleteItem") != 0) {
        /* a write of an item DynamoDB can never take: its size, depth or numbers */
        log_warn("DynamoDB cannot keep this item", "table", s->table, "operation", op, "error", msg,
                 NULL);
        return STORE_INVALID;
    }
    if (error_is(r, "TransactionConflictException") ||
        error_is(r, "TransactionInProgressException")) {
        log_warn("DynamoDB transaction conflict", "table", s->table, "operation", op, "error", msg,
                 NULL);
        return STORE_BUSY;
    }
    log_error("DynamoDB refused a request", "table", s->table, "operation", op, "error_type",
              r->error_type, "error", msg, NULL);
    return STORE_ERROR;
}

/* The answer body as JSON; NULL if there is none or it is not JSON. */
static json_t *answer_json(const aws_response *r)
{
    return r->body ? json_loadb(r->body, r->body_len, 0, NULL) : NULL;
}

/* ---- items to tasks ---------------------------------------------------- */

/* The S value of an item's attribute, or NULL. */
static const char *attr_s(const json_t *item, const char *name)
{
    return json_string_value(json_object_get(json_object_get(item, name), "S"));
}

/* Read an N attribute as an integer; false when absent, not an integer or past int64. */
static bool attr_n(const json_t *item, const char *name, int64_t *out)
{
    const char *s = json_string_value(json_object_get(json_object_get(item, name), "N"));
    if (!s || !*s)
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end || errno == ERANGE) /* past int64: not a time or count taskd wrote */
        return false;
    *out = v;
    return true;
}

/* An N attribute as an integer, TASK_NULL_TIME when absent; false when malformed. */
static bool attr_time(const json_t *item, const char *name, int64_t *out)
{
    *out = TASK_NULL_TIME;
    return !json_object_get(item, name) || attr_n(item, name, out);
}

/* The JSON text of an AttributeValue attribute (malloc'ed), *out NULL when absent. */
static bool attr_json_text(const json_t *item, const char *name, char **out)
{
    *out = NULL;
    const json_t *v = json_object_get(item, name);
    if (!v)
        return true;
    json_t *plain = attrval_to_json(v);
    if (!plain)
        return false;
    *out = json_to_text(plain);
    json_decref(plain);
    return *out != NULL;
}

/* Why an item cannot be read as a task, for the line that says so. */
#define UNREADABLE_ITEM "malformed, or out of memory"

/*
 * Fill t from an item (full: with data, result, trace and tracestate), saying nothing.
 * STORE_NOT_FOUND when the item is not a task (no task_type: a key or meta item),
 * STORE_ERROR when it is malformed or memory runs out.
 */
static store_rc read_task_item(const json_t *item, task *t, bool full)
{
    memset(t, 0, sizeof *t);
    const char *id = attr_s(item, "id");
    const char *type = attr_s(item, "task_type");
    const char *status = attr_s(item, "status");
    if (!json_is_object(item) || !id || !type)
        return STORE_NOT_FOUND;
    if (strlen(id) > TASK_ID_LEN || strlen(type) > TASK_TYPE_MAX || !status ||
        !task_status_parse(status, &t->status))
        return STORE_ERROR;
    memcpy(t->id, id, strlen(id) + 1);
    memcpy(t->task_type, type, strlen(type) + 1);
    const char *msg = attr_s(item, "status_msg");
    const char *claim_key = attr_s(item, "claim_key");
    bool key_ok = true;
    bool ok = attr_n(item, "created_time", &t->created_time) &&
              attr_time(item, "updated_time", &t->updated_time) &&
              attr_time(item, "task_ttl", &t->ttl) && (t->status_msg = strdup(msg ? msg : "")) &&
              (!json_object_get(item, "claim_expires") ||
               attr_n(item, "claim_expires", &t->claim_expires)) &&
              (!claim_key || (t->claim_key = claim_key_of(claim_key, &key_ok)) || key_ok);
    if (ok && full) {
        const char *trace = attr_s(item, "trace"), *tracestate = attr_s(item, "tracestate");
        ok = attr_json_text(item, "data", &t->data) && attr_json_text(item, "result", &t->result) &&
             (!trace || (t->trace = strdup(trace))) &&
             (!tracestate || (t->tracestate = strdup(tracestate)));
        if (ok && !t->data)
            ok = (t->data = strdup("{}")) != NULL;
    }
    if (!ok) {
        task_clear(t);
        return STORE_ERROR;
    }
    return STORE_OK;
}

/* read_task_item(), an item that cannot be read logged with its id (STORE_ERROR). */
static store_rc task_from_item(const ddb_store *s, const json_t *item, task *t, bool full)
{
    store_rc rc = read_task_item(item, t, full);
    if (rc == STORE_ERROR)
        log_error("DynamoDB item cannot be read as a task (" UNREADABLE_ITEM ")", "table", s->table,
                  "task_id", attr_s(item, "id"), NULL);
    return rc;
}

/* ---- the facts cache --------------------------------------------------- */

static size_t fact_slot(const char *id)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)id; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return (size_t)(h % FACT_SLOTS);
}

static void facts_put(ddb_store *s, const char *id, const char *task_type, int64_t ttl)
{
    if (strlen(id) != TASK_ID_LEN || strlen(task_type) > TASK_TYPE_MAX)
        return;
    pthread_mutex_lock(&s->facts_mu);
    fact *f = &s->facts[fact_slot(id)];
    memcpy(f->id, id, TASK_ID_LEN + 1);
    snprintf(f->task_type, sizeof f->task_type, "%s", task_type);
    f->ttl = ttl;
    pthread_mutex_unlock(&s->facts_mu);
}

static bool facts_get(ddb_store *s, const char *id, fact *out)
{
    pthread_mutex_lock(&s->facts_mu);
    const fact *f = &s->facts[fact_slot(id)];
    bool hit = strcmp(f->id, id) == 0;
    if (hit)
        *out = *f;
    pthread_mutex_unlock(&s->facts_mu);
    return hit;
}

static void facts_forget(ddb_store *s, const char *id)
{
    pthread_mutex_lock(&s->facts_mu);
    fact *f = &s->facts[fact_slot(id)];
    if (strcmp(f->id, id) == 0)
        f->id[0] = '\0';
    pthread_mutex_unlock(&s->facts_mu);
}

static void facts_learn(ddb_store *s, const task *t)
{
    facts_put(s, t->id, t->task_type, t->ttl);
}

/* ---- reads ------------------------------------------------------------- */

/*
 * GetItem by id; *item_out the Item (new reference), NULL when there is none.
 * consistent: a strongly consistent read. decides: the write this read decides (it notes the
 * call), or NULL.
 */
static store_rc get_item(ddb_store *s, const char *id, bool consistent, store_write *decides,
                         json_t **item_out)
{
    *item_out = NULL;
    sbuf b = {0};
    begin_request(&b, s);
    put_key(&b, id);
    if (consistent)
        sbuf_puts(&b, ",\"ConsistentRead\":true");
    sbuf_putc(&b, '}');
    aws_response r;
    aws_rc rc = ddb_call(s, "GetItem", &b, &r);
    if (decides)
        note_call(decides, "GetItem", &r);
    store_rc out = failure(s, "GetItem", rc, &r);
    if (out == STORE_OK) {
        json_t *root = answer_json(&r);
        if (!root) {
            log_error("DynamoDB answer is not JSON", "table", s->table, "operation", "GetItem",
                      NULL);
            out = STORE_ERROR;
        } else {
            json_t *item = json_object_get(root, "Item");
            if (json_is_object(item))
                *item_out = json_incref(item);
            json_decref(root);
        }
    }
    aws_response_free(&r);
    return out;
}

/* A task's item (new reference), read strongly consistent; STORE_NOT_FOUND when id is no task
 * id or names no item. */
static store_rc get_task_item(ddb_store *s, const char *id, json_t **item)
{
    *item = NULL;
    if (!is_task_id(id))
        return STORE_NOT_FOUND;
    store_rc rc = get_item(s, id, true, NULL, item);
    if (rc == STORE_OK && !*item)
        return STORE_NOT_FOUND;
    return rc;
}

static store_rc ddb_get_task(store *base, const char *id, task *out)
{
    ddb_store *s = (ddb_store *)base;
    memset(out, 0, sizeof *out);
    json_t *item;
    store_rc rc = get_task_item(s, id, &item);
    if (rc != STORE_OK)
        return rc;
    rc = task_from_item(s, item, out, true);
    json_decref(item);
    if (rc == STORE_OK)
        facts_learn(s, out);
    return rc;
}

/* One entry of an item's history list into h; false when malformed or out of memory. */
static bool history_entry_of(const json_t *av, task_history *h)
{
    const json_t *m = json_object_get(av, "M");
    const char *msg = attr_s(m, "m");
    task_status status;
    int64_t t;
    return task_status_parse(attr_s(m, "s"), &status) && msg && attr_n(m, "t", &t) &&
           task_history_add(h, status, msg, t);
}

/*
 * The history kept on a task's item. An item made before histories were has
 * none, or one that starts after its creation: what the task tells fills in,
 * flagged truncated.
 */
static store_rc history_from_item(const json_t *item, const task *t, task_history *out)
{
    const json_t *list = json_object_get(json_object_get(item, "history"), "L");
    size_t n = json_array_size(list);
    if (n == 0)
        return task_history_of_task(out, t) ? STORE_OK : STORE_ERROR;
    int64_t dropped = 0;
    out->truncated = attr_n(item, "history_dropped", &dropped) && dropped > 0;
    const char *first = attr_s(json_object_get(json_array_get(list, 0), "M"), "s");
    if (!first || strcmp(first, task_status_name(TASK_CREATED)) != 0) {
        out->truncated = true;
        if (!task_history_add(out, TASK_CREATED, "", t->created_time))
            return STORE_ERROR;
    }
    for (size_t i = 0; i < n; i++)
        if (!history_entry_of(json_array_get(list, i), out))
            return STORE_ERROR;
    return STORE_OK;
}

static store_rc ddb_get_history(store *base, const char *id, task_history *out)
{
    ddb_store *s = (ddb_store *)base;
    memset(out, 0, sizeof *out);
    json_t *item;
    store_rc rc = get_task_item(s, id, &item);
    if (rc != STORE_OK)
        return rc;
    task t;
    rc = task_from_item(s, item, &t, false);
    if (rc == STORE_OK) {
        rc = history_from_item(item, &t, out);
        if (rc != STORE_OK)
            log_error("malformed task history", "table", s->table, "task_id", id, NULL);
    }
    task_clear(&t);
    json_decref(item);
    if (rc != STORE_OK)
        task_history_clear(out);
    return rc;
}

static store_rc ddb_list_tasks(store *base, const store_list_query *q, store_page *out)
{
    ddb_store *s = (ddb_store *)base;
    memset(out, 0, sizeof *out);
    if (q->limit < 1)
        return STORE_OK;
    const char *index, *pk_name;
    char pk[TASK_TYPE_MAX + 32];
    if (q->status && q->task_type) {
        index = "type_status_by_id";
        pk_name = "type_status";
        snprintf(pk, sizeof pk, "%s#%s", q->task_type, q->status);
    } else if (q->status) {
        index = "status_by_id";
        pk_name = "status";
        snprintf(pk, sizeof pk, "%s", q->status);
    } else if (q->task_type) {
        index = "type_by_id";
        pk_name = "task_type";
        snprintf(pk, sizeof pk, "%s", q->task_type);
    } else {
        index = "all_by_id";
        pk_name = "list_all";
        snprintf(pk, sizeof pk, "%s", LIST_ALL_KEY);
    }
    size_t want = (size_t)q->limit + 1; /* one more tells whether a next page exists */
    out->tasks = calloc(want, sizeof *out->tasks);
    if (!out->tasks)
        return STORE_ERROR;
    store_rc result = STORE_OK;
    json_t *start = NULL; /* LastEvaluatedKey of a page the 1 MB limit cut short */
    json_t *sent = NULL;  /* the key the page asked for starts after */
    size_t got = 0;
    do {
        sbuf b = {0};
        begin_request(&b, s);
        sbuf_puts(&b, ",\"IndexName\":");
        sbuf_json_str(&b, index);
        sbuf_puts(&b, q->before_id ? ",\"KeyConditionExpression\":\"#pk = :pk AND #id < :before\""
                                   : ",\"KeyConditionExpression\":\"#pk = :pk\"");
        sbuf_puts(&b, ",\"ExpressionAttributeNames\":{\"#pk\":");
        sbuf_json_str(&b, pk_name);
        if (q->before_id)
            sbuf_puts(&b, ",\"#id\":\"id\"");
        sbuf_puts(&b, "},\"ExpressionAttributeValues\":{");
        put_s(&b, false, ":pk", pk);
        if (q->before_id)
            put_s(&b, true, ":before", q->before_id);
        sbuf_printf(&b, "},\"ScanIndexForward\":false,\"Limit\":%zu", want - got);
        if (start) {
            char *text = json_dumps(start, JSON_COMPACT);
            sbuf_puts(&b, ",\"ExclusiveStartKey\":");
            if (text)
                sbuf_puts(&b, text);
            else
                b.failed = true;
            free(text);
            json_decref(sent);
            sent = start;
            start = NULL;
        }
        sbuf_putc(&b, '}');
        aws_response r;
        aws_rc rc = ddb_call(s, "Query", &b, &r);
        result = failure(s, "Query", rc, &r);
        json_t *root = result == STORE_OK ? answer_json(&r) : NULL;
        aws_response_free(&r);
        if (result != STORE_OK)
            break;
        json_t *items = json_object_get(root, "Items");
        if (!json_is_array(items)) {
            log_error("DynamoDB answer has no Items", "table", s->table, "operation", "Query",
                      NULL);
            json_decref(root);
            result = STORE_ERROR;
            break;
        }
        for (size_t i = 0; i < json_array_size(items) && got < want && result == STORE_OK; i++) {
            store_rc one = task_from_item(s, json_array_get(items, i), &out->tasks[got], false);
            if (one == STORE_OK)
                got++;
            else if (one == STORE_ERROR)
                result = STORE_ERROR;
        }
        json_t *last = json_object_get(root, "LastEvaluatedKey");
        if (result == STORE_OK && got < want && json_is_object(last)) {
            if (sent && json_equal(last, sent)) {
                /* the page ends where it began: asking again would go round until the deadline */
                log_error("DynamoDB answered a page with the key it was asked to start after",
                          "table", s->table, "operation", "Query", "index", index, NULL);
                result = STORE_ERROR;
            } else {
                start = json_incref(last);
            }
        }
        json_decref(root);
    } while (start);
    json_decref(sent);
    if (result != STORE_OK) {
        out->count = got;
        store_page_free(out);
        return result;
    }
    if (got == want) {
        task_clear(&out->tasks[--got]);
        out->more = 1;
    }
    out->count = got;
    return STORE_OK;
}

/* By claims_by_expiry: client claims whose lease ended before now, the earliest first. One
 * Query of at most max keys (the index projects its keys only). */
static store_rc ddb_expired_claims(store *base, int64_t now, store_claim *out, size_t max,
                                   size_t *n)
{
    ddb_store *s = (ddb_store *)base;
    *n = 0;
    sbuf b = {0};
    begin_request(&b, s);
    sbuf_puts(&b, ",\"IndexName\":\"claims_by_expiry\",\"KeyConditionExpression\":\"#cl = :cl "
                  "AND #ce < :now\",\"ExpressionAttributeNames\":{\"#cl\":\"claim_lease\","
                  "\"#ce\":\"claim_expires\"},\"ExpressionAttributeValues\":{");
    put_s(&b, false, ":cl", CLAIM_LEASE_KEY);
    put_n(&b, true, ":now", now);
    sbuf_printf(&b, "},\"ScanIndexForward\":true,\"Limit\":%zu}", max);
    aws_response r;
    aws_rc rc = ddb_call(s, "Query", &b, &r);
    store_rc result = failure(s, "Query", rc, &r);
    json_t *root = result == STORE_OK ? answer_json(&r) : NULL;
    aws_response_free(&r);
    if (result != STORE_OK)
        return result;
    json_t *items = json_object_get(root, "Items");
    if (!json_is_array(items)) {
        log_error("DynamoDB answer has no Items", "table", s->table, "operation", "Query", NULL);
        json_decref(root);
        return STORE_ERROR;
    }
    for (size_t i = 0; i < json_array_size(items) && *n < max; i++) {
        const json_t *item = json_array_get(items, i);
        const char *id = attr_s(item, "id");
        int64_t expires;
        if (!id || strlen(id) > TASK_ID_LEN || !attr_n(item, "claim_expires", &expires))
            continue; /* not an item taskd wrote */
        memcpy(out[*n].id, id, strlen(id) + 1);
        out[(*n)++].claim_expires = expires;
    }
    json_decref(root);
    return STORE_OK;
}

static store_rc ddb_ping(store *base)
{
    ddb_store *s = (ddb_store *)base;
    json_t *item;
    store_rc rc = get_item(s, PING_ID, false, NULL, &item);
    json_decref(item);
    return rc;
}

static bool hex_to_bytes(const char *hex, uint8_t *out, size_t n)
{
    if (!hex || strlen(hex) != 2 * n)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            return false;
        out[i] = (uint8_t)v;
    }
    return true;
}

/* Read the secret item; STORE_NOT_FOUND when it does not exist yet. */
static store_rc read_secret(ddb_store *s)
{
    json_t *item;
    store_rc rc = get_item(s, SECRET_ID, true, NULL, &item);
    if (rc != STORE_OK)
        return rc;
    if (!item)
        return STORE_NOT_FOUND;
    bool ok = hex_to_bytes(attr_s(item, "value"), s->secret, sizeof s->secret);
    json_decref(item);
    if (!ok) {
        log_error("malformed secret item", "table", s->table, "id", SECRET_ID, NULL);
        return STORE_ERROR;
    }
    s->have_secret = true;
    return STORE_OK;
}

/* Create the secret item unless another process did first. */
static store_rc create_secret(ddb_store *s)
{
    uint8_t key[16];
    if (getrandom(key, sizeof key, 0) != (ssize_t)sizeof key)
        return STORE_ERROR;
    char hex[33];
    for (size_t i = 0; i < sizeof key; i++)
        snprintf(hex + 2 * i, 3, "%02x", key[i]);
    sbuf b = {0};
    begin_request(&b, s);
    sbuf_puts(&b, ",\"Item\":{");
    put_s(&b, false, "id", SECRET_ID);
    put_s(&b, true, "value", hex);
    sbuf_puts(&b, "},\"ConditionExpression\":\"attribute_not_exists(id)\"}");
    aws_response r;
    aws_rc rc = ddb_call(s, "PutItem", &b, &r);
    store_rc out;
    if (rc == AWS_ERR_CLIENT && error_is(&r, "ConditionalCheckFailedException")) {
        out = read_secret(s); /* another process made it first: theirs wins */
    } else if ((out = failure(s, "PutItem", rc, &r)) == STORE_OK) {
        memcpy(s->secret, key, sizeof key);
        s->have_secret = true;
    }
    aws_response_free(&r);
    return out;
}

static store_rc ddb_secret(store *base, uint8_t key[16])
{
    ddb_store *s = (ddb_store *)base;
    pthread_mutex_lock(&s->secret_mu);
    store_rc rc = STORE_OK;
    if (!s->have_secret) {
        rc = read_secret(s);
        if (rc == STORE_NOT_FOUND)
            rc = create_secret(s);
        if (rc == STORE_NOT_FOUND) /* made and deleted in between: not for us to fix */
            rc = STORE_ERROR;
    }
    if (rc == STORE_OK)
        memcpy(key, s->secret, sizeof s->secret);
    pthread_mutex_unlock(&s->secret_mu);
    return rc;
}

/* ---- item sizes -------------------------------------------------------- */

/* The longest history entry: a map of s (IN_PROGRESS), m (TASK_HISTORY_MSG_MAX bytes) and t,
 * an element of the list. */
#define HISTORY_ENTRY_MAX                                                                          \
    (1 + 3 + (1 + 1 + 11) + (1 + 1 + TASK_HISTORY_MSG_MAX) + (1 + 1 + NUMBER_MAX))

/*
 * What the changes a task can take after its creation add to its item at most, its result
 * aside (a result the item cannot hold is refused: 422, or a handler's task fails without it).
 * IN_PROGRESS is 4 bytes longer than CREATED, in status and in type_status; status_msg grows
 * from "" to the longest a PATCH takes (VALIDATE_STATUS_MSG_MAX characters of up to 4 bytes; a
 * handler's failure quotes less); the claim, its lease and the final status add updated_time,
 * write_token, claimed_time, claim_key (the longest key, in hex: "k~" and two digits a byte),
 * claim_expires, claim_lease, ttl and history_dropped; and the history TASK_HISTORY_MAX + 1
 * entries more than its first, at their longest (trim_history() brings it back to
 * TASK_HISTORY_MAX after each change, and a reclaim waits for a history a failed trim left
 * longer: one more is the final status after such a trim).
 */
#define ITEM_GROWTH_MAX                                                                            \
    (4 + 4 + 4 * VALIDATE_STATUS_MSG_MAX + (12 + NUMBER_MAX) + (11 + TASK_ID_LEN) +                \
     (12 + NUMBER_MAX) + (9 + 2 + 2 * STORE_IDEMPOTENCY_KEY_MAX) + (13 + NUMBER_MAX) + (11 + 5) +  \
     (3 + NUMBER_MAX) + (15 + NUMBER_MAX) + (TASK_HISTORY_MAX + 1) * HISTORY_ENTRY_MAX)

/* The most a new task's item may take: what leaves room for every change it can take. */
#define CREATE_ITEM_MAX (ITEM_MAX - ITEM_GROWTH_MAX)

/* ---- create ------------------------------------------------------------ */

static bool new_id(ddb_store *s, char out[37])
{
    uint8_t rnd[10];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
        return false;
    pthread_mutex_lock(&s->ids_mu);
    uuid7_next(&s->ids, (uint64_t)clock_unix_ms(), rnd, out);
    pthread_mutex_unlock(&s->ids_mu);
    return true;
}

/* The task's item: {"id":..., ...}, its data the AttributeValue data_image, for which DynamoDB
 * counts data_size bytes (attrval_write()'s count as it wrote it). Returns the bytes DynamoDB
 * counts for the item: its attributes' names and values, each counted as it is written. */
static size_t put_task_item(sbuf *b, const char *id, const store_new_task *c,
                            const char *data_image, size_t data_size, int64_t now)
{
    char type_status[TASK_TYPE_MAX + 32];
    snprintf(type_status, sizeof type_status, "%s#%s", c->task_type,
             task_status_name(TASK_CREATED));
    sbuf_putc(b, '{');
    size_t size = put_s(b, false, "id", id);
    size += put_s(b, true, "task_type", c->task_type);
    size += put_s(b, true, "status", task_status_name(TASK_CREATED));
    size += put_s(b, true, "status_msg", "");
    size += put_n(b, true, "created_time", now);
    if (c->ttl != TASK_NULL_TIME)
        size += put_n(b, true, "task_ttl", c->ttl);
    sbuf_puts(b, ",\"data\":");
    sbuf_puts(b, data_image);
    size += strlen("data") + data_size;
    if (c->trace)
        size += put_s(b, true, "trace", c->trace);
    if (c->tracestate) /* only when there is one: the attribute is absent otherwise */
        size += put_s(b, true, "tracestate", c->tracestate);
    size += put_s(b, true, "list_all", LIST_ALL_KEY);
    size += put_s(b, true, "type_status", type_status);
    sbuf_puts(b, ",\"history\":{\"L\":[");
    size += strlen("history") + ATTRVAL_NESTED + 1 + put_history_entry(b, TASK_CREATED, "", now);
    sbuf_puts(b, "]}}");
    return size;
}

/* An id as long as any new_id() makes: an item's count takes its length, not its value. */
#define ID_OF_ITS_LENGTH "00000000-0000-7000-8000-000000000000"

/* Whether w's new task's item, its data counted data_size bytes, leaves room for every change it
 * can take (CREATE_ITEM_MAX), counted as put_task_item() counts it, before any id is taken: its
 * count takes the id's length alone, and the data's image as data_size, so the item is written
 * without them. When it does not, its size and the limit go into w, for the STORE_INVALID that
 * refuses it before it is sent. An item the count could not write (out of memory) is left to the
 * call, which fails for it. */
static bool leaves_room(store_write *w, size_t data_size)
{
    sbuf b = {0};
    size_t size = put_task_item(&b, ID_OF_ITS_LENGTH, &w->create, "", data_size, w->now);
    bool room = sbuf_failed(&b) || size <= CREATE_ITEM_MAX;
    sbuf_free(&b);
    if (!room) {
        w->size = size;
        w->size_limit = CREATE_ITEM_MAX;
    }
    return room;
}

/* PutItem of a task without an Idempotency-Key. */
static store_rc create_plain(ddb_store *s, store_write *w, const char *id, const char *data_image,
                             size_t data_size)
{
    sbuf b = {0};
    begin_request(&b, s);
    sbuf_puts(&b, ",\"Item\":");
    put_task_item(&b, id, &w->create, data_image, data_size, w->now);
    sbuf_puts(&b, ",\"ConditionExpression\":\"attribute_not_exists(id)\","
                  "\"ReturnValuesOnConditionCheckFailure\":\"ALL_OLD\"}");
    aws_response r;
    aws_rc rc = ddb_call(s, "PutItem", &b, &r);
    note_call(w, "PutItem", &r);
    store_rc out;
    if (rc == AWS_ERR_CLIENT && error_is(&r, "ConditionalCheckFailedException")) {
        /* a fresh UUIDv7 is taken only by this call's own earlier attempt, which the item tells:
         * the answer's (ReturnValuesOnConditionCheckFailure), else read */
        json_t *root = answer_json(&r);
        json_t *item = json_incref(json_object_get(root, "Item"));
        json_decref(root);
        out = STORE_OK;
        if (!json_is_object(item)) {
            json_decref(item);
            out = get_item(s, id, true, NULL, &item);
        }
        const char *type = attr_s(item, "task_type");
        int64_t created;
        bool ours = type && strcmp(type, w->create.task_type) == 0 &&
                    attr_n(item, "created_time", &created) && created == w->now;
        json_decref(item);
        if (out != STORE_OK) {
            /* the item is not known: it may be this create's own */
            w->unknown = true;
            memcpy(w->id, id, sizeof w->id);
        } else if (!ours) {
            log_error("new task id already taken", "table", s->table, "task_id", id, NULL);
            out = STORE_ERROR;
        }
    } else {
        out = failure(s, "PutItem", rc, &r);
        /* a try that went out whole unanswered, or answered 5xx: DynamoDB may have written the
         * item all the same; one never sent (a connection refused) made nothing */
        if (r.unanswered) {
            w->unknown = true;
            memcpy(w->id, id, sizeof w->id);
        }
    }
    aws_response_free(&r);
    return out;
}

/* What a key item says: STORE_DUPLICATE with the task id of a live key into id_out,
 * STORE_NOT_FOUND when there is none or it has expired, STORE_ERROR, logged, when its task_id or
 * ttl cannot be read: whether the key is free is not known (and DynamoDB's condition holds it
 * taken), so not taken for free. */
static store_rc idem_state(const ddb_store *s, const json_t *item, int64_t now, char id_out[37])
{
    if (!item)
        return STORE_NOT_FOUND;
    const char *task_id = attr_s(item, "task_id");
    int64_t ttl;
    if (!task_id || strlen(task_id) != TASK_ID_LEN || !attr_n(item, "ttl", &ttl)) {
        log_error("DynamoDB Idempotency-Key item cannot be read (malformed)", "table", s->table,
                  NULL);
        return STORE_ERROR;
    }
    if (ttl <= now)
        return STORE_NOT_FOUND;
    memcpy(id_out, task_id, TASK_ID_LEN + 1);
    return STORE_DUPLICATE;
}

/* Read the key item consistently: STORE_DUPLICATE with its task, STORE_NOT_FOUND when free,
 * STORE_ERROR when the answer or the item cannot be read. */
static store_rc read_idem(ddb_store *s, const char *key, int64_t now, char id_out[37])
{
    sbuf b = {0};
    begin_request(&b, s);
    sbuf_puts(&b, ",\"Key\":{\"id\":");
    put_idem_id(&b, key);
    sbuf_puts(&b, "},\"ConsistentRead\":true}");
    aws_response r;
    aws_rc rc = ddb_call(s, "GetItem", &b, &r);
    store_rc out = failure(s, "GetItem", rc, &r);
    if (out == STORE_OK) {
        json_t *root = answer_json(&r);
        if (!root) /* whether the key is free is not known: not taken for free */
            log_error("DynamoDB answer is not JSON", "table", s->table, "operation", "GetItem",
                      NULL);
        out = root ? idem_state(s, json_object_get(root, "Item"), now, id_out) : STORE_ERROR;
        json_decref(root);
    }
    aws_response_free(&r);
    return out;
}

/* The Code of cancellation reason i, or "" when the answer lists none. */
static const char *reason_code(const json_t *reasons, size_t i)
{
    const char *code = json_string_value(json_object_get(json_array_get(reasons, i), "Code"));
    return code ? code : "";
}

/*
 * Whether a cancellation gives code as a reason for any of its items: in
 * CancellationReasons, or, when the answer has none, in its message
 * ("... specific reasons [None, ConditionalCheckFailed]").
 */
static bool cancelled_for(const json_t *reasons, const aws_response *r, const char *code)
{
    if (!json_is_array(reasons))
        return r->error_message && strstr(r->error_message, code);
    for (size_t i = 0; i < json_array_size(reasons); i++)
        if (strcmp(reason_code(reasons, i), code) == 0)
            return true;
    return false;
}

/* What one try of a keyed create came to. */
typedef enum key_try {
    KEY_SETTLED,   /* *rc is the answer: STORE_OK, STORE_DUPLICATE (w->id set), or a failure */
    KEY_AGAIN,     /* try again now: a conflict, or a key that freed between the write and read */
    KEY_THROTTLED, /* cancelled for throttling, nothing written: try again after a backoff */
} key_try;

/* The key item's Put among a keyed create's TransactItems (the task's is 0), and so its
 * cancellation reason's index. */
#define KEY_PUT 1

/* One TransactWriteItems: the task and its key item. */
static key_try create_keyed_once(ddb_store *s, store_write *w, const char *id,
                                 const char *data_image, size_t data_size, store_rc *rc_out)
{
    const store_new_task *c = &w->create;
    sbuf b = {0};
    sbuf_puts(&b, "{\"ClientRequestToken\":");
    sbuf_json_str(&b, id);
    sbuf_puts(&b, ",\"TransactItems\":[{\"Put\":");
    begin_request(&b, s);
    sbuf_puts(&b, ",\"Item\":");
    put_task_item(&b, id, c, data_image, data_size, w->now);
    sbuf_puts(&b, ",\"ConditionExpression\":\"attribute_not_exists(id)\"}},{\"Put\":");
    begin_request(&b, s);
    sbuf_puts(&b, ",\"Item\":{\"id\":");
    put_idem_id(&b, c->idempotency_key);
    put_s(&b, true, "task_id", id);
    put_n(&b, true, "created_time", w->now);
    put_n(&b, true, "ttl", w->now + STORE_IDEMPOTENCY_WINDOW);
    sbuf_puts(&b, "},\"ConditionExpression\":\"attribute_not_exists(id) OR #ttl <= :now\","
                  "\"ExpressionAttributeNames\":{\"#ttl\":\"ttl\"},"
                  "\"ExpressionAttributeValues\":{");
    put_n(&b, false, ":now", w->now);
    sbuf_puts(&b, "},\"ReturnValuesOnConditionCheckFailure\":\"ALL_OLD\"}}]}");
    aws_response r;
    aws_rc rc = ddb_call(s, "TransactWriteItems", &b, &r);
    note_call(w, "TransactWriteItems", &r);
    key_try out = KEY_SETTLED;
    if (rc == AWS_ERR_CLIENT && error_is(&r, "TransactionCanceledException")) {
        json_t *root = answer_json(&r);
        json_t *reasons = json_object_get(root, "CancellationReasons");
        if (strcmp(reason_code(reasons, KEY_PUT), "ConditionalCheckFailed") == 0 ||
            (!json_is_array(reasons) && r.error_message &&
             strstr(r.error_message, "ConditionalCheckFailed"))) {
            /* the key is taken: the reason carries its item, else read it */
            json_t *item = json_object_get(json_array_get(reasons, KEY_PUT), "Item");
            *rc_out = idem_state(s, item, w->now, w->id);
            if (*rc_out == STORE_NOT_FOUND)
                *rc_out = read_idem(s, c->idempotency_key, w->now, w->id);
            if (*rc_out == STORE_NOT_FOUND) /* the key expired in between */
                out = KEY_AGAIN;
            else if (*rc_out == STORE_DUPLICATE && strcmp(w->id, id) == 0)
                *rc_out = STORE_OK; /* this very transaction, applied by an attempt whose answer
                                     * was lost (its ClientRequestToken not honoured) */
        } else if (cancelled_for(reasons, &r, "ValidationError")) {
            /* as a ValidationException of a single write: the item can never be kept */
            log_warn("DynamoDB cannot keep this item", "table", s->table, "operation",
                     "TransactWriteItems", "error", r.error_message ? r.error_message : "", NULL);
            *rc_out = STORE_INVALID;
        } else if (cancelled_for(reasons, &r, "ThrottlingError") ||
                   cancelled_for(reasons, &r, "ProvisionedThroughputExceeded")) {
            out = KEY_THROTTLED;
        } else if (cancelled_for(reasons, &r, "TransactionConflict")) {
            out = KEY_AGAIN; /* another writer of the key at this moment */
        } else {
            log_error("DynamoDB cancelled a create", "table", s->table, "task_id", id, "error",
                      r.error_message ? r.error_message : "", NULL);
            *rc_out = STORE_ERROR;
        }
        json_decref(root);
    } else {
        *rc_out = failure(s, "TransactWriteItems", rc, &r);
        w->unknown = r.unanswered; /* as create_plain(), with the id it may have made */
        if (w->unknown)
            memcpy(w->id, id, sizeof w->id);
    }
    aws_response_free(&r);
    return out;
}

/*
 * The key's task is gone (deleted by its ttl): the key item is deleted, if it still names that
 * task, so that the create takes the key anew. STORE_OK when it is gone, whoever deleted it.
 */
static store_rc free_key_of_gone_task(ddb_store *s, const char *key, const char *task_id)
{
    sbuf b = {0};
    begin_request(&b, s);
    sbuf_puts(&b, ",\"Key\":{\"id\":");
    put_idem_id(&b, key);
    sbuf_puts(&b, "},\"ConditionExpression\":\"task_id = :t\",\"ExpressionAttributeValues\":{");
    put_s(&b, false, ":t", task_id);
    sbuf_puts(&b, "}}");
    aws_response r;
    aws_rc rc = ddb_call(s, "DeleteItem", &b, &r);
    store_rc out = rc == AWS_ERR_CLIENT && error_is(&r, "ConditionalCheckFailedException")
                       ? STORE_OK /* it names another task now, or is gone: taken anew */
                       : failure(s, "DeleteItem", rc, &r);
    aws_response_free(&r);
    return out;
}

/* A duplicate whose task is gone is tried again, its key freed (*rc: a failure to free it);
 * others stay duplicates. */
static key_try check_duplicate(ddb_store *s, store_write *w, store_rc *rc)
{
    json_t *item = NULL;
    store_rc got = get_task_item(s, w->id, &item);
    json_decref(item);
    if (got != STORE_NOT_FOUND)
        return KEY_SETTLED; /* there, or unknown for now: answered as the key says */
    *rc = free_key_of_gone_task(s, w->create.idempotency_key, w->id);
    return *rc == STORE_OK ? KEY_AGAIN : KEY_SETTLED;
}

static store_rc apply_create(ddb_store *s, store_write *w)
{
    const store_new_task *c = &w->create;
    if (!c->task_type || !*c->task_type || strlen(c->task_type) > TASK_TYPE_MAX)
        return STORE_ERROR;
    char *derived = NULL;
    const char *data_image = c->data_image;
    size_t data_size = c->data_size;
    if ((!data_image || !data_size) &&
        !(data_image = derived = attrval_from_text(c->data ? c->data : "{}", &data_size)))
        return STORE_ERROR;
    char id[37];
    store_rc rc;
    if (!leaves_room(w, data_size)) {
        rc = STORE_INVALID; /* before an id is taken: nothing could make it fit */
    } else if (!c->idempotency_key) {
        rc = new_id(s, id) ? create_plain(s, w, id, data_image, data_size) : STORE_ERROR;
    } else {
        /* tried until a try settles it, each with a new id. Throttling and conflicts have
         * budgets of their own (aws_retry_pause()'s attempts, CREATE_TRIES), so a create
         * meeting both may take up to their sum of transactions, all within the one deadline. */
        int64_t deadline = aws_deadline();
        if (deadline <= 0)
            deadline = clock_unix_ms() + AWS_DEFAULT_CALL_MS;
        int conflicts = 0, throttles = 0;
        for (;;) {
            if (!new_id(s, id)) {
                rc = STORE_ERROR;
                break;
            }
            key_try t = create_keyed_once(s, w, id, data_image, data_size, &rc);
            if (t == KEY_SETTLED && rc == STORE_DUPLICATE)
                t = check_duplicate(s, w, &rc);
            if (t == KEY_SETTLED)
                break;
            if (t == KEY_THROTTLED) {
                /* retried as aws_http retries a throttled call, within the same deadline */
                if (aws_retry_pause(++throttles, deadline))
                    continue;
                log_warn("DynamoDB busy", "table", s->table, "operation", "TransactWriteItems",
                         "error", "throttled", "detail", "transaction cancelled for throttling",
                         NULL);
                rc = STORE_BUSY;
                break;
            }
            int64_t pause = 10 << ++conflicts; /* 20 .. 160 ms */
            if (conflicts >= CREATE_TRIES || clock_unix_ms() + pause >= deadline) {
                log_warn("idempotency key stays contended", "table", s->table, NULL);
                rc = STORE_BUSY;
                break;
            }
            clock_sleep_ms(pause);
        }
    }
    free(derived);
    if (rc == STORE_OK) {
        memcpy(w->id, id, sizeof id);
        facts_put(s, id, c->task_type, c->ttl);
    }
    return rc;
}

/* ---- update ------------------------------------------------------------ */

/* Which of the ttl conditions of the header comment an update carries. */
typedef enum ttl_case {
    TTL_NONE,     /* not a final status: ttl untouched */
    TTL_ABSENT,   /* final, no task_ttl: no ttl */
    TTL_GRACE,    /* final, task_ttl <= now + grace: ttl = now + grace */
    TTL_TASK_TTL, /* final, task_ttl > now + grace: ttl = task_ttl */
} ttl_case;

static ttl_case ttl_case_of(task_status next, int64_t task_ttl, int64_t grace_ttl)
{
    if (!task_status_is_final(next))
        return TTL_NONE;
    if (task_ttl == TASK_NULL_TIME)
        return TTL_ABSENT;
    return task_ttl <= grace_ttl ? TTL_GRACE : TTL_TASK_TTL;
}

/* The statuses from which task_decide() applies a change to next. */
static int allowed_from(task_status next, const char *msg)
{
    int mask = 0;
    for (int st = TASK_CREATED; st <= TASK_FAILED; st++)
        if (task_decide((task_status)st, "", next, msg) == TASK_APPLY)
            mask |= 1 << st;
    return mask;
}

/* The UpdateItem request of a change under the given facts. */
static void put_update(sbuf *b, const ddb_store *s, const store_write *w, int allowed,
                       const fact *f, const char *result_image, const char *token)
{
    const store_update *u = &w->update;
    int64_t grace_ttl = w->now + s->grace;
    ttl_case tc = ttl_case_of(u->status, f->ttl, grace_ttl);
    char type_status[TASK_TYPE_MAX + 32];
    snprintf(type_status, sizeof type_status, "%s#%s", f->task_type, task_status_name(u->status));

    begin_request(b, s);
    put_key(b, u->id);
    sbuf_puts(b, ",\"UpdateExpression\":\"SET #st = :st, #msg = :msg, #ut = :now, #ts = :ts, "
                 "#wt = :wt, #hist = list_append(if_not_exists(#hist, :nohist), :hent)");
    bool claim = u->status == TASK_IN_PROGRESS;
    bool keyed = claim && u->claim_key, leased = claim && u->claim_expires;
    if (claim)
        sbuf_puts(b, ", #ct = :now"); /* when it was last claimed: see apply_reclaim() */
    if (keyed)
        sbuf_puts(b, ", #ck = :ck");
    if (leased)
        sbuf_puts(b, ", #ce = :ce, #cl = :cl");
    if (result_image)
        sbuf_puts(b, ", #res = :res");
    if (tc == TTL_GRACE)
        sbuf_puts(b, ", #ttl = :grace");
    else if (tc == TTL_TASK_TTL)
        sbuf_puts(b, ", #ttl = #tt");
    if (!claim) /* the claim the task was under, if any, ends with it */
        sbuf_puts(b, " REMOVE #ck, #ce, #cl");
    sbuf_puts(b, "\",\"ConditionExpression\":\"");
    int n = 0;
    for (int st = TASK_CREATED; st <= TASK_FAILED; st++)
        if (allowed & (1 << st))
            n++;
    if (n == 1) {
        sbuf_puts(b, "#st = :c0");
    } else {
        sbuf_puts(b, "#st IN (");
        for (int i = 0; i < n; i++)
            sbuf_printf(b, "%s:c%d", i ? ", " : "", i);
        sbuf_putc(b, ')');
    }
    sbuf_puts(b, " AND #ty = :ty");
    if (tc == TTL_ABSENT)
        sbuf_puts(b, " AND attribute_not_exists(#tt)");
    else if (tc == TTL_GRACE)
        sbuf_puts(b, " AND #tt <= :grace");
    else if (tc == TTL_TASK_TTL)
        sbuf_puts(b, " AND #tt > :grace");
    if (u->lease_ended)
        sbuf_puts(b, " AND #ce = :le");
    sbuf_puts(b, "\",\"ExpressionAttributeNames\":{\"#st\":\"status\",\"#msg\":\"status_msg\","
                 "\"#ut\":\"updated_time\",\"#ts\":\"type_status\",\"#ty\":\"task_type\","
                 "\"#hist\":\"history\",\"#wt\":\"write_token\"");
    if (claim)
        sbuf_puts(b, ",\"#ct\":\"claimed_time\"");
    if (keyed || !claim)
        sbuf_puts(b, ",\"#ck\":\"claim_key\"");
    if (leased || !claim || u->lease_ended)
        sbuf_puts(b, ",\"#ce\":\"claim_expires\"");
    if (leased || !claim)
        sbuf_puts(b, ",\"#cl\":\"claim_lease\"");
    if (result_image)
        sbuf_puts(b, ",\"#res\":\"result\"");
    if (tc != TTL_NONE)
        sbuf_puts(b, ",\"#tt\":\"task_ttl\"");
    if (tc == TTL_GRACE || tc == TTL_TASK_TTL)
        sbuf_puts(b, ",\"#ttl\":\"ttl\"");
    sbuf_puts(b, "},\"ExpressionAttributeValues\":{");
    put_s(b, false, ":st", task_status_name(u->status));
    put_s(b, true, ":msg", u->status_msg);
    put_n(b, true, ":now", w->now);
    put_s(b, true, ":ts", type_status);
    put_s(b, true, ":ty", f->task_type);
    put_s(b, true, ":wt", token);
    sbuf_puts(b, ",\":nohist\":{\"L\":[]},\":hent\":{\"L\":[");
    put_history_entry(b, u->status, u->status_msg, w->now);
    sbuf_puts(b, "]}");
    if (result_image) {
        sbuf_puts(b, ",\":res\":");
        sbuf_puts(b, result_image);
    }
    if (tc == TTL_GRACE || tc == TTL_TASK_TTL)
        put_n(b, true, ":grace", grace_ttl);
    if (keyed)
        put_claim_key(b, ":ck", u->claim_key);
    if (leased) {
        put_n(b, true, ":ce", u->claim_expires);
        put_s(b, true, ":cl", CLAIM_LEASE_KEY);
    }
    if (u->lease_ended)
        put_n(b, true, ":le", u->lease_ended);
    for (int st = TASK_CREATED, i = 0; st <= TASK_FAILED; st++)
        if (allowed & (1 << st)) {
            char name[16];
            snprintf(name, sizeof name, ":c%d", i++);
            put_s(b, true, name, task_status_name((task_status)st));
        }
    sbuf_puts(b, "},\"ReturnValues\":\"ALL_OLD\","
                 "\"ReturnValuesOnConditionCheckFailure\":\"ALL_OLD\"}");
}

/*
 * Decide a change against the task as it is (cur, owned, moved into
 * w->current): STORE_REPEAT or STORE_CONFLICT, or STORE_OK meaning "apply it",
 * in which case cur's facts go into f and cur is freed.
 */
static store_rc decide(ddb_store *s, store_write *w, task *cur, fact *f)
{
    facts_learn(s, cur);
    switch (store_update_decide(&w->update, cur)) {
    case TASK_REPEAT:
        w->current = *cur;
        return STORE_REPEAT;
    case TASK_CONFLICT:
        w->current = *cur;
        return STORE_CONFLICT;
    case TASK_APPLY:
        break;
    }
    memcpy(f->id, cur->id, sizeof f->id);
    memcpy(f->task_type, cur->task_type, sizeof f->task_type);
    f->ttl = cur->ttl;
    task_clear(cur);
    return STORE_OK;
}

/* The task as it is, read consistently, decided as decide() does. */
static store_rc read_and_decide(ddb_store *s, store_write *w, fact *f)
{
    json_t *item;
    store_rc rc = get_item(s, w->update.id, true, w, &item);
    if (rc != STORE_OK)
        return rc;
    if (!item) {
        facts_forget(s, w->update.id);
        return STORE_NOT_FOUND;
    }
    task cur;
    rc = task_from_item(s, item, &cur, true);
    json_decref(item);
    return rc == STORE_OK ? decide(s, w, &cur, f) : rc;
}

/*
 * Bring a history that has grown to len entries back to TASK_HISTORY_MAX:
 * remove the oldest but the first, and count them in history_dropped. Only
 * if it still has len entries (a concurrent change trims after its own).
 */
static void trim_history(ddb_store *s, const char *id, size_t len)
{
    size_t k = len - TASK_HISTORY_MAX;
    sbuf b = {0};
    begin_request(&b, s);
    put_key(&b, id);
    sbuf_puts(&b, ",\"UpdateExpression\":\"REMOVE ");
    for (size_t i = 1; i <= k; i++)
        sbuf_printf(&b, "%s#h[%zu]", i > 1 ? ", " : "", i);
    sbuf_puts(&b, " ADD #hd :k\",\"ConditionExpression\":\"size(#h) = :len\","
                  "\"ExpressionAttributeNames\":{\"#h\":\"history\",\"#hd\":\"history_dropped\"},"
                  "\"ExpressionAttributeValues\":{");
    put_n(&b, false, ":k", (int64_t)k);
    put_n(&b, true, ":len", (int64_t)len);
    sbuf_puts(&b, "}}");
    aws_response r;
    aws_rc rc = ddb_call(s, "UpdateItem", &b, &r);
    if (!(rc == AWS_ERR_CLIENT && error_is(&r, "ConditionalCheckFailedException")) &&
        failure(s, "UpdateItem", rc, &r) != STORE_OK)
        log_warn("task history not trimmed; the next change trims it", "table", s->table, "task_id",
                 id, NULL);
    aws_response_free(&r);
}

/*
 * The task before the update that wrote item (cur, read from it), as far as the history tells:
 * the status and message of its entry before the last, which that update appended. The rest
 * stays as the update left it (no caller of a written update reads more of the task before).
 */
static void before_last_update(const json_t *item, task *cur)
{
    const json_t *hist = json_object_get(json_object_get(item, "history"), "L");
    size_t n = json_array_size(hist);
    if (n < 2)
        return;
    const json_t *e = json_object_get(json_array_get(hist, n - 2), "M");
    const char *status = attr_s(e, "s"), *msg = attr_s(e, "m");
    task_status st;
    char *copy;
    if (!status || !task_status_parse(status, &st) || !(copy = strdup(msg ? msg : "")))
        return; /* the task after the update, then */
    cur->status = st;
    free(cur->status_msg);
    cur->status_msg = copy;
}

/*
 * The task before an update that was applied but whose old image could not be read (out of
 * memory, a malformed item), as far as the update itself tells: its id, the facts its condition
 * checked, and the status it was changed from when the condition admitted one only (a claim's
 * CREATED, a completion's IN_PROGRESS; where it admitted several the status is left CREATED, the
 * first, not known). Its data, trace, message and times are not known (created_time is left 0,
 * updated_time null): no caller of a written update needs them (a worker's claim has the task's
 * data and type from its message), and none shows them (a PATCH answers 204, no task).
 */
static void known_before(store_write *w, int allowed, const fact *f)
{
    task *cur = &w->current;
    task_clear(cur);
    memcpy(cur->id, w->update.id, sizeof cur->id);
    memcpy(cur->task_type, f->task_type, sizeof cur->task_type);
    cur->ttl = f->ttl;
    cur->updated_time = TASK_NULL_TIME;
    for (int st = TASK_CREATED; st <= TASK_FAILED; st++)
        if (allowed == 1 << st)
            cur->status = (task_status)st;
}

/*
 * One conditional UpdateItem: STORE_OK (w->current filled), STORE_REPEAT,
 * STORE_CONFLICT, STORE_NOT_FOUND or a failure; or *again set, with f
 * corrected, when the status allows the change but the facts were wrong.
 * A failed condition on an item that carries this update's token is this
 * very update, applied by an attempt whose answer was lost (aws_http tried
 * again): STORE_OK, with the task as it was before it.
 */
static store_rc update_once(ddb_store *s, store_write *w, int allowed, fact *f,
                            const char *result_image, const char *token, bool *again)
{
    *again = false;
    sbuf b = {0};
    put_update(&b, s, w, allowed, f, result_image, token);
    aws_response r;
    aws_rc rc = ddb_call(s, "UpdateItem", &b, &r);
    note_call(w, "UpdateItem", &r);
    store_rc out;
    json_t *root = NULL;
    if (rc == AWS_OK) {
        /* applied: the task is as the caller asked, whether or not the old image can be read */
        root = answer_json(&r);
        const json_t *old = json_object_get(root, "Attributes");
        store_rc read = read_task_item(old, &w->current, true);
        if (read == STORE_OK) {
            facts_learn(s, &w->current);
        } else {
            const char *why = !root                     ? "the answer is not JSON"
                              : read == STORE_NOT_FOUND ? "the answer holds no task"
                                                        : UNREADABLE_ITEM;
            log_warn("task updated; its image before the update is unreadable", "table", s->table,
                     "task_id", w->update.id, "reason", why, NULL);
            known_before(w, allowed, f);
        }
        out = STORE_OK;
        size_t len = json_array_size(json_object_get(json_object_get(old, "history"), "L")) + 1;
        if (len > TASK_HISTORY_MAX)
            trim_history(s, w->update.id, len);
    } else if (rc == AWS_ERR_CLIENT && error_is(&r, "ConditionalCheckFailedException")) {
        root = answer_json(&r);
        json_t *item = json_object_get(root, "Item");
        if (!root) {
            /* unreadable (out of memory): whether the task exists is not known */
            log_error("DynamoDB answer is not JSON", "table", s->table, "operation", "UpdateItem",
                      NULL);
            out = STORE_ERROR;
        } else if (!json_is_object(item)) {
            facts_forget(s, w->update.id);
            out = STORE_NOT_FOUND;
        } else {
            task cur;
            out = task_from_item(s, item, &cur, true);
            const char *written_by = attr_s(item, "write_token");
            if (out == STORE_OK && written_by && strcmp(written_by, token) == 0) {
                facts_learn(s, &cur);
                before_last_update(item, &cur);
                w->current = cur;
                size_t len =
                    json_array_size(json_object_get(json_object_get(item, "history"), "L"));
                if (len > TASK_HISTORY_MAX)
                    trim_history(s, w->update.id, len);
            } else if (out == STORE_OK) {
                out = decide(s, w, &cur, f);
                *again = out == STORE_OK; /* the status allows it: the facts were wrong */
            }
        }
    } else {
        out = failure(s, "UpdateItem", rc, &r);
    }
    json_decref(root);
    aws_response_free(&r);
    return out;
}

/*
 * Move the end of the lease of the client's claim that holds the task (w's, made again) to
 * w's: one conditional UpdateItem, taken only while the same claim holds it with an earlier
 * end. Not a change of the task as its readers see it (its stream record shows only the lease).
 * STORE_REPEAT while the claim holds the task, moved or not (a later end is kept); when the task
 * changed since the repeat was decided (the sweep ended the lease, an outcome came),
 * STORE_CONFLICT with w->current the task as it is, as SQLite's writer, deciding and renewing
 * in one step, would have answered; a failure of the call else.
 */
static store_rc renew_lease(ddb_store *s, store_write *w)
{
    const store_update *u = &w->update;
    sbuf b = {0};
    begin_request(&b, s);
    put_key(&b, u->id);
    sbuf_puts(&b, ",\"UpdateExpression\":\"SET #ce = :ce\",\"ConditionExpression\":\"#st = :ip "
                  "AND #ck = :ck AND #sm = :sm AND #ce < :ce\",\"ExpressionAttributeNames\":{"
                  "\"#st\":\"status\",\"#ck\":\"claim_key\",\"#sm\":\"status_msg\","
                  "\"#ce\":\"claim_expires\"},\"ExpressionAttributeValues\":{");
    put_n(&b, false, ":ce", u->claim_expires);
    put_s(&b, true, ":ip", task_status_name(TASK_IN_PROGRESS));
    put_claim_key(&b, ":ck", u->claim_key);
    put_s(&b, true, ":sm", u->status_msg);
    sbuf_puts(&b, "},\"ReturnValuesOnConditionCheckFailure\":\"ALL_OLD\"}");
    aws_response r;
    aws_rc rc = ddb_call(s, "UpdateItem", &b, &r);
    note_call(w, "UpdateItem", &r);
    store_rc out;
    if (rc == AWS_ERR_CLIENT && error_is(&r, "ConditionalCheckFailedException")) {
        /* held by this claim still (a later end, or this renewal's own retry): the repeat it is;
         * changed since it was decided (the sweep ended it, an outcome came): as a claim of the
         * task as it is now would be */
        json_t *root = answer_json(&r);
        json_t *item = json_object_get(root, "Item");
        task now;
        out = !root                   ? STORE_ERROR /* unreadable: not known */
              : !json_is_object(item) ? STORE_NOT_FOUND
                                      : task_from_item(s, item, &now, true);
        if (out == STORE_OK) {
            out = store_update_is_held_claim(u, &now) ? STORE_REPEAT : STORE_CONFLICT;
            task_clear(&w->current);
            w->current = now;
        }
        json_decref(root);
    } else {
        out = failure(s, "UpdateItem", rc, &r);
        out = out == STORE_OK ? STORE_REPEAT : out;
    }
    aws_response_free(&r);
    return out;
}

/* STORE_OK for a change of a task id with a message; else what it is refused without a call. */
static store_rc update_askable(const store_update *u)
{
    return !is_task_id(u->id) ? STORE_NOT_FOUND : !u->status_msg ? STORE_ERROR : STORE_OK;
}

/* A status change, decided and written (the renewal of a claim made again aside). */
static store_rc update_status(ddb_store *s, store_write *w)
{
    const store_update *u = &w->update;
    store_rc refused = update_askable(u);
    if (refused != STORE_OK)
        return refused;
    int allowed = allowed_from(u->status, u->status_msg);
    if (u->from_created)
        allowed &= 1 << TASK_CREATED;
    if (u->lease_ended)
        allowed &= 1 << TASK_IN_PROGRESS;
    fact f;
    store_rc rc = STORE_ERROR;
    if (!allowed || !facts_get(s, u->id, &f)) {
        /* nothing leads there (decided on the read alone), or the facts are unknown */
        rc = read_and_decide(s, w, &f);
        if (rc != STORE_OK)
            return rc;
        if (!allowed) {
            log_error("task_decide applied a change no status leads to", "task_id", u->id, NULL);
            return STORE_ERROR;
        }
    }
    char token[37]; /* this update's own mark on the item: fresh, as a new task id is */
    if (!new_id(s, token))
        return STORE_ERROR;
    char *result_image = NULL;
    if (u->result && !(result_image = attrval_from_text(u->result, NULL)))
        return STORE_ERROR;
    bool again = true;
    for (int attempt = 0; attempt < UPDATE_TRIES && again; attempt++)
        rc = update_once(s, w, allowed, &f, result_image, token, &again);
    free(result_image);
    if (again) {
        rc = STORE_BUSY;
        log_warn("task facts keep disagreeing with the item", "table", s->table, "task_id", u->id,
                 NULL);
    }
    return rc;
}

/* A PATCH: the change, and when it repeats the claim that holds the task, its lease moved,
 * however the repeat was decided (on the read of a task the facts did not know, or on the
 * item a failed condition returned). */
static store_rc apply_update(ddb_store *s, store_write *w)
{
    store_rc rc = update_status(s, w);
    return rc == STORE_REPEAT && store_update_renews(&w->update, &w->current) ? renew_lease(s, w)
                                                                              : rc;
}

/* How many times a reclaim is tried: again once after it trimmed a history left long. */
#define RECLAIM_TRIES 2

/*
 * One try of a reclaim (apply_reclaim()), its write_token token: STORE_OK, STORE_CONFLICT,
 * STORE_NOT_FOUND or a failure; or *again set when only the task's history, left longer than
 * TASK_HISTORY_MAX by a trim that failed, refused it: trimmed now.
 */
static store_rc reclaim_once(ddb_store *s, store_write *w, const char *token, bool *again)
{
    const store_update *u = &w->update;
    *again = false;
    sbuf b = {0};
    begin_request(&b, s);
    put_key(&b, u->id);
    sbuf_puts(&b, ",\"UpdateExpression\":\"SET #hist = list_append(if_not_exists(#hist, "
                  ":nohist), :hent), #sm = :sm, #ut = :now, #ct = :now, #wt = "
                  ":wt REMOVE #ck, #ce, #cl\",\"ConditionExpression\":\"#st = :ip AND "
                  "(attribute_not_exists(#hist) OR size(#hist) <= :hmax)");
    if (u->claimed_before)
        sbuf_puts(&b, " AND (attribute_not_exists(#ct) OR #ct <= :before)");
    sbuf_puts(&b, "\",\"ExpressionAttributeNames\":{\"#hist\":\"history\",\"#st\":\"status\","
                  "\"#sm\":\"status_msg\",\"#ut\":\"updated_time\","
                  "\"#ct\":\"claimed_time\",\"#wt\":\"write_token\",\"#ck\":\"claim_key\","
                  "\"#ce\":\"claim_expires\",\"#cl\":\"claim_lease\"},"
                  "\"ExpressionAttributeValues\":{\":nohist\":{\"L\":[]},\":hent\":{\"L\":[");
    put_history_entry(&b, TASK_IN_PROGRESS, u->status_msg, w->now);
    sbuf_puts(&b, "]}");
    put_s(&b, true, ":ip", task_status_name(TASK_IN_PROGRESS));
    put_s(&b, true, ":sm", u->status_msg);
    put_n(&b, true, ":now", w->now);
    put_s(&b, true, ":wt", token);
    put_n(&b, true, ":hmax", TASK_HISTORY_MAX);
    if (u->claimed_before)
        put_n(&b, true, ":before", u->claimed_before);
    sbuf_puts(&b, "},\"ReturnValues\":\"UPDATED_OLD\","
                  "\"ReturnValuesOnConditionCheckFailure\":\"ALL_OLD\"}");
    aws_response r;
    aws_rc rc = ddb_call(s, "UpdateItem", &b, &r);
    note_call(w, "UpdateItem", &r);
    store_rc out;
    json_t *root = NULL;
    if (rc == AWS_OK) {
        root = answer_json(&r);
        const json_t *old = json_object_get(root, "Attributes");
        size_t len = json_array_size(json_object_get(json_object_get(old, "history"), "L")) + 1;
        if (len > TASK_HISTORY_MAX)
            trim_history(s, u->id, len);
        out = STORE_OK;
    } else if (rc == AWS_ERR_CLIENT && error_is(&r, "ConditionalCheckFailedException")) {
        root = answer_json(&r);
        json_t *item = json_object_get(root, "Item");
        out = json_is_object(item) ? task_from_item(s, item, &w->current, true)
              : root               ? STORE_NOT_FOUND
                                   : STORE_ERROR; /* unreadable: not known */
        const char *written_by = attr_s(item, "write_token");
        size_t len = json_array_size(json_object_get(json_object_get(item, "history"), "L"));
        int64_t claimed = 0;
        bool own = written_by && strcmp(written_by, token) == 0; /* its answer lost: done */
        bool history_alone = w->current.status == TASK_IN_PROGRESS && len > TASK_HISTORY_MAX &&
                             (!u->claimed_before || !attr_n(item, "claimed_time", &claimed) ||
                              claimed <= u->claimed_before);
        if (out == STORE_OK && own && len > TASK_HISTORY_MAX) {
            trim_history(s, u->id, len); /* as its answer would have had it */
        } else if (out == STORE_OK && !own && history_alone) {
            trim_history(s, u->id, len);
            task_clear(&w->current);
            *again = true;
        } else if (out == STORE_OK && !own) {
            out = STORE_CONFLICT;
        }
    } else {
        out = failure(s, "UpdateItem", rc, &r);
    }
    json_decref(root);
    aws_response_free(&r);
    return out;
}

/*
 * A redelivery's claim: append IN_PROGRESS to the history of a task that is
 * IN_PROGRESS and set its status_msg and updated_time, in one conditional
 * UpdateItem (trimmed as an update is), so that the task and its stream
 * record show the run again. It sets claimed_time, as a claim does; with claimed_before, it is
 * conditioned on the last claim being no later (none known: an item claimed before claimed_time was
 * kept), so that of two deliveries that would run the task again at once, one does. Its write_token
 * tells its own attempt whose answer was lost from another delivery's, as an update's does.
 * It is also conditioned on the history holding at most TASK_HISTORY_MAX entries, as each
 * change's trim leaves it: a history a failed trim left longer is trimmed and the reclaim tried
 * again, so that no run of reclaims grows an item past the room its creation kept
 * (ITEM_GROWTH_MAX); STORE_BUSY when it stays long.
 */
static store_rc apply_reclaim(ddb_store *s, store_write *w)
{
    const store_update *u = &w->update;
    store_rc rc = update_askable(u);
    if (rc != STORE_OK)
        return rc;
    char token[37];
    if (!new_id(s, token))
        return STORE_ERROR;
    bool again = true;
    for (int i = 0; i < RECLAIM_TRIES && again; i++)
        rc = reclaim_once(s, w, token, &again);
    if (again) {
        log_warn("task history stays untrimmed; the reclaim waits for it", "table", s->table,
                 "task_id", u->id, NULL);
        rc = STORE_BUSY;
    }
    return rc;
}

/* ---- submit ------------------------------------------------------------ */

/* Run the write now, on the caller's thread, and report it. */
static void ddb_submit(store *base, store_write *w)
{
    ddb_store *s = (ddb_store *)base;
    int64_t started = clock_mono_ms();
    memset(&w->current, 0, sizeof w->current);
    w->unknown = false;
    w->size = w->size_limit = 0;
    w->call = NULL;
    w->call_request_id[0] = '\0';
    if (w->kind == STORE_WRITE_CREATE)
        w->rc = apply_create(s, w);
    else if (w->kind == STORE_WRITE_UPDATE)
        w->rc = apply_update(s, w);
    else
        w->rc = apply_reclaim(s, w);
    if (w->rc == STORE_OK && w->kind != STORE_WRITE_RECLAIM) {
        if (s->listener.changed) {
            bool created = w->kind == STORE_WRITE_CREATE;
            const char *type = created ? w->create.task_type : w->current.task_type;
            s->listener.changed(s->listener.ctx, type, created ? TASK_CREATED : w->update.status,
                                created);
        }
        if (s->listener.committed)
            s->listener.committed(s->listener.ctx, 1, (double)(clock_mono_ms() - started) / 1e3,
                                  true);
    }
    w->done(w);
}

/*
 * The span of a write: the call that decided it, named as OpenTelemetry's AWS SDK conventions
 * name one (aws.dynamodb.table_names is a list there; a span's attributes are single values,
 * and every call names the one table). Nothing when no call was made.
 */
static void ddb_trace_write(store *base, const store_write *w, span *sp)
{
    const ddb_store *s = (const ddb_store *)base;
    if (!w->call)
        return;
    aws_span_call(sp, s->client, "DynamoDB", w->call, w->call_request_id);
    span_set_str(sp, "aws.dynamodb.table_names", s->table);
}

/* ---- open / close ------------------------------------------------------ */

static void ddb_close(store *base)
{
    ddb_store *s = (ddb_store *)base;
    if (!s)
        return;
    pthread_mutex_destroy(&s->ids_mu);
    pthread_mutex_destroy(&s->secret_mu);
    pthread_mutex_destroy(&s->facts_mu);
    free(s->table);
    free(s);
}

store *dynamodb_store_open(const dynamodb_store_options *o, char *err, size_t errlen)
{
    if (!o || !o->table || !*o->table || !o->client) {
        errbuf_set(err, errlen, "the DynamoDB store needs a table name and a client");
        return NULL;
    }
    if (o->retention_grace < 0) {
        errbuf_set(err, errlen, "retention grace must not be negative");
        return NULL;
    }
    ddb_store *s = calloc(1, sizeof *s);
    if (!s || !(s->table = strdup(o->table))) {
        free(s);
        errbuf_set(err, errlen, "out of memory");
        return NULL;
    }
    s->base.ops = &dynamodb_ops;
    s->client = o->client;
    s->grace = o->retention_grace;
    if (o->listener)
        s->listener = *o->listener;
    pthread_mutex_init(&s->ids_mu, NULL);
    pthread_mutex_init(&s->secret_mu, NULL);
    pthread_mutex_init(&s->facts_mu, NULL);
    return &s->base;
}

static const store_ops dynamodb_ops = {
    .system = "dynamodb",
    .submit = ddb_submit,
    .get_task = ddb_get_task,
    .list_tasks = ddb_list_tasks,
    .get_history = ddb_get_history,
    .ping = ddb_ping,
    .secret = ddb_secret,
    .trace_write = ddb_trace_write,
    .expired_claims = ddb_expired_claims,
    .close = ddb_close,
};
