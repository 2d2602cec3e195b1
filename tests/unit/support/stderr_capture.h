/*
 * stderr_capture — what a test's code writes to standard error (its log lines), read back.
 *
 * test_stderr_begin() sends file descriptor 2 to a temporary file; test_stderr_end() puts
 * it back and returns what was written meanwhile, by every thread. Failures fail the test.
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

#endif
