#include "common/curl_loop.h"

#include <event2/event.h>
#include <stdlib.h>

struct dsf_curl_loop {
    struct event_base *base;
    CURLM *multi;
    struct event *timer;
    dsf_curl_finished finished;
    void *ctx;
};

/* One per socket curl watches. */
struct watch {
    struct event *ev;
};

static void check_finished(struct dsf_curl_loop *l)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(l->multi, &left)))
        if (msg->msg == CURLMSG_DONE)
            l->finished(l->ctx, msg->easy_handle, msg->data.result);
}

static void on_socket_event(evutil_socket_t fd, short what, void *arg)
{
    struct dsf_curl_loop *l = arg;
    int flags = (what & EV_READ ? CURL_CSELECT_IN : 0) | (what & EV_WRITE ? CURL_CSELECT_OUT : 0);
    int running;
    curl_multi_socket_action(l->multi, fd, flags, &running);
    check_finished(l);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct dsf_curl_loop *l = arg;
    int running;
    curl_multi_socket_action(l->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_finished(l);
}

static int socket_cb(CURL *easy, curl_socket_t s, int what, void *clientp, void *socketp)
{
    struct dsf_curl_loop *l = clientp;
    struct watch *w = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (w) {
            event_free(w->ev);
            free(w);
            curl_multi_assign(l->multi, s, NULL);
        }
        return 0;
    }
    short events =
        EV_PERSIST | (what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0);
    if (!w) {
        w = calloc(1, sizeof(*w));
        if (!w)
            return -1;
        curl_multi_assign(l->multi, s, w);
    } else {
        event_free(w->ev);
    }
    w->ev = event_new(l->base, s, events, on_socket_event, l);
    return w->ev && event_add(w->ev, NULL) == 0 ? 0 : -1;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *clientp)
{
    struct dsf_curl_loop *l = clientp;
    if (timeout_ms < 0) {
        evtimer_del(l->timer);
        return 0;
    }
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    return evtimer_add(l->timer, &tv);
}

struct dsf_curl_loop *dsf_curl_loop_new(struct event_base *base, dsf_curl_finished finished,
                                        void *ctx)
{
    static int curl_ready;
    if (!curl_ready++)
        curl_global_init(CURL_GLOBAL_DEFAULT);
    struct dsf_curl_loop *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    l->base = base;
    l->finished = finished;
    l->ctx = ctx;
    l->multi = curl_multi_init();
    l->timer = evtimer_new(base, on_timeout, l);
    if (!l->multi || !l->timer) {
        dsf_curl_loop_free(l);
        return NULL;
    }
    curl_multi_setopt(l->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(l->multi, CURLMOPT_SOCKETDATA, l);
    curl_multi_setopt(l->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(l->multi, CURLMOPT_TIMERDATA, l);
    return l;
}

int dsf_curl_loop_add(struct dsf_curl_loop *l, CURL *easy)
{
    return curl_multi_add_handle(l->multi, easy) == CURLM_OK ? 0 : -1;
}

void dsf_curl_loop_remove(struct dsf_curl_loop *l, CURL *easy)
{
    curl_multi_remove_handle(l->multi, easy);
}

void dsf_curl_loop_free(struct dsf_curl_loop *l)
{
    if (!l)
        return;
    if (l->multi)
        curl_multi_cleanup(l->multi);
    if (l->timer)
        event_free(l->timer);
    free(l);
}
