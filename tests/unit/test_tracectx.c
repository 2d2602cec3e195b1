/*
 * Unit tests for core/tracectx: W3C traceparent (valid, every rejection
 * rule, higher versions, flag bits, surrounding whitespace), the X-Ray
 * header (spaces, missing Parent, Sampled values, Lineage and unknown keys,
 * bad Root / Parent), formatting both, converting ids between the two forms,
 * new X-Ray-style trace ids, the precedence in tracectx_from_headers, and
 * W3C tracestate (normal form, every rejection rule, several header lines,
 * truncation, hostile inputs).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/tracectx.h"

#include <stdio.h>
#include <string.h>

#define TID      "4bf92f3577b34da6a3ce929d0e0e4736"
#define SID      "00f067aa0ba902b7"
#define TP(v, f) v "-" TID "-" SID "-" f
#define XROOT    "1-5759e988-bd862e3fe1be46a994272793"
#define XPARENT  "53995c3f42cd8ad8"

static const uint8_t tid_bytes[16] = {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
                                      0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36};
static const uint8_t sid_bytes[8] = {0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7};
static const uint8_t xroot_bytes[16] = {0x57, 0x59, 0xe9, 0x88, 0xbd, 0x86, 0x2e, 0x3f,
                                        0xe1, 0xbe, 0x46, 0xa9, 0x94, 0x27, 0x27, 0x93};
static const uint8_t xparent_bytes[8] = {0x53, 0x99, 0x5c, 0x3f, 0x42, 0xcd, 0x8a, 0xd8};

/* Parse h, expecting failure, and check *out was left alone. */
static void assert_tp_rejected(const char *h)
{
    trace_ctx c;
    memset(&c, 0xa5, sizeof c);
    if (tracectx_parse_traceparent(h, &c))
        fail_msg("accepted: \"%s\"", h ? h : "(null)");
    for (size_t i = 0; i < sizeof c; i++)
        assert_int_equal(((uint8_t *)&c)[i], 0xa5);
}

static void assert_xray_rejected(const char *h)
{
    trace_ctx c;
    memset(&c, 0xa5, sizeof c);
    if (tracectx_parse_xray(h, &c))
        fail_msg("accepted: \"%s\"", h ? h : "(null)");
    assert_int_equal(c.flags, 0xa5);
}

/* ---- traceparent ---- */

static void test_tp_valid(void **state)
{
    (void)state;
    trace_ctx c;
    assert_true(tracectx_parse_traceparent(TP("00", "01"), &c));
    assert_memory_equal(c.trace_id, tid_bytes, 16);
    assert_memory_equal(c.span_id, sid_bytes, 8);
    assert_int_equal(c.flags, TRACECTX_FLAG_SAMPLED);

    assert_true(tracectx_parse_traceparent(TP("00", "00"), &c));
    assert_int_equal(c.flags, 0);
}

static void test_tp_flag_bits(void **state)
{
    (void)state;
    trace_ctx c;
    /* Bits are tested, not whole values; only defined bits (sampled, random) are kept. */
    assert_true(tracectx_parse_traceparent(TP("00", "02"), &c));
    assert_int_equal(c.flags, TRACECTX_FLAG_RANDOM);
    assert_true(tracectx_parse_traceparent(TP("00", "03"), &c));
    assert_int_equal(c.flags, TRACECTX_FLAG_SAMPLED | TRACECTX_FLAG_RANDOM);
    assert_true(tracectx_parse_traceparent(TP("00", "09"), &c));
    assert_int_equal(c.flags, TRACECTX_FLAG_SAMPLED);
    assert_true(tracectx_parse_traceparent(TP("00", "ff"), &c));
    assert_int_equal(c.flags, TRACECTX_FLAGS_KNOWN);
    assert_true(tracectx_parse_traceparent(TP("00", "fe"), &c));
    assert_int_equal(c.flags & TRACECTX_FLAG_SAMPLED, 0);
}

static void test_tp_whitespace(void **state)
{
    (void)state;
    trace_ctx c;
    assert_true(tracectx_parse_traceparent(" \t" TP("00", "01") "\t ", &c));
    assert_memory_equal(c.trace_id, tid_bytes, 16);
    assert_tp_rejected(TP("00", "01") " x");
    assert_tp_rejected("00 -" TID "-" SID "-01");
}

static void test_tp_rejects(void **state)
{
    (void)state;
    assert_tp_rejected(NULL);
    assert_tp_rejected("");
    assert_tp_rejected("   ");
    /* version ff is invalid, and so is anything that is not two lowercase hex digits */
    assert_tp_rejected(TP("ff", "01"));
    assert_tp_rejected(TP("0g", "01"));
    assert_tp_rejected(TP("0A", "01"));
    assert_tp_rejected(TP("-0", "01"));
    /* short */
    assert_tp_rejected("00-" TID "-" SID "-0");
    assert_tp_rejected("00-" TID "-" SID "-");
    assert_tp_rejected("00-" TID "-" SID);
    assert_tp_rejected("00-4bf92f3577b34da6a3ce929d0e0e473-" SID "-01");
    assert_tp_rejected("00-" TID "-00f067aa0ba902b-01");
    /* version 00 takes nothing after the flags */
    assert_tp_rejected(TP("00", "01") "-");
    assert_tp_rejected(TP("00", "01") "-extra");
    assert_tp_rejected(TP("00", "011"));
    /* wrong or missing separators */
    assert_tp_rejected("00_" TID "-" SID "-01");
    assert_tp_rejected("00-" TID "_" SID "-01");
    assert_tp_rejected("00-" TID "-" SID "_01");
    assert_tp_rejected("00" TID "-" SID "-01x");
    /* uppercase hex anywhere */
    assert_tp_rejected("00-4BF92F3577B34DA6A3CE929D0E0E4736-" SID "-01");
    assert_tp_rejected("00-4bf92f3577b34da6a3ce929d0e0e473A-" SID "-01");
    assert_tp_rejected("00-" TID "-00F067AA0BA902B7-01");
    assert_tp_rejected(TP("00", "0A"));
    /* non-hex */
    assert_tp_rejected("00-4bf92f3577b34da6a3ce929d0e0e473z-" SID "-01");
    assert_tp_rejected("00-" TID "-00f067aa0ba902bx-01");
    assert_tp_rejected(TP("00", "0x"));
    assert_tp_rejected(TP("00", "-1"));
    /* all-zero ids */
    assert_tp_rejected("00-00000000000000000000000000000000-" SID "-01");
    assert_tp_rejected("00-" TID "-0000000000000000-01");
}

static void test_tp_future_versions(void **state)
{
    (void)state;
    trace_ctx c;
    /* A higher version of exactly 55 characters parses at the fixed positions. */
    assert_true(tracectx_parse_traceparent(TP("01", "01"), &c));
    assert_memory_equal(c.trace_id, tid_bytes, 16);
    assert_memory_equal(c.span_id, sid_bytes, 8);
    assert_int_equal(c.flags, TRACECTX_FLAG_SAMPLED);
    /* Longer: the flags must be followed by '-'; what follows is ignored. */
    assert_true(tracectx_parse_traceparent(TP("cc", "01") "-what-the-future-will-be-like", &c));
    assert_memory_equal(c.trace_id, tid_bytes, 16);
    assert_int_equal(c.flags, TRACECTX_FLAG_SAMPLED);
    assert_true(tracectx_parse_traceparent(TP("fe", "08") "-x", &c));
    assert_int_equal(c.flags, 0);
    assert_true(tracectx_parse_traceparent(TP("cc", "01") "-", &c));
    /* Re-emitted as version 00. */
    char out[56];
    tracectx_format_traceparent(&c, out);
    assert_string_equal(out, TP("00", "01"));

    assert_tp_rejected(TP("cc", "01") ".what-the-future-will-be-like");
    assert_tp_rejected(TP("cc", "01") "1");
    assert_tp_rejected("cc-" TID "-" SID "-0");
    assert_tp_rejected("cc-" TID "-" SID);
    assert_tp_rejected("cc-00000000000000000000000000000000-" SID "-01-x");
    assert_tp_rejected("cc-" TID "-0000000000000000-01-x");
    assert_tp_rejected("cc-" TID "-" SID "-0A-x");
    assert_tp_rejected("cc-4BF92F3577B34DA6A3CE929D0E0E4736-" SID "-01-x");
    assert_tp_rejected("cc-" TID "x" SID "-01-x");
    assert_tp_rejected(TP("ff", "01") "-x");
}

static void test_tp_format(void **state)
{
    (void)state;
    trace_ctx c = {.flags = 0};
    memcpy(c.trace_id, tid_bytes, 16);
    memcpy(c.span_id, sid_bytes, 8);
    char out[56];
    memset(out, 'X', sizeof out);
    tracectx_format_traceparent(&c, out);
    assert_string_equal(out, TP("00", "00"));
    assert_int_equal(strlen(out), TRACECTX_TRACEPARENT_LEN);

    c.flags = TRACECTX_FLAG_SAMPLED | TRACECTX_FLAG_RANDOM;
    tracectx_format_traceparent(&c, out);
    assert_string_equal(out, TP("00", "03"));
    /* Undefined bits are never sent. */
    c.flags = 0xfd;
    tracectx_format_traceparent(&c, out);
    assert_string_equal(out, TP("00", "01"));

    /* Round trip. */
    trace_ctx d;
    assert_true(tracectx_parse_traceparent(out, &d));
    assert_memory_equal(d.trace_id, c.trace_id, 16);
    assert_memory_equal(d.span_id, c.span_id, 8);
    assert_int_equal(d.flags, TRACECTX_FLAG_SAMPLED);
}

/* ---- X-Ray header ---- */

static void test_xray_full(void **state)
{
    (void)state;
    trace_ctx c;
    assert_true(tracectx_parse_xray(
        "Root=" XROOT ";Parent=" XPARENT ";Sampled=1;Lineage=a87bd80c:1|68fd508a:5", &c));
    assert_memory_equal(c.trace_id, xroot_bytes, 16);
    assert_memory_equal(c.span_id, xparent_bytes, 8);
    assert_int_equal(c.flags, TRACECTX_FLAG_SAMPLED);

    /* Any key order; Lineage anywhere is ignored. */
    assert_true(
        tracectx_parse_xray("Lineage=a87bd80c:1;Sampled=0;Parent=" XPARENT ";Root=" XROOT, &c));
    assert_memory_equal(c.trace_id, xroot_bytes, 16);
    assert_memory_equal(c.span_id, xparent_bytes, 8);
    assert_int_equal(c.flags, 0);
}

static void test_xray_spaces(void **state)
{
    (void)state;
    trace_ctx c;
    assert_true(
        tracectx_parse_xray("  Root = " XROOT " ; Parent=" XPARENT "\t;  Sampled = 1 ", &c));
    assert_memory_equal(c.trace_id, xroot_bytes, 16);
    assert_memory_equal(c.span_id, xparent_bytes, 8);
    assert_int_equal(c.flags, TRACECTX_FLAG_SAMPLED);
    /* Spaces inside a value are not tolerated. */
    assert_xray_rejected("Root=1-5759e988 -bd862e3fe1be46a994272793");
}

static void test_xray_missing_parent(void **state)
{
    (void)state;
    static const uint8_t zero[8] = {0};
    trace_ctx c;
    assert_true(tracectx_parse_xray("Root=" XROOT ";Sampled=1", &c));
    assert_memory_equal(c.trace_id, xroot_bytes, 16);
    assert_memory_equal(c.span_id, zero, 8);
    assert_int_equal(c.flags, TRACECTX_FLAG_SAMPLED);
    assert_true(tracectx_parse_xray("Root=" XROOT, &c));
    assert_memory_equal(c.span_id, zero, 8);
    assert_int_equal(c.flags, 0);
    /* An all-zero Parent is the same as none. */
    assert_true(tracectx_parse_xray("Root=" XROOT ";Parent=0000000000000000", &c));
    assert_memory_equal(c.span_id, zero, 8);
}

static void test_xray_sampled_values(void **state)
{
    (void)state;
    trace_ctx c;
    const char *not_sampled[] = {
        "Root=" XROOT ";Parent=" XPARENT ";Sampled=?",
        "Root=" XROOT ";Parent=" XPARENT ";Sampled=0",
        "Root=" XROOT ";Parent=" XPARENT ";Sampled=",
        "Root=" XROOT ";Parent=" XPARENT ";Sampled=d",
        "Root=" XROOT ";Parent=" XPARENT ";Sampled=11",
        "Root=" XROOT ";Parent=" XPARENT,
        "Root=" XROOT ";Parent=" XPARENT ";sampled=1", /* keys are case-sensitive */
        "Root=" XROOT ";Parent=" XPARENT ";Sampled=1;Sampled=?",
    };
    for (size_t i = 0; i < sizeof not_sampled / sizeof *not_sampled; i++) {
        assert_true(tracectx_parse_xray(not_sampled[i], &c));
        assert_int_equal(c.flags & TRACECTX_FLAG_SAMPLED, 0);
        assert_memory_equal(c.span_id, xparent_bytes, 8);
    }
    assert_true(tracectx_parse_xray("Root=" XROOT ";Sampled=?;Sampled=1", &c));
    assert_int_equal(c.flags, TRACECTX_FLAG_SAMPLED);
}

static void test_xray_unknown_and_empty_parts(void **state)
{
    (void)state;
    trace_ctx c;
    assert_true(tracectx_parse_xray(";;Self=1-67891233-abcdef012345678912345678;Root=" XROOT
                                    ";;Foo=bar=baz;junk;Parent=" XPARENT ";Sampled=1;",
                                    &c));
    assert_memory_equal(c.trace_id, xroot_bytes, 16);
    assert_memory_equal(c.span_id, xparent_bytes, 8);
    assert_int_equal(c.flags, TRACECTX_FLAG_SAMPLED);
    /* Uppercase hex is accepted in the X-Ray header. */
    assert_true(tracectx_parse_xray(
        "Root=1-5759E988-BD862E3FE1BE46A994272793;Parent=53995C3F42CD8AD8", &c));
    assert_memory_equal(c.trace_id, xroot_bytes, 16);
    assert_memory_equal(c.span_id, xparent_bytes, 8);
}

static void test_xray_bad_root(void **state)
{
    (void)state;
    assert_xray_rejected(NULL);
    assert_xray_rejected("");
    assert_xray_rejected("Parent=" XPARENT ";Sampled=1");              /* no Root */
    assert_xray_rejected("root=" XROOT);                               /* case-sensitive key */
    assert_xray_rejected("Root=");                                     /* empty */
    assert_xray_rejected("Root=2-5759e988-bd862e3fe1be46a994272793");  /* version */
    assert_xray_rejected("Root=1-5759e98-bd862e3fe1be46a9942727930");  /* 7 + 25 */
    assert_xray_rejected("Root=1-5759e988-bd862e3fe1be46a99427279");   /* short */
    assert_xray_rejected("Root=1-5759e988-bd862e3fe1be46a9942727933"); /* long */
    assert_xray_rejected("Root=1-5759e988bd862e3fe1be46a994272793");   /* no dash */
    assert_xray_rejected("Root=15759e988-bd862e3fe1be46a9942727933");
    assert_xray_rejected("Root=1-5759e98g-bd862e3fe1be46a994272793"); /* non-hex */
    assert_xray_rejected("Root=1-5759e988-bd862e3fe1be46a99427279z");
    assert_xray_rejected("Root=1-00000000-000000000000000000000000"); /* all zero */
    assert_xray_rejected("Root=" XROOT "x");
    assert_xray_rejected("Root=" XROOT ";Root=1-5759e988-bd862e3fe1be4");
    /* a malformed Parent spoils the header */
    assert_xray_rejected("Root=" XROOT ";Parent=53995c3f42cd8ad");
    assert_xray_rejected("Root=" XROOT ";Parent=53995c3f42cd8ad8a");
    assert_xray_rejected("Root=" XROOT ";Parent=53995c3f42cd8adz");
    assert_xray_rejected("Root=" XROOT ";Parent=");
}

static void test_xray_format(void **state)
{
    (void)state;
    trace_ctx c = {.flags = TRACECTX_FLAG_SAMPLED | TRACECTX_FLAG_RANDOM};
    memcpy(c.trace_id, xroot_bytes, 16);
    memcpy(c.span_id, xparent_bytes, 8);
    char out[TRACECTX_XRAY_MAX];
    size_t n = tracectx_format_xray(&c, out, sizeof out);
    assert_string_equal(out, "Root=" XROOT ";Parent=" XPARENT ";Sampled=1");
    assert_int_equal(n, strlen(out));
    assert_int_equal(n + 1, TRACECTX_XRAY_MAX); /* the longest form fills the buffer exactly */

    c.flags = 0;
    memset(c.span_id, 0, 8);
    n = tracectx_format_xray(&c, out, sizeof out);
    assert_string_equal(out, "Root=" XROOT ";Sampled=0");
    assert_int_equal(n, strlen(out));

    /* Too small: 0 and an empty string; exactly enough: fits. */
    char small[20];
    memset(small, 'X', sizeof small);
    assert_int_equal(tracectx_format_xray(&c, small, sizeof small), 0);
    assert_string_equal(small, "");
    assert_int_equal(tracectx_format_xray(&c, NULL, 0), 0);
    char exact[sizeof "Root=" XROOT ";Sampled=0"];
    assert_int_equal(tracectx_format_xray(&c, exact, sizeof exact), sizeof exact - 1);
    assert_int_equal(tracectx_format_xray(&c, exact, sizeof exact - 1), 0);

    /* Round trip. */
    memcpy(c.span_id, xparent_bytes, 8);
    c.flags = TRACECTX_FLAG_SAMPLED;
    tracectx_format_xray(&c, out, sizeof out);
    trace_ctx d;
    assert_true(tracectx_parse_xray(out, &d));
    assert_memory_equal(&d, &c, sizeof c);
}

/* ---- ids and conversion ---- */

static void test_xray_trace_id_and_new_id(void **state)
{
    (void)state;
    /* tracing.md §2: 1480615200 -> 58406520. */
    const uint8_t rnd[12] = {0xa0, 0x06, 0x64, 0x91, 0x27, 0xe3,
                             0x71, 0x90, 0x3a, 0x2d, 0xe9, 0x79};
    uint8_t id[16];
    tracectx_new_trace_id(id, 1480615200u, rnd);
    const uint8_t want[16] = {0x58, 0x40, 0x65, 0x20, 0xa0, 0x06, 0x64, 0x91,
                              0x27, 0xe3, 0x71, 0x90, 0x3a, 0x2d, 0xe9, 0x79};
    assert_memory_equal(id, want, 16);
    char x[36];
    memset(x, 'X', sizeof x);
    tracectx_xray_trace_id(id, x);
    assert_string_equal(x, "1-58406520-a006649127e371903a2de979");

    tracectx_new_trace_id(id, 0xffffffffu, rnd);
    tracectx_xray_trace_id(id, x);
    assert_string_equal(x, "1-ffffffff-a006649127e371903a2de979");
    tracectx_new_trace_id(id, 1u, rnd);
    tracectx_xray_trace_id(id, x);
    assert_string_equal(x, "1-00000001-a006649127e371903a2de979");
}

static void test_convert_xray_to_w3c(void **state)
{
    (void)state;
    trace_ctx c;
    assert_true(tracectx_parse_xray("Root=" XROOT ";Parent=" XPARENT ";Sampled=1", &c));
    char tp[56];
    tracectx_format_traceparent(&c, tp);
    /* Root without "1-" and "-" is the trace id; Parent is the parent id; Sampled is bit 0. */
    assert_string_equal(tp, "00-5759e988bd862e3fe1be46a994272793-" XPARENT "-01");
}

static void test_convert_w3c_to_xray(void **state)
{
    (void)state;
    trace_ctx c;
    assert_true(tracectx_parse_traceparent(TP("00", "01"), &c));
    char x[TRACECTX_XRAY_MAX];
    tracectx_format_xray(&c, x, sizeof x);
    assert_string_equal(x, "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=" SID ";Sampled=1");
    char id[36];
    tracectx_xray_trace_id(c.trace_id, id);
    assert_string_equal(id, "1-4bf92f35-77b34da6a3ce929d0e0e4736");
    /* and back */
    trace_ctx d;
    assert_true(tracectx_parse_xray(x, &d));
    assert_memory_equal(d.trace_id, tid_bytes, 16);
    assert_memory_equal(d.span_id, sid_bytes, 8);
    assert_int_equal(d.flags, TRACECTX_FLAG_SAMPLED);
}

/* ---- precedence ---- */

static void test_from_headers(void **state)
{
    (void)state;
    const char *tp = TP("00", "00");
    const char *xr = "Root=" XROOT ";Parent=" XPARENT ";Sampled=1";
    trace_ctx c;

    assert_int_equal(tracectx_from_headers(tp, xr, &c), TRACECTX_W3C); /* both valid */
    assert_memory_equal(c.trace_id, tid_bytes, 16);
    assert_memory_equal(c.span_id, sid_bytes, 8);
    assert_int_equal(c.flags, 0);

    assert_int_equal(tracectx_from_headers(TP("ff", "01"), xr, &c), TRACECTX_XRAY); /* bad tp */
    assert_memory_equal(c.trace_id, xroot_bytes, 16);
    assert_int_equal(c.flags, TRACECTX_FLAG_SAMPLED);

    assert_int_equal(tracectx_from_headers(NULL, xr, &c), TRACECTX_XRAY);
    assert_memory_equal(c.span_id, xparent_bytes, 8);

    assert_int_equal(tracectx_from_headers(tp, NULL, &c), TRACECTX_W3C);
    assert_memory_equal(c.trace_id, tid_bytes, 16);

    assert_int_equal(tracectx_from_headers(tp, "garbage", &c), TRACECTX_W3C);
    assert_memory_equal(c.trace_id, tid_bytes, 16);

    trace_ctx d;
    memset(&d, 0x5a, sizeof d);
    assert_int_equal(TRACECTX_NONE, tracectx_from_headers(NULL, NULL, &d));
    assert_int_equal(TRACECTX_NONE, tracectx_from_headers("", "", &d));
    assert_int_equal(TRACECTX_NONE, tracectx_from_headers(TP("00", "0g"), "Root=1-x", &d));
    assert_int_equal(d.flags, 0x5a);
    assert_int_equal(TRACECTX_NONE, tracectx_from_headers(tp, xr, NULL));
}

/* ---- tracestate ---- */

/* Parse one header value; the normal form, or NULL when dropped (then out must be ""). */
static const char *ts1(const char *h)
{
    static char out[TRACECTX_TRACESTATE_MAX + 1];
    memset(out, 'x', sizeof out);
    const char *v[] = {h};
    if (tracectx_parse_tracestate(v, 1, out))
        return out;
    assert_string_equal(out, "");
    return NULL;
}

static void assert_ts(const char *h, const char *want)
{
    const char *got = ts1(h);
    if (!got || strcmp(got, want) != 0)
        fail_msg("\"%s\" gave \"%s\", not \"%s\"", h, got ? got : "(dropped)", want);
}

static void assert_ts_dropped(const char *h)
{
    const char *got = ts1(h);
    if (got)
        fail_msg("\"%s\" gave \"%s\", not dropped", h, got);
}

static void test_ts_valid(void **state)
{
    (void)state;
    assert_ts("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE", "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
    assert_ts("a=1", "a=1");
    /* optional whitespace around commas, and around the whole, goes */
    assert_ts(" \trojo=1 ,\tcongo=2\t, x=3 ", "rojo=1,congo=2,x=3");
    /* empty members are dropped */
    assert_ts(",a=1,,  ,\t,b=2,", "a=1,b=2");
    /* key characters; a digit first; tenant@system keys */
    assert_ts("0a_-*/@z=v", "0a_-*/@z=v");
    assert_ts("fw529a3039@dt=ok,tenant@system=x", "fw529a3039@dt=ok,tenant@system=x");
    /* value: any printable ASCII but ',' and '=', inner and leading spaces kept */
    assert_ts("k= a b!~\"#;:", "k= a b!~\"#;:");
    /* a key of 256 characters, a value of 256 */
    char key[300], val[300], h[700];
    memset(key, 'k', 256);
    key[256] = '\0';
    memset(val, 'v', 256);
    val[256] = '\0';
    snprintf(h, sizeof h, "%s=%s", key, "1");
    assert_ts(h, h);
    snprintf(h, sizeof h, "a=%s", val);
    assert_ts(h, h);
    /* 32 members */
    char list[32 * 8] = "";
    for (int i = 0; i < 32; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%sk%d=v", i ? "," : "", i);
    assert_ts(list, list);
}

static void test_ts_rejects(void **state)
{
    (void)state;
    char out[TRACECTX_TRACESTATE_MAX + 1] = "junk";
    assert_false(tracectx_parse_tracestate(NULL, 1, out));
    assert_string_equal(out, "");
    const char *none[] = {NULL};
    assert_false(tracectx_parse_tracestate(none, 1, out));
    assert_false(tracectx_parse_tracestate(none, 0, NULL));
    /* nothing there */
    assert_ts_dropped("");
    assert_ts_dropped(" , ,\t");
    /* not key=value */
    assert_ts_dropped("a");
    assert_ts_dropped("a=1,b");
    assert_ts_dropped("=1");
    assert_ts_dropped("a=");
    assert_ts_dropped("a=1=2");
    /* whitespace is allowed around commas only */
    assert_ts_dropped("a =1");
    assert_ts_dropped("a\t=1");
    assert_ts_dropped("a=\t1");
    assert_ts_dropped("a=1\tb");
    /* key grammar: lowercase letter or digit first, then a-z 0-9 _ - * / @ */
    assert_ts_dropped("A=1");
    assert_ts_dropped("aB=1");
    assert_ts_dropped("_a=1");
    assert_ts_dropped("@a=1");
    assert_ts_dropped("a.b=1");
    assert_ts_dropped("a b=1");
    char key[300], val[300], h[700];
    memset(key, 'k', 257);
    key[257] = '\0';
    snprintf(h, sizeof h, "%s=1", key);
    assert_ts_dropped(h);
    /* value grammar: 1..256 of 0x20-0x7E but ',' and '=' */
    memset(val, 'v', 257);
    val[257] = '\0';
    snprintf(h, sizeof h, "a=%s", val);
    assert_ts_dropped(h);
    assert_ts_dropped("a=\x7f");
    assert_ts_dropped("a=\x01");
    assert_ts_dropped("a=caf\xc3\xa9");
    assert_ts_dropped("a=1\r\nb=2");
    /* a key twice, even far apart */
    assert_ts_dropped("a=1,b=2,a=3");
    assert_ts_dropped("a=1,a=1");
    /* one bad member drops the whole list, good members and all */
    assert_ts_dropped("good=1,BAD=2,fine=3");
    /* 33 members */
    char list[33 * 8] = "";
    for (int i = 0; i < 33; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%sk%d=v", i ? "," : "", i);
    assert_ts_dropped(list);
}

static void test_ts_several_lines(void **state)
{
    (void)state;
    char out[TRACECTX_TRACESTATE_MAX + 1];
    const char *two[] = {"rojo=1 ", " congo=2,x=3"};
    assert_true(tracectx_parse_tracestate(two, 2, out));
    assert_string_equal(out, "rojo=1,congo=2,x=3");
    /* a line of its own is one list with the others: empty lines add nothing... */
    const char *gaps[] = {"", NULL, "a=1", ",", "b=2"};
    assert_true(tracectx_parse_tracestate(gaps, 5, out));
    assert_string_equal(out, "a=1,b=2");
    /* ...a key on two lines is a key twice, and the count spans the lines */
    const char *dup[] = {"a=1", "a=2"};
    assert_false(tracectx_parse_tracestate(dup, 2, out));
    assert_string_equal(out, "");
    char first[20 * 8] = "", second[13 * 8] = "";
    for (int i = 0; i < 20; i++)
        snprintf(first + strlen(first), sizeof first - strlen(first), "%sa%d=v", i ? "," : "", i);
    for (int i = 0; i < 13; i++)
        snprintf(second + strlen(second), sizeof second - strlen(second), "%sb%d=v", i ? "," : "",
                 i);
    const char *many[] = {first, second};
    assert_false(tracectx_parse_tracestate(many, 2, out));
    /* and a bad line drops the good ones */
    const char *bad[] = {"a=1", "B=2"};
    assert_false(tracectx_parse_tracestate(bad, 2, out));
}

/* A member "<key>=<value>" of exactly len characters. */
static void member(char *out, const char *key, size_t len)
{
    size_t k = strlen(key);
    memcpy(out, key, k);
    out[k] = '=';
    memset(out + k + 1, 'v', len - k - 1);
    out[len] = '\0';
}

static void test_ts_truncation(void **state)
{
    (void)state;
    char a[300], b[300], c[300], d[300], big[300], h[2048], want[2048];
    /* exactly 512 is kept whole: 4 x 127 + 3 commas + ... */
    member(a, "a", 127);
    member(b, "b", 127);
    member(c, "c", 127);
    member(d, "d", 128);
    snprintf(h, sizeof h, "%s,%s,%s,%s", a, b, c, d);
    assert_int_equal(strlen(h), 512);
    assert_ts(h, h);
    /* one more character, none over 128: members go from the right until it fits */
    char e[300];
    member(a, "a", 128);
    member(b, "b", 128);
    member(c, "c", 128);
    member(d, "d", 128);
    member(e, "e", 128);
    snprintf(h, sizeof h, "%s,%s,%s,%s,%s", a, b, c, d, e);
    snprintf(want, sizeof want, "%s,%s,%s", a, b, c);
    assert_ts(h, want);
    member(a, "a", 127);
    member(b, "b", 127);
    /* members over 128 characters go first, right-most first, and only as many as needed */
    member(d, "d", 100);
    member(big, "big", 200);
    char big2[300];
    member(big2, "big2", 200);
    snprintf(h, sizeof h, "%s,%s,%s,%s,%s", big, a, big2, b, d);
    assert_true(strlen(h) > 512);
    /* without big2: 200 + 127 + 127 + 100 + 3 = 557, still too long: big goes too */
    snprintf(want, sizeof want, "%s,%s,%s", a, b, d);
    assert_ts(h, want);
    member(d, "d", 50);
    snprintf(h, sizeof h, "%s,%s,%s,%s,%s", big, a, big2, b, d);
    /* without big2: 200 + 127 + 127 + 50 + 3 = 507: big stays */
    snprintf(want, sizeof want, "%s,%s,%s,%s", big, a, b, d);
    assert_ts(h, want);
    /* 32 members of 252 + 1 + 256 characters, all over 128: dropped from the right until the
     * left-most is alone */
    char huge[32 * 520] = "", m[520], first[520] = "";
    for (int i = 0; i < 32; i++) {
        memset(m, 'a' + (i % 26), 250);
        snprintf(m + 250, sizeof m - 250, "%02d=", i);
        memset(m + 253, 'v', 256);
        m[253 + 256] = '\0';
        if (i == 0)
            memcpy(first, m, sizeof first);
        snprintf(huge + strlen(huge), sizeof huge - strlen(huge), "%s%s", i ? "," : "", m);
    }
    assert_int_equal(strlen(first), 509);
    assert_ts(huge, first);
    /* the result always fits, whatever came in */
    char mix[4096] = "";
    for (int i = 0; i < 32; i++)
        snprintf(mix + strlen(mix), sizeof mix - strlen(mix), "%sk%02d=%0*d", i ? "," : "", i,
                 10 + i * 4, 0);
    const char *got = ts1(mix);
    assert_non_null(got);
    assert_true(strlen(got) <= TRACECTX_TRACESTATE_MAX);
    assert_int_equal(strncmp(got, "k00=", 4), 0);
}

static void test_ts_hostile(void **state)
{
    (void)state;
    /* long runs of separators and whitespace, a huge single member, control bytes */
    static char h[1 << 16];
    memset(h, ',', sizeof h - 1);
    h[sizeof h - 1] = '\0';
    assert_ts_dropped(h);
    memset(h, ' ', sizeof h - 1);
    assert_ts_dropped(h);
    memset(h, 'a', sizeof h - 1);
    assert_ts_dropped(h);
    h[1] = '=';
    assert_ts_dropped(h);
    for (size_t i = 0; i + 4 < sizeof h - 1; i += 4)
        memcpy(h + i, "a=1,", 4);
    assert_ts_dropped(h); /* the same key, over and over */
    assert_ts_dropped("a=1,\xff=2");
    assert_ts("a=1\x00,B=2", "a=1");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tp_valid),
        cmocka_unit_test(test_tp_flag_bits),
        cmocka_unit_test(test_tp_whitespace),
        cmocka_unit_test(test_tp_rejects),
        cmocka_unit_test(test_tp_future_versions),
        cmocka_unit_test(test_tp_format),
        cmocka_unit_test(test_xray_full),
        cmocka_unit_test(test_xray_spaces),
        cmocka_unit_test(test_xray_missing_parent),
        cmocka_unit_test(test_xray_sampled_values),
        cmocka_unit_test(test_xray_unknown_and_empty_parts),
        cmocka_unit_test(test_xray_bad_root),
        cmocka_unit_test(test_xray_format),
        cmocka_unit_test(test_xray_trace_id_and_new_id),
        cmocka_unit_test(test_convert_xray_to_w3c),
        cmocka_unit_test(test_convert_w3c_to_xray),
        cmocka_unit_test(test_from_headers),
        cmocka_unit_test(test_ts_valid),
        cmocka_unit_test(test_ts_rejects),
        cmocka_unit_test(test_ts_several_lines),
        cmocka_unit_test(test_ts_truncation),
        cmocka_unit_test(test_ts_hostile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
