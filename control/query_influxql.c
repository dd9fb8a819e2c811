/*
 * The InfluxQL of a checked query request (control/query.h). Names come from a client, so
 * each goes in escaped: tag values as string literals ('...' with \ and ' escaped),
 * measurement, field and tag names as identifiers ("..." with \ and " escaped), even those
 * of the built-in table. Written into the caller's buffer: nothing is allocated.
 */
#include "control/query.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct out {
    char *p;
    size_t cap, len;
    int over; /* something did not fit */
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->over || o->len + n >= o->cap) {
        o->over = 1;
        return;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
    o->p[o->len] = '\0';
}

static void puts_(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

__attribute__((format(printf, 2, 3))) static void putf(struct out *o, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(tmp))
        o->over = 1;
    else
        put(o, tmp, (size_t)n);
}

/* s between quote characters q, with q and backslash escaped by a backslash. */
static void quoted(struct out *o, const char *s, char q)
{
    put(o, &q, 1);
    for (; *s; s++) {
        if (*s == q || *s == '\\')
            put(o, "\\", 1);
        put(o, s, 1);
    }
    put(o, &q, 1);
}

static void ident(struct out *o, const char *s)
{
    quoted(o, s, '"');
}

static void literal(struct out *o, const char *s)
{
    quoted(o, s, '\'');
}

static const char *fn_of(enum qp_stat s, int complement)
{
    switch (s) {
    case QP_MIN:
        return complement ? "max" : "min";
    case QP_MAX:
        return complement ? "min" : "max";
    case QP_LAST:
        return "last";
    default:
        return "mean";
    }
}

static void group_by(struct out *o, const struct qp_request *r, const char *tag1, const char *tag2)
{
    putf(o, " GROUP BY time(1%c)", r->period);
    if (tag1) {
        puts_(o, ", ");
        ident(o, tag1);
    }
    if (tag2) {
        puts_(o, ", ");
        ident(o, tag2);
    }
    puts_(o, " fill(none)");
}

static void time_range(struct out *o, const struct qp_request *r)
{
    putf(o, "time > now() - %llds", (long long)r->duration_s);
}

/* FROM the measurement WHERE the identity tags match, within the duration. */
static void from_where(struct out *o, const struct qp_request *r)
{
    const struct qp_metric *m = r->metric;
    puts_(o, " FROM ");
    ident(o, m->measurement);
    puts_(o, " WHERE \"ns\" = ");
    literal(o, r->ns);
    puts_(o, " AND \"mci\" = ");
    literal(o, r->mci);
    if (r->vm[0]) {
        puts_(o, " AND \"vm\" = ");
        literal(o, r->vm);
    }
    if (m->tag) {
        puts_(o, " AND ");
        ident(o, m->tag);
        puts_(o, " = ");
        literal(o, m->value);
    }
    puts_(o, " AND ");
    time_range(o, r);
}

/* SELECT fn("column") AS "column", ... of the columns a subquery gave. */
static void select_over(struct out *o, const struct qp_metric *m, const char *fn)
{
    puts_(o, "SELECT ");
    for (size_t i = 0; i < m->nfields; i++) {
        putf(o, "%s%s(", i ? ", " : "", fn);
        ident(o, m->fields[i].name);
        puts_(o, ") AS ");
        ident(o, m->fields[i].name);
    }
}

/* Gauges: the stat of each field per period and VM. */
static void gauges_per_vm(struct out *o, const struct qp_request *r)
{
    const struct qp_metric *m = r->metric;
    puts_(o, "SELECT ");
    for (size_t i = 0; i < m->nfields; i++) {
        const struct qp_field *f = &m->fields[i];
        putf(o, "%s%s%s(", i ? ", " : "", f->complement ? "100 - " : "",
             fn_of(r->stat, f->complement));
        ident(o, f->source);
        puts_(o, f->kib ? ") / 1024 AS " : ") AS ");
        ident(o, f->name);
    }
    from_where(o, r);
    group_by(o, r, "vm", NULL);
}

/* Counters: per-second rates per series (interface, device), summed per period and VM. */
static void counters_per_vm(struct out *o, const struct qp_request *r)
{
    const struct qp_metric *m = r->metric;
    select_over(o, m, "sum");
    puts_(o, " FROM (SELECT ");
    for (size_t i = 0; i < m->nfields; i++) {
        const struct qp_field *f = &m->fields[i];
        putf(o, "%snon_negative_derivative(last(", i ? ", " : "");
        ident(o, f->source);
        puts_(o, f->kib ? "), 1s) / 1024 AS " : "), 1s) AS ");
        ident(o, f->name);
    }
    from_where(o, r);
    group_by(o, r, "vm", m->series_tag);
    puts_(o, ") WHERE ");
    time_range(o, r);
    group_by(o, r, "vm", NULL);
}

static void per_vm(struct out *o, const struct qp_request *r)
{
    if (r->metric->series_tag)
        counters_per_vm(o, r);
    else
        gauges_per_vm(o, r);
}

int qp_influxql(const struct qp_request *r, char *buf, size_t cap)
{
    struct out o = {buf, cap, 0, cap == 0};
    if (cap)
        buf[0] = '\0';
    per_vm(&o, r);
    if (r->form == QP_MCI) {
        /* Over the VMs' rows of each period: rates add up, gauges take the stat (an average
         * for last: the VMs' last samples are not of one instant). */
        const char *fn = r->metric->series_tag ? "sum"
                         : r->stat == QP_MIN   ? "min"
                         : r->stat == QP_MAX   ? "max"
                                               : "mean";
        puts_(&o, "; ");
        select_over(&o, r->metric, fn);
        puts_(&o, " FROM (");
        per_vm(&o, r);
        puts_(&o, ") WHERE ");
        time_range(&o, r);
        group_by(&o, r, NULL, NULL);
    }
    return o.over ? -1 : (int)o.len;
}
