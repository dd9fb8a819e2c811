/* libFuzzer target: the parsers of what the Kubernetes API server and CB-Tumblebug answer,
 * and the kubeconfig YAML reader. The first byte picks one ('p' PodList, 'n' Node, 's'
 * Scale, 'e' Status, 'v' Tumblebug VM, 'm' Tumblebug MCI, 'i' Tumblebug id list, 'y'
 * kubeconfig YAML, 'k' a whole kubeconfig: YAML, context, cluster, user, base64 fields);
 * any other byte feeds the rest to all of them. Whatever the bytes, each
 * parser must succeed or fail with a message, never crash or leak. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "federation/api_json.h"
#include "federation/kubeconfig.h"

static void must_explain(int rc, const struct fed_error *err)
{
    if (rc != 0 && !err->message[0])
        abort(); /* a refusal must say why */
}

static void pods(const char *d, size_t n)
{
    struct fed_error err = {0};
    struct k8s_pod_list list = {0};
    int rc = k8s_parse_pod_list(d, n, &list, &err);
    must_explain(rc, &err);
    for (size_t i = 0; rc == 0 && i < list.n; i++) {
        if (!list.pods[i].ns[0] || !list.pods[i].name[0])
            abort(); /* accepted pods are addressable */
        (void)k8s_pod_skipped_by_drain(&list.pods[i]);
    }
    k8s_pod_list_free(&list);
}

static void node(const char *d, size_t n)
{
    struct fed_error err = {0};
    struct k8s_node nd;
    must_explain(k8s_parse_node(d, n, &nd, &err), &err);
}

static void scale(const char *d, size_t n)
{
    struct fed_error err = {0};
    int spec = -1, status = -1;
    int rc = k8s_parse_scale(d, n, &spec, &status, &err);
    must_explain(rc, &err);
    if (rc == 0 && spec < 0)
        abort();
}

static void status(const char *d, size_t n)
{
    char msg[128], reason[32];
    k8s_status_message(d, n, msg, sizeof(msg), reason, sizeof(reason));
}

static void tb_vm(const char *d, size_t n)
{
    struct fed_error err = {0};
    struct fed_vm vm = {0};
    int rc = tb_parse_vm(d, n, &vm, &err);
    must_explain(rc, &err);
    if (rc == 0 && (unsigned)vm.state >= FED_VM_STATE_COUNT)
        abort();
    fed_vm_free(&vm);
}

static void tb_mci(const char *d, size_t n)
{
    struct fed_error err = {0};
    struct fed_vm *vms = NULL;
    size_t count = 0;
    must_explain(tb_parse_mci_vms(d, n, "ns", "mci", &vms, &count, &err), &err);
    for (size_t i = 0; i < count; i++)
        fed_vm_free(&vms[i]);
    free(vms);
}

static void tb_ids(const char *d, size_t n)
{
    struct fed_error err = {0};
    char **ids = NULL;
    size_t count = 0;
    must_explain(tb_parse_id_list(d, n, &ids, &count, &err), &err);
    fed_names_free(ids, count);
}

static void yaml(const char *d, size_t n)
{
    char err[256] = "";
    json_t *root = kubeconfig_yaml_parse(d, n, err, sizeof(err));
    if (!root && !err[0])
        abort();
    json_decref(root);
}

static void kubeconfig(const char *d, size_t n)
{
    char err[512] = "";
    struct kube_config kc;
    int rc = kubeconfig_parse(d, n, NULL, "/nonexistent", "fuzz", &kc, err, sizeof(err));
    if (rc != 0 && !err[0])
        abort();
    if (rc == 0 && !kc.server)
        abort(); /* an accepted kubeconfig names its API server */
    kubeconfig_free(&kc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static void (*const all[])(const char *, size_t) = {pods,   node,   scale, status,    tb_vm,
                                                        tb_mci, tb_ids, yaml,  kubeconfig};
    static const char keys[] = "pnsevmiyk";
    if (size == 0)
        return 0;
    /* A private copy: parsers must not rely on a NUL after the data. */
    char *d = malloc(size - 1 ? size - 1 : 1);
    if (!d)
        return 0;
    memcpy(d, data + 1, size - 1);
    const char *hit = memchr(keys, data[0], sizeof(keys) - 1);
    if (hit)
        all[hit - keys](d, size - 1);
    else
        for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
            all[i](d, size - 1);
    free(d);
    return 0;
}
