#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <inttypes.h>
#include <string.h>

#include <cmocka.h>

#include "common/lp.h"
#include "common/metric_json.h"
#include "common/utf8.h"

static void escaping_follows_the_grammar(void **state)
{
    struct dsf_batch b = {0};
    struct dsf_buf out = {0};
    batch_begin(&b, "my meas,x", 1700000000000000000LL);
    batch_tag(&b, "tag key", "a=b,c d");
    batch_tag(&b, "empty", ""); /* dropped: no empty tag values in line protocol */
    batch_field_f(&b, "f 1", 1.5);
    batch_field_i(&b, "i", -42);
    batch_field_u(&b, "u", 18446744073709551615ULL);
    batch_field_b(&b, "b", 1);
    batch_field_s(&b, "s", "say \"hi\" \\ bye");
    batch_end(&b);
    struct dsf_tagset global = {0};
    tagset_add(&global, "vm", "vm 1");
    lp_render_batch(&out, &b, &global);
    assert_string_equal(buf_cstr(&out),
                        "my\\ meas\\,x,tag\\ key=a\\=b\\,c\\ d,vm=vm\\ 1 f\\ 1=1.5,i=-42i,"
                        "u=18446744073709551615u,b=true,s=\"say \\\"hi\\\" \\\\ bye\" "
                        "1700000000000000000\n");
    batch_free(&b);
    buf_free(&out);
}

static void point_without_fields_is_discarded(void **state)
{
    struct dsf_batch b = {0};
    batch_begin(&b, "m", 1);
    batch_tag(&b, "t", "v");
    batch_field_f(&b, "nan", 0.0 / 0.0);
    batch_end(&b);
    assert_int_equal(b.npoints, 0);
    batch_begin(&b, "m", 1);
    batch_field_f(&b, "x", 1);
    batch_end(&b);
    assert_int_equal(b.npoints, 1);
    assert_int_equal(b.points[0].ntags, 0);
    batch_free(&b);
}

static void floats_read_back_exactly(void **state)
{
    const double values[] = {0.1, 1.0 / 3, 1e300, -2.5e-300, 123456789.123456789, 0};
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        struct dsf_buf out = {0};
        lp_put_float(&out, values[i]);
        assert_true(strtod(buf_cstr(&out), NULL) == values[i]);
        buf_free(&out);
    }
}

static struct lp_line line;

static void parser_reads_every_type(void **state)
{
    const char *s = "cpu\\ x,host=a\\,b,region=us\\ east "
                    "f=1.5,i=-3i,u=7u,t=T,fl=false,s=\"a \\\"q\\\" b\",e=1e-3 1234";
    const char *reason = NULL;
    assert_int_equal(lp_parse_line(s, strlen(s), &line, &reason), 0);
    char tmp[64];
    lp_unescape(line.measurement, 0, tmp, sizeof(tmp));
    assert_string_equal(tmp, "cpu x");
    assert_int_equal(line.ntags, 2);
    lp_unescape(line.tags[0].val, 0, tmp, sizeof(tmp));
    assert_string_equal(tmp, "a,b");
    assert_int_equal(line.nfields, 7);
    assert_int_equal(line.fields[0].type, DSF_V_FLOAT);
    assert_int_equal(line.fields[1].type, DSF_V_INT);
    assert_int_equal(line.fields[1].num.i, -3);
    assert_int_equal(line.fields[2].type, DSF_V_UINT);
    assert_int_equal(line.fields[3].type, DSF_V_BOOL);
    assert_int_equal(line.fields[3].num.b, 1);
    assert_int_equal(line.fields[4].num.b, 0);
    assert_int_equal(line.fields[5].type, DSF_V_STR);
    lp_unescape(line.fields[5].val, 1, tmp, sizeof(tmp));
    assert_string_equal(tmp, "a \"q\" b");
    assert_true(line.fields[6].num.f == 1e-3);
    assert_int_equal(line.has_ts, 1);
    assert_int_equal(line.ts, 1234);
}

static void parser_rejects_with_reason(void **state)
{
    const char *bad[] = {
        "",          "m",
        "m f=",      "m,t f=1",
        "m,=v f=1",  "m f=1 12x",
        "m f=\"abc", "m f=1.2.3",
        "m f=1i2",   ",t=v f=1",
        "m f=1 1 2", "m f=-i",
        "m f=1e",    "m f=nan",
        "m f=1,",    "m,t=v,=x f=1",
        "m f=1e999", "m f=99999999999999999999i",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *reason = NULL;
        int rc = lp_parse_line(bad[i], strlen(bad[i]), &line, &reason);
        if (rc != -1)
            fail_msg("accepted invalid line '%s'", bad[i]);
        assert_non_null(reason);
    }
}

static void timestamps_are_read_exactly(void **state)
{
    const struct {
        const char *line;
        int ok;
        int64_t ts;
    } cases[] = {
        {"m f=1 1700000000123456789", 1, INT64_C(1700000000123456789)},
        {"m f=1 9223372036854775807", 1, INT64_MAX},
        {"m f=1 -9223372036854775808", 1, INT64_MIN},
        {"m f=1 0000000000000000042", 1, 42},
        {"m f=1 12345678", 1, 12345678},
        {"m f=1 9223372036854775808", 0, 0},
        {"m f=1 99999999999999999999", 0, 0},
        {"m f=1 17000000001234:6789", 0, 0}, /* ':' and '/' border the digits */
        {"m f=1 1700000/00123456789", 0, 0},
        {"m f=1 17000000a0123456789", 0, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *reason = NULL;
        int rc = lp_parse_line(cases[i].line, strlen(cases[i].line), &line, &reason);
        if (rc != (cases[i].ok ? 0 : -1) || (cases[i].ok && line.ts != cases[i].ts))
            fail_msg("'%s': rc %d, ts %" PRId64, cases[i].line, rc, line.ts);
    }
}

/* lp_check_line accepts and splits as lp_parse_line does, without converting floats. */
static void check_line_splits_without_converting(void **state)
{
    const char *lines[] = {"cpu,host=a usage=12.5,n=3i,ok=t,s=\"x\" 1700000000000000000",
                           "cpu,host=a usage=1e308 1",
                           "cpu usage=1.5",
                           "cpu usage=1e999 1",
                           "cpu usage=1.2.3 1",
                           "cpu,host=a\\,b usage=0.25 1"};
    static struct lp_line checked;
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        const char *r1 = NULL, *r2 = NULL;
        int rc = lp_parse_line(lines[i], strlen(lines[i]), &line, &r1);
        assert_int_equal(lp_check_line(lines[i], strlen(lines[i]), &checked, &r2), rc);
        if (rc)
            continue;
        assert_int_equal(checked.ntags, line.ntags);
        assert_int_equal(checked.nfields, line.nfields);
        assert_int_equal(checked.ts, line.ts);
        for (uint32_t f = 0; f < line.nfields; f++) {
            assert_int_equal(checked.fields[f].type, line.fields[f].type);
            assert_int_equal(checked.fields[f].val.n, line.fields[f].val.n);
        }
    }
    lp_check_line(lines[0], strlen(lines[0]), &checked, &(const char *){NULL});
    assert_true(checked.fields[0].num.f == 0); /* not converted */
    assert_int_equal(checked.fields[1].num.i, 3);
}

static void encoder_output_parses_back(void **state)
{
    struct dsf_batch b = {0};
    struct dsf_buf out = {0};
    batch_begin(&b, "a,b c=d\\", 99);
    batch_tag(&b, "k=\\", "v\\,w");
    batch_field_s(&b, "s", "x\\");
    batch_field_i(&b, "n", 5);
    batch_end(&b);
    lp_render_batch(&out, &b, NULL);
    const char *reason = NULL;
    assert_int_equal(lp_parse_line(out.data, out.len - 1, &line, &reason), 0);
    char tmp[64];
    lp_unescape(line.measurement, 0, tmp, sizeof(tmp));
    assert_string_equal(tmp, "a,b c=d\\");
    lp_unescape(line.tags[0].key, 0, tmp, sizeof(tmp));
    assert_string_equal(tmp, "k=\\");
    lp_unescape(line.tags[0].val, 0, tmp, sizeof(tmp));
    assert_string_equal(tmp, "v\\,w");
    lp_unescape(line.fields[0].val, 1, tmp, sizeof(tmp));
    assert_string_equal(tmp, "x\\");
    assert_int_equal(line.ts, 99);
    batch_free(&b);
    buf_free(&out);
}

static void json_rendering(void **state)
{
    struct dsf_batch b = {0};
    struct dsf_buf out = {0};
    batch_begin(&b, "mem", 5);
    batch_tag(&b, "t", "q\"x");
    batch_field_i(&b, "total", 10);
    batch_field_s(&b, "s", "line\nnext\xff\xc3\xa9");
    batch_end(&b);
    struct dsf_tagset g = {0};
    tagset_add(&g, "vm", "v1");
    json_render_batch(&out, &b, &g);
    assert_string_equal(buf_cstr(&out),
                        "[{\"name\":\"mem\",\"tags\":{\"t\":\"q\\\"x\",\"vm\":\"v1\"},"
                        "\"fields\":{\"total\":10,\"s\":\"line\\nnext\\ufffd\xc3\xa9\"},"
                        "\"timestamp\":5}]");
    batch_free(&b);
    buf_free(&out);
}

static void utf8_validation_is_strict(void **state)
{
    static const char *const good[] = {"plain",        "\xc3\xa9",         "\xe2\x82\xac",
                                       "\xed\x9f\xbf", "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf"};
    static const char *const bad[] = {
        "\x80",             /* stray continuation byte */
        "\xc0\xaf",         /* overlong '/' */
        "\xe0\x80\xaf",     /* overlong, three bytes */
        "\xed\xa0\x80",     /* surrogate U+D800 */
        "\xf0\x80\x80\xaf", /* overlong, four bytes */
        "\xf4\x90\x80\x80", /* above U+10FFFF */
        "\xe2\x82",         /* cut short */
        "\xf5\x80\x80\x80",
    };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        assert_true(utf8_valid(good[i], strlen(good[i])));
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_false(utf8_valid(bad[i], strlen(bad[i])));

    /* The JSON writer turns each ill-formed byte into U+FFFD, so strict readers accept it. */
    struct dsf_buf out = {0};
    json_put_string(&out, "a\xed\xa0\x80"
                          "b");
    assert_string_equal(buf_cstr(&out), "\"a\\ufffd\\ufffd\\ufffdb\"");
    buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(escaping_follows_the_grammar),
        cmocka_unit_test(point_without_fields_is_discarded),
        cmocka_unit_test(floats_read_back_exactly),
        cmocka_unit_test(parser_reads_every_type),
        cmocka_unit_test(parser_rejects_with_reason),
        cmocka_unit_test(timestamps_are_read_exactly),
        cmocka_unit_test(check_line_splits_without_converting),
        cmocka_unit_test(encoder_output_parses_back),
        cmocka_unit_test(json_rendering),
        cmocka_unit_test(utf8_validation_is_strict),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
