/*
 * Events (alarm state changes, the controller's actions) into InfluxDB 1.x as line protocol:
 * batched, one request at a time, retried with backoff while the store is away; what exceeds
 * output.max_pending is dropped and counted. Its keys are declared once here, under the
 * prefix "output", and embedded by each component that writes events.
 */
#ifndef DSF_EVENT_STORE_H
#define DSF_EVENT_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "common/config.h"

struct event_base;

struct dsf_event_store_config {
    char *url, *db, *username, *password;
    int64_t timeout_ms, interval_ms;
    uint64_t max_pending;
};

/* url, db, username, password, timeout, interval, max_pending (without the prefix). */
extern const struct dsf_cfg_key dsf_event_store_keys[];

/* The "output" section on cfg, with the component's defaults ("key=value", NULL-terminated,
 * or NULL). Returns the number of sections written (1). */
size_t dsf_event_store_sections(struct dsf_cfg_section *out, struct dsf_event_store_config *cfg,
                                const char *const *defaults);

/* Points (lines) by outcome; every line handed in ends in exactly one of the three. */
struct dsf_event_store_stats {
    uint64_t points;         /* written */
    uint64_t failed_points;  /* refused by the store (4xx but 429) or never sent */
    uint64_t dropped_points; /* beyond max_pending, or still pending at free */
    uint64_t requests;       /* answered write requests */
};

struct dsf_event_store;

/* cfg (its url set) and stats must outlive the store; stats is updated in place (atomic
 * adds). NULL with err naming what failed. */
struct dsf_event_store *dsf_event_store_new(struct event_base *base,
                                            const struct dsf_event_store_config *cfg,
                                            struct dsf_event_store_stats *stats, char *err,
                                            size_t errlen);
/* Queues whole lines (each ending with '\n'). */
void dsf_event_store_add(struct dsf_event_store *s, const char *lines, size_t len);
/* Writes what is pending now; idle once the store has answered for everything. */
void dsf_event_store_flush(struct dsf_event_store *s);
int dsf_event_store_idle(const struct dsf_event_store *s);
/* Cancels what is in flight: that and what is pending are counted as dropped. */
void dsf_event_store_free(struct dsf_event_store *s);

#endif
