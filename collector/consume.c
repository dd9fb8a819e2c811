/*
 * Input: MQTT bucket subscriptions (from config, or following the balancer's retained
 * assignment on dsf/c/{id}/assign: new buckets are subscribed before old ones are dropped)
 * with a persistent session, or the Kafka consumer group on dsf.metrics. Also the
 * collector's heartbeat with its Last Will.
 */
#define DSF_MODULE "consume"
#include "collector/aggregate.h"
#include "collector/collector.h"
#include "collector/writer.h"
#include "common/bucket.h"
#include "common/bus.h"
#include "common/log.h"
#include "common/loop.h"
#include "common/topic.h"

#include <event2/event.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int parse_buckets(const char *spec, uint8_t *flags, uint32_t total)
{
    return dsf_parse_buckets(spec, flags, total);
}

/* Applies a new bucket set: subscribe to the new buckets first, then drop the old ones, so
 * no message of a moving bucket falls between two collectors. The first set applied after a
 * connect unsubscribes every bucket not owned, flagged or not: a persistent session may hold
 * subscriptions of a previous run, or ones dropped while the link was down. */
static void apply_buckets(struct collector *c, const uint8_t *want)
{
    uint32_t total = (uint32_t)c->cfg.mqtt.buckets_total;
    char topic[64];
    size_t added = 0, removed = 0;
    for (uint32_t b = 0; b < total; b++) {
        if (want[b] && !c->subscribed[b]) {
            dsf_topic_bucket(topic, sizeof(topic), b);
            dsf_bus_subscribe(c->bus, topic, 1);
            c->subscribed[b] = 1;
            if (c->cfg.mqtt.follow_assign) /* a move: the previous owner hands over */
                aggregate_bucket_gained(c->agg, b);
            added++;
        }
    }
    for (uint32_t b = 0; b < total; b++) {
        if (!want[b] && (c->subscribed[b] || !c->swept)) {
            dsf_topic_bucket(topic, sizeof(topic), b);
            dsf_bus_unsubscribe(c->bus, topic);
            if (c->subscribed[b])
                aggregate_bucket_lost(c->agg, b);
            removed += c->subscribed[b];
            c->subscribed[b] = 0;
        }
    }
    c->swept = dsf_bus_connected(c->bus);
    if (added || removed)
        log_info("buckets: +%zu -%zu", added, removed);
}

const char *const collector_assign_refused_names[COLLECTOR_ASSIGN_REASONS] = {
    [ASSIGN_STALE] = "stale",
    [ASSIGN_MALFORMED] = "malformed",
    [ASSIGN_RANGE] = "range",
    [ASSIGN_AHEAD] = "ahead",
};

/* The assignment's buckets as flags, or NULL (and the reason counted and logged). */
static uint8_t *assign_buckets(struct collector *c, json_t *buckets, long long epoch)
{
    uint32_t total = (uint32_t)c->cfg.mqtt.buckets_total;
    uint8_t *want = calloc(total, 1);
    size_t i;
    json_t *v;
    if (!want)
        return NULL;
    json_array_foreach(buckets, i, v)
    {
        json_int_t b = json_integer_value(v);
        if (!json_is_integer(v) || b < 0 || b >= (json_int_t)total) {
            c->stats.assign_refused[ASSIGN_RANGE]++;
            log_warn("refusing assignment epoch %lld: bucket numbers outside 0..%u", epoch,
                     total - 1);
            free(want);
            return NULL;
        }
        want[b] = 1;
    }
    return want;
}

/* Epochs are the balancer's wall-clock time in ms: one further ahead of this collector's
 * clock than assign.max_ahead is implausible (a forged 2^63-1 would lock out every real
 * assignment for good), one not above the epoch applied is stale. */
static int epoch_acceptable(struct collector *c, long long epoch, const uint8_t *want)
{
    long long now_ms = (long long)(dsf_now_ns() / 1000000);
    long long limit = now_ms + (long long)c->cfg.assign.max_ahead_ms;
    if (epoch > limit) {
        c->stats.assign_refused[ASSIGN_AHEAD]++;
        log_warn("refusing assignment epoch %lld: more than assign.max_ahead (%lld ms) ahead of "
                 "this collector's clock (epochs are the balancer's clock in ms; limit now %lld)",
                 epoch, (long long)c->cfg.assign.max_ahead_ms, limit);
        return 0;
    }
    if (epoch > c->assign_epoch)
        return 1;
    if (epoch == c->assign_epoch &&
        memcmp(want, c->subscribed, (size_t)c->cfg.mqtt.buckets_total) == 0) {
        log_debug("assignment epoch %lld again (the retained copy): nothing to do", epoch);
        return 0;
    }
    c->stats.assign_refused[ASSIGN_STALE]++;
    log_warn("refusing stale assignment epoch %lld: epoch %lld is applied", epoch,
             (long long)c->assign_epoch);
    return 0;
}

static void handle_assign(struct collector *c, const struct dsf_bus_message *m)
{
    if (!c->subscribed)
        return; /* Kafka: the group assigns partitions */
    json_error_t jerr;
    json_t *root = json_loadb(m->payload, m->len, 0, &jerr), *buckets;
    json_int_t epoch = -1;
    if (!root || json_unpack(root, "{s:I, s:o}", "epoch", &epoch, "buckets", &buckets) ||
        !json_is_array(buckets) || epoch < 1) {
        c->stats.assign_refused[ASSIGN_MALFORMED]++;
        log_warn("ignoring a malformed assignment on %s (want {\"epoch\":N,\"buckets\":[...]} "
                 "with N >= 1)",
                 m->topic);
        json_decref(root);
        return;
    }
    uint8_t *want = assign_buckets(c, buckets, (long long)epoch);
    if (want && epoch_acceptable(c, (long long)epoch, want)) {
        c->assign_epoch = epoch;
        log_info("assignment epoch %lld: %zu buckets", (long long)epoch, json_array_size(buckets));
        apply_buckets(c, want);
        collector_heartbeat(c); /* the balancer waits for it before taking buckets elsewhere */
    }
    free(want);
    json_decref(root);
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
        handle_assign(c, m);
    }
}

/* A reconnect may find a session that still holds buckets dropped while the link was down. */
static void on_connect(void *arg)
{
    struct collector *c = arg;
    if (!c->subscribed)
        return;
    c->swept = 0;
    uint8_t *want = malloc((size_t)c->cfg.mqtt.buckets_total);
    if (!want)
        return; /* swept with the next assignment */
    memcpy(want, c->subscribed, (size_t)c->cfg.mqtt.buckets_total);
    apply_buckets(c, want);
    free(want);
}

static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The collector's identity as the balancer reads it: {"id","role","pool"} and, when status
 * is set, "status". Built with jansson so an id cannot break the JSON. */
static json_t *status_object(const struct collector *c, const char *status)
{
    json_t *o =
        json_pack("{s:s, s:s, s:s}", "id", c->cfg.id, "role", "collector", "pool", c->cfg.pool);
    if (o && status)
        json_object_set_new(o, "status", json_string(status));
    return o;
}

/* A status payload (the Will, the online record); NULL when out of memory. */
static char *status_payload(const struct collector *c, const char *status)
{
    json_t *o = status_object(c, status);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return s;
}

static double rate(double delta, double dt)
{
    return dt > 0 ? delta / dt : 0.0;
}

void collector_heartbeat(struct collector *c)
{
    int64_t now = dsf_mono_ms();
    double dt = c->hb_last.ms ? (double)(now - c->hb_last.ms) / 1000.0 : 0;
    double cpu = cpu_seconds();
    size_t nb = 0;
    for (int64_t b = 0; c->subscribed && b < c->cfg.mqtt.buckets_total; b++)
        nb += c->subscribed[b];
    int kafka = strcmp(c->cfg.input, "kafka") == 0;
    json_t *o = status_object(c, "online");
    if (!o)
        return;
    json_object_update_new(
        o, json_pack("{s:I, s:I, s:f, s:f, s:f, s:I, s:I}", "epoch", (json_int_t)c->assign_epoch,
                     "buckets", (json_int_t)nb, "msgs_per_s",
                     rate((double)(c->stats.messages - c->hb_last.msgs), dt), "points_per_s",
                     rate((double)(c->stats.lines_in - c->hb_last.lines), dt), "cpu",
                     rate(cpu - c->hb_last.cpu, dt), "pending_bytes",
                     (json_int_t)writer_pending_bytes(c->writer), "lag",
                     (json_int_t)(kafka ? dsf_bus_lag(c->bus) : -1)));
    c->hb_last.msgs = c->stats.messages;
    c->hb_last.lines = c->stats.lines_in;
    c->hb_last.cpu = cpu;
    c->hb_last.ms = now;
    char *payload = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(7));
    json_decref(o);
    if (!payload)
        return;
    char topic[300];
    dsf_topic_collector(topic, sizeof(topic), c->cfg.id, "hb");
    struct dsf_bus_message m = {.topic = topic, .payload = payload, .len = strlen(payload)};
    dsf_bus_publish(c->bus, &m, 0, 0, 0);
    free(payload);
}

static void on_heartbeat(evutil_socket_t fd, short what, void *arg)
{
    collector_heartbeat(arg);
}

int consume_start(struct collector *c, char *err, size_t errlen)
{
    const struct collector_config *cfg = &c->cfg;
    int kafka = strcmp(cfg->input, "kafka") == 0;
    static char client_id[300], hb_topic[300];
    snprintf(client_id, sizeof(client_id), "dsf-collector-%s", cfg->id);
    dsf_topic_collector(hb_topic, sizeof(hb_topic), cfg->id, "hb");
    /* The online record on every connect overwrites the retained offline Will a previous
     * run left: the balancer must not take a live collector for dead. */
    char *offline = status_payload(c, "offline"), *online = status_payload(c, "online");
    if (!offline || !online) {
        free(offline);
        free(online);
        snprintf(err, errlen, "status payloads: out of memory");
        return -1;
    }
    /* A persistent session (mqtt.session_expiry): what arrives while the collector
     * restarts is queued. */
    struct dsf_bus_options opt = {
        .client_id = *cfg->mqtt.client_id ? cfg->mqtt.client_id : client_id,
        .will_topic = kafka ? NULL : hb_topic,
        .will_payload = offline,
        .connect_payload = online,
        .max_inflight = 1000,
    };
    dsf_bus_connection(&opt, &cfg->mqtt, &cfg->kafka, kafka);
    struct dsf_bus_callbacks cb = {.on_message = on_message, .on_connect = on_connect, .arg = c};
    c->bus = dsf_bus_new(c->base, &opt, &cb, err, errlen);
    free(offline); /* the bus keeps copies */
    free(online);
    if (!c->bus)
        return -1;
    if (kafka) {
        dsf_bus_subscribe(c->bus, dsf_topic_metrics_any, 1);
    } else {
        uint32_t total = (uint32_t)cfg->mqtt.buckets_total;
        c->subscribed = calloc(total, 1);
        uint8_t *want = calloc(total, 1);
        /* Following, it owns nothing until its first assignment: buckets another collector
         * took over while this one was down must not be consumed twice. */
        const char *spec = cfg->mqtt.follow_assign ? "none" : cfg->mqtt.buckets;
        if (!c->subscribed || !want || parse_buckets(spec, want, total)) {
            free(want);
            snprintf(err, errlen, "mqtt.buckets '%s': expected all, none or a list like 0-15,32",
                     cfg->mqtt.buckets);
            return -1;
        }
        c->swept = 1; /* not connected yet: on_connect sweeps */
        apply_buckets(c, want);
        free(want);
        if (cfg->mqtt.follow_assign) {
            char topic[300];
            dsf_topic_collector(topic, sizeof(topic), cfg->id, "assign");
            dsf_bus_subscribe(c->bus, topic, 1);
        }
    }
    c->heartbeat = event_new(c->base, -1, EV_PERSIST, on_heartbeat, c);
    struct timeval tv = {(time_t)(cfg->heartbeat_ms / 1000),
                         (suseconds_t)(cfg->heartbeat_ms % 1000 * 1000)};
    event_add(c->heartbeat, &tv);
    return 0;
}
