/*
 * Following the balancer's assignments (docs/balancer.md), shared by the roles it balances
 * (collector: dsf/c/{id}/..., alarm engine: dsf/e/{id}/...): the retained assignment
 * {"epoch","buckets"} on {family}/{id}/assign is checked (malformed, range, stale, ahead) and
 * applied by subscribing the new buckets before dropping the old ones, sweeping every bucket
 * not owned after a connect; the heartbeat on {family}/{id}/hb (periodic and at once after an
 * assignment), the retained online record on connect and the retained offline Will.
 * A tenant pool's assignment also carries "prefixes" (ns or ns/mci: only those are
 * subscribed and owned), the default pool's "exclude" (what dedicated pools own).
 */
#ifndef DSF_ASSIGN_FOLLOW_H
#define DSF_ASSIGN_FOLLOW_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/config.h"

struct dsf_bus;
struct dsf_bus_message;
struct dsf_bus_options;
struct event;
struct event_base;

/* Keys pool, mqtt.follow_assign, heartbeat and assign.max_ahead (dsf_follow_keys). */
struct dsf_follow_config {
    char *pool;           /* the balancer's pool: a label in the heartbeat and status */
    int enabled;          /* mqtt.follow_assign */
    int64_t heartbeat_ms; /* how often the heartbeat goes out */
    int64_t max_ahead_ms; /* epochs (the balancer's clock, ms) further ahead are refused */
};
extern const struct dsf_cfg_key dsf_follow_keys[];
/* The keys as a section on cfg (prefix ""), for a component's section list. */
size_t dsf_follow_sections(struct dsf_cfg_section *out, struct dsf_follow_config *cfg);

/* Why an assignment is not applied ({component}_assign_refused_total{reason}). */
enum dsf_follow_refused {
    DSF_FOLLOW_STALE,
    DSF_FOLLOW_MALFORMED,
    DSF_FOLLOW_RANGE,
    DSF_FOLLOW_AHEAD,
    DSF_FOLLOW_REASONS
};
extern const char *const dsf_follow_refused_names[DSF_FOLLOW_REASONS];

/* What the role does around a move, and what it adds to its heartbeat. Any may be NULL. */
struct dsf_follow_hooks {
    void *arg;
    void (*gained)(void *arg, uint32_t bucket); /* following: after subscribing it */
    void (*lost)(void *arg, uint32_t bucket);   /* after unsubscribing an owned bucket */
    /* Adds the role's load fields to hb; dt: seconds since the previous heartbeat (0: none). */
    void (*load)(void *arg, json_t *hb, double dt);
};

struct dsf_follow {
    const struct dsf_follow_config *cfg;
    const char *id, *role;
    int (*topic)(char *out, size_t cap, const char *id, const char *leaf); /* the family's */
    struct dsf_follow_hooks hooks;
    uint32_t total;
    int qos; /* of the bucket subscriptions */
    struct dsf_bus *bus;
    struct event *timer;
    uint8_t *owned; /* one flag per bucket; NULL: no bucket subscriptions (Kafka, wildcard) */
    int swept;      /* buckets not owned were unsubscribed since the last connect */
    int64_t epoch;  /* the assignment applied; 0: none */
    json_t *prefixes, *exclude; /* of the assignment applied: arrays of "ns[/mci]", or NULL */
    uint64_t refused[DSF_FOLLOW_REASONS];
    char *will, *online; /* status payloads until the bus took copies */
    struct {
        double cpu;
        int64_t ms;
    } hb_last;
};

/* Sets f up; buckets: track and subscribe bucket topics (else only the heartbeat and status
 * run). 0, or -1 with err. */
int dsf_follow_init(struct dsf_follow *f, const struct dsf_follow_config *cfg, const char *role,
                    const char *id, int (*topic)(char *, size_t, const char *, const char *),
                    uint32_t total, int buckets, const struct dsf_follow_hooks *hooks, char *err,
                    size_t errlen);
/* Adds the Will and the online record on hb_topic (cap 300) to o. 0, or -1 with err. */
int dsf_follow_bus_options(struct dsf_follow *f, struct dsf_bus_options *o, char *hb_topic,
                           size_t cap, char *err, size_t errlen);
/* With the bus: subscribes spec ("all", "0-15,32"; "none" when following), the assignment
 * topic when following, and starts the heartbeat. 0, or -1 with err. */
int dsf_follow_start(struct dsf_follow *f, struct dsf_bus *bus, struct event_base *base,
                     const char *spec, int qos, char *err, size_t errlen);
/* The bus connected: sweeps the buckets not owned (a persistent session may hold them). */
void dsf_follow_on_connect(struct dsf_follow *f);
/* An assignment message on the family's topics: checked, counted, applied. */
void dsf_follow_message(struct dsf_follow *f, const struct dsf_bus_message *m);
/* 1 when the message of id (NULL: any of the bucket) on bucket is this member's: the bucket
 * owned, id under one of the prefixes if any, under none of the excluded ones. Always when
 * buckets are not tracked. */
struct dsf_identity;
int dsf_follow_owns(const struct dsf_follow *f, uint32_t bucket, const struct dsf_identity *id);
size_t dsf_follow_owned_count(const struct dsf_follow *f);
/* Publishes the heartbeat now. */
void dsf_follow_heartbeat(struct dsf_follow *f);
/* Stops the heartbeat and forgets the bus (before the bus goes). */
void dsf_follow_stop(struct dsf_follow *f);
void dsf_follow_free(struct dsf_follow *f);

#endif
