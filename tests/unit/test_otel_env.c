/*
 * Unit tests for trace/otel_env: one table of environments and the settings each must give —
 * endpoint resolution (base + "/v1/traces" with exactly one slash, the traces URL as-is with an
 * empty path made "/", signal-specific over generic, bad schemes refused), headers (trimmed,
 * percent-decoded, bad entries skipped with a warning), protocol (grpc and unknown values fall
 * back to http/protobuf with a warning), timeout, compression, OTEL_RESOURCE_ATTRIBUTES
 * (decoded, discarded whole on any error, made UTF-8 as a protobuf string must be),
 * service.name precedence (OTEL_SERVICE_NAME made UTF-8 too), service.version, and
 * OTEL_SDK_DISABLED; then the percent decoder on its own.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/sbuf.h"
#include "trace/otel_env.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_VARS 12

/* One environment and what loading it must produce. Unset expectations mean the defaults. */
typedef struct env_case {
    const char *what;
    const char *env[MAX_VARS]; /* "NAME=value" */
    const char *default_service;
    bool fails;           /* otel_config_load returns false */
    const char *err_has;  /* ... with this in err */
    const char *endpoint; /* NULL: no OTLP endpoint */
    bool json;            /* protocol http/json */
    long timeout_ms;      /* 0: the default */
    bool gzip;            /* compression gzip */
    const char *headers;  /* "k=v;k=v" in order; NULL: none */
    const char *service;  /* NULL: "taskd" */
    const char *version;  /* NULL: none */
    const char *attrs;    /* "k=v;k=v"; NULL: none */
    bool disabled;
    int warnings;            /* how many */
    const char *warning_has; /* substring of the first warning */
} env_case;

static const env_case cases[] = {
    {.what = "nothing set"},
    {.what = "no default service", .default_service = "", .service = "unknown_service"},
    {.what = "empty values count as unset",
     .env = {"OTEL_EXPORTER_OTLP_ENDPOINT=", "OTEL_SERVICE_NAME=", "OTEL_EXPORTER_OTLP_HEADERS=",
             "OTEL_SDK_DISABLED=", "OTEL_EXPORTER_OTLP_PROTOCOL="}},

    /* endpoints */
    {.what = "base endpoint",
     .env = {"OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318"},
     .endpoint = "http://collector:4318/v1/traces"},
    {.what = "base endpoint with a trailing slash",
     .env = {"OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318/"},
     .endpoint = "http://collector:4318/v1/traces"},
    {.what = "base endpoint with two trailing slashes",
     .env = {"OTEL_EXPORTER_OTLP_ENDPOINT=https://collector:4318//"},
     .endpoint = "https://collector:4318/v1/traces"},
    {.what = "base endpoint with a path",
     .env = {"OTEL_EXPORTER_OTLP_ENDPOINT=https://otlp.example.com/prefix/"},
     .endpoint = "https://otlp.example.com/prefix/v1/traces"},
    {.what = "base endpoint with a query",
     .env = {"OTEL_EXPORTER_OTLP_ENDPOINT=http://c:4318/?x=1"},
     .endpoint = "http://c:4318/v1/traces?x=1"},
    {.what = "base endpoint with an empty path and a query",
     .env = {"OTEL_EXPORTER_OTLP_ENDPOINT=http://c:4318?x=1/"},
     .endpoint = "http://c:4318/v1/traces?x=1/"},
    {.what = "base endpoint with a path, a query and a fragment",
     .env = {"OTEL_EXPORTER_OTLP_ENDPOINT=https://c/p//?k=v&w=/#f/"},
     .endpoint = "https://c/p/v1/traces?k=v&w=/#f/"},
    {.what = "base endpoint with a fragment",
     .env = {"OTEL_EXPORTER_OTLP_ENDPOINT=http://c/#f"},
     .endpoint = "http://c/v1/traces#f"},
    {.what = "traces endpoint as-is, winning over the base",
     .env = {"OTEL_EXPORTER_OTLP_ENDPOINT=http://base:4318",
             "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://traces:9999/custom/path"},
     .endpoint = "http://traces:9999/custom/path"},
    {.what = "traces endpoint is not given /v1/traces",
     .env = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://traces:9999/v1/x/"},
     .endpoint = "http://traces:9999/v1/x/"},
    {.what = "traces endpoint with an empty path",
     .env = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://traces:9999"},
     .endpoint = "http://traces:9999/"},
    {.what = "traces endpoint with an empty path and a query",
     .env = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=HTTPS://traces?x=1"},
     .endpoint = "HTTPS://traces/?x=1"},
    {.what = "empty traces endpoint falls back to the base",
     .env = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=", "OTEL_EXPORTER_OTLP_ENDPOINT=http://b"},
     .endpoint = "http://b/v1/traces"},
    {.what = "base endpoint without a scheme",
     .env = {"OTEL_EXPORTER_OTLP_ENDPOINT=localhost:4318"},
     .fails = true,
     .err_has = "OTEL_EXPORTER_OTLP_ENDPOINT"},
    {.what = "traces endpoint with another scheme",
     .env = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=ftp://x/"},
     .fails = true,
     .err_has = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"},

    /* protocol */
    {.what = "http/json", .env = {"OTEL_EXPORTER_OTLP_PROTOCOL=http/json"}, .json = true},
    {.what = "http/protobuf", .env = {"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf"}},
    {.what = "traces protocol wins",
     .env = {"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
             "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=http/json"},
     .json = true},
    {.what = "grpc falls back",
     .env = {"OTEL_EXPORTER_OTLP_PROTOCOL=grpc"},
     .warnings = 1,
     .warning_has = "grpc is not supported"},
    {.what = "grpc for traces falls back even with json generic",
     .env = {"OTEL_EXPORTER_OTLP_PROTOCOL=http/json", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=grpc"},
     .warnings = 1,
     .warning_has = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: grpc"},
    {.what = "unknown protocol",
     .env = {"OTEL_EXPORTER_OTLP_PROTOCOL=HTTP/JSON"},
     .warnings = 1,
     .warning_has = "unknown protocol"},

    /* timeout */
    {.what = "timeout", .env = {"OTEL_EXPORTER_OTLP_TIMEOUT=2500"}, .timeout_ms = 2500},
    {.what = "traces timeout wins",
     .env = {"OTEL_EXPORTER_OTLP_TIMEOUT=2500", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT=750"},
     .timeout_ms = 750},
    {.what = "timeout not a number",
     .env = {"OTEL_EXPORTER_OTLP_TIMEOUT=10s"},
     .warnings = 1,
     .warning_has = "OTEL_EXPORTER_OTLP_TIMEOUT"},
    {.what = "timeout zero", .env = {"OTEL_EXPORTER_OTLP_TIMEOUT=0"}, .warnings = 1},
    {.what = "timeout negative", .env = {"OTEL_EXPORTER_OTLP_TIMEOUT=-5"}, .warnings = 1},
    {.what = "timeout overflowing",
     .env = {"OTEL_EXPORTER_OTLP_TIMEOUT=99999999999999999999999"},
     .warnings = 1},

    /* compression */
    {.what = "gzip", .env = {"OTEL_EXPORTER_OTLP_COMPRESSION=gzip"}, .gzip = true},
    {.what = "traces gzip", .env = {"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION=gzip"}, .gzip = true},
    {.what = "compression none", .env = {"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION=none"}},
    {.what = "traces none wins over generic gzip",
     .env = {"OTEL_EXPORTER_OTLP_COMPRESSION=gzip", "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION=none"}},
    {.what = "traces gzip wins over generic none",
     .env = {"OTEL_EXPORTER_OTLP_COMPRESSION=none", "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION=gzip"},
     .gzip = true},
    {.what = "empty traces compression falls back to the generic one",
     .env = {"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION=", "OTEL_EXPORTER_OTLP_COMPRESSION=gzip"},
     .gzip = true},
    {.what = "unknown compression",
     .env = {"OTEL_EXPORTER_OTLP_COMPRESSION=zstd"},
     .warnings = 1,
     .warning_has = "unknown compression \"zstd\""},
    {.what = "compression is case-sensitive",
     .env = {"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION=GZIP"},
     .warnings = 1,
     .warning_has = "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION"},

    /* headers */
    {.what = "headers trimmed and decoded",
     .env = {"OTEL_EXPORTER_OTLP_HEADERS= api-key = secret , x-b=c%20d%2Ce "},
     .headers = "api-key=secret;x-b=c d,e"},
    {.what = "header value with '='",
     .env = {"OTEL_EXPORTER_OTLP_HEADERS=Authorization=Basic dXNlcjpwYXNz=="},
     .headers = "Authorization=Basic dXNlcjpwYXNz=="},
    {.what = "header with an empty value, trailing comma",
     .env = {"OTEL_EXPORTER_OTLP_HEADERS=a=,b=2,"},
     .headers = "a=;b=2"},
    {.what = "bad header entries are skipped",
     .env = {"OTEL_EXPORTER_OTLP_HEADERS=good=1,bad,=x,z=%zz,ok=2"},
     .headers = "good=1;ok=2",
     .warnings = 3,
     .warning_has = "entry 2"},
    {.what = "header injection is refused",
     .env = {"OTEL_EXPORTER_OTLP_HEADERS=k=v%0D%0AX-Evil: 1,x%0Ay=1,a b=1,c%3Ad=1,k2=%00"},
     .warnings = 5},
    {.what = "a header no HTTP request may carry is skipped",
     .env = {"OTEL_EXPORTER_OTLP_HEADERS=x(y)=1,cl%C3%A9=2,k=a%01b,k2=%7F,tab=a%09b,ok=1"},
     .headers = "tab=a\tb;ok=1",
     .warnings = 4,
     .warning_has = "entry 1 ignored (invalid header name)"},
    {.what = "content-type is the exporter's",
     .env = {"OTEL_EXPORTER_OTLP_HEADERS=content-type=text/plain,x=1"},
     .headers = "x=1",
     .warnings = 1,
     .warning_has = "Content-Type"},
    {.what = "content-encoding is the exporter's",
     .env = {"OTEL_EXPORTER_OTLP_HEADERS=Content-Encoding=gzip,x=1"},
     .headers = "x=1",
     .warnings = 1,
     .warning_has = "Content-Encoding"},
    {.what = "traces headers replace the generic ones",
     .env = {"OTEL_EXPORTER_OTLP_HEADERS=a=1,b=2", "OTEL_EXPORTER_OTLP_TRACES_HEADERS=c=3"},
     .headers = "c=3"},
    {.what = "repeated header keeps the last value",
     .env = {"OTEL_EXPORTER_OTLP_HEADERS=a=1,b=2,a=3"},
     .headers = "a=3;b=2"},

    /* resource attributes and the service */
    {.what = "resource attributes decoded",
     .env = {"OTEL_RESOURCE_ATTRIBUTES=deployment.environment=prod, team = a%2Cb%3Dc "},
     .attrs = "deployment.environment=prod;team=a,b=c"},
    {.what = "resource attributes: bad escape discards all",
     .env = {"OTEL_RESOURCE_ATTRIBUTES=a=1,b=%G1"},
     .warnings = 1,
     .warning_has = "discarded"},
    {.what = "resource attributes: truncated escape discards all",
     .env = {"OTEL_RESOURCE_ATTRIBUTES=a=1,b=x%4"},
     .warnings = 1},
    {.what = "resource attributes: entry without '=' discards all",
     .env = {"OTEL_RESOURCE_ATTRIBUTES=a=1,novalue,service.name=x"},
     .warnings = 1},
    {.what = "resource attributes: empty key discards all",
     .env = {"OTEL_RESOURCE_ATTRIBUTES=a=1,=2"},
     .warnings = 1},
    {.what = "service.name from the resource attributes",
     .env = {"OTEL_RESOURCE_ATTRIBUTES=service.name=from%20attrs,x=1"},
     .service = "from attrs",
     .attrs = "x=1"},
    {.what = "OTEL_SERVICE_NAME wins over service.name",
     .env = {"OTEL_RESOURCE_ATTRIBUTES=x=1,service.name=from-attrs", "OTEL_SERVICE_NAME=from-env"},
     .service = "from-env",
     .attrs = "x=1"},
    {.what = "OTEL_SERVICE_NAME wins over the default",
     .env = {"OTEL_SERVICE_NAME=tasks-api"},
     .service = "tasks-api"},
    {.what = "service.version from the resource attributes",
     .env = {"OTEL_RESOURCE_ATTRIBUTES=service.version=1.2.3"},
     .version = "1.2.3"},
    {.what = "repeated attribute keeps the last value",
     .env = {"OTEL_RESOURCE_ATTRIBUTES=a=1,a=2"},
     .attrs = "a=2"},
    /* A protobuf string must be UTF-8: a byte that starts no UTF-8 character is U+FFFD. */
    {.what = "resource attributes made UTF-8",
     .env = {"OTEL_RESOURCE_ATTRIBUTES=team=%E9quipe,caf%C3%A9=ok,k%FF=%C3,s=%80x%C3%A9"},
     .attrs = "team=\xef\xbf\xbdquipe;caf\xc3\xa9=ok;k\xef\xbf\xbd=\xef\xbf\xbd;"
              "s=\xef\xbf\xbdx\xc3\xa9"},
    {.what = "keys that differ only in bytes that are not UTF-8 are one key",
     .env = {"OTEL_RESOURCE_ATTRIBUTES=a%E9=1,a%E8=2"},
     .attrs = "a\xef\xbf\xbd=2"},
    {.what = "service.name and service.version from the attributes made UTF-8",
     .env = {"OTEL_RESOURCE_ATTRIBUTES=service.name=t%E2%82st,service.version=1.%FF"},
     .service = "t\xef\xbf\xbd\xef\xbf\xbdst",
     .version = "1.\xef\xbf\xbd"},
    {.what = "OTEL_SERVICE_NAME made UTF-8",
     .env = {"OTEL_SERVICE_NAME=caf\xe9-\xc3\xa9"},
     .service = "caf\xef\xbf\xbd-\xc3\xa9"},

    /* disabled */
    {.what = "disabled", .env = {"OTEL_SDK_DISABLED=true"}, .disabled = true},
    {.what = "disabled, any case",
     .env = {"OTEL_SDK_DISABLED=TRUE", "OTEL_EXPORTER_OTLP_ENDPOINT=http://c"},
     .disabled = true,
     .endpoint = "http://c/v1/traces"},
    {.what = "not disabled", .env = {"OTEL_SDK_DISABLED=false"}},
    {.what = "disabled: nonsense is ignored",
     .env = {"OTEL_SDK_DISABLED=yes"},
     .warnings = 1,
     .warning_has = "OTEL_SDK_DISABLED"},
};

/* The getenv callback over a case's "NAME=value" list. */
static const char *table_getenv(const char *name, void *ctx)
{
    const env_case *c = ctx;
    size_t len = strlen(name);
    for (int i = 0; i < MAX_VARS && c->env[i]; i++)
        if (strncmp(c->env[i], name, len) == 0 && c->env[i][len] == '=')
            return c->env[i] + len + 1;
    return NULL;
}

/* "k=v;k=v" of n pairs (a static buffer). */
static const char *flatten(char **keys, char **values, size_t n)
{
    static char buf[1024];
    sbuf b = {0};
    for (size_t i = 0; i < n; i++)
        sbuf_printf(&b, "%s%s=%s", i ? ";" : "", keys[i], values[i]);
    snprintf(buf, sizeof buf, "%s", b.data ? b.data : "");
    sbuf_free(&b);
    return buf;
}

static void check_case(const env_case *c)
{
    otel_config cfg;
    char err[256] = "";
    const char *def =
        c->default_service ? (*c->default_service ? c->default_service : NULL) : "taskd";
    bool ok = otel_config_load(&cfg, table_getenv, (void *)c, def, err, sizeof err);
    print_message("case: %s\n", c->what);
    if (c->fails) {
        assert_false(ok);
        assert_non_null(strstr(err, c->err_has));
        assert_null(cfg.endpoint);
        otel_config_clear(&cfg);
        return;
    }
    assert_true(ok);
    if (c->endpoint)
        assert_string_equal(cfg.endpoint, c->endpoint);
    else
        assert_null(cfg.endpoint);
    assert_int_equal(cfg.protocol, c->json ? OTEL_PROTOCOL_HTTP_JSON : OTEL_PROTOCOL_HTTP_PROTOBUF);
    assert_int_equal(cfg.timeout_ms, c->timeout_ms ? c->timeout_ms : OTEL_DEFAULT_TIMEOUT_MS);
    assert_int_equal(cfg.compression, c->gzip ? OTEL_COMPRESSION_GZIP : OTEL_COMPRESSION_NONE);
    assert_string_equal(flatten(cfg.header_keys, cfg.header_values, cfg.n_headers),
                        c->headers ? c->headers : "");
    assert_string_equal(cfg.service_name, c->service ? c->service : "taskd");
    if (c->version)
        assert_string_equal(cfg.service_version, c->version);
    else
        assert_null(cfg.service_version);
    assert_string_equal(flatten(cfg.attr_keys, cfg.attr_values, cfg.n_attrs),
                        c->attrs ? c->attrs : "");
    assert_int_equal(cfg.disabled, c->disabled);
    for (int i = 0; i < cfg.n_warnings; i++)
        print_message("  warning: %s\n", cfg.warnings[i]);
    assert_int_equal(cfg.n_warnings, c->warnings);
    if (c->warning_has)
        assert_non_null(strstr(cfg.warnings[0], c->warning_has));
    otel_config_clear(&cfg);
    assert_null(cfg.endpoint);
    assert_null(cfg.service_name);
}

static void test_env_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_case(&cases[i]);
}

static void test_warnings_are_capped(void **state)
{
    (void)state;
    static env_case many = {.env = {"OTEL_EXPORTER_OTLP_HEADERS="
                                    "a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q,r,s,t,u,v,w,x,y,z"}};
    otel_config cfg;
    assert_true(otel_config_load(&cfg, table_getenv, &many, "taskd", NULL, 0));
    assert_int_equal(cfg.n_warnings, OTEL_MAX_WARNINGS);
    assert_int_equal(cfg.n_headers, 0);
    otel_config_clear(&cfg);
}

static void test_content_type(void **state)
{
    (void)state;
    assert_string_equal(otel_content_type(OTEL_PROTOCOL_HTTP_JSON), "application/json");
    assert_string_equal(otel_content_type(OTEL_PROTOCOL_HTTP_PROTOBUF), "application/x-protobuf");
}

typedef struct decode_case {
    const char *in;
    const char *out; /* NULL: refused */
} decode_case;

static void test_percent_decode(void **state)
{
    (void)state;
    static const decode_case dc[] = {
        {"", ""},          {"plain", "plain"}, {"%41%42", "AB"},      {"a%2cb", "a,b"},
        {"%3D%3d", "=="},  {"100%25", "100%"}, {"caf%C3%A9", "café"}, {"+", "+"},
        {"%", NULL},       {"%4", NULL},       {"%4g", NULL},         {"%G0", NULL},
        {"ab%00cd", NULL}, {"x%", NULL},
    };
    for (size_t i = 0; i < sizeof dc / sizeof dc[0]; i++) {
        char *got = otel_percent_decode(dc[i].in, strlen(dc[i].in));
        print_message("decode: \"%s\"\n", dc[i].in);
        if (dc[i].out) {
            assert_non_null(got);
            assert_string_equal(got, dc[i].out);
        } else {
            assert_null(got);
        }
        free(got);
    }
    /* Only len bytes are read. */
    char *got = otel_percent_decode("ab%41", 2);
    assert_string_equal(got, "ab");
    free(got);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_env_table),
        cmocka_unit_test(test_warnings_are_capped),
        cmocka_unit_test(test_content_type),
        cmocka_unit_test(test_percent_decode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
