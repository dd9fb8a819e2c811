/* control/event: an engine's event, its alarm list and an Alertmanager webhook parsed to the
 * same form; each bad shape refused naming the key; occurrence keys that never collide and
 * series keys that pair a firing event with its resolution; agent status payloads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/status.h"
#include "common/loop.h"
#include "common/rfc3339.h"
#include "control/event.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* As damselfly-alarm publishes it (alarm/events.c render_event); the rule's label "vm"
 * collides with the group's and must not override it. */
#define GROUP "{\"ns\":\"ns1\",\"mci\":\"web\",\"vm\":\"vm1\"}"
#define EVENT_BODY(state, sev)                                                                     \
    "{\"rule\":\"cpu_high\",\"state\":\"" state "\",\"severity\":\"" sev "\",\"group\":" GROUP     \
    ",\"value\":93.5,\"threshold\":90,\"op\":\">\",\"sample_ts\":1767323045000000000,"             \
    "\"pending_since\":0,\"starts_at\":1767323045678000000,\"ends_at\":0,"                         \
    "\"changed_at\":1767323045678000000,\"labels\":{\"team\":\"ops\",\"vm\":\"other\","            \
    "\"app\":\"shop\"},\"annotations\":{\"summary\":\"vm1 burns 93.5% CPU\"}"
static const char firing_event[] = EVENT_BODY("firing", "crit") ",\"previous\":\"pending\","
                                                                "\"previous_severity\":\"none\","
                                                                "\"ts\":1767323045678000000,"
                                                                "\"engine\":\"a1\"}";
static const char resolved_event[] = EVENT_BODY("resolved", "none") ",\"previous\":\"firing\","
                                                                    "\"previous_severity\":"
                                                                    "\"crit\",\"ts\":"
                                                                    "1767323099000000000,"
                                                                    "\"engine\":\"a1\"}";

#define T0 1767323045678000000LL /* 2026-01-02T03:04:05.678Z */

static int parse(const char *text, struct ctl_event *e, char *err)
{
    return ctl_event_parse_alarm(text, strlen(text), e, err, 256);
}

static void engine_event_parsed(void **state)
{
    struct ctl_event e;
    char err[256] = "";
    int64_t before = dsf_mono_ms();
    assert_int_equal(parse(firing_event, &e, err), 0);
    assert_string_equal(e.engine, "a1");
    assert_string_equal(e.rule, "cpu_high");
    assert_string_equal(e.state, "firing");
    assert_string_equal(e.severity, "crit");
    assert_true(e.starts_at_ns == T0);
    assert_true(e.received_ms >= before && e.received_ms <= dsf_mono_ms());
    /* The group sorted, then the rule's labels the group does not name, sorted. */
    assert_int_equal(e.ngroup, 3);
    assert_int_equal(e.nlabels, 5);
    const char *names[] = {"mci", "ns", "vm", "app", "team"};
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(e.labels[i].name, names[i]);
    assert_string_equal(ctl_event_label(&e, "vm"), "vm1");
    assert_string_equal(ctl_event_label(&e, "team"), "ops");
    assert_null(ctl_event_label(&e, "summary"));
}

struct seen {
    size_t n, stop_after;
    struct ctl_event e[4];
};

static int collect(void *arg, const struct ctl_event *e)
{
    struct seen *s = arg;
    if (s->n < 4)
        s->e[s->n] = *e;
    s->n++;
    return s->stop_after && s->n >= s->stop_after;
}

/* The engine's listing: as the event without previous/ts, engine from the item or the caller.
 * The same occurrence listed and published must give the same key. */
static void alarm_list_parsed(void **state)
{
    const char *list = "{\"alarms\":[" EVENT_BODY(
        "firing",
        "crit") ",\"engine\":\"a1\"},"
                "{\"rule\":\"disk\",\"state\":\"pending\",\"severity\":\"warn\",\"group\":"
                "{\"ns\":\"ns1\",\"mci\":\"web\"},\"starts_at\":0},"
                "{\"rule\":\"bad\",\"state\":\"firing\",\"severity\":\"crit\","
                "\"starts_at\":0}]}";
    struct seen s = {0};
    size_t bad = 0;
    char err[256] = "";
    assert_int_equal(
        ctl_event_parse_alarm_list(list, strlen(list), "fallback", collect, &s, &bad, err, 256), 0);
    assert_int_equal(s.n, 2);
    assert_int_equal(bad, 1);
    assert_non_null(strstr(err, "alarms[2]"));
    assert_non_null(strstr(err, "'group'"));
    assert_string_equal(s.e[0].engine, "a1");
    assert_string_equal(s.e[1].engine, "fallback");
    assert_string_equal(s.e[1].state, "pending");

    struct ctl_event bus;
    char k1[CTL_EVENT_KEY_MAX], k2[CTL_EVENT_KEY_MAX];
    assert_int_equal(parse(firing_event, &bus, err), 0);
    assert_true(ctl_event_key(&bus, k1, sizeof(k1)) > 0);
    assert_true(ctl_event_key(&s.e[0], k2, sizeof(k2)) > 0);
    assert_string_equal(k1, k2);

    /* fn stops the walk; bad items add to the caller's count. */
    struct seen one = {.stop_after = 1};
    assert_int_equal(
        ctl_event_parse_alarm_list(list, strlen(list), "x", collect, &one, &bad, err, 256), 0);
    assert_int_equal(one.n, 1);
    assert_int_equal(bad, 1);
    assert_int_equal(
        ctl_event_parse_alarm_list(list, strlen(list), NULL, collect, &s, NULL, err, 256), 0);
}

static const char webhook[] =
    "{\"version\":\"4\",\"groupKey\":\"{}:{alertname=\\\"cpu_high\\\"}\",\"status\":\"firing\","
    "\"receiver\":\"control\",\"groupLabels\":{\"alertname\":\"cpu_high\"},\"commonLabels\":{},"
    "\"commonAnnotations\":{},\"externalURL\":\"http://am:9093\",\"truncatedAlerts\":0,"
    "\"alerts\":["
    "{\"status\":\"firing\",\"labels\":{\"alertname\":\"cpu_high\",\"severity\":\"crit\","
    "\"vm\":\"vm1\",\"ns\":\"ns1\",\"mci\":\"web\"},\"annotations\":{\"summary\":\"hot\"},"
    "\"startsAt\":\"2026-01-02T03:04:05.678Z\",\"endsAt\":\"0001-01-01T00:00:00Z\","
    "\"generatorURL\":\"http://prom/graph\",\"fingerprint\":\"0123456789abcdef\"},"
    "{\"status\":\"resolved\",\"labels\":{\"mci\":\"web\",\"ns\":\"ns1\",\"vm\":\"vm1\","
    "\"alertname\":\"cpu_high\",\"severity\":\"crit\"},\"annotations\":{},"
    "\"startsAt\":\"2026-01-02T05:04:05.678+02:00\",\"endsAt\":\"2026-01-02T03:09:05Z\","
    "\"generatorURL\":\"\",\"fingerprint\":\"0123456789abcdef\"}]}";

static void alertmanager_webhook_parsed(void **state)
{
    struct seen s = {0};
    size_t bad = 0;
    char err[256] = "";
    assert_int_equal(
        ctl_event_parse_alertmanager(webhook, strlen(webhook), collect, &s, &bad, err, 256), 0);
    assert_int_equal(s.n, 2);
    assert_int_equal(bad, 0);
    assert_string_equal(err, "");
    for (size_t i = 0; i < 2; i++) {
        assert_string_equal(s.e[i].engine, "alertmanager");
        assert_string_equal(s.e[i].rule, "cpu_high");
        assert_string_equal(s.e[i].severity, "crit");
        assert_true(s.e[i].starts_at_ns == T0); /* the offset counted */
        assert_int_equal(s.e[i].nlabels, 3);
        assert_int_equal(s.e[i].ngroup, 3);
        assert_string_equal(s.e[i].labels[0].name, "mci");
        assert_string_equal(s.e[i].labels[2].name, "vm");
        assert_null(ctl_event_label(&s.e[i], "alertname"));
        assert_null(ctl_event_label(&s.e[i], "severity"));
    }
    assert_string_equal(s.e[0].state, "firing");
    assert_string_equal(s.e[1].state, "resolved");
    char k0[CTL_EVENT_KEY_MAX], k1[CTL_EVENT_KEY_MAX];
    assert_true(ctl_event_series_key(&s.e[0], k0, sizeof(k0)) > 0);
    assert_true(ctl_event_series_key(&s.e[1], k1, sizeof(k1)) > 0);
    assert_string_equal(k0, k1);
}

#define REFUSED(call, ...) refused(call, (const char *[]){__VA_ARGS__, NULL})

static char last_err[256];

static void refused(int rc, const char **want)
{
    assert_int_equal(rc, -1);
    for (; *want; want++)
        if (!strstr(last_err, *want))
            fail_msg("error \"%s\" does not name \"%s\"", last_err, *want);
}

static int alarm(const char *text)
{
    struct ctl_event e;
    last_err[0] = '\0';
    return ctl_event_parse_alarm(text, strlen(text), &e, last_err, sizeof(last_err));
}

/* n labels in a group object. */
static char *many_labels(int n)
{
    static char b[4096];
    size_t at = (size_t)snprintf(b, sizeof(b), "{\"ns\":\"n\",\"mci\":\"m\"");
    for (int i = 0; i < n - 2; i++)
        at += (size_t)snprintf(b + at, sizeof(b) - at, ",\"l%d\":\"v\"", i);
    snprintf(b + at, sizeof(b) - at, "}");
    return b;
}

static char *event_with_group(const char *group)
{
    static char b[8192];
    snprintf(b, sizeof(b),
             "{\"rule\":\"r\",\"state\":\"firing\",\"severity\":\"crit\",\"starts_at\":1,"
             "\"engine\":\"a1\",\"group\":%s}",
             group);
    return b;
}

static void alarm_event_refusals(void **state)
{
    char longv[400], body[600];
    memset(longv, 'x', sizeof(longv) - 1);
    longv[sizeof(longv) - 1] = '\0';
    REFUSED(alarm("{\"rule\":"), "not JSON");
    REFUSED(alarm(""), "not JSON");
    REFUSED(alarm("[1]"), "JSON object");
    REFUSED(alarm("{\"rule\":\"r\",\"rule\":\"s\"}"), "not JSON", "duplicate");
    REFUSED(alarm(event_with_group("[]")), "key 'group'", "object");
    REFUSED(alarm(event_with_group("{\"ns\":\"n\"}")), "key 'group'", "'mci'");
    REFUSED(alarm(event_with_group("{\"ns\":\"n\",\"mci\":\"m\",\"vm\":7}")), "key 'group.vm'",
            "string");
    assert_int_equal(alarm(event_with_group(many_labels(CTL_EVENT_LABELS_MAX))), 0);
    REFUSED(alarm(event_with_group(many_labels(CTL_EVENT_LABELS_MAX + 1))), "key 'group'",
            "more than 32");
    snprintf(body, sizeof(body), "{\"ns\":\"n\",\"mci\":\"%s\"}", longv);
    REFUSED(alarm(event_with_group(body)), "key 'group.mci'", "longer than the 255");
    snprintf(body, sizeof(body), "{\"ns\":\"n\",\"mci\":\"m\",\"%.200s\":\"v\"}", longv);
    REFUSED(alarm(event_with_group(body)), "key 'group'", "label name longer");
    snprintf(body, sizeof(body),
             "{\"rule\":\"%.130s\",\"state\":\"firing\",\"severity\":\"c\",\"starts_at\":1,"
             "\"engine\":\"a\",\"group\":{\"ns\":\"n\",\"mci\":\"m\"}}",
             longv);
    REFUSED(alarm(body), "key 'rule'", "longer than the 127");
    REFUSED(alarm("{\"rule\":1,\"state\":\"firing\",\"engine\":\"a\"}"), "key 'rule'", "string");
    REFUSED(alarm("{\"rule\":\"r\",\"state\":\"firing\",\"engine\":\"a\"}"), "key 'severity'",
            "required");
    REFUSED(alarm("{\"rule\":\"r\",\"state\":\"hot\",\"severity\":\"c\",\"engine\":\"a\","
                  "\"starts_at\":0}"),
            "key 'state'", "\"hot\"");
    REFUSED(alarm("{\"rule\":\"r\",\"state\":\"firing\",\"severity\":\"c\",\"engine\":\"a\","
                  "\"starts_at\":\"now\"}"),
            "key 'starts_at'", "nanoseconds");
    REFUSED(alarm("{\"rule\":\"r\",\"state\":\"firing\",\"severity\":\"c\",\"starts_at\":0,"
                  "\"group\":{\"ns\":\"n\",\"mci\":\"m\"}}"),
            "key 'engine'", "required");
    REFUSED(alarm("{\"rule\":\"r\",\"state\":\"firing\",\"severity\":\"c\",\"starts_at\":0,"
                  "\"engine\":\"a\",\"group\":{\"ns\":\"n\",\"mci\":\"m\"},\"labels\":{\"t\":[]}}"),
            "key 'labels.t'", "string");
}

static int webhook_call(const char *text, size_t *bad, size_t *calls)
{
    struct seen s = {0};
    last_err[0] = '\0';
    int rc = ctl_event_parse_alertmanager(text, strlen(text), collect, &s, bad, last_err,
                                          sizeof(last_err));
    *calls = s.n;
    return rc;
}

/* One alert among good ones: skipped and counted, the reason naming the alert and the key. */
static void bad_alert(const char *alert, const char *what)
{
    char body[1024];
    size_t bad = 0, calls = 0;
    snprintf(body, sizeof(body),
             "{\"version\":\"4\",\"alerts\":[{\"status\":\"firing\",\"labels\":{\"alertname\":"
             "\"a\"},\"startsAt\":\"2026-01-02T03:04:05Z\"},%s]}",
             alert);
    assert_int_equal(webhook_call(body, &bad, &calls), 0);
    assert_int_equal(calls, 1);
    assert_int_equal(bad, 1);
    if (!strstr(last_err, "alerts[1]") || !strstr(last_err, what))
        fail_msg("error \"%s\" does not name alerts[1] and \"%s\"", last_err, what);
}

static void alertmanager_refusals(void **state)
{
    size_t bad = 0, calls = 0;
    REFUSED(webhook_call("not json", &bad, &calls), "not JSON");
    REFUSED(webhook_call("{\"alerts\":[]}", &bad, &calls), "key 'version'", "required");
    REFUSED(webhook_call("{\"version\":\"3\",\"alerts\":[]}", &bad, &calls), "key 'version'",
            "\"4\"");
    REFUSED(webhook_call("{\"version\":4,\"alerts\":[]}", &bad, &calls), "key 'version'");
    REFUSED(webhook_call("{\"version\":\"4\",\"alerts\":{}}", &bad, &calls), "key 'alerts'",
            "array");
    REFUSED(webhook_call("{\"version\":\"4\"}", &bad, &calls), "key 'alerts'");
    bad_alert("7", "object");
    bad_alert("{\"status\":\"pending\",\"labels\":{\"alertname\":\"a\"},\"startsAt\":"
              "\"2026-01-02T03:04:05Z\"}",
              "key 'status'");
    bad_alert("{\"status\":\"firing\",\"labels\":{\"vm\":\"v\"},\"startsAt\":"
              "\"2026-01-02T03:04:05Z\"}",
              "key 'labels.alertname'");
    bad_alert("{\"status\":\"firing\",\"labels\":{\"alertname\":\"a\",\"vm\":1},\"startsAt\":"
              "\"2026-01-02T03:04:05Z\"}",
              "key 'labels.vm'");
    bad_alert("{\"status\":\"firing\",\"labels\":{\"alertname\":\"a\"},\"startsAt\":\"yesterday\"}",
              "key 'startsAt'");
    bad_alert("{\"status\":\"firing\",\"labels\":{\"alertname\":\"a\"},\"startsAt\":"
              "\"2026-02-29T03:04:05Z\"}",
              "key 'startsAt'");
    bad_alert("{\"status\":\"firing\",\"labels\":{\"alertname\":\"a\",\"severity\":"
              "\"a-severity-far-longer-than-thirty-one-bytes\"},\"startsAt\":"
              "\"2026-01-02T03:04:05Z\"}",
              "key 'labels.severity'");
}

static void rfc3339_strict(void **state)
{
    int64_t ns = -1;
    assert_int_equal(dsf_rfc3339_parse("2026-01-02T03:04:05.678Z", &ns), 0);
    assert_true(ns == T0);
    assert_int_equal(dsf_rfc3339_parse("2026-01-02t01:34:05.678-01:30", &ns), 0);
    assert_true(ns == T0);
    assert_int_equal(dsf_rfc3339_parse("2024-02-29T00:00:00z", &ns), 0);
    assert_true(ns == 1709164800LL * 1000000000);
    assert_int_equal(dsf_rfc3339_parse("1969-12-31T23:59:59.5Z", &ns), 0);
    assert_true(ns == -500000000LL);
    assert_int_equal(dsf_rfc3339_parse("2026-01-02T03:04:05.123456789123Z", &ns), 0);
    assert_true(ns == 1767323045123456789LL);
    assert_int_equal(dsf_rfc3339_parse("0001-01-01T00:00:00Z", &ns), 0);
    assert_true(ns == 0); /* Go's zero time: not set */
    const char *bad[] = {
        "2026-01-02 03:04:05Z",     "2026-01-02T03:04:05",       "2026-1-02T03:04:05Z",
        "2026-13-02T03:04:05Z",     "2026-04-31T03:04:05Z",      "2026-01-02T24:00:00Z",
        "2026-01-02T03:60:00Z",     "2026-01-02T03:04:60Z",      "2026-01-02T03:04:05.Z",
        "2026-01-02T03:04:05+2:00", "2026-01-02T03:04:05+24:00", "2026-01-02T03:04:05Zjunk",
        "2300-01-01T00:00:00Z",     "1600-01-01T00:00:00Z",      ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (dsf_rfc3339_parse(bad[i], &ns) == 0)
            fail_msg("\"%s\" accepted", bad[i]);
}

static struct ctl_event make(const char *engine, const char *rule, const char *n1, const char *v1,
                             const char *n2, const char *v2)
{
    struct ctl_event e = {0};
    snprintf(e.engine, sizeof(e.engine), "%s", engine);
    snprintf(e.rule, sizeof(e.rule), "%s", rule);
    snprintf(e.severity, sizeof(e.severity), "crit");
    e.starts_at_ns = 5;
    snprintf(e.labels[0].name, sizeof(e.labels[0].name), "%s", n1);
    snprintf(e.labels[0].value, sizeof(e.labels[0].value), "%s", v1);
    e.ngroup = e.nlabels = 1;
    if (n2) {
        snprintf(e.labels[1].name, sizeof(e.labels[1].name), "%s", n2);
        snprintf(e.labels[1].value, sizeof(e.labels[1].value), "%s", v2);
        e.ngroup = e.nlabels = 2;
    }
    return e;
}

/* Pairs that would collide if the separators were not escaped. */
static void keys_unambiguous(void **state)
{
    struct ctl_event pairs[][2] = {
        {make("e|r", "x", "ns", "a", NULL, NULL), make("e", "r|x", "ns", "a", NULL, NULL)},
        {make("e", "r", "ns", "a,mci=b", NULL, NULL), make("e", "r", "ns", "a", "mci", "b")},
        {make("e", "r", "n=s", "a", NULL, NULL), make("e", "r", "n", "s=a", NULL, NULL)},
        {make("e", "r\\", "ns", "a", NULL, NULL), make("e", "r", "\\ns", "a", NULL, NULL)},
        {make("e", "r", "ns", "a|5|crit", NULL, NULL), make("e", "r", "ns", "a", NULL, NULL)},
    };
    snprintf(pairs[4][1].severity, sizeof(pairs[4][1].severity), "crit|5|crit");
    char a[CTL_EVENT_KEY_MAX], b[CTL_EVENT_KEY_MAX];
    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
        assert_true(ctl_event_key(&pairs[i][0], a, sizeof(a)) > 0);
        assert_true(ctl_event_key(&pairs[i][1], b, sizeof(b)) > 0);
        if (strcmp(a, b) == 0)
            fail_msg("pair %zu: both keyed %s", i, a);
    }
    /* A key that does not fit is refused whole. */
    int n = ctl_event_key(&pairs[0][0], a, sizeof(a));
    assert_int_equal(ctl_event_key(&pairs[0][0], b, (size_t)n), -1);
    assert_int_equal(ctl_event_key(&pairs[0][0], b, (size_t)n + 1), n);
    assert_int_equal(ctl_event_series_key(&pairs[0][0], b, 4), -1);
}

/* Firing and resolved events of one series: one series key, two occurrences. */
static void series_key_pairs_firing_and_resolved(void **state)
{
    struct ctl_event f, r;
    char err[256], kf[CTL_EVENT_KEY_MAX], kr[CTL_EVENT_KEY_MAX];
    assert_int_equal(parse(firing_event, &f, err), 0);
    assert_int_equal(parse(resolved_event, &r, err), 0);
    assert_true(ctl_event_series_key(&f, kf, sizeof(kf)) > 0);
    assert_true(ctl_event_series_key(&r, kr, sizeof(kr)) > 0);
    assert_string_equal(kf, kr);
    assert_string_equal(kf, "a1|cpu_high|mci=web,ns=ns1,vm=vm1");
    assert_true(ctl_event_key(&f, kf, sizeof(kf)) > 0);
    assert_true(ctl_event_key(&r, kr, sizeof(kr)) > 0);
    assert_string_equal(kf, "a1|cpu_high|mci=web,ns=ns1,vm=vm1|1767323045678000000|crit");
    assert_string_not_equal(kf, kr);
    /* Another vm is another series. */
    struct ctl_event other = f;
    snprintf(other.labels[2].value, sizeof(other.labels[2].value), "vm2");
    assert_true(ctl_event_series_key(&other, kr, sizeof(kr)) > 0);
    assert_true(ctl_event_series_key(&f, kf, sizeof(kf)) > 0);
    assert_string_not_equal(kf, kr);
}

static void status_payloads(void **state)
{
    const char *online = "{\"status\":\"online\",\"epoch\":3}";
    const char *offline = "{\"status\":\"offline\"}";
    assert_int_equal(dsf_status_parse(online, strlen(online)), 1);
    assert_int_equal(dsf_status_parse(offline, strlen(offline)), 0);
    assert_int_equal(dsf_status_parse("", 0), 2);
    assert_int_equal(dsf_status_parse(NULL, 0), 2);
    assert_int_equal(dsf_status_parse("{\"status\":\"away\"}", 17), -1);
    assert_int_equal(dsf_status_parse("{\"status\":1}", 12), -1);
    assert_int_equal(dsf_status_parse("online", 6), -1);
    assert_int_equal(dsf_status_parse("[\"online\"]", 10), -1);
    assert_int_equal(dsf_status_parse(online, 10), -1); /* cut short */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(engine_event_parsed),
        cmocka_unit_test(alarm_list_parsed),
        cmocka_unit_test(alertmanager_webhook_parsed),
        cmocka_unit_test(alarm_event_refusals),
        cmocka_unit_test(alertmanager_refusals),
        cmocka_unit_test(rfc3339_strict),
        cmocka_unit_test(keys_unambiguous),
        cmocka_unit_test(series_key_pairs_firing_and_resolved),
        cmocka_unit_test(status_payloads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
