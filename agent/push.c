#define DSF_MODULE "push"
#include "agent/push.h"
#include "agent/agent.h"
#include "agent/buffer.h"
#include "common/bus.h"
#include "common/daemon.h"
#include "common/log.h"
#include "common/loop.h"
#include "common/lp.h"
#include "common/metric_json.h"
#include "common/topic.h"

#include <event2/event.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct push {
    struct agent *agent;
    struct dsf_bus *bus;
    struct event *timer;
    char status_topic[512], req_topic[512], ack_topic[512];
    char online[512], offline[512];
    int64_t window;
    int collector_acks;
    uint64_t published, delivered, failed, requests, acks;
};

static void publish_queued(struct push *p)
{
    struct agent *a = p->agent;
    struct buffer *b = a->buffer;
    struct buffer_entry *e;
    while ((int64_t)b->inflight < p->window && (e = buffer_next_queued(b))) {
        struct dsf_bus_message m = {
            .topic = a->bucket_topic,
            .payload = e->data,
            .len = e->len,
            .key = a->bus_key,
            .seq = e->seq,
            .has_seq = 1,
            .boot = e->boot,
            .fmt = a->cfg.push.format,
            .key_len = strlen(a->bus_key),
        };
        if (dsf_bus_publish(p->bus, &m, 1, 0, e->seq))
            return; /* not connected or the client is full: retried on the next event */
        buffer_mark_inflight(b, e, dsf_mono_ms());
        p->published++;
    }
}

void push_kick(struct push *p)
{
    if (p && dsf_bus_connected(p->bus))
        publish_queued(p);
}

int push_connected(const struct push *p)
{
    return p && dsf_bus_connected(p->bus);
}

static void on_connect(void *arg)
{
    struct push *p = arg;
    /* Whatever was in flight on the old connection may be lost: send it again, in order. */
    buffer_requeue_inflight(p->agent->buffer);
    publish_queued(p);
}

static void on_disconnect(void *arg, const char *reason)
{
    struct push *p = arg;
    buffer_requeue_inflight(p->agent->buffer);
}

static void on_delivered(void *arg, uint64_t token, int ok)
{
    struct push *p = arg;
    if (ok)
        p->delivered++;
    else
        p->failed++;
    buffer_delivered(p->agent->buffer, token, ok);
    publish_queued(p);
}

/* {"boot": "...", "ranges": [[lo, hi], ...]}: the collector stored exactly these. */
static void handle_ack(struct push *p, const struct dsf_bus_message *m)
{
    json_error_t jerr;
    json_t *root = json_loadb(m->payload, m->len, 0, &jerr), *ranges = NULL;
    const char *boot = NULL;
    if (!root || json_unpack(root, "{s:s, s:o}", "boot", &boot, "ranges", &ranges) ||
        !json_is_array(ranges)) {
        log_warn("ignoring a malformed ack on %s", m->topic);
        json_decref(root);
        return;
    }
    size_t i;
    json_t *r;
    json_array_foreach(ranges, i, r)
    {
        json_int_t lo = -1, hi = -1;
        if (json_unpack(r, "[II]", &lo, &hi) == 0 && lo >= 0 && hi >= lo)
            buffer_ack_range(p->agent->buffer, boot, (uint64_t)lo, (uint64_t)hi);
    }
    p->acks++;
    json_decref(root);
    publish_queued(p);
}

/* On-demand collection for agents behind NAT: reply on the v5 response topic with the
 * request's correlation data. The request payload may be {"fmt":"lp"}; JSON otherwise. */
static void handle_request(struct push *p, const struct dsf_bus_message *m)
{
    struct agent *a = p->agent;
    if (!m->response_topic || !*m->response_topic) {
        log_warn("on-demand request without a response topic: ignored");
        return;
    }
    int want_lp = m->len && memmem(m->payload, m->len, "\"lp\"", 4) != NULL;
    batch_reset(&a->snapshot);
    agent_collect(a, &a->snapshot, dsf_now_ns());
    buf_reset(&a->snapshot_out);
    if (want_lp)
        lp_render_batch(&a->snapshot_out, &a->snapshot, &a->identity);
    else
        json_render_batch(&a->snapshot_out, &a->snapshot, &a->identity);
    struct dsf_bus_message reply = {
        .topic = m->response_topic,
        .payload = a->snapshot_out.data,
        .len = a->snapshot_out.len,
        .correlation = m->correlation,
        .correlation_len = m->correlation_len,
        .fmt = want_lp ? "lp" : "json",
    };
    p->requests++;
    if (dsf_bus_publish(p->bus, &reply, 1, 0, 0))
        log_warn("could not answer the on-demand request on %s", m->response_topic);
}

static void on_message(void *arg, const struct dsf_bus_message *m)
{
    struct push *p = arg;
    if (strcmp(m->topic, p->ack_topic) == 0)
        handle_ack(p, m);
    else if (strcmp(m->topic, p->req_topic) == 0)
        handle_request(p, m);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct push *p = arg;
    size_t n =
        buffer_requeue_stale(p->agent->buffer, dsf_mono_ms(), p->agent->cfg.buffer.ack_timeout_ms);
    if (n)
        log_info("%zu message(s) unacknowledged after %lldms: sending again", n,
                 (long long)p->agent->cfg.buffer.ack_timeout_ms);
    push_kick(p);
}

static void status_json(struct agent *a, const char *status, char *out, size_t cap)
{
    snprintf(out, cap,
             "{\"status\":\"%s\",\"ns\":\"%s\",\"mci\":\"%s\",\"vm\":\"%s\",\"boot\":\"%s\","
             "\"version\":\"%s\",\"address\":\"%s\",\"interval_ms\":%lld}",
             status, a->cfg.identity.ns, a->cfg.identity.mci, a->cfg.identity.vm, a->boot,
             DSF_VERSION, a->http ? a->http->listen : "", (long long)a->cfg.interval_ms);
}

static void register_metrics(struct push *p)
{
    struct dsf_metrics *m = &p->agent->metrics;
    metrics_add_u64(m, "damselfly_agent_messages_published_total", DSF_COUNTER,
                    "Messages handed to the broker client (resends included).", NULL,
                    &p->published);
    metrics_add_u64(m, "damselfly_agent_messages_delivered_total", DSF_COUNTER,
                    "Messages the broker confirmed.", NULL, &p->delivered);
    metrics_add_u64(m, "damselfly_agent_messages_failed_total", DSF_COUNTER,
                    "Publishes the broker refused or that failed; they are sent again.", NULL,
                    &p->failed);
    metrics_add_u64(m, "damselfly_agent_acks_total", DSF_COUNTER,
                    "End-to-end acknowledgements received from collectors.", NULL, &p->acks);
    metrics_add_u64(m, "damselfly_agent_requests_total", DSF_COUNTER,
                    "On-demand collection requests answered over the bus.", NULL, &p->requests);
}

struct push *push_new(struct agent *a, char *err, size_t errlen)
{
    struct push *p = calloc(1, sizeof(*p));
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->agent = a;
    p->window = a->cfg.push.max_inflight;
    p->collector_acks = strcmp(a->cfg.buffer.ack, "collector") == 0;
    const struct agent_config *c = &a->cfg;
    dsf_topic_agent_key(p->status_topic, sizeof(p->status_topic), a->bus_key, "status");
    dsf_topic_agent_key(p->req_topic, sizeof(p->req_topic), a->bus_key, "req");
    dsf_topic_agent_key(p->ack_topic, sizeof(p->ack_topic), a->bus_key, "ack");
    status_json(a, "online", p->online, sizeof(p->online));
    status_json(a, "offline", p->offline, sizeof(p->offline));
    char client_id[256];
    if (*c->mqtt.client_id)
        snprintf(client_id, sizeof(client_id), "%s", c->mqtt.client_id);
    else
        snprintf(client_id, sizeof(client_id), "dsf-agent-%s-%s-%s", c->identity.ns,
                 c->identity.mci, c->identity.vm);
    int kafka = strcmp(c->push.mode, "kafka") == 0;
    struct dsf_bus_options opt = {
        .client_id = client_id,
        .will_topic = kafka ? NULL : p->status_topic,
        .will_payload = p->offline,
        .connect_payload = p->online,
        .max_inflight = (int)c->push.max_inflight,
    };
    dsf_bus_connection(&opt, &c->mqtt, &c->kafka, kafka);
    struct dsf_bus_callbacks cb = {on_connect, on_disconnect, on_delivered, on_message, p};
    p->bus = dsf_bus_new(a->base, &opt, &cb, err, errlen);
    if (!p->bus) {
        free(p);
        return NULL;
    }
    if (!kafka) {
        dsf_bus_subscribe(p->bus, p->req_topic, 1);
        if (p->collector_acks)
            dsf_bus_subscribe(p->bus, p->ack_topic, 1);
    }
    p->timer = event_new(a->base, -1, EV_PERSIST, on_timer, p);
    struct timeval one_second = {1, 0};
    event_add(p->timer, &one_second);
    register_metrics(p);
    return p;
}

void push_free(struct push *p)
{
    if (!p)
        return;
    if (p->timer)
        event_free(p->timer);
    dsf_bus_free(p->bus);
    free(p);
}
