/*
 * metrics — a small Prometheus registry; see metrics.h.
 *
 * Families and series live in fixed arrays; a series is found by a linear
 * scan over its family's series. With the few dozen series taskd keeps, the
 * scan is shorter than a hash and needs no resizing.
 */
#include "metrics.h"

#include "log.h"

#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FAMILIES 32
#define NAME_MAX_LEN 63
#define LABELS_MAX   159

typedef struct family {
    char name[NAME_MAX_LEN + 1];
    const char *help;
    metric_type type;
    double buckets[METRICS_MAX_BUCKETS];
    char le[METRICS_MAX_BUCKETS][DOUBLE_TEXT_MAX + 5]; /* each bucket's label: le="0.25" */
    int n_buckets;
} family;

typedef struct series {
    int family;
    char labels[LABELS_MAX + 1];
    bool escape;    /* a label value holds a backslash, quote or newline: written escaped */
    double value;   /* counter total, gauge value, or histogram sum */
    uint64_t count; /* histogram observations */
    uint64_t bucket_counts[METRICS_MAX_BUCKETS]; /* non-cumulative */
    /* since the last EMF write: */
    double emitted; /* the counter's total then */
    bool set;       /* the gauge was set */
    double *kept;   /* the histogram's observations (keep mode) */
    int n_kept, cap_kept;
} series;

struct metrics {
    pthread_mutex_t mu;
    family families[MAX_FAMILIES];
    int n_families;
    series series[METRICS_MAX_SERIES];
    int n_series;
    uint64_t overflow;
    bool overflow_told;    /* its warning was logged (or is about to be) */
    bool overflow_to_tell; /* find() dropped the first: its caller warns once unlocked */
    bool keep;             /* histogram observations are kept for EMF */
};

metrics *metrics_new(void)
{
    metrics *m = calloc(1, sizeof *m);
    if (m)
        pthread_mutex_init(&m->mu, NULL);
    return m;
}

void metrics_declare(metrics *m, const char *name, const char *help, metric_type type,
                     const double *buckets, int n_buckets)
{
    if (!m || strlen(name) > NAME_MAX_LEN)
        return;
    pthread_mutex_lock(&m->mu);
    for (int i = 0; i < m->n_families; i++) {
        if (strcmp(m->families[i].name, name) == 0) {
            pthread_mutex_unlock(&m->mu); /* declared already */
            return;
        }
    }
    if (m->n_families >= MAX_FAMILIES) {
        pthread_mutex_unlock(&m->mu);
        return;
    }
    family *f = &m->families[m->n_families++];
    memcpy(f->name, name, strlen(name) + 1);
    f->help = help;
    f->type = type;
    f->n_buckets = n_buckets > METRICS_MAX_BUCKETS ? METRICS_MAX_BUCKETS : n_buckets;
    for (int i = 0; i < f->n_buckets; i++) {
        /* le is the bound as Prometheus's Go client writes it (le="1", "1.048576e+06"), however
         * many digits that takes (%g's 6 would make 1048576 and 1048577 both 1.04858e+06, a bound
         * of neither): a series named otherwise would part from its past before Prometheus 3,
         * which reads every form alike */
        char bound[DOUBLE_TEXT_MAX];
        f->buckets[i] = buckets[i];
        double_text_go(bound, buckets[i]);
        snprintf(f->le[i], sizeof f->le[i], "le=\"%s\"", bound);
    }
    pthread_mutex_unlock(&m->mu);
}

/* Whether p starts a label: a name ([a-zA-Z_][a-zA-Z0-9_]*) and =". */
static bool label_start(const char *p)
{
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_'))
        return false;
    while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
           *p == '_')
        p++;
    return p[0] == '=' && p[1] == '"';
}

/* The '"' that ends the value starting at v: the first one followed by the end of the labels or
 * by a comma and the next label. NULL when there is none. */
static const char *value_end(const char *v)
{
    for (const char *q = strchr(v, '"'); q; q = strchr(q + 1, '"'))
        if (q[1] == '\0' || (q[1] == ',' && label_start(q + 2)))
            return q;
    return NULL;
}

/*
 * Call each(key, value) for the labels `k="v",k2="v2"`, each value as it was given. Stops at
 * the first malformed label; returns whether every label was well formed.
 */
typedef void label_fn(void *ctx, const char *key, size_t key_len, const char *value,
                      size_t value_len);
static bool each_label(const char *labels, label_fn *each, void *ctx)
{
    for (const char *p = labels; *p;) {
        if (!label_start(p))
            return false;
        const char *eq = strchr(p, '=');
        const char *end = value_end(eq + 2);
        if (!end)
            return false;
        each(ctx, p, (size_t)(eq - p), eq + 2, (size_t)(end - (eq + 2)));
        p = end[1] == ',' ? end + 2 : end + 1;
    }
    return true;
}

static void note_escape(void *ctx, const char *key, size_t key_len, const char *value,
                        size_t value_len)
{
    (void)key;
    (void)key_len;
    for (size_t i = 0; i < value_len; i++)
        if (value[i] == '\\' || value[i] == '"' || value[i] == '\n')
            *(bool *)ctx = true;
}

/* Find or create the series; call with the lock held. NULL when unknown or full. */
static series *find(metrics *m, const char *name, const char *labels)
{
    int fi = -1;
    for (int i = 0; i < m->n_families && fi < 0; i++)
        if (strcmp(m->families[i].name, name) == 0)
            fi = i;
    if (fi < 0)
        return NULL;
    labels = labels ? labels : "";
    for (int i = 0; i < m->n_series; i++)
        if (m->series[i].family == fi && strcmp(m->series[i].labels, labels) == 0)
            return &m->series[i];
    if (m->n_series >= METRICS_MAX_SERIES || strlen(labels) > LABELS_MAX) {
        m->overflow++;
        if (!m->overflow_told) /* once: the counter tells how many since */
            m->overflow_told = m->overflow_to_tell = true;
        return NULL;
    }
    series *s = &m->series[m->n_series++];
    memset(s, 0, sizeof *s);
    s->family = fi;
    memcpy(s->labels, labels, strlen(labels) + 1);
    bool escape = false; /* looked for once: most series never need it */
    s->escape = each_label(s->labels, note_escape, &escape) && escape;
    return s;
}

/* Release the lock taken around find(); then warn of the first series dropped, if find() just
 * dropped it (not under the lock: a write to a stalled stderr would hold every update up). */
static void unlock_after_find(metrics *m, const char *name)
{
    bool tell = m->overflow_to_tell;
    m->overflow_to_tell = false;
    pthread_mutex_unlock(&m->mu);
    if (tell)
        log_warn("metrics: a series was dropped (too many series, or labels too long); "
                 "taskd_metrics_overflow_total counts the updates lost",
                 "metric", name, NULL);
}

void metrics_add(metrics *m, const char *name, const char *labels, uint64_t n)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    series *s = find(m, name, labels);
    if (s)
        s->value += (double)n;
    unlock_after_find(m, name);
}

void metrics_set(metrics *m, const char *name, const char *labels, double value)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    series *s = find(m, name, labels);
    if (s) {
        s->value = value;
        s->set = true;
    }
    unlock_after_find(m, name);
}

/* Keep one observation for EMF; call with the lock held. */
static void keep(metrics *m, series *s, double value)
{
    if (s->n_kept == s->cap_kept) {
        int cap = s->cap_kept ? 2 * s->cap_kept : 16;
        cap = cap > METRICS_EMF_KEPT ? METRICS_EMF_KEPT : cap;
        double *grown = cap > s->cap_kept ? realloc(s->kept, (size_t)cap * sizeof *grown) : NULL;
        if (!grown) {
            m->overflow++;
            return;
        }
        s->kept = grown;
        s->cap_kept = cap;
    }
    s->kept[s->n_kept++] = value;
}

void metrics_observe(metrics *m, const char *name, const char *labels, double value)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    series *s = find(m, name, labels);
    if (s) {
        const family *f = &m->families[s->family];
        s->value += value;
        s->count++;
        for (int i = 0; i < f->n_buckets; i++) {
            if (value <= f->buckets[i]) {
                s->bucket_counts[i]++;
                break;
            }
        }
        if (m->keep && isfinite(value))
            keep(m, s, value);
    }
    unlock_after_find(m, name);
}

/* Where put_escaped_label() writes, and whether a label was written already. */
typedef struct label_out {
    sbuf *b;
    bool more;
} label_out;

/* text[0..len) as the text format wants it: \\ for a backslash, \n for a newline, and in a label
 * value (quote) \" for a quote. */
static void put_escaped(sbuf *b, const char *text, size_t len, bool quote)
{
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (c == '\\' || (quote && c == '"'))
            sbuf_putc(b, '\\');
        if (c == '\n')
            sbuf_puts(b, "\\n");
        else
            sbuf_putc(b, c);
    }
}

/* One label, `k="v"`, its value escaped as the text format wants: \\ for a backslash, \" for a
 * quote, \n for a newline. */
static void put_escaped_label(void *ctx, const char *key, size_t key_len, const char *value,
                              size_t value_len)
{
    label_out *o = ctx;
    if (o->more)
        sbuf_putc(o->b, ',');
    o->more = true;
    sbuf_append(o->b, key, key_len);
    sbuf_puts(o->b, "=\"");
    put_escaped(o->b, value, value_len, true);
    sbuf_putc(o->b, '"');
}

/* `name{labels,extra}` with the braces only when there is something inside; the labels of a
 * series that needs no escape (or are not of the form `k="v",...`) are copied as they are. */
static void put_name(sbuf *b, const char *name, const char *suffix, const series *s,
                     const char *extra)
{
    sbuf_puts(b, name);
    sbuf_puts(b, suffix);
    bool has = *s->labels;
    if (!has && !extra)
        return;
    sbuf_putc(b, '{');
    if (has && s->escape)
        each_label(s->labels, put_escaped_label, &(label_out){b, false});
    else if (has)
        sbuf_puts(b, s->labels);
    if (extra) {
        if (has)
            sbuf_putc(b, ',');
        sbuf_puts(b, extra);
    }
    sbuf_putc(b, '}');
}

/* A sample's value, " v\n": NaN and the infinities as the text format spells them, where printf
 * would write "nan", "-nan" (the sign bit of x86's 0.0/0.0) or "inf". */
static void put_value(sbuf *b, double v)
{
    if (isnan(v))
        sbuf_puts(b, " NaN\n");
    else if (isinf(v))
        sbuf_puts(b, v > 0 ? " +Inf\n" : " -Inf\n");
    else
        sbuf_printf(b, " %.17g\n", v);
}

void metrics_write(metrics *m, sbuf *out)
{
    static const char *const types[] = {"counter", "gauge", "histogram"};
    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    for (int fi = 0; fi < m->n_families; fi++) {
        const family *f = &m->families[fi];
        sbuf_printf(out, "# HELP %s ", f->name);
        put_escaped(out, f->help, strlen(f->help), false);
        sbuf_printf(out, "\n# TYPE %s %s\n", f->name, types[f->type]);
        for (int i = 0; i < m->n_series; i++) {
            const series *s = &m->series[i];
            if (s->family != fi)
                continue;
            if (f->type != METRIC_HISTOGRAM) {
                put_name(out, f->name, "", s, NULL);
                put_value(out, s->value);
                continue;
            }
            uint64_t cumulative = 0;
            for (int bi = 0; bi < f->n_buckets; bi++) {
                cumulative += s->bucket_counts[bi];
                put_name(out, f->name, "_bucket", s, f->le[bi]);
                sbuf_printf(out, " %llu\n", (unsigned long long)cumulative);
            }
            put_name(out, f->name, "_bucket", s, "le=\"+Inf\"");
            sbuf_printf(out, " %llu\n", (unsigned long long)s->count);
            put_name(out, f->name, "_sum", s, NULL);
            put_value(out, s->value);
            put_name(out, f->name, "_count", s, NULL);
            sbuf_printf(out, " %llu\n", (unsigned long long)s->count);
        }
    }
    sbuf_printf(out,
                "# HELP taskd_metrics_overflow_total Updates dropped: too many series.\n"
                "# TYPE taskd_metrics_overflow_total counter\ntaskd_metrics_overflow_total %llu\n",
                (unsigned long long)m->overflow);
    pthread_mutex_unlock(&m->mu);
}

void metrics_keep_observations(metrics *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    m->keep = true;
    pthread_mutex_unlock(&m->mu);
}

/* ---- CloudWatch Embedded Metric Format ------------------------------------- */

/* Whether the series changed since the last EMF write. */
static bool emf_pending(const metrics *m, const series *s)
{
    switch (m->families[s->family].type) {
    case METRIC_COUNTER:
        return s->value != s->emitted;
    case METRIC_GAUGE:
        return s->set && isfinite(s->value);
    case METRIC_HISTOGRAM:
        return s->n_kept > 0;
    }
    return false;
}

static const char *emf_unit(const family *f)
{
    size_t n = strlen(f->name);
    if (n > 8 && strcmp(f->name + n - 8, "_seconds") == 0)
        return "Seconds";
    return f->type == METRIC_GAUGE ? "None" : "Count";
}

static void put_dimension_name(void *ctx, const char *key, size_t key_len, const char *value,
                               size_t value_len)
{
    (void)value;
    (void)value_len;
    sbuf_putc(ctx, ',');
    sbuf_json_strn(ctx, key, key_len);
}

static void put_dimension(void *ctx, const char *key, size_t key_len, const char *value,
                          size_t value_len)
{
    sbuf_putc(ctx, ',');
    sbuf_json_strn(ctx, key, key_len);
    sbuf_putc(ctx, ':');
    sbuf_json_strn(ctx, value, value_len);
}

/* Whether the series has something for the EMF object `part` of its label set: the first has
 * every change, the later ones only the histograms' further values. */
static bool emf_in_part(const metrics *m, const series *s, int part)
{
    if (m->families[s->family].type == METRIC_HISTOGRAM)
        return s->n_kept > part * METRICS_EMF_VALUES;
    return part == 0;
}

/* One EMF object (a line) for the series group[0..n) of one label set. */
static void emf_object(const metrics *m, const metrics_emf *o, series *const *group, int n,
                       int part, sbuf *out)
{
    const char *labels = group[0]->labels;
    sbuf_puts(out, "{\"_aws\":{\"Timestamp\":");
    sbuf_int(out, o->timestamp_ms);
    sbuf_puts(out, ",\"CloudWatchMetrics\":[{\"Namespace\":");
    sbuf_json_str(out, o->namespace_);
    sbuf_puts(out, ",\"Dimensions\":[[\"service\"");
    each_label(labels, put_dimension_name, out);
    sbuf_puts(out, "]],\"Metrics\":[");
    bool first = true;
    for (int i = 0; i < n; i++) {
        if (!emf_in_part(m, group[i], part))
            continue;
        const family *f = &m->families[group[i]->family];
        sbuf_puts(out, first ? "{\"Name\":" : ",{\"Name\":");
        sbuf_json_str(out, f->name);
        sbuf_puts(out, ",\"Unit\":\"");
        sbuf_puts(out, emf_unit(f));
        sbuf_puts(out, "\"}");
        first = false;
    }
    sbuf_puts(out, "]}]},\"service\":");
    sbuf_json_str(out, o->service);
    each_label(labels, put_dimension, out);
    for (const char *const *fl = o->fields; fl && fl[0] && fl[1]; fl += 2) {
        sbuf_putc(out, ',');
        sbuf_json_str(out, fl[0]);
        sbuf_putc(out, ':');
        sbuf_json_str(out, fl[1]);
    }
    for (int i = 0; i < n; i++) {
        series *s = group[i];
        if (!emf_in_part(m, s, part))
            continue;
        const family *f = &m->families[s->family];
        sbuf_putc(out, ',');
        sbuf_json_str(out, f->name);
        sbuf_putc(out, ':');
        if (f->type == METRIC_COUNTER) {
            sbuf_double(out, s->value - s->emitted);
        } else if (f->type == METRIC_GAUGE) {
            sbuf_double(out, s->value);
        } else {
            int from = part * METRICS_EMF_VALUES;
            int to = s->n_kept < from + METRICS_EMF_VALUES ? s->n_kept : from + METRICS_EMF_VALUES;
            sbuf_putc(out, '[');
            for (int k = from; k < to; k++) {
                if (k > from)
                    sbuf_putc(out, ',');
                sbuf_double(out, s->kept[k]);
            }
            sbuf_putc(out, ']');
        }
    }
    sbuf_puts(out, "}\n");
}

void metrics_write_emf(metrics *m, const metrics_emf *o, sbuf *out)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    bool done[METRICS_MAX_SERIES] = {false};
    series *group[METRICS_MAX_SERIES];
    for (int i = 0; i < m->n_series; i++) {
        if (done[i] || !emf_pending(m, &m->series[i]))
            continue;
        int n = 0, parts = 1;
        for (int j = i; j < m->n_series; j++) {
            series *s = &m->series[j];
            if (done[j] || strcmp(s->labels, m->series[i].labels) != 0 || !emf_pending(m, s))
                continue;
            done[j] = true;
            group[n++] = s;
            int p = (s->n_kept + METRICS_EMF_VALUES - 1) / METRICS_EMF_VALUES;
            parts = p > parts ? p : parts;
        }
        for (int part = 0; part < parts; part++)
            emf_object(m, o, group, n, part, out);
        for (int k = 0; k < n; k++) {
            group[k]->emitted = group[k]->value;
            group[k]->set = false;
            group[k]->n_kept = 0;
        }
    }
    pthread_mutex_unlock(&m->mu);
}

void metrics_free(metrics *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->n_series; i++)
        free(m->series[i].kept);
    pthread_mutex_destroy(&m->mu);
    free(m);
}
