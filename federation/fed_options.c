#include "federation/fed_options.h"

#include <stdlib.h>
#include <string.h>

#include "federation/driver.h"

#define K(f) offsetof(struct fed_options, f)
const struct dsf_cfg_key fed_options_keys[] = {
    {"wait_timeout", DSF_CFG_DURATION, "120s", K(wait_timeout_ms),
     "bound on each wait of a composite operation (a new VM Running)", 100, 86400000},
    {"online_timeout", DSF_CFG_DURATION, "60s", K(online_timeout_ms),
     "bound on the wait for a new VM's agent to report online (migrate)", 100, 86400000},
    {"bus.password_file", DSF_CFG_STR, "", K(bus_password_file),
     "mosquitto password file the local and tumblebug drivers add each new VM's agent user "
     "({ns}/{mci}/{vm}, random password) to and remove it from at terminate; empty: agents "
     "connect without credentials",
     0, 0},
    {"bus.broker_pid_file", DSF_CFG_STR, "", K(bus_broker_pid_file),
     "pid file of the broker, sent SIGHUP after each change of bus.password_file; empty: "
     "reload the broker yourself",
     0, 0},
    DSF_CFG_END,
};
#undef K

int fed_driver_sections(struct dsf_cfg_section *out, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; fed_drivers[i]; i++) {
        const struct fed_driver *d = fed_drivers[i];
        if (!d->keys)
            continue;
        void *opts = k < cap ? calloc(1, d->options_size ? d->options_size : 1) : NULL;
        if (!opts) {
            fed_driver_sections_free(out, k);
            return -1;
        }
        out[k++] = (struct dsf_cfg_section){d->name, d->keys, opts, NULL};
    }
    return (int)k;
}

void fed_driver_sections_free(struct dsf_cfg_section *secs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(secs[i].obj);
        secs[i].obj = NULL;
    }
}

const void *fed_driver_options(const struct dsf_cfg_section *secs, const char *driver)
{
    for (size_t i = 0; secs[i].keys; i++) {
        if (secs[i].prefix && !strcmp(secs[i].prefix, driver))
            return secs[i].obj;
    }
    return NULL;
}

void fed_options_apply(const struct fed_options *o, struct fed_config *c)
{
    c->wait_timeout_ms = o->wait_timeout_ms;
    c->online_timeout_ms = o->online_timeout_ms;
    c->bus_password_file = o->bus_password_file;
    c->bus_broker_pid_file = o->bus_broker_pid_file;
}
