/*
 * attrval — JSON to DynamoDB AttributeValue JSON; see attrval.h.
 */
#include "attrval.h"

#include "json_util.h"

#include <string.h>

void attrval_write(sbuf *b, const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        sbuf_puts(b, "{\"M\":{");
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
            attrval_write(b, item);
        }
        sbuf_puts(b, "}}");
        break;
    }
    case JSON_ARRAY:
        sbuf_puts(b, "{\"L\":[");
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i)
                sbuf_putc(b, ',');
            attrval_write(b, json_array_get(v, i));
        }
        sbuf_puts(b, "]}");
        break;
    case JSON_STRING:
        sbuf_puts(b, "{\"S\":");
        sbuf_json_strn(b, json_string_value(v), json_string_length(v));
        sbuf_putc(b, '}');
        break;
    case JSON_INTEGER:
    case JSON_REAL:
        sbuf_puts(b, "{\"N\":\"");
        json_write_compact(b, v);
        sbuf_puts(b, "\"}");
        break;
    case JSON_TRUE:
        sbuf_puts(b, "{\"BOOL\":true}");
        break;
    case JSON_FALSE:
        sbuf_puts(b, "{\"BOOL\":false}");
        break;
    case JSON_NULL:
        sbuf_puts(b, "{\"NULL\":true}");
        break;
    }
}

static void put_s(sbuf *b, const char *name, const char *value)
{
    sbuf_printf(b, ",\"%s\":{\"S\":", name);
    sbuf_json_str(b, value);
    sbuf_putc(b, '}');
}

static void put_n(sbuf *b, const char *name, int64_t value)
{
    sbuf_printf(b, ",\"%s\":{\"N\":\"%lld\"}", name, (long long)value);
}

/* Append ,"name":<AttributeValue of the JSON text>; false if text is not JSON. */
static bool put_json(sbuf *b, const char *name, const char *text)
{
    json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
    if (!v)
        return false;
    sbuf_printf(b, ",\"%s\":", name);
    attrval_write(b, v);
    json_decref(v);
    return true;
}

bool attrval_task_image(sbuf *b, const task *t)
{
    sbuf_puts(b, "{\"id\":{\"S\":");
    sbuf_json_str(b, t->id);
    sbuf_putc(b, '}');
    put_s(b, "task_type", t->task_type);
    put_s(b, "status", task_status_name(t->status));
    put_s(b, "status_msg", t->status_msg ? t->status_msg : "");
    put_n(b, "created_time", t->created_time);
    if (t->updated_time != TASK_NULL_TIME)
        put_n(b, "updated_time", t->updated_time);
    if (t->ttl != TASK_NULL_TIME)
        put_n(b, "ttl", t->ttl);
    bool ok = put_json(b, "data", t->data ? t->data : "{}");
    if (t->result)
        ok = put_json(b, "result", t->result) && ok;
    if (t->trace)
        put_s(b, "trace", t->trace);
    sbuf_putc(b, '}');
    return ok;
}
