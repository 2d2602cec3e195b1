/*
 * send_fail — an LD_PRELOAD shim for tests: while the file named by SEND_FAIL_FILE exists and
 * holds some bytes, a send() of bytes that begin with them fails with EAGAIN, as it does on a
 * socket whose send buffer is full. Every other send, and every send while the file is absent
 * or empty, goes as usual.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef ssize_t (*send_fn)(int, const void *, size_t, int);

static send_fn real; /* looked up once, before taskd's threads start */

__attribute__((constructor)) static void find_real(void)
{
    real = (send_fn)dlsym(RTLD_NEXT, "send");
}

/* Whether buf begins with the flag file's bytes (at most 256 of them). */
static int refused(const void *buf, size_t len)
{
    const char *flag = getenv("SEND_FAIL_FILE");
    if (!flag)
        return 0;
    int fd = open(flag, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    char prefix[256];
    ssize_t n = read(fd, prefix, sizeof prefix);
    close(fd);
    return n > 0 && (size_t)n <= len && memcmp(buf, prefix, (size_t)n) == 0;
}

ssize_t send(int fd, const void *buf, size_t len, int flags)
{
    if (!real) {
        errno = ENOSYS;
        return -1;
    }
    if (refused(buf, len)) {
        errno = EAGAIN;
        return -1;
    }
    return real(fd, buf, len, flags);
}
