/* Healing policies: what a valid file yields, each refusal naming the file, the key path and
 * the value, matching an alarm, the directory loader (on deploy/policies too) and the
 * CB-Tumblebug import. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "control/policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char full[] =
    "{\"name\": \"reboot-then-migrate\", \"match\": {\"rule\": \"agent_down\", \"state\": "
    "\"firing\", \"severity\": \"critical\", \"labels\": {\"ns\": \"ns1\", \"mci\": \"web\"}},"
    " \"steps\": [{\"action\": \"reboot\"}, {\"action\": \"migrate\", \"region\": \"r2\"},"
    " {\"action\": \"notify\"}], \"verify_timeout\": \"2m\", \"cooldown\": \"10m\","
    " \"hold\": \"1h\", \"dry_run\": false, \"approval\": true}";

static int parse(const char *text, struct policy *p, char *err)
{
    return policy_parse(text, strlen(text), "p.json", p, err, 512);
}

static void test_full_policy(void **state)
{
    struct policy p;
    char err[512] = "";
    assert_int_equal(parse(full, &p, err), 0);
    assert_string_equal(p.name, "reboot-then-migrate");
    assert_string_equal(p.origin, "p.json");
    assert_string_equal(p.rule, "agent_down");
    assert_string_equal(p.state, "firing");
    assert_string_equal(p.severity, "critical");
    assert_int_equal(p.nlabels, 2);
    assert_int_equal(p.nsteps, 3);
    assert_int_equal(p.steps[0].action, POLICY_REBOOT);
    assert_int_equal(p.steps[1].action, POLICY_MIGRATE);
    assert_string_equal(p.steps[1].region, "r2");
    assert_int_equal(p.steps[2].action, POLICY_NOTIFY); /* as written, nothing added */
    assert_int_equal(p.verify_timeout_ms, 120000);
    assert_int_equal(p.cooldown_ms, 600000);
    assert_int_equal(p.hold_ms, 3600000);
    assert_int_equal(p.dry_run, 0);
    assert_int_equal(p.approval, 1);
    policy_free(&p);
}

static void test_every_action_and_defaults(void **state)
{
    struct policy p;
    char err[512] = "";
    const char *text =
        "{\"name\": \"all\", \"match\": {\"rule\": \"r\"}, \"steps\": ["
        "{\"action\": \"suspend\"}, {\"action\": \"resume\"}, {\"action\": \"scale_out\"},"
        "{\"action\": \"scale_in\", \"by\": 2, \"min\": 1, \"max\": 4},"
        "{\"action\": \"k8s_cordon\"}, {\"action\": \"k8s_drain\"},"
        "{\"action\": \"k8s_scale\", \"replicas\": 0},"
        "{\"action\": \"webhook\", \"url\": \"https://hooks.example.com/heal?x=1\"},"
        "{\"action\": \"notify\"}, {\"action\": \"reboot\"}]}";
    assert_int_equal(parse(text, &p, err), 0);
    assert_int_equal(p.nsteps, 10);
    assert_string_equal(p.state, "firing");
    assert_null(p.severity);
    assert_int_equal(p.steps[2].action, POLICY_SCALE_OUT);
    assert_int_equal(p.steps[2].by, 1);
    assert_int_equal(p.steps[2].min, -1);
    assert_int_equal(p.steps[3].by, 2);
    assert_int_equal(p.steps[3].max, 4);
    assert_int_equal(p.steps[6].replicas, 0);
    assert_string_equal(p.steps[7].url, "https://hooks.example.com/heal?x=1");
    assert_string_equal(policy_action_name(p.steps[5].action), "k8s_drain");
    assert_int_equal(p.verify_timeout_ms, POLICY_DEFAULT_VERIFY_TIMEOUT_MS);
    assert_int_equal(p.cooldown_ms, POLICY_DEFAULT_COOLDOWN_MS);
    assert_int_equal(p.hold_ms, POLICY_DEFAULT_HOLD_MS);
    policy_free(&p);
}

/* Each refusal: the text, then the pieces the message must hold (file, key path, value). */
static const struct {
    const char *text, *key, *value;
} refusals[] = {
    {"{\"name\": \"a\", \"match\": {\"rule\": \"r\"}, \"steps\": [{\"action\": \"reboot\"},"
     " {\"action\": \"migrate\", \"region\": 5}]}",
     "key 'steps[1].region'", "got 5"},
    {"{\"name\": \"a\", \"match\": {\"rule\": \"r\"}, \"steps\": [{\"action\": \"migrate\"}]}",
     "key 'steps[0].region'", "required"},
    {"{\"name\": \"a\", \"match\": {\"rule\": \"r\"}, \"steps\": [{\"action\": \"explode\"}]}",
     "key 'steps[0].action'", "\"explode\""},
    {"{\"name\": \"a\", \"match\": {\"rule\": \"r\"}, \"steps\": [{\"action\": \"reboot\","
     " \"region\": \"r2\"}]}",
     "key 'steps[0].region'", "unknown key for action 'reboot'"},
    {"{\"name\": \"a\", \"match\": {\"rule\": \"r\"}, \"steps\": []}", "key 'steps'", "got []"},
    {"{\"name\": \"a\", \"match\": {\"rule\": \"r\"}, \"steps\": [{\"action\": \"notify\"},"
     "{\"action\": \"notify\"},{\"action\": \"notify\"},{\"action\": \"notify\"},"
     "{\"action\": \"notify\"},{\"action\": \"notify\"},{\"action\": \"notify\"},"
     "{\"action\": \"notify\"},{\"action\": \"notify\"},{\"action\": \"notify\"},"
     "{\"action\": \"notify\"}]}",
     "key 'steps'", "1 to 10 steps"},
    {"{\"name\": \"a\", \"match\": {\"rule\": \"r\"}, \"steps\": [{\"action\": \"notify\"}],"
     " \"cooldwn\": \"1m\"}",
     "key 'cooldwn'", "did you mean 'cooldown'?"},
    {"{\"name\": \"a\", \"match\": {\"rule\": \"r\"}, \"steps\": [{\"action\": \"notify\"}],"
     " \"hold\": \"forever\"}",
     "key 'hold'", "\"forever\""},
    {"{\"name\": \"a\", \"match\": {\"rule\": \"r\"}, \"steps\": [{\"action\": \"notify\"}],"
     " \"dry_run\": \"yes\"}",
     "key 'dry_run'", "\"yes\""},
    {"{\"name\": \"a\", \"match\": {\"rule\": \"r\", \"state\": \"burning\"}, \"steps\":"
     " [{\"action\": \"notify\"}]}",
     "key 'match.state'", "\"burning\""},
    {"{\"name\": \"a\", \"match\": {\"rule\": \"r\", \"labels\": {\"mci\": 3}}, \"steps\":"
     " [{\"action\": \"notify\"}]}",
     "key 'match.labels.mci'", "got 3"},
    {"{\"name\": \"a\", \"match\": {\"rul\": \"r\"}, \"steps\": [{\"action\": \"notify\"}]}",
     "key 'match.rul'", "did you mean 'rule'?"},
    {"{\"name\": \"a\", \"steps\": [{\"action\": \"notify\"}]}", "key 'match'", "required"},
    {"{\"name\": \"a b\", \"match\": {\"rule\": \"r\"}, \"steps\": [{\"action\": \"notify\"}]}",
     "key 'name'", "\"a b\""},
    {"{\"name\": \"a\", \"match\": {\"rule\": \"r\"}, \"steps\": [{\"action\": \"scale_out\","
     " \"min\": 5, \"max\": 2}]}",
     "key 'steps[0].max'", "got 2"},
    {"{\"name\": \"a\", \"match\": {\"rule\": \"r\"}, \"steps\": [{\"action\": \"scale_in\","
     " \"by\": 0}]}",
     "key 'steps[0].by'", "got 0"},
    {"{\"name\": \"a\", \"match\": {\"rule\": \"r\"}, \"steps\": [{\"action\": \"k8s_scale\"}]}",
     "key 'steps[0].replicas'", "required"},
    {"{\"name\": \"a\", \"match\": {\"rule\": \"r\"}, \"steps\": [{\"action\": \"webhook\","
     " \"url\": \"ftp://x/y\"}]}",
     "key 'steps[0].url'", "\"ftp://x/y\""},
    {"{\"name\": \"a\", \"match\": {\"rule\": \"r\"}, \"steps\": [\"reboot\"]}", "key 'steps[0]'",
     "\"reboot\""},
    {"[1, 2]", "p.json", "JSON object"},
    {"{\"name\": ", "p.json", "not JSON"},
};

static void test_refusals_name_key_and_value(void **state)
{
    for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
        struct policy p;
        char err[512] = "";
        if (parse(refusals[i].text, &p, err) != -1 || !strstr(err, "p.json: ") ||
            !strstr(err, refusals[i].key) || !strstr(err, refusals[i].value))
            fail_msg("case %zu: got '%s', want '%s' and '%s'", i, err, refusals[i].key,
                     refusals[i].value);
        assert_null(p.name); /* nothing left to free */
    }
}

static const char *labels_of(void *arg, const char *name)
{
    const char *const *kv = arg;
    for (; *kv; kv += 2)
        if (strcmp(kv[0], name) == 0)
            return kv[1];
    return NULL;
}

static void test_matching(void **state)
{
    struct policy p;
    char err[512] = "";
    assert_int_equal(parse(full, &p, err), 0);
    const char *web[] = {"ns", "ns1", "mci", "web", "vm", "vm1", NULL};
    const char *db[] = {"ns", "ns1", "mci", "db", NULL};
    const char *no_mci[] = {"ns", "ns1", NULL};
    assert_true(policy_matches(&p, "agent_down", "firing", "critical", labels_of, web));
    assert_false(policy_matches(&p, "agent_down", "resolved", "critical", labels_of, web));
    assert_false(policy_matches(&p, "agent_down", "firing", "warn", labels_of, web));
    assert_false(policy_matches(&p, "cpu_hot", "firing", "critical", labels_of, web));
    assert_false(policy_matches(&p, "agent_down", "firing", "critical", labels_of, db));
    assert_false(policy_matches(&p, "agent_down", "firing", "critical", labels_of, no_mci));
    assert_false(policy_matches(&p, "agent_down", "firing", "critical", NULL, NULL));
    policy_free(&p);
    /* No severity and no labels: any severity, any group. */
    const char *loose = "{\"name\": \"l\", \"match\": {\"rule\": \"r\"}, \"steps\": "
                        "[{\"action\": \"notify\"}]}";
    assert_int_equal(parse(loose, &p, err), 0);
    assert_true(policy_matches(&p, "r", "firing", "warn", NULL, NULL));
    assert_true(policy_matches(&p, "r", "firing", NULL, labels_of, db));
    assert_false(policy_matches(&p, "r", "pending", "warn", NULL, NULL));
    policy_free(&p);
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void remove_dir(const char *dir, const char *const *names)
{
    char path[512];
    for (; *names; names++) {
        snprintf(path, sizeof(path), "%s/%s", dir, *names);
        unlink(path);
    }
    rmdir(dir);
}

static void test_load_dir(void **state)
{
    char dir[] = "/tmp/dsf-policy-XXXXXX";
    assert_non_null(mkdtemp(dir));
    static const char *const files[] = {"a.json", "b.json", "c.json", "notes.txt", ".d.json", NULL};
    struct policy_set s;
    char err[512] = "";
    assert_int_equal(policy_load_dir(dir, &s, err, sizeof(err)), 0); /* empty: no policies */
    assert_int_equal(s.n, 0);
    write_file(dir, "b.json", full);
    write_file(dir, "a.json",
               "{\"name\": \"first\", \"match\": {\"rule\": \"r\"}, \"steps\": "
               "[{\"action\": \"notify\"}]}");
    write_file(dir, "notes.txt", "not a policy");
    write_file(dir, ".d.json", "not a policy either");
    assert_int_equal(policy_load_dir(dir, &s, err, sizeof(err)), 0);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.policies[0].name, "first"); /* name order */
    assert_string_equal(s.policies[1].name, "reboot-then-migrate");
    policy_set_free(&s);
    /* A bad file fails the load, naming it and the key. */
    write_file(dir, "c.json",
               "{\"name\": \"c\", \"match\": {\"rule\": \"r\"}, \"steps\": "
               "[{\"action\": \"migrate\", \"region\": \"\"}]}");
    assert_int_equal(policy_load_dir(dir, &s, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "/c.json: key 'steps[0].region'"));
    assert_int_equal(s.n, 0);
    /* A name defined twice: refused, naming both files. */
    write_file(dir, "c.json", full);
    assert_int_equal(policy_load_dir(dir, &s, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "/c.json: key 'name': \"reboot-then-migrate\" already defined"));
    assert_non_null(strstr(err, "/b.json"));
    remove_dir(dir, files);
    assert_int_equal(policy_load_dir(dir, &s, err, sizeof(err)), -1); /* gone */
    assert_non_null(strstr(err, "policies.dir"));
}

static void test_starter_policies_load(void **state)
{
    struct policy_set s;
    char err[512] = "";
    if (policy_load_dir(DSF_SRC "/deploy/policies", &s, err, sizeof(err)))
        fail_msg("%s", err);
    assert_int_equal(s.n, 2);
    const char *group[] = {"ns", "ns1", "mci", "web", NULL};
    int agent_down = 0, cpu = 0;
    for (size_t i = 0; i < s.n; i++) {
        const struct policy *p = &s.policies[i];
        if (policy_matches(p, "agent_down", "firing", "crit", labels_of, group)) {
            agent_down++;
            assert_int_equal(p->nsteps, 3);
            assert_int_equal(p->steps[0].action, POLICY_REBOOT);
            assert_int_equal(p->steps[1].action, POLICY_MIGRATE);
            assert_int_equal(p->steps[2].action, POLICY_NOTIFY);
        }
        if (policy_matches(p, "cpu_hot", "firing", "crit", labels_of, group)) {
            cpu++;
            assert_int_equal(p->steps[0].action, POLICY_SCALE_OUT);
        }
    }
    assert_int_equal(agent_down, 1);
    assert_int_equal(cpu, 1);
    policy_set_free(&s);
}

static int import(const char *json, struct policy *p, char *err)
{
    return policy_from_tumblebug(json, strlen(json), p, err, 512);
}

static void test_tumblebug_import(void **state)
{
    struct policy p;
    char err[512] = "";
    const char *info =
        "{\"Name\": \"mci01\", \"Id\": \"mci01\", \"policy\": [{\"autoCondition\": "
        "{\"metric\": \"cpu\", \"operator\": \">=\", \"operand\": \"80\", "
        "\"evaluationPeriod\": \"10\", \"evaluationValue\": [\"81.5\"]}, \"autoAction\": "
        "{\"actionType\": \"ScaleOut\", \"vmDynamicReq\": {\"commonSpec\": \"aws-t2-small\"},"
        " \"postCommand\": {\"command\": [\"echo\"]}, \"placementAlgo\": \"random\"}, "
        "\"status\": \"Ready\"}], \"actionLog\": \"\", \"description\": \"d\"}";
    if (import(info, &p, err))
        fail_msg("%s", err);
    assert_string_equal(p.name, "tumblebug-mci01-cpu-scale_out");
    assert_string_equal(p.rule, "cpu");
    assert_string_equal(p.state, "firing");
    assert_int_equal(p.nlabels, 1);
    assert_string_equal(p.labels[0].name, "mci");
    assert_string_equal(p.labels[0].value, "mci01");
    assert_int_equal(p.nsteps, 1);
    assert_int_equal(p.steps[0].action, POLICY_SCALE_OUT);
    assert_int_equal(p.steps[0].by, 1);
    assert_non_null(strstr(p.description, "cpu >= 80 over 10 evaluations"));
    assert_true(policy_matches(&p, "cpu", "firing", "crit", labels_of,
                               (const char *[]){"mci", "mci01", NULL}));
    policy_free(&p);
    /* A bare Policy (no MCI): ScaleIn, no label. */
    const char *bare = "{\"autoCondition\": {\"metric\": \"memory\", \"operator\": \"<\", "
                       "\"operand\": \"20.5\", \"evaluationPeriod\": \"5\"}, \"autoAction\": "
                       "{\"actionType\": \"ScaleIn\"}}";
    assert_int_equal(import(bare, &p, err), 0);
    assert_string_equal(p.name, "tumblebug-mci-memory-scale_in");
    assert_int_equal(p.steps[0].action, POLICY_SCALE_IN);
    assert_int_equal(p.nlabels, 0);
    policy_free(&p);
}

/* policy_to_json gives the file form back: parsing it yields the same policy. */
static void test_round_trip(void **state)
{
    (void)state;
    const char *text =
        "{\"name\": \"rt\", \"description\": \"d\", \"match\": {\"rule\": \"r\", "
        "\"state\": \"nodata\", \"severity\": \"crit\", \"labels\": {\"ns\": \"n1\"}}, "
        "\"steps\": [{\"action\": \"reboot\"}, {\"action\": \"migrate\", \"region\": \"r2\"}, "
        "{\"action\": \"scale_out\", \"by\": 2, \"max\": 9}, {\"action\": \"k8s_scale\", "
        "\"replicas\": 3}, {\"action\": \"webhook\", \"url\": \"http://h/x\"}], "
        "\"verify_timeout\": \"1500ms\", \"cooldown\": \"1m\", \"hold\": \"2h\", "
        "\"dry_run\": true, \"approval\": true}";
    struct policy a, b;
    char err[512];
    assert_int_equal(policy_parse(text, strlen(text), "t", &a, err, sizeof(err)), 0);
    json_t *j = policy_to_json(&a);
    char *again = json_dumps(j, 0);
    if (policy_parse(again, strlen(again), "t", &b, err, sizeof(err)))
        fail_msg("%s: %s", again, err);
    assert_string_equal(b.name, "rt");
    assert_string_equal(b.state, "nodata");
    assert_string_equal(b.severity, "crit");
    assert_int_equal(b.nlabels, 1);
    assert_int_equal(b.nsteps, 5);
    assert_string_equal(b.steps[1].region, "r2");
    assert_int_equal(b.steps[2].by, 2);
    assert_int_equal(b.steps[2].max, 9);
    assert_int_equal(b.steps[2].min, -1);
    assert_int_equal(b.steps[3].replicas, 3);
    assert_string_equal(b.steps[4].url, "http://h/x");
    assert_int_equal(b.verify_timeout_ms, 1500);
    assert_int_equal(b.cooldown_ms, 60000);
    assert_int_equal(b.hold_ms, 7200000);
    assert_true(b.dry_run && b.approval);
    free(again);
    json_decref(j);
    policy_free(&a);
    policy_free(&b);
}

static void test_tumblebug_refusals(void **state)
{
    static const struct {
        const char *json, *want;
    } bad[] = {
        {"{\"autoCondition\": {\"metric\": \"cpu\", \"operator\": \"==\", \"operand\": \"80\"},"
         " \"autoAction\": {\"actionType\": \"ScaleOut\"}}",
         "key 'autoCondition.operator': expected <, <=, > or >= (got \"==\")"},
        {"{\"autoCondition\": {\"metric\": \"cpu\", \"operator\": \">\", \"operand\": \"x\"},"
         " \"autoAction\": {\"actionType\": \"ScaleOut\"}}",
         "key 'autoCondition.operand'"},
        {"{\"policy\": [{\"autoCondition\": {\"metric\": \"cpu\", \"operator\": \">\", "
         "\"operand\": \"1\"}, \"autoAction\": {\"actionType\": \"Reboot\"}}]}",
         "key 'policy[0].autoAction.actionType': expected ScaleOut or ScaleIn (got \"Reboot\")"},
        {"{\"policy\": [{}, {}]}", "key 'policy': expected a list of exactly one policy"},
        {"{\"autoAction\": {\"actionType\": \"ScaleOut\"}}", "key 'autoCondition': required"},
        {"{\"autoCondition\": {\"operator\": \">\", \"operand\": \"1\"}, \"autoAction\": "
         "{\"actionType\": \"ScaleOut\"}}",
         "key 'autoCondition.metric'"},
        {"{\"autoCondition\": {\"metric\": \"cpu\", \"operater\": \">\"}}",
         "did you mean 'operator'?"},
        {"[]", "tumblebug: expected a JSON object"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct policy p;
        char err[512] = "";
        if (import(bad[i].json, &p, err) != -1 || !strstr(err, "tumblebug: ") ||
            !strstr(err, bad[i].want))
            fail_msg("case %zu: got '%s', want '%s'", i, err, bad[i].want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_policy),
        cmocka_unit_test(test_every_action_and_defaults),
        cmocka_unit_test(test_refusals_name_key_and_value),
        cmocka_unit_test(test_matching),
        cmocka_unit_test(test_load_dir),
        cmocka_unit_test(test_starter_policies_load),
        cmocka_unit_test(test_tumblebug_import),
        cmocka_unit_test(test_tumblebug_refusals),
        cmocka_unit_test(test_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
