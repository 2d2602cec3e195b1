/*
 * filter — the two filter languages of the pipeline, as a pure matcher over JSON.
 *
 * 1. Lambda event-source-mapping filter patterns (EventBridge syntax), used by stream consumers:
 *    a pattern mirrors the record's nesting, each leaf is an array of rules (OR), keys are ANDed,
 *    and a set of patterns (FilterCriteria.Filters) is ORed.
 * 2. SNS subscription filter policies, used by the topic: scope MessageAttributes (a flat
 *    policy over typed message attributes) or MessageBody (a nested policy over a JSON body).
 *
 * The authority for every rule is the project's reference notes on Lambda filters and SNS filter
 * policies (as AWS documents Lambda event filtering and SNS message filtering). Patterns and
 * policies are compiled once, rejected with a message naming the fault, and then matched many times
 * without allocating, except when a String.Array attribute or an SQS "body" string must be parsed.
 * Compiled objects are immutable, so one may be matched from several threads at once.
 */
#ifndef TASKD_FILTER_H
#define TASKD_FILTER_H

#include <jansson.h>

#include <stdbool.h>
#include <stddef.h>

/* Lambda event-source-mapping filter patterns (EventBridge syntax) over JSON records. */
typedef struct filter_pattern filter_pattern;

/* Compile one pattern given as JSON text, e.g. {"eventName":["INSERT"]}; NULL + message in err. */
filter_pattern *filter_pattern_compile(const char *json_text, char *err, size_t errlen);
/* Compile one pattern given as a parsed JSON object (borrowed, not kept); NULL + message in err. */
filter_pattern *filter_pattern_compile_json(const json_t *pattern, char *err, size_t errlen);
/* True when the record (a JSON object) satisfies the pattern; false for a NULL pattern. */
bool filter_pattern_match(const filter_pattern *p, const json_t *record);
/* Free a compiled pattern (NULL is fine). */
void filter_pattern_free(filter_pattern *p);

/* A set of patterns: OR across them (FilterCriteria.Filters); an empty set matches everything. */
typedef struct filter_set filter_set;

/* Compile n patterns (JSON texts); NULL + "filter <i>: <message>" in err if any is invalid. */
filter_set *filter_set_compile(const char *const *patterns, size_t n, char *err, size_t errlen);
/* True when any pattern matches; an empty or NULL set (no filtering) matches every record. */
bool filter_set_match(const filter_set *s, const json_t *record);
/*
 * False when no pattern of the set can match a record whose top-level field name holds the
 * string value, whatever the rest of the record: lets a reader skip a record before building it.
 */
bool filter_set_may_match_field(const filter_set *s, const char *name, const char *value);
/*
 * True when the set's verdict on a record depends on its top-level field name alone (every
 * pattern tests that field and nothing else; no patterns tests nothing): then
 * filter_set_may_match_field() is the whole verdict.
 */
bool filter_set_decided_by_field(const filter_set *s, const char *name);
/* Number of patterns in the set (0 for NULL). */
size_t filter_set_count(const filter_set *s);
/* Free a compiled set (NULL is fine). */
void filter_set_free(filter_set *s);

/* SNS subscription filter policies: FilterPolicyScope. */
typedef enum filter_scope {
    FILTER_SCOPE_ATTRIBUTES, /* MessageAttributes (the SNS default): a flat policy */
    FILTER_SCOPE_BODY,       /* MessageBody: a nested policy over a JSON object body */
} filter_scope;

/* One message attribute as published: all values are text, as in the SNS API. */
typedef struct filter_attr {
    const char *name;
    const char *type; /* "String", "Number", "String.Array", "Binary" (+ ".label"); NULL = String */
    const char *value; /* the StringValue; for String.Array: JSON array text */
} filter_attr;

typedef struct filter_policy filter_policy;

/* Compile a FilterPolicy given as JSON text for a scope; "{}" matches everything; NULL + err. */
filter_policy *filter_policy_compile(const char *json_text, filter_scope scope, char *err,
                                     size_t errlen);
/* Compile a FilterPolicy given as a parsed JSON object (borrowed, not kept); NULL + err. */
filter_policy *filter_policy_compile_json(const json_t *policy, filter_scope scope, char *err,
                                          size_t errlen);
/* The scope the policy was compiled for. */
filter_scope filter_policy_scope(const filter_policy *p);
/* Match attributes (attribute-scope policy, else false); a NULL or {} policy matches all. */
bool filter_policy_match_attrs(const filter_policy *p, const filter_attr *attrs, size_t n);
/* Match a body (body-scope policy, else false); it must be a JSON object unless policy is {}. */
bool filter_policy_match_body(const filter_policy *p, const json_t *body);
/*
 * False when an attribute-scope policy cannot match any message whose String attribute name holds
 * value, whatever its other attributes; true for a body-scope policy (the body decides). carried
 * (NULL-terminated, or NULL: any) names every attribute such a message may carry: a rule on
 * another one sees it absent.
 */
bool filter_policy_may_match_attr(const filter_policy *p, const char *name, const char *value,
                                  const char *const *carried);
/* Free a compiled policy (NULL is fine). */
void filter_policy_free(filter_policy *p);

#endif
