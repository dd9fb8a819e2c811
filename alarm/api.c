/*
 * The HTTP API: rules CRUD (validated like files, stored as files, so the directory stays
 * the one truth), active alarms, history, reload, /metrics, /healthz; the notifier adds
 * its silences.
 */
#define DSF_MODULE "api"
#include "alarm/alarm.h"
#include "alarm/notify.h"
#include "common/bus.h"
#include "common/http.h"
#include "common/log.h"
#include "common/metric_json.h"
#include "common/metrics.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON "application/json"

static void reply_buf(struct evhttp_request *req, int code, struct dsf_buf *b)
{
    buf_putc(b, '\n');
    dsf_http_reply(req, code, JSON, b->data, b->len);
    buf_free(b);
}

static void reply_error(struct evhttp_request *req, int code, const char *msg)
{
    struct dsf_buf b = {0};
    buf_puts(&b, "{\"error\":");
    json_put_string(&b, msg);
    buf_putc(&b, '}');
    reply_buf(req, code, &b);
}

static void put_errors(struct dsf_buf *b, const struct alarm *a)
{
    buf_puts(b, "\"rejected\":[");
    for (size_t i = 0; i < a->nrule_errors; i++) {
        if (i)
            buf_putc(b, ',');
        json_put_string(b, a->rule_errors[i]);
    }
    buf_putc(b, ']');
}

static void list_rules(struct evhttp_request *req, struct alarm *a)
{
    struct dsf_buf b = {0};
    buf_puts(&b, "{\"rules\":[");
    for (size_t i = 0; i < engine_rule_count(a->engine); i++) {
        if (i)
            buf_putc(&b, ',');
        buf_puts(&b, engine_rule(a->engine, i)->source);
    }
    buf_puts(&b, "],");
    put_errors(&b, a);
    buf_putc(&b, '}');
    reply_buf(req, 200, &b);
}

static void serve_rules(struct evhttp_request *req, void *arg)
{
    if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
        reply_error(req, 405, "GET lists the rules; PUT and DELETE take /api/v1/rules/{name}");
        return;
    }
    list_rules(req, arg);
}

static int body_text(struct evhttp_request *req, char **text, size_t *len)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    *len = evbuffer_get_length(in);
    *text = malloc(*len + 1);
    if (!*text)
        return -1;
    evbuffer_remove(in, *text, *len);
    (*text)[*len] = '\0';
    return 0;
}

/* rules.max_bytes and rules.max: what one more rule through the API may cost. 0, or -1
 * after answering. */
static int within_caps(struct evhttp_request *req, struct alarm *a, const char *name)
{
    char err[300];
    size_t len = evbuffer_get_length(evhttp_request_get_input_buffer(req));
    if (len > a->cfg.rules_max_bytes) {
        dsf_count(&a->stats.api_rule_too_large, 1);
        snprintf(err, sizeof(err), "the rule has %zu bytes, more than rules.max_bytes (%llu)", len,
                 (unsigned long long)a->cfg.rules_max_bytes);
        reply_error(req, 413, err);
        return -1;
    }
    if (!engine_rule_by_name(a->engine, name) &&
        engine_rule_count(a->engine) >= (size_t)a->cfg.rules_max) {
        dsf_count(&a->stats.api_rules_max, 1);
        snprintf(err, sizeof(err), "rules.max (%lld) reached: delete a rule first",
                 (long long)a->cfg.rules_max);
        reply_error(req, 409, err);
        return -1;
    }
    return 0;
}

static void put_rule(struct evhttp_request *req, struct alarm *a, const char *name)
{
    char *text, err[1024];
    size_t len;
    if (within_caps(req, a, name))
        return;
    if (body_text(req, &text, &len)) {
        reply_error(req, 500, "out of memory");
        return;
    }
    json_error_t jerr;
    json_t *o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    free(text);
    if (!json_is_object(o)) {
        snprintf(err, sizeof(err), "body: expected one rule as a JSON object (%s)", jerr.text);
        json_decref(o);
        reply_error(req, 400, err);
        return;
    }
    const char *given = json_string_value(json_object_get(o, "name"));
    if (given && strcmp(given, name) != 0) {
        snprintf(err, sizeof(err), "key 'name': '%s' differs from the path's '%s'", given, name);
        json_decref(o);
        reply_error(req, 400, err);
        return;
    }
    json_object_set_new(o, "name", json_string(name));
    char origin[300];
    snprintf(origin, sizeof(origin), "%s.json", name);
    struct rule *r = rule_from_json(o, origin, err, sizeof(err));
    const struct rule *existing = engine_rule_by_name(a->engine, name);
    char want[4200];
    snprintf(want, sizeof(want), "%s/%s.json", a->cfg.rules_dir, name);
    if (r && existing && strcmp(existing->origin, want) != 0) {
        snprintf(err, sizeof(err), "rule '%s' is defined in %s: change it there", name,
                 existing->origin);
        rule_free(r);
        r = NULL;
        json_decref(o);
        reply_error(req, 409, err);
        return;
    }
    if (!r) {
        json_decref(o);
        reply_error(req, 400, err);
        return;
    }
    rule_free(r);
    char *pretty = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(o);
    int rc = pretty ? alarm_write_rule_file(a, name, pretty, strlen(pretty), err, sizeof(err))
                    : (snprintf(err, sizeof(err), "out of memory"), -1);
    free(pretty);
    if (rc) {
        reply_error(req, 500, err);
        return;
    }
    alarm_load_rules(a);
    const struct rule *now = engine_rule_by_name(a->engine, name);
    if (!now) {
        reply_error(req, 500, "written, but not loaded: see the log");
        return;
    }
    struct dsf_buf b = {0};
    buf_puts(&b, now->source);
    reply_buf(req, existing ? 200 : 201, &b);
}

static void delete_rule(struct evhttp_request *req, struct alarm *a, const char *name)
{
    const struct rule *r = engine_rule_by_name(a->engine, name);
    char want[4200], err[1024];
    snprintf(want, sizeof(want), "%s/%s.json", a->cfg.rules_dir, name);
    if (!r) {
        reply_error(req, 404, "no such rule");
        return;
    }
    if (strcmp(r->origin, want) != 0) {
        snprintf(err, sizeof(err), "rule '%s' is defined in %s with others: change it there", name,
                 r->origin);
        reply_error(req, 409, err);
        return;
    }
    if (alarm_write_rule_file(a, name, NULL, 0, err, sizeof(err))) {
        reply_error(req, 500, err);
        return;
    }
    alarm_load_rules(a);
    struct dsf_buf b = {0};
    buf_puts(&b, "{\"deleted\":");
    json_put_string(&b, name);
    buf_putc(&b, '}');
    reply_buf(req, 200, &b);
}

static void serve_rule(struct evhttp_request *req, void *arg)
{
    struct alarm *a = arg;
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    const char *name = path + strlen("/api/v1/rules/");
    for (const char *p = name; *p; p++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.", *p) ||
            p - name >= RULE_NAME_MAX - 1) {
            reply_error(req, 400, "a rule name has letters, digits, '_', '-' and '.'");
            return;
        }
    if (!*name || name[0] == '.') {
        reply_error(req, 400, "a rule name has letters, digits, '_', '-' and '.'");
        return;
    }
    switch (evhttp_request_get_command(req)) {
    case EVHTTP_REQ_GET: {
        const struct rule *r = engine_rule_by_name(a->engine, name);
        if (!r) {
            reply_error(req, 404, "no such rule");
            return;
        }
        struct dsf_buf b = {0};
        buf_puts(&b, r->source);
        reply_buf(req, 200, &b);
        return;
    }
    case EVHTTP_REQ_PUT:
        put_rule(req, a, name);
        return;
    case EVHTTP_REQ_DELETE:
        delete_rule(req, a, name);
        return;
    default:
        reply_error(req, 405, "GET, PUT or DELETE");
    }
}

struct listing {
    struct dsf_buf *b;
    size_t n;
    const char *state; /* filter, or NULL */
    const char *engine;
};

static void add_active(void *arg, const struct rule *r, struct series *s)
{
    struct listing *l = arg;
    if (s->state != ST_PENDING && s->state != ST_FIRING && s->state != ST_NODATA)
        return;
    if (l->state && strcmp(l->state, alarm_state_name((enum alarm_state)s->state)) != 0)
        return;
    if (l->n++)
        buf_putc(l->b, ',');
    alarm_render_series(l->b, r, s);
    /* As the events carry it, so a reader keys an alarm seen here and on the bus alike. */
    l->b->len--;
    buf_puts(l->b, ",\"engine\":");
    json_put_string(l->b, l->engine);
    buf_putc(l->b, '}');
}

static const char *query_param(struct evhttp_request *req, const char *key, char *out, size_t cap)
{
    struct evkeyvalq q;
    const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
    if (!query || evhttp_parse_query_str(query, &q))
        return NULL;
    const char *v = evhttp_find_header(&q, key);
    if (v)
        snprintf(out, cap, "%s", v);
    evhttp_clear_headers(&q);
    return v ? out : NULL;
}

static void serve_alarms(struct evhttp_request *req, void *arg)
{
    struct alarm *a = arg;
    struct dsf_buf b = {0};
    char state[32];
    struct listing l = {&b, 0, query_param(req, "state", state, sizeof(state)), a->cfg.id};
    buf_puts(&b, "{\"alarms\":[");
    engine_foreach(a->engine, add_active, &l);
    buf_puts(&b, "]}");
    reply_buf(req, 200, &b);
}

static void serve_history(struct evhttp_request *req, void *arg)
{
    struct alarm *a = arg;
    const struct history *h = &a->history;
    char lim[32];
    size_t limit = h->n;
    if (query_param(req, "limit", lim, sizeof(lim)) && atol(lim) > 0 && (size_t)atol(lim) < limit)
        limit = (size_t)atol(lim);
    struct dsf_buf b = {0};
    buf_puts(&b, "{\"events\":[");
    for (size_t i = h->n - limit; i < h->n; i++) {
        if (i != h->n - limit)
            buf_putc(&b, ',');
        buf_puts(&b, h->items[(h->head + i) % h->cap]);
    }
    buf_puts(&b, "]}");
    reply_buf(req, 200, &b);
}

static void serve_reload(struct evhttp_request *req, void *arg)
{
    struct alarm *a = arg;
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        reply_error(req, 405, "POST");
        return;
    }
    int rc = alarm_load_rules(a);
#ifdef DSF_HAVE_NOTIFIER
    char err[512];
    if (a->notifier && notifier_reload(a->notifier, err, sizeof(err))) {
        reply_error(req, 400, err);
        return;
    }
#endif
    struct dsf_buf b = {0};
    buf_printf(&b, "{\"rules\":%zu,", engine_rule_count(a->engine));
    put_errors(&b, a);
    buf_putc(&b, '}');
    reply_buf(req, rc ? 500 : 200, &b);
}

void alarm_render_metrics(void *arg, struct dsf_buf *out)
{
#ifdef DSF_HAVE_NOTIFIER
    struct alarm *a = arg;
    if (a->notifier)
        notifier_render_metrics(a->notifier, out);
#endif
}

void alarm_health(void *arg, struct dsf_buf *out)
{
    struct alarm *a = arg;
    buf_printf(out, ",\"connected\":%s,\"rules\":%zu,\"series\":%zu",
               a->bus && dsf_bus_connected(a->bus) && (!a->pub || dsf_bus_connected(a->pub))
                   ? "true"
                   : "false",
               engine_rule_count(a->engine), engine_series_count(a->engine));
}

int alarm_api_start(struct alarm *a, char *err, size_t errlen)
{
    if (!a->http)
        return 0;
    /* Writes (PUT and DELETE of a rule, the reload) need the write token: common/http.h. */
    dsf_http_route(a->http, "/api/v1/rules", serve_rules, a, 0);
    dsf_http_route(a->http, "/api/v1/rules/*", serve_rule, a, DSF_HTTP_WRITES);
    dsf_http_route(a->http, "/api/v1/alarms", serve_alarms, a, 0);
    dsf_http_route(a->http, "/api/v1/history", serve_history, a, 0);
    dsf_http_route(a->http, "/api/v1/reload", serve_reload, a, DSF_HTTP_WRITES);
#ifdef DSF_HAVE_NOTIFIER
    if (a->notifier && notifier_register_api(a->notifier, a->http)) {
        snprintf(err, errlen, "cannot add the silences API");
        return -1;
    }
#endif
    return 0;
}
