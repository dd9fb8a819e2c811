/*
 * The target set. Each source (the targets file, the federation model) lists its targets in
 * one pass; a target is one identity (ns/mci/vm), claimed by the first source that lists it.
 * Each target scrapes on its own timer and carries the state its status was published with.
 */
#define DSF_MODULE "targets"
#include "common/bucket.h"
#include "common/http.h"
#include "common/loop.h"
#include "scraper/scraper.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *source_name(unsigned src)
{
    return src & SOURCE_FILE ? "the targets file" : "the federation model";
}

static struct scrape_target *find(struct scraper *s, const char *key)
{
    for (struct scrape_target *t = s->targets; t; t = t->next)
        if (!strcmp(t->key, key))
            return t;
    return NULL;
}

static void labels_clear(struct scrape_target *t)
{
    for (size_t i = 0; i < t->nlabels; i++) {
        free(t->label_names[i]);
        free(t->label_values[i]);
    }
    t->nlabels = 0;
}

static void target_free(struct scrape_target *t)
{
    fetch_cancel(t);
    if (t->timer)
        event_free(t->timer);
    labels_clear(t);
    free(t->url);
    buf_free(&t->body);
    free(t);
}

static void schedule(struct scrape_target *t, int64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000 * 1000)};
    evtimer_add(t->timer, &tv);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct scrape_target *t = arg;
    (void)fd;
    (void)what;
    schedule(t, t->owner->cfg.interval_ms);
    if (t->easy)
        return; /* cannot happen while scrape.timeout < scrape.interval; never two at once */
    if (fetch_start(t) < 0)
        target_scraped(t, SCRAPE_ERROR, "libcurl refused the transfer");
}

/* Replaces what the source says of the target: URL, mode and labels. */
static int target_set(struct scrape_target *t, const struct target_spec *spec)
{
    char *url = strdup(spec->url);
    if (!url)
        return -1;
    free(t->url);
    t->url = url;
    t->mode = spec->mode;
    labels_clear(t);
    for (size_t i = 0; i < spec->nlabels && i < TARGET_LABELS_MAX; i++) {
        t->label_names[i] = strdup(spec->label_names[i]);
        t->label_values[i] = strdup(spec->label_values[i]);
        t->nlabels++;
        if (!t->label_names[i] || !t->label_values[i])
            return -1;
    }
    return 0;
}

static struct scrape_target *target_new(struct scraper *s, const struct target_spec *spec,
                                        const char *key)
{
    struct scrape_target *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->owner = s;
    snprintf(t->key, sizeof(t->key), "%s", key);
    snprintf(t->id.ns, sizeof(t->id.ns), "%s", spec->ns);
    snprintf(t->id.mci, sizeof(t->id.mci), "%s", spec->mci);
    snprintf(t->id.vm, sizeof(t->id.vm), "%s", spec->vm);
    uint32_t bucket = dsf_bucket(key, strlen(key), s->buckets);
    dsf_topic_metrics_key(t->metrics_topic, sizeof(t->metrics_topic), bucket, key);
    dsf_topic_agent_key(t->status_topic, sizeof(t->status_topic), key, "status");
    t->timer = evtimer_new(s->base, on_timer, t);
    if (!t->timer || dsf_random_hex(t->boot, 8) < 0 || target_set(t, spec) < 0) {
        target_free(t);
        return NULL;
    }
    /* A random start in the first interval: targets added together do not scrape together. */
    uint64_t r = 0;
    char hex[17];
    if (dsf_random_hex(hex, 8) == 0)
        r = strtoull(hex, NULL, 16);
    schedule(t, (int64_t)(r % (uint64_t)s->cfg.interval_ms));
    t->next = s->targets;
    s->targets = t;
    return t;
}

static int check_identity(const struct target_spec *t, char *why, size_t cap)
{
    const char *names[3] = {"ns", "mci", "vm"}, *values[3] = {t->ns, t->mci, t->vm};
    char reason[200];
    for (int i = 0; i < 3; i++) {
        if (!values[i] || !*values[i]) {
            snprintf(why, cap, "label '%s' is missing (ns, mci and vm name the VM)", names[i]);
            return -1;
        }
        if (dsf_check_id(values[i], reason, sizeof(reason)) < 0) {
            snprintf(why, cap, "label '%s': %s", names[i], reason);
            return -1;
        }
    }
    return 0;
}

void targets_begin(struct scraper *s, enum scrape_source src)
{
    for (struct scrape_target *t = s->targets; t; t = t->next)
        t->seen &= ~(unsigned)src;
}

int targets_add(struct scraper *s, enum scrape_source src, const struct target_spec *spec,
                char *why, size_t cap)
{
    char key[200];
    if (check_identity(spec, why, cap) < 0)
        return -1;
    snprintf(key, sizeof(key), "%s/%s/%s", spec->ns, spec->mci, spec->vm);
    struct scrape_target *t = find(s, key);
    if (t && (t->seen & src)) {
        snprintf(why, cap, "%s is listed twice: the first is kept", key);
        return -1;
    }
    if (t && (t->sources & ~(unsigned)src)) {
        snprintf(why, cap, "%s is scraped for %s already: one target per VM", key,
                 source_name(t->sources));
        return -1;
    }
    if (t && target_set(t, spec) < 0)
        t = NULL;
    else if (!t && (t = target_new(s, spec, key)))
        log_info("target %s: %s (%s, from %s)", key, spec->url,
                 spec->mode == SCRAPE_PULL ? "agent pull" : "exporter", source_name(src));
    if (!t) {
        snprintf(why, cap, "%s: out of memory", key);
        return -1;
    }
    t->sources |= src;
    t->seen |= src;
    return 0;
}

/* A target no source lists: the scraper no longer speaks for the VM, so its retained status
 * is cleared, as damselfly-fed clears a removed VM's (docs/scraper.md). */
void targets_end(struct scraper *s, enum scrape_source src)
{
    struct scrape_target **p = &s->targets;
    while (*p) {
        struct scrape_target *t = *p;
        if ((t->sources & src) && !(t->seen & src))
            t->sources &= ~(unsigned)src;
        if (t->sources) {
            p = &t->next;
            continue;
        }
        *p = t->next;
        log_info("target %s removed: its status is cleared", t->key);
        if (t->state != TARGET_PENDING)
            publish_status(t, 1);
        target_free(t);
    }
}

void targets_free(struct scraper *s)
{
    while (s->targets) {
        struct scrape_target *t = s->targets;
        s->targets = t->next;
        target_free(t);
    }
}

size_t targets_count(const struct scraper *s, enum target_state st)
{
    size_t n = 0;
    for (const struct scrape_target *t = s->targets; t; t = t->next)
        n += t->state == st;
    return n;
}

const char *const scrape_result_names[SCRAPE_RESULTS] = {
    [SCRAPE_OK] = "ok",
    [SCRAPE_TIMEOUT] = "timeout",
    [SCRAPE_HTTP_ERROR] = "http_error",
    [SCRAPE_REFUSED] = "refused",
    [SCRAPE_TOO_LARGE] = "too_large",
    [SCRAPE_TLS] = "tls",
    [SCRAPE_ERROR] = "error",
};

void target_scraped(struct scrape_target *t, enum scrape_result r, const char *detail)
{
    struct scraper *s = t->owner;
    s->stats.scrapes[r]++;
    dsf_histogram_observe(&s->duration, (double)(dsf_mono_ms() - t->started_ms) / 1000.0, 1);
    if (r == SCRAPE_OK) {
        t->failures = 0;
        if (t->state != TARGET_UP) {
            log_info("target %s online (%s)", t->key, t->url);
            t->state = TARGET_UP;
            publish_status(t, 0);
        }
        return;
    }
    t->failures++;
    uint64_t held_back;
    if (dsf_log_due(&s->fail_warn, &held_back))
        log_warn("scrape of %s (%s) failed: %s: %s; %llu more failures since the last warning",
                 t->key, t->url, scrape_result_names[r], detail, (unsigned long long)held_back);
    if (t->failures >= s->cfg.max_failures && t->state != TARGET_DOWN) {
        log_info("target %s offline after %lld failed scrapes", t->key, (long long)t->failures);
        t->state = TARGET_DOWN;
        publish_status(t, 0);
    }
}
