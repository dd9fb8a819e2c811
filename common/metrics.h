/*
 * Self-metrics: components register pointers to their own counters and gauges once at
 * start; rendering walks the registry and writes Prometheus text. Updating a counter is an
 * atomic add on the component's own variable, from any thread, with no allocation.
 */
#ifndef DSF_METRICS_H
#define DSF_METRICS_H

#include <stdint.h>

#include "common/buf.h"

enum dsf_metric_type { DSF_COUNTER, DSF_GAUGE, DSF_HISTOGRAM };

/* A histogram owned by one thread (the event loop): observe and render from there. */
struct dsf_histogram {
    const double *bounds; /* upper bounds, ascending */
    size_t nbounds;
    uint64_t *counts; /* nbounds + 1: the last counts what is above every bound */
    uint64_t count;
    double sum;
};
/* 0, or -1 out of memory. bounds must outlive the histogram. */
int dsf_histogram_init(struct dsf_histogram *h, const double *bounds, size_t nbounds);
/* Records weight observations of value v. */
void dsf_histogram_observe(struct dsf_histogram *h, double v, uint64_t weight);
void dsf_histogram_free(struct dsf_histogram *h);

struct dsf_metric;
struct dsf_metrics {
    struct dsf_metric *head, *tail;
};

static inline void dsf_count(uint64_t *counter, uint64_t n)
{
    __atomic_add_fetch(counter, n, __ATOMIC_RELAXED);
}
static inline uint64_t dsf_read(const uint64_t *counter)
{
    return __atomic_load_n(counter, __ATOMIC_RELAXED);
}

/* labels: Prometheus label pairs without braces, e.g. `input="cpu"`, or NULL. */
void metrics_add_u64(struct dsf_metrics *m, const char *name, enum dsf_metric_type type,
                     const char *help, const char *labels, const uint64_t *value);
/* One series per value of one label: counters[i] as name{label="values[i]"}; a NULL value
 * is skipped (its counter is not exported). */
void metrics_add_u64_by(struct dsf_metrics *m, const char *name, enum dsf_metric_type type,
                        const char *help, const char *label, const char *const *values, size_t n,
                        const uint64_t *counters);
void metrics_add_double(struct dsf_metrics *m, const char *name, enum dsf_metric_type type,
                        const char *help, const char *labels, const double *value);
void metrics_add_fn(struct dsf_metrics *m, const char *name, enum dsf_metric_type type,
                    const char *help, const char *labels, double (*fn)(void *), void *arg);
void metrics_add_histogram(struct dsf_metrics *m, const char *name, const char *help,
                           const char *labels, const struct dsf_histogram *h);
void metrics_render(const struct dsf_metrics *m, struct dsf_buf *out);
void metrics_free(struct dsf_metrics *m);
/* Value of the first metric with this name and labels (for tests and logs); -1 if none. */
double metrics_value(const struct dsf_metrics *m, const char *name, const char *labels);

/* Prometheus text helpers shared by every exporter. */
void prom_family(struct dsf_buf *out, const char *name, const char *type, const char *help);
void prom_label_value(struct dsf_buf *out, const char *v); /* escapes \ " and newline */
void prom_value(struct dsf_buf *out, double v);
/* One sample line: name{k1="v1",...} value, label values escaped. The labels are key/value
 * string pairs ending with a NULL key (a NULL key also ends them early: an optional last
 * label can be passed as `cond ? "key" : NULL, value`). */
void prom_labeled_sample(struct dsf_buf *out, const char *name, double value, ...)
    __attribute__((sentinel));

#endif
