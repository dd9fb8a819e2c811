/*
 * Where the controller's audit records go besides the audit log (docs/control.md, "Actions in
 * InfluxDB, on the bus, in notifications"): InfluxDB as the dsf_action measurement (the event
 * writer of common/event_store.h), the bus on dsf/action/{ns}/{mci}, and the records a human
 * must see to the alarm engine's notifier (alarm/notify.h). Each is optional.
 */
#ifndef DSF_CONTROL_OUTPUT_H
#define DSF_CONTROL_OUTPUT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "alarm/notify.h"
#include "common/buf.h"
#include "common/config.h"
#include "common/event_store.h"

struct event_base;
struct dsf_bus;

struct ctl_output_config {
    struct dsf_event_store_config output; /* output.*: empty url, no InfluxDB */
    char *notify_config;                  /* notify.config: empty, no notifications */
    const char *state_dir; /* the notifier's log and silences; the controller's state.dir */
};

/* notify.config, on struct ctl_output_config; the output.* rows are dsf_event_store_keys. */
extern const struct dsf_cfg_key ctl_output_keys[];
/* The sections of the controller's configuration for cfg: ctl_output_keys (prefix "") and
 * output.*. Returns the number written (2). */
size_t ctl_output_sections(struct dsf_cfg_section *out, struct ctl_output_config *cfg);

struct ctl_output;

/* Starts the InfluxDB writer (output.url set) and the notifier (notify.config set); cfg must
 * outlive the output. NULL with err naming the key that failed. */
struct ctl_output *ctl_output_new(struct event_base *base, const struct ctl_output_config *cfg,
                                  char *err, size_t errlen);
/* The bus to publish the records on; NULL (the default): none. The caller keeps it. */
void ctl_output_set_bus(struct ctl_output *o, struct dsf_bus *bus);
/* Hands on one record as the audit log holds it (with seq and time). */
void ctl_output_record(struct ctl_output *o, const json_t *rec);
/* Writes what the store has pending now; idle once InfluxDB answered for everything. */
void ctl_output_flush(struct ctl_output *o);
int ctl_output_idle(const struct ctl_output *o);
/* Prometheus text: damselfly_control_output_* and the notifier's counters. */
void ctl_output_render_metrics(const struct ctl_output *o, struct dsf_buf *out);
/* Flushes the notifier's pending groups and frees everything. */
void ctl_output_free(struct ctl_output *o);

/* ---- the mappings, pure for the tests ---- */

/* The record's dsf_action line (with its '\n') appended to out: 0, or -1 when the record has
 * no "event" or no parseable "time" (nothing appended). */
int ctl_output_line(const json_t *rec, struct dsf_buf *out);

#define CTL_ALERT_KV_MAX 16
/* An alert and the storage its strings point into. */
struct ctl_alert {
    struct alarm_alert alert;
    struct alarm_label labels[CTL_ALERT_KV_MAX], annotations[2];
    char summary[512], description[1024];
};
/* Whether the record is one a human must see: 1 with out filled (labels sorted; strings point
 * into rec and out, so both must outlive the push), 0 for the others. A breaker's close comes
 * out resolved, with its open's labels and starts_at when open_starts_ns is not 0. */
int ctl_output_alert(const json_t *rec, int64_t open_starts_ns, struct ctl_alert *out);

#endif
