#define DSF_MODULE "config"
#include "common/config.h"
#include "common/config_impl.h"
#include "common/file.h"
#include "common/http.h"
#include "common/log.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

static const char *type_name(enum dsf_cfg_type t)
{
    switch (t) {
    case DSF_CFG_BOOL:
        return "bool";
    case DSF_CFG_INT:
        return "integer";
    case DSF_CFG_DOUBLE:
        return "number";
    case DSF_CFG_STR:
        return "string";
    case DSF_CFG_DURATION:
        return "duration";
    case DSF_CFG_SIZE:
        return "size";
    case DSF_CFG_STRLIST:
        return "string list";
    case DSF_CFG_LISTEN:
        return "address";
    case DSF_CFG_TOPIC:
        return "topic";
    case DSF_CFG_ID:
        return "id";
    case DSF_CFG_URL:
    case DSF_CFG_MQTT_URL:
        return "URL";
    case DSF_CFG_FILE:
        return "file";
    }
    return "value";
}

/* Types stored as a char * the config struct owns. */
static int is_string_type(enum dsf_cfg_type t)
{
    return t == DSF_CFG_STR || t == DSF_CFG_LISTEN || t == DSF_CFG_TOPIC || t == DSF_CFG_ID ||
           t == DSF_CFG_URL || t == DSF_CFG_MQTT_URL || t == DSF_CFG_FILE;
}

/* A key's full name is its section's prefix, a dot, and its row's key. */
static const char *strip_prefix(const struct dsf_cfg_section *sec, const char *full)
{
    size_t n = strlen(sec->prefix);
    if (n == 0)
        return full;
    if (strncmp(full, sec->prefix, n) == 0 && full[n] == '.')
        return full + n + 1;
    return NULL;
}

static const struct dsf_cfg_key *find_key(const struct dsf_cfg_section *secs, const char *full,
                                          void **obj)
{
    for (; secs->keys; secs++) {
        const char *rest = strip_prefix(secs, full);
        if (!rest)
            continue;
        for (const struct dsf_cfg_key *k = secs->keys; k->key; k++) {
            if (strcmp(k->key, rest) == 0) {
                *obj = secs->obj;
                return k;
            }
        }
    }
    return NULL;
}

static void full_name(const struct dsf_cfg_section *sec, const struct dsf_cfg_key *k, char *out,
                      size_t cap)
{
    snprintf(out, cap, "%s%s%s", sec->prefix, *sec->prefix ? "." : "", k->key);
}

int dsf_parse_duration_ms(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || !isfinite(v) || v < 0)
        return -1;
    double mult = 1000; /* a bare number is seconds */
    if (strcmp(end, "ms") == 0)
        mult = 1;
    else if (strcmp(end, "s") == 0 || *end == '\0')
        mult = 1000;
    else if (strcmp(end, "m") == 0)
        mult = 60000;
    else if (strcmp(end, "h") == 0)
        mult = 3600000;
    else if (strcmp(end, "d") == 0)
        mult = 86400000;
    else
        return -1;
    double ms = v * mult;
    if (ms > 9.2e18)
        return -1;
    *out = (int64_t)llround(ms);
    return 0;
}

int dsf_parse_size(const char *s, uint64_t *out)
{
    static const struct {
        const char *suffix;
        double mult;
    } units[] = {{"", 1},         {"B", 1},    {"K", 1e3},           {"KB", 1e3},
                 {"KiB", 1024.0}, {"M", 1e6},  {"MB", 1e6},          {"MiB", 1048576.0},
                 {"G", 1e9},      {"GB", 1e9}, {"GiB", 1073741824.0}};
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || !isfinite(v) || v < 0)
        return -1;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(end, units[i].suffix) == 0) {
            double bytes = v * units[i].mult;
            if (bytes > 1.8e19)
                return -1;
            *out = (uint64_t)llround(bytes);
            return 0;
        }
    }
    return -1;
}

void dsf_strlist_free(struct dsf_strlist *l)
{
    for (size_t i = 0; i < l->count; i++)
        free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->count = 0;
}

static int strlist_push(struct dsf_strlist *l, const char *s, size_t n)
{
    char **items = realloc(l->items, (l->count + 1) * sizeof(*items));
    if (!items)
        return -1;
    l->items = items;
    if (!(items[l->count] = strndup(s, n)))
        return -1;
    l->count++;
    return 0;
}

static void format_duration(double ms, char *out, size_t cap)
{
    long long v = (long long)ms;
    if (v && v % 3600000 == 0)
        snprintf(out, cap, "%lldh", v / 3600000);
    else if (v && v % 60000 == 0)
        snprintf(out, cap, "%lldm", v / 60000);
    else if (v && v % 1000 == 0)
        snprintf(out, cap, "%llds", v / 1000);
    else
        snprintf(out, cap, "%lldms", v);
}

static int check_bounds(const struct dsf_cfg_key *k, const char *name, double v, const char *origin,
                        char *err, size_t errlen)
{
    if (k->min == k->max || (v >= k->min && v <= k->max))
        return 0;
    if (k->type == DSF_CFG_DURATION) {
        char got[32], lo[32], hi[32];
        format_duration(v, got, sizeof(got));
        format_duration(k->min, lo, sizeof(lo));
        format_duration(k->max, hi, sizeof(hi));
        return dsf_fail(err, errlen, "%s: key '%s': %s is outside the allowed range %s..%s", origin,
                        name, got, lo, hi);
    }
    return dsf_fail(err, errlen, "%s: key '%s': %g is outside the allowed range %g..%g", origin,
                    name, v, k->min, k->max);
}

static int check_listen(const char *name, const char *value, const char *origin, char *err,
                        size_t errlen)
{
    char host[256];
    int port;
    if (*value && dsf_split_hostport(value, host, sizeof(host), &port))
        return dsf_fail(err, errlen,
                        "%s: key '%s': expected host:port, [v6]:port or :port with a port of "
                        "0-65535, got '%s'",
                        origin, name, value);
    return 0;
}

/* A comma-separated list; empty items are skipped. */
static int store_strlist(struct dsf_strlist *l, const char *name, const char *value,
                         const char *origin, char *err, size_t errlen)
{
    dsf_strlist_free(l);
    const char *p = value;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (n && strlist_push(l, p, n))
            return dsf_fail(err, errlen, "%s: key '%s': out of memory", origin, name);
        p += n + (comma ? 1 : 0);
    }
    return 0;
}

/* Stores a value given in string form (defaults, environment, --set). */
static int store_string(const struct dsf_cfg_key *k, const char *name, void *obj, const char *value,
                        const char *origin, char *err, size_t errlen)
{
    char *field = (char *)obj + k->offset;
    char *end;
    switch (k->type) {
    case DSF_CFG_BOOL:
        if (!strcmp(value, "true") || !strcmp(value, "1") || !strcmp(value, "yes") ||
            !strcmp(value, "on"))
            *(int *)field = 1;
        else if (!strcmp(value, "false") || !strcmp(value, "0") || !strcmp(value, "no") ||
                 !strcmp(value, "off"))
            *(int *)field = 0;
        else
            return dsf_fail(err, errlen, "%s: key '%s': expected a bool (true or false), got '%s'",
                            origin, name, value);
        return 0;
    case DSF_CFG_INT: {
        errno = 0;
        long long v = strtoll(value, &end, 10);
        if (end == value || *end || errno)
            return dsf_fail(err, errlen, "%s: key '%s': expected an integer, got '%s'", origin,
                            name, value);
        if (check_bounds(k, name, (double)v, origin, err, errlen))
            return -1;
        *(int64_t *)field = v;
        return 0;
    }
    case DSF_CFG_DOUBLE: {
        errno = 0;
        double v = strtod(value, &end);
        if (end == value || *end || errno || !isfinite(v))
            return dsf_fail(err, errlen, "%s: key '%s': expected a number, got '%s'", origin, name,
                            value);
        if (check_bounds(k, name, v, origin, err, errlen))
            return -1;
        *(double *)field = v;
        return 0;
    }
    case DSF_CFG_LISTEN:
        if (check_listen(name, value, origin, err, errlen))
            return -1;
        __attribute__((fallthrough)); /* stored as a string */
    case DSF_CFG_TOPIC:
    case DSF_CFG_ID:
    case DSF_CFG_URL:
    case DSF_CFG_MQTT_URL:
        if (dsf_cfg_check_value(k, name, value, origin, err, errlen))
            return -1;
        __attribute__((fallthrough));
    case DSF_CFG_FILE: /* read by dsf_cfg_check_files, once the last origin set it */
    case DSF_CFG_STR: {
        char *copy = strdup(value);
        if (!copy)
            return dsf_fail(err, errlen, "%s: key '%s': out of memory", origin, name);
        free(*(char **)field);
        *(char **)field = copy;
        return 0;
    }
    case DSF_CFG_DURATION: {
        int64_t ms;
        if (dsf_parse_duration_ms(value, &ms))
            return dsf_fail(err, errlen,
                            "%s: key '%s': expected a duration like 500ms, 2s, 1m, got '%s'",
                            origin, name, value);
        if (check_bounds(k, name, (double)ms, origin, err, errlen))
            return -1;
        *(int64_t *)field = ms;
        return 0;
    }
    case DSF_CFG_SIZE: {
        uint64_t bytes;
        if (dsf_parse_size(value, &bytes))
            return dsf_fail(err, errlen,
                            "%s: key '%s': expected a size like 8MiB, 512KiB, got '%s'", origin,
                            name, value);
        if (check_bounds(k, name, (double)bytes, origin, err, errlen))
            return -1;
        *(uint64_t *)field = bytes;
        return 0;
    }
    case DSF_CFG_STRLIST:
        return store_strlist((struct dsf_strlist *)field, name, value, origin, err, errlen);
    }
    return dsf_fail(err, errlen, "%s: key '%s': unsupported type", origin, name);
}

static int store_json(const struct dsf_cfg_key *k, const char *name, void *obj, json_t *v,
                      const char *origin, char *err, size_t errlen)
{
    char buf[64];
    switch (k->type) {
    case DSF_CFG_BOOL:
        if (!json_is_boolean(v))
            break;
        *(int *)((char *)obj + k->offset) = json_is_true(v);
        return 0;
    case DSF_CFG_INT:
        if (!json_is_integer(v))
            break;
        snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return store_string(k, name, obj, buf, origin, err, errlen);
    case DSF_CFG_DOUBLE:
        if (!json_is_number(v))
            break;
        snprintf(buf, sizeof(buf), "%.17g", json_number_value(v));
        return store_string(k, name, obj, buf, origin, err, errlen);
    case DSF_CFG_DURATION:
    case DSF_CFG_SIZE:
        if (json_is_number(v)) {
            snprintf(buf, sizeof(buf), "%.17g", json_number_value(v));
            return store_string(k, name, obj, buf, origin, err, errlen);
        }
        if (!json_is_string(v))
            break;
        return store_string(k, name, obj, json_string_value(v), origin, err, errlen);
    case DSF_CFG_STR:
    case DSF_CFG_LISTEN:
    case DSF_CFG_TOPIC:
    case DSF_CFG_ID:
    case DSF_CFG_URL:
    case DSF_CFG_MQTT_URL:
    case DSF_CFG_FILE:
        if (!json_is_string(v))
            break;
        return store_string(k, name, obj, json_string_value(v), origin, err, errlen);
    case DSF_CFG_STRLIST: {
        if (json_is_string(v))
            return store_string(k, name, obj, json_string_value(v), origin, err, errlen);
        if (!json_is_array(v))
            break;
        struct dsf_strlist *l = (struct dsf_strlist *)((char *)obj + k->offset);
        dsf_strlist_free(l);
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item)
        {
            if (!json_is_string(item))
                return dsf_fail(err, errlen, "%s: key '%s': item %zu is not a string", origin, name,
                                i);
            if (strlist_push(l, json_string_value(item), json_string_length(item)))
                return dsf_fail(err, errlen, "%s: key '%s': out of memory", origin, name);
        }
        return 0;
    }
    }
    return dsf_fail(err, errlen, "%s: key '%s': expected %s %s", origin, name,
                    k->type == DSF_CFG_INT ? "an" : "a", type_name(k->type));
}

/* Whether some key's full name starts with "path." (so a JSON object there is nesting). */
static int is_group(const struct dsf_cfg_section *secs, const char *path)
{
    size_t n = strlen(path);
    for (; secs->keys; secs++) {
        for (const struct dsf_cfg_key *k = secs->keys; k->key; k++) {
            char full[256];
            full_name(secs, k, full, sizeof(full));
            if (strncmp(full, path, n) == 0 && full[n] == '.')
                return 1;
        }
    }
    return 0;
}

static int load_object(const struct dsf_cfg_section *secs, json_t *o, const char *prefix,
                       const char *origin, char *err, size_t errlen)
{
    const char *name;
    json_t *v;
    json_object_foreach(o, name, v)
    {
        char path[256];
        int n = snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "", name);
        if (n < 0 || (size_t)n >= sizeof(path))
            return dsf_fail(err, errlen, "%s: key '%s...' is too long", origin, prefix);
        void *obj;
        const struct dsf_cfg_key *k = find_key(secs, path, &obj);
        if (k) {
            if (store_json(k, path, obj, v, origin, err, errlen))
                return -1;
        } else if (json_is_object(v) && is_group(secs, path)) {
            if (load_object(secs, v, path, origin, err, errlen))
                return -1;
        } else {
            return dsf_fail(err, errlen, "%s: unknown key '%s' (see --help for the keys)", origin,
                            path);
        }
    }
    return 0;
}

int dsf_cfg_load_json(const struct dsf_cfg_section *secs, const char *text, size_t len,
                      const char *origin, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return dsf_fail(err, errlen, "%s:%d:%d: invalid JSON: %s", origin, jerr.line, jerr.column,
                        jerr.text);
    int rc = 0;
    if (!json_is_object(root))
        rc = dsf_fail(err, errlen, "%s: the top level must be a JSON object", origin);
    else
        rc = load_object(secs, root, "", origin, err, errlen);
    json_decref(root);
    return rc;
}

int dsf_cfg_load_file(const struct dsf_cfg_section *secs, const char *path, char *err,
                      size_t errlen)
{
    size_t len;
    char *text = dsf_read_file(path, &len);
    if (!text)
        return dsf_fail(err, errlen, "%s: cannot read: %s", path, strerror(errno));
    int rc = dsf_cfg_load_json(secs, text, len, path, err, errlen);
    free(text);
    return rc;
}

int dsf_cfg_set_value(const struct dsf_cfg_section *secs, const char *key, const char *value,
                      const char *origin, char *err, size_t errlen)
{
    void *obj;
    const struct dsf_cfg_key *k = find_key(secs, key, &obj);
    if (!k)
        return dsf_fail(err, errlen, "%s: unknown key '%s' (see --help for the keys)", origin, key);
    return store_string(k, key, obj, value, origin, err, errlen);
}

const char *dsf_cfg_str(const struct dsf_cfg_section *secs, const char *key)
{
    void *obj;
    const struct dsf_cfg_key *k = find_key(secs, key, &obj);
    if (!k || !is_string_type(k->type))
        return NULL;
    return *(char **)((char *)obj + k->offset);
}

int dsf_cfg_set(const struct dsf_cfg_section *secs, const char *assignment, const char *origin,
                char *err, size_t errlen)
{
    const char *eq = strchr(assignment, '=');
    if (!eq || eq == assignment)
        return dsf_fail(err, errlen, "%s: expected key=value, got '%s'", origin, assignment);
    char key[256];
    size_t n = (size_t)(eq - assignment);
    if (n >= sizeof(key))
        return dsf_fail(err, errlen, "%s: key is too long", origin);
    memcpy(key, assignment, n);
    key[n] = '\0';
    return dsf_cfg_set_value(secs, key, eq + 1, origin, err, errlen);
}

static void env_name(const char *prefix, const char *key, char *out, size_t cap)
{
    size_t n = (size_t)snprintf(out, cap, "%s", prefix);
    for (const char *p = key; *p && n + 1 < cap; p++)
        out[n++] = (*p == '.' || *p == '-') ? '_' : (char)toupper((unsigned char)*p);
    out[n] = '\0';
}

size_t dsf_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), row[128];
    if (la >= 127 || lb >= 127)
        return SIZE_MAX;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            diag = up;
            row[j] = best;
        }
    }
    return row[lb];
}

/* The variable name of the key closest to name, when it is within two edits; 0 or -1. */
static int closest_env_key(const struct dsf_cfg_section *secs, const char *prefix, const char *name,
                           char *out, size_t cap)
{
    size_t best = 3;
    for (; secs->keys; secs++) {
        for (const struct dsf_cfg_key *k = secs->keys; k->key; k++) {
            char full[256], env[300];
            full_name(secs, k, full, sizeof(full));
            env_name(prefix, full, env, sizeof(env));
            if (strcmp(env, name) == 0)
                return -2; /* a key after all */
            size_t d = dsf_edit_distance(env, name);
            if (d < best) {
                best = d;
                snprintf(out, cap, "%s", env);
            }
        }
    }
    return best < 3 ? 0 : -1;
}

/* A mistyped variable is otherwise silently ignored: say so, with the likely key. */
static void warn_unknown_env(const struct dsf_cfg_section *secs, const char *prefix)
{
    size_t plen = strlen(prefix);
    for (char **e = environ; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        char name[300], near[300];
        if (!eq || strncmp(*e, prefix, plen) != 0 || (size_t)(eq - *e) >= sizeof(name))
            continue;
        snprintf(name, sizeof(name), "%.*s", (int)(eq - *e), *e);
        if (strcmp(name + plen, "CONFIG") == 0)
            continue;
        int found = closest_env_key(secs, prefix, name, near, sizeof(near));
        if (found == 0)
            log_warn("environment %s is not a configuration key (ignored); did you mean %s?", name,
                     near);
        else if (found == -1)
            log_warn("environment %s is not a configuration key (ignored; see --help)", name);
    }
}

int dsf_cfg_env(const struct dsf_cfg_section *secs, const char *prefix, char *err, size_t errlen)
{
    warn_unknown_env(secs, prefix);
    for (const struct dsf_cfg_section *sec = secs; sec->keys; sec++) {
        for (const struct dsf_cfg_key *k = sec->keys; k->key; k++) {
            char full[256], name[300], origin[400];
            full_name(sec, k, full, sizeof(full));
            env_name(prefix, full, name, sizeof(name));
            const char *v = getenv(name);
            if (!v)
                continue;
            snprintf(origin, sizeof(origin), "environment %s='%.60s'", name, v);
            if (store_string(k, full, sec->obj, v, origin, err, errlen))
                return -1;
        }
    }
    return 0;
}

/* The default of a row: the section's override when it has one. */
static const char *row_default(const struct dsf_cfg_section *sec, const struct dsf_cfg_key *k)
{
    size_t n = strlen(k->key);
    for (const char *const *d = sec->defaults; d && *d; d++)
        if (strncmp(*d, k->key, n) == 0 && (*d)[n] == '=')
            return *d + n + 1;
    return k->def;
}

int dsf_cfg_defaults(const struct dsf_cfg_section *secs, char *err, size_t errlen)
{
    for (; secs->keys; secs++) {
        for (const struct dsf_cfg_key *k = secs->keys; k->key; k++) {
            char full[256];
            full_name(secs, k, full, sizeof(full));
            const char *def = row_default(secs, k);
            if (def && store_string(k, full, secs->obj, def, "built-in default", err, errlen))
                return -1;
        }
    }
    return 0;
}

void dsf_cfg_free(const struct dsf_cfg_section *secs)
{
    for (; secs->keys; secs++)
        for (const struct dsf_cfg_key *k = secs->keys; k->key; k++) {
            char *field = (char *)secs->obj + k->offset;
            if (is_string_type(k->type)) {
                free(*(char **)field);
                *(char **)field = NULL;
            } else if (k->type == DSF_CFG_STRLIST) {
                dsf_strlist_free((struct dsf_strlist *)field);
            }
        }
}

void dsf_cfg_help(const struct dsf_cfg_section *secs, const char *env_prefix, FILE *out)
{
    fprintf(out, "CONFIGURATION KEYS\n"
                 "  Set in the JSON config file (dotted keys are nested objects), with\n"
                 "  --set key=value, or with the environment variable shown.\n"
                 "  Checked at start and by --check: an id is 1-63 bytes without '/', '+',\n"
                 "  '#' or control characters; a topic is one topic to publish on (no '+' or\n"
                 "  '#'); a URL is scheme://host[:port]... with a scheme the key names; a file\n"
                 "  must be readable. An empty value means unset.\n\n");
    dsf_cfg_help_rows(secs, env_prefix, DSF_CFG_HELP_TEXT, out);
}

/* A table cell: '|' would end the cell early, a newline the row. */
static void md_cell(const char *s, FILE *out)
{
    for (; *s; s++) {
        if (*s == '|')
            fputs("\\|", out);
        else
            fputc(*s == '\n' ? ' ' : *s, out);
    }
}

void dsf_cfg_help_rows(const struct dsf_cfg_section *secs, const char *env_prefix,
                       enum dsf_cfg_help_format fmt, FILE *out)
{
    if (fmt == DSF_CFG_HELP_MARKDOWN)
        fprintf(out, "| key | type | default | environment | meaning |\n"
                     "| --- | --- | --- | --- | --- |\n");
    for (; secs->keys; secs++) {
        for (const struct dsf_cfg_key *k = secs->keys; k->key; k++) {
            char full[256], env[300];
            full_name(secs, k, full, sizeof(full));
            env_name(env_prefix, full, env, sizeof(env));
            const char *def = row_default(secs, k);
            if (fmt == DSF_CFG_HELP_TEXT) {
                fprintf(out, "  %s (%s, default: %s)\n      %s\n      env: %s\n", full,
                        type_name(k->type), def && *def ? def : "none", k->desc, env);
                continue;
            }
            fprintf(out, "| `%s` | %s | ", full, type_name(k->type));
            if (def && *def) {
                fputs("`", out);
                md_cell(def, out);
                fputs("`", out);
            }
            fprintf(out, " | `%s` | ", env);
            md_cell(k->desc, out);
            fputs(" |\n", out);
        }
    }
}
