/*
 * An action is one run of a policy's chain on one target: each step is audited before it
 * begins and when it ends, a step that ends well is verified (the alarm cleared and, for a
 * VM, its agent online again since the step began) within the policy's verify_timeout, and a
 * step that fails or does not verify escalates to the next. A chain that runs out ends with
 * a notification (the end record goes to the notifier) and a hold on the target, never a
 * loop.
 */
#define DSF_MODULE "control"
#include "common/http_client.h"
#include "common/log.h"
#include "common/loop.h"
#include "control/control_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const kind_names[] = {"vm", "subgroup", "node", "workload"};
static const char *const phase_names[] = {"approval", "waiting", "running", "verifying", "done"};

const char *ctl_kind_name(enum ctl_kind k)
{
    return kind_names[k];
}

const char *ctl_phase_name(enum ctl_phase p)
{
    return phase_names[p];
}

uint64_t ctl_hash(const char *s)
{
    return dsf_hash_bytes(s, strlen(s));
}

int64_t ctl_wall_ms(void)
{
    return dsf_now_ns() / 1000000;
}

static int policy_copy(struct policy *dst, const struct policy *src)
{
    *dst = *src;
    dst->name = strdup(src->name);
    dst->origin = src->origin ? strdup(src->origin) : NULL;
    dst->description = NULL;
    dst->rule = strdup(src->rule ? src->rule : "");
    dst->state = src->state ? strdup(src->state) : NULL;
    dst->severity = src->severity ? strdup(src->severity) : NULL;
    dst->nlabels = 0; /* the match is done; the chain needs the steps */
    int bad = !dst->name || !dst->rule;
    for (size_t i = 0; i < src->nsteps; i++) {
        const struct policy_step *s = &src->steps[i];
        dst->steps[i].region = s->region ? strdup(s->region) : NULL;
        dst->steps[i].url = s->url ? strdup(s->url) : NULL;
        bad |= (s->region && !dst->steps[i].region) || (s->url && !dst->steps[i].url);
    }
    if (bad) {
        policy_free(dst);
        return -1;
    }
    return 0;
}

struct ctl_action *ctl_action_find(struct control *c, const char *id)
{
    uint64_t h = ctl_hash(id);
    for (struct dsf_hlink *l = dsf_htab_first(&c->actions, h); l; l = l->next) {
        struct ctl_action *a = (struct ctl_action *)l;
        if (l->hash == h && strcmp(a->id, id) == 0)
            return a;
    }
    return NULL;
}

static void action_free(struct ctl_action *a)
{
    json_decref(a->records);
    policy_free(&a->policy);
    free(a);
}

void ctl_action_keep_record(struct control *c, const json_t *rec)
{
    const char *id = json_string_value(json_object_get(rec, "action"));
    struct ctl_action *a = id ? ctl_action_find(c, id) : NULL;
    if (!a || (!a->records && !(a->records = json_array())))
        return;
    /* Text, not objects: a jansson object per record would weigh several times more. */
    char *text = json_dumps(rec, JSON_COMPACT);
    if (!text)
        return;
    if (json_array_size(a->records) >= CTL_ACTION_RECORDS)
        json_array_remove(a->records, 0);
    json_array_append_new(a->records, json_string(text));
    free(text);
}

json_t *ctl_action_records(const struct ctl_action *a)
{
    json_t *list = json_array(), *it;
    size_t i;
    json_array_foreach(a->records, i, it)
    {
        json_t *r = json_loads(json_string_value(it), 0, NULL);
        if (r)
            json_array_append_new(list, r);
    }
    return list;
}

/* Keeps the list within actions.max: the oldest finished actions go. */
static void evict(struct control *c)
{
    if (c->nactions <= (size_t)c->cfg.max_actions)
        return;
    struct ctl_action **p = &c->action_list, **victim = NULL;
    for (; *p; p = &(*p)->next) {
        if ((*p)->phase == CTL_DONE)
            victim = p;
    }
    if (!victim)
        return;
    struct ctl_action *a = *victim;
    *victim = a->next;
    dsf_htab_remove(&c->actions, &a->link);
    c->nactions--;
    action_free(a);
}

struct ctl_action *ctl_action_new(struct control *c, const struct policy *p, enum ctl_kind kind,
                                  const char *ns, const char *mci, const char *target,
                                  const struct ctl_event *alarm)
{
    struct ctl_action *a = calloc(1, sizeof(*a));
    if (!a || policy_copy(&a->policy, p) < 0) {
        free(a);
        log_error("out of memory for an action of policy %s", p->name);
        return NULL;
    }
    snprintf(a->id, sizeof(a->id), "a-%llu", (unsigned long long)++c->next_action);
    a->kind = kind;
    snprintf(a->ns, sizeof(a->ns), "%s", ns);
    snprintf(a->mci, sizeof(a->mci), "%s", mci);
    snprintf(a->target, sizeof(a->target), "%s", target);
    if (alarm) {
        a->alarm = *alarm;
        if (ctl_event_series_key(alarm, a->series, sizeof(a->series)) < 0)
            a->series[0] = '\0';
    }
    a->phase = CTL_WAITING;
    a->created_ms = ctl_wall_ms();
    dsf_htab_insert(&c->actions, &a->link, ctl_hash(a->id));
    a->next = c->action_list;
    c->action_list = a;
    c->nactions++;
    evict(c);
    return a;
}

void ctl_actions_free(struct control *c)
{
    for (struct ctl_action *a = c->action_list, *next; a; a = next) {
        next = a->next;
        action_free(a);
    }
    c->action_list = NULL;
    dsf_htab_free(&c->actions);
}

int ctl_record_action(struct control *c, const struct ctl_action *a, json_t *rec)
{
    json_object_set_new(rec, "action", json_string(a->id));
    json_object_set_new(rec, "policy", json_string(a->policy.name));
    json_object_set_new(rec, "kind", json_string(ctl_kind_name(a->kind)));
    json_object_set_new(rec, "ns", json_string(a->ns));
    json_object_set_new(rec, "mci", json_string(a->mci));
    json_object_set_new(rec, "target", json_string(a->target));
    if (a->dry_run)
        json_object_set_new(rec, "dry_run", json_true());
    return ctl_record(c, rec);
}

struct guard_target ctl_guard_target(const struct ctl_action *a)
{
    return (struct guard_target){a->policy.name, a->ns, a->mci, a->target, a->kind == CTL_KIND_VM};
}

void ctl_action_finish(struct control *c, struct ctl_action *a, const char *outcome, int hold)
{
    if (a->phase == CTL_DONE)
        return;
    int64_t now = ctl_wall_ms();
    int began = a->phase != CTL_APPROVAL && !a->dry_run;
    a->phase = CTL_DONE;
    snprintf(a->outcome, sizeof(a->outcome), "%s", outcome);
    a->hold_until_ms = hold ? now + a->policy.hold_ms : 0;
    json_t *rec = json_pack("{s:s, s:s}", "event", "end", "outcome", outcome);
    if (a->hold_until_ms)
        json_object_set_new(rec, "hold_until_ms", json_integer(a->hold_until_ms));
    if (a->last_error[0])
        json_object_set_new(rec, "error", json_string(a->last_error));
    ctl_record_action(c, a, rec);
    if (began) {
        struct guard_target t = ctl_guard_target(a);
        guards_end(c->guards, &t, now, a->hold_until_ms);
    }
    if (!strcmp(outcome, "healed"))
        dsf_count(&c->stats.healed, 1);
    else if (!strcmp(outcome, "cancelled"))
        dsf_count(&c->stats.cancelled, 1);
    else if (strcmp(outcome, "blocked") && strcmp(outcome, "dry_run"))
        dsf_count(&c->stats.exhausted, 1);
    log_info("action %s (%s on %s/%s/%s): %s", a->id, a->policy.name, a->ns, a->mci, a->target,
             outcome);
}

struct webhook_call {
    struct control *c;
    char id[32];
    int step;
};

static void webhook_answered(void *arg, const struct dsf_http_response *r)
{
    struct webhook_call *w = arg;
    struct ctl_action *a = ctl_action_find(w->c, w->id);
    char err[300] = "";
    int ok = r->status >= 200 && r->status < 300;
    if (!ok)
        snprintf(err, sizeof(err), "POST %s: %s%ld", a ? a->policy.steps[w->step].url : "",
                 r->status ? "status " : (r->error ? r->error : "no answer "), r->status);
    if (a && a->phase == CTL_RUNNING && a->step == w->step)
        ctl_action_step_done(w->c, a, ok, err, NULL);
    free(w);
}

/* A webhook step: the action as JSON to the policy's URL, like a notification to a system
 * that acts on its own; it is not verified. */
static int post_webhook(struct control *c, struct ctl_action *a, char *err, size_t errlen)
{
    struct webhook_call *w = calloc(1, sizeof(*w));
    json_t *o = ctl_action_json(a);
    char *body = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    static const char *const headers[] = {"Content-Type: application/json", NULL};
    struct dsf_http_request req = {.method = "POST",
                                   .url = a->policy.steps[a->step].url,
                                   .headers = headers,
                                   .body = body,
                                   .len = body ? strlen(body) : 0,
                                   .timeout_ms = 10000};
    int rc = -1;
    if (w && body) {
        w->c = c;
        w->step = a->step;
        snprintf(w->id, sizeof(w->id), "%s", a->id);
        rc = dsf_http_client_send(c->http, &req, webhook_answered, w);
    }
    free(body);
    if (rc < 0) {
        free(w);
        snprintf(err, errlen, "cannot send the webhook");
    }
    return rc;
}

static int is_federation_step(enum policy_action op)
{
    return op != POLICY_NOTIFY;
}

/* A step that only tells someone: audited (the notifier picks the record up) and done. */
static void run_notify(struct control *c, struct ctl_action *a)
{
    const struct policy_step *s = &a->policy.steps[a->step];
    json_t *rec = json_pack("{s:s, s:i, s:s, s:s, s:b}", "event", "step", "step", a->step, "op",
                            policy_action_name(s->action), "phase", "end", "ok", 1);
    if (a->last_error[0])
        json_object_set_new(rec, "why", json_string(a->last_error));
    ctl_record_action(c, a, rec);
    dsf_count(&c->stats.calls[s->action], 1);
}

static int may_act(struct control *c, const struct ctl_action *a, char *why, size_t len)
{
    if (guards_paused(c->guards)) {
        snprintf(why, len, "actions are paused");
        return 0;
    }
    if (guards_breaker_open(c->guards, a->ns, a->mci)) {
        snprintf(why, len, "the storm breaker is open");
        return 0;
    }
    return 1;
}

static void begin_step(struct control *c, struct ctl_action *a)
{
    const struct policy_step *s = &a->policy.steps[a->step];
    char err[512];
    a->phase = CTL_RUNNING;
    a->step_began_ms = ctl_wall_ms();
    json_t *rec = json_pack("{s:s, s:i, s:s, s:s}", "event", "step", "step", a->step, "op",
                            policy_action_name(s->action), "phase", "begin");
    int webhook = s->action == POLICY_WEBHOOK;
    if (!webhook && executor_prepare(c->exec, a, rec, err, sizeof(err)) < 0) {
        json_decref(rec);
        ctl_action_step_done(c, a, 0, err, NULL);
        return;
    }
    /* The decision latency in the record itself, so that it can be read from the audit
     * without the metrics' buckets. */
    int64_t decided = a->alarm.received_ms > 0 && a->step == 0 ? dsf_mono_ms() : 0;
    if (decided)
        json_object_set_new(rec, "decision_ms", json_integer(decided - a->alarm.received_ms));
    /* Journaled before it runs: a crash from here on is reconciled, never repeated. */
    if (ctl_record_action(c, a, rec) < 0) {
        ctl_action_step_done(c, a, 0, "the audit log cannot be written: not acting", NULL);
        return;
    }
    dsf_count(&c->stats.calls[s->action], 1);
    if (decided)
        dsf_histogram_observe(&c->stats.decision_s,
                              (double)(dsf_mono_ms() - a->alarm.received_ms) / 1000.0, 1);
    if ((webhook ? post_webhook(c, a, err, sizeof(err))
                 : executor_start(c->exec, a, err, sizeof(err))) < 0)
        ctl_action_step_done(c, a, 0, err, NULL);
}

void ctl_action_run(struct control *c, struct ctl_action *a)
{
    while (a->phase != CTL_DONE) {
        if (a->cancel) {
            ctl_action_finish(c, a, "cancelled", 0);
            return;
        }
        if (a->step >= (int)a->policy.nsteps) {
            ctl_action_finish(c, a, a->dry_run ? "dry_run" : "exhausted", !a->dry_run);
            return;
        }
        if (a->policy_gone) { /* the step's parameters went with the policy */
            snprintf(a->last_error, sizeof(a->last_error),
                     "policy %s is no longer loaded: step %d not begun", a->policy.name, a->step);
            ctl_action_finish(c, a, "cancelled", 0);
            return;
        }
        const struct policy_step *s = &a->policy.steps[a->step];
        if (!is_federation_step(s->action)) {
            run_notify(c, a);
            a->step++;
            continue;
        }
        char why[256];
        if (!may_act(c, a, why, sizeof(why))) {
            a->phase = CTL_WAITING; /* the tick tries again */
            return;
        }
        begin_step(c, a);
        return;
    }
}

void ctl_action_step_done(struct control *c, struct ctl_action *a, int ok, const char *error,
                          const char *detail)
{
    const struct policy_step *s = &a->policy.steps[a->step];
    json_t *rec = json_pack("{s:s, s:i, s:s, s:s, s:b}", "event", "step", "step", a->step, "op",
                            policy_action_name(s->action), "phase", "end", "ok", ok);
    if (error && *error)
        json_object_set_new(rec, "error", json_string(error));
    if (detail && *detail)
        json_object_set_new(rec, "detail", json_string(detail));
    ctl_record_action(c, a, rec);
    /* Told, planned, or a cordon before a drain: it only keeps new pods away while the
     * drain moves the old ones and clears no alarm, so waiting for that would hold the drain
     * back for verify_timeout. */
    int drain_next = s->action == POLICY_K8S_CORDON && a->step + 1 < (int)a->policy.nsteps &&
                     a->policy.steps[a->step + 1].action == POLICY_K8S_DRAIN;
    if (ok && (s->action == POLICY_WEBHOOK || drain_next || a->dry_run)) {
        a->step++;
        ctl_action_run(c, a);
        return;
    }
    if (!ok) {
        dsf_count(&c->stats.call_failures, 1);
        snprintf(a->last_error, sizeof(a->last_error), "%s failed: %s",
                 policy_action_name(s->action), error ? error : "");
        a->step++;
        ctl_action_run(c, a);
        return;
    }
    a->phase = CTL_VERIFYING;
    a->verify_until_ms = ctl_wall_ms() + a->policy.verify_timeout_ms;
    ctl_actions_tick(c);
}

/* The alarm that started the action no longer fires: its series resolved, went inactive or
 * was forgotten, or it was about a VM that is gone (migrated away). */
static int alarm_cleared(struct control *c, const struct ctl_action *a)
{
    /* A scale in answers an alarm of idle capacity, which removing a VM does not end while
     * the load stays low: the subgroup at its new size is the result (else every scale in
     * would end exhausted and hold the subgroup against the next scale out). */
    if (!a->series[0] || a->policy.steps[a->step].action == POLICY_SCALE_IN)
        return 1;
    const char *st = fleet_alarm_state(c->fleet, a->series);
    if (!*st || !strcmp(st, "resolved") || !strcmp(st, "inactive"))
        return 1;
    return a->new_id[0] != '\0'; /* the replacement is verified by its own agent */
}

static int agent_back(struct control *c, const struct ctl_action *a)
{
    if (a->kind != CTL_KIND_VM)
        return 1;
    const char *vm = a->new_id[0] ? a->new_id : a->target;
    int64_t since = 0;
    int online = fleet_online(c->fleet, a->ns, a->mci, vm, &since);
    return online == 1 && (since >= a->step_began_ms || a->new_id[0]);
}

static void verify(struct control *c, struct ctl_action *a, int64_t now)
{
    int cleared = alarm_cleared(c, a), back = agent_back(c, a);
    if (cleared && back) {
        json_t *rec = json_pack("{s:s, s:i, s:b}", "event", "verify", "step", a->step, "ok", 1);
        ctl_record_action(c, a, rec);
        ctl_action_finish(c, a, "healed", 0);
        return;
    }
    if (now < a->verify_until_ms)
        return;
    char why[256];
    snprintf(why, sizeof(why), "not verified within %llds: %s%s%s",
             (long long)(a->policy.verify_timeout_ms / 1000),
             cleared ? "" : "the alarm still fires", !cleared && !back ? " and " : "",
             back ? "" : "the agent is not online again");
    json_t *rec =
        json_pack("{s:s, s:i, s:b, s:s}", "event", "verify", "step", a->step, "ok", 0, "why", why);
    ctl_record_action(c, a, rec);
    snprintf(a->last_error, sizeof(a->last_error), "%s", why);
    a->step++;
    ctl_action_run(c, a);
}

void ctl_actions_tick(struct control *c)
{
    int64_t now = ctl_wall_ms();
    for (struct ctl_action *a = c->action_list; a; a = a->next) {
        if (a->phase == CTL_VERIFYING)
            verify(c, a, now);
        else if (a->phase == CTL_WAITING && a->committed)
            ctl_action_run(c, a);
    }
}

json_t *ctl_action_json(const struct ctl_action *a)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:b, s:I}", "id", a->id,
                          "policy", a->policy.name, "kind", ctl_kind_name(a->kind), "ns", a->ns,
                          "mci", a->mci, "target", a->target, "phase", ctl_phase_name(a->phase),
                          "step", a->step, "steps", (int)a->policy.nsteps, "dry_run", a->dry_run,
                          "created_ms", (json_int_t)a->created_ms);
    json_t *steps = json_array();
    for (size_t i = 0; i < a->policy.nsteps; i++)
        json_array_append_new(steps, json_string(policy_action_name(a->policy.steps[i].action)));
    json_object_set_new(o, "ops", steps);
    /* One word for lists and the console: the phase, or once done its outcome. */
    json_object_set_new(
        o, "state",
        json_string(a->phase == CTL_DONE && a->outcome[0] ? a->outcome : ctl_phase_name(a->phase)));
    if (a->outcome[0])
        json_object_set_new(o, "outcome", json_string(a->outcome));
    if (a->last_error[0])
        json_object_set_new(o, "last_error", json_string(a->last_error));
    if (a->new_id[0])
        json_object_set_new(o, "new_vm", json_string(a->new_id));
    if (a->hold_until_ms)
        json_object_set_new(o, "hold_until_ms", json_integer(a->hold_until_ms));
    if (a->alarm.rule[0])
        json_object_set_new(o, "alarm",
                            json_pack("{s:s, s:s, s:s, s:s}", "engine", a->alarm.engine, "rule",
                                      a->alarm.rule, "state", a->alarm.state, "severity",
                                      a->alarm.severity));
    return o;
}
