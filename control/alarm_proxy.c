/*
 * The alarm engines' API through the controller (docs/control.md "Alarms and silences"), so
 * clients need one base URL: every engine (alarm.engines) is asked at once on the loop's HTTP
 * client, with its token, and the answers are merged. An alarm lives in one engine and moves
 * with its bucket, so reads are the union and a silence is created in every engine under one
 * id the controller chooses: a later DELETE of that id expires it everywhere, GET lists it
 * once with the engines that hold it, and a POST retried with the id replaces rather than
 * doubles. An engine that does not answer in time is named in "errors" with "partial": true;
 * when none answers the client gets 502 (504 when every engine timed out).
 */
#define DSF_MODULE "control"
#include "common/http.h"
#include "common/http_client.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/uuid.h"
#include "control/control_impl.h"

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROXY_BODY_MAX (64 * 1024)
#define PROXY_QUERY_MAX 1024
#define PROXY_URL_MAX 2048

enum px_kind { PX_ALARMS, PX_HISTORY, PX_SILENCES, PX_CREATE, PX_DELETE };
enum { PX_OK, PX_PARTIAL, PX_FAILED, PX_REFUSED }; /* control_stats.proxy */

struct px_call;

/* One engine's part of a call. */
struct px_answer {
    struct px_call *call;
    long status;     /* 0: no answer */
    int timed_out;   /* no answer within alarm.timeout */
    int absent;      /* a DELETE answered 404: the engine holds no such silence */
    json_t *body;    /* the parsed answer, or NULL */
    char error[300]; /* why the engine's part failed, "" when it did not */
};

struct px_call {
    struct control *c;
    struct dsf_http_deferred reply;
    enum px_kind kind;
    size_t pending, n;
    long limit; /* GET /api/v1/history?limit=N: the merged answer keeps the latest N */
    char id[DSF_UUID_LEN + 1];
    struct px_answer a[];
};

/* ---- replying after the engines answered ---- */

static void px_free(struct px_call *p)
{
    for (size_t i = 0; i < p->n; i++)
        json_decref(p->a[i].body);
    free(p);
}

static void reply(struct px_call *p, int code, json_t *o)
{
    int result = code >= 500 ? PX_FAILED : code >= 400 ? PX_REFUSED : PX_OK;
    if (result == PX_OK && json_is_true(json_object_get(o, "partial")))
        result = PX_PARTIAL;
    dsf_count(&p->c->stats.proxy[result], 1);
    dsf_http_deferred_reply_json(&p->reply, code, o);
    px_free(p);
}

static const char *engine_url(const struct px_call *p, size_t i)
{
    return p->c->cfg.engines.items[i];
}

/* {"partial": bool, "errors": {engine: why}} added to o, which is returned. */
static json_t *with_errors(const struct px_call *p, json_t *o, int partial)
{
    json_t *errors = json_object();
    for (size_t i = 0; i < p->n; i++)
        if (p->a[i].error[0])
            json_object_set_new(errors, engine_url(p, i), json_string(p->a[i].error));
    json_object_set_new(o, "partial", json_boolean(partial));
    json_object_set_new(o, "errors", errors);
    return o;
}

/* A client's mistake an engine refused (400, 409, 413...): passed on as it is. Not the
 * controller's token (401, 403), nor a route the engine lacks (404: silences without
 * notify.config), which are the deployment's. */
static int client_error(long status)
{
    return status >= 400 && status < 500 && status != 401 && status != 403 && status != 404;
}

/* No engine gave a usable answer: an engine's refusal of the client's request as it was,
 * else 504 when every engine timed out, else 502. */
static void reply_failed(struct px_call *p)
{
    size_t timeouts = 0;
    for (size_t i = 0; i < p->n; i++) {
        if (client_error(p->a[i].status)) {
            json_t *e = json_object_get(p->a[i].body, "error");
            json_t *o = json_pack("{s:s}", "error",
                                  json_is_string(e) ? json_string_value(e) : p->a[i].error);
            reply(p, (int)p->a[i].status, with_errors(p, o, 0));
            return;
        }
        timeouts += (size_t)p->a[i].timed_out;
    }
    int code = timeouts == p->n ? 504 : 502;
    log_warn("alarm proxy: no alarm engine answered (%zu timed out of %zu)", timeouts, p->n);
    json_t *o = json_pack("{s:s}", "error",
                          code == 504 ? "no alarm engine answered within alarm.timeout"
                                      : "no alarm engine could be reached");
    reply(p, code, with_errors(p, o, 0));
}

/* ---- merging ---- */

/* The items of every usable answer in one array: key names the array in an object answer,
 * NULL for an answer that is the array. 0 usable answers: NULL. */
static json_t *union_of(struct px_call *p, const char *key, size_t *usable)
{
    json_t *all = json_array();
    *usable = 0;
    for (size_t i = 0; i < p->n; i++) {
        if (p->a[i].error[0])
            continue;
        json_t *items = key ? json_object_get(p->a[i].body, key) : p->a[i].body;
        json_array_extend(all, items);
        (*usable)++;
    }
    return all;
}

static int by_ts(const void *x, const void *y)
{
    json_int_t a = json_integer_value(json_object_get(*(json_t *const *)x, "ts"));
    json_int_t b = json_integer_value(json_object_get(*(json_t *const *)y, "ts"));
    return a < b ? -1 : a > b;
}

/* The engines' histories as one, oldest first, the latest limit kept when one was asked. */
static json_t *merge_history(json_t *all, long limit)
{
    size_t n = json_array_size(all);
    json_t **v = calloc(n ? n : 1, sizeof(*v));
    json_t *out = json_array();
    if (!v) {
        json_decref(all);
        return out;
    }
    for (size_t i = 0; i < n; i++)
        v[i] = json_array_get(all, i);
    qsort(v, n, sizeof(*v), by_ts);
    size_t from = limit > 0 && (size_t)limit < n ? n - (size_t)limit : 0;
    for (size_t i = from; i < n; i++)
        json_array_append(out, v[i]);
    free(v);
    json_decref(all);
    return out;
}

/* 2 active, 1 pending, 0 expired (or unknown). */
static int in_force(const json_t *s)
{
    const char *st = json_string_value(json_object_get(json_object_get(s, "status"), "state"));
    return !st ? 0 : !strcmp(st, "active") ? 2 : !strcmp(st, "pending");
}

/* The silences by id, each once with "engines": the engines that hold it. Where the engines
 * differ (one was down when it was expired), the one most in force speaks: the silence still
 * mutes alerts there. */
static json_t *merge_silences(struct px_call *p)
{
    json_t *by_id = json_object(), *out = json_array();
    for (size_t i = 0; i < p->n; i++) {
        size_t k;
        json_t *s;
        if (p->a[i].error[0])
            continue;
        json_array_foreach(p->a[i].body, k, s)
        {
            const char *id = json_string_value(json_object_get(s, "id"));
            if (!id)
                continue;
            json_t *seen = json_object_get(by_id, id);
            if (!seen) {
                seen = json_deep_copy(s);
                json_object_set_new(seen, "engines", json_array());
                json_object_set_new(by_id, id, seen);
                json_array_append(out, seen);
            } else if (in_force(s) > in_force(seen)) {
                json_object_update(seen, s);
            }
            json_array_append_new(json_object_get(seen, "engines"), json_string(engine_url(p, i)));
        }
    }
    json_decref(by_id);
    return out;
}

static void finish_read(struct px_call *p)
{
    size_t usable;
    json_t *o;
    if (p->kind == PX_SILENCES) {
        json_decref(union_of(p, NULL, &usable));
        o = json_pack("{s:o}", "silences", merge_silences(p));
    } else if (p->kind == PX_HISTORY) {
        json_t *all = union_of(p, "events", &usable);
        o = json_pack("{s:o}", "events", merge_history(all, p->limit));
    } else {
        o = json_pack("{s:o}", "alarms", union_of(p, "alarms", &usable));
    }
    if (!usable) {
        json_decref(o);
        reply_failed(p);
        return;
    }
    reply(p, 200, with_errors(p, o, usable < p->n));
}

/* POST and DELETE: which engines did it. An engine without the silence (404 to a DELETE)
 * holds nothing to expire: neither done nor an error. */
static void finish_write(struct px_call *p)
{
    json_t *done = json_array();
    size_t absent = 0;
    for (size_t i = 0; i < p->n; i++) {
        if (!p->a[i].error[0] && !p->a[i].absent)
            json_array_append_new(done, json_string(engine_url(p, i)));
        absent += (size_t)p->a[i].absent;
    }
    size_t ok = json_array_size(done), failed = p->n - ok - absent;
    if (!ok && absent && !failed) {
        json_decref(done);
        reply(p, 404,
              json_pack("{s:s, s:s}", "error", "no alarm engine holds this silence", "silenceID",
                        p->id));
        return;
    }
    if (!ok) {
        json_decref(done);
        reply_failed(p);
        return;
    }
    if (failed)
        log_warn("alarm proxy: silence %s %s in %zu of %zu alarm engines", p->id,
                 p->kind == PX_CREATE ? "created" : "expired", ok, p->n);
    json_t *o = json_pack("{s:s, s:o}", "silenceID", p->id, "engines", done);
    reply(p, 200, with_errors(p, o, failed > 0));
}

/* ---- asking the engines ---- */

/* The shape each kind expects: an object with an array under key, or an array. */
static int answer_usable(enum px_kind kind, const json_t *body)
{
    switch (kind) {
    case PX_ALARMS:
        return json_is_array(json_object_get(body, "alarms"));
    case PX_HISTORY:
        return json_is_array(json_object_get(body, "events"));
    case PX_SILENCES:
        return json_is_array(body);
    default:
        return 1;
    }
}

static void engine_answered(void *arg, const struct dsf_http_response *r)
{
    struct px_answer *a = arg;
    struct px_call *p = a->call;
    a->status = r->status;
    a->body = r->status ? json_loadb(r->body, r->len, 0, NULL) : NULL;
    if (!r->status) {
        a->timed_out = r->error && strstr(r->error, "timed out");
        snprintf(a->error, sizeof(a->error), "no answer: %s", r->error ? r->error : "?");
    } else if (p->kind == PX_DELETE && r->status == 404) {
        a->absent = 1;
    } else if (r->status != 200) {
        json_t *e = json_object_get(a->body, "error");
        snprintf(a->error, sizeof(a->error), "status %ld: %s", r->status,
                 json_is_string(e) ? json_string_value(e) : "no error message");
    } else if (!answer_usable(p->kind, a->body)) {
        snprintf(a->error, sizeof(a->error), "status 200 but not the answer expected");
    }
    if (a->error[0]) {
        dsf_count(&p->c->stats.proxy_engine_errors, 1);
        log_warn("alarm proxy: alarm engine %s: %s", engine_url(p, (size_t)(a - p->a)), a->error);
    }
    if (--p->pending)
        return;
    if (p->kind == PX_CREATE || p->kind == PX_DELETE)
        finish_write(p);
    else
        finish_read(p);
}

static const char *const kind_path[] = {"/api/v1/alarms", "/api/v1/history", "/api/v1/silences",
                                        "/api/v1/silences", "/api/v1/silences/"};

/* Sends the call's request to engine i; the answer (or a failure to start) lands in a[i]. */
static void ask_engine(struct px_call *p, size_t i, const char *query, const char *body, size_t len)
{
    static const char *const methods[] = {"GET", "GET", "GET", "POST", "DELETE"};
    struct control *c = p->c;
    const char *base = engine_url(p, i);
    size_t blen = strlen(base);
    while (blen && base[blen - 1] == '/')
        blen--;
    char url[PROXY_URL_MAX];
    int n =
        snprintf(url, sizeof(url), "%.*s%s%s%s%s", (int)blen, base, kind_path[p->kind],
                 p->kind == PX_DELETE ? p->id : "", query && *query ? "?" : "", query ? query : "");
    if (n < 0 || (size_t)n >= sizeof(url)) {
        struct dsf_http_response r = {.status = 0, .error = "the engine's URL is too long"};
        engine_answered(&p->a[i], &r);
        return;
    }
    const char *headers[] = {c->engine_auth[i] ? c->engine_auth[i] : "Accept: application/json",
                             "Content-Type: application/json", NULL};
    struct dsf_http_request hr = {
        .method = methods[p->kind],
        .url = url,
        .headers = headers,
        .body = body,
        .len = len,
        .timeout_ms = c->cfg.engine_timeout_ms,
        .ca_file = c->cfg.engine_ca_file && *c->cfg.engine_ca_file ? c->cfg.engine_ca_file : NULL,
    };
    if (dsf_http_client_send(c->http, &hr, engine_answered, &p->a[i]) < 0) {
        struct dsf_http_response r = {.status = 0, .error = "cannot start the request"};
        engine_answered(&p->a[i], &r);
    }
}

static struct px_call *px_new(struct control *c, struct evhttp_request *req, enum px_kind kind)
{
    size_t n = c->cfg.engines.count;
    if (!n) {
        dsf_count(&c->stats.proxy[PX_REFUSED], 1);
        dsf_http_reply_error(req, 503, "no alarm engines to ask: alarm.engines is not set");
        return NULL;
    }
    struct px_call *p = calloc(1, sizeof(*p) + n * sizeof(p->a[0]));
    if (!p) {
        dsf_http_reply_error(req, 503, "out of memory");
        return NULL;
    }
    p->c = c;
    dsf_http_defer(&p->reply, req);
    p->kind = kind;
    p->n = p->pending = n;
    for (size_t i = 0; i < n; i++)
        p->a[i].call = p;
    return p;
}

/* Every engine asked; the reply goes when the last has answered. */
static void px_send(struct px_call *p, const char *query, const char *body, size_t len)
{
    for (size_t i = 0, n = p->n; i < n; i++)
        ask_engine(p, i, query, body, len);
}

/* ---- the routes ---- */

/* The query string passed on to the engines: their filters (?state=, ?limit=) apply there.
 * NULL after answering 400. */
static const char *query_of(struct control *c, struct evhttp_request *req)
{
    const char *q = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
    if (!q)
        return "";
    size_t n = strlen(q);
    for (size_t i = 0; i < n && n <= PROXY_QUERY_MAX; i++)
        if ((unsigned char)q[i] <= ' ' || (unsigned char)q[i] > '~') {
            n = PROXY_QUERY_MAX + 1;
            break;
        }
    if (n > PROXY_QUERY_MAX) {
        dsf_count(&c->stats.proxy[PX_REFUSED], 1);
        dsf_http_reply_error(req, 400, "query string: at most %d printable characters",
                             PROXY_QUERY_MAX);
        return NULL;
    }
    return q;
}

static void serve_read(struct evhttp_request *req, struct control *c, enum px_kind kind)
{
    if (!dsf_http_only_get(req))
        return;
    const char *query = query_of(c, req);
    struct px_call *p = query ? px_new(c, req, kind) : NULL;
    if (!p)
        return;
    if (kind == PX_HISTORY) {
        struct evkeyvalq args;
        if (evhttp_parse_query_str(query, &args) == 0) {
            const char *l = evhttp_find_header(&args, "limit");
            p->limit = l ? atol(l) : 0;
            evhttp_clear_headers(&args);
        }
    }
    px_send(p, query, NULL, 0);
}

static void serve_alarms(struct evhttp_request *req, void *arg)
{
    serve_read(req, arg, PX_ALARMS);
}

static void serve_history(struct evhttp_request *req, void *arg)
{
    serve_read(req, arg, PX_HISTORY);
}

/* POST /api/v1/silences: the body goes to every engine with the id set. */
static void create_silence(struct evhttp_request *req, struct control *c)
{
    json_t *body = dsf_http_body_json(req, PROXY_BODY_MAX, 0);
    if (!body) {
        dsf_count(&c->stats.proxy[PX_REFUSED], 1);
        return;
    }
    json_t *id = json_object_get(body, "id");
    if (id && (!json_is_string(id) || !dsf_uuid_like(json_string_value(id)))) {
        json_decref(body);
        dsf_count(&c->stats.proxy[PX_REFUSED], 1);
        dsf_http_reply_error(req, 400, "key 'id': expected 1 to %d letters, digits and dashes",
                             DSF_UUID_LEN);
        return;
    }
    struct px_call *p = px_new(c, req, PX_CREATE);
    char *text = NULL;
    if (p) {
        if (id)
            snprintf(p->id, sizeof(p->id), "%s", json_string_value(id));
        else
            dsf_uuid4(p->id);
        json_object_set_new(body, "id", json_string(p->id));
        text = json_dumps(body, JSON_COMPACT);
    }
    json_decref(body);
    if (p && !text) {
        reply(p, 503, json_pack("{s:s}", "error", "out of memory"));
        return;
    }
    if (p)
        px_send(p, NULL, text, strlen(text));
    free(text);
}

static void delete_silence(struct evhttp_request *req, struct control *c, const char *id)
{
    if (!id || !dsf_uuid_like(id)) {
        dsf_count(&c->stats.proxy[PX_REFUSED], 1);
        dsf_http_reply_error(req, id ? 404 : 400,
                             id ? "no such silence" : "expected ?id=SILENCE_ID");
        return;
    }
    struct px_call *p = px_new(c, req, PX_DELETE);
    if (!p)
        return;
    snprintf(p->id, sizeof(p->id), "%s", id);
    px_send(p, NULL, NULL, 0);
}

static void serve_silences(struct evhttp_request *req, void *arg)
{
    struct control *c = arg;
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    if (cmd == EVHTTP_REQ_POST) {
        create_silence(req, c);
    } else if (cmd == EVHTTP_REQ_DELETE) {
        struct evkeyvalq args;
        const char *q = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
        if (evhttp_parse_query_str(q ? q : "", &args) < 0) {
            delete_silence(req, c, NULL);
            return;
        }
        delete_silence(req, c, evhttp_find_header(&args, "id"));
        evhttp_clear_headers(&args);
    } else {
        serve_read(req, c, PX_SILENCES);
    }
}

#define SILENCES "/api/v1/silences/"

static void serve_silence(struct evhttp_request *req, void *arg)
{
    if (evhttp_request_get_command(req) != EVHTTP_REQ_DELETE) {
        dsf_http_reply_error(req, 405, "use DELETE /api/v1/silences/{id}");
        return;
    }
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    size_t n = strlen(SILENCES);
    delete_silence(req, arg, path && strncmp(path, SILENCES, n) == 0 ? path + n : "");
}

void ctl_alarm_proxy_add_metrics(struct control *c)
{
    static const char *const proxied[] = {"ok", "partial", "failed", "refused"};
    struct dsf_metrics *m = &c->metrics;
    metrics_add_u64_by(m, "damselfly_control_alarm_proxy_requests_total", DSF_COUNTER,
                       "Alarm API requests proxied to the alarm engines, by result: every engine "
                       "answered, some did not (partial), none did, refused as malformed.",
                       "result", proxied, 4, c->stats.proxy);
    metrics_add_u64(m, "damselfly_control_alarm_proxy_engine_errors_total", DSF_COUNTER,
                    "An alarm engine's part of a proxied request that failed (no answer in "
                    "alarm.timeout, an error status, an answer not understood).",
                    NULL, &c->stats.proxy_engine_errors);
}

int ctl_alarm_proxy_register(struct control *c, struct dsf_http_server *h)
{
    if (dsf_http_route(h, "/api/v1/alarms", serve_alarms, c, 0) < 0 ||
        dsf_http_route(h, "/api/v1/history", serve_history, c, 0) < 0 ||
        dsf_http_route(h, "/api/v1/silences", serve_silences, c, DSF_HTTP_WRITES) < 0 ||
        dsf_http_route(h, SILENCES "*", serve_silence, c, DSF_HTTP_WRITES) < 0)
        return -1;
    return 0;
}

/* ---- the engines' tokens ---- */

int ctl_alarm_proxy_validate(const struct control_config *cfg, const char *origin, char *err,
                             size_t errlen)
{
    size_t t = cfg->engine_token_files.count, n = cfg->engines.count;
    if (t > 1 && t != n) {
        snprintf(err, errlen,
                 "%s: key 'alarm.token_files': %zu files for %zu alarm.engines: give one for "
                 "every engine, or one per engine",
                 origin, t, n);
        return -1;
    }
    return 0;
}

int ctl_alarm_proxy_open(struct control *c, char *err, size_t errlen)
{
    size_t n = c->cfg.engines.count, t = c->cfg.engine_token_files.count;
    c->engine_auth = calloc(n ? n : 1, sizeof(*c->engine_auth));
    if (!c->engine_auth) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n && t; i++) {
        char token[DSF_HTTP_TOKEN_MAX + 1], why[600];
        const char *path = c->cfg.engine_token_files.items[t == 1 ? 0 : i];
        if (dsf_http_token_read(path, token, why, sizeof(why)) < 0) {
            snprintf(err, errlen, "alarm.token_files: %s", why);
            return -1;
        }
        size_t len = strlen("Authorization: Bearer ") + strlen(token) + 1;
        if (!(c->engine_auth[i] = malloc(len))) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        snprintf(c->engine_auth[i], len, "Authorization: Bearer %s", token);
    }
    return 0;
}

void ctl_alarm_proxy_close(struct control *c)
{
    for (size_t i = 0; c->engine_auth && i < c->cfg.engines.count; i++)
        free(c->engine_auth[i]);
    free(c->engine_auth);
    c->engine_auth = NULL;
}
