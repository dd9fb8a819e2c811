/*
 * damselfly-fed's side of a VM removal: the VM's agent left its retained status on
 * dsf/a/{ns}/{mci}/{vm}/status, and an agent_offline alarm would fire on it for ever. With a
 * broker configured (mqtt.url) an empty retained message clears it; the connection is made at
 * the first removal and kept for the others of the same command (mci delete).
 */
#define DSF_MODULE "federation"
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/bus.h"
#include "common/bus_config.h"
#include "common/log.h"
#include "common/loop.h"
#include "common/topic.h"
#include "federation/fed_cli.h"

/* Connecting and the broker's PUBACK together: a removal must not hang on a dead broker. */
#define CLEAR_TIMEOUT_MS 5000

struct fed_cli_bus {
    const struct dsf_mqtt_config *mqtt;
    struct event_base *base;
    struct event *timer;
    struct dsf_bus *bus;
    char client_id[64];
    char why[160]; /* the last disconnect's reason, for the warning */
    uint64_t token;
    int connected, delivered, ok;
};

struct fed_cli_bus *fed_cli_bus_new(const struct dsf_mqtt_config *mqtt)
{
    struct fed_cli_bus *b = calloc(1, sizeof(*b));
    if (b)
        b->mqtt = mqtt;
    return b;
}

void fed_cli_bus_free(struct fed_cli_bus *b)
{
    if (!b)
        return;
    dsf_bus_free(b->bus);
    if (b->timer)
        event_free(b->timer);
    if (b->base)
        event_base_free(b->base);
    free(b);
}

static void on_connect(void *arg)
{
    struct fed_cli_bus *b = arg;
    b->connected = 1;
    event_base_loopbreak(b->base);
}

static void on_disconnect(void *arg, const char *reason)
{
    struct fed_cli_bus *b = arg;
    b->connected = 0;
    snprintf(b->why, sizeof(b->why), "%s", reason ? reason : "disconnected");
}

static void on_delivered(void *arg, uint64_t token, int ok)
{
    struct fed_cli_bus *b = arg;
    if (token != b->token)
        return;
    b->delivered = 1;
    b->ok = ok;
    event_base_loopbreak(b->base);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    event_base_loopbreak(arg);
}

/* Runs the loop until *flag is set or the deadline (monotonic ms) passes: 0 or -1. */
static int run_until(struct fed_cli_bus *b, const int *flag, int64_t deadline)
{
    while (!*flag) {
        int64_t left = deadline - dsf_mono_ms();
        if (left <= 0)
            return -1;
        struct timeval tv = {(time_t)(left / 1000), (suseconds_t)(left % 1000 * 1000)};
        event_add(b->timer, &tv);
        event_base_dispatch(b->base);
    }
    event_del(b->timer);
    return 0;
}

static int connect_bus(struct fed_cli_bus *b, char *err, size_t errlen)
{
    if (b->bus)
        return 0;
    if (!b->base && !(b->base = dsf_loop_new())) {
        snprintf(err, errlen, "cannot create an event loop");
        return -1;
    }
    if (!b->timer && !(b->timer = evtimer_new(b->base, on_timer, b->base))) {
        snprintf(err, errlen, "cannot create a timer");
        return -1;
    }
    struct dsf_bus_options o = {.max_inflight = 10};
    dsf_bus_connection(&o, b->mqtt, NULL, 0);
    snprintf(b->client_id, sizeof(b->client_id), "dsf-fed-%ld", (long)getpid());
    o.client_id = *b->mqtt->client_id ? b->mqtt->client_id : b->client_id;
    o.clean_start = 1;
    struct dsf_bus_callbacks cb = {.on_connect = on_connect,
                                   .on_disconnect = on_disconnect,
                                   .on_delivered = on_delivered,
                                   .arg = b};
    b->bus = dsf_bus_new(b->base, &o, &cb, err, errlen);
    return b->bus ? 0 : -1;
}

/* Publishes the empty retained message and waits for the broker's PUBACK: 0, or -1 with why. */
static int clear_status(struct fed_cli_bus *b, const char *topic, char *why, size_t whylen)
{
    int64_t deadline = dsf_mono_ms() + CLEAR_TIMEOUT_MS;
    if (connect_bus(b, why, whylen) < 0)
        return -1;
    if (run_until(b, &b->connected, deadline) < 0) {
        snprintf(why, whylen, "not connected to %s within %d ms%s%s", b->mqtt->url,
                 CLEAR_TIMEOUT_MS, b->why[0] ? ": " : "", b->why);
        return -1;
    }
    struct dsf_bus_message m = {.topic = topic, .payload = "", .len = 0};
    b->delivered = b->ok = 0;
    b->token++;
    if (dsf_bus_publish(b->bus, &m, 1, 1, b->token) < 0) {
        snprintf(why, whylen, "the publish could not be queued");
        return -1;
    }
    if (run_until(b, &b->delivered, deadline) < 0) {
        snprintf(why, whylen, "no confirmation from %s within %d ms", b->mqtt->url,
                 CLEAR_TIMEOUT_MS);
        return -1;
    }
    if (!b->ok) {
        snprintf(why, whylen, "the broker refused it (is this user allowed to write %s?)", topic);
        return -1;
    }
    return 0;
}

void fed_cli_bus_vm_removed(void *arg, const struct fed_vm *vm)
{
    struct fed_cli_bus *b = arg;
    char topic[256];
    if (dsf_topic_agent(topic, sizeof(topic), vm->ns, vm->mci, vm->id, "status") < 0) {
        log_warn("%s/%s/%s removed: its status topic does not fit a topic", vm->ns, vm->mci,
                 vm->id);
        return;
    }
    if (!b->mqtt->url || !b->mqtt->url[0]) {
        log_warn("%s/%s/%s removed: its retained status on %s stays (no mqtt.url), and an "
                 "agent_offline alarm keeps firing on it: clear it with mosquitto_pub -r -n -t %s",
                 vm->ns, vm->mci, vm->id, topic, topic);
        return;
    }
    char why[300] = "";
    if (clear_status(b, topic, why, sizeof(why)) < 0) {
        log_warn("%s/%s/%s removed, but its retained status on %s was not cleared: %s; clear it "
                 "with mosquitto_pub -r -n -t %s",
                 vm->ns, vm->mci, vm->id, topic, why, topic);
        return;
    }
    log_info("%s/%s/%s removed: cleared its retained status on %s", vm->ns, vm->mci, vm->id, topic);
}
