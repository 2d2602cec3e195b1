/*
 * export_xray — the X-Ray exporter: each span as one segment document
 * (trace/xray.h) in one UDP datagram to the X-Ray daemon.
 *
 * The daemon's address (AWS_XRAY_DAEMON_ADDRESS, trace/xray.h for its forms)
 * is resolved once, at start; the socket is non-blocking, so a batch never
 * waits and the exporter needs no hurry hook. A span whose document cannot
 * be encoded, or whose datagram does not go out whole, is marked failed and
 * warned about (rate-limited, with the daemon's host:port). Inside a Lambda
 * function (XRAY_SUBSEGMENTS) parented spans are sent as subsegments only.
 */
#ifndef TASKD_EXPORT_XRAY_H
#define TASKD_EXPORT_XRAY_H

#include "trace/exporter.h"
#include "trace/xray.h"

#include <stdbool.h>
#include <stddef.h>

/*
 * Open the exporter for the daemon at address (AWS_XRAY_DAEMON_ADDRESS's value) into *out.
 * service_name names segments and is borrowed: it must outlive the exporter. True with *out
 * NULL when X-Ray export is off because the address does not resolve or no socket can be had
 * (logged as a warning); false with a reason in err when the address is malformed or out of
 * memory.
 */
bool export_xray_new(exporter **out, const char *address, const char *service_name, xray_mode mode,
                     char *err, size_t errlen);

#endif
