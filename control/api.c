/*
 * The controller's HTTP API (docs/control.md "API"). Every route but /healthz needs the
 * bearer token of state.dir/http.token (created 0600 at the first start); every bad request
 * gets a 4xx with the reason. Policies written here go to policies.dir, so the files stay the
 * truth that --check and a restart read.
 */
#define DSF_MODULE "control"
#include "common/daemon.h"
#include "common/file.h"
#include "common/http.h"
#include "common/log.h"
#include "control/control_impl.h"
#include "federation/federation.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define API_BODY_MAX (256 * 1024)

void ctl_reply_json(struct evhttp_request *req, int code, json_t *o)
{
    dsf_http_reply_json(req, code, o);
}

static const char *path_of(struct evhttp_request *req)
{
    const char *p = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    return p ? p : "";
}

/* The path below PREFIX ("" when it is not below it). Not path_of() + strlen(PREFIX): gcc
 * sees that path_of() may return "" and refuses the offset past it. */
static const char *path_tail(struct evhttp_request *req, const char *prefix)
{
    const char *p = path_of(req);
    size_t n = strlen(prefix);
    return strncmp(p, prefix, n) ? "" : p + n;
}

/* The request body as JSON: NULL after answering 400 or 413. */
static json_t *body_json(struct evhttp_request *req, int allow_empty)
{
    return dsf_http_body_json(req, API_BODY_MAX, allow_empty);
}

static void record_operator(struct control *c, const char *op, const char *what)
{
    json_t *rec = json_pack("{s:s, s:s, s:s}", "event", "operator", "op", op, "who", "api");
    if (what)
        json_object_set_new(rec, "target", json_string(what));
    ctl_record(c, rec);
}

/* ---- policies ---- */

static json_t *policy_summary(const struct policy *p)
{
    json_t *ops = json_array();
    for (size_t i = 0; i < p->nsteps; i++)
        json_array_append_new(ops, json_string(policy_action_name(p->steps[i].action)));
    return json_pack("{s:s, s:s, s:s, s:s?, s:o, s:b, s:b, s:I, s:I, s:I}", "name", p->name, "file",
                     p->origin ? p->origin : "", "rule", p->rule, "severity", p->severity, "steps",
                     ops, "dry_run", p->dry_run, "approval", p->approval, "verify_timeout_ms",
                     (json_int_t)p->verify_timeout_ms, "cooldown_ms", (json_int_t)p->cooldown_ms,
                     "hold_ms", (json_int_t)p->hold_ms);
}

static void serve_policies(struct evhttp_request *req, void *arg)
{
    struct control *c = arg;
    if (!dsf_http_only_get(req))
        return;
    json_t *list = json_array();
    for (size_t i = 0; i < c->policies.n; i++)
        json_array_append_new(list, policy_summary(&c->policies.policies[i]));
    ctl_reply_json(req, 200, json_pack("{s:o}", "policies", list));
}

static const struct policy *find_policy(struct control *c, const char *name)
{
    for (size_t i = 0; i < c->policies.n; i++) {
        if (!strcmp(c->policies.policies[i].name, name))
            return &c->policies.policies[i];
    }
    return NULL;
}

/* A policy name is its file's name: no path, no hidden file. */
static int name_ok(const char *n)
{
    size_t len = strlen(n);
    if (len == 0 || len > 100 || n[0] == '.' || n[0] == '-')
        return 0;
    return strspn(n, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") == len;
}

static int reload_policies(struct control *c, char *err, size_t errlen)
{
    struct policy_set fresh = {0};
    if (policy_load_dir(c->cfg.policies_dir, &fresh, err, errlen) < 0)
        return -1;
    policy_set_free(&c->policies);
    c->policies = fresh;
    return 0;
}

static void put_policy(struct control *c, struct evhttp_request *req, const char *name)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    if (len > API_BODY_MAX) {
        dsf_http_reply_error(req, 413, "policy larger than %d bytes", API_BODY_MAX);
        return;
    }
    const char *text = (const char *)evbuffer_pullup(in, (ssize_t)len);
    struct policy p = {0};
    char err[1024], file[160], path[4200];
    if (policy_parse(text ? text : "", len, "request body", &p, err, sizeof(err)) < 0) {
        dsf_http_reply_error(req, 400, "%s", err);
        return;
    }
    int same = !strcmp(p.name, name);
    policy_free(&p);
    if (!same) {
        dsf_http_reply_error(req, 400, "key 'name': the policy's name must be '%s', as in the path",
                             name);
        return;
    }
    snprintf(file, sizeof(file), "%s.json", name);
    snprintf(path, sizeof(path), "%s/%s", c->cfg.policies_dir, file);
    char *old = dsf_read_file(path, NULL);
    if (dsf_write_file_atomic(c->cfg.policies_dir, file, text, len, err, sizeof(err)) < 0) {
        free(old);
        dsf_http_reply_error(req, 500, "%s", err);
        return;
    }
    if (reload_policies(c, err, sizeof(err)) < 0) {
        /* Put the directory back as it was: it must always load. */
        if (old)
            dsf_write_file_atomic(c->cfg.policies_dir, file, old, strlen(old), NULL, 0);
        else
            unlink(path);
        free(old);
        dsf_http_reply_error(req, 409, "%s", err);
        return;
    }
    free(old);
    record_operator(c, "policy_put", name);
    ctl_reply_json(req, 200, policy_summary(find_policy(c, name)));
}

/* Writes p as policies.dir/{name}.json and reloads; answers. */
static void save_policy(struct control *c, struct evhttp_request *req, const struct policy *p)
{
    char file[160], path[4200], err[1024];
    json_t *j = policy_to_json(p);
    char *text = json_dumps(j, JSON_INDENT(2));
    json_decref(j);
    snprintf(file, sizeof(file), "%s.json", p->name);
    snprintf(path, sizeof(path), "%s/%s", c->cfg.policies_dir, file);
    if (access(path, F_OK) == 0) {
        free(text);
        ctl_reply_json(req, 409, json_pack("{s:s}", "error", "a policy file of that name exists"));
        return;
    }
    if (!text)
        snprintf(err, sizeof(err), "out of memory");
    int rc = text ? dsf_write_file_atomic(c->cfg.policies_dir, file, text, strlen(text), err,
                                          sizeof(err))
                  : -1;
    free(text);
    if (rc < 0) {
        dsf_http_reply_error(req, 500, "%s", err);
        return;
    }
    if (reload_policies(c, err, sizeof(err)) < 0) {
        unlink(path);
        dsf_http_reply_error(req, 409, "%s", err);
        return;
    }
    record_operator(c, "policy_put", p->name);
    ctl_reply_json(req, 201, policy_summary(find_policy(c, p->name)));
}

/* POST /api/v1/policies/import/tumblebug: CB-Tumblebug's auto-control policy, converted
 * (control/policy.h says how) and saved as a policy file. */
static void import_tumblebug(struct control *c, struct evhttp_request *req)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    struct policy p = {0};
    char err[1024];
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        dsf_http_reply_error(req, 405, "POST a CB-Tumblebug MCI policy");
    } else if (len > API_BODY_MAX) {
        dsf_http_reply_error(req, 413, "body larger than %d bytes", API_BODY_MAX);
    } else if (policy_from_tumblebug((const char *)evbuffer_pullup(in, (ssize_t)len), len, &p, err,
                                     sizeof(err)) < 0) {
        dsf_http_reply_error(req, 400, "%s", err);
    } else {
        save_policy(c, req, &p);
    }
    policy_free(&p);
}

static void serve_policy(struct evhttp_request *req, void *arg)
{
    struct control *c = arg;
    const char *name = path_tail(req, "/api/v1/policies/");
    char err[1024], path[4200];
    if (!strcmp(name, "import/tumblebug")) {
        import_tumblebug(c, req);
        return;
    }
    if (!name_ok(name)) {
        dsf_http_reply_error(req, 400,
                             "bad policy name '%s': 1-100 of [A-Za-z0-9_.-], not starting with "
                             "'.' or '-'",
                             name);
        return;
    }
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    const struct policy *p = find_policy(c, name);
    if (cmd == EVHTTP_REQ_PUT) {
        put_policy(c, req, name);
    } else if (!p) {
        dsf_http_reply_error(req, 404, "no policy named '%s'", name);
    } else if (cmd == EVHTTP_REQ_GET) {
        char *text = dsf_read_file(p->origin, NULL);
        json_t *o = text ? json_loads(text, 0, NULL) : NULL;
        free(text);
        ctl_reply_json(req, o ? 200 : 500,
                       o ? o : json_pack("{s:s}", "error", "cannot read the file"));
    } else if (cmd == EVHTTP_REQ_DELETE) {
        snprintf(path, sizeof(path), "%s", p->origin);
        if (unlink(path) < 0 || reload_policies(c, err, sizeof(err)) < 0) {
            dsf_http_reply_error(req, 500, "cannot remove %s: %s", path, strerror(errno));
            return;
        }
        record_operator(c, "policy_delete", name);
        ctl_reply_json(req, 200, json_pack("{s:s}", "deleted", name));
    } else {
        dsf_http_reply_error(req, 405, "GET, PUT or DELETE");
    }
}

/* ---- actions ---- */

static const char *query(struct evkeyvalq *q, const char *key)
{
    const char *v = evhttp_find_header(q, key);
    return v && *v ? v : NULL;
}

static int action_matches(const struct ctl_action *a, struct evkeyvalq *q)
{
    const char *v;
    return !((v = query(q, "ns")) && strcmp(v, a->ns)) &&
           !((v = query(q, "mci")) && strcmp(v, a->mci)) &&
           !((v = query(q, "target")) && strcmp(v, a->target)) &&
           !((v = query(q, "policy")) && strcmp(v, a->policy.name)) &&
           !((v = query(q, "phase")) && strcmp(v, ctl_phase_name(a->phase))) &&
           !((v = query(q, "outcome")) && strcmp(v, a->outcome));
}

static void list_actions(struct control *c, struct evhttp_request *req)
{
    struct evkeyvalq q;
    const char *qs = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
    if (evhttp_parse_query_str(qs ? qs : "", &q) < 0) {
        dsf_http_reply_error(req, 400, "malformed query string");
        return;
    }
    const char *lim = query(&q, "limit");
    char *end = NULL;
    long limit = lim ? strtol(lim, &end, 10) : 100;
    if (lim && (*end || limit < 1 || limit > 100000)) {
        evhttp_clear_headers(&q);
        dsf_http_reply_error(req, 400, "limit: expected 1 to 100000 (got '%s')", lim);
        return;
    }
    json_t *list = json_array();
    for (struct ctl_action *a = c->action_list; a && (long)json_array_size(list) < limit;
         a = a->next) {
        if (action_matches(a, &q))
            json_array_append_new(list, ctl_action_json(a));
    }
    evhttp_clear_headers(&q);
    ctl_reply_json(req, 200, json_pack("{s:o}", "actions", list));
}

static void manual_action(struct control *c, struct evhttp_request *req)
{
    json_t *body = body_json(req, 0);
    if (!body)
        return;
    int status = 400;
    char err[1024];
    struct ctl_action *a = ctl_decide_manual(c, body, &status, err, sizeof(err));
    json_decref(body);
    if (!a)
        dsf_http_reply_error(req, status, "%s", err);
    else
        ctl_reply_json(req, 202, ctl_action_json(a));
}

static void action_verb(struct control *c, struct evhttp_request *req, struct ctl_action *a,
                        const char *verb)
{
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        dsf_http_reply_error(req, 405, "POST");
    } else if (!strcmp(verb, "approve")) {
        if (a->phase != CTL_APPROVAL) {
            dsf_http_reply_error(req, 409, "action %s is %s, not waiting for approval", a->id,
                                 ctl_phase_name(a->phase));
            return;
        }
        record_operator(c, "approve", a->id);
        ctl_decide_commit(c, a, 1);
        ctl_reply_json(req, 200, ctl_action_json(a));
    } else if (!strcmp(verb, "cancel")) {
        if (a->phase == CTL_DONE) {
            dsf_http_reply_error(req, 409, "action %s is done already (%s)", a->id, a->outcome);
            return;
        }
        record_operator(c, "cancel", a->id);
        a->cancel = 1;
        if (a->phase != CTL_RUNNING)
            ctl_action_finish(c, a, "cancelled", 0);
        ctl_reply_json(req, 200, ctl_action_json(a));
    } else {
        dsf_http_reply_error(req, 404, "no such verb '%s': approve or cancel", verb);
    }
}

static void serve_actions(struct evhttp_request *req, void *arg)
{
    struct control *c = arg;
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    if (cmd == EVHTTP_REQ_GET)
        list_actions(c, req);
    else if (cmd == EVHTTP_REQ_POST)
        manual_action(c, req);
    else
        dsf_http_reply_error(req, 405, "GET lists actions, POST starts one");
}

static json_t *action_with_audit(const struct ctl_action *a)
{
    json_t *o = ctl_action_json(a);
    json_object_set_new(o, "audit", ctl_action_records(a));
    return o;
}

static void serve_action(struct evhttp_request *req, void *arg)
{
    struct control *c = arg;
    char id[64];
    const char *rest = path_tail(req, "/api/v1/actions/");
    const char *slash = strchr(rest, '/');
    size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
    snprintf(id, sizeof(id), "%.*s", (int)(n < sizeof(id) ? n : sizeof(id) - 1), rest);
    struct ctl_action *a = ctl_action_find(c, id);
    if (!a)
        dsf_http_reply_error(req, 404, "no action '%s'", id);
    else if (slash)
        action_verb(c, req, a, slash + 1);
    else if (evhttp_request_get_command(req) == EVHTTP_REQ_GET)
        ctl_reply_json(req, 200, action_with_audit(a));
    else
        dsf_http_reply_error(req, 405, "GET; POST .../approve or .../cancel");
}

/* ---- pause, breaker, guards ---- */

static void serve_pause(struct evhttp_request *req, void *arg)
{
    struct control *c = arg;
    int pause = !strcmp(path_of(req), "/api/v1/pause");
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        dsf_http_reply_error(req, 405, "POST");
        return;
    }
    if (guards_paused(c->guards) != pause) {
        guards_pause(c->guards, pause);
        record_operator(c, pause ? "pause" : "resume", NULL);
        if (!pause) {
            ctl_actions_tick(c);
            ctl_input_reconcile(c); /* what fired while paused is decided now */
        }
    }
    ctl_reply_json(req, 200, json_pack("{s:b}", "paused", pause));
}

static void serve_guards(struct evhttp_request *req, void *arg)
{
    struct control *c = arg;
    if (!dsf_http_only_get(req))
        return;
    json_t *g = guards_json(c->guards, ctl_wall_ms());
    if (!strcmp(path_of(req), "/api/v1/breaker")) {
        json_t *b = json_incref(json_object_get(g, "breakers"));
        json_decref(g);
        g = json_pack("{s:o}", "breakers", b ? b : json_array());
    }
    ctl_reply_json(req, 200, g);
}

static void serve_release(struct evhttp_request *req, void *arg)
{
    struct control *c = arg;
    json_t *body = evhttp_request_get_command(req) == EVHTTP_REQ_POST ? body_json(req, 0) : NULL;
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        dsf_http_reply_error(req, 405, "POST {\"ns\", \"mci\", \"target\"}");
        return;
    }
    if (!body)
        return;
    const char *ns = json_string_value(json_object_get(body, "ns"));
    const char *mci = json_string_value(json_object_get(body, "mci"));
    const char *t = json_string_value(json_object_get(body, "target"));
    if (!t)
        dsf_http_reply_error(req, 400, "key 'target': expected a string");
    else if (guards_release(c->guards, ns ? ns : "", mci ? mci : "", t) < 0)
        dsf_http_reply_error(req, 404, "target '%s' is not held", t);
    else {
        record_operator(c, "release", t);
        ctl_reply_json(req, 200, json_pack("{s:s}", "released", t));
    }
    json_decref(body);
}

/* ---- the federation's MCIs ---- */

static json_t *mci_json(struct control *c, const struct fed_mci *m)
{
    char status[128];
    char *text = fed_mci_to_json(m);
    json_t *o = text ? json_loads(text, 0, NULL) : json_object();
    free(text);
    json_object_set_new(o, "status", json_string(fed_mci_status(m, status, sizeof(status))));
    json_t *agents = json_object();
    for (size_t i = 0; i < m->nvms; i++) {
        int on = fleet_online(c->fleet, m->ns, m->id, m->vms[i].id, NULL);
        json_object_set_new(agents, m->vms[i].id,
                            json_string(on == 1   ? "online"
                                        : on == 0 ? "offline"
                                                  : "unknown"));
    }
    json_object_set_new(o, "agents", agents);
    return o;
}

json_t *ctl_mci_summary(const char *ns, const char *id, const struct fed_mci *m)
{
    char status[128];
    return json_pack("{s:s, s:s, s:s, s:i}", "ns", ns, "mci", id, "status",
                     fed_mci_status(m, status, sizeof(status)), "vms", (int)m->nvms);
}

json_t *ctl_mci_each(struct control *c, ctl_mci_fn fn)
{
    json_t *names = executor_mci_list(c->exec), *list = json_array(), *it;
    size_t i;
    json_array_foreach(names, i, it)
    {
        struct fed_mci m = {0};
        const char *ns = json_string_value(json_object_get(it, "ns"));
        const char *id = json_string_value(json_object_get(it, "mci"));
        if (ns && id && executor_mci(c->exec, ns, id, &m) == 0)
            json_array_append_new(list, fn(c, ns, id, &m));
        fed_mci_free(&m);
    }
    json_decref(names);
    return list;
}

static json_t *mci_summary(struct control *c, const char *ns, const char *id,
                           const struct fed_mci *m)
{
    (void)c;
    return ctl_mci_summary(ns, id, m);
}

static void serve_mcis(struct evhttp_request *req, void *arg)
{
    struct control *c = arg;
    if (!dsf_http_only_get(req))
        return;
    ctl_reply_json(req, 200, json_pack("{s:o}", "mci", ctl_mci_each(c, mci_summary)));
}

static void serve_mci(struct evhttp_request *req, void *arg)
{
    struct control *c = arg;
    if (!dsf_http_only_get(req))
        return;
    char ns[80] = "", id[80] = "";
    const char *rest = path_tail(req, "/api/v1/mci/");
    if (sscanf(rest, "%79[^/]/%79[^/]", ns, id) != 2 || strchr(rest + strlen(ns) + 1, '/')) {
        dsf_http_reply_error(req, 400, "expected /api/v1/mci/{ns}/{mci}");
        return;
    }
    struct fed_mci m = {0};
    if (executor_mci(c->exec, ns, id, &m) < 0) {
        dsf_http_reply_error(req, 404, "no MCI %s/%s in the federation's model", ns, id);
        return;
    }
    json_t *o = mci_json(c, &m);
    fed_mci_free(&m);
    ctl_reply_json(req, 200, o);
}

int ctl_api_register(struct control *c, char *err, size_t errlen)
{
    struct dsf_http_server *h = dsf_daemon_http(c->daemon);
    if (!h)
        return 0;
    static const struct {
        const char *path;
        dsf_http_handler fn;
        int flags;
    } routes[] = {
        {"/api/v1/policies", serve_policies, 0},
        {"/api/v1/policies/*", serve_policy, DSF_HTTP_WRITES},
        {"/api/v1/actions", serve_actions, DSF_HTTP_WRITES},
        {"/api/v1/actions/*", serve_action, DSF_HTTP_WRITES},
        {"/api/v1/pause", serve_pause, DSF_HTTP_WRITES},
        {"/api/v1/resume", serve_pause, DSF_HTTP_WRITES},
        {"/api/v1/breaker", serve_guards, 0},
        {"/api/v1/guards", serve_guards, 0},
        {"/api/v1/guards/release", serve_release, DSF_HTTP_WRITES},
        {"/api/v1/mci", serve_mcis, 0},
        {"/api/v1/mci/*", serve_mci, 0},
    };
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (dsf_http_route(h, routes[i].path, routes[i].fn, c, routes[i].flags) < 0) {
            snprintf(err, errlen, "cannot add route %s", routes[i].path);
            return -1;
        }
    }
    if (ctl_query_register(c, h) < 0) {
        snprintf(err, errlen, "cannot add the monitoring query routes");
        return -1;
    }
    if (ctl_alarm_proxy_register(c, h) < 0) {
        snprintf(err, errlen, "cannot add the alarm engines' routes");
        return -1;
    }
    if (ctl_overview_register(c, h) < 0 || ctl_console_register(c, h) < 0) {
        snprintf(err, errlen, "cannot add the web console's routes");
        return -1;
    }
    if (ctl_input_register(c, h) < 0) {
        snprintf(err, errlen, "cannot add route /api/v1/alertmanager");
        return -1;
    }
    return 0;
}
