/* The storm breaker (guards.h): per MCI, for the fleet, and per observer. */
#include "control/guards_impl.h"

#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*breaker_fn)(void *arg, const char *scope, int open, const char *why);

/* What one scope's VMs look like now. */
struct counts {
    int size, recent, unhealthy, named;
    size_t used;
    char names[160];
};

static void counts_add(const struct guards *g, const struct gmci *m, int64_t now_ms, int fleet,
                       struct counts *c)
{
    c->size += guards_mci_nvms(m);
    for (const struct gvm *v = m->vms; v; v = v->mnext) {
        if (v->healthy)
            continue;
        c->unhealthy++;
        if (now_ms - v->unhealthy_since_ms >= g->cfg.breaker_window_ms)
            continue;
        c->recent++;
        if (c->used >= sizeof(c->names))
            continue;
        int w;
        if (c->named == 4)
            w = snprintf(c->names + c->used, sizeof(c->names) - c->used, ", ...");
        else if (fleet)
            w = snprintf(c->names + c->used, sizeof(c->names) - c->used, "%s%s/%s/%s",
                         c->named ? ", " : "", v->k.ns, v->k.mci, v->k.name);
        else
            w = snprintf(c->names + c->used, sizeof(c->names) - c->used, "%s%s",
                         c->named ? ", " : "", v->k.name);
        c->used = c->named++ == 4 || w < 0 ? sizeof(c->names) : c->used + (size_t)w;
    }
}

static void fleet_counts(const struct guards *g, int64_t now_ms, struct counts *c)
{
    *c = (struct counts){0};
    const struct dsf_htab *t = &g->mcis;
    for (size_t i = 0; i < t->nbuckets; i++)
        for (const struct dsf_hlink *l = t->bucket[i]; l; l = l->next)
            counts_add(g, (const struct gmci *)l, now_ms, 1, c);
}

static int observers_healthy(const struct guards *g)
{
    for (const struct gobserver *o = g->observers; o; o = o->next)
        if (!o->healthy)
            return 0;
    return 1;
}

static int scope_healthy(const struct guards *g, const struct counts *c)
{
    return c->unhealthy <= g->cfg.breaker_fraction * c->size && observers_healthy(g);
}

static void hold_restart(struct gbreaker *br, int healthy)
{
    if (br->open && !healthy)
        br->healthy_since_ms = GUARDS_NONE;
}

void guards_breaker_note(struct guards *g, struct gmci *m, int64_t now_ms)
{
    struct counts c;
    if (!m) {
        g->fleet.healthy_since_ms = GUARDS_NONE;
        for (size_t i = 0; i < g->mcis.nbuckets; i++)
            for (struct dsf_hlink *l = g->mcis.bucket[i]; l; l = l->next)
                ((struct gmci *)l)->br.healthy_since_ms = GUARDS_NONE;
        return;
    }
    if (m->br.open) {
        c = (struct counts){0};
        counts_add(g, m, now_ms, 0, &c);
        hold_restart(&m->br, scope_healthy(g, &c));
    }
    if (g->fleet.open) {
        fleet_counts(g, now_ms, &c);
        hold_restart(&g->fleet, scope_healthy(g, &c));
    }
}

/* Opens br when the scope trips, closes it after breaker_hold of health; tells fn. */
static void breaker_step(struct guards *g, struct gbreaker *br, const char *scope, const char *of,
                         const struct counts *c, int64_t now_ms, breaker_fn fn, void *arg)
{
    const struct guard_config *cfg = &g->cfg;
    char dur[32];
    if (!br->open) {
        if (c->size < cfg->breaker_min_vms || c->recent <= cfg->breaker_fraction * c->size)
            return;
        guards_fmt_dur(cfg->breaker_window_ms, dur, sizeof(dur));
        *br = (struct gbreaker){1, now_ms, GUARDS_NONE, {0}};
        snprintf(br->why, sizeof(br->why),
                 "%d of %d VMs of %s went unhealthy within %s and still are (%s), more than %g",
                 c->recent, c->size, of, dur, c->names, cfg->breaker_fraction);
    } else {
        if (!scope_healthy(g, c)) {
            br->healthy_since_ms = GUARDS_NONE;
            return;
        }
        if (br->healthy_since_ms == GUARDS_NONE)
            br->healthy_since_ms = now_ms;
        if (now_ms - br->healthy_since_ms < cfg->breaker_hold_ms)
            return;
        guards_fmt_dur(cfg->breaker_hold_ms, dur, sizeof(dur));
        *br = (struct gbreaker){0, now_ms, GUARDS_NONE, {0}};
        snprintf(br->why, sizeof(br->why),
                 "%s healthy for %s: %d of %d VMs unhealthy (at most %g), observers healthy", of,
                 dur, c->unhealthy, c->size, cfg->breaker_fraction * c->size);
    }
    dsf_log(br->open ? DSF_LOG_WARN : DSF_LOG_INFO, "guards", "breaker %s %s: %s", scope,
            br->open ? "open" : "closed", br->why);
    if (fn)
        fn(arg, scope, br->open, br->why);
}

static void observer_step(struct guards *g, struct gobserver *o, int64_t now_ms, breaker_fn fn,
                          void *arg)
{
    char scope[128], t1[DSF_RFC3339_LEN], dur[32];
    if (o->br.open == !o->healthy)
        return;
    if (o->healthy && now_ms - o->changed_ms < g->cfg.breaker_hold_ms)
        return;
    dsf_rfc3339_ms(o->changed_ms, t1);
    guards_fmt_dur(g->cfg.breaker_hold_ms, dur, sizeof(dur));
    o->br.open = !o->healthy;
    o->br.since_ms = now_ms;
    if (o->br.open)
        snprintf(o->br.why, sizeof(o->br.why), "observer %s unhealthy since %s", o->name, t1);
    else
        snprintf(o->br.why, sizeof(o->br.why), "observer %s healthy for %s (since %s)", o->name,
                 dur, t1);
    snprintf(scope, sizeof(scope), "observer:%s", o->name);
    dsf_log(o->br.open ? DSF_LOG_WARN : DSF_LOG_INFO, "guards", "breaker %s %s: %s", scope,
            o->br.open ? "open" : "closed", o->br.why);
    if (fn)
        fn(arg, scope, o->br.open, o->br.why);
}

static void mci_step(struct guards *g, struct gmci *m, int64_t now_ms, breaker_fn fn, void *arg)
{
    if (!m->k.mci[0])
        return;
    char scope[GUARDS_WHY_LEN / 2];
    struct counts c = {0};
    counts_add(g, m, now_ms, 0, &c);
    snprintf(scope, sizeof(scope), "%s/%s", m->k.ns, m->k.mci);
    breaker_step(g, &m->br, scope, scope, &c, now_ms, fn, arg);
    guards_mci_prune(g, m);
}

void guards_tick(struct guards *g, int64_t now_ms, breaker_fn fn, void *arg)
{
    guards_seen(g, now_ms);
    struct counts c;
    fleet_counts(g, now_ms, &c);
    breaker_step(g, &g->fleet, "fleet", "the fleet", &c, now_ms, fn, arg);
    for (struct gobserver *o = g->observers; o; o = o->next)
        observer_step(g, o, now_ms, fn, arg);
    for (size_t i = 0; i < g->mcis.nbuckets; i++)
        for (struct dsf_hlink *l = g->mcis.bucket[i], *next; l; l = next) {
            next = l->next;
            mci_step(g, (struct gmci *)l, now_ms, fn, arg);
        }
    guards_sweep(g, now_ms);
}

void guards_observer(struct guards *g, const char *name, int healthy, int64_t now_ms)
{
    guards_seen(g, now_ms);
    healthy = healthy != 0;
    struct gobserver *o = g->observers;
    while (o && strcmp(o->name, name))
        o = o->next;
    if (!o) {
        size_t n = strlen(name) + 1;
        if (!(o = calloc(1, sizeof(*o) + n))) {
            dsf_log(DSF_LOG_ERROR, "guards", "no memory for observer %s", name);
            return;
        }
        memcpy(o->name, name, n);
        o->healthy = 1;
        o->br.since_ms = GUARDS_NONE;
        o->next = g->observers;
        g->observers = o;
    }
    if (o->healthy == healthy)
        return;
    o->healthy = healthy;
    o->changed_ms = now_ms;
    if (!healthy)
        guards_breaker_note(g, NULL, now_ms);
}

static int covered(const struct gbreaker *br, const char *scope, char *why, size_t len)
{
    if (!br->open)
        return 0;
    char t1[DSF_RFC3339_LEN];
    dsf_rfc3339_ms(br->since_ms, t1);
    if (why && len)
        snprintf(why, len, "breaker %s open since %s: %s", scope, t1, br->why);
    return 1;
}

int guards_breaker_why(const struct guards *g, const struct gmci *m, char *why, size_t len)
{
    char scope[GUARDS_WHY_LEN / 2], t1[DSF_RFC3339_LEN];
    if (covered(&g->fleet, "fleet", why, len))
        return 1;
    for (const struct gobserver *o = g->observers; o; o = o->next) {
        snprintf(scope, sizeof(scope), "observer:%s", o->name);
        if (covered(&o->br, scope, why, len))
            return 1;
        /* Blind until the next tick opens it: no action meanwhile. */
        if (!o->healthy) {
            dsf_rfc3339_ms(o->changed_ms, t1);
            if (why && len)
                snprintf(why, len, "breaker %s: observer %s unhealthy since %s", scope, o->name,
                         t1);
            return 1;
        }
    }
    if (!m || !m->k.mci[0])
        return 0;
    snprintf(scope, sizeof(scope), "%s/%s", m->k.ns, m->k.mci);
    return covered(&m->br, scope, why, len);
}

int guards_breaker_open(const struct guards *g, const char *ns, const char *mci)
{
    return guards_breaker_why(g, (const struct gmci *)gkey_find(&g->mcis, ns, mci, ""), NULL, 0);
}
