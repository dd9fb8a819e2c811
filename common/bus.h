/*
 * The message bus every component uses: MQTT v5 (paho MQTTAsync) or Kafka (librdkafka)
 * behind one interface. Callbacks always run on the caller's event loop thread.
 *
 * Topics are given in the MQTT form of docs/architecture.md (dsf/m/{bucket}/{ns}/{mci}/{vm},
 * ...); the Kafka backend maps them to its topics (dsf.metrics, dsf.alarms, dsf.actions,
 * dsf.dlq, dsf.agents, dsf.collectors) and uses the message key for partitioning.
 */
#ifndef DSF_BUS_H
#define DSF_BUS_H

#include <stddef.h>
#include <stdint.h>

struct event_base;

enum dsf_bus_kind { DSF_BUS_MQTT, DSF_BUS_KAFKA };

struct dsf_bus_options {
    enum dsf_bus_kind kind;
    const char
        *brokers; /* MQTT: "tcp://host:1883" or "ssl://host:8883"; Kafka: "h1:9092,h2:9092" */
    const char *client_id; /* MQTT client id; Kafka client.id */
    const char *username, *password;
    const char *sasl_mechanism; /* Kafka with a username: PLAIN (NULL), SCRAM-SHA-256/512 */
    const char *tls_ca, *tls_cert,
        *tls_key;     /* PEM files; any set (or an ssl:// URL) turns TLS on */
    int tls_insecure; /* skip server verification (tests only) */
    int keepalive_s;
    int clean_start;           /* MQTT: 0 keeps the session (subscriptions, queued QoS 1) */
    uint32_t session_expiry_s; /* MQTT v5 session expiry when clean_start is 0 */
    const char *will_topic;    /* MQTT Last Will (retained), NULL for none */
    const char *will_payload;
    const char *connect_payload; /* published retained on will_topic after every connect */
    /* Kafka producer */
    const char *compression; /* none, gzip, snappy, lz4, zstd */
    int linger_ms;
    /* Kafka consumer */
    const char *group_id; /* set to consume */
    /* Published-but-unconfirmed messages the client may hold (MQTT max inflight). */
    int max_inflight;
};

/* A message, for publishing and as received. Properties are MQTT v5 user properties and
 * Kafka headers alike. */
struct dsf_bus_message {
    const char *topic;
    const void *payload;
    size_t len;
    const char *key; /* Kafka partitioning key; ignored by MQTT */
    size_t key_len;
    uint64_t seq; /* property "seq" when has_seq */
    int has_seq;
    /* Received: a "seq" property that is not a decimal number of 64 bits (has_seq is 0). */
    int seq_invalid;
    const char *boot;           /* property "boot", NULL for none */
    const char *fmt;            /* property "fmt", NULL for none */
    const char *response_topic; /* MQTT v5 request/response */
    const void *correlation;
    size_t correlation_len;
    int retained; /* received: the broker's retained copy */
    /* Kafka consumer position, for committing after the data is durable. */
    int32_t partition;
    int64_t offset;
};

/* NULL for an empty config string: the options take NULL as "not set". */
static inline const char *dsf_bus_opt(const char *s)
{
    return s && *s ? s : NULL;
}

struct dsf_bus_callbacks {
    void (*on_connect)(void *arg);
    void (*on_disconnect)(void *arg, const char *reason);
    /* The broker confirmed (ok=1) or gave up on (ok=0) the publish made with this token. */
    void (*on_delivered)(void *arg, uint64_t token, int ok);
    void (*on_message)(void *arg, const struct dsf_bus_message *m);
    void *arg;
};

struct dsf_bus;

/* Connects in the background; reconnects by itself. NULL with err on a bad option. */
struct dsf_bus *dsf_bus_new(struct event_base *base, const struct dsf_bus_options *opt,
                            const struct dsf_bus_callbacks *cb, char *err, size_t errlen);
/* Queues a publish; on_delivered reports the outcome for this token. 0, or -1 when it could
 * not even be queued (not connected, client full): the caller keeps the message. */
int dsf_bus_publish(struct dsf_bus *bus, const struct dsf_bus_message *m, int qos, int retain,
                    uint64_t token);
int dsf_bus_subscribe(struct dsf_bus *bus, const char *topic, int qos);
int dsf_bus_unsubscribe(struct dsf_bus *bus, const char *topic);
/* Kafka consumer: commit this position (the message's offset + 1). MQTT: no-op. */
int dsf_bus_commit(struct dsf_bus *bus, const char *topic, int32_t partition, int64_t offset);
int dsf_bus_connected(const struct dsf_bus *bus);
/* Kafka consumer: stop (paused = 1) or restart fetching, keeping the group membership; what
 * was delivered stays delivered and fetching resumes right after it. -1 where the transport
 * cannot (MQTT: unacked messages are resent by their senders instead). */
int dsf_bus_pause(struct dsf_bus *bus, int paused);
/* Kafka consumer: messages between its position and the partitions' ends, summed over its
 * assignment, from the last fetch's watermarks (no request). -1 where unknown or MQTT. */
int64_t dsf_bus_lag(struct dsf_bus *bus);
/* Publishes the offline status (when a will is set), disconnects, frees. */
void dsf_bus_free(struct dsf_bus *bus);

/* Kafka topic for an MQTT-form topic (common/topic.h: the metrics family is dsf.metrics, ...). */
const char *dsf_bus_kafka_topic(const char *mqtt_topic);

#endif
