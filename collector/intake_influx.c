/*
 * InfluxDB's write API on the collector's HTTP listener (intake.influx), so that Telegraf's
 * outputs.influxdb and outputs.influxdb_v2, and any InfluxDB client, write to Damselfly
 * unchanged: POST /write (v1) and POST /api/v2/write take line protocol, gzip'd or not, at
 * any of InfluxDB's precisions; the lines take the bus's way through the pipeline without an
 * identity (stored as sent); the answer waits for the store (or the spool): 204 once it took
 * the batch, 400 with InfluxDB's partial-write body when lines were refused (the good ones
 * kept), 503 with Retry-After while the writer holds too much. GET /ping and POST /query
 * (CREATE DATABASE only) answer what clients probe at start-up. Prometheus remote_write
 * (POST /api/v1/write, intake.remote_write) takes the same way once intake_remote.c has made
 * its body line protocol.
 */
#define DSF_MODULE "intake"
#include "collector/collector.h"
#include "collector/writer.h"
#include "common/http.h"
#include "common/log.h"
#include "common/loop.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

enum intake_route {
    ROUTE_WRITE_V1,
    ROUTE_WRITE_V2,
    ROUTE_PING,
    ROUTE_QUERY,
    ROUTE_REMOTE_WRITE, /* Prometheus remote_write: intake_remote.c makes its lines */
    INTAKE_ROUTES
};
static const char *const route_paths[INTAKE_ROUTES] = {"/write", "/api/v2/write", "/ping", "/query",
                                                       "/api/v1/write"};
static const int answer_codes[] = {200, 204, 400, 405, 413, 500, 501, 503};
#define INTAKE_CODES (sizeof(answer_codes) / sizeof(answer_codes[0]))
#define RETRY_AFTER_S "1"

struct pending_write;

struct intake_influx {
    struct collector *c;
    uint64_t answers[INTAKE_ROUTES][INTAKE_CODES];
    char labels[INTAKE_ROUTES][INTAKE_CODES][48];
    struct dsf_buf decoded;        /* a gzip'd body, decompressed */
    struct pending_write *pending; /* answers that wait for the store */
};

/* One write waiting for the store: its batch holds the first bad line for the answer. */
struct pending_write {
    struct dsf_http_deferred reply;
    struct intake_influx *ix;
    enum intake_route route;
    struct pending_write *prev, *next;
    struct pipeline_batch batch;
};

static void count_answer(struct intake_influx *ix, enum intake_route r, int code)
{
    for (size_t i = 0; i < INTAKE_CODES; i++)
        if (answer_codes[i] == code)
            ix->answers[r][i]++;
}

/* InfluxDB's error bodies: v1 {"error":m}, v2 {"code":...,"message":m}. */
static void answer_error(struct intake_influx *ix, struct evhttp_request *req, enum intake_route r,
                         int code, const char *message)
{
    count_answer(ix, r, code);
    if (code == 503)
        evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", RETRY_AFTER_S);
    if (r != ROUTE_WRITE_V2) {
        dsf_http_reply_json(req, code, json_pack("{s:s}", "error", message));
        return;
    }
    const char *kind = code == 413   ? "request too large"
                       : code == 503 ? "unavailable"
                       : code == 405 ? "method not allowed"
                       : code >= 500 ? "internal error"
                                     : "invalid";
    dsf_http_reply_json(req, code, json_pack("{s:s,s:s}", "code", kind, "message", message));
}

static void answer_no_content(struct intake_influx *ix, struct evhttp_request *req,
                              enum intake_route r)
{
    count_answer(ix, r, 204);
    evhttp_add_header(evhttp_request_get_output_headers(req), "X-Influxdb-Version", "damselfly");
    evhttp_send_reply(req, 204, "No Content", NULL);
}

static void pending_unlink(struct pending_write *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        p->ix->pending = p->next;
    if (p->next)
        p->next->prev = p->prev;
}

/* The store took the batch (or the spool did): 204, or 400 naming the first bad line. */
static void write_stored(void *owner, uint64_t value, const char *tag)
{
    struct pending_write *p = owner;
    enum intake_route r = p->route;
    struct evhttp_request *req = dsf_http_deferred_take(&p->reply);
    if (req && p->batch.rejected) {
        char msg[sizeof(p->batch.first_bad) + 64];
        snprintf(msg, sizeof(msg), "partial write: %s dropped=%u", p->batch.first_bad,
                 p->batch.rejected);
        answer_error(p->ix, req, r, 400, msg);
    } else if (req) {
        answer_no_content(p->ix, req, r);
    }
    pending_unlink(p);
    free(p);
}

/* Not taken: the writer holds too much (or is going away). The client sends it again. */
static void write_abandoned(void *owner, uint64_t value, const char *tag)
{
    struct pending_write *p = owner;
    struct evhttp_request *req = dsf_http_deferred_take(&p->reply);
    if (req)
        answer_error(p->ix, req, p->route, 503,
                     "the collector holds too much for the store: retry later");
    pending_unlink(p);
    free(p);
}

static const struct writer_mark_ops write_mark = {write_stored, write_abandoned};

/* Nanoseconds per unit of precision p: v1 takes n ns u us ms s m h, v2 ns us ms s. 0 when
 * unknown. */
static int64_t precision_unit(const char *p, int v2)
{
    static const struct {
        const char *name;
        int64_t ns;
        int v1_only;
    } units[] = {
        {"ns", 1, 0},       {"n", 1, 1},          {"us", 1000, 0},       {"u", 1000, 1},
        {"ms", 1000000, 0}, {"s", 1000000000, 0}, {"m", 60000000000, 1}, {"h", 3600000000000, 1}};
    if (!p || !*p)
        return 1;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (strcmp(p, units[i].name) == 0 && !(v2 && units[i].v1_only))
            return units[i].ns;
    return 0;
}

/* Decompresses a gzip body into out up to cap bytes. 0, 1 beyond the cap, -1 not gzip. */
static int gunzip(const unsigned char *in, size_t len, struct dsf_buf *out, size_t cap)
{
    z_stream z = {0};
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
        return -1;
    buf_reset(out);
    z.next_in = (unsigned char *)in;
    z.avail_in = (uInt)len;
    int rc = Z_OK;
    while (rc == Z_OK) {
        if (out->len >= cap) {
            inflateEnd(&z);
            return 1;
        }
        size_t room = cap - out->len < 65536 ? cap - out->len : 65536;
        if (buf_reserve(out, room)) {
            inflateEnd(&z);
            return -1;
        }
        z.next_out = (unsigned char *)out->data + out->len;
        z.avail_out = (uInt)room;
        rc = inflate(&z, Z_NO_FLUSH);
        out->len += room - z.avail_out;
    }
    inflateEnd(&z);
    return rc == Z_STREAM_END ? 0 : -1;
}

/* The body as line protocol (decompressed when gzip'd); NULL after answering. */
static const char *write_body(struct intake_influx *ix, struct evhttp_request *req,
                              enum intake_route r, size_t *len)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    *len = evbuffer_get_length(in);
    const struct collector_config *cfg = &ix->c->cfg;
    if (*len > cfg->intake.max_body) {
        answer_error(ix, req, r, 413, "request body larger than intake.max_body");
        return NULL;
    }
    const char *body = (const char *)evbuffer_pullup(in, -1);
    if (r == ROUTE_REMOTE_WRITE) {
        char why[256];
        int rc = intake_remote_lines(ix->c, body ? body : "", *len, &ix->decoded, why, sizeof(why));
        if (rc) {
            answer_error(ix, req, r, rc > 0 ? 413 : 400, why);
            return NULL;
        }
        *len = ix->decoded.len;
        return ix->decoded.len ? ix->decoded.data : "";
    }
    const char *enc = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Encoding");
    if (!enc || !*enc || strcasecmp(enc, "identity") == 0)
        return body ? body : "";
    if (strcasecmp(enc, "gzip") != 0) {
        answer_error(ix, req, r, 400, "unsupported Content-Encoding: gzip or none");
        return NULL;
    }
    int rc = gunzip((const unsigned char *)body, *len, &ix->decoded, cfg->intake.max_decoded);
    if (rc) {
        answer_error(ix, req, r, rc > 0 ? 413 : 400,
                     rc > 0 ? "decompressed body larger than intake.max_decoded"
                            : "body is not valid gzip");
        return NULL;
    }
    *len = ix->decoded.len;
    return ix->decoded.len ? ix->decoded.data : "";
}

static void serve_write(struct intake_influx *ix, struct evhttp_request *req, enum intake_route r)
{
    struct collector *c = ix->c;
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "POST");
        answer_error(ix, req, r, 405, "only POST is supported here");
        return;
    }
    if (writer_pending_bytes(c->writer) >= c->cfg.batch.max_pending_bytes) {
        answer_error(ix, req, r, 503, "the collector holds too much for the store: retry later");
        return;
    }
    struct evkeyvalq query = {0};
    const char *q = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
    if (q)
        evhttp_parse_query_str(q, &query);
    int64_t unit = r == ROUTE_REMOTE_WRITE ? 1 /* its lines are rendered in ns */
                                           : precision_unit(evhttp_find_header(&query, "precision"),
                                                            r == ROUTE_WRITE_V2);
    evhttp_clear_headers(&query);
    if (!unit) {
        answer_error(ix, req, r, 400,
                     r == ROUTE_WRITE_V2 ? "invalid precision: ns, us, ms or s"
                                         : "invalid precision: n, ns, u, us, ms, s, m or h");
        return;
    }
    size_t len;
    const char *body = write_body(ix, req, r, &len);
    struct pending_write *p = body ? calloc(1, sizeof(*p)) : NULL;
    struct writer_mark *mark = p ? writer_mark_new(&write_mark, p, 0, "") : NULL;
    if (!mark) {
        if (body)
            answer_error(ix, req, r, 500, "out of memory");
        free(p);
        return;
    }
    p->ix = ix;
    p->route = r;
    p->next = ix->pending;
    if (ix->pending)
        ix->pending->prev = p;
    ix->pending = p;
    static const char *const origins[INTAKE_ROUTES] = {[ROUTE_WRITE_V1] = "http /write",
                                                       [ROUTE_WRITE_V2] = "http /api/v2/write",
                                                       [ROUTE_REMOTE_WRITE] = "http /api/v1/write"};
    p->batch = (struct pipeline_batch){.source = r == ROUTE_REMOTE_WRITE ? PIPELINE_REMOTE_WRITE
                                                                         : PIPELINE_INFLUX,
                                       .origin = origins[r],
                                       .payload = body,
                                       .len = len,
                                       .ts_unit_ns = unit,
                                       .stamp_ns = dsf_now_ns()};
    dsf_http_defer(&p->reply, req);
    pipeline_take(c, &p->batch, &mark, 1); /* p may be answered and gone on return */
}

static void serve_write_v1(struct evhttp_request *req, void *arg)
{
    serve_write(arg, req, ROUTE_WRITE_V1);
}

static void serve_write_v2(struct evhttp_request *req, void *arg)
{
    serve_write(arg, req, ROUTE_WRITE_V2);
}

static void serve_remote_write(struct evhttp_request *req, void *arg)
{
    serve_write(arg, req, ROUTE_REMOTE_WRITE);
}

static void serve_ping(struct evhttp_request *req, void *arg)
{
    if (!dsf_http_only_get(req))
        return;
    answer_no_content(arg, req, ROUTE_PING);
}

/* The statement of a /query request: the q parameter of the URI or of a form body. */
static char *query_statement(struct evhttp_request *req)
{
    struct evkeyvalq params = {0};
    char *q = NULL;
    const char *uq = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
    if (uq && evhttp_parse_query_str(uq, &params) == 0 && evhttp_find_header(&params, "q"))
        q = strdup(evhttp_find_header(&params, "q"));
    evhttp_clear_headers(&params);
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    if (!q && len && len < 65536) {
        char *form = strndup((const char *)evbuffer_pullup(in, -1), len);
        if (form && evhttp_parse_query_str(form, &params) == 0 && evhttp_find_header(&params, "q"))
            q = strdup(evhttp_find_header(&params, "q"));
        evhttp_clear_headers(&params);
        free(form);
    }
    return q;
}

/* Telegraf's outputs.influxdb creates its database at start-up: the points go to the
 * collector's output whatever the database, so CREATE DATABASE succeeds and changes nothing.
 * Nothing else is queried here. */
static void serve_query(struct evhttp_request *req, void *arg)
{
    struct intake_influx *ix = arg;
    char *q = query_statement(req);
    const char *s = q ? q + strspn(q, " \t\r\n") : "";
    if (!q) {
        answer_error(ix, req, ROUTE_QUERY, 400, "missing required parameter \"q\"");
    } else if (strncasecmp(s, "CREATE DATABASE", 15) == 0 && (s[15] == ' ' || s[15] == '\t')) {
        count_answer(ix, ROUTE_QUERY, 200);
        dsf_http_reply_json(req, 200, json_pack("{s:[{s:i}]}", "results", "statement_id", 0));
    } else {
        answer_error(ix, req, ROUTE_QUERY, 501,
                     "the collector takes writes only: CREATE DATABASE is the one statement "
                     "answered (it succeeds and changes nothing); query the store");
    }
    free(q);
}

static void register_metrics(struct intake_influx *ix)
{
    struct dsf_metrics *m = &ix->c->metrics;
    for (int r = 0; r < INTAKE_ROUTES; r++)
        for (size_t i = 0; i < INTAKE_CODES; i++) {
            snprintf(ix->labels[r][i], sizeof(ix->labels[r][i]), "route=\"%s\",code=\"%d\"",
                     route_paths[r], answer_codes[i]);
            metrics_add_u64(m, "damselfly_collector_http_requests_total", DSF_COUNTER,
                            "Requests to the InfluxDB write API (intake.influx) by route and "
                            "answer; refusals of credentials are in "
                            "damselfly_http_requests_refused_total.",
                            ix->labels[r][i], &ix->answers[r][i]);
        }
}

int intake_influx_start(struct collector *c, struct dsf_http_server *h, char *err, size_t errlen)
{
    const struct collector_config *cfg = &c->cfg;
    if (!cfg->intake.influx && !cfg->intake.remote_write)
        return 0;
    if (!h) {
        snprintf(err, errlen, "intake.%s needs the HTTP listener (http.listen is empty)",
                 cfg->intake.influx ? "influx" : "remote_write");
        return -1;
    }
    struct intake_influx *ix = calloc(1, sizeof(*ix));
    if (!ix) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    ix->c = c;
    c->influx = ix;
    const int writes = DSF_HTTP_WRITES | DSF_HTTP_INFLUX_AUTH;
    if (cfg->intake.influx && (dsf_http_route(h, "/write", serve_write_v1, ix, writes) ||
                               dsf_http_route(h, "/api/v2/write", serve_write_v2, ix, writes) ||
                               dsf_http_route(h, "/query", serve_query, ix, writes) ||
                               dsf_http_route(h, "/ping", serve_ping, ix, DSF_HTTP_PUBLIC))) {
        snprintf(err, errlen, "cannot add the InfluxDB routes");
        return -1;
    }
    if (cfg->intake.remote_write &&
        (intake_remote_start(c) ||
         dsf_http_route(h, "/api/v1/write", serve_remote_write, ix, writes))) {
        snprintf(err, errlen, "cannot add the remote_write route");
        return -1;
    }
    dsf_http_set_max_body(h, cfg->intake.max_body);
    register_metrics(ix);
    log_info("write API on:%s%s (up to %llu bytes a body)",
             cfg->intake.influx ? " POST /write, POST /api/v2/write" : "",
             cfg->intake.remote_write ? " POST /api/v1/write (remote_write)" : "",
             (unsigned long long)cfg->intake.max_body);
    return 0;
}

void intake_influx_free(struct collector *c)
{
    struct intake_influx *ix = c->influx;
    if (!ix)
        return;
    /* The writer went first and dropped its marks unanswered; the listener went before it,
     * so no request is left to answer. */
    while (ix->pending) {
        struct pending_write *p = ix->pending;
        ix->pending = p->next;
        dsf_http_deferred_take(&p->reply);
        free(p);
    }
    buf_free(&ix->decoded);
    free(ix);
    c->influx = NULL;
}
