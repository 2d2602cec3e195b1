/*
 * Unit tests for util/metrics: counters, gauges and histograms written in the
 * Prometheus text format, the series limit and its overflow counter,
 * concurrent updates from several threads, and what changed written as
 * CloudWatch Embedded Metric Format lines.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "support/stderr_capture.h"
#include "util/metrics.h"

#include <jansson.h>
#include <math.h>
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

/* A value that is no number is written as the text format spells it (NaN, +Inf, -Inf), never
 * as printf does ("nan", "-nan", "inf"): a NaN with its sign bit set, as x86 computes 0.0/0.0,
 * came out "-nan", which Prometheus's parser refuses, failing the whole scrape. */
static void test_non_finite_values(void **state)
{
    (void)state;
    metrics *m = metrics_new();
    static const double bounds[] = {1};
    metrics_declare(m, "g", "A gauge.", METRIC_GAUGE, NULL, 0);
    metrics_declare(m, "h_seconds", "A histogram.", METRIC_HISTOGRAM, bounds, 1);
    metrics_set(m, "g", "k=\"nan\"", -NAN);
    metrics_set(m, "g", "k=\"pos\"", INFINITY);
    metrics_set(m, "g", "k=\"neg\"", -INFINITY);
    metrics_observe(m, "h_seconds", "k=\"inf\"", INFINITY);
    metrics_observe(m, "h_seconds", "k=\"nan\"", 0.5);
    metrics_observe(m, "h_seconds", "k=\"nan\"", -NAN);
    char *s = render(m);
    check_format(s);
    expect_line(s, "g{k=\"nan\"} NaN");
    expect_line(s, "g{k=\"pos\"} +Inf");
    expect_line(s, "g{k=\"neg\"} -Inf");
    expect_line(s, "h_seconds_sum{k=\"inf\"} +Inf");
    expect_line(s, "h_seconds_sum{k=\"nan\"} NaN");
    expect_line(s, "h_seconds_count{k=\"nan\"} 2");
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

/* A bucket's le is its bound as Go's client writes it, however many digits it takes (Prometheus
 * reads le as the bound): two bounds apart in the seventh digit are two buckets. */
static void test_histogram_bounds_of_many_digits(void **state)
{
    (void)state;
    metrics *m = metrics_new();
    static const double buckets[] = {0.000125, 2.0000005, 1048576, 1048577};
    metrics_declare(m, "body_bytes", "Bodies.", METRIC_HISTOGRAM, buckets, 4);
    metrics_observe(m, "body_bytes", NULL, 1048577);
    char *s = render(m);
    check_format(s);
    expect_line(s, "body_bytes_bucket{le=\"0.000125\"} 0");
    expect_line(s, "body_bytes_bucket{le=\"1.048576e+06\"} 0");
    expect_line(s, "body_bytes_bucket{le=\"1.048577e+06\"} 1");
    expect_line(s, "body_bytes_bucket{le=\"2.0000005\"} 0");
    free(s);
    metrics_free(m);
}

/* A family's help is docstring text: a backslash and a newline in it are written as the text
 * format has them, a backslash and the character (n for the newline), so that it stays on its
 * line. */
static void test_help_escaped(void **state)
{
    (void)state;
    metrics *m = metrics_new();
    metrics_declare(m, "paths_total", "Paths under C:\\tmp,\nby kind.", METRIC_COUNTER, NULL, 0);
    metrics_add(m, "paths_total", NULL, 1);
    char *s = render(m);
    check_format(s);
    expect_line(s, "# HELP paths_total Paths under C:\\\\tmp,\\nby kind.");
    expect_line(s, "paths_total 1");
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

/* A label value holding a backslash, a quote or a newline is written escaped (\\, \", \n), where
 * it came out as given: a newline split the sample line in two, a quote ended the value early, and
 * Prometheus's parser refused the scrape. Labels that need no escape are written as given. */
static void test_label_values_escaped(void **state)
{
    (void)state;
    metrics *m = metrics_new();
    static const double buckets[] = {1};
    metrics_declare(m, "req_total", "Requests.", METRIC_COUNTER, NULL, 0);
    metrics_declare(m, "lat", "Latency.", METRIC_HISTOGRAM, buckets, 1);
    metrics_add(m, "req_total", "k=\"a\\b\"", 1);
    metrics_add(m, "req_total", "k=\"a\"b\"", 2);
    metrics_add(m, "req_total", "k=\"a\nb\"", 3);
    metrics_add(m, "req_total", "k=\"\\\"\n\",e=\"\",z=\"plain\"", 4);
    metrics_add(m, "req_total", "k=\"plain\",e=\"\"", 5);
    metrics_observe(m, "lat", "r=\"x\"y\"", 0.5);
    char *s = render(m);
    check_format(s);
    expect_line(s, "req_total{k=\"a\\\\b\"} 1");
    expect_line(s, "req_total{k=\"a\\\"b\"} 2");
    expect_line(s, "req_total{k=\"a\\nb\"} 3");
    expect_line(s, "req_total{k=\"\\\\\\\"\\n\",e=\"\",z=\"plain\"} 4");
    expect_line(s, "req_total{k=\"plain\",e=\"\"} 5");
    expect_line(s, "lat_bucket{r=\"x\\\"y\",le=\"1\"} 1");
    expect_line(s, "lat_bucket{r=\"x\\\"y\",le=\"+Inf\"} 1");
    expect_line(s, "lat_sum{r=\"x\\\"y\"} 0.5");
    expect_line(s, "lat_count{r=\"x\\\"y\"} 1");
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

    /* the registry is full: new label sets, in any family, are dropped and counted, and the
     * first drop is told once in a warning */
    test_stderr log;
    test_stderr_begin(&log);
    metrics_add(m, "s_total", "i=\"new1\"", 1);
    metrics_add(m, "s_total", "i=\"new2\"", 1);
    metrics_add(m, "s_total", "i=\"new1\"", 1);
    metrics_set(m, "g", NULL, 3);
    char *logged = test_stderr_end(&log);
    assert_int_equal(
        expect_logged(logged, "metrics: a series was dropped", "\"metric\":\"s_total\""), 1);
    free(logged);
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

/* ---- CloudWatch Embedded Metric Format ---- */

static const char *const EMF_FIELDS[] = {"function_request_id", "r-1", NULL};

/* A member of obj that must be there. */
static json_t *member(json_t *obj, const char *name)
{
    json_t *v = json_object_get(obj, name);
    if (!v)
        fail_msg("no member \"%s\"", name);
    return v;
}

static json_t *directive(json_t *o)
{
    return json_array_get(member(member(o, "_aws"), "CloudWatchMetrics"), 0);
}

/* One EMF object as reference/observability.md has it: one directive, every dimension a string
 * member, every metric a number or at most 100 numbers, its unit one CloudWatch knows. */
static void check_emf_object(json_t *o)
{
    json_t *aws = member(o, "_aws");
    assert_int_equal(json_integer_value(member(aws, "Timestamp")), 1234);
    assert_int_equal(json_array_size(member(aws, "CloudWatchMetrics")), 1);
    json_t *d = directive(o);
    assert_string_equal(json_string_value(member(d, "Namespace")), "ns");
    json_t *dims = member(d, "Dimensions");
    assert_int_equal(json_array_size(dims), 1);
    json_t *set = json_array_get(dims, 0);
    assert_true(json_array_size(set) >= 1 && json_array_size(set) <= 30);
    assert_string_equal(json_string_value(json_array_get(set, 0)), "service");
    size_t i;
    json_t *v;
    json_array_foreach(set, i, v)
    {
        assert_true(json_is_string(member(o, json_string_value(v))));
    }
    json_t *defs = member(d, "Metrics");
    assert_true(json_array_size(defs) >= 1 && json_array_size(defs) <= 100);
    json_array_foreach(defs, i, v)
    {
        const char *unit = json_string_value(member(v, "Unit"));
        assert_true(strcmp(unit, "Count") == 0 || strcmp(unit, "Seconds") == 0 ||
                    strcmp(unit, "None") == 0);
        json_t *value = member(o, json_string_value(member(v, "Name")));
        if (json_is_array(value)) {
            assert_true(json_array_size(value) >= 1 && json_array_size(value) <= 100);
            size_t k;
            json_t *x;
            json_array_foreach(value, k, x)
            {
                assert_true(json_is_number(x));
            }
        } else {
            assert_true(json_is_number(value));
        }
    }
    assert_string_equal(json_string_value(member(o, "service")), "svc");
    assert_string_equal(json_string_value(member(o, "function_request_id")), "r-1");
}

/* The EMF lines of what changed, each parsed and checked: a JSON array, empty when none. */
static json_t *emf(metrics *m)
{
    metrics_emf o = {
        .namespace_ = "ns", .service = "svc", .timestamp_ms = 1234, .fields = EMF_FIELDS};
    sbuf b = {0};
    metrics_write_emf(m, &o, &b);
    assert_false(sbuf_failed(&b));
    json_t *lines = json_array();
    for (size_t at = 0; at < b.len;) {
        const char *line = b.data + at;
        const char *nl = memchr(line, '\n', b.len - at);
        assert_non_null(nl);
        json_error_t err;
        json_t *obj = json_loadb(line, (size_t)(nl - line), 0, &err);
        if (!obj)
            fail_msg("not JSON (%s): %.*s", err.text, (int)(nl - line), line);
        check_emf_object(obj);
        json_array_append_new(lines, obj);
        at = (size_t)(nl - b.data) + 1;
    }
    sbuf_free(&b);
    return lines;
}

/* The dimension names of an object, joined by commas. */
static void dimensions_of(json_t *o, char *out, size_t size)
{
    json_t *set = json_array_get(json_object_get(directive(o), "Dimensions"), 0);
    out[0] = '\0';
    size_t i;
    json_t *v;
    json_array_foreach(set, i, v)
    {
        if (i)
            strncat(out, ",", size - strlen(out) - 1);
        strncat(out, json_string_value(v), size - strlen(out) - 1);
    }
}

/* The objects of lines whose dimensions are dims, in order. */
static json_t *objects_with(json_t *lines, const char *dims)
{
    json_t *out = json_array();
    size_t i;
    json_t *o;
    json_array_foreach(lines, i, o)
    {
        char d[256];
        dimensions_of(o, d, sizeof d);
        if (strcmp(d, dims) == 0)
            json_array_append(out, o);
    }
    return out;
}

/* The one object of lines whose dimensions are dims. */
static json_t *object_with(json_t *lines, const char *dims)
{
    json_t *all = objects_with(lines, dims);
    if (json_array_size(all) != 1)
        fail_msg("%zu objects with dimensions %s", json_array_size(all), dims);
    json_t *o = json_array_get(all, 0);
    json_decref(all); /* lines still holds it */
    return o;
}

/* The unit the object's directive gives metric name; NULL when it does not name it. */
static const char *unit_of(json_t *o, const char *name)
{
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(directive(o), "Metrics"), i, v)
    {
        if (strcmp(json_string_value(json_object_get(v, "Name")), name) == 0)
            return json_string_value(json_object_get(v, "Unit"));
    }
    return NULL;
}

static metrics *emf_registry(bool keep)
{
    static const double buckets[] = {0.1, 1};
    metrics *m = metrics_new();
    metrics_declare(m, "req_total", "R.", METRIC_COUNTER, NULL, 0);
    metrics_declare(m, "dur_seconds", "D.", METRIC_HISTOGRAM, buckets, 2);
    metrics_declare(m, "batch", "B.", METRIC_HISTOGRAM, buckets, 2);
    metrics_declare(m, "g", "G.", METRIC_GAUGE, NULL, 0);
    if (keep)
        metrics_keep_observations(m);
    return m;
}

static const char *const CREATED = "route=\"/tasks\",method=\"POST\",code=\"201\"";

static void test_emf_writes_what_changed(void **state)
{
    (void)state;
    metrics *m = emf_registry(true);
    metrics_add(m, "req_total", CREATED, 1);
    metrics_add(m, "req_total", CREATED, 1);
    metrics_observe(m, "dur_seconds", "route=\"/tasks\"", 0.25);
    metrics_observe(m, "dur_seconds", "route=\"/tasks\"", 0.5);
    metrics_observe(m, "batch", "route=\"/tasks\"", 3);
    metrics_set(m, "g", NULL, 3);

    json_t *lines = emf(m);
    assert_int_equal(json_array_size(lines), 3); /* one object per label set */
    json_t *o = object_with(lines, "service,route,method,code");
    assert_string_equal(json_string_value(member(o, "route")), "/tasks");
    assert_string_equal(json_string_value(member(o, "method")), "POST");
    assert_string_equal(json_string_value(member(o, "code")), "201");
    assert_true(json_number_value(member(o, "req_total")) == 2);
    assert_string_equal(unit_of(o, "req_total"), "Count");
    assert_null(json_object_get(o, "dur_seconds"));

    o = object_with(lines, "service,route");
    json_t *d = member(o, "dur_seconds");
    assert_int_equal(json_array_size(d), 2);
    assert_true(json_number_value(json_array_get(d, 0)) == 0.25);
    assert_true(json_number_value(json_array_get(d, 1)) == 0.5);
    assert_string_equal(unit_of(o, "dur_seconds"), "Seconds");
    assert_int_equal(json_array_size(member(o, "batch")), 1);
    assert_string_equal(unit_of(o, "batch"), "Count");
    assert_null(json_object_get(o, "req_total"));

    o = object_with(lines, "service");
    assert_true(json_number_value(member(o, "g")) == 3);
    assert_string_equal(unit_of(o, "g"), "None");
    json_decref(lines);

    /* nothing changed since */
    lines = emf(m);
    assert_int_equal(json_array_size(lines), 0);
    json_decref(lines);

    /* a counter's increase since the last write, only the new observations; the gauge was not
     * set again */
    metrics_add(m, "req_total", CREATED, 5);
    metrics_observe(m, "dur_seconds", "route=\"/tasks\"", 0.75);
    lines = emf(m);
    assert_int_equal(json_array_size(lines), 2);
    o = object_with(lines, "service,route,method,code");
    assert_true(json_number_value(member(o, "req_total")) == 5);
    o = object_with(lines, "service,route");
    d = member(o, "dur_seconds");
    assert_int_equal(json_array_size(d), 1);
    assert_true(json_number_value(json_array_get(d, 0)) == 0.75);
    assert_null(json_object_get(o, "batch"));
    assert_null(unit_of(o, "batch"));
    json_decref(lines);

    /* the Prometheus totals are not touched by it */
    char *s = render(m);
    expect_line(s, "req_total{route=\"/tasks\",method=\"POST\",code=\"201\"} 7");
    expect_line(s, "dur_seconds_count{route=\"/tasks\"} 3");
    expect_line(s, "g 3");
    free(s);
    metrics_free(m);
}

static void test_emf_histogram_values_in_parts(void **state)
{
    (void)state;
    metrics *m = emf_registry(true);
    metrics_add(m, "req_total", "route=\"/r\"", 1);
    for (int i = 0; i < 250; i++)
        metrics_observe(m, "dur_seconds", "route=\"/r\"", i);
    json_t *lines = emf(m);
    json_t *parts = objects_with(lines, "service,route");
    assert_int_equal(json_array_size(lines), 3);
    assert_int_equal(json_array_size(parts), 3);
    int next = 0;
    for (size_t p = 0; p < 3; p++) {
        json_t *o = json_array_get(parts, p);
        json_t *d = member(o, "dur_seconds");
        assert_int_equal(json_array_size(d), p < 2 ? 100 : 50);
        for (size_t k = 0; k < json_array_size(d); k++)
            assert_true(json_number_value(json_array_get(d, k)) == next++);
        /* the counter is in the first object only */
        assert_true((json_object_get(o, "req_total") != NULL) == (p == 0));
        assert_true((unit_of(o, "req_total") != NULL) == (p == 0));
    }
    json_decref(parts);
    json_decref(lines);

    /* past what a series keeps, observations count as overflow (and still in the totals) */
    for (int i = 0; i < METRICS_EMF_KEPT + 5; i++)
        metrics_observe(m, "dur_seconds", "route=\"/r\"", 1);
    lines = emf(m);
    assert_int_equal(json_array_size(lines), METRICS_EMF_KEPT / 100);
    json_decref(lines);
    char *s = render(m);
    expect_line(s, "taskd_metrics_overflow_total 5");
    char line[64];
    snprintf(line, sizeof line, "dur_seconds_count{route=\"/r\"} %d", 250 + METRICS_EMF_KEPT + 5);
    expect_line(s, line);
    free(s);
    metrics_free(m);
}

static void test_emf_label_values_as_given(void **state)
{
    (void)state;
    metrics *m = emf_registry(true);
    metrics_add(m, "req_total", "k=\"a\"b\\c\nd\",e=\"\"", 1);
    json_t *lines = emf(m);
    json_t *o = object_with(lines, "service,k,e");
    assert_string_equal(json_string_value(member(o, "k")), "a\"b\\c\nd");
    assert_string_equal(json_string_value(member(o, "e")), "");
    json_decref(lines);
    metrics_free(m);
}

static void test_emf_without_kept_observations(void **state)
{
    (void)state;
    metrics *m = emf_registry(false);
    metrics_observe(m, "dur_seconds", NULL, 0.5);
    metrics_observe(m, "dur_seconds", NULL, NAN);
    json_t *lines = emf(m);
    assert_int_equal(json_array_size(lines), 0);
    json_decref(lines);
    metrics_add(m, "req_total", NULL, 1);
    lines = emf(m);
    assert_int_equal(json_array_size(lines), 1);
    assert_null(json_object_get(json_array_get(lines, 0), "dur_seconds"));
    json_decref(lines);
    metrics_free(m);

    /* kept, a value JSON cannot hold is left out of the values */
    m = emf_registry(true);
    metrics_observe(m, "dur_seconds", NULL, NAN);
    metrics_observe(m, "dur_seconds", NULL, INFINITY);
    metrics_observe(m, "dur_seconds", NULL, 2);
    lines = emf(m);
    assert_int_equal(json_array_size(lines), 1);
    assert_int_equal(json_array_size(member(json_array_get(lines, 0), "dur_seconds")), 1);
    json_decref(lines);
    metrics_free(m);
    metrics_write_emf(NULL, NULL, NULL); /* no registry: nothing */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_registry),
        cmocka_unit_test(test_counter_without_labels),
        cmocka_unit_test(test_counter_with_labels),
        cmocka_unit_test(test_counter_large_values),
        cmocka_unit_test(test_non_finite_values),
        cmocka_unit_test(test_gauge_set),
        cmocka_unit_test(test_histogram),
        cmocka_unit_test(test_histogram_bounds_of_many_digits),
        cmocka_unit_test(test_help_escaped),
        cmocka_unit_test(test_histogram_with_labels),
        cmocka_unit_test(test_label_values_escaped),
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
        cmocka_unit_test(test_emf_writes_what_changed),
        cmocka_unit_test(test_emf_histogram_values_in_parts),
        cmocka_unit_test(test_emf_label_values_as_given),
        cmocka_unit_test(test_emf_without_kept_observations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
