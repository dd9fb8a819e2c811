#define DSF_MODULE "collector"
#include "collector/aggregate.h"
#include "collector/agents.h"
#include "collector/collector.h"
#include "collector/writer.h"
#include "common/spool.h"
#include "common/bus.h"
#include "common/daemon.h"
#include "common/log.h"
#include "common/loop.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "DESCRIPTION\n"
    "  Consumes the agents' metric messages (MQTT buckets or the Kafka group), validates\n"
    "  every line (bad lines go to the DLQ topic with a reason, the rest of the batch is\n"
    "  kept), keeps the sample's timestamp and the identity tags, and writes batches to\n"
    "  InfluxDB (v1 or v2/v3) or VictoriaMetrics. Only data the store accepted is\n"
    "  acknowledged: with MQTT by publishing the ranges of seq stored, with the agent's boot,\n"
    "  on dsf/a/{ns}/{mci}/{vm}/ack (agents run with buffer.ack=collector), with Kafka by\n"
    "  committing offsets. With intake.influx=true it also serves InfluxDB's write API\n"
    "  (POST /write, POST /api/v2/write) on its HTTP listener for Telegraf and other InfluxDB\n"
    "  clients: their lines take the same validation and DLQ, are stored as sent, and are\n"
    "  answered 204 once the store (or the spool) took them. With intake.remote_write=true\n"
    "  it takes Prometheus remote_write (POST /api/v1/write) the same way, each sample a line\n"
    "  as InfluxDB's Prometheus converter makes it. SIGHUP reloads nothing (restart\n"
    "  to apply changes).\n\n"
    "EXAMPLES\n"
    "  damselfly-collector --set output.url=http://influx:8086 --set output.db=metrics\n"
    "  damselfly-collector --set input=kafka --set kafka.brokers=k1:9092 --set output.api=vm\n"
    "  curl -s 127.0.0.1:9101/metrics\n"
    "  damselfly-collector --set intake.influx=true --set http.listen=0.0.0.0:8086\n"
    "  curl -XPOST '127.0.0.1:8086/write?db=x&p=TOKEN' --data-binary 'cpu usage_idle=99 "
    "1700000000000000000'\n";

static void health(void *arg, struct dsf_buf *out)
{
    struct collector *c = arg;
    buf_printf(out, ",\"connected\":%s,\"pending_bytes\":%llu,\"agents\":%llu",
               dsf_bus_connected(c->bus) ? "true" : "false",
               (unsigned long long)writer_pending_bytes(c->writer),
               (unsigned long long)c->agents->count);
}

static struct dsf_metrics *metrics(void *arg)
{
    return &((struct collector *)arg)->metrics;
}

static double pending_bytes(void *arg)
{
    return (double)writer_pending_bytes(arg);
}

static double kafka_lag(void *arg)
{
    const struct collector *c = arg;
    return c->bus ? (double)dsf_bus_lag(c->bus) : -1;
}

static double store_latency(void *arg)
{
    const struct collector_stats *s = arg;
    return s->store_requests ? (double)s->store_latency_us_sum / 1e6 : 0;
}

static void register_spool_metrics(struct collector *c)
{
    struct spool *sp = (struct spool *)writer_spool(c->writer);
    if (!sp)
        return;
    struct dsf_metrics *m = &c->metrics;
    metrics_add_u64(m, "damselfly_collector_spool_bytes", DSF_GAUGE, "Bytes in the disk spool.",
                    NULL, &sp->bytes);
    metrics_add_u64(m, "damselfly_collector_spool_batches", DSF_GAUGE, "Batches in the disk spool.",
                    NULL, &sp->messages);
    metrics_add_u64(m, "damselfly_collector_spooled_points_total", DSF_COUNTER,
                    "Lines written to the spool while the store failed (acknowledged then).", NULL,
                    &c->stats.spooled_lines);
    metrics_add_u64(m, "damselfly_collector_spool_replayed_points_total", DSF_COUNTER,
                    "Spooled lines the store accepted later.", NULL, &c->stats.replayed_lines);
    metrics_add_u64(m, "damselfly_collector_spool_dropped_points_total", DSF_COUNTER,
                    "Lines lost because the spool was full (oldest first) or unwritable.", NULL,
                    &sp->dropped_points);
    metrics_add_u64(m, "damselfly_collector_spool_corrupt_total", DSF_COUNTER,
                    "Spool files found unreadable and removed.", NULL, &sp->corrupt);
}

static void register_aggregate_metrics(struct collector *c)
{
    if (!c->agg)
        return;
    struct dsf_metrics *m = &c->metrics;
    struct collector_stats *s = &c->stats;
    metrics_add_u64(m, "damselfly_collector_aggregated_points_total", DSF_COUNTER,
                    "Lines folded into aggregation windows.", NULL, &s->agg_points);
    metrics_add_u64(m, "damselfly_collector_aggregate_windows_total", DSF_COUNTER,
                    "Aggregated points (one per series and window) handed to the writer.", NULL,
                    &s->agg_windows);
    metrics_add_u64(m, "damselfly_collector_dropped_points_total", DSF_COUNTER,
                    "Lines dropped, by reason.", "reason=\"late\"", &s->agg_late);
    metrics_add_u64(m, "damselfly_collector_aggregate_duplicates_total", DSF_COUNTER,
                    "Lines of messages sent again (by seq) while their window was held: not "
                    "folded twice.",
                    NULL, &s->agg_duplicates);
    metrics_add_u64(m, "damselfly_collector_aggregate_handed_over_total", DSF_COUNTER,
                    "Lines of open windows discarded when their bucket moved to another "
                    "collector: released unacked, the agents resend them to the new owner.",
                    NULL, &s->agg_handed_over);
    metrics_add_u64(m, "damselfly_collector_aggregate_conflicts_total", DSF_COUNTER,
                    "Field values skipped: their type differs from the window's first value, or "
                    "a sum or mean overflowed.",
                    NULL, &s->agg_conflicts);
}

/* The refusals of whole messages and of assignments, one series per reason. */
static void register_refusal_metrics(struct collector *c)
{
    struct dsf_metrics *m = &c->metrics;
    struct collector_stats *s = &c->stats;
    metrics_add_u64_by(m, "damselfly_collector_messages_rejected_total", DSF_COUNTER,
                       "Whole messages refused and sent to the DLQ, by reason: bad_topic, "
                       "wrong_bucket (not the agent's bucket), bad_seq, bad_boot (properties "
                       "that are not a seq or a boot).",
                       "reason", collector_refused_names, COLLECTOR_REFUSED_REASONS, s->refused);
    metrics_add_u64_by(m, "damselfly_collector_assign_refused_total", DSF_COUNTER,
                       "Assignments not applied, by reason: stale (epoch not above the one "
                       "applied), malformed, range (a bucket outside 0..buckets_total-1), ahead "
                       "(epoch more than assign.max_ahead ahead of this collector's clock).",
                       "reason", dsf_follow_refused_names, DSF_FOLLOW_REASONS, c->follow.refused);
    metrics_add_u64(m, "damselfly_collector_messages_unowned_total", DSF_COUNTER,
                    "Messages on a bucket this collector does not own (a session's leftover "
                    "queue, the overlap of a move): dropped without ack, the owner stores them.",
                    NULL, &s->unowned);
    metrics_add_u64_by(m, "damselfly_collector_source_points_total", DSF_COUNTER,
                       "Lines received, by source: bus (the agents' messages), influx (the "
                       "InfluxDB write API), remote_write.",
                       "source", pipeline_source_names, PIPELINE_SOURCES, s->source_in);
    metrics_add_u64_by(m, "damselfly_collector_source_points_rejected_total", DSF_COUNTER,
                       "Lines rejected (sent to the DLQ), by source.", "source",
                       pipeline_source_names, PIPELINE_SOURCES, s->source_rejected);
    metrics_add_u64(m, "damselfly_collector_seq_suspect_total", DSF_COUNTER,
                    "Messages whose seq lay more than agents.max_seq_jump from their agent's last "
                    "one: stored, without moving the agent's seq tracking.",
                    NULL, &s->seq_suspect);
}

static void register_metrics(struct collector *c)
{
    struct dsf_metrics *m = &c->metrics;
    struct collector_stats *s = &c->stats;
    const struct {
        const char *name, *help, *labels;
        uint64_t *v;
    } counters[] = {
        {"damselfly_collector_messages_total", "Messages received.", NULL, &s->messages},
        {"damselfly_collector_bytes_in_total", "Payload bytes received.", NULL, &s->bytes_in},
        {"damselfly_collector_points_in_total", "Lines received.", NULL, &s->lines_in},
        {"damselfly_collector_points_rejected_total", "Lines rejected (sent to the DLQ).", NULL,
         &s->lines_rejected},
        {"damselfly_collector_points_out_total", "Lines the store accepted.", NULL, &s->lines_out},
        {"damselfly_collector_bytes_out_total", "Bytes the store accepted.", NULL, &s->bytes_out},
        {"damselfly_collector_batches_total",
         "Write requests by result: ok (accepted) or failed (to be retried).", "result=\"ok\"",
         &s->batches_ok},
        {"damselfly_collector_batches_total",
         "Write requests by result: ok (accepted) or failed (to be retried).", "result=\"failed\"",
         &s->batches_failed},
        {"damselfly_collector_retries_total", "Write requests retried after a failure.", NULL,
         &s->retries},
        {"damselfly_collector_partial_writes_total",
         "Batches the store refused in part, narrowed down to the bad lines.", NULL,
         &s->partial_writes},
        {"damselfly_collector_points_skewed_total",
         "Lines whose timestamp is further than skew from the collector's clock.", NULL,
         &s->skewed},
        {"damselfly_collector_dlq_total", "Rejected lines published to the DLQ topic.",
         "result=\"published\"", &s->dlq_published},
        {"damselfly_collector_dlq_total", "Rejected lines published to the DLQ topic.",
         "result=\"dropped\"", &s->dlq_dropped},
        {"damselfly_collector_dropped_points_total",
         "Lines dropped, by reason: pending_full (too much was pending for the store; not "
         "acked, so resent) or late (their aggregation window was already emitted).",
         "reason=\"pending_full\"", &s->dropped_lines},
        {"damselfly_collector_acks_total",
         "End-to-end acks to agents: published, or refused by the bus (not connected, its "
         "queue full; those messages are resent by their agents).",
         "result=\"published\"", &s->acks_published},
        {"damselfly_collector_acks_total",
         "End-to-end acks to agents: published, or refused by the bus (not connected, its "
         "queue full; those messages are resent by their agents).",
         "result=\"refused\"", &s->acks_refused},
        {"damselfly_collector_input_pauses_total",
         "Times Kafka fetching paused because too much waited for the store.", NULL,
         &s->input_pauses},
    };
    for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++)
        metrics_add_u64(m, counters[i].name, DSF_COUNTER, counters[i].help, counters[i].labels,
                        counters[i].v);
    metrics_add_u64(m, "damselfly_collector_store_requests_total", DSF_COUNTER,
                    "Write requests answered (or failed) by the store.", NULL, &s->store_requests);
    metrics_add_fn(m, "damselfly_collector_store_latency_seconds_total", DSF_COUNTER,
                   "Sum of write request durations; divide by requests for the mean.", NULL,
                   store_latency, s);
    metrics_add_fn(m, "damselfly_collector_pending_bytes", DSF_GAUGE,
                   "Bytes waiting for the store.", NULL, pending_bytes, c->writer);
    metrics_add_histogram(m, "damselfly_collector_sample_age_seconds",
                          "Age of the samples (now minus their timestamp) when the store "
                          "accepted them.",
                          NULL, writer_age_histogram(c->writer));
    if (strcmp(c->cfg.input, "kafka") == 0)
        metrics_add_fn(m, "damselfly_collector_kafka_lag_messages", DSF_GAUGE,
                       "Messages of the assigned partitions not yet consumed (-1: unknown).", NULL,
                       kafka_lag, c);
    register_refusal_metrics(c);
    register_spool_metrics(c);
    register_aggregate_metrics(c);
}

static struct collector coll;

static int drained(void *arg)
{
    return writer_pending_bytes(((struct collector *)arg)->writer) == 0;
}

/* Stop taking input, write what is pending (bounded), so its acks go out, then exit. */
static void stop(void *arg)
{
    struct collector *c = arg;
    log_info("stopping: writing what is pending (at most 5 s)");
    aggregate_flush(c->agg); /* open windows become points now rather than never */
    writer_flush(c->writer);
    dsf_daemon_exit_when_idle(c->daemon, drained, c, 5000, 50);
}

static int start(void *arg, struct dsf_daemon *d)
{
    struct collector *c = arg;
    char err[512];
    c->daemon = d;
    c->base = dsf_daemon_base(d);
    dsf_daemon_default_id(&c->cfg.id, "collector");
    if (!(c->writer = writer_new(c, err, sizeof(err)))) {
        log_error("output: %s", err);
        return 2;
    }
    if (c->cfg.aggregate.rules.count &&
        !(c->agg = aggregate_new(c, NULL, NULL, err, sizeof(err)))) {
        log_error("aggregate: %s", err);
        return 2;
    }
    register_metrics(c);
    if (intake_influx_start(c, dsf_daemon_http(d), err, sizeof(err))) {
        log_error("intake: %s", err);
        return 2;
    }
    if (consume_start(c, err, sizeof(err))) {
        log_error("input: %s", err);
        return 2;
    }
    log_info("started: id=%s input=%s", c->cfg.id, c->cfg.input);
    return 0;
}

static void fini(void *arg)
{
    struct collector *c = arg;
    writer_free(c->writer); /* before the bus: its last completions may publish acks */
    aggregate_free(c->agg); /* after the writer: releases what it never stored, unacked */
    dsf_bus_free(c->bus);
    agents_free(c->agents);
    for (size_t i = 0; i < c->npartitions; i++) {
        if (c->partitions[i])
            progress_free(c->partitions[i]);
        free(c->partitions[i]);
    }
    free(c->partitions);
    buf_free(&c->scratch);
    buf_free(&c->scratch_dlq);
    metrics_free(&c->metrics);
    intake_influx_free(c); /* after the writer (its marks) and the metrics (its labels) */
    intake_remote_free(c);
    dsf_follow_free(&c->follow);
}

/* dsf_internal goes where the points go, when that is InfluxDB 1.x. */
static void internal_target(void *arg, struct dsf_internal_target *t)
{
    const struct collector_config *cfg = &((struct collector *)arg)->cfg;
    t->id = cfg->id;
    if (strcmp(cfg->output.api, "v1") == 0)
        *t = (struct dsf_internal_target){cfg->id, cfg->output.url, cfg->output.db,
                                          cfg->output.username, cfg->output.password};
}

int main(int argc, char **argv)
{
    struct collector *c = &coll;
    static struct agents agents;
    c->agents = &agents;
    agents.metrics = &c->metrics;
    collector_config_sections(c);
    const struct dsf_daemon_def def = {
        .prog = "damselfly-collector",
        .name = "collector",
        .summary = "Damselfly's collector: bus in, validated batches out to the time-series "
                   "store, acks for what is stored.",
        .usage = usage,
        .http_listen = "127.0.0.1:9101",
        .sections = c->sections,
        .validate = collector_config_validate,
        .start = start,
        .stop = stop,
        .fini = fini,
        .metrics = metrics,
        .internal = &dsf_internal_hooks,
        .internal_target = internal_target,
        .health = health,
        .ctx = c,
    };
    return dsf_daemon_main(&def, argc, argv);
}
