/*
 * The Kafka backend of the bus, split by concern: bus_kafka.c (the handle, its
 * configuration, connection state and the loop's service), bus_kafka_produce.c,
 * bus_kafka_consume.c, bus_kafka_probe.c (the connection probe thread) and bus_kafka_topic.c
 * (MQTT topics <-> Kafka topics and keys). Only these files include this.
 */
#ifndef DSF_BUS_KAFKA_IMPL_H
#define DSF_BUS_KAFKA_IMPL_H

#include "common/bus_impl.h"
#include "common/fail.h"

#include <event2/event.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

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

/* bus_kafka.c */
void kbus_set_connected(struct kbus *kb, int up, const char *reason);
int kbus_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, char *err,
                  size_t errlen);
int kbus_conf_common(struct kbus *kb, rd_kafka_conf_t *conf, const struct dsf_bus_options *opt,
                     char *err, size_t errlen);

/* bus_kafka_probe.c */
void kbus_probe_start(struct kbus *kb, rd_kafka_t *rk);
/* Blocks for at most one metadata request. */
void kbus_probe_stop(struct kbus *kb);
/* The probe's result, handed to the loop (dsf_handoff). */
void kbus_on_probe(void *arg, void *item);

/* bus_kafka_produce.c */
rd_kafka_conf_t *kbus_producer_template(struct kbus *kb, const struct dsf_bus_options *opt,
                                        char *err, size_t errlen);
int kbus_producer_open(struct kbus *kb, char *err, size_t errlen);
/* Flushes for up to timeout_ms, then purges; every outstanding message gets its
 * on_delivered before the handle goes away. */
void kbus_producer_close(struct kbus *kb, int timeout_ms);
/* Recreates the producer after a fatal error (the ev_restart event). */
void kbus_on_restart(evutil_socket_t fd, short what, void *arg);
int kafka_publish(void *impl, const struct dsf_bus_message *m, int qos, int retain, uint64_t token);

/* bus_kafka_consume.c */
rd_kafka_conf_t *kbus_consumer_template(struct kbus *kb, const struct dsf_bus_options *opt,
                                        char *err, size_t errlen);
int kbus_consumer_open(struct kbus *kb, char *err, size_t errlen);
void kbus_consumer_close(struct kbus *kb);
void kbus_deliver_message(struct kbus *kb, const rd_kafka_message_t *rm);
/* Applies the subscription (the ev_resub event). */
void kbus_on_resubscribe(evutil_socket_t fd, short what, void *arg);
int kafka_subscribe(void *impl, const char *filter, int qos);
int kafka_unsubscribe(void *impl, const char *filter);
int kafka_commit(void *impl, const char *topic, int32_t partition, int64_t offset);
int kafka_pause(void *impl, int paused);
int64_t kafka_lag(void *impl);

/* bus_kafka_topic.c */
/* A legal Kafka topic name. */
int kbus_topic_ok(const char *t);
/* The key of a message published without one; NULL for a plain Kafka topic name. */
const char *kbus_default_key(const char *mqtt, const char *kafka, size_t *len);
/* The MQTT-form topic of a message received on Kafka topic ktopic: in buf (cap bytes) or on
 * the heap (*heap, for the caller to free) when it does not fit. */
const char *kbus_mqtt_topic(const char *ktopic, const char *key, int32_t partition, char *buf,
                            size_t cap, char **heap);

#endif
