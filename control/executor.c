/*
 * Federation calls block (a Tumblebug migrate can take 30 minutes): each step runs on a
 * thread of its own, with one federation handle per driver shared by all of them (the
 * library is thread-safe and keeps two callers off one VM), and hands its result back to the
 * loop through a queue. One long action never stalls another target.
 */
#define DSF_MODULE "control"
#include "common/log.h"
#include "common/bus.h"
#include "common/loop.h"
#include "common/topic.h"
#include "control/control_impl.h"
#include "federation/driver.h"
#include "federation/federation.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DRIVERS 8

struct job {
    struct executor *x;
    struct job *next;
    pthread_t thread;
    struct fed *fed;
    int reconcile;
    /* what the step needs, copied: the action stays on the loop */
    char id[32], ns[64], mci[64], target[128], wl_ns[64], new_id[64], region[64];
    enum policy_action op;
    int n, replicas, dry_run, size_before;
    int64_t drain_timeout_ms;
};

struct result {
    char id[32];
    int ok;
    char error[600];
    char detail[512];
};

/* A VM the federation removed: its retained status is cleared on the loop. */
struct removed {
    char ns[64], mci[64], vm[64];
};

struct executor {
    struct control *c;
    struct dsf_handoff *removed;
    struct fed_store *store;
    struct {
        char name[32];
        struct fed *fed;
    } drivers[MAX_DRIVERS];
    size_t ndrivers;
    struct job *jobs;
    size_t running;
    struct dsf_handoff *results;
};

static int agent_online(void *arg, const struct fed_vm *vm, struct fed_error *err)
{
    (void)err;
    return fleet_online(arg, vm->ns, vm->mci, vm->id, NULL) == 1;
}

static void join(struct executor *x, const char *id)
{
    for (struct job **p = &x->jobs; *p; p = &(*p)->next) {
        if (!strcmp((*p)->id, id)) {
            struct job *j = *p;
            *p = j->next;
            pthread_join(j->thread, NULL);
            free(j);
            x->running--;
            return;
        }
    }
}

static void on_result(void *arg, void *item)
{
    struct executor *x = arg;
    struct result *r = item;
    join(x, r->id);
    struct ctl_action *a = ctl_action_find(x->c, r->id);
    if (a && a->phase == CTL_RUNNING)
        ctl_action_step_done(x->c, a, r->ok, r->error, r->detail);
}

/* Worker thread: the federation removed a VM (migrate, scale in). */
static void vm_removed(void *arg, const struct fed_vm *vm)
{
    struct executor *x = arg;
    struct removed r;
    snprintf(r.ns, sizeof(r.ns), "%s", vm->ns);
    snprintf(r.mci, sizeof(r.mci), "%s", vm->mci);
    snprintf(r.vm, sizeof(r.vm), "%s", vm->id);
    while (dsf_handoff_post(x->removed, &r) < 0)
        fed_sleep_ms(10);
}

/* Loop: an empty retained message clears the removed VM's status, so that its Last Will's
 * "offline" does not keep its alarms firing forever (the alarm engine forgets its series). */
static void clear_status(void *arg, void *item)
{
    struct executor *x = arg;
    struct removed *r = item;
    char topic[300];
    fleet_status(x->c->fleet, r->ns, r->mci, r->vm, 2, ctl_wall_ms());
    guards_vm_forget(x->c->guards, r->ns, r->mci, r->vm);
    dsf_topic_agent(topic, sizeof(topic), r->ns, r->mci, r->vm, "status");
    struct dsf_bus_message m = {.topic = topic, .payload = "", .len = 0};
    struct dsf_bus *bus = x->c->pub ? x->c->pub : x->c->bus;
    if (!bus || dsf_bus_publish(bus, &m, 1, 1, 0) < 0)
        log_warn("VM %s/%s/%s was removed; its retained status could not be cleared now: "
                 "mosquitto_pub -r -n -t %s",
                 r->ns, r->mci, r->vm, topic);
}

struct executor *executor_new(struct control *c, char *err, size_t errlen)
{
    struct executor *x = calloc(1, sizeof(*x));
    struct fed_error fe = {0};
    char path[4096];
    snprintf(path, sizeof(path), "%s/mci", c->cfg.fed_dir);
    if (!x) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    x->c = c;
    if (fed_mkdir_p(path, "mkdir", &fe) < 0 || !(x->store = fed_store_open(path, &fe))) {
        char msg[700];
        snprintf(err, errlen, "federation.dir %s: %s", c->cfg.fed_dir,
                 fed_error_format(&fe, msg, sizeof(msg)));
        free(x);
        return NULL;
    }
    x->results = dsf_handoff_new(c->base, sizeof(struct result), 256, on_result, x);
    x->removed = dsf_handoff_new(c->base, sizeof(struct removed), 256, clear_status, x);
    if (!x->results || !x->removed) {
        snprintf(err, errlen, "out of memory");
        executor_free(x);
        return NULL;
    }
    return x;
}

size_t executor_running(const struct executor *x)
{
    return x->running;
}

void executor_free(struct executor *x)
{
    if (!x)
        return;
    if (x->running) {
        /* A federation call can run for many minutes: the journal has it, and the next
         * start reconciles it. Its handle stays open for it. */
        log_warn("%zu federation calls still running at exit; the next start reconciles them",
                 x->running);
        return;
    }
    dsf_handoff_free(x->results, NULL);
    dsf_handoff_free(x->removed, NULL);
    for (size_t i = 0; i < x->ndrivers; i++)
        fed_close(x->drivers[i].fed);
    fed_store_close(x->store);
    free(x);
}

/* The handle of a driver, opened on first use with the controller's options for it. */
static struct fed *driver(struct executor *x, const char *name, char *err, size_t errlen)
{
    for (size_t i = 0; i < x->ndrivers; i++) {
        if (!strcmp(x->drivers[i].name, name))
            return x->drivers[i].fed;
    }
    if (x->ndrivers == MAX_DRIVERS) {
        snprintf(err, errlen, "too many drivers");
        return NULL;
    }
    struct control *c = x->c;
    struct fed_config fc = {
        .state_dir = c->cfg.fed_dir,
        .driver = name,
        .driver_options = fed_driver_options(c->sections, name),
        .agent_online = agent_online,
        .agent_online_arg = c->fleet,
        .vm_removed = vm_removed,
        .vm_removed_arg = x,
    };
    fed_options_apply(&c->cfg.fed, &fc);
    struct fed_error fe = {0};
    struct fed *f = fed_open(&fc, &fe);
    if (!f) {
        char msg[700];
        snprintf(err, errlen, "cannot open the %s driver: %s", name,
                 fed_error_format(&fe, msg, sizeof(msg)));
        return NULL;
    }
    snprintf(x->drivers[x->ndrivers].name, sizeof(x->drivers[0].name), "%s", name);
    x->drivers[x->ndrivers++].fed = f;
    return f;
}

int executor_mci(struct executor *x, const char *ns, const char *mci, struct fed_mci *out)
{
    return fed_store_get(x->store, ns, mci, out, NULL);
}

json_t *executor_mci_list(struct executor *x)
{
    json_t *list = json_array();
    char **nss = NULL, **mcis = NULL;
    size_t nns = 0, nmci = 0;
    if (fed_store_list(x->store, NULL, &nss, &nns, NULL) < 0)
        return list;
    for (size_t i = 0; i < nns; i++) {
        if (fed_store_list(x->store, nss[i], &mcis, &nmci, NULL) < 0)
            continue;
        for (size_t k = 0; k < nmci; k++)
            json_array_append_new(list, json_pack("{s:s, s:s}", "ns", nss[i], "mci", mcis[k]));
        fed_names_free(mcis, nmci);
    }
    fed_names_free(nss, nns);
    return list;
}

static int vm_index(const char *id, const char *subgroup)
{
    size_t n = strlen(subgroup);
    if (strncmp(id, subgroup, n) != 0 || id[n] != '-')
        return -1;
    char *end;
    long v = strtol(id + n + 1, &end, 10);
    return *end || v < 0 || v > 1000000 ? -1 : (int)v;
}

static int subgroup_size(const struct fed_mci *m, const char *subgroup, int *max_index)
{
    int n = 0;
    *max_index = 0;
    for (size_t i = 0; i < m->nvms; i++) {
        const struct fed_vm *v = &m->vms[i];
        int idx = vm_index(v->id, v->subgroup);
        if (!strcmp(v->subgroup, subgroup) && idx > *max_index)
            *max_index = idx;
        n += !strcmp(v->subgroup, subgroup) && v->state != FED_VM_TERMINATED;
    }
    return n;
}

/* Sizes for scale steps: how many to add or remove within min and max. */
static int scale_count(struct ctl_action *a, const struct policy_step *s, int size, char *err,
                       size_t errlen)
{
    int n = s->by > 0 ? s->by : 1;
    if (s->action == POLICY_SCALE_OUT && s->max >= 0) {
        if (size >= s->max) {
            snprintf(err, errlen, "subgroup %s has %d VMs, its max", a->target, size);
            return -1;
        }
        n = n < s->max - size ? n : s->max - size;
    }
    if (s->action == POLICY_SCALE_IN) {
        int min = s->min >= 1 ? s->min : 1;
        if (size <= min) {
            snprintf(err, errlen, "subgroup %s has %d VMs, its min", a->target, size);
            return -1;
        }
        n = n < size - min ? n : size - min;
    }
    return n;
}

/* The highest index among the names other running migrates of the MCI have taken for their
 * replacements, which the model does not show until their workers create them: two
 * migrates begun together must not both name theirs <subgroup>-<n>. */
static int reserved_index(struct control *c, const struct ctl_action *self, const char *subgroup,
                          int max_index)
{
    for (const struct ctl_action *a = c->action_list; a; a = a->next) {
        int idx = a->new_id[0] ? vm_index(a->new_id, subgroup) : -1;
        if (a != self && a->phase == CTL_RUNNING && !strcmp(a->ns, self->ns) &&
            !strcmp(a->mci, self->mci) && idx > max_index)
            max_index = idx;
    }
    return max_index;
}

/* What a VM or subgroup step needs from the model: the driver, the new VM's name, sizes. */
static int prepare_mci_step(struct executor *x, struct ctl_action *a, json_t *rec, char *err,
                            size_t errlen)
{
    const struct policy_step *s = &a->policy.steps[a->step];
    struct fed_mci m = {0};
    if (executor_mci(x, a->ns, a->mci, &m) < 0) {
        snprintf(err, errlen, "MCI %s/%s is not in the federation's model", a->ns, a->mci);
        return -1;
    }
    int rc = 0, max_index = 0;
    json_object_set_new(rec, "driver", json_string(m.driver));
    const char *subgroup = a->target;
    if (a->kind == CTL_KIND_VM) {
        const struct fed_vm *v = fed_mci_find_vm(&m, a->target);
        subgroup = v ? v->subgroup : "";
        if (!v) {
            snprintf(err, errlen, "VM %s is no longer in MCI %s/%s", a->target, a->ns, a->mci);
            rc = -1;
        }
    }
    int size = subgroup_size(&m, subgroup, &max_index);
    if (rc == 0 && s->action == POLICY_MIGRATE) {
        max_index = reserved_index(x->c, a, subgroup, max_index);
        snprintf(a->new_id, sizeof(a->new_id), "%s-%d", subgroup, max_index + 1);
        json_object_set_new(rec, "new_vm", json_string(a->new_id));
    } else if (rc == 0 && (s->action == POLICY_SCALE_OUT || s->action == POLICY_SCALE_IN)) {
        a->size_before = size;
        rc = (a->scale_n = scale_count(a, s, size, err, errlen)) < 0 ? -1 : 0;
        json_object_set_new(rec, "size_before", json_integer(size));
        json_object_set_new(rec, "count", json_integer(a->scale_n));
    }
    fed_mci_free(&m);
    return rc;
}

int executor_prepare(struct executor *x, struct ctl_action *a, json_t *rec, char *err,
                     size_t errlen)
{
    if (a->kind == CTL_KIND_NODE || a->kind == CTL_KIND_WORKLOAD) {
        json_object_set_new(rec, "driver", json_string("kubernetes"));
        return 0;
    }
    return prepare_mci_step(x, a, rec, err, errlen);
}

static int fail_with(struct result *r, const struct fed_error *fe)
{
    fed_error_format(fe, r->error, sizeof(r->error));
    return 0;
}

static int run_vm_step(struct job *j, struct result *r, struct fed_error *fe)
{
    enum fed_action act = j->op == POLICY_SUSPEND  ? FED_ACT_SUSPEND
                          : j->op == POLICY_RESUME ? FED_ACT_RESUME
                                                   : FED_ACT_REBOOT;
    if (j->op == POLICY_MIGRATE) {
        struct fed_migrate_options o = {.region = j->region, .new_id = j->new_id};
        char new_id[64] = "";
        if (fed_migrate(j->fed, j->ns, j->mci, j->target, &o, new_id, sizeof(new_id), fe) < 0)
            return fail_with(r, fe);
        snprintf(r->detail, sizeof(r->detail), "replaced by %s", new_id);
        return 1;
    }
    if (fed_vm_action(j->fed, j->ns, j->mci, j->target, act, fe) < 0)
        return fail_with(r, fe);
    return 1;
}

static int run_other_step(struct job *j, struct result *r, struct fed_error *fe)
{
    int old = -1, n;
    switch (j->op) {
    case POLICY_SCALE_OUT:
    case POLICY_SCALE_IN:
        n = j->op == POLICY_SCALE_OUT ? fed_scale_out(j->fed, j->ns, j->mci, j->target, j->n, fe)
                                      : fed_scale_in(j->fed, j->ns, j->mci, j->target, j->n, fe);
        if (n < 0)
            return fail_with(r, fe);
        snprintf(r->detail, sizeof(r->detail), "%s %d VMs (from %d)",
                 j->op == POLICY_SCALE_OUT ? "added" : "removed", n, j->size_before);
        return 1;
    case POLICY_K8S_CORDON:
        return fed_node_cordon(j->fed, j->target, 1, j->dry_run, fe) < 0 ? fail_with(r, fe) : 1;
    case POLICY_K8S_DRAIN: {
        char pods[400] = "";
        struct fed_drain_options o = {.timeout_ms = j->drain_timeout_ms,
                                      .grace_period_s = -1,
                                      .dry_run = j->dry_run,
                                      .evicted = pods,
                                      .evicted_len = sizeof(pods)};
        if (fed_node_drain(j->fed, j->target, &o, fe) < 0)
            return fail_with(r, fe);
        snprintf(r->detail, sizeof(r->detail), "%s: %s",
                 j->dry_run ? "dry run (dryRun=All), nothing evicted; would evict" : "evicted",
                 pods[0] ? pods : "no pod");
        return 1;
    }
    case POLICY_K8S_SCALE:
        if (fed_scale(j->fed, FED_SCALE_DEPLOYMENT, j->wl_ns, j->target, j->replicas, j->dry_run,
                      &old, fe) < 0)
            return fail_with(r, fe);
        snprintf(r->detail, sizeof(r->detail), "replicas %d -> %d%s", old, j->replicas,
                 j->dry_run ? " (dry run)" : "");
        return 1;
    default:
        return run_vm_step(j, r, fe);
    }
}

static int reconcile_step(struct job *j, struct result *r, struct fed_error *fe);

static void *worker(void *arg)
{
    struct job *j = arg;
    struct result r = {0};
    struct fed_error fe = {0};
    snprintf(r.id, sizeof(r.id), "%s", j->id);
    r.ok = j->reconcile ? reconcile_step(j, &r, &fe) : run_other_step(j, &r, &fe);
    while (dsf_handoff_post(j->x->results, &r) < 0)
        fed_sleep_ms(10); /* the loop drains the queue: a result is never dropped */
    return NULL;
}

static int spawn(struct executor *x, struct ctl_action *a, int reconcile, char *err, size_t errlen)
{
    const struct policy_step *s = &a->policy.steps[a->step];
    const char *drv =
        a->kind == CTL_KIND_NODE || a->kind == CTL_KIND_WORKLOAD ? "kubernetes" : NULL;
    struct fed_mci m = {0};
    if (!drv && executor_mci(x, a->ns, a->mci, &m) == 0)
        drv = m.driver;
    struct fed *f = drv ? driver(x, drv, err, errlen) : NULL;
    if (!drv)
        snprintf(err, errlen, "MCI %s/%s is not in the federation's model", a->ns, a->mci);
    fed_mci_free(&m);
    struct job *j = f ? calloc(1, sizeof(*j)) : NULL;
    if (!j)
        return -1;
    *j = (struct job){.x = x,
                      .fed = f,
                      .reconcile = reconcile,
                      .op = s->action,
                      .n = a->scale_n,
                      .replicas = s->replicas,
                      .dry_run = a->dry_run,
                      .size_before = a->size_before,
                      .drain_timeout_ms = a->policy.verify_timeout_ms};
    snprintf(j->id, sizeof(j->id), "%s", a->id);
    snprintf(j->ns, sizeof(j->ns), "%s", a->ns);
    snprintf(j->mci, sizeof(j->mci), "%s", a->mci);
    snprintf(j->target, sizeof(j->target), "%s", a->target);
    snprintf(j->wl_ns, sizeof(j->wl_ns), "%s", a->wl_ns);
    snprintf(j->new_id, sizeof(j->new_id), "%s", a->new_id);
    snprintf(j->region, sizeof(j->region), "%s", s->region ? s->region : "");
    if (pthread_create(&j->thread, NULL, worker, j) != 0) {
        snprintf(err, errlen, "cannot start a worker thread");
        free(j);
        return -1;
    }
    j->next = x->jobs;
    x->jobs = j;
    x->running++;
    return 0;
}

int executor_start(struct executor *x, struct ctl_action *a, char *err, size_t errlen)
{
    return spawn(x, a, 0, err, errlen);
}

int executor_reconcile(struct executor *x, struct ctl_action *a, char *err, size_t errlen)
{
    return spawn(x, a, 1, err, errlen);
}

/* ---- after a crash: finish or roll back what was begun, never run it again ---- */

static int reconcile_migrate(struct job *j, struct fed_mci *m, struct result *r,
                             struct fed_error *fe)
{
    const struct fed_vm *nv = j->new_id[0] ? fed_mci_find_vm(m, j->new_id) : NULL;
    const struct fed_vm *old = fed_mci_find_vm(m, j->target);
    if (nv && nv->state == FED_VM_RUNNING) {
        if (old && fed_vm_delete(j->fed, j->ns, j->mci, j->target, fe) < 0)
            return fail_with(r, fe);
        snprintf(r->detail, sizeof(r->detail), "finished after a restart: replaced by %s%s",
                 j->new_id, old ? " (old VM removed now)" : "");
        return 1;
    }
    if (nv && fed_vm_delete(j->fed, j->ns, j->mci, j->new_id, fe) < 0)
        return fail_with(r, fe);
    snprintf(r->error, sizeof(r->error), "%s after a restart: the replacement %s was %s",
             nv ? "rolled back" : "not begun", j->new_id,
             nv ? fed_vm_state_name(nv->state) : "never created");
    return 0;
}

/* The VMs a step cut off by a crash acted on still show its action in progress (a Creating
 * replacement, a Rebooting target), and the federation leaves such a VM alone for its
 * wait_timeout as someone's action under way. That someone was this controller before the
 * crash: the claim is dropped so that the refresh reads the VMs from the driver. */
static int release_fn(struct fed_mci *m, void *arg, struct fed_error *err)
{
    const struct job *j = arg;
    const char *const ids[] = {j->target, j->new_id};
    int changed = 0;
    (void)err;
    for (size_t i = 0; i < 2; i++) {
        struct fed_vm *v = ids[i][0] ? fed_mci_find_vm(m, ids[i]) : NULL;
        if (v && fed_vm_state_in_progress(v->state) && v->target_action != FED_ACT_NONE) {
            log_warn("%s/%s/%s was left %s by the step cut off: read from the driver now", m->ns,
                     m->id, v->id, fed_vm_state_name(v->state));
            v->target_action = FED_ACT_NONE;
            v->target_status = FED_VM_UNDEFINED;
            changed = 1;
        }
    }
    return changed ? 0 : 1;
}

static int reconcile_step(struct job *j, struct result *r, struct fed_error *fe)
{
    struct fed_mci m = {0};
    if (j->op <= POLICY_MIGRATE &&
        fed_store_update(fed_store_of(j->fed), j->ns, j->mci, 0, release_fn, j, fe) < 0)
        return fail_with(r, fe);
    int refreshed = fed_mci_refresh(j->fed, j->ns, j->mci, &m, fe);
    if (refreshed < 0 && !m.nvms) {
        fed_mci_free(&m);
        return fail_with(r, fe);
    }
    int ok = 0, max_index;
    const struct fed_vm *v = fed_mci_find_vm(&m, j->target);
    switch (j->op) {
    case POLICY_MIGRATE:
        ok = reconcile_migrate(j, &m, r, fe);
        break;
    case POLICY_SCALE_OUT:
    case POLICY_SCALE_IN: {
        int size = subgroup_size(&m, j->target, &max_index);
        ok = j->op == POLICY_SCALE_OUT ? size >= j->size_before + j->n
                                       : size <= j->size_before - j->n;
        snprintf(ok ? r->detail : r->error, sizeof(r->error), "after a restart: %d VMs (from %d)",
                 size, j->size_before);
        break;
    }
    case POLICY_SUSPEND:
    case POLICY_RESUME:
    case POLICY_REBOOT:
        ok = v && v->state == (j->op == POLICY_SUSPEND ? FED_VM_SUSPENDED : FED_VM_RUNNING);
        snprintf(ok ? r->detail : r->error, sizeof(r->error), "after a restart: VM %s is %s",
                 j->target, v ? fed_vm_state_name(v->state) : "gone");
        break;
    default:
        snprintf(r->error, sizeof(r->error), "interrupted by a restart; not repeated");
        break;
    }
    fed_mci_free(&m);
    return ok;
}
