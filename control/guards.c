/* The guards' state and decisions (guards.h); the breaker is in guards_breaker.c. */
#include "control/guards_impl.h"

#include "common/bucket.h"
#include "common/log.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const block_names[] = {
    "pass",     "paused",      "breaker",         "hold",     "busy",
    "cooldown", "concurrency", "mci_concurrency", "fraction", "rate",
};

const char *guard_block_name(enum guard_block b)
{
    if ((unsigned)b >= sizeof(block_names) / sizeof(block_names[0]))
        return "unknown";
    return block_names[b];
}

void guards_config_defaults(struct guard_config *cfg)
{
    *cfg = (struct guard_config){
        .max_concurrent = 4,
        .max_concurrent_per_mci = 2,
        .mci_fraction = 0.34,
        .fraction_window_ms = 10 * 60 * 1000,
        .rate_per_hour = 30,
        .breaker_fraction = 0.5,
        .breaker_window_ms = 60 * 1000,
        .breaker_hold_ms = 60 * 1000,
        .breaker_min_vms = 3,
    };
}

/* ---- keyed entries ---- */

static uint64_t key_hash(const char *ns, const char *mci, const char *name, size_t *len)
{
    size_t a = strlen(ns) + 1, b = strlen(mci) + 1, c = strlen(name) + 1;
    *len = a + b + c;
    uint64_t h = (uint64_t)dsf_fnv1a32(ns, a) << 32 | dsf_fnv1a32(mci, b);
    return h ^ (uint64_t)dsf_fnv1a32(name, c) * 0x9e3779b97f4a7c15ull;
}

static int key_equal(const struct gkey *k, const char *ns, const char *mci, const char *name)
{
    return strcmp(k->ns, ns) == 0 && strcmp(k->mci, mci) == 0 && strcmp(k->name, name) == 0;
}

struct gkey *gkey_find(const struct dsf_htab *t, const char *ns, const char *mci, const char *name)
{
    if (!t->nbuckets)
        return NULL;
    size_t len;
    uint64_t h = key_hash(ns, mci, name, &len);
    for (struct dsf_hlink *l = dsf_htab_first(t, h); l; l = l->next) {
        struct gkey *k = (struct gkey *)l;
        if (l->hash == h && k->len == len && key_equal(k, ns, mci, name))
            return k;
    }
    return NULL;
}

struct gkey *gkey_add(struct dsf_htab *t, size_t size, const char *ns, const char *mci,
                      const char *name)
{
    if (!t->nbuckets && dsf_htab_grow(t))
        return NULL;
    size_t len;
    uint64_t h = key_hash(ns, mci, name, &len);
    struct gkey *k = calloc(1, size);
    char *buf = malloc(len);
    if (!k || !buf) {
        free(k);
        free(buf);
        return NULL;
    }
    size_t a = strlen(ns) + 1, b = strlen(mci) + 1;
    memcpy(buf, ns, a);
    memcpy(buf + a, mci, b);
    memcpy(buf + a + b, name, len - a - b);
    *k = (struct gkey){.buf = buf, .len = len, .ns = buf, .mci = buf + a, .name = buf + a + b};
    dsf_htab_insert(t, &k->link, h);
    return k;
}

void gkey_del(struct dsf_htab *t, struct gkey *k)
{
    dsf_htab_remove(t, &k->link);
    free(k->buf);
    free(k);
}

/* ---- MCIs ---- */

struct gmci *guards_mci_get(struct guards *g, const char *ns, const char *mci)
{
    struct gmci *m = (struct gmci *)gkey_find(&g->mcis, ns, mci, "");
    if (m)
        return m;
    m = (struct gmci *)gkey_add(&g->mcis, sizeof(*m), ns, mci, "");
    if (m)
        m->br = (struct gbreaker){.since_ms = GUARDS_NONE, .healthy_since_ms = GUARDS_NONE};
    return m;
}

void guards_mci_prune(struct guards *g, struct gmci *m)
{
    if (!m->size && !m->nvms && !m->active && !m->targets && !m->vms && !m->br.open)
        gkey_del(&g->mcis, &m->k);
}

int guards_mci_nvms(const struct gmci *m)
{
    return m->size > 0 ? m->size : m->nvms;
}

void guards_mci_size(struct guards *g, const char *ns, const char *mci, int nvms)
{
    struct gmci *m = guards_mci_get(g, ns, mci);
    if (!m)
        return;
    m->size = nvms > 0 ? nvms : 0;
    guards_mci_prune(g, m);
}

/* ---- lifetime ---- */

struct guards *guards_new(const struct guard_config *cfg)
{
    struct guards *g = calloc(1, sizeof(*g));
    if (!g)
        return NULL;
    if (cfg)
        g->cfg = *cfg;
    else
        guards_config_defaults(&g->cfg);
    g->fleet = (struct gbreaker){.since_ms = GUARDS_NONE, .healthy_since_ms = GUARDS_NONE};
    g->now_ms = GUARDS_NONE;
    g->max_cooldown_ms = -1;
    return g;
}

static void free_key(struct dsf_hlink *l)
{
    free(((struct gkey *)l)->buf);
    free(l);
}

static void free_cooldowns(struct gtarget *e)
{
    for (struct gcooldown *c = e->cooldowns, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    e->cooldowns = NULL;
}

static void free_target(struct dsf_hlink *l)
{
    free_cooldowns((struct gtarget *)l);
    free_key(l);
}

void guards_free(struct guards *g)
{
    if (!g)
        return;
    dsf_htab_free_all(&g->targets, free_target);
    dsf_htab_free_all(&g->vms, free_key);
    dsf_htab_free_all(&g->mcis, free_key);
    for (struct gobserver *o = g->observers, *next; o; o = next) {
        next = o->next;
        free(o);
    }
    free(g->rate);
    free(g);
}

void guards_pause(struct guards *g, int paused)
{
    g->paused = paused != 0;
}

int guards_paused(const struct guards *g)
{
    return g->paused;
}

/* ---- VMs ---- */

void guards_vm_health(struct guards *g, const char *ns, const char *mci, const char *vm,
                      int healthy, int64_t now_ms)
{
    guards_seen(g, now_ms);
    healthy = healthy != 0;
    struct gvm *v = (struct gvm *)gkey_find(&g->vms, ns, mci, vm);
    if (!v) {
        struct gmci *m = guards_mci_get(g, ns, mci);
        if (!m || !(v = (struct gvm *)gkey_add(&g->vms, sizeof(*v), ns, mci, vm))) {
            dsf_log(DSF_LOG_ERROR, "guards", "no memory for the health of VM %s/%s/%s", ns, mci,
                    vm);
            return;
        }
        v->m = m;
        v->healthy = 1;
        v->mnext = m->vms;
        if (m->vms)
            m->vms->mprev = v;
        m->vms = v;
        m->nvms++;
    }
    if (v->healthy == healthy)
        return;
    v->healthy = healthy;
    v->unhealthy_since_ms = healthy ? 0 : now_ms;
    if (!healthy)
        guards_breaker_note(g, v->m, now_ms);
}

void guards_vm_forget(struct guards *g, const char *ns, const char *mci, const char *vm)
{
    struct gvm *v = (struct gvm *)gkey_find(&g->vms, ns, mci, vm);
    if (!v)
        return;
    struct gmci *m = v->m;
    if (v->mprev)
        v->mprev->mnext = v->mnext;
    else
        m->vms = v->mnext;
    if (v->mnext)
        v->mnext->mprev = v->mprev;
    m->nvms--;
    gkey_del(&g->vms, &v->k);
    guards_mci_prune(g, m);
}

/* ---- targets ---- */

struct gtarget *guards_target_get(struct guards *g, const struct guard_target *t)
{
    struct gtarget *e = (struct gtarget *)gkey_find(&g->targets, t->ns, t->mci, t->target);
    if (e)
        return e;
    struct gmci *m = guards_mci_get(g, t->ns, t->mci);
    if (!m ||
        !(e = (struct gtarget *)gkey_add(&g->targets, sizeof(*e), t->ns, t->mci, t->target))) {
        dsf_log(DSF_LOG_ERROR, "guards", "no memory for target %s/%s/%s", t->ns, t->mci, t->target);
        return NULL;
    }
    e->m = m;
    e->last_begin_ms = GUARDS_NONE;
    e->mnext = m->targets;
    if (m->targets)
        m->targets->mprev = e;
    m->targets = e;
    return e;
}

static void target_del(struct guards *g, struct gtarget *e)
{
    struct gmci *m = e->m;
    if (e->mprev)
        e->mprev->mnext = e->mnext;
    else
        m->targets = e->mnext;
    if (e->mnext)
        e->mnext->mprev = e->mprev;
    free_cooldowns(e);
    gkey_del(&g->targets, &e->k);
    guards_mci_prune(g, m);
}

struct gcooldown *guards_cooldown_get(struct gtarget *e, const char *policy, int add)
{
    for (struct gcooldown *c = e->cooldowns; c; c = c->next)
        if (strcmp(c->policy, policy) == 0)
            return c;
    if (!add)
        return NULL;
    size_t n = strlen(policy) + 1;
    struct gcooldown *c = malloc(sizeof(*c) + n);
    if (!c)
        return NULL;
    memcpy(c->policy, policy, n);
    c->end_ms = GUARDS_NONE;
    c->cooldown_ms = -1;
    c->next = e->cooldowns;
    e->cooldowns = c;
    return c;
}

int64_t guards_cooldown_len(const struct guards *g, const struct gcooldown *c)
{
    return c->cooldown_ms >= 0 ? c->cooldown_ms : g->max_cooldown_ms;
}

/* A cooldown that is over, or one that never ended while its target is idle. */
static int cooldown_over(const struct guards *g, const struct gtarget *e, const struct gcooldown *c,
                         int64_t now_ms)
{
    if (c->end_ms == GUARDS_NONE)
        return !e->busy;
    int64_t len = guards_cooldown_len(g, c);
    return len >= 0 && now_ms - c->end_ms >= len;
}

static void target_sweep(struct guards *g, struct gtarget *e, int64_t now_ms)
{
    for (struct gcooldown **p = &e->cooldowns, *c; (c = *p);) {
        if (cooldown_over(g, e, c, now_ms)) {
            *p = c->next;
            free(c);
        } else {
            p = &c->next;
        }
    }
    if (e->hold_until_ms && e->hold_until_ms <= now_ms)
        e->hold_until_ms = 0;
    int recent =
        e->last_begin_ms != GUARDS_NONE && now_ms - e->last_begin_ms < g->cfg.fraction_window_ms;
    if (!e->busy && !e->cooldowns && !e->hold_until_ms && !recent)
        target_del(g, e);
}

void guards_sweep(struct guards *g, int64_t now_ms)
{
    struct dsf_htab *t = &g->targets;
    for (size_t i = 0; i < t->nbuckets; i++)
        for (struct dsf_hlink *l = t->bucket[i], *next; l; l = next) {
            next = l->next;
            target_sweep(g, (struct gtarget *)l, now_ms);
        }
}
