/*
 * The monitoring query API (docs/control.md "Monitoring queries"): requests checked by
 * control/query_parse.c (the on-demand forms handed to control/ondemand.c), answered from the
 * InfluxDB 1.x the controller writes to (output.url, output.db) over the loop's HTTP client,
 * in our shape or in CB-Dragonfly's. A reply waits on the store, so the request may be gone
 * by then (control/deferred.c).
 */
#define DSF_MODULE "control"
#include "common/http.h"
#include "common/http_client.h"
#include "common/influx_url.h"
#include "common/log.h"
#include "control/control_impl.h"
#include "control/query.h"

#include <curl/curl.h>
#include <event2/http.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QUERY_TEXT_MAX 16384
#define QUERY_ANSWER_MAX (64 << 20) /* an answer from the store larger than this is refused */

enum { Q_OK, Q_REFUSED, Q_STORE_FAILED, Q_STORE_DOWN };

struct query_call {
    struct control *c;
    struct dsf_http_deferred reply;
    struct qp_request r;
};

/* Answers (when the request is still there) and ends the call. */
static void finish(struct query_call *q, int code, json_t *o)
{
    q->c->stats.queries[code == 200 ? Q_OK : code == 503 ? Q_STORE_DOWN : Q_STORE_FAILED]++;
    dsf_http_deferred_reply_json(&q->reply, code, o);
    free(q);
}

static json_t *error_json(const struct qp_request *r, const char *msg)
{
    json_t *o = json_pack("{s:s}", "error", msg);
    if (r->form == QP_DRAGONFLY) /* CB-Dragonfly's clients read "message" */
        json_object_set_new(o, "message", json_string(msg));
    return o;
}

__attribute__((format(printf, 3, 4))) static void store_error(struct query_call *q, int code,
                                                              const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    log_warn("query %s/%s/%s %s: %s", q->r.ns, q->r.mci, q->r.vm, q->r.metric->name, msg);
    finish(q, code, error_json(&q->r, msg));
}

static json_t *columns_json(const struct qp_metric *m)
{
    json_t *cols = json_pack("[s]", "time");
    for (size_t i = 0; i < m->nfields; i++)
        json_array_append_new(cols, json_string(m->fields[i].name));
    return cols;
}

/* The rows of a statement's first series ([] when it has none). */
static json_t *first_values(json_t *result)
{
    json_t *v = json_object_get(json_array_get(json_object_get(result, "series"), 0), "values");
    return json_is_array(v) ? json_incref(v) : json_array();
}

static json_t *answer_ours(const struct qp_request *r, json_t *results)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o}", "ns", r->ns, "mci", r->mci,
                          "metric", r->metric->name, "period", (char[]){r->period, '\0'}, "stat",
                          qp_stat_name(r->stat), "duration", r->duration, "columns",
                          columns_json(r->metric), "values",
                          first_values(json_array_get(results, r->form == QP_MCI)));
    if (r->form == QP_VM) {
        json_object_set_new(o, "vm", json_string(r->vm));
        return o;
    }
    json_t *vms = json_object(), *s;
    size_t i;
    json_array_foreach(json_object_get(json_array_get(results, 0), "series"), i, s)
    {
        const char *vm = json_string_value(json_object_get(json_object_get(s, "tags"), "vm"));
        json_t *v = json_object_get(s, "values");
        if (vm && json_is_array(v))
            json_object_set(vms, vm, v);
    }
    json_object_set_new(o, "vms", vms);
    return o;
}

/* CB-Dragonfly's: {"name", "tags": {"nsId", "mcisId", "vmId"}, "values": [{"time": ...,
 * column: value, ...}]}. */
static json_t *answer_dragonfly(const struct qp_request *r, json_t *results)
{
    json_t *rows = first_values(json_array_get(results, 0)), *list = json_array(), *row;
    size_t i;
    json_array_foreach(rows, i, row)
    {
        json_t *obj = json_pack("{s:O}", "time", json_array_get(row, 0));
        for (size_t k = 0; obj && k < r->metric->nfields; k++) {
            json_t *v = json_array_get(row, k + 1);
            json_object_set(obj, r->metric->fields[k].name, v ? v : json_null());
        }
        if (obj)
            json_array_append_new(list, obj);
    }
    json_decref(rows);
    return json_pack("{s:s, s:{s:s, s:s, s:s}, s:o}", "name", r->metric->name, "tags", "nsId",
                     r->ns, "mcisId", r->mci, "vmId", r->vm, "values", list);
}

/* The store's answer: {"results": [{"series": [...]} or {"error": "..."}], ...}. */
static void store_answered(void *arg, const struct dsf_http_response *resp)
{
    struct query_call *q = arg;
    if (resp->status == 0) {
        store_error(q, 503, "the store (output.url) did not answer: %s",
                    resp->error ? resp->error : "no answer");
        return;
    }
    if (resp->len > QUERY_ANSWER_MAX) {
        store_error(q, 502, "the store's answer is larger than %d MiB", QUERY_ANSWER_MAX >> 20);
        return;
    }
    json_t *body = json_loadb(resp->body, resp->len, 0, NULL);
    const char *err = json_string_value(json_object_get(body, "error"));
    json_t *results = json_object_get(body, "results"), *r;
    size_t i;
    json_array_foreach(results, i, r)
    {
        if (!err)
            err = json_string_value(json_object_get(r, "error"));
    }
    if (resp->status != 200 || err || !json_is_array(results)) {
        char what[520];
        snprintf(what, sizeof(what), "HTTP %ld: %.500s", resp->status,
                 err ? err : "not an InfluxDB 1.x answer");
        json_decref(body);
        store_error(q, 502, "the store refused the query (%s)", what);
        return;
    }
    json_t *o =
        q->r.form == QP_DRAGONFLY ? answer_dragonfly(&q->r, results) : answer_ours(&q->r, results);
    json_decref(body);
    finish(q, 200, o);
}

/* The request to the store: POST {url}/query?db=DB with q form-encoded in the body. */
static int send_query(struct query_call *q, char *err, size_t errlen)
{
    const struct dsf_event_store_config *out = &q->c->out_cfg.output;
    char url[2048], text[QUERY_TEXT_MAX];
    if (qp_influxql(&q->r, text, sizeof(text)) < 0) {
        snprintf(err, errlen, "the query is longer than %d bytes", QUERY_TEXT_MAX);
        return -1;
    }
    if (influx_query_url(out->url, out->db, url, sizeof(url), err, errlen) < 0)
        return -1;
    char *enc = curl_easy_escape(NULL, text, 0);
    struct dsf_buf body = {0};
    buf_puts(&body, "q=");
    buf_puts(&body, enc ? enc : "");
    curl_free(enc);
    static const char *const headers[] = {"Content-Type: application/x-www-form-urlencoded", NULL};
    struct dsf_http_request hr = {
        .method = "POST",
        .url = url,
        .headers = headers,
        .body = body.data,
        .len = body.len,
        .timeout_ms = out->timeout_ms,
        .user = out->username && *out->username ? out->username : NULL,
        .password = out->password && *out->password ? out->password : NULL,
    };
    int rc = enc ? dsf_http_client_send(q->c->http, &hr, store_answered, q) : -1;
    buf_free(&body);
    if (rc < 0)
        snprintf(err, errlen, "cannot start the request to the store");
    return rc;
}

static void serve_query(struct evhttp_request *req, void *arg)
{
    struct control *c = arg;
    if (!dsf_http_only_get(req))
        return;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = evhttp_uri_get_path(uri);
    struct qp_error e;
    struct query_call *q = calloc(1, sizeof(*q));
    if (!q) {
        dsf_http_reply_error(req, 503, "out of memory");
        return;
    }
    q->c = c;
    dsf_http_defer(&q->reply, req);
    if (qp_parse(path ? path : "", evhttp_uri_get_query(uri), &q->r, &e) < 0) {
        if (q->r.form == QP_ONDEMAND || q->r.form == QP_NETLATENCY)
            ctl_ondemand_refused(c);
        else
            c->stats.queries[Q_REFUSED]++;
        json_t *o = error_json(&q->r, e.msg);
        json_object_set_new(o, "parameter", json_string(e.param));
        dsf_http_deferred_reply_json(&q->reply, e.status, o);
        free(q);
        return;
    }
    if (q->r.form == QP_ONDEMAND || q->r.form == QP_NETLATENCY) {
        ctl_ondemand_serve(c, dsf_http_deferred_take(&q->reply), &q->r);
        free(q);
        return;
    }
    char err[512];
    if (!c->out_cfg.output.url || !*c->out_cfg.output.url) {
        store_error(q, 503, "%s", "no store to query: output.url is not set");
        return;
    }
    if (send_query(q, err, sizeof(err)) < 0) {
        store_error(q, 502, "%s", err);
        return;
    }
}

int ctl_query_register(struct control *c, struct dsf_http_server *h)
{
    if (dsf_http_route(h, "/api/v1/ns/*", serve_query, c, 0) < 0 ||
        dsf_http_route(h, "/dragonfly/ns/*", serve_query, c, 0) < 0)
        return -1;
    return 0;
}
