/*
 * dsf-bench-load: agent-shaped load for benchmarks and tests. Builds the lines a fleet of
 * agents would send (cpu lines of about 160 bytes: 6 tags, 4 float fields, the sample's
 * timestamp) and either publishes them as agent messages over MQTT (QoS 1, seq/boot/fmt
 * properties, on each agent's bucket topic) or writes them to a file, so one run can compare
 * paths on the very same data.
 *
 *   dsf-bench-load [--mqtt URL] [--out FILE] [--agents N] [--messages M] [--lines L]
 *                  [--start NS] [--timeout SECONDS]
 *   dsf-bench-load --acks --mqtt URL [--agents N] [--messages M | --duration D] [--lines L]
 *                  [--interval I] [--ack-timeout T] [--start NS] [--timeout SECONDS]
 *
 * N agents (default 100) each send M messages (default 50), one per 2 s cycle, of L lines
 * (default 200: L series per agent). Exits 0 once every message is confirmed and written.
 *
 * --acks runs the agents as damselfly-agent does with buffer.ack=collector (the agent's own
 * buffer and ack code): one message per agent every --interval (default 1s, also the spacing
 * of the timestamps, which start at --start, default now), each line carrying seq=<seq>i; a
 * message is kept until a collector's end-to-end ack names it and sent again (same seq, boot
 * and payload) after --ack-timeout (default 10s). --duration D sends D / interval messages.
 * At the end it waits until everything is acked, or --timeout (the whole run, default 300 s),
 * prints one JSON line (the schedule, and sent, resent, acked, unacked, ...) and exits 0 only
 * when every message was acked.
 */
#include "common/bucket.h"
#include "common/buf.h"
#include "common/bus.h"
#include "common/config.h"
#include "common/log.h"
#include "common/loop.h"
#include "common/topic.h"
#include "tests/tools/dsf-bench-load.h"

#include <event2/event.h>

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void load_agent_vm(long agent, char *vm, size_t cap)
{
    snprintf(vm, cap, "bench-%04ld", agent);
}

void load_agent_topic(long agent, const char *leaf, char *topic, size_t cap)
{
    char vm[32], key[96];
    load_agent_vm(agent, vm, sizeof(vm));
    int klen = snprintf(key, sizeof(key), "bench/mci-%02ld/%s", agent % 10, vm);
    if (leaf)
        dsf_topic_agent_key(topic, cap, key, leaf);
    else
        dsf_topic_metrics_key(topic, cap, dsf_bucket(key, (size_t)klen, 64), key);
}

void load_render(const struct load *l, long agent, long cycle, struct dsf_buf *out)
{
    char vm[32], seq[32] = "";
    load_agent_vm(agent, vm, sizeof(vm));
    int64_t ts = l->start_ns + (int64_t)cycle * l->interval_ns;
    if (l->seq_field)
        snprintf(seq, sizeof(seq), ",seq=%ldi", cycle + 1);
    buf_reset(out);
    for (long s = 0; s < l->lines; s++) {
        uint32_t r = dsf_fnv1a32(&(long[3]){agent, cycle, s}, 3 * sizeof(long));
        buf_printf(out,
                   "cpu,cpu=cpu%ld,host=%s,ns=bench,mci=mci-%02ld,vm=%s,region=kr-1 "
                   "usage_user=%.2f,usage_system=%.2f,usage_idle=%.2f,usage_iowait=%.2f%s %" PRId64
                   "\n",
                   s, vm, agent % 10, vm, (r % 10000) / 100.0, (r % 997) / 10.0,
                   100 - (r % 10000) / 100.0, (r % 31) / 10.0, seq, ts);
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
        char topic[128];
        load_agent_topic(agent, NULL, topic, sizeof(topic));
        load_render(s->load, agent, cycle, &s->load->body);
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
            load_render(l, agent, cycle, &l->body);
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

static int64_t duration(const char *opt, const char *s)
{
    int64_t ms;
    if (dsf_parse_duration_ms(s, &ms) || ms <= 0) {
        fprintf(stderr, "dsf-bench-load: %s wants a duration above 0 (500ms, 10s), not '%s'\n", opt,
                s);
        exit(2);
    }
    return ms;
}

static const char usage[] =
    "usage: dsf-bench-load [--mqtt URL] [--out FILE] [--agents N] [--messages M] [--lines L]\n"
    "                      [--start NS] [--timeout SECONDS]\n"
    "       dsf-bench-load --acks --mqtt URL [--agents N] [--messages M | --duration D]\n"
    "                      [--lines L] [--interval I] [--ack-timeout T] [--start NS]\n"
    "                      [--timeout SECONDS]\n";

struct args {
    struct load load;
    struct acks_options acks;
    const char *out;
    int acks_mode, start_given, ack_timeout_given;
    int64_t duration_ms;
};

static void parse_args(int argc, char **argv, struct args *a)
{
    static const struct option longopts[] = {{"mqtt", required_argument, NULL, 'm'},
                                             {"out", required_argument, NULL, 'o'},
                                             {"agents", required_argument, NULL, 'a'},
                                             {"messages", required_argument, NULL, 'n'},
                                             {"lines", required_argument, NULL, 'l'},
                                             {"start", required_argument, NULL, 's'},
                                             {"timeout", required_argument, NULL, 'T'},
                                             {"acks", no_argument, NULL, 'A'},
                                             {"interval", required_argument, NULL, 'i'},
                                             {"duration", required_argument, NULL, 'd'},
                                             {"ack-timeout", required_argument, NULL, 'k'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'm':
            a->acks.url = optarg;
            break;
        case 'o':
            a->out = optarg;
            break;
        case 'a':
            a->load.agents = number("--agents", optarg);
            break;
        case 'n':
            a->load.messages = number("--messages", optarg);
            break;
        case 'l':
            a->load.lines = number("--lines", optarg);
            break;
        case 's':
            a->load.start_ns = strtoll(optarg, NULL, 10);
            a->start_given = 1;
            break;
        case 'T':
            a->acks.timeout_s = (int)number("--timeout", optarg);
            break;
        case 'A':
            a->acks_mode = 1;
            break;
        case 'i':
            a->load.interval_ns = duration("--interval", optarg) * 1000000LL;
            break;
        case 'd':
            a->duration_ms = duration("--duration", optarg);
            break;
        case 'k':
            a->acks.ack_timeout_ms = duration("--ack-timeout", optarg);
            a->ack_timeout_given = 1;
            break;
        case 'h':
            fputs(usage, stdout);
            exit(0);
        default:
            fputs(usage, stderr);
            exit(2);
        }
    }
}

/* The agent-faithful mode's defaults differ: 1 s cycles starting now, seq in every line. */
static int run_acks(struct args *a)
{
    struct load *l = &a->load;
    if (!a->acks.url || a->out) {
        fprintf(stderr, "dsf-bench-load: --acks needs --mqtt URL and no --out\n");
        return 2;
    }
    if (!l->interval_ns)
        l->interval_ns = 1000000000LL;
    if (a->duration_ms)
        l->messages = (long)(a->duration_ms * 1000000LL / l->interval_ns);
    if (l->messages < 1) {
        fprintf(stderr, "dsf-bench-load: --duration is shorter than one --interval\n");
        return 2;
    }
    if (!a->start_given)
        l->start_ns = dsf_now_ns() / 1000000LL * 1000000LL;
    l->seq_field = 1;
    return load_run_acks(l, &a->acks);
}

int main(int argc, char **argv)
{
    struct args a = {.load = {.agents = 100, .messages = 50, .lines = 200},
                     .acks = {.ack_timeout_ms = 10000, .timeout_s = 300}};
    struct load *l = &a.load;
    dsf_log_set_default_level(DSF_LOG_WARN);
    l->start_ns = dsf_now_ns() / 1000000000LL * 1000000000LL - 3600LL * 1000000000LL;
    parse_args(argc, argv, &a);
    if (a.acks_mode) {
        int rc = run_acks(&a);
        buf_free(&l->body);
        return rc;
    }
    if (!a.acks.url && !a.out) {
        fprintf(stderr, "dsf-bench-load: give --mqtt URL, --out FILE or both\n");
        return 2;
    }
    if (a.duration_ms || l->interval_ns || a.ack_timeout_given) {
        fprintf(stderr, "dsf-bench-load: --interval, --duration and --ack-timeout need --acks\n");
        return 2;
    }
    l->interval_ns = 2000000000LL;
    int rc = 0;
    if (a.out)
        rc |= write_file(l, a.out);
    if (a.acks.url)
        rc |= publish(l, a.acks.url, a.acks.timeout_s);
    buf_free(&l->body);
    return rc;
}
