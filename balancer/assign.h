/*
 * Bounded-load sticky rendezvous assignment of B buckets to N members: pure (no bus, no
 * clock), so every property is unit-tested (tests/unit/test_balancer_assign.c).
 *
 * Each eligible member has a quota, floor(B/N) or ceil(B/N) (the B mod N members holding the
 * most get the larger one). A bucket stays with its owner while the owner is eligible; orphans
 * go to the member with room under its quota and the highest rendezvous score. Members above
 * their quota keep their surplus while every count is within one of the quotas (what load
 * weighting leaves); only beyond that, or when an eligible member holds nothing (a join), is
 * the surplus taken back, the owner's lowest-scoring buckets first. So from a count-balanced
 * pool a join moves floor or ceil(B/N) buckets, all to the newcomer, and a leave moves only the
 * leaver's.
 */
#ifndef DSF_BALANCER_ASSIGN_H
#define DSF_BALANCER_ASSIGN_H

#include <stddef.h>
#include <stdint.h>

struct asg_member {
    const char *id;
    int eligible; /* alive, not draining, answering */
    double load;  /* points/s (or CPU) for load weighting */
};

/* The rendezvous score of a bucket for a member: the higher, the more it wants it. */
uint64_t asg_score(uint32_t bucket, const char *id);

/* owner[b]: an index into m, or -1. Reassigns orphans and levels counts as described above.
 * Returns the number of buckets whose owner changed. */
size_t asg_balance(const struct asg_member *m, size_t n, int32_t *owner, uint32_t nb);

/* Load weighting, one bucket at most: when the busiest eligible member's load exceeds the
 * mean by more than threshold (a fraction: 0.25 is 25 %), moves one of its buckets to the least
 * loaded one, if both stay within one bucket of their quotas. Returns the bucket moved, or -1. */
int64_t asg_load_move(const struct asg_member *m, size_t n, int32_t *owner, uint32_t nb,
                      double threshold);

#endif
