/* The collector's configuration and its one context struct, which owns everything. */
#ifndef DSF_COLLECTOR_H
#define DSF_COLLECTOR_H

#include <stddef.h>
#include <stdint.h>

#include "common/assign_follow.h"
#include "common/buf.h"
#include "common/bus_config.h"
#include "common/config.h"
#include "common/metrics.h"
#include "collector/progress.h"

struct collector_config {
    char *id;
    char *input; /* mqtt or kafka */
    struct dsf_mqtt_config mqtt;
    struct dsf_kafka_config kafka;
    struct {
        char *url, *api, *db, *rp, *precision, *org, *bucket, *token, *username, *password;
        char *gzip_mode; /* true, false or auto */
        int gzip;        /* the decision, made when the writer starts */
        int64_t max_in_flight, timeout_ms, max_backoff_ms;
    } output;
    struct {
        int64_t lines;
        uint64_t bytes;
        int64_t interval_ms;
        uint64_t max_pending_bytes;
    } batch;
    struct {
        char *dir;
        uint64_t max_bytes;
        int fsync;
    } spool;
    struct {
        int influx;                     /* POST /write, /api/v2/write */
        int remote_write;               /* POST /api/v1/write */
        uint64_t max_body, max_decoded; /* bodies as sent, and gzip'd ones decompressed */
    } intake;
    struct {
        struct dsf_strlist rules; /* "MEASUREMENT window=10s [default=FN] [FIELD=FN ...]" */
        int64_t grace_ms;
        int64_t handover_ms; /* windows of a gained bucket wait this long for resends */
    } aggregate;
    struct {
        int64_t max_seq_jump; /* further from an agent's last seq: suspect */
    } agents;
    int64_t skew_ms;
    char *dlq_topic;
    struct dsf_follow_config follow; /* pool, mqtt.follow_assign, heartbeat, assign.max_ahead */
};

extern const struct dsf_cfg_key collector_config_keys[];
int collector_config_validate(const struct dsf_cfg_section *secs, const char *origin, char *err,
                              size_t errlen);
struct collector;
/* Fills c->sections: the collector's keys and the bus groups it takes. */
void collector_config_sections(struct collector *c);

struct event_base;
struct dsf_bus;
struct writer;
struct agents;
struct dsf_http_server;
struct aggregate;
struct dsf_identity;

/* Why a whole message is refused (damselfly_collector_messages_rejected_total{reason}). */
enum collector_refused {
    REFUSED_BAD_TOPIC,
    REFUSED_WRONG_BUCKET,
    REFUSED_BAD_SEQ,
    REFUSED_BAD_BOOT,
    COLLECTOR_REFUSED_REASONS
};
extern const char *const collector_refused_names[COLLECTOR_REFUSED_REASONS];

/* Where lines come from (damselfly_collector_source_points_total{source}). */
enum pipeline_source { PIPELINE_BUS, PIPELINE_INFLUX, PIPELINE_REMOTE_WRITE, PIPELINE_SOURCES };
extern const char *const pipeline_source_names[PIPELINE_SOURCES];

/* Counters exported on /metrics; every drop has one. */
struct collector_stats {
    uint64_t messages, lines_in, bytes_in, lines_rejected, lines_out, bytes_out;
    uint64_t batches_ok, batches_failed, retries, partial_writes;
    uint64_t skewed, gaps, duplicates, dlq_published, dlq_dropped, acks_published;
    uint64_t acks_refused;  /* not taken by the bus: the agents resend those messages */
    uint64_t dropped_lines; /* given up on: counted and sent to the DLQ where possible */
    uint64_t store_latency_us_sum, store_requests;
    uint64_t spooled_batches, spooled_lines, replayed_lines;
    uint64_t input_pauses;
    uint64_t agg_points, agg_windows, agg_late, agg_duplicates, agg_conflicts; /* aggregation */
    uint64_t agg_handed_over; /* lines of a lost bucket's windows, released unacked */
    uint64_t seq_suspect;     /* seqs implausibly far from their agent's last one */
    uint64_t unowned;         /* messages on a bucket not owned: dropped unacked for its owner */
    uint64_t refused[COLLECTOR_REFUSED_REASONS]; /* whole messages, to the DLQ */
    uint64_t source_in[PIPELINE_SOURCES], source_rejected[PIPELINE_SOURCES];
};

struct collector {
    struct collector_config cfg;
    struct dsf_cfg_section sections[10];
    struct event_base *base;
    struct dsf_bus *bus;
    struct writer *writer;
    struct aggregate *agg; /* NULL: every line is forwarded as it is */
    struct agents *agents;
    struct dsf_daemon *daemon;
    struct dsf_metrics metrics;
    struct collector_stats stats;
    struct dsf_buf scratch;       /* a message's lines as written */
    struct dsf_buf scratch_dlq;   /* DLQ payloads */
    struct progress **partitions; /* Kafka: durable offset per partition */
    size_t npartitions;
    /* The balancer's side: buckets owned (MQTT; owned NULL for Kafka), heartbeat, status. */
    struct dsf_follow follow;
    struct { /* the last heartbeat's counters: its rates are per interval */
        uint64_t msgs, lines;
    } hb_last;
    int input_paused;             /* Kafka fetching paused: too much waits for the store */
    struct intake_influx *influx; /* NULL: intake.influx and intake.remote_write off */
    struct intake_remote *remote; /* NULL: intake.remote_write off */
};

/* pipeline.c: one message from the bus, already split from its transport. */
struct collector_message {
    const char *topic;
    const char *payload;
    size_t len;
    const char *boot, *fmt;
    uint64_t seq;
    int has_seq;
    int seq_invalid;   /* a seq property that is not a number: the message is refused */
    int32_t partition; /* Kafka position, -1 for MQTT */
    int64_t offset;
};
void pipeline_handle(struct collector *c, const struct collector_message *m);
/* One batch of lines from any source: validated (bad lines to the DLQ with origin as their
 * topic, counted), rendered (identity tags added when id is set, times in ns) and handed to
 * the writer with the marks they complete. */
struct writer_mark;
struct pipeline_batch {
    enum pipeline_source source;
    const char *origin;            /* the topic, or "http /write": the DLQ's "topic" */
    const struct dsf_identity *id; /* NULL: stored as sent, no identity tags added or checked */
    const char *fmt;               /* "json" or NULL (line protocol) */
    const char *payload;
    size_t len;
    int64_t ts_unit_ns, stamp_ns; /* see struct ingest: HTTP writes' precision and receipt time */
    int duplicate;                /* a message sent again (by seq): not folded twice */
    /* Filled in: lines handed on, lines rejected and the first of them with its reason. */
    uint32_t lines, rejected;
    char first_bad[400];
};
/* 0, or -1 when the writer holds too much: nothing taken, marks abandoned, counted. A batch
 * with no good line completes its marks at once. */
int pipeline_take(struct collector *c, struct pipeline_batch *b, struct writer_mark **marks,
                  size_t nmarks);
/* Reports a rejected line on the DLQ topic and counts it. */
void pipeline_reject(struct collector *c, const char *topic, const char *line, size_t len,
                     const char *reason);

/* main.c: after the writer finished a request (acks and commits may be due). */
void collector_after_write(struct collector *c);
/* Kafka: pauses fetching while the store is behind (ack.c). */
void collector_backpressure(struct collector *c);

/* The durable progress of a Kafka partition (grown on demand); NULL when out of memory. */
struct progress *collector_partition(struct collector *c, int32_t partition);

/* intake_influx.c: InfluxDB's write API on the HTTP listener (intake.influx). 0, or -1 with
 * err. */
int intake_influx_start(struct collector *c, struct dsf_http_server *h, char *err, size_t errlen);
void intake_influx_free(struct collector *c);
/* intake_remote.c: a remote_write body as line protocol into lines, each sample counted. 0; 1
 * when it decompresses beyond intake.max_decoded; -1 when it is not a remote_write body; err
 * says why. */
int intake_remote_lines(struct collector *c, const char *body, size_t len, struct dsf_buf *lines,
                        char *err, size_t errlen);
int intake_remote_start(struct collector *c);
void intake_remote_free(struct collector *c);
/* consume.c */
int consume_start(struct collector *c, char *err, size_t errlen);
/* Parses "all" or "0-15,32" into flags[0..total). 0 or -1. */
int parse_buckets(const char *spec, uint8_t *flags, uint32_t total);

#endif
