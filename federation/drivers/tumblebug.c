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
#include "federation/rest.h"

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tb_options {
    char *url, *user, *password, *api;
    int64_t timeout_ms, create_timeout_ms, action_timeout_ms, poll_ms, retries;
    int delete_on_terminate;
};

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
    {"delete_on_terminate", DSF_CFG_BOOL, "true", K(delete_on_terminate),
     "after terminating a VM, delete its Tumblebug object (DELETE .../vm/{vm})", 0, 0},
    DSF_CFG_END,
};
#undef K

/* What changed between the path styles. */
struct tb_dialect {
    const char *mci, *vm, *subgroup, *vm_dynamic, *mci_dynamic;
    const char *req_vms, *size_key, *spec_key, *image_key, *add_key;
    int add_as_number;
};

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

struct tb_ctx {
    const struct tb_options *o;
    const struct tb_dialect *d;
    struct fed_rest *rest;
};

/* ---- plumbing ---- */

static int call(struct tb_ctx *c, const char *method, const char *path, const char *body, int flags,
                long timeout_ms, struct fed_rest_result *res, struct fed_error *err)
{
    struct fed_rest_call rc = {
        .method = method, .path = path, .body = body, .flags = flags, .timeout_ms = timeout_ms};
    if (fed_rest_do(c->rest, &rc, res, NULL, 0) == 0)
        return 0;
    return fed_rest_fail(err, c->rest, &rc, res);
}

static void seg(struct dsf_buf *b, const char *s)
{
    buf_putc(b, '/');
    fed_rest_escape(b, s);
}

/* /ns/{ns}/{mci}/{m}[/{sub}/{id}] */
static const char *mci_path(struct tb_ctx *c, struct dsf_buf *b, const char *ns, const char *mci,
                            const char *sub, const char *id)
{
    buf_puts(b, "/ns");
    seg(b, ns);
    seg(b, c->d->mci);
    seg(b, mci);
    if (sub) {
        seg(b, sub);
        if (id)
            seg(b, id);
    }
    return buf_cstr(b);
}

static const char *vm_path(struct tb_ctx *c, struct dsf_buf *b, const struct fed_vm *vm)
{
    return mci_path(c, b, vm->ns, vm->mci, c->d->vm, vm->id);
}

static int oom(struct fed_error *err, const char *what)
{
    return fed_fail(err, FED_EIO, what, 0, "out of memory");
}

static int64_t remaining_ms(int64_t deadline)
{
    int64_t left = deadline - fed_now_ms();
    return left > 0 ? left : 0;
}

/* ---- open / close ---- */

static void *tb_open(const void *options, const char *state_dir, struct fed_error *err)
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
        oom(err, "open tumblebug");
        return NULL;
    }
    c->o = o;
    c->d = d;
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
    int rc = call(c, "GET", vm_path(c, &path, vm), NULL, 0, 0, &res, &e);
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
static int wait_state(struct tb_ctx *c, struct fed_vm *vm, enum fed_vm_state want, int64_t deadline,
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
    seg(&path, vm->ns);
    buf_puts(&path, "/control");
    seg(&path, c->d->mci);
    seg(&path, vm->mci);
    seg(&path, c->d->vm);
    seg(&path, vm->id);
    buf_printf(&path, "?action=%s", action);
    struct fed_rest_result res = {0};
    /* Not repeated on a timeout: a second reboot is not harmless. */
    int rc = path.oom ? oom(err, action)
                      : call(c, "GET", buf_cstr(&path), NULL, FED_REST_UNSAFE, 0, &res, err);
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
    int rc = wait_state(c, vm, want, deadline, err);
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
    int rc = call(c, "DELETE", vm_path(c, &path, vm), NULL, 0, 0, &res, err);
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
    return c->o->delete_on_terminate ? delete_object(c, vm, err) : 0;
}

/* ---- reading MCIs ---- */

/* The MCI's VMs; *found = 0 (and no VMs) when Tumblebug does not know the MCI. */
static int get_mci_vms(struct tb_ctx *c, const char *ns, const char *mci, struct fed_vm **vms,
                       size_t *n, int *found, struct fed_error *err)
{
    struct dsf_buf path = {0};
    struct fed_rest_result res = {0};
    struct fed_error e = {0};
    *vms = NULL;
    *n = 0;
    *found = 1;
    int rc = call(c, "GET", mci_path(c, &path, ns, mci, NULL, NULL), NULL, 0, 0, &res, &e);
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

static void free_vms(struct fed_vm *vms, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fed_vm_free(&vms[i]);
    free(vms);
}

static int tb_list(void *ctx, const char *ns, const char *mci, struct fed_vm **vms, size_t *n,
                   struct fed_error *err)
{
    int found;
    return get_mci_vms(ctx, ns, mci, vms, n, &found, err);
}

/* Ids of subgroup sg in vms, sorted. */
static size_t subgroup_ids(const struct fed_vm *vms, size_t n, const char *sg, const char **out)
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

static int known(const struct fed_vm *vms, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(vms[i].id, id))
            return 1;
    return 0;
}

/* Is sg one of the MCI's subgroups (GET .../subgroup: {"output": [ids]})? */
static int has_subgroup(struct tb_ctx *c, const char *ns, const char *mci, const char *sg,
                        int *exists, struct fed_error *err)
{
    struct dsf_buf path = {0};
    struct fed_rest_result res = {0};
    char **ids = NULL;
    size_t n = 0;
    *exists = 0;
    int rc =
        call(c, "GET", mci_path(c, &path, ns, mci, c->d->subgroup, NULL), NULL, 0, 0, &res, err);
    if (rc == 0)
        rc = tb_parse_id_list(res.body.data, res.body.len, &ids, &n, err);
    for (size_t i = 0; rc == 0 && i < n; i++)
        *exists |= !strcmp(ids[i], sg);
    fed_names_free(ids, n);
    fed_rest_result_free(&res);
    buf_free(&path);
    return rc;
}

/* ---- creating ---- */

static json_t *labels_json(const struct fed_vm_spec *s)
{
    json_t *l = json_object();
    for (size_t i = 0; l && i < s->nlabels; i++)
        json_object_set_new(l, s->labels[i].key, json_string(s->labels[i].value));
    return l;
}

/* One subgroup request: Tumblebug's TbVmDynamicReq (v0.11) or its v0.13 renaming. */
static json_t *subgroup_req(struct tb_ctx *c, const char *sg, int size, const struct fed_vm_spec *s)
{
    char n[16];
    snprintf(n, sizeof(n), "%d", size);
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:s, s:o}", "name", sg, c->d->size_key, n, c->d->spec_key,
                  s->common_spec, c->d->image_key, s->common_image, "label", labels_json(s));
    if (!o)
        return NULL;
    if (s->connection[0])
        json_object_set_new(o, "connectionName", json_string(s->connection));
    if (s->root_disk_type[0])
        json_object_set_new(o, "rootDiskType", json_string(s->root_disk_type));
    if (s->root_disk_size_gb > 0) {
        snprintf(n, sizeof(n), "%d", s->root_disk_size_gb);
        json_object_set_new(o, "rootDiskSize", json_string(n));
    }
    return o;
}

static int post_json(struct tb_ctx *c, const char *path, json_t *body, struct fed_rest_result *res,
                     struct fed_error *err)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text)
        return oom(err, path);
    int rc = call(c, "POST", path, text, FED_REST_UNSAFE, (long)c->o->create_timeout_ms, res, err);
    free(text);
    return rc;
}

/* The subgroups of vms[] in order of appearance: the index of each one's first VM. */
static size_t first_of_subgroups(const struct fed_vm *vms, size_t n, size_t *firsts)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        size_t j = 0;
        while (j < i && strcmp(vms[j].subgroup, vms[i].subgroup))
            j++;
        if (j == i)
            firsts[k++] = i;
    }
    return k;
}

static int count_in(const struct fed_vm *vms, size_t n, const char *sg)
{
    int c = 0;
    for (size_t i = 0; i < n; i++)
        c += !strcmp(vms[i].subgroup, sg);
    return c;
}

/* POST .../mciDynamic with every subgroup of vms[]. */
static int post_mci_dynamic(struct tb_ctx *c, const char *ns, const char *mci, const char *desc,
                            const struct fed_vm *vms, size_t n, const size_t *firsts, size_t nsg,
                            struct fed_error *err)
{
    json_t *list = json_array();
    for (size_t i = 0; list && i < nsg; i++) {
        const struct fed_vm *v = &vms[firsts[i]];
        json_array_append_new(
            list, subgroup_req(c, v->subgroup, count_in(vms, n, v->subgroup), &v->spec));
    }
    json_t *body = json_pack("{s:s, s:s, s:s, s:o}", "name", mci, "description", desc ? desc : "",
                             "installMonAgent", "no", c->d->req_vms, list);
    struct dsf_buf path = {0};
    buf_puts(&path, "/ns");
    seg(&path, ns);
    seg(&path, c->d->mci_dynamic);
    struct fed_rest_result res = {0};
    int rc = post_json(c, buf_cstr(&path), body, &res, err);
    fed_rest_result_free(&res);
    buf_free(&path);
    return rc;
}

/* POST .../vmDynamic: a new subgroup of size VMs in an existing MCI. */
static int post_vm_dynamic(struct tb_ctx *c, const struct fed_vm *vm, const char *sg, int size,
                           struct fed_error *err)
{
    struct dsf_buf path = {0};
    struct fed_rest_result res = {0};
    mci_path(c, &path, vm->ns, vm->mci, c->d->vm_dynamic, NULL);
    int rc = post_json(c, buf_cstr(&path), subgroup_req(c, sg, size, &vm->spec), &res, err);
    fed_rest_result_free(&res);
    buf_free(&path);
    return rc;
}

/* Gives vms[] (all of subgroup sg, in order) the ids Tumblebug chose that are not in before;
 * *adopted (may be NULL) receives how many got one, also when too few were found. */
static int adopt_new_ids(struct fed_vm **targets, size_t ntargets, const char *sg,
                         const struct fed_vm *before, size_t nbefore, const struct fed_vm *after,
                         size_t nafter, size_t *adopted, struct fed_error *err)
{
    if (adopted)
        *adopted = 0;
    const char **ids = calloc(nafter + 1, sizeof(*ids));
    if (!ids)
        return oom(err, "create");
    size_t k = subgroup_ids(after, nafter, sg, ids), t = 0;
    for (size_t i = 0; i < k && t < ntargets; i++)
        if (!known(before, nbefore, ids[i]))
            snprintf(targets[t++]->id, sizeof(targets[0]->id), "%s", ids[i]);
    free(ids);
    if (adopted)
        *adopted = t;
    if (t < ntargets)
        return fed_fail(err, FED_EBACKEND, "create", 0,
                        "subgroup %s: Tumblebug lists %zu new VM(s), %zu were asked for", sg, t,
                        ntargets);
    return 0;
}

static int wait_all_running(struct tb_ctx *c, struct fed_vm **vms, size_t n, struct fed_error *err)
{
    int64_t deadline = fed_now_ms() + c->o->action_timeout_ms;
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        struct fed_error e = {0};
        if (wait_state(c, vms[i], FED_VM_RUNNING, deadline, &e) && rc == 0) {
            rc = -1;
            if (err)
                *err = e;
        }
    }
    return rc;
}

/* Renames each subgroup's VMs after what Tumblebug created, then waits for them. */
static int adopt_all(struct tb_ctx *c, struct fed_vm *vms, size_t n, const size_t *firsts,
                     size_t nsg, const struct fed_vm *before, size_t nbefore, struct fed_error *err)
{
    struct fed_vm *after = NULL;
    size_t nafter = 0;
    int found;
    struct fed_vm **ptrs = calloc(n + 1, sizeof(*ptrs));
    int rc = ptrs ? get_mci_vms(c, vms[0].ns, vms[0].mci, &after, &nafter, &found, err)
                  : oom(err, "create");
    for (size_t g = 0; rc == 0 && g < nsg; g++) {
        const char *sg = vms[firsts[g]].subgroup;
        size_t m = 0;
        for (size_t j = 0; j < n; j++)
            if (!strcmp(vms[j].subgroup, sg))
                ptrs[m++] = &vms[j];
        rc = adopt_new_ids(ptrs, m, sg, before, nbefore, after, nafter, NULL, err);
    }
    for (size_t i = 0; rc == 0 && i < n; i++)
        ptrs[i] = &vms[i];
    if (rc == 0)
        rc = wait_all_running(c, ptrs, n, err);
    free_vms(after, nafter);
    free(ptrs);
    return rc;
}

/*
 * Several subgroups at once: mciDynamic for a new MCI; for one Tumblebug already has, one
 * vmDynamic per subgroup (mciDynamic would be refused: the MCI exists).
 */
static int tb_create_mci(void *ctx, const char *ns, const char *mci, const char *description,
                         struct fed_vm *vms, size_t n, struct fed_error *err)
{
    struct tb_ctx *c = ctx;
    struct fed_vm *before = NULL;
    size_t nbefore = 0, *firsts = calloc(n + 1, sizeof(*firsts));
    int found = 0;
    if (!firsts || !n) {
        free(firsts);
        return n ? oom(err, "create mci") : 0;
    }
    size_t nsg = first_of_subgroups(vms, n, firsts);
    int rc = get_mci_vms(c, ns, mci, &before, &nbefore, &found, err);
    if (rc == 0 && !found)
        rc = post_mci_dynamic(c, ns, mci, description, vms, n, firsts, nsg, err);
    for (size_t g = 0; rc == 0 && found && g < nsg; g++) {
        const struct fed_vm *v = &vms[firsts[g]];
        rc = post_vm_dynamic(c, v, v->subgroup, count_in(vms, n, v->subgroup), err);
    }
    if (rc == 0)
        rc = adopt_all(c, vms, n, firsts, nsg, before, nbefore, err);
    free_vms(before, nbefore);
    free(firsts);
    return rc;
}

static int post_scale_out(struct tb_ctx *c, const char *ns, const char *mci, const char *sg, int n,
                          struct fed_error *err)
{
    char num[16];
    snprintf(num, sizeof(num), "%d", n);
    json_t *body = c->d->add_as_number ? json_pack("{s:i}", c->d->add_key, n)
                                       : json_pack("{s:s}", c->d->add_key, num);
    struct dsf_buf path = {0};
    struct fed_rest_result res = {0};
    int rc = post_json(c, mci_path(c, &path, ns, mci, c->d->subgroup, sg), body, &res, err);
    fed_rest_result_free(&res);
    buf_free(&path);
    return rc;
}

/* Would a scale out of Tumblebug subgroup sg make a VM of vm's spec? Its members tell. */
static int same_spec(const struct fed_vm *vms, size_t n, const char *sg, const struct fed_vm *vm)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(vms[i].subgroup, sg))
            return !vm->spec.common_spec[0] ||
                   !strcmp(vms[i].spec.common_spec, vm->spec.common_spec);
    return 0;
}

/*
 * Which Tumblebug subgroup receives the VM. Subgroups are homogeneous, so the model's
 * subgroup is used only when it is new or its VMs have the same spec; a VM of another spec
 * (a migration to another region) gets a subgroup of its own, named after the VM.
 * *scale is 1 when the chosen subgroup exists (scale out), 0 when it is to be created.
 */
static int pick_subgroup(struct tb_ctx *c, const struct fed_vm *vm, const struct fed_vm *vms,
                         size_t n, char *sg, size_t sglen, int *scale, struct fed_error *err)
{
    const char *candidates[] = {vm->subgroup, vm->id};
    for (size_t i = 0; i < 2; i++) {
        int exists;
        if (has_subgroup(c, vm->ns, vm->mci, candidates[i], &exists, err))
            return -1;
        if (!exists || same_spec(vms, n, candidates[i], vm)) {
            snprintf(sg, sglen, "%s", candidates[i]);
            *scale = exists;
            return 0;
        }
    }
    return fed_fail(err, FED_EBACKEND, "create", 0,
                    "Tumblebug subgroups %s and %s both exist with another spec than %s",
                    vm->subgroup, vm->id, vm->spec.common_spec);
}

/*
 * One VM into an MCI: a new MCI through mciDynamic, a new subgroup through vmDynamic, an
 * existing subgroup through its scale out. Tumblebug names the VM (<subgroup>-<i>); the
 * Tumblebug subgroup, when not the model's, is kept in driver_data as "tb_subgroup".
 */
static int tb_create_vm(void *ctx, struct fed_vm *vm, struct fed_error *err)
{
    struct tb_ctx *c = ctx;
    struct fed_vm *before = NULL, *after = NULL;
    size_t nbefore = 0, nafter = 0;
    int found, scale = 0;
    char sg[FED_NAME_MAX];
    int rc = get_mci_vms(c, vm->ns, vm->mci, &before, &nbefore, &found, err);
    if (rc == 0 && !found)
        return tb_create_mci(ctx, vm->ns, vm->mci, "", vm, 1, err);
    if (rc == 0)
        rc = pick_subgroup(c, vm, before, nbefore, sg, sizeof(sg), &scale, err);
    if (rc == 0)
        rc = scale ? post_scale_out(c, vm->ns, vm->mci, sg, 1, err)
                   : post_vm_dynamic(c, vm, sg, 1, err);
    if (rc == 0)
        rc = get_mci_vms(c, vm->ns, vm->mci, &after, &nafter, &found, err);
    struct fed_vm *one = vm;
    if (rc == 0)
        rc = adopt_new_ids(&one, 1, sg, before, nbefore, after, nafter, NULL, err);
    if (rc == 0 && strcmp(sg, vm->subgroup) && fed_vm_data_set_str(vm, "tb_subgroup", sg))
        rc = fed_fail(err, FED_EIO, "create", 0, "driver data of %s too large", vm->id);
    if (rc == 0)
        rc = wait_all_running(c, &one, 1, err);
    free_vms(before, nbefore);
    free_vms(after, nafter);
    return rc;
}

/* The n VMs a scale out of subgroup asks for, before Tumblebug has named them. */
static int init_new_vms(struct fed_vm *out, int n, const char *ns, const char *mci,
                        const char *subgroup, const struct fed_vm_spec *tmpl, struct fed_error *err)
{
    for (int i = 0; i < n; i++) {
        struct fed_vm *v = &out[i];
        snprintf(v->ns, sizeof(v->ns), "%s", ns);
        snprintf(v->mci, sizeof(v->mci), "%s", mci);
        snprintf(v->subgroup, sizeof(v->subgroup), "%s", subgroup);
        v->autogen = 1;
        v->state = FED_VM_CREATING;
        v->target_action = FED_ACT_CREATE;
        v->target_status = FED_VM_RUNNING;
        if (tmpl && fed_vm_spec_copy(&v->spec, tmpl) < 0)
            return oom(err, "scale out");
        v->spec.size = 1;
    }
    return 0;
}

/*
 * POST .../subgroup/{sg} {"numVMsToAdd": n}, then the new VMs are named by comparing the
 * MCI's VM lists before and after, and waited for. Whatever Tumblebug created is returned,
 * also when a step after the POST fails (the POST itself may have timed out after the cloud
 * acted): the caller must know of every VM that exists.
 */
static int tb_scale_out(void *ctx, const char *ns, const char *mci, const char *subgroup, int n,
                        const struct fed_vm_spec *tmpl, struct fed_vm **vms, size_t *nvms,
                        struct fed_error *err)
{
    struct tb_ctx *c = ctx;
    struct fed_vm *before = NULL, *after = NULL;
    size_t nbefore = 0, nafter = 0, named = 0;
    int found;
    *vms = NULL;
    *nvms = 0;
    if (n < 1)
        return fed_fail(err, FED_EINVAL, "scale out", 0, "cannot add %d VMs", n);
    struct fed_vm *out = calloc((size_t)n, sizeof(*out));
    struct fed_vm **ptrs = calloc((size_t)n, sizeof(*ptrs));
    int rc =
        out && ptrs ? init_new_vms(out, n, ns, mci, subgroup, tmpl, err) : oom(err, "scale out");
    if (rc == 0)
        rc = get_mci_vms(c, ns, mci, &before, &nbefore, &found, err);
    if (rc == 0) {
        rc = post_scale_out(c, ns, mci, subgroup, n, err);
        struct fed_error e2;
        if (get_mci_vms(c, ns, mci, &after, &nafter, &found, rc == 0 ? err : &e2) < 0)
            rc = -1;
        for (int i = 0; i < n; i++)
            ptrs[i] = &out[i];
        struct fed_error e3;
        if (adopt_new_ids(ptrs, (size_t)n, subgroup, before, nbefore, after, nafter, &named,
                          rc == 0 ? err : &e3) < 0)
            rc = -1;
    }
    if (rc == 0)
        rc = wait_all_running(c, ptrs, (size_t)n, err);
    else if (named > 0)
        log_warn("scale out %s/%s/%s failed after Tumblebug created %zu VM(s): returned to be "
                 "recorded",
                 ns, mci, subgroup, named);
    free_vms(before, nbefore);
    free_vms(after, nafter);
    free(ptrs);
    if (out) {
        for (size_t i = named; i < (size_t)n; i++)
            fed_vm_free(&out[i]);
        if (named) {
            *vms = out;
            *nvms = named;
        } else {
            free(out);
        }
    }
    return rc;
}

static int tb_delete_mci(void *ctx, const char *ns, const char *mci, struct fed_error *err)
{
    struct tb_ctx *c = ctx;
    struct dsf_buf path = {0};
    struct fed_rest_result res = {0};
    mci_path(c, &path, ns, mci, NULL, NULL);
    buf_puts(&path, "?option=terminate");
    int rc = call(c, "DELETE", buf_cstr(&path), NULL, 0, (long)c->o->create_timeout_ms, &res, err);
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
