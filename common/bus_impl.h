/* What a bus backend provides; only bus.c and the backends include this. */
#ifndef DSF_BUS_IMPL_H
#define DSF_BUS_IMPL_H

#include "common/bus.h"

struct dsf_bus_ops {
    int (*publish)(void *impl, const struct dsf_bus_message *m, int qos, int retain,
                   uint64_t token);
    int (*subscribe)(void *impl, const char *topic, int qos);
    int (*unsubscribe)(void *impl, const char *topic);
    int (*commit)(void *impl, const char *topic, int32_t partition, int64_t offset);
    int (*connected)(const void *impl);
    int (*pause)(void *impl, int paused);
    int64_t (*lag)(void *impl);
    void (*destroy)(void *impl);
};

/* Each returns its impl and ops, or NULL with err. */
void *dsf_bus_mqtt_new(struct event_base *base, const struct dsf_bus_options *opt,
                       const struct dsf_bus_callbacks *cb, const struct dsf_bus_ops **ops,
                       char *err, size_t errlen);
void *dsf_bus_kafka_new(struct event_base *base, const struct dsf_bus_options *opt,
                        const struct dsf_bus_callbacks *cb, const struct dsf_bus_ops **ops,
                        char *err, size_t errlen);

/* A "seq" property or header: 1 to 20 decimal digits and nothing else (no sign, no space),
 * within 64 bits. 0 with *out, or -1. */
int dsf_bus_parse_seq(const char *text, size_t len, uint64_t *out);

#endif
