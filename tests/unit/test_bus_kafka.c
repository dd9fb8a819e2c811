/*
 * The Kafka bus against librdkafka's mock cluster (a real Kafka-protocol broker on loopback,
 * started in this process): a producer bus publishes 100 keyed messages with headers and
 * gets 100 confirmations; a consumer bus in group dsf-collectors reads them back in order
 * with headers parsed, commits, and the group's committed offset is checked. Also: topics
 * round-trip in MQTT form, recovery from a fatal producer error, unreachable brokers, and
 * option errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/bucket.h"
#include "common/bus.h"
#include "common/bus_config.h"
#include "common/loop.h"

#include <event2/event.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 100
#define PARTITIONS 64
#define TOPIC "dsf/m/5/ns1/mci1/vm1"
#define KEY "ns1/mci1/vm1"

static rd_kafka_t *mock_rk;
static rd_kafka_mock_cluster_t *mock;
static char bootstrap[256];

struct st {
    struct event_base *base;
    struct dsf_bus *bus;
    int connects;
    int ok, failed;
    int tokens[N + 1];
    int received, committed;
    char error[512]; /* the first thing that went wrong inside a callback */
};

#define FAILF(s, ...)                                                                              \
    do {                                                                                           \
        if (!(s)->error[0])                                                                        \
            snprintf((s)->error, sizeof((s)->error), __VA_ARGS__);                                 \
    } while (0)

static void on_connect(void *arg)
{
    ((struct st *)arg)->connects++;
}

static void on_delivered(void *arg, uint64_t token, int ok)
{
    struct st *s = arg;
    if (token < 1 || token > N) {
        FAILF(s, "on_delivered with unknown token %" PRIu64, token);
        return;
    }
    s->tokens[token]++;
    if (ok)
        s->ok++;
    else
        s->failed++;
}

static void on_message(void *arg, const struct dsf_bus_message *m)
{
    struct st *s = arg;
    uint64_t want_seq = (uint64_t)s->received + 1;
    uint32_t bucket = dsf_bucket(KEY, strlen(KEY), PARTITIONS);
    char topic[64], payload[64];
    snprintf(topic, sizeof(topic), "dsf/m/%" PRIu32 "/%s", bucket, KEY);
    snprintf(payload, sizeof(payload), "cpu,vm=vm1 usage_idle=%" PRIu64 " %" PRIu64, want_seq,
             want_seq * 1000000000u);
    s->received++;
    if (!m->has_seq || m->seq != want_seq)
        FAILF(s, "message %d: seq %" PRIu64 " (has_seq %d), want %" PRIu64, s->received, m->seq,
              m->has_seq, want_seq);
    else if (!m->boot || strcmp(m->boot, "b1") != 0)
        FAILF(s, "message %d: boot '%s', want b1", s->received, m->boot ? m->boot : "(none)");
    else if (!m->fmt || strcmp(m->fmt, "lp") != 0)
        FAILF(s, "message %d: fmt '%s', want lp", s->received, m->fmt ? m->fmt : "(none)");
    else if (!m->key || m->key_len != strlen(KEY) || strcmp(m->key, KEY) != 0)
        FAILF(s, "message %d: key '%s', want %s", s->received, m->key ? m->key : "(none)", KEY);
    else if (m->partition != (int32_t)bucket)
        FAILF(s, "message %d: partition %" PRId32 ", want bucket %" PRIu32, s->received,
              m->partition, bucket);
    else if (m->offset != (int64_t)want_seq - 1)
        FAILF(s, "message %d: offset %" PRId64 ", want %" PRIu64, s->received, m->offset,
              want_seq - 1);
    else if (strcmp(m->topic, topic) != 0)
        FAILF(s, "message %d: topic %s, want %s", s->received, m->topic, topic);
    else if (m->len != strlen(payload) || memcmp(m->payload, payload, m->len) != 0)
        FAILF(s, "message %d: payload '%.*s', want '%s'", s->received, (int)m->len,
              (const char *)m->payload, payload);
    if (dsf_bus_commit(s->bus, m->topic, m->partition, m->offset) == 0)
        s->committed++;
    else
        FAILF(s, "message %d: commit failed", s->received);
}

struct waiter {
    struct st *s;
    int (*done)(const struct st *);
    int64_t deadline;
};

static void check(evutil_socket_t fd, short what, void *arg)
{
    struct waiter *w = arg;
    if (w->done(w->s) || w->s->error[0] || dsf_mono_ms() > w->deadline)
        event_base_loopbreak(w->s->base);
}

/* Runs the loop until done(s), an error, or timeout_ms; returns done(s). */
static int run_until(struct st *s, int (*done)(const struct st *), int timeout_ms)
{
    struct waiter w = {s, done, dsf_mono_ms() + timeout_ms};
    struct event *ev = event_new(s->base, -1, EV_PERSIST, check, &w);
    struct timeval tv = {0, 10000};
    event_add(ev, &tv);
    event_base_dispatch(s->base);
    event_free(ev);
    return done(s);
}

static int all_delivered(const struct st *s)
{
    return s->ok + s->failed >= N;
}

static int all_delivered_1(const struct st *s)
{
    return s->ok + s->failed >= 1;
}

static int is_connected(const struct st *s)
{
    return s->connects > 0;
}

static int all_received(const struct st *s)
{
    return s->received >= N;
}

static int group_setup(void **state)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "4", err, sizeof(err));
    mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (!mock_rk) {
        fprintf(stderr, "cannot create the mock cluster's handle: %s\n", err);
        return -1;
    }
    mock = rd_kafka_mock_cluster_new(mock_rk, 1);
    if (!mock)
        return -1;
    snprintf(bootstrap, sizeof(bootstrap), "%s", rd_kafka_mock_cluster_bootstraps(mock));
    if (rd_kafka_mock_topic_create(mock, "dsf.metrics", PARTITIONS, 1))
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    if (mock)
        rd_kafka_mock_cluster_destroy(mock);
    if (mock_rk)
        rd_kafka_destroy(mock_rk);
    rd_kafka_wait_destroyed(5000);
    return 0;
}

static struct dsf_bus *new_bus(struct st *s, const char *group)
{
    struct dsf_bus_options o = {.kind = DSF_BUS_KAFKA,
                                .brokers = bootstrap,
                                .client_id = group ? "test-collector" : "test-agent",
                                .linger_ms = 5,
                                .group_id = group};
    struct dsf_bus_callbacks cb = {
        .on_connect = on_connect, .on_delivered = on_delivered, .on_message = on_message, .arg = s};
    char err[512] = "";
    struct dsf_bus *bus = dsf_bus_new(s->base, &o, &cb, err, sizeof(err));
    if (!bus)
        fail_msg("dsf_bus_new: %s", err);
    return bus;
}

/* Runs first: the consumer test reads what this one wrote. */
static void test_produce(void **state)
{
    struct st s = {0};
    s.base = dsf_loop_new();
    assert_non_null(s.base);
    s.bus = new_bus(&s, NULL);

    for (uint64_t i = 1; i <= N; i++) {
        char payload[64];
        snprintf(payload, sizeof(payload), "cpu,vm=vm1 usage_idle=%" PRIu64 " %" PRIu64, i,
                 i * 1000000000u);
        struct dsf_bus_message m = {.topic = TOPIC,
                                    .payload = payload,
                                    .len = strlen(payload),
                                    .key = KEY,
                                    .key_len = strlen(KEY),
                                    .seq = i,
                                    .has_seq = 1,
                                    .boot = "b1",
                                    .fmt = "lp"};
        assert_int_equal(dsf_bus_publish(s.bus, &m, 1, 0, i), 0);
    }
    int done = run_until(&s, all_delivered, 30000);
    if (s.error[0])
        fail_msg("%s", s.error);
    if (!done)
        fail_msg("only %d of %d deliveries reported within 30 s", s.ok + s.failed, N);
    assert_int_equal(s.failed, 0);
    assert_int_equal(s.ok, N);
    for (int i = 1; i <= N; i++)
        if (s.tokens[i] != 1)
            fail_msg("token %d reported %d times", i, s.tokens[i]);
    assert_true(run_until(&s, is_connected, 10000));
    assert_true(dsf_bus_connected(s.bus));

    /* No subscriptions without a group, no topic for an unmapped MQTT filter. */
    assert_int_equal(dsf_bus_subscribe(s.bus, "dsf/m/+/#", 1), -1);
    struct dsf_bus_message bad = {.topic = "not/a/kafka/topic", .payload = "x", .len = 1};
    assert_int_equal(dsf_bus_publish(s.bus, &bad, 1, 0, 1), -1);

    dsf_bus_free(s.bus);
    event_base_free(s.base);
}

static void test_consume_and_commit(void **state)
{
    struct st s = {0};
    s.base = dsf_loop_new();
    assert_non_null(s.base);
    s.bus = new_bus(&s, "dsf-collectors");
    assert_int_equal(dsf_bus_subscribe(s.bus, "dsf/m/+/+/+/+", 1), 0);
    assert_int_equal(dsf_bus_subscribe(s.bus, "dsf/m/5/#", 1), 0); /* same topic: no change */

    int done = run_until(&s, all_received, 60000);
    if (s.error[0])
        fail_msg("%s", s.error);
    if (!done)
        fail_msg("received %d of %d messages within 60 s", s.received, N);
    assert_int_equal(s.committed, N);
    assert_true(s.connects > 0);
    dsf_bus_free(s.bus); /* leaves the group after the outstanding commits */
    event_base_free(s.base);

    /* The group's committed position on the bucket's partition is the next offset to read. */
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof(err)),
                     RD_KAFKA_CONF_OK);
    assert_int_equal(rd_kafka_conf_set(conf, "group.id", "dsf-collectors", err, sizeof(err)),
                     RD_KAFKA_CONF_OK);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    assert_non_null(rk);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    int32_t bucket = (int32_t)dsf_bucket(KEY, strlen(KEY), PARTITIONS);
    rd_kafka_topic_partition_list_add(l, "dsf.metrics", bucket);
    assert_int_equal(rd_kafka_committed(rk, l, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(l->elems[0].err, RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(l->elems[0].offset, N);
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
}

/* A broker nobody listens on: the bus still accepts publishes (librdkafka queues them) and
 * dsf_bus_free() reports each one undelivered instead of dropping it silently. */
static void test_unreachable(void **state)
{
    struct st s = {0};
    s.base = dsf_loop_new();
    assert_non_null(s.base);
    struct dsf_bus_options o = {.kind = DSF_BUS_KAFKA, .brokers = "127.0.0.1:1"};
    struct dsf_bus_callbacks cb = {
        .on_connect = on_connect, .on_delivered = on_delivered, .arg = &s};
    char err[512] = "";
    s.bus = dsf_bus_new(s.base, &o, &cb, err, sizeof(err));
    assert_non_null(s.bus);
    struct dsf_bus_message m = {.topic = TOPIC, .payload = "x", .len = 1, .key = KEY};
    assert_int_equal(dsf_bus_publish(s.bus, &m, 1, 0, 7), 0);
    assert_false(dsf_bus_connected(s.bus));
    dsf_bus_free(s.bus);
    assert_int_equal(s.tokens[7], 1);
    assert_int_equal(s.failed, 1);
    assert_int_equal(s.connects, 0);
    event_base_free(s.base);
}

struct rt {
    struct event_base *base;
    int delivered, alarm_ok, metric_ok;
    char error[512];
};

static void rt_delivered(void *arg, uint64_t token, int ok)
{
    struct rt *r = arg;
    r->delivered++;
    if (!ok)
        FAILF(r, "roundtrip publish %" PRIu64 " not delivered", token);
}

static void rt_message(void *arg, const struct dsf_bus_message *m)
{
    struct rt *r = arg;
    if (m->key && strcmp(m->key, "ns2/mci2/vm9") == 0) {
        uint32_t b = dsf_bucket("ns2/mci2/vm9", 12, PARTITIONS);
        char want[64];
        snprintf(want, sizeof(want), "dsf/m/%" PRIu32 "/ns2/mci2/vm9", b);
        if (strcmp(m->topic, want) != 0 || m->partition != (int32_t)b)
            FAILF(r, "unkeyed metric arrived as %s [%" PRId32 "], want %s", m->topic, m->partition,
                  want);
        r->metric_ok = 1;
    } else if (strncmp(m->topic, "dsf/alarm/", 10) == 0 || strcmp(m->topic, "dsf.alarms") == 0) {
        if (strcmp(m->topic, "dsf/alarm/ns2/mci2/cpu_high") != 0 || m->has_seq || m->boot)
            FAILF(r, "alarm arrived as %s (has_seq %d)", m->topic, m->has_seq);
        r->alarm_ok = 1;
    }
}

/* Runs the loop until done(r), an error, or timeout_ms. */
static void rt_run(struct rt *r, int (*done)(const struct rt *), int timeout_ms)
{
    int64_t deadline = dsf_mono_ms() + timeout_ms;
    while (!done(r) && !r->error[0] && dsf_mono_ms() < deadline)
        event_base_loop(r->base, EVLOOP_ONCE);
    if (r->error[0])
        fail_msg("%s", r->error);
}

static int rt_published(const struct rt *r)
{
    return r->delivered >= 2;
}

static int rt_received(const struct rt *r)
{
    return r->alarm_ok && r->metric_ok;
}

/* Without a key, metrics are keyed ns/mci/vm (their bucket) and other topics by their MQTT
 * topic, which the consumer gets back as the message topic. */
static void test_topic_roundtrip(void **state)
{
    struct rt r = {0};
    r.base = dsf_loop_new();
    assert_non_null(r.base);
    struct dsf_bus_callbacks cb = {
        .on_delivered = rt_delivered, .on_message = rt_message, .arg = &r};
    struct dsf_bus_options o = {
        .kind = DSF_BUS_KAFKA, .brokers = bootstrap, .group_id = "dsf-roundtrip"};
    char err[512] = "";
    /* A consumer bus that also publishes (through a producer made on first use). */
    struct dsf_bus *bus = dsf_bus_new(r.base, &o, &cb, err, sizeof(err));
    if (!bus)
        fail_msg("dsf_bus_new: %s", err);
    struct dsf_bus_message alarm = {
        .topic = "dsf/alarm/ns2/mci2/cpu_high", .payload = "{}", .len = 2};
    struct dsf_bus_message metric = {.topic = "dsf/m/9/ns2/mci2/vm9", .payload = "m", .len = 1};
    assert_int_equal(dsf_bus_publish(bus, &alarm, 1, 0, 1), 0);
    assert_int_equal(dsf_bus_publish(bus, &metric, 1, 0, 2), 0);
    rt_run(&r, rt_published, 30000);
    assert_int_equal(r.delivered, 2);
    assert_int_equal(dsf_bus_subscribe(bus, "dsf/alarm/#", 1), 0);
    assert_int_equal(dsf_bus_subscribe(bus, "dsf/m/#", 1), 0);
    rt_run(&r, rt_received, 60000);
    assert_true(r.alarm_ok);
    assert_true(r.metric_ok);
    assert_int_equal(dsf_bus_unsubscribe(bus, "dsf/alarm/#"), 0);
    dsf_bus_free(bus);
    event_base_free(r.base);
}

static int ten_delivered(const struct st *s)
{
    return s->ok + s->failed >= 10;
}

static int twenty_delivered(const struct st *s)
{
    return s->ok + s->failed >= 20;
}

static int never(const struct st *s)
{
    return 0;
}

/* A Produce error librdkafka treats as fatal for an idempotent producer: the bus reports the
 * affected messages undelivered, recreates its producer, and later publishes go through. */
static void test_fatal_recovery(void **state)
{
    struct st s = {0};
    s.base = dsf_loop_new();
    assert_non_null(s.base);
    s.bus = new_bus(&s, NULL);
    struct dsf_bus_message m = {.topic = "dsf/m/1/ns3/mci3/vm3", .payload = "x", .len = 1};
    assert_int_equal(dsf_bus_publish(s.bus, &m, 1, 0, 1), 0);
    assert_true(run_until(&s, all_delivered_1, 10000));
    rd_kafka_mock_push_request_errors(mock, 0 /* Produce */, 1,
                                      RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
    for (uint64_t i = 2; i <= 10; i++)
        assert_int_equal(dsf_bus_publish(s.bus, &m, 1, 0, i), 0);
    assert_true(run_until(&s, ten_delivered, 20000));
    assert_int_equal(s.ok, 1);
    assert_int_equal(s.failed, 9);
    /* Publishes made while the producer is being recreated may be refused (-1); after that
     * they go through the new producer. */
    run_until(&s, never, 200);
    for (uint64_t i = 11; i <= 20; i++)
        assert_int_equal(dsf_bus_publish(s.bus, &m, 1, 0, i), 0);
    assert_true(run_until(&s, twenty_delivered, 20000));
    assert_int_equal(s.ok, 11);
    assert_int_equal(s.failed, 9);
    for (int i = 1; i <= 20; i++)
        assert_int_equal(s.tokens[i], 1);
    if (s.error[0])
        fail_msg("%s", s.error);
    dsf_bus_free(s.bus);
    event_base_free(s.base);
}

/* Leaving a group whose brokers are gone does not hang. */
static void test_consumer_unreachable(void **state)
{
    struct event_base *base = dsf_loop_new();
    struct dsf_bus_callbacks cb = {0};
    struct dsf_bus_options o = {
        .kind = DSF_BUS_KAFKA, .brokers = "127.0.0.1:1", .group_id = "dsf-collectors"};
    char err[512] = "";
    struct dsf_bus *bus = dsf_bus_new(base, &o, &cb, err, sizeof(err));
    assert_non_null(bus);
    assert_int_equal(dsf_bus_subscribe(bus, "dsf/m/+/#", 1), 0);
    int64_t t0 = dsf_mono_ms();
    while (dsf_mono_ms() - t0 < 500)
        event_base_loop(base, EVLOOP_NONBLOCK);
    t0 = dsf_mono_ms();
    dsf_bus_free(bus);
    int64_t took = dsf_mono_ms() - t0;
    if (took > 10000)
        fail_msg("dsf_bus_free took %" PRId64 " ms", took);
    event_base_free(base);
}

static void test_bad_options(void **state)
{
    struct event_base *base = dsf_loop_new();
    struct dsf_bus_callbacks cb = {0};
    char err[512] = "";
    struct dsf_bus_options o = {.kind = DSF_BUS_KAFKA, .brokers = bootstrap, .compression = "rar"};
    assert_null(dsf_bus_new(base, &o, &cb, err, sizeof(err)));
    assert_non_null(strstr(err, "compression.type"));
    struct dsf_bus_options none = {.kind = DSF_BUS_KAFKA};
    assert_null(dsf_bus_new(base, &none, &cb, err, sizeof(err)));
    /* TLS files are checked up front, and the error names the brokers. */
    struct dsf_bus_options tls = {.kind = DSF_BUS_KAFKA,
                                  .brokers = "kafka.invalid:9093",
                                  .tls_ca = "/nonexistent/ca.pem",
                                  .tls_insecure = 1};
    assert_null(dsf_bus_new(base, &tls, &cb, err, sizeof(err)));
    assert_non_null(strstr(err, "kafka.invalid:9093"));
    assert_non_null(strstr(err, "ssl.ca.location"));
    /* SASL PLAIN over TLS with credentials is a valid configuration. */
    struct dsf_bus_options sasl = {.kind = DSF_BUS_KAFKA,
                                   .brokers = "SASL_SSL://kafka.invalid:9093",
                                   .username = "agent",
                                   .password = "secret",
                                   .tls_insecure = 1,
                                   .compression = "zstd",
                                   .linger_ms = 20,
                                   .max_inflight = 1000};
    struct dsf_bus *bus = dsf_bus_new(base, &sasl, &cb, err, sizeof(err));
    if (!bus)
        fail_msg("SASL_SSL bus: %s", err);
    dsf_bus_free(bus);
    /* SCRAM (OpenSSL's, no Cyrus SASL) is one setting away; an unknown mechanism is named. */
    sasl.sasl_mechanism = "SCRAM-SHA-512";
    bus = dsf_bus_new(base, &sasl, &cb, err, sizeof(err));
    if (!bus)
        fail_msg("SCRAM-SHA-512 bus: %s", err);
    dsf_bus_free(bus);
    sasl.sasl_mechanism = "GSSAPI-ish";
    assert_null(dsf_bus_new(base, &sasl, &cb, err, sizeof(err)));
    assert_non_null(strstr(err, "kafka.sasl_mechanism 'GSSAPI-ish'"));
    event_base_free(base);
}

/* The configured connection gives each kind its own credentials, TLS files and TLS
 * verification, loaded through the shared row sets as a daemon loads them. */
static void test_connection_mapping(void **state)
{
    struct {
        struct dsf_mqtt_config mqtt;
        struct dsf_kafka_config kafka;
    } cfg = {0};
    struct dsf_cfg_section secs[8] = {{0}};
    dsf_bus_consumer_sections(secs, &cfg.mqtt, &cfg.kafka, NULL, NULL);
    const char *json = "{\"mqtt\": {\"url\": \"tcp://broker.invalid:1883\", \"username\": \"mu\","
                       " \"password\": \"mp\", \"tls_ca\": \"m-ca.pem\", \"tls_cert\": \"m.crt\","
                       " \"tls_key\": \"m.key\", \"tls_insecure\": true,"
                       " \"session_expiry\": \"90s\"},"
                       " \"kafka\": {\"brokers\": \"kafka.invalid:9093\", \"username\": \"ku\","
                       " \"password\": \"kp\", \"tls_cert\": \"/nonexistent/k.crt\","
                       " \"tls_key\": \"k.key\"}}";
    char cerr[DSF_CFG_ERRLEN];
    if (dsf_cfg_defaults(secs, cerr, sizeof(cerr)) ||
        dsf_cfg_load_json(secs, json, strlen(json), "test", cerr, sizeof(cerr)))
        fail_msg("%s", cerr);
    struct dsf_bus_options k = {0}, m = {0};
    dsf_bus_connection(&k, &cfg.mqtt, &cfg.kafka, 1);
    dsf_bus_connection(&m, &cfg.mqtt, &cfg.kafka, 0);
    /* mqtt.tls_insecure is the broker's alone: Kafka verifies unless kafka.tls_insecure. */
    assert_int_equal(k.tls_insecure, 0);
    assert_int_equal(m.session_expiry_s, 90);
    assert_int_equal(m.clean_start, 0);
    assert_int_equal(
        dsf_cfg_set_value(secs, "kafka.tls_insecure", "true", "test", cerr, sizeof(cerr)), 0);
    assert_int_equal(
        dsf_cfg_set_value(secs, "mqtt.session_expiry", "0s", "test", cerr, sizeof(cerr)), 0);
    struct dsf_bus_options k2 = {0}, m2 = {0};
    dsf_bus_connection(&k2, &cfg.mqtt, &cfg.kafka, 1);
    dsf_bus_connection(&m2, &cfg.mqtt, &cfg.kafka, 0);
    assert_int_equal(k2.tls_insecure, 1);
    assert_int_equal(m2.clean_start, 1);
    assert_int_equal(k.kind, DSF_BUS_KAFKA);
    assert_string_equal(k.brokers, "kafka.invalid:9093");
    assert_string_equal(k.username, "ku");
    assert_string_equal(k.password, "kp");
    assert_null(k.tls_ca); /* empty: not set */
    assert_string_equal(k.tls_cert, "/nonexistent/k.crt");
    assert_string_equal(k.tls_key, "k.key");
    assert_int_equal(m.kind, DSF_BUS_MQTT);
    assert_string_equal(m.brokers, "tcp://broker.invalid:1883");
    assert_string_equal(m.username, "mu");
    assert_string_equal(m.tls_ca, "m-ca.pem");
    assert_string_equal(m.tls_cert, "m.crt");
    assert_string_equal(m.tls_key, "m.key");
    assert_int_equal(m.tls_insecure, 1);
    /* The Kafka client certificate reaches librdkafka, which refuses the missing file. */
    struct event_base *base = dsf_loop_new();
    struct dsf_bus_callbacks cb = {0};
    char err[512] = "";
    assert_null(dsf_bus_new(base, &k, &cb, err, sizeof(err)));
    if (!strstr(err, "certificate"))
        fail_msg("the error does not name the client certificate: %s", err);
    event_base_free(base);
    dsf_cfg_free(secs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_produce),         cmocka_unit_test(test_consume_and_commit),
        cmocka_unit_test(test_topic_roundtrip), cmocka_unit_test(test_fatal_recovery),
        cmocka_unit_test(test_unreachable),     cmocka_unit_test(test_consumer_unreachable),
        cmocka_unit_test(test_bad_options),     cmocka_unit_test(test_connection_mapping),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
