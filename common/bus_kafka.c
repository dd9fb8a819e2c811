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
 * reads: dsf_bus_subscribe("dsf/m/+/#") and dsf_bus_subscribe("dsf/m/7/#") both mean "the
 * dsf.metrics topic". Received messages get their MQTT-form topic back: on dsf.metrics
 * "dsf/m/{partition}/{key}"; on other topics the key when it is an MQTT topic of that Kafka
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
#include "common/bucket.h"
#include "common/bus_impl.h"
#include "common/log.h"
#include "common/loop.h"

#include <event2/event.h>
#include <librdkafka/rdkafka.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FLUSH_TIMEOUT_MS 5000
#define PURGE_TIMEOUT_MS 1000
#define PROBE_TIMEOUT_MS 2000
#define PROBE_UP_INTERVAL_MS 5000
#define PROBE_DOWN_INTERVAL_MS 1000
#define PROBE_FAILS_TO_DISCONNECT 2
#define SAFETY_POLL_MS 1000
#define CONSUME_BUDGET 1000 /* messages per loop callback before yielding */
#define DR_WARN_INTERVAL_MS 10000
#define METRICS_TOPIC "dsf.metrics"

struct sub {
    char *filter; /* as subscribed (MQTT form) */
    char *topic;  /* Kafka topic */
};

struct probe_result {
    int up;
    char reason[192];
};

struct kbus {
    struct event_base *base;
    struct dsf_bus_callbacks cb;
    char *brokers;
    char *group_id;
    rd_kafka_conf_t *pconf; /* producer template, duplicated for each producer */
    rd_kafka_conf_t *cconf; /* consumer template, NULL in producer mode */

    rd_kafka_t *prod;
    rd_kafka_queue_t *prod_q;
    int prod_fatal;
    rd_kafka_t *cons;
    rd_kafka_queue_t *cons_q;

    int pipefd[2];
    struct event *ev_wake;
    struct event *ev_timer;
    struct event *ev_restart;
    struct event *ev_resub;
    char *applied; /* subscribed Kafka topics, sorted, each followed by ',' */

    int connected;
    int paused;  /* the consumer's fetching, by dsf_bus_pause() */
    int closing; /* in dsf_bus_free(): no more on_connect/on_disconnect */
    int warned_unreachable;
    int probe_fails;
    int64_t dr_warn_ms;
    uint64_t dr_failed_quiet;

    struct sub *subs;
    size_t nsubs;

    /* Probe thread: probe_rk and probe_stop are guarded by probe_lock. */
    pthread_t probe_thread;
    int probe_running;
    pthread_mutex_t probe_lock;
    pthread_cond_t probe_cond;
    int probe_stop;
    rd_kafka_t *probe_rk;
    struct dsf_handoff *probe_ho;
};

/* Error text for the caller; truncation is fine. */
__attribute__((format(printf, 3, 4))) static void errf(char *err, size_t errlen, const char *fmt,
                                                       ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- tokens: the publish token rides along as the message's opaque pointer ---- */

#if UINTPTR_MAX >= UINT64_MAX
static void *token_box(uint64_t token)
{
    return (void *)(uintptr_t)token;
}
static uint64_t token_unbox(void *p)
{
    return (uint64_t)(uintptr_t)p;
}
static void token_free(void *p) {}
#define TOKEN_BOX_FAILED(p) 0
#else
static void *token_box(uint64_t token)
{
    uint64_t *p = malloc(sizeof(*p));
    if (p)
        *p = token;
    return p;
}
static uint64_t token_unbox(void *p)
{
    uint64_t t = p ? *(uint64_t *)p : 0;
    free(p);
    return t;
}
static void token_free(void *p)
{
    free(p);
}
#define TOKEN_BOX_FAILED(p) ((p) == NULL)
#endif

/* ---- connection state (loop thread) ---- */

static void set_connected(struct kbus *kb, int up, const char *reason)
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

/* ---- probe thread ---- */

static void *probe_main(void *p)
{
    struct kbus *kb = p;
    pthread_mutex_lock(&kb->probe_lock);
    while (!kb->probe_stop) {
        rd_kafka_t *rk = kb->probe_rk;
        pthread_mutex_unlock(&kb->probe_lock);

        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, NULL, &md, PROBE_TIMEOUT_MS);
        struct probe_result r = {.up =
                                     err == RD_KAFKA_RESP_ERR_NO_ERROR && md && md->broker_cnt > 0};
        if (!r.up)
            snprintf(r.reason, sizeof(r.reason), "metadata request: %s",
                     err ? rd_kafka_err2str(err) : "no brokers in the answer");
        if (md)
            rd_kafka_metadata_destroy(md);
        dsf_handoff_post(kb->probe_ho, &r); /* full only if the loop is stuck: skip */

        pthread_mutex_lock(&kb->probe_lock);
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        int64_t ns = until.tv_nsec +
                     (int64_t)(r.up ? PROBE_UP_INTERVAL_MS : PROBE_DOWN_INTERVAL_MS) * 1000000;
        until.tv_sec += ns / 1000000000;
        until.tv_nsec = ns % 1000000000;
        while (!kb->probe_stop &&
               pthread_cond_timedwait(&kb->probe_cond, &kb->probe_lock, &until) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&kb->probe_lock);
    return NULL;
}

static void on_probe(void *arg, void *item)
{
    struct kbus *kb = arg;
    const struct probe_result *r = item;
    if (r->up) {
        set_connected(kb, 1, NULL);
    } else if (!kb->connected || ++kb->probe_fails >= PROBE_FAILS_TO_DISCONNECT) {
        set_connected(kb, 0, r->reason);
    }
}

static void probe_start(struct kbus *kb, rd_kafka_t *rk)
{
    if (kb->probe_running)
        return;
    kb->probe_rk = rk;
    kb->probe_stop = 0;
    if (pthread_create(&kb->probe_thread, NULL, probe_main, kb) != 0) {
        log_warn("cannot start the Kafka connection probe for %s: %s; connection state will "
                 "come from deliveries only",
                 kb->brokers, strerror(errno));
        return;
    }
    kb->probe_running = 1;
}

/* Blocks for at most one metadata request (PROBE_TIMEOUT_MS). */
static void probe_stop(struct kbus *kb)
{
    if (!kb->probe_running)
        return;
    pthread_mutex_lock(&kb->probe_lock);
    kb->probe_stop = 1;
    pthread_cond_signal(&kb->probe_cond);
    pthread_mutex_unlock(&kb->probe_lock);
    pthread_join(kb->probe_thread, NULL);
    kb->probe_running = 0;
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
        set_connected(kb, 0, reason);
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

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct kbus *kb = opaque;
    uint64_t token = token_unbox(m->_private);
    int ok = m->err == RD_KAFKA_RESP_ERR_NO_ERROR;
    if (ok) {
        set_connected(kb, 1, NULL);
    } else {
        int64_t now = dsf_mono_ms();
        if (now - kb->dr_warn_ms >= DR_WARN_INTERVAL_MS) {
            log_warn("Kafka did not take a message for topic %s (brokers %s): %s%s; the caller "
                     "keeps it and resends",
                     rd_kafka_topic_name(m->rkt), kb->brokers, rd_kafka_err2str(m->err),
                     kb->dr_failed_quiet ? " (and earlier failures not logged)" : "");
            kb->dr_warn_ms = now;
            kb->dr_failed_quiet = 0;
        } else {
            kb->dr_failed_quiet++;
        }
    }
    if (kb->cb.on_delivered)
        kb->cb.on_delivered(kb->cb.arg, token, ok);
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    struct kbus *kb = opaque;
    int cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    int assign = err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS;
    if (!assign && err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS)
        log_warn("group %s on %s: rebalance failed: %s; dropping this member's partitions",
                 kb->group_id, kb->brokers, rd_kafka_err2str(err));
    log_info("group %s: %s %d partition%s", kb->group_id, assign ? "assigned" : "revoked",
             parts->cnt, parts->cnt == 1 ? "" : "s");
    rd_kafka_error_t *e = NULL;
    rd_kafka_resp_err_t r = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (cooperative)
        e = assign ? rd_kafka_incremental_assign(rk, parts)
                   : rd_kafka_incremental_unassign(rk, parts);
    else
        r = rd_kafka_assign(rk, assign ? parts : NULL);
    if (e) {
        log_error("group %s: cannot apply the new assignment: %s", kb->group_id,
                  rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    } else if (r) {
        log_error("group %s: cannot apply the new assignment: %s", kb->group_id,
                  rd_kafka_err2str(r));
    } else if (assign && kb->paused) {
        rd_kafka_pause_partitions(rk, parts); /* the backlog is still too large */
    }
}

static void offset_commit_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                             rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    struct kbus *kb = opaque;
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR__NO_OFFSET)
        return;
    log_warn("group %s on %s: offset commit failed: %s; the data is read again after a "
             "rebalance unless a later commit succeeds",
             kb->group_id, kb->brokers, rd_kafka_err2str(err));
}

/* ---- serving the queues on the loop ---- */

static void deliver_message(struct kbus *kb, const rd_kafka_message_t *rm);

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
            deliver_message(kb, rm);
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

static int conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, char *err,
                    size_t errlen)
{
    char why[256];
    if (rd_kafka_conf_set(conf, name, value, why, sizeof(why)) != RD_KAFKA_CONF_OK) {
        errf(err, errlen, "Kafka setting %s=%s rejected: %s", name, value, why);
        return -1;
    }
    return 0;
}

static int conf_common(struct kbus *kb, rd_kafka_conf_t *conf, const struct dsf_bus_options *opt,
                       char *err, size_t errlen)
{
    int tls = opt->tls_ca || opt->tls_cert || opt->tls_key || strstr(opt->brokers, "ssl://") ||
              strstr(opt->brokers, "SSL://");
    int sasl = opt->username && *opt->username;
    const char *proto = tls ? (sasl ? "sasl_ssl" : "ssl") : (sasl ? "sasl_plaintext" : "plaintext");

    rd_kafka_conf_set_opaque(conf, kb);
    rd_kafka_conf_set_log_cb(conf, log_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    if (conf_set(conf, "bootstrap.servers", opt->brokers, err, errlen) ||
        conf_set(conf, "security.protocol", proto, err, errlen) ||
        conf_set(conf, "log.queue", "true", err, errlen) ||
        conf_set(conf, "log.connection.close", "false", err, errlen))
        return -1;
    if (opt->client_id && *opt->client_id &&
        conf_set(conf, "client.id", opt->client_id, err, errlen))
        return -1;
    if (opt->keepalive_s > 0 && conf_set(conf, "socket.keepalive.enable", "true", err, errlen))
        return -1;
    if (tls) {
        if (opt->tls_ca && conf_set(conf, "ssl.ca.location", opt->tls_ca, err, errlen))
            return -1;
        if (opt->tls_cert && conf_set(conf, "ssl.certificate.location", opt->tls_cert, err, errlen))
            return -1;
        if (opt->tls_key && conf_set(conf, "ssl.key.location", opt->tls_key, err, errlen))
            return -1;
        if (opt->tls_insecure &&
            (conf_set(conf, "enable.ssl.certificate.verification", "false", err, errlen) ||
             conf_set(conf, "ssl.endpoint.identification.algorithm", "none", err, errlen)))
            return -1;
    }
    if (sasl) {
        /* PLAIN; SCRAM-SHA-256/512 work the same way once the options can name them. */
        if (conf_set(conf, "sasl.mechanisms", "PLAIN", err, errlen) ||
            conf_set(conf, "sasl.username", opt->username, err, errlen) ||
            conf_set(conf, "sasl.password", opt->password ? opt->password : "", err, errlen))
            return -1;
    }
    return 0;
}

/* Runs on whichever thread produces or on librdkafka's threads: pure, touches nothing else. */
static int32_t partition_by_bucket(const rd_kafka_topic_t *rkt, const void *key, size_t keylen,
                                   int32_t partition_cnt, void *rkt_opaque, void *msg_opaque)
{
    if (!key || partition_cnt <= 0)
        return rd_kafka_msg_partitioner_random(rkt, key, keylen, partition_cnt, rkt_opaque,
                                               msg_opaque);
    return (int32_t)dsf_bucket(key, keylen, (uint32_t)partition_cnt);
}

static rd_kafka_conf_t *producer_template(struct kbus *kb, const struct dsf_bus_options *opt,
                                          char *err, size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char num[32];
    /* First: the topic-level settings below (acks, compression.type) go into this one. */
    rd_kafka_topic_conf_t *tconf = rd_kafka_topic_conf_new();
    rd_kafka_topic_conf_set_partitioner_cb(tconf, partition_by_bucket);
    rd_kafka_conf_set_default_topic_conf(conf, tconf);
    if (conf_common(kb, conf, opt, err, errlen) ||
        conf_set(conf, "enable.idempotence", "true", err, errlen) ||
        conf_set(conf, "acks", "all", err, errlen) ||
        conf_set(conf, "compression.type",
                 opt->compression && *opt->compression ? opt->compression : "none", err, errlen))
        goto fail;
    if (opt->linger_ms > 0) {
        snprintf(num, sizeof(num), "%d", opt->linger_ms);
        if (conf_set(conf, "linger.ms", num, err, errlen))
            goto fail;
    }
    if (opt->max_inflight > 0) {
        snprintf(num, sizeof(num), "%d", opt->max_inflight);
        if (conf_set(conf, "queue.buffering.max.messages", num, err, errlen))
            goto fail;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

static rd_kafka_conf_t *consumer_template(struct kbus *kb, const struct dsf_bus_options *opt,
                                          char *err, size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (conf_common(kb, conf, opt, err, errlen) ||
        conf_set(conf, "group.id", opt->group_id, err, errlen) ||
        conf_set(conf, "partition.assignment.strategy", "cooperative-sticky", err, errlen) ||
        conf_set(conf, "enable.auto.commit", "false", err, errlen) ||
        conf_set(conf, "enable.auto.offset.store", "false", err, errlen) ||
        conf_set(conf, "auto.offset.reset", "earliest", err, errlen) ||
        /* A member that died is noticed in 10 s rather than 45: its partitions (and their
         * uncommitted messages) move to the survivors sooner. */
        conf_set(conf, "session.timeout.ms", "10000", err, errlen) ||
        conf_set(conf, "heartbeat.interval.ms", "3000", err, errlen)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_offset_commit_cb(conf, offset_commit_cb);
    return conf;
}

/* ---- producer and consumer handles ---- */

static int producer_open(struct kbus *kb, char *err, size_t errlen)
{
    char why[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_dup(kb->pconf);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        errf(err, errlen, "cannot create a Kafka producer for %s: %s", kb->brokers, why);
        return -1;
    }
    rd_kafka_set_log_queue(rk, NULL); /* logs are served with the main queue, on the loop */
    kb->prod = rk;
    kb->prod_fatal = 0;
    kb->prod_q = rd_kafka_queue_get_main(rk);
    rd_kafka_queue_io_event_enable(kb->prod_q, kb->pipefd[1], "p", 1);
    return 0;
}

/* Flushes for up to timeout_ms, then purges; every outstanding message gets its
 * on_delivered before the handle goes away. */
static void producer_close(struct kbus *kb, int timeout_ms)
{
    if (!kb->prod)
        return;
    rd_kafka_queue_io_event_enable(kb->prod_q, -1, NULL, 0);
    rd_kafka_queue_destroy(kb->prod_q);
    kb->prod_q = NULL;
    if (rd_kafka_flush(kb->prod, timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        int left = rd_kafka_outq_len(kb->prod);
        if (left > 0 && timeout_ms > 0)
            log_warn("%d message%s not confirmed by Kafka brokers %s within %d ms; reporting "
                     "them undelivered",
                     left, left == 1 ? "" : "s", kb->brokers, timeout_ms);
        rd_kafka_purge(kb->prod, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_flush(kb->prod, PURGE_TIMEOUT_MS);
    }
    rd_kafka_destroy(kb->prod);
    kb->prod = NULL;
}

static int primary_is_producer(const struct kbus *kb)
{
    return kb->cconf == NULL;
}

static void on_restart(evutil_socket_t fd, short what, void *arg)
{
    struct kbus *kb = arg;
    if (!kb->prod || !kb->prod_fatal)
        return;
    if (primary_is_producer(kb))
        probe_stop(kb);
    producer_close(kb, 0);
    char err[512];
    if (producer_open(kb, err, sizeof(err)) < 0) {
        log_error("%s; the next publish tries again", err);
        return;
    }
    log_info("recreated the Kafka producer for %s", kb->brokers);
    if (primary_is_producer(kb))
        probe_start(kb, kb->prod);
}

static int consumer_open(struct kbus *kb, char *err, size_t errlen)
{
    char why[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_dup(kb->cconf);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof(why));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        errf(err, errlen, "cannot create a Kafka consumer for group %s on %s: %s", kb->group_id,
             kb->brokers, why);
        return -1;
    }
    rd_kafka_set_log_queue(rk, NULL);
    rd_kafka_poll_set_consumer(rk); /* main queue (logs, errors) -> consumer queue */
    kb->cons = rk;
    kb->cons_q = rd_kafka_queue_get_consumer(rk);
    rd_kafka_queue_io_event_enable(kb->cons_q, kb->pipefd[1], "c", 1);
    return 0;
}

static void consumer_close(struct kbus *kb)
{
    if (!kb->cons)
        return;
    rd_kafka_queue_io_event_enable(kb->cons_q, -1, NULL, 0);
    rd_kafka_resp_err_t err = rd_kafka_consumer_close(kb->cons);
    if (err)
        log_warn("leaving group %s on %s: %s", kb->group_id, kb->brokers, rd_kafka_err2str(err));
    rd_kafka_queue_destroy(kb->cons_q);
    kb->cons_q = NULL;
    rd_kafka_destroy(kb->cons);
    kb->cons = NULL;
}

/* ---- received messages ---- */

/* A NUL-terminated copy of [p, p+n) in buf, or on the heap (*heap) when it does not fit. */
static const char *cstr(const void *p, size_t n, char *buf, size_t buflen, char **heap)
{
    char *d = buf;
    if (n >= buflen) {
        d = *heap = malloc(n + 1);
        if (!d)
            return NULL;
    }
    if (n)
        memcpy(d, p, n);
    d[n] = '\0';
    return d;
}

static const char *header(rd_kafka_headers_t *h, const char *name, char *buf, size_t buflen,
                          char **heap)
{
    const void *v = NULL;
    size_t n = 0;
    if (!h || rd_kafka_header_get_last(h, name, &v, &n) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return NULL;
    return cstr(v ? v : "", v ? n : 0, buf, buflen, heap);
}

static void deliver_message(struct kbus *kb, const rd_kafka_message_t *rm)
{
    const char *ktopic = rm->rkt ? rd_kafka_topic_name(rm->rkt) : "?";
    if (rm->err) {
        if (rm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
            return;
        if (rm->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
            rm->err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED)
            log_error("group %s cannot read topic %s on %s: %s (create the topic, with as many "
                      "partitions as buckets for %s, and check its ACLs)",
                      kb->group_id, ktopic, kb->brokers, rd_kafka_message_errstr(rm),
                      METRICS_TOPIC);
        else
            log_warn("group %s, topic %s [%" PRId32 "] on %s: %s", kb->group_id, ktopic,
                     rm->partition, kb->brokers, rd_kafka_message_errstr(rm));
        return;
    }
    if (!kb->cb.on_message)
        return;

    char keybuf[256], bootbuf[128], fmtbuf[32], seqbuf[32], topicbuf[320];
    char *keyheap = NULL, *bootheap = NULL, *fmtheap = NULL, *seqheap = NULL, *topicheap = NULL;
    rd_kafka_headers_t *h = NULL;
    if (rd_kafka_message_headers(rm, &h) != RD_KAFKA_RESP_ERR_NO_ERROR)
        h = NULL;

    struct dsf_bus_message m = {0};
    m.payload = rm->payload ? rm->payload : "";
    m.len = rm->len;
    m.partition = rm->partition;
    m.offset = rm->offset;
    if (rm->key) {
        m.key = cstr(rm->key, rm->key_len, keybuf, sizeof(keybuf), &keyheap);
        m.key_len = m.key ? rm->key_len : 0;
    }
    m.boot = header(h, "boot", bootbuf, sizeof(bootbuf), &bootheap);
    m.fmt = header(h, "fmt", fmtbuf, sizeof(fmtbuf), &fmtheap);
    const char *seq = header(h, "seq", seqbuf, sizeof(seqbuf), &seqheap);
    if (seq && *seq) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(seq, &end, 10);
        if (errno == 0 && *end == '\0' && *seq != '-') {
            m.seq = v;
            m.has_seq = 1;
        } else {
            log_warn("topic %s [%" PRId32 "] offset %" PRId64 ": header seq '%.32s' is not a "
                     "decimal number; ignoring it",
                     ktopic, rm->partition, rm->offset, seq);
        }
    }
    m.topic = ktopic;
    if (m.key && strcmp(ktopic, METRICS_TOPIC) != 0) {
        /* See default_key(): a key that is an MQTT topic mapping here is the topic. */
        if (strncmp(m.key, "dsf/", 4) == 0 && strcmp(dsf_bus_kafka_topic(m.key), ktopic) == 0)
            m.topic = m.key;
    } else if (m.key) {
        int n = snprintf(topicbuf, sizeof(topicbuf), "dsf/m/%" PRId32 "/%s", rm->partition, m.key);
        if (n >= 0 && (size_t)n < sizeof(topicbuf)) {
            m.topic = topicbuf;
        } else if (n >= 0 && (topicheap = malloc((size_t)n + 1))) {
            snprintf(topicheap, (size_t)n + 1, "dsf/m/%" PRId32 "/%s", rm->partition, m.key);
            m.topic = topicheap;
        }
    }

    kb->cb.on_message(kb->cb.arg, &m);

    free(keyheap);
    free(bootheap);
    free(fmtheap);
    free(seqheap);
    free(topicheap);
}

/* ---- ops ---- */

static int topic_ok(const char *t)
{
    size_t n = strlen(t);
    if (n == 0 || n > 249 || strcmp(t, ".") == 0 || strcmp(t, "..") == 0)
        return 0;
    return strspn(t, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

/*
 * The key of a message published without one: on dsf.metrics the "ns/mci/vm" part of
 * dsf/m/{bucket}/{ns}/{mci}/{vm} (the wire contract's key), on the other mapped topics the
 * MQTT topic itself, so one alarm rule or agent keeps its order and a consumer gets the MQTT
 * topic back. NULL for a plain Kafka topic name.
 */
static const char *default_key(const char *mqtt, const char *kafka, size_t *len)
{
    if (strcmp(kafka, METRICS_TOPIC) == 0) {
        if (strncmp(mqtt, "dsf/m/", 6) != 0)
            return NULL;
        const char *p = mqtt + 6 + strspn(mqtt + 6, "0123456789");
        if (*p != '/' || p[1] == '\0')
            return NULL;
        *len = strlen(p + 1);
        return p + 1;
    }
    if (kafka == mqtt)
        return NULL;
    *len = strlen(mqtt);
    return mqtt;
}

static int kafka_publish(void *impl, const struct dsf_bus_message *m, int qos, int retain,
                         uint64_t token)
{
    struct kbus *kb = impl;
    char err[512];
    if (!kb->prod) {
        if (producer_open(kb, err, sizeof(err)) < 0) {
            log_error("%s", err);
            return -1;
        }
        if (primary_is_producer(kb))
            probe_start(kb, kb->prod);
    }
    if (kb->prod_fatal)
        return -1; /* being recreated */
    const char *topic = dsf_bus_kafka_topic(m->topic);
    if (!topic_ok(topic)) {
        log_error("cannot publish to '%s': no Kafka topic maps to it (use a dsf/m/, dsf/alarm/, "
                  "dsf/action/, dsf/a/, dsf/c/ or dsf/dlq topic, or a legal Kafka topic name)",
                  m->topic);
        return -1;
    }

    rd_kafka_vu_t vu[9];
    size_t n = 0;
    char seq[24];
    vu[n].vtype = RD_KAFKA_VTYPE_TOPIC;
    vu[n++].u.cstr = topic;
    vu[n].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
    vu[n++].u.i = RD_KAFKA_MSG_F_COPY;
    vu[n].vtype = RD_KAFKA_VTYPE_VALUE;
    vu[n].u.mem.ptr = (void *)m->payload;
    vu[n++].u.mem.size = m->len;
    size_t key_len = 0;
    const char *key = m->key ? m->key : default_key(m->topic, topic, &key_len);
    if (m->key)
        key_len = m->key_len ? m->key_len : strlen(m->key);
    if (key) {
        vu[n].vtype = RD_KAFKA_VTYPE_KEY;
        vu[n].u.mem.ptr = (void *)key;
        vu[n++].u.mem.size = key_len;
    }
    if (m->has_seq) {
        snprintf(seq, sizeof(seq), "%" PRIu64, m->seq);
        vu[n].vtype = RD_KAFKA_VTYPE_HEADER;
        vu[n].u.header.name = "seq";
        vu[n].u.header.val = seq;
        vu[n++].u.header.size = (ssize_t)strlen(seq);
    }
    if (m->boot) {
        vu[n].vtype = RD_KAFKA_VTYPE_HEADER;
        vu[n].u.header.name = "boot";
        vu[n].u.header.val = m->boot;
        vu[n++].u.header.size = (ssize_t)strlen(m->boot);
    }
    if (m->fmt) {
        vu[n].vtype = RD_KAFKA_VTYPE_HEADER;
        vu[n].u.header.name = "fmt";
        vu[n].u.header.val = m->fmt;
        vu[n++].u.header.size = (ssize_t)strlen(m->fmt);
    }
    void *box = token_box(token);
    if (TOKEN_BOX_FAILED(box)) {
        log_error("out of memory publishing to %s", topic);
        return -1;
    }
    vu[n].vtype = RD_KAFKA_VTYPE_OPAQUE;
    vu[n++].u.ptr = box;

    rd_kafka_error_t *e = rd_kafka_produceva(kb->prod, vu, n);
    if (e) {
        rd_kafka_resp_err_t code = rd_kafka_error_code(e);
        if (code == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            log_warn("Kafka producer queue for %s is full (%d messages waiting for brokers %s); "
                     "the caller keeps the message: check that Kafka is reachable",
                     topic, rd_kafka_outq_len(kb->prod), kb->brokers);
        else
            log_error("cannot publish to Kafka topic %s on %s: %s", topic, kb->brokers,
                      rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        token_free(box);
        return -1;
    }
    /* No rd_kafka_poll() here: on_delivered never runs inside dsf_bus_publish(). */
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Applies the subscription on the next loop pass, and only when the set of Kafka topics
 * changed, so a burst of subscribe calls (a collector subscribing to its topics at start)
 * makes one group join: changing the subscription while a JoinGroup is in flight leaves a
 * member behind that the coordinator only drops after session.timeout.ms.
 */
static void on_resubscribe(evutil_socket_t fd, short what, void *arg)
{
    struct kbus *kb = arg;
    char **topics = calloc(kb->nsubs + 1, sizeof(*topics));
    if (!topics)
        return;
    size_t n = 0, len = 1;
    for (size_t i = 0; i < kb->nsubs; i++)
        topics[n++] = kb->subs[i].topic;
    qsort(topics, n, sizeof(*topics), cmp_str);
    for (size_t i = 0; i < n; i++)
        len += strlen(topics[i]) + 1;
    char *joined = malloc(len);
    if (!joined) {
        free(topics);
        return;
    }
    joined[0] = '\0';
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)n);
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && strcmp(topics[i], topics[i - 1]) == 0)
            continue;
        rd_kafka_topic_partition_list_add(l, topics[i], RD_KAFKA_PARTITION_UA);
        strcat(joined, topics[i]);
        strcat(joined, ",");
    }
    free(topics);
    if (kb->applied && strcmp(kb->applied, joined) == 0) {
        rd_kafka_topic_partition_list_destroy(l);
        free(joined);
        return;
    }
    rd_kafka_resp_err_t err =
        l->cnt ? rd_kafka_subscribe(kb->cons, l) : rd_kafka_unsubscribe(kb->cons);
    rd_kafka_topic_partition_list_destroy(l);
    if (err) {
        log_error("group %s on %s: cannot subscribe to topics %s: %s", kb->group_id, kb->brokers,
                  joined, rd_kafka_err2str(err));
        free(joined);
        return;
    }
    log_debug("group %s: subscribed to topics %s", kb->group_id, joined);
    free(kb->applied);
    kb->applied = joined;
}

static void resubscribe(struct kbus *kb)
{
    event_active(kb->ev_resub, EV_TIMEOUT, 0);
}

static int kafka_subscribe(void *impl, const char *filter, int qos)
{
    struct kbus *kb = impl;
    if (!kb->cons) {
        log_error("cannot subscribe to %s on Kafka brokers %s: this bus only produces (set the "
                  "group_id option to consume)",
                  filter, kb->brokers);
        return -1;
    }
    const char *topic = dsf_bus_kafka_topic(filter);
    if (!topic_ok(topic)) {
        log_error("cannot subscribe to '%s': no Kafka topic maps to it", filter);
        return -1;
    }
    for (size_t i = 0; i < kb->nsubs; i++)
        if (strcmp(kb->subs[i].filter, filter) == 0)
            return 0;
    struct sub *s = realloc(kb->subs, (kb->nsubs + 1) * sizeof(*s));
    if (!s)
        return -1;
    kb->subs = s;
    s[kb->nsubs].filter = strdup(filter);
    s[kb->nsubs].topic = strdup(topic);
    if (!s[kb->nsubs].filter || !s[kb->nsubs].topic) {
        free(s[kb->nsubs].filter);
        free(s[kb->nsubs].topic);
        return -1;
    }
    kb->nsubs++;
    resubscribe(kb);
    log_debug("group %s: %s -> topic %s", kb->group_id, filter, topic);
    return 0;
}

static int kafka_unsubscribe(void *impl, const char *filter)
{
    struct kbus *kb = impl;
    if (!kb->cons)
        return -1;
    for (size_t i = 0; i < kb->nsubs; i++) {
        if (strcmp(kb->subs[i].filter, filter) == 0) {
            free(kb->subs[i].filter);
            free(kb->subs[i].topic);
            kb->subs[i] = kb->subs[--kb->nsubs];
            resubscribe(kb);
            return 0;
        }
    }
    return 0;
}

static int kafka_commit(void *impl, const char *topic, int32_t partition, int64_t offset)
{
    struct kbus *kb = impl;
    if (!kb->cons) {
        log_error("cannot commit on Kafka brokers %s: this bus has no group_id", kb->brokers);
        return -1;
    }
    const char *t = dsf_bus_kafka_topic(topic);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, t, partition)->offset = offset + 1;
    rd_kafka_resp_err_t err = rd_kafka_commit(kb->cons, l, 1);
    rd_kafka_topic_partition_list_destroy(l);
    if (err) {
        log_warn("group %s: cannot commit %s [%" PRId32 "] offset %" PRId64 " on %s: %s",
                 kb->group_id, t, partition, offset + 1, kb->brokers, rd_kafka_err2str(err));
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
    probe_stop(kb);
    consumer_close(kb);
    producer_close(kb, FLUSH_TIMEOUT_MS);
    if (kb->ev_wake)
        event_free(kb->ev_wake);
    if (kb->ev_timer)
        event_free(kb->ev_timer);
    if (kb->ev_restart)
        event_free(kb->ev_restart);
    if (kb->ev_resub)
        event_free(kb->ev_resub);
    free(kb->applied);
    dsf_handoff_free(kb->probe_ho);
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

static int kafka_pause(void *impl, int paused)
{
    struct kbus *kb = impl;
    if (!kb->cons)
        return -1;
    kb->paused = paused;
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (rd_kafka_assignment(kb->cons, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return -1;
    /* Pausing drops what was fetched but not yet delivered; resuming fetches from just
     * after the last delivered message, so nothing is skipped. */
    rd_kafka_resp_err_t r = paused ? rd_kafka_pause_partitions(kb->cons, parts)
                                   : rd_kafka_resume_partitions(kb->cons, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    return r == RD_KAFKA_RESP_ERR_NO_ERROR ? 0 : -1;
}

static int64_t kafka_lag(void *impl)
{
    struct kbus *kb = impl;
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (!kb->cons || rd_kafka_assignment(kb->cons, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return -1;
    int64_t lag = 0;
    if (rd_kafka_position(kb->cons, parts) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        for (int i = 0; i < parts->cnt; i++) {
            const rd_kafka_topic_partition_t *p = &parts->elems[i];
            int64_t lo, hi;
            if (p->offset < 0 ||
                rd_kafka_get_watermark_offsets(kb->cons, p->topic, p->partition, &lo, &hi) ||
                hi < p->offset)
                continue; /* nothing consumed yet, or no fetch answered: unknown, not 0 */
            lag += hi - p->offset;
        }
    } else {
        lag = -1;
    }
    rd_kafka_topic_partition_list_destroy(parts);
    return lag;
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
        errf(err, errlen, "Kafka needs brokers, e.g. \"kafka1:9092,kafka2:9092\"");
        return NULL;
    }
    struct kbus *kb = calloc(1, sizeof(*kb));
    if (!kb) {
        errf(err, errlen, "out of memory");
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
        errf(err, errlen, "out of memory");
        goto fail;
    }
    if (pipe2(kb->pipefd, O_NONBLOCK | O_CLOEXEC) < 0) {
        errf(err, errlen, "cannot create a pipe for the Kafka client: %s", strerror(errno));
        goto fail;
    }
    kb->ev_wake = event_new(base, kb->pipefd[0], EV_READ | EV_PERSIST, on_wake, kb);
    kb->ev_timer = event_new(base, -1, EV_PERSIST, on_timer, kb);
    kb->ev_restart = event_new(base, -1, 0, on_restart, kb);
    kb->ev_resub = event_new(base, -1, 0, on_resubscribe, kb);
    kb->probe_ho = dsf_handoff_new(base, sizeof(struct probe_result), 8, on_probe, kb);
    struct timeval tv = {SAFETY_POLL_MS / 1000, (SAFETY_POLL_MS % 1000) * 1000};
    if (!kb->ev_wake || !kb->ev_timer || !kb->ev_restart || !kb->ev_resub || !kb->probe_ho ||
        event_add(kb->ev_wake, NULL) || event_add(kb->ev_timer, &tv)) {
        errf(err, errlen, "cannot set up events for the Kafka client");
        goto fail;
    }

    kb->pconf = producer_template(kb, opt, err, errlen);
    if (!kb->pconf)
        goto fail;
    if (kb->group_id) {
        kb->cconf = consumer_template(kb, opt, err, errlen);
        if (!kb->cconf || consumer_open(kb, err, errlen) < 0)
            goto fail;
        probe_start(kb, kb->cons);
        log_info("Kafka consumer in group %s on %s", kb->group_id, kb->brokers);
    } else {
        if (producer_open(kb, err, errlen) < 0)
            goto fail;
        probe_start(kb, kb->prod);
        log_info("Kafka producer on %s", kb->brokers);
    }
    *ops = &kafka_ops;
    return kb;
fail:
    kafka_destroy(kb);
    return NULL;
}
