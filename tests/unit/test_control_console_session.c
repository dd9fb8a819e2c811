/* control/console_session: what a browser's session goes through - a login, uses, idleness,
 * old age, a logout, a crowd of logins - and the Cookie headers browsers send. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "control/console_session.h"

#define IDLE 1000
#define MAX 5000

static void test_ids(void **state)
{
    (void)state;
    struct console_sessions *cs = console_sessions_new(IDLE, MAX);
    char a[CONSOLE_SESSION_ID_LEN + 1], b[CONSOLE_SESSION_ID_LEN + 1];
    assert_int_equal(console_session_create(cs, 0, a), 0);
    assert_int_equal(console_session_create(cs, 0, b), 0);
    assert_int_equal(strlen(a), CONSOLE_SESSION_ID_LEN);
    assert_int_equal(strspn(a, "0123456789abcdef"), CONSOLE_SESSION_ID_LEN);
    assert_string_not_equal(a, b);
    assert_int_equal(console_session_touch(cs, a, 1), 1);
    /* One digit off, a prefix, an empty or longer id: no session. */
    char c[CONSOLE_SESSION_ID_LEN + 2];
    memcpy(c, a, sizeof(a));
    c[10] = c[10] == '0' ? '1' : '0';
    assert_int_equal(console_session_touch(cs, c, 1), 0);
    c[10] = a[10];
    c[CONSOLE_SESSION_ID_LEN - 1] = '\0';
    assert_int_equal(console_session_touch(cs, c, 1), 0);
    assert_int_equal(console_session_touch(cs, "", 1), 0);
    snprintf(c, sizeof(c), "%s0", a);
    assert_int_equal(console_session_touch(cs, c, 1), 0);
    assert_int_equal(console_sessions_live(cs, 1), 2);
    assert_int_equal(console_session_end(cs, a), 1);
    assert_int_equal(console_session_end(cs, a), 0);
    assert_int_equal(console_session_touch(cs, a, 2), 0);
    assert_int_equal(console_sessions_live(cs, 2), 1);
    console_sessions_free(cs);
}

static void test_idle_and_age(void **state)
{
    (void)state;
    struct console_sessions *cs = console_sessions_new(IDLE, MAX);
    char used[CONSOLE_SESSION_ID_LEN + 1], idle[CONSOLE_SESSION_ID_LEN + 1];
    assert_int_equal(console_session_create(cs, 0, used), 0);
    assert_int_equal(console_session_create(cs, 0, idle), 0);
    /* A session used every 900 ms stays; the other ends at 1000 ms of idleness. */
    for (int64_t t = 900; t < MAX; t += 900)
        assert_int_equal(console_session_touch(cs, used, t), 1);
    assert_int_equal(console_session_touch(cs, idle, IDLE), 0);
    assert_int_equal(console_sessions_live(cs, 4600), 1);
    /* Used or not, a session ends at max age. */
    assert_int_equal(console_sessions_live(cs, MAX), 0);
    assert_int_equal(console_session_touch(cs, used, MAX), 0);
    console_sessions_free(cs);
}

static void test_cap(void **state)
{
    (void)state;
    struct console_sessions *cs = console_sessions_new(IDLE * 1000, MAX * 1000);
    char first[CONSOLE_SESSION_ID_LEN + 1], second[CONSOLE_SESSION_ID_LEN + 1],
        id[CONSOLE_SESSION_ID_LEN + 1];
    assert_int_equal(console_session_create(cs, 0, first), 0);
    assert_int_equal(console_session_create(cs, 0, second), 0);
    assert_int_equal(console_session_touch(cs, first, 1), 1); /* second is now the oldest used */
    for (int i = 2; i < CONSOLE_SESSIONS_MAX; i++)
        assert_int_equal(console_session_create(cs, 2, id), 0);
    assert_int_equal(console_sessions_live(cs, 3), CONSOLE_SESSIONS_MAX);
    assert_int_equal(console_session_create(cs, 3, id), 0);
    assert_int_equal(console_sessions_live(cs, 3), CONSOLE_SESSIONS_MAX);
    assert_int_equal(console_session_touch(cs, second, 4), 0);
    assert_int_equal(console_session_touch(cs, first, 4), 1);
    assert_int_equal(console_session_touch(cs, id, 4), 1);
    console_sessions_free(cs);
}

static void test_cookie(void **state)
{
    (void)state;
    char v[CONSOLE_SESSION_ID_LEN + 1];
    assert_int_equal(console_cookie_get("dsf_session=abc", "dsf_session", v, sizeof(v)), 0);
    assert_string_equal(v, "abc");
    assert_int_equal(console_cookie_get("a=1; dsf_session=xyz; b=2", "dsf_session", v, sizeof(v)),
                     0);
    assert_string_equal(v, "xyz");
    assert_int_equal(
        console_cookie_get("x_dsf_session=1;dsf_session=2", "dsf_session", v, sizeof(v)), 0);
    assert_string_equal(v, "2");
    assert_int_equal(console_cookie_get("dsf_sessionx=1", "dsf_session", v, sizeof(v)), -1);
    assert_int_equal(console_cookie_get("", "dsf_session", v, sizeof(v)), -1);
    assert_int_equal(console_cookie_get("dsf_session", "dsf_session", v, sizeof(v)), -1);
    char long_cookie[200];
    snprintf(long_cookie, sizeof(long_cookie), "dsf_session=%0100d", 0);
    assert_int_equal(console_cookie_get(long_cookie, "dsf_session", v, sizeof(v)), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ids),
        cmocka_unit_test(test_idle_and_age),
        cmocka_unit_test(test_cap),
        cmocka_unit_test(test_cookie),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
