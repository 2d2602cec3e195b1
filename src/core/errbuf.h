/*
 * errbuf — the one-line error messages modules hand back to their callers
 * through a (char *err, size_t errlen) pair.
 */
#ifndef TASKD_ERRBUF_H
#define TASKD_ERRBUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

/* Format into err; does nothing when err is NULL or errlen 0. Text that does not fit is cut where
 * a UTF-8 character ends and ends "...", so that a reader sees the cut and no half a character. */
void errbuf_set(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* errbuf_set() with the arguments in ap: for a function of its own that takes a format. */
void errbuf_vset(char *err, size_t errlen, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
/* errbuf_set() after the text err holds: whether all of it fit. Once it has not, err ends "..."
 * and stays so: err keeps, past its text, that it was cut, and each later append adds nothing and
 * is false (text that ends "..." by itself is added to). */
bool errbuf_append(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Keep err on one line: each control character in it (a newline that a quoted key or parser
 * message brought in) becomes '?'. Nothing for a NULL err. */
void errbuf_one_line(char *err, size_t errlen);

#endif
