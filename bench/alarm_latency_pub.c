/*
 * Publisher for bench/alarm_latency.sh: N crossings, each a fresh VM (lat0, lat1, ...) whose
 * one sample is over the threshold, stamped with the wall clock just before it is published,
 * GAP ms apart. Prints "vm timestamp_ns" per sample, so the receiver's receipt time can be
 * matched against the sample's own timestamp.
 *
 *   dsf-alarm-latency-pub URL N GAP_MS
 */
#include "common/bucket.h"
#include "common/bus.h"
#include "common/loop.h"
#include "common/topic.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pub {
    struct event_base *base;
    struct dsf_bus *bus;
    struct event *timer;
    int n, sent, confirmed, gap_ms, started;
};

static void send_one(evutil_socket_t fd, short what, void *arg)
{
    struct pub *p = arg;
    struct timeval tv = {p->gap_ms / 1000, p->gap_ms % 1000 * 1000};
    event_add(p->timer, &tv); /* also keeps the loop alive until the connection is up */
    if (p->sent == p->n || !p->started)
        return;
    char vm[32], key[64], topic[128], payload[128];
    snprintf(vm, sizeof(vm), "lat%d", p->sent);
    int kn = snprintf(key, sizeof(key), "ns1/mci1/%s", vm);
    dsf_topic_metrics_key(topic, sizeof(topic), dsf_bucket(key, (size_t)kn, 64), key);
    int64_t ts = dsf_now_ns();
    int len = snprintf(payload, sizeof(payload), "lat,cpu=cpu-total v=95 %lld", (long long)ts);
    struct dsf_bus_message m = {
        .topic = topic, .payload = payload, .len = (size_t)len, .fmt = "lp"};
    if (dsf_bus_publish(p->bus, &m, 1, 0, (uint64_t)p->sent + 1) == 0) {
        printf("%s %lld\n", vm, (long long)ts);
        p->sent++;
    }
}

static void on_connect(void *arg)
{
    struct pub *p = arg;
    p->started = 1;
}

static void on_delivered(void *arg, uint64_t token, int ok)
{
    struct pub *p = arg;
    if (++p->confirmed == p->n)
        event_base_loopbreak(p->base);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s URL N GAP_MS\n", argv[0]);
        return 2;
    }
    struct pub p = {.n = atoi(argv[2]), .gap_ms = atoi(argv[3])};
    char err[256];
    p.base = dsf_loop_new();
    struct dsf_bus_options opt = {.kind = DSF_BUS_MQTT,
                                  .brokers = argv[1],
                                  .client_id = "dsf-alarm-latency-pub",
                                  .keepalive_s = 30,
                                  .clean_start = 1,
                                  .max_inflight = 1000};
    struct dsf_bus_callbacks cb = {
        .on_connect = on_connect, .on_delivered = on_delivered, .arg = &p};
    p.timer = evtimer_new(p.base, send_one, &p);
    if (!(p.bus = dsf_bus_new(p.base, &opt, &cb, err, sizeof(err)))) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    send_one(-1, 0, &p);
    event_base_dispatch(p.base);
    dsf_bus_free(p.bus);
    event_free(p.timer);
    event_base_free(p.base);
    return 0;
}
