#include "common/metrics.h"

#include <math.h>
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

static double value_of(const struct dsf_metric *x)
{
    if (x->u64)
        return (double)dsf_read(x->u64);
    if (x->dbl)
        return *x->dbl;
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
    else
        buf_printf(out, "%.17g", v);
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
        prom_family(out, x->name, x->type == DSF_COUNTER ? "counter" : "gauge", x->help);
        for (const struct dsf_metric *y = x; y; y = y->next) {
            if (strcmp(y->name, x->name) != 0)
                continue;
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
