/* A series' memory: one block for the fields of its first line, grown for later fields. */
#include "collector/aggregate_impl.h"

#include <stdlib.h>
#include <string.h>

/* A series lives in one allocation, sized for the fields of its first line: header, key,
 * field specs and names, windows, accumulators. A sample then touches memory at known
 * offsets from the header, fetched together rather than one pointer after another. Fields
 * that come later move the specs, names or accumulators to their own allocations. */
static size_t align8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

struct series *agg_series_new(const struct rule *r, const char *key, size_t keylen,
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

void agg_series_free(struct series *s)
{
    for (int w = 0; w < SLOTS; w++) {
        for (uint32_t i = 0; i < s->capfields; i++)
            if (s->acc[w][i].str) {
                buf_free(s->acc[w][i].str);
                free(s->acc[w][i].str);
            }
        if (!agg_in_block(s, s->acc[w]))
            free(s->acc[w]);
        agg_list_release(&s->win[w].claims, 1);
    }
    while (s->inflight)
        agg_held_finish(s->inflight, 1);
    if (!agg_in_block(s, s->fields))
        free(s->fields);
    if (!agg_in_block(s, s->names))
        free(s->names);
    free(s);
}

/* Moves an array out of the block (or grows it), keeping its first used bytes. */
static void *regrow(struct series *s, void *p, size_t used, size_t size)
{
    int inside = agg_in_block(s, p);
    void *grown = inside ? malloc(size) : realloc(p, size);
    if (grown && inside)
        memcpy(grown, p, used);
    if (grown)
        memset((char *)grown + used, 0, size - used);
    return grown;
}

int agg_add_field(struct series *s, const struct lp_kv *kv)
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
