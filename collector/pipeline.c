/*
 * One message in: check the topic, account for the agent's seq, validate every line
 * (rejected lines go to the DLQ with a reason and are counted; the rest of the batch is
 * kept), confirm or add the identity tags, keep the sample's timestamp, and hand the lines
 * with the message's durability claims to the writer.
 */
#define DSF_MODULE "pipeline"
#include "collector/agents.h"
#include "collector/collector.h"
#include "collector/writer.h"
#include "common/bus.h"
#include "common/log.h"
#include "common/loop.h"
#include "common/lp.h"
#include "common/metric_json.h"
#include "common/point.h"
#include "common/utf8.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LINE (64 * 1024)

struct identity {
    char ns[64], mci[64], vm[64];
};

static struct lp_line line; /* large; the loop is single-threaded */

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
    struct dsf_bus_message m = {.topic = c->cfg.dlq_topic, .payload = out->data, .len = out->len};
    if (c->bus && dsf_bus_publish(c->bus, &m, 1, 0, 0) == 0)
        c->stats.dlq_published++;
    else
        c->stats.dlq_dropped++;
    log_debug("rejected a line from %s: %s", topic, reason);
}

/* dsf/m/{bucket}/{ns}/{mci}/{vm} */
static int parse_topic(const char *topic, struct identity *id)
{
    char b[16];
    int used = 0;
    if (sscanf(topic, "dsf/m/%15[0-9]/%63[^/]/%63[^/]/%63[^/]%n", b, id->ns, id->mci, id->vm,
               &used) != 4)
        return -1;
    return topic[used] == '\0' ? 0 : -1;
}

static const char *check_utf8(const struct lp_line *l)
{
    if (!utf8_valid(l->measurement.p, l->measurement.n))
        return "invalid UTF-8 in the measurement";
    for (uint32_t i = 0; i < l->ntags; i++)
        if (!utf8_valid(l->tags[i].key.p, l->tags[i].key.n) ||
            !utf8_valid(l->tags[i].val.p, l->tags[i].val.n))
            return "invalid UTF-8 in a tag";
    for (uint32_t i = 0; i < l->nfields; i++)
        if (!utf8_valid(l->fields[i].key.p, l->fields[i].key.n) ||
            (l->fields[i].type == DSF_V_STR && !utf8_valid(l->fields[i].val.p, l->fields[i].val.n)))
            return "invalid UTF-8 in a field";
    return NULL;
}

static int span_is(struct lp_span sp, const char *s)
{
    size_t n = strlen(s);
    return sp.n == n && memcmp(sp.p, s, n) == 0;
}

/* Identity tags must agree with the topic; those missing are added. Returns NULL or a
 * reason; *missing gets a bit per tag to add (1 ns, 2 mci, 4 vm). */
static const char *check_identity(const struct lp_line *l, const struct identity *id, int *missing)
{
    const char *keys[3] = {"ns", "mci", "vm"};
    const char *want[3] = {id->ns, id->mci, id->vm};
    *missing = 7;
    for (uint32_t i = 0; i < l->ntags; i++) {
        for (int k = 0; k < 3; k++) {
            if (!span_is(l->tags[i].key, keys[k]))
                continue;
            char val[128];
            lp_unescape(l->tags[i].val, 0, val, sizeof(val));
            if (strcmp(val, want[k]) != 0)
                return k == 0   ? "tag ns disagrees with the topic"
                       : k == 1 ? "tag mci disagrees with the topic"
                                : "tag vm disagrees with the topic";
            *missing &= ~(1 << k);
        }
    }
    return NULL;
}

/* Appends the line, inserting missing identity tags after the existing ones. */
static void emit(struct dsf_buf *out, const char *text, size_t len, const struct lp_line *l,
                 const struct identity *id, int missing)
{
    if (!missing) {
        buf_put(out, text, len);
        buf_putc(out, '\n');
        return;
    }
    const char *tags_end = l->ntags ? l->tags[l->ntags - 1].val.p + l->tags[l->ntags - 1].val.n
                                    : l->measurement.p + l->measurement.n;
    buf_put(out, text, (size_t)(tags_end - text));
    const char *keys[3] = {"ns", "mci", "vm"};
    const char *vals[3] = {id->ns, id->mci, id->vm};
    for (int k = 0; k < 3; k++) {
        if (!(missing & (1 << k)))
            continue;
        buf_putc(out, ',');
        buf_puts(out, keys[k]);
        buf_putc(out, '=');
        lp_put_key(out, vals[k]);
    }
    buf_put(out, tags_end, len - (size_t)(tags_end - text));
    buf_putc(out, '\n');
}

struct intake {
    struct collector *c;
    const char *topic;
    const struct identity *id;
    struct dsf_buf *out;
    uint32_t lines;
    int64_t now_ns;
};

static void take_line(struct intake *in, const char *text, size_t len)
{
    struct collector *c = in->c;
    while (len && (text[len - 1] == '\r' || text[len - 1] == ' '))
        len--;
    if (!len || text[0] == '#')
        return;
    c->stats.lines_in++;
    const char *reason = NULL;
    int missing = 0;
    if (len > MAX_LINE)
        reason = "line longer than 64 KiB";
    else if (lp_parse_line(text, len, &line, &reason))
        ;
    else if (!line.has_ts)
        reason = "no timestamp (the collector keeps sample times and never stamps its own)";
    else if (!(reason = check_utf8(&line)))
        reason = check_identity(&line, in->id, &missing);
    if (reason) {
        pipeline_reject(c, in->topic, text, len, reason);
        return;
    }
    int64_t skew = line.ts - in->now_ns;
    if (skew > c->cfg.skew_ms * 1000000LL || -skew > c->cfg.skew_ms * 1000000LL)
        c->stats.skewed++; /* flagged and counted, still stored: it is the sample's time */
    emit(in->out, text, len, &line, in->id, missing);
    in->lines++;
}

static void take_lp(struct intake *in, const char *p, size_t n)
{
    const char *end = p + n;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        take_line(in, p, len);
        p += len + 1;
    }
}

static void add_json_value(struct dsf_batch *b, const char *key, json_t *v)
{
    if (json_is_integer(v))
        batch_field_i(b, key, json_integer_value(v));
    else if (json_is_real(v))
        batch_field_f(b, key, json_real_value(v));
    else if (json_is_boolean(v))
        batch_field_b(b, key, json_is_true(v));
    else if (json_is_string(v))
        batch_field_s(b, key, json_string_value(v));
}

/* JSON points (schemas/metric.schema.json) become line protocol and take the same path. */
static void take_json(struct intake *in, const char *p, size_t n)
{
    json_error_t jerr;
    json_t *root = json_loadb(p, n, 0, &jerr);
    if (!json_is_array(root)) {
        char reason[200];
        snprintf(reason, sizeof(reason), "not a JSON array of points: %s", jerr.text);
        in->c->stats.lines_in++;
        pipeline_reject(in->c, in->topic, p, n, reason);
        json_decref(root);
        return;
    }
    static struct dsf_batch b;
    static struct dsf_buf one;
    size_t i;
    json_t *pt;
    json_array_foreach(root, i, pt)
    {
        json_t *name = json_object_get(pt, "name"), *ts = json_object_get(pt, "timestamp");
        batch_reset(&b);
        buf_reset(&one);
        if (json_is_string(name) && json_is_integer(ts)) {
            batch_begin(&b, json_string_value(name), json_integer_value(ts));
            const char *k;
            json_t *v;
            json_object_foreach(json_object_get(pt, "tags"), k, v) if (json_is_string(v))
                batch_tag(&b, k, json_string_value(v));
            json_object_foreach(json_object_get(pt, "fields"), k, v) add_json_value(&b, k, v);
            batch_end(&b);
        }
        if (b.npoints)
            lp_render_point(&one, &b, &b.points[0], NULL);
        else
            buf_puts(&one, "invalid JSON point: needs name, timestamp and fields\n");
        take_line(in, one.data, one.len - 1);
    }
    json_decref(root);
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

/* The message's claims: the agent's seq (MQTT) or the partition offset (Kafka). */
static size_t claim(struct collector *c, const struct collector_message *m,
                    struct agent_state *agent, struct writer_mark **marks)
{
    size_t n = 0;
    if (agent && m->has_seq && m->boot && m->partition < 0) {
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

void pipeline_handle(struct collector *c, const struct collector_message *m)
{
    struct identity id;
    c->stats.messages++;
    c->stats.bytes_in += m->len;
    if (parse_topic(m->topic, &id)) {
        c->stats.lines_in++;
        pipeline_reject(c, m->topic, m->payload, m->len,
                        "topic is not dsf/m/{bucket}/{ns}/{mci}/{vm}");
        return;
    }
    struct agent_state *agent = agents_get(c->agents, id.ns, id.mci, id.vm);
    if (agent && m->has_seq)
        agents_track(agent, m->boot, m->seq);
    buf_reset(&c->scratch);
    struct intake in = {c, m->topic, &id, &c->scratch, 0, dsf_now_ns()};
    if (m->fmt && strcmp(m->fmt, "json") == 0)
        take_json(&in, m->payload, m->len);
    else
        take_lp(&in, m->payload, m->len);
    struct writer_mark *marks[2];
    size_t nmarks = claim(c, m, agent, marks);
    if (in.lines == 0) {
        writer_marks_done(marks, nmarks); /* nothing to store: its bad lines are in the DLQ */
        return;
    }
    if (writer_add(c->writer, c->scratch.data, c->scratch.len, in.lines, marks, nmarks)) {
        c->stats.dropped_lines += in.lines;
        log_warn("the writer is full (%llu bytes pending): %u lines of %s dropped, not acked "
                 "(the agent sends them again)",
                 (unsigned long long)writer_pending_bytes(c->writer), in.lines, m->topic);
        writer_marks_abandon(marks, nmarks);
    }
}
