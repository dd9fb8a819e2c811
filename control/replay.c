/*
 * The audit trail is also the controller's journal: every decision and every step is
 * appended (and synced) before it runs, so at start the trail says which alarm occurrences
 * were acted on, which actions are unfinished and where each stands, and what the guards
 * had counted (cooldowns, holds, rates, pause). A step that began but has no end was cut off
 * by a crash: it is reconciled against the federation's state, finished or rolled back,
 * never run again.
 */
#define DSF_MODULE "control"
#include "common/log.h"
#include "common/rfc3339.h"
#include "control/control_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The record's time (RFC 3339, as the audit writes it) in ms; 0 when it has none. */
static int64_t record_ms(json_t *rec)
{
    const char *t = json_string_value(json_object_get(rec, "time"));
    int64_t ns = 0;
    return t && dsf_rfc3339_parse(t, &ns) == 0 ? ns / 1000000 : 0;
}

static const char *str(json_t *rec, const char *key)
{
    const char *s = json_string_value(json_object_get(rec, key));
    return s ? s : "";
}

static const struct policy *policy_named(struct control *c, const char *name)
{
    for (size_t i = 0; i < c->policies.n; i++) {
        if (!strcmp(c->policies.policies[i].name, name))
            return &c->policies.policies[i];
    }
    return NULL;
}

static enum ctl_kind kind_named(const char *name)
{
    for (int k = CTL_KIND_VM; k <= CTL_KIND_WORKLOAD; k++) {
        if (!strcmp(ctl_kind_name((enum ctl_kind)k), name))
            return (enum ctl_kind)k;
    }
    return CTL_KIND_VM;
}

/* A policy no longer loaded (removed, or a manual action's one-step policy, which is no
 * file): its chain as the decision recorded it, the ops without their parameters - enough to
 * reconcile and verify a step that was running, never to begin one (policy_gone). */
static void gone_policy(json_t *rec, struct policy *p)
{
    json_t *op;
    size_t i;
    p->verify_timeout_ms = POLICY_DEFAULT_VERIFY_TIMEOUT_MS;
    json_array_foreach(json_object_get(rec, "ops"), i, op)
    {
        for (int k = POLICY_SUSPEND; k <= POLICY_WEBHOOK && p->nsteps < POLICY_MAX_STEPS; k++) {
            if (json_is_string(op) && !strcmp(json_string_value(op), policy_action_name(k))) {
                p->steps[p->nsteps++].action = (enum policy_action)k;
                break;
            }
        }
    }
}

/* An action as its decision record describes it; the policy as it is now (a chain whose
 * policy is gone finishes its running step and ends as cancelled). */
static struct ctl_action *restore(struct control *c, json_t *rec, int64_t at)
{
    const char *id = str(rec, "action");
    struct ctl_action *a = ctl_action_find(c, id);
    if (a)
        return a;
    const struct policy *p = policy_named(c, str(rec, "policy"));
    struct policy gone = {.name = (char *)str(rec, "policy"), .nsteps = 0};
    if (!p)
        gone_policy(rec, &gone);
    a = ctl_action_new(c, p ? p : &gone, kind_named(str(rec, "kind")), str(rec, "ns"),
                       str(rec, "mci"), str(rec, "target"), NULL);
    if (!a)
        return NULL;
    snprintf(a->id, sizeof(a->id), "%s", id);
    /* rehash under the restored id */
    dsf_htab_remove(&c->actions, &a->link);
    dsf_htab_insert(&c->actions, &a->link, ctl_hash(a->id));
    unsigned long long n = 0;
    if (sscanf(id, "a-%llu", &n) == 1 && n > c->next_action)
        c->next_action = n;
    a->created_ms = at;
    a->replayed = 1;
    snprintf(a->wl_ns, sizeof(a->wl_ns), "%s", str(rec, "workload_ns"));
    a->policy_gone = !p;
    json_t *alarm = json_object_get(rec, "alarm");
    snprintf(a->alarm.rule, sizeof(a->alarm.rule), "%s", str(alarm, "rule"));
    snprintf(a->alarm.engine, sizeof(a->alarm.engine), "%s", str(alarm, "engine"));
    snprintf(a->alarm.state, sizeof(a->alarm.state), "%s", str(alarm, "state"));
    snprintf(a->alarm.severity, sizeof(a->alarm.severity), "%s", str(alarm, "severity"));
    const char *guard = str(rec, "guard");
    if (*str(alarm, "key") && strcmp(guard, "paused") && strcmp(guard, "breaker"))
        ctl_handled_mark(c, str(alarm, "key"));
    return a;
}

static void replay_decision(struct control *c, json_t *rec, int64_t at)
{
    struct ctl_action *a = restore(c, rec, at);
    if (!a)
        return;
    const char *verdict = str(rec, "verdict");
    if (!strcmp(verdict, "run")) {
        struct guard_target t = ctl_guard_target(a);
        guards_begin(c->guards, &t, at);
        a->committed = 1;
        a->phase = CTL_WAITING;
    } else if (!strcmp(verdict, "approval")) {
        a->phase = CTL_APPROVAL;
    } else {
        a->dry_run = !strcmp(verdict, "dry_run");
        a->committed = a->dry_run;
        a->phase = a->dry_run ? CTL_WAITING : CTL_DONE;
        snprintf(a->outcome, sizeof(a->outcome), "%s", a->dry_run ? "" : "blocked");
    }
}

static void replay_step(struct ctl_action *a, json_t *rec, int64_t at)
{
    int step = (int)json_integer_value(json_object_get(rec, "step"));
    a->step = step;
    if (!strcmp(str(rec, "phase"), "begin")) {
        a->phase = CTL_RUNNING;
        a->in_flight_unknown = 1;
        a->step_began_ms = at;
        snprintf(a->new_id, sizeof(a->new_id), "%s", str(rec, "new_vm"));
        a->size_before = (int)json_integer_value(json_object_get(rec, "size_before"));
        a->scale_n = (int)json_integer_value(json_object_get(rec, "count"));
        return;
    }
    a->in_flight_unknown = 0;
    int ok = json_is_true(json_object_get(rec, "ok"));
    const char *op = str(rec, "op");
    if (ok && strcmp(op, "notify") && strcmp(op, "webhook") && !a->dry_run) {
        a->phase = CTL_VERIFYING;
        a->verify_until_ms = at + a->policy.verify_timeout_ms;
    } else {
        if (!ok)
            a->new_id[0] = '\0';
        a->step = step + 1;
        a->phase = CTL_WAITING;
    }
}

static void replay_end(struct control *c, struct ctl_action *a, json_t *rec, int64_t at)
{
    int began = a->committed && !a->dry_run;
    a->phase = CTL_DONE;
    snprintf(a->outcome, sizeof(a->outcome), "%s", str(rec, "outcome"));
    a->hold_until_ms = json_integer_value(json_object_get(rec, "hold_until_ms"));
    if (began) {
        struct guard_target t = ctl_guard_target(a);
        guards_end(c->guards, &t, at, a->hold_until_ms);
    }
}

static void replay_one(struct control *c, json_t *rec)
{
    const char *ev = str(rec, "event");
    int64_t at = record_ms(rec);
    if (!strcmp(ev, "decision")) {
        replay_decision(c, rec, at);
        return;
    }
    if (!strcmp(ev, "operator")) {
        const char *op = str(rec, "op");
        if (!strcmp(op, "pause") || !strcmp(op, "resume"))
            guards_pause(c->guards, !strcmp(op, "pause"));
        return;
    }
    struct ctl_action *a = *str(rec, "action") ? ctl_action_find(c, str(rec, "action")) : NULL;
    if (!a || a->phase == CTL_DONE)
        return;
    if (!strcmp(ev, "step")) {
        replay_step(a, rec, at);
    } else if (!strcmp(ev, "verify") && !json_is_true(json_object_get(rec, "ok"))) {
        a->step++;
        a->phase = CTL_WAITING;
    } else if (!strcmp(ev, "end")) {
        replay_end(c, a, rec, at);
    }
}

void ctl_replay_record(void *arg, json_t *rec)
{
    struct control *c = arg;
    replay_one(c, rec);
    ctl_action_keep_record(c, rec); /* after: a decision creates its action */
}

void ctl_replay_resume(struct control *c)
{
    size_t resumed = 0, reconciled = 0;
    for (struct ctl_action *a = c->action_list; a; a = a->next) {
        if (!a->replayed || a->phase == CTL_DONE)
            continue;
        if (a->policy_gone && (a->phase == CTL_APPROVAL ||
                               (a->in_flight_unknown && a->step >= (int)a->policy.nsteps))) {
            snprintf(a->last_error, sizeof(a->last_error), "policy %s is no longer loaded",
                     a->policy.name);
            ctl_action_finish(c, a, "cancelled", 0);
            continue;
        }
        if (a->phase == CTL_RUNNING && a->in_flight_unknown) {
            char err[512];
            log_warn("action %s: step %d (%s on %s) was running when the controller stopped; "
                     "reconciling it with the federation's state",
                     a->id, a->step, policy_action_name(a->policy.steps[a->step].action),
                     a->target);
            if (executor_reconcile(c->exec, a, err, sizeof(err)) < 0)
                ctl_action_step_done(c, a, 0, err, NULL);
            reconciled++;
        } else {
            resumed++;
        }
    }
    if (resumed || reconciled)
        log_info("from the audit: %zu unfinished actions resumed, %zu steps reconciled", resumed,
                 reconciled);
    ctl_actions_tick(c);
}
