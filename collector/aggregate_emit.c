/* Aggregation's output: windows emitted as points, their claims released once stored, idle
 * windows swept, everything flushed on shutdown; and the aggregate's lifetime. */
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------- durability claims ---------------- */

void agg_claim_release(struct claim *cl, int failed)
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
    agg_claim_release(owner, 0);
}

static void claim_dropped(void *owner, uint64_t value, const char *tag)
{
    agg_claim_release(owner, 1);
}

const struct writer_mark_ops agg_claim_ops = {claim_stored, claim_dropped};

void agg_list_release(struct claim_list *l, int failed)
{
    struct claim **items = agg_list_items(l);
    for (uint32_t i = 0; i < l->n; i++)
        agg_claim_release(items[i], failed);
    free(l->heap);
    *l = (struct claim_list){0};
}

/* The claims change hands, from an emitted window to its held record. */
static void list_move(struct claim_list *to, struct claim_list *from)
{
    *to = *from;
    *from = (struct claim_list){0};
}

void agg_held_finish(struct held *h, int failed)
{
    if (h->pprev) {
        *h->pprev = h->next;
        if (h->next)
            h->next->pprev = h->pprev;
    }
    agg_list_release(&h->claims, failed);
    free(h);
}

static void held_stored(void *owner, uint64_t value, const char *tag)
{
    agg_held_finish(owner, 0);
}

static void held_dropped(void *owner, uint64_t value, const char *tag)
{
    agg_held_finish(owner, 1);
}

static const struct writer_mark_ops held_ops = {held_stored, held_dropped};

/* ---------------- emitting ---------------- */

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

void agg_emit(struct aggregate *a, struct series *s, struct window *w)
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
        agg_list_release(&w->claims, 1);
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

int agg_held_back(const struct aggregate *a, const struct series *s, const struct window *w,
                  int64_t now_ms)
{
    if (!a->gain || s->bucket >= a->nbuckets)
        return 0;
    const struct gain *g = &a->gain[s->bucket];
    return now_ms < g->until_ms && w->start < g->wall_ns;
}

void agg_emit_passed(struct aggregate *a, struct series *s, int64_t start)
{
    int64_t window = s->rule->window_ns;
    s->due = INT64_MAX;
    for (int i = 0; i < SLOTS; i++) {
        struct window *w = &s->win[i];
        int64_t end = w->open ? w->start + window + a->grace_ns : INT64_MAX;
        if (w->start < start && end <= s->max_ts && !agg_held_back(a, s, w, a->now_ms))
            agg_emit(a, s, w);
        else if (end < s->due)
            s->due = end;
    }
}

/* ---------------- sweep, flush, lifetime ---------------- */

static void sweep_series(struct aggregate *a, struct dsf_hlink ***link, int64_t now)
{
    struct series *s = (struct series *)**link;
    int64_t window_ms = s->rule->window_ns / 1000000;
    int open = 0;
    for (int i = 0; i < SLOTS; i++) {
        struct window *w = &s->win[i];
        /* Quiet (its agent stopped or moved), or passed while held for a handover. */
        if (w->open && !agg_held_back(a, s, w, now) &&
            (now - w->touched_ms >= window_ms + a->grace_ms ||
             s->max_ts >= w->start + s->rule->window_ns + a->grace_ns))
            agg_emit(a, s, w);
        open |= w->open;
    }
    int64_t keep = window_ms * 10 > SERIES_KEEP_MS ? window_ms * 10 : SERIES_KEEP_MS;
    if (!open && !s->inflight && now - s->seen_ms > keep) {
        **link = s->link.next;
        agg_series_free(s);
        a->series.count--;
        return;
    }
    *link = &s->link.next;
}

static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
    struct aggregate *a = arg;
    int64_t now = dsf_mono_ms();
    agg_routes_sweep(a, now, 0); /* first: no route may outlive its series */
    for (size_t b = 0; b < a->series.nbuckets; b++) {
        struct dsf_hlink **link = &a->series.bucket[b];
        while (*link)
            sweep_series(a, &link, now);
    }
}

/* The window's messages go back to their agents unacknowledged; counted. */
static void discard(struct aggregate *a, struct series *s, struct window *w)
{
    a->c->stats.agg_handed_over += w->samples;
    for (uint32_t i = 0; i < s->nfields; i++)
        s->acc[w - s->win][i].count = 0;
    w->open = 0;
    w->samples = 0;
    agg_list_release(&w->claims, 1);
}

void aggregate_bucket_lost(struct aggregate *a, uint32_t bucket)
{
    for (size_t b = 0; a && b < a->series.nbuckets; b++)
        for (struct dsf_hlink *e = a->series.bucket[b]; e; e = e->next) {
            struct series *s = (struct series *)e;
            for (int i = 0; s->bucket == bucket && i < SLOTS; i++)
                if (s->win[i].open)
                    discard(a, s, &s->win[i]);
        }
}

void aggregate_bucket_gained(struct aggregate *a, uint32_t bucket)
{
    uint32_t total = a ? (uint32_t)a->c->cfg.mqtt.buckets_total : 0;
    if (!a || bucket >= total)
        return;
    if (!a->gain && (a->gain = calloc(total, sizeof(*a->gain))))
        a->nbuckets = total;
    if (!a->gain)
        return; /* out of memory: its windows are emitted as usual, maybe short */
    a->gain[bucket].wall_ns = dsf_now_ns();
    a->gain[bucket].until_ms = dsf_mono_ms() + a->handover_ms;
}

void aggregate_flush(struct aggregate *a)
{
    for (size_t b = 0; a && b < a->series.nbuckets; b++)
        for (struct dsf_hlink *e = a->series.bucket[b]; e; e = e->next)
            for (int i = 0; i < SLOTS; i++) {
                struct series *s = (struct series *)e;
                if (s->win[i].open)
                    agg_emit(a, s, &s->win[i]);
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
    a->handover_ms = c->cfg.aggregate.handover_ms;
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
            agg_series_free((struct series *)e);
        }
    dsf_htab_free(&a->series);
    agg_routes_sweep(a, 0, 1);
    dsf_htab_free(&a->routes);
    for (size_t i = 0; i < a->nrules; i++)
        agg_rule_free(&a->rules[i]);
    free(a->rules);
    free(a->gain);
    buf_free(&a->key);
    buf_free(&a->out);
    for (int k = 0; k < 3; k++)
        buf_free(&a->ident[k]);
    free(a);
}
