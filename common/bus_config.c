#include "common/bus_config.h"
#include "common/bus.h"

#include <stddef.h>

#define M(field) offsetof(struct dsf_mqtt_config, field)
#define A(field) offsetof(struct dsf_bus_auth, field)
#define KF(field) offsetof(struct dsf_kafka_config, field)

const struct dsf_cfg_key dsf_bus_auth_keys[] = {
    {"username", DSF_CFG_STR, "", A(username), "user name (Kafka: SASL, with kafka.sasl_mechanism)",
     0, 0},
    {"password", DSF_CFG_STR, "", A(password), "password", 0, 0},
    {"tls_ca", DSF_CFG_FILE, "", A(tls_ca), "CA certificate file (PEM)", 0, 0},
    {"tls_cert", DSF_CFG_FILE, "", A(tls_cert), "client certificate file (PEM)", 0, 0},
    {"tls_key", DSF_CFG_FILE, "", A(tls_key), "client key file (PEM)", 0, 0},
    {"tls_insecure", DSF_CFG_BOOL, "false", A(tls_insecure),
     "skip verifying the brokers' certificates (testing only)", 0, 0},
    DSF_CFG_END,
};

const struct dsf_cfg_key dsf_mqtt_keys[] = {
    {"url", DSF_CFG_MQTT_URL, "tcp://127.0.0.1:1883", M(url),
     "broker URL: tcp://host:port (or mqtt://), ssl://host:port (or mqtts://) for TLS, "
     "ws://host:port/path or wss:// for websockets",
     0, 0},
    {"client_id", DSF_CFG_STR, "", M(client_id),
     "MQTT client id; empty: derived from the component's identity", 0, 0},
    {"keepalive", DSF_CFG_INT, "10", M(keepalive_s),
     "keep-alive seconds; the broker publishes the Last Will after 1.5x this", 2, 3600},
    DSF_CFG_END,
};

const struct dsf_cfg_key dsf_mqtt_consumer_keys[] = {
    {"buckets", DSF_CFG_STR, "all", M(buckets),
     "metric buckets to consume: all, none, or a list and ranges like 0-15,32", 0, 0},
    {"buckets_total", DSF_CFG_INT, "64", M(buckets_total),
     "number of buckets B, cluster-wide (as the agents' push.buckets)", 1, 65536},
    {"session_expiry", DSF_CFG_DURATION, "1h", M(session_expiry_ms),
     "how long the broker keeps this client's queue while it is away (0: a clean session)", 0,
     86400000 * 7.0},
    DSF_CFG_END,
};

const struct dsf_cfg_key dsf_kafka_keys[] = {
    {"brokers", DSF_CFG_STR, "127.0.0.1:9092", KF(brokers),
     "bootstrap servers, host:port[,host:port]", 0, 0},
    {"sasl_mechanism", DSF_CFG_STR, "PLAIN", KF(sasl_mechanism),
     "SASL mechanism with kafka.username: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", 0, 0},
    DSF_CFG_END,
};

const struct dsf_cfg_key dsf_kafka_consumer_keys[] = {
    {"group", DSF_CFG_STR, "dsf-collectors", KF(group), "consumer group", 0, 0},
    DSF_CFG_END,
};

const struct dsf_cfg_key dsf_kafka_producer_keys[] = {
    {"compression", DSF_CFG_STR, "lz4", KF(compression), "none, gzip, snappy, lz4 or zstd", 0, 0},
    {"linger", DSF_CFG_DURATION, "5ms", KF(linger_ms), "producer linger time", 0, 60000},
    DSF_CFG_END,
};

size_t dsf_mqtt_sections(struct dsf_cfg_section *out, struct dsf_mqtt_config *mqtt)
{
    out[0] = (struct dsf_cfg_section){"mqtt", dsf_mqtt_keys, mqtt, NULL};
    out[1] = (struct dsf_cfg_section){"mqtt", dsf_bus_auth_keys, &mqtt->auth, NULL};
    return 2;
}

size_t dsf_kafka_sections(struct dsf_cfg_section *out, struct dsf_kafka_config *kafka)
{
    out[0] = (struct dsf_cfg_section){"kafka", dsf_kafka_keys, kafka, NULL};
    out[1] = (struct dsf_cfg_section){"kafka", dsf_bus_auth_keys, &kafka->auth, NULL};
    return 2;
}

size_t dsf_bus_consumer_sections(struct dsf_cfg_section *out, struct dsf_mqtt_config *mqtt,
                                 struct dsf_kafka_config *kafka, const char *const *mqtt_defaults,
                                 const char *const *kafka_defaults)
{
    size_t n = dsf_mqtt_sections(out, mqtt);
    out[n++] = (struct dsf_cfg_section){"mqtt", dsf_mqtt_consumer_keys, mqtt, mqtt_defaults};
    n += dsf_kafka_sections(out + n, kafka);
    out[n++] = (struct dsf_cfg_section){"kafka", dsf_kafka_consumer_keys, kafka, kafka_defaults};
    return n;
}

/* The credentials and TLS files of one transport; "" is "not set". */
static void set_auth(struct dsf_bus_options *o, const struct dsf_bus_auth *a)
{
    o->username = dsf_bus_opt(a->username);
    o->password = dsf_bus_opt(a->password);
    o->tls_ca = dsf_bus_opt(a->tls_ca);
    o->tls_cert = dsf_bus_opt(a->tls_cert);
    o->tls_key = dsf_bus_opt(a->tls_key);
    o->tls_insecure = a->tls_insecure;
}

void dsf_bus_connection(struct dsf_bus_options *o, const struct dsf_mqtt_config *mqtt,
                        const struct dsf_kafka_config *kafka, int use_kafka)
{
    if (use_kafka) {
        o->kind = DSF_BUS_KAFKA;
        o->brokers = kafka->brokers;
        set_auth(o, &kafka->auth);
        o->sasl_mechanism = kafka->sasl_mechanism;
        o->group_id = dsf_bus_opt(kafka->group);
        o->compression = dsf_bus_opt(kafka->compression);
        o->linger_ms = (int)kafka->linger_ms;
        o->keepalive_s = 1; /* librdkafka: TCP keep-alive on */
        return;
    }
    o->kind = DSF_BUS_MQTT;
    o->brokers = mqtt->url;
    set_auth(o, &mqtt->auth);
    o->keepalive_s = (int)mqtt->keepalive_s;
    /* The session outlives a restart only when kept for a whole second or more. */
    o->session_expiry_s = (uint32_t)(mqtt->session_expiry_ms / 1000);
    o->clean_start = o->session_expiry_s == 0;
}
