/*
 * The silences API, with Alertmanager's JSON shapes: GET lists, POST creates (answering
 * {"silenceID": ...}), DELETE /api/v1/silences/{id} expires (also as ?id= on the
 * collection, for clients that cannot put the id in the path).
 */
#define DSF_MODULE "notify"
#include "alarm/notify/internal.h"
#include "common/http.h"
#include "common/log.h"
#include "common/loop.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void reply_json(struct evhttp_request *req, int code, const char *body)
{
    dsf_http_reply(req, code, "application/json", body, strlen(body));
}

static void reply_error(struct evhttp_request *req, int code, const char *msg)
{
    struct dsf_buf b = {0};
    buf_puts(&b, "{\"error\":");
    nf_json_str(&b, msg);
    buf_puts(&b, "}\n");
    reply_json(req, code, buf_cstr(&b));
    buf_free(&b);
}

static void list(struct notifier *n, struct evhttp_request *req)
{
    struct dsf_buf b = {0};
    nf_silences_json(&n->sil, dsf_now_ns(), &b);
    reply_json(req, 200, buf_cstr(&b));
    buf_free(&b);
}

static void create(struct notifier *n, struct evhttp_request *req)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    const char *body = (const char *)evbuffer_pullup(in, -1);
    char id[37], err[NF_ERRLEN];
    int64_t now = dsf_now_ns();
    int rc = nf_silences_add_json(&n->sil, body ? body : "", len, now, id, err, sizeof(err));
    if (rc) {
        reply_error(req, rc == NF_SILENCE_MAX ? 409 : rc == NF_SILENCE_OOM ? 500 : 400, err);
        if (rc == NF_SILENCE_MAX || rc == NF_SILENCE_TOO_LONG)
            log_warn("silence refused: %s", err);
        return;
    }
    nf_groups_remove_silenced(n, now);
    log_info("silence %s created", id);
    char out[80];
    snprintf(out, sizeof(out), "{\"silenceID\":\"%s\"}\n", id);
    reply_json(req, 200, out);
}

static void expire_id(struct notifier *n, struct evhttp_request *req, const char *id)
{
    if (nf_silences_expire(&n->sil, id, dsf_now_ns()))
        reply_error(req, 404, "no such silence");
    else
        reply_json(req, 200, "{}\n");
}

static void expire(struct notifier *n, struct evhttp_request *req)
{
    struct evkeyvalq q;
    const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
    if (!query || evhttp_parse_query_str(query, &q)) {
        reply_error(req, 400, "expected ?id=SILENCE_ID");
        return;
    }
    const char *id = evhttp_find_header(&q, "id");
    if (!id)
        reply_error(req, 400, "expected ?id=SILENCE_ID");
    else
        expire_id(n, req, id);
    evhttp_clear_headers(&q);
}

static void handle(struct evhttp_request *req, void *arg)
{
    struct notifier *n = arg;
    switch (evhttp_request_get_command(req)) {
    case EVHTTP_REQ_GET:
        list(n, req);
        break;
    case EVHTTP_REQ_POST:
        create(n, req);
        break;
    case EVHTTP_REQ_DELETE:
        expire(n, req);
        break;
    default:
        reply_error(req, 405, "use GET, POST or DELETE");
    }
}

#define SILENCES "/api/v1/silences/"

static void handle_one(struct evhttp_request *req, void *arg)
{
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    const char *id =
        path && strncmp(path, SILENCES, strlen(SILENCES)) == 0 ? path + strlen(SILENCES) : "";
    if (evhttp_request_get_command(req) != EVHTTP_REQ_DELETE)
        reply_error(req, 405, "use DELETE /api/v1/silences/{id}");
    else if (!*id || strchr(id, '/'))
        reply_error(req, 404, "no such silence");
    else
        expire_id(arg, req, id);
}

int notifier_register_api(struct notifier *n, struct dsf_http_server *http)
{
    if (dsf_http_route(http, "/api/v1/silences", handle, n, DSF_HTTP_WRITES))
        return -1;
    return dsf_http_route(http, SILENCES "*", handle_one, n, DSF_HTTP_WRITES);
}

void notifier_set_silence_limits(struct notifier *n, size_t max, int64_t max_duration_ms)
{
    n->sil.max = max;
    n->sil.max_len_ns = max_duration_ms * 1000000;
}
