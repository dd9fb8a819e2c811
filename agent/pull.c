#define DSF_MODULE "pull"
#include "agent/pull.h"
#include "agent/agent.h"
#include "agent/push.h"
#include "common/http.h"
#include "common/log.h"
#include "common/loop.h"
#include "common/lp.h"
#include "common/metric_json.h"

#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pull {
    struct agent *agent;
    struct dsf_http_server *server;
    struct dsf_buf out;
    uint64_t requests;
};

static int only_get(struct evhttp_request *req)
{
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    if (cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD)
        return 1;
    const char *msg = "only GET is supported here\n";
    dsf_http_reply(req, 405, "text/plain", msg, strlen(msg));
    return 0;
}

static void serve_metrics(struct evhttp_request *req, void *arg)
{
    struct pull *p = arg;
    struct agent *a = p->agent;
    if (!only_get(req))
        return;
    p->requests++;
    buf_reset(&p->out);
    for (size_t i = 0; i < a->ninputs; i++)
        if (a->inputs[i].ctx && a->inputs[i].def->prom)
            a->inputs[i].def->prom(a->inputs[i].ctx, &p->out);
    metrics_render(&a->metrics, &p->out);
    dsf_http_reply(req, 200, "text/plain; version=0.0.4; charset=utf-8", p->out.data, p->out.len);
}

static void serve_snapshot(struct evhttp_request *req, void *arg)
{
    struct pull *p = arg;
    struct agent *a = p->agent;
    if (!only_get(req))
        return;
    p->requests++;
    const char *uri = evhttp_request_get_uri(req);
    int lp = strstr(uri, "format=lp") != NULL;
    batch_reset(&a->snapshot);
    agent_collect(a, &a->snapshot, dsf_now_ns());
    buf_reset(&a->snapshot_out);
    if (lp)
        lp_render_batch(&a->snapshot_out, &a->snapshot, &a->identity);
    else
        json_render_batch(&a->snapshot_out, &a->snapshot, &a->identity);
    dsf_http_reply(req, 200, lp ? "text/plain; charset=utf-8" : "application/json",
                   a->snapshot_out.data, a->snapshot_out.len);
}

static void serve_health(struct evhttp_request *req, void *arg)
{
    struct pull *p = arg;
    struct agent *a = p->agent;
    char body[256];
    int push_on = a->push != NULL;
    int n = snprintf(body, sizeof(body),
                     "{\"status\":\"ok\",\"cycles\":%llu,\"push\":%s,\"connected\":%s}\n",
                     (unsigned long long)a->cycles, push_on ? "true" : "false",
                     push_connected(a->push) ? "true" : "false");
    dsf_http_reply(req, 200, "application/json", body, (size_t)n);
}

struct pull *pull_new(struct agent *a, char *err, size_t errlen)
{
    const struct agent_config *c = &a->cfg;
    struct pull *p = calloc(1, sizeof(*p));
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->agent = a;
    struct dsf_http_options opt = {
        .listen = c->http.listen,
        .tls_cert = c->http.tls_cert,
        .tls_key = c->http.tls_key,
        .bearer_token = c->http.token,
        .basic_user = c->http.username,
        .basic_pw = c->http.password,
    };
    p->server = dsf_http_new(a->base, &opt, err, errlen);
    if (!p->server) {
        free(p);
        return NULL;
    }
    dsf_http_route(p->server, "/metrics", serve_metrics, p, 0);
    dsf_http_route(p->server, "/api/v1/snapshot", serve_snapshot, p, 0);
    dsf_http_route(p->server, "/healthz", serve_health, p, 1);
    metrics_add_u64(&a->metrics, "damselfly_agent_http_requests_total", DSF_COUNTER,
                    "Pull requests served.", NULL, &p->requests);
    log_info("serving /metrics, /api/v1/snapshot and /healthz on %s%s", c->http.listen,
             *c->http.tls_cert ? " (TLS)" : "");
    return p;
}

int pull_port(const struct pull *p)
{
    return dsf_http_port(p->server);
}

void pull_free(struct pull *p)
{
    if (!p)
        return;
    dsf_http_free(p->server);
    buf_free(&p->out);
    free(p);
}
