/*
 * dsf-bench-load: agent-shaped load for benchmarks. Builds the lines a fleet of agents would
 * send (cpu lines of about 160 bytes: 6 tags, 4 float fields, the sample's timestamp) and
 * either publishes them as agent messages over MQTT (QoS 1, seq/boot/fmt properties, on each
 * agent's bucket topic) or writes them to a file, so one run can compare paths on the very
 * same data.
 *
 *   dsf-bench-load [--mqtt URL] [--out FILE] [--agents N] [--messages M] [--lines L]
 *                  [--start NS] [--timeout SECONDS]
 *
 * N agents (default 100) each send M messages (default 50), one per 2 s cycle, of L lines
 * (default 200: L series per agent). Exits 0 once every message is confirmed and written.
 */
#include "common/bucket.h"
#include "common/buf.h"
#include "common/bus.h"
#include "common/log.h"
#include "common/loop.h"

#include <event2/event.h>

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct load {
    long agents, messages, lines;
    int64_t start_ns;
    struct dsf_buf body;
};

static void agent_identity(long agent, char *vm, size_t cap)
{
    snprintf(vm, cap, "bench-%04ld", agent);
}

/* One agent's cycle: L lines, one per series, all at the cycle's timestamp. */
static void render_message(const struct load *l, long agent, long cycle, struct dsf_buf *out)
{
    char vm[32];
    agent_identity(agent, vm, sizeof(vm));
    int64_t ts = l->start_ns + (int64_t)cycle * 2000000000LL;
    buf_reset(out);
    for (long s = 0; s < l->lines; s++) {
        uint32_t r = dsf_fnv1a32(&(long[3]){agent, cycle, s}, 3 * sizeof(long));
        buf_printf(out,
                   "cpu,cpu=cpu%ld,host=%s,ns=bench,mci=mci-%02ld,vm=%s,region=kr-1 "
                   "usage_user=%.2f,usage_system=%.2f,usage_idle=%.2f,usage_iowait=%.2f %" PRId64
                   "\n",
                   s, vm, agent % 10, vm, (r % 10000) / 100.0, (r % 997) / 10.0,
                   100 - (r % 10000) / 100.0, (r % 31) / 10.0, ts);
    }
}

struct sender {
    struct load *load;
    struct event_base *base;
    struct dsf_bus *bus;
    long next, total, confirmed, failed;
    int exit_code;
};

static void publish_some(struct sender *s)
{
    /* Bounded below paho's 100 queued commands; it holds each until the broker confirms. */
    while (s->next < s->total && s->next - s->confirmed - s->failed < 90) {
        long agent = s->next % s->load->agents, cycle = s->next / s->load->agents;
        char vm[32], topic[128];
        agent_identity(agent, vm, sizeof(vm));
        char key[96];
        int klen = snprintf(key, sizeof(key), "bench/mci-%02ld/%s", agent % 10, vm);
        snprintf(topic, sizeof(topic), "dsf/m/%u/bench/mci-%02ld/%s",
                 dsf_bucket(key, (size_t)klen, 64), agent % 10, vm);
        render_message(s->load, agent, cycle, &s->load->body);
        struct dsf_bus_message m = {.topic = topic,
                                    .payload = s->load->body.data,
                                    .len = s->load->body.len,
                                    .seq = (uint64_t)cycle + 1,
                                    .has_seq = 1,
                                    .boot = "be0c000000000001",
                                    .fmt = "lp"};
        if (dsf_bus_publish(s->bus, &m, 1, 0, (uint64_t)s->next + 1) != 0)
            return; /* the client is full: continue on the next confirmation */
        s->next++;
    }
}

static void on_connect(void *arg)
{
    publish_some(arg);
}

static void on_delivered(void *arg, uint64_t token, int ok)
{
    struct sender *s = arg;
    if (ok)
        s->confirmed++;
    else
        s->failed++;
    if (s->confirmed + s->failed == s->total) {
        s->exit_code = s->failed ? 1 : 0;
        event_base_loopbreak(s->base);
        return;
    }
    publish_some(s);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct sender *s = arg;
    fprintf(stderr, "dsf-bench-load: timed out with %ld of %ld messages confirmed\n", s->confirmed,
            s->total);
    event_base_loopbreak(s->base);
}

static int publish(struct load *l, const char *url, int timeout_s)
{
    struct sender s = {.load = l, .total = l->agents * l->messages, .exit_code = 1};
    s.base = dsf_loop_new();
    struct dsf_bus_options o = {.kind = DSF_BUS_MQTT,
                                .brokers = url,
                                .client_id = "dsf-bench-load",
                                .clean_start = 1,
                                .keepalive_s = 30,
                                .max_inflight = 100};
    struct dsf_bus_callbacks cb = {
        .on_connect = on_connect, .on_delivered = on_delivered, .arg = &s};
    char err[256];
    if (!(s.bus = dsf_bus_new(s.base, &o, &cb, err, sizeof(err)))) {
        fprintf(stderr, "dsf-bench-load: %s\n", err);
        return 1;
    }
    struct event *t = evtimer_new(s.base, on_timeout, &s);
    struct timeval tv = {timeout_s, 0};
    evtimer_add(t, &tv);
    event_base_dispatch(s.base);
    event_free(t);
    dsf_bus_free(s.bus);
    event_base_free(s.base);
    return s.exit_code;
}

static int write_file(struct load *l, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        return 1;
    }
    for (long cycle = 0; cycle < l->messages; cycle++)
        for (long agent = 0; agent < l->agents; agent++) {
            render_message(l, agent, cycle, &l->body);
            fwrite(l->body.data, 1, l->body.len, f);
        }
    return fclose(f) == 0 ? 0 : 1;
}

static long number(const char *opt, const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*end || v <= 0) {
        fprintf(stderr, "dsf-bench-load: %s wants a positive number, not '%s'\n", opt, s);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"mqtt", required_argument, NULL, 'm'},
                                             {"out", required_argument, NULL, 'o'},
                                             {"agents", required_argument, NULL, 'a'},
                                             {"messages", required_argument, NULL, 'n'},
                                             {"lines", required_argument, NULL, 'l'},
                                             {"start", required_argument, NULL, 's'},
                                             {"timeout", required_argument, NULL, 'T'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    struct load l = {.agents = 100, .messages = 50, .lines = 200};
    const char *url = NULL, *out = NULL;
    int timeout_s = 300;
    int opt;
    dsf_log_set_default_level(DSF_LOG_WARN);
    l.start_ns = dsf_now_ns() / 1000000000LL * 1000000000LL - 3600LL * 1000000000LL;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'm':
            url = optarg;
            break;
        case 'o':
            out = optarg;
            break;
        case 'a':
            l.agents = number("--agents", optarg);
            break;
        case 'n':
            l.messages = number("--messages", optarg);
            break;
        case 'l':
            l.lines = number("--lines", optarg);
            break;
        case 's':
            l.start_ns = strtoll(optarg, NULL, 10);
            break;
        case 'T':
            timeout_s = (int)number("--timeout", optarg);
            break;
        case 'h':
            printf("usage: dsf-bench-load [--mqtt URL] [--out FILE] [--agents N] [--messages M] "
                   "[--lines L] [--start NS] [--timeout SECONDS]\n");
            return 0;
        default:
            return 2;
        }
    }
    if (!url && !out) {
        fprintf(stderr, "dsf-bench-load: give --mqtt URL, --out FILE or both\n");
        return 2;
    }
    int rc = 0;
    if (out)
        rc |= write_file(&l, out);
    if (url)
        rc |= publish(&l, url, timeout_s);
    buf_free(&l.body);
    return rc;
}
