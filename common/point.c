#include "common/point.h"

#include <stdlib.h>
#include <string.h>

static int grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap * 2 : 64;
    while (n < need)
        n *= 2;
    void *p = realloc(*arr, n * elem);
    if (!p)
        return -1;
    *arr = p;
    *cap = n;
    return 0;
}

static uint32_t intern(struct dsf_batch *b, const char *s)
{
    uint32_t off = (uint32_t)b->strings.len;
    buf_put(&b->strings, s, strlen(s) + 1);
    return off;
}

void batch_reset(struct dsf_batch *b)
{
    b->npoints = b->ntags = b->nfields = 0;
    b->open = 0;
    buf_reset(&b->strings);
}

void batch_free(struct dsf_batch *b)
{
    free(b->points);
    free(b->tags);
    free(b->fields);
    buf_free(&b->strings);
    memset(b, 0, sizeof(*b));
}

void batch_begin(struct dsf_batch *b, const char *name, int64_t ts_ns)
{
    if (grow((void **)&b->points, &b->cap_points, b->npoints + 1, sizeof(*b->points))) {
        b->open = 0;
        b->dropped_oom++;
        return;
    }
    struct dsf_point *p = &b->points[b->npoints];
    p->name = intern(b, name);
    p->tag0 = (uint32_t)b->ntags;
    p->field0 = (uint32_t)b->nfields;
    p->ntags = p->nfields = 0;
    p->ts_ns = ts_ns;
    b->open = 1;
}

void batch_tag(struct dsf_batch *b, const char *key, const char *val)
{
    if (!b->open || !val || !*val)
        return; /* line protocol has no empty tag values */
    if (grow((void **)&b->tags, &b->cap_tags, b->ntags + 1, sizeof(*b->tags)))
        return;
    b->tags[b->ntags].key = intern(b, key);
    b->tags[b->ntags].val = intern(b, val);
    b->ntags++;
    b->points[b->npoints].ntags++;
}

static struct dsf_field *add_field(struct dsf_batch *b, const char *key, enum dsf_vtype type)
{
    if (!b->open || grow((void **)&b->fields, &b->cap_fields, b->nfields + 1, sizeof(*b->fields)))
        return NULL;
    struct dsf_field *f = &b->fields[b->nfields++];
    f->key = intern(b, key);
    f->type = type;
    b->points[b->npoints].nfields++;
    return f;
}

void batch_field_f(struct dsf_batch *b, const char *key, double v)
{
    if (v != v || v - v != 0)
        return; /* NaN and infinities have no line-protocol form */
    struct dsf_field *f = add_field(b, key, DSF_V_FLOAT);
    if (f)
        f->v.f = v;
}

void batch_field_i(struct dsf_batch *b, const char *key, int64_t v)
{
    struct dsf_field *f = add_field(b, key, DSF_V_INT);
    if (f)
        f->v.i = v;
}

void batch_field_u(struct dsf_batch *b, const char *key, uint64_t v)
{
    struct dsf_field *f = add_field(b, key, DSF_V_UINT);
    if (f)
        f->v.u = v;
}

void batch_field_b(struct dsf_batch *b, const char *key, int v)
{
    struct dsf_field *f = add_field(b, key, DSF_V_BOOL);
    if (f)
        f->v.b = v ? 1 : 0;
}

void batch_field_s(struct dsf_batch *b, const char *key, const char *v)
{
    struct dsf_field *f = add_field(b, key, DSF_V_STR);
    if (f)
        f->v.s = intern(b, v);
}

void batch_end(struct dsf_batch *b)
{
    if (!b->open)
        return;
    b->open = 0;
    struct dsf_point *p = &b->points[b->npoints];
    if (b->strings.oom) {
        b->dropped_oom++;
    } else if (p->nfields > 0) {
        b->npoints++;
        return;
    }
    b->ntags = p->tag0;
    b->nfields = p->field0;
}

void tagset_add(struct dsf_tagset *t, const char *key, const char *val)
{
    if (!val || !*val || t->count >= sizeof(t->keys) / sizeof(t->keys[0]))
        return;
    t->keys[t->count] = key;
    t->vals[t->count] = val;
    t->count++;
}
