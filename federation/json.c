/* JSON forms of the model: MCI requests (Tumblebug's mciDynamic shape) and the store's
 * files. Parsing is strict: unknown keys, wrong types and overlong values are errors that
 * name the key, because these files are written by hand and typos must not pass silently. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "federation/federation.h"
#include "federation/scrape.h"

#define CALL_SPEC "parse spec"
#define CALL_STORE "parse state"

/* ---- field helpers ------------------------------------------------------------------ */

static int get_str(const json_t *o, const char *key, char *dst, size_t cap, const char *where,
                   const char *call, struct fed_error *err)
{
    const json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return fed_fail(err, FED_EINVAL, call, 0, "%s.%s: expected a string", where, key);
    size_t n = json_string_length(v);
    if (n >= cap)
        return fed_fail(err, FED_EINVAL, call, 0, "%s.%s: longer than %zu characters", where, key,
                        cap - 1);
    if (memchr(json_string_value(v), 0, n))
        return fed_fail(err, FED_EINVAL, call, 0, "%s.%s: contains a NUL character", where, key);
    memcpy(dst, json_string_value(v), n + 1);
    return 0;
}

/* Tumblebug sends counts as strings ("subGroupSize":"2"); numbers are accepted too. */
static int get_int(const json_t *o, const char *key, int64_t *dst, int64_t min, int64_t max,
                   const char *where, const char *call, struct fed_error *err)
{
    const json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return 0;
    int64_t x;
    if (json_is_integer(v)) {
        x = json_integer_value(v);
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end;
        errno = 0;
        long long l = strtoll(s, &end, 10);
        if (!s[0] || *end || errno)
            return fed_fail(err, FED_EINVAL, call, 0, "%s.%s: '%s' is not an integer", where, key,
                            s);
        x = l;
    } else if (json_is_boolean(v)) {
        x = json_is_true(v);
    } else {
        return fed_fail(err, FED_EINVAL, call, 0, "%s.%s: expected an integer", where, key);
    }
    if (x < min || x > max)
        return fed_fail(err, FED_EINVAL, call, 0, "%s.%s: %lld is outside %lld..%lld", where, key,
                        (long long)x, (long long)min, (long long)max);
    *dst = x;
    return 0;
}

static int check_keys(const json_t *o, const char *const *allowed, const char *where,
                      const char *call, struct fed_error *err)
{
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)o, key, v)
    {
        int ok = 0;
        for (const char *const *a = allowed; *a; a++)
            ok |= !strcmp(key, *a);
        if (!ok)
            return fed_fail(err, FED_EINVAL, call, 0, "%s: unknown key '%s'", where, key);
    }
    return 0;
}

/* ---- specs -------------------------------------------------------------------------- */

static const char *const spec_keys[] = {
    "name",        "subGroupSize",   "csp",          "region",       "commonSpec",
    "commonImage", "connectionName", "rootDiskType", "rootDiskSize", "label",
    "userData",    "workload",       NULL,
};

static int parse_labels(const json_t *o, struct fed_vm_spec *s, const char *where, const char *call,
                        struct fed_error *err)
{
    const json_t *l = json_object_get(o, "label");
    if (!l || json_is_null(l))
        return 0;
    if (!json_is_object(l))
        return fed_fail(err, FED_EINVAL, call, 0, "%s.label: expected an object", where);
    if (json_object_size(l) > FED_MAX_LABELS)
        return fed_fail(err, FED_EINVAL, call, 0, "%s.label: more than %d labels", where,
                        FED_MAX_LABELS);
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)l, key, v)
    {
        struct fed_label *lb = &s->labels[s->nlabels];
        if (strlen(key) >= sizeof(lb->key))
            return fed_fail(err, FED_EINVAL, call, 0, "%s.label: key '%.40s...' is too long", where,
                            key);
        snprintf(lb->key, sizeof(lb->key), "%s", key);
        char w[160];
        snprintf(w, sizeof(w), "%s.label", where);
        if (!json_is_string(v))
            return fed_fail(err, FED_EINVAL, call, 0, "%s.%s: expected a string", w, key);
        if (get_str(l, key, lb->value, sizeof(lb->value), w, call, err) < 0)
            return -1;
        s->nlabels++;
    }
    return 0;
}

static int parse_workload(const json_t *o, struct fed_vm_spec *s, const char *where,
                          const char *call, struct fed_error *err)
{
    const json_t *w = json_object_get(o, "workload");
    if (!w || json_is_null(w))
        return 0;
    if (!json_is_array(w) || json_array_size(w) == 0 || json_array_size(w) > 256)
        return fed_fail(err, FED_EINVAL, call, 0,
                        "%s.workload: expected an argument vector [\"program\", \"arg\", ...] "
                        "(1 to 256 strings; it is run without a shell)",
                        where);
    size_t n = json_array_size(w);
    s->workload = calloc(n + 1, sizeof(char *));
    if (!s->workload)
        return fed_fail(err, FED_EIO, call, ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const json_t *a = json_array_get(w, i);
        if (!json_is_string(a) || memchr(json_string_value(a), 0, json_string_length(a)) ||
            (i == 0 && !json_string_length(a)))
            return fed_fail(err, FED_EINVAL, call, 0,
                            "%s.workload[%zu]: expected a non-empty string without NUL", where, i);
        if (!(s->workload[i] = strdup(json_string_value(a))))
            return fed_fail(err, FED_EIO, call, ENOMEM, "out of memory");
    }
    return 0;
}

/* "aws+ap-northeast-2+t2.small": fills csp and region when they were not given. */
static void spec_defaults(struct fed_vm_spec *s)
{
    char tmp[FED_LONG_MAX];
    snprintf(tmp, sizeof(tmp), "%s", s->common_spec);
    char *plus1 = strchr(tmp, '+');
    if (!plus1)
        return;
    *plus1 = 0;
    char *region = plus1 + 1, *plus2 = strchr(region, '+');
    if (!plus2)
        return;
    *plus2 = 0;
    if (!s->csp[0] && strlen(tmp) < sizeof(s->csp))
        memcpy(s->csp, tmp, strlen(tmp) + 1);
    if (!s->region[0] && strlen(region) < sizeof(s->region))
        memcpy(s->region, region, strlen(region) + 1);
}

static int spec_from_obj(const json_t *o, struct fed_vm_spec *s, const char *where,
                         const char *call, struct fed_error *err)
{
    memset(s, 0, sizeof(*s));
    s->size = 1;
    if (!json_is_object(o))
        return fed_fail(err, FED_EINVAL, call, 0, "%s: expected an object", where);
    int64_t size = 1, disk = 0;
    if (check_keys(o, spec_keys, where, call, err) < 0 ||
        get_str(o, "name", s->name, sizeof(s->name), where, call, err) < 0 ||
        get_int(o, "subGroupSize", &size, 1, 1000, where, call, err) < 0 ||
        get_str(o, "csp", s->csp, sizeof(s->csp), where, call, err) < 0 ||
        get_str(o, "region", s->region, sizeof(s->region), where, call, err) < 0 ||
        get_str(o, "commonSpec", s->common_spec, sizeof(s->common_spec), where, call, err) < 0 ||
        get_str(o, "commonImage", s->common_image, sizeof(s->common_image), where, call, err) < 0 ||
        get_str(o, "connectionName", s->connection, sizeof(s->connection), where, call, err) < 0 ||
        get_str(o, "rootDiskType", s->root_disk_type, sizeof(s->root_disk_type), where, call, err) <
            0 ||
        get_int(o, "rootDiskSize", &disk, 0, 65536, where, call, err) < 0 ||
        parse_labels(o, s, where, call, err) < 0 || parse_workload(o, s, where, call, err) < 0)
        goto fail;
    s->size = (int)size;
    s->root_disk_size_gb = (int)disk;
    const json_t *ud = json_object_get(o, "userData");
    if (ud && !json_is_null(ud)) {
        if (!json_is_string(ud) || memchr(json_string_value(ud), 0, json_string_length(ud))) {
            fed_fail(err, FED_EINVAL, call, 0, "%s.userData: expected a string", where);
            goto fail;
        }
        if (!(s->user_data = strdup(json_string_value(ud)))) {
            fed_fail(err, FED_EIO, call, ENOMEM, "out of memory");
            goto fail;
        }
    }
    spec_defaults(s);
    return 0;
fail:
    fed_vm_spec_free(s);
    return -1;
}

static json_t *spec_to_obj(const struct fed_vm_spec *s)
{
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(s->name));
    json_object_set_new(o, "subGroupSize", json_integer(s->size));
    json_object_set_new(o, "csp", json_string(s->csp));
    json_object_set_new(o, "region", json_string(s->region));
    if (s->common_spec[0])
        json_object_set_new(o, "commonSpec", json_string(s->common_spec));
    if (s->common_image[0])
        json_object_set_new(o, "commonImage", json_string(s->common_image));
    if (s->connection[0])
        json_object_set_new(o, "connectionName", json_string(s->connection));
    if (s->root_disk_type[0])
        json_object_set_new(o, "rootDiskType", json_string(s->root_disk_type));
    if (s->root_disk_size_gb)
        json_object_set_new(o, "rootDiskSize", json_integer(s->root_disk_size_gb));
    if (s->nlabels) {
        json_t *l = json_object();
        for (size_t i = 0; i < s->nlabels; i++)
            json_object_set_new(l, s->labels[i].key, json_string(s->labels[i].value));
        json_object_set_new(o, "label", l);
    }
    if (s->user_data)
        json_object_set_new(o, "userData", json_string(s->user_data));
    if (s->workload) {
        json_t *w = json_array();
        for (char **p = s->workload; *p; p++)
            json_array_append_new(w, json_string(*p));
        json_object_set_new(o, "workload", w);
    }
    return o;
}

static json_t *load_text(const char *text, size_t len, const char *call, struct fed_error *err)
{
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        fed_fail(err, FED_EINVAL, call, 0, "line %d column %d: %s", je.line, je.column, je.text);
    return root;
}

int fed_vm_spec_parse(const char *text, size_t len, struct fed_vm_spec *out, struct fed_error *err)
{
    json_t *root = load_text(text, len, CALL_SPEC, err);
    if (!root)
        return -1;
    int rc = spec_from_obj(root, out, "spec", CALL_SPEC, err);
    json_decref(root);
    return rc;
}

int fed_vm_spec_validate(const struct fed_vm_spec *s, struct fed_error *err)
{
    if (fed_check_id("subgroup name", s->name, err) < 0)
        return -1;
    if (s->size < 1 || s->size > 1000)
        return fed_fail(err, FED_EINVAL, "spec", 0,
                        "subgroup %s: subGroupSize %d is outside 1..1000", s->name, s->size);
    if (!s->csp[0])
        return fed_fail(err, FED_EINVAL, "spec", 0,
                        "subgroup %s: no csp (give \"csp\" or a commonSpec like "
                        "\"aws+ap-northeast-2+t2.small\")",
                        s->name);
    if (!s->region[0])
        return fed_fail(err, FED_EINVAL, "spec", 0,
                        "subgroup %s: no region (give \"region\" or a commonSpec like "
                        "\"aws+ap-northeast-2+t2.small\")",
                        s->name);
    /* csp and region become identity tags and topic-safe labels on the agent. */
    if (fed_check_id("csp", s->csp, err) < 0 || fed_check_id("region", s->region, err) < 0)
        return -1;
    struct fed_monitoring_spec m;
    return fed_spec_monitoring(s, &m, err);
}

static const char *const request_keys[] = {"name", "description", "vm", "subGroups", NULL};

int fed_mci_request_parse(const char *text, size_t len, char *name, size_t name_len,
                          struct fed_vm_spec **specs, size_t *nspecs, struct fed_error *err)
{
    *specs = NULL;
    *nspecs = 0;
    json_t *root = load_text(text, len, CALL_SPEC, err);
    if (!root)
        return -1;
    int rc = -1;
    struct fed_vm_spec *out = NULL;
    size_t n = 0;
    if (!json_is_object(root)) {
        fed_fail(err, FED_EINVAL, CALL_SPEC, 0, "expected an object {\"vm\": [...]}");
        goto done;
    }
    if (check_keys(root, request_keys, "request", CALL_SPEC, err) < 0)
        goto done;
    if (name && get_str(root, "name", name, name_len, "request", CALL_SPEC, err) < 0)
        goto done;
    const json_t *vms = json_object_get(root, "vm");
    if (!vms)
        vms = json_object_get(root, "subGroups");
    if (!json_is_array(vms) || json_array_size(vms) == 0 || json_array_size(vms) > 256) {
        fed_fail(err, FED_EINVAL, CALL_SPEC, 0,
                 "\"vm\" must be an array of 1 to 256 subgroup objects");
        goto done;
    }
    out = calloc(json_array_size(vms), sizeof(*out));
    if (!out) {
        fed_fail(err, FED_EIO, CALL_SPEC, ENOMEM, "out of memory");
        goto done;
    }
    for (; n < json_array_size(vms); n++) {
        char where[32];
        snprintf(where, sizeof(where), "vm[%zu]", n);
        if (spec_from_obj(json_array_get(vms, n), &out[n], where, CALL_SPEC, err) < 0 ||
            fed_vm_spec_validate(&out[n], err) < 0) {
            fed_vm_spec_free(&out[n]);
            goto done;
        }
        for (size_t j = 0; j < n; j++) {
            if (!strcmp(out[j].name, out[n].name)) {
                fed_fail(err, FED_EINVAL, CALL_SPEC, 0, "%s: subgroup '%s' appears twice", where,
                         out[n].name);
                fed_vm_spec_free(&out[n]);
                goto done;
            }
        }
    }
    rc = 0;
done:
    if (rc < 0) {
        for (size_t i = 0; i < n; i++)
            fed_vm_spec_free(&out[i]);
        free(out);
    } else {
        *specs = out;
        *nspecs = n;
    }
    json_decref(root);
    return rc;
}

/* ---- store form --------------------------------------------------------------------- */

static json_t *vm_to_obj(const struct fed_vm *v)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(v->id));
    json_object_set_new(o, "subGroupId", json_string(v->subgroup));
    json_object_set_new(o, "status", json_string(fed_vm_state_name(v->state)));
    json_object_set_new(o, "targetAction", json_string(fed_action_name(v->target_action)));
    json_object_set_new(o, "targetStatus",
                        json_string(v->target_status == FED_VM_UNDEFINED
                                        ? "None"
                                        : fed_vm_state_name(v->target_status)));
    json_object_set_new(o, "autogen", json_boolean(v->autogen));
    json_object_set_new(o, "spec", spec_to_obj(&v->spec));
    json_object_set_new(o, "address", json_string(v->address));
    json_object_set_new(o, "nativeId", json_string(v->native_id));
    json_object_set_new(o, "message", json_string(v->message));
    json_object_set_new(o, "createdMs", json_integer(v->created_ms));
    json_object_set_new(o, "updatedMs", json_integer(v->updated_ms));
    if (v->driver_data[0]) {
        json_t *d = json_loads(v->driver_data, 0, NULL);
        json_object_set_new(o, "driver", d ? d : json_object());
    }
    return o;
}

char *fed_mci_to_json(const struct fed_mci *m)
{
    char status[96];
    json_t *o = json_object(), *sgs = json_array(), *vms = json_array();
    json_object_set_new(o, "version", json_integer(1));
    json_object_set_new(o, "ns", json_string(m->ns));
    json_object_set_new(o, "id", json_string(m->id));
    json_object_set_new(o, "driver", json_string(m->driver));
    json_object_set_new(o, "description", json_string(m->description));
    json_object_set_new(o, "status", json_string(fed_mci_status(m, status, sizeof(status))));
    json_object_set_new(o, "createdMs", json_integer(m->created_ms));
    json_object_set_new(o, "updatedMs", json_integer(m->updated_ms));
    for (size_t i = 0; i < m->nsubgroups; i++) {
        json_t *g = json_object();
        json_object_set_new(g, "id", json_string(m->subgroups[i].id));
        json_object_set_new(g, "template", spec_to_obj(&m->subgroups[i].tmpl));
        json_array_append_new(sgs, g);
    }
    for (size_t i = 0; i < m->nvms; i++)
        json_array_append_new(vms, vm_to_obj(&m->vms[i]));
    json_object_set_new(o, "subGroups", sgs);
    json_object_set_new(o, "vm", vms);
    char *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(o);
    return text;
}

static int get_state(const json_t *o, const char *key, enum fed_vm_state *out, int none_ok,
                     const char *where, struct fed_error *err)
{
    char name[32] = "";
    if (get_str(o, key, name, sizeof(name), where, CALL_STORE, err) < 0)
        return -1;
    if (none_ok && (!name[0] || !strcmp(name, "None"))) {
        *out = FED_VM_UNDEFINED;
        return 0;
    }
    if (fed_vm_state_parse(name, out) < 0)
        return fed_fail(err, FED_EINVAL, CALL_STORE, 0, "%s.%s: unknown VM status '%s'", where, key,
                        name);
    return 0;
}

static const char *const vm_keys[] = {
    "id",      "subGroupId", "status",  "targetAction", "targetStatus", "autogen", "spec",
    "address", "nativeId",   "message", "createdMs",    "updatedMs",    "driver",  NULL};

static int vm_from_obj(const json_t *o, const char *ns, const char *mci, struct fed_vm *v,
                       const char *where, struct fed_error *err)
{
    memset(v, 0, sizeof(*v));
    snprintf(v->ns, sizeof(v->ns), "%s", ns);
    snprintf(v->mci, sizeof(v->mci), "%s", mci);
    if (!json_is_object(o))
        return fed_fail(err, FED_EINVAL, CALL_STORE, 0, "%s: expected an object", where);
    char act[32] = "";
    int64_t autogen = 0;
    if (check_keys(o, vm_keys, where, CALL_STORE, err) < 0 ||
        get_str(o, "id", v->id, sizeof(v->id), where, CALL_STORE, err) < 0 ||
        fed_check_id("vm id", v->id, err) < 0 ||
        get_str(o, "subGroupId", v->subgroup, sizeof(v->subgroup), where, CALL_STORE, err) < 0 ||
        get_state(o, "status", &v->state, 0, where, err) < 0 ||
        get_state(o, "targetStatus", &v->target_status, 1, where, err) < 0 ||
        get_str(o, "targetAction", act, sizeof(act), where, CALL_STORE, err) < 0 ||
        get_int(o, "autogen", &autogen, 0, 1, where, CALL_STORE, err) < 0 ||
        get_str(o, "address", v->address, sizeof(v->address), where, CALL_STORE, err) < 0 ||
        get_str(o, "nativeId", v->native_id, sizeof(v->native_id), where, CALL_STORE, err) < 0 ||
        get_str(o, "message", v->message, sizeof(v->message), where, CALL_STORE, err) < 0 ||
        get_int(o, "createdMs", &v->created_ms, 0, INT64_MAX, where, CALL_STORE, err) < 0 ||
        get_int(o, "updatedMs", &v->updated_ms, 0, INT64_MAX, where, CALL_STORE, err) < 0)
        return -1;
    v->autogen = (int)autogen;
    if (act[0] && fed_action_parse(act, &v->target_action) < 0)
        return fed_fail(err, FED_EINVAL, CALL_STORE, 0, "%s.targetAction: unknown action '%s'",
                        where, act);
    const json_t *d = json_object_get(o, "driver");
    if (d && !json_is_null(d)) {
        if (!json_is_object(d))
            return fed_fail(err, FED_EINVAL, CALL_STORE, 0, "%s.driver: expected an object", where);
        char *text = json_dumps(d, JSON_COMPACT);
        size_t n = text ? strlen(text) : 0;
        if (!text || n >= sizeof(v->driver_data)) {
            free(text);
            return fed_fail(err, FED_EINVAL, CALL_STORE, 0, "%s.driver: longer than %d bytes",
                            where, FED_DRIVER_DATA_MAX - 1);
        }
        memcpy(v->driver_data, text, n + 1);
        free(text);
    }
    char w[64];
    snprintf(w, sizeof(w), "%s.spec", where);
    return spec_from_obj(json_object_get(o, "spec"), &v->spec, w, CALL_STORE, err);
}

static const char *const mci_keys[] = {"version",     "ns",     "id",        "driver",
                                       "description", "status", "createdMs", "updatedMs",
                                       "subGroups",   "vm",     NULL};

static int mci_from_obj(const json_t *o, struct fed_mci *m, struct fed_error *err)
{
    int64_t version = 0;
    if (!json_is_object(o))
        return fed_fail(err, FED_EINVAL, CALL_STORE, 0, "expected an object");
    if (check_keys(o, mci_keys, "mci", CALL_STORE, err) < 0 ||
        get_int(o, "version", &version, 1, 1, "mci", CALL_STORE, err) < 0 ||
        get_str(o, "ns", m->ns, sizeof(m->ns), "mci", CALL_STORE, err) < 0 ||
        get_str(o, "id", m->id, sizeof(m->id), "mci", CALL_STORE, err) < 0 ||
        get_str(o, "driver", m->driver, sizeof(m->driver), "mci", CALL_STORE, err) < 0 ||
        get_str(o, "description", m->description, sizeof(m->description), "mci", CALL_STORE, err) <
            0 ||
        get_int(o, "createdMs", &m->created_ms, 0, INT64_MAX, "mci", CALL_STORE, err) < 0 ||
        get_int(o, "updatedMs", &m->updated_ms, 0, INT64_MAX, "mci", CALL_STORE, err) < 0 ||
        fed_check_id("ns", m->ns, err) < 0 || fed_check_id("mci id", m->id, err) < 0)
        return -1;
    const json_t *sgs = json_object_get(o, "subGroups"), *vms = json_object_get(o, "vm");
    if ((sgs && !json_is_array(sgs)) || (vms && !json_is_array(vms)))
        return fed_fail(err, FED_EINVAL, CALL_STORE, 0, "subGroups and vm must be arrays");
    for (size_t i = 0; i < json_array_size(sgs); i++) {
        const json_t *g = json_array_get(sgs, i);
        struct fed_vm_spec t;
        char where[48];
        snprintf(where, sizeof(where), "subGroups[%zu].template", i);
        if (!json_is_object(g))
            return fed_fail(err, FED_EINVAL, CALL_STORE, 0, "subGroups[%zu]: expected an object",
                            i);
        if (spec_from_obj(json_object_get(g, "template"), &t, where, CALL_STORE, err) < 0)
            return -1;
        struct fed_subgroup *sg = fed_mci_add_subgroup(m, &t);
        fed_vm_spec_free(&t);
        if (!sg)
            return fed_fail(err, FED_EIO, CALL_STORE, ENOMEM, "out of memory");
        if (get_str(g, "id", sg->id, sizeof(sg->id), where, CALL_STORE, err) < 0 ||
            fed_check_id("subgroup id", sg->id, err) < 0)
            return -1;
    }
    for (size_t i = 0; i < json_array_size(vms); i++) {
        struct fed_vm v;
        char where[32];
        snprintf(where, sizeof(where), "vm[%zu]", i);
        if (vm_from_obj(json_array_get(vms, i), m->ns, m->id, &v, where, err) < 0) {
            fed_vm_free(&v);
            return -1;
        }
        if (fed_mci_find_vm(m, v.id)) {
            fed_vm_free(&v);
            return fed_fail(err, FED_EINVAL, CALL_STORE, 0, "%s: vm '%s' appears twice", where,
                            v.id);
        }
        struct fed_vm *added = fed_mci_add_vm(m, &v);
        fed_vm_free(&v);
        if (!added)
            return fed_fail(err, FED_EIO, CALL_STORE, ENOMEM, "out of memory");
    }
    return 0;
}

int fed_mci_from_json(const char *text, size_t len, struct fed_mci *out, struct fed_error *err)
{
    memset(out, 0, sizeof(*out));
    json_t *root = load_text(text, len, CALL_STORE, err);
    if (!root)
        return -1;
    int rc = mci_from_obj(root, out, err);
    json_decref(root);
    if (rc < 0)
        fed_mci_free(out);
    return rc;
}
