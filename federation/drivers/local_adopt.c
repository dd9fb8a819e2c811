/* The local driver's record of each VM beside its files (run.json), what list() reads
 * from it, and the re-adoption of running VMs when a host process opens the driver. */
#define DSF_MODULE "fed-local"
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/file.h"
#include "common/log.h"
#include "federation/driver.h"
#include "federation/drivers/local.h"
#include "federation/drivers/local_proc.h"

/* The driver's own record of a VM, beside its files: what list() and open() read. */
void local_write_run_file(const struct local *l, const struct fed_vm *vm)
{
    char dir[PATH_MAX];
    local_vm_dir(l, vm, dir, sizeof(dir));
    json_t *o = json_object();
    json_object_set_new(o, "ns", json_string(vm->ns));
    json_object_set_new(o, "mci", json_string(vm->mci));
    json_object_set_new(o, "id", json_string(vm->id));
    json_object_set_new(o, "subGroupId", json_string(vm->subgroup));
    json_object_set_new(o, "csp", json_string(vm->spec.csp));
    json_object_set_new(o, "region", json_string(vm->spec.region));
    json_object_set_new(o, "address", json_string(vm->address));
    json_t *d = vm->driver_data[0] ? json_loads(vm->driver_data, 0, NULL) : NULL;
    json_object_set_new(o, "driver", d ? d : json_object());
    char *text = json_dumps(o, JSON_INDENT(2));
    json_decref(o);
    char why[600];
    if (!text || dsf_write_file_atomic(dir, "run.json", text, strlen(text), why, sizeof(why)))
        log_warn("%s: could not write its run.json: %s", vm->id, text ? why : "out of memory");
    free(text);
}

static int read_run_file(const char *path, struct fed_vm *vm)
{
    json_t *o = json_load_file(path, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(o)) {
        json_decref(o);
        return -1;
    }
    memset(vm, 0, sizeof(*vm));
    const struct {
        const char *key;
        char *dst;
        size_t len;
    } f[] = {{"ns", vm->ns, sizeof(vm->ns)},
             {"mci", vm->mci, sizeof(vm->mci)},
             {"id", vm->id, sizeof(vm->id)},
             {"subGroupId", vm->subgroup, sizeof(vm->subgroup)},
             {"csp", vm->spec.csp, sizeof(vm->spec.csp)},
             {"region", vm->spec.region, sizeof(vm->spec.region)},
             {"address", vm->address, sizeof(vm->address)}};
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
        const char *s = json_string_value(json_object_get(o, f[i].key));
        snprintf(f[i].dst, f[i].len, "%s", s ? s : "");
    }
    snprintf(vm->spec.name, sizeof(vm->spec.name), "%s", vm->subgroup);
    vm->spec.size = 1;
    char *d = json_dumps(json_object_get(o, "driver"), JSON_COMPACT);
    if (d && strlen(d) < sizeof(vm->driver_data))
        snprintf(vm->driver_data, sizeof(vm->driver_data), "%s", d);
    free(d);
    json_decref(o);
    vm->state = fed_vm_data_int(vm, "stopped") ? FED_VM_TERMINATED : FED_VM_RUNNING;
    return fed_check_id("vm", vm->id, NULL);
}

int local_list(void *ctx, const char *ns, const char *mci, struct fed_vm **vms, size_t *n,
               struct fed_error *err)
{
    struct local *l = ctx;
    *vms = NULL;
    *n = 0;
    if (fed_check_id("namespace", ns, err) < 0 || fed_check_id("mci", mci, err) < 0)
        return -1;
    char dir[PATH_MAX + 2 * FED_NAME_MAX + 8];
    snprintf(dir, sizeof(dir), "%s/vms/%s/%s", l->dir, ns, mci);
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        char path[PATH_MAX + 512];
        struct fed_vm vm;
        if (de->d_name[0] == '.' ||
            snprintf(path, sizeof(path), "%s/%s/run.json", dir, de->d_name) >= (int)sizeof(path))
            continue;
        if (read_run_file(path, &vm) < 0)
            continue;
        local_status(l, &vm, NULL);
        struct fed_vm *g = realloc(*vms, (*n + 1) * sizeof(*g));
        if (!g) {
            closedir(d);
            return fed_fail(err, FED_EIO, "list", ENOMEM, "out of memory");
        }
        *vms = g;
        g[(*n)++] = vm;
    }
    if (d)
        closedir(d);
    return 0;
}

/* Walks <dir>/vms/<ns>/<mci>/<vm>/run.json and reports which VMs are still alive. */
void local_adopt_all(struct local *l)
{
    char base[PATH_MAX + 8];
    snprintf(base, sizeof(base), "%s/vms", l->dir);
    DIR *nd = opendir(base);
    struct dirent *n;
    unsigned alive = 0, gone = 0;
    while (nd && (n = readdir(nd))) {
        if (fed_check_id("ns", n->d_name, NULL) < 0)
            continue;
        char mdir[PATH_MAX + 8 + sizeof(n->d_name) + 2];
        snprintf(mdir, sizeof(mdir), "%s/%s", base, n->d_name);
        DIR *md = opendir(mdir);
        struct dirent *m;
        while (md && (m = readdir(md))) {
            struct fed_vm *vms;
            size_t cnt;
            if (fed_check_id("mci", m->d_name, NULL) < 0 ||
                local_list(l, n->d_name, m->d_name, &vms, &cnt, NULL) < 0)
                continue;
            for (size_t i = 0; i < cnt; i++) {
                if (vms[i].state == FED_VM_RUNNING || vms[i].state == FED_VM_SUSPENDED)
                    alive++;
                else if (vms[i].state == FED_VM_FAILED)
                    gone++;
            }
            free(vms);
        }
        if (md)
            closedir(md);
    }
    if (nd)
        closedir(nd);
    if (alive || gone)
        log_info("re-adopted %u running VMs from %s%s", alive, base,
                 gone ? " (some recorded VMs are gone: their status says Failed)" : "");
}
