/*
 * A series' sliding window: its samples in arrival order in a ring that grows to the
 * working size once and is then reused, so a steady stream allocates nothing.
 */
#ifndef DSF_ALARM_WINDOW_H
#define DSF_ALARM_WINDOW_H

#include <stdint.h>

#include "alarm/rule.h"

#define WINDOW_MAX_SAMPLES 65536

struct sample {
    int64_t ts;
    double v;
};

struct window {
    struct sample *s;
    uint32_t head, n, cap;
};

/* Adds a sample and drops those older than span_ns before the newest. Returns the number of
 * samples dropped because the window was full (counted by the caller). */
uint32_t window_push(struct window *w, int64_t ts, double v, int64_t span_ns);
/* Reduces the window; 0, or -1 when it cannot say yet (rate with fewer than two samples).
 * scratch holds at least w->n doubles for percentiles. */
int window_reduce(const struct window *w, enum rule_reducer red, double pct, double *scratch,
                  double *out);
void window_free(struct window *w);

#endif
