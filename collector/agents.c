#define DSF_MODULE "agents"
#include "collector/agents.h"
#include "common/bucket.h"
#include "common/log.h"
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
static void window_advance(struct agent_state *s, uint64_t d)
{
    const size_t words = AGENT_SEQ_WINDOW / 64;
    if (d >= AGENT_SEQ_WINDOW) {
        memset(s->seen, 0, sizeof(s->seen));
        return;
    }
    size_t wshift = (size_t)(d / 64), bshift = (size_t)(d % 64);
    for (size_t i = words; i-- > 0;) {
        uint64_t v = i >= wshift ? s->seen[i - wshift] << bshift : 0;
        if (bshift && i > wshift)
            v |= s->seen[i - wshift - 1] >> (64 - bshift);
        s->seen[i] = v;
    }
}

void agents_track(struct agent_state *s, const char *boot, uint64_t seq)
{
    s->messages++;
    if (!boot)
        return;
    if (strcmp(s->boot, boot) != 0) {
        if (s->boot[0])
            log_info("%s restarted (boot %s -> %s)", s->key, s->boot, boot);
        snprintf(s->boot, sizeof(s->boot), "%s", boot);
        s->last_seq = 0;
        memset(s->seen, 0, sizeof(s->seen));
    }
    if (seq > s->last_seq) {
        s->gaps += seq - s->last_seq - 1;
        window_advance(s, seq - s->last_seq);
        s->last_seq = seq;
        s->seen[0] |= 1;
        return;
    }
    uint64_t back = s->last_seq - seq;
    uint64_t bit = back < AGENT_SEQ_WINDOW ? UINT64_C(1) << (back % 64) : 0;
    if (seq == 0 || !bit || (s->seen[back / 64] & bit)) {
        s->duplicates++; /* a resend of what arrived, or too old to tell */
        return;
    }
    s->seen[back / 64] |= bit;
    s->late++; /* it was counted as a gap when later seqs overtook it */
}

static void add_range(struct agent_state *s, uint64_t seq)
{
    for (size_t i = 0; i < s->nranges; i++) {
        uint64_t *r = s->ranges[i];
        if (seq >= r[0] && seq <= r[1])
            return;
        if (seq + 1 == r[0] || seq == r[1] + 1) {
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
