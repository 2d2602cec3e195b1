/*
 * send_fail — an LD_PRELOAD shim for tests: while the file named by SEND_FAIL_FILE exists and
 * holds some bytes, a send() of bytes that begin with them fails with EAGAIN, as it does on a
 * socket whose send buffer is full; so does a sendmsg() whose first buffer begins with them.
 * Every other send, and every send while the file is absent or empty, goes as usual.
 * With SEND_FAIL_ERRNO=EINTR the send fails with EINTR instead, as one a signal interrupts, and
 * the file is removed as it fails: a signal interrupts one send, and the send tried again goes.
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
typedef ssize_t (*sendmsg_fn)(int, const struct msghdr *, int);

static send_fn real; /* looked up once, before taskd's threads start */
static sendmsg_fn real_sendmsg;

__attribute__((constructor)) static void find_real(void)
{
    real = (send_fn)dlsym(RTLD_NEXT, "send");
    real_sendmsg = (sendmsg_fn)dlsym(RTLD_NEXT, "sendmsg");
}

/* Whether buf begins with the flag file's bytes (at most 256 of them): then errno is set to the
 * failure's (the file removed for EINTR). */
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
    if (n <= 0 || (size_t)n > len || memcmp(buf, prefix, (size_t)n) != 0)
        return 0;
    const char *e = getenv("SEND_FAIL_ERRNO");
    if (e && strcmp(e, "EINTR") == 0) {
        unlink(flag);
        errno = EINTR;
    } else {
        errno = EAGAIN;
    }
    return 1;
}

ssize_t send(int fd, const void *buf, size_t len, int flags)
{
    if (!real) {
        errno = ENOSYS;
        return -1;
    }
    if (refused(buf, len))
        return -1;
    return real(fd, buf, len, flags);
}

ssize_t sendmsg(int fd, const struct msghdr *m, int flags)
{
    if (!real_sendmsg) {
        errno = ENOSYS;
        return -1;
    }
    if (m->msg_iovlen > 0 && refused(m->msg_iov[0].iov_base, m->msg_iov[0].iov_len))
        return -1;
    return real_sendmsg(fd, m, flags);
}
