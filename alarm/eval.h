/*
 * The evaluation engine: rules indexed by (measurement, field), one series per (rule,
 * group) in a hash table (common/htab.h), each with its sliding window and its state
 * (inactive -> pending -> firing -> resolved, or nodata). Every sample is evaluated as it
 * arrives; only the deadman and the offline signal's `for` need the clock (engine_tick).
 * It owns no event loop and no I/O: transitions go to a callback, so the daemon, the tests
 * and the benchmark all drive the same code.
 */
#ifndef DSF_ALARM_EVAL_H
#define DSF_ALARM_EVAL_H

#include <stddef.h>
#include <stdint.h>

#include "alarm/rule.h"
#include "alarm/window.h"
#include "common/htab.h"
#include "common/ingest.h"

enum alarm_state { ST_INACTIVE, ST_PENDING, ST_FIRING, ST_NODATA, ST_RESOLVED };
enum { SEV_NONE, SEV_WARN, SEV_CRIT, SEV_NODATA, SEV_OFFLINE };

#define GROUP_SEP '\x1f' /* between the values of a group key */

struct series {
    struct dsf_hlink link; /* first: the engine's table holds series */
    uint32_t rule;         /* index in the engine's rules */
    uint32_t keylen;
    char *key; /* ns, mci, then the group_by tag values, joined by GROUP_SEP */
    struct window w;
    uint8_t state, severity, warn_held, crit_held, in_lru;
    double value, threshold;
    int64_t ts_ns; /* the last sample's timestamp */
    int64_t pending_since, firing_since, resolved_at, clear_since, changed_at; /* ns */
    int64_t last_seen_ms;   /* monotonic: the deadman's clock */
    int64_t last_notify_ms; /* monotonic: the notifier's resend clock */
    struct series *lru_prev, *lru_next;
};

struct engine_ops {
    /* A state or severity change; s already holds the new state. */
    void (*transition)(void *arg, const struct rule *r, struct series *s, enum alarm_state from,
                       int from_sev, int64_t ts_ns);
};

struct engine_stats {
    uint64_t lines, samples, evaluations, transitions;
    uint64_t window_drops;     /* samples pushed out of a full window (WINDOW_MAX_SAMPLES) */
    uint64_t series_drops;     /* samples refused because max_series was reached */
    uint64_t non_numeric;      /* matching fields that are strings */
    uint64_t series_forgotten; /* series of removed VMs dropped by engine_forget_vm */
};

struct engine;

struct engine *engine_new(const struct engine_ops *ops, void *arg, uint64_t max_series);
/* Replaces the rules (taking ownership of the array and the rules). Series of rules that
 * keep their name are kept (windows reset when the rule changed); firing series of removed
 * rules resolve first. */
void engine_set_rules(struct engine *e, struct rule **rules, size_t n, int64_t now_ns);
size_t engine_rule_count(const struct engine *e);
const struct rule *engine_rule(const struct engine *e, size_t i);
const struct rule *engine_rule_by_name(const struct engine *e, const char *name);

/* One validated line of a message (ingest's callback). */
void engine_line(struct engine *e, const struct dsf_identity *id, const struct lp_line *l,
                 int64_t now_ms);
/* An agent's status (its retained topic, Last Will = offline). */
void engine_status(struct engine *e, const struct dsf_identity *id, int online, int64_t now_ns,
                   int64_t now_ms);
/* A VM was removed (its retained status was cleared): drops every series of every rule whose
 * group names this ns, mci and vm, whatever its state, without a transition (nothing is
 * published: the VM is gone, not recovered). Series of rules that do not group by vm stay.
 * Returns the number dropped. */
size_t engine_forget_vm(struct engine *e, const char *ns, const char *mci, const char *vm);
/* Drops, without a transition, every series of a rule grouping by vm whose VM owns() says is
 * not this engine's (its bucket of total, common/bucket.h, and its identity: a tenant prefix
 * another pool owns), windows and states with it: the new owner evaluates them from scratch.
 * Returns the number dropped. */
struct dsf_identity;
size_t engine_forget_unowned(struct engine *e, uint32_t total,
                             int (*owns)(const void *arg, uint32_t bucket,
                                         const struct dsf_identity *id),
                             const void *arg);
/* Deadman and pending offline alarms; returns ms until the next tick is useful (capped). */
void engine_tick(struct engine *e, int64_t now_ns, int64_t now_ms);

/* Brings back a persisted series; 0, or -1 when its rule is gone or its key does not fit. */
int engine_restore(struct engine *e, const char *rule, const char *key, const struct series *st,
                   int64_t now_ms);

void engine_foreach(struct engine *e, void (*fn)(void *arg, const struct rule *r, struct series *s),
                    void *arg);
const struct engine_stats *engine_stats(const struct engine *e);
size_t engine_series_count(const struct engine *e);
void engine_free(struct engine *e);

const char *alarm_state_name(enum alarm_state s);
int alarm_state_parse(const char *name);
const char *alarm_severity_name(const struct rule *r, int sev);
/* The i-th value of a series' group key (0 ns, 1 mci, 2.. group_by); "" past the end. */
const char *series_key_part(const struct series *s, size_t i, char *out, size_t cap);

#endif
