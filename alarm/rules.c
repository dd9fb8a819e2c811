/* Rule files: JSON in, checked struct rule out; every refusal names the origin and the key. */
#include "alarm/rule.h"
#include "common/buf.h"
#include "common/config.h"
#include "common/regex.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ctx {
    const char *origin, *name;
    char *err;
    size_t errlen;
};

static int fail(struct ctx *c, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct ctx *c, const char *key, const char *fmt, ...)
{
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    snprintf(c->err, c->errlen, "%s: rule '%s': key '%s': %s", c->origin, c->name ? c->name : "?",
             key, why);
    return -1;
}

/* Keys each object may hold; anything else is a typo the user wants to hear about. */
static int check_keys(struct ctx *c, json_t *obj, const char *prefix, const char *const *allowed)
{
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
    {
        int ok = 0;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = strcmp(*a, k) == 0;
        if (!ok) {
            char full[160];
            snprintf(full, sizeof(full), "%s%s", prefix, k);
            return fail(c, full, "unknown key");
        }
    }
    return 0;
}

static int get_str(struct ctx *c, json_t *obj, const char *key, const char *full, char **out,
                   const char *def)
{
    json_t *v = json_object_get(obj, key);
    if (!v) {
        *out = def ? strdup(def) : NULL;
        return 0;
    }
    if (!json_is_string(v) || !*json_string_value(v))
        return fail(c, full, "expected a non-empty string");
    *out = strdup(json_string_value(v));
    return 0;
}

#define DURATION_MAX_S INT64_C(1000000000) /* about 31 years */

static int get_duration(struct ctx *c, json_t *obj, const char *key, int64_t *out)
{
    json_t *v = json_object_get(obj, key);
    *out = 0;
    if (!v)
        return 0;
    if (json_is_number(v)) {
        double s = json_number_value(v);
        if (!(s >= 0) || s > DURATION_MAX_S)
            return fail(c, key, "must be a duration of zero or more (got %g)", s);
        *out = (int64_t)llround(s * 1000);
        return 0;
    }
    if (!json_is_string(v))
        return fail(c, key, "expected a duration like \"30s\"");
    const char *s = json_string_value(v);
    if (*s == '-')
        return fail(c, key, "must not be negative (got \"%s\")", s);
    if (dsf_parse_duration_ms(s, out))
        return fail(c, key, "expected a duration like \"500ms\", \"30s\", \"5m\" (got \"%s\")", s);
    if (*out > DURATION_MAX_S * 1000) /* windows are kept in nanoseconds */
        return fail(c, key, "must be at most %.0f s (got \"%s\")", (double)DURATION_MAX_S, s);
    return 0;
}

static int valid_name(const char *s)
{
    size_t n = strlen(s);
    if (!n || n >= RULE_NAME_MAX)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-' || *s == '.'))
            return 0;
    return n > 0;
}

static int parse_matchers(struct ctx *c, struct rule *r, json_t *arr)
{
    if (!json_is_array(arr))
        return fail(c, "select.tags", "expected an array of {\"tag\",\"op\",\"value\"}");
    r->matchers = calloc(json_array_size(arr) + 1, sizeof(*r->matchers));
    size_t i;
    json_t *m;
    json_array_foreach(arr, i, m)
    {
        char key[64];
        snprintf(key, sizeof(key), "select.tags[%zu]", i);
        static const char *const allowed[] = {"tag", "op", "value", NULL};
        if (!json_is_object(m))
            return fail(c, key, "expected {\"tag\",\"op\",\"value\"}");
        char prefix[80];
        snprintf(prefix, sizeof(prefix), "%s.", key);
        if (check_keys(c, m, prefix, allowed))
            return -1;
        struct rule_matcher *x = &r->matchers[r->nmatchers];
        const char *tag = json_string_value(json_object_get(m, "tag"));
        const char *op = json_string_value(json_object_get(m, "op"));
        const char *val = json_string_value(json_object_get(m, "value"));
        snprintf(prefix, sizeof(prefix), "%s.%s", key, !tag ? "tag" : !val ? "value" : "op");
        if (!tag || !*tag || !val)
            return fail(c, prefix, "missing or not a string");
        if (!op)
            op = "=";
        x->op = strcmp(op, "=") == 0    ? MATCH_EQ
                : strcmp(op, "!=") == 0 ? MATCH_NE
                : strcmp(op, "=~") == 0 ? MATCH_RE
                : strcmp(op, "!~") == 0 ? MATCH_NRE
                                        : (enum match_op) - 1;
        if ((int)x->op < 0) {
            snprintf(prefix, sizeof(prefix), "%s.op", key);
            return fail(c, prefix, "expected =, !=, =~ or !~ (got \"%s\")", op);
        }
        x->tag = strdup(tag);
        x->value = strdup(val);
        r->nmatchers++;
        if (x->op == MATCH_RE || x->op == MATCH_NRE) {
            char why[256];
            if (dsf_regex_compile(&x->re, val, DSF_REGEX_ANCHORED, why, sizeof(why))) {
                x->op = MATCH_EQ; /* nothing compiled to free */
                snprintf(prefix, sizeof(prefix), "%s.value", key);
                return fail(c, prefix, "%s", why);
            }
        }
    }
    return 0;
}

static int parse_select(struct ctx *c, struct rule *r, json_t *sel)
{
    static const char *const allowed[] = {"measurement", "field", "tags", NULL};
    if (!json_is_object(sel))
        return fail(c, "select", "expected an object {\"measurement\",\"field\",\"tags\"}");
    if (check_keys(c, sel, "select.", allowed))
        return -1;
    if (get_str(c, sel, "measurement", "select.measurement", &r->measurement, NULL) ||
        get_str(c, sel, "field", "select.field", &r->field, NULL))
        return -1;
    if (!r->measurement)
        return fail(c, "select.measurement", "required");
    if (!r->field)
        return fail(c, "select.field", "required");
    json_t *tags = json_object_get(sel, "tags");
    return tags ? parse_matchers(c, r, tags) : 0;
}

static int parse_reducer(struct ctx *c, struct rule *r, json_t *v)
{
    static const char *const names[] = {"last", "avg", "min", "max", "sum", "count", "rate"};
    if (!v)
        return 0;
    const char *s = json_string_value(v);
    if (!s)
        return fail(c, "reduce", "expected a string");
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(s, names[i]) == 0) {
            r->reduce = (enum rule_reducer)i;
            return 0;
        }
    char *end;
    if (s[0] == 'p' && s[1]) {
        double p = strtod(s + 1, &end);
        if (!*end && p > 0 && p <= 100) {
            r->reduce = RED_PCT;
            r->pct = p;
            return 0;
        }
    }
    return fail(c, "reduce",
                "expected last, avg, min, max, sum, count, rate or pNN like p95 (got \"%s\")", s);
}

static int parse_op(struct ctx *c, struct rule *r, json_t *v)
{
    static const char *const names[] = {">", ">=", "<", "<=", "==", "!="};
    if (!v)
        return 0;
    const char *s = json_string_value(v);
    for (size_t i = 0; s && i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(s, names[i]) == 0) {
            r->op = (enum rule_op)i;
            return 0;
        }
    return fail(c, "op", "expected >, >=, <, <=, == or !=");
}

const char *rule_op_name(enum rule_op op)
{
    static const char *const names[] = {">", ">=", "<", "<=", "==", "!="};
    return names[op];
}

static int cmp(enum rule_op op, double v, double t)
{
    switch (op) {
    case OP_GT:
        return v > t;
    case OP_GE:
        return v >= t;
    case OP_LT:
        return v < t;
    case OP_LE:
        return v <= t;
    case OP_EQ:
        return v == t;
    case OP_NE:
        return v != t;
    }
    return 0;
}

int rule_level_active(const struct rule *r, const struct rule_level *l, double v, int held)
{
    return l->set && cmp(r->op, v, held ? l->reset : l->threshold);
}

static int parse_level(struct ctx *c, struct rule *r, json_t *v, const char *key,
                       struct rule_level *l)
{
    if (!v)
        return 0;
    char full[64];
    if (json_is_number(v)) {
        l->set = 1;
        l->threshold = l->reset = json_number_value(v);
        return 0;
    }
    static const char *const allowed[] = {"threshold", "reset", NULL};
    snprintf(full, sizeof(full), "%s.", key);
    if (!json_is_object(v))
        return fail(c, key, "expected a number or {\"threshold\",\"reset\"}");
    if (check_keys(c, v, full, allowed))
        return -1;
    json_t *t = json_object_get(v, "threshold"), *rs = json_object_get(v, "reset");
    snprintf(full, sizeof(full), "%s.threshold", key);
    if (!json_is_number(t))
        return fail(c, full, "required, a number");
    l->set = 1;
    l->threshold = l->reset = json_number_value(t);
    if (!rs)
        return 0;
    snprintf(full, sizeof(full), "%s.reset", key);
    if (!json_is_number(rs))
        return fail(c, full, "expected a number");
    l->reset = json_number_value(rs);
    /* The reset must lie on the quiet side of the threshold, or the alarm could never clear
     * (or would clear while still over the threshold). */
    int upward = r->op == OP_GT || r->op == OP_GE, downward = r->op == OP_LT || r->op == OP_LE;
    if ((upward && l->reset > l->threshold) || (downward && l->reset < l->threshold) ||
        (!upward && !downward && l->reset != l->threshold))
        return fail(c, full, "%g is on the wrong side of the threshold %g for op %s", l->reset,
                    l->threshold, rule_op_name(r->op));
    return 0;
}

static int parse_kvs(struct ctx *c, json_t *obj, const char *key, struct rule_kv **out, size_t *n)
{
    if (!obj)
        return 0;
    if (!json_is_object(obj))
        return fail(c, key, "expected an object of strings");
    *out = calloc(json_object_size(obj) + 1, sizeof(**out));
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
    {
        char full[160];
        snprintf(full, sizeof(full), "%s.%s", key, k);
        if (!json_is_string(v))
            return fail(c, full, "expected a string");
        if (!*k)
            return fail(c, full, "empty name");
        (*out)[*n].key = strdup(k);
        (*out)[*n].val = strdup(json_string_value(v));
        (*n)++;
    }
    return 0;
}

static const char *const template_names[] = {
    "ns", "mci", "vm", "rule", "value", "threshold", "severity", "state", "op", "for", NULL};

static int known_template(const struct rule *r, const char *name, size_t n)
{
    for (const char *const *t = template_names; *t; t++)
        if (strlen(*t) == n && memcmp(*t, name, n) == 0)
            return 1;
    for (size_t i = 0; i < r->ngroup; i++)
        if (strlen(r->group_by[i]) == n && memcmp(r->group_by[i], name, n) == 0)
            return 1;
    return 0;
}

static int check_templates(struct ctx *c, const struct rule *r, const struct rule_kv *kv, size_t n,
                           const char *key)
{
    for (size_t i = 0; i < n; i++) {
        for (const char *p = strstr(kv[i].val, "{{"); p; p = strstr(p, "{{")) {
            p += 2;
            const char *end = strstr(p, "}}");
            char full[160];
            snprintf(full, sizeof(full), "%s.%s", key, kv[i].key);
            if (!end)
                return fail(c, full, "unclosed {{");
            while (*p == ' ')
                p++;
            const char *e = end;
            while (e > p && e[-1] == ' ')
                e--;
            if (!known_template(r, p, (size_t)(e - p)))
                return fail(c, full,
                            "unknown template variable {{%.*s}} (known: ns, mci, vm, "
                            "rule, value, threshold, severity, state, op, for and group_by tags)",
                            (int)(e - p), p);
            p = end + 2;
        }
    }
    return 0;
}

static int parse_group_by(struct ctx *c, struct rule *r, json_t *v)
{
    if (!v) {
        r->group_by = calloc(2, sizeof(char *));
        r->group_by[0] = strdup("vm");
        r->ngroup = 1;
        return 0;
    }
    if (!json_is_array(v))
        return fail(c, "group_by", "expected an array of tag keys");
    if (json_array_size(v) > RULE_GROUP_BY_MAX)
        return fail(c, "group_by", "%zu tag keys, at most %d", json_array_size(v),
                    RULE_GROUP_BY_MAX);
    r->group_by = calloc(json_array_size(v) + 1, sizeof(char *));
    size_t i;
    json_t *k;
    json_array_foreach(v, i, k)
    {
        const char *s = json_string_value(k);
        if (!s || !*s)
            return fail(c, "group_by", "item %zu is not a tag key", i);
        if (strcmp(s, "ns") == 0 || strcmp(s, "mci") == 0)
            continue; /* always part of the group */
        r->group_by[r->ngroup++] = strdup(s);
    }
    return 0;
}

static int parse_body(struct ctx *c, struct rule *r, json_t *o)
{
    static const char *const allowed[] = {
        "name",   "description", "signal", "select",      "group_by", "window",
        "reduce", "op",          "warn",   "crit",        "for",      "keep_firing_for",
        "nodata", "severity",    "labels", "annotations", NULL};
    if (check_keys(c, o, "", allowed))
        return -1;
    const char *sig = json_string_value(json_object_get(o, "signal"));
    if (json_object_get(o, "signal") && !sig)
        return fail(c, "signal", "expected \"metric\" or \"agent_offline\"");
    if (!sig || strcmp(sig, "metric") == 0)
        r->signal = RULE_METRIC;
    else if (strcmp(sig, "agent_offline") == 0)
        r->signal = RULE_OFFLINE;
    else
        return fail(c, "signal", "expected \"metric\" or \"agent_offline\" (got \"%s\")", sig);
    if (r->signal == RULE_OFFLINE) {
        static const char *const metric_only[] = {"select", "group_by", "window", "reduce", "op",
                                                  "warn",   "crit",     "nodata", NULL};
        for (const char *const *k = metric_only; *k; k++)
            if (json_object_get(o, *k))
                return fail(c, *k, "not used by an agent_offline rule");
        if (parse_group_by(c, r, NULL))
            return -1;
    } else {
        json_t *sel = json_object_get(o, "select");
        if (!sel)
            return fail(c, "select", "required for a metric rule");
        if (parse_select(c, r, sel) || parse_group_by(c, r, json_object_get(o, "group_by")) ||
            parse_reducer(c, r, json_object_get(o, "reduce")) ||
            parse_op(c, r, json_object_get(o, "op")) ||
            get_duration(c, o, "window", &r->window_ms) ||
            parse_level(c, r, json_object_get(o, "warn"), "warn", &r->warn) ||
            parse_level(c, r, json_object_get(o, "crit"), "crit", &r->crit) ||
            get_duration(c, o, "nodata", &r->nodata_ms))
            return -1;
        if (r->reduce != RED_LAST && r->window_ms <= 0)
            return fail(c, "window", "required (greater than 0) for reduce other than last");
        if (!r->warn.set && !r->crit.set && !r->nodata_ms)
            return fail(c, "crit", "a metric rule needs warn, crit or nodata");
    }
    if (get_duration(c, o, "for", &r->for_ms) ||
        get_duration(c, o, "keep_firing_for", &r->keep_firing_ms) ||
        get_str(c, o, "severity", "severity", &r->severity, "crit") ||
        parse_kvs(c, json_object_get(o, "labels"), "labels", &r->labels, &r->nlabels) ||
        parse_kvs(c, json_object_get(o, "annotations"), "annotations", &r->annotations,
                  &r->nannotations))
        return -1;
    json_t *d = json_object_get(o, "description");
    if (d && !json_is_string(d))
        return fail(c, "description", "expected a string");
    for (size_t i = 0; i < r->nlabels; i++)
        if (strcmp(r->labels[i].key, "alertname") == 0 || strcmp(r->labels[i].key, "severity") == 0)
            return fail(c, "labels", "'%s' is set by the engine", r->labels[i].key);
    return check_templates(c, r, r->labels, r->nlabels, "labels") ||
                   check_templates(c, r, r->annotations, r->nannotations, "annotations")
               ? -1
               : 0;
}

struct rule *rule_from_json(const void *json, const char *origin, char *err, size_t errlen)
{
    json_t *o = (json_t *)json;
    struct ctx c = {origin, NULL, err, errlen};
    if (!json_is_object(o)) {
        snprintf(err, errlen, "%s: a rule must be a JSON object", origin);
        return NULL;
    }
    json_t *name = json_object_get(o, "name");
    c.name = json_string_value(name);
    if (!c.name || !valid_name(c.name)) {
        fail(&c, "name", "required: letters, digits, '_', '-', '.' (at most %d)",
             RULE_NAME_MAX - 1);
        return NULL;
    }
    struct rule *r = calloc(1, sizeof(*r));
    r->name = strdup(c.name);
    r->origin = strdup(origin);
    if (parse_body(&c, r, o)) {
        rule_free(r);
        return NULL;
    }
    r->source = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    return r;
}

size_t rule_parse_text(const char *text, size_t len, const char *origin, struct rule ***out,
                       size_t *n, void (*on_error)(void *arg, const char *msg), void *arg)
{
    json_error_t jerr;
    char err[512];
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        snprintf(err, sizeof(err), "%s:%d:%d: not JSON: %s", origin, jerr.line, jerr.column,
                 jerr.text);
        on_error(arg, err);
        return 1;
    }
    size_t bad = 0, count = json_is_array(root) ? json_array_size(root) : 1;
    for (size_t i = 0; i < count; i++) {
        json_t *o = json_is_array(root) ? json_array_get(root, i) : root;
        struct rule *r = rule_from_json(o, origin, err, sizeof(err));
        struct rule **grown = r ? realloc(*out, (*n + 1) * sizeof(**out)) : NULL;
        if (!grown) {
            if (r)
                snprintf(err, sizeof(err), "%s: out of memory", origin);
            rule_free(r);
            on_error(arg, err);
            bad++;
            continue;
        }
        *out = grown;
        (*out)[(*n)++] = r;
    }
    json_decref(root);
    return bad;
}

void rule_free(struct rule *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nmatchers; i++) {
        free(r->matchers[i].tag);
        free(r->matchers[i].value);
        if (r->matchers[i].op == MATCH_RE || r->matchers[i].op == MATCH_NRE)
            regfree(&r->matchers[i].re);
        for (size_t j = 0; r->matchers[i].memo && j < MATCH_CACHE; j++)
            free(r->matchers[i].memo[j].value);
        free(r->matchers[i].memo);
    }
    free(r->matchers);
    for (size_t i = 0; r->group_by && r->group_by[i]; i++)
        free(r->group_by[i]);
    free(r->group_by);
    for (size_t i = 0; i < r->nlabels; i++) {
        free(r->labels[i].key);
        free(r->labels[i].val);
    }
    for (size_t i = 0; i < r->nannotations; i++) {
        free(r->annotations[i].key);
        free(r->annotations[i].val);
    }
    free(r->labels);
    free(r->annotations);
    free(r->name);
    free(r->origin);
    free(r->source);
    free(r->measurement);
    free(r->field);
    free(r->severity);
    free(r);
}

void rule_render(struct dsf_buf *out, const char *tmpl,
                 const char *(*lookup)(void *arg, const char *name, char *tmp, size_t cap),
                 void *arg)
{
    const char *p = tmpl;
    for (;;) {
        const char *open = strstr(p, "{{"), *close = open ? strstr(open + 2, "}}") : NULL;
        if (!close) {
            buf_puts(out, p);
            return;
        }
        buf_put(out, p, (size_t)(open - p));
        const char *a = open + 2, *e = close;
        while (*a == ' ')
            a++;
        while (e > a && e[-1] == ' ')
            e--;
        char name[128], tmp[128];
        snprintf(name, sizeof(name), "%.*s", (int)(e - a), a);
        const char *v = lookup(arg, name, tmp, sizeof(tmp));
        buf_puts(out, v ? v : "");
        p = close + 2;
    }
}
