/*
 * One leader among balancers. Each publishes a retained dsf/b/{id}/alive "online" on connect,
 * "offline" as its Last Will. The lead is claimed by publishing the retained dsf/b/leader
 * {"id","term","epoch"} when there is no record or its holder is offline; the claimant leads
 * only if, half a heartbeat later, the latest record it received is still its own (the broker
 * orders two claims alike for every subscriber, so exactly one wins). Every balancer also
 * beats on dsf/b/{id}/beat each heartbeat: a stopped leader keeps its connection (and its
 * Will unsent) until the broker's keep-alive check, which mosquitto runs seconds late, so its
 * missing beats are what a standby acts on. A leader that receives another's record, loses
 * its connection, or finds its own loop stalled (it was stopped) steps down at once and
 * publishes nothing more.
 */
#define DSF_MODULE "balancer"
#include "balancer/balancer.h"
#include "common/bus.h"
#include "common/loop.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct bal_peer *peer(struct balancer *b, const char *id, int add)
{
    for (struct bal_peer *p = b->peers; p; p = p->next)
        if (!strcmp(p->id, id))
            return p;
    struct bal_peer *p = add ? calloc(1, sizeof(*p)) : NULL;
    if (p) {
        snprintf(p->id, sizeof(p->id), "%s", id);
        p->next = b->peers;
        b->peers = p;
    }
    return p;
}

void bal_peers_free(struct balancer *b)
{
    for (struct bal_peer *p = b->peers, *next; p; p = next) {
        next = p->next;
        free(p);
    }
    b->peers = NULL;
}

static void step_down(struct balancer *b, const char *why)
{
    if (b->leading)
        log_warn("no longer leading: %s", why);
    b->leading = b->claiming = 0;
}

static void on_record(struct balancer *b, json_t *o)
{
    const char *id = json_string_value(json_object_get(o, "id"));
    json_t *term = json_object_get(o, "term"), *epoch = json_object_get(o, "epoch");
    if (!id || strlen(id) >= BAL_ID_MAX || !json_is_integer(term) || json_integer_value(term) < 0 ||
        json_integer_value(term) > INT32_MAX ||
        (epoch && (!json_is_integer(epoch) ||
                   json_integer_value(epoch) > bal_wall_ms() + BAL_EPOCH_AHEAD_MAX))) {
        dsf_count(&b->stats.leader_rejected, 1);
        log_warn("ignoring a malformed leader record on dsf/b/leader");
        return;
    }
    int other = strcmp(id, b->cfg.id) != 0;
    if (other && strcmp(id, b->leader_id))
        log_info("leader record: %s, term %lld", id, (long long)json_integer_value(term));
    snprintf(b->leader_id, sizeof(b->leader_id), "%s", id);
    b->leader_term = json_integer_value(term);
    b->leader_epoch = epoch ? json_integer_value(epoch) : 0;
    b->leader_seen = 1;
    bal_epoch_seen(b, b->leader_epoch);
    if (other)
        step_down(b, "another balancer's leader record arrived");
}

void bal_leader_message(struct balancer *b, const char *topic, const char *payload, size_t len)
{
    json_t *o = len ? json_loadb(payload, len, 0, NULL) : NULL;
    if (!strcmp(topic, "dsf/b/leader")) {
        if (!len)
            b->leader_id[0] = '\0'; /* the record was cleared */
        else if (json_is_object(o))
            on_record(b, o);
        json_decref(o);
        return;
    }
    const char *id = json_string_value(json_object_get(o, "id"));
    const char *st = json_string_value(json_object_get(o, "status"));
    size_t n = strlen(topic);
    struct bal_peer *p = id && strlen(id) < BAL_ID_MAX ? peer(b, id, 1) : NULL;
    if (p && n > 11 && !strcmp(topic + n - 5, "/beat")) {
        p->last_beat_ms = dsf_mono_ms();
    } else if (p && st && n > 12 && !strcmp(topic + n - 6, "/alive")) {
        if (p->online != !strcmp(st, "online"))
            log_info("balancer %s is %s", id, st);
        p->online = !strcmp(st, "online");
        p->last_beat_ms = dsf_mono_ms(); /* a beat is due within the next heartbeats */
    }
    json_decref(o);
}

void bal_leader_disconnected(struct balancer *b)
{
    step_down(b, "the bus connection was lost (another may have taken over)");
}

static int holder_alive(struct balancer *b, int64_t now)
{
    struct bal_peer *p = peer(b, b->leader_id, 0);
    return p && p->online && now - p->last_beat_ms <= b->cfg.heartbeat_ms * b->cfg.missed_beats;
}

static void beat(struct balancer *b, int64_t now)
{
    char topic[300], text[300];
    if (now - b->beat_ms < b->cfg.heartbeat_ms)
        return;
    b->beat_ms = now;
    snprintf(topic, sizeof(topic), "dsf/b/%s/beat", b->cfg.id);
    int n = snprintf(text, sizeof(text), "{\"id\":\"%s\",\"leading\":%s}", b->cfg.id,
                     b->leading ? "true" : "false");
    struct dsf_bus_message m = {.topic = topic, .payload = text, .len = (size_t)n};
    dsf_bus_publish(b->bus, &m, 0, 0, 0);
}

void bal_stalled(struct balancer *b, int64_t now, int64_t gap)
{
    log_warn("the loop did not run for %lld ms (stopped?): settling again before deciding",
             (long long)gap);
    step_down(b, "this process was stopped; another may have taken over");
    b->started_ms = now;
    /* Their beats were not read: they are not late, this balancer was. */
    for (struct bal_member *m = b->members; m; m = m->next)
        if (m->alive)
            m->last_beat_ms = now;
    for (struct bal_peer *p = b->peers; p; p = p->next)
        p->last_beat_ms = now;
}

static void claim(struct balancer *b, int64_t now)
{
    char text[400];
    b->term = b->leader_term + 1;
    int n = snprintf(text, sizeof(text), "{\"id\":\"%s\",\"term\":%lld,\"epoch\":%lld}", b->cfg.id,
                     (long long)b->term, (long long)b->epoch);
    struct dsf_bus_message m = {.topic = "dsf/b/leader", .payload = text, .len = (size_t)n};
    if (dsf_bus_publish(b->bus, &m, 1, 1, 0) < 0)
        return;
    log_info("claiming the lead, term %lld (%s)", (long long)b->term,
             !*b->leader_id                     ? "no leader record"
             : !strcmp(b->leader_id, b->cfg.id) ? "the record is this balancer's, from before"
                                                : "its holder is offline or silent");
    b->claiming = 1;
    b->claim_ms = now;
}

void bal_leader_tick(struct balancer *b, int64_t now)
{
    if (!b->bus_up)
        return;
    beat(b, now);
    if (b->leading || now - b->started_ms < bal_settle_ms(b))
        return;
    if (b->claiming) {
        if (now - b->claim_ms < b->cfg.heartbeat_ms / 2)
            return;
        b->claiming = 0;
        if (strcmp(b->leader_id, b->cfg.id) || b->leader_term != b->term)
            return; /* another claim came after ours */
        b->leading = 1;
        dsf_count(&b->stats.leader_changes, 1);
        log_info("leading, term %lld: reading the assignments back", (long long)b->term);
        bal_adopt(b);
        return;
    }
    /* Our own record from before a restart is stale: claim again with a new term. */
    if (!*b->leader_id || !strcmp(b->leader_id, b->cfg.id) || !holder_alive(b, now))
        claim(b, now);
}
