/* common/topic: what is built parses back, other shapes are refused, Kafka mapping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/topic.h"

static void metrics_roundtrip(void **state)
{
    char t[256];
    struct dsf_identity id;
    uint32_t bucket = 0;
    assert_true(dsf_topic_metrics(t, sizeof(t), 35, "ns1", "web", "vm-1") > 0);
    assert_string_equal(t, "dsf/m/35/ns1/web/vm-1");
    assert_int_equal(dsf_topic_parse_metrics(t, &id, &bucket), 0);
    assert_int_equal(bucket, 35);
    assert_string_equal(id.ns, "ns1");
    assert_string_equal(id.mci, "web");
    assert_string_equal(id.vm, "vm-1");
    assert_int_equal(dsf_topic_family(t), DSF_TOPIC_METRICS);
    assert_string_equal(dsf_topic_kafka(t), "dsf.metrics");
    char k[256];
    assert_true(dsf_topic_metrics_key(k, sizeof(k), 35, "ns1/web/vm-1") > 0);
    assert_string_equal(k, t);
    assert_true(dsf_topic_from_kafka_metrics(k, sizeof(k), 35, "ns1/web/vm-1") > 0);
    assert_string_equal(k, t);
}

static void metrics_refused(void **state)
{
    struct dsf_identity id;
    const char *bad[] = {
        "dsf/m/x/ns/m/v",
        "dsf/m//ns/m/v",
        "dsf/m/1/ns/m",
        "dsf/m/1/ns/m/v/extra",
        "dsf/m/1/ns//v",
        "dsf/a/ns/m/v/status",
        "dsf/m/1234567890123456/ns/m/v",
        ("dsf/m/1/ns/m/v0123456789012345678901234567890123456789012345678901234567890123456789"),
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (dsf_topic_parse_metrics(bad[i], &id, NULL) == 0)
            fail_msg("accepted %s", bad[i]);
}

static void agent_topics(void **state)
{
    char t[256];
    struct dsf_identity id;
    assert_true(dsf_topic_agent(t, sizeof(t), "ns1", "web", "vm1", "status") > 0);
    assert_string_equal(t, "dsf/a/ns1/web/vm1/status");
    assert_int_equal(dsf_topic_parse_agent(t, "status", &id), 0);
    assert_string_equal(id.vm, "vm1");
    assert_int_equal(dsf_topic_parse_agent(t, "ack", &id), -1);
    assert_int_equal(dsf_topic_parse_agent("dsf/a/ns1/web/status", "status", &id), -1);
    assert_true(dsf_topic_agent_key(t, sizeof(t), "ns1/web/vm1", "ack") > 0);
    assert_string_equal(t, "dsf/a/ns1/web/vm1/ack");
    assert_int_equal(dsf_topic_family(t), DSF_TOPIC_AGENT);
    assert_string_equal(dsf_topic_kafka(t), "dsf.agents");
}

static void agent_reply_topics(void **state)
{
    const char *key = "ns1/web/vm1";
    assert_true(dsf_topic_is_agent_reply("dsf/a/ns1/web/vm1/reply", key));
    assert_true(dsf_topic_is_agent_reply("dsf/a/ns1/web/vm1/reply/console/42", key));
    const char *bad[] = {
        "dsf/a/ns1/web/vm1/reply/",     "dsf/a/ns1/web/vm1/replyx",
        "dsf/a/ns1/web/vm1/reply/+",    "dsf/a/ns1/web/vm1/reply/a/#",
        "dsf/a/ns1/web/vm1/status",     "dsf/a/ns1/web/vm2/reply",
        "dsf/a/ns1/web/vm1x/reply",     "dsf/m/0/ns1/web/vm1",
        "dsf/alarm/ns1/web/cpu_hot",    "reply/me",
        "dsf/a/ns1/web/vm1/reply/\xff", "",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (dsf_topic_is_agent_reply(bad[i], key))
            fail_msg("accepted %s", bad[i]);
}

static void other_families(void **state)
{
    char t[64];
    assert_true(dsf_topic_collector(t, sizeof(t), "c1", "hb") > 0);
    assert_string_equal(t, "dsf/c/c1/hb");
    assert_int_equal(dsf_topic_family(t), DSF_TOPIC_COLLECTOR);
    assert_true(dsf_topic_alarm(t, sizeof(t), "ns1", "web", "cpu_hot") > 0);
    assert_string_equal(t, "dsf/alarm/ns1/web/cpu_hot");
    assert_string_equal(dsf_topic_kafka(t), "dsf.alarms");
    assert_true(dsf_topic_bucket(t, sizeof(t), 7) > 0);
    assert_string_equal(t, "dsf/m/7/#");
    assert_int_equal(dsf_topic_family(dsf_topic_dlq), DSF_TOPIC_DLQ);
    assert_string_equal(dsf_topic_kafka(dsf_topic_dlq), "dsf.dlq");
    assert_int_equal(dsf_topic_family("other/topic"), DSF_TOPIC_OTHER);
    assert_null(dsf_topic_kafka("other/topic"));
    /* Too long for the buffer: refused, not cut. */
    assert_int_equal(dsf_topic_alarm(t, 12, "ns1", "web", "cpu_hot"), -1);
}

/* The balanced members' families: the role is the family, the id and leaf one level each. */
static void member_topics(void **state)
{
    char t[64], id[64], leaf[64];
    enum dsf_topic_family f = DSF_TOPIC_OTHER;
    assert_true(dsf_topic_engine(t, sizeof(t), "a1", "hb") > 0);
    assert_string_equal(t, "dsf/e/a1/hb");
    assert_int_equal(dsf_topic_family(t), DSF_TOPIC_ENGINE);
    assert_string_equal(dsf_topic_kafka(t), "dsf.engines");
    assert_int_equal(dsf_topic_parse_member(t, &f, id, leaf), 0);
    assert_int_equal(f, DSF_TOPIC_ENGINE);
    assert_string_equal(id, "a1");
    assert_string_equal(leaf, "hb");
    assert_int_equal(dsf_topic_parse_member("dsf/c/c1/assign", &f, id, leaf), 0);
    assert_int_equal(f, DSF_TOPIC_COLLECTOR);
    assert_string_equal(id, "c1");
    assert_string_equal(leaf, "assign");
    const char *bad[] = {"dsf/e/a1",         "dsf/e//hb",     "dsf/e/a1/hb/x", "dsf/e/a1/",
                         "dsf/alarm/a1/hb",  "dsf/m/1/a/b/c", "dsf/e",         "dsf/x/a1/hb",
                         "dsf/c/a1/hb/more", "dsf/e/a1//hb"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (dsf_topic_parse_member(bad[i], &f, id, leaf) == 0)
            fail_msg("accepted %s", bad[i]);
}

/* A tenant pool's subscriptions and what its prefixes own. */
static void tenant_prefixes(void **state)
{
    (void)state;
    char t[128];
    assert_true(dsf_topic_bucket_prefix(t, sizeof(t), 7, "ns1/mciA") > 0);
    assert_string_equal(t, "dsf/m/7/ns1/mciA/#");
    assert_true(dsf_topic_bucket_prefix(t, sizeof(t), 7, NULL) > 0);
    assert_string_equal(t, "dsf/m/7/#");
    assert_int_equal(dsf_topic_bucket_prefix(t, 10, 7, "ns1"), -1);
    assert_true(dsf_topic_prefix_ok("ns1", 3));
    assert_true(dsf_topic_prefix_ok("ns1/mciA", 8));
    const char *bad[] = {"", "/", "ns1/", "/m", "a/b/c", "n+s", "ns#", "a b"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
        assert_false(dsf_topic_prefix_ok(bad[i], strlen(bad[i])));
    struct dsf_identity id = {"ns1", "mciA", "vm1"};
    assert_true(dsf_topic_prefix_match("ns1", &id));
    assert_true(dsf_topic_prefix_match("ns1/mciA", &id));
    assert_false(dsf_topic_prefix_match("ns1/mciB", &id));
    assert_false(dsf_topic_prefix_match("ns", &id));
    assert_false(dsf_topic_prefix_match("ns10", &id));
    assert_false(dsf_topic_prefix_match("ns1/mciAB", &id));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(metrics_roundtrip), cmocka_unit_test(metrics_refused),
        cmocka_unit_test(agent_topics),      cmocka_unit_test(agent_reply_topics),
        cmocka_unit_test(other_families),    cmocka_unit_test(member_topics),
        cmocka_unit_test(tenant_prefixes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
