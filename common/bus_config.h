/*
 * The bus connection as configured: one struct per transport, embedded in each component's
 * config, and its rows declared once here. Components add the row sets they use as sections
 * with prefix "mqtt" or "kafka" (common/config.h), overriding defaults where theirs differ.
 */
#ifndef DSF_BUS_CONFIG_H
#define DSF_BUS_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "common/config.h"

struct dsf_bus_options;

/* Credentials and TLS, the same keys under mqtt.* and kafka.* (SASL for Kafka). */
struct dsf_bus_auth {
    char *username, *password, *tls_ca, *tls_cert, *tls_key;
    int tls_insecure; /* skip verifying the brokers' certificates */
};

struct dsf_mqtt_config {
    char *url, *client_id;
    struct dsf_bus_auth auth;
    int64_t keepalive_s;
    /* Consumers of metric buckets (collector, alarm engine). */
    char *buckets; /* "all", "none", or a list and ranges: "0-15,32" */
    int64_t buckets_total;
    int64_t session_expiry_ms; /* 0: a clean session */
};

struct dsf_kafka_config {
    char *brokers;
    char *sasl_mechanism; /* PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 */
    struct dsf_bus_auth auth;
    char *group;       /* consumers */
    char *compression; /* producers */
    int64_t linger_ms;
};

/* Connection: url, client_id, keepalive; then the auth rows (dsf_bus_auth_keys) in their own
 * section on the struct's auth member. */
extern const struct dsf_cfg_key dsf_mqtt_keys[];
extern const struct dsf_cfg_key dsf_bus_auth_keys[];
/* Bucket consumers: buckets, buckets_total, session_expiry. */
extern const struct dsf_cfg_key dsf_mqtt_consumer_keys[];
/* Connection: brokers (and the auth rows). */
extern const struct dsf_cfg_key dsf_kafka_keys[];
extern const struct dsf_cfg_key dsf_kafka_consumer_keys[]; /* group */
extern const struct dsf_cfg_key dsf_kafka_producer_keys[]; /* compression, linger */

/* The connection sections of a transport: its keys and its auth rows (2 written). */
size_t dsf_mqtt_sections(struct dsf_cfg_section *out, struct dsf_mqtt_config *mqtt);
size_t dsf_kafka_sections(struct dsf_cfg_section *out, struct dsf_kafka_config *kafka);

/* The sections of a bucket consumer (collector, alarm engine): mqtt connection and consumer
 * rows, kafka connection and consumer rows, each group with its defaults ("key=value" lists,
 * NULL-terminated, or NULL). Returns the number written (6). */
size_t dsf_bus_consumer_sections(struct dsf_cfg_section *out, struct dsf_mqtt_config *mqtt,
                                 struct dsf_kafka_config *kafka, const char *const *mqtt_defaults,
                                 const char *const *kafka_defaults);

/* Fills the connection part of o (kind, brokers, credentials, TLS, keepalive, session) from
 * the transport's config; the caller adds client id, will and the rest. */
void dsf_bus_connection(struct dsf_bus_options *o, const struct dsf_mqtt_config *mqtt,
                        const struct dsf_kafka_config *kafka, int use_kafka);

#endif
