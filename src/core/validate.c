/*
 * validate — FastAPI-compatible request validation; see validate.h.
 *
 * Messages and type codes follow pydantic v2 ("Field required"/"missing",
 * "Input should be a valid integer"/"int_type", ...), which is what FastAPI
 * clients already parse.
 */
#include "validate.h"

#include "attrval.h"
#include "json_util.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void validation_add(validation *v, const char *where, const char *field, const char *msg,
                    const char *type)
{
    if (v->count++)
        sbuf_putc(&v->items, ',');
    sbuf_puts(&v->items, "{\"loc\":[");
    sbuf_json_str(&v->items, where);
    if (field) {
        sbuf_putc(&v->items, ',');
        sbuf_json_str(&v->items, field);
    }
    sbuf_puts(&v->items, "],\"msg\":");
    sbuf_json_str(&v->items, msg);
    sbuf_puts(&v->items, ",\"type\":");
    sbuf_json_str(&v->items, type);
    sbuf_putc(&v->items, '}');
}

char *validation_body(validation *v, size_t *len)
{
    sbuf b = {0};
    sbuf_puts(&b, "{\"detail\":[");
    if (v->items.data)
        sbuf_append(&b, v->items.data, v->items.len);
    sbuf_puts(&b, "]}");
    if (sbuf_failed(&b) || sbuf_failed(&v->items)) {
        sbuf_free(&b);
        return NULL;
    }
    return sbuf_take(&b, len);
}

void validation_free(validation *v)
{
    sbuf_free(&v->items);
    v->count = 0;
}

/* Parse the body as a JSON object, recording json_invalid / model_attributes_type. */
static json_t *parse_object(const char *body, size_t len, validation *v)
{
    json_error_t jerr;
    json_t *root = json_loadb(body ? body : "", len, JSON_DECODE_ANY, &jerr);
    if (!root) {
        char msg[200];
        snprintf(msg, sizeof msg, "JSON decode error: %s (line %d, column %d)", jerr.text,
                 jerr.line, jerr.column);
        validation_add(v, "body", NULL, msg, "json_invalid");
        return NULL;
    }
    if (!json_is_object(root)) {
        validation_add(v, "body", NULL,
                       "Input should be a valid dictionary or object to extract fields from",
                       "model_attributes_type");
        json_decref(root);
        return NULL;
    }
    return root;
}

/* The enum message pydantic gives: "Input should be 'A', 'B' or 'C'". */
static void enum_message(sbuf *m, char *const *names, size_t n)
{
    sbuf_puts(m, "Input should be ");
    for (size_t i = 0; i < n; i++) {
        if (i)
            sbuf_puts(m, i + 1 == n ? " or " : ", ");
        sbuf_printf(m, "'%s'", names[i]);
    }
}

static void check_task_type(const config *c, json_t *v, create_request *out, validation *errs)
{
    if (!v) {
        validation_add(errs, "body", "task_type", "Field required", "missing");
        return;
    }
    const char *s = json_string_value(v);
    if (!s) {
        validation_add(errs, "body", "task_type", "Input should be a valid string", "string_type");
        return;
    }
    if (!config_has_task_type(c, s)) {
        sbuf m = {0};
        enum_message(&m, c->task_types, c->n_task_types);
        validation_add(errs, "body", "task_type", m.data ? m.data : "Input should be a task type",
                       "enum");
        sbuf_free(&m);
        return;
    }
    snprintf(out->task_type, sizeof out->task_type, "%s", s);
}

/* ttl: absent/null, a non-negative integer, or a string of digits. */
static void check_ttl(json_t *v, create_request *out, validation *errs)
{
    out->ttl = TASK_NULL_TIME;
    if (!v || json_is_null(v))
        return;
    if (json_is_integer(v)) {
        if (json_integer_value(v) < 0) {
            validation_add(errs, "body", "ttl", "Input should be greater than or equal to 0",
                           "greater_than_equal");
            return;
        }
        out->ttl = json_integer_value(v);
        return;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        bool digits = n > 0 && n <= 18 && strspn(s, "0123456789") == n;
        if (!digits) {
            validation_add(errs, "body", "ttl",
                           "Input should be a valid integer, unable to parse string as an integer",
                           "int_parsing");
            return;
        }
        out->ttl = strtoll(s, NULL, 10);
        return;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d >= 0 && d <= 9007199254740992.0 && d == (double)(int64_t)d) {
            out->ttl = (int64_t)d; /* a whole number written as a float, as pydantic accepts */
            return;
        }
        validation_add(errs, "body", "ttl",
                       "Input should be a valid integer, got a number with a fractional part",
                       "int_from_float");
        return;
    }
    validation_add(errs, "body", "ttl", "Input should be a valid integer", "int_type");
}

/* A value nested deeper than VALIDATE_MAX_DEPTH. */
static void too_deep(validation *v, const char *field)
{
    char msg[96];
    snprintf(msg, sizeof msg, "Input should nest objects and arrays at most %d levels deep",
             VALIDATE_MAX_DEPTH);
    validation_add(v, "body", field, msg, "value_error");
}

bool validate_create(const config *c, const char *body, size_t len, create_request *out,
                     validation *v)
{
    memset(out, 0, sizeof *out);
    out->ttl = TASK_NULL_TIME;
    json_t *root = parse_object(body, len, v);
    if (!root)
        return false;
    check_task_type(c, json_object_get(root, "task_type"), out, v);
    json_t *data = json_object_get(root, "data");
    if (data && !json_is_object(data))
        validation_add(v, "body", "data", "Input should be a valid dictionary", "dict_type");
    else if (data && !json_depth_within(data, VALIDATE_MAX_DEPTH))
        too_deep(v, "data");
    check_ttl(json_object_get(root, "ttl"), out, v);
    if (v->count == 0) {
        /* both forms here, on the request's thread, not in the store's single writer */
        sbuf image = {0};
        if (data)
            attrval_write(&image, data);
        else
            sbuf_puts(&image, "{\"M\":{}}");
        out->data = data ? json_to_text(data) : strdup("{}");
        out->data_image = sbuf_failed(&image) ? NULL : sbuf_take(&image, NULL);
        sbuf_free(&image);
        if (!out->data || !out->data_image)
            validation_add(v, "body", NULL, "Out of memory", "internal");
    }
    json_decref(root);
    if (v->count) {
        create_request_free(out);
        return false;
    }
    return true;
}

void create_request_free(create_request *r)
{
    free(r->data);
    free(r->data_image);
    r->data = r->data_image = NULL;
}

bool validate_update(const char *body, size_t len, update_request *out, validation *v)
{
    memset(out, 0, sizeof *out);
    json_t *root = parse_object(body, len, v);
    if (!root)
        return false;
    json_t *status = json_object_get(root, "status");
    if (!status)
        validation_add(v, "body", "status", "Field required", "missing");
    else if (!json_is_string(status))
        validation_add(v, "body", "status", "Input should be a valid string", "string_type");
    else if (!task_status_parse(json_string_value(status), &out->status))
        validation_add(v, "body", "status",
                       "Input should be 'CREATED', 'IN_PROGRESS', 'COMPLETED' or 'FAILED'", "enum");
    json_t *msg = json_object_get(root, "status_msg");
    if (msg && !json_is_string(msg))
        validation_add(v, "body", "status_msg", "Input should be a valid string", "string_type");
    json_t *result = json_object_get(root, "result");
    if (result && !json_depth_within(result, VALIDATE_MAX_DEPTH))
        too_deep(v, "result");
    if (v->count == 0) {
        out->status_msg = strdup(json_is_string(msg) ? json_string_value(msg) : "");
        out->result = result ? json_to_text(result) : NULL;
        if (!out->status_msg || (result && !out->result))
            validation_add(v, "body", NULL, "Out of memory", "internal");
    }
    json_decref(root);
    if (v->count) {
        update_request_free(out);
        return false;
    }
    return true;
}

void update_request_free(update_request *r)
{
    free(r->status_msg);
    free(r->result);
    r->status_msg = NULL;
    r->result = NULL;
}

bool validate_limit(const char *s, int *out, validation *v)
{
    if (!s) {
        *out = 10;
        return true;
    }
    bool negative = s[0] == '-';
    const char *digits = negative || s[0] == '+' ? s + 1 : s;
    size_t n = strlen(digits);
    if (n == 0 || strspn(digits, "0123456789") != n) {
        validation_add(v, "query", "limit",
                       "Input should be a valid integer, unable to parse string as an integer",
                       "int_parsing");
        return false;
    }
    long val = n > 9 ? 1000000000L : strtol(digits, NULL, 10); /* any 10+ digits are too many */
    if (negative)
        val = -val;
    if (val < 1) {
        validation_add(v, "query", "limit", "Input should be greater than or equal to 1",
                       "greater_than_equal");
        return false;
    }
    if (val > 100) {
        validation_add(v, "query", "limit", "Input should be less than or equal to 100",
                       "less_than_equal");
        return false;
    }
    *out = (int)val;
    return true;
}
