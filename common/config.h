/*
 * Table-driven configuration: each component describes its settings as one row per key
 * (type, default, offset into its config struct, description, bounds). The same table
 * loads JSON files, DAMSELFLY_* environment overrides and --set key=value, rejects
 * unknown keys, and generates --help.
 */
#ifndef DSF_CONFIG_H
#define DSF_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum dsf_cfg_type {
    DSF_CFG_BOOL,     /* int: 0 or 1 */
    DSF_CFG_INT,      /* int64_t */
    DSF_CFG_DOUBLE,   /* double */
    DSF_CFG_STR,      /* char *, owned by the config struct */
    DSF_CFG_DURATION, /* int64_t milliseconds; "500ms", "2s", "1m", "1h" or seconds as number */
    DSF_CFG_SIZE,     /* uint64_t bytes; "8MiB", "64KiB", "1G" or bytes as number */
    DSF_CFG_STRLIST,  /* struct dsf_strlist; JSON array or comma-separated string */
    DSF_CFG_LISTEN,   /* char *: "host:port", "[v6]:port" or ":port" (port 0-65535); "": off */
    /* Strings checked for what they are used as, so a value that would break later is
     * refused at start and by --check, naming the key and the value. "" is always allowed
     * (unset: off, or a default the component derives). */
    DSF_CFG_TOPIC,    /* char *: a concrete MQTT topic to publish on: no + or # (dsf_check_topic) */
    DSF_CFG_ID,       /* char *: an MQTT client id and topic segment (dsf_check_id) */
    DSF_CFG_URL,      /* char *: an http:// or https:// URL (dsf_check_url) */
    DSF_CFG_MQTT_URL, /* char *: a broker URL: tcp, mqtt, ssl, mqtts, ws or wss (dsf_check_url) */
    DSF_CFG_FILE,     /* char *: a file that must be readable (dsf_cfg_check_files) */
};

struct dsf_strlist {
    char **items;
    size_t count;
};

struct dsf_cfg_key {
    const char *key; /* dotted path: "mqtt.host" is {"mqtt": {"host": ...}} in JSON */
    enum dsf_cfg_type type;
    const char *def; /* default, in the string form --set takes; NULL = unset */
    size_t offset;
    const char *desc;
    double min, max; /* inclusive bounds for numbers and durations (ms); min == max: none */
};

#define DSF_CFG_END                                                                                \
    {                                                                                              \
        NULL, 0, NULL, 0, NULL, 0, 0                                                               \
    }
/* A size that fits every configuration message: char err[DSF_CFG_ERRLEN]. */
#define DSF_CFG_ERRLEN 512

/*
 * A configuration is a list of sections, each a table with the struct it fills: the
 * component's own keys (prefix "") and one section per plugin ("inputs.cpu") or shared group
 * of keys ("mqtt", "http": common/bus_config.h, common/daemon.h), so each owns its table and
 * its struct. A shared table can take other defaults per component: `defaults` lists
 * "key=value" (key without the prefix), NULL-terminated. The list ends with a NULL keys.
 */
struct dsf_cfg_section {
    const char *prefix;
    const struct dsf_cfg_key *keys;
    void *obj;
    const char *const *defaults;
};

/* Every call returns 0, or -1 with a message naming the origin and the key in err (errlen
 * bytes). */
int dsf_cfg_defaults(const struct dsf_cfg_section *secs, char *err, size_t errlen);
int dsf_cfg_load_file(const struct dsf_cfg_section *secs, const char *path, char *err,
                      size_t errlen);
int dsf_cfg_load_json(const struct dsf_cfg_section *secs, const char *text, size_t len,
                      const char *origin, char *err, size_t errlen);
int dsf_cfg_set(const struct dsf_cfg_section *secs, const char *assignment, const char *origin,
                char *err, size_t errlen);
int dsf_cfg_set_value(const struct dsf_cfg_section *secs, const char *key, const char *value,
                      const char *origin, char *err, size_t errlen);
/* Applies PREFIX<KEY> variables (dots and dashes become '_', upper case); warns about PREFIX*
 * variables that name no key (but PREFIX"CONFIG"), with the closest key when one is near. */
int dsf_cfg_env(const struct dsf_cfg_section *secs, const char *prefix, char *err, size_t errlen);
void dsf_cfg_help(const struct dsf_cfg_section *secs, const char *env_prefix, FILE *out);
/* One row per key, as --help prints them (text) or as a Markdown table (--help-config=markdown,
 * from which docs/configuration.md is generated): one writer, so the two never disagree. */
enum dsf_cfg_help_format { DSF_CFG_HELP_TEXT, DSF_CFG_HELP_MARKDOWN };
void dsf_cfg_help_rows(const struct dsf_cfg_section *secs, const char *env_prefix,
                       enum dsf_cfg_help_format fmt, FILE *out);
void dsf_cfg_free(const struct dsf_cfg_section *secs);

/* The string value of key (any string-like row), or NULL when no such key. */
const char *dsf_cfg_str(const struct dsf_cfg_section *secs, const char *key);
/* Opens every DSF_CFG_FILE that is set: -1 with err naming the first that cannot be read. Run
 * once everything is loaded (a later origin may change the path). */
int dsf_cfg_check_files(const struct dsf_cfg_section *secs, const char *origin, char *err,
                        size_t errlen);

/* Checks of the string row types, for values that do not come through a table: 0, or -1
 * with why (what is wrong, without the key or the value). */
/* 1 to 63 bytes of UTF-8 without '/', '+', '#', control characters or spaces at either end. */
int dsf_check_id(const char *v, char *why, size_t whylen);
/* 1 to 65535 bytes of UTF-8 without '+', '#', control characters or a leading '$'. */
int dsf_check_topic(const char *v, char *why, size_t whylen);
/* scheme://host[:port][/path][?query]: a scheme in the NULL-terminated list, a host name
 * or [v6] address, a port of 1-65535, no spaces or control characters; a path only when
 * with_path is set. */
int dsf_check_url(const char *v, const char *const *schemes, int with_path, char *why,
                  size_t whylen);

int dsf_parse_duration_ms(const char *s, int64_t *out);
/* Levenshtein distance between two names (SIZE_MAX past 126 bytes): a name one or two edits
 * from a known one is a typo of it, worth a "did you mean". */
size_t dsf_edit_distance(const char *a, const char *b);
int dsf_parse_size(const char *s, uint64_t *out);
void dsf_strlist_free(struct dsf_strlist *l);

/*
 * Command line shared by every daemon: -c/--config FILE (or DAMSELFLY_CONFIG),
 * --set key=value (repeatable), --log-level, --check, --help, --version.
 * Returns 0 to run, 1 when the caller should exit 0 (--help, --version, --check passed),
 * 2 on a usage or configuration error (already printed).
 */
struct dsf_cli {
    const char *prog;
    const char *summary; /* one line */
    const char *usage;   /* paragraphs printed after the options */
    const struct dsf_cfg_section *sections;
    /* Optional whole-config check after loading (identity present, ...). Return -1 + err. */
    int (*validate)(const struct dsf_cfg_section *secs, const char *origin, char *err,
                    size_t errlen);
    /* Optional, for --check: loads everything a start would load (rule files, routing
     * files, ...) without binding or connecting. Return -1 + err. */
    int (*check)(void *arg, char *err, size_t errlen);
    void *check_arg;
    /* Optional: --print-routes is accepted and sets *print_routes (a daemon with an HTTP
     * server); NULL: the option is unknown, as for the tools. */
    int *print_routes;
};
int dsf_cli_parse(const struct dsf_cli *cli, int argc, char **argv);
/* "1.2.3 (commit abc123def456)": the version and the commit it was built from. */
const char *dsf_version_string(void);

#endif
