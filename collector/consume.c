/*
 * Input: MQTT bucket subscriptions (from config, or following the balancer's retained
 * assignment on dsf/c/{id}/assign through common/assign_follow.h) with a persistent session,
 * or the Kafka consumer group on dsf.metrics. The aggregation's handover rides on the
 * follower's bucket gained/lost hooks.
 */
#define DSF_MODULE "consume"
#include "collector/aggregate.h"
#include "collector/collector.h"
#include "collector/writer.h"
#include "common/assign_follow.h"
#include "common/bucket.h"
#include "common/bus.h"
#include "common/log.h"
#include "common/loop.h"
#include "common/topic.h"

#include <event2/event.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

int parse_buckets(const char *spec, uint8_t *flags, uint32_t total)
{
    return dsf_parse_buckets(spec, flags, total);
}

static void bucket_gained(void *arg, uint32_t bucket)
{
    struct collector *c = arg;
    aggregate_bucket_gained(c->agg, bucket);
}

static void bucket_lost(void *arg, uint32_t bucket)
{
    struct collector *c = arg;
    aggregate_bucket_lost(c->agg, bucket);
}

static double rate(double delta, double dt)
{
    return dt > 0 ? delta / dt : 0.0;
}

/* The collector's load in its heartbeat: rates over the interval, the store's backlog and,
 * with Kafka, the consumer lag (-1 otherwise). */
static void heartbeat_load(void *arg, json_t *hb, double dt)
{
    struct collector *c = arg;
    int kafka = strcmp(c->cfg.input, "kafka") == 0;
    json_object_update_new(
        hb, json_pack("{s:f, s:f, s:I, s:I}", "msgs_per_s",
                      rate((double)(c->stats.messages - c->hb_last.msgs), dt), "points_per_s",
                      rate((double)(c->stats.lines_in - c->hb_last.lines), dt), "pending_bytes",
                      (json_int_t)writer_pending_bytes(c->writer), "lag",
                      (json_int_t)(kafka ? dsf_bus_lag(c->bus) : -1)));
    c->hb_last.msgs = c->stats.messages;
    c->hb_last.lines = c->stats.lines_in;
}

static void on_message(void *arg, const struct dsf_bus_message *m)
{
    struct collector *c = arg;
    if (dsf_topic_family(m->topic) == DSF_TOPIC_METRICS) {
        struct collector_message cm = {
            .topic = m->topic,
            .payload = m->payload,
            .len = m->len,
            .boot = m->boot,
            .fmt = m->fmt,
            .seq = m->seq,
            .has_seq = m->has_seq,
            .seq_invalid = m->seq_invalid,
            .partition = strcmp(c->cfg.input, "kafka") == 0 ? m->partition : -1,
            .offset = m->offset,
        };
        pipeline_handle(c, &cm);
    } else if (dsf_topic_family(m->topic) == DSF_TOPIC_COLLECTOR) { /* its assignment */
        dsf_follow_message(&c->follow, m);
    }
}

static void on_connect(void *arg)
{
    struct collector *c = arg;
    dsf_follow_on_connect(&c->follow);
}

int consume_start(struct collector *c, char *err, size_t errlen)
{
    const struct collector_config *cfg = &c->cfg;
    int kafka = strcmp(cfg->input, "kafka") == 0;
    static char client_id[300], hb_topic[300];
    snprintf(client_id, sizeof(client_id), "dsf-collector-%s", cfg->id);
    const struct dsf_follow_hooks hooks = {
        .arg = c, .gained = bucket_gained, .lost = bucket_lost, .load = heartbeat_load};
    /* A persistent session (mqtt.session_expiry): what arrives while the collector
     * restarts is queued. */
    struct dsf_bus_options opt = {
        .client_id = *cfg->mqtt.client_id ? cfg->mqtt.client_id : client_id,
        .max_inflight = 1000,
    };
    if (dsf_follow_init(&c->follow, &cfg->follow, "collector", cfg->id, dsf_topic_collector,
                        (uint32_t)cfg->mqtt.buckets_total, !kafka, &hooks, err, errlen) ||
        dsf_follow_bus_options(&c->follow, &opt, hb_topic, sizeof(hb_topic), err, errlen))
        return -1;
    if (kafka)
        opt.will_topic = NULL;
    dsf_bus_connection(&opt, &cfg->mqtt, &cfg->kafka, kafka);
    struct dsf_bus_callbacks cb = {.on_message = on_message, .on_connect = on_connect, .arg = c};
    c->bus = dsf_bus_new(c->base, &opt, &cb, err, errlen);
    if (!c->bus)
        return -1;
    if (kafka)
        dsf_bus_subscribe(c->bus, dsf_topic_metrics_any, 1);
    return dsf_follow_start(&c->follow, c->bus, c->base, cfg->mqtt.buckets, 1, err, errlen);
}
