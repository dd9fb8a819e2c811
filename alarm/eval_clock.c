/* The offline signal (an agent's status) and the clock: pending offline alarms and the
 * deadman (nodata). */
#include "alarm/eval_impl.h"

#include <stdio.h>

void engine_status(struct engine *e, const struct dsf_identity *id, int online, int64_t now_ns,
                   int64_t now_ms)
{
    char key[256];
    int n = snprintf(key, sizeof(key), "%s%c%s%c%s", id->ns, GROUP_SEP, id->mci, GROUP_SEP, id->vm);
    size_t keylen = n < (int)sizeof(key) ? (size_t)n : sizeof(key) - 1;
    for (size_t i = 0; i < e->noffline; i++) {
        uint32_t ri = e->offline_rules[i];
        const struct rule *r = e->rules[ri];
        struct series *s = eval_series_get(e, ri, key, keylen, eval_key_hash(ri, key, keylen));
        if (!s) {
            e->stats.series_drops++;
            continue;
        }
        s->ts_ns = now_ns;
        s->value = online ? 1 : 0;
        if (online) {
            eval_lru_remove(e, s);
            if (s->state == ST_PENDING)
                eval_set_state(e, r, s, ST_INACTIVE, SEV_NONE, now_ns);
            else if (s->state == ST_FIRING)
                eval_set_state(e, r, s, ST_RESOLVED, SEV_NONE, now_ns);
        } else if (s->state != ST_PENDING && s->state != ST_FIRING) {
            s->pending_since = now_ns;
            if (r->for_ms == 0) {
                eval_set_state(e, r, s, ST_FIRING, SEV_OFFLINE, now_ns);
            } else {
                eval_set_state(e, r, s, ST_PENDING, SEV_OFFLINE, now_ns);
                s->last_seen_ms = now_ms;
                eval_lru_append(e, s);
            }
        }
    }
}

void engine_tick(struct engine *e, int64_t now_ns, int64_t now_ms)
{
    for (uint32_t ri = 0; ri < e->nrules; ri++) {
        const struct rule *r = e->rules[ri];
        struct lru *l = &e->lru[ri];
        if (r->signal == RULE_OFFLINE) {
            /* Pending offline alarms, oldest first. */
            while (l->head && now_ms - l->head->last_seen_ms >= r->for_ms) {
                struct series *s = l->head;
                eval_lru_remove(e, s);
                if (s->state == ST_PENDING)
                    eval_set_state(e, r, s, ST_FIRING, SEV_OFFLINE, now_ns);
            }
            continue;
        }
        while (r->nodata_ms && l->head && now_ms - l->head->last_seen_ms >= r->nodata_ms) {
            struct series *s = l->head;
            eval_lru_remove(e, s);
            s->warn_held = s->crit_held = 0;
            if (s->state != ST_NODATA)
                eval_set_state(e, r, s, ST_NODATA, SEV_NODATA, now_ns);
        }
    }
}
