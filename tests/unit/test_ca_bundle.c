/*
 * Unit tests for ca_bundle: SSL_CERT_FILE wins; else a bundle that exists.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "util/ca_bundle.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void test_env_wins(void **state)
{
    (void)state;
    setenv("SSL_CERT_FILE", "/somewhere/else.pem", 1);
    assert_string_equal(ca_bundle_path(), "/somewhere/else.pem");
    setenv("SSL_CERT_FILE", "", 1); /* empty: as if unset */
    const char *p = ca_bundle_path();
    assert_true(p == NULL || strcmp(p, "") != 0);
    unsetenv("SSL_CERT_FILE");
}

static void test_found_bundle_exists(void **state)
{
    (void)state;
    unsetenv("SSL_CERT_FILE");
    const char *p = ca_bundle_path();
    if (p) /* a machine without any known bundle answers NULL: libcurl's default */
        assert_int_equal(access(p, R_OK), 0);
    else
        assert_int_not_equal(access("/etc/ssl/certs/ca-certificates.crt", R_OK), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_env_wins),
        cmocka_unit_test(test_found_bundle_exists),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
