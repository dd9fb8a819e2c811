/* The evaluation engine on exact samples: reducers, thresholds with hysteresis, for,
 * keep_firing_for, the deadman, the offline signal, matchers and the rule parser's refusals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "alarm/eval.h"
#include "common/lp.h"
#include "common/topic.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S 1000000000LL

struct seen {
    int n;
    enum alarm_state to[64], from[64];
    int sev[64];
    char key[64][128];
};

static void on_transition(void *arg, const struct rule *r, struct series *s, enum alarm_state from,
                          int from_sev, int64_t ts)
{
    struct seen *x = arg;
    if (x->n < 64) {
        x->to[x->n] = (enum alarm_state)s->state;
        x->from[x->n] = from;
        x->sev[x->n] = s->severity;
        snprintf(x->key[x->n], sizeof(x->key[0]), "%s", s->key);
    }
    x->n++;
}

static void refuse(void *arg, const char *msg)
{
    fail_msg("%s", msg);
}

static struct engine *engine_with(const char *rules_json, struct seen *seen)
{
    static const struct engine_ops ops = {on_transition};
    struct engine *e = engine_new(&ops, seen, 0);
    struct rule **rules = NULL;
    size_t n = 0;
    size_t bad =
        rule_parse_text(rules_json, strlen(rules_json), "test.json", &rules, &n, refuse, NULL);
    assert_int_equal(bad, 0);
    engine_set_rules(e, rules, n, 0);
    return e;
}

static void feed(struct engine *e, const char *vm, const char *line_fmt, double v, int64_t ts,
                 int64_t now_ms)
{
    static struct lp_line l;
    char text[512];
    snprintf(text, sizeof(text), line_fmt, v, (long long)ts);
    const char *why;
    assert_int_equal(lp_parse_line(text, strlen(text), &l, &why), 0);
    struct dsf_identity id = {"ns1", "mci1", ""};
    snprintf(id.vm, sizeof(id.vm), "%s", vm);
    engine_line(e, &id, &l, now_ms);
}

#define CPU "cpu,cpu=cpu-total usage_user=%g %lld"

static void test_for_and_resolve(void **state)
{
    struct seen x = {0};
    struct engine *e = engine_with(
        "{\"name\":\"hot\",\"select\":{\"measurement\":\"cpu\",\"field\":\"usage_user\"},"
        "\"crit\":90,\"for\":\"2s\"}",
        &x);
    feed(e, "vm1", CPU, 95, 10 * S, 0);
    assert_int_equal(x.n, 1);
    assert_int_equal(x.to[0], ST_PENDING);
    feed(e, "vm1", CPU, 96, 11 * S, 0);
    assert_int_equal(x.n, 1);
    feed(e, "vm1", CPU, 97, 12 * S, 0);
    assert_int_equal(x.n, 2);
    assert_int_equal(x.to[1], ST_FIRING);
    assert_int_equal(x.sev[1], SEV_CRIT);
    assert_string_equal(x.key[1], "ns1\x1fmci1\x1fvm1");
    feed(e, "vm1", CPU, 50, 13 * S, 0);
    assert_int_equal(x.n, 3);
    assert_int_equal(x.to[2], ST_RESOLVED);
    /* A pending alarm that clears before `for` goes back to inactive. */
    feed(e, "vm2", CPU, 95, 10 * S, 0);
    feed(e, "vm2", CPU, 10, 11 * S, 0);
    assert_int_equal(x.n, 5);
    assert_int_equal(x.to[4], ST_INACTIVE);
    engine_free(e);
}

static void test_hysteresis(void **state)
{
    struct seen x = {0};
    struct engine *e = engine_with(
        "{\"name\":\"hot\",\"select\":{\"measurement\":\"cpu\",\"field\":\"usage_user\"},"
        "\"warn\":{\"threshold\":70,\"reset\":60},\"crit\":{\"threshold\":90,\"reset\":80}}",
        &x);
    double flaps[] = {95, 85, 91, 82, 99, 81}; /* crosses 90 often, never falls to 80 */
    for (int i = 0; i < 6; i++)
        feed(e, "vm1", CPU, flaps[i], (10 + i) * S, 0);
    assert_int_equal(x.n, 1);
    assert_int_equal(x.sev[0], SEV_CRIT);
    feed(e, "vm1", CPU, 75, 20 * S, 0); /* under crit's reset, still over warn */
    assert_int_equal(x.n, 2);
    assert_int_equal(x.to[1], ST_FIRING);
    assert_int_equal(x.sev[1], SEV_WARN);
    feed(e, "vm1", CPU, 65, 21 * S, 0); /* under warn's threshold, over its reset: holds */
    assert_int_equal(x.n, 2);
    feed(e, "vm1", CPU, 59, 22 * S, 0);
    assert_int_equal(x.n, 3);
    assert_int_equal(x.to[2], ST_RESOLVED);
    engine_free(e);
}

static void test_reducers(void **state)
{
    struct seen x = {0};
    struct engine *e = engine_with(
        "[{\"name\":\"avg\",\"select\":{\"measurement\":\"m\",\"field\":\"a\"},\"window\":\"3s\","
        "\"reduce\":\"avg\",\"crit\":10},"
        "{\"name\":\"rate\",\"select\":{\"measurement\":\"m\",\"field\":\"c\"},\"window\":\"10s\","
        "\"reduce\":\"rate\",\"crit\":5},"
        "{\"name\":\"p90\",\"select\":{\"measurement\":\"m\",\"field\":\"p\"},\"window\":\"1m\","
        "\"reduce\":\"p90\",\"crit\":{\"threshold\":100,\"reset\":100}}]",
        &x);
    /* avg over 3 s: 5, 5, 26 -> 12 fires only with the third sample. */
    feed(e, "vm1", "m a=%g %lld", 5, 1 * S, 0);
    feed(e, "vm1", "m a=%g %lld", 5, 2 * S, 0);
    assert_int_equal(x.n, 0);
    feed(e, "vm1", "m a=%g %lld", 26, 3 * S, 0);
    assert_int_equal(x.n, 1);
    /* (5 + 26 + 0) / 3 still holds; once the 5s leave the window, (26 + 0 + 0) / 3 resolves. */
    feed(e, "vm1", "m a=%g %lld", 0, 4 * S, 0);
    assert_int_equal(x.n, 1);
    feed(e, "vm1", "m a=%g %lld", 0, 5 * S, 0);
    assert_int_equal(x.n, 2);
    assert_int_equal(x.to[1], ST_RESOLVED);
    /* rate: +2, then a counter reset counted as its new value (+30): 32 in 4 s = 8/s. */
    feed(e, "vm1", "m c=%g %lld", 100, 1 * S, 0);
    feed(e, "vm1", "m c=%g %lld", 102, 2 * S, 0);
    assert_int_equal(x.n, 2);
    feed(e, "vm1", "m c=%g %lld", 30, 5 * S, 0);
    assert_int_equal(x.n, 3);
    /* p90 of 1..10 is 9 (nearest rank); ten samples of 1..9 and one 200 -> p90 = 9. */
    for (int i = 1; i <= 9; i++)
        feed(e, "vm1", "m p=%g %lld", i, i * S, 0);
    feed(e, "vm1", "m p=%g %lld", 200, 10 * S, 0);
    assert_int_equal(x.n, 3);
    for (int i = 11; i <= 12; i++)
        feed(e, "vm1", "m p=%g %lld", 300, i * S, 0); /* now 2 of 12 above: p90 = 200 */
    assert_int_equal(x.n, 4);
    engine_free(e);
}

static void test_matchers_and_groups(void **state)
{
    struct seen x = {0};
    struct engine *e = engine_with(
        "{\"name\":\"disk\",\"select\":{\"measurement\":\"disk\",\"field\":\"used_percent\","
        "\"tags\":[{\"tag\":\"path\",\"op\":\"=~\",\"value\":\"/|/data.*\"},"
        "{\"tag\":\"fstype\",\"op\":\"!=\",\"value\":\"tmpfs\"}]},"
        "\"group_by\":[\"vm\",\"path\"],\"crit\":90}",
        &x);
    feed(e, "vm1", "disk,path=/,fstype=ext4 used_percent=%g %lld", 95, S, 0);
    feed(e, "vm1", "disk,path=/data1,fstype=xfs used_percent=%g %lld", 95, S, 0);
    feed(e, "vm1", "disk,path=/boot,fstype=ext4 used_percent=%g %lld", 95, S, 0);
    feed(e, "vm1", "disk,path=/,fstype=tmpfs used_percent=%g %lld", 95, S, 0);
    assert_int_equal(x.n, 2);
    assert_string_equal(x.key[0], "ns1\x1fmci1\x1fvm1\x1f/");
    assert_string_equal(x.key[1], "ns1\x1fmci1\x1fvm1\x1f/data1");
    engine_free(e);
}

static void test_nodata_and_offline(void **state)
{
    struct seen x = {0};
    struct engine *e = engine_with(
        "[{\"name\":\"dead\",\"select\":{\"measurement\":\"cpu\",\"field\":\"usage_user\"},"
        "\"nodata\":\"2s\"},{\"name\":\"down\",\"signal\":\"agent_offline\",\"for\":\"1s\"}]",
        &x);
    feed(e, "vm1", CPU, 1, S, 1000);
    engine_tick(e, 0, 2999);
    assert_int_equal(x.n, 0);
    engine_tick(e, 0, 3000);
    assert_int_equal(x.n, 1);
    assert_int_equal(x.to[0], ST_NODATA);
    engine_tick(e, 0, 9000);
    assert_int_equal(x.n, 1);
    feed(e, "vm1", CPU, 1, 10 * S, 10000);
    assert_int_equal(x.n, 2);
    assert_int_equal(x.to[1], ST_RESOLVED);
    feed(e, "vm1", CPU, 1, 20 * S, 20000);
    struct dsf_identity id = {"ns1", "mci1", "vm1"};
    engine_status(e, &id, 0, 20 * S, 20000);
    assert_int_equal(x.n, 3);
    assert_int_equal(x.to[2], ST_PENDING);
    engine_tick(e, 21 * S, 21000);
    assert_int_equal(x.n, 4);
    assert_int_equal(x.to[3], ST_FIRING);
    assert_int_equal(x.sev[3], SEV_OFFLINE);
    engine_status(e, &id, 1, 22 * S, 22000);
    assert_int_equal(x.n, 5);
    assert_int_equal(x.to[4], ST_RESOLVED);
    engine_free(e);
}

static void test_keep_firing_and_restore(void **state)
{
    struct seen x = {0};
    struct engine *e = engine_with(
        "{\"name\":\"hot\",\"select\":{\"measurement\":\"cpu\",\"field\":\"usage_user\"},"
        "\"crit\":90,\"keep_firing_for\":\"2s\"}",
        &x);
    feed(e, "vm1", CPU, 95, 1 * S, 0);
    feed(e, "vm1", CPU, 10, 2 * S, 0);
    feed(e, "vm1", CPU, 10, 3 * S, 0);
    assert_int_equal(x.n, 1);
    feed(e, "vm1", CPU, 10, 4 * S, 0);
    assert_int_equal(x.n, 2);
    assert_int_equal(x.to[1], ST_RESOLVED);
    /* A restored firing alarm stays firing without a second event. */
    struct series st = {.state = ST_FIRING, .severity = SEV_CRIT, .firing_since = 5 * S};
    assert_int_equal(engine_restore(e, "hot", "ns1\x1fmci1\x1fvm9", &st, 0), 0);
    assert_int_equal(engine_restore(e, "gone", "ns1\x1fmci1\x1fvm9", &st, 0), -1);
    feed(e, "vm9", CPU, 95, 6 * S, 0);
    assert_int_equal(x.n, 2);
    engine_free(e);
}

static void count_series(void *arg, const struct rule *r, struct series *s)
{
    (*(int *)arg)++;
}

/* A removed VM's series go, of every rule that groups by vm and in any state, without an
 * event; the same VM name in another MCI, other VMs and rules without vm stay. */
static void test_forget_vm(void **state)
{
    struct seen x = {0};
    struct engine *e = engine_with(
        "[{\"name\":\"down\",\"signal\":\"agent_offline\",\"for\":\"0s\"},"
        "{\"name\":\"dead\",\"select\":{\"measurement\":\"cpu\",\"field\":\"usage_user\"},"
        "\"nodata\":\"2s\"},"
        "{\"name\":\"disk\",\"select\":{\"measurement\":\"disk\",\"field\":\"used_percent\"},"
        "\"group_by\":[\"path\",\"vm\"],\"crit\":90},"
        "{\"name\":\"per_mci\",\"select\":{\"measurement\":\"cpu\",\"field\":\"usage_user\"},"
        "\"group_by\":[],\"crit\":90}]",
        &x);
    struct dsf_identity vm1 = {"ns1", "mci1", "vm1"}, vm2 = {"ns1", "mci1", "vm2"},
                        other = {"ns1", "mci2", "vm1"};
    engine_status(e, &vm1, 0, S, 1000);
    engine_status(e, &vm2, 0, S, 1000);
    engine_status(e, &other, 0, S, 1000);
    assert_int_equal(x.n, 3); /* three offline alarms firing */
    feed(e, "vm1", CPU, 95, S, 1000);
    feed(e, "vm1", "disk,path=/ used_percent=%g %lld", 95, S, 1000);
    feed(e, "vm1", "disk,path=/data used_percent=%g %lld", 10, S, 1000);
    /* down x3, dead vm1, disk vm1 x2, per_mci mci1 */
    assert_int_equal(engine_series_count(e), 7);
    int before = x.n;
    assert_int_equal(engine_forget_vm(e, "ns1", "mci1", "vm1"), 4);
    assert_int_equal(x.n, before); /* no event */
    assert_int_equal(engine_series_count(e), 3);
    assert_int_equal(engine_stats(e)->series_forgotten, 4);
    int walked = 0;
    engine_foreach(e, count_series, &walked);
    assert_int_equal(walked, 3);
    /* The nodata deadline of the forgotten series is gone with it. */
    engine_tick(e, 10 * S, 10000);
    assert_int_equal(x.n, before);
    assert_int_equal(engine_forget_vm(e, "ns1", "mci1", "vm1"), 0);
    assert_int_equal(engine_forget_vm(e, "ns1", "mci1", "vm2"), 1);
    assert_int_equal(engine_forget_vm(e, "ns1", "mci2", "vm1"), 1);
    assert_int_equal(engine_series_count(e), 1); /* per_mci: it does not group by vm */
    assert_int_equal(engine_stats(e)->series_forgotten, 6);
    /* The VM's name can come back as a new VM: it starts from nothing. */
    engine_status(e, &vm1, 1, 20 * S, 20000);
    assert_int_equal(x.n, before);
    engine_free(e);
}

struct errors {
    char text[8][512];
    int n;
};

static void collect(void *arg, const char *msg)
{
    struct errors *e = arg;
    if (e->n < 8)
        snprintf(e->text[e->n], sizeof(e->text[0]), "%s", msg);
    e->n++;
}

static void test_bad_rules(void **state)
{
    const char *text =
        "[{\"name\":\"ok\",\"select\":{\"measurement\":\"cpu\",\"field\":\"u\"},\"crit\":1},"
        "{\"name\":\"typo\",\"select\":{\"measurement\":\"cpu\",\"field\":\"u\"},\"crti\":1},"
        "{\"name\":\"re\",\"select\":{\"measurement\":\"cpu\",\"field\":\"u\",\"tags\":"
        "[{\"tag\":\"cpu\",\"op\":\"=~\",\"value\":\"(\"}]},\"crit\":1},"
        "{\"name\":\"neg\",\"select\":{\"measurement\":\"cpu\",\"field\":\"u\"},"
        "\"window\":\"-5s\",\"reduce\":\"avg\",\"crit\":1},"
        "{\"name\":\"tmpl\",\"select\":{\"measurement\":\"cpu\",\"field\":\"u\"},\"crit\":1,"
        "\"annotations\":{\"summary\":\"{{nope}}\"}},"
        "{\"name\":\"reset\",\"select\":{\"measurement\":\"cpu\",\"field\":\"u\"},"
        "\"crit\":{\"threshold\":5,\"reset\":9}},"
        "{\"name\":\"big\",\"select\":{\"measurement\":\"cpu\",\"field\":\"u\",\"tags\":"
        "[{\"tag\":\"cpu\",\"op\":\"!~\",\"value\":\"(a+)+++++++++++++++++++++++++++\"}]},\"crit\":"
        "1}]";
    struct rule **rules = NULL;
    size_t n = 0;
    struct errors errs = {0};
    assert_int_equal(rule_parse_text(text, strlen(text), "r.json", &rules, &n, collect, &errs), 6);
    assert_int_equal(n, 1);
    assert_string_equal(rules[0]->name, "ok");
    assert_non_null(strstr(errs.text[0], "r.json: rule 'typo': key 'crti': unknown key"));
    assert_non_null(strstr(errs.text[1], "key 'select.tags[0].value': bad regular expression"));
    assert_non_null(strstr(errs.text[2], "rule 'neg': key 'window': must not be negative"));
    assert_non_null(strstr(errs.text[3], "key 'annotations.summary': unknown template"));
    assert_non_null(strstr(errs.text[4], "key 'crit.reset'"));
    /* The C library would take gigabytes to compile this one. */
    assert_non_null(strstr(errs.text[5], "key 'select.tags[0].value': regular expression \"(a+)+"));
    assert_non_null(strstr(errs.text[5], "refused: a repeated group that repeats inside"));
    rule_free(rules[0]);
    free(rules);
}

/* A rule of n group_by tags t0.. */
static void wide_rule(char *out, size_t cap, size_t n)
{
    size_t len = (size_t)snprintf(out, cap,
                                  "{\"name\":\"wide\",\"select\":{\"measurement\":"
                                  "\"cpu\",\"field\":\"u\"},\"crit\":1,\"group_by\":[");
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(out + len, cap - len, "%s\"t%zu\"", i ? "," : "", i);
    snprintf(out + len, cap - len, "]}");
}

static void test_group_by_bound(void **state)
{
    char text[4096];
    struct rule **rules = NULL;
    size_t n = 0;
    struct errors errs = {0};
    wide_rule(text, sizeof(text), 200);
    assert_int_equal(rule_parse_text(text, strlen(text), "wide.json", &rules, &n, collect, &errs),
                     1);
    assert_int_equal(n, 0);
    assert_non_null(
        strstr(errs.text[0], "wide.json: rule 'wide': key 'group_by': 200 tag keys, at most 32"));
    wide_rule(text, sizeof(text), 32);
    assert_int_equal(rule_parse_text(text, strlen(text), "wide.json", &rules, &n, collect, &errs),
                     0);
    assert_int_equal(n, 1);
    assert_int_equal(rules[0]->ngroup, 32);
    rule_free(rules[0]);
    free(rules);
}

static int not_gold(const void *arg, uint32_t bucket, const struct dsf_identity *id)
{
    (void)arg;
    return bucket < 64 && strcmp(id->ns, "gold") != 0;
}

/* An engine of the default pool told to exclude a tenant forgets that tenant's series (they
 * would go nodata while the tenant's pool evaluates them), without an event; the rest stay. */
static void test_forget_unowned(void **state)
{
    struct seen x = {0};
    struct engine *e =
        engine_with("[{\"name\":\"down\",\"signal\":\"agent_offline\",\"for\":\"0s\"}]", &x);
    struct dsf_identity g1 = {"gold", "m1", "vm1"}, g2 = {"gold", "m2", "vm2"},
                        p1 = {"ns1", "m1", "vm1"};
    engine_status(e, &g1, 0, S, 1000);
    engine_status(e, &g2, 0, S, 1000);
    engine_status(e, &p1, 0, S, 1000);
    int before = x.n;
    assert_int_equal(engine_forget_unowned(e, 64, not_gold, NULL), 2);
    assert_int_equal(x.n, before);
    assert_int_equal(engine_series_count(e), 1);
    assert_int_equal(engine_forget_unowned(e, 64, not_gold, NULL), 0);
    engine_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_for_and_resolve),    cmocka_unit_test(test_hysteresis),
        cmocka_unit_test(test_reducers),           cmocka_unit_test(test_matchers_and_groups),
        cmocka_unit_test(test_nodata_and_offline), cmocka_unit_test(test_keep_firing_and_restore),
        cmocka_unit_test(test_bad_rules),          cmocka_unit_test(test_group_by_bound),
        cmocka_unit_test(test_forget_vm),          cmocka_unit_test(test_forget_unowned),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
