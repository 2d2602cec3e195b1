/*
 * Unit tests for api/dashboard: the compiled-in files are the ones in
 * src/api/dashboard, each with its content type and a strong ETag; an answer
 * carries the security and caching headers; If-None-Match gives 304 for the
 * file's tag (in a list, weak, or "*") and 200 for any other; an unknown
 * name is a JSON 404.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "api/dashboard.h"

#include <stdio.h>
#include <string.h>

static const char *header_of(const api_response *r, const char *name)
{
    for (int i = 0; i < r->n_headers; i++)
        if (strcmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    return NULL;
}

static void serve(const char *name, const char *inm, api_response *r)
{
    memset(r, 0, sizeof *r);
    dashboard_serve(name, inm, r);
}

static void test_files_and_types(void **state)
{
    (void)state;
    static const char *const want[][2] = {
        {"index.html", "text/html; charset=utf-8"},
        {"app.js", "text/javascript; charset=utf-8"},
        {"app.css", "text/css; charset=utf-8"},
        {"favicon.svg", "image/svg+xml; charset=utf-8"},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const dashboard_asset *f = dashboard_find(want[i][0]);
        assert_non_null(f);
        assert_string_equal(f->content_type, want[i][1]);
        assert_true(f->len > 100);
        assert_int_equal(f->data[f->len], 0); /* the generator ends each file with a NUL */
        assert_int_equal(strlen(f->etag), 22);
        assert_int_equal(f->etag[0], '"');
        assert_int_equal(f->etag[21], '"');
    }
    assert_null(dashboard_find("nope.js"));
    assert_null(dashboard_find(""));
    /* the page loads its script and style from the routes that serve them */
    const dashboard_asset *page = dashboard_find("index.html");
    assert_non_null(strstr((const char *)page->data, "src=\"/dashboard/app.js\""));
    assert_non_null(strstr((const char *)page->data, "href=\"/dashboard/app.css\""));
    assert_null(strstr((const char *)page->data, "<style"));
    assert_null(strstr((const char *)page->data, " style="));
    assert_null(strstr((const char *)page->data, " onclick="));
}

static void test_answer_headers(void **state)
{
    (void)state;
    api_response r;
    serve("app.js", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.content_type, "text/javascript; charset=utf-8");
    const dashboard_asset *f = dashboard_find("app.js");
    assert_int_equal(r.body_len, f->len);
    assert_memory_equal(r.body, f->data, f->len);
    assert_string_equal(header_of(&r, "Content-Security-Policy"),
                        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src "
                        "'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
                        "frame-ancestors 'none'");
    assert_string_equal(header_of(&r, "X-Content-Type-Options"), "nosniff");
    assert_string_equal(header_of(&r, "Referrer-Policy"), "no-referrer");
    assert_string_equal(header_of(&r, "Cache-Control"), "no-cache");
    assert_string_equal(header_of(&r, "ETag"), f->etag);
    api_response_free(&r);
}

static void test_if_none_match(void **state)
{
    (void)state;
    const char *tag = dashboard_find("app.css")->etag;
    char list[128], weak[64];
    snprintf(list, sizeof list, "\"0000\", %s", tag);
    snprintf(weak, sizeof weak, "W/%s", tag);
    const char *const hits[] = {tag, list, weak, "*", " *"};
    for (size_t i = 0; i < sizeof hits / sizeof hits[0]; i++) {
        api_response r;
        serve("app.css", hits[i], &r);
        assert_int_equal(r.status, 304);
        assert_null(r.body);
        assert_null(r.content_type);
        assert_string_equal(header_of(&r, "ETag"), tag);
        assert_non_null(header_of(&r, "Content-Security-Policy"));
    }
    char prefix[32];
    snprintf(prefix, sizeof prefix, "%.10s\"", tag); /* the start of the tag only */
    const char *const misses[] = {"", "\"0000\"", prefix, "garbage", "\"unterminated", ","};
    for (size_t i = 0; i < sizeof misses / sizeof misses[0]; i++) {
        api_response r;
        serve("app.css", misses[i], &r);
        assert_int_equal(r.status, 200);
        assert_non_null(r.body);
        api_response_free(&r);
    }
}

static void test_unknown_file(void **state)
{
    (void)state;
    api_response r;
    serve("../index.html", NULL, &r);
    assert_int_equal(r.status, 404);
    assert_string_equal(r.content_type, "application/json");
    assert_string_equal(r.body, "{\"detail\":\"Not Found\"}");
    assert_null(header_of(&r, "ETag"));
    api_response_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_files_and_types),
        cmocka_unit_test(test_answer_headers),
        cmocka_unit_test(test_if_none_match),
        cmocka_unit_test(test_unknown_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
