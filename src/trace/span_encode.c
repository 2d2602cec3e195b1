/*
 * span_encode — what the span encoders share; see span_encode.h.
 *
 * A finite double is written by sbuf_double (as Python's repr() writes it,
 * the same rule json_util's reals follow); only the strings for NaN and the
 * infinities are this module's own.
 */
#include "span_encode.h"

#include <math.h>
#include <string.h>

int span_encode_attr_count(const span *s)
{
    return s->n_attrs < SPAN_MAX_ATTRS ? s->n_attrs : SPAN_MAX_ATTRS;
}

bool span_encode_attr_shadowed(const span *s, int i)
{
    int n = span_encode_attr_count(s);
    for (int j = i + 1; j < n; j++)
        if (strcmp(s->attrs[i].key, s->attrs[j].key) == 0)
            return true;
    return false;
}

void span_encode_json_double(sbuf *b, double d)
{
    if (isnan(d)) {
        sbuf_puts(b, "\"NaN\"");
        return;
    }
    if (isinf(d)) {
        sbuf_puts(b, d > 0 ? "\"Infinity\"" : "\"-Infinity\"");
        return;
    }
    sbuf_double(b, d);
}
