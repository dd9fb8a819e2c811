#include "alarm/eval.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static const uint64_t FNV_OFFSET = 1469598103934665603ULL, FNV_PRIME = 1099511628211ULL;

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= FNV_PRIME;
    }
    return h;
}

static uint64_t mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

const char *alarm_state_name(enum alarm_state s)
{
    static const char *const names[] = {"inactive", "pending", "firing", "nodata", "resolved"};
    return (unsigned)s < 5 ? names[s] : "?";
}

int alarm_state_parse(const char *name)
{
    for (int i = 0; i < 5; i++)
        if (strcmp(alarm_state_name((enum alarm_state)i), name) == 0)
            return i;
    return -1;
}

const char *alarm_severity_name(const struct rule *r, int sev)
{
    switch (sev) {
    case SEV_WARN:
        return "warn";
    case SEV_CRIT:
        return "crit";
    case SEV_NODATA:
        return "nodata";
    case SEV_OFFLINE:
        return r->severity;
    }
    return "none";
}

const char *series_key_part(const struct series *s, size_t i, char *out, size_t cap)
{
    const char *p = s->key, *end = s->key + s->keylen;
    for (; i && p < end; i--) {
        const char *sep = memchr(p, GROUP_SEP, (size_t)(end - p));
        p = sep ? sep + 1 : end;
    }
    const char *sep = memchr(p, GROUP_SEP, (size_t)(end - p));
    size_t n = (size_t)((sep ? sep : end) - p);
    if (n >= cap)
        n = cap - 1;
    memcpy(out, p, n);
    out[n] = '\0';
    return out;
}

/* ---- the series table ---- */

static struct series *series_find(const struct engine *e, uint64_t h, uint32_t rule,
                                  const char *key, size_t keylen)
{
    for (struct dsf_hlink *l = dsf_htab_first(&e->series, h); l; l = l->next) {
        struct series *s = (struct series *)l;
        if (l->hash == h && s->rule == rule && s->keylen == keylen &&
            memcmp(s->key, key, keylen) == 0)
            return s;
    }
    return NULL;
}

static uint64_t key_hash(uint32_t rule, const char *key, size_t keylen)
{
    return mix(fnv(FNV_OFFSET ^ rule, key, keylen));
}

static struct series *series_get(struct engine *e, uint32_t rule, const char *key, size_t keylen,
                                 uint64_t h)
{
    if (!e->series.nbuckets)
        return NULL; /* no memory for the table at the last reload */
    struct series *s = series_find(e, h, rule, key, keylen);
    if (s)
        return s;
    if (e->series.count >= e->max_series)
        return NULL;
    s = calloc(1, sizeof(*s));
    if (!s || !(s->key = malloc(keylen + 1))) {
        free(s);
        return NULL;
    }
    memcpy(s->key, key, keylen);
    s->key[keylen] = '\0';
    s->keylen = (uint32_t)keylen;
    s->rule = rule;
    dsf_htab_insert(&e->series, &s->link, h);
    return s;
}

/* ---- per-rule deadline lists ---- */

static void lru_remove(struct engine *e, struct series *s)
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

static void lru_append(struct engine *e, struct series *s)
{
    struct lru *l = &e->lru[s->rule];
    lru_remove(e, s);
    s->lru_prev = l->tail;
    s->lru_next = NULL;
    if (l->tail)
        l->tail->lru_next = s;
    else
        l->head = s;
    l->tail = s;
    s->in_lru = 1;
}

/* ---- the rule index ---- */

static uint64_t index_hash(const char *m, size_t mn, const char *f, size_t fn)
{
    return mix(fnv(fnv(fnv(FNV_OFFSET, m, mn), "", 1), f, fn));
}

static void index_free(struct engine *e)
{
    for (size_t i = 0; i < e->index_cap; i++)
        free(e->index[i].rules);
    free(e->index);
    e->index = NULL;
    e->index_cap = 0;
    free(e->offline_rules);
    e->offline_rules = NULL;
    e->noffline = 0;
}

static void index_build(struct engine *e)
{
    size_t cap = 16;
    while (cap < e->nrules * 2 + 2)
        cap *= 2;
    e->index = calloc(cap, sizeof(*e->index));
    e->index_cap = cap;
    e->offline_rules = calloc(e->nrules + 1, sizeof(uint32_t));
    for (uint32_t r = 0; r < e->nrules; r++) {
        const struct rule *ru = e->rules[r];
        if (ru->signal == RULE_OFFLINE) {
            e->offline_rules[e->noffline++] = r;
            continue;
        }
        uint64_t h =
            index_hash(ru->measurement, strlen(ru->measurement), ru->field, strlen(ru->field));
        size_t i = h & (cap - 1);
        while (e->index[i].rules &&
               (e->index[i].hash != h || strcmp(e->index[i].measurement, ru->measurement) ||
                strcmp(e->index[i].field, ru->field)))
            i = (i + 1) & (cap - 1);
        struct index_entry *x = &e->index[i];
        uint32_t *grown = realloc(x->rules, (x->n + 1) * sizeof(uint32_t));
        if (!grown)
            continue;
        x->rules = grown;
        x->rules[x->n++] = r;
        x->hash = h;
        x->measurement = ru->measurement;
        x->field = ru->field;
    }
}

static const struct index_entry *index_find(const struct engine *e, uint64_t h, const char *m,
                                            size_t mn, const char *f, size_t fn)
{
    size_t mask = e->index_cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        const struct index_entry *x = &e->index[i];
        if (!x->rules)
            return NULL;
        if (x->hash == h && strlen(x->measurement) == mn && memcmp(x->measurement, m, mn) == 0 &&
            strlen(x->field) == fn && memcmp(x->field, f, fn) == 0)
            return x;
    }
}

/* ---- state machine ---- */

static void set_state(struct engine *e, const struct rule *r, struct series *s, enum alarm_state to,
                      int sev, int64_t ts)
{
    enum alarm_state from = s->state;
    int from_sev = s->severity;
    s->state = (uint8_t)to;
    s->severity = (uint8_t)sev;
    s->changed_at = ts;
    if ((to == ST_FIRING || to == ST_NODATA) && from != ST_FIRING && from != ST_NODATA)
        s->firing_since = ts;
    if (to == ST_NODATA || to == ST_FIRING)
        s->clear_since = 0;
    if (to == ST_RESOLVED)
        s->resolved_at = ts;
    e->stats.transitions++;
    if (e->ops.transition)
        e->ops.transition(e->arg, r, s, from, from_sev, ts);
}

static void step(struct engine *e, const struct rule *r, struct series *s, int level, int64_t ts)
{
    switch ((enum alarm_state)s->state) {
    case ST_INACTIVE:
    case ST_RESOLVED:
    case ST_NODATA:
        if (!level)
            return;
        s->pending_since = ts;
        if (r->for_ms == 0)
            set_state(e, r, s, ST_FIRING, level, ts);
        else
            set_state(e, r, s, ST_PENDING, level, ts);
        return;
    case ST_PENDING:
        if (!level)
            set_state(e, r, s, ST_INACTIVE, SEV_NONE, ts);
        else if (ts - s->pending_since >= r->for_ms * 1000000)
            set_state(e, r, s, ST_FIRING, level, ts);
        else
            s->severity = (uint8_t)level; /* still pending: fires at the level it has then */
        return;
    case ST_FIRING:
        if (level) {
            s->clear_since = 0;
            if (level != s->severity)
                set_state(e, r, s, ST_FIRING, level, ts);
        } else if (!s->clear_since && r->keep_firing_ms) {
            s->clear_since = ts;
        } else if (!r->keep_firing_ms || ts - s->clear_since >= r->keep_firing_ms * 1000000) {
            set_state(e, r, s, ST_RESOLVED, SEV_NONE, ts);
        }
        return;
    }
}

static void evaluate(struct engine *e, const struct rule *r, struct series *s, double v, int64_t ts)
{
    e->stats.evaluations++;
    s->value = v;
    s->ts_ns = ts;
    if (s->state == ST_NODATA)
        set_state(e, r, s, ST_RESOLVED, SEV_NONE, ts);
    if (!r->warn.set && !r->crit.set)
        return; /* a deadman rule */
    s->crit_held = (uint8_t)rule_level_active(r, &r->crit, v, s->crit_held);
    s->warn_held = (uint8_t)rule_level_active(r, &r->warn, v, s->warn_held);
    int level = s->crit_held ? SEV_CRIT : s->warn_held ? SEV_WARN : SEV_NONE;
    const struct rule_level *l = level == SEV_CRIT ? &r->crit : &r->warn;
    s->threshold = level ? l->threshold : (r->warn.set ? r->warn.reset : r->crit.reset);
    step(e, r, s, level, ts);
}

static void sample(struct engine *e, uint32_t ri, const char *key, size_t keylen, int64_t ts,
                   double v, int64_t now_ms)
{
    const struct rule *r = e->rules[ri];
    uint64_t h = key_hash(ri, key, keylen);
    struct series *s = series_get(e, ri, key, keylen, h);
    if (!s) {
        e->stats.series_drops++;
        return;
    }
    e->stats.samples++;
    s->last_seen_ms = now_ms;
    if (r->nodata_ms)
        lru_append(e, s);
    e->stats.window_drops += window_push(&s->w, ts, v, r->window_ms * 1000000);
    if (r->reduce == RED_PCT && s->w.n > e->scratch_cap) {
        double *grown = realloc(e->scratch, s->w.cap * sizeof(double));
        if (!grown)
            return;
        e->scratch = grown;
        e->scratch_cap = s->w.cap;
    }
    double out;
    if (window_reduce(&s->w, r->reduce, r->pct, e->scratch, &out) == 0)
        evaluate(e, r, s, out, ts);
}

/* ---- a line in ---- */

static int span_eq(struct lp_span sp, const char *s)
{
    size_t n = strlen(s);
    return sp.n == n && memcmp(sp.p, s, n) == 0;
}

/* A tag's value, unescaped only when it has escapes; identity tags come from the topic. */
static const char *tag_value(const struct lp_line *l, const struct dsf_identity *id,
                             const char *key, char *buf, size_t cap, size_t *len)
{
    if (key[0] == 'n' && strcmp(key, "ns") == 0)
        return *len = strlen(id->ns), id->ns;
    if (key[0] == 'm' && strcmp(key, "mci") == 0)
        return *len = strlen(id->mci), id->mci;
    if (key[0] == 'v' && strcmp(key, "vm") == 0)
        return *len = strlen(id->vm), id->vm;
    for (uint32_t i = 0; i < l->ntags; i++) {
        if (!span_eq(l->tags[i].key, key))
            continue;
        struct lp_span v = l->tags[i].val;
        if (!memchr(v.p, '\\', v.n)) {
            *len = v.n;
            return v.p;
        }
        *len = lp_unescape(v, 0, buf, cap);
        return buf;
    }
    *len = 0;
    return "";
}

static int regex_match(struct rule_matcher *m, const char *v, size_t n, char *buf, size_t cap)
{
    uint64_t h = mix(fnv(FNV_OFFSET, v, n));
    struct match_memo *slot = NULL;
    if (m->memo || (m->memo = calloc(MATCH_CACHE, sizeof(*m->memo)))) {
        slot = &m->memo[h % MATCH_CACHE];
        if (slot->value && slot->hash == h && strlen(slot->value) == n &&
            memcmp(slot->value, v, n) == 0)
            return slot->ok;
    }
    if (v != buf) { /* regexec needs the value NUL-terminated */
        n = n < cap - 1 ? n : cap - 1;
        memcpy(buf, v, n);
        buf[n] = '\0';
    }
    int ok = regexec(&m->re, buf, 0, NULL, 0) == 0;
    if (slot) {
        free(slot->value);
        slot->value = strndup(buf, n);
        slot->hash = h;
        slot->ok = ok;
    }
    return ok;
}

static int matches(const struct rule *r, const struct lp_line *l, const struct dsf_identity *id)
{
    for (size_t i = 0; i < r->nmatchers; i++) {
        struct rule_matcher *m = &r->matchers[i];
        char buf[1024];
        size_t n;
        const char *v = tag_value(l, id, m->tag, buf, sizeof(buf), &n);
        int ok;
        if (m->op == MATCH_EQ || m->op == MATCH_NE) {
            ok = strlen(m->value) == n && memcmp(m->value, v, n) == 0;
        } else {
            ok = regex_match(m, v, n, buf, sizeof(buf));
        }
        if (ok != (m->op == MATCH_EQ || m->op == MATCH_RE))
            return 0;
    }
    return 1;
}

static size_t build_key(const struct rule *r, const struct lp_line *l,
                        const struct dsf_identity *id, char *key, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < r->ngroup + 2; i++) {
        char buf[512];
        size_t len;
        const char *v = i == 0   ? (len = strlen(id->ns), id->ns)
                        : i == 1 ? (len = strlen(id->mci), id->mci)
                                 : tag_value(l, id, r->group_by[i - 2], buf, sizeof(buf), &len);
        if (i)
            key[n < cap ? n++ : n - 1] = GROUP_SEP;
        if (len > cap - n)
            len = cap - n;
        memcpy(key + n, v, len);
        n += len;
    }
    return n;
}

void engine_line(struct engine *e, const struct dsf_identity *id, const struct lp_line *l,
                 int64_t now_ms)
{
    e->stats.lines++;
    if (!e->index_cap)
        return;
    char mbuf[256], fbuf[256];
    const char *m = l->measurement.p;
    size_t mn = l->measurement.n;
    if (memchr(m, '\\', mn))
        mn = lp_unescape(l->measurement, 0, mbuf, sizeof(mbuf)), m = mbuf;
    uint64_t mh = fnv(fnv(FNV_OFFSET, m, mn), "", 1);
    for (uint32_t fi = 0; fi < l->nfields; fi++) {
        const struct lp_kv *f = &l->fields[fi];
        const char *k = f->key.p;
        size_t kn = f->key.n;
        if (memchr(k, '\\', kn))
            kn = lp_unescape(f->key, 0, fbuf, sizeof(fbuf)), k = fbuf;
        const struct index_entry *x = index_find(e, mix(fnv(mh, k, kn)), m, mn, k, kn);
        if (!x)
            continue;
        double v;
        if (!lp_number(f, &v)) {
            e->stats.non_numeric++;
            continue;
        }
        for (uint32_t i = 0; i < x->n; i++) {
            const struct rule *r = e->rules[x->rules[i]];
            if (!matches(r, l, id))
                continue;
            char key[1024];
            size_t keylen = build_key(r, l, id, key, sizeof(key));
            sample(e, x->rules[i], key, keylen, l->ts, v, now_ms);
        }
    }
}

/* ---- the offline signal and the clock ---- */

void engine_status(struct engine *e, const struct dsf_identity *id, int online, int64_t now_ns,
                   int64_t now_ms)
{
    char key[256];
    int n = snprintf(key, sizeof(key), "%s%c%s%c%s", id->ns, GROUP_SEP, id->mci, GROUP_SEP, id->vm);
    size_t keylen = n < (int)sizeof(key) ? (size_t)n : sizeof(key) - 1;
    for (size_t i = 0; i < e->noffline; i++) {
        uint32_t ri = e->offline_rules[i];
        const struct rule *r = e->rules[ri];
        struct series *s = series_get(e, ri, key, keylen, key_hash(ri, key, keylen));
        if (!s) {
            e->stats.series_drops++;
            continue;
        }
        s->ts_ns = now_ns;
        s->value = online ? 1 : 0;
        if (online) {
            lru_remove(e, s);
            if (s->state == ST_PENDING)
                set_state(e, r, s, ST_INACTIVE, SEV_NONE, now_ns);
            else if (s->state == ST_FIRING)
                set_state(e, r, s, ST_RESOLVED, SEV_NONE, now_ns);
        } else if (s->state != ST_PENDING && s->state != ST_FIRING) {
            s->pending_since = now_ns;
            if (r->for_ms == 0) {
                set_state(e, r, s, ST_FIRING, SEV_OFFLINE, now_ns);
            } else {
                set_state(e, r, s, ST_PENDING, SEV_OFFLINE, now_ns);
                s->last_seen_ms = now_ms;
                lru_append(e, s);
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
                lru_remove(e, s);
                if (s->state == ST_PENDING)
                    set_state(e, r, s, ST_FIRING, SEV_OFFLINE, now_ns);
            }
            continue;
        }
        while (r->nodata_ms && l->head && now_ms - l->head->last_seen_ms >= r->nodata_ms) {
            struct series *s = l->head;
            lru_remove(e, s);
            s->warn_held = s->crit_held = 0;
            if (s->state != ST_NODATA)
                set_state(e, r, s, ST_NODATA, SEV_NODATA, now_ns);
        }
    }
}

/* ---- rules ---- */

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
            set_state(e, was, s, ST_RESOLVED, SEV_NONE, now_ns);
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
    dsf_htab_insert(&e->series, &s->link, key_hash(s->rule, s->key, s->keylen));
    if (now->nodata_ms && s->state != ST_NODATA)
        lru_append(e, s);
    else if (now->signal == RULE_OFFLINE && s->state == ST_PENDING)
        lru_append(e, s);
}

void engine_set_rules(struct engine *e, struct rule **rules, size_t n, int64_t now_ns)
{
    struct dsf_htab old = e->series;
    struct rule **old_rules = e->rules;
    size_t old_n = e->nrules;
    index_free(e);
    free(e->lru);
    e->rules = rules;
    e->nrules = n;
    e->lru = calloc(n + 1, sizeof(*e->lru));
    memset(&e->series, 0, sizeof(e->series));
    int grown = dsf_htab_grow(&e->series);
    index_build(e);
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
        series_get(e, (uint32_t)ri, key, keylen, key_hash((uint32_t)ri, key, keylen));
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
        lru_append(e, s);
    return 0;
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
    index_free(e);
    free(e->lru);
    for (size_t i = 0; i < e->nrules; i++)
        rule_free(e->rules[i]);
    free(e->rules);
    free(e->scratch);
    free(e);
}
