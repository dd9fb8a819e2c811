/*
 * damselfly-control: turns alarms into guarded, verified healing through the federation
 * layer, with an audit trail (docs/control.md). This file is the daemon's definition for the
 * skeleton (common/daemon.h).
 */
#define DSF_MODULE "control"
#include "common/daemon.h"
#include "common/log.h"
#include "control/control.h"

#include <stdlib.h>
#include <string.h>

struct control {
    struct control_config cfg;
    struct dsf_cfg_section sections[2];
};

static const char usage[] =
    "DESCRIPTION\n"
    "  Reads policies (policies.dir, one JSON file each, schemas/policy.schema.json) that\n"
    "  map alarms to healing steps, and keeps a hash-chained audit of every decision in\n"
    "  state.dir. --check loads and checks the policies without acting.\n"
    "\n"
    "EXAMPLES\n"
    "  damselfly-control --set policies.dir=deploy/policies --check\n";

static int start(void *ctx, struct dsf_daemon *d)
{
    struct control *c = ctx;
    (void)d;
    log_info("policies in %s, state in %s", c->cfg.policies_dir, c->cfg.state_dir);
    return 0;
}

static void fini(void *ctx)
{
    struct control *c = ctx;
    dsf_cfg_free(c->sections);
}

int main(int argc, char **argv)
{
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
        .start = start,
        .fini = fini,
        .ctx = c,
    };
    return dsf_daemon_main(&def, argc, argv);
}
