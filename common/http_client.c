#define DSF_MODULE "http-client"
#include "common/http_client.h"
#include "common/buf.h"
#include "common/log.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

struct transfer;

struct dsf_http_client {
    struct event_base *base;
    CURLM *multi;
    struct event *timer;
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

/* One per socket curl watches. */
struct watch {
    struct event *ev;
};

static void check_finished(struct dsf_http_client *c);

static void finish(struct transfer *t, CURLcode code)
{
    struct dsf_http_response r = {.retry_after_s = t->retry_after_s};
    if (code == CURLE_OK)
        curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &r.status);
    else
        r.error = t->error[0] ? t->error : curl_easy_strerror(code);
    r.body = buf_cstr(&t->response);
    r.len = t->response.len;
    curl_multi_remove_handle(t->client->multi, t->easy);
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

static void check_finished(struct dsf_http_client *c)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(c->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        struct transfer *t;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
        finish(t, msg->data.result);
    }
}

static void on_socket_event(evutil_socket_t fd, short what, void *arg)
{
    struct dsf_http_client *c = arg;
    int flags = (what & EV_READ ? CURL_CSELECT_IN : 0) | (what & EV_WRITE ? CURL_CSELECT_OUT : 0);
    int running;
    curl_multi_socket_action(c->multi, fd, flags, &running);
    check_finished(c);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct dsf_http_client *c = arg;
    int running;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_finished(c);
}

static int socket_cb(CURL *easy, curl_socket_t s, int what, void *clientp, void *socketp)
{
    struct dsf_http_client *c = clientp;
    struct watch *w = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (w) {
            event_free(w->ev);
            free(w);
            curl_multi_assign(c->multi, s, NULL);
        }
        return 0;
    }
    short events =
        EV_PERSIST | (what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0);
    if (!w) {
        w = calloc(1, sizeof(*w));
        if (!w)
            return -1;
        curl_multi_assign(c->multi, s, w);
    } else {
        event_free(w->ev);
    }
    w->ev = event_new(c->base, s, events, on_socket_event, c);
    return w->ev && event_add(w->ev, NULL) == 0 ? 0 : -1;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *clientp)
{
    struct dsf_http_client *c = clientp;
    if (timeout_ms < 0) {
        evtimer_del(c->timer);
        return 0;
    }
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    return evtimer_add(c->timer, &tv);
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
    static int curl_ready;
    if (!curl_ready++)
        curl_global_init(CURL_GLOBAL_DEFAULT);
    struct dsf_http_client *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->base = base;
    c->multi = curl_multi_init();
    c->timer = evtimer_new(base, on_timeout, c);
    if (!c->multi || !c->timer) {
        dsf_http_client_free(c);
        return NULL;
    }
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
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
    if (curl_multi_add_handle(c->multi, e) != CURLM_OK) {
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
    if (c->multi) {
        /* Cancel what is still running so every caller hears back exactly once. */
        while (c->transfers) {
            snprintf(c->transfers->error, sizeof(c->transfers->error), "cancelled");
            finish(c->transfers, CURLE_ABORTED_BY_CALLBACK);
        }
        curl_multi_cleanup(c->multi);
    }
    if (c->timer)
        event_free(c->timer);
    free(c);
}
