/*
 * errbuf — the one-line error messages modules hand back to their callers
 * through a (char *err, size_t errlen) pair.
 */
#ifndef TASKD_ERRBUF_H
#define TASKD_ERRBUF_H

#include <stddef.h>

/* Format into err (truncating to errlen); does nothing when err is NULL or errlen 0. */
void errbuf_set(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Keep err on one line: each control character in it (a newline that a quoted key or parser
 * message brought in) becomes '?'. Nothing for a NULL err. */
void errbuf_one_line(char *err, size_t errlen);

#endif
