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
    struct dsf_http_server *server; /* the daemon's */
    uint64_t requests;
};

void agent_render_metrics(void *arg, struct dsf_buf *out)
{
    struct agent *a = arg;
    for (size_t i = 0; i < a->ninputs; i++)
        if (a->inputs[i].ctx && a->inputs[i].def->prom)
            a->inputs[i].def->prom(a->inputs[i].ctx, out);
}

static void serve_snapshot(struct evhttp_request *req, void *arg)
{
    struct pull *p = arg;
    struct agent *a = p->agent;
    if (!dsf_http_only_get(req))
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

void agent_health(void *arg, struct dsf_buf *out)
{
    struct agent *a = arg;
    buf_printf(out, ",\"cycles\":%llu,\"push\":%s,\"connected\":%s", (unsigned long long)a->cycles,
               a->push ? "true" : "false", push_connected(a->push) ? "true" : "false");
}

struct pull *pull_new(struct agent *a, struct dsf_http_server *server, char *err, size_t errlen)
{
    struct pull *p = calloc(1, sizeof(*p));
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->agent = a;
    p->server = server;
    dsf_http_route(p->server, "/api/v1/snapshot", serve_snapshot, p, 0);
    metrics_add_u64(&a->metrics, "damselfly_agent_http_requests_total", DSF_COUNTER,
                    "Snapshot requests served.", NULL, &p->requests);
    return p;
}

void pull_free(struct pull *p)
{
    free(p);
}
