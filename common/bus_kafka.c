/*
 * The Kafka backend of the bus (librdkafka).
 *
 * Producer: idempotent, acks=all. A message keyed "ns/mci/vm" goes to partition
 * fnv1a32(key) % partitions (dsf_bucket(); librdkafka's own "fnv1a" partitioner differs: it
 * takes the absolute value of the hash as a signed number), so with dsf.metrics created with
 * B partitions the partition is the bucket of docs/architecture.md. Without a key, a
 * dsf/m/{bucket}/{ns}/{mci}/{vm} message is keyed "ns/mci/vm" and other mapped topics are
 * keyed by their MQTT topic; messages on a plain Kafka topic without a key go to a random
 * partition. Headers "seq" (decimal), "boot" and "fmt" carry the MQTT user properties. Every
 * publish that returned 0 gets exactly one on_delivered: ok=1 once all in-sync replicas have it,
 * ok=0 when librdkafka gives up (message.timeout.ms, a fatal producer error, or dsf_bus_free()
 * purging what it could not flush in 5 s). on_delivered never runs inside
 * dsf_bus_publish(). MQTT's qos and retain have no Kafka meaning and are ignored.
 *
 * Consumer (options.group_id set): member of that consumer group with cooperative-sticky
 * assignment, no automatic commits, reading from the earliest offset when the group has
 * none. The group, not the topic filter, decides which partitions (buckets) this member
 * reads: subscribing to every bucket's metrics or to bucket 7's both mean "the dsf.metrics
 * topic". Received messages get their MQTT-form topic back: on dsf.metrics the metrics topic
 * of bucket {partition} and {key}; on other topics the key when it is an MQTT topic of that Kafka
 * topic (what this bus publishes when the caller gives no key), else the Kafka topic name.
 * The payload is not NUL-terminated; key, boot and fmt are. dsf_bus_commit(topic, partition,
 * offset) takes the offset of the last message that is durable and commits offset + 1 (the
 * next one to read), asynchronously. A consumer bus publishes too, through a producer
 * created on first use.
 *
 * "Connected" for Kafka: librdkafka connects lazily and reconnects by itself, so the bus
 * probes: a helper thread asks for cluster metadata (every second until a broker answers,
 * then every 5 s). The bus is connected once a broker answered (or confirmed a produce), and
 * disconnected after two probes in a row failed or librdkafka reported all brokers down;
 * on_connect/on_disconnect run on those transitions. Publishing does not need a connection:
 * librdkafka queues messages (at most max_inflight when set) until a broker takes them.
 *
 * Threads: all callbacks run on the event loop thread. librdkafka's queues (the producer's
 * main queue, the consumer queue, and its log messages routed to them) signal a pipe that the
 * loop watches, and the loop polls them; a 1 s timer polls too, as a safety net. The probe
 * thread only calls rd_kafka_metadata() and hands its result to the loop (dsf_handoff).
 * dsf_bus_free() flushes the producer for up to 5 s, so on_delivered may still run inside it
 * (on_connect and on_disconnect do not).
 */
#define DSF_MODULE "kafka"
#include "common/bus_kafka_impl.h"
#include "common/log.h"
#include "common/loop.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FLUSH_TIMEOUT_MS 5000
#define SAFETY_POLL_MS 1000
#define CONSUME_BUDGET 1000 /* messages per loop callback before yielding */

/* ---- connection state (loop thread) ---- */

void kbus_set_connected(struct kbus *kb, int up, const char *reason)
{
    if (kb->closing)
        return;
    if (up) {
        kb->probe_fails = 0;
        kb->warned_unreachable = 0;
        if (kb->connected)
            return;
        kb->connected = 1;
        log_info("connected to Kafka brokers %s", kb->brokers);
        if (kb->cb.on_connect)
            kb->cb.on_connect(kb->cb.arg);
        return;
    }
    if (!kb->connected) {
        if (!kb->warned_unreachable) {
            kb->warned_unreachable = 1;
            log_warn("cannot reach Kafka brokers %s (%s); retrying in the background, "
                     "publishes stay queued: check the brokers setting and that Kafka is up",
                     kb->brokers, reason ? reason : "unknown");
        }
        return;
    }
    kb->connected = 0;
    log_warn("lost Kafka brokers %s (%s); reconnecting in the background, publishes stay queued",
             kb->brokers, reason ? reason : "unknown");
    if (kb->cb.on_disconnect)
        kb->cb.on_disconnect(kb->cb.arg, reason ? reason : "all Kafka brokers down");
}

/* ---- librdkafka callbacks (served by rd_kafka_poll / rd_kafka_consumer_poll on the loop) ---- */

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    enum dsf_log_level l = level <= 3   ? DSF_LOG_ERROR
                           : level == 4 ? DSF_LOG_WARN
                           : level <= 6 ? DSF_LOG_INFO
                                        : DSF_LOG_DEBUG;
    if (l <= dsf_log_get_level())
        dsf_log(l, DSF_MODULE, "%s: %s: %s", rd_kafka_name(rk), fac, buf);
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct kbus *kb = opaque;
    switch (err) {
    case RD_KAFKA_RESP_ERR__FATAL: {
        char why[512];
        rd_kafka_fatal_error(rk, why, sizeof(why));
        log_error("fatal error in the Kafka client %s for brokers %s: %s; recreating it "
                  "(unconfirmed messages are reported undelivered and resent by the caller)",
                  rd_kafka_name(rk), kb->brokers, why);
        if (rk == kb->prod) {
            kb->prod_fatal = 1;
            event_active(kb->ev_restart, EV_TIMEOUT, 0);
        }
        break;
    }
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
        kbus_set_connected(kb, 0, reason);
        break;
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__RESOLVE:
        /* librdkafka logs these per broker already; the state change comes via ALL_BROKERS_DOWN
         * or the probe. */
        log_debug("%s: %s", rd_kafka_err2name(err), reason);
        break;
    case RD_KAFKA_RESP_ERR__AUTHENTICATION:
    case RD_KAFKA_RESP_ERR__SSL:
        log_error("Kafka brokers %s refused the connection: %s (check username/password and "
                  "the TLS files)",
                  kb->brokers, reason);
        break;
    default:
        log_warn("Kafka client %s (brokers %s): %s: %s", rd_kafka_name(rk), kb->brokers,
                 rd_kafka_err2name(err), reason);
        break;
    }
}

/* ---- serving the queues on the loop ---- */

static void serve(struct kbus *kb)
{
    if (kb->prod)
        rd_kafka_poll(kb->prod, 0);
    if (kb->cons) {
        int n = 0;
        while (n < CONSUME_BUDGET) {
            rd_kafka_message_t *rm = rd_kafka_consumer_poll(kb->cons, 0);
            if (!rm)
                break;
            kbus_deliver_message(kb, rm);
            rd_kafka_message_destroy(rm);
            n++;
            if (!kb->cons) /* the callback cannot free the bus, but be defensive */
                break;
        }
        if (n == CONSUME_BUDGET) /* more waiting: let other events run first */
            event_active(kb->ev_wake, EV_READ, 0);
    }
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    struct kbus *kb = arg;
    char buf[256];
    while (read(kb->pipefd[0], buf, sizeof(buf)) > 0)
        ;
    serve(kb);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    serve(arg);
}

/* ---- configuration ---- */

int kbus_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, char *err,
                  size_t errlen)
{
    char why[256];
    if (rd_kafka_conf_set(conf, name, value, why, sizeof(why)) != RD_KAFKA_CONF_OK) {
        dsf_fail(err, errlen, "Kafka setting %s=%s rejected: %s", name, value, why);
        return -1;
    }
    return 0;
}

int kbus_conf_common(struct kbus *kb, rd_kafka_conf_t *conf, const struct dsf_bus_options *opt,
                     char *err, size_t errlen)
{
    int tls = opt->tls_ca || opt->tls_cert || opt->tls_key || strstr(opt->brokers, "ssl://") ||
              strstr(opt->brokers, "SSL://");
    int sasl = opt->username && *opt->username;
    const char *proto = tls ? (sasl ? "sasl_ssl" : "ssl") : (sasl ? "sasl_plaintext" : "plaintext");

    rd_kafka_conf_set_opaque(conf, kb);
    rd_kafka_conf_set_log_cb(conf, log_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    if (kbus_conf_set(conf, "bootstrap.servers", opt->brokers, err, errlen) ||
        kbus_conf_set(conf, "security.protocol", proto, err, errlen) ||
        kbus_conf_set(conf, "log.queue", "true", err, errlen) ||
        kbus_conf_set(conf, "log.connection.close", "false", err, errlen))
        return -1;
    if (opt->client_id && *opt->client_id &&
        kbus_conf_set(conf, "client.id", opt->client_id, err, errlen))
        return -1;
    if (opt->keepalive_s > 0 && kbus_conf_set(conf, "socket.keepalive.enable", "true", err, errlen))
        return -1;
    if (tls) {
        if (opt->tls_ca && kbus_conf_set(conf, "ssl.ca.location", opt->tls_ca, err, errlen))
            return -1;
        if (opt->tls_cert &&
            kbus_conf_set(conf, "ssl.certificate.location", opt->tls_cert, err, errlen))
            return -1;
        if (opt->tls_key && kbus_conf_set(conf, "ssl.key.location", opt->tls_key, err, errlen))
            return -1;
        if (opt->tls_insecure &&
            (kbus_conf_set(conf, "enable.ssl.certificate.verification", "false", err, errlen) ||
             kbus_conf_set(conf, "ssl.endpoint.identification.algorithm", "none", err, errlen)))
            return -1;
    }
    if (sasl) {
        const char *mech =
            opt->sasl_mechanism && *opt->sasl_mechanism ? opt->sasl_mechanism : "PLAIN";
        if (strcmp(mech, "PLAIN") != 0 && strcmp(mech, "SCRAM-SHA-256") != 0 &&
            strcmp(mech, "SCRAM-SHA-512") != 0) {
            snprintf(err, errlen,
                     "kafka.sasl_mechanism '%s': expected PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512",
                     mech);
            return -1;
        }
        if (kbus_conf_set(conf, "sasl.mechanisms", mech, err, errlen) ||
            kbus_conf_set(conf, "sasl.username", opt->username, err, errlen) ||
            kbus_conf_set(conf, "sasl.password", opt->password ? opt->password : "", err, errlen))
            return -1;
    }
    return 0;
}

static int kafka_connected(const void *impl)
{
    const struct kbus *kb = impl;
    return kb->connected;
}

static void kafka_destroy(void *impl)
{
    struct kbus *kb = impl;
    if (!kb)
        return;
    kb->closing = 1;
    kbus_probe_stop(kb);
    kbus_consumer_close(kb);
    kbus_producer_close(kb, FLUSH_TIMEOUT_MS);
    if (kb->ev_wake)
        event_free(kb->ev_wake);
    if (kb->ev_timer)
        event_free(kb->ev_timer);
    if (kb->ev_restart)
        event_free(kb->ev_restart);
    if (kb->ev_resub)
        event_free(kb->ev_resub);
    free(kb->applied);
    dsf_handoff_free(kb->probe_ho, NULL);
    if (kb->pipefd[0] >= 0)
        close(kb->pipefd[0]);
    if (kb->pipefd[1] >= 0)
        close(kb->pipefd[1]);
    if (kb->pconf)
        rd_kafka_conf_destroy(kb->pconf);
    if (kb->cconf)
        rd_kafka_conf_destroy(kb->cconf);
    for (size_t i = 0; i < kb->nsubs; i++) {
        free(kb->subs[i].filter);
        free(kb->subs[i].topic);
    }
    free(kb->subs);
    pthread_cond_destroy(&kb->probe_cond);
    pthread_mutex_destroy(&kb->probe_lock);
    free(kb->brokers);
    free(kb->group_id);
    free(kb);
}

static const struct dsf_bus_ops kafka_ops = {
    .publish = kafka_publish,
    .subscribe = kafka_subscribe,
    .unsubscribe = kafka_unsubscribe,
    .commit = kafka_commit,
    .connected = kafka_connected,
    .pause = kafka_pause,
    .lag = kafka_lag,
    .destroy = kafka_destroy,
};

void *dsf_bus_kafka_new(struct event_base *base, const struct dsf_bus_options *opt,
                        const struct dsf_bus_callbacks *cb, const struct dsf_bus_ops **ops,
                        char *err, size_t errlen)
{
    if (!opt->brokers || !*opt->brokers) {
        dsf_fail(err, errlen, "Kafka needs brokers, e.g. \"kafka1:9092,kafka2:9092\"");
        return NULL;
    }
    struct kbus *kb = calloc(1, sizeof(*kb));
    if (!kb) {
        dsf_fail(err, errlen, "out of memory");
        return NULL;
    }
    kb->base = base;
    if (cb)
        kb->cb = *cb;
    kb->pipefd[0] = kb->pipefd[1] = -1;
    pthread_mutex_init(&kb->probe_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&kb->probe_cond, &ca);
    pthread_condattr_destroy(&ca);
    kb->dr_warn_ms = dsf_mono_ms() - DR_WARN_INTERVAL_MS;

    kb->brokers = strdup(opt->brokers);
    kb->group_id = opt->group_id && *opt->group_id ? strdup(opt->group_id) : NULL;
    if (!kb->brokers || (opt->group_id && *opt->group_id && !kb->group_id)) {
        dsf_fail(err, errlen, "out of memory");
        goto fail;
    }
    if (pipe2(kb->pipefd, O_NONBLOCK | O_CLOEXEC) < 0) {
        dsf_fail(err, errlen, "cannot create a pipe for the Kafka client: %s", strerror(errno));
        goto fail;
    }
    kb->ev_wake = event_new(base, kb->pipefd[0], EV_READ | EV_PERSIST, on_wake, kb);
    kb->ev_timer = event_new(base, -1, EV_PERSIST, on_timer, kb);
    kb->ev_restart = event_new(base, -1, 0, kbus_on_restart, kb);
    kb->ev_resub = event_new(base, -1, 0, kbus_on_resubscribe, kb);
    kb->probe_ho = dsf_handoff_new(base, sizeof(struct probe_result), 8, kbus_on_probe, kb);
    struct timeval tv = {SAFETY_POLL_MS / 1000, (SAFETY_POLL_MS % 1000) * 1000};
    if (!kb->ev_wake || !kb->ev_timer || !kb->ev_restart || !kb->ev_resub || !kb->probe_ho ||
        event_add(kb->ev_wake, NULL) || event_add(kb->ev_timer, &tv)) {
        dsf_fail(err, errlen, "cannot set up events for the Kafka client");
        goto fail;
    }

    kb->pconf = kbus_producer_template(kb, opt, err, errlen);
    if (!kb->pconf)
        goto fail;
    if (kb->group_id) {
        kb->cconf = kbus_consumer_template(kb, opt, err, errlen);
        if (!kb->cconf || kbus_consumer_open(kb, err, errlen) < 0)
            goto fail;
        kbus_probe_start(kb, kb->cons);
        log_info("Kafka consumer in group %s on %s", kb->group_id, kb->brokers);
    } else {
        if (kbus_producer_open(kb, err, errlen) < 0)
            goto fail;
        kbus_probe_start(kb, kb->prod);
        log_info("Kafka producer on %s", kb->brokers);
    }
    *ops = &kafka_ops;
    return kb;
fail:
    kafka_destroy(kb);
    return NULL;
}
