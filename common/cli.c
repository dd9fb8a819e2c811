/* The command line every daemon and tool shares (common/config.h: struct dsf_cli). */
#define DSF_MODULE "config"
#include "common/config.h"
#include "common/log.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef DSF_VERSION
#define DSF_VERSION "0.1.0"
#endif
/* Generated at build time (cmake/commit.cmake): the commit the binary was built from. */
extern const char dsf_build_commit[];

static void print_usage(const struct dsf_cli *cli, FILE *out)
{
    fprintf(out,
            "Usage: %s [OPTIONS]\n%s\n\n"
            "OPTIONS\n"
            "  -c, --config FILE     JSON configuration file (also DAMSELFLY_CONFIG)\n"
            "  -s, --set KEY=VALUE   override one configuration key; repeatable\n"
            "  -l, --log-level LEVEL error, warn, info (default) or debug\n"
            "      --check           load and validate the configuration, then exit\n",
            cli->prog, cli->summary);
    if (cli->print_routes)
        fprintf(out, "      --print-routes    start as configured, print the HTTP routes (path,\n"
                     "                        methods, public or auth: docs/api.md) and exit\n");
    fprintf(out,
            "  -h, --help            show this help and exit\n"
            "      --help-config=FORMAT  print the configuration keys as text or markdown\n"
            "                        (docs/configuration.md is made of it) and exit\n"
            "  -V, --version         show the version and exit\n\n"
            "  Precedence: built-in defaults < config file < DAMSELFLY_* environment < --set.\n"
            "  Exit status: 0 on success, 1 on a runtime failure, 2 on a usage or\n"
            "  configuration error.\n\n");
    if (cli->usage)
        fprintf(out, "%s\n", cli->usage);
    dsf_cfg_help(cli->sections, "DAMSELFLY_", out);
}

/* The keys alone, for generated documents: a Markdown section per program. */
static int print_config_keys(const struct dsf_cli *cli, const char *format)
{
    if (!strcmp(format, "markdown")) {
        printf("## %s\n\n%s\n\n", cli->prog, cli->summary);
        dsf_cfg_help_rows(cli->sections, "DAMSELFLY_", DSF_CFG_HELP_MARKDOWN, stdout);
    } else if (!strcmp(format, "text")) {
        dsf_cfg_help_rows(cli->sections, "DAMSELFLY_", DSF_CFG_HELP_TEXT, stdout);
    } else {
        fprintf(stderr, "%s: --help-config: expected text or markdown, not '%s'\n", cli->prog,
                format);
        return 2;
    }
    return 1;
}

/* What the options asked for, beyond what one_option does at once. */
struct cli_args {
    const char *config_path;
    char **sets;
    int nsets, check_only;
};

/* One option of getopt_long: 0 to go on, 1 when done (--help, --version), 2 on an error. */
static int one_option(const struct dsf_cli *cli, int c, struct cli_args *a)
{
    enum dsf_log_level level;
    switch (c) {
    case 'c':
        a->config_path = optarg;
        return 0;
    case 's':
        a->sets[a->nsets++] = optarg;
        return 0;
    case 'l':
        if (dsf_log_parse_level(optarg, &level) == 0) {
            dsf_log_set_level(level);
            return 0;
        }
        fprintf(stderr, "%s: --log-level: expected error, warn, info or debug\n", cli->prog);
        return 2;
    case 'C':
        a->check_only = 1;
        return 0;
    case 'h':
        print_usage(cli, stdout);
        return 1;
    case 'K':
        return print_config_keys(cli, optarg);
    case 'V':
        printf("%s %s\n", cli->prog, dsf_version_string());
        return 1;
    case 'R':
        if (cli->print_routes) {
            *cli->print_routes = 1;
            return 0;
        }
        fprintf(stderr, "%s: --print-routes: this program serves no HTTP\n", cli->prog);
        return 2;
    default:
        fprintf(stderr, "Try '%s --help'.\n", cli->prog);
        return 2;
    }
}

int dsf_cli_parse(const struct dsf_cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"set", required_argument, NULL, 's'},
                                         {"log-level", required_argument, NULL, 'l'},
                                         {"check", no_argument, NULL, 'C'},
                                         {"help", no_argument, NULL, 'h'},
                                         {"version", no_argument, NULL, 'V'},
                                         {"help-config", required_argument, NULL, 'K'},
                                         {"print-routes", no_argument, NULL, 'R'},
                                         {NULL, 0, NULL, 0}};
    struct cli_args a = {getenv("DAMSELFLY_CONFIG"), calloc((size_t)argc + 1, sizeof(char *)), 0,
                         0};
    char **sets = a.sets;
    char err[DSF_CFG_ERRLEN];
    int c, rc = 0;
    optind = 1;
    while (rc == 0 && (c = getopt_long(argc, argv, "c:s:l:hV", opts, NULL)) != -1)
        rc = one_option(cli, c, &a);
    const char *config_path = a.config_path;
    int check_only = a.check_only, nsets = a.nsets;
    if (rc == 0 && optind < argc) {
        fprintf(stderr, "%s: unexpected argument '%s'. Try '%s --help'.\n", cli->prog, argv[optind],
                cli->prog);
        rc = 2;
    }
    const char *origin = config_path ? config_path : "configuration";
    if (rc == 0) {
        if (dsf_cfg_defaults(cli->sections, err, sizeof(err)) ||
            (config_path && dsf_cfg_load_file(cli->sections, config_path, err, sizeof(err))) ||
            dsf_cfg_env(cli->sections, "DAMSELFLY_", err, sizeof(err)))
            rc = 2;
        for (int i = 0; rc == 0 && i < nsets; i++)
            if (dsf_cfg_set(cli->sections, sets[i], "--set", err, sizeof(err)))
                rc = 2;
        if (rc == 0 && cli->validate && cli->validate(cli->sections, origin, err, sizeof(err)))
            rc = 2;
        if (rc == 0 && dsf_cfg_check_files(cli->sections, origin, err, sizeof(err)))
            rc = 2;
        if (rc == 2)
            fprintf(stderr, "%s: configuration error: %s\n", cli->prog, err);
    }
    free(sets);
    if (rc == 0 && check_only) {
        if (cli->check && cli->check(cli->check_arg, err, sizeof(err))) {
            fprintf(stderr, "%s: configuration error: %s\n", cli->prog, err);
            return 2;
        }
        printf("%s: configuration OK\n", origin);
        rc = 1;
    }
    return rc;
}

const char *dsf_version_string(void)
{
    static char s[128];
    if (!*s)
        snprintf(s, sizeof(s), "%s (commit %s)", DSF_VERSION, dsf_build_commit);
    return s;
}
