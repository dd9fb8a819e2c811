/* The engine's life: creating it, (re)loading its rules while keeping their series,
 * restoring persisted series, walking them, and freeing it all. */
#include "alarm/eval_impl.h"
#include "common/bucket.h"
#include "common/topic.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct engine *engine_new(const struct engine_ops *ops, void *arg, uint64_t max_series)
{
    struct engine *e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    if (ops)
        e->ops = *ops;
    e->arg = arg;
    e->max_series = max_series ? max_series : UINT64_MAX;
    e->lru = calloc(1, sizeof(*e->lru));
    if (!e->lru || dsf_htab_grow(&e->series)) {
        engine_free(e);
        return NULL;
    }
    return e;
}

static void series_free(struct series *s)
{
    window_free(&s->w);
    free(s->key);
    free(s);
}

/* A firing alarm keeps firing until a sample crosses its reset: the hysteresis latch holds
 * across a restart or a rule change. */
static void hold_latches(struct series *s)
{
    s->crit_held = s->state == ST_FIRING && s->severity == SEV_CRIT;
    s->warn_held = s->state == ST_FIRING && s->severity >= SEV_WARN && s->severity <= SEV_CRIT;
}

static int find_rule(struct rule **rules, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(rules[i]->name, name) == 0)
            return (int)i;
    return -1;
}

/* A series of the rules before a reload: kept under its rule's new index, or resolved and
 * freed when its rule is gone or groups differently. */
static void keep_series(struct engine *e, struct rule **old_rules, struct series *s, int no_table,
                        int64_t now_ns)
{
    const struct rule *was = old_rules[s->rule];
    int ni = find_rule(e->rules, e->nrules, was->name);
    const struct rule *now = ni >= 0 ? e->rules[ni] : NULL;
    if (!now || now->ngroup != was->ngroup || now->signal != was->signal) {
        /* The alarm's rule is gone: resolve what it raised, then forget it. */
        s->in_lru = 0;
        if (s->state == ST_FIRING || s->state == ST_NODATA)
            eval_set_state(e, was, s, ST_RESOLVED, SEV_NONE, now_ns);
        series_free(s);
        return;
    }
    if (strcmp(now->source, was->source) != 0) {
        window_free(&s->w);
        hold_latches(s);
    }
    s->rule = (uint32_t)ni;
    s->in_lru = 0;
    s->lru_prev = s->lru_next = NULL;
    if (no_table) {
        series_free(s);
        return;
    }
    dsf_htab_insert(&e->series, &s->link, eval_key_hash(s->rule, s->key, s->keylen));
    if (now->nodata_ms && s->state != ST_NODATA)
        eval_lru_append(e, s);
    else if (now->signal == RULE_OFFLINE && s->state == ST_PENDING)
        eval_lru_append(e, s);
}

void engine_set_rules(struct engine *e, struct rule **rules, size_t n, int64_t now_ns)
{
    struct dsf_htab old = e->series;
    struct rule **old_rules = e->rules;
    size_t old_n = e->nrules;
    eval_index_free(e);
    free(e->lru);
    e->rules = rules;
    e->nrules = n;
    e->lru = calloc(n + 1, sizeof(*e->lru));
    memset(&e->series, 0, sizeof(e->series));
    int grown = dsf_htab_grow(&e->series);
    eval_index_build(e);
    for (size_t b = 0; b < old.nbuckets; b++)
        for (struct dsf_hlink *l = old.bucket[b], *next; l; l = next) {
            next = l->next;
            keep_series(e, old_rules, (struct series *)l, grown, now_ns);
        }
    dsf_htab_free(&old);
    for (size_t i = 0; i < old_n; i++)
        rule_free(old_rules[i]);
    free(old_rules);
}

size_t engine_rule_count(const struct engine *e)
{
    return e->nrules;
}

const struct rule *engine_rule(const struct engine *e, size_t i)
{
    return i < e->nrules ? e->rules[i] : NULL;
}

const struct rule *engine_rule_by_name(const struct engine *e, const char *name)
{
    int i = find_rule(e->rules, e->nrules, name);
    return i >= 0 ? e->rules[i] : NULL;
}

int engine_restore(struct engine *e, const char *rule, const char *key, const struct series *st,
                   int64_t now_ms)
{
    int ri = find_rule(e->rules, e->nrules, rule);
    if (ri < 0)
        return -1;
    const struct rule *r = e->rules[ri];
    size_t parts = 1, keylen = strlen(key);
    for (const char *p = key; *p; p++)
        parts += *p == GROUP_SEP;
    if (parts != r->ngroup + 2)
        return -1;
    struct series *s =
        eval_series_get(e, (uint32_t)ri, key, keylen, eval_key_hash((uint32_t)ri, key, keylen));
    if (!s)
        return -1;
    s->state = st->state;
    s->severity = st->severity;
    s->value = st->value;
    s->threshold = st->threshold;
    s->ts_ns = st->ts_ns;
    s->pending_since = st->pending_since;
    s->firing_since = st->firing_since;
    s->resolved_at = st->resolved_at;
    s->clear_since = st->clear_since;
    s->changed_at = st->changed_at;
    hold_latches(s);
    s->last_seen_ms = now_ms;
    s->last_notify_ms = now_ms;
    if ((r->nodata_ms && s->state != ST_NODATA) ||
        (r->signal == RULE_OFFLINE && s->state == ST_PENDING))
        eval_lru_append(e, s);
    return 0;
}

/* The position of vm in r's group key (after ns and mci), or -1 when r does not group by it. */
static int vm_part(const struct rule *r)
{
    for (size_t i = 0; i < r->ngroup; i++)
        if (strcmp(r->group_by[i], "vm") == 0)
            return (int)i + 2;
    return -1;
}

static int part_is(const struct series *s, size_t i, const char *want)
{
    char buf[1024];
    return strcmp(series_key_part(s, i, buf, sizeof(buf)), want) == 0;
}

struct vm_ref {
    const char *ns, *mci, *vm;
};

static int of_vm(const struct engine *e, const struct series *s, const void *arg)
{
    const struct vm_ref *v = arg;
    int at = vm_part(e->rules[s->rule]);
    return at >= 0 && part_is(s, 0, v->ns) && part_is(s, 1, v->mci) &&
           part_is(s, (size_t)at, v->vm);
}

/* The VM a series of a rule grouping by vm belongs to, and the bucket it hashes to (of
 * total): 0, or -1 for series spanning VMs (they span buckets too). */
static int series_vm(const struct engine *e, const struct series *s, uint32_t total,
                     struct dsf_identity *id, uint32_t *bucket)
{
    int at = vm_part(e->rules[s->rule]);
    char key[200];
    if (at < 0)
        return -1;
    snprintf(id->ns, sizeof(id->ns), "%s", series_key_part(s, 0, key, sizeof(key)));
    snprintf(id->mci, sizeof(id->mci), "%s", series_key_part(s, 1, key, sizeof(key)));
    snprintf(id->vm, sizeof(id->vm), "%s", series_key_part(s, (size_t)at, key, sizeof(key)));
    int n = snprintf(key, sizeof(key), "%s/%s/%s", id->ns, id->mci, id->vm);
    if (n <= 0 || (size_t)n >= sizeof(key))
        return -1;
    *bucket = dsf_bucket(key, (size_t)n, total);
    return 0;
}

struct owner_ref {
    int (*owns)(const void *arg, uint32_t bucket, const struct dsf_identity *id);
    const void *arg;
    uint32_t total;
};

static int not_owned(const struct engine *e, const struct series *s, const void *arg)
{
    const struct owner_ref *o = arg;
    struct dsf_identity id;
    uint32_t k;
    return !series_vm(e, s, o->total, &id, &k) && !o->owns(o->arg, k, &id);
}

/* Drops every series match selects, without a transition; returns how many. */
static size_t forget_if(struct engine *e,
                        int (*match)(const struct engine *, const struct series *, const void *),
                        const void *arg)
{
    size_t n = 0;
    for (size_t b = 0; b < e->series.nbuckets; b++) {
        struct dsf_hlink **at = &e->series.bucket[b];
        while (*at) {
            struct series *s = (struct series *)*at;
            if (!match(e, s, arg)) {
                at = &(*at)->next;
                continue;
            }
            *at = s->link.next;
            e->series.count--;
            eval_lru_remove(e, s);
            series_free(s);
            n++;
        }
    }
    return n;
}

size_t engine_forget_vm(struct engine *e, const char *ns, const char *mci, const char *vm)
{
    const struct vm_ref v = {ns, mci, vm};
    size_t n = forget_if(e, of_vm, &v);
    e->stats.series_forgotten += n;
    return n;
}

size_t engine_forget_unowned(struct engine *e, uint32_t total,
                             int (*owns)(const void *arg, uint32_t bucket,
                                         const struct dsf_identity *id),
                             const void *arg)
{
    const struct owner_ref o = {owns, arg, total};
    return total ? forget_if(e, not_owned, &o) : 0;
}

void engine_foreach(struct engine *e, void (*fn)(void *arg, const struct rule *r, struct series *s),
                    void *arg)
{
    for (size_t b = 0; b < e->series.nbuckets; b++)
        for (struct dsf_hlink *l = e->series.bucket[b]; l; l = l->next)
            fn(arg, e->rules[((struct series *)l)->rule], (struct series *)l);
}

const struct engine_stats *engine_stats(const struct engine *e)
{
    return &e->stats;
}

size_t engine_series_count(const struct engine *e)
{
    return e->series.count;
}

void engine_free(struct engine *e)
{
    if (!e)
        return;
    for (size_t b = 0; b < e->series.nbuckets; b++)
        for (struct dsf_hlink *l = e->series.bucket[b], *next; l; l = next) {
            next = l->next;
            series_free((struct series *)l);
        }
    dsf_htab_free(&e->series);
    eval_index_free(e);
    free(e->lru);
    for (size_t i = 0; i < e->nrules; i++)
        rule_free(e->rules[i]);
    free(e->rules);
    free(e->scratch);
    free(e);
}
