/* control/guards: every guard at its exact boundary, the storm breaker opening and closing
 * per MCI, for the fleet and per observer, replay of past actions, the API's JSON, and
 * memory that does not grow with targets long done. */
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

static char why[512];

static enum guard_block check(struct guards *g, const char *mci, const char *target,
                              int64_t cooldown, int64_t now)
{
    struct guard_target t = {"p", "ns1", mci, target, 1};
    return guards_check(g, &t, cooldown, now, why, sizeof(why));
}

/* One whole action on a VM target: begun at b, ended at e. */
static void act(struct guards *g, const char *policy, const char *mci, const char *target,
                int64_t b, int64_t e, int64_t hold_until)
{
    struct guard_target t = {policy, "ns1", mci, target, 1};
    guards_begin(g, &t, b);
    guards_end(g, &t, e, hold_until);
}

static void assert_why(const char *part)
{
    if (!strstr(why, part))
        fail_msg("why \"%s\" does not say \"%s\"", why, part);
}

static void test_names(void **state)
{
    (void)state;
    const char *want[] = {"pass",     "paused",      "breaker",         "hold",     "busy",
                          "cooldown", "concurrency", "mci_concurrency", "fraction", "rate"};
    for (int b = GUARD_PASS; b <= GUARD_RATE; b++)
        assert_string_equal(guard_block_name((enum guard_block)b), want[b]);
}

static void test_pause(void **state)
{
    (void)state;
    struct guards *g = guards_new(NULL);
    guards_pause(g, 1);
    assert_true(guards_paused(g));
    assert_int_equal(check(g, "m1", "vm1", 0, T0), GUARD_PAUSED);
    assert_why("paused by an operator");
    guards_pause(g, 0);
    assert_false(guards_paused(g));
    assert_int_equal(check(g, "m1", "vm1", 0, T0), GUARD_PASS);
    guards_free(g);
}

/* The cooldown runs from the end of the last action, per policy, up to end+cooldown. */
static void test_cooldown(void **state)
{
    (void)state;
    struct guards *g = guards_new(NULL);
    assert_int_equal(check(g, "m1", "vm1", 10 * MIN, T0), GUARD_PASS);
    act(g, "p", "m1", "vm1", T0, T0 + 30 * SEC, 0);
    int64_t end = T0 + 30 * SEC + 10 * MIN;
    assert_int_equal(check(g, "m1", "vm1", 10 * MIN, end - 1), GUARD_COOLDOWN);
    assert_why("cooldown of policy p on vm1 of ns1/m1 until 2026-12-07T00:10:30.000Z");
    assert_why("ended 2026-12-07T00:00:30.000Z, cooldown 10m");
    assert_int_equal(check(g, "m1", "vm1", 10 * MIN, end), GUARD_PASS);
    /* Another policy on the same VM has its own cooldown. */
    struct guard_target other = {"q", "ns1", "m1", "vm1", 1};
    assert_int_equal(guards_check(g, &other, 10 * MIN, end - 1, why, sizeof(why)), GUARD_PASS);
    guards_free(g);
}

static void test_busy(void **state)
{
    (void)state;
    struct guards *g = guards_new(NULL);
    struct guard_target t = {"p", "ns1", "m1", "vm1", 1};
    guards_begin(g, &t, T0);
    struct guard_target other = {"q", "ns1", "m1", "vm1", 1};
    assert_int_equal(guards_check(g, &other, 0, T0 + SEC, why, sizeof(why)), GUARD_BUSY);
    assert_why("vm1 of ns1/m1 already under action (begun 2026-12-07T00:00:00.000Z)");
    guards_end(g, &t, T0 + 2 * SEC, 0);
    assert_int_equal(guards_check(g, &other, 0, T0 + 2 * SEC, why, sizeof(why)), GUARD_PASS);
    guards_free(g);
}

static void test_hold(void **state)
{
    (void)state;
    struct guards *g = guards_new(NULL);
    act(g, "p", "m1", "vm1", T0, T0 + SEC, T0 + HOUR);
    assert_int_equal(check(g, "m1", "vm1", 0, T0 + HOUR - 1), GUARD_HOLD);
    assert_why("vm1 of ns1/m1 held until 2026-12-07T01:00:00.000Z");
    assert_int_equal(check(g, "m1", "vm1", 0, T0 + HOUR), GUARD_PASS);
    /* Released early by an operator; a second release finds no hold. */
    act(g, "p", "m1", "vm2", T0 + HOUR, T0 + HOUR + SEC, T0 + 2 * HOUR);
    assert_int_equal(check(g, "m1", "vm2", 0, T0 + HOUR + 2 * SEC), GUARD_HOLD);
    assert_int_equal(guards_release(g, "ns1", "m1", "vm2"), 0);
    assert_int_equal(check(g, "m1", "vm2", 0, T0 + HOUR + 2 * SEC), GUARD_PASS);
    assert_int_equal(guards_release(g, "ns1", "m1", "vm2"), -1);
    assert_int_equal(guards_release(g, "ns1", "m1", "nowhere"), -1);
    guards_free(g);
}

static void test_concurrency(void **state)
{
    (void)state;
    struct guards *g = guards_new(NULL); /* 4 at once, 2 per MCI */
    char mci[16];
    for (int i = 0; i < 4; i++) {
        snprintf(mci, sizeof(mci), "m%d", i);
        assert_int_equal(check(g, mci, "vm1", 0, T0), GUARD_PASS);
        struct guard_target t = {"p", "ns1", mci, "vm1", 1};
        guards_begin(g, &t, T0);
    }
    assert_int_equal(check(g, "m9", "vm1", 0, T0), GUARD_CONCURRENCY);
    assert_why("4 actions running, at most 4 at once");
    struct guard_target done = {"p", "ns1", "m3", "vm1", 1};
    guards_end(g, &done, T0 + SEC, 0);
    assert_int_equal(check(g, "m9", "vm1", 0, T0 + SEC), GUARD_PASS);
    /* m0 runs one: a second passes, a third is refused (scaling: not VM-level). */
    struct guard_target sub = {"scale", "ns1", "m0", "group-a", 0};
    assert_int_equal(guards_check(g, &sub, 0, T0 + SEC, why, sizeof(why)), GUARD_PASS);
    guards_begin(g, &sub, T0 + SEC);
    struct guard_target sub2 = {"scale", "ns1", "m0", "group-b", 0};
    guards_end(g, &(struct guard_target){"p", "ns1", "m1", "vm1", 1}, T0 + SEC, 0);
    assert_int_equal(guards_check(g, &sub2, 0, T0 + SEC, why, sizeof(why)), GUARD_MCI_CONCURRENCY);
    assert_why("2 actions running on ns1/m0, at most 2 per MCI");
    guards_free(g);
}

/* 0.34 of 4 VMs is 1 (acting on the same VM again adds none); of 10, 3. */
static void test_fraction(void **state)
{
    (void)state;
    struct guards *g = guards_new(NULL);
    guards_mci_size(g, "ns1", "m4", 4);
    act(g, "p", "m4", "vm1", T0, T0 + SEC, 0);
    assert_int_equal(check(g, "m4", "vm2", 0, T0 + MIN), GUARD_FRACTION);
    assert_why("1 of 4 VMs of ns1/m4 under action or acted on within 10m (vm1), at most 1");
    assert_int_equal(check(g, "m4", "vm1", 0, T0 + MIN), GUARD_PASS);
    assert_int_equal(check(g, "m4", "vm2", 0, T0 + 10 * MIN - 1), GUARD_FRACTION);
    assert_int_equal(check(g, "m4", "vm2", 0, T0 + 10 * MIN), GUARD_PASS);
    /* Not VM-level: neither counted nor limited. */
    struct guard_target sub = {"scale", "ns1", "m4", "group-a", 0};
    assert_int_equal(guards_check(g, &sub, 0, T0 + MIN, why, sizeof(why)), GUARD_PASS);

    guards_mci_size(g, "ns1", "m10", 10);
    act(g, "p", "m10", "vm1", T0, T0 + SEC, 0);
    act(g, "p", "m10", "vm2", T0, T0 + SEC, 0);
    assert_int_equal(check(g, "m10", "vm3", 0, T0 + 2 * SEC), GUARD_PASS);
    act(g, "p", "m10", "vm3", T0 + 2 * SEC, T0 + 3 * SEC, 0);
    assert_int_equal(check(g, "m10", "vm4", 0, T0 + 4 * SEC), GUARD_FRACTION);
    assert_why("3 of 10 VMs of ns1/m10");
    assert_why("at most 3 (0.34 of 10)");

    /* Without a size the VMs seen count: 3 seen, at most 1. */
    for (int i = 1; i <= 3; i++) {
        char vm[8];
        snprintf(vm, sizeof(vm), "vm%d", i);
        guards_vm_health(g, "ns1", "seen", vm, 1, T0);
    }
    act(g, "p", "seen", "vm1", T0, T0 + SEC, 0);
    assert_int_equal(check(g, "seen", "vm2", 0, T0 + 2 * SEC), GUARD_FRACTION);
    assert_why("1 of 3 VMs of ns1/seen");
    guards_free(g);
}

/* rate_per_hour 3: the fourth waits until the first is an hour old. */
static void test_rate(void **state)
{
    (void)state;
    struct guard_config cfg;
    guards_config_defaults(&cfg);
    cfg.rate_per_hour = 3;
    struct guards *g = guards_new(&cfg);
    act(g, "p", "a", "vm1", T0, T0 + SEC, 0);
    act(g, "p", "b", "vm1", T0 + MIN, T0 + MIN + SEC, 0);
    act(g, "p", "c", "vm1", T0 + 2 * MIN, T0 + 2 * MIN + SEC, 0);
    assert_int_equal(check(g, "d", "vm1", 0, T0 + HOUR - 1), GUARD_RATE);
    assert_why("3 actions begun in the last hour, at most 3; the next may begin "
               "2026-12-07T01:00:00.000Z");
    assert_int_equal(check(g, "d", "vm1", 0, T0 + HOUR), GUARD_PASS);
    guards_free(g);
}

/* The first guard in the enum's order is the one reported. */
static void test_order(void **state)
{
    (void)state;
    struct guards *g = guards_new(NULL);
    act(g, "p", "m1", "vm1", T0, T0 + SEC, T0 + HOUR);
    guards_observer(g, "bus", 0, T0 + 2 * SEC);
    assert_int_equal(check(g, "m1", "vm1", HOUR, T0 + 3 * SEC), GUARD_BREAKER);
    guards_pause(g, 1);
    assert_int_equal(check(g, "m1", "vm1", HOUR, T0 + 3 * SEC), GUARD_PAUSED);
    guards_pause(g, 0);
    guards_observer(g, "bus", 1, T0 + 3 * SEC);
    guards_tick(g, T0 + 3 * SEC, NULL, NULL);
    assert_int_equal(check(g, "m1", "vm1", HOUR, T0 + 3 * SEC), GUARD_HOLD);
    guards_free(g);
}

int guards_breaker_tests(void);

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),    cmocka_unit_test(test_pause),
        cmocka_unit_test(test_cooldown), cmocka_unit_test(test_busy),
        cmocka_unit_test(test_hold),     cmocka_unit_test(test_concurrency),
        cmocka_unit_test(test_fraction), cmocka_unit_test(test_rate),
        cmocka_unit_test(test_order),
    };
    int failed = cmocka_run_group_tests_name("guards", tests, NULL, NULL);
    return failed + guards_breaker_tests();
}
