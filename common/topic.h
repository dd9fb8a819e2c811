/*
 * The bus's topic grammar (docs/architecture.md), built and parsed only here:
 *
 *   metrics        {root}/m/{bucket}/{ns}/{mci}/{vm}    the agents' samples
 *   agent          {root}/a/{ns}/{mci}/{vm}/{leaf}       status (retained), ack, req,
 *                                                         reply[/...] (on-demand answers)
 *   collector      {root}/c/{id}/{leaf}                  hb (heartbeat), assign (retained)
 *   engine         {root}/e/{id}/{leaf}                  the alarm engines' hb and assign
 *   alarm          {root}/alarm/{ns}/{mci}/{rule}        alarm state changes
 *   action         {root}/action/{ns}/{mci}              the controller's audit records
 *   dlq            {root}/dlq                            rejected input, with reasons
 *
 * with root "dsf". Kafka carries each family on one topic (dsf.metrics, dsf.agents, ...),
 * keyed by the rest (dsf_topic_kafka). Builders return the length written, or -1 when the
 * topic does not fit cap (nothing usable is written then).
 */
#ifndef DSF_TOPIC_H
#define DSF_TOPIC_H

#include <stddef.h>
#include <stdint.h>

/* An agent's identity as topics carry it: segments of 1..63 bytes without '/', '+', '#'. */
#define DSF_TOPIC_SEGMENT_MAX 63
struct dsf_identity {
    char ns[64], mci[64], vm[64];
};

enum dsf_topic_family {
    DSF_TOPIC_OTHER = 0,
    DSF_TOPIC_METRICS,
    DSF_TOPIC_AGENT,
    DSF_TOPIC_COLLECTOR,
    DSF_TOPIC_ENGINE,
    DSF_TOPIC_ALARM,
    DSF_TOPIC_ACTION,
    DSF_TOPIC_DLQ,
};

/* Subscriptions and fixed topics. */
extern const char dsf_topic_metrics_all[];      /* every bucket's metrics */
extern const char dsf_topic_metrics_any[];      /* the same, one level per bucket (Kafka form) */
extern const char dsf_topic_metrics_root[];     /* the prefix of every metrics topic */
extern const char dsf_topic_agent_status_all[]; /* every agent's status */
extern const char dsf_topic_dlq[];

int dsf_topic_metrics(char *out, size_t cap, uint32_t bucket, const char *ns, const char *mci,
                      const char *vm);
/* key: "ns/mci/vm", as the agent's Kafka key and the bucket hash input. */
int dsf_topic_metrics_key(char *out, size_t cap, uint32_t bucket, const char *key);
int dsf_topic_bucket(char *out, size_t cap, uint32_t bucket); /* one bucket's subscription */
/* A tenant's share of one bucket: {root}/m/{bucket}/{prefix}/# (prefix "ns" or "ns/mci"; NULL:
 * the whole bucket, as dsf_topic_bucket). */
int dsf_topic_bucket_prefix(char *out, size_t cap, uint32_t bucket, const char *prefix);
/* 1 when prefix is "ns" or "ns/mci", each a segment (1..63 bytes, no '+', '#', ' '). */
int dsf_topic_prefix_ok(const char *prefix, size_t len);
/* 1 when the identity lies under prefix ("ns" or "ns/mci"). */
int dsf_topic_prefix_match(const char *prefix, const struct dsf_identity *id);
int dsf_topic_agent(char *out, size_t cap, const char *ns, const char *mci, const char *vm,
                    const char *leaf);
int dsf_topic_agent_key(char *out, size_t cap, const char *key, const char *leaf);
int dsf_topic_collector(char *out, size_t cap, const char *id, const char *leaf);
int dsf_topic_engine(char *out, size_t cap, const char *id, const char *leaf);
int dsf_topic_alarm(char *out, size_t cap, const char *ns, const char *mci, const char *rule);
/* {root}/action/{ns}/{mci}; a NULL or empty ns or mci is "_" (records of no target). -1 also
 * when ns or mci cannot be a segment (a '/', '+' or '#', or longer than 63 bytes). */
int dsf_topic_action(char *out, size_t cap, const char *ns, const char *mci);

enum dsf_topic_family dsf_topic_family(const char *topic);
/* {root}/m/{bucket}/{ns}/{mci}/{vm}: 0 with the identity (and the bucket when given), or -1
 * when the topic has another shape. */
int dsf_topic_parse_metrics(const char *topic, struct dsf_identity *id, uint32_t *bucket);
/* {root}/a/{ns}/{mci}/{vm}/{leaf}: 0 when the topic is that agent topic with this leaf. */
int dsf_topic_parse_agent(const char *topic, const char *leaf, struct dsf_identity *id);

/* {root}/c/{id}/{leaf} or {root}/e/{id}/{leaf} (a balanced member's topics): 0 with the
 * family (DSF_TOPIC_COLLECTOR or DSF_TOPIC_ENGINE), the id and the leaf, or -1. The id is a
 * segment of 1..63 bytes, the leaf one level of 1..63 bytes. */
int dsf_topic_parse_member(const char *topic, enum dsf_topic_family *family, char id[64],
                           char leaf[64]);

/* 1 when topic is where the agent keyed key ("ns/mci/vm") may answer an on-demand request:
 * {root}/a/{key}/reply, or below it ({root}/a/{key}/reply/x/y) with no wildcard and valid
 * UTF-8; 0 for any other topic, so a request cannot make the agent publish elsewhere. */
int dsf_topic_is_agent_reply(const char *topic, const char *key);

/* The "ns/mci/vm" part of a metrics topic (the Kafka key), or NULL for another shape. */
const char *dsf_topic_metrics_key_of(const char *topic);

/* The Kafka topic carrying an MQTT-form topic's family ("dsf.metrics", ...), or NULL. */
const char *dsf_topic_kafka(const char *topic);
/* The MQTT-form metrics topic of a Kafka metrics message: partition (the bucket) and key. */
int dsf_topic_from_kafka_metrics(char *out, size_t cap, int32_t partition, const char *key);

#endif
