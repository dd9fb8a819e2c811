#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/file.h"
#include "common/ingest.h"
#include "prom_test.h"

static struct seen parse(const char *text)
{
    struct seen seen = {0};
    prom_text_parse(text, strlen(text), &seen_ops, &seen);
    return seen;
}

/* The one line text renders to, or the reason it is refused. */
static void renders_as(const char *text, const char *want)
{
    struct seen seen = parse(text);
    const char *got = seen.rejects || seen.unrendered ? seen.last_reason : buf_cstr(&seen.lines);
    if (strcmp(got, want) != 0)
        fail_msg("'%s': wanted '%s', got '%s'", text, want, got);
    buf_free(&seen.lines);
}

static void samples_labels_and_timestamps(void **state)
{
    (void)state;
    renders_as("http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n",
               "http_requests_total,method=post,code=200 value=1027 1395066363000000000\n");
    renders_as("up 1", "up value=1 1700000000000000000\n");
    renders_as("a:b_c{} 2", "a:b_c value=2 1700000000000000000\n");
    renders_as("m{a=\"1\",} 3", "m,a=1 value=3 1700000000000000000\n");
    renders_as("m { a = \"1\" , b=\"2\" }\t4\t-5  ", "m,a=1,b=2 value=4 -5000000\n");
    renders_as("m{a=\"\",b=\"x\"} 1", "m,b=x value=1 1700000000000000000\n");
    renders_as("m{a=\"x y,z=w\"} 1", "m,a=x\\ y\\,z\\=w value=1 1700000000000000000\n");
    renders_as("m 1 +7", "m value=1 7000000\n");
}

static void label_escapes_are_undone(void **state)
{
    (void)state;
    struct seen seen = parse("m{path=\"C:\\\\dir\",q=\"say \\\"hi\\\"\"} 1\n");
    assert_int_equal(seen.samples, 1);
    assert_true(seen.last.labels[0].escaped);
    assert_string_equal(buf_cstr(&seen.lines),
                        "m,path=C:\\\\dir,q=say\\ \"hi\" value=1 1700000000000000000\n");
    buf_free(&seen.lines);
    /* A newline cannot be a tag value: the sample is refused, not altered. */
    renders_as("m{a=\"x\\ny\"} 1", "line break or NUL in a label");
    renders_as("m{a=\"x\\ty\"} 1", "invalid escape in label value");
    renders_as("m{a=\"x} 1", "unterminated label value");
}

static void values_read_as_go_parsefloat(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        double want;
    } good[] = {{"m 1e3", 1e3}, {"m -1.5E-3", -1.5e-3}, {"m .5", .5},     {"m 5.", 5},
                {"m +2", 2},    {"m 0x1p-2", .25},      {"m 0X1.8P1", 3}, {"m 1e-400", 0},
                {"m 007", 7}};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        struct seen seen = parse(good[i].text);
        assert_int_equal(seen.samples, 1);
        assert_true(seen.last.value == good[i].want);
        buf_free(&seen.lines);
    }
    static const char *const special[] = {"NaN", "nan", "+Inf", "-Inf", "Inf", "infinity", "-INF"};
    for (size_t i = 0; i < sizeof(special) / sizeof(special[0]); i++) {
        char text[32];
        snprintf(text, sizeof(text), "m %s", special[i]);
        struct seen seen = parse(text);
        assert_int_equal(seen.samples, 1);
        assert_false(isfinite(seen.last.value));
        buf_free(&seen.lines);
    }
    renders_as("m NaN", "NaN value");
    renders_as("m +Inf", "+Inf value");
    renders_as("m -Inf", "-Inf value");
    static const char *const bad[] = {"m 0x1", "m 1_000", "m abc", "m 1e400", "m -nan",   "m 1e",
                                      "m ",    "m",       "m --1", "m 1.2.3", "m infinit"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct seen seen = parse(bad[i]);
        if (seen.samples || seen.rejects != 1)
            fail_msg("'%s' was taken", bad[i]);
    }
}

static void timestamps_are_int64_ms(void **state)
{
    (void)state;
    renders_as("m 1 -1", "m value=1 -1000000\n");
    renders_as("m 1 9223372036854775807", "timestamp out of range");
    renders_as("m 1 9223372036854775808", "invalid timestamp");
    renders_as("m 1 -9223372036854775809", "invalid timestamp");
    renders_as("m 1 12a", "invalid timestamp");
    renders_as("m 1 1.5", "invalid timestamp");
    renders_as("m 1 2 3", "text after the timestamp");
    struct seen seen = parse("m 1 -9223372036854775808");
    assert_int_equal(seen.samples, 1);
    assert_true(seen.last.ts_ms == INT64_MIN);
    buf_free(&seen.lines);
}

static void comments_blank_lines_and_crlf(void **state)
{
    (void)state;
    struct seen seen = parse("# HELP m A \\\\ help\\n text.\r\n"
                             "# TYPE m counter\r\n"
                             "\r\n"
                             "   \n"
                             "# any other comment { \"\n"
                             "#\n"
                             "m{a=\"1\"} 1\r\n"
                             "# TYPE m2 histogram\n"
                             "m2 2");
    assert_int_equal(seen.samples, 2);
    assert_int_equal(seen.rejects, 0);
    assert_string_equal(buf_cstr(&seen.lines), "m,a=1 value=1 1700000000000000000\n"
                                               "m2 value=2 1700000000000000000\n");
    buf_free(&seen.lines);
    static const char *const bad[] = {"# TYPE m countr",      "# TYPE m",
                                      "# TYPE 1m gauge",      "# HELP m bad \\t escape",
                                      "# TYPE m gauge extra", "# HELP"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        seen = parse(bad[i]);
        if (seen.samples || seen.rejects != 1)
            fail_msg("'%s' was not refused", bad[i]);
    }
}

static void histograms_and_summaries(void **state)
{
    (void)state;
    struct seen seen = parse("# TYPE rpc histogram\n"
                             "rpc_bucket{le=\"0.05\"} 24054\n"
                             "rpc_bucket{le=\"+Inf\"} 144320\n"
                             "rpc_sum 53423\n"
                             "rpc_count 144320\n"
                             "# TYPE go_gc summary\n"
                             "go_gc{quantile=\"0.5\"} 4.9351e-05\n"
                             "go_gc{quantile=\"1\"} NaN\n"
                             "go_gc_sum 1.7560473e+07\n"
                             "go_gc_count 2693\n");
    assert_int_equal(seen.samples, 8);
    assert_int_equal(seen.rejects, 0);
    assert_int_equal(seen.unrendered, 1); /* the NaN quantile */
    assert_non_null(
        strstr(buf_cstr(&seen.lines), "rpc_bucket,le=+Inf value=144320 1700000000000000000\n"));
    assert_non_null(
        strstr(buf_cstr(&seen.lines), "go_gc,quantile=0.5 value=4.9351e-05 1700000000000000000\n"));
    buf_free(&seen.lines);
}

static void bad_lines_cost_nothing_else(void **state)
{
    (void)state;
    static const char *const bad[] = {"{a=\"b\"} 1",
                                      "m{a=b} 1",
                                      "m{a=\"b\" 1",
                                      "m{a=\"1\",a=\"2\"} 1",
                                      "m{__name__=\"x\"} 1",
                                      "m{,} 1",
                                      "m{1a=\"x\"} 1",
                                      "m-x 1",
                                      "9m 1",
                                      "m{a=\"1\"}",
                                      "\x01\x02\xff",
                                      "m{a:b=\"1\"} 1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[256];
        snprintf(text, sizeof(text), "good 1\n%s\ngood 2\n", bad[i]);
        struct seen seen = parse(text);
        if (seen.samples != 2 || seen.rejects != 1)
            fail_msg("'%s': %zu samples, %zu rejects", bad[i], seen.samples, seen.rejects);
        assert_string_equal(seen.last_reject_text, bad[i]);
        buf_free(&seen.lines);
    }
    renders_as("m{a=\"1\",a=\"2\"} 1", "duplicate label name");
    renders_as("m{__name__=\"x\"} 1", "reserved label name __name__");
    renders_as("m{a=\"\xff\"} 1", "label not UTF-8");
}

static void label_count_and_line_length_are_capped(void **state)
{
    (void)state;
    struct dsf_buf text = {0};
    for (int labels = PROM_MAX_LABELS; labels <= PROM_MAX_LABELS + 1; labels++) {
        buf_reset(&text);
        buf_puts(&text, "m{");
        for (int i = 0; i < labels; i++)
            buf_printf(&text, "l%d=\"%d\",", i, i);
        buf_puts(&text, "} 1\nafter 1\n");
        struct seen seen = parse(buf_cstr(&text));
        assert_int_equal(seen.samples, labels == PROM_MAX_LABELS ? 2 : 1);
        if (labels > PROM_MAX_LABELS)
            assert_string_equal(seen.last_reason, "too many labels");
        buf_free(&seen.lines);
    }
    buf_reset(&text);
    buf_puts(&text, "m{a=\"");
    for (int i = 0; i < INGEST_MAX_LINE; i++)
        buf_putc(&text, 'x');
    buf_puts(&text, "\"} 1\nafter 1\n");
    struct seen seen = parse(buf_cstr(&text));
    assert_int_equal(seen.samples, 1);
    assert_int_equal(seen.rejects, 1);
    assert_string_equal(seen.last_reason, "line too long");
    buf_free(&seen.lines);
    buf_free(&text);
}

static void node_exporter_body_parses_whole(void **state)
{
    (void)state;
    size_t len;
    char *text = dsf_read_file(DSF_SRC "/tests/data/prom/node_exporter.txt", &len);
    assert_non_null(text);
    struct seen seen = {0};
    size_t passed = prom_text_parse(text, len, &seen_ops, &seen);
    assert_int_equal(seen.rejects, 0);
    assert_true(passed > 400);
    assert_int_equal(passed, seen.samples);
    /* Every sample line of the body became a line, but for non-finite values. */
    size_t lines = 0;
    for (size_t i = 0; i < seen.lines.len; i++)
        lines += seen.lines.data[i] == '\n';
    assert_int_equal(lines + seen.unrendered, passed);
    const char *cpu =
        strstr(buf_cstr(&seen.lines), "node_cpu_seconds_total,cpu=0,mode=idle value=");
    assert_non_null(cpu);
    struct lp_line l;
    const char *reason;
    assert_int_equal(lp_parse_line(cpu, (size_t)(strchr(cpu, '\n') - cpu), &l, &reason), 0);
    assert_int_equal(l.ntags, 2);
    assert_true(l.fields[0].num.f > 0);
    buf_free(&seen.lines);
    free(text);
}

static void counting(void *ctx, const struct prom_sample *s)
{
    (void)s;
    ++*(size_t *)ctx;
}

static void million_series_in_one_body(void **state)
{
    (void)state;
    struct dsf_buf text = {0};
    for (int i = 0; i < 1000000; i++)
        buf_printf(&text, "series_total{id=\"%d\",job=\"j\"} %d\n", i, i);
    size_t samples = 0;
    struct prom_ops ops = {counting, seen_reject};
    assert_int_equal(prom_text_parse(text.data, text.len, &ops, &samples), 1000000);
    assert_int_equal(samples, 1000000);
    buf_free(&text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(samples_labels_and_timestamps),
        cmocka_unit_test(label_escapes_are_undone),
        cmocka_unit_test(values_read_as_go_parsefloat),
        cmocka_unit_test(timestamps_are_int64_ms),
        cmocka_unit_test(comments_blank_lines_and_crlf),
        cmocka_unit_test(histograms_and_summaries),
        cmocka_unit_test(bad_lines_cost_nothing_else),
        cmocka_unit_test(label_count_and_line_length_are_capped),
        cmocka_unit_test(node_exporter_body_parses_whole),
        cmocka_unit_test(million_series_in_one_body),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
