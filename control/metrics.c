/* The controller's /metrics: what it heard, decided and did, and what it could not. */
#include "control/control_impl.h"
#include "control/audit.h"

#include <stdio.h>

static const double decision_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};

static double policies_loaded(void *arg)
{
    return (double)((struct control *)arg)->policies.n;
}

static double running(void *arg)
{
    struct control *c = arg;
    return c->exec ? (double)executor_running(c->exec) : 0;
}

static double paused(void *arg)
{
    struct control *c = arg;
    return c->guards ? guards_paused(c->guards) : 0;
}

static double breaker(void *arg)
{
    struct control *c = arg;
    return c->guards ? guards_breaker_open(c->guards, "", "") : 0;
}

static double audit_records(void *arg)
{
    struct control *c = arg;
    return c->audit ? (double)audit_last_seq(c->audit) : 0;
}

/* A torn last line is a record a crash cut short: counted like every other loss. */
static double audit_torn(void *arg)
{
    struct control *c = arg;
    return c->audit ? (double)audit_torn_truncated(c->audit) : 0;
}

void control_add_metrics(struct control *c)
{
    static const char *const inputs[] = {"bus", "alertmanager", "reconcile", "manual"};
    static const char *const queries[] = {"ok", "refused", "store_failed", "store_down"};
    static const char *const verdicts[] = {"run", "dry_run", "approval", "blocked"};
    static const char *guards[10], *ops[11];
    struct dsf_metrics *m = &c->metrics;
    struct control_stats *s = &c->stats;
    for (int i = 0; i < 10; i++)
        guards[i] = guard_block_name((enum guard_block)i);
    for (int i = 0; i < 11; i++)
        ops[i] = policy_action_name((enum policy_action)i);
    dsf_histogram_init(&s->decision_s, decision_bounds,
                       sizeof(decision_bounds) / sizeof(decision_bounds[0]));
    metrics_add_u64_by(m, "damselfly_control_events_total", DSF_COUNTER,
                       "Alarm occurrences received.", "input", inputs, 4, s->events);
    metrics_add_u64_by(
        m, "damselfly_control_events_rejected_total", DSF_COUNTER,
        "Inputs refused as malformed (alarm events, webhook alerts, engines' items).", "input",
        inputs, 4, s->rejected);
    metrics_add_u64_by(m, "damselfly_control_decisions_total", DSF_COUNTER, "Decisions by verdict.",
                       "verdict", verdicts, 4, s->verdicts);
    metrics_add_u64_by(m, "damselfly_control_guard_blocks_total", DSF_COUNTER,
                       "Decisions blocked, by guard.", "guard", guards + 1, 9, s->blocked + 1);
    metrics_add_u64_by(
        m, "damselfly_control_federation_calls_total", DSF_COUNTER,
        "Federation calls begun (steps other than notify and webhook), by operation.", "op", ops,
        POLICY_NOTIFY, s->calls);
    metrics_add_u64(m, "damselfly_control_notify_steps_total", DSF_COUNTER,
                    "notify steps run (the record goes to the notifier).", NULL,
                    &s->calls[POLICY_NOTIFY]);
    metrics_add_u64(m, "damselfly_control_webhook_steps_total", DSF_COUNTER, "webhook steps begun.",
                    NULL, &s->calls[POLICY_WEBHOOK]);
    metrics_add_u64(m, "damselfly_control_call_failures_total", DSF_COUNTER,
                    "Steps that ended in failure.", NULL, &s->call_failures);
    metrics_add_u64(m, "damselfly_control_duplicate_events_total", DSF_COUNTER,
                    "Alarm occurrences acted on already (seen on two inputs, or before a restart).",
                    NULL, &s->duplicates);
    metrics_add_u64(m, "damselfly_control_unmatched_events_total", DSF_COUNTER,
                    "Alarm events no policy matches.", NULL, &s->unmatched);
    metrics_add_u64(m, "damselfly_control_actions_healed_total", DSF_COUNTER,
                    "Actions whose step was verified.", NULL, &s->healed);
    metrics_add_u64(m, "damselfly_control_actions_exhausted_total", DSF_COUNTER,
                    "Actions whose chain ran out (notified, target held).", NULL, &s->exhausted);
    metrics_add_u64(m, "damselfly_control_actions_cancelled_total", DSF_COUNTER,
                    "Actions cancelled by an operator.", NULL, &s->cancelled);
    metrics_add_u64(m, "damselfly_control_audit_failures_total", DSF_COUNTER,
                    "Audit records that could not be written (the step was not run).", NULL,
                    &s->record_failures);
    metrics_add_u64(m, "damselfly_control_status_rejected_total", DSF_COUNTER,
                    "Agent status messages that were no status.", NULL, &s->status_rejected);
    metrics_add_u64(m, "damselfly_control_webhook_too_large_total", DSF_COUNTER,
                    "Alertmanager webhook bodies refused as larger than webhook.max_bytes.", NULL,
                    &s->webhook_too_large);
    metrics_add_u64_by(m, "damselfly_control_queries_total", DSF_COUNTER,
                       "Monitoring queries by result: answered, refused as malformed, refused or "
                       "failed by the store, the store unreachable.",
                       "result", queries, 4, s->queries);
    ctl_alarm_proxy_add_metrics(c);
    metrics_add_histogram(m, "damselfly_control_decision_seconds",
                          "From an alarm event's arrival to its first federation call.", NULL,
                          &s->decision_s);
    metrics_add_fn(m, "damselfly_control_policies", DSF_GAUGE, "Policies loaded from policies.dir.",
                   NULL, policies_loaded, c);
    metrics_add_fn(m, "damselfly_control_steps_running", DSF_GAUGE,
                   "Federation calls running on worker threads.", NULL, running, c);
    metrics_add_fn(m, "damselfly_control_paused", DSF_GAUGE, "1 while actions are paused.", NULL,
                   paused, c);
    metrics_add_fn(m, "damselfly_control_breaker_open", DSF_GAUGE,
                   "1 while a fleet-wide or observer storm breaker is open.", NULL, breaker, c);
    metrics_add_fn(m, "damselfly_control_audit_records", DSF_GAUGE,
                   "Records in the audit chain (its last seq).", NULL, audit_records, c);
    metrics_add_fn(m, "damselfly_control_audit_torn_truncated_total", DSF_COUNTER,
                   "Torn last lines (a crash while writing) cut off the audit log at open.", NULL,
                   audit_torn, c);
}
