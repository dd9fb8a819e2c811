/* The balancer's /metrics (docs/balancer.md "Metrics"). */
#include "balancer/balancer.h"

#include <string.h>

static double epoch_of(void *arg)
{
    return (double)((struct balancer *)arg)->epoch;
}

static double leading_of(void *arg)
{
    return ((struct balancer *)arg)->leading;
}

void bal_add_metrics(struct balancer *b)
{
    struct dsf_metrics *m = &b->metrics;
    metrics_add_fn(m, "damselfly_balancer_epoch", DSF_GAUGE,
                   "The last assignment epoch used or seen (wall-clock ms).", NULL, epoch_of, b);
    metrics_add_fn(m, "damselfly_balancer_leader", DSF_GAUGE,
                   "1 while this balancer leads (publishes assignments).", NULL, leading_of, b);
    metrics_add_u64_by(m, "damselfly_balancer_heartbeats_rejected_total", DSF_COUNTER,
                       "Heartbeats ignored: not JSON, bad fields, an id other than the topic's, "
                       "too large.",
                       "reason", bal_hb_reason_names, BAL_HB_REASONS, b->stats.hb_rejected);
    metrics_add_u64_by(m, "damselfly_balancer_assignments_rejected_total", DSF_COUNTER,
                       "Retained assignments read back and ignored: not JSON, bad fields, "
                       "buckets or epoch out of range.",
                       "reason", bal_assign_reason_names, BAL_ASSIGN_REASONS,
                       b->stats.assign_rejected);
    metrics_add_u64_by(m, "damselfly_balancer_moves_total", DSF_COUNTER,
                       "Buckets given to another member, by why.", "reason", bal_move_reason_names,
                       BAL_MOVE_REASONS, b->stats.moves);
    metrics_add_u64(m, "damselfly_balancer_publish_failed_total", DSF_COUNTER,
                    "Assignments that could not be queued (retried on the next tick).", NULL,
                    &b->stats.publish_failed);
    metrics_add_u64(m, "damselfly_balancer_unknown_pool_total", DSF_COUNTER,
                    "Members announcing a pool (or role) that no configuration names.", NULL,
                    &b->stats.unknown_pool);
    metrics_add_u64(m, "damselfly_balancer_leader_rejected_total", DSF_COUNTER,
                    "Malformed leader records ignored.", NULL, &b->stats.leader_rejected);
    metrics_add_u64(m, "damselfly_balancer_leader_changes_total", DSF_COUNTER,
                    "Times this balancer took the lead.", NULL, &b->stats.leader_changes);
    metrics_add_double(m, "damselfly_balancer_failover_seconds", DSF_GAUGE,
                       "The last failover: from a death noticed to every bucket owned, "
                       "confirmed and held once again.",
                       NULL, &b->stats.failover_s);
}

static void members_family(struct balancer *b, struct dsf_buf *out)
{
    static const char *const states[] = {"alive", "draining", "dead"};
    prom_family(out, "damselfly_balancer_members", "gauge", "Members by pool and state.");
    for (size_t i = 0; i < b->npools; i++) {
        int n[3] = {0};
        for (struct bal_member *m = b->members; m; m = m->next)
            if (!strcmp(m->pool, b->pools[i].name))
                n[!m->alive ? 2 : m->draining ? 1 : 0]++;
        for (int s = 0; s < 3; s++)
            prom_labeled_sample(out, "damselfly_balancer_members", n[s], "pool", b->pools[i].name,
                                "state", states[s], NULL);
    }
}

static void per_member(struct balancer *b, struct dsf_buf *out, const char *name, const char *help,
                       int what)
{
    prom_family(out, name, "gauge", help);
    for (struct bal_member *m = b->members; m; m = m->next) {
        double v = what == 1 ? m->points_per_s : what == 2 ? m->cpu : 0;
        for (uint32_t k = 0; what == 0 && k < b->nb; k++)
            v += m->assigned[k];
        /* A collector and an engine may share an id: the role keeps the series apart. */
        prom_labeled_sample(out, name, v, "member", m->id, "role", m->role, NULL);
    }
}

void bal_render_metrics(void *arg, struct dsf_buf *out)
{
    struct balancer *b = arg;
    members_family(b, out);
    per_member(b, out, "damselfly_balancer_buckets",
               "Buckets in the member's published assignment.", 0);
    per_member(b, out, "damselfly_balancer_load_points_per_s",
               "Points per second, from the member's last heartbeat.", 1);
    per_member(b, out, "damselfly_balancer_cpu",
               "CPU cores used, from the member's last heartbeat.", 2);
    bal_scale_render(b, out);
}
