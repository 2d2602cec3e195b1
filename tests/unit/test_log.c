/*
 * Unit tests for the JSON-lines logger: fields, escaping, and the
 * per-thread context fields that every line of a thread repeats.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "support/stderr_capture.h"
#include "util/log.h"

#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Run fn with stderr sent to a temporary file; return what it wrote (malloc'ed). */
static char *capture(void (*fn)(void))
{
    test_stderr c;
    test_stderr_begin(&c);
    fn();
    return test_stderr_end(&c);
}

static json_t *line(const char *text, int n)
{
    const char *p = text;
    for (int i = 0; i < n; i++) {
        p = strchr(p, '\n');
        assert_non_null(p);
        p++;
    }
    const char *end = strchr(p, '\n');
    assert_non_null(end);
    json_error_t e;
    json_t *j = json_loadb(p, (size_t)(end - p), 0, &e);
    assert_non_null(j);
    return j;
}

static void *other_thread(void *arg)
{
    (void)arg;
    log_info("from another thread", NULL);
    return NULL;
}

static void write_lines(void)
{
    log_info("plain", "k", "v\"with\nquotes", NULL);
    log_context("function_request_id", "req-1", "cold_start", "true", NULL);
    log_warn("inside", "task_id", "t1", NULL);
    pthread_t th;
    pthread_create(&th, NULL, other_thread, NULL);
    pthread_join(th, NULL);
    log_context_clear();
    log_info("after", NULL);
    log_debug("below the threshold", NULL);
}

static void test_fields_and_context(void **state)
{
    (void)state;
    log_setup(LOG_INFO, "svc");
    char *out = capture(write_lines);
    json_t *j = line(out, 0);
    assert_string_equal(json_string_value(json_object_get(j, "message")), "plain");
    assert_string_equal(json_string_value(json_object_get(j, "service")), "svc");
    assert_string_equal(json_string_value(json_object_get(j, "level")), "INFO");
    assert_string_equal(json_string_value(json_object_get(j, "k")), "v\"with\nquotes");
    assert_null(json_object_get(j, "function_request_id"));
    json_decref(j);

    j = line(out, 1);
    assert_string_equal(json_string_value(json_object_get(j, "function_request_id")), "req-1");
    assert_string_equal(json_string_value(json_object_get(j, "cold_start")), "true");
    assert_string_equal(json_string_value(json_object_get(j, "task_id")), "t1");
    json_decref(j);

    j = line(out, 2); /* the context is the thread's own */
    assert_string_equal(json_string_value(json_object_get(j, "message")), "from another thread");
    assert_null(json_object_get(j, "function_request_id"));
    json_decref(j);

    j = line(out, 3);
    assert_string_equal(json_string_value(json_object_get(j, "message")), "after");
    assert_null(json_object_get(j, "function_request_id"));
    json_decref(j);
    expect_not_logged(out, "below the threshold");
    free(out);
}

static void oversized_context(void)
{
    char big[600];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    log_context("small", "kept", "big", big, NULL);
    log_info("bounded", NULL);
    log_context_clear();
}

static void test_context_is_bounded(void **state)
{
    (void)state;
    log_setup(LOG_INFO, "svc");
    char *out = capture(oversized_context);
    json_t *j = line(out, 0); /* still one valid line */
    assert_string_equal(json_string_value(json_object_get(j, "small")), "kept");
    assert_null(json_object_get(j, "big"));
    json_decref(j);
    free(out);
}

/* ---- whole lines through a pipe ---- */

enum { WRITERS = 4, LINES_EACH = 12, LONG_VALUE = 100000 };

static void *long_lines(void *arg)
{
    char *value = malloc(LONG_VALUE + 1);
    memset(value, 'a' + (int)(intptr_t)arg, LONG_VALUE);
    value[LONG_VALUE] = '\0';
    for (int i = 0; i < LINES_EACH; i++)
        log_info("long", "value", value, NULL);
    free(value);
    return NULL;
}

/* stderr a pipe read in small bites, as a slow collector reads: lines over PIPE_BUF from
 * several threads each come whole, one after the other, none cut into another */
static void test_long_lines_from_threads_stay_whole(void **state)
{
    (void)state;
    log_setup(LOG_INFO, "svc");
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fds[1], STDERR_FILENO) >= 0);
    close(fds[1]);
    pthread_t th[WRITERS];
    for (int i = 0; i < WRITERS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, long_lines, (void *)(intptr_t)i), 0);

    size_t cap = (size_t)WRITERS * LINES_EACH * (LONG_VALUE + 256), len = 0;
    char *all = malloc(cap);
    assert_non_null(all);
    bool joined = false;
    for (;;) {
        char bite[4096];
        ssize_t n = read(fds[0], bite, sizeof bite);
        if (n <= 0)
            break;
        assert_true(len + (size_t)n <= cap);
        memcpy(all + len, bite, (size_t)n);
        len += (size_t)n;
        if (!joined && len >= (size_t)WRITERS * LINES_EACH * LONG_VALUE) {
            for (int i = 0; i < WRITERS; i++)
                pthread_join(th[i], NULL);
            joined = true;
            dup2(saved, STDERR_FILENO); /* the pipe's last writer gone: read to its end */
            close(saved);
        }
    }
    close(fds[0]);
    assert_true(joined);

    int lines = 0;
    for (char *p = all, *end; p < all + len; p = end + 1) {
        end = memchr(p, '\n', (size_t)(all + len - p));
        assert_non_null(end);
        json_error_t e;
        json_t *j = json_loadb(p, (size_t)(end - p), 0, &e);
        if (!j)
            fail_msg("line %d is not one JSON object (%s): lines were cut into each other", lines,
                     e.text);
        const char *v = json_string_value(json_object_get(j, "value"));
        assert_non_null(v);
        assert_int_equal(strlen(v), LONG_VALUE);
        assert_int_equal(strspn(v, (char[]){v[0], '\0'}), LONG_VALUE);
        json_decref(j);
        lines++;
    }
    assert_int_equal(lines, WRITERS * LINES_EACH);
    free(all);
}

/* A full non-blocking stderr (its reader stopped) does not hold the threads that log: a line it
 * takes nothing of is dropped at once, as a single write dropped it, and the next line, once there
 * is room, comes whole. */
static void test_full_nonblocking_stderr_drops_a_line_at_once(void **state)
{
    (void)state;
    log_setup(LOG_INFO, "svc");
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    assert_int_equal(fcntl(fds[1], F_SETFL, O_NONBLOCK), 0);
    char fill[4096];
    memset(fill, 'f', sizeof fill);
    size_t filled = 0;
    for (ssize_t w; (w = write(fds[1], fill, sizeof fill)) > 0;)
        filled += (size_t)w;
    int saved = dup(STDERR_FILENO);
    assert_true(dup2(fds[1], STDERR_FILENO) >= 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    log_info("dropped", NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    if (took > 0.05)
        fail_msg("a line on a full stderr took %.3f s", took);

    for (size_t got = 0; got < filled;) { /* the reader catches up */
        ssize_t r = read(fds[0], fill, sizeof fill);
        assert_true(r > 0);
        got += (size_t)r;
    }
    log_info("kept", NULL);
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(fds[1]);
    char out[512];
    ssize_t r = read(fds[0], out, sizeof out - 1);
    close(fds[0]);
    assert_true(r > 0);
    out[r] = '\0';
    json_t *j = line(out, 0); /* the dropped line left nothing before it */
    assert_string_equal(json_string_value(json_object_get(j, "message")), "kept");
    json_decref(j);
}

/* Read what the non-blocking fd holds into *all (len bytes so far, cap its room). */
static void drain(int fd, char **all, size_t *len, size_t *cap)
{
    for (;;) {
        if (*cap - *len < 4096) {
            *cap = *cap * 2 + 4096;
            *all = realloc(*all, *cap);
            assert_non_null(*all);
        }
        ssize_t r = read(fd, *all + *len, *cap - *len - 1);
        if (r <= 0)
            break;
        *len += (size_t)r;
    }
    (*all)[*len] = '\0';
}

/* A line a full non-blocking stderr took part of, its reader stopped for longer than the line
 * may wait, loses its rest; the next line does not run into that part, but comes on a line of
 * its own, whole. */
static void test_a_line_cut_short_does_not_run_into_the_next(void **state)
{
    (void)state;
    log_setup(LOG_INFO, "svc");
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    assert_int_equal(fcntl(fds[0], F_SETFL, O_NONBLOCK), 0);
    assert_int_equal(fcntl(fds[1], F_SETFL, O_NONBLOCK), 0);
    char fill[4096];
    memset(fill, 'f', sizeof fill);
    while (write(fds[1], fill, sizeof fill) > 0)
        ;
    assert_int_equal(read(fds[0], fill, sizeof fill), (ssize_t)sizeof fill); /* room for a part */
    int saved = dup(STDERR_FILENO);
    assert_true(dup2(fds[1], STDERR_FILENO) >= 0);
    enum { CUT_VALUE = 20000 };
    char *value = malloc(CUT_VALUE + 1);
    assert_non_null(value);
    memset(value, 'c', CUT_VALUE);
    value[CUT_VALUE] = '\0';
    log_info("cut", "value", value, NULL);
    free(value);

    size_t len = 0, cap = 0;
    char *all = NULL;
    drain(fds[0], &all, &len, &cap);        /* the reader catches up */
    assert_non_null(memchr(all, 'c', len)); /* part of the line was taken */
    log_info("kept", NULL);
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(fds[1]);
    drain(fds[0], &all, &len, &cap);
    close(fds[0]);
    assert_true(len > 0 && all[len - 1] == '\n');
    all[len - 1] = '\0';
    const char *last = strrchr(all, '\n'); /* the last line */
    last = last ? last + 1 : all;
    json_error_t e;
    json_t *j = json_loads(last, 0, &e);
    if (!j)
        fail_msg("the line after a cut one is not one JSON object (%s): it ran into the cut one",
                 e.text);
    assert_string_equal(json_string_value(json_object_get(j, "message")), "kept");
    json_decref(j);
    free(all);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fields_and_context),
        cmocka_unit_test(test_context_is_bounded),
        cmocka_unit_test(test_long_lines_from_threads_stay_whole),
        cmocka_unit_test(test_full_nonblocking_stderr_drops_a_line_at_once),
        cmocka_unit_test(test_a_line_cut_short_does_not_run_into_the_next),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
