/*
 * Unit tests for http/front: the per-client count of a connection the server closes without
 * taking it (libmicrohttpd drops one it cannot start, and says nothing) is given back, whether
 * its descriptor is closed or reused by another file; one the server still holds, taken or
 * not, keeps counting however long it stays open.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "http/front.h"
#include "util/clock.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum server_mode { DROP_CLOSED, DROP_REUSED, HOLD };

typedef struct fixture {
    front *f;
    int port;
    enum server_mode mode;
    atomic_int handed;     /* connections handed over */
    atomic_int refused429; /* and refused for their client's count */
    int held[8];           /* the descriptors the server holds (HOLD, DROP_REUSED) */
    atomic_int n_held;     /* handed over to be held, held[] or past it */
} fixture;

#define MAX_HELD (int)(sizeof((fixture *)0)->held / sizeof(int))

/* Hold a descriptor handed over (on the front's thread: no assertion here). */
static void hold(fixture *x, int fd)
{
    int k = atomic_fetch_add(&x->n_held, 1);
    if (k < MAX_HELD)
        x->held[k] = fd;
    else
        close(fd); /* more than any test hands over: the test fails on n_held */
}

static bool handoff(void *ctx, int fd, const struct sockaddr *addr, socklen_t len)
{
    fixture *x = ctx;
    (void)addr;
    (void)len;
    switch (x->mode) {
    case DROP_CLOSED: /* as libmicrohttpd does when it cannot start a connection */
        close(fd);
        break;
    case DROP_REUSED: { /* the same, and the descriptor opened again at once for a file */
        int other = open("/dev/null", O_RDONLY | O_CLOEXEC);
        assert_true(other >= 0);
        assert_int_equal(dup2(other, fd), fd);
        close(other);
        hold(x, fd);
        break;
    }
    case HOLD:
        hold(x, fd);
        break;
    }
    atomic_fetch_add(&x->handed, 1);
    return true;
}

static void refused(void *ctx, int status, const char *reason, const char *detail)
{
    fixture *x = ctx;
    (void)reason;
    (void)detail;
    if (status == 429)
        atomic_fetch_add(&x->refused429, 1);
}

static int setup(void **state)
{
    fixture *x = calloc(1, sizeof *x);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (!x || lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(lfd, 16) != 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &len) != 0)
        return -1;
    x->port = ntohs(a.sin_port);
    front_options o = {.listen_fd = lfd,
                       .max_connections = 100,
                       .max_per_client = 2,
                       .header_timeout_s = 10,
                       .idle_timeout_s = 30,
                       .head_limit = 4096,
                       .too_large = "too large",
                       .handoff = handoff,
                       .refused = refused,
                       .ctx = x};
    char err[128];
    if (!front_start(&o, &x->f, err, sizeof err))
        return -1;
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    fixture *x = *state;
    front_stop(x->f);
    for (int i = 0; i < x->n_held && i < MAX_HELD; i++)
        close(x->held[i]);
    front_free(x->f);
    free(x);
    return 0;
}

/* Connect and send a head; the client's socket, left open (closed by the caller). */
static int connect_and_ask(const fixture *x)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)x->port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_true(s >= 0);
    assert_int_equal(connect(s, (struct sockaddr *)&a, sizeof a), 0);
    const char *head = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_int_equal(send(s, head, strlen(head), MSG_NOSIGNAL), (ssize_t)strlen(head));
    return s;
}

/* Wait up to ms for the front to hand over or refuse the connection after `before` events. */
static bool wait_for(const fixture *x, int handed, int refused, int ms)
{
    int64_t until = clock_mono_ms() + ms;
    while (clock_mono_ms() < until) {
        if (atomic_load(&x->handed) >= handed && atomic_load(&x->refused429) >= refused)
            return true;
        usleep(2000);
    }
    return false;
}

/* Connections dropped by the server: each gives its count back, so a client over its share
 * of two in all is never refused. */
static void dropped_connections_counted_closed(fixture *x)
{
    for (int i = 1; i <= 5; i++) {
        int refused = atomic_load(&x->refused429);
        int s = connect_and_ask(x);
        /* dropped and found within a tick or two: until then a new one is refused, and asks
         * again (one still waiting to be judged is not given up) */
        int64_t until = clock_mono_ms() + 3000;
        while (atomic_load(&x->handed) < i && clock_mono_ms() < until) {
            if (atomic_load(&x->refused429) > refused) {
                close(s);
                refused = atomic_load(&x->refused429);
                usleep(50 * 1000);
                s = connect_and_ask(x);
            }
            usleep(2000);
        }
        close(s);
        if (atomic_load(&x->handed) != i)
            fail_msg("connection %d not handed over: %d handed, %d refused", i,
                     atomic_load(&x->handed), atomic_load(&x->refused429));
    }
}

static void test_dropped_and_closed(void **state)
{
    fixture *x = *state;
    x->mode = DROP_CLOSED;
    dropped_connections_counted_closed(x);
}

static void test_dropped_and_descriptor_reused(void **state)
{
    fixture *x = *state;
    x->mode = DROP_REUSED;
    dropped_connections_counted_closed(x);
}

/* A connection the server holds counts for as long as it is open, taken or not; once the
 * server ends its watch and says it closed, it counts no more. */
static void test_held_connections_keep_counting(void **state)
{
    fixture *x = *state;
    x->mode = HOLD;
    int a = connect_and_ask(x), b = connect_and_ask(x);
    assert_true(wait_for(x, 2, 0, 2000));
    front_watch *w = front_watch_take(x->f, x->held[0]); /* the server took the first */
    assert_non_null(w);
    assert_null(front_watch_take(x->f, x->held[0])); /* once */
    usleep(2500 * 1000);                             /* ticks: neither is taken for gone */
    int c = connect_and_ask(x);
    assert_true(wait_for(x, 2, 1, 2000));
    assert_int_equal(atomic_load(&x->handed), 2);
    close(c);

    /* the server closes the one it took */
    struct sockaddr_in peer = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    front_watch_end(x->f, w);
    front_closed(x->f, (struct sockaddr *)&peer);
    close(x->held[0]);
    x->held[0] = open("/dev/null", O_RDONLY | O_CLOEXEC); /* closed again at teardown */
    int d = connect_and_ask(x);
    assert_true(wait_for(x, 3, 1, 2000));
    close(a);
    close(b);
    close(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_dropped_and_closed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dropped_and_descriptor_reused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_held_connections_keep_counting, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
