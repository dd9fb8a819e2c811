/* The Kafka bus's topics and keys: which MQTT topics map to which Kafka topics and keys on
 * publish, and the MQTT-form topic a received message gets back (see bus_kafka.c). */
#include "common/bus_kafka_impl.h"

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

const char *kbus_mqtt_topic(const char *ktopic, const char *key, int32_t partition, char *buf,
                            size_t cap, char **heap)
{
    const char *topic = ktopic;
    if (key && strcmp(ktopic, METRICS_TOPIC) != 0) {
        /* See kbus_default_key(): a key that is an MQTT topic mapping here is the topic. */
        if (strncmp(key, "dsf/", 4) == 0 && strcmp(dsf_bus_kafka_topic(key), ktopic) == 0)
            topic = key;
    } else if (key) {
        int n = snprintf(buf, cap, "dsf/m/%" PRId32 "/%s", partition, key);
        if (n >= 0 && (size_t)n < cap) {
            topic = buf;
        } else if (n >= 0 && (*heap = malloc((size_t)n + 1))) {
            snprintf(*heap, (size_t)n + 1, "dsf/m/%" PRId32 "/%s", partition, key);
            topic = *heap;
        }
    }
    return topic;
}
