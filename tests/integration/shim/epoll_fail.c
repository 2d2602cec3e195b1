/*
 * epoll_fail — an LD_PRELOAD shim for tests: while the file named by EPOLL_FAIL_FILE exists,
 * adding a connected socket to an epoll set fails with ENOSPC, as it does past
 * fs.epoll.max_user_watches. Listening sockets, eventfds and everything else are added as
 * usual, and nothing changes while the file is absent.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

typedef int (*epoll_ctl_fn)(int, int, int, struct epoll_event *);

static int connected_socket(int fd)
{
    int listening = 0;
    socklen_t len = sizeof listening;
    return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && !listening;
}

static epoll_ctl_fn real; /* looked up once, before taskd's threads start */

__attribute__((constructor)) static void find_real(void)
{
    real = (epoll_ctl_fn)dlsym(RTLD_NEXT, "epoll_ctl");
}

int epoll_ctl(int epfd, int op, int fd, struct epoll_event *event)
{
    if (!real) {
        errno = ENOSYS;
        return -1;
    }
    const char *flag = getenv("EPOLL_FAIL_FILE");
    if (op == EPOLL_CTL_ADD && flag && access(flag, F_OK) == 0 && connected_socket(fd)) {
        errno = ENOSPC;
        return -1;
    }
    return real(epfd, op, fd, event);
}
