/*
 * The monitoring query API (docs/control.md "Monitoring queries"): a request's path and query
 * string checked into a struct qp_request, and the InfluxQL that answers it. Both are pure and
 * allocate nothing: they see every byte a client sends before anything else does, so they are
 * unit-tested and fuzzed on their own (tests/fuzz/fuzz_control_query.c).
 */
#ifndef DSF_CONTROL_QUERY_H
#define DSF_CONTROL_QUERY_H

#include <stddef.h>
#include <stdint.h>

#define QP_NAME_MAX 63       /* ns, mci, vm: bytes after percent-decoding */
#define QP_QUERY_MAX 1024    /* a longer query string gets 414 */
#define QP_PATH_MAX 512      /* a longer path gets 414 */
#define QP_PERIODS_MAX 20000 /* duration / period: rows per series at most */
#define QP_DURATION_MAX_S (90LL * 86400)

enum qp_stat { QP_AVG, QP_MIN, QP_MAX, QP_LAST };

enum qp_form {
    QP_VM,        /* /api/v1/ns/{ns}/mci/{mci}/vm/{vm}/metric/{metric} */
    QP_MCI,       /* /api/v1/ns/{ns}/mci/{mci}/metric/{metric}: over the VMs and per VM */
    QP_DRAGONFLY, /* /dragonfly/ns/{ns}/mcis/{mci}/vm/{vm}/metric/{metric}/info */
    /* On-demand collection (control/ondemand.c): no metric; names are also topic levels, so
     * '+' and '#' are refused as well. */
    QP_ONDEMAND,   /* /api/v1/ns/{ns}/mci/{mci}/vm/{vm}/ondemand[?fmt=json|lp] */
    QP_NETLATENCY, /* /api/v1/ns/{ns}/mci/{mci}/ondemand/netlatency */
};

/* One column of the answer: CB-Dragonfly's name, the Telegraf field it comes from. */
struct qp_field {
    const char *name, *source;
    int complement; /* 100 - source (cpu_utilization from usage_idle): min and max swap */
    int kib;        /* divided by 1024 (bytes as CB-Dragonfly's kb_*) */
};

struct qp_metric {
    const char *name;        /* as the path names it */
    const char *measurement; /* Telegraf's */
    const char *tag, *value; /* a tag the points must have (cpu = cpu-total), or NULL */
    const char *series_tag;  /* counters: one series per value of this tag (NULL: gauges) */
    const struct qp_field *fields;
    size_t nfields;
};

struct qp_request {
    enum qp_form form;
    char ns[QP_NAME_MAX + 1], mci[QP_NAME_MAX + 1], vm[QP_NAME_MAX + 1]; /* vm "" for QP_MCI */
    const struct qp_metric *metric;
    char period; /* 'm', 'h' or 'd' */
    enum qp_stat stat;
    int64_t duration_s;
    char duration[16]; /* as given ("5m"), for the answer */
    int lp;            /* QP_ONDEMAND: fmt=lp (line protocol) rather than JSON */
};

/* Why a request was refused: the HTTP status (400 or 414), the parameter at fault ("ns",
 * "metric", "period", "duration", "query", ...) and a sentence that quotes no client bytes
 * but printable ASCII. */
struct qp_error {
    int status;
    char param[24];
    char msg[200];
};

/* path: the URI's path as received (percent-encoded); query: its query string or NULL. 0 with
 * out filled, or -1 with err; a path that is not one of the forms is 404. Names are
 * well-formed UTF-8. metric is NULL for the on-demand forms. */
int qp_parse(const char *path, const char *query, struct qp_request *out, struct qp_error *err);

/* The metric of that name ("cpu", "memory", ...) or NULL. */
const struct qp_metric *qp_metric_find(const char *name);
/* Every metric, for the documentation and the tests; *n set to how many. */
const struct qp_metric *qp_metrics(size_t *n);
const char *qp_stat_name(enum qp_stat s);

/* The InfluxQL for r into out (cap bytes, NUL-terminated): for QP_VM and QP_DRAGONFLY one
 * statement with a series per VM; for QP_MCI two, the per-VM one and then the MCI's over
 * them. Tag values are string literals and names identifiers, each escaped. Its length, or -1
 * when cap is too small. */
int qp_influxql(const struct qp_request *r, char *out, size_t cap);

#endif
