/* The federation store: atomic replacement (no temporary or torn files), concurrent
 * read-modify-writes from threads lose nothing, a second handle sees the first one's writes,
 * and a corrupt file is skipped with a warning rather than loaded half. */
#include <dirent.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "federation/federation.h"

static char dir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "%s/fedstore.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
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

static struct fed_vm make_vm(const char *id)
{
    struct fed_vm v;
    memset(&v, 0, sizeof(v));
    snprintf(v.ns, sizeof(v.ns), "ns1");
    snprintf(v.mci, sizeof(v.mci), "web");
    snprintf(v.id, sizeof(v.id), "%s", id);
    snprintf(v.subgroup, sizeof(v.subgroup), "sg");
    snprintf(v.spec.name, sizeof(v.spec.name), "sg");
    snprintf(v.spec.csp, sizeof(v.spec.csp), "local");
    snprintf(v.spec.region, sizeof(v.spec.region), "r1");
    v.spec.size = 1;
    v.state = FED_VM_RUNNING;
    return v;
}

static int add_fn(struct fed_mci *m, void *arg, struct fed_error *err)
{
    struct fed_vm v = make_vm(arg);
    return fed_mci_add_vm(m, &v) ? 0 : fed_fail(err, FED_EIO, "add", 0, "oom");
}

static void only_final_files(const char *sub)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, sub);
    DIR *d = opendir(path);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strstr(de->d_name, ".tmp"))
            fail_msg("temporary file left behind: %s", de->d_name);
    }
    closedir(d);
}

static void put_get_delete(void **state)
{
    (void)state;
    struct fed_error e;
    struct fed_store *s = fed_store_open(dir, &e);
    assert_non_null(s);
    assert_int_equal(fed_store_update(s, "ns1", "web", 1, add_fn, "vm1", &e), 0);
    struct fed_mci m;
    assert_int_equal(fed_store_get(s, "ns1", "web", &m, &e), 0);
    assert_int_equal(m.nvms, 1);
    assert_string_equal(m.vms[0].id, "vm1");
    assert_true(m.created_ms > 0);
    fed_mci_free(&m);
    only_final_files("ns1");
    char path[512];
    snprintf(path, sizeof(path), "%s/ns1/web.json", dir);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    assert_int_equal(fed_store_get(s, "ns1", "nope", &m, &e), -1);
    assert_int_equal(e.kind, FED_ENOTFOUND);
    assert_int_equal(fed_store_update(s, "ns1", "nope", 0, add_fn, "x", &e), -1);
    assert_int_equal(e.kind, FED_ENOTFOUND);
    assert_int_equal(fed_store_get(s, "ns/1", "web", &m, &e), -1);
    assert_int_equal(e.kind, FED_EINVAL);

    char **names;
    size_t n;
    assert_int_equal(fed_store_list(s, NULL, &names, &n, &e), 0);
    assert_int_equal(n, 1);
    assert_string_equal(names[0], "ns1");
    fed_names_free(names, n);
    assert_int_equal(fed_store_list(s, "ns1", &names, &n, &e), 0);
    assert_int_equal(n, 1);
    assert_string_equal(names[0], "web");
    fed_names_free(names, n);

    assert_int_equal(fed_store_delete(s, "ns1", "web", &e), 0);
    assert_int_equal(fed_store_get(s, "ns1", "web", &m, &e), -1);
    assert_int_equal(fed_store_delete(s, "ns1", "web", &e), -1);
    assert_int_equal(e.kind, FED_ENOTFOUND);
    fed_store_close(s);
}

#define THREADS 8
#define PER_THREAD 10

struct worker {
    struct fed_store *s;
    int index;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        char id[32];
        snprintf(id, sizeof(id), "t%d-%d", w->index, i);
        struct fed_error e;
        if (fed_store_update(w->s, "ns1", "web", 1, add_fn, id, &e) < 0)
            return (void *)1;
    }
    return NULL;
}

static void concurrent_updates_lose_nothing(void **state)
{
    (void)state;
    struct fed_error e;
    struct fed_store *s = fed_store_open(dir, &e);
    /* A second handle on the same directory, as a second process would have. */
    struct fed_store *s2 = fed_store_open(dir, &e);
    assert_non_null(s);
    assert_non_null(s2);
    pthread_t t[THREADS];
    struct worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct worker){i % 2 ? s2 : s, i};
        assert_int_equal(pthread_create(&t[i], NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        void *rc;
        pthread_join(t[i], &rc);
        assert_null(rc);
    }
    struct fed_mci m;
    assert_int_equal(fed_store_get(s, "ns1", "web", &m, &e), 0);
    assert_int_equal(m.nvms, THREADS * PER_THREAD);
    fed_mci_free(&m);
    assert_int_equal(fed_store_get(s2, "ns1", "web", &m, &e), 0);
    assert_int_equal(m.nvms, THREADS * PER_THREAD);
    fed_mci_free(&m);
    only_final_files("ns1");
    fed_store_close(s);
    fed_store_close(s2);

    /* What a fresh open loads is what was written. */
    s = fed_store_open(dir, &e);
    assert_int_equal(fed_store_get(s, "ns1", "web", &m, &e), 0);
    assert_int_equal(m.nvms, THREADS * PER_THREAD);
    fed_mci_free(&m);
    fed_store_close(s);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void corrupt_files_are_skipped(void **state)
{
    (void)state;
    struct fed_error e;
    char path[512];
    snprintf(path, sizeof(path), "%s/ns1", dir);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/ns1/broken.json", dir);
    write_text(path, "{\"version\":1,\"ns\":\"ns1\",\"id\":\"broken\",\"vm\":[{\"id\":");
    snprintf(path, sizeof(path), "%s/ns1/other.json", dir);
    write_text(path, "{\"version\":1,\"ns\":\"ns1\",\"id\":\"someone-else\"}");
    struct fed_store *s = fed_store_open(dir, &e);
    assert_non_null(s);
    struct fed_mci m;
    assert_int_equal(fed_store_get(s, "ns1", "broken", &m, &e), -1);
    assert_int_equal(e.kind, FED_EIO);
    assert_non_null(strstr(e.message, "broken.json"));
    assert_int_equal(fed_store_get(s, "ns1", "other", &m, &e), -1);
    assert_non_null(strstr(e.message, "holds ns1/someone-else"));
    /* An update refuses to overwrite what it could not read. */
    assert_int_equal(fed_store_update(s, "ns1", "broken", 1, add_fn, "vm1", &e), -1);
    fed_store_close(s);
}

static int fail_fn(struct fed_mci *m, void *arg, struct fed_error *err)
{
    (void)arg;
    m->description[0] = 'x'; /* edits of a failed update must not be saved */
    return fed_fail(err, FED_ESTATE, "test", 0, "refused");
}

static int keep_fn(struct fed_mci *m, void *arg, struct fed_error *err)
{
    (void)arg;
    (void)err;
    m->description[0] = 'x'; /* returning 1 means: do not save this */
    return 1;
}

static void failed_update_changes_nothing(void **state)
{
    (void)state;
    struct fed_error e;
    struct fed_store *s = fed_store_open(dir, &e);
    assert_non_null(s);
    assert_int_equal(fed_store_update(s, "ns1", "web", 1, add_fn, "vm1", &e), 0);
    assert_int_equal(fed_store_update(s, "ns1", "web", 0, fail_fn, NULL, &e), -1);
    assert_int_equal(e.kind, FED_ESTATE);
    assert_int_equal(fed_store_update(s, "ns1", "web", 0, keep_fn, NULL, &e), 0);
    struct fed_mci m;
    assert_int_equal(fed_store_get(s, "ns1", "web", &m, &e), 0);
    assert_int_equal(m.nvms, 1);
    assert_string_equal(m.description, "");
    fed_mci_free(&m);
    fed_store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(put_get_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(concurrent_updates_lose_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(corrupt_files_are_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(failed_update_changes_nothing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
