/*
 * CB-Tumblebug driver: VM lifecycle through Tumblebug's REST API (basic auth). Tumblebug
 * answers a control call before the cloud has finished, so every action polls the VM's
 * status until it reaches its target (or fails, or the action timeout runs out).
 *
 * Path styles: v0.11 (mci / vm / subgroup / vmDynamic / mciDynamic, the default) and v0.13
 * (infra / node / nodegroup / nodeGroupDynamic / infraDynamic), chosen by tumblebug.api.
 */
#define DSF_MODULE "fed-tumblebug"
#include "common/log.h"
#include "federation/api_json.h"
#include "federation/driver.h"
#include "federation/drivers/tumblebug.h"
#include "federation/rest.h"

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define K(f) offsetof(struct tb_options, f)
static const struct dsf_cfg_key tb_keys[] = {
    {"url", DSF_CFG_STR, "http://localhost:1323/tumblebug", K(url),
     "Tumblebug API base URL (ends in /tumblebug)", 0, 0},
    {"user", DSF_CFG_STR, "default", K(user), "basic auth user (TB_API_USERNAME)", 0, 0},
    {"password", DSF_CFG_STR, "default", K(password), "basic auth password (TB_API_PASSWORD)", 0,
     0},
    {"api", DSF_CFG_STR, "v0.11", K(api),
     "path style: v0.11 (mci/vm/subgroup) or v0.13 (infra/node/nodegroup)", 0, 0},
    {"timeout", DSF_CFG_DURATION, "60s", K(timeout_ms), "timeout of one API request", 100, 3600000},
    {"create_timeout", DSF_CFG_DURATION, "15m", K(create_timeout_ms),
     "timeout of a creating request (Tumblebug answers once the cloud has created the VMs)", 100,
     7200000},
    {"action_timeout", DSF_CFG_DURATION, "10m", K(action_timeout_ms),
     "how long an action may take to reach its target state", 100, 7200000},
    {"poll_interval", DSF_CFG_DURATION, "2s", K(poll_ms), "status polling while waiting", 10,
     60000},
    {"retries", DSF_CFG_INT, "3", K(retries),
     "retries of a request after a network error, 5xx or 429 (exponential backoff)", 0, 10},
    {"agent_cloud_init", DSF_CFG_STR, "", K(agent_cloud_init),
     "user data template each new VM gets, filled for that VM (deploy/cloud-init/agent.yaml: "
     "installs the agent with the VM's identity and broker credentials); empty: no user data. "
     "Required with bus.password_file",
     0, 0},
    {"mqtt_url", DSF_CFG_STR, "", K(mqtt_url),
     "broker the VMs' agents push to (${MQTT_URL} of agent_cloud_init)", 0, 0},
    {"release_url", DSF_CFG_STR, "", K(release_url),
     "where the VMs download damselfly-agent and install-agent.sh (${RELEASE_URL} of "
     "agent_cloud_init)",
     0, 0},
    {"delete_on_terminate", DSF_CFG_BOOL, "true", K(delete_on_terminate),
     "after terminating a VM, delete its Tumblebug object (DELETE .../vm/{vm})", 0, 0},
    DSF_CFG_END,
};
#undef K

static const struct tb_dialect v011 = {
    "mci",        "vm",          "subgroup",    "vmDynamic", "mciDynamic", "vm", "subGroupSize",
    "commonSpec", "commonImage", "numVMsToAdd", 0,
};
static const struct tb_dialect v013 = {
    "infra",
    "node",
    "nodegroup",
    "nodeGroupDynamic",
    "infraDynamic",
    "nodeGroups",
    "nodeGroupSize",
    "specId",
    "imageId",
    "numNodesToAdd",
    1,
};

/* ---- plumbing ---- */

int tb_call(struct tb_ctx *c, const char *method, const char *path, const char *body, int flags,
            long timeout_ms, struct fed_rest_result *res, struct fed_error *err)
{
    struct fed_rest_call rc = {
        .method = method, .path = path, .body = body, .flags = flags, .timeout_ms = timeout_ms};
    if (fed_rest_do(c->rest, &rc, res, NULL, 0) == 0)
        return 0;
    return fed_rest_fail(err, c->rest, &rc, res);
}

void tb_seg(struct dsf_buf *b, const char *s)
{
    buf_putc(b, '/');
    fed_rest_escape(b, s);
}

/* /ns/{ns}/{mci}/{m}[/{sub}/{id}] */
const char *tb_mci_path(struct tb_ctx *c, struct dsf_buf *b, const char *ns, const char *mci,
                        const char *sub, const char *id)
{
    buf_puts(b, "/ns");
    tb_seg(b, ns);
    tb_seg(b, c->d->mci);
    tb_seg(b, mci);
    if (sub) {
        tb_seg(b, sub);
        if (id)
            tb_seg(b, id);
    }
    return buf_cstr(b);
}

static const char *vm_path(struct tb_ctx *c, struct dsf_buf *b, const struct fed_vm *vm)
{
    return tb_mci_path(c, b, vm->ns, vm->mci, c->d->vm, vm->id);
}

int tb_oom(struct fed_error *err, const char *what)
{
    return fed_fail(err, FED_EIO, what, 0, "out of memory");
}

static int64_t remaining_ms(int64_t deadline)
{
    int64_t left = deadline - fed_now_ms();
    return left > 0 ? left : 0;
}

/* ---- open / close ---- */

static void *tb_open(const void *options, const char *state_dir, struct fed_bus *bus,
                     struct fed_error *err)
{
    const struct tb_options *o = options;
    const struct tb_dialect *d = !o->api || !strcmp(o->api, "v0.11") || !strcmp(o->api, "0.11")
                                     ? &v011
                                 : !strcmp(o->api, "v0.13") || !strcmp(o->api, "0.13") ? &v013
                                                                                       : NULL;
    if (!d) {
        fed_fail(err, FED_EINVAL, "open tumblebug", 0, "tumblebug.api '%s': use v0.11 or v0.13",
                 o->api);
        return NULL;
    }
    struct tb_ctx *c = calloc(1, sizeof(*c));
    if (!c) {
        tb_oom(err, "open tumblebug");
        return NULL;
    }
    c->o = o;
    c->d = d;
    c->bus = bus;
    if (tb_user_data_open(c, err) < 0) {
        tb_user_data_close(c);
        free(c);
        return NULL;
    }
    struct fed_rest_config rc = {
        .base_url = o->url,
        .basic_user = o->user && o->user[0] ? o->user : NULL,
        .basic_password = o->password,
        .timeout_ms = (long)o->timeout_ms,
        .max_attempts = (int)o->retries + 1,
    };
    char msg[512];
    c->rest = fed_rest_new(&rc, msg, sizeof(msg));
    if (!c->rest) {
        fed_fail(err, FED_EINVAL, "open tumblebug", 0, "%s", msg);
        tb_user_data_close(c);
        free(c);
        return NULL;
    }
    log_info("Tumblebug %s (%s paths)", o->url, d == &v011 ? "v0.11" : "v0.13");
    return c;
}

static void tb_close(void *ctx)
{
    struct tb_ctx *c = ctx;
    if (!c)
        return;
    fed_rest_free(c->rest);
    tb_user_data_close(c);
    free(c);
}

/* ---- status ---- */

/* What the backend says about vm; Tumblebug no longer knowing it means Terminated. */
static int tb_status(void *ctx, struct fed_vm *vm, struct fed_error *err)
{
    struct tb_ctx *c = ctx;
    struct dsf_buf path = {0};
    struct fed_rest_result res = {0};
    struct fed_error e = {0};
    int rc = tb_call(c, "GET", vm_path(c, &path, vm), NULL, 0, 0, &res, &e);
    struct fed_vm seen = {0};
    if (rc && res.status == 404) {
        vm->state = FED_VM_TERMINATED;
        vm->target_action = FED_ACT_NONE;
        vm->target_status = FED_VM_UNDEFINED;
        rc = 0;
    } else if (rc) {
        *err = e;
    } else if ((rc = tb_parse_vm(res.body.data, res.body.len, &seen, err)) == 0) {
        vm->state = seen.state;
        vm->target_action = seen.target_action;
        vm->target_status = seen.target_status;
        if (seen.address[0])
            memcpy(vm->address, seen.address, sizeof(vm->address));
        if (seen.native_id[0])
            memcpy(vm->native_id, seen.native_id, sizeof(vm->native_id));
        memcpy(vm->message, seen.message, sizeof(vm->message));
    }
    fed_vm_free(&seen);
    fed_rest_result_free(&res);
    buf_free(&path);
    return rc;
}

/* Polls until vm is in want with no action pending. */
int tb_wait_state(struct tb_ctx *c, struct fed_vm *vm, enum fed_vm_state want, int64_t deadline,
                  struct fed_error *err)
{
    for (;;) {
        if (tb_status(c, vm, err))
            return -1;
        if (vm->state == want && vm->target_action == FED_ACT_NONE)
            return 0;
        if (vm->state == FED_VM_FAILED || (vm->state == FED_VM_TERMINATED && want != vm->state))
            return fed_fail(err, FED_EBACKEND, "wait", 0, "vm %s/%s/%s became %s instead of %s%s%s",
                            vm->ns, vm->mci, vm->id, fed_vm_state_name(vm->state),
                            fed_vm_state_name(want), vm->message[0] ? ": " : "", vm->message);
        if (!remaining_ms(deadline))
            return fed_fail(err, FED_ETIMEOUT, "wait", 0,
                            "vm %s/%s/%s is still %s (waiting for %s) after %lld ms", vm->ns,
                            vm->mci, vm->id, fed_vm_state_name(vm->state), fed_vm_state_name(want),
                            (long long)c->o->action_timeout_ms);
        int64_t wait = remaining_ms(deadline);
        fed_sleep_ms(wait < c->o->poll_ms ? wait : c->o->poll_ms);
    }
}

/* ---- actions ---- */

static int control(struct tb_ctx *c, struct fed_vm *vm, const char *action, struct fed_error *err)
{
    struct dsf_buf path = {0};
    buf_puts(&path, "/ns");
    tb_seg(&path, vm->ns);
    buf_puts(&path, "/control");
    tb_seg(&path, c->d->mci);
    tb_seg(&path, vm->mci);
    tb_seg(&path, c->d->vm);
    tb_seg(&path, vm->id);
    buf_printf(&path, "?action=%s", action);
    struct fed_rest_result res = {0};
    /* Not repeated on a timeout: a second reboot is not harmless. */
    int rc = path.oom ? tb_oom(err, action)
                      : tb_call(c, "GET", buf_cstr(&path), NULL, FED_REST_UNSAFE, 0, &res, err);
    fed_rest_result_free(&res);
    buf_free(&path);
    return rc;
}

static int act(struct tb_ctx *c, struct fed_vm *vm, const char *action, enum fed_vm_state want,
               struct fed_error *err)
{
    int64_t deadline = fed_now_ms() + c->o->action_timeout_ms;
    if (control(c, vm, action, err)) {
        struct fed_error ignored;
        tb_status(c, vm, &ignored); /* report what is there, not what was hoped for */
        return -1;
    }
    int rc = tb_wait_state(c, vm, want, deadline, err);
    if (rc == 0)
        log_info("vm %s/%s/%s: %s done, %s", vm->ns, vm->mci, vm->id, action,
                 fed_vm_state_name(vm->state));
    return rc;
}

static int tb_suspend(void *ctx, struct fed_vm *vm, struct fed_error *err)
{
    return act(ctx, vm, "suspend", FED_VM_SUSPENDED, err);
}

static int tb_resume(void *ctx, struct fed_vm *vm, struct fed_error *err)
{
    return act(ctx, vm, "resume", FED_VM_RUNNING, err);
}

static int tb_reboot(void *ctx, struct fed_vm *vm, struct fed_error *err)
{
    return act(ctx, vm, "reboot", FED_VM_RUNNING, err);
}

static int delete_object(struct tb_ctx *c, const struct fed_vm *vm, struct fed_error *err)
{
    struct dsf_buf path = {0};
    struct fed_rest_result res = {0};
    int rc = tb_call(c, "DELETE", vm_path(c, &path, vm), NULL, 0, 0, &res, err);
    if (rc && res.status == 404)
        rc = 0;
    fed_rest_result_free(&res);
    buf_free(&path);
    return rc;
}

static int tb_terminate(void *ctx, struct fed_vm *vm, struct fed_error *err)
{
    struct tb_ctx *c = ctx;
    if (act(c, vm, "terminate", FED_VM_TERMINATED, err))
        return -1;
    struct fed_error e;
    /* The VM is gone either way: a user left behind is reported, not a failed terminate. */
    if (fed_bus_revoke_vm(c->bus, vm->ns, vm->mci, vm->id, &e) < 0)
        log_error("%s/%s/%s terminated, but its broker user stays: %s", vm->ns, vm->mci, vm->id,
                  e.message);
    return c->o->delete_on_terminate ? delete_object(c, vm, err) : 0;
}

/* ---- reading MCIs ---- */

/* The MCI's VMs; *found = 0 (and no VMs) when Tumblebug does not know the MCI. */
int tb_get_mci_vms(struct tb_ctx *c, const char *ns, const char *mci, struct fed_vm **vms,
                   size_t *n, int *found, struct fed_error *err)
{
    struct dsf_buf path = {0};
    struct fed_rest_result res = {0};
    struct fed_error e = {0};
    *vms = NULL;
    *n = 0;
    *found = 1;
    int rc = tb_call(c, "GET", tb_mci_path(c, &path, ns, mci, NULL, NULL), NULL, 0, 0, &res, &e);
    if (rc && res.status == 404) {
        *found = 0;
        rc = 0;
    } else if (rc) {
        *err = e;
    } else {
        rc = tb_parse_mci_vms(res.body.data, res.body.len, ns, mci, vms, n, err);
    }
    fed_rest_result_free(&res);
    buf_free(&path);
    return rc;
}

void tb_free_vms(struct fed_vm *vms, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fed_vm_free(&vms[i]);
    free(vms);
}

static int tb_list(void *ctx, const char *ns, const char *mci, struct fed_vm **vms, size_t *n,
                   struct fed_error *err)
{
    int found;
    return tb_get_mci_vms(ctx, ns, mci, vms, n, &found, err);
}

/* Ids of subgroup sg in vms, sorted. */
size_t tb_subgroup_ids(const struct fed_vm *vms, size_t n, const char *sg, const char **out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(vms[i].subgroup, sg))
            continue;
        size_t j = k++;
        /* Insertion by "natural" order: g1-2 before g1-10. */
        while (j > 0 &&
               (strlen(out[j - 1]) > strlen(vms[i].id) ||
                (strlen(out[j - 1]) == strlen(vms[i].id) && strcmp(out[j - 1], vms[i].id) > 0))) {
            out[j] = out[j - 1];
            j--;
        }
        out[j] = vms[i].id;
    }
    return k;
}

int tb_known(const struct fed_vm *vms, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(vms[i].id, id))
            return 1;
    return 0;
}

/* Is sg one of the MCI's subgroups (GET .../subgroup: {"output": [ids]})? */
int tb_has_subgroup(struct tb_ctx *c, const char *ns, const char *mci, const char *sg, int *exists,
                    struct fed_error *err)
{
    struct dsf_buf path = {0};
    struct fed_rest_result res = {0};
    char **ids = NULL;
    size_t n = 0;
    *exists = 0;
    int rc = tb_call(c, "GET", tb_mci_path(c, &path, ns, mci, c->d->subgroup, NULL), NULL, 0, 0,
                     &res, err);
    if (rc == 0)
        rc = tb_parse_id_list(res.body.data, res.body.len, &ids, &n, err);
    for (size_t i = 0; rc == 0 && i < n; i++)
        *exists |= !strcmp(ids[i], sg);
    fed_names_free(ids, n);
    fed_rest_result_free(&res);
    buf_free(&path);
    return rc;
}

static int tb_delete_mci(void *ctx, const char *ns, const char *mci, struct fed_error *err)
{
    struct tb_ctx *c = ctx;
    struct dsf_buf path = {0};
    struct fed_rest_result res = {0};
    tb_mci_path(c, &path, ns, mci, NULL, NULL);
    buf_puts(&path, "?option=terminate");
    int rc =
        tb_call(c, "DELETE", buf_cstr(&path), NULL, 0, (long)c->o->create_timeout_ms, &res, err);
    if (rc && res.status == 404)
        rc = 0;
    fed_rest_result_free(&res);
    buf_free(&path);
    return rc;
}

const struct fed_driver fed_driver_tumblebug = {
    .name = "tumblebug",
    .summary = "CB-Tumblebug REST API (v0.11 mci/vm paths, or v0.13 infra/node)",
    .keys = tb_keys,
    .options_size = sizeof(struct tb_options),
    .open = tb_open,
    .close = tb_close,
    .create_vm = tb_create_vm,
    .suspend = tb_suspend,
    .resume = tb_resume,
    .reboot = tb_reboot,
    .terminate = tb_terminate,
    .status = tb_status,
    .list = tb_list,
    .create_mci = tb_create_mci,
    .delete_mci = tb_delete_mci,
    .scale_out = tb_scale_out,
};
