/*
 * sqlite_store — a SQLite store in a temporary directory of a test's own, the way most unit
 * tests that need a store but not its settings make one.
 */
#ifndef TASKD_TEST_SQLITE_STORE_H
#define TASKD_TEST_SQLITE_STORE_H

#include "store/store.h"

#include <stddef.h>

/*
 * A store (synchronous=NORMAL, no listener) on "t.db" in a new directory made from prefix as
 * test_tmpdir_make() makes one, its path into dir (dirlen bytes): test_tmpdir_remove() it once
 * the store is closed. Fails the running test (cmocka), with the reason, when it cannot.
 */
store *test_sqlite_store(char *dir, size_t dirlen, const char *prefix);

#endif
