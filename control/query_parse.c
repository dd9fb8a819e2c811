/*
 * The query API's requests checked (control/query.h): path segments and query values are
 * percent-decoded into fixed buffers, names refused when they could mean a path or a line
 * of their own (a slash, "..", control bytes) or are longer than the identity tags allow.
 * Nothing is allocated; nothing the client sent is quoted back but printable ASCII.
 */
#include "control/query.h"
#include "common/utf8.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* CB-Dragonfly's metrics and columns over the agent's Telegraf measurements and fields. */
static const struct qp_field cpu_fields[] = {
    {"cpu_utilization", "usage_idle", 1, 0},
    {"cpu_system", "usage_system", 0, 0},
    {"cpu_idle", "usage_idle", 0, 0},
    {"cpu_iowait", "usage_iowait", 0, 0},
    {"cpu_hintr", "usage_irq", 0, 0},
    {"cpu_sintr", "usage_softirq", 0, 0},
    {"cpu_user", "usage_user", 0, 0},
    {"cpu_nice", "usage_nice", 0, 0},
    {"cpu_steal", "usage_steal", 0, 0},
    {"cpu_guest", "usage_guest", 0, 0},
    {"cpu_guest_nice", "usage_guest_nice", 0, 0},
};
static const struct qp_field mem_fields[] = {
    {"mem_utilization", "used_percent", 0, 0},
    {"mem_total", "total", 0, 0},
    {"mem_used", "used", 0, 0},
    {"mem_free", "free", 0, 0},
    {"mem_shared", "shared", 0, 0},
    {"mem_buffers", "buffered", 0, 0},
    {"mem_cached", "cached", 0, 0},
};
static const struct qp_field swap_fields[] = {
    {"swap_utilization", "used_percent", 0, 0},
    {"swap_total", "total", 0, 0},
    {"swap_used", "used", 0, 0},
    {"swap_free", "free", 0, 0},
};
static const struct qp_field disk_fields[] = {
    {"disk_utilization", "used_percent", 0, 0},
    {"disk_total", "total", 0, 0},
    {"disk_used", "used", 0, 0},
    {"disk_free", "free", 0, 0},
};
static const struct qp_field diskio_fields[] = {
    {"kb_read", "read_bytes", 0, 1},
    {"kb_written", "write_bytes", 0, 1},
    {"ops_read", "reads", 0, 0},
    {"ops_write", "writes", 0, 0},
};
static const struct qp_field net_fields[] = {
    {"bytes_in", "bytes_recv", 0, 0},  {"bytes_out", "bytes_sent", 0, 0},
    {"pkts_in", "packets_recv", 0, 0}, {"pkts_out", "packets_sent", 0, 0},
    {"err_in", "err_in", 0, 0},        {"err_out", "err_out", 0, 0},
    {"drop_in", "drop_in", 0, 0},      {"drop_out", "drop_out", 0, 0},
};
static const struct qp_field system_fields[] = {
    {"load1", "load1", 0, 0},
    {"load5", "load5", 0, 0},
    {"load15", "load15", 0, 0},
};

#define FIELDS(a) a, sizeof(a) / sizeof(a[0])
static const struct qp_metric metrics[] = {
    {"cpu", "cpu", "cpu", "cpu-total", NULL, FIELDS(cpu_fields)},
    {"memory", "mem", NULL, NULL, NULL, FIELDS(mem_fields)},
    {"mem", "mem", NULL, NULL, NULL, FIELDS(mem_fields)},
    {"swap", "swap", NULL, NULL, NULL, FIELDS(swap_fields)},
    {"disk", "disk", NULL, NULL, NULL, FIELDS(disk_fields)},
    {"diskio", "diskio", NULL, NULL, "name", FIELDS(diskio_fields)},
    {"network", "net", NULL, NULL, "interface", FIELDS(net_fields)},
    {"net", "net", NULL, NULL, "interface", FIELDS(net_fields)},
    {"system", "system", NULL, NULL, NULL, FIELDS(system_fields)},
};
#undef FIELDS

const struct qp_metric *qp_metrics(size_t *n)
{
    *n = sizeof(metrics) / sizeof(metrics[0]);
    return metrics;
}

const struct qp_metric *qp_metric_find(const char *name)
{
    for (size_t i = 0; i < sizeof(metrics) / sizeof(metrics[0]); i++) {
        if (!strcmp(metrics[i].name, name))
            return &metrics[i];
    }
    return NULL;
}

const char *qp_stat_name(enum qp_stat s)
{
    static const char *const names[] = {"avg", "min", "max", "last"};
    return (unsigned)s < 4 ? names[s] : "?";
}

__attribute__((format(printf, 4, 5))) static int refuse(struct qp_error *e, int status,
                                                        const char *param, const char *fmt, ...)
{
    va_list ap;
    e->status = status;
    snprintf(e->param, sizeof(e->param), "%s", param);
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    va_end(ap);
    return -1;
}

/* s when it is short printable ASCII, so that an error may quote it; else "?". */
static const char *quotable(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 32)
        return "?";
    for (size_t i = 0; i < n; i++) {
        if (s[i] < 0x21 || s[i] > 0x7e || s[i] == '"' || s[i] == '\\')
            return "?";
    }
    return s;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Decodes n bytes of s (with '+' as a blank in a query) into out. Its length; -1 for a
 * broken escape or a NUL, -2 when it does not fit in cap - 1 bytes. */
static int decode(const char *s, size_t n, int plus, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            int hi = i + 2 < n ? hexval(s[i + 1]) : -1;
            int lo = i + 2 < n ? hexval(s[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return -1;
            c = (char)(hi * 16 + lo);
            i += 2;
        } else if (c == '+' && plus) {
            c = ' ';
        }
        if (c == '\0')
            return -1;
        if (o + 1 >= cap)
            return -2;
        out[o++] = c;
    }
    out[o] = '\0';
    return (int)o;
}

/* A name of the path (ns, mci, vm) decoded into out (QP_NAME_MAX + 1 bytes) and checked. */
static int take_name(const char *seg, size_t n, const char *param, char *out, int topic,
                     struct qp_error *e)
{
    int len = decode(seg, n, 0, out, QP_NAME_MAX + 1);
    if (len == -2)
        return refuse(e, 400, param, "%s: longer than %d bytes", param, QP_NAME_MAX);
    if (len <= 0)
        return refuse(e, 400, param, "%s: empty or a broken percent escape", param);
    for (int i = 0; i < len; i++) {
        unsigned char c = (unsigned char)out[i];
        if (c < 0x20 || c == 0x7f)
            return refuse(e, 400, param, "%s: control characters are not allowed", param);
    }
    if (strchr(out, '/') || strstr(out, ".."))
        return refuse(e, 400, param, "%s: '/' and '..' are not allowed", param);
    /* A topic level holding a wildcard would make the request reach other agents. */
    if (topic && strpbrk(out, "+#"))
        return refuse(e, 400, param, "%s: '+' and '#' are not allowed", param);
    /* It goes back in the answer's JSON, which is UTF-8. */
    if (!utf8_valid(out, (size_t)len))
        return refuse(e, 400, param, "%s: not UTF-8", param);
    return 0;
}

/* "5m", "90s", "2h", "7d", "1w": a positive count of one unit. Seconds, or -1. */
static int64_t parse_duration(const char *s)
{
    int64_t v = 0;
    size_t i = 0;
    for (; s[i] >= '0' && s[i] <= '9'; i++) {
        if (i == 7)
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    static const struct {
        char unit;
        int64_t s;
    } units[] = {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}, {'w', 7 * 86400}};
    if (i == 0 || v == 0 || s[i] == '\0' || s[i + 1] != '\0')
        return -1;
    for (size_t k = 0; k < sizeof(units) / sizeof(units[0]); k++) {
        if (s[i] == units[k].unit)
            return v * units[k].s;
    }
    return -1;
}

static int64_t period_s(char p)
{
    return p == 'm' ? 60 : p == 'h' ? 3600 : 86400;
}

static int set_period(struct qp_request *r, const char *key, const char *v, struct qp_error *e)
{
    if (strlen(v) != 1 || !strchr("mhd", v[0]))
        return refuse(e, 400, key, "%s: expected m, h or d (got '%s')", key, quotable(v));
    r->period = v[0];
    return 0;
}

static int set_stat(struct qp_request *r, const char *key, const char *v, struct qp_error *e)
{
    for (int s = QP_AVG; s <= QP_LAST; s++) {
        if (!strcmp(v, qp_stat_name((enum qp_stat)s))) {
            r->stat = (enum qp_stat)s;
            return 0;
        }
    }
    return refuse(e, 400, key, "%s: expected min, max, avg or last (got '%s')", key, quotable(v));
}

static int set_duration(struct qp_request *r, const char *key, const char *v, struct qp_error *e)
{
    int64_t d = parse_duration(v);
    if (d < 0 || d > QP_DURATION_MAX_S)
        return refuse(e, 400, key,
                      "%s: expected a count and a unit s, m, h, d or w, at most 90d (got '%s')",
                      key, quotable(v));
    r->duration_s = d;
    snprintf(r->duration, sizeof(r->duration), "%s", v);
    return 0;
}

static int set_fmt(struct qp_request *r, const char *key, const char *v, struct qp_error *e)
{
    if (strcmp(v, "json") && strcmp(v, "lp"))
        return refuse(e, 400, key, "%s: expected json or lp (got '%s')", key, quotable(v));
    r->lp = !strcmp(v, "lp");
    return 0;
}

typedef int (*param_setter)(struct qp_request *, const char *, const char *, struct qp_error *);

/* The query parameters of each form, and what checks each. */
static const struct {
    const char *names[3];
    param_setter set[3];
    const char *expected;
} form_params[] = {
    [QP_VM] = {{"period", "stat", "duration"},
               {set_period, set_stat, set_duration},
               "period, stat or duration"},
    [QP_MCI] = {{"period", "stat", "duration"},
                {set_period, set_stat, set_duration},
                "period, stat or duration"},
    [QP_DRAGONFLY] = {{"periodType", "statisticsCriteria", "duration"},
                      {set_period, set_stat, set_duration},
                      "periodType, statisticsCriteria or duration"},
    [QP_ONDEMAND] = {{"fmt"}, {set_fmt}, "fmt"},
    [QP_NETLATENCY] = {{NULL}, {NULL}, "none"},
};

/* One key=value of the query string. seen: a bit per key, so a key given twice is refused. */
static int take_param(struct qp_request *r, const char *pair, size_t n, unsigned *seen,
                      struct qp_error *e)
{
    const char *const *names = form_params[r->form].names;
    const char *expected = form_params[r->form].expected;
    const char *eq = memchr(pair, '=', n);
    size_t kn = eq ? (size_t)(eq - pair) : n;
    char key[24], val[24];
    if (decode(pair, kn, 1, key, sizeof(key)) < 0)
        return refuse(e, 400, "query", "unknown query parameter: expected %s", expected);
    int k = 0;
    while (k < 3 && names[k] && strcmp(key, names[k]))
        k++;
    if (k == 3 || !names[k])
        return refuse(e, 400, "query", "unknown query parameter '%s': expected %s", quotable(key),
                      expected);
    if (*seen & (1u << k))
        return refuse(e, 400, names[k], "%s: given twice", names[k]);
    *seen |= 1u << k;
    if (!eq || decode(eq + 1, n - kn - 1, 1, val, sizeof(val)) <= 0)
        return refuse(e, 400, names[k], "%s: empty, too long or a broken percent escape", names[k]);
    return form_params[r->form].set[k](r, names[k], val, e);
}

static int parse_query(const char *q, struct qp_request *r, struct qp_error *e)
{
    unsigned seen = 0;
    while (q && *q) {
        size_t n = strcspn(q, "&");
        if (n > 0 && take_param(r, q, n, &seen, e) < 0)
            return -1;
        q += n + (q[n] == '&');
    }
    if (!r->metric)
        return 0;
    if (r->duration_s / period_s(r->period) > QP_PERIODS_MAX)
        return refuse(e, 400, "duration", "duration: at most %d periods (%s of %c are %lld)",
                      QP_PERIODS_MAX, r->duration, r->period,
                      (long long)(r->duration_s / period_s(r->period)));
    return 0;
}

#define SEGS_MAX 12
struct segs {
    const char *s[SEGS_MAX];
    size_t n[SEGS_MAX];
    size_t count;
};

/* The path's segments; -1 when there are more than SEGS_MAX. */
static int split(const char *path, struct segs *g)
{
    g->count = 0;
    if (*path != '/')
        return -1;
    const char *p = path + 1;
    for (;;) {
        if (g->count == SEGS_MAX)
            return -1;
        size_t n = strcspn(p, "/");
        g->s[g->count] = p;
        g->n[g->count++] = n;
        if (!p[n])
            return 0;
        p += n + 1;
    }
}

static int is(const struct segs *g, size_t i, const char *lit)
{
    return i < g->count && g->n[i] == strlen(lit) && !memcmp(g->s[i], lit, g->n[i]);
}

/* The form of the path and where its names are: ns, mci, vm (0: none), metric. */
static int match_form(const struct segs *g, enum qp_form *form, size_t at[4])
{
    if (g->count == 10 && is(g, 0, "api") && is(g, 1, "v1") && is(g, 2, "ns") && is(g, 4, "mci") &&
        is(g, 6, "vm") && is(g, 8, "metric")) {
        *form = QP_VM;
        at[0] = 3, at[1] = 5, at[2] = 7, at[3] = 9;
    } else if (g->count == 8 && is(g, 0, "api") && is(g, 1, "v1") && is(g, 2, "ns") &&
               is(g, 4, "mci") && is(g, 6, "metric")) {
        *form = QP_MCI;
        at[0] = 3, at[1] = 5, at[2] = 0, at[3] = 7;
    } else if (g->count == 10 && is(g, 0, "dragonfly") && is(g, 1, "ns") && is(g, 3, "mcis") &&
               is(g, 5, "vm") && is(g, 7, "metric") && is(g, 9, "info")) {
        *form = QP_DRAGONFLY;
        at[0] = 2, at[1] = 4, at[2] = 6, at[3] = 8;
    } else if (g->count == 9 && is(g, 0, "api") && is(g, 1, "v1") && is(g, 2, "ns") &&
               is(g, 4, "mci") && is(g, 6, "vm") && is(g, 8, "ondemand")) {
        *form = QP_ONDEMAND;
        at[0] = 3, at[1] = 5, at[2] = 7, at[3] = 0;
    } else if (g->count == 8 && is(g, 0, "api") && is(g, 1, "v1") && is(g, 2, "ns") &&
               is(g, 4, "mci") && is(g, 6, "ondemand") && is(g, 7, "netlatency")) {
        *form = QP_NETLATENCY;
        at[0] = 3, at[1] = 5, at[2] = 0, at[3] = 0;
    } else {
        return -1;
    }
    return 0;
}

static int take_metric(struct qp_request *r, const char *seg, size_t n, struct qp_error *e)
{
    char name[32] = "";
    if (decode(seg, n, 0, name, sizeof(name)) < 0)
        name[0] = '\0';
    if (!(r->metric = qp_metric_find(name)))
        return refuse(e, 400, "metric",
                      "metric: unknown '%s'; one of cpu, memory (mem), swap, disk, diskio, "
                      "network (net), system",
                      quotable(name));
    return 0;
}

int qp_parse(const char *path, const char *query, struct qp_request *out, struct qp_error *e)
{
    struct segs g;
    size_t at[4];
    memset(out, 0, sizeof(*out));
    memset(e, 0, sizeof(*e));
    if (strlen(path) > QP_PATH_MAX)
        return refuse(e, 414, "path", "path: longer than %d bytes", QP_PATH_MAX);
    if (query && strlen(query) > QP_QUERY_MAX)
        return refuse(e, 414, "query", "query string: longer than %d bytes", QP_QUERY_MAX);
    if (split(path, &g) < 0 || match_form(&g, &out->form, at) < 0)
        return refuse(e, 404, "path",
                      "no such route: /api/v1/ns/{ns}/mci/{mci}[/vm/{vm}]/metric/{metric}, "
                      ".../vm/{vm}/ondemand, .../ondemand/netlatency or "
                      "/dragonfly/ns/{ns}/mcis/{mci}/vm/{vm}/metric/{metric}/info");
    int topic = out->form == QP_ONDEMAND || out->form == QP_NETLATENCY;
    if (take_name(g.s[at[0]], g.n[at[0]], "ns", out->ns, topic, e) < 0 ||
        take_name(g.s[at[1]], g.n[at[1]], "mci", out->mci, topic, e) < 0 ||
        (at[2] && take_name(g.s[at[2]], g.n[at[2]], "vm", out->vm, topic, e) < 0) ||
        (at[3] && take_metric(out, g.s[at[3]], g.n[at[3]], e) < 0))
        return -1;
    out->period = 'm';
    out->stat = QP_AVG;
    out->duration_s = 300;
    snprintf(out->duration, sizeof(out->duration), "5m");
    return parse_query(query, out, e);
}
