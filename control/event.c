/*
 * The controller's inputs in one form. Parsing is strict: a value that does not fit its
 * field is refused, never cut, since a cut label would key another occurrence and a policy
 * could act on the wrong series.
 */
#include "control/event.h"
#include "common/fail.h"
#include "common/loop.h"
#include "common/rfc3339.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALERTMANAGER_ENGINE "alertmanager"
/* Characters with a meaning in a key; escaped with a backslash inside its fields. */
#define KEY_SPECIALS "\\|,="

static int copy_field(char *dst, size_t cap, json_t *v, const char *in, const char *key, char *err,
                      size_t errlen)
{
    if (!json_is_string(v))
        return dsf_fail(err, errlen, "key '%s%s': expected a string", in, key);
    size_t n = json_string_length(v);
    if (n >= cap)
        return dsf_fail(err, errlen, "key '%s%s': %zu bytes, longer than the %zu it may have", in,
                        key, n, cap - 1);
    memcpy(dst, json_string_value(v), n + 1);
    return 0;
}

/* o[key] into dst; in prefixes the key in errors ("labels."). Absent: "" or, when required,
 * refused. */
static int get_string(json_t *o, const char *in, const char *key, char *dst, size_t cap,
                      int required, char *err, size_t errlen)
{
    json_t *v = json_object_get(o, key);
    if (!v) {
        dst[0] = '\0';
        return required ? dsf_fail(err, errlen, "key '%s%s' is required", in, key) : 0;
    }
    if (copy_field(dst, cap, v, in, key, err, errlen))
        return -1;
    if (required && !dst[0])
        return dsf_fail(err, errlen, "key '%s%s': empty", in, key);
    return 0;
}

const char *ctl_event_label(const struct ctl_event *e, const char *name)
{
    for (size_t i = 0; i < e->nlabels; i++)
        if (strcmp(e->labels[i].name, name) == 0)
            return e->labels[i].value;
    return NULL;
}

static int listed(const char *const *names, const char *name)
{
    for (; names && *names; names++)
        if (strcmp(*names, name) == 0)
            return 1;
    return 0;
}

/* The members of obj (key path) as labels, but those in skip and those already held: a
 * rule's label never overrides the group's. */
static int add_labels(struct ctl_event *e, json_t *obj, const char *path, const char *const *skip,
                      char *err, size_t errlen)
{
    if (!json_is_object(obj))
        return dsf_fail(err, errlen, "key '%s': expected an object", path);
    const char *name;
    json_t *v;
    json_object_foreach(obj, name, v)
    {
        if (listed(skip, name) || ctl_event_label(e, name))
            continue;
        if (e->nlabels == CTL_EVENT_LABELS_MAX)
            return dsf_fail(err, errlen, "key '%s': more than %d labels", path,
                            CTL_EVENT_LABELS_MAX);
        struct ctl_label *l = &e->labels[e->nlabels];
        if (strlen(name) >= sizeof(l->name))
            return dsf_fail(err, errlen, "key '%s': a label name longer than %zu bytes (%.40s...)",
                            path, sizeof(l->name) - 1, name);
        char in[CTL_EVENT_NAME_MAX + 16];
        snprintf(in, sizeof(in), "%s.", path);
        if (copy_field(l->value, sizeof(l->value), v, in, name, err, errlen))
            return -1;
        strcpy(l->name, name);
        e->nlabels++;
    }
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct ctl_label *)a)->name, ((const struct ctl_label *)b)->name);
}

static void sort_labels(struct ctl_event *e)
{
    qsort(e->labels, e->ngroup, sizeof(e->labels[0]), by_name);
    qsort(e->labels + e->ngroup, e->nlabels - e->ngroup, sizeof(e->labels[0]), by_name);
}

static int known_state(const char *s)
{
    static const char *const states[] = {"inactive", "pending",  "firing",
                                         "nodata",   "resolved", NULL};
    return listed(states, s);
}

static int get_ns(json_t *o, const char *key, int64_t *out, char *err, size_t errlen)
{
    json_t *v = json_object_get(o, key);
    if (!v)
        return dsf_fail(err, errlen, "key '%s' is required", key);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return dsf_fail(err, errlen, "key '%s': expected Unix nanoseconds (an integer >= 0)", key);
    *out = json_integer_value(v);
    return 0;
}

static int set_engine(struct ctl_event *e, json_t *o, const char *fallback, char *err,
                      size_t errlen)
{
    if (json_object_get(o, "engine") || !fallback)
        return get_string(o, "", "engine", e->engine, sizeof(e->engine), 1, err, errlen);
    if (!fallback[0] || strlen(fallback) >= sizeof(e->engine))
        return dsf_fail(err, errlen, "engine id \"%.40s\": empty or longer than %zu bytes",
                        fallback, sizeof(e->engine) - 1);
    strcpy(e->engine, fallback);
    return 0;
}

/* An alarm event (or an item of an engine's list) already parsed as JSON. */
static int alarm_from_json(json_t *o, const char *engine, struct ctl_event *e, char *err,
                           size_t errlen)
{
    memset(e, 0, sizeof(*e));
    if (!json_is_object(o))
        return dsf_fail(err, errlen, "expected a JSON object (an alarm event)");
    if (set_engine(e, o, engine, err, errlen) ||
        get_string(o, "", "rule", e->rule, sizeof(e->rule), 1, err, errlen) ||
        get_string(o, "", "state", e->state, sizeof(e->state), 1, err, errlen) ||
        get_string(o, "", "severity", e->severity, sizeof(e->severity), 1, err, errlen) ||
        get_ns(o, "starts_at", &e->starts_at_ns, err, errlen))
        return -1;
    if (!known_state(e->state))
        return dsf_fail(
            err, errlen,
            "key 'state': \"%s\" is not one of inactive, pending, firing, nodata, resolved",
            e->state);
    json_t *group = json_object_get(o, "group");
    if (!group)
        return dsf_fail(err, errlen, "key 'group' is required");
    if (add_labels(e, group, "group", NULL, err, errlen))
        return -1;
    if (!ctl_event_label(e, "ns") || !ctl_event_label(e, "mci"))
        return dsf_fail(err, errlen, "key 'group': 'ns' and 'mci' are required");
    e->ngroup = e->nlabels;
    json_t *labels = json_object_get(o, "labels");
    if (labels && add_labels(e, labels, "labels", NULL, err, errlen))
        return -1;
    sort_labels(e);
    e->received_ms = dsf_mono_ms();
    return 0;
}

static json_t *load(const char *text, size_t len, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *root = json_loadb(text ? text : "", text ? len : 0, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        dsf_fail(err, errlen, "not JSON: line %d: %s", jerr.line, jerr.text);
    return root;
}

int ctl_event_parse_alarm(const char *text, size_t len, struct ctl_event *out, char *err,
                          size_t errlen)
{
    json_t *root = load(text, len, err, errlen);
    if (!root)
        return -1;
    int rc = alarm_from_json(root, NULL, out, err, errlen);
    json_decref(root);
    return rc;
}

typedef int (*item_parser)(json_t *item, const char *engine, struct ctl_event *e, char *err,
                           size_t errlen);

/* fn for each item of array that parses; the others counted in *bad, the first one's reason
 * in err. */
static void walk(json_t *array, const char *what, item_parser parse, const char *engine,
                 ctl_event_fn fn, void *arg, size_t *bad, char *err, size_t errlen)
{
    struct ctl_event *e = malloc(sizeof(*e));
    size_t i, nbad = 0;
    json_t *item;
    if (err && errlen)
        err[0] = '\0';
    json_array_foreach(array, i, item)
    {
        char why[256];
        if (!e || parse(item, engine, e, why, sizeof(why))) {
            if (!nbad++)
                dsf_fail(err, errlen, "%s[%zu]: %s", what, i, e ? why : "out of memory");
            continue;
        }
        if (fn && fn(arg, e))
            break;
    }
    if (bad)
        *bad += nbad;
    free(e);
}

int ctl_event_parse_alarm_list(const char *text, size_t len, const char *engine, ctl_event_fn fn,
                               void *arg, size_t *bad, char *err, size_t errlen)
{
    json_t *root = load(text, len, err, errlen);
    if (!root)
        return -1;
    json_t *alarms = json_object_get(root, "alarms");
    int rc = 0;
    if (!json_is_object(root))
        rc = dsf_fail(err, errlen, "expected a JSON object ({\"alarms\": [...]})");
    else if (!json_is_array(alarms))
        rc = dsf_fail(err, errlen, "key 'alarms': expected an array");
    else
        walk(alarms, "alarms", alarm_from_json, engine, fn, arg, bad, err, errlen);
    json_decref(root);
    return rc;
}

static int alert_from_json(json_t *a, const char *unused, struct ctl_event *e, char *err,
                           size_t errlen)
{
    static const char *const not_group[] = {"alertname", "severity", NULL};
    memset(e, 0, sizeof(*e));
    strcpy(e->engine, ALERTMANAGER_ENGINE);
    if (!json_is_object(a))
        return dsf_fail(err, errlen, "expected an object (an alert)");
    if (get_string(a, "", "status", e->state, sizeof(e->state), 1, err, errlen))
        return -1;
    if (strcmp(e->state, "firing") != 0 && strcmp(e->state, "resolved") != 0)
        return dsf_fail(err, errlen, "key 'status': \"%s\" is neither firing nor resolved",
                        e->state);
    json_t *labels = json_object_get(a, "labels");
    if (!json_is_object(labels))
        return dsf_fail(err, errlen, "key 'labels': %s",
                        labels ? "expected an object" : "required");
    if (get_string(labels, "labels.", "alertname", e->rule, sizeof(e->rule), 1, err, errlen) ||
        get_string(labels, "labels.", "severity", e->severity, sizeof(e->severity), 0, err,
                   errlen) ||
        add_labels(e, labels, "labels", not_group, err, errlen))
        return -1;
    e->ngroup = e->nlabels;
    json_t *starts = json_object_get(a, "startsAt");
    if (!starts)
        return dsf_fail(err, errlen, "key 'startsAt' is required");
    if (!json_is_string(starts) || dsf_rfc3339_parse(json_string_value(starts), &e->starts_at_ns))
        return dsf_fail(err, errlen, "key 'startsAt': expected an RFC 3339 time like %s",
                        "2026-01-02T03:04:05.678Z");
    sort_labels(e);
    e->received_ms = dsf_mono_ms();
    return 0;
}

int ctl_event_parse_alertmanager(const char *text, size_t len, ctl_event_fn fn, void *arg,
                                 size_t *bad, char *err, size_t errlen)
{
    json_t *root = load(text, len, err, errlen);
    if (!root)
        return -1;
    json_t *version = json_object_get(root, "version");
    json_t *alerts = json_object_get(root, "alerts");
    int rc = 0;
    if (!json_is_object(root))
        rc = dsf_fail(err, errlen, "expected a JSON object (an Alertmanager webhook)");
    else if (!version)
        rc = dsf_fail(err, errlen, "key 'version' is required (\"4\")");
    else if (!json_is_string(version) || strcmp(json_string_value(version), "4") != 0)
        rc = dsf_fail(err, errlen, "key 'version': only \"4\" is understood");
    else if (!json_is_array(alerts))
        rc = dsf_fail(err, errlen, "key 'alerts': expected an array");
    else
        walk(alerts, "alerts", alert_from_json, NULL, fn, arg, bad, err, errlen);
    json_decref(root);
    return rc;
}

/* A key being written: n counts what it needs even past cap, so a key that does not fit is
 * refused whole. */
struct key {
    char *out;
    size_t cap, n;
};

static void key_putc(struct key *k, char c)
{
    if (k->n + 1 < k->cap)
        k->out[k->n] = c;
    k->n++;
}

static void key_field(struct key *k, const char *s)
{
    for (; *s; s++) {
        if (strchr(KEY_SPECIALS, *s))
            key_putc(k, '\\');
        key_putc(k, *s);
    }
}

/* engine|rule|name=value,name=value */
static void key_series(struct key *k, const struct ctl_event *e)
{
    key_field(k, e->engine);
    key_putc(k, '|');
    key_field(k, e->rule);
    key_putc(k, '|');
    for (size_t i = 0; i < e->ngroup; i++) {
        if (i)
            key_putc(k, ',');
        key_field(k, e->labels[i].name);
        key_putc(k, '=');
        key_field(k, e->labels[i].value);
    }
}

static int key_end(struct key *k)
{
    if (k->n + 1 > k->cap || k->n > (size_t)INT32_MAX) {
        if (k->cap)
            k->out[0] = '\0';
        return -1;
    }
    k->out[k->n] = '\0';
    return (int)k->n;
}

int ctl_event_series_key(const struct ctl_event *e, char *out, size_t len)
{
    struct key k = {out, len, 0};
    key_series(&k, e);
    return key_end(&k);
}

/* The series key, then |starts_at|severity: an occurrence's key begins with its series'. */
int ctl_event_key(const struct ctl_event *e, char *out, size_t len)
{
    struct key k = {out, len, 0};
    char ns[32];
    key_series(&k, e);
    snprintf(ns, sizeof(ns), "|%lld|", (long long)e->starts_at_ns);
    for (const char *p = ns; *p; p++)
        key_putc(&k, *p);
    key_field(&k, e->severity);
    return key_end(&k);
}
