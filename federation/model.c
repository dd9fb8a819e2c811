/* The MCI model: errors, VM states and the transitions allowed between them, the MCI status
 * string, and the bookkeeping of MCIs, subgroups and VMs. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "federation/federation.h"

/* ---- errors ------------------------------------------------------------------------ */

int fed_fail(struct fed_error *err, enum fed_errkind kind, const char *call, int status,
             const char *fmt, ...)
{
    if (!err)
        return -1;
    err->kind = kind;
    err->status = status;
    snprintf(err->call, sizeof(err->call), "%s", call ? call : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    return -1;
}

void fed_error_clear(struct fed_error *err)
{
    if (err)
        memset(err, 0, sizeof(*err));
}

const char *fed_error_format(const struct fed_error *err, char *buf, size_t len)
{
    if (!err || (!err->call[0] && !err->message[0])) {
        snprintf(buf, len, "unknown error");
    } else if (err->status) {
        snprintf(buf, len, "%s: status %d: %s", err->call, err->status, err->message);
    } else if (err->call[0]) {
        snprintf(buf, len, "%s: %s", err->call, err->message);
    } else {
        snprintf(buf, len, "%s", err->message);
    }
    return buf;
}

const char *fed_errkind_name(enum fed_errkind k)
{
    static const char *const names[] = {"ok",          "invalid", "not found", "state",
                                        "unsupported", "timeout", "backend",   "io"};
    return (unsigned)k < sizeof(names) / sizeof(names[0]) ? names[k] : "unknown";
}

/* ---- states and actions ------------------------------------------------------------ */

static const char *const state_names[FED_VM_STATE_COUNT] = {
    "Undefined", "Creating",  "Running",     "Suspending", "Suspended",
    "Resuming",  "Rebooting", "Terminating", "Terminated", "Failed",
};

static const char *const action_names[FED_ACT_COUNT] = {
    "None", "Create", "Suspend", "Resume", "Reboot", "Terminate",
};

const char *fed_vm_state_name(enum fed_vm_state s)
{
    return (unsigned)s < FED_VM_STATE_COUNT ? state_names[s] : "Undefined";
}

int fed_vm_state_parse(const char *name, enum fed_vm_state *out)
{
    for (int i = 0; name && i < FED_VM_STATE_COUNT; i++) {
        if (!strcasecmp(name, state_names[i])) {
            *out = (enum fed_vm_state)i;
            return 0;
        }
    }
    return -1;
}

const char *fed_action_name(enum fed_action a)
{
    return (unsigned)a < FED_ACT_COUNT ? action_names[a] : "None";
}

int fed_action_parse(const char *name, enum fed_action *out)
{
    for (int i = 0; name && i < FED_ACT_COUNT; i++) {
        if (!strcasecmp(name, action_names[i])) {
            *out = (enum fed_action)i;
            return 0;
        }
    }
    return -1;
}

int fed_vm_state_in_progress(enum fed_vm_state s)
{
    return s == FED_VM_CREATING || s == FED_VM_SUSPENDING || s == FED_VM_RESUMING ||
           s == FED_VM_REBOOTING || s == FED_VM_TERMINATING;
}

enum fed_vm_state fed_action_transient(enum fed_action a)
{
    switch (a) {
    case FED_ACT_CREATE:
        return FED_VM_CREATING;
    case FED_ACT_SUSPEND:
        return FED_VM_SUSPENDING;
    case FED_ACT_RESUME:
        return FED_VM_RESUMING;
    case FED_ACT_REBOOT:
        return FED_VM_REBOOTING;
    case FED_ACT_TERMINATE:
        return FED_VM_TERMINATING;
    default:
        return FED_VM_UNDEFINED;
    }
}

enum fed_vm_state fed_action_target(enum fed_action a)
{
    switch (a) {
    case FED_ACT_CREATE:
    case FED_ACT_RESUME:
    case FED_ACT_REBOOT:
        return FED_VM_RUNNING;
    case FED_ACT_SUSPEND:
        return FED_VM_SUSPENDED;
    case FED_ACT_TERMINATE:
        return FED_VM_TERMINATED;
    default:
        return FED_VM_UNDEFINED;
    }
}

/* ---- ids and transitions ----------------------------------------------------------- */

int fed_check_id(const char *what, const char *id, struct fed_error *err)
{
    if (!id || !id[0])
        return fed_fail(err, FED_EINVAL, what, 0, "%s is empty", what);
    size_t n = strlen(id);
    if (n >= FED_NAME_MAX)
        return fed_fail(err, FED_EINVAL, what, 0, "%s '%.64s...' is longer than %d characters",
                        what, id, FED_NAME_MAX - 1);
    if (id[0] == '.' || id[0] == '-')
        return fed_fail(err, FED_EINVAL, what, 0, "%s '%s' must not start with '%c'", what, id,
                        id[0]);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return fed_fail(err, FED_EINVAL, what, 0,
                            "%s '%s' has the character 0x%02x: use letters, digits, '_', '-' "
                            "and '.' (it is an MQTT topic level and a file name)",
                            what, id, c);
    }
    return 0;
}

static const char *verb(enum fed_action a)
{
    switch (a) {
    case FED_ACT_CREATE:
        return "create";
    case FED_ACT_SUSPEND:
        return "suspend";
    case FED_ACT_RESUME:
        return "resume";
    case FED_ACT_REBOOT:
        return "reboot";
    case FED_ACT_TERMINATE:
        return "terminate";
    default:
        return "act on";
    }
}

static int refuse(const struct fed_vm *vm, enum fed_action a, struct fed_error *err,
                  const char *why)
{
    char call[96];
    snprintf(call, sizeof(call), "%s %s", verb(a), vm->id);
    return fed_fail(err, FED_ESTATE, call, 0, "cannot %s %s: it is %s%s", verb(a), vm->id,
                    fed_vm_state_name(vm->state), why);
}

int fed_check_transition(const struct fed_vm *vm, enum fed_action a, struct fed_error *err)
{
    if (a <= FED_ACT_NONE || a >= FED_ACT_COUNT)
        return fed_fail(err, FED_EINVAL, "transition", 0, "unknown action %d", (int)a);
    if (a == FED_ACT_CREATE)
        return refuse(vm, a, err, " (it exists already)");
    switch (vm->state) {
    case FED_VM_TERMINATED:
        return refuse(vm, a, err, "");
    case FED_VM_CREATING:
    case FED_VM_SUSPENDING:
    case FED_VM_RESUMING:
    case FED_VM_REBOOTING:
    case FED_VM_TERMINATING: {
        char why[64];
        snprintf(why, sizeof(why), " (wait until the %s has finished)",
                 vm->target_action != FED_ACT_NONE ? verb(vm->target_action) : "change");
        return refuse(vm, a, err, why);
    }
    case FED_VM_SUSPENDED:
        if (a == FED_ACT_SUSPEND)
            return refuse(vm, a, err, " already");
        if (a != FED_ACT_RESUME && a != FED_ACT_TERMINATE)
            return refuse(vm, a, err, " (only resume or terminate are allowed)");
        return 0;
    case FED_VM_RUNNING:
        if (a == FED_ACT_RESUME)
            return refuse(vm, a, err, " already");
        return 0;
    case FED_VM_FAILED:
    case FED_VM_UNDEFINED:
        if (a != FED_ACT_REBOOT && a != FED_ACT_TERMINATE)
            return refuse(vm, a, err, " (only reboot or terminate are allowed)");
        return 0;
    default:
        return refuse(vm, a, err, "");
    }
}

/* ---- MCI status -------------------------------------------------------------------- */

/* Tumblebug's order, which also breaks ties between equally common states. */
static const enum fed_vm_state status_order[] = {
    FED_VM_FAILED,     FED_VM_SUSPENDED, FED_VM_RUNNING,   FED_VM_TERMINATED,  FED_VM_CREATING,
    FED_VM_SUSPENDING, FED_VM_RESUMING,  FED_VM_REBOOTING, FED_VM_TERMINATING, FED_VM_UNDEFINED,
};
#define NORDER (sizeof(status_order) / sizeof(status_order[0]))

/*
 * Tumblebug's form "<State>:<count> (R:<running>/<total>)", with "Partial-" when not every
 * VM is in that state. A uniform MCI names its state; a mixed one names Failed when any VM
 * failed (as Tumblebug did), else its most common state other than Running, so that one
 * suspended VM out of three reads "Partial-Suspended:1 (R:2/3)": R already counts the
 * running ones and the deviation is what an operator needs to see.
 */
const char *fed_mci_status(const struct fed_mci *m, char *buf, size_t len)
{
    size_t count[FED_VM_STATE_COUNT] = {0};
    for (size_t i = 0; i < m->nvms; i++) {
        enum fed_vm_state s = m->vms[i].state;
        count[(unsigned)s < FED_VM_STATE_COUNT ? s : FED_VM_UNDEFINED]++;
    }
    size_t total = m->nvms, running = count[FED_VM_RUNNING];
    if (total == 0) {
        snprintf(buf, len, "Undefined:0 (R:0/0)");
        return buf;
    }
    enum fed_vm_state shown = FED_VM_UNDEFINED;
    size_t best = 0;
    for (size_t i = 0; i < NORDER; i++) {
        if (count[status_order[i]] == total) {
            snprintf(buf, len, "%s:%zu (R:%zu/%zu)", fed_vm_state_name(status_order[i]), total,
                     running, total);
            return buf;
        }
    }
    if (count[FED_VM_FAILED]) {
        shown = FED_VM_FAILED;
        best = count[FED_VM_FAILED];
    } else {
        for (size_t i = 0; i < NORDER; i++) {
            enum fed_vm_state s = status_order[i];
            if (s != FED_VM_RUNNING && count[s] > best) {
                best = count[s];
                shown = s;
            }
        }
    }
    snprintf(buf, len, "Partial-%s:%zu (R:%zu/%zu)", fed_vm_state_name(shown), best, running,
             total);
    return buf;
}

/* ---- copies and lookups ------------------------------------------------------------ */

void fed_vm_spec_free(struct fed_vm_spec *s)
{
    if (!s)
        return;
    free(s->user_data);
    s->user_data = NULL;
    if (s->workload) {
        for (char **p = s->workload; *p; p++)
            free(*p);
        free(s->workload);
        s->workload = NULL;
    }
}

int fed_vm_spec_copy(struct fed_vm_spec *dst, const struct fed_vm_spec *src)
{
    *dst = *src;
    dst->user_data = NULL;
    dst->workload = NULL;
    if (src->user_data && !(dst->user_data = strdup(src->user_data)))
        return -1;
    if (src->workload) {
        size_t n = 0;
        while (src->workload[n])
            n++;
        dst->workload = calloc(n + 1, sizeof(char *));
        if (!dst->workload)
            goto oom;
        for (size_t i = 0; i < n; i++) {
            if (!(dst->workload[i] = strdup(src->workload[i])))
                goto oom;
        }
    }
    return 0;
oom:
    fed_vm_spec_free(dst);
    return -1;
}

void fed_vm_free(struct fed_vm *vm)
{
    if (vm)
        fed_vm_spec_free(&vm->spec);
}

int fed_vm_copy(struct fed_vm *dst, const struct fed_vm *src)
{
    *dst = *src;
    return fed_vm_spec_copy(&dst->spec, &src->spec);
}

void fed_mci_free(struct fed_mci *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->nvms; i++)
        fed_vm_free(&m->vms[i]);
    for (size_t i = 0; i < m->nsubgroups; i++)
        fed_vm_spec_free(&m->subgroups[i].tmpl);
    free(m->vms);
    free(m->subgroups);
    m->vms = NULL;
    m->subgroups = NULL;
    m->nvms = m->nsubgroups = 0;
}

int fed_mci_copy(struct fed_mci *dst, const struct fed_mci *src)
{
    *dst = *src;
    dst->vms = NULL;
    dst->subgroups = NULL;
    dst->nvms = dst->nsubgroups = 0;
    for (size_t i = 0; i < src->nsubgroups; i++) {
        if (!fed_mci_add_subgroup(dst, &src->subgroups[i].tmpl))
            goto oom;
        snprintf(dst->subgroups[i].id, sizeof(dst->subgroups[i].id), "%s", src->subgroups[i].id);
    }
    for (size_t i = 0; i < src->nvms; i++) {
        if (!fed_mci_add_vm(dst, &src->vms[i]))
            goto oom;
    }
    return 0;
oom:
    fed_mci_free(dst);
    return -1;
}

struct fed_vm *fed_mci_find_vm(struct fed_mci *m, const char *vm)
{
    for (size_t i = 0; vm && i < m->nvms; i++) {
        if (!strcmp(m->vms[i].id, vm))
            return &m->vms[i];
    }
    return NULL;
}

struct fed_subgroup *fed_mci_find_subgroup(struct fed_mci *m, const char *sg)
{
    for (size_t i = 0; sg && i < m->nsubgroups; i++) {
        if (!strcmp(m->subgroups[i].id, sg))
            return &m->subgroups[i];
    }
    return NULL;
}

struct fed_vm *fed_mci_add_vm(struct fed_mci *m, const struct fed_vm *vm)
{
    struct fed_vm *v = realloc(m->vms, (m->nvms + 1) * sizeof(*v));
    if (!v)
        return NULL;
    m->vms = v;
    if (fed_vm_copy(&v[m->nvms], vm) < 0)
        return NULL;
    return &v[m->nvms++];
}

struct fed_subgroup *fed_mci_add_subgroup(struct fed_mci *m, const struct fed_vm_spec *tmpl)
{
    struct fed_subgroup *g = realloc(m->subgroups, (m->nsubgroups + 1) * sizeof(*g));
    if (!g)
        return NULL;
    m->subgroups = g;
    struct fed_subgroup *n = &g[m->nsubgroups];
    memset(n, 0, sizeof(*n));
    if (fed_vm_spec_copy(&n->tmpl, tmpl) < 0)
        return NULL;
    snprintf(n->id, sizeof(n->id), "%s", tmpl->name);
    m->nsubgroups++;
    return n;
}

int fed_mci_remove_vm(struct fed_mci *m, const char *vm)
{
    struct fed_vm *v = fed_mci_find_vm(m, vm);
    if (!v)
        return -1;
    size_t i = (size_t)(v - m->vms);
    fed_vm_free(v);
    memmove(&m->vms[i], &m->vms[i + 1], (m->nvms - i - 1) * sizeof(*v));
    m->nvms--;
    return 0;
}
