#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "agent/ack.h"

#define BOOT "0123456789abcdef"

static int parse(const char *json, struct ack *ack)
{
    char why[256];
    int rc = ack_parse(json, strlen(json), ack, why, sizeof(why));
    if (rc)
        print_message("refused %s: %s\n", json, why);
    return rc;
}

static void seqs_are_unsigned_64_bit(void **state)
{
    struct ack ack;
    assert_int_equal(parse("{\"boot\":\"" BOOT "\",\"ranges\":[[0,18446744073709551615]]}", &ack),
                     0);
    assert_string_equal(ack.boot, BOOT);
    assert_int_equal(ack.nranges, 1);
    assert_true(ack.ranges[0].lo == 0);
    assert_true(ack.ranges[0].hi == UINT64_MAX);
    ack_free(&ack);
    assert_int_equal(parse(" { \"ranges\" : [ [ 9223372036854775808 , 9223372036854775809 ] ] ,"
                           " \"boot\" : \"" BOOT "\" } ",
                           &ack),
                     0);
    assert_true(ack.ranges[0].lo == (uint64_t)INT64_MAX + 1);
    ack_free(&ack);
    /* Numbers elsewhere, and digits and quotes inside strings, are left alone. */
    assert_int_equal(parse("{\"boot\":\"" BOOT "\",\"note\":\"a\\\"1,[2]\\\" -3\","
                           "\"x\":[-1.5e7,0.25,true,null],\"ranges\":[[1,2]]}",
                           &ack),
                     0);
    assert_true(ack.ranges[0].lo == 1 && ack.ranges[0].hi == 2);
    ack_free(&ack);
}

static void malformed_acks_are_refused(void **state)
{
    const char *bad[] = {
        "",
        "null",
        "[[1,2]]",
        "{\"boot\":\"" BOOT "\",\"ranges\":[[0,18446744073709551616]]}", /* 2^64 */
        "{\"boot\":\"" BOOT "\",\"ranges\":[[-1,5]]}",
        "{\"boot\":\"" BOOT "\",\"ranges\":[[1.5,5]]}",
        "{\"boot\":\"" BOOT "\",\"ranges\":[[1e3,5000]]}",
        "{\"boot\":\"" BOOT "\",\"ranges\":[[\"1\",5]]}",
        "{\"boot\":\"" BOOT "\",\"ranges\":[[012,15]]}",
        "{\"boot\":\"" BOOT "\",\"ranges\":[[1,2,3]]}",
        "{\"boot\":\"" BOOT "\",\"ranges\":[[5]]}",
        "{\"boot\":\"" BOOT "\",\"ranges\":[[5,4]]}",
        "{\"boot\":\"" BOOT "\",\"ranges\":[[1,2]}",
        "{\"boot\":\"" BOOT "\",\"ranges\":{\"1\":2}}",
        "{\"boot\":\"" BOOT "\",\"ranges\":[[1,2]],\"ranges\":[[3,4]]}",
        "{\"boot\":\"" BOOT "\",\"ranges\":[[1,-]]}",
        "{\"boot\":\"" BOOT "\",\"ranges\":[[1,2e]]}",
        "{\"boot\":\"0123456789ABCDEF\",\"ranges\":[[1,2]]}",
        "{\"boot\":\"0123\",\"ranges\":[[1,2]]}",
        "{\"boot\":1,\"ranges\":[[1,2]]}",
        "{\"boot\":\"" BOOT "\"}",
        "{\"boot\":\"" BOOT "\",\"ranges\":[[1,2]],\"x\":\"unterminated}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct ack ack;
        char why[256] = "";
        if (ack_parse(bad[i], strlen(bad[i]), &ack, why, sizeof(why)) == 0)
            fail_msg("accepted %s", bad[i]);
        assert_true(why[0] != '\0');
        assert_null(ack.ranges);
    }
}

static void ranges_are_sorted_and_merged(void **state)
{
    struct ack ack;
    assert_int_equal(parse("{\"boot\":\"" BOOT "\",\"ranges\":[[5,6],[1,2],[3,4],[10,12],"
                           "[11,20],[30,30],[18446744073709551615,18446744073709551615],"
                           "[18446744073709551610,18446744073709551615]]}",
                           &ack),
                     0);
    assert_int_equal(ack.nranges, 4);
    assert_true(ack.ranges[0].lo == 1 && ack.ranges[0].hi == 6);
    assert_true(ack.ranges[1].lo == 10 && ack.ranges[1].hi == 20);
    assert_true(ack.ranges[2].lo == 30 && ack.ranges[2].hi == 30);
    assert_true(ack.ranges[3].lo == UINT64_MAX - 5 && ack.ranges[3].hi == UINT64_MAX);
    ack_free(&ack);
}

static enum ack_verdict apply(struct buffer *b, const char *boot, const char *ranges,
                              size_t *released)
{
    char json[256], why[256] = "";
    snprintf(json, sizeof(json), "{\"boot\":\"%s\",\"ranges\":%s}", boot, ranges);
    enum ack_verdict v = ack_apply(b, json, strlen(json), released, why, sizeof(why));
    print_message("%s -> %s %s\n", json, ack_verdict_name(v), why);
    return v;
}

/* Five messages taken, three published: acks may release only those three, and an ack that
 * names anything else releases nothing at all. */
static void only_published_seqs_are_released(void **state)
{
    struct buffer b;
    buffer_init(&b, 1 << 20, 0);
    char data[100] = {0};
    for (uint64_t seq = 1; seq <= 5; seq++)
        assert_int_equal(buffer_append(&b, BOOT, seq, data, sizeof(data), 1), 0);
    for (int i = 0; i < 3; i++)
        buffer_mark_inflight(&b, buffer_next_queued(&b), 1000);
    assert_true(buffer_sent_max(&b, BOOT) == 3);
    size_t released;
    assert_int_equal(apply(&b, BOOT, "[[0,18446744073709551615]]", &released), ACK_UNSENT);
    assert_int_equal(apply(&b, BOOT, "[[1,1000000]]", &released), ACK_UNSENT);
    assert_int_equal(apply(&b, BOOT, "[[4,5]]", &released), ACK_UNSENT);
    assert_int_equal(apply(&b, BOOT, "[[0,1]]", &released), ACK_UNSENT);
    assert_int_equal(apply(&b, BOOT, "[[1,1],[3,4]]", &released), ACK_UNSENT);
    assert_int_equal(apply(&b, "fedcba9876543210", "[[1,3]]", &released), ACK_UNKNOWN_BOOT);
    assert_int_equal(apply(&b, BOOT, "[[1,-3]]", &released), ACK_MALFORMED);
    assert_int_equal(b.messages, 5);
    assert_int_equal(apply(&b, BOOT, "[[2,3],[1,1]]", &released), ACK_APPLIED);
    assert_int_equal(released, 3);
    assert_int_equal(b.messages, 2);
    assert_int_equal(apply(&b, BOOT, "[[1,2]]", &released), ACK_STALE);
    assert_int_equal(apply(&b, BOOT, "[]", &released), ACK_STALE);
    /* Published now: the same ack that was refused before is a collector's ack after. */
    buffer_mark_inflight(&b, buffer_next_queued(&b), 2000);
    assert_int_equal(apply(&b, BOOT, "[[4,4]]", &released), ACK_APPLIED);
    assert_int_equal(b.messages, 1);
    buffer_free(&b);
}

/* Messages of earlier runs come from the spool: each boot's highest published seq is kept. */
static void earlier_boots_are_tracked_apart(void **state)
{
    struct buffer b;
    buffer_init(&b, 1 << 20, 0);
    char data[10] = {0};
    const char *boots[BUFFER_SENT_BOOTS + 1];
    char names[BUFFER_SENT_BOOTS + 1][17];
    for (int i = 0; i <= BUFFER_SENT_BOOTS; i++) {
        snprintf(names[i], sizeof(names[i]), "%016x", i + 1);
        boots[i] = names[i];
        for (uint64_t seq = 40; seq <= 41; seq++)
            assert_int_equal(buffer_append(&b, boots[i], seq, data, sizeof(data), 1), 0);
    }
    struct buffer_entry *e;
    while ((e = buffer_next_queued(&b)))
        buffer_mark_inflight(&b, e, 1000);
    /* The oldest boot gave its slot to the newest. */
    assert_true(buffer_sent_max(&b, boots[0]) == 0);
    for (int i = 1; i <= BUFFER_SENT_BOOTS; i++)
        assert_true(buffer_sent_max(&b, boots[i]) == 41);
    size_t released;
    assert_int_equal(apply(&b, boots[0], "[[40,41]]", &released), ACK_UNKNOWN_BOOT);
    assert_int_equal(apply(&b, boots[1], "[[40,42]]", &released), ACK_UNSENT);
    assert_int_equal(apply(&b, boots[1], "[[1,41]]", &released), ACK_APPLIED);
    assert_int_equal(released, 2);
    buffer_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(seqs_are_unsigned_64_bit),
        cmocka_unit_test(malformed_acks_are_refused),
        cmocka_unit_test(ranges_are_sorted_and_merged),
        cmocka_unit_test(only_published_seqs_are_released),
        cmocka_unit_test(earlier_boots_are_tracked_apart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
