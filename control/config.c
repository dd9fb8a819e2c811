#include "control/control.h"

#include <stddef.h>

#define K(field) offsetof(struct control_config, field)

const struct dsf_cfg_key control_config_keys[] = {
    {"id", DSF_CFG_ID, "", K(id),
     "controller id (MQTT client id; 1-63 bytes, no / + #); empty: the host name", 0, 0},
    {"input", DSF_CFG_STR, "mqtt", K(input),
     "where alarm events come from: mqtt (dsf/alarm/#) or kafka (dsf.alarms); agent status "
     "always comes from the same bus",
     0, 0},
    {"policies.dir", DSF_CFG_STR, "/etc/damselfly/policies", K(policies_dir),
     "directory of policy files (*.json, schemas/policy.schema.json); the API's policy "
     "changes are written there",
     0, 0},
    {"state.dir", DSF_CFG_STR, "/var/lib/damselfly/control", K(state_dir),
     "where the audit log (also the journal of actions) and the API's write token live", 0, 0},
    {"dry_run", DSF_CFG_BOOL, "false", K(dry_run),
     "every policy decides and audits without acting (a policy's own dry_run adds to it)", 0, 0},
    {"approval", DSF_CFG_BOOL, "false", K(approval),
     "every action waits for POST /api/v1/actions/{id}/approve", 0, 0},
    {"alarm.engines", DSF_CFG_STRLIST, "", K(engines),
     "alarm engines' base URLs, comma separated (http://127.0.0.1:9102): their active alarms "
     "are read at start so that an event missed while the controller was down is acted on",
     0, 0},
    {"settle.firing", DSF_CFG_DURATION, "25ms", K(settle_ms),
     "how long a decision on a firing alarm waits for more events before the guards judge it: "
     "the Last Wills of one storm arrive together, and the breaker must see them all before "
     "the first action",
     0, 10000},
    {"settle.nodata", DSF_CFG_DURATION, "1500ms", K(settle_nodata_ms),
     "the same for nodata alarms: VMs that went silent together miss their deadlines spread "
     "over one collection interval, so wait at least that long",
     0, 60000},
    {"collectors.timeout", DSF_CFG_DURATION, "10s", K(collector_timeout_ms),
     "a collector silent this long is dead; when every collector seen is dead (or offline) "
     "the controller is blind and the breaker opens",
     1000, 3600000},
    {"webhook.max_bytes", DSF_CFG_SIZE, "1MiB", K(webhook_max_bytes),
     "largest Alertmanager webhook body taken (413 beyond it, counted); at most the HTTP "
     "server's own 4MiB cap, which answers 413 before the route sees the body",
     1024, 4194304},
    {"actions.max", DSF_CFG_INT, "10000", K(max_actions),
     "actions kept for GET /api/v1/actions; the oldest finished ones go first", 10, 10000000},
    {"console.idle_timeout", DSF_CFG_DURATION, "30m", K(console_idle_ms),
     "a web console session (docs/console.md) unused this long ends: the next request gets the "
     "login page",
     1000, 604800000},
    {"console.max_age", DSF_CFG_DURATION, "12h", K(console_max_ms),
     "a web console session ends this long after its login, used or not", 1000, 2592000000},
    {"federation.dir", DSF_CFG_STR, "/var/lib/damselfly/federation", K(fed_dir),
     "the federation's state directory (damselfly-fed --state-dir): the MCI model the "
     "controller acts on",
     0, 0},
    DSF_CFG_END,
};
#undef K

#define G(field) offsetof(struct guard_config, field)
const struct dsf_cfg_key control_guard_keys[] = {
    {"guards.max_concurrent", DSF_CFG_INT, "4", G(max_concurrent), "actions running at once", 1,
     10000},
    {"guards.max_concurrent_per_mci", DSF_CFG_INT, "2", G(max_concurrent_per_mci),
     "actions running at once in one MCI", 1, 10000},
    {"guards.mci_fraction", DSF_CFG_DOUBLE, "0.34", G(mci_fraction),
     "share of an MCI's VMs (at least one) under action or acted on within "
     "guards.fraction_window",
     0.0, 1.0},
    {"guards.fraction_window", DSF_CFG_DURATION, "10m", G(fraction_window_ms),
     "how long an acted-on VM counts against guards.mci_fraction", 0, 86400000},
    {"guards.rate_per_hour", DSF_CFG_INT, "30", G(rate_per_hour), "actions begun per hour", 1,
     1000000},
    {"breaker.fraction", DSF_CFG_DOUBLE, "0.5", G(breaker_fraction),
     "share of an MCI's (or the fleet's) VMs going offline or nodata within breaker.window "
     "that opens the storm breaker",
     0.0, 1.0},
    {"breaker.window", DSF_CFG_DURATION, "60s", G(breaker_window_ms),
     "window of the breaker's count", 1000, 86400000},
    {"breaker.hold", DSF_CFG_DURATION, "60s", G(breaker_hold_ms),
     "how long the fleet must stay healthy before the breaker closes", 0, 86400000},
    {"breaker.min_vms", DSF_CFG_INT, "3", G(breaker_min_vms),
     "MCIs smaller than this have no breaker of their own (they count for the fleet's)", 1,
     1000000},
    DSF_CFG_END,
};
#undef G
