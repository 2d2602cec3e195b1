/*
 * The capture of standard error of stderr_capture.h: dup2() of a tmpfile(3) over
 * descriptor 2, so output of any thread and of unbuffered writes is caught; and the checks of
 * the lines it read back.
 */
#include "support/stderr_capture.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void test_stderr_begin(test_stderr *c)
{
    c->tmp = tmpfile();
    assert_non_null(c->tmp);
    fflush(stderr);
    c->saved = dup(STDERR_FILENO);
    assert_true(c->saved >= 0);
    assert_true(dup2(fileno(c->tmp), STDERR_FILENO) >= 0);
}

char *test_stderr_end(test_stderr *c)
{
    fflush(stderr);
    assert_true(dup2(c->saved, STDERR_FILENO) >= 0);
    close(c->saved);
    long n = ftell(c->tmp);
    assert_true(n >= 0);
    char *out = calloc(1, (size_t)n + 1);
    assert_non_null(out);
    rewind(c->tmp);
    assert_int_equal(fread(out, 1, (size_t)n, c->tmp), (size_t)n);
    fclose(c->tmp);
    return out;
}

/* Fail the test, after a word of why (print_error()), showing all of log: print_error() cuts
 * what it prints at 1 KiB. */
static void fail_showing(const char *log)
{
    fprintf(stderr, "logged:\n%s\n", log);
    fail();
}

size_t expect_logged(const char *log, const char *said, const char *also)
{
    assert_true(*said); /* an empty said would be found at every line's end, for good */
    size_t lines = 0;
    bool with_also = !also;
    for (const char *at = strstr(log, said); at; at = strstr(at, said)) {
        const char *after = at + strlen(said), *end = after + strcspn(after, "\n");
        const char *found = also ? strstr(after, also) : NULL;
        with_also = with_also || (found && found < end);
        lines++;
        at = end;
    }
    if (!lines) {
        print_error("not logged: %s\n", said);
        fail_showing(log);
    }
    if (!with_also) {
        print_error("not logged: %s\n  on a line after: %s\n", also, said);
        fail_showing(log);
    }
    return lines;
}

void expect_not_logged(const char *log, const char *text)
{
    if (strstr(log, text)) {
        print_error("logged, where it should not be: %s\n", text);
        fail_showing(log);
    }
}
