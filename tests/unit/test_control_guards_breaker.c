/* control/guards, second half: the storm breaker, replay, the JSON and bounded memory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "control/guards.h"

#define T0 1796601600000LL /* 2026-12-07T00:00:00.000Z */
#define SEC 1000LL
#define MIN (60 * SEC)
#define HOUR (60 * MIN)

/* What guards_tick told. */
struct calls {
    int n, open;
    char scope[64], why[512];
};

static void record(void *arg, const char *scope, int open, const char *why)
{
    struct calls *c = arg;
    c->n++;
    c->open = open;
    snprintf(c->scope, sizeof(c->scope), "%s", scope);
    snprintf(c->why, sizeof(c->why), "%s", why);
}

/* An MCI of n VMs vm1..vmn, all healthy. */
static void fleet_add(struct guards *g, const char *mci, int n)
{
    guards_mci_size(g, "ns1", mci, n);
    for (int i = 1; i <= n; i++) {
        char vm[16];
        snprintf(vm, sizeof(vm), "vm%d", i);
        guards_vm_health(g, "ns1", mci, vm, 1, T0);
    }
}

/* vm1..vmn of mci become healthy or not at now. */
static void health(struct guards *g, const char *mci, int n, int healthy, int64_t now)
{
    for (int i = 1; i <= n; i++) {
        char vm[16];
        snprintf(vm, sizeof(vm), "vm%d", i);
        guards_vm_health(g, "ns1", mci, vm, healthy, now);
    }
}

/* m1 and m2 of 4 VMs each: the fleet has 8. */
static struct guards *two_mcis(void)
{
    struct guards *g = guards_new(NULL);
    fleet_add(g, "m1", 4);
    fleet_add(g, "m2", 4);
    return g;
}

static void test_trip_3_of_4(void **state)
{
    (void)state;
    struct guards *g = two_mcis();
    struct calls c = {0};
    health(g, "m1", 3, 0, T0 + SEC);
    guards_tick(g, T0 + SEC, record, &c);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.open, 1);
    assert_string_equal(c.scope, "ns1/m1");
    assert_non_null(strstr(c.why, "3 of 4 VMs of ns1/m1 went unhealthy within 60s"));
    assert_true(guards_breaker_open(g, "ns1", "m1"));
    assert_false(guards_breaker_open(g, "ns1", "m2"));
    assert_false(guards_breaker_open(g, "", ""));
    guards_tick(g, T0 + 2 * SEC, record, &c);
    assert_int_equal(c.n, 1); /* no change, no call */

    char why[512];
    struct guard_target t = {"p", "ns1", "m1", "vm4", 1};
    assert_int_equal(guards_check(g, &t, 0, T0 + 2 * SEC, why, sizeof(why)), GUARD_BREAKER);
    assert_non_null(strstr(why, "breaker ns1/m1 open since 2026-12-07T00:00:01.000Z: 3 of 4"));
    t.mci = "m2";
    assert_int_equal(guards_check(g, &t, 0, T0 + 2 * SEC, why, sizeof(why)), GUARD_PASS);
    guards_free(g);
}

static void test_no_trip(void **state)
{
    (void)state;
    struct guards *g = two_mcis();
    struct calls c = {0};
    health(g, "m1", 1, 0, T0 + SEC);
    guards_tick(g, T0 + SEC, record, &c);
    assert_int_equal(c.n, 0);
    health(g, "m1", 2, 0, T0 + 2 * SEC); /* 2 of 4: not more than half */
    guards_tick(g, T0 + 2 * SEC, record, &c);
    assert_int_equal(c.n, 0);
    /* The third an hour later: only one went unhealthy within the window. */
    guards_vm_health(g, "ns1", "m1", "vm3", 0, T0 + HOUR);
    guards_tick(g, T0 + HOUR, record, &c);
    assert_int_equal(c.n, 0);
    assert_false(guards_breaker_open(g, "ns1", "m1"));
    guards_free(g);
}

/* An MCI of 2 is below breaker_min_vms (3): not its own breaker, but part of the fleet. */
static void test_small_mci(void **state)
{
    (void)state;
    struct guards *g = guards_new(NULL);
    fleet_add(g, "small", 2);
    fleet_add(g, "m1", 4);
    struct calls c = {0};
    health(g, "small", 2, 0, T0 + SEC);
    guards_tick(g, T0 + SEC, record, &c);
    assert_int_equal(c.n, 0); /* 2 of 2, but too small; 2 of 6 for the fleet */
    health(g, "m1", 2, 0, T0 + 2 * SEC);
    guards_tick(g, T0 + 2 * SEC, record, &c);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.scope, "fleet");
    assert_int_equal(c.open, 1);
    assert_non_null(strstr(c.why, "4 of 6 VMs of the fleet went unhealthy within 60s"));
    assert_true(guards_breaker_open(g, "ns1", "m1"));
    assert_true(guards_breaker_open(g, "", ""));
    guards_free(g);
}

/* Closes after breaker_hold of continuous health; a relapse during the hold restarts it. */
static void test_close_after_hold(void **state)
{
    (void)state;
    struct guards *g = two_mcis();
    struct calls c = {0};
    health(g, "m1", 3, 0, T0);
    guards_tick(g, T0, record, &c);
    assert_int_equal(c.n, 1);
    int64_t r = T0 + 10 * SEC;
    health(g, "m1", 3, 1, r);
    guards_tick(g, r, record, &c);
    guards_tick(g, r + 30 * SEC, record, &c);
    health(g, "m1", 3, 0, r + 30 * SEC); /* relapse */
    guards_tick(g, r + 30 * SEC, record, &c);
    health(g, "m1", 3, 1, r + 31 * SEC);
    guards_tick(g, r + 31 * SEC, record, &c);
    guards_tick(g, r + MIN, record, &c);
    assert_int_equal(c.n, 1);
    assert_true(guards_breaker_open(g, "ns1", "m1"));
    guards_tick(g, r + 31 * SEC + MIN - 1, record, &c);
    assert_int_equal(c.n, 1);
    guards_tick(g, r + 31 * SEC + MIN, record, &c);
    assert_int_equal(c.n, 2);
    assert_int_equal(c.open, 0);
    assert_string_equal(c.scope, "ns1/m1");
    assert_non_null(strstr(c.why, "healthy for 60s: 0 of 4 VMs unhealthy"));
    assert_false(guards_breaker_open(g, "ns1", "m1"));
    guards_free(g);
}

/* A blind observer opens at once and closes after breaker_hold healthy. */
static void test_observer(void **state)
{
    (void)state;
    struct guards *g = two_mcis();
    struct calls c = {0};
    guards_observer(g, "bus", 0, T0);
    assert_true(guards_breaker_open(g, "ns1", "m2"));
    assert_true(guards_breaker_open(g, "", ""));
    guards_tick(g, T0, record, &c);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.open, 1);
    assert_string_equal(c.scope, "observer:bus");
    assert_non_null(strstr(c.why, "observer bus unhealthy since 2026-12-07T00:00:00.000Z"));
    guards_observer(g, "bus", 1, T0 + 5 * SEC);
    guards_tick(g, T0 + 5 * SEC + MIN - 1, record, &c);
    assert_int_equal(c.n, 1);
    assert_true(guards_breaker_open(g, "ns1", "m2"));
    guards_tick(g, T0 + 5 * SEC + MIN, record, &c);
    assert_int_equal(c.n, 2);
    assert_int_equal(c.open, 0);
    assert_string_equal(c.scope, "observer:bus");
    assert_false(guards_breaker_open(g, "ns1", "m2"));
    guards_free(g);
}

/* An MCI's breaker does not close while an observer is blind, however healthy its VMs look. */
static void test_observer_keeps_mci_open(void **state)
{
    (void)state;
    struct guards *g = two_mcis();
    struct calls c = {0};
    health(g, "m1", 3, 0, T0);
    guards_tick(g, T0, record, &c);
    guards_observer(g, "collectors", 0, T0 + SEC);
    health(g, "m1", 3, 1, T0 + SEC);
    guards_tick(g, T0 + SEC, record, &c);
    guards_tick(g, T0 + 5 * MIN, record, &c);
    assert_int_equal(c.n, 2); /* m1 open, then observer:collectors open */
    guards_observer(g, "collectors", 1, T0 + 5 * MIN);
    guards_tick(g, T0 + 5 * MIN, record, &c);
    guards_tick(g, T0 + 6 * MIN - 1, record, &c);
    assert_int_equal(c.n, 2);
    assert_true(guards_breaker_open(g, "ns1", "m1"));
    guards_tick(g, T0 + 6 * MIN, record, &c);
    assert_int_equal(c.n, 4); /* both close */
    assert_false(guards_breaker_open(g, "ns1", "m1"));
    assert_false(guards_breaker_open(g, "", ""));
    guards_free(g);
}

/* A restarted controller replays its audit's begin/end: the cooldowns, holds and rate hold. */
static void test_replay(void **state)
{
    (void)state;
    struct guards *g = guards_new(NULL);
    struct guard_target t = {"p", "ns1", "m1", "vm1", 1};
    guards_begin(g, &t, T0);
    guards_end(g, &t, T0 + 30 * SEC, 0);
    struct guard_target h = {"p", "ns1", "m2", "vm1", 1};
    guards_begin(g, &h, T0 + MIN);
    guards_end(g, &h, T0 + 2 * MIN, T0 + HOUR);
    int64_t now = T0 + 5 * MIN;
    char why[512];
    assert_int_equal(guards_check(g, &t, 10 * MIN, now, why, sizeof(why)), GUARD_COOLDOWN);
    assert_non_null(strstr(why, "until 2026-12-07T00:10:30.000Z"));
    assert_int_equal(guards_check(g, &t, 10 * MIN, T0 + 30 * SEC + 10 * MIN, why, sizeof(why)),
                     GUARD_PASS);
    assert_int_equal(guards_check(g, &h, 0, now, why, sizeof(why)), GUARD_HOLD);
    json_t *j = guards_json(g, now);
    assert_int_equal(json_integer_value(json_object_get(j, "actions_last_hour")), 2);
    json_decref(j);
    guards_free(g);
}

static json_t *target_of(json_t *state, const char *target)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(state, "targets"), i,
                       e) if (strcmp(json_string_value(json_object_get(e, "target")), target) ==
                              0) return e;
    return NULL;
}

static void test_json(void **state)
{
    (void)state;
    struct guards *g = two_mcis();
    struct guard_target t = {"p", "ns1", "m1", "vm1", 1};
    assert_int_equal(guards_check(g, &t, 10 * MIN, T0, NULL, 0), GUARD_PASS);
    guards_begin(g, &t, T0);
    guards_end(g, &t, T0 + 30 * SEC, T0 + HOUR);
    guards_observer(g, "bus", 0, T0 + MIN);
    guards_tick(g, T0 + MIN, NULL, NULL);
    json_t *j = guards_json(g, T0 + MIN);
    char *text = json_dumps(j, 0);
    json_decref(j);
    json_error_t err;
    json_t *s = json_loads(text, 0, &err);
    free(text);
    assert_non_null(s);
    assert_true(json_is_false(json_object_get(s, "paused")));
    json_t *br = json_object_get(s, "breakers");
    assert_int_equal(json_array_size(br), 2);
    json_t *fleet = json_array_get(br, 0), *bus = json_array_get(br, 1);
    assert_string_equal(json_string_value(json_object_get(fleet, "scope")), "fleet");
    assert_true(json_is_false(json_object_get(fleet, "open")));
    assert_string_equal(json_string_value(json_object_get(bus, "scope")), "observer:bus");
    assert_true(json_is_true(json_object_get(bus, "open")));
    assert_string_equal(json_string_value(json_object_get(bus, "since")),
                        "2026-12-07T00:01:00.000Z");
    assert_non_null(strstr(json_string_value(json_object_get(bus, "why")), "observer bus"));
    json_t *e = target_of(s, "vm1");
    assert_non_null(e);
    assert_string_equal(json_string_value(json_object_get(e, "ns")), "ns1");
    assert_string_equal(json_string_value(json_object_get(e, "mci")), "m1");
    assert_true(json_is_false(json_object_get(e, "busy")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(e, "cooldowns"), "p")),
                        "2026-12-07T00:10:30.000Z");
    assert_string_equal(json_string_value(json_object_get(e, "hold_until")),
                        "2026-12-07T01:00:00.000Z");
    assert_int_equal(json_integer_value(json_object_get(s, "actions_last_hour")), 1);
    json_t *cfg = json_object_get(s, "config");
    assert_int_equal(json_integer_value(json_object_get(cfg, "max_concurrent")), 4);
    assert_int_equal(json_integer_value(json_object_get(cfg, "breaker_hold_ms")), 60000);
    assert_true(json_real_value(json_object_get(cfg, "mci_fraction")) == 0.34);
    json_decref(s);
    guards_free(g);
}

static json_int_t tracked(struct guards *g, const char *what, int64_t now)
{
    json_t *j = guards_json(g, now);
    json_int_t n = json_integer_value(json_object_get(json_object_get(j, "tracked"), what));
    if (strcmp(what, "targets") == 0)
        assert_int_equal(json_array_size(json_object_get(j, "targets")), n);
    json_decref(j);
    return n;
}

/* Thousands of targets acted on once: once their cooldowns are over they are gone. */
static void test_bounded(void **state)
{
    (void)state;
    struct guard_config cfg;
    guards_config_defaults(&cfg);
    cfg.rate_per_hour = 100000;
    cfg.mci_fraction = 1;
    struct guards *g = guards_new(&cfg);
    char mci[32], vm[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(mci, sizeof(mci), "m%d", i / 10);
        snprintf(vm, sizeof(vm), "vm%d", i);
        struct guard_target t = {"p", "ns1", mci, vm, 1};
        int64_t now = T0 + i * SEC;
        guards_vm_health(g, "ns1", mci, vm, 1, now);
        assert_int_equal(guards_check(g, &t, 5 * MIN, now, NULL, 0), GUARD_PASS);
        guards_begin(g, &t, now);
        guards_end(g, &t, now + 10, 0);
        if (i % 60 == 0)
            guards_tick(g, now, NULL, NULL);
    }
    int64_t last = T0 + 4999 * SEC;
    assert_true(tracked(g, "targets", last) > 500);
    assert_int_equal(tracked(g, "vms", last), 5000);
    guards_tick(g, last + 11 * MIN, NULL, NULL);
    assert_int_equal(tracked(g, "targets", last + 11 * MIN), 0);
    for (int i = 0; i < 5000; i++) {
        snprintf(mci, sizeof(mci), "m%d", i / 10);
        snprintf(vm, sizeof(vm), "vm%d", i);
        guards_vm_forget(g, "ns1", mci, vm);
    }
    assert_int_equal(tracked(g, "vms", last + 11 * MIN), 0);
    assert_int_equal(tracked(g, "mcis", last + 11 * MIN), 0);
    json_t *j = guards_json(g, last + 2 * HOUR);
    assert_int_equal(json_integer_value(json_object_get(j, "actions_last_hour")), 0);
    json_decref(j);
    guards_free(g);
}

int guards_breaker_tests(void);

int guards_breaker_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trip_3_of_4), cmocka_unit_test(test_no_trip),
        cmocka_unit_test(test_small_mci),   cmocka_unit_test(test_close_after_hold),
        cmocka_unit_test(test_observer),    cmocka_unit_test(test_observer_keeps_mci_open),
        cmocka_unit_test(test_replay),      cmocka_unit_test(test_json),
        cmocka_unit_test(test_bounded),
    };
    return cmocka_run_group_tests_name("guards_breaker", tests, NULL, NULL);
}
