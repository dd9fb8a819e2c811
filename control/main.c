/*
 * damselfly-control: turns alarms into guarded, verified healing through the federation
 * layer, with an audit trail (docs/control.md). This file is the daemon's definition for the
 * skeleton (common/daemon.h).
 */
#define DSF_MODULE "control"
#include "common/daemon.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/file.h"
#include "control/audit.h"
#include "control/control.h"
#include "control/policy.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct control {
    struct control_config cfg;
    struct dsf_cfg_section sections[2];
    struct audit *audit;
    struct policy_set policies;
    struct dsf_metrics metrics;
};

static const char usage[] =
    "DESCRIPTION\n"
    "  Reads policies (policies.dir, one JSON file each, schemas/policy.schema.json) that\n"
    "  map alarms to healing steps, and keeps a hash-chained audit of every decision in\n"
    "  state.dir/audit.jsonl (docs/control.md). --check loads and checks the\n"
    "  policies without acting.\n"
    "\n"
    "COMMANDS\n"
    "  damselfly-control audit verify FILE   check an audit log's hash chain\n"
    "\n"
    "EXAMPLES\n"
    "  damselfly-control --set policies.dir=deploy/policies --check\n"
    "  damselfly-control audit verify /var/lib/damselfly/control/audit.jsonl\n";

/* The audit log of state.dir, refused when its chain was tampered with; its first record
 * of this run says the controller started. */
static int open_audit(struct control *c)
{
    char path[4096], err[600];
    if (dsf_mkdir_p(c->cfg.state_dir, 0700, err, sizeof(err))) {
        log_error("state.dir: %s", err);
        return 1;
    }
    snprintf(path, sizeof(path), "%s/audit.jsonl", c->cfg.state_dir);
    c->audit = audit_open(path, err, sizeof(err));
    if (!c->audit) {
        log_error("%s; check it with: damselfly-control audit verify %s", err, path);
        return 1;
    }
    json_t *rec = json_pack("{s:s, s:s}", "event", "start", "version", DSF_VERSION);
    int rc = audit_append(c->audit, rec, err, sizeof(err));
    json_decref(rec);
    if (rc) {
        log_error("audit log %s: %s", path, err);
        return 1;
    }
    log_info("audit log %s: %llu records", path, (unsigned long long)audit_last_seq(c->audit));
    return 0;
}

static int load_policies(struct control *c, char *err, size_t errlen)
{
    policy_set_free(&c->policies);
    if (policy_load_dir(c->cfg.policies_dir, &c->policies, err, errlen))
        return -1;
    log_info("%zu policies from %s", c->policies.n, c->cfg.policies_dir);
    return 0;
}

/* --check: the policies load as start would load them. */
static int check(void *ctx, char *err, size_t errlen)
{
    return load_policies(ctx, err, errlen);
}

static double policies_loaded(void *arg)
{
    return (double)((struct control *)arg)->policies.n;
}

static double audit_records(void *arg)
{
    struct control *c = arg;
    return c->audit ? (double)audit_last_seq(c->audit) : 0;
}

/* A torn last line is a record a crash cut short: counted like every other loss. */
static double audit_torn(void *arg)
{
    struct control *c = arg;
    return c->audit ? (double)audit_torn_truncated(c->audit) : 0;
}

static void add_metrics(struct control *c)
{
    metrics_add_fn(&c->metrics, "damselfly_control_policies", DSF_GAUGE,
                   "Policies loaded from policies.dir.", NULL, policies_loaded, c);
    metrics_add_fn(&c->metrics, "damselfly_control_audit_records", DSF_GAUGE,
                   "Records in the audit chain (its last seq).", NULL, audit_records, c);
    metrics_add_fn(&c->metrics, "damselfly_control_audit_torn_truncated_total", DSF_COUNTER,
                   "Torn last lines (a crash while writing) cut off the audit log at open.", NULL,
                   audit_torn, c);
}

static struct dsf_metrics *metrics(void *arg)
{
    return &((struct control *)arg)->metrics;
}

static int start(void *ctx, struct dsf_daemon *d)
{
    struct control *c = ctx;
    char err[1024];
    (void)d;
    if (load_policies(c, err, sizeof(err))) {
        log_error("policies.dir: %s", err);
        return 2;
    }
    add_metrics(c);
    return open_audit(c);
}

static void fini(void *ctx)
{
    struct control *c = ctx;
    audit_close(c->audit);
    policy_set_free(&c->policies);
    metrics_free(&c->metrics);
    dsf_cfg_free(c->sections);
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "audit") == 0)
        return control_audit_command(argc - 1, argv + 1);
    static struct control control;
    struct control *c = &control;
    c->sections[0] = (struct dsf_cfg_section){"", control_config_keys, &c->cfg, NULL};
    const struct dsf_daemon_def def = {
        .prog = "damselfly-control",
        .name = "control",
        .summary = "Damselfly's quality controller: alarms turned into guarded, verified "
                   "healing, with an audit trail.",
        .usage = usage,
        .http_listen = "127.0.0.1:9103",
        .state_dir_key = "state.dir",
        .sections = c->sections,
        .check = check,
        .start = start,
        .fini = fini,
        .metrics = metrics,
        .ctx = c,
    };
    return dsf_daemon_main(&def, argc, argv);
}
