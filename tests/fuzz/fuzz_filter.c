/*
 * fuzz_filter — the pipeline's two filter languages (core/filter.h): Lambda
 * event-source-mapping filter patterns and SNS subscription filter policies,
 * both from the configuration file, both matched against records and
 * messages built from client data.
 *
 * Input: "<pattern or policy JSON>\n<record JSON>" (split at the first
 * newline; no newline: the record is {}). The first part is compiled as a
 * pattern, a body-scope policy and an attribute-scope policy; each that
 * compiles is matched against the record, and for the attribute scope against
 * message attributes read from the record as SNS writes them:
 * {"name": {"DataType": "String|Number|String.Array|Binary", "StringValue": "..."}}.
 *
 * Invariants: a failed compile leaves a non-empty message, also when the
 * message buffer is tiny; matching is deterministic; a one-pattern set matches
 * exactly when its pattern does; an empty set matches everything.
 *
 * Run: scripts/fuzz.sh filter   (corpus: tests/fuzz/corpus/filter/)
 */
#include "fuzz_util.h"

#include "core/filter.h"

#include <jansson.h>

#define MAX_ATTRS 16

static void check_err(bool failed, const char *err, size_t errlen)
{
    if (failed) {
        FUZZ_CHECK(strnlen(err, errlen) < errlen, "error message not terminated");
        FUZZ_CHECK(errlen < 2 || err[0] != '\0', "compile failed without a message");
    }
}

static void fuzz_pattern(const char *ptext, const json_t *record)
{
    char err[256], small[6];
    err[0] = small[0] = 'X';
    filter_pattern *p = filter_pattern_compile(ptext, err, sizeof err);
    check_err(!p, err, sizeof err);
    if (!p) {
        filter_pattern *q = filter_pattern_compile(ptext, small, sizeof small);
        FUZZ_CHECK(!q, "compiles with a small error buffer only");
        check_err(true, small, sizeof small);
    }
    const char *one[1] = {ptext};
    filter_set *s = filter_set_compile(one, 1, err, sizeof err);
    FUZZ_CHECK(!s == !p, "set of one pattern compiles %d, pattern %d", !!s, !!p);
    if (p && record) {
        bool m = filter_pattern_match(p, record);
        FUZZ_CHECK(m == filter_pattern_match(p, record), "pattern match not deterministic");
        FUZZ_CHECK(filter_set_count(s) == 1, "set of one has %zu", filter_set_count(s));
        FUZZ_CHECK(filter_set_match(s, record) == m, "set of one disagrees with its pattern");
    }
    filter_set *empty = filter_set_compile(NULL, 0, err, sizeof err);
    if (empty && record)
        FUZZ_CHECK(filter_set_match(empty, record), "empty set rejects a record");
    filter_set_free(empty);
    filter_set_free(s);
    filter_pattern_free(p);
}

static void fuzz_policy(const char *ptext, const json_t *record)
{
    char err[256];
    err[0] = 'X';
    filter_policy *b = filter_policy_compile(ptext, FILTER_SCOPE_BODY, err, sizeof err);
    check_err(!b, err, sizeof err);
    if (b) {
        FUZZ_CHECK(filter_policy_scope(b) == FILTER_SCOPE_BODY, "scope");
        if (record) {
            bool m = filter_policy_match_body(b, record);
            FUZZ_CHECK(m == filter_policy_match_body(b, record), "body match not deterministic");
        }
        filter_policy_free(b);
    }

    err[0] = 'X';
    filter_policy *a = filter_policy_compile(ptext, FILTER_SCOPE_ATTRIBUTES, err, sizeof err);
    check_err(!a, err, sizeof err);
    if (!a)
        return;
    filter_attr attrs[MAX_ATTRS];
    size_t n = 0;
    const char *key;
    json_t *val;
    if (json_is_object(record)) {
        json_object_foreach((json_t *)record, key, val)
        {
            if (n == MAX_ATTRS)
                break;
            json_t *type = json_object_get(val, "DataType");
            json_t *sv = json_object_get(val, "StringValue");
            if (!json_is_string(sv))
                continue;
            attrs[n].name = key;
            attrs[n].type = json_is_string(type) ? json_string_value(type) : NULL;
            attrs[n].value = json_string_value(sv);
            n++;
        }
    }
    bool m = filter_policy_match_attrs(a, attrs, n);
    FUZZ_CHECK(m == filter_policy_match_attrs(a, attrs, n), "attribute match not deterministic");
    filter_policy_free(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_strdup(data, size);
    char *nl = strchr(text, '\n');
    const char *rtext = "{}";
    if (nl) {
        *nl = '\0';
        rtext = nl + 1;
    }
    json_t *record = json_loads(rtext, JSON_DECODE_ANY, NULL);
    fuzz_pattern(text, record);
    fuzz_policy(text, record);
    json_decref(record);
    free(text);
    return 0;
}
