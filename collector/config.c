#include "collector/aggregate.h"
#include "collector/collector.h"
#include "common/topic.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define K(field) offsetof(struct collector_config, field)

const struct dsf_cfg_key collector_config_keys[] = {
    {"id", DSF_CFG_ID, "", K(id),
     "collector id (topics dsf/c/{id}/...; 1-63 bytes, no / + #); empty: the host name", 0, 0},
    {"input", DSF_CFG_STR, "mqtt", K(input), "mqtt or kafka", 0, 0},
    {"output.url", DSF_CFG_URL, "http://127.0.0.1:8086", K(output.url),
     "time-series store base URL", 0, 0},
    {"output.api", DSF_CFG_STR, "v1", K(output.api),
     "v1 (InfluxDB 1.x /write), v2 (InfluxDB 2.x/3 /api/v2/write) or vm (VictoriaMetrics)", 0, 0},
    {"output.db", DSF_CFG_STR, "damselfly", K(output.db), "v1 database", 0, 0},
    {"output.rp", DSF_CFG_STR, "", K(output.rp), "v1 retention policy; empty: the default", 0, 0},
    {"output.org", DSF_CFG_STR, "", K(output.org), "v2 organisation", 0, 0},
    {"output.bucket", DSF_CFG_STR, "damselfly", K(output.bucket), "v2 bucket", 0, 0},
    {"output.token", DSF_CFG_STR, "", K(output.token), "v2 token", 0, 0},
    {"output.username", DSF_CFG_STR, "", K(output.username), "basic auth user (v1)", 0, 0},
    {"output.password", DSF_CFG_STR, "", K(output.password), "basic auth password (v1)", 0, 0},
    {"output.gzip", DSF_CFG_STR, "auto", K(output.gzip_mode),
     "gzip request bodies: true, false, or auto (on unless the store is on a loopback "
     "address, where compressing costs both ends CPU and saves nothing)",
     0, 0},
    {"output.max_in_flight", DSF_CFG_INT, "4", K(output.max_in_flight),
     "write requests in flight at once", 1, 256},
    {"output.timeout", DSF_CFG_DURATION, "10s", K(output.timeout_ms), "per-request timeout", 100,
     600000},
    {"output.max_backoff", DSF_CFG_DURATION, "10s", K(output.max_backoff_ms),
     "longest wait between retries", 100, 3600000},
    {"batch.lines", DSF_CFG_INT, "5000", K(batch.lines), "lines per write request", 1, 1000000},
    {"batch.bytes", DSF_CFG_SIZE, "1MiB", K(batch.bytes), "bytes per write request", 1024, 1e9},
    {"batch.interval", DSF_CFG_DURATION, "1s", K(batch.interval_ms),
     "longest a line waits for its batch to fill", 10, 60000},
    {"batch.max_pending", DSF_CFG_SIZE, "256MiB", K(batch.max_pending_bytes),
     "bytes held for the store before new messages are refused (not acked, so resent)", 1024, 1e12},
    {"spool.dir", DSF_CFG_STR, "", K(spool.dir),
     "directory for batches the store cannot take (acknowledged once spooled, replayed in order); "
     "empty: off, and what is not stored stays unacknowledged with the agents or in Kafka",
     0, 0},
    {"spool.max_bytes", DSF_CFG_SIZE, "1GiB", K(spool.max_bytes),
     "spool size cap; when full the oldest batches are dropped and counted", 4096, 1e13},
    {"spool.fsync", DSF_CFG_BOOL, "true", K(spool.fsync),
     "fsync each spooled batch before acknowledging it", 0, 0},
    {"intake.influx", DSF_CFG_BOOL, "false", K(intake.influx),
     "serve InfluxDB's write API on the HTTP listener (POST /write v1, POST /api/v2/write, GET "
     "/ping, POST /query for CREATE DATABASE): Telegraf's outputs.influxdb and "
     "outputs.influxdb_v2 write to the collector; the http token is the credential",
     0, 0},
    {"intake.remote_write", DSF_CFG_BOOL, "false", K(intake.remote_write),
     "serve Prometheus remote_write (POST /api/v1/write, snappy protobuf, v1) on the HTTP "
     "listener: each sample becomes a line as InfluxDB's Prometheus converter makes it "
     "(measurement = metric name, labels as tags, field value); the http token is the credential",
     0, 0},
    {"intake.max_body", DSF_CFG_SIZE, "25000000", K(intake.max_body),
     "largest HTTP write body read (as sent, compressed or not); larger: 413", 1024, 1e10},
    {"intake.max_decoded", DSF_CFG_SIZE, "64MiB", K(intake.max_decoded),
     "largest gzip'd HTTP write body once decompressed; larger: 413", 1024, 1e10},
    {"aggregate.rules", DSF_CFG_STRLIST, "", K(aggregate.rules),
     "measurements folded into windows, one rule each: \"MEASUREMENT window=10s [default=FN] "
     "[FIELD=FN ...]\" with FN mean, min, max, last, sum or count (floats default to mean, "
     "integers to last: counters); MEASUREMENT * matches the rest; empty: nothing aggregated",
     0, 0},
    {"aggregate.grace", DSF_CFG_DURATION, "2s", K(aggregate.grace_ms),
     "how far a series' samples must pass a window's end before it is emitted (late samples "
     "are dropped and counted)",
     0, 3600000},
    {"aggregate.handover", DSF_CFG_DURATION, "15s", K(aggregate.handover_ms),
     "after gaining a bucket, its windows that started before are held this long, so that the "
     "messages the previous owner released (resent by the agents after their "
     "buffer.ack_timeout) fold into them; keep it above the agents' buffer.ack_timeout",
     0, 3600000},
    {"agents.max_seq_jump", DSF_CFG_INT, "1000000", K(agents.max_seq_jump),
     "a seq further than this from its agent's last one is suspect: stored and counted, but "
     "it moves the agent's seq tracking only when a second message agrees",
     1024, 1e15},
    {"skew", DSF_CFG_DURATION, "5m", K(skew_ms),
     "samples further than this from the collector's clock are counted as skewed", 1000,
     86400000 * 365.0},
    {"dlq.topic", DSF_CFG_TOPIC, "", K(dlq_topic),
     "where rejected input goes, with a reason (one topic: no wildcards); empty: the bus's DLQ "
     "topic (dsf/dlq, on Kafka dsf.dlq)",
     0, 0},
    DSF_CFG_END,
};

void collector_config_sections(struct collector *c)
{
    static const char *const consumer_defaults[] = {"session_expiry=1h", NULL};
    static const char *const group_defaults[] = {"group=dsf-collectors", NULL};
    struct dsf_cfg_section *s = c->sections;
    s[0] = (struct dsf_cfg_section){"", collector_config_keys, &c->cfg, NULL};
    size_t n = 1 + dsf_bus_consumer_sections(s + 1, &c->cfg.mqtt, &c->cfg.kafka, consumer_defaults,
                                             group_defaults);
    n += dsf_follow_sections(s + n, &c->cfg.follow);
    s[n] = (struct dsf_cfg_section){NULL, NULL, NULL, NULL};
}

int collector_config_validate(const struct dsf_cfg_section *secs, const char *origin, char *err,
                              size_t errlen)
{
    const struct collector_config *c = secs[0].obj;
    const char *bad = NULL;
    if (strcmp(c->input, "mqtt") != 0 && strcmp(c->input, "kafka") != 0)
        bad = "input";
    else if (strcmp(c->output.api, "v1") != 0 && strcmp(c->output.api, "v2") != 0 &&
             strcmp(c->output.api, "vm") != 0)
        bad = "output.api";
    else if (strcmp(c->output.gzip_mode, "auto") != 0 && strcmp(c->output.gzip_mode, "true") != 0 &&
             strcmp(c->output.gzip_mode, "false") != 0)
        bad = "output.gzip";
    if (bad) {
        snprintf(err, errlen, "%s: key '%s' has an unknown value (see --help)", origin, bad);
        return -1;
    }
    /* DSF_CFG_TOPIC keeps wildcards out; a DLQ on a metrics topic would feed itself. */
    if (dsf_topic_family(c->dlq_topic) == DSF_TOPIC_METRICS) {
        snprintf(err, errlen,
                 "%s: key 'dlq.topic' is '%s': the DLQ cannot be one of the metrics topics %s",
                 origin, c->dlq_topic, dsf_topic_metrics_all);
        return -1;
    }
    char why[400];
    if (aggregate_check_rules(&c->aggregate.rules, why, sizeof(why))) {
        snprintf(err, errlen, "%s: key 'aggregate.rules': %s", origin, why);
        return -1;
    }
    return 0;
}
