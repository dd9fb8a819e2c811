#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/metrics.h"

static double half(void *arg)
{
    return *(double *)arg / 2;
}

static void families_render_once_with_all_series(void **state)
{
    struct dsf_metrics m = {0};
    uint64_t a = 3, b = 4;
    double g = 2.5, src = 9;
    metrics_add_u64(&m, "x_total", DSF_COUNTER, "Xs.", "input=\"cpu\"", &a);
    metrics_add_double(&m, "gauge", DSF_GAUGE, "A gauge.", NULL, &g);
    metrics_add_u64(&m, "x_total", DSF_COUNTER, "Xs.", "input=\"mem\"", &b);
    metrics_add_fn(&m, "half", DSF_GAUGE, "Half.", NULL, half, &src);
    dsf_count(&a, 2);
    struct dsf_buf out = {0};
    metrics_render(&m, &out);
    assert_string_equal(buf_cstr(&out), "# HELP x_total Xs.\n# TYPE x_total counter\n"
                                        "x_total{input=\"cpu\"} 5\nx_total{input=\"mem\"} 4\n"
                                        "# HELP gauge A gauge.\n# TYPE gauge gauge\ngauge 2.5\n"
                                        "# HELP half Half.\n# TYPE half gauge\nhalf 4.5\n");
    assert_true(metrics_value(&m, "x_total", "input=\"mem\"") == 4);
    assert_true(metrics_value(&m, "nope", NULL) == -1);
    buf_free(&out);
    metrics_free(&m);
}

static void label_values_are_escaped(void **state)
{
    struct dsf_buf out = {0};
    prom_label_value(&out, "a\"b\\c\nd");
    assert_string_equal(buf_cstr(&out), "a\\\"b\\\\c\\nd");
    buf_free(&out);
}

/* The exporters' one sample writer: labels in order, values escaped, an early NULL key ends
 * them (an optional last label). */
static void labeled_sample_escapes_and_ends_at_null_key(void **state)
{
    (void)state;
    struct dsf_buf out = {0};
    prom_labeled_sample(&out, "x_bytes", 1.5, "device", "a\"b", "mode", "ro", NULL);
    prom_labeled_sample(&out, "x_up", 1, "peer", "p", NULL, "ignored", NULL);
    prom_labeled_sample(&out, "x_total", 7, NULL);
    assert_string_equal(buf_cstr(&out), "x_bytes{device=\"a\\\"b\",mode=\"ro\"} 1.5\n"
                                        "x_up{peer=\"p\"} 1\n"
                                        "x_total 7\n");
    buf_free(&out);
}

static void histogram_renders_cumulative_buckets(void **state)
{
    static const double bounds[] = {0.1, 1, 10};
    struct dsf_histogram h;
    assert_int_equal(dsf_histogram_init(&h, bounds, 3), 0);
    dsf_histogram_observe(&h, 0.05, 2);
    dsf_histogram_observe(&h, 1, 1); /* on a bound: counted in that bucket (le) */
    dsf_histogram_observe(&h, 30, 1);
    struct dsf_metrics m = {0};
    metrics_add_histogram(&m, "x_age_seconds", "Age.", "k=\"v\"", &h);
    struct dsf_buf out = {0};
    metrics_render(&m, &out);
    assert_string_equal(buf_cstr(&out), "# HELP x_age_seconds Age.\n"
                                        "# TYPE x_age_seconds histogram\n"
                                        "x_age_seconds_bucket{k=\"v\",le=\"0.1\"} 2\n"
                                        "x_age_seconds_bucket{k=\"v\",le=\"1\"} 3\n"
                                        "x_age_seconds_bucket{k=\"v\",le=\"10\"} 3\n"
                                        "x_age_seconds_bucket{k=\"v\",le=\"+Inf\"} 4\n"
                                        "x_age_seconds_sum{k=\"v\"} 31.1\n"
                                        "x_age_seconds_count{k=\"v\"} 4\n");
    buf_free(&out);
    metrics_free(&m);
    dsf_histogram_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(families_render_once_with_all_series),
        cmocka_unit_test(label_values_are_escaped),
        cmocka_unit_test(labeled_sample_escapes_and_ends_at_null_key),
        cmocka_unit_test(histogram_renders_cumulative_buckets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
