#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/spool.h"

static char dir[64];

static int make_dir(void **state)
{
    snprintf(dir, sizeof(dir), "%s/spool-test.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    return mkdtemp(dir) ? 0 : -1;
}

static int remove_dir(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void put_text(struct spool *s, const char *text, uint32_t npoints)
{
    assert_int_equal(spool_put(s, "", 0, npoints, text, strlen(text), 0), 0);
}

static void held_record_survives_a_crash(void **state)
{
    char err[256];
    struct spool s;
    assert_int_equal(spool_open(&s, dir, 1 << 20, 0, err, sizeof(err)), 0);
    put_text(&s, "first\n", 1);
    put_text(&s, "second\n", 1);
    struct spool_record r = {0};
    assert_int_equal(spool_hold(&s, &r), 0);
    assert_int_equal(r.data.len, 6);
    assert_memory_equal(r.data.data, "first\n", 6);
    assert_int_equal(s.messages, 1);

    /* A new run, as after kill -9 while "first" was being sent: it comes back first. */
    struct spool again;
    assert_int_equal(spool_open(&again, dir, 1 << 20, 0, err, sizeof(err)), 0);
    assert_int_equal(again.messages, 2);
    assert_int_equal(spool_hold(&again, &r), 0);
    assert_memory_equal(r.data.data, "first\n", 6);
    spool_release(&again, r.id);
    assert_int_equal(spool_take(&again, &r), 0);
    assert_memory_equal(r.data.data, "second\n", 7);
    assert_int_equal(again.messages, 0);
    assert_int_equal(spool_hold(&again, &r), -1);
    buf_free(&r.data);
}

static void full_spool_drops_oldest_and_counts_points(void **state)
{
    char err[256], line[200];
    struct spool s;
    assert_int_equal(spool_open(&s, dir, 1000, 0, err, sizeof(err)), 0);
    memset(line, 'x', sizeof(line) - 1);
    line[sizeof(line) - 1] = '\0';
    for (int i = 0; i < 10; i++)
        put_text(&s, line, 7);
    assert_true(s.bytes <= 1000);
    assert_int_equal(s.dropped_points, 7 * (10 - s.messages));
    /* Held records are outside the cap: dropping makes room without touching them. */
    struct spool_record r = {0};
    assert_int_equal(spool_hold(&s, &r), 0);
    uint64_t held = r.id;
    for (int i = 0; i < 10; i++)
        put_text(&s, line, 7);
    spool_release(&s, held);
    buf_free(&r.data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(held_record_survives_a_crash, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(full_spool_drops_oldest_and_counts_points, make_dir,
                                        remove_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
