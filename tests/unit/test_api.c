/*
 * Unit tests for the API as a function and for the store contract: every
 * case runs over each store in a table of factories, with no transport, no
 * pipeline and no telemetry — the way an API Gateway translator drives it.
 *
 * Factories: "sqlite" (a database in a temporary directory) always;
 * "dynamodb" when DYNAMODB_ENDPOINT names a DynamoDB (Local) endpoint. Then
 * each fixture creates a fresh table from deploy/table.json and deletes it
 * afterwards (support_aws/ddb_test.h). "dynamodb, cold" runs every case
 * again with each operation through a store of its own, which knows
 * nothing of the task: the usual case on AWS.
 *
 * The API cases check routes and status codes; the contract cases check
 * what the store port promises to every caller: creation and reads, pages
 * newest first with each filter, the transition rules with exactly one
 * claimer winning, idempotency keys and their window, data and results
 * round-tripping, ttl, the commit listener and a stable secret. Cases that
 * look at DynamoDB's own items (the TTL attribute, key items, a missing
 * table) run only over that factory and are skipped otherwise.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "api/api.h"
#include "util/clock.h"
#include "aws/aws_http.h"
#include "aws/dynamodb_store.h"
#include "support_aws/ddb_test.h"
#include "support_local/sqlite_exec.h"
#include "core/attrval.h"
#include "core/pagetoken.h"
#include "store/store_sqlite.h"
#include "util/log.h"
#include "util/metrics.h"
#include "core/sbuf.h"
#include "support/store_front.h"
#include "support/tmpdir.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>

#define NOW         1700000000 /* the requests' clock */
#define GRACE       3600       /* retention grace given to the DynamoDB store */
#define IDEM_WINDOW (24 * 3600)

typedef struct fixture {
    char dir[256];  /* sqlite: temporary directory */
    char db[320];   /* sqlite: database path */
    char table[64]; /* dynamodb: this fixture's table */
    store *store;
    store_listener listener;
    atomic_int created, changed, committed; /* what the listener heard */
    config cfg;
    api api;
} fixture;

/* One kind of store the cases run over. */
typedef struct factory {
    const char *name;
    /* Make the backing storage and open a store on it; NULL on failure. */
    store *(*open)(fixture *f);
    /* Open a second store on the same storage (the first stays open unless closed). */
    store *(*reopen)(fixture *f, bool first_closed);
    /* Remove the backing storage, after the stores are closed. */
    void (*destroy)(fixture *f);
} factory;

static const factory *current; /* the factory of the group running now */

static int64_t fixed_now(void)
{
    return NOW;
}

/* ---- the listener ------------------------------------------------------ */

static void on_changed(void *ctx, const char *task_type, task_status status, bool created)
{
    fixture *f = ctx;
    (void)task_type;
    (void)status;
    atomic_fetch_add(&f->changed, 1);
    if (created)
        atomic_fetch_add(&f->created, 1);
}

static void on_committed(void *ctx, size_t writes, double seconds, bool durable)
{
    fixture *f = ctx;
    (void)writes;
    (void)seconds;
    (void)durable;
    atomic_fetch_add(&f->committed, 1);
}

/* ---- sqlite ------------------------------------------------------------ */

static store *sqlite_open_path(fixture *f)
{
    char err[256];
    store_sqlite_options o = {.path = f->db, .sync = STORE_SYNC_NORMAL, .listener = &f->listener};
    store *s = store_sqlite_open(&o, err, sizeof err);
    if (!s)
        fprintf(stderr, "sqlite store: %s\n", err);
    return s;
}

static store *sqlite_open(fixture *f)
{
    if (!test_tmpdir_make(f->dir, sizeof f->dir, "taskd-api-test"))
        return NULL;
    snprintf(f->db, sizeof f->db, "%s/t.db", f->dir);
    return sqlite_open_path(f);
}

static store *sqlite_reopen(fixture *f, bool first_closed)
{
    /* one process serves a database at a time (PATH.lock) */
    return first_closed ? sqlite_open_path(f) : NULL;
}

static void sqlite_destroy(fixture *f)
{
    assert_int_equal(test_tmpdir_remove(f->dir), 0);
}

/* ---- dynamodb ---------------------------------------------------------- */

static store *ddb_open_table(fixture *f, const char *table)
{
    char err[256];
    dynamodb_store_options o = {.table = table,
                                .client = ddb_test_client(),
                                .listener = &f->listener,
                                .retention_grace = GRACE};
    store *s = dynamodb_store_open(&o, err, sizeof err);
    if (!s)
        fprintf(stderr, "dynamodb store: %s\n", err);
    return s;
}

static store *ddb_open(fixture *f)
{
    static atomic_int counter;
    snprintf(f->table, sizeof f->table, "taskd_test_%ld_%d", (long)getpid(),
             atomic_fetch_add(&counter, 1));
    return ddb_test_create_table(f->table) ? ddb_open_table(f, f->table) : NULL;
}

static store *ddb_reopen(fixture *f, bool first_closed)
{
    (void)first_closed;
    return ddb_open_table(f, f->table);
}

static void ddb_destroy(fixture *f)
{
    ddb_test_delete_table(f->table);
}

/* ---- dynamodb, cold ----------------------------------------------------- */

/*
 * The same table, with every operation made through a store opened for it alone and closed
 * after: what a task meets on AWS, where the function that takes a change is seldom the one
 * that made the task, so its store knows nothing of it (no facts cached, no secret read).
 * The DynamoDB store opens without a network call and answers each write before its submit
 * returns, so an instance per operation is cheap and sound.
 */
typedef struct cold_store {
    store base;
    fixture *f;
} cold_store;

/* A store of its own for one operation; NULL (logged) when it cannot open. */
static store *cold_instance(store *s)
{
    cold_store *c = (cold_store *)s;
    return ddb_open_table(c->f, c->f->table);
}

static void cold_submit(store *s, store_write *w)
{
    store *one = cold_instance(s);
    if (!one) {
        w->rc = STORE_ERROR;
        w->done(w);
        return;
    }
    store_submit(one, w); /* done before it returns */
    store_close(one);
}

#define COLD_CALL(s, call)                                                                         \
    do {                                                                                           \
        store *one = cold_instance(s);                                                             \
        if (!one)                                                                                  \
            return STORE_ERROR;                                                                    \
        store_rc rc = call;                                                                        \
        store_close(one);                                                                          \
        return rc;                                                                                 \
    } while (0)

static store_rc cold_get_task(store *s, const char *id, task *out)
{
    COLD_CALL(s, store_get_task(one, id, out));
}

static store_rc cold_list_tasks(store *s, const store_list_query *q, store_page *out)
{
    COLD_CALL(s, store_list_tasks(one, q, out));
}

static store_rc cold_get_history(store *s, const char *id, task_history *out)
{
    COLD_CALL(s, store_get_history(one, id, out));
}

static store_rc cold_ping(store *s)
{
    COLD_CALL(s, store_ping(one));
}

static store_rc cold_secret(store *s, uint8_t key[16])
{
    COLD_CALL(s, store_secret(one, key));
}

static store_rc cold_expired_claims(store *s, int64_t now, store_claim *out, size_t max, size_t *n)
{
    COLD_CALL(s, one->ops->expired_claims(one, now, out, max, n));
}

#undef COLD_CALL

static void cold_trace_write(store *s, const store_write *w, span *sp)
{
    store *one = cold_instance(s);
    if (one) {
        store_trace_write(one, w, sp);
        store_close(one);
    }
}

static void cold_close(store *s)
{
    free(s);
}

static store *cold_wrap(fixture *f)
{
    static const store_ops ops = {
        .system = "dynamodb",
        .submit = cold_submit,
        .get_task = cold_get_task,
        .list_tasks = cold_list_tasks,
        .get_history = cold_get_history,
        .ping = cold_ping,
        .secret = cold_secret,
        .trace_write = cold_trace_write,
        .expired_claims = cold_expired_claims,
        .close = cold_close,
    };
    cold_store *c = calloc(1, sizeof *c);
    if (c)
        *c = (cold_store){.base = {&ops}, .f = f};
    return c ? &c->base : NULL;
}

static store *cold_open(fixture *f)
{
    store *probe = ddb_open(f); /* makes the table */
    if (!probe)
        return NULL;
    store_close(probe);
    return cold_wrap(f);
}

static store *cold_reopen(fixture *f, bool first_closed)
{
    (void)first_closed;
    return cold_wrap(f);
}

static const factory factories[] = {
    {"sqlite", sqlite_open, sqlite_reopen, sqlite_destroy},
    {"dynamodb", ddb_open, ddb_reopen, ddb_destroy},
    {"dynamodb, cold", cold_open, cold_reopen, ddb_destroy},
};

/* Over DynamoDB, warm or cold. */
static bool on_dynamodb(void)
{
    return strncmp(current->name, "dynamodb", strlen("dynamodb")) == 0;
}

static bool on_cold_dynamodb(void)
{
    return strcmp(current->name, "dynamodb, cold") == 0;
}

/* ---- fixture ----------------------------------------------------------- */

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->listener = (store_listener){.changed = on_changed, .committed = on_committed, .ctx = f};
    f->store = current->open(f);
    assert_non_null(f->store);
    assert_true(config_defaults(&f->cfg));
    assert_true(api_init(&f->api, f->store, &f->cfg, NULL, NULL, fixed_now));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    api_free(&f->api);
    store_close(f->store);
    config_free(&f->cfg);
    current->destroy(f);
    free(f);
    return 0;
}

/* ---- API helpers ------------------------------------------------------- */

/* One request's headers: a single optional name/value pair. */
typedef struct headers {
    const char *name, *value;
} headers;

static const char *lookup_header(void *ctx, const char *name)
{
    headers *h = ctx;
    return h && h->name && strcasecmp(h->name, name) == 0 ? h->value : NULL;
}

static const char *no_query(void *ctx, const char *name)
{
    (void)ctx;
    (void)name;
    return NULL;
}

static api_response call(fixture *f, const char *method, const char *path, const char *body,
                         headers *h)
{
    api_request req = {.method = method,
                       .path = path,
                       .query = no_query,
                       .header = lookup_header,
                       .ctx = h,
                       .body = body ? body : "",
                       .body_len = body ? strlen(body) : 0};
    api_response resp;
    api_handle(&f->api, &req, &resp);
    return resp;
}

static const char *header_value(const api_response *r, const char *name)
{
    for (int i = 0; i < r->n_headers; i++)
        if (strcmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    return NULL;
}

static json_t *body_json(const api_response *r)
{
    json_t *j = json_loadb(r->body, r->body_len, 0, NULL);
    assert_non_null(j);
    return j;
}

/* Query parameters as name/value pairs, NULL-terminated; the first of a name wins. */
static const char *lookup_query(void *ctx, const char *name)
{
    const char *const *p = ctx;
    for (; p && p[0]; p += 2)
        if (strcmp(p[0], name) == 0)
            return p[1];
    return NULL;
}

static const char *no_header(void *ctx, const char *name)
{
    (void)ctx;
    (void)name;
    return NULL;
}

/* A request with query parameters (params: name, value, ..., NULL) and no headers. */
static api_response call_q(fixture *f, const char *method, const char *path,
                           const char *const *params, const char *body)
{
    api_request req = {.method = method,
                       .path = path,
                       .query = lookup_query,
                       .header = no_header,
                       .ctx = (void *)params,
                       .body = body ? body : "",
                       .body_len = body ? strlen(body) : 0};
    api_response resp;
    api_handle(&f->api, &req, &resp);
    return resp;
}

/* Expect this status with exactly this detail. */
static void assert_error(const api_response *r, int status, const char *detail)
{
    if (r->status != status)
        fail_msg("status %d, want %d: %.*s", r->status, status, (int)r->body_len,
                 r->body ? r->body : "");
    json_t *j = body_json(r);
    assert_int_equal(json_object_size(j), 1);
    assert_string_equal(json_string_value(json_object_get(j, "detail")), detail);
    json_decref(j);
}

/* Expect a 307 to location, without a body. */
static void assert_redirect(const api_response *r, const char *location)
{
    if (r->status != 307)
        fail_msg("status %d, want 307 to %s: %.*s", r->status, location, (int)r->body_len,
                 r->body ? r->body : "");
    const char *got = header_value(r, "Location");
    assert_non_null(got);
    assert_string_equal(got, location);
    assert_null(r->body);
    assert_int_equal(r->body_len, 0);
    assert_null(r->content_type);
}

/* The ids of a page (newest first) into ids; the next_token (or "") into token. */
static size_t page_ids(const api_response *r, char ids[][37], size_t max, char *token,
                       size_t token_size)
{
    if (r->status != 200)
        fail_msg("list answered %d: %.*s", r->status, (int)r->body_len, r->body ? r->body : "");
    json_t *j = body_json(r);
    json_t *tasks = json_object_get(j, "tasks");
    assert_true(json_is_array(tasks));
    size_t n = json_array_size(tasks);
    assert_true(n <= max);
    for (size_t i = 0; i < n; i++)
        snprintf(ids[i], 37, "%s",
                 json_string_value(json_object_get(json_array_get(tasks, i), "id")));
    json_t *next = json_object_get(j, "next_token");
    assert_true(json_is_null(next) || json_is_string(next));
    snprintf(token, token_size, "%s", json_is_string(next) ? json_string_value(next) : "");
    json_decref(j);
    return n;
}

/* ---- store helpers ----------------------------------------------------- */

static store_rc create(fixture *f, const char *type, const char *data, int64_t ttl, const char *key,
                       int64_t now, char id[37])
{
    store_new_task t = {
        .task_type = type, .data = data ? data : "{}", .ttl = ttl, .idempotency_key = key};
    return store_create_task(f->store, &t, now, id);
}

/* Create and expect success; the new id in id. */
/*
 * A task made after those made before it: on the cold runs each create has a store instance of
 * its own, as Lambda functions do, and instances order their ids only across milliseconds (two
 * made in one millisecond sort by chance: test_contract_ids_ordered), so a create there waits for
 * the clock to pass the last one's millisecond; the listing tests then know their newest.
 */
static void must_create(fixture *f, const char *type, char id[37])
{
    static int64_t last_ms;
    while (on_cold_dynamodb() && clock_unix_ms() <= last_ms)
        usleep(100);
    assert_int_equal(create(f, type, NULL, TASK_NULL_TIME, NULL, NOW, id), STORE_OK);
    last_ms = clock_unix_ms(); /* at or past the millisecond in the id */
}

static store_rc update(fixture *f, const char *id, task_status status, const char *msg,
                       const char *result, task *cur)
{
    store_update u = {.id = id, .status = status, .status_msg = msg, .result = result};
    return store_update_task(f->store, &u, NOW, cur);
}

static void must_update(fixture *f, const char *id, task_status status, const char *msg)
{
    assert_int_equal(update(f, id, status, msg, NULL, NULL), STORE_OK);
}

/* Assert that JSON text a equals JSON text b as values (maps may come back in another order). */
static void assert_json_same(const char *a, const char *b)
{
    json_t *ja = json_loads(a, JSON_DECODE_ANY, NULL), *jb = json_loads(b, JSON_DECODE_ANY, NULL);
    if (!ja || !jb || !json_equal(ja, jb))
        fail_msg("JSON differs: %s vs %s", a, b);
    json_decref(ja);
    json_decref(jb);
}

/* ---- API cases --------------------------------------------------------- */

static void test_create_read_update(void **state)
{
    fixture *f = *state;
    api_response r =
        call(f, "POST", "/tasks", "{\"task_type\":\"TASK1\",\"data\":{\"a\":1}}", NULL);
    assert_int_equal(r.status, 201);
    json_t *j = body_json(&r);
    char id[37];
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(j, "id")));
    char location[64];
    snprintf(location, sizeof location, "/tasks/%s", id);
    assert_string_equal(header_value(&r, "Location"), location);
    json_decref(j);
    api_response_free(&r);

    r = call(f, "GET", location, NULL, NULL);
    assert_int_equal(r.status, 200);
    j = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "CREATED");
    assert_int_equal(json_integer_value(json_object_get(j, "created_time")), NOW);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "data"), "a")), 1);
    json_decref(j);
    api_response_free(&r);

    r = call(f, "PATCH", location, "{\"status\":\"IN_PROGRESS\"}", NULL);
    assert_int_equal(r.status, 204);
    assert_null(r.body);
    api_response_free(&r);
    r = call(f, "PATCH", location, "{\"status\":\"IN_PROGRESS\"}", NULL);
    assert_int_equal(r.status, 409); /* a second claimer loses */
    j = body_json(&r);
    assert_non_null(strstr(json_string_value(json_object_get(j, "detail")), "IN_PROGRESS"));
    json_decref(j);
    api_response_free(&r);
}

static void test_idempotency_key(void **state)
{
    fixture *f = *state;
    headers h = {"Idempotency-Key", "order-42"};
    api_response a = call(f, "POST", "/tasks", "{\"task_type\":\"TASK2\"}", &h);
    api_response b = call(f, "POST", "/tasks", "{\"task_type\":\"TASK2\"}", &h);
    assert_int_equal(a.status, 201);
    assert_int_equal(b.status, 200);
    assert_string_equal(header_value(&a, "Location"), header_value(&b, "Location"));
    api_response_free(&a);
    api_response_free(&b);
}

/* Delete task id behind the store's back, as a sweep or DynamoDB's ttl deletion does. */
#define MAYBE_MADE "0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e5f"

/* For a store in front of the fixture's: a create the store did not confirm (a remote store that
 * did not answer in time), which may have made task MAYBE_MADE. */
static bool answer_create_unconfirmed(store_front *sf, store_write *w)
{
    (void)sf;
    if (w->kind != STORE_WRITE_CREATE)
        return false;
    w->rc = STORE_BUSY;
    w->unknown = true;
    memcpy(w->id, MAYBE_MADE, sizeof w->id);
    return true;
}

/* A create whose outcome is unknown is not "busy; retry": a retry could make the task twice.
 * The answer names the task it may have made, or, with a key, says to retry with it. */
static void test_create_not_confirmed(void **state)
{
    fixture *f = *state;
    store_front sf;
    store_front_init(&sf, f->store, answer_create_unconfirmed, STORE_OK);
    api own = f->api;
    assert_true(api_init(&f->api, &sf.base, &f->cfg, NULL, NULL, fixed_now));
    api_response r = call(f, "POST", "/tasks", "{\"task_type\":\"TASK1\"}", NULL);
    assert_error(
        &r, 503,
        "The task store did not confirm the write; the task may have been created as " MAYBE_MADE
        ": GET /tasks/" MAYBE_MADE " tells before you create it again");
    assert_string_equal(header_value(&r, "Retry-After"), "1");
    api_response_free(&r);
    headers key = {"Idempotency-Key", "order-7"};
    r = call(f, "POST", "/tasks", "{\"task_type\":\"TASK1\"}", &key);
    assert_error(&r, 503,
                 "The task store did not confirm the write; the task may have been created: "
                 "retry with the same Idempotency-Key");
    api_response_free(&r);
    api_free(&f->api);
    f->api = own;
    assert_int_equal(sf.answered, 2);
}

static void delete_task_row(fixture *f, const char *id)
{
    if (on_dynamodb()) {
        json_t *req = json_pack("{s:s, s:{s:{s:s}}}", "TableName", f->table, "Key", "id", "S", id);
        char err[256] = "";
        json_t *ans = ddb_test_call("DeleteItem", req, err, sizeof err);
        json_decref(req);
        if (!ans)
            fail_msg("DeleteItem: %s", err);
        json_decref(ans);
        return;
    }
    assert_int_equal(test_sqlite_exec(f->db, "DELETE FROM tasks WHERE id = ?1", id), 1);
}

/* A key whose task is gone (deleted by its ttl while the key lived on) creates a new task: the
 * old answer would name a task that is no more. */
static void test_idempotency_key_of_a_gone_task(void **state)
{
    fixture *f = *state;
    headers h = {"Idempotency-Key", "order-43"};
    api_response a = call(f, "POST", "/tasks", "{\"task_type\":\"TASK2\"}", &h);
    assert_int_equal(a.status, 201);
    const char *old = header_value(&a, "Location") + strlen("/tasks/");
    delete_task_row(f, old);
    api_response b = call(f, "POST", "/tasks", "{\"task_type\":\"TASK2\"}", &h);
    assert_int_equal(b.status, 201);
    assert_string_not_equal(header_value(&a, "Location"), header_value(&b, "Location"));
    api_response c = call(f, "POST", "/tasks", "{\"task_type\":\"TASK2\"}", &h);
    assert_int_equal(c.status, 200); /* and the key holds the new one */
    assert_string_equal(header_value(&b, "Location"), header_value(&c, "Location"));
    api_response d = call(f, "GET", header_value(&c, "Location"), NULL, NULL);
    assert_int_equal(d.status, 200);
    api_response_free(&a);
    api_response_free(&b);
    api_response_free(&c);
    api_response_free(&d);
}

static void test_routing_errors(void **state)
{
    fixture *f = *state;
    api_response r = call(f, "DELETE", "/tasks", NULL, NULL);
    assert_int_equal(r.status, 405);
    assert_string_equal(header_value(&r, "Allow"), "GET, HEAD, POST");
    api_response_free(&r);
    r = call(f, "GET", "/nope", NULL, NULL);
    assert_int_equal(r.status, 404);
    api_response_free(&r);
    r = call(f, "GET", "/tasks/not-a-uuid", NULL, NULL);
    assert_int_equal(r.status, 404);
    api_response_free(&r);
    r = call(f, "POST", "/tasks", "{\"task_type\":\"NOPE\"}", NULL);
    assert_int_equal(r.status, 422);
    api_response_free(&r);
}

/* The body limit is the API's own rule, whatever transport calls it; its 413, given before
 * routing, is counted under route "unmatched", as the transport's own refusals are. */
static void test_body_limit(void **state)
{
    fixture *f = *state;
    f->cfg.body_limit = 64;
    f->api.telemetry.metrics = metrics_new();
    assert_non_null(f->api.telemetry.metrics);
    trace_declare_metrics(f->api.telemetry.metrics);
    char big[80];
    memset(big, ' ', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    memcpy(big, "{\"task_type\":\"TASK2\"}", 21); /* then spaces: valid JSON of any length */
    api_response r = call(f, "POST", "/tasks", big, NULL);
    assert_int_equal(r.status, 413);
    json_t *j = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "detail")),
                        "Request body too large (limit 64 bytes)");
    json_decref(j);
    api_response_free(&r);
    sbuf text = {0};
    metrics_write(f->api.telemetry.metrics, &text);
    assert_false(sbuf_failed(&text));
    if (!strstr(text.data, "taskd_http_requests_total{route=\"unmatched\",method=\"POST\","
                           "code=\"413\"} 1\n"))
        fail_msg("the 413 is not counted as unmatched:\n%s", text.data);
    sbuf_free(&text);
    metrics_free(f->api.telemetry.metrics);
    f->api.telemetry.metrics = NULL;
    /* at the limit it is read, and a route that takes no body still refuses a larger one */
    big[64] = '\0';
    r = call(f, "POST", "/tasks", big, NULL);
    assert_int_equal(r.status, 201);
    api_response_free(&r);
    big[64] = ' ';
    r = call(f, "GET", "/health", big, NULL);
    assert_int_equal(r.status, 413);
    api_response_free(&r);
}

/*
 * A body that could not be made is a 500 whose detail says why: memory ran out ("Out of memory"),
 * or the text could not be formatted, which is not said to be memory.
 */
static void test_a_failed_body_says_why(void **state)
{
    (void)state;
    sbuf b = {0};
    sbuf_printf(&b, "%lc", (wint_t)0x20ac); /* the C locale has no euro sign */
    assert_int_equal(sbuf_error(&b), EILSEQ);
    api_response r = {0};
    api_sbuf_error(&r, &b);
    assert_error(&r, 500, "Cannot make the answer: a character the locale cannot write");
    api_response_free(&r);
    sbuf_free(&b);
    sbuf_append(&b, "x", SIZE_MAX); /* no such memory */
    assert_int_equal(sbuf_error(&b), ENOMEM);
    r = (api_response){0};
    api_sbuf_error(&r, &b);
    assert_error(&r, 500, "Out of memory");
    api_response_free(&r);
    sbuf_free(&b);
    r = (api_response){0};
    api_sbuf_error(&r, NULL); /* memory ran out elsewhere */
    assert_error(&r, 500, "Out of memory");
    api_response_free(&r);
}

/*
 * A data limit (the AWS API role's: what one SNS message holds) counts the data as a queue
 * message carries it, its JSON text, which can be longer than the body that sent it: a task that
 * could be stored but never published is refused, not left behind.
 */
static void test_data_limit(void **state)
{
    fixture *f = *state;
    f->cfg.data_limit = 40;
    /* 25 bytes of data as sent, 52 as text: {"n":1000000000.0,...} */
    api_response r =
        call(f, "POST", "/tasks",
             "{\"task_type\":\"TASK2\",\"data\":{\"n\":1e9,\"m\":1e9,\"o\":1e9}}", NULL);
    assert_int_equal(r.status, 413);
    json_t *j = body_json(&r);
    assert_string_equal(
        json_string_value(json_object_get(j, "detail")),
        "Task data too large for a queue message: 52 bytes as JSON (limit 40 bytes)");
    json_decref(j);
    api_response_free(&r);
    r = call(f, "GET", "/tasks", NULL, NULL);
    j = body_json(&r);
    assert_int_equal(json_array_size(json_object_get(j, "tasks")), 0);
    json_decref(j);
    api_response_free(&r);
    /* at the limit it is taken */
    r = call(f, "POST", "/tasks",
             "{\"task_type\":\"TASK2\",\"data\":{\"s\":\"01234567890123456789012345678901\"}}",
             NULL);
    assert_int_equal(r.status, 201);
    api_response_free(&r);
}

/* ---- access (core/auth, docs/auth.md) ---------------------------------- */

/* Several headers: name, value, ..., NULL. */
static const char *lookup_headers(void *ctx, const char *name)
{
    const char *const *p = ctx;
    for (; p && p[0]; p += 2)
        if (strcasecmp(p[0], name) == 0)
            return p[1];
    return NULL;
}

static api_response call_h(fixture *f, const char *method, const char *path, const char *body,
                           const char *const *hdrs)
{
    api_request req = {.method = method,
                       .path = path,
                       .query = no_query,
                       .header = lookup_headers,
                       .ctx = (void *)hdrs,
                       .body = body ? body : "",
                       .body_len = body ? strlen(body) : 0};
    api_response resp;
    api_handle(&f->api, &req, &resp);
    return resp;
}

/* ---- trace context: traceparent and tracestate ---------------------------- */

#define TS_TID "4bf92f3577b34da6a3ce929d0e0e4736"
#define TS_TP  "00-" TS_TID "-00f067aa0ba902b7-01"

/* header_at() over name, value, ... pairs, NULL-terminated: the i-th field of the name. */
static const char *lookup_header_at(void *ctx, const char *name, size_t i)
{
    const char *const *p = ctx;
    for (; p && p[0]; p += 2)
        if (strcasecmp(p[0], name) == 0 && i-- == 0)
            return p[1];
    return NULL;
}

/* POST a task with these headers (header_at too when all_lines); the stored task in *t. */
static void post_traced(fixture *f, const char *const *hdrs, bool all_lines, task *t)
{
    api_request req = {.method = "POST",
                       .path = "/tasks",
                       .query = no_query,
                       .header = lookup_headers,
                       .header_at = all_lines ? lookup_header_at : NULL,
                       .ctx = (void *)hdrs,
                       .body = "{\"task_type\":\"TASK1\"}",
                       .body_len = strlen("{\"task_type\":\"TASK1\"}")};
    api_response r;
    api_handle(&f->api, &req, &r);
    if (r.status != 201) /* a tracestate never fails a POST */
        fail_msg("status %d: %.*s", r.status, (int)r.body_len, r.body ? r.body : "");
    const char *location = header_value(&r, "Location");
    assert_non_null(location);
    assert_int_equal(store_get_task(f->store, location + strlen("/tasks/"), t), STORE_OK);
    api_response_free(&r);
}

/* The request's tracestate is stored in its normal form with the task, only beside a
 * traceparent that was taken; a bad one is dropped whole and the trace still continues. */
static void test_tracestate_with_traceparent(void **state)
{
    fixture *f = *state;
    task t;

    const char *const good[] = {"traceparent", TS_TP, "tracestate",
                                " rojo=00f067aa0ba902b7 ,, congo=t61rcWkgMzE\t", NULL};
    post_traced(f, good, false, &t);
    assert_int_equal(strncmp(t.trace, "00-" TS_TID "-", 36), 0);
    assert_non_null(t.tracestate);
    assert_string_equal(t.tracestate, "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
    task_clear(&t);

    /* several tracestate lines are one list, in order, where the transport gives them all */
    const char *const lines[] = {"traceparent", TS_TP,          "tracestate", "rojo=1",
                                 "tracestate",  "congo=2, x=3", NULL};
    post_traced(f, lines, true, &t);
    assert_string_equal(t.tracestate, "rojo=1,congo=2,x=3");
    task_clear(&t);
    /* where it gives one value, that one */
    post_traced(f, lines, false, &t);
    assert_string_equal(t.tracestate, "rojo=1");
    task_clear(&t);
    /* a key twice across the lines: dropped */
    const char *const twice[] = {"traceparent", TS_TP, "tracestate", "a=1",
                                 "tracestate",  "a=2", NULL};
    post_traced(f, twice, true, &t);
    assert_null(t.tracestate);
    task_clear(&t);

    /* a bad tracestate is dropped whole; the trace still continues the traceparent */
    const char *const bad[] = {"traceparent", TS_TP, "tracestate", "ok=1,BAD=2", NULL};
    post_traced(f, bad, false, &t);
    assert_null(t.tracestate);
    assert_int_equal(strncmp(t.trace, "00-" TS_TID "-", 36), 0);
    task_clear(&t);

    /* no traceparent, one that does not parse, or an X-Ray header: the tracestate is ignored */
    const char *const alone[] = {"tracestate", "rojo=1", NULL};
    post_traced(f, alone, true, &t);
    assert_null(t.tracestate);
    assert_non_null(t.trace);
    task_clear(&t);
    const char *const broken[] = {"traceparent", "00-" TS_TID "-0000000000000000-01", "tracestate",
                                  "rojo=1", NULL};
    post_traced(f, broken, true, &t);
    assert_null(t.tracestate);
    assert_int_not_equal(strncmp(t.trace, "00-" TS_TID "-", 36), 0);
    task_clear(&t);
    const char *const xray[] = {"X-Amzn-Trace-Id",
                                "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1", "tracestate",
                                "rojo=1", NULL};
    post_traced(f, xray, true, &t);
    assert_null(t.tracestate);
    assert_int_equal(strncmp(t.trace, "00-5759e988bd862e3fe1be46a994272793-", 36), 0);
    task_clear(&t);

    /* two traceparent fields: neither is taken (a new trace, no tracestate), as API Gateway's
     * join of the two does not parse either; an X-Ray header then counts */
    const char *const two[] = {
        "traceparent", TS_TP,    "traceparent", "00-" TS_TID "-1111111111111111-01",
        "tracestate",  "rojo=1", NULL};
    post_traced(f, two, true, &t);
    assert_null(t.tracestate);
    assert_int_not_equal(strncmp(t.trace, "00-" TS_TID "-", 36), 0);
    task_clear(&t);
    const char *const two_and_xray[] = {"traceparent",
                                        TS_TP,
                                        "traceparent",
                                        TS_TP,
                                        "X-Amzn-Trace-Id",
                                        "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1",
                                        NULL};
    post_traced(f, two_and_xray, true, &t);
    assert_int_equal(strncmp(t.trace, "00-5759e988bd862e3fe1be46a994272793-", 36), 0);
    task_clear(&t);
}

/* api_init() leaves the access policy off, as the Lambda API role needs: API Gateway checks. */
static void test_access_off_by_default(void **state)
{
    fixture *f = *state;
    assert_null(f->api.access);
    static const char *const hostile[] = {
        "Host",           "evil.example", "Origin", "http://evil.example",
        "Sec-Fetch-Site", "cross-site",   NULL};
    api_response r = call_h(f, "POST", "/tasks", "{\"task_type\":\"TASK1\"}", hostile);
    assert_int_equal(r.status, 201);
    api_response_free(&r);
    r = call_h(f, "GET", "/health", NULL, hostile);
    assert_int_equal(r.status, 200);
    api_response_free(&r);
}

static void test_access_policy(void **state)
{
    fixture *f = *state;
    uint8_t key[AUTH_KEY_LEN] = {7};
    auth_policy p;
    auth_init(&p, key);
    char err[128];
    assert_true(auth_parse_token_list(&p, "right-token", err, sizeof err));
    p.check_host = true;
    f->api.access = &p;

    static const char *const none[] = {"Host", "127.0.0.1:8080", NULL};
    api_response r = call_h(f, "GET", "/health", NULL, none);
    assert_error(&r, 401, "Not authenticated: send Authorization: Bearer <token>");
    assert_string_equal(header_value(&r, "WWW-Authenticate"), "Bearer realm=\"taskd\"");
    api_response_free(&r);
    r = call_h(f, "GET", "/no/such/path", NULL, none); /* no route map for strangers */
    assert_int_equal(r.status, 401);
    api_response_free(&r);

    static const char *const wrong[] = {"Host", "127.0.0.1:8080", "Authorization",
                                        "Bearer wrong-token", NULL};
    r = call_h(f, "GET", "/tasks", NULL, wrong);
    assert_error(&r, 401, "Invalid bearer token");
    assert_string_equal(header_value(&r, "WWW-Authenticate"),
                        "Bearer realm=\"taskd\", error=\"invalid_token\"");
    api_response_free(&r);

    static const char *const basic[] = {"Authorization", "Basic cmlnaHQtdG9rZW4=", NULL};
    r = call_h(f, "GET", "/tasks", NULL, basic);
    assert_int_equal(r.status, 401);
    assert_string_equal(header_value(&r, "WWW-Authenticate"), "Bearer realm=\"taskd\"");
    api_response_free(&r);

    static const char *const right[] = {"Host", "localhost:8080", "Authorization",
                                        "Bearer right-token", NULL};
    r = call_h(f, "GET", "/health", NULL, right);
    assert_int_equal(r.status, 200);
    api_response_free(&r);
    r = call_h(f, "POST", "/tasks", "{\"task_type\":\"TASK1\"}", right);
    assert_int_equal(r.status, 201);
    api_response_free(&r);

    static const char *const cross[] = {"Host",
                                        "localhost:8080",
                                        "Authorization",
                                        "Bearer right-token",
                                        "Origin",
                                        "http://evil.example",
                                        NULL};
    r = call_h(f, "POST", "/tasks", "{\"task_type\":\"TASK1\"}", cross);
    assert_error(&r, 403, "Cross-origin request refused: Origin does not match Host");
    assert_null(header_value(&r, "WWW-Authenticate"));
    api_response_free(&r);

    static const char *const same[] = {
        "Host",   "localhost:8080",        "Authorization",  "Bearer right-token",
        "Origin", "http://localhost:8080", "Sec-Fetch-Site", "same-origin",
        NULL};
    r = call_h(f, "POST", "/tasks", "{\"task_type\":\"TASK1\"}", same);
    assert_int_equal(r.status, 201);
    api_response_free(&r);

    static const char *const rebound[] = {"Host", "evil.example:8080", "Authorization",
                                          "Bearer right-token", NULL};
    r = call_h(f, "GET", "/tasks", NULL, rebound);
    assert_int_equal(r.status, 403);
    api_response_free(&r);

    f->api.access = NULL;
    auth_free(&p);
}

/* Without a pipeline, its routes are neither served nor documented, and what is documented is
 * served. */
static void test_no_pipeline_routes(void **state)
{
    fixture *f = *state;
    api_response r = call(f, "GET", "/queues", NULL, NULL);
    assert_int_equal(r.status, 404);
    api_response_free(&r);
    r = call(f, "GET", "/openapi.json", NULL, NULL);
    assert_int_equal(r.status, 200);
    json_t *doc = body_json(&r);
    json_t *paths = json_object_get(doc, "paths");
    assert_non_null(json_object_get(paths, "/tasks"));
    assert_null(json_object_get(paths, "/queues"));
    assert_null(json_object_get(paths, "/metrics"));
    assert_null(json_object_get(paths, "/events"));
    /* every operation documented is served: none is a route's 405 or no route's 404 */
    const char *path;
    json_t *item;
    json_object_foreach(paths, path, item)
    {
        char url[128];
        size_t n = 0;
        for (const char *p = path; *p && n < sizeof url - 40; p++) {
            if (*p != '{') {
                url[n++] = *p;
                continue;
            }
            /* a task that does not exist; a name that is not a file's or a queue's */
            bool is_task = strncmp(p, "{task_id}", 9) == 0;
            n += (size_t)snprintf(url + n, sizeof url - n, "%s",
                                  is_task ? "0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e5f" : "x");
            p = strchr(p, '}');
        }
        url[n] = '\0';
        static const char *const methods[][2] = {
            {"get", "GET"}, {"post", "POST"}, {"patch", "PATCH"}};
        for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
            if (!json_object_get(item, methods[i][0]))
                continue;
            api_response op = call(f, methods[i][1], url, NULL, NULL);
            if (op.status == 405 ||
                (op.status == 404 && op.body && strstr(op.body, "\"Not Found\"")))
                fail_msg("%s %s (documented as %s): %d %.*s", methods[i][1], url, path, op.status,
                         (int)op.body_len, op.body ? op.body : "");
            api_response_free(&op);
        }
    }
    json_decref(doc);
    api_response_free(&r);
}

/* Without a pipeline (Lambda) wait is validated and answered at once; /events is not a route
 * there, nor are the queues, redrive, metrics, trace view and dashboard: a 404 for every method,
 * with no Allow, whose detail names the route as taskd's and what the AWS deployment has instead
 * (a path that is none of them, /events/ among them, is "Not Found"). */
static void test_no_pipeline_live_routes(void **state)
{
    fixture *f = *state;
    char id[37], path[64];
    must_create(f, "TASK2", id);
    snprintf(path, sizeof path, "/tasks/%s", id);
    static const char *const wait60[] = {"wait", "60", NULL};
    int64_t start = clock_mono_ms();
    api_response r = call_q(f, "GET", path, wait60, NULL);
    assert_int_equal(r.status, 200);
    assert_true(clock_mono_ms() - start < 10000); /* not held for the wait */
    json_t *j = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "CREATED");
    json_decref(j);
    api_response_free(&r);
    static const char *const wait0[] = {"wait", "0", NULL};
    r = call_q(f, "GET", path, wait0, NULL);
    assert_int_equal(r.status, 422);
    assert_non_null(strstr(r.body, "\"loc\":[\"query\",\"wait\"]"));
    api_response_free(&r);
    static const char *const methods[] = {"GET", "HEAD", "POST", "PATCH", "PUT"};
    static const char *const routes[][2] = {
        {"/events", "GET /events is served by taskd only: the AWS deployment's task changes are "
                    "in its DynamoDB table's stream"},
        {"/events/", "Not Found"},
        {"/queues", "GET /queues is served by taskd only: the AWS deployment's queue counts are "
                    "SQS's, in its console and CloudWatch metrics"},
        {"/queues/task1/redrive",
         "POST /queues/{name}/redrive is served by taskd only: on AWS a dead-letter queue's "
         "worker fails each dead letter's task and deletes the message, so there is none to "
         "send back"},
        {"/metrics", "GET /metrics is served by taskd only: the AWS deployment's functions send "
                     "their metrics to CloudWatch"},
        {"/tasks/0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e5f/trace",
         "GET /tasks/{task_id}/trace is served by taskd only: the AWS deployment's traces are in "
         "X-Ray"},
        {"/", "GET / is served by taskd only"},
        {"/dashboard/app.js", "GET /dashboard/{name} is served by taskd only"}};
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        for (size_t k = 0; k < sizeof routes / sizeof routes[0]; k++) {
            r = call(f, methods[i], routes[k][0], "{}", NULL);
            if (r.status != 404 || api_has_header(&r, "Allow") || api_has_header(&r, "Location"))
                fail_msg("%s %s: %d %.*s", methods[i], routes[k][0], r.status, (int)r.body_len,
                         r.body ? r.body : "");
            assert_error(&r, 404, routes[k][1]);
            assert_null(r.stream);
            api_response_free(&r);
        }
}

/* A stand-in for the pipeline's waiters: wait_task() answers rc, and with cancel the task fails
 * while the wait is being registered (the race get_task() reads the task again for); unwait_task()
 * answers taken, and when it is false it has called ready() first, as a wait woken already. */
typedef struct fake_waiters {
    fixture *f;
    const char *path;
    store_rc rc;
    bool cancel, taken;
    int waits, unwaits;
} fake_waiters;

static store_rc fake_wait_task(void *ctx, const char *task_id, int64_t deadline_ms,
                               api_exchange *ex)
{
    (void)task_id;
    (void)deadline_ms;
    (void)ex;
    fake_waiters *w = ctx;
    w->waits++;
    if (w->cancel) {
        api_response r = call(w->f, "PATCH", w->path,
                              "{\"status\":\"FAILED\",\"status_msg\":\"cancelled\"}", NULL);
        assert_int_equal(r.status, 204);
        api_response_free(&r);
    }
    return w->rc;
}

static bool fake_unwait_task(void *ctx, api_exchange *ex)
{
    fake_waiters *w = ctx;
    w->unwaits++;
    if (!w->taken)
        ex->ready(ex);
    return w->taken;
}

/* GET /tasks/{id}?wait= over the waiters' answers: busy is a 503 with Retry-After; stopping, and
 * a task that finished while its wait was registered (taken back, or already woken), answer the
 * task as it is now. */
static void test_wait_over_the_waiters_answers(void **state)
{
    fixture *f = *state;
    char id[37], path[64];
    must_create(f, "TASK2", id);
    snprintf(path, sizeof path, "/tasks/%s", id);
    fake_waiters w = {.f = f, .path = path};
    api_pipeline p = {.wait_task = fake_wait_task, .unwait_task = fake_unwait_task, .ctx = &w};
    f->api.pipeline = &p;
    static const char *const wait5[] = {"wait", "5", NULL};

    w.rc = STORE_BUSY;
    api_response r = call_q(f, "GET", path, wait5, NULL);
    assert_error(&r, 503, "Too many requests are waiting for tasks; retry shortly");
    assert_string_equal(header_value(&r, "Retry-After"), "1");
    api_response_free(&r);

    w.rc = STORE_ERROR; /* stopping */
    r = call_q(f, "GET", path, wait5, NULL);
    assert_int_equal(r.status, 200);
    json_t *j = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "CREATED");
    json_decref(j);
    api_response_free(&r);
    assert_int_equal(w.unwaits, 0);

    for (int taken = 1; taken >= 0; taken--) {
        if (!taken) { /* a fresh task to cancel again */
            must_create(f, "TASK2", id);
            snprintf(path, sizeof path, "/tasks/%s", id);
        }
        w = (fake_waiters){.f = f, .path = path, .rc = STORE_OK, .cancel = true, .taken = taken};
        r = call_q(f, "GET", path, wait5, NULL);
        assert_int_equal(r.status, 200);
        j = body_json(&r);
        assert_string_equal(json_string_value(json_object_get(j, "status")), "FAILED");
        assert_string_equal(json_string_value(json_object_get(j, "status_msg")), "cancelled");
        json_decref(j);
        api_response_free(&r);
        assert_int_equal(w.waits, 1);
        assert_int_equal(w.unwaits, 1);
    }
    f->api.pipeline = NULL;
}

/* PATCH answers over the store's verdicts: 404, 409 naming the status, 204 for a repeat. */
static void test_patch_status_codes(void **state)
{
    fixture *f = *state;
    char id[37], path[64];
    must_create(f, "TASK2", id);
    snprintf(path, sizeof path, "/tasks/%s", id);
    api_response r = call(f, "PATCH", "/tasks/0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e5f",
                          "{\"status\":\"FAILED\"}", NULL);
    assert_int_equal(r.status, 404);
    api_response_free(&r);
    r = call(f, "PATCH", path, "{\"status\":\"COMPLETED\"}", NULL);
    assert_int_equal(r.status, 409);
    json_t *j = body_json(&r);
    assert_non_null(strstr(json_string_value(json_object_get(j, "detail")), "CREATED"));
    json_decref(j);
    api_response_free(&r);
    r = call(f, "PATCH", path, "{\"status\":\"FAILED\",\"status_msg\":\"cancelled\"}", NULL);
    assert_int_equal(r.status, 204);
    api_response_free(&r);
    r = call(f, "PATCH", path, "{\"status\":\"FAILED\",\"status_msg\":\"cancelled\"}", NULL);
    assert_int_equal(r.status, 204); /* the same change again */
    api_response_free(&r);
    r = call(f, "PATCH", path, "{\"status\":\"FAILED\",\"status_msg\":\"other\"}", NULL);
    assert_int_equal(r.status, 409);
    api_response_free(&r);
    r = call(f, "GET", "/health", NULL, NULL);
    assert_int_equal(r.status, 200);
    api_response_free(&r);
}

#define OTHER_FILTERS                                                                              \
    "next_token belongs to a listing with other filters: repeat its status and task_type, or "     \
    "leave them out"

/* A path with one trailing slash too many is sent to the route, as FastAPI does. */
static void test_trailing_slash_redirect(void **state)
{
    fixture *f = *state;
    char id[37], path[64], slashed[72];
    must_create(f, "TASK2", id);
    snprintf(path, sizeof path, "/tasks/%s", id);
    snprintf(slashed, sizeof slashed, "%s/", path);
    static const char *const none[] = {NULL};

    api_response r = call_q(f, "GET", "/tasks/", none, NULL);
    assert_redirect(&r, "/tasks");
    api_response_free(&r);
    r = call_q(f, "GET", slashed, none, NULL);
    assert_redirect(&r, path);
    api_response_free(&r);
    r = call_q(f, "GET", "/health/", none, NULL);
    assert_redirect(&r, "/health");
    api_response_free(&r);
    r = call_q(f, "GET", "/openapi.json/", none, NULL);
    assert_redirect(&r, "/openapi.json");
    api_response_free(&r);

    /* every method: a POST or PATCH is redirected before its body is looked at */
    r = call_q(f, "POST", "/tasks/", none, "{\"task_type\":\"TASK1\"}");
    assert_redirect(&r, "/tasks");
    api_response_free(&r);
    r = call_q(f, "POST", "/tasks/", none, "not even JSON");
    assert_redirect(&r, "/tasks");
    api_response_free(&r);
    r = call_q(f, "PATCH", slashed, none, "{\"status\":\"FAILED\",\"status_msg\":\"x\"}");
    assert_redirect(&r, path);
    api_response_free(&r);
    r = call_q(f, "HEAD", "/tasks/", none, NULL);
    assert_redirect(&r, "/tasks");
    api_response_free(&r);
    r = call_q(f, "DELETE", "/tasks/", none, NULL);
    assert_redirect(&r, "/tasks");
    api_response_free(&r);
    /* none of it created or changed a task */
    store_page p;
    store_list_query q = {.limit = 10};
    assert_int_equal(store_list_tasks(f->store, &q, &p), STORE_OK);
    assert_int_equal(p.count, 1);
    assert_string_equal(p.tasks[0].id, id);
    assert_int_equal(p.tasks[0].status, TASK_CREATED);
    store_page_free(&p);

    /* the path is written back percent-encoded, its slashes kept */
    r = call_q(f, "GET", "/tasks/a b%\xc3\xa9/", none, NULL);
    assert_redirect(&r, "/tasks/a%20b%25%C3%A9");
    api_response_free(&r);

    /* every trailing slash goes, as Starlette strips them */
    static const char *const slashes[][2] = {
        {"/tasks//", "/tasks"}, {"/tasks///", "/tasks"}, {"/health//", "/health"}};
    for (size_t i = 0; i < sizeof slashes / sizeof slashes[0]; i++) {
        r = call_q(f, "GET", slashes[i][0], none, NULL);
        assert_redirect(&r, slashes[i][1]);
        api_response_free(&r);
    }

    /* not a route without its slashes: 404 as before */
    static const char *const not_found[] = {"/nope/",    "/tasks/x/y/", "/queues/",
                                            "/metrics/", "/task/",      "/nope//"};
    for (size_t i = 0; i < sizeof not_found / sizeof not_found[0]; i++) {
        r = call_q(f, "GET", not_found[i], none, NULL);
        if (r.status != 404)
            fail_msg("GET %s answered %d", not_found[i], r.status);
        assert_error(&r, 404, "Not Found");
        assert_null(header_value(&r, "Location"));
        api_response_free(&r);
    }
    /* and the routes themselves answer, not redirect */
    r = call_q(f, "GET", "/tasks", none, NULL);
    assert_int_equal(r.status, 200);
    api_response_free(&r);
    r = call_q(f, "GET", path, none, NULL);
    assert_int_equal(r.status, 200);
    api_response_free(&r);
}

/* The redirect carries the query parameters the API reads, re-encoded, and only those. */
static void test_trailing_slash_redirect_keeps_query(void **state)
{
    fixture *f = *state;
    static const char *const two[] = {"foo", "bar", "status", "CREATED", "limit", "1", NULL};
    api_response r = call_q(f, "GET", "/tasks/", two, NULL);
    assert_redirect(&r, "/tasks?limit=1&status=CREATED");
    api_response_free(&r);

    static const char *const all[] = {
        "task_type", "TASK 1/\xc3\xa9", "next_token", "ab-_=", "status",
        "a&b=c",     "limit",           "",           NULL};
    r = call_q(f, "GET", "/tasks/", all, NULL);
    assert_redirect(
        &r, "/tasks?limit=&next_token=ab-_%3D&status=a%26b%3Dc&task_type=TASK%201%2F%C3%A9");
    api_response_free(&r);

    static const char *const unknown_only[] = {"x", "1", NULL};
    r = call_q(f, "POST", "/tasks/", unknown_only, "{}");
    assert_redirect(&r, "/tasks");
    api_response_free(&r);

    /* a real page token fits in the Location and comes back unchanged */
    char ids[3][37], token[PAGETOKEN_TEXT_MAX], id[37];
    for (int i = 0; i < 3; i++)
        must_create(f, "TASK3", id);
    static const char *const page1[] = {"limit",     "1",     "status", "CREATED",
                                        "task_type", "TASK3", NULL};
    r = call_q(f, "GET", "/tasks", page1, NULL);
    page_ids(&r, ids, 3, token, sizeof token);
    api_response_free(&r);
    assert_true(*token);
    const char *const page2[] = {"next_token", token,   "status", "CREATED", "task_type",
                                 "TASK3",      "limit", "1",      NULL};
    r = call_q(f, "GET", "/tasks/", page2, NULL);
    char want[512];
    snprintf(want, sizeof want, "/tasks?limit=1&next_token=%s&status=CREATED&task_type=TASK3",
             token);
    assert_redirect(&r, want);
    api_response_free(&r);
}

/* An empty next_token is the first page. */
static void test_list_empty_token(void **state)
{
    fixture *f = *state;
    char a[37], b[37], c[37];
    must_create(f, "TASK1", a);
    must_create(f, "TASK2", b);
    must_create(f, "TASK1", c);
    char ids[4][37], token[PAGETOKEN_TEXT_MAX];
    static const char *const empty[] = {"next_token", "", NULL};
    api_response r = call_q(f, "GET", "/tasks", empty, NULL);
    assert_int_equal(page_ids(&r, ids, 4, token, sizeof token), 3);
    assert_string_equal(ids[0], c);
    assert_string_equal(ids[2], a);
    assert_string_equal(token, "");
    api_response_free(&r);
    static const char *const filtered[] = {"next_token", "",  "task_type", "TASK1",
                                           "limit",      "1", NULL};
    r = call_q(f, "GET", "/tasks", filtered, NULL);
    assert_int_equal(page_ids(&r, ids, 4, token, sizeof token), 1);
    assert_string_equal(ids[0], c);
    assert_true(*token);
    api_response_free(&r);
}

/* A token carries its listing's filters: the token alone continues that listing. */
static void test_list_token_carries_filters(void **state)
{
    fixture *f = *state;
    /* 12 tasks: TASK1 and TASK2 in turn; every third TASK2 FAILED */
    char all[12][37];
    for (int i = 0; i < 12; i++) {
        must_create(f, i % 2 ? "TASK2" : "TASK1", all[i]);
        if (i % 6 == 5)
            must_update(f, all[i], TASK_FAILED, "cancelled");
    }
    static const struct {
        const char *status, *task_type;
    } filters[] = {{NULL, "TASK2"}, {"CREATED", NULL}, {"CREATED", "TASK2"}, {NULL, NULL}};
    for (size_t fi = 0; fi < sizeof filters / sizeof filters[0]; fi++) {
        /* what the filter selects, newest first */
        char want[12][37];
        size_t nwant = 0;
        for (int i = 11; i >= 0; i--) {
            bool is2 = i % 2, failed = i % 6 == 5;
            if (filters[fi].task_type && !is2)
                continue;
            if (filters[fi].status && failed)
                continue;
            memcpy(want[nwant++], all[i], 37);
        }
        const char *first[8] = {"limit", "2"};
        size_t k = 2;
        if (filters[fi].status) {
            first[k++] = "status";
            first[k++] = filters[fi].status;
        }
        if (filters[fi].task_type) {
            first[k++] = "task_type";
            first[k++] = filters[fi].task_type;
        }
        first[k] = NULL;
        char ids[12][37], got[24][37], token[PAGETOKEN_TEXT_MAX];
        api_response r = call_q(f, "GET", "/tasks", first, NULL);
        size_t n = page_ids(&r, ids, 12, token, sizeof token);
        api_response_free(&r);
        size_t ngot = 0;
        memcpy(got, ids, n * 37);
        ngot = n;
        /* then the token alone, with a limit that changes from page to page */
        int pages = 1;
        while (*token) {
            char limit[4];
            snprintf(limit, sizeof limit, "%d", 1 + pages % 3);
            const char *const next[] = {"next_token", token, "limit", limit, NULL};
            char tok[PAGETOKEN_TEXT_MAX];
            snprintf(tok, sizeof tok, "%s", token);
            r = call_q(f, "GET", "/tasks", next, NULL);
            n = page_ids(&r, ids, 12, token, sizeof token);
            api_response_free(&r);
            assert_true(n >= 1 && n <= (size_t)(1 + pages % 3));
            assert_true(ngot + n <= 24);
            memcpy(got[ngot], ids, n * 37);
            ngot += n;
            /* the same filters repeated with the token: the same page */
            const char *again[10] = {"next_token", tok, "limit", limit};
            k = 4;
            for (size_t j = 2; first[j]; j++)
                again[k++] = first[j];
            again[k] = NULL;
            char ids2[12][37], token2[PAGETOKEN_TEXT_MAX];
            r = call_q(f, "GET", "/tasks", again, NULL);
            assert_int_equal(page_ids(&r, ids2, 12, token2, sizeof token2), n);
            assert_memory_equal(ids2, ids, n * 37);
            assert_string_equal(token2, token);
            api_response_free(&r);
            pages++;
            assert_true(pages < 20);
        }
        if (ngot != nwant)
            fail_msg("filter %zu: %zu tasks, want %zu", fi, ngot, nwant);
        for (size_t i = 0; i < nwant; i++)
            assert_string_equal(got[i], want[i]);
    }
}

/* A token with another filter is a 400 naming the rule; a garbled one is "Invalid next_token". */
static void test_list_token_conflicting_filters(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < 4; i++) {
        char id[37];
        must_create(f, i % 2 ? "TASK2" : "TASK1", id);
    }
    char ids[4][37], typed[PAGETOKEN_TEXT_MAX], plain[PAGETOKEN_TEXT_MAX], both[PAGETOKEN_TEXT_MAX];
    static const char *const q1[] = {"limit", "1", "task_type", "TASK2", NULL};
    api_response r = call_q(f, "GET", "/tasks", q1, NULL);
    page_ids(&r, ids, 4, typed, sizeof typed);
    api_response_free(&r);
    static const char *const q2[] = {"limit", "1", NULL};
    r = call_q(f, "GET", "/tasks", q2, NULL);
    page_ids(&r, ids, 4, plain, sizeof plain);
    api_response_free(&r);
    static const char *const q3[] = {"limit", "1", "task_type", "TASK1", "status", "CREATED", NULL};
    r = call_q(f, "GET", "/tasks", q3, NULL);
    page_ids(&r, ids, 4, both, sizeof both);
    api_response_free(&r);
    assert_true(*typed && *plain && *both);

    const char *const conflicts[][7] = {
        {"next_token", typed, "task_type", "TASK1", NULL},
        {"next_token", typed, "status", "CREATED", NULL},
        {"next_token", typed, "task_type", "TASK2", "status", "CREATED", NULL},
        {"next_token", plain, "task_type", "TASK2", NULL},
        {"next_token", plain, "status", "FAILED", NULL},
        {"next_token", both, "task_type", "TASK2", NULL},
        {"next_token", both, "status", "FAILED", NULL},
        {"next_token", both, "task_type", "TASK1", "status", "FAILED", NULL},
    };
    for (size_t i = 0; i < sizeof conflicts / sizeof conflicts[0]; i++) {
        r = call_q(f, "GET", "/tasks", conflicts[i], NULL);
        assert_error(&r, 400, OTHER_FILTERS);
        api_response_free(&r);
    }
    /* a part of the token's filters, or all of them, is fine */
    const char *const fine[][7] = {
        {"next_token", both, NULL},
        {"next_token", both, "task_type", "TASK1", NULL},
        {"next_token", both, "status", "CREATED", NULL},
        {"next_token", both, "status", "CREATED", "task_type", "TASK1", NULL},
        {"next_token", typed, "task_type", "TASK2", NULL},
        {"next_token", plain, NULL},
    };
    for (size_t i = 0; i < sizeof fine / sizeof fine[0]; i++) {
        r = call_q(f, "GET", "/tasks", fine[i], NULL);
        assert_int_equal(r.status, 200);
        api_response_free(&r);
    }
    /* a token that is not one of ours */
    char tampered[PAGETOKEN_TEXT_MAX];
    snprintf(tampered, sizeof tampered, "%s", typed);
    tampered[5] = tampered[5] == 'A' ? 'B' : 'A';
    const char *const garbage[] = {"abc", "!!!!", "null", tampered};
    for (size_t i = 0; i < sizeof garbage / sizeof garbage[0]; i++) {
        const char *const q[] = {"next_token", garbage[i], NULL};
        r = call_q(f, "GET", "/tasks", q, NULL);
        assert_error(&r, 400, "Invalid next_token");
        api_response_free(&r);
    }
    /* the query's own 422 comes before the token is read */
    const char *const bad[] = {"next_token", typed, "task_type", "NOPE", NULL};
    r = call_q(f, "GET", "/tasks", bad, NULL);
    assert_int_equal(r.status, 422);
    api_response_free(&r);
}

/* The list's query errors: pydantic's items, every one named. */
static void test_list_query_422(void **state)
{
    fixture *f = *state;
    static const char *const q[] = {"task_type", "NOPE", "status", "done", "limit", "0", NULL};
    api_response r = call_q(f, "GET", "/tasks", q, NULL);
    assert_int_equal(r.status, 422);
    json_t *want =
        json_loads("{\"detail\":["
                   "{\"type\":\"greater_than_equal\",\"loc\":[\"query\",\"limit\"],"
                   "\"msg\":\"Input should be greater than or equal to "
                   "1\",\"input\":\"0\",\"ctx\":{\"ge\":1}},"
                   "{\"type\":\"literal_error\",\"loc\":[\"query\",\"status\"],"
                   "\"msg\":\"Input should be 'CREATED', 'IN_PROGRESS', 'COMPLETED' or 'FAILED'\","
                   "\"input\":\"done\","
                   "\"ctx\":{\"expected\":\"'CREATED', 'IN_PROGRESS', 'COMPLETED' or 'FAILED'\"}},"
                   "{\"type\":\"literal_error\",\"loc\":[\"query\",\"task_type\"],"
                   "\"msg\":\"Input should be 'TASK1', 'TASK2' or 'TASK3'\",\"input\":\"NOPE\","
                   "\"ctx\":{\"expected\":\"'TASK1', 'TASK2' or 'TASK3'\"}}]}",
                   0, NULL);
    assert_non_null(want);
    json_t *got = body_json(&r);
    if (!json_equal(got, want))
        fail_msg("422 body: %.*s", (int)r.body_len, r.body);
    json_decref(got);
    json_decref(want);
    api_response_free(&r);
}

/* ---- contract: create and read ----------------------------------------- */

static void test_contract_create_get(void **state)
{
    fixture *f = *state;
    char id[37];
    store_new_task nt = {.task_type = "TASK3",
                         .data = "{\"k\":\"v\"}",
                         .ttl = 1662381756,
                         .trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"};
    assert_int_equal(store_create_task(f->store, &nt, NOW, id), STORE_OK);
    assert_int_equal(strlen(id), 36);
    assert_int_equal(id[14], '7'); /* UUIDv7 */

    task t;
    assert_int_equal(store_get_task(f->store, id, &t), STORE_OK);
    assert_string_equal(t.id, id);
    assert_string_equal(t.task_type, "TASK3");
    assert_int_equal(t.status, TASK_CREATED);
    assert_string_equal(t.status_msg, "");
    assert_int_equal(t.created_time, NOW);
    assert_int_equal(t.updated_time, TASK_NULL_TIME);
    assert_int_equal(t.ttl, 1662381756);
    assert_json_same(t.data, "{\"k\":\"v\"}");
    assert_null(t.result);
    assert_string_equal(t.trace, nt.trace);
    assert_null(t.tracestate);
    task_clear(&t);

    /* a tracestate is kept beside the trace */
    nt.tracestate = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE";
    assert_int_equal(store_create_task(f->store, &nt, NOW, id), STORE_OK);
    assert_int_equal(store_get_task(f->store, id, &t), STORE_OK);
    assert_string_equal(t.trace, nt.trace);
    assert_non_null(t.tracestate);
    assert_string_equal(t.tracestate, nt.tracestate);
    task_clear(&t);

    /* absent, and not an id at all */
    assert_int_equal(store_get_task(f->store, "0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e5f", &t),
                     STORE_NOT_FOUND);
    assert_int_equal(store_get_task(f->store, "not-a-uuid", &t), STORE_NOT_FOUND);
    assert_int_equal(store_get_task(f->store, "", &t), STORE_NOT_FOUND);
    assert_int_equal(store_ping(f->store), STORE_OK);
}

/* Ids made one after another sort in creation order. */
static void test_contract_ids_ordered(void **state)
{
    fixture *f = *state;
    if (on_cold_dynamodb())
        skip(); /* ids are ordered per store: two made in one millisecond elsewhere, by chance */
    char prev[37] = "", id[37];
    for (int i = 0; i < 20; i++) {
        must_create(f, "TASK1", id);
        assert_true(strcmp(prev, id) < 0);
        memcpy(prev, id, sizeof id);
    }
}

/* ---- contract: lists --------------------------------------------------- */

/* Page through q (limit as given) and collect ids, newest first; returns the count. */
static size_t collect(fixture *f, store_list_query q, char ids[][37], size_t max, int *pages)
{
    size_t n = 0;
    char before[37];
    *pages = 0;
    for (;;) {
        store_page p;
        assert_int_equal(store_list_tasks(f->store, &q, &p), STORE_OK);
        (*pages)++;
        assert_true(p.count <= (size_t)q.limit);
        for (size_t i = 0; i < p.count; i++) {
            assert_true(n < max);
            assert_null(p.tasks[i].data); /* the list form */
            assert_non_null(p.tasks[i].status_msg);
            if (q.status)
                assert_string_equal(task_status_name(p.tasks[i].status), q.status);
            if (q.task_type)
                assert_string_equal(p.tasks[i].task_type, q.task_type);
            memcpy(ids[n++], p.tasks[i].id, 37);
        }
        int more = p.more;
        if (more) {
            assert_true(p.count == (size_t)q.limit);
            memcpy(before, p.tasks[p.count - 1].id, 37);
        }
        store_page_free(&p);
        if (!more)
            break;
        q.before_id = before;
    }
    return n;
}

static void test_contract_list_paging(void **state)
{
    fixture *f = *state;
    char ids[7][37];
    for (int i = 0; i < 7; i++)
        must_create(f, i % 2 ? "TASK2" : "TASK1", ids[i]);

    store_page p;
    store_list_query q = {.limit = 3};
    assert_int_equal(store_list_tasks(f->store, &q, &p), STORE_OK);
    assert_int_equal(p.count, 3);
    assert_true(p.more);
    for (int i = 0; i < 3; i++)
        assert_string_equal(p.tasks[i].id, ids[6 - i]); /* newest first */
    assert_int_equal(p.tasks[0].created_time, NOW);
    assert_int_equal(p.tasks[0].updated_time, TASK_NULL_TIME);
    store_page_free(&p);

    char got[16][37];
    int pages;
    size_t n = collect(f, (store_list_query){.limit = 3}, got, 16, &pages);
    assert_int_equal(n, 7);
    assert_int_equal(pages, 3);
    for (int i = 0; i < 7; i++)
        assert_string_equal(got[i], ids[6 - i]);

    /* a page that ends exactly at the last task says there is no more */
    n = collect(f, (store_list_query){.limit = 7}, got, 16, &pages);
    assert_int_equal(n, 7);
    assert_int_equal(pages, 1);
    q = (store_list_query){.limit = 100};
    assert_int_equal(store_list_tasks(f->store, &q, &p), STORE_OK);
    assert_int_equal(p.count, 7);
    assert_false(p.more);
    store_page_free(&p);

    /* before_id: strictly older; the oldest has nothing before it */
    q = (store_list_query){.limit = 2, .before_id = ids[3]};
    assert_int_equal(store_list_tasks(f->store, &q, &p), STORE_OK);
    assert_int_equal(p.count, 2);
    assert_string_equal(p.tasks[0].id, ids[2]);
    assert_string_equal(p.tasks[1].id, ids[1]);
    assert_true(p.more);
    store_page_free(&p);
    q.before_id = ids[0];
    assert_int_equal(store_list_tasks(f->store, &q, &p), STORE_OK);
    assert_int_equal(p.count, 0);
    assert_false(p.more);
    store_page_free(&p);

    /* tasks created while paging do not disturb the pages below them */
    q = (store_list_query){.limit = 4};
    assert_int_equal(store_list_tasks(f->store, &q, &p), STORE_OK);
    char last[37];
    memcpy(last, p.tasks[3].id, 37);
    store_page_free(&p);
    char extra[37];
    must_create(f, "TASK1", extra);
    q.before_id = last;
    assert_int_equal(store_list_tasks(f->store, &q, &p), STORE_OK);
    assert_int_equal(p.count, 3);
    assert_string_equal(p.tasks[0].id, ids[2]);
    store_page_free(&p);
}

static void test_contract_list_filters(void **state)
{
    fixture *f = *state;
    /* TASK1: a CREATED, b IN_PROGRESS, c COMPLETED; TASK2: d CREATED, e FAILED */
    char a[37], b[37], c[37], d[37], e[37];
    must_create(f, "TASK1", a);
    must_create(f, "TASK1", b);
    must_create(f, "TASK1", c);
    must_create(f, "TASK2", d);
    must_create(f, "TASK2", e);
    must_update(f, b, TASK_IN_PROGRESS, "Task started");
    must_update(f, c, TASK_IN_PROGRESS, "Task started");
    must_update(f, c, TASK_COMPLETED, "Task completed");
    must_update(f, e, TASK_FAILED, "cancelled");

    char got[8][37];
    int pages;
    size_t n = collect(f, (store_list_query){.limit = 1, .task_type = "TASK1"}, got, 8, &pages);
    assert_int_equal(n, 3);
    assert_string_equal(got[0], c);
    assert_string_equal(got[2], a);
    n = collect(f, (store_list_query){.limit = 10, .status = "CREATED"}, got, 8, &pages);
    assert_int_equal(n, 2);
    assert_string_equal(got[0], d);
    assert_string_equal(got[1], a);
    n = collect(f, (store_list_query){.limit = 1, .status = "IN_PROGRESS"}, got, 8, &pages);
    assert_int_equal(n, 1);
    assert_string_equal(got[0], b);
    n = collect(f, (store_list_query){.limit = 10, .status = "COMPLETED", .task_type = "TASK1"},
                got, 8, &pages);
    assert_int_equal(n, 1);
    assert_string_equal(got[0], c);
    n = collect(f, (store_list_query){.limit = 10, .status = "COMPLETED", .task_type = "TASK2"},
                got, 8, &pages);
    assert_int_equal(n, 0);
    n = collect(f, (store_list_query){.limit = 1, .status = "FAILED", .task_type = "TASK2"}, got, 8,
                &pages);
    assert_int_equal(n, 1);
    assert_string_equal(got[0], e);
    n = collect(f, (store_list_query){.limit = 10, .task_type = "TASK3"}, got, 8, &pages);
    assert_int_equal(n, 0);

    /* the list form shows the change */
    store_page p;
    store_list_query q = {.limit = 10, .status = "COMPLETED"};
    assert_int_equal(store_list_tasks(f->store, &q, &p), STORE_OK);
    assert_int_equal(p.count, 1);
    assert_string_equal(p.tasks[0].status_msg, "Task completed");
    assert_int_equal(p.tasks[0].updated_time, NOW);
    store_page_free(&p);
}

/* ---- contract: transitions --------------------------------------------- */

static void test_contract_transitions(void **state)
{
    fixture *f = *state;
    char id[37];
    task cur;
    must_create(f, "TASK1", id);

    /* CREATED: not COMPLETED, not CREATED again */
    assert_int_equal(update(f, id, TASK_COMPLETED, "done", NULL, &cur), STORE_CONFLICT);
    assert_int_equal(cur.status, TASK_CREATED);
    assert_string_equal(cur.id, id);
    task_clear(&cur);
    assert_int_equal(update(f, id, TASK_CREATED, "", NULL, &cur), STORE_CONFLICT);
    task_clear(&cur);

    /* the claim; current is the task before the change */
    assert_int_equal(update(f, id, TASK_IN_PROGRESS, "Task started", NULL, &cur), STORE_OK);
    assert_int_equal(cur.status, TASK_CREATED);
    assert_string_equal(cur.status_msg, "");
    assert_int_equal(cur.updated_time, TASK_NULL_TIME);
    assert_json_same(cur.data, "{}");
    task_clear(&cur);
    /* a claim is never repeated: a second one conflicts */
    assert_int_equal(update(f, id, TASK_IN_PROGRESS, "Task started", NULL, &cur), STORE_CONFLICT);
    assert_int_equal(cur.status, TASK_IN_PROGRESS);
    task_clear(&cur);

    assert_int_equal(update(f, id, TASK_COMPLETED, "Task completed", "{\"n\":1}", &cur), STORE_OK);
    assert_int_equal(cur.status, TASK_IN_PROGRESS);
    assert_string_equal(cur.status_msg, "Task started");
    assert_int_equal(cur.updated_time, NOW);
    task_clear(&cur);
    /* final: the same change again is a repeat, anything else a conflict */
    assert_int_equal(update(f, id, TASK_COMPLETED, "Task completed", NULL, &cur), STORE_REPEAT);
    assert_int_equal(cur.status, TASK_COMPLETED);
    task_clear(&cur);
    assert_int_equal(update(f, id, TASK_COMPLETED, "other", NULL, &cur), STORE_CONFLICT);
    task_clear(&cur);
    assert_int_equal(update(f, id, TASK_FAILED, "Task completed", NULL, &cur), STORE_CONFLICT);
    assert_int_equal(cur.status, TASK_COMPLETED);
    task_clear(&cur);
    assert_int_equal(update(f, id, TASK_IN_PROGRESS, "x", NULL, &cur), STORE_CONFLICT);
    task_clear(&cur);

    task t;
    assert_int_equal(store_get_task(f->store, id, &t), STORE_OK);
    assert_int_equal(t.status, TASK_COMPLETED);
    assert_string_equal(t.status_msg, "Task completed");
    assert_int_equal(t.updated_time, NOW);
    assert_json_same(t.result, "{\"n\":1}");
    task_clear(&t);

    /* IN_PROGRESS -> FAILED; CREATED -> FAILED; then FAILED is final too */
    char id2[37], id3[37];
    must_create(f, "TASK1", id2);
    must_update(f, id2, TASK_IN_PROGRESS, "Task started");
    assert_int_equal(update(f, id2, TASK_FAILED, "Task failed somehow", NULL, NULL), STORE_OK);
    assert_int_equal(update(f, id2, TASK_FAILED, "Task failed somehow", NULL, NULL), STORE_REPEAT);
    assert_int_equal(update(f, id2, TASK_COMPLETED, "Task failed somehow", NULL, NULL),
                     STORE_CONFLICT);
    must_create(f, "TASK2", id3);
    assert_int_equal(update(f, id3, TASK_FAILED, "cancelled", NULL, &cur), STORE_OK);
    assert_int_equal(cur.status, TASK_CREATED);
    task_clear(&cur);
    assert_int_equal(update(f, id3, TASK_IN_PROGRESS, "late claim", NULL, NULL), STORE_CONFLICT);

    /* unknown tasks: not found, current left empty */
    memset(&cur, 0, sizeof cur);
    assert_int_equal(
        update(f, "0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e5f", TASK_FAILED, "x", NULL, &cur),
        STORE_NOT_FOUND);
    assert_null(cur.status_msg);
    assert_int_equal(update(f, "nope", TASK_IN_PROGRESS, "x", NULL, NULL), STORE_NOT_FOUND);
}

typedef struct claimer {
    fixture *f;
    const char *id;
    pthread_barrier_t *start;
    store_rc rc;
} claimer;

static void *claim_thread(void *arg)
{
    claimer *c = arg;
    pthread_barrier_wait(c->start);
    c->rc = update(c->f, c->id, TASK_IN_PROGRESS, "Task started", NULL, NULL);
    return NULL;
}

/* Of concurrent claimers, exactly one wins; the others conflict. */
static void test_contract_one_claimer_wins(void **state)
{
    fixture *f = *state;
    for (int round = 0; round < 3; round++) {
        char id[37];
        must_create(f, "TASK1", id);
        enum { N = 8 };
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, N);
        claimer c[N];
        pthread_t th[N];
        for (int i = 0; i < N; i++) {
            c[i] = (claimer){.f = f, .id = id, .start = &start};
            assert_int_equal(pthread_create(&th[i], NULL, claim_thread, &c[i]), 0);
        }
        int won = 0, lost = 0;
        for (int i = 0; i < N; i++) {
            pthread_join(th[i], NULL);
            won += c[i].rc == STORE_OK;
            lost += c[i].rc == STORE_CONFLICT;
        }
        pthread_barrier_destroy(&start);
        assert_int_equal(won, 1);
        assert_int_equal(lost, N - 1);
    }
}

/* ---- contract: history ------------------------------------------------- */

/* A redelivery's claim of a task that is IN_PROGRESS. */
static store_rc reclaim(fixture *f, const char *id, const char *msg, int64_t now)
{
    store_write w = {.kind = STORE_WRITE_RECLAIM,
                     .now = now,
                     .update = {.id = id, .status = TASK_IN_PROGRESS, .status_msg = msg}};
    store_rc rc = store_write_wait(f->store, &w);
    task_clear(&w.current);
    return rc;
}

static void assert_entry(const task_history *h, size_t i, task_status status, const char *msg,
                         int64_t time)
{
    assert_true(i < h->count);
    assert_string_equal(task_status_name(h->entries[i].status), task_status_name(status));
    assert_string_equal(h->entries[i].status_msg, msg);
    assert_int_equal(h->entries[i].time, time);
}

/* A change made only from CREATED (store_update.from_created, a task nobody claimed): it applies
 * to a CREATED task, repeats as any change does, and conflicts with a task someone claimed, which
 * stays as it was. */
static void test_contract_from_created(void **state)
{
    fixture *f = *state;
    char free_id[37], taken_id[37];
    must_create(f, "TASK1", free_id);
    must_create(f, "TASK1", taken_id);
    must_update(f, taken_id, TASK_IN_PROGRESS, "Task started");
    store_update u = {
        .id = free_id, .status = TASK_FAILED, .status_msg = "refused", .from_created = true};
    assert_int_equal(store_update_task(f->store, &u, NOW + 1, NULL), STORE_OK);
    assert_int_equal(store_update_task(f->store, &u, NOW + 2, NULL), STORE_REPEAT);
    u.id = taken_id;
    task cur = {0};
    assert_int_equal(store_update_task(f->store, &u, NOW + 3, &cur), STORE_CONFLICT);
    assert_int_equal(cur.status, TASK_IN_PROGRESS);
    task_clear(&cur);
    assert_int_equal(store_get_task(f->store, taken_id, &cur), STORE_OK);
    assert_int_equal(cur.status, TASK_IN_PROGRESS);
    assert_string_equal(cur.status_msg, "Task started");
    task_clear(&cur);
    assert_int_equal(store_get_task(f->store, free_id, &cur), STORE_OK);
    assert_int_equal(cur.status, TASK_FAILED);
    task_clear(&cur);
}

/* Every accepted transition is recorded, oldest first; refused ones are not. */
static void test_contract_history(void **state)
{
    fixture *f = *state;
    char id[37];
    must_create(f, "TASK1", id);
    task_history h;
    assert_int_equal(store_get_history(f->store, id, &h), STORE_OK);
    assert_int_equal(h.count, 1);
    assert_entry(&h, 0, TASK_CREATED, "", NOW);
    assert_false(h.truncated);
    task_history_clear(&h);

    store_update u = {.id = id, .status = TASK_IN_PROGRESS, .status_msg = "Task started"};
    assert_int_equal(store_update_task(f->store, &u, NOW + 1, NULL), STORE_OK);
    assert_int_equal(store_update_task(f->store, &u, NOW + 2, NULL), STORE_CONFLICT);
    assert_int_equal(reclaim(f, id, "again", NOW + 3), STORE_OK);
    u = (store_update){.id = id, .status = TASK_FAILED, .status_msg = "boom"};
    assert_int_equal(store_update_task(f->store, &u, NOW + 4, NULL), STORE_OK);
    assert_int_equal(store_update_task(f->store, &u, NOW + 5, NULL), STORE_REPEAT);
    assert_int_equal(reclaim(f, id, "late", NOW + 6), STORE_CONFLICT); /* final: not run again */
    assert_int_equal(store_get_history(f->store, id, &h), STORE_OK);
    assert_int_equal(h.count, 4);
    assert_entry(&h, 0, TASK_CREATED, "", NOW);
    assert_entry(&h, 1, TASK_IN_PROGRESS, "Task started", NOW + 1);
    assert_entry(&h, 2, TASK_IN_PROGRESS, "again", NOW + 3);
    assert_entry(&h, 3, TASK_FAILED, "boom", NOW + 4);
    assert_false(h.truncated);
    task_history_clear(&h);

    /* a long message is kept whole on the task, cut (at a character) in the history */
    char id2[37], msg[1202] = "x";
    for (int i = 0; i < 600; i++)
        memcpy(msg + 1 + 2 * i, "\xc3\xa9", 3); /* é, two bytes (and the NUL) */
    must_create(f, "TASK2", id2);
    must_update(f, id2, TASK_FAILED, msg); /* byte 512 is inside an é: cut before it */
    assert_int_equal(store_get_history(f->store, id2, &h), STORE_OK);
    assert_int_equal(h.count, 2);
    assert_int_equal(strlen(h.entries[1].status_msg), TASK_HISTORY_MSG_MAX - 1);
    assert_memory_equal(h.entries[1].status_msg, msg, TASK_HISTORY_MSG_MAX - 1);
    task_history_clear(&h);
    task t;
    assert_int_equal(store_get_task(f->store, id2, &t), STORE_OK);
    assert_string_equal(t.status_msg, msg);
    task_clear(&t);

    /* unknown tasks; a reclaim of a task that is not IN_PROGRESS */
    assert_int_equal(store_get_history(f->store, "0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e5f", &h),
                     STORE_NOT_FOUND);
    assert_int_equal(h.count, 0);
    assert_int_equal(store_get_history(f->store, "nope", &h), STORE_NOT_FOUND);
    assert_int_equal(reclaim(f, "0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e5f", "x", NOW), STORE_NOT_FOUND);
    char id3[37];
    must_create(f, "TASK2", id3);
    assert_int_equal(reclaim(f, id3, "x", NOW), STORE_CONFLICT);
    assert_int_equal(store_get_history(f->store, id3, &h), STORE_OK);
    assert_int_equal(h.count, 1);
    task_history_clear(&h);

    /* the route */
    char path[80];
    snprintf(path, sizeof path, "/tasks/%s/history", id);
    api_response r = call(f, "GET", path, NULL, NULL);
    assert_int_equal(r.status, 200);
    json_t *j = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "id")), id);
    assert_true(json_is_false(json_object_get(j, "truncated")));
    json_t *list = json_object_get(j, "history");
    assert_int_equal(json_array_size(list), 4);
    json_t *last = json_array_get(list, 3);
    assert_string_equal(json_string_value(json_object_get(last, "status")), "FAILED");
    assert_string_equal(json_string_value(json_object_get(last, "status_msg")), "boom");
    assert_string_equal(json_string_value(json_object_get(last, "time")), "2023-11-14T22:13:24Z");
    json_decref(j);
    api_response_free(&r);
    /* the task itself does not carry its history */
    snprintf(path, sizeof path, "/tasks/%s", id);
    r = call(f, "GET", path, NULL, NULL);
    j = body_json(&r);
    assert_null(json_object_get(j, "history"));
    json_decref(j);
    api_response_free(&r);
    r = call(f, "GET", "/tasks/0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e5f/history", NULL, NULL);
    assert_int_equal(r.status, 404);
    api_response_free(&r);
    r = call(f, "GET", "/tasks/not-an-id/history", NULL, NULL);
    assert_int_equal(r.status, 404);
    api_response_free(&r);
}

/* A task redelivered without end keeps its first entry and the latest ones, flagged truncated. */
static void test_contract_history_bound(void **state)
{
    fixture *f = *state;
    char id[37];
    must_create(f, "TASK1", id);
    must_update(f, id, TASK_IN_PROGRESS, "Task started");
    enum { AGAIN = 70 };
    for (int i = 1; i <= AGAIN; i++) {
        char msg[32];
        snprintf(msg, sizeof msg, "again %d", i);
        assert_int_equal(reclaim(f, id, msg, NOW + i), STORE_OK);
        if (i == TASK_HISTORY_MAX - 2) { /* exactly full: nothing dropped yet */
            task_history h;
            assert_int_equal(store_get_history(f->store, id, &h), STORE_OK);
            assert_int_equal(h.count, TASK_HISTORY_MAX);
            assert_false(h.truncated);
            task_history_clear(&h);
        }
    }
    assert_int_equal(update(f, id, TASK_COMPLETED, "Task completed", NULL, NULL), STORE_OK);
    task_history h;
    assert_int_equal(store_get_history(f->store, id, &h), STORE_OK);
    assert_int_equal(h.count, TASK_HISTORY_MAX);
    assert_true(h.truncated);
    assert_entry(&h, 0, TASK_CREATED, "", NOW);
    /* recorded: CREATED, the claim, 70 reclaims, COMPLETED = 73; the latest 63 start at the 11th,
     * the 9th reclaim */
    assert_entry(&h, 1, TASK_IN_PROGRESS, "again 9", NOW + 9);
    assert_entry(&h, TASK_HISTORY_MAX - 2, TASK_IN_PROGRESS, "again 70", NOW + AGAIN);
    assert_entry(&h, TASK_HISTORY_MAX - 1, TASK_COMPLETED, "Task completed", NOW);
    task_history_clear(&h);
}

/* ---- contract: a client's claim, its key and its lease ---------------------- */

/* A client's claim: key (or NULL) and the end of its lease (0: none). */
static store_rc claim(fixture *f, const char *id, const char *msg, const char *key, int64_t expires,
                      task *cur)
{
    store_update u = {.id = id,
                      .status = TASK_IN_PROGRESS,
                      .status_msg = msg,
                      .claim_key = key,
                      .claim_expires = expires};
    return store_update_task(f->store, &u, NOW, cur);
}

/* The expired claims at now: how many, and the first one's id and end. */
static size_t expired(fixture *f, int64_t now, store_claim *first)
{
    store_claim got[8];
    size_t n = 99;
    assert_int_equal(f->store->ops->expired_claims(f->store, now, got, 8, &n), STORE_OK);
    assert_true(n <= 8);
    if (n && first)
        *first = got[0];
    return n;
}

/* The claim made again with its key and message is a repeat that moves its lease's end later,
 * never earlier; another key, no key or another message conflicts. */
static void test_contract_claim_key_repeats(void **state)
{
    fixture *f = *state;
    char id[37];
    must_create(f, "TASK2", id);
    task cur;
    assert_int_equal(claim(f, id, "mine", "k1", NOW + 100, &cur), STORE_OK);
    task_clear(&cur);
    assert_int_equal(claim(f, id, "mine", "k1", NOW + 50, &cur), STORE_REPEAT);
    assert_int_equal(cur.status, TASK_IN_PROGRESS);
    assert_string_equal(cur.claim_key, "k1");
    assert_int_equal(cur.claim_expires, NOW + 100);
    task_clear(&cur);
    store_claim c;
    assert_int_equal(expired(f, NOW + 100, NULL), 0); /* ends at NOW + 100: not before it */
    assert_int_equal(expired(f, NOW + 101, &c), 1);
    assert_string_equal(c.id, id);
    assert_int_equal(c.claim_expires, NOW + 100);
    assert_int_equal(claim(f, id, "mine", "k1", NOW + 200, NULL), STORE_REPEAT);
    assert_int_equal(expired(f, NOW + 150, NULL), 0);
    assert_int_equal(expired(f, NOW + 201, &c), 1);
    assert_int_equal(c.claim_expires, NOW + 200);
    assert_int_equal(claim(f, id, "mine", "k2", NOW + 300, NULL), STORE_CONFLICT);
    assert_int_equal(claim(f, id, "mine", NULL, NOW + 300, NULL), STORE_CONFLICT);
    assert_int_equal(claim(f, id, "other", "k1", NOW + 300, NULL), STORE_CONFLICT);
    assert_int_equal(expired(f, NOW + 201, &c), 1);
    assert_int_equal(c.claim_expires, NOW + 200);
    /* its outcome ends the claim: no lease left, and the key claims nothing any more */
    assert_int_equal(update(f, id, TASK_COMPLETED, "done", NULL, NULL), STORE_OK);
    assert_int_equal(expired(f, NOW + 10000, NULL), 0);
    assert_int_equal(claim(f, id, "mine", "k1", NOW + 300, &cur), STORE_CONFLICT);
    assert_int_equal(cur.status, TASK_COMPLETED);
    assert_null(cur.claim_key);
    task_clear(&cur);
}

/* A runner's claim again of a task a client claimed ends the client's claim: no lease left for
 * the sweep, and the key claims nothing. */
static void test_contract_claim_again_ends_a_clients_claim(void **state)
{
    fixture *f = *state;
    char id[37];
    must_create(f, "TASK1", id);
    assert_int_equal(claim(f, id, "mine", "k", NOW + 10, NULL), STORE_OK);
    assert_int_equal(reclaim(f, id, "Task started again (receive 2)", NOW + 5), STORE_OK);
    assert_int_equal(expired(f, NOW + 11, NULL), 0);
    assert_int_equal(claim(f, id, "mine", "k", NOW + 20, NULL), STORE_CONFLICT);
    task t;
    assert_int_equal(store_get_task(f->store, id, &t), STORE_OK);
    assert_string_equal(t.status_msg, "Task started again (receive 2)");
    task_clear(&t);
}

/* A key is its bytes, UTF-8 or not: the same bytes repeat the claim, other bytes conflict. */
static void test_contract_claim_key_of_any_bytes(void **state)
{
    fixture *f = *state;
    char id[37];
    must_create(f, "TASK2", id);
    assert_int_equal(claim(f, id, "mine", "\xff\xfe k", NOW + 10, NULL), STORE_OK);
    assert_int_equal(claim(f, id, "mine", "\xff\xfd k", NOW + 20, NULL), STORE_CONFLICT);
    assert_int_equal(claim(f, id, "mine", "k#\xff\xfe k", NOW + 20, NULL), STORE_CONFLICT);
    task cur;
    assert_int_equal(claim(f, id, "mine", "\xff\xfe k", NOW + 20, &cur), STORE_REPEAT);
    assert_string_equal(cur.claim_key, "\xff\xfe k");
    task_clear(&cur);
    store_claim c;
    assert_int_equal(expired(f, NOW + 21, &c), 1);
    assert_int_equal(c.claim_expires, NOW + 20);
    must_create(f, "TASK2", id);
    assert_int_equal(claim(f, id, "mine", "k~ff", NOW + 10, NULL), STORE_OK); /* no escape */
    assert_int_equal(claim(f, id, "mine", "\xff", NOW + 10, NULL), STORE_CONFLICT);
    assert_int_equal(claim(f, id, "mine", "k~ff", NOW + 10, NULL), STORE_REPEAT);
}

/* A lease nobody renewed ends: its task fails, saying so in its message and history; a task
 * finished, renewed, claimed by a runner (no lease) or claimed with no key is left alone or
 * ended as its own lease says. */
static void test_contract_claim_lease_ends(void **state)
{
    fixture *f = *state;
    char lapsed[37], keyless[37], done[37], runner[37];
    must_create(f, "TASK2", lapsed);
    must_create(f, "TASK2", keyless);
    must_create(f, "TASK2", done);
    must_create(f, "TASK1", runner);
    assert_int_equal(claim(f, lapsed, "working", "k", NOW + 10, NULL), STORE_OK);
    assert_int_equal(claim(f, keyless, "working", NULL, NOW + 20, NULL), STORE_OK);
    assert_int_equal(claim(f, done, "working", "k", NOW + 5, NULL), STORE_OK);
    must_update(f, runner, TASK_IN_PROGRESS, "Task started");
    assert_int_equal(update(f, done, TASK_COMPLETED, "Task completed", NULL, NULL), STORE_OK);

    size_t ended = 99;
    bool more = true;
    assert_int_equal(store_end_expired_claims(f->store, NOW + 10, 8, &ended, &more, NULL),
                     STORE_OK);
    assert_int_equal(ended, 0);
    assert_false(more);
    /* a lease renewed after it was found: the end of the lease that was conflicts */
    store_update late = {
        .id = lapsed, .status = TASK_FAILED, .status_msg = "late", .lease_ended = NOW + 9};
    assert_int_equal(store_update_task(f->store, &late, NOW + 11, NULL), STORE_CONFLICT);

    assert_int_equal(store_end_expired_claims(f->store, NOW + 11, 1, &ended, &more, NULL),
                     STORE_OK);
    assert_int_equal(ended, 1);
    assert_true(more); /* it stopped at its bound */
    assert_int_equal(store_end_expired_claims(f->store, NOW + 21, 8, &ended, &more, NULL),
                     STORE_OK);
    assert_int_equal(ended, 1);
    assert_false(more);

    task t;
    assert_int_equal(store_get_task(f->store, lapsed, &t), STORE_OK);
    assert_int_equal(t.status, TASK_FAILED);
    assert_string_equal(t.status_msg, "claim expired: no outcome reported by 2023-11-14T22:13:30Z");
    assert_int_equal(t.updated_time, NOW + 11);
    task_clear(&t);
    task_history h;
    assert_int_equal(store_get_history(f->store, lapsed, &h), STORE_OK);
    assert_int_equal(h.count, 3);
    assert_entry(&h, 2, TASK_FAILED, "claim expired: no outcome reported by 2023-11-14T22:13:30Z",
                 NOW + 11);
    task_history_clear(&h);
    assert_int_equal(store_get_task(f->store, keyless, &t), STORE_OK);
    assert_int_equal(t.status, TASK_FAILED);
    assert_string_equal(t.status_msg, "claim expired: no outcome reported by 2023-11-14T22:13:40Z");
    task_clear(&t);
    assert_int_equal(store_get_task(f->store, done, &t), STORE_OK);
    assert_int_equal(t.status, TASK_COMPLETED);
    task_clear(&t);
    assert_int_equal(store_get_task(f->store, runner, &t), STORE_OK);
    assert_int_equal(t.status, TASK_IN_PROGRESS);
    task_clear(&t);
    assert_int_equal(expired(f, NOW + 100000, NULL), 0);
    /* the late outcome of a claim that ended is refused */
    assert_int_equal(update(f, lapsed, TASK_COMPLETED, "Task completed", NULL, NULL),
                     STORE_CONFLICT);
}

/* ---- contract: idempotency --------------------------------------------- */

static void test_contract_idempotency(void **state)
{
    fixture *f = *state;
    char a[37], b[37], c[37];
    assert_int_equal(create(f, "TASK2", NULL, TASK_NULL_TIME, "k-1", NOW, a), STORE_OK);
    assert_int_equal(create(f, "TASK2", NULL, TASK_NULL_TIME, "k-1", NOW + 5, b), STORE_DUPLICATE);
    assert_string_equal(a, b);
    /* the key, not the body, decides */
    assert_int_equal(create(f, "TASK1", "{\"x\":1}", 99, "k-1", NOW + 6, b), STORE_DUPLICATE);
    assert_string_equal(a, b);
    assert_int_equal(create(f, "TASK2", NULL, TASK_NULL_TIME, "k-2", NOW, c), STORE_OK);
    assert_string_not_equal(a, c);
    /* no key: always a new task */
    assert_int_equal(create(f, "TASK2", NULL, TASK_NULL_TIME, NULL, NOW, b), STORE_OK);
    assert_string_not_equal(a, b);
    assert_int_equal(atomic_load(&f->created), 3);

    /* keys are any bytes: quotes, backslashes, '#', unicode, not even UTF-8 */
    const char *odd[] = {"a\"b\\c#d", "idem#k-1", "cl\xc3\xa9 \xe2\x98\x83", "\xff\xfe raw",
                         "k-1 "};
    char first[5][37];
    for (int i = 0; i < 5; i++)
        assert_int_equal(create(f, "TASK2", NULL, TASK_NULL_TIME, odd[i], NOW, first[i]), STORE_OK);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(create(f, "TASK2", NULL, TASK_NULL_TIME, odd[i], NOW + 1, b),
                         STORE_DUPLICATE);
        assert_string_equal(b, first[i]);
    }
    char long_key[256];
    memset(long_key, 'z', 255);
    long_key[255] = '\0';
    assert_int_equal(create(f, "TASK2", NULL, TASK_NULL_TIME, long_key, NOW, c), STORE_OK);
    assert_int_equal(create(f, "TASK2", NULL, TASK_NULL_TIME, long_key, NOW, b), STORE_DUPLICATE);
    assert_string_equal(b, c);

    /* the window: a key is remembered 24 h, then free again */
    assert_int_equal(create(f, "TASK2", NULL, TASK_NULL_TIME, "k-1", NOW + IDEM_WINDOW - 1, b),
                     STORE_DUPLICATE);
    assert_string_equal(a, b);
    assert_int_equal(create(f, "TASK2", NULL, TASK_NULL_TIME, "k-1", NOW + IDEM_WINDOW, b),
                     STORE_OK);
    assert_string_not_equal(a, b);
    assert_int_equal(create(f, "TASK2", NULL, TASK_NULL_TIME, "k-1", NOW + IDEM_WINDOW + 1, c),
                     STORE_DUPLICATE);
    assert_string_equal(b, c);
}

typedef struct keyed_creator {
    fixture *f;
    pthread_barrier_t *start;
    char id[37];
    store_rc rc;
} keyed_creator;

static void *keyed_create_thread(void *arg)
{
    keyed_creator *k = arg;
    pthread_barrier_wait(k->start);
    k->rc = create(k->f, "TASK2", NULL, TASK_NULL_TIME, "same-key", NOW, k->id);
    return NULL;
}

/* Concurrent creators with one key: one task; everyone gets its id. */
static void test_contract_idempotency_race(void **state)
{
    fixture *f = *state;
    enum { N = 6 };
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, N);
    keyed_creator k[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        k[i] = (keyed_creator){.f = f, .start = &start};
        assert_int_equal(pthread_create(&th[i], NULL, keyed_create_thread, &k[i]), 0);
    }
    int ok = 0, dup = 0;
    for (int i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&start);
    const char *winner = NULL;
    for (int i = 0; i < N; i++) {
        ok += k[i].rc == STORE_OK;
        dup += k[i].rc == STORE_DUPLICATE;
        if (k[i].rc == STORE_OK)
            winner = k[i].id;
    }
    assert_int_equal(ok, 1);
    assert_int_equal(dup, N - 1);
    for (int i = 0; i < N; i++)
        assert_string_equal(k[i].id, winner);
    assert_int_equal(atomic_load(&f->created), 1);
}

/* ---- contract: data, result, ttl --------------------------------------- */

static const char *const sample_data[] = {
    "{}",
    "{\"foo\":\"bar\"}",
    "{\"nested\":{\"a\":{\"b\":{\"c\":[1,2,{\"d\":null}]}}},\"list\":[],\"empty\":{}}",
    "{\"unicode\":\"h\xc3\xa9llo \xe2\x98\x83 \xf0\x9f\x98\x80\",\"esc\":\"q\\\"b\\\\s\\n\\t\"}",
    ("{\"big\":\"123456789012345678901234567890\",\"max\":9223372036854775807,"
     "\"min\":-9223372036854775807,\"real\":0.1,\"neg\":-2.5,\"exp\":1e-07}"),
    "{\"t\":true,\"f\":false,\"n\":null,\"s\":\"\",\"zero\":0}",
    "{\"h\xc3\xa9\":\"key in unicode\",\"with space\":1,\"#hash\":2}",
};

static void test_contract_data_round_trip(void **state)
{
    fixture *f = *state;
    for (size_t i = 0; i < sizeof sample_data / sizeof sample_data[0]; i++) {
        for (int with_image = 0; with_image < 2; with_image++) {
            char *image = NULL;
            size_t size = 0;
            if (with_image) { /* as the API hands it over: text, AttributeValue image, its size */
                json_t *v = json_loads(sample_data[i], 0, NULL);
                assert_non_null(v);
                sbuf b = {0};
                size = attrval_write(&b, v);
                image = sbuf_take(&b, NULL);
                json_decref(v);
            }
            store_new_task nt = {.task_type = "TASK2",
                                 .data = sample_data[i],
                                 .data_image = image,
                                 .data_size = size,
                                 .ttl = TASK_NULL_TIME};
            char id[37];
            assert_int_equal(store_create_task(f->store, &nt, NOW, id), STORE_OK);
            free(image);
            task t;
            assert_int_equal(store_get_task(f->store, id, &t), STORE_OK);
            assert_json_same(t.data, sample_data[i]);
            task_clear(&t);
        }
    }
}

static void test_contract_result_round_trip(void **state)
{
    fixture *f = *state;
    const char *results[] = {
        "{\"out\":{\"rows\":[1,2,3],\"ok\":true}}",
        "\"plain text \xe2\x9c\x93\"",
        "42",
        "[\"a\",{\"b\":[]},null]",
        "{}",
        "null",
    };
    for (size_t i = 0; i < sizeof results / sizeof results[0]; i++) {
        char id[37];
        must_create(f, "TASK1", id);
        must_update(f, id, TASK_IN_PROGRESS, "Task started");
        assert_int_equal(update(f, id, TASK_COMPLETED, "Task completed", results[i], NULL),
                         STORE_OK);
        task t;
        assert_int_equal(store_get_task(f->store, id, &t), STORE_OK);
        assert_non_null(t.result);
        assert_json_same(t.result, results[i]);
        task_clear(&t);
    }
    /* no result given: none kept; a failure can carry one too */
    char id[37];
    must_create(f, "TASK1", id);
    assert_int_equal(update(f, id, TASK_FAILED, "rejected", "{\"why\":\"x\"}", NULL), STORE_OK);
    task t;
    assert_int_equal(store_get_task(f->store, id, &t), STORE_OK);
    assert_json_same(t.result, "{\"why\":\"x\"}");
    task_clear(&t);
    must_create(f, "TASK1", id);
    must_update(f, id, TASK_IN_PROGRESS, "Task started");
    assert_int_equal(store_get_task(f->store, id, &t), STORE_OK);
    assert_null(t.result);
    task_clear(&t);
}

static void test_contract_ttl(void **state)
{
    fixture *f = *state;
    char with[37], without[37], zero[37];
    assert_int_equal(create(f, "TASK1", NULL, 1662381756, NULL, NOW, with), STORE_OK);
    assert_int_equal(create(f, "TASK1", NULL, TASK_NULL_TIME, NULL, NOW, without), STORE_OK);
    assert_int_equal(create(f, "TASK1", NULL, 0, NULL, NOW, zero), STORE_OK);
    task t;
    assert_int_equal(store_get_task(f->store, with, &t), STORE_OK);
    assert_int_equal(t.ttl, 1662381756);
    task_clear(&t);
    assert_int_equal(store_get_task(f->store, without, &t), STORE_OK);
    assert_int_equal(t.ttl, TASK_NULL_TIME);
    task_clear(&t);
    assert_int_equal(store_get_task(f->store, zero, &t), STORE_OK);
    assert_int_equal(t.ttl, 0);
    task_clear(&t);

    /* the list form carries it, and finishing does not change the client's ttl */
    must_update(f, with, TASK_IN_PROGRESS, "Task started");
    must_update(f, with, TASK_COMPLETED, "Task completed");
    store_page p;
    store_list_query q = {.limit = 10};
    assert_int_equal(store_list_tasks(f->store, &q, &p), STORE_OK);
    assert_int_equal(p.count, 3);
    assert_int_equal(p.tasks[0].ttl, 0);
    assert_int_equal(p.tasks[1].ttl, TASK_NULL_TIME);
    assert_int_equal(p.tasks[2].ttl, 1662381756);
    store_page_free(&p);
    assert_int_equal(store_get_task(f->store, with, &t), STORE_OK);
    assert_int_equal(t.ttl, 1662381756);
    task_clear(&t);
}

/* ---- contract: listener, secret ---------------------------------------- */

static void test_contract_listener(void **state)
{
    fixture *f = *state;
    int committed = atomic_load(&f->committed);
    char id[37], dup[37];
    assert_int_equal(create(f, "TASK1", NULL, TASK_NULL_TIME, "once", NOW, id), STORE_OK);
    assert_int_equal(create(f, "TASK1", NULL, TASK_NULL_TIME, "once", NOW, dup), STORE_DUPLICATE);
    must_update(f, id, TASK_IN_PROGRESS, "Task started");
    assert_int_equal(update(f, id, TASK_IN_PROGRESS, "again", NULL, NULL), STORE_CONFLICT);
    must_update(f, id, TASK_COMPLETED, "Task completed");
    assert_int_equal(update(f, id, TASK_COMPLETED, "Task completed", NULL, NULL), STORE_REPEAT);
    /* one creation and two changes were written; nothing else counts */
    assert_int_equal(atomic_load(&f->created), 1);
    assert_int_equal(atomic_load(&f->changed), 3);
    assert_true(atomic_load(&f->committed) >= committed + 3);
}

static void test_contract_secret(void **state)
{
    fixture *f = *state;
    uint8_t a[16], b[16], zero[16] = {0};
    assert_int_equal(store_secret(f->store, a), STORE_OK);
    assert_int_equal(store_secret(f->store, b), STORE_OK);
    assert_memory_equal(a, b, 16);
    assert_memory_not_equal(a, zero, 16);
    /* stable for the life of the data: another store on it sees the same */
    store *other = current->reopen(f, false);
    if (!other) {
        store_close(f->store);
        f->store = other = current->reopen(f, true);
        f->api.store = other;
    }
    assert_non_null(other);
    assert_int_equal(store_secret(other, b), STORE_OK);
    assert_memory_equal(a, b, 16);
    if (other != f->store)
        store_close(other);
}

/* ---- DynamoDB's own items ---------------------------------------------- */

/* The raw item with this id (new reference), NULL when there is none. */
static json_t *raw_item(fixture *f, const char *id)
{
    json_t *req = json_pack("{ss s{s{ss}} sb}", "TableName", f->table, "Key", "id", "S", id,
                            "ConsistentRead", 1);
    char err[256];
    json_t *answer = ddb_test_call("GetItem", req, err, sizeof err);
    json_decref(req);
    if (!answer)
        fail_msg("GetItem %s: %s", id, err);
    json_t *item = json_incref(json_object_get(answer, "Item"));
    json_decref(answer);
    return item;
}

static int64_t raw_n(const json_t *item, const char *name)
{
    const char *s = json_string_value(json_object_get(json_object_get(item, name), "N"));
    return s ? strtoll(s, NULL, 10) : TASK_NULL_TIME;
}

static void assert_raw_ttl(fixture *f, const char *id, int64_t want)
{
    json_t *item = raw_item(f, id);
    assert_non_null(item);
    if (want == TASK_NULL_TIME)
        assert_null(json_object_get(item, "ttl"));
    else
        assert_int_equal(raw_n(item, "ttl"), want);
    json_decref(item);
}

/* The table's TTL attribute appears only when a task with a ttl finishes. */
static void test_dynamodb_ttl_attribute(void **state)
{
    fixture *f = *state;
    if (!on_dynamodb())
        skip();
    const int64_t past = 1662381756, far = NOW + 10 * 24 * 3600;
    for (int fresh = 0; fresh < 2; fresh++) {
        /* fresh: updates through another store, which has never seen the tasks */
        store *s = fresh ? current->reopen(f, false) : f->store;
        char a[37], b[37], c[37], d[37];
        assert_int_equal(create(f, "TASK1", NULL, past, NULL, NOW, a), STORE_OK);
        assert_int_equal(create(f, "TASK1", NULL, far, NULL, NOW, b), STORE_OK);
        assert_int_equal(create(f, "TASK1", NULL, TASK_NULL_TIME, NULL, NOW, c), STORE_OK);
        assert_int_equal(create(f, "TASK2", NULL, past, NULL, NOW, d), STORE_OK);
        assert_raw_ttl(f, a, TASK_NULL_TIME);
        json_t *item = raw_item(f, a);
        assert_int_equal(raw_n(item, "task_ttl"), past);
        assert_string_equal(
            json_string_value(json_object_get(json_object_get(item, "type_status"), "S")),
            "TASK1#CREATED");
        json_decref(item);

        const char *ids[] = {a, b, c};
        for (int i = 0; i < 3; i++) {
            store_update u = {.id = ids[i], .status = TASK_IN_PROGRESS, .status_msg = "s"};
            assert_int_equal(store_update_task(s, &u, NOW, NULL), STORE_OK);
            assert_raw_ttl(f, ids[i], TASK_NULL_TIME);
            u.status = TASK_COMPLETED;
            assert_int_equal(store_update_task(s, &u, NOW + 10, NULL), STORE_OK);
        }
        assert_raw_ttl(f, a, NOW + 10 + GRACE); /* max(ttl, finish + grace) */
        assert_raw_ttl(f, b, far);
        assert_raw_ttl(f, c, TASK_NULL_TIME); /* no ttl: kept */
        item = raw_item(f, a);
        assert_string_equal(
            json_string_value(json_object_get(json_object_get(item, "type_status"), "S")),
            "TASK1#COMPLETED");
        json_decref(item);

        store_update u = {.id = d, .status = TASK_FAILED, .status_msg = "cancelled"};
        assert_int_equal(store_update_task(s, &u, NOW, NULL), STORE_OK);
        assert_raw_ttl(f, d, NOW + GRACE);
        if (s != f->store)
            store_close(s);
    }
}

/* An item from before histories: none, or one that starts after its creation. */
static void test_dynamodb_history_of_older_items(void **state)
{
    fixture *f = *state;
    if (!on_dynamodb())
        skip();
    char id[37];
    must_create(f, "TASK1", id);
    store_update u = {.id = id, .status = TASK_IN_PROGRESS, .status_msg = "Task started"};
    assert_int_equal(store_update_task(f->store, &u, NOW + 5, NULL), STORE_OK);
    json_t *req = json_pack("{ss s{s{ss}} ss}", "TableName", f->table, "Key", "id", "S", id,
                            "UpdateExpression", "REMOVE history");
    json_decref(ddb_test_call("UpdateItem", req, NULL, 0));
    json_decref(req);
    json_t *item = raw_item(f, id);
    assert_null(json_object_get(item, "history"));
    json_decref(item);

    task_history h;
    assert_int_equal(store_get_history(f->store, id, &h), STORE_OK);
    assert_int_equal(h.count, 2);
    assert_entry(&h, 0, TASK_CREATED, "", NOW);
    assert_entry(&h, 1, TASK_IN_PROGRESS, "Task started", NOW + 5);
    assert_true(h.truncated);
    task_history_clear(&h);

    /* the next change starts a list without the creation: it is filled in */
    u = (store_update){.id = id, .status = TASK_COMPLETED, .status_msg = "Task completed"};
    assert_int_equal(store_update_task(f->store, &u, NOW + 9, NULL), STORE_OK);
    assert_int_equal(store_get_history(f->store, id, &h), STORE_OK);
    assert_int_equal(h.count, 2);
    assert_entry(&h, 0, TASK_CREATED, "", NOW);
    assert_entry(&h, 1, TASK_COMPLETED, "Task completed", NOW + 9);
    assert_true(h.truncated);
    task_history_clear(&h);
    /* and GET /tasks/{id} never shows it */
    task t;
    assert_int_equal(store_get_task(f->store, id, &t), STORE_OK);
    assert_int_equal(t.status, TASK_COMPLETED);
    task_clear(&t);
}

/* Key and meta items share the table but are never tasks. */
static void test_dynamodb_items_not_tasks(void **state)
{
    fixture *f = *state;
    if (!on_dynamodb())
        skip();
    char id[37];
    assert_int_equal(create(f, "TASK2", NULL, TASK_NULL_TIME, "order-7", NOW, id), STORE_OK);
    json_t *item = raw_item(f, "idem#order-7");
    assert_non_null(item);
    assert_string_equal(json_string_value(json_object_get(json_object_get(item, "task_id"), "S")),
                        id);
    assert_int_equal(raw_n(item, "ttl"), NOW + IDEM_WINDOW);
    assert_null(json_object_get(item, "task_type"));
    json_decref(item);

    task t;
    assert_int_equal(store_get_task(f->store, "idem#order-7", &t), STORE_NOT_FOUND);
    assert_int_equal(store_get_task(f->store, "meta#secret", &t), STORE_NOT_FOUND);
    /* an item under a task-shaped id that is not a task */
    const char *stray = "0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e5f";
    json_t *req = json_pack("{ss s{s{ss}}}", "TableName", f->table, "Item", "id", "S", stray);
    json_decref(ddb_test_call("PutItem", req, NULL, 0));
    json_decref(req);
    assert_int_equal(store_get_task(f->store, stray, &t), STORE_NOT_FOUND);
    assert_int_equal(update(f, stray, TASK_FAILED, "x", NULL, NULL), STORE_NOT_FOUND);
    /* and lists hold tasks only */
    store_page p;
    store_list_query q = {.limit = 100};
    assert_int_equal(store_list_tasks(f->store, &q, &p), STORE_OK);
    assert_int_equal(p.count, 1);
    assert_string_equal(p.tasks[0].id, id);
    store_page_free(&p);
}

/*
 * An update checks what it assumes of a task (type, ttl) in its condition:
 * an item rewritten behind the store's back is read from the failed
 * condition and the update made right.
 */
static void test_dynamodb_update_corrects_its_facts(void **state)
{
    fixture *f = *state;
    if (!on_dynamodb())
        skip();
    char id[37];
    must_create(f, "TASK1", id); /* the store now knows: TASK1, no ttl */
    const int64_t far = NOW + 30 * 24 * 3600;
    char far_text[24];
    snprintf(far_text, sizeof far_text, "%lld", (long long)far);
    json_t *req = json_pack("{ss s{s{ss} s{ss} s{ss} s{ss} s{ss} s{ss} s{ss} s{s{}} s{ss} s{ss}}}",
                            "TableName", f->table, "Item", "id", "S", id, "task_type", "S", "TASK3",
                            "status", "S", "CREATED", "status_msg", "S", "", "created_time", "N",
                            "1700000000", "task_ttl", "N", far_text, "list_all", "S", "tasks",
                            "data", "M", "type_status", "S", "TASK3#CREATED", "trace", "S", "t");
    char err[256];
    json_t *answer = ddb_test_call("PutItem", req, err, sizeof err);
    json_decref(req);
    if (!answer)
        fail_msg("PutItem: %s", err);
    json_decref(answer);

    task cur;
    assert_int_equal(update(f, id, TASK_FAILED, "cancelled", NULL, &cur), STORE_OK);
    assert_string_equal(cur.task_type, "TASK3");
    task_clear(&cur);
    json_t *item = raw_item(f, id);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(item, "type_status"), "S")),
        "TASK3#FAILED");
    assert_int_equal(raw_n(item, "ttl"), far);
    json_decref(item);
}

/* A claim made again through another instance of the store (another API function, a cold start:
 * it knows nothing of the task yet) is the repeat it is, and renews the lease there too. */
static void test_dynamodb_claim_made_again_elsewhere_renews(void **state)
{
    fixture *f = *state;
    if (!on_dynamodb())
        skip();
    char id[37];
    must_create(f, "TASK2", id);
    assert_int_equal(claim(f, id, "mine", "k", NOW + 10, NULL), STORE_OK);
    store *other = ddb_open_table(f, f->table);
    assert_non_null(other);
    store_update again = {.id = id,
                          .status = TASK_IN_PROGRESS,
                          .status_msg = "mine",
                          .claim_key = "k",
                          .claim_expires = NOW + 100};
    assert_int_equal(store_update_task(other, &again, NOW + 5, NULL), STORE_REPEAT);
    store_close(other);
    store_claim c;
    assert_int_equal(expired(f, NOW + 50, NULL), 0);
    assert_int_equal(expired(f, NOW + 101, &c), 1);
    assert_int_equal(c.claim_expires, NOW + 100);
}

/* A table that does not exist is an error to report, never a crash. */
/* A POST whose data is a blob of n bytes; the caller frees it. */
static char *blob_body(size_t n)
{
    char *body = malloc(n + 64);
    assert_non_null(body);
    int k = snprintf(body, 64, "{\"task_type\":\"TASK2\",\"data\":{\"big\":\"");
    memset(body + k, 'x', n);
    memcpy(body + k + n, "\"}}", 4);
    return body;
}

/*
 * A task DynamoDB could not hold with room for the changes it can take is refused at its
 * creation with 413, saying so; a change DynamoDB can never take (a result past 400 KB) is the
 * client's fault for good: 422, not a 503 that invites a retry.
 */
static void test_dynamodb_refuses_for_good(void **state)
{
    fixture *f = *state;
    if (!on_dynamodb())
        skip();
    f->cfg.body_limit = 1024 * 1024;
    char *body = blob_body(450 * 1024);
    api_response r = call(f, "POST", "/tasks", body, NULL);
    free(body);
    assert_int_equal(r.status, 413);
    json_t *j = body_json(&r);
    const char *detail = json_string_value(json_object_get(j, "detail"));
    size_t size = 0, limit = 0;
    if (!detail || sscanf(detail,
                          "Task too large for the task store: %zu bytes as stored (limit "
                          "%zu bytes, ",
                          &size, &limit) != 2)
        fail_msg("detail: %s", detail ? detail : "(none)");
    assert_true(size > 450 * 1024 && limit < 400 * 1024);
    json_decref(j);
    api_response_free(&r);

    char id[37];
    store_new_task t = {.task_type = "TASK2", .data = "{}", .ttl = TASK_NULL_TIME};
    assert_int_equal(store_create_task(f->store, &t, NOW, id), STORE_OK);
    size_t n = 450 * 1024;
    char *patch = malloc(n + 64);
    assert_non_null(patch);
    int k = snprintf(patch, 64, "{\"status\":\"FAILED\",\"result\":\"");
    memset(patch + k, 'x', n);
    memcpy(patch + k + n, "\"}", 3);
    char path[64];
    snprintf(path, sizeof path, "/tasks/%s", id);
    r = call(f, "PATCH", path, patch, NULL);
    free(patch);
    assert_int_equal(r.status, 422);
    j = body_json(&r);
    json_t *item = json_array_get(json_object_get(j, "detail"), 0);
    assert_string_equal(json_string_value(json_object_get(item, "type")), "value_error");
    assert_non_null(strstr(json_string_value(json_object_get(item, "msg")), "task store"));
    json_decref(j);
    api_response_free(&r);
}

/* A status_msg of VALIDATE_STATUS_MSG_MAX characters of 4 bytes, the longest a PATCH takes, with
 * c first (each change's its own); the caller frees it. */
static char *longest_msg(char c)
{
    char *msg = malloc(4 * VALIDATE_STATUS_MSG_MAX + 1);
    assert_non_null(msg);
    for (size_t i = 0; i < VALIDATE_STATUS_MSG_MAX; i++)
        memcpy(msg + 4 * i, "\xf0\x9f\x98\x80", 4); /* U+1F600 */
    msg[4 * VALIDATE_STATUS_MSG_MAX] = '\0';
    msg[0] = c;
    return msg;
}

/*
 * The largest task the DynamoDB store takes (found by halving, against DynamoDB Local, which
 * holds an item to 400 KB) can take every change that follows: a claim under the longest key
 * (kept in hex) with a lease, reclaims until its history is full and trimmed, and its failure,
 * each with the longest status_msg; one byte more is refused at its creation.
 */
static void test_dynamodb_leaves_room_for_every_change(void **state)
{
    fixture *f = *state;
    if (!on_dynamodb())
        skip();
    size_t lo = 300 * 1000, hi = 410 * 1000; /* taken, refused */
    char id[37] = "";
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        char *body = blob_body(mid);
        char *data = strstr(body, "{\"big\"");
        data[strlen(data) - 1] = '\0';
        store_new_task t = {.task_type = "TASK2", .data = data, .ttl = NOW + 10};
        char made[37];
        store_rc rc = store_create_task(f->store, &t, NOW, made);
        free(body);
        assert_true(rc == STORE_OK || rc == STORE_INVALID);
        if (rc == STORE_OK) {
            lo = mid;
            memcpy(id, made, sizeof id);
        } else {
            hi = mid;
        }
    }
    assert_true(id[0]); /* the task of lo bytes */

    char key[STORE_IDEMPOTENCY_KEY_MAX + 1];
    memset(key, 0xff, STORE_IDEMPOTENCY_KEY_MAX);
    key[STORE_IDEMPOTENCY_KEY_MAX] = '\0';
    char *msg = longest_msg('c');
    store_update claim = {.id = id,
                          .status = TASK_IN_PROGRESS,
                          .status_msg = msg,
                          .claim_key = key,
                          .claim_expires = NOW + 3600};
    assert_int_equal(store_update_task(f->store, &claim, NOW, NULL), STORE_OK);
    free(msg);
    for (int i = 0; i < TASK_HISTORY_MAX; i++) {
        msg = longest_msg((char)('A' + i % 26));
        store_write w = {.kind = STORE_WRITE_RECLAIM,
                         .now = NOW + 1 + i,
                         .update = {.id = id, .status = TASK_IN_PROGRESS, .status_msg = msg}};
        if (store_write_wait(f->store, &w) != STORE_OK)
            fail_msg("reclaim %d of the largest task: %s", i + 1, store_rc_name(w.rc));
        task_clear(&w.current);
        free(msg);
    }
    msg = longest_msg('f');
    store_update fail = {.id = id, .status = TASK_FAILED, .status_msg = msg};
    assert_int_equal(store_update_task(f->store, &fail, NOW + 100, NULL), STORE_OK);
    free(msg);
    task_history h;
    assert_int_equal(store_get_history(f->store, id, &h), STORE_OK);
    assert_int_equal(h.count, TASK_HISTORY_MAX);
    assert_true(h.truncated);
    task_history_clear(&h);
}

static void test_dynamodb_missing_table(void **state)
{
    fixture *f = *state;
    if (!on_dynamodb())
        skip();
    store *s = ddb_open_table(f, "taskd_test_no_such_table");
    assert_non_null(s); /* opening makes no call */
    task t;
    assert_int_equal(store_get_task(s, "0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e5f", &t), STORE_ERROR);
    store_page p;
    store_list_query q = {.limit = 10, .status = "CREATED"};
    assert_int_equal(store_list_tasks(s, &q, &p), STORE_ERROR);
    assert_int_equal(p.count, 0);
    char id[37];
    store_new_task nt = {.task_type = "TASK1", .data = "{}", .ttl = TASK_NULL_TIME};
    assert_int_equal(store_create_task(s, &nt, NOW, id), STORE_ERROR);
    nt.idempotency_key = "k";
    assert_int_equal(store_create_task(s, &nt, NOW, id), STORE_ERROR);
    store_update u = {
        .id = "0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e5f", .status = TASK_FAILED, .status_msg = "x"};
    assert_int_equal(store_update_task(s, &u, NOW, NULL), STORE_ERROR);
    uint8_t key[16];
    assert_int_equal(store_secret(s, key), STORE_ERROR);
    assert_int_equal(store_ping(s), STORE_ERROR);
    assert_string_equal(s->ops->system, "dynamodb");
    store_close(s);
    assert_int_equal(atomic_load(&f->changed), 0);
}

int main(void)
{
    log_setup(LOG_ERROR, "test");
    log_level level;
    const char *env = getenv("LOG_LEVEL");
    if (env && log_level_parse(env, &level))
        log_setup(level, "test");
#define CASE(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        CASE(test_create_read_update),
        CASE(test_idempotency_key),
        CASE(test_create_not_confirmed),
        CASE(test_idempotency_key_of_a_gone_task),
        CASE(test_routing_errors),
        CASE(test_body_limit),
        CASE(test_a_failed_body_says_why),
        CASE(test_data_limit),
        CASE(test_no_pipeline_routes),
        CASE(test_no_pipeline_live_routes),
        CASE(test_wait_over_the_waiters_answers),
        CASE(test_tracestate_with_traceparent),
        CASE(test_access_off_by_default),
        CASE(test_access_policy),
        CASE(test_patch_status_codes),
        CASE(test_trailing_slash_redirect),
        CASE(test_trailing_slash_redirect_keeps_query),
        CASE(test_list_empty_token),
        CASE(test_list_token_carries_filters),
        CASE(test_list_token_conflicting_filters),
        CASE(test_list_query_422),
        CASE(test_contract_create_get),
        CASE(test_contract_ids_ordered),
        CASE(test_contract_list_paging),
        CASE(test_contract_list_filters),
        CASE(test_contract_transitions),
        CASE(test_contract_one_claimer_wins),
        CASE(test_contract_claim_key_repeats),
        CASE(test_contract_claim_lease_ends),
        CASE(test_contract_claim_again_ends_a_clients_claim),
        CASE(test_contract_claim_key_of_any_bytes),
        CASE(test_contract_from_created),
        CASE(test_contract_history),
        CASE(test_contract_history_bound),
        CASE(test_contract_idempotency),
        CASE(test_contract_idempotency_race),
        CASE(test_contract_data_round_trip),
        CASE(test_contract_result_round_trip),
        CASE(test_contract_ttl),
        CASE(test_contract_listener),
        CASE(test_contract_secret),
        CASE(test_dynamodb_ttl_attribute),
        CASE(test_dynamodb_items_not_tasks),
        CASE(test_dynamodb_history_of_older_items),
        CASE(test_dynamodb_update_corrects_its_facts),
        CASE(test_dynamodb_claim_made_again_elsewhere_renews),
        CASE(test_dynamodb_refuses_for_good),
        CASE(test_dynamodb_leaves_room_for_every_change),
        CASE(test_dynamodb_missing_table),
    };
#undef CASE
    bool have_dynamodb = ddb_test_setup();
    int failed = 0;
    char ran[64] = "";
    for (size_t i = 0; i < sizeof factories / sizeof factories[0]; i++) {
        current = &factories[i];
        if (on_dynamodb() && !have_dynamodb)
            continue;
        char group[64];
        snprintf(group, sizeof group, "api+store over %s", current->name);
        failed += _cmocka_run_group_tests(group, tests, sizeof tests / sizeof tests[0], NULL, NULL);
        snprintf(ran + strlen(ran), sizeof ran - strlen(ran), "%s%s", *ran ? ", " : "",
                 current->name);
    }
    printf("store factories run: %s%s\n", ran,
           have_dynamodb ? "" : " (dynamodb skipped: DYNAMODB_ENDPOINT is not set)");
    ddb_test_teardown();
    return failed;
}
