/*
 * The guards between a decision and an action: what keeps healing from making an outage
 * worse. All on by default; each refusal says which guard and why, for the API and the audit.
 *
 * - pause: all actions stopped by an operator;
 * - storm breaker: no action at all while it is open (see below);
 * - hold: a target whose chain ran out is left alone until its hold ends;
 * - busy: a target already under action gets no second one;
 * - cooldown per (policy, target), from the end of the last action;
 * - concurrency: at most max_concurrent actions at once, max_concurrent_per_mci per MCI;
 * - fraction: at most mci_fraction of an MCI's VMs (at least 1) under action or acted on
 *   within fraction_window;
 * - rate: at most rate_per_hour actions begun in the last hour.
 *
 * The storm breaker opens when, within breaker_window, more than breaker_fraction of one
 * MCI's VMs (MCIs of at least breaker_min_vms) or of the fleet's VMs went unhealthy (agent
 * offline, alarm nodata) and are still unhealthy, or when an observer the controller depends
 * on (its bus connection, the collectors) is unhealthy: a blind observer is not a sick fleet.
 * It closes once the fleet has been healthy (no more than breaker_fraction unhealthy, every
 * observer healthy) for breaker_hold.
 *
 * Times are wall-clock milliseconds so that a restarted controller can replay what its audit
 * recorded (guards_begin / guards_end with past times, in order) and keep cooldowns, holds
 * and rates across restarts. Not thread-safe: the controller's loop owns it.
 */
#ifndef DSF_CONTROL_GUARDS_H
#define DSF_CONTROL_GUARDS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct guard_config {
    int64_t max_concurrent;         /* default 4 */
    int64_t max_concurrent_per_mci; /* default 2 */
    double mci_fraction;            /* default 0.34 */
    int64_t fraction_window_ms;     /* default 10 min */
    int64_t rate_per_hour;          /* default 30 */
    double breaker_fraction;        /* default 0.5 */
    int64_t breaker_window_ms;      /* default 60 s */
    int64_t breaker_hold_ms;        /* default 60 s */
    int64_t breaker_min_vms;        /* default 3 */
};

enum guard_block {
    GUARD_PASS = 0,
    GUARD_PAUSED,
    GUARD_BREAKER,
    GUARD_HOLD,
    GUARD_BUSY,
    GUARD_COOLDOWN,
    GUARD_CONCURRENCY,
    GUARD_MCI_CONCURRENCY,
    GUARD_FRACTION,
    GUARD_RATE,
};

/* "paused", "breaker", "hold", "busy", "cooldown", "concurrency", "mci_concurrency",
 * "fraction", "rate"; "pass". */
const char *guard_block_name(enum guard_block b);

/* What an action is on. target is the VM id for VM actions (vm_level 1), the subgroup for
 * scaling, the node for Kubernetes node actions; ns and mci may be "" for a node or
 * workload outside any MCI. */
struct guard_target {
    const char *policy, *ns, *mci, *target;
    int vm_level;
};

struct guards;

/* cfg NULL: the defaults above. */
struct guards *guards_new(const struct guard_config *cfg);
void guards_free(struct guards *g);
void guards_config_defaults(struct guard_config *cfg);

/* ---- what the fleet looks like ---- */

/* The number of VMs the MCI has (federation model); without it the VMs seen so far count. */
void guards_mci_size(struct guards *g, const char *ns, const char *mci, int nvms);
/* A VM's health changed: healthy 0 when its agent went offline or an alarm went nodata, 1
 * when it reports again. Repeating the current value changes nothing. */
void guards_vm_health(struct guards *g, const char *ns, const char *mci, const char *vm,
                      int healthy, int64_t now_ms);
/* The VM is gone (removed, suspended on purpose): it no longer counts anywhere. */
void guards_vm_forget(struct guards *g, const char *ns, const char *mci, const char *vm);
/* An observer ("bus", "collectors") became healthy or not. */
void guards_observer(struct guards *g, const char *name, int healthy, int64_t now_ms);

/* ---- decisions ---- */

void guards_pause(struct guards *g, int paused);
int guards_paused(const struct guards *g);

/* May an action on t begin now? GUARD_PASS, or the first guard (in the order of the enum)
 * that blocks it, with why (may be NULL) saying it in words: "cooldown of policy p on vm1
 * until 2026-...Z", "3 of 4 VMs of ns1/m1 unhealthy within 60s (breaker)". */
enum guard_block guards_check(struct guards *g, const struct guard_target *t, int64_t cooldown_ms,
                              int64_t now_ms, char *why, size_t whylen);
/* An action on t began (counts for busy, concurrency, fraction, rate). */
void guards_begin(struct guards *g, const struct guard_target *t, int64_t now_ms);
/* It ended: the cooldown of (policy, target) starts; hold_until_ms > now holds the target. */
void guards_end(struct guards *g, const struct guard_target *t, int64_t now_ms,
                int64_t hold_until_ms);
/* An operator lifts a hold early. 0, or -1 when the target was not held. */
int guards_release(struct guards *g, const char *ns, const char *mci, const char *target);

/* ---- the breaker ---- */

/* Re-evaluates the breaker; on every change calls fn with the scope ("fleet", "ns/mci",
 * "observer:bus"), open 1/0 and why. Call it on every health change and once a second. */
void guards_tick(struct guards *g, int64_t now_ms,
                 void (*fn)(void *arg, const char *scope, int open, const char *why), void *arg);
/* Is a breaker open that covers this MCI ("" for outside any MCI: fleet and observers)? */
int guards_breaker_open(const struct guards *g, const char *ns, const char *mci);

/* The state for the API: {"paused":false, "breakers":[{"scope","open","since","why"}],
 * "targets":[{"ns","mci","target","busy","cooldowns":{"policy":until},"hold_until"}],
 * "actions_last_hour":n, "config":{...}}. New reference. */
json_t *guards_json(const struct guards *g, int64_t now_ms);

#endif
