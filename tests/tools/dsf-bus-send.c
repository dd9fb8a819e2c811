/*
 * dsf-bus-send: publishes messages through Damselfly's bus API and waits for the broker to
 * confirm them, for integration tests.
 *
 *   dsf-bus-send (--kafka BOOTSTRAP | --mqtt URL) --topic TOPIC [--key KEY] [--seq N]
 *                [--boot ID] [--fmt lp|json] [--timeout SECONDS] PAYLOAD...
 *
 * Each PAYLOAD is one message; with --seq N they carry seq N, N+1, ... The topic is the MQTT
 * form (dsf/m/{bucket}/{ns}/{mci}/{vm}); the Kafka bus maps it to its topic. Exits 0 once
 * every message is confirmed, 1 when one is refused or the timeout (default 10 s) passes.
 */
#include "common/bus.h"
#include "common/loop.h"

#include <event2/event.h>

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ctx {
    struct event_base *base;
    struct dsf_bus *bus;
    char **payloads;
    int count;
    const char *topic, *key, *boot, *fmt;
    uint64_t seq;
    int has_seq;
    int connected, published, ok, failed;
    int exit_code;
};

static void publish_all(struct ctx *c)
{
    for (; c->published < c->count; c->published++) {
        const char *p = c->payloads[c->published];
        struct dsf_bus_message m = {.topic = c->topic,
                                    .payload = p,
                                    .len = strlen(p),
                                    .key = c->key,
                                    .key_len = c->key ? strlen(c->key) : 0,
                                    .seq = c->seq + (uint64_t)c->published,
                                    .has_seq = c->has_seq,
                                    .boot = c->boot,
                                    .fmt = c->fmt};
        if (dsf_bus_publish(c->bus, &m, 1, 0, (uint64_t)c->published + 1) != 0) {
            fprintf(stderr, "dsf-bus-send: publishing message %d to %s failed\n", c->published + 1,
                    c->topic);
            c->exit_code = 1;
            event_base_loopbreak(c->base);
            return;
        }
    }
}

static void on_connect(void *arg)
{
    struct ctx *c = arg;
    c->connected = 1;
    publish_all(c);
}

static void on_delivered(void *arg, uint64_t token, int ok)
{
    struct ctx *c = arg;
    if (ok) {
        c->ok++;
    } else {
        c->failed++;
        fprintf(stderr, "dsf-bus-send: message %" PRIu64 " to %s was not delivered\n", token,
                c->topic);
    }
    if (c->ok + c->failed == c->count) {
        c->exit_code = c->failed ? 1 : 0;
        event_base_loopbreak(c->base);
    }
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct ctx *c = arg;
    fprintf(stderr,
            "dsf-bus-send: timed out: %s, %d of %d messages confirmed (is the broker up?)\n",
            c->connected ? "connected" : "never connected", c->ok, c->count);
    c->exit_code = 1;
    event_base_loopbreak(c->base);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: dsf-bus-send (--kafka BOOTSTRAP | --mqtt URL) --topic TOPIC [--key KEY] "
               "[--seq N] [--boot ID] [--fmt lp|json] [--timeout SECONDS] PAYLOAD...\n");
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"kafka", required_argument, NULL, 'k'}, {"mqtt", required_argument, NULL, 'm'},
        {"topic", required_argument, NULL, 't'}, {"key", required_argument, NULL, 'K'},
        {"seq", required_argument, NULL, 's'},   {"boot", required_argument, NULL, 'b'},
        {"fmt", required_argument, NULL, 'f'},   {"timeout", required_argument, NULL, 'T'},
        {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0}};
    struct ctx c = {.exit_code = 1};
    struct dsf_bus_options o = {.kind = DSF_BUS_KAFKA, .client_id = "dsf-bus-send"};
    int timeout_s = 10;
    int opt;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        char *end;
        switch (opt) {
        case 'k':
            o.kind = DSF_BUS_KAFKA;
            o.brokers = optarg;
            break;
        case 'm':
            o.kind = DSF_BUS_MQTT;
            o.brokers = optarg;
            o.clean_start = 1;
            o.keepalive_s = 30;
            break;
        case 't':
            c.topic = optarg;
            break;
        case 'K':
            c.key = optarg;
            break;
        case 's':
            c.seq = strtoull(optarg, &end, 10);
            if (*end || *optarg == '-') {
                fprintf(stderr, "dsf-bus-send: --seq wants a number, not '%s'\n", optarg);
                return 2;
            }
            c.has_seq = 1;
            break;
        case 'b':
            c.boot = optarg;
            break;
        case 'f':
            c.fmt = optarg;
            break;
        case 'T':
            timeout_s = (int)strtol(optarg, &end, 10);
            if (*end || timeout_s < 1) {
                fprintf(stderr, "dsf-bus-send: --timeout wants seconds, not '%s'\n", optarg);
                return 2;
            }
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!o.brokers || !c.topic || optind == argc) {
        usage(stderr);
        return 2;
    }
    c.payloads = argv + optind;
    c.count = argc - optind;

    c.base = dsf_loop_new();
    if (!c.base) {
        fprintf(stderr, "dsf-bus-send: cannot create the event loop\n");
        return 1;
    }
    struct dsf_bus_callbacks cb = {
        .on_connect = on_connect, .on_delivered = on_delivered, .arg = &c};
    char err[512] = "";
    c.bus = dsf_bus_new(c.base, &o, &cb, err, sizeof(err));
    if (!c.bus) {
        fprintf(stderr, "dsf-bus-send: %s\n", err);
        event_base_free(c.base);
        return 1;
    }
    struct event *timer = evtimer_new(c.base, on_timeout, &c);
    struct timeval tv = {timeout_s, 0};
    evtimer_add(timer, &tv);
    event_base_dispatch(c.base);
    event_free(timer);
    dsf_bus_free(c.bus);
    event_base_free(c.base);
    return c.exit_code;
}
