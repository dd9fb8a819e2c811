#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/internal.h"
#include "common/metrics.h"

/* A registry rendered the way /metrics renders it becomes one line per sample: the metric's
 * name the field, its labels tags after daemon and id, histogram buckets left out. */
static void page_becomes_lines(void **state)
{
    struct dsf_metrics m = {0};
    uint64_t in = 7, drop[2] = {1, 0};
    static const char *const reasons[] = {"pending full", "spool"};
    static const double bounds[] = {0.5, 1};
    struct dsf_histogram h;
    assert_int_equal(dsf_histogram_init(&h, bounds, 2), 0);
    dsf_histogram_observe(&h, 0.25, 4);
    metrics_add_u64(&m, "points_in_total", DSF_COUNTER, "In.", NULL, &in);
    metrics_add_u64_by(&m, "dropped_total", DSF_COUNTER, "Drops.", "reason", reasons, 2, drop);
    metrics_add_histogram(&m, "age_seconds", "Age.", NULL, &h);
    struct dsf_buf page = {0}, out = {0};
    metrics_render(&m, &page);
    uint64_t skipped = 0;
    uint64_t n =
        dsf_internal_lines(page.data, page.len, "collector", "local-1", 42, &out, &skipped);
    assert_int_equal(n, 5);
    assert_int_equal(skipped, 0);
    assert_string_equal(buf_cstr(&out),
                        "dsf_internal,daemon=collector,id=local-1 points_in_total=7 42\n"
                        "dsf_internal,daemon=collector,id=local-1,reason=pending\\ full "
                        "dropped_total=1 42\n"
                        "dsf_internal,daemon=collector,id=local-1,reason=spool dropped_total=0 42\n"
                        "dsf_internal,daemon=collector,id=local-1 age_seconds_sum=1 42\n"
                        "dsf_internal,daemon=collector,id=local-1 age_seconds_count=4 42\n");
    buf_free(&page);
    buf_free(&out);
    dsf_histogram_free(&h);
    metrics_free(&m);
}

/* What InfluxDB would refuse never reaches it: an empty label is left out, a label named like
 * the writer's own tags is renamed, NaN is skipped and counted, a malformed line is left out. */
static void unstorable_samples(void **state)
{
    const char *page = "# HELP x X.\n"
                       "build_info{daemon=\"alarm\",version=\"\",commit=\"a\\\"b\"} 1\n"
                       "ratio NaN\n"
                       "broken{x=1} 2\n"
                       "up 1 1700000000000\n";
    struct dsf_buf out = {0};
    uint64_t skipped = 0;
    uint64_t n = dsf_internal_lines(page, strlen(page), "alarm", "a,1", 5, &out, &skipped);
    assert_int_equal(n, 2);
    assert_int_equal(skipped, 1);
    assert_string_equal(buf_cstr(&out),
                        "dsf_internal,daemon=alarm,id=a\\,1,label_daemon=alarm,commit=a\"b "
                        "build_info=1 5\n"
                        "dsf_internal,daemon=alarm,id=a\\,1 up=1 5\n");
    buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(page_becomes_lines),
        cmocka_unit_test(unstorable_samples),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
