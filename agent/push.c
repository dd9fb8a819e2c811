#define DSF_MODULE "push"
#include "agent/push.h"
#include "agent/ack.h"
#include "agent/agent.h"
#include "agent/buffer.h"
#include "agent/input.h"
#include "common/bus.h"
#include "common/daemon.h"
#include "common/log.h"
#include "common/loop.h"
#include "common/lp.h"
#include "common/metric_json.h"
#include "common/topic.h"

#include <event2/event.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REQUEST_PEERS_MAX 64        /* netlatency peers in one on-demand request */
#define REQUEST_TIMEOUT_MAX_MS 2000 /* its connect timeout: the loop waits that long */

enum { REFUSED_TOPIC, REFUSED_PAYLOAD, REFUSED_REASONS };

struct push {
    struct agent *agent;
    struct dsf_bus *bus;
    struct event *timer;
    char status_topic[512], req_topic[512], ack_topic[512], reply_prefix[512];
    char online[512], offline[512];
    int64_t window;
    int collector_acks;
    int status_foreign;         /* someone else's status is retained on our topic */
    int64_t status_restored_ms; /* when we last put ours back */
    struct dsf_log_limit ack_warn, request_warn, status_warn;
    uint64_t published, delivered, failed, requests, acks;
    uint64_t acks_refused[ACK_VERDICTS];
    uint64_t requests_refused[REFUSED_REASONS], status_overwritten;
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
    p->status_foreign = 0; /* the bus has just published ours */
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
    if (token == 0)
        return; /* a status or an on-demand answer, not a buffered message */
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
    char why[256];
    size_t released;
    enum ack_verdict v =
        ack_apply(p->agent->buffer, m->payload, m->len, &released, why, sizeof(why));
    if (v == ACK_APPLIED) {
        p->acks++;
        log_debug("ack released %zu message(s)", released);
        publish_queued(p); /* the spool may have refilled the buffer */
        return;
    }
    p->acks_refused[v]++;
    uint64_t held_back;
    if (v == ACK_STALE) /* a message resent after buffer.ack_timeout, acked twice */
        log_debug("ack on %s changes nothing: %s", m->topic, why);
    else if (dsf_log_due(&p->ack_warn, &held_back))
        log_warn("refused an ack on %s, nothing released (%s): %s; %" PRIu64
                 " more refused since the last warning",
                 m->topic, ack_verdict_name(v), why, held_back);
}

/* A topic from the network, cut and with control characters replaced, fit for one log line. */
static const char *printable(const char *s, char *out, size_t cap)
{
    size_t i = 0;
    for (; s[i] && i + 1 < cap; i++)
        out[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
    out[i] = '\0';
    return out;
}

/* Only the agent's own reply topics: a request must not make it publish on another agent's
 * metrics, an alarm topic or anything else its broker account may reach. */
static int request_allowed(struct push *p, const struct dsf_bus_message *m)
{
    const char *topic = m->response_topic;
    if (topic && dsf_topic_is_agent_reply(topic, p->agent->bus_key))
        return 1;
    p->requests_refused[REFUSED_TOPIC]++;
    uint64_t held_back;
    char shown[200];
    if (dsf_log_due(&p->request_warn, &held_back))
        log_warn("refused an on-demand request with %s%s%s: answers go only to %s; %" PRIu64
                 " more refused since the last warning",
                 topic ? "the response topic '" : "no response topic",
                 topic ? printable(topic, shown, sizeof(shown)) : "", topic ? "'" : "",
                 p->reply_prefix, held_back);
    return 0;
}

/* Answers on the request's response topic with its correlation data. */
static void answer(struct push *p, const struct dsf_bus_message *m, const struct dsf_buf *body,
                   const char *fmt)
{
    struct dsf_bus_message reply = {
        .topic = m->response_topic,
        .payload = body->data,
        .len = body->len,
        .correlation = m->correlation,
        .correlation_len = m->correlation_len,
        .fmt = fmt,
    };
    char shown[200];
    if (dsf_bus_publish(p->bus, &reply, 1, 0, 0))
        log_warn("could not answer the on-demand request on %s",
                 printable(m->response_topic, shown, sizeof(shown)));
}

/* What a request asks (docs/agent.md "On-demand"): {} or {"fmt": "json"|"lp"} a collection
 * of every input; {"input": "netlatency", "peers": ["ADDR:PORT", ...], "timeout_ms": N} one
 * netlatency measurement to at most REQUEST_PEERS_MAX literal addresses. */
struct request {
    int lp, netlatency;
    json_t *root;
    struct dsf_strlist peers; /* strings of root */
    int64_t timeout_ms;
};

static int request_peers(struct request *rq, json_t *peers, char *err, size_t errlen)
{
    size_t n = json_array_size(peers), i;
    json_t *v;
    if (!json_is_array(peers) || n > REQUEST_PEERS_MAX)
        return snprintf(err, errlen, "peers: expected an array of at most %d host:port strings",
                        REQUEST_PEERS_MAX),
               -1;
    rq->peers.items = calloc(n ? n : 1, sizeof(char *));
    if (!rq->peers.items)
        return snprintf(err, errlen, "out of memory"), -1;
    json_array_foreach(peers, i, v)
    {
        if (!json_is_string(v))
            return snprintf(err, errlen, "peers: item %zu is not a string", i + 1), -1;
        rq->peers.items[rq->peers.count++] = (char *)json_string_value(v);
    }
    return 0;
}

static int parse_request(const struct dsf_bus_message *m, struct request *rq, char *err,
                         size_t errlen)
{
    if (!m->len)
        return 0;
    rq->root = json_loadb(m->payload, m->len, 0, NULL);
    const char *fmt = json_string_value(json_object_get(rq->root, "fmt"));
    const char *input = json_string_value(json_object_get(rq->root, "input"));
    json_t *t = json_object_get(rq->root, "timeout_ms");
    if (!json_is_object(rq->root))
        return snprintf(err, errlen, "the request is not a JSON object"), -1;
    if (fmt && strcmp(fmt, "json") && strcmp(fmt, "lp"))
        return snprintf(err, errlen, "fmt: expected json or lp"), -1;
    rq->lp = fmt && !strcmp(fmt, "lp");
    if (!input)
        return 0;
    if (strcmp(input, "netlatency"))
        return snprintf(err, errlen, "input: only netlatency may be asked for"), -1;
    rq->netlatency = 1;
    rq->timeout_ms = t ? json_integer_value(t) : 1000;
    if ((t && !json_is_integer(t)) || rq->timeout_ms < 1 || rq->timeout_ms > REQUEST_TIMEOUT_MAX_MS)
        return snprintf(err, errlen, "timeout_ms: expected 1 to %d", REQUEST_TIMEOUT_MAX_MS), -1;
    return request_peers(rq, json_object_get(rq->root, "peers"), err, errlen);
}

/* Refused: {"error": "..."} with fmt "error", counted. */
static void refuse_request(struct push *p, const struct dsf_bus_message *m, const char *why)
{
    struct dsf_buf body = {0};
    p->requests_refused[REFUSED_PAYLOAD]++;
    uint64_t held_back;
    if (dsf_log_due(&p->request_warn, &held_back))
        log_warn("refused an on-demand request: %s; %" PRIu64
                 " more refused since the last warning",
                 why, held_back);
    buf_puts(&body, "{\"error\":");
    json_put_string(&body, why);
    buf_puts(&body, "}");
    answer(p, m, &body, "error");
    buf_free(&body);
}

/* On-demand collection for agents behind NAT: reply on the v5 response topic (one of the
 * agent's own reply topics) with the request's correlation data. */
static void handle_request(struct push *p, const struct dsf_bus_message *m)
{
    struct agent *a = p->agent;
    struct request rq = {0};
    char err[300];
    if (!request_allowed(p, m))
        return;
    batch_reset(&a->snapshot);
    if (parse_request(m, &rq, err, sizeof(err)) < 0 ||
        (rq.netlatency && netlatency_measure(&rq.peers, rq.timeout_ms, &a->snapshot, dsf_now_ns(),
                                             err, sizeof(err)) < 0)) {
        refuse_request(p, m, err);
    } else {
        if (!rq.netlatency)
            agent_collect(a, &a->snapshot, dsf_now_ns());
        buf_reset(&a->snapshot_out);
        if (rq.lp)
            lp_render_batch(&a->snapshot_out, &a->snapshot, &a->identity);
        else
            json_render_batch(&a->snapshot_out, &a->snapshot, &a->identity);
        p->requests++;
        answer(p, m, &a->snapshot_out, rq.lp ? "lp" : "json");
    }
    free(rq.peers.items);
    json_decref(rq.root);
}

/* Publishes our status again (retained) after another one replaced it; at most once a second,
 * so that two agents configured with one identity do not flood the broker. */
static void restore_status(struct push *p)
{
    int64_t now = dsf_mono_ms();
    if (!p->status_foreign || !dsf_bus_connected(p->bus) ||
        (p->status_restored_ms && now - p->status_restored_ms < 1000))
        return;
    struct dsf_bus_message m = {
        .topic = p->status_topic, .payload = p->online, .len = strlen(p->online)};
    if (dsf_bus_publish(p->bus, &m, 1, 1, 0) == 0) {
        p->status_foreign = 0;
        p->status_restored_ms = now;
    }
}

/* What a foreign status says, for the log: never its raw bytes. */
static const char *status_word(const struct dsf_bus_message *m)
{
    if (m->len == 0)
        return "an empty status (cleared)";
    if (memmem(m->payload, m->len, "\"offline\"", 9))
        return "an offline status";
    if (memmem(m->payload, m->len, "\"online\"", 8))
        return "an online status of another run or address";
    return "a status of another shape";
}

/* The retained status is what the alarm engine and the control side believe: anything on our
 * status topic but what we last published (a forged offline, a cleared status, a second agent
 * with this identity, the Will of a connection the broker replaced) is overwritten with ours.
 * Our own publish comes back here unchanged and is left alone. */
static void handle_status(struct push *p, const struct dsf_bus_message *m)
{
    size_t len = strlen(p->online);
    if (m->len == len && memcmp(m->payload, p->online, len) == 0)
        return;
    p->status_overwritten++;
    p->status_foreign = 1;
    uint64_t held_back;
    if (dsf_log_due(&p->status_warn, &held_back))
        log_warn("another client published %s on %s%s: publishing ours again; %" PRIu64
                 " more since the last warning",
                 status_word(m), m->topic, m->retained ? " (retained)" : "", held_back);
    restore_status(p);
}

static void on_message(void *arg, const struct dsf_bus_message *m)
{
    struct push *p = arg;
    if (strcmp(m->topic, p->ack_topic) == 0)
        handle_ack(p, m);
    else if (strcmp(m->topic, p->req_topic) == 0)
        handle_request(p, m);
    else if (strcmp(m->topic, p->status_topic) == 0)
        handle_status(p, m);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct push *p = arg;
    size_t n =
        buffer_requeue_stale(p->agent->buffer, dsf_mono_ms(), p->agent->cfg.buffer.ack_timeout_ms);
    if (n)
        log_info("%zu message(s) unacknowledged after %lldms: sending again", n,
                 (long long)p->agent->cfg.buffer.ack_timeout_ms);
    restore_status(p);
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
                    "End-to-end acks from collectors that released messages.", NULL, &p->acks);
    static const char *const refused[ACK_VERDICTS] = {
        [ACK_STALE] = "stale",
        [ACK_MALFORMED] = "malformed",
        [ACK_UNKNOWN_BOOT] = "unknown_boot",
        [ACK_UNSENT] = "unsent",
    };
    metrics_add_u64_by(m, "damselfly_agent_acks_rejected_total", DSF_COUNTER,
                       "Acks that released nothing: stale (all released already) or refused "
                       "whole (malformed, unknown boot, seqs never published).",
                       "reason", refused, ACK_VERDICTS, p->acks_refused);
    metrics_add_u64(m, "damselfly_agent_requests_total", DSF_COUNTER,
                    "On-demand collection requests answered over the bus.", NULL, &p->requests);
    static const char *const request_refused[REFUSED_REASONS] = {
        [REFUSED_TOPIC] = "response_topic",
        [REFUSED_PAYLOAD] = "payload",
    };
    metrics_add_u64_by(m, "damselfly_agent_requests_refused_total", DSF_COUNTER,
                       "On-demand requests refused: no response topic or one not under the "
                       "agent's reply topic (not answered), or a payload the agent does not "
                       "take (answered with an error).",
                       "reason", request_refused, REFUSED_REASONS, p->requests_refused);
    metrics_add_u64(m, "damselfly_agent_status_overwritten_total", DSF_COUNTER,
                    "Statuses another client published on the agent's status topic (the agent "
                    "publishes its own again).",
                    NULL, &p->status_overwritten);
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
    dsf_topic_agent_key(p->reply_prefix, sizeof(p->reply_prefix), a->bus_key, "reply[/...]");
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
        dsf_bus_subscribe(p->bus, p->status_topic, 1); /* to see a status we did not write */
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
    /* Before the offline status goes out: its echo would arrive after the loop has stopped. */
    if (p->bus && strcmp(p->agent->cfg.push.mode, "kafka") != 0)
        dsf_bus_unsubscribe(p->bus, p->status_topic);
    dsf_bus_free(p->bus);
    free(p);
}
