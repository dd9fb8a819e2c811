/* The batched event writer of common/event_store.h: one buffer filling while another is in
 * flight, so the store sees the events in order and one request at a time. */
#define DSF_MODULE "store"
#include "common/event_store.h"
#include "common/buf.h"
#include "common/http_client.h"
#include "common/influx_url.h"
#include "common/log.h"
#include "common/metrics.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define K(field) offsetof(struct dsf_event_store_config, field)

const struct dsf_cfg_key dsf_event_store_keys[] = {
    {"url", DSF_CFG_URL, "", K(url), "InfluxDB 1.x base URL the events are written to; empty: off",
     0, 0},
    {"db", DSF_CFG_STR, "damselfly", K(db), "database", 0, 0},
    {"username", DSF_CFG_STR, "", K(username), "basic auth user", 0, 0},
    {"password", DSF_CFG_STR, "", K(password), "basic auth password", 0, 0},
    {"timeout", DSF_CFG_DURATION, "10s", K(timeout_ms), "per-request timeout", 100, 600000},
    {"interval", DSF_CFG_DURATION, "200ms", K(interval_ms),
     "longest an event waits to be written with others", 10, 60000},
    {"max_pending", DSF_CFG_SIZE, "16MiB", K(max_pending),
     "bytes of events held while the store fails; beyond it events are dropped and counted", 4096,
     1e10},
    DSF_CFG_END,
};

size_t dsf_event_store_sections(struct dsf_cfg_section *out, struct dsf_event_store_config *cfg,
                                const char *const *defaults)
{
    out[0] = (struct dsf_cfg_section){"output", dsf_event_store_keys, cfg, defaults};
    return 1;
}

struct dsf_event_store {
    const struct dsf_event_store_config *cfg;
    struct dsf_event_store_stats *st;
    struct dsf_http_client *http;
    struct event *timer;
    char url[2048];
    struct dsf_buf pending, inflight;
    uint64_t pending_lines, inflight_lines;
    int busy, armed, closing;
    int64_t backoff_ms;
};

static void arm(struct dsf_event_store *s, int64_t ms)
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

/* Puts the failed batch back in front of what came since, so the store sees them in order. */
static void requeue(struct dsf_event_store *s)
{
    buf_put(&s->inflight, s->pending.data, s->pending.len);
    struct dsf_buf t = s->pending;
    s->pending = s->inflight;
    s->inflight = t;
    s->pending_lines += s->inflight_lines;
    s->backoff_ms = s->backoff_ms ? s->backoff_ms * 2 : 500;
    if (s->backoff_ms > 10000)
        s->backoff_ms = 10000;
}

static void done(void *arg, const struct dsf_http_response *r)
{
    struct dsf_event_store *s = arg;
    s->busy = 0;
    if (s->closing) {
        dsf_count(&s->st->dropped_points, s->inflight_lines + s->pending_lines);
        return;
    }
    dsf_count(&s->st->requests, 1);
    if (r->status >= 200 && r->status < 300) {
        dsf_count(&s->st->points, s->inflight_lines);
        s->backoff_ms = 0;
    } else if (r->status >= 400 && r->status < 500 && r->status != 429) {
        /* The store refuses these lines for good: resending cannot help. */
        dsf_count(&s->st->failed_points, s->inflight_lines);
        log_warn("the store refused %llu event points (%ld): %.200s",
                 (unsigned long long)s->inflight_lines, r->status, r->body ? r->body : "");
    } else if (s->inflight.len + s->pending.len > s->cfg->max_pending) {
        dsf_count(&s->st->dropped_points, s->inflight_lines);
        log_warn("store unavailable (%s) and output.max_pending reached: %llu event points dropped",
                 r->status ? "HTTP error" : r->error, (unsigned long long)s->inflight_lines);
    } else {
        requeue(s);
        log_warn("store write failed (%ld %s): retrying in %lld ms", r->status,
                 r->status ? "" : r->error, (long long)s->backoff_ms);
    }
    buf_reset(&s->inflight);
    s->inflight_lines = 0;
    if (s->pending.len)
        arm(s, s->backoff_ms ? s->backoff_ms : s->cfg->interval_ms);
}

static void flush(evutil_socket_t fd, short what, void *arg)
{
    struct dsf_event_store *s = arg;
    s->armed = 0;
    if (s->busy || !s->pending.len)
        return;
    struct dsf_buf t = s->inflight;
    s->inflight = s->pending;
    s->pending = t;
    buf_reset(&s->pending);
    s->inflight_lines = s->pending_lines;
    s->pending_lines = 0;
    const struct dsf_event_store_config *c = s->cfg;
    struct dsf_http_request req = {
        .method = "POST",
        .url = s->url,
        .body = s->inflight.data,
        .len = s->inflight.len,
        .timeout_ms = (long)c->timeout_ms,
        .user = *c->username ? c->username : NULL,
        .password = *c->username ? c->password : NULL,
    };
    s->busy = 1;
    if (dsf_http_client_send(s->http, &req, done, s) != 0) {
        s->busy = 0;
        dsf_count(&s->st->failed_points, s->inflight_lines);
        buf_reset(&s->inflight);
    }
}

void dsf_event_store_add(struct dsf_event_store *s, const char *lines, size_t len)
{
    if (s->pending.len + len > s->cfg->max_pending) {
        dsf_count(&s->st->dropped_points, count_lines(lines, len));
        return;
    }
    buf_put(&s->pending, lines, len);
    s->pending_lines += count_lines(lines, len);
    if (!s->busy)
        arm(s, s->backoff_ms ? s->backoff_ms : s->cfg->interval_ms);
}

void dsf_event_store_flush(struct dsf_event_store *s)
{
    if (s->armed) {
        event_del(s->timer);
        s->armed = 0;
    }
    flush(-1, 0, s);
}

int dsf_event_store_idle(const struct dsf_event_store *s)
{
    return !s->busy && !s->pending.len;
}

struct dsf_event_store *dsf_event_store_new(struct event_base *base,
                                            const struct dsf_event_store_config *cfg,
                                            struct dsf_event_store_stats *stats, char *err,
                                            size_t errlen)
{
    struct dsf_event_store *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->cfg = cfg;
    s->st = stats;
    const struct influx_write_target t = {.url = cfg->url, .api = "v1", .db = cfg->db};
    if (influx_write_url(&t, s->url, sizeof(s->url), err, errlen)) {
        free(s);
        return NULL;
    }
    s->http = dsf_http_client_new(base);
    s->timer = evtimer_new(base, flush, s);
    if (!s->http || !s->timer) {
        snprintf(err, errlen, "cannot create the HTTP client");
        dsf_event_store_free(s);
        return NULL;
    }
    return s;
}

void dsf_event_store_free(struct dsf_event_store *s)
{
    if (!s)
        return;
    s->closing = 1;
    int busy = s->busy;
    dsf_http_client_free(s->http); /* cancels what is in flight: done() runs */
    if (!busy)
        dsf_count(&s->st->dropped_points, s->pending_lines);
    if (s->timer)
        event_free(s->timer);
    buf_free(&s->pending);
    buf_free(&s->inflight);
    free(s);
}
