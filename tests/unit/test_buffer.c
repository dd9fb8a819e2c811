#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent/buffer.h"

static void append(struct buffer *b, uint64_t seq, size_t len)
{
    char data[4096];
    memset(data, 'a' + (int)(seq % 26), len);
    assert_int_equal(buffer_append(b, "boot1", seq, data, len, 10), 0);
}

static void full_buffer_drops_oldest_and_counts(void **state)
{
    struct buffer b;
    buffer_init(&b, 3000, 1);
    for (uint64_t seq = 1; seq <= 5; seq++)
        append(&b, seq, 1000);
    assert_int_equal(b.messages, 3);
    assert_int_equal(b.dropped_messages, 2);
    assert_int_equal(b.dropped_points, 20);
    assert_int_equal(b.dropped_bytes, 2000);
    assert_int_equal(buffer_next_queued(&b)->seq, 3);
    char big[4000] = {0};
    assert_int_equal(buffer_append(&b, "boot1", 6, big, sizeof(big), 7), -1);
    assert_int_equal(b.dropped_messages, 3);
    buffer_free(&b);
}

static void broker_mode_releases_in_order(void **state)
{
    struct buffer b;
    buffer_init(&b, 1 << 20, 1);
    for (uint64_t seq = 1; seq <= 3; seq++) {
        append(&b, seq, 100);
        buffer_mark_inflight(&b, buffer_next_queued(&b), 1000);
    }
    assert_int_equal(b.inflight, 3);
    buffer_delivered(&b, 2, 1); /* out of order: 1 still pending, nothing released */
    assert_int_equal(b.messages, 3);
    buffer_delivered(&b, 1, 1);
    assert_int_equal(b.messages, 1);
    buffer_delivered(&b, 3, 0); /* refused: back to the queue */
    assert_int_equal(b.inflight, 0);
    assert_int_equal(buffer_next_queued(&b)->seq, 3);
    buffer_free(&b);
}

static void collector_mode_waits_for_ack_and_resends(void **state)
{
    struct buffer b;
    buffer_init(&b, 1 << 20, 0);
    for (uint64_t seq = 1; seq <= 4; seq++) {
        append(&b, seq, 100);
        buffer_mark_inflight(&b, buffer_next_queued(&b), 1000);
        buffer_delivered(&b, seq, 1);
    }
    assert_int_equal(b.messages, 4);     /* broker acks are not enough */
    buffer_ack_range(&b, "other", 1, 2); /* another run's ack releases nothing */
    assert_int_equal(b.messages, 4);
    buffer_ack_range(&b, "boot1", 1, 2);
    assert_int_equal(b.messages, 2);
    assert_null(buffer_next_queued(&b));
    assert_int_equal(buffer_requeue_stale(&b, 5000, 10000), 0);
    assert_int_equal(buffer_requeue_stale(&b, 11000, 10000), 2);
    struct buffer_entry *e = buffer_next_queued(&b);
    assert_int_equal(e->seq, 3);
    buffer_mark_inflight(&b, e, 11000);
    assert_int_equal(b.resent, 1);
    buffer_requeue_inflight(&b);
    assert_int_equal(b.inflight, 0);
    buffer_ack_range(&b, "boot1", 4, 4);
    assert_int_equal(b.messages, 1); /* only what the collector stored: 3 stays */
    buffer_ack_range(&b, "boot1", 3, 3);
    assert_int_equal(b.messages, 0);
    assert_int_equal(b.bytes, 0);
    /* Not published yet: no ack can vouch for it. */
    append(&b, 5, 100);
    assert_int_equal(buffer_ack_range(&b, "boot1", 1, 5), 0);
    assert_int_equal(b.messages, 1);
    assert_true(buffer_sent_max(&b, "boot1") == 4);
    buffer_free(&b);
}

static char spool_dir[64];

static void make_spool_dir(void)
{
    snprintf(spool_dir, sizeof(spool_dir), "/tmp/dsf-spool-XXXXXX");
    assert_non_null(mkdtemp(spool_dir));
}

static void remove_spool_dir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", spool_dir);
    assert_int_equal(system(cmd), 0);
}

/* Sends everything in order through the broker path and returns the seqs seen. */
static size_t drain(struct buffer *b, uint64_t *seen, size_t cap)
{
    size_t n = 0;
    struct buffer_entry *e;
    while ((e = buffer_next_queued(b)) && n < cap) {
        seen[n++] = e->seq;
        buffer_mark_inflight(b, e, 1);
        buffer_delivered(b, e->seq, 1);
    }
    return n;
}

static void overflow_goes_to_the_spool_in_order(void **state)
{
    make_spool_dir();
    struct spool s;
    char err[256];
    assert_int_equal(spool_open(&s, spool_dir, 1 << 20, 0, err, sizeof(err)), 0);
    struct buffer b;
    buffer_init(&b, 3000, 1);
    b.spool = &s;
    for (uint64_t seq = 1; seq <= 10; seq++)
        append(&b, seq, 1000);
    assert_int_equal(b.messages, 3);
    assert_int_equal(s.messages, 7);
    assert_int_equal(b.dropped_messages, 0);
    uint64_t seen[32];
    size_t n = drain(&b, seen, 32);
    assert_int_equal(n, 10);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(seen[i], i + 1);
    assert_int_equal(s.messages, 0);
    buffer_free(&b);
    remove_spool_dir();
}

static void shutdown_saves_and_a_restart_sends_first(void **state)
{
    make_spool_dir();
    struct spool s;
    char err[256];
    assert_int_equal(spool_open(&s, spool_dir, 1 << 20, 1, err, sizeof(err)), 0);
    struct buffer b;
    buffer_init(&b, 3000, 1);
    b.spool = &s;
    for (uint64_t seq = 1; seq <= 5; seq++)
        append(&b, seq, 1000); /* 1-3 in memory, 4-5 spooled */
    buffer_mark_inflight(&b, buffer_next_queued(&b), 1);
    buffer_save(&b);
    assert_int_equal(b.messages, 0);
    assert_int_equal(s.messages, 5);
    buffer_free(&b);

    /* The next run: a new boot, the spool found again and sent before new samples. */
    struct spool s2;
    assert_int_equal(spool_open(&s2, spool_dir, 1 << 20, 0, err, sizeof(err)), 0);
    assert_int_equal(s2.messages, 5);
    struct buffer b2;
    buffer_init(&b2, 3000, 1);
    b2.spool = &s2;
    buffer_refill(&b2);
    char data[100] = {0};
    assert_int_equal(buffer_append(&b2, "boot2", 1, data, sizeof(data), 1), 0);
    struct buffer_entry *e = buffer_next_queued(&b2);
    assert_string_equal(e->boot, "boot1");
    assert_int_equal(e->seq, 1);
    uint64_t seen[32];
    assert_int_equal(drain(&b2, seen, 32), 6);
    for (int i = 0; i < 5; i++)
        assert_int_equal(seen[i], i + 1);
    assert_int_equal(seen[5], 1); /* boot2's first */
    buffer_free(&b2);
    remove_spool_dir();
}

static void full_spool_drops_its_oldest_and_counts(void **state)
{
    make_spool_dir();
    struct spool s;
    char err[256];
    assert_int_equal(spool_open(&s, spool_dir, 5000, 0, err, sizeof(err)), 0);
    struct buffer b;
    buffer_init(&b, 2000, 1);
    b.spool = &s;
    for (uint64_t seq = 1; seq <= 12; seq++)
        append(&b, seq, 1000);
    /* memory holds 1-2; the spool holds 4 of 1064 bytes; 6 were dropped from its front */
    assert_int_equal(b.messages, 2);
    assert_int_equal(s.messages, 4);
    assert_int_equal(s.dropped_messages, 6);
    assert_int_equal(s.dropped_points, 60);
    uint64_t seen[32];
    size_t n = drain(&b, seen, 32);
    assert_int_equal(n, 6);
    assert_int_equal(seen[1], 2);
    assert_int_equal(seen[2], 9);
    assert_int_equal(seen[5], 12);
    buffer_free(&b);
    remove_spool_dir();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(full_buffer_drops_oldest_and_counts),
        cmocka_unit_test(broker_mode_releases_in_order),
        cmocka_unit_test(collector_mode_waits_for_ack_and_resends),
        cmocka_unit_test(overflow_goes_to_the_spool_in_order),
        cmocka_unit_test(shutdown_saves_and_a_restart_sends_first),
        cmocka_unit_test(full_spool_drops_its_oldest_and_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
