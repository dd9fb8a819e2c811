#define DSF_MODULE "balancer"
#include "balancer/balancer.h"
#include "common/topic.h"
#include "common/loop.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define K(field) offsetof(struct balancer_config, field)

const struct dsf_cfg_key balancer_config_keys[] = {
    {"id", DSF_CFG_ID, "", K(id),
     "balancer id (MQTT client id dsf-balancer-{id}, dsf/b/{id}/alive; 1-63 bytes, no / + #); "
     "empty: the host name. Two balancers of one bus need two ids",
     0, 0},
    {"state.dir", DSF_CFG_STR, "/var/lib/damselfly/balancer", K(state_dir),
     "where the last assignment epoch (epoch.json) and the API's write token live", 0, 0},
    {"buckets.total", DSF_CFG_INT, "64", K(buckets_total),
     "number of buckets B, cluster-wide (the collectors' mqtt.buckets_total)", 1, 65536},
    {"members.heartbeat", DSF_CFG_DURATION, "1s", K(heartbeat_ms),
     "the collectors' heartbeat period (their `heartbeat` key)", 100, 60000},
    {"members.missed_beats", DSF_CFG_INT, "3", K(missed_beats),
     "a member without a heartbeat for members.heartbeat x this is dead (a Last Will or a "
     "clean stop is dead at once)",
     1, 100},
    {"move.timeout", DSF_CFG_DURATION, "5s", K(move_timeout_ms),
     "a member that has not confirmed an assignment (its heartbeat's epoch) this long after it "
     "was published gets no bucket until it does: what was given to it goes to another",
     500, 600000},
    {"rebalance.interval", DSF_CFG_DURATION, "30s", K(rebalance_interval_ms),
     "how often load weighting may move one bucket from the busiest member to the least "
     "loaded",
     1000, 86400000},
    {"rebalance.threshold", DSF_CFG_DOUBLE, "0.25", K(rebalance_threshold),
     "load weighting acts when the busiest member's points/s (CPU when no member reports "
     "points) exceeds the pool's mean by more than this fraction",
     0.01, 100},
    {"pools.map", DSF_CFG_STRLIST, "", K(pools_map),
     "pools named for tenants: NS=POOL or NS/MCI=POOL, comma separated; members announcing a "
     "pool neither named here nor \"default\" are reported (log, GET /api/v1/pool)",
     0, 0},
    DSF_CFG_END,
};

int64_t bal_wall_ms(void)
{
    return dsf_now_ns() / 1000000;
}

int64_t bal_settle_ms(const struct balancer *b)
{
    return 2 * b->cfg.heartbeat_ms;
}

struct bal_pool *bal_pool_find(struct balancer *b, const char *name)
{
    for (size_t i = 0; i < b->npools; i++)
        if (!strcmp(b->pools[i].name, name))
            return &b->pools[i];
    return NULL;
}

static struct bal_pool *pool_add(struct balancer *b, const char *name)
{
    struct bal_pool *p = bal_pool_find(b, name), *grown;
    if (p)
        return p;
    if (!(grown = realloc(b->pools, (b->npools + 1) * sizeof(*grown))))
        return NULL;
    b->pools = grown;
    p = &b->pools[b->npools++];
    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "%s", name);
    p->wanted = -1;
    return p;
}

static int prefix_add(struct bal_pool *p, const char *prefix)
{
    char **grown = realloc(p->prefixes.items, (p->prefixes.count + 1) * sizeof(*grown));
    if (!grown)
        return -1;
    p->prefixes.items = grown;
    if (!(grown[p->prefixes.count] = strdup(prefix)))
        return -1;
    p->prefixes.count++;
    return 0;
}

/* "NS[/MCI]=POOL": a prefix of one or two segments and a pool name of 1-63 bytes. */
static int entry_ok(const char *e, const char *eq)
{
    return dsf_topic_prefix_ok(e, (size_t)(eq - e)) && eq[1] && strlen(eq + 1) < 64 &&
           !strchr(eq + 1, '/');
}

int bal_pools_check(const struct dsf_strlist *map, char *err, size_t errlen)
{
    for (size_t i = 0; i < map->count; i++) {
        const char *e = map->items[i], *eq = strchr(e, '=');
        if (!eq || !entry_ok(e, eq)) {
            snprintf(err, errlen, "key 'pools.map': '%s': expected NS=POOL or NS/MCI=POOL", e);
            return -1;
        }
    }
    return 0;
}

int bal_pools_parse(struct balancer *b, char *err, size_t errlen)
{
    if (bal_pools_check(&b->cfg.pools_map, err, errlen) < 0)
        return -1;
    if (!pool_add(b, "default"))
        goto oom;
    for (size_t i = 0; i < b->cfg.pools_map.count; i++) {
        const char *e = b->cfg.pools_map.items[i], *eq = strchr(e, '=');
        char prefix[200];
        snprintf(prefix, sizeof(prefix), "%.*s", (int)(eq - e), e);
        struct bal_pool *p = pool_add(b, eq + 1);
        if (!p || prefix_add(p, prefix))
            goto oom;
    }
    return 0;
oom:
    snprintf(err, errlen, "pools.map: out of memory");
    return -1;
}

int balancer_pool_wanted(struct balancer *b, const char *pool)
{
    struct bal_pool *p = bal_pool_find(b, pool);
    return p ? p->wanted : -1;
}

int balancer_pool_members(struct balancer *b, const char *pool)
{
    int n = 0;
    for (struct bal_member *m = b->members; m; m = m->next)
        n += !strcmp(m->pool, pool) && !strcmp(m->role, "collector") && m->alive && !m->draining;
    return n;
}

int bal_state_init(struct balancer *b)
{
    static const char *const roles[BAL_ROLES] = {"collector", "alarm"};
    size_t npools = b->npools ? b->npools : 1;
    b->nb = (uint32_t)b->cfg.buckets_total;
    if (!(b->groups = calloc(npools * BAL_ROLES, sizeof(*b->groups))))
        return -1;
    b->ngroups = npools * BAL_ROLES;
    for (size_t g = 0; g < b->ngroups; g++) {
        b->groups[g].role = roles[g % BAL_ROLES];
        snprintf(b->groups[g].pool, sizeof(b->groups[g].pool), "%s",
                 b->npools ? b->pools[g / BAL_ROLES].name : "default");
        if (!(b->groups[g].owner = calloc(b->nb, sizeof(*b->groups[g].owner))))
            return -1;
    }
    return 0;
}

void bal_state_free(struct balancer *b)
{
    bal_members_free(b);
    bal_peers_free(b);
    for (size_t g = 0; g < b->ngroups; g++)
        free(b->groups[g].owner);
    free(b->groups);
    b->groups = NULL;
    b->ngroups = 0;
    for (size_t i = 0; i < b->npools; i++)
        dsf_strlist_free(&b->pools[i].prefixes);
    free(b->pools);
    b->pools = NULL;
    b->npools = 0;
}
