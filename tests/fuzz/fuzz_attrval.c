/*
 * fuzz_attrval — the DynamoDB AttributeValue codec (core/attrval.h) and the
 * change-record writer (core/change_record.h). attrval_to_json reads what
 * DynamoDB sends (stream images, GetItem results: S, N, BOOL, NULL, M, L, SS,
 * NS); attrval_write / attrval_from_text make the images of change records.
 *
 * Input: JSON text, used three ways:
 *  1. decode, as an AttributeValue from DynamoDB: a value that decodes
 *     re-encodes (attrval_write) to valid JSON that decodes to the same value
 *     (SS/NS come back as L: the second decode is compared, not the input);
 *  2. encode, as plain task data: attrval_from_text gives valid JSON for any
 *     JSON, and it decodes back to the same value;
 *  3. a change record: a task whose data (an object input), result and
 *     status_msg (a string input) come from the input gets an item image
 *     (attrval_task_image) and an INSERT/MODIFY/REMOVE record
 *     (change_record_write); the record is valid JSON whose Keys.id.S is the
 *     task id and whose NewImage.data decodes to the data.
 *
 * Run: scripts/fuzz.sh attrval   (corpus: tests/fuzz/corpus/attrval/)
 */
#include "fuzz_util.h"

#include "core/attrval.h"
#include "core/change_record.h"
#include "core/json_util.h"

#include <jansson.h>

static char *dump(const json_t *v)
{
    char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    return t ? t : strdup("?");
}

static void check_decode(const json_t *v)
{
    json_t *j = attrval_to_json(v);
    if (!j)
        return;
    sbuf b = {0};
    attrval_write(&b, j);
    FUZZ_CHECK(!sbuf_failed(&b) && b.data, "attrval_write failed");
    FUZZ_CHECK(fuzz_json_valid(b.data, b.len), "attrval_write wrote invalid JSON: %s", b.data);
    json_t *again = json_loads(b.data, 0, NULL);
    FUZZ_CHECK(again != NULL, "jansson cannot read attrval_write's %s", b.data);
    json_t *j2 = attrval_to_json(again);
    if (!j2 || !json_equal(j, j2)) {
        char *a = dump(j), *c = j2 ? dump(j2) : strdup("NULL");
        FUZZ_CHECK(false, "decode(encode(%s)) = %s via %s", a, c, b.data);
    }
    json_decref(j2);
    json_decref(again);
    sbuf_free(&b);
    json_decref(j);
}

static void check_encode(const char *text, const json_t *v)
{
    char *a = attrval_from_text(text, NULL);
    FUZZ_CHECK(a != NULL, "attrval_from_text refused JSON");
    FUZZ_CHECK(fuzz_json_valid(a, strlen(a)), "attrval_from_text gave invalid JSON: %s", a);
    json_t *av = json_loads(a, 0, NULL);
    FUZZ_CHECK(av != NULL, "jansson cannot read %s", a);
    json_t *back = attrval_to_json(av);
    if (!back || !json_equal(back, v)) {
        char *x = dump(v), *y = back ? dump(back) : strdup("NULL");
        FUZZ_CHECK(false, "decode(attrval_from_text(%s)) = %s via %s", x, y, a);
    }
    json_decref(back);
    json_decref(av);
    free(a);
}

static void check_record(const json_t *v, const uint8_t *data, size_t size)
{
    task t;
    memset(&t, 0, sizeof t);
    snprintf(t.id, sizeof t.id, "0190a5b2-6b7c-7d8e-9f01-23456789abcd");
    snprintf(t.task_type, sizeof t.task_type, "TASK1");
    uint8_t h = size ? data[0] : 0;
    t.status = (task_status)(h % TASK_N_STATUSES);
    t.status_msg = json_is_string(v) ? (char *)json_string_value(v) : (char *)"";
    t.created_time = 1700000000 + (int64_t)size;
    t.updated_time = h & 4 ? TASK_NULL_TIME : t.created_time + 1;
    t.ttl = h & 8 ? TASK_NULL_TIME : (int64_t)h << 40;
    char *text = json_to_text(v);
    FUZZ_CHECK(text != NULL, "json_to_text failed");
    t.data = json_is_object(v) ? text : NULL;
    t.result = h & 16 ? text : NULL;
    t.trace = h & 32 ? (char *)"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" : NULL;

    sbuf img = {0};
    FUZZ_CHECK(attrval_task_image(&img, &t, NULL), "task image refused JSON data/result");
    FUZZ_CHECK(!sbuf_failed(&img) && fuzz_json_valid(img.data, img.len),
               "task image is not valid JSON: %s", img.data);
    static const char *const events[] = {"INSERT", "MODIFY", "REMOVE"};
    const char *event = events[h % 3];
    sbuf rec = {0};
    int64_t seq = (int64_t)size * 7919 + h;
    change_record_write(&rec, seq, event, t.id, strcmp(event, "REMOVE") ? img.data : NULL,
                        strcmp(event, "INSERT") ? img.data : NULL, t.created_time);
    FUZZ_CHECK(!sbuf_failed(&rec) && fuzz_json_valid(rec.data, rec.len),
               "change record is not valid JSON: %s", rec.data);
    json_t *r = json_loads(rec.data, 0, NULL);
    FUZZ_CHECK(r != NULL, "jansson cannot read the record %s", rec.data);
    json_t *ddb = json_object_get(r, "dynamodb");
    FUZZ_CHECK(json_is_string(json_object_get(r, "eventName")) &&
                   strcmp(json_string_value(json_object_get(r, "eventName")), event) == 0,
               "eventName");
    json_t *kid = json_object_get(json_object_get(json_object_get(ddb, "Keys"), "id"), "S");
    FUZZ_CHECK(json_is_string(kid) && strcmp(json_string_value(kid), t.id) == 0, "Keys.id.S");
    json_t *image = json_object_get(ddb, strcmp(event, "REMOVE") ? "NewImage" : "OldImage");
    json_t *wrapped = json_pack("{s:O}", "M", image);
    json_t *plain = attrval_to_json(wrapped);
    json_decref(wrapped);
    FUZZ_CHECK(plain != NULL, "the image does not decode: %s", img.data);
    json_t *want = t.data ? (json_t *)v : NULL;
    json_t *gotd = json_object_get(plain, "data");
    if (want)
        FUZZ_CHECK(json_equal(gotd, want), "image data differs from the task's: %s", img.data);
    else
        FUZZ_CHECK(json_is_object(gotd) && json_object_size(gotd) == 0, "absent data is not {}");
    if (t.result)
        FUZZ_CHECK(json_equal(json_object_get(plain, "result"), v), "image result differs");
    json_t *sm = json_object_get(plain, "status_msg");
    FUZZ_CHECK(json_is_string(sm) && strcmp(json_string_value(sm), t.status_msg) == 0,
               "status_msg differs");
    json_decref(plain);
    json_decref(r);
    sbuf_free(&rec);
    sbuf_free(&img);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_strdup(data, size);
    json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
    if (v) {
        check_decode(v);
        check_encode(text, v);
        check_record(v, data, size);
        json_decref(v);
    } else {
        FUZZ_CHECK(attrval_from_text(text, NULL) == NULL, "attrval_from_text took non-JSON");
    }
    free(text);
    return 0;
}
