/* Shared by config.c and config_value.c: the check of a string row type's value. */
#ifndef DSF_CONFIG_IMPL_H
#define DSF_CONFIG_IMPL_H

#include "common/config.h"
#include "common/fail.h"

/* 0 when value suits k's type (always for the types without a check), else -1 with err
 * naming the origin, the key and the value. */
int dsf_cfg_check_value(const struct dsf_cfg_key *k, const char *name, const char *value,
                        const char *origin, char *err, size_t errlen);

#endif
