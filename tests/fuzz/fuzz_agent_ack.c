/* libFuzzer target: the agent's ack parser (agent/ack.c), which reads every number from its
 * own text before jansson sees the document. Any input must parse into sorted, disjoint
 * ranges of unsigned seqs or be refused with a reason, never crash; and an ack applied to a
 * buffer never releases a message that was not published. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/ack.h"

static void check_parsed(const struct ack *ack)
{
    for (size_t i = 0; i < ack->nranges; i++) {
        if (ack->ranges[i].lo > ack->ranges[i].hi)
            abort();
        if (i && ack->ranges[i].lo <= ack->ranges[i - 1].hi)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char why[256] = "";
    struct ack ack;
    if (ack_parse(data, size, &ack, why, sizeof(why)) == 0)
        check_parsed(&ack);
    else if (!why[0] || ack.ranges)
        abort();
    ack_free(&ack);

    /* Seqs 1-4 of boot 0123456789abcdef taken, 1-2 published. */
    struct buffer b;
    buffer_init(&b, 1 << 16, 0);
    char msg[8] = {0};
    for (uint64_t seq = 1; seq <= 4; seq++)
        buffer_append(&b, "0123456789abcdef", seq, msg, sizeof(msg), 1);
    buffer_mark_inflight(&b, buffer_next_queued(&b), 1);
    buffer_mark_inflight(&b, buffer_next_queued(&b), 1);
    size_t released;
    enum ack_verdict v = ack_apply(&b, data, size, &released, why, sizeof(why));
    if (released > 2 || b.messages < 2 || (v == ACK_APPLIED) != (released > 0))
        abort();
    buffer_free(&b);
    return 0;
}
