/*
 * The daemon's scaler (docs/balancer-scaling.md "The daemon"): while this balancer leads, a
 * timer feeds the pool's load to scale_decide() (or the size POST .../scale asked for) and
 * acts through runner.kind's runner. A scale in drains one member the runner owns, waits
 * until its published assignment is empty and confirmed, and only then stops it.
 */
#define DSF_MODULE "balancer"
#include "balancer/balancer.h"
#include "balancer/policy.h"
#include "balancer/runner.h"
#include "common/buf.h"
#include "common/loop.h"

#include <event2/event.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POOL "default"
#define DIRS 2
#define REASONS 7
static const char *const dir_names[DIRS] = {"out", "in"};
static const char *const reason_names[REASONS] = {"points_per_s", "cpu", "lag",       "min",
                                                  "max",          "api", "partitions"};

/* A runner call that failed is not repeated every interval (nor logged so). */
#define RETRY_MS 5000

enum victim_state { V_NONE, V_DRAINING, V_STOPPING };

struct bal_scaler {
    struct runner *runner;
    struct scale_policy policy;
    struct scale_state state;
    struct event *timer;
    int replicas, members, wanted; /* as of the last tick (-1: not known yet) */
    double points_per_s, cpu;      /* the pool's, as of the last tick */
    const char *reason;            /* the last decision's reason */
    char victim[BAL_ID_MAX];
    enum victim_state vstate;
    int64_t vsince_ms; /* monotonic: when the victim entered vstate */
    int64_t retry_ms;  /* monotonic: a runner call failed; the next one not before */
    int owned_at_stop; /* live members the runner owned when the stop was asked */
    uint64_t decisions[DIRS][REASONS];
};

static int reason_index(const char *reason)
{
    for (int i = 0; i < REASONS; i++)
        if (!strcmp(reason_names[i], reason))
            return i;
    return 0;
}

static int counted(const struct bal_member *m)
{
    return !strcmp(m->pool, POOL) && !strcmp(m->role, "collector") && m->alive && !m->draining;
}

/* Live members the runner started: with replicas() it tells the members that were started
 * but have not beaten yet, which the pool then counts once. */
static int owned_live(struct balancer *b)
{
    int n = 0;
    for (struct bal_member *m = b->members; m; m = m->next)
        n += counted(m) && b->scaler->runner->ops->owns(b->scaler->runner, m->id);
    return n;
}

static struct scale_load pool_load(struct balancer *b, int pending)
{
    struct scale_load l = {.lag = -1};
    for (struct bal_member *m = b->members; m; m = m->next) {
        if (!counted(m))
            continue;
        l.members++;
        l.points_per_s += m->points_per_s;
        l.cpu += m->cpu;
    }
    l.members += pending;
    return l;
}

/* The least loaded live member the runner owns: its buckets are the cheapest to move. */
static struct bal_member *pick_victim(struct balancer *b)
{
    struct bal_member *best = NULL;
    for (struct bal_member *m = b->members; m; m = m->next)
        if (counted(m) && b->scaler->runner->ops->owns(b->scaler->runner, m->id) &&
            (!best || m->points_per_s < best->points_per_s ||
             (m->points_per_s == best->points_per_s &&
              balancer_member_buckets(b, m->id) < balancer_member_buckets(b, best->id))))
            best = m;
    return best;
}

static void victim_clear(struct balancer *b, const char *why)
{
    struct bal_scaler *s = b->scaler;
    balancer_drain(b, s->victim, 0);
    log_info("pool %s: scale in of %s ends (%s)", POOL, s->victim, why);
    s->victim[0] = 0;
    s->vstate = V_NONE;
}

static void stop_victim(struct balancer *b, struct bal_member *m, int64_t now)
{
    struct bal_scaler *s = b->scaler;
    char err[1024];
    s->owned_at_stop = owned_live(b) + 1; /* the draining victim is not counted */
    if (s->runner->ops->stop(s->runner, m->id, err, sizeof(err)) < 0) {
        log_error("pool %s: cannot stop %s (retried in %d s): %s", POOL, m->id, RETRY_MS / 1000,
                  err);
        s->retry_ms = now + RETRY_MS;
        return;
    }
    log_info("pool %s: %s holds no bucket and confirmed epoch %lld: stopping it", POOL, m->id,
             (long long)m->epoch);
    s->vstate = V_STOPPING;
    s->vsince_ms = now;
}

/* A victim that has not gone after this long is given buckets again (a Deployment picks its
 * own pod to remove; a drain that cannot finish must not hold the pool). */
static int64_t victim_bound_ms(const struct balancer *b)
{
    return 2 * b->cfg.move_timeout_ms + b->cfg.runner.local.stop_timeout_ms +
           b->cfg.heartbeat_ms * b->cfg.missed_beats;
}

static void victim_tick(struct balancer *b, int64_t now)
{
    struct bal_scaler *s = b->scaler;
    struct bal_member *m = bal_member_find(b, s->victim);
    if (!m || !m->alive) {
        victim_clear(b, s->vstate == V_STOPPING ? "stopped" : "it went away on its own");
        return;
    }
    if (now - s->vsince_ms > victim_bound_ms(b)) {
        victim_clear(b, s->vstate == V_STOPPING ? "still running: restored" : "drain timed out");
        return;
    }
    if (s->vstate == V_STOPPING) {
        /* kubernetes: the Deployment removed another pod; that one's buckets move instead. */
        if (owned_live(b) + 1 < s->owned_at_stop)
            victim_clear(b, "the runner stopped another member");
        return;
    }
    if (balancer_member_buckets(b, m->id) == 0 && m->epoch >= m->assigned_epoch &&
        !bal_moves_in_flight(b, m))
        stop_victim(b, m, now);
}

static void count_decision(struct balancer *b, int dir, const char *reason, int from, int to)
{
    struct bal_scaler *s = b->scaler;
    dsf_count(&s->decisions[dir][reason_index(reason)], 1);
    log_info("pool %s: scale %s %d -> %d members (%s; the pool: %.0f points/s, %.2f cpu)", POOL,
             dir_names[dir], from, to, reason, s->points_per_s, s->cpu);
}

static void scale_out(struct balancer *b, int add, const char *reason, int members, int64_t now)
{
    struct bal_scaler *s = b->scaler;
    char err[1024];
    int want = s->replicas + add;
    if (s->runner->ops->scale_out(s->runner, want, err, sizeof(err)) < 0) {
        log_error("pool %s: cannot scale out to %d (retried in %d s): %s", POOL, want,
                  RETRY_MS / 1000, err);
        s->retry_ms = now + RETRY_MS;
        return;
    }
    count_decision(b, 0, reason, members, members + add);
}

static void scale_in(struct balancer *b, const char *reason, int members, int64_t now)
{
    struct bal_scaler *s = b->scaler;
    struct bal_member *v = pick_victim(b);
    if (!v) {
        log_warn("pool %s: scale in wanted (%s) but no live member was started by the runner", POOL,
                 reason);
        return;
    }
    snprintf(s->victim, sizeof(s->victim), "%s", v->id);
    s->vstate = V_DRAINING;
    s->vsince_ms = now;
    balancer_drain(b, v->id, 1);
    count_decision(b, 1, reason, members, members - 1);
}

static void decide(struct balancer *b, int64_t now)
{
    struct bal_scaler *s = b->scaler;
    struct bal_pool *p = bal_pool_find(b, POOL);
    int pending = s->replicas - owned_live(b);
    struct scale_load load = pool_load(b, pending > 0 ? pending : 0);
    struct scale_decision d = scale_decide(&s->policy, &s->state, &load, now);
    if (p && p->wanted >= 0)
        d = (struct scale_decision){p->wanted, "api"};
    s->members = load.members;
    s->points_per_s = load.points_per_s;
    s->cpu = load.cpu;
    s->wanted = d.replicas;
    s->reason = d.reason;
    if (d.replicas > load.members)
        scale_out(b, d.replicas - load.members, d.reason, load.members, now);
    else if (d.replicas < load.members && pending <= 0)
        scale_in(b, d.reason, load.members, now); /* one member at a time */
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct balancer *b = arg;
    struct bal_scaler *s = b->scaler;
    int64_t now = dsf_mono_ms();
    (void)fd;
    (void)what;
    if (!b->leading || !b->bus_up || now - b->started_ms < bal_settle_ms(b) || now < s->retry_ms)
        return;
    if (s->vstate != V_NONE) {
        victim_tick(b, now);
        return;
    }
    int r = s->runner->ops->replicas(s->runner);
    if (r < 0)
        return; /* logged by the runner: nothing is decided on a count it cannot read */
    s->replicas = r;
    decide(b, now);
}

int bal_scale_start(struct balancer *b, char *err, size_t errlen)
{
    struct runner *r = runner_new(b->base, &b->cfg.runner, err, errlen);
    if (!r)
        return err[0] ? -1 : 0;
    struct bal_scaler *s = calloc(1, sizeof(*s));
    if (!s) {
        r->ops->free(r);
        snprintf(err, errlen, "scaler: out of memory");
        return -1;
    }
    *s = (struct bal_scaler){
        .runner = r, .replicas = -1, .members = -1, .wanted = -1, .reason = "steady"};
    scale_policy_from_config(&b->cfg.scale, &s->policy);
    b->scaler = s;
    int64_t every = b->cfg.scale.interval_ms;
    struct timeval tv = {(time_t)(every / 1000), (suseconds_t)(every % 1000 * 1000)};
    if (!(s->timer = event_new(b->base, -1, EV_PERSIST, on_timer, b)) ||
        event_add(s->timer, &tv) < 0) {
        snprintf(err, errlen, "scaler: cannot start the scale.interval timer");
        return -1;
    }
    log_info("pool %s scaled by the %s runner: %d-%d members, deciding every %lld ms", POOL,
             r->ops->name, s->policy.min, s->policy.max, (long long)every);
    return 0;
}

void bal_scale_stop(struct balancer *b)
{
    struct bal_scaler *s = b->scaler;
    if (!s)
        return;
    if (s->timer)
        event_free(s->timer);
    s->runner->ops->free(s->runner);
    free(s);
    b->scaler = NULL;
}

int bal_scale_want(struct balancer *b, struct bal_pool *p, int replicas)
{
    const struct scale_config *c = &b->cfg.scale;
    if (replicas >= 0 && replicas < c->min)
        replicas = (int)c->min;
    if (replicas > c->max)
        replicas = (int)c->max;
    p->wanted = replicas;
    return replicas;
}

json_t *bal_scale_json(struct balancer *b, const char *pool)
{
    struct bal_scaler *s = b->scaler;
    if (!s || strcmp(pool, POOL))
        return NULL;
    static const char *const vstates[] = {"none", "draining", "stopping"};
    json_t *o = json_pack("{s:s, s:i, s:i, s:i, s:i, s:i, s:s, s:s}", "runner",
                          s->runner->ops->name, "min", s->policy.min, "max", s->policy.max,
                          "replicas", s->replicas, "members", s->members, "wanted", s->wanted,
                          "reason", s->reason, "victim_state", vstates[s->vstate]);
    if (s->victim[0])
        json_object_set_new(o, "victim", json_string(s->victim));
    return o;
}

void bal_scale_render(struct balancer *b, struct dsf_buf *out)
{
    struct bal_scaler *s = b->scaler;
    if (!s)
        return;
    prom_family(out, "damselfly_balancer_scale_decisions_total", "counter",
                "Times the pool was scaled out or in, by why (the policy's criterion, a bound, "
                "or the API).");
    for (int d = 0; d < DIRS; d++)
        for (int r = 0; r < REASONS; r++)
            prom_labeled_sample(out, "damselfly_balancer_scale_decisions_total",
                                (double)s->decisions[d][r], "pool", POOL, "direction", dir_names[d],
                                "reason", reason_names[r], NULL);
    prom_family(out, "damselfly_balancer_pool_wanted", "gauge",
                "Members the pool should have, as last decided (-1: not decided yet).");
    prom_labeled_sample(out, "damselfly_balancer_pool_wanted", s->wanted, "pool", POOL, NULL);
    prom_family(out, "damselfly_balancer_runner_replicas", "gauge",
                "Members the runner has started and not stopped, as last read (-1: unknown).");
    prom_labeled_sample(out, "damselfly_balancer_runner_replicas", s->replicas, "pool", POOL, NULL);
}
