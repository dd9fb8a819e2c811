/* Where the collector writes: the store's write URL for output.url, output.api, output.db,
 * output.rp, output.org and output.bucket, every query value percent-encoded, and
 * output.gzip=auto compressing unless the store's host (as parsed) is loopback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "collector/collector.h"
#include "collector/writer.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

static struct collector_config config(const char *url, const char *api, const char *db)
{
    struct collector_config c;
    memset(&c, 0, sizeof(c));
    c.output.url = (char *)url;
    c.output.api = (char *)api;
    c.output.db = (char *)db;
    c.output.rp = (char *)"";
    c.output.org = (char *)"";
    c.output.bucket = (char *)"damselfly";
    c.output.gzip_mode = (char *)"auto";
    return c;
}

/* output.gzip=auto for a store at url: 1 when the collector compresses. */
static int gzips(const char *url)
{
    struct collector_config c = config(url, "v1", "dsf");
    char out[1024], err[256];
    assert_int_equal(writer_output_target(&c, out, sizeof(out), err, sizeof(err)), 0);
    return c.output.gzip;
}

static void test_loopback_decided_on_the_host(void **state)
{
    (void)state;
    assert_false(gzips("http://127.0.0.1:8086"));
    assert_false(gzips("http://127.3.2.1:8086/influx"));
    assert_false(gzips("http://localhost:8086"));
    assert_false(gzips("http://LOCALHOST"));
    assert_false(gzips("http://[::1]:8086"));
    /* Names and addresses that only start like loopback are remote. */
    assert_true(gzips("http://127.0.0.1.evil.com:8086"));
    assert_true(gzips("http://localhost.evil.com:8086"));
    assert_true(gzips("http://127.example:8086"));
    assert_true(gzips("http://user:127.0.0.1@influx.example.com:8086"));
    assert_true(gzips("http://[::2]:8086"));
    assert_true(gzips("https://influx.example.com"));
    assert_true(gzips("http://128.0.0.1:8086"));
}

static void test_gzip_setting_wins(void **state)
{
    (void)state;
    struct collector_config c = config("http://127.0.0.1:8086", "v1", "dsf");
    char out[1024], err[256];
    c.output.gzip_mode = (char *)"true";
    assert_int_equal(writer_output_target(&c, out, sizeof(out), err, sizeof(err)), 0);
    assert_true(c.output.gzip);
    c = config("https://influx.example.com", "v1", "dsf");
    c.output.gzip_mode = (char *)"false";
    assert_int_equal(writer_output_target(&c, out, sizeof(out), err, sizeof(err)), 0);
    assert_false(c.output.gzip);
}

/* %2f and %2F are the same octet: libcurl versions differ in the case they write. */
static void upper_escapes(char *s)
{
    for (; *s; s++)
        if (*s == '%' && s[1] && s[2]) {
            s[1] = (char)toupper((unsigned char)s[1]);
            s[2] = (char)toupper((unsigned char)s[2]);
        }
}

static void expect_url(struct collector_config *c, const char *want)
{
    char out[1024], err[256] = "", expected[1024];
    assert_int_equal(writer_output_target(c, out, sizeof(out), err, sizeof(err)), 0);
    snprintf(expected, sizeof(expected), "%s", want);
    upper_escapes(out);
    upper_escapes(expected);
    assert_string_equal(out, expected);
}

static void test_v1_url_escapes_db_and_rp(void **state)
{
    (void)state;
    struct collector_config c = config("http://127.0.0.1:8086", "v1", "damselfly");
    expect_url(&c, "http://127.0.0.1:8086/write?db=damselfly&precision=ns");
    c = config("http://127.0.0.1:8086", "v1", "dsf test&x=1#frag");
    c.output.rp = (char *)"one week";
    expect_url(&c,
               "http://127.0.0.1:8086/write?db=dsf+test%26x%3d1%23frag&rp=one+week&precision=ns");
    c = config("http://127.0.0.1:8086", "v1", "m\xc3\xa9triques/\xe6\x97\xa5");
    expect_url(&c, "http://127.0.0.1:8086/write?db=m%c3%a9triques%2f%e6%97%a5&precision=ns");
    /* A path prefix (a reverse proxy) is kept, with or without its trailing slash. */
    c = config("https://proxy.example.com/influx/", "v1", "dsf");
    expect_url(&c, "https://proxy.example.com/influx/write?db=dsf&precision=ns");
}

static void test_v2_and_vm_urls(void **state)
{
    (void)state;
    struct collector_config c = config("http://127.0.0.1:8086", "v2", "");
    c.output.org = (char *)"acme & co";
    c.output.bucket = (char *)"metrics?raw";
    expect_url(&c, "http://127.0.0.1:8086/api/v2/write?org=acme+%26+co&bucket=metrics%3fraw"
                   "&precision=ns");
    c = config("http://127.0.0.1:8428", "vm", "");
    expect_url(&c, "http://127.0.0.1:8428/write?precision=ns");
}

static void test_bad_settings_refused(void **state)
{
    (void)state;
    char out[1024], err[256] = "";
    struct collector_config c = config("http://127.0.0.1:8086", "v3", "dsf");
    assert_int_equal(writer_output_target(&c, out, sizeof(out), err, sizeof(err)), -1);
    assert_non_null(strstr(err, "output.api 'v3'"));
    c = config("http://[::1:8086", "v1", "dsf");
    assert_int_equal(writer_output_target(&c, out, sizeof(out), err, sizeof(err)), -1);
    assert_non_null(strstr(err, "output URL 'http://[::1:8086'"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loopback_decided_on_the_host),
        cmocka_unit_test(test_gzip_setting_wins),
        cmocka_unit_test(test_v1_url_escapes_db_and_rp),
        cmocka_unit_test(test_v2_and_vm_urls),
        cmocka_unit_test(test_bad_settings_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
