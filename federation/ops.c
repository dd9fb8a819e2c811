/* Composite operations built on the driver interface: migrate (with rollback), scale out and
 * scale in. Every wait is bounded and polls with backoff. */
#define DSF_MODULE "federation"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "federation/internal.h"

int fed_wait_running(struct fed *f, struct fed_vm *vm, int64_t timeout_ms, struct fed_error *err)
{
    if (!f->drv->status)
        return vm->state == FED_VM_RUNNING ? 0 : fed_unsupported(f, "status", err);
    struct fed_backoff b;
    fed_backoff_init(&b, timeout_ms);
    for (;;) {
        struct fed_error e;
        if (f->drv->status(f->ctx, vm, &e) == 0) {
            if (vm->state == FED_VM_RUNNING)
                return 0;
            if (vm->state == FED_VM_FAILED || vm->state == FED_VM_TERMINATED)
                return fed_fail(err, FED_EBACKEND, "wait running", 0, "%s is %s%s%s", vm->id,
                                fed_vm_state_name(vm->state), vm->message[0] ? ": " : "",
                                vm->message);
        }
        if (!fed_backoff_wait(&b))
            return fed_fail(err, FED_ETIMEOUT, "wait running", 0, "%s is still %s after %lld ms",
                            vm->id, fed_vm_state_name(vm->state), (long long)timeout_ms);
    }
}

int fed_wait_online(struct fed *f, const struct fed_vm *vm, int64_t timeout_ms,
                    struct fed_error *err)
{
    if (!f->agent_online && !f->drv->agent_online) {
        log_warn("%s: no way to see its agent report (no agent_online check): not waiting", vm->id);
        return 0;
    }
    struct fed_backoff b;
    fed_backoff_init(&b, timeout_ms);
    b.initial_ms = 200;
    b.max_ms = 2000;
    struct fed_error last;
    fed_error_clear(&last);
    for (;;) {
        int on = f->agent_online ? f->agent_online(f->agent_online_arg, vm, &last)
                                 : f->drv->agent_online(f->ctx, vm, &last);
        if (on == 1)
            return 0;
        if (!fed_backoff_wait(&b)) {
            char msg[700] = "";
            if (on < 0)
                fed_error_format(&last, msg, sizeof(msg));
            return fed_fail(err, FED_ETIMEOUT, "wait agent online", 0,
                            "the agent of %s did not report online within %lld ms%s%s", vm->id,
                            (long long)timeout_ms, msg[0] ? ": " : "", msg);
        }
    }
}

/* ---- migrate --------------------------------------------------------------------------- */

/* "aws+ap-northeast-2+t2.small" with csp and region replaced; unchanged if not that form. */
static void respec(char *common_spec, size_t len, const char *csp, const char *region)
{
    const char *p1 = strchr(common_spec, '+');
    const char *p2 = p1 ? strchr(p1 + 1, '+') : NULL;
    if (!p2)
        return;
    char out[FED_LONG_MAX];
    snprintf(out, sizeof(out), "%s+%s+%s", csp, region, p2 + 1);
    snprintf(common_spec, len, "%s", out);
}

static int migrate_spec(struct fed_mci *m, const struct fed_vm *old,
                        const struct fed_migrate_options *o, struct fed_vm_spec *out,
                        struct fed_error *err)
{
    struct fed_subgroup *g = fed_mci_find_subgroup(m, old->subgroup);
    if (fed_vm_spec_copy(out, g ? &g->tmpl : &old->spec) < 0)
        return fed_fail(err, FED_EIO, "migrate", ENOMEM, "out of memory");
    out->size = 1;
    if (o->csp && o->csp[0])
        snprintf(out->csp, sizeof(out->csp), "%s", o->csp);
    snprintf(out->region, sizeof(out->region), "%s", o->region);
    if (o->common_spec && o->common_spec[0])
        snprintf(out->common_spec, sizeof(out->common_spec), "%s", o->common_spec);
    else
        respec(out->common_spec, sizeof(out->common_spec), out->csp, out->region);
    if (fed_vm_spec_validate(out, err) < 0) {
        fed_vm_spec_free(out);
        return -1;
    }
    return 0;
}

static void rollback(struct fed *f, const char *ns, const char *mci, const char *id)
{
    struct fed_error e;
    log_warn("migrate: rolling back the new VM %s/%s/%s", ns, mci, id);
    if (fed_vm_delete(f, ns, mci, id, &e) < 0) {
        char msg[700];
        log_error("migrate: rollback of %s failed: %s", id, fed_error_format(&e, msg, sizeof(msg)));
    }
}

static int prepare_new(struct fed *f, const char *ns, const char *mci, const char *vm,
                       const struct fed_migrate_options *o, struct fed_vm *nv,
                       struct fed_error *err)
{
    struct fed_mci m;
    if (fed_store_get(f->store, ns, mci, &m, err) < 0)
        return -1;
    struct fed_vm *old = fed_mci_find_vm(&m, vm);
    int rc = 0;
    if (!old)
        rc = fed_fail(err, FED_ENOTFOUND, "migrate", 0, "no VM '%s' in MCI %s/%s", vm, ns, mci);
    else if (old->state == FED_VM_TERMINATED || fed_vm_state_in_progress(old->state))
        rc = fed_fail(err, FED_ESTATE, "migrate", 0, "cannot migrate %s: it is %s", vm,
                      fed_vm_state_name(old->state));
    else if (o->new_id && fed_check_id("new vm id", o->new_id, err) < 0)
        rc = -1;
    else if (o->new_id && fed_mci_find_vm(&m, o->new_id))
        rc = fed_fail(err, FED_EINVAL, "migrate", 0, "MCI %s/%s already has a VM '%s'", ns, mci,
                      o->new_id);
    if (rc == 0)
        rc = migrate_spec(&m, old, o, &nv->spec, err);
    if (rc == 0) {
        snprintf(nv->ns, sizeof(nv->ns), "%s", ns);
        snprintf(nv->mci, sizeof(nv->mci), "%s", mci);
        snprintf(nv->subgroup, sizeof(nv->subgroup), "%s", old->subgroup);
        nv->autogen = old->autogen;
        if (o->new_id)
            snprintf(nv->id, sizeof(nv->id), "%s", o->new_id);
        else
            fed_next_vm_id(&m, old->subgroup[0] ? old->subgroup : old->id, nv->id, sizeof(nv->id));
    }
    fed_mci_free(&m);
    return rc;
}

int fed_migrate(struct fed *f, const char *ns, const char *mci, const char *vm,
                const struct fed_migrate_options *o, char *new_id, size_t new_id_len,
                struct fed_error *err)
{
    if (!o || !o->region || !o->region[0])
        return fed_fail(err, FED_EINVAL, "migrate", 0, "no target region given");
    if (fed_check_id("namespace", ns, err) < 0 || fed_check_id("mci", mci, err) < 0 ||
        fed_check_id("vm", vm, err) < 0)
        return -1;
    struct fed_vm nv;
    memset(&nv, 0, sizeof(nv));
    if (prepare_new(f, ns, mci, vm, o, &nv, err) < 0)
        return -1;
    log_info("migrate %s/%s/%s to %s/%s as %s", ns, mci, vm, nv.spec.csp, nv.spec.region, nv.id);
    char created[FED_NAME_MAX];
    snprintf(created, sizeof(created), "%s", nv.id);
    int rc = fed_create_vms(f, ns, mci, &nv, 1, err);
    if (rc == 0)
        rc = fed_wait_running(f, &nv, f->wait_timeout_ms, err);
    if (rc == 0)
        rc = fed_wait_online(f, &nv, f->online_timeout_ms, err);
    if (rc < 0) {
        /* After a failed create the record keeps its requested id. */
        rollback(f, ns, mci, nv.id[0] ? nv.id : created);
        fed_vm_free(&nv);
        return -1;
    }
    if (new_id)
        snprintf(new_id, new_id_len, "%s", nv.id);
    struct fed_error e;
    if (fed_vm_delete(f, ns, mci, vm, &e) < 0) {
        /* The replacement is healthy and serving: removing it now would leave less than
         * before. Report both facts and let the caller decide. */
        char msg[700];
        rc = fed_fail(err, e.kind, e.call, e.status,
                      "new VM %s is running, but the old VM %s could not be removed: %s", nv.id, vm,
                      fed_error_format(&e, msg, sizeof(msg)));
    }
    fed_vm_free(&nv);
    return rc;
}

/* ---- scale out --------------------------------------------------------------------------- */

struct record {
    const char *driver;
    struct fed_vm *vms;
    size_t n;
};

static int record_fn(struct fed_mci *m, void *arg, struct fed_error *err)
{
    struct record *r = arg;
    for (size_t i = 0; i < r->n; i++) {
        struct fed_vm *v = &r->vms[i];
        snprintf(v->ns, sizeof(v->ns), "%s", m->ns);
        snprintf(v->mci, sizeof(v->mci), "%s", m->id);
        v->created_ms = v->updated_ms = fed_wall_ms();
        if (fed_mci_find_vm(m, v->id)) {
            log_warn("scale out: %s returned %s, which the model has already", r->driver, v->id);
            continue;
        }
        if (!fed_mci_add_vm(m, v))
            return fed_fail(err, FED_EIO, "scale out", ENOMEM, "out of memory");
    }
    return 0;
}

/* A VM the driver returned without reaching Running: the state status() sees, Failed when
 * that is still in progress (nothing is waiting for it any more). */
static void settle_new(struct fed *f, struct fed_vm *vm, const struct fed_error *cause)
{
    struct fed_error e;
    if (f->drv->status && fed_vm_state_in_progress(vm->state))
        f->drv->status(f->ctx, vm, &e);
    if (fed_vm_state_in_progress(vm->state) || vm->state == FED_VM_UNDEFINED)
        vm->state = FED_VM_FAILED;
    vm->target_action = FED_ACT_NONE;
    vm->target_status = FED_VM_UNDEFINED;
    char msg[700];
    if (!vm->message[0] && cause->kind != FED_OK)
        snprintf(vm->message, sizeof(vm->message), "%s", fed_error_format(cause, msg, sizeof(msg)));
}

/*
 * The driver's own scale out. Whatever it created is recorded, also when it failed later
 * on: a VM that exists but is not in the model would never be scaled in or terminated.
 * Like the generic path, the new VMs that did not come up are then removed.
 */
static int native_scale_out(struct fed *f, const char *ns, const char *mci,
                            const struct fed_subgroup *g, int n, struct fed_error *err)
{
    struct fed_vm *vms = NULL;
    size_t nvms = 0;
    struct fed_error derr;
    fed_error_clear(&derr);
    int rc = f->drv->scale_out(f->ctx, ns, mci, g->id, n, &g->tmpl, &vms, &nvms, &derr);
    if (rc == 0 && nvms != (size_t)n)
        rc = fed_fail(&derr, FED_EBACKEND, "scale out", 0, "asked %s for %d VMs, got %zu",
                      f->drv->name, n, nvms);
    for (size_t i = 0; i < nvms; i++) {
        vms[i].autogen = 1;
        snprintf(vms[i].subgroup, sizeof(vms[i].subgroup), "%s", g->id);
        if (vms[i].state == FED_VM_RUNNING)
            continue;
        if (rc == 0) /* a driver claiming success without reaching Running is not believed */
            rc = fed_fail(&derr, FED_EBACKEND, "scale out", 0, "%s came up %s", vms[i].id,
                          fed_vm_state_name(vms[i].state));
        settle_new(f, &vms[i], &derr);
    }
    struct record r = {f->drv->name, vms, nvms};
    struct fed_error serr;
    if (nvms && fed_store_update(f->store, ns, mci, 0, record_fn, &r, &serr) < 0 && rc == 0) {
        derr = serr;
        rc = -1;
    }
    size_t running = 0;
    for (size_t i = 0; i < nvms; i++) {
        if (vms[i].state == FED_VM_RUNNING)
            running++;
        else if (rc < 0)
            fed_vm_delete(f, ns, mci, vms[i].id, NULL);
        fed_vm_free(&vms[i]);
    }
    free(vms);
    if (rc < 0) {
        if (err) {
            *err = derr;
            size_t l = strlen(err->message);
            if (nvms)
                snprintf(err->message + l, sizeof(err->message) - l,
                         " (%zu of %d new VMs are Running and recorded)", running, n);
        }
        return -1;
    }
    return n;
}

static int make_vms(const struct fed_mci *m, const struct fed_subgroup *g, int n,
                    struct fed_vm *vms, struct fed_error *err)
{
    /* Numbering continues after the highest index in use: <sg>-<max+1>, <sg>-<max+2>, ... */
    char first[FED_NAME_MAX];
    fed_next_vm_id(m, g->id, first, sizeof(first));
    long next = strtol(first + strlen(g->id) + 1, NULL, 10);
    for (int i = 0; i < n; i++) {
        struct fed_vm *v = &vms[i];
        snprintf(v->ns, sizeof(v->ns), "%s", m->ns);
        snprintf(v->mci, sizeof(v->mci), "%s", m->id);
        snprintf(v->subgroup, sizeof(v->subgroup), "%s", g->id);
        v->autogen = 1;
        if (snprintf(v->id, sizeof(v->id), "%s-%ld", g->id, next + i) >= (int)sizeof(v->id))
            return fed_fail(err, FED_EINVAL, "scale out", 0, "VM id %s-%ld is too long", g->id,
                            next + i);
        if (fed_vm_spec_copy(&v->spec, &g->tmpl) < 0)
            return fed_fail(err, FED_EIO, "scale out", ENOMEM, "out of memory");
        v->spec.size = 1;
    }
    return 0;
}

int fed_scale_out(struct fed *f, const char *ns, const char *mci, const char *subgroup, int n,
                  struct fed_error *err)
{
    if (n < 1 || n > 1000)
        return fed_fail(err, FED_EINVAL, "scale out", 0, "count %d is outside 1..1000", n);
    struct fed_mci m;
    if (fed_store_get(f->store, ns, mci, &m, err) < 0)
        return -1;
    struct fed_subgroup *g = fed_mci_find_subgroup(&m, subgroup);
    int rc;
    if (!g) {
        rc = fed_fail(err, FED_ENOTFOUND, "scale out", 0, "no subgroup '%s' in MCI %s/%s",
                      subgroup ? subgroup : "", ns, mci);
    } else if (f->drv->scale_out) {
        log_info("scale out %s/%s/%s by %d (native)", ns, mci, subgroup, n);
        rc = native_scale_out(f, ns, mci, g, n, err);
    } else {
        log_info("scale out %s/%s/%s by %d", ns, mci, subgroup, n);
        struct fed_vm *vms = calloc((size_t)n, sizeof(*vms));
        rc = vms ? make_vms(&m, g, n, vms, err)
                 : fed_fail(err, FED_EIO, "scale out", ENOMEM, "out of memory");
        if (rc == 0)
            rc = fed_create_vms(f, ns, mci, vms, (size_t)n, err);
        for (int i = 0; vms && i < n; i++) {
            /* What did not come up is removed, so a failed scale out leaves nothing behind. */
            if (rc < 0 && vms[i].id[0] && vms[i].state != FED_VM_RUNNING)
                fed_vm_delete(f, ns, mci, vms[i].id, NULL);
            fed_vm_free(&vms[i]);
        }
        free(vms);
        if (rc == 0)
            rc = n;
    }
    fed_mci_free(&m);
    return rc;
}

/* ---- scale in ---------------------------------------------------------------------------- */

/* Autogen first, then newest first; the id breaks ties so the order is stable. */
static int victim_cmp(const void *a, const void *b)
{
    const struct fed_vm *x = *(const struct fed_vm *const *)a;
    const struct fed_vm *y = *(const struct fed_vm *const *)b;
    if (x->autogen != y->autogen)
        return y->autogen - x->autogen;
    if (x->created_ms != y->created_ms)
        return x->created_ms < y->created_ms ? 1 : -1;
    return -strcmp(x->id, y->id);
}

int fed_scale_in(struct fed *f, const char *ns, const char *mci, const char *subgroup, int n,
                 struct fed_error *err)
{
    if (n < 1 || n > 1000)
        return fed_fail(err, FED_EINVAL, "scale in", 0, "count %d is outside 1..1000", n);
    struct fed_mci m;
    if (fed_store_get(f->store, ns, mci, &m, err) < 0)
        return -1;
    struct fed_vm **cand = calloc(m.nvms ? m.nvms : 1, sizeof(*cand));
    size_t nc = 0, live = 0;
    int rc = cand ? 0 : fed_fail(err, FED_EIO, "scale in", ENOMEM, "out of memory");
    if (rc == 0 && !fed_mci_find_subgroup(&m, subgroup))
        rc = fed_fail(err, FED_ENOTFOUND, "scale in", 0, "no subgroup '%s' in MCI %s/%s",
                      subgroup ? subgroup : "", ns, mci);
    for (size_t i = 0; rc == 0 && i < m.nvms; i++) {
        struct fed_vm *v = &m.vms[i];
        if (strcmp(v->subgroup, subgroup) || v->state == FED_VM_TERMINATED)
            continue;
        live++;
        if (!fed_vm_state_in_progress(v->state))
            cand[nc++] = v;
    }
    if (rc == 0 && (size_t)n >= live)
        rc = fed_fail(err, FED_EINVAL, "scale in", 0,
                      "subgroup %s has %zu live VMs: scale in by at most %zu (a subgroup keeps "
                      "one VM)",
                      subgroup, live, live ? live - 1 : 0);
    if (rc == 0 && (size_t)n > nc)
        rc = fed_fail(err, FED_ESTATE, "scale in", 0,
                      "only %zu VMs of subgroup %s can be removed now (others are busy)", nc,
                      subgroup);
    int removed = 0;
    if (rc == 0) {
        qsort(cand, nc, sizeof(*cand), victim_cmp);
        log_info("scale in %s/%s/%s by %d", ns, mci, subgroup, n);
        for (int i = 0; i < n && rc == 0; i++) {
            if (fed_vm_delete(f, ns, mci, cand[i]->id, err) < 0)
                rc = -1;
            else
                removed++;
        }
    }
    free(cand);
    fed_mci_free(&m);
    return rc < 0 ? -1 : removed;
}

int fed_scale_get(struct fed *f, enum fed_scale_kind kind, const char *ns, const char *name,
                  int *replicas, struct fed_error *err)
{
    *replicas = -1;
    if (!f->drv->scale_get)
        return fed_unsupported(f, "scale_get", err);
    if (!ns || !ns[0] || !name || !name[0])
        return fed_fail(err, FED_EINVAL, "scale_get", 0, "namespace and name are required");
    return f->drv->scale_get(f->ctx, kind, ns, name, replicas, err);
}
