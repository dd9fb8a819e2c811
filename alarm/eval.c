/* The per-sample path, kept in one file so that it inlines: the series table, the rule
 * index lookup, the state machine and a line in. */
#include "alarm/eval_impl.h"

#include <stdlib.h>
#include <string.h>

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

struct series *eval_series_get(struct engine *e, uint32_t rule, const char *key, size_t keylen,
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

/* ---- state machine ---- */

void eval_set_state(struct engine *e, const struct rule *r, struct series *s, enum alarm_state to,
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
            eval_set_state(e, r, s, ST_FIRING, level, ts);
        else
            eval_set_state(e, r, s, ST_PENDING, level, ts);
        return;
    case ST_PENDING:
        if (!level)
            eval_set_state(e, r, s, ST_INACTIVE, SEV_NONE, ts);
        else if (ts - s->pending_since >= r->for_ms * 1000000)
            eval_set_state(e, r, s, ST_FIRING, level, ts);
        else
            s->severity = (uint8_t)level; /* still pending: fires at the level it has then */
        return;
    case ST_FIRING:
        if (level) {
            s->clear_since = 0;
            if (level != s->severity)
                eval_set_state(e, r, s, ST_FIRING, level, ts);
        } else if (!s->clear_since && r->keep_firing_ms) {
            s->clear_since = ts;
        } else if (!r->keep_firing_ms || ts - s->clear_since >= r->keep_firing_ms * 1000000) {
            eval_set_state(e, r, s, ST_RESOLVED, SEV_NONE, ts);
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
        eval_set_state(e, r, s, ST_RESOLVED, SEV_NONE, ts);
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
    uint64_t h = eval_key_hash(ri, key, keylen);
    struct series *s = eval_series_get(e, ri, key, keylen, h);
    if (!s) {
        e->stats.series_drops++;
        return;
    }
    e->stats.samples++;
    s->last_seen_ms = now_ms;
    if (r->nodata_ms)
        eval_lru_append(e, s);
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

/* The rules selecting (measurement, field); eval_index.c builds the index. */
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
    uint64_t h = eval_mix(eval_fnv(EVAL_FNV_OFFSET, v, n));
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
    uint64_t mh = eval_fnv(eval_fnv(EVAL_FNV_OFFSET, m, mn), "", 1);
    for (uint32_t fi = 0; fi < l->nfields; fi++) {
        const struct lp_kv *f = &l->fields[fi];
        const char *k = f->key.p;
        size_t kn = f->key.n;
        if (memchr(k, '\\', kn))
            kn = lp_unescape(f->key, 0, fbuf, sizeof(fbuf)), k = fbuf;
        const struct index_entry *x = index_find(e, eval_mix(eval_fnv(mh, k, kn)), m, mn, k, kn);
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
