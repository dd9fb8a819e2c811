/* Aggregation's intake: each line to its series (through its agent's route, prefetched a few
 * lines ahead) and window, folded there. The whole per-line path is in this file, so that the
 * compiler sees it at once. */
#define DSF_MODULE "aggregate"
#include "collector/aggregate.h"
#include "collector/aggregate_impl.h"
#include "collector/collector.h"
#include "collector/writer.h"
#include "common/bucket.h"
#include "common/htab.h"
#include "common/loop.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct rule *rule_for(const struct aggregate *a, struct lp_span m)
{
    for (size_t i = 0; i < a->nrules; i++)
        if (a->rules[i].n == m.n && memcmp(a->rules[i].measurement, m.p, m.n) == 0)
            return &a->rules[i];
    return a->any;
}

/* ---------------- durability claims ---------------- */

/* Adds a reference to cl; 0, or -1 without memory. */
static int list_hold(struct claim_list *l, struct claim *cl)
{
    struct claim **items = agg_list_items(l);
    if (l->n && items[l->n - 1] == cl)
        return 0; /* the message's previous line already holds it here */
    uint32_t cap = l->heap ? l->cap : INLINE_CLAIMS;
    if (l->n == cap) {
        struct claim **p = realloc(l->heap, 2 * cap * sizeof(*p));
        if (!p)
            return -1;
        if (!l->heap)
            memcpy(p, l->inl, sizeof(l->inl));
        l->heap = items = p;
        l->cap = 2 * cap;
    }
    items[l->n++] = cl;
    cl->refs++;
    return 0;
}

/* ---------------- series ---------------- */

struct tagref {
    const char *k, *v;
    uint32_t kn, vn;
};

static int tag_less(const struct tagref *a, const struct tagref *b)
{
    uint32_t n = a->kn < b->kn ? a->kn : b->kn;
    int c = memcmp(a->k, b->k, n);
    return c < 0 || (c == 0 && a->kn < b->kn);
}

/* The series key: measurement and tags sorted by key (as InfluxDB's series key), with the
 * identity tags the line lacks. Lines already in that form are their own key. */
static void series_key(struct aggregate *a, const struct lp_line *l, int missing, const char **key,
                       size_t *keylen)
{
    static const char *const idkeys[3] = {"ns", "mci", "vm"};
    struct tagref t[LP_MAX_TAGS + 3];
    uint32_t n = 0;
    int sorted = 1;
    for (uint32_t i = 0; i < l->ntags; i++, n++) {
        t[n] =
            (struct tagref){l->tags[i].key.p, l->tags[i].val.p, l->tags[i].key.n, l->tags[i].val.n};
        if (n && !tag_less(&t[n - 1], &t[n]))
            sorted = 0;
    }
    if (sorted && !missing) {
        const struct lp_span *last = n ? &l->tags[n - 1].val : &l->measurement;
        *key = l->measurement.p;
        *keylen = (size_t)(last->p + last->n - l->measurement.p);
        return;
    }
    for (int k = 0; k < 3; k++)
        if (missing & (1 << k))
            t[n++] = (struct tagref){idkeys[k], a->ident[k].data, (uint32_t)strlen(idkeys[k]),
                                     (uint32_t)a->ident[k].len};
    for (uint32_t i = 1; i < n; i++) /* insertion sort: a handful, mostly in order */
        for (uint32_t j = i; j > 0 && tag_less(&t[j], &t[j - 1]); j--) {
            struct tagref tmp = t[j];
            t[j] = t[j - 1];
            t[j - 1] = tmp;
        }
    struct dsf_buf *b = &a->key;
    buf_reset(b);
    buf_put(b, l->measurement.p, l->measurement.n);
    for (uint32_t i = 0; i < n; i++) {
        buf_putc(b, ',');
        buf_put(b, t[i].k, t[i].kn);
        buf_putc(b, '=');
        buf_put(b, t[i].v, t[i].vn);
    }
    *key = b->data;
    *keylen = b->len;
}

/* hint: the series the route expects, checked like any other. */
static struct series *series_get(struct aggregate *a, struct series *hint, const struct rule *r,
                                 const char *key, size_t keylen, const struct lp_line *l)
{
    uint64_t h = dsf_hash_bytes(key, keylen);
    if (hint && hint->link.hash == h && hint->keylen == keylen &&
        memcmp(hint->key, key, keylen) == 0)
        return hint;
    for (struct dsf_hlink *e = dsf_htab_first(&a->series, h); e; e = e->next) {
        struct series *s = (struct series *)e;
        if (e->hash == h && s->keylen == keylen && memcmp(s->key, key, keylen) == 0)
            return s;
    }
    struct series *s = agg_series_new(r, key, keylen, l);
    if (s) {
        s->bucket = a->bucket;
        dsf_htab_insert(&a->series, &s->link, h);
    }
    return s;
}
static int field_index(struct series *s, const struct lp_kv *kv, uint32_t j)
{
    if (j < s->nfields && s->fields[j].n == kv->key.n &&
        memcmp(s->names + s->fields[j].off, kv->key.p, kv->key.n) == 0)
        return (int)j;
    for (uint32_t i = 0; i < s->nfields; i++)
        if (s->fields[i].n == kv->key.n &&
            memcmp(s->names + s->fields[i].off, kv->key.p, kv->key.n) == 0)
            return (int)i;
    return agg_add_field(s, kv);
}

/* ---------------- routes ----------------
 * An agent sends the same series in the same order, message after message. Its route
 * remembers which series each line of its last message went to, so that the state the next
 * lines will touch is prefetched a few lines ahead: with thousands of series that state is
 * out of the caches, and waiting for it line after line costs more than parsing the line.
 * A route's series were all seen when it was last used, and routes unused for half the
 * shortest series lifetime are dropped first, so a route never points at a freed series. */
#define ROUTE_AHEAD 4      /* lines: their parsing covers a fetch from memory */
#define ROUTE_MAX 1024     /* lines of one message that are followed */
#define ROUTE_TTL_MS 30000 /* series live at least SERIES_KEEP_MS */

struct hop {
    struct series *s; /* NULL: the line was not folded */
    /* Prefetch hints only: they may be stale by the time they are used, which is harmless. */
    const char *win, *acc;
    uint32_t hot, accbytes;
};

struct route {
    struct dsf_hlink link; /* first: the table's entries are routes */
    int64_t used_ms;
    uint32_t n, cap; /* hops of the last message; allocated */
    struct hop *hop;
    uint32_t idlen;
    char id[]; /* the agent's ns, mci and vm */
};

static void prefetch_span(const char *p, size_t n)
{
    uintptr_t line = (uintptr_t)p & ~(uintptr_t)63, end = (uintptr_t)p + n;
    for (; line < end; line += 64)
        __builtin_prefetch((const void *)line);
}

static void route_prefetch(const struct route *rt, uint32_t j)
{
    if (j >= rt->n || !rt->hop[j].s)
        return;
    const struct hop *h = &rt->hop[j];
    prefetch_span((const char *)h->s, h->hot);
    if (h->win) {
        prefetch_span(h->win, sizeof(struct window));
        prefetch_span(h->acc, h->accbytes);
    }
}

/* Records where line j went. */
static void route_set(struct aggregate *a, uint32_t j, struct series *s, const struct window *w)
{
    struct route *rt = a->route;
    if (!rt || j >= rt->cap)
        return;
    struct hop *h = &rt->hop[j];
    h->s = s;
    if (!s)
        return;
    size_t head = offsetof(struct series, key) + s->keylen;
    if (agg_in_block(s, s->names)) /* the field specs and names follow the key */
        head = (size_t)(s->names + s->nameslen - (char *)s);
    h->hot = (uint32_t)head;
    h->win = (const char *)w;
    h->acc = w ? (const char *)s->acc[w - s->win] : NULL;
    h->accbytes = w ? s->nfields * (uint32_t)sizeof(struct acc) : 0;
}

/* The series line j went to in the agent's last message (NULL if none), and prefetching for
 * the lines ahead. The route grows to the message's length as the lines come. */
static struct series *route_next(struct aggregate *a, uint32_t j)
{
    struct route *rt = a->route;
    if (!rt)
        return NULL;
    route_prefetch(rt, j + ROUTE_AHEAD);
    if (j >= rt->cap && j < ROUTE_MAX) {
        uint32_t cap = rt->cap ? rt->cap * 2 : 16;
        struct hop *hop = realloc(rt->hop, cap * sizeof(*hop));
        if (hop) {
            rt->hop = hop;
            rt->cap = cap;
        }
    }
    if (j >= rt->cap)
        return NULL;
    struct series *hint = j < rt->n ? rt->hop[j].s : NULL;
    rt->hop[j].s = NULL; /* until the line is folded */
    return hint;
}

/* The message's agent's route, made on its first message; NULL without memory. */
static struct route *route_for(struct aggregate *a, const char *id, size_t idlen)
{
    uint64_t h = dsf_hash_bytes(id, idlen);
    for (struct dsf_hlink *e = dsf_htab_first(&a->routes, h); e; e = e->next) {
        struct route *r = (struct route *)e;
        if (e->hash == h && r->idlen == idlen && memcmp(r->id, id, idlen) == 0)
            return r;
    }
    struct route *r = calloc(1, sizeof(*r) + idlen);
    if (!r)
        return NULL;
    r->idlen = (uint32_t)idlen;
    memcpy(r->id, id, idlen);
    dsf_htab_insert(&a->routes, &r->link, h);
    return r;
}

void agg_routes_sweep(struct aggregate *a, int64_t now, int all)
{
    for (size_t b = 0; b < a->routes.nbuckets; b++)
        for (struct dsf_hlink **link = &a->routes.bucket[b], *e; (e = *link);) {
            struct route *r = (struct route *)e;
            if (!all && now - r->used_ms <= ROUTE_TTL_MS) {
                link = &e->next;
                continue;
            }
            *link = e->next;
            free(r->hop);
            free(r);
            a->routes.count--;
        }
}

/* ---------------- folding ---------------- */

/* -1 when a < b, 0 when equal, 1 when greater, for two numbers of the same type. */
static int num_cmp(uint8_t type, union lp_value a, union lp_value b)
{
    if (type == DSF_V_FLOAT)
        return (a.f > b.f) - (a.f < b.f);
    if (type == DSF_V_INT)
        return (a.i > b.i) - (a.i < b.i);
    return (a.u > b.u) - (a.u < b.u);
}

/* 0, or -1 when the value cannot be folded here (counted as a conflict). */
static int fold(struct acc *acc, uint8_t fn, const struct lp_kv *kv, int64_t ts)
{
    int numeric = kv->type == DSF_V_FLOAT || kv->type == DSF_V_INT || kv->type == DSF_V_UINT;
    if (acc->count && acc->type != kv->type)
        return -1; /* the store would refuse it too */
    switch (fn) {
    case FN_MEAN: { /* InfluxDB's mean sums as float64, integers included */
        double value;
        if (!numeric || !lp_number(kv, &value))
            return -1;
        acc->v.f = (acc->count ? acc->v.f : 0) + value;
        break;
    }
    case FN_SUM:
        if (!numeric)
            return -1;
        if (!acc->count)
            acc->v = kv->num;
        else if (kv->type == DSF_V_FLOAT)
            acc->v.f += kv->num.f;
        else
            acc->v.u += kv->num.u; /* wraps like InfluxDB's int64 sum, without UB */
        break;
    case FN_MIN:
    case FN_MAX:
        if (!numeric)
            return -1;
        if (!acc->count || num_cmp(kv->type, kv->num, acc->v) == (fn == FN_MIN ? -1 : 1))
            acc->v = kv->num;
        break;
    case FN_COUNT:
        break;
    default: /* last */
        if (acc->count && ts < acc->last_ts)
            break;
        acc->last_ts = ts;
        acc->v = kv->num;
        if (kv->type == DSF_V_STR) {
            if (!acc->str && !(acc->str = calloc(1, sizeof(*acc->str))))
                return -1;
            buf_reset(acc->str);
            buf_put(acc->str, kv->val.p, kv->val.n);
        }
    }
    acc->type = (uint8_t)kv->type;
    acc->count++;
    return 0;
}

/* The slot for the window starting at start, opened if need be; NULL when late. */
static struct window *window_for(struct aggregate *a, struct series *s, int64_t start)
{
    struct window *free_slot = NULL, *oldest = NULL;
    if (s->win[s->cur].open && s->win[s->cur].start == start)
        return &s->win[s->cur];
    for (int i = 0; i < SLOTS; i++) {
        struct window *w = &s->win[i];
        if (w->open && w->start == start) {
            s->cur = i;
            return w;
        }
        if (!w->open && !free_slot)
            free_slot = w;
        if (w->open && (!oldest || w->start < oldest->start))
            oldest = w;
    }
    if (start <= s->emitted_upto)
        return NULL;
    if (!free_slot) {
        if (start < oldest->start)
            return NULL;
        agg_emit(a, s, oldest);
        free_slot = oldest;
    }
    free_slot->open = 1;
    free_slot->start = start;
    free_slot->samples = 0;
    s->cur = (int)(free_slot - s->win);
    if (start + s->rule->window_ns + a->grace_ns < s->due)
        s->due = start + s->rule->window_ns + a->grace_ns;
    return free_slot;
}

/* A message whose sample is not folded (late, or a copy) is acked once whatever the series
 * has in flight is stored: a copy must not be acked before the original's window. */
static void hold_inflight(struct aggregate *a, struct series *s)
{
    for (struct held *h = s->inflight; h; h = h->next)
        if (list_hold(&h->claims, a->claim))
            a->claim->failed = 1;
}

/* A copy of a message already folded (the agent resent it before its ack came): its claim
 * waits for the window holding the original, open or in flight. */
static void duplicate(struct aggregate *a, struct series *s, int64_t start)
{
    a->c->stats.agg_duplicates++;
    for (int i = 0; i < SLOTS; i++)
        if (s->win[i].open && s->win[i].start == start) {
            if (list_hold(&s->win[i].claims, a->claim))
                a->claim->failed = 1;
            return;
        }
    hold_inflight(a, s);
}

static struct claim *message_claim(struct aggregate *a)
{
    if (!a->claim && (a->claim = calloc(1, sizeof(*a->claim)))) {
        memcpy(a->claim->marks, a->marks, sizeof(a->marks));
        a->claim->n = a->nmarks;
        a->claim->refs = 1; /* the message's own, until aggregate_end */
        a->nmarks = 0;
    }
    return a->claim;
}

int aggregate_take(struct aggregate *a, const struct lp_line *l, int missing)
{
    uint32_t line = a->line++;
    struct series *hint = route_next(a, line);
    const struct rule *r = rule_for(a, l->measurement);
    int64_t window = r ? r->window_ns : 0;
    if (!r || l->ts < INT64_MIN + window || l->ts > INT64_MAX - window - a->grace_ns)
        return 0; /* not aggregated, or beyond where a window can be computed */
    const char *key;
    size_t keylen;
    series_key(a, l, missing, &key, &keylen);
    struct series *s;
    if (!message_claim(a) || !(s = series_get(a, hint, r, key, keylen, l)))
        return 0; /* out of memory: stored as it is rather than lost */
    int64_t mod = l->ts % window;
    int64_t start = l->ts - (mod < 0 ? mod + window : mod);
    s->seen_ms = a->now_ms;
    if (a->duplicate) {
        duplicate(a, s, start);
        route_set(a, line, s, NULL);
        return 1;
    }
    struct window *w = window_for(a, s, start);
    route_set(a, line, s, w);
    if (!w) {
        a->c->stats.agg_late++;
        hold_inflight(a, s);
        return 1;
    }
    if (list_hold(&w->claims, a->claim))
        a->claim->failed = 1;
    int slot = (int)(w - s->win);
    for (uint32_t j = 0; j < l->nfields; j++) {
        int i = field_index(s, &l->fields[j], j);
        if (i >= 0 && fold(&s->acc[slot][i], s->fields[i].fn, &l->fields[j], l->ts))
            a->c->stats.agg_conflicts++;
    }
    w->samples++;
    w->touched_ms = a->now_ms;
    a->c->stats.agg_points++;
    if (l->ts > s->max_ts)
        s->max_ts = l->ts;
    if (s->max_ts >= s->due)
        agg_emit_passed(a, s, start);
    return 1;
}

void aggregate_begin(struct aggregate *a, const struct dsf_identity *id,
                     struct writer_mark *const *marks, size_t nmarks, int duplicate)
{
    a->duplicate = duplicate;
    const char *vals[3] = {id->ns, id->mci, id->vm};
    for (int k = 0; k < 3; k++) {
        buf_reset(&a->ident[k]);
        lp_put_key(&a->ident[k], vals[k]); /* as ingest_render_line adds them */
    }
    a->nmarks = nmarks > 2 ? 2 : nmarks;
    memcpy(a->marks, marks, a->nmarks * sizeof(*marks));
    a->claim = NULL;
    a->now_ms = dsf_mono_ms();
    a->line = 0;
    a->bucket = UINT32_MAX;
    if (a->c->follow.owned) { /* MQTT buckets: a bucket move hands its windows over */
        char agent[3 * sizeof(id->ns)];
        int n = snprintf(agent, sizeof(agent), "%s/%s/%s", id->ns, id->mci, id->vm);
        if (n > 0 && (size_t)n < sizeof(agent))
            a->bucket = dsf_bucket(agent, (size_t)n, (uint32_t)a->c->cfg.mqtt.buckets_total);
    }
    struct dsf_buf *key = &a->key; /* the identity as a route key: ns, mci, vm */
    buf_reset(key);
    for (int k = 0; k < 3; k++) {
        if (a->ident[k].len)
            buf_put(key, a->ident[k].data, a->ident[k].len);
        buf_putc(key, '/'); /* a topic level cannot hold one */
    }
    if ((a->route = route_for(a, key->data, key->len))) {
        a->route->used_ms = a->now_ms;
        for (uint32_t j = 0; j < ROUTE_AHEAD; j++)
            route_prefetch(a->route, j);
    }
}

size_t aggregate_end(struct aggregate *a, int forwarded, struct writer_mark **marks)
{
    if (a->route) {
        a->route->n = a->line < a->route->cap ? a->line : a->route->cap;
        a->route = NULL;
    }
    struct claim *cl = a->claim;
    if (!cl) {
        memcpy(marks, a->marks, a->nmarks * sizeof(*marks));
        return a->nmarks;
    }
    a->claim = NULL;
    size_t n = 0;
    if (forwarded) {
        if ((marks[0] = writer_mark_new(&agg_claim_ops, cl, 0, ""))) {
            cl->refs++;
            n = 1;
        } else {
            cl->failed = 1;
        }
    }
    agg_claim_release(cl, 0);
    return n;
}
