/*
 * The driver interface, in the spirit of CB-Spider's cloud driver interface: one vtable per
 * backend (local processes, CB-Tumblebug, Kubernetes). The library (federation.h) checks
 * transitions and persists the model; a driver only acts on the real thing and reports what
 * it sees. What every driver call must guarantee:
 *
 * - Blocking: an action returns once the VM has reached its target state (create_vm,
 *   resume, reboot: Running; suspend: Suspended; terminate: Terminated), or -1 with err.
 *   It never reports a state it has not observed: on a failure it sets vm->state to what it
 *   last saw (Failed when the VM is broken, unchanged when nothing happened) and fills err.
 *   terminate of a VM the backend does not know (never created, deleted already) succeeds
 *   with Terminated. After a failed action the library asks status() what is real, and
 *   counts the action as done when that shows the target state - never for reboot, whose
 *   target (Running) is where it started: a failed reboot stays a failure.
 * - scale_out: once the backend has created VMs, they are returned in *vms also when a
 *   later step (naming, waiting for Running) fails, each in the state last seen, so that
 *   the library records them instead of losing track of machines that exist.
 * - Bounded: every wait and every remote call has a timeout (the driver's "timeout" option,
 *   per operation); transient failures (connection refused, 5xx, 429) are retried with
 *   exponential backoff within that bound (fed_backoff below). Running out of time is
 *   FED_ETIMEOUT.
 * - Errors name the call ("GET /tumblebug/ns/n/mci/m", "kill pgid 1234"), the status it got
 *   (HTTP status, errno, exit status) and the body or reason, via fed_fail().
 * - A driver may update the fed_vm it is given: state, target fields, address, native_id,
 *   message, driver_data (its own JSON object, persisted by the library and handed back on
 *   every later call, also after the host process restarted). create_vm may rename vm->id to
 *   the backend's name. It must not keep pointers into the fed_vm after returning.
 * - Thread safety: calls on one ctx may come from several threads at once, for different
 *   VMs; the driver serialises what it shares itself.
 * - Operations a driver does not support are NULL: the library reports
 *   "driver X does not support Y" (FED_EUNSUPPORTED).
 */
#ifndef DSF_FED_DRIVER_H
#define DSF_FED_DRIVER_H

#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "federation/bus_creds.h"
#include "federation/federation.h"

struct fed_driver {
    const char *name;    /* "local", "tumblebug", "kubernetes" */
    const char *summary; /* one line, for --help */

    /*
     * Options: a key table filled into a struct of options_size bytes (section prefix is
     * the driver's name: "tumblebug.url", "local.install_script"). The library fills it with
     * dsf_cfg_defaults/dsf_cfg_load_json/dsf_cfg_set, then calls open; the struct stays
     * valid until close. keys may be NULL (no options; open gets NULL).
     */
    const struct dsf_cfg_key *keys;
    size_t options_size;

    /* state_dir: a directory the driver may keep files in (created by the library). bus:
     * the agents' broker credentials (bus_creds.h; never NULL, maybe disabled), owned by
     * the library and valid until close: a driver that creates VMs grants each VM's agent
     * its user when it creates the VM, hands the password to the VM with the agent, and
     * revokes the user when it terminates the VM. */
    void *(*open)(const void *options, const char *state_dir, struct fed_bus *bus,
                  struct fed_error *err);
    void (*close)(void *ctx);

    /* ---- VMs (any may be NULL) ---- */
    /* vm carries ns, mci, id, subgroup, autogen and spec (size 1); state is Creating. */
    int (*create_vm)(void *ctx, struct fed_vm *vm, struct fed_error *err);
    int (*suspend)(void *ctx, struct fed_vm *vm, struct fed_error *err);
    int (*resume)(void *ctx, struct fed_vm *vm, struct fed_error *err);
    int (*reboot)(void *ctx, struct fed_vm *vm, struct fed_error *err);
    int (*terminate)(void *ctx, struct fed_vm *vm, struct fed_error *err);
    /* Refreshes vm->state (and address, message) from reality; does not act. A VM the
     * backend no longer knows is Terminated; one whose processes died is Failed. */
    int (*status)(void *ctx, struct fed_vm *vm, struct fed_error *err);
    /* The backend's view of one MCI: a malloc'd array of VMs (caller frees each with
     * fed_vm_free, then the array). An unknown MCI is an empty list, not an error. */
    int (*list)(void *ctx, const char *ns, const char *mci, struct fed_vm **vms, size_t *n,
                struct fed_error *err);

    /* Optional: create several subgroups at once (Tumblebug's mciDynamic). vms[] are as for
     * create_vm; on return each has its state. Without it the library calls create_vm. */
    int (*create_mci)(void *ctx, const char *ns, const char *mci, const char *description,
                      struct fed_vm *vms, size_t n, struct fed_error *err);
    /* Optional: remove the (now empty) MCI object from the backend. */
    int (*delete_mci)(void *ctx, const char *ns, const char *mci, struct fed_error *err);
    /*
     * Optional native subgroup scale out (Tumblebug's POST .../subgroup/{sg} numVMsToAdd):
     * adds n VMs from tmpl and returns them Running in a malloc'd array (*vms, *nvms; ids
     * as the backend named them). Without it the library calls create_vm n times.
     * On failure *vms still holds every VM the backend created (see above).
     */
    int (*scale_out)(void *ctx, const char *ns, const char *mci, const char *subgroup, int n,
                     const struct fed_vm_spec *tmpl, struct fed_vm **vms, size_t *nvms,
                     struct fed_error *err);
    /* Optional: is the VM's agent reporting? 1 yes, 0 not (yet), -1 cannot tell (err). */
    int (*agent_online)(void *ctx, const struct fed_vm *vm, struct fed_error *err);

    /* ---- Kubernetes nodes and workloads (any may be NULL) ---- */
    /* on = 1 cordons (spec.unschedulable true), 0 uncordons. */
    int (*cordon)(void *ctx, const char *node, int on, int dry_run, struct fed_error *err);
    /* Cordons, then evicts every pod but DaemonSet and mirror pods, retrying PDB refusals,
     * until none is left or o->timeout_ms runs out. */
    int (*drain)(void *ctx, const char *node, const struct fed_drain_options *o,
                 struct fed_error *err);
    /* old_replicas may be NULL. */
    int (*scale)(void *ctx, enum fed_scale_kind kind, const char *ns, const char *name,
                 int replicas, int dry_run, int *old_replicas, struct fed_error *err);
    /* Reads the replicas the object asks for (spec.replicas of its /scale). */
    int (*scale_get)(void *ctx, enum fed_scale_kind kind, const char *ns, const char *name,
                     int *replicas, struct fed_error *err);
};

extern const struct fed_driver fed_driver_local, fed_driver_tumblebug, fed_driver_kubernetes;

/* NULL-terminated, in drivers/registry.c. */
extern const struct fed_driver *const fed_drivers[];
/* NULL (and err: "unknown driver 'x' (known: local, tumblebug, kubernetes)") if unknown. */
const struct fed_driver *fed_driver_find(const char *name, struct fed_error *err);

/* ---- helpers for drivers ------------------------------------------------------------- */

int64_t fed_now_ms(void);      /* CLOCK_MONOTONIC, ms */
int64_t fed_wall_ms(void);     /* CLOCK_REALTIME, ms */
void fed_sleep_ms(int64_t ms); /* restarts after signals */
/* mkdir -p (mode 0755) through dsf_mkdir_p; the error is call's, with errno as status. */
int fed_mkdir_p(const char *path, const char *call, struct fed_error *err);

/* Exponential backoff with jitter: 100 ms, 200 ms, ... capped at max_ms, never past the
 * deadline. */
struct fed_backoff {
    int64_t deadline_ms; /* fed_now_ms() based */
    int64_t next_ms;     /* next delay; 0 starts at initial */
    int64_t initial_ms;  /* 0: 100 */
    int64_t max_ms;      /* 0: 5000 */
};
void fed_backoff_init(struct fed_backoff *b, int64_t timeout_ms);
/* Sleeps for the next delay and returns 1, or returns 0 at once when the deadline has
 * passed (the caller then reports FED_ETIMEOUT). */
int fed_backoff_wait(struct fed_backoff *b);

/* The driver's JSON data of a VM: integer and string fields (0 / "" when absent). */
int64_t fed_vm_data_int(const struct fed_vm *vm, const char *key);
const char *fed_vm_data_str(const struct fed_vm *vm, const char *key, char *buf, size_t len);
/* Sets one field (creating the object); -1 when it would not fit FED_DRIVER_DATA_MAX. */
int fed_vm_data_set_int(struct fed_vm *vm, const char *key, int64_t v);
int fed_vm_data_set_str(struct fed_vm *vm, const char *key, const char *v);

#endif
