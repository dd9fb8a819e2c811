/*
 * Acknowledging only what is durable: an agent's progress becomes an ack on
 * dsf/a/{ns}/{mci}/{vm}/ack (at most one per agent per completed write), a Kafka
 * partition's progress an offset commit.
 */
#define DSF_MODULE "ack"
#include "collector/agents.h"
#include "collector/collector.h"
#include "collector/writer.h"
#include "common/bus.h"
#include "common/log.h"
#include "common/loop.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct progress *collector_partition(struct collector *c, int32_t partition)
{
    if (partition < 0 || partition > 65535)
        return NULL;
    if ((size_t)partition >= c->npartitions) {
        size_t n = (size_t)partition + 1;
        struct progress **p = realloc(c->partitions, n * sizeof(*p));
        if (!p)
            return NULL;
        memset(p + c->npartitions, 0, (n - c->npartitions) * sizeof(*p));
        c->partitions = p;
        c->npartitions = n;
    }
    /* Each on its own: pending writes hold pointers to it while the table grows. */
    if (!c->partitions[partition])
        c->partitions[partition] = calloc(1, sizeof(struct progress));
    return c->partitions[partition];
}

/* Kafka keeps what is not fetched, so past half of batch.max_pending fetching pauses (rather
 * than messages being refused, which Kafka would not deliver again until a rebalance) and
 * resumes below a quarter. MQTT senders resend what is refused, so MQTT needs none of this. */
void collector_backpressure(struct collector *c)
{
    uint64_t pending = writer_pending_bytes(c->writer), cap = c->cfg.batch.max_pending_bytes;
    if (!c->input_paused && pending > cap / 2 && strcmp(c->cfg.input, "kafka") == 0 &&
        dsf_bus_pause(c->bus, 1) == 0) {
        static struct dsf_log_limit limit;
        int loud = dsf_log_due(&limit, NULL); /* catching up pauses often: say it once */
        c->input_paused = 1;
        c->stats.input_pauses++;
        dsf_log(loud ? DSF_LOG_WARN : DSF_LOG_DEBUG, DSF_MODULE,
                "%llu bytes wait for the store: pausing Kafka fetching until below %llu",
                (unsigned long long)pending, (unsigned long long)cap / 4);
    } else if (c->input_paused && pending < cap / 4 && dsf_bus_pause(c->bus, 0) == 0) {
        c->input_paused = 0;
        log_debug("the store caught up: Kafka fetching resumed");
    }
}

void collector_after_write(struct collector *c)
{
    collector_backpressure(c);
    static struct dsf_buf payload;
    for (struct agent_state *s = c->agents->all; s; s = s->next) {
        if (!s->ack_due)
            continue;
        agents_take_ack(s, &payload);
        struct dsf_bus_message m = {
            .topic = s->ack_topic, .payload = payload.data, .len = payload.len};
        /* Refused (not connected, the client's queue full): that ack is lost, and the agent
         * resends those messages after its ack timeout; a duplicate is harmless where a
         * false ack would not be. */
        if (dsf_bus_publish(c->bus, &m, 1, 0, 0) == 0)
            c->stats.acks_published++;
        else
            c->stats.acks_refused++;
    }
    for (size_t i = 0; i < c->npartitions; i++) {
        struct progress *p = c->partitions[i];
        if (!p || !p->dirty)
            continue;
        p->dirty = 0;
        dsf_bus_commit(c->bus, "dsf.metrics", (int32_t)i, (int64_t)p->durable);
    }
}
