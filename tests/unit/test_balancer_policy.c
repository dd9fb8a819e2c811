/* balancer/policy.c: each scaling rule, and the scale.* configuration it is filled from. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "balancer/policy.h"
#include "balancer/runner.h"

#define SEC 1000LL
#define T0 (1000 * SEC)

static struct scale_policy policy(void)
{
    return (struct scale_policy){.min = 1,
                                 .max = 8,
                                 .target_points_per_s = 50000,
                                 .target_cpu = 0.7,
                                 .target_lag = 100000,
                                 .in_ratio = 0.5,
                                 .cooldown_out_ms = 30 * SEC,
                                 .cooldown_in_ms = 120 * SEC,
                                 .sustain_ms = 10 * SEC};
}

/* n members, each with pps points/s and cpu cores; lag unknown (an MQTT pool). */
static struct scale_load load(int n, double pps, double cpu)
{
    return (struct scale_load){.members = n, .points_per_s = n * pps, .cpu = n * cpu, .lag = -1};
}

/* Decides every second from t to t + secs with the same load; the last decision. */
static struct scale_decision hold(const struct scale_policy *p, struct scale_state *s,
                                  struct scale_load l, int64_t t, int secs)
{
    struct scale_decision d = {0};
    for (int i = 0; i <= secs; i++)
        d = scale_decide(p, s, &l, t + i * SEC);
    return d;
}

static void test_out_after_sustain(void **st)
{
    struct scale_policy p = policy();
    struct scale_state s = {0};
    struct scale_decision d = hold(&p, &s, load(2, 60000, 0.3), T0, 9);
    assert_int_equal(d.replicas, 2); /* above target for 9 s: not yet */
    assert_string_equal(d.reason, "steady");
    d = scale_decide(&p, &s, &(struct scale_load){2, 120000, 0.6, -1, 0}, T0 + 10 * SEC);
    assert_int_equal(d.replicas, 3); /* one member at a time */
    assert_string_equal(d.reason, "points_per_s");
}

static void test_blip_restarts_sustain(void **st)
{
    struct scale_policy p = policy();
    struct scale_state s = {0};
    hold(&p, &s, load(2, 60000, 0.3), T0, 8);
    scale_decide(&p, &s, &(struct scale_load){2, 60000, 0.6, -1, 0}, T0 + 9 * SEC); /* 30000 */
    struct scale_decision d = hold(&p, &s, load(2, 60000, 0.3), T0 + 10 * SEC, 9);
    assert_int_equal(d.replicas, 2);
    d = hold(&p, &s, load(2, 60000, 0.3), T0 + 20 * SEC, 0);
    assert_int_equal(d.replicas, 3);
}

static void test_out_on_cpu(void **st)
{
    struct scale_policy p = policy();
    struct scale_state s = {0};
    struct scale_decision d = hold(&p, &s, load(3, 1000, 0.9), T0, 10);
    assert_int_equal(d.replicas, 4);
    assert_string_equal(d.reason, "cpu");
}

static void test_cooldown_out(void **st)
{
    struct scale_policy p = policy();
    struct scale_state s = {0};
    assert_int_equal(hold(&p, &s, load(2, 60000, 0.3), T0, 10).replicas, 3);
    /* Still above with 3 (the new one has not taken its share): the cooldown holds it. */
    struct scale_decision d = hold(&p, &s, load(3, 60000, 0.3), T0 + 11 * SEC, 18);
    assert_int_equal(d.replicas, 3);
    assert_string_equal(d.reason, "cooldown");
    d = hold(&p, &s, load(3, 60000, 0.3), T0 + 30 * SEC, 10);
    assert_int_equal(d.replicas, 4);
}

static void test_in_below_ratio(void **st)
{
    struct scale_policy p = policy();
    struct scale_state s = {0};
    /* 30000 points/s is below the target but above target * in_ratio: hysteresis band. */
    struct scale_decision d = hold(&p, &s, load(4, 30000, 0.2), T0, 300);
    assert_int_equal(d.replicas, 4);
    assert_string_equal(d.reason, "steady");
    /* CPU is low but points/s is not: every criterion must be low to scale in. */
    d = hold(&p, &s, load(4, 30000, 0.1), T0 + 301 * SEC, 60);
    assert_int_equal(d.replicas, 4);
    d = hold(&p, &s, load(4, 20000, 0.2), T0 + 400 * SEC, 9);
    assert_int_equal(d.replicas, 4);
    d = hold(&p, &s, load(4, 20000, 0.2), T0 + 410 * SEC, 0);
    assert_int_equal(d.replicas, 3);
}

static void test_cooldown_in(void **st)
{
    struct scale_policy p = policy();
    struct scale_state s = {0};
    assert_int_equal(hold(&p, &s, load(4, 1000, 0.1), T0, 10).replicas, 3);
    struct scale_decision d = hold(&p, &s, load(3, 1000, 0.1), T0 + 11 * SEC, 118);
    assert_int_equal(d.replicas, 3);
    assert_string_equal(d.reason, "cooldown");
    assert_int_equal(hold(&p, &s, load(3, 1000, 0.1), T0 + 130 * SEC, 0).replicas, 2);
    /* A scale out also holds the next scale in for cooldown_in. */
    struct scale_state s2 = {0};
    assert_int_equal(hold(&p, &s2, load(2, 60000, 0.1), T0, 10).replicas, 3);
    d = hold(&p, &s2, load(3, 1000, 0.1), T0 + 11 * SEC, 100);
    assert_string_equal(d.reason, "cooldown");
    assert_int_equal(hold(&p, &s2, load(3, 1000, 0.1), T0 + 131 * SEC, 0).replicas, 2);
}

static void test_min_max(void **st)
{
    struct scale_policy p = policy();
    struct scale_state s = {0};
    struct scale_decision d = hold(&p, &s, load(8, 90000, 0.9), T0, 60);
    assert_int_equal(d.replicas, 8);
    assert_string_equal(d.reason, "max");
    d = hold(&p, &s, load(1, 10, 0.01), T0 + 100 * SEC, 600);
    assert_int_equal(d.replicas, 1);
    assert_string_equal(d.reason, "min");
    /* Outside the bounds (a changed configuration, a crashed member): back at once. */
    d = scale_decide(&p, &s, &(struct scale_load){0, 0, 0, -1, 0}, T0 + 800 * SEC);
    assert_int_equal(d.replicas, 1);
    assert_string_equal(d.reason, "min");
    d = scale_decide(&p, &s, &(struct scale_load){10, 0, 0, -1, 0}, T0 + 801 * SEC);
    assert_int_equal(d.replicas, 8);
    assert_string_equal(d.reason, "max");
    p.min = 3;
    d = scale_decide(&p, &s, &(struct scale_load){1, 0, 0, -1, 0}, T0 + 802 * SEC);
    assert_int_equal(d.replicas, 3);
}

static void test_kafka_lag_and_partitions(void **st)
{
    struct scale_policy p = policy();
    struct scale_state s = {0};
    struct scale_load l = {
        .members = 2, .points_per_s = 100, .cpu = 0.1, .lag = 500000, .partitions = 3};
    struct scale_decision d = {0};
    for (int i = 0; i <= 10; i++)
        d = scale_decide(&p, &s, &l, T0 + i * SEC);
    assert_int_equal(d.replicas, 3);
    assert_string_equal(d.reason, "lag");
    /* At the partition count a fourth consumer would sit idle: never beyond it. */
    l.members = 3;
    for (int i = 0; i <= 300; i++)
        d = scale_decide(&p, &s, &l, T0 + (100 + i) * SEC);
    assert_int_equal(d.replicas, 3);
    assert_string_equal(d.reason, "partitions");
    l.members = 5;
    d = scale_decide(&p, &s, &l, T0 + 500 * SEC);
    assert_int_equal(d.replicas, 3);
    /* An unknown lag (-1) neither scales out nor holds a scale in back. */
    struct scale_state s2 = {0};
    l = (struct scale_load){.members = 3, .points_per_s = 300, .cpu = 0.3, .lag = -1};
    for (int i = 0; i <= 10; i++)
        d = scale_decide(&p, &s2, &l, T0 + i * SEC);
    assert_int_equal(d.replicas, 2);
}

static void test_no_criterion(void **st)
{
    struct scale_policy p = policy();
    p.target_points_per_s = p.target_cpu = 0;
    p.target_lag = 0;
    struct scale_state s = {0};
    struct scale_decision d = hold(&p, &s, load(3, 1e9, 64), T0, 600);
    assert_int_equal(d.replicas, 3);
    assert_string_equal(d.reason, "steady");
}

static void test_config(void **st)
{
    struct runner_config rc = {0};
    struct scale_config sc = {0};
    struct dsf_cfg_section secs[RUNNER_CONFIG_SECTIONS + 1] = {0};
    char err[DSF_CFG_ERRLEN];
    int n = runner_config_sections(secs, RUNNER_CONFIG_SECTIONS, &rc, &sc, err, sizeof(err));
    assert_int_equal(n, RUNNER_CONFIG_SECTIONS);
    assert_int_equal(dsf_cfg_defaults(secs, err, sizeof(err)), 0);
    struct scale_policy p;
    scale_policy_from_config(&sc, &p);
    struct scale_policy want = policy();
    assert_int_equal(p.min, want.min);
    assert_int_equal(p.max, want.max);
    assert_true(p.target_points_per_s == want.target_points_per_s);
    assert_true(p.target_cpu == want.target_cpu);
    assert_true(p.in_ratio == want.in_ratio);
    assert_int_equal(p.cooldown_out_ms, want.cooldown_out_ms);
    assert_int_equal(p.cooldown_in_ms, want.cooldown_in_ms);
    assert_int_equal(p.sustain_ms, want.sustain_ms);
    assert_string_equal(rc.kind, "none");
    assert_int_equal(runner_config_validate(&rc, &sc, err, sizeof(err)), 0);
    const char *json = "{\"runner\": {\"kind\": \"kubernetes\", \"kubernetes\": "
                       "{\"deployment\": \"coll\", \"kubeconfig\": \"/k\", "
                       "\"federation\": {\"wait_timeout\": \"5s\"}}}, \"scale\": {\"max\": 4}}";
    assert_int_equal(dsf_cfg_load_json(secs, json, strlen(json), "t", err, sizeof(err)), 0);
    assert_string_equal(rc.k8s.name, "coll");
    assert_int_equal(rc.k8s.fed.wait_timeout_ms, 5000);
    assert_int_equal(sc.max, 4);
    assert_int_equal(dsf_cfg_set(secs, "runner.local.nope=1", "--set", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "runner.local.nope"));
    assert_int_equal(dsf_cfg_set(secs, "scale.sustian=1s", "--set", err, sizeof(err)), -1);
    assert_int_equal(dsf_cfg_set(secs, "runner.kind=docker", "--set", err, sizeof(err)), 0);
    assert_int_equal(runner_config_validate(&rc, &sc, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "runner.kind"));
    assert_int_equal(dsf_cfg_set(secs, "runner.kind=local", "--set", err, sizeof(err)), 0);
    assert_int_equal(dsf_cfg_set(secs, "scale.min=5", "--set", err, sizeof(err)), 0);
    assert_int_equal(runner_config_validate(&rc, &sc, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "scale.min"));
    dsf_cfg_free(secs);
    runner_config_free(&rc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_out_after_sustain), cmocka_unit_test(test_blip_restarts_sustain),
        cmocka_unit_test(test_out_on_cpu),        cmocka_unit_test(test_cooldown_out),
        cmocka_unit_test(test_in_below_ratio),    cmocka_unit_test(test_cooldown_in),
        cmocka_unit_test(test_min_max),           cmocka_unit_test(test_kafka_lag_and_partitions),
        cmocka_unit_test(test_no_criterion),      cmocka_unit_test(test_config),
    };
    return cmocka_run_group_tests_name("balancer_policy", tests, NULL, NULL);
}
