/*
 * dsf_internal: a daemon's own counters written into the store it feeds, like Telegraf's
 * internal input, so one InfluxDB datasource serves the pipeline's dashboards. Every
 * internal.interval the daemon's /metrics page is rendered and each sample becomes one line
 * `dsf_internal,daemon=D,id=I[,label=value...] METRIC=value TS`: the metric's name is the
 * field and its labels are tags. Histogram buckets are left out (their _sum and _count are
 * kept). The keys are declared once here, under the prefix "internal", and embedded by the
 * daemon skeleton for every daemon that says where its InfluxDB output is.
 */
#ifndef DSF_INTERNAL_H
#define DSF_INTERNAL_H

#include <stdint.h>

#include "common/buf.h"
#include "common/config.h"

struct event_base;

struct dsf_internal_config {
    int64_t interval_ms; /* 0: off */
    char *url, *db, *username, *password;
};

extern const struct dsf_cfg_key dsf_internal_keys[];

/* Where a daemon writes by default (its own InfluxDB 1.x output) and the id of this instance.
 * url NULL or "": the daemon has none; then internal.url must name one, or nothing is
 * written. */
struct dsf_internal_target {
    const char *id;
    const char *url, *db, *username, *password;
};

/* Renders the daemon's Prometheus page into out (reset before the call). */
typedef void (*dsf_internal_render_fn)(void *arg, struct dsf_buf *out);

struct dsf_internal;

/* NULL without err when off (interval 0, or no URL); NULL with err naming what failed. cfg
 * must outlive the writer; the target's strings are copied. */
struct dsf_internal *dsf_internal_new(struct event_base *base,
                                      const struct dsf_internal_config *cfg, const char *daemon,
                                      const struct dsf_internal_target *t,
                                      dsf_internal_render_fn render, void *arg, char *err,
                                      size_t errlen);
/* Converts one Prometheus text page into dsf_internal lines stamped ts_ns. Returns the number
 * of lines written; *skipped counts samples InfluxDB cannot store (NaN, infinities). */
uint64_t dsf_internal_lines(const char *page, size_t len, const char *daemon, const char *id,
                            int64_t ts_ns, struct dsf_buf *out, uint64_t *skipped);
/* The writer's own family: dsf_internal_points_total{outcome=...}. */
void dsf_internal_render_metrics(const struct dsf_internal *in, struct dsf_buf *out);
/* Pending points are counted as dropped. */
void dsf_internal_free(struct dsf_internal *in);

/* The above for the daemon skeleton, which reaches the writer only through this table: the
 * static agent links the skeleton without the HTTP client the writer needs. */
struct dsf_internal_hooks {
    const struct dsf_cfg_key *keys;
    struct dsf_internal *(*create)(struct event_base *base, const struct dsf_internal_config *cfg,
                                   const char *daemon, const struct dsf_internal_target *t,
                                   dsf_internal_render_fn render, void *arg, char *err,
                                   size_t errlen);
    void (*render_metrics)(const struct dsf_internal *in, struct dsf_buf *out);
    void (*destroy)(struct dsf_internal *in);
};
extern const struct dsf_internal_hooks dsf_internal_hooks;

#endif
