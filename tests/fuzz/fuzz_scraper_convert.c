/*
 * A scraped body as the scraper takes it (scraper/convert.c): the first byte picks the
 * target's kind (even: an exporter's exposition text through prom_text_parse, the label
 * renaming and prom_render_line; odd: an agent's line protocol, checked line by line), the
 * rest is the body. Messages are cut at 1 KiB to reach the splitting; nothing is published
 * (no bus: every message counts as a publish failure).
 */
#include "common/lp.h"
#include "scraper/scraper.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct scraper s;
    static struct scrape_target t;
    static char *names[] = {"site", "ns"}, *values[] = {"lab", "x"};
    if (!s.line && !(s.line = malloc(sizeof(*s.line))))
        return 0;
    if (size < 1)
        return 0;
    s.cfg.max_message_bytes = 1024;
    t.owner = &s;
    t.mode = data[0] & 1 ? SCRAPE_PULL : SCRAPE_EXPORTER;
    snprintf(t.key, sizeof(t.key), "ns1/m1/v1");
    snprintf(t.metrics_topic, sizeof(t.metrics_topic), "dsf/m/0/ns1/m1/v1");
    memcpy(t.label_names, names, sizeof(names));
    memcpy(t.label_values, values, sizeof(values));
    t.nlabels = 2;
    t.started_ns = 1700000000000000000LL;
    convert_body(&t, (const char *)data + 1, size - 1);
    if (s.message.len)
        abort(); /* convert_body flushes what it took */
    buf_free(&s.message);
    return 0;
}
