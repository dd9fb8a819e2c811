/*
 * The configuration every host of the federation layer takes, declared once: the bounds of
 * composite operations and the agents' broker credentials (damselfly-fed at the top level,
 * damselfly-control under "federation."), and one section per driver ("local.mqtt_url",
 * "tumblebug.url") holding that driver's options.
 */
#ifndef DSF_FED_OPTIONS_H
#define DSF_FED_OPTIONS_H

#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "federation/federation.h"

struct fed_options {
    int64_t wait_timeout_ms;
    int64_t online_timeout_ms;
    char *bus_password_file;
    char *bus_broker_pid_file;
};

/* wait_timeout, online_timeout, bus.password_file, bus.broker_pid_file. */
extern const struct dsf_cfg_key fed_options_keys[];

/* One section per driver that has options, prefix its name, each on an options struct
 * allocated here. Writes at most cap sections and returns how many, or -1 without memory
 * (what was allocated is freed). */
int fed_driver_sections(struct dsf_cfg_section *out, size_t cap);
/* Frees the option structs of the n sections (after dsf_cfg_free). */
void fed_driver_sections_free(struct dsf_cfg_section *secs, size_t n);
/* The options struct of the named driver among secs (ended by a NULL keys pointer), NULL
 * when it has none. */
const void *fed_driver_options(const struct dsf_cfg_section *secs, const char *driver);

/* A fed_config from the options (state_dir, driver and driver options left to the caller). */
void fed_options_apply(const struct fed_options *o, struct fed_config *c);

#endif
