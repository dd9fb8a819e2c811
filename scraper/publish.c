/*
 * The bus, as each pulled VM's agent would use it: its lines on dsf/m/{bucket}/{ns}/{mci}/{vm}
 * (Kafka: dsf.metrics keyed ns/mci/vm) in messages of at most scrape.max_message bytes, and
 * its retained status on dsf/a/{ns}/{mci}/{vm}/status. The scraper's own connection has its
 * own status and Last Will on dsf/scraper/{id}/status. Nothing is buffered: a message the bus
 * does not take is dropped and counted (the next scrape brings fresh values).
 */
#define DSF_MODULE "publish"
#include "common/bus.h"
#include "common/http.h"
#include "scraper/scraper.h"

#include <stdio.h>
#include <string.h>

static void publish_failed(struct scraper *s, const char *topic, size_t lines)
{
    s->stats.publish_failed_messages++;
    s->stats.publish_failed_lines += lines;
    uint64_t held_back;
    if (dsf_log_due(&s->publish_warn, &held_back))
        log_warn("could not publish on %s (bus %s): %zu lines dropped; %llu more failures since "
                 "the last warning",
                 topic, s->bus && dsf_bus_connected(s->bus) ? "full" : "not connected", lines,
                 (unsigned long long)held_back);
}

void publish_flush(struct scrape_target *t)
{
    struct scraper *s = t->owner;
    if (!s->message.len)
        return;
    struct dsf_bus_message m = {
        .topic = t->metrics_topic,
        .payload = s->message.data,
        .len = s->message.len,
        .key = t->key,
        .key_len = strlen(t->key),
        .fmt = "lp",
    };
    if (s->message.oom || !s->bus || dsf_bus_publish(s->bus, &m, 1, 0, ++s->next_token) < 0) {
        publish_failed(s, t->metrics_topic, s->message_lines);
    } else {
        s->stats.messages_published++;
        s->stats.lines_published += s->message_lines;
    }
    buf_reset(&s->message);
    s->message.oom = 0;
    s->message_lines = 0;
}

void publish_line(struct scrape_target *t, const char *line, size_t len)
{
    struct scraper *s = t->owner;
    if (len + 1 > s->cfg.max_message_bytes) {
        s->stats.rejected[REJECT_TOO_LONG]++;
        return;
    }
    if (s->message.len + len + 1 > s->cfg.max_message_bytes)
        publish_flush(t);
    buf_put(&s->message, line, len);
    buf_putc(&s->message, '\n');
    s->message_lines++;
}

static void status_json(const struct scrape_target *t, const char *status, char *out, size_t cap)
{
    const struct scraper *s = t->owner;
    snprintf(out, cap,
             "{\"status\":\"%s\",\"ns\":\"%s\",\"mci\":\"%s\",\"vm\":\"%s\",\"boot\":\"%s\","
             "\"version\":\"%s\",\"address\":\"\",\"interval_ms\":%lld,\"via\":\"scraper\","
             "\"scraper\":\"%s\"}",
             status, t->id.ns, t->id.mci, t->id.vm, t->boot, DSF_VERSION,
             (long long)s->cfg.interval_ms, s->cfg.id);
}

void publish_status(struct scrape_target *t, int cleared)
{
    struct scraper *s = t->owner;
    char payload[1024] = "";
    if (s->kafka)
        return; /* as Kafka agents: the status topics are MQTT's alone */
    if (!cleared)
        status_json(t, t->state == TARGET_UP ? "online" : "offline", payload, sizeof(payload));
    struct dsf_bus_message m = {
        .topic = t->status_topic,
        .payload = payload,
        .len = strlen(payload),
        .key = t->key,
        .key_len = strlen(t->key),
    };
    s->stats.status_changes++;
    /* Not connected: on_connect publishes every target's status again. */
    if (dsf_bus_publish(s->bus, &m, 1, 1, 0) < 0)
        log_warn("could not publish the status of %s now: it is sent at the next connect", t->key);
}

static void on_connect(void *arg)
{
    struct scraper *s = arg;
    for (struct scrape_target *t = s->targets; t; t = t->next)
        if (t->state != TARGET_PENDING)
            publish_status(t, 0);
}

static void on_delivered(void *arg, uint64_t token, int ok)
{
    struct scraper *s = arg;
    if (!token)
        return; /* a status */
    if (ok)
        s->stats.messages_delivered++;
    else
        publish_failed(s, "the metrics topic", 0);
}

int publish_start(struct scraper *s, char *err, size_t errlen)
{
    const struct scraper_config *c = &s->cfg;
    int kafka = s->kafka = !strcmp(c->output, "kafka");
    char client_id[200];
    snprintf(s->self_topic, sizeof(s->self_topic), "dsf/scraper/%s/status", c->id);
    snprintf(s->self_online, sizeof(s->self_online),
             "{\"status\":\"online\",\"id\":\"%s\",\"version\":\"%s\"}", c->id, DSF_VERSION);
    snprintf(s->self_offline, sizeof(s->self_offline),
             "{\"status\":\"offline\",\"id\":\"%s\",\"version\":\"%s\"}", c->id, DSF_VERSION);
    snprintf(client_id, sizeof(client_id), "dsf-scraper-%s", c->id);
    struct dsf_bus_options opt = {
        .client_id = *c->mqtt.client_id ? c->mqtt.client_id : client_id,
        .will_topic = kafka ? NULL : s->self_topic,
        .will_payload = s->self_offline,
        .connect_payload = s->self_online,
        .max_inflight = 1000,
    };
    dsf_bus_connection(&opt, &c->mqtt, &c->kafka, kafka);
    struct dsf_bus_callbacks cb = {
        .on_connect = on_connect, .on_delivered = on_delivered, .arg = s};
    s->bus = dsf_bus_new(s->base, &opt, &cb, err, errlen);
    return s->bus ? 0 : -1;
}

void publish_stop(struct scraper *s)
{
    dsf_bus_free(s->bus);
    s->bus = NULL;
    buf_free(&s->message);
}
