/*
 * span_log — a byte ring of packed spans; see span_log.h.
 *
 * A record is a fixed head, then the task id, the name, the status message, the attributes
 * (key length, type, value — a string as its length and bytes — then the key) and the links,
 * its size rounded up to 8 bytes. Records never wrap: one that does not fit before the end of
 * the buffer starts again at 0, and the records from the oldest up to that point are then
 * [head, end), the newer ones [0, tail).
 */
#include "span_log.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NO_MESSAGE UINT32_MAX /* status_msg NULL */

typedef struct rec_head {
    uint32_t size; /* the whole record, a multiple of 8 */
    uint32_t msg_len;
    uint16_t name_len;
    uint8_t task_len, flags, kind, status, n_attrs, n_links;
    uint32_t dropped_attrs, dropped_links;
    int64_t start_ns, end_ns;
    uint8_t trace_id[16], span_id[8], parent_id[8];
} rec_head;

struct span_log {
    unsigned char *buf;
    size_t cap;        /* bytes */
    size_t head, tail; /* the oldest record; where the next one goes */
    size_t end;        /* wrapped: the end of the records from head on */
    bool wrapped;
    size_t count, max_count;
};

span_log *span_log_new(size_t max_spans, size_t bytes)
{
    span_log *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    /* not zeroed: pages the log never reaches are never touched */
    if (!(l->buf = malloc(bytes))) {
        free(l);
        return NULL;
    }
    l->cap = bytes;
    l->max_count = max_spans;
    return l;
}

void span_log_free(span_log *l)
{
    if (l) {
        free(l->buf);
        free(l);
    }
}

size_t span_log_count(const span_log *l)
{
    return l ? l->count : 0;
}

/* ---- packing ---------------------------------------------------------------------------- */

static size_t str_len(const char *s)
{
    return s ? strlen(s) : 0;
}

static size_t record_size(const span *s)
{
    size_t n = sizeof(rec_head) + strnlen(s->task_id, sizeof s->task_id - 1) +
               strnlen(s->name, sizeof s->name - 1) + str_len(s->status_msg);
    for (int i = 0; i < s->n_attrs; i++) {
        const span_attr *a = &s->attrs[i];
        n += 2 + strnlen(a->key, sizeof a->key - 1);
        if (a->type == SPAN_ATTR_STRING)
            n += sizeof(uint32_t) + str_len(a->v.s);
        else
            n += a->type == SPAN_ATTR_BOOL ? 1 : 8;
    }
    n += (size_t)s->n_links * sizeof(span_link);
    return (n + 7) & ~(size_t)7;
}

static unsigned char *put(unsigned char *p, const void *src, size_t n)
{
    if (n)
        memcpy(p, src, n);
    return p + n;
}

static void pack(unsigned char *p, const span *s, size_t size)
{
    rec_head h;
    memset(&h, 0, sizeof h); /* the padding too: the record is copied out whole */
    size_t task_len = strnlen(s->task_id, sizeof s->task_id - 1);
    size_t name_len = strnlen(s->name, sizeof s->name - 1);
    h.size = (uint32_t)size;
    h.msg_len = s->status_msg ? (uint32_t)strlen(s->status_msg) : NO_MESSAGE;
    h.name_len = (uint16_t)name_len;
    h.task_len = (uint8_t)task_len;
    h.flags = s->flags;
    h.kind = (uint8_t)s->kind;
    h.status = (uint8_t)s->status;
    h.n_attrs = (uint8_t)s->n_attrs;
    h.n_links = (uint8_t)s->n_links;
    h.dropped_attrs = s->dropped_attrs;
    h.dropped_links = s->dropped_links;
    h.start_ns = s->start_ns;
    h.end_ns = s->end_ns;
    memcpy(h.trace_id, s->trace_id, 16);
    memcpy(h.span_id, s->span_id, 8);
    memcpy(h.parent_id, s->parent_id, 8);
    p = put(p, &h, sizeof h);
    p = put(p, s->task_id, task_len);
    p = put(p, s->name, name_len);
    p = put(p, s->status_msg, str_len(s->status_msg));
    for (int i = 0; i < s->n_attrs; i++) {
        const span_attr *a = &s->attrs[i];
        uint8_t key_len = (uint8_t)strnlen(a->key, sizeof a->key - 1);
        uint8_t type = (uint8_t)a->type;
        p = put(p, &key_len, 1);
        p = put(p, &type, 1);
        if (a->type == SPAN_ATTR_STRING) {
            uint32_t n = (uint32_t)str_len(a->v.s);
            p = put(p, &n, sizeof n);
            p = put(p, a->v.s, n);
        } else if (a->type == SPAN_ATTR_BOOL) {
            uint8_t b = a->v.b;
            p = put(p, &b, 1);
        } else {
            p = put(p, &a->v, 8); /* int64_t or double */
        }
        p = put(p, a->key, key_len);
    }
    put(p, s->links, (size_t)s->n_links * sizeof(span_link));
}

static const unsigned char *take(const unsigned char *p, void *dst, size_t n)
{
    if (n)
        memcpy(dst, p, n);
    return p + n;
}

/* A string of n bytes at p, in a fresh allocation; NULL when out of memory. */
static char *take_str(const unsigned char **p, size_t n)
{
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, *p, n);
        s[n] = '\0';
    }
    *p += n;
    return s;
}

/* Unpack a record into s (which owns its strings then); false when out of memory (s cleared). */
static bool unpack(const unsigned char *p, span *s)
{
    rec_head h;
    p = take(p, &h, sizeof h);
    memset(s, 0, offsetof(span, attrs));
    memcpy(s->trace_id, h.trace_id, 16);
    memcpy(s->span_id, h.span_id, 8);
    memcpy(s->parent_id, h.parent_id, 8);
    s->flags = h.flags;
    s->kind = (span_kind)h.kind;
    s->status = (span_status)h.status;
    s->start_ns = h.start_ns;
    s->end_ns = h.end_ns;
    p = take(p, s->task_id, h.task_len);
    p = take(p, s->name, h.name_len);
    bool ok = true;
    if (h.msg_len != NO_MESSAGE)
        ok = (s->status_msg = take_str(&p, h.msg_len)) != NULL;
    for (int i = 0; i < h.n_attrs; i++) {
        span_attr *a = &s->attrs[s->n_attrs++];
        uint8_t key_len, type;
        p = take(p, &key_len, 1);
        p = take(p, &type, 1);
        a->type = (span_attr_type)type;
        a->borrowed = false;
        if (a->type == SPAN_ATTR_STRING) {
            uint32_t n;
            p = take(p, &n, sizeof n);
            if (!(a->v.s = take_str(&p, n)))
                ok = false;
        } else if (a->type == SPAN_ATTR_BOOL) {
            uint8_t b;
            p = take(p, &b, 1);
            a->v.b = b;
        } else {
            p = take(p, &a->v, 8);
        }
        p = take(p, a->key, key_len);
        a->key[key_len] = '\0';
    }
    s->n_links = h.n_links;
    s->dropped_attrs = h.dropped_attrs;
    s->dropped_links = h.dropped_links;
    take(p, s->links, (size_t)h.n_links * sizeof(span_link));
    if (!ok)
        span_clear(s);
    return ok;
}

/* ---- the ring --------------------------------------------------------------------------- */

static size_t size_at(const span_log *l, size_t off)
{
    uint32_t size;
    memcpy(&size, l->buf + off, sizeof size);
    return size;
}

static void drop_oldest(span_log *l)
{
    l->head += size_at(l, l->head);
    if (--l->count == 0) {
        l->head = l->tail = 0;
        l->wrapped = false;
    } else if (l->wrapped && l->head == l->end) {
        l->head = 0;
        l->wrapped = false;
    }
}

/* Make room for n bytes at tail (n at most cap), dropping the oldest records. */
static void make_room(span_log *l, size_t n)
{
    for (;;) {
        if (!l->wrapped) {
            if (l->cap - l->tail >= n)
                return;
            if (l->head >= n) { /* start again at 0, before the oldest */
                l->end = l->tail;
                l->tail = 0;
                l->wrapped = true;
                return;
            }
        } else if (l->head - l->tail >= n) {
            return;
        }
        drop_oldest(l); /* with none left, head and tail are 0 and n fits */
    }
}

bool span_log_put(span_log *l, const span *s)
{
    size_t n = record_size(s);
    if (n > l->cap / 4 || l->max_count == 0)
        return false;
    while (l->count >= l->max_count)
        drop_oldest(l);
    make_room(l, n);
    pack(l->buf + l->tail, s, n);
    l->tail += n;
    l->count++;
    return true;
}

/* The offset of the record after the one at off, the wrap followed; past the newest it means
 * nothing, so a walk counts its records. */
static size_t next_record(const span_log *l, size_t off)
{
    off += size_at(l, off);
    return l->wrapped && off == l->end ? 0 : off;
}

static bool of_task(const span_log *l, size_t off, const char *task_id, size_t task_len)
{
    rec_head h;
    memcpy(&h, l->buf + off, sizeof h);
    return h.task_len == task_len && memcmp(l->buf + off + sizeof h, task_id, task_len) == 0;
}

size_t span_log_task(const span_log *l, const char *task_id, span **out)
{
    *out = NULL;
    size_t task_len = task_id ? strlen(task_id) : 0;
    if (!l || task_len == 0)
        return 0;
    size_t found = 0, off = l->head;
    for (size_t i = 0; i < l->count; i++, off = next_record(l, off))
        found += of_task(l, off, task_id, task_len);
    if (!found)
        return 0;
    span *arr = malloc(found * sizeof *arr);
    if (!arr) {
        errno = ENOMEM;
        return 0;
    }
    size_t n = 0;
    off = l->head;
    for (size_t i = 0; i < l->count && n < found; i++, off = next_record(l, off)) {
        if (of_task(l, off, task_id, task_len) && !unpack(l->buf + off, &arr[n++])) {
            while (n)
                span_clear(&arr[--n]);
            free(arr);
            errno = ENOMEM;
            return 0;
        }
    }
    *out = arr;
    return n;
}
