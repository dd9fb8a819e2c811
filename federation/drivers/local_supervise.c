/* The local driver's supervision of a VM's processes: start, health, freeze and thaw,
 * stop, and the state they show. Signals go to a process group only once one of its
 * members is proven ours (pid and start time), or through the VM's own cgroup. */
#define DSF_MODULE "fed-local"
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "federation/driver.h"
#include "federation/drivers/local.h"
#include "federation/drivers/local_proc.h"

void local_load_procs(const struct fed_vm *vm, struct procs *p)
{
    memset(p, 0, sizeof(*p));
    p->pid = (pid_t)fed_vm_data_int(vm, "pid");
    p->pgid = (pid_t)fed_vm_data_int(vm, "pgid");
    p->wpid = (pid_t)fed_vm_data_int(vm, "wpid");
    p->start = (uint64_t)fed_vm_data_int(vm, "start");
    p->wstart = (uint64_t)fed_vm_data_int(vm, "wstart");
    p->port = (int)fed_vm_data_int(vm, "port");
    fed_vm_data_str(vm, "cgroup", p->cgroup, sizeof(p->cgroup));
}

static int save_procs(struct fed_vm *vm, const struct procs *p)
{
    if (fed_vm_data_set_int(vm, "pid", p->pid) < 0 ||
        fed_vm_data_set_int(vm, "pgid", p->pgid) < 0 ||
        fed_vm_data_set_int(vm, "start", (int64_t)p->start) < 0 ||
        fed_vm_data_set_int(vm, "wpid", p->wpid) < 0 ||
        fed_vm_data_set_int(vm, "wstart", (int64_t)p->wstart) < 0 ||
        fed_vm_data_set_int(vm, "port", p->port) < 0 ||
        fed_vm_data_set_str(vm, "cgroup", p->cgroup) < 0)
        return -1;
    return 0;
}

/* A member of the group we can prove is ours (pid and start time match). Signalling a
 * process group is only safe then: a group whose members all died may be a stranger's. */
static int group_is_ours(const struct procs *p)
{
    pid_t g;
    char st;
    uint64_t s;
    if (p->pgid <= 0)
        return 0;
    if (p->pid > 0 && lp_proc_stat(p->pid, &st, &g, &s) == 0 && s == p->start && g == p->pgid &&
        st != 'Z')
        return 1;
    if (p->wpid > 0 && lp_proc_stat(p->wpid, &st, &g, &s) == 0 && s == p->wstart && g == p->pgid &&
        st != 'Z')
        return 1;
    return 0;
}

/* Processes of the VM still alive: the cgroup's, or the proven group's. */
static long remaining(const struct procs *p)
{
    pid_t pids[64];
    if (p->cgroup[0]) {
        long n = lp_cg_procs(p->cgroup, pids, 64);
        return n < 0 ? 0 : n;
    }
    return group_is_ours(p) ? (long)lp_pgrp_members(p->pgid, pids, 64) : 0;
}

static void signal_all(const struct procs *p, int sig)
{
    if (p->cgroup[0]) {
        lp_cg_signal(p->cgroup, sig);
    } else if (group_is_ours(p)) {
        kill(-p->pgid, sig);
    }
}

static int wait_gone(const struct procs *p, int64_t timeout_ms)
{
    struct fed_backoff b;
    fed_backoff_init(&b, timeout_ms);
    b.initial_ms = 20;
    b.max_ms = 250;
    while (remaining(p) > 0) {
        if (!fed_backoff_wait(&b))
            return -1;
    }
    return 0;
}

int local_stop_procs(struct local *l, const struct fed_vm *vm, const struct procs *p,
                     struct fed_error *err)
{
    if (p->cgroup[0] && lp_cg_frozen(p->cgroup) == 1) {
        /* A frozen task does not act on SIGTERM until thawed. */
        lp_cg_freeze(p->cgroup, 0, l->o->timeout_ms, NULL);
    }
    signal_all(p, SIGTERM);
    if (!p->cgroup[0])
        signal_all(p, SIGCONT); /* stopped processes must run to handle SIGTERM */
    if (wait_gone(p, l->o->stop_timeout_ms) == 0)
        return 0;
    log_warn("%s: still running %lld ms after SIGTERM: SIGKILL", vm->id,
             (long long)l->o->stop_timeout_ms);
    signal_all(p, SIGKILL);
    if (wait_gone(p, l->o->timeout_ms) == 0)
        return 0;
    return fed_fail(err, FED_EBACKEND, "kill", 0, "%s: %ld processes survived SIGKILL", vm->id,
                    remaining(p));
}

int local_pick_port(struct local *l)
{
    pthread_mutex_lock(&l->port_mu);
    int port = -1;
    for (int tries = 0; tries < 32 && port < 0; tries++) {
        port = lp_free_port();
        for (unsigned i = 0; port > 0 && i < 16; i++) {
            if (l->recent_ports[i] == port)
                port = -1;
        }
    }
    if (port > 0)
        l->recent_ports[l->nrecent++ % 16] = port;
    pthread_mutex_unlock(&l->port_mu);
    return port;
}

static void cg_dir(const struct local *l, const struct fed_vm *vm, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s/%s/%s", l->cg_base, vm->ns, vm->mci, vm->id);
}

static int prepare_cgroup(struct local *l, const struct fed_vm *vm, char *out, size_t len,
                          struct fed_error *err)
{
    out[0] = 0;
    if (!l->cg_base[0])
        return 0;
    cg_dir(l, vm, out, len);
    if (lp_cg_create(out, err) < 0)
        return -1;
    lp_cg_freeze(out, 0, l->o->timeout_ms, NULL);
    pid_t pids[4];
    if (lp_cg_procs(out, pids, 4) > 0) {
        /* Left over from an earlier life of this VM id in this state directory. */
        log_warn("%s: cgroup %s still had processes: killed", vm->id, out);
        lp_cg_signal(out, SIGKILL);
    }
    return 0;
}

/* The workload's argv ({port} filled in) and its program's path; an exporter VM must have
 * one. *argv stays NULL (0 returned) when there is none. */
static int resolve_workload(const struct fed_vm *vm, int port, int exporter, char ***argv,
                            char *path, size_t len, struct fed_error *err)
{
    *argv = local_workload_argv(vm, port);
    if (vm->spec.workload && !*argv)
        return fed_fail(err, FED_EIO, "start workload", ENOMEM, "out of memory");
    if (exporter && !*argv)
        return fed_fail(err, FED_EINVAL, "start exporter", 0,
                        "%s: %s exporter needs a workload: the exporter's argv, e.g. "
                        "[\"prometheus-node-exporter\", \"--web.listen-address=127.0.0.1:{port}\"]",
                        vm->id, FED_LABEL_MONITORING);
    if (*argv && lp_which((*argv)[0], path, len) < 0) {
        fed_fail(err, FED_EINVAL, "start workload", ENOENT,
                 "%s: workload program '%s' not found or not executable", vm->id, (*argv)[0]);
        local_free_strv(*argv);
        *argv = NULL;
        return -1;
    }
    return 0;
}

static int record_started(struct local *l, struct fed_vm *vm, struct procs *p, int exporter,
                          struct fed_error *err)
{
    lp_proc_stat(p->pid, NULL, NULL, &p->start);
    if (p->wpid > 0)
        lp_proc_stat(p->wpid, NULL, NULL, &p->wstart);
    if (save_procs(vm, p) < 0)
        return fed_fail(err, FED_EIO, "start", 0, "driver data does not fit");
    local_write_run_file(l, vm);
    log_info("%s/%s/%s started: %s pid %d, workload pid %d, pgid %d%s%s", vm->ns, vm->mci, vm->id,
             exporter ? "exporter" : "agent", (int)p->pid, (int)p->wpid, (int)p->pgid,
             p->cgroup[0] ? ", cgroup " : "", p->cgroup);
    return 0;
}

/* The agent and the workload, or an exporter VM's workload alone as its main process. */
int local_start_procs(struct local *l, struct fed_vm *vm, struct procs *p, struct fed_error *err)
{
    char dir[PATH_MAX], bin[PATH_MAX + 64], cfg[PATH_MAX + 64], wl[PATH_MAX],
        procs_file[PATH_MAX + 16];
    local_vm_dir(l, vm, dir, sizeof(dir));
    snprintf(bin, sizeof(bin), "%s/usr/local/bin/damselfly-agent", dir);
    snprintf(cfg, sizeof(cfg), "%s/etc/damselfly/agent.json", dir);
    char *argv[] = {bin, "--config", cfg, NULL};
    struct fed_monitoring_spec ms;
    int exporter = local_monitoring(vm, &ms) == FED_MONITOR_EXPORTER;
    char **wargv;
    if (resolve_workload(vm, p->port, exporter, &wargv, wl, sizeof(wl), err) < 0)
        return -1;
    int fd = -1, rc = prepare_cgroup(l, vm, p->cgroup, sizeof(p->cgroup), err);
    snprintf(procs_file, sizeof(procs_file), "%s/cgroup.procs", p->cgroup);
    if (rc == 0 && (fd = local_open_log(dir, "console.log", 0, err)) < 0)
        rc = -1;
    char **env = rc == 0 ? local_vm_env(vm, dir) : NULL;
    struct lp_spawn s = {.agent_path = exporter ? wl : bin,
                         .agent_argv = exporter ? wargv : argv,
                         .workload_path = wargv && !exporter ? wl : NULL,
                         .workload_argv = exporter ? NULL : wargv,
                         .envp = env,
                         .cwd = dir,
                         .log_fd = fd,
                         .cgroup_procs = p->cgroup[0] ? procs_file : NULL};
    if (rc == 0)
        rc = env ? lp_spawn(&s, &p->pgid, &p->pid, &p->wpid, err)
                 : fed_fail(err, FED_EIO, "start", ENOMEM, "out of memory");
    if (fd >= 0)
        close(fd);
    local_free_strv(env);
    local_free_strv(wargv);
    return rc < 0 ? -1 : record_started(l, vm, p, exporter, err);
}

/* Running once the agent answers /healthz (an exporter VM: its scrape path); Failed when it
 * dies first. */
int local_wait_up(struct local *l, struct fed_vm *vm, const struct procs *p, struct fed_error *err)
{
    char dir[PATH_MAX], tail[400];
    local_vm_dir(l, vm, dir, sizeof(dir));
    struct fed_monitoring_spec ms;
    int exporter = local_monitoring(vm, &ms) == FED_MONITOR_EXPORTER;
    const char *what = exporter ? "exporter" : "agent", *probe = exporter ? ms.path : "/healthz";
    struct fed_backoff b;
    fed_backoff_init(&b, l->o->timeout_ms);
    b.initial_ms = 50;
    b.max_ms = 500;
    for (;;) {
        if (!lp_alive(p->pid, p->start, NULL)) {
            vm->state = FED_VM_FAILED;
            return fed_fail(err, FED_EBACKEND, exporter ? "start exporter" : "start agent", 0,
                            "%s: the %s (pid %d) exited during start: %s", vm->id, what,
                            (int)p->pid, local_log_tail(dir, "console.log", tail, sizeof(tail)));
        }
        int code;
        free(lp_http_get(p->port, probe, NULL, &code, 1000));
        if (code == 200) {
            vm->state = FED_VM_RUNNING;
            return 0;
        }
        if (!fed_backoff_wait(&b)) {
            vm->state = FED_VM_FAILED;
            return fed_fail(err, FED_ETIMEOUT, exporter ? "start exporter" : "start agent", 0,
                            "%s: the %s did not answer on 127.0.0.1:%d%s within %lld ms: %s",
                            vm->id, what, p->port, probe, (long long)l->o->timeout_ms,
                            local_log_tail(dir, "console.log", tail, sizeof(tail)));
        }
    }
}

/* The VM as its processes show it. */
static enum fed_vm_state observe(struct local *l, const struct fed_vm *vm, const struct procs *p,
                                 char *why, size_t len)
{
    char st;
    why[0] = 0;
    if (lp_alive(p->pid, p->start, &st)) {
        if (p->cgroup[0] && lp_cg_frozen(p->cgroup) == 1)
            return FED_VM_SUSPENDED;
        if (!p->cgroup[0] && (st == 'T' || st == 't'))
            return FED_VM_SUSPENDED;
        return FED_VM_RUNNING;
    }
    long left = remaining(p);
    uint64_t s;
    if (p->pid > 0 && lp_proc_stat(p->pid, NULL, NULL, &s) == 0 && s != p->start)
        snprintf(why, len,
                 "agent pid %d now belongs to another process (start %llu, not %llu): "
                 "not adopted",
                 (int)p->pid, (unsigned long long)s, (unsigned long long)p->start);
    else if (p->pid > 0)
        snprintf(why, len, "the agent (pid %d) is gone%s", (int)p->pid,
                 left ? "; other processes of the VM remain" : "");
    else
        snprintf(why, len, "no processes recorded");
    if (left == 0 && (vm->state == FED_VM_TERMINATING || vm->state == FED_VM_TERMINATED))
        return FED_VM_TERMINATED;
    return FED_VM_FAILED;
}

int local_status(void *ctx, struct fed_vm *vm, struct fed_error *err)
{
    struct procs p;
    local_load_procs(vm, &p);
    char why[256];
    enum fed_vm_state s = observe(ctx, vm, &p, why, sizeof(why));
    vm->state = s;
    if (s == FED_VM_FAILED)
        snprintf(vm->message, sizeof(vm->message), "%s", why);
    else if (s == FED_VM_RUNNING || s == FED_VM_SUSPENDED)
        vm->message[0] = 0;
    return 0;
}

static int need_alive(struct local *l, struct fed_vm *vm, const struct procs *p, const char *call,
                      struct fed_error *err)
{
    char why[256];
    enum fed_vm_state s = observe(l, vm, p, why, sizeof(why));
    if (s == FED_VM_FAILED || s == FED_VM_TERMINATED) {
        vm->state = s;
        snprintf(vm->message, sizeof(vm->message), "%s", why);
        return fed_fail(err, FED_EBACKEND, call, 0, "%s: %s", vm->id, why);
    }
    return 0;
}

/* Every live process of the group stopped. */
static int group_stopped(const struct procs *p)
{
    pid_t pids[64];
    size_t n = lp_pgrp_members(p->pgid, pids, 64);
    for (size_t i = 0; i < n && i < 64; i++) {
        char st;
        if (lp_proc_stat(pids[i], &st, NULL, NULL) == 0 && st != 'T' && st != 't' && st != 'Z')
            return 0;
    }
    return 1;
}

static int signal_freeze(struct local *l, struct fed_vm *vm, const struct procs *p, int on,
                         struct fed_error *err)
{
    if (!group_is_ours(p))
        return fed_fail(err, FED_EBACKEND, on ? "SIGSTOP" : "SIGCONT", 0,
                        "%s: no process of group %d is provably ours", vm->id, (int)p->pgid);
    if (kill(-p->pgid, on ? SIGSTOP : SIGCONT) < 0)
        return fed_fail(err, FED_EIO, on ? "SIGSTOP" : "SIGCONT", errno, "kill -%d: %s",
                        (int)p->pgid, strerror(errno));
    struct fed_backoff b;
    fed_backoff_init(&b, l->o->timeout_ms);
    b.initial_ms = 10;
    b.max_ms = 200;
    char st = 0;
    while (on ? !group_stopped(p) : (lp_alive(p->pid, p->start, &st) && (st == 'T' || st == 't'))) {
        if (!fed_backoff_wait(&b))
            return fed_fail(err, FED_ETIMEOUT, on ? "SIGSTOP" : "SIGCONT", 0,
                            "%s: processes did not %s within %lld ms", vm->id,
                            on ? "stop" : "continue", (long long)l->o->timeout_ms);
    }
    return 0;
}

int local_set_frozen(struct local *l, struct fed_vm *vm, int on, struct fed_error *err)
{
    struct procs p;
    local_load_procs(vm, &p);
    if (need_alive(l, vm, &p, on ? "suspend" : "resume", err) < 0)
        return -1;
    int rc = p.cgroup[0] ? lp_cg_freeze(p.cgroup, on, l->o->timeout_ms, err)
                         : signal_freeze(l, vm, &p, on, err);
    char why[256];
    vm->state = observe(l, vm, &p, why, sizeof(why));
    if (rc < 0)
        return -1;
    enum fed_vm_state want = on ? FED_VM_SUSPENDED : FED_VM_RUNNING;
    if (vm->state != want)
        return fed_fail(err, FED_EBACKEND, on ? "suspend" : "resume", 0, "%s is %s, not %s%s%s",
                        vm->id, fed_vm_state_name(vm->state), fed_vm_state_name(want),
                        why[0] ? ": " : "", why);
    log_info("%s/%s/%s %s", vm->ns, vm->mci, vm->id, on ? "suspended" : "resumed");
    return 0;
}

/* The VM's cgroup and its ns/mci parents once they are empty (rmdir fails otherwise). */
void local_remove_cgroup(struct local *l, const struct fed_vm *vm, const char *dir)
{
    char parent[PATH_MAX + 2 * FED_NAME_MAX + 8];
    lp_cg_remove(dir);
    snprintf(parent, sizeof(parent), "%s/%s/%s", l->cg_base, vm->ns, vm->mci);
    lp_cg_remove(parent);
    snprintf(parent, sizeof(parent), "%s/%s", l->cg_base, vm->ns);
    lp_cg_remove(parent);
}
