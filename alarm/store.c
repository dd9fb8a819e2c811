/* Events into InfluxDB 1.x as the dsf_alarm measurement: batched, one request at a time,
 * retried with backoff while the store is away; what exceeds output.max_pending is counted. */
#define DSF_MODULE "store"
#include "alarm/alarm.h"
#include "common/http_client.h"
#include "common/influx_url.h"
#include "common/log.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct store {
    struct alarm *a;
    struct dsf_http_client *http;
    struct event *timer;
    char url[2048];
    struct dsf_buf pending, inflight;
    uint64_t pending_lines, inflight_lines;
    int busy, armed, closing;
    int64_t backoff_ms;
};

static void arm(struct store *s, int64_t ms)
{
    if (s->armed)
        return;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000 * 1000)};
    event_add(s->timer, &tv);
    s->armed = 1;
}

static uint64_t count_lines(const char *p, size_t n)
{
    uint64_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += p[i] == '\n';
    return c;
}

static void done(void *arg, const struct dsf_http_response *r)
{
    struct store *s = arg;
    struct alarm *a = s->a;
    s->busy = 0;
    if (s->closing) {
        dsf_count(&a->stats.store_dropped_points, s->inflight_lines + s->pending_lines);
        return;
    }
    dsf_count(&a->stats.store_requests, 1);
    if (r->status >= 200 && r->status < 300) {
        dsf_count(&a->stats.store_points, s->inflight_lines);
        s->backoff_ms = 0;
    } else if (r->status >= 400 && r->status < 500 && r->status != 429) {
        /* The store refuses these lines for good: resending cannot help. */
        dsf_count(&a->stats.store_failed_points, s->inflight_lines);
        log_warn("the store refused %llu event points (%ld): %.200s",
                 (unsigned long long)s->inflight_lines, r->status, r->body ? r->body : "");
    } else if (s->inflight.len + s->pending.len > a->cfg.output.max_pending) {
        dsf_count(&a->stats.store_dropped_points, s->inflight_lines);
        log_warn("store unavailable (%s) and output.max_pending reached: %llu event points dropped",
                 r->status ? "HTTP error" : r->error, (unsigned long long)s->inflight_lines);
    } else {
        /* Back in front of what came since, so the store sees them in order. */
        buf_put(&s->inflight, s->pending.data, s->pending.len);
        struct dsf_buf t = s->pending;
        s->pending = s->inflight;
        s->inflight = t;
        s->pending_lines += s->inflight_lines;
        s->backoff_ms = s->backoff_ms ? s->backoff_ms * 2 : 500;
        if (s->backoff_ms > 10000)
            s->backoff_ms = 10000;
        log_warn("store write failed (%ld %s): retrying in %lld ms", r->status,
                 r->status ? "" : r->error, (long long)s->backoff_ms);
    }
    buf_reset(&s->inflight);
    s->inflight_lines = 0;
    if (s->pending.len)
        arm(s, s->backoff_ms ? s->backoff_ms : s->a->cfg.output.interval_ms);
}

static void flush(evutil_socket_t fd, short what, void *arg)
{
    struct store *s = arg;
    s->armed = 0;
    if (s->busy || !s->pending.len)
        return;
    struct dsf_buf t = s->inflight;
    s->inflight = s->pending;
    s->pending = t;
    buf_reset(&s->pending);
    s->inflight_lines = s->pending_lines;
    s->pending_lines = 0;
    const struct alarm_config *c = &s->a->cfg;
    struct dsf_http_request req = {
        .method = "POST",
        .url = s->url,
        .body = s->inflight.data,
        .len = s->inflight.len,
        .timeout_ms = (long)c->output.timeout_ms,
        .user = *c->output.username ? c->output.username : NULL,
        .password = *c->output.username ? c->output.password : NULL,
    };
    s->busy = 1;
    if (dsf_http_client_send(s->http, &req, done, s) != 0) {
        s->busy = 0;
        dsf_count(&s->a->stats.store_failed_points, s->inflight_lines);
        buf_reset(&s->inflight);
    }
}

void store_add(struct store *s, const char *line, size_t len)
{
    if (s->pending.len + len > s->a->cfg.output.max_pending) {
        dsf_count(&s->a->stats.store_dropped_points, 1);
        return;
    }
    buf_put(&s->pending, line, len);
    s->pending_lines += count_lines(line, len);
    if (!s->busy)
        arm(s, s->backoff_ms ? s->backoff_ms : s->a->cfg.output.interval_ms);
}

void store_flush(struct store *s)
{
    if (s->armed) {
        event_del(s->timer);
        s->armed = 0;
    }
    flush(-1, 0, s);
}

int store_idle(const struct store *s)
{
    return !s->busy && !s->pending.len;
}

struct store *store_new(struct alarm *a, char *err, size_t errlen)
{
    struct store *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->a = a;
    const struct influx_write_target t = {
        .url = a->cfg.output.url, .api = "v1", .db = a->cfg.output.db};
    if (influx_write_url(&t, s->url, sizeof(s->url), err, errlen)) {
        free(s);
        return NULL;
    }
    s->http = dsf_http_client_new(a->base);
    s->timer = evtimer_new(a->base, flush, s);
    if (!s->http || !s->timer) {
        snprintf(err, errlen, "cannot create the HTTP client");
        store_free(s);
        return NULL;
    }
    return s;
}

void store_free(struct store *s)
{
    if (!s)
        return;
    s->closing = 1;
    dsf_http_client_free(s->http); /* cancels what is in flight: done() runs */
    if (s->timer)
        event_free(s->timer);
    buf_free(&s->pending);
    buf_free(&s->inflight);
    free(s);
}
