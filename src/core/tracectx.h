/*
 * tracectx — the trace context that rides along every request, task and
 * message: a 16-byte trace id, the 8-byte id of the caller's span and the
 * W3C trace flags. Pure text <-> bytes, no I/O.
 *
 * Two wire forms are read and written:
 *  - W3C `traceparent` ("00-<32 hex>-<16 hex>-<2 hex>"), strictly: lowercase
 *    hex only, all-zero ids rejected, version ff rejected, higher versions
 *    parsed at fixed positions and re-emitted as version 00.
 *  - AWS X-Ray `X-Amzn-Trace-Id` ("Root=1-<8>-<24>;Parent=<16>;Sampled=1"),
 *    leniently: parts split on ';', keys on the first '=', spaces around
 *    keys and values ignored, unknown keys (Lineage, Self, ...) ignored, hex
 *    in either case. Keys are case-sensitive, as the AWS SDKs read them.
 *
 * The two share one id space (tracing.md §7): X-Ray's Root without "1-" and
 * "-" is the W3C trace id, Parent is the span id, Sampled=1 is flag bit 0.
 * New trace ids are made X-Ray style (4 bytes of Unix seconds, 12 random)
 * so that they are valid in both worlds.
 *
 * W3C `tracestate` (a vendor list that rides beside traceparent) is read
 * strictly too, and dropped whole when it breaks a rule; see
 * tracectx_parse_tracestate().
 *
 * Only the flag bits that are defined (0x01 sampled, 0x02 random trace id,
 * W3C Level 2) are kept when parsing and emitted when formatting; other
 * bits must be zero when sending.
 */
#ifndef TASKD_TRACECTX_H
#define TASKD_TRACECTX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TRACECTX_FLAG_SAMPLED 0x01 /* W3C trace-flags bit 0 */
#define TRACECTX_FLAG_RANDOM  0x02 /* W3C Level 2: the trace id's right-most 7 bytes are random */
#define TRACECTX_FLAGS_KNOWN  0x03

#define TRACECTX_TRACEPARENT_LEN    55  /* "00-" 32 "-" 16 "-" 2 */
#define TRACECTX_XRAY_ID_LEN        35  /* "1-" 8 "-" 24 */
#define TRACECTX_XRAY_MAX           75  /* longest tracectx_format_xray text plus NUL */
#define TRACECTX_TRACESTATE_MAX     512 /* longest tracestate kept (W3C: propagate at least 512) */
#define TRACECTX_TRACESTATE_MEMBERS 32  /* most list members a tracestate may have */

typedef struct trace_ctx {
    uint8_t trace_id[16];
    uint8_t span_id[8]; /* the caller's span; all zero for an X-Ray header without Parent */
    uint8_t flags;      /* bit0 sampled, bit1 random trace id */
    /* the W3C tracestate that goes with it, in its normal form, or NULL; borrowed. The parsers
     * leave it NULL: a tracestate is read on its own (tracectx_parse_tracestate()) */
    const char *tracestate;
} trace_ctx;

/*
 * Parse a traceparent header value (surrounding spaces/tabs ignored). False
 * when it must be ignored: bad length or characters, uppercase hex, version
 * ff, all-zero trace or parent id, version 00 with trailing data. *out is
 * written only on success.
 */
bool tracectx_parse_traceparent(const char *header, trace_ctx *out);
/* Format as version 00: 55 characters plus NUL. */
void tracectx_format_traceparent(const trace_ctx *c, char out[56]);
/*
 * Parse an X-Amzn-Trace-Id value (also Lambda's _X_AMZN_TRACE_ID and SQS's
 * AWSTraceHeader). Root is required and must not be all zero; Parent is
 * optional (absent or all zero: span_id zero, a trace origin) but must be 16
 * hex when present; Sampled=1 sets flag bit 0, anything else (0, ?,
 * missing) leaves it clear. *out is written only on success.
 */
bool tracectx_parse_xray(const char *header, trace_ctx *out);
/*
 * Format as "Root=1-...;Parent=...;Sampled=0|1" (Parent left out when the
 * span id is zero) into out. Returns the length written (excluding NUL), or
 * 0 when outlen is too small (TRACECTX_XRAY_MAX always suffices); out is
 * then "" if outlen > 0.
 */
size_t tracectx_format_xray(const trace_ctx *c, char *out, size_t outlen);
/* The X-Ray form of a trace id, "1-xxxxxxxx-yyyyyyyyyyyyyyyyyyyyyyyy": 35 characters plus NUL. */
void tracectx_xray_trace_id(const uint8_t trace_id[16], char out[36]);
/* A new X-Ray-compatible trace id: 4 bytes big-endian unix seconds + 12 random bytes from rnd. */
void tracectx_new_trace_id(uint8_t out[16], uint32_t unix_seconds, const uint8_t rnd[12]);
/* Which header an incoming context came from (TRACECTX_NONE: neither, false as a bool). */
typedef enum trace_source { TRACECTX_NONE, TRACECTX_W3C, TRACECTX_XRAY } trace_source;
/*
 * The context of an incoming request: traceparent wins if valid, else
 * X-Amzn-Trace-Id if valid (either may be NULL). *out is written only when
 * one is taken. A tracestate goes only with TRACECTX_W3C.
 */
trace_source tracectx_from_headers(const char *traceparent, const char *xray, trace_ctx *out);
/*
 * Parse a W3C tracestate given as n header values (several header lines make
 * one list, in order; NULL entries are skipped) into its normal form: the
 * list members joined by ',' with no whitespace, at most
 * TRACECTX_TRACESTATE_MAX characters, in out. Rules (tracing.md §6):
 *  - members are separated by ',' with optional spaces or tabs around it;
 *    empty members are allowed and dropped;
 *  - a member is key=value with nothing around the '=': the key a lowercase
 *    letter or digit, then at most 255 of a-z 0-9 _ - * / @ (which takes the
 *    tenant@system keys too); the value 1 to 256 printable ASCII characters
 *    (0x20-0x7E) but ',' and '=', the last not a space;
 *  - at most TRACECTX_TRACESTATE_MEMBERS members, and no key twice.
 * A list that breaks any rule is dropped whole. One longer than
 * TRACECTX_TRACESTATE_MAX loses whole members: those over 128 characters
 * first, from the right, then others from the right, until it fits.
 * True when out holds at least one member; else false and out is "".
 */
bool tracectx_parse_tracestate(const char *const *values, size_t n,
                               char out[TRACECTX_TRACESTATE_MAX + 1]);

#endif
