/*
 * Scale decisions for one pool: pure (no clock, no I/O), so every rule is unit-tested.
 */
#ifndef DSF_BALANCER_POLICY_H
#define DSF_BALANCER_POLICY_H

#include <stdint.h>

struct scale_policy {
    int min, max;               /* members */
    double target_points_per_s; /* per member; 0: not a criterion */
    double target_cpu;          /* per member, cores; 0: not a criterion */
    int64_t target_lag;         /* Kafka pools: messages behind per member; 0: not a criterion */
    double in_ratio;            /* scale in only below target * in_ratio (hysteresis) */
    int64_t cooldown_out_ms, cooldown_in_ms;
    int64_t sustain_ms; /* a condition must hold this long before acting */
};

struct scale_load {
    int members;              /* live, not draining */
    double points_per_s, cpu; /* summed over them */
    int64_t lag;              /* summed (-1: unknown) */
    int partitions;           /* Kafka: the metrics topic's partitions (0: not Kafka) */
};

/* What the policy remembers between ticks (zeroed at start). */
struct scale_state {
    int64_t last_out_ms, last_in_ms;     /* when it last scaled */
    int64_t high_since_ms, low_since_ms; /* since when the load is above/below; 0: not */
};

struct scale_decision {
    int replicas; /* the wanted member count (== members: nothing to do) */
    /* "points_per_s", "cpu", "lag": the criterion that moved it (or, when nothing moves,
     * held back by) "min", "max", "partitions" (a Kafka pool at its partition count),
     * "cooldown", "steady" (within the band, or not sustained yet) */
    const char *reason;
};

/* One step per call (members + 1 or - 1) once the load has stayed out of the band for
 * sustain_ms; outside min/max (or the partitions) it returns the bound at once. Scale in
 * waits cooldown_in_ms after any scaling, scale out cooldown_out_ms after the last scale
 * out. docs/balancer-scaling.md. */
struct scale_decision scale_decide(const struct scale_policy *p, struct scale_state *s,
                                   const struct scale_load *load, int64_t now_ms);

#endif
