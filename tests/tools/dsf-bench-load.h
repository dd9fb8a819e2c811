/* dsf-bench-load's shared parts: the simulated fleet and the messages its agents send. */
#ifndef DSF_BENCH_LOAD_H
#define DSF_BENCH_LOAD_H

#include "common/buf.h"

#include <stddef.h>
#include <stdint.h>

struct load {
    long agents, messages, lines;
    int64_t start_ns;
    int64_t interval_ns; /* between an agent's samples: the timestamps' spacing */
    int seq_field;       /* each line carries seq=<message's seq>i: the store can be checked */
    struct dsf_buf body;
};

/* Options of the agent-faithful mode (--acks). */
struct acks_options {
    const char *url;
    int64_t ack_timeout_ms;
    int timeout_s;
};

/* Agent N's VM name; its key "bench/mci-NN/vm" decides its bucket. */
void load_agent_vm(long agent, char *vm, size_t cap);
/* The agent's topic with leaf NULL: dsf/m/{bucket}/bench/mci-NN/vm; else dsf/a/.../leaf. */
void load_agent_topic(long agent, const char *leaf, char *topic, size_t cap);
/* One agent's cycle: L lines, one per series, all at the cycle's timestamp. */
void load_render(const struct load *l, long agent, long cycle, struct dsf_buf *out);
/* Runs the fleet as agents with buffer.ack=collector; 0 once every message was acked. */
int load_run_acks(struct load *l, const struct acks_options *o);

#endif
