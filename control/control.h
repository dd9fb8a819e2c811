/* damselfly-control: the quality controller (docs/control.md). */
#ifndef DSF_CONTROL_H
#define DSF_CONTROL_H

#include "common/config.h"

struct control_config {
    char *id;
    char *policies_dir;
    char *state_dir;
};

extern const struct dsf_cfg_key control_config_keys[];

/* damselfly-control audit ...: argv[0] is "audit". Returns the exit status. */
int control_audit_command(int argc, char **argv);

#endif
