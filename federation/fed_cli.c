/* damselfly-fed: the operator's command line to the federation layer. */
#define DSF_MODULE "federation"
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "common/file.h"
#include "common/log.h"
#include "federation/driver.h"
#include "federation/federation.h"

static const char usage[] =
    "DESCRIPTION\n"
    "  Keeps the model of namespaces, MCIs, subgroups and VMs (CB-Tumblebug's VM states and\n"
    "  MCI status string) in a state directory and acts on real VMs and Kubernetes nodes\n"
    "  through a driver. Every VM action checks that the VM's state allows it, waits until\n"
    "  the target state is reached (bounded by the driver's timeouts) and records only what\n"
    "  the driver then observed. There is no daemon: each invocation opens the state\n"
    "  directory, re-adopts the running VMs, does one thing and exits; the VMs live on.\n"
    "\n"
    "COMMANDS\n"
    "  create-mci NS MCI --spec FILE\n"
    "      Create an MCI (or add subgroups to an existing one) from a request in\n"
    "      CB-Tumblebug's mciDynamic form and wait until every VM is Running:\n"
    "        {\"name\": \"web\",\n"
    "         \"vm\": [{\"name\": \"web\", \"subGroupSize\": \"2\", \"csp\": \"local\", "
    "\"region\": \"r1\",\n"
    "                 \"commonSpec\": \"local+r1+small\", \"commonImage\": \"ubuntu22.04\",\n"
    "                 \"label\": {\"tier\": \"web\"}, \"userData\": \"#!/bin/sh\\n...\",\n"
    "                 \"workload\": [\"prog\", \"arg\"]}]}\n"
    "      Unknown keys are errors; counts may be strings or numbers; csp and region default\n"
    "      to the first two fields of commonSpec. VMs are named <subgroup>-1, <subgroup>-2,\n"
    "      ... VMs that do not come up are left Failed and the command exits 1.\n"
    "  vm suspend|resume|reboot|terminate NS MCI VM\n"
    "      Act on one VM and wait until it reaches the target state (Suspended, Running,\n"
    "      Running, Terminated). terminate keeps the record as Terminated.\n"
    "  vm delete NS MCI VM\n"
    "      Terminate the VM if needed and remove it from the model.\n"
    "  vm status [--json] NS MCI VM\n"
    "      Refresh the MCI from the driver and print this VM (--json: the MCI's JSON with\n"
    "      only this VM).\n"
    "  mci suspend|resume|reboot|terminate|delete NS MCI\n"
    "      The same on every VM of the MCI (VMs already in the target state are skipped);\n"
    "      delete terminates every VM and removes the MCI. If any VM fails, the others are\n"
    "      still acted on and the command exits 1.\n"
    "  migrate NS MCI VM --region REGION [--csp CSP] [--common-spec SPEC] [--new-id ID]\n"
    "      Create a replacement from the subgroup's template in REGION (and CSP), with\n"
    "      commonSpec's csp and region replaced unless --common-spec is given; wait until it\n"
    "      is Running and its agent reports (online_timeout), then delete the old VM. If a\n"
    "      step before that fails, the new VM is deleted and the old one left as it was. The\n"
    "      new VM is named --new-id, or <subgroup>-<next free number>.\n"
    "  scale-out NS MCI SUBGROUP N\n"
    "      Add N VMs (marked autogen) from the subgroup's template, through the driver's\n"
    "      own subgroup scale out where it has one (tumblebug). If it fails part way, the new\n"
    "      VMs that came up are kept and recorded, the others are removed; exit 1.\n"
    "  scale-in NS MCI SUBGROUP N\n"
    "      Remove N VMs: autogen ones first, newest first, then the others; a subgroup keeps\n"
    "      at least one VM.\n"
    "  status [--json] [NS [MCI]]\n"
    "      Refresh VMs from the driver and print each MCI's status (Tumblebug's form, e.g.\n"
    "      \"Partial-Suspended:1 (R:2/3)\") and every VM's state, address and detail (the\n"
    "      driver's data and the last error). --json prints the model's JSON: one object\n"
    "      when NS and MCI are given, else an array.\n"
    "  node cordon|uncordon NODE [--dry-run]\n"
    "      Set spec.unschedulable of a Kubernetes node (kubectl then shows it\n"
    "      SchedulingDisabled).\n"
    "  node drain NODE [--timeout DURATION] [--grace-period SECONDS] [--dry-run]\n"
    "      Cordon the node, evict every pod on it except DaemonSet and mirror pods through\n"
    "      the Eviction API (a PodDisruptionBudget's 429 is retried every\n"
    "      kubernetes.eviction_retry) and wait until they are gone. --timeout defaults to\n"
    "      kubernetes.drain_timeout; --grace-period overrides the pods' own.\n"
    "  scale deployment|machinedeployment NS NAME REPLICAS [--dry-run]\n"
    "      Set the replicas of a Deployment or a Cluster API MachineDeployment through its\n"
    "      /scale subresource; prints the count before and after.\n"
    "  drivers\n"
    "      List the drivers.\n"
    "\n"
    "  --dry-run sends the request with dryRun=All: the API server checks it, nothing\n"
    "  changes. --driver NAME and --state-dir DIR are short for --set driver=NAME and\n"
    "  --set state.dir=DIR. Options may come before or after the command.\n"
    "\n"
    "DRIVERS\n"
    "  local       A VM is a local process tree: the real damselfly-agent, installed into\n"
    "              STATE_DIR/local/vms/NS/MCI/VM by deploy/install-agent.sh as cloud-init\n"
    "              would, then the spec's userData and workload. suspend freezes its cgroup\n"
    "              (cgroup v2) or stops its process group (SIGSTOP); resume thaws it;\n"
    "              reboot stops and starts it; terminate sends SIGTERM, then SIGKILL. The\n"
    "              agents push to local.mqtt_url. VM operations only.\n"
    "  tumblebug   CB-Tumblebug's REST API with basic auth (tumblebug.url, .user,\n"
    "              .password): VM control, vmDynamic/mciDynamic, native subgroup scale out;\n"
    "              tumblebug.api=v0.13 switches to the infra/node/nodegroup paths. VM\n"
    "              operations only.\n"
    "  kubernetes  The Kubernetes API with a bearer token or client certificate from a\n"
    "              kubeconfig (kubernetes.kubeconfig, $KUBECONFIG, ~/.kube/config) or the\n"
    "              pod's service account. node and scale commands only.\n"
    "  A command the driver does not support fails with \"driver X does not support Y\".\n"
    "\n"
    "TRANSITIONS\n"
    "  Running: suspend, reboot, terminate. Suspended: resume, terminate. Failed and\n"
    "  Undefined: reboot, terminate. Creating and the in-progress states (Suspending,\n"
    "  Resuming, Rebooting, Terminating): nothing until they have finished. Terminated:\n"
    "  nothing. Repeating the current state is refused except reboot. A refusal names the\n"
    "  VM and its state: \"cannot suspend web-2: it is Terminated\".\n"
    "\n"
    "FILES\n"
    "  STATE_DIR/mci/NS/MCI.json        the model, one file per MCI, replaced atomically\n"
    "                                   (the JSON of status --json)\n"
    "  STATE_DIR/local/vms/NS/MCI/VM/   a local VM: the agent installed by install-agent.sh\n"
    "                                   (usr/local/bin, etc/damselfly/agent.json), run.json\n"
    "                                   (pids and start times, for re-adoption), install.log,\n"
    "                                   user-data.log, console.log\n"
    "\n"
    "EXIT STATUS\n"
    "  0  done.\n"
    "  1  the operation failed: the message names the call, the status it got and the body\n"
    "     or reason. A failed action also records in the model what the driver then saw,\n"
    "     with the error (DETAIL of status); a reboot that failed is a failure even when the\n"
    "     VM reads Running. status exits 1 when the driver could not read a VM's status (its\n"
    "     last known state is shown); so does create-mci when the MCI was created but its\n"
    "     status could not be read back (it exists: do not create it again).\n"
    "  2  usage or configuration error (unknown command, option, key or driver; a bad id or\n"
    "     spec file), before anything was done.\n"
    "\n"
    "EXAMPLES\n"
    "  A configuration file for the tumblebug driver (dotted keys are nested objects):\n"
    "    {\"state\": {\"dir\": \"/var/lib/damselfly/federation\"}, \"driver\": \"tumblebug\",\n"
    "     \"tumblebug\": {\"url\": \"http://tb:1323/tumblebug\", \"user\": \"default\",\n"
    "                   \"password\": \"default\"}}\n"
    "  damselfly-fed --driver local --set local.mqtt_url=tcp://127.0.0.1:1883 \\\n"
    "      create-mci ns1 web --spec web.json\n"
    "  damselfly-fed vm suspend ns1 web web-2\n"
    "  damselfly-fed migrate ns1 web web-1 --region r2\n"
    "  damselfly-fed scale-out ns1 web web 2\n"
    "  damselfly-fed status ns1 web\n"
    "  damselfly-fed -c fed.json status --json ns1\n"
    "  damselfly-fed --driver kubernetes node drain worker-3 --timeout 5m\n"
    "  damselfly-fed --driver kubernetes scale machinedeployment default md-0 5\n";

struct cli_config {
    char *state_dir;
    char *driver;
    int64_t wait_timeout_ms;
    int64_t online_timeout_ms;
};

#define K(f) offsetof(struct cli_config, f)
static const struct dsf_cfg_key cli_keys[] = {
    {"state.dir", DSF_CFG_STR, "/var/lib/damselfly/federation", K(state_dir),
     "where the model (mci/<ns>/<mci>.json) and the drivers' files are kept", 0, 0},
    {"driver", DSF_CFG_STR, "local", K(driver), "local, tumblebug or kubernetes", 0, 0},
    {"wait_timeout", DSF_CFG_DURATION, "120s", K(wait_timeout_ms),
     "bound on each wait of a composite operation (a new VM Running)", 100, 86400000},
    {"online_timeout", DSF_CFG_DURATION, "60s", K(online_timeout_ms),
     "bound on the wait for a new VM's agent to report online (migrate)", 100, 86400000},
    DSF_CFG_END,
};
#undef K

struct cmd {
    int argc;
    char **argv; /* positional arguments, command first */
    const char *spec, *region, *csp, *common_spec, *new_id, *timeout, *grace;
    int dry_run, json;
};

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "damselfly-fed: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, ". Try 'damselfly-fed --help'.\n");
    return 2;
}

/* ---- argument split ---------------------------------------------------------------------- */

static int takes_value(const char *a)
{
    static const char *const v[] = {"-c", "--config", "-s", "--set", "-l", "--log-level", NULL};
    for (const char *const *p = v; *p; p++) {
        if (!strcmp(a, *p))
            return 1;
    }
    return 0;
}

static int is_global_flag(const char *a)
{
    return !strcmp(a, "-h") || !strcmp(a, "--help") || !strcmp(a, "-V") ||
           !strcmp(a, "--version") || !strcmp(a, "--check") || !strncmp(a, "--config=", 9) ||
           !strncmp(a, "--set=", 6) || !strncmp(a, "--log-level=", 12);
}

/* Command options with a value: where each goes. */
static const char **cmd_option(struct cmd *c, const char *a)
{
    if (!strcmp(a, "--spec"))
        return &c->spec;
    if (!strcmp(a, "--region"))
        return &c->region;
    if (!strcmp(a, "--csp"))
        return &c->csp;
    if (!strcmp(a, "--common-spec"))
        return &c->common_spec;
    if (!strcmp(a, "--new-id"))
        return &c->new_id;
    if (!strcmp(a, "--timeout"))
        return &c->timeout;
    if (!strcmp(a, "--grace-period"))
        return &c->grace;
    return NULL;
}

/*
 * Splits the command line: the shared options go to dsf_cli_parse (gargv), the command and
 * its own options to c. --driver and --state-dir become --set assignments (kept in sets).
 */
static int split_args(int argc, char **argv, char **gargv, int *gargc, struct cmd *c, char **sets,
                      int *nsets)
{
    *gargc = 0;
    gargv[(*gargc)++] = argv[0];
    int only_pos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **dst;
        if (only_pos || a[0] != '-' || !a[1]) {
            c->argv[c->argc++] = argv[i];
        } else if (!strcmp(a, "--")) {
            only_pos = 1;
        } else if (takes_value(a)) {
            if (i + 1 >= argc)
                return usage_error("option %s needs a value", a);
            gargv[(*gargc)++] = argv[i++];
            gargv[(*gargc)++] = argv[i];
        } else if (is_global_flag(a)) {
            gargv[(*gargc)++] = argv[i];
        } else if (!strcmp(a, "--driver") || !strcmp(a, "--state-dir")) {
            if (i + 1 >= argc)
                return usage_error("option %s needs a value", a);
            char *s;
            if (asprintf(&s, "%s=%s", a[2] == 'd' ? "driver" : "state.dir", argv[++i]) < 0)
                return 1;
            sets[(*nsets)++] = s;
            gargv[(*gargc)++] = "--set";
            gargv[(*gargc)++] = s;
        } else if ((dst = cmd_option(c, a))) {
            if (i + 1 >= argc)
                return usage_error("option %s needs a value", a);
            *dst = argv[++i];
        } else if (!strcmp(a, "--dry-run")) {
            c->dry_run = 1;
        } else if (!strcmp(a, "--json")) {
            c->json = 1;
        } else {
            return usage_error("unknown option '%s'", a);
        }
    }
    gargv[*gargc] = NULL;
    return 0;
}

/* ---- output --------------------------------------------------------------------------------- */

static int fail_op(const struct fed_error *e)
{
    char msg[800];
    fprintf(stderr, "damselfly-fed: %s\n", fed_error_format(e, msg, sizeof(msg)));
    return e->kind == FED_EINVAL && !strcmp(e->call, "driver") ? 2 : 1;
}

/* vm: only that VM's row (the MCI's status still counts them all); NULL for every VM. */
static void print_mci(const struct fed_mci *m, const char *vm)
{
    char status[96];
    printf("MCI %s/%s  driver %s  status %s\n", m->ns, m->id, m->driver[0] ? m->driver : "-",
           fed_mci_status(m, status, sizeof(status)));
    printf("  %-20s %-12s %-11s %-10s %-14s %-22s %s\n", "VM", "SUBGROUP", "STATUS", "CSP",
           "REGION", "ADDRESS", "DETAIL");
    for (size_t i = 0; i < m->nvms; i++) {
        const struct fed_vm *v = &m->vms[i];
        if (vm && strcmp(v->id, vm))
            continue;
        printf("  %-20s %-12s %-11s %-10s %-14s %-22s %s%s%s%s\n", v->id, v->subgroup,
               fed_vm_state_name(v->state), v->spec.csp, v->spec.region,
               v->address[0] ? v->address : "-", v->autogen ? "autogen " : "", v->driver_data,
               v->message[0] ? " " : "", v->message);
    }
}

/* The MCI's JSON, with only VM vm when given. */
static void print_mci_json(struct fed_mci *m, const char *vm, int first)
{
    for (size_t i = m->nvms; vm && i-- > 0;) {
        if (strcmp(m->vms[i].id, vm))
            fed_mci_remove_vm(m, m->vms[i].id);
    }
    char *text = fed_mci_to_json(m);
    printf("%s%s", first ? "" : ",\n", text ? text : "null");
    free(text);
}

/*
 * Refreshes the MCI from the driver and prints it (vm: only that VM). When the driver could
 * not read a VM's status, what is known is still printed, but the command fails: a status
 * that could not be checked must not look like a checked one to a script.
 */
static int show_mci(struct fed *f, const char *ns, const char *mci, const char *vm, int json,
                    int *first)
{
    struct fed_mci m;
    struct fed_error e, stale;
    fed_error_clear(&stale);
    if (fed_mci_refresh(f, ns, mci, &m, &e) < 0) {
        if (e.kind == FED_EUNSUPPORTED) {
            fed_mci_free(&m);
            if (fed_store_get(fed_store_of(f), ns, mci, &m, &e) < 0)
                return fail_op(&e);
        } else if (!m.id[0]) {
            fed_mci_free(&m);
            return fail_op(&e);
        } else {
            stale = e;
        }
    }
    if (vm && !fed_mci_find_vm(&m, vm)) {
        fed_fail(&e, FED_ENOTFOUND, "find vm", 0, "no VM '%s' in MCI %s/%s", vm, ns, mci);
        fed_mci_free(&m);
        return fail_op(&e);
    }
    if (json)
        print_mci_json(&m, vm, *first);
    else
        print_mci(&m, vm);
    fflush(stdout);
    *first = 0;
    fed_mci_free(&m);
    if (stale.kind == FED_OK)
        return 0;
    fail_op(&stale);
    fprintf(stderr,
            "damselfly-fed: %s/%s: VMs whose status could not be read are shown as last "
            "known\n",
            ns, mci);
    return 1;
}

static int cmd_status(struct fed *f, struct cmd *c)
{
    if (c->argc > 3)
        return usage_error("status takes at most NS and MCI, not '%s'", c->argv[3]);
    const char *ns = c->argc > 1 ? c->argv[1] : NULL, *mci = c->argc > 2 ? c->argv[2] : NULL;
    struct fed_error e;
    int first = 1, rc = 0;
    /* The one namespace asked for, as a list: it must live as long as the loop below. */
    char *given_ns[1] = {(char *)ns};
    if (c->json && !mci)
        printf("[");
    if (mci) {
        rc = show_mci(f, ns, mci, NULL, c->json, &first);
    } else {
        char **nss = NULL, **mcis;
        size_t nn = 0, nm;
        if (ns) {
            if (fed_check_id("namespace", ns, &e) < 0)
                return fail_op(&e);
            nss = given_ns;
            nn = 1;
        } else if (fed_store_list(fed_store_of(f), NULL, &nss, &nn, &e) < 0) {
            return fail_op(&e);
        }
        for (size_t i = 0; i < nn; i++) {
            if (fed_store_list(fed_store_of(f), nss[i], &mcis, &nm, &e) < 0) {
                rc = fail_op(&e);
                continue;
            }
            for (size_t j = 0; j < nm; j++) {
                int r = show_mci(f, nss[i], mcis[j], NULL, c->json, &first);
                rc = rc ? rc : r;
            }
            fed_names_free(mcis, nm);
        }
        if (!ns)
            fed_names_free(nss, nn);
    }
    if (c->json)
        printf(mci ? "\n" : "]\n");
    return rc;
}

/* ---- commands ------------------------------------------------------------------------------ */

static int need_args(const struct cmd *c, int n, const char *synopsis)
{
    if (c->argc != n) {
        fprintf(stderr, "damselfly-fed: usage: damselfly-fed %s. Try 'damselfly-fed --help'.\n",
                synopsis);
        return 2;
    }
    return 0;
}

static int cmd_create(struct fed *f, struct cmd *c)
{
    int rc = need_args(c, 3, "create-mci NS MCI --spec FILE");
    if (rc)
        return rc;
    if (!c->spec)
        return usage_error("create-mci needs --spec FILE%s", "");
    size_t len;
    char *text = dsf_read_file(c->spec, &len);
    if (!text) {
        fprintf(stderr, "damselfly-fed: --spec %s: %s\n", c->spec, strerror(errno));
        return 2;
    }
    struct fed_vm_spec *specs;
    size_t n;
    char name[FED_NAME_MAX] = "";
    struct fed_error e;
    if (fed_mci_request_parse(text, len, name, sizeof(name), &specs, &n, &e) < 0) {
        free(text);
        char msg[800];
        fprintf(stderr, "damselfly-fed: --spec %s: %s\n", c->spec,
                fed_error_format(&e, msg, sizeof(msg)));
        return 2;
    }
    free(text);
    rc = fed_create_mci(f, c->argv[1], c->argv[2], NULL, specs, n, &e) < 0 ? fail_op(&e) : 0;
    for (size_t i = 0; i < n; i++)
        fed_vm_spec_free(&specs[i]);
    free(specs);
    if (rc == 0) {
        int first = 1;
        if ((rc = show_mci(f, c->argv[1], c->argv[2], NULL, 0, &first)))
            fprintf(stderr,
                    "damselfly-fed: %s/%s was created, but its status could not be read back: "
                    "do not create it again; see 'status %s %s'\n",
                    c->argv[1], c->argv[2], c->argv[1], c->argv[2]);
    }
    return rc;
}

static int cmd_vm(struct fed *f, struct cmd *c, int whole_mci)
{
    const char *syn = whole_mci ? "mci suspend|resume|reboot|terminate|delete NS MCI"
                                : "vm suspend|resume|reboot|terminate|delete|status NS MCI VM";
    if (c->argc < 2)
        return need_args(c, -1, syn);
    int rc = need_args(c, whole_mci ? 4 : 5, syn);
    if (rc)
        return rc;
    const char *verb = c->argv[1], *ns = c->argv[2], *mci = c->argv[3];
    const char *vm = whole_mci ? NULL : c->argv[4];
    struct fed_error e;
    enum fed_action a;
    if (!strcmp(verb, "delete")) {
        rc = whole_mci ? fed_mci_delete(f, ns, mci, &e) : fed_vm_delete(f, ns, mci, vm, &e);
    } else if (!whole_mci && !strcmp(verb, "status")) {
        int first = 1;
        rc = show_mci(f, ns, mci, vm, c->json, &first);
        if (c->json)
            printf("\n");
        return rc;
    } else if (fed_action_parse(verb, &a) == 0 && a != FED_ACT_NONE && a != FED_ACT_CREATE) {
        rc = whole_mci ? fed_mci_action(f, ns, mci, a, &e) : fed_vm_action(f, ns, mci, vm, a, &e);
    } else {
        return usage_error("unknown action '%s' (use suspend, resume, reboot, terminate or "
                           "delete)",
                           verb);
    }
    if (rc < 0)
        return fail_op(&e);
    printf("%s %s/%s%s%s: done\n", verb, ns, mci, vm ? "/" : "", vm ? vm : "");
    return 0;
}

static int cmd_migrate(struct fed *f, struct cmd *c)
{
    int rc = need_args(c, 4, "migrate NS MCI VM --region REGION [--csp CSP]");
    if (rc)
        return rc;
    if (!c->region)
        return usage_error("migrate needs --region REGION%s", "");
    struct fed_migrate_options o = {c->region, c->csp, c->common_spec, c->new_id};
    char new_id[FED_NAME_MAX];
    struct fed_error e;
    if (fed_migrate(f, c->argv[1], c->argv[2], c->argv[3], &o, new_id, sizeof(new_id), &e) < 0)
        return fail_op(&e);
    printf("migrated %s/%s/%s to %s\n", c->argv[1], c->argv[2], c->argv[3], new_id);
    return 0;
}

static int parse_count(const char *s, int min, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < min || v > 100000)
        return -1;
    *out = (int)v;
    return 0;
}

static int cmd_scale_vms(struct fed *f, struct cmd *c, int out)
{
    int rc = need_args(c, 5, out ? "scale-out NS MCI SUBGROUP N" : "scale-in NS MCI SUBGROUP N");
    if (rc)
        return rc;
    int n;
    if (parse_count(c->argv[4], 1, &n) < 0)
        return usage_error("N '%s' must be a positive integer", c->argv[4]);
    struct fed_error e;
    int done = out ? fed_scale_out(f, c->argv[1], c->argv[2], c->argv[3], n, &e)
                   : fed_scale_in(f, c->argv[1], c->argv[2], c->argv[3], n, &e);
    if (done < 0)
        return fail_op(&e);
    printf("%s %s/%s/%s: %d VMs %s\n", out ? "scale-out" : "scale-in", c->argv[1], c->argv[2],
           c->argv[3], done, out ? "added" : "removed");
    return 0;
}

static int cmd_node(struct fed *f, struct cmd *c)
{
    int rc = need_args(c, 3, "node cordon|uncordon|drain NODE");
    if (rc)
        return rc;
    const char *verb = c->argv[1], *node = c->argv[2];
    struct fed_error e;
    if (!strcmp(verb, "cordon") || !strcmp(verb, "uncordon")) {
        rc = fed_node_cordon(f, node, verb[0] == 'c', c->dry_run, &e);
    } else if (!strcmp(verb, "drain")) {
        struct fed_drain_options o = {.grace_period_s = -1, .dry_run = c->dry_run};
        if (c->timeout && dsf_parse_duration_ms(c->timeout, &o.timeout_ms) < 0)
            return usage_error("--timeout '%s': use a duration like 90s or 5m", c->timeout);
        if (c->grace && parse_count(c->grace, 0, &o.grace_period_s) < 0)
            return usage_error("--grace-period '%s': use seconds (0 or more)", c->grace);
        rc = fed_node_drain(f, node, &o, &e);
    } else {
        return usage_error("unknown node action '%s' (use cordon, uncordon or drain)", verb);
    }
    if (rc < 0)
        return fail_op(&e);
    printf("%s %s%s: done\n", verb, node, c->dry_run ? " (dry run)" : "");
    return 0;
}

static int cmd_scale(struct fed *f, struct cmd *c)
{
    int rc = need_args(c, 5, "scale deployment|machinedeployment NS NAME REPLICAS");
    if (rc)
        return rc;
    enum fed_scale_kind kind;
    int n, old;
    if (fed_scale_kind_parse(c->argv[1], &kind) < 0)
        return usage_error("unknown kind '%s' (use deployment or machinedeployment)", c->argv[1]);
    if (parse_count(c->argv[4], 0, &n) < 0)
        return usage_error("REPLICAS '%s' must be an integer >= 0", c->argv[4]);
    struct fed_error e;
    if (fed_scale(f, kind, c->argv[2], c->argv[3], n, c->dry_run, &old, &e) < 0)
        return fail_op(&e);
    printf("scaled %s %s/%s from %d to %d%s\n", c->argv[1], c->argv[2], c->argv[3], old, n,
           c->dry_run ? " (dry run)" : "");
    return 0;
}

static int cmd_drivers(void)
{
    for (const struct fed_driver *const *d = fed_drivers; *d; d++)
        printf("%-12s %s\n", (*d)->name, (*d)->summary ? (*d)->summary : "");
    return 0;
}

/* Names given on the command line are checked before anything is done: a bad one is a usage
 * error (exit 2), not a failed operation. */
static int check_names(const struct cmd *c)
{
    static const struct {
        const char *cmd;
        int first; /* index of NS */
        const char *what[3];
    } rules[] = {
        {"create-mci", 1, {"namespace", "mci", NULL}},
        {"vm", 2, {"namespace", "mci", "vm"}},
        {"mci", 2, {"namespace", "mci", NULL}},
        {"migrate", 1, {"namespace", "mci", "vm"}},
        {"scale-out", 1, {"namespace", "mci", "subgroup"}},
        {"scale-in", 1, {"namespace", "mci", "subgroup"}},
        {"status", 1, {"namespace", "mci", NULL}},
    };
    for (size_t r = 0; r < sizeof(rules) / sizeof(rules[0]); r++) {
        if (strcmp(c->argv[0], rules[r].cmd))
            continue;
        for (int k = 0; k < 3 && rules[r].what[k]; k++) {
            int i = rules[r].first + k;
            struct fed_error e;
            if (i < c->argc && fed_check_id(rules[r].what[k], c->argv[i], &e) < 0) {
                fprintf(stderr, "damselfly-fed: %s\n", e.message);
                return 2;
            }
        }
    }
    return 0;
}

static int cmd_vm_one(struct fed *f, struct cmd *c)
{
    return cmd_vm(f, c, 0);
}
static int cmd_vm_mci(struct fed *f, struct cmd *c)
{
    return cmd_vm(f, c, 1);
}
static int cmd_scale_out(struct fed *f, struct cmd *c)
{
    return cmd_scale_vms(f, c, 1);
}
static int cmd_scale_in(struct fed *f, struct cmd *c)
{
    return cmd_scale_vms(f, c, 0);
}

typedef int (*command_fn)(struct fed *f, struct cmd *c);

/* The commands that act through a driver ("drivers" needs none). */
static const struct {
    const char *name;
    command_fn run;
} commands[] = {
    {"create-mci", cmd_create}, {"vm", cmd_vm_one},           {"mci", cmd_vm_mci},
    {"migrate", cmd_migrate},   {"scale-out", cmd_scale_out}, {"scale-in", cmd_scale_in},
    {"status", cmd_status},     {"node", cmd_node},           {"scale", cmd_scale},
};

/* NULL for a command that does not exist. */
static command_fn command_named(const char *name)
{
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (!strcmp(name, commands[i].name))
            return commands[i].run;
    }
    return NULL;
}

/* ---- main ------------------------------------------------------------------------------------ */

static size_t ndrivers(void)
{
    size_t n = 0;
    while (fed_drivers[n])
        n++;
    return n;
}

/* The CLI's own keys, then one section per driver ("local.mqtt_url", "tumblebug.url"). */
static struct dsf_cfg_section *build_sections(struct cli_config *cfg)
{
    size_t n = ndrivers(), k = 1;
    struct dsf_cfg_section *secs = calloc(n + 2, sizeof(*secs));
    if (!secs)
        return NULL;
    secs[0] = (struct dsf_cfg_section){"", cli_keys, cfg};
    for (size_t i = 0; i < n; i++) {
        const struct fed_driver *d = fed_drivers[i];
        if (!d->keys)
            continue;
        void *opts = calloc(1, d->options_size ? d->options_size : 1);
        if (!opts)
            return NULL;
        secs[k++] = (struct dsf_cfg_section){d->name, d->keys, opts};
    }
    return secs;
}

static void free_sections(struct dsf_cfg_section *secs)
{
    if (!secs)
        return;
    dsf_cfg_free(secs);
    for (size_t i = 1; secs[i].keys; i++)
        free(secs[i].obj);
    free(secs);
}

static const void *driver_options(const struct dsf_cfg_section *secs, const char *name)
{
    for (size_t i = 1; secs[i].keys; i++) {
        if (!strcmp(secs[i].prefix, name))
            return secs[i].obj;
    }
    return NULL;
}

static int validate(const struct dsf_cfg_section *secs, const char *origin, char *err)
{
    const struct cli_config *c = secs[0].obj;
    struct fed_error e;
    if (!fed_driver_find(c->driver, &e)) {
        snprintf(err, DSF_CFG_ERRLEN, "%s: driver: %.400s", origin, e.message);
        return -1;
    }
    if (!c->state_dir || !c->state_dir[0]) {
        snprintf(err, DSF_CFG_ERRLEN, "%s: state.dir is empty", origin);
        return -1;
    }
    return 0;
}

static int with_federation(const struct dsf_cfg_section *secs, struct cmd *c)
{
    const struct cli_config *cfg = secs[0].obj;
    const struct fed_driver *d = fed_driver_find(cfg->driver, NULL);
    struct fed_config fc = {
        .state_dir = cfg->state_dir,
        .driver = cfg->driver,
        .driver_options = driver_options(secs, cfg->driver),
        .wait_timeout_ms = cfg->wait_timeout_ms,
        .online_timeout_ms = cfg->online_timeout_ms,
    };
    struct fed_error e;
    struct fed *f = d ? fed_open_driver(d, &fc, &e) : NULL;
    if (!f) {
        char msg[800];
        fprintf(stderr, "damselfly-fed: cannot open the %s driver: %s\n", cfg->driver,
                fed_error_format(&e, msg, sizeof(msg)));
        return e.kind == FED_EINVAL ? 2 : 1;
    }
    int rc = command_named(c->argv[0])(f, c);
    fed_close(f);
    return rc;
}

int main(int argc, char **argv)
{
    char **gargv = calloc((size_t)argc + 2 * (size_t)argc + 2, sizeof(char *));
    char **sets = calloc((size_t)argc + 1, sizeof(char *));
    struct cmd c = {.argv = calloc((size_t)argc + 1, sizeof(char *))};
    struct cli_config cfg = {0};
    struct dsf_cfg_section *secs = build_sections(&cfg);
    int gargc = 0, nsets = 0, rc;
    if (!gargv || !sets || !c.argv || !secs) {
        fprintf(stderr, "damselfly-fed: out of memory\n");
        return 1;
    }
    rc = split_args(argc, argv, gargv, &gargc, &c, sets, &nsets);
    if (rc == 0) {
        struct dsf_cli cli = {
            .prog = "damselfly-fed",
            .summary = "damselfly-fed [OPTIONS] COMMAND [ARGS]: operate MCIs, VMs and Kubernetes "
                       "nodes through the federation layer (drivers local, tumblebug, kubernetes).",
            .usage = usage,
            .sections = secs,
            .validate = validate,
        };
        rc = dsf_cli_parse(&cli, gargc, gargv);
        if (rc == 1) {
            rc = 0; /* --help, --version, --check */
        } else if (rc == 0 && c.argc == 0) {
            rc = usage_error("no command given%s", "");
        } else if (rc == 0 && !strcmp(c.argv[0], "drivers")) {
            rc = cmd_drivers();
        } else if (rc == 0 && !command_named(c.argv[0])) {
            /* Before any driver or state is touched: a typo must not read as a failure. */
            rc = usage_error("unknown command '%s'", c.argv[0]);
        } else if (rc == 0 && !(rc = check_names(&c))) {
            rc = with_federation(secs, &c);
        }
    }
    free_sections(secs);
    for (int i = 0; i < nsets; i++)
        free(sets[i]);
    free(sets);
    free(gargv);
    free(c.argv);
    return rc;
}
