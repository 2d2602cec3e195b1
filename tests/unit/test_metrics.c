/*
 * Unit tests for util/metrics: counters, gauges and histograms written in the
 * Prometheus text format, the series limit and its overflow counter, and
 * concurrent updates from several threads.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "util/metrics.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---- */

static char *render(metrics *m)
{
    sbuf b = {0};
    metrics_write(m, &b);
    assert_false(sbuf_failed(&b));
    assert_non_null(b.data);
    assert_true(b.len > 0 && b.data[b.len - 1] == '\n');
    return sbuf_take(&b, NULL);
}

/* Number of lines of text exactly equal to line. */
static int count_line(const char *text, const char *line)
{
    int n = 0;
    size_t len = strlen(line);
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        size_t l = nl ? (size_t)(nl - p) : strlen(p);
        if (l == len && memcmp(p, line, len) == 0)
            n++;
        p += l + (nl ? 1 : 0);
    }
    return n;
}

/* Number of lines starting with prefix. */
static int count_prefix(const char *text, const char *prefix)
{
    int n = 0;
    size_t len = strlen(prefix);
    for (const char *p = text; *p;) {
        if (strncmp(p, prefix, len) == 0)
            n++;
        const char *nl = strchr(p, '\n');
        if (!nl)
            break;
        p = nl + 1;
    }
    return n;
}

static void expect_line(const char *text, const char *line)
{
    if (count_line(text, line) != 1)
        fail_msg("want exactly one line \"%s\" in:\n%s", line, text);
}

/* Every line is a comment or `name[{labels}] value`, with no blank lines. */
static void check_format(const char *text)
{
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        assert_non_null(nl);
        assert_true(nl > p);
        if (*p == '#') {
            assert_true(strncmp(p, "# HELP ", 7) == 0 || strncmp(p, "# TYPE ", 7) == 0);
        } else {
            const char *sp = memchr(p, ' ', (size_t)(nl - p));
            /* the labels may hold spaces only inside quotes; here they never do */
            assert_non_null(sp);
            char *end;
            strtod(sp + 1, &end);
            if (end != nl)
                fail_msg("bad sample value in line: %.*s", (int)(nl - p), p);
        }
        p = nl + 1;
    }
}

static unsigned long long overflow_of(const char *text)
{
    const char *p = strstr(text, "\ntaskd_metrics_overflow_total ");
    assert_non_null(p);
    return strtoull(p + strlen("\ntaskd_metrics_overflow_total "), NULL, 10);
}

/* ---- tests ---- */

static void test_empty_registry(void **state)
{
    (void)state;
    metrics *m = metrics_new();
    assert_non_null(m);
    char *s = render(m);
    assert_string_equal(s, "# HELP taskd_metrics_overflow_total Updates dropped: too many series.\n"
                           "# TYPE taskd_metrics_overflow_total counter\n"
                           "taskd_metrics_overflow_total 0\n");
    free(s);
    metrics_free(m);
}

static void test_counter_without_labels(void **state)
{
    (void)state;
    metrics *m = metrics_new();
    metrics_declare(m, "taskd_requests_total", "Requests served.", METRIC_COUNTER, NULL, 0);
    char *s = render(m);
    /* declared but never updated: the family header only, no sample */
    expect_line(s, "# HELP taskd_requests_total Requests served.");
    expect_line(s, "# TYPE taskd_requests_total counter");
    assert_int_equal(count_prefix(s, "taskd_requests_total"), 0);
    free(s);

    metrics_add(m, "taskd_requests_total", NULL, 1);
    metrics_add(m, "taskd_requests_total", NULL, 2);
    metrics_add(m, "taskd_requests_total", "", 4); /* "" is the same series as NULL */
    metrics_add(m, "taskd_requests_total", NULL, 0);
    s = render(m);
    check_format(s);
    expect_line(s, "taskd_requests_total 7");
    assert_int_equal(count_prefix(s, "taskd_requests_total"), 1);
    assert_null(strstr(s, "taskd_requests_total{"));
    assert_int_equal(overflow_of(s), 0);
    free(s);
    metrics_free(m);
}

static void test_counter_with_labels(void **state)
{
    (void)state;
    metrics *m = metrics_new();
    metrics_declare(m, "taskd_tasks_total", "Tasks created.", METRIC_COUNTER, NULL, 0);
    metrics_add(m, "taskd_tasks_total", "task_type=\"TASK1\"", 1);
    metrics_add(m, "taskd_tasks_total", "task_type=\"TASK2\"", 5);
    metrics_add(m, "taskd_tasks_total", "task_type=\"TASK1\"", 1);
    metrics_add(m, "taskd_tasks_total", "task_type=\"TASK1\",status=\"FAILED\"", 3);
    metrics_add(m, "taskd_tasks_total", NULL, 10);
    char *s = render(m);
    check_format(s);
    expect_line(s, "taskd_tasks_total{task_type=\"TASK1\"} 2");
    expect_line(s, "taskd_tasks_total{task_type=\"TASK2\"} 5");
    expect_line(s, "taskd_tasks_total{task_type=\"TASK1\",status=\"FAILED\"} 3");
    expect_line(s, "taskd_tasks_total 10");
    assert_int_equal(count_prefix(s, "taskd_tasks_total"), 4);
    /* the HELP and TYPE lines come once, before the samples */
    assert_int_equal(count_prefix(s, "# HELP taskd_tasks_total "), 1);
    assert_int_equal(count_prefix(s, "# TYPE taskd_tasks_total "), 1);
    assert_true(strstr(s, "# TYPE taskd_tasks_total counter") <
                strstr(s, "taskd_tasks_total{task_type=\"TASK1\"}"));
    free(s);
    metrics_free(m);
}

static void test_counter_large_values(void **state)
{
    (void)state;
    metrics *m = metrics_new();
    metrics_declare(m, "big_total", "Big.", METRIC_COUNTER, NULL, 0);
    metrics_add(m, "big_total", NULL, 1ULL << 40);
    metrics_add(m, "big_total", NULL, 1ULL << 40);
    char *s = render(m);
    expect_line(s, "big_total 2199023255552");
    free(s);
    metrics_free(m);
}

static void test_gauge_set(void **state)
{
    (void)state;
    metrics *m = metrics_new();
    metrics_declare(m, "taskd_queue_depth", "Messages waiting.", METRIC_GAUGE, NULL, 0);
    metrics_set(m, "taskd_queue_depth", "queue=\"task1\"", 5);
    metrics_set(m, "taskd_queue_depth", "queue=\"task1\"", 2.5); /* set replaces */
    metrics_set(m, "taskd_queue_depth", "queue=\"dlq\"", -3);
    metrics_set(m, "taskd_queue_depth", NULL, 0);
    char *s = render(m);
    check_format(s);
    expect_line(s, "# TYPE taskd_queue_depth gauge");
    expect_line(s, "taskd_queue_depth{queue=\"task1\"} 2.5");
    expect_line(s, "taskd_queue_depth{queue=\"dlq\"} -3");
    expect_line(s, "taskd_queue_depth 0");
    free(s);

    metrics_set(m, "taskd_queue_depth", "queue=\"task1\"", 1e10);
    s = render(m);
    expect_line(s, "taskd_queue_depth{queue=\"task1\"} 10000000000");
    free(s);
    metrics_free(m);
}

static void test_histogram(void **state)
{
    (void)state;
    metrics *m = metrics_new();
    static const double buckets[] = {0.5, 1, 8};
    metrics_declare(m, "taskd_run_seconds", "Handler run time.", METRIC_HISTOGRAM, buckets, 3);
    /* 0.5 and 1 sit exactly on bounds: le is inclusive */
    static const double obs[] = {0.25, 0.5, 1, 2, 64};
    for (size_t i = 0; i < 5; i++)
        metrics_observe(m, "taskd_run_seconds", NULL, obs[i]);
    char *s = render(m);
    check_format(s);
    expect_line(s, "# TYPE taskd_run_seconds histogram");
    expect_line(s, "taskd_run_seconds_bucket{le=\"0.5\"} 2");
    expect_line(s, "taskd_run_seconds_bucket{le=\"1\"} 3");
    expect_line(s, "taskd_run_seconds_bucket{le=\"8\"} 4");
    expect_line(s, "taskd_run_seconds_bucket{le=\"+Inf\"} 5");
    expect_line(s, "taskd_run_seconds_sum 67.75");
    expect_line(s, "taskd_run_seconds_count 5");
    /* in order: buckets ascending, +Inf, _sum, _count */
    const char *order[] = {"taskd_run_seconds_bucket{le=\"0.5\"}",
                           "taskd_run_seconds_bucket{le=\"1\"}",
                           "taskd_run_seconds_bucket{le=\"8\"}",
                           "taskd_run_seconds_bucket{le=\"+Inf\"}",
                           "taskd_run_seconds_sum",
                           "taskd_run_seconds_count"};
    const char *p = s;
    for (size_t i = 0; i < 6; i++) {
        const char *q = strstr(p, order[i]);
        if (!q)
            fail_msg("%s missing or out of order in:\n%s", order[i], s);
        p = q + 1;
    }
    assert_int_equal(count_prefix(s, "taskd_run_seconds"), 6);
    free(s);
    metrics_free(m);
}

static void test_histogram_with_labels(void **state)
{
    (void)state;
    metrics *m = metrics_new();
    static const double buckets[] = {0.005, 0.25, 2.5};
    metrics_declare(m, "lat", "Latency.", METRIC_HISTOGRAM, buckets, 3);
    metrics_observe(m, "lat", "route=\"/tasks\"", 0.001);
    metrics_observe(m, "lat", "route=\"/tasks\"", 3);
    metrics_observe(m, "lat", "route=\"/metrics\"", 0.125);
    char *s = render(m);
    check_format(s);
    expect_line(s, "lat_bucket{route=\"/tasks\",le=\"0.005\"} 1");
    expect_line(s, "lat_bucket{route=\"/tasks\",le=\"0.25\"} 1");
    expect_line(s, "lat_bucket{route=\"/tasks\",le=\"2.5\"} 1");
    expect_line(s, "lat_bucket{route=\"/tasks\",le=\"+Inf\"} 2");
    expect_line(s, "lat_sum{route=\"/tasks\"} 3.0009999999999999");
    expect_line(s, "lat_count{route=\"/tasks\"} 2");
    expect_line(s, "lat_bucket{route=\"/metrics\",le=\"0.005\"} 0");
    expect_line(s, "lat_bucket{route=\"/metrics\",le=\"0.25\"} 1");
    expect_line(s, "lat_bucket{route=\"/metrics\",le=\"2.5\"} 1");
    expect_line(s, "lat_bucket{route=\"/metrics\",le=\"+Inf\"} 1");
    expect_line(s, "lat_sum{route=\"/metrics\"} 0.125");
    expect_line(s, "lat_count{route=\"/metrics\"} 1");
    assert_int_equal(count_prefix(s, "# HELP lat "), 1);
    assert_int_equal(count_prefix(s, "# TYPE lat "), 1);
    free(s);
    metrics_free(m);
}

static void test_histogram_cumulative_many(void **state)
{
    (void)state;
    metrics *m = metrics_new();
    static const double buckets[] = {1, 2, 3, 4};
    metrics_declare(m, "h", "H.", METRIC_HISTOGRAM, buckets, 4);
    /* k observations of value k for k = 1..5: non-cumulative 1,2,3,4 and 5 above */
    for (int k = 1; k <= 5; k++)
        for (int i = 0; i < k; i++)
            metrics_observe(m, "h", NULL, k);
    char *s = render(m);
    expect_line(s, "h_bucket{le=\"1\"} 1");
    expect_line(s, "h_bucket{le=\"2\"} 3");
    expect_line(s, "h_bucket{le=\"3\"} 6");
    expect_line(s, "h_bucket{le=\"4\"} 10");
    expect_line(s, "h_bucket{le=\"+Inf\"} 15");
    expect_line(s, "h_sum 55");
    expect_line(s, "h_count 15");
    free(s);
    metrics_free(m);
}

static void test_histogram_bucket_cap(void **state)
{
    (void)state;
    metrics *m = metrics_new();
    double buckets[METRICS_MAX_BUCKETS + 4];
    for (int i = 0; i < METRICS_MAX_BUCKETS + 4; i++)
        buckets[i] = i + 1;
    metrics_declare(m, "capped", "C.", METRIC_HISTOGRAM, buckets, METRICS_MAX_BUCKETS + 4);
    metrics_observe(m, "capped", NULL, 18); /* above the last kept bound (16) */
    char *s = render(m);
    assert_int_equal(count_prefix(s, "capped_bucket{le=\""), METRICS_MAX_BUCKETS + 1);
    expect_line(s, "capped_bucket{le=\"16\"} 0");
    assert_int_equal(count_line(s, "capped_bucket{le=\"17\"} 0"), 0);
    expect_line(s, "capped_bucket{le=\"+Inf\"} 1");
    free(s);
    metrics_free(m);
}

static void test_families_in_declaration_order(void **state)
{
    (void)state;
    metrics *m = metrics_new();
    metrics_declare(m, "b_total", "B.", METRIC_COUNTER, NULL, 0);
    metrics_declare(m, "a_gauge", "A.", METRIC_GAUGE, NULL, 0);
    metrics_set(m, "a_gauge", NULL, 1);
    metrics_add(m, "b_total", NULL, 1);
    char *s = render(m);
    check_format(s);
    const char *b = strstr(s, "# HELP b_total B.");
    const char *a = strstr(s, "# HELP a_gauge A.");
    const char *o = strstr(s, "# HELP taskd_metrics_overflow_total");
    assert_non_null(a);
    assert_non_null(b);
    assert_true(b < a && a < o);
    /* each sample follows its own family's header */
    assert_true(strstr(s, "\nb_total 1\n") < a);
    assert_true(strstr(s, "\na_gauge 1\n") > a);
    assert_int_equal(count_prefix(s, "# HELP "), 3);
    assert_int_equal(count_prefix(s, "# TYPE "), 3);
    free(s);
    metrics_free(m);
}

static void test_unknown_family_ignored(void **state)
{
    (void)state;
    metrics *m = metrics_new();
    metrics_declare(m, "known_total", "K.", METRIC_COUNTER, NULL, 0);
    metrics_add(m, "unknown_total", NULL, 1);
    metrics_set(m, "unknown_gauge", "x=\"1\"", 1);
    metrics_observe(m, "unknown_seconds", NULL, 1);
    metrics_add(m, "known", NULL, 1); /* a prefix of a family is not the family */
    metrics_add(m, "known_total_x", NULL, 1);
    char *s = render(m);
    assert_null(strstr(s, "unknown"));
    assert_int_equal(count_prefix(s, "known"), 0);
    assert_int_equal(overflow_of(s), 0); /* not counted as overflow */
    free(s);
    metrics_free(m);
}

static void test_declare_limits(void **state)
{
    (void)state;
    metrics *m = metrics_new();
    /* a name longer than 63 characters is refused */
    char longname[80];
    memset(longname, 'n', 64);
    longname[64] = '\0';
    metrics_declare(m, longname, "Long.", METRIC_COUNTER, NULL, 0);
    metrics_add(m, longname, NULL, 1);
    longname[63] = '\0';
    metrics_declare(m, longname, "Max.", METRIC_COUNTER, NULL, 0);
    metrics_add(m, longname, NULL, 2);
    char *s = render(m);
    assert_int_equal(count_prefix(s, "# HELP nnn"), 1);
    char line[96];
    snprintf(line, sizeof line, "%s 2", longname);
    expect_line(s, line);
    free(s);
    metrics_free(m);

    /* at most 32 families; later declarations are ignored */
    m = metrics_new();
    for (int i = 0; i < 40; i++) {
        char name[16];
        snprintf(name, sizeof name, "f%d_total", i);
        metrics_declare(m, name, "F.", METRIC_COUNTER, NULL, 0);
        metrics_add(m, name, NULL, 1);
    }
    s = render(m);
    assert_int_equal(count_prefix(s, "# HELP f"), 32);
    expect_line(s, "f31_total 1");
    assert_int_equal(count_prefix(s, "f32_total"), 0);
    free(s);
    metrics_free(m);
}

static void test_series_limit(void **state)
{
    (void)state;
    metrics *m = metrics_new();
    metrics_declare(m, "s_total", "S.", METRIC_COUNTER, NULL, 0);
    metrics_declare(m, "g", "G.", METRIC_GAUGE, NULL, 0);
    char labels[32];
    for (int i = 0; i < METRICS_MAX_SERIES; i++) {
        snprintf(labels, sizeof labels, "i=\"%d\"", i);
        metrics_add(m, "s_total", labels, 1);
    }
    char *s = render(m);
    assert_int_equal(count_prefix(s, "s_total{"), METRICS_MAX_SERIES);
    assert_int_equal(overflow_of(s), 0);
    free(s);

    /* the registry is full: new label sets, in any family, are dropped and counted */
    metrics_add(m, "s_total", "i=\"new1\"", 1);
    metrics_add(m, "s_total", "i=\"new2\"", 1);
    metrics_add(m, "s_total", "i=\"new1\"", 1);
    metrics_set(m, "g", NULL, 3);
    /* existing series still update, without counting */
    metrics_add(m, "s_total", "i=\"0\"", 41);
    metrics_add(m, "s_total", "i=\"511\"", 1);
    /* an unknown family is not an overflow even when full */
    metrics_add(m, "nope", "i=\"x\"", 1);
    s = render(m);
    check_format(s);
    assert_int_equal(count_prefix(s, "s_total{"), METRICS_MAX_SERIES);
    assert_null(strstr(s, "new1"));
    assert_int_equal(count_prefix(s, "g "), 0);
    expect_line(s, "s_total{i=\"0\"} 42");
    expect_line(s, "s_total{i=\"511\"} 2");
    expect_line(s, "taskd_metrics_overflow_total 4");
    free(s);
    metrics_free(m);
}

static void test_label_length_limit(void **state)
{
    (void)state;
    metrics *m = metrics_new();
    metrics_declare(m, "l_total", "L.", METRIC_COUNTER, NULL, 0);
    char labels[200];
    /* k="vvv...": 159 characters fit */
    memset(labels, 'v', sizeof labels);
    memcpy(labels, "k=\"", 3);
    labels[158] = '"';
    labels[159] = '\0';
    metrics_add(m, "l_total", labels, 1);
    char *s = render(m);
    assert_int_equal(count_prefix(s, "l_total{k=\"vvv"), 1);
    assert_int_equal(overflow_of(s), 0);
    free(s);
    labels[158] = 'v';
    labels[159] = '"';
    labels[160] = '\0';
    metrics_add(m, "l_total", labels, 1);
    s = render(m);
    assert_int_equal(count_prefix(s, "l_total{"), 1);
    assert_int_equal(overflow_of(s), 1);
    free(s);
    metrics_free(m);
}

/* ---- concurrency ---- */

enum { THREADS = 4, ITERS = 20000 };

static void *worker(void *arg)
{
    metrics *m = arg;
    for (int i = 0; i < ITERS; i++) {
        metrics_add(m, "c_total", NULL, 1);
        metrics_add(m, "c_total", (i & 1) ? "p=\"odd\"" : "p=\"even\"", 2);
        metrics_observe(m, "h_seconds", NULL, (i % 4) * 0.5);
        metrics_set(m, "g", NULL, 7);
    }
    return NULL;
}

static void test_concurrent_updates(void **state)
{
    (void)state;
    metrics *m = metrics_new();
    static const double buckets[] = {0.5, 1};
    metrics_declare(m, "c_total", "C.", METRIC_COUNTER, NULL, 0);
    metrics_declare(m, "h_seconds", "H.", METRIC_HISTOGRAM, buckets, 2);
    metrics_declare(m, "g", "G.", METRIC_GAUGE, NULL, 0);
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, worker, m), 0);
    /* reading while writers run is safe and well-formed */
    for (int i = 0; i < 20; i++) {
        char *s = render(m);
        check_format(s);
        free(s);
    }
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    char *s = render(m);
    check_format(s);
    char line[96];
    snprintf(line, sizeof line, "c_total %d", THREADS * ITERS);
    expect_line(s, line);
    snprintf(line, sizeof line, "c_total{p=\"even\"} %d", THREADS * ITERS);
    expect_line(s, line);
    snprintf(line, sizeof line, "c_total{p=\"odd\"} %d", THREADS * ITERS);
    expect_line(s, line);
    /* values 0, 0.5, 1, 1.5 in equal numbers */
    int n = THREADS * ITERS;
    snprintf(line, sizeof line, "h_seconds_bucket{le=\"0.5\"} %d", n / 2);
    expect_line(s, line);
    snprintf(line, sizeof line, "h_seconds_bucket{le=\"1\"} %d", n / 4 * 3);
    expect_line(s, line);
    snprintf(line, sizeof line, "h_seconds_bucket{le=\"+Inf\"} %d", n);
    expect_line(s, line);
    snprintf(line, sizeof line, "h_seconds_count %d", n);
    expect_line(s, line);
    snprintf(line, sizeof line, "h_seconds_sum %d", n / 4 * 3);
    expect_line(s, line);
    expect_line(s, "g 7");
    expect_line(s, "taskd_metrics_overflow_total 0");
    free(s);
    metrics_free(m);
}

static void test_null_registry(void **state)
{
    (void)state;
    static const double buckets[] = {1};
    metrics_declare(NULL, "x_total", "X.", METRIC_COUNTER, NULL, 0);
    metrics_declare(NULL, "h", "H.", METRIC_HISTOGRAM, buckets, 1);
    metrics_add(NULL, "x_total", NULL, 1);
    metrics_add(NULL, "x_total", "a=\"b\"", 1);
    metrics_set(NULL, "g", NULL, 1);
    metrics_observe(NULL, "h", NULL, 1);
    metrics_free(NULL);
}

static void test_write_appends(void **state)
{
    (void)state;
    metrics *m = metrics_new();
    metrics_declare(m, "a_total", "A.", METRIC_COUNTER, NULL, 0);
    metrics_add(m, "a_total", NULL, 1);
    sbuf b = {0};
    sbuf_puts(&b, "prefix\n");
    metrics_write(m, &b);
    assert_int_equal(strncmp(b.data, "prefix\n# HELP a_total A.\n", 25), 0);
    /* writing does not reset anything */
    sbuf_free(&b);
    metrics_write(m, &b);
    assert_non_null(strstr(b.data, "\na_total 1\n"));
    sbuf_free(&b);
    metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_registry),
        cmocka_unit_test(test_counter_without_labels),
        cmocka_unit_test(test_counter_with_labels),
        cmocka_unit_test(test_counter_large_values),
        cmocka_unit_test(test_gauge_set),
        cmocka_unit_test(test_histogram),
        cmocka_unit_test(test_histogram_with_labels),
        cmocka_unit_test(test_histogram_cumulative_many),
        cmocka_unit_test(test_histogram_bucket_cap),
        cmocka_unit_test(test_families_in_declaration_order),
        cmocka_unit_test(test_unknown_family_ignored),
        cmocka_unit_test(test_declare_limits),
        cmocka_unit_test(test_series_limit),
        cmocka_unit_test(test_label_length_limit),
        cmocka_unit_test(test_concurrent_updates),
        cmocka_unit_test(test_null_registry),
        cmocka_unit_test(test_write_appends),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
