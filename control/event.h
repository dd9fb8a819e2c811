/*
 * What the controller reacts to, from every input in one form: alarm events from the bus
 * (dsf/alarm/{ns}/{mci}/{rule}, Kafka dsf.alarms; schemas/alarm-event.schema.json), the
 * alarm engines' active alarms (GET /api/v1/alarms, read at start-up to catch what was
 * missed), Alertmanager webhooks (v4 body) and the agents' retained status.
 *
 * Alarm events carry no id: an alarm occurrence is keyed by (engine, rule, group labels,
 * starts_at, severity), so the same occurrence seen on the bus and again in an engine's list
 * is acted on once.
 */
#ifndef DSF_CONTROL_EVENT_H
#define DSF_CONTROL_EVENT_H

#include <stddef.h>
#include <stdint.h>

#define CTL_EVENT_LABELS_MAX 32
#define CTL_EVENT_NAME_MAX 128
#define CTL_EVENT_VALUE_MAX 256
#define CTL_EVENT_KEY_MAX 2048

struct ctl_label {
    char name[CTL_EVENT_NAME_MAX];
    char value[CTL_EVENT_VALUE_MAX];
};

struct ctl_event {
    char engine[CTL_EVENT_NAME_MAX]; /* alarm engine id; "alertmanager" for webhooks */
    char rule[CTL_EVENT_NAME_MAX];   /* rule name; Alertmanager: the alertname label */
    char state[16];                  /* firing, resolved, nodata, pending, inactive */
    char severity[32];               /* warn, crit, nodata, none, ... ("" when absent) */
    int64_t starts_at_ns;            /* 0 when not set */
    int64_t received_ms;             /* dsf_mono_ms() when parsed: decision latency */
    /* The alarm's group (ns, mci, and its group_by tags: vm, subgroup, node, ...) first,
     * then the rule's labels whose names the group does not use. Sorted by name within
     * each part; names unique. Alertmanager: every label but alertname and severity. */
    size_t ngroup; /* how many of labels[] are the group */
    size_t nlabels;
    struct ctl_label labels[CTL_EVENT_LABELS_MAX];
};

/* The value of a label (group or rule label), NULL when absent. */
const char *ctl_event_label(const struct ctl_event *e, const char *name);

/* One alarm event (bus payload). 0, or -1 with err naming the key ("key 'group': expected an
 * object"). Values too long for the fixed fields are refused, not cut. */
int ctl_event_parse_alarm(const char *text, size_t len, struct ctl_event *out, char *err,
                          size_t errlen);

typedef int (*ctl_event_fn)(void *arg, const struct ctl_event *e);

/* An engine's GET /api/v1/alarms body ({"alarms":[...]}, items as alarm events without
 * previous/ts; "engine" present since the engine lists it, else engine is used). fn is called
 * for each; a bad item is skipped and counted in *bad (added to; may be NULL), the first bad
 * item's reason left in err ("alarms[2]: key 'rule' is required"; "" when none). 0, or -1 with
 * err when the body itself is not that object; fn returning non-zero stops the walk. */
int ctl_event_parse_alarm_list(const char *text, size_t len, const char *engine, ctl_event_fn fn,
                               void *arg, size_t *bad, char *err, size_t errlen);

/* An Alertmanager webhook body (version "4"): fn for each alert of "alerts"; status
 * firing/resolved becomes state; labels.alertname the rule, labels.severity the severity;
 * startsAt (RFC 3339, common/rfc3339.h) starts_at_ns; engine "alertmanager". A bad alert is
 * skipped and counted in *bad, as for the list ("alerts[1]: ..." in err). 0, or -1 with err
 * when the body is not a v4 webhook (not JSON, no "alerts" array, version other than "4"). */
int ctl_event_parse_alertmanager(const char *text, size_t len, ctl_event_fn fn, void *arg,
                                 size_t *bad, char *err, size_t errlen);

/* The occurrence key: engine, rule, the group's name=value pairs, starts_at, severity, each
 * field escaped so that no two different events give the same key. Returns its length, or -1
 * when it would not fit len. */
int ctl_event_key(const struct ctl_event *e, char *out, size_t len);

/* The same alarm series regardless of occurrence (engine, rule, group): to pair a firing
 * event with its later resolved one. Returns its length, or -1 when it would not fit. */
int ctl_event_series_key(const struct ctl_event *e, char *out, size_t len);

#endif
