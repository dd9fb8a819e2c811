#define DSF_MODULE "agents"
#include "collector/agents.h"
#include "common/bucket.h"
#include "common/log.h"
#include "common/loop.h"
#include "common/metrics.h"
#include "common/topic.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct agent_state *agents_get(struct agents *a, const char *ns, const char *mci, const char *vm)
{
    char key[200];
    int n = snprintf(key, sizeof(key), "%s/%s/%s", ns, mci, vm);
    if (n < 0 || (size_t)n >= sizeof(key))
        return NULL;
    uint64_t h = dsf_fnv1a32(key, (size_t)n);
    if (!a->table.nbuckets && dsf_htab_grow(&a->table))
        return NULL;
    for (struct dsf_hlink *l = dsf_htab_first(&a->table, h); l; l = l->next)
        if (l->hash == h && strcmp(((struct agent_state *)l)->key, key) == 0)
            return (struct agent_state *)l;
    struct agent_state *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    memcpy(s->key, key, (size_t)n + 1);
    dsf_topic_agent_key(s->ack_topic, sizeof(s->ack_topic), key, "ack");
    struct dsf_buf labels = {0};
    buf_puts(&labels, "agent=\"");
    prom_label_value(&labels, key);
    buf_putc(&labels, '"');
    snprintf(s->labels, sizeof(s->labels), "%s", buf_cstr(&labels));
    buf_free(&labels);
    dsf_htab_insert(&a->table, &s->link, h);
    s->next = a->all;
    a->all = s;
    a->count++;
    if (a->metrics) {
        metrics_add_u64(a->metrics, "damselfly_collector_agent_gaps_total", DSF_COUNTER,
                        "Seqs skipped when a later message arrived (lost upstream, or late).",
                        s->labels, &s->gaps);
        metrics_add_u64(a->metrics, "damselfly_collector_agent_late_total", DSF_COUNTER,
                        "Messages that arrived after later ones and filled a gap; gaps minus "
                        "late is what is still missing.",
                        s->labels, &s->late);
        metrics_add_u64(a->metrics, "damselfly_collector_agent_duplicates_total", DSF_COUNTER,
                        "Messages that arrived more than once (resends).", s->labels,
                        &s->duplicates);
        metrics_add_u64(a->metrics, "damselfly_collector_agent_messages_total", DSF_COUNTER,
                        "Messages received from an agent.", s->labels, &s->messages);
    }
    return s;
}

/* Moves the window up by d seqs: bit i stands for seq last_seq - i. */
static void window_advance(struct agent_run *r, uint64_t d)
{
    const size_t words = AGENT_SEQ_WINDOW / 64;
    if (d >= AGENT_SEQ_WINDOW) {
        memset(r->seen, 0, sizeof(r->seen));
        return;
    }
    size_t wshift = (size_t)(d / 64), bshift = (size_t)(d % 64);
    for (size_t i = words; i-- > 0;) {
        uint64_t v = i >= wshift ? r->seen[i - wshift] << bshift : 0;
        if (bshift && i > wshift)
            v |= r->seen[i - wshift - 1] >> (64 - bshift);
        r->seen[i] = v;
    }
}

/* The run of this boot: the current one, the one before (they swap), or a new one. */
static struct agent_run *run_for(struct agent_state *s, const char *boot)
{
    if (strcmp(s->run.boot, boot) == 0)
        return &s->run;
    struct agent_run before = s->prev;
    s->prev = s->run;
    if (strcmp(before.boot, boot) == 0) {
        s->run = before;
        return &s->run;
    }
    if (s->prev.boot[0])
        log_info("%s restarted (boot %s -> %s)", s->key, s->prev.boot, boot);
    memset(&s->run, 0, sizeof(s->run));
    snprintf(s->run.boot, sizeof(s->run.boot), "%s", boot);
    return &s->run;
}

/* The first message of a run this collector sees. The seqs before it count as gaps only near
 * the start of the run: a collector that restarted or took over a bucket cannot tell lost
 * messages from those sent before its time. */
static enum agent_seq run_start(struct agent_state *s, struct agent_run *r, uint64_t seq)
{
    r->last_seq = r->jump_from = r->jump_to = seq;
    r->seen[0] = 1;
    if (seq - 1 <= AGENT_SEQ_WINDOW)
        s->gaps += seq - 1;
    return AGENT_SEQ_NEXT;
}

/* Two messages more than the window from the mark agree (pending_seq, then seq just above
 * it): the mark moves to seq. Moving up skips what lies between: gaps when the jump is
 * plausible; moving down means the mark had been carried off by a wrong seq. */
static void mark_move(struct agent_state *s, struct agent_run *r, uint64_t seq, uint64_t max_jump)
{
    uint64_t from = r->last_seq, pending = r->pending_seq;
    static struct dsf_log_limit limit;
    if (seq > from) {
        if (seq - from <= max_jump)
            s->gaps += seq - from - 2; /* pending and seq arrived */
        r->jump_from = from;
        r->jump_to = pending;
    } else {
        r->jump_from = r->jump_to = seq;
    }
    if ((seq > from ? seq - from : from - seq) > max_jump && dsf_log_due(&limit, NULL))
        log_warn("%s (boot %s): seq tracking moved from %llu to %llu, where two messages agree",
                 s->key, r->boot, (unsigned long long)from, (unsigned long long)seq);
    memset(r->seen, 0, sizeof(r->seen));
    r->seen[0] = 1;
    if (seq - pending < AGENT_SEQ_WINDOW)
        r->seen[(seq - pending) / 64] |= UINT64_C(1) << ((seq - pending) % 64);
    r->last_seq = seq;
    r->pending_seq = 0;
}

/* A seq more than the window from the mark: new (never a duplicate of what the window
 * holds), and the mark stays unless the message before was one too, just below it. */
static enum agent_seq far_seq(struct agent_state *s, struct agent_run *r, uint64_t seq,
                              uint64_t max_jump)
{
    uint64_t pending = r->pending_seq;
    if (pending && seq == pending) {
        s->duplicates++;
        return AGENT_SEQ_DUPLICATE;
    }
    if (pending && seq > pending && seq - pending <= AGENT_SEQ_WINDOW) {
        mark_move(s, r, seq, max_jump);
        return AGENT_SEQ_NEXT;
    }
    r->pending_seq = seq;
    uint64_t d = seq > r->last_seq ? seq - r->last_seq : r->last_seq - seq;
    return d > max_jump ? AGENT_SEQ_SUSPECT : AGENT_SEQ_FAR;
}

enum agent_seq agents_track(struct agent_state *s, const char *boot, uint64_t seq,
                            uint64_t max_jump)
{
    s->messages++;
    if (!boot)
        return AGENT_SEQ_NEXT;
    struct agent_run *r = run_for(s, boot);
    if (seq == 0) { /* not a seq an agent sends */
        s->duplicates++;
        return AGENT_SEQ_DUPLICATE;
    }
    if (!r->last_seq)
        return run_start(s, r, seq);
    if (seq > r->last_seq) {
        uint64_t d = seq - r->last_seq;
        if (d > AGENT_SEQ_WINDOW)
            return far_seq(s, r, seq, max_jump);
        s->gaps += d - 1;
        window_advance(r, d);
        r->last_seq = seq;
        r->seen[0] |= 1;
        r->pending_seq = 0;
        return AGENT_SEQ_NEXT;
    }
    uint64_t back = r->last_seq - seq;
    if (back >= AGENT_SEQ_WINDOW) {
        if (back > max_jump || (seq > r->jump_from && seq < r->jump_to))
            return far_seq(s, r, seq, max_jump);
        s->duplicates++; /* a resend too old to tell */
        return AGENT_SEQ_DUPLICATE;
    }
    uint64_t bit = UINT64_C(1) << (back % 64);
    if (r->seen[back / 64] & bit) {
        s->duplicates++; /* a resend of what arrived */
        return AGENT_SEQ_DUPLICATE;
    }
    r->seen[back / 64] |= bit;
    s->late++; /* it was counted as a gap when later seqs overtook it */
    return AGENT_SEQ_LATE;
}

static void add_range(struct agent_state *s, uint64_t seq)
{
    for (size_t i = 0; i < s->nranges; i++) {
        uint64_t *r = s->ranges[i];
        if (seq >= r[0] && seq <= r[1])
            return;
        /* No wrap at either end: 2^64-1 and 0 must not join into one range of everything. */
        if ((r[0] > 0 && seq == r[0] - 1) || (r[1] < UINT64_MAX && seq == r[1] + 1)) {
            r[0] = seq < r[0] ? seq : r[0];
            r[1] = seq > r[1] ? seq : r[1];
            return;
        }
    }
    if (s->nranges == s->cap_ranges) {
        size_t cap = s->cap_ranges ? s->cap_ranges * 2 : 8;
        uint64_t(*grown)[2] = realloc(s->ranges, cap * sizeof(*grown));
        if (!grown)
            return; /* not acked: the agent resends it, harmlessly */
        s->ranges = grown;
        s->cap_ranges = cap;
    }
    s->ranges[s->nranges][0] = s->ranges[s->nranges][1] = seq;
    s->nranges++;
}

void agents_stored(struct agent_state *s, uint64_t seq, const char *boot)
{
    if (strcmp(s->ack_boot, boot) != 0) {
        /* Acks of another run's messages: that run is over, its agent took a new boot. */
        snprintf(s->ack_boot, sizeof(s->ack_boot), "%s", boot);
        s->nranges = 0;
    }
    add_range(s, seq);
    s->ack_due = 1;
}

void agents_take_ack(struct agent_state *s, struct dsf_buf *out)
{
    buf_reset(out);
    buf_printf(out, "{\"boot\":\"%s\",\"ranges\":[", s->ack_boot);
    for (size_t i = 0; i < s->nranges; i++)
        buf_printf(out, "%s[%llu,%llu]", i ? "," : "", (unsigned long long)s->ranges[i][0],
                   (unsigned long long)s->ranges[i][1]);
    buf_puts(out, "]}");
    s->nranges = 0;
    s->ack_due = 0;
}

void agents_free(struct agents *a)
{
    struct agent_state *s = a->all;
    while (s) {
        struct agent_state *next = s->next;
        free(s->ranges);
        free(s);
        s = next;
    }
    dsf_htab_free(&a->table);
    a->all = NULL;
}
