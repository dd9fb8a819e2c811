/* Creating Tumblebug VMs: a whole MCI (mciDynamic), one VM into a subgroup (vmDynamic) and
 * Tumblebug's own subgroup scale out, each waiting until the new VMs are Running and
 * recording every VM Tumblebug made, also when the request failed part way. */
#define DSF_MODULE "fed-tumblebug"
#include "common/log.h"
#include "federation/api_json.h"
#include "federation/driver.h"
#include "federation/drivers/tumblebug.h"
#include "federation/rest.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int create_each(struct tb_ctx *c, const char *desc, struct fed_vm *vms, size_t n,
                       struct fed_error *err);

static json_t *labels_json(const struct fed_vm_spec *s)
{
    json_t *l = json_object();
    for (size_t i = 0; l && i < s->nlabels; i++)
        json_object_set_new(l, s->labels[i].key, json_string(s->labels[i].value));
    return l;
}

/* One subgroup request: Tumblebug's TbVmDynamicReq (v0.11) or its v0.13 renaming, with the
 * VM's user data (ud, may be NULL) when the subgroup is one VM. */
static json_t *subgroup_req(struct tb_ctx *c, const char *sg, int size, const struct fed_vm_spec *s,
                            const char *ud)
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
    if (ud)
        json_object_set_new(o, "userData", json_string(ud));
    return o;
}

static int post_json(struct tb_ctx *c, const char *path, json_t *body, struct fed_rest_result *res,
                     struct fed_error *err)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text)
        return tb_oom(err, path);
    int rc =
        tb_call(c, "POST", path, text, FED_REST_UNSAFE, (long)c->o->create_timeout_ms, res, err);
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

/* POST .../mciDynamic with every subgroup of vms[] (ud: the user data of a single VM). */
static int post_mci_dynamic(struct tb_ctx *c, const char *ns, const char *mci, const char *desc,
                            const struct fed_vm *vms, size_t n, const size_t *firsts, size_t nsg,
                            const char *ud, struct fed_error *err)
{
    json_t *list = json_array();
    for (size_t i = 0; list && i < nsg; i++) {
        const struct fed_vm *v = &vms[firsts[i]];
        json_array_append_new(
            list, subgroup_req(c, v->subgroup, count_in(vms, n, v->subgroup), &v->spec, ud));
    }
    json_t *body = json_pack("{s:s, s:s, s:s, s:o}", "name", mci, "description", desc ? desc : "",
                             "installMonAgent", "no", c->d->req_vms, list);
    struct dsf_buf path = {0};
    buf_puts(&path, "/ns");
    tb_seg(&path, ns);
    tb_seg(&path, c->d->mci_dynamic);
    struct fed_rest_result res = {0};
    int rc = post_json(c, buf_cstr(&path), body, &res, err);
    fed_rest_result_free(&res);
    buf_free(&path);
    return rc;
}

/* POST .../vmDynamic: a new subgroup of size VMs in an existing MCI. */
static int post_vm_dynamic(struct tb_ctx *c, const struct fed_vm *vm, const char *sg, int size,
                           const char *ud, struct fed_error *err)
{
    struct dsf_buf path = {0};
    struct fed_rest_result res = {0};
    tb_mci_path(c, &path, vm->ns, vm->mci, c->d->vm_dynamic, NULL);
    int rc = post_json(c, buf_cstr(&path), subgroup_req(c, sg, size, &vm->spec, ud), &res, err);
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
        return tb_oom(err, "create");
    size_t k = tb_subgroup_ids(after, nafter, sg, ids), t = 0;
    for (size_t i = 0; i < k && t < ntargets; i++)
        if (!tb_known(before, nbefore, ids[i]))
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
        if (tb_wait_state(c, vms[i], FED_VM_RUNNING, deadline, &e) && rc == 0) {
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
    int rc = ptrs ? tb_get_mci_vms(c, vms[0].ns, vms[0].mci, &after, &nafter, &found, err)
                  : tb_oom(err, "create");
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
    tb_free_vms(after, nafter);
    free(ptrs);
    return rc;
}

/*
 * Several subgroups at once: mciDynamic for a new MCI; for one Tumblebug already has, one
 * vmDynamic per subgroup (mciDynamic would be refused: the MCI exists).
 */
int tb_create_mci(void *ctx, const char *ns, const char *mci, const char *description,
                  struct fed_vm *vms, size_t n, struct fed_error *err)
{
    struct tb_ctx *c = ctx;
    if (c->ud_template)
        return create_each(c, description, vms, n, err);
    struct fed_vm *before = NULL;
    size_t nbefore = 0, *firsts = calloc(n + 1, sizeof(*firsts));
    int found = 0;
    if (!firsts || !n) {
        free(firsts);
        return n ? tb_oom(err, "create mci") : 0;
    }
    size_t nsg = first_of_subgroups(vms, n, firsts);
    int rc = tb_get_mci_vms(c, ns, mci, &before, &nbefore, &found, err);
    if (rc == 0 && !found)
        rc = post_mci_dynamic(c, ns, mci, description, vms, n, firsts, nsg, NULL, err);
    for (size_t g = 0; rc == 0 && found && g < nsg; g++) {
        const struct fed_vm *v = &vms[firsts[g]];
        rc = post_vm_dynamic(c, v, v->subgroup, count_in(vms, n, v->subgroup), NULL, err);
    }
    if (rc == 0)
        rc = adopt_all(c, vms, n, firsts, nsg, before, nbefore, err);
    tb_free_vms(before, nbefore);
    free(firsts);
    return rc;
}

/* POST .../subgroup/{sg} {"numVMsToAdd": n} (with the user data ud of a single VM). */
static int post_scale_out(struct tb_ctx *c, const char *ns, const char *mci, const char *sg, int n,
                          const char *ud, struct fed_error *err)
{
    char num[16];
    snprintf(num, sizeof(num), "%d", n);
    json_t *body = c->d->add_as_number ? json_pack("{s:i}", c->d->add_key, n)
                                       : json_pack("{s:s}", c->d->add_key, num);
    if (body && ud)
        json_object_set_new(body, "userData", json_string(ud));
    struct dsf_buf path = {0};
    struct fed_rest_result res = {0};
    int rc = post_json(c, tb_mci_path(c, &path, ns, mci, c->d->subgroup, sg), body, &res, err);
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
        if (tb_has_subgroup(c, vm->ns, vm->mci, candidates[i], &exists, err))
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

/* The id Tumblebug gives the next VM of subgroup sg: <sg>-1 in a new subgroup, one past the
 * highest index in an existing one. */
static void next_tb_id(const struct fed_vm *vms, size_t n, const char *sg, int exists, char *out,
                       size_t len)
{
    long top = 0;
    size_t sl = strlen(sg);
    for (size_t i = 0; exists && i < n; i++) {
        const char *id = vms[i].id;
        char *end;
        if (strcmp(vms[i].subgroup, sg) || strncmp(id, sg, sl) || id[sl] != '-')
            continue;
        long k = strtol(id + sl + 1, &end, 10);
        if (!*end && k > top)
            top = k;
    }
    snprintf(out, len, "%s-%ld", sg, top + 1);
}

/* The request that makes one VM in subgroup sg: mciDynamic for a new MCI, scale out of an
 * existing subgroup, vmDynamic for a new one. */
static int post_one(struct tb_ctx *c, struct fed_vm *vm, const char *desc, const char *sg,
                    int found, int scale, const char *ud, struct fed_error *err)
{
    static const size_t first = 0;
    if (!found)
        return post_mci_dynamic(c, vm->ns, vm->mci, desc, vm, 1, &first, 1, ud, err);
    return scale ? post_scale_out(c, vm->ns, vm->mci, sg, 1, ud, err)
                 : post_vm_dynamic(c, vm, sg, 1, ud, err);
}

/*
 * One VM, without waiting for it: the VM's user data names the id Tumblebug will give it
 * (and carries the credentials granted to it), so that id is predicted and checked after.
 * *made is set once Tumblebug has the VM (vm->id is then its name), also when a later check
 * fails. scale_only: into the existing subgroup vm->subgroup (native scale out).
 */
static int create_one(struct tb_ctx *c, struct fed_vm *vm, const char *desc, int scale_only,
                      int *made, struct fed_error *err)
{
    struct fed_vm *before = NULL, *after = NULL;
    size_t nbefore = 0, nafter = 0;
    int found, scale = 0;
    char sg[FED_NAME_MAX], want[FED_NAME_MAX], *ud = NULL;
    struct fed_error e;
    snprintf(sg, sizeof(sg), "%s", vm->subgroup);
    *made = 0;
    int rc = tb_get_mci_vms(c, vm->ns, vm->mci, &before, &nbefore, &found, err);
    if (rc == 0 && scale_only)
        rc = found ? (scale = 1, 0)
                   : fed_fail(err, FED_ENOTFOUND, "scale out", 0, "Tumblebug has no MCI %s/%s",
                              vm->ns, vm->mci);
    else if (rc == 0 && found)
        rc = pick_subgroup(c, vm, before, nbefore, sg, sizeof(sg), &scale, err);
    if (rc == 0) {
        next_tb_id(before, nbefore, sg, scale, want, sizeof(want));
        rc = tb_user_data(c, vm, want, &ud, err);
    }
    int sent_ud = ud != NULL;
    if (rc == 0) {
        rc = post_one(c, vm, desc, sg, found, scale, ud, err);
        tb_user_data_free(ud);
    }
    if (rc == 0)
        rc = tb_get_mci_vms(c, vm->ns, vm->mci, &after, &nafter, &found, err);
    struct fed_vm *one = vm;
    if (rc == 0 &&
        (rc = adopt_new_ids(&one, 1, sg, before, nbefore, after, nafter, NULL, err)) == 0)
        *made = 1;
    if (rc == 0 && sent_ud && strcmp(vm->id, want))
        rc = fed_fail(err, FED_EBACKEND, "create", 0,
                      "Tumblebug named the new VM %s, but its user data was made for %s: its "
                      "agent reports under the wrong name; terminate it",
                      vm->id, want);
    if (rc < 0 && sent_ud && fed_bus_revoke_vm(c->bus, vm->ns, vm->mci, want, &e) < 0)
        log_warn("%s/%s/%s: %s", vm->ns, vm->mci, want, e.message);
    if (rc == 0 && strcmp(sg, vm->subgroup) && fed_vm_data_set_str(vm, "tb_subgroup", sg))
        rc = fed_fail(err, FED_EIO, "create", 0, "driver data of %s too large", vm->id);
    tb_free_vms(before, nbefore);
    tb_free_vms(after, nafter);
    return rc;
}

/*
 * One VM into an MCI: a new MCI through mciDynamic, a new subgroup through vmDynamic, an
 * existing subgroup through its scale out. Tumblebug names the VM (<subgroup>-<i>); the
 * Tumblebug subgroup, when not the model's, is kept in driver_data as "tb_subgroup".
 */
int tb_create_vm(void *ctx, struct fed_vm *vm, struct fed_error *err)
{
    struct tb_ctx *c = ctx;
    struct fed_vm *one = vm;
    int made;
    if (create_one(c, vm, "", 0, &made, err) < 0)
        return -1;
    return wait_all_running(c, &one, 1, err);
}

/* With user data, each VM has its own: one request per VM, then they are waited for. */
static int create_each(struct tb_ctx *c, const char *desc, struct fed_vm *vms, size_t n,
                       struct fed_error *err)
{
    struct fed_vm **made = calloc(n, sizeof(*made));
    size_t nmade = 0;
    int rc = made ? 0 : tb_oom(err, "create");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        int one;
        rc = create_one(c, &vms[i], desc, 0, &one, err);
        if (one)
            made[nmade++] = &vms[i];
    }
    struct fed_error e;
    if (nmade && wait_all_running(c, made, nmade, rc == 0 ? err : &e) < 0)
        rc = -1;
    free(made);
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
            return tb_oom(err, "scale out");
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
/* With user data: n scale outs of one VM, each with its own (see create_one). */
static int scale_each(struct tb_ctx *c, struct fed_vm *out, int n, struct fed_vm **ptrs,
                      size_t *named, struct fed_error *err)
{
    int rc = 0;
    for (int i = 0; rc == 0 && i < n; i++) {
        int one;
        rc = create_one(c, &out[i], "", 1, &one, err);
        if (one)
            ptrs[(*named)++] = &out[i];
    }
    struct fed_error e;
    if (*named && wait_all_running(c, ptrs, *named, rc == 0 ? err : &e) < 0)
        rc = -1;
    return rc;
}

int tb_scale_out(void *ctx, const char *ns, const char *mci, const char *subgroup, int n,
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
        out && ptrs ? init_new_vms(out, n, ns, mci, subgroup, tmpl, err) : tb_oom(err, "scale out");
    int each = rc == 0 && c->ud_template;
    if (each)
        rc = scale_each(c, out, n, ptrs, &named, err);
    if (rc == 0 && !each)
        rc = tb_get_mci_vms(c, ns, mci, &before, &nbefore, &found, err);
    if (rc == 0 && !each) {
        rc = post_scale_out(c, ns, mci, subgroup, n, NULL, err);
        struct fed_error e2;
        if (tb_get_mci_vms(c, ns, mci, &after, &nafter, &found, rc == 0 ? err : &e2) < 0)
            rc = -1;
        for (int i = 0; i < n; i++)
            ptrs[i] = &out[i];
        struct fed_error e3;
        if (adopt_new_ids(ptrs, (size_t)n, subgroup, before, nbefore, after, nafter, &named,
                          rc == 0 ? err : &e3) < 0)
            rc = -1;
    }
    if (rc == 0 && !each)
        rc = wait_all_running(c, ptrs, (size_t)n, err);
    else if (rc < 0 && named > 0)
        log_warn("scale out %s/%s/%s failed after Tumblebug created %zu VM(s): returned to be "
                 "recorded",
                 ns, mci, subgroup, named);
    tb_free_vms(before, nbefore);
    tb_free_vms(after, nafter);
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
