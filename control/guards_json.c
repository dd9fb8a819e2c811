/* guards_json: the guards' state for the API (docs/control.md, "Guards"). */
#include "control/guards_impl.h"

#include "common/log.h"

#include <stdio.h>

/* A time as RFC 3339, or null for none. */
static json_t *jtime(int64_t ms)
{
    if (ms == GUARDS_NONE)
        return json_null();
    char t[DSF_RFC3339_LEN];
    dsf_rfc3339_ms(ms, t);
    return json_string(t);
}

static void add_breaker(json_t *arr, const char *scope, const struct gbreaker *br)
{
    json_array_append_new(arr, json_pack("{s:s, s:b, s:o, s:s}", "scope", scope, "open", br->open,
                                         "since", jtime(br->since_ms), "why", br->why));
}

static json_t *breakers_json(const struct guards *g)
{
    json_t *arr = json_array();
    char scope[GUARDS_WHY_LEN];
    add_breaker(arr, "fleet", &g->fleet);
    for (const struct gobserver *o = g->observers; o; o = o->next) {
        snprintf(scope, sizeof(scope), "observer:%s", o->name);
        add_breaker(arr, scope, &o->br);
    }
    for (size_t i = 0; i < g->mcis.nbuckets; i++)
        for (const struct dsf_hlink *l = g->mcis.bucket[i]; l; l = l->next) {
            const struct gmci *m = (const struct gmci *)l;
            if (!m->k.mci[0] || m->br.since_ms == GUARDS_NONE)
                continue;
            snprintf(scope, sizeof(scope), "%s/%s", m->k.ns, m->k.mci);
            add_breaker(arr, scope, &m->br);
        }
    return arr;
}

/* Cooldowns still running at now_ms, policy: until. */
static json_t *cooldowns_json(const struct guards *g, const struct gtarget *e, int64_t now_ms)
{
    json_t *obj = json_object();
    for (const struct gcooldown *c = e->cooldowns; c; c = c->next) {
        int64_t len = guards_cooldown_len(g, c);
        if (c->end_ms == GUARDS_NONE || len < 0 || c->end_ms + len <= now_ms)
            continue;
        json_object_set_new(obj, c->policy, jtime(c->end_ms + len));
    }
    return obj;
}

static json_t *targets_json(const struct guards *g, int64_t now_ms)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < g->targets.nbuckets; i++)
        for (const struct dsf_hlink *l = g->targets.bucket[i]; l; l = l->next) {
            const struct gtarget *e = (const struct gtarget *)l;
            int64_t hold = e->hold_until_ms > now_ms ? e->hold_until_ms : GUARDS_NONE;
            json_array_append_new(
                arr, json_pack("{s:s, s:s, s:s, s:b, s:o, s:o, s:o}", "ns", e->k.ns, "mci",
                               e->k.mci, "target", e->k.name, "busy", e->busy > 0, "last_begin",
                               jtime(e->last_begin_ms), "cooldowns", cooldowns_json(g, e, now_ms),
                               "hold_until", jtime(hold)));
        }
    return arr;
}

static json_t *config_json(const struct guard_config *c)
{
    return json_pack("{s:i, s:i, s:f, s:I, s:i, s:f, s:I, s:I, s:i}", "max_concurrent",
                     c->max_concurrent, "max_concurrent_per_mci", c->max_concurrent_per_mci,
                     "mci_fraction", c->mci_fraction, "fraction_window_ms",
                     (json_int_t)c->fraction_window_ms, "rate_per_hour", c->rate_per_hour,
                     "breaker_fraction", c->breaker_fraction, "breaker_window_ms",
                     (json_int_t)c->breaker_window_ms, "breaker_hold_ms",
                     (json_int_t)c->breaker_hold_ms, "breaker_min_vms", c->breaker_min_vms);
}

json_t *guards_json(const struct guards *g, int64_t now_ms)
{
    return json_pack("{s:b, s:o, s:o, s:I, s:i, s:{s:I, s:I, s:I}, s:o}", "paused", g->paused,
                     "breakers", breakers_json(g), "targets", targets_json(g, now_ms),
                     "actions_last_hour", (json_int_t)guards_rate_count(g, now_ms), "running",
                     g->active, "tracked", "targets", (json_int_t)g->targets.count, "vms",
                     (json_int_t)g->vms.count, "mcis", (json_int_t)g->mcis.count, "config",
                     config_json(&g->cfg));
}
