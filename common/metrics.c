#include "common/metrics.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct dsf_metric {
    struct dsf_metric *next;
    char *name, *help, *labels;
    enum dsf_metric_type type;
    const uint64_t *u64;
    const double *dbl;
    double (*fn)(void *);
    void *arg;
    const struct dsf_histogram *hist;
};

static struct dsf_metric *add(struct dsf_metrics *m, const char *name, enum dsf_metric_type type,
                              const char *help, const char *labels)
{
    struct dsf_metric *x = calloc(1, sizeof(*x));
    if (!x)
        return NULL;
    x->name = strdup(name);
    x->help = strdup(help);
    x->labels = labels ? strdup(labels) : NULL;
    x->type = type;
    if (m->tail)
        m->tail->next = x;
    else
        m->head = x;
    m->tail = x;
    return x;
}

void metrics_add_u64(struct dsf_metrics *m, const char *name, enum dsf_metric_type type,
                     const char *help, const char *labels, const uint64_t *value)
{
    struct dsf_metric *x = add(m, name, type, help, labels);
    if (x)
        x->u64 = value;
}

void metrics_add_u64_by(struct dsf_metrics *m, const char *name, enum dsf_metric_type type,
                        const char *help, const char *label, const char *const *values, size_t n,
                        const uint64_t *counters)
{
    char labels[256];
    for (size_t i = 0; i < n; i++) {
        if (!values[i])
            continue;
        snprintf(labels, sizeof(labels), "%s=\"%s\"", label, values[i]);
        metrics_add_u64(m, name, type, help, labels, &counters[i]);
    }
}

void metrics_add_double(struct dsf_metrics *m, const char *name, enum dsf_metric_type type,
                        const char *help, const char *labels, const double *value)
{
    struct dsf_metric *x = add(m, name, type, help, labels);
    if (x)
        x->dbl = value;
}

void metrics_add_fn(struct dsf_metrics *m, const char *name, enum dsf_metric_type type,
                    const char *help, const char *labels, double (*fn)(void *), void *arg)
{
    struct dsf_metric *x = add(m, name, type, help, labels);
    if (x) {
        x->fn = fn;
        x->arg = arg;
    }
}

int dsf_histogram_init(struct dsf_histogram *h, const double *bounds, size_t nbounds)
{
    memset(h, 0, sizeof(*h));
    h->counts = calloc(nbounds + 1, sizeof(*h->counts));
    if (!h->counts)
        return -1;
    h->bounds = bounds;
    h->nbounds = nbounds;
    return 0;
}

void dsf_histogram_observe(struct dsf_histogram *h, double v, uint64_t weight)
{
    if (!h->counts)
        return;
    size_t i = 0;
    while (i < h->nbounds && v > h->bounds[i])
        i++;
    h->counts[i] += weight;
    h->count += weight;
    h->sum += v * (double)weight;
}

void dsf_histogram_free(struct dsf_histogram *h)
{
    free(h->counts);
    memset(h, 0, sizeof(*h));
}

void metrics_add_histogram(struct dsf_metrics *m, const char *name, const char *help,
                           const char *labels, const struct dsf_histogram *h)
{
    struct dsf_metric *x = add(m, name, DSF_HISTOGRAM, help, labels);
    if (x)
        x->hist = h;
}

/* name_bucket{labels,le="..."} (cumulative), name_sum, name_count. */
static void render_histogram(struct dsf_buf *out, const struct dsf_metric *x)
{
    const struct dsf_histogram *h = x->hist;
    const char *sep = x->labels && *x->labels ? "," : "";
    const char *labels = x->labels ? x->labels : "";
    uint64_t cumulative = 0;
    for (size_t i = 0; h->counts && i <= h->nbounds; i++) {
        cumulative += h->counts[i];
        buf_printf(out, "%s_bucket{%s%sle=\"", x->name, labels, sep);
        if (i < h->nbounds)
            prom_value(out, h->bounds[i]);
        else
            buf_puts(out, "+Inf");
        buf_printf(out, "\"} %llu\n", (unsigned long long)cumulative);
    }
    buf_printf(out, "%s_sum%s%s%s ", x->name, *labels ? "{" : "", labels, *labels ? "}" : "");
    prom_value(out, h->sum);
    buf_printf(out, "\n%s_count%s%s%s %llu\n", x->name, *labels ? "{" : "", labels,
               *labels ? "}" : "", (unsigned long long)h->count);
}

static const char *type_name(enum dsf_metric_type t)
{
    return t == DSF_COUNTER ? "counter" : t == DSF_GAUGE ? "gauge" : "histogram";
}

static double value_of(const struct dsf_metric *x)
{
    if (x->u64)
        return (double)dsf_read(x->u64);
    if (x->dbl)
        return *x->dbl;
    if (x->hist)
        return (double)x->hist->count;
    return x->fn(x->arg);
}

void prom_family(struct dsf_buf *out, const char *name, const char *type, const char *help)
{
    buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void prom_label_value(struct dsf_buf *out, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            buf_putc(out, '\\');
        if (*v == '\n') {
            buf_puts(out, "\\n");
            continue;
        }
        buf_putc(out, *v);
    }
}

void prom_value(struct dsf_buf *out, double v)
{
    if (isnan(v))
        buf_puts(out, "NaN");
    else if (isinf(v))
        buf_puts(out, v > 0 ? "+Inf" : "-Inf");
    else if (v == (double)(long long)v && fabs(v) < 1e15)
        buf_printf(out, "%lld", (long long)v);
    else {
        char text[32];
        snprintf(text, sizeof(text), "%.15g", v); /* the shortest that reads back exactly */
        if (strtod(text, NULL) != v)
            snprintf(text, sizeof(text), "%.17g", v);
        buf_puts(out, text);
    }
}

void prom_labeled_sample(struct dsf_buf *out, const char *name, double value, ...)
{
    buf_puts(out, name);
    va_list ap;
    va_start(ap, value);
    const char *key = va_arg(ap, const char *);
    for (char sep = '{'; key; sep = ',') {
        buf_printf(out, "%c%s=\"", sep, key);
        prom_label_value(out, va_arg(ap, const char *));
        buf_putc(out, '"');
        key = va_arg(ap, const char *);
        if (!key)
            buf_putc(out, '}');
    }
    va_end(ap);
    buf_putc(out, ' ');
    prom_value(out, value);
    buf_putc(out, '\n');
}

void metrics_render(const struct dsf_metrics *m, struct dsf_buf *out)
{
    for (const struct dsf_metric *x = m->head; x; x = x->next) {
        int first = 1;
        for (const struct dsf_metric *y = m->head; y != x; y = y->next)
            if (strcmp(y->name, x->name) == 0)
                first = 0;
        if (!first)
            continue; /* already written with its family */
        prom_family(out, x->name, type_name(x->type), x->help);
        for (const struct dsf_metric *y = x; y; y = y->next) {
            if (strcmp(y->name, x->name) != 0)
                continue;
            if (y->hist) {
                render_histogram(out, y);
                continue;
            }
            buf_puts(out, y->name);
            if (y->labels && *y->labels)
                buf_printf(out, "{%s}", y->labels);
            buf_putc(out, ' ');
            prom_value(out, value_of(y));
            buf_putc(out, '\n');
        }
    }
}

double metrics_value(const struct dsf_metrics *m, const char *name, const char *labels)
{
    for (const struct dsf_metric *x = m->head; x; x = x->next)
        if (strcmp(x->name, name) == 0 &&
            strcmp(x->labels ? x->labels : "", labels ? labels : "") == 0)
            return value_of(x);
    return -1;
}

void metrics_free(struct dsf_metrics *m)
{
    struct dsf_metric *x = m->head;
    while (x) {
        struct dsf_metric *next = x->next;
        free(x->name);
        free(x->help);
        free(x->labels);
        free(x);
        x = next;
    }
    m->head = m->tail = NULL;
}
