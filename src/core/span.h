/*
 * span — one unit of traced work, in OpenTelemetry's model: ids, name,
 * kind, times, attributes, links, status. Encoders (OTLP JSON / protobuf,
 * X-Ray segment documents) and the exporter all read this one struct.
 *
 * A span owns its strings (status message, tracestate, string attribute values), each
 * valid UTF-8 as OTLP's protobuf demands (a byte that starts no UTF-8
 * character is copied in as U+FFFD); span_clear() frees them. Sizes are bounded so a span is one
 * allocation that can be copied into a ring buffer.
 */
#ifndef TASKD_SPAN_H
#define TASKD_SPAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SPAN_MAX_ATTRS 16
#define SPAN_MAX_LINKS 8
#define SPAN_NAME_MAX  95
#define SPAN_KEY_MAX   47

typedef enum span_kind {
    SPAN_KIND_INTERNAL = 1,
    SPAN_KIND_SERVER = 2,
    SPAN_KIND_CLIENT = 3,
    SPAN_KIND_PRODUCER = 4,
    SPAN_KIND_CONSUMER = 5,
} span_kind;

typedef enum span_status {
    SPAN_STATUS_UNSET = 0,
    SPAN_STATUS_OK = 1,
    SPAN_STATUS_ERROR = 2,
} span_status;

typedef enum span_attr_type {
    SPAN_ATTR_STRING,
    SPAN_ATTR_INT,
    SPAN_ATTR_DOUBLE,
    SPAN_ATTR_BOOL
} span_attr_type;

typedef struct span_attr {
    char key[SPAN_KEY_MAX + 1];
    span_attr_type type;
    union {
        char *s; /* owned, unless borrowed */
        int64_t i;
        double d;
        bool b;
    } v;
    bool borrowed; /* v.s is a string that outlives every copy of the span (not freed) */
} span_attr;

typedef struct span_link {
    uint8_t trace_id[16];
    uint8_t span_id[8];
} span_link;

typedef struct span {
    uint8_t trace_id[16];
    uint8_t span_id[8];
    uint8_t parent_id[8]; /* all zero for a root span */
    uint8_t flags;        /* W3C trace flags: bit 0 sampled */
    char name[SPAN_NAME_MAX + 1];
    span_kind kind;
    int64_t start_ns, end_ns; /* Unix nanoseconds */
    span_status status;
    char *status_msg;  /* owned; the error text when status is ERROR */
    char *trace_state; /* owned; the trace's W3C tracestate (OTLP traceState), or NULL */
    char task_id[37];  /* the task this span belongs to, "" if none (for the local view) */
    int n_attrs;
    int n_links;
    /* attributes and links set past SPAN_MAX_ATTRS and SPAN_MAX_LINKS, not kept (OTLP's
     * dropped_attributes_count and dropped_links_count) */
    uint32_t dropped_attrs, dropped_links;
    /* The arrays come last: only their first n_attrs and n_links entries mean anything, and
     * only those are copied, moved and emptied (a span is 1.5 KiB, a typical one's used part a
     * third of that). */
    span_attr attrs[SPAN_MAX_ATTRS];
    span_link links[SPAN_MAX_LINKS];
} span;

/* True when the span has a parent. */
bool span_has_parent(const span *s);
/* Add attributes (past SPAN_MAX_ATTRS only counted in dropped_attrs; string values are
 * copied). */
void span_set_str(span *s, const char *key, const char *value);
/* A string attribute whose value lives as long as the program's configuration
 * (literals, configured names): not copied, not freed. */
void span_set_static(span *s, const char *key, const char *value);
void span_set_int(span *s, const char *key, int64_t value);
void span_set_double(span *s, const char *key, double value);
void span_set_bool(span *s, const char *key, bool value);
/* Add a link (past SPAN_MAX_LINKS only counted in dropped_links). SPAN_MAX_LINKS is a span's
 * own bound, not OpenTelemetry's default of 128: every span holds its links inline, a task's
 * delivery makes five, and only a batch's receive span links (to the other messages'
 * producers); the count tells a reader how many more there were. */
void span_add_link(span *s, const uint8_t trace_id[16], const uint8_t span_id[8]);
/* Count n links more as dropped, as span_add_link() counts each past SPAN_MAX_LINKS. */
void span_drop_links(span *s, size_t n);
/* Mark the span failed with a message (copied). */
void span_set_error(span *s, const char *message);
/* A deep copy of src into dst; false when out of memory (dst then cleared). */
bool span_copy(span *dst, const span *src);
/* Move src's contents into dst, whose own strings are not freed (an empty or moved-from span),
 * and leave src empty. */
void span_move(span *dst, span *src);
/* Empty a span without freeing anything: what a span whose strings went elsewhere needs. A
 * span zeroed whole is empty too. */
void span_reset(span *s);
/* Free the owned strings and empty the span. */
void span_clear(span *s);
/* Lower-case hex of n bytes into out (2n + 1 bytes). */
void span_hex(const uint8_t *bytes, size_t n, char *out);

#endif
