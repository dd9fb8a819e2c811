/* Per-agent state: seq/boot tracking (gaps, duplicates) and the messages stored since the
 * last end-to-end ack, reported back to the agent as ranges of seq. */
#ifndef DSF_COLLECTOR_AGENTS_H
#define DSF_COLLECTOR_AGENTS_H

#include <stdint.h>

#include "common/buf.h"
#include "common/htab.h"

struct dsf_metrics;

#define AGENT_SEQ_WINDOW 1024

/* One run of an agent (one boot): how far its seqs went and which of the last ones arrived. */
struct agent_run {
    char boot[17];
    uint64_t last_seq; /* the mark; 0: nothing of this run yet */
    /* A seq more than the window away from the mark, held until a second one just above it
     * agrees: one message, forged or broken, cannot move the mark (0: none). */
    uint64_t pending_seq;
    /* Seqs in (jump_from, jump_to) were skipped when the mark last jumped: one arriving now is
     * not a resend, and two of them in a row bring the mark back down. */
    uint64_t jump_from, jump_to;
    /* Which of the seqs last_seq, last_seq - 1, ... arrived: a late message that fills a gap
     * is told apart from a duplicate. */
    uint64_t seen[AGENT_SEQ_WINDOW / 64];
};

/* What agents_track made of a message. */
enum agent_seq {
    AGENT_SEQ_NEXT,      /* in order, after a gap, or moving the mark with the one before */
    AGENT_SEQ_LATE,      /* filled a gap */
    AGENT_SEQ_DUPLICATE, /* seen before (or a resend too old to tell) */
    AGENT_SEQ_FAR,       /* more than the window from the mark: new, the mark stays for now */
    AGENT_SEQ_SUSPECT,   /* as FAR, and more than max_jump from the mark */
};

struct agent_state {
    struct dsf_hlink link; /* first: the table's entries are agent_states */
    struct agent_state *next;
    char key[200]; /* ns/mci/vm */
    char ack_topic[256];
    /* The current run and the one before: spooled messages of the previous run, or a forged
     * boot in between, do not wipe the state of the run that goes on. */
    struct agent_run run, prev;
    uint64_t messages, gaps, late, duplicates;
    char labels[260];
    /* Stored since the last ack: ranges of seq of one boot. Only what this collector stored
     * is acked, never a whole prefix: a restarted collector cannot vouch for seqs it did not
     * see, and the agent keeps and resends those. */
    char ack_boot[17];
    uint64_t (*ranges)[2];
    size_t nranges, cap_ranges;
    int ack_due;
};

struct agents {
    struct dsf_htab table; /* by ns/mci/vm */
    struct agent_state *all;
    uint64_t count;
    struct dsf_metrics *metrics;
};

/* The agent for ns/mci/vm, created (and its series registered) on first sight. */
struct agent_state *agents_get(struct agents *a, const char *ns, const char *mci, const char *vm);
/* Accounts for one message: a new boot starts a run; seq beyond the next counts a gap, a seq
 * already seen a duplicate (still written: the first copy may not have been stored). The mark
 * moves by more than the window only when two messages agree; a seq more than max_jump from
 * it is suspect. */
enum agent_seq agents_track(struct agent_state *s, const char *boot, uint64_t seq,
                            uint64_t max_jump);
/* The store has the message seq of boot: add it to the next ack. */
void agents_stored(struct agent_state *s, uint64_t seq, const char *boot);
/* Writes the ack JSON ({"boot","ranges":[[lo,hi],...]}) and clears the ranges. */
void agents_take_ack(struct agent_state *s, struct dsf_buf *out);
void agents_free(struct agents *a);

#endif
