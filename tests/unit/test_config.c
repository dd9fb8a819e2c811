#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/config.h"

struct main_opts {
    char *name;
    int64_t interval_ms;
    uint64_t max_bytes;
    int verbose;
    int64_t count;
    double ratio;
    struct dsf_strlist peers;
};

struct plugin_opts {
    int enabled;
    char *path;
};

static const struct dsf_cfg_key main_keys[] = {
    {"name", DSF_CFG_STR, "dsf", offsetof(struct main_opts, name), "a name", 0, 0},
    {"interval", DSF_CFG_DURATION, "2s", offsetof(struct main_opts, interval_ms), "interval", 1000,
     3600000},
    {"buffer.max_bytes", DSF_CFG_SIZE, "8MiB", offsetof(struct main_opts, max_bytes), "cap", 0, 0},
    {"verbose", DSF_CFG_BOOL, "false", offsetof(struct main_opts, verbose), "talk more", 0, 0},
    {"count", DSF_CFG_INT, "3", offsetof(struct main_opts, count), "how many", 0, 10},
    {"ratio", DSF_CFG_DOUBLE, "0.5", offsetof(struct main_opts, ratio), "a ratio", 0, 1},
    {"peers", DSF_CFG_STRLIST, "", offsetof(struct main_opts, peers), "peers", 0, 0},
    DSF_CFG_END,
};

static const struct dsf_cfg_key plugin_keys[] = {
    {"enabled", DSF_CFG_BOOL, "true", offsetof(struct plugin_opts, enabled), "on", 0, 0},
    {"path", DSF_CFG_STR, "/proc", offsetof(struct plugin_opts, path), "where", 0, 0},
    DSF_CFG_END,
};

struct fixture {
    struct main_opts m;
    struct plugin_opts p;
    struct dsf_cfg_section secs[3];
    char err[DSF_CFG_ERRLEN];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    f->secs[0] = (struct dsf_cfg_section){"", main_keys, &f->m, NULL};
    f->secs[1] = (struct dsf_cfg_section){"inputs.cpu", plugin_keys, &f->p, NULL};
    assert_int_equal(dsf_cfg_defaults(f->secs, f->err, sizeof(f->err)), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    dsf_cfg_free(f->secs);
    free(f);
    return 0;
}

static int load(struct fixture *f, const char *json)
{
    return dsf_cfg_load_json(f->secs, json, strlen(json), "test.json", f->err, sizeof(f->err));
}

static void defaults_apply(void **state)
{
    struct fixture *f = *state;
    assert_string_equal(f->m.name, "dsf");
    assert_int_equal(f->m.interval_ms, 2000);
    assert_int_equal(f->m.max_bytes, 8 * 1024 * 1024);
    assert_int_equal(f->m.count, 3);
    assert_int_equal(f->p.enabled, 1);
    assert_int_equal(f->m.peers.count, 0);
}

static void nested_and_dotted_keys_load(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(load(f, "{\"buffer\": {\"max_bytes\": \"64KiB\"}, \"interval\": \"1500ms\","
                             "\"inputs\": {\"cpu\": {\"enabled\": false}},"
                             "\"peers\": [\"a:1\", \"b:2\"], \"ratio\": 0.25}"),
                     0);
    assert_int_equal(f->m.max_bytes, 65536);
    assert_int_equal(f->m.interval_ms, 1500);
    assert_int_equal(f->p.enabled, 0);
    assert_int_equal(f->m.peers.count, 2);
    assert_string_equal(f->m.peers.items[1], "b:2");
    assert_true(f->m.ratio == 0.25);
}

static void unknown_key_is_named(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(load(f, "{\"inputs\": {\"cpu\": {\"enabeld\": true}}}"), -1);
    assert_non_null(strstr(f->err, "test.json"));
    assert_non_null(strstr(f->err, "inputs.cpu.enabeld"));
    assert_int_equal(load(f, "{\"nme\": \"x\"}"), -1);
    assert_non_null(strstr(f->err, "'nme'"));
}

static void wrong_type_is_named(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(load(f, "{\"verbose\": \"yes please\"}"), -1);
    assert_non_null(strstr(f->err, "'verbose'"));
    assert_int_equal(load(f, "{\"count\": 1.5}"), -1);
    assert_non_null(strstr(f->err, "'count'"));
    assert_int_equal(load(f, "{\"name\": 3}"), -1);
    assert_non_null(strstr(f->err, "expected a string"));
}

static void bounds_are_enforced(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(load(f, "{\"interval\": \"500ms\"}"), -1);
    assert_non_null(strstr(f->err, "'interval'"));
    assert_non_null(strstr(f->err, "outside the allowed range"));
    assert_int_equal(f->m.interval_ms, 2000); /* unchanged */
    assert_int_equal(load(f, "{\"count\": 11}"), -1);
}

static void invalid_json_names_the_position(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(load(f, "{\"name\": \"x\",}"), -1);
    assert_non_null(strstr(f->err, "test.json:1:"));
    assert_int_equal(load(f, "[1,2]"), -1);
    assert_int_equal(load(f, "{\"name\": \"a\", \"name\": \"b\"}"), -1);
}

static void set_and_env_override(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(dsf_cfg_set(f->secs, "inputs.cpu.path=/host/proc", "--set", f->err, sizeof(f->err)), 0);
    assert_string_equal(f->p.path, "/host/proc");
    assert_int_equal(dsf_cfg_set(f->secs, "peers=x:1,y:2,z:3", "--set", f->err, sizeof(f->err)), 0);
    assert_int_equal(f->m.peers.count, 3);
    assert_int_equal(dsf_cfg_set(f->secs, "nope=1", "--set", f->err, sizeof(f->err)), -1);
    assert_non_null(strstr(f->err, "'nope'"));
    assert_int_equal(dsf_cfg_set(f->secs, "novalue", "--set", f->err, sizeof(f->err)), -1);
    setenv("TESTX_BUFFER_MAX_BYTES", "1MiB", 1);
    setenv("TESTX_INPUTS_CPU_ENABLED", "off", 1);
    assert_int_equal(dsf_cfg_env(f->secs, "TESTX_", f->err, sizeof(f->err)), 0);
    assert_int_equal(f->m.max_bytes, 1048576);
    assert_int_equal(f->p.enabled, 0);
    setenv("TESTX_COUNT", "many", 1);
    assert_int_equal(dsf_cfg_env(f->secs, "TESTX_", f->err, sizeof(f->err)), -1);
    assert_non_null(strstr(f->err, "TESTX_COUNT"));
    unsetenv("TESTX_COUNT");
}

static void parsers(void **state)
{
    int64_t ms;
    uint64_t bytes;
    assert_int_equal(dsf_parse_duration_ms("2", &ms), 0);
    assert_int_equal(ms, 2000);
    assert_int_equal(dsf_parse_duration_ms("1.5m", &ms), 0);
    assert_int_equal(ms, 90000);
    assert_int_equal(dsf_parse_duration_ms("-1s", &ms), -1);
    assert_int_equal(dsf_parse_duration_ms("3 weeks", &ms), -1);
    assert_int_equal(dsf_parse_size("8MiB", &bytes), 0);
    assert_int_equal(bytes, 8388608);
    assert_int_equal(dsf_parse_size("1G", &bytes), 0);
    assert_int_equal(bytes, 1000000000);
    assert_int_equal(dsf_parse_size("lots", &bytes), -1);
}

static void help_lists_every_key(void **state)
{
    struct fixture *f = *state;
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    dsf_cfg_help(f->secs, "DAMSELFLY_", out);
    fclose(out);
    assert_non_null(strstr(text, "inputs.cpu.enabled"));
    assert_non_null(strstr(text, "DAMSELFLY_INPUTS_CPU_ENABLED"));
    assert_non_null(strstr(text, "buffer.max_bytes (size, default: 8MiB)"));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(defaults_apply, setup, teardown),
        cmocka_unit_test_setup_teardown(nested_and_dotted_keys_load, setup, teardown),
        cmocka_unit_test_setup_teardown(unknown_key_is_named, setup, teardown),
        cmocka_unit_test_setup_teardown(wrong_type_is_named, setup, teardown),
        cmocka_unit_test_setup_teardown(bounds_are_enforced, setup, teardown),
        cmocka_unit_test_setup_teardown(invalid_json_names_the_position, setup, teardown),
        cmocka_unit_test_setup_teardown(set_and_env_override, setup, teardown),
        cmocka_unit_test_setup_teardown(parsers, setup, teardown),
        cmocka_unit_test_setup_teardown(help_lists_every_key, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
