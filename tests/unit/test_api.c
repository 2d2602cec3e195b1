/*
 * Unit tests for the API as a function: api_handle() over a real SQLite
 * store in a temporary directory, with no transport, no pipeline and no
 * telemetry — the way an API Gateway translator would drive it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "api/api.h"
#include "store/store_sqlite.h"
#include "util/log.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

typedef struct fixture {
    char dir[64];
    char db[128];
    store *store;
    config cfg;
    api api;
} fixture;

static int64_t fixed_now(void)
{
    return 1700000000;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/taskd-api-test.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->db, sizeof f->db, "%s/t.db", f->dir);
    char err[256];
    store_sqlite_options o = {.path = f->db, .sync = STORE_SYNC_NORMAL};
    f->store = store_sqlite_open(&o, err, sizeof err);
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
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

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
    assert_int_equal(json_integer_value(json_object_get(j, "created_time")), 1700000000);
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

/* The body limit is the API's own rule, whatever transport calls it. */
static void test_body_limit(void **state)
{
    fixture *f = *state;
    f->cfg.body_limit = 64;
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

/* Without a pipeline, its routes are neither served nor documented. */
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
    json_decref(doc);
    api_response_free(&r);
}

int main(void)
{
    log_setup(LOG_ERROR, "test");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_read_update, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idempotency_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_routing_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_pipeline_routes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
