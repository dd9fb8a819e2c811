#define DSF_MODULE "agent"
#include "agent/agent.h"
#include "agent/buffer.h"
#include "agent/privs.h"
#include "agent/pull.h"
#include "agent/push.h"
#include "common/bucket.h"
#include "common/daemon.h"
#include "common/log.h"
#include "common/loop.h"
#include "common/topic.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

static const char usage[] =
    "DESCRIPTION\n"
    "  Collects host, container, process and network-latency metrics every interval\n"
    "  (Telegraf's measurement names) and pushes them to MQTT (dsf/m/{bucket}/{ns}/{mci}/{vm},\n"
    "  QoS 1, with seq/boot/fmt user properties) or Kafka (dsf.metrics, keyed ns/mci/vm).\n"
    "  Messages stay in a bounded buffer until the broker (or, with buffer.ack=collector,\n"
    "  the collector) confirms them, so a broker outage loses nothing that fits the buffer.\n"
    "  From the bus it takes acks only for seqs it has published, answers on-demand requests\n"
    "  only on its own reply topic (dsf/a/{ns}/{mci}/{vm}/reply[/...]) and puts its retained\n"
    "  status back when another client overwrites it; what it refuses is counted in /metrics.\n"
    "  It also serves GET /metrics (node_exporter names), /api/v1/snapshot and /healthz.\n"
    "  SIGHUP reloads nothing (restart to apply configuration changes).\n"
    "  Started as root it switches to privileges.user and keeps only the capabilities the\n"
    "  enabled inputs need.\n\n"
    "EXAMPLES\n"
    "  damselfly-agent --set identity.ns=ns1 --set identity.mci=web --set identity.vm=vm1\n"
    "  damselfly-agent -c /etc/damselfly/agent.json --check\n"
    "  curl -s 127.0.0.1:9100/api/v1/snapshot\n";

static void set_identity(struct agent *a)
{
    struct agent_config *c = &a->cfg;
    static char hostname[256];
    if (!*c->identity.host && gethostname(hostname, sizeof(hostname) - 1) == 0) {
        free(c->identity.host);
        c->identity.host = strdup(hostname);
    }
    const char *keys[] = {"ns",   "mci",         "vm",       "csp", "region",
                          "host", "k8s_cluster", "k8s_node", "pod", "container"};
    const char *vals[] = {c->identity.ns,          c->identity.mci,      c->identity.vm,
                          c->identity.csp,         c->identity.region,   c->identity.host,
                          c->identity.k8s_cluster, c->identity.k8s_node, c->identity.pod,
                          c->identity.container};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        tagset_add(&a->identity, keys[i], vals[i]);
    snprintf(a->bus_key, sizeof(a->bus_key), "%s/%s/%s", c->identity.ns, c->identity.mci,
             c->identity.vm);
    uint32_t bucket = dsf_bucket(a->bus_key, strlen(a->bus_key), (uint32_t)c->push.buckets);
    dsf_topic_metrics_key(a->bucket_topic, sizeof(a->bucket_topic), bucket, a->bus_key);
    unsigned char rnd[8] = {0};
    if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
        memcpy(rnd, &(int64_t){dsf_now_ns() ^ getpid()}, sizeof(rnd));
    for (size_t i = 0; i < sizeof(rnd); i++)
        sprintf(a->boot + 2 * i, "%02x", rnd[i]);
}

static double buffer_bytes(void *arg)
{
    return (double)((struct buffer *)arg)->bytes;
}

static double buffer_messages(void *arg)
{
    return (double)((struct buffer *)arg)->messages;
}

static void register_buffer_metrics(struct agent *a)
{
    struct dsf_metrics *m = &a->metrics;
    struct buffer *b = a->buffer;
    metrics_add_fn(m, "damselfly_agent_buffer_bytes", DSF_GAUGE,
                   "Bytes of messages held until confirmed.", NULL, buffer_bytes, b);
    metrics_add_fn(m, "damselfly_agent_buffer_messages", DSF_GAUGE,
                   "Messages held until confirmed.", NULL, buffer_messages, b);
    metrics_add_u64(m, "damselfly_agent_dropped_messages_total", DSF_COUNTER,
                    "Messages dropped because the buffer was full.", "reason=\"buffer_full\"",
                    &b->dropped_messages);
    metrics_add_u64(m, "damselfly_agent_dropped_points_total", DSF_COUNTER,
                    "Points dropped because the buffer was full.", "reason=\"buffer_full\"",
                    &b->dropped_points);
    metrics_add_u64(m, "damselfly_agent_resent_messages_total", DSF_COUNTER,
                    "Messages published again after a lost connection or a missing ack.", NULL,
                    &b->resent);
    struct spool *s = &a->spool;
    metrics_add_u64(m, "damselfly_agent_spool_bytes", DSF_GAUGE,
                    "Bytes of messages waiting in the on-disk spool.", NULL, &s->bytes);
    metrics_add_u64(m, "damselfly_agent_spool_messages", DSF_GAUGE,
                    "Messages waiting in the on-disk spool.", NULL, &s->messages);
    metrics_add_u64(m, "damselfly_agent_dropped_messages_total", DSF_COUNTER,
                    "Messages dropped because the buffer was full.", "reason=\"spool_full\"",
                    &s->dropped_messages);
    metrics_add_u64(m, "damselfly_agent_dropped_points_total", DSF_COUNTER,
                    "Points dropped because the buffer was full.", "reason=\"spool_full\"",
                    &s->dropped_points);
    metrics_add_u64(m, "damselfly_agent_spool_corrupt_total", DSF_COUNTER,
                    "Spool files found unreadable and dropped.", NULL, &s->corrupt);
}

static int start(void *arg, struct dsf_daemon *d)
{
    struct agent *a = arg;
    char err[512];
    struct agent_config *c = &a->cfg;
    a->daemon = d;
    a->base = dsf_daemon_base(d);
    a->http = dsf_daemon_http_config(d);
    set_identity(a);
    a->env = (struct dsf_input_env){c->host.proc, c->host.sys, c->host.rootfs, c->interval_ms};
    if (agent_inputs_init(a, err, sizeof(err))) {
        log_error("%s", err);
        return 2;
    }
    int kafka = strcmp(c->push.mode, "kafka") == 0;
    buffer_init(a->buffer, c->buffer.max_bytes, kafka || strcmp(c->buffer.ack, "collector") != 0);
    register_buffer_metrics(a);
    /* The skeleton bound the pull port already, as root: a port below 1024 works. */
    if (dsf_daemon_http(d) && !(a->pull = pull_new(a, dsf_daemon_http(d), err, sizeof(err)))) {
        log_error("http: %s", err);
        return 1;
    }
    /* Before any client library starts a thread: capabilities are per thread. */
    if (c->privileges.drop &&
        privs_drop(c->privileges.user, agent_required_caps(a), err, sizeof(err))) {
        log_error("%s", err);
        return 1;
    }
    /* After the switch: the spool is written as the user the agent runs as. */
    if (*c->buffer.spool_dir) {
        if (spool_open(&a->spool, c->buffer.spool_dir, c->buffer.spool_max_bytes,
                       c->buffer.spool_fsync, err, sizeof(err))) {
            log_error("%s", err);
            return 1;
        }
        a->buffer->spool = &a->spool;
        buffer_refill(a->buffer);
    }
    if (strcmp(c->push.mode, "off") != 0 && !(a->push = push_new(a, err, sizeof(err)))) {
        log_error("push: %s", err);
        return 2;
    }
    if (agent_cycle_start(a)) {
        log_error("cannot start the collection timer");
        return 1;
    }
    log_info("started: ns=%s mci=%s vm=%s boot=%s interval=%lldms push=%s topic=%s", c->identity.ns,
             c->identity.mci, c->identity.vm, a->boot, (long long)c->interval_ms, c->push.mode,
             a->bucket_topic);
    return 0;
}

static void fini(void *arg)
{
    struct agent *a = arg;
    push_free(a->push);
    buffer_save(a->buffer);
    pull_free(a->pull);
    agent_inputs_fini(a);
    buffer_free(a->buffer);
    batch_free(&a->batch);
    batch_free(&a->snapshot);
    buf_free(&a->payload);
    buf_free(&a->snapshot_out);
    metrics_free(&a->metrics);
    if (a->tick)
        event_free(a->tick);
}

static struct dsf_metrics *metrics(void *arg)
{
    return &((struct agent *)arg)->metrics;
}

int main(int argc, char **argv)
{
    static struct agent a;
    static struct buffer buffer;
    a.buffer = &buffer;
    if (!agent_config_sections(&a)) {
        fprintf(stderr, "damselfly-agent: out of memory\n");
        return 1;
    }
    const struct dsf_daemon_def def = {
        .prog = "damselfly-agent",
        .name = "agent",
        .summary = "Damselfly's metric agent: collect, push (MQTT or Kafka), serve pulls.",
        .usage = usage,
        .http_listen = "127.0.0.1:9100",
        .sections = a.sections,
        .validate = agent_config_validate,
        .start = start,
        .fini = fini,
        .metrics = metrics,
        .render_metrics = agent_render_metrics,
        .health = agent_health,
        .ctx = &a,
    };
    int rc = dsf_daemon_main(&def, argc, argv);
    agent_config_sections_free(&a);
    return rc;
}
