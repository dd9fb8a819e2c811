/*
 * Replies that wait on the loop (the store's answer, the alarm engines'): the request may be
 * gone by then. libevent frees a request whose connection it frees (the server torn down),
 * and detaches one whose client left, to be freed by the reply; the connection's close
 * callback tells which.
 */
#include "control/control_impl.h"

#include <event2/http.h>

static void conn_closed(struct evhttp_connection *conn, void *arg)
{
    struct ctl_deferred *d = arg;
    /* Still on the connection: freed with it now. Detached (the client left): the reply
     * frees it. */
    if (d->req && evhttp_request_get_connection(d->req) == conn)
        d->req = NULL;
}

void ctl_defer(struct ctl_deferred *d, struct evhttp_request *req)
{
    d->req = req;
    evhttp_connection_set_closecb(evhttp_request_get_connection(req), conn_closed, d);
}

struct evhttp_request *ctl_deferred_take(struct ctl_deferred *d)
{
    struct evhttp_request *req = d->req;
    if (req) {
        struct evhttp_connection *conn = evhttp_request_get_connection(req);
        if (conn)
            evhttp_connection_set_closecb(conn, NULL, NULL);
        d->req = NULL;
    }
    return req;
}

void ctl_deferred_reply(struct ctl_deferred *d, int code, json_t *o)
{
    struct evhttp_request *req = ctl_deferred_take(d);
    if (req)
        ctl_reply_json(req, code, o);
    else
        json_decref(o);
}
