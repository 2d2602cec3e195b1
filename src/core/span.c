/*
 * span — the span model's small helpers; see span.h.
 */
#include "span.h"

#include "sbuf.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool span_has_parent(const span *s)
{
    static const uint8_t zero[8] = {0};
    return memcmp(s->parent_id, zero, 8) != 0;
}

static span_attr *new_attr(span *s, const char *key, span_attr_type type)
{
    if (s->n_attrs >= SPAN_MAX_ATTRS) {
        if (s->dropped_attrs < UINT32_MAX)
            s->dropped_attrs++;
        return NULL;
    }
    span_attr *a = &s->attrs[s->n_attrs++];
    size_t n = strnlen(key, SPAN_KEY_MAX); /* cut to fit, as snprintf would; no format to parse */
    memcpy(a->key, key, n);
    a->key[n] = '\0';
    a->type = type;
    a->borrowed = false;
    return a;
}

void span_set_str(span *s, const char *key, const char *value)
{
    char *copy = utf8_dup(value ? value : "");
    span_attr *a = copy ? new_attr(s, key, SPAN_ATTR_STRING) : NULL;
    if (!a) {
        free(copy);
        return;
    }
    a->v.s = copy;
}

void span_set_static(span *s, const char *key, const char *value)
{
    span_attr *a = new_attr(s, key, SPAN_ATTR_STRING);
    if (a) {
        a->v.s = (char *)(value ? value : "");
        a->borrowed = true;
    }
}

void span_set_int(span *s, const char *key, int64_t value)
{
    span_attr *a = new_attr(s, key, SPAN_ATTR_INT);
    if (a)
        a->v.i = value;
}

void span_set_double(span *s, const char *key, double value)
{
    span_attr *a = new_attr(s, key, SPAN_ATTR_DOUBLE);
    if (a)
        a->v.d = value;
}

void span_set_bool(span *s, const char *key, bool value)
{
    span_attr *a = new_attr(s, key, SPAN_ATTR_BOOL);
    if (a)
        a->v.b = value;
}

void span_add_link(span *s, const uint8_t trace_id[16], const uint8_t span_id[8])
{
    if (s->n_links >= SPAN_MAX_LINKS) {
        if (s->dropped_links < UINT32_MAX)
            s->dropped_links++;
        return;
    }
    memcpy(s->links[s->n_links].trace_id, trace_id, 16);
    memcpy(s->links[s->n_links].span_id, span_id, 8);
    s->n_links++;
}

void span_drop_links(span *s, size_t n)
{
    s->dropped_links =
        n < UINT32_MAX - s->dropped_links ? s->dropped_links + (uint32_t)n : UINT32_MAX;
}

void span_set_error(span *s, const char *message)
{
    free(s->status_msg);
    s->status = SPAN_STATUS_ERROR;
    s->status_msg = message ? utf8_dup(message) : NULL;
}

/* The fields before the arrays, and the arrays' used entries. */
static void copy_used(span *dst, const span *src)
{
    memcpy(dst, src, offsetof(span, attrs));
    memcpy(dst->attrs, src->attrs, (size_t)src->n_attrs * sizeof src->attrs[0]);
    memcpy(dst->links, src->links, (size_t)src->n_links * sizeof src->links[0]);
}

void span_reset(span *s)
{
    memset(s, 0, offsetof(span, attrs));
}

void span_move(span *dst, span *src)
{
    copy_used(dst, src);
    span_reset(src);
}

bool span_copy(span *dst, const span *src)
{
    copy_used(dst, src);
    bool ok = true;
    if (src->status_msg && !(dst->status_msg = strdup(src->status_msg)))
        ok = false;
    if (src->trace_state && !(dst->trace_state = strdup(src->trace_state)))
        ok = false;
    for (int i = 0; i < src->n_attrs; i++) {
        if (src->attrs[i].type != SPAN_ATTR_STRING || src->attrs[i].borrowed)
            continue;
        if (!(dst->attrs[i].v.s = strdup(src->attrs[i].v.s))) {
            for (int j = i + 1; j < src->n_attrs; j++)
                if (dst->attrs[j].type == SPAN_ATTR_STRING && !dst->attrs[j].borrowed)
                    dst->attrs[j].v.s = NULL;
            ok = false;
            break;
        }
    }
    if (!ok)
        span_clear(dst);
    return ok;
}

void span_clear(span *s)
{
    free(s->status_msg);
    free(s->trace_state);
    for (int i = 0; i < s->n_attrs; i++)
        if (s->attrs[i].type == SPAN_ATTR_STRING && !s->attrs[i].borrowed)
            free(s->attrs[i].v.s);
    span_reset(s);
}

void span_hex(const uint8_t *bytes, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[bytes[i] >> 4];
        out[2 * i + 1] = hex[bytes[i] & 15];
    }
    out[2 * n] = '\0';
}
