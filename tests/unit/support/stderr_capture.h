/*
 * stderr_capture — what a test's code writes to standard error (its log lines), read back.
 *
 * test_stderr_begin() sends file descriptor 2 to a temporary file; test_stderr_end() puts
 * it back and returns what was written meanwhile, by every thread. Failures fail the test.
 * expect_logged() and expect_not_logged() check the lines read back.
 */
#ifndef TASKD_TEST_STDERR_CAPTURE_H
#define TASKD_TEST_STDERR_CAPTURE_H

#include <stdio.h>

typedef struct test_stderr {
    FILE *tmp;
    int saved; /* the descriptor 2 stood for before */
} test_stderr;

void test_stderr_begin(test_stderr *c);
/* What was written since test_stderr_begin(c), NUL-terminated; the caller frees it. */
char *test_stderr_end(test_stderr *c);

/* How many lines of log hold said. The test fails, with a message that names what is missing
 * and shows log, unless one of them holds also after said (NULL: said alone). */
size_t expect_logged(const char *log, const char *said, const char *also);
/* The test fails, with a message that names text and shows log, where a line of log holds it. */
void expect_not_logged(const char *log, const char *text);

#endif
