/*
 * MQTT v5 backend on paho MQTTAsync. paho calls back on its own threads; every callback
 * copies what it needs into a bus_event and posts it to the loop, where the component's
 * callbacks run. Nothing here touches loop-owned state from a paho thread.
 */
#define DSF_MODULE "mqtt"
#include "common/bus_impl.h"
#include "common/log.h"
#include "common/loop.h"

#include <MQTTAsync.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum event_kind { EV_CONNECTED, EV_LOST, EV_DELIVERED, EV_MESSAGE };

struct received {
    struct dsf_bus_message m;
    /* the strings m points into */
    char *topic, *boot, *fmt, *response_topic;
    void *payload, *correlation;
};

struct bus_event {
    enum event_kind kind;
    int ok;
    uint64_t token;
    struct received *msg;
    char reason[96];
};

struct subscription {
    char *topic;
    int qos;
};

struct mqtt_bus {
    MQTTAsync client;
    struct dsf_bus_callbacks cb;
    struct dsf_handoff *events;
    int connected; /* loop-owned */
    char *url, *will_topic, *will_payload, *connect_payload;
    struct subscription *subs;
    size_t nsubs;
};

struct publish_ctx {
    struct mqtt_bus *bus;
    uint64_t token;
};

static void free_received(struct received *r)
{
    if (!r)
        return;
    free(r->topic);
    free(r->payload);
    free(r->boot);
    free(r->fmt);
    free(r->response_topic);
    free(r->correlation);
    free(r);
}

static void post(struct mqtt_bus *b, const struct bus_event *ev)
{
    if (dsf_handoff_post(b->events, ev) == 0)
        return;
    /* The hand-off queue is sized far above the in-flight window; losing an event would
     * leave a message unconfirmed, which the sender's buffer retries after its timeout. */
    log_warn("event queue full: dropped a %s event", ev->kind == EV_MESSAGE ? "message" : "status");
    free_received(ev->msg);
}

static void on_connected(void *ctx, char *cause)
{
    struct bus_event ev = {.kind = EV_CONNECTED};
    post(ctx, &ev);
}

static void on_lost(void *ctx, char *cause)
{
    struct bus_event ev = {.kind = EV_LOST};
    snprintf(ev.reason, sizeof(ev.reason), "%s", cause ? cause : "connection lost");
    post(ctx, &ev);
}

static void on_connect_failure(void *ctx, MQTTAsync_failureData5 *resp)
{
    struct mqtt_bus *b = ctx;
    log_warn("cannot connect to %s: %s (code %d); retrying in the background", b->url,
             resp && resp->message ? resp->message : "no answer", resp ? resp->code : 0);
}

static void on_publish_done(struct publish_ctx *pc, int ok)
{
    struct bus_event ev = {.kind = EV_DELIVERED, .ok = ok, .token = pc->token};
    post(pc->bus, &ev);
    free(pc);
}

static void on_publish_ok(void *ctx, MQTTAsync_successData5 *resp)
{
    struct publish_ctx *pc = ctx;
    /* A QoS 1 PUBACK with a reason code >= 0x80 is a refusal (e.g. quota, not authorised). */
    on_publish_done(pc, !resp || resp->reasonCode < 0x80);
}

static void on_publish_fail(void *ctx, MQTTAsync_failureData5 *resp)
{
    on_publish_done(ctx, 0);
}

static char *dup_bytes(const void *p, size_t n)
{
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, p, n);
        s[n] = '\0';
    }
    return s;
}

static void copy_properties(struct received *r, const MQTTProperties *props)
{
    for (int i = 0; i < props->count; i++) {
        const MQTTProperty *p = &props->array[i];
        if (p->identifier == MQTTPROPERTY_CODE_USER_PROPERTY) {
            const char *name = p->value.data.data;
            size_t nlen = (size_t)p->value.data.len;
            const char *val = p->value.value.data;
            size_t vlen = (size_t)p->value.value.len;
            if (nlen == 3 && memcmp(name, "seq", 3) == 0 && !r->m.has_seq && !r->m.seq_invalid) {
                /* Strictly digits: strtoull would take "-1" or an overflow as 2^64-1. */
                r->m.has_seq = dsf_bus_parse_seq(val, vlen, &r->m.seq) == 0;
                r->m.seq_invalid = !r->m.has_seq;
            } else if (nlen == 4 && memcmp(name, "boot", 4) == 0 && !r->boot) {
                r->m.boot = r->boot = dup_bytes(val, vlen);
            } else if (nlen == 3 && memcmp(name, "fmt", 3) == 0 && !r->fmt) {
                r->m.fmt = r->fmt = dup_bytes(val, vlen);
            }
        } else if (p->identifier == MQTTPROPERTY_CODE_RESPONSE_TOPIC && !r->response_topic) {
            r->m.response_topic = r->response_topic =
                dup_bytes(p->value.data.data, (size_t)p->value.data.len);
        } else if (p->identifier == MQTTPROPERTY_CODE_CORRELATION_DATA && !r->correlation) {
            r->correlation = dup_bytes(p->value.data.data, (size_t)p->value.data.len);
            r->m.correlation = r->correlation;
            r->m.correlation_len = (size_t)p->value.data.len;
        }
    }
}

static int on_arrived(void *ctx, char *topic, int topic_len, MQTTAsync_message *msg)
{
    struct mqtt_bus *b = ctx;
    struct received *r = calloc(1, sizeof(*r));
    size_t tlen = topic_len > 0 ? (size_t)topic_len : strlen(topic);
    if (!r || !(r->topic = dup_bytes(topic, tlen)) ||
        !(r->payload = dup_bytes(msg->payload, (size_t)msg->payloadlen))) {
        if (r)
            free_received(r);
        return 0; /* paho offers it again later */
    }
    r->m.topic = r->topic;
    r->m.payload = r->payload;
    r->m.len = (size_t)msg->payloadlen;
    r->m.retained = msg->retained;
    copy_properties(r, &msg->properties);
    struct bus_event ev = {.kind = EV_MESSAGE, .msg = r};
    if (dsf_handoff_post(b->events, &ev)) {
        free_received(r);
        return 0; /* loop is behind: let paho redeliver rather than lose it */
    }
    MQTTAsync_freeMessage(&msg);
    MQTTAsync_free(topic);
    return 1;
}

static void resubscribe(struct mqtt_bus *b)
{
    for (size_t i = 0; i < b->nsubs; i++) {
        MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
        int rc = MQTTAsync_subscribe(b->client, b->subs[i].topic, b->subs[i].qos, &ro);
        if (rc != MQTTASYNC_SUCCESS)
            log_warn("subscribe %s failed (code %d)", b->subs[i].topic, rc);
    }
}

/* The retained status on the Will's topic: online after each connect, offline on a clean
 * stop (the broker sends the Will itself only when the link is lost). */
static void publish_status(struct mqtt_bus *b, char *payload)
{
    if (!b->will_topic || !payload)
        return;
    MQTTAsync_message m = MQTTAsync_message_initializer;
    m.payload = payload;
    m.payloadlen = (int)strlen(payload);
    m.qos = 1;
    m.retained = 1;
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    MQTTAsync_sendMessage(b->client, b->will_topic, &m, &ro);
}

static void dispatch(void *arg, void *item)
{
    struct mqtt_bus *b = arg;
    struct bus_event *ev = item;
    switch (ev->kind) {
    case EV_CONNECTED:
        b->connected = 1;
        log_info("connected to %s", b->url);
        publish_status(b, b->connect_payload);
        resubscribe(b);
        if (b->cb.on_connect)
            b->cb.on_connect(b->cb.arg);
        break;
    case EV_LOST:
        b->connected = 0;
        log_warn("lost connection to %s: %s; reconnecting", b->url, ev->reason);
        if (b->cb.on_disconnect)
            b->cb.on_disconnect(b->cb.arg, ev->reason);
        break;
    case EV_DELIVERED:
        if (b->cb.on_delivered)
            b->cb.on_delivered(b->cb.arg, ev->token, ev->ok);
        break;
    case EV_MESSAGE:
        if (b->cb.on_message)
            b->cb.on_message(b->cb.arg, &ev->msg->m);
        free_received(ev->msg);
        break;
    }
}

static void add_user_property(MQTTProperties *props, const char *name, const char *value)
{
    MQTTProperty p = {.identifier = MQTTPROPERTY_CODE_USER_PROPERTY};
    p.value.data.data = (char *)name;
    p.value.data.len = (int)strlen(name);
    p.value.value.data = (char *)value;
    p.value.value.len = (int)strlen(value);
    MQTTProperties_add(props, &p);
}

static int mqtt_publish(void *impl, const struct dsf_bus_message *m, int qos, int retain,
                        uint64_t token)
{
    struct mqtt_bus *b = impl;
    if (!b->connected)
        return -1;
    struct publish_ctx *pc = malloc(sizeof(*pc));
    if (!pc)
        return -1;
    pc->bus = b;
    pc->token = token;
    MQTTAsync_message msg = MQTTAsync_message_initializer;
    msg.payload = (void *)m->payload;
    msg.payloadlen = (int)m->len;
    msg.qos = qos;
    msg.retained = retain;
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    ro.onSuccess5 = on_publish_ok;
    ro.onFailure5 = on_publish_fail;
    ro.context = pc;
    char seq[24];
    if (m->has_seq) {
        snprintf(seq, sizeof(seq), "%" PRIu64, m->seq);
        add_user_property(&msg.properties, "seq", seq);
    }
    if (m->boot)
        add_user_property(&msg.properties, "boot", m->boot);
    if (m->fmt)
        add_user_property(&msg.properties, "fmt", m->fmt);
    if (m->response_topic) {
        MQTTProperty p = {.identifier = MQTTPROPERTY_CODE_RESPONSE_TOPIC};
        p.value.data.data = (char *)m->response_topic;
        p.value.data.len = (int)strlen(m->response_topic);
        MQTTProperties_add(&msg.properties, &p);
    }
    if (m->correlation) {
        MQTTProperty p = {.identifier = MQTTPROPERTY_CODE_CORRELATION_DATA};
        p.value.data.data = (char *)m->correlation;
        p.value.data.len = (int)m->correlation_len;
        MQTTProperties_add(&msg.properties, &p);
    }
    int rc = MQTTAsync_sendMessage(b->client, m->topic, &msg, &ro);
    MQTTProperties_free(&msg.properties);
    if (rc != MQTTASYNC_SUCCESS) {
        free(pc);
        if (rc != MQTTASYNC_MAX_MESSAGES_INFLIGHT && rc != MQTTASYNC_DISCONNECTED)
            log_warn("publish to %s failed (code %d)", m->topic, rc);
        return -1;
    }
    return 0;
}

static int mqtt_subscribe(void *impl, const char *topic, int qos)
{
    struct mqtt_bus *b = impl;
    struct subscription *subs = realloc(b->subs, (b->nsubs + 1) * sizeof(*subs));
    if (!subs)
        return -1;
    b->subs = subs;
    subs[b->nsubs].topic = strdup(topic);
    subs[b->nsubs].qos = qos;
    b->nsubs++;
    if (!b->connected)
        return 0; /* subscribed on connect */
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    return MQTTAsync_subscribe(b->client, topic, qos, &ro) == MQTTASYNC_SUCCESS ? 0 : -1;
}

static int mqtt_unsubscribe(void *impl, const char *topic)
{
    struct mqtt_bus *b = impl;
    for (size_t i = 0; i < b->nsubs; i++) {
        if (strcmp(b->subs[i].topic, topic) == 0) {
            free(b->subs[i].topic);
            b->subs[i] = b->subs[--b->nsubs];
            break;
        }
    }
    if (!b->connected)
        return 0;
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    return MQTTAsync_unsubscribe(b->client, topic, &ro) == MQTTASYNC_SUCCESS ? 0 : -1;
}

static int mqtt_connected(const void *impl)
{
    return ((const struct mqtt_bus *)impl)->connected;
}

/* Messages still queued when the bus stops (a retained status arriving during shutdown). */
static void discard_event(void *arg, void *item)
{
    (void)arg;
    struct bus_event *ev = item;
    if (ev->kind == EV_MESSAGE)
        free_received(ev->msg);
}

static void mqtt_destroy(void *impl)
{
    struct mqtt_bus *b = impl;
    if (b->client) {
        if (b->connected)
            publish_status(b, b->will_payload);
        MQTTAsync_disconnectOptions dopts = MQTTAsync_disconnectOptions_initializer5;
        dopts.timeout = 2000;
        MQTTAsync_disconnect(b->client, &dopts);
        for (int i = 0; i < 40 && MQTTAsync_isConnected(b->client); i++)
            MQTTAsync_waitForCompletion(b->client, 0, 50);
        MQTTAsync_destroy(&b->client);
    }
    dsf_handoff_free(b->events, discard_event);
    for (size_t i = 0; i < b->nsubs; i++)
        free(b->subs[i].topic);
    free(b->subs);
    free(b->url);
    free(b->will_topic);
    free(b->will_payload);
    free(b->connect_payload);
    free(b);
}

static const struct dsf_bus_ops mqtt_ops = {
    .publish = mqtt_publish,
    .subscribe = mqtt_subscribe,
    .unsubscribe = mqtt_unsubscribe,
    .connected = mqtt_connected,
    .destroy = mqtt_destroy,
};

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static int start_connect(struct mqtt_bus *b, const struct dsf_bus_options *opt, char *err,
                         size_t errlen)
{
    MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer5;
    co.keepAliveInterval = opt->keepalive_s > 0 ? opt->keepalive_s : 30;
    co.cleanstart = opt->clean_start;
    co.maxInflight = opt->max_inflight > 0 ? opt->max_inflight : 20;
    co.automaticReconnect = 1;
    co.minRetryInterval = 1;
    co.maxRetryInterval = 8;
    co.connectTimeout = 10;
    co.username = opt->username;
    co.password = opt->password;
    co.context = b;
    co.onFailure5 = on_connect_failure;
    MQTTProperties props = MQTTProperties_initializer;
    if (!opt->clean_start) {
        MQTTProperty p = {.identifier = MQTTPROPERTY_CODE_SESSION_EXPIRY_INTERVAL};
        p.value.integer4 = opt->session_expiry_s ? opt->session_expiry_s : 3600;
        MQTTProperties_add(&props, &p);
        co.connectProperties = &props;
    }
    MQTTAsync_willOptions will = MQTTAsync_willOptions_initializer;
    if (b->will_topic) {
        will.topicName = b->will_topic;
        will.message = b->will_payload;
        will.retained = 1;
        will.qos = 1;
        co.will = &will;
    }
#ifdef DSF_HAVE_TLS
    MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;
    if (opt->tls_ca || opt->tls_cert || strncmp(b->url, "ssl://", 6) == 0 ||
        strncmp(b->url, "mqtts://", 8) == 0) {
        ssl.trustStore = opt->tls_ca;
        ssl.keyStore = opt->tls_cert;
        ssl.privateKey = opt->tls_key;
        ssl.enableServerCertAuth = !opt->tls_insecure;
        ssl.verify = !opt->tls_insecure;
        co.ssl = &ssl;
    }
#else
    if (opt->tls_ca || opt->tls_cert || strncmp(b->url, "ssl://", 6) == 0) {
        snprintf(err, errlen, "%s: this build has no TLS support (DAMSELFLY_TLS=OFF)", b->url);
        return -1;
    }
#endif
    int rc = MQTTAsync_connect(b->client, &co);
    MQTTProperties_free(&props);
    if (rc != MQTTASYNC_SUCCESS) {
        snprintf(err, errlen, "%s: cannot start connecting (paho code %d)", b->url, rc);
        return -1;
    }
    return 0;
}

void *dsf_bus_mqtt_new(struct event_base *base, const struct dsf_bus_options *opt,
                       const struct dsf_bus_callbacks *cb, const struct dsf_bus_ops **ops,
                       char *err, size_t errlen)
{
    struct mqtt_bus *b = calloc(1, sizeof(*b));
    if (!b) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    b->cb = *cb;
    b->url = strdup(opt->brokers ? opt->brokers : "tcp://127.0.0.1:1883");
    b->will_topic = dup_or_null(opt->will_topic);
    b->will_payload = dup_or_null(opt->will_payload);
    b->connect_payload = dup_or_null(opt->connect_payload);
    b->events = dsf_handoff_new(base, sizeof(struct bus_event), 65536, dispatch, b);
    MQTTAsync_createOptions cro = MQTTAsync_createOptions_initializer5;
    cro.sendWhileDisconnected = 0; /* the caller's buffer holds messages while offline */
    /* Publishes queued faster than the socket takes them (a collector acking a burst of
     * agents) count against this even while connected; paho's 100 refused acks by the
     * thousand (-12), each one costing its agent a resend. */
    cro.maxBufferedMessages = 65536;
    int rc = b->events ? MQTTAsync_createWithOptions(&b->client, b->url,
                                                     opt->client_id ? opt->client_id : "damselfly",
                                                     MQTTCLIENT_PERSISTENCE_NONE, NULL, &cro)
                       : MQTTASYNC_FAILURE;
    if (rc != MQTTASYNC_SUCCESS) {
        snprintf(err, errlen,
                 "%s: invalid MQTT URL or options (paho code %d); expected "
                 "tcp://host:port or ssl://host:port",
                 b->url, rc);
        b->client = NULL;
        mqtt_destroy(b);
        return NULL;
    }
    MQTTAsync_setCallbacks(b->client, b, on_lost, on_arrived, NULL);
    MQTTAsync_setConnected(b->client, b, on_connected);
    if (start_connect(b, opt, err, errlen)) {
        mqtt_destroy(b);
        return NULL;
    }
    *ops = &mqtt_ops;
    return b;
}
