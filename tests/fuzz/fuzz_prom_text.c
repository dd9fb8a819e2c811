/* libFuzzer target: the exposition text parser over any bytes, with every sample it passes
 * on rendered as line protocol and read back unchanged (prom_roundtrip.h). */
#include <stdint.h>

#include "prom_roundtrip.h"

static void on_sample(void *ctx, const struct prom_sample *s)
{
    (void)ctx;
    roundtrip_check(s);
}

static void on_reject(void *ctx, const char *text, size_t len, const char *reason)
{
    (void)ctx;
    (void)text;
    if (len > INGEST_MAX_LINE + 1 && reason[0] != 'l')
        abort(); /* only "line too long" may be given so long a line */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct prom_ops ops = {on_sample, on_reject};
    prom_text_parse((const char *)data, size, &ops, NULL);
    return 0;
}
