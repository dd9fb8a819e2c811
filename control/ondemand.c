/*
 * On-demand collection through the controller (docs/control.md "On-demand collection"). A
 * request goes to the VM's dsf/a/{ns}/{mci}/{vm}/req with an MQTT v5 response topic of the
 * controller's own, dsf/a/{ns}/{mci}/{vm}/reply/control/{id} (the agent's account may publish
 * there, the controller's may read it: agents behind NAT answer too), and the id as
 * correlation data; the answer comes back on the controller's bus connection. Nothing blocks
 * the loop: an HTTP request is a call with a timer, each request on the bus a wait found by
 * its id. A netlatency matrix is one call with a wait per VM of the MCI, each VM asked to
 * connect to all the others; the rows that came in by the timeout are answered.
 */
#define DSF_MODULE "control"
#include "common/bus.h"
#include "common/http.h"
#include "common/log.h"
#include "control/control_impl.h"
#include "control/query.h"

#include <event2/event.h>
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OD_ID_HEX 32
#define OD_PEER_MAX 300
/* The agents' connect timeout in a netlatency request at most: they measure within it, and
 * their answers must still reach the controller within ondemand.timeout. */
#define OD_AGENT_TIMEOUT_MS 1000
static const char reply_level[] = "/reply/control/";

enum od_result {
    OD_OK,
    OD_PARTIAL,
    OD_TIMEOUT,
    OD_REFUSED,
    OD_BAD_REQUEST,
    OD_NOT_FOUND,
    OD_UNAVAILABLE,
    OD_AGENT_ERROR,
    OD_RESULTS
};

static const char *const result_names[OD_RESULTS] = {
    "ok", "partial", "timeout", "refused", "bad_request", "not_found", "unavailable", "agent_error",
};

struct od_call;

/* One request on the bus waiting for its answer. */
struct od_wait {
    struct dsf_hlink link; /* ondemand.waiting, by the id's hash */
    struct od_call *call;
    int waiting; /* in the table */
    char id[OD_ID_HEX + 1];
    char topic[256]; /* the reply topic it must come on */
};

/* One HTTP request: a VM's collection (n = 1) or the matrix of an MCI (a row per VM). */
struct od_call {
    struct dsf_http_deferred reply;
    struct ondemand *od;
    struct od_call *prev, *next; /* ondemand.calls */
    struct event *timer;
    int netlatency, lp;
    char ns[QP_NAME_MAX + 1], mci[QP_NAME_MAX + 1];
    size_t n, left, answered; /* rows; rows waiting; rows measured */
    struct od_wait *waits;
    char (*vm)[FED_NAME_MAX];
    char (*peer)[OD_PEER_MAX]; /* where the others connect to, "" for nowhere */
    json_t *matrix, *errors;   /* netlatency */
};

struct ondemand {
    struct control *c;
    struct dsf_htab waiting;
    struct od_call *calls;
    uint64_t results[OD_RESULTS];
    uint64_t unmatched; /* answers no request waits for (late, forged, duplicated) */
};

static void call_free(struct od_call *call)
{
    struct ondemand *od = call->od;
    for (size_t i = 0; i < call->n; i++)
        if (call->waits[i].waiting)
            dsf_htab_remove(&od->waiting, &call->waits[i].link);
    dsf_http_deferred_take(&call->reply); /* unanswered: the server, going, frees it */
    if (call->timer)
        event_free(call->timer);
    if (call->prev)
        call->prev->next = call->next;
    else if (od->calls == call)
        od->calls = call->next;
    if (call->next)
        call->next->prev = call->prev;
    json_decref(call->matrix);
    json_decref(call->errors);
    free(call->waits);
    free(call->vm);
    free(call->peer);
    free(call);
}

/* Answers (when the client is still there), counts, and ends the call. */
static void call_reply(struct od_call *call, enum od_result res, int code, const char *type,
                       const void *body, size_t len)
{
    call->od->results[res]++;
    struct evhttp_request *req = dsf_http_deferred_take(&call->reply);
    if (req)
        dsf_http_reply(req, code, type, body, len);
    call_free(call);
}

static void call_reply_json(struct od_call *call, enum od_result res, int code, json_t *o)
{
    call->od->results[res]++;
    dsf_http_deferred_reply_json(&call->reply, code, o);
    call_free(call);
}

static struct od_call *call_new(struct ondemand *od, struct evhttp_request *req,
                                const struct qp_request *r, size_t n)
{
    struct od_call *call = calloc(1, sizeof(*call));
    if (!call)
        return NULL;
    call->od = od;
    call->n = n;
    call->lp = r->lp;
    call->netlatency = r->form == QP_NETLATENCY;
    snprintf(call->ns, sizeof(call->ns), "%s", r->ns);
    snprintf(call->mci, sizeof(call->mci), "%s", r->mci);
    call->waits = calloc(n ? n : 1, sizeof(*call->waits));
    call->vm = calloc(n ? n : 1, sizeof(*call->vm));
    call->peer = calloc(n ? n : 1, sizeof(*call->peer));
    if (!call->waits || !call->vm || !call->peer) {
        call_free(call);
        return NULL;
    }
    dsf_http_defer(&call->reply, req);
    call->next = od->calls;
    if (od->calls)
        od->calls->prev = call;
    od->calls = call;
    return call;
}

/* Publishes row i's request. 0, or -1 when it could not be sent. */
static int wait_start(struct od_call *call, size_t i, const char *payload)
{
    struct control *c = call->od->c;
    struct od_wait *w = &call->waits[i];
    char req_topic[256];
    w->call = call;
    if (dsf_random_hex(w->id, OD_ID_HEX / 2) < 0)
        return -1;
    snprintf(req_topic, sizeof(req_topic), "dsf/a/%s/%s/%s/req", call->ns, call->mci, call->vm[i]);
    snprintf(w->topic, sizeof(w->topic), "dsf/a/%s/%s/%s%s%s", call->ns, call->mci, call->vm[i],
             reply_level, w->id);
    /* QoS 0: a request the broker would keep for an agent that is away is worth nothing once
     * the call has timed out. */
    struct dsf_bus_message m = {
        .topic = req_topic,
        .payload = payload,
        .len = strlen(payload),
        .response_topic = w->topic,
        .correlation = w->id,
        .correlation_len = OD_ID_HEX,
    };
    if (dsf_bus_publish(c->pub ? c->pub : c->bus, &m, 0, 0, 0) < 0)
        return -1;
    dsf_htab_insert(&call->od->waiting, &w->link, dsf_hash_bytes(w->id, OD_ID_HEX));
    w->waiting = 1;
    call->left++;
    return 0;
}

static json_t *vms_json(const struct od_call *call)
{
    json_t *a = json_array();
    for (size_t i = 0; i < call->n; i++)
        json_array_append_new(a, json_string(call->vm[i]));
    return a;
}

/* The matrix with what came: 504 when no VM answered, else the rows that did; a failed row
 * is null, and errors says why, by VM. */
static void netlatency_finish(struct od_call *call)
{
    int64_t ms = call->od->c->cfg.ondemand_timeout_ms;
    char msg[300];
    for (size_t i = 0; i < call->n; i++) {
        if (call->waits[i].waiting) {
            snprintf(msg, sizeof(msg), "the agent did not answer within %lld ms", (long long)ms);
            json_object_set_new(call->errors, call->vm[i], json_string(msg));
            json_array_set_new(call->matrix, i, json_null());
        } else if (!call->peer[i][0] && !json_object_get(call->errors, call->vm[i])) {
            json_object_set_new(call->errors, call->vm[i],
                                json_string("no address in the federation's model: no other VM "
                                            "could connect to it"));
        }
    }
    json_t *o = json_pack("{s:s, s:s, s:o, s:O, s:O}", "ns", call->ns, "mci", call->mci, "vms",
                          vms_json(call), "matrix", call->matrix, "errors", call->errors);
    if (!call->answered) {
        snprintf(msg, sizeof(msg), "no VM of MCI %s/%s answered within %lld ms", call->ns,
                 call->mci, (long long)ms);
        json_object_set_new(o, "error", json_string(msg));
        json_object_set_new(o, "timeout_ms", json_integer(ms));
        call_reply_json(call, OD_TIMEOUT, 504, o);
        return;
    }
    call_reply_json(call, json_object_size(call->errors) ? OD_PARTIAL : OD_OK, 200, o);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct od_call *call = arg;
    (void)fd;
    (void)what;
    if (call->netlatency) {
        netlatency_finish(call);
        return;
    }
    int64_t ms = call->od->c->cfg.ondemand_timeout_ms;
    char msg[300];
    snprintf(msg, sizeof(msg), "VM %s/%s/%s did not answer within %lld ms", call->ns, call->mci,
             call->vm[0], (long long)ms);
    log_info("on-demand: %s", msg);
    call_reply_json(call, OD_TIMEOUT, 504,
                    json_pack("{s:s, s:s, s:s, s:s, s:I}", "error", msg, "ns", call->ns, "mci",
                              call->mci, "vm", call->vm[0], "timeout_ms", (json_int_t)ms));
}

/* What an agent said when it refused the request ({"error": "..."}), cut to one line. */
static void agent_error(const struct dsf_bus_message *m, char *out, size_t cap)
{
    json_t *o = json_loadb(m->payload, m->len, 0, NULL);
    const char *e = json_string_value(json_object_get(o, "error"));
    snprintf(out, cap, "the agent refused the request: %s", e ? e : "no reason given");
    for (char *p = out; *p; p++)
        if ((unsigned char)*p < 0x20)
            *p = ' ';
    json_decref(o);
}

static void vm_answered(struct od_call *call, const struct dsf_bus_message *m)
{
    if (m->fmt && !strcmp(m->fmt, "error")) {
        char msg[400];
        agent_error(m, msg, sizeof(msg));
        call_reply_json(call, OD_AGENT_ERROR, 502,
                        json_pack("{s:s, s:s}", "error", msg, "vm", call->vm[0]));
        return;
    }
    int lp = m->fmt && !strcmp(m->fmt, "lp");
    call_reply(call, OD_OK, 200, lp ? "text/plain; charset=utf-8" : "application/json", m->payload,
               m->len);
}

/* Row i from the agent's points: netlatency,peer=ADDR rtt_ms=...,success=0|1. */
static void row_answered(struct od_call *call, size_t i, const struct dsf_bus_message *m)
{
    json_t *points = json_loadb(m->payload, m->len, 0, NULL), *p;
    json_t *row = json_array_get(call->matrix, i);
    char msg[400];
    size_t k, found = 0;
    if (m->fmt && !strcmp(m->fmt, "error")) {
        agent_error(m, msg, sizeof(msg));
    } else {
        json_array_foreach(points, k, p)
        {
            const char *peer =
                json_string_value(json_object_get(json_object_get(p, "tags"), "peer"));
            const char *name = json_string_value(json_object_get(p, "name"));
            json_t *rtt = json_object_get(json_object_get(p, "fields"), "rtt_ms");
            if (!peer || !name || strcmp(name, "netlatency"))
                continue;
            found++;
            for (size_t j = 0; j < call->n; j++)
                if (j != i && !strcmp(call->peer[j], peer) && json_is_number(rtt))
                    json_array_set_new(row, j, json_real(json_number_value(rtt)));
        }
        snprintf(msg, sizeof(msg), "the answer holds no netlatency measurement");
    }
    if (found) {
        call->answered++;
    } else {
        json_object_set_new(call->errors, call->vm[i], json_string(msg));
        json_array_set_new(call->matrix, i, json_null());
    }
    json_decref(points);
}

void ctl_ondemand_reply(struct control *c, const struct dsf_bus_message *m)
{
    struct ondemand *od = c->ondemand;
    const char *id = strstr(m->topic, reply_level);
    id = id ? id + strlen(reply_level) : NULL;
    struct od_wait *w = NULL;
    if (od && id && strlen(id) == OD_ID_HEX && m->correlation_len == OD_ID_HEX &&
        !memcmp(m->correlation, id, OD_ID_HEX)) {
        uint64_t h = dsf_hash_bytes(id, OD_ID_HEX);
        for (struct dsf_hlink *l = dsf_htab_first(&od->waiting, h); l && !w; l = l->next)
            if (l->hash == h && !strcmp(((struct od_wait *)l)->topic, m->topic))
                w = (struct od_wait *)l;
    }
    if (!w) {
        if (od)
            od->unmatched++;
        return;
    }
    struct od_call *call = w->call;
    dsf_htab_remove(&od->waiting, &w->link);
    w->waiting = 0;
    call->left--;
    if (!call->netlatency) {
        vm_answered(call, m);
        return;
    }
    row_answered(call, (size_t)(w - call->waits), m);
    if (!call->left)
        netlatency_finish(call);
}

/* ---- requests checked against the model ---- */

/* Where the others connect to VM v: the host of its address in the model, at
 * ondemand.netlatency_port, else the address's own port, else 22. */
static void peer_of(const struct control *c, const struct fed_vm *v, char *out, size_t cap)
{
    char host[FED_LONG_MAX];
    int port = 22;
    out[0] = '\0';
    if (!v->address[0])
        return;
    if (dsf_split_hostport(v->address, host, sizeof(host), &port) < 0 || port == 0) {
        snprintf(host, sizeof(host), "%s", v->address);
        port = 22;
    }
    if (c->cfg.netlatency_port > 0)
        port = (int)c->cfg.netlatency_port;
    if (host[0])
        snprintf(out, cap, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
}

/* The MCI from the model: 0, 1 when the model holds no MCI at all (not loaded), -1 when the
 * model has others but not this one. */
static int model_mci(struct control *c, const char *ns, const char *mci, struct fed_mci *m)
{
    if (executor_mci(c->exec, ns, mci, m) == 0)
        return 0;
    json_t *all = executor_mci_list(c->exec);
    int empty = json_array_size(all) == 0;
    json_decref(all);
    return empty ? 1 : -1;
}

static struct od_call *start_call(struct ondemand *od, struct evhttp_request *req,
                                  const struct qp_request *r, size_t n)
{
    struct control *c = od->c;
    if (od->waiting.count + n > (size_t)c->cfg.ondemand_max) {
        od->results[OD_REFUSED]++;
        dsf_http_reply_error(req, 503,
                             "%zu on-demand requests wait for agents already; %zu more would pass "
                             "ondemand.max_pending (%lld)",
                             od->waiting.count, n, (long long)c->cfg.ondemand_max);
        return NULL;
    }
    struct od_call *call = call_new(od, req, r, n);
    if (!call) {
        od->results[OD_UNAVAILABLE]++;
        dsf_http_reply_error(req, 503, "out of memory");
    }
    return call;
}

/* Arms the timer and holds the request; or answers 503 when nothing could be sent. */
static void call_wait(struct od_call *call)
{
    struct timeval tv = {call->od->c->cfg.ondemand_timeout_ms / 1000,
                         (call->od->c->cfg.ondemand_timeout_ms % 1000) * 1000};
    call->timer = evtimer_new(call->od->c->base, on_timeout, call);
    if (!call->left || !call->timer || evtimer_add(call->timer, &tv) < 0) {
        call_reply_json(call, OD_UNAVAILABLE, 503,
                        json_pack("{s:s}", "error", "cannot send the request on the bus"));
        return;
    }
}

static void serve_vm(struct ondemand *od, struct evhttp_request *req, const struct qp_request *r)
{
    struct fed_mci m = {0};
    int known = model_mci(od->c, r->ns, r->mci, &m);
    int found = known == 1 || (known == 0 && fed_mci_find_vm(&m, r->vm));
    fed_mci_free(&m);
    if (!found) {
        od->results[OD_NOT_FOUND]++;
        dsf_http_reply_error(req, 404, "no VM %s/%s/%s in the federation's model", r->ns, r->mci,
                             r->vm);
        return;
    }
    struct od_call *call = start_call(od, req, r, 1);
    if (!call)
        return;
    snprintf(call->vm[0], sizeof(call->vm[0]), "%s", r->vm);
    if (wait_start(call, 0, r->lp ? "{\"fmt\":\"lp\"}" : "{\"fmt\":\"json\"}") < 0)
        log_warn("on-demand: cannot publish the request to %s/%s/%s", r->ns, r->mci, r->vm);
    call_wait(call);
}

/* Row i's request: every other VM that has an address. NULL without memory. */
static char *netlatency_request(const struct od_call *call, size_t i, int64_t timeout_ms)
{
    json_t *peers = json_array();
    for (size_t j = 0; j < call->n; j++)
        if (j != i && call->peer[j][0])
            json_array_append_new(peers, json_string(call->peer[j]));
    json_t *o = json_pack("{s:s, s:o, s:I}", "input", "netlatency", "peers", peers, "timeout_ms",
                          (json_int_t)timeout_ms);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return text;
}

/* The VMs (not terminated) of m into the call, with the matrix's null rows. */
static void netlatency_rows(struct od_call *call, const struct fed_mci *m)
{
    call->matrix = json_array();
    call->errors = json_object();
    size_t k = 0;
    for (size_t i = 0; i < m->nvms; i++) {
        if (m->vms[i].state == FED_VM_TERMINATED)
            continue;
        snprintf(call->vm[k], sizeof(call->vm[k]), "%s", m->vms[i].id);
        peer_of(call->od->c, &m->vms[i], call->peer[k], sizeof(call->peer[k]));
        k++;
    }
    call->n = k;
    for (size_t i = 0; i < call->n; i++) {
        json_t *row = json_array();
        for (size_t j = 0; j < call->n; j++)
            json_array_append_new(row, json_null());
        json_array_append_new(call->matrix, row);
    }
}

static void serve_netlatency(struct ondemand *od, struct evhttp_request *req,
                             const struct qp_request *r)
{
    struct fed_mci m = {0};
    if (executor_mci(od->c->exec, r->ns, r->mci, &m) < 0) {
        od->results[OD_NOT_FOUND]++;
        dsf_http_reply_error(req, 404, "no MCI %s/%s in the federation's model", r->ns, r->mci);
        return;
    }
    struct od_call *call = start_call(od, req, r, m.nvms);
    if (!call) {
        fed_mci_free(&m);
        return;
    }
    netlatency_rows(call, &m);
    fed_mci_free(&m);
    int64_t t = od->c->cfg.ondemand_timeout_ms / 2;
    t = t < OD_AGENT_TIMEOUT_MS ? t : OD_AGENT_TIMEOUT_MS;
    for (size_t i = 0; i < call->n; i++) {
        char *payload = netlatency_request(call, i, t);
        if (!payload || wait_start(call, i, payload) < 0)
            log_warn("on-demand: cannot publish the netlatency request to %s/%s/%s", call->ns,
                     call->mci, call->vm[i]);
        free(payload);
    }
    if (!call->n) {
        call_reply_json(call, OD_OK, 200,
                        json_pack("{s:s, s:s, s:[], s:[], s:{}}", "ns", r->ns, "mci", r->mci, "vms",
                                  "matrix", "errors"));
        return;
    }
    call_wait(call);
}

void ctl_ondemand_serve(struct control *c, struct evhttp_request *req, const struct qp_request *r)
{
    struct ondemand *od = c->ondemand;
    if (!od || !c->bus || strcmp(c->cfg.input, "mqtt") || !dsf_bus_connected(c->bus)) {
        if (od)
            od->results[OD_UNAVAILABLE]++;
        dsf_http_reply_error(req, 503,
                             "on-demand collection needs the MQTT bus (input=mqtt), connected");
        return;
    }
    if (r->form == QP_NETLATENCY)
        serve_netlatency(od, req, r);
    else
        serve_vm(od, req, r);
}

void ctl_ondemand_refused(struct control *c)
{
    if (c->ondemand)
        c->ondemand->results[OD_BAD_REQUEST]++;
}

static double pending(void *arg)
{
    return (double)((struct ondemand *)arg)->waiting.count;
}

int ctl_ondemand_start(struct control *c)
{
    struct ondemand *od = calloc(1, sizeof(*od));
    if (!od || dsf_htab_grow(&od->waiting) < 0) {
        free(od);
        return -1;
    }
    od->c = c;
    c->ondemand = od;
    struct dsf_metrics *m = &c->metrics;
    metrics_add_u64_by(m, "damselfly_control_ondemand_total", DSF_COUNTER,
                       "On-demand requests (GET .../ondemand, .../ondemand/netlatency) by result: "
                       "answered, answered in part (netlatency), timed out, refused at "
                       "ondemand.max_pending, malformed, unknown to the model, bus unavailable, "
                       "refused by the agent.",
                       "result", result_names, OD_RESULTS, od->results);
    metrics_add_u64(m, "damselfly_control_ondemand_replies_unmatched_total", DSF_COUNTER,
                    "Answers on the controller's reply topics that no request waits for (late, "
                    "repeated or forged): dropped.",
                    NULL, &od->unmatched);
    metrics_add_fn(m, "damselfly_control_ondemand_pending", DSF_GAUGE,
                   "On-demand requests to agents waiting for an answer.", NULL, pending, od);
    return 0;
}

void ctl_ondemand_free(struct control *c)
{
    struct ondemand *od = c->ondemand;
    if (!od)
        return;
    while (od->calls)
        call_free(od->calls);
    dsf_htab_free(&od->waiting);
    free(od);
    c->ondemand = NULL;
}
