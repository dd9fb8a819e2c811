/*
 * Acknowledging only what is durable: an agent's progress becomes an ack on
 * dsf/a/{ns}/{mci}/{vm}/ack (at most one per agent per completed write), a Kafka
 * partition's progress an offset commit.
 */
#include "collector/agents.h"
#include "collector/collector.h"
#include "common/bus.h"

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

void collector_after_write(struct collector *c)
{
    static struct dsf_buf payload;
    for (struct agent_state *s = c->agents->all; s; s = s->next) {
        if (!s->ack_due)
            continue;
        agents_take_ack(s, &payload);
        struct dsf_bus_message m = {
            .topic = s->ack_topic, .payload = payload.data, .len = payload.len};
        /* Not connected: that ack is lost, and the agent resends those messages after its
         * ack timeout; a duplicate is harmless where a false ack would not be. */
        if (dsf_bus_publish(c->bus, &m, 1, 0, 0) == 0)
            c->stats.acks_published++;
    }
    for (size_t i = 0; i < c->npartitions; i++) {
        struct progress *p = c->partitions[i];
        if (!p || !p->dirty)
            continue;
        p->dirty = 0;
        dsf_bus_commit(c->bus, "dsf.metrics", (int32_t)i, (int64_t)p->durable);
    }
}
