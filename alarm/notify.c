/* The notifier's public face (alarm/notify.h): life cycle, pushes, reloads and counters. */
#define DSF_MODULE "notify"
#include "alarm/notify.h"
#include "alarm/notify/internal.h"
#include "common/file.h"
#include "common/http_client.h"
#include "common/log.h"
#include "common/loop.h"
#include "common/metrics.h"

#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* How long notifier_free(n, 1) lets the last notifications finish. */
#define NF_DRAIN_MS 10000

struct nf_counters *nf_stats_for(struct notifier *n, const char *receiver)
{
    for (struct nf_stats *s = n->stats; s; s = s->next)
        if (strcmp(s->receiver, receiver) == 0)
            return &s->c;
    struct nf_stats *s = calloc(1, sizeof(*s));
    if (!s || !(s->receiver = strdup(receiver))) {
        free(s);
        return NULL;
    }
    s->next = n->stats;
    n->stats = s;
    return &s->c;
}

static int attach_stats(struct notifier *n, struct nf_config *c, char *err, size_t errlen)
{
    for (size_t i = 0; i < c->nreceivers; i++) {
        if (!(c->receivers[i].c = nf_stats_for(n, c->receivers[i].name))) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        c->receivers[i].tokens_at_ms = dsf_mono_ms();
    }
    return 0;
}

static void on_am_timer(evutil_socket_t fd, short what, void *arg)
{
    nf_am_flush(arg);
}

struct notifier *notifier_new(struct event_base *base, const char *config_path,
                              const char *state_dir, char *err, size_t errlen)
{
    char why[600];
    if (dsf_mkdir_p(state_dir, 0700, why, sizeof(why)) < 0) {
        snprintf(err, errlen, "state directory %s", why);
        return NULL;
    }
    struct notifier *n = calloc(1, sizeof(*n));
    if (!n) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    n->base = base;
    n->config_path = strdup(config_path);
    n->state_dir = strdup(state_dir);
    n->groups = calloc(NF_GROUP_SLOTS, sizeof(*n->groups));
    if (!n->config_path || !n->state_dir || !n->groups) {
        snprintf(err, errlen, "out of memory");
        notifier_free(n, 0);
        return NULL;
    }
    if (!(n->cfg = nf_config_load(config_path, err, errlen)) ||
        attach_stats(n, n->cfg, err, errlen) ||
        nf_log_open(&n->log, base, state_dir, err, errlen) ||
        nf_silences_open(&n->sil, state_dir, err, errlen)) {
        notifier_free(n, 0);
        return NULL;
    }
    n->http = dsf_http_client_new(base);
    n->smtp = nf_smtp_new(base);
    n->am_timer = evtimer_new(base, on_am_timer, n);
    if (!n->http || !n->smtp || !n->am_timer) {
        snprintf(err, errlen, "out of memory");
        notifier_free(n, 0);
        return NULL;
    }
    return n;
}

int notifier_check(const char *config_path, char *err, size_t errlen)
{
    struct nf_config *c = nf_config_load(config_path, err, errlen);
    if (!c)
        return -1;
    nf_config_unref(c);
    return 0;
}

void notifier_push(struct notifier *n, const struct alarm_alert *a)
{
    struct nf_alert *copy = nf_alert_copy(a);
    if (!copy) {
        dsf_count(&n->dropped, 1);
        return;
    }
    nf_dispatch_alert(n, copy, 1);
    nf_alert_free(copy);
}

int notifier_reload(struct notifier *n, char *err, size_t errlen)
{
    struct nf_config *c = nf_config_load(n->config_path, err, errlen);
    if (!c || attach_stats(n, c, err, errlen)) {
        nf_config_unref(c);
        dsf_count(&n->reloads_failed, 1);
        return -1;
    }
    /* Groups point into the old route tree: take their alerts and route them again. The
     * notification log keeps the group keys, so unchanged groups are not notified again. */
    nf_am_flush(n);
    size_t count;
    struct nf_alert **alerts = nf_groups_take_alerts(n, &count);
    nf_groups_free(n);
    nf_config_unref(n->cfg);
    n->cfg = c;
    for (size_t i = 0; i < count; i++) {
        nf_dispatch_alert(n, alerts[i], 0);
        nf_alert_free(alerts[i]);
    }
    free(alerts);
    log_info("routing file %s reloaded: %zu receivers", n->config_path, c->nreceivers);
    return 0;
}

static void prom_counter(struct dsf_buf *out, const struct notifier *n, const char *name,
                         const char *help, size_t offset)
{
    prom_family(out, name, "counter", help);
    for (const struct nf_stats *s = n->stats; s; s = s->next) {
        buf_printf(out, "%s{receiver=\"", name);
        prom_label_value(out, s->receiver);
        buf_puts(out, "\"} ");
        prom_value(out, (double)dsf_read((const uint64_t *)((const char *)&s->c + offset)));
        buf_putc(out, '\n');
    }
}

void notifier_render_metrics(const struct notifier *n, struct dsf_buf *out)
{
    prom_counter(out, n, "damselfly_alarm_notifications_sent_total",
                 "Notifications the receiver accepted.", offsetof(struct nf_counters, sent));
    prom_counter(out, n, "damselfly_alarm_notifications_failed_total",
                 "Notifications given up after their retries (or refused for good).",
                 offsetof(struct nf_counters, failed));
    prom_counter(out, n, "damselfly_alarm_notifications_retried_total",
                 "Retries after network errors, 429 or 5xx.",
                 offsetof(struct nf_counters, retried));
    prom_counter(out, n, "damselfly_alarm_notifications_rate_limited_total",
                 "Notifications delayed by the receiver's rate limit.",
                 offsetof(struct nf_counters, rate_limited));
    prom_counter(out, n, "damselfly_alarm_notifications_silenced_total",
                 "Alert updates not notified because a silence matched.",
                 offsetof(struct nf_counters, silenced));
    int64_t now = dsf_now_ns();
    size_t active = 0;
    for (size_t i = 0; i < n->sil.n; i++)
        active += now >= n->sil.v[i].starts_ns && now < n->sil.v[i].ends_ns;
    prom_family(out, "damselfly_alarm_silences_active", "gauge", "Silences in force now.");
    buf_printf(out, "damselfly_alarm_silences_active %zu\n", active);
    prom_family(out, "damselfly_alarm_silences_refused_total", "counter",
                "POST /api/v1/silences refused: invalid, or over notify.max_silences or "
                "notify.max_silence_duration.");
    buf_printf(out,
               "damselfly_alarm_silences_refused_total{reason=\"invalid\"} %llu\n"
               "damselfly_alarm_silences_refused_total{reason=\"max_silences\"} %llu\n"
               "damselfly_alarm_silences_refused_total{reason=\"max_silence_duration\"} %llu\n",
               (unsigned long long)dsf_read(&n->sil.refused_invalid),
               (unsigned long long)dsf_read(&n->sil.refused_max),
               (unsigned long long)dsf_read(&n->sil.refused_too_long));
    prom_family(out, "damselfly_alarm_notify_groups", "gauge", "Alert groups being tracked.");
    buf_printf(out, "damselfly_alarm_notify_groups %zu\n", n->ngroups);
    prom_family(out, "damselfly_alarm_notify_dropped_total", "counter",
                "Alerts the notifier could not keep (out of memory).");
    buf_printf(out, "damselfly_alarm_notify_dropped_total %llu\n",
               (unsigned long long)dsf_read(&n->dropped));
    prom_family(out, "damselfly_alarm_notify_reloads_failed_total", "counter",
                "Routing file reloads rejected (the previous one stays).");
    buf_printf(out, "damselfly_alarm_notify_reloads_failed_total %llu\n",
               (unsigned long long)dsf_read(&n->reloads_failed));
}

static void flush_all(struct notifier *n)
{
    int64_t now = dsf_now_ns();
    struct nf_group **all = NULL;
    size_t count = 0;
    for (size_t s = 0; s < NF_GROUP_SLOTS; s++)
        for (struct nf_group *g = n->groups[s]; g; g = g->next)
            count++;
    if (count && !(all = calloc(count, sizeof(*all))))
        return;
    size_t k = 0;
    for (size_t s = 0; s < NF_GROUP_SLOTS; s++)
        for (struct nf_group *g = n->groups[s]; g; g = g->next)
            all[k++] = g;
    /* Flushing may free a group, so walk a snapshot. */
    for (size_t i = 0; i < k; i++)
        nf_group_flush(all[i], now);
    free(all);
}

void notifier_free(struct notifier *n, int flush)
{
    if (!n)
        return;
    if (flush && n->cfg && n->http) {
        flush_all(n);
        nf_am_flush(n);
        int64_t deadline = dsf_mono_ms() + NF_DRAIN_MS;
        while (n->jobs && dsf_mono_ms() < deadline)
            event_base_loop(n->base, EVLOOP_ONCE);
    }
    n->closing = 1;
    /* Cancelling the clients finishes the jobs waiting on a reply. */
    dsf_http_client_free(n->http);
    nf_smtp_free(n->smtp);
    nf_jobs_free(n);
    if (n->groups)
        nf_groups_free(n);
    free(n->groups);
    while (n->am) {
        struct nf_am_batch *b = n->am;
        n->am = b->next;
        for (size_t i = 0; i < b->n; i++)
            nf_alert_free(b->alerts[i]);
        free(b->alerts);
        free(b);
    }
    if (n->am_timer)
        event_free(n->am_timer);
    nf_log_close(&n->log);
    nf_silences_close(&n->sil);
    nf_files_close(); /* the log's last version is on disk before the notifier is gone */
    nf_config_unref(n->cfg);
    while (n->stats) {
        struct nf_stats *s = n->stats;
        n->stats = s->next;
        free(s->receiver);
        free(s);
    }
    free(n->config_path);
    free(n->state_dir);
    free(n);
}
