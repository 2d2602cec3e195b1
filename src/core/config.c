/*
 * config — defaults and the JSON configuration file. Parsing is strict:
 * a misspelt key is reported rather than silently ignored, because a
 * configuration typo in a job system means work that never runs.
 */
#include "config.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const default_types[] = {"TASK1", "TASK2", "TASK3"};

static void clear_types(config *c)
{
    for (size_t i = 0; i < c->n_task_types; i++)
        free(c->task_types[i]);
    c->n_task_types = 0;
}

bool config_defaults(config *c)
{
    memset(c, 0, sizeof *c);
    c->body_limit = 256 * 1024;
    c->retention_grace = 3600;
    for (size_t i = 0; i < 3; i++) {
        c->task_types[i] = strdup(default_types[i]);
        if (!c->task_types[i]) {
            clear_types(c);
            return false;
        }
        c->n_task_types++;
    }
    return true;
}

/* A task type: 1..64 characters of letters, digits, '_', '-', '.'. */
static bool valid_type_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        bool ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                  (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' || ch == '.';
        if (!ok)
            return false;
    }
    return true;
}

static bool load_task_types(config *c, json_t *v, const char *name, char *err, size_t errlen)
{
    if (!json_is_array(v) || json_array_size(v) == 0 ||
        json_array_size(v) > CONFIG_MAX_TASK_TYPES) {
        snprintf(err, errlen, "%s: task_types must be a non-empty array of at most %d names", name,
                 CONFIG_MAX_TASK_TYPES);
        return false;
    }
    size_t i;
    json_t *item;
    json_array_foreach(v, i, item)
    {
        const char *s = json_string_value(item);
        if (!s || !valid_type_name(s)) {
            snprintf(
                err, errlen,
                "%s: task_types[%zu] must be 1-64 characters of letters, digits, '_', '-', '.'",
                name, i);
            return false;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(s, json_string_value(json_array_get(v, j))) == 0) {
                snprintf(err, errlen, "%s: task_types lists \"%s\" twice", name, s);
                return false;
            }
        }
    }
    clear_types(c);
    json_array_foreach(v, i, item)
    {
        c->task_types[i] = strdup(json_string_value(item));
        if (!c->task_types[i]) {
            snprintf(err, errlen, "%s: out of memory", name);
            return false;
        }
        c->n_task_types++;
    }
    return true;
}

static bool load_positive(json_t *v, const char *key, int64_t min, int64_t max, int64_t *out,
                          const char *name, char *err, size_t errlen)
{
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        snprintf(err, errlen, "%s: %s must be an integer from %lld to %lld", name, key,
                 (long long)min, (long long)max);
        return false;
    }
    *out = json_integer_value(v);
    return true;
}

static bool load_root(config *c, json_t *root, const char *name, char *err, size_t errlen)
{
    if (!json_is_object(root)) {
        snprintf(err, errlen, "%s: the configuration must be a JSON object", name);
        return false;
    }
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v)
    {
        int64_t n;
        if (strcmp(key, "task_types") == 0) {
            if (!load_task_types(c, v, name, err, errlen))
                return false;
        } else if (strcmp(key, "body_limit") == 0) {
            if (!load_positive(v, key, 64, 64 * 1024 * 1024, &n, name, err, errlen))
                return false;
            c->body_limit = (size_t)n;
        } else if (strcmp(key, "retention_grace") == 0) {
            if (!load_positive(v, key, 0, INT32_MAX, &n, name, err, errlen))
                return false;
            c->retention_grace = n;
        } else {
            snprintf(err, errlen, "%s: unknown key \"%s\"", name, key);
            return false;
        }
    }
    return true;
}

bool config_load_text(config *c, const char *text, const char *name, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        snprintf(err, errlen, "%s:%d:%d: %s", name, jerr.line, jerr.column, jerr.text);
        return false;
    }
    bool ok = load_root(c, root, name, err, errlen);
    json_decref(root);
    return ok;
}

bool config_load_file(config *c, const char *path, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        snprintf(err, errlen, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
        return false;
    }
    bool ok = load_root(c, root, path, err, errlen);
    json_decref(root);
    return ok;
}

bool config_has_task_type(const config *c, const char *name)
{
    for (size_t i = 0; i < c->n_task_types; i++)
        if (strcmp(c->task_types[i], name) == 0)
            return true;
    return false;
}

void config_free(config *c)
{
    clear_types(c);
}
