/* The guards' state, shared by guards.c (decisions), guards_breaker.c and guards_json.c. */
#ifndef DSF_CONTROL_GUARDS_IMPL_H
#define DSF_CONTROL_GUARDS_IMPL_H

#include "common/htab.h"
#include "control/guards.h"

#define GUARDS_HOUR_MS (3600 * 1000LL)
#define GUARDS_NONE INT64_MIN
#define GUARDS_WHY_LEN 384

/* Every entry begins with its key: "ns\0mci\0name\0" in one allocation. */
struct gkey {
    struct dsf_hlink link;
    char *buf;
    size_t len;
    const char *ns, *mci, *name;
};

/* The end of the last action of one policy on a target; cooldown_ms as the last check of
 * that (policy, target) gave it, -1 while unknown (replayed from the audit). */
struct gcooldown {
    struct gcooldown *next;
    int64_t end_ms, cooldown_ms;
    char policy[];
};

struct gbreaker {
    int open;
    int64_t since_ms;         /* the last change, GUARDS_NONE before any */
    int64_t healthy_since_ms; /* while open: since when closing is allowed, GUARDS_NONE */
    char why[GUARDS_WHY_LEN];
};

struct gmci;

struct gtarget {
    struct gkey k;
    struct gmci *m;
    struct gtarget *mnext, *mprev;
    int vm_level, busy;
    int64_t last_begin_ms, hold_until_ms;
    struct gcooldown *cooldowns;
};

struct gvm {
    struct gkey k;
    struct gmci *m;
    struct gvm *mnext, *mprev;
    int healthy;
    int64_t unhealthy_since_ms;
};

/* ns/mci; mci "" gathers what is outside any MCI and has no guard or breaker of its own. */
struct gmci {
    struct gkey k;
    int size; /* guards_mci_size, 0 when not given */
    int nvms, active;
    struct gtarget *targets;
    struct gvm *vms;
    struct gbreaker br;
};

struct gobserver {
    struct gobserver *next;
    int healthy;
    int64_t changed_ms; /* when it became healthy or not */
    struct gbreaker br;
    char name[];
};

struct guards {
    struct guard_config cfg;
    int paused, active;
    struct dsf_htab targets, vms, mcis;
    struct gobserver *observers;
    struct gbreaker fleet;
    /* Begin times of the last hour, oldest first, in a ring. */
    int64_t *rate;
    size_t rate_cap, rate_head, rate_n;
    int64_t now_ms;          /* the latest time the caller passed */
    int64_t max_cooldown_ms; /* the longest cooldown checked: unknown ones expire after it */
};

/* The entry of (ns, mci, name) in t, NULL when absent (or the table has no buckets). */
struct gkey *gkey_find(const struct dsf_htab *t, const char *ns, const char *mci, const char *name);
/* A new zeroed entry of size bytes keyed (ns, mci, name), in t; NULL without memory. */
struct gkey *gkey_add(struct dsf_htab *t, size_t size, const char *ns, const char *mci,
                      const char *name);
void gkey_del(struct dsf_htab *t, struct gkey *k);

static inline void guards_seen(struct guards *g, int64_t now_ms)
{
    if (now_ms > g->now_ms)
        g->now_ms = now_ms;
}

/* The target's entry, made when absent; NULL without memory (logged). */
struct gtarget *guards_target_get(struct guards *g, const struct guard_target *t);
/* The policy's cooldown on e; add: made when absent. */
struct gcooldown *guards_cooldown_get(struct gtarget *e, const char *policy, int add);
struct gmci *guards_mci_get(struct guards *g, const char *ns, const char *mci);
/* Frees m when nothing refers to it any more. */
void guards_mci_prune(struct guards *g, struct gmci *m);
/* The VMs the MCI has: its declared size, else the VMs seen. */
int guards_mci_nvms(const struct gmci *m);
/* Drops expired cooldowns, holds and idle targets. */
void guards_sweep(struct guards *g, int64_t now_ms);
/* 1 and why when a breaker covering m (NULL: fleet and observers only) is open, else 0. */
int guards_breaker_why(const struct guards *g, const struct gmci *m, char *why, size_t len);
/* Restarts the hold of open breakers whose scope is no longer healthy: m's and the fleet's,
 * or (m NULL, an observer failed) every one. */
void guards_breaker_note(struct guards *g, struct gmci *m, int64_t now_ms);
/* The cooldown length of c: its own, else the longest checked, else -1. */
int64_t guards_cooldown_len(const struct guards *g, const struct gcooldown *c);
/* Actions begun in the hour before now_ms. */
size_t guards_rate_count(const struct guards *g, int64_t now_ms);
/* "60s", "10m", "1500ms": a duration for a why. */
void guards_fmt_dur(int64_t ms, char *out, size_t len);

#endif
