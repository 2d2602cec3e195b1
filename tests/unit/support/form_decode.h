/*
 * form_decode — the strict percent-decoding of a form as SigV4 signs it, for the
 * tests' fake AWS services: RFC 3986's unreserved bytes as they are, every other
 * byte %XX in upper-case hex. It checks what taskd encoded, so it refuses what
 * a lenient decoder would take.
 */
#ifndef TASKD_TEST_FORM_DECODE_H
#define TASKD_TEST_FORM_DECODE_H

#include <stddef.h>

/* s[0..n) decoded (owned text); NULL when it holds a byte that should have been encoded. */
char *form_decode(const char *s, size_t n);

#endif
