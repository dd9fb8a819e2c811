/*
 * The local driver: a VM is a supervised tree of local processes (the real damselfly-agent
 * and an optional workload) in its own directory, set up the way cloud-init sets up a cloud
 * VM: deploy/install-agent.sh --prefix <vmdir> writes the binary and the config with the
 * VM's identity (ns, mci, vm, csp, region) and broker, then the spec's user data runs.
 *
 * The processes run in a session of their own, detached from the host process so that they
 * outlive it, and - where cgroup v2 is writable - in a cgroup of their own:
 *   suspend   cgroup.freeze = 1 (or SIGSTOP to the process group)
 *   resume    cgroup.freeze = 0 (or SIGCONT)
 *   reboot    stop, then start again from the installed files
 *   terminate SIGTERM, then SIGKILL (cgroup.kill) after local.stop_timeout
 * The VM's state is always read from the processes themselves. Pids are recorded with their
 * start time (field 22 of /proc/PID/stat) in the VM's driver data and in <vmdir>/run.json,
 * so that a restarted host re-adopts running VMs and never mistakes a reused pid for one.
 *
 * "Agent reports online" is read from the agent's own HTTP endpoint on the loopback port the
 * driver assigned (http.listen): /healthz says "connected":true (its MQTT session, which
 * carries the retained online status, is up) and /metrics shows the broker has confirmed at
 * least one metrics message.
 */
#define DSF_MODULE "fed-local"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/file.h"
#include "common/log.h"
#include "federation/driver.h"
#include "federation/drivers/local_proc.h"

#ifndef DSF_SOURCE_DIR
#define DSF_SOURCE_DIR ""
#endif
#ifndef DSF_BINARY_DIR
#define DSF_BINARY_DIR ""
#endif

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

#define K(f) offsetof(struct local_options, f)
static const struct dsf_cfg_key local_keys[] = {
    {"install_script", DSF_CFG_STR, "", K(install_script),
     "deploy/install-agent.sh to set VMs up with; empty: the source tree's, else "
     "<dir of the program>/../share/damselfly/install-agent.sh",
     0, 0},
    {"agent_binary", DSF_CFG_STR, "", K(agent_binary),
     "damselfly-agent executable installed into each VM; empty: the build tree's, else "
     "damselfly-agent beside the program",
     0, 0},
    {"mqtt_url", DSF_CFG_STR, "tcp://127.0.0.1:1883", K(mqtt_url), "broker the VMs' agents push to",
     0, 0},
    {"interval", DSF_CFG_DURATION, "2s", K(interval_ms), "the agents' collection interval", 1000,
     86400000},
    {"agent_user", DSF_CFG_STR, "nobody", K(agent_user),
     "account the agents switch to when started as root", 0, 0},
    {"freezer", DSF_CFG_STR, "auto", K(freezer),
     "how suspend freezes a VM: cgroup (cgroup v2 cgroup.freeze), signal (SIGSTOP to its "
     "process group) or auto (cgroup where writable)",
     0, 0},
    {"cgroup_root", DSF_CFG_STR, "", K(cgroup_root),
     "cgroup v2 directory under which VM cgroups are made; empty: <cgroup2 mount>/damselfly-local",
     0, 0},
    {"timeout", DSF_CFG_DURATION, "30s", K(timeout_ms),
     "bound on each wait: agent up after start, freeze, thaw", 100, 3600000},
    {"stop_timeout", DSF_CFG_DURATION, "5s", K(stop_timeout_ms),
     "time between SIGTERM and SIGKILL when stopping a VM", 0, 600000},
    {"install_timeout", DSF_CFG_DURATION, "60s", K(install_timeout_ms),
     "bound on install-agent.sh and the user data script", 1000, 3600000},
    DSF_CFG_END,
};
#undef K

/* Bases that VM paths are built on: short enough that every such path fits PATH_MAX. */
#define DIR_MAX 2048

struct local {
    const struct local_options *o;
    char dir[DIR_MAX];      /* <state>/local */
    char install[PATH_MAX]; /* install-agent.sh */
    char agent[PATH_MAX];   /* damselfly-agent to install */
    char cg_base[DIR_MAX];  /* "" in signal mode */
    pthread_mutex_t port_mu;
    int recent_ports[16];
    unsigned nrecent;
};

/* ---- paths and files --------------------------------------------------------------------- */

/* -1 when the path does not fit: the state directory's path is too long. */
static int vm_dir(const struct local *l, const struct fed_vm *vm, char *buf, size_t len)
{
    return snprintf(buf, len, "%s/vms/%s/%s/%s", l->dir, vm->ns, vm->mci, vm->id) < (int)len ? 0
                                                                                             : -1;
}

static int open_log(const char *dir, const char *name, int trunc, struct fed_error *err)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (trunc ? O_TRUNC : O_APPEND), 0640);
    if (fd < 0)
        fed_fail(err, FED_EIO, "open", errno, "%s: %s", path, strerror(errno));
    return fd;
}

/* The last lines of a log, on one line, for error messages. */
static const char *log_tail(const char *dir, const char *name, char *buf, size_t len)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    buf[0] = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return buf;
    off_t end = lseek(fd, 0, SEEK_END);
    off_t from = end > (off_t)len - 1 ? end - (off_t)len + 1 : 0;
    ssize_t n = pread(fd, buf, len - 1, from);
    close(fd);
    buf[n > 0 ? n : 0] = 0;
    for (char *p = buf; *p; p++) {
        if (*p == '\n' || *p == '\r')
            *p = *(p + 1) ? ' ' : 0;
    }
    return buf;
}

/* The driver's own record of a VM, beside its files: what list() and open() read. */
static void write_run_file(const struct local *l, const struct fed_vm *vm)
{
    char dir[PATH_MAX];
    vm_dir(l, vm, dir, sizeof(dir));
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

/* ---- open --------------------------------------------------------------------------------- */

static int exe_dir(char *buf, size_t len)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return -1;
    self[n] = 0;
    char *slash = strrchr(self, '/');
    if (!slash)
        return -1;
    *slash = 0;
    snprintf(buf, len, "%s", self);
    return 0;
}

/* The first existing file among the configured one and the defaults. */
static int find_file(const char *configured, const char *const *candidates, char *out, size_t len,
                     const char *what, struct fed_error *err)
{
    if (configured && configured[0]) {
        if (access(configured, R_OK) < 0)
            return fed_fail(err, FED_EINVAL, "local driver", errno, "%s '%s': %s", what, configured,
                            strerror(errno));
        return realpath(configured, out) ? 0 : (snprintf(out, len, "%s", configured), 0);
    }
    for (const char *const *c = candidates; *c; c++) {
        if ((*c)[0] && (*c)[0] == '/' && access(*c, R_OK) == 0) {
            snprintf(out, len, "%s", *c);
            return 0;
        }
    }
    return fed_fail(err, FED_EINVAL, "local driver", 0, "no %s found: set local.%s", what,
                    strcmp(what, "install script") ? "agent_binary" : "install_script");
}

static int locate_files(struct local *l, struct fed_error *err)
{
    char ed[PATH_MAX] = "", c1[PATH_MAX + 64], c2[PATH_MAX + 64], c3[PATH_MAX + 64],
         c4[PATH_MAX + 64];
    exe_dir(ed, sizeof(ed));
    snprintf(c1, sizeof(c1), "%s%sdeploy/install-agent.sh", DSF_SOURCE_DIR,
             DSF_SOURCE_DIR[0] ? "/" : "");
    snprintf(c2, sizeof(c2), "%s/../share/damselfly/install-agent.sh", ed);
    snprintf(c3, sizeof(c3), "%s%sagent/damselfly-agent", DSF_BINARY_DIR,
             DSF_BINARY_DIR[0] ? "/" : "");
    snprintf(c4, sizeof(c4), "%s/damselfly-agent", ed);
    const char *scripts[] = {c1, c2, NULL}, *agents[] = {c3, c4, NULL};
    if (find_file(l->o->install_script, scripts, l->install, sizeof(l->install), "install script",
                  err) < 0 ||
        find_file(l->o->agent_binary, agents, l->agent, sizeof(l->agent), "agent binary", err) < 0)
        return -1;
    if (access(l->agent, X_OK) < 0)
        return fed_fail(err, FED_EINVAL, "local driver", errno,
                        "agent binary '%s' is not executable", l->agent);
    return 0;
}

/* A short, stable tag of the state directory, so two state directories on one host (two
 * test runs) never share VM cgroups. */
static unsigned long dir_tag(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static int setup_freezer(struct local *l, struct fed_error *err)
{
    const char *mode = l->o->freezer ? l->o->freezer : "auto";
    if (strcmp(mode, "auto") && strcmp(mode, "cgroup") && strcmp(mode, "signal"))
        return fed_fail(err, FED_EINVAL, "local driver", 0,
                        "local.freezer '%s': use auto, cgroup or signal", mode);
    if (!strcmp(mode, "signal"))
        return 0;
    char root[DIR_MAX - 16] = "";
    if (l->o->cgroup_root && l->o->cgroup_root[0]) {
        snprintf(root, sizeof(root), "%s", l->o->cgroup_root);
    } else if (lp_cgroup2_root(root, sizeof(root) - 32) == 0) {
        strcat(root, "/damselfly-local");
    }
    struct fed_error e;
    char probe[DIR_MAX];
    int fits =
        snprintf(probe, sizeof(probe), "%s/%08lx", root, dir_tag(l->dir)) < (int)sizeof(probe);
    if (root[0] && fits && lp_cg_create(probe, &e) == 0) {
        snprintf(l->cg_base, sizeof(l->cg_base), "%s", probe);
        return 0;
    }
    if (!strcmp(mode, "cgroup"))
        return fed_fail(err, FED_EINVAL, "local driver", 0,
                        "local.freezer=cgroup, but no writable cgroup v2 with cgroup.freeze%s%s",
                        root[0] ? ": " : "", root[0] ? e.message : "");
    log_info("no writable cgroup v2 freezer: suspend uses SIGSTOP to each VM's process group");
    return 0;
}

static void cg_dir(const struct local *l, const struct fed_vm *vm, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s/%s/%s", l->cg_base, vm->ns, vm->mci, vm->id);
}

static void adopt_all(struct local *l);

static void *local_open(const void *options, const char *state_dir, struct fed_error *err)
{
    struct local *l = calloc(1, sizeof(*l));
    if (!l) {
        fed_fail(err, FED_EIO, "local driver", ENOMEM, "out of memory");
        return NULL;
    }
    l->o = options;
    /* Absolute, so that the cgroup tag (dir_tag) of two state directories given relative to
     * different working directories differs, and the VMs' paths hold from any cwd. */
    char abs[PATH_MAX];
    if (realpath(state_dir, abs))
        state_dir = abs;
    if (snprintf(l->dir, sizeof(l->dir), "%s", state_dir) >= (int)sizeof(l->dir)) {
        fed_fail(err, FED_EINVAL, "local driver", ENAMETOOLONG,
                 "state directory '%.100s...' is longer than %d characters", state_dir,
                 DIR_MAX - 1);
        free(l);
        return NULL;
    }
    pthread_mutex_init(&l->port_mu, NULL);
    if (!l->o || locate_files(l, err) < 0 || setup_freezer(l, err) < 0) {
        if (!l->o)
            fed_fail(err, FED_EINVAL, "local driver", 0, "no options");
        pthread_mutex_destroy(&l->port_mu);
        free(l);
        return NULL;
    }
    log_debug("install script %s, agent %s, freezer %s", l->install, l->agent,
              l->cg_base[0] ? l->cg_base : "SIGSTOP");
    adopt_all(l);
    return l;
}

static void local_close(void *ctx)
{
    struct local *l = ctx;
    if (l->cg_base[0]) {
        /* Only when no VM is left in it: rmdir refuses otherwise. */
        lp_cg_remove(l->cg_base);
        char *slash = strrchr(l->cg_base, '/');
        if (slash && !l->o->cgroup_root[0]) {
            *slash = 0;
            lp_cg_remove(l->cg_base);
        }
    }
    pthread_mutex_destroy(&l->port_mu);
    free(l);
}

/* ---- the processes of a VM ----------------------------------------------------------------- */

struct procs {
    pid_t pid, pgid, wpid;
    uint64_t start, wstart;
    int port;
    char cgroup[PATH_MAX];
};

static void load_procs(const struct fed_vm *vm, struct procs *p)
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

static int stop_procs(struct local *l, const struct fed_vm *vm, const struct procs *p,
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

static int pick_port(struct local *l)
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

/* PATH and the sanitizer settings only: nothing of the host's environment (DAMSELFLY_*
 * variables above all) may change what an agent does. */
static char **vm_env(const struct fed_vm *vm, const char *dir)
{
    static const char *const pass[] = {"ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", NULL};
    char **env = calloc(16, sizeof(char *));
    size_t n = 0;
    if (!env)
        return NULL;
    if (asprintf(&env[n++], "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin") <
            0 ||
        asprintf(&env[n++], "DSF_VM_DIR=%s", dir) < 0 ||
        asprintf(&env[n++], "DSF_NS=%s", vm->ns) < 0 ||
        asprintf(&env[n++], "DSF_MCI=%s", vm->mci) < 0 ||
        asprintf(&env[n++], "DSF_VM=%s", vm->id) < 0 ||
        asprintf(&env[n++], "DSF_CSP=%s", vm->spec.csp) < 0 ||
        asprintf(&env[n++], "DSF_REGION=%s", vm->spec.region) < 0)
        env[--n] = NULL;
    for (const char *const *p = pass; *p; p++) {
        const char *v = getenv(*p);
        if (v && asprintf(&env[n], "%s=%s", *p, v) >= 0)
            n++;
    }
    return env;
}

static void free_strv(char **v)
{
    for (char **p = v; p && *p; p++)
        free(*p);
    free(v);
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

static int start_procs(struct local *l, struct fed_vm *vm, struct procs *p, struct fed_error *err)
{
    char dir[PATH_MAX], bin[PATH_MAX + 64], cfg[PATH_MAX + 64], wl[PATH_MAX],
        procs_file[PATH_MAX + 16];
    vm_dir(l, vm, dir, sizeof(dir));
    snprintf(bin, sizeof(bin), "%s/usr/local/bin/damselfly-agent", dir);
    snprintf(cfg, sizeof(cfg), "%s/etc/damselfly/agent.json", dir);
    char *argv[] = {bin, "--config", cfg, NULL};
    char **wargv = vm->spec.workload;
    if (wargv && lp_which(wargv[0], wl, sizeof(wl)) < 0)
        return fed_fail(err, FED_EINVAL, "start workload", ENOENT,
                        "%s: workload program '%s' not found or not executable", vm->id, wargv[0]);
    if (prepare_cgroup(l, vm, p->cgroup, sizeof(p->cgroup), err) < 0)
        return -1;
    snprintf(procs_file, sizeof(procs_file), "%s/cgroup.procs", p->cgroup);
    int fd = open_log(dir, "console.log", 0, err);
    if (fd < 0)
        return -1;
    char **env = vm_env(vm, dir);
    struct lp_spawn s = {.agent_path = bin,
                         .agent_argv = argv,
                         .workload_path = wargv ? wl : NULL,
                         .workload_argv = wargv,
                         .envp = env,
                         .cwd = dir,
                         .log_fd = fd,
                         .cgroup_procs = p->cgroup[0] ? procs_file : NULL};
    int rc = env ? lp_spawn(&s, &p->pgid, &p->pid, &p->wpid, err)
                 : fed_fail(err, FED_EIO, "start", ENOMEM, "out of memory");
    close(fd);
    free_strv(env);
    if (rc < 0)
        return -1;
    lp_proc_stat(p->pid, NULL, NULL, &p->start);
    if (p->wpid > 0)
        lp_proc_stat(p->wpid, NULL, NULL, &p->wstart);
    if (save_procs(vm, p) < 0)
        return fed_fail(err, FED_EIO, "start", 0, "driver data does not fit");
    write_run_file(l, vm);
    log_info("%s/%s/%s started: agent pid %d, workload pid %d, pgid %d%s%s", vm->ns, vm->mci,
             vm->id, (int)p->pid, (int)p->wpid, (int)p->pgid, p->cgroup[0] ? ", cgroup " : "",
             p->cgroup);
    return 0;
}

/* Running once the agent answers /healthz; Failed when it dies first. */
static int wait_up(struct local *l, struct fed_vm *vm, const struct procs *p, struct fed_error *err)
{
    char dir[PATH_MAX], tail[400];
    vm_dir(l, vm, dir, sizeof(dir));
    struct fed_backoff b;
    fed_backoff_init(&b, l->o->timeout_ms);
    b.initial_ms = 50;
    b.max_ms = 500;
    for (;;) {
        if (!lp_alive(p->pid, p->start, NULL)) {
            vm->state = FED_VM_FAILED;
            return fed_fail(err, FED_EBACKEND, "start agent", 0,
                            "%s: the agent (pid %d) exited during start: %s", vm->id, (int)p->pid,
                            log_tail(dir, "console.log", tail, sizeof(tail)));
        }
        int code;
        free(lp_http_get(p->port, "/healthz", &code, 1000));
        if (code == 200) {
            vm->state = FED_VM_RUNNING;
            return 0;
        }
        if (!fed_backoff_wait(&b)) {
            vm->state = FED_VM_FAILED;
            return fed_fail(err, FED_ETIMEOUT, "start agent", 0,
                            "%s: the agent did not answer on 127.0.0.1:%d/healthz within %lld "
                            "ms: %s",
                            vm->id, p->port, (long long)l->o->timeout_ms,
                            log_tail(dir, "console.log", tail, sizeof(tail)));
        }
    }
}

/* ---- install (the cloud-init part) ---------------------------------------------------------- */

static int run_install(struct local *l, const struct fed_vm *vm, const char *dir, int port,
                       struct fed_error *err)
{
    char listen[64], interval[32];
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
    snprintf(interval, sizeof(interval), "%lldms", (long long)l->o->interval_ms);
    char *argv[] = {"/bin/bash",
                    l->install,
                    "--prefix",
                    (char *)dir,
                    "--no-start",
                    "--binary",
                    l->agent,
                    "--ns",
                    (char *)vm->ns,
                    "--mci",
                    (char *)vm->mci,
                    "--vm",
                    (char *)vm->id,
                    "--host",
                    (char *)vm->id,
                    "--csp",
                    (char *)vm->spec.csp,
                    "--region",
                    (char *)vm->spec.region,
                    "--mqtt-url",
                    l->o->mqtt_url,
                    "--http-listen",
                    listen,
                    "--interval",
                    interval,
                    "--user",
                    l->o->agent_user,
                    NULL};
    char **env = vm_env(vm, dir);
    int fd = open_log(dir, "install.log", 1, err);
    int rc = -1;
    if (fd >= 0 && env)
        rc = lp_run("install-agent.sh", argv, env, dir, fd, l->o->install_timeout_ms, err);
    if (fd >= 0)
        close(fd);
    free_strv(env);
    if (rc < 0) {
        char tail[300];
        size_t n = strlen(err ? err->message : "");
        if (err)
            snprintf(err->message + n, sizeof(err->message) - n, ": %s",
                     log_tail(dir, "install.log", tail, sizeof(tail)));
    }
    return rc;
}

/* The spec's user data, run as cloud-init runs a user script: after the agent is in place. */
static int run_user_data(struct local *l, const struct fed_vm *vm, const char *dir,
                         struct fed_error *err)
{
    if (!vm->spec.user_data)
        return 0;
    char path[PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/user-data", dir);
    FILE *f = fopen(path, "we");
    if (!f || fputs(vm->spec.user_data, f) < 0 || fclose(f) != 0)
        return fed_fail(err, FED_EIO, "write user data", errno, "%s: %s", path, strerror(errno));
    chmod(path, 0700);
    char *argv[] = {"/bin/sh", path, NULL};
    char **env = vm_env(vm, dir);
    int fd = open_log(dir, "user-data.log", 1, err);
    int rc = -1;
    if (fd >= 0 && env)
        rc = lp_run("user data", argv, env, dir, fd, l->o->install_timeout_ms, err);
    if (fd >= 0)
        close(fd);
    free_strv(env);
    return rc;
}

/* ---- the vtable ----------------------------------------------------------------------------- */

static int local_create(void *ctx, struct fed_vm *vm, struct fed_error *err)
{
    struct local *l = ctx;
    char dir[PATH_MAX];
    if (vm_dir(l, vm, dir, sizeof(dir)) < 0)
        return fed_fail(err, FED_EINVAL, "create vm", ENAMETOOLONG,
                        "the state directory's path is too long for %s", vm->id);
    struct procs p;
    memset(&p, 0, sizeof(p));
    if (fed_check_id("csp", vm->spec.csp, err) < 0 ||
        fed_check_id("region", vm->spec.region, err) < 0)
        return -1;
    if (fed_mkdir_p(dir, "mkdir", err) < 0)
        return -1;
    if ((p.port = pick_port(l)) < 0)
        return fed_fail(err, FED_EIO, "create vm", 0, "no free loopback port");
    snprintf(vm->address, sizeof(vm->address), "127.0.0.1:%d", p.port);
    if (snprintf(vm->native_id, sizeof(vm->native_id), "%s", dir) >= (int)sizeof(vm->native_id))
        vm->native_id[0] = 0; /* informational only */
    if (run_install(l, vm, dir, p.port, err) < 0 || run_user_data(l, vm, dir, err) < 0) {
        vm->state = FED_VM_FAILED;
        return -1;
    }
    if (start_procs(l, vm, &p, err) < 0) {
        vm->state = FED_VM_FAILED;
        return -1;
    }
    if (wait_up(l, vm, &p, err) < 0) {
        stop_procs(l, vm, &p, NULL);
        return -1;
    }
    return 0;
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

static int local_status(void *ctx, struct fed_vm *vm, struct fed_error *err)
{
    struct procs p;
    load_procs(vm, &p);
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

static int set_frozen(struct local *l, struct fed_vm *vm, int on, struct fed_error *err)
{
    struct procs p;
    load_procs(vm, &p);
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

static int local_suspend(void *ctx, struct fed_vm *vm, struct fed_error *err)
{
    return set_frozen(ctx, vm, 1, err);
}

static int local_resume(void *ctx, struct fed_vm *vm, struct fed_error *err)
{
    return set_frozen(ctx, vm, 0, err);
}

/* The VM's cgroup and its ns/mci parents once they are empty (rmdir fails otherwise). */
static void remove_cgroup(struct local *l, const struct fed_vm *vm, const char *dir)
{
    char parent[PATH_MAX + 2 * FED_NAME_MAX + 8];
    lp_cg_remove(dir);
    snprintf(parent, sizeof(parent), "%s/%s/%s", l->cg_base, vm->ns, vm->mci);
    lp_cg_remove(parent);
    snprintf(parent, sizeof(parent), "%s/%s", l->cg_base, vm->ns);
    lp_cg_remove(parent);
}

static int local_terminate(void *ctx, struct fed_vm *vm, struct fed_error *err)
{
    struct local *l = ctx;
    struct procs p;
    load_procs(vm, &p);
    if (stop_procs(l, vm, &p, err) < 0) {
        vm->state = FED_VM_FAILED;
        return -1;
    }
    if (p.cgroup[0])
        remove_cgroup(l, vm, p.cgroup);
    vm->state = FED_VM_TERMINATED;
    fed_vm_data_set_int(vm, "stopped", 1);
    write_run_file(l, vm);
    log_info("%s/%s/%s terminated", vm->ns, vm->mci, vm->id);
    return 0;
}

static int local_reboot(void *ctx, struct fed_vm *vm, struct fed_error *err)
{
    struct local *l = ctx;
    struct procs p;
    load_procs(vm, &p);
    if (stop_procs(l, vm, &p, err) < 0) {
        vm->state = FED_VM_FAILED;
        return -1;
    }
    if (p.port <= 0 && (p.port = pick_port(l)) < 0)
        return fed_fail(err, FED_EIO, "reboot", 0, "no free loopback port");
    if (start_procs(l, vm, &p, err) < 0) {
        vm->state = FED_VM_FAILED;
        return -1;
    }
    if (wait_up(l, vm, &p, err) < 0)
        return -1;
    log_info("%s/%s/%s rebooted", vm->ns, vm->mci, vm->id);
    return 0;
}

/* A counter's value in Prometheus text, -1 when absent. */
static double metric_value(const char *text, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (!strncmp(p, name, n) && (p[n] == ' ' || p[n] == '{')) {
            const char *v = strchr(p + n, ' ');
            return v ? strtod(v + 1, NULL) : -1;
        }
    }
    return -1;
}

/*
 * Reporting = connected to the broker (/healthz "connected":true) and the broker has
 * confirmed at least one of its metrics messages (damselfly_agent_messages_delivered_total
 * on /metrics): a live MQTT session alone has not reported anything yet.
 */
static int local_agent_online(void *ctx, const struct fed_vm *vm, struct fed_error *err)
{
    (void)ctx;
    struct procs p;
    load_procs(vm, &p);
    if (p.port <= 0)
        return fed_fail(err, FED_EINVAL, "agent online", 0, "%s has no agent port", vm->id);
    int code;
    char *body = lp_http_get(p.port, "/healthz", &code, 2000);
    int connected = body && code == 200 && strstr(body, "\"connected\":true");
    if (!connected) {
        fed_fail(err, FED_EBACKEND, "GET /healthz", code < 0 ? 0 : code, "%s: %.200s", vm->address,
                 body ? body : "no answer");
        free(body);
        return 0;
    }
    free(body);
    body = lp_http_get(p.port, "/metrics", &code, 5000);
    double delivered =
        body && code == 200 ? metric_value(body, "damselfly_agent_messages_delivered_total") : -1;
    free(body);
    if (delivered < 0)
        fed_fail(err, FED_EBACKEND, "GET /metrics", code < 0 ? 0 : code,
                 "%s: no damselfly_agent_messages_delivered_total", vm->address);
    else
        fed_fail(err, FED_EBACKEND, "GET /metrics", code, "%s: nothing delivered yet", vm->address);
    return delivered > 0;
}

/* ---- list and re-adoption -------------------------------------------------------------------- */

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

static int local_list(void *ctx, const char *ns, const char *mci, struct fed_vm **vms, size_t *n,
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
static void adopt_all(struct local *l)
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

const struct fed_driver fed_driver_local = {
    .name = "local",
    .summary = "VMs are supervised local process trees running the real agent",
    .keys = local_keys,
    .options_size = sizeof(struct local_options),
    .open = local_open,
    .close = local_close,
    .create_vm = local_create,
    .suspend = local_suspend,
    .resume = local_resume,
    .reboot = local_reboot,
    .terminate = local_terminate,
    .status = local_status,
    .list = local_list,
    .agent_online = local_agent_online,
};
