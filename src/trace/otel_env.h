/*
 * otel_env — the OpenTelemetry exporter settings read from the environment,
 * as one pure function over a getenv-like callback (so tests pass a table
 * instead of touching the process environment).
 *
 * Rules (OTel "SDK environment variables" and "OTLP exporter" specs):
 * - An empty variable counts as unset.
 * - OTEL_SDK_DISABLED: "true" (any case) disables every exporter; "false" or unset leaves
 *   them on; anything else is warned about and ignored.
 * - Endpoint: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is the URL as-is (only an empty path becomes
 *   "/"); otherwise OTEL_EXPORTER_OTLP_ENDPOINT is a base URL to whose path "/v1/traces" is
 *   appended with exactly one slash between (a query or fragment stays after it:
 *   http://c:4318/?x=1 gives http://c:4318/v1/traces?x=1). Neither set: no OTLP export. A URL that
 * is not http:// or https:// is an error.
 * - Signal-specific variables (…_TRACES_HEADERS/_PROTOCOL/_TIMEOUT/_COMPRESSION) replace the
 *   generic ones wholesale; they are not merged.
 * - Headers: "k=v,k=v"; key and value are whitespace-trimmed and percent-decoded. A bad entry
 *   (no '=', empty key, bad escape or an escaped NUL, a name that is not an HTTP token (RFC 9110:
 *   letters, digits and !#$%&'*+-.^_`|~), a control character but a tab in the value,
 *   Content-Type or Content-Encoding, which the exporter owns) is skipped with a warning; the
 *   rest are kept.
 * - Protocol: "http/protobuf" (default) or "http/json"; "grpc" or anything else is warned
 *   about and http/protobuf is used.
 * - Timeout: milliseconds, 1 .. 86400000 (default 10000); anything else is warned about.
 * - Compression: OTEL_EXPORTER_OTLP_TRACES_COMPRESSION, else OTEL_EXPORTER_OTLP_COMPRESSION:
 *   "gzip" (bodies gzip-compressed, sent with Content-Encoding: gzip) or "none" (default);
 *   anything else is warned about and bodies go uncompressed.
 * - OTEL_RESOURCE_ATTRIBUTES: "k=v,k=v", trimmed and percent-decoded; on any error the whole
 *   variable is discarded with a warning. A repeated key keeps its last value. A decoded key or
 *   value that is not UTF-8 (team=%E9quipe) has each byte that starts no UTF-8 character made
 *   U+FFFD, as span strings are: a protobuf string must be UTF-8, and a collector refuses the
 *   whole request for one that is not.
 * - service.name: OTEL_SERVICE_NAME (made UTF-8 the same way), else service.name from
 *   OTEL_RESOURCE_ATTRIBUTES, else the caller's default. service.version from
 *   OTEL_RESOURCE_ATTRIBUTES beats the caller's version. Both are taken out of the attribute
 *   list (the encoders write them from their own fields).
 *
 * Warnings are collected in the result, not logged, so the function stays pure; the tracer
 * logs them.
 */
#ifndef TASKD_OTEL_ENV_H
#define TASKD_OTEL_ENV_H

#include <stdbool.h>
#include <stddef.h>

/* Like getenv(3): the value of name, or NULL when unset. ctx is passed through. */
typedef const char *(*otel_getenv_fn)(const char *name, void *ctx);

typedef enum otel_compression {
    OTEL_COMPRESSION_NONE = 0,
    OTEL_COMPRESSION_GZIP = 1,
} otel_compression;

typedef enum otel_protocol {
    OTEL_PROTOCOL_HTTP_PROTOBUF = 0,
    OTEL_PROTOCOL_HTTP_JSON = 1,
} otel_protocol;

#define OTEL_DEFAULT_TIMEOUT_MS 10000L
#define OTEL_MAX_WARNINGS       16
#define OTEL_WARNING_MAX        200

typedef struct otel_config {
    bool disabled;                /* OTEL_SDK_DISABLED=true: export nothing */
    char *endpoint;               /* the traces URL; NULL when OTLP export is not configured */
    otel_protocol protocol;       /* body encoding */
    long timeout_ms;              /* per-export timeout */
    otel_compression compression; /* request body compression */
    size_t n_headers;             /* extra request headers, decoded */
    char **header_keys;
    char **header_values;
    char *service_name;    /* resolved service.name (never NULL after a successful load) */
    char *service_version; /* service.version from the resource attributes, or NULL */
    size_t n_attrs;        /* other resource attributes, decoded, in first-seen order */
    char **attr_keys;
    char **attr_values;
    int n_warnings; /* problems that did not stop the load (capped at OTEL_MAX_WARNINGS) */
    char warnings[OTEL_MAX_WARNINGS][OTEL_WARNING_MAX];
} otel_config;

/*
 * Fill c from the variables get returns; default_service is service.name when nothing else
 * names it (NULL: "unknown_service"). False with a reason in err on an invalid endpoint URL or
 * out of memory (c is then cleared). Free with otel_config_clear either way.
 */
bool otel_config_load(otel_config *c, otel_getenv_fn get, void *ctx, const char *default_service,
                      char *err, size_t errlen);
/* Free what c owns and zero it. */
void otel_config_clear(otel_config *c);
/* The MIME type of the protocol's request bodies. */
const char *otel_content_type(otel_protocol p);
/*
 * Percent-decode len bytes of s into a new NUL-terminated string; NULL on a malformed escape
 * ('%' not followed by two hex digits), a decoded NUL byte, or out of memory.
 */
char *otel_percent_decode(const char *s, size_t len);

#endif
