/*
 * metrics — counters and histograms with labels, written out in the
 * Prometheus text format (0.0.4) for GET /metrics, or as CloudWatch Embedded
 * Metric Format lines on Lambda (what changed since the last write).
 *
 * A family is declared once (name, help, type, histogram buckets); a series
 * is the family plus a label string such as `task_type="TASK1"`, created on
 * first use. Label values are given as they are: the text format's writer
 * escapes a backslash, quote or newline in them (and a backslash or newline
 * in a family's help). A value ends at the quote
 * followed by the end or by `,name="`, so a value holding that reads as two
 * labels. Updates take one short mutex hold; reading writes a snapshot.
 * The registry holds at most METRICS_MAX_SERIES series; past that, updates
 * to new label sets are ignored (and counted in taskd_metrics_overflow_total).
 */
#ifndef TASKD_METRICS_H
#define TASKD_METRICS_H

#include "core/sbuf.h"

#include <stdint.h>

#define METRICS_MAX_SERIES  512
#define METRICS_MAX_BUCKETS 16
#define METRICS_EMF_VALUES  100  /* values of one metric in one EMF object (CloudWatch's limit) */
#define METRICS_EMF_KEPT    1000 /* observations a histogram series keeps between EMF writes */

typedef struct metrics metrics;

typedef enum metric_type { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM } metric_type;

/* A new, empty registry; NULL when out of memory. */
metrics *metrics_new(void);
/* Declare a family; buckets (ascending upper bounds) only for histograms. */
void metrics_declare(metrics *m, const char *name, const char *help, metric_type type,
                     const double *buckets, int n_buckets);
/* Add n to a counter series. NULL m is fine (no-op). */
void metrics_add(metrics *m, const char *name, const char *labels, uint64_t n);
/* Set a gauge series. */
void metrics_set(metrics *m, const char *name, const char *labels, double value);
/* Record one observation in a histogram series. */
void metrics_observe(metrics *m, const char *name, const char *labels, double value);
/* Append every family in the Prometheus text format. */
void metrics_write(metrics *m, sbuf *out);

/* Keep each histogram observation (up to METRICS_EMF_KEPT per series) until the next
 * metrics_write_emf(), which writes them as values; later ones count in the overflow. */
void metrics_keep_observations(metrics *m);

typedef struct metrics_emf {
    const char *namespace_; /* the CloudWatch namespace */
    const char *service;    /* the value of the "service" dimension every metric has */
    int64_t timestamp_ms;
    const char *const *fields; /* more members, not dimensions: name, value, ..., NULL; or NULL */
} metrics_emf;

/*
 * Append what changed since the last call as CloudWatch Embedded Metric Format, one JSON object
 * per line: for each label set, one object whose dimensions are "service" and the labels, with
 * each counter's increase, each gauge that was set, and each histogram's kept observations (an
 * array; past METRICS_EMF_VALUES of them, more objects follow). Appends nothing when nothing
 * changed.
 */
void metrics_write_emf(metrics *m, const metrics_emf *o, sbuf *out);
void metrics_free(metrics *m);

#endif
