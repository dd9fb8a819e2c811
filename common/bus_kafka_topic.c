/* The Kafka bus's topics and keys: which MQTT topics map to which Kafka topics and keys on
 * publish, and the MQTT-form topic a received message gets back (see bus_kafka.c). */
#include "common/bus_kafka_impl.h"
#include "common/topic.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int kbus_topic_ok(const char *t)
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
const char *kbus_default_key(const char *mqtt, const char *kafka, size_t *len)
{
    if (strcmp(kafka, METRICS_TOPIC) == 0) {
        const char *key = dsf_topic_metrics_key_of(mqtt);
        if (key)
            *len = strlen(key);
        return key;
    }
    if (kafka == mqtt)
        return NULL;
    *len = strlen(mqtt);
    return mqtt;
}

const char *kbus_mqtt_topic(const char *ktopic, const char *key, int32_t partition, char *buf,
                            size_t cap, char **heap)
{
    const char *topic = ktopic;
    if (key && strcmp(ktopic, METRICS_TOPIC) != 0) {
        /* See kbus_default_key(): a key that is an MQTT topic mapping here is the topic. */
        const char *mapped = dsf_topic_kafka(key);
        if (mapped && strcmp(mapped, ktopic) == 0)
            topic = key;
    } else if (key) {
        size_t need = strlen(key) + 32; /* the prefix, a partition number and the NUL */
        if (dsf_topic_from_kafka_metrics(buf, cap, partition, key) >= 0) {
            topic = buf;
        } else if ((*heap = malloc(need)) &&
                   dsf_topic_from_kafka_metrics(*heap, need, partition, key) >= 0) {
            topic = *heap;
        }
    }
    return topic;
}
