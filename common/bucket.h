/* The wire contract's bucket: fnv1a32("ns/mci/vm") % B. Every component computes it here. */
#ifndef DSF_BUCKET_H
#define DSF_BUCKET_H

#include <stddef.h>
#include <stdint.h>

static inline uint32_t dsf_fnv1a32(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 16777619u;
    }
    return h;
}

static inline uint32_t dsf_bucket(const char *key, size_t len, uint32_t buckets)
{
    return dsf_fnv1a32(key, len) % buckets;
}

/* Parses a bucket set, "all", "none" or a list and ranges like "0-15,32", into
 * flags[0..total). 0, or -1 on a malformed spec or a bucket outside the range. */
int dsf_parse_buckets(const char *spec, uint8_t *flags, uint32_t total);

#endif
