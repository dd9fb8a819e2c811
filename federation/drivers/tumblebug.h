/* The tumblebug driver's parts: the requests, status and MCI reads in tumblebug.c, and
 * creating VMs (mciDynamic, vmDynamic, native subgroup scale out) in tumblebug_create.c. */
#ifndef DSF_FED_DRIVERS_TUMBLEBUG_H
#define DSF_FED_DRIVERS_TUMBLEBUG_H

#include <stdint.h>

#include "common/buf.h"
#include "federation/driver.h"
#include "federation/rest.h"

struct tb_options {
    char *url, *user, *password, *api;
    char *agent_cloud_init, *mqtt_url, *release_url;
    int64_t timeout_ms, create_timeout_ms, action_timeout_ms, poll_ms, retries;
    int delete_on_terminate;
};

/* What changed between the path styles. */
struct tb_dialect {
    const char *mci, *vm, *subgroup, *vm_dynamic, *mci_dynamic;
    const char *req_vms, *size_key, *spec_key, *image_key, *add_key;
    int add_as_number;
};

struct tb_ctx {
    const struct tb_options *o;
    const struct tb_dialect *d;
    struct fed_rest *rest;
    struct fed_bus *bus; /* the agents' broker credentials (borrowed) */
    char *ud_template;   /* tumblebug.agent_cloud_init's text; NULL: VMs get no user data */
};

/* One request to path (under the base URL) with the driver's retries; flags FED_REST_*. */
int tb_call(struct tb_ctx *c, const char *method, const char *path, const char *body, int flags,
            long timeout_ms, struct fed_rest_result *res, struct fed_error *err);
/* Appends "/" and s escaped as one path segment. */
void tb_seg(struct dsf_buf *b, const char *s);
/* Appends /ns/{ns}/{mci}/{m}[/{sub}/{id}] (the dialect's words) to b; its text. */
const char *tb_mci_path(struct tb_ctx *c, struct dsf_buf *b, const char *ns, const char *mci,
                        const char *sub, const char *id);
/* "out of memory" while doing what; -1. */
int tb_oom(struct fed_error *err, const char *what);
/* Polls until vm is in want with no action pending. */
int tb_wait_state(struct tb_ctx *c, struct fed_vm *vm, enum fed_vm_state want, int64_t deadline,
                  struct fed_error *err);
/* The MCI's VMs; *found = 0 (and no VMs) when Tumblebug does not know the MCI. */
int tb_get_mci_vms(struct tb_ctx *c, const char *ns, const char *mci, struct fed_vm **vms,
                   size_t *n, int *found, struct fed_error *err);
void tb_free_vms(struct fed_vm *vms, size_t n);
/* Ids of subgroup sg in vms, sorted. */
size_t tb_subgroup_ids(const struct fed_vm *vms, size_t n, const char *sg, const char **out);
/* Is id one of vms? */
int tb_known(const struct fed_vm *vms, size_t n, const char *id);
/* Is sg one of the MCI's subgroups (GET .../subgroup: {"output": [ids]})? */
int tb_has_subgroup(struct tb_ctx *c, const char *ns, const char *mci, const char *sg, int *exists,
                    struct fed_error *err);

/* ---- tumblebug_userdata.c: the agent's cloud-init user data of each VM ---- */

/* Loads tumblebug.agent_cloud_init and checks the values it needs; refuses provisioned
 * credentials without it (they would have no way to the VM). */
int tb_user_data_open(struct tb_ctx *c, struct fed_error *err);
void tb_user_data_close(struct tb_ctx *c);
/* The user data of the VM Tumblebug will name id, with the broker credentials granted to
 * "{ns}/{mci}/{id}" when provisioning is on: *out is malloc'd (free it with
 * tb_user_data_free), NULL when the driver sends no user data. */
int tb_user_data(struct tb_ctx *c, const struct fed_vm *vm, const char *id, char **out,
                 struct fed_error *err);
/* Wipes (it may hold a password) and frees. */
void tb_user_data_free(char *ud);

/* The driver's create_mci, create_vm and scale_out (tumblebug_create.c). */
int tb_create_mci(void *ctx, const char *ns, const char *mci, const char *description,
                  struct fed_vm *vms, size_t n, struct fed_error *err);
int tb_create_vm(void *ctx, struct fed_vm *vm, struct fed_error *err);
int tb_scale_out(void *ctx, const char *ns, const char *mci, const char *subgroup, int n,
                 const struct fed_vm_spec *tmpl, struct fed_vm **vms, size_t *nvms,
                 struct fed_error *err);

#endif
