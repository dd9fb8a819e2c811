#define DSF_MODULE "http-client"
#include "common/http_client.h"
#include "common/buf.h"
#include "common/curl_loop.h"
#include "common/log.h"

#include <stdlib.h>
#include <string.h>

struct transfer;

struct dsf_http_client {
    struct dsf_curl_loop *loop;
    size_t in_flight;
    struct transfer *transfers; /* in flight, for cancelling at free */
};

struct transfer {
    struct dsf_http_client *client;
    struct transfer *next, **pprev;
    CURL *easy;
    struct curl_slist *headers;
    char *body;
    struct dsf_buf response;
    dsf_http_done done;
    void *arg;
    long retry_after_s;
    char error[CURL_ERROR_SIZE];
};

static void finish(struct transfer *t, CURLcode code)
{
    struct dsf_http_response r = {.retry_after_s = t->retry_after_s};
    if (code == CURLE_OK)
        curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &r.status);
    else
        r.error = t->error[0] ? t->error : curl_easy_strerror(code);
    r.body = buf_cstr(&t->response);
    r.len = t->response.len;
    dsf_curl_loop_remove(t->client->loop, t->easy);
    t->client->in_flight--;
    *t->pprev = t->next;
    if (t->next)
        t->next->pprev = t->pprev;
    t->done(t->arg, &r);
    curl_easy_cleanup(t->easy);
    curl_slist_free_all(t->headers);
    free(t->body);
    buf_free(&t->response);
    free(t);
}

static void on_finished(void *ctx, CURL *easy, CURLcode result)
{
    struct transfer *t;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&t);
    finish(t, result);
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    struct transfer *t = arg;
    buf_put(&t->response, data, size * n);
    return t->response.oom ? 0 : size * n;
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
    struct transfer *t = arg;
    size_t len = size * n;
    if (len > 12 && strncasecmp(data, "Retry-After:", 12) == 0)
        t->retry_after_s = strtol(data + 12, NULL, 10); /* the HTTP-date form reads as 0 */
    return len;
}

struct dsf_http_client *dsf_http_client_new(struct event_base *base)
{
    struct dsf_http_client *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    if (!(c->loop = dsf_curl_loop_new(base, on_finished, c))) {
        free(c);
        return NULL;
    }
    return c;
}

static int build_headers(struct transfer *t, const struct dsf_http_request *req)
{
    for (const char *const *h = req->headers; h && *h; h++) {
        struct curl_slist *next = curl_slist_append(t->headers, *h);
        if (!next)
            return -1;
        t->headers = next;
    }
    /* curl would otherwise send "Expect: 100-continue" and wait for it on large bodies. */
    struct curl_slist *next = curl_slist_append(t->headers, "Expect:");
    if (!next)
        return -1;
    t->headers = next;
    return 0;
}

int dsf_http_client_send(struct dsf_http_client *c, const struct dsf_http_request *req,
                         dsf_http_done done, void *arg)
{
    struct transfer *t = calloc(1, sizeof(*t));
    if (!t)
        return -1;
    t->client = c;
    t->done = done;
    t->arg = arg;
    t->retry_after_s = -1;
    t->easy = curl_easy_init();
    if (req->len && (t->body = malloc(req->len)))
        memcpy(t->body, req->body, req->len);
    if (!t->easy || (req->len && !t->body) || build_headers(t, req)) {
        curl_slist_free_all(t->headers);
        if (t->easy)
            curl_easy_cleanup(t->easy);
        free(t->body);
        free(t);
        return -1;
    }
    CURL *e = t->easy;
    curl_easy_setopt(e, CURLOPT_URL, req->url);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req->method);
    if (req->len || strcmp(req->method, "GET") != 0) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, t->body ? t->body : "");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->len);
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->error);
    curl_easy_setopt(e, CURLOPT_PRIVATE, t);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, req->timeout_ms > 0 ? req->timeout_ms : 30000L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    if (req->user) {
        curl_easy_setopt(e, CURLOPT_USERNAME, req->user);
        curl_easy_setopt(e, CURLOPT_PASSWORD, req->password ? req->password : "");
    }
    if (req->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, req->ca_file);
    if (req->insecure) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (dsf_curl_loop_add(c->loop, e)) {
        curl_slist_free_all(t->headers);
        curl_easy_cleanup(e);
        free(t->body);
        free(t);
        return -1;
    }
    c->in_flight++;
    t->next = c->transfers;
    if (t->next)
        t->next->pprev = &t->next;
    t->pprev = &c->transfers;
    c->transfers = t;
    return 0;
}

size_t dsf_http_client_in_flight(const struct dsf_http_client *c)
{
    return c->in_flight;
}

void dsf_http_client_free(struct dsf_http_client *c)
{
    if (!c)
        return;
    /* Cancel what is still running so every caller hears back exactly once. */
    while (c->transfers) {
        snprintf(c->transfers->error, sizeof(c->transfers->error), "cancelled");
        finish(c->transfers, CURLE_ABORTED_BY_CALLBACK);
    }
    dsf_curl_loop_free(c->loop);
    free(c);
}
