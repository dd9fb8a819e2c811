/*
 * One hash table for the hot paths (the collector's aggregation series and routes, the alarm
 * engine's series): intrusive and chained. An entry embeds a struct dsf_hlink, which keeps
 * its full hash, so a lookup compares hashes before touching keys and growing never rehashes
 * a key. Buckets are a power of two and double when the entries outnumber them. Lookups are
 * inline: the callers walk the chain from dsf_htab_first() and compare their own keys.
 */
#ifndef DSF_HTAB_H
#define DSF_HTAB_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct dsf_hlink {
    struct dsf_hlink *next;
    uint64_t hash;
};

struct dsf_htab {
    struct dsf_hlink **bucket;
    size_t nbuckets, count;
};

/* Doubles the buckets (the first call makes 1024); 0, or -1 without memory (chains get
 * longer, lookups stay correct). */
int dsf_htab_grow(struct dsf_htab *t);
/* Frees the buckets, not the entries. */
void dsf_htab_free(struct dsf_htab *t);
/* Frees every entry (with free_entry, or free() when NULL: the entry's link is its start),
 * then the buckets. */
void dsf_htab_free_all(struct dsf_htab *t, void (*free_entry)(struct dsf_hlink *e));

/* The chain a hash belongs to; the table must have buckets (dsf_htab_grow). */
static inline struct dsf_hlink *dsf_htab_first(const struct dsf_htab *t, uint64_t hash)
{
    return t->bucket[hash & (t->nbuckets - 1)];
}

static inline void dsf_htab_insert(struct dsf_htab *t, struct dsf_hlink *e, uint64_t hash)
{
    struct dsf_hlink **slot = &t->bucket[hash & (t->nbuckets - 1)];
    e->hash = hash;
    e->next = *slot;
    *slot = e;
    if (++t->count > t->nbuckets)
        dsf_htab_grow(t);
}

/* Unlinks e (which must be in t); the caller frees it. */
static inline void dsf_htab_remove(struct dsf_htab *t, struct dsf_hlink *e)
{
    for (struct dsf_hlink **p = &t->bucket[e->hash & (t->nbuckets - 1)]; *p; p = &(*p)->next) {
        if (*p == e) {
            *p = e->next;
            t->count--;
            return;
        }
    }
}

/* A fast 64-bit hash of n bytes for the tables' keys (not for anything adversarial to
 * collide on purpose beyond longer chains). */
static inline uint64_t dsf_hash_bytes(const char *p, size_t n)
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

#endif
