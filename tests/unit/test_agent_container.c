/*
 * The container input against real cgroups: groups are created in the v1 cpu/cpuacct
 * hierarchies and in the cgroup2 hierarchy (wherever mountinfo says they are), a CPU burner
 * runs in each, and the input must report it busy. A child process then builds a pure
 * cgroup v2 host in its own mount namespace and checks the same there. Needs root.
 */
#include "tests/unit/agent_input_test.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "agent/inputs/cgroup.h"

extern const struct dsf_input dsf_input_container;

/* ------------------------------------------------------------------ cgroup plumbing */

/* Mount point of the cgroup2 filesystem (ctrl NULL) or of the v1 hierarchy holding ctrl. */
static int find_mount(const char *ctrl, char *out, size_t cap)
{
    FILE *f = fopen("/proc/self/mountinfo", "r");
    char line[1024];
    int found = 0;
    while (f && !found && fgets(line, sizeof(line), f)) {
        char mnt[512], fstype[64], super[512];
        const char *dash = strstr(line, " - ");
        if (!dash || sscanf(line, "%*s %*s %*s %*s %511s", mnt) != 1 ||
            sscanf(dash, " - %63s %*s %511s", fstype, super) != 2)
            continue;
        if (!ctrl) {
            found = strcmp(fstype, "cgroup2") == 0;
        } else if (strcmp(fstype, "cgroup") == 0) {
            char padded[600], token[64];
            snprintf(padded, sizeof(padded), ",%s,", super);
            snprintf(token, sizeof(token), ",%s,", ctrl);
            found = strstr(padded, token) != NULL;
        }
        if (found)
            snprintf(out, cap, "%s", mnt);
    }
    if (f)
        fclose(f);
    return found ? 0 : -1;
}

static int write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, text, strlen(text));
    close(fd);
    return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* Joins a mount and a group path. The paths here are short: a truncation is a bug of the
 * test, and abort() (not a cmocka assert) also works in the forked pure-v2 child. */
static void group_path(char *out, size_t cap, const char *mount, const char *group,
                       const char *file)
{
    int n = snprintf(out, cap, "%s%s%s", mount, group, file);
    if (n < 0 || (size_t)n >= cap) {
        fprintf(stderr, "path too long: %s%s%s\n", mount, group, file);
        abort();
    }
}

static int group_make(const char *mount, const char *group)
{
    char path[1024];
    group_path(path, sizeof(path), mount, group, "");
    return mkdir(path, 0755) && errno != EEXIST ? -1 : 0;
}

static int group_join(const char *mount, const char *group, pid_t pid)
{
    char path[1024], text[32];
    group_path(path, sizeof(path), mount, group, "/cgroup.procs");
    snprintf(text, sizeof(text), "%d", (int)pid);
    return write_file(path, text);
}

static void group_remove(const char *mount, const char *group)
{
    char path[1024];
    group_path(path, sizeof(path), mount, group, "");
    for (int i = 0; i < 50 && rmdir(path) && errno == EBUSY; i++)
        sleep_ms(20); /* the killed burner leaves the group asynchronously */
}

/* 8 MiB the burner charges to its group. Written through a volatile pointer, one byte per
 * page: a memset of memory nothing reads again is a dead store the optimiser may drop (gcc
 * -O2 does), and then no page is charged at all. At file scope, the pages stay mapped for as
 * long as the burner spins. */
static char ballast[8 << 20];

static void touch_ballast(void)
{
    volatile char *page = ballast;
    const size_t step = (size_t)sysconf(_SC_PAGESIZE);
    for (size_t off = 0; off < sizeof(ballast); off += step)
        page[off] = 1;
}

/* A child that spins at the highest priority, so that whatever else runs on the host it
 * gets most of a CPU. It waits to be placed in its groups before touching memory: pages are
 * charged to the group of the task that first touches them. */
static pid_t start_burner(int *go)
{
    int fds[2];
    if (pipe(fds))
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        char c;
        close(fds[1]);
        setpriority(PRIO_PROCESS, 0, -20);
        if (read(fds[0], &c, 1) != 1)
            _exit(1);
        touch_ballast();
        for (volatile unsigned long n = 0;; n++)
            ;
    }
    close(fds[0]);
    *go = fds[1];
    return pid;
}

static void release_burner(int go)
{
    if (go >= 0 && write(go, "x", 1) == 1)
        close(go);
}

static void stop_burner(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

struct placed {
    char mounts[8][512];
    int n;
};

static void add_mount(struct placed *pl, const char *ctrl)
{
    char m[512];
    if (find_mount(ctrl, m, sizeof(m)))
        return;
    for (int i = 0; i < pl->n; i++)
        if (strcmp(pl->mounts[i], m) == 0)
            return; /* co-mounted controllers */
    snprintf(pl->mounts[pl->n++], sizeof(pl->mounts[0]), "%s", m);
}

static int place(const struct placed *pl, const char *group, pid_t pid)
{
    for (int i = 0; i < pl->n; i++)
        if (group_make(pl->mounts[i], group) || group_join(pl->mounts[i], group, pid))
            return -1;
    return 0;
}

static void unplace(const struct placed *pl, const char *group)
{
    for (int i = 0; i < pl->n; i++)
        group_remove(pl->mounts[i], group);
}

/* cpu_usage_percent over 50 and the memory fields, for the point of this cgroup. */
static void check_busy_group(const struct dsf_batch *b, const char *group, int want_memory)
{
    const struct dsf_point *p = find_point(b, "container", "cgroup", group);
    if (!p)
        fail_msg("no point for cgroup %s", group);
    assert_string_equal(point_tag(b, p, "container_id"), group);
    assert_string_equal(point_tag(b, p, "runtime"), "other");
    assert_true(point_field_or_fail(b, p, "cpu_usage_nanoseconds") > 0);
    double pct = point_field_or_fail(b, p, "cpu_usage_percent");
    if (pct <= 50)
        fail_msg("%s: cpu_usage_percent %.1f, want > 50", group, pct);
    if (want_memory) {
        assert_true(point_field_or_fail(b, p, "memory_usage") > 0);
        point_field_or_fail(b, p, "memory_working_set");
        point_field_or_fail(b, p, "memory_rss");
    }
}

/* ------------------------------------------------------------------ hybrid or v1 + v2 */

/* Writes a control file of the group in the v1 hierarchy holding ctrl; 0 when done. */
static int set_knob(const char *ctrl, const char *group, const char *file, const char *value)
{
    char path[1024];
    if (find_mount(ctrl, path, 512))
        return -1;
    strcat(path, group);
    strcat(path, "/");
    strcat(path, file);
    return write_file(path, value);
}

/* Limits on the v1 group, so that the limit fields show up. */
static void check_limits(const struct dsf_batch *b, const char *group, int memory, int pids,
                         int quota)
{
    const struct dsf_point *p = find_point(b, "container", "cgroup", group);
    if (memory) {
        assert_int_equal((int64_t)point_field_or_fail(b, p, "memory_limit"), 512 << 20);
        double pct = point_field_or_fail(b, p, "memory_usage_percent");
        assert_true(pct > 0 && pct < 100);
    }
    if (pids) {
        assert_true(point_field_or_fail(b, p, "pids_current") >= 1);
        assert_int_equal((int)point_field_or_fail(b, p, "pids_limit"), 100);
    }
    if (quota) {
        assert_true(point_field_or_fail(b, p, "cpu_periods") > 0);
        point_field_or_fail(b, p, "cpu_throttled_periods");
        point_field_or_fail(b, p, "cpu_throttled_nanoseconds");
    }
}

/* Puts a burner in the group in every hierarchy of pl, applies the v1 limits when asked,
 * and collects twice a second apart. The burner is gone and the group removed on return;
 * the batch of the second collection stays in r. Returns 0 when the group was set up. */
static int burn_and_collect(const struct placed *pl, const char *group, int limits,
                            struct input_run *r)
{
    int go = -1;
    pid_t burner = start_burner(&go);
    int ok = burner > 0 && place(pl, group, burner) == 0;
    if (limits) {
        /* In v1 the group competes as one entity: give it the weight nice gave the task. A
         * quota of two CPUs does not slow the burner but makes the kernel count periods. */
        set_knob("cpu", group, "cpu.shares", "262144");
        set_knob("cpu", group, "cpu.cfs_quota_us", "200000");
        set_knob("memory", group, "memory.limit_in_bytes", "536870912");
        set_knob("pids", group, "pids.max", "100");
    }
    release_burner(go);
    char json[256];
    snprintf(json, sizeof(json), "{\"cgroups\": [\"%s\"], \"rescan_interval\": 5}", group);
    if (ok) {
        input_start(r, &dsf_input_container, json);
        input_collect(r);
        sleep_ms(1000);
        input_collect(r);
    }
    stop_burner(burner);
    unplace(pl, group);
    return ok ? 0 : -1;
}

/* A group in the v1 cpu, cpuacct, memory and pids hierarchies. */
static void test_v1_group(void **state)
{
    (void)state;
    struct placed v1 = {0};
    add_mount(&v1, "cpu");
    add_mount(&v1, "cpuacct");
    add_mount(&v1, "memory");
    add_mount(&v1, "pids");
    if (!v1.n)
        skip(); /* a pure v2 host: covered by test_pure_v2 */
    char group[64], m[512];
    snprintf(group, sizeof(group), "/dsf-test-%d-v1", (int)getpid());
    struct input_run r = {0};
    assert_int_equal(burn_and_collect(&v1, group, 1, &r), 0);
    check_busy_group(&r.batch, group, find_mount("memory", m, sizeof(m)) == 0);
    check_limits(&r.batch, group, find_mount("memory", m, sizeof(m)) == 0,
                 find_mount("pids", m, sizeof(m)) == 0, find_mount("cpu", m, sizeof(m)) == 0);
    check_prom(&r, "damselfly_container_cpu_usage_seconds_total{");
    input_stop(&r);
}

/* A group in the cgroup2 hierarchy; on a hybrid host also in the v1 memory hierarchy, where
 * its memory is accounted. */
static void test_v2_group(void **state)
{
    (void)state;
    struct placed v2 = {0};
    if (find_mount(NULL, v2.mounts[0], sizeof(v2.mounts[0])))
        skip(); /* a v1-only host */
    v2.n = 1;
    add_mount(&v2, "memory");
    char group[64];
    snprintf(group, sizeof(group), "/dsf-test-%d-v2", (int)getpid());
    struct input_run r = {0};
    assert_int_equal(burn_and_collect(&v2, group, 0, &r), 0);
    check_busy_group(&r.batch, group, v2.n > 1);
    check_prom(&r, "damselfly_container_cpu_usage_seconds_total{");
    input_stop(&r);
}

/* The DaemonSet reads the host's /sys somewhere else: mounts must be found through it. */
static void test_sys_elsewhere(void **state)
{
    (void)state;
    char alias[64], unified[512], group[64], json[128], err[DSF_CFG_ERRLEN] = "";
    if (find_mount(NULL, unified, sizeof(unified)) || strncmp(unified, "/sys/", 5) != 0)
        skip();
    snprintf(alias, sizeof(alias), "/tmp/dsf-sys-%d", (int)getpid());
    assert_int_equal(symlink("/sys", alias), 0);
    struct dsf_input_env env = test_env;
    env.sys = alias;
    struct cg_layout l;
    int rc = cg_layout_detect(&l, &env, err, sizeof(err));
    char want[600];
    snprintf(want, sizeof(want), "%s%s", alias, unified + 4);

    snprintf(group, sizeof(group), "/dsf-alias-%d", (int)getpid());
    assert_int_equal(group_make(unified, group), 0);
    snprintf(json, sizeof(json), "{\"cgroups\": [\"%s\"]}", group);
    struct input_run r = {0};
    int started = !input_try_start_env(&r, &dsf_input_container, json, &env, err, sizeof(err));
    if (started)
        input_collect(&r);
    unlink(alias);
    group_remove(unified, group);
    assert_int_equal(rc, 0);
    assert_string_equal(l.m[CG_V2].dir, want);
    assert_true(started);
    assert_non_null(find_point(&r.batch, "container", "cgroup", group));
    input_stop(&r);
}

/* ------------------------------------------------------------------ discovery */

static const char *const id64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

static void join(char *out, size_t cap, const char *dir, const char *name)
{
    group_path(out, cap, dir, "/", name);
}

static void test_discovery(void **state)
{
    (void)state;
    char mount[512], dirs[6][512], name[128];
    if (find_mount(NULL, mount, sizeof(mount)) && find_mount("cpuacct", mount, sizeof(mount)))
        skip();
    snprintf(dirs[0], sizeof(dirs[0]), "/dsf-disc-%d", (int)getpid());
    snprintf(name, sizeof(name), "docker-%s.scope", id64);
    join(dirs[1], sizeof(dirs[1]), dirs[0], name);
    join(dirs[2], sizeof(dirs[2]), dirs[0], "kubepods.slice");
    join(dirs[3], sizeof(dirs[3]), dirs[2], "kubepods-burstable.slice");
    join(dirs[4], sizeof(dirs[4]), dirs[3],
         "kubepods-burstable-pod1b2c3d4e_0000_4000_8000_0123456789ab.slice");
    snprintf(name, sizeof(name), "cri-containerd-%s.scope", id64);
    join(dirs[5], sizeof(dirs[5]), dirs[4], name);
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(group_make(mount, dirs[i]), 0);

    struct input_run r;
    input_start(&r, &dsf_input_container, "{}");
    input_collect(&r);
    const struct dsf_batch *b = &r.batch;
    const struct dsf_point *d = find_point(b, "container", "cgroup", dirs[1]);
    const struct dsf_point *p = find_point(b, "container", "cgroup", dirs[4]);
    const struct dsf_point *c = find_point(b, "container", "cgroup", dirs[5]);
    for (size_t i = 6; i-- > 0;)
        group_remove(mount, dirs[i]);
    assert_non_null(d);
    assert_non_null(p);
    assert_non_null(c);
    assert_string_equal(point_tag(b, d, "container_id"), "0123456789ab");
    assert_string_equal(point_tag(b, d, "runtime"), "docker");
    assert_null(point_tag(b, d, "pod_uid"));
    assert_string_equal(point_tag(b, c, "container_id"), "0123456789ab");
    assert_string_equal(point_tag(b, c, "runtime"), "kubernetes");
    assert_string_equal(point_tag(b, c, "pod_uid"), "1b2c3d4e-0000-4000-8000-0123456789ab");
    assert_string_equal(point_tag(b, p, "runtime"), "kubernetes");
    assert_string_equal(point_tag(b, p, "pod_uid"), "1b2c3d4e-0000-4000-8000-0123456789ab");
    /* CPU accounting is there in either hierarchy, even for an empty group. */
    point_field_or_fail(b, c, "cpu_usage_nanoseconds");
    assert_null(find_point(b, "container", "cgroup", dirs[2]));
    check_prom(&r, "pod_uid=\"1b2c3d4e-0000-4000-8000-0123456789ab\"");
    input_stop(&r);
}

/* ------------------------------------------------------------------ pure v2 */

#define CHILD_CHECK(cond, ...)                                                                     \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "pure v2: " __VA_ARGS__);                                              \
            fputc('\n', stderr);                                                                   \
            rc = 1;                                                                                \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

/* Runs in a child with its own mount namespace: cmocka's asserts must not be used here. */
static int pure_v2_child(void)
{
    int rc = 0;
    pid_t burner = -1;
    char group[64] = "", err[DSF_CFG_ERRLEN] = "";
    struct input_run r = {0};
    CHILD_CHECK(unshare(CLONE_NEWNS) == 0, "unshare: %s", strerror(errno));
    CHILD_CHECK(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0, "private: %s",
                strerror(errno));
    /* Lazily detaching /sys/fs/cgroup takes every hierarchy mounted under it along. */
    while (umount2("/sys/fs/cgroup", MNT_DETACH) == 0)
        ;
    CHILD_CHECK(mount("cgroup2", "/sys/fs/cgroup", "cgroup2", 0, NULL) == 0, "mount: %s",
                strerror(errno));

    struct cg_layout l;
    CHILD_CHECK(cg_layout_detect(&l, &test_env, err, sizeof(err)) == 0, "detect: %s", err);
    CHILD_CHECK(strcmp(cg_layout_name(&l), "v2") == 0, "layout %s", cg_layout_name(&l));
    CHILD_CHECK(strcmp(l.m[CG_V2].dir, "/sys/fs/cgroup") == 0, "v2 at %s", l.m[CG_V2].dir);

    snprintf(group, sizeof(group), "/dsf-test-%d-pure", (int)getpid());
    CHILD_CHECK(group_make("/sys/fs/cgroup", group) == 0, "mkdir: %s", strerror(errno));
    int go = -1;
    burner = start_burner(&go);
    CHILD_CHECK(group_join("/sys/fs/cgroup", group, burner) == 0, "join: %s", strerror(errno));
    release_burner(go);

    char json[128];
    snprintf(json, sizeof(json), "{\"cgroups\": [\"%s\"]}", group);
    CHILD_CHECK(input_try_start(&r, &dsf_input_container, json, err, sizeof(err)) == 0, "init: %s",
                err);
    r.in->collect(r.ctx, &r.batch, 1);
    sleep_ms(1000);
    batch_reset(&r.batch);
    r.in->collect(r.ctx, &r.batch, 2);
    const struct dsf_point *p = find_point(&r.batch, "container", "cgroup", group);
    double pct = 0, mem;
    CHILD_CHECK(p, "no point for %s", group);
    CHILD_CHECK(point_field(&r.batch, p, "cpu_usage_percent", &pct) && pct > 50,
                "cpu_usage_percent %.1f, want > 50", pct);
    char controllers[256] = "";
    FILE *f = fopen("/sys/fs/cgroup/cgroup.controllers", "r");
    if (f && !fgets(controllers, sizeof(controllers), f))
        controllers[0] = '\0';
    if (f)
        fclose(f);
    /* Memory shows up in v2 only where the controller is not bound to a v1 hierarchy. */
    if (strstr(controllers, "memory"))
        CHILD_CHECK(point_field(&r.batch, p, "memory_usage", &mem), "no memory_usage");
out:
    stop_burner(burner);
    if (r.in)
        input_stop(&r);
    if (group[0])
        group_remove("/sys/fs/cgroup", group);
    return rc;
}

static void test_pure_v2(void **state)
{
    (void)state;
    struct stat st;
    if (stat("/sys/fs/cgroup", &st) || !S_ISDIR(st.st_mode))
        skip();
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(pure_v2_child());
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* ------------------------------------------------------------------ options */

static void test_bad_group(void **state)
{
    (void)state;
    struct input_run r;
    char err[DSF_CFG_ERRLEN] = "";
    assert_int_equal(
        input_try_start(&r, &dsf_input_container, "{\"cgroups\": [\"rel\"]}", err, sizeof(err)),
        -1);
    assert_non_null(strstr(err, "inputs.container.cgroups"));
    input_stop(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v1_group),      cmocka_unit_test(test_v2_group),
        cmocka_unit_test(test_sys_elsewhere), cmocka_unit_test(test_discovery),
        cmocka_unit_test(test_pure_v2),       cmocka_unit_test(test_bad_group),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
