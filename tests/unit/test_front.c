/*
 * Unit tests for http/front: the per-client count of a connection the server refuses at the
 * handoff is given back at once; one the server holds keeps counting however long it stays
 * open, until the server says it closed it.
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

enum server_mode { REFUSE, HOLD };

typedef struct fixture {
    front *f;
    int port;
    enum server_mode mode;
    atomic_int handed;     /* connections handed over */
    atomic_int refused429; /* and refused for their client's count */
    int held[8];           /* the descriptors the server holds (HOLD) */
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
    atomic_fetch_add(&x->handed, 1);
    if (x->mode == REFUSE) { /* as the server does when it cannot allocate a connection */
        close(fd);
        return false;
    }
    hold(x, fd);
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

/* Connections the server refuses: each gives its count back, so a client over its share of
 * two in all is never refused here. */
static void test_refused_at_handoff(void **state)
{
    fixture *x = *state;
    x->mode = REFUSE;
    for (int i = 1; i <= 5; i++) {
        int s = connect_and_ask(x);
        bool handed = wait_for(x, i, 0, 2000);
        close(s);
        if (!handed)
            fail_msg("connection %d not handed over: %d handed, %d refused", i,
                     atomic_load(&x->handed), atomic_load(&x->refused429));
    }
    assert_int_equal(atomic_load(&x->refused429), 0);
}

/* A connection the server holds counts for as long as it is open; once the server says it
 * closed it, it counts no more. */
static void test_held_connections_keep_counting(void **state)
{
    fixture *x = *state;
    x->mode = HOLD;
    int a = connect_and_ask(x), b = connect_and_ask(x);
    assert_true(wait_for(x, 2, 0, 2000));
    usleep(2500 * 1000); /* however long they stay open */
    int c = connect_and_ask(x);
    assert_true(wait_for(x, 2, 1, 2000));
    assert_int_equal(atomic_load(&x->handed), 2);
    close(c);

    /* the server closes the one it took */
    struct sockaddr_in peer = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
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
        cmocka_unit_test_setup_teardown(test_refused_at_handoff, setup, teardown),
        cmocka_unit_test_setup_teardown(test_held_connections_keep_counting, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
