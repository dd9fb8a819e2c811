/*
 * One notification on its way to one integration: the receiver's token bucket first, then
 * the request; network errors, 429 and 5xx are retried with exponential backoff and jitter
 * (at least as long as Retry-After asks). Success updates the notification log.
 */
#define DSF_MODULE "notify"
#include "alarm/notify/internal.h"
#include "common/http_client.h"
#include "common/log.h"
#include "common/loop.h"
#include "common/metrics.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

struct nf_job {
    struct notifier *nf;
    struct nf_config *cfg; /* referenced: in->recv lives there */
    struct nf_integration *in;
    char *log_key;
    uint64_t *fps; /* firing then resolved */
    size_t nfiring, nresolved;
    struct dsf_buf body;
    int attempt, limited, sending, queued;
    struct nf_job *wait_next;
    struct event *timer;
    struct nf_job *next, **pprev;
};

static const char *kind_name(enum nf_kind k)
{
    static const char *names[] = {"slack", "email", "webhook", "alertmanager"};
    return names[k];
}

static void unqueue(struct nf_job *j)
{
    struct nf_receiver *r = j->in->recv;
    struct nf_job **pp = &r->wait_head;
    while (*pp && *pp != j)
        pp = &(*pp)->wait_next;
    if (*pp)
        *pp = j->wait_next;
    if (r->wait_tail == &j->wait_next)
        r->wait_tail = pp;
    j->queued = 0;
}

static void job_free(struct nf_job *j)
{
    if (j->queued)
        unqueue(j);
    *j->pprev = j->next;
    if (j->next)
        j->next->pprev = j->pprev;
    if (j->log_key) {
        struct nf_log_entry *e = nf_log_get(&j->nf->log, j->log_key, 0);
        if (e)
            e->inflight = 0;
    }
    if (j->timer)
        event_free(j->timer);
    nf_config_unref(j->cfg);
    free(j->log_key);
    free(j->fps);
    buf_free(&j->body);
    free(j);
}

static void job_start(struct nf_job *j);

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    job_start(arg);
}

static void schedule(struct nf_job *j, int64_t delay_ms)
{
    struct timeval tv = {delay_ms / 1000, (delay_ms % 1000) * 1000};
    evtimer_add(j->timer, &tv);
}

static uint64_t random_u64(void)
{
    uint64_t r;
    if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
        r = (uint64_t)dsf_now_ns() * 6364136223846793005ULL;
    return r;
}

/* Exponential with jitter in [d/2, d], so receivers recovering from an outage are not hit by
 * every notifier at the same instant. */
static int64_t backoff_ms(const struct nf_receiver *r, int attempt, long retry_after_s)
{
    int64_t d = r->retry_initial_ms;
    for (int i = 1; i < attempt && d < r->retry_max_ms; i++)
        d *= 2;
    if (d > r->retry_max_ms)
        d = r->retry_max_ms;
    d = d / 2 + (int64_t)(random_u64() % (uint64_t)(d / 2 + 1));
    if (retry_after_s > 0) {
        int64_t ra = retry_after_s > 600 ? 600000 : retry_after_s * 1000;
        if (ra > d)
            d = ra;
    }
    return d;
}

/* A request slot freed: the next waiting notification of the receiver goes. */
static void start_waiting(struct notifier *n, struct nf_receiver *r)
{
    while (!n->closing && r->wait_head && r->in_flight < (size_t)r->max_in_flight) {
        struct nf_job *j = r->wait_head;
        r->wait_head = j->wait_next;
        if (!r->wait_head)
            r->wait_tail = &r->wait_head;
        j->queued = 0;
        job_start(j);
    }
}

static void job_finish(struct nf_job *j, int ok, int transient, long retry_after_s,
                       const char *why);

static void job_done(struct nf_job *j, int ok, int transient, long retry_after_s, const char *why)
{
    struct nf_receiver *r = j->in->recv;
    struct notifier *n = j->nf;
    /* Freeing the job may drop the last hold on a configuration replaced by a reload, and r
     * lives there. */
    struct nf_config *cfg = j->cfg;
    cfg->refs++;
    j->sending = 0;
    r->in_flight--;
    job_finish(j, ok, transient, retry_after_s, why);
    start_waiting(n, r);
    nf_config_unref(cfg);
}

static void job_finish(struct nf_job *j, int ok, int transient, long retry_after_s, const char *why)
{
    struct nf_receiver *r = j->in->recv;
    if (ok) {
        dsf_count(&r->c->sent, 1);
        if (j->log_key) {
            struct nf_log_entry *e = nf_log_get(&j->nf->log, j->log_key, 1);
            if (e)
                nf_log_record(&j->nf->log, e, j->fps, j->nfiring, j->fps + j->nfiring, j->nresolved,
                              dsf_now_ns());
        }
        job_free(j);
        return;
    }
    if (transient && !j->nf->closing && j->attempt < r->retry_attempts) {
        dsf_count(&r->c->retried, 1);
        int64_t d = backoff_ms(r, j->attempt, retry_after_s);
        log_warn("receiver %s (%s): %s; retry %d in %lld ms", r->name, kind_name(j->in->kind), why,
                 j->attempt, (long long)d);
        schedule(j, d);
        return;
    }
    if (!j->nf->closing || strncmp(why, "cancelled", 9) != 0) {
        dsf_count(&r->c->failed, 1);
        log_error("receiver %s (%s): notification failed after %d attempt(s): %s", r->name,
                  kind_name(j->in->kind), j->attempt, why);
    }
    job_free(j);
}

static void on_http(void *arg, const struct dsf_http_response *resp)
{
    struct nf_job *j = arg;
    char why[300];
    if (resp->status == 0)
        snprintf(why, sizeof(why), "%s", resp->error ? resp->error : "no answer");
    else
        snprintf(why, sizeof(why), "HTTP %ld: %.200s", resp->status, resp->body ? resp->body : "");
    int ok = resp->status >= 200 && resp->status < 300;
    int transient = resp->status == 0 || resp->status == 429 || resp->status >= 500;
    job_done(j, ok, transient, resp->retry_after_s, why);
}

static void on_smtp(void *arg, int ok, int transient, const char *error)
{
    job_done(arg, ok, transient, -1, error ? error : "");
}

static int take_token(struct nf_receiver *r, int64_t now_ms, int64_t *wait_ms)
{
    if (r->rate_per_s <= 0)
        return 1;
    double add = (double)(now_ms - r->tokens_at_ms) * r->rate_per_s / 1000.0;
    r->tokens_at_ms = now_ms;
    r->tokens = r->tokens + add > (double)r->burst ? (double)r->burst : r->tokens + add;
    if (r->tokens >= 1.0) {
        r->tokens -= 1.0;
        return 1;
    }
    *wait_ms = (int64_t)((1.0 - r->tokens) * 1000.0 / r->rate_per_s) + 1;
    return 0;
}

static int send_http(struct nf_job *j, const char *url, long timeout_ms, const char *bearer)
{
    char auth[600];
    const char *headers[3] = {"Content-Type: application/json", NULL, NULL};
    if (bearer && *bearer) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", bearer);
        headers[1] = auth;
    }
    struct dsf_http_request req = {.method = "POST",
                                   .url = url,
                                   .headers = headers,
                                   .body = j->body.data,
                                   .len = j->body.len,
                                   .timeout_ms = timeout_ms};
    return dsf_http_client_send(j->nf->http, &req, on_http, j);
}

static void job_start(struct nf_job *j)
{
    struct nf_receiver *r = j->in->recv;
    int64_t wait;
    if (r->in_flight >= (size_t)r->max_in_flight) {
        j->queued = 1;
        j->wait_next = NULL;
        *r->wait_tail = j;
        r->wait_tail = &j->wait_next;
        return;
    }
    if (!take_token(r, dsf_mono_ms(), &wait)) {
        if (!j->limited++)
            dsf_count(&r->c->rate_limited, 1);
        schedule(j, wait);
        return;
    }
    j->attempt++;
    j->sending = 1;
    r->in_flight++;
    int rc = -1;
    char url[2048];
    switch (j->in->kind) {
    case NF_SLACK:
        rc = send_http(j, j->in->o.slack.url, (long)j->in->o.slack.timeout_ms, NULL);
        break;
    case NF_WEBHOOK:
        rc = send_http(j, j->in->o.webhook.url, (long)j->in->o.webhook.timeout_ms,
                       j->in->o.webhook.bearer_token);
        break;
    case NF_ALERTMANAGER: {
        const char *base = j->in->o.am.url;
        size_t n = strlen(base);
        snprintf(url, sizeof(url), "%.*s/api/v2/alerts", (int)(n && base[n - 1] == '/' ? n - 1 : n),
                 base);
        rc = send_http(j, url, (long)j->in->o.am.timeout_ms, NULL);
        break;
    }
    case NF_EMAIL:
        rc = nf_smtp_send(j->nf->smtp, &j->in->o.email, j->body.data, j->body.len, on_smtp, j);
        break;
    }
    if (rc) {
        j->sending = 0;
        job_done(j, 0, 0, -1, "cannot start the request (out of memory or bad URL)");
    }
}

int nf_deliver(struct notifier *n, struct nf_delivery *d)
{
    struct nf_job *j = calloc(1, sizeof(*j));
    size_t nfps = d->nfiring + d->nresolved;
    if (!j || (nfps && !(j->fps = malloc(nfps * sizeof(*j->fps)))) ||
        (d->log_key && !(j->log_key = strdup(d->log_key))) ||
        !(j->timer = evtimer_new(n->base, on_timer, j))) {
        if (j) {
            free(j->fps);
            free(j->log_key);
            free(j);
        }
        buf_free(d->body);
        dsf_count(&d->in->recv->c->failed, 1);
        return -1;
    }
    j->nf = n;
    j->cfg = n->cfg;
    n->cfg->refs++;
    j->in = d->in;
    if (d->nfiring)
        memcpy(j->fps, d->firing, d->nfiring * sizeof(*j->fps));
    if (d->nresolved)
        memcpy(j->fps + d->nfiring, d->resolved, d->nresolved * sizeof(*j->fps));
    j->nfiring = d->nfiring;
    j->nresolved = d->nresolved;
    j->body = *d->body;
    memset(d->body, 0, sizeof(*d->body));
    j->next = n->jobs;
    if (j->next)
        j->next->pprev = &j->next;
    j->pprev = &n->jobs;
    n->jobs = j;
    if (j->log_key) {
        struct nf_log_entry *e = nf_log_get(&n->log, j->log_key, 1);
        if (e)
            e->inflight = 1;
    }
    job_start(j);
    return 0;
}

size_t nf_jobs_count(const struct notifier *n)
{
    size_t c = 0;
    for (const struct nf_job *j = n->jobs; j; j = j->next)
        c++;
    return c;
}

/* Jobs in a request are finished by the clients' cancellation; the rest wait on timers. */
void nf_jobs_free(struct notifier *n)
{
    while (n->jobs)
        job_free(n->jobs);
}
