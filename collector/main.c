#define DSF_MODULE "collector"
#include "collector/aggregate.h"
#include "collector/agents.h"
#include "collector/collector.h"
#include "collector/writer.h"
#include "common/spool.h"
#include "common/bus.h"
#include "common/http.h"
#include "common/log.h"
#include "common/loop.h"

#include <event2/event.h>
#include <event2/http.h>
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
    "  acknowledged: with MQTT by publishing {\"boot\",\"seq\"} on dsf/a/{ns}/{mci}/{vm}/ack\n"
    "  (agents run with buffer.ack=collector), with Kafka by committing offsets.\n\n"
    "EXAMPLES\n"
    "  damselfly-collector --set output.url=http://influx:8086 --set output.db=metrics\n"
    "  damselfly-collector --set input=kafka --set kafka.brokers=k1:9092 --set output.api=vm\n"
    "  curl -s 127.0.0.1:9101/metrics\n";

static void serve_metrics(struct evhttp_request *req, void *arg)
{
    struct collector *c = arg;
    struct dsf_buf out = {0};
    metrics_render(&c->metrics, &out);
    dsf_http_reply(req, 200, "text/plain; version=0.0.4; charset=utf-8", out.data, out.len);
    buf_free(&out);
}

static void serve_health(struct evhttp_request *req, void *arg)
{
    struct collector *c = arg;
    char body[256];
    int n = snprintf(
        body, sizeof(body),
        "{\"status\":\"ok\",\"connected\":%s,\"pending_bytes\":%llu,\"agents\":%llu}\n",
        dsf_bus_connected(c->bus) ? "true" : "false",
        (unsigned long long)writer_pending_bytes(c->writer), (unsigned long long)c->agents->count);
    dsf_http_reply(req, 200, "application/json", body, (size_t)n);
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
    metrics_add_u64(m, "damselfly_collector_aggregate_conflicts_total", DSF_COUNTER,
                    "Field values skipped: their type differs from the window's first value, or "
                    "a sum or mean overflowed.",
                    NULL, &s->agg_conflicts);
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
        {"damselfly_collector_acks_total", "End-to-end acks published to agents.", NULL,
         &s->acks_published},
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
    register_spool_metrics(c);
    register_aggregate_metrics(c);
}

static struct collector coll;
static struct event *drain_timer;
static int64_t drain_deadline;

static void check_drained(evutil_socket_t fd, short what, void *arg)
{
    struct collector *c = arg;
    if (writer_pending_bytes(c->writer) == 0 || dsf_mono_ms() > drain_deadline)
        event_base_loopbreak(c->base);
}

/* Stop taking input, write what is pending (bounded), so its acks go out, then exit. */
static void stop(void *arg)
{
    struct collector *c = arg;
    log_info("stopping: writing what is pending (at most 5 s)");
    aggregate_flush(c->agg); /* open windows become points now rather than never */
    writer_flush(c->writer);
    drain_deadline = dsf_mono_ms() + 5000;
    drain_timer = event_new(c->base, -1, EV_PERSIST, check_drained, c);
    struct timeval tv = {0, 50000};
    event_add(drain_timer, &tv);
}

static int start(struct collector *c)
{
    char err[512];
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
    if (*c->cfg.http_listen) {
        struct dsf_http_options opt = {.listen = c->cfg.http_listen};
        if (!(c->http = dsf_http_new(c->base, &opt, err, sizeof(err)))) {
            log_error("http: %s", err);
            return 1;
        }
        dsf_http_route(c->http, "/metrics", serve_metrics, c, 0);
        dsf_http_route(c->http, "/healthz", serve_health, c, 1);
    }
    if (consume_start(c, err, sizeof(err))) {
        log_error("input: %s", err);
        return 2;
    }
    log_info("started: id=%s input=%s", c->cfg.id, c->cfg.input);
    event_base_dispatch(c->base);
    return 0;
}

int main(int argc, char **argv)
{
    struct collector *c = &coll;
    static struct agents agents;
    c->agents = &agents;
    agents.metrics = &c->metrics;
    c->sections[0] = (struct dsf_cfg_section){"", collector_config_keys, &c->cfg};
    const struct dsf_cli cli = {
        .prog = "damselfly-collector",
        .summary = "Damselfly's collector: bus in, validated batches out to the time-series "
                   "store, acks for what is stored.",
        .usage = usage,
        .sections = c->sections,
        .validate = collector_config_validate,
    };
    int rc = dsf_cli_parse(&cli, argc, argv);
    if (rc) {
        dsf_cfg_free(c->sections);
        return rc == 1 ? 0 : rc;
    }
    enum dsf_log_level level;
    if (dsf_log_parse_level(c->cfg.log_level, &level) == 0)
        dsf_log_set_default_level(level);
    if (!*c->cfg.id) {
        char host[256] = "collector";
        gethostname(host, sizeof(host) - 1);
        free(c->cfg.id);
        c->cfg.id = strdup(host);
    }
    c->base = dsf_loop_new();
    if (!c->base || dsf_loop_on_signals(c->base, stop, NULL, c)) {
        log_error("cannot create the event loop");
        return 1;
    }
    rc = start(c);
    writer_free(c->writer); /* before the bus: its last completions may publish acks */
    aggregate_free(c->agg); /* after the writer: releases what it never stored, unacked */
    dsf_bus_free(c->bus);
    dsf_http_free(c->http);
    agents_free(c->agents);
    for (size_t i = 0; i < c->npartitions; i++) {
        if (c->partitions[i])
            progress_free(c->partitions[i]);
        free(c->partitions[i]);
    }
    free(c->partitions);
    free(c->subscribed);
    buf_free(&c->scratch);
    buf_free(&c->scratch_dlq);
    metrics_free(&c->metrics);
    if (c->heartbeat)
        event_free(c->heartbeat);
    if (drain_timer)
        event_free(drain_timer);
    event_base_free(c->base);
    dsf_cfg_free(c->sections);
    return rc;
}
