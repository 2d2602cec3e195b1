/*
 * Unit tests for curl_dl: nothing of libcurl is loaded or works until curl_dl_init(); a library
 * that is not there, or is not libcurl, is named in the error; once loaded, a transfer goes
 * through the functions it passes on, each kind of option and of answer.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "support/tmpdir.h"
#include "taskd/curl_dl.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Whether a library whose path holds name is mapped into this process. */
static bool mapped(const char *name)
{
    FILE *f = fopen("/proc/self/maps", "r");
    assert_non_null(f);
    char line[4096];
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, name) != NULL;
    fclose(f);
    return found;
}

static void test_nothing_is_loaded_or_works_before_it(void **state)
{
    (void)state;
    assert_false(mapped("libcurl"));
    assert_null(curl_easy_init());
    assert_null(curl_slist_append(NULL, "Expect:"));
    assert_int_equal(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_FAILED_INIT);
    assert_int_equal(curl_easy_perform(NULL), CURLE_FAILED_INIT);
    assert_string_equal(curl_easy_strerror(CURLE_OK), "libcurl is not loaded");
    curl_slist_free_all(NULL);
    curl_easy_cleanup(NULL);
    curl_global_cleanup();
}

static void test_a_library_not_there_is_named(void **state)
{
    (void)state;
    char err[512];
    assert_false(curl_dl_init_from("libcurl-not-here.so.4", err, sizeof err));
    assert_non_null(strstr(err, "cannot load libcurl-not-here.so.4, which OTLP export"));
    assert_non_null(strstr(err, "libcurl-not-here.so.4: cannot open shared object file"));
    assert_null(curl_easy_init());
}

static void test_a_library_that_is_not_libcurl_is_named(void **state)
{
    (void)state;
    char err[512];
    assert_false(curl_dl_init_from("libm.so.6", err, sizeof err));
    assert_string_equal(err, "libm.so.6, which OTLP export needs, has no curl_global_init");
    assert_null(curl_easy_init());
}

static size_t keep(char *data, size_t size, size_t nmemb, void *arg)
{
    strncat(arg, data, size * nmemb);
    return size * nmemb;
}

/* GET url from byte from on: the body into body, its size into *got; the code. */
static CURLcode get(const char *url, curl_off_t from, char *body, curl_off_t *got)
{
    CURL *c = curl_easy_init();
    assert_non_null(c);
    char why[CURL_ERROR_SIZE] = "";
    body[0] = '\0';
    assert_int_equal(curl_easy_setopt(c, CURLOPT_URL, url), CURLE_OK);            /* a pointer */
    assert_int_equal(curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L), CURLE_OK);        /* a long */
    assert_int_equal(curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, keep), CURLE_OK); /* a function */
    assert_int_equal(curl_easy_setopt(c, CURLOPT_WRITEDATA, body), CURLE_OK);
    assert_int_equal(curl_easy_setopt(c, CURLOPT_ERRORBUFFER, why), CURLE_OK);
    assert_int_equal(curl_easy_setopt(c, CURLOPT_RESUME_FROM_LARGE, from), CURLE_OK); /* off_t */
    CURLcode rc = curl_easy_perform(c);
    assert_int_equal(curl_easy_getinfo(c, CURLINFO_SIZE_DOWNLOAD_T, got), CURLE_OK);
    curl_easy_cleanup(c);
    return rc;
}

static void test_a_transfer_goes_through_it(void **state)
{
    (void)state;
    char err[512] = "";
    assert_true(curl_dl_init(err, sizeof err));
    assert_string_equal(err, "");
    assert_true(mapped("libcurl"));
    assert_true(curl_dl_init(err, sizeof err)); /* once is enough; again is nothing */

    char dir[256], path[300];
    assert_true(test_tmpdir_make(dir, sizeof dir, "test_curl_dl"));
    snprintf(path, sizeof path, "%s/body", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_true(fputs("twelve bytes", f) >= 0);
    assert_int_equal(fclose(f), 0);
    char url[320], body[64];
    snprintf(url, sizeof url, "file://%s", path);
    curl_off_t got = -1;
    assert_int_equal(get(url, 0, body, &got), CURLE_OK);
    assert_string_equal(body, "twelve bytes");
    assert_int_equal(got, 12);
    assert_int_equal(get(url, 7, body, &got), CURLE_OK);
    assert_string_equal(body, "bytes");
    assert_int_equal(got, 5);
    assert_int_equal(test_tmpdir_remove(dir), 0);

    struct curl_slist *h = curl_slist_append(NULL, "Expect:");
    assert_non_null(h);
    assert_string_equal(h->data, "Expect:");
    curl_slist_free_all(h);
    assert_string_equal(curl_easy_strerror(CURLE_COULDNT_CONNECT), "Couldn't connect to server");

    /* undone: nothing works until it is made ready again, which then initialises it again */
    curl_global_cleanup();
    assert_null(curl_easy_init());
    assert_string_equal(curl_easy_strerror(CURLE_OK), "libcurl is not loaded");
    assert_true(curl_dl_init(err, sizeof err));
    CURL *again = curl_easy_init();
    assert_non_null(again);
    curl_easy_cleanup(again);
    curl_global_cleanup();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        /* in this order: the first three before libcurl is loaded */
        cmocka_unit_test(test_nothing_is_loaded_or_works_before_it),
        cmocka_unit_test(test_a_library_not_there_is_named),
        cmocka_unit_test(test_a_library_that_is_not_libcurl_is_named),
        cmocka_unit_test(test_a_transfer_goes_through_it),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
