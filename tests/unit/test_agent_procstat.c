/*
 * The procstat input against real processes: a child with a unique name must be found by
 * substring and by regex, through a pid file and through its cgroup, with its own pid and
 * memory; a CPU burner must show up among the top CPU users.
 */
#include "tests/unit/agent_input_test.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

extern const struct dsf_input dsf_input_procstat;

static char name[16], pidfile[64], group[64], unified[512];
static pid_t sleeper = -1, burner = -1;

static int find_cgroup2(char *out, size_t cap)
{
    FILE *f = fopen("/proc/self/mountinfo", "r");
    char line[1024], mnt[512], fstype[64];
    int found = 0;
    while (f && !found && fgets(line, sizeof(line), f)) {
        const char *dash = strstr(line, " - ");
        found = dash && sscanf(line, "%*s %*s %*s %*s %511s", mnt) == 1 &&
                sscanf(dash, " - %63s", fstype) == 1 && strcmp(fstype, "cgroup2") == 0;
    }
    if (f)
        fclose(f);
    if (found)
        snprintf(out, cap, "%s", mnt);
    return found ? 0 : -1;
}

static int write_text(const char *path, const char *text, int flags)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC | flags, 0644);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, text, strlen(text));
    close(fd);
    return n == (ssize_t)strlen(text) ? 0 : -1;
}

static int setup(void **state)
{
    (void)state;
    snprintf(name, sizeof(name), "dsfps%d", (int)getpid() % 1000000);
    sleeper = fork();
    if (sleeper == 0) {
        prctl(PR_SET_NAME, name);
        for (;;)
            pause();
    }
    burner = fork();
    if (burner == 0) {
        setpriority(PRIO_PROCESS, 0, -20);
        for (volatile unsigned long n = 0;; n++)
            ;
    }
    char text[32];
    snprintf(text, sizeof(text), "%d\n", (int)sleeper);
    snprintf(pidfile, sizeof(pidfile), "/tmp/dsf-procstat-%d.pid", (int)getpid());
    if (write_text(pidfile, text, O_CREAT | O_TRUNC))
        return -1;
    snprintf(group, sizeof(group), "/dsf-procstat-%d", (int)getpid());
    if (find_cgroup2(unified, sizeof(unified)) == 0) {
        char path[1024];
        snprintf(path, sizeof(path), "%s%s", unified, group);
        mkdir(path, 0755);
        strcat(path, "/cgroup.procs");
        snprintf(text, sizeof(text), "%d", (int)sleeper);
        if (write_text(path, text, 0))
            unified[0] = '\0';
    }
    sleep_ms(100); /* let the child rename itself */
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    kill(sleeper, SIGKILL);
    kill(burner, SIGKILL);
    waitpid(sleeper, NULL, 0);
    waitpid(burner, NULL, 0);
    unlink(pidfile);
    if (unified[0]) {
        char path[1024];
        snprintf(path, sizeof(path), "%s%s", unified, group);
        for (int i = 0; i < 50 && rmdir(path) && errno == EBUSY; i++)
            sleep_ms(20);
    }
    return 0;
}

static void check_sleeper(const struct dsf_batch *b, const char *key, const char *val)
{
    const struct dsf_point *p = find_point(b, "procstat", key, val);
    if (!p)
        fail_msg("no procstat point with %s=%s", key, val);
    assert_string_equal(point_tag(b, p, "process_name"), name);
    assert_int_equal((int)point_field_or_fail(b, p, "pid"), (int)sleeper);
    assert_true(point_field_or_fail(b, p, "memory_rss") > 0);
    assert_true(point_field_or_fail(b, p, "memory_vms") > 0);
    assert_int_equal((int)point_field_or_fail(b, p, "num_threads"), 1);
    assert_true(point_field_or_fail(b, p, "num_fds") >= 0);
    point_field_or_fail(b, p, "read_bytes");
    point_field_or_fail(b, p, "write_bytes");
    double created = point_field_or_fail(b, p, "created_at") / 1e9, now = (double)time(NULL);
    if (created < now - 120 || created > now + 2)
        fail_msg("created_at %.0f is not near now (%.0f)", created, now);
    double cpu = point_field_or_fail(b, p, "cpu_usage");
    assert_true(cpu >= 0 && cpu < 5);
}

static void test_selectors(void **state)
{
    (void)state;
    char json[512], regex[64];
    snprintf(regex, sizeof(regex), "^dsfps[0-9]+$");
    snprintf(json, sizeof(json),
             "{\"patterns\": [\"%s\", \"%s\"], \"pid_files\": [\"%s\"], \"cgroups\": [\"%s\"], "
             "\"top_n\": 3}",
             name, regex, pidfile, group);
    struct input_run r;
    input_start(&r, &dsf_input_procstat, json);
    input_collect(&r);
    sleep_ms(700);
    input_collect(&r);
    const struct dsf_batch *b = &r.batch;
    check_sleeper(b, "pattern", name);
    check_sleeper(b, "pidfile", pidfile);
    if (unified[0])
        check_sleeper(b, "cgroup", group);
    /* The regex matches the sleeper (and only processes with such names). */
    const struct dsf_point *p = find_point(b, "procstat", "pattern", regex);
    assert_non_null(p);
    assert_string_equal(point_tag(b, p, "process_name"), name);

    int burner_on_top = 0, tops = 0;
    for (size_t i = 0; i < b->npoints; i++) {
        const char *t = point_tag(b, &b->points[i], "top");
        if (!t)
            continue;
        assert_string_equal(t, "3");
        tops++;
        double pid = 0;
        if (point_field(b, &b->points[i], "pid", &pid) && (pid_t)pid == burner) {
            burner_on_top = 1;
            assert_true(point_field_or_fail(b, &b->points[i], "cpu_usage") > 30);
        }
    }
    assert_true(tops >= 1 && tops <= 3);
    assert_true(burner_on_top);
    check_prom(&r, "damselfly_procstat_memory_rss_bytes{");
    input_stop(&r);
}

static void test_pid_tag(void **state)
{
    (void)state;
    char json[256], pid[16];
    snprintf(json, sizeof(json), "{\"pid_files\": [\"%s\"], \"pid_tag\": true}", pidfile);
    snprintf(pid, sizeof(pid), "%d", (int)sleeper);
    struct input_run r;
    input_start(&r, &dsf_input_procstat, json);
    input_collect(&r);
    const struct dsf_point *p = find_point(&r.batch, "procstat", "pid", pid);
    assert_non_null(p);
    double v;
    assert_false(point_field(&r.batch, p, "pid", &v));
    assert_true(point_field_or_fail(&r.batch, p, "memory_rss") > 0);
    input_stop(&r);
}

static void test_capabilities(void **state)
{
    (void)state;
    struct input_run r;
    input_start(&r, &dsf_input_procstat, "{\"enabled\": true, \"patterns\": [\"x\"]}");
    uint64_t caps = dsf_input_procstat.capabilities(r.opts);
    assert_true(caps & (1ULL << CAP_SYS_PTRACE));
    assert_true(caps & (1ULL << CAP_DAC_READ_SEARCH));
    input_stop(&r);
}

/* A name that is no regex is a substring; a regex too costly to compile is refused at start,
 * naming it and the limit, like the alarm rules' and the notifier's. */
static void test_costly_pattern_refused(void **state)
{
    (void)state;
    struct input_run r;
    input_start(&r, &dsf_input_procstat, "{\"enabled\": true, \"patterns\": [\"a[1\"]}");
    input_stop(&r);
    char err[DSF_CFG_ERRLEN] = "";
    assert_int_equal(input_try_start(&r, &dsf_input_procstat,
                                     "{\"enabled\": true, \"patterns\": [\"x\", \"(a+)+$\"]}", err,
                                     sizeof(err)),
                     -1);
    input_stop(&r);
    if (!strstr(err, "inputs.procstat.patterns: regular expression \"(a+)+$\" refused") ||
        !strstr(err, "nesting limit"))
        fail_msg("unexpected error: %s", err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_selectors),
        cmocka_unit_test(test_pid_tag),
        cmocka_unit_test(test_capabilities),
        cmocka_unit_test(test_costly_pattern_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
