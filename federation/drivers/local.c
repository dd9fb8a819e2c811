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
 *
 * This file: the options, open and close, and the driver's operations; local.h names the
 * parts they are built from.
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
#include "common/http.h"
#include "common/log.h"
#include "federation/driver.h"
#include "federation/drivers/local.h"
#include "federation/drivers/local_proc.h"

#ifndef DSF_SOURCE_DIR
#define DSF_SOURCE_DIR ""
#endif
#ifndef DSF_BINARY_DIR
#define DSF_BINARY_DIR ""
#endif

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

static void *local_open(const void *options, const char *state_dir, struct fed_bus *bus,
                        struct fed_error *err)
{
    struct local *l = calloc(1, sizeof(*l));
    if (!l) {
        fed_fail(err, FED_EIO, "local driver", ENOMEM, "out of memory");
        return NULL;
    }
    l->o = options;
    l->bus = bus;
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
    local_adopt_all(l);
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

/* ---- the vtable ----------------------------------------------------------------------------- */

static int local_create(void *ctx, struct fed_vm *vm, struct fed_error *err)
{
    struct local *l = ctx;
    char dir[PATH_MAX];
    if (local_vm_dir(l, vm, dir, sizeof(dir)) < 0)
        return fed_fail(err, FED_EINVAL, "create vm", ENAMETOOLONG,
                        "the state directory's path is too long for %s", vm->id);
    struct procs p;
    memset(&p, 0, sizeof(p));
    if (fed_check_id("csp", vm->spec.csp, err) < 0 ||
        fed_check_id("region", vm->spec.region, err) < 0)
        return -1;
    if (fed_mkdir_p(dir, "mkdir", err) < 0)
        return -1;
    if ((p.port = local_pick_port(l)) < 0)
        return fed_fail(err, FED_EIO, "create vm", 0, "no free loopback port");
    snprintf(vm->address, sizeof(vm->address), "127.0.0.1:%d", p.port);
    if (snprintf(vm->native_id, sizeof(vm->native_id), "%s", dir) >= (int)sizeof(vm->native_id))
        vm->native_id[0] = 0; /* informational only */
    struct fed_monitoring_spec ms;
    /* An exporter VM runs no agent: its workload is all there is. */
    int agent = local_monitoring(vm, &ms) != FED_MONITOR_EXPORTER;
    if ((agent && local_install_agent(l, vm, dir, p.port, err) < 0) ||
        local_run_user_data(l, vm, dir, err) < 0) {
        vm->state = FED_VM_FAILED;
        return -1;
    }
    if (local_start_procs(l, vm, &p, err) < 0) {
        vm->state = FED_VM_FAILED;
        return -1;
    }
    if (local_wait_up(l, vm, &p, err) < 0) {
        local_stop_procs(l, vm, &p, NULL);
        return -1;
    }
    return 0;
}

static int local_suspend(void *ctx, struct fed_vm *vm, struct fed_error *err)
{
    return local_set_frozen(ctx, vm, 1, err);
}

static int local_resume(void *ctx, struct fed_vm *vm, struct fed_error *err)
{
    return local_set_frozen(ctx, vm, 0, err);
}

/* Stops every process of the VM (its recorded ones in p); Failed when some survive. */
static int stop_vm(struct local *l, struct fed_vm *vm, struct procs *p, struct fed_error *err)
{
    local_load_procs(vm, p);
    if (local_stop_procs(l, vm, p, err) < 0) {
        vm->state = FED_VM_FAILED;
        return -1;
    }
    return 0;
}

static int local_terminate(void *ctx, struct fed_vm *vm, struct fed_error *err)
{
    struct local *l = ctx;
    struct procs p;
    if (stop_vm(l, vm, &p, err) < 0)
        return -1;
    if (p.cgroup[0])
        local_remove_cgroup(l, vm, p.cgroup);
    struct fed_error e;
    /* The VM is gone either way: a user left behind is reported, not a failed terminate. */
    if (fed_bus_revoke_vm(l->bus, vm->ns, vm->mci, vm->id, &e) < 0)
        log_error("%s/%s/%s terminated, but its broker user stays: %s", vm->ns, vm->mci, vm->id,
                  e.message);
    vm->state = FED_VM_TERMINATED;
    fed_vm_data_set_int(vm, "stopped", 1);
    local_write_run_file(l, vm);
    log_info("%s/%s/%s terminated", vm->ns, vm->mci, vm->id);
    return 0;
}

static int local_reboot(void *ctx, struct fed_vm *vm, struct fed_error *err)
{
    struct local *l = ctx;
    struct procs p;
    if (stop_vm(l, vm, &p, err) < 0)
        return -1;
    if (p.port <= 0 && (p.port = local_pick_port(l)) < 0)
        return fed_fail(err, FED_EIO, "reboot", 0, "no free loopback port");
    if (local_start_procs(l, vm, &p, err) < 0) {
        vm->state = FED_VM_FAILED;
        return -1;
    }
    if (local_wait_up(l, vm, &p, err) < 0)
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
static int push_agent_online(const struct fed_vm *vm, int port, struct fed_error *err)
{
    int code;
    char *body = lp_http_get(port, "/healthz", NULL, &code, 2000);
    int connected = body && code == 200 && strstr(body, "\"connected\":true");
    if (!connected) {
        fed_fail(err, FED_EBACKEND, "GET /healthz", code < 0 ? 0 : code, "%s: %.200s", vm->address,
                 body ? body : "no answer");
        free(body);
        return 0;
    }
    free(body);
    body = lp_http_get(port, "/metrics", NULL, &code, 5000);
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

/* Reporting = what the scraper fetches answers 200 (a pull agent: with the pull token). */
static int pulled_vm_online(struct local *l, const struct fed_vm *vm, int port,
                            const struct fed_monitoring_spec *ms, struct fed_error *err)
{
    char path[PATH_MAX], token[DSF_HTTP_TOKEN_MAX + 1] = "";
    if (ms->mode == FED_MONITOR_PULL && local_pull_token(l, path, sizeof(path), token, err) < 0)
        return -1;
    int code;
    char *body = lp_http_get(port, ms->path, token[0] ? token : NULL, &code, 5000);
    explicit_bzero(token, sizeof(token));
    char call[FED_LONG_MAX + 8];
    snprintf(call, sizeof(call), "GET %s", ms->path);
    if (code != 200)
        fed_fail(err, FED_EBACKEND, call, code < 0 ? 0 : code, "%s: %.200s", vm->address,
                 body ? body : "no answer");
    free(body);
    return code == 200;
}

static int local_agent_online(void *ctx, const struct fed_vm *vm, struct fed_error *err)
{
    struct procs p;
    local_load_procs(vm, &p);
    if (p.port <= 0)
        return fed_fail(err, FED_EINVAL, "agent online", 0, "%s has no agent port", vm->id);
    struct fed_monitoring_spec ms;
    if (local_monitoring(vm, &ms) == FED_MONITOR_PUSH)
        return push_agent_online(vm, p.port, err);
    return pulled_vm_online(ctx, vm, p.port, &ms, err);
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
