/*
 * env_watch — an LD_PRELOAD shim for tests: every setenv(), unsetenv(), putenv() and clearenv()
 * the process calls is noted, one line each ("setenv NAME", "unsetenv NAME", "putenv NAME=...",
 * "clearenv"), in the file named by ENV_WATCH_FILE, before it is done as usual. The file is
 * named once, at load, where the shim also writes "watching": a test that finds only that line
 * knows the shim was there and the environment was never changed. Without the variable nothing
 * is noted.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef int (*setenv_fn)(const char *, const char *, int);
typedef int (*unsetenv_fn)(const char *);
typedef int (*putenv_fn)(char *);
typedef int (*clearenv_fn)(void);

/* looked up once, before the process's threads start */
static setenv_fn real_setenv;
static unsetenv_fn real_unsetenv;
static putenv_fn real_putenv;
static clearenv_fn real_clearenv;
static char watch_file[PATH_MAX];

/* Append what happened (and name, when given) as one line. */
static void note(const char *what, const char *name)
{
    if (!watch_file[0])
        return;
    int fd = open(watch_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    char line[512];
    size_t n = strlen(what);
    memcpy(line, what, n);
    if (name) {
        size_t k = strnlen(name, sizeof line - n - 2);
        line[n++] = ' ';
        memcpy(line + n, name, k);
        n += k;
    }
    line[n++] = '\n';
    ssize_t w = write(fd, line, n);
    (void)w;
    close(fd);
}

__attribute__((constructor)) static void find_real(void)
{
    real_setenv = (setenv_fn)dlsym(RTLD_NEXT, "setenv");
    real_unsetenv = (unsetenv_fn)dlsym(RTLD_NEXT, "unsetenv");
    real_putenv = (putenv_fn)dlsym(RTLD_NEXT, "putenv");
    real_clearenv = (clearenv_fn)dlsym(RTLD_NEXT, "clearenv");
    const char *path = getenv("ENV_WATCH_FILE");
    if (path && strlen(path) < sizeof watch_file) {
        strcpy(watch_file, path);
        note("watching", NULL);
    }
}

int setenv(const char *name, const char *value, int overwrite)
{
    note("setenv", name);
    if (!real_setenv) {
        errno = ENOSYS;
        return -1;
    }
    return real_setenv(name, value, overwrite);
}

int unsetenv(const char *name)
{
    note("unsetenv", name);
    if (!real_unsetenv) {
        errno = ENOSYS;
        return -1;
    }
    return real_unsetenv(name);
}

int putenv(char *string)
{
    note("putenv", string);
    if (!real_putenv) {
        errno = ENOSYS;
        return -1;
    }
    return real_putenv(string);
}

int clearenv(void)
{
    note("clearenv", NULL);
    if (!real_clearenv) {
        errno = ENOSYS;
        return -1;
    }
    return real_clearenv();
}
