#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "collector/agents.h"

static void late_messages_fill_gaps_and_resends_are_duplicates(void **state)
{
    static struct agents a;
    struct agent_state *s = agents_get(&a, "ns1", "mci1", "vm1");
    assert_non_null(s);
    agents_track(s, "boot1", 1);
    agents_track(s, "boot1", 2);
    agents_track(s, "boot1", 5); /* 3 and 4 overtaken */
    assert_int_equal(s->gaps, 2);
    agents_track(s, "boot1", 3); /* late: fills a gap */
    agents_track(s, "boot1", 3); /* resent: a duplicate */
    agents_track(s, "boot1", 5);
    assert_int_equal(s->late, 1);
    assert_int_equal(s->duplicates, 2);
    agents_track(s, "boot1", 2000); /* far ahead: the window moves past 4 */
    agents_track(s, "boot1", 4);    /* too old to tell: not counted as filling a gap */
    assert_int_equal(s->gaps, 2 + 1994);
    assert_int_equal(s->late, 1);
    assert_int_equal(s->duplicates, 3);
    agents_track(s, "boot1", 1999 - 70); /* across a word boundary of the window */
    assert_int_equal(s->late, 2);
    agents_track(s, "boot2", 1); /* a restarted agent counts afresh */
    agents_track(s, "boot2", 2);
    assert_int_equal(s->gaps, 1996);
    assert_int_equal(s->duplicates, 3);
    assert_int_equal(s->messages, 11);
    agents_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(late_messages_fill_gaps_and_resends_are_duplicates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
