/*
 * Messages kept until they are confirmed: by the broker's ack, or (buffer.ack=collector)
 * by the collector's end-to-end ack once the data is durable. Bounded in bytes: when full,
 * the oldest messages are dropped and counted. Entries released are kept on a short free
 * list, so steady state (one message in flight per cycle) allocates nothing.
 */
#ifndef DSF_AGENT_BUFFER_H
#define DSF_AGENT_BUFFER_H

#include <stddef.h>
#include <stdint.h>

#include "common/spool.h"

enum entry_state { ENTRY_QUEUED, ENTRY_INFLIGHT, ENTRY_DELIVERED };

struct buffer_entry {
    struct buffer_entry *next;
    char boot[17]; /* the agent run that took the sample (spooled messages survive restarts) */
    uint64_t seq;
    int64_t sent_ms; /* monotonic, when last published */
    uint32_t len, cap, npoints;
    enum entry_state state;
    char data[];
};

/* An inclusive range of seqs, as acks carry them. */
struct seq_range {
    uint64_t lo, hi;
};

/* The highest seq this run published of one boot: acks may name nothing above it. A run
 * publishes its own boot and, from the spool, those of earlier runs; the least recently
 * published boot gives way when all slots are taken. */
#define BUFFER_SENT_BOOTS 8
struct buffer_sent {
    char boot[17];
    uint64_t max_seq;
    uint64_t last_use;
};

struct buffer {
    struct buffer_entry *head, *tail, *free_list;
    size_t nfree;
    uint64_t max_bytes;
    int release_on_delivery; /* broker mode */
    struct spool *spool;     /* optional: overflow and shutdown go to disk instead of dropping */
    struct spool_record scratch;
    struct buffer_sent sent[BUFFER_SENT_BOOTS];
    uint64_t sent_uses;
    /* exported counters */
    uint64_t bytes, messages, inflight;
    uint64_t dropped_messages, dropped_points, dropped_bytes;
    uint64_t resent, released;
};

void buffer_init(struct buffer *b, uint64_t max_bytes, int release_on_delivery);
void buffer_free(struct buffer *b);
/* Appends a message (copied). Without a spool, drops the oldest entries first if needed; with
 * one, what does not fit goes to the spool's end. -1 if dropped (counted). */
int buffer_append(struct buffer *b, const char *boot, uint64_t seq, const void *data, size_t len,
                  uint32_t npoints);
/* Moves spooled messages into memory as far as room allows (oldest first). */
void buffer_refill(struct buffer *b);
/* Shutdown: everything unconfirmed goes to the front of the spool, in order. */
void buffer_save(struct buffer *b);
/* The oldest queued entry to publish, or NULL. */
struct buffer_entry *buffer_next_queued(struct buffer *b);
void buffer_mark_inflight(struct buffer *b, struct buffer_entry *e, int64_t now_ms);
/* Broker outcome for seq. */
void buffer_delivered(struct buffer *b, uint64_t seq, int ok);
/* The highest seq of boot this run has published; 0 when it published none of that boot. */
uint64_t buffer_sent_max(const struct buffer *b, const char *boot);
/* End-to-end ack: the messages of this boot whose seq lies in one of the n ranges (sorted by
 * lo, disjoint) are stored. Releases those this run has published and returns how many; a
 * message not published yet stays, whatever the ack says. */
size_t buffer_ack_ranges(struct buffer *b, const char *boot, const struct seq_range *r, size_t n);
size_t buffer_ack_range(struct buffer *b, const char *boot, uint64_t lo, uint64_t hi);
/* Everything in flight goes back to the queue (the connection was lost). */
void buffer_requeue_inflight(struct buffer *b);
/* Entries sent more than timeout_ms ago and still unconfirmed go back to the queue. */
size_t buffer_requeue_stale(struct buffer *b, int64_t now_ms, int64_t timeout_ms);

#endif
