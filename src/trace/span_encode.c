/*
 * span_encode — what the span encoders share; see span_encode.h.
 *
 * The double is printed at increasing precision until strtod reads it back
 * exactly: %.17g always round-trips, but most values people write (0.1,
 * 2.5) already do at 15 digits, and those should look as they were set.
 */
#include "span_encode.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
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
    char tmp[32];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, d);
        if (strtod(tmp, NULL) == d)
            break;
    }
    sbuf_puts(b, tmp);
}
