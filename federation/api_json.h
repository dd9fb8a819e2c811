/*
 * Parsers for what the Kubernetes API server and CB-Tumblebug answer. They read network
 * data: every field is type-checked and bounded, and anything malformed is a clear error
 * (FED_EBACKEND, call "parse <what>"), never a crash. tests/fuzz/fuzz_fed_responses.c feeds
 * them arbitrary bytes.
 */
#ifndef DSF_FED_API_JSON_H
#define DSF_FED_API_JSON_H

#include <stddef.h>

#include "federation/federation.h"

/* ---- Kubernetes ---- */

#define K8S_NAME_MAX 254 /* DNS subdomain names: 253 characters */

struct k8s_pod {
    char ns[64];
    char name[K8S_NAME_MAX];
    char uid[64];
    char owner_kind[64]; /* kind of the controller owner ("ReplicaSet", "DaemonSet"), or "" */
    int mirror;          /* static pod's mirror (annotation kubernetes.io/config.mirror) */
    int terminating;     /* metadata.deletionTimestamp set */
    char phase[32];
};

struct k8s_pod_list {
    struct k8s_pod *pods;
    size_t n, cap;
    char cont[1024]; /* metadata.continue: the next page's token, "" on the last page */
};

/* Appends one page of a PodList to list (pods of earlier pages stay). */
int k8s_parse_pod_list(const char *text, size_t len, struct k8s_pod_list *list,
                       struct fed_error *err);
void k8s_pod_list_free(struct k8s_pod_list *list);
/* Drain leaves DaemonSet pods (their controller ignores unschedulable and would recreate
 * them at once) and mirror pods (the kubelet owns them; the API cannot delete them). */
int k8s_pod_skipped_by_drain(const struct k8s_pod *p);

struct k8s_node {
    char name[K8S_NAME_MAX];
    int unschedulable;
    int ready; /* 1 Ready=True, 0 False or Unknown, -1 no Ready condition */
};
int k8s_parse_node(const char *text, size_t len, struct k8s_node *out, struct fed_error *err);

/* An autoscaling/v1 Scale: spec.replicas (required) and status.replicas (-1 when absent). */
int k8s_parse_scale(const char *text, size_t len, int *spec_replicas, int *status_replicas,
                    struct fed_error *err);

/* A metav1.Status body's message and reason ("" when absent or not a Status). */
void k8s_status_message(const char *text, size_t len, char *message, size_t mlen, char *reason,
                        size_t rlen);

/* ---- CB-Tumblebug ---- */

/*
 * One VM object (TbVmInfo or TbVmStatusInfo) into vm: id, subgroup, state, target action
 * and status, address (public IP), native id, message. ns and mci are left as they are.
 */
int tb_parse_vm(const char *text, size_t len, struct fed_vm *vm, struct fed_error *err);
/* The VMs of an MCI object (TbMciInfo, "vm": [...]): a malloc'd array (fed_vm_free each). */
int tb_parse_mci_vms(const char *text, size_t len, const char *ns, const char *mci,
                     struct fed_vm **vms, size_t *n, struct fed_error *err);
/* An IdList ({"output": ["g1-1", ...]}, or {"idList": [...]}): malloc'd names. */
int tb_parse_id_list(const char *text, size_t len, char ***ids, size_t *n, struct fed_error *err);

#endif
