/* The Kafka bus's consumer: group membership, subscriptions, received messages, commits,
 * pause and lag (see bus_kafka.c). */
#define DSF_MODULE "kafka"
#include "common/bus_kafka_impl.h"
#include "common/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

rd_kafka_conf_t *kbus_consumer_template(struct kbus *kb, const struct dsf_bus_options *opt,
                                        char *err, size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (kbus_conf_common(kb, conf, opt, err, errlen) ||
        kbus_conf_set(conf, "group.id", opt->group_id, err, errlen) ||
        kbus_conf_set(conf, "partition.assignment.strategy", "cooperative-sticky", err, errlen) ||
        kbus_conf_set(conf, "enable.auto.commit", "false", err, errlen) ||
        kbus_conf_set(conf, "enable.auto.offset.store", "false", err, errlen) ||
        kbus_conf_set(conf, "auto.offset.reset", "earliest", err, errlen) ||
        /* A member that died is noticed in 10 s rather than 45: its partitions (and their
         * uncommitted messages) move to the survivors sooner. */
        kbus_conf_set(conf, "session.timeout.ms", "10000", err, errlen) ||
        kbus_conf_set(conf, "heartbeat.interval.ms", "3000", err, errlen)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_offset_commit_cb(conf, offset_commit_cb);
    return conf;
}

int kbus_consumer_open(struct kbus *kb, char *err, size_t errlen)
{
    char why[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_dup(kb->cconf);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof(why));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        dsf_fail(err, errlen, "cannot create a Kafka consumer for group %s on %s: %s", kb->group_id,
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

void kbus_consumer_close(struct kbus *kb)
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

void kbus_deliver_message(struct kbus *kb, const rd_kafka_message_t *rm)
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
    if (seq) { /* one that is not a number is the consumer's to refuse and count */
        m.has_seq = dsf_bus_parse_seq(seq, strlen(seq), &m.seq) == 0;
        m.seq_invalid = !m.has_seq;
    }
    m.topic = kbus_mqtt_topic(ktopic, m.key, rm->partition, topicbuf, sizeof(topicbuf), &topicheap);

    kb->cb.on_message(kb->cb.arg, &m);

    free(keyheap);
    free(bootheap);
    free(fmtheap);
    free(seqheap);
    free(topicheap);
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
void kbus_on_resubscribe(evutil_socket_t fd, short what, void *arg)
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

int kafka_subscribe(void *impl, const char *filter, int qos)
{
    struct kbus *kb = impl;
    if (!kb->cons) {
        log_error("cannot subscribe to %s on Kafka brokers %s: this bus only produces (set the "
                  "group_id option to consume)",
                  filter, kb->brokers);
        return -1;
    }
    const char *topic = dsf_bus_kafka_topic(filter);
    if (!kbus_topic_ok(topic)) {
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

int kafka_unsubscribe(void *impl, const char *filter)
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

int kafka_commit(void *impl, const char *topic, int32_t partition, int64_t offset)
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

int kafka_pause(void *impl, int paused)
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

int64_t kafka_lag(void *impl)
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
