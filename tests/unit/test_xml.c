/*
 * Unit tests for aws/xml: finding an element's content (attributes, empty
 * elements, longer names, unclosed ones) and decoding entities and character
 * references (what is decoded, what stays as written, the output bound).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "aws/xml.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The content of tag in doc as a string ("(none)" when not found), and after's offset. */
static const char *find(const char *doc, const char *tag, size_t *after_off)
{
    static char text[256];
    const char *end = doc + strlen(doc), *after = NULL;
    size_t n = 12345;
    const char *v = xml_find(doc, end, tag, &n, &after);
    if (!v)
        return "(none)";
    assert_true(n < sizeof text);
    assert_true(v >= doc && v + n <= end);
    memcpy(text, v, n);
    text[n] = '\0';
    assert_non_null(after);
    assert_true(after >= v + n && after <= end);
    if (after_off)
        *after_off = (size_t)(after - doc);
    return text;
}

static void test_find_plain_element(void **state)
{
    (void)state;
    size_t off;
    assert_string_equal(find("<a><Code>NotFound</Code></a>", "Code", &off), "NotFound");
    assert_int_equal(off, strlen("<a><Code>NotFound</Code>"));
    assert_string_equal(find("<Code></Code>", "Code", NULL), "");
    assert_string_equal(find("<Code> spaced </Code>", "Code", NULL), " spaced ");
    /* the first element, up to the first end tag */
    assert_string_equal(find("<m>1</m><m>2</m>", "m", NULL), "1");
    assert_string_equal(find("<m><x/></m>", "m", NULL), "<x/>");
}

static void test_find_attributes_and_white_space(void **state)
{
    (void)state;
    assert_string_equal(find("<Error xmlns=\"urn:x\">e</Error>", "Error", NULL), "e");
    assert_string_equal(find("<Code >c</Code>", "Code", NULL), "c");
    assert_string_equal(find("<Code\n\ta='1'>c</Code>", "Code", NULL), "c");
}

static void test_find_empty_element(void **state)
{
    (void)state;
    size_t off;
    assert_string_equal(find("<r><MessageId/><x/></r>", "MessageId", &off), "");
    assert_int_equal(off, strlen("<r><MessageId/>"));
    assert_string_equal(find("<MessageId a=\"b\" />", "MessageId", NULL), "");
}

static void test_find_skips_longer_names(void **state)
{
    (void)state;
    assert_string_equal(find("<ErrorResponse><Error>in</Error></ErrorResponse>", "Error", NULL),
                        "in");
    assert_string_equal(find("<Codes>1</Codes><Code>2</Code>", "Code", NULL), "2");
    assert_string_equal(find("<Codes>1</Codes>", "Code", NULL), "(none)");
    /* an end tag of a longer name does not close it */
    assert_string_equal(find("<Code>a</Codes>b</Code>", "Code", NULL), "a</Codes>b");
}

/* A tag in the text of a closed CDATA section is text: it neither ends the element it is in nor
 * starts one; a section not closed is not one, and its tags count. */
static void test_find_passes_over_cdata_sections(void **state)
{
    (void)state;
    size_t off;
    assert_string_equal(find("<Message><![CDATA[a</Message>b]]></Message>", "Message", &off),
                        "<![CDATA[a</Message>b]]>");
    assert_int_equal(off, strlen("<Message><![CDATA[a</Message>b]]></Message>"));
    assert_string_equal(find("<m><![CDATA[</m>]]><![CDATA[]]></m>x</m>", "m", NULL),
                        "<![CDATA[</m>]]><![CDATA[]]>");
    assert_string_equal(
        find("<Message><![CDATA[<Code>x</Code>]]></Message><Code>c</Code>", "Code", NULL), "c");
    assert_string_equal(find("<![CDATA[<Code>x</Code>]]>", "Code", NULL), "(none)");
    assert_string_equal(find("<m><![CDATA[a</m>b", "m", NULL), "<![CDATA[a");
    assert_string_equal(find("<m>]]></m>", "m", NULL), "]]>");
}

static void test_find_missing_or_unclosed(void **state)
{
    (void)state;
    assert_string_equal(find("", "Code", NULL), "(none)");
    assert_string_equal(find("<Message>m</Message>", "Code", NULL), "(none)");
    assert_string_equal(find("<Code>never closed", "Code", NULL), "(none)");
    assert_string_equal(find("<Code", "Code", NULL), "(none)");
    assert_string_equal(find("<Code attr", "Code", NULL), "(none)");
    /* the first one is not closed: a later one is not looked for */
    assert_string_equal(find("<Code>a<Code>b</Cod", "Code", NULL), "(none)");
}

static void test_find_within_bounds_only(void **state)
{
    (void)state;
    const char *doc = "<Error><Code>c</Code></Error><Message>outside</Message>";
    size_t n;
    const char *err = xml_find(doc, doc + strlen(doc), "Error", &n, NULL);
    assert_non_null(err);
    assert_null(xml_find(err, err + n, "Message", &n, NULL));
    /* an element cut by the end of the range is not found */
    assert_null(xml_find(doc, doc + 18, "Code", &n, NULL));
    const char *code = xml_find(doc, doc + 21, "Code", &n, NULL);
    assert_non_null(code);
    assert_int_equal(n, 1);
}

/* Decode s with room for everything and compare to want. */
static void check_decode(const char *s, const char *want)
{
    char out[256];
    size_t n = strlen(s);
    assert_true(n < sizeof out);
    size_t len = xml_decode(out, n + 1, s, n);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(out, want, len + 1);
}

static void test_decode_named_entities(void **state)
{
    (void)state;
    check_decode("", "");
    check_decode("plain text", "plain text");
    check_decode("&lt;Message&gt; &amp; &quot;Subject&quot; &apos;x&apos;",
                 "<Message> & \"Subject\" 'x'");
    check_decode("&amp;lt;", "&lt;"); /* decoded once */
    check_decode("&lt;&gt;", "<>");
}

static void test_decode_character_references(void **state)
{
    (void)state;
    check_decode("caf&#233;", "caf\xc3\xa9");
    check_decode("&#x263A;&#x263a;&#X263a;", "\xe2\x98\xba\xe2\x98\xba\xe2\x98\xba");
    check_decode("&#65;&#x41;", "AA");
    check_decode("&#x7f;&#x80;&#x7FF;&#x800;", "\x7f\xc2\x80\xdf\xbf\xe0\xa0\x80");
    check_decode("&#xFFFF;&#x10000;&#x10FFFF;", "\xef\xbf\xbf\xf0\x90\x80\x80\xf4\x8f\xbf\xbf");
    check_decode("&#1114111;", "\xf4\x8f\xbf\xbf");
    /* up to 8 digits, so a zero-padded code point still decodes */
    check_decode("&#x0001F600;", "\xf0\x9f\x98\x80");
    check_decode("&#00000065;", "A");
}

static void test_decode_leaves_the_rest_as_written(void **state)
{
    (void)state;
    const char *kept[] = {
        "&",          "a & b",      "&amp",          "&lt",          "&nbsp;",
        "&#;",        "&#x;",       "&#65",          "&#x41",        "&#6A;",
        "&#xG1;",     "&#0;",       "&#x0;",         "&#xD800;",     "&#xDFFF;",
        "&#x110000;", "&#1114112;", "&#x000000041;", "&#000000065;", "&# 65;",
        "&#-65;",     "&#+65;",
    };
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++)
        check_decode(kept[i], kept[i]);
    /* a reference that is not one leaves its '&', and what follows is read on */
    check_decode("&#xD800;&amp;", "&#xD800;&");
    check_decode("&&lt;", "&<");
    check_decode("&#&#65;", "&#A");
}

static void test_decode_cdata_sections(void **state)
{
    (void)state;
    /* a CDATA section's text is as written, its markers dropped, nothing in it decoded */
    check_decode("<![CDATA[true]]>", "true");
    check_decode("<![CDATA[a < b && c]]>", "a < b && c");
    check_decode("<![CDATA[&amp;]]>&amp;", "&amp;&");
    check_decode("x<![CDATA[]]>y<![CDATA[<Id>]]>z", "xy<Id>z");
    check_decode("<![CDATA[]]]]><![CDATA[>]]>", "]]>");
    /* one that is not closed, or not one at all, stays as written */
    check_decode("<![CDATA[open", "<![CDATA[open");
    check_decode("<![CDATA[open]]", "<![CDATA[open]]");
    check_decode("<![CDATA", "<![CDATA");
    check_decode("<![cdata[x]]>", "<![cdata[x]]>");
    /* its text is cut at the capacity like any other */
    char out[8];
    assert_int_equal(xml_decode(out, 4, "<![CDATA[abcdef]]>", 18), 3);
    assert_string_equal(out, "abc");
    assert_int_equal(xml_decode(out, 8, "a<![CDATA[bc]]>d", 16), 4);
    assert_string_equal(out, "abcd");
}

/*
 * Text of many CDATA openings, none closed (an error's Message decoded whole, up to the 64 MiB an
 * answer may take): each stays as written, and the text is decoded in one pass, where each
 * opening looked for its "]]>" to the end of the text, 10^12 steps for 8 MiB.
 */
static void test_decode_many_unclosed_cdata_sections_at_once(void **state)
{
    (void)state;
    static const char open[] = "<![CDATA[";
    const size_t n = 8u << 20, ol = sizeof open - 1;
    char *s = malloc(n), *out = malloc(n + 1);
    assert_non_null(s);
    assert_non_null(out);
    for (size_t i = 0; i < n; i++)
        s[i] = open[i % ol];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(xml_decode(out, n + 1, s, n), n);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_memory_equal(out, s, n);
    int64_t ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    if (ms >= 10000)
        fail_msg("8 MiB of unclosed CDATA openings decoded in %lld ms", (long long)ms);
    free(s);
    free(out);
}

static void test_decode_embedded_nul_and_bounds(void **state)
{
    (void)state;
    /* the source is s[0..n): a NUL in it is copied, and nothing past n is read */
    char out[16];
    size_t len = xml_decode(out, sizeof out, "a\0b&lt;", 7);
    assert_int_equal(len, 4);
    assert_memory_equal(out, "a\0b<", 5);
    len = xml_decode(out, sizeof out, "&lt;", 3);
    assert_int_equal(len, 3);
    assert_string_equal(out, "&lt");
    len = xml_decode(out, sizeof out, "&#65;", 4);
    assert_string_equal(out, "&#65");
}

static void test_decode_stops_at_capacity(void **state)
{
    (void)state;
    char out[8];
    /* room for cap - 1 bytes and the NUL */
    assert_int_equal(xml_decode(out, 4, "abcdef", 6), 3);
    assert_string_equal(out, "abc");
    assert_int_equal(xml_decode(out, 1, "abc", 3), 0);
    assert_string_equal(out, "");
    /* a reference is never split: a 3-byte character that does not fit is left out */
    assert_int_equal(xml_decode(out, 5, "ab&#x263A;c", 11), 2);
    assert_string_equal(out, "ab");
    assert_int_equal(xml_decode(out, 6, "ab&#x263A;c", 11), 5);
    assert_string_equal(out, "ab\xe2\x98\xba");
    assert_int_equal(xml_decode(out, 4, "ab&amp;c", 8), 3);
    assert_string_equal(out, "ab&");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_find_plain_element),
        cmocka_unit_test(test_find_attributes_and_white_space),
        cmocka_unit_test(test_find_empty_element),
        cmocka_unit_test(test_find_skips_longer_names),
        cmocka_unit_test(test_find_passes_over_cdata_sections),
        cmocka_unit_test(test_find_missing_or_unclosed),
        cmocka_unit_test(test_find_within_bounds_only),
        cmocka_unit_test(test_decode_named_entities),
        cmocka_unit_test(test_decode_character_references),
        cmocka_unit_test(test_decode_leaves_the_rest_as_written),
        cmocka_unit_test(test_decode_cdata_sections),
        cmocka_unit_test(test_decode_many_unclosed_cdata_sections_at_once),
        cmocka_unit_test(test_decode_embedded_nul_and_bounds),
        cmocka_unit_test(test_decode_stops_at_capacity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
