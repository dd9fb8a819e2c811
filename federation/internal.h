/* Shared between fed.c (the handle and single-VM actions) and ops.c (composite operations). */
#ifndef DSF_FED_INTERNAL_H
#define DSF_FED_INTERNAL_H

#include "common/config.h"
#include "federation/driver.h"
#include "federation/federation.h"

struct fed {
    struct fed_store *store;
    const struct fed_driver *drv;
    void *ctx;
    struct fed_bus *bus;
    void *own_options; /* filled by the library from driver_json/driver_set, or NULL */
    struct dsf_cfg_section own_secs[2];
    int64_t wait_timeout_ms, online_timeout_ms;
    int (*agent_online)(void *arg, const struct fed_vm *vm, struct fed_error *err);
    void *agent_online_arg;
    void (*vm_removed)(void *arg, const struct fed_vm *vm);
    void *vm_removed_arg;
};

/* "driver X does not support Y". */
int fed_unsupported(const struct fed *f, const char *what, struct fed_error *err);

/*
 * Adds VMs (ids set, spec filled, subgroups already in the model) in Creating state, has the
 * driver create them and records the outcome. With subgroup set they are added to that
 * subgroup's template (scale out). On return vms[i] holds each VM's final record. Fails if
 * any VM did not come up; those are left Failed in the model.
 */
int fed_create_vms(struct fed *f, const char *ns, const char *mci, struct fed_vm *vms, size_t n,
                   struct fed_error *err);

/* Polls the driver's status until the VM is Running (or Failed/Terminated: error). */
int fed_wait_running(struct fed *f, struct fed_vm *vm, int64_t timeout_ms, struct fed_error *err);
/* Polls agent_online until it says 1. 0 at once when there is no way to tell. */
int fed_wait_online(struct fed *f, const struct fed_vm *vm, int64_t timeout_ms,
                    struct fed_error *err);

/* "<subgroup>-<i>" with i one past the highest index in use in m (1 for none). */
void fed_next_vm_id(const struct fed_mci *m, const char *subgroup, char *out, size_t len);

#endif
