#include "common/topic.h"
#include "common/utf8.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

const char dsf_topic_metrics_all[] = "dsf/m/#";
const char dsf_topic_metrics_any[] = "dsf/m/+/#";
const char dsf_topic_metrics_root[] = "dsf/m/";
const char dsf_topic_agent_status_all[] = "dsf/a/+/+/+/status";
const char dsf_topic_dlq[] = "dsf/dlq";

static const struct {
    const char *prefix, *kafka;
    enum dsf_topic_family family;
} families[] = {
    {"dsf/m/", "dsf.metrics", DSF_TOPIC_METRICS},
    {"dsf/a/", "dsf.agents", DSF_TOPIC_AGENT},
    {"dsf/c/", "dsf.collectors", DSF_TOPIC_COLLECTOR},
    {"dsf/e/", "dsf.engines", DSF_TOPIC_ENGINE},
    {"dsf/alarm/", "dsf.alarms", DSF_TOPIC_ALARM},
    {"dsf/action/", "dsf.actions", DSF_TOPIC_ACTION},
    {"dsf/dlq", "dsf.dlq", DSF_TOPIC_DLQ},
};

static int fits(int n, size_t cap)
{
    return n >= 0 && (size_t)n < cap ? n : -1;
}

int dsf_topic_metrics(char *out, size_t cap, uint32_t bucket, const char *ns, const char *mci,
                      const char *vm)
{
    return fits(snprintf(out, cap, "dsf/m/%" PRIu32 "/%s/%s/%s", bucket, ns, mci, vm), cap);
}

int dsf_topic_metrics_key(char *out, size_t cap, uint32_t bucket, const char *key)
{
    return fits(snprintf(out, cap, "dsf/m/%" PRIu32 "/%s", bucket, key), cap);
}

int dsf_topic_bucket(char *out, size_t cap, uint32_t bucket)
{
    return fits(snprintf(out, cap, "dsf/m/%" PRIu32 "/#", bucket), cap);
}

int dsf_topic_bucket_prefix(char *out, size_t cap, uint32_t bucket, const char *prefix)
{
    if (!prefix)
        return dsf_topic_bucket(out, cap, bucket);
    return fits(snprintf(out, cap, "dsf/m/%" PRIu32 "/%s/#", bucket, prefix), cap);
}

static int segment_ok(const char *p, size_t n)
{
    if (n == 0 || n > DSF_TOPIC_SEGMENT_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (p[i] == '/' || p[i] == '+' || p[i] == '#' || p[i] == ' ' || p[i] == '\0')
            return 0;
    return 1;
}

int dsf_topic_prefix_ok(const char *prefix, size_t len)
{
    const char *slash = memchr(prefix, '/', len);
    if (!slash)
        return segment_ok(prefix, len);
    size_t n = (size_t)(slash - prefix);
    return segment_ok(prefix, n) && segment_ok(slash + 1, len - n - 1);
}

int dsf_topic_prefix_match(const char *prefix, const struct dsf_identity *id)
{
    size_t n = strlen(id->ns);
    if (strncmp(prefix, id->ns, n))
        return 0;
    return prefix[n] == '\0' || (prefix[n] == '/' && !strcmp(prefix + n + 1, id->mci));
}

int dsf_topic_agent(char *out, size_t cap, const char *ns, const char *mci, const char *vm,
                    const char *leaf)
{
    return fits(snprintf(out, cap, "dsf/a/%s/%s/%s/%s", ns, mci, vm, leaf), cap);
}

int dsf_topic_agent_key(char *out, size_t cap, const char *key, const char *leaf)
{
    return fits(snprintf(out, cap, "dsf/a/%s/%s", key, leaf), cap);
}

int dsf_topic_collector(char *out, size_t cap, const char *id, const char *leaf)
{
    return fits(snprintf(out, cap, "dsf/c/%s/%s", id, leaf), cap);
}

int dsf_topic_engine(char *out, size_t cap, const char *id, const char *leaf)
{
    return fits(snprintf(out, cap, "dsf/e/%s/%s", id, leaf), cap);
}

int dsf_topic_alarm(char *out, size_t cap, const char *ns, const char *mci, const char *rule)
{
    return fits(snprintf(out, cap, "dsf/alarm/%s/%s/%s", ns, mci, rule), cap);
}

/* A segment from a record's field: "_" when absent, NULL when it cannot be one. */
static const char *action_segment(const char *v)
{
    if (!v || !*v)
        return "_";
    return strlen(v) <= DSF_TOPIC_SEGMENT_MAX && !strpbrk(v, "/+#") ? v : NULL;
}

int dsf_topic_action(char *out, size_t cap, const char *ns, const char *mci)
{
    ns = action_segment(ns);
    mci = action_segment(mci);
    if (!ns || !mci)
        return -1;
    return fits(snprintf(out, cap, "dsf/action/%s/%s", ns, mci), cap);
}

enum dsf_topic_family dsf_topic_family(const char *topic)
{
    for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++)
        if (strncmp(topic, families[i].prefix, strlen(families[i].prefix)) == 0)
            return families[i].family;
    return DSF_TOPIC_OTHER;
}

/* Copies one segment of 1..63 bytes up to the next '/' (or the end); NULL when it is empty or
 * longer. */
static const char *segment(const char *p, char *out)
{
    size_t n = strcspn(p, "/");
    if (n == 0 || n > DSF_TOPIC_SEGMENT_MAX)
        return NULL;
    memcpy(out, p, n);
    out[n] = '\0';
    return p + n;
}

static const char *identity(const char *p, struct dsf_identity *id)
{
    if (!(p = segment(p, id->ns)) || *p++ != '/' || !(p = segment(p, id->mci)) || *p++ != '/')
        return NULL;
    return segment(p, id->vm);
}

/* As sscanf("dsf/m/%15[0-9]/%63[^/]/%63[^/]/%63[^/]") would take it, without its cost per
 * message. */
int dsf_topic_parse_metrics(const char *topic, struct dsf_identity *id, uint32_t *bucket)
{
    if (strncmp(topic, "dsf/m/", 6) != 0)
        return -1;
    const char *p = topic + 6;
    size_t digits = strspn(p, "0123456789");
    if (digits == 0 || digits > 15 || p[digits] != '/')
        return -1;
    if (bucket) {
        uint64_t b = 0;
        for (size_t i = 0; i < digits; i++)
            b = b * 10 + (uint64_t)(p[i] - '0');
        *bucket = b > UINT32_MAX ? UINT32_MAX : (uint32_t)b;
    }
    p = identity(p + digits + 1, id);
    return p && *p == '\0' ? 0 : -1;
}

int dsf_topic_parse_agent(const char *topic, const char *leaf, struct dsf_identity *id)
{
    if (strncmp(topic, "dsf/a/", 6) != 0)
        return -1;
    const char *p = identity(topic + 6, id);
    return p && *p == '/' && strcmp(p + 1, leaf) == 0 ? 0 : -1;
}

int dsf_topic_parse_member(const char *topic, enum dsf_topic_family *family, char id[64],
                           char leaf[64])
{
    enum dsf_topic_family f;
    if (strncmp(topic, "dsf/c/", 6) == 0)
        f = DSF_TOPIC_COLLECTOR;
    else if (strncmp(topic, "dsf/e/", 6) == 0)
        f = DSF_TOPIC_ENGINE;
    else
        return -1;
    const char *p = segment(topic + 6, id);
    if (!p || *p++ != '/' || !(p = segment(p, leaf)) || *p != '\0')
        return -1;
    if (family)
        *family = f;
    return 0;
}

int dsf_topic_is_agent_reply(const char *topic, const char *key)
{
    size_t klen = strlen(key);
    if (strncmp(topic, "dsf/a/", 6) != 0 || strncmp(topic + 6, key, klen) != 0)
        return 0;
    const char *rest = topic + 6 + klen;
    if (strncmp(rest, "/reply", 6) != 0)
        return 0;
    rest += 6;
    if (*rest == '\0')
        return 1;
    /* "reply/" alone names an empty level: refused with the rest of the malformed. */
    return *rest == '/' && rest[1] != '\0' && strpbrk(rest, "+#") == NULL &&
           utf8_valid(rest, strlen(rest));
}

const char *dsf_topic_kafka(const char *topic)
{
    for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++)
        if (strncmp(topic, families[i].prefix, strlen(families[i].prefix)) == 0)
            return families[i].kafka;
    return NULL;
}

const char *dsf_topic_metrics_key_of(const char *topic)
{
    if (strncmp(topic, "dsf/m/", 6) != 0)
        return NULL;
    const char *p = topic + 6 + strspn(topic + 6, "0123456789");
    return *p == '/' && p[1] != '\0' ? p + 1 : NULL;
}

int dsf_topic_from_kafka_metrics(char *out, size_t cap, int32_t partition, const char *key)
{
    return fits(snprintf(out, cap, "dsf/m/%" PRId32 "/%s", partition, key), cap);
}
