/* The agent's configuration and its one context struct, which owns everything. */
#ifndef DSF_AGENT_H
#define DSF_AGENT_H

#include <stdint.h>

#include "agent/input.h"
#include "common/spool.h"
#include "common/buf.h"
#include "common/bus_config.h"
#include "common/config.h"
#include "common/metrics.h"
#include "common/point.h"

struct agent_config {
    struct {
        char *ns, *mci, *vm, *csp, *region, *host, *k8s_cluster, *k8s_node, *pod, *container;
    } identity;
    int64_t interval_ms;
    struct {
        char *mode;   /* mqtt, kafka, off */
        char *format; /* lp, json */
        int64_t buckets;
        int64_t max_inflight;
    } push;
    struct dsf_mqtt_config mqtt;
    struct dsf_kafka_config kafka;
    struct {
        uint64_t max_bytes;
        char *ack; /* broker: release on the broker's ack; collector: on Damselfly's ack */
        int64_t ack_timeout_ms;
        char *spool_dir;
        uint64_t spool_max_bytes;
        int spool_fsync;
    } buffer;
    struct {
        char *user;
        int drop;
    } privileges;
    struct {
        char *proc, *sys, *rootfs;
    } host;
};

extern const struct dsf_cfg_key agent_config_keys[];
int agent_config_validate(const struct dsf_cfg_section *secs, const char *origin, char *err,
                          size_t errlen);
/* The agent's sections: its keys, the bus groups it takes, then one per input (inputs.NAME,
 * each with its options struct). NULL out of memory; agent_config_sections_free undoes it. */
struct agent;
struct dsf_cfg_section *agent_config_sections(struct agent *a);
void agent_config_sections_free(struct agent *a);

struct agent_input {
    const struct dsf_input *def;
    void *options; /* the input's options struct; starts with int enabled */
    void *ctx;
    uint64_t errors, runs;
    double last_duration_s;
    char labels[64];
};

struct buffer;
struct push;
struct pull;
struct event_base;
struct event;

struct dsf_daemon;
struct dsf_http_config;

struct agent {
    struct agent_config cfg;
    struct dsf_daemon *daemon;
    const struct dsf_http_config *http; /* the pull endpoint's keys */
    struct dsf_cfg_section *sections;
    struct agent_input inputs[32];
    size_t ninputs;
    struct dsf_input_env env;
    struct event_base *base;
    struct event *tick;
    int64_t next_tick_ns;
    char boot[17];
    uint64_t seq;
    char bucket_topic[512];
    char bus_key[384]; /* ns/mci/vm: Kafka key and bucket hash input */
    struct dsf_tagset identity;
    struct dsf_batch batch;    /* this cycle's points */
    struct dsf_buf payload;    /* rendered message */
    struct dsf_batch snapshot; /* on-demand collections */
    struct dsf_buf snapshot_out;
    struct buffer *buffer;
    struct spool spool;
    struct push *push;
    struct pull *pull;
    struct dsf_metrics metrics;
    uint64_t cycles, overruns, points;
};

/* cycle.c */
int agent_inputs_init(struct agent *a, char *err, size_t errlen);
void agent_inputs_fini(struct agent *a);
/* Runs every enabled input into batch, stamped ts_ns. */
void agent_collect(struct agent *a, struct dsf_batch *batch, int64_t ts_ns);
int agent_cycle_start(struct agent *a);
uint64_t agent_required_caps(const struct agent *a);

#endif
