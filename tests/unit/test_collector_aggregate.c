/* collector/aggregate.c: rules, epoch-aligned windows per series, the emitted points, late
 * samples, and the durability claims held until a window's point is stored. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "collector/aggregate.h"
#include "collector/aggregate_impl.h"
#include "collector/collector.h"
#include "collector/writer.h"
#include "common/bucket.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The sink stands for the writer: it keeps what it is given until the test "stores" it. */
struct sink {
    struct dsf_buf lines;
    struct writer_mark *held[64];
    size_t nheld;
};

static int take(void *ctx, const char *lines, size_t len, uint32_t nlines,
                struct writer_mark *const *marks, size_t nmarks)
{
    struct sink *s = ctx;
    buf_put(&s->lines, lines, len);
    for (size_t i = 0; i < nmarks; i++)
        s->held[s->nheld++] = marks[i];
    return 0;
}

static void store_all(struct sink *s)
{
    writer_marks_done(s->held, s->nheld);
    s->nheld = 0;
}

static int acked[100], dropped[100];
static void on_done(void *owner, uint64_t seq, const char *tag)
{
    acked[seq]++;
}
static void on_abandon(void *owner, uint64_t seq, const char *tag)
{
    dropped[seq]++;
}
static const struct writer_mark_ops ops = {on_done, on_abandon};

struct fixture {
    struct collector c;
    struct sink sink;
    struct aggregate *a;
    struct lp_line line;
    struct dsf_identity id;
};

static struct fixture *setup(const char *rules)
{
    struct fixture *f = calloc(1, sizeof(*f));
    char err[DSF_CFG_ERRLEN];
    collector_config_sections(&f->c);
    assert_int_equal(dsf_cfg_defaults(f->c.sections, err, sizeof(err)), 0);
    assert_int_equal(
        dsf_cfg_set_value(f->c.sections, "aggregate.rules", rules, "test", err, sizeof(err)), 0);
    f->a = aggregate_new(&f->c, take, &f->sink, err, sizeof(err));
    assert_non_null(f->a);
    strcpy(f->id.ns, "ns1");
    strcpy(f->id.mci, "m1");
    strcpy(f->id.vm, "v1");
    memset(acked, 0, sizeof(acked));
    memset(dropped, 0, sizeof(dropped));
    return f;
}

static void teardown(struct fixture *f)
{
    store_all(&f->sink); /* what the store still had: before the windows' holders go */
    aggregate_free(f->a);
    buf_free(&f->sink.lines);
    dsf_cfg_free(f->c.sections);
    free(f);
}

/* One message of lines (its seq is its mark); returns how many lines were aggregated. */
static int message_as(struct fixture *f, uint64_t seq, const char *const *lines, size_t n,
                      int duplicate)
{
    struct writer_mark *marks[2] = {writer_mark_new(&ops, NULL, seq, "")};
    aggregate_begin(f->a, &f->id, marks, 1, duplicate);
    int taken = 0, forwarded = 0;
    for (size_t i = 0; i < n; i++) {
        const char *reason;
        assert_int_equal(lp_parse_line(lines[i], strlen(lines[i]), &f->line, &reason), 0);
        int missing = 0;
        for (int k = 0; k < 3; k++)
            missing |= 1 << k; /* the lines carry no identity tags */
        if (aggregate_take(f->a, &f->line, missing))
            taken++;
        else
            forwarded++;
    }
    size_t nmarks = aggregate_end(f->a, forwarded > 0, marks);
    if (forwarded)
        take(&f->sink, "", 0, 0, marks, nmarks); /* the forwarded lines go to the store too */
    else
        writer_marks_done(marks, nmarks);
    return taken;
}

static int message(struct fixture *f, uint64_t seq, const char *const *lines, size_t n)
{
    return message_as(f, seq, lines, n, 0);
}

/* Each line its own message, seq 1, 2, ... */
static void line_by_line(struct fixture *f, const char *const *lines, size_t n)
{
    for (size_t i = 0; i < n; i++)
        message(f, i + 1, &lines[i], 1);
}

static void test_rules(void **state)
{
    char err[400];
    const char *good[] = {"cpu", "cpu window=1m default=max usage=last", "* window=500ms"};
    const char *bad[] = {"cpu window=fast", "cpu usage=avg", "cpu usage", "cpu window=0s", "   "};
    for (size_t i = 0; i < 3; i++) {
        struct dsf_strlist l = {(char **)&good[i], 1};
        assert_int_equal(aggregate_check_rules(&l, err, sizeof(err)), 0);
    }
    for (size_t i = 0; i < 5; i++) {
        struct dsf_strlist l = {(char **)&bad[i], 1};
        assert_int_equal(aggregate_check_rules(&l, err, sizeof(err)), -1);
        assert_non_null(strstr(err, "aggregate rule"));
    }
}

static void test_windows(void **state)
{
    struct fixture *f = setup("cpu window=10s a=mean b=min c=max d=last e=sum g=count,net");
    /* Tag order does not matter; the identity tags come from the topic. */
    const char *m1[] = {"cpu,z=1,cpu=c0 a=1,b=5,c=1,d=1,e=1i,g=\"x\" 10000000000",
                        "net,if=eth0 bytes=10i,rate=1.5 10000000000", "mem used=1i 10000000000"};
    const char *m2[] = {"cpu,cpu=c0,z=1 a=2,b=3,c=9,d=2,e=2i,g=\"y\" 14000000000",
                        "net,if=eth0 bytes=20i,rate=2.5 19999999999"};
    const char *m3[] = {"cpu,cpu=c0,z=1 a=4,b=7,c=0,d=4,e=4i,g=\"z\" 22000000001",
                        "net,if=eth0 bytes=30i,rate=3.5 22000000001"};
    assert_int_equal(message(f, 1, m1, 3), 2); /* mem has no rule: forwarded */
    assert_int_equal(message(f, 2, m2, 2), 2);
    assert_int_equal(f->sink.lines.len, 0); /* nothing before the stream passes end + grace */
    assert_int_equal(message(f, 3, m3, 2), 2);
    buf_cstr(&f->sink.lines);
    assert_string_equal(f->sink.lines.data,
                        "cpu,cpu=c0,mci=m1,ns=ns1,vm=v1,z=1 a=1.5,b=3,c=9,d=2,e=3i,g=2i "
                        "10000000000\n"
                        "net,if=eth0,mci=m1,ns=ns1,vm=v1 bytes=20i,rate=2 10000000000\n");
    assert_int_equal(f->c.stats.agg_windows, 2);
    /* Held until stored: message 1 also had a forwarded line, stored with the sink's marks. */
    assert_int_equal(acked[1] + acked[2] + acked[3], 0);
    store_all(&f->sink);
    assert_int_equal(acked[1], 1);
    assert_int_equal(acked[2], 1);
    assert_int_equal(acked[3], 0); /* its window [20 s, 30 s) is still open */
    aggregate_flush(f->a);
    buf_cstr(&f->sink.lines);
    assert_non_null(strstr(f->sink.lines.data, "a=4,b=7,c=0,d=4,e=4i,g=1i 20000000000\n"));
    store_all(&f->sink);
    assert_int_equal(acked[3], 1);
    assert_int_equal(dropped[1] + dropped[2] + dropped[3], 0);
    teardown(f);
}

static void test_late(void **state)
{
    struct fixture *f = setup("cpu window=10s");
    const char *m1[] = {"cpu v=1 1000000000"};
    const char *m2[] = {"cpu v=2 13000000000"}; /* passes [0, 10 s) + 2 s grace */
    message(f, 1, m1, 1);
    message(f, 2, m2, 1);
    assert_int_equal(f->c.stats.agg_windows, 1);
    /* A copy of message 1 sent again is late: dropped, counted, and acked only with the
     * window in flight that holds the original. */
    message(f, 4, m1, 1);
    assert_int_equal(f->c.stats.agg_late, 1);
    assert_int_equal(acked[4], 0);
    store_all(&f->sink);
    assert_int_equal(acked[1], 1);
    assert_int_equal(acked[4], 1);
    /* Now nothing is in flight: a late sample is acked at once. */
    message(f, 5, m1, 1);
    assert_int_equal(f->c.stats.agg_late, 2);
    assert_int_equal(acked[5], 1);
    teardown(f);
}

static void test_out_of_order_within_grace(void **state)
{
    struct fixture *f = setup("cpu window=10s");
    const char *a[] = {"cpu v=1 10500000000"};
    const char *b[] = {"cpu v=3 9500000000"}; /* 1 s behind: inside the grace */
    const char *c[] = {"cpu v=5 12500000000"};
    message(f, 1, a, 1);
    message(f, 2, b, 1);
    message(f, 3, c, 1);
    buf_cstr(&f->sink.lines);
    assert_string_equal(f->sink.lines.data, "cpu,mci=m1,ns=ns1,vm=v1 v=3 0\n");
    assert_int_equal(f->c.stats.agg_late, 0);
    teardown(f);
}

/* A message sent again while its window is open is not folded twice, and its copy is acked
 * with the window. */
static void test_duplicate(void **state)
{
    struct fixture *f = setup("cpu window=10s");
    const char *m1[] = {"cpu v=1 1000000000"};
    const char *m2[] = {"cpu v=3 3000000000"};
    const char *m3[] = {"cpu v=100 13000000000"};
    message(f, 1, m1, 1);
    message(f, 2, m2, 1);
    message_as(f, 1, m1, 1, 1); /* the agent resent seq 1 */
    assert_int_equal(acked[1], 0);
    message(f, 3, m3, 1);
    buf_cstr(&f->sink.lines);
    assert_string_equal(f->sink.lines.data, "cpu,mci=m1,ns=ns1,vm=v1 v=2 0\n");
    assert_int_equal(f->c.stats.agg_duplicates, 1);
    store_all(&f->sink);
    assert_int_equal(acked[1], 2); /* the original and its copy */
    assert_int_equal(acked[2], 1);
    teardown(f);
}

/* Fields first seen after the series was created are kept as well as the first ones. */
static void test_new_fields(void **state)
{
    struct fixture *f = setup("m window=10s");
    const char *lines[] = {"m a=1 1000000000",
                           "m b=2,a=3,c=\"s\",dddddddddddddddddddddddd=4i,e=5,f=6,g=t 2000000000",
                           "m a=9 13000000000"};
    line_by_line(f, lines, 3);
    buf_cstr(&f->sink.lines);
    assert_string_equal(f->sink.lines.data, "m,mci=m1,ns=ns1,vm=v1 a=2,b=2,c=\"s\","
                                            "dddddddddddddddddddddddd=4i,e=5,f=6,g=true 0\n");
    teardown(f);
}

/* Each function keeps its type; a value of another type in the same window is a conflict,
 * counted and left out; last is the newest sample's, not the latest to arrive. */
static void test_types_and_conflicts(void **state)
{
    struct fixture *f = setup("m window=10s lo=min hi=max s=sum c=count l=last");
    const char *lines[] = {"m lo=5i,hi=5u,s=-3i,l=\"a\",c=1 1000000000",
                           "m lo=-7i,hi=9u,s=4i,l=\"b\",c=2 2000000000",
                           "m lo=2.5,hi=1u,s=1i,l=\"c\",c=3 1500000000", "m lo=1i 13000000000"};
    line_by_line(f, lines, 4);
    buf_cstr(&f->sink.lines);
    assert_string_equal(f->sink.lines.data,
                        "m,mci=m1,ns=ns1,vm=v1 lo=-7i,hi=9u,s=2i,l=\"b\",c=3i 0\n");
    assert_int_equal(f->c.stats.agg_conflicts, 1);
    teardown(f);
}

/* An agent's lines may change order or series from one message to the next: each still
 * lands in its own series (the route that prefetches them is only a guess). */
static void test_route_follows_changes(void **state)
{
    struct fixture *f = setup("* window=10s");
    const char *m1[] = {"a v=1 1000000000", "b v=10 1000000000"};
    const char *m2[] = {"b v=20 3000000000", "a v=3 3000000000"};
    const char *m3[] = {"c v=5 5000000000", "a v=5 5000000000"};
    const char *m4[] = {"a v=9 13000000000", "b v=9 13000000000", "c v=9 13000000000"};
    message(f, 1, m1, 2);
    message(f, 2, m2, 2);
    message(f, 3, m3, 2);
    f->id.vm[0] = 'w'; /* another agent sending the same series */
    const char *other[] = {"a v=7 7000000000"};
    message(f, 4, other, 1);
    f->id.vm[0] = 'v';
    message(f, 5, m4, 3);
    assert_int_equal(f->c.stats.agg_windows, 3);
    aggregate_flush(f->a); /* w1's window, and the three opened by message 5 */
    buf_cstr(&f->sink.lines);
    assert_non_null(strstr(f->sink.lines.data, "a,mci=m1,ns=ns1,vm=v1 v=3 0\n"));
    assert_non_null(strstr(f->sink.lines.data, "b,mci=m1,ns=ns1,vm=v1 v=15 0\n"));
    assert_non_null(strstr(f->sink.lines.data, "c,mci=m1,ns=ns1,vm=v1 v=5 0\n"));
    assert_non_null(strstr(f->sink.lines.data, "a,mci=m1,ns=ns1,vm=w1 v=7 0\n"));
    assert_int_equal(f->c.stats.agg_windows, 7);
    teardown(f);
}

/* Emitted floats read back as exactly the double computed (InfluxDB parses them the same). */
static void test_float_output(void **state)
{
    struct dsf_buf b = {0};
    srand(7);
    for (int i = 0; i < 300000; i++) {
        union lp_value v;
        if (i % 3 == 0) {
            uint64_t bits = ((uint64_t)rand() << 42) ^ ((uint64_t)rand() << 21) ^ (uint64_t)rand();
            memcpy(&v.f, &bits, sizeof(v.f));
            if (!isfinite(v.f))
                continue;
        } else {
            v.f = (double)rand() / RAND_MAX * pow(10, rand() % 30 - 12) * (i % 2 ? -1 : 1);
        }
        buf_reset(&b);
        agg_put_value(&b, DSF_V_FLOAT, v);
        double back = strtod(buf_cstr(&b), NULL);
        if (memcmp(&back, &v.f, sizeof(back)) != 0)
            fail_msg("%.17g was written as %s", v.f, b.data);
    }
    const double plain[] = {12.5, 0.1, -0.0, 2, 1e-7};
    const char *want[] = {"12.5", "0.1", "-0", "2", "0.0000001"};
    for (size_t i = 0; i < 5; i++) {
        buf_reset(&b);
        agg_put_value(&b, DSF_V_FLOAT, (union lp_value){.f = plain[i]});
        assert_string_equal(buf_cstr(&b), want[i]);
    }
    buf_free(&b);
}

/* The bucket of the fixture's agent, with bucket tracking on (as with MQTT buckets). */
static uint32_t track_buckets(struct fixture *f)
{
    f->c.follow.owned = calloc((size_t)f->c.cfg.mqtt.buckets_total, 1);
    assert_non_null(f->c.follow.owned);
    return dsf_bucket("ns1/m1/v1", 9, (uint32_t)f->c.cfg.mqtt.buckets_total);
}

static void untrack_buckets(struct fixture *f)
{
    free(f->c.follow.owned);
    f->c.follow.owned = NULL;
}

/* A bucket moving away: its open windows are dropped, their messages released unacked for
 * the agents to resend to the new owner, and counted; nothing of them reaches the store. */
static void test_bucket_lost(void **state)
{
    struct fixture *f = setup("cpu window=10s v=count");
    uint32_t b = track_buckets(f);
    const char *m1[] = {"cpu v=1 1000000000"}, *m2[] = {"cpu v=2 2000000000"};
    message(f, 1, m1, 1);
    message(f, 2, m2, 1);
    aggregate_bucket_lost(f->a, b + 1); /* another bucket: nothing happens */
    assert_int_equal(f->c.stats.agg_handed_over, 0);
    aggregate_bucket_lost(f->a, b);
    assert_int_equal(f->c.stats.agg_handed_over, 2);
    assert_int_equal(dropped[1] + dropped[2], 2);
    aggregate_flush(f->a);
    assert_int_equal(f->sink.lines.len, 0);
    assert_int_equal(acked[1] + acked[2], 0);
    untrack_buckets(f);
    teardown(f);
}

/* A bucket gained: a window that started before the gain waits out aggregate.handover even
 * when the stream passed it, so a sample the previous owner released still folds in; the
 * windows of other buckets go as usual. */
static void test_bucket_gained(void **state)
{
    struct fixture *f = setup("cpu window=10s v=count");
    uint32_t b = track_buckets(f);
    aggregate_bucket_gained(f->a, b);
    const char *m1[] = {"cpu v=1 1000000000"}, *m2[] = {"cpu v=2 13000000000"};
    const char *resent[] = {"cpu v=3 5000000000"}, *m4[] = {"cpu v=4 14000000000"};
    message(f, 1, m1, 1);
    message(f, 2, m2, 1); /* passes [0, 10 s) + grace: held */
    assert_int_equal(f->sink.lines.len, 0);
    message(f, 3, resent, 1);
    assert_int_equal(f->c.stats.agg_late, 0);
    f->a->gain[b].until_ms = 0; /* the hand-over time is over */
    message(f, 4, m4, 1);
    assert_string_equal(buf_cstr(&f->sink.lines), "cpu,mci=m1,ns=ns1,vm=v1 v=2i 0\n");
    store_all(&f->sink);
    assert_int_equal(acked[1] + acked[3], 2);
    untrack_buckets(f);
    teardown(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rules),
        cmocka_unit_test(test_windows),
        cmocka_unit_test(test_late),
        cmocka_unit_test(test_out_of_order_within_grace),
        cmocka_unit_test(test_duplicate),
        cmocka_unit_test(test_new_fields),
        cmocka_unit_test(test_float_output),
        cmocka_unit_test(test_types_and_conflicts),
        cmocka_unit_test(test_route_follows_changes),
        cmocka_unit_test(test_bucket_lost),
        cmocka_unit_test(test_bucket_gained),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
