/*
 * The evaluation engine's internals, shared by its files: eval.c (the per-sample path: the
 * series table, the rule index lookup, the state machine, a line in), eval_index.c (the rule
 * index, built at each reload), eval_clock.c (the offline signal, the deadman and the
 * clock) and eval_rules.c (the engine's life: rules, reloads, restores). Not for users of
 * the engine: they include alarm/eval.h.
 */
#ifndef DSF_ALARM_EVAL_IMPL_H
#define DSF_ALARM_EVAL_IMPL_H

#include "alarm/eval.h"

/* (measurement, field) -> the rules selecting it. */
struct index_entry {
    uint64_t hash;
    const char *measurement, *field;
    uint32_t *rules;
    uint32_t n;
};

struct lru {
    struct series *head, *tail; /* oldest first */
};

struct engine {
    struct engine_ops ops;
    void *arg;
    struct rule **rules;
    size_t nrules;
    struct index_entry *index;
    size_t index_cap; /* power of two */
    uint32_t *offline_rules;
    size_t noffline;
    struct lru *lru; /* per rule: nodata deadlines, or pending offline alarms */
    struct dsf_htab series;
    uint64_t max_series;
    double *scratch;
    size_t scratch_cap;
    struct engine_stats stats;
};

static const uint64_t EVAL_FNV_OFFSET = 1469598103934665603ULL;
static const uint64_t EVAL_FNV_PRIME = 1099511628211ULL;

/* Inline below: every sample hashes its key and moves its series in its rule's list. */
static inline uint64_t eval_fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= EVAL_FNV_PRIME;
    }
    return h;
}

static inline uint64_t eval_mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

static inline uint64_t eval_key_hash(uint32_t rule, const char *key, size_t keylen)
{
    return eval_mix(eval_fnv(EVAL_FNV_OFFSET ^ rule, key, keylen));
}

/* ---- per-rule deadline lists ---- */

static inline void eval_lru_remove(struct engine *e, struct series *s)
{
    if (!s->in_lru)
        return;
    struct lru *l = &e->lru[s->rule];
    if (s->lru_prev)
        s->lru_prev->lru_next = s->lru_next;
    else
        l->head = s->lru_next;
    if (s->lru_next)
        s->lru_next->lru_prev = s->lru_prev;
    else
        l->tail = s->lru_prev;
    s->lru_prev = s->lru_next = NULL;
    s->in_lru = 0;
}

static inline void eval_lru_append(struct engine *e, struct series *s)
{
    struct lru *l = &e->lru[s->rule];
    eval_lru_remove(e, s);
    s->lru_prev = l->tail;
    s->lru_next = NULL;
    if (l->tail)
        l->tail->lru_next = s;
    else
        l->head = s;
    l->tail = s;
    s->in_lru = 1;
}

/* eval.c: the series of (rule, key), created when missing; NULL when max_series is reached
 * or memory is short. h is eval_key_hash(rule, key, keylen). */
struct series *eval_series_get(struct engine *e, uint32_t rule, const char *key, size_t keylen,
                               uint64_t h);
/* eval.c: moves s to state `to` at severity sev and reports the transition. */
void eval_set_state(struct engine *e, const struct rule *r, struct series *s, enum alarm_state to,
                    int sev, int64_t ts);

/* eval_index.c: the (measurement, field) index and the offline rules of e->rules. */
void eval_index_build(struct engine *e);
void eval_index_free(struct engine *e);

#endif
