/*
 * One message in: check the topic, account for the agent's seq, validate every line
 * (rejected lines go to the DLQ with a reason and are counted; the rest of the batch is
 * kept), confirm or add the identity tags, keep the sample's timestamp, and hand the lines
 * with the message's durability claims to the writer. HTTP writes (InfluxDB's API, remote
 * write) take the same way from the validation on, without a topic or identity.
 */
#define DSF_MODULE "pipeline"
#include "collector/aggregate.h"
#include "collector/agents.h"
#include "collector/collector.h"
#include "collector/writer.h"
#include "common/bucket.h"
#include "common/bus.h"
#include "common/ingest.h"
#include "common/log.h"
#include "common/loop.h"
#include "common/lp.h"
#include "common/metric_json.h"
#include "common/point.h"
#include "common/topic.h"
#include "common/utf8.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct ingest intake_state; /* large; the loop is single-threaded */

void pipeline_reject(struct collector *c, const char *topic, const char *text, size_t len,
                     const char *reason)
{
    c->stats.lines_rejected++;
    struct dsf_buf *out = &c->scratch_dlq;
    buf_reset(out);
    buf_puts(out, "{\"reason\":");
    json_put_string(out, reason);
    buf_puts(out, ",\"topic\":");
    json_put_string(out, topic);
    buf_printf(out, ",\"collector\":");
    json_put_string(out, c->cfg.id);
    buf_puts(out, ",\"line\":");
    char *copy = strndup(text, len > 4096 ? 4096 : len); /* NUL bytes end it: fine for a DLQ */
    json_put_string(out, copy ? copy : "");
    free(copy);
    buf_printf(out, ",\"truncated\":%s}", len > 4096 ? "true" : "false");
    const char *dlq = *c->cfg.dlq_topic ? c->cfg.dlq_topic : dsf_topic_dlq;
    struct dsf_bus_message m = {.topic = dlq, .payload = out->data, .len = out->len};
    if (c->bus && dsf_bus_publish(c->bus, &m, 1, 0, 0) == 0)
        c->stats.dlq_published++;
    else
        c->stats.dlq_dropped++;
    log_debug("rejected a line from %s: %s", topic, reason);
}

struct intake {
    struct collector *c;
    struct pipeline_batch *b;
    struct dsf_buf *out;
    int64_t now_ns;
};

static void take_line(void *ctx, const char *text, size_t len, const struct lp_line *l, int missing)
{
    struct intake *in = ctx;
    struct collector *c = in->c;
    c->stats.lines_in++;
    c->stats.source_in[in->b->source]++;
    int64_t limit = c->cfg.skew_ms * 1000000LL; /* no difference: extreme times overflow it */
    if (l->ts > in->now_ns + limit || l->ts < in->now_ns - limit)
        c->stats.skewed++; /* flagged and counted, still stored: it is the sample's time */
    if (c->agg && in->b->id && aggregate_take(c->agg, l, missing))
        return;
    ingest_render_line(in->out, text, len, l, in->b->id, missing);
    in->b->lines++;
}

static void reject_line(void *ctx, const char *text, size_t len, const char *reason)
{
    struct intake *in = ctx;
    struct pipeline_batch *b = in->b;
    in->c->stats.lines_in++;
    in->c->stats.source_in[b->source]++;
    in->c->stats.source_rejected[b->source]++;
    if (!b->rejected++) { /* quoted in a JSON answer: valid UTF-8 whatever the line holds */
        char shown[260];
        utf8_printable(text, len, shown, sizeof(shown));
        snprintf(b->first_bad, sizeof(b->first_bad), "unable to parse '%s': %s", shown, reason);
    }
    pipeline_reject(in->c, b->origin, text, len, reason);
}

static const struct ingest_ops intake_ops = {take_line, reject_line};

const char *const pipeline_source_names[PIPELINE_SOURCES] = {
    [PIPELINE_BUS] = "bus",
    [PIPELINE_INFLUX] = "influx",
    [PIPELINE_REMOTE_WRITE] = "remote_write",
};

int pipeline_take(struct collector *c, struct pipeline_batch *b, struct writer_mark **marks,
                  size_t nmarks)
{
    int aggregating = c->agg && b->id; /* windows are per agent: HTTP lines go as they are */
    if (aggregating)                   /* windows take over the marks of the messages they fold */
        aggregate_begin(c->agg, b->id, marks, nmarks, b->duplicate);
    buf_reset(&c->scratch);
    struct intake in = {c, b, &c->scratch, dsf_now_ns()};
    intake_state.check_only = !c->agg; /* forwarding needs the lines checked, not converted */
    intake_state.ts_unit_ns = b->ts_unit_ns;
    intake_state.stamp_ns = b->stamp_ns;
    ingest_message(&intake_state, b->fmt, b->payload, b->len, b->id, &intake_ops, &in);
    if (aggregating)
        nmarks = aggregate_end(c->agg, b->lines > 0, marks);
    if (b->lines == 0) {
        writer_marks_done(marks, nmarks); /* nothing to store: its bad lines are in the DLQ */
        return 0;
    }
    if (writer_add(c->writer, c->scratch.data, c->scratch.len, b->lines, marks, nmarks)) {
        static struct dsf_log_limit limit;
        c->stats.dropped_lines += b->lines;
        if (dsf_log_due(&limit, NULL))
            log_warn("the writer is full (%llu bytes pending): %u lines of %s dropped, not "
                     "acknowledged (the sender sends them again)",
                     (unsigned long long)writer_pending_bytes(c->writer), b->lines, b->origin);
        writer_marks_abandon(marks, nmarks);
        return -1;
    }
    return 0;
}

static void agent_stored(void *owner, uint64_t seq, const char *boot)
{
    agents_stored(owner, seq, boot);
}

static void offset_stored(void *owner, uint64_t slot, const char *tag)
{
    progress_done(owner, slot);
}

static void offset_abandoned(void *owner, uint64_t slot, const char *tag)
{
    progress_abandon(owner, slot);
}

/* A dropped MQTT message needs nothing: unacked, the agent sends it again. */
static const struct writer_mark_ops agent_mark = {agent_stored, NULL};
/* Kafka commits are cumulative: an offset not stored holds the commit point back. */
static const struct writer_mark_ops offset_mark = {offset_stored, offset_abandoned};

/* The message's claims: the agent's seq (MQTT) or the partition offset (Kafka). Without
 * agent, or beyond the JSON integers agents read, the seq is not acked. */
static size_t claim(struct collector *c, const struct collector_message *m,
                    struct agent_state *agent, struct writer_mark **marks)
{
    size_t n = 0;
    if (agent && m->has_seq && m->seq <= INT64_MAX && m->boot && m->partition < 0) {
        if ((marks[n] = writer_mark_new(&agent_mark, agent, m->seq, m->boot)))
            n++;
    }
    if (m->partition >= 0) {
        struct progress *p = collector_partition(c, m->partition);
        uint64_t slot = p ? progress_push(p, (uint64_t)m->offset, "") : UINT64_MAX;
        if (slot != UINT64_MAX && (marks[n] = writer_mark_new(&offset_mark, p, slot, "")))
            n++;
    }
    return n;
}

const char *const collector_refused_names[COLLECTOR_REFUSED_REASONS] = {
    [REFUSED_BAD_TOPIC] = "bad_topic",
    [REFUSED_WRONG_BUCKET] = "wrong_bucket",
    [REFUSED_BAD_SEQ] = "bad_seq",
    [REFUSED_BAD_BOOT] = "bad_boot",
};

/* A whole message refused for good: on the DLQ with the reason, counted. A Kafka offset counts
 * as done (the commit passes it); an MQTT message is not acked: no false ack for a seq and
 * boot the collector does not trust. */
static void refuse(struct collector *c, const struct collector_message *m,
                   enum collector_refused why, const char *reason)
{
    c->stats.lines_in++;
    c->stats.refused[why]++;
    pipeline_reject(c, m->topic, m->payload, m->len, reason);
    if (m->partition >= 0) {
        struct writer_mark *mark[1];
        if (claim(c, m, NULL, mark))
            writer_marks_done(mark, 1);
    }
}

static int is_boot(const char *boot)
{
    return strlen(boot) == 16 && strspn(boot, "0123456789abcdefABCDEF") == 16;
}

/* The topic, the bucket and the seq and boot properties; 0, or -1 once refused. */
static int admit(struct collector *c, const struct collector_message *m, struct dsf_identity *id)
{
    uint32_t bucket;
    char why[400];
    if (dsf_topic_parse_metrics(m->topic, id, &bucket)) {
        refuse(c, m, REFUSED_BAD_TOPIC, "topic is not dsf/m/{bucket}/{ns}/{mci}/{vm}");
        return -1;
    }
    if (m->partition < 0 && !dsf_follow_owns(&c->follow, bucket, id)) {
        /* A session's leftover queue, the overlap of a move, or a tenant prefix a dedicated
         * pool owns: the owner stores and acks it; not acked here, the agent resends it to
         * the owner. Not a reject: no DLQ. */
        c->stats.unowned++;
        log_debug("%s: bucket %" PRIu32 " (or its prefix) is not owned: dropped, not acked",
                  m->topic, bucket);
        return -1;
    }
    if (dsf_bucket_check(id, bucket, (uint32_t)c->cfg.mqtt.buckets_total, why, sizeof(why))) {
        refuse(c, m, REFUSED_WRONG_BUCKET, why);
        return -1;
    }
    if (m->seq_invalid || (m->has_seq && m->seq == 0)) {
        refuse(c, m, REFUSED_BAD_SEQ, "property seq is not a number from 1 to 2^64-1");
        return -1;
    }
    if (m->boot && !is_boot(m->boot)) {
        refuse(c, m, REFUSED_BAD_BOOT, "property boot is not 16 hex digits");
        return -1;
    }
    return 0;
}

/* Stored like any message of that agent (it passed the broker's ACL as that agent), but it
 * does not move the agent's seq tracking: later messages are not taken for duplicates. */
static void note_suspect(struct collector *c, const struct agent_state *agent,
                         const struct collector_message *m)
{
    static struct dsf_log_limit limit;
    c->stats.seq_suspect++;
    if (!dsf_log_due(&limit, NULL))
        return; /* the counter has the rest */
    log_warn("%s: seq %llu (boot %s) is more than agents.max_seq_jump=%lld from the agent's last "
             "seq %llu: stored, not acked, ignored by its seq tracking (%llu suspect so far)",
             m->topic, (unsigned long long)m->seq, m->boot, (long long)c->cfg.agents.max_seq_jump,
             (unsigned long long)agent->run.last_seq, (unsigned long long)c->stats.seq_suspect);
}

void pipeline_handle(struct collector *c, const struct collector_message *m)
{
    struct dsf_identity id;
    c->stats.messages++;
    c->stats.bytes_in += m->len;
    if (admit(c, m, &id))
        return;
    struct agent_state *agent = agents_get(c->agents, id.ns, id.mci, id.vm);
    enum agent_seq verdict = AGENT_SEQ_NEXT;
    if (agent && m->has_seq)
        verdict = agents_track(agent, m->boot, m->seq, (uint64_t)c->cfg.agents.max_seq_jump);
    if (verdict == AGENT_SEQ_SUSPECT)
        note_suspect(c, agent, m);
    struct writer_mark *marks[2];
    /* A suspect seq is stored but not acked: the collector cannot vouch that the agent sent
     * it, and an ack naming it could only release what the agent holds under that seq. */
    size_t nmarks = claim(c, m, verdict == AGENT_SEQ_SUSPECT ? NULL : agent, marks);
    struct pipeline_batch b = {.source = PIPELINE_BUS,
                               .origin = m->topic,
                               .id = &id,
                               .fmt = m->fmt,
                               .payload = m->payload,
                               .len = m->len,
                               .duplicate = verdict == AGENT_SEQ_DUPLICATE};
    pipeline_take(c, &b, marks, nmarks);
    collector_backpressure(c);
}
