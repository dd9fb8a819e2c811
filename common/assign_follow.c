#define DSF_MODULE "assign"
#include "common/assign_follow.h"
#include "common/bucket.h"
#include "common/bus.h"
#include "common/log.h"
#include "common/loop.h"
#include "common/topic.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define F(field) offsetof(struct dsf_follow_config, field)

const struct dsf_cfg_key dsf_follow_keys[] = {
    {"pool", DSF_CFG_ID, "default", F(pool),
     "the balancer's pool this member belongs to (a label, checked like id), sent in its "
     "heartbeat and status",
     0, 0},
    {"mqtt.follow_assign", DSF_CFG_BOOL, "false", F(enabled),
     "follow the balancer's retained assignment (collector dsf/c/{id}/assign, alarm engine "
     "dsf/e/{id}/assign); owns no bucket until the first one",
     0, 0},
    {"heartbeat", DSF_CFG_DURATION, "1s", F(heartbeat_ms),
     "how often the load report goes to the heartbeat topic (dsf/c/{id}/hb, dsf/e/{id}/hb; also "
     "at once after an assignment is applied)",
     100, 600000},
    {"assign.max_ahead", DSF_CFG_DURATION, "10m", F(max_ahead_ms),
     "assignment epochs (the balancer's clock in ms) further ahead of this host's clock are "
     "refused",
     0, 86400000 * 365.0},
    DSF_CFG_END,
};

size_t dsf_follow_sections(struct dsf_cfg_section *out, struct dsf_follow_config *cfg)
{
    out[0] = (struct dsf_cfg_section){"", dsf_follow_keys, cfg, NULL};
    return 1;
}

const char *const dsf_follow_refused_names[DSF_FOLLOW_REASONS] = {
    [DSF_FOLLOW_STALE] = "stale",
    [DSF_FOLLOW_MALFORMED] = "malformed",
    [DSF_FOLLOW_RANGE] = "range",
    [DSF_FOLLOW_AHEAD] = "ahead",
};

/* The member's identity as the balancer reads it: {"id","role","pool"} and, when status is
 * set, "status". Built with jansson so an id cannot break the JSON. */
static json_t *status_object(const struct dsf_follow *f, const char *status)
{
    json_t *o = json_pack("{s:s, s:s, s:s}", "id", f->id, "role", f->role, "pool", f->cfg->pool);
    if (o && status)
        json_object_set_new(o, "status", json_string(status));
    return o;
}

static char *status_payload(const struct dsf_follow *f, const char *status)
{
    json_t *o = status_object(f, status);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return s;
}

int dsf_follow_init(struct dsf_follow *f, const struct dsf_follow_config *cfg, const char *role,
                    const char *id, int (*topic)(char *, size_t, const char *, const char *),
                    uint32_t total, int buckets, const struct dsf_follow_hooks *hooks, char *err,
                    size_t errlen)
{
    memset(f, 0, sizeof(*f));
    f->cfg = cfg;
    f->role = role;
    f->id = id;
    f->topic = topic;
    f->total = total;
    if (hooks)
        f->hooks = *hooks;
    if (buckets && !(f->owned = calloc(total, 1))) {
        snprintf(err, errlen, "%s buckets: out of memory", role);
        return -1;
    }
    return 0;
}

int dsf_follow_bus_options(struct dsf_follow *f, struct dsf_bus_options *o, char *hb_topic,
                           size_t cap, char *err, size_t errlen)
{
    /* The online record on every connect overwrites the retained offline Will a previous run
     * left: the balancer must not take a live member for dead. */
    f->will = status_payload(f, "offline");
    f->online = status_payload(f, "online");
    if (!f->will || !f->online || f->topic(hb_topic, cap, f->id, "hb") < 0) {
        snprintf(err, errlen, "%s status payloads: out of memory or id too long", f->role);
        return -1;
    }
    o->will_topic = hb_topic;
    o->will_payload = f->will;
    o->connect_payload = f->online;
    return 0;
}

static const char *prefix_at(const json_t *prefixes, size_t i)
{
    return json_string_value(json_array_get(prefixes, i));
}

/* 1 when the topic of prefix (NULL: the whole bucket) is among those of prefixes. */
static int among(const json_t *prefixes, const char *prefix)
{
    size_t n = json_array_size(prefixes);
    if (!n)
        return !prefix;
    for (size_t i = 0; prefix && i < n; i++)
        if (!strcmp(prefix_at(prefixes, i), prefix))
            return 1;
    return 0;
}

/* Subscribes (keep NULL) or drops the topics of bucket b under prefixes (none: the whole
 * bucket); dropping spares those among keep, still wanted. */
static void bucket_topics(struct dsf_follow *f, uint32_t b, const json_t *prefixes, int on,
                          const json_t *keep)
{
    char topic[300];
    size_t n = json_array_size(prefixes);
    for (size_t i = 0; i < (n ? n : 1); i++) {
        const char *p = n ? prefix_at(prefixes, i) : NULL;
        if ((!on && keep && among(keep, p)) ||
            dsf_topic_bucket_prefix(topic, sizeof(topic), b, p) < 0)
            continue;
        if (on)
            dsf_bus_subscribe(f->bus, topic, f->qos);
        else
            dsf_bus_unsubscribe(f->bus, topic);
    }
}

/* Applies a bucket set and its prefixes: subscribe to the new topics first, then drop the
 * old ones, so no message of a moving bucket (or prefix) falls between two members. The first
 * set applied after a connect unsubscribes every whole bucket not wanted whole, flagged or
 * not: a persistent session may hold subscriptions of a previous run, or ones dropped while
 * the link was down (prefix topics of a previous run are not known: owns() drops their
 * messages unacked until the session expires). */
static void apply(struct dsf_follow *f, const uint8_t *want, json_t *prefixes)
{
    size_t added = 0, removed = 0;
    int same = json_array_size(prefixes) || json_array_size(f->prefixes)
                   ? json_equal(prefixes, f->prefixes)
                   : 1;
    for (uint32_t b = 0; b < f->total; b++) {
        if (want[b] && (!f->owned[b] || !same))
            bucket_topics(f, b, prefixes, 1, NULL);
        if (want[b] && !f->owned[b] && f->cfg->enabled && f->hooks.gained)
            f->hooks.gained(f->hooks.arg, b); /* a move: the previous owner hands over */
        added += want[b] && !f->owned[b];
    }
    for (uint32_t b = 0; b < f->total; b++) {
        int whole_kept = want[b] && !json_array_size(prefixes);
        if (f->owned[b] && (!want[b] || !same))
            bucket_topics(f, b, f->prefixes, 0, want[b] ? prefixes : NULL);
        if (!f->swept && !whole_kept)
            bucket_topics(f, b, NULL, 0, NULL);
        if (f->owned[b] && !want[b] && f->hooks.lost)
            f->hooks.lost(f->hooks.arg, b);
        removed += f->owned[b] && !want[b];
        f->owned[b] = want[b];
    }
    json_incref(prefixes);
    json_decref(f->prefixes);
    f->prefixes = prefixes;
    f->swept = dsf_bus_connected(f->bus);
    if (added || removed || !same)
        log_info("buckets: +%zu -%zu%s", added, removed, same ? "" : " (prefixes changed)");
}

/* The assignment's buckets as flags, or NULL (and the reason counted and logged). */
static uint8_t *assign_buckets(struct dsf_follow *f, json_t *buckets, long long epoch)
{
    uint8_t *want = calloc(f->total, 1);
    size_t i;
    json_t *v;
    if (!want)
        return NULL;
    json_array_foreach(buckets, i, v)
    {
        json_int_t b = json_integer_value(v);
        if (!json_is_integer(v) || b < 0 || b >= (json_int_t)f->total) {
            f->refused[DSF_FOLLOW_RANGE]++;
            log_warn("refusing assignment epoch %lld: bucket numbers outside 0..%u", epoch,
                     f->total - 1);
            free(want);
            return NULL;
        }
        want[b] = 1;
    }
    return want;
}

/* Epochs are the balancer's wall-clock time in ms: one further ahead of this host's clock
 * than assign.max_ahead is implausible (a forged 2^63-1 would lock out every real assignment
 * for good), one not above the epoch applied is stale. */
static int epoch_acceptable(struct dsf_follow *f, long long epoch, const uint8_t *want)
{
    long long now_ms = (long long)(dsf_now_ns() / 1000000);
    long long limit = now_ms + (long long)f->cfg->max_ahead_ms;
    if (epoch > limit) {
        f->refused[DSF_FOLLOW_AHEAD]++;
        log_warn("refusing assignment epoch %lld: more than assign.max_ahead (%lld ms) ahead of "
                 "this %s's clock (epochs are the balancer's clock in ms; limit now %lld)",
                 epoch, (long long)f->cfg->max_ahead_ms, f->role, limit);
        return 0;
    }
    if (epoch > f->epoch)
        return 1;
    if (epoch == f->epoch && memcmp(want, f->owned, f->total) == 0) {
        log_debug("assignment epoch %lld again (the retained copy): nothing to do", epoch);
        return 0;
    }
    f->refused[DSF_FOLLOW_STALE]++;
    log_warn("refusing stale assignment epoch %lld: epoch %lld is applied", epoch,
             (long long)f->epoch);
    return 0;
}

/* An optional list of "ns" or "ns/mci" prefixes: 0 when absent or well-formed. */
static int prefixes_bad(const json_t *v)
{
    size_t i;
    json_t *p;
    if (!v)
        return 0;
    if (!json_is_array(v))
        return 1;
    json_array_foreach(v, i, p)
    {
        if (!json_is_string(p) || !dsf_topic_prefix_ok(json_string_value(p), json_string_length(p)))
            return 1;
    }
    return 0;
}

void dsf_follow_message(struct dsf_follow *f, const struct dsf_bus_message *m)
{
    char mine[300];
    if (!f->owned || f->topic(mine, sizeof(mine), f->id, "assign") < 0 ||
        strcmp(m->topic, mine) != 0)
        return; /* Kafka (the group assigns partitions), or not this member's assignment */
    json_error_t jerr;
    json_t *root = json_loadb(m->payload, m->len, 0, &jerr), *buckets, *pre = NULL, *exc = NULL;
    json_int_t epoch = -1;
    if (!root ||
        json_unpack(root, "{s:I, s:o, s?o, s?o}", "epoch", &epoch, "buckets", &buckets, "prefixes",
                    &pre, "exclude", &exc) ||
        !json_is_array(buckets) || epoch < 1 || prefixes_bad(pre) || prefixes_bad(exc)) {
        f->refused[DSF_FOLLOW_MALFORMED]++;
        log_warn("ignoring a malformed assignment on %s (want {\"epoch\":N,\"buckets\":[...]} "
                 "with N >= 1, optional \"prefixes\" and \"exclude\" lists of ns or ns/mci)",
                 m->topic);
        json_decref(root);
        return;
    }
    uint8_t *want = assign_buckets(f, buckets, (long long)epoch);
    if (want && epoch_acceptable(f, (long long)epoch, want)) {
        f->epoch = epoch;
        log_info("assignment epoch %lld: %zu buckets, %zu prefixes, %zu excluded", (long long)epoch,
                 json_array_size(buckets), json_array_size(pre), json_array_size(exc));
        /* Excluding only after subscribing: the dedicated pool took the prefixes first. */
        apply(f, want, pre);
        json_decref(f->exclude);
        f->exclude = json_incref(exc);
        dsf_follow_heartbeat(f); /* the balancer waits for it before taking buckets elsewhere */
    }
    free(want);
    json_decref(root);
}

/* A reconnect may find a session that still holds buckets dropped while the link was down. */
void dsf_follow_on_connect(struct dsf_follow *f)
{
    if (!f->owned)
        return;
    f->swept = 0;
    uint8_t *want = malloc(f->total);
    if (!want)
        return; /* swept with the next assignment */
    memcpy(want, f->owned, f->total);
    apply(f, want, f->prefixes);
    free(want);
}

static int under_any(const json_t *prefixes, const struct dsf_identity *id)
{
    for (size_t i = 0; i < json_array_size(prefixes); i++)
        if (dsf_topic_prefix_match(prefix_at(prefixes, i), id))
            return 1;
    return 0;
}

int dsf_follow_owns(const struct dsf_follow *f, uint32_t bucket, const struct dsf_identity *id)
{
    if (!f->owned || bucket >= f->total)
        return 1;
    if (!f->owned[bucket])
        return 0;
    if (!id)
        return 1;
    return (!json_array_size(f->prefixes) || under_any(f->prefixes, id)) &&
           !under_any(f->exclude, id);
}

size_t dsf_follow_owned_count(const struct dsf_follow *f)
{
    size_t n = 0;
    for (uint32_t b = 0; f->owned && b < f->total; b++)
        n += f->owned[b];
    return n;
}

static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void dsf_follow_heartbeat(struct dsf_follow *f)
{
    int64_t now = dsf_mono_ms();
    double dt = f->hb_last.ms ? (double)(now - f->hb_last.ms) / 1000.0 : 0;
    double cpu = cpu_seconds();
    json_t *o = status_object(f, "online");
    if (!o || !f->bus) {
        json_decref(o);
        return;
    }
    json_object_update_new(o, json_pack("{s:I, s:I}", "epoch", (json_int_t)f->epoch, "buckets",
                                        (json_int_t)dsf_follow_owned_count(f)));
    if (f->hooks.load)
        f->hooks.load(f->hooks.arg, o, dt);
    json_object_set_new(o, "cpu", json_real(dt > 0 ? (cpu - f->hb_last.cpu) / dt : 0.0));
    f->hb_last.cpu = cpu;
    f->hb_last.ms = now;
    char *payload = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(7));
    json_decref(o);
    char topic[300];
    if (payload && f->topic(topic, sizeof(topic), f->id, "hb") >= 0) {
        struct dsf_bus_message m = {.topic = topic, .payload = payload, .len = strlen(payload)};
        dsf_bus_publish(f->bus, &m, 0, 0, 0);
    }
    free(payload);
}

static void on_heartbeat(evutil_socket_t fd, short what, void *arg)
{
    dsf_follow_heartbeat(arg);
}

int dsf_follow_start(struct dsf_follow *f, struct dsf_bus *bus, struct event_base *base,
                     const char *spec, int qos, char *err, size_t errlen)
{
    free(f->will); /* the bus keeps copies */
    free(f->online);
    f->will = f->online = NULL;
    f->bus = bus;
    f->qos = qos;
    if (f->owned) {
        uint8_t *want = calloc(f->total, 1);
        /* Following, it owns nothing until its first assignment: buckets another member took
         * over while this one was down must not be handled twice. */
        if (!want || dsf_parse_buckets(f->cfg->enabled ? "none" : spec, want, f->total)) {
            free(want);
            snprintf(err, errlen, "mqtt.buckets '%s': expected all, none or a list like 0-15,32",
                     spec);
            return -1;
        }
        f->swept = 1; /* not connected yet: the connect sweeps */
        apply(f, want, NULL);
        free(want);
        char topic[300];
        if (f->cfg->enabled && f->topic(topic, sizeof(topic), f->id, "assign") >= 0)
            dsf_bus_subscribe(bus, topic, 1);
    }
    f->timer = event_new(base, -1, EV_PERSIST, on_heartbeat, f);
    struct timeval tv = {(time_t)(f->cfg->heartbeat_ms / 1000),
                         (suseconds_t)(f->cfg->heartbeat_ms % 1000 * 1000)};
    if (!f->timer || event_add(f->timer, &tv)) {
        snprintf(err, errlen, "%s heartbeat timer: out of memory", f->role);
        return -1;
    }
    return 0;
}

void dsf_follow_stop(struct dsf_follow *f)
{
    if (f->timer)
        event_free(f->timer);
    f->timer = NULL;
    f->bus = NULL;
}

void dsf_follow_free(struct dsf_follow *f)
{
    dsf_follow_stop(f);
    free(f->owned);
    json_decref(f->prefixes);
    json_decref(f->exclude);
    free(f->will);
    free(f->online);
    memset(f, 0, sizeof(*f));
}
