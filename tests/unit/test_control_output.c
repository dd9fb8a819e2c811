/* control/output: an audit record as its dsf_action line (tags, typed fields, the record's
 * time) and as the alert a human gets (which records, labels, severity, firing or told once),
 * and the topic it is published on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/lp.h"
#include "common/topic.h"
#include "control/output.h"

#define T0 1767323045678000000LL /* 2026-01-02T03:04:05.678Z */

static json_t *rec(const char *text)
{
    json_error_t e;
    json_t *r = json_loads(text, 0, &e);
    if (!r)
        fail_msg("bad test record: %s: %s", e.text, text);
    return r;
}

static void line_is(int64_t ts, const char *record, const char *want)
{
    json_t *r = rec(record);
    struct dsf_buf b = {0};
    assert_int_equal(ctl_output_line(r, &b), 0);
    assert_string_equal(buf_cstr(&b), want);
    /* What InfluxDB reads back: one valid line. */
    struct lp_line *l = malloc(sizeof(*l));
    const char *why = NULL;
    assert_int_equal(lp_parse_line(b.data, b.len - 1, l, &why), 0);
    assert_int_equal(l->ts, ts);
    free(l);
    buf_free(&b);
    json_decref(r);
}

static void decision_line(void **state)
{
    line_is(T0 + 17,
            "{\"event\":\"decision\",\"action\":\"a-17\",\"policy\":\"agent down\",\"ns\":\"ns1\","
            "\"mci\":\"m1\",\"target\":\"vm1\",\"kind\":\"vm\",\"op\":\"reboot\","
            "\"verdict\":\"blocked\",\"guard\":\"cooldown\",\"why\":\"in \\\"cooldown\\\", 2m\","
            "\"alarm\":{\"engine\":\"e\",\"rule\":\"agent_down\"},\"seq\":17,"
            "\"time\":\"2026-01-02T03:04:05.678Z\",\"prev\":\"00\",\"hash\":\"ab\"}",
            "dsf_action,event=decision,guard=cooldown,kind=vm,mci=m1,ns=ns1,op=reboot,"
            "policy=agent\\ down,target=vm1,verdict=blocked action=\"a-17\","
            "why=\"in \\\"cooldown\\\", 2m\",seq=17i 1767323045678000017\n");
}

static void step_and_breaker_lines(void **state)
{
    line_is(T0 + 3,
            "{\"event\":\"step\",\"action\":\"a-1\",\"policy\":\"p\",\"ns\":\"ns1\",\"mci\":\"m1\","
            "\"target\":\"vm1\",\"step\":0,\"op\":\"reboot\",\"phase\":\"end\",\"ok\":false,"
            "\"error\":\"HTTP 503\",\"dry_run\":false,\"seq\":3,"
            "\"time\":\"2026-01-02T03:04:05.678Z\"}",
            "dsf_action,event=step,mci=m1,ns=ns1,op=reboot,phase=end,policy=p,target=vm1 "
            "action=\"a-1\",step=0i,ok=false,error=\"HTTP 503\",seq=3i 1767323045678000003\n");
    line_is(T0 + 4,
            "{\"event\":\"breaker\",\"scope\":\"ns1/m1\",\"open\":true,\"why\":\"5 in 1m\","
            "\"seq\":4,\"time\":\"2026-01-02T03:04:05.678Z\"}",
            "dsf_action,event=breaker,scope=ns1/m1 open=true,why=\"5 in 1m\",seq=4i "
            "1767323045678000004\n");
    /* Empty strings and mistyped values are left out rather than written wrong. */
    line_is(T0 + 5,
            "{\"event\":\"end\",\"ns\":\"\",\"outcome\":\"healed\",\"step\":\"x\",\"seq\":5,"
            "\"time\":\"2026-01-02T03:04:05.678Z\"}",
            "dsf_action,event=end,outcome=healed seq=5i 1767323045678000005\n");
}

static void unwritable_records(void **state)
{
    const char *bad[] = {"{\"event\":\"end\",\"seq\":1}",
                         "{\"event\":\"end\",\"seq\":1,\"time\":\"yesterday\"}",
                         "{\"seq\":1,\"time\":\"2026-01-02T03:04:05.678Z\"}", "[1]"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *r = rec(bad[i]);
        struct dsf_buf b = {0};
        buf_puts(&b, "x");
        assert_int_equal(ctl_output_line(r, &b), -1);
        assert_int_equal(b.len, 1);
        buf_free(&b);
        json_decref(r);
    }
}

static const char *label(const struct alarm_labels *l, const char *key)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->kv[i].key, key))
            return l->kv[i].val;
    return NULL;
}

static void sorted(const struct alarm_labels *l)
{
    for (size_t i = 1; i < l->n; i++)
        assert_true(strcmp(l->kv[i - 1].key, l->kv[i].key) < 0);
}

/* The alert of record (1 when told), its label key's value compared to want. */
static int told(const char *record, struct ctl_alert *a)
{
    json_t *r = rec(record);
    int n = ctl_output_alert(r, 0, a);
    if (n) {
        /* Copied out: the labels point into the record. */
        static char keep[CTL_ALERT_KV_MAX][2][128];
        for (size_t i = 0; i < a->alert.labels.n; i++) {
            snprintf(keep[i][0], 128, "%s", a->labels[i].key);
            snprintf(keep[i][1], 128, "%s", a->labels[i].val);
            a->labels[i] = (struct alarm_label){keep[i][0], keep[i][1]};
        }
        sorted(&a->alert.labels);
        sorted(&a->alert.annotations);
    }
    json_decref(r);
    return n;
}

#define TIME ",\"seq\":9,\"time\":\"2026-01-02T03:04:05.678Z\"}"

static void action_alerts(void **state)
{
    struct ctl_alert *a = malloc(sizeof(*a));
    assert_true(told("{\"event\":\"end\",\"action\":\"a-17\",\"policy\":\"p\",\"ns\":\"ns1\","
                     "\"mci\":\"m1\",\"target\":\"vm1\",\"outcome\":\"exhausted\"" TIME,
                     a));
    const struct alarm_labels *l = &a->alert.labels;
    assert_string_equal(label(l, "alertname"), "damselfly_action");
    assert_string_equal(label(l, "severity"), "crit");
    assert_string_equal(label(l, "outcome"), "exhausted");
    assert_string_equal(label(l, "target"), "vm1");
    assert_string_equal(label(l, "action"), "a-17");
    assert_null(label(l, "op"));
    assert_int_equal(a->alert.starts_at_ns, T0);
    assert_int_equal(a->alert.ends_at_ns, T0); /* over already: told once */
    assert_true(a->alert.one_off);
    assert_non_null(strstr(label(&a->alert.annotations, "summary"), "exhausted"));
    assert_non_null(strstr(label(&a->alert.annotations, "summary"), "vm1 in ns1/m1"));

    assert_true(told("{\"event\":\"end\",\"action\":\"a-1\",\"outcome\":\"healed\"" TIME, a));
    assert_string_equal(label(&a->alert.labels, "severity"), "warn");
    assert_true(told("{\"event\":\"decision\",\"action\":\"a-2\",\"verdict\":\"approval\","
                     "\"op\":\"reboot\",\"why\":\"policy asks\"" TIME,
                     a));
    assert_string_equal(label(&a->alert.labels, "severity"), "warn");
    assert_string_equal(label(&a->alert.labels, "op"), "reboot");
    assert_string_equal(label(&a->alert.annotations, "description"), "policy asks");
    assert_true(told("{\"event\":\"step\",\"action\":\"a-3\",\"op\":\"notify\",\"phase\":\"begin\","
                     "\"step\":2,\"dry_run\":false" TIME,
                     a));
    assert_string_equal(label(&a->alert.labels, "severity"), "warn");

    /* The others are for Grafana and the bus only. */
    const char *quiet[] = {
        "{\"event\":\"decision\",\"verdict\":\"run\"" TIME,
        "{\"event\":\"step\",\"op\":\"notify\",\"phase\":\"end\",\"ok\":true" TIME,
        "{\"event\":\"step\",\"op\":\"notify\",\"phase\":\"begin\",\"dry_run\":true" TIME,
        "{\"event\":\"step\",\"op\":\"reboot\",\"phase\":\"begin\"" TIME,
        "{\"event\":\"verify\",\"ok\":false" TIME,
        "{\"event\":\"operator\",\"op\":\"pause\"" TIME,
        "{\"event\":\"start\",\"version\":\"1\"" TIME,
        "{\"event\":\"end\",\"outcome\":\"healed\"}", /* no time */
    };
    for (size_t i = 0; i < sizeof(quiet) / sizeof(quiet[0]); i++)
        assert_int_equal(told(quiet[i], a), 0);
    free(a);
}

static void breaker_alerts(void **state)
{
    struct ctl_alert *open = malloc(sizeof(*open)), *close = malloc(sizeof(*close));
    assert_true(told(
        "{\"event\":\"breaker\",\"scope\":\"fleet\",\"open\":true,\"why\":\"storm\"" TIME, open));
    assert_string_equal(label(&open->alert.labels, "alertname"), "damselfly_breaker");
    assert_string_equal(label(&open->alert.labels, "severity"), "crit");
    assert_string_equal(label(&open->alert.labels, "scope"), "fleet");
    assert_int_equal(open->alert.ends_at_ns, 0); /* firing until it closes */
    assert_false(open->alert.one_off);
    json_t *r = rec("{\"event\":\"breaker\",\"scope\":\"fleet\",\"open\":false" TIME);
    assert_true(ctl_output_alert(r, T0 - 60000000000LL, close));
    assert_int_equal(close->alert.starts_at_ns, T0 - 60000000000LL);
    assert_int_equal(close->alert.ends_at_ns, T0);
    /* The same labels: the close resolves the open alert. */
    assert_int_equal(close->alert.labels.n, open->alert.labels.n);
    for (size_t i = 0; i < open->alert.labels.n; i++) {
        assert_string_equal(close->labels[i].key, open->labels[i].key);
        assert_string_equal(close->labels[i].val, open->labels[i].val);
    }
    assert_non_null(strstr(label(&close->alert.annotations, "summary"), "closed"));
    json_decref(r);
    free(open);
    free(close);
}

static void action_topic(void **state)
{
    char t[128];
    assert_true(dsf_topic_action(t, sizeof(t), "ns1", "m1") > 0);
    assert_string_equal(t, "dsf/action/ns1/m1");
    assert_string_equal(dsf_topic_kafka(t), "dsf.actions");
    assert_true(dsf_topic_action(t, sizeof(t), NULL, "") > 0);
    assert_string_equal(t, "dsf/action/_/_");
    assert_int_equal(dsf_topic_action(t, sizeof(t), "a/b", "m1"), -1);
    assert_int_equal(dsf_topic_action(t, sizeof(t), "ns1", "m#"), -1);
    assert_int_equal(dsf_topic_action(t, 12, "ns1", "m1"), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(decision_line),      cmocka_unit_test(step_and_breaker_lines),
        cmocka_unit_test(unwritable_records), cmocka_unit_test(action_alerts),
        cmocka_unit_test(breaker_alerts),     cmocka_unit_test(action_topic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
