/*
 * privs_drop changes the whole process for good, so every case runs in a forked child that
 * checks the result from the kernel's own account (/proc/self/status) and reports through
 * its exit status.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/privs.h"

#define TEST_USER "nobody"
#define MISSING_USER "dsf-no-such-user"

static char secret_path[64]; /* root-only file: readable only with CAP_DAC_READ_SEARCH */

/* Child-side check: prints what failed and makes the child exit non-zero. */
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "child check failed at line %d: %s: ", __LINE__, #cond);               \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

static int status_field(const char *name, char *out, size_t n)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[512];
    size_t len = strlen(name);
    int rc = -1;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, name, len) == 0 && line[len] == ':') {
            const char *v = line + len + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            snprintf(out, n, "%s", v);
            out[strcspn(out, "\n")] = '\0';
            rc = 0;
            break;
        }
    }
    fclose(f);
    return rc;
}

static uint64_t status_hex(const char *name)
{
    char v[128];
    if (status_field(name, v, sizeof(v)) != 0)
        return UINT64_MAX;
    return strtoull(v, NULL, 16);
}

static long status_long(const char *name)
{
    char v[128];
    if (status_field(name, v, sizeof(v)) != 0)
        return -1;
    return strtol(v, NULL, 10);
}

/* "Uid:" and "Gid:" hold real, effective, saved and filesystem ids: all must be `id`. */
static int ids_all(const char *name, unsigned id)
{
    char v[128];
    unsigned a, b, c, d;
    if (status_field(name, v, sizeof(v)) != 0 || sscanf(v, "%u %u %u %u", &a, &b, &c, &d) != 4)
        return 0;
    return a == id && b == id && c == id && d == id;
}

static int run_in_child(int (*fn)(void))
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int rc = fn();
        fflush(NULL);
        _exit(rc);
    }
    int st;
    if (waitpid(pid, &st, 0) != pid)
        return -1;
    if (WIFSIGNALED(st)) {
        fprintf(stderr, "child killed by signal %d\n", WTERMSIG(st));
        return -1;
    }
    return WEXITSTATUS(st);
}

static int check_dropped_to_nobody(uint64_t kept)
{
    struct passwd *pw = getpwnam(TEST_USER);
    CHECK(pw != NULL, "user %s missing", TEST_USER);
    CHECK(ids_all("Uid", pw->pw_uid), "Uid line is not %u everywhere", (unsigned)pw->pw_uid);
    CHECK(ids_all("Gid", pw->pw_gid), "Gid line is not %u everywhere", (unsigned)pw->pw_gid);
    char groups[256];
    CHECK(status_field("Groups", groups, sizeof(groups)) == 0, "no Groups line");
    CHECK(strcmp(groups, "0") != 0 && strncmp(groups, "0 ", 2) != 0 && !strstr(groups, " 0 ") &&
              !strstr(groups, " 0"),
          "still in group 0: '%s'", groups);
    CHECK(status_hex("CapEff") == kept, "CapEff %016llx, want %016llx",
          (unsigned long long)status_hex("CapEff"), (unsigned long long)kept);
    CHECK(status_hex("CapPrm") == kept, "CapPrm %016llx, want %016llx",
          (unsigned long long)status_hex("CapPrm"), (unsigned long long)kept);
    CHECK(status_hex("CapInh") == 0, "CapInh %016llx", (unsigned long long)status_hex("CapInh"));
    CHECK(status_hex("CapAmb") == 0, "CapAmb %016llx", (unsigned long long)status_hex("CapAmb"));
    CHECK(status_hex("CapBnd") == kept, "CapBnd %016llx, want %016llx",
          (unsigned long long)status_hex("CapBnd"), (unsigned long long)kept);
    CHECK(status_long("NoNewPrivs") == 1, "NoNewPrivs %ld", status_long("NoNewPrivs"));
    CHECK(setuid(0) != 0, "setuid(0) succeeded after the drop");
    return 0;
}

/* An ambient capability would be handed to anything the agent execs: the drop must clear it.
 * Raising one needs it in the permitted and inheritable sets. */
static int raise_ambient(cap_value_t cap)
{
    cap_t c = cap_get_proc();
    CHECK(c != NULL, "cap_get_proc");
    CHECK(cap_set_flag(c, CAP_INHERITABLE, 1, &cap, CAP_SET) == 0 && cap_set_proc(c) == 0,
          "raising the inheritable set: %s", strerror(errno));
    cap_free(c);
    CHECK(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, (unsigned long)cap, 0, 0) == 0,
          "raising an ambient capability: %s", strerror(errno));
    CHECK(status_hex("CapAmb") == PRIVS_CAP(cap), "CapAmb %016llx",
          (unsigned long long)status_hex("CapAmb"));
    return 0;
}

static int child_drop_all(void)
{
    char err[256];
    if (raise_ambient(CAP_NET_RAW))
        return 1;
    CHECK(privs_drop(TEST_USER, 0, err, sizeof(err)) == 0, "privs_drop: %s", err);
    if (check_dropped_to_nobody(0))
        return 1;
    int fd = open(secret_path, O_RDONLY);
    CHECK(fd < 0 && errno == EACCES, "root-only file readable without capabilities");
    return 0;
}

static int child_keep_dac_read_search(void)
{
    char err[256];
    uint64_t keep = PRIVS_CAP(CAP_DAC_READ_SEARCH);
    CHECK(privs_drop(TEST_USER, keep, err, sizeof(err)) == 0, "privs_drop: %s", err);
    if (check_dropped_to_nobody(keep))
        return 1;
    int fd = open(secret_path, O_RDONLY);
    CHECK(fd >= 0, "root-only file not readable with cap_dac_read_search: %s", strerror(errno));
    close(fd);
    return 0;
}

static int child_missing_user(void)
{
    char err[256];
    uint64_t eff_before = status_hex("CapEff");
    CHECK(privs_drop(MISSING_USER, 0, err, sizeof(err)) == -1, "privs_drop succeeded");
    CHECK(strstr(err, "'" MISSING_USER "'") != NULL, "error does not name the user: %s", err);
    CHECK(strstr(err, "useradd") != NULL, "error does not say how to fix it: %s", err);
    /* The lookup comes first, so a typo in the config leaves the process untouched. */
    CHECK(geteuid() == 0, "euid changed to %u", (unsigned)geteuid());
    CHECK(status_hex("CapEff") == eff_before, "capabilities changed");
    CHECK(status_long("NoNewPrivs") == 0, "no-new-privs set despite the failure");
    return 0;
}

/* An agent started as a non-root user that still holds capabilities (systemd's
 * AmbientCapabilities=, or a file capability): only the kept one may survive. */
static int child_non_root_path(void)
{
    char err[256];
    CHECK(prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) == 0, "keepcaps: %s", strerror(errno));
    CHECK(setgroups(0, NULL) == 0, "setgroups: %s", strerror(errno));
    struct passwd *pw = getpwnam(TEST_USER);
    CHECK(pw != NULL, "user %s missing", TEST_USER);
    CHECK(setgid(pw->pw_gid) == 0 && setuid(pw->pw_uid) == 0, "switch: %s", strerror(errno));
    cap_t c = cap_get_proc();
    CHECK(c != NULL, "cap_get_proc");
    for (cap_value_t i = 0; i <= CAP_LAST_CAP; i++) {
        cap_flag_value_t v;
        if (cap_get_flag(c, i, CAP_PERMITTED, &v) == 0 && v == CAP_SET)
            cap_set_flag(c, CAP_EFFECTIVE, 1, &i, CAP_SET);
    }
    CHECK(cap_set_proc(c) == 0, "raising the effective set: %s", strerror(errno));
    cap_free(c);
    CHECK(status_hex("CapEff") != 0, "no capabilities to drop in this setup");
    if (raise_ambient(CAP_NET_RAW))
        return 1;

    uint64_t keep = PRIVS_CAP(CAP_DAC_READ_SEARCH);
    CHECK(privs_drop("unused-when-not-root", keep, err, sizeof(err)) == 0, "privs_drop: %s", err);
    return check_dropped_to_nobody(keep);
}

static int child_refuses_setuid_cap(void)
{
    char err[256];
    CHECK(privs_drop(TEST_USER, PRIVS_CAP(CAP_SETUID), err, sizeof(err)) == -1,
          "keeping cap_setuid was accepted");
    CHECK(strstr(err, "cap_setuid") != NULL, "error: %s", err);
    CHECK(geteuid() == 0, "euid changed");
    return 0;
}

static int wake_fds[2];

static void *idle_thread(void *arg)
{
    char c;
    while (read(wake_fds[0], &c, 1) < 0 && errno == EINTR)
        ;
    return arg;
}

static int child_refuses_threads(void)
{
    char err[256];
    pthread_t t;
    CHECK(pipe(wake_fds) == 0, "pipe");
    CHECK(pthread_create(&t, NULL, idle_thread, NULL) == 0, "pthread_create");
    int rc = privs_drop(TEST_USER, 0, err, sizeof(err));
    CHECK(write(wake_fds[1], "x", 1) == 1, "write");
    pthread_join(t, NULL);
    CHECK(rc == -1, "privs_drop accepted a process with 2 threads");
    CHECK(strstr(err, "thread") != NULL, "error: %s", err);
    CHECK(geteuid() == 0, "euid changed");
    return 0;
}

static void require_root(void)
{
    if (geteuid() != 0) {
        fprintf(stderr, "needs root: skipped\n");
        skip();
    }
}

static void test_drop_all(void **state)
{
    require_root();
    assert_int_equal(run_in_child(child_drop_all), 0);
}

static void test_keep_dac_read_search(void **state)
{
    require_root();
    assert_int_equal(run_in_child(child_keep_dac_read_search), 0);
}

static void test_missing_user(void **state)
{
    require_root();
    assert_int_equal(run_in_child(child_missing_user), 0);
}

static void test_non_root_path(void **state)
{
    require_root();
    assert_int_equal(run_in_child(child_non_root_path), 0);
}

static void test_refuses_setuid_cap(void **state)
{
    require_root();
    assert_int_equal(run_in_child(child_refuses_setuid_cap), 0);
}

static void test_refuses_threads(void **state)
{
    require_root();
    assert_int_equal(run_in_child(child_refuses_threads), 0);
}

static void test_describe(void **state)
{
    char buf[128];
    assert_string_equal(privs_caps_describe(0, buf, sizeof(buf)), "none");
    assert_string_equal(privs_caps_describe(PRIVS_CAP(CAP_DAC_READ_SEARCH), buf, sizeof(buf)),
                        "cap_dac_read_search");
    assert_string_equal(privs_caps_describe(PRIVS_CAP(CAP_DAC_READ_SEARCH) | PRIVS_CAP(CAP_NET_RAW),
                                            buf, sizeof(buf)),
                        "cap_dac_read_search,cap_net_raw");
    /* Too small a buffer: whole names only, marked, still terminated. */
    char small[24];
    privs_caps_describe(PRIVS_CAP(CAP_CHOWN) | PRIVS_CAP(CAP_DAC_READ_SEARCH), small,
                        sizeof(small));
    assert_string_equal(small, "cap_chown,...");
}

static void test_parse(void **state)
{
    uint64_t m;
    char err[256];
    assert_int_equal(privs_caps_parse("CAP_DAC_READ_SEARCH, cap_net_raw", &m, err, sizeof(err)), 0);
    assert_true(m == (PRIVS_CAP(CAP_DAC_READ_SEARCH) | PRIVS_CAP(CAP_NET_RAW)));
    assert_int_equal(privs_caps_parse("none", &m, err, sizeof(err)), 0);
    assert_true(m == 0);
    assert_int_equal(privs_caps_parse("", &m, err, sizeof(err)), 0);
    assert_true(m == 0);
    assert_int_equal(privs_caps_parse("cap_dac_read_search,cap_bogus", &m, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "cap_bogus"));
}

static int setup(void **state)
{
    /* mkstemp makes it 0600 and owned by the test (root): nobody may read it. */
    snprintf(secret_path, sizeof(secret_path), "/tmp/dsf-privs-XXXXXX");
    int fd = mkstemp(secret_path);
    if (fd < 0)
        return -1;
    int ok = write(fd, "secret\n", 7) == 7;
    close(fd);
    return ok ? 0 : -1;
}

static int teardown(void **state)
{
    unlink(secret_path);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_drop_all),           cmocka_unit_test(test_keep_dac_read_search),
        cmocka_unit_test(test_missing_user),       cmocka_unit_test(test_non_root_path),
        cmocka_unit_test(test_refuses_setuid_cap), cmocka_unit_test(test_refuses_threads),
        cmocka_unit_test(test_describe),           cmocka_unit_test(test_parse),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
