/*
 * Optional aggregation per measurement: samples are folded into windows aligned to the epoch
 * (as InfluxDB's GROUP BY time(window)), one per series (measurement + full tag set), and each
 * window becomes one point stamped with the window's start. A window is emitted once its
 * series' samples have moved past its end plus a grace for late samples, once it has received
 * nothing for window + grace of wall-clock time, or on shutdown; samples for a window already
 * emitted are late: dropped and counted.
 *
 * Durability: the messages that fed a window stay unacknowledged until the window's point is
 * stored. Each message's writer marks are wrapped in a claim held by every window it fed (and
 * by its forwarded lines, if any); the claim releases the marks once all of them are stored.
 */
#ifndef DSF_COLLECTOR_AGGREGATE_H
#define DSF_COLLECTOR_AGGREGATE_H

#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "common/ingest.h"
#include "common/lp.h"

struct collector;
struct writer_mark;
struct aggregate;

/* Where emitted points go: writer_add's contract (-1: not taken, the caller counts it). */
typedef int (*aggregate_sink)(void *ctx, const char *lines, size_t len, uint32_t nlines,
                              struct writer_mark *const *marks, size_t nmarks);

/* Checks the aggregate.rules items; -1 with a message naming the rule. */
int aggregate_check_rules(const struct dsf_strlist *rules, char *err, size_t errlen);

/* sink NULL: the collector's writer. Starts the idle sweep on c->base when it is set. */
struct aggregate *aggregate_new(struct collector *c, aggregate_sink sink, void *sink_ctx, char *err,
                                size_t errlen);

/* One message: its identity and durability marks (taken over once a line is aggregated);
 * duplicate: the agent's seq says it arrived before, so its lines were folded already. */
void aggregate_begin(struct aggregate *a, const struct dsf_identity *id,
                     struct writer_mark *const *marks, size_t nmarks, int duplicate);
/* 1 when the line's measurement is aggregated (folded, or dropped as late), 0 to forward it. */
int aggregate_take(struct aggregate *a, const struct lp_line *l, int missing);
/* Ends the message. Returns how many marks the caller's forwarded lines must carry, written
 * to marks (the message's own, or one on its claim once windows hold it); forwarded: whether
 * there are such lines. */
size_t aggregate_end(struct aggregate *a, int forwarded, struct writer_mark **marks);

/* Bucket moves (MQTT, following assignments): the collector's windows are handed over
 * through the agents. Losing a bucket discards the open windows of its series and releases
 * their messages unacknowledged (the agents resend them to the new owner after their
 * buffer.ack_timeout); gaining one holds its windows that started before the gain until
 * gain + aggregate.handover, so that those resent messages still fold into them. */
void aggregate_bucket_lost(struct aggregate *a, uint32_t bucket);
void aggregate_bucket_gained(struct aggregate *a, uint32_t bucket);

/* Emits every open window (shutdown). */
void aggregate_flush(struct aggregate *a);
/* After the writer is gone: what is still held is released unacknowledged. */
void aggregate_free(struct aggregate *a);

#endif
