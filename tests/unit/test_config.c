#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
    assert_int_equal(
        dsf_cfg_set(f->secs, "inputs.cpu.path=/host/proc", "--set", f->err, sizeof(f->err)), 0);
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

struct typed_opts {
    char *topic, *id, *url, *broker, *file;
};

#define T(f) offsetof(struct typed_opts, f)
static const struct dsf_cfg_key typed_keys[] = {
    {"dlq.topic", DSF_CFG_TOPIC, "", T(topic), "a topic", 0, 0},
    {"id", DSF_CFG_ID, "", T(id), "an id", 0, 0},
    {"output.url", DSF_CFG_URL, "http://127.0.0.1:8086", T(url), "a store", 0, 0},
    {"mqtt.url", DSF_CFG_MQTT_URL, "tcp://127.0.0.1:1883", T(broker), "a broker", 0, 0},
    {"mqtt.tls_ca", DSF_CFG_FILE, "", T(file), "a CA file", 0, 0},
    DSF_CFG_END,
};

struct typed_fixture {
    struct typed_opts o;
    struct dsf_cfg_section secs[2];
    char err[DSF_CFG_ERRLEN];
};

static int typed_setup(void **state)
{
    struct typed_fixture *f = calloc(1, sizeof(*f));
    f->secs[0] = (struct dsf_cfg_section){"", typed_keys, &f->o, NULL};
    assert_int_equal(dsf_cfg_defaults(f->secs, f->err, sizeof(f->err)), 0);
    *state = f;
    return 0;
}

static int typed_teardown(void **state)
{
    struct typed_fixture *f = *state;
    dsf_cfg_free(f->secs);
    free(f);
    return 0;
}

/* set KEY VALUE: 0 or -1; a refusal names the origin, the key and the value. */
static int set(struct typed_fixture *f, const char *key, const char *value, const char *shown)
{
    int rc = dsf_cfg_set_value(f->secs, key, value, "--set", f->err, sizeof(f->err));
    if (rc == 0)
        return 0;
    char want[300];
    snprintf(want, sizeof(want), "--set: key '%s': '%s': ", key, shown ? shown : value);
    if (strncmp(f->err, want, strlen(want)) != 0)
        fail_msg("error '%s' does not start with '%s'", f->err, want);
    return rc;
}

static void topics_and_ids_are_checked(void **state)
{
    struct typed_fixture *f = *state;
    assert_int_equal(set(f, "dlq.topic", "dsf/dlq/c1", NULL), 0);
    assert_string_equal(dsf_cfg_str(f->secs, "dlq.topic"), "dsf/dlq/c1");
    assert_int_equal(set(f, "dlq.topic", "", NULL), 0); /* unset: the default topic */
    assert_int_equal(set(f, "dlq.topic", "dsf/+", NULL), -1);
    assert_non_null(strstr(f->err, "wildcards"));
    assert_int_equal(set(f, "dlq.topic", "dsf/#", NULL), -1);
    assert_int_equal(set(f, "dlq.topic", "$SYS/x", NULL), -1);
    assert_int_equal(set(f, "dlq.topic", "dsf/\x01", "dsf/\\x01"), -1);
    assert_int_equal(set(f, "dlq.topic", "dsf/\xff", "dsf/\\xff"), -1); /* not UTF-8 */

    assert_int_equal(set(f, "id", "collector-1.eu_west", NULL), 0);
    assert_int_equal(set(f, "id", "vm \xc3\xa9t\xc3\xa9", NULL), 0);
    assert_int_equal(set(f, "id", "", NULL), 0); /* unset: the host name */
    const struct {
        const char *value, *shown;
    } bad[] = {{"a/b", "a/b"},    {"a+b", "a+b"},    {"a#b", "a#b"},     {" a", " a"},
               {"a\t", "a\\x09"}, {"\x7f", "\\x7f"}, {"\xc3(", "\\xc3("}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(set(f, "id", bad[i].value, bad[i].shown), -1);
    char longest[65];
    memset(longest, 'x', 63);
    longest[63] = '\0';
    assert_int_equal(set(f, "id", longest, NULL), 0);
    longest[63] = 'x';
    longest[64] = '\0';
    assert_int_equal(set(f, "id", longest, NULL), -1);
    assert_non_null(strstr(f->err, "at most 63"));
    /* The JSON file goes through the same check, and is named. */
    const char *json = "{\"id\": \"c/1\"}";
    assert_int_equal(
        dsf_cfg_load_json(f->secs, json, strlen(json), "c.json", f->err, sizeof(f->err)), -1);
    assert_non_null(strstr(f->err, "c.json: key 'id': 'c/1'"));
}

static void urls_are_checked(void **state)
{
    struct typed_fixture *f = *state;
    const char *good_http[] = {"http://influx:8086", "https://user:pw@[::1]:8086/influx?x=1",
                               "HTTP://127.0.0.1", ""};
    for (size_t i = 0; i < sizeof(good_http) / sizeof(good_http[0]); i++)
        assert_int_equal(set(f, "output.url", good_http[i], NULL), 0);
    const char *bad_http[] = {"garbage",       "ftp://x/",     "http://",
                              "http://a b",    "http://x:0",   "http://x:65536",
                              "http://x:8o86", "http://[::1/", "http://h\xc3\xa9"};
    for (size_t i = 0; i < sizeof(bad_http) / sizeof(bad_http[0]); i++)
        assert_int_equal(set(f, "output.url", bad_http[i], NULL), -1);
    const char *good_mqtt[] = {"tcp://127.0.0.1:1883", "mqtt://broker",    "ssl://b:8883/",
                               "mqtts://[::1]:8883",   "ws://b:8080/mqtt", "wss://b/mqtt"};
    for (size_t i = 0; i < sizeof(good_mqtt) / sizeof(good_mqtt[0]); i++)
        assert_int_equal(set(f, "mqtt.url", good_mqtt[i], NULL), 0);
    const char *bad_mqtt[] = {
        "garbage",           "127.0.0.1:1883", "http://b:1883",        "tcp://b:1883/x",
        "tcp://user@b:1883", "tcp://:1883",    "unix:///run/mqtt.sock"};
    for (size_t i = 0; i < sizeof(bad_mqtt) / sizeof(bad_mqtt[0]); i++)
        assert_int_equal(set(f, "mqtt.url", bad_mqtt[i], NULL), -1);
    assert_non_null(strstr(f->err, "tcp://, mqtt://, ssl://, mqtts://, ws://, wss://"));
    char why[200];
    static const char *const schemes[] = {"kafka", NULL};
    assert_int_equal(dsf_check_url("kafka://b:9092", schemes, 0, why, sizeof(why)), 0);
    assert_int_equal(dsf_check_url("kafka://b:9092/x", schemes, 0, why, sizeof(why)), -1);
}

static void files_are_checked_once_loaded(void **state)
{
    struct typed_fixture *f = *state;
    char path[] = "/tmp/dsf-test-config-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(dsf_cfg_check_files(f->secs, "test.json", f->err, sizeof(f->err)), 0);
    /* A missing file loads (a later origin may change it) and is refused by the check. */
    assert_int_equal(set(f, "mqtt.tls_ca", "/nonexistent/ca.pem", NULL), 0);
    assert_int_equal(dsf_cfg_check_files(f->secs, "test.json", f->err, sizeof(f->err)), -1);
    assert_string_equal(f->err, "test.json: key 'mqtt.tls_ca': cannot read '/nonexistent/ca.pem': "
                                "No such file or directory");
    assert_int_equal(set(f, "mqtt.tls_ca", "/tmp", NULL), 0);
    assert_int_equal(dsf_cfg_check_files(f->secs, "test.json", f->err, sizeof(f->err)), -1);
    assert_non_null(strstr(f->err, "a directory"));
    assert_int_equal(set(f, "mqtt.tls_ca", path, NULL), 0);
    assert_int_equal(dsf_cfg_check_files(f->secs, "test.json", f->err, sizeof(f->err)), 0);
    unlink(path);
    assert_null(dsf_cfg_str(f->secs, "no.such.key"));
}

static void help_names_the_types(void **state)
{
    struct typed_fixture *f = *state;
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    dsf_cfg_help(f->secs, "DAMSELFLY_", out);
    fclose(out);
    assert_non_null(strstr(text, "dlq.topic (topic, default: none)"));
    assert_non_null(strstr(text, "id (id, default: none)"));
    assert_non_null(strstr(text, "mqtt.url (URL, default: tcp://127.0.0.1:1883)"));
    assert_non_null(strstr(text, "mqtt.tls_ca (file, default: none)"));
    assert_non_null(strstr(text, "an id is 1-63 bytes"));
    free(text);
}

/* docs/configuration.md is made of these rows: one per key, five cells, a '|' in a
 * description escaped so it cannot split the cell, a key without default an empty cell. */
static const struct dsf_cfg_key md_keys[] = {
    {"mode", DSF_CFG_STR, "a|b", 0, "either a|b\nor c", 0, 0},
    {"dlq.topic", DSF_CFG_TOPIC, "", 0, "a topic", 0, 0},
    DSF_CFG_END,
};

static void help_markdown_rows(void **state)
{
    (void)state;
    char obj[64] = {0};
    const struct dsf_cfg_section secs[] = {{"out", md_keys, obj, NULL}, {NULL, NULL, NULL, NULL}};
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    dsf_cfg_help_rows(secs, "DAMSELFLY_", DSF_CFG_HELP_MARKDOWN, out);
    fclose(out);
    assert_string_equal(text,
                        "| key | type | default | environment | meaning |\n"
                        "| --- | --- | --- | --- | --- |\n"
                        "| `out.mode` | string | `a\\|b` | `DAMSELFLY_OUT_MODE` | "
                        "either a\\|b or c |\n"
                        "| `out.dlq.topic` | topic |  | `DAMSELFLY_OUT_DLQ_TOPIC` | a topic |\n");
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
        cmocka_unit_test_setup_teardown(topics_and_ids_are_checked, typed_setup, typed_teardown),
        cmocka_unit_test_setup_teardown(urls_are_checked, typed_setup, typed_teardown),
        cmocka_unit_test_setup_teardown(files_are_checked_once_loaded, typed_setup, typed_teardown),
        cmocka_unit_test_setup_teardown(help_names_the_types, typed_setup, typed_teardown),
        cmocka_unit_test(help_markdown_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
