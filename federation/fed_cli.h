/* damselfly-fed's parts: the command line, configuration and main in fed_cli.c, the
 * commands and their output in fed_cli_commands.c, the clearing of removed VMs' retained
 * statuses in fed_cli_bus.c. */
#ifndef DSF_FED_CLI_H
#define DSF_FED_CLI_H

#include "federation/federation.h"

struct cmd {
    int argc;
    char **argv; /* positional arguments, command first */
    const char *spec, *region, *csp, *common_spec, *new_id, *timeout, *grace;
    int dry_run, json;
};

/* "damselfly-fed: <fmt with arg>. Try 'damselfly-fed --help'." on stderr; returns 2. */
int fed_cli_usage_error(const char *fmt, const char *arg);

typedef int (*command_fn)(struct fed *f, struct cmd *c);
/* The command named name (c->argv[0]), NULL when there is none: known before any driver
 * or state directory is touched. */
command_fn fed_cli_command(const char *name);
/* Ids given on the command line, checked before anything is done: 2 (with the message
 * printed) when one is bad, else 0. */
int fed_cli_check_names(const struct cmd *c);
/* The "drivers" command, which needs no driver. */
int fed_cli_drivers(void);

/* fed_cli_bus.c: the vm_removed hook (federation.h). With mqtt->url set it publishes an empty
 * retained message (QoS 1) on the VM's status topic and waits, bounded, for the broker's
 * confirmation; without it, or when that fails, it logs a warning naming the topic and the
 * mosquitto_pub command that clears it. mqtt must outlive the handle. */
struct dsf_mqtt_config;
struct fed_cli_bus;
struct fed_cli_bus *fed_cli_bus_new(const struct dsf_mqtt_config *mqtt);
void fed_cli_bus_vm_removed(void *arg, const struct fed_vm *vm);
void fed_cli_bus_free(struct fed_cli_bus *b);

#endif
