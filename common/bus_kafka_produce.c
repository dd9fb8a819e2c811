/* The Kafka bus's producer: idempotent, acks=all, partition = bucket (see bus_kafka.c). */
#define DSF_MODULE "kafka"
#include "common/bucket.h"
#include "common/bus_kafka_impl.h"
#include "common/log.h"
#include "common/loop.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PURGE_TIMEOUT_MS 1000

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

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct kbus *kb = opaque;
    uint64_t token = token_unbox(m->_private);
    int ok = m->err == RD_KAFKA_RESP_ERR_NO_ERROR;
    if (ok) {
        kbus_set_connected(kb, 1, NULL);
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

/* Runs on whichever thread produces or on librdkafka's threads: pure, touches nothing else. */
static int32_t partition_by_bucket(const rd_kafka_topic_t *rkt, const void *key, size_t keylen,
                                   int32_t partition_cnt, void *rkt_opaque, void *msg_opaque)
{
    if (!key || partition_cnt <= 0)
        return rd_kafka_msg_partitioner_random(rkt, key, keylen, partition_cnt, rkt_opaque,
                                               msg_opaque);
    return (int32_t)dsf_bucket(key, keylen, (uint32_t)partition_cnt);
}

rd_kafka_conf_t *kbus_producer_template(struct kbus *kb, const struct dsf_bus_options *opt,
                                        char *err, size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char num[32];
    /* First: the topic-level settings below (acks, compression.type) go into this one. */
    rd_kafka_topic_conf_t *tconf = rd_kafka_topic_conf_new();
    rd_kafka_topic_conf_set_partitioner_cb(tconf, partition_by_bucket);
    rd_kafka_conf_set_default_topic_conf(conf, tconf);
    if (kbus_conf_common(kb, conf, opt, err, errlen) ||
        kbus_conf_set(conf, "enable.idempotence", "true", err, errlen) ||
        kbus_conf_set(conf, "acks", "all", err, errlen) ||
        kbus_conf_set(conf, "compression.type",
                      opt->compression && *opt->compression ? opt->compression : "none", err,
                      errlen))
        goto fail;
    if (opt->linger_ms > 0) {
        snprintf(num, sizeof(num), "%d", opt->linger_ms);
        if (kbus_conf_set(conf, "linger.ms", num, err, errlen))
            goto fail;
    }
    if (opt->max_inflight > 0) {
        snprintf(num, sizeof(num), "%d", opt->max_inflight);
        if (kbus_conf_set(conf, "queue.buffering.max.messages", num, err, errlen))
            goto fail;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

/* ---- producer and consumer handles ---- */

int kbus_producer_open(struct kbus *kb, char *err, size_t errlen)
{
    char why[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_dup(kb->pconf);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        dsf_fail(err, errlen, "cannot create a Kafka producer for %s: %s", kb->brokers, why);
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
void kbus_producer_close(struct kbus *kb, int timeout_ms)
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

static int kbus_primary_is_producer(const struct kbus *kb)
{
    return kb->cconf == NULL;
}

void kbus_on_restart(evutil_socket_t fd, short what, void *arg)
{
    struct kbus *kb = arg;
    if (!kb->prod || !kb->prod_fatal)
        return;
    if (kbus_primary_is_producer(kb))
        kbus_probe_stop(kb);
    kbus_producer_close(kb, 0);
    char err[512];
    if (kbus_producer_open(kb, err, sizeof(err)) < 0) {
        log_error("%s; the next publish tries again", err);
        return;
    }
    log_info("recreated the Kafka producer for %s", kb->brokers);
    if (kbus_primary_is_producer(kb))
        kbus_probe_start(kb, kb->prod);
}

/* The MQTT user properties seq, boot and fmt travel as Kafka headers. */
static void add_header(rd_kafka_vu_t *vu, size_t *n, const char *name, const char *val)
{
    vu[*n].vtype = RD_KAFKA_VTYPE_HEADER;
    vu[*n].u.header.name = name;
    vu[*n].u.header.val = val;
    vu[(*n)++].u.header.size = (ssize_t)strlen(val);
}

int kafka_publish(void *impl, const struct dsf_bus_message *m, int qos, int retain, uint64_t token)
{
    struct kbus *kb = impl;
    char err[512];
    if (!kb->prod) {
        if (kbus_producer_open(kb, err, sizeof(err)) < 0) {
            log_error("%s", err);
            return -1;
        }
        if (kbus_primary_is_producer(kb))
            kbus_probe_start(kb, kb->prod);
    }
    if (kb->prod_fatal)
        return -1; /* being recreated */
    const char *topic = dsf_bus_kafka_topic(m->topic);
    if (!kbus_topic_ok(topic)) {
        log_error("cannot publish to '%s': no Kafka topic maps to it (use a metrics, agent, "
                  "collector, alarm, action or DLQ topic of common/topic.h, or a legal Kafka "
                  "topic name)",
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
    const char *key = m->key ? m->key : kbus_default_key(m->topic, topic, &key_len);
    if (m->key)
        key_len = m->key_len ? m->key_len : strlen(m->key);
    if (key) {
        vu[n].vtype = RD_KAFKA_VTYPE_KEY;
        vu[n].u.mem.ptr = (void *)key;
        vu[n++].u.mem.size = key_len;
    }
    if (m->has_seq) {
        snprintf(seq, sizeof(seq), "%" PRIu64, m->seq);
        add_header(vu, &n, "seq", seq);
    }
    if (m->boot)
        add_header(vu, &n, "boot", m->boot);
    if (m->fmt)
        add_header(vu, &n, "fmt", m->fmt);
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
