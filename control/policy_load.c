/* The policies directory, and the import of CB-Tumblebug's auto-control policies
 * (control/policy.h has the mapping). */
#include "common/file.h"
#include "control/policy.h"
#include "control/policy_impl.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int is_policy_file(const struct dirent *d)
{
    size_t n = strlen(d->d_name);
    return d->d_name[0] != '.' && n > 5 && strcmp(d->d_name + n - 5, ".json") == 0;
}

void policy_set_free(struct policy_set *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        policy_free(&s->policies[i]);
    free(s->policies);
    s->policies = NULL;
    s->n = 0;
}

static int load_file(const char *dir, const char *name, struct policy_set *s, char *err,
                     size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    size_t len;
    char *text = dsf_read_file(path, &len);
    if (!text) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    struct policy *p = &s->policies[s->n];
    int rc = policy_parse(text, len, path, p, err, errlen);
    free(text);
    if (rc)
        return -1;
    s->n++;
    for (size_t i = 0; i + 1 < s->n; i++)
        if (strcmp(s->policies[i].name, p->name) == 0) {
            snprintf(err, errlen, "%s: key 'name': \"%s\" already defined in %s", path, p->name,
                     s->policies[i].origin);
            return -1;
        }
    return 0;
}

int policy_load_dir(const char *dir, struct policy_set *out, char *err, size_t errlen)
{
    struct dirent **names;
    memset(out, 0, sizeof(*out));
    int n = scandir(dir, &names, is_policy_file, alphasort);
    if (n < 0) {
        snprintf(err, errlen, "policies.dir %s: %s", dir, strerror(errno));
        return -1;
    }
    int rc = 0;
    if (n > 0 && !(out->policies = calloc((size_t)n, sizeof(*out->policies)))) {
        snprintf(err, errlen, "policies.dir %s: out of memory", dir);
        rc = -1;
    }
    for (int i = 0; i < n; i++) {
        if (rc == 0)
            rc = load_file(dir, names[i]->d_name, out, err, errlen);
        free(names[i]);
    }
    free(names);
    if (rc)
        policy_set_free(out);
    return rc;
}

/* The one Tumblebug Policy object of the document: a bare one, or the single entry of
 * "policy" (MciPolicyInfo / MciPolicyReq). */
static json_t *tumblebug_entry(struct policy_ctx *c, json_t *root, const char **path)
{
    json_t *list = json_object_get(root, "policy");
    char shown[80];
    *path = "";
    if (!list)
        return root;
    *path = "policy[0].";
    if (!json_is_array(list) || json_array_size(list) != 1) {
        policy_fail(c, "policy",
                    "expected a list of exactly one policy (import them one by one) "
                    "(got %s)",
                    policy_show(list, shown, sizeof(shown)));
        return NULL;
    }
    json_t *e = json_array_get(list, 0);
    if (!json_is_object(e)) {
        policy_fail(c, "policy[0]", "expected an object (got %s)",
                    policy_show(e, shown, sizeof(shown)));
        return NULL;
    }
    return e;
}

/* A string member, or the empty string when it is absent ("" and absent are alike in Go). */
static int tb_str(struct policy_ctx *c, json_t *obj, const char *key, const char *path,
                  const char **out)
{
    json_t *v = json_object_get(obj, key);
    char shown[80];
    *out = "";
    if (!v)
        return 0;
    if (!json_is_string(v))
        return policy_fail(c, path, "expected a string (got %s)",
                           policy_show(v, shown, sizeof(shown)));
    *out = json_string_value(v);
    return 0;
}

static json_t *tb_obj(struct policy_ctx *c, json_t *obj, const char *key, const char *path)
{
    json_t *v = json_object_get(obj, key);
    char shown[80];
    if (!json_is_object(v)) {
        if (v)
            policy_fail(c, path, "expected an object (got %s)",
                        policy_show(v, shown, sizeof(shown)));
        else
            policy_fail(c, path, "required");
        return NULL;
    }
    return v;
}

struct tb_condition {
    const char *metric, *op, *operand, *period;
};

static int tb_condition(struct policy_ctx *c, json_t *entry, const char *pre,
                        struct tb_condition *t)
{
    char path[96];
    snprintf(path, sizeof(path), "%sautoCondition", pre);
    json_t *cond = tb_obj(c, entry, "autoCondition", path);
    if (!cond)
        return -1;
    static const char *const keys[] = {"metric",           "operator",        "operand",
                                       "evaluationPeriod", "evaluationValue", NULL};
    snprintf(path, sizeof(path), "%sautoCondition.", pre);
    if (policy_check_keys(c, cond, path, keys, NULL))
        return -1;
    char p1[128], p2[128], p3[128], p4[128];
    snprintf(p1, sizeof(p1), "%smetric", path);
    snprintf(p2, sizeof(p2), "%soperator", path);
    snprintf(p3, sizeof(p3), "%soperand", path);
    snprintf(p4, sizeof(p4), "%sevaluationPeriod", path);
    if (tb_str(c, cond, "metric", p1, &t->metric) || tb_str(c, cond, "operator", p2, &t->op) ||
        tb_str(c, cond, "operand", p3, &t->operand) ||
        tb_str(c, cond, "evaluationPeriod", p4, &t->period))
        return -1;
    if (!*t->metric)
        return policy_fail(c, p1, "required: it names the alarm rule the policy matches");
    if (strcmp(t->op, "<") && strcmp(t->op, "<=") && strcmp(t->op, ">") && strcmp(t->op, ">="))
        return policy_fail(c, p2, "expected <, <=, > or >= (got \"%.40s\")", t->op);
    char *end;
    strtod(t->operand, &end);
    if (!*t->operand || *end)
        return policy_fail(c, p3, "expected a number (got \"%.40s\")", t->operand);
    return 0;
}

static int tb_action(struct policy_ctx *c, json_t *entry, const char *pre, enum policy_action *out)
{
    char path[96];
    snprintf(path, sizeof(path), "%sautoAction", pre);
    json_t *act = tb_obj(c, entry, "autoAction", path);
    const char *type;
    if (!act)
        return -1;
    snprintf(path, sizeof(path), "%sautoAction.actionType", pre);
    if (tb_str(c, act, "actionType", path, &type))
        return -1;
    if (strcmp(type, "ScaleOut") == 0)
        *out = POLICY_SCALE_OUT;
    else if (strcmp(type, "ScaleIn") == 0)
        *out = POLICY_SCALE_IN;
    else
        return policy_fail(c, path, "expected ScaleOut or ScaleIn (got \"%.40s\")", type);
    return 0;
}

static int tb_build(struct policy_ctx *c, const char *mci, const struct tb_condition *t,
                    enum policy_action a, struct policy *p)
{
    char name[128], desc[256];
    snprintf(name, sizeof(name), "tumblebug-%.40s-%.40s-%s", *mci ? mci : "mci", t->metric,
             policy_action_name(a));
    for (char *s = name; *s; s++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-", *s))
            *s = '_';
    snprintf(desc, sizeof(desc),
             "imported from CB-Tumblebug: %.60s %s %.40s over %.20s evaluations", t->metric, t->op,
             t->operand, *t->period ? t->period : "?");
    p->name = strdup(name);
    p->description = strdup(desc);
    p->rule = strdup(t->metric);
    p->state = strdup("firing");
    p->origin = strdup("tumblebug");
    p->nsteps = 1;
    p->steps[0] = (struct policy_step){.action = a, .by = 1, .min = -1, .max = -1, .replicas = -1};
    if (*mci) {
        p->nlabels = 1;
        p->labels[0].name = strdup("mci");
        p->labels[0].value = strdup(mci);
    }
    p->verify_timeout_ms = POLICY_DEFAULT_VERIFY_TIMEOUT_MS;
    p->cooldown_ms = POLICY_DEFAULT_COOLDOWN_MS;
    p->hold_ms = POLICY_DEFAULT_HOLD_MS;
    if (!p->name || !p->description || !p->rule || !p->state || !p->origin ||
        (*mci && (!p->labels[0].name || !p->labels[0].value)))
        return policy_fail(c, "policy", "out of memory");
    return 0;
}

static int tb_import(struct policy_ctx *c, json_t *root, struct policy *out)
{
    const char *pre, *mci;
    struct tb_condition t;
    enum policy_action a = POLICY_SCALE_OUT;
    json_t *entry = tumblebug_entry(c, root, &pre);
    if (!entry || tb_str(c, root, "Name", "Name", &mci))
        return -1;
    if (!*mci && tb_str(c, root, "Id", "Id", &mci))
        return -1;
    if (tb_condition(c, entry, pre, &t) || tb_action(c, entry, pre, &a))
        return -1;
    return tb_build(c, mci, &t, a, out);
}

int policy_from_tumblebug(const char *json, size_t len, struct policy *out, char *err,
                          size_t errlen)
{
    struct policy_ctx c = {"tumblebug", err, errlen};
    memset(out, 0, sizeof(*out));
    json_error_t jerr;
    json_t *root = json_loadb(json, len, 0, &jerr);
    if (!root) {
        snprintf(err, errlen, "tumblebug: not JSON: line %d: %s", jerr.line, jerr.text);
        return -1;
    }
    int rc = -1;
    if (!json_is_object(root))
        snprintf(err, errlen, "tumblebug: expected a JSON object (a Tumblebug MCI policy)");
    else
        rc = tb_import(&c, root, out);
    json_decref(root);
    if (rc)
        policy_free(out);
    return rc;
}
