/* The notifier's routing file: what parses, what inherits, how alerts are routed, and that
 * every refusal names the file and the key path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "alarm/notify/internal.h"

static const char *full =
    "{\"global\":{\"external_url\":\"http://a.example\"},"
    "\"route\":{\"receiver\":\"team\",\"group_by\":[\"mci\"],\"group_wait\":\"10s\","
    "\"routes\":[{\"matchers\":[\"severity=~\\\"crit.*\\\"\"],\"receiver\":\"pager\","
    "\"continue\":true,\"repeat_interval\":\"1h\"},"
    "{\"matchers\":[\"ns!=test\"],\"group_by\":[\"...\"]}]},"
    "\"receivers\":[{\"name\":\"team\",\"slack_configs\":[{\"api_url\":\"http://127.0.0.1:1/s\"}]},"
    "{\"name\":\"pager\",\"webhook_configs\":[{\"url\":\"http://127.0.0.1:1/w\","
    "\"send_resolved\":false}]}]}";

static void test_full_config(void **state)
{
    char err[NF_ERRLEN] = "";
    struct nf_config *c = nf_config_parse(full, strlen(full), "routing.json", err, sizeof(err));
    assert_non_null(c);
    assert_string_equal(c->external_url, "http://a.example");
    assert_int_equal(c->root.group_wait_ms, 10000);
    assert_int_equal(c->root.group_interval_ms, 300000); /* Alertmanager's defaults */
    assert_int_equal(c->root.repeat_interval_ms, 4 * 3600000);
    assert_int_equal(c->root.nroutes, 2);
    struct nf_route *pager = &c->root.routes[0], *all = &c->root.routes[1];
    assert_int_equal(pager->group_wait_ms, 10000); /* inherited */
    assert_int_equal(pager->repeat_interval_ms, 3600000);
    assert_int_equal(pager->ngroup_by, 1);
    assert_string_equal(pager->group_by[0], "mci");
    assert_string_equal(pager->key, "{}/{severity=~\"crit.*\"}");
    assert_string_equal(all->receiver_name, "team");
    assert_true(all->group_all);
    assert_false(c->receivers[1].ints[0].o.webhook.send_resolved);
    assert_true(c->receivers[0].ints[0].o.slack.send_resolved);
    nf_config_unref(c);
}

struct seen {
    const char *receivers[8];
    size_t n;
};

static void collect(void *arg, struct nf_route *r)
{
    struct seen *s = arg;
    s->receivers[s->n++] = r->receiver->name;
}

static void test_routing(void **state)
{
    char err[NF_ERRLEN];
    struct nf_config *c = nf_config_parse(full, strlen(full), "routing.json", err, sizeof(err));
    assert_non_null(c);
    struct alarm_label crit[] = {{"mci", "m1"}, {"ns", "prod"}, {"severity", "critical"}};
    struct nf_labels l = {3, crit};
    struct seen s = {.n = 0};
    nf_route_match(&c->root, &l, collect, &s);
    assert_int_equal(s.n, 2); /* continue: the pager route and the next sibling */
    assert_string_equal(s.receivers[0], "pager");
    assert_string_equal(s.receivers[1], "team");
    struct alarm_label test[] = {{"mci", "m1"}, {"ns", "test"}, {"severity", "warning"}};
    l.kv = test;
    s.n = 0;
    nf_route_match(&c->root, &l, collect, &s);
    assert_int_equal(s.n, 1); /* no child matches: the root takes it */
    assert_string_equal(s.receivers[0], "team");
    nf_config_unref(c);
}

static void refused(const char *text, const char *want1, const char *want2)
{
    char err[NF_ERRLEN] = "";
    struct nf_config *c = nf_config_parse(text, strlen(text), "routing.json", err, sizeof(err));
    if (c)
        fail_msg("accepted: %s", text);
    if (!strstr(err, "routing.json") || !strstr(err, want1) || !strstr(err, want2))
        fail_msg("error \"%s\" should name routing.json, %s and %s", err, want1, want2);
}

static void test_refusals(void **state)
{
    refused("{\"route\":{\"receiver\":\"a\"},\"receivers\":[{\"name\":\"a\",\"slack_configs\":"
            "[{\"api_url\":\"http://x\",\"colour\":\"red\"}]}]}",
            "receivers[0].slack_configs[0]", "colour");
    refused("{\"route\":{\"receiver\":\"a\",\"routes\":[{\"group_wait\":\"soon\"}]},"
            "\"receivers\":[{\"name\":\"a\"}]}",
            "route.routes[0]", "group_wait");
    refused("{\"route\":{\"receiver\":\"a\",\"routes\":[{},{\"matchers\":[\"vm=~\\\"(\\\"\"]}]},"
            "\"receivers\":[{\"name\":\"a\"}]}",
            "route.routes[1]", "matchers[0]");
    refused("{\"route\":{\"receiver\":\"a\"},\"receivers\":[{\"name\":\"a\",\"email_configs\":"
            "[{\"to\":\"x@y\",\"from\":\"a@b\",\"smarthost\":\"nohostport\"}]}]}",
            "email_configs[0]", "smarthost");
    refused("{\"route\":{\"receiver\":\"a\"},\"receivers\":[{\"name\":\"a\",\"webhook_configs\":"
            "[{\"url\":\"ftp://x\"}]}]}",
            "webhook_configs[0]", "url");
    refused("{\"route\":{\"receiver\":\"a\"},\"receivers\":[{\"name\":\"a\",\"webhook_configs\":"
            "[{\"url\":\"http://x:99999/hook\"}]}]}",
            "webhook_configs[0]", "port");
    refused("{\"route\":{\"receiver\":\"a\"},\"receivers\":[{\"name\":\"a\",\"email_configs\":"
            "[{\"to\":\"x@y\",\"from\":\"a@b\",\"smarthost\":\"h:25\",\"ca_file\":"
            "\"/nonexistent/ca.pem\"}]}]}",
            "key 'ca_file'", "/nonexistent/ca.pem");
    refused("{\"route\":{\"receiver\":\"nobody\"},\"receivers\":[{\"name\":\"a\"}]}", "nobody",
            "not defined");
    refused(
        "{\"route\":{\"receiver\":\"a\"},\"receivers\":[{\"name\":\"a\"}],\"inhibit_rules\":[]}",
        "inhibit_rules", "unknown");
    refused(
        "{\"route\":{\"receiver\":\"a\",\"matchers\":[\"a=b\"]},\"receivers\":[{\"name\":\"a\"}]}",
        "route", "matchers");
    refused("{\"route\":{\"receiver\":\"a\",\"repeat_interval\":\"-5m\"},\"receivers\":[{\"name\":"
            "\"a\"}]}",
            "route", "repeat_interval");
    refused("{\"route\":{\"receiver\":\"a\"},\"receivers\":[{\"name\":\"a\"},{\"name\":\"a\"}]}",
            "receivers[1]", "twice");
    refused("{\"route\":", "invalid JSON", "1:");
}

static void test_matchers(void **state)
{
    char err[NF_ERRLEN];
    struct nf_matcher m;
    struct alarm_label kv[] = {{"severity", "critical"}, {"vm", "vm1"}};
    struct nf_labels l = {2, kv};
    assert_int_equal(nf_matcher_parse(&m, "severity=~\"crit|critical\"", err, sizeof(err)), 0);
    assert_true(nf_matcher_matches(&m, &l));
    nf_matcher_free(&m);
    /* Anchored like Alertmanager's: "crit" alone does not match "critical". */
    assert_int_equal(nf_matcher_parse(&m, "severity=~crit", err, sizeof(err)), 0);
    assert_false(nf_matcher_matches(&m, &l));
    nf_matcher_free(&m);
    assert_int_equal(nf_matcher_parse(&m, "missing!=\"\"", err, sizeof(err)), 0);
    assert_false(nf_matcher_matches(&m, &l)); /* absent reads as "" */
    nf_matcher_free(&m);
    assert_int_equal(nf_matcher_parse(&m, "vm!~\"vm[0-9]\"", err, sizeof(err)), 0);
    assert_false(nf_matcher_matches(&m, &l));
    nf_matcher_free(&m);
    /* Patterns whose compilation would take exponential memory are refused, as RE2 does. */
    assert_int_equal(nf_matcher_parse(&m, "vm=~\"a+++++\"", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "stacked"));
    assert_int_equal(nf_matcher_parse(&m, "vm=~\"(a{50}){50}\"", err, sizeof(err)), -1);
    assert_int_equal(nf_matcher_parse(&m, "vm=~\"a{1000}\"", err, sizeof(err)), -1);
    assert_int_equal(nf_matcher_parse(&m, "vm=~\"[0-9]{3}-[a-z+*]{2,4}\\\\+?\"", err, sizeof(err)),
                     0);
    nf_matcher_free(&m);
    assert_int_equal(nf_matcher_parse(&m, "=x", err, sizeof(err)), -1);
    assert_int_equal(nf_matcher_parse(&m, "vm~x", err, sizeof(err)), -1);
}

static void test_silence_refusals(void **state)
{
    struct nf_silences s = {.dir = "."};
    char id[37], err[NF_ERRLEN];
    const char *no_end = "{\"matchers\":[{\"name\":\"vm\",\"value\":\"vm1\"}]}";
    assert_int_equal(nf_silences_add_json(&s, no_end, strlen(no_end), 0, id, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "endsAt"));
    const char *bad_time = "{\"matchers\":[\"vm=vm1\"],\"endsAt\":\"tomorrow\"}";
    assert_int_equal(nf_silences_add_json(&s, bad_time, strlen(bad_time), 0, id, err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "endsAt"));
    const char *unknown = "{\"matchers\":[\"vm=vm1\"],\"endsAt\":\"2099-01-01T00:00:00Z\",\"x\":1}";
    assert_int_equal(nf_silences_add_json(&s, unknown, strlen(unknown), 0, id, err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "'x'"));
    assert_int_equal(s.n, 0);
}

/* A silence named by its creator (the controller gives every engine the same id): created
 * under that id, replaced when posted again (also at the cap), refused when the id could not
 * go into a URL path. */
static void test_silence_ids(void **state)
{
    char dir[] = "/tmp/dsf-silence-XXXXXX", id[37], err[NF_ERRLEN], path[64];
    assert_non_null(mkdtemp(dir));
    struct nf_silences s = {.dir = strdup(dir), .max = 1};
    const char *named = "{\"id\":\"ab-12\",\"matchers\":[\"vm=vm1\"],"
                        "\"endsAt\":\"2099-01-01T00:00:00Z\",\"comment\":\"first\"}";
    assert_int_equal(nf_silences_add_json(&s, named, strlen(named), 0, id, err, sizeof(err)), 0);
    assert_string_equal(id, "ab-12");
    const char *again = "{\"id\":\"ab-12\",\"matchers\":[\"vm=vm2\"],"
                        "\"endsAt\":\"2099-01-01T00:00:00Z\",\"comment\":\"second\"}";
    assert_int_equal(nf_silences_add_json(&s, again, strlen(again), 0, id, err, sizeof(err)), 0);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.v[0].comment, "second");
    const char *other = "{\"matchers\":[\"vm=vm3\"],\"endsAt\":\"2099-01-01T00:00:00Z\"}";
    assert_int_equal(nf_silences_add_json(&s, other, strlen(other), 0, id, err, sizeof(err)),
                     NF_SILENCE_MAX);
    s.max = 10;
    assert_int_equal(nf_silences_add_json(&s, other, strlen(other), 0, id, err, sizeof(err)), 0);
    assert_int_equal(strlen(id), 36);
    assert_string_not_equal(id, "ab-12");
    const char *bad[] = {
        "{\"id\":\"../x\",\"matchers\":[\"vm=a\"],\"endsAt\":\"2099-01-01T00:00:00Z\"}",
        "{\"id\":7,\"matchers\":[\"vm=a\"],\"endsAt\":\"2099-01-01T00:00:00Z\"}",
        "{\"id\":\"\",\"matchers\":[\"vm=a\"],\"endsAt\":\"2099-01-01T00:00:00Z\"}"};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(nf_silences_add_json(&s, bad[i], strlen(bad[i]), 0, id, err, sizeof(err)),
                         NF_SILENCE_INVALID);
        assert_non_null(strstr(err, "'id'"));
    }
    assert_int_equal(s.n, 2);
    nf_silences_close(&s);
    snprintf(path, sizeof(path), "%s/silences.json", dir);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_config),      cmocka_unit_test(test_routing),
        cmocka_unit_test(test_refusals),         cmocka_unit_test(test_matchers),
        cmocka_unit_test(test_silence_refusals), cmocka_unit_test(test_silence_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
