/* The drivers by name. Kept apart from the library's other files so that a program that
 * opens a driver directly (fed_open_driver) links only that driver. */
#include <stdio.h>
#include <string.h>

#include "federation/driver.h"
#include "federation/internal.h"

const struct fed_driver *const fed_drivers[] = {
    &fed_driver_local,
    &fed_driver_tumblebug,
    &fed_driver_kubernetes,
    NULL,
};

const struct fed_driver *fed_driver_find(const char *name, struct fed_error *err)
{
    char known[128] = "";
    for (const struct fed_driver *const *d = fed_drivers; *d; d++) {
        if (name && !strcmp((*d)->name, name))
            return *d;
        size_t n = strlen(known);
        snprintf(known + n, sizeof(known) - n, "%s%s", n ? ", " : "", (*d)->name);
    }
    fed_fail(err, FED_EINVAL, "driver", 0, "unknown driver '%s' (known: %s)", name ? name : "",
             known);
    return NULL;
}

struct fed *fed_open(const struct fed_config *c, struct fed_error *err)
{
    if (!c) {
        fed_fail(err, FED_EINVAL, "open", 0, "no configuration given");
        return NULL;
    }
    const struct fed_driver *d = fed_driver_find(c->driver, err);
    return d ? fed_open_driver(d, c, err) : NULL;
}
