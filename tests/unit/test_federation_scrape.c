/* The VMs to be pulled: how a spec's labels set a VM's monitoring (and which labels are
 * refused), the URL built from each address form, and fed_scrape_targets over a store of
 * two namespaces, where push VMs and VMs without an address are left out. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "federation/scrape.h"

static char dir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "%s/fedscrape.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char *argv[] = {"rm", "-rf", dir, NULL};
    pid_t pid = fork();
    if (pid == 0) {
        execvp("rm", argv);
        _exit(127);
    }
    waitpid(pid, NULL, 0);
    return 0;
}

static void set_label(struct fed_vm_spec *s, const char *key, const char *value)
{
    struct fed_label *l = &s->labels[s->nlabels++];
    snprintf(l->key, sizeof(l->key), "%s", key);
    snprintf(l->value, sizeof(l->value), "%s", value);
}

static struct fed_vm_spec make_spec(const char *mode, const char *port, const char *path)
{
    struct fed_vm_spec s;
    memset(&s, 0, sizeof(s));
    snprintf(s.name, sizeof(s.name), "sg");
    snprintf(s.csp, sizeof(s.csp), "local");
    snprintf(s.region, sizeof(s.region), "r1");
    s.size = 1;
    set_label(&s, "tier", "web");
    if (mode)
        set_label(&s, FED_LABEL_MONITORING, mode);
    if (port)
        set_label(&s, FED_LABEL_SCRAPE_PORT, port);
    if (path)
        set_label(&s, FED_LABEL_SCRAPE_PATH, path);
    return s;
}

static void test_modes_and_defaults(void **state)
{
    (void)state;
    struct fed_monitoring_spec m;
    struct fed_vm_spec s = make_spec(NULL, NULL, NULL);
    assert_int_equal(fed_spec_monitoring(&s, &m, NULL), 0);
    assert_int_equal(m.mode, FED_MONITOR_PUSH);
    s = make_spec("exporter", NULL, NULL);
    assert_int_equal(fed_spec_monitoring(&s, &m, NULL), 0);
    assert_int_equal(m.mode, FED_MONITOR_EXPORTER);
    assert_int_equal(m.port, 9100);
    assert_string_equal(m.path, "/metrics");
    s = make_spec("exporter", "9182", "/probe?target=db");
    assert_int_equal(fed_spec_monitoring(&s, &m, NULL), 0);
    assert_int_equal(m.port, 9182);
    assert_string_equal(m.path, "/probe?target=db");
    s = make_spec("pull", "8080", NULL);
    assert_int_equal(fed_spec_monitoring(&s, &m, NULL), 0);
    assert_int_equal(m.mode, FED_MONITOR_PULL);
    assert_int_equal(m.port, 8080);
    assert_string_equal(m.path, "/api/v1/snapshot?format=lp");
    assert_string_equal(fed_monitoring_name(FED_MONITOR_EXPORTER), "exporter");
}

/* Each bad label is refused by the spec check with a message naming the label. */
static void test_bad_labels_refused(void **state)
{
    (void)state;
    const struct {
        const char *mode, *port, *path, *names;
    } bad[] = {
        {"agentless", NULL, NULL, FED_LABEL_MONITORING},
        {"exporter", "0", NULL, FED_LABEL_SCRAPE_PORT},
        {"exporter", "65536", NULL, FED_LABEL_SCRAPE_PORT},
        {"exporter", "91a", NULL, FED_LABEL_SCRAPE_PORT},
        {"exporter", "-1", NULL, FED_LABEL_SCRAPE_PORT},
        {"exporter", "", NULL, FED_LABEL_SCRAPE_PORT},
        {"exporter", NULL, "metrics", FED_LABEL_SCRAPE_PATH},
        {"exporter", NULL, "/a b", FED_LABEL_SCRAPE_PATH},
        {"pull", NULL, "/metrics", FED_LABEL_SCRAPE_PATH},
        {NULL, "9100", NULL, FED_LABEL_SCRAPE_PORT},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct fed_vm_spec s = make_spec(bad[i].mode, bad[i].port, bad[i].path);
        struct fed_error e;
        assert_int_equal(fed_vm_spec_validate(&s, &e), -1);
        assert_int_equal(e.kind, FED_EINVAL);
        if (!strstr(e.message, bad[i].names))
            fail_msg("case %zu: '%s' does not name %s", i, e.message, bad[i].names);
    }
    struct fed_vm_spec good = make_spec("exporter", "9100", "/metrics");
    assert_int_equal(fed_vm_spec_validate(&good, NULL), 0);
}

/* The labels come in through the request JSON as any other label. */
static void test_labels_from_request(void **state)
{
    (void)state;
    const char *req = "{\"name\":\"sg\",\"subGroupSize\":\"1\",\"csp\":\"local\",\"region\":\"r1\","
                      "\"label\":{\"damselfly.monitoring\":\"exporter\","
                      "\"damselfly.scrape-port\":\"9200\"}}";
    struct fed_vm_spec s;
    memset(&s, 0, sizeof(s));
    assert_int_equal(fed_vm_spec_parse(req, strlen(req), &s, NULL), 0);
    struct fed_monitoring_spec m;
    assert_int_equal(fed_spec_monitoring(&s, &m, NULL), 0);
    assert_int_equal(m.mode, FED_MONITOR_EXPORTER);
    assert_int_equal(m.port, 9200);
    fed_vm_spec_free(&s);
}

static void test_urls(void **state)
{
    (void)state;
    struct fed_monitoring_spec m = {.mode = FED_MONITOR_EXPORTER, .port = 9100, .path = "/metrics"};
    const struct {
        const char *address, *url;
    } cases[] = {
        {"10.0.0.5", "http://10.0.0.5:9100/metrics"},
        {"10.0.0.5:9182", "http://10.0.0.5:9182/metrics"},
        {"db.example", "http://db.example:9100/metrics"},
        {"db.example:80", "http://db.example:80/metrics"},
        {"[fd00::5]:9300", "http://[fd00::5]:9300/metrics"},
        {"fd00::5", "http://[fd00::5]:9100/metrics"},
        {"[fd00::5]", "http://[fd00::5]:9100/metrics"},
    };
    char url[128];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(fed_scrape_url(cases[i].address, &m, url, sizeof(url)), 0);
        assert_string_equal(url, cases[i].url);
    }
    assert_int_equal(fed_scrape_url("10.0.0.5", &m, url, 20), -1);
}

static struct fed_vm make_vm(const char *ns, const char *mci, const char *id, const char *mode,
                             const char *address)
{
    struct fed_vm v;
    memset(&v, 0, sizeof(v));
    snprintf(v.ns, sizeof(v.ns), "%s", ns);
    snprintf(v.mci, sizeof(v.mci), "%s", mci);
    snprintf(v.id, sizeof(v.id), "%s", id);
    snprintf(v.subgroup, sizeof(v.subgroup), "sg");
    v.spec = make_spec(mode, NULL, NULL);
    snprintf(v.address, sizeof(v.address), "%s", address);
    v.state = FED_VM_RUNNING;
    return v;
}

static void put_mci(struct fed_store *s, const char *ns, const char *id, struct fed_vm *vms,
                    size_t n)
{
    struct fed_mci m;
    memset(&m, 0, sizeof(m));
    snprintf(m.ns, sizeof(m.ns), "%s", ns);
    snprintf(m.id, sizeof(m.id), "%s", id);
    snprintf(m.driver, sizeof(m.driver), "local");
    for (size_t i = 0; i < n; i++)
        assert_non_null(fed_mci_add_vm(&m, &vms[i]));
    assert_int_equal(fed_store_put(s, &m, NULL), 0);
    fed_mci_free(&m);
}

struct seen {
    char lines[8][300];
    size_t n;
};

static void collect(void *arg, const struct fed_scrape_target *t)
{
    struct seen *s = arg;
    assert_true(s->n < 8);
    snprintf(s->lines[s->n++], sizeof(s->lines[0]), "%s/%s/%s %s %s %s", t->ns, t->mci, t->vm,
             fed_monitoring_name(t->mode), t->url, fed_vm_state_name(t->state));
}

static int by_text(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void test_targets_from_store(void **state)
{
    (void)state;
    struct fed_store *s = fed_store_open(dir, NULL);
    assert_non_null(s);
    struct fed_vm web[] = {
        make_vm("ns1", "web", "sg-1", NULL, "10.0.0.1"),
        make_vm("ns1", "web", "sg-2", "exporter", "10.0.0.2"),
        make_vm("ns1", "web", "sg-3", "pull", "127.0.0.1:4100"),
        make_vm("ns1", "web", "sg-4", "exporter", ""),
    };
    web[2].state = FED_VM_SUSPENDED;
    struct fed_vm db[] = {make_vm("ns2", "db", "sg-1", "exporter", "fd00::7")};
    put_mci(s, "ns1", "web", web, 4);
    put_mci(s, "ns2", "db", db, 1);
    struct seen seen = {0};
    struct fed_error e;
    assert_int_equal(fed_scrape_targets(s, collect, &seen, &e), 0);
    assert_int_equal(seen.n, 3);
    qsort(seen.lines, seen.n, sizeof(seen.lines[0]), by_text);
    assert_string_equal(seen.lines[0],
                        "ns1/web/sg-2 exporter http://10.0.0.2:9100/metrics Running");
    assert_string_equal(seen.lines[1],
                        "ns1/web/sg-3 pull http://127.0.0.1:4100/api/v1/snapshot?format=lp "
                        "Suspended");
    assert_string_equal(seen.lines[2],
                        "ns2/db/sg-1 exporter http://[fd00::7]:9100/metrics Running");
    fed_store_close(s);
}

static void test_empty_store(void **state)
{
    (void)state;
    struct fed_store *s = fed_store_open(dir, NULL);
    assert_non_null(s);
    struct seen seen = {0};
    assert_int_equal(fed_scrape_targets(s, collect, &seen, NULL), 0);
    assert_int_equal(seen.n, 0);
    fed_store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_modes_and_defaults),
        cmocka_unit_test(test_bad_labels_refused),
        cmocka_unit_test(test_labels_from_request),
        cmocka_unit_test(test_urls),
        cmocka_unit_test_setup_teardown(test_targets_from_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_store, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
