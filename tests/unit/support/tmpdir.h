/*
 * tmpdir — a temporary directory of a test's own, and its removal after.
 *
 * test_tmpdir_make() makes a new, empty directory with mkdtemp(3) under
 * $TMPDIR (unset or empty: /tmp); test_tmpdir_remove() deletes it with all it
 * holds, walking the tree itself (nftw, depth first, symbolic links removed
 * and not followed) instead of running rm -rf through a shell.
 *
 * Neither fails the running test: callers assert on what they return.
 */
#ifndef TASKD_TEST_TMPDIR_H
#define TASKD_TEST_TMPDIR_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Make "<base>/<prefix>.XXXXXX" (base: $TMPDIR, else /tmp) and put its path in out. False,
 * with errno set, when the path does not fit in len bytes (ENAMETOOLONG) or mkdtemp fails.
 */
bool test_tmpdir_make(char *out, size_t len, const char *prefix);

/*
 * Remove dir and everything under it. 0 when it is gone; -1 with errno set when dir does not
 * exist or something in it could not be removed (the walk stops at the first failure).
 */
int test_tmpdir_remove(const char *dir);

#endif
