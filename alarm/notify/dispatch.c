/*
 * Grouping and deduplication as Alertmanager's dispatcher does them: each route splits its
 * alerts into groups by group_by; a new group waits group_wait (or only a short settle time
 * when its alert began longer ago than that), then every group_interval each integration is
 * notified only if the group's firing or resolved set changed since the last successful
 * notification (the notification log), or repeat_interval has passed.
 */
#define DSF_MODULE "notify"
#include "alarm/notify/internal.h"
#include "common/bucket.h"
#include "common/log.h"
#include "common/loop.h"
#include "common/metrics.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NF_SETTLE_MS 200

static size_t slot_of(const char *key)
{
    return dsf_fnv1a32(key, strlen(key)) % NF_GROUP_SLOTS;
}

static void arm(struct nf_group *g, int64_t ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(g->timer, &tv);
}

static void group_free(struct nf_group *g)
{
    for (size_t i = 0; i < g->n; i++)
        nf_alert_free(g->alerts[i]);
    free(g->alerts);
    nf_labels_free(&g->labels);
    if (g->timer)
        event_free(g->timer);
    free(g->key);
    free(g);
}

static void group_unlink(struct notifier *n, struct nf_group *g)
{
    struct nf_group **pp = &n->groups[slot_of(g->key)];
    while (*pp && *pp != g)
        pp = &(*pp)->next;
    if (*pp)
        *pp = g->next;
    n->ngroups--;
}

static void on_group_timer(evutil_socket_t fd, short what, void *arg)
{
    nf_group_flush(arg, dsf_now_ns());
}

/* Group labels: the route's group_by labels the alert has (all of them for "..."). */
static int group_labels(const struct nf_route *rt, const struct nf_alert *a, struct nf_labels *out)
{
    struct alarm_label kv[64];
    struct alarm_labels src = {0, kv};
    if (rt->group_all) {
        src.n = a->labels.n;
        src.kv = a->labels.kv;
    } else {
        for (size_t i = 0; i < rt->ngroup_by && src.n < 64; i++) {
            const char *v = nf_labels_get(&a->labels, rt->group_by[i]);
            if (v)
                kv[src.n++] = (struct alarm_label){rt->group_by[i], v};
        }
    }
    return nf_labels_copy(out, &src);
}

static struct nf_group *group_get(struct notifier *n, struct nf_route *rt, const struct nf_alert *a,
                                  int create)
{
    struct nf_labels gl;
    if (group_labels(rt, a, &gl)) {
        nf_labels_free(&gl);
        return NULL;
    }
    struct dsf_buf key = {0};
    buf_puts(&key, rt->key);
    buf_putc(&key, ':');
    nf_labels_print(&gl, &key);
    const char *k = buf_cstr(&key);
    struct nf_group *g;
    for (g = n->groups[slot_of(k)]; g; g = g->next)
        if (g->route == rt && strcmp(g->key, k) == 0) /* sibling routes may print alike */
            break;
    if (g || !create || key.oom) {
        nf_labels_free(&gl);
        buf_free(&key);
        return g;
    }
    g = calloc(1, sizeof(*g));
    if (!g || !(g->timer = evtimer_new(n->base, on_group_timer, g))) {
        free(g);
        nf_labels_free(&gl);
        buf_free(&key);
        return NULL;
    }
    g->key = key.data; /* taken over */
    g->labels = gl;
    g->route = rt;
    g->nf = n;
    size_t s = slot_of(g->key);
    g->next = n->groups[s];
    n->groups[s] = g;
    n->ngroups++;
    /* An alert that began longer than group_wait ago (a restart, a reload) is not held back
     * for the whole group_wait, as in Alertmanager, but for a short settle time: the other
     * alerts of the group re-pushed right after a restart must be in the same comparison with
     * the notification log, or their changes would look like news (or be missed). */
    int64_t age_ms = (dsf_now_ns() - a->starts_ns) / 1000000;
    int64_t wait = rt->group_wait_ms;
    if (a->starts_ns && age_ms >= wait && wait > NF_SETTLE_MS)
        wait = NF_SETTLE_MS;
    arm(g, wait);
    return g;
}

static ssize_t find_alert(const struct nf_group *g, uint64_t fp)
{
    for (size_t i = 0; i < g->n; i++)
        if (g->alerts[i]->fp == fp)
            return (ssize_t)i;
    return -1;
}

static int group_insert(struct nf_group *g, const struct nf_alert *a)
{
    struct alarm_alert view = {.labels = {a->labels.n, a->labels.kv},
                               .annotations = {a->annotations.n, a->annotations.kv},
                               .starts_at_ns = a->starts_ns,
                               .ends_at_ns = a->ends_ns,
                               .generator_url = a->generator_url,
                               .one_off = a->one_off};
    struct nf_alert *copy = nf_alert_copy(&view);
    if (!copy)
        return -1;
    ssize_t i = find_alert(g, a->fp);
    if (i >= 0) {
        nf_alert_free(g->alerts[i]);
        g->alerts[i] = copy;
        return 0;
    }
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 8;
        struct nf_alert **v = realloc(g->alerts, cap * sizeof(*v));
        if (!v) {
            nf_alert_free(copy);
            return -1;
        }
        g->alerts = v;
        g->cap = cap;
    }
    g->alerts[g->n++] = copy;
    return 0;
}

static void group_remove(struct nf_group *g, uint64_t fp)
{
    ssize_t i = find_alert(g, fp);
    if (i < 0)
        return;
    nf_alert_free(g->alerts[i]);
    g->alerts[i] = g->alerts[--g->n];
}

struct matched {
    struct nf_route *r[64];
    size_t n;
};

static void collect(void *arg, struct nf_route *r)
{
    struct matched *m = arg;
    if (m->n < 64)
        m->r[m->n++] = r;
}

void nf_dispatch_alert(struct notifier *n, const struct nf_alert *a, int count_silenced)
{
    struct matched m = {.n = 0};
    nf_route_match(&n->cfg->root, &a->labels, collect, &m);
    int silenced = nf_silences_match(&n->sil, &a->labels, dsf_now_ns()) != NULL;
    for (size_t i = 0; i < m.n; i++) {
        struct nf_route *rt = m.r[i];
        struct nf_receiver *r = rt->receiver;
        if (silenced) {
            if (count_silenced)
                dsf_count(&r->c->silenced, 1);
            struct nf_group *g = group_get(n, rt, a, 0);
            if (g)
                group_remove(g, a->fp);
            continue;
        }
        int grouped = 0;
        for (size_t k = 0; k < r->nints; k++) {
            if (r->ints[k].kind == NF_ALERTMANAGER) {
                if (nf_am_queue(n, &r->ints[k], a))
                    dsf_count(&n->dropped, 1);
            } else {
                grouped = 1;
            }
        }
        if (!grouped)
            continue;
        struct nf_group *g = group_get(n, rt, a, 1);
        if (!g || group_insert(g, a))
            dsf_count(&n->dropped, 1);
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Sorted fingerprints. */
struct nf_fps {
    uint64_t *v;
    size_t n;
};

/* Whether every fingerprint of sub is in set (both sorted). */
static int subset(const uint64_t *sub, size_t nsub, const uint64_t *set, size_t nset)
{
    size_t j = 0;
    for (size_t i = 0; i < nsub; i++) {
        while (j < nset && set[j] < sub[i])
            j++;
        if (j == nset || set[j] != sub[i])
            return 0;
    }
    return 1;
}

/* Alertmanager's DedupStage.needsUpdate. */
static int needs_update(const struct nf_log_entry *e, const uint64_t *firing, size_t nf,
                        const uint64_t *resolved, size_t nr, int send_resolved, int64_t repeat_ms,
                        int64_t now_ns)
{
    if (!e || !e->at_ns)
        return nf > 0;
    if (!subset(firing, nf, e->firing, e->nfiring))
        return 1;
    if (nf == 0)
        return e->nfiring > 0;
    if (send_resolved && !subset(resolved, nr, e->resolved, e->nresolved))
        return 1;
    return e->at_ns < now_ns - repeat_ms * 1000000;
}

static int send_resolved_of(const struct nf_integration *in)
{
    switch (in->kind) {
    case NF_SLACK:
        return in->o.slack.send_resolved;
    case NF_EMAIL:
        return in->o.email.send_resolved;
    case NF_WEBHOOK:
        return in->o.webhook.send_resolved;
    case NF_ALERTMANAGER:
        return 1;
    }
    return 1;
}

/* One-off alerts (struct alarm_alert) the integration was not told of yet: they are news
 * even in a group that never fired. */
static int one_off_news(const struct nf_log_entry *e, const struct nf_fps *once)
{
    if (once->n == 0)
        return 0;
    if (!e || !e->at_ns)
        return 1;
    return !subset(once->v, once->n, e->resolved, e->nresolved);
}

/* Returns 1 when the integration had news it could not be told now (a delivery in flight). */
static int notify_integration(struct nf_group *g, struct nf_integration *in, uint64_t *firing,
                              size_t nf, uint64_t *resolved, size_t nr, const struct nf_fps *once,
                              int64_t now_ns)
{
    struct notifier *n = g->nf;
    struct nf_receiver *r = g->route->receiver;
    char key[4096];
    snprintf(key, sizeof(key), "%s/%s/%zu", g->key, r->name, in->index);
    struct nf_log_entry *e = nf_log_get(&n->log, key, 1);
    if (!e) {
        dsf_count(&n->dropped, 1);
        return 0;
    }
    int sr = send_resolved_of(in);
    int news = one_off_news(e, once);
    if (!news &&
        !needs_update(e, firing, nf, resolved, nr, sr, g->route->repeat_interval_ms, now_ns))
        return 0;
    if (e->inflight)
        return news;
    struct nf_alert **alerts = malloc((g->n ? g->n : 1) * sizeof(*alerts));
    if (!alerts) {
        dsf_count(&n->dropped, 1);
        return 0;
    }
    size_t count = 0;
    for (size_t i = 0; i < g->n; i++)
        if (sr || !nf_alert_resolved(g->alerts[i]) || g->alerts[i]->one_off)
            alerts[count++] = g->alerts[i];
    if (count == 0) { /* only resolved alerts, which this integration does not want */
        nf_log_record(&n->log, e, firing, nf, resolved, nr, now_ns);
        free(alerts);
        return 0;
    }
    struct nf_message m = {.receiver = r->name,
                           .group_key = g->key,
                           .group_labels = &g->labels,
                           .alerts = alerts,
                           .nalerts = count,
                           .external_url = n->cfg->external_url};
    struct dsf_buf body = {0};
    switch (in->kind) {
    case NF_SLACK:
        nf_slack_render(&in->o.slack, &m, &body);
        break;
    case NF_EMAIL:
        nf_email_render(&in->o.email, &m, now_ns, &body);
        break;
    case NF_WEBHOOK:
        if (in->o.webhook.max_alerts > 0 && count > (size_t)in->o.webhook.max_alerts) {
            m.truncated = count - (size_t)in->o.webhook.max_alerts;
            m.nalerts = (size_t)in->o.webhook.max_alerts;
        }
        nf_webhook_render(&m, &body);
        break;
    case NF_ALERTMANAGER:
        break;
    }
    free(alerts);
    struct nf_delivery d = {.in = in,
                            .log_key = key,
                            .firing = firing,
                            .nfiring = nf,
                            .resolved = resolved,
                            .nresolved = nr,
                            .body = &body};
    nf_deliver(n, &d);
    return 0;
}

void nf_group_flush(struct nf_group *g, int64_t now_ns)
{
    struct notifier *n = g->nf;
    uint64_t *fps = malloc((g->n ? 2 * g->n : 1) * sizeof(*fps)); /* and the one-offs' */
    if (!fps) {
        dsf_count(&n->dropped, 1);
        arm(g, g->route->group_interval_ms);
        return;
    }
    size_t nf = 0, nr = 0;
    struct nf_fps once = {fps + g->n, 0};
    for (size_t i = 0; i < g->n; i++)
        if (!nf_alert_resolved(g->alerts[i]))
            fps[nf++] = g->alerts[i]->fp;
    for (size_t i = 0; i < g->n; i++)
        if (nf_alert_resolved(g->alerts[i]))
            fps[nf + nr++] = g->alerts[i]->fp;
    for (size_t i = 0; i < g->n; i++)
        if (g->alerts[i]->one_off)
            once.v[once.n++] = g->alerts[i]->fp;
    qsort(fps, nf, sizeof(*fps), cmp_u64);
    qsort(fps + nf, nr, sizeof(*fps), cmp_u64);
    qsort(once.v, once.n, sizeof(*fps), cmp_u64);
    struct nf_receiver *r = g->route->receiver;
    int deferred = 0;
    for (size_t k = 0; k < r->nints; k++)
        if (r->ints[k].kind != NF_ALERTMANAGER)
            deferred |= notify_integration(g, &r->ints[k], fps, nf, fps + nf, nr, &once, now_ns);
    free(fps);
    /* Resolved alerts have been told (or were never worth telling): the group forgets them,
     * and forgets itself once empty, as Alertmanager's does. One-offs not told yet (a delivery
     * in flight) stay for the next group_interval. */
    for (size_t i = 0; i < g->n;) {
        if (nf_alert_resolved(g->alerts[i]) && !(deferred && g->alerts[i]->one_off))
            group_remove(g, g->alerts[i]->fp);
        else
            i++;
    }
    if (g->n == 0) {
        group_unlink(n, g);
        group_free(g);
        return;
    }
    arm(g, g->route->group_interval_ms);
}

void nf_groups_remove_silenced(struct notifier *n, int64_t now_ns)
{
    for (size_t s = 0; s < NF_GROUP_SLOTS; s++)
        for (struct nf_group *g = n->groups[s]; g; g = g->next)
            for (size_t i = 0; i < g->n;) {
                if (nf_silences_match(&n->sil, &g->alerts[i]->labels, now_ns)) {
                    dsf_count(&g->route->receiver->c->silenced, 1);
                    group_remove(g, g->alerts[i]->fp);
                } else {
                    i++;
                }
            }
}

struct nf_alert **nf_groups_take_alerts(struct notifier *n, size_t *count)
{
    struct nf_alert **out = NULL;
    size_t len = 0, cap = 0;
    for (size_t s = 0; s < NF_GROUP_SLOTS; s++) {
        for (struct nf_group *g = n->groups[s]; g; g = g->next) {
            for (size_t i = 0; i < g->n; i++) {
                if (len == cap) {
                    cap = cap ? cap * 2 : 64;
                    struct nf_alert **v = realloc(out, cap * sizeof(*v));
                    if (!v)
                        break;
                    out = v;
                }
                out[len++] = g->alerts[i];
                g->alerts[i] = NULL;
            }
            for (size_t i = 0; i < g->n; i++)
                nf_alert_free(g->alerts[i]);
            g->n = 0;
        }
    }
    *count = len;
    return out;
}

void nf_groups_free(struct notifier *n)
{
    for (size_t s = 0; s < NF_GROUP_SLOTS; s++) {
        while (n->groups[s]) {
            struct nf_group *g = n->groups[s];
            n->groups[s] = g->next;
            group_free(g);
        }
    }
    n->ngroups = 0;
}
