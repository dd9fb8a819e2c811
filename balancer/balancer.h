/*
 * damselfly-balancer (docs/balancer.md): keeps every metrics bucket owned by exactly one live
 * collector of its pool, moves as few buckets as possible, and scales the pool. One struct
 * balancer owns everything the daemon allocates; everything runs on the loop thread.
 *
 *   membership.c  collectors from their heartbeats and Last Wills (dsf/c/{id}/hb)
 *   assign.c      bounded-load rendezvous assignment (pure: no bus, no clock)
 *   move.c        safe moves: give, wait for the new owner's heartbeat epoch, take
 *   leader.c      one leader among balancers (retained dsf/b/leader, Will on dsf/b/{id}/alive)
 *   policy.c      scale decisions from the pool's load (pure)
 *   runner_*.c    what starts and stops collectors (local processes, a Kubernetes Deployment)
 *   api.c         /api/v1/pool, metrics.c /metrics
 */
#ifndef DSF_BALANCER_H
#define DSF_BALANCER_H

#include <stddef.h>
#include <stdint.h>

#include "common/bus_config.h"
#include "common/config.h"
#include "common/metrics.h"

#define BAL_ID_MAX 128

/* One collector (or alarm engine) as its heartbeats show it. */
struct bal_member {
    struct bal_member *next;
    char id[BAL_ID_MAX];
    char role[32];           /* "collector" (default) or "alarm" */
    char pool[64];           /* its pool label; "default" */
    int alive;               /* beating, no Will since */
    int draining;            /* scale-in victim: gets no buckets, stopped once it has none */
    int64_t last_beat_ms;    /* monotonic */
    int64_t epoch;           /* the assignment epoch its last heartbeat reported */
    double points_per_s, cpu; /* load from its last heartbeat */
    int64_t lag;             /* Kafka consumer lag (-1: unknown) */
    /* What the balancer last published on its dsf/c/{id}/assign (or found retained there). */
    int64_t assigned_epoch;
    uint8_t *assigned; /* flags per bucket, buckets_total of them */
};

/* One move in progress: given to `to` at epoch given_epoch, still held by `from`. */
struct bal_move {
    uint32_t bucket;
    char from[BAL_ID_MAX], to[BAL_ID_MAX];
    int64_t given_epoch;
    int64_t started_ms; /* monotonic */
};

#endif
