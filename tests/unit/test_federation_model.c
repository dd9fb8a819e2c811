/* The federation model: VM transitions and their error messages, Tumblebug's MCI status
 * string, ids, and the parsing of MCI requests (bad input gives clear errors). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "federation/federation.h"

static struct fed_vm vm_in(enum fed_vm_state s)
{
    struct fed_vm v;
    memset(&v, 0, sizeof(v));
    snprintf(v.id, sizeof(v.id), "vm1");
    v.state = s;
    return v;
}

static void allowed(enum fed_vm_state s, enum fed_action a)
{
    struct fed_vm v = vm_in(s);
    struct fed_error e;
    if (fed_check_transition(&v, a, &e) != 0)
        fail_msg("%s from %s refused: %s", fed_action_name(a), fed_vm_state_name(s), e.message);
}

static void refused(enum fed_vm_state s, enum fed_action a, const char *msg)
{
    struct fed_vm v = vm_in(s);
    struct fed_error e;
    fed_error_clear(&e);
    if (fed_check_transition(&v, a, &e) != -1)
        fail_msg("%s from %s allowed", fed_action_name(a), fed_vm_state_name(s));
    assert_int_equal(e.kind, FED_ESTATE);
    if (msg && !strstr(e.message, msg))
        fail_msg("message '%s' lacks '%s'", e.message, msg);
}

static void transitions(void **state)
{
    (void)state;
    static const enum fed_action acts[] = {FED_ACT_SUSPEND, FED_ACT_RESUME, FED_ACT_REBOOT,
                                           FED_ACT_TERMINATE};
    /* Nothing on Terminated; nothing while Creating or in progress. */
    for (size_t i = 0; i < 4; i++) {
        refused(FED_VM_TERMINATED, acts[i], "it is Terminated");
        refused(FED_VM_CREATING, acts[i], "it is Creating");
        refused(FED_VM_SUSPENDING, acts[i], "it is Suspending");
        refused(FED_VM_RESUMING, acts[i], "it is Resuming");
        refused(FED_VM_REBOOTING, acts[i], "it is Rebooting");
        refused(FED_VM_TERMINATING, acts[i], "it is Terminating");
    }
    refused(FED_VM_TERMINATED, FED_ACT_SUSPEND, "cannot suspend vm1: it is Terminated");
    /* Suspended: only resume or terminate. */
    allowed(FED_VM_SUSPENDED, FED_ACT_RESUME);
    allowed(FED_VM_SUSPENDED, FED_ACT_TERMINATE);
    refused(FED_VM_SUSPENDED, FED_ACT_REBOOT, "only resume or terminate");
    refused(FED_VM_SUSPENDED, FED_ACT_SUSPEND, "Suspended already");
    /* Running: everything but resume; reboot may repeat. */
    allowed(FED_VM_RUNNING, FED_ACT_SUSPEND);
    allowed(FED_VM_RUNNING, FED_ACT_REBOOT);
    allowed(FED_VM_RUNNING, FED_ACT_TERMINATE);
    refused(FED_VM_RUNNING, FED_ACT_RESUME, "Running already");
    /* Failed: reboot or terminate. */
    allowed(FED_VM_FAILED, FED_ACT_REBOOT);
    allowed(FED_VM_FAILED, FED_ACT_TERMINATE);
    refused(FED_VM_FAILED, FED_ACT_SUSPEND, "only reboot or terminate");
    /* An existing VM is never created again. */
    refused(FED_VM_RUNNING, FED_ACT_CREATE, "exists already");
}

static void set_states(struct fed_mci *m, struct fed_vm *vms, const enum fed_vm_state *s, size_t n)
{
    memset(m, 0, sizeof(*m));
    for (size_t i = 0; i < n; i++)
        vms[i] = vm_in(s[i]);
    m->vms = vms;
    m->nvms = n;
}

static void expect_status(const enum fed_vm_state *s, size_t n, const char *want)
{
    struct fed_mci m;
    struct fed_vm vms[8];
    char buf[96];
    set_states(&m, vms, s, n);
    assert_string_equal(fed_mci_status(&m, buf, sizeof(buf)), want);
}

static void mci_status(void **state)
{
    (void)state;
    const enum fed_vm_state R = FED_VM_RUNNING, S = FED_VM_SUSPENDED, F = FED_VM_FAILED,
                            T = FED_VM_TERMINATED, C = FED_VM_CREATING;
    expect_status((enum fed_vm_state[]){R, R, R}, 3, "Running:3 (R:3/3)");
    expect_status((enum fed_vm_state[]){R, S, R}, 3, "Partial-Suspended:1 (R:2/3)");
    expect_status((enum fed_vm_state[]){S, S, S}, 3, "Suspended:3 (R:0/3)");
    expect_status((enum fed_vm_state[]){R, F, S}, 3, "Partial-Failed:1 (R:1/3)");
    expect_status((enum fed_vm_state[]){F, F}, 2, "Failed:2 (R:0/2)");
    expect_status((enum fed_vm_state[]){T, T, T}, 3, "Terminated:3 (R:0/3)");
    expect_status((enum fed_vm_state[]){R, C, C, T}, 4, "Partial-Creating:2 (R:1/4)");
    /* Equal counts: Tumblebug's order decides (Suspended before Terminated). */
    expect_status((enum fed_vm_state[]){R, S, T}, 3, "Partial-Suspended:1 (R:1/3)");
    expect_status(NULL, 0, "Undefined:0 (R:0/0)");
}

static void names_round_trip(void **state)
{
    (void)state;
    for (int s = 0; s < FED_VM_STATE_COUNT; s++) {
        enum fed_vm_state back;
        assert_int_equal(fed_vm_state_parse(fed_vm_state_name(s), &back), 0);
        assert_int_equal(back, s);
    }
    enum fed_vm_state st;
    assert_int_equal(fed_vm_state_parse("running", &st), 0);
    assert_int_equal(st, FED_VM_RUNNING);
    assert_int_equal(fed_vm_state_parse("Sleeping", &st), -1);
    enum fed_action a;
    assert_int_equal(fed_action_parse("suspend", &a), 0);
    assert_int_equal(a, FED_ACT_SUSPEND);
    assert_int_equal(fed_action_parse("explode", &a), -1);
    assert_int_equal(fed_action_target(FED_ACT_SUSPEND), FED_VM_SUSPENDED);
    assert_int_equal(fed_action_transient(FED_ACT_TERMINATE), FED_VM_TERMINATING);
}

static void ids(void **state)
{
    (void)state;
    struct fed_error e;
    assert_int_equal(fed_check_id("vm", "web-1", &e), 0);
    assert_int_equal(fed_check_id("vm", "a.b_c-D9", &e), 0);
    assert_int_equal(fed_check_id("vm", "", &e), -1);
    assert_non_null(strstr(e.message, "vm is empty"));
    assert_int_equal(fed_check_id("vm", "a/b", &e), -1);
    assert_non_null(strstr(e.message, "'a/b'"));
    assert_int_equal(fed_check_id("vm", "a+b", &e), -1);
    assert_int_equal(fed_check_id("vm", "..", &e), -1);
    assert_int_equal(fed_check_id("vm", "-x", &e), -1);
    char longid[80];
    memset(longid, 'a', sizeof(longid) - 1);
    longid[79] = 0;
    assert_int_equal(fed_check_id("vm", longid, &e), -1);
    assert_non_null(strstr(e.message, "longer than 63"));
}

static int parse(const char *text, struct fed_error *e)
{
    struct fed_vm_spec *specs;
    size_t n;
    char name[FED_NAME_MAX];
    int rc = fed_mci_request_parse(text, strlen(text), name, sizeof(name), &specs, &n, e);
    if (rc == 0) {
        for (size_t i = 0; i < n; i++)
            fed_vm_spec_free(&specs[i]);
        free(specs);
    }
    return rc;
}

static void bad(const char *text, const char *msg)
{
    struct fed_error e;
    fed_error_clear(&e);
    if (parse(text, &e) != -1)
        fail_msg("accepted: %s", text);
    assert_int_equal(e.kind, FED_EINVAL);
    if (!strstr(e.message, msg))
        fail_msg("for %s: message '%s' lacks '%s'", text, e.message, msg);
}

static void request_parsing(void **state)
{
    (void)state;
    const char *good = "{\"name\":\"web\",\"vm\":[{\"name\":\"sg\",\"subGroupSize\":\"2\","
                       "\"commonSpec\":\"aws+ap-northeast-2+t2.small\",\"label\":{\"a\":\"b\"},"
                       "\"workload\":[\"sleep\",\"9\"],\"userData\":\"echo hi\"}]}";
    struct fed_vm_spec *specs;
    size_t n;
    char name[FED_NAME_MAX];
    struct fed_error e;
    assert_int_equal(fed_mci_request_parse(good, strlen(good), name, sizeof(name), &specs, &n, &e),
                     0);
    assert_int_equal(n, 1);
    assert_string_equal(name, "web");
    assert_int_equal(specs[0].size, 2);
    assert_string_equal(specs[0].csp, "aws");
    assert_string_equal(specs[0].region, "ap-northeast-2");
    assert_string_equal(specs[0].workload[1], "9");
    assert_null(specs[0].workload[2]);
    assert_string_equal(specs[0].labels[0].value, "b");
    assert_string_equal(specs[0].user_data, "echo hi");
    struct fed_vm_spec copy;
    assert_int_equal(fed_vm_spec_copy(&copy, &specs[0]), 0);
    assert_string_equal(copy.workload[0], "sleep");
    fed_vm_spec_free(&copy);
    fed_vm_spec_free(&specs[0]);
    free(specs);

    bad("", "line 1");
    bad("[1]", "expected an object");
    bad("{\"vm\":[]}", "1 to 256 subgroup");
    bad("{\"vms\":[]}", "unknown key 'vms'");
    bad("{\"vm\":[{\"name\":\"a\",\"csp\":\"x\"}]}", "no region");
    bad("{\"vm\":[{\"name\":\"a\",\"region\":\"x\"}]}", "no csp");
    bad("{\"vm\":[{\"csp\":\"x\",\"region\":\"y\"}]}", "subgroup name is empty");
    bad("{\"vm\":[{\"name\":\"a/b\",\"csp\":\"x\",\"region\":\"y\"}]}", "'a/b'");
    bad("{\"vm\":[{\"name\":\"a\",\"csp\":\"x\",\"region\":\"y\",\"subGroupSize\":\"0\"}]}",
        "outside 1..1000");
    bad("{\"vm\":[{\"name\":\"a\",\"csp\":\"x\",\"region\":\"y\",\"subGroupSize\":\"two\"}]}",
        "'two' is not an integer");
    bad("{\"vm\":[{\"name\":\"a\",\"csp\":\"x\",\"region\":\"y\",\"workload\":\"sleep 1\"}]}",
        "argument vector");
    bad("{\"vm\":[{\"name\":\"a\",\"csp\":\"x\",\"region\":\"y\",\"workload\":[\"\"]}]}",
        "workload[0]");
    bad("{\"vm\":[{\"name\":\"a\",\"csp\":\"x\",\"region\":\"y\",\"label\":[1]}]}",
        "label: expected an object");
    bad("{\"vm\":[{\"name\":\"a\",\"csp\":\"x\",\"region\":\"y\"},"
        "{\"name\":\"a\",\"csp\":\"x\",\"region\":\"y\"}]}",
        "appears twice");
    bad("{\"vm\":[{\"name\":\"a\",\"csp\":\"x\",\"region\":\"y\",\"name\":\"b\"}]}", "duplicate");
    bad("{\"vm\":[{\"name\":\"a\",\"csp\":\"a b\",\"region\":\"y\"}]}", "csp 'a b'");
}

static void mci_json_round_trip(void **state)
{
    (void)state;
    struct fed_mci m;
    memset(&m, 0, sizeof(m));
    snprintf(m.ns, sizeof(m.ns), "ns1");
    snprintf(m.id, sizeof(m.id), "web");
    snprintf(m.driver, sizeof(m.driver), "local");
    struct fed_vm_spec t;
    memset(&t, 0, sizeof(t));
    snprintf(t.name, sizeof(t.name), "sg");
    snprintf(t.csp, sizeof(t.csp), "local");
    snprintf(t.region, sizeof(t.region), "r1");
    t.size = 1;
    assert_non_null(fed_mci_add_subgroup(&m, &t));
    struct fed_vm v = vm_in(FED_VM_SUSPENDED);
    snprintf(v.ns, sizeof(v.ns), "ns1");
    snprintf(v.mci, sizeof(v.mci), "web");
    snprintf(v.subgroup, sizeof(v.subgroup), "sg");
    v.spec = t;
    v.autogen = 1;
    v.target_action = FED_ACT_RESUME;
    v.target_status = FED_VM_RUNNING;
    snprintf(v.driver_data, sizeof(v.driver_data), "{\"pid\":42}");
    assert_non_null(fed_mci_add_vm(&m, &v));
    char *text = fed_mci_to_json(&m);
    assert_non_null(text);
    assert_non_null(strstr(text, "\"status\": \"Suspended:1 (R:0/1)\""));
    struct fed_mci back;
    struct fed_error e;
    assert_int_equal(fed_mci_from_json(text, strlen(text), &back, &e), 0);
    assert_int_equal(back.nvms, 1);
    assert_int_equal(back.vms[0].state, FED_VM_SUSPENDED);
    assert_int_equal(back.vms[0].target_action, FED_ACT_RESUME);
    assert_int_equal(back.vms[0].autogen, 1);
    assert_string_equal(back.vms[0].driver_data, "{\"pid\":42}");
    assert_string_equal(back.subgroups[0].tmpl.region, "r1");
    char *again = fed_mci_to_json(&back);
    assert_string_equal(text, again);
    free(text);
    free(again);
    fed_mci_free(&back);
    assert_int_equal(fed_mci_remove_vm(&m, "vm1"), 0);
    assert_int_equal(m.nvms, 0);
    fed_mci_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(transitions),      cmocka_unit_test(mci_status),
        cmocka_unit_test(names_round_trip), cmocka_unit_test(ids),
        cmocka_unit_test(request_parsing),  cmocka_unit_test(mci_json_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
