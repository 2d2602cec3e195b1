/*
 * The temporary directories of tmpdir.h. Removal walks the tree with nftw
 * depth first (FTW_DEPTH: a directory is reported after its entries, so it is
 * empty by then) without following symbolic links (FTW_PHYS: a link is
 * removed, not what it points to), and remove()s each entry as it comes.
 */
#include "support/tmpdir.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#define OPEN_DIRS 16 /* file descriptors nftw may hold open at once */

bool test_tmpdir_make(char *out, size_t len, const char *prefix)
{
    const char *base = getenv("TMPDIR");
    if (!base || !*base)
        base = "/tmp";
    int n = snprintf(out, len, "%s/%s.XXXXXX", base, prefix);
    if (n < 0 || (size_t)n >= len) {
        errno = ENAMETOOLONG;
        return false;
    }
    return mkdtemp(out) != NULL;
}

/* The errno of the remove() that stopped the walk (nftw keeps it too, but does not promise). */
static _Thread_local int remove_errno;

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    if (remove(path) == 0)
        return 0;
    remove_errno = errno;
    return -1;
}

int test_tmpdir_remove(const char *dir)
{
    remove_errno = 0;
    if (nftw(dir, remove_entry, OPEN_DIRS, FTW_DEPTH | FTW_PHYS) == 0)
        return 0;
    if (remove_errno)
        errno = remove_errno;
    return -1;
}
