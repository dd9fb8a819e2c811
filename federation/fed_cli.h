/* damselfly-fed's parts: the command line, configuration and main in fed_cli.c, the
 * commands and their output in fed_cli_commands.c. */
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

#endif
