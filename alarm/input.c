/*
 * Input: the metric stream (MQTT bucket subscriptions or the Kafka group dsf-alarm), read
 * through the collector's intake (common/ingest.h), and the agents' retained status topics
 * (their Last Will says offline). With mqtt.follow_assign, the buckets are the balancer's
 * assignment on dsf/e/{id}/assign (common/assign_follow.h): a bucket that goes elsewhere takes
 * its series' windows and states with it.
 */
#define DSF_MODULE "input"
#include "alarm/alarm.h"
#include "common/assign_follow.h"
#include "common/bucket.h"
#include "common/status.h"
#include "common/bus.h"
#include "common/log.h"
#include "common/loop.h"
#include "common/topic.h"

#include <event2/event.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct intake {
    struct alarm *a;
    const struct dsf_identity *id;
    int64_t now_ms;
};

static void take_line(void *ctx, const char *text, size_t len, const struct lp_line *l, int missing)
{
    struct intake *in = ctx;
    engine_line(in->a->engine, in->id, l, in->now_ms);
}

static void reject_line(void *ctx, const char *text, size_t len, const char *reason)
{
    struct intake *in = ctx;
    dsf_count(&in->a->stats.lines_rejected, 1);
    log_debug("line of %s/%s/%s ignored: %s", in->id->ns, in->id->mci, in->id->vm, reason);
}

static const struct ingest_ops intake_ops = {take_line, reject_line};

static void handle_metrics(struct alarm *a, const struct dsf_bus_message *m)
{
    struct dsf_identity id;
    uint32_t bucket;
    char why[300];
    if (dsf_topic_parse_metrics(m->topic, &id, &bucket)) {
        dsf_count(&a->stats.topics_rejected, 1);
        return;
    }
    if (dsf_bucket_check(&id, bucket, (uint32_t)a->cfg.mqtt.buckets_total, why, sizeof(why))) {
        static struct dsf_log_limit limit;
        dsf_count(&a->stats.wrong_bucket, 1);
        if (dsf_log_due(&limit, NULL))
            log_warn("message on %s ignored (counted in damselfly_alarm_dropped_total): %s",
                     m->topic, why);
        return;
    }
    /* The overlap of a move, or a prefix a dedicated pool owns: the owner has it. */
    if (!dsf_follow_owns(&a->follow, bucket, &id)) {
        dsf_count(&a->stats.unowned, 1);
        return;
    }
    struct intake in = {a, &id, dsf_mono_ms()};
    ingest_message(&a->ingest, m->fmt, m->payload, m->len, &id, &intake_ops, &in);
}

/* A cleared retained status: the federation layer removed the VM (docs/federation.md). Its
 * alarms would otherwise stay firing (offline) or go nodata for ever. */
static void forget_vm(struct alarm *a, const struct dsf_identity *id)
{
    size_t n = engine_forget_vm(a->engine, id->ns, id->mci, id->vm);
    log_info("%s/%s/%s removed (its status was cleared): forgot its %zu alarm series", id->ns,
             id->mci, id->vm, n);
    if (n)
        alarm_state_dirty(a);
}

/* dsf/a/{ns}/{mci}/{vm}/status with {"status":"online"|"offline",...}, or empty when cleared */
static void handle_status(struct alarm *a, const struct dsf_bus_message *m)
{
    struct dsf_identity id;
    dsf_count(&a->stats.status_messages, 1);
    if (dsf_topic_parse_agent(m->topic, "status", &id)) {
        dsf_count(&a->stats.status_rejected, 1);
        return;
    }
    enum dsf_status st = dsf_status_parse(m->payload, m->len);
    if (st == DSF_STATUS_CLEARED)
        forget_vm(a, &id);
    else if (st == DSF_STATUS_INVALID)
        dsf_count(&a->stats.status_rejected, 1);
    else
        engine_status(a->engine, &id, st == DSF_STATUS_ONLINE, dsf_now_ns(), dsf_mono_ms());
}

/* Kafka: a restarted engine resumes where it stopped instead of evaluating the whole topic
 * again; what was evaluated is committed once a second (a crash re-reads at most that). */
static struct {
    int64_t *next; /* per partition: the offset after the last evaluated, -1 if none */
    int32_t n;
    struct event *timer;
} progress;

static void note_offset(const struct dsf_bus_message *m)
{
    if (m->partition < 0 || m->partition > 65535)
        return;
    if (m->partition >= progress.n) {
        int32_t n = m->partition + 1;
        int64_t *grown = realloc(progress.next, (size_t)n * sizeof(int64_t));
        if (!grown)
            return;
        for (int32_t i = progress.n; i < n; i++)
            grown[i] = -1;
        progress.next = grown;
        progress.n = n;
    }
    progress.next[m->partition] = m->offset;
}

static void commit_offsets(evutil_socket_t fd, short what, void *arg)
{
    struct alarm *a = arg;
    for (int32_t p = 0; a->bus && p < progress.n; p++) {
        if (progress.next[p] < 0)
            continue;
        dsf_bus_commit(a->bus, dsf_topic_metrics_root, p, progress.next[p]);
        progress.next[p] = -1;
    }
}

void alarm_input_stop(struct alarm *a)
{
    dsf_follow_stop(&a->follow);
    if (progress.timer) {
        commit_offsets(-1, 0, a);
        event_free(progress.timer);
        progress.timer = NULL;
    }
    free(progress.next);
    progress.next = NULL;
    progress.n = 0;
}

static int follow_owns(const void *arg, uint32_t bucket, const struct dsf_identity *id)
{
    return dsf_follow_owns(arg, bucket, id);
}

/* Every new assignment drops the series this engine no longer owns, without a transition:
 * those of buckets that moved to another engine (also while this one was away: its restored
 * series), and of tenant prefixes it excludes or does not list (they would go nodata here
 * while their pool evaluates them). Their new owner evaluates them (docs/alarm.md). */
static void follow_message(struct alarm *a, const struct dsf_bus_message *m)
{
    int64_t before = a->follow.epoch;
    dsf_follow_message(&a->follow, m);
    if (a->follow.epoch == before)
        return;
    size_t n = engine_forget_unowned(a->engine, a->follow.total, follow_owns, &a->follow);
    a->stats.series_moved += n;
    if (n) {
        log_info("assignment epoch %lld: forgot %zu alarm series of VMs another engine owns",
                 (long long)a->follow.epoch, n);
        alarm_state_dirty(a);
    }
}

static void on_message(void *arg, const struct dsf_bus_message *m)
{
    struct alarm *a = arg;
    dsf_count(&a->stats.messages, 1);
    if (progress.timer)
        note_offset(m);
    enum dsf_topic_family family = dsf_topic_family(m->topic);
    if (family == DSF_TOPIC_METRICS)
        handle_metrics(a, m);
    else if (family == DSF_TOPIC_AGENT)
        handle_status(a, m);
    else if (family == DSF_TOPIC_ENGINE)
        follow_message(a, m);
}

static void on_connect(void *arg)
{
    struct alarm *a = arg;
    log_info("connected to the bus");
    dsf_follow_on_connect(&a->follow);
}

/* The engine's load in its heartbeat: samples evaluated per second and the series held. */
static void heartbeat_load(void *arg, json_t *hb, double dt)
{
    struct alarm *a = arg;
    uint64_t samples = engine_stats(a->engine)->samples;
    double rate = dt > 0 ? (double)(samples - a->hb_samples) / dt : 0.0;
    a->hb_samples = samples;
    json_object_update_new(hb, json_pack("{s:f, s:I}", "points_per_s", rate, "series",
                                         (json_int_t)engine_series_count(a->engine)));
}

/* MQTT: the role's heartbeat and status on dsf/e/{id}/hb and, following, its assignment. */
static int follow_init(struct alarm *a, struct dsf_bus_options *opt, char *err, size_t errlen)
{
    static char hb_topic[300];
    const struct dsf_follow_hooks hooks = {.arg = a, .load = heartbeat_load};
    return dsf_follow_init(&a->follow, &a->cfg.follow, "alarm", a->cfg.id, dsf_topic_engine,
                           (uint32_t)a->cfg.mqtt.buckets_total, a->cfg.follow.enabled, &hooks, err,
                           errlen) ||
                   dsf_follow_bus_options(&a->follow, opt, hb_topic, sizeof(hb_topic), err, errlen)
               ? -1
               : 0;
}

static int subscribe_buckets(struct alarm *a, char *err, size_t errlen)
{
    uint32_t total = (uint32_t)a->cfg.mqtt.buckets_total;
    uint8_t *want = calloc(total, 1);
    if (!want || dsf_parse_buckets(a->cfg.mqtt.buckets, want, total)) {
        free(want);
        snprintf(err, errlen, "mqtt.buckets '%s': expected all, none or a list like 0-15,32",
                 a->cfg.mqtt.buckets);
        return -1;
    }
    size_t n = 0;
    if (strcmp(a->cfg.mqtt.buckets, "all") == 0) {
        dsf_bus_subscribe(a->bus, dsf_topic_metrics_all, 0);
        n = total;
    } else {
        for (uint32_t b = 0; b < total; b++) {
            char topic[64];
            if (!want[b])
                continue;
            dsf_topic_bucket(topic, sizeof(topic), b);
            dsf_bus_subscribe(a->bus, topic, 0);
            n++;
        }
    }
    free(want);
    log_info("evaluating %zu of %u buckets", n, total);
    return 0;
}

int alarm_input_start(struct alarm *a, char *err, size_t errlen)
{
    const struct alarm_config *cfg = &a->cfg;
    int kafka = strcmp(cfg->input, "kafka") == 0;
    static char client_id[300];
    snprintf(client_id, sizeof(client_id), "dsf-alarm-%s", cfg->id);
    struct dsf_bus_options opt = {
        .client_id = *cfg->mqtt.client_id ? cfg->mqtt.client_id : client_id,
        .max_inflight = 1000,
    };
    if (!kafka && follow_init(a, &opt, err, errlen))
        return -1;
    dsf_bus_connection(&opt, &cfg->mqtt, &cfg->kafka, kafka);
    struct dsf_bus_callbacks cb = {.on_connect = on_connect, .on_message = on_message, .arg = a};
    if (!(a->bus = dsf_bus_new(a->base, &opt, &cb, err, errlen)))
        return -1;
    if (!kafka) {
        /* A client that publishes at QoS 1 while it receives delays what it receives by tens
         * of milliseconds in the MQTT library; events get a connection of their own, so
         * detection latency stays that of the broker. */
        static char pub_id[320];
        snprintf(pub_id, sizeof(pub_id), "%s-events", opt.client_id);
        struct dsf_bus_options po = opt;
        po.client_id = pub_id;
        po.clean_start = 1;
        po.will_topic = po.will_payload = po.connect_payload = NULL; /* the status is a->bus's */
        struct dsf_bus_callbacks pcb = {.arg = a};
        if (!(a->pub = dsf_bus_new(a->base, &po, &pcb, err, errlen)))
            return -1;
    }
    if (kafka) {
        dsf_bus_subscribe(a->bus, dsf_topic_metrics_any, 1);
        progress.timer = event_new(a->base, -1, EV_PERSIST, commit_offsets, a);
        struct timeval tv = {1, 0};
        if (progress.timer)
            event_add(progress.timer, &tv);
        return 0;
    }
    dsf_bus_subscribe(a->bus, dsf_topic_agent_status_all, 1);
    if (!a->cfg.follow.enabled && subscribe_buckets(a, err, errlen))
        return -1; /* not following: "all" is one wildcard subscription */
    return dsf_follow_start(&a->follow, a->bus, a->base, a->cfg.mqtt.buckets, 0, err, errlen);
}
