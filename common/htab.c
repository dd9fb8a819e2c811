#include "common/htab.h"

#include <stdlib.h>

int dsf_htab_grow(struct dsf_htab *t)
{
    size_t n = t->nbuckets ? t->nbuckets * 2 : 1024;
    struct dsf_hlink **bucket = calloc(n, sizeof(*bucket));
    if (!bucket)
        return -1;
    for (size_t i = 0; i < t->nbuckets; i++)
        for (struct dsf_hlink *e = t->bucket[i], *next; e; e = next) {
            next = e->next;
            e->next = bucket[e->hash & (n - 1)];
            bucket[e->hash & (n - 1)] = e;
        }
    free(t->bucket);
    t->bucket = bucket;
    t->nbuckets = n;
    return 0;
}

void dsf_htab_free(struct dsf_htab *t)
{
    free(t->bucket);
    t->bucket = NULL;
    t->nbuckets = t->count = 0;
}

void dsf_htab_free_all(struct dsf_htab *t, void (*free_entry)(struct dsf_hlink *e))
{
    for (size_t i = 0; i < t->nbuckets; i++) {
        for (struct dsf_hlink *l = t->bucket[i], *next; l; l = next) {
            next = l->next;
            if (free_entry)
                free_entry(l);
            else
                free(l);
        }
    }
    dsf_htab_free(t);
}
