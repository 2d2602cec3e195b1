/*
 * sqlite_exec — SQL run behind a store's back, for the unit tests that put a SQLite database in
 * a state no API call makes (a task row gone, a message past its retention, a trigger that
 * refuses a write).
 */
#ifndef TASKD_TEST_SQLITE_EXEC_H
#define TASKD_TEST_SQLITE_EXEC_H

/*
 * Run one statement, sql, with ?1 bound to arg (NULL: nothing bound), on a connection of the
 * test's own to the database at path (read-write, waiting up to 5 s for the store's writer);
 * the rows it changed. Fails the running test (cmocka) when it cannot.
 */
int test_sqlite_exec(const char *path, const char *sql, const char *arg);

#endif
