/*
 * Unit tests for http/admission: the bounds in all and per client address, and counts given
 * back as connections close, so that a client is never shut out by connections it no longer
 * has.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "http/admission.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

static struct sockaddr_in v4(const char *ip, uint16_t port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    assert_int_equal(inet_pton(AF_INET, ip, &a.sin_addr), 1);
    return a;
}

static struct sockaddr_in6 v6(const char *ip, uint16_t port)
{
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
    assert_int_equal(inet_pton(AF_INET6, ip, &a.sin6_addr), 1);
    return a;
}

#define SA(x) ((const struct sockaddr *)&(x))

/* One address: its bound, whatever the port; others are let in meanwhile. */
static void test_per_client_bound(void **state)
{
    (void)state;
    admission *a = admission_new(100, 2, 64);
    assert_non_null(a);
    struct sockaddr_in c1 = v4("127.0.0.1", 1000), c1b = v4("127.0.0.1", 2000);
    struct sockaddr_in c2 = v4("127.0.0.2", 1000);
    assert_int_equal(admission_enter(a, SA(c1)), ADMISSION_OK);
    assert_int_equal(admission_enter(a, SA(c1b)), ADMISSION_OK);
    assert_int_equal(admission_enter(a, SA(c1)), ADMISSION_CLIENT_FULL);
    assert_string_equal(admission_reason(ADMISSION_CLIENT_FULL), "client_connections");
    assert_int_equal(admission_enter(a, SA(c2)), ADMISSION_OK);
    /* one closes: the client may open one more, and only one (the refusal counted nothing) */
    admission_leave(a, SA(c1b));
    assert_int_equal(admission_enter(a, SA(c1)), ADMISSION_OK);
    assert_int_equal(admission_enter(a, SA(c1)), ADMISSION_CLIENT_FULL);
    admission_free(a); /* with clients still counted */
}

/* The bound in all refuses everyone, and opens again as connections close. */
static void test_bound_in_all(void **state)
{
    (void)state;
    admission *a = admission_new(3, 2, 64);
    struct sockaddr_in c1 = v4("10.0.0.1", 1), c2 = v4("10.0.0.2", 1), c3 = v4("10.0.0.3", 1);
    assert_int_equal(admission_enter(a, SA(c1)), ADMISSION_OK);
    assert_int_equal(admission_enter(a, SA(c1)), ADMISSION_OK);
    assert_int_equal(admission_enter(a, SA(c2)), ADMISSION_OK);
    assert_int_equal(admission_enter(a, SA(c3)), ADMISSION_FULL);
    assert_string_equal(admission_reason(ADMISSION_FULL), "connections");
    admission_leave(a, SA(c1));
    assert_int_equal(admission_enter(a, SA(c3)), ADMISSION_OK);
    assert_int_equal(admission_enter(a, SA(c2)), ADMISSION_FULL);
    admission_leave(a, SA(c1));
    admission_leave(a, SA(c2));
    admission_leave(a, SA(c3));
    /* all closed: three may open again, and a fourth not */
    struct sockaddr_in c4 = v4("10.0.0.4", 1);
    assert_int_equal(admission_enter(a, SA(c4)), ADMISSION_OK);
    assert_int_equal(admission_enter(a, SA(c4)), ADMISSION_OK);
    assert_int_equal(admission_enter(a, SA(c3)), ADMISSION_OK);
    assert_int_equal(admission_enter(a, SA(c1)), ADMISSION_FULL);
    admission_free(a);
}

/* An IPv6 client is its /64: the addresses of one /64 share a bound, another /64 has its own;
 * an IPv4 address mapped into IPv6 is that IPv4 client. */
static void test_addresses_told_apart(void **state)
{
    (void)state;
    admission *a = admission_new(100, 2, 64);
    struct sockaddr_in6 x = v6("2001:db8::1", 1), y = v6("2001:db8::ffff:2", 1);
    struct sockaddr_in6 next64 = v6("2001:db8:0:1::1", 1), other = v6("2001:db9::1", 1);
    struct sockaddr_in6 mapped = v6("::ffff:127.0.0.1", 1);
    struct sockaddr_in lo = v4("127.0.0.1", 1), lo2 = v4("127.0.0.2", 1);
    assert_int_equal(admission_enter(a, SA(x)), ADMISSION_OK);
    assert_int_equal(admission_enter(a, SA(y)), ADMISSION_OK);
    assert_int_equal(admission_enter(a, SA(x)), ADMISSION_CLIENT_FULL);
    assert_int_equal(admission_enter(a, SA(y)), ADMISSION_CLIENT_FULL);
    assert_int_equal(admission_enter(a, SA(next64)), ADMISSION_OK);
    assert_int_equal(admission_enter(a, SA(next64)), ADMISSION_OK);
    assert_int_equal(admission_enter(a, SA(next64)), ADMISSION_CLIENT_FULL);
    assert_int_equal(admission_enter(a, SA(other)), ADMISSION_OK);
    assert_int_equal(admission_enter(a, SA(mapped)), ADMISSION_OK);
    assert_int_equal(admission_enter(a, SA(lo)), ADMISSION_OK);
    assert_int_equal(admission_enter(a, SA(lo)), ADMISSION_CLIENT_FULL);
    assert_int_equal(admission_enter(a, SA(lo2)), ADMISSION_OK);
    /* a client's entry goes once its last connection closes, and comes back as new: a
     * connection counted under one address of a /64 is given back under another */
    admission_leave(a, SA(x));
    admission_leave(a, SA(mapped));
    assert_int_equal(admission_enter(a, SA(y)), ADMISSION_OK);
    assert_int_equal(admission_enter(a, SA(x)), ADMISSION_CLIENT_FULL);
    assert_int_equal(admission_enter(a, SA(lo)), ADMISSION_OK);
    assert_int_equal(admission_enter(a, SA(mapped)), ADMISSION_CLIENT_FULL);
    admission_free(a);
}

/* A longer prefix tells apart the clients of one /64 (a node's pods): all 128 bits, or 60 (a
 * prefix that ends inside a byte). */
static void test_ipv6_prefix(void **state)
{
    (void)state;
    admission *a = admission_new(100, 1, 128);
    struct sockaddr_in6 x = v6("2001:db8::1", 1), y = v6("2001:db8::2", 1);
    assert_int_equal(admission_enter(a, SA(x)), ADMISSION_OK);
    assert_int_equal(admission_enter(a, SA(y)), ADMISSION_OK);
    assert_int_equal(admission_enter(a, SA(x)), ADMISSION_CLIENT_FULL);
    admission_free(a);

    a = admission_new(100, 1, 60);
    struct sockaddr_in6 p10 = v6("2001:db8:0:10::1", 1), p1f = v6("2001:db8:0:1f::9", 1);
    struct sockaddr_in6 p20 = v6("2001:db8:0:20::1", 1);
    assert_int_equal(admission_enter(a, SA(p10)), ADMISSION_OK);
    assert_int_equal(admission_enter(a, SA(p1f)), ADMISSION_CLIENT_FULL); /* the same /60 */
    assert_int_equal(admission_enter(a, SA(p20)), ADMISSION_OK);
    admission_free(a);
}

/* Many clients, so that buckets hold chains: each keeps its own count. */
static void test_many_clients(void **state)
{
    (void)state;
    admission *a = admission_new(100000, 3, 64);
    for (int round = 0; round < 3; round++)
        for (uint32_t i = 0; i < 20000; i++) {
            struct sockaddr_in c = {.sin_family = AF_INET,
                                    .sin_addr.s_addr = htonl(0x0a000000 + i)};
            assert_int_equal(admission_enter(a, SA(c)), ADMISSION_OK);
        }
    for (uint32_t i = 0; i < 20000; i += 997) {
        struct sockaddr_in c = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x0a000000 + i)};
        assert_int_equal(admission_enter(a, SA(c)), ADMISSION_CLIENT_FULL);
        admission_leave(a, SA(c));
        assert_int_equal(admission_enter(a, SA(c)), ADMISSION_OK);
        assert_int_equal(admission_enter(a, SA(c)), ADMISSION_CLIENT_FULL);
    }
    admission_free(a);
}

/* The lingering connections told to give way, in order (give_way's ctx); one that holds (its
 * answer not yet acknowledged) is asked and declines. */
typedef struct gave_way {
    admission_lingerer *l[4];
    int n;
    admission_lingerer *holds[2];
    bool all_hold;
    int asked_holding;
} gave_way;

static bool record_give_way(admission_lingerer *l, void *ctx)
{
    gave_way *g = ctx;
    if (g->all_hold || l == g->holds[0] || l == g->holds[1]) {
        g->asked_holding++;
        return false;
    }
    assert_true(g->n < 4);
    g->l[g->n++] = l;
    return true;
}

/* At its bound, a client's next connection takes the place of its oldest lingering one, which is
 * told to close and gives nothing back; connections that do not linger never give way, a
 * lingering one that closes by itself gives its place back, and the counts stay within both
 * bounds. */
static void test_lingering_connection_gives_way(void **state)
{
    (void)state;
    admission *a = admission_new(3, 2, 64);
    gave_way g = {0};
    struct sockaddr_in c1 = v4("10.0.0.1", 1), c2 = v4("10.0.0.2", 1);
    admission_lingerer l1 = {0}, l2 = {0}, l3 = {0}, l4 = {0};
    assert_int_equal(admission_enter(a, SA(c1)), ADMISSION_OK); /* l1 */
    assert_int_equal(admission_enter(a, SA(c1)), ADMISSION_OK); /* l2 */
    admission_linger(a, SA(c1), &l1);
    /* without a give_way callback a client at its bound is refused, lingering or not */
    assert_int_equal(admission_enter(a, SA(c1)), ADMISSION_CLIENT_FULL);
    admission_set_give_way(a, record_give_way, &g);
    admission_linger(a, SA(c1), &l2);
    assert_int_equal(admission_enter(a, SA(c1)), ADMISSION_OK); /* l3, in l1's place */
    assert_int_equal(g.n, 1);
    assert_ptr_equal(g.l[0], &l1);
    assert_int_equal(admission_open(a), 2);
    admission_leave_lingerer(a, SA(c1), &l1); /* it closes: its place is l3's now */
    assert_int_equal(admission_open(a), 2);
    /* l2 closes by itself before anyone needs its place: given back, and no longer listed */
    admission_leave_lingerer(a, SA(c1), &l2);
    assert_int_equal(admission_open(a), 1);
    assert_int_equal(admission_enter(a, SA(c1)), ADMISSION_OK); /* l4 */
    assert_int_equal(admission_enter(a, SA(c1)), ADMISSION_CLIENT_FULL);
    assert_int_equal(g.n, 1);
    /* the bound in all is full: a client at its bound still takes its own lingering place,
     * another client is refused, and nothing of another client's gives way to it */
    assert_int_equal(admission_enter(a, SA(c2)), ADMISSION_OK);
    admission_linger(a, SA(c1), &l3);
    assert_int_equal(admission_enter(a, SA(c2)), ADMISSION_FULL);
    assert_int_equal(g.n, 1);
    assert_int_equal(admission_enter(a, SA(c1)), ADMISSION_OK);
    assert_int_equal(g.n, 2);
    assert_ptr_equal(g.l[1], &l3);
    assert_int_equal(admission_open(a), 3);
    admission_leave_lingerer(a, SA(c1), &l3);
    admission_leave_lingerer(a, SA(c1), &l4); /* one that never lingered */
    admission_leave(a, SA(c1));
    admission_leave(a, SA(c2));
    assert_int_equal(admission_open(a), 0);
    admission_free(a);
}

/* At the bound in all, a client under its own bound whose lingering connection still holds a
 * place takes that place too: the connection is over for it, and the counts stay; another
 * client is refused still, nothing of the first's giving way to it. */
static void test_lingering_connection_gives_way_at_the_bound_in_all(void **state)
{
    (void)state;
    admission *a = admission_new(2, 4, 64);
    gave_way g = {0};
    admission_set_give_way(a, record_give_way, &g);
    struct sockaddr_in c1 = v4("10.0.0.1", 1), c2 = v4("10.0.0.2", 1);
    admission_lingerer l1 = {0}, l2 = {0};
    assert_int_equal(admission_enter(a, SA(c1)), ADMISSION_OK); /* l1 */
    assert_int_equal(admission_enter(a, SA(c1)), ADMISSION_OK); /* l2 */
    admission_linger(a, SA(c1), &l2);
    assert_int_equal(admission_enter(a, SA(c2)), ADMISSION_FULL);
    assert_int_equal(g.n, 0);
    assert_int_equal(admission_enter(a, SA(c1)), ADMISSION_OK); /* in l2's place */
    assert_int_equal(g.n, 1);
    assert_ptr_equal(g.l[0], &l2);
    assert_int_equal(admission_open(a), 2);
    admission_leave_lingerer(a, SA(c1), &l2); /* it closes: nothing given back */
    assert_int_equal(admission_enter(a, SA(c1)), ADMISSION_FULL); /* none lingers now */
    assert_int_equal(admission_open(a), 2);
    admission_leave_lingerer(a, SA(c1), &l1);
    admission_leave(a, SA(c1));
    assert_int_equal(admission_open(a), 0);
    admission_free(a);
}

/* A lingering connection that declines (its answer not yet acknowledged whole) keeps its place
 * and stays listed: the client's next lingering one is asked, and with none that gives way the
 * new connection is refused; once it no longer holds, it gives way. */
static void test_lingering_connection_that_holds_keeps_its_place(void **state)
{
    (void)state;
    admission *a = admission_new(8, 3, 64);
    gave_way g = {0};
    admission_set_give_way(a, record_give_way, &g);
    struct sockaddr_in c1 = v4("10.0.0.1", 1);
    admission_lingerer l1 = {0}, l2 = {0}, l3 = {0};
    for (int i = 0; i < 3; i++)
        assert_int_equal(admission_enter(a, SA(c1)), ADMISSION_OK); /* l1, l2, l3 */
    admission_linger(a, SA(c1), &l1);
    admission_linger(a, SA(c1), &l2);
    g.holds[0] = &l1; /* the oldest holds: the next is taken */
    assert_int_equal(admission_enter(a, SA(c1)), ADMISSION_OK);
    assert_int_equal(g.asked_holding, 1);
    assert_int_equal(g.n, 1);
    assert_ptr_equal(g.l[0], &l2);
    admission_leave_lingerer(a, SA(c1), &l2);
    g.holds[1] = &l3; /* every lingering one holds: refused, both still listed */
    admission_linger(a, SA(c1), &l3);
    assert_int_equal(admission_enter(a, SA(c1)), ADMISSION_CLIENT_FULL);
    assert_int_equal(g.asked_holding, 3);
    assert_int_equal(g.n, 1);
    g.holds[0] = g.holds[1] = NULL; /* acknowledged since: the oldest gives way */
    assert_int_equal(admission_enter(a, SA(c1)), ADMISSION_OK);
    assert_int_equal(g.n, 2);
    assert_ptr_equal(g.l[1], &l1);
    admission_leave_lingerer(a, SA(c1), &l1);
    assert_int_equal(admission_open(a), 3);
    admission_leave_lingerer(a, SA(c1), &l3); /* listed still: given back when it closes */
    assert_int_equal(admission_open(a), 2);
    admission_leave(a, SA(c1));
    admission_leave(a, SA(c1));
    assert_int_equal(admission_open(a), 0);
    admission_free(a);
}

/* Of a client's many lingering connections, a few of the oldest are asked (each asking may cost
 * the server calls to the system, under the lock): when they all hold, the new connection is
 * refused, whatever the younger ones would say. */
static void test_a_few_lingering_connections_asked(void **state)
{
    (void)state;
    enum { N = 8 };
    admission *a = admission_new(64, N, 64);
    gave_way g = {.all_hold = true};
    admission_set_give_way(a, record_give_way, &g);
    struct sockaddr_in c1 = v4("10.0.0.1", 1);
    admission_lingerer l[N] = {{0}};
    for (int i = 0; i < N; i++) {
        assert_int_equal(admission_enter(a, SA(c1)), ADMISSION_OK);
        admission_linger(a, SA(c1), &l[i]);
    }
    assert_int_equal(admission_enter(a, SA(c1)), ADMISSION_CLIENT_FULL);
    assert_int_equal(g.asked_holding, 4);
    assert_int_equal(g.n, 0);
    for (int i = 0; i < N; i++)
        admission_leave_lingerer(a, SA(c1), &l[i]);
    assert_int_equal(admission_open(a), 0);
    admission_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_per_client_bound),
        cmocka_unit_test(test_bound_in_all),
        cmocka_unit_test(test_addresses_told_apart),
        cmocka_unit_test(test_ipv6_prefix),
        cmocka_unit_test(test_many_clients),
        cmocka_unit_test(test_lingering_connection_gives_way),
        cmocka_unit_test(test_lingering_connection_gives_way_at_the_bound_in_all),
        cmocka_unit_test(test_lingering_connection_that_holds_keeps_its_place),
        cmocka_unit_test(test_a_few_lingering_connections_asked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
