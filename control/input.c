/*
 * What the controller listens to: alarm events (dsf/alarm/#, Kafka dsf.alarms), the agents'
 * retained status with their Last Will, the collectors' heartbeats (an observer the breaker
 * depends on), the agents' answers to on-demand requests (handed to control/ondemand.c),
 * Alertmanager webhooks (POST /api/v1/alertmanager), and at start the alarm engines' active
 * alarms so that an event missed while the controller was down is still acted on, once.
 */
#define DSF_MODULE "control"
#include "common/status.h"
#include "common/bus.h"
#include "common/http.h"
#include "common/http_client.h"
#include "common/log.h"
#include "common/loop.h"
#include "common/topic.h"
#include "control/control_impl.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char alarm_topics[] = "dsf/alarm/#";
static const char collector_hb[] = "dsf/c/+/hb";
static const char ondemand_replies[] = "dsf/a/+/+/+/reply/control/#"; /* control/ondemand.c */

static void on_connect(void *arg)
{
    struct control *c = arg;
    c->bus_up = 1;
    guards_observer(c->guards, "bus", 1, ctl_wall_ms());
    log_info("bus connected");
    /* Not before: until the bus is up the controller is blind and blocks every decision,
     * and an occurrence blocked is handled - the alarm that fired while it was down would
     * be lost whenever an engine answered before the broker. */
    if (!c->reconciled) {
        c->reconciled = 1;
        ctl_input_reconcile(c);
    }
}

static void on_disconnect(void *arg, const char *reason)
{
    struct control *c = arg;
    c->bus_up = 0;
    /* Blind: whatever the fleet seems to do now says nothing about the fleet. */
    guards_observer(c->guards, "bus", 0, ctl_wall_ms());
    log_warn("bus connection lost (%s): no action until it is back and the breaker's hold has "
             "passed",
             reason ? reason : "unknown");
}

static void on_status(struct control *c, const struct dsf_bus_message *m)
{
    struct dsf_identity id;
    enum dsf_status st = dsf_status_parse(m->payload, m->len);
    if (dsf_topic_parse_agent(m->topic, "status", &id) || st == DSF_STATUS_INVALID) {
        dsf_count(&c->stats.status_rejected, 1);
        return;
    }
    if (!fleet_status(c->fleet, id.ns, id.mci, id.vm, st, ctl_wall_ms()))
        return;
    if (st == DSF_STATUS_CLEARED) {
        guards_vm_forget(c->guards, id.ns, id.mci, id.vm);
    } else {
        int nodata = fleet_vm_nodata(c->fleet, id.ns, id.mci, id.vm, 0);
        guards_vm_health(c->guards, id.ns, id.mci, id.vm, st == DSF_STATUS_ONLINE && nodata == 0,
                         ctl_wall_ms());
    }
    ctl_breaker_tick(c);
    ctl_actions_tick(c);
}

/* ---- collectors: alive while they beat (or say online); the observer is unhealthy when
 * collectors were seen and none is alive. ---- */

static void collectors_check(struct control *c, int64_t now)
{
    if (!c->ncollectors)
        return;
    int alive = 0;
    for (size_t i = 0; i < c->ncollectors; i++)
        alive += c->collectors[i].online &&
                 now - c->collectors[i].last_ms <= c->cfg.collector_timeout_ms;
    guards_observer(c->guards, "collectors", alive > 0, now);
}

static void on_heartbeat(struct control *c, const struct dsf_bus_message *m)
{
    json_t *root = json_loadb(m->payload, m->len, 0, NULL);
    const char *id = json_string_value(json_object_get(root, "id"));
    const char *st = json_string_value(json_object_get(root, "status"));
    size_t i = 0;
    while (id && i < c->ncollectors && strcmp(c->collectors[i].id, id) != 0)
        i++;
    if (id && st && strlen(id) < sizeof(c->collectors[0].id) && i < CTL_COLLECTORS_MAX) {
        if (i == c->ncollectors)
            snprintf(c->collectors[c->ncollectors++].id, sizeof(c->collectors[0].id), "%s", id);
        c->collectors[i].online = strcmp(st, "offline") != 0;
        c->collectors[i].last_ms = ctl_wall_ms();
        collectors_check(c, c->collectors[i].last_ms);
    }
    json_decref(root);
}

static void on_message(void *arg, const struct dsf_bus_message *m)
{
    struct control *c = arg;
    if (!strncmp(m->topic, "dsf/alarm/", 10) || !strcmp(m->topic, "dsf.alarms")) {
        struct ctl_event e;
        char err[256];
        if (ctl_event_parse_alarm(m->payload, m->len, &e, err, sizeof(err)) < 0) {
            dsf_count(&c->stats.rejected[0], 1);
            log_warn("alarm event on %s refused: %s", m->topic, err);
            return;
        }
        ctl_decide(c, &e, "bus");
    } else if (!strncmp(m->topic, "dsf/c/", 6)) {
        on_heartbeat(c, m);
    } else if (strstr(m->topic, "/reply/control/")) {
        ctl_ondemand_reply(c, m);
    } else {
        on_status(c, m);
    }
}

int ctl_input_start(struct control *c, char *err, size_t errlen)
{
    int kafka = !strcmp(c->cfg.input, "kafka");
    static char client_id[300];
    snprintf(client_id, sizeof(client_id), "dsf-control-%s", c->cfg.id);
    struct dsf_bus_options opt = {
        .client_id = *c->cfg.mqtt.client_id ? c->cfg.mqtt.client_id : client_id,
        .clean_start = 1,
        .max_inflight = 1000,
    };
    dsf_bus_connection(&opt, &c->cfg.mqtt, &c->cfg.kafka, kafka);
    struct dsf_bus_callbacks cb = {.on_connect = on_connect,
                                   .on_disconnect = on_disconnect,
                                   .on_message = on_message,
                                   .arg = c};
    if (!(c->bus = dsf_bus_new(c->base, &opt, &cb, err, errlen)))
        return -1;
    /* Records and cleared statuses go out on a connection of their own: a client that
     * publishes at QoS 1 while it receives delays what it receives. */
    static char pub_id[320];
    snprintf(pub_id, sizeof(pub_id), "%s-actions", opt.client_id);
    struct dsf_bus_options po = opt;
    po.client_id = pub_id;
    struct dsf_bus_callbacks pcb = {.arg = c};
    if (!kafka && !(c->pub = dsf_bus_new(c->base, &po, &pcb, err, errlen)))
        return -1;
    ctl_output_set_bus(c->out, kafka ? c->bus : c->pub);
    /* Until it connects, the controller is blind. */
    guards_observer(c->guards, "bus", 0, ctl_wall_ms());
    dsf_bus_subscribe(c->bus, alarm_topics, 1);
    dsf_bus_subscribe(c->bus, dsf_topic_agent_status_all, 1);
    if (!kafka) {
        dsf_bus_subscribe(c->bus, collector_hb, 0);
        dsf_bus_subscribe(c->bus, ondemand_replies, 1);
    }
    return 0;
}

void ctl_input_stop(struct control *c)
{
    if (c->out)
        ctl_output_set_bus(c->out, NULL);
    dsf_bus_free(c->bus);
    dsf_bus_free(c->pub);
    c->bus = c->pub = NULL;
}

void ctl_input_tick(struct control *c)
{
    collectors_check(c, ctl_wall_ms());
}

/* ---- the start-up reconcile ---- */

struct engine_call {
    struct control *c;
    char engine[256];
};

static int reconciled_event(void *arg, const struct ctl_event *e)
{
    ctl_decide(arg, e, "reconcile");
    return 0;
}

static void engine_answered(void *arg, const struct dsf_http_response *r)
{
    struct engine_call *call = arg;
    struct control *c = call->c;
    char err[256];
    size_t bad = 0;
    if (r->status != 200) {
        log_warn("alarm engine %s: GET /api/v1/alarms: %s%ld: events missed while the "
                 "controller was down are not acted on",
                 call->engine,
                 r->status  ? "status "
                 : r->error ? r->error
                            : "no answer ",
                 r->status);
    } else if (ctl_event_parse_alarm_list(r->body, r->len, call->engine, reconciled_event, c, &bad,
                                          err, sizeof(err)) < 0) {
        log_warn("alarm engine %s: GET /api/v1/alarms: %s", call->engine, err);
    } else {
        log_info("alarm engine %s: active alarms read%s", call->engine,
                 bad ? " (some items refused)" : "");
    }
    dsf_count(&c->stats.rejected[2], bad);
    free(call);
}

void ctl_input_reconcile(struct control *c)
{
    for (size_t i = 0; i < c->cfg.engines.count; i++) {
        struct engine_call *call = calloc(1, sizeof(*call));
        char url[600];
        if (!call)
            return;
        call->c = c;
        snprintf(call->engine, sizeof(call->engine), "%s", c->cfg.engines.items[i]);
        snprintf(url, sizeof(url), "%s/api/v1/alarms", call->engine);
        /* An engine with http.token guards its reads too. */
        const char *headers[] = {c->engine_auth ? c->engine_auth[i] : NULL, NULL};
        const char *ca = c->cfg.engine_ca_file;
        struct dsf_http_request req = {.method = "GET",
                                       .url = url,
                                       .headers = headers,
                                       .timeout_ms = 10000,
                                       .ca_file = ca && *ca ? ca : NULL};
        if (dsf_http_client_send(c->http, &req, engine_answered, call) < 0) {
            log_warn("alarm engine %s: cannot ask for its alarms", call->engine);
            free(call);
        }
    }
}

/* ---- Alertmanager webhooks ---- */

static int webhook_event(void *arg, const struct ctl_event *e)
{
    ctl_decide(arg, e, "alertmanager");
    return 0;
}

static void serve_alertmanager(struct evhttp_request *req, void *arg)
{
    struct control *c = arg;
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        ctl_reply_json(req, 405, json_pack("{s:s}", "error", "POST an Alertmanager webhook"));
        return;
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    if (len > c->cfg.webhook_max_bytes) {
        dsf_count(&c->stats.webhook_too_large, 1);
        ctl_reply_json(req, 413, json_pack("{s:s}", "error", "body larger than webhook.max_bytes"));
        return;
    }
    char *body = (char *)evbuffer_pullup(in, (ssize_t)len);
    char err[256];
    size_t bad = 0;
    if (ctl_event_parse_alertmanager(body ? body : "", len, webhook_event, c, &bad, err,
                                     sizeof(err)) < 0) {
        dsf_count(&c->stats.rejected[1], 1);
        ctl_reply_json(req, 400, json_pack("{s:s}", "error", err));
        return;
    }
    dsf_count(&c->stats.rejected[1], bad);
    ctl_reply_json(req, 200, json_pack("{s:I}", "refused_alerts", (json_int_t)bad));
}

int ctl_input_register(struct control *c, struct dsf_http_server *http)
{
    return dsf_http_route(http, "/api/v1/alertmanager", serve_alertmanager, c, DSF_HTTP_WRITES);
}
