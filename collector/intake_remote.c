/*
 * Prometheus remote_write (intake.remote_write): the body of a POST /api/v1/write, a snappy
 * block around a protobuf WriteRequest, as line protocol for the intake's write path
 * (intake_influx.c answers, stores and counts the request like a /write). Each sample is
 * mapped the way InfluxDB's own Prometheus converter maps it (common/prom.h); a sample that
 * has no line protocol (NaN, infinities: staleness markers among them) or a series without a
 * name is dropped and counted by reason, as InfluxDB drops them.
 */
#define DSF_MODULE "intake"
#include "collector/collector.h"
#include "common/loop.h"
#include "common/prom.h"

#include <snappy-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* common/prom's reasons, by the label they are counted under; "other" last. */
static const char *const reason_texts[] = {"NaN value",
                                           "+Inf value",
                                           "-Inf value",
                                           "series without __name__",
                                           "duplicate label name",
                                           "too many labels",
                                           "invalid metric name",
                                           "line break or NUL in a label",
                                           "label not UTF-8",
                                           "empty label name",
                                           "label too long",
                                           "timestamp out of range",
                                           "line too long"};
#define REASONS (sizeof(reason_texts) / sizeof(reason_texts[0]) + 1)
static const char *const reason_labels[REASONS] = {"nan",
                                                   "inf",
                                                   "ninf",
                                                   "no_name",
                                                   "duplicate_label",
                                                   "too_many_labels",
                                                   "invalid_name",
                                                   "label_line_break",
                                                   "label_not_utf8",
                                                   "empty_label_name",
                                                   "label_too_long",
                                                   "timestamp_range",
                                                   "line_too_long",
                                                   "other"};

struct intake_remote {
    uint64_t samples, rejected[REASONS];
};

struct decoding {
    struct intake_remote *r;
    struct dsf_buf *lines;
    int64_t now_ns;
};

static void count_rejected(struct intake_remote *r, const char *reason)
{
    size_t i = 0;
    while (i < REASONS - 1 && strcmp(reason, reason_texts[i]) != 0)
        i++;
    r->rejected[i]++;
}

static void take_sample(void *ctx, const struct prom_sample *s)
{
    struct decoding *d = ctx;
    const char *reason;
    d->r->samples++;
    if (prom_render_line(d->lines, s, d->now_ns, &reason))
        count_rejected(d->r, reason);
}

static void reject_sample(void *ctx, const char *text, size_t len, const char *reason)
{
    struct decoding *d = ctx;
    (void)text;
    (void)len;
    d->r->samples++;
    count_rejected(d->r, reason);
}

int intake_remote_lines(struct collector *c, const char *body, size_t len, struct dsf_buf *lines,
                        char *err, size_t errlen)
{
    size_t decoded;
    uint64_t cap = c->cfg.intake.max_decoded;
    if (snappy_uncompressed_length(body, len, &decoded) == SNAPPY_OK && decoded > cap) {
        snprintf(err, errlen, "decompressed body larger than intake.max_decoded");
        return 1;
    }
    static const struct prom_ops ops = {take_sample, reject_sample};
    struct decoding d = {c->remote, lines, dsf_now_ns()};
    buf_reset(lines);
    if (prom_remote_write_decode(body, len, cap, &ops, &d, err, errlen))
        return -1;
    return lines->oom ? (snprintf(err, errlen, "out of memory"), -1) : 0;
}

int intake_remote_start(struct collector *c)
{
    c->remote = calloc(1, sizeof(*c->remote));
    if (!c->remote)
        return -1;
    struct dsf_metrics *m = &c->metrics;
    metrics_add_u64(m, "damselfly_collector_remote_write_samples_total", DSF_COUNTER,
                    "Samples received on POST /api/v1/write (intake.remote_write), stored or not.",
                    NULL, &c->remote->samples);
    metrics_add_u64_by(m, "damselfly_collector_remote_write_samples_rejected_total", DSF_COUNTER,
                       "Samples of POST /api/v1/write not stored, by reason: nan, inf, ninf "
                       "(no such floats in line protocol; Prometheus' staleness markers are "
                       "NaN), no_name (a series without __name__), a label that cannot be a "
                       "tag, a timestamp beyond the ns range.",
                       "reason", reason_labels, REASONS, c->remote->rejected);
    return 0;
}

void intake_remote_free(struct collector *c)
{
    free(c->remote);
    c->remote = NULL;
}
