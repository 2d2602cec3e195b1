/*
 * Unit tests for trace/span_log: a span comes back whole (every attribute type, links, status
 * message or none), the newest are kept by count and by bytes across many wraps of the ring,
 * a span too large for it is refused, and reads select one task's spans in the order they came.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "trace/span_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TASK_A "0190f3c2-aaaa-7000-8000-000000000001"
#define TASK_B "0190f3c2-bbbb-7000-8000-000000000002"

/* Span n of a task: its start is n, its name "span n", and an attribute "n" = n; pad adds a
 * string attribute of that many bytes. */
static void make(span *s, const char *task_id, int n, size_t pad)
{
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "span %d", n);
    snprintf(s->task_id, sizeof s->task_id, "%s", task_id);
    memset(s->trace_id, 0xab, 16);
    s->span_id[0] = (uint8_t)n;
    s->span_id[1] = (uint8_t)(n >> 8);
    s->start_ns = n;
    s->end_ns = n + 10;
    s->kind = SPAN_KIND_CONSUMER;
    span_set_int(s, "n", n);
    if (pad) {
        char *v = malloc(pad + 1);
        assert_non_null(v);
        memset(v, 'a' + n % 26, pad);
        v[pad] = '\0';
        span_set_str(s, "pad", v);
        free(v);
    }
}

static size_t put(span_log *l, const char *task_id, int n, size_t pad)
{
    span s;
    make(&s, task_id, n, pad);
    bool ok = span_log_put(l, &s);
    span_clear(&s);
    return ok;
}

static void free_spans(span *got, size_t n)
{
    for (size_t i = 0; i < n; i++)
        span_clear(&got[i]);
    free(got);
}

static void test_a_span_comes_back_whole(void **state)
{
    (void)state;
    span_log *l = span_log_new(8, 64 * 1024);
    assert_non_null(l);
    span s;
    memset(&s, 0, sizeof s);
    memset(s.name, 'x', SPAN_NAME_MAX); /* the longest name */
    memcpy(s.task_id, TASK_A, sizeof TASK_A);
    for (int i = 0; i < 16; i++)
        s.trace_id[i] = (uint8_t)(i + 1);
    memset(s.span_id, 0x11, 8);
    memset(s.parent_id, 0x22, 8);
    s.flags = 1;
    s.kind = SPAN_KIND_PRODUCER;
    s.start_ns = 1796169422087000001LL;
    s.end_ns = 1796169422087999999LL;
    span_set_error(&s, "it failed: \"quoted\"");
    char key[SPAN_KEY_MAX + 1];
    memset(key, 'k', SPAN_KEY_MAX);
    key[SPAN_KEY_MAX] = '\0';
    span_set_str(&s, key, "a value");
    span_set_str(&s, "empty", "");
    span_set_static(&s, "static", "configured");
    span_set_int(&s, "int", -42);
    span_set_double(&s, "double", 0.125);
    span_set_bool(&s, "bool", true);
    span_set_bool(&s, "false", false);
    uint8_t tid[16], sid[8];
    for (int i = 0; i < SPAN_MAX_LINKS; i++) {
        memset(tid, i + 1, 16);
        memset(sid, i + 100, 8);
        span_add_link(&s, tid, sid);
    }
    assert_true(span_log_put(l, &s));
    assert_int_equal(span_log_count(l), 1);

    span *got;
    assert_int_equal(span_log_task(l, TASK_A, &got), 1);
    span *g = &got[0];
    assert_memory_equal(g->trace_id, s.trace_id, 16);
    assert_memory_equal(g->span_id, s.span_id, 8);
    assert_memory_equal(g->parent_id, s.parent_id, 8);
    assert_int_equal(g->flags, 1);
    assert_string_equal(g->name, s.name);
    assert_string_equal(g->task_id, TASK_A);
    assert_int_equal(g->kind, SPAN_KIND_PRODUCER);
    assert_true(g->start_ns == s.start_ns && g->end_ns == s.end_ns);
    assert_int_equal(g->status, SPAN_STATUS_ERROR);
    assert_string_equal(g->status_msg, "it failed: \"quoted\"");
    assert_ptr_not_equal(g->status_msg, s.status_msg);
    assert_int_equal(g->n_attrs, s.n_attrs);
    for (int i = 0; i < s.n_attrs; i++) {
        assert_string_equal(g->attrs[i].key, s.attrs[i].key);
        assert_int_equal(g->attrs[i].type, s.attrs[i].type);
        assert_false(g->attrs[i].borrowed); /* every string is the copy's own */
        switch (s.attrs[i].type) {
        case SPAN_ATTR_STRING:
            assert_string_equal(g->attrs[i].v.s, s.attrs[i].v.s);
            assert_ptr_not_equal(g->attrs[i].v.s, s.attrs[i].v.s);
            break;
        case SPAN_ATTR_INT:
            assert_true(g->attrs[i].v.i == s.attrs[i].v.i);
            break;
        case SPAN_ATTR_DOUBLE:
            assert_true(g->attrs[i].v.d == s.attrs[i].v.d);
            break;
        case SPAN_ATTR_BOOL:
            assert_int_equal(g->attrs[i].v.b, s.attrs[i].v.b);
            break;
        }
    }
    assert_int_equal(g->n_links, SPAN_MAX_LINKS);
    assert_memory_equal(g->links, s.links, sizeof s.links);
    free_spans(got, 1);
    span_clear(&s);

    /* no status message stays none */
    make(&s, TASK_B, 1, 0);
    assert_true(span_log_put(l, &s));
    span_clear(&s);
    assert_int_equal(span_log_task(l, TASK_B, &got), 1);
    assert_null(got[0].status_msg);
    assert_int_equal(got[0].n_links, 0);
    free_spans(got, 1);
    span_log_free(l);
}

static void test_the_newest_by_count(void **state)
{
    (void)state;
    span_log *l = span_log_new(4, 64 * 1024);
    for (int i = 0; i < 6; i++)
        assert_true(put(l, TASK_A, i, 0));
    assert_int_equal(span_log_count(l), 4);
    span *got;
    assert_int_equal(span_log_task(l, TASK_A, &got), 4);
    for (int i = 0; i < 4; i++) {
        char want[16];
        snprintf(want, sizeof want, "span %d", i + 2);
        assert_string_equal(got[i].name, want);
        assert_true(got[i].start_ns == i + 2);
    }
    free_spans(got, 4);
    span_log_free(l);
}

/* Spans of many sizes through a small log: after each put, what is kept is the newest spans,
 * one after the other up to the last, each whole, in at most the log's bytes, and no fewer than
 * fit: a record here takes its pad and 100 to 200 bytes more, and the space a wrap leaves
 * unused at the end is less than one record. */
static void test_the_newest_by_bytes_across_wraps(void **state)
{
    (void)state;
    enum { BYTES = 8192, PUTS = 5000 };
    span_log *l = span_log_new(1000, BYTES);
    srand(7);
    size_t pads[PUTS];
    size_t least_kept = PUTS;
    for (int i = 0; i < PUTS; i++) {
        pads[i] = (size_t)(rand() % 1500);
        assert_true(put(l, TASK_A, i, pads[i]));
        span *got;
        size_t n = span_log_task(l, TASK_A, &got);
        assert_int_equal(n, span_log_count(l));
        assert_true(n >= 1);
        if (i >= 10) /* once the log has filled */
            least_kept = n < least_kept ? n : least_kept;
        size_t first = (size_t)i + 1 - n, pad_bytes = 0;
        for (size_t k = 0; k < n; k++) {
            int want = (int)(first + k);
            assert_true(got[k].start_ns == want);
            assert_int_equal(got[k].n_attrs, pads[want] ? 2 : 1);
            assert_true(got[k].attrs[0].v.i == want);
            if (pads[want]) {
                assert_int_equal(strlen(got[k].attrs[1].v.s), pads[want]);
                assert_int_equal(got[k].attrs[1].v.s[0], 'a' + want % 26);
                assert_int_equal(got[k].attrs[1].v.s[pads[want] - 1], 'a' + want % 26);
            }
            pad_bytes += pads[want];
        }
        assert_true(pad_bytes + 100 * n <= BYTES);
        /* the span before the oldest kept had to go to make room */
        if (first > 0)
            assert_true(pad_bytes + pads[first - 1] + 200 * (n + 1) > BYTES - (1500 + 200));
        free_spans(got, n);
    }
    assert_true(least_kept >= 2);
    span_log_free(l);
}

static void test_a_span_too_large_is_refused(void **state)
{
    (void)state;
    span_log *l = span_log_new(10, 8192);
    assert_true(put(l, TASK_A, 1, 100));
    assert_true(put(l, TASK_A, 2, 1900)); /* under a quarter with its head */
    assert_false(put(l, TASK_A, 3, 2048));
    assert_int_equal(span_log_count(l), 2);
    span *got;
    assert_int_equal(span_log_task(l, TASK_A, &got), 2);
    free_spans(got, 2);
    span_log_free(l);
}

static void test_one_task_in_order(void **state)
{
    (void)state;
    span_log *l = span_log_new(100, 64 * 1024);
    for (int i = 0; i < 10; i++)
        assert_true(put(l, i % 3 ? TASK_A : TASK_B, i, 0));
    span *got;
    assert_int_equal(span_log_task(l, TASK_B, &got), 4);
    for (int k = 0; k < 4; k++)
        assert_true(got[k].start_ns == 3 * k);
    free_spans(got, 4);
    assert_int_equal(span_log_task(l, TASK_A, &got), 6);
    free_spans(got, 6);
    got = (span *)l;
    assert_int_equal(span_log_task(l, "0190f3c2-cccc-7000-8000-000000000003", &got), 0);
    assert_null(got);
    assert_int_equal(span_log_task(l, "", &got), 0);
    assert_int_equal(span_log_task(l, NULL, &got), 0);
    assert_int_equal(span_log_task(l, "0190f3c2", &got), 0); /* a prefix is not the task */
    span_log_free(l);
    assert_int_equal(span_log_task(NULL, TASK_A, &got), 0);
    assert_int_equal(span_log_count(NULL), 0);
    span_log_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_span_comes_back_whole),
        cmocka_unit_test(test_the_newest_by_count),
        cmocka_unit_test(test_the_newest_by_bytes_across_wraps),
        cmocka_unit_test(test_a_span_too_large_is_refused),
        cmocka_unit_test(test_one_task_in_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
