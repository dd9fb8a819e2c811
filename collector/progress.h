/*
 * Durable progress of one ordered stream: an agent's messages (value = seq) or a Kafka
 * partition (value = offset). Messages are pushed in arrival order and marked done when the
 * store has them, in any order; the durable point advances over the done prefix only, so
 * an ack or an offset commit never covers a message still in flight.
 */
#ifndef DSF_COLLECTOR_PROGRESS_H
#define DSF_COLLECTOR_PROGRESS_H

#include <stddef.h>
#include <stdint.h>

struct progress_entry {
    uint64_t value;
    char tag[17];  /* the agent's boot id */
    uint8_t state; /* PENDING, DONE or ABANDONED */
};

struct progress {
    struct progress_entry *ring;
    size_t head, count, cap;
    uint64_t first_slot; /* slot number of ring[head] */
    uint64_t durable;    /* highest value of the done prefix */
    char durable_tag[17];
    int has_durable, dirty;
};

/* Returns the slot to pass to progress_done, or UINT64_MAX when out of memory. */
uint64_t progress_push(struct progress *p, uint64_t value, const char *tag);
void progress_done(struct progress *p, uint64_t slot);
/* The message was not stored (the collector could not take it): it holds the durable point
 * back until a later copy of it (same value and tag: the agent's resend) is done. */
void progress_abandon(struct progress *p, uint64_t slot);
size_t progress_pending(const struct progress *p);
void progress_free(struct progress *p);

#endif
