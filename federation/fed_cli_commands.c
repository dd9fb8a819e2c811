/* damselfly-fed's commands: each checks its arguments, calls the federation library and
 * prints the outcome; failures are printed with the call, status and reason. */
#define DSF_MODULE "federation"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "common/file.h"
#include "federation/driver.h"
#include "federation/fed_cli.h"
#include "federation/scrape.h"
#include "federation/federation.h"

int fed_cli_usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "damselfly-fed: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, ". Try 'damselfly-fed --help'.\n");
    return 2;
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
    printf("  %-20s %-12s %-11s %-10s %-14s %-22s %-8s %s\n", "VM", "SUBGROUP", "STATUS", "CSP",
           "REGION", "ADDRESS", "MONITOR", "DETAIL");
    for (size_t i = 0; i < m->nvms; i++) {
        const struct fed_vm *v = &m->vms[i];
        if (vm && strcmp(v->id, vm))
            continue;
        struct fed_monitoring_spec ms;
        const char *mode = fed_spec_monitoring(&v->spec, &ms, NULL) == 0
                               ? fed_monitoring_name(ms.mode)
                               : "invalid";
        printf("  %-20s %-12s %-11s %-10s %-14s %-22s %-8s %s%s%s%s\n", v->id, v->subgroup,
               fed_vm_state_name(v->state), v->spec.csp, v->spec.region,
               v->address[0] ? v->address : "-", mode, v->autogen ? "autogen " : "", v->driver_data,
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
        return fed_cli_usage_error("status takes at most NS and MCI, not '%s'", c->argv[3]);
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
        return fed_cli_usage_error("create-mci needs --spec FILE%s", "");
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
        return fed_cli_usage_error("unknown action '%s' (use suspend, resume, reboot, terminate or "
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
        return fed_cli_usage_error("migrate needs --region REGION%s", "");
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
        return fed_cli_usage_error("N '%s' must be a positive integer", c->argv[4]);
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
            return fed_cli_usage_error("--timeout '%s': use a duration like 90s or 5m", c->timeout);
        if (c->grace && parse_count(c->grace, 0, &o.grace_period_s) < 0)
            return fed_cli_usage_error("--grace-period '%s': use seconds (0 or more)", c->grace);
        rc = fed_node_drain(f, node, &o, &e);
    } else {
        return fed_cli_usage_error("unknown node action '%s' (use cordon, uncordon or drain)",
                                   verb);
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
        return fed_cli_usage_error("unknown kind '%s' (use deployment or machinedeployment)",
                                   c->argv[1]);
    if (parse_count(c->argv[4], 0, &n) < 0)
        return fed_cli_usage_error("REPLICAS '%s' must be an integer >= 0", c->argv[4]);
    struct fed_error e;
    if (fed_scale(f, kind, c->argv[2], c->argv[3], n, c->dry_run, &old, &e) < 0)
        return fail_op(&e);
    printf("scaled %s %s/%s from %d to %d%s\n", c->argv[1], c->argv[2], c->argv[3], old, n,
           c->dry_run ? " (dry run)" : "");
    return 0;
}

int fed_cli_drivers(void)
{
    for (const struct fed_driver *const *d = fed_drivers; *d; d++)
        printf("%-12s %s\n", (*d)->name, (*d)->summary ? (*d)->summary : "");
    return 0;
}

/* Names given on the command line are checked before anything is done: a bad one is a usage
 * error (exit 2), not a failed operation. */
int fed_cli_check_names(const struct cmd *c)
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
command_fn fed_cli_command(const char *name)
{
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (!strcmp(name, commands[i].name))
            return commands[i].run;
    }
    return NULL;
}
