/*
 * Forwarding to Alertmanagers: not grouped here (Alertmanager groups by itself), every alert
 * update goes out as Prometheus sends it; updates pushed in the same loop turn share one
 * POST /api/v2/alerts.
 */
#include "alarm/notify/internal.h"

#include <event2/event.h>
#include <stdlib.h>

int nf_am_queue(struct notifier *n, struct nf_integration *in, const struct nf_alert *a)
{
    struct nf_am_batch *b;
    for (b = n->am; b && b->in != in; b = b->next)
        ;
    if (!b) {
        if (!(b = calloc(1, sizeof(*b))))
            return -1;
        b->in = in;
        b->next = n->am;
        n->am = b;
    }
    struct alarm_alert view = {.labels = {a->labels.n, a->labels.kv},
                               .annotations = {a->annotations.n, a->annotations.kv},
                               .starts_at_ns = a->starts_ns,
                               .ends_at_ns = a->ends_ns,
                               .generator_url = a->generator_url};
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 16;
        struct nf_alert **v = realloc(b->alerts, cap * sizeof(*v));
        if (!v)
            return -1;
        b->alerts = v;
        b->cap = cap;
    }
    if (!(b->alerts[b->n] = nf_alert_copy(&view)))
        return -1;
    b->n++;
    /* Sent on the next loop turn, so alerts pushed together go in one request. */
    struct timeval zero = {0, 0};
    evtimer_add(n->am_timer, &zero);
    return 0;
}

void nf_am_flush(struct notifier *n)
{
    while (n->am) {
        struct nf_am_batch *b = n->am;
        n->am = b->next;
        struct dsf_buf body = {0};
        nf_am_render(b->alerts, b->n, &body);
        struct nf_delivery d = {.in = b->in, .body = &body};
        nf_deliver(n, &d);
        for (size_t i = 0; i < b->n; i++)
            nf_alert_free(b->alerts[i]);
        free(b->alerts);
        free(b);
    }
}
