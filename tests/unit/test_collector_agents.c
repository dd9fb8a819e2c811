#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "collector/agents.h"
#include "common/buf.h"

#define JUMP 1000000 /* agents.max_seq_jump's default */
#define B1 "00000000000000b1"
#define B2 "00000000000000b2"

static enum agent_seq track(struct agent_state *s, const char *boot, uint64_t seq)
{
    return agents_track(s, boot, seq, JUMP);
}

static void late_messages_fill_gaps_and_resends_are_duplicates(void **state)
{
    static struct agents a;
    struct agent_state *s = agents_get(&a, "ns1", "mci1", "vm1");
    assert_non_null(s);
    track(s, B1, 1);
    track(s, B1, 2);
    assert_int_equal(track(s, B1, 5), AGENT_SEQ_NEXT); /* 3 and 4 overtaken */
    assert_int_equal(s->gaps, 2);
    assert_int_equal(track(s, B1, 3), AGENT_SEQ_LATE);      /* fills a gap */
    assert_int_equal(track(s, B1, 3), AGENT_SEQ_DUPLICATE); /* resent */
    track(s, B1, 5);
    assert_int_equal(s->late, 1);
    assert_int_equal(s->duplicates, 2);
    track(s, B1, 1000); /* the window moves past 4 */
    assert_int_equal(s->gaps, 2 + 994);
    assert_int_equal(track(s, B1, 1000 - 70), AGENT_SEQ_LATE); /* across a word of the window */
    track(s, B1, 2000);
    assert_int_equal(track(s, B1, 4), AGENT_SEQ_DUPLICATE); /* too old to tell */
    assert_int_equal(s->late, 2);
    assert_int_equal(s->duplicates, 3);
    track(s, B2, 1); /* a restarted agent counts afresh */
    track(s, B2, 2);
    assert_int_equal(s->gaps, 2 + 994 + 999);
    assert_int_equal(s->duplicates, 3);
    assert_int_equal(s->messages, 12);
    agents_free(&a);
}

/* One message with the agent's boot and seq 2^64-1 used to carry the mark there: every later
 * message was a duplicate (not aggregated) and the gaps counter jumped by 1.8e19. */
static void one_far_seq_does_not_move_the_mark(void **state)
{
    static struct agents a;
    struct agent_state *s = agents_get(&a, "ns1", "mci1", "vm1");
    for (uint64_t q = 1; q <= 10; q++)
        assert_int_equal(track(s, B1, q), AGENT_SEQ_NEXT);
    assert_int_equal(track(s, B1, UINT64_MAX), AGENT_SEQ_SUSPECT);
    assert_int_equal(track(s, B1, 11), AGENT_SEQ_NEXT);
    assert_int_equal(track(s, B1, 10 + JUMP), AGENT_SEQ_FAR); /* plausible, still one alone */
    assert_int_equal(track(s, B1, 12), AGENT_SEQ_NEXT);
    assert_int_equal(track(s, B1, 11), AGENT_SEQ_DUPLICATE);
    assert_int_equal(s->gaps, 0);
    assert_int_equal(s->run.last_seq, 12);
    agents_free(&a);
}

/* Two agreeing far seqs move the mark (an agent whose buffer dropped messages jumps
 * ahead); if they were forged, the real messages, now far behind, bring it back. */
static void two_agreeing_seqs_move_the_mark_either_way(void **state)
{
    static struct agents a;
    struct agent_state *s = agents_get(&a, "ns1", "mci1", "vm1");
    for (uint64_t q = 1; q <= 10; q++)
        track(s, B1, q);
    assert_int_equal(track(s, B1, 5000), AGENT_SEQ_FAR);
    assert_int_equal(track(s, B1, 5001), AGENT_SEQ_NEXT);
    assert_int_equal(s->gaps, 5000 - 11); /* 11..4999 */
    assert_int_equal(track(s, B1, 5000), AGENT_SEQ_DUPLICATE);
    /* Forged: the pair lands at the top, the real stream goes on below it. */
    assert_int_equal(track(s, B1, UINT64_MAX - 1), AGENT_SEQ_SUSPECT);
    assert_int_equal(track(s, B1, UINT64_MAX), AGENT_SEQ_NEXT);
    uint64_t gaps = s->gaps;
    assert_int_equal(track(s, B1, 5002), AGENT_SEQ_SUSPECT);
    assert_int_equal(track(s, B1, 5003), AGENT_SEQ_NEXT);
    assert_int_equal(track(s, B1, 5004), AGENT_SEQ_NEXT);
    assert_int_equal(track(s, B1, 5003), AGENT_SEQ_DUPLICATE);
    assert_int_equal(s->gaps, gaps);
    /* A pair inside the stretch a plausible jump skipped is not a resend either. */
    track(s, B1, 9000);
    track(s, B1, 9001);
    assert_int_equal(track(s, B1, 6000), AGENT_SEQ_FAR);
    assert_int_equal(track(s, B1, 5004), AGENT_SEQ_DUPLICATE); /* below the jump: a resend */
    agents_free(&a);
}

/* The first message seen decides nothing for good: forged first, the real ones take over. */
static void a_forged_first_seq_is_corrected(void **state)
{
    static struct agents a;
    struct agent_state *s = agents_get(&a, "ns1", "mci1", "vm1");
    assert_int_equal(track(s, B1, UINT64_MAX), AGENT_SEQ_NEXT);
    assert_int_equal(s->gaps, 0);
    assert_int_equal(track(s, B1, 40), AGENT_SEQ_SUSPECT);
    assert_int_equal(track(s, B1, 41), AGENT_SEQ_NEXT);
    assert_int_equal(track(s, B1, 42), AGENT_SEQ_NEXT);
    assert_int_equal(s->duplicates, 0);
    assert_int_equal(s->gaps, 0);
    agents_free(&a);
}

/* A message of another boot between two of the run does not reset the run. */
static void another_boot_in_between_keeps_the_run(void **state)
{
    static struct agents a;
    struct agent_state *s = agents_get(&a, "ns1", "mci1", "vm1");
    for (uint64_t q = 1; q <= 5; q++)
        track(s, B1, q);
    assert_int_equal(track(s, B2, UINT64_MAX), AGENT_SEQ_NEXT);
    assert_int_equal(track(s, B1, 6), AGENT_SEQ_NEXT);
    assert_int_equal(track(s, B1, 5), AGENT_SEQ_DUPLICATE);
    assert_int_equal(s->gaps, 0);
    agents_free(&a);
}

/* Stored seqs 0 and 2^64-1 stay two ranges: joined, they would ack every message. */
static void ack_ranges_do_not_wrap(void **state)
{
    static struct agents a;
    struct agent_state *s = agents_get(&a, "ns1", "mci1", "vm1");
    struct dsf_buf out = {0};
    agents_stored(s, UINT64_MAX, B1);
    agents_stored(s, 0, B1);
    agents_stored(s, 7, B1);
    agents_stored(s, 8, B1);
    agents_take_ack(s, &out);
    assert_string_equal(buf_cstr(&out), "{\"boot\":\"" B1 "\",\"ranges\":[[18446744073709551615,"
                                        "18446744073709551615],[0,0],[7,8]]}");
    buf_free(&out);
    agents_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(late_messages_fill_gaps_and_resends_are_duplicates),
        cmocka_unit_test(one_far_seq_does_not_move_the_mark),
        cmocka_unit_test(two_agreeing_seqs_move_the_mark_either_way),
        cmocka_unit_test(a_forged_first_seq_is_corrected),
        cmocka_unit_test(another_boot_in_between_keeps_the_run),
        cmocka_unit_test(ack_ranges_do_not_wrap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
