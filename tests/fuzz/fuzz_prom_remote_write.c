/* libFuzzer target: the remote_write decoder over any bytes, taken once as the body itself
 * (snappy's checks) and once snappy-compressed (the protobuf decoding); every sample it
 * passes on must render as line protocol that reads back unchanged (prom_roundtrip.h). */
#include <snappy-c.h>
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
    (void)len;
    if (!reason || !reason[0])
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct prom_ops ops = {on_sample, on_reject};
    char err[256];
    prom_remote_write_decode(data, size, 1 << 20, &ops, NULL, err, sizeof(err));
    size_t n = snappy_max_compressed_length(size);
    char *body = malloc(n);
    if (body && snappy_compress((const char *)data, size, body, &n) == SNAPPY_OK)
        prom_remote_write_decode(body, n, 1 << 20, &ops, NULL, err, sizeof(err));
    free(body);
    return 0;
}
