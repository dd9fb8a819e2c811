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
#include "common/log.h"
#include "common/metrics.h"
#include "balancer/runner.h"

struct dsf_bus;
struct dsf_daemon;
struct json_t;
struct event;
struct event_base;

#define BAL_ID_MAX 128

/* One collector (or alarm engine) as its heartbeats show it. */
struct bal_member {
    struct bal_member *next;
    char id[BAL_ID_MAX];
    char role[32];            /* "collector" or "alarm": the topic family it beats on */
    char pool[64];            /* its pool label; "default" */
    int alive;                /* beating, no Will since */
    int draining;             /* scale-in victim: gets no buckets, stopped once it has none */
    int64_t last_beat_ms;     /* monotonic */
    int64_t epoch;            /* the assignment epoch its last heartbeat reported */
    double points_per_s, cpu; /* load from its last heartbeat */
    int64_t lag;              /* Kafka consumer lag (-1: unknown) */
    /* What the balancer last published on its dsf/c/{id}/assign (dsf/e/... for an alarm
     * engine), or found retained there. */
    int64_t assigned_epoch;
    uint8_t *assigned;             /* flags per bucket, buckets_total of them */
    int64_t assigned_ms;           /* monotonic: when assigned_epoch was published (0: read back) */
    struct json_t *assigned_lists; /* its "prefixes" or "exclude" ({} when neither), as published */
    int unresponsive;              /* did not confirm within move.timeout: no new buckets */
    int reported;                  /* its unknown pool or role was logged */
    int64_t dead_since_ms;         /* monotonic, 0 while alive */
};

/* One move in progress: given to `to` at epoch given_epoch, still held by `from`. */
struct bal_move {
    uint32_t bucket;
    char from[BAL_ID_MAX], to[BAL_ID_MAX];
    int64_t given_epoch;
    int64_t started_ms; /* monotonic */
};

struct bal_pool {
    char name[64];
    struct dsf_strlist prefixes; /* "ns" or "ns/mci" routed to it (pools.map) */
    int wanted;                  /* replicas asked for by POST .../scale; -1: none */
};

/* The members of one role and one pool share out every bucket. */
struct bal_group {
    const char *role;
    char pool[64];
    struct bal_member **owner; /* intended owner per bucket (NULL: none alive) */
    int dirty;                 /* membership changed: decide again */
    int64_t death_ms;          /* monotonic: a death noticed, buckets not all owned again */
};

struct balancer_config {
    char *id, *state_dir;
    int64_t heartbeat_ms, missed_beats, move_timeout_ms, rebalance_interval_ms, buckets_total;
    double rebalance_threshold;
    struct dsf_strlist pools_map;
    struct dsf_mqtt_config mqtt;
    struct runner_config runner; /* runner.*: what starts and stops collectors */
    struct scale_config scale;   /* scale.*: the policy (docs/balancer-scaling.md) */
};

#define BAL_ROLES 2 /* "collector" (dsf/c/...), "alarm" (dsf/e/...) */
#define BAL_HB_REASONS 4
#define BAL_ASSIGN_REASONS 3
#define BAL_MOVE_REASONS 5

enum bal_move_reason { MOVE_JOIN, MOVE_DEATH, MOVE_DRAIN, MOVE_LOAD, MOVE_TIMEOUT };

struct balancer {
    struct balancer_config cfg;
    struct dsf_cfg_section sections[4 + RUNNER_CONFIG_SECTIONS];
    struct dsf_daemon *daemon;
    struct event_base *base;
    struct dsf_bus *bus;
    struct event *tick;
    int bus_up;
    uint32_t nb; /* buckets_total */

    struct bal_member *members;
    struct bal_group *groups; /* BAL_ROLES per pool */
    size_t ngroups;
    struct bal_pool *pools;
    size_t npools;

    /* Epochs (move.c) */
    int64_t epoch;          /* the last one used or seen */
    int64_t epoch_reserved; /* written to state.dir: epochs up to it may be used */
    int64_t started_ms;     /* monotonic, for the settle period */
    int64_t last_load_ms;   /* monotonic: the last load-weighting pass */
    int64_t last_tick_ms;   /* monotonic: a longer gap means the process was stopped */

    /* Leadership (leader.c) */
    int leading, claiming;
    int64_t claim_ms, term;
    char leader_id[BAL_ID_MAX];
    int64_t leader_term, leader_epoch;
    int leader_seen;
    struct bal_peer *peers; /* balancers' alive statuses */
    int64_t beat_ms;        /* monotonic: its own last beat */
    char alive_topic[300], alive_online[300], alive_offline[300];

    struct {
        uint64_t hb_rejected[BAL_HB_REASONS], assign_rejected[BAL_ASSIGN_REASONS];
        uint64_t moves[BAL_MOVE_REASONS], publish_failed, unknown_pool, leader_changes;
        uint64_t leader_rejected;
        double failover_s;
    } stats;
    struct bal_scaler *scaler; /* scale.c: NULL while runner.kind is none */
    struct dsf_log_limit hb_limit, assign_limit;
    struct dsf_metrics metrics;
};

struct bal_peer {
    struct bal_peer *next;
    char id[BAL_ID_MAX];
    int online;
    int64_t last_beat_ms; /* monotonic: its last dsf/b/{id}/beat */
};

extern const struct dsf_cfg_key balancer_config_keys[];
extern const char *const bal_hb_reason_names[BAL_HB_REASONS];
extern const char *const bal_assign_reason_names[BAL_ASSIGN_REASONS];
extern const char *const bal_move_reason_names[BAL_MOVE_REASONS];

int64_t bal_wall_ms(void);
/* A group per role and pool (after bal_pools_parse; "default" alone before), each with its
 * owner table for buckets.total buckets: 0, or -1 out of memory. */
int bal_state_init(struct balancer *b);
/* Members, peers, groups and pools: everything the bus and the API filled in. */
void bal_state_free(struct balancer *b);
/* An epoch this far ahead of the clock is forged or broken: the collectors would refuse the
 * epochs after it (their assign.max_ahead), so it must not drive the balancer's. */
#define BAL_EPOCH_AHEAD_MAX (10 * 60 * 1000LL)
/* A settle period: two heartbeats, so every live collector has beaten once. */
int64_t bal_settle_ms(const struct balancer *b);
/* pools.map's entries are NS=POOL or NS/MCI=POOL: 0, or -1 with err naming the entry. */
int bal_pools_check(const struct dsf_strlist *map, char *err, size_t errlen);
int bal_pools_parse(struct balancer *b, char *err, size_t errlen);
struct bal_pool *bal_pool_find(struct balancer *b, const char *name);

/* membership.c */
struct dsf_bus_message;
int bal_bus_start(struct balancer *b, char *err, size_t errlen);
/* Every message the balancer subscribes to (dsf/{c,e}/+/hb, dsf/{c,e}/+/assign, dsf/b/#). */
void bal_on_message(void *arg, const struct dsf_bus_message *m);
void bal_bus_stop(struct balancer *b);
/* The collector (bal_member_find) or the member of that role (bal_member_find_role). */
struct bal_member *bal_member_find(struct balancer *b, const char *id);
struct bal_member *bal_member_find_role(struct balancer *b, const char *role, const char *id);
struct bal_group *bal_member_group(struct balancer *b, const struct bal_member *m);
int bal_member_eligible(const struct bal_member *m);
void bal_membership_tick(struct balancer *b, int64_t now);
void bal_members_free(struct balancer *b);
/* Drains (on = 1) or restores a member: a draining member gets no bucket; once it holds
 * none the runner may stop it. 0, or -1 when no such member. */
int balancer_drain(struct balancer *b, const char *id, int on);
/* How many buckets the member holds (published), -1 when unknown. */
int balancer_member_buckets(struct balancer *b, const char *id);

/* move.c */
int bal_epoch_load(struct balancer *b, char *err, size_t errlen);
void bal_epoch_seen(struct balancer *b, int64_t epoch);
void bal_adopt(struct balancer *b);
void bal_move_tick(struct balancer *b, int64_t now);
int bal_moves_in_flight(const struct balancer *b, const struct bal_member *m);
/* The tenant lists a member of g is assigned with: a dedicated pool's {"prefixes":[...]}, the
 * default pool's {"exclude":[...]} (the prefixes of every dedicated pool whose members of the
 * same role own every bucket, confirmed), or {}. NULL out of memory. */
struct json_t *bal_group_lists(struct balancer *b, const struct bal_group *g);
/* The "prefixes" and "exclude" of an assignment's object, as bal_group_lists makes them. */
struct json_t *bal_lists_of(struct json_t *assignment);

/* leader.c */
void bal_leader_message(struct balancer *b, const char *topic, const char *payload, size_t len);
void bal_leader_disconnected(struct balancer *b);
void bal_leader_tick(struct balancer *b, int64_t now);
/* The loop did not run for gap ms (SIGSTOP, starved): whatever it believed may be stale. */
void bal_stalled(struct balancer *b, int64_t now, int64_t gap);
void bal_peers_free(struct balancer *b);

/* scale.c: the pool "default" scaled by the policy through runner.kind's runner (docs/
 * balancer-scaling.md "The daemon"). 0 (also for runner.kind none), or -1 with err. */
int bal_scale_start(struct balancer *b, char *err, size_t errlen);
void bal_scale_stop(struct balancer *b);
/* The "scale" object of GET /api/v1/pool's pool; NULL for a pool nothing scales. */
struct json_t *bal_scale_json(struct balancer *b, const char *pool);
void bal_scale_render(struct balancer *b, struct dsf_buf *out);
/* A POST .../scale: the wanted size, clamped to scale.min/max (-1 clears it). Returns what
 * is now wanted. */
int bal_scale_want(struct balancer *b, struct bal_pool *p, int replicas);

/* api.c, metrics.c */
int bal_api_register(struct balancer *b, char *err, size_t errlen);
void bal_add_metrics(struct balancer *b);
void bal_render_metrics(void *arg, struct dsf_buf *out);
/* The replicas asked for the pool by POST /api/v1/pool/{pool}/scale, -1 when none (the
 * scaler's runner acts on it). */
int balancer_pool_wanted(struct balancer *b, const char *pool);
/* Live, not draining members of the pool (role collector). */
int balancer_pool_members(struct balancer *b, const char *pool);

#endif
