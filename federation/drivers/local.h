/* The local driver's parts (see local.c): setting a VM up as cloud-init would
 * (local_install.c), supervising its processes (local_supervise.c) and finding them again
 * after a restart (local_adopt.c). */
#ifndef DSF_FED_DRIVERS_LOCAL_H
#define DSF_FED_DRIVERS_LOCAL_H

#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

#include "federation/driver.h"
#include "federation/scrape.h"

/* Bases that VM paths are built on: short enough that every such path fits PATH_MAX. */
#define DIR_MAX 2048

struct local_options {
    char *install_script;
    char *agent_binary;
    char *mqtt_url;
    int64_t interval_ms;
    char *agent_user;
    char *freezer;
    char *cgroup_root;
    int64_t timeout_ms;
    int64_t stop_timeout_ms;
    int64_t install_timeout_ms;
};

struct local {
    const struct local_options *o;
    struct fed_bus *bus;    /* the agents' broker credentials (borrowed) */
    char dir[DIR_MAX];      /* <state>/local */
    char install[PATH_MAX]; /* install-agent.sh */
    char agent[PATH_MAX];   /* damselfly-agent to install */
    char cg_base[DIR_MAX];  /* "" in signal mode */
    pthread_mutex_t port_mu;
    int recent_ports[16];
    unsigned nrecent;
};

/* A VM's processes as its driver data records them (pids with their start times). */
struct procs {
    pid_t pid, pgid, wpid;
    uint64_t start, wstart;
    int port;
    char cgroup[PATH_MAX];
};

/* ---- local_install.c: the VM's directory and the cloud-init part ---- */

/* <state>/local/vms/<ns>/<mci>/<vm>; -1 when the state directory's path is too long. */
int local_vm_dir(const struct local *l, const struct fed_vm *vm, char *buf, size_t len);
/* dir/name opened for appending (or truncated); -1 with err. */
int local_open_log(const char *dir, const char *name, int trunc, struct fed_error *err);
/* The last lines of a log, on one line, for error messages. */
const char *local_log_tail(const char *dir, const char *name, char *buf, size_t len);
/* The environment of a VM's processes; free it with local_free_strv. */
char **local_vm_env(const struct fed_vm *vm, const char *dir);
void local_free_strv(char **v);
/* How the VM is monitored, from its spec's labels (checked at creation; push when they
 * are gone, as on a VM re-adopted from its run.json). */
enum fed_monitoring local_monitoring(const struct fed_vm *vm, struct fed_monitoring_spec *ms);
/* <state>/local/pull.token: the bearer token every pull agent requires, made (0600, random)
 * for the first one. token holds DSF_HTTP_TOKEN_MAX + 1 bytes, may be NULL. */
int local_pull_token(const struct local *l, char *path, size_t len, char *token,
                     struct fed_error *err);
/* The spec's workload with each "{port}" replaced by port; NULL for none or out of memory.
 * Free it with local_free_strv. */
char **local_workload_argv(const struct fed_vm *vm, int port);
/* install-agent.sh --prefix dir, with the VM's identity, its agent's HTTP port and its
 * broker credentials (granted here when provisioning is on; revoked again when the install
 * fails). */
int local_install_agent(struct local *l, const struct fed_vm *vm, const char *dir, int port,
                        struct fed_error *err);
/* The spec's user data, after the agent is in place (0 when there is none). */
int local_run_user_data(struct local *l, const struct fed_vm *vm, const char *dir,
                        struct fed_error *err);

/* ---- local_supervise.c: the VM's processes ---- */

void local_load_procs(const struct fed_vm *vm, struct procs *p);
/* A loopback port for a new agent, not one handed out lately; -1 when none is free. */
int local_pick_port(struct local *l);
/* Starts the agent and the workload (in the VM's cgroup) and records them in vm. */
int local_start_procs(struct local *l, struct fed_vm *vm, struct procs *p, struct fed_error *err);
/* Running once the agent answers /healthz (an exporter VM: its scrape path); Failed when it
 * dies first. */
int local_wait_up(struct local *l, struct fed_vm *vm, const struct procs *p, struct fed_error *err);
/* SIGTERM, SIGKILL after stop_timeout; 0 once no process of the VM is left. */
int local_stop_procs(struct local *l, const struct fed_vm *vm, const struct procs *p,
                     struct fed_error *err);
/* Suspend (on) or resume: the cgroup freezer, or SIGSTOP/SIGCONT to the proven group. */
int local_set_frozen(struct local *l, struct fed_vm *vm, int on, struct fed_error *err);
void local_remove_cgroup(struct local *l, const struct fed_vm *vm, const char *dir);
/* The driver's status(): the VM's state read from its processes. */
int local_status(void *ctx, struct fed_vm *vm, struct fed_error *err);

/* ---- local_adopt.c: the run.json record and re-adoption ---- */

void local_write_run_file(const struct local *l, const struct fed_vm *vm);
/* The driver's list(): the VMs recorded under ns/mci, each with its status. */
int local_list(void *ctx, const char *ns, const char *mci, struct fed_vm **vms, size_t *n,
               struct fed_error *err);
/* Reads every recorded VM's state at open and logs how many are still alive. */
void local_adopt_all(struct local *l);

#endif
