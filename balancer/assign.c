#include "balancer/assign.h"
#include "common/htab.h"

#include <stdlib.h>
#include <string.h>

uint64_t asg_score(uint32_t bucket, const char *id)
{
    uint64_t h = dsf_hash_bytes(id, strlen(id)) ^ ((uint64_t)bucket * 0x9e3779b97f4a7c15ULL);
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    return h ^ (h >> 31);
}

struct rank {
    const struct asg_member *m;
    size_t idx, count;
};

static int by_count_desc(const void *a, const void *b)
{
    const struct rank *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return strcmp(x->m->id, y->m->id);
}

/* Counts per member and quotas: the r members holding most get f + 1. Returns eligible N. */
static size_t quotas(const struct asg_member *m, size_t n, const int32_t *owner, uint32_t nb,
                     size_t *count, size_t *quota)
{
    struct rank *r = calloc(n ? n : 1, sizeof(*r));
    size_t ne = 0;
    memset(count, 0, n * sizeof(*count));
    memset(quota, 0, n * sizeof(*quota));
    for (uint32_t b = 0; b < nb; b++)
        if (owner[b] >= 0)
            count[owner[b]]++;
    for (size_t i = 0; i < n; i++)
        if (m[i].eligible)
            r[ne++] = (struct rank){&m[i], i, count[i]};
    if (!ne || !r) {
        free(r);
        return 0;
    }
    qsort(r, ne, sizeof(*r), by_count_desc);
    for (size_t k = 0; k < ne; k++)
        quota[r[k].idx] = nb / ne + (k < nb % ne);
    free(r);
    return ne;
}

/* 1 when counts have drifted beyond what is kept: someone eligible holds nothing while the
 * floor is not zero, or a count is more than one off its quota. */
static int needs_level(const struct asg_member *m, size_t n, const size_t *count,
                       const size_t *quota, size_t floor_q)
{
    for (size_t i = 0; i < n; i++) {
        if (!m[i].eligible)
            continue;
        if ((count[i] == 0 && floor_q > 0) || count[i] + 1 < quota[i] || count[i] > quota[i] + 1)
            return 1;
    }
    return 0;
}

/* Drops member i's surplus, its lowest-scoring buckets first. */
static void trim(const struct asg_member *m, size_t i, int32_t *owner, uint32_t nb, size_t *count,
                 size_t quota)
{
    while (count[i] > quota) {
        int64_t worst = -1;
        uint64_t ws = UINT64_MAX;
        for (uint32_t b = 0; b < nb; b++) {
            if (owner[b] == (int32_t)i && asg_score(b, m[i].id) < ws) {
                ws = asg_score(b, m[i].id);
                worst = b;
            }
        }
        owner[worst] = -1;
        count[i]--;
    }
}

static int32_t best_with_room(const struct asg_member *m, size_t n, uint32_t b, const size_t *count,
                              const size_t *quota)
{
    int32_t best = -1;
    uint64_t bs = 0;
    for (size_t i = 0; i < n; i++) {
        if (!m[i].eligible || count[i] >= quota[i])
            continue;
        uint64_t s = asg_score(b, m[i].id);
        if (best < 0 || s > bs) {
            best = (int32_t)i;
            bs = s;
        }
    }
    return best;
}

size_t asg_balance(const struct asg_member *m, size_t n, int32_t *owner, uint32_t nb)
{
    int32_t *before = malloc(nb * sizeof(*owner));
    size_t *count = calloc(n ? n : 1, sizeof(*count)), *quota = calloc(n ? n : 1, sizeof(*quota));
    size_t changed = 0;
    if (!before || !count || !quota)
        goto out;
    memcpy(before, owner, nb * sizeof(*owner));
    for (uint32_t b = 0; b < nb; b++)
        if (owner[b] >= (int32_t)n || (owner[b] >= 0 && !m[owner[b]].eligible))
            owner[b] = -1;
    size_t ne = quotas(m, n, owner, nb, count, quota);
    if (ne && needs_level(m, n, count, quota, nb / ne))
        for (size_t i = 0; i < n; i++)
            if (m[i].eligible)
                trim(m, i, owner, nb, count, quota[i]);
    for (uint32_t b = 0; ne && b < nb; b++) {
        if (owner[b] >= 0)
            continue;
        owner[b] = best_with_room(m, n, b, count, quota);
        if (owner[b] >= 0)
            count[owner[b]]++;
    }
    for (uint32_t b = 0; b < nb; b++)
        changed += owner[b] != before[b];
out:
    free(before);
    free(count);
    free(quota);
    return changed;
}

int64_t asg_load_move(const struct asg_member *m, size_t n, int32_t *owner, uint32_t nb,
                      double threshold)
{
    size_t *count = calloc(n ? n : 1, sizeof(*count)), *quota = calloc(n ? n : 1, sizeof(*quota));
    int64_t moved = -1;
    if (!count || !quota || quotas(m, n, owner, nb, count, quota) < 2)
        goto out;
    double sum = 0;
    size_t ne = 0, hi = n, lo = n;
    for (size_t i = 0; i < n; i++) {
        if (!m[i].eligible)
            continue;
        sum += m[i].load;
        ne++;
        if (hi == n || m[i].load > m[hi].load)
            hi = i;
        if (lo == n || m[i].load < m[lo].load)
            lo = i;
    }
    double mean = sum / (double)ne;
    if (hi == lo || mean <= 0 || m[hi].load <= mean * (1 + threshold) || count[hi] < quota[hi] ||
        count[lo] > quota[lo] || count[hi] == 0)
        goto out;
    uint64_t bs = 0;
    for (uint32_t b = 0; b < nb; b++) {
        if (owner[b] == (int32_t)hi && (moved < 0 || asg_score(b, m[lo].id) > bs)) {
            bs = asg_score(b, m[lo].id);
            moved = b;
        }
    }
    if (moved >= 0)
        owner[moved] = (int32_t)lo;
out:
    free(count);
    free(quota);
    return moved;
}
