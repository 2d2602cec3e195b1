/*
 * attrval — JSON to DynamoDB AttributeValue JSON; see attrval.h.
 */
#include "attrval.h"

#include "json_util.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

size_t attrval_number_size(const char *text, size_t len)
{
    size_t digits = 0, zeros = 0;
    for (const char *p = text, *end = text ? text + len : NULL;
         p < end && *p && *p != 'e' && *p != 'E'; p++) {
        if (*p == '0')
            zeros += digits > 0; /* inside or trailing: counted if a digit follows */
        else if (*p >= '1' && *p <= '9') {
            digits += zeros + 1;
            zeros = 0;
        }
    }
    size_t size = digits / 2 + 2 + (len > 0 && text[0] == '-');
    return size < ATTRVAL_NUMBER_MAX ? size : ATTRVAL_NUMBER_MAX;
}

size_t attrval_write(sbuf *b, const json_t *v)
{
    size_t size = 0;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        sbuf_puts(b, "{\"M\":{");
        const char *key;
        json_t *item;
        bool first = true;
        size = ATTRVAL_NESTED;
        json_object_foreach((json_t *)v, key, item)
        {
            if (!first)
                sbuf_putc(b, ',');
            first = false;
            size_t name = strlen(key);
            sbuf_json_strn(b, key, name);
            sbuf_putc(b, ':');
            size += 1 + name + attrval_write(b, item);
        }
        sbuf_puts(b, "}}");
        break;
    }
    case JSON_ARRAY:
        sbuf_puts(b, "{\"L\":[");
        size = ATTRVAL_NESTED;
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i)
                sbuf_putc(b, ',');
            size += 1 + attrval_write(b, json_array_get(v, i));
        }
        sbuf_puts(b, "]}");
        break;
    case JSON_STRING:
        /* jansson's strings are UTF-8 (it makes none of other bytes): the text written reads
         * back as these bytes */
        size = json_string_length(v);
        sbuf_puts(b, "{\"S\":");
        sbuf_json_strn(b, json_string_value(v), size);
        sbuf_putc(b, '}');
        break;
    case JSON_INTEGER:
    case JSON_REAL: {
        sbuf_puts(b, "{\"N\":\"");
        size_t start = b->len;
        json_write_compact(b, v);
        /* counted from its text as written: the digits DynamoDB is sent */
        if (!sbuf_failed(b))
            size = attrval_number_size(b->data + start, b->len - start);
        sbuf_puts(b, "\"}");
        break;
    }
    case JSON_TRUE:
        sbuf_puts(b, "{\"BOOL\":true}");
        size = 1;
        break;
    case JSON_FALSE:
        sbuf_puts(b, "{\"BOOL\":false}");
        size = 1;
        break;
    case JSON_NULL:
        sbuf_puts(b, "{\"NULL\":true}");
        size = 1;
        break;
    }
    return size;
}

/* An N value: integer when it is one, else a real. */
static json_t *number_from_text(const char *s)
{
    /* decimal notation only: strtod alone would also take hex, "inf" and leading spaces */
    if (!s || !*s || strspn(s, "0123456789+-.eE") != strlen(s))
        return NULL;
    char *end;
    errno = 0;
    long long i = strtoll(s, &end, 10);
    if (!*end && errno == 0)
        return json_integer(i);
    double d = strtod(s, &end);
    return *end || !isfinite(d) ? NULL : json_real(d);
}

json_t *attrval_to_json(const json_t *v)
{
    if (!json_is_object(v) || json_object_size(v) != 1)
        return NULL;
    const char *type = json_object_iter_key(json_object_iter((json_t *)v));
    json_t *x = json_object_get(v, type);
    if (strcmp(type, "S") == 0)
        return json_is_string(x) ? json_incref(x) : NULL;
    if (strcmp(type, "N") == 0)
        return number_from_text(json_string_value(x));
    if (strcmp(type, "BOOL") == 0)
        return json_is_boolean(x) ? json_incref(x) : NULL;
    if (strcmp(type, "NULL") == 0)
        return json_is_true(x) ? json_null() : NULL;
    json_t *out = NULL;
    if (strcmp(type, "M") == 0 && json_is_object(x)) {
        out = json_object();
        if (!out)
            return NULL; /* errno ENOMEM, before a child's conversion could reset it */
        const char *key;
        json_t *item;
        json_object_foreach(x, key, item)
        {
            json_t *c = attrval_to_json(item);
            if (!c || json_object_set_new(out, key, c) != 0) {
                json_decref(out);
                return NULL;
            }
        }
    } else if ((strcmp(type, "L") == 0 || strcmp(type, "SS") == 0 || strcmp(type, "NS") == 0) &&
               json_is_array(x)) {
        out = json_array();
        if (!out)
            return NULL;
        for (size_t i = 0; i < json_array_size(x); i++) {
            json_t *item = json_array_get(x, i), *c;
            if (type[0] == 'L')
                c = attrval_to_json(item);
            else if (type[0] == 'S')
                c = json_is_string(item) ? json_incref(item) : NULL;
            else
                c = number_from_text(json_string_value(item));
            if (!c || json_array_append_new(out, c) != 0) {
                json_decref(out);
                return NULL;
            }
        }
    }
    return out;
}

/* ,"name": — names here are literals without characters that need escaping */
static void put_name(sbuf *b, const char *name)
{
    sbuf_puts(b, ",\"");
    sbuf_puts(b, name);
    sbuf_puts(b, "\":");
}

static void put_s(sbuf *b, const char *name, const char *value)
{
    put_name(b, name);
    sbuf_puts(b, "{\"S\":");
    sbuf_json_str(b, value);
    sbuf_putc(b, '}');
}

static void put_n(sbuf *b, const char *name, int64_t value)
{
    put_name(b, name);
    sbuf_puts(b, "{\"N\":\"");
    sbuf_int(b, value);
    sbuf_puts(b, "\"}");
}

/* The JSON text parsed, or NULL: not JSON, or out of memory, which marks b failed as an append
 * that runs out does. */
static json_t *parse_for(sbuf *b, const char *text)
{
    if (!text)
        return NULL;
    bool nomem;
    json_t *v = json_parse(text, strlen(text), JSON_DECODE_ANY, NULL, &nomem);
    if (nomem)
        b->failed = true;
    return v;
}

/* Append ,"name":<AttributeValue of the JSON text>; false if text is not JSON. */
static bool put_json(sbuf *b, const char *name, const char *text)
{
    json_t *v = parse_for(b, text);
    if (!v)
        return false;
    put_name(b, name);
    attrval_write(b, v);
    json_decref(v);
    return true;
}

/* attrval_append_text(), its count in *size unless size is NULL. */
static bool append_text(sbuf *b, const char *json_text, size_t *size)
{
    json_t *v = parse_for(b, json_text);
    if (!v)
        return false;
    size_t n = attrval_write(b, v);
    if (size)
        *size = n;
    json_decref(v);
    return true;
}

bool attrval_append_text(sbuf *b, const char *json_text)
{
    return append_text(b, json_text, NULL);
}

char *attrval_from_text(const char *json_text, size_t *size)
{
    sbuf b = {0};
    if (!append_text(&b, json_text, size) || sbuf_failed(&b)) {
        sbuf_free(&b);
        return NULL;
    }
    return sbuf_take(&b, NULL);
}

/* The image's attributes up to data, unclosed. */
static void image_head(sbuf *b, const task *t)
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
}

bool attrval_task_image(sbuf *b, const task *t, const char *data_image)
{
    image_head(b, t);
    bool ok = true;
    if (data_image) {
        put_name(b, "data");
        sbuf_puts(b, data_image);
    } else
        ok = put_json(b, "data", t->data ? t->data : "{}");
    if (t->result)
        ok = put_json(b, "result", t->result) && ok;
    if (t->trace)
        put_s(b, "trace", t->trace);
    if (t->tracestate)
        put_s(b, "tracestate", t->tracestate);
    sbuf_putc(b, '}');
    return ok;
}

void attrval_image_restore(sbuf *b, const char *image, const char *data_image, const char *trace)
{
    size_t n = strlen(image);
    if (n == 0 || image[n - 1] != '}') { /* not an image: kept as it is */
        sbuf_puts(b, image);
        return;
    }
    sbuf_append(b, image, n - 1);
    if (data_image) {
        put_name(b, "data");
        sbuf_puts(b, data_image);
    }
    if (trace)
        put_s(b, "trace", trace);
    sbuf_putc(b, '}');
}
