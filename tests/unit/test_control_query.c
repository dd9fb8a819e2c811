/* control/query: the monitoring API's paths and query strings as a user sends them (good,
 * mistyped, hostile) and the InfluxQL each good one becomes, names escaped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "control/query.h"

#define VM_PATH "/api/v1/ns/ns1/mci/m1/vm/vm-1/metric/"

static void ok(const char *path, const char *query, struct qp_request *r)
{
    struct qp_error e;
    if (qp_parse(path, query, r, &e) < 0)
        fail_msg("%s?%s refused: %d %s: %s", path, query ? query : "", e.status, e.param, e.msg);
}

/* The request is refused with status, naming param. */
static void refused(const char *path, const char *query, int status, const char *param)
{
    struct qp_request r;
    struct qp_error e;
    if (qp_parse(path, query, &r, &e) == 0)
        fail_msg("%s?%s accepted", path, query ? query : "");
    if (e.status != status || strcmp(e.param, param))
        fail_msg("%s?%s: %d %s (%s), expected %d %s", path, query ? query : "", e.status, e.param,
                 e.msg, status, param);
    assert_true(strstr(e.msg, param) != NULL || !strcmp(param, "path"));
}

static void test_forms(void **state)
{
    (void)state;
    struct qp_request r;
    ok(VM_PATH "cpu", NULL, &r);
    assert_int_equal(r.form, QP_VM);
    assert_string_equal(r.ns, "ns1");
    assert_string_equal(r.mci, "m1");
    assert_string_equal(r.vm, "vm-1");
    assert_string_equal(r.metric->measurement, "cpu");
    assert_int_equal(r.period, 'm');
    assert_int_equal(r.stat, QP_AVG);
    assert_int_equal(r.duration_s, 300);
    assert_string_equal(r.duration, "5m");

    ok("/api/v1/ns/ns1/mci/m1/metric/memory", "period=h&stat=max&duration=2d", &r);
    assert_int_equal(r.form, QP_MCI);
    assert_string_equal(r.vm, "");
    assert_string_equal(r.metric->measurement, "mem");
    assert_int_equal(r.period, 'h');
    assert_int_equal(r.stat, QP_MAX);
    assert_int_equal(r.duration_s, 2 * 86400);

    ok("/dragonfly/ns/ns1/mcis/m1/vm/vm%201/metric/network/info",
       "periodType=d&statisticsCriteria=last&duration=1w", &r);
    assert_int_equal(r.form, QP_DRAGONFLY);
    assert_string_equal(r.vm, "vm 1");
    assert_string_equal(r.metric->series_tag, "interface");
    assert_int_equal(r.period, 'd');
    assert_int_equal(r.stat, QP_LAST);
    assert_int_equal(r.duration_s, 7 * 86400);

    /* Empty pairs and a percent-encoded value are fine. */
    ok(VM_PATH "disk", "&stat=%6Din&&duration=90s&", &r);
    assert_int_equal(r.stat, QP_MIN);
    assert_int_equal(r.duration_s, 90);
}

static void test_bad_values(void **state)
{
    (void)state;
    refused(VM_PATH "cpux", NULL, 400, "metric");
    refused(VM_PATH "", NULL, 400, "metric");
    refused(VM_PATH "cpu", "period=w", 400, "period");
    refused(VM_PATH "cpu", "period=", 400, "period");
    refused(VM_PATH "cpu", "period", 400, "period");
    refused(VM_PATH "cpu", "stat=median", 400, "stat");
    refused(VM_PATH "cpu", "stat=avg&stat=max", 400, "stat");
    static const char *const durations[] = {"5",    "m",         "0m",  "5x",   "5mm", "-5m",
                                            "5.5m", "99999999m", "91d", "%00m", "5%",  " 5m"};
    char q[64];
    for (size_t i = 0; i < sizeof(durations) / sizeof(durations[0]); i++) {
        snprintf(q, sizeof(q), "duration=%s", durations[i]);
        refused(VM_PATH "cpu", q, 400, "duration");
    }
    /* More rows than a series may have: a minute over 30 days. */
    refused(VM_PATH "cpu", "period=m&duration=30d", 400, "duration");
    struct qp_request r;
    ok(VM_PATH "cpu", "period=h&duration=30d", &r);
    /* Unknown keys, and the other family's keys on each path. */
    refused(VM_PATH "cpu", "limit=5", 400, "query");
    refused(VM_PATH "cpu", "periodType=m", 400, "query");
    refused("/dragonfly/ns/a/mcis/b/vm/c/metric/cpu/info", "period=m", 400, "query");
}

static void test_bad_names(void **state)
{
    (void)state;
    char path[600], long_name[QP_NAME_MAX + 2];
    refused("/api/v1/ns/..%2Fetc/mci/m1/vm/v/metric/cpu", NULL, 400, "ns");
    refused("/api/v1/ns/ns1/mci/../vm/v/metric/cpu", NULL, 400, "mci");
    refused("/api/v1/ns/ns1/mci/m1/vm/a%2fb/metric/cpu", NULL, 400, "vm");
    refused("/api/v1/ns/ns1/mci/m1/vm/a%0Ab/metric/cpu", NULL, 400, "vm");
    refused("/api/v1/ns/ns1/mci/m1/vm/a%00b/metric/cpu", NULL, 400, "vm");
    refused("/api/v1/ns/ns1/mci/m1/vm/a%zzb/metric/cpu", NULL, 400, "vm");
    refused("/api/v1/ns/ns1/mci/m1/vm/a%FFb/metric/cpu", NULL, 400, "vm");
    refused("/api/v1/ns/ns1/mci/m1/vm/a%4/metric/cpu", NULL, 400, "vm");
    refused("/api/v1/ns//mci/m1/vm/v/metric/cpu", NULL, 400, "ns");
    memset(long_name, 'a', QP_NAME_MAX + 1);
    long_name[QP_NAME_MAX + 1] = '\0';
    snprintf(path, sizeof(path), "/api/v1/ns/ns1/mci/%s/metric/cpu", long_name);
    refused(path, NULL, 400, "mci");
    long_name[QP_NAME_MAX] = '\0'; /* 63 bytes: the longest name */
    struct qp_request r;
    snprintf(path, sizeof(path), "/api/v1/ns/ns1/mci/%s/metric/cpu", long_name);
    ok(path, NULL, &r);
    assert_int_equal(strlen(r.mci), QP_NAME_MAX);
}

static void test_bad_paths_and_sizes(void **state)
{
    (void)state;
    refused("/api/v1/ns/ns1/mci/m1/vm/v/metric/cpu/extra", NULL, 404, "path");
    refused("/api/v1/ns/ns1/mci/m1/vm/v/metrics/cpu", NULL, 404, "path");
    refused("/api/v1/ns/ns1/mci/m1/vm/v/metric/cpu/", NULL, 404, "path");
    refused("/dragonfly/ns/a/mcis/b/vm/c/metric/cpu", NULL, 404, "path");
    refused("/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p", NULL, 404, "path");
    refused("", NULL, 404, "path");
    static char query[QP_QUERY_MAX + 2], path[QP_PATH_MAX + 2];
    memset(query, 'x', QP_QUERY_MAX + 1);
    refused(VM_PATH "cpu", query, 414, "query");
    path[0] = '/';
    memset(path + 1, 'a', QP_PATH_MAX);
    refused(path, NULL, 414, "path");
}

static void query_is(const char *path, const char *query, const char *want)
{
    struct qp_request r;
    char text[8192];
    ok(path, query, &r);
    int n = qp_influxql(&r, text, sizeof(text));
    assert_int_equal(n, (int)strlen(want));
    assert_string_equal(text, want);
    /* Any shorter buffer is refused, not cut. */
    assert_int_equal(qp_influxql(&r, text, (size_t)n), -1);
}

static void test_influxql(void **state)
{
    (void)state;
    query_is("/api/v1/ns/ns1/mci/m1/vm/v1/metric/swap", "stat=min&duration=10m",
             "SELECT min(\"used_percent\") AS \"swap_utilization\", min(\"total\") AS "
             "\"swap_total\", min(\"used\") AS \"swap_used\", min(\"free\") AS \"swap_free\" FROM "
             "\"swap\" WHERE \"ns\" = 'ns1' AND \"mci\" = 'm1' AND \"vm\" = 'v1' AND time > "
             "now() - 600s GROUP BY time(1m), \"vm\" fill(none)");
    /* A quote or a backslash in a name stays inside its literal. */
    query_is("/api/v1/ns/a'b/mci/c%5C'%20OR%201=1/metric/system", "stat=max&period=h",
             "SELECT max(\"load1\") AS \"load1\", max(\"load5\") AS \"load5\", max(\"load15\") AS "
             "\"load15\" FROM \"system\" WHERE \"ns\" = 'a\\'b' AND \"mci\" = 'c\\\\\\' OR 1=1' "
             "AND time > now() - 300s GROUP BY time(1h), \"vm\" fill(none); SELECT max(\"load1\") "
             "AS \"load1\", max(\"load5\") AS \"load5\", max(\"load15\") AS \"load15\" FROM "
             "(SELECT max(\"load1\") AS \"load1\", max(\"load5\") AS \"load5\", max(\"load15\") AS "
             "\"load15\" FROM \"system\" WHERE \"ns\" = 'a\\'b' AND \"mci\" = 'c\\\\\\' OR 1=1' "
             "AND time > now() - 300s GROUP BY time(1h), \"vm\" fill(none)) WHERE time > now() - "
             "300s GROUP BY time(1h) fill(none)");
}

static void test_influxql_kinds(void **state)
{
    (void)state;
    struct qp_request r;
    char text[8192];
    /* cpu: the total only; utilization is 100 - idle, so its min is 100 - max(idle). */
    ok(VM_PATH "cpu", "stat=min", &r);
    assert_true(qp_influxql(&r, text, sizeof(text)) > 0);
    assert_non_null(strstr(text, "100 - max(\"usage_idle\") AS \"cpu_utilization\", "
                                 "min(\"usage_system\") AS \"cpu_system\""));
    assert_non_null(strstr(text, " AND \"cpu\" = 'cpu-total' AND "));
    /* Counters: per-second rates per interface, summed per VM; KiB for diskio's bytes. */
    ok(VM_PATH "net", "stat=max", &r);
    assert_true(qp_influxql(&r, text, sizeof(text)) > 0);
    assert_non_null(strstr(text, "SELECT sum(\"bytes_in\") AS \"bytes_in\""));
    assert_non_null(strstr(text, "non_negative_derivative(last(\"bytes_recv\"), 1s) AS "
                                 "\"bytes_in\""));
    assert_non_null(strstr(text, "GROUP BY time(1m), \"vm\", \"interface\" fill(none)) WHERE"));
    ok(VM_PATH "diskio", NULL, &r);
    assert_true(qp_influxql(&r, text, sizeof(text)) > 0);
    assert_non_null(strstr(text, "non_negative_derivative(last(\"read_bytes\"), 1s) / 1024 AS "
                                 "\"kb_read\""));
    /* Every metric of the table builds for every form. */
    size_t n;
    const struct qp_metric *m = qp_metrics(&n);
    for (size_t i = 0; i < n; i++) {
        char path[128];
        snprintf(path, sizeof(path), "/api/v1/ns/n/mci/m/metric/%s", m[i].name);
        ok(path, "stat=last", &r);
        assert_ptr_equal(qp_metric_find(m[i].name), &m[i]);
        assert_true(qp_influxql(&r, text, sizeof(text)) > 0);
        assert_non_null(strstr(text, "; SELECT "));
    }
}

/* The on-demand forms: no metric, fmt only, names that are topic levels. */
static void test_ondemand(void **state)
{
    (void)state;
    struct qp_request r;
    ok("/api/v1/ns/ns1/mci/m1/vm/vm-1/ondemand", NULL, &r);
    assert_int_equal(r.form, QP_ONDEMAND);
    assert_string_equal(r.vm, "vm-1");
    assert_null(r.metric);
    assert_false(r.lp);
    ok("/api/v1/ns/ns1/mci/m1/vm/vm-1/ondemand", "fmt=lp", &r);
    assert_true(r.lp);
    ok("/api/v1/ns/ns1/mci/m1/vm/vm-1/ondemand", "fmt=json", &r);
    assert_false(r.lp);
    ok("/api/v1/ns/ns1/mci/m1/ondemand/netlatency", NULL, &r);
    assert_int_equal(r.form, QP_NETLATENCY);
    assert_string_equal(r.mci, "m1");
    assert_string_equal(r.vm, "");
    refused("/api/v1/ns/ns1/mci/m1/vm/vm-1/ondemand", "fmt=xml", 400, "fmt");
    refused("/api/v1/ns/ns1/mci/m1/vm/vm-1/ondemand", "fmt=lp&fmt=lp", 400, "fmt");
    refused("/api/v1/ns/ns1/mci/m1/vm/vm-1/ondemand", "period=m", 400, "query");
    refused("/api/v1/ns/ns1/mci/m1/ondemand/netlatency", "fmt=lp", 400, "query");
    refused("/api/v1/ns/ns1/mci/m1/vm/a%2Bb/ondemand", NULL, 400, "vm");
    refused("/api/v1/ns/ns1/mci/m1/vm/%23/ondemand", NULL, 400, "vm");
    refused("/api/v1/ns/ns1/mci/m+/vm/v/ondemand", NULL, 400, "mci");
    refused("/api/v1/ns/%2B/mci/m1/ondemand/netlatency", NULL, 400, "ns");
    refused("/api/v1/ns/ns1/mci/m1/vm/../ondemand", NULL, 400, "vm");
    refused("/api/v1/ns/ns1/mci/m1/vm/a%2Fb/ondemand", NULL, 400, "vm");
    refused("/api/v1/ns/ns1/mci/m1/vm/%01/ondemand", NULL, 400, "vm");
    refused("/api/v1/ns/ns1/mci/m1/vm/v/ondemand/x", NULL, 404, "path");
    refused("/api/v1/ns/ns1/mci/m1/ondemand/cpu", NULL, 404, "path");
    /* Only on-demand names are topic levels: a query's name may hold '+'. */
    ok(VM_PATH "cpu", NULL, &r);
    ok("/api/v1/ns/ns1/mci/m1/vm/a+b/metric/cpu", NULL, &r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forms),     cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_bad_names), cmocka_unit_test(test_bad_paths_and_sizes),
        cmocka_unit_test(test_influxql),  cmocka_unit_test(test_influxql_kinds),
        cmocka_unit_test(test_ondemand),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
