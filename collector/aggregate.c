#define DSF_MODULE "aggregate"
#include "collector/aggregate.h"
#include "collector/aggregate_impl.h"
#include "collector/collector.h"
#include "collector/writer.h"
#include "common/htab.h"
#include "common/log.h"
#include "common/loop.h"

#include <event2/event.h>
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Open windows per series: the current one, the previous during its grace, and room for
 * out-of-order samples; more than that emits the oldest early. */
#define SLOTS 4

/* A field's state in a window: only what its function needs, so that a series' windows stay
 * small (32 bytes a field) and a sample touches few cache lines. */
struct acc {
    union lp_value v;    /* mean: the float sum; sum, min, max, last: the typed result */
    int64_t last_ts;     /* last: the sample v came from */
    struct dsf_buf *str; /* last of a string field, escaped as it came; NULL until one comes */
    uint32_t count;
    uint8_t type; /* enum dsf_vtype of the first value; later values of another type conflict */
};

struct claim; /* one message's marks, released when everything holding it is stored */

/* The claims a window holds, and an emitted window until stored. A 10 s window of 2 s
 * samples holds 5: inline, no allocation, in the cache lines the window already uses. */
#define INLINE_CLAIMS 6
struct claim_list {
    struct claim **heap; /* NULL while the inline room suffices */
    uint32_t n, cap;
    struct claim *inl[INLINE_CLAIMS];
};

struct window {
    int64_t start;
    int64_t touched_ms; /* monotonic time of the last sample folded in */
    uint32_t samples;
    int open;
    struct claim_list claims;
};

struct held; /* an emitted window's claims, until the store has its point */

struct fieldspec {
    uint32_t off, n; /* the key in the series' names */
    uint8_t fn;
};

struct series {
    /* What a sample reads first, in the first cache lines: lookup, then its window. */
    struct dsf_hlink link; /* first: the table's entries are series */
    uint32_t keylen;
    int cur; /* the slot the last sample went to */
    const struct rule *rule;
    int64_t max_ts;       /* newest sample time */
    int64_t emitted_upto; /* start of the newest window emitted; older samples are late */
    int64_t due;          /* no open window can be passed before max_ts reaches this */
    int64_t seen_ms;
    struct acc *acc[SLOTS]; /* each window's accumulators, one per field */
    struct window *win;     /* SLOTS of them */
    struct fieldspec *fields;
    uint32_t nfields, capfields;
    char *names; /* field keys, escaped, one after the other */
    uint32_t nameslen, namescap;
    struct held *inflight;
    char *end;  /* of the one allocation (see series_new) */
    char key[]; /* measurement and sorted tags: the emitted point's head */
};

struct claim {
    struct writer_mark *marks[2];
    size_t n;
    int refs, failed;
};

struct held {
    struct held *next, **pprev; /* the series' windows in flight */
    struct claim_list claims;
};

struct aggregate {
    struct collector *c;
    aggregate_sink sink;
    void *sink_ctx;
    struct rule *rules;
    size_t nrules;
    const struct rule *any;
    int64_t grace_ns, grace_ms;
    struct dsf_htab series, routes; /* entries begin with their link */
    struct event *sweep;
    struct dsf_buf key, out;
    /* The message being taken. */
    struct dsf_buf ident[3]; /* its identity tag values, escaped */
    struct writer_mark *marks[2];
    size_t nmarks;
    struct claim *claim;
    int duplicate; /* a copy of a message already folded: its lines are not folded again */
    int64_t now_ms;
    struct route *route; /* its agent's */
    uint32_t line;       /* lines taken */
};

static const struct rule *rule_for(const struct aggregate *a, struct lp_span m)
{
    for (size_t i = 0; i < a->nrules; i++)
        if (a->rules[i].n == m.n && memcmp(a->rules[i].measurement, m.p, m.n) == 0)
            return &a->rules[i];
    return a->any;
}

/* ---------------- durability claims ---------------- */

static void claim_release(struct claim *cl, int failed)
{
    cl->failed |= failed;
    if (--cl->refs > 0)
        return;
    if (cl->failed)
        writer_marks_abandon(cl->marks, cl->n);
    else
        writer_marks_done(cl->marks, cl->n);
    free(cl);
}

static void claim_stored(void *owner, uint64_t value, const char *tag)
{
    claim_release(owner, 0);
}

static void claim_dropped(void *owner, uint64_t value, const char *tag)
{
    claim_release(owner, 1);
}

static const struct writer_mark_ops claim_ops = {claim_stored, claim_dropped};

static struct claim **list_items(struct claim_list *l)
{
    return l->heap ? l->heap : l->inl;
}

/* Adds a reference to cl; 0, or -1 without memory. */
static int list_hold(struct claim_list *l, struct claim *cl)
{
    struct claim **items = list_items(l);
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

static void list_release(struct claim_list *l, int failed)
{
    struct claim **items = list_items(l);
    for (uint32_t i = 0; i < l->n; i++)
        claim_release(items[i], failed);
    free(l->heap);
    *l = (struct claim_list){0};
}

/* The claims change hands, from an emitted window to its held record. */
static void list_move(struct claim_list *to, struct claim_list *from)
{
    *to = *from;
    *from = (struct claim_list){0};
}

static void held_finish(struct held *h, int failed)
{
    if (h->pprev) {
        *h->pprev = h->next;
        if (h->next)
            h->next->pprev = h->pprev;
    }
    list_release(&h->claims, failed);
    free(h);
}

static void held_stored(void *owner, uint64_t value, const char *tag)
{
    held_finish(owner, 0);
}

static void held_dropped(void *owner, uint64_t value, const char *tag)
{
    held_finish(owner, 1);
}

static const struct writer_mark_ops held_ops = {held_stored, held_dropped};

/* ---------------- series ---------------- */

static uint64_t hash_bytes(const char *p, size_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ n;
    for (; n >= 8; p += 8, n -= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdULL;
        h ^= h >> 29;
    }
    uint64_t w = 0;
    memcpy(&w, p, n);
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ULL;
    return h ^ (h >> 32);
}

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

/* A series lives in one allocation, sized for the fields of its first line: header, key,
 * field specs and names, windows, accumulators. A sample then touches memory at known
 * offsets from the header, fetched together rather than one pointer after another. Fields
 * that come later move the specs, names or accumulators to their own allocations. */
static size_t align8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

static int in_block(const struct series *s, const void *p)
{
    return (const char *)p >= (const char *)s && (const char *)p < s->end;
}

static struct series *series_new(const struct rule *r, const char *key, size_t keylen,
                                 const struct lp_line *l)
{
    uint32_t cap = l->nfields > 4 ? l->nfields : 4, names = 16;
    for (uint32_t j = 0; j < l->nfields; j++)
        names += l->fields[j].key.n;
    size_t at_fields = align8(sizeof(struct series) + keylen);
    size_t at_names = at_fields + cap * sizeof(struct fieldspec);
    size_t at_win = align8(at_names + names);
    size_t at_acc = at_win + SLOTS * sizeof(struct window);
    size_t size = at_acc + SLOTS * (size_t)cap * sizeof(struct acc);
    struct series *s = calloc(1, size);
    if (!s)
        return NULL;
    char *base = (char *)s;
    memcpy(s->key, key, keylen);
    s->keylen = (uint32_t)keylen;
    s->rule = r;
    s->max_ts = s->emitted_upto = INT64_MIN;
    s->due = INT64_MAX;
    s->fields = (struct fieldspec *)(base + at_fields);
    s->capfields = cap;
    s->names = base + at_names;
    s->namescap = names;
    s->win = (struct window *)(base + at_win);
    for (int w = 0; w < SLOTS; w++)
        s->acc[w] = (struct acc *)(base + at_acc) + (size_t)w * cap;
    s->end = base + size;
    return s;
}

/* hint: the series the route expects, checked like any other. */
static struct series *series_get(struct aggregate *a, struct series *hint, const struct rule *r,
                                 const char *key, size_t keylen, const struct lp_line *l)
{
    uint64_t h = hash_bytes(key, keylen);
    if (hint && hint->link.hash == h && hint->keylen == keylen &&
        memcmp(hint->key, key, keylen) == 0)
        return hint;
    for (struct dsf_hlink *e = dsf_htab_first(&a->series, h); e; e = e->next) {
        struct series *s = (struct series *)e;
        if (e->hash == h && s->keylen == keylen && memcmp(s->key, key, keylen) == 0)
            return s;
    }
    struct series *s = series_new(r, key, keylen, l);
    if (s)
        dsf_htab_insert(&a->series, &s->link, h);
    return s;
}

static void series_free(struct series *s)
{
    for (int w = 0; w < SLOTS; w++) {
        for (uint32_t i = 0; i < s->capfields; i++)
            if (s->acc[w][i].str) {
                buf_free(s->acc[w][i].str);
                free(s->acc[w][i].str);
            }
        if (!in_block(s, s->acc[w]))
            free(s->acc[w]);
        list_release(&s->win[w].claims, 1);
    }
    while (s->inflight)
        held_finish(s->inflight, 1);
    if (!in_block(s, s->fields))
        free(s->fields);
    if (!in_block(s, s->names))
        free(s->names);
    free(s);
}

/* Moves an array out of the block (or grows it), keeping its first used bytes. */
static void *regrow(struct series *s, void *p, size_t used, size_t size)
{
    int inside = in_block(s, p);
    void *grown = inside ? malloc(size) : realloc(p, size);
    if (grown && inside)
        memcpy(grown, p, used);
    if (grown)
        memset((char *)grown + used, 0, size - used);
    return grown;
}

static int add_field(struct series *s, const struct lp_kv *kv)
{
    if (s->nfields == s->capfields) {
        uint32_t cap = s->capfields * 2;
        struct fieldspec *f = regrow(s, s->fields, s->nfields * sizeof(*f), cap * sizeof(*f));
        if (!f)
            return -1;
        s->fields = f;
        for (int w = 0; w < SLOTS; w++) {
            struct acc *acc = regrow(s, s->acc[w], s->capfields * sizeof(*acc), cap * sizeof(*acc));
            if (!acc)
                return -1; /* the arrays grown so far are merely larger */
            s->acc[w] = acc;
        }
        s->capfields = cap;
    }
    if (s->nameslen + kv->key.n > s->namescap) {
        uint32_t cap = 2 * (s->nameslen + kv->key.n);
        char *names = regrow(s, s->names, s->nameslen, cap);
        if (!names)
            return -1;
        s->names = names;
        s->namescap = cap;
    }
    struct fieldspec *f = &s->fields[s->nfields];
    f->off = s->nameslen;
    f->n = kv->key.n;
    f->fn = agg_field_fn(s->rule, kv->key.p, kv->key.n, (uint8_t)kv->type);
    memcpy(s->names + s->nameslen, kv->key.p, kv->key.n);
    s->nameslen += kv->key.n;
    return (int)s->nfields++;
}

/* The series' index for a field; fields usually come in the same order, so try j first. */
static int field_index(struct series *s, const struct lp_kv *kv, uint32_t j)
{
    if (j < s->nfields && s->fields[j].n == kv->key.n &&
        memcmp(s->names + s->fields[j].off, kv->key.p, kv->key.n) == 0)
        return (int)j;
    for (uint32_t i = 0; i < s->nfields; i++)
        if (s->fields[i].n == kv->key.n &&
            memcmp(s->names + s->fields[i].off, kv->key.p, kv->key.n) == 0)
            return (int)i;
    return add_field(s, kv);
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
#define SERIES_KEEP_MS 60000

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
    if (in_block(s, s->names)) /* the field specs and names follow the key */
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
    uint64_t h = hash_bytes(id, idlen);
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

static void routes_sweep(struct aggregate *a, int64_t now, int all)
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

/* ---------------- folding and emitting ---------------- */

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

/* Appends ",key=value" (or " key=value" first); 0 when the value cannot be written. */
static int put_field(struct dsf_buf *out, const char *names, const struct fieldspec *f,
                     const struct acc *acc, int first)
{
    union lp_value v = acc->v;
    uint8_t type = acc->type;
    if (f->fn == FN_MEAN) {
        v.f = acc->v.f / acc->count;
        type = DSF_V_FLOAT;
    } else if (f->fn == FN_COUNT) {
        v.i = acc->count;
        type = DSF_V_INT;
    }
    if (type == DSF_V_FLOAT && !isfinite(v.f))
        return 0; /* a sum or mean that overflowed: line protocol has no infinity */
    buf_putc(out, first ? ' ' : ',');
    buf_put(out, names + f->off, f->n);
    buf_putc(out, '=');
    if (type == DSF_V_STR) {
        buf_putc(out, '"');
        if (acc->str)
            buf_put(out, acc->str->data, acc->str->len);
        buf_putc(out, '"');
    } else {
        agg_put_value(out, type, v);
    }
    return 1;
}

static int sink_writer(void *ctx, const char *lines, size_t len, uint32_t nlines,
                       struct writer_mark *const *marks, size_t nmarks)
{
    return writer_add(ctx, lines, len, nlines, marks, nmarks);
}

/* The window becomes one point at its start; its claims wait for the store with it. */
static void emit(struct aggregate *a, struct series *s, struct window *w)
{
    struct dsf_buf *out = &a->out;
    buf_reset(out);
    buf_put(out, s->key, s->keylen);
    int nout = 0;
    for (uint32_t i = 0; i < s->nfields; i++) {
        struct acc *acc = &s->acc[w - s->win][i];
        if (acc->count && put_field(out, s->names, &s->fields[i], acc, nout == 0))
            nout++;
        else if (acc->count)
            a->c->stats.agg_conflicts++;
        acc->count = 0;
    }
    buf_putc(out, ' ');
    agg_put_i64(out, w->start);
    buf_putc(out, '\n');
    if (w->start > s->emitted_upto)
        s->emitted_upto = w->start;
    w->open = 0;
    uint32_t samples = w->samples;
    w->samples = 0;
    struct held *h = calloc(1, sizeof(*h));
    struct writer_mark *m = h ? writer_mark_new(&held_ops, h, 0, "") : NULL;
    if (!m) {
        free(h);
        a->c->stats.dropped_lines += samples;
        list_release(&w->claims, 1);
        return;
    }
    list_move(&h->claims, &w->claims);
    h->next = s->inflight;
    if (h->next)
        h->next->pprev = &h->next;
    h->pprev = &s->inflight;
    s->inflight = h;
    if (!nout) {
        writer_marks_done(&m, 1); /* nothing writable: the conflicts are counted */
    } else if (a->sink(a->sink_ctx, out->data, out->len, 1, &m, 1)) {
        a->c->stats.dropped_lines += samples; /* counted; their senders are not acked */
        writer_marks_abandon(&m, 1);
    } else {
        a->c->stats.agg_windows++;
    }
}

/* Windows before start whose end plus the grace the series has passed. */
static void emit_passed(struct aggregate *a, struct series *s, int64_t start)
{
    int64_t window = s->rule->window_ns;
    s->due = INT64_MAX;
    for (int i = 0; i < SLOTS; i++) {
        struct window *w = &s->win[i];
        int64_t end = w->open ? w->start + window + a->grace_ns : INT64_MAX;
        if (w->start < start && end <= s->max_ts)
            emit(a, s, w);
        else if (end < s->due)
            s->due = end;
    }
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
        emit(a, s, oldest);
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
        emit_passed(a, s, start);
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
        if ((marks[0] = writer_mark_new(&claim_ops, cl, 0, ""))) {
            cl->refs++;
            n = 1;
        } else {
            cl->failed = 1;
        }
    }
    claim_release(cl, 0);
    return n;
}

/* ---------------- sweep, flush, lifetime ---------------- */

static void sweep_series(struct aggregate *a, struct dsf_hlink ***link, int64_t now)
{
    struct series *s = (struct series *)**link;
    int64_t window_ms = s->rule->window_ns / 1000000;
    int open = 0;
    for (int i = 0; i < SLOTS; i++) {
        struct window *w = &s->win[i];
        if (w->open && now - w->touched_ms >= window_ms + a->grace_ms)
            emit(a, s, w); /* the series went quiet: its agent stopped or moved */
        open |= w->open;
    }
    int64_t keep = window_ms * 10 > SERIES_KEEP_MS ? window_ms * 10 : SERIES_KEEP_MS;
    if (!open && !s->inflight && now - s->seen_ms > keep) {
        **link = s->link.next;
        series_free(s);
        a->series.count--;
        return;
    }
    *link = &s->link.next;
}

static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
    struct aggregate *a = arg;
    int64_t now = dsf_mono_ms();
    routes_sweep(a, now, 0); /* first: no route may outlive its series */
    for (size_t b = 0; b < a->series.nbuckets; b++) {
        struct dsf_hlink **link = &a->series.bucket[b];
        while (*link)
            sweep_series(a, &link, now);
    }
}

void aggregate_flush(struct aggregate *a)
{
    for (size_t b = 0; a && b < a->series.nbuckets; b++)
        for (struct dsf_hlink *e = a->series.bucket[b]; e; e = e->next)
            for (int i = 0; i < SLOTS; i++) {
                struct series *s = (struct series *)e;
                if (s->win[i].open)
                    emit(a, s, &s->win[i]);
            }
}

struct aggregate *aggregate_new(struct collector *c, aggregate_sink sink, void *sink_ctx, char *err,
                                size_t errlen)
{
    struct aggregate *a = calloc(1, sizeof(*a));
    const struct dsf_strlist *rules = &c->cfg.aggregate.rules;
    if (!a || !(a->rules = calloc(rules->count + 1, sizeof(*a->rules)))) {
        free(a);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    a->c = c;
    a->sink = sink ? sink : sink_writer;
    a->sink_ctx = sink ? sink_ctx : c->writer;
    a->grace_ms = c->cfg.aggregate.grace_ms;
    a->grace_ns = a->grace_ms * 1000000;
    for (; a->nrules < rules->count; a->nrules++) {
        struct rule *r = &a->rules[a->nrules];
        if (agg_rule_parse(rules->items[a->nrules], r, err, errlen)) {
            aggregate_free(a);
            return NULL;
        }
        if (strcmp(r->measurement, "*") == 0)
            a->any = r;
        log_info("aggregating %s into %" PRId64 " ms windows", r->measurement,
                 r->window_ns / 1000000);
    }
    if (dsf_htab_grow(&a->series) || dsf_htab_grow(&a->routes)) {
        aggregate_free(a);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (c->base) {
        a->sweep = event_new(c->base, -1, EV_PERSIST, on_sweep, a);
        struct timeval tv = {0, 500000};
        if (a->sweep)
            event_add(a->sweep, &tv);
    }
    return a;
}

void aggregate_free(struct aggregate *a)
{
    if (!a)
        return;
    if (a->sweep)
        event_free(a->sweep);
    for (size_t b = 0; b < a->series.nbuckets; b++)
        for (struct dsf_hlink *e = a->series.bucket[b], *next; e; e = next) {
            next = e->next;
            series_free((struct series *)e);
        }
    dsf_htab_free(&a->series);
    routes_sweep(a, 0, 1);
    dsf_htab_free(&a->routes);
    for (size_t i = 0; i < a->nrules; i++)
        agg_rule_free(&a->rules[i]);
    free(a->rules);
    buf_free(&a->key);
    buf_free(&a->out);
    for (int k = 0; k < 3; k++)
        buf_free(&a->ident[k]);
    free(a);
}
