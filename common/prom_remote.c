/* A Prometheus remote_write request (v1): a snappy block around a protobuf WriteRequest. The
 * uncompressed length, which the snappy header states, is checked against the cap before
 * anything is allocated; the whole request is decoded before any sample is passed on. */
#include <snappy-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/prom.h"
#include "schemas/prometheus/remote.pb-c.h"

static struct lp_span span_of(ProtobufCBinaryData d)
{
    return (struct lp_span){(const char *)d.data, (uint32_t)d.len};
}

static int span_eq(struct lp_span a, struct lp_span b)
{
    return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

/* The series' labels into s (its name apart): 0, or -1 with a reason. */
static int take_labels(const Prometheus__TimeSeries *ts, struct prom_sample *s, const char **reason)
{
    static const struct lp_span name_label = {"__name__", 8};
    int named = 0;
    s->nlabels = 0;
    for (size_t i = 0; i < ts->n_labels; i++) {
        struct lp_span name = span_of(ts->labels[i]->name);
        struct lp_span value = span_of(ts->labels[i]->value);
        if (name.n > UINT32_MAX / 2 || value.n > UINT32_MAX / 2) {
            *reason = "label too long";
            return -1;
        }
        for (size_t j = 0; j < i; j++)
            if (span_eq(name, span_of(ts->labels[j]->name))) {
                *reason = "duplicate label name";
                return -1;
            }
        if (span_eq(name, name_label)) {
            s->name = value;
            named = 1;
            continue;
        }
        if (s->nlabels >= PROM_MAX_LABELS) {
            *reason = "too many labels";
            return -1;
        }
        s->labels[s->nlabels++] = (struct prom_label){.name = name, .value = value};
    }
    if (!named)
        *reason = "series without __name__";
    return named ? 0 : -1;
}

static void pass_series(const Prometheus__TimeSeries *ts, struct prom_sample *s,
                        const struct prom_ops *ops, void *ctx)
{
    const char *reason = NULL;
    s->name = (struct lp_span){"", 0};
    if (take_labels(ts, s, &reason)) {
        for (size_t i = 0; i < ts->n_samples; i++)
            ops->reject(ctx, s->name.p, s->name.n, reason);
        return;
    }
    s->has_ts = 1;
    for (size_t i = 0; i < ts->n_samples; i++) {
        s->value = ts->samples[i]->value;
        s->ts_ms = ts->samples[i]->timestamp;
        ops->sample(ctx, s);
    }
}

static char *uncompress(const void *body, size_t len, size_t max_decoded, size_t *out_len,
                        char *err, size_t errlen)
{
    size_t n;
    if (snappy_uncompressed_length(body, len, &n) != SNAPPY_OK ||
        snappy_validate_compressed_buffer(body, len) != SNAPPY_OK) {
        snprintf(err, errlen, "body is not snappy-compressed (block format)");
        return NULL;
    }
    if (n > max_decoded) {
        snprintf(err, errlen, "uncompressed body of %zu bytes is beyond the cap of %zu", n,
                 max_decoded);
        return NULL;
    }
    char *raw = malloc(n ? n : 1);
    if (!raw || snappy_uncompress(body, len, raw, &n) != SNAPPY_OK) {
        snprintf(err, errlen, raw ? "snappy body does not decompress" : "out of memory");
        free(raw);
        return NULL;
    }
    *out_len = n;
    return raw;
}

int prom_remote_write_decode(const void *body, size_t len, size_t max_decoded,
                             const struct prom_ops *ops, void *ctx, char *err, size_t errlen)
{
    size_t raw_len = 0;
    char *raw = uncompress(body, len, max_decoded, &raw_len, err, errlen);
    if (!raw)
        return -1;
    Prometheus__WriteRequest *req =
        prometheus__write_request__unpack(NULL, raw_len, (const uint8_t *)raw);
    if (!req) {
        snprintf(err, errlen, "body is not a protobuf WriteRequest");
        free(raw);
        return -1;
    }
    struct prom_sample *sample = malloc(sizeof(*sample));
    if (!sample) {
        snprintf(err, errlen, "out of memory");
        prometheus__write_request__free_unpacked(req, NULL);
        free(raw);
        return -1;
    }
    for (size_t i = 0; i < req->n_timeseries; i++)
        pass_series(req->timeseries[i], sample, ops, ctx);
    free(sample);
    prometheus__write_request__free_unpacked(req, NULL);
    free(raw);
    return 0;
}
