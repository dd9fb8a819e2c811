/*
 * Members from their heartbeats and Last Wills (collectors dsf/c/{id}/hb, alarm engines
 * dsf/e/{id}/hb), and what each was assigned, read back from the retained {family}/{id}/assign:
 * the state a restarted or standby balancer decides from. A member's role is its topic
 * family, which the broker's ACL ties to its principal, never what its payload says. The bus
 * connection is here; leader.c gets the dsf/b/# messages.
 */
#define DSF_MODULE "balancer"
#include "balancer/balancer.h"
#include "common/bus.h"
#include "common/loop.h"
#include "common/topic.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { HB_JSON, HB_FIELDS, HB_ID, HB_TOO_LARGE };
enum { AS_JSON, AS_FIELDS, AS_RANGE };
const char *const bal_hb_reason_names[BAL_HB_REASONS] = {"json", "fields", "id", "too_large"};
const char *const bal_assign_reason_names[BAL_ASSIGN_REASONS] = {"json", "fields", "range"};

#define HB_MAX 4096

struct bal_member *bal_member_find_role(struct balancer *b, const char *role, const char *id)
{
    for (struct bal_member *m = b->members; m; m = m->next)
        if (!strcmp(m->id, id) && !strcmp(m->role, role))
            return m;
    return NULL;
}

struct bal_member *bal_member_find(struct balancer *b, const char *id)
{
    return bal_member_find_role(b, "collector", id);
}

static struct bal_member *member_add(struct balancer *b, const char *role, const char *id)
{
    struct bal_member *m = bal_member_find_role(b, role, id);
    if (m)
        return m;
    if (!(m = calloc(1, sizeof(*m))) || !(m->assigned = calloc(b->nb, 1))) {
        free(m);
        return NULL;
    }
    snprintf(m->id, sizeof(m->id), "%s", id);
    snprintf(m->role, sizeof(m->role), "%s", role);
    snprintf(m->pool, sizeof(m->pool), "default");
    m->lag = -1;
    m->next = b->members;
    b->members = m;
    return m;
}

void bal_members_free(struct balancer *b)
{
    for (struct bal_member *m = b->members, *next; m; m = next) {
        next = m->next;
        free(m->assigned);
        json_decref(m->assigned_lists);
        free(m);
    }
    b->members = NULL;
}

struct bal_group *bal_member_group(struct balancer *b, const struct bal_member *m)
{
    for (size_t g = 0; g < b->ngroups; g++)
        if (!strcmp(b->groups[g].role, m->role) && !strcmp(b->groups[g].pool, m->pool))
            return &b->groups[g];
    return NULL;
}

/* Only within its group (role and pool): a member of an unknown pool has none. */
int bal_member_eligible(const struct bal_member *m)
{
    return m->alive && !m->draining && !m->unresponsive;
}

static void changed(struct balancer *b, const struct bal_member *m)
{
    struct bal_group *g = bal_member_group(b, m);
    if (g)
        g->dirty = 1;
}

static void mark_dead(struct balancer *b, struct bal_member *m, const char *why, int64_t now)
{
    if (!m->alive)
        return;
    m->alive = 0;
    m->dead_since_ms = now;
    struct bal_group *g = bal_member_group(b, m);
    int held = 0;
    for (uint32_t k = 0; k < b->nb && !held; k++)
        held = m->assigned[k];
    if (g) {
        g->dirty = 1;
        if (!g->death_ms && held) /* a failover to time */
            g->death_ms = now;
    }
    log_info("member %s is dead (%s)", m->id, why);
}

static int reject_hb(struct balancer *b, int reason, const char *topic)
{
    uint64_t held;
    dsf_count(&b->stats.hb_rejected[reason], 1);
    if (dsf_log_due(&b->hb_limit, &held))
        log_warn("ignoring a heartbeat on %s (%s; %llu more not logged)", topic,
                 bal_hb_reason_names[reason], (unsigned long long)held);
    return -1;
}

/* Optional string field: absent keeps def, else a string shorter than cap. */
static int opt_str(json_t *o, const char *key, char *out, size_t cap, const char *def)
{
    json_t *v = json_object_get(o, key);
    const char *s = v ? json_string_value(v) : def;
    if (!s || !*s || strlen(s) >= cap)
        return -1;
    snprintf(out, cap, "%s", s);
    return 0;
}

static int opt_num(json_t *o, const char *key, double *out)
{
    json_t *v = json_object_get(o, key);
    if (!v)
        return 0;
    if (!json_is_number(v))
        return -1;
    *out = json_number_value(v);
    return 0;
}

static void report_pool(struct balancer *b, struct bal_member *m)
{
    if (m->reported || bal_pool_find(b, m->pool))
        return;
    m->reported = 1;
    dsf_count(&b->stats.unknown_pool, 1);
    log_warn("member %s announces pool %s that no pools.map entry names (role %s): reported, "
             "given no bucket",
             m->id, m->pool, m->role);
}

/* The beat's fields into m (after they all parsed). */
static void beat(struct balancer *b, struct bal_member *m, json_t *o, const char *pool, int64_t now)
{
    double pps = 0, cpu = 0;
    opt_num(o, "points_per_s", &pps);
    opt_num(o, "cpu", &cpu);
    json_t *ep = json_object_get(o, "epoch"), *lag = json_object_get(o, "lag");
    if (strcmp(m->pool, pool)) {
        changed(b, m);
        snprintf(m->pool, sizeof(m->pool), "%s", pool);
        m->reported = 0;
        changed(b, m);
    }
    report_pool(b, m);
    if (!m->alive) {
        log_info("member %s is alive (role %s, pool %s)", m->id, m->role, m->pool);
        m->alive = 1;
        m->dead_since_ms = 0;
        changed(b, m);
    }
    m->last_beat_ms = now;
    m->points_per_s = pps;
    m->cpu = cpu;
    m->lag = lag ? json_integer_value(lag) : -1;
    if (ep)
        m->epoch = json_integer_value(ep);
    if (m->unresponsive && m->epoch >= m->assigned_epoch) {
        log_info("member %s confirmed epoch %lld: it takes buckets again", m->id,
                 (long long)m->epoch);
        m->unresponsive = 0;
        changed(b, m);
    }
}

static int on_hb(struct balancer *b, const char *role, const char *id,
                 const struct dsf_bus_message *msg)
{
    const char *t = msg->topic;
    if (msg->len == 0)
        return 0; /* a retained copy cleared */
    if (msg->len > HB_MAX)
        return reject_hb(b, HB_TOO_LARGE, t);
    json_t *o = json_loadb(msg->payload, msg->len, 0, NULL);
    if (!json_is_object(o)) {
        json_decref(o);
        return reject_hb(b, HB_JSON, t);
    }
    const char *hid = json_string_value(json_object_get(o, "id"));
    const char *st = json_string_value(json_object_get(o, "status"));
    char said[32], pool[64]; /* "role": checked as a field, but the topic decides */
    double d = 0;
    json_t *ep = json_object_get(o, "epoch"), *lag = json_object_get(o, "lag");
    int bad = !st || (strcmp(st, "online") && strcmp(st, "offline")) ||
              opt_str(o, "role", said, sizeof(said), role) ||
              opt_str(o, "pool", pool, sizeof(pool), "default") ||
              (ep && (!json_is_integer(ep) || json_integer_value(ep) < 0)) ||
              (lag && !json_is_integer(lag)) || opt_num(o, "points_per_s", &d) ||
              opt_num(o, "cpu", &d);
    int rc = 0;
    struct bal_member *m = NULL;
    if (!hid || strcmp(hid, id))
        rc = reject_hb(b, HB_ID, t);
    else if (bad)
        rc = reject_hb(b, HB_FIELDS, t);
    else if (!(m = member_add(b, role, id)))
        log_error("member %s: out of memory", id);
    else if (!strcmp(st, "offline"))
        mark_dead(b, m, msg->retained ? "offline, retained" : "Last Will or clean stop",
                  dsf_mono_ms());
    else
        beat(b, m, o, pool, dsf_mono_ms());
    json_decref(o);
    return rc;
}

static int reject_assign(struct balancer *b, int reason, const char *topic)
{
    uint64_t held;
    dsf_count(&b->stats.assign_rejected[reason], 1);
    if (dsf_log_due(&b->assign_limit, &held))
        log_warn("ignoring the assignment on %s (%s; %llu more not logged)", topic,
                 bal_assign_reason_names[reason], (unsigned long long)held);
    return -1;
}

/* Flags of a {"epoch","buckets"} message, or -1 with the reason. */
static int parse_assign(struct balancer *b, json_t *o, uint8_t *flags, int64_t *epoch)
{
    json_t *ep = json_object_get(o, "epoch"), *list = json_object_get(o, "buckets"), *v;
    size_t i;
    if (!json_is_integer(ep) || json_integer_value(ep) <= 0 || !json_is_array(list))
        return AS_FIELDS;
    *epoch = json_integer_value(ep);
    if (*epoch > bal_wall_ms() + BAL_EPOCH_AHEAD_MAX)
        return AS_RANGE;
    json_array_foreach(list, i, v)
    {
        if (!json_is_integer(v))
            return AS_FIELDS;
        if (json_integer_value(v) < 0 || json_integer_value(v) >= b->nb)
            return AS_RANGE;
        flags[json_integer_value(v)] = 1;
    }
    return -1;
}

static int on_assign(struct balancer *b, const char *role, const char *id,
                     const struct dsf_bus_message *msg)
{
    if (msg->len == 0)
        return 0;
    json_t *o = json_loadb(msg->payload, msg->len, 0, NULL);
    uint8_t *flags = calloc(b->nb, 1);
    int64_t epoch = 0;
    int reason = !json_is_object(o) ? AS_JSON : flags ? parse_assign(b, o, flags, &epoch) : -1;
    json_t *lists = reason < 0 && flags ? bal_lists_of(o) : NULL;
    json_decref(o);
    if (reason >= 0) {
        free(flags);
        return reject_assign(b, reason, msg->topic);
    }
    struct bal_member *m = lists ? member_add(b, role, id) : NULL;
    if (m && epoch > m->assigned_epoch) { /* not our own echo: another balancer's, or old */
        memcpy(m->assigned, flags, b->nb);
        m->assigned_epoch = epoch;
        m->assigned_ms = dsf_mono_ms();
        json_decref(m->assigned_lists);
        m->assigned_lists = json_incref(lists);
    }
    json_decref(lists);
    bal_epoch_seen(b, epoch);
    free(flags);
    return 0;
}

void bal_on_message(void *arg, const struct dsf_bus_message *m)
{
    struct balancer *b = arg;
    char id[64], leaf[64];
    enum dsf_topic_family family;
    if (!strncmp(m->topic, "dsf/b/", 6)) {
        bal_leader_message(b, m->topic, m->payload, m->len);
        return;
    }
    if (dsf_topic_parse_member(m->topic, &family, id, leaf))
        return;
    const char *role = family == DSF_TOPIC_ENGINE ? "alarm" : "collector";
    if (!strcmp(leaf, "hb"))
        on_hb(b, role, id, m);
    else if (!strcmp(leaf, "assign"))
        on_assign(b, role, id, m);
}

static void on_connect(void *arg)
{
    struct balancer *b = arg;
    b->bus_up = 1;
    log_info("bus connected");
}

static void on_disconnect(void *arg, const char *reason)
{
    struct balancer *b = arg;
    b->bus_up = 0;
    log_warn("bus connection lost (%s)", reason ? reason : "unknown");
    bal_leader_disconnected(b);
}

int bal_bus_start(struct balancer *b, char *err, size_t errlen)
{
    static char client_id[300];
    snprintf(client_id, sizeof(client_id), "dsf-balancer-%s", b->cfg.id);
    snprintf(b->alive_topic, sizeof(b->alive_topic), "dsf/b/%s/alive", b->cfg.id);
    snprintf(b->alive_online, sizeof(b->alive_online), "{\"id\":\"%s\",\"status\":\"online\"}",
             b->cfg.id);
    snprintf(b->alive_offline, sizeof(b->alive_offline), "{\"id\":\"%s\",\"status\":\"offline\"}",
             b->cfg.id);
    struct dsf_bus_options opt = {
        .client_id = *b->cfg.mqtt.client_id ? b->cfg.mqtt.client_id : client_id,
        .will_topic = b->alive_topic,
        .will_payload = b->alive_offline,
        .connect_payload = b->alive_online,
        .max_inflight = 1000,
    };
    dsf_bus_connection(&opt, &b->cfg.mqtt, NULL, 0);
    opt.clean_start = 1; /* everything it needs is retained */
    struct dsf_bus_callbacks cb = {.on_connect = on_connect,
                                   .on_disconnect = on_disconnect,
                                   .on_message = bal_on_message,
                                   .arg = b};
    if (!(b->bus = dsf_bus_new(b->base, &opt, &cb, err, errlen)))
        return -1;
    dsf_bus_subscribe(b->bus, "dsf/c/+/hb", 0);
    dsf_bus_subscribe(b->bus, "dsf/c/+/assign", 1);
    dsf_bus_subscribe(b->bus, "dsf/e/+/hb", 0);
    dsf_bus_subscribe(b->bus, "dsf/e/+/assign", 1);
    dsf_bus_subscribe(b->bus, "dsf/b/#", 1);
    return 0;
}

void bal_bus_stop(struct balancer *b)
{
    dsf_bus_free(b->bus);
    b->bus = NULL;
}

/* Dead members holding nothing are forgotten after this long (a churning pool stays small). */
#define FORGET_MS (10 * 60 * 1000LL)

void bal_membership_tick(struct balancer *b, int64_t now)
{
    int64_t limit = b->cfg.heartbeat_ms * b->cfg.missed_beats;
    for (struct bal_member **p = &b->members, *m; (m = *p);) {
        if (m->alive && now - m->last_beat_ms > limit)
            mark_dead(b, m, "missed heartbeats", now);
        int holds = 0;
        for (uint32_t k = 0; k < b->nb && !holds; k++)
            holds = m->assigned[k];
        int owns = 0;
        struct bal_group *g = bal_member_group(b, m);
        for (uint32_t k = 0; g && k < b->nb && !owns; k++)
            owns = g->owner[k] == m;
        if (!m->alive && !holds && !owns && m->dead_since_ms &&
            now - m->dead_since_ms > FORGET_MS) {
            *p = m->next;
            free(m->assigned);
            json_decref(m->assigned_lists);
            free(m);
            continue;
        }
        p = &m->next;
    }
}

int balancer_drain(struct balancer *b, const char *id, int on)
{
    struct bal_member *m = bal_member_find(b, id);
    if (!m)
        return -1;
    if (m->draining != !!on) {
        m->draining = !!on;
        changed(b, m);
        log_info("member %s %s", id, on ? "draining: its buckets move away" : "restored");
    }
    return 0;
}

int balancer_member_buckets(struct balancer *b, const char *id)
{
    struct bal_member *m = bal_member_find(b, id);
    int n = 0;
    for (uint32_t k = 0; m && k < b->nb; k++)
        n += m->assigned[k];
    return m ? n : -1;
}
