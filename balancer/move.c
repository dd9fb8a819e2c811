/*
 * Safe moves (docs/balancer.md "Protocol"): a bucket goes from A to B by publishing B's
 * assignment with it (epoch E1), and A's without it (E2 > E1) only once B's heartbeat shows
 * an epoch >= E1, so some collector consumes it at every moment. A dead A loses its buckets at
 * once (its retained assignment is emptied: a restarted A consumes only what it owns).
 * Epochs are the wall clock in ms, strictly growing, persisted in state.dir/epoch.json.
 */
#define DSF_MODULE "balancer"
#include "balancer/assign.h"
#include "balancer/balancer.h"
#include "common/buf.h"
#include "common/bus.h"
#include "common/file.h"
#include "common/loop.h"
#include "common/topic.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const bal_move_reason_names[BAL_MOVE_REASONS] = {"join", "death", "drain", "load",
                                                             "timeout"};

int bal_epoch_load(struct balancer *b, char *err, size_t errlen)
{
    char path[4096];
    if (dsf_mkdir_p(b->cfg.state_dir, 0700, err, errlen))
        return -1;
    snprintf(path, sizeof(path), "%s/epoch.json", b->cfg.state_dir);
    char *text = dsf_read_file(path, NULL);
    if (!text)
        return 0; /* the first start */
    json_t *o = json_loads(text, 0, NULL);
    free(text);
    json_t *e = json_object_get(o, "epoch");
    if (!json_is_integer(e)) {
        json_decref(o);
        snprintf(err, errlen, "%s: expected {\"epoch\":N}", path);
        return -1;
    }
    bal_epoch_seen(b, json_integer_value(e));
    json_decref(o);
    return 0;
}

void bal_epoch_seen(struct balancer *b, int64_t epoch)
{
    if (epoch > b->epoch)
        b->epoch = epoch;
}

/* Epochs are reserved in state.dir a second ahead: one fsync covers every assignment of a
 * failover, and a restart starts above anything that may have been published. */
#define EPOCH_RESERVE_MS 1000

/* The next epoch, persisted before anything carries it. -1 when it cannot be. */
static int64_t next_epoch(struct balancer *b)
{
    int64_t e = bal_wall_ms();
    if (e <= b->epoch)
        e = b->epoch + 1;
    if (e > b->epoch_reserved) {
        char text[64], err[600];
        int64_t upto = e + EPOCH_RESERVE_MS;
        int n = snprintf(text, sizeof(text), "{\"epoch\":%lld}\n", (long long)upto);
        if (dsf_write_file_atomic(b->cfg.state_dir, "epoch.json", text, (size_t)n, err,
                                  sizeof(err))) {
            log_error("epoch %lld not published: %s", (long long)e, err);
            return -1;
        }
        b->epoch_reserved = upto;
    }
    b->epoch = e;
    return e;
}

static int publish(struct balancer *b, struct bal_member *m, const uint8_t *want, json_t *lists,
                   int64_t now)
{
    int64_t e = next_epoch(b);
    if (e < 0)
        return -1;
    char *extra = json_object_size(lists) ? json_dumps(lists, JSON_COMPACT) : NULL;
    struct dsf_buf body = {0};
    buf_printf(&body, "{\"epoch\":%lld,\"buckets\":[", (long long)e);
    int first = 1;
    for (uint32_t k = 0; k < b->nb; k++) {
        if (want[k]) {
            buf_printf(&body, "%s%u", first ? "" : ",", k);
            first = 0;
        }
    }
    /* The lists' object without its braces: ,"prefixes":[...] or ,"exclude":[...] */
    buf_printf(&body, "]%s%.*s}", extra ? "," : "", extra ? (int)strlen(extra) - 2 : 0,
               extra ? extra + 1 : "");
    free(extra);
    char topic[300];
    (strcmp(m->role, "alarm") ? dsf_topic_collector : dsf_topic_engine)(topic, sizeof(topic), m->id,
                                                                        "assign");
    struct dsf_bus_message msg = {.topic = topic, .payload = body.data, .len = body.len};
    int rc = dsf_bus_publish(b->bus, &msg, 1, 1, 0);
    if (rc == 0) {
        memcpy(m->assigned, want, b->nb);
        m->assigned_epoch = e;
        m->assigned_ms = now;
        json_decref(m->assigned_lists);
        m->assigned_lists = json_incref(lists);
        log_info("assigned %s epoch %lld: %s", m->id, (long long)e, body.data);
    } else {
        dsf_count(&b->stats.publish_failed, 1);
    }
    buf_free(&body);
    return rc;
}

/* b is applied by its owner: the owner's published set has it and its beat confirmed that. */
static int confirmed(const struct bal_member *o, uint32_t k)
{
    return o && o->alive && o->assigned[k] && o->epoch >= o->assigned_epoch;
}

/* A candidate owner read back: a confirmed holder over an unconfirmed one, a live one over a
 * dead one (whose buckets then count as moved by its death), then the newer. */
static int better(const struct bal_member *m, const struct bal_member *cur, uint32_t k)
{
    if (!cur)
        return 1;
    if (confirmed(m, k) != confirmed(cur, k))
        return confirmed(m, k);
    if (m->alive != cur->alive)
        return m->alive;
    return m->assigned_epoch > cur->assigned_epoch;
}

void bal_adopt(struct balancer *b)
{
    for (size_t g = 0; g < b->ngroups; g++) {
        struct bal_group *gr = &b->groups[g];
        memset(gr->owner, 0, b->nb * sizeof(*gr->owner));
        gr->death_ms = 0; /* a failover starts again from what is read back */
        for (struct bal_member *m = b->members; m; m = m->next) {
            if (bal_member_group(b, m) != gr)
                continue;
            for (uint32_t k = 0; k < b->nb; k++)
                if (m->assigned[k] && better(m, gr->owner[k], k))
                    gr->owner[k] = m;
            if (!m->alive && !gr->death_ms)
                for (uint32_t k = 0; k < b->nb && !gr->death_ms; k++)
                    gr->death_ms = m->assigned[k] ? dsf_mono_ms() : 0;
        }
        gr->dirty = 1;
    }
}

static enum bal_move_reason reason_of(const struct bal_member *from)
{
    if (!from || !from->alive)
        return MOVE_DEATH;
    if (from->draining)
        return MOVE_DRAIN;
    if (from->unresponsive)
        return MOVE_TIMEOUT;
    return MOVE_JOIN;
}

/* The group's members as assign.c sees them; NULL out of memory. */
static struct bal_member **group_members(struct balancer *b, struct bal_group *g, size_t *n)
{
    size_t cap = 0;
    for (struct bal_member *m = b->members; m; m = m->next)
        cap++;
    struct bal_member **list = calloc(cap + 1, sizeof(*list));
    *n = 0;
    for (struct bal_member *m = b->members; list && m; m = m->next)
        if (bal_member_group(b, m) == g)
            list[(*n)++] = m;
    return list;
}

/* Runs assign.c over the group: a full decision (dirty) or one load-weighted move. */
static void decide(struct balancer *b, struct bal_group *g, int load_only)
{
    size_t n;
    struct bal_member **list = group_members(b, g, &n);
    struct asg_member *am = calloc(n + 1, sizeof(*am));
    int32_t *owner = calloc(b->nb, sizeof(*owner));
    if (!list || !am || !owner)
        goto out;
    double pps = 0;
    for (size_t i = 0; i < n; i++)
        pps += list[i]->points_per_s;
    for (size_t i = 0; i < n; i++)
        am[i] = (struct asg_member){list[i]->id, bal_member_eligible(list[i]),
                                    pps > 0 ? list[i]->points_per_s : list[i]->cpu};
    for (uint32_t k = 0; k < b->nb; k++) {
        owner[k] = -1;
        for (size_t i = 0; i < n && g->owner[k]; i++)
            if (list[i] == g->owner[k])
                owner[k] = (int32_t)i;
    }
    if (load_only) {
        int64_t k = asg_load_move(am, n, owner, b->nb, b->cfg.rebalance_threshold);
        if (k >= 0) {
            log_info("load: bucket %lld from %s to %s", (long long)k, g->owner[k]->id,
                     list[owner[k]]->id);
            dsf_count(&b->stats.moves[MOVE_LOAD], 1);
            g->owner[k] = list[owner[k]];
        }
        goto out;
    }
    asg_balance(am, n, owner, b->nb);
    for (uint32_t k = 0; k < b->nb; k++) {
        struct bal_member *to = owner[k] >= 0 ? list[owner[k]] : NULL;
        if (to != g->owner[k] && to && g->owner[k]) /* not a first assignment */
            dsf_count(&b->stats.moves[reason_of(g->owner[k])], 1);
        g->owner[k] = to;
    }
out:
    free(list);
    free(am);
    free(owner);
}

/* What m should hold now: what it owns, plus what it still serves until the new owner has
 * confirmed (a dead member holds nothing). */
static void wanted(const struct balancer *b, const struct bal_group *g, const struct bal_member *m,
                   uint8_t *want)
{
    for (uint32_t k = 0; k < b->nb; k++) {
        const struct bal_member *o = g->owner[k];
        want[k] = m->alive && (o == m || (m->assigned[k] && !confirmed(o, k)));
    }
}

/* Every bucket owned by a live member of g that confirmed it. */
static int group_covers(const struct balancer *b, const struct bal_group *g)
{
    for (uint32_t k = 0; k < b->nb; k++)
        if (!confirmed(g->owner[k], k))
            return 0;
    return 1;
}

static int listed(const json_t *list, const char *prefix)
{
    for (size_t i = 0; i < json_array_size(list); i++) {
        const char *v = json_string_value(json_array_get(list, i));
        if (v && !strcmp(v, prefix))
            return 1;
    }
    return 0;
}

/* Some live default-pool member of the role may still exclude prefix: its assignment says so,
 * or it has not confirmed its latest one. */
static int maybe_excluded(const struct balancer *b, const char *role, const char *prefix)
{
    for (const struct bal_member *m = b->members; m; m = m->next)
        if (m->alive && !strcmp(m->role, role) && !strcmp(m->pool, "default") &&
            (m->epoch < m->assigned_epoch ||
             listed(json_object_get(m->assigned_lists, "exclude"), prefix)))
            return 1;
    return 0;
}

/* Take after give, when a restart with another pools.map takes a prefix from a dedicated
 * pool: its members keep it until the default pool no longer excludes it. */
static void leaving_prefixes(const struct balancer *b, const struct bal_group *g, json_t *list)
{
    for (const struct bal_member *m = b->members; m; m = m->next) {
        if (!m->alive || strcmp(m->role, g->role) || strcmp(m->pool, g->pool))
            continue;
        json_t *had = json_object_get(m->assigned_lists, "prefixes");
        for (size_t i = 0; i < json_array_size(had); i++) {
            const char *p = json_string_value(json_array_get(had, i));
            if (p && !listed(list, p) && maybe_excluded(b, g->role, p))
                json_array_append_new(list, json_string(p));
        }
    }
}

json_t *bal_group_lists(struct balancer *b, const struct bal_group *g)
{
    int dedicated = strcmp(g->pool, "default") != 0;
    json_t *o = json_object(), *list = json_array();
    for (size_t i = 0; o && list && i < b->ngroups; i++) {
        const struct bal_group *d = &b->groups[i];
        const struct bal_pool *p = bal_pool_find(b, d->pool);
        /* Give before take: the default pool excludes a tenant's prefixes only once its
         * pool consumes them, and at once no longer when it does not (died, or empty). */
        if (!p || strcmp(d->role, g->role) || !strcmp(d->pool, "default") ||
            (dedicated ? d != g : !group_covers(b, d)))
            continue;
        for (size_t j = 0; j < p->prefixes.count; j++)
            json_array_append_new(list, json_string(p->prefixes.items[j]));
    }
    if (dedicated && list)
        leaving_prefixes(b, g, list);
    if (o && list && json_array_size(list))
        json_object_set(o, dedicated ? "prefixes" : "exclude", list);
    json_decref(list);
    return o;
}

json_t *bal_lists_of(json_t *assignment)
{
    static const char *const keys[] = {"prefixes", "exclude"};
    json_t *o = json_object();
    for (int i = 0; o && i < 2; i++) {
        json_t *v = json_object_get(assignment, keys[i]), *p, *copy = json_array();
        size_t j;
        json_array_foreach(v, j, p) /* what followers would refuse is not kept */
        {
            if (json_is_string(p) &&
                dsf_topic_prefix_ok(json_string_value(p), json_string_length(p)))
                json_array_append(copy, p);
        }
        if (json_array_size(copy))
            json_object_set(o, keys[i], copy);
        json_decref(copy);
    }
    return o;
}

static int lists_differ(json_t *lists, const struct bal_member *m)
{
    if (!m->assigned_lists)
        return json_object_size(lists) != 0;
    return !json_equal(lists, m->assigned_lists);
}

static void sync_group(struct balancer *b, struct bal_group *g, int64_t now)
{
    uint8_t *want = malloc(b->nb);
    json_t *lists = bal_group_lists(b, g);
    for (struct bal_member *m = b->members; want && lists && m; m = m->next) {
        if (bal_member_group(b, m) != g)
            continue;
        wanted(b, g, m, want);
        /* The lists matter only to a member holding something. */
        int holds = memchr(want, 1, b->nb) != NULL;
        if (memcmp(want, m->assigned, b->nb) || (holds && lists_differ(lists, m)))
            publish(b, m, want, lists, now);
    }
    json_decref(lists);
    free(want);
}

/* Members silent on an assignment for move.timeout get nothing more until they confirm. */
static void timeouts(struct balancer *b, struct bal_group *g, int64_t now)
{
    for (struct bal_member *m = b->members; m; m = m->next) {
        if (bal_member_group(b, m) != g || !m->alive || m->unresponsive || !m->assigned_ms ||
            m->epoch >= m->assigned_epoch || now - m->assigned_ms <= b->cfg.move_timeout_ms)
            continue;
        m->unresponsive = 1;
        g->dirty = 1;
        log_warn("member %s has not confirmed epoch %lld within move.timeout: its new buckets "
                 "go to others",
                 m->id, (long long)m->assigned_epoch);
    }
}

int bal_moves_in_flight(const struct balancer *b, const struct bal_member *m)
{
    int n = 0;
    for (size_t g = 0; g < b->ngroups; g++) {
        const struct bal_group *gr = &b->groups[g];
        if (strcmp(gr->role, m->role) || strcmp(gr->pool, m->pool))
            continue;
        for (uint32_t k = 0; k < b->nb; k++)
            n += (gr->owner[k] == m && !confirmed(m, k)) || (gr->owner[k] != m && m->assigned[k]);
    }
    return n;
}

/* Every bucket owned, confirmed and held by its owner alone: the failover is over. */
static void failover_done(struct balancer *b, struct bal_group *g, int64_t now)
{
    if (!g->death_ms)
        return;
    for (uint32_t k = 0; k < b->nb; k++) {
        if (!confirmed(g->owner[k], k))
            return;
        for (struct bal_member *m = b->members; m; m = m->next)
            if (m != g->owner[k] && m->assigned[k] && bal_member_group(b, m) == g)
                return;
    }
    b->stats.failover_s = (double)(now - g->death_ms) / 1000.0;
    log_info("%s buckets all owned again %.2f s after the death was noticed", g->role,
             b->stats.failover_s);
    g->death_ms = 0;
}

void bal_move_tick(struct balancer *b, int64_t now)
{
    if (!b->leading || !b->bus_up)
        return;
    int load = now - b->last_load_ms >= b->cfg.rebalance_interval_ms;
    if (load)
        b->last_load_ms = now;
    for (size_t i = 0; i < b->ngroups; i++) {
        struct bal_group *g = &b->groups[i];
        timeouts(b, g, now);
        if (g->dirty) {
            g->dirty = 0;
            decide(b, g, 0);
        } else if (load) {
            decide(b, g, 1);
        }
        sync_group(b, g, now);
        failover_done(b, g, now);
    }
}
