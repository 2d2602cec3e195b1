/* sqlite_store — see sqlite_store.h. */
#include "sqlite_store.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "store/store_sqlite.h"
#include "support/tmpdir.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

store *test_sqlite_store(char *dir, size_t dirlen, const char *prefix)
{
    if (!test_tmpdir_make(dir, dirlen, prefix))
        fail_msg("a temporary directory for %s: %s", prefix, strerror(errno));
    char path[512];
    if ((size_t)snprintf(path, sizeof path, "%s/t.db", dir) >= sizeof path)
        fail_msg("the database's path under %s is too long", dir);
    char err[256] = "";
    store_sqlite_options o = {.path = path, .sync = STORE_SYNC_NORMAL};
    store *s = store_sqlite_open(&o, err, sizeof err);
    if (!s)
        fail_msg("store_sqlite_open(%s): %s", path, err);
    return s;
}
