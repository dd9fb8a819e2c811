/*
 * The balancer's HTTP API (docs/balancer.md "API"): GET /api/v1/pool, POST
 * /api/v1/pool/{pool}/scale. Every route but /healthz needs the bearer token of
 * state.dir/http.token.
 */
#define DSF_MODULE "balancer"
#include "balancer/balancer.h"
#include "common/daemon.h"
#include "common/http.h"

#include <event2/http.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#define SCALE_MAX 1000

static json_t *member_json(struct balancer *b, const struct bal_member *m)
{
    json_t *list = json_array();
    for (uint32_t k = 0; k < b->nb; k++)
        if (m->assigned[k])
            json_array_append_new(list, json_integer(k));
    return json_pack("{s:s, s:s, s:b, s:b, s:b, s:I, s:I, s:o, s:i, s:f, s:f, s:I}", "id", m->id,
                     "role", m->role, "alive", m->alive, "draining", m->draining, "unresponsive",
                     m->unresponsive, "epoch", (json_int_t)m->epoch, "assigned_epoch",
                     (json_int_t)m->assigned_epoch, "buckets", list, "moves_in_flight",
                     bal_moves_in_flight(b, m), "points_per_s", m->points_per_s, "cpu", m->cpu,
                     "lag", (json_int_t)m->lag);
}

static json_t *pool_json(struct balancer *b, const char *name, const struct bal_pool *p)
{
    json_t *members = json_array(), *prefixes = json_array();
    for (struct bal_member *m = b->members; m; m = m->next)
        if (!strcmp(m->pool, name))
            json_array_append_new(members, member_json(b, m));
    for (size_t i = 0; p && i < p->prefixes.count; i++)
        json_array_append_new(prefixes, json_string(p->prefixes.items[i]));
    json_t *o = json_pack("{s:s, s:b, s:o, s:o}", "name", name, "known", p != NULL, "prefixes",
                          prefixes, "members", members);
    if (p && p->wanted >= 0)
        json_object_set_new(o, "wanted", json_integer(p->wanted));
    json_t *scale = bal_scale_json(b, name);
    if (scale)
        json_object_set_new(o, "scale", scale);
    return o;
}

/* The pools named in the configuration, then each pool only members announce (unknown). */
static json_t *pools_json(struct balancer *b)
{
    json_t *pools = json_array(), *unknown = json_array();
    for (size_t i = 0; i < b->npools; i++)
        json_array_append_new(pools, pool_json(b, b->pools[i].name, &b->pools[i]));
    for (struct bal_member *m = b->members; m; m = m->next) {
        int seen = bal_pool_find(b, m->pool) != NULL;
        for (struct bal_member *e = b->members; e != m && !seen; e = e->next)
            seen = !strcmp(e->pool, m->pool);
        if (!seen) {
            json_array_append_new(pools, pool_json(b, m->pool, NULL));
            json_array_append_new(unknown, json_string(m->pool));
        }
    }
    return json_pack("{s:s, s:b, s:s, s:I, s:I, s:i, s:o, s:o}", "id", b->cfg.id, "leading",
                     b->leading, "leader", b->leader_id, "term", (json_int_t)b->leader_term,
                     "epoch", (json_int_t)b->epoch, "buckets_total", (int)b->nb, "pools", pools,
                     "unknown_pools", unknown);
}

static void serve_pools(struct evhttp_request *req, void *arg)
{
    if (dsf_http_only_get(req))
        dsf_http_reply_json(req, 200, pools_json(arg));
}

/* POST /api/v1/pool/{pool}/scale {"replicas": N}. */
static void serve_pool(struct evhttp_request *req, void *arg)
{
    struct balancer *b = arg;
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    const char *name = path ? path + strlen("/api/v1/pool/") : "";
    const char *slash = strchr(name, '/');
    char pool[64];
    if (!slash || strcmp(slash, "/scale") || slash == name || slash - name >= (long)sizeof(pool)) {
        dsf_http_reply_error(req, 404, "no such route: expected /api/v1/pool/{pool}/scale");
        return;
    }
    snprintf(pool, sizeof(pool), "%.*s", (int)(slash - name), name);
    struct bal_pool *p = bal_pool_find(b, pool);
    if (!p) {
        dsf_http_reply_error(req, 404, "no pool '%s' (pools.map names the pools)", pool);
        return;
    }
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        dsf_http_reply_error(req, 405, "POST {\"replicas\":N}");
        return;
    }
    json_t *body = dsf_http_body_json(req, 4096, 0);
    if (!body)
        return;
    json_t *r = json_object_get(body, "replicas");
    if (!json_is_null(r) &&
        (!json_is_integer(r) || json_integer_value(r) < 0 || json_integer_value(r) > SCALE_MAX)) {
        json_decref(body);
        dsf_http_reply_error(req, 400, "key 'replicas': expected an integer 0-%d, or null",
                             SCALE_MAX);
        return;
    }
    int asked = json_is_null(r) ? -1 : (int)json_integer_value(r);
    json_decref(body);
    bal_scale_want(b, p, asked);
    if (p->wanted < 0)
        log_info("pool %s: the wanted size is cleared (API): the policy decides again", pool);
    else
        log_info("pool %s: %d replicas wanted (API, %d asked; scale.min/max bound it)", pool,
                 p->wanted, asked);
    dsf_http_reply_json(req, 202,
                        json_pack("{s:s, s:i, s:i}", "pool", pool, "wanted", p->wanted, "members",
                                  balancer_pool_members(b, pool)));
}

int bal_api_register(struct balancer *b, char *err, size_t errlen)
{
    struct dsf_http_server *h = dsf_daemon_http(b->daemon);
    if (!h)
        return 0;
    if (dsf_http_route(h, "/api/v1/pool", serve_pools, b, 0) < 0 ||
        dsf_http_route(h, "/api/v1/pool/*", serve_pool, b, DSF_HTTP_WRITES) < 0) {
        snprintf(err, errlen, "cannot add the /api/v1/pool routes");
        return -1;
    }
    return 0;
}
