#include "balancer/policy.h"

#include <stddef.h>

/* The criterion whose per-member load is furthest above (or least below) its target, as a
 * ratio of load to target; 0 criteria active: ratio -1. */
struct pressure {
    double ratio;
    const char *reason;
};

static void consider(struct pressure *pr, double per_member, double target, const char *reason)
{
    if (target <= 0)
        return;
    double r = per_member / target;
    if (pr->ratio < 0 || r > pr->ratio) {
        pr->ratio = r;
        pr->reason = reason;
    }
}

static struct pressure pressure_of(const struct scale_policy *p, const struct scale_load *l)
{
    struct pressure pr = {-1, "steady"};
    double n = l->members;
    consider(&pr, l->points_per_s / n, p->target_points_per_s, "points_per_s");
    consider(&pr, l->cpu / n, p->target_cpu, "cpu");
    /* Lag is only known for Kafka pools; an unknown lag neither pushes nor holds. */
    if (l->lag >= 0)
        consider(&pr, (double)l->lag / n, (double)p->target_lag, "lag");
    return pr;
}

/* The most members the pool may have: a Kafka consumer beyond the partition count would sit
 * idle in the group. */
static int ceiling(const struct scale_policy *p, const struct scale_load *l, const char **why)
{
    *why = "max";
    if (l->partitions > 0 && l->partitions < p->max) {
        *why = "partitions";
        return l->partitions;
    }
    return p->max;
}

static struct scale_decision keep(int members, const char *reason)
{
    return (struct scale_decision){members, reason};
}

static struct scale_decision scale_out(const struct scale_policy *p, struct scale_state *s,
                                       int members, int top, const char *top_why,
                                       const char *reason, int64_t now)
{
    if (s->high_since_ms == 0)
        s->high_since_ms = now;
    s->low_since_ms = 0;
    if (now - s->high_since_ms < p->sustain_ms)
        return keep(members, "steady");
    if (members >= top)
        return keep(members, top_why);
    if (s->last_out_ms && now - s->last_out_ms < p->cooldown_out_ms)
        return keep(members, "cooldown");
    s->last_out_ms = now;
    s->high_since_ms = 0;
    return (struct scale_decision){members + 1, reason};
}

/* Scale in waits for the in cooldown after any change: a member just added has not taken
 * its share yet, and removing one at once would undo the scale out. */
static struct scale_decision scale_in(const struct scale_policy *p, struct scale_state *s,
                                      int members, const char *reason, int64_t now)
{
    if (s->low_since_ms == 0)
        s->low_since_ms = now;
    s->high_since_ms = 0;
    if (now - s->low_since_ms < p->sustain_ms)
        return keep(members, "steady");
    if (members <= p->min)
        return keep(members, "min");
    int64_t last = s->last_in_ms > s->last_out_ms ? s->last_in_ms : s->last_out_ms;
    if (last && now - last < p->cooldown_in_ms)
        return keep(members, "cooldown");
    s->last_in_ms = now;
    s->low_since_ms = 0;
    return (struct scale_decision){members - 1, reason};
}

struct scale_decision scale_decide(const struct scale_policy *p, struct scale_state *s,
                                   const struct scale_load *load, int64_t now_ms)
{
    const char *top_why;
    int top = ceiling(p, load, &top_why);
    int members = load->members;
    /* Bounds are configuration, not load: they apply at once and need no sustain. */
    if (members < p->min && members < top)
        return (struct scale_decision){p->min < top ? p->min : top, "min"};
    if (members > top)
        return (struct scale_decision){top, top_why};
    if (members == 0)
        return keep(0, "steady");
    struct pressure pr = pressure_of(p, load);
    if (pr.ratio > 1.0)
        return scale_out(p, s, members, top, top_why, pr.reason, now_ms);
    if (pr.ratio >= 0 && pr.ratio < p->in_ratio)
        return scale_in(p, s, members, pr.reason, now_ms);
    s->high_since_ms = 0;
    s->low_since_ms = 0;
    return keep(members, "steady");
}
