#include "federation/api_json.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bodies are bounded by the REST client; this bounds what one list may allocate. */
#define MAX_LIST_ITEMS 100000

static json_t *load(const char *text, size_t len, const char *call, struct fed_error *err)
{
    json_error_t je;
    json_t *root = json_loadb(text, len, 0, &je);
    if (!root) {
        fed_fail(err, FED_EBACKEND, call, 0, "not JSON: %s at line %d column %d", je.text, je.line,
                 je.column);
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        fed_fail(err, FED_EBACKEND, call, 0, "expected a JSON object");
        return NULL;
    }
    return root;
}

/* Copies a string field; absent or null leaves dst "". -1 for a wrong type or length. */
static int get_str(const json_t *o, const char *key, char *dst, size_t cap, const char *call,
                   struct fed_error *err)
{
    const json_t *v = json_object_get(o, key);
    dst[0] = '\0';
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return fed_fail(err, FED_EBACKEND, call, 0, "%s: expected a string", key);
    size_t n = json_string_length(v);
    if (n >= cap || memchr(json_string_value(v), '\0', n))
        return fed_fail(err, FED_EBACKEND, call, 0, "%s: longer than %zu characters or not text",
                        key, cap - 1);
    memcpy(dst, json_string_value(v), n + 1);
    return 0;
}

static const json_t *get_obj(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_object(v) ? v : NULL;
}

/* ====================================================================================== */
/* Kubernetes                                                                             */
/* ====================================================================================== */

#define CALL_PODS "parse PodList"
#define CALL_NODE "parse Node"
#define CALL_SCALE "parse Scale"

static void controller_kind(const json_t *meta, char *kind, size_t cap)
{
    size_t i;
    const json_t *ref;
    kind[0] = '\0';
    json_array_foreach(json_object_get(meta, "ownerReferences"), i, ref)
    {
        const char *k = json_string_value(json_object_get(ref, "kind"));
        if (!k)
            continue;
        /* The controller reference decides; any DaemonSet owner is enough to skip. */
        if (json_is_true(json_object_get(ref, "controller")) || !strcmp(k, "DaemonSet") || !kind[0])
            snprintf(kind, cap, "%s", k);
        if (!strcmp(k, "DaemonSet"))
            return;
    }
}

static int parse_pod(const json_t *item, struct k8s_pod *p, struct fed_error *err)
{
    memset(p, 0, sizeof(*p));
    const json_t *meta = get_obj(item, "metadata");
    if (!meta)
        return fed_fail(err, FED_EBACKEND, CALL_PODS, 0, "item without metadata");
    if (get_str(meta, "namespace", p->ns, sizeof(p->ns), CALL_PODS, err) ||
        get_str(meta, "name", p->name, sizeof(p->name), CALL_PODS, err) ||
        get_str(meta, "uid", p->uid, sizeof(p->uid), CALL_PODS, err))
        return -1;
    if (!p->ns[0] || !p->name[0])
        return fed_fail(err, FED_EBACKEND, CALL_PODS, 0, "pod without namespace or name");
    controller_kind(meta, p->owner_kind, sizeof(p->owner_kind));
    const json_t *ann = get_obj(meta, "annotations");
    p->mirror = ann && json_object_get(ann, "kubernetes.io/config.mirror") != NULL;
    const json_t *del = json_object_get(meta, "deletionTimestamp");
    p->terminating = del && !json_is_null(del);
    const json_t *status = get_obj(item, "status");
    if (status && get_str(status, "phase", p->phase, sizeof(p->phase), CALL_PODS, err))
        return -1;
    return 0;
}

static int pod_list_grow(struct k8s_pod_list *list, size_t extra, struct fed_error *err)
{
    if (list->n + extra > MAX_LIST_ITEMS)
        return fed_fail(err, FED_EBACKEND, CALL_PODS, 0, "more than %d pods", MAX_LIST_ITEMS);
    if (list->n + extra <= list->cap)
        return 0;
    size_t cap = list->cap ? list->cap : 16;
    while (cap < list->n + extra)
        cap *= 2;
    struct k8s_pod *g = realloc(list->pods, cap * sizeof(*g));
    if (!g)
        return fed_fail(err, FED_EIO, CALL_PODS, 0, "out of memory");
    list->pods = g;
    list->cap = cap;
    return 0;
}

int k8s_parse_pod_list(const char *text, size_t len, struct k8s_pod_list *list,
                       struct fed_error *err)
{
    json_t *root = load(text, len, CALL_PODS, err);
    if (!root)
        return -1;
    int rc = -1;
    const json_t *items = json_object_get(root, "items");
    const json_t *meta = get_obj(root, "metadata");
    list->cont[0] = '\0';
    if (items && !json_is_array(items) && !json_is_null(items)) {
        fed_fail(err, FED_EBACKEND, CALL_PODS, 0, "items: expected an array");
    } else if (meta && get_str(meta, "continue", list->cont, sizeof(list->cont), CALL_PODS, err)) {
        /* err set */
    } else if (pod_list_grow(list, json_array_size(items), err) == 0) {
        size_t i;
        const json_t *item;
        rc = 0;
        json_array_foreach(items, i, item)
        {
            if (parse_pod(item, &list->pods[list->n], err)) {
                rc = -1;
                break;
            }
            list->n++;
        }
    }
    json_decref(root);
    return rc;
}

void k8s_pod_list_free(struct k8s_pod_list *list)
{
    free(list->pods);
    memset(list, 0, sizeof(*list));
}

int k8s_pod_skipped_by_drain(const struct k8s_pod *p)
{
    return p->mirror || !strcmp(p->owner_kind, "DaemonSet");
}

static int ready_condition(const json_t *status)
{
    size_t i;
    const json_t *c;
    json_array_foreach(json_object_get(status, "conditions"), i, c)
    {
        const char *type = json_string_value(json_object_get(c, "type"));
        const char *st = json_string_value(json_object_get(c, "status"));
        if (type && !strcmp(type, "Ready"))
            return st && !strcmp(st, "True");
    }
    return -1;
}

int k8s_parse_node(const char *text, size_t len, struct k8s_node *out, struct fed_error *err)
{
    memset(out, 0, sizeof(*out));
    json_t *root = load(text, len, CALL_NODE, err);
    if (!root)
        return -1;
    int rc = -1;
    const json_t *meta = get_obj(root, "metadata");
    const json_t *spec = get_obj(root, "spec");
    const json_t *unsched = spec ? json_object_get(spec, "unschedulable") : NULL;
    if (!meta) {
        fed_fail(err, FED_EBACKEND, CALL_NODE, 0, "no metadata");
    } else if (get_str(meta, "name", out->name, sizeof(out->name), CALL_NODE, err) == 0) {
        if (unsched && !json_is_boolean(unsched) && !json_is_null(unsched)) {
            fed_fail(err, FED_EBACKEND, CALL_NODE, 0, "spec.unschedulable: expected a boolean");
        } else {
            out->unschedulable = json_is_true(unsched);
            out->ready = ready_condition(get_obj(root, "status"));
            rc = 0;
        }
    }
    json_decref(root);
    return rc;
}

int k8s_parse_scale(const char *text, size_t len, int *spec_replicas, int *status_replicas,
                    struct fed_error *err)
{
    json_t *root = load(text, len, CALL_SCALE, err);
    if (!root)
        return -1;
    const json_t *spec = get_obj(root, "spec");
    const json_t *status = get_obj(root, "status");
    const json_t *r = spec ? json_object_get(spec, "replicas") : NULL;
    const json_t *sr = status ? json_object_get(status, "replicas") : NULL;
    int rc = -1;
    json_int_t v = json_integer_value(r);
    if (r && !json_is_integer(r))
        fed_fail(err, FED_EBACKEND, CALL_SCALE, 0, "spec.replicas: expected an integer");
    else if (v < 0 || v > 1000000)
        fed_fail(err, FED_EBACKEND, CALL_SCALE, 0, "spec.replicas: %lld out of range",
                 (long long)v);
    else {
        /* An absent spec.replicas is 0 in a Scale: the API server omits zero values. */
        *spec_replicas = (int)v;
        json_int_t s = json_integer_value(sr);
        if (status_replicas)
            *status_replicas = json_is_integer(sr) && s >= 0 && s <= 1000000 ? (int)s : -1;
        rc = 0;
    }
    json_decref(root);
    return rc;
}

void k8s_status_message(const char *text, size_t len, char *message, size_t mlen, char *reason,
                        size_t rlen)
{
    message[0] = reason[0] = '\0';
    json_t *root = json_loadb(text, len, 0, NULL);
    const char *kind = json_string_value(json_object_get(root, "kind"));
    if (kind && !strcmp(kind, "Status")) {
        const char *m = json_string_value(json_object_get(root, "message"));
        const char *r = json_string_value(json_object_get(root, "reason"));
        snprintf(message, mlen, "%s", m ? m : "");
        snprintf(reason, rlen, "%s", r ? r : "");
    }
    json_decref(root);
}

/* ====================================================================================== */
/* CB-Tumblebug                                                                           */
/* ====================================================================================== */

#define CALL_VM "parse Tumblebug VM"
#define CALL_MCI "parse Tumblebug MCI"
#define CALL_IDS "parse Tumblebug id list"

/* Tumblebug states plus the newer provisioning ones, mapped onto the model's nine. */
static enum fed_vm_state tb_state(const char *s)
{
    enum fed_vm_state st;
    if (!s || !s[0])
        return FED_VM_UNDEFINED;
    if (fed_vm_state_parse(s, &st) == 0)
        return st;
    if (!strcasecmp(s, "Preparing") || !strcasecmp(s, "Prepared") || !strcasecmp(s, "Empty"))
        return FED_VM_CREATING;
    return FED_VM_UNDEFINED;
}

static int tb_first_str(const json_t *o, const char *const *keys, char *dst, size_t cap,
                        const char *call, struct fed_error *err)
{
    dst[0] = '\0';
    for (; *keys && !dst[0]; keys++)
        if (get_str(o, *keys, dst, cap, call, err))
            return -1;
    return 0;
}

static int tb_vm_from(const json_t *o, struct fed_vm *vm, const char *call, struct fed_error *err)
{
    static const char *const ip_keys[] = {"publicIP", "publicIp", "privateIP", "privateIp", NULL};
    static const char *const native_keys[] = {"cspResourceId", "cspVmId", "uid", NULL};
    static const char *const sg_keys[] = {"subGroupId", "nodeGroupId", NULL};
    char status[64], tstatus[64], taction[64];
    if (get_str(o, "id", vm->id, sizeof(vm->id), call, err) ||
        tb_first_str(o, sg_keys, vm->subgroup, sizeof(vm->subgroup), call, err) ||
        get_str(o, "status", status, sizeof(status), call, err) ||
        get_str(o, "targetStatus", tstatus, sizeof(tstatus), call, err) ||
        get_str(o, "targetAction", taction, sizeof(taction), call, err) ||
        tb_first_str(o, ip_keys, vm->address, sizeof(vm->address), call, err) ||
        tb_first_str(o, native_keys, vm->native_id, sizeof(vm->native_id), call, err) ||
        get_str(o, "systemMessage", vm->message, sizeof(vm->message), call, err) ||
        get_str(o, "connectionName", vm->spec.connection, sizeof(vm->spec.connection), call, err) ||
        get_str(o, "specId", vm->spec.common_spec, sizeof(vm->spec.common_spec), call, err))
        return -1;
    if (!vm->id[0])
        return fed_fail(err, FED_EBACKEND, call, 0, "VM without id");
    if (!status[0])
        return fed_fail(err, FED_EBACKEND, call, 0, "VM %s without status", vm->id);
    vm->state = tb_state(status);
    vm->target_status = tb_state(tstatus);
    if (fed_action_parse(taction, &vm->target_action) != 0)
        vm->target_action = FED_ACT_NONE;
    return 0;
}

int tb_parse_vm(const char *text, size_t len, struct fed_vm *vm, struct fed_error *err)
{
    json_t *root = load(text, len, CALL_VM, err);
    if (!root)
        return -1;
    int rc = tb_vm_from(root, vm, CALL_VM, err);
    json_decref(root);
    return rc;
}

int tb_parse_mci_vms(const char *text, size_t len, const char *ns, const char *mci,
                     struct fed_vm **vms, size_t *n, struct fed_error *err)
{
    *vms = NULL;
    *n = 0;
    json_t *root = load(text, len, CALL_MCI, err);
    if (!root)
        return -1;
    const json_t *arr = json_object_get(root, "vm");
    if (!arr)
        arr = json_object_get(root, "node");
    size_t count = json_array_size(arr);
    int rc = 0;
    if (arr && !json_is_array(arr) && !json_is_null(arr))
        rc = fed_fail(err, FED_EBACKEND, CALL_MCI, 0, "vm: expected an array");
    else if (count > MAX_LIST_ITEMS)
        rc = fed_fail(err, FED_EBACKEND, CALL_MCI, 0, "more than %d VMs", MAX_LIST_ITEMS);
    else if (count && !(*vms = calloc(count, sizeof(**vms))))
        rc = fed_fail(err, FED_EIO, CALL_MCI, 0, "out of memory");
    for (size_t i = 0; rc == 0 && i < count; i++) {
        struct fed_vm *v = &(*vms)[i];
        snprintf(v->ns, sizeof(v->ns), "%s", ns);
        snprintf(v->mci, sizeof(v->mci), "%s", mci);
        const json_t *item = json_array_get(arr, i);
        if (!json_is_object(item))
            rc = fed_fail(err, FED_EBACKEND, CALL_MCI, 0, "vm[%zu]: expected an object", i);
        else
            rc = tb_vm_from(item, v, CALL_MCI, err);
        *n = i + 1;
    }
    json_decref(root);
    if (rc) {
        for (size_t i = 0; i < *n; i++)
            fed_vm_free(&(*vms)[i]);
        free(*vms);
        *vms = NULL;
        *n = 0;
    }
    return rc;
}

int tb_parse_id_list(const char *text, size_t len, char ***ids, size_t *n, struct fed_error *err)
{
    *ids = NULL;
    *n = 0;
    json_t *root = load(text, len, CALL_IDS, err);
    if (!root)
        return -1;
    const json_t *arr = json_object_get(root, "output");
    if (!arr)
        arr = json_object_get(root, "idList");
    size_t count = json_array_size(arr);
    int rc = 0;
    if (arr && !json_is_array(arr) && !json_is_null(arr))
        rc = fed_fail(err, FED_EBACKEND, CALL_IDS, 0, "output: expected an array");
    else if (count > MAX_LIST_ITEMS)
        rc = fed_fail(err, FED_EBACKEND, CALL_IDS, 0, "more than %d ids", MAX_LIST_ITEMS);
    else if (count && !(*ids = calloc(count, sizeof(char *))))
        rc = fed_fail(err, FED_EIO, CALL_IDS, 0, "out of memory");
    for (size_t i = 0; rc == 0 && i < count; i++) {
        const char *s = json_string_value(json_array_get(arr, i));
        if (!s || !s[0] || strlen(s) >= FED_NAME_MAX)
            rc = fed_fail(err, FED_EBACKEND, CALL_IDS, 0, "output[%zu]: not an id", i);
        else if (!((*ids)[i] = strdup(s)))
            rc = fed_fail(err, FED_EIO, CALL_IDS, 0, "out of memory");
        else
            *n = i + 1;
    }
    json_decref(root);
    if (rc) {
        fed_names_free(*ids, *n);
        *ids = NULL;
        *n = 0;
    }
    return rc;
}
