/* dsf_internal (common/internal.h): the /metrics page as line protocol, through the batched
 * writer of common/event_store.h, which retries while the store is away and counts drops. */
#define DSF_MODULE "internal"
#include "common/internal.h"
#include "common/event_store.h"
#include "common/log.h"
#include "common/loop.h"
#include "common/lp.h"
#include "common/metrics.h"

#include <event2/event.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define K(field) offsetof(struct dsf_internal_config, field)

const struct dsf_cfg_key dsf_internal_keys[] = {
    {"interval", DSF_CFG_DURATION, "10s", K(interval_ms),
     "how often the daemon writes its own counters as measurement dsf_internal; 0: off", 0,
     86400000},
    {"url", DSF_CFG_URL, "", K(url),
     "InfluxDB 1.x base URL for dsf_internal; empty: the daemon's own InfluxDB output", 0, 0},
    {"db", DSF_CFG_STR, "", K(db), "database; empty: that of the daemon's output, or damselfly", 0,
     0},
    {"username", DSF_CFG_STR, "", K(username), "basic auth user (with internal.url)", 0, 0},
    {"password", DSF_CFG_STR, "", K(password), "basic auth password (with internal.url)", 0, 0},
    DSF_CFG_END,
};

struct dsf_internal {
    struct dsf_event_store_config store_cfg;
    struct dsf_event_store_stats stats;
    uint64_t skipped;
    struct dsf_event_store *store;
    struct event *tick;
    char *daemon, *id;
    dsf_internal_render_fn render;
    void *arg;
    struct dsf_buf page, lines;
};

/* Prometheus label value (after the opening quote) into out, unescaped; the end after the
 * closing quote, or NULL. */
static const char *label_value(const char *p, const char *end, char *out, size_t cap)
{
    size_t n = 0;
    for (; p < end && *p != '"'; p++) {
        char c = *p;
        if (c == '\\' && p + 1 < end) {
            c = *++p;
            if (c == 'n')
                c = '\n';
        }
        if (n + 1 < cap)
            out[n++] = c;
    }
    out[n] = '\0';
    return p < end ? p + 1 : NULL;
}

/* The labels of one sample as tags; the end after '}', or NULL when malformed. */
static const char *put_labels(const char *p, const char *end, struct dsf_buf *out)
{
    char key[128], val[512];
    while (p < end && *p != '}') {
        const char *eq = memchr(p, '=', (size_t)(end - p));
        if (!eq || eq + 1 >= end || eq[1] != '"' || (size_t)(eq - p) >= sizeof(key))
            return NULL;
        snprintf(key, sizeof(key), "%.*s", (int)(eq - p), p);
        if (!(p = label_value(eq + 2, end, val, sizeof(val))))
            return NULL;
        if (*val) { /* InfluxDB refuses an empty tag value: the label is left out */
            buf_putc(out, ',');
            /* daemon and id are this writer's tags: a label of that name keeps its value */
            if (!strcmp(key, "daemon") || !strcmp(key, "id"))
                buf_puts(out, "label_");
            lp_put_key(out, key);
            buf_putc(out, '=');
            lp_put_key(out, val);
        }
        if (p < end && *p == ',')
            p++;
    }
    return p < end ? p + 1 : NULL;
}

static int is_bucket(const char *name, size_t n)
{
    return n > 7 && memcmp(name + n - 7, "_bucket", 7) == 0;
}

/* One sample line; 1 written, 0 left out. */
static int sample(const char *p, const char *end, const char *prefix, int64_t ts_ns,
                  struct dsf_buf *out, uint64_t *skipped)
{
    const char *name = p;
    while (p < end && *p != '{' && *p != ' ')
        p++;
    size_t nlen = (size_t)(p - name);
    if (!nlen || nlen >= 256 || is_bucket(name, nlen))
        return 0;
    size_t mark = out->len;
    buf_puts(out, prefix);
    if (p < end && *p == '{' && !(p = put_labels(p + 1, end, out))) {
        out->len = mark;
        return 0;
    }
    char field[256], num[64];
    snprintf(field, sizeof(field), "%.*s", (int)nlen, name);
    while (p < end && *p == ' ')
        p++;
    size_t vlen = 0;
    while (p + vlen < end && p[vlen] != ' ')
        vlen++;
    snprintf(num, sizeof(num), "%.*s", (int)(vlen < sizeof(num) ? vlen : 0), p);
    char *e;
    double v = strtod(num, &e);
    if (e == num || *e || !isfinite(v)) {
        *skipped += e != num && !*e; /* a number the store cannot hold */
        out->len = mark;
        return 0;
    }
    buf_putc(out, ' ');
    lp_put_key(out, field);
    buf_putc(out, '=');
    lp_put_float(out, v);
    buf_printf(out, " %" PRId64 "\n", ts_ns);
    return 1;
}

uint64_t dsf_internal_lines(const char *page, size_t len, const char *daemon, const char *id,
                            int64_t ts_ns, struct dsf_buf *out, uint64_t *skipped)
{
    struct dsf_buf prefix = {0};
    buf_puts(&prefix, "dsf_internal,daemon=");
    lp_put_key(&prefix, daemon);
    buf_puts(&prefix, ",id=");
    lp_put_key(&prefix, id);
    buf_putc(&prefix, '\0');
    uint64_t n = 0;
    const char *end = page + len;
    for (const char *p = page; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        if (le > p && *p != '#' && prefix.data)
            n += (uint64_t)sample(p, le, prefix.data, ts_ns, out, skipped);
        p = le + 1;
    }
    buf_free(&prefix);
    return n;
}

/* Off the hot path: one render and one queued request per interval, on the event loop. */
static void tick(evutil_socket_t fd, short what, void *arg)
{
    struct dsf_internal *in = arg;
    buf_reset(&in->page);
    buf_reset(&in->lines);
    in->render(in->arg, &in->page);
    if (in->page.oom) {
        log_warn("out of memory rendering the counters: this round of dsf_internal is lost");
        return;
    }
    uint64_t skipped = 0;
    dsf_internal_lines(in->page.data, in->page.len, in->daemon, in->id, dsf_now_ns(), &in->lines,
                       &skipped);
    dsf_count(&in->skipped, skipped);
    if (in->lines.len)
        dsf_event_store_add(in->store, in->lines.data, in->lines.len);
}

static char *pick(const char *own, const char *daemons, const char *fallback)
{
    return strdup(own && *own ? own : daemons && *daemons ? daemons : fallback);
}

/* The store's configuration: internal.* when internal.url is set, else the daemon's output. */
static int store_config(struct dsf_internal *in, const struct dsf_internal_config *cfg,
                        const struct dsf_internal_target *t)
{
    int own = *cfg->url != '\0';
    struct dsf_event_store_config *s = &in->store_cfg;
    s->url = pick(own ? cfg->url : t->url, NULL, "");
    s->db = pick(cfg->db, own ? NULL : t->db, "damselfly");
    s->username = pick(own ? cfg->username : t->username, NULL, "");
    s->password = pick(own ? cfg->password : t->password, NULL, "");
    s->timeout_ms = 10000;
    s->interval_ms = 10;
    /* Counters are state, not events: a few rounds are enough to hold through an outage. */
    s->max_pending = 1 << 20;
    return s->url && s->db && s->username && s->password ? 0 : -1;
}

struct dsf_internal *dsf_internal_new(struct event_base *base,
                                      const struct dsf_internal_config *cfg, const char *daemon,
                                      const struct dsf_internal_target *t,
                                      dsf_internal_render_fn render, void *arg, char *err,
                                      size_t errlen)
{
    *err = '\0';
    if (!cfg->interval_ms || (!*cfg->url && !(t->url && *t->url)))
        return NULL;
    struct dsf_internal *in = calloc(1, sizeof(*in));
    if (!in || store_config(in, cfg, t) || !(in->daemon = strdup(daemon)) ||
        !(in->id = strdup(t->id && *t->id ? t->id : daemon))) {
        snprintf(err, errlen, "internal: out of memory");
        dsf_internal_free(in);
        return NULL;
    }
    in->render = render;
    in->arg = arg;
    if (!(in->store = dsf_event_store_new(base, &in->store_cfg, &in->stats, err, errlen)) ||
        !(in->tick = event_new(base, -1, EV_PERSIST, tick, in))) {
        if (!*err)
            snprintf(err, errlen, "internal: cannot create its timer");
        dsf_internal_free(in);
        return NULL;
    }
    struct timeval tv = {(time_t)(cfg->interval_ms / 1000),
                         (suseconds_t)(cfg->interval_ms % 1000 * 1000)};
    event_add(in->tick, &tv);
    log_info("writing dsf_internal every %lld ms to %s (database %s)", (long long)cfg->interval_ms,
             in->store_cfg.url, in->store_cfg.db);
    return in;
}

void dsf_internal_render_metrics(const struct dsf_internal *in, struct dsf_buf *out)
{
    if (!in)
        return;
    prom_family(out, "dsf_internal_points_total", "counter",
                "dsf_internal lines by outcome: written, failed (refused by the store), dropped "
                "(store away too long), skipped (a value the store cannot hold)");
    const struct {
        const char *outcome;
        const uint64_t *v;
    } rows[] = {{"written", &in->stats.points},
                {"failed", &in->stats.failed_points},
                {"dropped", &in->stats.dropped_points},
                {"skipped", &in->skipped}};
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        prom_labeled_sample(out, "dsf_internal_points_total", (double)dsf_read(rows[i].v),
                            "outcome", rows[i].outcome, NULL);
}

void dsf_internal_free(struct dsf_internal *in)
{
    if (!in)
        return;
    if (in->tick)
        event_free(in->tick);
    dsf_event_store_free(in->store);
    struct dsf_event_store_config *s = &in->store_cfg;
    free(s->url);
    free(s->db);
    free(s->username);
    free(s->password);
    free(in->daemon);
    free(in->id);
    buf_free(&in->page);
    buf_free(&in->lines);
    free(in);
}

const struct dsf_internal_hooks dsf_internal_hooks = {
    dsf_internal_keys,
    dsf_internal_new,
    dsf_internal_render_metrics,
    dsf_internal_free,
};
