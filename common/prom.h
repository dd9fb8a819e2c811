/*
 * Prometheus samples in, line protocol out: the exposition text parser (scrapes), the
 * remote_write decoder (POST /api/v1/write) and the one mapping of a sample to a line that
 * both use, the one InfluxDB's own Prometheus converter applies: measurement = metric name,
 * one float field "value", every label with a value a tag, the sample's time in ns.
 */
#ifndef DSF_PROM_H
#define DSF_PROM_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/lp.h"

#define PROM_MAX_LABELS 64

struct prom_label {
    struct lp_span name, value;
    int escaped; /* value holds the text format's escapes (\\ \" \n), undone when rendered */
};

/* Spans point into the caller's input: valid only during the callback. */
struct prom_sample {
    struct lp_span name;
    struct prom_label labels[PROM_MAX_LABELS];
    uint32_t nlabels;
    double value;
    int has_ts;
    int64_t ts_ms;
};

struct prom_ops {
    void (*sample)(void *ctx, const struct prom_sample *s);
    /* A line (text format) or a sample (remote_write) not taken, with a static reason. */
    void (*reject)(void *ctx, const char *text, size_t len, const char *reason);
};

/* Appends s as one line and its newline; without a timestamp of its own it gets now_ns.
 * 0, or -1 with a static reason and nothing appended (NaN and infinities: line protocol has
 * no such floats; a name that is not a metric name). */
int prom_render_line(struct dsf_buf *out, const struct prom_sample *s, int64_t now_ns,
                     const char **reason);

/* Every sample of an exposition text body (version 0.0.4) to ops; # HELP and # TYPE lines
 * are checked and skipped, a bad line goes to ops->reject and costs nothing else. Allocates
 * nothing. Returns the number of samples passed on. */
size_t prom_text_parse(const char *text, size_t len, const struct prom_ops *ops, void *ctx);

/* A remote_write request body (snappy block format around a protobuf WriteRequest, v1):
 * every sample of every series to ops. Nothing is passed on unless the whole body decodes.
 * max_decoded caps the uncompressed size. 0, or -1 with err (not snappy, beyond the cap,
 * not a WriteRequest). */
int prom_remote_write_decode(const void *body, size_t len, size_t max_decoded,
                             const struct prom_ops *ops, void *ctx, char *err, size_t errlen);

#endif
