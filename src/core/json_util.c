/*
 * json_util — compact JSON encoding with shortest round-trip reals, and parsing that tells
 * running out of memory from bad text.
 */
#include "json_util.h"

#include <errno.h>
#include <math.h>

json_t *json_parse(const char *text, size_t len, size_t flags, json_error_t *error, bool *nomem)
{
    errno = 0;
    json_t *v = json_loadb(text, len, flags, error);
    *nomem = !v && errno == ENOMEM;
    return v;
}

void json_write_compact(sbuf *b, const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        sbuf_putc(b, '{');
        const char *key;
        json_t *item;
        bool first = true;
        json_object_foreach((json_t *)v, key, item)
        {
            if (!first)
                sbuf_putc(b, ',');
            first = false;
            sbuf_json_str(b, key);
            sbuf_putc(b, ':');
            json_write_compact(b, item);
        }
        sbuf_putc(b, '}');
        break;
    }
    case JSON_ARRAY: {
        sbuf_putc(b, '[');
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i)
                sbuf_putc(b, ',');
            json_write_compact(b, json_array_get(v, i));
        }
        sbuf_putc(b, ']');
        break;
    }
    case JSON_STRING:
        sbuf_json_strn(b, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        sbuf_int(b, json_integer_value(v));
        break;
    case JSON_REAL: /* as Python writes it: a whole number keeps its ".0", and reads back a real */
        sbuf_double(b, json_real_value(v));
        break;
    case JSON_TRUE:
        sbuf_puts(b, "true");
        break;
    case JSON_FALSE:
        sbuf_puts(b, "false");
        break;
    case JSON_NULL:
        sbuf_puts(b, "null");
        break;
    }
}

char *json_to_text(const json_t *v)
{
    sbuf b = {0};
    json_write_compact(&b, v);
    if (sbuf_failed(&b)) {
        sbuf_free(&b);
        return NULL;
    }
    return sbuf_take(&b, NULL);
}

bool json_depth_within(const json_t *v, size_t max)
{
    if (!json_is_object(v) && !json_is_array(v))
        return true;
    if (max == 0)
        return false;
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++)
            if (!json_depth_within(json_array_get(v, i), max - 1))
                return false;
        return true;
    }
    const char *key;
    const json_t *item;
    json_object_foreach((json_t *)v, key, item)
    {
        (void)key;
        if (!json_depth_within(item, max - 1))
            return false;
    }
    return true;
}

bool json_storable(const json_t *v, const char **why)
{
    if (json_is_real(v)) {
        double m = fabs(json_real_value(v));
        if (m != 0 && (m < 1e-130 || m >= 1e126)) {
            *why = "numbers must be 0 or of a magnitude from 1e-130 to below 1e126";
            return false;
        }
        return true;
    }
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++)
            if (!json_storable(json_array_get(v, i), why))
                return false;
        return true;
    }
    const char *key;
    const json_t *item;
    json_object_foreach((json_t *)v, key, item)
    {
        if (!key[0]) {
            *why = "member names may not be empty";
            return false;
        }
        if (!json_storable(item, why))
            return false;
    }
    return true;
}
