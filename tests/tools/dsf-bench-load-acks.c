/*
 * dsf-bench-load --acks: the fleet behaves as damselfly-agent with buffer.ack=collector. Each
 * simulated agent has the agent's own buffer (agent/buffer.c) and takes acks with the agent's
 * own parser and checks (agent/ack.c), so what a test proves with it holds for the agent:
 * a message stays until a collector acks it and goes out again, unchanged, after the ack
 * timeout. All agents share one MQTT connection; each subscribes its own ack topic on it.
 */
#include "agent/ack.h"
#include "agent/buffer.h"
#include "common/bus.h"
#include "common/loop.h"
#include "common/topic.h"
#include "tests/tools/dsf-bench-load.h"

#include <event2/event.h>

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Publishes in flight over all agents, below paho's 100 (max_inflight below). */
#define WINDOW 90
/* A token is the agent's index above its message's seq. */
#define SEQ_BITS 40
#define BUFFER_BYTES (64u << 20)

struct sim_agent {
    struct buffer buf;
    char topic[128], ack_topic[160];
};

struct fleet {
    struct load *load;
    const struct acks_options *opt;
    struct event_base *base;
    struct dsf_bus *bus;
    struct sim_agent *agents;
    struct event *tick, *resend, *deadline;
    char boot[17];
    long cycles; /* messages made per agent so far */
    long slot;   /* the next slot of the cycle (on_tick) */
    long cursor; /* the next agent to publish from: every agent gets its turn */
    int64_t started_ms;
    uint64_t published, acks, acks_stale, acks_refused, acks_foreign;
    int timed_out;
};

/* Sums one buffer counter (a uint64_t of struct buffer) over the fleet. */
static uint64_t fleet_sum(const struct fleet *f, size_t offset)
{
    uint64_t sum = 0;
    for (long a = 0; a < f->load->agents; a++) {
        uint64_t v;
        memcpy(&v, (const char *)&f->agents[a].buf + offset, sizeof(v));
        sum += v;
    }
    return sum;
}
#define FLEET_SUM(f, field) fleet_sum((f), offsetof(struct buffer, field))

static int publish_one(struct fleet *f, long agent, struct buffer_entry *e)
{
    struct dsf_bus_message m = {.topic = f->agents[agent].topic,
                                .payload = e->data,
                                .len = e->len,
                                .seq = e->seq,
                                .has_seq = 1,
                                .boot = e->boot,
                                .fmt = "lp"};
    uint64_t token = (uint64_t)agent << SEQ_BITS | e->seq;
    if (dsf_bus_publish(f->bus, &m, 1, 0, token))
        return -1;
    buffer_mark_inflight(&f->agents[agent].buf, e, dsf_mono_ms());
    f->published++;
    return 0;
}

/* Round robin over the agents, one queued message each, until the window is full or no
 * agent has one queued. */
static void pump(struct fleet *f)
{
    long n = f->load->agents, idle = 0;
    if (!dsf_bus_connected(f->bus))
        return;
    uint64_t inflight = FLEET_SUM(f, inflight);
    while (idle < n && inflight < WINDOW) {
        long a = f->cursor;
        f->cursor = (f->cursor + 1) % n;
        struct buffer_entry *e = buffer_next_queued(&f->agents[a].buf);
        if (!e) {
            idle++;
            continue;
        }
        if (publish_one(f, a, e))
            return; /* the client is full: continue on the next confirmation */
        idle = 0;
        inflight++;
    }
}

static int all_acked(const struct fleet *f)
{
    return f->cycles == f->load->messages && FLEET_SUM(f, messages) == 0;
}

static void finish_if_done(struct fleet *f)
{
    if (all_acked(f))
        event_base_loopbreak(f->base);
}

/* Agents are not in step: each cycle is sent in SLOTS bursts spread over the interval, agent
 * a in slot a % SLOTS (all stamped with the cycle's time, as agents sampling on the minute). */
#define SLOTS 10

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct fleet *f = arg;
    struct load *l = f->load;
    for (long a = f->slot; a < l->agents; a += SLOTS) {
        load_render(l, a, f->cycles, &l->body);
        buffer_append(&f->agents[a].buf, f->boot, (uint64_t)f->cycles + 1, l->body.data,
                      l->body.len, (uint32_t)l->lines);
    }
    if (++f->slot == SLOTS) {
        f->slot = 0;
        if (++f->cycles == l->messages)
            event_del(f->tick);
    }
    pump(f);
}

/* As the agent's push timer: what no collector acked within the timeout is queued again. */
static void on_resend(evutil_socket_t fd, short what, void *arg)
{
    struct fleet *f = arg;
    int64_t now = dsf_mono_ms();
    for (long a = 0; a < f->load->agents; a++)
        buffer_requeue_stale(&f->agents[a].buf, now, f->opt->ack_timeout_ms);
    pump(f);
    finish_if_done(f);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct fleet *f = arg;
    f->timed_out = 1;
    event_base_loopbreak(f->base);
}

/* The agent index of an ack topic of this fleet (dsf/a/bench/mci-NN/bench-NNNN/ack), or -1. */
static long agent_of(const struct fleet *f, const char *topic)
{
    struct dsf_identity id;
    char *end;
    if (dsf_topic_parse_agent(topic, "ack", &id) || strncmp(id.vm, "bench-", 6) != 0)
        return -1;
    long a = strtol(id.vm + 6, &end, 10);
    if (*end || a < 0 || a >= f->load->agents || strcmp(topic, f->agents[a].ack_topic) != 0)
        return -1;
    return a;
}

static void on_message(void *arg, const struct dsf_bus_message *m)
{
    struct fleet *f = arg;
    long a = agent_of(f, m->topic);
    if (a < 0) {
        f->acks_foreign++;
        return;
    }
    char why[256];
    size_t released;
    enum ack_verdict v =
        ack_apply(&f->agents[a].buf, m->payload, m->len, &released, why, sizeof(why));
    if (v == ACK_APPLIED)
        f->acks++;
    else if (v == ACK_STALE)
        f->acks_stale++; /* a resent message acked twice */
    else {
        f->acks_refused++;
        fprintf(stderr, "dsf-bench-load: refused an ack on %s (%s): %s\n", m->topic,
                ack_verdict_name(v), why);
    }
    pump(f);
    finish_if_done(f);
}

static void on_connect(void *arg)
{
    struct fleet *f = arg;
    /* Whatever was in flight on the old connection may be lost: send it again, in order. */
    for (long a = 0; a < f->load->agents; a++)
        buffer_requeue_inflight(&f->agents[a].buf);
    pump(f);
}

static void on_disconnect(void *arg, const char *reason)
{
    struct fleet *f = arg;
    for (long a = 0; a < f->load->agents; a++)
        buffer_requeue_inflight(&f->agents[a].buf);
}

static void on_delivered(void *arg, uint64_t token, int ok)
{
    struct fleet *f = arg;
    long a = (long)(token >> SEQ_BITS);
    if (a < f->load->agents)
        buffer_delivered(&f->agents[a].buf, token & ((1ull << SEQ_BITS) - 1), ok);
    pump(f);
}

/* Up to 10 agents still holding messages, with their lowest seq, for the log. */
static void report_unacked(const struct fleet *f)
{
    int shown = 0;
    for (long a = 0; a < f->load->agents && shown < 10; a++) {
        const struct buffer *b = &f->agents[a].buf;
        if (!b->head)
            continue;
        fprintf(stderr, "dsf-bench-load: %s holds %" PRIu64 " unacked, first seq %" PRIu64 "\n",
                f->agents[a].topic, b->messages, b->head->seq);
        shown++;
    }
}

static void print_result(const struct fleet *f)
{
    const struct load *l = f->load;
    printf("{\"mode\":\"acks\",\"ns\":\"bench\",\"agents\":%ld,\"lines\":%ld,\"messages\":%ld,"
           "\"interval_ms\":%" PRId64 ",\"start_ns\":%" PRId64 ",\"boot\":\"%s\","
           "\"sent\":%ld,\"published\":%" PRIu64 ",\"resent\":%" PRIu64 ",\"acked\":%" PRIu64
           ",\"unacked\":%" PRIu64 ",\"dropped\":%" PRIu64 ",\"acks\":%" PRIu64
           ",\"acks_stale\":%" PRIu64 ",\"acks_refused\":%" PRIu64 ",\"timed_out\":%s,"
           "\"elapsed_ms\":%" PRId64 "}\n",
           l->agents, l->lines, f->cycles, l->interval_ns / 1000000, l->start_ns, f->boot,
           f->cycles * l->agents, f->published, FLEET_SUM(f, resent), FLEET_SUM(f, released),
           FLEET_SUM(f, messages), FLEET_SUM(f, dropped_messages), f->acks, f->acks_stale,
           f->acks_refused, f->timed_out ? "true" : "false", dsf_mono_ms() - f->started_ms);
    fflush(stdout);
}

static int fleet_init(struct fleet *f)
{
    char err[256], client_id[64];
    f->agents = calloc((size_t)f->load->agents, sizeof(*f->agents));
    if (!f->agents) {
        fprintf(stderr, "dsf-bench-load: out of memory for %ld agents\n", f->load->agents);
        return -1;
    }
    /* A fresh boot per run, as an agent's: acks of an earlier run cannot release anything. */
    snprintf(f->boot, sizeof(f->boot), "%016" PRIx64, (uint64_t)dsf_now_ns());
    snprintf(client_id, sizeof(client_id), "dsf-bench-load-%ld", (long)getpid());
    struct dsf_bus_options o = {.kind = DSF_BUS_MQTT,
                                .brokers = f->opt->url,
                                .client_id = client_id,
                                .clean_start = 1,
                                .keepalive_s = 30,
                                .max_inflight = 100};
    struct dsf_bus_callbacks cb = {on_connect, on_disconnect, on_delivered, on_message, f};
    if (!(f->bus = dsf_bus_new(f->base, &o, &cb, err, sizeof(err)))) {
        fprintf(stderr, "dsf-bench-load: %s\n", err);
        return -1;
    }
    for (long a = 0; a < f->load->agents; a++) {
        struct sim_agent *s = &f->agents[a];
        buffer_init(&s->buf, BUFFER_BYTES, 0);
        load_agent_topic(a, NULL, s->topic, sizeof(s->topic));
        load_agent_topic(a, "ack", s->ack_topic, sizeof(s->ack_topic));
        if (dsf_bus_subscribe(f->bus, s->ack_topic, 1)) {
            fprintf(stderr, "dsf-bench-load: could not subscribe %s\n", s->ack_topic);
            return -1;
        }
    }
    return 0;
}

static void fleet_timers(struct fleet *f)
{
    int64_t slot_us = f->load->interval_ns / 1000 / SLOTS;
    struct timeval interval = {slot_us / 1000000, slot_us % 1000000};
    struct timeval second = {1, 0}, deadline = {f->opt->timeout_s, 0};
    f->tick = event_new(f->base, -1, EV_PERSIST, on_tick, f);
    f->resend = event_new(f->base, -1, EV_PERSIST, on_resend, f);
    f->deadline = evtimer_new(f->base, on_deadline, f);
    event_add(f->tick, &interval);
    event_add(f->resend, &second);
    event_add(f->deadline, &deadline);
    event_active(f->tick, EV_TIMEOUT, 0); /* the first message at once, as an agent's */
}

static void fleet_free(struct fleet *f)
{
    if (f->bus)
        dsf_bus_free(f->bus);
    if (f->tick)
        event_free(f->tick);
    if (f->resend)
        event_free(f->resend);
    if (f->deadline)
        event_free(f->deadline);
    for (long a = 0; f->agents && a < f->load->agents; a++)
        buffer_free(&f->agents[a].buf);
    free(f->agents);
    event_base_free(f->base);
}

int load_run_acks(struct load *l, const struct acks_options *o)
{
    struct fleet f = {.load = l, .opt = o, .started_ms = dsf_mono_ms()};
    if (!(f.base = dsf_loop_new())) {
        fprintf(stderr, "dsf-bench-load: no event loop\n");
        return 1;
    }
    int rc = 1;
    if (fleet_init(&f) == 0) {
        fleet_timers(&f);
        event_base_dispatch(f.base);
        print_result(&f);
        if (f.timed_out)
            report_unacked(&f);
        rc = all_acked(&f) && FLEET_SUM(&f, dropped_messages) == 0 ? 0 : 1;
    }
    fleet_free(&f);
    return rc;
}
