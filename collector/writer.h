/*
 * Batches lines for the time-series store (InfluxDB v1, v2/v3 or VictoriaMetrics line
 * protocol over HTTP) and reports each message durable once every line of it is stored.
 * Several requests are in flight; failures are retried with exponential backoff and
 * jitter, honouring Retry-After; a 400 is narrowed down by halving until the bad lines are
 * found, which go to the DLQ while the rest are stored. With spool.dir set, a batch the
 * store fails to take goes to the disk spool and counts as durable; from then on new batches
 * queue behind it on disk, and the spool is replayed oldest first, one batch at a time, until
 * it is empty and writes go straight to the store again.
 */
#ifndef DSF_COLLECTOR_WRITER_H
#define DSF_COLLECTOR_WRITER_H

#include <stddef.h>
#include <stdint.h>

struct collector;
struct progress;
struct writer;

/* One message's claim on durability: the writer calls ops->done once all the message's lines
 * are stored (or refused for good and sent to the DLQ), ops->abandon if it never takes them. */
struct writer_mark_ops {
    void (*done)(void *owner, uint64_t value, const char *tag);
    void (*abandon)(void *owner, uint64_t value, const char *tag);
};
struct writer_mark;
struct writer_mark *writer_mark_new(const struct writer_mark_ops *ops, void *owner, uint64_t value,
                                    const char *tag);

/* For messages the writer never took: done (nothing to store) or abandoned (dropped). */
void writer_marks_done(struct writer_mark *const *marks, size_t n);
void writer_marks_abandon(struct writer_mark *const *marks, size_t n);

/* The store's write URL for the output.* settings (query values percent-encoded), and the
 * gzip decision (output.gzip=auto: on unless the store's host is loopback) in c->output.gzip.
 * 0, or -1 with err. */
struct collector_config;
int writer_output_target(struct collector_config *c, char *url, size_t cap, char *err,
                         size_t errlen);
struct writer *writer_new(struct collector *c, char *err, size_t errlen);
/* Adds lines (each ending with '\n') and the marks they complete. -1 when the writer holds
 * too much already: nothing was taken, the caller counts the drop and does not ack. */
int writer_add(struct writer *w, const char *lines, size_t len, uint32_t nlines,
               struct writer_mark *const *marks, size_t nmarks);
void writer_flush(struct writer *w);
uint64_t writer_pending_bytes(const struct writer *w);
/* The disk spool (spool.dir), NULL when off. */
const struct spool *writer_spool(const struct writer *w);
/* Age of the samples when the store accepted them (seconds, weighted by points). */
struct dsf_histogram;
const struct dsf_histogram *writer_age_histogram(const struct writer *w);
void writer_free(struct writer *w);

#endif
