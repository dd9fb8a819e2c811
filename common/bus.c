#include "common/bus_impl.h"
#include "common/topic.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct dsf_bus {
    const struct dsf_bus_ops *ops;
    void *impl;
};

struct dsf_bus *dsf_bus_new(struct event_base *base, const struct dsf_bus_options *opt,
                            const struct dsf_bus_callbacks *cb, char *err, size_t errlen)
{
    struct dsf_bus *bus = calloc(1, sizeof(*bus));
    if (!bus) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (opt->kind == DSF_BUS_MQTT) {
        bus->impl = dsf_bus_mqtt_new(base, opt, cb, &bus->ops, err, errlen);
    } else {
#ifdef DSF_HAVE_KAFKA
        bus->impl = dsf_bus_kafka_new(base, opt, cb, &bus->ops, err, errlen);
#else
        snprintf(err, errlen, "this build has no Kafka support (built with DAMSELFLY_KAFKA=OFF)");
#endif
    }
    if (!bus->impl) {
        free(bus);
        return NULL;
    }
    return bus;
}

int dsf_bus_publish(struct dsf_bus *bus, const struct dsf_bus_message *m, int qos, int retain,
                    uint64_t token)
{
    return bus->ops->publish(bus->impl, m, qos, retain, token);
}

int dsf_bus_subscribe(struct dsf_bus *bus, const char *topic, int qos)
{
    return bus->ops->subscribe(bus->impl, topic, qos);
}

int dsf_bus_unsubscribe(struct dsf_bus *bus, const char *topic)
{
    return bus->ops->unsubscribe(bus->impl, topic);
}

int dsf_bus_commit(struct dsf_bus *bus, const char *topic, int32_t partition, int64_t offset)
{
    return bus->ops->commit ? bus->ops->commit(bus->impl, topic, partition, offset) : 0;
}

int dsf_bus_pause(struct dsf_bus *bus, int paused)
{
    return bus->ops->pause ? bus->ops->pause(bus->impl, paused) : -1;
}

int64_t dsf_bus_lag(struct dsf_bus *bus)
{
    return bus->ops->lag ? bus->ops->lag(bus->impl) : -1;
}

int dsf_bus_connected(const struct dsf_bus *bus)
{
    return bus->ops->connected(bus->impl);
}

void dsf_bus_free(struct dsf_bus *bus)
{
    if (!bus)
        return;
    bus->ops->destroy(bus->impl);
    free(bus);
}

const char *dsf_bus_kafka_topic(const char *t)
{
    const char *kafka = dsf_topic_kafka(t);
    return kafka ? kafka : t;
}

int dsf_bus_parse_seq(const char *text, size_t len, uint64_t *out)
{
    if (len == 0 || len > 20)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned d = (unsigned char)text[i] - '0';
        if (d > 9 || v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}
