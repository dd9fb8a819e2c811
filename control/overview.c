/*
 * GET /api/v1/overview: what the web console's first page shows, in one answer built from
 * what the controller holds (the federation's model, the alarm series heard on the bus, the
 * guards, the actions), so that a fleet of 100 MCIs renders from one request.
 */
#define DSF_MODULE "control"
#include "common/http.h"
#include "control/control_impl.h"
#include "federation/federation.h"

#include <event2/http.h>
#include <stdio.h>
#include <string.h>

#define OVERVIEW_ACTIONS 20

static json_t *vm_states(const struct fed_mci *m)
{
    json_t *states = json_object();
    for (size_t i = 0; i < m->nvms; i++) {
        const char *name = fed_vm_state_name(m->vms[i].state);
        json_t *n = json_object_get(states, name);
        json_object_set_new(states, name, json_integer(n ? json_integer_value(n) + 1 : 1));
    }
    return states;
}

static json_t *agents(struct control *c, const struct fed_mci *m)
{
    int count[3] = {0, 0, 0}; /* online, offline, unknown */
    for (size_t i = 0; i < m->nvms; i++) {
        int on = fleet_online(c->fleet, m->ns, m->id, m->vms[i].id, NULL);
        count[on == 1 ? 0 : on == 0 ? 1 : 2]++;
    }
    return json_pack("{s:i, s:i, s:i}", "online", count[0], "offline", count[1], "unknown",
                     count[2]);
}

/* An MCI's card: its summary, VMs by state, agents online, breaker. */
static json_t *card(struct control *c, const char *ns, const char *id, const struct fed_mci *m)
{
    json_t *o = ctl_mci_summary(ns, id, m);
    json_object_set_new(o, "vm_states", vm_states(m));
    json_object_set_new(o, "agents", agents(c, m));
    json_object_set_new(o, "breaker_open", json_boolean(guards_breaker_open(c->guards, ns, id)));
    return o;
}

static json_t *last_actions(struct control *c)
{
    json_t *list = json_array();
    for (struct ctl_action *a = c->action_list; a && json_array_size(list) < OVERVIEW_ACTIONS;
         a = a->next)
        json_array_append_new(list, ctl_action_json(a));
    return list;
}

static json_t *breaker(struct control *c)
{
    json_t *g = guards_json(c->guards, ctl_wall_ms());
    json_t *b = json_incref(json_object_get(g, "breakers"));
    json_decref(g);
    int open = guards_breaker_open(c->guards, "", "");
    return json_pack("{s:s, s:b, s:o}", "state", open ? "open" : "closed", "paused",
                     guards_paused(c->guards), "breakers", b ? b : json_array());
}

static void serve_overview(struct evhttp_request *req, void *arg)
{
    struct control *c = arg;
    if (!dsf_http_only_get(req))
        return;
    const char *q = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
    int all = 0;
    if (q && *q && !(all = strcmp(q, "alarms=all") == 0)) {
        dsf_http_reply_error(req, 400, "query: only alarms=all is known (got '%.100s')", q);
        return;
    }
    json_t *o =
        json_pack("{s:o, s:o, s:o, s:o, s:I}", "mcis", ctl_mci_each(c, card), "alarms_firing",
                  fleet_alarms_json(c->fleet, "firing"), "breaker", breaker(c), "actions",
                  last_actions(c), "generated_ms", (json_int_t)ctl_wall_ms());
    if (all)
        json_object_set_new(o, "alarms", fleet_alarms_json(c->fleet, NULL));
    ctl_reply_json(req, 200, o);
}

int ctl_overview_register(struct control *c, struct dsf_http_server *h)
{
    return dsf_http_route(h, "/api/v1/overview", serve_overview, c, 0);
}
