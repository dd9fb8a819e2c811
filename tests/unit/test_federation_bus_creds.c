/* The agents' broker users: the "$7$" lines match what mosquitto_passwd (mosquitto 2.0.11)
 * writes, a grant adds one user with a fresh password and keeps every other line, the mode
 * and group of the file survive its replacement, revoke removes only that user, and
 * threads granting at once lose nobody. (federation_local_credentials checks a real broker
 * takes the lines.) */
#include <pthread.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/base64.h"
#include "common/file.h"
#include "federation/bus_creds.h"

/* Written by `mosquitto_passwd -c -b FILE ns1/m1/vm-1 secret` (mosquitto 2.0.11). */
static const char mosquitto_line[] =
    "ns1/m1/vm-1:$7$101$qJu9KThzd2NdS//e$ygzjDXy0/G8DCUzUpL0jS1f3TnPxA7A4f/Ll0JbcVKJajLNmmmnTqqyz"
    "qW1LeGqj3reOLpJEJmJmmjVz/Jnm2A==";

static char dir[256], file[300];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "%s/fedbus.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    assert_non_null(mkdtemp(dir));
    snprintf(file, sizeof(file), "%s/passwd", dir);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fprintf(f, "# operators\noperator:$7$101$AAAAAAAAAAAAAAAA$xx==\n\n");
    fclose(f);
    assert_int_equal(chmod(file, 0640), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char lock[320];
    snprintf(lock, sizeof(lock), "%s/.passwd.lock", dir);
    unlink(lock);
    unlink(file);
    rmdir(dir);
    return 0;
}

static void test_mosquitto_line(void **state)
{
    (void)state;
    assert_int_equal(fed_bus_check_line(mosquitto_line, "secret"), 1);
    assert_int_equal(fed_bus_check_line(mosquitto_line, "secreT"), 0);
    /* Hashing with the salt mosquitto chose reproduces its line byte for byte. */
    size_t salt_len;
    char *salt = dsf_base64_decode("qJu9KThzd2NdS//e", 16, &salt_len);
    assert_non_null(salt);
    assert_int_equal(salt_len, FED_BUS_SALT_LEN);
    char line[FED_BUS_LINE_MAX];
    assert_int_equal(fed_bus_hash_line("ns1/m1/vm-1", "secret", (unsigned char *)salt, salt_len,
                                       101, line, sizeof(line)),
                     0);
    assert_string_equal(line, mosquitto_line);
    assert_int_equal(
        fed_bus_hash_line("ns1/m1/vm-1", "secret", (unsigned char *)salt, salt_len, 101, line, 40),
        -1);
    free(salt);
}

static void test_malformed(void **state)
{
    (void)state;
    const char *bad[] = {"user",
                         "user:$6$101$abc$def",
                         "user:$7$x$abc$def",
                         "user:$7$101$abc",
                         "user:$7$101$!!!!$def",
                         "user:$7$0$AAAA$def",
                         NULL};
    for (const char **b = bad; *b; b++)
        assert_int_equal(fed_bus_check_line(*b, "pw"), -1);
}

/* The line of user in the file, or "" when absent; counts its lines in *n. */
static void find_user(const char *user, char *out, size_t len, int *n)
{
    char *text = dsf_read_file(file, NULL);
    assert_non_null(text);
    out[0] = 0;
    *n = 0;
    size_t ulen = strlen(user);
    for (char *l = strtok(text, "\n"); l; l = strtok(NULL, "\n")) {
        if (!strncmp(l, user, ulen) && l[ulen] == ':') {
            snprintf(out, len, "%s", l);
            (*n)++;
        }
    }
    free(text);
}

static void test_grant_revoke(void **state)
{
    (void)state;
    struct fed_error err;
    /* As root, a group the broker reads it with (another than ours) must survive too. */
    gid_t group = getegid() == 0 ? 1 : getegid();
    if (geteuid() == 0)
        assert_int_equal(chown(file, 0, group), 0);
    struct fed_bus *b = fed_bus_open(file, NULL, &err);
    assert_non_null(b);
    assert_true(fed_bus_enabled(b));
    char pw[FED_BUS_PASSWORD_MAX], pw2[FED_BUS_PASSWORD_MAX], line[FED_BUS_LINE_MAX];
    int n;
    assert_int_equal(fed_bus_grant(b, "ns1/m1/web-1", pw, sizeof(pw), &err), 0);
    assert_int_equal(strlen(pw), 32);
    find_user("ns1/m1/web-1", line, sizeof(line), &n);
    assert_int_equal(n, 1);
    regex_t re;
    assert_int_equal(regcomp(&re,
                             "^ns1/m1/web-1:\\$7\\$101\\$[A-Za-z0-9+/]{16}\\$[A-Za-z0-9+/]{86}==$",
                             REG_EXTENDED | REG_NOSUB),
                     0);
    assert_int_equal(regexec(&re, line, 0, NULL, 0), 0);
    regfree(&re);
    assert_int_equal(fed_bus_check_line(line, pw), 1);
    /* A second grant replaces the line with a new password. */
    assert_int_equal(fed_bus_grant(b, "ns1/m1/web-1", pw2, sizeof(pw2), &err), 0);
    assert_string_not_equal(pw, pw2);
    find_user("ns1/m1/web-1", line, sizeof(line), &n);
    assert_int_equal(n, 1);
    assert_int_equal(fed_bus_check_line(line, pw2), 1);
    assert_int_equal(fed_bus_check_line(line, pw), 0);
    struct stat st;
    assert_int_equal(stat(file, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0640);
    assert_int_equal(st.st_gid, group);
    /* Revoke removes that user only: the operator, the comment and the blank line stay. */
    assert_int_equal(fed_bus_grant(b, "ns1/m1/web-10", pw, sizeof(pw), &err), 0);
    assert_int_equal(fed_bus_revoke_vm(b, "ns1", "m1", "web-1", &err), 0);
    find_user("ns1/m1/web-1", line, sizeof(line), &n);
    assert_int_equal(n, 0);
    find_user("ns1/m1/web-10", line, sizeof(line), &n);
    assert_int_equal(n, 1);
    assert_int_equal(fed_bus_revoke(b, "ns1/m1/web-10", &err), 0);
    assert_int_equal(fed_bus_revoke(b, "ns1/m1/web-10", &err), 0); /* absent: nothing to do */
    char *text = dsf_read_file(file, NULL);
    assert_string_equal(text, "# operators\noperator:$7$101$AAAAAAAAAAAAAAAA$xx==\n\n");
    free(text);
    assert_int_equal(fed_bus_grant(b, "bad:user", pw, sizeof(pw), &err), -1);
    assert_int_equal(fed_bus_revoke(b, "x\nbad:user", &err), -1);
    fed_bus_close(b);
}

static void test_disabled_and_missing(void **state)
{
    (void)state;
    struct fed_error err;
    struct fed_bus *off = fed_bus_open("", NULL, &err);
    char user[FED_BUS_USER_MAX + 1], pw[FED_BUS_PASSWORD_MAX];
    assert_non_null(off);
    assert_false(fed_bus_enabled(off));
    assert_int_equal(
        fed_bus_provision(off, "a", "b", "c", user, sizeof(user), pw, sizeof(pw), &err), 0);
    assert_string_equal(user, "a/b/c");
    assert_string_equal(pw, "");
    assert_int_equal(fed_bus_revoke_vm(off, "a", "b", "c", &err), 0);
    fed_bus_close(off);
    char missing[320];
    snprintf(missing, sizeof(missing), "%s/none", dir);
    struct fed_bus *b = fed_bus_open(missing, NULL, &err);
    assert_int_equal(fed_bus_provision(b, "a", "b", "c", user, sizeof(user), pw, sizeof(pw), &err),
                     -1);
    assert_non_null(strstr(err.message, missing));
    assert_string_equal(pw, "");
    fed_bus_close(b);
}

struct worker {
    struct fed_bus *b;
    int i;
    char pw[FED_BUS_PASSWORD_MAX];
};

static void *grant_one(void *arg)
{
    struct worker *w = arg;
    char user[32];
    snprintf(user, sizeof(user), "ns/m/vm-%d", w->i);
    return (void *)(intptr_t)fed_bus_grant(w->b, user, w->pw, sizeof(w->pw), NULL);
}

static void test_concurrent(void **state)
{
    (void)state;
    enum { N = 8 };
    struct fed_bus *b = fed_bus_open(file, NULL, NULL);
    struct worker w[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        w[i] = (struct worker){.b = b, .i = i};
        assert_int_equal(pthread_create(&t[i], NULL, grant_one, &w[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        void *rc;
        pthread_join(t[i], &rc);
        assert_int_equal((intptr_t)rc, 0);
    }
    for (int i = 0; i < N; i++) {
        char user[32], line[FED_BUS_LINE_MAX];
        int n;
        snprintf(user, sizeof(user), "ns/m/vm-%d", i);
        find_user(user, line, sizeof(line), &n);
        assert_int_equal(n, 1);
        assert_int_equal(fed_bus_check_line(line, w[i].pw), 1);
    }
    fed_bus_close(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mosquitto_line),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test_setup_teardown(test_grant_revoke, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disabled_and_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
