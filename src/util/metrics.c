/*
 * metrics — a small Prometheus registry; see metrics.h.
 *
 * Families and series live in fixed arrays; a series is found by a linear
 * scan over its family's series. With the few dozen series taskd keeps, the
 * scan is shorter than a hash and needs no resizing.
 */
#include "metrics.h"

#include <pthread.h>
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
    int n_buckets;
} family;

typedef struct series {
    int family;
    char labels[LABELS_MAX + 1];
    double value;                                /* counter total, gauge value, or histogram sum */
    uint64_t count;                              /* histogram observations */
    uint64_t bucket_counts[METRICS_MAX_BUCKETS]; /* non-cumulative */
} series;

struct metrics {
    pthread_mutex_t mu;
    family families[MAX_FAMILIES];
    int n_families;
    series series[METRICS_MAX_SERIES];
    int n_series;
    uint64_t overflow;
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
    for (int i = 0; i < f->n_buckets; i++)
        f->buckets[i] = buckets[i];
    pthread_mutex_unlock(&m->mu);
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
        return NULL;
    }
    series *s = &m->series[m->n_series++];
    memset(s, 0, sizeof *s);
    s->family = fi;
    memcpy(s->labels, labels, strlen(labels) + 1);
    return s;
}

void metrics_add(metrics *m, const char *name, const char *labels, uint64_t n)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    series *s = find(m, name, labels);
    if (s)
        s->value += (double)n;
    pthread_mutex_unlock(&m->mu);
}

void metrics_set(metrics *m, const char *name, const char *labels, double value)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    series *s = find(m, name, labels);
    if (s)
        s->value = value;
    pthread_mutex_unlock(&m->mu);
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
    }
    pthread_mutex_unlock(&m->mu);
}

/* `name{labels,extra}` with the braces only when there is something inside. */
static void put_name(sbuf *b, const char *name, const char *suffix, const char *labels,
                     const char *extra)
{
    sbuf_puts(b, name);
    sbuf_puts(b, suffix);
    bool has = labels && *labels;
    if (!has && !extra)
        return;
    sbuf_putc(b, '{');
    if (has)
        sbuf_puts(b, labels);
    if (extra) {
        if (has)
            sbuf_putc(b, ',');
        sbuf_puts(b, extra);
    }
    sbuf_putc(b, '}');
}

void metrics_write(metrics *m, sbuf *out)
{
    static const char *const types[] = {"counter", "gauge", "histogram"};
    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    for (int fi = 0; fi < m->n_families; fi++) {
        const family *f = &m->families[fi];
        sbuf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name, types[f->type]);
        for (int i = 0; i < m->n_series; i++) {
            const series *s = &m->series[i];
            if (s->family != fi)
                continue;
            if (f->type != METRIC_HISTOGRAM) {
                put_name(out, f->name, "", s->labels, NULL);
                sbuf_printf(out, " %.17g\n", s->value);
                continue;
            }
            uint64_t cumulative = 0;
            for (int bi = 0; bi < f->n_buckets; bi++) {
                char le[48];
                cumulative += s->bucket_counts[bi];
                snprintf(le, sizeof le, "le=\"%g\"", f->buckets[bi]);
                put_name(out, f->name, "_bucket", s->labels, le);
                sbuf_printf(out, " %llu\n", (unsigned long long)cumulative);
            }
            put_name(out, f->name, "_bucket", s->labels, "le=\"+Inf\"");
            sbuf_printf(out, " %llu\n", (unsigned long long)s->count);
            put_name(out, f->name, "_sum", s->labels, NULL);
            sbuf_printf(out, " %.17g\n", s->value);
            put_name(out, f->name, "_count", s->labels, NULL);
            sbuf_printf(out, " %llu\n", (unsigned long long)s->count);
        }
    }
    sbuf_printf(out,
                "# HELP taskd_metrics_overflow_total Updates dropped: too many series.\n"
                "# TYPE taskd_metrics_overflow_total counter\ntaskd_metrics_overflow_total %llu\n",
                (unsigned long long)m->overflow);
    pthread_mutex_unlock(&m->mu);
}

void metrics_free(metrics *m)
{
    if (!m)
        return;
    pthread_mutex_destroy(&m->mu);
    free(m);
}
