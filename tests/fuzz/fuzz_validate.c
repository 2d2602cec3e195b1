/*
 * fuzz_validate — request bodies (core/validate.h), the API's first contact
 * with untrusted input. Every input is checked as a POST /tasks body with the
 * default configuration and as a PATCH /tasks/{id} body; up to its first NUL,
 * as the limit and wait query parameters, and as a ttl string in a create.
 *
 * Invariants beyond "no crash, no leak, no UB":
 *  - only JSON is accepted (RFC 8259, as Python's json.loads reads it);
 *  - a rejection has at least one error, and its 422 body (validation_body)
 *    is strictly valid JSON {"detail":[...]} with exactly that many items;
 *  - an accepted create has a configured task_type, a ttl >= 0 or none, data
 *    that is a JSON object nesting at most VALIDATE_MAX_DEPTH levels, and a
 *    data_image that decodes (attrval_to_json) back to the same data;
 *  - an accepted update has a status_msg and a result that is valid JSON (or none);
 *  - an accepted limit is 1 to 100, a wait 1 to VALIDATE_WAIT_MAX.
 *
 * Run: scripts/fuzz.sh validate   (corpus: tests/fuzz/corpus/validate/)
 *
 * Its first findings are seeds of the corpus (regress-*): a 422 quoting a
 * parser message cut inside a UTF-8 sequence, and leading zeros ("0999...")
 * taken as numbers when another integer was beyond 64 bits.
 */
#include "fuzz_util.h"

#include "core/attrval.h"
#include "core/config.h"
#include "core/json_util.h"
#include "core/validate.h"

#include <jansson.h>

static config cfg;
static bool cfg_ready;

/* The 422 body of v: strictly valid JSON, {"detail": [count items]}. */
static void check_422(validation *v)
{
    FUZZ_CHECK(v->count > 0, "rejected without an error");
    size_t len = 0;
    char *body = validation_body(v, &len);
    FUZZ_CHECK(body != NULL, "validation_body returned NULL");
    FUZZ_CHECK(strlen(body) == len, "422 body length %zu, strlen %zu", len, strlen(body));
    FUZZ_CHECK(fuzz_json_valid(body, len), "422 body is not valid JSON: %s", body);
    /* jansson reads it unless an echoed integer is wider than 64 bits (kept as sent) */
    json_t *j = json_loadb(body, len, JSON_DECODE_ANY, NULL);
    if (j) {
        json_t *detail = json_object_get(j, "detail");
        FUZZ_CHECK(json_is_object(j) && json_object_size(j) == 1 && json_is_array(detail),
                   "422 body is not {\"detail\":[...]}: %s", body);
        FUZZ_CHECK(json_array_size(detail) == (size_t)v->count, "%zu items, %d errors: %s",
                   json_array_size(detail), v->count, body);
        for (size_t i = 0; i < json_array_size(detail); i++) {
            json_t *it = json_array_get(detail, i);
            FUZZ_CHECK(json_is_string(json_object_get(it, "type")) &&
                           json_is_array(json_object_get(it, "loc")) &&
                           json_is_string(json_object_get(it, "msg")),
                       "detail item %zu lacks type/loc/msg: %s", i, body);
        }
        json_decref(j);
    }
    free(body);
}

/* Accepted bodies are JSON (RFC 8259; a UTF-8 byte order mark is skipped, as Python does). */
static void check_is_json(const uint8_t *data, size_t size)
{
    if (size >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0) {
        data += 3;
        size -= 3;
    }
    FUZZ_CHECK(fuzz_json_valid((const char *)data, size), "accepted a body that is not JSON: %.*s",
               (int)size, (const char *)data);
}

static void check_create(const uint8_t *data, size_t size)
{
    create_request r;
    memset(&r, 0, sizeof r);
    validation v = {0};
    if (validate_create(&cfg, (const char *)data, size, &r, &v)) {
        FUZZ_CHECK(v.count == 0, "accepted with %d errors", v.count);
        check_is_json(data, size);
        FUZZ_CHECK(config_has_task_type(&cfg, r.task_type), "accepted task_type %s", r.task_type);
        FUZZ_CHECK(r.ttl == TASK_NULL_TIME || r.ttl >= 0, "accepted ttl %lld", (long long)r.ttl);
        FUZZ_CHECK(r.data != NULL, "accepted without data");
        json_t *d = json_loads(r.data, 0, NULL);
        FUZZ_CHECK(json_is_object(d), "data is not a JSON object: %s", r.data);
        FUZZ_CHECK(json_depth_within(d, VALIDATE_MAX_DEPTH), "data nests too deep: %s", r.data);
        FUZZ_CHECK(r.data_image != NULL, "accepted without data_image");
        json_t *img = json_loads(r.data_image, 0, NULL);
        FUZZ_CHECK(img != NULL, "data_image is not JSON: %s", r.data_image);
        json_t *back = attrval_to_json(img);
        FUZZ_CHECK(back && json_equal(back, d), "data_image %s does not decode to data %s",
                   r.data_image, r.data);
        json_decref(back);
        json_decref(img);
        json_decref(d);
        create_request_free(&r);
    } else {
        check_422(&v);
    }
    validation_free(&v);
}

static void check_update(const uint8_t *data, size_t size)
{
    update_request r;
    memset(&r, 0, sizeof r);
    validation v = {0};
    if (validate_update((const char *)data, size, &r, &v)) {
        FUZZ_CHECK(v.count == 0, "accepted with %d errors", v.count);
        check_is_json(data, size);
        FUZZ_CHECK(r.status >= TASK_CREATED && r.status <= TASK_FAILED, "status %d", (int)r.status);
        FUZZ_CHECK(r.status_msg != NULL, "accepted without status_msg");
        FUZZ_CHECK(!r.result || fuzz_json_valid(r.result, strlen(r.result)),
                   "result is not valid JSON: %s", r.result);
        update_request_free(&r);
    } else {
        check_422(&v);
    }
    validation_free(&v);
}

/* The input up to its first NUL as a query parameter's value, and as a ttl string. */
static void check_query(const uint8_t *data, size_t size)
{
    char *s = strndup((const char *)data, size);
    if (!s)
        abort();
    int out = 0;
    validation v = {0};
    if (validate_limit(s, &out, &v))
        FUZZ_CHECK(v.count == 0 && out >= 1 && out <= 100, "limit \"%s\" read as %d", s, out);
    else
        check_422(&v);
    validation_free(&v);
    if (validate_wait(s, &out, &v))
        FUZZ_CHECK(v.count == 0 && out >= 1 && out <= VALIDATE_WAIT_MAX, "wait \"%s\" read as %d",
                   s, out);
    else
        check_422(&v);
    validation_free(&v);
    json_t *body = json_pack("{s:s,s:s}", "task_type", "TASK1", "ttl", s); /* NULL: not UTF-8 */
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    if (text)
        check_create((const uint8_t *)text, strlen(text));
    free(text);
    json_decref(body);
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!cfg_ready) {
        if (!config_defaults(&cfg))
            abort();
        cfg_ready = true;
    }
    check_create(data, size);
    check_update(data, size);
    check_query(data, size);
    return 0;
}
