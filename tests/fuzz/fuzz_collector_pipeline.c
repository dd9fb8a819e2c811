/* libFuzzer target: the collector's intake. The first input byte picks the format (line
 * protocol or JSON) and the way in: a message on an agent's topic, or an HTTP write (no
 * identity, one of InfluxDB's precisions, lines without a time stamped); every line must be
 * taken or rejected with a reason, never crash, and lines taken must parse again as written. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "collector/agents.h"
#include "collector/collector.h"
#include "collector/writer.h"
#include "common/lp.h"

static struct collector c;
static struct agents agents;

static void setup(void)
{
    char err[DSF_CFG_ERRLEN];
    collector_config_sections(&c);
    if (dsf_cfg_defaults(c.sections, err, sizeof(err)) ||
        dsf_cfg_set(c.sections, "batch.max_pending=64KiB", "fuzz", err, sizeof(err)) ||
        dsf_cfg_set(c.sections, "batch.lines=1000000", "fuzz", err, sizeof(err)) ||
        dsf_cfg_set(c.sections, "id=fuzz", "fuzz", err, sizeof(err)))
        abort();
    c.agents = &agents;
    c.base = event_base_new();
    c.writer = writer_new(&c, err, sizeof(err));
    if (!c.writer)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!c.writer)
        setup();
    if (size < 1)
        return 0;
    struct collector_message m = {
        .topic = "dsf/m/35/ns1/mci1/vm1", /* its bucket: fnv1a32("ns1/mci1/vm1") % 64 */
        .payload = (const char *)data + 1,
        .len = size - 1,
        .fmt = data[0] & 1 ? "json" : "lp",
        .boot = "00000000000000b1",
        .seq = data[0],
        .has_seq = 1,
        .partition = -1,
    };
    static const int64_t units[] = {1, 1000, 1000000, 1000000000, 60000000000, 3600000000000};
    if (data[0] & 2) {
        struct pipeline_batch b = {.source = PIPELINE_INFLUX,
                                   .origin = "http /write",
                                   .payload = m.payload,
                                   .len = m.len,
                                   .ts_unit_ns = units[(data[0] >> 2) % 6],
                                   .stamp_ns = 1700000000000000000};
        pipeline_take(&c, &b, NULL, 0);
    } else {
        pipeline_handle(&c, &m);
    }
    /* What was taken is in c.scratch: each line must parse. */
    static struct lp_line line;
    const char *p = c.scratch.data, *end = p ? p + c.scratch.len : NULL; /* NULL: none yet */
    while (p && p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *reason;
        if (!nl || lp_parse_line(p, (size_t)(nl - p), &line, &reason))
            abort();
        p = nl + 1;
    }
    return 0;
}
