/*
 * From an alarm occurrence to an action: the fleet's view is updated first (the breaker
 * needs every event, acted on or not), then each matching policy names a target, the
 * decision settles for a moment (so that the guards see the rest of a storm before the first
 * action), and the guards judge it: run, dry run, wait for approval, or blocked - each
 * audited.
 */
#define DSF_MODULE "control"
#include "common/log.h"
#include "common/loop.h"
#include "control/audit.h"
#include "control/control_impl.h"
#include "federation/federation.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const sources[] = {"bus", "alertmanager", "reconcile", "manual"};

static int source_index(const char *source)
{
    for (int i = 0; i < 4; i++) {
        if (!strcmp(sources[i], source))
            return i;
    }
    return 0;
}

int ctl_handled_mark(struct control *c, const char *key)
{
    uint64_t h = ctl_hash(key);
    for (struct dsf_hlink *l = dsf_htab_first(&c->handled, h); l; l = l->next) {
        if (l->hash == h && !strcmp(((struct handled_key *)l)->key, key))
            return 1;
    }
    size_t n = strlen(key);
    struct handled_key *k = malloc(sizeof(*k) + n + 1);
    if (k) {
        memcpy(k->key, key, n + 1);
        dsf_htab_insert(&c->handled, &k->link, h);
    }
    return 0;
}

void ctl_handled_unmark(struct control *c, const char *key)
{
    uint64_t h = ctl_hash(key);
    for (struct dsf_hlink *l = dsf_htab_first(&c->handled, h); l; l = l->next) {
        if (l->hash == h && !strcmp(((struct handled_key *)l)->key, key)) {
            dsf_htab_remove(&c->handled, l);
            free(l);
            return;
        }
    }
}

/* A VM is healthy for the breaker while its agent is online and none of its series is in
 * nodata. */
static void update_health(struct control *c, const char *ns, const char *mci, const char *vm)
{
    int online = fleet_online(c->fleet, ns, mci, vm, NULL);
    int nodata = fleet_vm_nodata(c->fleet, ns, mci, vm, 0);
    guards_vm_health(c->guards, ns, mci, vm, online != 0 && nodata == 0, ctl_wall_ms());
    ctl_breaker_tick(c);
}

static void observe(struct control *c, const struct ctl_event *e)
{
    char series[CTL_EVENT_KEY_MAX];
    if (ctl_event_series_key(e, series, sizeof(series)) < 0)
        return;
    const char *prev = fleet_alarm_state(c->fleet, series);
    const char *ns = ctl_event_label(e, "ns"), *mci = ctl_event_label(e, "mci"),
               *vm = ctl_event_label(e, "vm");
    int was_nodata = !strcmp(prev, "nodata"), is_nodata = !strcmp(e->state, "nodata");
    fleet_alarm(c->fleet, series, e, ctl_wall_ms());
    if (ns && mci && vm && was_nodata != is_nodata) {
        fleet_vm_nodata(c->fleet, ns, mci, vm, is_nodata ? 1 : -1);
        update_health(c, ns, mci, vm);
    }
}

static const char *event_label(void *arg, const char *name)
{
    return ctl_event_label(arg, name);
}

/* What the chain acts on: the first step that is not a notification decides. */
static enum ctl_kind policy_kind(const struct policy *p, const struct ctl_event *e)
{
    for (size_t i = 0; i < p->nsteps; i++) {
        switch (p->steps[i].action) {
        case POLICY_SCALE_OUT:
        case POLICY_SCALE_IN:
            return CTL_KIND_SUBGROUP;
        case POLICY_K8S_CORDON:
        case POLICY_K8S_DRAIN:
            return CTL_KIND_NODE;
        case POLICY_K8S_SCALE:
            return CTL_KIND_WORKLOAD;
        case POLICY_NOTIFY:
        case POLICY_WEBHOOK:
            continue;
        default:
            return CTL_KIND_VM;
        }
    }
    return ctl_event_label(e, "vm") ? CTL_KIND_VM : CTL_KIND_SUBGROUP;
}

/* The subgroup of a group-level alarm: its label, or the MCI's only subgroup. */
static int find_subgroup(struct control *c, const char *ns, const char *mci,
                         const struct ctl_event *e, char *out, size_t len, char *why, size_t whylen)
{
    const char *sg = ctl_event_label(e, "subgroup");
    if (sg) {
        snprintf(out, len, "%s", sg);
        return 0;
    }
    struct fed_mci m = {0};
    if (executor_mci(c->exec, ns, mci, &m) < 0) {
        snprintf(why, whylen, "MCI %s/%s is not in the federation's model", ns, mci);
        return -1;
    }
    int rc = 0;
    if (m.nsubgroups == 1) {
        snprintf(out, len, "%s", m.subgroups[0].id);
    } else {
        snprintf(why, whylen,
                 "MCI %s/%s has %zu subgroups and the alarm names none (label "
                 "subgroup)",
                 ns, mci, m.nsubgroups);
        rc = -1;
    }
    fed_mci_free(&m);
    return rc;
}

/* A VM the federation is acting on, suspended on purpose or removed is never a target. */
static int vm_actionable(struct control *c, const char *ns, const char *mci, const char *vm,
                         char *why, size_t whylen)
{
    struct fed_mci m = {0};
    if (executor_mci(c->exec, ns, mci, &m) < 0) {
        snprintf(why, whylen, "MCI %s/%s is not in the federation's model", ns, mci);
        return 0;
    }
    const struct fed_vm *v = fed_mci_find_vm(&m, vm);
    int ok = 0;
    if (!v)
        snprintf(why, whylen, "VM %s/%s/%s is not in the federation's model (removed?)", ns, mci,
                 vm);
    else if (fed_vm_state_in_progress(v->state) || v->target_action != FED_ACT_NONE)
        snprintf(why, whylen, "the federation is acting on VM %s (%s)", vm,
                 fed_vm_state_name(v->state));
    else if (v->state == FED_VM_SUSPENDED || v->state == FED_VM_TERMINATED)
        snprintf(why, whylen, "VM %s is %s on purpose", vm, fed_vm_state_name(v->state));
    else
        ok = 1;
    fed_mci_free(&m);
    return ok;
}

static json_t *alarm_json(const struct ctl_action *a)
{
    char key[CTL_EVENT_KEY_MAX] = "";
    if (ctl_event_key(&a->alarm, key, sizeof(key)) < 0)
        key[0] = '\0';
    return json_pack("{s:s, s:s, s:s, s:s, s:s}", "engine", a->alarm.engine, "rule", a->alarm.rule,
                     "state", a->alarm.state, "severity", a->alarm.severity, "key", key);
}

static void record_decision(struct control *c, struct ctl_action *a, const char *verdict,
                            enum guard_block block, const char *why)
{
    json_t *rec = json_pack("{s:s, s:s}", "event", "decision", "verdict", verdict);
    json_t *ops = json_array();
    for (size_t i = 0; i < a->policy.nsteps; i++)
        json_array_append_new(ops, json_string(policy_action_name(a->policy.steps[i].action)));
    json_object_set_new(rec, "ops", ops);
    if (a->alarm.rule[0])
        json_object_set_new(rec, "alarm", alarm_json(a));
    if (a->wl_ns[0])
        json_object_set_new(rec, "workload_ns", json_string(a->wl_ns));
    if (block != GUARD_PASS || !strcmp(verdict, "blocked"))
        json_object_set_new(rec, "guard",
                            json_string(block != GUARD_PASS ? guard_block_name(block) : "target"));
    if (why && *why)
        json_object_set_new(rec, "why", json_string(why));
    ctl_record_action(c, a, rec);
}

/* An action that never began: audited as blocked (not a guard: the target itself). */
static void skip(struct control *c, const struct policy *p, enum ctl_kind kind, const char *ns,
                 const char *mci, const char *target, const struct ctl_event *e, const char *why)
{
    struct ctl_action *a = ctl_action_new(c, p, kind, ns, mci, target, e);
    if (!a)
        return;
    record_decision(c, a, "blocked", GUARD_PASS, why);
    dsf_count(&c->stats.verdicts[3], 1);
    a->phase = CTL_DONE;
    snprintf(a->outcome, sizeof(a->outcome), "blocked");
    log_info("policy %s: not acting on %s/%s/%s: %s", p->name, ns, mci, target, why);
}

struct settle {
    struct control *c;
    char id[32];
};

static void settled(evutil_socket_t fd, short what, void *arg)
{
    struct settle *s = arg;
    (void)fd;
    (void)what;
    struct ctl_action *a = ctl_action_find(s->c, s->id);
    if (a && a->phase == CTL_WAITING && !a->committed)
        ctl_decide_commit(s->c, a, 0);
    free(s);
}

static void settle_then_commit(struct control *c, struct ctl_action *a, int64_t ms)
{
    struct settle *s = malloc(sizeof(*s));
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000 * 1000)};
    if (s) {
        s->c = c;
        snprintf(s->id, sizeof(s->id), "%s", a->id);
    }
    if (!s || event_base_once(c->base, -1, EV_TIMEOUT, settled, s, &tv) < 0) {
        free(s);
        ctl_decide_commit(c, a, 0);
    }
}

/* manual: commit at once (an operator asked); NULL when the target is refused (why says
 * why, and it is audited). */
static struct ctl_action *decide_one(struct control *c, const struct policy *p,
                                     const struct ctl_event *e, int manual, char *why,
                                     size_t whylen)
{
    const char *ns = ctl_event_label(e, "ns"), *mci = ctl_event_label(e, "mci");
    enum ctl_kind kind = policy_kind(p, e);
    char target[128] = "";
    why[0] = '\0';
    const char *t = NULL;
    switch (kind) {
    case CTL_KIND_VM:
        t = ctl_event_label(e, "vm");
        if (!t || !ns || !mci)
            snprintf(why, whylen, "the alarm has no ns, mci and vm labels");
        else
            (void)vm_actionable(c, ns, mci, t, why, whylen); /* says why not in why */
        break;
    case CTL_KIND_SUBGROUP:
        if (!ns || !mci)
            snprintf(why, whylen, "the alarm has no ns and mci labels");
        else if (find_subgroup(c, ns, mci, e, target, sizeof(target), why, whylen) == 0)
            t = target;
        break;
    case CTL_KIND_NODE:
        t = ctl_event_label(e, "node");
        if (!t)
            snprintf(why, whylen, "the alarm has no node label");
        break;
    case CTL_KIND_WORKLOAD:
        t = ctl_event_label(e, "deployment");
        if (!t || !ctl_event_label(e, "namespace"))
            snprintf(why, whylen, "the alarm has no namespace and deployment labels");
        break;
    }
    if (!ns)
        ns = "";
    if (!mci)
        mci = "";
    if (why[0]) {
        skip(c, p, kind, ns, mci, t ? t : "", e, why);
        return NULL;
    }
    struct ctl_action *a = ctl_action_new(c, p, kind, ns, mci, t, e);
    if (!a) {
        snprintf(why, whylen, "out of memory");
        return NULL;
    }
    if (kind == CTL_KIND_WORKLOAD)
        snprintf(a->wl_ns, sizeof(a->wl_ns), "%s", ctl_event_label(e, "namespace"));
    if (manual)
        ctl_decide_commit(c, a, 0);
    else
        settle_then_commit(
            c, a, !strcmp(e->state, "nodata") ? c->cfg.settle_nodata_ms : c->cfg.settle_ms);
    return a;
}

void ctl_decide(struct control *c, const struct ctl_event *e, const char *source)
{
    dsf_count(&c->stats.events[source_index(source)], 1);
    observe(c, e);
    ctl_actions_tick(c);
    size_t matched = 0;
    for (size_t i = 0; i < c->policies.n; i++)
        matched += policy_matches(&c->policies.policies[i], e->rule, e->state, e->severity,
                                  event_label, (void *)e) != 0;
    if (!matched) {
        dsf_count(&c->stats.unmatched, 1);
        return;
    }
    char key[CTL_EVENT_KEY_MAX];
    if (ctl_event_key(e, key, sizeof(key)) < 0 || ctl_handled_mark(c, key)) {
        dsf_count(&c->stats.duplicates, 1);
        return;
    }
    for (size_t i = 0; i < c->policies.n; i++) {
        const struct policy *p = &c->policies.policies[i];
        char why[512];
        if (policy_matches(p, e->rule, e->state, e->severity, event_label, (void *)e))
            decide_one(c, p, e, 0, why, sizeof(why));
    }
}

void ctl_decide_commit(struct control *c, struct ctl_action *a, int approved)
{
    char why[512] = "";
    int64_t now = ctl_wall_ms();
    struct guard_target t = ctl_guard_target(a);
    enum guard_block b = guards_check(c->guards, &t, a->policy.cooldown_ms, now, why, sizeof(why));
    if (b != GUARD_PASS) {
        record_decision(c, a, "blocked", b, why);
        /* Paused or blind is not "decided": the occurrence is looked at again when actions
         * resume or the breaker closes (the engines' active alarms are read then). */
        char key[CTL_EVENT_KEY_MAX];
        if ((b == GUARD_PAUSED || b == GUARD_BREAKER) && a->alarm.rule[0] &&
            ctl_event_key(&a->alarm, key, sizeof(key)) >= 0)
            ctl_handled_unmark(c, key);
        dsf_count(&c->stats.verdicts[3], 1);
        dsf_count(&c->stats.blocked[b], 1);
        a->phase = CTL_DONE;
        snprintf(a->outcome, sizeof(a->outcome), "blocked");
        log_info("action %s (%s on %s/%s/%s) blocked: %s", a->id, a->policy.name, a->ns, a->mci,
                 a->target, why);
        return;
    }
    if (c->cfg.dry_run || a->policy.dry_run) {
        a->dry_run = 1;
        record_decision(c, a, "dry_run", GUARD_PASS, NULL);
        dsf_count(&c->stats.verdicts[1], 1);
        if (a->kind == CTL_KIND_NODE || a->kind == CTL_KIND_WORKLOAD) {
            /* Kubernetes plans server-side (dryRun=All): the evictions it would make are
             * checked by the API server and audited, nothing changes. */
            a->committed = 1;
            ctl_action_run(c, a);
        } else {
            ctl_action_finish(c, a, "dry_run", 0);
        }
        return;
    }
    if ((c->cfg.approval || a->policy.approval) && !approved) {
        a->phase = CTL_APPROVAL;
        record_decision(c, a, "approval", GUARD_PASS, NULL);
        dsf_count(&c->stats.verdicts[2], 1);
        return;
    }
    /* Its first step's begin record follows at once and syncs both: one disk sync between
     * the alarm and the federation call, not two. */
    if (c->audit)
        audit_defer_sync(c->audit);
    record_decision(c, a, "run", GUARD_PASS, NULL);
    dsf_count(&c->stats.verdicts[0], 1);
    guards_begin(c->guards, &t, now);
    a->committed = 1;
    ctl_action_run(c, a);
}

/* ---- manual actions ---- */

static const char *const target_keys[] = {"ns",   "mci",       "vm",         "subgroup",
                                          "node", "namespace", "deployment", NULL};

/* The body as a one-step policy, so that the step is checked by the policy parser (its
 * errors name the key) and the action runs like any other, behind the same guards. */
static int manual_policy(json_t *body, struct policy *p, char *err, size_t errlen)
{
    json_t *step = json_deep_copy(body);
    for (const char *const *k = target_keys; *k; k++)
        json_object_del(step, *k);
    json_t *vt = json_incref(json_object_get(step, "verify_timeout"));
    json_object_del(step, "verify_timeout");
    json_t *doc = json_pack("{s:s, s:{s:s}, s:[o], s:s, s:s}", "name", "manual", "match", "rule",
                            "manual", "steps", step, "cooldown", "0s", "hold", "0s");
    if (vt)
        json_object_set_new(doc, "verify_timeout", vt);
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    int rc = text ? policy_parse(text, strlen(text), "request body", p, err, errlen) : -1;
    free(text);
    return rc;
}

struct ctl_action *ctl_decide_manual(struct control *c, json_t *body, int *status, char *err,
                                     size_t errlen)
{
    struct policy p = {0};
    *status = 400;
    if (!json_is_string(json_object_get(body, "action"))) {
        snprintf(err, errlen,
                 "key 'action': expected one of reboot, suspend, resume, migrate, "
                 "scale_out, scale_in, k8s_cordon, k8s_drain, k8s_scale, notify, webhook");
        return NULL;
    }
    if (manual_policy(body, &p, err, errlen) < 0)
        return NULL;
    struct ctl_event e = {.nlabels = 0};
    snprintf(e.engine, sizeof(e.engine), "api");
    snprintf(e.rule, sizeof(e.rule), "manual");
    snprintf(e.state, sizeof(e.state), "firing");
    for (const char *const *k = target_keys; *k; k++) {
        const char *v = json_string_value(json_object_get(body, *k));
        if (v && strlen(v) < CTL_EVENT_VALUE_MAX) {
            snprintf(e.labels[e.nlabels].name, CTL_EVENT_NAME_MAX, "%s", *k);
            snprintf(e.labels[e.nlabels++].value, CTL_EVENT_VALUE_MAX, "%s", v);
        }
    }
    e.ngroup = e.nlabels;
    dsf_count(&c->stats.events[3], 1);
    struct ctl_action *a = decide_one(c, &p, &e, 1, err, errlen);
    policy_free(&p);
    if (a && a->phase == CTL_DONE && !strcmp(a->outcome, "blocked"))
        snprintf(err, errlen, "blocked by the guards: see GET /api/v1/actions/%s", a->id);
    *status = 409;
    return a;
}
