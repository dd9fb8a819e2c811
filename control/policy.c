/* Policy files: JSON in, checked struct policy out; every refusal names the origin, the key
 * path and the value (control/policy.h). */
#include "control/policy.h"
#include "common/config.h"
#include "control/policy_impl.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const action_names[] = {
    [POLICY_SUSPEND] = "suspend",       [POLICY_RESUME] = "resume",
    [POLICY_REBOOT] = "reboot",         [POLICY_MIGRATE] = "migrate",
    [POLICY_SCALE_OUT] = "scale_out",   [POLICY_SCALE_IN] = "scale_in",
    [POLICY_K8S_CORDON] = "k8s_cordon", [POLICY_K8S_DRAIN] = "k8s_drain",
    [POLICY_K8S_SCALE] = "k8s_scale",   [POLICY_NOTIFY] = "notify",
    [POLICY_WEBHOOK] = "webhook",
};
#define NACTIONS (sizeof(action_names) / sizeof(action_names[0]))

const char *policy_action_name(enum policy_action a)
{
    return (size_t)a < NACTIONS ? action_names[a] : "?";
}

int policy_fail(struct policy_ctx *c, const char *path, const char *fmt, ...)
{
    char why[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    snprintf(c->err, c->errlen, "%s: key '%s': %s", c->origin, path, why);
    return -1;
}

const char *policy_show(json_t *v, char *buf, size_t cap)
{
    char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    if (!s)
        snprintf(buf, cap, "?");
    else if (strlen(s) > 60)
        snprintf(buf, cap, "%.57s...", s);
    else
        snprintf(buf, cap, "%s", s);
    free(s);
    return buf;
}

int policy_check_keys(struct policy_ctx *c, json_t *obj, const char *prefix,
                      const char *const *allowed, const char *what)
{
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
    {
        const char *near = NULL;
        int ok = 0;
        for (const char *const *a = allowed; *a && !ok; a++) {
            ok = strcmp(*a, k) == 0;
            if (!near && dsf_edit_distance(*a, k) <= 2)
                near = *a;
        }
        if (ok)
            continue;
        char path[160], hint[96] = "";
        snprintf(path, sizeof(path), "%s%s", prefix, k);
        if (near)
            snprintf(hint, sizeof(hint), "; did you mean '%s'?", near);
        return policy_fail(c, path, "unknown key%s%s", what ? what : "", hint);
    }
    return 0;
}

int policy_get_str(struct policy_ctx *c, json_t *obj, const char *key, const char *path,
                   int required, char **out)
{
    json_t *v = json_object_get(obj, key);
    char shown[80];
    if (!v) {
        if (required)
            return policy_fail(c, path, "required");
        return 0;
    }
    if (!json_is_string(v) || !*json_string_value(v))
        return policy_fail(c, path, "expected a non-empty string (got %s)",
                           policy_show(v, shown, sizeof(shown)));
    if (strlen(json_string_value(v)) != json_string_length(v))
        return policy_fail(c, path, "contains a NUL byte");
    *out = strdup(json_string_value(v));
    return *out ? 0 : policy_fail(c, path, "out of memory");
}

static int get_int(struct policy_ctx *c, json_t *obj, const char *key, const char *path,
                   json_int_t lo, json_int_t hi, int *out)
{
    json_t *v = json_object_get(obj, key);
    char shown[80];
    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return policy_fail(c, path, "expected an integer from %lld to %lld (got %s)", (long long)lo,
                           (long long)hi, policy_show(v, shown, sizeof(shown)));
    *out = (int)json_integer_value(v);
    return 0;
}

static int get_duration(struct policy_ctx *c, json_t *obj, const char *key, int64_t def,
                        int64_t *out)
{
    json_t *v = json_object_get(obj, key);
    char shown[80];
    *out = def;
    if (!v)
        return 0;
    if (!json_is_string(v) || dsf_parse_duration_ms(json_string_value(v), out))
        return policy_fail(c, key, "expected a duration like 500ms, 30s, 2m, 1h (got %s)",
                           policy_show(v, shown, sizeof(shown)));
    return 0;
}

static int get_bool(struct policy_ctx *c, json_t *obj, const char *key, int *out)
{
    json_t *v = json_object_get(obj, key);
    char shown[80];
    *out = 0;
    if (!v)
        return 0;
    if (!json_is_boolean(v))
        return policy_fail(c, key, "expected true or false (got %s)",
                           policy_show(v, shown, sizeof(shown)));
    *out = json_is_true(v);
    return 0;
}

/* The keys each action takes besides "action"; any other is refused. */
static const char *const plain_keys[] = {"action", NULL};
static const char *const migrate_keys[] = {"action", "region", NULL};
static const char *const scale_keys[] = {"action", "by", "min", "max", NULL};
static const char *const k8s_scale_keys[] = {"action", "replicas", NULL};
static const char *const webhook_keys[] = {"action", "url", NULL};

static const char *const *keys_of(enum policy_action a)
{
    switch (a) {
    case POLICY_MIGRATE:
        return migrate_keys;
    case POLICY_SCALE_OUT:
    case POLICY_SCALE_IN:
        return scale_keys;
    case POLICY_K8S_SCALE:
        return k8s_scale_keys;
    case POLICY_WEBHOOK:
        return webhook_keys;
    default:
        return plain_keys;
    }
}

static int step_action(struct policy_ctx *c, json_t *obj, const char *prefix,
                       enum policy_action *out)
{
    char path[64], shown[80];
    snprintf(path, sizeof(path), "%saction", prefix);
    json_t *v = json_object_get(obj, "action");
    if (!v)
        return policy_fail(c, path, "required");
    for (size_t i = 0; json_is_string(v) && i < NACTIONS; i++)
        if (strcmp(json_string_value(v), action_names[i]) == 0) {
            *out = (enum policy_action)i;
            return 0;
        }
    return policy_fail(c, path,
                       "expected one of suspend, resume, reboot, migrate, scale_out, scale_in, "
                       "k8s_cordon, k8s_drain, k8s_scale, notify, webhook (got %s)",
                       policy_show(v, shown, sizeof(shown)));
}

static int step_params(struct policy_ctx *c, json_t *obj, const char *prefix, struct policy_step *s)
{
    char path[64], why[160];
    static const char *const schemes[] = {"http", "https", NULL};
    switch (s->action) {
    case POLICY_MIGRATE:
        snprintf(path, sizeof(path), "%sregion", prefix);
        return policy_get_str(c, obj, "region", path, 1, &s->region);
    case POLICY_SCALE_OUT:
    case POLICY_SCALE_IN:
        snprintf(path, sizeof(path), "%sby", prefix);
        if (get_int(c, obj, "by", path, 1, 1000, &s->by))
            return -1;
        snprintf(path, sizeof(path), "%smin", prefix);
        if (get_int(c, obj, "min", path, 0, 100000, &s->min))
            return -1;
        snprintf(path, sizeof(path), "%smax", prefix);
        if (get_int(c, obj, "max", path, 1, 100000, &s->max))
            return -1;
        if (s->min >= 0 && s->max >= 0 && s->max < s->min)
            return policy_fail(c, path, "must be at least min (%d) (got %d)", s->min, s->max);
        return 0;
    case POLICY_K8S_SCALE:
        snprintf(path, sizeof(path), "%sreplicas", prefix);
        if (!json_object_get(obj, "replicas"))
            return policy_fail(c, path, "required");
        return get_int(c, obj, "replicas", path, 0, 100000, &s->replicas);
    case POLICY_WEBHOOK:
        snprintf(path, sizeof(path), "%surl", prefix);
        if (policy_get_str(c, obj, "url", path, 1, &s->url))
            return -1;
        if (dsf_check_url(s->url, schemes, 1, why, sizeof(why)))
            return policy_fail(c, path, "%s (got \"%s\")", why, s->url);
        return 0;
    default:
        return 0;
    }
}

static int parse_step(struct policy_ctx *c, json_t *obj, size_t i, struct policy_step *s)
{
    char prefix[32], shown[80];
    snprintf(prefix, sizeof(prefix), "steps[%zu].", i);
    s->by = 1;
    s->min = s->max = s->replicas = -1;
    if (!json_is_object(obj)) {
        snprintf(prefix, sizeof(prefix), "steps[%zu]", i);
        return policy_fail(c, prefix, "expected an object (got %s)",
                           policy_show(obj, shown, sizeof(shown)));
    }
    if (step_action(c, obj, prefix, &s->action))
        return -1;
    char what[64];
    snprintf(what, sizeof(what), " for action '%s'", action_names[s->action]);
    if (policy_check_keys(c, obj, prefix, keys_of(s->action), what))
        return -1;
    return step_params(c, obj, prefix, s);
}

static int parse_steps(struct policy_ctx *c, json_t *root, struct policy *p)
{
    json_t *steps = json_object_get(root, "steps");
    char shown[80];
    if (!steps)
        return policy_fail(c, "steps", "required");
    if (!json_is_array(steps) || json_array_size(steps) == 0 ||
        json_array_size(steps) > POLICY_MAX_STEPS)
        return policy_fail(c, "steps", "expected an array of 1 to %d steps (got %s)",
                           POLICY_MAX_STEPS, policy_show(steps, shown, sizeof(shown)));
    for (size_t i = 0; i < json_array_size(steps); i++) {
        p->nsteps = i + 1; /* so policy_free frees what this step got */
        if (parse_step(c, json_array_get(steps, i), i, &p->steps[i]))
            return -1;
    }
    return 0;
}

static int parse_labels(struct policy_ctx *c, json_t *match, struct policy *p)
{
    json_t *labels = json_object_get(match, "labels"), *v;
    const char *k;
    char path[160], shown[80];
    if (!labels)
        return 0;
    if (!json_is_object(labels) || json_object_size(labels) > POLICY_MAX_LABELS)
        return policy_fail(c, "match.labels", "expected an object of at most %d labels (got %s)",
                           POLICY_MAX_LABELS, policy_show(labels, shown, sizeof(shown)));
    json_object_foreach(labels, k, v)
    {
        snprintf(path, sizeof(path), "match.labels.%s", k);
        if (!*k)
            return policy_fail(c, path, "a label name must not be empty");
        struct policy_label *l = &p->labels[p->nlabels];
        if (policy_get_str(c, labels, k, path, 1, &l->value))
            return -1;
        p->nlabels++;
        if (!(l->name = strdup(k)))
            return policy_fail(c, path, "out of memory");
    }
    return 0;
}

static const char *const states[] = {"inactive", "pending", "firing", "nodata", "resolved", NULL};

static int parse_match(struct policy_ctx *c, json_t *root, struct policy *p)
{
    static const char *const keys[] = {"rule", "state", "severity", "labels", NULL};
    json_t *match = json_object_get(root, "match");
    char shown[80];
    if (!match)
        return policy_fail(c, "match", "required");
    if (!json_is_object(match))
        return policy_fail(c, "match", "expected an object (got %s)",
                           policy_show(match, shown, sizeof(shown)));
    if (policy_check_keys(c, match, "match.", keys, NULL) ||
        policy_get_str(c, match, "rule", "match.rule", 1, &p->rule) ||
        policy_get_str(c, match, "state", "match.state", 0, &p->state) ||
        policy_get_str(c, match, "severity", "match.severity", 0, &p->severity))
        return -1;
    if (!p->state && !(p->state = strdup("firing")))
        return policy_fail(c, "match.state", "out of memory");
    int known = 0;
    for (const char *const *s = states; *s && !known; s++)
        known = strcmp(*s, p->state) == 0;
    if (!known)
        return policy_fail(c, "match.state",
                           "expected inactive, pending, firing, nodata or resolved (got \"%s\")",
                           p->state);
    return parse_labels(c, match, p);
}

static int check_name(struct policy_ctx *c, const char *name)
{
    size_t n = strlen(name);
    int ok = n <= 127;
    for (size_t i = 0; i < n && ok; i++)
        ok = (name[i] >= 'a' && name[i] <= 'z') || (name[i] >= 'A' && name[i] <= 'Z') ||
             (name[i] >= '0' && name[i] <= '9') || strchr("_.-", name[i]);
    if (!ok)
        return policy_fail(c, "name", "expected 1 to 127 of A-Z a-z 0-9 _ . - (got \"%.80s\")",
                           name);
    return 0;
}

static int parse_root(struct policy_ctx *c, json_t *root, struct policy *p)
{
    static const char *const keys[] = {"name",           "description", "match", "steps",
                                       "verify_timeout", "cooldown",    "hold",  "dry_run",
                                       "approval",       NULL};
    if (policy_check_keys(c, root, "", keys, NULL) ||
        policy_get_str(c, root, "name", "name", 1, &p->name) || check_name(c, p->name) ||
        policy_get_str(c, root, "description", "description", 0, &p->description) ||
        parse_match(c, root, p) || parse_steps(c, root, p) ||
        get_duration(c, root, "verify_timeout", POLICY_DEFAULT_VERIFY_TIMEOUT_MS,
                     &p->verify_timeout_ms) ||
        get_duration(c, root, "cooldown", POLICY_DEFAULT_COOLDOWN_MS, &p->cooldown_ms) ||
        get_duration(c, root, "hold", POLICY_DEFAULT_HOLD_MS, &p->hold_ms) ||
        get_bool(c, root, "dry_run", &p->dry_run) || get_bool(c, root, "approval", &p->approval))
        return -1;
    return 0;
}

int policy_parse(const char *text, size_t len, const char *origin, struct policy *out, char *err,
                 size_t errlen)
{
    struct policy_ctx c = {origin ? origin : "policy", err, errlen};
    memset(out, 0, sizeof(*out));
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        snprintf(err, errlen, "%s: not JSON: line %d: %s", c.origin, jerr.line, jerr.text);
        return -1;
    }
    int rc = -1;
    if (!json_is_object(root))
        snprintf(err, errlen, "%s: expected a JSON object (one policy per file)", c.origin);
    else if (parse_root(&c, root, out) == 0) {
        if ((out->origin = strdup(c.origin)))
            rc = 0;
        else
            snprintf(err, errlen, "%s: out of memory", c.origin);
    }
    json_decref(root);
    if (rc)
        policy_free(out);
    return rc;
}

void policy_free(struct policy *p)
{
    if (!p)
        return;
    free(p->name);
    free(p->origin);
    free(p->description);
    free(p->rule);
    free(p->state);
    free(p->severity);
    for (size_t i = 0; i < p->nlabels && i < POLICY_MAX_LABELS; i++) {
        free(p->labels[i].name);
        free(p->labels[i].value);
    }
    for (size_t i = 0; i < p->nsteps && i < POLICY_MAX_STEPS; i++) {
        free(p->steps[i].region);
        free(p->steps[i].url);
    }
    memset(p, 0, sizeof(*p));
}

int policy_matches(const struct policy *p, const char *rule, const char *state,
                   const char *severity, const char *(*label)(void *arg, const char *name),
                   void *arg)
{
    if (!rule || strcmp(p->rule, rule) != 0)
        return 0;
    if (p->state && (!state || strcmp(p->state, state) != 0))
        return 0;
    if (p->severity && (!severity || strcmp(p->severity, severity) != 0))
        return 0;
    for (size_t i = 0; i < p->nlabels; i++) {
        const char *v = label ? label(arg, p->labels[i].name) : NULL;
        if (!v || strcmp(v, p->labels[i].value) != 0)
            return 0;
    }
    return 1;
}
