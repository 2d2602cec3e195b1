/*
 * export_xray — the X-Ray exporter: each span as one segment document
 * (trace/xray.h) in one UDP datagram to the X-Ray daemon.
 *
 * The daemon's address (AWS_XRAY_DAEMON_ADDRESS, trace/xray.h for its forms)
 * is resolved once, to a name's first IPv4 address when it has one (the
 * daemon listens on IPv4, and the X-Ray SDKs send over it), by a lookup begun
 * at start on a thread of its own, which the start does not wait for (a
 * numeric address, Lambda's, is taken as it is, at start); a name
 * that does not resolve then is looked up again, at the first export (unless
 * it waited for the lookup at start to fail) and then at most every 5 s, until
 * it does, while hurried too. The export
 * waits for a lookup under way, spans queueing meanwhile, but a flush or the
 * stop (hurry) waits no longer than its deadline: the lookup then goes on
 * alone, and the next export takes its answer. The socket
 * is non-blocking, so a batch never waits on the daemon. A span whose
 * document cannot be encoded, whose datagram does not go out whole, or that
 * comes while the name has not resolved, is marked failed and warned about
 * (rate-limited, with the daemon's host:port). Inside a Lambda function
 * (XRAY_SUBSEGMENTS) parented spans are sent as subsegments only.
 */
#ifndef TASKD_EXPORT_XRAY_H
#define TASKD_EXPORT_XRAY_H

#include "trace/exporter.h"
#include "trace/xray.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Open the exporter for the daemon at address (AWS_XRAY_DAEMON_ADDRESS's value) into *out.
 * service_name names segments and is borrowed: it must outlive the exporter. clock_ns is the
 * monotonic clock (ns) the wait between lookups of a name is counted on (NULL: clock_mono_ns).
 * The address is looked up on a thread of its own (above), and one that does not resolve, or
 * whose lookup cannot be started, is warned about and looked up again. True with the exporter in
 * *out; false with a reason in err when the address is malformed or out of memory.
 */
bool export_xray_new(exporter **out, const char *address, const char *service_name, xray_mode mode,
                     int64_t (*clock_ns)(void), char *err, size_t errlen);

#endif
