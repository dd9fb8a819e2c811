/* damselfly-fed: the operator's command line to the federation layer. */
#define DSF_MODULE "federation"
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/bus_config.h"
#include "common/config.h"
#include "common/file.h"
#include "common/log.h"
#include "federation/driver.h"
#include "federation/federation.h"
#include "federation/fed_cli.h"
#include "federation/fed_options.h"

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
    "      The label damselfly.monitoring says how a subgroup's VMs are monitored: push\n"
    "      (default: the agent pushes), pull (the agent's push is off; the scraper reads\n"
    "      its /api/v1/snapshot) or exporter (no agent; the scraper reads a Prometheus\n"
    "      endpoint, damselfly.scrape-port, default 9100, damselfly.scrape-path, default\n"
    "      /metrics).\n"
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
    "              agents push to local.mqtt_url. A pull VM's agent has push off and\n"
    "              requires the token in STATE_DIR/local/pull.token; an exporter VM runs\n"
    "              only its workload, \"{port}\" in it replaced by the VM's port. VM\n"
    "              operations only.\n"
    "  tumblebug   CB-Tumblebug's REST API with basic auth (tumblebug.url, .user,\n"
    "              .password): VM control, vmDynamic/mciDynamic, native subgroup scale out;\n"
    "              tumblebug.api=v0.13 switches to the infra/node/nodegroup paths. VM\n"
    "              operations only.\n"
    "  kubernetes  The Kubernetes API with a bearer token or client certificate from a\n"
    "              kubeconfig (kubernetes.kubeconfig, $KUBECONFIG, ~/.kube/config) or the\n"
    "              pod's service account. node and scale commands only.\n"
    "  A command the driver does not support fails with \"driver X does not support Y\".\n"
    "\n"
    "BROKER CREDENTIALS\n"
    "  With bus.password_file (mosquitto's password file), each VM the local or tumblebug\n"
    "  driver creates gets a broker user {ns}/{mci}/{vm} with a random password, added as a\n"
    "  $7$ line (mosquitto_passwd's format) before the broker is sent SIGHUP (pid from\n"
    "  bus.broker_pid_file; without it, reload the broker yourself). The password reaches\n"
    "  the agent through install-agent.sh --mqtt-password-file (local) or the VM's user data,\n"
    "  tumblebug.agent_cloud_init filled for that VM (tumblebug: one create request per VM).\n"
    "  Terminating the VM removes the user. It is never printed. Without bus.password_file\n"
    "  the agents connect without credentials (warned).\n"
    "\n"
    "REMOVED VMS' STATUS\n"
    "  A removed VM's agent leaves its retained status (offline) on\n"
    "  dsf/a/NS/MCI/VM/status, and an agent_offline alarm would fire on it for ever. vm\n"
    "  delete, mci delete, scale-in and migrate (the old VM) clear it with an empty retained\n"
    "  message (QoS 1, confirmed by the broker within 5 s) when mqtt.url names the broker;\n"
    "  mqtt.username and mqtt.password (the operator or control principal) and the mqtt.tls_*\n"
    "  keys as for the other components. The alarm engine then forgets the VM's alarms.\n"
    "  Without mqtt.url (the default), or when that fails, a warning names the topic and the\n"
    "  command that clears it: mosquitto_pub -r -n -t dsf/a/NS/MCI/VM/status.\n"
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
    struct fed_options fed;
    struct dsf_mqtt_config mqtt; /* where removed VMs' retained statuses are cleared */
};

/* No broker unless the operator names one: a default would clear statuses on whatever
 * broker happens to listen on localhost. */
static const char *const mqtt_defaults[] = {"url=", NULL};
/* Sections before the drivers': the CLI's keys, the federation's, then mqtt's connection and
 * auth rows. */
#define FIXED_SECTIONS 4

#define K(f) offsetof(struct cli_config, f)
static const struct dsf_cfg_key cli_keys[] = {
    {"state.dir", DSF_CFG_STR, "/var/lib/damselfly/federation", K(state_dir),
     "where the model (mci/<ns>/<mci>.json) and the drivers' files are kept", 0, 0},
    {"driver", DSF_CFG_STR, "local", K(driver), "local, tumblebug or kubernetes", 0, 0},
    DSF_CFG_END,
};
#undef K

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
                return fed_cli_usage_error("option %s needs a value", a);
            gargv[(*gargc)++] = argv[i++];
            gargv[(*gargc)++] = argv[i];
        } else if (is_global_flag(a)) {
            gargv[(*gargc)++] = argv[i];
        } else if (!strcmp(a, "--driver") || !strcmp(a, "--state-dir")) {
            if (i + 1 >= argc)
                return fed_cli_usage_error("option %s needs a value", a);
            char *s;
            if (asprintf(&s, "%s=%s", a[2] == 'd' ? "driver" : "state.dir", argv[++i]) < 0)
                return 1;
            sets[(*nsets)++] = s;
            gargv[(*gargc)++] = "--set";
            gargv[(*gargc)++] = s;
        } else if ((dst = cmd_option(c, a))) {
            if (i + 1 >= argc)
                return fed_cli_usage_error("option %s needs a value", a);
            *dst = argv[++i];
        } else if (!strcmp(a, "--dry-run")) {
            c->dry_run = 1;
        } else if (!strcmp(a, "--json")) {
            c->json = 1;
        } else {
            return fed_cli_usage_error("unknown option '%s'", a);
        }
    }
    gargv[*gargc] = NULL;
    return 0;
}

/* ---- main ------------------------------------------------------------------------------------ */

/* The CLI's own keys and the federation's, the broker's (mqtt.url, ...), then one section
 * per driver ("local.mqtt_url", "tumblebug.url"). */
#define MAX_DRIVERS 8
static struct dsf_cfg_section *build_sections(struct cli_config *cfg)
{
    struct dsf_cfg_section *secs = calloc(MAX_DRIVERS + FIXED_SECTIONS + 1, sizeof(*secs));
    if (!secs)
        return NULL;
    secs[0] = (struct dsf_cfg_section){"", cli_keys, cfg, NULL};
    secs[1] = (struct dsf_cfg_section){"", fed_options_keys, &cfg->fed, NULL};
    dsf_mqtt_sections(secs + 2, &cfg->mqtt);
    secs[2].defaults = mqtt_defaults;
    if (fed_driver_sections(secs + FIXED_SECTIONS, MAX_DRIVERS) < 0) {
        free(secs);
        return NULL;
    }
    return secs;
}

static void free_sections(struct dsf_cfg_section *secs)
{
    if (!secs)
        return;
    dsf_cfg_free(secs);
    size_t n = 0;
    while (secs[FIXED_SECTIONS + n].keys)
        n++;
    fed_driver_sections_free(secs + FIXED_SECTIONS, n);
    free(secs);
}

static int validate(const struct dsf_cfg_section *secs, const char *origin, char *err,
                    size_t errlen)
{
    const struct cli_config *c = secs[0].obj;
    struct fed_error e;
    if (!fed_driver_find(c->driver, &e)) {
        snprintf(err, errlen, "%s: driver: %.400s", origin, e.message);
        return -1;
    }
    if (!c->state_dir || !c->state_dir[0]) {
        snprintf(err, errlen, "%s: state.dir is empty", origin);
        return -1;
    }
    return 0;
}

static int with_federation(const struct dsf_cfg_section *secs, struct cmd *c)
{
    const struct cli_config *cfg = secs[0].obj;
    const struct fed_driver *d = fed_driver_find(cfg->driver, NULL);
    struct fed_cli_bus *bus = fed_cli_bus_new(&cfg->mqtt);
    if (!bus) {
        fprintf(stderr, "damselfly-fed: out of memory\n");
        return 1;
    }
    struct fed_config fc = {
        .state_dir = cfg->state_dir,
        .driver = cfg->driver,
        .driver_options = fed_driver_options(secs, cfg->driver),
        .vm_removed = fed_cli_bus_vm_removed,
        .vm_removed_arg = bus,
    };
    fed_options_apply(&cfg->fed, &fc);
    struct fed_error e;
    struct fed *f = d ? fed_open_driver(d, &fc, &e) : NULL;
    if (!f) {
        char msg[800];
        fprintf(stderr, "damselfly-fed: cannot open the %s driver: %s\n", cfg->driver,
                fed_error_format(&e, msg, sizeof(msg)));
        fed_cli_bus_free(bus);
        return e.kind == FED_EINVAL ? 2 : 1;
    }
    int rc = fed_cli_command(c->argv[0])(f, c);
    fed_close(f);
    fed_cli_bus_free(bus);
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
            rc = fed_cli_usage_error("no command given%s", "");
        } else if (rc == 0 && !strcmp(c.argv[0], "drivers")) {
            rc = fed_cli_drivers();
        } else if (rc == 0 && !fed_cli_command(c.argv[0])) {
            /* Before any driver or state is touched: a typo must not read as a failure. */
            rc = fed_cli_usage_error("unknown command '%s'", c.argv[0]);
        } else if (rc == 0 && !(rc = fed_cli_check_names(&c))) {
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
