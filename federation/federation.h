/*
 * Federation layer: the MCI model (namespace -> MCI -> subgroup -> VM, CB-Tumblebug's VM
 * states and MCI status string), its persistent store, and the operations the controller
 * heals through (VM actions, migrate, scale out/in, Kubernetes node and workload calls),
 * carried out by a driver (driver.h).
 *
 * Every call that can fail returns 0 (or a documented non-negative value) on success and
 * -1 on failure with *err filled: the call that failed, the status it got and the body or
 * reason. err may be NULL when the caller does not care.
 *
 * Thread safety: one struct fed may be shared by threads of one process. Reads and
 * read-modify-writes of the model are serialised by the store (a mutex, plus a file lock so
 * that two processes on one state directory do not interleave); driver calls run outside
 * the lock, and the in-progress VM state (Suspending, ...) keeps a second caller from
 * starting a conflicting action on the same VM meanwhile.
 */
#ifndef DSF_FEDERATION_H
#define DSF_FEDERATION_H

#include <stddef.h>
#include <stdint.h>

#define FED_NAME_MAX 64  /* ns, mci, subgroup and vm ids, region */
#define FED_SHORT_MAX 32 /* csp, disk type, driver name */
#define FED_LONG_MAX 256 /* commonSpec, image, address, native id */
#define FED_MAX_LABELS 16
#define FED_DRIVER_DATA_MAX 1024 /* a driver's persisted per-VM data: a JSON object text */

/* ---- errors ------------------------------------------------------------------------ */

enum fed_errkind {
    FED_OK = 0,
    FED_EINVAL,       /* bad input: spec, name, option, unknown driver */
    FED_ENOTFOUND,    /* no such ns/mci/vm/subgroup/node */
    FED_ESTATE,       /* the transition is not allowed in the current state */
    FED_EUNSUPPORTED, /* the driver does not implement the operation */
    FED_ETIMEOUT,     /* the wait for a state ran out of time */
    FED_EBACKEND,     /* the backend (REST API, process) answered with a failure */
    FED_EIO,          /* local system failure: file, fork, cgroup */
};

struct fed_error {
    enum fed_errkind kind;
    char call[96];     /* what was called: "PATCH /api/v1/nodes/n1", "suspend vm1", "fork" */
    int status;        /* HTTP status for REST calls, errno or exit status for local ones,
                          0 when there was none */
    char message[512]; /* the body received (truncated) or the reason */
};

/* Fills err (when not NULL) and returns -1, so that `return fed_fail(...)` reads well. */
int fed_fail(struct fed_error *err, enum fed_errkind kind, const char *call, int status,
             const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void fed_error_clear(struct fed_error *err);
/* "call: status N: message" (status omitted when 0), for logs and CLI output. */
const char *fed_error_format(const struct fed_error *err, char *buf, size_t len);
const char *fed_errkind_name(enum fed_errkind k);

/* ---- states and actions ------------------------------------------------------------ */

enum fed_vm_state {
    FED_VM_UNDEFINED = 0,
    FED_VM_CREATING,
    FED_VM_RUNNING,
    FED_VM_SUSPENDING,
    FED_VM_SUSPENDED,
    FED_VM_RESUMING,
    FED_VM_REBOOTING,
    FED_VM_TERMINATING,
    FED_VM_TERMINATED,
    FED_VM_FAILED,
    FED_VM_STATE_COUNT
};

enum fed_action {
    FED_ACT_NONE = 0,
    FED_ACT_CREATE,
    FED_ACT_SUSPEND,
    FED_ACT_RESUME,
    FED_ACT_REBOOT,
    FED_ACT_TERMINATE,
    FED_ACT_COUNT
};

/* Tumblebug's spelling: "Running", "Partial-..." is only for MCIs. */
const char *fed_vm_state_name(enum fed_vm_state s);
/* Case-insensitive; -1 for an unknown name. */
int fed_vm_state_parse(const char *name, enum fed_vm_state *out);
/* "None", "Create", "Suspend", "Resume", "Reboot", "Terminate". */
const char *fed_action_name(enum fed_action a);
int fed_action_parse(const char *name, enum fed_action *out);
/* Creating, Suspending, Resuming, Rebooting, Terminating. */
int fed_vm_state_in_progress(enum fed_vm_state s);
/* The state an action moves through and the one it ends in (Suspend: Suspending, Suspended). */
enum fed_vm_state fed_action_transient(enum fed_action a);
enum fed_vm_state fed_action_target(enum fed_action a);

/* ---- model ------------------------------------------------------------------------- */

struct fed_label {
    char key[FED_NAME_MAX];
    char value[FED_LONG_MAX];
};

/*
 * What a VM is created from; also the template of a subgroup (scale out, migrate).
 * commonSpec follows Tumblebug's "csp+region+spec" form; csp and region, when empty, are
 * taken from it.
 */
struct fed_vm_spec {
    char name[FED_NAME_MAX]; /* subgroup name; VMs are named <name>-<i> */
    int size;                /* number of VMs (subGroupSize), >= 1 */
    char csp[FED_SHORT_MAX];
    char region[FED_NAME_MAX];
    char common_spec[FED_LONG_MAX];
    char common_image[FED_LONG_MAX];
    char connection[FED_NAME_MAX];
    char root_disk_type[FED_SHORT_MAX];
    int root_disk_size_gb; /* 0: the image's default */
    size_t nlabels;
    struct fed_label labels[FED_MAX_LABELS];
    char *user_data; /* owned; NULL for none: extra shell script run by cloud-init */
    char **workload; /* owned, NULL-terminated argv; NULL for none (local driver) */
};

struct fed_vm {
    char ns[FED_NAME_MAX];
    char mci[FED_NAME_MAX];
    char id[FED_NAME_MAX];
    char subgroup[FED_NAME_MAX];
    enum fed_vm_state state;
    enum fed_action target_action;   /* FED_ACT_NONE when idle */
    enum fed_vm_state target_status; /* FED_VM_UNDEFINED when idle */
    int autogen;                     /* created by scale out: removed first by scale in */
    struct fed_vm_spec spec;         /* what it was created from (size is 1) */
    char address[FED_LONG_MAX];      /* where its agent answers (ip or host:port), may be "" */
    char native_id[FED_LONG_MAX];    /* the backend's id (Tumblebug uid, ...), may be "" */
    char message[FED_LONG_MAX];      /* last failure or note, may be "" */
    int64_t created_ms, updated_ms;  /* unix time in ms */
    char driver_data[FED_DRIVER_DATA_MAX]; /* the driver's own JSON object, "" for none */
};

struct fed_subgroup {
    char id[FED_NAME_MAX];
    struct fed_vm_spec tmpl; /* scale out and migrate copy it */
};

struct fed_mci {
    char ns[FED_NAME_MAX];
    char id[FED_NAME_MAX];
    char driver[FED_SHORT_MAX];
    char description[FED_LONG_MAX];
    int64_t created_ms, updated_ms;
    size_t nsubgroups;
    struct fed_subgroup *subgroups;
    size_t nvms;
    struct fed_vm *vms;
};

/* An id for ns, mci, subgroup or vm: 1..63 of [A-Za-z0-9_.-], not starting with '.' or '-'
 * (they are MQTT topic levels and file names). 0 or -1 with err naming what. */
int fed_check_id(const char *what, const char *id, struct fed_error *err);

/*
 * May `action` start on `vm` now? Nothing on Terminated; Creating and in-progress states
 * block; Suspended allows only resume or terminate; repeating the current state is refused
 * except reboot ("cannot suspend vm1: it is Suspended already"). Failed allows reboot and
 * terminate. 0, or -1 with FED_ESTATE and a message naming the VM and its state.
 */
int fed_check_transition(const struct fed_vm *vm, enum fed_action action, struct fed_error *err);

/* Tumblebug's MCI status: "Running:3 (R:3/3)", "Partial-Suspended:1 (R:2/3)", ... */
const char *fed_mci_status(const struct fed_mci *m, char *buf, size_t len);

void fed_vm_spec_free(struct fed_vm_spec *s);
int fed_vm_spec_copy(struct fed_vm_spec *dst, const struct fed_vm_spec *src);
void fed_vm_free(struct fed_vm *vm); /* frees what the VM owns, not the VM */
int fed_vm_copy(struct fed_vm *dst, const struct fed_vm *src);
void fed_mci_free(struct fed_mci *m); /* frees what the MCI owns, not the MCI */
int fed_mci_copy(struct fed_mci *dst, const struct fed_mci *src);
struct fed_vm *fed_mci_find_vm(struct fed_mci *m, const char *vm);
struct fed_subgroup *fed_mci_find_subgroup(struct fed_mci *m, const char *sg);
/* Appends a copy; returns the new element or NULL (out of memory). */
struct fed_vm *fed_mci_add_vm(struct fed_mci *m, const struct fed_vm *vm);
struct fed_subgroup *fed_mci_add_subgroup(struct fed_mci *m, const struct fed_vm_spec *tmpl);
int fed_mci_remove_vm(struct fed_mci *m, const char *vm);

/*
 * Parses an MCI request (Tumblebug's mciDynamic form, JSON):
 *   {"name":"web", "description":"...",
 *    "vm":[{"name":"sg1", "subGroupSize":"2", "commonSpec":"aws+ap-northeast-2+t2.small",
 *           "commonImage":"ubuntu22.04", "csp":"aws", "region":"ap-northeast-2",
 *           "connectionName":"...", "rootDiskType":"default", "rootDiskSize":"50",
 *           "label":{"k":"v"}, "userData":"#!/bin/sh\n...", "workload":["sleep","3600"]}]}
 * into specs (caller frees each with fed_vm_spec_free, then the array). name is optional.
 */
int fed_mci_request_parse(const char *text, size_t len, char *name, size_t name_len,
                          struct fed_vm_spec **specs, size_t *nspecs, struct fed_error *err);
/* One subgroup object of the form above. */
int fed_vm_spec_parse(const char *text, size_t len, struct fed_vm_spec *out, struct fed_error *err);
/* Checks a spec for creation: ids, size, csp and region present. */
int fed_vm_spec_validate(const struct fed_vm_spec *s, struct fed_error *err);

/* The store's JSON form of an MCI, also printed by `damselfly-fed status --json`. */
char *fed_mci_to_json(const struct fed_mci *m); /* malloc'd text, NULL on OOM */
int fed_mci_from_json(const char *text, size_t len, struct fed_mci *out, struct fed_error *err);

/* ---- store ------------------------------------------------------------------------- */

/*
 * One JSON file per MCI: <dir>/<ns>/<mci>.json, replaced atomically (temporary file, fsync,
 * rename, fsync of the directory). Loaded on open; a file that does not parse is reported
 * and skipped, never loaded half.
 */
struct fed_store;

struct fed_store *fed_store_open(const char *dir, struct fed_error *err);
void fed_store_close(struct fed_store *s);
const char *fed_store_dir(const struct fed_store *s);
/* Deep copy of one MCI into *out (caller frees with fed_mci_free). */
int fed_store_get(struct fed_store *s, const char *ns, const char *mci, struct fed_mci *out,
                  struct fed_error *err);
int fed_store_put(struct fed_store *s, const struct fed_mci *m, struct fed_error *err);
int fed_store_delete(struct fed_store *s, const char *ns, const char *mci, struct fed_error *err);
/* Namespaces, or MCIs of one namespace (ns != NULL): malloc'd array of malloc'd names. */
int fed_store_list(struct fed_store *s, const char *ns, char ***names, size_t *n,
                   struct fed_error *err);
void fed_names_free(char **names, size_t n);
/*
 * Read-modify-write of one MCI under the store's lock: fn edits *m (loaded, or zeroed with
 * ns and id set when absent and create is set) and returns 0 to save, 1 to leave the file
 * as it was, -1 (with err) to fail. The lock is held across fn: keep it short, no driver
 * calls inside.
 */
typedef int (*fed_store_update_fn)(struct fed_mci *m, void *arg, struct fed_error *err);
int fed_store_update(struct fed_store *s, const char *ns, const char *mci, int create,
                     fed_store_update_fn fn, void *arg, struct fed_error *err);

/* ---- the federation handle ----------------------------------------------------------- */

struct fed_driver;
struct fed;

struct fed_config {
    const char *state_dir; /* required: the store and the drivers' files */
    const char *driver;    /* fed_open: "local", "tumblebug" or "kubernetes" */
    /* The driver's options: a struct already filled from the driver's key table (owned by
     * the caller, valid until fed_close), or NULL to fill one from driver_json and
     * driver_set. */
    const void *driver_options;
    const char *driver_json;       /* JSON object of the driver's keys, may be NULL */
    const char *const *driver_set; /* NULL-terminated "key=value" overrides, may be NULL */
    /* Composite operations: bounds on each wait (0: 120 s) and on the wait for a new VM's
     * agent to report online (0: 60 s). */
    int64_t wait_timeout_ms;
    int64_t online_timeout_ms;
    /* Broker credentials of the agents on new VMs (bus_creds.h): mosquitto's password file
     * (NULL or "": not provisioned, agents connect without credentials) and the broker's pid
     * file for the SIGHUP that reloads it (NULL or "": the operator reloads it). */
    const char *bus_password_file;
    const char *bus_broker_pid_file;
    /* Is the agent of this VM reporting? 1 yes, 0 not (yet), -1 cannot tell (err). NULL:
     * the driver's agent_online hook; neither: migrate does not wait for the agent. */
    int (*agent_online)(void *arg, const struct fed_vm *vm, struct fed_error *err);
    void *agent_online_arg;
    /* Called once a VM has been removed from the model (vm delete, mci delete, scale in,
     * the old VM at the end of migrate, a rolled back or failed new VM), with its last
     * record, after the change is saved. The VM's agent leaves its retained status on
     * dsf/a/{ns}/{mci}/{vm}/status, which keeps its agent_offline alarm firing: the hook is
     * where the caller clears it (damselfly-fed publishes an empty retained message). The
     * library never talks to the broker itself. NULL: nothing is called. */
    void (*vm_removed)(void *arg, const struct fed_vm *vm);
    void *vm_removed_arg;
};

/* Looks the driver up by name (fed_driver_find, drivers/registry.c). */
struct fed *fed_open(const struct fed_config *c, struct fed_error *err);
/* With a driver given directly (c->driver is ignored); links only that driver. */
struct fed *fed_open_driver(const struct fed_driver *drv, const struct fed_config *c,
                            struct fed_error *err);
void fed_close(struct fed *f);
const struct fed_driver *fed_driver_of(const struct fed *f);
struct fed_store *fed_store_of(struct fed *f);

/*
 * Creates an MCI (or adds subgroups to an existing one) and its VMs; returns once every VM
 * is Running, or -1 after marking the ones that did not come up Failed.
 */
int fed_create_mci(struct fed *f, const char *ns, const char *mci, const char *description,
                   const struct fed_vm_spec *specs, size_t nspecs, struct fed_error *err);
/* suspend/resume/reboot/terminate one VM: checks the transition, persists the in-progress
 * state, calls the driver, persists the outcome. Returns once the target state is reached. */
int fed_vm_action(struct fed *f, const char *ns, const char *mci, const char *vm,
                  enum fed_action action, struct fed_error *err);
/* The same on every VM of the MCI that allows it; VMs already in the target state are
 * skipped. Fails (after trying all) if any VM failed. */
int fed_mci_action(struct fed *f, const char *ns, const char *mci, enum fed_action action,
                   struct fed_error *err);
/* Terminates the VM if needed and removes it from the model (Tumblebug's DELETE vm); then
 * calls fed_config.vm_removed. */
int fed_vm_delete(struct fed *f, const char *ns, const char *mci, const char *vm,
                  struct fed_error *err);
/* Terminates every VM and removes the MCI; then calls fed_config.vm_removed for each VM. */
int fed_mci_delete(struct fed *f, const char *ns, const char *mci, struct fed_error *err);
/* Refreshes every VM of the MCI from reality (driver status) and persists what changed;
 * *out (may be NULL) receives the refreshed copy. When the driver could not read some VM's
 * status, the others are still refreshed and persisted, *out is still filled (the unread
 * VMs as last known) and the call returns -1 with that driver error: check out->nvms or
 * out->vms before using it, and free it in either case. */
int fed_mci_refresh(struct fed *f, const char *ns, const char *mci, struct fed_mci *out,
                    struct fed_error *err);

struct fed_migrate_options {
    const char *region;      /* required */
    const char *csp;         /* NULL: keep */
    const char *common_spec; /* NULL: the template's with csp and region replaced */
    const char *new_id;      /* NULL: <subgroup>-<next free index> */
};
/*
 * Creates a replacement from the VM's spec template in another region/CSP, waits until it
 * is Running and its agent reports online, then deletes the old VM. If any step before the
 * old VM's removal fails, the new VM is deleted again and the old one is left untouched.
 * new_id (may be NULL) receives the new VM's id.
 */
int fed_migrate(struct fed *f, const char *ns, const char *mci, const char *vm,
                const struct fed_migrate_options *o, char *new_id, size_t new_id_len,
                struct fed_error *err);
/* Adds n VMs (autogen) to a subgroup from its template, through the driver's native
 * scale_out when it has one. Returns the number added (n), or -1. */
int fed_scale_out(struct fed *f, const char *ns, const char *mci, const char *subgroup, int n,
                  struct fed_error *err);
/* Removes n VMs of a subgroup: autogen ones first (newest first), then the others (newest
 * first). Refuses to remove the subgroup's last VM. Returns the number removed. */
int fed_scale_in(struct fed *f, const char *ns, const char *mci, const char *subgroup, int n,
                 struct fed_error *err);

/* Kubernetes nodes and workloads (driver calls; no model). */
struct fed_drain_options {
    int64_t timeout_ms; /* whole drain; 0: driver default */
    int grace_period_s; /* pod termination grace; -1: the pod's own */
    int dry_run;
    /* out, may be NULL: "ns/name ns/name ..." of the pods evicted (in a dry run: that the API
     * server accepted to evict), cut at a pod boundary when it does not fit */
    char *evicted;
    size_t evicted_len;
};
enum fed_scale_kind { FED_SCALE_DEPLOYMENT, FED_SCALE_MACHINEDEPLOYMENT };
const char *fed_scale_kind_name(enum fed_scale_kind k); /* "deployment", ... */
int fed_scale_kind_parse(const char *name, enum fed_scale_kind *out);

int fed_node_cordon(struct fed *f, const char *node, int on, int dry_run, struct fed_error *err);
int fed_node_drain(struct fed *f, const char *node, const struct fed_drain_options *o,
                   struct fed_error *err);
/* old_replicas (may be NULL) receives the count before the change, -1 when unknown. */
int fed_scale(struct fed *f, enum fed_scale_kind kind, const char *ns, const char *name,
              int replicas, int dry_run, int *old_replicas, struct fed_error *err);
/* The replicas a Deployment (MachineDeployment) asks for, without changing anything. */
int fed_scale_get(struct fed *f, enum fed_scale_kind kind, const char *ns, const char *name,
                  int *replicas, struct fed_error *err);

#endif
