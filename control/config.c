#include "control/control.h"

#include <stddef.h>

#define K(field) offsetof(struct control_config, field)

const struct dsf_cfg_key control_config_keys[] = {
    {"id", DSF_CFG_ID, "", K(id),
     "controller id (MQTT client id; 1-63 bytes, no / + #); empty: the host name", 0, 0},
    {"policies.dir", DSF_CFG_STR, "/etc/damselfly/policies", K(policies_dir),
     "directory of policy files (*.json, schemas/policy.schema.json)", 0, 0},
    {"state.dir", DSF_CFG_STR, "/var/lib/damselfly/control", K(state_dir),
     "where the journal, the audit log and the API's write token live", 0, 0},
    DSF_CFG_END,
};
