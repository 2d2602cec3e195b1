/*
 * Unit tests for core/task_event: a change-log row as a Server-Sent Event
 * (fields from the new image, or the old one for a REMOVE; escaping; the
 * frame's lines), the filters, and the reset frame.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/task_event.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define ID1 "0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e5f"

static const char IMAGE_STARTED[] =
    "{\"id\":{\"S\":\"" ID1 "\"},\"task_type\":{\"S\":\"TASK1\"},\"status\":{\"S\":"
    "\"IN_PROGRESS\"},\"status_msg\":{\"S\":\"Task started\"},\"created_time\":{\"N\":\"1\"}}";
static const char IMAGE_DONE[] =
    "{\"id\":{\"S\":\"" ID1 "\"},\"task_type\":{\"S\":\"TASK1\"},\"status\":{\"S\":"
    "\"COMPLETED\"},\"status_msg\":{\"S\":\"line one\\nline two \\\"quoted\\\"\"}}";

/* The frame of row, checked line by line; returns its data parsed (decref it). */
static json_t *frame_of(const change_row *row, const char *want_id)
{
    task_event ev;
    assert_int_equal(task_event_from_row(row, &ev), TASK_EVENT_TOLD);
    sbuf b = {0};
    task_event_sse(&b, &ev);
    task_event_clear(&ev);
    assert_false(sbuf_failed(&b));
    /* exactly: id line, event line, one data line, blank line */
    char want_head[64];
    snprintf(want_head, sizeof want_head, "id: %s\nevent: task\ndata: ", want_id);
    assert_int_equal(strncmp(b.data, want_head, strlen(want_head)), 0);
    const char *data = b.data + strlen(want_head);
    const char *nl = strchr(data, '\n');
    assert_non_null(nl);
    assert_string_equal(nl, "\n\n");
    json_error_t err;
    json_t *j = json_loadb(data, (size_t)(nl - data), 0, &err);
    if (!j)
        fail_msg("data is not JSON: %s (%s)", data, err.text);
    sbuf_free(&b);
    return j;
}

static void test_modify_event(void **state)
{
    (void)state;
    change_row row = {42, "MODIFY", ID1, IMAGE_STARTED, NULL, 1767323045, NULL, NULL, NULL};
    json_t *j = frame_of(&row, "42");
    /* the keys, in the order of the contract */
    static const char *const keys[] = {"seq",        "id",   "task_type", "status",
                                       "status_msg", "time", "event"};
    assert_int_equal(json_object_size(j), 7);
    const char *key;
    json_t *v;
    size_t i = 0;
    json_object_foreach(j, key, v)
    {
        (void)v;
        assert_string_equal(key, keys[i++]);
    }
    assert_int_equal(json_integer_value(json_object_get(j, "seq")), 42);
    assert_string_equal(json_string_value(json_object_get(j, "id")), ID1);
    assert_string_equal(json_string_value(json_object_get(j, "task_type")), "TASK1");
    assert_string_equal(json_string_value(json_object_get(j, "status")), "IN_PROGRESS");
    assert_string_equal(json_string_value(json_object_get(j, "status_msg")), "Task started");
    assert_string_equal(json_string_value(json_object_get(j, "time")), "2026-01-02T03:04:05Z");
    assert_string_equal(json_string_value(json_object_get(j, "event")), "MODIFY");
    json_decref(j);
}

static void test_status_msg_stays_on_one_line(void **state)
{
    (void)state;
    change_row row = {7, "MODIFY", ID1, IMAGE_DONE, IMAGE_STARTED, 0, NULL, NULL, NULL};
    json_t *j = frame_of(&row, "7");
    assert_string_equal(json_string_value(json_object_get(j, "status_msg")),
                        "line one\nline two \"quoted\"");
    assert_string_equal(json_string_value(json_object_get(j, "time")), "1970-01-01T00:00:00Z");
    json_decref(j);
}

static void test_remove_reads_the_old_image(void **state)
{
    (void)state;
    change_row row = {9, "REMOVE", ID1, NULL, IMAGE_DONE, 1, NULL, NULL, NULL};
    json_t *j = frame_of(&row, "9");
    assert_string_equal(json_string_value(json_object_get(j, "status")), "COMPLETED");
    assert_string_equal(json_string_value(json_object_get(j, "event")), "REMOVE");
    json_decref(j);
}

static void test_rows_without_an_event(void **state)
{
    (void)state;
    task_event ev;
    const change_row bad[] = {
        {.seq = 1,
         .event_name = "MODIFY",
         .task_id = ID1,
         .old_image = IMAGE_DONE}, /* no new image */
        {.seq = 2,
         .event_name = "REMOVE",
         .task_id = ID1,
         .new_image = IMAGE_DONE}, /* no old image */
        {.seq = 3, .event_name = "INSERT", .task_id = ID1, .new_image = "not json"}, /* malformed */
        {.seq = 4,
         .event_name = "INSERT",
         .task_id = ID1,
         .new_image = "{\"status\":{\"S\":\"CREATED\"}}"}, /* no task_type */
        {.seq = 5,
         .event_name = "INSERT",
         .task_id = ID1,
         .new_image =
             "{\"task_type\":{\"N\":\"1\"},\"status\":{\"S\":\"CREATED\"}}"}, /* not a string */
        {.seq = 6, .event_name = "INSERT", .new_image = IMAGE_DONE},          /* no task id */
        {.seq = 7,
         .event_name = "UNKNOWNEVENT",
         .task_id = ID1,
         .new_image = IMAGE_DONE}, /* too long */
        /* kept apart: without a type, or a status too long to be one */
        {.seq = 8,
         .event_name = "MODIFY",
         .task_id = ID1,
         .status = "IN_PROGRESS",
         .status_msg = ""},
        {.seq = 9,
         .event_name = "MODIFY",
         .task_id = ID1,
         .task_type = "TASK1",
         .status = "NOT_A_STATUS_AT_ALL",
         .status_msg = ""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (task_event_from_row(&bad[i], &ev) != TASK_EVENT_NONE)
            fail_msg("row %zu gave an event", i);
        assert_null(ev.status_msg);
    }
}

/* A row that keeps its event's fields apart (schema 7's records) gives the same frame as one
 * whose image holds them; its images are not read. */
static void test_fields_kept_apart(void **state)
{
    (void)state;
    change_row row = {.seq = 42,
                      .event_name = "MODIFY",
                      .task_id = ID1,
                      .new_image = "not read",
                      .time = 1767323045,
                      .task_type = "TASK1",
                      .status = "IN_PROGRESS",
                      .status_msg = "Task started"};
    change_row imaged = {42, "MODIFY", ID1, IMAGE_STARTED, NULL, 1767323045, NULL, NULL, NULL};
    task_event a, b;
    assert_int_equal(task_event_from_row(&row, &a), TASK_EVENT_TOLD);
    assert_int_equal(task_event_from_row(&imaged, &b), TASK_EVENT_TOLD);
    sbuf fa = {0}, fb = {0};
    task_event_sse(&fa, &a);
    task_event_sse(&fb, &b);
    assert_string_equal(fa.data, fb.data);
    sbuf_free(&fa);
    sbuf_free(&fb);
    task_event_clear(&a);
    task_event_clear(&b);
    /* and without images at all */
    row.new_image = NULL;
    row.event_name = "INSERT";
    row.status = "CREATED";
    row.status_msg = "";
    json_t *j = frame_of(&row, "42");
    assert_string_equal(json_string_value(json_object_get(j, "status")), "CREATED");
    assert_string_equal(json_string_value(json_object_get(j, "task_type")), "TASK1");
    assert_string_equal(json_string_value(json_object_get(j, "event")), "INSERT");
    json_decref(j);
}

static void test_filters(void **state)
{
    (void)state;
    change_row row = {1, "MODIFY", ID1, IMAGE_STARTED, NULL, 0, NULL, NULL, NULL};
    task_event ev;
    assert_int_equal(task_event_from_row(&row, &ev), TASK_EVENT_TOLD);
    assert_true(task_event_matches(&ev, NULL, NULL));
    assert_true(task_event_matches(&ev, "TASK1", NULL));
    assert_true(task_event_matches(&ev, "TASK1", "IN_PROGRESS"));
    assert_false(task_event_matches(&ev, "TASK2", NULL));
    assert_false(task_event_matches(&ev, NULL, "CREATED"));
    assert_false(task_event_matches(&ev, "TASK1", "COMPLETED"));
    task_event_clear(&ev);
}

static void test_reset_frame(void **state)
{
    (void)state;
    sbuf b = {0};
    task_event_reset_sse(&b, 1234, TASK_EVENT_TRIMMED);
    const char head[] = "id: 1233\nevent: reset\ndata: ";
    assert_int_equal(strncmp(b.data, head, sizeof head - 1), 0);
    assert_string_equal(b.data + b.len - 2, "\n\n");
    json_t *j = json_loadb(b.data + sizeof head - 1, b.len - (sizeof head - 1) - 2, 0, NULL);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "oldest_seq")), 1234);
    assert_true(json_is_string(json_object_get(j, "detail")));
    assert_null(strchr(b.data, '\r'));
    json_decref(j);
    sbuf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_modify_event),
        cmocka_unit_test(test_status_msg_stays_on_one_line),
        cmocka_unit_test(test_remove_reads_the_old_image),
        cmocka_unit_test(test_rows_without_an_event),
        cmocka_unit_test(test_fields_kept_apart),
        cmocka_unit_test(test_filters),
        cmocka_unit_test(test_reset_frame),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
