/*
 * What a transition produces: the event JSON (schemas/alarm-event.schema.json) on
 * dsf/alarm/{ns}/{mci}/{rule}, a dsf_alarm point for the store, an entry in the history, and
 * for alerts (firing, nodata, resolved) the hand-off to the notifier.
 */
#define DSF_MODULE "events"
#include "alarm/alarm.h"
#include "alarm/notify.h"
#include "common/bus.h"
#include "common/log.h"
#include "common/loop.h"
#include "common/lp.h"
#include "common/metric_json.h"
#include "common/topic.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct view {
    const struct rule *r;
    const struct series *s;
    int sev;
    enum alarm_state state;
};

static const char *lookup(void *arg, const char *name, char *tmp, size_t cap)
{
    const struct view *v = arg;
    const struct rule *r = v->r;
    if (strcmp(name, "ns") == 0)
        return series_key_part(v->s, 0, tmp, cap);
    if (strcmp(name, "mci") == 0)
        return series_key_part(v->s, 1, tmp, cap);
    for (size_t i = 0; i < r->ngroup; i++)
        if (strcmp(name, r->group_by[i]) == 0)
            return series_key_part(v->s, i + 2, tmp, cap);
    if (strcmp(name, "rule") == 0)
        return r->name;
    if (strcmp(name, "value") == 0)
        return snprintf(tmp, cap, "%.6g", v->s->value), tmp;
    if (strcmp(name, "threshold") == 0)
        return snprintf(tmp, cap, "%.6g", v->s->threshold), tmp;
    if (strcmp(name, "severity") == 0)
        return alarm_severity_name(r, v->sev);
    if (strcmp(name, "state") == 0)
        return alarm_state_name(v->state);
    if (strcmp(name, "op") == 0)
        return rule_op_name(r->op);
    if (strcmp(name, "for") == 0)
        return snprintf(tmp, cap, "%llds", (long long)(r->for_ms / 1000)), tmp;
    return ""; /* vm when the rule groups without it */
}

static void put_ns(struct dsf_buf *out, const char *key, int64_t v)
{
    buf_printf(out, ",\"%s\":%lld", key, (long long)v);
}

static void put_number(struct dsf_buf *out, const char *key, double v)
{
    if (isfinite(v))
        buf_printf(out, ",\"%s\":%.17g", key, v);
    else
        buf_printf(out, ",\"%s\":null", key);
}

static void put_group(struct dsf_buf *out, const struct rule *r, const struct series *s)
{
    char tmp[512];
    buf_puts(out, "{\"ns\":");
    json_put_string(out, series_key_part(s, 0, tmp, sizeof(tmp)));
    buf_puts(out, ",\"mci\":");
    json_put_string(out, series_key_part(s, 1, tmp, sizeof(tmp)));
    for (size_t i = 0; i < r->ngroup; i++) {
        buf_putc(out, ',');
        json_put_string(out, r->group_by[i]);
        buf_putc(out, ':');
        json_put_string(out, series_key_part(s, i + 2, tmp, sizeof(tmp)));
    }
    buf_putc(out, '}');
}

static void put_rendered(struct dsf_buf *out, const struct rule_kv *kv, size_t n, struct view *v)
{
    struct dsf_buf val = {0};
    buf_putc(out, '{');
    for (size_t i = 0; i < n; i++) {
        if (i)
            buf_putc(out, ',');
        json_put_string(out, kv[i].key);
        buf_putc(out, ':');
        buf_reset(&val);
        rule_render(&val, kv[i].val, lookup, v);
        json_put_string(out, buf_cstr(&val));
    }
    buf_putc(out, '}');
    buf_free(&val);
}

/* The alarm as the API and the events show it. */
void alarm_render_series(struct dsf_buf *out, const struct rule *r, const struct series *s)
{
    struct view v = {r, s, s->severity, (enum alarm_state)s->state};
    buf_puts(out, "{\"rule\":");
    json_put_string(out, r->name);
    buf_puts(out, ",\"state\":");
    json_put_string(out, alarm_state_name(v.state));
    buf_puts(out, ",\"severity\":");
    json_put_string(out, alarm_severity_name(r, s->severity));
    buf_puts(out, ",\"group\":");
    put_group(out, r, s);
    put_number(out, "value", s->value);
    put_number(out, "threshold", s->threshold);
    buf_puts(out, ",\"op\":");
    json_put_string(out, rule_op_name(r->op));
    put_ns(out, "sample_ts", s->ts_ns);
    put_ns(out, "pending_since", s->state == ST_PENDING ? s->pending_since : 0);
    put_ns(out, "starts_at",
           s->state == ST_FIRING || s->state == ST_NODATA || s->state == ST_RESOLVED
               ? s->firing_since
               : 0);
    put_ns(out, "ends_at", s->state == ST_RESOLVED ? s->resolved_at : 0);
    put_ns(out, "changed_at", s->changed_at);
    buf_puts(out, ",\"labels\":");
    put_rendered(out, r->labels, r->nlabels, &v);
    buf_puts(out, ",\"annotations\":");
    put_rendered(out, r->annotations, r->nannotations, &v);
    buf_putc(out, '}');
}

static void render_event(struct alarm *a, struct dsf_buf *out, const struct rule *r,
                         const struct series *s, enum alarm_state from, int from_sev, int64_t ts)
{
    alarm_render_series(out, r, s);
    out->len--; /* reopen the object */
    buf_puts(out, ",\"previous\":");
    json_put_string(out, alarm_state_name(from));
    buf_puts(out, ",\"previous_severity\":");
    json_put_string(out, alarm_severity_name(r, from_sev));
    put_ns(out, "ts", ts);
    buf_puts(out, ",\"engine\":");
    json_put_string(out, a->cfg.id);
    buf_putc(out, '}');
}

static void history_add(struct history *h, const char *json, size_t cap)
{
    if (!h->items) {
        h->items = calloc(cap, sizeof(char *));
        h->cap = h->items ? cap : 0;
    }
    if (!h->cap)
        return;
    size_t at = (h->head + h->n) % h->cap;
    if (h->n == h->cap) {
        free(h->items[h->head]);
        at = h->head;
        h->head = (h->head + 1) % h->cap;
    } else {
        h->n++;
    }
    h->items[at] = strdup(json);
}

void history_free(struct history *h)
{
    for (size_t i = 0; i < h->n; i++)
        free(h->items[(h->head + i) % h->cap]);
    free(h->items);
    memset(h, 0, sizeof(*h));
}

static void publish(struct alarm *a, const struct rule *r, const struct series *s,
                    const struct dsf_buf *json)
{
    char ns[128], mci[128], topic[512], key[260];
    series_key_part(s, 0, ns, sizeof(ns));
    series_key_part(s, 1, mci, sizeof(mci));
    dsf_topic_alarm(topic, sizeof(topic), ns, mci, r->name);
    int kn = snprintf(key, sizeof(key), "%s/%s", ns, mci);
    struct dsf_bus_message m = {.topic = topic,
                                .payload = json->data,
                                .len = json->len,
                                .key = key,
                                .key_len = (size_t)(kn < (int)sizeof(key) ? kn : 0)};
    struct dsf_bus *bus = a->pub ? a->pub : a->bus;
    if (bus && dsf_bus_publish(bus, &m, 1, 0, 0) == 0) {
        dsf_count(&a->stats.events_published, 1);
    } else {
        dsf_count(&a->stats.events_publish_failed, 1);
        log_warn("event of %s on %s not published (bus not connected)", r->name, topic);
    }
}

static void store_point(struct alarm *a, const struct rule *r, const struct series *s,
                        enum alarm_state from, int64_t ts)
{
    if (!a->store)
        return;
    struct dsf_buf *b = &a->scratch;
    char tmp[512];
    buf_reset(b);
    lp_put_measurement(b, "dsf_alarm");
    buf_puts(b, ",rule=");
    lp_put_key(b, r->name);
    const char *keys[2] = {"ns", "mci"};
    for (size_t i = 0; i < r->ngroup + 2; i++) {
        series_key_part(s, i, tmp, sizeof(tmp));
        if (!*tmp)
            continue; /* line protocol has no empty tag values */
        buf_putc(b, ',');
        lp_put_key(b, i < 2 ? keys[i] : r->group_by[i - 2]);
        buf_putc(b, '=');
        lp_put_key(b, tmp);
    }
    buf_puts(b, ",state=");
    lp_put_key(b, alarm_state_name((enum alarm_state)s->state));
    buf_puts(b, ",severity=");
    lp_put_key(b, alarm_severity_name(r, s->severity));
    buf_puts(b, " value=");
    lp_put_float(b, isfinite(s->value) ? s->value : 0);
    buf_puts(b, ",threshold=");
    lp_put_float(b, isfinite(s->threshold) ? s->threshold : 0);
    buf_puts(b, ",previous=");
    lp_put_string_value(b, alarm_state_name(from));
    buf_printf(b, " %lld\n", (long long)ts);
    dsf_event_store_add(a->store, b->data, b->len);
}

/* ---- the notifier ---- */

#ifdef DSF_HAVE_NOTIFIER
/* An alert holds this many labels and as many annotations; what a rule has beyond is left
 * out (the engine's own labels come first). */
#define ALERT_KV_MAX 64

struct alert_build {
    struct alarm_label labels[ALERT_KV_MAX], annotations[ALERT_KV_MAX];
    size_t nlabels, nannotations;
    struct dsf_buf text; /* the rendered strings, NUL-separated */
    size_t *offs;        /* where each string starts in text: ns, mci, group, labels, annotations */
};

static void add_kv(struct alert_build *b, int annotation, const char *key, const char *val)
{
    size_t n = annotation ? b->nannotations : b->nlabels;
    if (n >= ALERT_KV_MAX)
        return;
    struct alarm_label *kv = annotation ? b->annotations : b->labels;
    for (size_t i = 0; i < n; i++)
        if (strcmp(kv[i].key, key) == 0)
            return; /* the engine's own labels come first and win */
    kv[n].key = key;
    kv[n].val = val;
    if (annotation)
        b->nannotations++;
    else
        b->nlabels++;
}

static int by_key(const void *x, const void *y)
{
    return strcmp(((const struct alarm_label *)x)->key, ((const struct alarm_label *)y)->key);
}

/* Renders every string first, since the buffer may move while it grows: the group's values,
 * then the labels, then the annotations. 0, or -1 out of memory. */
static int render_alert_strings(struct alert_build *b, const struct rule *r, const struct series *s,
                                struct view *v)
{
    size_t n = r->ngroup + 2 + r->nlabels + r->nannotations, at = 0;
    char tmp[512];
    b->offs = calloc(n, sizeof(*b->offs));
    if (!b->offs)
        return -1;
    for (size_t i = 0; i < r->ngroup + 2; i++) {
        b->offs[at++] = b->text.len;
        buf_puts(&b->text, series_key_part(s, i, tmp, sizeof(tmp)));
        buf_putc(&b->text, '\0');
    }
    for (size_t i = 0; i < r->nlabels + r->nannotations; i++) {
        b->offs[at++] = b->text.len;
        const struct rule_kv *kv = i < r->nlabels ? &r->labels[i] : &r->annotations[i - r->nlabels];
        rule_render(&b->text, kv->val, lookup, v);
        buf_putc(&b->text, '\0');
    }
    return b->text.oom ? -1 : 0;
}

static void add_alert_kvs(struct alert_build *b, const struct rule *r, int sev, const char *value,
                          const char *threshold)
{
    const char *t = b->text.data;
    const size_t *at = b->offs;
    add_kv(b, 0, "alertname", r->name);
    add_kv(b, 0, "severity", alarm_severity_name(r, sev));
    add_kv(b, 0, "ns", t + *at++);
    add_kv(b, 0, "mci", t + *at++);
    for (size_t i = 0; i < r->ngroup; i++)
        add_kv(b, 0, r->group_by[i], t + *at++);
    for (size_t i = 0; i < r->nlabels; i++)
        add_kv(b, 0, r->labels[i].key, t + *at++);
    for (size_t i = 0; i < r->nannotations; i++)
        add_kv(b, 1, r->annotations[i].key, t + *at++);
    add_kv(b, 1, "value", value);
    add_kv(b, 1, "threshold", threshold);
    qsort(b->labels, b->nlabels, sizeof(b->labels[0]), by_key);
    qsort(b->annotations, b->nannotations, sizeof(b->annotations[0]), by_key);
}

static void push_alert(struct alarm *a, const struct rule *r, const struct series *s, int sev,
                       int64_t starts, int64_t ends)
{
    if (!a->notifier)
        return;
    struct view v = {r, s, sev, ends ? ST_RESOLVED : (enum alarm_state)s->state};
    struct alert_build *b = calloc(1, sizeof(*b));
    if (!b)
        return;
    if (render_alert_strings(b, r, s, &v) == 0) {
        char value[64], threshold[64];
        snprintf(value, sizeof(value), "%.6g", s->value);
        snprintf(threshold, sizeof(threshold), "%.6g", s->threshold);
        add_alert_kvs(b, r, sev, value, threshold);
        struct alarm_alert al = {
            .labels = {b->nlabels, b->labels},
            .annotations = {b->nannotations, b->annotations},
            .starts_at_ns = starts,
            .ends_at_ns = ends,
        };
        notifier_push(a->notifier, &al);
        dsf_count(&a->stats.notifications, 1);
    }
    buf_free(&b->text);
    free(b->offs);
    free(b);
}
#else
static void push_alert(struct alarm *a, const struct rule *r, const struct series *s, int sev,
                       int64_t starts, int64_t ends)
{
    (void)a, (void)r, (void)s, (void)sev, (void)starts, (void)ends;
}
#endif

static int alerting(int state)
{
    return state == ST_FIRING || state == ST_NODATA;
}

static void notify(struct alarm *a, const struct rule *r, struct series *s, enum alarm_state from,
                   int from_sev, int64_t ts)
{
    int was = alerting(from), is = alerting(s->state);
    /* Severity is part of the alert's identity: a new one resolves the old first. */
    if (was && (!is || from_sev != s->severity))
        push_alert(a, r, s, from_sev, s->firing_since, ts);
    if (is && (!was || from_sev != s->severity)) {
        push_alert(a, r, s, s->severity, s->firing_since, 0);
        s->last_notify_ms = dsf_mono_ms();
    }
}

void alarm_on_transition(void *arg, const struct rule *r, struct series *s, enum alarm_state from,
                         int from_sev, int64_t ts_ns)
{
    struct alarm *a = arg;
    dsf_count(&a->stats.events, 1);
    struct dsf_buf json = {0};
    render_event(a, &json, r, s, from, from_sev, ts_ns);
    log_info("%s %s: %s -> %s (%s, value %g)", r->name, s->key, alarm_state_name(from),
             alarm_state_name((enum alarm_state)s->state), alarm_severity_name(r, s->severity),
             s->value);
    publish(a, r, s, &json);
    if (s->state == ST_FIRING && s->ts_ns == ts_ns) {
        int64_t lag = dsf_now_ns() - ts_ns;
        dsf_histogram_observe(&a->detect_lag, lag > 0 ? (double)lag / 1e9 : 0, 1);
    }
    history_add(&a->history, buf_cstr(&json), (size_t)a->cfg.history_size);
    buf_free(&json);
    store_point(a, r, s, from, ts_ns);
    notify(a, r, s, from, from_sev, ts_ns);
    alarm_state_dirty(a);
}

struct resend {
    struct alarm *a;
    int64_t now_ms;
};

static void resend_one(void *arg, const struct rule *r, struct series *s)
{
    struct resend *rs = arg;
    if (!alerting(s->state) || rs->now_ms - s->last_notify_ms < rs->a->cfg.notify.resend_ms)
        return;
    push_alert(rs->a, r, s, s->severity, s->firing_since, 0);
    s->last_notify_ms = rs->now_ms;
}

void alarm_resend(struct alarm *a, int64_t now_ms)
{
    struct resend rs = {a, now_ms};
    engine_foreach(a->engine, resend_one, &rs);
}
