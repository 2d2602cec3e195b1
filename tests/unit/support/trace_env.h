/*
 * trace_env — the environment variables taskd's tracer reads (the OTEL_*
 * exporter, resource and SDK settings, and AWS_XRAY_DAEMON_ADDRESS), listed
 * once, for the tests that make a tracer and must not have it configured by
 * whatever environment they were started in.
 */
#ifndef TASKD_TEST_TRACE_ENV_H
#define TASKD_TEST_TRACE_ENV_H

/* Unset every one of them, so a tracer made next exports nothing and names the service it is
 * given. */
void test_trace_env_clear(void);

#endif
