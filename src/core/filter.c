/*
 * filter — Lambda filter patterns and SNS filter policies; see filter.h.
 *
 * Design. Both languages share one compiled form, a tree of nodes:
 *
 *   node   = fields (ANDed) + at most one recognised "$or" (a list of >= 2 branch nodes, ORed)
 *   field  = a key name with either a child node (the pattern mirrors a nested object) or a
 *            leaf: a non-empty array of rules (ORed)
 *   rule   = a literal (string, number, boolean, null) or one operator: prefix, suffix,
 *            equals-ignore-case, anything-but (values, prefix, suffix, equals-ignore-case),
 *            numeric (one or two comparisons), exists, cidr
 *
 * Compiling validates everything up front, so matching cannot fail: a malformed pattern is
 * rejected with a message that names the key path and the fault ("at dynamodb.NewImage.status.S:
 * "prefix" needs a string, not number"). Where the dialects differ, a dialect flag picks the
 * rule the reference states:
 *
 *                        Lambda pattern               SNS policy
 *   exact number and     same JSON form (int/real     numeric compare
 *   anything-but number  kind and value)
 *   exists: true         some scalar value (even      some value that is not null and not ""
 *                        null) is at the path
 *   exists: false        no scalar value at the path  no such value; attribute scope also needs
 *                        (parent absence counts)      at least one attribute in the message
 *                                                     that filtering sees (not Binary)
 *   anything-but         any scalar not excluded      same, but null never matches
 *   numeric              JSON numbers only            JSON numbers; Number attributes (text)
 *   limits               text <= 4096 characters      |n| <= 1e9 with <= 5 decimals; <= 150
 *                        (UTF-16 units)               value combinations; <= 5 keys in one
 *                                                     alternative (leaf keys in body scope);
 *                                                     attributes: flat; text <= 256 KB
 *
 * Known limit: jansson keeps a number's kind and value, not its text, so Lambda's "string form"
 * rule tells 300 from 300.0 but not 300.0 from 3.0e2. Number attribute text is read with strtod,
 * which assumes the C numeric locale (the server never calls setlocale).
 *
 * A leaf sees the scalar values at its path: a scalar itself, or the scalars of an array at any
 * depth (one matching element suffices); objects hold no leaf value. A child node over a record
 * array matches when one object element matches it as a whole; a path through a scalar, an
 * absent key or an array without objects is absent, so only "exists": false leaves hold there.
 * "exists": false asks the whole array, though: AWS matches an array of objects as if its
 * elements' fields were the parent's ("a.b" is there when any element of "a" has "b"), so a key
 * one element lacks is absent only when no element (of the outermost array) holds it.
 * For Lambda's SQS format check, a top-level "body" holding JSON text is decoded when the pattern
 * nests under "body"; plain text there (or JSON text under a plain-string pattern) never matches.
 *
 * Matching only reads the tree, so compiled objects are safe to share between threads. Every
 * allocation hangs off the tree and is released by the matching *_free.
 */
#include "filter.h"
#include "errbuf.h"
#include "json_util.h"

#include "sbuf.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SNS_NUMBER_MAX       1e9    /* |numeric value| in a policy */
#define SNS_DECIMALS         5      /* digits after the decimal point in a policy */
#define SNS_MAX_COMBINATIONS 150.0  /* product of value-array lengths */
#define SNS_MAX_KEYS         5      /* keys per attribute policy (per $or alternative) */
#define SNS_MAX_POLICY_BYTES 262144 /* 256 KB of policy text */
#define LAMBDA_MAX_PATTERN   4096   /* characters of a Lambda filter's Pattern */
#define PATH_MAX_LEN         256    /* key path kept for error messages */
/* Leaves with "exists": false in one pattern or policy: more than either language's limits allow
 * (Lambda's 4096 characters hold some 190; SNS's 150 alternatives of 5 keys, 750). */
#define ABSENT_MAX 1024

typedef enum filter_dialect {
    DIALECT_LAMBDA,
    DIALECT_SNS_ATTRS,
    DIALECT_SNS_BODY,
} filter_dialect;

typedef enum rule_kind {
    RULE_NULL,
    RULE_BOOL,
    RULE_STRING,
    RULE_NUMBER,
    RULE_PREFIX,
    RULE_SUFFIX,
    RULE_EQUALS_IGNORE_CASE,
    RULE_ANYTHING_BUT,             /* list of strings or of numbers */
    RULE_ANYTHING_BUT_PREFIX,      /* lit */
    RULE_ANYTHING_BUT_SUFFIX,      /* lit */
    RULE_ANYTHING_BUT_IGNORE_CASE, /* list of strings */
    RULE_NUMERIC,
    RULE_EXISTS,
    RULE_CIDR,
} rule_kind;

/* A JSON number as parsed: its kind (integer or real) and value. */
typedef struct filter_num {
    bool is_int;
    long long i; /* when is_int */
    double d;    /* always */
} filter_num;

/* A literal operand: a string (owned, NUL-terminated) or a number. */
typedef struct filter_lit {
    bool is_num;
    char *s;
    size_t len;
    filter_num num;
} filter_lit;

typedef struct filter_range {
    bool has_lo, lo_incl, has_hi, hi_incl;
    double lo, hi;
} filter_range;

typedef struct filter_rule {
    rule_kind kind;
    bool flag;        /* RULE_BOOL: the value; RULE_EXISTS: true or false */
    filter_lit lit;   /* string/number literal, prefix, suffix, ignore-case operand */
    filter_lit *list; /* anything-but values */
    size_t nlist;
    filter_range range; /* RULE_NUMERIC */
    int family;         /* RULE_CIDR: AF_INET or AF_INET6 */
    unsigned char net[16];
    unsigned bits;
} filter_rule;

typedef struct filter_node filter_node;

typedef struct filter_field {
    char *name;
    filter_node *child; /* nested object, or NULL for a leaf */
    filter_rule *rules; /* leaf: ORed */
    size_t nrules;
    bool asks_absent;   /* a rule of the leaf is "exists": false */
    size_t absent_slot; /* then, its bit among a record array's answers (< ABSENT_MAX) */
} filter_field;

struct filter_node {
    filter_field *fields; /* ANDed */
    size_t nfields;
    filter_node **branches; /* a recognised "$or": ORed; 0 or >= 2 */
    size_t nbranches;
};

struct filter_pattern {
    filter_node *root;
    size_t nabsent; /* leaves with "exists": false */
};

struct filter_set {
    filter_pattern **items;
    size_t n;
};

struct filter_policy {
    filter_scope scope;
    filter_node *root;
    size_t nabsent; /* leaves with "exists": false */
};

/* ---- freeing ---------------------------------------------------------------------------- */

static void node_free(filter_node *n);

static void rule_clear(filter_rule *r)
{
    free(r->lit.s);
    for (size_t i = 0; i < r->nlist; i++)
        free(r->list[i].s);
    free(r->list);
}

static void field_clear(filter_field *f)
{
    free(f->name);
    node_free(f->child);
    for (size_t i = 0; i < f->nrules; i++)
        rule_clear(&f->rules[i]);
    free(f->rules);
}

static void node_free(filter_node *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->nfields; i++)
        field_clear(&n->fields[i]);
    free(n->fields);
    for (size_t i = 0; i < n->nbranches; i++)
        node_free(n->branches[i]);
    free(n->branches);
    free(n);
}

/* ---- compiling: context and errors -------------------------------------------------------- */

typedef struct compile_ctx {
    filter_dialect dialect;
    char *err;
    size_t errlen;
    char path[PATH_MAX_LEN]; /* dotted key path of the value being compiled */
    size_t pathlen;
    bool clean;     /* inside an "$or" operator: no operator word is a field name below */
    size_t nabsent; /* leaves with "exists": false so far, each given its slot */
} compile_ctx;

/* Write "at <path>: <message>" (or just the message at the top) into err; returns false. */
static bool fail(compile_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool fail(compile_ctx *c, const char *fmt, ...)
{
    if (!c->err || c->errlen == 0)
        return false;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    errbuf_vset(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (c->pathlen > 0)
        errbuf_set(c->err, c->errlen, "at %s: %s", c->path, msg);
    else
        errbuf_set(c->err, c->errlen, "%s", msg);
    return false;
}

/* Append a path segment; returns the old length for path_pop. Long paths are truncated. */
static size_t path_push(compile_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static size_t path_push(compile_ctx *c, const char *fmt, ...)
{
    size_t old = c->pathlen;
    if (old > 0 && old < sizeof c->path - 1 && fmt[0] != '[')
        c->path[c->pathlen++] = '.';
    if (c->pathlen < sizeof c->path - 1) {
        va_list ap;
        va_start(ap, fmt);
        int w = vsnprintf(c->path + c->pathlen, sizeof c->path - c->pathlen, fmt, ap);
        va_end(ap);
        if (w > 0)
            c->pathlen += (size_t)w;
        if (c->pathlen > sizeof c->path - 1) { /* full: it ends where a character does */
            c->pathlen = sizeof c->path - 1;
            c->path[utf8_cut(c->path, c->pathlen)] = '\0';
        }
    }
    c->path[c->pathlen] = '\0';
    return old;
}

static void path_pop(compile_ctx *c, size_t old)
{
    c->pathlen = old;
    c->path[old] = '\0';
}

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    case JSON_NULL:
        return "null";
    }
    return "value";
}

static const char *dialect_what(const compile_ctx *c)
{
    return c->dialect == DIALECT_LAMBDA ? "a filter pattern" : "a filter policy";
}

static void *alloc_zero(compile_ctx *c, size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p)
        fail(c, "out of memory");
    return p;
}

static char *dup_bytes(compile_ctx *c, const char *s, size_t len)
{
    char *d = malloc(len + 1);
    if (!d) {
        fail(c, "out of memory");
        return NULL;
    }
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

/* ---- compiling: numbers and literals ------------------------------------------------------ */

static filter_num num_of(const json_t *v)
{
    filter_num n = {0};
    if (json_is_integer(v)) {
        n.is_int = true;
        n.i = json_integer_value(v);
        n.d = (double)n.i;
    } else {
        n.d = json_real_value(v);
    }
    return n;
}

/* SNS: numbers in a policy lie in [-1e9, 1e9] and carry at most 5 decimals. */
static bool check_sns_number(compile_ctx *c, double d)
{
    if (c->dialect == DIALECT_LAMBDA)
        return true;
    if (d < -SNS_NUMBER_MAX || d > SNS_NUMBER_MAX)
        return fail(c, "number %.15g is out of range (-1000000000 to 1000000000)", d);
    char buf[64];
    snprintf(buf, sizeof buf, "%.*f", SNS_DECIMALS, d);
    if (strtod(buf, NULL) != d)
        return fail(c, "number %.15g has more than %d digits after the decimal point", d,
                    SNS_DECIMALS);
    return true;
}

/* Fill lit from a string or number JSON value (the caller checked the type). */
static bool lit_set(compile_ctx *c, filter_lit *lit, const json_t *v)
{
    if (json_is_number(v)) {
        lit->is_num = true;
        lit->num = num_of(v);
        return check_sns_number(c, lit->num.d);
    }
    lit->len = json_string_length(v);
    lit->s = dup_bytes(c, json_string_value(v), lit->len);
    return lit->s != NULL;
}

/* ---- compiling: operators ----------------------------------------------------------------- */

typedef enum numeric_op { OP_EQ, OP_LT, OP_LE, OP_GT, OP_GE, OP_BAD } numeric_op;

static numeric_op numeric_op_of(const char *s)
{
    static const char *const names[] = {"=", "<", "<=", ">", ">="};
    for (int i = 0; i < OP_BAD; i++)
        if (strcmp(s, names[i]) == 0)
            return (numeric_op)i;
    return OP_BAD;
}

/* Read the operator at arr[i] and its number at arr[i + 1]. */
static bool numeric_term(compile_ctx *c, const json_t *arr, size_t i, numeric_op *op, double *num)
{
    const json_t *o = json_array_get(arr, i);
    if (!json_is_string(o))
        return fail(c, "\"numeric\": element %zu must be an operator (=, <, <=, >, >=), not %s",
                    i + 1, type_name(o));
    *op = numeric_op_of(json_string_value(o));
    if (*op == OP_BAD)
        return fail(c, "\"numeric\": unknown operator \"%s\" (use =, <, <=, >, >=)",
                    json_string_value(o));
    const json_t *n = json_array_get(arr, i + 1);
    if (!n)
        return fail(c, "\"numeric\": operator \"%s\" needs a number after it",
                    json_string_value(o));
    if (!json_is_number(n))
        return fail(c, "\"numeric\": operator \"%s\" needs a number, not %s", json_string_value(o),
                    type_name(n));
    *num = json_number_value(n);
    return check_sns_number(c, *num);
}

/* [op, n] or [">"|">=", lo, "<"|"<=", hi] with lo < hi. */
static bool compile_numeric(compile_ctx *c, filter_rule *r, const json_t *v)
{
    if (!json_is_array(v))
        return fail(c, "\"numeric\" needs an array such as [\">\", 0, \"<=\", 5], not %s",
                    type_name(v));
    size_t n = json_array_size(v);
    if (n == 0)
        return fail(c, "\"numeric\" needs at least one comparison, e.g. [\"=\", 5]");
    numeric_op op1, op2;
    double x1, x2;
    if (!numeric_term(c, v, 0, &op1, &x1))
        return false;
    filter_range *rg = &r->range;
    r->kind = RULE_NUMERIC;
    if (n == 2) {
        switch (op1) {
        case OP_EQ:
            *rg = (filter_range){true, true, true, true, x1, x1};
            break;
        case OP_LT:
        case OP_LE:
            *rg = (filter_range){.has_hi = true, .hi_incl = op1 == OP_LE, .hi = x1};
            break;
        default:
            *rg = (filter_range){.has_lo = true, .lo_incl = op1 == OP_GE, .lo = x1};
            break;
        }
        return true;
    }
    if (op1 != OP_GT && op1 != OP_GE)
        return fail(c, "\"numeric\": bad operator sequence: only a lower bound (> or >=) may be "
                       "followed by a second comparison");
    if (!numeric_term(c, v, 2, &op2, &x2))
        return false;
    if (op2 != OP_LT && op2 != OP_LE)
        return fail(c,
                    "\"numeric\": bad operator sequence: \"%s\" after \"%s\"; a lower bound "
                    "(> or >=) must be followed by an upper bound (< or <=)",
                    json_string_value(json_array_get(v, 2)),
                    json_string_value(json_array_get(v, 0)));
    if (n > 4)
        return fail(c, "\"numeric\": too many elements (%zu); at most two comparisons", n);
    if (!(x1 < x2))
        return fail(c, "\"numeric\": bad range: lower bound %.15g must be below upper bound %.15g",
                    x1, x2);
    *rg = (filter_range){true, op1 == OP_GE, true, op2 == OP_LE, x1, x2};
    return true;
}

/* The string operand of prefix, suffix, equals-ignore-case. */
static bool compile_string_op(compile_ctx *c, filter_rule *r, rule_kind kind, const char *op,
                              const json_t *v)
{
    if (!json_is_string(v))
        return fail(c, "\"%s\" needs a string, not %s", op, type_name(v));
    r->kind = kind;
    return lit_set(c, &r->lit, v);
}

/* A non-empty list of strings, or of numbers (strings_only: strings), into r->list. */
static bool compile_value_list(compile_ctx *c, filter_rule *r, const json_t *v, bool strings_only,
                               const char *what)
{
    size_t n = json_is_array(v) ? json_array_size(v) : 1;
    if (n == 0)
        return fail(c, "%s: the list is empty", what);
    r->list = alloc_zero(c, n, sizeof *r->list);
    if (!r->list)
        return false;
    bool strings = false, numbers = false;
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_is_array(v) ? json_array_get(v, i) : v;
        if (json_is_string(e))
            strings = true;
        else if (json_is_number(e) && !strings_only)
            numbers = true;
        else
            return fail(c, "%s: values must be %s, not %s", what,
                        strings_only ? "strings" : "strings or numbers", type_name(e));
        if (strings && numbers)
            return fail(c, "%s: the list mixes strings and numbers", what);
        if (!lit_set(c, &r->list[i], e))
            return false;
        r->nlist = i + 1;
    }
    return true;
}

/* anything-but: a value, a list, or {"prefix"|"suffix"|"equals-ignore-case": ...}. */
static bool compile_anything_but(compile_ctx *c, filter_rule *r, const json_t *v)
{
    if (json_is_string(v) || json_is_number(v) || json_is_array(v)) {
        r->kind = RULE_ANYTHING_BUT;
        return compile_value_list(c, r, v, false, "\"anything-but\"");
    }
    if (!json_is_object(v))
        return fail(c, "\"anything-but\" needs a string, number, list or operator object, not %s",
                    type_name(v));
    if (json_object_size(v) != 1)
        return fail(c, "\"anything-but\": the operator object must have exactly one key, not %zu",
                    json_object_size(v));
    const char *op = json_object_iter_key(json_object_iter((json_t *)v));
    const json_t *operand = json_object_iter_value(json_object_iter((json_t *)v));
    bool prefix = strcmp(op, "prefix") == 0;
    if (prefix || strcmp(op, "suffix") == 0) {
        if (!json_is_string(operand))
            return fail(c, "\"anything-but\": \"%s\" needs a string, not %s", op,
                        type_name(operand));
        if (json_string_length(operand) == 0)
            return fail(c, "\"anything-but\": \"%s\" needs a non-empty string", op);
        r->kind = prefix ? RULE_ANYTHING_BUT_PREFIX : RULE_ANYTHING_BUT_SUFFIX;
        return lit_set(c, &r->lit, operand);
    }
    if (strcmp(op, "equals-ignore-case") == 0) {
        r->kind = RULE_ANYTHING_BUT_IGNORE_CASE;
        return compile_value_list(c, r, operand, true, "\"anything-but\": \"equals-ignore-case\"");
    }
    return fail(c,
                "\"anything-but\": unknown operator \"%s\" (use prefix, suffix or "
                "equals-ignore-case)",
                op);
}

/* "a.b.c.d/n" or an IPv6 address with "/n"; host bits are cleared. */
static bool compile_cidr(compile_ctx *c, filter_rule *r, const json_t *v)
{
    if (!json_is_string(v))
        return fail(c, "\"cidr\" needs a string such as \"10.0.0.0/24\", not %s", type_name(v));
    const char *s = json_string_value(v);
    const char *slash = strchr(s, '/');
    if (!slash || strchr(slash + 1, '/'))
        return fail(c, "\"cidr\": malformed \"%s\": exactly one '/' is required", s);
    char addr[INET6_ADDRSTRLEN];
    size_t alen = (size_t)(slash - s);
    if (alen == 0 || alen >= sizeof addr)
        return fail(c, "\"cidr\": malformed address in \"%s\"", s);
    memcpy(addr, s, alen);
    addr[alen] = '\0';
    unsigned max;
    if (inet_pton(AF_INET, addr, r->net) == 1) {
        r->family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, addr, r->net) == 1) {
        r->family = AF_INET6;
        max = 128;
    } else {
        return fail(c, "\"cidr\": \"%s\" is not an IPv4 or IPv6 address", addr);
    }
    const char *m = slash + 1;
    unsigned bits = 0;
    if (*m == '\0')
        return fail(c, "\"cidr\": malformed \"%s\": mask bits missing after '/'", s);
    for (; *m; m++) {
        if (*m < '0' || *m > '9' || bits > max)
            return fail(c, "\"cidr\": malformed \"%s\": mask bits must be an integer 0..%u", s,
                        max);
        bits = bits * 10 + (unsigned)(*m - '0');
    }
    if (bits > max)
        return fail(c, "\"cidr\": mask /%u is too long for this address (at most %u)", bits, max);
    r->kind = RULE_CIDR;
    r->bits = bits;
    for (unsigned b = bits; b < max; b++)
        r->net[b / 8] &= (unsigned char)~(0x80u >> (b % 8));
    return true;
}

static bool compile_operator(compile_ctx *c, filter_rule *r, const json_t *obj)
{
    if (json_object_size(obj) != 1)
        return fail(c, "an operator object must have exactly one key, not %zu",
                    json_object_size(obj));
    const char *op = json_object_iter_key(json_object_iter((json_t *)obj));
    const json_t *v = json_object_iter_value(json_object_iter((json_t *)obj));
    if (strcmp(op, "prefix") == 0)
        return compile_string_op(c, r, RULE_PREFIX, op, v);
    if (strcmp(op, "suffix") == 0)
        return compile_string_op(c, r, RULE_SUFFIX, op, v);
    if (strcmp(op, "equals-ignore-case") == 0)
        return compile_string_op(c, r, RULE_EQUALS_IGNORE_CASE, op, v);
    if (strcmp(op, "anything-but") == 0)
        return compile_anything_but(c, r, v);
    if (strcmp(op, "numeric") == 0)
        return compile_numeric(c, r, v);
    if (strcmp(op, "cidr") == 0)
        return compile_cidr(c, r, v);
    if (strcmp(op, "exists") == 0) {
        if (!json_is_boolean(v))
            return fail(c, "\"exists\" needs true or false, not %s", type_name(v));
        r->kind = RULE_EXISTS;
        r->flag = json_is_true(v);
        return true;
    }
    return fail(c,
                "unknown operator \"%s\" (supported: prefix, suffix, equals-ignore-case, "
                "anything-but, numeric, exists, cidr)",
                op);
}

static bool compile_rule(compile_ctx *c, filter_rule *r, const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_NULL:
        r->kind = RULE_NULL;
        return true;
    case JSON_TRUE:
    case JSON_FALSE:
        r->kind = RULE_BOOL;
        r->flag = json_is_true(v);
        return true;
    case JSON_STRING:
        r->kind = RULE_STRING;
        return lit_set(c, &r->lit, v);
    case JSON_INTEGER:
    case JSON_REAL:
        r->kind = RULE_NUMBER;
        return lit_set(c, &r->lit, v);
    case JSON_OBJECT:
        return compile_operator(c, r, v);
    case JSON_ARRAY:
        break;
    }
    return fail(c, "a rule must be a string, number, boolean, null or operator object, not an "
                   "array");
}

static bool compile_leaf(compile_ctx *c, filter_field *f, const json_t *arr)
{
    size_t n = json_array_size(arr);
    if (n == 0)
        return fail(c, "empty rule array: a leaf needs at least one rule");
    f->rules = alloc_zero(c, n, sizeof *f->rules);
    if (!f->rules)
        return false;
    for (size_t i = 0; i < n; i++) {
        f->nrules = i + 1; /* so a partly built rule is freed on error */
        if (!compile_rule(c, &f->rules[i], json_array_get(arr, i)))
            return false;
    }
    for (size_t i = 0; i < n && !f->asks_absent; i++)
        f->asks_absent = f->rules[i].kind == RULE_EXISTS && !f->rules[i].flag;
    if (f->asks_absent)
        f->absent_slot = c->nabsent++;
    return true;
}

/* ---- compiling: objects and $or ----------------------------------------------------------- */

static bool is_reserved_word(const char *k)
{
    static const char *const words[] = {
        "exactly",
        "equals-ignore-case",
        "prefix",
        "suffix",
        "anything-but",
        "exists",
        "wildcard",
        "numeric",
        "cidr",
        "=",
        "<",
        "<=",
        ">",
        ">=",
    };
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strcmp(k, words[i]) == 0)
            return true;
    return false;
}

/* True when an object (or any object nested in it) uses an operator word as a field name. */
static bool uses_reserved_word(const json_t *obj)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v)
    {
        if (is_reserved_word(k))
            return true;
        if (json_is_object(v) && uses_reserved_word(v))
            return true;
        if (strcmp(k, "$or") == 0 && json_is_array(v)) {
            for (size_t i = 0; i < json_array_size(v); i++) {
                const json_t *e = json_array_get(v, i);
                if (json_is_object(e) && uses_reserved_word(e))
                    return true;
            }
        }
    }
    return false;
}

/*
 * The reference's rule: "$or" is an operator only with an array of >= 2 objects, none of which
 * uses an operator word as a field name; otherwise it is an ordinary key. Below an operator
 * "$or" that look has been taken already, over everything compile_node() reaches there: it is
 * not taken again, which made nested alternatives cost their depth times their size.
 */
static bool is_or_operator(const compile_ctx *c, const char *key, const json_t *v)
{
    if (strcmp(key, "$or") != 0 || !json_is_array(v) || json_array_size(v) < 2)
        return false;
    for (size_t i = 0; i < json_array_size(v); i++) {
        const json_t *e = json_array_get(v, i);
        if (!json_is_object(e) || (!c->clean && uses_reserved_word(e)))
            return false;
    }
    return true;
}

static bool compile_node(compile_ctx *c, filter_node *node, const json_t *obj);

static bool compile_or(compile_ctx *c, filter_node *node, const json_t *arr)
{
    size_t n = json_array_size(arr);
    node->branches = alloc_zero(c, n, sizeof *node->branches);
    if (!node->branches)
        return false;
    bool was_clean = c->clean;
    c->clean = true; /* is_or_operator() looked at all of arr */
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++) {
        filter_node *b = alloc_zero(c, 1, sizeof *b);
        if (!b) {
            ok = false;
            break;
        }
        node->branches[i] = b;
        node->nbranches = i + 1;
        size_t old = path_push(c, "$or[%zu]", i);
        ok = compile_node(c, b, json_array_get(arr, i));
        path_pop(c, old);
    }
    c->clean = was_clean;
    return ok;
}

static bool compile_field(compile_ctx *c, filter_field *f, const char *key, const json_t *v)
{
    f->name = dup_bytes(c, key, strlen(key));
    if (!f->name)
        return false;
    if (json_is_array(v))
        return compile_leaf(c, f, v);
    if (!json_is_object(v))
        return fail(c,
                    "the value must be an array of rules (e.g. [\"x\"]) or a nested object, "
                    "not %s",
                    type_name(v));
    if (c->dialect == DIALECT_SNS_ATTRS)
        return fail(c, "nested objects are not allowed: a MessageAttributes policy must be flat");
    f->child = alloc_zero(c, 1, sizeof *f->child);
    return f->child && compile_node(c, f->child, v);
}

static bool compile_node(compile_ctx *c, filter_node *node, const json_t *obj)
{
    size_t n = json_object_size(obj);
    if (n == 0)
        return fail(c, "empty object: every object in %s needs at least one key", dialect_what(c));
    node->fields = alloc_zero(c, n, sizeof *node->fields);
    if (!node->fields)
        return false;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        if (is_or_operator(c, key, v)) {
            if (!compile_or(c, node, v))
                return false;
            continue;
        }
        filter_field *f = &node->fields[node->nfields++];
        size_t old = path_push(c, "%s", key);
        bool ok = compile_field(c, f, key, v);
        path_pop(c, old);
        if (!ok)
            return false;
    }
    return true;
}

/* ---- compiling: SNS limits ---------------------------------------------------------------- */

/* Value combinations: the product of the rule-array lengths (times the key's depth in body
 * scope); an "$or" contributes the sum over its alternatives. */
static double node_combinations(const filter_node *n, double depth, bool body)
{
    double total = 1;
    for (size_t i = 0; i < n->nfields; i++) {
        const filter_field *f = &n->fields[i];
        if (f->child)
            total *= node_combinations(f->child, depth + 1, body);
        else
            total *= (double)f->nrules * (body ? depth : 1);
    }
    if (n->nbranches > 0) {
        double sum = 0;
        for (size_t i = 0; i < n->nbranches; i++)
            sum += node_combinations(n->branches[i], depth, body);
        total *= sum;
    }
    return total;
}

/*
 * Keys in the largest conjunction: this node's keys plus the largest "$or" alternative. With
 * leaves, a nested object counts its leaf keys: of the two ways AWS's documents count a body
 * policy's keys (top-level keys, or leaf keys), the one that refuses more, so that a policy
 * taskd takes is one SNS takes.
 */
static size_t node_keys(const filter_node *n, bool leaves)
{
    size_t most = 0;
    for (size_t i = 0; i < n->nbranches; i++) {
        size_t k = node_keys(n->branches[i], leaves);
        if (k > most)
            most = k;
    }
    size_t own = 0;
    for (size_t i = 0; i < n->nfields; i++)
        own += leaves && n->fields[i].child ? node_keys(n->fields[i].child, true) : 1;
    return own + most;
}

static bool check_sns_limits(compile_ctx *c, const filter_node *root)
{
    bool body = c->dialect == DIALECT_SNS_BODY;
    size_t keys = node_keys(root, body);
    if (keys > SNS_MAX_KEYS)
        return fail(c, "too many keys: %zu%s in one alternative (a policy allows at most %d)", keys,
                    body ? " leaf keys" : "", SNS_MAX_KEYS);
    double combos = node_combinations(root, 1, c->dialect == DIALECT_SNS_BODY);
    if (combos > SNS_MAX_COMBINATIONS)
        return fail(c, "policy too complex: %.0f value combinations (at most %.0f)", combos,
                    SNS_MAX_COMBINATIONS);
    return true;
}

/* ---- compiling: entry points -------------------------------------------------------------- */

static void compile_init(compile_ctx *c, filter_dialect d, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    c->dialect = d;
    c->err = err;
    c->errlen = errlen;
    if (err && errlen > 0)
        err[0] = '\0';
}

/* Parse JSON text; NULL + "invalid JSON at line L, column C: ..." on error. */
static json_t *parse_text(compile_ctx *c, const char *text)
{
    if (!text) {
        fail(c, "%s is missing (NULL text)", dialect_what(c));
        return NULL;
    }
    json_error_t e;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &e);
    if (!j)
        fail(c, "invalid JSON at line %d, column %d: %s", e.line, e.column, e.text);
    return j;
}

/* Characters as AWS counts a string's length: UTF-16 code units of the UTF-8 text. */
static size_t utf16_units(const char *s, size_t bytes)
{
    size_t n = 0;
    for (size_t i = 0; i < bytes; i++) {
        unsigned char b = (unsigned char)s[i];
        n += !utf8_is_cont((char)b); /* a character's first byte */
        n += b >= 0xF0;              /* past U+FFFF: a surrogate pair */
    }
    return n;
}

/* The text's size within its dialect's limit (Lambda's Pattern, SNS's FilterPolicy)? */
static bool size_within(compile_ctx *c, const char *text, size_t bytes)
{
    if (c->dialect == DIALECT_LAMBDA) {
        size_t chars = utf16_units(text, bytes);
        if (chars > LAMBDA_MAX_PATTERN)
            return fail(c, "pattern too large: %zu characters (at most %d)", chars,
                        LAMBDA_MAX_PATTERN);
    } else if (bytes > SNS_MAX_POLICY_BYTES) {
        return fail(c, "policy too large: %zu bytes (at most %d)", bytes, SNS_MAX_POLICY_BYTES);
    }
    return true;
}

/* A pattern or policy given as JSON is measured as its compact text, the form AWS is sent, with
 * each number as short as it reads back (0.1, not json_dumps' 0.10000000000000001). */
static bool json_size_within(compile_ctx *c, const json_t *obj)
{
    char *text = json_to_text(obj);
    if (!text)
        return fail(c, "out of memory measuring %s", dialect_what(c));
    bool ok = size_within(c, text, strlen(text));
    free(text);
    return ok;
}

/* Compile a whole pattern or policy object into a root node. */
static filter_node *compile_root(compile_ctx *c, const json_t *obj)
{
    if (!obj) {
        fail(c, "%s is missing (NULL)", dialect_what(c));
        return NULL;
    }
    if (!json_is_object(obj)) {
        fail(c, "%s must be a JSON object, not %s", dialect_what(c), type_name(obj));
        return NULL;
    }
    if (!json_size_within(c, obj))
        return NULL;
    filter_node *root = alloc_zero(c, 1, sizeof *root);
    if (!root)
        return NULL;
    /* An empty policy is how SNS says "no filtering"; an empty Lambda pattern is invalid. */
    bool empty_ok = c->dialect != DIALECT_LAMBDA && json_object_size(obj) == 0;
    if (!empty_ok && !compile_node(c, root, obj)) {
        node_free(root);
        return NULL;
    }
    if (c->dialect != DIALECT_LAMBDA && !check_sns_limits(c, root)) {
        node_free(root);
        return NULL;
    }
    if (c->nabsent > ABSENT_MAX) { /* past the limits above, never: the answers have room */
        fail(c, "too many \"exists\": false rules: %zu (at most %d)", c->nabsent, ABSENT_MAX);
        node_free(root);
        return NULL;
    }
    return root;
}

filter_pattern *filter_pattern_compile_json(const json_t *pattern, char *err, size_t errlen)
{
    compile_ctx c;
    compile_init(&c, DIALECT_LAMBDA, err, errlen);
    filter_node *root = compile_root(&c, pattern);
    if (!root)
        return NULL;
    filter_pattern *p = alloc_zero(&c, 1, sizeof *p);
    if (!p) {
        node_free(root);
        return NULL;
    }
    p->root = root;
    p->nabsent = c.nabsent;
    return p;
}

filter_pattern *filter_pattern_compile(const char *json_text, char *err, size_t errlen)
{
    compile_ctx c;
    compile_init(&c, DIALECT_LAMBDA, err, errlen);
    if (json_text && !size_within(&c, json_text, strlen(json_text)))
        return NULL;
    json_t *j = parse_text(&c, json_text);
    if (!j)
        return NULL;
    filter_pattern *p = filter_pattern_compile_json(j, err, errlen);
    json_decref(j);
    return p;
}

void filter_pattern_free(filter_pattern *p)
{
    if (!p)
        return;
    node_free(p->root);
    free(p);
}

filter_set *filter_set_compile(const char *const *patterns, size_t n, char *err, size_t errlen)
{
    compile_ctx c;
    compile_init(&c, DIALECT_LAMBDA, err, errlen);
    if (n > 0 && !patterns) {
        fail(&c, "filter set: %zu patterns announced but the list is NULL", n);
        return NULL;
    }
    filter_set *s = alloc_zero(&c, 1, sizeof *s);
    if (!s)
        return NULL;
    s->items = alloc_zero(&c, n, sizeof *s->items);
    if (!s->items) {
        free(s);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        char msg[512];
        s->items[i] = filter_pattern_compile(patterns[i], msg, sizeof msg);
        if (!s->items[i]) {
            fail(&c, "filter %zu: %s", i, msg);
            filter_set_free(s);
            return NULL;
        }
        s->n = i + 1;
    }
    return s;
}

size_t filter_set_count(const filter_set *s)
{
    return s ? s->n : 0;
}

void filter_set_free(filter_set *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        filter_pattern_free(s->items[i]);
    free(s->items);
    free(s);
}

filter_policy *filter_policy_compile_json(const json_t *policy, filter_scope scope, char *err,
                                          size_t errlen)
{
    compile_ctx c;
    compile_init(&c, scope == FILTER_SCOPE_BODY ? DIALECT_SNS_BODY : DIALECT_SNS_ATTRS, err,
                 errlen);
    filter_node *root = compile_root(&c, policy);
    if (!root)
        return NULL;
    filter_policy *p = alloc_zero(&c, 1, sizeof *p);
    if (!p) {
        node_free(root);
        return NULL;
    }
    p->scope = scope;
    p->root = root;
    p->nabsent = c.nabsent;
    return p;
}

filter_policy *filter_policy_compile(const char *json_text, filter_scope scope, char *err,
                                     size_t errlen)
{
    compile_ctx c;
    compile_init(&c, scope == FILTER_SCOPE_BODY ? DIALECT_SNS_BODY : DIALECT_SNS_ATTRS, err,
                 errlen);
    if (json_text && !size_within(&c, json_text, strlen(json_text)))
        return NULL;
    json_t *j = parse_text(&c, json_text);
    if (!j)
        return NULL;
    filter_policy *p = filter_policy_compile_json(j, scope, err, errlen);
    json_decref(j);
    return p;
}

filter_scope filter_policy_scope(const filter_policy *p)
{
    return p ? p->scope : FILTER_SCOPE_ATTRIBUTES;
}

void filter_policy_free(filter_policy *p)
{
    if (!p)
        return;
    node_free(p->root);
    free(p);
}

/* ---- matching: values --------------------------------------------------------------------- */

typedef enum fval_kind { FV_NULL, FV_BOOL, FV_STR, FV_NUM } fval_kind;

/* One scalar value seen by a leaf, borrowed from a JSON value or an attribute. */
typedef struct fval {
    fval_kind kind;
    bool b;
    const char *s; /* FV_STR: NUL-terminated */
    size_t len;
    filter_num num;
} fval;

typedef struct match_ctx {
    filter_dialect dialect;
    size_t nattrs;  /* attribute scope: attributes that take part in filtering */
    size_t nabsent; /* leaves with "exists": false in the pattern or policy */
    /* inside the outermost record array (matched element by element): bit absent_slot set when
     * some element holds a value at that leaf; NULL outside one */
    const unsigned char *held;
} match_ctx;

/* Where a leaf's values come from: a JSON value (arrays are searched), one value, or nothing. */
typedef struct value_src {
    const json_t *json;
    const fval *one;
} value_src;

/* False for arrays and objects, which are not scalar values. */
static bool fval_of_json(const json_t *j, fval *out)
{
    *out = (fval){0};
    switch (json_typeof(j)) {
    case JSON_NULL:
        out->kind = FV_NULL;
        return true;
    case JSON_TRUE:
    case JSON_FALSE:
        out->kind = FV_BOOL;
        out->b = json_is_true(j);
        return true;
    case JSON_STRING:
        out->kind = FV_STR;
        out->s = json_string_value(j);
        out->len = json_string_length(j);
        return true;
    case JSON_INTEGER:
    case JSON_REAL:
        out->kind = FV_NUM;
        out->num = num_of(j);
        return true;
    case JSON_OBJECT:
    case JSON_ARRAY:
        break;
    }
    return false;
}

static bool bytes_eq(const char *a, size_t alen, const char *b, size_t blen)
{
    return alen == blen && memcmp(a, b, alen) == 0;
}

static bool bytes_prefix(const fval *v, const filter_lit *p)
{
    return v->len >= p->len && memcmp(v->s, p->s, p->len) == 0;
}

static bool bytes_suffix(const fval *v, const filter_lit *p)
{
    return v->len >= p->len && memcmp(v->s + v->len - p->len, p->s, p->len) == 0;
}

static unsigned char ascii_lower(unsigned char ch)
{
    return (ch >= 'A' && ch <= 'Z') ? (unsigned char)(ch - 'A' + 'a') : ch;
}

/* Case-insensitive for ASCII letters; other bytes compare exactly. */
static bool bytes_eq_ignore_case(const fval *v, const filter_lit *p)
{
    if (v->len != p->len)
        return false;
    for (size_t i = 0; i < p->len; i++)
        if (ascii_lower((unsigned char)v->s[i]) != ascii_lower((unsigned char)p->s[i]))
            return false;
    return true;
}

/* Exact-number rules: Lambda compares the JSON form (integer vs real, then value); SNS compares
 * numerically. */
static bool num_exact_eq(const filter_num *a, const filter_num *b, filter_dialect d)
{
    if (d != DIALECT_LAMBDA)
        return a->d == b->d;
    if (a->is_int != b->is_int)
        return false;
    return a->is_int ? a->i == b->i : a->d == b->d;
}

/* anything-but values: strings exactly, numbers as an exact-number rule compares them. */
static bool lit_matches(const filter_lit *l, const fval *v, filter_dialect d)
{
    if (l->is_num)
        return v->kind == FV_NUM && num_exact_eq(&v->num, &l->num, d);
    return v->kind == FV_STR && bytes_eq(v->s, v->len, l->s, l->len);
}

static bool range_holds(const filter_range *rg, double x)
{
    if (rg->has_lo && (rg->lo_incl ? x < rg->lo : x <= rg->lo))
        return false;
    if (rg->has_hi && (rg->hi_incl ? x > rg->hi : x >= rg->hi))
        return false;
    return true;
}

static bool cidr_holds(const filter_rule *r, const fval *v)
{
    char buf[INET6_ADDRSTRLEN];
    unsigned char a[16];
    if (v->len == 0 || v->len >= sizeof buf || memchr(v->s, '\0', v->len))
        return false;
    memcpy(buf, v->s, v->len);
    buf[v->len] = '\0';
    if (inet_pton(r->family, buf, a) != 1)
        return false;
    unsigned full = r->bits / 8, rest = r->bits % 8;
    if (memcmp(a, r->net, full) != 0)
        return false;
    if (rest == 0)
        return true;
    unsigned char mask = (unsigned char)(0xFFu << (8 - rest));
    return (a[full] & mask) == r->net[full];
}

/* One non-exists rule against one scalar value. */
static bool rule_holds(const filter_rule *r, const fval *v, filter_dialect d)
{
    bool sns = d != DIALECT_LAMBDA;
    switch (r->kind) {
    case RULE_NULL:
        return v->kind == FV_NULL;
    case RULE_BOOL:
        return v->kind == FV_BOOL && v->b == r->flag;
    case RULE_STRING:
        return v->kind == FV_STR && bytes_eq(v->s, v->len, r->lit.s, r->lit.len);
    case RULE_NUMBER:
        return v->kind == FV_NUM && num_exact_eq(&v->num, &r->lit.num, d);
    case RULE_PREFIX:
        return v->kind == FV_STR && bytes_prefix(v, &r->lit);
    case RULE_SUFFIX:
        return v->kind == FV_STR && bytes_suffix(v, &r->lit);
    case RULE_EQUALS_IGNORE_CASE:
        return v->kind == FV_STR && bytes_eq_ignore_case(v, &r->lit);
    case RULE_ANYTHING_BUT:
        if (sns && v->kind == FV_NULL)
            return false;
        for (size_t i = 0; i < r->nlist; i++)
            if (lit_matches(&r->list[i], v, d))
                return false;
        return true;
    case RULE_ANYTHING_BUT_PREFIX:
        return !(sns && v->kind == FV_NULL) && !(v->kind == FV_STR && bytes_prefix(v, &r->lit));
    case RULE_ANYTHING_BUT_SUFFIX:
        return !(sns && v->kind == FV_NULL) && !(v->kind == FV_STR && bytes_suffix(v, &r->lit));
    case RULE_ANYTHING_BUT_IGNORE_CASE:
        if (sns && v->kind == FV_NULL)
            return false;
        for (size_t i = 0; i < r->nlist; i++)
            if (v->kind == FV_STR && bytes_eq_ignore_case(v, &r->list[i]))
                return false;
        return true;
    case RULE_NUMERIC:
        return v->kind == FV_NUM && range_holds(&r->range, v->num.d);
    case RULE_CIDR:
        return v->kind == FV_STR && cidr_holds(r, v);
    case RULE_EXISTS:
        break;
    }
    return false;
}

/* Does the value (searching arrays at any depth) hold a scalar satisfying the rule? */
static bool json_any_holds(const filter_rule *r, const json_t *j, filter_dialect d)
{
    if (json_is_array(j)) {
        for (size_t i = 0; i < json_array_size(j); i++)
            if (json_any_holds(r, json_array_get(j, i), d))
                return true;
        return false;
    }
    fval v;
    return fval_of_json(j, &v) && rule_holds(r, &v, d);
}

/* A value counts for "exists": any scalar for Lambda; SNS also wants it non-null and non-empty. */
static bool fval_exists(const fval *v, filter_dialect d)
{
    if (d == DIALECT_LAMBDA)
        return true;
    return v->kind != FV_NULL && !(v->kind == FV_STR && v->len == 0);
}

static bool json_exists(const json_t *j, filter_dialect d)
{
    if (json_is_array(j)) {
        for (size_t i = 0; i < json_array_size(j); i++)
            if (json_exists(json_array_get(j, i), d))
                return true;
        return false;
    }
    fval v;
    return fval_of_json(j, &v) && fval_exists(&v, d);
}

/* Set in held the bit of each leaf with "exists": false below n that has a value in j (arrays
 * searched at any depth). */
static void mark_held(const filter_node *n, const json_t *j, unsigned char *held, filter_dialect d)
{
    if (json_is_array(j)) {
        for (size_t i = 0; i < json_array_size(j); i++)
            mark_held(n, json_array_get(j, i), held, d);
        return;
    }
    if (!json_is_object(j))
        return;
    for (size_t i = 0; i < n->nfields; i++) {
        const filter_field *f = &n->fields[i];
        const json_t *v = json_object_get(j, f->name);
        if (!v)
            continue;
        if (f->child)
            mark_held(f->child, v, held, d);
        else if (f->asks_absent && json_exists(v, d))
            held[f->absent_slot / 8] |= (unsigned char)(1u << (f->absent_slot % 8));
    }
    for (size_t i = 0; i < n->nbranches; i++)
        mark_held(n->branches[i], j, held, d);
}

/* A leaf absent from one element of a record array is absent only if no element holds it. */
static bool absent_in_scope(const filter_field *f, const match_ctx *m)
{
    return !m->held || !(m->held[f->absent_slot / 8] & (1u << (f->absent_slot % 8)));
}

static bool leaf_matches(const filter_field *f, const value_src *src, const match_ctx *m)
{
    int exists = -1; /* computed on first use */
    for (size_t i = 0; i < f->nrules; i++) {
        const filter_rule *r = &f->rules[i];
        if (r->kind == RULE_EXISTS) {
            if (exists < 0)
                exists = src->one    ? fval_exists(src->one, m->dialect)
                         : src->json ? json_exists(src->json, m->dialect)
                                     : 0;
            if (r->flag && exists)
                return true;
            if (!r->flag && !exists && (m->dialect != DIALECT_SNS_ATTRS || m->nattrs > 0) &&
                absent_in_scope(f, m))
                return true;
        } else if (src->one ? rule_holds(r, src->one, m->dialect)
                            : src->json && json_any_holds(r, src->json, m->dialect)) {
            return true;
        }
    }
    return false;
}

/* ---- matching: JSON records and bodies ---------------------------------------------------- */

static bool node_matches_json(const filter_node *n, const json_t *obj, const match_ctx *m,
                              bool top);

/* A child node over the objects of an array (at any depth): true when one matches whole. */
static bool array_has_match(const filter_node *n, const json_t *arr, const match_ctx *m,
                            bool *saw_object)
{
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const json_t *e = json_array_get(arr, i);
        if (json_is_array(e) && array_has_match(n, e, m, saw_object))
            return true;
        if (json_is_object(e)) {
            *saw_object = true;
            if (node_matches_json(n, e, m, false))
                return true;
        }
    }
    return false;
}

/* Lambda's SQS rule: a "body" holding JSON text is matched as that JSON (object or array). */
static json_t *decode_body(const json_t *v)
{
    if (!json_is_string(v))
        return NULL;
    return json_loadb(json_string_value(v), json_string_length(v), 0, NULL);
}

/* A child node over a record array: one object element matches it whole, or, with none, the
 * absent subtree does. */
static bool array_matches(const filter_node *n, const json_t *arr, const match_ctx *m)
{
    bool saw_object = false;
    if (array_has_match(n, arr, m, &saw_object))
        return true;
    return !saw_object && node_matches_json(n, NULL, m, false);
}

static bool child_matches(const filter_node *n, const json_t *v, const match_ctx *m, bool body)
{
    if (json_is_object(v))
        return node_matches_json(n, v, m, false);
    if (json_is_array(v)) {
        if (m->held)
            return array_matches(n, v, m);
        /* the outermost array: "exists": false asks all of it, answered in one walk */
        unsigned char held[ABSENT_MAX / 8] = {0};
        if (m->nabsent > 0)
            mark_held(n, v, held, m->dialect);
        match_ctx in_array = *m;
        in_array.held = held;
        return array_matches(n, v, &in_array);
    }
    if (body && json_is_string(v)) {
        json_t *decoded = decode_body(v);
        if (!decoded)
            return false; /* plain text where the pattern expects JSON: dropped */
        bool ok = child_matches(n, decoded, m, false);
        json_decref(decoded);
        return ok;
    }
    return node_matches_json(n, NULL, m, false); /* absent, or a scalar: nothing below it */
}

static bool field_matches_json(const filter_field *f, const json_t *obj, const match_ctx *m,
                               bool top)
{
    const json_t *v = obj ? json_object_get(obj, f->name) : NULL;
    bool body = top && m->dialect == DIALECT_LAMBDA && strcmp(f->name, "body") == 0;
    if (f->child)
        return child_matches(f->child, v, m, body);
    if (body) {
        json_t *decoded = decode_body(v);
        if (decoded) {
            json_decref(decoded);
            return false; /* JSON text where the pattern expects plain text: dropped */
        }
    }
    value_src src = {.json = v};
    return leaf_matches(f, &src, m);
}

/* obj is a JSON object, or NULL when the whole subtree is absent. */
static bool node_matches_json(const filter_node *n, const json_t *obj, const match_ctx *m, bool top)
{
    for (size_t i = 0; i < n->nfields; i++)
        if (!field_matches_json(&n->fields[i], obj, m, top))
            return false;
    if (n->nbranches == 0)
        return true;
    for (size_t i = 0; i < n->nbranches; i++)
        if (node_matches_json(n->branches[i], obj, m, top))
            return true;
    return false;
}

bool filter_pattern_match(const filter_pattern *p, const json_t *record)
{
    if (!p || !json_is_object(record))
        return false;
    match_ctx m = {.dialect = DIALECT_LAMBDA, .nabsent = p->nabsent};
    return node_matches_json(p->root, record, &m, true);
}

bool filter_set_match(const filter_set *s, const json_t *record)
{
    if (!s || s->n == 0)
        return true;
    for (size_t i = 0; i < s->n; i++)
        if (filter_pattern_match(s->items[i], record))
            return true;
    return false;
}

/* Whether name is one of carried (NULL-terminated; NULL: any name may be carried). */
static bool may_be_carried(const char *const *carried, const char *name)
{
    if (!carried)
        return true;
    for (size_t i = 0; carried[i]; i++)
        if (strcmp(carried[i], name) == 0)
            return true;
    return false;
}

/*
 * True when n cannot match an object whose field name is v: one of its leaf fields of that name
 * refuses v, one on a field no object carries (carried; NULL: any may be) refuses its absence, or
 * every one of its "$or" branches is excluded. A leaf's verdict depends on its field's value
 * alone, so the rest of the object does not matter.
 */
static bool node_excludes(const filter_node *n, const char *name, const json_t *v,
                          const char *const *carried, const match_ctx *m)
{
    for (size_t i = 0; i < n->nfields; i++) {
        const filter_field *f = &n->fields[i];
        if (f->child)
            continue;
        value_src src = {.json = v}, absent = {0};
        if (strcmp(f->name, name) == 0
                ? !leaf_matches(f, &src, m)
                : !may_be_carried(carried, f->name) && !leaf_matches(f, &absent, m))
            return true;
    }
    if (n->nbranches == 0)
        return false;
    for (size_t i = 0; i < n->nbranches; i++)
        if (!node_excludes(n->branches[i], name, v, carried, m))
            return false;
    return true;
}

bool filter_set_may_match_field(const filter_set *s, const char *name, const char *value)
{
    if (!s || s->n == 0 || !value || strcmp(name, "body") == 0) /* "body" may be decoded JSON */
        return true;
    json_t *v = json_string(value);
    if (!v)
        return true;
    match_ctx m = {.dialect = DIALECT_LAMBDA};
    bool may = false;
    for (size_t i = 0; i < s->n && !may; i++)
        may = !node_excludes(s->items[i]->root, name, v, NULL, &m);
    json_decref(v);
    return may;
}

/* True when n tests nothing but the leaf field name (in "$or" branches too). */
static bool node_only_field(const filter_node *n, const char *name)
{
    for (size_t i = 0; i < n->nfields; i++)
        if (n->fields[i].child || strcmp(n->fields[i].name, name) != 0)
            return false;
    for (size_t i = 0; i < n->nbranches; i++)
        if (!node_only_field(n->branches[i], name))
            return false;
    return true;
}

bool filter_set_decided_by_field(const filter_set *s, const char *name)
{
    if (strcmp(name, "body") == 0) /* may be decoded JSON */
        return false;
    for (size_t i = 0; s && i < s->n; i++)
        if (!node_only_field(s->items[i]->root, name))
            return false;
    return true;
}

bool filter_policy_may_match_attr(const filter_policy *p, const char *name, const char *value,
                                  const char *const *carried)
{
    if (!p || p->scope != FILTER_SCOPE_ATTRIBUTES || !value)
        return true;
    json_t *v = json_string(value);
    if (!v)
        return true;
    /* the message carries name, at least: "exists": false on one absent can hold */
    match_ctx m = {.dialect = DIALECT_SNS_ATTRS, .nattrs = 1};
    bool may = !node_excludes(p->root, name, v, carried, &m);
    json_decref(v);
    return may;
}

bool filter_policy_match_body(const filter_policy *p, const json_t *body)
{
    if (!p || (p->root->nfields == 0 && p->root->nbranches == 0))
        return true;
    if (p->scope != FILTER_SCOPE_BODY || !json_is_object(body))
        return false;
    match_ctx m = {.dialect = DIALECT_SNS_BODY, .nabsent = p->nabsent};
    return node_matches_json(p->root, body, &m, false);
}

/* ---- matching: message attributes --------------------------------------------------------- */

typedef enum attr_kind { ATTR_IGNORED, ATTR_STRING, ATTR_NUMBER, ATTR_ARRAY } attr_kind;

/* By data type; custom labels ("Number.float") keep the base type. */
static attr_kind attr_kind_of(const filter_attr *a)
{
    if (!a->name || !a->value)
        return ATTR_IGNORED;
    const char *t = a->type ? a->type : "String";
    if (strcmp(t, "String.Array") == 0)
        return ATTR_ARRAY;
    if (strcmp(t, "String") == 0 || strncmp(t, "String.", 7) == 0)
        return ATTR_STRING;
    if (strcmp(t, "Number") == 0 || strncmp(t, "Number.", 7) == 0)
        return ATTR_NUMBER;
    return ATTR_IGNORED; /* Binary and unknown types take no part in filtering */
}

/* A Number attribute's text: optional sign, digits with an optional fraction, optional exponent. */
static bool parse_number_text(const char *s, double *out)
{
    const char *p = s;
    if (*p == '-' || *p == '+')
        p++;
    size_t digits = 0;
    for (; *p >= '0' && *p <= '9'; p++)
        digits++;
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++)
            digits++;
    if (digits == 0)
        return false;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '-' || *p == '+')
            p++;
        if (*p < '0' || *p > '9')
            return false;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p != '\0')
        return false;
    *out = strtod(s, NULL);
    return true;
}

static const filter_attr *attr_find(const filter_attr *attrs, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (attr_kind_of(&attrs[i]) != ATTR_IGNORED && strcmp(attrs[i].name, name) == 0)
            return &attrs[i];
    return NULL;
}

static bool field_matches_attrs(const filter_field *f, const filter_attr *attrs, size_t n,
                                const match_ctx *m)
{
    const filter_attr *a = attr_find(attrs, n, f->name);
    value_src src = {0};
    fval one = {0};
    json_t *array = NULL;
    if (a) {
        switch (attr_kind_of(a)) {
        case ATTR_STRING:
            one = (fval){.kind = FV_STR, .s = a->value, .len = strlen(a->value)};
            src.one = &one;
            break;
        case ATTR_NUMBER:
            if (parse_number_text(a->value, &one.num.d)) {
                one.kind = FV_NUM;
                src.one = &one;
            }
            break;
        case ATTR_ARRAY:
            array = json_loads(a->value, 0, NULL);
            if (json_is_array(array))
                src.json = array;
            break;
        case ATTR_IGNORED:
            break;
        }
    }
    bool ok = leaf_matches(f, &src, m);
    json_decref(array);
    return ok;
}

static bool node_matches_attrs(const filter_node *node, const filter_attr *attrs, size_t n,
                               const match_ctx *m)
{
    for (size_t i = 0; i < node->nfields; i++)
        if (!field_matches_attrs(&node->fields[i], attrs, n, m))
            return false;
    if (node->nbranches == 0)
        return true;
    for (size_t i = 0; i < node->nbranches; i++)
        if (node_matches_attrs(node->branches[i], attrs, n, m))
            return true;
    return false;
}

bool filter_policy_match_attrs(const filter_policy *p, const filter_attr *attrs, size_t n)
{
    if (!p || (p->root->nfields == 0 && p->root->nbranches == 0))
        return true;
    if (p->scope != FILTER_SCOPE_ATTRIBUTES || (n > 0 && !attrs))
        return false;
    match_ctx m = {.dialect = DIALECT_SNS_ATTRS};
    for (size_t i = 0; i < n; i++)
        if (attr_kind_of(&attrs[i]) != ATTR_IGNORED)
            m.nattrs++;
    return node_matches_attrs(p->root, attrs, n, &m);
}
