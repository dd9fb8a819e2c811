/*
 * The federation handle: a store and one driver instance. Single-VM actions follow one
 * pattern: check the transition and persist the in-progress state under the store's lock,
 * call the driver without the lock, then persist what the driver observed.
 */
#define DSF_MODULE "federation"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/log.h"
#include "federation/internal.h"

#define DEFAULT_WAIT_MS 120000
#define DEFAULT_ONLINE_MS 60000

int fed_unsupported(const struct fed *f, const char *what, struct fed_error *err)
{
    return fed_fail(err, FED_EUNSUPPORTED, what, 0, "driver %s does not support %s", f->drv->name,
                    what);
}

/* ---- open and close ------------------------------------------------------------------ */

/* Fills the driver's options from its key table: defaults, then JSON, then key=value. */
static int own_options(struct fed *f, const struct fed_config *c, struct fed_error *err)
{
    const struct fed_driver *d = f->drv;
    if (!d->keys)
        return 0;
    if (!(f->own_options = calloc(1, d->options_size ? d->options_size : 1)))
        return fed_fail(err, FED_EIO, "open driver", ENOMEM, "out of memory");
    f->own_secs[0] = (struct dsf_cfg_section){"", d->keys, f->own_options, NULL};
    char msg[DSF_CFG_ERRLEN] = "";
    char origin[64];
    snprintf(origin, sizeof(origin), "%s driver options", d->name);
    if (dsf_cfg_defaults(f->own_secs, msg, sizeof(msg)) < 0 ||
        (c->driver_json && dsf_cfg_load_json(f->own_secs, c->driver_json, strlen(c->driver_json),
                                             origin, msg, sizeof(msg)) < 0))
        return fed_fail(err, FED_EINVAL, "driver options", 0, "%s", msg);
    for (const char *const *s = c->driver_set; s && *s; s++) {
        if (dsf_cfg_set(f->own_secs, *s, origin, msg, sizeof(msg)) < 0)
            return fed_fail(err, FED_EINVAL, "driver options", 0, "%s", msg);
    }
    return 0;
}

struct fed *fed_open_driver(const struct fed_driver *drv, const struct fed_config *c,
                            struct fed_error *err)
{
    if (!drv || !c || !c->state_dir || !c->state_dir[0]) {
        fed_fail(err, FED_EINVAL, "open", 0,
                 !drv ? "no driver given" : "no state directory given (state.dir)");
        return NULL;
    }
    struct fed *f = calloc(1, sizeof(*f));
    if (!f) {
        fed_fail(err, FED_EIO, "open", ENOMEM, "out of memory");
        return NULL;
    }
    f->drv = drv;
    f->wait_timeout_ms = c->wait_timeout_ms > 0 ? c->wait_timeout_ms : DEFAULT_WAIT_MS;
    f->online_timeout_ms = c->online_timeout_ms > 0 ? c->online_timeout_ms : DEFAULT_ONLINE_MS;
    f->agent_online = c->agent_online;
    f->agent_online_arg = c->agent_online_arg;
    f->vm_removed = c->vm_removed;
    f->vm_removed_arg = c->vm_removed_arg;
    char mci_dir[4096], drv_dir[4096];
    snprintf(mci_dir, sizeof(mci_dir), "%s/mci", c->state_dir);
    snprintf(drv_dir, sizeof(drv_dir), "%s/%s", c->state_dir, drv->name);
    if (fed_mkdir_p(drv_dir, "mkdir", err) < 0 || !(f->store = fed_store_open(mci_dir, err)))
        goto fail;
    const void *opts = c->driver_options;
    if (!opts) {
        if (own_options(f, c, err) < 0)
            goto fail;
        opts = f->own_options;
    }
    if (!drv->open) {
        fed_unsupported(f, "open", err);
        goto fail;
    }
    if (!(f->bus = fed_bus_open(c->bus_password_file, c->bus_broker_pid_file, err)) ||
        !(f->ctx = drv->open(opts, drv_dir, f->bus, err)))
        goto fail;
    return f;
fail:
    fed_close(f);
    return NULL;
}

void fed_close(struct fed *f)
{
    if (!f)
        return;
    if (f->ctx && f->drv->close)
        f->drv->close(f->ctx);
    fed_bus_close(f->bus);
    if (f->own_options) {
        dsf_cfg_free(f->own_secs);
        free(f->own_options);
    }
    fed_store_close(f->store);
    free(f);
}

const struct fed_driver *fed_driver_of(const struct fed *f)
{
    return f->drv;
}

struct fed_store *fed_store_of(struct fed *f)
{
    return f->store;
}

/* ---- single-VM actions ----------------------------------------------------------------- */

typedef int (*vm_call)(void *ctx, struct fed_vm *vm, struct fed_error *err);

static vm_call driver_call(const struct fed_driver *d, enum fed_action a)
{
    switch (a) {
    case FED_ACT_SUSPEND:
        return d->suspend;
    case FED_ACT_RESUME:
        return d->resume;
    case FED_ACT_REBOOT:
        return d->reboot;
    case FED_ACT_TERMINATE:
        return d->terminate;
    case FED_ACT_CREATE:
        return d->create_vm;
    default:
        return NULL;
    }
}

static int no_vm(const struct fed_mci *m, const char *vm, struct fed_error *err)
{
    return fed_fail(err, FED_ENOTFOUND, "find vm", 0, "no VM '%s' in MCI %s/%s", vm, m->ns, m->id);
}

struct begin {
    const char *vm;
    enum fed_action action;
    struct fed_vm copy; /* out: the VM as the driver gets it */
};

static int begin_fn(struct fed_mci *m, void *arg, struct fed_error *err)
{
    struct begin *b = arg;
    struct fed_vm *v = fed_mci_find_vm(m, b->vm);
    if (!v)
        return no_vm(m, b->vm, err);
    if (fed_check_transition(v, b->action, err) < 0)
        return -1;
    v->state = fed_action_transient(b->action);
    v->target_action = b->action;
    v->target_status = fed_action_target(b->action);
    v->message[0] = 0;
    v->updated_ms = fed_wall_ms();
    if (fed_vm_copy(&b->copy, v) < 0)
        return fed_fail(err, FED_EIO, "begin", ENOMEM, "out of memory");
    return 0;
}

struct finish {
    const char *id; /* the id the record was stored under */
    const struct fed_vm *result;
    int remove;
    struct fed_vm removed; /* out, with remove: the record taken out of the model */
    int was_removed;
};

/* Copies what a driver may change; keeps the model's own fields. */
static void apply_result(struct fed_vm *v, const struct fed_vm *r)
{
    snprintf(v->id, sizeof(v->id), "%s", r->id);
    v->state = r->state;
    v->target_action = FED_ACT_NONE;
    v->target_status = FED_VM_UNDEFINED;
    memcpy(v->address, r->address, sizeof(v->address));
    memcpy(v->native_id, r->native_id, sizeof(v->native_id));
    memcpy(v->message, r->message, sizeof(v->message));
    memcpy(v->driver_data, r->driver_data, sizeof(v->driver_data));
    v->updated_ms = fed_wall_ms();
}

static int finish_fn(struct fed_mci *m, void *arg, struct fed_error *err)
{
    struct finish *fi = arg;
    struct fed_vm *v = fed_mci_find_vm(m, fi->id);
    if (!v)
        return 1; /* removed meanwhile (fed_mci_delete): nothing to record */
    if (fi->remove) {
        /* Short of memory the copy lacks the spec, not the ids, which are what the hook needs. */
        fed_vm_copy(&fi->removed, v);
        fi->was_removed = 1;
        fed_mci_remove_vm(m, fi->id);
        return 0;
    }
    apply_result(v, fi->result);
    return 0;
}

/*
 * After a failed driver call the VM may be anywhere: ask the driver what it sees rather than
 * guess. Undefined (Tumblebug's word for "cannot tell") when even that fails.
 */
static void settle_after_failure(struct fed *f, struct fed_vm *vm, const struct fed_error *cause)
{
    if (fed_vm_state_in_progress(vm->state)) {
        struct fed_error e2;
        if (!f->drv->status || f->drv->status(f->ctx, vm, &e2) < 0 ||
            fed_vm_state_in_progress(vm->state))
            vm->state = FED_VM_UNDEFINED;
    }
    char msg[700];
    snprintf(vm->message, sizeof(vm->message), "%s", fed_error_format(cause, msg, sizeof(msg)));
}

int fed_vm_action(struct fed *f, const char *ns, const char *mci, const char *vm,
                  enum fed_action action, struct fed_error *err)
{
    if (action == FED_ACT_CREATE || action <= FED_ACT_NONE || action >= FED_ACT_COUNT)
        return fed_fail(err, FED_EINVAL, "vm action", 0,
                        "action must be suspend, resume, reboot or terminate");
    vm_call call = driver_call(f->drv, action);
    char what[32];
    snprintf(what, sizeof(what), "%s", fed_action_name(action));
    what[0] = (char)(what[0] - 'A' + 'a');
    if (!call)
        return fed_unsupported(f, what, err);
    if (fed_check_id("vm", vm, err) < 0)
        return -1;
    struct begin b = {.vm = vm, .action = action};
    if (fed_store_update(f->store, ns, mci, 0, begin_fn, &b, err) < 0)
        return -1;
    log_info("%s %s/%s/%s", what, ns, mci, vm);
    struct fed_error derr;
    fed_error_clear(&derr);
    int rc = call(f->ctx, &b.copy, &derr);
    if (rc < 0) {
        settle_after_failure(f, &b.copy, &derr);
        /* Reaching the target anyway proves the action happened, except for reboot: its
         * target is where it started, so Running after a failed reboot proves nothing. */
        if (action != FED_ACT_REBOOT && b.copy.state == fed_action_target(action)) {
            char msg[700];
            log_warn("%s %s: the driver failed (%s), but the VM is %s: done", what, vm,
                     fed_error_format(&derr, msg, sizeof(msg)), fed_vm_state_name(b.copy.state));
            b.copy.message[0] = 0;
            rc = 0;
        } else if (err) {
            *err = derr;
        }
    } else if (b.copy.state != fed_action_target(action)) {
        /* A driver that says "done" without reaching the target must not be believed. */
        rc = fed_fail(err, FED_EBACKEND, what, 0, "driver %s returned with %s in state %s",
                      f->drv->name, vm, fed_vm_state_name(b.copy.state));
        settle_after_failure(f, &b.copy, err);
    }
    struct finish fi = {.id = vm, .result = &b.copy};
    struct fed_error serr;
    if (fed_store_update(f->store, ns, mci, 0, finish_fn, &fi, &serr) < 0 && rc == 0) {
        if (err)
            *err = serr;
        rc = -1;
    }
    fed_vm_free(&b.copy);
    return rc;
}

int fed_mci_action(struct fed *f, const char *ns, const char *mci, enum fed_action action,
                   struct fed_error *err)
{
    struct fed_mci m;
    if (fed_store_get(f->store, ns, mci, &m, err) < 0)
        return -1;
    int failed = 0;
    struct fed_error first;
    fed_error_clear(&first);
    for (size_t i = 0; i < m.nvms; i++) {
        if (m.vms[i].state == fed_action_target(action) && action != FED_ACT_REBOOT)
            continue;
        struct fed_error e;
        if (fed_vm_action(f, ns, mci, m.vms[i].id, action, &e) < 0) {
            if (!failed++)
                first = e;
            char msg[700];
            log_warn("%s", fed_error_format(&e, msg, sizeof(msg)));
        }
    }
    size_t n = m.nvms;
    fed_mci_free(&m);
    if (failed) {
        if (err) {
            *err = first;
            if (failed > 1) {
                char more[64];
                snprintf(more, sizeof(more), " (and %d more of %zu VMs failed)", failed - 1, n);
                size_t l = strlen(err->message);
                snprintf(err->message + l, sizeof(err->message) - l, "%s", more);
            }
        }
        return -1;
    }
    return 0;
}

/* ---- create ---------------------------------------------------------------------------- */

/* One past the highest index in use, so a new VM never takes the name of a recent one. */
void fed_next_vm_id(const struct fed_mci *m, const char *subgroup, char *out, size_t len)
{
    size_t sl = strlen(subgroup);
    long max = 0;
    for (size_t i = 0; i < m->nvms; i++) {
        const char *id = m->vms[i].id;
        char *end;
        if (strncmp(id, subgroup, sl) || id[sl] != '-')
            continue;
        long k = strtol(id + sl + 1, &end, 10);
        if (!*end && k > max)
            max = k;
    }
    snprintf(out, len, "%s-%ld", subgroup, max + 1);
}

struct add_vms {
    const char *driver;
    struct fed_vm *vms;
    size_t n;
};

static int add_vms_fn(struct fed_mci *m, void *arg, struct fed_error *err)
{
    struct add_vms *a = arg;
    if (m->driver[0] && strcmp(m->driver, a->driver))
        return fed_fail(err, FED_EINVAL, "create vm", 0,
                        "MCI %s/%s is managed by driver %s, not %s", m->ns, m->id, m->driver,
                        a->driver);
    snprintf(m->driver, sizeof(m->driver), "%s", a->driver);
    for (size_t i = 0; i < a->n; i++) {
        struct fed_vm *v = &a->vms[i];
        if (fed_mci_find_vm(m, v->id))
            return fed_fail(err, FED_EINVAL, "create vm", 0, "MCI %s/%s already has a VM '%s'",
                            m->ns, m->id, v->id);
        v->state = FED_VM_CREATING;
        v->target_action = FED_ACT_CREATE;
        v->target_status = FED_VM_RUNNING;
        v->created_ms = v->updated_ms = fed_wall_ms();
        if (!fed_mci_add_vm(m, v))
            return fed_fail(err, FED_EIO, "create vm", ENOMEM, "out of memory");
    }
    return 0;
}

static int create_each(struct fed *f, struct fed_vm *vms, size_t n, struct fed_error *err)
{
    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        struct fed_error e;
        fed_error_clear(&e);
        log_info("create %s/%s/%s in %s/%s", vms[i].ns, vms[i].mci, vms[i].id, vms[i].spec.csp,
                 vms[i].spec.region);
        if (f->drv->create_vm(f->ctx, &vms[i], &e) < 0 || vms[i].state != FED_VM_RUNNING) {
            if (e.kind == FED_OK)
                fed_fail(&e, FED_EBACKEND, "create vm", 0, "%s came up %s", vms[i].id,
                         fed_vm_state_name(vms[i].state));
            settle_after_failure(f, &vms[i], &e);
            if (vms[i].state == FED_VM_UNDEFINED || vms[i].state == FED_VM_RUNNING)
                vms[i].state = FED_VM_FAILED;
            if (!failed++ && err)
                *err = e;
        }
    }
    return failed ? -1 : 0;
}

int fed_create_vms(struct fed *f, const char *ns, const char *mci, struct fed_vm *vms, size_t n,
                   struct fed_error *err)
{
    if (!f->drv->create_vm && !f->drv->create_mci)
        return fed_unsupported(f, "create_vm", err);
    char(*ids)[FED_NAME_MAX] = calloc(n ? n : 1, sizeof(*ids));
    if (!ids)
        return fed_fail(err, FED_EIO, "create vm", ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        memcpy(ids[i], vms[i].id, sizeof(ids[i]));
    struct add_vms a = {.driver = f->drv->name, .vms = vms, .n = n};
    if (fed_store_update(f->store, ns, mci, 1, add_vms_fn, &a, err) < 0) {
        free(ids);
        return -1;
    }
    int rc;
    if (f->drv->create_mci && n > 1) {
        rc = f->drv->create_mci(f->ctx, ns, mci, NULL, vms, n, err);
        for (size_t i = 0; i < n; i++) {
            if (vms[i].state != FED_VM_RUNNING && rc == 0)
                rc = fed_fail(err, FED_EBACKEND, "create mci", 0, "%s came up %s", vms[i].id,
                              fed_vm_state_name(vms[i].state));
            if (fed_vm_state_in_progress(vms[i].state))
                vms[i].state = FED_VM_FAILED;
        }
    } else {
        rc = f->drv->create_vm ? create_each(f, vms, n, err)
                               : f->drv->create_mci(f->ctx, ns, mci, NULL, vms, n, err);
    }
    for (size_t i = 0; i < n; i++) {
        struct finish fi = {.id = ids[i], .result = &vms[i]};
        struct fed_error serr;
        if (fed_store_update(f->store, ns, mci, 0, finish_fn, &fi, &serr) < 0 && rc == 0) {
            if (err)
                *err = serr;
            rc = -1;
        }
    }
    free(ids);
    return rc;
}

struct add_sgs {
    const char *description;
    const struct fed_vm_spec *specs;
    size_t n;
};

static int add_sgs_fn(struct fed_mci *m, void *arg, struct fed_error *err)
{
    struct add_sgs *a = arg;
    if (a->description && a->description[0])
        snprintf(m->description, sizeof(m->description), "%s", a->description);
    for (size_t i = 0; i < a->n; i++) {
        if (fed_mci_find_subgroup(m, a->specs[i].name))
            return fed_fail(err, FED_EINVAL, "create mci", 0,
                            "MCI %s/%s already has a subgroup '%s' (scale it out instead)", m->ns,
                            m->id, a->specs[i].name);
        struct fed_vm_spec t;
        if (fed_vm_spec_copy(&t, &a->specs[i]) < 0)
            return fed_fail(err, FED_EIO, "create mci", ENOMEM, "out of memory");
        t.size = 1;
        struct fed_subgroup *g = fed_mci_add_subgroup(m, &t);
        fed_vm_spec_free(&t);
        if (!g)
            return fed_fail(err, FED_EIO, "create mci", ENOMEM, "out of memory");
    }
    return 0;
}

int fed_create_mci(struct fed *f, const char *ns, const char *mci, const char *description,
                   const struct fed_vm_spec *specs, size_t nspecs, struct fed_error *err)
{
    if (fed_check_id("namespace", ns, err) < 0 || fed_check_id("mci", mci, err) < 0)
        return -1;
    if (nspecs == 0)
        return fed_fail(err, FED_EINVAL, "create mci", 0, "no subgroups given");
    size_t total = 0;
    for (size_t i = 0; i < nspecs; i++) {
        if (fed_vm_spec_validate(&specs[i], err) < 0)
            return -1;
        total += (size_t)specs[i].size;
    }
    if (!f->drv->create_vm && !f->drv->create_mci)
        return fed_unsupported(f, "create_vm", err);
    struct add_sgs a = {description, specs, nspecs};
    if (fed_store_update(f->store, ns, mci, 1, add_sgs_fn, &a, err) < 0)
        return -1;
    struct fed_vm *vms = calloc(total, sizeof(*vms));
    if (!vms)
        return fed_fail(err, FED_EIO, "create mci", ENOMEM, "out of memory");
    size_t k = 0;
    int rc = 0;
    for (size_t i = 0; i < nspecs && rc == 0; i++) {
        for (int j = 1; j <= specs[i].size && rc == 0; j++, k++) {
            struct fed_vm *v = &vms[k];
            snprintf(v->ns, sizeof(v->ns), "%s", ns);
            snprintf(v->mci, sizeof(v->mci), "%s", mci);
            snprintf(v->subgroup, sizeof(v->subgroup), "%s", specs[i].name);
            if (snprintf(v->id, sizeof(v->id), "%s-%d", specs[i].name, j) >= (int)sizeof(v->id))
                rc = fed_fail(err, FED_EINVAL, "create mci", 0, "VM id %s-%d is too long",
                              specs[i].name, j);
            if (rc == 0 && fed_vm_spec_copy(&v->spec, &specs[i]) < 0)
                rc = fed_fail(err, FED_EIO, "create mci", ENOMEM, "out of memory");
            v->spec.size = 1;
        }
    }
    if (rc == 0)
        rc = fed_create_vms(f, ns, mci, vms, total, err);
    for (size_t i = 0; i < total; i++)
        fed_vm_free(&vms[i]);
    free(vms);
    return rc;
}

/* ---- delete ---------------------------------------------------------------------------- */

/* Once a VM is out of the saved model: the caller's chance to clear what it left behind. */
static void fed_vm_removed(struct fed *f, const struct fed_vm *vm)
{
    if (f->vm_removed)
        f->vm_removed(f->vm_removed_arg, vm);
}

int fed_vm_delete(struct fed *f, const char *ns, const char *mci, const char *vm,
                  struct fed_error *err)
{
    struct fed_mci m;
    if (fed_store_get(f->store, ns, mci, &m, err) < 0)
        return -1;
    struct fed_vm *v = fed_mci_find_vm(&m, vm);
    int rc = v ? 0 : no_vm(&m, vm, err);
    if (rc == 0 && v->state != FED_VM_TERMINATED)
        rc = fed_vm_action(f, ns, mci, vm, FED_ACT_TERMINATE, err);
    fed_mci_free(&m);
    if (rc < 0)
        return -1;
    struct finish fi = {.id = vm, .remove = 1};
    rc = fed_store_update(f->store, ns, mci, 0, finish_fn, &fi, err);
    if (fi.was_removed) {
        if (rc == 0)
            fed_vm_removed(f, &fi.removed);
        fed_vm_free(&fi.removed);
    }
    return rc;
}

int fed_mci_delete(struct fed *f, const char *ns, const char *mci, struct fed_error *err)
{
    if (fed_mci_action(f, ns, mci, FED_ACT_TERMINATE, err) < 0)
        return -1;
    if (f->drv->delete_mci && f->drv->delete_mci(f->ctx, ns, mci, err) < 0)
        return -1;
    /* The VMs as they were last saved, for the hook once they are gone. */
    struct fed_mci m;
    memset(&m, 0, sizeof(m));
    if (f->vm_removed && fed_store_get(f->store, ns, mci, &m, err) < 0)
        return -1;
    int rc = fed_store_delete(f->store, ns, mci, err);
    for (size_t i = 0; rc == 0 && i < m.nvms; i++)
        fed_vm_removed(f, &m.vms[i]);
    fed_mci_free(&m);
    return rc;
}

/* ---- refresh --------------------------------------------------------------------------- */

struct refresh {
    const struct fed_vm *seen; /* as read before the driver calls */
    const struct fed_vm *now;  /* as the driver reported */
    size_t n;
};

static int refresh_fn(struct fed_mci *m, void *arg, struct fed_error *err)
{
    struct refresh *r = arg;
    int changed = 0;
    for (size_t i = 0; i < r->n; i++) {
        struct fed_vm *v = fed_mci_find_vm(m, r->seen[i].id);
        /* Someone acted on it meanwhile: their outcome is newer than our look. */
        if (!v || v->updated_ms != r->seen[i].updated_ms || v->state != r->seen[i].state)
            continue;
        const struct fed_vm *now = &r->now[i];
        if (now->state == v->state && !strcmp(now->address, v->address) &&
            !strcmp(now->message, v->message) && !strcmp(now->driver_data, v->driver_data))
            continue;
        if (now->state != v->state)
            log_info("%s/%s/%s: %s -> %s", m->ns, m->id, v->id, fed_vm_state_name(v->state),
                     fed_vm_state_name(now->state));
        apply_result(v, now);
        changed = 1;
    }
    return changed ? 0 : 1;
}

/* An in-progress state that an action recorded (with its target) and younger than the wait
 * bound is someone's action under way: its outcome is theirs to record. One that an earlier
 * refresh saw in the backend is not, and is read again. */
static int leave_alone(const struct fed *f, const struct fed_vm *v)
{
    return fed_vm_state_in_progress(v->state) && v->target_action != FED_ACT_NONE &&
           fed_wall_ms() - v->updated_ms < f->wait_timeout_ms;
}

int fed_mci_refresh(struct fed *f, const char *ns, const char *mci, struct fed_mci *out,
                    struct fed_error *err)
{
    struct fed_mci m;
    if (out)
        memset(out, 0, sizeof(*out));
    if (fed_store_get(f->store, ns, mci, &m, err) < 0)
        return -1;
    if (!f->drv->status) {
        fed_mci_free(&m);
        return fed_unsupported(f, "status", err);
    }
    struct fed_vm *now = calloc(m.nvms ? m.nvms : 1, sizeof(*now));
    int rc = now ? 0 : fed_fail(err, FED_EIO, "refresh", ENOMEM, "out of memory");
    int failed = 0;
    struct fed_error first;
    fed_error_clear(&first);
    for (size_t i = 0; rc == 0 && i < m.nvms; i++) {
        now[i] = m.vms[i];
        now[i].spec.user_data = NULL; /* shallow: the driver must not need them */
        now[i].spec.workload = NULL;
        if (m.vms[i].state == FED_VM_TERMINATED || leave_alone(f, &m.vms[i]))
            continue;
        struct fed_error e;
        fed_error_clear(&e);
        if (f->drv->status(f->ctx, &now[i], &e) < 0) {
            char msg[700];
            log_warn("status of %s/%s/%s: %s", ns, mci, m.vms[i].id,
                     fed_error_format(&e, msg, sizeof(msg)));
            if (!failed++)
                first = e;
            now[i] = m.vms[i];
            now[i].spec.user_data = NULL;
            now[i].spec.workload = NULL;
        }
    }
    struct refresh r = {m.vms, now, m.nvms};
    if (rc == 0)
        rc = fed_store_update(f->store, ns, mci, 0, refresh_fn, &r, err);
    free(now);
    fed_mci_free(&m);
    if (rc == 0 && out)
        rc = fed_store_get(f->store, ns, mci, out, err);
    if (rc == 0 && failed) {
        /* The VMs that could not be read keep their last known state: the caller may show
         * them, but must not take them for fresh. */
        if (err) {
            *err = first;
            if (failed > 1) {
                size_t l = strlen(err->message);
                snprintf(err->message + l, sizeof(err->message) - l,
                         " (status of %d VMs could not be read)", failed);
            }
        }
        rc = -1;
    }
    return rc;
}

/* ---- Kubernetes ------------------------------------------------------------------------- */

const char *fed_scale_kind_name(enum fed_scale_kind k)
{
    return k == FED_SCALE_MACHINEDEPLOYMENT ? "machinedeployment" : "deployment";
}

int fed_scale_kind_parse(const char *name, enum fed_scale_kind *out)
{
    if (!strcmp(name, "deployment"))
        *out = FED_SCALE_DEPLOYMENT;
    else if (!strcmp(name, "machinedeployment"))
        *out = FED_SCALE_MACHINEDEPLOYMENT;
    else
        return -1;
    return 0;
}

int fed_node_cordon(struct fed *f, const char *node, int on, int dry_run, struct fed_error *err)
{
    if (!f->drv->cordon)
        return fed_unsupported(f, on ? "cordon" : "uncordon", err);
    if (!node || !node[0])
        return fed_fail(err, FED_EINVAL, "cordon", 0, "no node name given");
    return f->drv->cordon(f->ctx, node, on, dry_run, err);
}

int fed_node_drain(struct fed *f, const char *node, const struct fed_drain_options *o,
                   struct fed_error *err)
{
    if (!f->drv->drain)
        return fed_unsupported(f, "drain", err);
    if (!node || !node[0])
        return fed_fail(err, FED_EINVAL, "drain", 0, "no node name given");
    struct fed_drain_options d = {.timeout_ms = 0, .grace_period_s = -1};
    return f->drv->drain(f->ctx, node, o ? o : &d, err);
}

int fed_scale(struct fed *f, enum fed_scale_kind kind, const char *ns, const char *name,
              int replicas, int dry_run, int *old_replicas, struct fed_error *err)
{
    if (old_replicas)
        *old_replicas = -1;
    if (!f->drv->scale)
        return fed_unsupported(f, "scale", err);
    if (!ns || !ns[0] || !name || !name[0])
        return fed_fail(err, FED_EINVAL, "scale", 0, "namespace and name are required");
    if (replicas < 0)
        return fed_fail(err, FED_EINVAL, "scale", 0, "replicas %d is negative", replicas);
    return f->drv->scale(f->ctx, kind, ns, name, replicas, dry_run, old_replicas, err);
}
