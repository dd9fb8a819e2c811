/*
 * End-to-end acks from collectors (buffer.ack=collector): {"boot": "...", "ranges": [[lo, hi],
 * ...]} on dsf/a/{ns}/{mci}/{vm}/ack. Anyone the broker lets publish there can send one, so an
 * ack is parsed exactly (seqs are unsigned 64-bit) and checked against what this run has
 * published before it releases anything: a collector can only vouch for messages it received.
 */
#ifndef DSF_AGENT_ACK_H
#define DSF_AGENT_ACK_H

#include <stddef.h>
#include <stdint.h>

#include "agent/buffer.h"

struct ack {
    char boot[17];
    struct seq_range *ranges; /* sorted by lo, overlaps merged */
    size_t nranges;
};

/* What an ack did; every value but ACK_APPLIED is counted as refused, by reason. */
enum ack_verdict {
    ACK_APPLIED,      /* released at least one message */
    ACK_STALE,        /* valid, but everything it names was released already */
    ACK_MALFORMED,    /* not the ack's JSON shape, or a seq that is not an unsigned integer */
    ACK_UNKNOWN_BOOT, /* this run published nothing of that boot */
    ACK_UNSENT,       /* names a seq this run has not published (0, or above the highest) */
};
#define ACK_VERDICTS 5

/* The counter label of a verdict ("malformed", ...). */
const char *ack_verdict_name(enum ack_verdict v);

/* Parses an ack. 0, or -1 with why (the ack is then empty). ack_free releases it. */
int ack_parse(const void *payload, size_t len, struct ack *ack, char *why, size_t whylen);
void ack_free(struct ack *ack);

/* Parses and checks an ack, then releases what it names from the buffer, unless any range
 * reaches beyond what this run published of that boot: then nothing is released. *released
 * gets how many messages were; why explains a refusal. */
enum ack_verdict ack_apply(struct buffer *b, const void *payload, size_t len, size_t *released,
                           char *why, size_t whylen);

#endif
