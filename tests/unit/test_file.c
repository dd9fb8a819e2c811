/* common/file: mkdir -p and the whole-file reader. */
#include <errno.h>
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

#include "common/file.h"

static char dir[64];

static int make_tmp(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/dsf-file.XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int remove_tmp(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static int is_dir(const char *path, mode_t *mode)
{
    struct stat st;
    if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
        return 0;
    *mode = st.st_mode & 07777;
    return 1;
}

static void mkdir_p_makes_every_level(void **state)
{
    (void)state;
    char path[256], err[300] = "";
    mode_t mode;
    snprintf(path, sizeof(path), "%s/a//b/c/", dir);
    mode_t old = umask(0);
    assert_int_equal(dsf_mkdir_p(path, 0750, err, sizeof(err)), 0);
    umask(old);
    snprintf(path, sizeof(path), "%s/a/b/c", dir);
    assert_true(is_dir(path, &mode));
    assert_int_equal(mode, 0750);
    snprintf(path, sizeof(path), "%s/a", dir);
    assert_true(is_dir(path, &mode));
    /* Again: what exists is fine. */
    assert_int_equal(dsf_mkdir_p(path, 0750, err, sizeof(err)), 0);
}

static void mkdir_p_names_what_failed(void **state)
{
    (void)state;
    char path[256], file[256], err[300] = "";
    snprintf(file, sizeof(file), "%s/plain", dir);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/sub", file);
    assert_int_equal(dsf_mkdir_p(path, 0755, err, sizeof(err)), -1);
    assert_int_equal(errno, ENOTDIR);
    assert_non_null(strstr(err, file)); /* the component that is in the way */
    /* A file where the directory should be is not a directory. */
    assert_int_equal(dsf_mkdir_p(file, 0755, err, sizeof(err)), -1);
    assert_int_equal(errno, ENOTDIR);
    char want[300];
    snprintf(want, sizeof(want), "%s: %s", file, strerror(ENOTDIR));
    assert_string_equal(err, want);
    assert_int_equal(dsf_mkdir_p("", 0755, err, sizeof(err)), -1);
}

static void read_file_whole(void **state)
{
    (void)state;
    char path[256];
    snprintf(path, sizeof(path), "%s/text", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < 3000; i++)
        fprintf(f, "line %d\n", i);
    fclose(f);
    size_t len = 0;
    char *text = dsf_read_file(path, &len);
    assert_non_null(text);
    assert_int_equal(len, strlen(text));
    assert_non_null(strstr(text, "line 2999\n"));
    free(text);
    snprintf(path, sizeof(path), "%s/none", dir);
    assert_null(dsf_read_file(path, &len));
    assert_int_equal(errno, ENOENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(mkdir_p_makes_every_level),
        cmocka_unit_test(mkdir_p_names_what_failed),
        cmocka_unit_test(read_file_whole),
    };
    return cmocka_run_group_tests(tests, make_tmp, remove_tmp);
}
