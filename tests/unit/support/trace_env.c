/*
 * The tracer's variables of trace_env.h: those tracer_new() reads, through
 * trace/otel_env.c and for the X-Ray daemon. One it starts to read belongs
 * here too.
 */
#include "support/trace_env.h"

#include <stdlib.h>

static const char *const TRACE_ENV_VARS[] = {
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
    "OTEL_EXPORTER_OTLP_COMPRESSION",
    "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_SDK_DISABLED",
    "AWS_XRAY_DAEMON_ADDRESS",
};

void test_trace_env_clear(void)
{
    for (size_t i = 0; i < sizeof TRACE_ENV_VARS / sizeof TRACE_ENV_VARS[0]; i++)
        unsetenv(TRACE_ENV_VARS[i]);
}
